/* client.h - the S3 client: every S3 request ferryfs makes goes through here.
 *
 * One s3_client per mount. It owns a pool of curl easy handles (cfg->s3_connections) that
 * share DNS, TLS sessions and connections, signs every request with SigV4 (sigv4.h), parses
 * responses with xml.h, retries idempotent requests on transient failures with jittered
 * exponential backoff (cfg->s3_retries) and maps every failure to one -errno.
 *
 * Keys are full S3 keys (the store adds cfg->s3_prefix), raw and unencoded.
 * All functions are safe to call from any number of threads at once; a call blocks while
 * every pooled handle is busy. Credentials are taken from cfg->creds and never logged.
 *
 * Errors: -ENOENT (404 / NoSuchKey / NoSuchBucket), -EACCES (403, bad credentials),
 * -ESTALE (412: the If-Match ETag no longer matches), -EINVAL (400), -EBUSY (409),
 * -ENOTSUP (405 / 501), -EFBIG (413, copy over 5 GiB), -ETIMEDOUT (connect or low-speed
 * timeout after every retry), -ECONNREFUSED / -EHOSTUNREACH (server not reachable),
 * -EPROTO (TLS verification failed, unparseable reply), -EIO (5xx after every retry and
 * anything else), -ENOMEM; or the -errno a caller's sink/source returned. */
#ifndef FERRY_S3_CLIENT_H
#define FERRY_S3_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "s3/xml.h"

struct ferry_config;
struct s3_client;

/* Which optional values an object carried in x-amz-meta-* (s3fs conventions). */
#define S3_META_MODE  0x1u
#define S3_META_UID   0x2u
#define S3_META_GID   0x4u
#define S3_META_MTIME 0x8u

struct s3_meta {
	unsigned have;              /* S3_META_*: which of the fields below are set */
	uint32_t mode;              /* st_mode as s3fs writes it (type and permission bits) */
	uint32_t uid, gid;
	struct timespec mtime;      /* written as decimal seconds */
};

/* What HEAD (or a GET) told about an object. */
struct s3_object_info {
	uint64_t size;
	char etag[80];              /* without quotes */
	struct timespec last_modified;
	struct s3_meta meta;
};

/* Create the client: 0 / -EINVAL (bad endpoint) / -ENOMEM. Logs a warning when TLS
 * verification is off. cfg must outlive the client. */
int s3_client_new(const struct ferry_config *cfg, struct s3_client **out);
void s3_client_free(struct s3_client *c);

/* Cheap check that the endpoint answers and the bucket exists and is readable (HEAD
 * bucket, one retry at most). On failure a one-line cause is logged. */
int s3_probe(struct s3_client *c);

/* HEAD key. */
int s3_head(struct s3_client *c, const char *key, struct s3_object_info *out);

/* 1 when etag (without quotes) can stand for an object's version: not empty, printable,
 * no blank or quote. The writes below never hand back one that is not: when the server's
 * reply has none, the key is read back by HEAD (and "" means unknown). */
int s3_etag_usable(const char *etag);

/* Sink for streamed GETs: consecutive chunks; return 0 to go on or -errno to abort. */
typedef int (*s3_sink_fn)(void *arg, const void *data, size_t len);

/* GET bytes [off, off+len) of key (len UINT64_MAX: to the end) and deliver them to sink
 * as they arrive, never buffering the whole body. if_match (NULL or "": none) pins the
 * object: a different ETag gives -ESTALE. A transfer that fails mid-body resumes with a
 * Range from where it stopped, pinned to the ETag of the first response, so the sink sees
 * every byte exactly once and never bytes of two versions. An off at or past the end
 * delivers nothing and returns 0. info (may be NULL) gets the object's size/ETag/meta.
 * Returns 0 or -errno. */
int s3_get_stream(struct s3_client *c, const char *key, const char *if_match, uint64_t off,
		  uint64_t len, s3_sink_fn sink, void *arg, struct s3_object_info *info);

/* Called once per attempt, before that attempt's first body byte reaches the sink, with the
 * reply's object attributes (size: the whole object's, from Content-Range or
 * Content-Length): a streaming reader learns the ETag before the body. */
typedef void (*s3_info_fn)(void *arg, const struct s3_object_info *info);

/* s3_get_stream, and on_info(arg, ...) as described above (NULL: none). */
int s3_get_stream_info(struct s3_client *c, const char *key, const char *if_match, uint64_t off,
		       uint64_t len, s3_sink_fn sink, s3_info_fn on_info, void *arg,
		       struct s3_object_info *info);

