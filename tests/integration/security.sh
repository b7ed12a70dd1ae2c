#!/bin/bash
# security.sh - security: (a) the secret key never appears in anything the daemon
# or ferryctl writes (stderr at debug level with FUSE debug, errors of a 403 and of a bad
# config, ferryctl output, any process's command line, the state directory); (b) with
# allow_other (ferryfs always mounts with default_permissions) another uid cannot read a
# 0600 file but can read a 0644 one; (c) a symlink on NFS pointing outside the export is
# shown, never followed by ferryfs itself (readlink, migration, mirror, verify, scan); and
# an https endpoint with a self-signed certificate is refused at mount time (exit 1, the
# cause named), accepted with s3_ca_file, and with s3_insecure_tls=1 only with a loud
# warning in the log. The 0644-config-with-secret and -o secret refusals are in command.sh.
. "$(dirname "$0")/../lib/harness.sh"
h_init fuse
h_need_cmd setpriv getfattr
h_start_s3
h_start_nfs
CTL=$FERRYCTL

# A distinctive secret, kept in a file: it must never be on a command line, ours included.
SECRET=FerrySECRET-Zq7Xw9Pk2Lm4Nb8Vc3Rt6
PAT=$H_TMP/secret.pat
printf '%s\n' "$SECRET" >"$PAT"
chmod 600 "$PAT"
leaks() { grep -rlaF -f "$PAT" "$@" 2>/dev/null; }      # files holding the secret
no_leak() { ! leaks "$@" >/dev/null; }

# sigv4_proxy.py checking signatures with OUR secret (and one with a wrong secret).
start_proxy() { # start_proxy NAME SECRET_FILE -> PROXY_URL
	# the proxy takes --secret on its command line: it is a test tool, and its pid is
	# left out of the command-line scan below
	"$PY3" "$H_SRC/tests/tools/sigv4_proxy.py" --upstream "$H_S3_URL" --secret "$(cat "$2")" \
		--log "$H_TMP/$1.log" --port-file "$H_TMP/$1.port" >>"$H_TMP/$1.out" 2>&1 &
	H_PIDS+=($!)
	PROXY_PIDS+=($!)
	h_wait_for 20 test -s "$H_TMP/$1.port" || h_bail "sigv4 proxy $1 did not start"
	PROXY_URL="http://127.0.0.1:$(cat "$H_TMP/$1.port")"
}
PROXY_PIDS=()

M=$H_TMP/mnt
H_MNT=$M
ST=$H_TMP/state
mkdir -p "$M" "$ST"
BASE="s3_bucket=$H_BUCKET,s3_path_style=1,s3_region=us-east-1,nfs=$H_NFS_URL,log=stderr,log_level=debug"
# mount_debug LOG OPTS: ferryfs -d (FUSE debug, foreground) with our secret in its environment
mount_debug() {
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=$SECRET \
		"$FERRYFS" "$M" -d -o "$2" >>"$1" 2>&1 &
	H_FERRY_PID=$!
	H_PIDS+=("$H_FERRY_PID")
	H_FERRY_PIDS+=("$H_FERRY_PID")
	H_MOUNTS+=("$M")
	h_wait_for 30 grep -q " $M fuse" /proc/mounts
}

# --- (a) the secret is never written anywhere --------------------------------------------
echo "S3 object" | h_seed_s3 s3only.txt
echo "NFS file" | h_seed_nfs nfsonly.txt
printf 'SECRET %s in a file is data, not a leak\n' "not-the-secret" | h_seed_s3 data/other.txt
start_proxy goodproxy "$PAT"
GOOD=$PROXY_URL
mount_debug "$H_TMP/debug.log" "$BASE,s3_endpoint=$GOOD,state_dir=$ST,allow_other"
h_is "$?" 0 "mount with the secret in the environment, -d and log_level=debug"
h_is "$(cat "$M/s3only.txt")" "S3 object" "a read through the signing proxy works (the secret is right)"
echo "written" >"$M/new.txt"
echo "appended" >>"$M/s3only.txt"
cat "$M/nope" 2>/dev/null
mkdir "$M/d" && mv "$M/new.txt" "$M/d/new.txt"
ls -laR "$M" >/dev/null
getfattr -d -m - "$M/s3only.txt" "$M/d/new.txt" >/dev/null 2>&1
CTLOUT=$H_TMP/ctl.out
{
	"$CTL" status "$M"
	"$CTL" show "$M/s3only.txt" "$M/d/new.txt" "$M/data/other.txt"
	"$CTL" migrate --wait "$M/data/other.txt"
	"$CTL" verify "$M/data"
	"$CTL" scan "$M"
	"$CTL" stats --prometheus "$M"
	"$CTL" show /nonexistent
} >"$CTLOUT" 2>&1
h_ok "ferryctl ran (status, show, migrate, verify, scan, stats)" grep -q . "$CTLOUT"
h_ok "the 403-free mount signed every request (proxy log)" bash -c "grep -q '^ok ' '$H_TMP/goodproxy.log' && ! grep -q '^BAD' '$H_TMP/goodproxy.log'"

