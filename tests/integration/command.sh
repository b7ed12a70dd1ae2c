#!/bin/bash
# The ferryfs command (spec 9): bad configuration exits 2 with one line naming the key,
# secrets are never echoed and never accepted from a world-readable file or -o, the
# CONFIG-first form with # comments, unreachable stores exit 1 leaving nothing mounted,
# the ledger refuses a state_dir on FUSE, and SIGTERM / umount end the daemon cleanly.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

printf 'hello from s3\n' | h_seed_s3 hello.txt
head -c 5000000 /dev/urandom >"$H_TMP/big.bin"
h_seed_s3 big.bin "$H_TMP/big.bin"

MP=$H_TMP/mp
mkdir -p "$MP"
BASE="s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=$H_NFS_URL,log=stderr"
n_state=0
# fresh state directory for each run
state() { n_state=$((n_state + 1)); mkdir -p "$H_TMP/st$n_state"; echo "$H_TMP/st$n_state"; }
mounted() { grep -q " $1 fuse" /proc/mounts; }

# run_ferryfs OUT ARGS...: run ferryfs in the foreground (it must fail, so it returns);
# its exit status in $RC, its output in file OUT. A mount that happened is undone.
run_ferryfs() {
	local out=$1
	shift
	timeout 60 "$FERRYFS" "$@" >"$out" 2>&1
	RC=$?
	if mounted "$MP"; then
		fusermount3 -u "$MP"
		RC="$RC (and it mounted)"
	fi
}

# --- bad configuration: exit 2, one line naming the key ---
run_ferryfs "$H_TMP/o1" "$MP" -f -o "$BASE,state_dir=$(state),workers=lots"
h_is "$RC" 2 "a bad option value exits 2"
h_is "$(wc -l <"$H_TMP/o1")" 1 "... with one line" || h_diag "$(cat "$H_TMP/o1")"
h_ok "... naming the key" grep -q workers "$H_TMP/o1"

run_ferryfs "$H_TMP/o2" "$MP" -f -o "$BASE,state_dir=$(state),no_such_key=1"
h_is "$RC" 2 "an unknown key exits 2"
h_is "$(wc -l <"$H_TMP/o2")" 1 "... with one line" || h_diag "$(cat "$H_TMP/o2")"
h_ok "... naming the key" grep -q no_such_key "$H_TMP/o2"

run_ferryfs "$H_TMP/o3" "$MP" -f -o "s3_endpoint=$H_S3_URL,nfs=$H_NFS_URL,state_dir=$(state),log=stderr"
h_is "$RC" 2 "a missing s3_bucket exits 2"
h_ok "... naming s3_bucket" grep -q s3_bucket "$H_TMP/o3"

SECRET=TopSecretValue9876543210
run_ferryfs "$H_TMP/o4" "$MP" -f -o "$BASE,state_dir=$(state),s3_access_key_id=AKIDX,s3_secret_access_key=$SECRET"
h_is "$RC" 2 "s3_secret_access_key given with -o exits 2 (it would show in ps)"
h_ok "... naming the key" grep -q s3_secret_access_key "$H_TMP/o4"
h_ok "... without echoing the secret" bash -c "! grep -q '$SECRET' '$H_TMP/o4'"

run_ferryfs "$H_TMP/o5" "$MP" -f -o "$BASE,state_dir=$(state),rename_dir_limit=-5"
h_is "$RC" 2 "a negative rename_dir_limit exits 2"

run_ferryfs "$H_TMP/o6" "$MP" -f -o "$BASE,state_dir=$(state),s3_endpoint=notaurl"
h_is "$RC" 2 "an s3_endpoint that is not a URL exits 2"

# --- config files ---
CONF=$H_TMP/ferry.conf
ST=$(state)
cat >"$CONF" <<EOF
# ferryfs test configuration
s3_endpoint = $H_S3_URL
s3_bucket = $H_BUCKET

# path-style for s3rver
s3_path_style = 1
s3_region = us-east-1
nfs = $H_NFS_URL
state_dir = $ST
   # an indented comment
