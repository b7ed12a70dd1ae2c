#!/bin/bash
# Many threads at once through the mount (spec 5): 16 threads read and write
# their own files, write disjoint ranges of one shared file that starts S3-only (so all
# 16 open it for writing at the same moment and race its copy-up), pairs of threads race
# the copy-up of other S3-only files, and all of them read S3-only files at once. Then
# every byte is checked: nothing torn, nothing lost, each copy-up published once, and the
# proxy in front of s3rver shows how many times each object was fetched.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

THREADS=16
CHUNK=262144
pattern() { "$PY3" -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + $2 + (i >> 9)) & 255 for i in range($1)))"; }

pattern $((THREADS * CHUNK)) 0 >"$H_TMP/shared.orig"
h_seed_s3 conc/shared.bin "$H_TMP/shared.orig"
for f in 0 1 2 3 4 5 6 7; do
	pattern 2000000 $((f + 1)) >"$H_TMP/cu$f.orig"
	h_seed_s3 "conc/cu/f$f" "$H_TMP/cu$f.orig"
done
for f in 0 1 2 3; do
	pattern 3000000 $((f + 20)) >"$H_TMP/ro$f.orig"
	h_seed_s3 "conc/ro/r$f" "$H_TMP/ro$f.orig"
done

h_mount_signed
M=$H_MNT

# The load: one Python thread per worker (os.pread/os.pwrite release the GIL, so the
# kernel sees THREADS concurrent requests). Prints one "ok"/"FAIL" line per check.
"$PY3" - "$M/conc" "$H_TMP" "$THREADS" "$CHUNK" >"$H_TMP/load.out" 2>&1 <<'EOF'
import hashlib, os, random, sys, threading
mnt, tmp, n, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
barrier = threading.Barrier(n)
errors = []

def pat(length, seed):
    return bytes((i * 13 + seed * 31 + (i >> 7)) & 255 for i in range(length))

def worker(i):
    try:
        rnd = random.Random(i)
        # 1. everybody opens the S3-only shared file for writing at the same moment
        barrier.wait()
        fd = os.open(mnt + '/shared.bin', os.O_RDWR)
        mine = pat(chunk, i + 100)
        off = 0
        while off < chunk:               # pieces of random size, in random order of size
            step = min(chunk - off, rnd.choice((4096, 10000, 65536, 131072)))
            if os.pwrite(fd, mine[off:off + step], i * chunk + off) != step:
                raise RuntimeError('short write')
            off += step
        os.close(fd)
        # 2. two threads per file race the copy-up of 8 other S3-only files
        barrier.wait()
        fd = os.open(mnt + '/cu/f%d' % (i % 8), os.O_WRONLY)
        os.pwrite(fd, pat(4096, i + 200), 100000 + (i // 8) * 4096)
        os.close(fd)
        # 3. a file of its own: create, write, read back
        own = pat(1000000, i + 300)
        fd = os.open(mnt + '/own-%d' % i, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        off = 0
        while off < len(own):
            step = rnd.randint(1, 200000)
            off += os.write(fd, own[off:off + step])
        back = os.pread(fd, len(own) + 10, 0)
        os.close(fd)
        if back != own:
            errors.append('thread %d: its own file reads back different bytes' % i)
        # 4. everybody reads S3-only files at once, four threads per file
        barrier.wait()
        want = open('%s/ro%d.orig' % (tmp, i % 4), 'rb').read()
        with open(mnt + '/ro/r%d' % (i % 4), 'rb') as f:
            got = f.read()
        if got != want:
            errors.append('thread %d: S3-only file r%d read %d bytes, sha %s' % (
                i, i % 4, len(got), hashlib.sha256(got).hexdigest()[:12]))
    except Exception as e:      # noqa: BLE001 - every failure is reported
        errors.append('thread %d: %r' % (i, e))
        barrier.abort()

threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors:
    print('FAIL ' + e)

# verification through the mount
shared = open(mnt + '/shared.bin', 'rb').read()
want = b''.join(pat(chunk, i + 100) for i in range(n))
print('%s shared file: %d threads wrote disjoint ranges, every byte is there' %
      ('ok' if shared == want else 'FAIL', n))
if shared != want:
    bad = [i for i in range(n) if shared[i * chunk:(i + 1) * chunk] != want[i * chunk:(i + 1) * chunk]]
    print('#   size %d, ranges wrong: %s' % (len(shared), bad))
ok = True
for f in range(8):
    orig = bytearray(open('%s/cu%d.orig' % (tmp, f), 'rb').read())
    for i in (f, f + 8):
        o = 100000 + (i // 8) * 4096
        orig[o:o + 4096] = pat(4096, i + 200)
    got = open('%s/cu/f%d' % (mnt, f), 'rb').read()
    if got != bytes(orig):
        ok = False
        print('#   cu/f%d differs (size %d)' % (f, len(got)))
print('%s files copied up by two racing writers hold both writes and the rest of the object' %
      ('ok' if ok else 'FAIL'))
own_ok = all(open('%s/own-%d' % (mnt, i), 'rb').read() == pat(1000000, i + 300) for i in range(n))
print('%s each thread\'s own file reads back' % ('ok' if own_ok else 'FAIL'))
print('%s no thread failed' % ('ok' if not errors else 'FAIL'))
EOF
grep -q -v '^ok' "$H_TMP/load.out" && h_diag "$(grep -v '^ok' "$H_TMP/load.out" | head -n 30)"
while read -r st desc; do
	case $st in
	ok) h_ok "$desc" true ;;
	FAIL) h_ok "$desc" false ;;
	esac
done < <(grep -E '^(ok|FAIL) ' "$H_TMP/load.out" | grep -v '^FAIL thread')
h_is "$(grep -c -E '^(ok|FAIL) [^t]' "$H_TMP/load.out")" 4 "the load program ran to the end"

# The same bytes seen from NFS itself, after the cache expired
sleep 1.5
h_ok "the shared file on NFS has the right size" test "$(stat -c %s "$H_EXPORT/conc/shared.bin")" = $((THREADS * CHUNK))
h_is "$(find "$H_EXPORT" -name '.ferryfs.tmp.*' | wc -l)" 0 "racing copy-ups left no temporary file"
h_is "$(ls "$M/conc" | grep -c '^own-')" "$THREADS" "the mount lists every thread's file"

# How many times each object was fetched in full: a copy-up reads the object once; the
# 16 writers of shared.bin and the 2 writers of each cu file must share one copy-up.
gets() { grep -c "^ok GET /$H_BUCKET/conc/$1 " "$H_TMP/proxy.log"; }
h_is "$(gets shared.bin)" 1 "16 writers racing on one S3-only file: its object was fetched once (one copy-up)"
multi=""
for f in 0 1 2 3 4 5 6 7; do
	c=$(gets "cu/f$f")
	[ "$c" = 1 ] || multi+="f$f:$c "
done
h_is "$multi" "" "2 writers racing on each of 8 S3-only files: each object fetched once"
h_is "$(grep -c -v '^ok ' "$H_TMP/proxy.log")" 0 "every S3 request under load was signed correctly"
h_ok "the daemon is still alive and serving" bash -c "kill -0 $H_FERRY_PID && cat '$M/conc/ro/r0' >/dev/null"
h_ok "umount exits cleanly" h_umount
h_done
