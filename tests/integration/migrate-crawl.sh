#!/bin/bash
# The crawl (spec 6): `ferryctl migrate --all` over 10,000 objects, interrupted by an
# unmount in the middle and resumed by the next mount from its checkpoint, copies each
# object exactly once: every S3 request goes through tests/tools/faultproxy.py (no faults)
# whose log counts the GETs of each object. Also: `rate_files` holds the crawl back, and
# `ferryctl scan` of a bucket with nothing hidden lists nothing.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL
N=${N:-10000}
B=$H_BUCKET

stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$1" | awk -v k="$2" '$1 == k { print $2 }'; }

# --- 10,000 objects in 10 directories, each holding its own number ---
"$PY3" -c '
import os, sys
n, root = int(sys.argv[1]), sys.argv[2]
w = len(str(n))
for i in range(1, n + 1):
    s = str(i).zfill(w)
    d = os.path.join(root, "d" + s[-1])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "obj-" + s + ".txt"), "w") as f:
        f.write(s + "\n")' "$N" "$H_TMP/src"
h_seed_s3_tree "$H_TMP/src" crawl || h_bail "seeding $N objects"
rm -rf "$H_TMP/src"
h_is "$(h_aws s3 ls --recursive "s3://$B/crawl/" | wc -l)" "$N" "$N objects seeded"

"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$H_S3_URL" --mode none \
	--log "$H_TMP/requests.log" --port-file "$H_TMP/proxy.port" &
H_PIDS+=($!)
h_wait_for 20 test -s "$H_TMP/proxy.port" || h_bail "faultproxy did not start"
H_S3_URL=http://127.0.0.1:$(cat "$H_TMP/proxy.port")

# --- rate_files: 20 files/s ---
h_mount workers=4,rate_files=20
M=$H_MNT
E=$H_EXPORT
"$CTL" migrate --all --prefix d9 "$M/crawl" >/dev/null
h_wait_for 30 bash -c "[ \$(getfattr --only-values -n user.ferryfs.stats '$M' | awk '\$1==\"migrated_files\" {print \$2}') -gt 0 ]"
n0=$(stat_of "$M" migrated_files)
sleep 3
n=$(($(stat_of "$M" migrated_files) - n0))
h_ok "rate_files=20 holds the crawl to about 20 files/s ($n in 3 s)" test "$n" -ge 20 -a "$n" -le 90
"$CTL" migrate --stop "$M/crawl" >/dev/null
"$CTL" status --no-rate "$M" >"$H_TMP/status0.txt" 2>&1
h_ok "migrate --stop leaves the job stopped (or done: its 1000 keys were listed at once)" grep -Eq '^crawl +(stopped|done) /crawl prefix d9' "$H_TMP/status0.txt"
h_ok "umount" h_umount

# --- the crawl, interrupted (the listing kept at most 500 entries ahead of the workers,
# so the unmount interrupts the listing itself, not only the queue) ---
FERRYFS_CRAWL_QUEUE_HIGH=500 h_mount workers=4
"$CTL" migrate --all "$M" >/dev/null
h_ok "the crawl is under way" h_wait_for 60 bash -c \
	"[ \$(getfattr --only-values -n user.ferryfs.stats '$M' | awk '\$1==\"migrated_files\" {print \$2}') -ge 2000 ]"
h_ok "umount in the middle of the crawl" h_umount
done1=$(find "$E/crawl" -type f | wc -l)
h_ok "the crawl was interrupted ($done1 of $N copied)" test "$done1" -lt "$N"
h_is "$(find "$E" -name '.ferryfs.tmp.*' | wc -l)" 0 "no temporary file after the unmount"

# --- resumed by the next mount ---
FERRYFS_CRAWL_QUEUE_HIGH=500 h_mount workers=4
h_ok "the next mount resumes the crawl from its checkpoint" h_wait_for 10 grep -q 'crawl of / resumes after key' "$H_TMP/ferryfs.log"
h_ok "ferryctl migrate --all --wait completes" "$CTL" migrate --all --wait "$M"
h_is "$(find "$E/crawl" -type f | wc -l)" "$N" "every object is on NFS"
h_ok "every copy holds its object's bytes" "$PY3" -c '
import os, sys
bad = [f for d, _, fs in os.walk(sys.argv[1]) for f in fs
       if open(os.path.join(d, f)).read() != f[4:-4] + "\n"]
sys.exit("wrong content: %s" % bad[:5] if bad else 0)' "$E/crawl"
# faultproxy log lines: TIME N METHOD PATH FAULT
awk '$3 == "GET" && $4 !~ /\?/ && $4 ~ /\/crawl\// { n[$4]++ } END { for (k in n) print n[k] }' \
	"$H_TMP/requests.log" | sort -n | uniq -c >"$H_TMP/gets"
h_is "$(cat "$H_TMP/gets" | tr -s ' ')" " $N 1" "each object was fetched (GET) exactly once across both mounts"
h_is "$(find "$E" -name '.ferryfs.tmp.*' | wc -l)" 0 "no temporary file is left"
"$CTL" status "$M" >"$H_TMP/status.txt" 2>&1
h_ok "ferryctl status shows the crawl done" grep -Eq '^crawl +done / ' "$H_TMP/status.txt"
h_diag "$(cat "$H_TMP/status.txt")"

# --- scan ---
"$CTL" scan "$M" >"$H_TMP/scan.txt" 2>"$H_TMP/scan.err"
h_is "$?" 0 "ferryctl scan exits 0"
h_is "$(wc -l <"$H_TMP/scan.txt")" 0 "s3rver cannot hold unreachable or shadowed keys: nothing listed"
h_ok "... having listed every key" grep -q "^$N keys listed" "$H_TMP/scan.err"
h_ok "umount" h_umount
h_done
