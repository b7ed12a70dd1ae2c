/* sigv4.h - AWS Signature Version 4 for S3 requests, written on OpenSSL (Debian's curl
 * 7.88 predates many canonicalization fixes of its built-in signer, so we sign ourselves).
 * Pure functions: no I/O, no global state, safe from any thread. */
#ifndef FERRY_SIGV4_H
#define FERRY_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "base/util.h"

struct sigv4_param {          /* one query parameter, raw (not yet URI-encoded) */
	const char *name;
	const char *value;        /* "" for a valueless parameter such as ?uploads */
};

struct sigv4_header {         /* one header to sign and send, name in any case */
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;       /* "GET", "PUT", ... */
	const char *host;         /* the Host header exactly as sent: "bkt.s3.amazonaws.com",
				   * "127.0.0.1:4567" */
	const char *path;         /* raw path, not encoded: "/bucket/my key+1.txt" ("/" at least) */
	const struct sigv4_param *query;
	size_t nquery;
	const struct sigv4_header *headers; /* extra headers to sign (range, x-amz-meta-*,
					     * content-type, ...) */
	size_t nheaders;
	const char *payload_hash; /* lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
};

struct sigv4_key {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" when none */
	const char *region;        /* "us-east-1" */
	const char *service;       /* "s3" */
};

/* What sigv4_sign produces. All strings are owned by the struct; sigv4_result_free frees. */
struct sigv4_result {
	char amz_date[17];        /* "20261123T013516Z": send as x-amz-date */
	struct buf canonical_request;
	struct buf string_to_sign;
	struct buf authorization; /* the value of the Authorization header */
	struct buf canonical_query; /* the encoded query string to put in the URL (sorted) */
	struct buf canonical_uri;   /* the encoded path to put in the URL */
};

/* Sign req at time now. The signed headers are host, x-amz-content-sha256, x-amz-date,
 * x-amz-security-token (when a token is set) and every header in req->headers. 0 / -ENOMEM
 * / -EINVAL. The secret never leaves this function except inside the HMAC. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key, time_t now,
	       struct sigv4_result *out);
void sigv4_result_free(struct sigv4_result *r);

/* RFC 3986 encoding as SigV4 wants it: unreserved A-Z a-z 0-9 - . _ ~ kept, every other
 * byte %XX (upper-case hex); '/' kept when keep_slash. Appends to out. */
int sigv4_uri_encode(const char *s, size_t n, int keep_slash, struct buf *out);

#endif
