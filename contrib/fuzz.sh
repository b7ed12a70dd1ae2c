#!/bin/bash
# fuzz.sh BUILDDIR [TARGET...] - run each libFuzzer target of a tree configured with
# CC=clang ./configure --enable-fuzzing (make fuzz calls this) for FUZZ_TIME seconds
# (default 30) over its seed corpus tests/fuzz/corpus/TARGET. New inputs go to
# BUILDDIR/tests/fuzz/work/TARGET (the source tree may be read-only); a crash, leak,
# sanitizer report or broken invariant leaves the input in BUILDDIR/tests/fuzz/work/ and
# fails. One summary line per target; exit 0 only when every target ran clean.
set -uo pipefail
build=$(cd "${1:?usage: fuzz.sh BUILDDIR [TARGET...]}" && pwd)
shift
src=$(cd "$(dirname "$0")/.." && pwd)
time=${FUZZ_TIME:-30}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(xml cfg naming sigv4)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
[ -x /usr/bin/llvm-symbolizer-14 ] && export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-/usr/bin/llvm-symbolizer-14}

failed=0
for t in "${targets[@]}"; do
	t=${t#fuzz_}
	bin=$build/tests/fuzz/fuzz_$t
	work=$build/tests/fuzz/work/$t
	seeds=$src/tests/fuzz/corpus/$t
	log=$build/tests/fuzz/work/$t.log
	mkdir -p "$work"
	if [ ! -x "$bin" ]; then
		echo "fuzz $t: FAILED ($bin not built)"
		failed=1
		continue
	fi
	dict=()
	[ -f "$src/tests/fuzz/$t.dict" ] && dict=(-dict="$src/tests/fuzz/$t.dict")
	"$bin" -max_total_time="$time" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
		-print_final_stats=1 "${dict[@]}" -artifact_prefix="$build/tests/fuzz/work/$t-" \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log")
	cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	corpus=$(find "$work" -type f | wc -l)
	if [ "$rc" = 0 ]; then
		echo "fuzz $t: ok, ${execs:-?} runs in ${time}s, coverage ${cov:-?} edges, work corpus $corpus inputs"
	else
		echo "fuzz $t: FAILED (exit $rc); the end of $log follows"
		tail -n 40 "$log"
		failed=1
	fi
done
exit $failed
