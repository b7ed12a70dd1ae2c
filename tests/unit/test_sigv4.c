/* test_sigv4.c - SigV4 signing checked against the worked examples that AWS publishes
 * ("Signature Calculations for the Authorization Header: Transferring Payload in a Single
 * Chunk", S3 API reference), then each canonicalization step on its own: URI encoding of odd
 * keys, query sorting, header trimming, the session token, and refused input.
 * Table-driven in the manner of curl's tests/unit/unit1979.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "s3/sigv4.h"
#include "base/util.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define AWS_T 1369353600 /* 20130524T000000Z */

static const struct sigv4_key aws_key = {
	.access_key_id = "AKIAIOSFODNN7EXAMPLE",
	.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "s3",
};

/* ---- The four S3 examples of the AWS documentation -------------------------------- */

struct aws_case {
	const char *name;
	const char *method;
	const char *path;
	struct sigv4_param query[2];
	size_t nquery;
	struct sigv4_header headers[2];
	size_t nheaders;
	const char *payload_hash;
	const char *canonical_request;   /* as published */
	const char *sts_hash;            /* last line of the published StringToSign */
	const char *authorization;       /* as published */
};

static const struct aws_case aws_cases[] = {
	{
		.name = "GET Object (Range)",
		.method = "GET",
		.path = "/test.txt",
		.headers = { { "Range", "bytes=0-9" } },
		.nheaders = 1,
		.payload_hash = EMPTY_SHA256,
		.canonical_request = "GET\n/test.txt\n\n"
				     "host:examplebucket.s3.amazonaws.com\n"
				     "range:bytes=0-9\n"
				     "x-amz-content-sha256:" EMPTY_SHA256 "\n"
				     "x-amz-date:20130524T000000Z\n\n"
				     "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
		.sts_hash = "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
		.authorization =
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
			"s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
			"Signature="
			"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	},
	{
		.name = "PUT Object",
		.method = "PUT",
		.path = "/test$file.text",
		.headers = { { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
			     { "x-amz-storage-class", "REDUCED_REDUNDANCY" } },
		.nheaders = 2,
		.payload_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		.canonical_request =
			"PUT\n/test%24file.text\n\n"
			"date:Fri, 24 May 2013 00:00:00 GMT\n"
			"host:examplebucket.s3.amazonaws.com\n"
			"x-amz-content-sha256:"
			"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
			"x-amz-date:20130524T000000Z\n"
			"x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
			"date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
			"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		.sts_hash = "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
		.authorization =
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
			"s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
			"x-amz-storage-class,"
			"Signature="
			"98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	},
	{
		.name = "GET Bucket Lifecycle",
		.method = "GET",
		.path = "/",
		.query = { { "lifecycle", "" } },
		.nquery = 1,
		.payload_hash = EMPTY_SHA256,
		.canonical_request = "GET\n/\nlifecycle=\n"
				     "host:examplebucket.s3.amazonaws.com\n"
				     "x-amz-content-sha256:" EMPTY_SHA256 "\n"
				     "x-amz-date:20130524T000000Z\n\n"
				     "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
		.sts_hash = "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
		.authorization =
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
			"s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
			"Signature="
			"fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
	},
	{
		.name = "Get Bucket (List Objects)",
		.method = "GET",
		.path = "/",
		/* given out of order on purpose: the signer sorts */
		.query = { { "prefix", "J" }, { "max-keys", "2" } },
		.nquery = 2,
		.payload_hash = EMPTY_SHA256,
		.canonical_request = "GET\n/\nmax-keys=2&prefix=J\n"
				     "host:examplebucket.s3.amazonaws.com\n"
				     "x-amz-content-sha256:" EMPTY_SHA256 "\n"
				     "x-amz-date:20130524T000000Z\n\n"
				     "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
		.sts_hash = "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
		.authorization =
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
			"s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
			"Signature="
			"34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
	},
};

Test(sigv4, aws_documentation_examples)
{
	for (size_t i = 0; i < ARRAY_SIZE(aws_cases); i++) {
		const struct aws_case *c = &aws_cases[i];
		struct sigv4_request req = {
			.method = c->method, .host = "examplebucket.s3.amazonaws.com",
			.path = c->path, .query = c->query, .nquery = c->nquery,
			.headers = c->headers, .nheaders = c->nheaders,
			.payload_hash = c->payload_hash,
		};
		struct sigv4_result r;
		cr_assert_eq(sigv4_sign(&req, &aws_key, AWS_T, &r), 0, "%s", c->name);
		cr_expect_str_eq(r.amz_date, "20130524T000000Z", "%s", c->name);
		cr_expect_str_eq(r.canonical_request.data, c->canonical_request, "%s", c->name);
		char sts[256];
		snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n20130524T000000Z\n"
			 "20130524/us-east-1/s3/aws4_request\n%s", c->sts_hash);
		cr_expect_str_eq(r.string_to_sign.data, sts, "%s", c->name);
		cr_expect_str_eq(r.authorization.data, c->authorization, "%s", c->name);
		sigv4_result_free(&r);
	}
}

Test(sigv4, aws_put_example_payload_hash)
{
	/* The PUT example's body is "Welcome to Amazon S3." */
	char hex[65];
	const char *body = "Welcome to Amazon S3.";
	cr_assert_eq(util_sha256_hex(body, strlen(body), hex), 0);
	cr_expect_str_eq(hex, aws_cases[1].payload_hash);
	cr_assert_eq(util_sha256_hex("", 0, hex), 0);
	cr_expect_str_eq(hex, EMPTY_SHA256);
}

/* ---- URI encoding --------------------------------------------------------------------- */

struct enc_case {
	const char *in;
	int keep_slash;
	const char *want;
};

static const struct enc_case enc_cases[] = {
	{ "", 1, "" },
	{ "AZaz09-._~", 0, "AZaz09-._~" },
	{ "my key.txt", 1, "my%20key.txt" },
	{ "a+b", 1, "a%2Bb" },
	{ "100%", 1, "100%25" },
	{ "%41", 1, "%2541" },                 /* never decoded, never double-encoded twice */
	{ "~user", 1, "~user" },
	{ "a/b/c", 1, "a/b/c" },
	{ "a/b/c", 0, "a%2Fb%2Fc" },
	{ "k=v&x", 0, "k%3Dv%26x" },
	{ "*!'()", 1, "%2A%21%27%28%29" },
	{ "test$file.text", 1, "test%24file.text" },
	{ "\xc3\xa9t\xc3\xa9", 1, "%C3%A9t%C3%A9" },   /* "été" as UTF-8 bytes */
	{ "\xe2\x82\xac", 1, "%E2%82%AC" },            /* euro sign */
	{ "\xf0\x9f\x98\x80", 1, "%F0%9F%98%80" },     /* emoji, 4 bytes */
	{ "tab\there", 1, "tab%09here" },
	{ "line\nbreak", 1, "line%0Abreak" },
	{ "\x7f\xff", 1, "%7F%FF" },
	{ "semi;colon:at@hash#q?", 1, "semi%3Bcolon%3Aat%40hash%23q%3F" },
};

Test(sigv4, uri_encode)
{
	for (size_t i = 0; i < ARRAY_SIZE(enc_cases); i++) {
		struct buf b = { 0 };
		const struct enc_case *c = &enc_cases[i];
		cr_assert_eq(sigv4_uri_encode(c->in, strlen(c->in), c->keep_slash, &b), 0);
		cr_expect_str_eq(b.data ? b.data : "", c->want, "case %zu (%s)", i, c->in);
		buf_free(&b);
	}
	/* Embedded NUL byte is encoded, not a terminator. */
	struct buf b = { 0 };
	cr_assert_eq(sigv4_uri_encode("a\0b", 3, 1, &b), 0);
	cr_expect_str_eq(b.data, "a%00b");
	buf_free(&b);
}

/* ---- Canonical URI and query through sigv4_sign -------------------------------------- */

static int sign_simple(const char *path, const struct sigv4_param *q, size_t nq,
		       const struct sigv4_header *h, size_t nh, const struct sigv4_key *key,
		       struct sigv4_result *r)
{
	struct sigv4_request req = {
		.method = "GET", .host = "127.0.0.1:4567", .path = path,
		.query = q, .nquery = nq, .headers = h, .nheaders = nh,
		.payload_hash = "UNSIGNED-PAYLOAD",
	};
	return sigv4_sign(&req, key ? key : &aws_key, AWS_T, r);
}

struct path_case {
	const char *path;
	const char *want;
};

static const struct path_case path_cases[] = {
	{ NULL, "/" },
	{ "", "/" },
	{ "/", "/" },
	{ "/bucket/my key+1.txt", "/bucket/my%20key%2B1.txt" },
	{ "/bkt/a//b/./c/../d", "/bkt/a//b/./c/../d" },     /* S3: no normalization */
	{ "/bkt/dir/", "/bkt/dir/" },
	{ "/bkt/100%/x", "/bkt/100%25/x" },
	{ "/bkt/%2F", "/bkt/%252F" },
	{ "/bkt/~tilde", "/bkt/~tilde" },
	{ "/bkt/caf\xc3\xa9 \xe2\x98\x95", "/bkt/caf%C3%A9%20%E2%98%95" },
	{ "/bkt/k=v&x=y", "/bkt/k%3Dv%26x%3Dy" },
};

Test(sigv4, canonical_uri)
{
	for (size_t i = 0; i < ARRAY_SIZE(path_cases); i++) {
		struct sigv4_result r;
		cr_assert_eq(sign_simple(path_cases[i].path, NULL, 0, NULL, 0, NULL, &r), 0);
		cr_expect_str_eq(r.canonical_uri.data, path_cases[i].want, "case %zu", i);
		/* the second line of the canonical request is the same string */
		const char *nl = strchr(r.canonical_request.data, '\n');
		cr_assert(nl);
		cr_expect_eq(strncmp(nl + 1, path_cases[i].want, strlen(path_cases[i].want)), 0);
		cr_expect_eq(nl[1 + strlen(path_cases[i].want)], '\n');
		sigv4_result_free(&r);
	}
}

Test(sigv4, path_must_be_absolute)
{
	struct sigv4_result r;
	cr_expect_eq(sign_simple("test.txt", NULL, 0, NULL, 0, NULL, &r), -EINVAL);
}

struct query_case {
	const char *name;
	struct sigv4_param q[5];
	size_t n;
	const char *want;
};

static const struct query_case query_cases[] = {
	{ "valueless", { { "uploads", "" } }, 1, "uploads=" },
	{ "valueless NULL", { { "uploads", NULL } }, 1, "uploads=" },
	{ "part upload",
	  { { "uploadId", "VXBsb2FkIElE+/=" }, { "partNumber", "7" } },
	  2,
	  "partNumber=7&uploadId=VXBsb2FkIElE%2B%2F%3D" },
	{ "list v2",
	  { { "list-type", "2" },
	    { "prefix", "photos/2024 trip/" },
	    { "continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=" },
	    { "delimiter", "/" },
	    { "encoding-type", "url" } },
	  5,
	  "continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D&delimiter=%2F&"
	  "encoding-type=url&list-type=2&prefix=photos%2F2024%20trip%2F" },
	{ "= and & in values",
	  { { "a", "x=1&y=2" }, { "b", "&=" } },
	  2,
	  "a=x%3D1%26y%3D2&b=%26%3D" },
	{ "repeated names sort by value",
	  { { "k", "b" }, { "k", "a" }, { "k", "" } },
	  3,
	  "k=&k=a&k=b" },
	{ "upper case sorts first (byte order)",
	  { { "b", "1" }, { "B", "2" }, { "a", "3" } },
	  3,
	  "B=2&a=3&b=1" },
	/* sorted by ENCODED name: "a%20b" < "a%2Bb" < "a-b" < "ab" */
	{ "sorted by encoded name",
	  { { "ab", "4" }, { "a-b", "3" }, { "a+b", "2" }, { "a b", "1" } },
	  4,
	  "a%20b=1&a%2Bb=2&a-b=3&ab=4" },
	{ "unicode and tilde", { { "prefix", "\xc3\xa9~" } }, 1, "prefix=%C3%A9~" },
};

Test(sigv4, canonical_query)
{
	for (size_t i = 0; i < ARRAY_SIZE(query_cases); i++) {
		const struct query_case *c = &query_cases[i];
		struct sigv4_result r;
		cr_assert_eq(sign_simple("/", c->q, c->n, NULL, 0, NULL, &r), 0, "%s", c->name);
		cr_expect_str_eq(r.canonical_query.data, c->want, "%s", c->name);
		char third[512];
		snprintf(third, sizeof(third), "GET\n/\n%s\n", c->want);
		cr_expect_eq(strncmp(r.canonical_request.data, third, strlen(third)), 0, "%s",
			     c->name);
		sigv4_result_free(&r);
	}
	struct sigv4_result r;
	cr_assert_eq(sign_simple("/", NULL, 0, NULL, 0, NULL, &r), 0);
	cr_expect_str_eq(r.canonical_query.data, "");
	sigv4_result_free(&r);
	struct sigv4_param bad = { "", "x" };
	cr_expect_eq(sign_simple("/", &bad, 1, NULL, 0, NULL, &r), -EINVAL);
}

/* ---- Headers ----------------------------------------------------------------------- */

/* The headers block of a canonical request: after the third line, up to the blank line. */
static void headers_block(const struct sigv4_result *r, char *out, size_t outsz)
{
	const char *p = r->canonical_request.data;
	for (int i = 0; i < 3; i++)
		p = strchr(p, '\n') + 1;
	const char *end = strstr(p, "\n\n");
	size_t n = (size_t)(end - p);
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

Test(sigv4, canonical_headers)
{
	const struct sigv4_header h[] = {
		{ "X-Amz-Meta-Mode", "  0644  " },
		{ "Content-Type", "text/plain;   charset=utf-8" },
		{ "x-amz-meta-note", "a\t \tb   c" },
		{ "X-AMZ-META-MODE", "0600" },        /* repeated name: joined in order */
		{ "Range", "bytes=0-9" },
		{ "x-amz-meta-empty", "   " },
	};
	struct sigv4_result r;
	cr_assert_eq(sign_simple("/b/k", NULL, 0, h, ARRAY_SIZE(h), NULL, &r), 0);
	char blk[1024];
	headers_block(&r, blk, sizeof(blk));
	cr_expect_str_eq(blk,
		"content-type:text/plain; charset=utf-8\n"
		"host:127.0.0.1:4567\n"
		"range:bytes=0-9\n"
		"x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
		"x-amz-date:20130524T000000Z\n"
		"x-amz-meta-empty:\n"
		"x-amz-meta-mode:0644,0600\n"
		"x-amz-meta-note:a b c");
	cr_expect(strstr(r.authorization.data,
		",SignedHeaders=content-type;host;range;x-amz-content-sha256;x-amz-date;"
		"x-amz-meta-empty;x-amz-meta-mode;x-amz-meta-note,Signature="));
	/* the payload hash is the last line */
	size_t len = r.canonical_request.len;
	cr_expect_str_eq(r.canonical_request.data + len - strlen("UNSIGNED-PAYLOAD"),
			 "UNSIGNED-PAYLOAD");
	sigv4_result_free(&r);
}

Test(sigv4, session_token_is_signed)
{
	struct sigv4_key k = aws_key;
	k.session_token = "FQoGZXIvYXdzEBYaDH+/=token";
	struct sigv4_result r, r0;
	cr_assert_eq(sign_simple("/b/k", NULL, 0, NULL, 0, &k, &r), 0);
	cr_expect(strstr(r.canonical_request.data,
			 "\nx-amz-security-token:FQoGZXIvYXdzEBYaDH+/=token\n\n"));
	cr_expect(
		strstr(r.authorization.data,
		       "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
	/* an empty token is no token */
	k.session_token = "";
	cr_assert_eq(sign_simple("/b/k", NULL, 0, NULL, 0, &k, &r0), 0);
	cr_expect_null(strstr(r0.canonical_request.data, "security-token"));
	cr_expect_str_neq(r.authorization.data, r0.authorization.data);
	/* no secret in anything we hand back */
	cr_expect_null(strstr(r.authorization.data, aws_key.secret_access_key));
	cr_expect_null(strstr(r.canonical_request.data, aws_key.secret_access_key));
	cr_expect_null(strstr(r.string_to_sign.data, aws_key.secret_access_key));
	sigv4_result_free(&r);
	sigv4_result_free(&r0);
}

Test(sigv4, signature_depends_on_every_input)
{
	struct sigv4_result base, r;
	cr_assert_eq(sign_simple("/b/k", NULL, 0, NULL, 0, NULL, &base), 0);
	struct sigv4_key k = aws_key;
	k.region = "eu-west-1";
	cr_assert_eq(sign_simple("/b/k", NULL, 0, NULL, 0, &k, &r), 0);
	cr_expect(strstr(r.authorization.data, "/20130524/eu-west-1/s3/aws4_request,"));
	cr_expect_str_neq(r.authorization.data, base.authorization.data);
	sigv4_result_free(&r);
	k = aws_key;
	k.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
	cr_assert_eq(sign_simple("/b/k", NULL, 0, NULL, 0, &k, &r), 0);
	cr_expect_str_neq(r.authorization.data, base.authorization.data);
	sigv4_result_free(&r);
	cr_assert_eq(sign_simple("/b/K", NULL, 0, NULL, 0, NULL, &r), 0);
	cr_expect_str_neq(r.authorization.data, base.authorization.data);
	sigv4_result_free(&r);
	sigv4_result_free(&base);
}

Test(sigv4, date_format)
{
	struct sigv4_request req = { .method = "GET", .host = "h", .path = "/",
				     .payload_hash = EMPTY_SHA256 };
	struct sigv4_result r;
	cr_assert_eq(sigv4_sign(&req, &aws_key, 1795469716, &r), 0); /* 2026-11-23 21:35:16 */
	cr_expect_str_eq(r.amz_date, "20261123T213516Z");
	cr_expect(strstr(r.authorization.data, "Credential=AKIAIOSFODNN7EXAMPLE/20261123/"));
	sigv4_result_free(&r);
}

Test(sigv4, refuses_bad_input)
{
	struct sigv4_result r;
	const struct sigv4_header crlf = { "x-amz-meta-a", "v\r\nInjected: 1" };
	cr_expect_eq(sign_simple("/", NULL, 0, &crlf, 1, NULL, &r), -EINVAL);
	const struct sigv4_header lf = { "x-amz-meta-a", "v\nx" };
	cr_expect_eq(sign_simple("/", NULL, 0, &lf, 1, NULL, &r), -EINVAL);
	const struct sigv4_header badname = { "bad name", "v" };
	cr_expect_eq(sign_simple("/", NULL, 0, &badname, 1, NULL, &r), -EINVAL);
	const struct sigv4_header colon = { "a:b", "v" };
	cr_expect_eq(sign_simple("/", NULL, 0, &colon, 1, NULL, &r), -EINVAL);
	const struct sigv4_header empty = { "", "v" };
	cr_expect_eq(sign_simple("/", NULL, 0, &empty, 1, NULL, &r), -EINVAL);
	const char *reserved[] = { "Host", "X-Amz-Date", "x-amz-content-sha256",
				   "X-Amz-Security-Token", "Authorization" };
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		const struct sigv4_header h = { reserved[i], "x" };
		cr_expect_eq(sign_simple("/", NULL, 0, &h, 1, NULL, &r), -EINVAL, "%s",
			     reserved[i]);
	}
	struct sigv4_request req = { .method = "GET", .host = "h", .path = "/" };
	const char *bad_hashes[] = {
		NULL, "", "unsigned-payload", EMPTY_SHA256 "0",
		"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_hashes); i++) {
		req.payload_hash = bad_hashes[i];
		cr_expect_eq(sigv4_sign(&req, &aws_key, AWS_T, &r), -EINVAL, "hash %zu", i);
	}
	req.payload_hash = EMPTY_SHA256;
	req.host = "h\r\nX: y";
	cr_expect_eq(sigv4_sign(&req, &aws_key, AWS_T, &r), -EINVAL);
	req.host = NULL;
	cr_expect_eq(sigv4_sign(&req, &aws_key, AWS_T, &r), -EINVAL);
	req.host = "h";
	struct sigv4_key k = aws_key;
	k.session_token = "tok\nen";
	cr_expect_eq(sigv4_sign(&req, &k, AWS_T, &r), -EINVAL);
	k = aws_key;
	k.secret_access_key = NULL;
	cr_expect_eq(sigv4_sign(&req, &k, AWS_T, &r), -EINVAL);
	/* after a refusal the result is empty and freeing it is harmless */
	cr_expect_null(r.authorization.data);
	sigv4_result_free(&r);
}
