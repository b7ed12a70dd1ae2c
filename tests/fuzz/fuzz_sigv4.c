/* fuzz_sigv4.c - libFuzzer target: SigV4 canonicalization and signing (src/s3/sigv4.c) on
 * hostile requests. Input: a control byte (number of query parameters and headers, token
 * on/off), four bytes of time, then NUL-separated fields: method, host, path, payload hash,
 * region, query names/values, header names/values, token. Invariants: no crash or leak;
 * signing is deterministic (twice the same bytes); the encoded URI and query hold only
 * unreserved characters and %XX escapes (plus '/', '=' and '&' where they belong) and
 * decode back to the input; the secret never appears in any output. */
#include <errno.h>

#include "fuzz.h"
#include "s3/sigv4.h"
#include "base/util.h"

#define SECRET "fuzzSECRETkey0123456789/+ABCDEFGHIJKLMNO"

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Decode s (only unreserved, %XX and the characters in extra) into out; 0 if malformed. */
static int decode(const char *s, size_t n, const char *extra, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return 0;
			int hi = util_hexval(s[i + 1]), lo = util_hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (s[i + 1] >= 'a' && s[i + 1] <= 'f') ||
			    (s[i + 2] >= 'a' && s[i + 2] <= 'f'))
				return 0;       /* SigV4 wants upper-case hex */
			char b = (char)(hi * 16 + lo);
			if (unreserved((unsigned char)b))
				return 0;       /* an unreserved byte must not be escaped */
			if (buf_append(out, &b, 1))
				abort();
			i += 2;
		} else if (unreserved(c) || (c && strchr(extra, c))) {
			if (buf_append(out, s + i, 1))
				abort();
		} else {
			return 0;
		}
	}
	return 1;
}

static int same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5 || size > 16 * 1024)
		return 0;
	unsigned ctl = data[0];
	size_t nq = ctl & 7, nh = (ctl >> 3) & 7;
	int with_token = (ctl >> 6) & 1;
	time_t now = (time_t)((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
			      (uint32_t)data[3] << 8 | data[4]) * 4;   /* 1970..2514 */
	const char *f[5 + 2 * 7 + 2 * 7 + 1];
	char *blk = fuzz_fields(data + 5, size - 5, f, ARRAY_SIZE(f));

	struct sigv4_param q[7];
	struct sigv4_header h[7];
	for (size_t i = 0; i < nq; i++)
		q[i] = (struct sigv4_param){ f[5 + 2 * i], f[6 + 2 * i] };
	for (size_t i = 0; i < nh; i++)
		h[i] = (struct sigv4_header){ f[19 + 2 * i], f[20 + 2 * i] };
	const char *hash =
		f[3][0] == 'U' ?
			"UNSIGNED-PAYLOAD" :
		f[3][0] == 'E' ?
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" :
			f[3];
	struct sigv4_request req = {
		.method = f[0], .host = f[1], .path = f[2], .query = q, .nquery = nq,
		.headers = h, .nheaders = nh, .payload_hash = hash,
	};
	struct sigv4_key key = {
		.access_key_id = "AKIAFUZZ", .secret_access_key = SECRET,
		.session_token = with_token ? f[33] : NULL, .region = f[4][0] ? f[4] : "us-east-1",
		.service = "s3",
	};

	struct sigv4_result r1, r2;
	int rc1 = sigv4_sign(&req, &key, now, &r1);
	int rc2 = sigv4_sign(&req, &key, now, &r2);
	FUZZ_CHECK(rc1 == rc2);
	FUZZ_CHECK(rc1 == 0 || rc1 == -EINVAL || rc1 == -ENOMEM);
	if (rc1 == 0) {
		FUZZ_CHECK(same(&r1.canonical_request, &r2.canonical_request));
		FUZZ_CHECK(same(&r1.string_to_sign, &r2.string_to_sign));
		FUZZ_CHECK(same(&r1.authorization, &r2.authorization));
		FUZZ_CHECK(same(&r1.canonical_query, &r2.canonical_query));
		FUZZ_CHECK(same(&r1.canonical_uri, &r2.canonical_uri));
		FUZZ_CHECK(!strcmp(r1.amz_date, r2.amz_date) && strlen(r1.amz_date) == 16);
		if (!memmem(data, size, SECRET, 8)) {  /* an input may hold it on purpose */
			FUZZ_CHECK(!strstr(r1.canonical_request.data, SECRET));
			FUZZ_CHECK(!strstr(r1.string_to_sign.data, SECRET));
			FUZZ_CHECK(!strstr(r1.authorization.data, SECRET));
		}
		FUZZ_CHECK(!strstr(r1.authorization.data, "\n") &&
			   !strstr(r1.authorization.data, "\r"));

		/* The URI: the path encoded once, '/' kept, decoding gives the path back. */
		struct buf d = { 0 };
		const char *path = req.path[0] ? req.path : "/";
		FUZZ_CHECK(decode(r1.canonical_uri.data, r1.canonical_uri.len, "/", &d));
		FUZZ_CHECK(d.len == strlen(path) && memcmp(d.data, path, d.len) == 0);
		buf_reset(&d);
		/* The query: name=value pairs joined by '&', every part encoded. */
		FUZZ_CHECK(decode(r1.canonical_query.data, r1.canonical_query.len, "=&", &d));
		buf_free(&d);
		sigv4_result_free(&r1);
		sigv4_result_free(&r2);
	}

	/* The encoder alone on the raw bytes (NULs included): decodes back to the input. */
	for (int keep = 0; keep < 2; keep++) {
		struct buf e = { 0 }, d = { 0 };
		FUZZ_CHECK(sigv4_uri_encode((const char *)data, size, keep, &e) == 0);
		FUZZ_CHECK(decode(e.data, e.len, keep ? "/" : "", &d));
		FUZZ_CHECK(d.len == size && memcmp(d.data, data, size) == 0);
		buf_free(&e);
		buf_free(&d);
	}
	free(blk);
	return 0;
}