# Command lines of every process but the test's proxies (ferryfs, fusermount, ganesha...).
cmdlines_clean() {
	local f pid
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[[ " ${PROXY_PIDS[*]} " == *" $pid "* ]] && continue
		if tr '\0' ' ' <"$f" 2>/dev/null | grep -qF -f "$PAT"; then
			echo "pid $pid: $(tr '\0' ' ' <"$f" | cut -c1-80)"
			return 1
		fi
	done
	return 0
}
h_ok "no process's command line holds the secret (ps)" cmdlines_clean
h_ok "ferryfs's environment does hold it (the check above can see it)" grep -qaF -f "$PAT" "/proc/$H_FERRY_PID/environ"
h_umount
h_ok "the debug log has FUSE and ferryfs debug lines" bash -c "grep -q 'unique:' '$H_TMP/debug.log' && grep -qi 'debug' '$H_TMP/debug.log'"

# A wrong secret on the S3 side: 403 SignatureDoesNotMatch at the mount's probe.
printf '%s\n' "WrongSecretForTheProxy123" >"$H_TMP/wrong.pat"
start_proxy badproxy "$H_TMP/wrong.pat"
BAD=$PROXY_URL
AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=$SECRET timeout 120 \
	"$FERRYFS" "$H_TMP/mnt" -f -d -o "$BASE,s3_endpoint=$BAD,state_dir=$ST" >"$H_TMP/403.log" 2>&1
h_is "$?" 1 "a mount whose signatures S3 refuses (403) exits 1"
h_ok "... and says why" grep -qiE '403|signature|denied|forbidden' "$H_TMP/403.log"
h_ok "the proxy did refuse signatures" grep -q '^BAD' "$H_TMP/badproxy.log"

# A bad config file holding the secret (0600, so allowed), with a mistyped line.
CONF=$H_TMP/bad.conf
{
	echo "s3_bucket = $H_BUCKET"
	echo "nfs = $H_NFS_URL"
	echo "s3_access_key_id = S3RVER"
	echo "s3_secret_access_key: $SECRET"
} >"$CONF"
chmod 600 "$CONF"
timeout 60 "$FERRYFS" "$CONF" "$M" -f >"$H_TMP/badconf.log" 2>&1
h_is "$?" 2 "a config file with a mistyped secret line exits 2"
h_ok "... naming the key" grep -q s3_secret_access_key "$H_TMP/badconf.log"
sed -i 's/^s3_secret_access_key: /s3_secret_access_key = /; $a s3_bogus_key = 1' "$CONF"
timeout 60 "$FERRYFS" "$CONF" "$M" -f >>"$H_TMP/badconf.log" 2>&1
h_is "$?" 2 "a config file with the secret and an unknown key exits 2"

h_ok "the secret is in no log, error or ferryctl output" no_leak "$H_TMP/debug.log" "$H_TMP/403.log" \
	"$H_TMP/badconf.log" "$CTLOUT"
h_ok "the secret is nowhere in the state directory" no_leak "$ST"
h_ok "the secret is nowhere on the export" no_leak "$H_EXPORT"
h_ok "the secret is in no S3 object" bash -c "! grep -rqaF -f '$PAT' '$H_S3_DIR'"
if [ -f /var/log/syslog ]; then
	h_ok "the secret is not in /var/log/syslog" no_leak /var/log/syslog
fi
h_ok "the leak check itself works (it finds the secret where it is)" leaks "$PAT"

# --- (b) allow_other: permissions are enforced for other users ----------------------------
h_mount "allow_other"
echo "private" >"$H_MNT/private.txt"
chmod 600 "$H_MNT/private.txt"
echo "public" >"$H_MNT/public.txt"
chmod 644 "$H_MNT/public.txt"
mkdir "$H_MNT/closed" && echo "inside" >"$H_MNT/closed/f" && chmod 700 "$H_MNT/closed"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
h_ok "uid 65534 cannot read a 0600 file of root's through the mount" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups cat '$H_MNT/private.txt'"
h_is "$(nobody cat "$H_MNT/public.txt" 2>&1)" "public" "uid 65534 can read a 0644 file"
h_ok "uid 65534 cannot write a 0644 file of root's" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x >>\"$H_MNT/public.txt\"'"
h_ok "uid 65534 cannot enter a 0700 directory" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups cat '$H_MNT/closed/f'"
h_ok "uid 65534 cannot chmod root's file" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups chmod 666 '$H_MNT/private.txt'"
h_is "$(stat -c %a "$H_MNT/private.txt")" "600" "the 0600 file kept its mode"
h_is "$(cat "$H_MNT/private.txt")" "private" "root still reads it"
h_is "$(stat -c %a "$H_EXPORT/private.txt")" "600" "the export has the file as 0600 too"
h_umount

