#!/bin/bash
# The background migrator over a real s3rver and nfs-ganesha (spec 6, 8): reading files
# migrates them (s3-only -> queued -> migrated, the NFS copy byte-identical, reads switch
# to NFS, st_ino unchanged); a write made while a file waits in the queue wins; migrate=now
# on a file and on a directory; a file that cannot be copied ends `failed` with its error;
# ferryctl pause/resume/status/migrate --wait/verify (a copy corrupted on the export is
# reported, exit 1).
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL

pattern() { "$PY3" -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + $2) & 255 for i in range($1)))"; }
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
xattr() { getfattr --absolute-names --only-values -n "user.ferryfs.$2" "$1" 2>/dev/null; }
stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$M" | awk -v k="$1" '$1 == k { print $2 }'; }
queue_empty() { [ "$(stat_of queued)" = 0 ] && [ "$(stat_of copying)" = 0 ]; }

# --- S3 ---
printf 'alpha\n' | h_seed_s3 m/a.txt
printf 'beta\n' | h_seed_s3 m/b.txt
head -c 3000000 /dev/urandom >"$H_TMP/big.bin"
h_seed_s3 m/big.bin "$H_TMP/big.bin"
h_aws s3 cp --only-show-errors "$H_TMP/big.bin" "s3://$H_BUCKET/m/meta.bin" \
	--metadata mode=33184,uid=1234,gid=5678,mtime=1500000000 || h_bail "seeding metadata"
printf 'queued, then overwritten\n' | h_seed_s3 w/trunc.txt
printf 'queued, then appended\n' | h_seed_s3 w/append.txt
pattern 200000 1 >"$H_TMP/ok.bin"
pattern 200000 2 >"$H_TMP/bad.bin"
h_seed_s3 v/ok.bin "$H_TMP/ok.bin"
h_seed_s3 v/bad.bin "$H_TMP/bad.bin"
for i in $(seq 1 20); do printf 'tree %s\n' "$i" | h_seed_s3 "tree/sub$((i % 3))/f$i.txt"; done
printf 'cannot land\n' | h_seed_s3 locked/f.txt

FERRYFS_MIGRATE_RETRIES=2 FERRYFS_MIGRATE_BACKOFF=1 h_mount workers=2,mirror=off  # S3 stays as seeded: write-back has its own test (mirror.sh)
M=$H_MNT
E=$H_EXPORT

# --- the migrator's names on the root (read by ferryctl) ---
h_is "$(xattr "$M" state_dir)" "$H_STATE" "user.ferryfs.state_dir on the root names the ledger's directory"
h_ok "user.ferryfs.migrator on the root shows the workers" bash -c \
	"getfattr --only-values -n user.ferryfs.migrator '$M' | grep -qx 'workers 2'"
h_ok "an unknown user.ferryfs name on the root is ENODATA" bash -c \
	"getfattr -n user.ferryfs.bogus '$M' 2>&1 | grep -q 'No such attribute'"
h_is "$(xattr "$M/m/a.txt" state_dir)" "" "... and user.ferryfs.state_dir is not on other paths"

