#!/bin/bash
# Crashes and races during a copy (spec 6), over a real s3rver and nfs-ganesha, with S3
# bodies slowed down by tests/tools/faultproxy.py so that a copy is surely in progress:
#   - kill -9 of the daemon in the middle of copying a 16 MB file: no partial file ever
#     appears under its name; the next mount removes the temporary file and finishes the
#     copy (no file of any other size is ever seen under the name);
#   - an object replaced in S3 while it is being copied: the copy starts over and the new
#     content lands.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
tmpfiles() { find "$H_EXPORT" -name '.ferryfs.tmp.*' 2>/dev/null | wc -l; }
pattern() { "$PY3" -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + $2) & 255 for i in range($1)))"; }

head -c 16000000 /dev/urandom >"$H_TMP/big.bin"
h_seed_s3 crash/big.bin "$H_TMP/big.bin"
pattern 8000000 1 >"$H_TMP/v1.bin"
pattern 8000000 2 >"$H_TMP/v2.bin"
h_seed_s3 repl/obj.bin "$H_TMP/v1.bin"

# S3 through a proxy that sends bodies at 2 MB/s
h_slow_s3 2000000
H_S3_URL=$H_SLOW_S3_URL h_mount workers=2
M=$H_MNT
E=$H_EXPORT

# --- kill -9 mid-copy ---
ino=$(stat -c %i "$M/crash/big.bin")
setfattr -n user.ferryfs.migrate -v now "$M/crash/big.bin"
h_ok "the copy is in progress: a temporary file grows on NFS" h_wait_for 30 bash -c \
	"[ \$(find '$E/crash' -name '.ferryfs.tmp.*' -size +1000k | wc -l) = 1 ]"
h_ok "... and nothing is under the file's name yet" test ! -e "$E/crash/big.bin"
kill -9 "$H_FERRY_PID"
h_wait_gone "$H_FERRY_PID" 10
fusermount3 -uz "$M" 2>/dev/null
h_ok "after kill -9 there is no file under the name" test ! -e "$E/crash/big.bin"
h_is "$(tmpfiles)" 1 "... only the temporary file the crash left"

# a watcher records every size ever seen under the name while the next mount copies
( while :; do stat -c %s "$E/crash/big.bin" 2>/dev/null; sleep 0.02; done ) >"$H_TMP/sizes" &
WATCH=$!
H_PIDS+=($WATCH)
h_mount workers=2
h_ok "the next mount finishes the copy" h_wait_for 90 bash -c \
	"[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/crash/big.bin')\" = migrated ]"
sleep 0.2
kill "$WATCH" 2>/dev/null
h_ok "the copy is byte-identical" cmp "$E/crash/big.bin" "$H_TMP/big.bin"
h_is "$(sort -u "$H_TMP/sizes" | tr '\n' ' ')" "16000000 " "no other size was ever seen under the name"
h_is "$(tmpfiles)" 0 "the next mount removed the temporary file"
h_ok "... and said so in its log" grep -q 'removed .*\.ferryfs\.tmp\..*left by an interrupted copy' "$H_TMP/ferryfs.log"
h_is "$(stat -c %i "$M/crash/big.bin")" "$ino" "st_ino survived the crash and the migration"
h_ok "umount" h_umount

# --- an object replaced while it is copied ---
H_MNT=$H_TMP/mnt2
H_STATE=$H_TMP/state2
H_S3_URL=$H_SLOW_S3_URL h_mount workers=1
M=$H_MNT
setfattr -n user.ferryfs.migrate -v now "$M/repl/obj.bin"
h_ok "the copy of version 1 is in progress" h_wait_for 20 bash -c \
	"[ \$(find '$E/repl' -name '.ferryfs.tmp.*' | wc -l) = 1 ]"
sleep 1   # a second into a four-second transfer (copy.c writes NFS in 8 MiB blocks)
curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
	-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$H_TMP/v2.bin" "$H_S3_URL/$H_BUCKET/repl/obj.bin" -o /dev/null
h_ok "the file ends migrated" h_wait_for 90 bash -c \
	"[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/repl/obj.bin')\" = migrated ]"
h_ok "the new content landed on NFS" cmp "$E/repl/obj.bin" "$H_TMP/v2.bin"
h_is "$(getfattr --only-values -n user.ferryfs.etag "$M/repl/obj.bin")" \
	"$(md5sum <"$H_TMP/v2.bin" | cut -d' ' -f1)" "the ETag is the new object's"
# s3rver rewrites an object in place, so the stream in progress turns into version 2 and
# the MD5 check catches it; real S3 keeps streaming version 1 and the HEAD before
# publishing catches it. Either way the copy starts over.
h_ok "the migrator saw the replacement" grep -q 'replaced during the copy\|changed during the copy\|does not match the ETag' "$H_TMP/ferryfs.log"
h_is "$(tmpfiles)" 0 "no temporary file is left"
h_ok "umount" h_umount
h_done
