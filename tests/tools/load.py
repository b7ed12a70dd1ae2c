#!/usr/bin/python3
"""load.py - the driver of tests/integration/load.sh: many threads of mixed reads
and writes through a ferryfs mount, each checked against an exact model of every file.
Python 3 standard library only (os.pread/os.pwrite release the GIL, so the kernel sees the
threads' requests at once).

  load.py seed OUT [--seed S] [--threads N]
      write the starting tree: OUT/s3/load/... (to be put in S3) and OUT/nfs/load/... (to
      be copied onto the export). Sizes vary from 0 to 6 MiB.
  load.py run MNT (--src OUT | --resume DIR1 --phase 2) --model DIR [--threads N]
              [--seconds T] [--seed S]
      the load over MNT/load, then the model written to DIR/load (one file per file) and
      DIR/nfs-untouched.txt; --resume starts a second phase from a first phase's model
  load.py verify TREE --model DIR [--label L] [--s3]
      every regular file under TREE/load (names beginning with .ferryfs skipped) against
      DIR/load: same names, same bytes. Prints each difference; exit 1 if there is one.
      --s3: files seeded on the export and never changed through the mount are not
      expected (write-back sends S3 only what changed; DIR/nfs-untouched.txt lists them).

The tree: load/ro/ is read-only (S3-only and NFS files, read by every thread and checked);
load/tNN/ belongs to thread NN, which alone changes it, so the model of its files is exact:
reads of whole files and random ranges, overwrites at offsets (sometimes past the end,
leaving a hole), appends, truncates (shorter and longer), rewrites with O_TRUNC, creates,
renames (to a new name or over another of its files), unlinks, stats and listings. A thread
also reads other threads' files ("peek"): there only ENOENT (renamed or unlinked meanwhile)
and ESTALE (an S3 object replaced under an open handle, spec 5) are allowed, bytes are not
checked.

Output of run: one "ops NAME COUNT" line per operation, "total N", "seconds T", then
"FAIL ..." lines (at most 50 printed; "failures N" counts them all). Exit 1 on any failure.
"""
import argparse
import errno
import os
import random
import sys
import threading
import time

RO_S3, RO_NFS, OWN_S3, OWN_NFS = 40, 8, 12, 3
MIN_OWN = 4             # a thread never unlinks below this many files: its directory stays
MAX_SIZE = 8 << 20      # a file that grew past this is truncated rather than extended


def size_draw(rng):
    r = rng.random()
    if r < 0.5:
        return rng.randint(0, 16 << 10)
    if r < 0.82:
        return rng.randint(16 << 10, 256 << 10)
    if r < 0.97:
        return rng.randint(256 << 10, 768 << 10)
    return rng.randint(1 << 20, 2 << 20)


def cmd_seed(a):
    rng = random.Random(a.seed)
    files = {}
    for k in range(RO_S3):
        big = {0: 6 << 20, 1: 4 << 20, 2: 2 << 20}.get(k)
        files['s3/load/ro/s3-%03d' % k] = big if big is not None else size_draw(rng)
    files['s3/load/ro/deep/s3-d1'] = 5000      # s3rver lists deep/ only with a file in it
    files['s3/load/ro/deep/er/s3-d2'] = 300000
    for k in range(RO_NFS):
        files['nfs/load/ro/nfs-%03d' % k] = size_draw(rng)
    for t in range(a.threads):
        for k in range(OWN_S3):
            sz = rng.randint(1 << 20, 2 << 20) if k == 0 and t % 2 == 0 else size_draw(rng)
            files['s3/load/t%02d/s-%03d' % (t, k)] = sz
        for k in range(OWN_NFS):
            files['nfs/load/t%02d/n-%03d' % (t, k)] = size_draw(rng)
    total = 0
    for rel, size in sorted(files.items()):
        p = os.path.join(a.out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(rng.randbytes(size))
        total += size
    print('seeded %d files, %d bytes' % (len(files), total))


def read_tree(top):
    """{relative path: bytes} of every regular file under top (names .ferryfs* skipped)."""
    out = {}
    for d, dirs, names in os.walk(top):
        dirs[:] = [x for x in dirs if not x.startswith('.ferryfs')]
        for n in names:
            if n.startswith('.ferryfs'):
                continue
            p = os.path.join(d, n)
            with open(p, 'rb') as f:
                out[os.path.relpath(p, top)] = f.read()
    return out


def read_all(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            parts.append(b)
        return b''.join(parts)
    finally:
        os.close(fd)


def write_all(fd, data, off=None):
    done = 0
    while done < len(data):
        if off is None:
            n = os.write(fd, data[done:done + (1 << 20)])
        else:
            n = os.pwrite(fd, data[done:done + (1 << 20)], off + done)
        if n <= 0:
            raise OSError(errno.EIO, 'short write')
        done += n


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, n)):
                if a[j] != b[j]:
                    return j
    return n


