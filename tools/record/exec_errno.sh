#!/usr/bin/env bash
# Record the host kernel's execve answer for every file of the exec corpus
# (machine::exec::corpus) into tests/fixtures/exec_errno.txt, for
# crates/machine/tests/exec_differential.rs. Nothing of the files is run:
# tools/record/progs/exec_errno.c reads execve's return value at its
# syscall-exit stop under ptrace and kills the task there.
#
# Usage: tools/record/exec_errno.sh [SEED [COUNT]]   (defaults 1 2000)
# Run as root on a machine like the CI's (x86-64, Linux 6.18, 24 GiB, no
# swap, vm.overcommit_memory=0, vm.mmap_min_addr=4096).
set -eu
cd "$(dirname "$0")/../.."
seed=${1:-1}
count=${2:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O1 -Wall -Wextra -Werror -o "$work/exec_errno" tools/record/progs/exec_errno.c
cargo build -q -p machine --example exec_corpus
target/debug/examples/exec_corpus "$seed" "$count" "$work/corpus" > "$work/list"
cut -d' ' -f1 "$work/list" | "$work/exec_errno" "$work/corpus" > "$work/out"
gen=$(sed -n 's/^pub const GENERATOR_VERSION: u32 = \([0-9]*\);/\1/p' crates/machine/src/exec/corpus.rs)
out=tests/fixtures/exec_errno.txt
{
	echo "# execve results of the Linux kernel for the exec corpus (machine::exec::corpus)."
	echo "# Recorded by tools/record/exec_errno.sh; columns: file, FNV-1a 64 of its bytes,"
	echo "# ok or execve's errno, \"fatal\" if it failed after the point of no return."
	echo "# seed $seed"
	echo "# count $count"
	echo "# generator $gen"
	echo "# kernel $(uname -r) $(uname -m)"
	echo "# overcommit_memory $(cat /proc/sys/vm/overcommit_memory) mmap_min_addr $(cat /proc/sys/vm/mmap_min_addr) MemTotal $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB SwapTotal $(awk '/SwapTotal/ {print $2}' /proc/meminfo) kB"
	join -j1 <(cut -d' ' -f1,2 "$work/list" | sort) <(sort "$work/out") | sort
} > "$out"
awk '!/^#/ {print $3, $4}' "$out" | sort | uniq -c | sort -rn
echo "wrote $out"
