#!/bin/bash
# bench-compare.sh - ferryfs beside s3fs-fuse (Debian's s3fs, default
# options) and the bare clients (curl for S3, nfs-cp for NFS), on the same data, on one
# private s3rver and nfs-ganesha started through the test harness, in one run. Medians of
# RUNS runs; every ratio is against a baseline measured in this run. Not a test.
#   1. sequential read of a BIG_MB S3-only file, cold          ferryfs | s3fs | curl
#   2. sequential read of a BIG_MB migrated (NFS) file, cold   ferryfs | nfs-cp
#   3. 4 readers of 4 different MID_MB S3-only files           ferryfs | s3fs | 4 curls
#   4. time to first byte of 4 KiB files, S3-only and migrated  ferryfs | s3fs | curl
#   5. ls -l of an NDIR-object S3 directory, cold and warm;     ferryfs | s3fs | listing
#      find over NFIND objects in NFIND_DIRS directories
#   6. create NCREATE small files; write one BIG_MB file        ferryfs | s3fs
#   7. migration: see contrib/bench-migrate.sh (run by make bench)
#   8. peak resident memory of each daemon over rows 1-6
# Run from a build tree (make bench runs it), or set abs_top_builddir. Sizes: BIG_MB
# (1024), MID_MB (256), NDIR (10000), NFIND (50000), NFIND_DIRS (500), NCREATE (10000),
# NTTFB (20), RUNS (3).
export abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export abs_top_builddir=${abs_top_builddir:-$PWD}
"$abs_top_srcdir/contrib/install-deps.sh" --bench >/dev/null || exit 1
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_need_cmd s3fs nfs-cp
h_start_s3
h_start_nfs
RUNS=${RUNS:-3}
BIG_MB=${BIG_MB:-1024}
MID_MB=${MID_MB:-256}
NDIR=${NDIR:-10000}
NFIND=${NFIND:-50000}
NFIND_DIRS=${NFIND_DIRS:-500}
NCREATE=${NCREATE:-10000}
NTTFB=${NTTFB:-20}
B=$H_BUCKET

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.4f\n", b - a }'; }
s3curl() {
	curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
# seed_links TOP FILE: objects TOP/<name> for every name on stdin (may hold one "/"), all
# with FILE's bytes: hard links in a scratch tree, uploaded by one curl process
# (h_seed_s3_tree) instead of a process per object
seed_links() {
	local d=$H_TMP/seed-links
	rm -rf "$d"
	"$PY3" -c 'import os, sys
top, src = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    p = os.path.join(top, line.strip())
    os.makedirs(os.path.dirname(p), exist_ok=True)
    os.link(src, p)' "$d/$1" "$2" || return 1
	h_seed_s3_tree "$d/$1" "$1"
	local rc=$?
	rm -rf "$d"
	return $rc
}
put_many() { # put_many TOP/NAME- N FILE: N copies of FILE as TOP/NAME-<i>
	seq -w 1 "$2" | sed "s#^#${1#*/}#" | seed_links "${1%%/*}" "$3"
}
nfs_url() { echo "nfs://127.0.0.1$H_EXPORT/$1?nfsport=$H_NFS_PORT&mountport=$H_MNT_PORT"; }

# --- the two file systems under test ----------------------------------------------------
PEAK_FERRY=0
PEAK_S3FS=0
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
ferry_up() { h_mount "migrate_on=never${1:+,$1}"; FS_MNT=$H_MNT; FS_PID=$H_FERRY_PID; }
ferry_down() {
	local k
	k=$(hwm "$H_FERRY_PID")
	[ "${k:-0}" -gt "$PEAK_FERRY" ] && PEAK_FERRY=$k
	h_umount
}
S3FS_MNT=$H_TMP/s3fs
printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$H_TMP/s3fs.passwd"
chmod 600 "$H_TMP/s3fs.passwd"
s3fs_up() {
	mkdir -p "$S3FS_MNT"
	s3fs "$B" "$S3FS_MNT" -o "url=$H_S3_URL,use_path_request_style,endpoint=us-east-1,passwd_file=$H_TMP/s3fs.passwd" ||
		h_bail "s3fs did not mount"
	H_MOUNTS+=("$S3FS_MNT")
	h_wait_for 20 grep -q " $S3FS_MNT fuse.s3fs" /proc/mounts || h_bail "s3fs did not mount"
	S3FS_PID=$(pgrep -n -x s3fs)
	FS_MNT=$S3FS_MNT
}
s3fs_down() {
	local k
	k=$(hwm "$S3FS_PID")
	[ "${k:-0}" -gt "$PEAK_S3FS" ] && PEAK_S3FS=$k
	fusermount3 -u "$S3FS_MNT"
	h_wait_gone "$S3FS_PID" 30
}
# each FS: run "$2" (a function using $FS_MNT) RUNS times on a fresh mount of FS $1
cold() {
	local fs=$1 fn=$2 i
	for i in $(seq "$RUNS"); do
		"${fs}_up"
		"$fn"
		"${fs}_down"
	done
}

# --- data --------------------------------------------------------------------------------
echo "seeding: $BIG_MB MiB x2, $MID_MB MiB x4, $NDIR + $NFIND small objects..." >&2
head -c $((BIG_MB << 20)) /dev/urandom >"$H_TMP/big"
h_seed_s3 big/big.bin "$H_TMP/big"
cp "$H_TMP/big" "$H_EXPORT/migrated.bin"          # row 2: a file on the new store
rm -f "$H_TMP/big"
for i in 1 2 3 4; do
	head -c $((MID_MB << 20)) /dev/urandom >"$H_TMP/mid"
	h_seed_s3 "mid/m$i.bin" "$H_TMP/mid"
done
rm -f "$H_TMP/mid"
head -c 4096 /dev/urandom >"$H_TMP/4k"
put_many ttfb/s- "$NTTFB" "$H_TMP/4k"
mkdir -p "$H_EXPORT/ttfbm"
for i in $(seq -w 1 "$NTTFB"); do cp "$H_TMP/4k" "$H_EXPORT/ttfbm/m-$i"; done
printf 'x\n' >"$H_TMP/x"
put_many dir/o- "$NDIR" "$H_TMP/x"
per=$((NFIND / NFIND_DIRS))
seq -w 1 "$NFIND" | awk -v per="$per" '{ printf "d%04d/o-%s\n", int(($0 - 1) / per), $0 }' |
	seed_links tree "$H_TMP/x"
# the seeding wrote gigabytes: let the kernel write them back before anything is timed
# (a run without this saw nfs-cp of the same file take 0.49 to 0.97 s in rows 1-2)
sync

# --- 1. sequential read of a big S3-only file ------------------------------------------
r1() { t0=$(now); cat "$FS_MNT/big/big.bin" >/dev/null; since "$t0"; }
for i in $(seq "$RUNS"); do s3curl -o /dev/null -w '%{time_total}\n' "$H_S3_URL/$B/big/big.bin"; done >"$H_TMP/1.curl"
cold ferry r1 >"$H_TMP/1.ferry"
cold s3fs r1 >"$H_TMP/1.s3fs"

# --- 2. sequential read of a big migrated file -------------------------------------------
for i in $(seq "$RUNS"); do
	# nfs-cp cannot write to /dev/null: to a file in RAM (tmpfs), removed after each run
	t0=$(now); nfs-cp "$(nfs_url migrated.bin)" /dev/shm/ferry-bench-nfscp >/dev/null; since "$t0"
	rm -f /dev/shm/ferry-bench-nfscp
done >"$H_TMP/2.nfscp"
r2() { t0=$(now); cat "$FS_MNT/migrated.bin" >/dev/null; since "$t0"; }
cold ferry r2 >"$H_TMP/2.ferry"

# --- 3. four readers of four files -----------------------------------------------------------
# (wait for the readers only: a bare `wait` would wait for the servers too)
r3() {
	local t0 i pids=()
	t0=$(now)
	for i in 1 2 3 4; do cat "$FS_MNT/mid/m$i.bin" >/dev/null & pids+=($!); done
	wait "${pids[@]}"
	since "$t0"
}
for r in $(seq "$RUNS"); do
	t0=$(now)
	pids=()
	for i in 1 2 3 4; do s3curl -o /dev/null "$H_S3_URL/$B/mid/m$i.bin" & pids+=($!); done
	wait "${pids[@]}"
	since "$t0"
done >"$H_TMP/3.curl"
cold ferry r3 >"$H_TMP/3.ferry"
cold s3fs r3 >"$H_TMP/3.s3fs"

# --- 4. time to first byte (per file, median over NTTFB files of one cold mount) ---------
# open(2) and the first read(2) of each file, timed inside one process, as curl's
# time_starttransfer is: a `head -c 1` timed from the shell adds about 12 ms of fork, exec
# and date(1) on this machine (measured on a local file), which no file system can remove
# and which hid the difference between the two (doc/benchmarks.md).
TTFB_PY='import os, sys, time
for f in sys.argv[1:]:
    t0 = time.perf_counter()
    fd = os.open(f, os.O_RDONLY)
    os.read(fd, 1)
    print("%.5f" % (time.perf_counter() - t0))
    os.close(fd)'
ttfb_s3() { python3 -c "$TTFB_PY" "$FS_MNT"/ttfb/s-* | median; }
ttfb_nfs() { python3 -c "$TTFB_PY" "$FS_MNT"/ttfbm/m-* | median; }
for i in $(seq -w 1 "$NTTFB"); do
	s3curl -r 0-0 -o /dev/null -w '%{time_starttransfer}\n' "$H_S3_URL/$B/ttfb/s-$i"
done | median >"$H_TMP/4s.curl"
# the floor of any file system over this S3: one GET on a kept-alive connection (one curl
# process for all the files; the first, which connects, is left out)
urls=()
for i in $(seq -w 1 "$NTTFB"); do urls+=("$H_S3_URL/$B/ttfb/s-$i" -o /dev/null); done
s3curl -r 0-65535 -w '%{time_starttransfer}\n' "${urls[@]}" | tail -n +2 | median >"$H_TMP/4s.keep"
cold ferry ttfb_s3 >"$H_TMP/4s.ferry"
cold s3fs ttfb_s3 >"$H_TMP/4s.s3fs"
cold ferry ttfb_nfs >"$H_TMP/4m.ferry"

# --- 5. listings ------------------------------------------------------------------------------
list_all() { # list_all PREFIX [DELIM]: every page of ListObjectsV2, as curl sees it
	local token="" out args
	while :; do
		args=(--data-urlencode list-type=2 --data-urlencode "prefix=$1")
		[ -n "${2:-}" ] && args+=(--data-urlencode "delimiter=$2")
		[ -n "$token" ] && args+=(--data-urlencode "continuation-token=$token")
		out=$(s3curl -G "$H_S3_URL/$B" "${args[@]}")
		token=$(printf '%s' "$out" | sed -n 's/.*<NextContinuationToken>\([^<]*\)<.*/\1/p')
		[ -n "$token" ] || break
	done
}
for i in $(seq "$RUNS"); do t0=$(now); list_all dir/ /; since "$t0"; done >"$H_TMP/5l.bare"
for i in $(seq "$RUNS"); do t0=$(now); list_all tree/; since "$t0"; done >"$H_TMP/5f.bare"
ls_cold_warm() {
	local t0
	t0=$(now); ls -l "$FS_MNT/dir" >/dev/null; since "$t0" >>"$H_TMP/5c.$FS"
	t0=$(now); ls -l "$FS_MNT/dir" >/dev/null; since "$t0" >>"$H_TMP/5w.$FS"
}
find_all() {
	local t0 n
	t0=$(now); n=$(find "$FS_MNT/tree" -type f | wc -l); since "$t0" >>"$H_TMP/5f.$FS"
	[ "$n" = "$NFIND" ] || echo "find through $FS found $n files of $NFIND" >&2
}
FS=ferry cold ferry ls_cold_warm
FS=s3fs cold s3fs ls_cold_warm
FS=ferry cold ferry find_all
FS=s3fs cold s3fs find_all

# --- 6. writes --------------------------------------------------------------------------------
create_many() {
	local t0 i d
	d=$FS_MNT/new-$RANDOM$RANDOM
	mkdir "$d"
	t0=$(now)
	for ((i = 0; i < NCREATE; i++)); do printf 'x\n' >"$d/f$i"; done
	since "$t0" >>"$H_TMP/6c.$FS"
}
write_big() {
	local t0
	t0=$(now)
	dd if=/dev/zero of="$FS_MNT/wbig-$RANDOM$RANDOM" bs=1M count="$BIG_MB" status=none
	since "$t0" >>"$H_TMP/6w.$FS"
}
FS=ferry cold ferry create_many
FS=s3fs cold s3fs create_many
FS=ferry cold ferry write_big
FS=s3fs cold s3fs write_big

# --- the table -----------------------------------------------------------------------------
m() { median <"$H_TMP/$1"; }
row() { # row TEXT FERRY S3FS BARE BARE-NAME: times in seconds, ratios as speed-ups
	local sx bx
	sx=$([ -n "$3" ] && ratio "$3" "$2" || echo "-")
	bx=$([ -n "$4" ] && ratio "$4" "$2" || echo "-")
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "${3:--}" "${4:--} ${5:-}" "$sx" "$bx"
}
echo
echo "ferryfs vs s3fs $(s3fs --version 2>&1 | grep -o 'V[0-9.]*' | head -n 1) and the bare clients; medians of $RUNS runs, seconds;"
echo "ratios: how many times faster ferryfs is (>1 = ferryfs faster). $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| row | ferryfs s | s3fs s | bare client s | vs s3fs | vs bare |"
echo "|---|---|---|---|---|---|"
row "1. read ${BIG_MB} MiB S3-only, cold" "$(m 1.ferry)" "$(m 1.s3fs)" "$(m 1.curl)" curl
row "2. read ${BIG_MB} MiB migrated, cold" "$(m 2.ferry)" "" "$(m 2.nfscp)" nfs-cp
row "3. 4 readers x ${MID_MB} MiB S3-only" "$(m 3.ferry)" "$(m 3.s3fs)" "$(m 3.curl)" "4 curls"
row "4. first byte, 4 KiB S3-only" "$(m 4s.ferry)" "$(m 4s.s3fs)" "$(m 4s.curl)" curl
row "4. ... against one kept-alive GET" "$(m 4s.ferry)" "" "$(m 4s.keep)" "curl, 1 GET"
row "4. first byte, 4 KiB migrated" "$(m 4m.ferry)" "" "" ""
row "5. ls -l ${NDIR} S3 objects, cold" "$(m 5c.ferry)" "$(m 5c.s3fs)" "$(m 5l.bare)" listing
row "5. ls -l ${NDIR} S3 objects, warm" "$(m 5w.ferry)" "$(m 5w.s3fs)" "" ""
row "5. find ${NFIND} objects in ${NFIND_DIRS} dirs" "$(m 5f.ferry)" "$(m 5f.s3fs)" "$(m 5f.bare)" "listing"
row "6. create ${NCREATE} small files" "$(m 6c.ferry)" "$(m 6c.s3fs)" "" ""
row "6. write one ${BIG_MB} MiB file" "$(m 6w.ferry)" "$(m 6w.s3fs)" "" ""
printf '| 8. peak RSS of the daemon, MiB | %s | %s | | | |\n' "$((PEAK_FERRY / 1024))" "$((PEAK_S3FS / 1024))"
