#!/bin/sh
# Print the --touch arguments of `lmm replay strace` for a trace of a
# program that announces its accesses (tools/record/progs/touch.h): one
# "--touch LINE:PID:ADDR,LEN[:w]" per `write(1, "touch ADDR LEN r|w: ...")`
# line, placed right after that line, by its pid.
#
#   lmm replay strace T --check --path-map /work/wt-replay=. \
#       $(tools/record/touches.sh T)
set -eu
grep -n 'write(1<[^>]*>, "touch ' "$1" |
	sed -E 's/^([0-9]+):([0-9]+) +write\(1<[^>]*>, "touch (0x[0-9a-f]+) ([0-9]+) ([rw]).*/--touch \1:\2:\3,\4:\5/; s/:r$//'
