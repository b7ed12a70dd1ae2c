#!/bin/bash
# s3faults.sh - the S3 client against injected failures: tests/tools/faultproxy.py sits
# between the client (tests/integ/s3client, suite faults) and a real s3rver and answers
# 503/500/SlowDown, resets connections, stalls before or in the middle of a body, or sends
# a body slowly. Transient faults must be retried through (streamed GETs resuming with a
# Range, bytes checked), persistent ones must end in -EIO/-ETIMEDOUT within a bounded time,
# and the s3_requests/s3_retries/s3_errors counters must move.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init
h_start_s3

PROG=${S3CLIENT_PROG:-$H_BUILD/tests/integ/s3client}
[ -x "$PROG" ] || h_cannot "tests/integ/s3client is not built"
PROXY="$PY3 $H_SRC/tests/tools/faultproxy.py"
SIZE=$((24 * 1024 * 1024))

run() { "$PROG" --ascii -j1 "$@" 2>>"$H_TMP/s3client.log"; }

S3_URL=$H_S3_URL S3_BUCKET=$H_BUCKET FAULT_SEED=1 FAULT_SIZE=$SIZE run --filter 'faults/seed' >/dev/null ||
	h_bail "could not seed the test object"

PROXY_PID=
start_proxy() {
	rm -f "$H_TMP/proxy.port"
	h_bg $PROXY --upstream "$H_S3_URL" --port-file "$H_TMP/proxy.port" --log "$H_TMP/proxy.log" "$@"
	PROXY_PID=$H_LAST_PID
	h_wait_for 10 test -s "$H_TMP/proxy.port" || h_bail "faultproxy did not start"
	PROXY_URL=http://127.0.0.1:$(cat "$H_TMP/proxy.port")
}
stop_proxy() {
	kill "$PROXY_PID" 2>/dev/null
	h_wait_gone "$PROXY_PID" 5
}

# fault DESC EXPECT(ok|eio|etimedout) MAX_SECONDS RETRIES TIMEOUT TESTS -- PROXY ARGS...
fault() {
	local desc=$1 expect=$2 max=$3 retries=$4 timeout=$5 tests=$6 mode=$9
	shift 7
	start_proxy "$@"
	echo "== $desc: $*" >>"$H_TMP/s3client.log"
	local out rc
	local first=
	[[ " $* " == *" --first "* ]] && first=1
	out=$(env ${first:+FAULT_FIRST=1} S3_URL="$PROXY_URL" S3_BUCKET="$H_BUCKET" FAULT="$mode" FAULT_EXPECT="$expect" \
		FAULT_MAX_SECONDS="$max" FAULT_SIZE="$SIZE" S3_RETRIES="$retries" S3_TIMEOUT="$timeout" \
		"$PROG" --ascii -j1 --filter "faults/$tests" 2>&1)
	rc=$?
	printf '%s\n' "$out" >>"$H_TMP/s3client.log"
	grep '^# fault' <<<"$out"
	h_ok "$desc" test "$rc" = 0 || h_diag "$(tail -n 15 <<<"$out")"
	stop_proxy
}

fault "no fault: baseline read" ok 30 5 10 '*' -- --mode none
fault "503 on the first 3 requests: retried" ok 30 5 10 read_through -- --mode 503 --first 3
fault "SlowDown on the first 2 requests: retried" ok 30 5 10 read_through -- --mode slowdown --first 2
fault "500 on 30% of all requests: every operation succeeds, multipart too" ok 60 6 10 '*' -- --mode 500 --share 0.3 --seed 7
fault "SlowDown on 40% of PUT/POST: a multipart upload gets through" ok 60 8 10 multipart_upload -- \
	--mode slowdown --share 0.4 --seed 3 --methods PUT,POST
