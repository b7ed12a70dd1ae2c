/* client-impl.h - what the two halves of the S3 client share: client.c (the request engine:
 * the handle pool, signing, one attempt, retries, the client's life cycle) and ops.c (the S3
 * operations built on it). Internal to src/s3: nothing outside includes it. */
#ifndef FERRY_S3_CLIENT_IMPL_H
#define FERRY_S3_CLIENT_IMPL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "s3/client.h"
#include "s3/sigv4.h"
#include "s3/sse.h"
#include "base/util.h"

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_SMALL_BODY (1u << 20)          /* bodies up to this are hashed, larger streamed */
#define S3_RESP_MAX (64u << 20)           /* cap for buffered XML replies */
#define S3_ERRBODY_MAX (16u << 10)        /* cap for error bodies kept for parsing */
#define S3_BACKOFF_BASE_MS 100
#define S3_BACKOFF_CAP_MS 5000
#define S3_MAX_PARTS 10000
#define S3_MAX_COPY (5ull << 30)
#define S3_MAX_HDRS 12
#define S3_MAX_QUERY 8

/* The locks of struct s3_client are described at the top of client.c. */
struct s3_client {
	const struct ferry_config *cfg;
	struct creds *creds;    /* the credentials (s3/creds.h: thread-safe on its own) */
	struct s3_sse sse;      /* encryption / payer headers (s3/sse.h), set once */
	char *scheme;           /* "http" or "https" */
	char *host;             /* the Host header, also the URL's authority */
	char *base;             /* path before the key: "/bucket" (path-style), "" (virtual),
				 * plus any endpoint path */
	char *url_prefix;       /* scheme://host */
	char *endpoint;         /* for messages */
	int path_style;
	unsigned retries;
	long timeout;
	uint64_t part_size;
	uint64_t mp_threshold;
	atomic_uint list_page;  /* test knob: default max-keys */
	atomic_int region_warned; /* the wrong-region error was logged */
	struct curl_slist *connect_to; /* test knob, set before use */

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST]; /* libcurl's shared data, one each */

	pthread_mutex_t pool_lock; /* free[] and nfree; a leaf */
	pthread_cond_t pool_cond;  /* a handle was given back */
	CURL **handles;         /* all handles, nhandles of them */
	unsigned nhandles;
	CURL **free;            /* protected by pool_lock: idle handles */
	unsigned nfree;         /* protected by pool_lock */
};

/* ------------------------------------------------------------------------------------
 * Requests and responses */

struct s3_req {
	const char *method;     /* GET HEAD PUT POST DELETE */
	const char *key;        /* NULL: the bucket itself */
	struct sigv4_param query[S3_MAX_QUERY];
	size_t nquery;
	struct sigv4_header hdrs[S3_MAX_HDRS];
	size_t nhdrs;
	int has_body;           /* PUT/POST: send a body (possibly empty) */
	const void *mem;        /* body from memory ... */
	size_t memlen;
	s3_read_fn rd;          /* ... or from a positional source */
	void *rdarg;
	uint64_t rdoff, rdlen;
	int idempotent;
	int max_retries;        /* -1: cfg->s3_retries */
	const char *pin;        /* GET: the ETag the reply must carry (checked here as well as
				 * by If-Match, since some servers ignore If-Match) */
	int enoent_ok;          /* ENOENT is an answer, not an error: log at debug only */
	struct buf *resp;       /* 2xx body collected here (NULL: discarded) */
	/* streaming GET */
	s3_sink_fn sink;
	s3_info_fn on_info;     /* the reply's attributes, before its first body byte */
	void *sink_arg;
	uint64_t range_start;   /* what was asked in the Range header */
	int ranged;
	uint64_t want;          /* bytes still wanted in this attempt (UINT64_MAX: all) */
};

struct s3_resp {
	long status;
	struct s3_object_info info;
	int have_length;
	uint64_t content_length;
	int have_range;
	uint64_t range_first;   /* from Content-Range */
	uint64_t range_total;
	char request_id[128];
	char bucket_region[32]; /* x-amz-bucket-region, when sent */
	struct buf errbody;
	/* body accounting */
	uint64_t skip;          /* bytes to drop (a 200 answering a ranged request) */
	uint64_t got;           /* bytes given to the sink / resp buffer */
	int enough;             /* stopped on purpose after `want` bytes */
	int past_end;           /* a 206 for a range past the object's end: see s3_on_header */
	int body_started;
	int sink_rc;            /* -errno from the sink or the source */
	uint64_t upos;          /* upload position */
	struct s3_req *req;
	CURL *h;
};
void s3_add_hdr(struct s3_req *r, const char *name, const char *value);
void s3_add_query(struct s3_req *r, const char *name, const char *value);
void s3_req_init(struct s3_req *r, const char *method, const char *key);
/* Jittered exponential backoff: sleep a random delay in [d/2, d], d = 100 ms * 2^attempt,
 * capped at 5 s. */
void s3_backoff(unsigned attempt);
/* 1 when an S3 error code is worth a retry whatever the HTTP status. */
int s3_code_transient(const char *code);
/* Send rq once. Returns 0 or -errno; *transient says whether another try may succeed.
 * rs is filled with what the response said (status, headers, body accounting). */
int s3_attempt(struct s3_client *c, struct s3_req *rq, struct s3_resp *rs, int *transient);
/* Send rq, retrying transient failures of idempotent requests. */
int s3_perform(struct s3_client *c, struct s3_req *rq, struct s3_resp *rs);

#endif
