#!/usr/bin/python3
"""posix_compare.py - the same syscalls on a plain local directory and on a ferryfs mount,
results and errno values compared (the way mergerfs is tested).

Each scenario has its own directory sNN_name with an initial tree whose entries live in S3
only, on NFS only, or on both stores (different bytes: NFS wins). `seed` writes that tree
three ways: the effective tree into the local directory, the S3 part into a staging
directory (the caller uploads it with `aws s3 sync`) and the NFS part into the export.
`run` then executes each scenario's operations on both sides, compares every call's result
or errno, then compares the final trees (names, types, sizes, permission bits, uid/gid,
sha256 of the bytes, symlink targets; never times or inode numbers). `verify` compares the
final trees only (after a remount, say). Output is TAP, one test point per scenario, with a
diff of the first mismatch.

    posix_compare.py seed   --local DIR --s3 STAGING --nfs EXPORT
    posix_compare.py run    --local DIR --mount MNT [--only NAME]
    posix_compare.py verify --local DIR --mount MNT

Standard library only (run by /usr/bin/python3).
"""
import argparse
import ctypes
import errno
import hashlib
import os
import stat
import sys

O = os
RD, WR, RW = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
CR, EX, TR, AP = os.O_CREAT, os.O_EXCL, os.O_TRUNC, os.O_APPEND
RENAME_NOREPLACE = 1
AT_FDCWD = -100


def pattern(n, seed=0):
    """n deterministic bytes (not all the same, so misplaced ranges show)."""
    return bytes((i * 7 + seed * 13 + (i >> 8)) & 0xFF for i in range(n))


BIG = pattern(300000, 1)      # bigger than one FUSE read/write (128 KiB)
MID = pattern(10000, 2)


def s3(data):
    return ('s3', data)


def nfs(data):
    return ('nfs', data)


def both(s3data, nfsdata):
    return ('both', s3data, nfsdata)


NFSDIR = ('nfsdir',)


def nfslink(target):
    return ('nfslink', target)


# --- the scenario table --------------------------------------------------------------------
# (name, initial tree {path: entry}, [operations]). Paths are relative to the scenario's
# directory. Operations are tuples (op, args...), run by Runner below.

