#!/bin/bash
# rehearse.sh - the whole migration rehearsed on one machine: S3 (s3rver behind a fault
# proxy) and NFS (nfs-ganesha), K application hosts each in its own network namespace,
# rolled onto ferryfs one at a time while the crawl runs sharded across them and faults
# land; then finish (the hosts read the export directly) or revert (back to S3). Checked
# against what the applications saw acknowledged. See doc/rehearsal.md.
#
#   contrib/rehearse.sh [--hosts K] [--users U] [--files F] [--duration SECONDS] [--seed S]
#                       [--out DIR] [--quick] [--scenario finish|revert|both] [--keep]
#
# Run as root from a built tree (ferryfs and ferryctl in build/ or at the top; FERRYFS and
# FERRYCTL override). Output in --out DIR (default ./rehearsal): report.txt, timeline.png,
# and the raw logs; the last line is
#   rehearsal: N acknowledged operations, L lost, E unexpected errors, C conflicts kept
# Exit 0 when every check passed, 1 when one failed, 2 on a usage error.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${abs_top_builddir:-}" ] && [ -x "$SRC/build/ferryfs" ]; then
	abs_top_builddir=$SRC/build
fi
abs_top_srcdir=${abs_top_srcdir:-$SRC}
PY=/usr/bin/python3
TOOLS=$abs_top_srcdir/tests/tools

HOSTS=3 USERS=5000 FILES=50000 DURATION=600 SEED=$(($(date +%s) % 100000)) OUT=$PWD/rehearsal
SCENARIO=both QUICK=0 KEEP=0 CUT=30
usage() {
	sed -n '8,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
sizes_set=0
while [ $# -gt 0 ]; do
	case $1 in
	--hosts) HOSTS=$2; shift ;;
	--users) USERS=$2; sizes_set=1; shift ;;
	--files) FILES=$2; sizes_set=1; shift ;;
	--duration) DURATION=$2; shift ;;
	--seed) SEED=$2; shift ;;
	--out) OUT=$2; shift ;;
	--scenario) SCENARIO=$2; shift ;;
	--quick) QUICK=1 ;;
	--keep) KEEP=1 ;;
	-h | --help) usage ;;
	*) echo "rehearse.sh: unknown option $1" >&2; usage ;;
	esac
	[ $# -gt 0 ] && shift
done
if [ "$QUICK" = 1 ]; then
	[ "$sizes_set" = 1 ] || { USERS=150; FILES=1000; }
	DURATION=${REHEARSE_DURATION:-45}
	CUT=10
fi
case $SCENARIO in
finish | revert | both) ;;
*) echo "rehearse.sh: --scenario finish|revert|both" >&2; exit 2 ;;
esac
for v in "$HOSTS" "$USERS" "$FILES" "$DURATION" "$SEED"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "rehearse.sh: not a number: $v" >&2; exit 2; }
done
[ "$HOSTS" -ge 2 ] && [ "$HOSTS" -le 50 ] || { echo "rehearse.sh: --hosts 2..50" >&2; exit 2; }
[ "$DURATION" -ge 30 ] || { echo "rehearse.sh: --duration at least 30" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)

# Both scenarios: each in a world of its own (a process of its own), results summed.
if [ "$SCENARIO" = both ]; then
	rc=0
	# the second scenario starts from a copy of the first one's seeded bucket
	export REHEARSE_CACHE=$OUT/.seed-cache
	rm -rf "$REHEARSE_CACHE"
	for sc in finish revert; do
		args=(--hosts "$HOSTS" --users "$USERS" --files "$FILES" --duration "$DURATION"
			--seed "$SEED" --out "$OUT/$sc" --scenario "$sc")
		[ "$QUICK" = 1 ] && args+=(--quick)
		[ "$KEEP" = 1 ] && args+=(--keep)
		"$0" "${args[@]}" || rc=1
	done
	rm -rf "$REHEARSE_CACHE"
	"$PY" "$TOOLS/rehearse_check.py" --sum "$OUT/finish/summary.json" "$OUT/revert/summary.json" ||
		rc=1
	exit $rc