# --- (c) symlinks on NFS pointing outside the export ---------------------------------------
# An S3 key below a name that is a symlink (or a file) on the new store ("dirlink/evil.txt"
# with dirlink -> outside) is refused (nothing is followed) and skipped as shadowed (spec 3):
# the crawl below must end, not retry it with back-off.
OUTSIDE=$H_TMP/outside
mkdir -p "$OUTSIDE"
echo "OUTSIDE-BYTES-must-never-be-read" >"$OUTSIDE/target.txt"
mkfifo "$OUTSIDE/trap.fifo"       # whoever opens this for reading blocks: a follow hangs
mkdir -p "$H_EXPORT/links"
ln -s "$OUTSIDE/target.txt" "$H_EXPORT/links/abs"
ln -s "../../../../../../../..$OUTSIDE/target.txt" "$H_EXPORT/links/rel"
ln -s /etc/passwd "$H_EXPORT/links/passwd"
ln -s "$OUTSIDE/trap.fifo" "$H_EXPORT/links/fifo"
# an S3 object under a name that is a symlink on NFS: the NFS symlink wins, and migration
# must never write through it
echo "S3 bytes under a symlink's name" | h_seed_s3 links/abs2
ln -s "$OUTSIDE/target2.txt" "$H_EXPORT/links/abs2"
echo "S3 file to migrate" | h_seed_s3 links/plain.txt
# a directory that is a symlink on NFS pointing outside, with S3 objects "under" it: a
# migration or copy-up that followed it would create files outside the export
ln -s "$OUTSIDE" "$H_EXPORT/dirlink"
echo "S3 bytes under a symlinked directory" | h_seed_s3 dirlink/evil.txt
h_mount
h_is "$(readlink "$H_MNT/links/abs")" "$OUTSIDE/target.txt" "readlink shows an absolute target verbatim"
h_is "$(readlink "$H_MNT/links/rel")" "../../../../../../../..$OUTSIDE/target.txt" "... and a relative one climbing out"
h_is "$(stat -c %F "$H_MNT/links/passwd")" "symbolic link" "lstat says symbolic link"
h_is "$(stat -c %s "$H_MNT/links/passwd")" "11" "its size is the target's length, not /etc/passwd's"
h_is "$(readlink "$H_MNT/links/abs2")" "$OUTSIDE/target2.txt" "a symlink on NFS shadows an S3 object of its name"
h_ok "getfattr -h on the fifo link does not hang" timeout 20 getfattr -h -d -m - "$H_MNT/links/fifo"
timeout 45 "$CTL" migrate --all --wait "$H_MNT" >"$H_TMP/mig.out" 2>&1
h_is "$?" 0 "ferryctl migrate --all --wait on the mount with escaping links exits 0"
h_ok "ferryctl verify --all does not hang on or follow the links" timeout 120 "$CTL" verify --all "$H_MNT"
h_ok "ferryctl scan does not hang on or follow the links" timeout 120 "$CTL" scan "$H_MNT"
h_ok "the S3-only file was migrated (the migrator ran over the directory)" test -f "$H_EXPORT/links/plain.txt"
h_is "$(readlink "$H_EXPORT/links/abs2")" "$OUTSIDE/target2.txt" "the symlink on the export is still the symlink"
h_ok "nothing was written through it ($OUTSIDE/target2.txt does not exist)" test ! -e "$OUTSIDE/target2.txt"
h_is "$(cat "$OUTSIDE/target.txt")" "OUTSIDE-BYTES-must-never-be-read" "the outside target is untouched"
ln -s "$OUTSIDE/target.txt" "$H_MNT/links/made"
ln -s "../../../../etc/passwd" "$H_MNT/links/made-rel"
h_is "$(readlink "$H_EXPORT/links/made")" "$OUTSIDE/target.txt" "a symlink made through the mount is a symlink on the export"
sleep 3       # mirror=async: give the mirror time to copy what it would copy
h_ok "no S3 object holds the outside bytes or /etc/passwd (the mirror did not read through the links)" \
	bash -c "! grep -rqaF 'OUTSIDE-BYTES-must-never-be-read' '$H_S3_DIR' && ! grep -rqaF 'root:x:0:0' '$H_S3_DIR'"