SCENARIOS = [
    ('read_s3_only', {'f': s3(BIG), 'small': s3(b'hello\n')}, [
        ('open', 'a', 'f', RD), ('read', 'a', 4096), ('pread', 'a', 100, 200000),
        ('pread', 'a', 100, 299950), ('pread', 'a', 10, 400000), ('read', 'a', 1000000),
        ('close', 'a'), ('stat', 'f'), ('cat', 'small'), ('cat', 'f'),
    ]),
    ('read_both_stores_nfs_wins', {'f': both(b'old s3 bytes\n', b'new nfs bytes\n')}, [
        ('cat', 'f'), ('stat', 'f'),
    ]),
    ('write_rdwr_s3_only', {'f': s3(BIG)}, [
        ('open', 'a', 'f', RW), ('pwrite', 'a', b'XYZ', 100), ('read', 'a', 16),
        ('pread', 'a', 8, 98), ('pwrite', 'a', b'tail', 299998), ('fstat', 'a'),
        ('close', 'a'), ('cat', 'f'), ('stat', 'f'),
    ]),
    ('write_wronly_s3_only_keeps_rest', {'f': s3(MID)}, [
        ('open', 'a', 'f', WR), ('write', 'a', b'abc'), ('write', 'a', b'def'), ('close', 'a'),
        ('cat', 'f'),
    ]),
    ('append_s3_only', {'f': s3(MID), 'g': s3(b'line1\n')}, [
        ('open', 'a', 'f', WR | AP), ('write', 'a', b'appended'), ('write', 'a', b'+more'),
        ('close', 'a'), ('cat', 'f'), ('stat', 'f'),
        ('open', 'b', 'g', RW | AP), ('write', 'b', b'line2\n'), ('pread', 'b', 100, 0),
        ('close', 'b'), ('cat', 'g'),
    ]),
    ('random_write_s3_only', {'f': s3(BIG)}, [
        ('open', 'a', 'f', RW), ('pwrite', 'a', b'A' * 5000, 131070),
        ('pwrite', 'a', pattern(70000, 5), 1), ('pwrite', 'a', b'end', 299997),
        ('pwrite', 'a', b'past', 310000), ('fstat', 'a'), ('pread', 'a', 20, 300000),
        ('close', 'a'), ('cat', 'f'), ('stat', 'f'),
    ]),
    ('o_trunc_s3_only', {'f': s3(BIG), 'g': s3(MID)}, [
        ('open', 'a', 'f', WR | TR), ('fstat', 'a'), ('write', 'a', b'fresh'), ('close', 'a'),
        ('cat', 'f'), ('stat', 'f'),
        ('open', 'b', 'g', RW | TR), ('read', 'b', 10), ('close', 'b'), ('stat', 'g'),
    ]),
    ('o_creat_on_existing_s3_only', {'f': s3(MID), 'g': s3(MID)}, [
        ('open', 'a', 'f', WR | CR | EX), ('open', 'b', 'f', WR | CR),
        ('write', 'b', b'Z'), ('close', 'b'), ('cat', 'f'),
        ('open', 'c', 'g', RW | CR | TR), ('write', 'c', b'new g'), ('close', 'c'), ('cat', 'g'),
    ]),
    ('chmod_s3_only', {'f': s3(MID), 'd/x': s3(b'x')}, [
        ('chmod', 'f', 0o600), ('stat', 'f'), ('cat', 'f'), ('chmod', 'f', 0o4751),
        ('stat', 'f'), ('chmod', 'missing', 0o600),
    ]),
    ('chmod_utime_s3_only_dir', {'d/x': s3(b'x'), 'e/y': s3(b'y')}, [
        ('chmod', 'd', 0o700), ('stat', 'd'), ('listdir', 'd'),
        ('utime', 'e', 1000000, 2000000), ('mtime', 'e'), ('listdir', 'e'),
    ]),
    ('truncate_s3_only', {'grow': s3(MID), 'shrink': s3(MID), 'zero': s3(MID), 'ft': s3(MID)}, [
        ('truncate', 'grow', 20000), ('stat', 'grow'), ('cat', 'grow'),
        ('truncate', 'shrink', 10), ('stat', 'shrink'), ('cat', 'shrink'),
        ('truncate', 'zero', 0), ('stat', 'zero'), ('cat', 'zero'),
        ('open', 'a', 'ft', RW), ('ftruncate', 'a', 5), ('fstat', 'a'), ('pwrite', 'a', b'!', 7),
        ('close', 'a'), ('cat', 'ft'), ('truncate', 'missing', 3),
    ]),
    ('utime_s3_only', {'f': s3(MID)}, [
        ('utime', 'f', 1000000, 1500000000), ('mtime', 'f'), ('cat', 'f'), ('stat', 'f'),
    ]),
    ('create_in_s3_only_dir', {'d/x': s3(b'x'), 'd/sub/y': s3(b'y')}, [
        ('open', 'a', 'd/sub/new', WR | CR | EX, 0o640), ('write', 'a', b'new file'),
        ('close', 'a'), ('listdir', 'd/sub'), ('listdir', 'd'), ('stat', 'd'), ('stat', 'd/sub'),
        ('cat', 'd/sub/new'), ('cat', 'd/sub/y'), ('stat', 'd/sub/new'),
        ('open', 'b', 'd/other', WR | CR | EX), ('close', 'b'), ('listdir', 'd'),
    ]),
    ('mkdir_nested', {'s3d/x': s3(b'x'), 'file': s3(b'f')}, [
        ('mkdir', 'a', 0o755), ('mkdir', 'a/b', 0o700), ('mkdir', 'a/b/c', 0o755),
        ('stat', 'a/b'), ('listdir', 'a'), ('mkdir', 's3d', 0o755), ('mkdir', 's3d/new', 0o755),
        ('listdir', 's3d'), ('mkdir', 'missing/x', 0o755), ('mkdir', 'file/x', 0o755),
        ('mkdir', 'file', 0o755), ('mkdir', 'a', 0o755),
    ]),
    ('unlink_s3_only', {'f': s3(MID), 'keep': s3(b'k')}, [
        ('unlink', 'f'), ('stat', 'f'), ('open', 'a', 'f', RD), ('listdir', '.'),
        ('unlink', 'f'), ('exists', 'f'),
    ]),
    ('unlink_nfs_only', {'f': nfs(MID), 'keep': s3(b'k')}, [
        ('unlink', 'f'), ('stat', 'f'), ('listdir', '.'), ('unlink', 'f'),
    ]),
    ('unlink_both_stores', {'f': both(b'old', b'new'), 'keep': nfs(b'k')}, [
        ('unlink', 'f'), ('stat', 'f'), ('cat', 'f'), ('listdir', '.'), ('unlink', 'f'),
    ]),
    ('unlink_then_recreate', {'f': s3(MID)}, [
        ('unlink', 'f'), ('open', 'a', 'f', WR | CR | EX, 0o600), ('write', 'a', b'second life'),
        ('close', 'a'), ('cat', 'f'), ('stat', 'f'), ('listdir', '.'),
    ]),
    ('rmdir_merged_dir', {'d/a': s3(b'a'), 'd/b': nfs(b'b'), 'd/sub/c': s3(b'c')}, [
        ('rmdir', 'd'), ('unlink', 'd/a'), ('rmdir', 'd'), ('unlink', 'd/b'), ('rmdir', 'd'),
        ('rmdir', 'd/sub/c'), ('unlink', 'd/sub/c'), ('listdir', 'd/sub'), ('rmdir', 'd/sub'),
        ('listdir', 'd'), ('rmdir', 'd'), ('stat', 'd'), ('listdir', '.'), ('rmdir', 'd'),
    ]),
    # rm -r's order: the directories are listed first (the mount caches the listings),
    # then emptied bottom-up
    ('rm_r_s3_only_tree', {'d/a': s3(b'a'), 'd/sub/x': s3(b'x'), 'd/sub/deeper/y': s3(b'y'),
                           'd/sub/deeper/z': s3(b'z'), 'keep': nfs(b'k')}, [
        ('listdir', '.'), ('listdir', 'd'), ('listdir', 'd/sub'), ('listdir', 'd/sub/deeper'),
        ('unlink', 'd/sub/deeper/y'), ('unlink', 'd/sub/deeper/z'), ('rmdir', 'd/sub/deeper'),
        ('unlink', 'd/sub/x'), ('rmdir', 'd/sub'), ('unlink', 'd/a'), ('rmdir', 'd'),
        ('listdir', '.'), ('stat', 'd'),
    ]),
    ('rmdir_s3_only_dir', {'d/x': s3(b'x'), 'e/y': s3(b'y')}, [
        ('rmdir', 'd'), ('unlink', 'd/x'), ('listdir', 'd'), ('rmdir', 'd'), ('stat', 'd'),
        ('stat', 'd/x'), ('listdir', '.'),
    ]),
    ('mkdir_over_removed_s3_dir', {'d/x': s3(b'x'), 'd/sub/y': s3(b'y'), 'other': s3(b'o')}, [
        ('unlink', 'd/x'), ('unlink', 'd/sub/y'), ('rmdir', 'd/sub'), ('rmdir', 'd'),
        ('mkdir', 'd', 0o755), ('listdir', 'd'), ('stat', 'd/x'), ('stat', 'd/sub'),
        ('open', 'a', 'd/new', WR | CR | EX), ('close', 'a'), ('listdir', 'd'),
        ('mkdir', 'd/sub', 0o755), ('listdir', 'd/sub'), ('stat', 'd/sub/y'),
    ]),
    ('rename_files', {'s': s3(MID), 'n': nfs(b'nfs file'), 'b': both(b'old', b'newer')}, [
        ('rename', 's', 's2'), ('stat', 's'), ('cat', 's2'),
        ('rename', 'n', 'n2'), ('stat', 'n'), ('cat', 'n2'),
        ('rename', 'b', 'b2'), ('stat', 'b'), ('cat', 'b2'), ('listdir', '.'),
        ('rename', 's2', 's'), ('cat', 's'), ('rename', 'missing', 'x'),
    ]),
    ('rename_onto_existing', {'s': s3(b'source s3'), 'n': nfs(b'source nfs'),
                              't1': s3(b'target s3'), 't2': nfs(b'target nfs'),
                              't3': both(b'tgt old', b'tgt new'), 't4': s3(b'target s3 again')}, [
        ('rename', 's', 't1'), ('cat', 't1'), ('stat', 's'),
        ('rename', 'n', 't2'), ('cat', 't2'), ('stat', 'n'),
        ('rename', 't1', 't3'), ('cat', 't3'), ('stat', 't1'),
        ('rename', 't2', 't4'), ('cat', 't4'), ('listdir', '.'),
    ]),
    ('rename_noreplace', {'s': s3(b'src s3'), 'n': nfs(b'src nfs'), 'ts': s3(b'tgt s3'),
                          'tn': nfs(b'tgt nfs'), 'dd/x': s3(b'x')}, [
        ('rename2', 's', 'ts', RENAME_NOREPLACE), ('rename2', 's', 'tn', RENAME_NOREPLACE),
        ('rename2', 'n', 'ts', RENAME_NOREPLACE), ('rename2', 'n', 'tn', RENAME_NOREPLACE),
        ('rename2', 'n', 'dd', RENAME_NOREPLACE), ('cat', 'ts'), ('cat', 'tn'),
        ('rename2', 's', 'free1', RENAME_NOREPLACE), ('rename2', 'n', 'free2', RENAME_NOREPLACE),
        ('cat', 'free1'), ('cat', 'free2'), ('listdir', '.'),
    ]),
    ('rename_dir_with_s3_files', {'d/a': s3(b'a'), 'd/sub/b': s3(MID), 'd/sub/deep/c': s3(b'c'),
                                  'm/a': s3(b'ma'), 'm/n': nfs(b'mn'), 'm/s/x': s3(b'mx')}, [
        ('rename', 'd', 'e'), ('stat', 'd'), ('listdir', 'e'), ('listdir', 'e/sub'),
        ('cat', 'e/sub/b'), ('cat', 'e/sub/deep/c'), ('listdir', '.'),
        ('rename', 'm', 'e/m2'), ('listdir', 'e/m2'), ('cat', 'e/m2/s/x'), ('stat', 'm'),
        ('mkdir', 'd', 0o755), ('listdir', 'd'),
    ]),
    ('rename_dir_onto_emptied_dir', {'d/a': s3(b'a'), 't/x': s3(b'x'), 'u/y': nfs(b'y'),
                                     'v/z': s3(b'z')}, [
        ('unlink', 't/x'), ('rename', 'd', 't'), ('listdir', 't'), ('stat', 'd'),
        ('unlink', 'u/y'), ('rename', 't', 'u'), ('listdir', 'u'), ('stat', 't'),
        ('rename', 'u', 'v'),
    ]),
    # (every S3 directory here holds an object of its own: s3rver 3.7.1 lists no common
    # prefix for a directory that holds only subdirectories)
    ('rename_dir_errors', {'d/top': s3(b't'), 'd/sub/x': s3(b'x'), 'full/y': s3(b'y'),
                           'f': s3(b'f'), 'nd/z': nfs(b'z')}, [
        ('rename', 'd', 'd/sub/inside'), ('rename', 'd', 'd/inside'), ('rename', 'nd', 'nd/x'),
        ('rename', 'd', 'full'), ('rename', 'd', 'f'), ('rename', 'f', 'd'),
        ('rename', 'd', 'd'), ('rename', 'f', 'f'), ('listdir', 'd'), ('listdir', '.'),
    ]),
    ('rename_into_s3_only_dir', {'d/x': s3(b'x'), 'f': s3(b'file'), 'n': nfs(b'nfs'),
                                 'k': nfs(b'k')}, [
        ('rename', 'f', 'd/f'), ('rename', 'n', 'd/n'), ('listdir', 'd'), ('cat', 'd/f'),
        ('stat', 'd'), ('rename', 'k', 'd/deeper/k'),
    ]),
    ('hard_link_s3_only', {'f': s3(MID), 'd/x': s3(b'x')}, [
        ('link', 'f', 'g'), ('nlink', 'g'), ('cat', 'g'),
        ('open', 'a', 'g', WR), ('write', 'a', b'via g'), ('close', 'a'), ('cat', 'f'),
        ('link', 'g', 'h'), ('sameino', 'g', 'h'), ('nlink', 'h'),
        ('link', 'f', 'g'), ('link', 'd', 'dlink'), ('link', 'missing', 'm2'),
        ('unlink', 'f'), ('nlink', 'h'), ('cat', 'g'), ('unlink', 'h'), ('nlink', 'g'),
    ]),
    # rename between two names of one file does nothing (POSIX): both names stay, also when
    # S3 still has the source's name (the source is not removed)
    ('rename_onto_own_hard_link', {'f': s3(MID), 'n': nfs(b'nfs file'), 'd/x': s3(b'x')}, [
        ('link', 'f', 'g'), ('rename', 'f', 'g'), ('listdir', '.'), ('nlink', 'f'),
        ('cat', 'f'), ('cat', 'g'), ('link', 'n', 'm'), ('rename', 'm', 'n'), ('listdir', '.'),
        ('nlink', 'n'), ('rename', 'g', 'f'), ('nlink', 'g'),
    ]),
    # the old name of a file stat'ed while S3-only, linked (so copied up), stat'ed again at
    # once: spec 4 wants one st_ino before and after the copy-up, and for both links
    ('hard_link_inode_across_copyup', {'f': s3(MID), 'd/x': s3(b'x')}, [
        ('stat', 'f'), ('link', 'f', 'g'), ('sameino', 'f', 'g'), ('nlink', 'f'),
        ('nlink', 'g'), ('link', 'd/x', 'xlink'), ('sameino', 'd/x', 'xlink'),
        ('link', 'g', 'h'), ('unlink', 'f'), ('nlink', 'h'), ('nlink', 'g'),
    ]),
    ('symlinks', {'f': s3(b'target bytes'), 'd/x': s3(b'x'), 'old': nfslink('f')}, [
        ('symlink', 'f', 'l'), ('readlink', 'l'), ('cat', 'l'), ('lstat', 'l'), ('stat', 'l'),
        ('symlink', 'x', 'd/lx'), ('cat', 'd/lx'), ('listdir', 'd'),
        ('symlink', 'nowhere', 'dangling'), ('readlink', 'dangling'), ('cat', 'dangling'),
        ('symlink', 'f', 'f'), ('symlink', 'f', 'l'), ('readlink', 'f'), ('readlink', 'old'),
        ('rename', 'l', 'l2'), ('readlink', 'l2'), ('unlink', 'old'), ('lstat', 'old'),
    ]),
    ('mknod_fifo', {'d/x': s3(b'x')}, [
        ('mkfifo', 'd/fifo'), ('lstat', 'd/fifo'), ('listdir', 'd'), ('mkfifo', 'd/fifo'),
        ('mkfifo', 'd/x'), ('unlink', 'd/fifo'),
    ]),
    ('error_cases', {'f': s3(b'f'), 'd/x': s3(b'x'), 'n': nfs(b'n')}, [
        ('open', 'a', 'missing', RD), ('stat', 'missing'), ('stat', 'd/missing'),
        ('open', 'b', 'd', WR), ('open', 'c', 'd', RD | CR), ('listdir', 'f'),
        ('stat', 'f/x'), ('stat', 'n/x'), ('open', 'e', 'f/x', WR | CR), ('unlink', 'd'),
        ('rmdir', 'f'), ('rmdir', 'n'), ('mkdir', 'f', 0o755), ('mkdir', 'd', 0o755),
        ('open', 'g', 'd/x', WR | CR | EX), ('unlink', 'missing'), ('rmdir', 'missing'),
        ('readlink', 'missing'), ('truncate', 'd', 0), ('listdir', 'missing'),
    ]),
    ('write_then_list_merged', {'d/s3a': s3(b'a'), 'd/s3b': s3(b'b'), 'd/nfsc': nfs(b'c'),
                                'd/s/s3d': s3(b'd')}, [
        ('open', 'a', 'd/s3a', WR), ('write', 'a', b'A'), ('close', 'a'), ('listdir', 'd'),
        ('open', 'b', 'd/s/new', WR | CR), ('close', 'b'), ('listdir', 'd/s'),
        ('rename', 'd/s3b', 'd/s/s3b'), ('listdir', 'd'), ('listdir', 'd/s'),
    ]),
    ('rename_then_reuse_names', {'a': s3(b'first'), 'b': s3(b'second')}, [
        ('rename', 'a', 'c'), ('rename', 'b', 'a'), ('rename', 'c', 'b'), ('cat', 'a'),
        ('cat', 'b'), ('listdir', '.'), ('unlink', 'a'), ('rename', 'b', 'a'), ('cat', 'a'),
        ('listdir', '.'),
    ]),
    ('two_handles_after_copyup', {'f': s3(MID)}, [
        ('open', 'r', 'f', RD), ('open', 'w', 'f', WR), ('pwrite', 'w', b'NEW', 0),
        ('close', 'w'), ('open', 'r2', 'f', RD), ('read', 'r2', 8), ('close', 'r2'),
        ('close', 'r'), ('cat', 'f'),
    ]),
    # every other name of a hard-linked file shows its new link count at once, whatever
    # changed it (link, unlink, rename over one name) and wherever the name has moved since
    ('hard_link_other_names', {'f': nfs(b'f'), 'x': nfs(b'x'), 'd/y': nfs(b'y')}, [
        ('link', 'f', 'g'), ('link', 'f', 'd/h'), ('nlink', 'g'), ('nlink', 'd/h'),
        ('link', 'g', 'm'), ('nlink', 'd/h'), ('nlink', 'f'), ('nlink', 'g'),
        ('rename', 'x', 'f'), ('nlink', 'g'), ('nlink', 'd/h'), ('nlink', 'm'),
        ('rename', 'd', 'e'), ('unlink', 'g'), ('nlink', 'e/h'), ('nlink', 'm'),
        ('rename', 'm', 'e/h'), ('nlink', 'm'), ('nlink', 'e/h'),
        ('unlink', 'e/h'), ('nlink', 'm'), ('link', 'm', 'e/h2'), ('nlink', 'm'),
    ]),
    # an open file whose name is removed keeps working until the last close (libfuse hides
    # it, ferryfs keeps it on the new store under a reserved name: doc/namespace.md)
    ('open_unlinked_nfs', {'f': nfs(MID), 'g': nfs(b'g')}, [
        ('open', 'a', 'f', RW), ('pwrite', 'a', b'new', 0), ('unlink', 'f'),
        ('pread', 'a', 16, 0), ('pwrite', 'a', b'after', 12000), ('fstat', 'a'),
        ('fnlink', 'a'), ('pread', 'a', 10, 11998), ('ftruncate', 'a', 5), ('read', 'a', 100),
        ('listdir', '.'), ('exists', 'f'), ('open', 'b', 'g', RD), ('unlink', 'g'),
        ('read', 'b', 10), ('listdir', '.'), ('close', 'b'), ('fstat', 'a'), ('close', 'a'),
        ('listdir', '.'), ('exists', 'f'),
    ]),
    ('open_unlinked_s3', {'f': s3(BIG), 'd/x': s3(b'x')}, [
        ('open', 'a', 'f', RD), ('read', 'a', 100), ('unlink', 'f'), ('pread', 'a', 100, 200000),
        ('fstat', 'a'), ('fnlink', 'a'), ('listdir', '.'), ('exists', 'f'), ('close', 'a'),
        ('listdir', '.'), ('exists', 'f'), ('open', 'b', 'f', WR | CR), ('write', 'b', b'again'),
        ('close', 'b'), ('cat', 'f'),
    ]),
    # log rotation: the writer keeps its descriptor (O_APPEND) across rename(log, log.1)
    ('log_rotation', {'log': s3(b'line 1\n'), 'app.log': nfs(b'a 1\n')}, [
        ('open', 'a', 'log', WR | AP), ('write', 'a', b'line 2\n'), ('rename', 'log', 'log.1'),
        ('open', 'b', 'log', WR | CR | AP), ('write', 'b', b'new 1\n'),
        ('write', 'a', b'line 3\n'), ('close', 'a'), ('write', 'b', b'new 2\n'), ('close', 'b'),
        ('cat', 'log.1'), ('cat', 'log'), ('open', 'c', 'app.log', WR | AP),
        ('write', 'c', b'a 2\n'), ('rename', 'app.log', 'app.log.1'), ('write', 'c', b'a 3\n'),
        ('unlink', 'app.log.1'), ('write', 'c', b'a 4\n'), ('pread', 'c', 100, 0),
        ('close', 'c'), ('listdir', '.'),
    ]),
    # rename(a, b) onto an open b: the reader keeps b's old bytes, the name has a's
    ('rename_onto_open', {'a': s3(b'bytes of a'), 'b': nfs(MID), 'c': nfs(b'bytes of c'),
                          'd': s3(b'old d')}, [
        ('open', 'r', 'b', RD), ('read', 'r', 10), ('rename', 'a', 'b'), ('pread', 'r', 10, 100),
        ('fstat', 'r'), ('fnlink', 'r'), ('cat', 'b'), ('listdir', '.'), ('close', 'r'),
        ('cat', 'b'), ('open', 'w', 'd', RW), ('rename', 'c', 'd'), ('pwrite', 'w', b'NEW', 0),
        ('pread', 'w', 10, 0), ('cat', 'd'), ('close', 'w'), ('cat', 'd'), ('listdir', '.'),
    ]),
    # a hidden file with other names: they keep the bytes and show the right link count
    ('open_unlinked_hard_link', {'f': nfs(b'linked bytes'), 'x': nfs(b'x')}, [
        ('link', 'f', 'g'), ('link', 'f', 'h'), ('open', 'a', 'f', RW), ('unlink', 'f'),
        ('fnlink', 'a'), ('nlink', 'g'), ('pwrite', 'a', b'LINKED', 0), ('cat', 'g'),
        ('open', 'b', 'g', RD), ('rename', 'x', 'g'), ('fnlink', 'a'), ('fnlink', 'b'),
        ('nlink', 'h'), ('listdir', '.'), ('close', 'b'), ('close', 'a'), ('nlink', 'h'),
        ('cat', 'h'), ('cat', 'g'), ('listdir', '.'),
    ]),
]