fi

# what an earlier run left in --out
rm -rf "$OUT"/h[0-9]* "$OUT"/{events,samples}.jsonl "$OUT"/{report,finish,run_errors}.txt \
	"$OUT"/{summary.json,timeline.png,revert_at,schedule,manifest.json}
source "$abs_top_srcdir/tests/lib/harness.sh"
[ "$KEEP" = 1 ] && H_KEEP=1
h_init fuse
h_need_cmd ip nsenter nfs-cat nfs-ls getfattr setfattr fusermount3
"$PY" -c 'import botocore, matplotlib' 2>/dev/null ||
	h_cannot "Debian's python3-botocore and python3-matplotlib are needed (contrib/install-deps.sh)"
W=$H_TMP
RANDOM=$SEED
say() {
	local el
	el=$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { print a - b }')
	printf '%s [%6.1f] %s\n' "$(date +%T)" "$el" "$*"
}
T0=$(date +%s.%N)

# --- the network: a bridge in the root namespace, one namespace per host -------------------
TAG=fr$(($$ % 100000))
NET=
for ((x = 20 + $$ % 200, n = 0; n < 200; n++, x = 20 + (x - 19) % 230)); do
	ip -o addr show | grep -q " 10\.200\.$x\." && continue
	NET=10.200.$x
	break
done
[ -n "$NET" ] || h_bail "no free 10.200.X.0/24 for the bridge"
BR=${TAG}b
BR_IP=$NET.1
NS=()
net_cleanup() {
	local i
	for ((i = 0; i < HOSTS; i++)); do
		ip netns del "${TAG}h$i" 2>/dev/null
		ip link del "${TAG}v$i" 2>/dev/null
	done
	ip link del "$BR" 2>/dev/null
}
ip link add "$BR" type bridge || h_bail "cannot create a bridge (ip link add type bridge)"
ip addr add "$BR_IP/24" dev "$BR" && ip link set "$BR" up || h_bail "bridge address"
for ((i = 0; i < HOSTS; i++)); do
	ns=${TAG}h$i
	ip netns add "$ns" || h_bail "ip netns add $ns"
	ip link add "${TAG}v$i" type veth peer name "${TAG}p$i" &&
		ip link set "${TAG}p$i" netns "$ns" &&
		ip link set "${TAG}v$i" master "$BR" && ip link set "${TAG}v$i" up &&
		ip -n "$ns" addr add "$NET.$((10 + i))/24" dev "${TAG}p$i" &&
		ip -n "$ns" link set "${TAG}p$i" up && ip -n "$ns" link set lo up ||
		h_bail "veth for $ns"
	NS+=("$ns")
done
# in the host's network namespace, in the root mount namespace (so its mount is everyone's)
inhost() { local i=$1; shift; nsenter --net="/run/netns/${NS[$i]}" "$@"; }
# the same for a background job: "inhost_exec I CMD... &" makes $! the command's own pid
inhost_exec() { local i=$1; shift; exec nsenter --net="/run/netns/${NS[$i]}" "$@"; }

