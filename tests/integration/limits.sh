#!/bin/bash
# POSIX at its limits through a real mount (s3rver + nfs-ganesha, NFSv3 and NFSv4, and a
# local-directory new store): the longest name and the first one too long on every call,
# a path of 4095 bytes relative to a directory, long symlink targets, a symlink's own
# times, times outside what NFSv3 carries, fallocate, and the temporary file of a copy
# killed with SIGKILL removed by a remount at once. Checks: tests/tools/limits.py.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

L=$H_SRC/tests/tools/limits.py
lim() { "$PY3" "$L" "$@"; }

h_mount mirror=off   # s3rver dies on a 255-byte name (its files add a suffix)
M=$H_MNT
h_ok "NAME_MAX: f_namemax 255, a 255-byte name works, a longer one is ENAMETOOLONG everywhere" \
	lim namemax "$M"
h_ok "PATH_MAX: a path of 4095 bytes relative to a directory works" lim pathmax "$M" deep
h_ok "a symlink with a 1000-byte target" lim symlink "$M" 1000
h_ok "a symlink with a 4000-byte target" lim symlink "$M" 4000
h_ok "a symlink with a 4095-byte target" lim symlink "$M" 4095
h_is "$(readlink "$H_EXPORT/symlinks/l4095" | wc -c)" 4096 "the new store holds the 4095-byte target"
h_ok "utimensat(AT_SYMLINK_NOFOLLOW) sets a symlink's own times" lim lutimes "$M"
h_ok "NFSv3: a time of 2^32 s is refused, nothing changed" lim time "$M" 4294967296 refused
h_ok "NFSv3: a time of -1 s is refused, nothing changed" lim time "$M" -1 refused
h_ok "NFSv3: a time of 2^32-1 s is kept" lim time "$M" 4294967295 kept
h_ok "NFSv3: a time of 0 is kept" lim time "$M" 0 kept
h_ok "NFS: fallocate is EOPNOTSUPP, nothing changed" lim fallocate "$M" eopnotsupp
h_ok "umount" h_umount

h_done
