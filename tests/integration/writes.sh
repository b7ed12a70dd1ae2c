#!/bin/bash
# The write path of the unified mount, point by point (spec 3-5), over a real s3rver and
# a real nfs-ganesha: O_TRUNC copies no data (every S3 request is seen by a proxy), an
# object replaced under an open handle gives ESTALE, s3fs metadata in stat, the
# rename_dir_limit EXDEV case and mv's fallback, a directory of four listing pages, odd
# names landing on NFS, markers and temporary files never visible, inode numbers, a
# second mount over the same stores seeing the first one's changes, and a reader opened
# on S3 following its file when another process copies it up and appends.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

B=$H_BUCKET

pattern() { "$PY3" -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + $2) & 255 for i in range($1)))"; }

# --- S3 (old store) ---
pattern 3000000 1 >"$H_TMP/big.bin"
h_seed_s3 trunc/big.bin "$H_TMP/big.bin"
h_seed_s3 trunc/other.bin "$H_TMP/big.bin"
pattern 8000000 2 >"$H_TMP/stale-v1.bin"
pattern 8000000 3 >"$H_TMP/stale-v2.bin"
h_seed_s3 stale/obj.bin "$H_TMP/stale-v1.bin"
printf 'with metadata\n' >"$H_TMP/meta.txt"
h_aws s3 cp --only-show-errors "$H_TMP/meta.txt" "s3://$B/meta/exec.txt" \
	--metadata mode=33261,uid=1234,gid=5678,mtime=1500000000 || h_bail "seeding metadata"
h_aws s3 cp --only-show-errors "$H_TMP/meta.txt" "s3://$B/meta/private.txt" \
	--metadata mode=33152,mtime=1400000000 || h_bail "seeding metadata"
h_seed_s3 meta/plain.txt "$H_TMP/meta.txt"
for i in 1 2 3 4 5; do printf 'file %s\n' $i | h_seed_s3 "bigdir/f$i"; done
printf 'deep\n' | h_seed_s3 bigdir/sub/deep.txt
for i in 1 2 3; do printf 'small %s\n' $i | h_seed_s3 "smalldir/f$i"; done
printf 'x\n' | h_seed_s3 marks/gone.txt
printf 'x\n' | h_seed_s3 marks/dir/a.txt
printf 'x\n' | h_seed_s3 marks/keep.txt
printf 'ino\n' | h_seed_s3 ino/file.txt
printf 'ino2\n' | h_seed_s3 ino/other.txt
printf 'shared\n' | h_seed_s3 two/s3file.txt
printf 'to delete\n' | h_seed_s3 two/delete-me.txt
printf 'to rename\n' | h_seed_s3 two/rename-me.txt
mkdir -p "$H_TMP/pages"
for i in $(seq -w 1 3500); do printf '%s\n' "$i" >"$H_TMP/pages/obj$i"; done
h_aws s3 sync --only-show-errors "$H_TMP/pages" "s3://$B/pages/" || h_bail "aws s3 sync of 3500 objects"

# --- mount through the SigV4-checking proxy, which logs every S3 request ---
REAL_S3_URL=$H_S3_URL
h_mount_signed rename_dir_limit=3,mirror=off  # the write path alone: write-back has its own test (mirror.sh)
M=$H_MNT
E=$H_EXPORT

# --- O_TRUNC of an S3-only file copies no data ---
ino_before=$(stat -c %i "$M/trunc/big.bin")
mark=$(wc -l <"$H_TMP/proxy.log")
"$PY3" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"replaced\n")
os.close(fd)' "$M/trunc/big.bin"
h_is "$(cat "$M/trunc/big.bin")" "replaced" "O_TRUNC of an S3-only file: the new bytes are there"
h_is "$(tail -n +$((mark + 1)) "$H_TMP/proxy.log" | grep -c "^ok GET /$B/trunc/big\.bin[ ?]")" 0 \
	"O_TRUNC of an S3-only file sent no GET of its object (no data copied)"
h_is "$(cat "$E/trunc/big.bin")" "replaced" "the truncated file is on NFS"
h_ok "the S3 object is left as it was" bash -c "cmp <(/usr/bin/aws --endpoint-url $H_S3_URL \
	s3 cp s3://$B/trunc/big.bin -) '$H_TMP/big.bin'"