log = stderr
EOF
chmod 644 "$CONF"
"$FERRYFS" "$CONF" "$MP" -f >"$H_TMP/conf.log" 2>&1 &
PID=$!
H_PIDS+=("$PID")
H_MOUNTS+=("$MP")
if h_wait_for 30 mounted "$MP"; then
	h_is "$(cat "$MP/hello.txt")" "hello from s3" "the CONFIG-first form with # comments mounts and serves"
	printf 'data\n' >"$MP/written.txt"
	h_is "$(cat "$H_EXPORT/written.txt")" data "... and writes to NFS"
	fusermount3 -u "$MP"
	h_wait_gone "$PID" 30
	wait "$PID"
	h_is "$?" 0 "fusermount3 -u ends the daemon with status 0"
else
	h_ok "the CONFIG-first form with # comments mounts" false
	h_diag "$(cat "$H_TMP/conf.log")"
	kill "$PID" 2>/dev/null
fi

run_ferryfs "$H_TMP/o7" "$CONF" "$MP" -f -o "state_dir=$(state),workers=zero"
h_is "$RC" 2 "-o wins over the config file (a bad -o value is caught)"

SCONF=$H_TMP/secret.conf
{ cat "$CONF"; echo "s3_access_key_id = S3RVER"; echo "s3_secret_access_key = $SECRET"; } >"$SCONF"
sed -i "s|^state_dir = .*|state_dir = $(state)|" "$SCONF"
chmod 644 "$SCONF"
run_ferryfs "$H_TMP/o8" "$SCONF" "$MP" -f
h_is "$RC" 2 "a world-readable config file holding s3_secret_access_key is refused (exit 2)"
h_ok "... without echoing the secret" bash -c "! grep -q '$SECRET' '$H_TMP/o8'"
chmod 600 "$SCONF"
"$FERRYFS" "$SCONF" "$MP" -f >"$H_TMP/sconf.log" 2>&1 &
PID=$!
H_PIDS+=("$PID")
if h_wait_for 30 mounted "$MP"; then
	h_is "$(cat "$MP/hello.txt")" "hello from s3" "the same file with mode 0600 is accepted"
	fusermount3 -u "$MP"
	h_wait_gone "$PID" 30
else
	h_ok "the same file with mode 0600 is accepted" false
	h_diag "$(cat "$H_TMP/sconf.log")"
fi
h_ok "the secret never reached the log" bash -c "! grep -q '$SECRET' '$H_TMP/sconf.log'"

# --- unreachable stores: exit 1 with the cause, nothing mounted ---
closed=$(h_free_port)
run_ferryfs "$H_TMP/o9" "$MP" -f -o "s3_endpoint=http://127.0.0.1:$closed,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=$H_NFS_URL,state_dir=$(state),log=stderr,s3_retries=1,s3_timeout=5"
h_is "$RC" 1 "an unreachable S3 (closed port) exits 1"
h_ok "... saying why" grep -qi 's3' "$H_TMP/o9"
h_ok "... leaving nothing mounted" bash -c "! grep -q ' $MP fuse' /proc/mounts"
h_diag "$(head -n 3 "$H_TMP/o9")"

closed=$(h_free_port)
run_ferryfs "$H_TMP/o10" "$MP" -f -o "s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=nfs://127.0.0.1$H_EXPORT?nfsport=$closed&mountport=$closed,state_dir=$(state),log=stderr"
h_is "$RC" 1 "an unreachable NFS server exits 1"
h_ok "... saying why" grep -qi 'nfs' "$H_TMP/o10"
h_ok "... leaving nothing mounted" bash -c "! grep -q ' $MP fuse' /proc/mounts"
h_diag "$(head -n 3 "$H_TMP/o10")"

run_ferryfs "$H_TMP/o11" "$MP" -f -o "s3_endpoint=$H_S3_URL,s3_bucket=no-such-bucket,s3_path_style=1,nfs=$H_NFS_URL,state_dir=$(state),log=stderr"
h_is "$RC" 1 "a bucket that does not exist exits 1"

