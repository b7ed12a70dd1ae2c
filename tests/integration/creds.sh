#!/bin/bash
# creds.sh - the AWS credential chain with renewal, against real servers:
# tests/tools/credserver.py (IMDSv2, container credentials, STS AssumeRole and
# AssumeRoleWithWebIdentity, credentials that expire after TTL seconds) and
# tests/tools/sigv4_proxy.py in front of s3rver, which accepts only those temporary
# credentials and answers ExpiredToken / InvalidToken / InvalidAccessKeyId /
# SignatureDoesNotMatch as S3 does.
#  (a) every source resolves, in botocore's order, and botocore (an implementation nobody
#      here wrote) picks the same source from the same environment and endpoints;
#  (b) malformed answers from each endpoint are a clear error, never a crash;
#  (c) a mount on instance credentials reads, writes and writes back across at least 5
#      renewals with no failed operation and no request refused by the proxy;
#  (d) the endpoint answers garbage, then goes away: the credentials keep working until
#      they expire, then EACCES, then recovery when it returns, with no remount;
#  (e) S3 refusing credentials before their advertised expiry (ExpiredToken) costs one
#      renewal and one retry, no failed operation;
#  (f) no secret or token issued appears in any log or output.
. "$(dirname "$0")/../lib/harness.sh"
h_init fuse
h_need_cmd getfattr
$PY3 -c 'import botocore.session' 2>/dev/null || h_cannot "/usr/bin/python3 has no botocore"
h_start_s3
h_start_nfs

TTL=40
CS_STATE=$H_TMP/issued.json
CS_MODE=$H_TMP/cs.mode
BASE_ID=AKIAFERRYxxBASx
BASE_SK=FerryBaseSecret-Hq3Lw8Zt1Xc5Vb7Nm2
WEBTOK=eyJhbGciOiJSUzI1NiJ9.ferry-web-identity-token.sig
CTOK=ferry-container-auth-token-Pq9
echo ok >"$CS_MODE"
start_credserver() {   # start_credserver [PORT]
	rm -f "$H_TMP/cs.port"
	"$PY3" "$H_SRC/tests/tools/credserver.py" --port-file "$H_TMP/cs.port" --port "${1:-0}" \
		--state "$CS_STATE" --ttl "$TTL" --early $((TTL * 5 / 8)) --mode-file "$CS_MODE" \
		--log "$H_TMP/credserver.log" \
		--static "$BASE_ID:$BASE_SK" --container-token "$CTOK" --web-token "$WEBTOK" \
		>>"$H_TMP/credserver.out" 2>&1 &
	CS_PID=$!
	H_PIDS+=("$CS_PID")
	h_wait_for 20 test -s "$H_TMP/cs.port" || h_bail "credserver did not start"
	CS_PORT=$(cat "$H_TMP/cs.port")
	CS=http://127.0.0.1:$CS_PORT
}
start_credserver

"$PY3" "$H_SRC/tests/tools/sigv4_proxy.py" --upstream "$H_S3_URL" --secret S3RVER \
	--creds-file "$CS_STATE" --no-static --log "$H_TMP/proxy.log" \
	--port-file "$H_TMP/proxy.port" >>"$H_TMP/proxy.out" 2>&1 &
H_PIDS+=($!)
h_wait_for 20 test -s "$H_TMP/proxy.port" || h_bail "sigv4 proxy did not start"
PROXY=http://127.0.0.1:$(cat "$H_TMP/proxy.port")

# --- the environments ----------------------------------------------------------------
AWSD=$H_TMP/aws
mkdir -p "$AWSD"
printf '%s' "$WEBTOK" >"$AWSD/webtoken"   # as the kubelet writes it
printf '%s' "$CTOK" >"$AWSD/ctoken"
EXP=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version": 1, "AccessKeyId": "AKIAFERRYxxPRCx", "SecretAccessKey": "%s",\n' \
	ProcSecret-Yy6Tt2 >"$AWSD/proc.json"
printf ' "SessionToken": "%s", "Expiration": "%s"}\n' ProcToken-Uu8Ii3 "$EXP" >>"$AWSD/proc.json"
OWNCONF=$H_TMP/own.conf
printf 's3_access_key_id = AKIAFERRYxxOWNx\ns3_secret_access_key = OwnSecret-Kk4Jj7\n' >"$OWNCONF"
chmod 600 "$OWNCONF"