# --- running operations ---------------------------------------------------------------------

def kind(mode):
    for test, name in ((stat.S_ISREG, 'file'), (stat.S_ISDIR, 'dir'), (stat.S_ISLNK, 'link'),
                       (stat.S_ISFIFO, 'fifo'), (stat.S_ISCHR, 'chr'), (stat.S_ISBLK, 'blk'),
                       (stat.S_ISSOCK, 'sock')):
        if test(mode):
            return name
    return '?'


def describe_stat(st):
    """What is compared of a stat: type, permission bits, and the size of a non-directory."""
    d = {'type': kind(st.st_mode), 'perm': '%04o' % stat.S_IMODE(st.st_mode)}
    if not stat.S_ISDIR(st.st_mode):
        d['size'] = st.st_size
    return d


_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(src, dst, flags):
    rc = _libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src)


class Runner:
    def __init__(self, root):
        self.root = root
        self.fds = {}

    def p(self, rel):
        return self.root if rel == '.' else os.path.join(self.root, rel)

    def do(self, op):
        name, args = op[0], op[1:]
        fn = getattr(self, 'op_' + name)
        try:
            return ('ok', fn(*args))
        except OSError as e:
            return ('err', errno.errorcode.get(e.errno, str(e.errno)))

    def close_all(self):
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()

    # file handles
    def op_open(self, h, path, flags, mode=0o644):
        self.fds[h] = os.open(self.p(path), flags, mode)

    def op_close(self, h):
        os.close(self.fds.pop(h))

    def op_read(self, h, n):
        return os.read(self.fds[h], n)

    def op_pread(self, h, n, off):
        return os.pread(self.fds[h], n, off)

    def op_write(self, h, data):
        return os.write(self.fds[h], data)

    def op_pwrite(self, h, data, off):
        return os.pwrite(self.fds[h], data, off)

    def op_ftruncate(self, h, size):
        os.ftruncate(self.fds[h], size)

    def op_fstat(self, h):
        return describe_stat(os.fstat(self.fds[h]))

    def op_fnlink(self, h):
        return os.fstat(self.fds[h]).st_nlink

    # paths
    def op_cat(self, path):
        with open(self.p(path), 'rb') as f:
            return f.read()

    def op_stat(self, path):
        return describe_stat(os.stat(self.p(path)))

    def op_lstat(self, path):
        return describe_stat(os.lstat(self.p(path)))

    def op_exists(self, path):
        return os.path.lexists(self.p(path))

    def op_mtime(self, path):
        return int(os.stat(self.p(path)).st_mtime)

    def op_nlink(self, path):
        return os.stat(self.p(path)).st_nlink

    def op_sameino(self, a, b):
        sa, sb = os.stat(self.p(a)), os.stat(self.p(b))
        return sa.st_ino == sb.st_ino

    def op_truncate(self, path, size):
        os.truncate(self.p(path), size)

    def op_chmod(self, path, mode):
        os.chmod(self.p(path), mode)

    def op_utime(self, path, atime, mtime):
        os.utime(self.p(path), (atime, mtime))

    def op_mkdir(self, path, mode):
        os.mkdir(self.p(path), mode)

    def op_rmdir(self, path):
        os.rmdir(self.p(path))

    def op_unlink(self, path):
        os.unlink(self.p(path))

    def op_rename(self, a, b):
        os.rename(self.p(a), self.p(b))

    def op_rename2(self, a, b, flags):
        renameat2(self.p(a), self.p(b), flags)

    def op_link(self, a, b):
        os.link(self.p(a), self.p(b))

    def op_symlink(self, target, path):
        os.symlink(target, self.p(path))

    def op_readlink(self, path):
        return os.readlink(self.p(path))

    def op_mkfifo(self, path):
        os.mknod(self.p(path), stat.S_IFIFO | 0o644)

    def op_listdir(self, path):
        return sorted(os.listdir(self.p(path)))


