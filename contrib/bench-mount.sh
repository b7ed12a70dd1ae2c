#!/bin/bash
# bench-mount.sh - the mount's own rows of the benchmark, each beside its baseline measured
# in the same run on the same private s3rver and nfs-ganesha (started through the test
# harness). Not a timed test: medians of RUNS runs, and ratios.
#   1. sequential read of a 256 MiB S3-only file through a cold mount  vs  curl GET
#   2. ls -l of a cold 10,000-object S3 directory  vs  the bare paginated ListObjectsV2
#   3. stat of NFS files through the mount (time per call; the export's local disk as floor)
# Run from a build tree (make bench does), or set abs_top_builddir.
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
RUNS=${RUNS:-5}
NOBJ=${NOBJ:-10000}
SIZE_MB=${SIZE_MB:-256}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.4f\n", b - a }'; }
s3curl() {
	curl -sS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# --- data ----------------------------------------------------------------------------
head -c $((SIZE_MB << 20)) /dev/urandom >"$H_TMP/big"
h_seed_s3 bench/big.bin "$H_TMP/big"
rm -f "$H_TMP/big"
echo "seeding $NOBJ objects..." >&2
seq -w 1 "$NOBJ" | xargs -P 16 -I{} sh -c 'printf "%s\n" {} | curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" \
	--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	-T - "$0/$1/many/obj-{}.txt" >/dev/null' "$H_S3_URL" "$H_BUCKET"
for i in $(seq 1 1000); do echo "$i" >"$H_EXPORT/nfsfile-$i"; done

# --- 1. sequential read ------------------------------------------------------------------
for i in $(seq "$RUNS"); do
	s3curl -o /dev/null -w '%{time_total}\n' "$H_S3_URL/$H_BUCKET/bench/big.bin"
done >"$H_TMP/curl.t"
# migrate_on=never: the first read would otherwise queue the file, the migrator would copy
# it, and every later "cold" read would come from NFS instead of S3.
for i in $(seq "$RUNS"); do
	h_mount migrate_on=never
	t0=$(now)
	cat "$H_MNT/bench/big.bin" >/dev/null
	since "$t0"
	h_umount
done >"$H_TMP/read.t"

# --- 2. ls -l of a cold directory -------------------------------------------------------------
list_all() {
	local token="" out
	while :; do
		if [ -n "$token" ]; then
			out=$(s3curl -G "$H_S3_URL/$H_BUCKET" --data-urlencode list-type=2 --data-urlencode prefix=many/ \
				--data-urlencode delimiter=/ --data-urlencode "continuation-token=$token")
		else
			out=$(s3curl -G "$H_S3_URL/$H_BUCKET" --data-urlencode list-type=2 --data-urlencode prefix=many/ \
				--data-urlencode delimiter=/)
		fi
		token=$(printf '%s' "$out" | sed -n 's/.*<NextContinuationToken>\([^<]*\)<.*/\1/p')
		[ -n "$token" ] || break
	done
}
for i in $(seq "$RUNS"); do t0=$(now); list_all; since "$t0"; done >"$H_TMP/list.t"
for i in $(seq "$RUNS"); do
	h_mount
	t0=$(now)
	n=$(ls -l "$H_MNT/many" | wc -l)
	since "$t0"
	[ "$n" -ge "$NOBJ" ] || echo "ls -l listed $n entries, expected $NOBJ" >&2
	h_umount
done >"$H_TMP/ls.t"

# --- 3. stat of NFS files ---------------------------------------------------------------
for i in $(seq "$RUNS"); do
	h_mount
	t0=$(now)
	(cd "$H_MNT" && stat -c %s nfsfile-* >/dev/null)
	since "$t0"
	h_umount
done >"$H_TMP/stat.t"
for i in $(seq "$RUNS"); do
	t0=$(now)
	(cd "$H_EXPORT" && stat -c %s nfsfile-* >/dev/null)
	since "$t0"
done >"$H_TMP/statlocal.t"

c=$(median <"$H_TMP/curl.t"); r=$(median <"$H_TMP/read.t")
l=$(median <"$H_TMP/list.t"); s=$(median <"$H_TMP/ls.t")
st=$(median <"$H_TMP/stat.t"); sl=$(median <"$H_TMP/statlocal.t")
echo "mount rows, median of $RUNS runs (s3rver and nfs-ganesha on loopback):"
printf '  %-52s %8.3f s  %s MB/s\n' "curl GET ${SIZE_MB} MiB object" "$c" "$(awk -v t="$c" -v m="$SIZE_MB" 'BEGIN{printf "%.0f", m*1.048576/t}')"
printf '  %-52s %8.3f s  %s MB/s  %sx curl\n' "cat of the same S3-only file through a cold mount" "$r" \
	"$(awk -v t="$r" -v m="$SIZE_MB" 'BEGIN{printf "%.0f", m*1.048576/t}')" "$(ratio "$c" "$r")"
printf '  %-52s %8.3f s\n' "bare paginated ListObjectsV2 of $NOBJ keys (curl)" "$l"
printf '  %-52s %8.3f s  %sx the bare listing\n' "ls -l of the same directory through a cold mount" "$s" "$(ratio "$s" "$l")"
printf '  %-52s %8.3f ms\n' "stat of an NFS file through a cold mount, per call" "$st"
printf '  %-52s %8.3f ms\n' "stat of the same file on the export's local disk" "$sl"