# write_files WHAT...: the shared files of profile "p" holding the sources named
# (role, creds, process, config); profile "base" always holds the base keys.
write_files() {
	{
		echo "[default]"
		echo "region = us-east-1"
		echo "[profile p]"
		for w in "$@"; do
			case $w in
			role) echo "role_arn = arn:aws:iam::123456789012:role/ferry-role"
			      echo "source_profile = base" ;;
			process) echo "credential_process = /bin/cat $AWSD/proc.json" ;;
			config) echo "aws_access_key_id = AKIAFERRYxxCFGx"
				echo "aws_secret_access_key = ConfSecret-Rr5Ee1" ;;
			esac
		done
	} >"$AWSD/config"
	{
		echo "[base]"
		echo "aws_access_key_id = $BASE_ID"
		echo "aws_secret_access_key = $BASE_SK"
		echo "[p]"
		for w in "$@"; do
			[ "$w" = creds ] || continue
			echo "aws_access_key_id = AKIAFERRYxxCRDx"
			echo "aws_secret_access_key = CredSecret-Ww3Qq9"
		done
	} >"$AWSD/credentials"
	chmod 600 "$AWSD/config" "$AWSD/credentials"
}

# run_env SOURCES -- CMD...: CMD in an environment holding the sources named (env, webid,
# container, imds, plus the profile's, see write_files), nothing else.
run_env() {
	local srcs=() w
	while [ "$1" != -- ]; do srcs+=("$1"); shift; done
	shift
	write_files "${srcs[@]}"
	local e=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN
		-u AWS_EC2_METADATA_DISABLED -u AWS_PROFILE
		AWS_CONFIG_FILE="$AWSD/config" AWS_SHARED_CREDENTIALS_FILE="$AWSD/credentials"
		AWS_PROFILE=p AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL_STS="$CS"
		AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1 AWS_METADATA_SERVICE_NUM_ATTEMPTS=1)
	for w in "${srcs[@]}"; do
		case $w in
		env) e+=(AWS_ACCESS_KEY_ID=AKIAFERRYxxENVx AWS_SECRET_ACCESS_KEY=EnvSecret-Ab1Cd2
			 AWS_SESSION_TOKEN=EnvToken-Ef3Gh4) ;;
		webid) e+=(AWS_WEB_IDENTITY_TOKEN_FILE="$AWSD/webtoken"
			   AWS_ROLE_ARN=arn:aws:iam::123456789012:role/ferry-web
			   AWS_ROLE_SESSION_NAME=ferry-test) ;;
		container) e+=(AWS_CONTAINER_CREDENTIALS_FULL_URI="$CS/container/creds"
			       AWS_CONTAINER_AUTHORIZATION_TOKEN="$CTOK") ;;
		ctokenfile) e+=(AWS_CONTAINER_CREDENTIALS_FULL_URI="$CS/container/creds"
				AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$AWSD/ctoken") ;;
		imds) e+=(AWS_EC2_METADATA_SERVICE_ENDPOINT="$CS") ;;
		none) e+=(AWS_EC2_METADATA_DISABLED=true) ;;
		esac
	done
	"${e[@]}" "$@"
}

# What issued an access key id ending in $1: env, creds, process, config, own (static) or
# the credserver's endpoint (imds, container, sts-role, sts-webid).
kind_of() {
	"$PY3" - "$CS_STATE" "$1" <<'PY'
import json, sys
ids = {'AKIAFERRYxxENVx': 'env', 'AKIAFERRYxxCRDx': 'creds', 'AKIAFERRYxxPRCx': 'process',
       'AKIAFERRYxxCFGx': 'config', 'AKIAFERRYxxOWNx': 'own', 'AKIAFERRYxxBASx': 'base'}
try:
    issued = json.load(open(sys.argv[1]))
except FileNotFoundError:
    issued = {}
tail = sys.argv[2]
hits = [k for k in ids if k.endswith(tail)] + [issued[k]['via'] for k in issued if k.endswith(tail)]
print(ids.get(hits[0], hits[0]) if len(hits) == 1 else 'ambiguous:%s' % hits)
PY
}

ours() {   # ours SOURCES: the kind of credentials ferryfs resolves
	local out
	out=$(run_env "$@" -- "$FERRYFS" --show-credentials-source "$OWNCONF" 2>>"$H_TMP/show.err")
	printf '%s\n' "$out" >>"$H_TMP/show.out"
	local key
	key=$(printf '%s\n' "$out" | sed -n 's/^access key: \*\*\*\*//p')
	[ -n "$key" ] || { echo "none"; return; }
	kind_of "$key"
}

