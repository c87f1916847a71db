#!/bin/sh
# Build the recording programs four ways into tests/fixtures/bin/.
# Run from anywhere; paths are relative to the repository root.
#   NAME-pie         gcc default: dynamically linked PIE (ET_DYN + PT_INTERP)
#   NAME-nopie       -no-pie: dynamically linked ET_EXEC at 0x400000
#   NAME-static      -static: statically linked ET_EXEC
#   NAME-static-pie  -static-pie: statically linked ET_DYN without PT_INTERP
set -eu
cd "$(dirname "$0")/../.."
CFLAGS="-O1 -Wall -Wextra -Werror -fno-stack-protector"
mkdir -p tests/fixtures/bin
for prog in mmap_basic mremap_brk filemap; do
	src=tools/record/progs/$prog.c
	out=tests/fixtures/bin/$prog
	gcc $CFLAGS -o "$out-pie" "$src"
	gcc $CFLAGS -no-pie -o "$out-nopie" "$src"
	gcc $CFLAGS -static -o "$out-static" "$src"
	gcc $CFLAGS -static-pie -o "$out-static-pie" "$src"
done
# The whole-program recordings (tools/record/whole.sh): two ways each.
for prog in procs sharedfile; do
	src=tools/record/progs/$prog.c
	out=tests/fixtures/bin/$prog
	gcc $CFLAGS -o "$out-pie" "$src"
	gcc $CFLAGS -static -o "$out-static" "$src"
done
ls -l tests/fixtures/bin/
