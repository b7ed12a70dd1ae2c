#!/bin/bash
# POSIX at its limits through a real mount over s3rver and a new store of each kind
# (nfs-ganesha over NFSv3 and NFSv4, a local directory): the longest name and the first
# one too long on every call, a path of 4095 bytes relative to a directory, long symlink
# targets, a symlink's own times, times outside what NFSv3 carries, fallocate, and the
# temporary file of a copy killed with SIGKILL removed by a remount at once. What each
# check asserts: tests/tools/limits.py.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

L=$H_SRC/tests/tools/limits.py
lim() { "$PY3" "$L" "$@"; }
NFS3_URL=$H_NFS_URL

# s3rver dies on a 255-byte name (it adds a suffix to its file names): no write-back here
h_mount mirror=off
M=$H_MNT
h_ok "NFSv3: f_namemax 255, a 255-byte name works, a longer one is ENAMETOOLONG everywhere" \
	lim namemax "$M"
h_ok "NFSv3: a symlink with a 1000-byte target" lim symlink "$M" 1000
h_ok "NFSv3: a symlink with a 4000-byte target" lim symlink "$M" 4000
h_ok "NFSv3: a symlink with a 4095-byte target" lim symlink "$M" 4095
h_is "$(readlink "$H_EXPORT/symlinks/l4095" | wc -c)" 4096 "the export holds the 4095-byte target"
# nfs-ganesha's VFS answers OK to a SETATTR of a symlink's times and keeps them
h_ok "NFSv3 (nfs-ganesha): utimensat(AT_SYMLINK_NOFOLLOW) on a symlink is EOPNOTSUPP, nothing changed" \
	lim lutimes "$M" eopnotsupp
h_ok "NFSv3: a time of 2^32 s is refused, nothing changed" lim time "$M" 4294967296 refused
h_ok "NFSv3: a time of -1 s is refused, nothing changed" lim time "$M" -1 refused
h_ok "NFSv3: a time of 2^32-1 s is kept" lim time "$M" 4294967295 kept
h_ok "NFSv3: a time of 0 is kept" lim time "$M" 0 kept
h_ok "NFSv3: fallocate is EOPNOTSUPP, nothing changed" lim fallocate "$M" eopnotsupp
h_ok "umount (NFSv3)" h_umount

mkdir -p "$H_TMP/local"
H_NFS_URL=$H_TMP/local H_STATE=$H_TMP/state-local h_mount mirror=off
h_ok "local store: f_namemax 255, names up to 255 bytes, ENAMETOOLONG beyond" lim namemax "$M"
h_ok "local store: a symlink with a 4095-byte target" lim symlink "$M" 4095
h_ok "local store: utimensat(AT_SYMLINK_NOFOLLOW) sets a symlink's own times" lim lutimes "$M" set
h_ok "local store: a time of 2^32 s is kept" lim time "$M" 4294967296 kept
h_ok "local store: a time of -1 s is kept" lim time "$M" -1 kept
h_ok "local store: fallocate mode 0 and KEEP_SIZE" lim fallocate "$M" ok
h_ok "local store: a path of 4095 bytes relative to a directory" lim pathmax "$M" deep
h_ok "umount (local store)" h_umount

H_NFS_URL=$H_NFS4_URL H_STATE=$H_TMP/state-v4 h_mount mirror=off
h_ok "NFSv4: a time of 2^32 s is kept" lim time "$M" 4294967296 kept
h_ok "NFSv4: a time of -1 s is kept" lim time "$M" -1 kept
# libnfs 4.0 encodes an NFSv4 request into 4 KiB (a LOOKUP per component): a longer path
# is refused as too long, never with another errno
h_is "$(lim pathmax "$M" deep4)" "File name too long (ENAMETOOLONG) on a 3215-byte path" \
	"NFSv4: a path past libnfs's 4 KiB request is ENAMETOOLONG"
h_ok "umount (NFSv4)" h_umount

# A path of 4095 bytes relative to a directory (4101 from the root) through every layer
# with write-back on: the journal, the ledger, the mirror. Its S3 key would be over 1024
# bytes: not written back, counted and shown; a short path beside it is written back.
H_STATE=$H_TMP/state-paths h_mount
h_ok "PATH_MAX: a path of 4095 bytes relative to a directory works, 4096 is ENAMETOOLONG" \
	lim pathmax "$M" deep
h_ok "ferryctl sync-back --wait drains the journal" "$FERRYCTL" sync-back "$M" --wait
seg=$(printf 'a%.0s' $(seq 200))
h_is "$(h_aws s3 cp "s3://$H_BUCKET/deep/$seg/short.txt" - 2>&1)" "short" \
	"S3 has the short path beside it"
h_is "$(lim longxattr "$M" deep user.ferryfs.error)" \
	"not written back to S3: its key would be over 1024 bytes" \
	"user.ferryfs.error of the long path says why it is not in S3"
h_ok "user.ferryfs.stats counts it (mirror_key_too_long)" \
	bash -c "getfattr --absolute-names --only-values -n user.ferryfs.stats '$M' | grep -qE '^mirror_key_too_long [1-9]'"
h_ok "umount (long paths)" h_umount
H_STATE=$H_TMP/state-paths h_mount
h_ok "the long path reads back after a remount" lim pathmax "$M" deep
h_ok "umount (long paths, remounted)" h_umount

# A copy-up killed with SIGKILL, and a remount at once while the old process has not
# finished exiting: the daemon's parent here never reaps it, so it stays a zombie that
# /proc still names "ferryfs". The remount holds the state directory's lock: the
# temporary file of that directory's dead process is removed all the same.
head -c 3000000 /dev/urandom >"$H_TMP/big.bin"
h_seed_s3 crash/big.bin "$H_TMP/big.bin" || h_bail "seeding crash/big.bin"
h_slow_s3 150000     # the copy-up of 3 MB lasts 20 s
CRASH_STATE=$H_TMP/state-crash
mkdir -p "$CRASH_STATE"
opts="s3_endpoint=$H_SLOW_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,s3_region=us-east-1"
opts+=",nfs=$NFS3_URL,state_dir=$CRASH_STATE,log=stderr,mirror=off"
bash -c '"$0" "$1" -f -o "$2" >>"$3" 2>&1 & echo $! >"$4"; exec sleep 300' \
	"$FERRYFS" "$M" "$opts" "$H_TMP/ferryfs.log" "$H_TMP/crash.pid" &
H_PIDS+=($!)
h_wait_for 30 grep -qF " $M fuse" /proc/mounts || h_bail "the daemon to kill did not mount"
crash_pid=$(cat "$H_TMP/crash.pid")
(printf 'appended\n' >>"$M/crash/big.bin") 2>/dev/null &
H_PIDS+=($!)
tmp_of_copy() { find "$H_EXPORT/crash" -name '.ferryfs.tmp.*' | grep -q .; }
h_ok "a copy-up is in progress (its temporary file is on the export)" h_wait_for 20 tmp_of_copy
kill -9 "$crash_pid"
fusermount3 -uz "$M"
H_STATE=$CRASH_STATE h_mount mirror=off
h_ok "the killed daemon has not finished exiting when the remount starts" \
	test "$(cat "/proc/$crash_pid/comm" 2>/dev/null)" = ferryfs
h_ok "the remount removed the killed copy's temporary file" \
	h_wait_for 20 bash -c "! find '$H_EXPORT/crash' -name '.ferryfs.tmp.*' | grep -q ."
h_is "$(cmp "$M/crash/big.bin" "$H_TMP/big.bin" && echo same)" same \
	"the file reads as S3 has it"
h_ok "umount (after the crash)" h_umount

h_done
