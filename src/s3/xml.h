/* xml.h - parsing (and building) the XML documents of the S3 API with expat.
 * Malformed, truncated or hostile input (entity expansion, huge text, deep nesting)
 * gives -EPROTO, never a crash. No I/O, no global state: safe from any thread. */
#ifndef FERRY_S3_XML_H
#define FERRY_S3_XML_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/util.h"

struct s3xml_object {
	char *key;                 /* decoded when the listing was url-encoded */
	uint64_t size;
	char etag[80];             /* without quotes */
	struct timespec last_modified;
	char storage_class[24];    /* "" when the listing names none (STANDARD) */
};

struct s3xml_list {            /* a ListObjectsV2 result page */
	struct s3xml_object *objects;
	size_t nobjects;
	char **prefixes;           /* CommonPrefixes, decoded */
	size_t nprefixes;
	int is_truncated;
	char *next_token;          /* NextContinuationToken or NULL */
	int url_encoded;           /* EncodingType was "url": keys/prefixes above are decoded */
};

/* 0 / -EPROTO (not a ListBucketResult, malformed, bad number) / -ENOMEM.
 * A key that decodes to something holding a NUL byte is dropped and counted in
 * *dropped (may be NULL); so is a key or prefix with a bad %-escape or an empty one.
 * With EncodingType=url, '+' decodes to a space (S3 sends a literal '+' as %2B).
 * A <Contents> needs Key and Size (ETag and LastModified may be absent: "" and 0).
 * IsTruncated=true without a NextContinuationToken is -EPROTO (it could not be continued).
 * On error *out is left empty (nothing to free). */
int s3xml_parse_list(const char *xml, size_t len, struct s3xml_list *out, size_t *dropped);
void s3xml_list_free(struct s3xml_list *l);

struct s3xml_error {           /* an <Error> document */
	char code[64];
	char message[256];
	char request_id[128];
};
/* 0 when xml is an <Error> document (fields filled, truncated if long), -EPROTO otherwise. */
int s3xml_parse_error(const char *xml, size_t len, struct s3xml_error *out);

/* InitiateMultipartUploadResult -> *upload_id (malloc'd). 0 / -EPROTO / -ENOMEM. */
int s3xml_parse_initiate(const char *xml, size_t len, char **upload_id);
/* CompleteMultipartUploadResult -> etag (may be NULL). An <Error> document (S3 can send
 * one with status 200) gives -EIO with err filled when err is non-NULL. */
int s3xml_parse_complete(const char *xml, size_t len, char etag[80], struct s3xml_error *err);
/* CopyObjectResult -> etag and last-modified; an <Error> document gives -EIO as above. */
int s3xml_parse_copy(const char *xml, size_t len, char etag[80], struct timespec *last_modified,
		     struct s3xml_error *err);
/* DeleteResult: calls fn for every <Error> entry (key, code); returns the number of errors
 * (>= 0) or -EPROTO; an <Error> document (the whole request failed) gives -EIO. */
int s3xml_parse_delete(const char *xml, size_t len,
		       void (*fn)(void *arg, const char *key, const char *code), void *arg);

/* Builders (XML-escaped). Append to out; 0 / -ENOMEM / -EINVAL (no parts or keys, more
 * than 10000 parts or 1000 keys, an empty one, or a key that XML 1.0 cannot carry: invalid
 * UTF-8 or a control byte other than TAB, LF, CR). Part i+1 has etags[i], quoted if it is
 * not already. The delete body asks for Quiet mode: only failures come back. On error out
 * is as it was. */
int s3xml_build_complete(const char *const *etags, size_t nparts, struct buf *out);
int s3xml_build_delete(const char *const *keys, size_t nkeys, struct buf *out);

/* The answer of STS AssumeRole or AssumeRoleWithWebIdentity: the credentials (malloc'd;
 * s3xml_sts_free wipes the secrets) and Expiration as sent (ISO 8601). Returns 0 when all
 * four are there, each once; -EIO for an ErrorResponse (error.code/message filled, nothing
 * else); -EPROTO for anything else (nothing to free); -ENOMEM. */
struct s3xml_sts {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char expiration[40];
	struct s3xml_error error;
};
int s3xml_parse_sts(const char *xml, size_t len, struct s3xml_sts *out);
void s3xml_sts_free(struct s3xml_sts *s);

#endif
