#!/bin/bash
# faults-nfs.sh - the mount against a failing new store, over a real s3rver and
# nfs-ganesha whose export is a small loop-mounted ext4 filesystem:
#   a) nfs-ganesha restarted while readers (NFS files and S3-only files) and writers (new
#      files) work through the mount: every call during the outage returns or fails within
#      a bound, the daemon survives, and afterwards every file written before and after
#      the outage (and every write that reported success during it) has the right bytes;
#   b) the export full: ENOSPC reaches a writer (dd through the mount); a migration that
#      does not fit stops cleanly (nothing published under the name, the ledger says why,
#      no temporary file visible through the mount); when space is freed on the export,
#      the migration completes.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_need_cmd mkfs.ext4 losetup
CTL=$FERRYCTL

# the export: a 64 MiB ext4 image, loop-mounted (ganesha's VFS FSAL needs file handles)
IMG=$H_TMP/export.img
truncate -s 64M "$IMG" && mkfs.ext4 -q -F -m 0 "$IMG" || h_cannot "mkfs.ext4 failed"
mkdir -p "$H_TMP/export"
mount -o loop "$IMG" "$H_TMP/export" 2>"$H_TMP/loop.err" || h_cannot "no loop device here: $(cat "$H_TMP/loop.err")"
trap 'rc=$?; set +e; for m in "${H_MOUNTS[@]}"; do fusermount3 -uz "$m" 2>/dev/null; done
	h_stop_nfs; umount -l "$H_TMP/export" 2>/dev/null; (exit $rc); h_cleanup' EXIT
h_start_s3
h_start_nfs
E=$H_EXPORT
[ "$(stat -f -c %T "$E")" = ext2/ext3 ] || h_bail "the export is not the loop-mounted ext4"

stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$M" | awk -v k="$1" '$1 == k { print $2 }'; }
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
xattr() { getfattr --absolute-names --only-values -n "user.ferryfs.$2" "$1" 2>/dev/null; }
tmpfiles() { find "$E" -name '.ferryfs.tmp.*' 2>/dev/null | wc -l; }
alive() { kill -0 "$H_FERRY_PID" 2>/dev/null && grep -q " $M fuse" /proc/mounts && stat "$M" >/dev/null; }

mkdir -p "$H_TMP/src/s" "$H_TMP/src/n" "$H_TMP/src/big" "$H_TMP/w"
for i in $(seq 1 8); do head -c $((i * 60000 + 3)) /dev/urandom >"$H_TMP/src/s/f$i.bin"; done
head -c 20000000 /dev/urandom >"$H_TMP/src/big/big.bin"
h_aws s3 cp --only-show-errors --recursive "$H_TMP/src" "s3://$H_BUCKET/" || h_bail "seeding S3"
for i in $(seq 1 8); do
	head -c $((i * 50000 + 1)) /dev/urandom >"$H_TMP/src/n/f$i.bin"
	h_seed_nfs "n/f$i.bin" "$H_TMP/src/n/f$i.bin"
done

FERRYFS_MIGRATE_RETRIES=2 FERRYFS_MIGRATE_BACKOFF=1 h_mount "workers=2,migrate_on=never"
M=$H_MNT

