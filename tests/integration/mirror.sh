#!/bin/bash
# Write-back to S3 (spec 7, doc/mirror.md), over a real s3rver and nfs-ganesha, S3 checked
# with awscli:
#   - a scripted workload through the mount (create, overwrite, append, truncate, delete,
#     rename of a file and of a directory holding S3-only entries, chmod, mkdir/rmdir, an
#     empty directory, a symlink, rm -r), then `ferryctl revert` and unmount: the bucket's
#     keys (directory markers aside), every object's bytes and x-amz-meta-mode equal what
#     the mount showed; empty directories have a marker; after revert changes get EROFS
#     and reads work;
#   - mirror=async: the lag goes to 0 by itself for a stream of small writes;
#   - mirror=off: the journal is kept, S3 unchanged; `ferryctl sync-back MOUNT --wait`
#     drains it; a journal left at unmount is drained by `ferryctl sync-back --state DIR`;
#   - kill -9 during the write-back of 300 files of 64 KiB and one of 40 MiB: the next
#     mount finishes it, S3 ends with exactly the mount's content;
#   - two mounts (two ledgers) on the same bucket and export, each reverting: S3 holds
#     both hosts' changes;
#   - a version written to S3 by an old host is never overwritten by write-back: in every
#     state of the file, both versions are kept as a conflict and the journal drains;
#   - a file and a directory deleted through the mount, once write-back deleted their
#     keys, lose their whiteouts, so what an old host writes there later shows.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
h_need_cmd getfattr setfattr

