#!/bin/bash
# ferryctl plan CONFIG: the bucket listed before anything is mounted, or an S3 Inventory
# report read instead; objects and bytes by size class, unreachable, shadowed and archived
# keys, the crawl's time, requests and space. Checked against awscli's own listing; bad
# inventories and configs give a clear error and exit 1.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init
h_start_s3
CTL=$FERRYCTL

# 6 small files, 2 of 100 KiB, 1 of 2 MiB, 1 of 17 MiB; a shadowed object (pl/s with pl/s/x),
# an unreachable key and a key outside the prefix. (s3rver cannot store a directory marker
# "dir/": the inventory below holds one.)
mkdir -p "$H_TMP/tree/d1/d2" "$H_TMP/tree/e" "$H_TMP/tree/s"
for i in 1 2 3 4; do printf 'small %s\n' "$i" >"$H_TMP/tree/d1/f$i"; done
printf 'x' >"$H_TMP/tree/d1/d2/tiny"
printf 'under s\n' >"$H_TMP/tree/s/x"
head -c 102400 /dev/urandom >"$H_TMP/tree/e/m1"
head -c 102400 /dev/urandom >"$H_TMP/tree/e/m2"
head -c $((2 << 20)) /dev/urandom >"$H_TMP/tree/e/big"
head -c $((17 << 20)) /dev/urandom >"$H_TMP/tree/e/huge"
h_ok "seed the tree" h_seed_s3_tree "$H_TMP/tree" pl
printf 'shadowed\n' | h_seed_s3 pl/s
printf 'hidden\n' | h_seed_s3 pl/.ferryfs.x
printf 'outside\n' | h_seed_s3 other/z

cat >"$H_TMP/plan.conf" <<CONF
s3_endpoint = $H_S3_URL
s3_bucket = $H_BUCKET
s3_prefix = pl/
s3_path_style = 1
nfs = /srv/not-needed
s3_multipart_threshold = 16M
s3_part_size = 8M
CONF

"$CTL" plan "$H_TMP/plan.conf" --json >"$H_TMP/plan.json" 2>"$H_TMP/plan.err"
h_is "$?" 0 "plan --json exits 0"
h_diag "$(cat "$H_TMP/plan.json" "$H_TMP/plan.err")"
# awscli's listing, classified by the test: every key of the prefix, their bytes
h_aws s3api list-objects-v2 --bucket "$H_BUCKET" --prefix pl/ >"$H_TMP/aws.json"
check() { # check NAME PYTHON-EXPRESSION over p (plan) and a (awscli's keys)
	local got
	got=$("$PY3" - "$H_TMP/plan.json" "$H_TMP/aws.json" "$2" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
a = json.load(open(sys.argv[2]))["Contents"]
print(eval(sys.argv[3]))
PY
)
	h_is "$got" True "$1"
}
check "keys: as many as awscli lists under the prefix" "p['keys'] == len(a) == 12"
check "files: 10, their bytes those awscli lists less the shadowed and unreachable keys" \
	"p['files'] == 10 and p['file_bytes'] == sum(o['Size'] for o in a if o['Key'] not in ('pl/s', 'pl/.ferryfs.x'))"
check "one shadowed, one unreachable, no marker, none archived" \
	"(p['shadowed'], p['unreachable'], p['markers'], p['archived']) == (1, 1, 0, 0)"
check "directories: d1 d1/d2 e s" "p['directories'] == 4"
check "size classes: 6 small, 2 under 1 MiB, 1 under 16 MiB, 1 under 64 MiB" \
	"[c['files'] for c in p['size_classes']] == [6, 2, 1, 1, 0]"
check "one file is over the multipart threshold" "p['multipart_files'] == 1"
check "requests: a GET a file, a LIST a directory and a page" \
	"p['get_requests'] == 10 and p['list_requests'] == 4 + 1 + 1"
check "NFS space counts 4 KiB blocks" "p['nfs_bytes'] >= p['file_bytes'] and p['nfs_bytes'] % 4096 == 0"

"$CTL" plan "$H_TMP/plan.conf" --json --hosts 3 --rate 1M --rate-files 2 >"$H_TMP/plan3.json"
"$PY3" -c "
import json, sys
p = json.load(open('$H_TMP/plan3.json'))
want = max(p['file_bytes'] / (3 << 20), 10 / (2 * 3))
sys.exit(0 if abs(p['crawl_seconds'] - want) < 0.1 and p['hosts'] == 3 else 1)"
h_is "$?" 0 "crawl time: the slower of bytes and files at the given rates, shared by 3 hosts"