class Worker(threading.Thread):
    OPS = (('read', 10), ('range', 10), ('read_ro', 6), ('range_ro', 6), ('peek', 4),
           ('overwrite', 10), ('append', 6), ('truncate', 4), ('rewrite', 3), ('create', 5),
           ('rename', 5), ('unlink', 3), ('stat', 4), ('list', 2))

    def __init__(self, ctx, t):
        super().__init__(name='load-%02d' % t)
        self.ctx, self.t = ctx, t
        self.rng = random.Random((ctx.seed * 100 + ctx.phase) * 1000 + t)
        self.dir = 'load/t%02d' % t
        self.model = {n: bytearray(b) for n, b in ctx.initial.items()
                      if os.path.dirname(n) == self.dir}
        self.counts = {op: 0 for op, _ in self.OPS}
        self.fails = []
        self.seq = 0
        self.changed = set()    # names written, created or renamed onto: journaled
        names = [op for op, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        self.pick = lambda: self.rng.choices(names, weights)[0]
        # LOAD_TRACE="4 7": those threads write each operation, its file(s) and their model
        # sizes after it to stderr (time.monotonic() at its start): to follow a failure
        self.trace = sys.stderr if str(t) in os.environ.get('LOAD_TRACE', '').split() else None

    def path(self, rel):
        return os.path.join(self.ctx.mnt, rel)

    def fail(self, op, rel, what):
        self.fails.append('thread %d %s %s: %s' % (self.t, op, rel, what))

    def own(self):
        return self.rng.choice(sorted(self.model))

    def check(self, op, rel, got, want, off=0):
        if bytes(got) != bytes(want):
            d = first_diff(got, want)
            self.fail(op, rel, 'bytes differ at offset %d (+%d): got %d bytes, want %d' % (
                off + d, off, len(got), len(want)))

    def run(self):
        deadline = self.ctx.deadline
        while time.monotonic() < deadline and not self.ctx.stop:
            op = self.pick()
            rel = None
            t0 = time.monotonic()
            try:
                rel = getattr(self, 'op_' + op)()
                self.counts[op] += 1
            except OSError as e:
                self.fail(op, rel or '?', '%s (%s)' % (os.strerror(e.errno or 0), e))
            if self.trace:
                names = str(rel).split(' -> ')
                sizes = ' '.join('%d' % len(self.model[n]) if n in self.model else '-' for n in names)
                self.trace.write('%.3f %s %s %s\n' % (t0, op, rel, sizes))
                self.trace.flush()
            if len(self.fails) > 100:
                break

    # --- reads, checked ---
    def op_read(self):
        rel = self.own()
        self.check('read', rel, read_all(self.path(rel)), self.model[rel])
        return rel

    def _range(self, op, rel, want):
        fd = os.open(self.path(rel), os.O_RDONLY)
        try:
            for _ in range(self.rng.randint(1, 4)):
                off = self.rng.randint(0, len(want))
                n = self.rng.choice((1, 4096, 65536, 200000, 1 << 20))
                self.check(op, rel, os.pread(fd, n, off), want[off:off + n], off)
        finally:
            os.close(fd)

    def op_range(self):
        rel = self.own()
        self._range('range', rel, self.model[rel])
        return rel

    def op_read_ro(self):
        rel = self.rng.choice(self.ctx.ro_names)
        self.check('read_ro', rel, read_all(self.path(rel)), self.ctx.initial[rel])
        return rel

    def op_range_ro(self):
        rel = self.rng.choice(self.ctx.ro_names)
        self._range('range_ro', rel, self.ctx.initial[rel])
        return rel

    def op_peek(self):
        other = 'load/t%02d' % self.rng.randrange(self.ctx.threads)
        try:
            names = [n for n in os.listdir(self.path(other)) if not n.startswith('.')]
            rel = os.path.join(other, self.rng.choice(names))
            read_all(self.path(rel))
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ESTALE):
                raise
            self.ctx.peek_missed += 1
        return other

    # --- changes, mirrored in the model ---
    def op_overwrite(self):
        rel = self.own()
        m = self.model[rel]
        if len(m) > MAX_SIZE:
            return self.op_truncate(rel)
        n = self.rng.choice((1, 100, 4096, 5000, 65536, 300000))
        r = self.rng.random()
        off = (len(m) + self.rng.randint(1, 200000)) if r < 0.1 else self.rng.randint(0, len(m))
        data = self.rng.randbytes(n)
        fd = os.open(self.path(rel), os.O_RDWR)
        try:
            write_all(fd, data, off)
            if off > len(m):
                m.extend(bytes(off - len(m)))
            m[off:off + n] = data
            self.changed.add(rel)
            if self.rng.random() < 0.3:     # read back through the same handle
                lo = max(0, off - 1000)
                self.check('overwrite', rel, os.pread(fd, n + 2000, lo), m[lo:lo + n + 2000], lo)
        finally:
            os.close(fd)
        return rel

    def op_append(self):
        rel = self.own()
        if len(self.model[rel]) > MAX_SIZE:
            return self.op_truncate(rel)
        data = self.rng.randbytes(self.rng.choice((1, 1000, 4096, 70000, 500000)))
        fd = os.open(self.path(rel), os.O_WRONLY | os.O_APPEND)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        self.model[rel] += data
        self.changed.add(rel)
        return rel

    def op_truncate(self, rel=None):
        rel = rel or self.own()
        m = self.model[rel]
        size = self.rng.randint(0, len(m)) if self.rng.random() < 0.7 or len(m) > MAX_SIZE \
            else len(m) + self.rng.randint(1, 300000)
        os.truncate(self.path(rel), size)
        self.changed.add(rel)
        if size < len(m):
            del m[size:]
        else:
            m.extend(bytes(size - len(m)))
        return rel

    def op_rewrite(self):
        rel = self.own()
        data = self.rng.randbytes(size_draw(self.rng))
        fd = os.open(self.path(rel), os.O_WRONLY | os.O_TRUNC)
        self.changed.add(rel)
        try:
            self.model[rel] = bytearray()
            write_all(fd, data)
            self.model[rel] = bytearray(data)
        finally:
            os.close(fd)
        return rel

    def new_name(self, kind):
        self.seq += 1
        return '%s/%s%d-%d' % (self.dir, kind, self.ctx.phase, self.seq)

    def op_create(self):
        rel = self.new_name('c')
        data = self.rng.randbytes(size_draw(self.rng))
        fd = os.open(self.path(rel), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        self.model[rel] = bytearray()
        self.changed.add(rel)
        try:
            write_all(fd, data)
            self.model[rel] = bytearray(data)
        finally:
            os.close(fd)
        return rel

    def op_rename(self):
        src = self.own()
        if len(self.model) > 1 and self.rng.random() < 0.4:
            dst = self.rng.choice([n for n in self.model if n != src])
        else:
            dst = self.new_name('r')
        os.rename(self.path(src), self.path(dst))
        self.model[dst] = self.model.pop(src)
        self.changed.add(dst)
        return src + ' -> ' + dst

    def op_unlink(self):
        if len(self.model) <= MIN_OWN:
            return self.op_create()
        rel = self.own()
        os.unlink(self.path(rel))
        del self.model[rel]
        return rel

    def op_stat(self):
        rel = self.own()
        st = os.stat(self.path(rel))
        if st.st_size != len(self.model[rel]):
            self.fail('stat', rel, 'size %d, want %d' % (st.st_size, len(self.model[rel])))
        return rel

    def op_list(self):
        got = {os.path.join(self.dir, n) for n in os.listdir(self.path(self.dir))}
        want = set(self.model)
        if got != want:
            self.fail('list', self.dir, 'extra %s, missing %s' % (
                sorted(got - want)[:5], sorted(want - got)[:5]))
        return self.dir


class Ctx:
    pass


def cmd_run(a):
    ctx = Ctx()
    ctx.mnt, ctx.seed, ctx.threads, ctx.stop, ctx.peek_missed = a.mnt, a.seed, a.threads, False, 0
    ctx.phase = a.phase
    ctx.initial = {}
    if a.resume:
        ctx.initial = {os.path.join('load', n): b
                       for n, b in read_tree(os.path.join(a.resume, 'load')).items()}
        with open(os.path.join(a.resume, 'nfs-untouched.txt')) as f:
            nfs_seeded = {line.strip() for line in f if line.strip()}
    else:
        for side in ('s3', 'nfs'):
            ctx.initial.update(read_tree(os.path.join(a.src, side)))
        nfs_seeded = set(read_tree(os.path.join(a.src, 'nfs')))
    ctx.ro_names = sorted(n for n in ctx.initial if n.startswith('load/ro/'))
    workers = [Worker(ctx, t) for t in range(a.threads)]
    start = time.monotonic()
    ctx.deadline = start + a.seconds
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.monotonic() - start

    model = {n: ctx.initial[n] for n in ctx.ro_names}
    for w in workers:
        model.update(w.model)
    # files seeded on the export and never changed through the mount: nothing journaled
    # them, so write-back does not put them in S3 (verify --s3)
    changed = set().union(*(w.changed for w in workers))
    os.makedirs(a.model, exist_ok=True)
    with open(os.path.join(a.model, 'nfs-untouched.txt'), 'w') as f:
        for rel in sorted(nfs_seeded & set(model) - changed):
            f.write(rel + '\n')
    for rel, data in model.items():
        p = os.path.join(a.model, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)

    total = 0
    for op, _ in Worker.OPS:
        c = sum(w.counts[op] for w in workers)
        total += c
        print('ops %s %d' % (op, c))
    print('total %d' % total)
    print('seconds %.1f' % took)
    print('peek_missed %d' % ctx.peek_missed)
    print('files %d bytes %d' % (len(model), sum(len(d) for d in model.values())))
    fails = [f for w in workers for f in w.fails]
    for f in fails[:50]:
        print('FAIL ' + f)
    print('failures %d' % len(fails))
    return 1 if fails else 0


def cmd_verify(a):
    want = read_tree(os.path.join(a.model, 'load'))
    got = read_tree(os.path.join(a.tree, 'load'))
    if a.s3:
        with open(os.path.join(a.model, 'nfs-untouched.txt')) as f:
            for line in f:
                want.pop(os.path.relpath(line.strip(), 'load'), None)
    bad = 0
    for rel in sorted(set(want) | set(got)):
        if rel not in got:
            print('%s: missing %s (%d bytes)' % (a.label, rel, len(want[rel])))
        elif rel not in want:
            print('%s: extra %s (%d bytes)' % (a.label, rel, len(got[rel])))
        elif got[rel] != want[rel]:
            print('%s: differs %s: %d bytes, want %d, first difference at %d' % (
                a.label, rel, len(got[rel]), len(want[rel]), first_diff(got[rel], want[rel])))
        else:
            continue
        bad += 1
    print('%s: %d files compared, %d differences' % (a.label, len(set(want) | set(got)), bad))
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('seed')
    s.add_argument('out')
    s.add_argument('--seed', type=int, default=1)
    s.add_argument('--threads', type=int, default=16)
    r = sub.add_parser('run')
    r.add_argument('mnt')
    r.add_argument('--src')
    r.add_argument('--resume', help='start from the model a previous run wrote')
    r.add_argument('--phase', type=int, default=1, help='1, 2, ...: new names differ')
    r.add_argument('--model', required=True)
    r.add_argument('--threads', type=int, default=16)
    r.add_argument('--seconds', type=float, default=45)
    r.add_argument('--seed', type=int, default=1)
    v = sub.add_parser('verify')
    v.add_argument('tree')
    v.add_argument('--model', required=True)
    v.add_argument('--label', default='tree')
    v.add_argument('--s3', action='store_true',
                   help='less the files seeded on the export and never changed (not in S3)')
    a = p.parse_args()
    return {'seed': cmd_seed, 'run': cmd_run, 'verify': cmd_verify}[a.cmd](a)


if __name__ == '__main__':
    sys.exit(main())
