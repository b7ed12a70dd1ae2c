#!/bin/bash
# bench-migrate.sh - the migrator's benchmark (not a test), each row beside its baseline
# measured in the same run on the same private s3rver and nfs-ganesha (started through the
# test harness):
#   1. crawl + migrate NOBJ objects of 4 KiB (target: >= 300 files/s)
#   2. migrate one SIZE_MB object (target: >= 0.8x the slower of a curl GET of it and an
#      nfs-cp write of the same bytes to the export), RUNS times, each time a fresh object
#      right after its two baselines; medians
# Run from a build tree, or set abs_top_builddir. NOBJ, SIZE_MB, RUNS, WORKERS change the
# sizes.
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
NOBJ=${NOBJ:-10000}
SIZE_MB=${SIZE_MB:-1024}
WORKERS=${WORKERS:-8}
RUNS=${RUNS:-3}
B=$H_BUCKET
CTL=$FERRYCTL

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$H_MNT" | awk -v k="$1" '$1 == k { print $2 }'; }

# --- data ------------------------------------------------------------------------------
echo "seeding $NOBJ objects of 4 KiB and $RUNS of $SIZE_MB MiB..." >&2
head -c 4096 /dev/urandom >"$H_TMP/4k"
seq -w 1 "$NOBJ" | awk '{ print "d" substr($0, length($0)) "/obj-" $0 }' |
	xargs -P 16 -I{} curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" \
	--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	-T "$H_TMP/4k" "$H_S3_URL/$B/small/{}" -o /dev/null
head -c $((SIZE_MB << 20)) /dev/urandom >"$H_TMP/big"
for i in $(seq 1 "$RUNS"); do h_seed_s3 "big/big-$i.bin" "$H_TMP/big"; done

# --- 1. the crawl of NOBJ small objects -------------------------------------------------
h_mount "workers=$WORKERS,log_level=notice"
t0=$(now)
"$CTL" migrate --all --prefix small --wait "$H_MNT" >/dev/null || echo "the crawl failed" >&2
t_crawl=$(since "$t0")
n=$(find "$H_EXPORT/small" -type f | wc -l)
[ "$n" = "$NOBJ" ] || echo "only $n of $NOBJ objects migrated" >&2

# --- 2. one big object, RUNS times, each beside its baselines ---------------------------
sleep 5    # let the crawl's load settle
for i in $(seq 1 "$RUNS"); do
	t0=$(now)
	curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o /dev/null "$H_S3_URL/$B/big/big-$i.bin"
	since "$t0" >>"$H_TMP/t_curl"
	t0=$(now)
	nfs-cp "$H_TMP/big" "nfs://127.0.0.1$H_EXPORT/nfscp-$i.bin?nfsport=$H_NFS_PORT&mountport=$H_MNT_PORT" >/dev/null
	since "$t0" >>"$H_TMP/t_nfscp"
	sync
	t0=$(now)
	"$CTL" migrate --wait "$H_MNT/big/big-$i.bin" >/dev/null || echo "the big migration failed" >&2
	since "$t0" >>"$H_TMP/t_big"
	cmp -s "$H_TMP/big" "$H_EXPORT/big/big-$i.bin" || echo "the copy of big-$i.bin differs" >&2
	echo "run $i: migrate $(tail -n 1 "$H_TMP/t_big") s, curl $(tail -n 1 "$H_TMP/t_curl") s, nfs-cp $(tail -n 1 "$H_TMP/t_nfscp") s" >&2
done
h_umount
t_curl=$(median <"$H_TMP/t_curl")
t_nfscp=$(median <"$H_TMP/t_nfscp")
t_big=$(median <"$H_TMP/t_big")

slower=$(awk -v a="$t_curl" -v b="$t_nfscp" 'BEGIN { print (a > b ? a : b) }')
echo "migration benchmark ($WORKERS workers; load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-44s %10s %12s\n' "row" "seconds" "rate"
printf '%-44s %10s %12s\n' "crawl + migrate $NOBJ x 4 KiB" "$t_crawl" "$(ratio "$NOBJ" "$t_crawl") files/s"
printf '%-44s %10s %12s\n' "migrate one $SIZE_MB MiB object (median of $RUNS)" "$t_big" "$(ratio "$SIZE_MB" "$t_big") MiB/s"
printf '%-44s %10s %12s\n' "  baseline: curl GET of it" "$t_curl" "$(ratio "$SIZE_MB" "$t_curl") MiB/s"
printf '%-44s %10s %12s\n' "  baseline: nfs-cp write of it" "$t_nfscp" "$(ratio "$SIZE_MB" "$t_nfscp") MiB/s"
echo "small files: $(ratio "$NOBJ" "$t_crawl") files/s (target >= 300)"
echo "big object: $(ratio "$slower" "$t_big")x the slower baseline (target >= 0.8)"
