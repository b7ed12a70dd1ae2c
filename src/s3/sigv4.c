/* sigv4.c - AWS Signature Version 4 for S3 requests (see sigv4.h), on OpenSSL 3.0.
 *
 * What S3 wants, and where it differs from the generic SigV4 recipe:
 *  - the canonical URI is the raw path with every byte outside A-Z a-z 0-9 - . _ ~ / written
 *    as %XX, ONCE: S3 neither double-encodes nor normalizes the path ("a//b", "./x" and
 *    "../x" are signed as given, because S3 keys may hold them);
 *  - the canonical query is every name=value with both sides encoded the same way ('/' too),
 *    sorted by encoded name then encoded value; a valueless parameter is "name=";
 *  - canonical headers are lower-cased names, values trimmed with inner runs of blanks
 *    collapsed, sorted by name; repeated names are joined with ',' in the order given.
 *
 * This module must never log, print or keep a secret: the secret access key only feeds the
 * HMAC chain, the derived keys are wiped before returning, and the buffers that hold the
 * session token (canonical request, authorization) are wiped by sigv4_result_free. */
#include "s3/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"

/* One header of the canonical list: name lower-cased, value already trimmed. */
struct sv_header {
	char *name;
	struct buf value;
	size_t order;             /* position in the input, keeps repeated names in order */
};

struct sv_param {
	struct buf name;          /* encoded */
	struct buf value;         /* encoded */
};

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int sigv4_uri_encode(const char *s, size_t n, int keep_slash, struct buf *out)
{
	static const char hexd[] = "0123456789ABCDEF";
	int rc = buf_reserve(out, n * 3);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			out->data[out->len++] = (char)c;
		} else {
			out->data[out->len++] = '%';
			out->data[out->len++] = hexd[c >> 4];
			out->data[out->len++] = hexd[c & 15];
		}
	}
	out->data[out->len] = '\0';
	return 0;
}

/* RFC 7230 token characters: what a header name may be made of. */
static int is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int valid_header_name(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return 0;
	return 1;
}

/* Headers we set ourselves: a caller passing one of them is a bug. */
static int reserved_header(const char *name)
{
	static const char *const names[] = { "host", "x-amz-date", "x-amz-content-sha256",
					     "x-amz-security-token", "authorization" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* Append value trimmed (leading/trailing blanks dropped, inner runs of blanks made one
 * space). A CR, LF or NUL can't be sent in a header at all: -EINVAL. */
static int append_trimmed(struct buf *out, const char *v)
{
	int pending_space = 0, any = 0;
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\r' || c == '\n')
			return -EINVAL;
		if (c == ' ' || c == '\t') {
			pending_space = any;
			continue;
		}
		if (pending_space) {
			int rc = buf_append(out, " ", 1);
			if (rc)
				return rc;
			pending_space = 0;
		}
		int rc = buf_append(out, p, 1);
		if (rc)
			return rc;
		any = 1;
	}
	if (!out->data) /* an empty value still needs a valid string */
		return buf_append(out, "", 0);
	return 0;
}

static int header_cmp(const void *a, const void *b)
{
	const struct sv_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int param_cmp(const void *a, const void *b)
{
	const struct sv_param *x = a, *y = b;
	int c = strcmp(x->name.data, y->name.data);
	return c ? c : strcmp(x->value.data, y->value.data);
}

static int valid_payload_hash(const char *h)
{
	if (!h)
		return 0;
	if (strcmp(h, SIGV4_UNSIGNED) == 0)
		return 1;
	if (strlen(h) != 64)
		return 0;
	for (const char *p = h; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

/* No CR, LF or NUL inside, not empty. */
static int valid_field(const char *s)
{
	return s && *s && !strpbrk(s, "\r\n");
}

static int hmac256(const void *key, size_t keylen, const void *msg, size_t msglen,
		   unsigned char out[32])
{
	unsigned int olen = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &olen) || olen != 32)
		return -EIO;
	return 0;
}

/* The signing key: HMAC chain over date, region, service, "aws4_request". */
static int signing_key(const struct sigv4_key *key, const char date[9], unsigned char out[32])
{
	int rc = -ENOMEM;
	size_t slen = strlen(key->secret_access_key);
	char *k = malloc(slen + 5);
	unsigned char a[32], b[32];
	if (!k)
		return -ENOMEM;
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, key->secret_access_key, slen + 1);
	rc = hmac256(k, slen + 4, date, 8, a);
	if (!rc)
		rc = hmac256(a, 32, key->region, strlen(key->region), b);
	if (!rc)
		rc = hmac256(b, 32, key->service, strlen(key->service), a);
	if (!rc)
		rc = hmac256(a, 32, "aws4_request", 12, out);
	OPENSSL_cleanse(k, slen + 5);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	free(k);
	return rc;
}

static void free_headers(struct sv_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		buf_free_secure(&h[i].value);
	}
	free(h);
}

