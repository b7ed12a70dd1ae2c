#!/bin/bash
# `ferryctl finish` (spec 7) over a real s3rver and nfs-ganesha: it refuses while S3 objects
# are not migrated (naming them) or migrations are queued; after `ferryctl migrate --all
# --wait` it succeeds, and then the export, read directly (an independent client), holds
# exactly the mount's tree (names, types and bytes) with no .ferryfs* name left, after
# unlinks (whiteouts) and an rmdir + mkdir (opaque) were done through the mount. The
# finished mount no longer reads S3 (a deleted file stays deleted though S3 still has it),
# across a remount too; another host's mount switches through the marker object in S3
# before the whiteouts go; finish again is harmless, also while changes made since wait in
# the journal for write-back; the hidden name of a file unlinked while open that a crash
# kept is removed, one a live mount holds open is named and left.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL

stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$M" | awk -v k="$1" '$1 == k { print $2 }'; }
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
# names, types, symlink targets and file bytes of a tree, one line each, sorted
tree() { (cd "$1" && find . -mindepth 1 -printf '%y %p %l\n' | sort && find . -type f -exec sha256sum {} + | sort -k2); }

# --- S3 ---
for i in 1 2 3; do printf 'file %s\n' "$i" | h_seed_s3 "d/f$i.txt"; done
printf 'keep\n' | h_seed_s3 keep/x.txt
printf 'deep\n' | h_seed_s3 keep/sub/y.txt
printf 'deleted through the mount\n' | h_seed_s3 del.txt
printf 'deleted too\n' | h_seed_s3 keep/gone.txt
printf 'in a directory removed and made again\n' | h_seed_s3 redo/old.txt
printf 'also gone\n' | h_seed_s3 redo/sub/old2.txt
head -c 2000000 /dev/urandom >"$H_TMP/big.bin"
h_seed_s3 big.bin "$H_TMP/big.bin"

h_mount workers=2,revalidate=0,mirror=off  # the markers must exist: write-back would delete the S3 names first
M=$H_MNT
E=$H_EXPORT

# --- changes through the mount: whiteouts, an opaque directory, new and modified files ---
rm "$M/del.txt" "$M/keep/gone.txt"
rm -r "$M/redo"
mkdir "$M/redo"
printf 'new in the remade directory\n' >"$M/redo/new.txt"
printf 'created through the mount\n' >"$M/created.txt"
printf 'appended\n' >>"$M/keep/x.txt"
ln -s keep/x.txt "$M/link"
h_ok "the export holds whiteouts and an opaque marker now" bash -c \
	"[ \$(find '$E' -name '.ferryfs.wh.*' | wc -l) -ge 2 ] && [ -e '$E/redo/.ferryfs.opaque' ]"

# --- refused: objects not migrated ---
OUT=$("$CTL" finish --grace 0 "$M" 2>&1)
RC=$?
h_is "$RC" 1 "finish refuses while S3 objects are not migrated (exit 1)"
h_ok "... saying how many and naming them" bash -c "printf '%s' \"\$1\" | grep -q 'not finished: 5 S3 object(s) not on the new store' &&
	printf '%s' \"\$1\" | grep -q '/d/f1.txt'" _ "$OUT"
h_ok "... and nothing was removed" test -e "$E/redo/.ferryfs.opaque"
h_ok "... and the mount still hides what was deleted" test ! -e "$M/del.txt"

# --- refused: something queued ---
"$CTL" pause "$M" >/dev/null
cat "$M/d/f1.txt" >/dev/null
OUT=$("$CTL" finish --grace 0 "$M" 2>&1)
RC=$?
h_is "$RC" 1 "finish refuses while a migration is queued"
h_ok "... saying so" bash -c "printf '%s' \"\$1\" | grep -q 'migrations queued 1'" _ "$OUT"
"$CTL" resume "$M" >/dev/null