def tree(root):
    """The final state of a scenario directory: {relative path: description}."""
    out = {}

    def walk(rel):
        full = root if not rel else os.path.join(root, rel)
        for name in sorted(os.listdir(full)):
            r = os.path.join(rel, name) if rel else name
            p = os.path.join(root, r)
            st = os.lstat(p)
            d = describe_stat(st)
            d['owner'] = '%d:%d' % (st.st_uid, st.st_gid)
            if stat.S_ISREG(st.st_mode):
                with open(p, 'rb') as f:
                    d['sha256'] = hashlib.sha256(f.read()).hexdigest()[:16]
            elif stat.S_ISLNK(st.st_mode):
                d['target'] = os.readlink(p)
            out[r] = d
            if stat.S_ISDIR(st.st_mode):
                walk(r)
    walk('')
    return out


def show(v):
    """A short printable form of a result value."""
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], bytes):
        b = v[1]
        if len(b) > 48:
            return '%s %d bytes sha256 %s... head %r' % (
                v[0], len(b), hashlib.sha256(b).hexdigest()[:16], b[:24])
        return '%s %r' % (v[0], b)
    return '%s %r' % v


def show_op(op):
    parts = []
    for k, a in enumerate(op):
        if isinstance(a, bytes) and len(a) > 24:
            parts.append('<%d bytes>' % len(a))
        elif op[0] == 'open' and k == 3:
            parts.append(flag_names(a))
        else:
            parts.append(repr(a))
    return '(' + ', '.join(parts) + ')'


