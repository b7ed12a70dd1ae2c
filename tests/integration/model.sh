#!/bin/bash
# Model-based testing, a CI-sized run: tests/tools/model.py applies seeded random
# operations (Hypothesis stateful testing) to a local directory and to the mount and compares
# every result, errno and the trees; tests/tools/fsx.py runs fsx-style reads, writes,
# truncates and mmap reads/writes on two large files (one S3-only, one on NFS) against an
# in-memory model. Both run at once, over starting trees split between a real s3rver and a
# real nfs-ganesha, while the migrator copies (migrate_on=open, a crawl started with
# `ferryctl migrate --all`, 2 workers) and the mirror writes changes back to S3.
#
# Replay or lengthen: MODEL_SEED=N MODEL_STEPS=M FSX_SEED=N FSX_OPS=K (the seeds are printed;
# a failure prints its own). The long run and its results: doc/reliability.md.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
"$PY3" -c 'import hypothesis' 2>/dev/null || h_cannot "python3-hypothesis is not installed (run contrib/install-deps.sh)"
h_start_s3
h_start_nfs

SEED=${MODEL_SEED:-$(( (RANDOM << 15 | RANDOM) ))}
STEPS=${MODEL_STEPS:-600}
FSEED=${FSX_SEED:-$SEED}
FOPS=${FSX_OPS:-300}
export MODEL_SEED=$SEED MODEL_STEPS=$STEPS FSX_SEED=$FSEED
h_diag "model seed $SEED, $STEPS steps; fsx seed $FSEED, $FOPS operations per file"
h_diag "replay: MODEL_SEED=$SEED MODEL_STEPS=$STEPS FSX_SEED=$FSEED FSX_OPS=$FOPS make check TESTS=tests/integration/model.sh"

MODEL=$H_SRC/tests/tools/model.py
FSX=$H_SRC/tests/tools/fsx.py
LOCAL=$H_TMP/local
STAGE=$H_TMP/s3stage
mkdir -p "$LOCAL" "$STAGE/fsx" "$H_EXPORT/fsx"

# run_tool DESC CMD...: one test point; all of the tool's output as diagnostics on failure
run_tool() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	H_TAP_N=$((H_TAP_N + 1))
	if [ $rc = 0 ]; then
		echo "ok $H_TAP_N - $desc"
		h_diag "$(printf '%s' "$out" | tail -n 1)"
	else
		H_TAP_FAIL=$((H_TAP_FAIL + 1))
		echo "not ok $H_TAP_N - $desc"
		h_diag "$out"
	fi
	return $rc
}

# --- the starting trees: arenas for the model, two large files for fsx ---
"$PY3" "$MODEL" seed --local "$LOCAL" --s3 "$STAGE" --nfs "$H_EXPORT" >/dev/null || h_bail "model seed failed"
"$PY3" "$FSX" make --size 3145728 --seed 1 >"$STAGE/fsx/big-s3" || h_bail "fsx make failed"
"$PY3" "$FSX" make --size 2097152 --seed 2 >"$H_EXPORT/fsx/big-nfs" || h_bail "fsx make failed"
echo x >"$STAGE/fsx/marker"   # s3rver lists a directory only with an object of its own in it
h_aws s3 sync --only-show-errors "$STAGE" "s3://$H_BUCKET/" || h_bail "aws s3 sync failed"
h_ok "the starting tree is in S3 ($(find "$STAGE" -type f | wc -l) objects) and on NFS ($(find "$H_EXPORT" -type f | wc -l) files)" \
	test "$(h_aws s3 ls --recursive "s3://$H_BUCKET/" | wc -l)" = "$(find "$STAGE" -type f | wc -l)"

# --- mounted with the migrator running: lazy (migrate_on=open) and a slow crawl, so that
# some arenas are copied while the model works in them and others stay S3-only for a while;
# revalidate every 5 s (not 30) so that it runs during the model too
h_mount workers=2,migrate_on=open,rate_files=4,revalidate=5,revalidate_sweep=5
h_ok "ferryctl migrate --all starts the crawl" "$FERRYCTL" migrate --all "$H_MNT"

"$PY3" "$FSX" run --file "$H_MNT/fsx/big-s3" --size 3145728 --seed 1 --opseed "$FSEED" \
	--ops "$FOPS" --sha-out "$H_TMP/fsx-s3.sha" >"$H_TMP/fsx-s3.out" 2>&1 &
fsx1=$!
"$PY3" "$FSX" run --file "$H_MNT/fsx/big-nfs" --size 2097152 --seed 2 --opseed $((FSEED + 1)) \
	--ops "$FOPS" --sha-out "$H_TMP/fsx-nfs.sha" >"$H_TMP/fsx-nfs.out" 2>&1 &
fsx2=$!
run_tool "model: $STEPS random operations, every result, errno and tree equal to the local directory's" \
	"$PY3" "$MODEL" run --local "$LOCAL" --mount "$H_MNT" --log "$H_TMP/model-steps.log"
wait $fsx1
rc1=$?
wait $fsx2
rc2=$?
run_tool "fsx on an S3-only 3 MiB file (copied up at the first open for writing)" \
	bash -c "cat '$H_TMP/fsx-s3.out'; exit $rc1"
run_tool "fsx on a 2 MiB file on NFS" bash -c "cat '$H_TMP/fsx-nfs.out'; exit $rc2"

