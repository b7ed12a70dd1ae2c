#!/bin/bash
# Two mounts (two ledgers, as two hosts would have) crawl the same 1,000 objects at once
# (spec 6, 7), one of them through tests/tools/faultproxy.py answering 503 to a fifth of
# its S3 requests: every file lands identical, each is published exactly once (the two
# migrators' own counts add up to 1,000; the others found it there), none is
# overwritten, no temporary file is left, and both mounts call every file migrated.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL
N=1000

mkdir -p "$H_TMP"/src/two/d{0..9}
for i in $(seq -w 1 $N); do printf 'object %s\n' "$i" >"$H_TMP/src/two/d$((10#$i % 10))/f$i.txt"; done
h_aws s3 sync --only-show-errors "$H_TMP/src/two" "s3://$H_BUCKET/two/" || h_bail "seeding $N objects"

# B's S3 answers 503 to a fifth of the requests; A's goes through the same kind of proxy
# without faults, so that both migrate at about the same speed and really race.
"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$H_S3_URL" --mode 503 --share 0.2 \
	--log "$H_TMP/faults.log" --port-file "$H_TMP/fault.port" &
H_PIDS+=($!)
"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$H_S3_URL" --mode none --port-file "$H_TMP/plain.port" &
H_PIDS+=($!)
h_wait_for 20 test -s "$H_TMP/fault.port" || h_bail "faultproxy did not start"
h_wait_for 20 test -s "$H_TMP/plain.port" || h_bail "faultproxy did not start"

REAL_S3_URL=$H_S3_URL
H_S3_URL=http://127.0.0.1:$(cat "$H_TMP/plain.port")
h_mount workers=4
MA=$H_MNT PIDA=$H_FERRY_PID
H_S3_URL=http://127.0.0.1:$(cat "$H_TMP/fault.port")
H_MNT=$H_TMP/mntb
H_STATE=$H_TMP/stateb
h_mount workers=4
H_S3_URL=$REAL_S3_URL
MB=$H_MNT PIDB=$H_FERRY_PID
E=$H_EXPORT

ino_b=$(stat -c %i "$MB/two/d3/f0003.txt")
# B (through the 503s) starts first: with one S3 request a file, A started at the same
# time would stay ahead of B in the same key order and publish every file. Once B has
# published some, A starts, catches up (finding B's copies) and the two race.
setfattr -n user.ferryfs.migrate -v crawl "$MB"
h_ok "mount B's crawl publishes its first files" h_wait_for 60 bash -c \
	"[ \$(getfattr --only-values -n user.ferryfs.stats '$MB' | awk '\$1 == \"migrated_files\" { print \$2 }') -ge 20 ]"
setfattr -n user.ferryfs.migrate -v crawl "$MA"
h_ok "mount A's crawl completes" "$CTL" migrate --all --wait "$MA"
h_ok "mount B's crawl completes (through 503s)" "$CTL" migrate --all --wait "$MB"
h_ok "every file is on NFS, identical" diff -r "$H_TMP/src/two" "$E/two"
h_is "$(find "$E" -name '.ferryfs.tmp.*' | wc -l)" 0 "no temporary file is left"
h_is "$(find "$E/two" -type f -links +1 | wc -l)" 0 "every file has one link (no temporary name kept)"
h_ok "the proxy answered 503 to some of B's requests" bash -c "[ \$(grep -c ' 503\$' '$H_TMP/faults.log') -gt 10 ]"
h_diag "503 answers: $(grep -c ' 503$' "$H_TMP/faults.log") of $(wc -l <"$H_TMP/faults.log") requests"
count_migrated() {
	"$PY3" -c '
import glob, os, sys
print(sum(os.getxattr(f, "user.ferryfs.state") == b"migrated" for f in glob.glob(sys.argv[1] + "/two/d*/f*.txt")))' "$1"
}
na=$(count_migrated "$MA")
nb=$(count_migrated "$MB")
h_is "$na $nb" "$N $N" "both mounts call every file migrated"
h_is "$(stat -c %i "$MB/two/d3/f0003.txt")" "$ino_b" "st_ino on mount B is the one it reported before"
fusermount3 -u "$MA"; h_wait_gone "$PIDA" 30
fusermount3 -u "$MB"; h_wait_gone "$PIDB" 30
published=$(grep -o 'migrator stopped: [0-9]* files' "$H_TMP/ferryfs.log" | awk '{ s += $3 } END { print s }')
h_is "$published" "$N" "the two migrators published $N copies between them: each file exactly once"
h_diag "$(grep 'migrator stopped' "$H_TMP/ferryfs.log")"
h_ok "both migrators published some of them (they raced)" bash -c \
	"[ \$(grep -c 'migrator stopped: [1-9][0-9]* files' '$H_TMP/ferryfs.log') = 2 ]"
h_done
