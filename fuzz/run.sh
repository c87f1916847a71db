#!/usr/bin/env bash
# Long fuzzing runs of lmm's input parsers and loaders (cargo-fuzz,
# libFuzzer, nightly Rust). Not part of CI: see the README's "Long runs".
#
# Usage: fuzz/run.sh [SECONDS [TARGET...]]   (default 600 s each, all four:
#        elf strace lackey scenario), one target at a time.
#        FUZZ_ARGS="-fork=1 -ignore_crashes=1" fuzz/run.sh ... goes on after
#        a crash (libFuzzer's fork mode) to collect every finding.
# Seeds come from the repository (exec corpus, traces, scenarios); the
# growing corpus is kept in fuzz/corpus/TARGET, crashes in
# fuzz/artifacts/TARGET, a log per target in fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(elf strace lackey scenario)
mkdir -p fuzz/logs

seed() {
	local t=$1 d=fuzz/corpus/$1
	mkdir -p "$d"
	case $t in
	elf)
		cargo run -q -p machine --example exec_corpus -- 7 400 "$d" > /dev/null
		# Keep the seeds small: cut the static binaries after 64 KiB.
		for f in tests/fixtures/bin/*; do head -c 65536 "$f" > "$d/fixture-$(basename "$f")"; done
		;;
	strace)
		for f in tests/fixtures/traces/*.strace; do head -c 32768 "$f" > "$d/$(basename "$f")"; done
		;;
	lackey)
		head -c 32768 tests/fixtures/lackey/touch.lk > "$d/touch.lk"
		{ gzip -dc tests/fixtures/lackey/true.lk.gz || true; } | head -c 32768 > "$d/true.lk"
		;;
	scenario)
		# The first byte picks the mode: even = script text, odd = a call
		# program built from the bytes.
		for f in scenarios/*.rhai; do { printf '\0'; cat "$f"; } > "$d/$(basename "$f")"; done
		for i in 1 2 3 4 5 6 7 8; do head -c 64 /dev/urandom | { printf '\1'; cat; } > "$d/program$i"; done
		;;
	esac
}

for t in "${targets[@]}"; do
	case $t in
	elf) max_len=131072 ;;
	scenario) max_len=4096 ;;
	*) max_len=65536 ;;
	esac
	seed "$t"
	mkdir -p "fuzz/artifacts/$t"
	echo "== $t for $secs s"
	(cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
		-max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len="$max_len" \
		-print_final_stats=1 -artifact_prefix="artifacts/$t/" ${FUZZ_ARGS:-}) > "fuzz/logs/$t.log" 2>&1 || true
	grep -E "^(stat::|Done|INFO: fuzzed|INFO: exiting|==[0-9]+== ERROR|SUMMARY|Test unit written|#[0-9]+: cov)" "fuzz/logs/$t.log" | tail -12
done