# --- what the stores really hold: past the attribute cache, then after a remount ---
fsx_final() { # fsx_final NAME: the file through the mount and on the export equal fsx's model
	local want
	want=$(cut -c1-64 "$H_TMP/fsx-$1.sha" 2>/dev/null) || return 1
	[ "$(sha256sum <"$H_MNT/fsx/big-$1" | cut -c1-64)" = "$want" ] &&
		[ "$(sha256sum <"$H_EXPORT/fsx/big-$1" | cut -c1-64)" = "$want" ]
}
sleep 1.5
run_tool "every arena's tree (with st_nlink) equal after the attribute cache expired" \
	"$PY3" "$MODEL" verify --local "$LOCAL" --mount "$H_MNT" --label "after the cache expired"
h_ok "umount exits cleanly" h_umount
h_mount workers=2,revalidate=3,revalidate_sweep=3
run_tool "every arena's tree equal after a remount" \
	"$PY3" "$MODEL" verify --local "$LOCAL" --mount "$H_MNT" --label "after a remount"
# --- cases of the model's, each reproduced on its own (doc/reliability.md) ---
for k in 1 2 3; do   # before the first lookup of known/
	printf 'y%s from S3\n' $k | h_seed_s3 known/y$k
done
mkdir -p "$H_MNT/known"
# a change through one name of a hard-linked file: the other name shows it at once (no
# size or mode cached for the other name)
h_ok "a write, truncate or chmod through one name of a hard-linked file shows through the other at once" \
	"$PY3" - "$H_MNT/known" <<'PY'
import os, stat, sys
d = sys.argv[1]
a, b = os.path.join(d, 'a'), os.path.join(d, 'b')
with open(a, 'wb') as f:
    f.write(b'xyz')
os.link(a, b)
os.stat(b)                                   # the kernel caches b's attributes (size 3)
with open(a, 'wb') as f:                     # O_TRUNC, then 14 bytes, through a
    f.write(b'longer content')
got = open(b, 'rb').read()
if got != b'longer content':
    sys.exit('read through b right after a write through a: %r' % got)
os.truncate(a, 6)
if os.stat(b).st_size != 6 or open(b, 'rb').read() != b'longer':
    sys.exit('b after truncate(a, 6): size %d' % os.stat(b).st_size)
os.chmod(a, 0o600)
if stat.S_IMODE(os.stat(b).st_mode) != 0o600:
    sys.exit('b after chmod(a, 0600): %o' % stat.S_IMODE(os.stat(b).st_mode))
# right after link(2), before any stat of the old name
c, e = os.path.join(d, 'c'), os.path.join(d, 'e')
with open(c, 'wb') as f:
    f.write(b'c')
os.link(c, e)
os.stat(e)
os.chmod(c, 0o640)
if stat.S_IMODE(os.stat(e).st_mode) != 0o640:
    sys.exit('e after link(c, e), chmod(c, 0640): %o' % stat.S_IMODE(os.stat(e).st_mode))
PY
h_ok "an open file whose name was unlinked can still be written and read" \
	"$PY3" - "$H_MNT/known" <<'PY'
import os, sys
p = os.path.join(sys.argv[1], 'orphan')
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'before')
os.unlink(p)
try:
    os.pwrite(fd, b'after', 6)
    got = os.pread(fd, 100, 0)
except OSError as e:
    sys.exit('after the unlink: %s' % e)
sys.exit(0 if got == b'beforeafter' else 'read back %r' % got)
PY

synced() { [ "$(getfattr --only-values -n user.ferryfs.synced "$H_MNT/$1" 2>/dev/null)" = yes ]; }
# a file renamed over a name the mirror wrote back: the ledger forgets the ETag on a
# rename, so revalidate does not take the replaced file's object for another host's change
# (no NAME.conflict-s3-* copy); three pairs, as the race depends on timing
for k in 1 2 3; do
	printf 'x%s written through the mount\n' $k >"$H_MNT/known/x$k"
	h_wait_for 20 synced known/x$k || h_diag "known/x$k was not written back within 20 s"
done
"$FERRYCTL" migrate --wait "$H_MNT"/known/y[123] >/dev/null || h_diag "known/y* did not migrate"
for k in 1 2 3; do mv "$H_MNT/known/y$k" "$H_MNT/known/x$k"; done
for ((i = 0; i < 8; i++)); do   # a few revalidate sweeps (revalidate=3)
	ls "$H_MNT/known" | grep -q conflict && break
	sleep 1
done
h_ok "migrated files renamed over written-back ones leave no conflict copy" \
	bash -c "ls -l '$H_MNT/known'; ! ls '$H_MNT/known' | grep -q conflict"
h_is "$(cat "$H_MNT"/known/x[123])" "$(printf 'y1 from S3\ny2 from S3\ny3 from S3')" \
	"the renamed files hold their bytes"

h_ok "both fsx files hold the model's bytes, through the mount and on the export" \
	bash -c "$(declare -f fsx_final); H_TMP='$H_TMP' H_MNT='$H_MNT' H_EXPORT='$H_EXPORT'; fsx_final s3 && fsx_final nfs"
h_ok "umount exits cleanly after the remount" h_umount
# (after the unmount: while mounted, the resumed crawl may be copying, temporary files and all)
h_ok "no temporary copy-up file is left in the export" \
	bash -c "! find '$H_EXPORT' -name '.ferryfs.tmp.*' | grep ."
h_done