# --- refused: the journal is not empty ---
# (an entry put in with a test helper while unmounted; mirror=off so that no write-back
# drains it at mount)
JT=$H_BUILD/tests/integ/journal_tool
h_umount
"$JT" "$H_STATE" append /keep/x.txt || h_bail "journal_tool append"
h_mount workers=2,revalidate=0,mirror=off
OUT=$("$CTL" finish --grace 0 "$M" 2>&1)
RC=$?
h_is "$RC" 1 "finish refuses while the journal holds changes"
h_ok "... saying so" bash -c "printf '%s' \"\$1\" | grep -q 'the journal holds [0-9]* change'" _ "$OUT"
h_is "$(setfattr -n user.ferryfs.finish -v 1 "$M" 2>&1 | grep -c 'Device or resource busy')" 1 \
	"the daemon itself refuses user.ferryfs.finish=1 (EBUSY) while the journal holds changes"
h_umount
"$JT" "$H_STATE" clear || h_bail "journal_tool clear"
h_mount workers=2,revalidate=0

# --- after a full crawl ---
h_ok "ferryctl migrate --all --wait" "$CTL" migrate --all --wait "$M"
h_is "$(state "$M/d/f2.txt") $(state "$M/big.bin") $(state "$M/keep/x.txt")" "migrated migrated modified" \
	"the crawl migrated what was left"
h_ok "the journal is empty (written back, if anything journals)" \
	h_wait_for 60 bash -c "[ \"\$(getfattr --only-values -n user.ferryfs.stats '$M' | awk '\$1 == \"journal_pending\" { print \$2 }')\" = 0 ]"
# write-back (mirror=async) deleted del.txt from S3 too: an old host puts it back, so that
# "stays deleted though S3 still has it" below still means something
printf 'an old host wrote it again\n' | h_seed_s3 del.txt
before=$(tree "$M")
# a second host (its own ledger), mounted before finish: it must switch too
MA=$M STA=$H_STATE PIDA=$H_FERRY_PID
H_MNT=$H_TMP/mntb H_STATE=$H_TMP/stateb
h_mount workers=1,revalidate=0
MB=$H_MNT PIDB=$H_FERRY_PID
H_MNT=$MA H_STATE=$STA H_FERRY_PID=$PIDA
h_ok "the other host's mount hides the deleted file (a whiteout)" test ! -e "$MB/del.txt"
OUT=$("$CTL" finish --grace 12 "$M" 2>&1)
RC=$?
h_is "$RC" 0 "finish succeeds once everything is on the new store"
h_diag "$OUT"
h_ok "... and says the tree is complete" bash -c "printf '%s' \"\$1\" | grep -q '^finished: the new store'" _ "$OUT"
h_is "$(find "$E" -name '.ferryfs*' | wc -l)" 0 "no .ferryfs* name is left on the export"
h_is "$(tree "$E")" "$before" "the export read directly holds exactly the mount's tree (names, types, bytes)"
h_is "$(tree "$M")" "$before" "the mount shows the same tree after finish"
h_ok "an independent NFS client (nfs-ls) lists the same top level" bash -c \
	"diff <(nfs-ls '$H_NFS_URL' | awk '{ print \$NF }' | grep -v '^\\.\\.\\?\$' | sort) <(ls -A '$M' | sort)"
h_ok "the deleted file stays deleted though S3 still has it" bash -c \
	"test ! -e '$M/del.txt' && h_aws() { /usr/bin/aws --endpoint-url '$H_S3_URL' --no-cli-pager \"\$@\"; }; h_aws s3api head-object --bucket '$H_BUCKET' --key del.txt >/dev/null"
h_is "$(ls "$M/redo")" "new.txt" "the remade directory shows only its new file"
h_ok "the finished marker is in S3" h_aws s3api head-object --bucket "$H_BUCKET" --key .ferryfs.finished
h_ok "the other host's mount switched within the grace time (its log says so)" \
	grep -q "S3 holds the fleet's finished marker" "$H_TMP/ferryfs.log"