static void free_params(struct sv_param *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_free(&p[i].name);
		buf_free(&p[i].value);
	}
	free(p);
}

static int add_header(struct sv_header *h, size_t *n, const char *name, const char *value)
{
	struct sv_header *e = &h[*n];
	memset(e, 0, sizeof(*e));
	e->order = *n;
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	(*n)++;
	for (char *p = e->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return append_trimmed(&e->value, value);
}

/* Canonical query into out->canonical_query. */
static int build_query(const struct sigv4_request *req, struct sigv4_result *out)
{
	int rc = 0;
	if (req->nquery == 0)
		return buf_append(&out->canonical_query, "", 0);
	if (!req->query)
		return -EINVAL;
	struct sv_param *p = calloc(req->nquery, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < req->nquery; i++) {
		const char *name = req->query[i].name, *value = req->query[i].value;
		if (!name || !*name) {
			rc = -EINVAL;
			goto out_params;
		}
		if (!value)
			value = "";
		rc = sigv4_uri_encode(name, strlen(name), 0, &p[i].name);
		if (!rc)
			rc = sigv4_uri_encode(value, strlen(value), 0, &p[i].value);
		if (!rc && !p[i].value.data)
			rc = buf_append(&p[i].value, "", 0);
		if (rc)
			goto out_params;
	}
	qsort(p, req->nquery, sizeof(*p), param_cmp);
	for (size_t i = 0; i < req->nquery && !rc; i++) {
		if (i)
			rc = buf_append(&out->canonical_query, "&", 1);
		if (!rc)
			rc = buf_append(&out->canonical_query, p[i].name.data, p[i].name.len);
		if (!rc)
			rc = buf_append(&out->canonical_query, "=", 1);
		if (!rc)
			rc = buf_append(&out->canonical_query, p[i].value.data, p[i].value.len);
	}
out_params:
	free_params(p, req->nquery);
	return rc;
}

void sigv4_result_free(struct sigv4_result *r)
{
	if (!r)
		return;
	buf_free_secure(&r->canonical_request);
	buf_free_secure(&r->string_to_sign);
	buf_free_secure(&r->authorization);
	buf_free(&r->canonical_query);
	buf_free(&r->canonical_uri);
	memset(r->amz_date, 0, sizeof(r->amz_date));
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key, time_t now,
	       struct sigv4_result *out)
{
	int rc = 0;
	struct sv_header *hs = NULL;
	size_t nh = 0;
	struct buf signed_headers = { 0 };
	unsigned char kmac[32], sig[32], crhash[32];
	char hex[65], date[9], scope[256];
	struct tm tm;
	unsigned int mdlen = 0;

	memset(out, 0, sizeof(*out));
	if (!req || !key || !valid_field(req->method) || !valid_field(req->host) ||
	    !valid_payload_hash(req->payload_hash) || !valid_field(key->access_key_id) ||
	    !key->secret_access_key || !valid_field(key->region) || !valid_field(key->service) ||
	    (req->nheaders && !req->headers))
		return -EINVAL;
	if (req->path && req->path[0] && req->path[0] != '/')
		return -EINVAL;
	const char *token = key->session_token && *key->session_token ? key->session_token : NULL;
	if (token && strpbrk(token, "\r\n"))
		return -EINVAL;
	if (!gmtime_r(&now, &tm) || tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999)
		return -EINVAL;
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';
	int n = snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, key->region,
			 key->service);
	if (n < 0 || (size_t)n >= sizeof(scope))
		return -EINVAL;

	/* Canonical URI: the path encoded once, '/' kept, nothing normalized. */
	const char *path = req->path && req->path[0] ? req->path : "/";
	rc = sigv4_uri_encode(path, strlen(path), 1, &out->canonical_uri);
	if (rc)
		goto out_result;
	rc = build_query(req, out);
	if (rc)
		goto out_result;

	/* Headers: ours, then the caller's. */
	hs = calloc(req->nheaders + 4, sizeof(*hs));
	if (!hs) {
		rc = -ENOMEM;
		goto out_result;
	}
	rc = add_header(hs, &nh, "host", req->host);
	if (!rc)
		rc = add_header(hs, &nh, "x-amz-content-sha256", req->payload_hash);
	if (!rc)
		rc = add_header(hs, &nh, "x-amz-date", out->amz_date);
	if (!rc && token)
		rc = add_header(hs, &nh, "x-amz-security-token", token);
	for (size_t i = 0; i < req->nheaders && !rc; i++) {
		const struct sigv4_header *h = &req->headers[i];
		if (!valid_header_name(h->name) || !h->value || reserved_header(h->name))
			rc = -EINVAL;
		else
			rc = add_header(hs, &nh, h->name, h->value);
	}
	if (rc)
		goto out_headers;
	qsort(hs, nh, sizeof(*hs), header_cmp);

	/* Canonical request. Reserve generously first so that the session token is not left
	 * behind in a buffer that realloc gave back. */
	struct buf *cr = &out->canonical_request;
	size_t need = strlen(req->method) + out->canonical_uri.len + out->canonical_query.len + 256;
	for (size_t i = 0; i < nh; i++)
		need += strlen(hs[i].name) * 2 + hs[i].value.len + 4;
	rc = buf_reserve(cr, need);
	if (!rc)
		rc = buf_printf(cr, "%s\n%s\n%s\n", req->method, out->canonical_uri.data,
				out->canonical_query.data);
	for (size_t i = 0; i < nh && !rc; i++) {
		int repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
		if (repeat) {
			rc = buf_append(cr, ",", 1);
		} else {
			if (i)
				rc = buf_append(cr, "\n", 1);
			if (!rc)
				rc = buf_printf(cr, "%s:", hs[i].name);
		}
		if (!rc)
			rc = buf_append(cr, hs[i].value.data, hs[i].value.len);
	}
	if (!rc)
		rc = buf_append(cr, "\n\n", 2);
	for (size_t i = 0; i < nh && !rc; i++) {
		if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0)
			continue;
		if (signed_headers.len)
			rc = buf_append(&signed_headers, ";", 1);
		if (!rc)
			rc = buf_puts(&signed_headers, hs[i].name);
	}
	if (!rc)
		rc = buf_printf(cr, "%s\n%s", signed_headers.data, req->payload_hash);
	if (rc)
		goto out_signed;

	/* String to sign. */
	if (!EVP_Digest(cr->data, cr->len, crhash, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		rc = -EIO;
		goto out_signed;
	}
	util_hex(crhash, 32, hex);
	rc = buf_printf(&out->string_to_sign, SIGV4_ALGO "\n%s\n%s\n%s", out->amz_date, scope, hex);
	if (rc)
		goto out_signed;

	/* Signature and Authorization header (the AWS documentation's form: no blanks). */
	rc = signing_key(key, date, kmac);
	if (!rc)
		rc = hmac256(kmac, 32, out->string_to_sign.data, out->string_to_sign.len, sig);
	OPENSSL_cleanse(kmac, sizeof(kmac));
	if (rc)
		goto out_signed;
	util_hex(sig, 32, hex);
	rc = buf_printf(&out->authorization,
			SIGV4_ALGO " Credential=%s/%s,SignedHeaders=%s,Signature=%s",
			key->access_key_id, scope, signed_headers.data, hex);
out_signed:
	buf_free(&signed_headers);
out_headers:
	free_headers(hs, nh);
out_result:
	if (rc)
		sigv4_result_free(out);
	return rc;
}
