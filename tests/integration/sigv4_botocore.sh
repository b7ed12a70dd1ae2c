#!/bin/bash
# sigv4_botocore.sh - our SigV4 signer (src/s3/sigv4.c, driven by tests/integ/sigv4_sign)
# against botocore's S3SigV4Auth (tests/tools/botocore_sign.py) on a table of requests with
# odd keys, queries, headers and a session token. s3rver does not verify signatures, so this
# and the AWS worked examples in tests/unit/test_sigv4.c are what prove our signing.
# Needs no server. Without botocore in /usr/bin/python3 it skips, except under CI=true.
#
# Each case compares the Authorization header and the URL (path, and the query as a set)
# that each side would send: botocore signs the URL it builds, so equal URLs and equal
# signatures mean both sign the same bytes.

set -u
H_SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$H_SRC/tests/lib/harness.sh"

OURS=${abs_top_builddir:-$H_SRC}/tests/integ/sigv4_sign
THEIRS="$H_SRC/tests/tools/botocore_sign.py"

$PY3 -c 'import botocore.auth' 2>/dev/null || h_cannot "/usr/bin/python3 has no botocore (apt-get install python3-botocore)"
[ -x "$OURS" ] || h_cannot "tests/integ/sigv4_sign is not built ($OURS)"

TMPD=$(mktemp -d /tmp/ferryfs-sigv4.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT

# --- building a description ------------------------------------------------------------
# f FIELD VALUE [VALUE2]: one line of the description (values may use \t \n \xHH escapes).
f() {
	if [ $# -ge 3 ]; then
		printf '%s\t%s\t%s\n' "$1" "$2" "$3"
	else
		printf '%s\t%s\n' "$1" "$2"
	fi
}
aws_creds() {
	f access_key AKIAIOSFODNN7EXAMPLE
	f secret_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
	f time 20130524T000000Z
}
local_creds() {   # s3rver-like endpoint, a secret holding '+' and '/', another date
	f host 127.0.0.1:4567
	f access_key S3RVER
	f secret_key 'S3RVER+secret/with=odd+chars'
	f time 20261123T013516Z
}

# normalize FILE: the query as a sorted set, so the parameter order does not matter, and
# "uploads" the same as "uploads=" (botocore leaves a valueless parameter bare in its URL,
# we send "uploads="; both sign "uploads=" and S3 reads them alike).
normalize() {
	awk -F': ' '/^query: /{ q=substr($0, 8); n=split(q, a, "&"); s="";
		cmd="LC_ALL=C sort"; for (i=1;i<=n;i++) if (a[i]!="") print (a[i] ~ /=/ ? a[i] : a[i] "=") | cmd; close(cmd);
		next } { print }' "$1"
}

check() {   # check NAME  (description on stdin; not in a pipeline: it counts TAP points)
	local name=$1 desc="$TMPD/desc" ours theirs
	cat > "$desc"
	if ! "$OURS" < "$desc" > "$TMPD/ours" 2> "$TMPD/ours.err"; then
		h_is "ours failed: $(cat "$TMPD/ours.err")" "" "$name"
		return
	fi
	if ! $PY3 "$THEIRS" < "$desc" > "$TMPD/theirs" 2> "$TMPD/theirs.err"; then
		h_is "botocore failed: $(tail -n 3 "$TMPD/theirs.err")" "" "$name"
		return
	fi
	ours=$(normalize "$TMPD/ours")
	theirs=$(normalize "$TMPD/theirs")
	if ! h_is "$ours" "$theirs" "$name"; then
		"$OURS" -v < "$desc" 2>&1 >/dev/null | h_diag "$(cat)"
		$PY3 "$THEIRS" -v < "$desc" 2>&1 >/dev/null | h_diag "$(cat)"
	fi
}

# --- the table ----------------------------------------------------------------------------

check "AWS example: GET Object with Range" < <(
  f method GET; f host examplebucket.s3.amazonaws.com; f path /test.txt
  f header Range bytes=0-9; aws_creds)

check "AWS example: PUT Object (without the Date header botocore rewrites)" < <(
  f method PUT; f host examplebucket.s3.amazonaws.com; f path '/test$file.text'
  f header x-amz-storage-class REDUCED_REDUNDANCY; f body 'Welcome to Amazon S3.'
  aws_creds)

check "AWS example: GET Bucket lifecycle (valueless parameter)" < <(
  f method GET; f host examplebucket.s3.amazonaws.com; f path /; f param lifecycle
  aws_creds)

check "AWS example: List Objects" < <(
  f method GET; f host examplebucket.s3.amazonaws.com; f path /
  f param max-keys 2; f param prefix J; aws_creds)

check "key with spaces" < <(
  f method GET; f path '/bkt/my key with  two spaces.txt'; local_creds)

check "key with +" < <(
  f method GET; f path '/bkt/C++/a+b=c.txt'; local_creds)

check "key with % and an escape-looking %25" < <(
  f method GET; f path '/bkt/100%/50%25 off.txt'; local_creds)

check "key with ~" < <(
  f method GET; f path '/bkt/~user/.profile~'; local_creds)

check "unicode key (UTF-8 bytes)" < <(
  f method PUT; f path '/bkt/été/日本語/😀 ünïcödé.txt'; f body 'x'; local_creds)

check "key with = & ; : @ # ? ! * ( ) '" < <(
  f method GET; f path '/bkt/k=v&x=y;z:w@h#f?q!*(x)'"'"; local_creds)

check "key with // . .. segments is not normalized" < <(
  f method GET; f path '/bkt/a//b/./c/../d/'; local_creds)

check "key with tab, newline and DEL bytes" < <(
  f method GET; f path '/bkt/tab\there\nnewline\x7f'; local_creds)

check "ListObjectsV2 page with prefix, delimiter, continuation token" < <(
  f method GET; f path /bkt; f param list-type 2; f param prefix 'photos/2024 trip/'
  f param delimiter /; f param encoding-type url
  f param continuation-token '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM='
  local_creds)

check "= & + and unicode in query values" < <(
  f method GET; f path /bkt; f param list-type 2; f param prefix 'été/ü+a b'
  f param start-after 'x=1&y=2'; local_creds)

check "repeated and odd parameter names sort by encoded name, then value" < <(
  f method GET; f path /bkt; f param 'k' b; f param 'k' a; f param 'a b' 1
  f param 'a+b' 2; f param 'A' 3; local_creds)

check "CreateMultipartUpload (?uploads)" < <(
  f method POST; f path '/bkt/big file.bin'; f param uploads
  f header Content-Type application/octet-stream; local_creds)

check "UploadPart (partNumber, uploadId)" < <(
  f method PUT; f path '/bkt/big file.bin'; f param partNumber 3
  f param uploadId 'VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA+/='
  f body 'part three data'; local_creds)

check "CompleteMultipartUpload with an XML body" < <(
  f method POST; f path '/bkt/big file.bin'; f param uploadId 'abc+/='
  f header Content-Type application/xml
  f body '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part></CompleteMultipartUpload>'
  local_creds)

check "x-amz-meta-* headers, mixed case, blanks trimmed and collapsed, a repeated name" < <(
  f method PUT; f path '/bkt/dir/file.txt'; f body 'hello'
  f header x-amz-meta-mode 0100644; f header x-amz-meta-uid 1000
  f header x-amz-meta-gid 1000; f header x-amz-meta-mtime '1795484116.123456789'
  f header X-Amz-Meta-Note '  spaced    out   value  '; f header Content-Type 'text/plain'
  f header x-amz-meta-list one; f header X-Amz-Meta-List ' two  too '
  local_creds)

check "CopyObject with metadata replaced" < <(
  f method PUT; f path '/bkt/dst key.txt'; f header x-amz-copy-source '/bkt/src%20key.txt'
  f header x-amz-metadata-directive REPLACE; f header x-amz-meta-mode 0100600
  f header x-amz-copy-source-if-match '"9b2cf535f27731c974343645a3985328"'
  local_creds)

check "ranged GET with If-Match and a session token" < <(
  f method GET; f path '/bkt/big file.bin'; f header Range 'bytes=1048576-2097151'
  f header If-Match '"d41d8cd98f00b204e9800998ecf8427e-3"'; local_creds
  f token 'FQoGZXIvYXdzEBYaDH+/sessionTOKEN==')

check "UNSIGNED-PAYLOAD with a session token" < <(
  f method PUT; f path '/bkt/stream.bin'; f unsigned 1; local_creds
  f token 'IQoJb3JpZ2luX2VjEJ//////////wEaCXVzLWVhc3QtMSJH+token')

check "DELETE" < <(
  f method DELETE; f path '/bkt/old file (1).txt'; local_creds)

check "virtual-hosted HEAD in another region" < <(
  f method HEAD; f host bkt.s3.eu-west-1.amazonaws.com; f path '/key with space'
  f region eu-west-1; f access_key AKIDEXAMPLE; f secret_key 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
  f time 20150830T123600Z)

check "DeleteObjects (?delete) with Content-MD5" < <(
  f method POST; f path /bkt; f param delete; f header Content-MD5 'XrY7u+Ae7tCTyyK7j1rNww=='
  f body '<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object></Delete>'
  local_creds)

# The comparison itself must notice a one-character difference (a wrong secret).
{ f method GET; f path /bkt/k; local_creds; } > "$TMPD/neg"
sed 's/^secret_key\t.*/secret_key\tS3RVER+secret\/with=odd+chart/' "$TMPD/neg" > "$TMPD/neg2"
a=$("$OURS" < "$TMPD/neg2" | head -n 1)
b=$($PY3 "$THEIRS" < "$TMPD/neg" | head -n 1)
h_ok "a different secret gives a different Authorization" test -n "$a" -a -n "$b" -a "$a" != "$b"

h_done
