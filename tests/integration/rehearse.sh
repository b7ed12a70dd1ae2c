#!/bin/bash
# rehearse.sh - the end-to-end rehearsal (contrib/rehearse.sh --quick) as a test: three
# application hosts in network namespaces rolled onto ferryfs while the sharded crawl runs
# and faults land (nfs-ganesha restarted, S3 503s and resets, a daemon killed with SIGKILL,
# a host cut off the network), then finish (the export read with nfs-cat) and, in a second
# world, revert at a random moment (S3 read with botocore). Each check is one test point:
# no acknowledged write lost, nothing deleted back, no application error but the documented
# ones, every conflict kept in both versions and listed. REHEARSE_SEED=N replays a run.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_need_cmd ip nsenter nfs-cat
ip netns list >/dev/null 2>&1 || h_cannot "no network namespaces (ip netns)"
/usr/bin/python3 -c 'import botocore, matplotlib' 2>/dev/null ||
	h_cannot "python3-botocore and python3-matplotlib are needed (contrib/install-deps.sh)"

SEED=${REHEARSE_SEED:-$(($(date +%s) % 100000))}
h_diag "seed $SEED (REHEARSE_SEED=$SEED replays it)"
OUT=$H_TMP/out
abs_top_srcdir=$abs_top_srcdir abs_top_builddir=${abs_top_builddir:-} \
	"$abs_top_srcdir/contrib/rehearse.sh" --quick --scenario both --seed "$SEED" --out "$OUT" \
	>"$H_TMP/rehearse.log" 2>&1
rc=$?
last=$(tail -n 1 "$H_TMP/rehearse.log")
h_diag "$last"

for sc in finish revert; do
	rep=$OUT/$sc/report.txt
	if ! h_ok "$sc: the scenario ran to its checks" test -s "$rep"; then
		h_diag "$(tail -n 30 "$H_TMP/rehearse.log")"
		continue
	fi
	h_diag "$(cat "$rep")"
	h_ok "$sc: no acknowledged write lost" bash -c "! grep -q '^FAIL lost' '$rep'"
	h_ok "$sc: no acknowledged write replaced by an older version" bash -c \
		"! grep -q '^FAIL wrong content' '$rep'"
	h_ok "$sc: nothing deleted came back" bash -c "! grep -q '^FAIL deleted and back' '$rep'"
	h_ok "$sc: no application error but the documented ones" bash -c \
		"! grep -q '^FAIL unexpected' '$rep'"
	h_ok "$sc: every conflict kept both versions and is listed" bash -c \
		"! grep -q -e '^FAIL bad conflict' -e '^FAIL conflicts not listed' '$rep'"
	h_ok "$sc: no marker, temporary or unknown file left" bash -c \
		"! grep -q -e '^FAIL markers' -e '^FAIL files nobody' '$rep'"
	h_ok "$sc: every step of the story succeeded (roll, crawl, kill, finish or revert)" bash -c \
		"! grep -q '^FAIL steps' '$rep'"
	h_ok "$sc: the applications got work acknowledged" bash -c \
		"grep -q '^rehearsal: [1-9][0-9]* acknowledged' '$rep'"
	h_ok "$sc: a timeline picture was drawn" test -s "$OUT/$sc/timeline.png"
done
h_ok "the summary line: ... 0 lost, 0 unexpected errors" bash -c \
	"echo '$last' | grep -q '^rehearsal: [0-9]* acknowledged operations, 0 lost, 0 unexpected'"
h_is "$rc" 0 "contrib/rehearse.sh exits 0"
# the namespaces the runs named in their logs
nss=$(grep -o 'hosts fr[0-9]*h0' "$H_TMP/rehearse.log" | sed 's/^hosts //; s/h0$//' | sort -u)
left=
for t in $nss; do
	left+=$(ip netns list | grep "^${t}h"; ip -o link show | grep -o " ${t}[bv][0-9]*")
done
h_is "$left" "" "no namespace or veth of the rehearsal is left (${nss//$'\n'/ })"
# the runs' work directories (named in their logs): no mount left under them
dirs=$(grep -o '/tmp/ferryfs-test\.[A-Za-z0-9]*/export' "$H_TMP/rehearse.log" | sed 's#/export$##' |
	sort -u)
mleft=
for d in $dirs; do mleft+=$(grep -F " $d/" /proc/mounts); done
h_is "$mleft" "" "no mount of the rehearsal is left ($(echo $dirs))"
h_done
