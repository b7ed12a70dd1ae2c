#!/bin/bash
# migrate-commit.sh - a large copy is committed as it streams (src/view/copy.c, the committer),
# counted by the server: nfs-ganesha logs every request it dispatches (DISPATCH at DEBUG).
#   - a 96 MiB object migrates byte-identical, and the server saw a COMMIT of the copy
#     while it was being written (at 64 MiB), besides the final one;
#   - nfs-ganesha restarted in the middle of such a copy (after a COMMIT during the stream,
#     before the end): the new server's write verifier differs, so what was written
#     before the restart is not trusted (or the connection drops: the try fails either
#     way); the copy is retried and lands byte-identical; a temporary file the failed
#     try could not remove is removed by the next mount.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
H_GANESHA_LOG_EXTRA='COMPONENTS { DISPATCH = DEBUG; }'
h_start_s3
h_start_nfs

E=$H_EXPORT
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
tmpfiles() { find "$E" -name '.ferryfs.tmp.*' 2>/dev/null | wc -l; }
# NFSv3 procedure 21 is COMMIT, 7 WRITE
nfs_calls() { grep -c "for Program 100003, Version 3, Function $1\b" "$H_TMP/ganesha.log"; }

head -c $((96 << 20)) /dev/urandom >"$H_TMP/a.bin"
head -c $((96 << 20)) /dev/urandom >"$H_TMP/b.bin"
h_seed_s3 big/a.bin "$H_TMP/a.bin"
h_seed_s3 big/b.bin "$H_TMP/b.bin"
h_ok "ganesha logs the requests it dispatches" test "$(nfs_calls 0)$(nfs_calls 1)" != 00

h_mount workers=1
M=$H_MNT
c0=$(nfs_calls 21)
w0=$(nfs_calls 7)
h_ok "a 96 MiB object migrates" "$FERRYCTL" migrate --wait "$M/big/a.bin"
c1=$(nfs_calls 21)
w1=$(nfs_calls 7)
h_diag "the copy: $((w1 - w0)) WRITEs, $((c1 - c0)) COMMITs"
h_ok "the copy was committed during the stream as well as at its end ($((c1 - c0)) >= 2)" \
	test $((c1 - c0)) -ge 2
h_ok "... and at most once per 64 MiB plus the final one ($((c1 - c0)) <= 3)" test $((c1 - c0)) -le 3
h_is "$(state "$M/big/a.bin")" migrated "the file is migrated"
h_ok "the NFS copy is byte-identical" cmp "$E/big/a.bin" "$H_TMP/a.bin"
h_umount

# --- the server restarts in the middle of a copy ---
# S3 bodies at 24 MB/s through the fault proxy: four seconds for the object
h_slow_s3 24000000
H_S3_URL=$H_SLOW_S3_URL h_mount workers=1
c0=$(nfs_calls 21)
setfattr -n user.ferryfs.migrate -v now "$M/big/b.bin"
h_ok "the copy is past its first COMMIT" h_wait_for 60 bash -c \
	"[ \$(grep -c 'for Program 100003, Version 3, Function 21\b' '$H_TMP/ganesha.log') -gt $c0 ]"
h_ok "... and not finished" test ! -e "$E/big/b.bin"
h_restart_nfs
h_ok "after the restart the copy is retried to the end" h_wait_for 120 bash -c \
	"[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/big/b.bin')\" = migrated ]"
h_ok "the NFS copy is byte-identical" cmp "$E/big/b.bin" "$H_TMP/b.bin"
h_ok "the daemon logged the failed try (lost connection or changed write verifier) and the retry" \
	grep -qE 'migrate /big/b\.bin: copy: .*retry 1' "$H_TMP/ferryfs.log"
h_ok "umount" h_umount
# a temporary file the failed try could not remove (the server was down) is recorded in
# the ledger and removed by the next mount, as after a crash
h_mount workers=1
h_ok "the next mount removed every temporary file" h_wait_for 20 bash -c "[ \$(find '$E' -name '.ferryfs.tmp.*' | wc -l) = 0 ]"
h_ok "the file is still migrated and identical" cmp "$M/big/b.bin" "$H_TMP/b.bin"
h_ok "umount" h_umount
h_done