mark=$(wc -l <"$H_TMP/proxy.log")
: >"$M/trunc/other.bin"
h_is "$(stat -c %s "$M/trunc/other.bin")" 0 "shell truncation (>) of an S3-only file gives an empty file"
h_is "$(tail -n +$((mark + 1)) "$H_TMP/proxy.log" | grep -c "^ok GET /$B/trunc/other\.bin[ ?]")" 0 \
	"shell truncation of an S3-only file sent no GET of its object"
h_is "$(stat -c %i "$M/trunc/big.bin")" "$ino_before" \
	"st_ino of a file is the same before and after its copy-up (spec 4)"

# --- an object replaced in S3 under an open handle: ESTALE, never mixed content ---
# (the migrator is paused here: once a touched file is migrated, reads come from NFS and a
# change in S3 is the revalidation's business, not this check's)
setfattr -n user.ferryfs.pause -v 1 "$M"
out=$(REAL_S3_URL=$REAL_S3_URL V2=$H_TMP/stale-v2.bin B=$B \
	"$PY3" - "$M/stale/obj.bin" "$H_TMP/stale-v1.bin" <<'EOF' 2>&1
import errno, os, subprocess, sys
path, v1 = sys.argv[1], open(sys.argv[2], 'rb').read()
fd = os.open(path, os.O_RDONLY)
head = os.pread(fd, 4096, 0)
assert head == v1[:4096], 'first read is not version 1'
subprocess.run(['/usr/bin/aws', '--endpoint-url', os.environ['REAL_S3_URL'], 's3', 'cp',
                '--only-show-errors', os.environ['V2'], 's3://%s/stale/obj.bin' % os.environ['B']],
               check=True)
results = []
for off in (6000000, 7000000, 100000):
    try:
        data = os.pread(fd, 65536, off)
        results.append('old' if data == v1[off:off + 65536] else 'MIXED')
    except OSError as e:
        results.append(errno.errorcode[e.errno])
print(' '.join(results))
EOF
)
h_is "$out" "ESTALE ESTALE ESTALE" \
	"reads after the object was replaced under an open handle fail with ESTALE"
h_is "$(cat "$M/stale/obj.bin" | cmp - "$H_TMP/stale-v2.bin" && echo same)" same \
	"a new open reads the new object"
setfattr -n user.ferryfs.pause -v 0 "$M"

# --- s3fs metadata: x-amz-meta-mode/uid/gid/mtime ---
h_is "$(stat -c '%A %u %g %Y' "$M/meta/exec.txt")" "-rwxr-xr-x 1234 5678 1500000000" \
	"x-amz-meta-mode/uid/gid/mtime are honoured in stat"
h_is "$(stat -c '%a %u %g %Y' "$M/meta/private.txt")" "600 0 0 1400000000" \
	"mode 33152 is 0600; missing uid/gid fall back to the uid/gid options"
h_is "$(stat -c '%a' "$M/meta/plain.txt")" "644" "no metadata: file_mode (0644)"
h_is "$(ls -l --time-style=+%s "$M/meta" | awk '$7=="exec.txt"{print $1, $3, $4, $6}')" \
	"-rwxr-xr-x 1234 5678 1500000000" "the listing carries the same metadata (ls -l)"
chmod 640 "$M/meta/exec.txt"
h_is "$(stat -c '%a %u %g %Y %s' "$E/meta/exec.txt")" "640 1234 5678 1500000000 14" \
	"chmod copies up with the object's owner and mtime, then changes the mode (on NFS)"

