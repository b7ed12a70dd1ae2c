#!/bin/bash
# nfsrtt.sh - a stat of an NFS file costs one NFS round trip, counted by the
# server: nfs-ganesha logs every request it dispatches (DISPATCH at DEBUG), and ferryfs -d
# logs every FUSE request, so "NFS calls <= FUSE lookups + getattrs" is checked with both
# counts taken outside ferryfs's own code. libnfs 4.0 alone walks every path from the
# export root (one LOOKUP per component, then a GETATTR); store/nfs_handle.c keeps directory
# handles (nfs/fhcache.c) and sends one LOOKUP. Also checked: what the handle cache must
# not get wrong when another host (a second mount) changes the tree under it (a
# directory removed: ENOENT, never ESTALE; renamed away and made again: the new one
# within the cache's 2 s), and the same count with the cache off (the baseline).
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
H_GANESHA_LOG_EXTRA='COMPONENTS { DISPATCH = DEBUG; }'
h_start_s3
h_start_nfs

mkdir -p "$H_EXPORT/a/b/c"
echo deep >"$H_EXPORT/a/b/c/file"
for i in $(seq 1 20); do echo "$i" >"$H_EXPORT/a/b/c/f$i"; done

# FUSE requests logged by -d: the mount runs through a wrapper that adds it
REAL_FERRYFS=$FERRYFS
FERRYFS=$H_TMP/ferryfs-debug
printf '#!/bin/sh\nexec "%s" "$@" -d\n' "$REAL_FERRYFS" >"$FERRYFS"
chmod +x "$FERRYFS"

nfs_count() { grep -c "for Program 100003" "$H_TMP/ganesha.log"; }
fuse_count() { grep -cE "opcode: (LOOKUP|GETATTR) " "$H_TMP/ferryfs.log"; }

# calls CMD...: run CMD; print "NFS-calls FUSE-requests" (lookups and getattrs) meanwhile
calls() {
	local n0 f0
	n0=$(nfs_count)
	f0=$(fuse_count)
	"$@" >/dev/null 2>&1
	sleep 0.2   # the -d log is written by the daemon: let it catch up
	echo "$(($(nfs_count) - n0)) $(($(fuse_count) - f0))"
}

# stat 20 files of one directory
stat_each() {
	local i
	for i in $(seq 1 20); do stat "$H_MNT/a/b/c/f$i"; done
}

h_mount
stat "$H_MNT/a/b/c/file" >/dev/null    # warm: the walk caches a, a/b, a/b/c
sleep 1.1                             # the kernel's entry cache (1 s) expires, ours (2 s) not
read -r n f < <(calls stat "$H_MNT/a/b/c/file")
h_diag "stat of a/b/c/file, kernel cache expired: $n NFS calls for $f FUSE lookups/getattrs"
h_ok "stat of a 4-deep NFS file: at most one NFS call per FUSE request ($n <= $f)" \
	test "$n" -le "$f" -a "$f" -ge 4
read -r n f < <(calls stat_each)
h_diag "20 stats in a known directory: $n NFS calls for $f FUSE lookups/getattrs"
h_ok "20 stats in a known directory: at most one NFS call per FUSE request ($n <= $f)" \
	test "$n" -le "$f" -a "$f" -ge 20
h_is "$(cat "$H_MNT/a/b/c/file")" deep "the file reads through the mount"

# a second mount is the other host; it changes NFS-only directories (plain NFS calls)
A_MNT=$H_MNT A_STATE=$H_STATE A_PID=$H_FERRY_PID
H_MNT=$H_TMP/mntb H_STATE=$H_TMP/stateb
h_mount
B=$H_MNT B_PID=$H_FERRY_PID
H_MNT=$A_MNT H_STATE=$A_STATE H_FERRY_PID=$A_PID

# the other host removes a directory whose handle we cache: ENOENT, never ESTALE
mkdir -p "$B/gone/sub"
echo x >"$B/gone/sub/f"
stat "$H_MNT/gone/sub/f" >/dev/null
rm -rf "$B/gone"
sleep 1.1
err=$(stat "$H_MNT/gone/sub/f" 2>&1 >/dev/null)
h_ok "a directory removed by another host: ENOENT ($err)" grep -q "No such file" <<<"$err"
mkdir -p "$B/gone/sub"
echo y >"$B/gone/sub/f"
sleep 1.1
h_is "$(cat "$H_MNT/gone/sub/f" 2>&1)" y "made again by the other host: the new one is seen"

# the other host renames a directory away and makes a new one under the old name: the
# new one is seen once the cache's entries expire (2 s), never an error
mkdir -p "$B/r/d"
echo old >"$B/r/d/f"
cat "$H_MNT/r/d/f" >/dev/null
mv "$B/r/d" "$B/r/moved"
mkdir "$B/r/d"
echo new >"$B/r/d/f"
sleep 2.2
h_is "$(cat "$H_MNT/r/d/f" 2>&1)" new "a directory renamed away and made again: the new one after 2 s"
h_is "$(cat "$H_MNT/r/moved/f" 2>&1)" old "the renamed one is found at its new name"

# renames through the mount forget the cached handles at once
mkdir "$H_MNT/m1"
echo one >"$H_MNT/m1/f"
cat "$H_MNT/m1/f" >/dev/null
mv "$H_MNT/m1" "$H_MNT/m2"
mkdir "$H_MNT/m1"
echo two >"$H_MNT/m1/f"
h_is "$(cat "$H_MNT/m1/f")" two "a directory renamed through the mount and made again: the new one at once"
h_is "$(cat "$H_MNT/m2/f")" one "and the renamed one at its new name"
h_umount

# the baseline: libnfs's walk (the cache off) on the same tree
export FERRYFS_NFS_NO_FHCACHE=1
h_mount
unset FERRYFS_NFS_NO_FHCACHE
stat "$H_MNT/a/b/c/file" >/dev/null
sleep 1.1
read -r n f < <(calls stat "$H_MNT/a/b/c/file")
h_diag "the same stat without the handle cache: $n NFS calls for $f FUSE lookups/getattrs"
h_ok "without the cache the same stat costs more NFS calls than FUSE requests ($n > $f)" \
	test "$n" -gt "$f"
h_umount
H_MNT=$B H_FERRY_PID=$B_PID
h_umount
h_done