h_ok "... and, its whiteouts gone, still hides the deleted file" test ! -e "$MB/del.txt"
h_is "$(tree "$MB")" "$before" "... and shows the same tree"
fusermount3 -u "$MB" && h_wait_gone "$PIDB" 30

# --- the finished mount keeps working and whites nothing out ---
rm "$M/d/f3.txt"
h_ok "an unlink after finish removes the file" test ! -e "$M/d/f3.txt"
h_is "$(find "$E" -name '.ferryfs*' | wc -l)" 0 "... and leaves no whiteout (S3 is retired)"
printf 'after finish\n' >"$M/after.txt"
h_is "$(cat "$E/after.txt")" "after finish" "writes still land on the new store"
OUT=$("$CTL" finish --grace 0 "$M" 2>&1)
h_is "$?" 0 "finish again is harmless"
h_diag "$OUT"
h_ok "... and says it was finished already" bash -c "printf '%s' \"\$1\" | grep -q 'finished already'" _ "$OUT"

# --- across a remount ---
# (mirror=off: a change made now stays in the journal, as one not yet written back would)
h_umount
h_mount workers=2,revalidate=0,mirror=off
h_ok "after a remount the deleted file stays deleted" test ! -e "$M/del.txt"
h_is "$(ls "$M/redo")" "new.txt" "... and the remade directory shows only its new file"
h_ok "the daemon logged that the mount is finished" grep -q "this mount was finished" "$H_TMP/ferryfs.log"
printf 'after the remount\n' >"$M/after2.txt"
h_ok "a change after finish is journaled (write-back to S3 goes on)" \
	bash -c "[ \"\$(getfattr --only-values -n user.ferryfs.stats '$M' | awk '\$1 == \"journal_pending\" { print \$2 }')\" -ge 1 ]"
OUT=$("$CTL" finish --grace 0 "$M" 2>&1)
h_is "$?" 0 "finish again with that change still in the journal is harmless"
h_diag "$OUT"
h_ok "... and notes the change" bash -c "printf '%s' \"\$1\" | grep -q 'made since finish'" _ "$OUT"

# --- files unlinked while open: the hidden name a crash kept goes, a live one stays ---
hidden() { find "$E" -name '.ferryfs.hidden.*' | wc -l; }
printf 'open at the crash\n' >"$M/crashed.txt"
printf 'open at finish\n' >"$M/held.txt"
exec 8<"$M/crashed.txt"
rm "$M/crashed.txt"
h_is "$(hidden)" 1 "a file unlinked while open keeps a hidden name on the export"
kill -9 "$H_FERRY_PID"
h_wait_gone "$H_FERRY_PID" 10
exec 8<&-
fusermount3 -uz "$M" 2>/dev/null
h_is "$(hidden)" 1 "... which a crash leaves behind"
h_mount workers=2,revalidate=0,mirror=off
exec 9<"$M/held.txt"
rm "$M/held.txt"
h_is "$(hidden)" 2 "another file unlinked while this mount holds it open"
OUT=$("$CTL" finish --grace 0 "$M" 2>&1)
h_is "$?" 0 "finish with both"
h_diag "$OUT"
h_ok "... removes the one the crash kept" bash -c "printf '%s' \"\$1\" | grep -q '1 unlinked file(s) a crash had kept'" _ "$OUT"
h_ok "... and names the one still open, leaving it" bash -c \
	"printf '%s' \"\$1\" | grep -q '^left: .*\.ferryfs\.hidden\..*still hold open'" _ "$OUT"
h_is "$(hidden)" 1 "one hidden name is left on the export"
h_ok "the open file still reads" bash -c "grep -q 'open at finish' <&9"
exec 9<&-
h_ok "once closed, its hidden name goes too" h_wait_for 10 bash -c "[ \$(find '$E' -name '.ferryfs.hidden.*' | wc -l) = 0 ]"
h_umount
h_done
