#!/usr/bin/env bash
# Record where Linux places file mappings on ext4 (thp_get_unmapped_area)
# for crates/machine/tests/thp_placement.rs: builds the static program
# tools/record/progs/thp_file_map.c into tests/fixtures/bin/ and runs it
# with ASLR off on a directory of the repository's file system (ext4 on our
# machines), writing tests/fixtures/thp_file_map.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
gcc -O1 -Wall -Wextra -Werror -fno-stack-protector -static \
	-o tests/fixtures/bin/thp_file_map-static tools/record/progs/thp_file_map.c
work=$(mktemp -d -p "$PWD/target" thp.XXXXXX)
trap 'rm -rf "$work"' EXIT
fs=$(stat -f -c %T "$work")
[ "$fs" = ext2/ext3 ] || { echo "$work is on $fs, not ext4" >&2; exit 1; }
{
	echo "# tools/record/thp_file_map.sh on $(uname -r), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled), files on $fs"
	setarch x86_64 -R tests/fixtures/bin/thp_file_map-static "$work"
} > tests/fixtures/thp_file_map.txt
cat tests/fixtures/thp_file_map.txt
