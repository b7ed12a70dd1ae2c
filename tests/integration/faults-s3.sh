#!/bin/bash
# faults-s3.sh - the mount against a failing S3, over a real s3rver and
# nfs-ganesha, ferryfs's S3 endpoint being tests/tools/faultproxy.py, whose faults the test
# switches at run time (--control):
#   a) 30% of requests answered 500/503/SlowDown, reset, or stalled/reset in the middle of
#      a body, while a reader reads S3-only files through the mount (each compared byte for
#      byte with the original) and the migrator migrates them: every copy on the export is
#      byte-identical, none partial, no temporary file, s3_retries moved;
#   b) S3 unreachable for about a minute (first a server that accepts and never answers,
#      then nothing listening at all): migrated files keep reading from NFS, S3-only files
#      fail with EIO within a bound (the measured time is printed), the daemon survives;
#      when S3 returns, reads work again and the migrator finishes (migrate --all --wait).
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL

stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$M" | awk -v k="$1" '$1 == k { print $2 }'; }
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
tmpfiles() { find "$H_EXPORT" -name '.ferryfs.tmp.*' 2>/dev/null | wc -l; }
alive() { kill -0 "$H_FERRY_PID" 2>/dev/null && grep -q " $M fuse" /proc/mounts && stat "$M" >/dev/null; }

# --- the data: a/ for part a, n/ (migrated before the outage) and s/ (S3-only) for part b
mkdir -p "$H_TMP/src/a" "$H_TMP/src/n" "$H_TMP/src/s"
NA=24
for i in $(seq 1 $NA); do
	# sizes from 1 KiB to about 3 MiB, several over the 64 KiB first GET and the read-ahead
	head -c $(((i * i * 5347) % 3100000 + 1024)) /dev/urandom >"$H_TMP/src/a/f$i.bin"
done
for i in 1 2 3 4 5 6; do head -c $((i * 300000)) /dev/urandom >"$H_TMP/src/n/f$i.bin"; done
for i in 1 2 3 4 5 6; do head -c $((i * 250000 + 7)) /dev/urandom >"$H_TMP/src/s/f$i.bin"; done
h_aws s3 cp --only-show-errors --recursive "$H_TMP/src" "s3://$H_BUCKET/" || h_bail "seeding S3"

# --- S3 through the fault proxy; no fault while mounting
CONTROL=$H_TMP/faults.ctl
"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$H_S3_URL" --port-file "$H_TMP/fault.port" \
	--control "$CONTROL" --log "$H_TMP/proxy.log" &
PROXY_PID=$!
H_PIDS+=($PROXY_PID)
h_wait_for 20 test -s "$H_TMP/fault.port" || h_bail "faultproxy did not start"
PROXY_PORT=$(cat "$H_TMP/fault.port")
REAL_S3_URL=$H_S3_URL
H_S3_URL=http://127.0.0.1:$PROXY_PORT
# s3_timeout=3: a stalled body or reply is given up after 3 s (then retried), so that a
# stall costs seconds, not the default 30 s; 8 retries get through 30% of faults
h_mount "workers=2,s3_timeout=3,s3_retries=8"
H_S3_URL=$REAL_S3_URL
M=$H_MNT
E=$H_EXPORT
"$CTL" pause "$M" >/dev/null
ls -lR "$M" >/dev/null