# --- cleanup: apps, mounts, read-only guards, namespaces; then the harness's -------------
APP_PID=() FERRY_PID=() MNT=() GUARD=()
r_cleanup() {
	local rc=$? i
	set +e
	for p in "${APP_PID[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
	for ((i = 0; i < ${#MNT[@]}; i++)); do
		grep -q " ${MNT[$i]} fuse" /proc/mounts && fusermount3 -uz "${MNT[$i]}" 2>/dev/null
	done
	for g in "${GUARD[@]}"; do umount -l "$g" 2>/dev/null; done
	net_cleanup
	(exit $rc)
	h_cleanup
}
trap r_cleanup EXIT

# --- servers ----------------------------------------------------------------------------
CACHE=${REHEARSE_CACHE:-}
if [ -n "$CACHE" ] && [ -s "$CACHE/manifest.json" ]; then
	cp -a "$CACHE/s3data" "$H_TMP/s3data" && cp "$CACHE/manifest.json" "$CACHE/seed.txt" "$H_TMP/" ||
		h_bail "cannot copy the seeded bucket from $CACHE"
fi
h_start_s3
H_NFS_BIND=$BR_IP h_start_nfs
say "s3rver $H_S3_URL, nfs-ganesha $H_NFS_URL, hosts ${NS[*]} on $NET.0/24"
rm -f "$W/fault.ctl"
"$PY" "$TOOLS/faultproxy.py" --bind "$BR_IP" --upstream "$H_S3_URL" --mode none \
	--control "$W/fault.ctl" --stall 2 --port-file "$W/proxy.port" >>"$W/faultproxy.log" 2>&1 &
H_PIDS+=($!)
h_wait_for 20 test -s "$W/proxy.port" || h_bail "faultproxy did not start"
S3NS=http://$BR_IP:$(cat "$W/proxy.port")

if [ -s "$W/manifest.json" ]; then
	say "the bucket seeded by the first scenario, copied"
else
	say "seeding $FILES files of $USERS users (seed $SEED)"
	"$PY" "$TOOLS/rehearse_seed.py" --users "$USERS" --files "$FILES" --seed "$SEED" \
		--s3-url "$H_S3_URL" --bucket "$H_BUCKET" --manifest "$W/manifest.json" >"$W/seed.txt" ||
		h_bail "seeding failed"
	if [ -n "$CACHE" ]; then
		mkdir -p "$CACHE" && cp -a "$H_S3_DIR" "$CACHE/s3data" &&
			cp "$W/seed.txt" "$W/manifest.json" "$CACHE/"
	fi
fi
say "$(cat "$W/seed.txt")"
TOTAL_BYTES=$(awk '{ gsub(/[(]/, ""); print $4 }' "$W/seed.txt")

# --- the story's clock and its events ----------------------------------------------------
EV=$W/events.jsonl
ev() { # KIND LABEL (an "error" is a step of the story that failed: the rehearsal fails)
	[ "$1" = error ] && echo "$2" >>"$W/run_errors.txt"
	local label=${2//[\"\\]/}
	printf '{"t":%s,"kind":"%s","label":"%s"}\n' "$(date +%s.%N)" "$1" "$label" >>"$EV"
	say "$1: $2"
}
START=$(date +%s)
at() { local t=$(($1 + START)); while [ "$(date +%s)" -lt "$t" ]; do sleep 0.2; done; }

# crawl rate per host: the crawl alone would take about 60% of the story
RATE=$((TOTAL_BYTES * 10 / (DURATION * 6) / HOSTS * 2))
[ "$RATE" -lt 262144 ] && RATE=262144
REVAL=$([ "$QUICK" = 1 ] && echo 3 || echo 10)
THINK=${REHEARSE_THINK:-0.25}

app_start() { # I MODE
	local i=$1 mode=$2 a
	mkdir -p "$W/h$i"
	a=(--host "h$i" --index "$i" --hosts "$HOSTS" --mode "$mode" --log "$W/h$i/app.jsonl"
		--manifest "$W/manifest.json" --seed "$SEED" --think "$THINK")
	case $mode in
	s3) a+=(--s3-url "$S3NS" --bucket "$H_BUCKET") ;;
	fs) a+=(--root "${MNT[$i]}") ;;
	nfs) a+=(--nfs-url "$H_NFS_URL") ;;
	esac
	inhost_exec "$i" "$PY" "$TOOLS/rehearse_app.py" "${a[@]}" 2>>"$W/h$i/app.err" &
	APP_PID[$i]=$!
}
app_stop() { # I
	local i=$1 p=${APP_PID[$1]:-}
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null
	h_wait_gone "$p" 60 || kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	APP_PID[$i]=
}
mounts_file() {
	local i
	: >"$W/mounts.tmp"
	for ((i = 0; i < HOSTS; i++)); do
		[ -n "${FERRY_PID[$i]:-}" ] && echo "h$i ${MNT[$i]}" >>"$W/mounts.tmp"
	done
	mv "$W/mounts.tmp" "$W/mounts"
}
ferry_mount() { # I: mount host I's ferryfs (its state dir survives remounts)
	local i=$1 m st opts
	m=$W/h$i/mnt
	st=$W/h$i/state
	mkdir -p "$m" "$st"
	if [ -z "${GUARD[$i]:-}" ]; then
		# a read-only bind under the mount point: while ferryfs is not mounted there, the
		# application's writes fail (EROFS) instead of landing on the local disk
		mount --bind "$m" "$m" && mount -o remount,bind,ro "$m" || h_bail "read-only guard on $m"
		GUARD[$i]=$m
	fi
	MNT[$i]=$m
	opts="s3_endpoint=$S3NS,s3_bucket=$H_BUCKET,s3_path_style=1,s3_region=us-east-1"
	opts+=",nfs=$H_NFS_URL,state_dir=$st,log=stderr,log_level=info,workers=3"
	# revalidation: a short sweep period, so that finish finds no object changed in S3 (by
	# an old host or another mount's write-back) since a migration this ledger recorded
	opts+=",revalidate=$REVAL,revalidate_sweep=$((REVAL * 2)),rate=$RATE"
	inhost_exec "$i" "$FERRYFS" "$m" -f -o "$opts" >>"$W/h$i/ferryfs.log" 2>&1 &
	FERRY_PID[$i]=$!
	H_PIDS+=("${FERRY_PID[$i]}")
	H_MOUNTS+=("$m")
	h_wait_for 30 grep -qF " $m fuse" /proc/mounts ||
		h_bail "h$i: ferryfs did not mount (h$i/ferryfs.log)"
	mounts_file
}
ferry_umount() { # I
	local i=$1
	fusermount3 -u "${MNT[$i]}" || fusermount3 -uz "${MNT[$i]}"
	h_wait_gone "${FERRY_PID[$i]}" 60 || kill -9 "${FERRY_PID[$i]}" 2>/dev/null
	FERRY_PID[$i]=
	mounts_file
}
ctl() { # I ARGS...: ferryctl on host I
	local i=$1
	shift
	inhost "$i" "$FERRYCTL" "$@"
}
ROLLED=()
roll() { # I: a rolling deploy of host I: stop the app, mount, start the app on the mount
	local i=$1
	ev roll "h$i onto ferryfs"
	app_stop "$i"
	ferry_mount "$i"
	app_start "$i" fs
	ROLLED+=("$i")
	ctl "$i" migrate --all --shard "$i/$HOSTS" "${MNT[$i]}" >>"$W/h$i/ctl.log" 2>&1 ||
		ev error "h$i: ferryctl migrate --all --shard failed"
}

# --- the story ------------------------------------------------------------------------
: >"$W/mounts"
h_bg "$PY" "$TOOLS/rehearse_sample.py" --mounts "$W/mounts" --out "$W/samples.jsonl"
SAMPLER_PID=$H_LAST_PID
ev phase "all hosts old (S3)"
for ((i = 0; i < HOSTS; i++)); do app_start "$i" s3; done

D=$DURATION
GAP=$((D / 2 / HOSTS))
R0=$((D * 12 / 100))
REVERT_AT=
if [ "$SCENARIO" = revert ]; then
	REVERT_AT=$((R0 + 3 + RANDOM % (D * 85 / 100 - R0 - 3)))
	echo "$REVERT_AT" >"$W/revert_at"
fi
KILL_HOST=0
CUT_HOST=$((HOSTS - 1))
# the schedule: "SECOND ACTION ARG", sorted by time
{
	for ((i = 0; i < HOSTS; i++)); do echo "$((R0 + i * GAP)) roll $i"; done
	echo "$((R0 + GAP / 2)) nfs-restart -"
	echo "$((R0 + GAP + GAP / 2)) s3-burst -"
	echo "$((D * 60 / 100)) kill $KILL_HOST"
	echo "$((D * 70 / 100)) cut $CUT_HOST"
	echo "$D end -"
} | sort -n -k1,1 -s >"$W/schedule"
[ "$((D * 60 / 100))" -gt "$((R0 + (HOSTS - 1) * GAP))" ] ||
	h_bail "--duration too short for $HOSTS hosts"

# fault_ctl OPTIONS: what faultproxy does from now on (its --control file, replaced whole)
fault_ctl() { echo "$1" >"$W/fault.ctl.tmp" && mv "$W/fault.ctl.tmp" "$W/fault.ctl"; }
reverted=0
do_revert() {
	local i
	ev phase "revert (drawn at $REVERT_AT s)"
	for i in "${ROLLED[@]}"; do
		ev revert "h$i: ferryctl revert"
		ctl "$i" status --no-rate "${MNT[$i]}" >"$W/h$i/status-before-revert.txt" 2>&1
		# revert lists what S3 lacks and exits 1 (runbook 5: run it again): retried
		local ok=0 try
		for try in 1 2 3; do
			echo "--- try $try" >>"$W/h$i/revert.txt"
			ctl "$i" revert "${MNT[$i]}" >>"$W/h$i/revert.txt" 2>&1 && { ok=1; break; }
			ev note "h$i: ferryctl revert refused (try $try): $(grep -E \
				'^(missing|differs|extra)' "$W/h$i/revert.txt" | tail -n 1)"
			sleep 5
		done
		if [ "$ok" = 0 ]; then
			ev error "h$i: ferryctl revert failed 3 times"
			cat "$W/h$i/revert.txt" >&2
			continue
		fi
		app_stop "$i"
		ferry_umount "$i"
		app_start "$i" s3
		ev roll "h$i back on S3"
	done
	reverted=1
}

while read -r sec action arg; do
	if [ -n "$REVERT_AT" ] && [ "$sec" -ge "$REVERT_AT" ] && [ "$reverted" = 0 ]; then
		at "$REVERT_AT"
		do_revert
	fi
	[ "$reverted" = 1 ] && [ "$action" != end ] && continue
	at "$sec"
	case $action in
	roll)
		[ "$arg" = 0 ] && ev phase "rolling: crawl and faults"
		roll "$arg"
		[ "$arg" = $((HOSTS - 1)) ] && ev phase "all hosts rolled"
		;;
	nfs-restart)
		ev fault "nfs-ganesha restarted"
		h_restart_nfs
		ev fault-end "nfs-ganesha back"
		;;
	s3-burst)
		ev fault "S3 503s and resets"
		fault_ctl "--mode 503 --share 0.3 --seed $SEED"
		sleep 3
		fault_ctl "--mode reset --share 0.2 --seed $SEED"
		sleep 3
		rm -f "$W/fault.ctl"
		ev fault-end "S3 healthy"
		;;
	kill)
		ev fault "h$arg: ferryfs killed (SIGKILL)"
		kill -9 "${FERRY_PID[$arg]}"
		h_wait_gone "${FERRY_PID[$arg]}" 10
		sleep 1
		fusermount3 -uz "${MNT[$arg]}"
		ferry_mount "$arg"
		ev fault-end "h$arg: ferryfs remounted"
		;;
	cut)
		ev fault "h$arg cut off the network (${CUT} s)"
		ip link set "${TAG}v$arg" down
		sleep "$CUT"
		ip link set "${TAG}v$arg" up
		ev fault-end "h$arg reconnected"
		;;
	end) ;;
	esac