# --- reading files migrates them ---
ino_a=$(stat -c %i "$M/m/a.txt")
ino_big=$(stat -c %i "$M/m/big.bin")
h_is "$(state "$M/m/a.txt")" s3-only "an S3 file nobody read is s3-only"
h_ok "ferryctl pause" "$CTL" pause "$M"
h_is "$(stat_of paused)" 1 "the mount's stats say paused"
cat "$M/m/a.txt" "$M/m/b.txt" "$M/m/meta.bin" >/dev/null
h_ok "a 3 MB S3 object reads back identical" cmp "$M/m/big.bin" "$H_TMP/big.bin"
h_is "$(state "$M/m/a.txt")" queued "a file read while the migrator is paused is queued"
h_is "$(xattr "$M/m/a.txt" source)" s3 "... and still served from S3"
h_ok "... and not on NFS" test ! -e "$E/m/a.txt"
h_ok "ferryctl resume" "$CTL" resume "$M"
h_ok "the read files migrate" h_wait_for 30 bash -c "[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/m/big.bin')\" = migrated ] &&
	[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/m/a.txt')\" = migrated ] &&
	[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/m/meta.bin')\" = migrated ]"
h_is "$(cat "$E/m/a.txt")" alpha "the NFS copy of a small file is there"
h_ok "the NFS copy of the 3 MB file is byte-identical" cmp "$E/m/big.bin" "$H_TMP/big.bin"
h_is "$(xattr "$M/m/big.bin" source)" nfs "reads of a migrated file are served from NFS"
h_is "$(stat -c %i "$M/m/a.txt") $(stat -c %i "$M/m/big.bin")" "$ino_a $ino_big" \
	"st_ino is the same before and after the migration"
h_is "$(xattr "$M/m/big.bin" sha256)" "$(sha256sum <"$H_TMP/big.bin" | cut -d' ' -f1)" \
	"user.ferryfs.sha256 is the SHA-256 of the object"
h_ok "user.ferryfs.migrated is an ISO 8601 time" bash -c \
	"getfattr --only-values -n user.ferryfs.migrated '$M/m/a.txt' | grep -Eq '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T'"
h_is "$(stat -c '%a %u %g %Y' "$E/m/meta.bin")" "640 1234 5678 1500000000" \
	"the copy has the object's mode, owner and mtime (x-amz-meta-*)"
h_is "$(find "$E" -name '.ferryfs.tmp.*' | wc -l)" 0 "no temporary file is left in the export"

# --- a write made while the file waits in the queue wins ---
"$CTL" pause "$M" >/dev/null
cat "$M/w/trunc.txt" "$M/w/append.txt" >/dev/null
h_is "$(state "$M/w/trunc.txt")" queued "a file waits in the queue"
printf 'written through the mount\n' >"$M/w/trunc.txt"
printf 'more\n' >>"$M/w/append.txt"
"$CTL" resume "$M" >/dev/null
h_ok "the queue drains" h_wait_for 30 queue_empty
h_is "$(cat "$E/w/trunc.txt")" "written through the mount" "a file truncated and written while queued: the write wins"
h_is "$(cat "$E/w/append.txt" | tr '\n' '|')" "queued, then appended|more|" \
	"a file appended to while queued: the append wins (copied up first, then written)"
h_is "$(state "$M/w/trunc.txt") $(state "$M/w/append.txt")" "modified modified" \
	"both are modified, not migrated"
h_is "$(h_aws s3 cp s3://$H_BUCKET/w/trunc.txt -)" "queued, then overwritten" "S3 still holds the old object"

# --- migrate=now of a file and of a directory (ferryctl migrate --wait) ---
h_ok "ferryctl migrate --wait of two files" "$CTL" migrate --wait "$M/v/ok.bin" "$M/v/bad.bin"
h_is "$(state "$M/v/ok.bin") $(state "$M/v/bad.bin")" "migrated migrated" "both are migrated"
h_ok "ferryctl migrate --wait of a directory of 20 files" "$CTL" migrate --wait "$M/tree"
n=0
for f in "$M"/tree/sub*/f*.txt; do [ "$(state "$f")" = migrated ] && n=$((n + 1)); done
h_is "$n" 20 "every file under the directory is migrated"
h_is "$(cd "$E/tree" && find . -type f | wc -l)" 20 "... and on NFS"
h_is "$(setfattr -n user.ferryfs.migrate -v bogus "$M/tree" 2>&1 | grep -c 'Invalid argument')" 1 \
	"a bad migrate value is EINVAL"

# --- ferryctl verify ---
h_ok "ferryctl verify of good copies exits 0" "$CTL" verify "$M/v" "$M/m/big.bin"
printf 'XXXX' | dd of="$E/v/bad.bin" bs=1 seek=1000 conv=notrunc status=none
"$CTL" verify "$M/v" >"$H_TMP/verify.txt" 2>&1
h_is "$?" 1 "ferryctl verify exits 1 when a copy was corrupted on the export"
h_ok "... and names the corrupted file" grep -q 'MISMATCH .*/v/bad.bin: ' "$H_TMP/verify.txt"
h_ok "... and not the good one" bash -c "! grep -q 'MISMATCH .*/v/ok.bin' '$H_TMP/verify.txt'"
"$CTL" verify --all "$M" >"$H_TMP/verify-all.txt" 2>&1
h_is "$?" 1 "ferryctl verify --all (every migrated file in the ledger) exits 1 too"
h_is "$(grep -c '^MISMATCH' "$H_TMP/verify-all.txt")" 1 "... with one file listed"
h_ok "... and counts the modified files as skipped" \
	grep -Eq ', [1-9][0-9]* modified or nfs-only \(skipped\)' "$H_TMP/verify-all.txt"

# --- a file that cannot be copied: failed, with its error ---
mkdir -p "$E/locked"
trap 'rc=$?; chattr -i "$H_EXPORT/locked" 2>/dev/null; (exit $rc); h_cleanup' EXIT
chattr +i "$E/locked" || h_bail "chattr +i is not supported here"
setfattr -n user.ferryfs.migrate -v now "$M/locked/f.txt"
h_ok "a file whose copy keeps failing ends failed (2 attempts)" h_wait_for 30 \
	bash -c "[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/locked/f.txt')\" = failed ]"
h_ok "user.ferryfs.error says why" bash -c \
	"getfattr --only-values -n user.ferryfs.error '$M/locked/f.txt' | grep -q 'Operation not permitted'"
h_is "$(stat_of failed)" 1 "the stats count one failed file"
"$CTL" status "$M" >"$H_TMP/status.txt" 2>&1
h_is "$?" 0 "ferryctl status exits 0"
h_ok "ferryctl status lists the failed file with its error" grep -q '/locked/f.txt: .*Operation not permitted' "$H_TMP/status.txt"
h_ok "ferryctl status shows migrated files with a progress bar" grep -Eq '^migrated +[0-9]+ of [0-9]+ known files +\[#' "$H_TMP/status.txt"
h_ok "ferryctl status shows the queue per priority" grep -Eq '^queue +copy-up 0, touched 0, crawl 0' "$H_TMP/status.txt"
h_diag "$(cat "$H_TMP/status.txt")"
retried=$(xattr "$M" migrator | awk '$1 == "run_retried" { print $2 }')
h_is "$(cat "$M/locked/f.txt")" "cannot land" "a failed file is still read from S3"
h_is "$(state "$M/locked/f.txt")" failed "reading a failed file does not queue it again"
sleep 2
h_is "$(state "$M/locked/f.txt") $(xattr "$M" migrator | awk '$1 == "run_retried" { print $2 }')" \
	"failed $retried" "... and no copy was tried (run_retried unchanged)"
chattr -i "$E/locked"
h_ok "a failed file is migrated when asked again" "$CTL" migrate --wait "$M/locked/f.txt"
h_is "$(cat "$E/locked/f.txt")" "cannot land" "... and lands once the directory is writable"
h_is "$("$CTL" nonsense >/dev/null 2>&1; echo $?) $("$CTL" migrate >/dev/null 2>&1; echo $?)" "2 2" \
	"ferryctl usage errors exit 2"

h_ok "umount exits cleanly" h_umount
h_done
