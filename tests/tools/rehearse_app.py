#!/usr/bin/python3
"""rehearse_app.py - one application host of contrib/rehearse.sh: users working on their
projects, logging every operation it saw acknowledged. Debian's python3 + botocore.

  rehearse_app.py --host NAME --index I --hosts K --mode s3|fs|nfs --log FILE
                  --manifest FILE [--s3-url URL --bucket B] [--root DIR] [--nfs-url URL]
                  [--seed S] [--think SECONDS] [--stop FILE]

The data is users/<id>/<project>/<files> (the manifest lists the projects). Host I works on
the users whose number modulo K is I (nobody else creates, renames or deletes there), and
every host saves the files of the shared projects (users/shared/...), so that an old host
and a rolled host change the same files.

Modes: s3 (an "old" host: botocore straight to S3), fs (a rolled host: plain POSIX calls on
the ferryfs mount at --root), nfs (after finish: reads only, with nfs-ls / nfs-cat on the
export, since this kernel has no NFS client).

A session: open a project (list it), read a few files, then save (overwrite), create, rename
or delete one, with think times in between. Each operation is one JSON line in --log:
  {"t0": start, "t": end, "host", "mode", "op", "path", ["dst"], "sha", "size", "ok": true}
or, when the call failed, "ok": false with "err" (errno name or S3 error code) and, for a
write, the "sha" it tried to write (the checker accepts that content too: a failed call may
still have landed). A rename logs the content it moved ("sha": what it read before). The
process stops at SIGTERM or when --stop exists, after the operation in progress.
"""
import argparse
import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

STOP = False


def on_term(_sig, _frm):
    global STOP
    STOP = True


def errname(e):
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    code = None
    if hasattr(e, "response"):
        code = e.response.get("Error", {}).get("Code")
    return code or type(e).__name__


def body_for(host, seq, path, rnd):
    """Unique bytes: a header naming the write, then a size from a long-tailed law."""
    r = rnd.random()
    if r < 0.70:
        size = rnd.randint(200, 4000)
    elif r < 0.95:
        size = rnd.randint(4000, 64000)
    elif r < 0.995:
        size = rnd.randint(64000, 400000)
    else:
        size = rnd.randint(400000, 2000000)
    head = ("%s %d %s %.6f\n" % (host, seq, path, time.time())).encode()
    return head + rnd.randbytes(max(0, size - len(head)))


class S3Side:
    def __init__(self, url, bucket):
        import botocore.session
        from botocore.config import Config
        s = botocore.session.get_session()
        self.c = s.create_client(
            "s3", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "S3RVER"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "S3RVER"),
            config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=20,
                          retries={"max_attempts": 8, "mode": "standard"}))
        self.b = bucket

    def ls(self, d):
        out, tok = [], None
        while True:
            kw = {"Bucket": self.b, "Prefix": d + "/"}
            if tok:
                kw["ContinuationToken"] = tok
            r = self.c.list_objects_v2(**kw)
            out += [o["Key"][len(d) + 1:] for o in r.get("Contents", [])]
            if not r.get("IsTruncated"):
                return [n for n in out if "/" not in n]
            tok = r["NextContinuationToken"]

    def read(self, p):
        return self.c.get_object(Bucket=self.b, Key=p)["Body"].read()

    def write(self, p, data):
        self.c.put_object(Bucket=self.b, Key=p, Body=data)

    def rename(self, p, q):
        self.c.copy_object(Bucket=self.b, Key=q, CopySource={"Bucket": self.b, "Key": p})
        self.c.delete_object(Bucket=self.b, Key=p)

    def delete(self, p):
        self.c.delete_object(Bucket=self.b, Key=p)


class FsSide:
    def __init__(self, root):
        self.r = root

    def ls(self, d):
        return [n for n in os.listdir(os.path.join(self.r, d))
                if os.path.isfile(os.path.join(self.r, d, n))]

    def read(self, p):
        with open(os.path.join(self.r, p), "rb") as f:
            return f.read()

    def write(self, p, data):
        full = os.path.join(self.r, p)
        with open(full, "wb") as f:          # a save: truncate and rewrite, then close
            f.write(data)

    def rename(self, p, q):
        os.rename(os.path.join(self.r, p), os.path.join(self.r, q))

    def delete(self, p):
        os.unlink(os.path.join(self.r, p))