# Debian's botocore (1.29) predates AWS_ENDPOINT_URL_STS: its STS client is pointed there
# by hand, as a newer botocore does from the variable.
theirs() {   # theirs SOURCES: the kind botocore resolves
	local key
	key=$(run_env "$@" -- "$PY3" -c '
import os, botocore.session
s = botocore.session.Session()
create = s.create_client
def sts_endpoint(name, *args, **kw):
    if name == "sts":
        kw["endpoint_url"] = os.environ["AWS_ENDPOINT_URL_STS"]
    return create(name, *args, **kw)
s.create_client = sts_endpoint
c = s.get_credentials()
print(c.get_frozen_credentials().access_key[-4:] if c else "")' 2>>"$H_TMP/botocore.err")
	[ -n "$key" ] || { echo "none"; return; }
	kind_of "$key"
}

# --- (a) each source, in order, and botocore agrees ------------------------------------
# Each row: the sources configured, and the one that must win (the first in the order).
while read -r want srcs; do
	got=$(ours $srcs)
	h_is "$got" "$want" "ferryfs resolves $want from: $srcs"
	if [ "$want" = own ]; then
		continue   # the ferryfs config file's keys: botocore has no such source
	fi
	got=$(theirs $srcs)
	h_is "$got" "$want" "botocore resolves $want from: $srcs"
done <<'ROWS'
env env role webid creds process config container imds
sts-role role webid creds process config container imds
sts-webid webid creds process config container imds
creds creds process config container imds
process process config container imds
config config container imds
container container imds
imds imds
own none
ROWS
h_is "$(ours ctokenfile)" container "ferryfs reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"

# --- region conventions: a bucket in another region ------------------------------------
"$PY3" "$H_SRC/tests/tools/sigv4_proxy.py" --upstream "$H_S3_URL" --secret S3RVER \
	--bucket-region eu-west-1 --log "$H_TMP/proxy-eu.log" \
	--port-file "$H_TMP/proxy-eu.port" >>"$H_TMP/proxy.out" 2>&1 &
H_PIDS+=($!)
h_wait_for 20 test -s "$H_TMP/proxy-eu.port" || h_bail "sigv4 proxy (eu-west-1) did not start"
EU=http://127.0.0.1:$(cat "$H_TMP/proxy-eu.port")
mkdir -p "$H_TMP/mnt-eu" "$H_TMP/state-eu"
EUOPTS="s3_endpoint=$EU,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=$H_NFS_URL"
EUOPTS+=",state_dir=$H_TMP/state-eu,log=stderr"
rc=0
env -u AWS_REGION -u AWS_DEFAULT_REGION "$FERRYFS" "$H_TMP/mnt-eu" -f -o "$EUOPTS" \
	>"$H_TMP/eu.log" 2>&1 || rc=$?
h_is "$rc" 1 "a bucket in another region: the mount fails (exit 1)"
h_ok "and the error names the region to set" \
	grep -q 'is in region eu-west-1, not us-east-1: set s3_region=eu-west-1' "$H_TMP/eu.log"
AWS_REGION=eu-west-1 "$FERRYFS" "$H_TMP/mnt-eu" -f -o "$EUOPTS" >>"$H_TMP/eu.log" 2>&1 &
EU_PID=$!
H_PIDS+=("$EU_PID")
H_FERRY_PIDS+=("$EU_PID")
H_MOUNTS+=("$H_TMP/mnt-eu")
h_ok "with AWS_REGION=eu-west-1 it mounts" h_wait_for 30 grep -qF " $H_TMP/mnt-eu fuse" /proc/mounts
h_ok "and signs for eu-west-1" grep -q '^ok ' "$H_TMP/proxy-eu.log"
fusermount3 -u "$H_TMP/mnt-eu"
h_wait_gone "$EU_PID" 30

# --- (b) malformed answers from each endpoint: a clear error, exit 1, no crash ------------
echo malformed >"$CS_MODE"
for src in role webid container imds; do
	rc=0
	run_env $src -- "$FERRYFS" --show-credentials-source >"$H_TMP/bad.out" 2>"$H_TMP/bad.err" || rc=$?
	cat "$H_TMP/bad.err" >>"$H_TMP/show.err"
	h_is "$rc" 1 "a malformed $src answer: exit 1 (no crash)"
	h_ok "a malformed $src answer: the error says so" \
		grep -qiE 'malformed|not a JSON object|not valid|session token' "$H_TMP/bad.err"
done
echo ok >"$CS_MODE"
printf '{"Version": 1, "AccessKeyId": 7}' >"$AWSD/proc.json.bad"
rc=0
run_env process -- env -- sh -c 'sed -i "s#proc.json#proc.json.bad#" "$AWS_CONFIG_FILE" &&
	exec "$0" --show-credentials-source' "$FERRYFS" >/dev/null 2>"$H_TMP/bad.err" || rc=$?
cat "$H_TMP/bad.err" >>"$H_TMP/show.err"
h_is "$rc" 1 "a malformed credential_process answer: exit 1 (no crash)"
h_ok "a malformed credential_process answer: the error names it" \
	grep -q 'credential_process' "$H_TMP/bad.err"

# --- (c) a mount on instance credentials across renewals ---------------------------------
stat_of() {
	getfattr -n user.ferryfs.stats --only-values "$H_MNT" 2>/dev/null |
		awk -v k="$1" '$1 == k { print $2 }'
}
for i in $(seq 1 20); do echo "object $i" | h_seed_s3 "old/f$i.txt"; done
write_files
H_MNT=$H_TMP/mnt
H_STATE=$H_TMP/state
mkdir -p "$H_MNT" "$H_STATE"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_EC2_METADATA_DISABLED \
	AWS_CONFIG_FILE="$AWSD/config" AWS_SHARED_CREDENTIALS_FILE="$AWSD/credentials" \
	AWS_EC2_METADATA_SERVICE_ENDPOINT="$CS" \
	"$FERRYFS" "$H_MNT" -f -o "s3_endpoint=$PROXY,s3_bucket=$H_BUCKET,s3_path_style=1,$(
	)nfs=$H_NFS_URL,state_dir=$H_STATE,log=stderr,log_level=info" \
	>>"$H_TMP/ferryfs.log" 2>&1 &
