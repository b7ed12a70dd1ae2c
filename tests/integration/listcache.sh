#!/bin/bash
# The listing cache (src/view/dcache.c, doc/namespace.md): a readdir within 5 s of the last
# S3 listing of a directory merges that listing again with a fresh new-store listing
# instead of listing S3 again. What changes through the mount shows at once (ls right
# after touch, rm, mv, mkdir, rmdir, a write); what another host changes directly in S3
# shows once the 5 s are over. Every S3 request goes through the signing proxy, whose log
# counts the listings. The write-back never reads the cache: an object another host puts in
# S3 while a listing without it is cached is not deleted by the replay of a removal.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

for f in a b c; do printf '%s\n' "$f" | h_seed_s3 "d/$f.txt"; done
printf 'x\n' | h_seed_s3 d/sub/inner.txt
printf 'x\n' | h_seed_s3 d/gone/inner.txt
h_mount_signed
M=$H_MNT
# listings of d itself (the readdir's), not the one-key probes of "is d/x a directory"
lists() { grep '^ok GET /[^ ]*list-type=2' "$H_PROXY_LOG" | grep -v 'max-keys=' | grep -c 'prefix=d%2F '; }
names() { ls "$M/d" | tr '\n' ' '; }

h_is "$(names)" "a.txt b.txt c.txt gone sub " "the cold listing"
n0=$(lists)
h_is "$n0" 1 "... cost one S3 listing of d/"
h_is "$(names)" "a.txt b.txt c.txt gone sub " "the warm listing"
h_is "$(lists)" "$n0" "... costs no S3 listing"
h_ok "... and ls -l shows sizes from the cached listing" sh -c "ls -l '$M/d' | grep -q ' 2 .* a.txt\$'"

touch "$M/d/new.txt"
h_is "$(names)" "a.txt b.txt c.txt gone new.txt sub " "ls right after touch shows the new file"
rm "$M/d/a.txt"
h_is "$(names)" "b.txt c.txt gone new.txt sub " "ls right after rm of an S3 file hides it"
mv "$M/d/b.txt" "$M/d/z.txt"
h_is "$(names)" "c.txt gone new.txt sub z.txt " "ls right after mv shows the new name only"
mkdir "$M/d/made"
rm -r "$M/d/gone"
h_is "$(names)" "c.txt made new.txt sub z.txt " "ls right after mkdir and rm -r"
printf 'longer now\n' >"$M/d/c.txt"
h_is "$(stat -c %s "$M/d/c.txt")" 11 "a write shows its size at once"
h_ok "... in ls -l too" sh -c "ls -l '$M/d' | grep -q ' 11 .* c.txt\$'"
h_is "$(ls "$M/d/sub" | tr '\n' ' ')" "inner.txt " "a subdirectory lists its own keys"
mv "$M/d/sub/inner.txt" "$M/d/moved.txt"
h_is "$(ls "$M/d/sub" | tr '\n' ' ')" "" "a rename out of a directory empties its listing"
h_is "$(names)" "c.txt made moved.txt new.txt sub z.txt " "... and shows in the target's"

# another host writes S3 directly: seen within the cache's 5 s or right after
names >/dev/null
printf 'y\n' | h_seed_s3 d/other.txt
h_aws s3 rm --only-show-errors "s3://$H_BUCKET/d/a.txt"    # already hidden: no change
h_wait_for 8 sh -c "ls '$M/d' | grep -qx other.txt"
h_ok "an object put directly in S3 shows once the listing expires (5 s)" ls "$M/d/other.txt"
h_aws s3 rm --only-show-errors "s3://$H_BUCKET/d/other.txt"
sleep 6
h_is "$(names)" "c.txt made moved.txt new.txt sub z.txt " "an object removed directly in S3 is gone after 5 s"

# a directory renamed right after another host put an object in it directly in S3 takes
# that object along
printf 'r1\n' | h_seed_s3 r/one.txt
h_is "$(ls "$M/r" | tr '\n' ' ')" "one.txt " "a listing of r is cached"
printf 'r2\n' | h_seed_s3 r/two.txt
mv "$M/r" "$M/r2"
h_is "$(ls "$M/r2" | tr '\n' ' ')" "one.txt two.txt " "a rename right after takes the object put directly in S3 too"
h_is "$(cat "$M/r2/two.txt")" "r2" "... with its bytes"