class NfsSide:
    """Read-only: libnfs's command-line clients against the export."""
    def __init__(self, url):
        base, _, query = url.partition("?")
        self.base, self.q = base.rstrip("/"), ("?" + query if query else "")

    def _url(self, p):
        return "%s/%s%s" % (self.base, p, self.q)

    def ls(self, d):
        r = subprocess.run(["nfs-ls", self._url(d)], capture_output=True, timeout=60)
        if r.returncode:
            raise OSError(errno.EIO, r.stderr.decode(errors="replace").strip())
        out = []
        for line in r.stdout.decode(errors="replace").splitlines():
            f = line.split()
            if f and f[0].startswith("-"):
                out.append(f[-1])
        return out

    def read(self, p):
        r = subprocess.run(["nfs-cat", self._url(p)], capture_output=True, timeout=60)
        if r.returncode:
            raise OSError(errno.EIO, r.stderr.decode(errors="replace").strip())
        return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--mode", choices=["s3", "fs", "nfs"], required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--s3-url")
    ap.add_argument("--bucket")
    ap.add_argument("--root")
    ap.add_argument("--nfs-url")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--think", type=float, default=0.1)
    ap.add_argument("--stop")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    with open(a.manifest) as f:
        man = json.load(f)
    mine = [p for p in man["projects"] if p["user"] % a.hosts == a.index]
    shared = man["shared"]
    rnd = random.Random("%d/%s/%s/%f" % (a.seed, a.host, a.mode, time.time()))
    if a.mode == "s3":
        side = S3Side(a.s3_url, a.bucket)
    elif a.mode == "fs":
        side = FsSide(a.root)
    else:
        side = NfsSide(a.nfs_url)
    logf = open(a.log, "a", buffering=1)
    seq = int(time.time() * 1000) % 100000000

    def rec(op, path, t0, ok, **kw):
        d = {"t0": round(t0, 4), "t": round(time.time(), 4), "host": a.host, "mode": a.mode,
             "op": op, "path": path, "ok": ok}
        d.update(kw)
        logf.write(json.dumps(d, separators=(",", ":")) + "\n")

    def do(op, path, fn, **kw):
        t0 = time.time()
        try:
            r = fn()
        except Exception as e:           # every failure is logged, none stops the app
            rec(op, path, t0, False, err=errname(e), msg=str(e)[:200], **kw)
            return None, False
        return r, t0

    def think():
        time.sleep(rnd.expovariate(1.0 / a.think) if a.think > 0 else 0)

    while not STOP and not (a.stop and os.path.exists(a.stop)):
        if shared and rnd.random() < 0.15:
            # a shared file: read it, save it (every host does; old and rolled ones collide)
            p = rnd.choice(shared)
            data, t0 = do("read", p, lambda: side.read(p))
            if t0:
                rec("read", p, t0, True, sha=hashlib.sha256(data).hexdigest(), size=len(data))
            if a.mode != "nfs":
                seq += 1
                body = body_for(a.host, seq, p, rnd)
                sha = hashlib.sha256(body).hexdigest()
                _, t0 = do("write", p, lambda: side.write(p, body), sha=sha, size=len(body))
                if t0:
                    rec("write", p, t0, True, sha=sha, size=len(body))
            think()
            continue
        if not mine:
            think()
            continue
        proj = rnd.choice(mine)["dir"]
        names, t0 = do("list", proj, lambda: side.ls(proj))
        if not t0:
            think()
            continue
        rec("list", proj, t0, True, n=len(names))
        names = [n for n in names if ".conflict-s3-" not in n]
        for n in rnd.sample(names, min(len(names), rnd.randint(1, 3))):
            if STOP:
                break
            p = proj + "/" + n
            data, t0 = do("read", p, lambda: side.read(p))
            if t0:
                rec("read", p, t0, True, sha=hashlib.sha256(data).hexdigest(), size=len(data))
            think()
        if a.mode == "nfs" or STOP:
            continue
        r = rnd.random()
        if (r < 0.45 and names) or (r >= 0.45 and r < 0.70 and len(names) > 20):
            p = proj + "/" + rnd.choice(names)
            op = "write"
        elif r < 0.70:
            seq += 1
            p = "%s/n%d-%s.dat" % (proj, seq, a.host)
            op = "write"
        elif r < 0.85 and names:
            p = proj + "/" + rnd.choice(names)
            seq += 1
            q = "%s/r%d-%s.dat" % (proj, seq, a.host)
            # a move: read what is there (to know what the new name must hold), then rename
            data, t0 = do("read", p, lambda: side.read(p))
            if not t0:
                think()
                continue
            sha = hashlib.sha256(data).hexdigest()
            _, t0 = do("rename", p, lambda: side.rename(p, q), dst=q, sha=sha, size=len(data))
            if t0:
                rec("rename", p, t0, True, dst=q, sha=sha, size=len(data))
            think()
            continue
        elif names and len(names) > 1:
            p = proj + "/" + rnd.choice(names)
            _, t0 = do("delete", p, lambda: side.delete(p))
            if t0:
                rec("delete", p, t0, True)
            think()
            continue
        else:
            continue
        seq += 1
        body = body_for(a.host, seq, p, rnd)
        sha = hashlib.sha256(body).hexdigest()
        _, t0 = do(op, p, lambda: side.write(p, body), sha=sha, size=len(body))
        if t0:
            rec(op, p, t0, True, sha=sha, size=len(body))
        think()
    logf.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
