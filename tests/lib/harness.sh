# harness.sh - the integration-test harness: real servers on loopback, TAP output.
#
# Source it from a bash test script, then:
#   h_init [fuse]     private temp dir, cleanup trap, root (and /dev/fuse) check: a test that
#                     cannot run here is skipped with the reason, except under CI=true where
#                     a skip is a failure
#   h_start_s3        s3rver on a free port, bucket $H_BUCKET created
#                     -> H_S3_URL H_S3_PORT H_BUCKET H_S3_DIR; AWS_* credentials exported;
#                     with FERRY_S3=rgw, Ceph's RADOS Gateway instead (tests/lib/rgw.sh;
#                     no H_S3_DIR); H_S3_KIND says which (s3rver or rgw)
#   h_start_nfs       rpcbind (if not running) + nfs-ganesha exporting $H_EXPORT (VFS), on
#                     $H_NFS_BIND (default 127.0.0.1; contrib/rehearse.sh binds a bridge)
#                     -> H_EXPORT H_NFS_PORT H_MNT_PORT H_NFS_URL (v3) H_NFS4_URL (v4)
#   h_stop_nfs / h_restart_nfs / h_stop_s3 / h_start_s3_again
#   h_aws ARGS...     awscli (a client nobody here wrote) against the s3rver
#   h_seed_s3 KEY [FILE]      put FILE (or stdin) at KEY;  h_seed_nfs PATH [FILE]
#   h_mount [OPTS]    mount ferryfs at $H_MNT over both servers (-o OPTS appended)
#   h_mount_signed [OPTS]  the same, with every S3 request going through
#                     tests/tools/sigv4_proxy.py, which checks its signature with botocore
#                     and logs it to $H_PROXY_LOG (one line per request)
#   h_umount          unmount it and wait for the daemon to exit
#   h_bg CMD...       run CMD in the background, stopped at cleanup (pid in $H_LAST_PID)
#   TAP: h_ok DESC CMD...   h_is GOT WANT DESC   h_diag TEXT   h_skip DESC   h_done
#
# Every server, mount and temp directory started here is stopped and removed at exit,
# on success, failure or interruption. H_KEEP=1 keeps the temp directory for debugging.

set -u

H_SRC=${abs_top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
H_BUILD=${abs_top_builddir:-$H_SRC}
FERRYFS=${FERRYFS:-$H_BUILD/ferryfs}
FERRYCTL=${FERRYCTL:-$H_BUILD/ferryctl}
PY3=/usr/bin/python3

H_TAP_N=0
H_TAP_FAIL=0
H_PIDS=()
H_MOUNTS=()
H_FERRY_PIDS=()
H_GANESHA_PID=
H_S3_PID=
H_STARTED_RPCBIND=0
H_TMP=
H_S3_KIND=

source "$(dirname "${BASH_SOURCE[0]}")/rgw.sh"

# --- skipping -----------------------------------------------------------------------

# h_cannot REASON: this test cannot run here. A skip, or a failure under CI=true.
h_cannot() {
	if [ "${CI:-}" = true ]; then
		echo "1..1"
		echo "not ok 1 - cannot run under CI: $*"
		exit 1
	fi
	echo "1..0 # SKIP $*"
	exit 0
}

h_need_cmd() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || h_cannot "missing command $c (run contrib/install-deps.sh)"
	done
}

# --- setup and cleanup --------------------------------------------------------------