# ---------------------------------------------------------------- a) flaky S3
echo "--mode mix --share 0.3 --seed 11 --stall 8 --after 40000" >"$CONTROL"
retries0=$(stat_of s3_retries)
reader() {
	local bad=0 f
	for f in "$H_TMP"/src/a/*.bin; do
		cmp -s "$f" "$M/a/$(basename "$f")" || { echo "MISMATCH $f"; bad=$((bad + 1)); }
	done
	return $bad
}
t0=$(date +%s)
reader >"$H_TMP/reader1.out" 2>&1 &
R1=$!
H_PIDS+=($R1)
"$CTL" resume "$M" >/dev/null
timeout 240 "$CTL" migrate --wait "$M/a" >"$H_TMP/migrate-a.out" 2>&1
mrc=$?
wait $R1
rrc=$?
t1=$(date +%s)
h_is "$rrc" 0 "a) every S3-only file read through the mount under 30% faults is byte-identical ($NA files)" ||
	h_diag "$(cat "$H_TMP/reader1.out")"
h_is "$mrc" 0 "a) ferryctl migrate --wait of the directory succeeds under the faults" ||
	h_diag "$(tail -n 5 "$H_TMP/migrate-a.out")"
n=0
bad=
for f in "$H_TMP"/src/a/*.bin; do
	b=$(basename "$f")
	if [ "$(state "$M/a/$b")" = migrated ] && cmp -s "$f" "$E/a/$b"; then n=$((n + 1)); else bad+=" $b"; fi
done
h_is "$n" "$NA" "a) every file is migrated and its copy on the export is byte-identical" || h_diag "bad:$bad"
h_is "$(find "$E/a" -type f | wc -l)" "$NA" "a) no other (partial) file under the directory on the export"
h_is "$(tmpfiles)" 0 "a) no temporary file is left on the export"
retries1=$(stat_of s3_retries)
h_ok "a) stats s3_retries moved ($retries0 -> $retries1)" test "$retries1" -gt "$retries0"
for kind in 500 503 slowdown reset stall-mid reset-mid; do
	h_ok "a) the proxy injected: $kind" grep -qE -- " $kind( after [0-9]+ bytes)?\$" "$H_TMP/proxy.log"
done
nfault=$(grep -cE ' (500|503|slowdown|reset|stall-mid|reset-mid)$' "$H_TMP/proxy.log")
nreq=$(grep -cE '^[0-9.]+ [0-9]+ [A-Z]+ ' "$H_TMP/proxy.log")
h_diag "a) $nreq S3 requests, $nfault faults injected, $((t1 - t0)) s for reading and migrating"
h_ok "a) a second read of every file (now from NFS) is byte-identical" reader

# ---------------------------------------------------------------- b) S3 unreachable
# remounted with 2 retries of 3 s: a request to a dead S3 costs about 3 x 3 s plus backoff
rm -f "$CONTROL"
h_ok "a) umount" h_umount
H_S3_URL=http://127.0.0.1:$PROXY_PORT
h_mount "workers=2,s3_timeout=3,s3_retries=2"
H_S3_URL=$REAL_S3_URL
h_ok "b) ferryctl migrate --wait of n/ before the outage" timeout 120 "$CTL" migrate --wait "$M/n"
"$CTL" pause "$M" >/dev/null   # s/ stays S3-only until S3 is back (reads queue it)
for f in "$H_TMP"/src/s/*.bin; do stat "$M/s/$(basename "$f")" >/dev/null; done
h_is "$(state "$M/s/f1.bin")" s3-only "b) s/ is S3-only before the outage"
"$CTL" resume "$M" >/dev/null

# nfs_reader SECONDS: read n/ in a loop, counting passes and failures
nfs_reader() {
	local end=$(($(date +%s) + $1)) ok=0 fail=0 f
	while [ "$(date +%s)" -lt "$end" ]; do
		for f in "$H_TMP"/src/n/*.bin; do
			if cmp -s "$f" "$M/n/$(basename "$f")"; then ok=$((ok + 1)); else fail=$((fail + 1)); fi
		done
	done
	echo "$ok $fail"
}
# s3_read FILE: read an S3-only file, print "rc seconds error"
s3_read() {
	local s e out rc
	s=$(date +%s.%N)
	out=$(cat "$M/s/$1" 2>&1 >/dev/null)
	rc=$?
	e=$(date +%s.%N)
	printf '%s %s %s\n' "$rc" "$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", e - s }')" "$(printf '%s' "$out" | grep -o 'Input/output error\|Transport endpoint is not connected\|[A-Z][a-z ]*$' | head -n 1)"
}

# read_fail DESC FILE: an S3-only read during the outage fails, in bounded time
worst=0
read_fail() {
	local rc secs err
	read -r rc secs err < <(s3_read "$2")
	h_diag "b) $1: cat s/$2 -> exit $rc after $secs s (${err:-no error})"
	h_ok "b) $1: the S3-only read fails" test "$rc" != 0
	# a stalled or refused S3 surfaces as EIO (fs.c fs_errno), not the socket's errno
	h_is "$err" "Input/output error" "b) $1: ... with EIO"
	worst=$(awk -v a="$secs" -v b="$worst" 'BEGIN { print (a + 0 > b + 0) ? a : b }')
}

out_start=$(date +%s)
# phase 1: a server that accepts connections and never answers
echo "--mode stall-before --stall 600" >"$CONTROL"
nfs_reader 35 >"$H_TMP/nfs1.out" &
NR=$!
H_PIDS+=($NR)
read_fail "S3 accepting but never answering" f1.bin
wait $NR
read -r nok nfail <"$H_TMP/nfs1.out"
h_is "$nfail" 0 "b) ... while $nok reads of migrated files from NFS all succeed"
h_ok "b) ... and the daemon is alive, the mount answers" alive

# phase 2: nothing listens on S3's port at all
kill "$PROXY_PID"
h_wait_gone "$PROXY_PID" 10
rm -f "$CONTROL"
nfs_reader 20 >"$H_TMP/nfs2.out" &
NR=$!
H_PIDS+=($NR)
read_fail "S3 refusing connections" f2.bin
wait $NR
read -r nok nfail <"$H_TMP/nfs2.out"
h_is "$nfail" 0 "b) ... while $nok reads of migrated files from NFS all succeed"
h_ok "b) the slowest failing read took $worst s (bound: 60 s)" awk -v w="$worst" 'BEGIN { exit !(w + 0 < 60) }'
h_ok "b) the daemon survived the outage, the mount answers" alive
h_ok "b) no 'Transport endpoint is not connected' anywhere" bash -c "! ls -R '$M' 2>&1 | grep -q 'not connected'"
h_diag "b) S3 was unreachable for $(($(date +%s) - out_start)) s"

# S3 comes back: the proxy again, on the same port, without faults
"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$REAL_S3_URL" --port "$PROXY_PORT" \
	--port-file "$H_TMP/fault2.port" --control "$CONTROL" --log "$H_TMP/proxy.log" &
H_PIDS+=($!)
h_wait_for 20 test -s "$H_TMP/fault2.port" || h_bail "faultproxy did not start again"
ok=0
for f in "$H_TMP"/src/s/*.bin; do cmp -s "$f" "$M/s/$(basename "$f")" && ok=$((ok + 1)); done
h_is "$ok" 6 "b) after S3 returns, every S3-only file reads byte-identical"
h_ok "b) ferryctl migrate --all --wait finishes" timeout 150 "$CTL" migrate --all --wait "$M"
n=0
for d in a n s; do
	for f in "$H_TMP"/src/$d/*.bin; do
		b=$d/$(basename "$f")
		[ "$(state "$M/$b")" = migrated ] && cmp -s "$f" "$E/$b" && n=$((n + 1))
	done
done
h_is "$n" $((NA + 12)) "b) every file ends migrated, its copy byte-identical"
h_is "$(tmpfiles)" 0 "b) no temporary file is left on the export"
h_is "$(stat_of failed)" 0 "b) the ledger counts no failed file"
h_ok "umount" h_umount
h_done
