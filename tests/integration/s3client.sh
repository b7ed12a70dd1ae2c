#!/bin/bash
# s3client.sh - the S3 client and the S3 store against a real s3rver: every operation,
# odd keys, listings of many pages (a max-keys knob, and 3500 keys in real 1000-key pages),
# zero-byte objects, If-Match pinning, store stat/readdir semantics, and a 110 MiB multipart
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

want=$(cat "$H_TMP/big.sha256" 2>/dev/null)
got=$(h_aws s3 cp "s3://$H_BUCKET/$S3TEST_BIGKEY" - | sha256sum | cut -d' ' -f1)
h_is "$got" "$want" "awscli reads the multipart upload back byte-identical"
size=$(h_aws s3api head-object --bucket "$H_BUCKET" --key "$S3TEST_BIGKEY" --query ContentLength --output text)
h_is "$size" $(((110 << 20) + 12345)) "awscli sees the object's size"
h_done