done <"$W/schedule"

# --- the end: finish, or (revert scenario) the old hosts on S3 for a while ----------------
RESULT_TARGET=s3
if [ "$SCENARIO" = finish ]; then
	RESULT_TARGET=nfs
	ev phase "crawl completes (rate lifted)"
	for i in "${ROLLED[@]}"; do setfattr -n user.ferryfs.rate -v 0 "${MNT[$i]}"; done
	finished=0
	crawl_wait() { # SECONDS
		local pids=() i
		for i in "${ROLLED[@]}"; do
			timeout "$1" "$FERRYCTL" migrate --all --shard "$i/$HOSTS" --wait "${MNT[$i]}" \
				>>"$W/h$i/ctl.log" 2>&1 &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p"; done
	}
	try_finish() {
		local i
		for i in "${ROLLED[@]}"; do
			ctl "$i" status --no-rate "${MNT[$i]}" >"$W/h$i/status-before-finish.txt" 2>&1
		done
		ctl 0 finish --grace 12 "${MNT[0]}" >>"$W/finish.txt" 2>&1 && return 0
		say "finish refused: $(grep -v '^ ' "$W/finish.txt" | tail -n 3 | tr '\n' ' ')"
		return 1
	}
	crawl_wait "$D"
	# finish wants this mount's journal empty and no S3 object changed since its
	# migration: with the applications saving steadily through the other mounts (whose
	# write-back changes S3) that rarely holds, so after one try their writes pause
	# (a short maintenance window, reported as a phase of its own)
	try_finish && finished=1
	if [ "$finished" = 0 ]; then
		ev phase "writes paused for finish"
		for i in "${ROLLED[@]}"; do app_stop "$i"; done
		for try in 1 2 3 4 5; do
			for i in "${ROLLED[@]}"; do
				timeout $((3 * D)) "$FERRYCTL" sync-back "${MNT[$i]}" --wait >>"$W/h$i/ctl.log" 2>&1
			done
			crawl_wait $((3 * D))
			try_finish && { finished=1; break; }
			sleep 3
		done
	fi
	if [ "$finished" = 1 ]; then
		ev finish "ferryctl finish"
		ev phase "hosts on plain NFS"
		for i in "${ROLLED[@]}"; do
			app_stop "$i"
			ferry_umount "$i"
			app_start "$i" nfs
			ev roll "h$i reads the export (nfs-cat)"
		done
		sleep $((D / 10))
	else
		ev error "ferryctl finish refused 6 times"
	fi
