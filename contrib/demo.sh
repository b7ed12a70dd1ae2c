#!/bin/bash
# demo.sh - the README's demo: build ferryfs, start a local S3 (s3rver) and NFS server
# (nfs-ganesha) seeded with sample files, mount ferryfs on /tmp/ferryfs-demo/mnt, and show
# reads falling through NFS to S3. The mount and the servers stay up for you to explore;
# `contrib/demo.sh stop` takes everything down again.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
DEMO=/tmp/ferryfs-demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

stop_demo() {
	[ -f "$DEMO/demo.env" ] || { echo "demo: nothing to stop"; return 0; }
	# shellcheck disable=SC1091
	source "$DEMO/demo.env"
	if grep -q " $DEMO/mnt fuse" /proc/mounts; then
		fusermount3 -u "$DEMO/mnt" || fusermount3 -uz "$DEMO/mnt"
	fi
	for p in ${FERRY_PID:-} ${S3_PID:-} ${GANESHA_PID:-}; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for p in ${FERRY_PID:-} ${S3_PID:-} ${GANESHA_PID:-}; do kill -9 "$p" 2>/dev/null || true; done
	if [ "${STARTED_RPCBIND:-0}" = 1 ] && ! pgrep -x ganesha.nfsd >/dev/null; then
		pkill -x rpcbind || true
	fi
	rm -rf "$DEMO"
	echo "demo: stopped; the mount, both servers and $DEMO are gone"
}

if [ "${1:-}" = stop ]; then
	stop_demo
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "demo: run as root (nfs-ganesha and FUSE need it)" >&2; exit 1; }
[ -f "$DEMO/demo.env" ] && stop_demo

say "Installing dependencies and building ferryfs"
contrib/install-deps.sh
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure --quiet; } && make -j"$(nproc)" >/dev/null)
echo "built $TOP/build/ferryfs"

say "Starting a local S3 (s3rver) and NFS server (nfs-ganesha)"
export abs_top_srcdir=$TOP abs_top_builddir=$TOP/build
# shellcheck source=../tests/lib/harness.sh
source "$TOP/tests/lib/harness.sh"
set +u
mkdir -p "$DEMO"
H_TMP=$DEMO
H_BUCKET=app-data
h_start_s3
h_start_nfs
cat >"$DEMO/demo.env" <<EOF
S3_PID=$H_S3_PID
GANESHA_PID=$H_GANESHA_PID
STARTED_RPCBIND=$H_STARTED_RPCBIND
EOF
echo "S3:  $H_S3_URL, bucket $H_BUCKET"
echo "NFS: $H_NFS_URL"

say "Seeding the old store (S3) and the new store (NFS)"
printf 'Quarterly report Q1: written in the S3 era.\n' | h_seed_s3 reports/q1.txt
printf 'Quarterly report Q2: written in the S3 era.\n' | h_seed_s3 reports/q2.txt
printf 'Welcome (old version, still in S3)\n' | h_seed_s3 README.txt
head -c 2000000 /dev/urandom >"$DEMO/beach.jpg"
h_seed_s3 photos/beach.jpg "$DEMO/beach.jpg"
printf "taken in 2023\n" | h_seed_s3 photos/2023/caption.txt
printf 'Quarterly report Q3: written after the move, on NFS.\n' | h_seed_nfs reports/q3.txt
printf 'Welcome (new version, already on NFS)\n' | h_seed_nfs README.txt
run /usr/bin/aws --endpoint-url "$H_S3_URL" s3 ls --recursive "s3://$H_BUCKET/"
run nfs-ls -R "$H_NFS_URL"

say "Mounting ferryfs on $DEMO/mnt"
mkdir -p "$DEMO/mnt" "$DEMO/state"
run "$TOP/build/ferryfs" "$DEMO/mnt" -o "s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=$H_NFS_URL,state_dir=$DEMO/state"
h_wait_for 20 grep -q " $DEMO/mnt fuse" /proc/mounts || { echo "demo: mount failed (see syslog)"; exit 1; }
FERRY_PID=$(pgrep -n -f "ferryfs $DEMO/mnt" || true)
echo "FERRY_PID=$FERRY_PID" >>"$DEMO/demo.env"

say "One tree: the union of both stores"
run ls -lR "$DEMO/mnt"
say "A file only in S3 is read from S3"
run cat "$DEMO/mnt/reports/q1.txt"
say "A file only on NFS is read from NFS"
run cat "$DEMO/mnt/reports/q3.txt"
say "When both stores have a file, the new store (NFS) wins"
run cat "$DEMO/mnt/README.txt"
say "Binary data from S3 comes through byte for byte"
run cmp "$DEMO/mnt/photos/beach.jpg" "$DEMO/beach.jpg" && echo "photos/beach.jpg: identical"
if command -v getfattr >/dev/null; then
	say "Where is each file served from?"
	for f in README.txt reports/q1.txt reports/q3.txt; do
		printf '%-16s %s\n' "$f" "$(getfattr --only-values -n user.ferryfs.source "$DEMO/mnt/$f" 2>/dev/null || echo '?')"
	done
fi

say "A write goes to the new store, and is written back to S3 (reversible)"
run sh -c "printf 'Quarterly report Q4: written through ferryfs.\\n' >'$DEMO/mnt/reports/q4.txt'"
run "$TOP/build/ferryctl" sync-back --wait "$DEMO/mnt"
run /usr/bin/aws --endpoint-url "$H_S3_URL" s3 cp "s3://$H_BUCKET/reports/q4.txt" -
say "Migrating the rest in the background: the crawl copies every S3 file to NFS"
run "$TOP/build/ferryctl" migrate --all --wait "$DEMO/mnt"
run "$TOP/build/ferryctl" status "$DEMO/mnt"
run nfs-ls -R "$H_NFS_URL"
if command -v getfattr >/dev/null; then
	for f in reports/q1.txt photos/beach.jpg; do
		printf '%-18s %s, served from %s\n' "$f" \
			"$(getfattr --only-values -n user.ferryfs.state "$DEMO/mnt/$f" 2>/dev/null || echo '?')" \
			"$(getfattr --only-values -n user.ferryfs.source "$DEMO/mnt/$f" 2>/dev/null || echo '?')"
	done
fi

say "The mount stays up"
cat <<EOF
Explore it:      ls $DEMO/mnt
S3 directly:     aws --endpoint-url $H_S3_URL s3 ls --recursive s3://$H_BUCKET/
                 (credentials: AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER)
NFS directly:    nfs-ls -R '$H_NFS_URL'
Stop everything: contrib/demo.sh stop
EOF
