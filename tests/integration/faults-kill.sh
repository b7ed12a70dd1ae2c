#!/bin/bash
# faults-kill.sh - the daemon killed with SIGKILL at random points of a migration,
# over a real s3rver and nfs-ganesha, S3 bodies slowed by tests/tools/faultproxy.py so that
# copies are in flight when the kill lands. Several kills at random delays (seeded: the
# seed is printed, FAULTS_KILL_SEED=N replays it), a remount after each; after every kill
# no file on the export under its own name differs from the source (a copy is published
# whole or not at all); at the end every file reads byte-identical through the mount,
# ferryctl status works and its counts match, and after a clean unmount no temporary file
# is left on the export. (The write-back side of kill -9 is mirror.sh's.)
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL

SEED=${FAULTS_KILL_SEED:-$(($(date +%s) % 100000))}
RANDOM=$SEED
h_diag "seed $SEED (FAULTS_KILL_SEED=$SEED replays the kill delays)"
KILLS=5
N=60

stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$M" | awk -v k="$1" '$1 == k { print $2 }'; }
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }
tmpfiles() { find "$H_EXPORT" -name '.ferryfs.tmp.*' 2>/dev/null | wc -l; }

mkdir -p "$H_TMP/src"
for i in $(seq 1 $N); do
	d=$H_TMP/src/d$((i % 4))
	mkdir -p "$d"
	head -c $(((i * 7919 * 13) % 1500000 + 100)) /dev/urandom >"$d/f$i.bin"
done
total=$(find "$H_TMP/src" -type f -printf '%s\n' | awk '{ t += $1 } END { print t }')
h_aws s3 cp --only-show-errors --recursive "$H_TMP/src" "s3://$H_BUCKET/" || h_bail "seeding S3"

# bodies at 1.5 MB/s per request: the whole migration takes about 10 s
h_slow_s3 1500000
H_S3_URL=$H_SLOW_S3_URL

# exported_ok: every regular file on the export under its own name is byte-identical to
# its source; prints the offenders
exported_ok() {
	local f rel bad=0
	while IFS= read -r f; do
		rel=${f#"$H_EXPORT"/}
		case $rel in .ferryfs* | */.ferryfs*) continue ;; esac   # ferryfs's own names
		cmp -s "$f" "$H_TMP/src/$rel" || { echo "differs: $rel ($(stat -c %s "$f") bytes)"; bad=1; }
	done < <(find "$H_EXPORT" -type f)
	return $bad
}

kills_mid_copy=0
for k in $(seq 1 $KILLS); do
	h_mount workers=3
	M=$H_MNT
	"$CTL" migrate --all "$M" >/dev/null 2>&1
	delay=$(printf '%d.%d' $((RANDOM % 4)) $((RANDOM % 10)))
	sleep "$delay"
	copying=$(stat_of copying)
	before=$(find "$H_EXPORT" -type f ! -name '.ferryfs*' | wc -l)
	kill -9 "$H_FERRY_PID"
	wait "$H_FERRY_PID" 2>/dev/null
	h_wait_gone "$H_FERRY_PID" 10
	fusermount3 -uz "$M" 2>/dev/null
	[ "${copying:-0}" -gt 0 ] && kills_mid_copy=$((kills_mid_copy + 1))
	h_diag "kill $k after $delay s: $before files published, ${copying:-?} copies in flight, $(tmpfiles) temporary files left"
	h_ok "kill $k: no partial or wrong file under its own name on the export" exported_ok
done
h_ok "at least one kill landed while copies were in flight ($kills_mid_copy of $KILLS)" test "$kills_mid_copy" -gt 0

# the final mount: finish the migration, then check everything
h_mount workers=3
M=$H_MNT
h_ok "ferryctl migrate --all --wait finishes after $KILLS kills" timeout 150 "$CTL" migrate --all --wait "$M"
bad=
n=0
while IFS= read -r f; do
	rel=${f#"$H_TMP/src/"}
	if cmp -s "$f" "$M/$rel" && [ "$(state "$M/$rel")" = migrated ] && cmp -s "$f" "$H_EXPORT/$rel"; then
		n=$((n + 1))
	else
		bad+=" $rel"
	fi
done < <(find "$H_TMP/src" -type f)
h_is "$n" "$N" "every file reads byte-identical through the mount, is migrated, and its copy is identical" ||
	h_diag "bad:$bad"
h_is "$(find "$M" -type f | wc -l)" "$N" "the mount shows exactly the $N files (nothing partial or temporary)"
h_ok "ferryctl status works" bash -c "'$CTL' status --no-rate '$M' >'$H_TMP/status.txt' 2>&1"
h_ok "ferryctl status: $N of $N known files migrated" grep -q "^migrated  *$N of $N known files" "$H_TMP/status.txt" ||
	h_diag "$(cat "$H_TMP/status.txt")"
h_ok "ferryctl status: nothing queued or copying, nothing failed" bash -c \
	"grep -q '^queue  *copy-up 0, touched 0, crawl 0; copying 0' '$H_TMP/status.txt' && grep -q '^failed  *0 file' '$H_TMP/status.txt'"
h_is "$(stat_of migrated_bytes)" "$total" "the migrated byte count is the sources' total"
h_ok "ferryctl verify --all finds no mismatch" "$CTL" verify --all "$M"
h_ok "clean unmount" h_umount
h_is "$(tmpfiles)" 0 "no temporary file is left on the export after the final unmount"
h_ok "... and the export holds only the files" exported_ok
h_done
