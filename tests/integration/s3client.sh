#!/bin/bash
# s3client.sh - the S3 client and the S3 store against a real s3rver: every operation,
# odd keys, listings of many pages (a max-keys knob, and 3500 keys in real 1000-key pages),
# zero-byte objects, If-Match pinning, store stat/readdir semantics, https peer verification
# (a second s3rver with a self-signed certificate), and a 110 MiB multipart
# upload that awscli (a client nobody here wrote) must read back byte-identical.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init
h_start_s3

PROG=${S3CLIENT_PROG:-$H_BUILD/tests/integ/s3client}
[ -x "$PROG" ] || h_cannot "tests/integ/s3client is not built"
export S3_URL=$H_S3_URL S3_BUCKET=$H_BUCKET S3TEST_OUT=$H_TMP S3TEST_BIGKEY="big dir/object+1.bin"

suite() {
	local out rc
	out=$("$PROG" --ascii -j1 --filter "$1/*" 2>&1)
	rc=$?
	printf '%s\n' "$out" >>"$H_TMP/s3client.log"
	grep -E '^\[====\]' <<<"$out" | sed 's/^/# /'
	h_ok "suite $1: $2" test "$rc" = 0 || h_diag "$(grep -B2 -A4 -E 'FAIL|Assert' <<<"$out" | tail -n 40)"
}

suite client "probe, put/head/get/delete, metadata, odd keys, zero bytes, pages, copy, batch delete, multipart"
suite store "stat/readdir semantics (dir wins, markers), pinned reads, writes"
suite big "110 MiB multipart round trip, ranged and streamed reads"

# TLS: a second s3rver over https with a self-signed certificate for 127.0.0.1 (the
# client's TLS, not the server's S3: run once, against s3rver)
if [ "$H_S3_KIND" = rgw ]; then
	h_diag "the https suite runs in s3client.sh (against s3rver)"
elif openssl req -x509 -newkey rsa:2048 -nodes -keyout "$H_TMP/tls.key" -out "$H_TMP/tls.crt" -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>"$H_TMP/openssl.err"; then
	tls_port=$(h_free_port)
	mkdir -p "$H_TMP/s3tls"
	NODE_OPTIONS=--openssl-legacy-provider h_bg "$H_S3RVER_BIN" -d "$H_TMP/s3tls" -a 127.0.0.1 -p "$tls_port" \
		--key "$H_TMP/tls.key" --cert "$H_TMP/tls.crt" --configure-bucket "$H_BUCKET" --silent >>"$H_TMP/s3tls.log" 2>&1
	h_wait_for 30 curl -sk -o /dev/null "https://127.0.0.1:$tls_port/" || h_bail "the TLS s3rver did not start"
	S3_TLS_URL=https://127.0.0.1:$tls_port S3_TLS_CA=$H_TMP/tls.crt suite tls \
		"https: self-signed peer refused by default, accepted with s3_ca_file or s3_insecure_tls"
else
	h_skip "https suite" "openssl could not make a certificate: $(tail -n 1 "$H_TMP/openssl.err")"
fi

if [ "$H_S3_KIND" = rgw ]; then
	h_ok "requests carry User-Agent ferryfs/VERSION (RGW's log)" \
		grep -q '"ferryfs/[0-9]' "$H_CEPH_DIR/log/client.rgw.a.log"
fi

want=$(cat "$H_TMP/big.sha256" 2>/dev/null)
got=$(h_aws s3 cp "s3://$H_BUCKET/$S3TEST_BIGKEY" - | sha256sum | cut -d' ' -f1)
h_is "$got" "$want" "awscli reads the multipart upload back byte-identical"
size=$(h_aws s3api head-object --bucket "$H_BUCKET" --key "$S3TEST_BIGKEY" --query ContentLength --output text)
h_is "$size" $(((110 << 20) + 12345)) "awscli sees the object's size"
h_done
