#!/bin/bash
# bench-creates.sh - small-file creates through one mount (not a test; doc/namespace.md
# quotes it): N (300) `printf x > DIR/fN` into a new directory on a private s3rver +
# nfs-ganesha, timed, with the S3 requests the daemon sent (its stats). OPTS are extra
# mount options (the figures: mirror=off, so that only the foreground's requests count).
# Compare two builds by running it with abs_top_builddir set to each.
#   OPTS=mirror=off N=300 contrib/bench-creates.sh
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
h_mount "${OPTS:-}"
N=${N:-300}
now() { date +%s.%N; }
s3req() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$H_MNT" | awk '$1 == "s3_requests" { print $2 }'; }
mkdir "$H_MNT/c"
r0=$(s3req)
t0=$(now)
for i in $(seq "$N"); do printf 'x\n' >"$H_MNT/c/f$i"; done
t1=$(now)
r1=$(s3req)
awk -v a="$t0" -v b="$t1" -v n="$N" -v r=$((r1 - r0)) \
	'BEGIN { printf "%d creates in %.2f s: %.1f files/s, %.2f S3 requests a file\n", n, b - a, n / (b - a), r / n }'
h_umount
h_done