out=$("$CTL" plan "$H_TMP/plan.conf")
h_ok "the text report names the shadowed and unreachable keys' counts" \
	grep -qE '^shadowed \(a dir wins\) +1 ' <<<"$out"
h_ok "... and the crawl's time" grep -q '^crawl, 1 host at' <<<"$out"

# An S3 Inventory report of the same bucket (as awscli listed it), plus an archived key, a
# directory marker and a key outside the prefix.
inv=$H_TMP/inv/ferry-test/cfg/2026-12-01T00-00Z
mkdir -p "$inv" "$H_TMP/inv/ferry-test/cfg/data"
"$PY3" - "$H_TMP/aws.json" "$H_TMP/inv/ferry-test/cfg/data" "$inv" <<'PY'
import csv, gzip, io, json, sys, urllib.parse
a = json.load(open(sys.argv[1]))["Contents"]
rows = [(o["Key"], o["Size"], "STANDARD") for o in a] + [
    ("pl/e/cold", 5000, "GLACIER"), ("pl/mk/", 0, "STANDARD"), ("other/skip", 1, "STANDARD")]
half = len(rows) // 2
for n, part in enumerate((rows[:half], rows[half:])):
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for k, s, c in part:
        w.writerow(["ferry-test", urllib.parse.quote_plus(k, safe="/"), s,
                    "2026-11-30T00:00:00.000Z", "etag", c])
    with gzip.open(f"{sys.argv[2]}/part{n}.csv.gz", "wt") as f:
        f.write(buf.getvalue())
json.dump({"sourceBucket": "ferry-test", "destinationBucket": "arn:aws:s3:::inv",
           "version": "2016-11-30", "fileFormat": "CSV",
           "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass",
           "files": [{"key": f"ferry-test/cfg/data/part{n}.csv.gz", "size": 1,
                      "MD5checksum": "x"} for n in (0, 1)]},
          open(f"{sys.argv[3]}/manifest.json", "w"))
PY
"$CTL" plan "$H_TMP/plan.conf" --json --inventory "$inv/manifest.json" >"$H_TMP/inv.json" 2>"$H_TMP/inv.err"
h_is "$?" 0 "plan --inventory exits 0"
h_diag "$(cat "$H_TMP/inv.json" "$H_TMP/inv.err")"
"$PY3" -c "
import json, sys
p = json.load(open('$H_TMP/plan.json')); q = json.load(open('$H_TMP/inv.json'))
same = all(p[k] == q[k] for k in ('shadowed', 'unreachable'))
sys.exit(0 if same and q['source'] == 'inventory' and q['files'] == p['files'] + 1 and
         q['archived'] == 1 and q['archived_bytes'] == 5000 and q['markers'] == 1 and
         q['file_bytes'] == p['file_bytes'] + 5000 and
         q['directories'] == p['directories'] + 1 and q['keys'] == p['keys'] + 2 else 1)"
h_is "$?" 0 "the inventory gives the listing's figures, with the archived key and the marker"

# bad input: a clear error naming what is wrong, exit 1
echo '{"fileFormat": "ORC"}' >"$H_TMP/bad.json"
"$CTL" plan "$H_TMP/plan.conf" --inventory "$H_TMP/bad.json" >/dev/null 2>"$H_TMP/bad.err"
h_is "$?:$(cat "$H_TMP/bad.err")" \
	"1:ferryctl: $H_TMP/bad.json: not an S3 Inventory manifest in CSV format (fileFormat)" \
	"a manifest of another format is refused by name"
printf '"ferry-test","pl/a","12","x","y","STANDARD"\n"ferry-test","pl/b\n' | gzip \
	>"$inv/part0.csv.gz"
"$CTL" plan "$H_TMP/plan.conf" --inventory "$inv/manifest.json" >/dev/null 2>"$H_TMP/bad.err"
h_is "$?:$(cat "$H_TMP/bad.err")" \
	"1:ferryctl: $inv/part0.csv.gz:2: not a line of the manifest's schema" \
	"a broken CSV line is named by file and line"
"$CTL" plan "$H_TMP/missing.conf" >/dev/null 2>"$H_TMP/bad.err"
h_is "$?" 1 "a missing config file fails"
h_ok "... saying so" grep -q 'missing.conf' "$H_TMP/bad.err"
"$CTL" plan >/dev/null 2>&1
h_is "$?" 2 "no CONFIG is a usage error"
h_done
