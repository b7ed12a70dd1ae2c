#!/bin/bash
# bench-nfs.sh - NFS read throughput of our pool/store beside libnfs's own nfs-cp, on a
# 256 MiB file in a private nfs-ganesha (started through the test harness). Not a timed
# test: both are timed as whole processes (start, mount, read, exit); it prints the medians of RUNS runs each and the ratio nfs-cp_time / our_time
# (>= 0.9 is the target: our reads at least 90% as fast as nfs-cp).
#   contrib/bench-nfs.sh        (from a build tree; BENCH_NFS=path/to/bench_nfs otherwise)
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init
h_start_nfs
BENCH=${BENCH_NFS:-$H_BUILD/tests/bench/bench_nfs}
[ -x "$BENCH" ] || h_bail "build tests/bench/bench_nfs first (make check builds it)"
h_need_cmd nfs-cp
RUNS=${RUNS:-5}
THREADS=${THREADS:-4}
head -c $((256 << 20)) /dev/urandom >"$H_EXPORT/big"
sync

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }

# nfs-cp cannot write to /dev/null (it creates its target): give it a file in RAM when
# there is one, so that it pays for as little local I/O as possible.
CPOUT=$H_TMP/cp.out
[ -d /dev/shm ] && [ -w /dev/shm ] && CPOUT=/dev/shm/ferryfs-bench-nfs.$$
nfscp_once() {
	local t0 t1
	rm -f "$CPOUT"
	t0=$(now)
	nfs-cp "${1%%\?*}/big?${1#*\?}" "$CPOUT" >/dev/null || return 1
	t1=$(now)
	rm -f "$CPOUT"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# Ours, timed the same way as nfs-cp: the whole process (start, mount, read, exit).
ours_once() {
	local t0 t1
	t0=$(now)
	"$BENCH" "$@" >/dev/null || return 1
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

run() {   # run LABEL URL_FOR_NFSCP URL_FOR_US
	local label=$1 cpurl=$2 url=$3 c s p
	for i in $(seq "$RUNS"); do nfscp_once "$cpurl"; done >"$H_TMP/cp.t"
	for i in $(seq "$RUNS"); do ours_once "$url" /big seq; done >"$H_TMP/seq.t"
	for i in $(seq "$RUNS"); do ours_once "$url" /big par "$THREADS"; done >"$H_TMP/par.t"
	c=$(median <"$H_TMP/cp.t")
	s=$(median <"$H_TMP/seq.t")
	p=$(median <"$H_TMP/par.t")
	echo "$label: 256 MiB read, median of $RUNS runs:"
	printf '  %-34s %7.3f s  %5s MB/s\n' "nfs-cp (libnfs command line)" "$c" "$(mbs "$c")"
	printf '  %-34s %7.3f s  %5s MB/s  %sx nfs-cp\n' "store pread, 1 context, 1 MiB" "$s" "$(mbs "$s")" "$(ratio "$c" "$s")"
	printf '  %-34s %7.3f s  %5s MB/s  %sx nfs-cp\n' "store pread, $THREADS contexts in parallel" "$p" "$(mbs "$p")" "$(ratio "$c" "$p")"
}
mbs() { awk -v t="$1" 'BEGIN { printf "%.0f", 256 * 1048576 / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

run "NFSv3" "$H_NFS_URL" "$H_NFS_URL"
V4CP="nfs://127.0.0.1/export?version=4&nfsport=$H_NFS_PORT"
run "NFSv4" "$V4CP" "$H_NFS4_URL"