H_FERRY_PID=$!
H_PIDS+=("$H_FERRY_PID")
H_FERRY_PIDS+=("$H_FERRY_PID")
H_MOUNTS+=("$H_MNT")
h_wait_for 30 grep -qF " $H_MNT fuse" /proc/mounts ||
	h_bail "ferryfs did not mount (see ferryfs.log)"
h_ok "the mount names the source that won" \
	grep -q 'credentials from instance metadata' "$H_TMP/ferryfs.log"

RUN_S=$((TTL * 7 / 2))
fails=0 ops=0
end=$(( $(date +%s) + RUN_S ))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
	n=$((n + 1))
	i=$(( n % 20 + 1 ))
	grep -q "object $i" "$H_MNT/old/f$i.txt" ||
		{ fails=$((fails + 1)); h_diag "read old/f$i.txt failed"; }
	echo "new $n" >"$H_MNT/new$n.txt" || { fails=$((fails + 1)); h_diag "write new$n.txt failed"; }
	echo "appended $n" >>"$H_MNT/old/f$i.txt" || { fails=$((fails + 1)); h_diag "append f$i failed"; }
	ls "$H_MNT/old" >/dev/null || fails=$((fails + 1))
	ops=$((ops + 4))
	sleep 1
done
h_is "$fails" 0 "$ops operations over ${RUN_S}s of ${TTL}s credentials: none failed"
refreshes=$(stat_of credential_refreshes)
h_ok "at least 5 renewals ($refreshes)" test "${refreshes:-0}" -ge 5
keys=$(grep -o 'key=ASIA[A-Z0-9]*' "$H_TMP/proxy.log" | sort -u | wc -l)
h_ok "the proxy saw at least 6 different temporary keys ($keys)" test "$keys" -ge 6
h_is "$(grep -c '^BAD' "$H_TMP/proxy.log")" 0 "no request refused by the verifying proxy"
h_ok "the write-back reached S3" h_wait_for 60 sh -c \
	"/usr/bin/aws --endpoint-url '$H_S3_URL' s3 cp s3://$H_BUCKET/new$n.txt - 2>/dev/null |
	 grep -q 'new $n'"
h_ok "ferryctl stats --prometheus shows the counters" sh -c \
	"'$FERRYCTL' stats --prometheus '$H_MNT' | grep -q '^ferryfs_credential_refreshes_total'"

