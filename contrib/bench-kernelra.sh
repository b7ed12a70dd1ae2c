#!/bin/bash
# bench-kernelra.sh - the A/B behind kernel_readahead's figures (not a test;
# doc/benchmarks.md and doc/readahead.md quote it): ROUNDS x (nfs-cp of a SIZE_MB new-store
# file to tmpfs, then a cold `cat` of it through ferryfs with kernel_readahead=0 (A, the
# kernel's 128 KiB) and with the default 1M (B), the two in alternating order) on one
# private s3rver + nfs-ganesha, a fresh mount for each read. Run from a build tree, or set
# abs_top_builddir.
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
SIZE_MB=${SIZE_MB:-512}; ROUNDS=${ROUNDS:-10}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2 }'; }
head -c $((SIZE_MB << 20)) /dev/urandom >"$H_EXPORT/m.bin"
sync
url="nfs://127.0.0.1$H_EXPORT/m.bin?nfsport=$H_NFS_PORT&mountport=$H_MNT_PORT"
for i in $(seq 1 "$ROUNDS"); do
	t0=$(now); nfs-cp "$url" /dev/shm/ferry-bench-kra >/dev/null; tn=$(since "$t0")
	rm -f /dev/shm/ferry-bench-kra
	echo "$tn" >>"$H_TMP/t.nfscp"
	out=""
	order="A B"; [ $((i % 2)) = 0 ] && order="B A"
	for v in $order; do
		if [ "$v" = A ]; then o=,kernel_readahead=0; else o=; fi
		h_mount "migrate_on=never$o"
		t0=$(now); cat "$H_MNT/m.bin" >/dev/null; tf=$(since "$t0")
		h_umount
		echo "$tf" >>"$H_TMP/t.$v"
		out+="$v $tf  "
	done
	echo "round $i: nfs-cp $tn  $out load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "medians: nfs-cp $(median <"$H_TMP/t.nfscp")  A (kernel_readahead=0) $(median <"$H_TMP/t.A")  B (1M) $(median <"$H_TMP/t.B")"
