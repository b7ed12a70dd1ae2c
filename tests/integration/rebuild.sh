#!/bin/bash
# ferryctl rebuild --state DIR (spec 9: a lost ledger is rebuilt from the two stores, losing
# it loses no file): files migrated (small ones, one with s3fs metadata, one of 20 MB that
# goes through the copy's writer thread), one modified through the mount after its
# migration, one created through the mount, one never read; unmount, delete the ledger,
# rebuild, remount: every state and st_ino is what it was, every byte is where it was, and
# the migrated files verify.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL

printf 'alpha\n' | h_seed_s3 r/a.txt
printf 'beta\n' | h_seed_s3 r/b.txt
printf 'never read\n' | h_seed_s3 r/c.txt
head -c 3000000 /dev/urandom >"$H_TMP/big.bin"
h_seed_s3 r/big.bin "$H_TMP/big.bin"
head -c 20000000 /dev/urandom >"$H_TMP/mp.bin"
h_aws s3 cp --only-show-errors "$H_TMP/mp.bin" "s3://$H_BUCKET/r/sub/mp.bin" || h_bail "seeding a multipart object"
h_aws s3 cp --only-show-errors "$H_TMP/big.bin" "s3://$H_BUCKET/r/meta.bin" \
	--metadata mode=33184,uid=1234,gid=5678,mtime=1500000000 || h_bail "seeding metadata"

# migrate_on=never: the snapshots read every file, which must not migrate the one never
# migrated (ferryctl migrate still does)
OPTS="mirror=off,workers=2,migrate_on=never"
h_mount "$OPTS"
M=$H_MNT
E=$H_EXPORT
h_ok "five files migrate" "$CTL" migrate --wait "$M/r/a.txt" "$M/r/b.txt" "$M/r/big.bin" \
	"$M/r/sub/mp.bin" "$M/r/meta.bin"
printf 'changed through the mount\n' >"$M/r/b.txt"
printf 'created through the mount\n' >"$M/r/new.txt"

snapshot() {
	for f in r/a.txt r/b.txt r/c.txt r/big.bin r/sub/mp.bin r/meta.bin r/new.txt; do
		printf '%s %s %s %s\n' "$f" "$(getfattr --absolute-names --only-values -n user.ferryfs.state "$M/$f" 2>&1)" \
			"$(stat -c %i "$M/$f")" "$(md5sum <"$M/$f" | cut -d' ' -f1)"
	done
}
snapshot >"$H_TMP/before.txt"
h_is "$(awk '{ printf "%s ", $2 }' "$H_TMP/before.txt")" \
	"migrated modified s3-only migrated migrated migrated nfs-only " "the states before"
sha_big=$(getfattr --absolute-names --only-values -n user.ferryfs.sha256 "$M/r/big.bin")

REB="s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,s3_region=us-east-1,nfs=$H_NFS_URL"
"$CTL" rebuild --state "$H_STATE" -o "$REB" >"$H_TMP/busy.txt" 2>&1
h_is "$?" 1 "rebuild while the mount runs is refused (exit 1)"
h_ok "... saying the ledger is in use" grep -q 'in use' "$H_TMP/busy.txt"
h_ok "umount" h_umount

rm -rf "$H_STATE"
"$CTL" rebuild --state "$H_STATE" -o "$REB" >"$H_TMP/rebuild.txt" 2>&1
h_is "$?" 0 "ferryctl rebuild of a deleted ledger exits 0"
h_diag "$(cat "$H_TMP/rebuild.txt")"
h_ok "... and counts 4 migrated, 1 modified, 1 only in S3" \
	grep -q '6 keys listed; 4 migrated, 1 modified, 1 only in S3' "$H_TMP/rebuild.txt"

h_mount "$OPTS"
snapshot >"$H_TMP/after.txt"
h_is "$(diff "$H_TMP/before.txt" "$H_TMP/after.txt")" "" \
	"after the rebuild and a remount: every state, st_ino and content is as before"
h_is "$(getfattr --absolute-names --only-values -n user.ferryfs.sha256 "$M/r/big.bin")" "$sha_big" \
	"the SHA-256 of a migrated file is recorded again"
h_is "$(cat "$E/r/b.txt")" "changed through the mount" "the modified file is still on NFS"
h_is "$(h_aws s3 cp "s3://$H_BUCKET/r/b.txt" -)" "beta" "... and S3 still holds its old version"
h_is "$(getfattr --absolute-names --only-values -n user.ferryfs.source "$M/r/c.txt") $(cat "$M/r/c.txt")" \
	"s3 never read" "the file never read is still served from S3"
h_ok "ferryctl verify --all: the migrated copies match S3" "$CTL" verify --all "$M"
h_ok "a rebuilt ledger still migrates" "$CTL" migrate --wait "$M/r/c.txt"
h_is "$(getfattr --absolute-names --only-values -n user.ferryfs.state "$M/r/c.txt") $(stat -c %i "$M/r/c.txt")" \
	"migrated $(awk '$1 == "r/c.txt" { print $3 }' "$H_TMP/before.txt")" "... keeping its st_ino"
h_ok "umount" h_umount

"$CTL" rebuild --state "$H_STATE" -o "$REB" >"$H_TMP/again.txt" 2>&1
h_is "$?" 0 "rebuild over an existing ledger exits 0"
h_ok "... and keeps what the ledger knows" grep -q '6 kept from the ledger' "$H_TMP/again.txt"
h_is "$("$CTL" rebuild >/dev/null 2>&1; echo $?)" 2 "rebuild without --state is a usage error (exit 2)"
h_done