/* GET bytes [off, off+len) into buf: the count read (short only at the end of the
 * object; 0 at or past the end) or -errno. Same pinning and resume rules. */
ssize_t s3_get_range(struct s3_client *c, const char *key, const char *if_match, uint64_t off,
		     size_t len, void *buf);

/* ListObjectsV2. Called once per page with the parsed page (keys and prefixes decoded:
 * requests always use encoding-type=url); return 0 to go on, anything else to stop
 * (s3_list returns it). */
typedef int (*s3_page_fn)(void *arg, const struct s3xml_list *page);
struct s3_list_opts {
	const char *prefix;         /* NULL or "" for the whole bucket */
	const char *delimiter;      /* NULL for none, "/" for directories */
	const char *start_after;    /* NULL for none */
	unsigned max_keys;          /* 0: the server's default (1000) */
	unsigned max_pages;         /* 0: every page */
};
int s3_list(struct s3_client *c, const struct s3_list_opts *o, s3_page_fn fn, void *arg);

/* A body for s3_put: positional reads, so parts can be read in parallel and a retried
 * request can read its bytes again. read returns a count (short only at the end) or
 * -errno. */
typedef ssize_t (*s3_read_fn)(void *arg, void *buf, size_t len, uint64_t off);

/* PUT size bytes from read/arg at key with meta (NULL: none). Bodies of at least
 * cfg->s3_multipart_threshold go by multipart upload (parts of cfg->s3_part_size sent in
 * parallel on several pooled handles; the upload is aborted on any failure). etag_out
 * (may be NULL) gets the new ETag. 0 / -errno. */
int s3_put(struct s3_client *c, const char *key, uint64_t size, s3_read_fn read, void *arg,
	   const struct s3_meta *meta, char etag_out[80]);
/* PUT a memory block (small bodies: the payload hash is computed). */
int s3_put_buf(struct s3_client *c, const char *key, const void *data, size_t len,
	       const struct s3_meta *meta, char etag_out[80]);

/* DELETE key. Deleting a key that does not exist succeeds (S3 semantics). */
int s3_delete(struct s3_client *c, const char *key);

/* Batch delete (POST ?delete, 1000 keys a request, Content-MD5). Returns the number of
 * keys S3 refused to delete (each logged) or -errno. */
int s3_delete_many(struct s3_client *c, const char *const *keys, size_t nkeys);

/* CopyObject from -> to (same bucket), metadata copied. if_match (may be NULL) pins the
 * source: sent as x-amz-copy-source-if-match, and, since a server may ignore that, checked
 * after the copy (the copy's ETag, else a HEAD of the source): -ESTALE when the source is
 * no longer that version (the destination may then hold another version; the source is
 * left alone). etag_out may be NULL. Objects over 5 GiB: -EFBIG. */
int s3_copy(struct s3_client *c, const char *from, const char *to, const char *if_match,
	    char etag_out[80]);

/* The lower-level multipart calls (used by s3_put; exposed for tests and resumable
 * uploads). s3_mpu_complete retries safely: a retry answered NoSuchUpload is checked
 * against the object that the first attempt may have completed. */
int s3_mpu_create(struct s3_client *c, const char *key, const struct s3_meta *meta,
		  char **upload_id);
int s3_mpu_part(struct s3_client *c, const char *key, const char *upload_id, unsigned partno,
		s3_read_fn read, void *arg, uint64_t off, uint64_t len, char etag_out[80]);
int s3_mpu_complete(struct s3_client *c, const char *key, const char *upload_id,
		    const char *const *etags, size_t nparts, char etag_out[80]);
int s3_mpu_abort(struct s3_client *c, const char *key, const char *upload_id);

/* Test knobs (not for production): a max-keys override applied to every listing that
 * does not set one (0 to clear). */
void s3_client_set_list_page(struct s3_client *c, unsigned max_keys);
/* Test knob: connect to another address than the endpoint names, in curl's
 * CURLOPT_CONNECT_TO form "HOST:PORT:CONNECT-HOST:CONNECT-PORT" (NULL to clear). Lets a
 * test reach virtual-hosted names such as BUCKET.s3.amazonaws.com on a local server.
 * Call before the client is used by other threads. 0 / -ENOMEM. */
int s3_client_set_connect_to(struct s3_client *c, const char *spec);

/* The client behind an S3 store made by store_s3_new (NULL for any other store): for
 * tools and tests that need raw S3 calls. Defined in src/store/s3.c. */
struct store;
struct s3_client *store_s3_client(struct store *st);

#endif