h_init() {
	[ "$(id -u)" = 0 ] || h_cannot "integration tests need root (nfs-ganesha's VFS backend and FUSE)"
	if [ "${1:-}" = fuse ]; then
		[ -c /dev/fuse ] || h_cannot "no /dev/fuse on this machine"
		[ -x "$FERRYFS" ] || h_cannot "ferryfs is not built ($FERRYFS)"
		h_need_cmd fusermount3
	fi
	H_TMP=$(mktemp -d /tmp/ferryfs-test.XXXXXX)
	chmod 755 "$H_TMP"
	h_san_init
	trap h_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

h_cleanup() {
	local rc=$?
	set +e
	for m in "${H_MOUNTS[@]}"; do
		if grep -q " $m fuse" /proc/mounts 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		fi
	done
	for p in "${H_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${H_PIDS[@]}"; do
		h_wait_gone "$p" 10 || kill -9 "$p" 2>/dev/null
	done
	h_stop_nfs
	h_stop_s3
	if [ "$H_STARTED_RPCBIND" = 1 ] && ! pgrep -x ganesha.nfsd >/dev/null; then
		pkill -x rpcbind
		# the next test must not find a dying rpcbind and skip starting one
		for ((i = 0; i < 50; i++)); do
			pgrep -x rpcbind >/dev/null || break
			sleep 0.1
		done
	fi
	if [ "$H_TAP_FAIL" != 0 ] && [ -n "$H_TMP" ]; then
		for f in "$H_TMP"/*.log; do
			[ -f "$f" ] || continue
			echo "--- last lines of $(basename "$f") ---" >&2
			tail -n 40 "$f" >&2
		done
	fi
	if [ -n "$H_TMP" ] && [ "${H_KEEP:-0}" != 1 ]; then
		rm -rf "$H_TMP"
	fi
	exit $rc
}

# h_wait_gone PID SECONDS: wait for a process to exit; 1 if it is still there.
h_wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# h_wait_for SECONDS CMD...: poll CMD until it succeeds; 1 on time-out.
h_wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

h_free_port() {
	"$PY3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

h_bg() {
	"$@" &
	H_LAST_PID=$!
	H_PIDS+=("$H_LAST_PID")
}

# --- S3: s3rver ---------------------------------------------------------------------

h_s3rver_bin() {
	local bin=$H_SRC/tests/s3rver/node_modules/.bin/s3rver
	if [ -x "$bin" ]; then
		echo "$bin"
		return 0
	fi
	# A read-only source tree (make distcheck) or a fresh checkout: install the pinned
	# version from the lock file into the build tree, once.
	local dir=$H_BUILD/tests/s3rver-npm
	bin=$dir/node_modules/.bin/s3rver
	if [ ! -x "$bin" ]; then
		h_need_cmd npm
		mkdir -p "$dir"
		(
			flock 9
			if [ ! -x "$bin" ]; then
				cp "$H_SRC/tests/s3rver/package.json" "$H_SRC/tests/s3rver/package-lock.json" "$dir/"
				chmod u+w "$dir"/package*.json
				npm ci --prefix "$dir" --no-audit --no-fund >"$dir/npm.log" 2>&1
			fi
		) 9>"$dir/.lock"
	fi
	[ -x "$bin" ] || return 1
	echo "$bin"
}

h_start_s3() {
	if [ "${FERRY_S3:-s3rver}" = rgw ]; then
		h_start_rgw
		return
	fi
	h_need_cmd node curl
	local bin
	bin=$(h_s3rver_bin) || h_cannot "s3rver is not installed (npm ci in tests/s3rver failed)"
	H_BUCKET=${H_BUCKET:-ferry-test}
	H_S3_DIR=$H_TMP/s3data
	mkdir -p "$H_S3_DIR"
	H_S3_PORT=$(h_free_port)
	H_S3_URL=http://127.0.0.1:$H_S3_PORT
	H_S3RVER_BIN=$bin
	_h_launch_s3
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
	unset AWS_SESSION_TOKEN AWS_PROFILE
	export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
	H_S3_KIND=s3rver
}

# h_need_s3rver WHY: this test (or point) relies on s3rver itself (its data directory,
# stopping and restarting it): it cannot run against RGW.
h_need_s3rver() {
	[ "$H_S3_KIND" = rgw ] && h_cannot "needs s3rver, not RGW: $*"
	return 0
}

_h_launch_s3() {
	NODE_OPTIONS=--openssl-legacy-provider "$H_S3RVER_BIN" -d "$H_S3_DIR" -a 127.0.0.1 \
		-p "$H_S3_PORT" --configure-bucket "$H_BUCKET" --silent >>"$H_TMP/s3rver.log" 2>&1 &
	H_S3_PID=$!
	h_wait_for 30 curl -sf -o /dev/null "$H_S3_URL/$H_BUCKET?list-type=2&max-keys=1" ||
		h_bail "s3rver did not start (see s3rver.log)"
}

h_stop_s3() {
	h_stop_rgw
	[ -n "$H_S3_PID" ] || return 0
	kill "$H_S3_PID" 2>/dev/null
	h_wait_gone "$H_S3_PID" 10 || kill -9 "$H_S3_PID" 2>/dev/null
	H_S3_PID=
}

# Start the same s3rver (same port, same data) after h_stop_s3.
h_start_s3_again() { _h_launch_s3; }

h_aws() {
	/usr/bin/aws --endpoint-url "$H_S3_URL" --no-cli-pager "$@"
}

# h_seed_s3 KEY [FILE]: store FILE (default: stdin) as object KEY.
h_seed_s3() {
	local key=$1 file=${2:--}
	h_aws s3 cp --only-show-errors "$file" "s3://$H_BUCKET/$key" >/dev/null
}

# h_s3_curl CURL-ARGS...: one curl request signed with the test's credentials (from a
# config file, never on the command line); fails on an HTTP error.
h_s3_curl() {
	local cfg=$H_TMP/curl.$$.$RANDOM mask rc
	mask=$(umask)
	umask 077
	printf 'aws-sigv4 = "aws:amz:us-east-1:s3"\nuser = "%s:%s"\n' \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$cfg"
	printf 'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\nfail\nsilent\nshow-error\n' >>"$cfg"
	umask "$mask"
	curl -K "$cfg" "$@"
	rc=$?
	rm -f "$cfg"
	return $rc
}

# h_seed_s3_tree DIR PREFIX: store every file under DIR as object PREFIX/<its path under
# DIR>, many at once: one curl process, 16 uploads in parallel on kept-alive connections
# (a process per object costs the suite minutes). The credentials go in the config file,
# never on a command line. Paths must be plain (no characters that need URL-encoding).
h_seed_s3_tree() {
	local dir=$1 prefix=${2%/} cfg=$H_TMP/seed.$$.curl mask
	mask=$(umask)
	umask 077
	{
		printf 'aws-sigv4 = "aws:amz:us-east-1:s3"\nuser = "%s:%s"\n' \
			"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
		printf 'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\nfail\nsilent\nshow-error\n'
		(cd "$dir" && find . -type f | sed 's#^\./##') | while IFS= read -r f; do
			printf 'upload-file = "%s/%s"\nurl = "%s/%s/%s/%s"\noutput = /dev/null\n' \
				"$dir" "$f" "$H_S3_URL" "$H_BUCKET" "$prefix" "$f"
		done
	} >"$cfg"
	umask "$mask"
	curl --parallel --parallel-max 16 --no-progress-meter -K "$cfg"
	local rc=$?
	rm -f "$cfg"
	return $rc
}

# --- NFS: rpcbind + nfs-ganesha -----------------------------------------------------

h_start_nfs() {
	h_need_cmd ganesha.nfsd rpcbind rpcinfo nfs-ls
	_h_rpcbind
	H_EXPORT=$H_TMP/export
	mkdir -p "$H_EXPORT"
	chmod 755 "$H_EXPORT"
	H_NFS_PORT=$(h_free_port)
	H_MNT_PORT=$(h_free_port)
	local nlm rq bind=${H_NFS_BIND:-127.0.0.1}
	nlm=$(h_free_port)
	rq=$(h_free_port)
	cat >"$H_TMP/ganesha.conf" <<EOF
NFS_CORE_PARAM { Protocols = 3, 4; NFS_Port = $H_NFS_PORT; MNT_Port = $H_MNT_PORT;
  NLM_Port = $nlm; Rquota_Port = $rq; Enable_NLM = false; Enable_RQUOTA = false;
  Bind_addr = $bind; }
NFSV4 { Graceless = true; Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }
EXPORT { Export_Id = 1; Path = $H_EXPORT; Pseudo = /export; Access_Type = RW;
  Squash = No_Root_Squash; Protocols = 3, 4; Transports = TCP; SecType = sys;
  FSAL { Name = VFS; } }
LOG { Default_Log_Level = WARN; ${H_GANESHA_LOG_EXTRA:-} }
EOF
	H_NFS_URL="nfs://$bind$H_EXPORT?nfsport=$H_NFS_PORT&mountport=$H_MNT_PORT"
	H_NFS4_URL="nfs://$bind/export?version=4&nfsport=$H_NFS_PORT"
	_h_launch_nfs
}

# _h_rpcbind: make sure rpcbind answers (nfs-ganesha exits when it cannot register). One
# that is still exiting (another test's cleanup just stopped it) is waited for, then a
# fresh one is started.
_h_rpcbind() {
	local i
	for ((i = 0; i < 50; i++)); do
		rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && return 0
		pgrep -x rpcbind >/dev/null || break
		sleep 0.1
	done
	pgrep -x rpcbind >/dev/null && h_bail "rpcbind runs but does not answer"
	rpcbind -w || h_bail "rpcbind did not start"
	H_STARTED_RPCBIND=1
	h_wait_for 10 rpcinfo -p 127.0.0.1 || h_bail "rpcbind started but does not answer"
}

_h_launch_nfs() {
	local try
	for try in 1 2 3; do
		_h_rpcbind
		rm -f "$H_TMP/ganesha.pid"
		ganesha.nfsd -f "$H_TMP/ganesha.conf" -L "$H_TMP/ganesha.log" -p "$H_TMP/ganesha.pid" -N NIV_WARN ||
			h_bail "ganesha.nfsd did not start (see ganesha.log)"
		h_wait_for 10 test -s "$H_TMP/ganesha.pid" || h_bail "ganesha.nfsd wrote no pid file"
		H_GANESHA_PID=$(cat "$H_TMP/ganesha.pid")
		# it exits early when rpcbind went away under it (a race with another test's
		# cleanup): start again rather than wait for a server that is gone
		# (a slow start is no error here: the wait below gives it 30 s more)
		h_wait_for 5 _h_nfs_up_or_gone || true
		kill -0 "$H_GANESHA_PID" 2>/dev/null && break
		echo "# nfs-ganesha exited at start (try $try): $(grep -E 'MAJ|FATAL|CRIT :Cannot register' "$H_TMP/ganesha.log" | tail -n 1)" >&2
		H_GANESHA_PID=
	done
	[ -n "$H_GANESHA_PID" ] || h_bail "nfs-ganesha exits at start (see ganesha.log)"
	h_wait_for 30 nfs-ls "$H_NFS_URL" || h_bail "nfs-ganesha does not answer on port $H_NFS_PORT (see ganesha.log)"
}

_h_nfs_up_or_gone() {
	! kill -0 "$H_GANESHA_PID" 2>/dev/null || nfs-ls "$H_NFS_URL" >/dev/null 2>&1
}

h_stop_nfs() {
	[ -n "$H_GANESHA_PID" ] || return 0
	kill "$H_GANESHA_PID" 2>/dev/null
	h_wait_gone "$H_GANESHA_PID" 15 || kill -9 "$H_GANESHA_PID" 2>/dev/null
	h_wait_gone "$H_GANESHA_PID" 5
	H_GANESHA_PID=
}

h_restart_nfs() {
	h_stop_nfs
	_h_launch_nfs
}

# h_seed_nfs PATH [FILE]: create PATH (relative to the export) with FILE's bytes (or stdin).
h_seed_nfs() {
	local path=$H_EXPORT/$1
	mkdir -p "$(dirname "$path")"
	if [ $# -ge 2 ]; then cp "$2" "$path"; else cat >"$path"; fi
}

# --- ferryfs ------------------------------------------------------------------------

# h_slow_s3 RATE: start tests/tools/faultproxy.py in front of s3rver, sending GET bodies at
# RATE bytes/s, so that a copy is surely in progress for a while; its URL in
# H_SLOW_S3_URL (mount through it with: H_S3_URL=$H_SLOW_S3_URL h_mount ...). Stopped on
# exit like every process in H_PIDS.
h_slow_s3() {
	rm -f "$H_TMP/slow.port"
	"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$H_S3_URL" --mode slow-body \
		--rate "$1" --methods GET --port-file "$H_TMP/slow.port" &
	H_PIDS+=($!)
	h_wait_for 20 test -s "$H_TMP/slow.port" || h_bail "faultproxy did not start"
	H_SLOW_S3_URL=http://127.0.0.1:$(cat "$H_TMP/slow.port")
}

# h_mount [OPTS]: mount ferryfs over the servers at $H_MNT (state in $H_STATE).
h_mount() {
	H_MNT=${H_MNT:-$H_TMP/mnt}
	H_STATE=${H_STATE:-$H_TMP/state}
	mkdir -p "$H_MNT" "$H_STATE"
	local opts="s3_endpoint=$H_S3_URL,s3_bucket=$H_BUCKET,s3_path_style=1,s3_region=us-east-1"
	opts+=",nfs=$H_NFS_URL,state_dir=$H_STATE,log=stderr,log_level=${H_LOG_LEVEL:-info}"
	[ -n "${1:-}" ] && opts+=",$1"
	"$FERRYFS" "$H_MNT" -f -o "$opts" >>"$H_TMP/ferryfs.log" 2>&1 &
	H_FERRY_PID=$!
	H_PIDS+=("$H_FERRY_PID")
	H_FERRY_PIDS+=("$H_FERRY_PID")
	H_MOUNTS+=("$H_MNT")
	local esc=${H_MNT// /\\040}     # as /proc/mounts writes a space
	if ! h_wait_for 30 grep -qF " $esc fuse" /proc/mounts; then
		h_bail "ferryfs did not mount (see ferryfs.log)"
	fi
}

# h_mount_signed [OPTS]: h_mount through the SigV4-checking proxy (see the header).
h_mount_signed() {
	H_PROXY_LOG=$H_TMP/proxy.log
	"$PY3" "$H_SRC/tests/tools/sigv4_proxy.py" --upstream "$H_S3_URL" --secret "$AWS_SECRET_ACCESS_KEY" \
		--log "$H_PROXY_LOG" --port-file "$H_TMP/proxy.port" &
	H_PIDS+=($!)
	h_wait_for 20 test -s "$H_TMP/proxy.port" || h_bail "sigv4 proxy did not start"
	local real=$H_S3_URL
	H_S3_URL=http://127.0.0.1:$(cat "$H_TMP/proxy.port")
	h_mount "$@"
	H_S3_URL=$real
}

h_umount() {
	fusermount3 -u "$H_MNT" || return 1
	h_wait_gone "$H_FERRY_PID" 30
}

# --- TAP ----------------------------------------------------------------------------

h_diag() { printf '# %s\n' "$*" | sed '2,$s/^/# /'; }

# h_ok DESC CMD...: one test point, passing when CMD succeeds.
h_ok() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	H_TAP_N=$((H_TAP_N + 1))
	if [ $rc = 0 ]; then
		echo "ok $H_TAP_N - $desc"
	else
		H_TAP_FAIL=$((H_TAP_FAIL + 1))
		echo "not ok $H_TAP_N - $desc"
		h_diag "command: $*"
		h_diag "exit $rc: $(printf '%s' "$out" | tail -n 20)"
	fi
	return $rc
}

# h_is GOT WANT DESC: one test point, passing when the strings are equal.
h_is() {
	H_TAP_N=$((H_TAP_N + 1))
	if [ "$1" = "$2" ]; then
		echo "ok $H_TAP_N - $3"
	else
		H_TAP_FAIL=$((H_TAP_FAIL + 1))
		echo "not ok $H_TAP_N - $3"
		h_diag "got:  $(printf '%s' "$1" | head -c 2000)"
		h_diag "want: $(printf '%s' "$2" | head -c 2000)"
		return 1
	fi
}

# h_skip DESC REASON: a test point that cannot run here; a failure under CI=true, like
# h_cannot, but for one point of a script that goes on.
h_skip() {
	H_TAP_N=$((H_TAP_N + 1))
	if [ "${CI:-}" = true ]; then
		H_TAP_FAIL=$((H_TAP_FAIL + 1))
		echo "not ok $H_TAP_N - $1: cannot run under CI: ${2:-}"
		return 1
	fi
	echo "ok $H_TAP_N - $1 # SKIP ${2:-}"
}

# h_bail REASON: stop the whole script (servers are still cleaned up).
h_bail() {
	echo "Bail out! $*"
	H_TAP_FAIL=$((H_TAP_FAIL + 1))
	exit 1
}

# --- sanitizers ---------------------------------------------------------------------
# A build configured with --enable-sanitizers (ferryfs holds __asan_init): every sanitized
# process of the test (ferryfs, ferryctl, the test tools) writes its ASan, LeakSanitizer
# and UBSan reports to $H_TMP/san.PID instead of stderr, and h_done unmounts, waits for
# the daemons to exit (LeakSanitizer reports at exit) and fails the test on any report.
H_SAN=0
h_san_init() {
	grep -q -a __asan_init "$FERRYFS" 2>/dev/null || return 0
	H_SAN=1
	export ASAN_OPTIONS="detect_leaks=1:log_path=$H_TMP/san${H_ASAN_OPTIONS:+:$H_ASAN_OPTIONS}"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$H_TMP/san"
	[ -f "$H_SRC/tests/lib/lsan.supp" ] && export LSAN_OPTIONS="suppressions=$H_SRC/tests/lib/lsan.supp:print_suppressions=0"
	return 0
}

h_san_check() {
	[ "$H_SAN" = 1 ] || return 0
	local m p f
	for m in "${H_MOUNTS[@]}"; do
		grep -q " $m fuse" /proc/mounts 2>/dev/null && fusermount3 -u "$m" 2>/dev/null
	done
	for p in "${H_FERRY_PIDS[@]}"; do
		h_wait_gone "$p" 60
	done
	H_TAP_N=$((H_TAP_N + 1))
	local reports=()
	for f in "$H_TMP"/san.*; do
		[ -s "$f" ] && reports+=("$f")
	done
	if [ ${#reports[@]} -gt 0 ]; then
		H_TAP_FAIL=$((H_TAP_FAIL + 1))
		echo "not ok $H_TAP_N - no sanitizer report (ASan, LeakSanitizer, UBSan)"
		for f in "${reports[@]}"; do
			h_diag "--- $(basename "$f") ---"
			h_diag "$(head -n 60 "$f")"
		done
	else
		echo "ok $H_TAP_N - no sanitizer report (ASan, LeakSanitizer, UBSan)"
	fi
}

h_done() {
	h_san_check
	echo "1..$H_TAP_N"
	[ "$H_TAP_FAIL" = 0 ]
}
