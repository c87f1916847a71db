#!/bin/sh
# Re-record the valgrind lackey traces in tests/fixtures/lackey/.
#
#   tools/record/lackey.sh            record with the committed program
#   tools/record/lackey.sh --rebuild  recompile tests/fixtures/lackey/touch first
#
# Needs: Linux x86-64, valgrind (lackey is one of its tools), setarch, gzip;
# gcc for --rebuild. Runs from the repository root with the same fixed
# environment and ASLR off as record.sh.
set -eu
cd "$(dirname "$0")/../.."
D=tests/fixtures/lackey
mkdir -p "$D"
if [ "${1:-}" = "--rebuild" ]; then
	# Freestanding: the trace holds only the program's own instructions.
	gcc -O1 -Wall -Wextra -Werror -fno-stack-protector -fno-pie -no-pie \
		-static -nostdlib -o "$D/touch" tools/record/progs/lackey_touch.c
fi

ENV="env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LC_ALL=C"
ulimit -s 8192
# --log-file keeps the trace apart from the program's own stdout/stderr.
lackey() { # NAME PROGRAM ARGS...
	name=$1
	shift
	$ENV setarch x86_64 -R valgrind --tool=lackey --trace-mem=yes \
		--log-file="$D/$name.lk" "$@" >"$D/$name.stdout"
}
lackey touch "./$D/touch"
lackey true /bin/true
rm "$D/true.stdout" # empty
# -n: no name or time stamp in the header, so the same trace gives the same bytes.
gzip -9 -n -f "$D/true.lk"

{
	echo "uname -r: $(uname -r)"
	echo "glibc: $(ldd --version | head -1)"
	echo "gcc: $(gcc --version 2>/dev/null | head -1)"
	echo "valgrind: $(valgrind --version)"
	echo "RLIMIT_STACK: $(ulimit -s) KiB"
	echo "/bin/true sha256: $(sha256sum /bin/true | cut -d' ' -f1)"
	echo "libc.so.6 sha256: $(sha256sum /lib/x86_64-linux-gnu/libc.so.6 | cut -d' ' -f1)"
	echo "ld.so sha256: $(sha256sum /lib64/ld-linux-x86-64.so.2 | cut -d' ' -f1)"
	echo "touch sha256: $(sha256sum "$D/touch" | cut -d' ' -f1)"
} >"$D/ENVIRONMENT.txt"
ls -l "$D"