# --- the ledger stays off FUSE: state_dir inside a running ferryfs mount is refused ---
h_mount
mkdir -p "$H_MNT/statehere"
run_ferryfs "$H_TMP/o12" "$MP" -f -o "$BASE,state_dir=$H_MNT/statehere"
h_is "$RC" 2 "a state_dir inside a FUSE mount is refused (exit 2)"
h_ok "... naming state_dir" grep -q state_dir "$H_TMP/o12"

# --- umount while a file is open ---
exec 7<"$H_MNT/big.bin"
head -c 1000 <&7 >/dev/null
h_ok "fusermount3 -u of a mount with an open file is refused (busy), the mount stays" \
	bash -c "! fusermount3 -u '$H_MNT' 2>/dev/null && grep -q ' $H_MNT fuse' /proc/mounts"
fusermount3 -uz "$H_MNT"
h_ok "after a lazy unmount the open file still reads" bash -c "head -c 100000 <&7 | wc -c | grep -qx 100000"
exec 7<&-
h_wait_gone "$H_FERRY_PID" 30
h_ok "the daemon exits once the last file is closed" bash -c "! kill -0 $H_FERRY_PID 2>/dev/null"
wait "$H_FERRY_PID"
st=$?
h_is "$st" 0 "... with status 0" || h_diag "$(tail -n 40 "$H_TMP/ferryfs.log")"

# --- a lazy unmount while a file that lost its name is open: at the daemon's end, libfuse
# unlinks its hidden name through the filesystem, whose stores must still be there ---
H_STATE=$(state)
h_mount
printf 'written through the mount\n' >"$H_MNT/gone.txt"
exec 7<"$H_MNT/gone.txt"
rm "$H_MNT/gone.txt"
h_ok "a file unlinked while open is hidden on the export" \
	bash -c "find '$H_EXPORT' -name '.ferryfs.hidden.*' | grep -q ."
fusermount3 -uz "$H_MNT"
h_ok "after a lazy unmount it still reads" bash -c "grep -q 'written through' <&7"
exec 7<&-
h_wait_gone "$H_FERRY_PID" 30
h_ok "the daemon exits once it is closed" bash -c "! kill -0 $H_FERRY_PID 2>/dev/null"
wait "$H_FERRY_PID"
st=$?
h_is "$st" 0 "... with status 0" || h_diag "$(tail -n 40 "$H_TMP/ferryfs.log")"
h_ok "... leaving no hidden name on the export" \
	bash -c "! find '$H_EXPORT' \( -name '.ferryfs.hidden.*' -o -name '.fuse_hidden*' \) | grep ."

# --- SIGTERM to the daemon: it unmounts and exits 0 ---
H_STATE=$(state)
h_mount
cat "$H_MNT/hello.txt" >/dev/null
kill -TERM "$H_FERRY_PID"
h_wait_gone "$H_FERRY_PID" 30
h_ok "SIGTERM ends the daemon" bash -c "! kill -0 $H_FERRY_PID 2>/dev/null"
wait "$H_FERRY_PID"
h_is "$?" 0 "... with status 0"
h_ok "... and nothing is left mounted" bash -c "! grep -q ' $H_MNT fuse' /proc/mounts"

# --- background (daemon) mode: ferryfs returns once mounted ---
ST=$(state)
timeout 60 "$FERRYFS" "$MP" -o "$BASE,state_dir=$ST" >"$H_TMP/bg.log" 2>&1
h_is "$?" 0 "without -f ferryfs returns 0 once mounted"
h_ok "... and the mount serves" bash -c "test \"\$(cat '$MP/hello.txt')\" = 'hello from s3'"
H_MOUNTS+=("$MP")
DPID=$(pgrep -f "ferryfs $MP -o" | head -n 1)
[ -n "$DPID" ] && H_PIDS+=("$DPID")
h_ok "umount ends the daemon" bash -c "test -n '$DPID' && fusermount3 -u '$MP' &&
	for i in \$(seq 300); do kill -0 '$DPID' 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
h_done
