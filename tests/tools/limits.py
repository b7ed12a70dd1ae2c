#!/usr/bin/env python3
"""limits.py - POSIX limits on a mount, one check per subcommand; exit 0 when it holds,
else prints what differed and exits 1. Used by tests/integration/limits.sh.

  namemax MNT        statvfs's f_namemax is 255; a 255-byte name works for every call;
                     a 256-byte name is ENAMETOOLONG for every call (never ENOENT)
  pathmax MNT REL    a path of 4095 bytes relative to MNT/REL (longer from the root) works:
                     mkdir -p, create, write, read back, chmod, utime, rename, symlink,
                     listing; one byte more is ENAMETOOLONG; also writes REL/a.../short.txt
  longxattr MNT REL NAME  prints extended attribute NAME of that 4095-byte path
  symlink MNT N      a symlink whose target is N bytes is made and read back
  lutimes MNT WANT   utimensat(AT_SYMLINK_NOFOLLOW) on a symlink: WANT "set" (its times
                     change, not its target's) or "eopnotsupp" (refused, nothing changed)
  time MNT SEC WANT  utime(SEC) on a file: WANT "kept" (reads back) or "refused"
                     (EINVAL/EOVERFLOW, times unchanged)
  fallocate MNT WANT mode 0 and FALLOC_FL_KEEP_SIZE: WANT "ok" (sizes and zeros as POSIX
                     says) or "eopnotsupp"
"""
import ctypes
import ctypes.util
import errno
import os
import sys

FAIL = []


def fail(msg):
    FAIL.append(msg)


def expect_err(what, fn, want=errno.ENAMETOOLONG):
    try:
        fn()
    except OSError as e:
        if e.errno != want:
            fail(f"{what}: {errno.errorcode.get(e.errno, e.errno)}, want {errno.errorcode[want]}")
        return
    fail(f"{what}: succeeded, want {errno.errorcode[want]}")


def namemax(mnt):
    d = os.path.join(mnt, "namemax")
    os.makedirs(d, exist_ok=True)
    sv = os.statvfs(mnt)
    if sv.f_namemax != 255:
        fail(f"f_namemax {sv.f_namemax}, want 255")
    ok = os.path.join(d, "n" * 255)
    with open(ok, "w") as f:
        f.write("x")
    os.stat(ok)
    os.chmod(ok, 0o600)
    os.rename(ok, ok[:-1] + "m")
    os.rename(ok[:-1] + "m", ok)
    os.symlink("target", ok[:-1] + "s")
    os.unlink(ok[:-1] + "s")
    os.mkdir(ok[:-1] + "d")
    os.rmdir(ok[:-1] + "d")
    if ("n" * 255) not in os.listdir(d):
        fail("the 255-byte name is not listed")
    os.unlink(ok)
    for n in (256, 300, 1024):
        long = os.path.join(d, "l" * n)
        expect_err(f"{n}: stat", lambda: os.stat(long))
        expect_err(f"{n}: lstat", lambda: os.lstat(long))
        expect_err(f"{n}: open O_CREAT", lambda: os.open(long, os.O_CREAT | os.O_WRONLY, 0o644))
        expect_err(f"{n}: open", lambda: os.open(long, os.O_RDONLY))
        expect_err(f"{n}: mkdir", lambda: os.mkdir(long))
        expect_err(f"{n}: chmod", lambda: os.chmod(long, 0o644))
        expect_err(f"{n}: unlink", lambda: os.unlink(long))
        expect_err(f"{n}: rmdir", lambda: os.rmdir(long))
        expect_err(f"{n}: symlink", lambda: os.symlink("t", long))
        expect_err(f"{n}: readlink", lambda: os.readlink(long))
        expect_err(f"{n}: getxattr", lambda: os.getxattr(long, "user.x"))
        expect_err(f"{n}: truncate", lambda: os.truncate(long, 0))
        expect_err(f"{n}: utime", lambda: os.utime(long))
        src = os.path.join(d, "src")
        open(src, "w").close()
        expect_err(f"{n}: rename to", lambda: os.rename(src, long))
        expect_err(f"{n}: rename from", lambda: os.rename(long, src))
        expect_err(f"{n}: link to", lambda: os.link(src, long))
        expect_err(f"{n}: mkdir below", lambda: os.mkdir(os.path.join(long, "x")))
        os.unlink(src)


def long_path():
    """4095 bytes: 20 directories of 200-byte names (s3rver keeps a name of up to 240) and
    a file name. Relative to the directory the calls are made in."""
    dirs = "/".join(chr(ord("a") + i) * 200 for i in range(20))
    rel = dirs + "/" + "f" * (4095 - len(dirs) - 1)
    assert len(rel) == 4095
    return dirs, rel


def pathmax(mnt, rel):
    base = os.path.join(mnt, rel)
    os.makedirs(base, exist_ok=True)
    dirs, relpath = long_path()
    old = os.getcwd()
    os.chdir(base)
    try:
        os.makedirs(dirs, exist_ok=True)
        with open(relpath, "w") as f:
            f.write("deep file\n")
        with open(relpath) as f:
            if f.read() != "deep file\n":
                fail("read back differs")
        os.chmod(relpath, 0o640)
        os.utime(relpath, (1500000000, 1500000000))
        os.rename(relpath, relpath[:-1] + "g")
        os.rename(relpath[:-1] + "g", relpath)
        st = os.stat(relpath)
        if (st.st_mode & 0o777, st.st_mtime, st.st_size) != (0o640, 1500000000, 10):
            fail(f"stat: mode {oct(st.st_mode)}, mtime {st.st_mtime}, size {st.st_size}")
        os.symlink("target", relpath[:-1] + "s")
        os.unlink(relpath[:-1] + "s")
        if os.path.basename(relpath) not in os.listdir(os.path.dirname(relpath)):
            fail("the file is not listed")
        # a name that makes the path one byte longer than 4095: ENAMETOOLONG from the kernel
        expect_err("4096 bytes", lambda: os.stat(relpath + "x"))
        with open(os.path.join(dirs.split("/")[0], "short.txt"), "w") as f:
            f.write("short\n")
    except OSError as e:
        fail(f"{e.strerror} ({errno.errorcode.get(e.errno)}) on a "
             f"{e.filename and len(e.filename)}-byte path")
    finally:
        os.chdir(old)


