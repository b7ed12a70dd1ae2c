#!/bin/bash
# bench-mirror.sh - the foreground cost of journaling and write-back: the same
# writes through the mount with mirror=off (journal only) and mirror=async (journal and
# background write-back to S3), alternated run by run on one private s3rver and
# nfs-ganesha (started through the test harness), medians of RUNS. Also the write-back lag
# of a steady stream of small files (the stats' journal_oldest_s, sampled). Not a test.
#   1. create NSMALL files of 4 KiB in a new directory
#   2. write one BIG_MB file (dd, 1 MiB blocks; close included)
# Run from a build tree (make bench runs it), or set abs_top_builddir.
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
RUNS=${RUNS:-3}
NSMALL=${NSMALL:-2000}
BIG_MB=${BIG_MB:-256}
STREAM_S=${STREAM_S:-20}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.4f\n", b - a }'; }
stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$H_MNT" | awk -v k="$1" '$1 == k { print $2 }'; }
head -c 4096 /dev/urandom >"$H_TMP/4k"

small() {
	local d=$H_MNT/small-$1 t0 i
	mkdir "$d"
	t0=$(now)
	for ((i = 0; i < NSMALL; i++)); do cat "$H_TMP/4k" >"$d/f$i"; done
	since "$t0"
}
big() {
	local t0
	t0=$(now)
	dd if=/dev/zero of="$H_MNT/big-$1" bs=1M count="$BIG_MB" status=none
	since "$t0"
}

for r in $(seq "$RUNS"); do
	for mode in off async; do
		h_mount "mirror=$mode,migrate_on=never"
		small "$mode-$r" >>"$H_TMP/small.$mode"
		big "$mode-$r" >>"$H_TMP/big.$mode"
		h_umount
	done
done

# a steady stream: 20 small files a second for STREAM_S seconds, the lag sampled each second
h_mount "mirror=async,migrate_on=never"
mkdir "$H_MNT/stream"
maxlag=0 maxpend=0
for ((s = 0; s < STREAM_S; s++)); do
	for ((i = 0; i < 20; i++)); do cat "$H_TMP/4k" >"$H_MNT/stream/s$s-$i"; done
	sleep 1
	lag=$(stat_of journal_oldest_s)
	pend=$(stat_of journal_pending)
	[ "${lag:-0}" -gt "$maxlag" ] && maxlag=$lag
	[ "${pend:-0}" -gt "$maxpend" ] && maxpend=$pend
done
t0=$(now)
h_wait_for 120 test "$(stat_of journal_pending)" = 0
drain=$(since "$t0")
n=$(h_aws s3 ls "s3://$H_BUCKET/stream/" | wc -l)
h_umount

so=$(median <"$H_TMP/small.off"); sa=$(median <"$H_TMP/small.async")
bo=$(median <"$H_TMP/big.off"); ba=$(median <"$H_TMP/big.async")
echo "journaling and write-back, medians of $RUNS alternated runs; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-44s %8.3f s   %s files/s\n' "create $NSMALL x 4 KiB, mirror=off" "$so" "$(awk -v t="$so" -v n="$NSMALL" 'BEGIN{printf "%.0f", n/t}')"
printf '  %-44s %8.3f s   %s files/s   %sx mirror=off\n' "create $NSMALL x 4 KiB, mirror=async" "$sa" \
	"$(awk -v t="$sa" -v n="$NSMALL" 'BEGIN{printf "%.0f", n/t}')" "$(ratio "$so" "$sa")"
printf '  %-44s %8.3f s   %s MB/s\n' "write $BIG_MB MiB, mirror=off" "$bo" "$(awk -v t="$bo" -v m="$BIG_MB" 'BEGIN{printf "%.0f", m*1.048576/t}')"
printf '  %-44s %8.3f s   %s MB/s   %sx mirror=off\n' "write $BIG_MB MiB, mirror=async" "$ba" \
	"$(awk -v t="$ba" -v m="$BIG_MB" 'BEGIN{printf "%.0f", m*1.048576/t}')" "$(ratio "$bo" "$ba")"
echo "  steady stream of 20 files/s for $STREAM_S s: lag at most $maxlag s, at most $maxpend entries pending;"
echo "    drained $drain s after the stream stopped; S3 lists $n of $((STREAM_S * 20)) files"
