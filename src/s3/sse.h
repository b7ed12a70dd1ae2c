/* sse.h - the bucket features that ride on request headers: server-side encryption
 * (s3_sse=AES256|aws:kms, s3_sse_kms_key_id), customer keys (SSE-C, s3_sse_c_key_file)
 * and Requester Pays (s3_request_payer). Loaded once with the client; the customer key
 * lives only here and in the headers of the requests that need it (never logged). */
#ifndef FERRY_SSE_H
#define FERRY_SSE_H

#include <stddef.h>

#include "s3/sigv4.h"

struct ferry_config;

struct s3_sse {
	const char *sse;            /* "AES256", "aws:kms" or NULL */
	const char *kms_key_id;     /* NULL: the bucket's default key */
	int customer;               /* SSE-C: key_b64 and md5_b64 are set */
	char key_b64[48];           /* base64 of the 32-byte key: a secret */
	char md5_b64[32];           /* base64 of its MD5 */
	int request_payer;
};

/* Read cfg's options (and the customer key from its file, which must be a regular file
 * owned by this user and readable by no one else, holding the 32 key bytes raw or as
 * base64). 0 / -EINVAL (logged, naming the file and why, never the key) / -errno. */
int s3_sse_load(const struct ferry_config *cfg, struct s3_sse *out);
void s3_sse_wipe(struct s3_sse *s);

/* What a request is, for s3_sse_headers */
#define S3_SSE_OBJECT  0x1u   /* it names an object (not the bucket) */
#define S3_SSE_WRITE   0x2u   /* PUT of an object or CreateMultipartUpload: a new object */
#define S3_SSE_READ    0x4u   /* GET/HEAD of an object, or UploadPart (SSE-C only) */
#define S3_SSE_COPY    0x8u   /* CopyObject: the source is read too */

/* Append the headers a request of this kind needs to out (room for at most max, which
 * must be >= 8). Returns the number appended. */
size_t s3_sse_headers(const struct s3_sse *s, unsigned kind, struct sigv4_header *out,
		      size_t max);

#endif
