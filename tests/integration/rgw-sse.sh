#!/bin/bash
# Encrypted buckets on Ceph's RADOS Gateway (which implements SSE-C and SSE-KMS; told to
# accept them over plain HTTP and to take KMS keys from its config, tests/lib/rgw.sh):
#   - s3_sse_c_key_file: an object written by awscli with a customer key reads through the
#     mount, a file written through the mount is stored with that key (awscli reads it back
#     with the key, not without), the key is never in the log or a command line, and a key
#     file others can read is refused;
#   - s3_sse=aws:kms with s3_sse_kms_key_id: write-back stores objects under that key.
export FERRY_S3=rgw
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
h_need_cmd getfattr base64

KEY=$H_TMP/sse-c.key
head -c 32 /dev/urandom >"$KEY"
chmod 600 "$KEY"
KEY64=$(base64 -w0 <"$KEY")
ssec=(--sse-c AES256 --sse-c-key "fileb://$KEY")

printf 'sealed by an old host\n' >"$H_TMP/seeded.txt"
h_aws s3 cp --only-show-errors "${ssec[@]}" "$H_TMP/seeded.txt" "s3://$H_BUCKET/c/seeded.txt" ||
	h_bail "RGW refused an SSE-C upload (rgw crypt require ssl = false?)"

h_mount "s3_sse_c_key_file=$KEY,revalidate=0"
M=$H_MNT
h_is "$(cat "$M/c/seeded.txt" 2>&1)" "sealed by an old host" \
	"an SSE-C object reads through the mount with the customer key"
printf 'sealed through the mount\n' >"$M/c/new.txt"
mkdir -p "$M/c/big"
head -c $((9 << 20)) /dev/urandom >"$H_TMP/big.bin"
cp "$H_TMP/big.bin" "$M/c/big/b.bin"
h_ok "write-back with the customer key" timeout 120 "$FERRYCTL" sync-back "$M" --wait
h_is "$(h_aws s3 cp "${ssec[@]}" "s3://$H_BUCKET/c/new.txt" - 2>&1)" "sealed through the mount" \
	"awscli reads the written file back with the key"
h_ok "... and not without it (the object is encrypted with that key)" bash -c \
	"! /usr/bin/aws --endpoint-url '$H_S3_URL' s3 cp 's3://$H_BUCKET/c/new.txt' - >/dev/null 2>&1"
h_is "$(h_aws s3 cp "${ssec[@]}" "s3://$H_BUCKET/c/big/b.bin" - 2>/dev/null | sha256sum)" \
	"$(sha256sum <"$H_TMP/big.bin")" "a multipart write-back (9 MiB) is encrypted with the key too"
h_is "$(cat "$M/c/new.txt")" "sealed through the mount" "the mount reads it"
h_ok "the key is in no log" bash -c "! grep -rqF '$KEY64' '$H_TMP'/*.log '$H_CEPH_DIR/log'"
printf '%s\n' "$KEY64" >"$H_TMP/key64.pattern"   # a pattern file: not on grep's command line
h_ok "... and on no command line" bash -c "! grep -aqFf '$H_TMP/key64.pattern' /proc/[0-9]*/cmdline"
h_umount

chmod 644 "$KEY"
mkdir -p "$H_TMP/mnt2"
timeout 60 "$FERRYFS" "$H_TMP/mnt2" -f -o "s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=$H_NFS_URL,state_dir=$H_TMP/st2,log=stderr,s3_sse_c_key_file=$KEY" >"$H_TMP/mount2.out" 2>&1
rc=$?
grep -q " $H_TMP/mnt2 fuse" /proc/mounts && fusermount3 -u "$H_TMP/mnt2"
h_ok "a key file others can read is refused (exit $rc)" test "$rc" != 0 -a "$rc" != 124
h_ok "... saying why" grep -q "s3_sse_c_key_file $KEY: readable by others" "$H_TMP/mount2.out"
chmod 600 "$KEY"

# SSE-KMS (RGW's testing backend holds testkey-1)
H_MNT=$H_TMP/mnt3
H_STATE=$H_TMP/st3
h_mount "s3_sse=aws:kms,s3_sse_kms_key_id=testkey-1,revalidate=0"
M=$H_MNT
printf 'under kms\n' >"$M/kms.txt"
h_ok "write-back with s3_sse=aws:kms" timeout 60 "$FERRYCTL" sync-back "$M" --wait
h_is "$(h_aws s3api head-object --bucket "$H_BUCKET" --key kms.txt --query '[ServerSideEncryption,SSEKMSKeyId]' --output text 2>&1)" \
	"$(printf 'aws:kms\ttestkey-1')" "S3 holds it under SSE-KMS with that key"
h_is "$(h_aws s3 cp "s3://$H_BUCKET/kms.txt" - 2>&1)" "under kms" "... and reads it back transparently"
h_is "$(cat "$M/kms.txt")" "under kms" "the mount reads it"
h_umount
h_done
