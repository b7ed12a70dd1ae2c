#!/bin/bash
# The fleet's shared sweep (revalidate_sweep, src/migrate/sweep.c): one host lists the
# bucket each round and every host checks what changed against its own ledger, through
# files on the new store. Shown: two hosts never list the same round; each re-migrates the
# file it migrated when an old host overwrites it, without opening it; an idle round hands
# nothing over; a host that fell behind lists the bucket itself once; a stale lease is
# taken over and the round resumes from its cursor (a chunk already published is not
# written twice); finish removes the sweep's files.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL
E=$H_EXPORT
LOG=$H_TMP/ferryfs.log

mkdir -p "$H_TMP/src/sw"
for i in $(seq -w 1 40); do printf 'v1 of k0%s\n' "$i" >"$H_TMP/src/sw/k0$i"; done
h_ok "seed 40 objects" h_seed_s3_tree "$H_TMP/src/sw" sw
export FERRYFS_SWEEP_SKEW=1 FERRYFS_SWEEP_PAGE_KEYS=10
sleep 2   # the seeded objects are older than the first round's lower bound (epoch - 1 s)

OPTS=workers=2,revalidate=600,revalidate_sweep=2,mirror=off
h_mount "$OPTS"
MA=$H_MNT PIDA=$H_FERRY_PID
H_MNT=$H_TMP/mntb H_STATE=$H_TMP/stateb
h_mount "$OPTS"
MB=$H_MNT PIDB=$H_FERRY_PID
h_ok "host A migrates k001" "$CTL" migrate --wait "$MA/sw/k001"
h_ok "host B migrates k002" "$CTL" migrate --wait "$MB/sw/k002"
sleep 5   # two rounds or more
printf 'v2 of k001, from an old host\n' | h_seed_s3 sw/k001
printf 'v2 of k002, from an old host\n' | h_seed_s3 sw/k002
h_ok "host A re-migrates k001, which it never opened again" h_wait_for 30 bash -c \
	"[ \"\$(cat '$E/sw/k001')\" = 'v2 of k001, from an old host' ]"
h_ok "host B re-migrates k002" h_wait_for 30 bash -c \
	"[ \"\$(cat '$E/sw/k002')\" = 'v2 of k002, from an old host' ]"
sleep 3
claims=$(grep -o "sweep: round [0-9]* is this host's ([^)]*-$PIDA-" "$LOG" | awk '{print $3}')
claimsb=$(grep -o "sweep: round [0-9]* is this host's ([^)]*-$PIDB-" "$LOG" | awk '{print $3}')
h_diag "A listed rounds: $(echo $claims); B: $(echo $claimsb)"
h_ok "rounds went by (at least 4 claimed)" test "$(printf '%s\n%s\n' "$claims" "$claimsb" | grep -c .)" -ge 4
h_is "$(printf '%s\n%s\n' "$claims" "$claimsb" | grep . | sort | uniq -d | wc -l)" 0 \
	"no round was listed by both hosts"
h_ok "an idle round listed the 40 keys and handed nothing over" \
	grep -q "listed 40 keys, 0 changed" "$LOG"
h_ok "the round after the overwrites handed over only what changed" \
	grep -qE "listed 40 keys, [12] changed" "$LOG"
h_is "$(cat "$MA/sw/k002")" "v2 of k002, from an old host" "both mounts read the new bytes"
h_ok "umount B" h_umount
H_MNT=$MA H_FERRY_PID=$PIDA
h_ok "umount A" h_umount

# --- a host that fell behind the rounds kept on the new store lists the bucket once ---
sleep 8
H_MNT=$H_TMP/mntb H_STATE=$H_TMP/stateb
h_mount "$OPTS"
h_ok "host B, back after 4 rounds, lists the bucket itself once" h_wait_for 20 \
	grep -q "listing the bucket itself once" "$LOG"
h_ok "umount B" h_umount

# --- a stale lease is taken over, from its cursor ---
while [ $(( $(date +%s) % 60 )) -gt 40 ]; do sleep 1; done
r=$(( $(date +%s) / 60 )) old=$(( $(date +%s) - 700 ))
printf 'deadhost-1-1\n%s\n1\n%s\nsw/k010\n' "$old" "$old" >"$E/.ferryfs.sweep/$r.lease"
printf 'C sw/k010\n' >"$E/.ferryfs.sweep/$r.c0"
printf 'C sw/k020\n' >"$E/.ferryfs.sweep/$r.c1"   # published, the lease not refreshed
FERRYFS_SWEEP_CHUNK_PAGES=1 h_mount "workers=2,revalidate=600,revalidate_sweep=60,mirror=off"
h_ok "the round is taken over from the silent host" h_wait_for 30 \
	grep -q "sweep: round $r: took over from deadhost-1-1" "$LOG"
h_ok "... and finished" h_wait_for 30 test -e "$E/.ferryfs.sweep/$r.done"
h_is "$(head -n1 "$E/.ferryfs.sweep/$r.c1")" "C sw/k020" "the chunk the silent host published stays"
h_is "$(head -n1 "$E/.ferryfs.sweep/$r.c2")" "C sw/k030" "the next chunk resumes after its cursor"
n=$(cut -d' ' -f2 "$E/.ferryfs.sweep/$r.done")
h_is "$n:$(head -n1 "$E/.ferryfs.sweep/$r.c$((n - 1))")" "$n:E" \
	"... up to the end of the bucket, in the chunks the round records"

# --- finish removes the sweep's files ---
h_ok "a crawl of everything" "$CTL" migrate --all --wait "$H_MNT"
h_ok "ferryctl finish" "$CTL" finish --grace 0 "$H_MNT"
h_ok "... removed the sweep's files from the new store" test ! -e "$E/.ferryfs.sweep"
h_ok "umount" h_umount
h_done