h_ok "the state directory holds none of the outside bytes" bash -c "! grep -rqaF 'OUTSIDE-BYTES' '$H_STATE'"
h_ok "no file was created outside through the symlinked directory" test ! -e "$OUTSIDE/evil.txt"
h_ok "... nor under the export by resolving its target there" test ! -e "$H_EXPORT$OUTSIDE/evil.txt"
h_umount

# The same with the new store as a local directory (nfs=/path: src/store/local.c), where a
# follow would reach the host's files directly.
rm -f "$H_EXPORT/links/made" "$H_EXPORT/links/made-rel"
echo "S3 bytes again" | h_seed_s3 links/abs3
ln -s "$OUTSIDE/target3.txt" "$H_EXPORT/links/abs3"
echo "S3 second file" | h_seed_s3 dirlink/evil2.txt
echo "S3 file for the local store" | h_seed_s3 links/plain2.txt
h_mount "nfs=$H_EXPORT"
h_is "$(readlink "$H_MNT/links/rel")" "../../../../../../../..$OUTSIDE/target.txt" "local store: readlink shows a climbing target verbatim"
h_is "$(stat -c %s "$H_MNT/links/passwd")" "11" "local store: lstat, not stat, of a link to /etc/passwd"
h_ok "local store: getfattr -h on the fifo link does not hang" timeout 20 getfattr -h -d -m - "$H_MNT/links/fifo"
timeout 45 "$CTL" migrate --all --wait "$H_MNT" >"$H_TMP/mig2.out" 2>&1
h_is "$?" 0 "local store: ferryctl migrate --all --wait exits 0"
h_ok "local store: verify --all and scan finish" bash -c "timeout 120 '$CTL' verify --all '$H_MNT' >/dev/null && timeout 120 '$CTL' scan '$H_MNT' >/dev/null"
h_ok "local store: the S3-only file was migrated" test -f "$H_EXPORT/links/plain2.txt"
h_ok "local store: nothing written through a shadowing symlink" test ! -e "$OUTSIDE/target3.txt"
h_ok "local store: no file created outside through a symlinked directory" \
	bash -c "test ! -e '$OUTSIDE/evil.txt' && test ! -e '$OUTSIDE/evil2.txt'"
h_is "$(ls "$OUTSIDE" | tr '\n' ' ')" "target.txt trap.fifo " "local store: the outside directory holds what it held"
h_umount

# --- TLS: a self-signed https endpoint is refused at mount time ---------------------------
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$H_TMP/tls.key" -out "$H_TMP/tls.crt" -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>"$H_TMP/openssl.err"; then
	tls_port=$(h_free_port)
	mkdir -p "$H_TMP/s3tls"
	NODE_OPTIONS=--openssl-legacy-provider h_bg "$H_S3RVER_BIN" -d "$H_TMP/s3tls" -a 127.0.0.1 -p "$tls_port" \
		--key "$H_TMP/tls.key" --cert "$H_TMP/tls.crt" --configure-bucket "$H_BUCKET" --silent >>"$H_TMP/s3tls.log" 2>&1
	H_PIDS+=($!)
	h_wait_for 30 curl -sk -o /dev/null "https://127.0.0.1:$tls_port/" || h_bail "the TLS s3rver did not start"
	TLSBASE="s3_endpoint=https://127.0.0.1:$tls_port,s3_bucket=$H_BUCKET,s3_path_style=1,nfs=$H_NFS_URL,log=stderr"
	timeout 120 "$FERRYFS" "$M" -f -o "$TLSBASE,state_dir=$H_TMP/tls-state" >"$H_TMP/tls1.log" 2>&1
	h_is "$?" 1 "a self-signed https endpoint is refused at mount time (exit 1)"
	h_ok "... naming the cause (certificate)" grep -qiE 'certificate|tls|ssl' "$H_TMP/tls1.log"
	h_ok "... leaving nothing mounted" bash -c "! grep -q ' $M fuse' /proc/mounts"
	mount_debug "$H_TMP/tls2.log" "$TLSBASE,state_dir=$H_TMP/tls-state,s3_ca_file=$H_TMP/tls.crt"
	h_is "$?" 0 "with s3_ca_file naming the CA the mount succeeds"
	h_umount
	mount_debug "$H_TMP/tls3.log" "$TLSBASE,state_dir=$H_TMP/tls-state3,s3_insecure_tls=1"
	h_is "$?" 0 "with s3_insecure_tls=1 the mount succeeds without the CA"
	h_ok "... and logs its loud warning that certificates are not verified" \
		grep -qE 'warning: s3: WARNING: s3_insecure_tls is set: TLS certificates of https://127.0.0.1:[0-9]+ are NOT verified' "$H_TMP/tls3.log"
	h_umount
else
	h_skip "TLS at mount time" "openssl could not make a certificate: $(tail -n 1 "$H_TMP/openssl.err")"
fi

h_done
