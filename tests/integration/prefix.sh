#!/bin/bash
# prefix.sh - a mount with s3_prefix (spec 9), over a real s3rver and nfs-ganesha: the keys
# under the prefix appear at the mount's root, keys outside it (a sibling sharing its first
# letters included) do not; a file written through the mount is written back under the
# prefix (checked with awscli); a migrated key lands at its path relative to the prefix on
# the export.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
h_need_cmd getfattr
B=$H_BUCKET
P=app/live/
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
s3cat() { h_aws s3 cp --only-show-errors "s3://$B/$1" - 2>/dev/null; }

printf 'in the prefix\n' | h_seed_s3 "${P}a.txt"
printf 'deeper\n' | h_seed_s3 "${P}sub/b.txt"
printf 'outside\n' | h_seed_s3 outside.txt
printf 'sibling dir\n' | h_seed_s3 app/other/c.txt
printf 'same first letters\n' | h_seed_s3 app/liveother.txt
printf 'same first letters, dir\n' | h_seed_s3 app/live2/d.txt

h_mount "s3_prefix=$P"
M=$H_MNT
E=$H_EXPORT
"$FERRYCTL" pause "$M" >/dev/null   # reads queue files: keep them S3-only until migrated below

h_is "$(ls -A "$M" | tr '\n' ' ')" "a.txt sub " "the mount's root lists the keys under the prefix, and only those"
h_is "$(cat "$M/a.txt")" "in the prefix" "a key under the prefix reads at the root"
h_is "$(cat "$M/sub/b.txt")" "deeper" "a deeper key reads at its relative path"
for name in outside.txt other app liveother.txt live2 live; do
	h_ok "no $name at the root (outside the prefix)" bash -c "! stat '$M/$name' 2>/dev/null"
done

# a write through the mount goes to NFS, and is written back to S3 under the prefix
printf 'written through the mount\n' >"$M/new.txt"
mkdir "$M/made"
printf 'in a new dir\n' >"$M/made/e.txt"
h_ok "ferryctl sync-back --wait" "$FERRYCTL" sync-back "$M" --wait
h_is "$(s3cat "${P}new.txt")" "written through the mount" "the new file is written back at PREFIX/new.txt (awscli)"
h_is "$(s3cat "${P}made/e.txt")" "in a new dir" "... and one in a new directory at PREFIX/made/e.txt"
h_ok "... and nothing at the bucket's root" bash -c "! aws --endpoint-url '$H_S3_URL' s3api head-object --bucket '$B' --key new.txt >/dev/null 2>&1"
h_is "$(cat "$E/new.txt")" "written through the mount" "the new file is on the export at its relative path"
h_is "$(s3cat outside.txt)" "outside" "keys outside the prefix are untouched"

# migration: PREFIX/sub/b.txt lands at sub/b.txt on the export
st=$(state "$M/sub/b.txt")
h_ok "sub/b.txt is not migrated before migrating (state $st), nor on the export" \
	bash -c "[ '$st' = s3-only ] || [ '$st' = queued ]; test \$? = 0 && ! test -e '$E/sub/b.txt'"
"$FERRYCTL" resume "$M" >/dev/null
h_ok "ferryctl migrate --wait sub/b.txt" "$FERRYCTL" migrate --wait "$M/sub/b.txt"
h_is "$(state "$M/sub/b.txt")" migrated "... it is migrated"
h_is "$(cat "$E/sub/b.txt" 2>&1)" "deeper" "... to sub/b.txt on the export, with the object's bytes"
h_ok "... and nowhere under the prefix's own name on the export" bash -c "! test -e '$E/app'"
h_ok "ferryctl migrate --all --wait" "$FERRYCTL" migrate --all --wait "$M"
h_is "$(cd "$E" && find . -type f ! -path '*/.ferryfs*' | sort | tr '\n' ' ')" \
	"./a.txt ./made/e.txt ./new.txt ./sub/b.txt " \
	"after migrating everything the export holds the prefix's files only"
h_ok "umount" h_umount
h_done
