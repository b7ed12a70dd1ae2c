#!/bin/bash
# demo.sh - the README's demo: build ferryfs, start a local S3 (s3rver) and NFS server
# (nfs-ganesha) seeded with sample files, mount ferryfs on /tmp/ferryfs-demo/mnt, and show
# reads falling through NFS to S3. The mount and the servers stay up for you to explore;
# `contrib/demo.sh stop` takes everything down again.
#
# Every process is recorded in $DEMO/demo.env as it starts. A step that fails prints its
# cause and the log to read, stops what was started and keeps the logs in $DEMO.
# FERRY_DEMO_DIR (default /tmp/ferryfs-demo) and FERRY_DEMO_BUILD=DIR (a built tree to use
# as is: no dependency install, no build) are for the tests.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
DEMO=${FERRY_DEMO_DIR:-/tmp/ferryfs-demo}
BUILD=${FERRY_DEMO_BUILD:-$TOP/build}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# quote: an argument as it can be pasted into a shell ('&' in a URL, spaces...)
quote() {
	if [[ $1 =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\\\'\'}"
	fi
}
run() {
	local a line='$'
	for a in "$@"; do line+=" $(quote "$a")"; done
	printf '%s\n' "$line"
	"$@"
}

# stop_demo: the mount and the processes recorded in demo.env, by their pid.
stop_demo() {
	[ -f "$DEMO/demo.env" ] || { echo "demo: nothing to stop"; return 0; }
	# shellcheck disable=SC1091
	source "$DEMO/demo.env"
	if grep -q " $DEMO/mnt fuse" /proc/mounts; then
		fusermount3 -u "$DEMO/mnt" 2>/dev/null || fusermount3 -uz "$DEMO/mnt"
	fi
	local p pids="${FERRY_PID:-} ${S3_PID:-} ${GANESHA_PID:-}"
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$p" 2>/dev/null || true
	done
	if [ "${STARTED_RPCBIND:-0}" = 1 ] && ! pgrep -x ganesha.nfsd >/dev/null; then
		pkill -x rpcbind || true
	fi
	rm -f "$DEMO/demo.env"
}

if [ "${1:-}" = stop ]; then
	stop_demo
	[ -d "$DEMO" ] && rm -rf "$DEMO" &&
		echo "demo: stopped; the mount, both servers and $DEMO are gone"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "demo: run as root (nfs-ganesha and FUSE need it)" >&2; exit 1; }
if [ -f "$DEMO/demo.env" ]; then
	echo "demo: stopping the previous demo first"
	stop_demo
fi
rm -rf "$DEMO"
mkdir -p "$DEMO"

# Failure: say what failed and where to look, stop what started, keep the logs. Said on
# the demo's own stderr (fd 3), whatever a failing step had redirected.
exec 3>&2
STEP="starting"
LOGS="the output above"
FAILED_CMD=
record() { printf '%s=%s\n' "$1" "$2" >>"$DEMO/demo.env"; }
on_exit() {
	local rc=$?
	trap - EXIT
	[ "$rc" = 0 ] && return 0
	{
		echo
		echo "demo: FAILED while $STEP (exit $rc)${FAILED_CMD:+: $FAILED_CMD}"
		echo "demo: see $LOGS"
		[ -s "$DEMO/why" ] && echo "demo: cause: $(cat "$DEMO/why")"
	} >&3
	# what the harness started but had not reported yet
	[ -n "${H_S3_PID:-}" ] && record S3_PID "$H_S3_PID"
	[ -s "$DEMO/ganesha.pid" ] && record GANESHA_PID "$(cat "$DEMO/ganesha.pid")"
	stop_demo >/dev/null 2>&1 || true
	echo "demo: stopped what was started; the logs are kept in $DEMO" >&3
	exit "$rc"
}
trap on_exit EXIT
trap 'FAILED_CMD=$BASH_COMMAND' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${FERRY_DEMO_BUILD:-}" ]; then
	say "Installing dependencies and building ferryfs"
	STEP="installing the dependencies (contrib/install-deps.sh)"
	echo "Debian packages (apt-get) and s3rver (npm): a minute or two the first time"
	contrib/install-deps.sh
	STEP="building ferryfs"
	LOGS="$DEMO/build.log"
	echo "building in $BUILD (about a minute the first time; log: $DEMO/build.log)"
	{ [ -x configure ] && [ configure -nt configure.ac ]; } ||
		autoreconf -fi >"$DEMO/build.log" 2>&1
	mkdir -p "$BUILD"
	(cd "$BUILD" && { [ -f Makefile ] || ../configure --quiet; } && make -j"$(nproc)") \
		>>"$DEMO/build.log" 2>&1
	echo "built $BUILD/ferryfs and $BUILD/ferryctl"
fi
FERRYCTL=$BUILD/ferryctl

say "Starting a local S3 (s3rver) and NFS server (nfs-ganesha)"
export abs_top_srcdir=$TOP abs_top_builddir=$BUILD
# shellcheck source=../tests/lib/harness.sh
source "$TOP/tests/lib/harness.sh"
set +u
# the harness's ways out, for a demo: the cause on stderr and in $DEMO/why, then the trap
h_bail() { echo "$*" >"$DEMO/why"; exit 1; }
h_cannot() { echo "cannot run here: $*" >"$DEMO/why"; exit 1; }
H_TMP=$DEMO
H_BUCKET=app-data
STEP="starting s3rver"
LOGS="$DEMO/s3rver.log"
h_start_s3
record S3_PID "$H_S3_PID"
STEP="starting nfs-ganesha"
LOGS="$DEMO/ganesha.log"
h_start_nfs 2>>"$DEMO/ganesha.log"     # its start-up chatter: in its log, not here
record GANESHA_PID "$H_GANESHA_PID"
record STARTED_RPCBIND "$H_STARTED_RPCBIND"
AWS=(env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
	aws --endpoint-url "$H_S3_URL")
echo "S3:  $H_S3_URL, bucket $H_BUCKET"
echo "NFS: $(quote "$H_NFS_URL")"

say "Seeding the old store (S3) and the new store (NFS)"
STEP="seeding the stores"
LOGS="$DEMO/s3rver.log and $DEMO/ganesha.log"
printf 'Quarterly report Q1: written in the S3 era.\n' | h_seed_s3 reports/q1.txt
printf 'Quarterly report Q2: written in the S3 era.\n' | h_seed_s3 reports/q2.txt
printf 'Welcome (old version, still in S3)\n' | h_seed_s3 README.txt
head -c 2000000 /dev/urandom >"$DEMO/beach.jpg"
h_seed_s3 photos/beach.jpg "$DEMO/beach.jpg"
printf "taken in 2023\n" | h_seed_s3 photos/2023/caption.txt
printf 'Quarterly report Q3: written after the move, on NFS.\n' | h_seed_nfs reports/q3.txt
printf 'Welcome (new version, already on NFS)\n' | h_seed_nfs README.txt
run "${AWS[@]}" s3 ls --recursive "s3://$H_BUCKET/"
run nfs-ls -R "$H_NFS_URL"

say "Mounting ferryfs on $DEMO/mnt"
STEP="mounting ferryfs"
LOGS="$DEMO/ferryfs.log"
mkdir -p "$DEMO/mnt" "$DEMO/state"
# in the foreground (-f) in the background, so that its log goes to a file of the demo
opts="s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=$H_NFS_URL"
opts+=",state_dir=$DEMO/state,log=stderr"
printf '$ %s %s -f -o %s >>%s 2>&1 &\n' "$BUILD/ferryfs" "$DEMO/mnt" "$(quote "$opts")" \
	"$DEMO/ferryfs.log"
setsid "$BUILD/ferryfs" "$DEMO/mnt" -f -o "$opts" >>"$DEMO/ferryfs.log" 2>&1 &
FERRY_PID=$!
record FERRY_PID "$FERRY_PID"
h_wait_for 20 grep -q " $DEMO/mnt fuse" /proc/mounts ||
	h_bail "the mount did not appear in 20 s: $(tail -n 3 "$DEMO/ferryfs.log" | tr '\n' ' ')"

# where a file is served from, and its migration state (user.ferryfs.*)
xattr() { getfattr --only-values -n "user.ferryfs.$2" "$DEMO/mnt/$1" 2>/dev/null || echo '?'; }
where() { printf '%-18s %s, served from %s\n' "$1" "$(xattr "$1" state)" "$(xattr "$1" source)"; }

STEP="showing the mount"
say "One tree: the union of both stores"
run ls -lR "$DEMO/mnt"
say "A file only in S3 is read from S3"
echo "before the read:"
where reports/q1.txt
run cat "$DEMO/mnt/reports/q1.txt"
for _ in $(seq 50); do
	[ "$(xattr reports/q1.txt source)" = nfs ] && break
	sleep 0.1
done
echo "after the read:"
where reports/q1.txt
echo "(the read came from S3; opening the file also queued it for migration (migrate_on=open,"
echo " the default), so the migrator copied it to NFS right after: the next open reads NFS)"
say "A file only on NFS is read from NFS"
run cat "$DEMO/mnt/reports/q3.txt"
where reports/q3.txt
say "When both stores have a file, the new store (NFS) wins"
run cat "$DEMO/mnt/README.txt"
where README.txt
say "Binary data from S3 comes through byte for byte"
run cmp "$DEMO/mnt/photos/beach.jpg" "$DEMO/beach.jpg"
echo "photos/beach.jpg: identical"

say "A write goes to the new store, and is written back to S3 (reversible)"
STEP="writing through the mount"
echo "\$ echo 'Quarterly report Q4: written through ferryfs.' > $DEMO/mnt/reports/q4.txt"
echo 'Quarterly report Q4: written through ferryfs.' >"$DEMO/mnt/reports/q4.txt"
run "$FERRYCTL" sync-back --wait "$DEMO/mnt"
run "${AWS[@]}" s3 cp "s3://$H_BUCKET/reports/q4.txt" -
say "Migrating the rest in the background: the crawl copies every S3 file to NFS"
STEP="migrating"
run "$FERRYCTL" migrate --all --wait "$DEMO/mnt"
run "$FERRYCTL" status "$DEMO/mnt"
run nfs-ls -R "$H_NFS_URL"
for f in reports/q2.txt photos/beach.jpg; do where "$f"; done

say "The mount stays up"
cat <<EOT
Explore it:      ls $DEMO/mnt
Its state:       $FERRYCTL status $DEMO/mnt
S3 directly:     AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 \\
                 aws --endpoint-url $H_S3_URL s3 ls --recursive s3://$H_BUCKET/
NFS directly:    nfs-ls -R $(quote "$H_NFS_URL")
The daemon's log: $DEMO/ferryfs.log
Stop everything: contrib/demo.sh stop
EOT
