#!/bin/sh
# Record whole multi-process programs for tests/fixtures/whole/: what a
# replay must reproduce from the first instruction, children included.
#
#   tools/record/whole.sh            record with the committed binaries
#   tools/record/whole.sh --rebuild  rebuild tests/fixtures/bin first
#
# For each program NAME, three runs with the same fixed environment
# (env -i, three variables), RLIMIT_STACK 8 MiB and ASLR off:
#   NAME.strace  strace -f of memory, process, file and descriptor calls
#                (%desc: the programs' write(1, "touch ...") lines say where
#                each announced access happened; see progs/touch.h);
#   NAME.stdout  the program's output in that run;
#   NAME.exit    every process's maps, smaps and stat at its exit
#                (PTRACE_EVENT_EXIT, tools/record/progs/exitmaps.c), in the
#                order the processes were created;
#   NAME.time    /usr/bin/time -v of the whole program tree (faults, RSS).
# sh-pipe-stderr.strace is sh-pipe traced to stderr (see below).
# The programs are deterministic, so the three runs do the same thing (the
# pids differ; the replay tests match processes by creation order).
# Needs: Linux x86-64, strace, setarch, gcc, GNU time.
set -eu
cd "$(dirname "$0")/../.."
[ "${1:-}" = "--rebuild" ] && tools/record/build.sh

ENV="env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LC_ALL=C"
ulimit -s 8192
W=tests/fixtures/whole
mkdir -p "$W"
EXITMAPS=${TMPDIR:-/tmp}/lmm-exitmaps
gcc -O1 -Wall -Wextra -Werror -o "$EXITMAPS" tools/record/progs/exitmaps.c

record() { # NAME PROGRAM ARGS...
	name=$1
	shift
	$ENV setarch x86_64 -R strace -f -y -v -s 4096 \
		-e trace=%memory,%process,%file,%desc \
		-o "$W/$name.strace" "$@" >"$W/$name.stdout"
	$ENV setarch x86_64 -R "$EXITMAPS" "$W/$name.exit" "$@" >/dev/null
	$ENV setarch x86_64 -R /usr/bin/time -v -o "$W/$name.time" "$@" >/dev/null
}
for prog in procs sharedfile; do
	for v in pie static; do
		record "$prog-$v" "./tests/fixtures/bin/$prog-$v"
	done
done
record sh-pipe sh -c 'true | cat'
# The same pipeline traced to stderr (no -o), the form strace -f prints on a
# terminal: "[pid N]" only while several processes are traced, and strace's
# own "Process N attached" lines, even in the middle of a call's line.
$ENV setarch x86_64 -R strace -f -y -v -s 4096 -e trace=%memory,%process,%file,%desc \
	sh -c 'true | cat' 2>"$W/sh-pipe-stderr.strace" >/dev/null

# The host files the traces depend on (executables, libraries, ld.so.cache),
# with the inode and size maps show and the sha256 that decides placement.
{
	grep -ohE '(execve\("|<)(/usr/|/lib|/etc/|/bin/)[^">]*' \
		tests/fixtures/traces/*.strace "$W"/*.strace | sed 's/^execve("//; s/^<//'
	echo /lib64/ld-linux-x86-64.so.2 # PT_INTERP: loaded by exec, not in the traces
} | while read -r f; do readlink -f "$f"; done | sort -u |
	while read -r f; do
		if [ -f "$f" ]; then echo "$f $(stat -c "%i %s" "$f") $(sha256sum "$f" | cut -d" " -f1)"; fi
	done >tests/fixtures/host-files.txt
echo "recorded into $W"
