#!/bin/bash
# bench-bigcopy.sh - the large-object migration alone, for A/B of the copy path (not a
# test; doc/benchmarks.md quotes it): ROUNDS x (curl GET of a fresh SIZE_MB object, nfs-cp
# of the same bytes, `ferryctl migrate --wait` of it) on one private s3rver + nfs-ganesha
# and a fresh mount (2 workers), with each process's CPU seconds and minor faults from
# /proc. MOPTS adds mount options; KEEPLOG=1 keeps the daemon's log in
# /tmp/bigbench-ferryfs.log; PERF=1 records `perf record -a` of each migration.
# Run from a build tree, or set abs_top_builddir.
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
SIZE_MB=${SIZE_MB:-1024}; ROUNDS=${ROUNDS:-3}; B=$H_BUCKET
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
ticks() { for p in $(pgrep -f "$H_TMP"); do [ -r /proc/$p/stat ] && awk -v p=$p '{ print $2, $14+$15, $10 }' /proc/$p/stat; done | sort; }
head -c $((SIZE_MB << 20)) /dev/urandom >"$H_TMP/big"
for i in $(seq 1 $ROUNDS); do h_seed_s3 big/big-$i.bin "$H_TMP/big"; done
h_mount "workers=2,log_level=notice${MOPTS:+,$MOPTS}"
for i in $(seq 1 $ROUNDS); do
  ticks >"$H_TMP/t0"; t0=$(now); curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
	-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o /dev/null "$H_S3_URL/$B/big/big-$i.bin"; tc=$(since $t0); ticks >"$H_TMP/t1"; ccpu=$(join "$H_TMP/t0" "$H_TMP/t1" | awk '$4>$2 { printf "%s=%.2f/%dflt ", $1, ($4-$2)/100, $5-$3 }')
  sync; ticks >"$H_TMP/t0"; t0=$(now)
  nfs-cp "$H_TMP/big" "nfs://127.0.0.1$H_EXPORT/nfscp-$i.bin?nfsport=$H_NFS_PORT&mountport=$H_MNT_PORT" >/dev/null; tn=$(since $t0); ticks >"$H_TMP/t1"; ncpu=$(join "$H_TMP/t0" "$H_TMP/t1" | awk '$4>$2 { printf "%s=%.2f/%dflt ", $1, ($4-$2)/100, $5-$3 }')
  sync
  ticks >"$H_TMP/t0"
  [ -n "${PERF:-}" ] && { perf record -a -g -F 499 -e cpu-clock -o /tmp/perf-big.data 2>/dev/null & pp=$!; sleep 0.5; }
  t0=$(now); "$FERRYCTL" migrate --wait "$H_MNT/big/big-$i.bin" >/dev/null || echo FAILED; tm=$(since $t0)
  ticks >"$H_TMP/t1"
  [ -n "${PERF:-}" ] && { kill -INT $pp; wait $pp; }
  cpu=$(join "$H_TMP/t0" "$H_TMP/t1" | awk '{ printf "%s=%.2f/%dflt ", $1, ($4-$2)/100, $5-$3 }')
  echo "round $i: migrate $tm  curl $tc  nfs-cp $tn  ratio $(awk -v a=$tc -v b=$tn -v m=$tm 'BEGIN{s=a>b?a:b; printf "%.2f", s/m}')  cpu: $cpu load $(cut -d' ' -f1 /proc/loadavg)"; echo "   curl cpu: $ccpu  nfs-cp cpu: $ncpu"
done
cmp "$H_EXPORT/big/big-1.bin" "$H_TMP/big" && echo "content ok"; [ -n "${KEEPLOG:-}" ] && cp "$H_TMP/ferryfs.log" /tmp/bigbench-ferryfs.log
h_umount
