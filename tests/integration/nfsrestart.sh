#!/bin/bash
# nfsrestart.sh - the NFS pool across a server restart: ganesha is stopped and started
# again while a client (tests/integ/nfsstore.c, suite "restart") keeps calling. During
# the outage calls must fail in bounded time; afterwards they must succeed again (the
# pool reconnects), the open file handle included. Done for v3, then v4; then the server
# is frozen (SIGSTOP): calls must time out with ETIMEDOUT and work again after SIGCONT.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init
h_start_nfs
prog=$H_BUILD/tests/integ/nfsrestart   # nfsstore.c with the restart suite
[ -x "$prog" ] || h_bail "$prog is not built"
export FERRY_NFS_URL=$H_NFS_URL FERRY_NFS4_URL=$H_NFS4_URL
export FERRY_RESTART_DIR=$H_TMP/sync
mkdir -p "$FERRY_RESTART_DIR"
"$prog" --filter 'restart/v3_then_v4' -j1 >"$H_TMP/restart.log" 2>&1 &
client=$!
H_PIDS+=("$client")

for round in "" 2; do
	v=$([ -z "$round" ] && echo v3 || echo v4)
	h_ok "$v client is running before the outage" h_wait_for 60 test -e "$FERRY_RESTART_DIR/ready$round"
	h_stop_nfs
	touch "$FERRY_RESTART_DIR/down$round"
	h_ok "$v client saw the outage in bounded time" h_wait_for 60 test -e "$FERRY_RESTART_DIR/outage-seen$round"
	sleep 1
	_h_launch_nfs
	touch "$FERRY_RESTART_DIR/up$round"
done
wait "$client"
rc=$?
h_is "$rc" 0 "client recovered after each restart (v3 and v4)"
[ "$rc" = 0 ] || tail -n 40 "$H_TMP/restart.log" >&2

# a hung server: stopped with SIGSTOP (connections stay open, nothing answers)
"$prog" --filter 'restart/hung_server' -j1 >"$H_TMP/hang.log" 2>&1 &
client=$!
H_PIDS+=("$client")
h_ok "client is running before the hang" h_wait_for 60 test -e "$FERRY_RESTART_DIR/ready3"
kill -STOP "$H_GANESHA_PID"
touch "$FERRY_RESTART_DIR/down3"
h_ok "client timed out against the hung server" h_wait_for 90 test -e "$FERRY_RESTART_DIR/outage-seen3"
kill -CONT "$H_GANESHA_PID"
touch "$FERRY_RESTART_DIR/up3"
wait "$client"
rc=$?
h_is "$rc" 0 "client recovered after the hang"
[ "$rc" = 0 ] || tail -n 40 "$H_TMP/hang.log" >&2
h_done
