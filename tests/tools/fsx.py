#!/usr/bin/python3
"""fsx.py - an fsx-style data-integrity run on one large file: random reads,
writes, truncates, mmap reads and mmap writes on a file of the mount, each checked against
an in-memory model of the file's bytes (after every operation the size, after every read
the bytes). Seeded: the same --seed gives the same operations; a failure prints the seed,
the failing operation, the first differing offset and the operations before it.

    fsx.py make   --size N --seed S > FILE     the starting bytes (also the model's)
    fsx.py run    --file PATH --size N --seed S --ops K [--opseed T] [--sha-out F]
    fsx.py sha    --size N --seed S --opseed T --ops K   (the expected final sha256)

`run` starts with a read-only phase (an S3-only file is read from S3 through read-ahead,
the crawl may be copying it meanwhile), then opens the file O_RDWR (which copies an S3-only
file up before the first write, spec 5) and mixes all operations, closing and reopening it
now and then (close-to-open) and at the end reading it whole through a fresh descriptor.
FSX_SEED in the environment overrides --opseed. Standard library only.
"""
import argparse
import hashlib
import mmap
import os
import random
import sys

PAGE = mmap.PAGESIZE
MAXLEN_FACTOR = 1.5


def start_bytes(size, seed):
    return random.Random('fsx-start-%d' % seed).randbytes(size)