B=$H_BUCKET
stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$1" 2>/dev/null; }
stat_val() { stat_of "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
seed() { h_aws s3 cp --only-show-errors --metadata mode=33188 - "s3://$B/$1" >/dev/null; }

# "path sha256 st_mode" for every file and symlink the mount shows (symlink: its target's
# text hashed), sorted; directories listed apart ("dir path").
mount_view() {
	"$PY3" - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
out = []
for d, dirs, files in os.walk(root):
    for n in dirs:
        p = os.path.join(d, n)
        if os.path.islink(p):
            files.append(n)
    for n in files:
        p = os.path.join(d, n)
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            h = hashlib.sha256(os.readlink(p).encode()).hexdigest()
        else:
            h = hashlib.sha256(open(p, 'rb').read()).hexdigest()
        out.append("%s %s %d" % (os.path.relpath(p, root), h, st.st_mode))
print("\n".join(sorted(out)))
PY
}

# The same for the bucket, through awscli: every key but directory markers.
s3_view() {
	local k
	h_aws s3api list-objects-v2 --bucket "$B" --query 'Contents[].Key' --output text |
		tr '\t' '\n' | grep -v '/$' | grep -v '^None$' | sort | while read -r k; do
		h_aws s3api get-object --bucket "$B" --key "$k" "$H_TMP/obj" >"$H_TMP/obj.json" || echo "GET FAILED $k"
		printf '%s %s %s\n' "$k" "$(sha256sum <"$H_TMP/obj" | cut -c1-64)" \
			"$("$PY3" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("Metadata", {}).get("mode", "-"))' "$H_TMP/obj.json")"
	done
}
s3_keys() { h_aws s3api list-objects-v2 --bucket "$B" --query 'Contents[].Key' --output text | tr '\t' '\n' | sort; }

# --- 1. a scripted workload, revert, unmount: S3 is what the mount showed -----------
for f in keep.txt over.txt app.txt trunc.txt del.txt mv.txt chm.txt dir/a.txt dir/sub/b.txt \
	 gone/x.txt gone/y/z.txt; do
	echo "s3 content of $f" | seed "$f"
done
h_mount
M=$H_MNT
echo "brand new" >"$M/new.txt"
echo "overwritten" >"$M/over.txt"
echo "appended" >>"$M/app.txt"
truncate -s 3 "$M/trunc.txt"
rm "$M/del.txt"
mv "$M/mv.txt" "$M/moved.txt"
chmod 600 "$M/chm.txt"
echo "nfs file in dir" >"$M/dir/n.txt"
mv "$M/dir" "$M/dir2"
mkdir "$M/emptydir"
mkdir "$M/tmpdir" && rmdir "$M/tmpdir"
rm -r "$M/gone"
ln -s new.txt "$M/link"
mkdir -p "$M/deep/er" && echo deep >"$M/deep/er/f"
head -c 200000 /dev/urandom >"$M/deep/big.bin"
h_ok "the workload ran" test -f "$M/dir2/sub/b.txt"
VIEW=$(mount_view "$M")
h_diag "mount view: $(echo "$VIEW" | wc -l) files"
h_ok "ferryctl revert --full: written back, verified, safe to unmount" \
	bash -c "'$FERRYCTL' revert --full '$M' >'$H_TMP/revert.out' 2>&1; rc=\$?; cat '$H_TMP/revert.out'; [ \$rc = 0 ] && grep -q 'safe to unmount' '$H_TMP/revert.out'"
h_is "$(stat_val "$M" journal_pending)" 0 "the journal is empty after revert"
h_is "$(stat_val "$M" read_only)" 1 "the stats say the mount is read-only"
h_ok "after revert, create is refused (EROFS)" bash -c "! echo x 2>'$H_TMP/err' >'$M/after.txt' && grep -q 'Read-only' '$H_TMP/err'"
h_ok "... write to an existing file too" bash -c "! echo x 2>'$H_TMP/err' >>'$M/new.txt' && grep -q 'Read-only' '$H_TMP/err'"
h_ok "... unlink too" bash -c "! rm '$M/new.txt' 2>'$H_TMP/err' && grep -q 'Read-only' '$H_TMP/err'"
h_ok "... mkdir too" bash -c "! mkdir '$M/d9' 2>'$H_TMP/err' && grep -q 'Read-only' '$H_TMP/err'"
h_ok "... rename too" bash -c "! mv '$M/new.txt' '$M/n2' 2>'$H_TMP/err' && grep -q 'Read-only' '$H_TMP/err'"
h_ok "... chmod too" bash -c "! chmod 644 '$M/chm.txt' 2>'$H_TMP/err' && grep -q 'Read-only' '$H_TMP/err'"
h_is "$(cat "$M/new.txt")" "brand new" "reads still work after revert"
h_is "$(mount_view "$M")" "$VIEW" "nothing changed through the refused calls"
h_umount
S3VIEW=$(s3_view)
h_is "$S3VIEW" "$VIEW" "the bucket holds exactly the mount's files: keys, bytes, x-amz-meta-mode"
KEYS=$(s3_keys)
h_ok "the empty directory has a marker" grep -qx 'emptydir/' <<<"$KEYS"
h_ok "nothing is left of the removed directory" bash -c "! grep -q '^gone/' <<<'$KEYS'"
h_ok "nothing is left under the renamed directory's old name" bash -c "! grep -q '^dir/' <<<'$KEYS'"
h_ok "no .ferryfs name reached S3" bash -c "! grep -q '\.ferryfs' <<<'$KEYS'"

# S3 under PREFIX downloaded to DIR (awscli), for comparing with diff -r
s3_get_tree() { rm -rf "$2"; mkdir -p "$2"; h_aws s3 cp --recursive --only-show-errors "s3://$B/$1" "$2" >/dev/null; }
pending() { stat_val "$M" journal_pending; }
journal_empty() { [ "$(pending)" = 0 ]; }

# --- 2. mirror=async: a steady stream of small writes; the lag goes to 0 by itself ---
h_mount
M=$H_MNT
mkdir "$M/stream"
maxlag=0
for i in $(seq 1 150); do
	echo "small file $i" >"$M/stream/f$i"
	if [ $((i % 25)) = 0 ]; then
		lag=$(stat_val "$M" journal_oldest_s)
		[ "$lag" -gt "$maxlag" ] && maxlag=$lag
	fi
done
h_ok "during the stream the oldest entry was never more than 3 s old (max ${maxlag}s)" test "$maxlag" -le 3
h_ok "the journal empties by itself within 5 s of the last write" h_wait_for 5 journal_empty
h_is "$(h_aws s3 ls "s3://$B/stream/" | awk 'NF == 4' | wc -l)" 150 "S3 has the 150 files"
h_is "$(h_aws s3 cp "s3://$B/stream/f77" -)" "small file 77" "... with their bytes"
# a file held open while it is written is not uploaded half-written
exec 7>"$M/stream/held.txt"
echo "first half" >&7
sleep 2.5
h_ok "a file still open for writing is not in S3 yet" bash -c "! /usr/bin/aws --endpoint-url '$H_S3_URL' s3api head-object --bucket '$B' --key stream/held.txt >/dev/null 2>&1"
h_ok "... its entry waits in the journal" test "$(pending)" -ge 1
echo "second half" >&7
exec 7>&-
h_ok "once closed it is written back" h_wait_for 5 journal_empty
h_is "$(h_aws s3 cp "s3://$B/stream/held.txt" - | tr '\n' '|')" "first half|second half|" "... whole"
h_ok "the stats count the uploads" test "$(stat_val "$M" mirror_puts)" -ge 150
h_is "$(stat_val "$M" mirror_errors)" 0 "... and no error"
h_umount

# --- 3. mirror=off keeps the journal; sync-back MOUNT --wait and --state DIR drain it ---
h_mount mirror=off
M=$H_MNT
mkdir "$M/off"
for i in 1 2 3; do echo "off $i" >"$M/off/f$i"; done
rm "$M/stream/f1"
sleep 1.5
h_ok "mirror=off: the journal keeps the changes" test "$(pending)" -gt 0
h_is "$(h_aws s3 ls "s3://$B/off/" | wc -l)" 0 "... and S3 is unchanged (not even the directory)"
h_ok "... (the deleted file is still in S3)" h_aws s3api head-object --bucket "$B" --key stream/f1
h_ok "ferryctl sync-back MOUNT --wait drains it" "$FERRYCTL" sync-back "$M" --wait
h_is "$(pending)" 0 "the journal is empty"
h_is "$(h_aws s3 cp "s3://$B/off/f2" -)" "off 2" "S3 has the files written with mirror=off"
h_ok "... and the deletion" bash -c "! /usr/bin/aws --endpoint-url '$H_S3_URL' s3api head-object --bucket '$B' --key stream/f1 >/dev/null 2>&1"
echo "left at unmount" >"$M/off/left"
mv "$M/off/f3" "$M/off/f3moved"
sleep 0.5
h_ok "a journal is left at unmount" test "$(pending)" -gt 0
h_umount
h_ok "the state directory holds the mount's configuration, mode 0600" \
	bash -c "[ \$(stat -c %a '$H_STATE/mount.conf') = 600 ] && grep -q '^s3_bucket = $B\$' '$H_STATE/mount.conf' && ! grep -q 'access_key' '$H_STATE/mount.conf'"
h_ok "ferryctl sync-back --state DIR drains it with the mount down" "$FERRYCTL" sync-back --state "$H_STATE"
h_is "$(h_aws s3 cp "s3://$B/off/left" -)" "left at unmount" "S3 has the file written before unmount"
h_is "$(h_aws s3 ls "s3://$B/off/" | awk 'NF == 4 {print $4}' | tr '\n' ' ')" "f1 f2 f3moved left " "... and the rename"

# --- 4. kill -9 in the middle of write-back; the next mount finishes it ------------
# written with mirror=off, then drained on request, so that the kill surely lands in the
# middle of a batch of 301 uploads (one of them multipart)
MP="s3_multipart_threshold=16M,s3_part_size=5M"
h_mount "mirror=off,$MP"
M=$H_MNT
mkdir "$M/crash"
for i in $(seq 1 300); do head -c 65536 /dev/urandom >"$M/crash/f$i"; done
head -c 41943040 /dev/urandom >"$M/crash/big.bin"
setfattr -n user.ferryfs.sync -v now "$M"
h_ok "write-back is under way (100 uploads done)" h_wait_for 60 bash -c \
	"[ \$(getfattr --only-values -n user.ferryfs.stats '$M' | awk '\$1==\"mirror_puts\"{print \$2}') -ge 100 ]"
left=$(pending)
kill -9 "$H_FERRY_PID"
h_wait_gone "$H_FERRY_PID" 10
fusermount3 -uz "$M" 2>/dev/null
h_ok "the kill left journal entries (${left})" test "$left" -gt 0
h_mount "$MP"
M=$H_MNT
h_ok "the next mount drains what was left" h_wait_for 120 journal_empty
s3_get_tree crash/ "$H_TMP/crash.s3"
h_ok "S3 holds exactly the mount's files under crash/ (names and bytes)" diff -r "$H_EXPORT/crash" "$H_TMP/crash.s3"
h_is "$(stat_val "$M" mirror_errors)" 0 "no write-back error after the restart"
h_umount

# --- 5. two hosts (two ledgers, same bucket and export), each reverting -----------
H_MNT=$H_TMP/mnt_a H_STATE=$H_TMP/state_a h_mount
PID_A=$H_FERRY_PID
H_MNT=$H_TMP/mnt_b H_STATE=$H_TMP/state_b h_mount
PID_B=$H_FERRY_PID
mkdir -p "$H_TMP/mnt_a/two"
for i in 1 2 3; do echo "host a $i" >"$H_TMP/mnt_a/two/a$i"; echo "host b $i" >"$H_TMP/mnt_b/two/b$i"; done
rm "$H_TMP/mnt_b/keep.txt"
h_ok "host a reverts: safe to unmount" "$FERRYCTL" revert "$H_TMP/mnt_a"
h_ok "host b reverts: safe to unmount" "$FERRYCTL" revert "$H_TMP/mnt_b"
fusermount3 -u "$H_TMP/mnt_a"; h_wait_gone "$PID_A" 30
fusermount3 -u "$H_TMP/mnt_b"; h_wait_gone "$PID_B" 30
h_is "$(h_aws s3 ls "s3://$B/two/" | awk 'NF == 4 {print $4}' | tr '\n' ' ')" "a1 a2 a3 b1 b2 b3 " \
	"S3 holds both hosts' files"
h_is "$(h_aws s3 cp "s3://$B/two/b2" -)" "host b 2" "... with their bytes"
h_ok "... and host b's deletion" bash -c "! /usr/bin/aws --endpoint-url '$H_S3_URL' s3api head-object --bucket '$B' --key keep.txt >/dev/null 2>&1"

# --- 6. a version written to S3 by an old host is never overwritten by write-back ---
# Whatever the file's state (modified after migration, created here and written back,
# already in conflict), the old host's version is kept beside ours as a conflict copy,
# counted and listed, and the journal drains; with revalidate=0 write-back does it alone.
printf 'v1 from S3\n' | seed held/m.txt
h_mount "mirror=off,revalidate=0"
M=$H_MNT
h_ok "the file migrates" "$FERRYCTL" migrate --wait "$M/held/m.txt"
printf 'created here\n' >"$M/held/n.txt"
h_ok "a file created through the mount is written back" "$FERRYCTL" sync-back "$M" --wait
h_is "$(getfattr --only-values -n user.ferryfs.state "$M/held/n.txt" 2>/dev/null)" nfs-only \
	"... and is nfs-only"
s3etag() { h_aws s3api head-object --bucket "$B" --key "$1" --query ETag --output text | tr -d '"'; }
# held_case NAME STATE ROUND: ours written through the mount, theirs by an old host, then
# write-back: both kept
held_case() {
	local f=$1 was=$2 round=$3 etag sib
	printf 'ours %s, through the mount\n' "$round" >"$M/held/$f"
	printf 'theirs %s, from an old host\n' "$round" | h_aws s3 cp --only-show-errors - "s3://$B/held/$f"
	etag=$(s3etag "held/$f")
	sib="$f.conflict-s3-${etag:0:8}"
	h_ok "$was file: ferryctl sync-back --wait returns (the journal drains)" \
		timeout 60 "$FERRYCTL" sync-back "$M" --wait
	h_is "$(pending)" 0 "$was file: nothing left in the journal"
	h_is "$(getfattr --only-values -n user.ferryfs.state "$M/held/$f" 2>/dev/null)" conflict \
		"$was file: it becomes a conflict"
	h_is "$(h_aws s3 cp "s3://$B/held/$f" -)" "ours $round, through the mount" "$was file: S3 holds ours at the key"
	h_is "$(h_aws s3 cp "s3://$B/held/$sib" - 2>&1)" "theirs $round, from an old host" \
		"$was file: ... and the old host's version beside it ($sib): nothing lost"
	h_is "$(cat "$M/held/$sib" 2>&1)" "theirs $round, from an old host" "$was file: ... readable through the mount"
	h_ok "$was file: ferryctl status lists it" bash -c \
		"'$FERRYCTL' status '$M' | sed -n '/^conflicts/,/^journal/p' | grep -qF '/held/$f'"
}
held_case m.txt modified 1
held_case n.txt nfs-only 2
held_case m.txt conflict 3
h_is "$(stat_val "$M" conflicts)" 2 "the stats count the two files in conflict"
h_umount
# an old host's change to a file created here, not changed since: revalidation finds it
h_mount "revalidate=1,revalidate_sweep=1"
M=$H_MNT
printf 'created here, left alone\n' >"$M/held/quiet.txt"
h_ok "another file created through the mount is written back" "$FERRYCTL" sync-back "$M" --wait
printf 'theirs, from an old host\n' | h_aws s3 cp --only-show-errors - "s3://$B/held/quiet.txt"
h_ok "revalidation makes the nfs-only file a conflict" h_wait_for 30 bash -c \
	"[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/held/quiet.txt' 2>/dev/null)\" = conflict ]"
h_ok "then write-back drains the journal" h_wait_for 30 journal_empty
h_is "$(h_aws s3 cp "s3://$B/held/quiet.txt" -)" "created here, left alone" "S3 holds ours at the key"
sib=$(h_aws s3 ls "s3://$B/held/" | awk 'NF == 4 && $4 ~ /^quiet.txt.conflict-s3-/ {print $4}')
h_is "$(h_aws s3 cp "s3://$B/held/$sib" - 2>&1)" "theirs, from an old host" \
	"... and the old host's version beside it ($sib): nothing lost"
h_umount

# --- 7. a name deleted through the mount and made again in S3 by an old host ---------
# Once write-back has deleted the name's keys, its whiteout goes (after a grace of 5 s):
# it would otherwise hide the name from S3 for good.
printf 'first\n' | seed again/f.txt
printf 'sub\n' | seed again/d/x.txt
mkdir -p "$H_EXPORT/again"
h_mount
M=$H_MNT
wh_count() { find "$H_EXPORT/again" -maxdepth 1 -name '.ferryfs.wh.*' | wc -l; }
rm "$M/again/f.txt"
rm -r "$M/again/d"
mkdir "$M/again/m"
rmdir "$M/again/m"
h_ok "the deletes reach S3" h_wait_for 20 bash -c \
	"[ -z \"\$(/usr/bin/aws --endpoint-url '$H_S3_URL' s3 ls 's3://$B/again/')\" ]"
h_ok "then the whiteouts go (S3 has nothing at those names)" h_wait_for 20 bash -c "[ \$(find '$H_EXPORT/again' -maxdepth 1 -name '.ferryfs.wh.*' | wc -l) = 0 ]"
h_is "$(ls -A "$M/again" | tr '\n' ' ')" "" "... and the directory is still empty through the mount"
printf 'second, from an old host\n' | seed again/f.txt
printf 'made again\n' | seed again/d/y.txt
h_ok "what an old host writes there later shows through the mount" h_wait_for 10 bash -c \
	"[ \"\$(cat '$M/again/f.txt' 2>/dev/null)\" = 'second, from an old host' ]"
h_is "$(cat "$M/again/d/y.txt" 2>&1)" "made again" "... a directory too"
h_umount

# --- 8. large files written back by multipart upload -----------------------------------
# The ETag recorded is the one S3 holds (a server may answer CompleteMultipartUpload with
# an empty one): the file is synced, revert --full finds identical bytes, and an old host's
# change to it is kept as a conflict copy, not overwritten.
h_mount "mirror=off,revalidate=0,s3_part_size=5M,s3_multipart_threshold=6M"
M=$H_MNT
mkdir -p "$M/big"
head -c $((12 << 20)) /dev/urandom >"$H_TMP/ours1"
head -c $((11 << 20)) /dev/urandom >"$H_TMP/ours2"
head -c $((7 << 20)) /dev/urandom >"$H_TMP/theirs"
cp "$H_TMP/ours1" "$M/big/b.bin"
h_ok "a 12 MiB file is written back (multipart)" timeout 120 "$FERRYCTL" sync-back "$M" --wait
etag=$(h_aws s3api head-object --bucket "$B" --key big/b.bin --query ETag --output text | tr -d '"')
h_is "$(getfattr --only-values -n user.ferryfs.etag "$M/big/b.bin" 2>/dev/null)" "$etag" \
	"the ledger records the ETag S3 holds ($etag)"
h_is "$(getfattr --only-values -n user.ferryfs.synced "$M/big/b.bin" 2>/dev/null)" yes "... it is synced"
h_aws s3 cp --only-show-errors "$H_TMP/theirs" "s3://$B/big/b.bin"
etag=$(h_aws s3api head-object --bucket "$B" --key big/b.bin --query ETag --output text | tr -d '"')
cp "$H_TMP/ours2" "$M/big/b.bin"
h_ok "an old host's change, then ours: write-back returns" timeout 120 "$FERRYCTL" sync-back "$M" --wait
h_is "$(h_aws s3 cp "s3://$B/big/b.bin" - | sha256sum)" "$(sha256sum <"$H_TMP/ours2")" "S3 holds ours at the key"
h_is "$(h_aws s3 cp "s3://$B/big/b.bin.conflict-s3-${etag:0:8}" - 2>/dev/null | sha256sum)" \
	"$(sha256sum <"$H_TMP/theirs")" "... and the old host's version beside it: not overwritten"
h_ok "ferryctl revert --full finds S3 identical to the mount" "$FERRYCTL" revert --full "$M"
h_umount

h_done