# directories off the new store (no listing involved: stat by name)
for f in a b c; do printf 's3 %s\n' "$f" | h_seed_s3 "k/$f.txt"; done
printf 'deep\n' | h_seed_s3 k/deep/d.txt
h_is "$(cat "$M/k/a.txt")" "s3 a" "a file under a directory only S3 has"
h_is "$(cat "$M/k/deep/d.txt")" "deep" "... and one level deeper"
printf 'new\n' >"$M/k/new.txt"
h_is "$(cat "$M/k/new.txt")" "new" "a file created below it through the mount reads back at once"
rm "$M/k/b.txt"
h_ok "an S3 file removed below it is gone at once" test ! -e "$M/k/b.txt"
printf 'more\n' >>"$M/k/deep/d.txt"
h_is "$(cat "$M/k/deep/d.txt")" "deep
more" "an append (copy-up) below it reads back at once"
h_is "$(cat "$M/k/c.txt")" "s3 c" "its S3 files still read"
h_is "$(cat "$M/k/a.txt")" "s3 a" "its S3 files still read"
stat "$M/q/x.txt" >/dev/null 2>&1
printf 's3 q\n' | h_seed_s3 q/s3.txt
h_is "$(cat "$M/q/s3.txt")" "s3 q" "a directory only S3 has (q)"
mkdir -p "$H_EXPORT/q"
printf 'from another host\n' >"$H_EXPORT/q/nfs.txt"
h_ok "a file another host puts on the new store below it shows within 5 s" \
	h_wait_for 8 cat "$M/q/nfs.txt"
h_is "$(cat "$M/q/s3.txt")" "s3 q" "... and the S3 file beside it still reads"

# a new name: the create asks S3 no more than the lookup just before it did (a lookup that
# found nothing in S3 is remembered for 1 s: dc_note_s3_absent)
asks() { grep -c "^ok [A-Z]* /$H_BUCKET[/?][^ ]*\(d/new[0-9]\.txt\|prefix=d%2Fnew[0-9]\.txt\)"; }
for i in 1 2 3 4 5; do printf 'n\n' >"$M/d/new$i.txt"; done
h_is "$(grep -v '^ok PUT' "$H_PROXY_LOG" | asks)" 5 \
	"creating 5 new files asked S3 about each name once (one listing), not twice"
h_is "$(cat "$M/d/new3.txt")" "n" "... and they were created"
h_is "$(grep -c -v '^ok ' "$H_PROXY_LOG")" 0 "every S3 request was signed right"
h_umount

# write-back right after a listing was cached: a key another host put in S3 meanwhile is
# not deleted as "not in the view" (the mirror's listings are never replayed)
for f in old keep; do printf '%s\n' "$f" | h_seed_s3 "w/$f.txt"; done
h_mount mirror=off
rm "$H_MNT/w/old.txt"
h_is "$(ls "$H_MNT/w" | tr '\n' ' ')" "keep.txt " "a listing of w is cached"
printf 'fresh\n' | h_seed_s3 w/new.txt
h_ok "ferryctl sync-back replays the unlink (and reconciles w)" "$FERRYCTL" sync-back "$H_MNT" --wait
h_is "$(h_aws s3 ls "s3://$H_BUCKET/w/" | awk '{ print $4 }' | tr '\n' ' ')" "keep.txt new.txt " \
	"S3 lost old.txt only: the object put meanwhile is kept"
# the same for the write-back's lookups (dc_bypass): a name created and removed through the
# mount (never in S3, so no whiteout), a listing cached without it, then another host puts
# it in S3: replaying the removal must find that object, not the cached absence, and keep it
printf 'tmp\n' >"$H_MNT/w/later.txt"
rm "$H_MNT/w/later.txt"
h_is "$(ls "$H_MNT/w" | tr '\n' ' ')" "keep.txt new.txt " "a listing of w without later.txt is cached"
printf 'another host\n' | h_seed_s3 w/later.txt
h_ok "ferryctl sync-back replays the create and the removal" "$FERRYCTL" sync-back "$H_MNT" --wait
h_is "$(h_aws s3 ls "s3://$H_BUCKET/w/" | awk '{ print $4 }' | tr '\n' ' ')" "keep.txt later.txt new.txt " \
	"the object another host put meanwhile under that name is kept"
h_umount
h_done