class Failure(Exception):
    pass


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Fsx:
    def __init__(self, path, model, seed, log):
        self.path = path
        self.m = bytearray(model)
        self.rng = random.Random(seed)
        self.maxlen = max(int(len(model) * MAXLEN_FACTOR), 1 << 20)
        self.fd = None
        self.history = []
        self.log = log
        self.n = 0

    def note(self, line):
        self.history.append('%5d %s' % (self.n, line))
        del self.history[:-30]
        if self.log:
            self.log.write('%5d %s\n' % (self.n, line))

    def fail(self, what):
        raise Failure('op %d: %s' % (self.n, what))

    def check_bytes(self, what, off, got, want):
        if got != want:
            i = first_diff(got, want)
            self.fail('%s: %d bytes read, %d expected; first difference at file offset %d: '
                      'file %s, model %s' % (what, len(got), len(want), off + i,
                                             got[i:i + 16].hex(), want[i:i + 16].hex()))

    def check_size(self):
        size = os.fstat(self.fd).st_size
        if size != len(self.m):
            self.fail('fstat size %d, model %d' % (size, len(self.m)))

    def reopen(self, flags):
        if self.fd is not None:
            os.close(self.fd)
        self.fd = os.open(self.path, flags)

    # -- operations
    def span(self, limit, maxlen):
        off = self.rng.randrange(limit + 1)
        n = self.rng.choice([1, self.rng.randrange(1, 4097), self.rng.randrange(1, maxlen + 1)])
        return off, n

    def op_read(self):
        off, n = self.span(len(self.m) + 1000, 300000)
        self.note('read %d at %d' % (n, off))
        self.check_bytes('pread', off, os.pread(self.fd, n, off), bytes(self.m[off:off + n]))

    def op_write(self):
        off, n = self.span(min(len(self.m) + 70000, self.maxlen), 200000)
        n = min(n, self.maxlen - off) or 1
        data = self.rng.randbytes(n)
        self.note('write %d at %d%s' % (n, off, ' (past the end: a hole)' if off > len(self.m)
                                        else ''))
        if os.pwrite(self.fd, data, off) != n:
            self.fail('short write')
        if off > len(self.m):
            self.m.extend(bytes(off - len(self.m)))
        self.m[off:off + n] = data

    def op_truncate(self):
        size = self.rng.choice([self.rng.randrange(self.maxlen + 1),
                                max(0, len(self.m) - self.rng.randrange(1, 5000)),
                                len(self.m) + self.rng.randrange(1, 5000)])
        self.note('truncate %d -> %d' % (len(self.m), size))
        os.ftruncate(self.fd, size)
        if size < len(self.m):
            del self.m[size:]
        else:
            self.m.extend(bytes(size - len(self.m)))

    def map_span(self):
        if not self.m:
            return None
        moff = self.rng.randrange(len(self.m)) // PAGE * PAGE
        n = self.rng.randrange(1, min(len(self.m) - moff, 400000) + 1)
        return moff, n

    def op_mapread(self):
        sp = self.map_span()
        if not sp:
            return
        moff, n = sp
        self.note('mapread %d at %d' % (n, moff))
        with mmap.mmap(self.fd, n, mmap.MAP_SHARED, mmap.PROT_READ, offset=moff) as mm:
            got = mm[:n]
        self.check_bytes('mmap read', moff, got, bytes(self.m[moff:moff + n]))

    def op_mapwrite(self):
        sp = self.map_span()
        if not sp:
            return
        moff, n = sp
        k = self.rng.randrange(n)                 # write inside the mapping, at moff + k
        w = self.rng.randrange(1, n - k + 1)
        data = self.rng.randbytes(w)
        self.note('mapwrite %d at %d' % (w, moff + k))
        with mmap.mmap(self.fd, n, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                       offset=moff) as mm:
            mm[k:k + w] = data
            mm.flush()                              # msync(MS_SYNC)
        self.m[moff + k:moff + k + w] = data

    def op_reopen(self):
        self.note('close and reopen')
        self.reopen(os.O_RDWR)

    def op_fsync(self):
        self.note('fsync')
        os.fsync(self.fd)

    OPS = [('read', 4), ('write', 4), ('truncate', 1), ('mapread', 2), ('mapwrite', 2),
           ('reopen', 1), ('fsync', 1)]

    def run(self, ops, ro_ops):
        self.reopen(os.O_RDONLY)
        for _ in range(ro_ops):
            self.n += 1
            (self.op_read if self.rng.random() < 0.6 else self.op_mapread)()
            self.check_size()
        self.reopen(os.O_RDWR)
        names = [o for o, w in self.OPS for _ in range(w)]
        for _ in range(ops):
            self.n += 1
            getattr(self, 'op_' + self.rng.choice(names))()
            self.check_size()
        os.close(self.fd)
        self.fd = None
        self.n += 1
        self.note('final read through a fresh descriptor')
        with open(self.path, 'rb') as f:
            self.check_bytes('final read', 0, f.read(), bytes(self.m))
        return hashlib.sha256(self.m).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('cmd', choices=('make', 'run'))
    ap.add_argument('--file')
    ap.add_argument('--size', type=int, required=True)
    ap.add_argument('--seed', type=int, default=1, help='the starting bytes')
    ap.add_argument('--opseed', type=int, default=None, help='the operations')
    ap.add_argument('--ops', type=int, default=300)
    ap.add_argument('--ro-ops', type=int, default=30)
    ap.add_argument('--sha-out')
    ap.add_argument('--log')
    args = ap.parse_args()
    start = start_bytes(args.size, args.seed)
    if args.cmd == 'make':
        sys.stdout.buffer.write(start)
        return 0
    if os.environ.get('FSX_SEED'):
        args.opseed = int(os.environ['FSX_SEED'])
    if args.opseed is None:
        args.opseed = random.SystemRandom().randrange(1 << 31)
    repro = 'FSX_SEED=%d' % args.opseed
    log = open(args.log, 'a') if args.log else None
    fsx = Fsx(args.file, start, args.opseed, log)
    print('fsx: %s, %d bytes, seed %d, %d read-only then %d operations (%s to replay)'
          % (args.file, args.size, args.opseed, args.ro_ops, args.ops, repro))
    try:
        sha = fsx.run(args.ops, args.ro_ops)
    except (Failure, OSError) as e:
        print('fsx: FAILED with seed %d (%s): %s' % (args.opseed, repro, e))
        print('fsx: the operations before it:')
        for line in fsx.history:
            print('  ' + line)
        print('fsx: FAILED, seed %d' % args.opseed)
        return 1
    if args.sha_out:
        with open(args.sha_out, 'w') as f:
            f.write(sha + '\n')
    print('fsx: %d operations, every read, mmap read and size equal to the model; final '
          '%d bytes sha256 %s (seed %d)' % (fsx.n, len(fsx.m), sha[:16], args.opseed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
