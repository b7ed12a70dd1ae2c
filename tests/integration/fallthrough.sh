#!/bin/bash
# Read-only fall-through through a real mount: ferryfs over a real s3rver and a real
# nfs-ganesha. Files only on NFS, only in S3, on both (NFS wins), merged listings,
# directories implied by keys, reserved names hidden, and every S3 request ferryfs sends
# checked by a proxy that recomputes its SigV4 signature with botocore.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

# S3 (old store): a tree of objects, one also present on NFS
printf 'only in s3\n' | h_seed_s3 s3only.txt
printf 'old bytes in s3\n' | h_seed_s3 both.txt
printf 'deep\n' | h_seed_s3 docs/2024/report.txt
printf 'first byte\n' | h_seed_s3 docs/2024/first.txt
printf 'spaced\n' | h_seed_s3 'docs/with space+plus%.txt'
printf 'unicode\n' | h_seed_s3 'docs/ünïcödé.txt'
head -c 3000000 /dev/urandom >"$H_TMP/big.bin"
h_seed_s3 docs/big.bin "$H_TMP/big.bin"
printf 'shared dir, s3 side\n' | h_seed_s3 shared/from-s3.txt

# NFS (new store)
printf 'only on nfs\n' | h_seed_nfs nfsonly.txt
printf 'new bytes on nfs\n' | h_seed_nfs both.txt
printf 'shared dir, nfs side\n' | h_seed_nfs shared/from-nfs.txt
printf 'marker\n' | h_seed_nfs .ferryfs-reserved
ln -s nfsonly.txt "$H_EXPORT/link"

# Every request goes through a proxy that recomputes the signature with botocore and
# answers 403 on any mismatch, so a wrong signature fails these reads.
h_mount_signed
M=$H_MNT

h_is "$(cat "$M/nfsonly.txt")" "only on nfs" "a file only on NFS is read from NFS"
h_is "$(cat "$M/s3only.txt")" "only in s3" "a file only in S3 is read from S3"
h_is "$(cat "$M/both.txt")" "new bytes on nfs" "NFS wins when both stores have the file"
h_is "$(cat "$M/docs/2024/report.txt")" "deep" "a file under directories implied by keys"
h_is "$(cat "$M/docs/with space+plus%.txt")" "spaced" "a key with space, plus and percent"
h_is "$(cat "$M/docs/ünïcödé.txt")" "unicode" "a key with unicode"
h_ok "a 3 MB S3 object reads back byte-identical" cmp "$M/docs/big.bin" "$H_TMP/big.bin"
h_is "$(stat -c %s "$M/docs/big.bin")" 3000000 "size of an S3 file comes from the object"
h_is "$(stat -c '%F %a' "$M/s3only.txt")" "regular file 644" "S3 files default to 0644"
h_is "$(stat -c '%F %a' "$M/docs")" "directory 755" "S3 directories default to 0755"
h_is "$(readlink "$M/link")" "nfsonly.txt" "a symlink on NFS reads as one"

h_is "$(ls -A "$M" | tr '\n' ' ')" "both.txt docs link nfsonly.txt s3only.txt shared " \
	"the root lists the union of both stores, once each, reserved names hidden"
h_is "$(ls "$M/shared" | tr '\n' ' ')" "from-nfs.txt from-s3.txt " "a directory on both stores merges"
h_is "$(ls "$M/docs" | tr '\n' ' ')" "2024 big.bin with space+plus%.txt ünïcödé.txt " \
	"an S3-only directory lists its objects and subdirectories"
h_is "$(cat "$M/shared/from-s3.txt")" "shared dir, s3 side" "a merged directory serves S3 files"
h_ok "reserved .ferryfs names cannot be looked up" bash -c "! stat '$M/.ferryfs-reserved'"
h_ok "a missing name is ENOENT" bash -c "stat '$M/nope' 2>&1 | grep -q 'No such file'"
# a cold open + read of an S3-only file: one listing of the keys that begin with its name
# (a file, a directory, or nothing?) and one HEAD for its metadata, which the open reuses;
# the open pins the ETag with its GET (no HEAD of its own)
h_is "$(cat "$M/docs/2024/first.txt")" "first byte" "an S3-only file read cold"
h_is "$(grep -c '^ok HEAD /[^ ]*/docs/2024/first.txt ' "$H_PROXY_LOG")" 1 "... cost one HEAD (lookup and open share it)"
h_is "$(grep -c '^ok GET /[^ ]*list-type=2[^ ]*prefix=docs%2F2024%2Ffirst.txt' "$H_PROXY_LOG")" 1 \
	"... and one listing"
h_ok "a name S3 does not have costs one request" bash -c "! stat '$M/docs/2024/absent.txt' 2>/dev/null"
h_is "$(grep -c '^ok [A-Z]* /[^ ]*\(absent.txt\|prefix=docs%2F2024%2Fabsent.txt\)' "$H_PROXY_LOG")" 1 \
	"... a listing, no HEAD"
ino1=$(stat -c %i "$M/s3only.txt")
h_is "$(stat -c %i "$M/s3only.txt")" "$ino1" "st_ino of an S3 file is stable"

# what the S3 side saw: every request signed correctly, x-amz-content-sha256 on each
h_ok "ferryfs sent S3 requests" test -s "$H_PROXY_LOG"
h_is "$(grep -c -v '^ok ' "$H_PROXY_LOG")" 0 "every S3 request's SigV4 signature matches botocore's"
h_ok "GETs carried x-amz-content-sha256" grep -q '^ok GET .* sha256=e3b0c442' "$H_PROXY_LOG"

h_ok "umount exits cleanly" h_umount
h_ok "nothing is left mounted" bash -c "! grep -q ' $M fuse' /proc/mounts"
h_done