fault "connection reset before the reply on the first 2 requests" ok 30 5 10 read_through -- --mode reset --first 2
fault "reset after 1 MiB of body, 3 times: the stream resumes with a Range" ok 30 5 10 read_through -- \
	--mode reset-mid --first 3 --methods GET --after $((1024 * 1024))
fault "stall mid-body: low-speed timeout, then resume" ok 25 5 2 read_through -- \
	--mode stall-mid --first 1 --methods GET --after $((5 * 1024 * 1024)) --stall 60
fault "stall before the reply: timeout, then retry" ok 25 5 2 read_through -- \
	--mode stall-before --first 1 --stall 60
fault "slow body (8 MiB/s) is not a failure" ok 30 5 2 read_through -- --mode slow-body --rate $((8 * 1024 * 1024))
fault "503 forever: -EIO after the retry limit, quickly" eio 15 3 10 read_through -- --mode 503
fault "reset forever: -EIO after the retry limit" eio 15 3 10 read_through -- --mode reset
fault "server that never answers: -ETIMEDOUT within the low-speed window x attempts" etimedout 20 2 2 read_through -- \
	--mode stall-before --stall 60

# the proxy's log proves the faults happened
h_ok "the proxy injected faults" grep -q " reset-mid after " "$H_TMP/proxy.log"

# A multipart upload whose part uploads fail for good (500 to every PUT ...partNumber=):
# the client aborts the upload (DELETE ...?uploadId=, which s3rver answers 405) and
# returns the part's error.
: >"$H_TMP/proxy.log"
fault "every part upload answered 500: the upload fails with -EIO" partfail 60 2 10 multipart_part_fails -- \
	--mode 500 --methods PUT --match partNumber=
h_ok "... the part uploads were refused by the proxy" grep -qE "^[0-9.]+ [0-9]+ PUT /$H_BUCKET/[^ ]*mpabort\?[^ ]*partNumber=[^ ]* 500\$" "$H_TMP/proxy.log"
h_ok "... the client sent AbortMultipartUpload (DELETE ?uploadId=) after them" \
	awk -v b="/$H_BUCKET/" '$3 == "PUT" && index($4, "partNumber=") { put = NR }
		$3 == "DELETE" && index($4, b) == 1 && $4 ~ /mpabort\?uploadId=/ && $5 == "none" { del = NR }
		END { exit !(put && del > put) }' "$H_TMP/proxy.log"
h_ok "... and logged the part failure as the reason" \
	grep -qE "multipart upload of [^ ]*mpabort failed \(Input/output error\): aborting it" "$H_TMP/s3client.log"

# Errors that are not retried, logged with the S3 error code and request id: 403
# AccessDenied (the proxy, for faults/obj) is -EACCES, a missing key (s3rver) -ENOENT.
: >"$H_TMP/s3client.log"
start_proxy --mode 403 --match /faults/obj
out=$(S3_URL="$PROXY_URL" S3_BUCKET="$H_BUCKET" FAULT_EXPECT=eacces S3TEST_LOG=7 \
	"$PROG" --ascii -j1 --filter 'faults/errors_mapped' 2>&1)
rc=$?
printf '%s\n' "$out" >>"$H_TMP/s3client.log"
h_ok "403 maps to -EACCES (tried once), a missing key to -ENOENT" test "$rc" = 0 || h_diag "$(tail -n 15 <<<"$out")"
h_ok "... the 403's log line names AccessDenied and the request id" \
	grep -qE "s3: GET key faults/obj: HTTP 403 AccessDenied: Access Denied \(request id faultproxy-[0-9]+\)" "$H_TMP/s3client.log"
# s3rver sends no x-amz-request-id; the proxy adds one (faultproxy-N) as S3 would
h_ok "... the 404's log line names NoSuchKey and the request id of the reply's header" \
	grep -qE "s3: GET key [^ ]*/missing: HTTP 404 NoSuchKey: .* \(request id faultproxy-[0-9]+\)" "$H_TMP/s3client.log"
stop_proxy
h_done