def longxattr(mnt, rel, name):
    os.chdir(os.path.join(mnt, rel))
    try:
        print(os.getxattr(long_path()[1], name).decode())
    except OSError as e:
        print(f"error: {errno.errorcode.get(e.errno)}")


def symlink(mnt, n):
    d = os.path.join(mnt, "symlinks")
    os.makedirs(d, exist_ok=True)
    t = ("t" * 200 + "/") * (n // 201) + "t" * (n % 201)
    t = t[:n]
    assert len(t) == n
    p = os.path.join(d, f"l{n}")
    try:
        os.symlink(t, p)
        got = os.readlink(p)
        if got != t:
            fail(f"readlink gave {len(got)} bytes, want {n}")
    except OSError as e:
        fail(f"{n}-byte target: {e.strerror} ({errno.errorcode.get(e.errno)})")


def lutimes(mnt, want):
    d = os.path.join(mnt, "lutimes")
    os.makedirs(d, exist_ok=True)
    t = os.path.join(d, "target")
    open(t, "w").close()
    os.utime(t, (1500000000, 1500000000))
    link = os.path.join(d, "link")
    os.symlink("target", link)
    before = os.lstat(link)
    try:
        os.utime(link, ns=(1600000000_000000000, 1600000001_000000000), follow_symlinks=False)
        if want != "set":
            fail("utimensat succeeded, want EOPNOTSUPP")
    except OSError as e:
        if want == "set" or e.errno != errno.EOPNOTSUPP:
            fail(f"utimensat: {errno.errorcode.get(e.errno)}")
    st = os.lstat(link)
    got = (st.st_atime_ns, st.st_mtime_ns)
    if want == "set" and got != (1600000000_000000000, 1600000001_000000000):
        fail(f"the link's times are {st.st_atime_ns}, {st.st_mtime_ns}")
    if want != "set" and st.st_mtime_ns != before.st_mtime_ns:
        fail(f"refused, but the link's mtime changed to {st.st_mtime_ns}")
    st = os.stat(t)
    if st.st_mtime != 1500000000:
        fail(f"the target's mtime changed to {st.st_mtime}")


def timecheck(mnt, sec, want):
    d = os.path.join(mnt, "times")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, f"t{sec}")
    open(p, "w").close()
    os.utime(p, (1500000000, 1500000000))
    try:
        os.utime(p, (sec, sec))
    except OSError as e:
        if want == "kept":
            fail(f"utime({sec}): {errno.errorcode.get(e.errno)}")
        elif e.errno not in (errno.EINVAL, errno.EOVERFLOW):
            fail(f"utime({sec}): {errno.errorcode.get(e.errno)}, want EINVAL or EOVERFLOW")
        elif os.stat(p).st_mtime != 1500000000:
            fail(f"refused, but the mtime changed to {os.stat(p).st_mtime}")
        return
    got = os.stat(p).st_mtime
    if want == "refused":
        fail(f"utime({sec}) succeeded and reads back {got}")
    elif got != sec:
        fail(f"utime({sec}) reads back {got}")


def fallocate(mnt, want):
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    d = os.path.join(mnt, "falloc")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "f")
    with open(p, "wb") as f:
        f.write(b"abc")
    fd = os.open(p, os.O_RDWR)
    try:
        for mode, size_after in ((0, 8192), (1, 8192)):  # 1: FALLOC_FL_KEEP_SIZE
            rc = libc.fallocate(fd, mode, 0, 8192 if mode == 0 else 65536)
            err = ctypes.get_errno()
            if want == "eopnotsupp":
                if rc == 0 or err != errno.EOPNOTSUPP:
                    fail(f"mode {mode}: rc {rc} errno {errno.errorcode.get(err)}, want EOPNOTSUPP")
                continue
            if rc != 0:
                fail(f"mode {mode}: {errno.errorcode.get(err)}")
                continue
            st = os.fstat(fd)
            if st.st_size != size_after:
                fail(f"mode {mode}: size {st.st_size}, want {size_after}")
        if want == "ok":
            data = os.pread(fd, 9000, 0)
            if data != b"abc" + bytes(8189):
                fail("bytes after fallocate are not the old ones then zeros")
        elif os.fstat(fd).st_size != 3:
            fail("a refused fallocate changed the size")
    finally:
        os.close(fd)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "namemax":
        namemax(args[0])
    elif cmd == "pathmax":
        pathmax(args[0], args[1])
    elif cmd == "longxattr":
        longxattr(args[0], args[1], args[2])
        return
    elif cmd == "symlink":
        symlink(args[0], int(args[1]))
    elif cmd == "lutimes":
        lutimes(args[0], args[1])
    elif cmd == "time":
        timecheck(args[0], int(args[1]), args[2])
    elif cmd == "fallocate":
        fallocate(args[0], args[1])
    else:
        sys.exit(f"unknown check {cmd}")
    for m in FAIL[:30]:
        print(m)
    sys.exit(1 if FAIL else 0)


if __name__ == "__main__":
    main()