# --- rename of a directory holding more objects than rename_dir_limit (3) ---
out=$("$PY3" -c '
import os, sys
try:
    os.rename(sys.argv[1] + "/bigdir", sys.argv[1] + "/bigdir2"); print("renamed")
except OSError as e:
    print(os.strerror(e.errno))' "$M")
h_is "$out" "$("$PY3" -c 'import errno, os; print(os.strerror(errno.EXDEV))')" \
	"rename of a directory with 6 S3 objects over rename_dir_limit=3 is EXDEV"
h_ok "EXDEV changed nothing: no copy on NFS, the old directory intact" bash -c "
	! test -e '$E/bigdir' && ! test -e '$E/bigdir2' && ! test -e '$M/bigdir2' &&
	test \"\$(ls '$M/bigdir' | tr '\n' ' ')\" = 'f1 f2 f3 f4 f5 sub '"
h_ok "rename of a directory with 3 S3 objects (= the limit) works" \
	mv "$M/smalldir" "$M/smalldir2"
h_is "$(ls "$M/smalldir2" | tr '\n' ' ')|$(cat "$M/smalldir2/f2")|$(ls "$M" | grep -c '^smalldir$')" \
	"f1 f2 f3 |small 2|0" "the renamed directory holds its files; the old name is gone"
h_ok "mv of the big directory falls back to copy and delete" mv "$M/bigdir" "$M/bigdir2"
h_is "$(cd "$M/bigdir2" && find . -type f | sort | xargs cat | tr '\n' ' ')" \
	"file 1 file 2 file 3 file 4 file 5 deep " "after mv the new directory holds every file"
h_ok "after mv the old directory is gone (its S3 objects whited out)" bash -c "! test -e '$M/bigdir'"
sleep 1.5
h_ok "... and stays gone once the cache expired" bash -c "! test -e '$M/bigdir' && ! ls '$M' | grep -qx bigdir"

# --- a directory of more than three listing pages ---
ls "$M/pages" >"$H_TMP/pages.ls"
h_is "$(wc -l <"$H_TMP/pages.ls")" 3500 "ls of a directory of 3500 objects (4 pages) shows 3500 names"
h_is "$(sort "$H_TMP/pages.ls" | uniq -d | wc -l)" 0 "... each once"
h_is "$(diff <(ls "$H_TMP/pages") "$H_TMP/pages.ls" && echo same)" same "... exactly the objects' names"
h_is "$(cat "$M/pages/obj3500")" 3500 "the last object of the last page reads"

# --- names with spaces, '+', '%' and unicode, created through the mount, land on NFS ---
names=("with space.txt" "plus+sign.txt" "per%cent%20.txt" "ünïcödé ☃.txt")
mkdir "$M/odd names"
for n in "${names[@]}"; do printf '%s\n' "$n" >"$M/odd names/$n"; done
ok=1
for n in "${names[@]}"; do [ "$(cat "$E/odd names/$n" 2>/dev/null)" = "$n" ] || ok=0; done
h_is "$ok" 1 "files with odd names created through the mount are on NFS with their bytes"
h_is "$(ls "$M/odd names" | sort | tr '\n' '/')" "$(printf '%s\n' "${names[@]}" | sort | tr '\n' '/')" \
	"the mount lists the odd names as created"
h_is "$(nfs-ls "nfs://127.0.0.1$E/odd names?nfsport=$H_NFS_PORT&mountport=$H_MNT_PORT" 2>/dev/null |
	grep -c 'txt$')" 4 "an NFS client (nfs-ls) sees the four files"
h_is "$(h_aws s3 ls "s3://$B/odd names/" 2>/dev/null | wc -l)" 0 \
	"nothing was written to S3 (writes go to the new store)"

# --- whiteouts and markers never visible through the mount; no temporary files left ---
rm "$M/marks/gone.txt"
rm "$M/marks/dir/a.txt"
rmdir "$M/marks/dir"
mkdir "$M/marks/dir"
h_ok "the export holds whiteout and opaque markers" bash -c \
	"ls -a '$E/marks' | grep -q '^\.ferryfs\.wh\.' && test -e '$E/marks/dir/.ferryfs.opaque'"
h_is "$(find "$M" -name '.ferryfs*' | wc -l)" 0 "no .ferryfs name is visible anywhere through the mount"
h_is "$(ls -a "$M/marks" | tr '\n' ' ')" ". .. dir keep.txt " "a directory with markers lists only real entries"
h_ok "a marker cannot be looked up through the mount" bash -c "! stat '$M/marks/dir/.ferryfs.opaque'"
h_ok "a .ferryfs name cannot be created through the mount" bash -c "! touch '$M/marks/.ferryfs.x' && ! mkdir '$M/.ferryfs-d'"
h_is "$(find "$E" -name '.ferryfs.tmp.*' | wc -l)" 0 "copy-ups left no temporary file in the export"

# --- fsync and statfs ---
h_ok "fsync of a file written through the mount succeeds" "$PY3" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"durable\n"); os.fsync(fd); os.fdatasync(fd); os.close(fd)' "$M/fsynced.txt"
h_is "$(cat "$E/fsynced.txt")" durable "... and its bytes are on NFS"
h_ok "statfs reports the new store (the size of the exported filesystem, within 1%)" "$PY3" -c '
import os, sys
m, e = os.statvfs(sys.argv[1]), os.statvfs(sys.argv[2])
tm, te = m.f_blocks * m.f_frsize, e.f_blocks * e.f_frsize
sys.exit(0 if te and abs(tm - te) <= te / 100 else "mount %d bytes, export %d" % (tm, te))' "$M" "$E"

