#!/bin/bash
# bench-s3.sh - S3 read throughput of our client beside curl's command line, on a 256 MiB
# object in a private s3rver (started through the test harness). Not a timed test: it
# prints the medians of RUNS runs each and the ratio curl_time / our_time (>= 0.9 is the
# target: our client at least 90% as fast as curl).
#   contrib/bench-s3.sh            (from a build tree: BENCH_S3=path/to/bench_s3 otherwise)
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init
h_start_s3
BENCH=${BENCH_S3:-$H_BUILD/tests/bench/bench_s3}
[ -x "$BENCH" ] || h_bail "build tests/bench/bench_s3 first (make check builds it)"
RUNS=${RUNS:-5}
KEY=bench/object-256m
head -c $((256 << 20)) /dev/urandom >"$H_TMP/obj"
h_seed_s3 "$KEY" "$H_TMP/obj"
rm -f "$H_TMP/obj"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

curl_once() {
	curl -sS -o /dev/null -w '%{time_total}\n' --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$H_S3_URL/$H_BUCKET/$KEY"
}

# interleaved, so that load from anything else on the machine hits all three alike
: >"$H_TMP/curl.t"; : >"$H_TMP/stream.t"; : >"$H_TMP/ranged.t"
for i in $(seq "$RUNS"); do
	curl_once >>"$H_TMP/curl.t"
	"$BENCH" "$H_S3_URL" "$H_BUCKET" "$KEY" stream | cut -d' ' -f1 >>"$H_TMP/stream.t"
	"$BENCH" "$H_S3_URL" "$H_BUCKET" "$KEY" ranged 4 8 | cut -d' ' -f1 >>"$H_TMP/ranged.t"
done

c=$(median <"$H_TMP/curl.t")
s=$(median <"$H_TMP/stream.t")
r=$(median <"$H_TMP/ranged.t")
mbs() { awk -v t="$1" 'BEGIN { printf "%.0f", 256 * 1048576 / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "256 MiB GET from s3rver, median of $RUNS interleaved runs (load average: $(cut -d' ' -f1 /proc/loadavg)):"
printf '  %-32s %7.3f s  %5s MB/s\n' "curl (command line)" "$c" "$(mbs "$c")"
printf '  %-32s %7.3f s  %5s MB/s  %sx curl\n' "s3_get_stream (one stream)" "$s" "$(mbs "$s")" "$(ratio "$c" "$s")"
printf '  %-32s %7.3f s  %5s MB/s  %sx curl\n' "s3_get_range (4 threads x 8 MiB)" "$r" "$(mbs "$r")" "$(ratio "$c" "$r")"
echo "  every run (s): curl $(tr '\n' ' ' <"$H_TMP/curl.t")"
echo "                 stream $(tr '\n' ' ' <"$H_TMP/stream.t")"
echo "                 ranged $(tr '\n' ' ' <"$H_TMP/ranged.t")"
