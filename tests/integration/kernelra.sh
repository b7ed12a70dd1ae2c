#!/bin/bash
# The kernel's read-ahead on the mount (kernel_readahead, src/fuse/fs.c fs_kernel_readahead),
# over a real s3rver and nfs-ganesha: ferryfs sets its FUSE device's read_ahead_kb once the
# mount is up (1 MiB by default, found through /proc/self/mountinfo, here for a mount
# point with a space in its name); kernel_readahead=0 leaves the kernel's value; another
# size is applied as given; a size over 64M is refused at start with a clear error. Reads
# through the mount are byte-identical either way.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

ra_kb() { # the read_ahead_kb of the FUSE device mounted at $1
	local dev
	dev=$(mountpoint -d "$1") || return 1
	cat "/sys/class/bdi/$dev/read_ahead_kb"
}
head -c $((48 << 20)) /dev/urandom >"$H_TMP/f.bin"
h_seed_nfs new/f.bin "$H_TMP/f.bin"
h_seed_s3 old/f.bin "$H_TMP/f.bin"

# --- the default, on a mount point with a space ---
H_MNT="$H_TMP/mnt with space"
h_mount migrate_on=never
M=$H_MNT
stat "$M" >/dev/null
h_is "$(ra_kb "$M")" 1024 "the default mount's read_ahead_kb is 1024 (kernel_readahead=1M)"
h_ok "... and the log says so" grep -q "kernel read-ahead on the mount: 1024 KiB (/sys/class/bdi/" "$H_TMP/ferryfs.log"
h_ok "a new-store file reads byte-identical" cmp "$M/new/f.bin" "$H_TMP/f.bin"
h_ok "an S3-only file reads byte-identical" cmp "$M/old/f.bin" "$H_TMP/f.bin"
h_ok "ferryctl finds the mount whose name has a space" "$FERRYCTL" status "$M"
h_umount

# --- kernel_readahead=0: the kernel keeps its own ---
: >"$H_TMP/ferryfs.log"
H_MNT=$H_TMP/mnt0
h_mount migrate_on=never,kernel_readahead=0
stat "$H_MNT" >/dev/null
k0=$(ra_kb "$H_MNT")
h_ok "with kernel_readahead=0 read_ahead_kb is the kernel's own ($k0 KiB, not 1024)" test "$k0" != 1024
h_ok "... and nothing is logged about it" bash -c "! grep -q 'kernel read-ahead' '$H_TMP/ferryfs.log'"
h_ok "... reads are byte-identical" cmp "$H_MNT/new/f.bin" "$H_TMP/f.bin"
h_umount

# --- another size ---
H_MNT=$H_TMP/mnt4
h_mount migrate_on=never,kernel_readahead=4M
stat "$H_MNT" >/dev/null
h_is "$(ra_kb "$H_MNT")" 4096 "kernel_readahead=4M gives read_ahead_kb 4096"
h_ok "... reads are byte-identical" cmp "$H_MNT/old/f.bin" "$H_TMP/f.bin"
h_umount

# --- out of range ---
out=$("$FERRYFS" "$H_TMP/mnt4" -f -o "s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,nfs=$H_NFS_URL,state_dir=$H_TMP/state,kernel_readahead=65M" 2>&1)
rc=$?
h_is "$rc" 2 "kernel_readahead=65M: ferryfs exits 2"
h_diag "$out"
h_ok "... naming the option and the range" bash -c "printf '%s' \"\$1\" | grep -q \"kernel_readahead.*up to 64M\"" _ "$out"
h_ok "... and mounted nothing" bash -c "! grep -q ' $H_TMP/mnt4 fuse' /proc/mounts"
h_done