# --- inode numbers ---
ino1=$(stat -c %i "$M/ino/file.txt")
ln "$M/ino/file.txt" "$M/ino/link.txt"
sleep 1.1
h_is "$(stat -c %i "$M/ino/link.txt")" "$(stat -c %i "$M/ino/file.txt")" "hard links report one inode number"
h_is "$(stat -c %h "$M/ino/file.txt")" 2 "... and nlink 2"
ino_other=$(stat -c %i "$M/ino/other.txt")

# --- a second mount over the same S3 and NFS (its own state_dir) ---
MNT1=$H_MNT STATE1=$H_STATE PID1=$H_FERRY_PID
H_MNT=$H_TMP/mnt2 H_STATE=$H_TMP/state2
h_mount mirror=off
M2=$H_MNT PID2=$H_FERRY_PID
H_MNT=$MNT1 H_STATE=$STATE1 H_FERRY_PID=$PID1
h_is "$(stat -c %i "$M2/ino/other.txt")" "$ino_other" "an S3-only file has the same st_ino on another mount"
h_is "$(cat "$M2/two/s3file.txt")" shared "the second mount reads S3"
printf 'new from mount 1\n' >"$M/two/created.txt"
printf 'appended by 1\n' >>"$M/two/s3file.txt"
rm "$M/two/delete-me.txt"
mv "$M/two/rename-me.txt" "$M/two/renamed.txt"
mkdir "$M/two/newdir"
sleep 1.5
h_is "$(cat "$M2/two/created.txt")" "new from mount 1" "mount 2 sees a file created by mount 1"
h_is "$(cat "$M2/two/s3file.txt" | tr '\n' '|')" "shared|appended by 1|" "mount 2 sees mount 1's write to an S3 file"
h_ok "mount 2 sees mount 1's deletion of an S3 file" bash -c "! test -e '$M2/two/delete-me.txt'"
h_is "$(ls "$M2/two" | tr '\n' ' ')" "created.txt newdir renamed.txt s3file.txt " "mount 2 lists mount 1's changes"
h_is "$(cat "$M2/two/renamed.txt")" "to rename" "mount 2 sees mount 1's rename"
printf 'from mount 2\n' >"$M2/two/from2.txt"
rm "$M2/two/created.txt"
sleep 1.5
h_is "$(ls "$M/two" | tr '\n' ' ')" "from2.txt newdir renamed.txt s3file.txt " "and mount 1 sees mount 2's"
h_ok "mount 2 unmounts cleanly" bash -c "fusermount3 -u '$M2' && for i in \$(seq 100); do kill -0 $PID2 2>/dev/null || exit 0; sleep 0.1; done; exit 1"

# --- across a remount of the first mount ---
h_ok "umount exits cleanly" h_umount
h_mount mirror=off
h_is "$(stat -c %i "$M/ino/other.txt")" "$ino_other" "st_ino of an S3-only file is stable across a remount"
h_is "$(stat -c %i "$M/ino/file.txt")" "$(stat -c %i "$M/ino/link.txt")" "hard links share st_ino after a remount"
h_ok "deleted S3 files stay deleted after a remount" bash -c "! test -e '$M/two/delete-me.txt' && ! test -e '$M/marks/gone.txt'"
h_is "$(ls -a "$M/marks/dir" | tr '\n' ' ')" ". .. " "a directory recreated over a removed S3 one stays empty"
h_is "$(grep -c -v '^ok ' "$H_TMP/proxy.log")" 0 "every S3 request was signed correctly"

# --- a reader opened on S3 while another process copies the file up and grows it ---
# (the kernel has one size for the path: the reader's pinned object must not shrink it;
# the reader follows the file onto the new store and sees the append, as on any file)
pattern 300000 5 | h_seed_s3 pin/grow.bin
exec 7<"$M/pin/grow.bin"
h_is "$(head -c 1000 <&7 | wc -c)" 1000 "a reader opened on S3 reads the start"
printf 'appended by another process' >>"$M/pin/grow.bin"
h_is "$(getfattr --only-values -n user.ferryfs.source "$M/pin/grow.bin")" nfs "the append copied the file up"
h_is "$(cat <&7 | wc -c)" 299027 "the S3 reader reads on to the new end (the append included)"
exec 7<&-
h_is "$(cat "$M/pin/grow.bin" | wc -c)" 300027 "a reader right after it sees the whole file"
h_is "$(tail -c 27 "$M/pin/grow.bin")" "appended by another process" "... with the append"
h_is "$(stat -c %s "$M/pin/grow.bin")" 300027 "... and stat says so"
h_ok "umount exits cleanly" h_umount
h_done
