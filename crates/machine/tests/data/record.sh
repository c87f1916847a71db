#!/bin/sh
# Records what the real kernel builds at the first instruction (gdb `starti`)
# of a program run with ASLR off, for crates/machine/tests/exec.rs.
# Usage: record.sh NAME PROGRAM [ARGS...]   (run from this directory)
# Writes NAME.starti.{maps,auxv,stack,regs,stat}. The environment is exactly
# A=1 and PATH=/usr/bin:/bin; argv[0] is the program path as given.
# Arguments must not contain spaces (gdb escapes them).
set -e
name=$1; shift
out=$(pwd)
cat > /tmp/record-$$.gdb <<GDB
set startup-with-shell off
set disable-randomization on
unset environment
set environment A=1
set environment PATH=/usr/bin:/bin
starti
python
import gdb
inf = gdb.selected_inferior()
pid = inf.pid
open('$out/$name.starti.maps','w').write(open('/proc/%d/maps' % pid).read())
open('$out/$name.starti.auxv','wb').write(open('/proc/%d/auxv' % pid,'rb').read())
rsp = int(gdb.parse_and_eval('\$rsp'))
rip = int(gdb.parse_and_eval('\$rip'))
open('$out/$name.starti.stack','wb').write(bytes(inf.read_memory(rsp, 0x7ffffffff000 - rsp)))
open('$out/$name.starti.stat','w').write(open('/proc/%d/stat' % pid).read())
open('$out/$name.starti.regs','w').write('rsp %#x\nrip %#x\n' % (rsp, rip))
end
GDB
gdb -batch -nx -x /tmp/record-$$.gdb --args "$@" >/dev/null 2>&1
rm -f /tmp/record-$$.gdb