else
	[ "$reverted" = 1 ] || do_revert
	ev phase "all hosts on S3 again"
	sleep $((D / 10))
fi
for ((i = 0; i < HOSTS; i++)); do app_stop "$i"; done
for ((i = 0; i < HOSTS; i++)); do
	[ -n "${FERRY_PID[$i]:-}" ] && ferry_umount "$i"
done
ev phase "checks"
kill "$SAMPLER_PID" 2>/dev/null
h_wait_gone "$SAMPLER_PID" 5

# --- checks and report ---------------------------------------------------------------------
cp "$W/events.jsonl" "$W/samples.jsonl" "$W/manifest.json" "$W/schedule" "$OUT/" 2>/dev/null
for ((i = 0; i < HOSTS; i++)); do
	mkdir -p "$OUT/h$i"
	cp "$W/h$i"/*.jsonl "$W/h$i"/*.txt "$W/h$i"/*.log "$OUT/h$i/" 2>/dev/null
done
cp "$W/finish.txt" "$W/run_errors.txt" "$W/revert_at" "$OUT/" 2>/dev/null
"$PY" "$TOOLS/rehearse_check.py" --dir "$OUT" --target "$RESULT_TARGET" --scenario "$SCENARIO" \
	--hosts "$HOSTS" --s3-url "$H_S3_URL" --bucket "$H_BUCKET" --nfs-url "$H_NFS_URL" \
	--export "$H_EXPORT" --title "$SCENARIO: $HOSTS hosts, $(cat "$W/seed.txt")"
