#!/usr/bin/python3
"""rehearse_seed.py - the world contrib/rehearse.sh starts from: users/<id>/<project>/<files>
in S3, many users, mostly small files with a long tail, and the manifest the applications
and the checker read. Debian's python3 + botocore.

  rehearse_seed.py --users U --files F --seed S --s3-url URL --bucket B --manifest OUT
                   [--threads 16]

The manifest (JSON): "projects" [{"user", "dir"}], "shared" (the files every host saves),
"files" {path: [size, sha256, md5]}. The same seed gives the same world. Every directory
above the projects also gets a directory-marker object ("users/u00042/"), as s3fs-style
applications write them.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import sys
import threading


def size_of(rnd):
    r = rnd.random()
    if r < 0.75:
        return rnd.randint(100, 4096)
    if r < 0.95:
        return rnd.randint(4096, 65536)
    if r < 0.995:
        return rnd.randint(65536, 524288)
    return rnd.randint(524288, 4 << 20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--files", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--s3-url", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--threads", type=int, default=16)
    a = ap.parse_args()
    rnd = random.Random(a.seed)

    projects = []
    for u in range(a.users):
        for j in range(1 if rnd.random() < 0.6 else rnd.randint(2, 3)):
            projects.append({"user": u, "dir": "users/u%05d/proj%d" % (u, j)})
    # files per project: a long tail (a few projects hold many files)
    weights = [rnd.paretovariate(1.3) for _ in projects]
    tot = sum(weights)
    counts = [max(1, int(a.files * w / tot)) for w in weights]
    shared_dir = "users/shared/common"
    files = {}
    plan = []
    for p, n in zip(projects, counts):
        for k in range(n):
            plan.append("%s/f%04d.dat" % (p["dir"], k))
    plan = plan[:max(a.files - 12, len(projects))]
    shared = ["%s/doc%02d.txt" % (shared_dir, k) for k in range(12)]
    plan += shared

    import botocore.session
    from botocore.config import Config
    local = threading.local()

    def client():
        if not hasattr(local, "c"):
            s = botocore.session.get_session()
            local.c = s.create_client(
                "s3", endpoint_url=a.s3_url, region_name="us-east-1",
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "S3RVER"),
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "S3RVER"),
                config=Config(s3={"addressing_style": "path"},
                              retries={"max_attempts": 8, "mode": "standard"},
                              max_pool_connections=4))
        return local.c

    def put(path):
        r = random.Random("%d:%s" % (a.seed, path))
        body = r.randbytes(size_of(r))
        client().put_object(Bucket=a.bucket, Key=path, Body=body)
        return path, [len(body), hashlib.sha256(body).hexdigest(), hashlib.md5(body).hexdigest()]

    # a directory-marker object in every directory above the projects: s3rver omits a common
    # prefix whose objects all lie two or more levels below it (doc/testing.md)
    markers = {"users/", "users/shared/"} | {"users/u%05d/" % p["user"] for p in projects}

    def put_marker(key):
        client().put_object(Bucket=a.bucket, Key=key, Body=b"")

    with concurrent.futures.ThreadPoolExecutor(a.threads) as ex:
        list(ex.map(put_marker, sorted(markers)))
        for path, meta in ex.map(put, plan, chunksize=64):
            files[path] = meta
    man = {"projects": projects, "shared": shared, "files": files, "seed": a.seed}
    with open(a.manifest + ".tmp", "w") as f:
        json.dump(man, f, separators=(",", ":"))
    os.rename(a.manifest + ".tmp", a.manifest)
    total = sum(m[0] for m in files.values())
    print("seeded %d files (%d bytes) in %d projects of %d users" %
          (len(files), total, len(projects), a.users))
    return 0


if __name__ == "__main__":
    sys.exit(main())