# ---------------------------------------------------------------- a) ganesha restarted
# timed OP...: run OP, append "rc seconds" to $TIMES
timed() {
	local s e rc
	s=$(date +%s%N)
	"$@" >/dev/null 2>&1
	rc=$?
	e=$(date +%s%N)
	echo "$rc $(((e - s) / 1000000))" >>"$TIMES"
	return $rc
}
STOP=$H_TMP/stop
reader() {   # reader DIR: cmp every file of DIR in a loop
	local f
	while [ ! -e "$STOP" ] && [ -d "$H_TMP" ]; do
		for f in "$H_TMP"/src/$1/*.bin; do
			timed cmp "$f" "$M/$1/$(basename "$f")" || echo "read failed: $1/$(basename "$f")" >>"$H_TMP/readfail"
		done
	done
}
writer() {   # writer K: write new files wK-N through the mount; list those that succeeded
	local n=0
	mkdir -p "$M/w" 2>/dev/null
	while [ ! -e "$STOP" ] && [ -d "$H_TMP" ]; do
		n=$((n + 1))
		head -c $((n * 7001 % 300000 + 10)) /dev/urandom >"$H_TMP/w/w$1-$n"
		if timed cp "$H_TMP/w/w$1-$n" "$M/w/w$1-$n"; then echo "w$1-$n" >>"$H_TMP/written"; else echo "w$1-$n" >>"$H_TMP/wfail"; fi
	done
}
TIMES=$H_TMP/times
: >"$H_TMP/written"
: >"$H_TMP/wfail"
: >"$H_TMP/readfail"
reader n & P1=$!
reader s & P2=$!
writer 1 & P3=$!
writer 2 & P4=$!
H_PIDS+=($P1 $P2 $P3 $P4)
sleep 6
t0=$(date +%s)
h_restart_nfs
t1=$(date +%s)
sleep 10
touch "$STOP"
wait $P1 $P2 $P3 $P4
h_diag "a) ganesha was down for about $((t1 - t0)) s; $(wc -l <"$TIMES") calls: $(awk '$1 != 0' "$TIMES" | wc -l) failed, the slowest took $(sort -k2 -n "$TIMES" | tail -n 1 | cut -d' ' -f2) ms"
h_diag "a) $(wc -l <"$H_TMP/written") writes succeeded, $(wc -l <"$H_TMP/wfail") failed; reads failed: $(sed 's|^read failed: \([ns]\)/.*|\1/|' "$H_TMP/readfail" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')(n/ on NFS, s/ S3-only)"
h_ok "a) the daemon survived the restart, the mount answers" alive
h_ok "a) every call returned within 60 s" bash -c "awk '\$2 >= 60000 { bad = 1 } END { exit bad }' '$TIMES'"
h_ok "a) the writers wrote before and after the outage" test "$(wc -l <"$H_TMP/written")" -ge 4
bad=
while read -r w; do
	cmp -s "$H_TMP/w/$w" "$M/w/$w" && cmp -s "$H_TMP/w/$w" "$E/w/$w" || bad+=" $w"
done <"$H_TMP/written"
h_is "$bad" "" "a) every write that reported success has its bytes, through the mount and on the export"
# after the outage: reads and a new write work
ok=0
for d in n s; do for f in "$H_TMP"/src/$d/*.bin; do cmp -s "$f" "$M/$d/$(basename "$f")" && ok=$((ok + 1)); done; done
h_is "$ok" 16 "a) after the restart every NFS and S3-only file reads byte-identical"
cp "$H_TMP/src/s/f3.bin" "$M/w/after" && h_ok "a) a write after the restart lands on the export" cmp "$H_TMP/src/s/f3.bin" "$E/w/after"

# ---------------------------------------------------------------- b) the export full
rm -rf "$M/w"
sync
free_kb=$(df -k --output=avail "$E" | tail -n 1)
# leave about 8 MiB free
fill_kb=$((free_kb - 8 * 1024))
fallocate -l $((fill_kb * 1024)) "$E/filler" || dd if=/dev/zero of="$E/filler" bs=1k count=$fill_kb status=none
h_diag "b) export: $(df -h --output=size,avail "$E" | tail -n 1 | tr -s ' ')"
err=$(dd if=/dev/zero of="$M/toobig" bs=1M count=20 conv=fsync 2>&1)
h_ok "b) ENOSPC reaches the writer: dd through the mount says 'No space left on device'" \
	grep -q 'No space left on device' <<<"$err" || h_diag "$err"
rm -f "$M/toobig"
h_ok "b) the partial file can be removed" test ! -e "$E/toobig"
h_is "$(state "$M/big/big.bin")" s3-only "b) the 20 MB file is S3-only"
timeout 120 "$CTL" migrate --wait "$M/big/big.bin" >"$H_TMP/mig-full.out" 2>&1
h_is "$?" 1 "b) ferryctl migrate --wait of a 20 MB file into 8 MiB of space fails"
st=$(state "$M/big/big.bin")
h_ok "b) the ledger says queued or failed (it says $st)" test "$st" = failed -o "$st" = queued
h_ok "b) user.ferryfs.error names the cause" bash -c \
	"getfattr --only-values -n user.ferryfs.error '$M/big/big.bin' | grep -qi 'no space'" ||
	h_diag "error: $(xattr "$M/big/big.bin" error)"
h_ok "b) nothing is published under the name on the export" test ! -e "$E/big/big.bin"
h_is "$(ls -a "$M/big" | grep -c '^\.ferryfs')" 0 "b) no temporary file is visible through the mount"
h_is "$(tmpfiles)" 0 "b) the failed copy's temporary file is removed from the export"
h_ok "b) the file still reads byte-identical (from S3)" cmp "$H_TMP/src/big/big.bin" "$M/big/big.bin"
rm -f "$E/filler"
h_ok "b) space freed: ferryctl migrate --wait completes" timeout 120 "$CTL" migrate --wait "$M/big/big.bin"
h_is "$(state "$M/big/big.bin")" migrated "b) the file is migrated"
h_ok "b) its copy on the export is byte-identical" cmp "$H_TMP/src/big/big.bin" "$E/big/big.bin"
h_is "$(tmpfiles)" 0 "b) no temporary file is left"
h_ok "umount" h_umount
h_done