def flag_names(flags):
    acc = {RD: 'O_RDONLY', WR: 'O_WRONLY', RW: 'O_RDWR'}[flags & os.O_ACCMODE]
    names = [acc] + [n for f, n in ((CR, 'O_CREAT'), (EX, 'O_EXCL'), (TR, 'O_TRUNC'),
                                    (AP, 'O_APPEND')) if flags & f]
    return '|'.join(names)


def tree_diff(want, got):
    lines = []
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            lines.append('%s: local %s, mount %s' % (k, want.get(k, 'missing'),
                                                    got.get(k, 'missing')))
    return lines


def scen_dir(i, name):
    return 's%02d_%s' % (i + 1, name)


# --- seed -----------------------------------------------------------------------------------

def write_file(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    os.chmod(path, mode)


def seed(args):
    os.umask(0o022)
    for i, (name, init, _ops) in enumerate(SCENARIOS):
        d = scen_dir(i, name)
        os.makedirs(os.path.join(args.local, d), exist_ok=True)
        for rel, ent in init.items():
            loc = os.path.join(args.local, d, rel)
            if ent[0] == 's3':
                write_file(os.path.join(args.s3, d, rel), ent[1])
                write_file(loc, ent[1])
            elif ent[0] == 'nfs':
                write_file(os.path.join(args.nfs, d, rel), ent[1])
                write_file(loc, ent[1])
            elif ent[0] == 'both':
                write_file(os.path.join(args.s3, d, rel), ent[1])
                write_file(os.path.join(args.nfs, d, rel), ent[2])
                write_file(loc, ent[2])
            elif ent[0] == 'nfsdir':
                os.makedirs(os.path.join(args.nfs, d, rel), exist_ok=True)
                os.makedirs(loc, exist_ok=True)
            elif ent[0] == 'nfslink':
                p = os.path.join(args.nfs, d, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                os.symlink(ent[1], p)
                os.makedirs(os.path.dirname(loc), exist_ok=True)
                os.symlink(ent[1], loc)
    return 0


# --- run / verify -----------------------------------------------------------------------------

def selected(args):
    for i, (name, init, ops) in enumerate(SCENARIOS):
        if args.only and args.only not in name:
            continue
        yield i, name, init, ops


def todo_for(name, todo):
    for t in todo:
        key, _, why = t.partition('=')
        if key == name:
            return why or 'known bug'
    return None


def tap_point(n, ok, desc, todo, diag):
    # TODO only on a failing point: a passing one must not count as an unexpected pass
    directive = ' # TODO known bug: %s' % todo if todo and not ok else ''
    print('%s %d - %s%s' % ('ok' if ok else 'not ok', n, desc, directive))
    for line in diag:
        print('# ' + line)
    sys.stdout.flush()


def run(args):
    os.umask(0o022)
    failed = 0
    n = 0
    for i, name, _init, ops in selected(args):
        n += 1
        d = scen_dir(i, name)
        loc, mnt = Runner(os.path.join(args.local, d)), Runner(os.path.join(args.mount, d))
        diag = []
        more = 0
        try:
            for k, op in enumerate(ops):
                want, got = loc.do(op), mnt.do(op)
                if want != got and not diag:
                    diag = ['step %d %s' % (k + 1, show_op(op)),
                            '  local: %s' % show(want), '  mount: %s' % show(got)]
                elif want != got:
                    more += 1
            if more:
                diag.append('(and %d later steps differ)' % more)
            loc.close_all()
            mnt.close_all()
            if not diag:
                diag = tree_diff(tree(loc.root), tree(mnt.root))
                if diag:
                    diag = ['final trees differ:'] + diag[:20]
        except OSError as e:
            diag = ['cannot compare: %s' % e]
        todo = todo_for(name, args.todo)
        tap_point(n, not diag, d, todo, diag)
        if diag and not todo:
            failed += 1
    print('1..%d' % n)
    return 1 if failed else 0


def verify(args):
    failed = 0
    n = 0
    for i, name, _init, _ops in selected(args):
        n += 1
        d = scen_dir(i, name)
        try:
            diag = tree_diff(tree(os.path.join(args.local, d)), tree(os.path.join(args.mount, d)))
        except OSError as e:
            diag = ['cannot compare: %s' % e]
        todo = todo_for(name, args.todo)
        tap_point(n, not diag, '%s: final tree %s' % (d, args.label), todo, diag[:20])
        if diag and not todo:
            failed += 1
    print('1..%d' % n)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('cmd', choices=('seed', 'run', 'verify', 'list'))
    ap.add_argument('--local')
    ap.add_argument('--mount')
    ap.add_argument('--s3')
    ap.add_argument('--nfs')
    ap.add_argument('--only', default='')
    ap.add_argument('--label', default='again')
    ap.add_argument('--todo', action='append', default=[],
                    help='NAME=REASON: a scenario failing because of a known bug (TAP TODO)')
    args = ap.parse_args()
    if args.cmd == 'list':
        for i, (name, _i, ops) in enumerate(SCENARIOS):
            print('%s %d ops' % (scen_dir(i, name), len(ops)))
        return 0
    if args.cmd == 'seed':
        return seed(args)
    if args.cmd == 'run':
        return run(args)
    return verify(args)


if __name__ == '__main__':
    sys.exit(main())