# --- (d) garbage, then the endpoint goes away, then comes back ------------------------------
errs0=$(stat_of credential_errors)
echo malformed >"$CS_MODE"
errs_above() { test "$(stat_of credential_errors)" -gt "$1"; }
h_ok "a malformed renewal is counted" h_wait_for $((TTL / 2 + 10)) errs_above "${errs0:-0}"
echo "seeded" | h_seed_s3 "down/a.txt"
h_ok "while renewal fails, the current credentials still work" grep -q seeded "$H_MNT/down/a.txt"
refr0=$(stat_of credential_refreshes)
refr_above() { test "$(stat_of credential_refreshes)" -gt "$1"; }
echo ok >"$CS_MODE"
h_ok "when the answers are good again, the renewal succeeds" h_wait_for 90 refr_above "$refr0"
kill "$CS_PID"
h_wait_gone "$CS_PID" 10
t0=$(date +%s)
echo "seeded" | h_seed_s3 "down/a2.txt"
h_ok "with the endpoint gone, the current credentials still work" \
	grep -q seeded "$H_MNT/down/a2.txt"
# wait for the credentials to expire: reads of new S3 objects then fail with EACCES
k=0 denied=
while [ $(( $(date +%s) - t0 )) -lt $((TTL + 30)) ]; do
	k=$((k + 1))
	echo "x$k" | h_seed_s3 "down/b$k.txt"
	if ! cat "$H_MNT/down/b$k.txt" >/dev/null 2>"$H_TMP/cat.err"; then
		denied=$(cat "$H_TMP/cat.err")
		break
	fi
	sleep 2
done
h_ok "once they expire, S3 reads fail with EACCES ($denied)" \
	grep -q 'Permission denied' <<<"$denied"
h_ok "the expiry is logged" grep -q 'have expired and cannot be renewed' "$H_TMP/ferryfs.log"
start_credserver "$CS_PORT"
h_ok "when the endpoint returns, reads work again with no remount" \
	h_wait_for 90 sh -c "cat '$H_MNT/down/b$k.txt' >/dev/null 2>&1"
h_ok "and writes reach S3 again" sh -c "echo back >'$H_MNT/back.txt'"
h_ok "the write-back resumes" h_wait_for 60 sh -c \
	"/usr/bin/aws --endpoint-url '$H_S3_URL' s3 cp s3://$H_BUCKET/back.txt - 2>/dev/null |
	 grep -q back"

# --- (e) S3 refuses credentials before their advertised expiry: renewed, retried ---------
echo early >"$CS_MODE"
fails=0
end=$(( $(date +%s) + TTL * 3 / 2 ))
while [ "$(date +%s)" -lt "$end" ]; do
	n=$((n + 1))
	echo "early $n" >"$H_MNT/early$n.txt" || fails=$((fails + 1))
	ls "$H_MNT/old" >/dev/null || fails=$((fails + 1))
	echo "e$n" | h_seed_s3 "down/e$n.txt"
	grep -q "e$n" "$H_MNT/down/e$n.txt" || fails=$((fails + 1))
	sleep 1
done
echo ok >"$CS_MODE"
h_is "$fails" 0 "credentials refused before their time: no operation failed"
h_ok "S3 answered ExpiredToken" grep -q 'ExpiredToken' "$H_TMP/proxy.log"
h_ok "ferryfs renewed and retried" grep -q 'retrying with renewed ones' "$H_TMP/ferryfs.log"

# SIGHUP fetches the credentials again, and does not end the mount
refr0=$(stat_of credential_refreshes)
kill -HUP "$H_FERRY_PID"
h_ok "SIGHUP renews the credentials" h_wait_for 20 refr_above "$refr0"
h_ok "and the mount is still there" grep -qF " $H_MNT fuse" /proc/mounts

# --- (f) no secret or token in any log or output ----------------------------------------
h_umount
"$PY3" - "$CS_STATE" >"$H_TMP/secrets.pat" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1])).values():
    print(c['secret'])
    print(c['token'])
PY
printf '%s\n' "$BASE_SK" EnvSecret-Ab1Cd2 EnvToken-Ef3Gh4 CredSecret-Ww3Qq9 ProcSecret-Yy6Tt2 \
	ProcToken-Uu8Ii3 ConfSecret-Rr5Ee1 OwnSecret-Kk4Jj7 "$WEBTOK" "$CTOK" >>"$H_TMP/secrets.pat"
h_ok "$(wc -l <"$H_TMP/secrets.pat") secrets and tokens: none in ferryfs's log or output" \
	sh -c "! grep -qaF -f '$H_TMP/secrets.pat' '$H_TMP/ferryfs.log' '$H_TMP/show.out' \
	       '$H_TMP/show.err' '$H_TMP/eu.log'"
h_done
