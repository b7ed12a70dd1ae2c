#!/bin/bash
# bench.sh - `make bench`: every benchmark of the project, one after the other, each printing
# its figures beside the baseline it measured in the same run (medians of RUNS runs).
# doc/benchmarks.md holds the last figures and the machine they came from.
# Run from a build tree (make bench does); RUNS=N changes the repetitions.
set -u
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
here=$abs_top_srcdir/contrib
status=0
echo "ferryfs benchmarks on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
for b in bench-s3.sh bench-nfs.sh bench-mount.sh bench-migrate.sh bench-mirror.sh bench-compare.sh; do
	echo
	echo "== $b"
	bash "$here/$b" || { echo "$b failed"; status=1; }
done
exit $status
