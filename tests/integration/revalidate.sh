#!/bin/bash
# A mixed fleet (spec 7): with revalidate=1, an "old host" (awscli, writing S3 directly)
# overwrites objects ferryfs migrated. An untouched copy is re-migrated (new bytes through
# the mount and on the export, state migrated, same st_ino); a copy modified through the
# mount becomes `conflict`: ours stays at the name, S3's version is copied beside it as
# NAME.conflict-s3-<ETag[0..8]>, both readable, listed by `ferryctl status`, counted in the
# stats, and S3's object is not touched. S3 changed to our very bytes (as our own
# write-back does) is no conflict. revalidate=0 turns it off.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL

stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$M" | awk -v k="$1" '$1 == k { print $2 }'; }
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
xattr() { getfattr --absolute-names --only-values -n "user.ferryfs.$2" "$1" 2>/dev/null; }
s3etag() { h_aws s3api head-object --bucket "$H_BUCKET" --key "$1" --query ETag --output text | tr -d '"'; }

printf 'untouched v1\n' | h_seed_s3 r/u.txt
printf 'modified v1\n' | h_seed_s3 r/m.txt
printf 'off v1\n' | h_seed_s3 r/off.txt
printf 'same v1\n' | h_seed_s3 r/same.txt

h_mount workers=2,revalidate=1,revalidate_sweep=1,mirror=off  # the old host writes S3 right after us: with write-back on, that is a race (doc/mirror.md); mirror.sh tests the two together
M=$H_MNT
E=$H_EXPORT

h_ok "the three files migrate" "$CTL" migrate --wait "$M/r/u.txt" "$M/r/m.txt" "$M/r/off.txt" "$M/r/same.txt"
h_is "$(state "$M/r/u.txt") $(state "$M/r/m.txt")" "migrated migrated" "both are migrated"
ino_u=$(stat -c %i "$M/r/u.txt")
ino_m=$(stat -c %i "$M/r/m.txt")
printf 'ours, written through the mount\n' >"$M/r/m.txt"
printf 'the same bytes on both sides\n' >"$M/r/same.txt"
h_is "$(state "$M/r/m.txt")" modified "a file written through the mount is modified"

# --- an old host overwrites both objects in S3 ---
printf 'untouched v2, from an old host\n' | h_seed_s3 r/u.txt
printf 'theirs, from an old host\n' | h_seed_s3 r/m.txt
printf 'the same bytes on both sides\n' | h_seed_s3 r/same.txt
etag_u=$(s3etag r/u.txt)
etag_m=$(s3etag r/m.txt)

h_ok "the untouched copy is re-migrated" h_wait_for 20 bash -c \
	"[ \"\$(cat '$M/r/u.txt')\" = 'untouched v2, from an old host' ]"
h_is "$(state "$M/r/u.txt")" migrated "... and is migrated"
h_is "$(cat "$E/r/u.txt")" "untouched v2, from an old host" "... the export holds the new bytes"
h_is "$(xattr "$M/r/u.txt" sha256)" "$(printf 'untouched v2, from an old host\n' | sha256sum | cut -d' ' -f1)" \
	"... the ledger records the new version's SHA-256"
h_is "$(stat -c %i "$M/r/u.txt")" "$ino_u" "... st_ino is unchanged"
h_is "$(find "$E" -name '.ferryfs.tmp.*' | wc -l)" 0 "... no temporary file is left"

sib="r/m.txt.conflict-s3-${etag_m:0:8}"
h_ok "the modified copy becomes a conflict" h_wait_for 20 bash -c \
	"[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/r/m.txt' 2>/dev/null)\" = conflict ]"
h_is "$(cat "$M/r/m.txt")" "ours, written through the mount" "ours stays at the name"
h_is "$(cat "$M/$sib" 2>&1)" "theirs, from an old host" "S3's version is readable beside it ($sib)"
h_is "$(cat "$E/$sib" 2>&1)" "theirs, from an old host" "... on the export too"
h_ok "user.ferryfs.error names the conflict copy" bash -c \
	"getfattr --only-values -n user.ferryfs.error '$M/r/m.txt' | grep -qF '$(basename "$sib")'"
h_is "$(stat -c %i "$M/r/m.txt")" "$ino_m" "st_ino of the conflicting file is unchanged"
h_ok "the conflict copy has an inode number of its own" \
	test "$(stat -c %i "$M/$sib")" != "$ino_m"
h_is "$(stat_of conflicts)" 1 "the stats count one conflict"
h_ok "ferryctl status lists it" bash -c "'$CTL' status '$M' | grep -A1 '^conflicts' | grep -q '/r/m.txt'"
h_ok "ferryctl status counts the file in conflict as migrated (4 of 4 known files)" bash -c \
	"'$CTL' status --no-rate '$M' | grep -q '^migrated  *4 of 4 known files'"
h_is "$(h_aws s3 cp --only-show-errors "s3://$H_BUCKET/r/m.txt" -)" "theirs, from an old host" \
	"S3's object was not overwritten by the check"
h_ok "the conflict copy and our version are journaled for write-back" \
	test "$(stat_of journal_pending)" -ge 2
h_is "$(xattr "$M/$sib" state)" nfs-only "the conflict copy is nfs-only until written back"
sleep 3
h_is "$(ls "$M/r" | grep -c conflict)" 1 "later checks add no second copy"
h_is "$(state "$M/r/same.txt")" modified \
	"an object changed to the very bytes of our modified copy is no conflict (what write-back does)"
h_is "$(cat "$M/r/u.txt")" "untouched v2, from an old host" "nor change the re-migrated file"

# --- a file opened is checked (one HEAD, off the FUSE thread), without the listing pass ---
h_umount
FERRYFS_REVALIDATE_SWEEP=0 h_mount workers=2,revalidate=1
printf 'untouched v3, from an old host\n' | h_seed_s3 r/u.txt
sleep 3
h_is "$(cat "$E/r/u.txt")" "untouched v2, from an old host" \
	"with the listing pass off, a file nobody opens is not re-migrated"
h_ok "opening it makes it checked and re-migrated" h_wait_for 20 bash -c \
	"[ \"\$(cat '$M/r/u.txt')\" = 'untouched v3, from an old host' ]"
h_is "$(stat -c %i "$M/r/u.txt")" "$ino_u" "... st_ino is still unchanged"

# --- revalidate=0 ---
h_umount
h_mount workers=2,revalidate=0
printf 'off v2, from an old host\n' | h_seed_s3 r/off.txt
cat "$M/r/off.txt" >/dev/null
sleep 4
h_is "$(cat "$M/r/off.txt")" "off v1" "with revalidate=0 a changed object is not re-migrated"
h_is "$(state "$M/r/off.txt")" migrated "... and the file stays migrated"

# --- ferryctl: show describes a symlink itself; --prefix with a '/' is refused clearly ---
ln -s u.txt "$M/r/link"
"$CTL" show "$M/r/link" >"$H_TMP/show-link.out" 2>&1
h_ok "ferryctl show describes a symlink, not its target" bash -c \
	"grep -q '^  type  *symlink to u.txt' '$H_TMP/show-link.out' && ! grep -q '^  etag' '$H_TMP/show-link.out'"
out=$("$CTL" migrate --all --prefix r/ "$M" 2>&1)
h_is "$?" 1 "migrate --prefix r/ is refused"
h_ok "... saying what to give instead" grep -q "give its path: ferryctl migrate --all DIR/r" <<<"$out"
h_umount
h_done
