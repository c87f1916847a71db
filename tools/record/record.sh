#!/bin/sh
# Re-record every fixture in tests/fixtures/ from the real kernel.
#
#   tools/record/record.sh            record with the committed binaries
#   tools/record/record.sh --rebuild  rebuild tests/fixtures/bin first
#
# Needs: Linux x86-64, strace, gdb (with Python), setarch; gcc for --rebuild.
# Everything runs from the repository root with a fixed, minimal environment
# (env -i, see ENV below) and ASLR off, so the traces' execve() lines show
# exactly the argv/envp a replay must use, and the fixture binaries appear by
# their relative path ./tests/fixtures/bin/NAME.
set -eu
cd "$(dirname "$0")/../.."
[ "${1:-}" = "--rebuild" ] && tools/record/build.sh

ENV="env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LC_ALL=C"
ulimit -s 8192   # RLIMIT_STACK decides mmap_base (linux-facts 6.1)
T=tests/fixtures/traces
S=tests/fixtures/starti
mkdir -p "$T" "$S"

# 1. strace of memory and process system calls, with results.
#    -f follow children, -y fds with paths, -v full argv/envp, -s 4096 so
#    that no string (argv[0], environment) is cut at the default 32 bytes.
trace() { # NAME PROGRAM ARGS...
	name=$1
	shift
	$ENV setarch x86_64 -R strace -f -y -v -s 4096 -e trace=%memory,%process \
		-o "$T/$name.strace" "$@" >"$T/$name.stdout"
}
for prog in mmap_basic mremap_brk filemap; do
	for v in pie nopie static static-pie; do
		trace "$prog-$v" "./tests/fixtures/bin/$prog-$v"
	done
done
trace true /bin/true
trace ls-root /bin/ls /

# 2. The address space at the first instruction (gdb starti).
#    gdb disables ASLR itself; it would add LINES and COLUMNS to the
#    inferior's environment, so they are unset; startup-with-shell off makes
#    gdb exec the program directly (no shell adding PWD/SHLVL/_).
starti() { # NAME PROGRAM ARGS...
	name=$1
	shift
	$ENV gdb -nx -batch \
		-ex 'set startup-with-shell off' \
		-ex 'unset environment LINES' \
		-ex 'unset environment COLUMNS' \
		-ex "python OUT=\"$S/$name\"" \
		-x tools/record/starti.py \
		--args "$@" >/dev/null
}
starti ls /bin/ls
for prog in mmap_basic mremap_brk filemap; do
	for v in pie nopie static static-pie; do
		starti "$prog-$v" "./tests/fixtures/bin/$prog-$v"
	done
done

# 3. Provenance.
{
	echo "uname -r: $(uname -r)"
	echo "uname -v: $(uname -v)"
	echo "glibc: $(ldd --version | head -1)"
	echo "gcc: $(gcc --version 2>/dev/null | head -1)"
	echo "strace: $(strace -V | head -1)"
	echo "gdb: $(gdb --version | head -1)"
	echo "RLIMIT_STACK: $(ulimit -s) KiB"
	echo "vm.mmap_min_addr: $(cat /proc/sys/vm/mmap_min_addr)"
	echo "vm.overcommit_memory: $(cat /proc/sys/vm/overcommit_memory)"
	echo "kernel.randomize_va_space: $(cat /proc/sys/kernel/randomize_va_space)"
	echo "transparent_hugepage: $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
	echo "/bin/ls sha256: $(sha256sum /bin/ls | cut -d' ' -f1)"
	echo "/bin/true sha256: $(sha256sum /bin/true | cut -d' ' -f1)"
	echo "libc.so.6 sha256: $(sha256sum /lib/x86_64-linux-gnu/libc.so.6 | cut -d' ' -f1)"
	echo "ld.so sha256: $(sha256sum /lib64/ld-linux-x86-64.so.2 | cut -d' ' -f1)"
} >tests/fixtures/ENVIRONMENT.txt
echo "recorded into $T and $S"
# 4. Whole multi-process programs (and host-files.txt).
tools/record/whole.sh
