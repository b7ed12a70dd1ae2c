/* client.c - the S3 client (see client.h): requests signed with SigV4, sent over a pool of
 * curl easy handles, retried when the failure is transient, mapped to -errno.
 *
 * It must never log a credential, an Authorization header or a request's headers, and
 * never retry a request that is not idempotent.
 *
 * DESIGN
 * - One request = a struct s3_req (method, key, query, signed extra headers, body source,
 *   response sink). s3_attempt() sends it once on a pooled handle: it signs afresh (the
 *   date is part of the signature), sets every option (the handle was reset), performs,
 *   and turns the outcome into 0 / -errno plus a "transient" flag. s3_perform() loops
 *   s3_attempt() with jittered exponential backoff; the streaming GET has its own loop
 *   that resumes with a Range where the previous attempt stopped.
 * - Bodies sent are either a memory block (payload hash computed) or a positional source
 *   (UNSIGNED-PAYLOAD); either can be rewound, so curl may resend them.
 *
 * LOCKS (lock order: pool_lock is never held while a share lock is taken, since handles
 * are performed outside pool_lock; the share locks are taken only by libcurl, one at a
 * time, and never nest with each other or with pool_lock)
 * - pool_lock protects free[]/nfree (which handles are idle); pool_cond is signalled when
 *   a handle is returned. A handle taken from the pool belongs to one thread until given
 *   back, so nothing else about a handle needs a lock.
 * - share_locks[d] protect libcurl's shared data d (DNS cache, TLS sessions, connection
 *   cache) inside the CURLSH; libcurl calls s3_share_lock/unlock around each access.
 * - Everything else in struct s3_client is written once in s3_client_new and read-only
 *   afterwards (list_page is an atomic test knob). */
#include "s3/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/cfg.h"
#include "base/log.h"
#include "s3/sigv4.h"
#include "s3/xml.h"
#include "base/stats.h"
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

struct s3_client {
	const struct ferry_config *cfg;
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

static pthread_once_t s3_global_once = PTHREAD_ONCE_INIT;
static void s3_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ------------------------------------------------------------------------------------
 * Small helpers */

static void s3_add_hdr(struct s3_req *r, const char *name, const char *value)
{
	if (r->nhdrs < S3_MAX_HDRS) {
		r->hdrs[r->nhdrs].name = name;
		r->hdrs[r->nhdrs].value = value;
		r->nhdrs++;
	}
}

static void s3_add_query(struct s3_req *r, const char *name, const char *value)
{
	if (r->nquery < S3_MAX_QUERY) {
		r->query[r->nquery].name = name;
		r->query[r->nquery].value = value;
		r->nquery++;
	}
}

static void s3_req_init(struct s3_req *r, const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->key = key;
	r->idempotent = 1;
	r->max_retries = -1;
	r->want = UINT64_MAX;
}

/* Thread-local xorshift for backoff jitter. */
static unsigned s3_rand(void)
{
	static _Thread_local uint64_t s;
	if (!s)
		s = util_now_ns() ^ ((uint64_t)(uintptr_t)&s << 16) ^ 0x9e3779b97f4a7c15ull;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (unsigned)(s >> 11);
}

/* Jittered exponential backoff: a random delay in [d/2, d], d = base * 2^attempt, capped. */
static void s3_backoff(unsigned attempt)
{
	unsigned d = S3_BACKOFF_BASE_MS;
	for (unsigned i = 0; i < attempt && d < S3_BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > S3_BACKOFF_CAP_MS)
		d = S3_BACKOFF_CAP_MS;
	util_sleep_ms(d / 2 + s3_rand() % (d / 2 + 1));
}

static void s3_strip_etag(const char *v, size_t n, char out[80])
{
	while (n && (*v == '"' || *v == ' ')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '"' || v[n - 1] == ' ' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	if (n > 79)
		n = 79;
	memcpy(out, v, n);
	out[n] = '\0';
}

static int s3_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "1700000000" or "1700000000.25" (s3fs writes whole seconds; others add a fraction); a
 * time before 1970 is negative ("-1", "-1.5": 1.5 s before the epoch). Any time a time_t
 * holds is kept, whatever the new store can take. */
static int s3_parse_mtime(const char *s, struct timespec *out)
{
	uint64_t sec;
	int neg = *s == '-';
	if (s3_parse_u64(s + neg, &sec) || sec > (uint64_t)INT64_MAX)
		return -EINVAL;
	const char *p = s + neg;
	while (*p >= '0' && *p <= '9')
		p++;
	long nsec = 0;
	if (*p == '.') {
		long scale = 100000000;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			nsec += (*p - '0') * scale;
			scale /= 10;
		}
	}
	out->tv_sec = neg ? -(time_t)sec : (time_t)sec;
	out->tv_nsec = nsec;
	if (neg && nsec) {              /* -1.5 s: tv_sec -2, tv_nsec 0.5 s */
		out->tv_sec--;
		out->tv_nsec = 1000000000L - nsec;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------
 * curl callbacks */

static size_t s3_on_header(char *line, size_t size, size_t n, void *arg)
{
	struct s3_resp *rs = arg;
	size_t len = size * n;
	char tmp[1024];
	if (len >= sizeof(tmp))
		return len;  /* a header we do not care about (no header of ours is that long) */
	memcpy(tmp, line, len);
	tmp[len] = '\0';
	while (len && (tmp[len - 1] == '\r' || tmp[len - 1] == '\n'))
		tmp[--len] = '\0';

	if (strncmp(tmp, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): forget the previous one's headers */
		memset(&rs->info, 0, sizeof(rs->info));
		rs->have_length = rs->have_range = 0;
		rs->request_id[0] = '\0';
		const char *sp = strchr(tmp, ' ');
		rs->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return size * n;
	}
	if (!tmp[0] && rs->status == 206 && rs->have_range == 1 &&
	    rs->range_first >= rs->range_total) {
		/* The end of the headers of a 206 whose range starts at or past the end of the
		 * object: s3rver 3.7.1 answers any range of an empty object so ("Content-Range:
		 * bytes 0-0/0", "Content-Length: 1", no body ever), where S3 answers 416. Stop
		 * here (rather than wait for the missing byte until the server drops the
		 * connection, then retry) and treat it as the 416 it means. */
		rs->past_end = 1;
		return 0;
	}
	char *colon = strchr(tmp, ':');
	if (!colon)
		return size * n;
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	const char *name = tmp;
	uint64_t u;
	if (strcasecmp(name, "etag") == 0) {
		s3_strip_etag(v, strlen(v), rs->info.etag);
	} else if (strcasecmp(name, "content-length") == 0) {
		if (s3_parse_u64(v, &rs->content_length) == 0)
			rs->have_length = 1;
	} else if (strcasecmp(name, "content-range") == 0) {
		/* "bytes 0-99/1234" or "bytes * /1234" */
		unsigned long long a, b, t;
		const char *slash = strchr(v, '/');
		if (sscanf(v, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
			rs->have_range = 1;
			rs->range_first = a;
			rs->range_total = t;
		} else if (slash && s3_parse_u64(slash + 1, &u) == 0) {
			rs->range_total = u;
			rs->have_range = 2;
		}
	} else if (strcasecmp(name, "last-modified") == 0) {
		util_parse_http_date(v, &rs->info.last_modified);
	} else if (strcasecmp(name, "x-amz-request-id") == 0) {
		snprintf(rs->request_id, sizeof(rs->request_id), "%s", v);
	} else if (strncasecmp(name, "x-amz-meta-", 11) == 0) {
		const char *m = name + 11;
		struct s3_meta *meta = &rs->info.meta;
		if (strcasecmp(m, "mode") == 0 && s3_parse_u64(v, &u) == 0 && u <= UINT32_MAX) {
			meta->mode = (uint32_t)u;
			meta->have |= S3_META_MODE;
		} else if (strcasecmp(m, "uid") == 0 && s3_parse_u64(v, &u) == 0 &&
			   u <= UINT32_MAX) {
			meta->uid = (uint32_t)u;
			meta->have |= S3_META_UID;
		} else if (strcasecmp(m, "gid") == 0 && s3_parse_u64(v, &u) == 0 &&
			   u <= UINT32_MAX) {
			meta->gid = (uint32_t)u;
			meta->have |= S3_META_GID;
		} else if (strcasecmp(m, "mtime") == 0 && s3_parse_mtime(v, &meta->mtime) == 0) {
			meta->have |= S3_META_MTIME;
		}
	}
	return size * n;
}

static size_t s3_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct s3_resp *rs = arg;
	struct s3_req *rq = rs->req;
	size_t len = size * n;
	if (rs->status < 200 || rs->status >= 300) {
		if (rs->errbody.len < S3_ERRBODY_MAX &&
		    buf_append(&rs->errbody, data, len < S3_ERRBODY_MAX ? len : S3_ERRBODY_MAX))
			return 0;
		return len;
	}
	if (!rs->body_started) {
		rs->body_started = 1;
		if (rs->status == 200 && rq->ranged)
			rs->skip = rq->range_start;  /* the server ignored our Range */
		if (rq->pin && rq->pin[0] && rs->info.etag[0] &&
		    strcmp(rq->pin, rs->info.etag) != 0) {
			rs->sink_rc = -ESTALE;
			return 0;
		}
		if (rq->on_info) {
			struct s3_object_info oi = rs->info;
			oi.size = rs->have_range ? rs->range_total
				  : rs->have_length ? rs->content_length : 0;
			rq->on_info(rq->sink_arg, &oi);
		}
	}
	if (rs->skip) {
		size_t k = rs->skip < len ? (size_t)rs->skip : len;
		rs->skip -= k;
		data += k;
		len -= k;
		if (!len)
			return size * n;
	}
	size_t take = len;
	if (rq->want != UINT64_MAX && rs->got + take > rq->want)
		take = (size_t)(rq->want - rs->got);
	if (take) {
		if (rq->sink) {
			int rc = rq->sink(rq->sink_arg, data, take);
			if (rc) {
				rs->sink_rc = rc < 0 ? rc : -EIO;
				return 0;
			}
		} else if (rq->resp) {
			if (rq->resp->len + take > S3_RESP_MAX ||
			    buf_append(rq->resp, data, take)) {
				rs->sink_rc = -ENOMEM;
				return 0;
			}
		}
		rs->got += take;
	}
	if (take < len) {
		rs->enough = 1;   /* the server sent more than asked (it ignored the Range) */
		return 0;
	}
	return size * n;
}

static size_t s3_on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct s3_resp *rs = arg;
	struct s3_req *rq = rs->req;
	size_t len = size * n;
	uint64_t total = rq->mem ? rq->memlen : rq->rdlen;
	if (rs->upos >= total)
		return 0;
	if (len > total - rs->upos)
		len = (size_t)(total - rs->upos);
	if (rq->mem) {
		memcpy(buf, (const char *)rq->mem + rs->upos, len);
	} else {
		size_t done = 0;
		while (done < len) {
			ssize_t r = rq->rd(rq->rdarg, buf + done, len - done,
					   rq->rdoff + rs->upos + done);
			if (r < 0) {
				rs->sink_rc = (int)r;
				return CURL_READFUNC_ABORT;
			}
			if (r == 0) {
				rs->sink_rc = -EIO;  /* the source is shorter than it said */
				return CURL_READFUNC_ABORT;
			}
			done += (size_t)r;
		}
	}
	rs->upos += len;
	return len;
}

static int s3_on_seek(void *arg, curl_off_t off, int origin)
{
	struct s3_resp *rs = arg;
	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	rs->upos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static void s3_share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *arg)
{
	(void)h;
	(void)a;
	struct s3_client *c = arg;
	if ((unsigned)d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[d]);
}

static void s3_share_unlock(CURL *h, curl_lock_data d, void *arg)
{
	(void)h;
	struct s3_client *c = arg;
	if ((unsigned)d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[d]);
}

/* ------------------------------------------------------------------------------------
 * The handle pool */

static CURL *s3_pool_get(struct s3_client *c)
{
	pthread_mutex_lock(&c->pool_lock);
	while (c->nfree == 0)
		pthread_cond_wait(&c->pool_cond, &c->pool_lock);
	CURL *h = c->free[--c->nfree];
	pthread_mutex_unlock(&c->pool_lock);
	return h;
}

static void s3_pool_put(struct s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	c->free[c->nfree++] = h;
	pthread_cond_signal(&c->pool_cond);
	pthread_mutex_unlock(&c->pool_lock);
}

/* ------------------------------------------------------------------------------------
 * Error mapping */

/* S3 error codes that are worth a retry whatever the status. */
static int s3_code_transient(const char *code)
{
	static const char *const codes[] = { "SlowDown", "InternalError", "ServiceUnavailable",
		"RequestTimeout", "RequestTimeTooSkewed", "OperationAborted", "Throttling",
		"ThrottlingException", "RequestLimitExceeded", "TooManyRequests" };
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

static int s3_map_http(long status, const char *code, int *transient)
{
	*transient = 0;
	if (code[0] && s3_code_transient(code)) {
		*transient = 1;
		return status == 400 && strcmp(code, "RequestTimeout") == 0 ? -ETIMEDOUT : -EIO;
	}
	if (strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchBucket") == 0 ||
	    strcmp(code, "NoSuchUpload") == 0)
		return -ENOENT;
	if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0 ||
	    strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0)
		return -EACCES;
	if (strcmp(code, "EntityTooLarge") == 0)
		return -EFBIG;
	switch (status) {
	case 400: return -EINVAL;
	case 401:
	case 403: return -EACCES;
	case 404: return -ENOENT;
	case 405: return -ENOTSUP;
	case 409: return -EBUSY;
	case 411: return -EINVAL;
	case 412: return -ESTALE;
	case 413: return -EFBIG;
	case 416: return -EINVAL;
	case 501: return -ENOTSUP;
	case 408:
		*transient = 1;
		return -ETIMEDOUT;
	case 429:
		*transient = 1;
		return -EIO;
	default:
		break;
	}
	if (status >= 500)
		*transient = 1;
	return -EIO;
}

static int s3_map_curl(CURLcode cc, int *transient)
{
	*transient = 0;
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		*transient = 1;
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		*transient = 1;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		*transient = 1;
		return -EIO;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* ------------------------------------------------------------------------------------
 * One attempt */

static int s3_set_common(struct s3_client *c, CURL *h, struct s3_resp *rs, char *errbuf)
{
	const struct ferry_config *cfg = c->cfg;
	curl_easy_reset(h);
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout);
	bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout);
	bad |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_on_header);
	bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_on_body);
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
	if (cfg->s3_ca_file && cfg->s3_ca_file[0])
		bad |= curl_easy_setopt(h, CURLOPT_CAINFO, cfg->s3_ca_file);
	if (c->connect_to)
		bad |= curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
	if (cfg->s3_insecure_tls) {
		bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return bad ? -EINVAL : 0;
}

/* Send rq once. Returns 0 or -errno; *transient says whether another try may succeed.
 * rs is filled with what the response said (status, headers, body accounting). */
static int s3_attempt(struct s3_client *c, struct s3_req *rq, struct s3_resp *rs, int *transient)
{
	const struct ferry_config *cfg = c->cfg;
	struct buf path = { 0 }, url = { 0 }, hline = { 0 };
	struct sigv4_result sig;
	struct curl_slist *hl = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char payload[65];
	int rc;

	*transient = 0;
	buf_free(&rs->errbody);
	memset(rs, 0, sizeof(*rs));
	rs->req = rq;

	if (!rq->has_body || (rq->mem && rq->memlen == 0) || (!rq->mem && !rq->rd))
		snprintf(payload, sizeof(payload), "%s", S3_EMPTY_SHA256);
	else if (rq->mem) {
		if ((rc = util_sha256_hex(rq->mem, rq->memlen, payload)))
			return rc;
	} else
		snprintf(payload, sizeof(payload), "UNSIGNED-PAYLOAD");

	rc = -ENOMEM;
	if (buf_puts(&path, c->base[0] ? c->base : ""))
		goto out_path;
	if (rq->key && (buf_puts(&path, "/") || buf_puts(&path, rq->key)))
		goto out_path;
	if (path.len == 0 && buf_puts(&path, "/"))
		goto out_path;

	struct sigv4_request sr = {
		.method = rq->method, .host = c->host, .path = path.data,
		.query = rq->query, .nquery = rq->nquery,
		.headers = rq->hdrs, .nheaders = rq->nhdrs, .payload_hash = payload,
	};
	struct sigv4_key key = {
		.access_key_id = cfg->creds.access_key_id,
		.secret_access_key = cfg->creds.secret_access_key,
		.session_token = cfg->creds.session_token,
		.region = cfg->s3_region ? cfg->s3_region : "us-east-1",
		.service = "s3",
	};
	memset(&sig, 0, sizeof(sig));
	if ((rc = sigv4_sign(&sr, &key, time(NULL), &sig)))
		goto out_path;

	rc = -ENOMEM;
	if (buf_puts(&url, c->url_prefix) ||
	    buf_append(&url, sig.canonical_uri.data, sig.canonical_uri.len))
		goto out_sig;
	if (sig.canonical_query.len &&
	    (buf_puts(&url, "?") ||
	     buf_append(&url, sig.canonical_query.data, sig.canonical_query.len)))
		goto out_sig;

	/* headers: Host, date, payload hash, token, signed extras, Authorization */
#define S3_HDR(...)                                                        \
	do {                                                               \
		buf_reset(&hline);                                         \
		if (buf_printf(&hline, __VA_ARGS__))                       \
			goto out_hdrs;                                     \
		struct curl_slist *n_ = curl_slist_append(hl, hline.data); \
		if (!n_)                                                   \
			goto out_hdrs;                                     \
		hl = n_;                                                   \
	} while (0)
	S3_HDR("Host: %s", c->host);
	S3_HDR("x-amz-date: %s", sig.amz_date);
	S3_HDR("x-amz-content-sha256: %s", payload);
	if (cfg->creds.session_token && cfg->creds.session_token[0])
		S3_HDR("x-amz-security-token: %s", cfg->creds.session_token);
	for (size_t i = 0; i < rq->nhdrs; i++)
		S3_HDR("%s: %s", rq->hdrs[i].name, rq->hdrs[i].value);
	S3_HDR("Authorization: %s", sig.authorization.data);
	S3_HDR("Expect:");
	if (rq->has_body && strcmp(rq->method, "POST") == 0)
		S3_HDR("Content-Type: application/xml");
#undef S3_HDR

	CURL *h = s3_pool_get(c);
	rs->h = h;
	if ((rc = s3_set_common(c, h, rs, errbuf)))
		goto out_handle;
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_URL, url.data);
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (strcmp(rq->method, "HEAD") == 0) {
		bad |= curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (rq->has_body) {
		uint64_t size = rq->mem ? rq->memlen : rq->rdlen;
		bad |= curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		bad |= curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
		bad |= curl_easy_setopt(h, CURLOPT_READFUNCTION, s3_on_read);
		bad |= curl_easy_setopt(h, CURLOPT_READDATA, rs);
		bad |= curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, s3_on_seek);
		bad |= curl_easy_setopt(h, CURLOPT_SEEKDATA, rs);
		bad |= curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
		if (strcmp(rq->method, "PUT") != 0)
			bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	} else {
		bad |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (strcmp(rq->method, "GET") != 0)
			bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	if (bad) {
		rc = -EINVAL;
		goto out_handle;
	}

	stats_inc(s3_requests);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status)
		rs->status = status;

	if (cc == CURLE_WRITE_ERROR && rs->enough)
		cc = CURLE_OK;
	if (rs->past_end) {
		rc = -ERANGE;   /* as a 416: the GET path turns this into end-of-file */
		goto out_handle;
	}
	if (cc != CURLE_OK) {
		if (rs->sink_rc) {
			rc = rs->sink_rc;   /* the caller's sink or source failed: no retry */
			if (rc == -ESTALE)
				log_info("s3: %s key %s: ETag %s, pinned to %s: stale", rq->method,
					 rq->key, rs->info.etag, rq->pin);
		} else {
			rc = s3_map_curl(cc, transient);
			log_warn("s3: %s %s%s: %s%s%s", rq->method, rq->key ? "key " : "bucket",
				 rq->key ? rq->key : "", curl_easy_strerror(cc),
				 errbuf[0] ? ": " : "", errbuf);
		}
		goto out_handle;
	}
	if (rs->status >= 200 && rs->status < 300) {
		rc = 0;
		if (rq->pin && rq->pin[0] && rs->info.etag[0] &&
		    strcmp(rq->pin, rs->info.etag) != 0)
			rc = -ESTALE;
		if (rc)
			log_info("s3: %s key %s: ETag %s, pinned to %s: stale", rq->method, rq->key,
				 rs->info.etag, rq->pin);
		goto out_handle;
	}
	struct s3xml_error xe;
	memset(&xe, 0, sizeof(xe));
	if (rs->errbody.len)
		s3xml_parse_error(rs->errbody.data, rs->errbody.len, &xe);
	if (!xe.request_id[0])
		snprintf(xe.request_id, sizeof(xe.request_id), "%s", rs->request_id);
	rc = s3_map_http(rs->status, xe.code, transient);
	if (rs->status == 416)
		rc = -ERANGE;   /* the GET path turns this into end-of-file */
	int lvl = (rc == -ENOENT && rq->enoent_ok) || rc == -ERANGE ? LOG_DEBUG
		  : *transient ? LOG_WARNING : LOG_ERR;
	if (lvl != LOG_DEBUG || log_get_level() >= LOG_DEBUG)
		log_msg(lvl, "s3: %s %s%s: HTTP %ld%s%s%s%s (request id %s)", rq->method,
			rq->key ? "key " : "bucket", rq->key ? rq->key : "", rs->status,
			xe.code[0] ? " " : "", xe.code, xe.message[0] ? ": " : "", xe.message,
			xe.request_id[0] ? xe.request_id : "-");
	/* keep the parsed code for callers that need it */
	buf_reset(&rs->errbody);
	buf_puts(&rs->errbody, xe.code);

out_handle:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	s3_pool_put(c, h);
out_hdrs:
	curl_slist_free_all(hl);
	buf_free(&hline);
out_sig:
	buf_free(&url);
	sigv4_result_free(&sig);
out_path:
	buf_free(&path);
	return rc;
}

/* Send rq, retrying transient failures of idempotent requests. */
static int s3_perform(struct s3_client *c, struct s3_req *rq, struct s3_resp *rs)
{
	unsigned max = rq->max_retries >= 0 ? (unsigned)rq->max_retries : c->retries;
	int rc, transient;
	for (unsigned attempt = 0;; attempt++) {
		if (rq->resp)
			buf_reset(rq->resp);
		rc = s3_attempt(c, rq, rs, &transient);
		if (rc == 0 || !transient || !rq->idempotent || attempt >= max)
			break;
		stats_inc(s3_retries);
		s3_backoff(attempt);
	}
	if (rc && rc != -ENOENT)
		stats_inc(s3_errors);
	return rc;
}

/* ------------------------------------------------------------------------------------
 * Client life cycle */

void s3_client_set_list_page(struct s3_client *c, unsigned max_keys)
{
	atomic_store(&c->list_page, max_keys);
}

int s3_client_set_connect_to(struct s3_client *c, const char *spec)
{
	curl_slist_free_all(c->connect_to);
	c->connect_to = NULL;
	if (spec && !(c->connect_to = curl_slist_append(NULL, spec)))
		return -ENOMEM;
	return 0;
}

static int s3_parse_endpoint(struct s3_client *c)
{
	const struct ferry_config *cfg = c->cfg;
	const char *region = cfg->s3_region && cfg->s3_region[0] ? cfg->s3_region : "us-east-1";
	struct buf ep = { 0 };
	int rc = -ENOMEM;
	if (cfg->s3_endpoint && cfg->s3_endpoint[0]) {
		if (buf_puts(&ep, cfg->s3_endpoint))
			goto out;
	} else if (buf_printf(&ep, "https://s3.%s.amazonaws.com", region)) {
		goto out;
	}
	c->endpoint = util_strdup(ep.data);
	const char *p = ep.data;
	if (strncasecmp(p, "https://", 8) == 0) {
		c->scheme = util_strdup("https");
		p += 8;
	} else if (strncasecmp(p, "http://", 7) == 0) {
		c->scheme = util_strdup("http");
		p += 7;
	} else {
		log_err("s3: s3_endpoint %s: not an http:// or https:// URL", ep.data);
		rc = -EINVAL;
		goto out;
	}
	const char *slash = strchr(p, '/');
	size_t hlen = slash ? (size_t)(slash - p) : strlen(p);
	if (hlen == 0 || memchr(p, '@', hlen) || memchr(p, '?', hlen)) {
		log_err("s3: s3_endpoint %s: no host, or a user/query part", ep.data);
		rc = -EINVAL;
		goto out;
	}
	char *ephost = util_strndup(p, hlen);
	struct buf base = { 0 };
	if (slash) {
		size_t blen = strlen(slash);
		while (blen && slash[blen - 1] == '/')
			blen--;
		buf_append(&base, slash, blen);
	}
	const char *bucket = cfg->s3_bucket ? cfg->s3_bucket : "";
	int path_style = cfg->s3_path_style;
	if (!path_style && strchr(bucket, '.') && strcmp(c->scheme, "https") == 0) {
		log_info("s3: bucket %s has a dot: using path-style requests (TLS names)", bucket);
		path_style = 1;
	}
	struct buf host = { 0 };
	c->path_style = path_style;
	if (path_style) {
		buf_puts(&host, ephost);
		buf_printf(&base, "/%s", bucket);
	} else {
		buf_printf(&host, "%s.%s", bucket, ephost);
	}
	free(ephost);
	c->host = host.data ? host.data : util_strdup("");
	c->base = base.data ? base.data : util_strdup("");
	struct buf u = { 0 };
	buf_printf(&u, "%s://%s", c->scheme, c->host);
	c->url_prefix = u.data;
	rc = c->host && c->base && c->url_prefix && c->scheme && c->endpoint ? 0 : -ENOMEM;
out:
	buf_free(&ep);
	return rc;
}

int s3_client_new(const struct ferry_config *cfg, struct s3_client **out)
{
	int rc = -ENOMEM;
	pthread_once(&s3_global_once, s3_global_init);
	struct s3_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = cfg;
	c->retries = cfg->s3_retries;
	c->timeout = cfg->s3_timeout ? (long)cfg->s3_timeout : 30;
	c->part_size = cfg->s3_part_size ? cfg->s3_part_size : 16u << 20;
	if (c->part_size < (5u << 20))
		c->part_size = 5u << 20;
	c->mp_threshold = cfg->s3_multipart_threshold ? cfg->s3_multipart_threshold : 64u << 20;
	if (!cfg->s3_bucket || !cfg->s3_bucket[0]) {
		log_err("s3: no s3_bucket configured");
		rc = -EINVAL;
		goto out_free;
	}
	if ((rc = s3_parse_endpoint(c)))
		goto out_free;
	if (!cfg->creds.access_key_id || !cfg->creds.secret_access_key) {
		log_err("s3: no credentials resolved");
		rc = -EINVAL;
		goto out_free;
	}
	if (cfg->s3_insecure_tls)
		log_warn("s3: WARNING: s3_insecure_tls is set: TLS certificates of %s are NOT "
			 "verified; anyone on the network path can read and change your data",
			 c->endpoint);

	for (unsigned i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_cond_init(&c->pool_cond, NULL);

	rc = -ENOMEM;
	c->share = curl_share_init();
	if (!c->share)
		goto out_free;
	if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, s3_share_lock) ||
	    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, s3_share_unlock) ||
	    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT))
		goto out_free;

	c->nhandles = cfg->s3_connections ? cfg->s3_connections : 16;
	c->handles = calloc(c->nhandles, sizeof(*c->handles));
	c->free = calloc(c->nhandles, sizeof(*c->free));
	if (!c->handles || !c->free)
		goto out_free;
	for (unsigned i = 0; i < c->nhandles; i++) {
		c->handles[i] = curl_easy_init();
		if (!c->handles[i])
			goto out_free;
		c->free[c->nfree++] = c->handles[i];
	}
	log_info("s3: endpoint %s, bucket %s, %s-style, %u connections, %u retries, timeout %lds",
		 c->endpoint, cfg->s3_bucket, c->path_style ? "path" : "virtual-hosted",
		 c->nhandles, c->retries, c->timeout);
	*out = c;
	return 0;
out_free:
	s3_client_free(c);
	return rc;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	if (c->handles) {
		for (unsigned i = 0; i < c->nhandles; i++)
			if (c->handles[i])
				curl_easy_cleanup(c->handles[i]);
		free(c->handles);
		free(c->free);
		pthread_mutex_destroy(&c->pool_lock);
		pthread_cond_destroy(&c->pool_cond);
	}
	if (c->share) {
		curl_share_cleanup(c->share);
		for (unsigned i = 0; i < CURL_LOCK_DATA_LAST; i++)
			pthread_mutex_destroy(&c->share_locks[i]);
	}
	curl_slist_free_all(c->connect_to);
	free(c->scheme);
	free(c->host);
	free(c->base);
	free(c->url_prefix);
	free(c->endpoint);
	free(c);
}

/* ------------------------------------------------------------------------------------
 * Operations */

int s3_probe(struct s3_client *c)
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	s3_req_init(&rq, "HEAD", NULL);
	rq.max_retries = 1;
	int rc = s3_perform(c, &rq, &rs);
	if (rc)
		log_err("s3: %s, bucket %s does not answer: %s%s", c->endpoint, c->cfg->s3_bucket,
			strerror(-rc), rc == -ENOENT ? " (no such bucket)" :
			rc == -EACCES ? " (credentials refused)" : "");
	buf_free(&rs.errbody);
	return rc;
}

int s3_head(struct s3_client *c, const char *key, struct s3_object_info *out)
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	s3_req_init(&rq, "HEAD", key);
	rq.enoent_ok = 1;
	int rc = s3_perform(c, &rq, &rs);
	if (rc == 0) {
		*out = rs.info;
		out->size = rs.have_length ? rs.content_length : 0;
	}
	buf_free(&rs.errbody);
	return rc;
}

int s3_get_stream(struct s3_client *c, const char *key, const char *if_match, uint64_t off,
		  uint64_t len, s3_sink_fn sink, void *arg, struct s3_object_info *info)
{
	return s3_get_stream_info(c, key, if_match, off, len, sink, NULL, arg, info);
}

int s3_get_stream_info(struct s3_client *c, const char *key, const char *if_match, uint64_t off,
		       uint64_t len, s3_sink_fn sink, s3_info_fn on_info, void *arg,
		       struct s3_object_info *info)
{
	char pin[80] = "", range[64], quoted[84];
	uint64_t done = 0;
	unsigned failures = 0, resumes = 0;
	struct s3_resp rs = { 0 };
	int rc = 0, transient;
	if (if_match && if_match[0])
		snprintf(pin, sizeof(pin), "%s", if_match);
	if (len == 0)
		return 0;
	for (;;) {
		struct s3_req rq;
		s3_req_init(&rq, "GET", key);
		rq.enoent_ok = 1;
		rq.sink = sink;
		rq.on_info = on_info;
		rq.sink_arg = arg;
		uint64_t start = off + done;
		rq.want = len == UINT64_MAX ? UINT64_MAX : len - done;
		if (start || len != UINT64_MAX) {
			if (len == UINT64_MAX)
				snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", start);
			else
				snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, start,
					 off + len - 1);
			s3_add_hdr(&rq, "range", range);
			rq.ranged = 1;
			rq.range_start = start;
		}
		if (pin[0]) {
			snprintf(quoted, sizeof(quoted), "\"%s\"", pin);
			s3_add_hdr(&rq, "if-match", quoted);
			rq.pin = pin;
		}
		/* s3_attempt resets rs; a 200 to a ranged request is handled through skip */
		rc = s3_attempt(c, &rq, &rs, &transient);
		done += rs.got;
		if (!pin[0] && rs.info.etag[0])
			snprintf(pin, sizeof(pin), "%s", rs.info.etag);
		if (rc == -ERANGE) {          /* 416: at or past the end */
			rc = 0;
			break;
		}
		if (rc == 0 && rs.status == 206 && rs.have_range == 1 && rs.range_first != start) {
			log_err("s3: GET key %s: asked from byte %" PRIu64 ", got from %" PRIu64,
				key, start, rs.range_first);
			rc = -EIO;
			break;
		}
		if (rc == 0) {
			if (info) {
				*info = rs.info;
				info->size = rs.have_range ? rs.range_total
					    : rs.have_length ? rs.content_length : 0;
			}
			break;
		}
		if (!transient)
			break;
		if (rs.got)
			resumes++;   /* progress: resume without spending the retry budget ... */
		else
			failures++;
		if (failures > c->retries || resumes > 10 * (c->retries + 1))
			break;   /* ... within a hard bound */
		stats_inc(s3_retries);
		if (!rs.got)
			s3_backoff(failures - 1);
		log_info("s3: GET key %s: resuming at byte %" PRIu64, key, off + done);
	}
	if (rc && rc != -ENOENT)
		stats_inc(s3_errors);
	buf_free(&rs.errbody);
	return rc;
}

struct s3_membuf {
	char *p;
	size_t cap, len;
};

static int s3_mem_sink(void *arg, const void *data, size_t len)
{
	struct s3_membuf *m = arg;
	if (len > m->cap - m->len)
		return -EIO;
	memcpy(m->p + m->len, data, len);
	m->len += len;
	return 0;
}

ssize_t s3_get_range(struct s3_client *c, const char *key, const char *if_match, uint64_t off,
		     size_t len, void *buf)
{
	struct s3_membuf m = { buf, len, 0 };
	if (len == 0)
		return 0;
	int rc = s3_get_stream(c, key, if_match, off, len, s3_mem_sink, &m, NULL);
	return rc ? rc : (ssize_t)m.len;
}

int s3_list(struct s3_client *c, const struct s3_list_opts *o, s3_page_fn fn, void *arg)
{
	char *token = NULL;
	char maxkeys[16];
	struct buf body = { 0 };
	struct s3_resp rs = { 0 };
	unsigned mk = o->max_keys ? o->max_keys : atomic_load(&c->list_page);
	unsigned pages = 0;
	int rc;
	snprintf(maxkeys, sizeof(maxkeys), "%u", mk);
	for (;;) {
		struct s3_req rq;
		s3_req_init(&rq, "GET", NULL);
		rq.resp = &body;
		s3_add_query(&rq, "list-type", "2");
		s3_add_query(&rq, "encoding-type", "url");
		if (o->prefix && o->prefix[0])
			s3_add_query(&rq, "prefix", o->prefix);
		if (o->delimiter && o->delimiter[0])
			s3_add_query(&rq, "delimiter", o->delimiter);
		if (mk)
			s3_add_query(&rq, "max-keys", maxkeys);
		if (token)
			s3_add_query(&rq, "continuation-token", token);
		else if (o->start_after && o->start_after[0])
			s3_add_query(&rq, "start-after", o->start_after);
		if ((rc = s3_perform(c, &rq, &rs)))
			break;
		struct s3xml_list page;
		memset(&page, 0, sizeof(page));
		size_t dropped = 0;
		if ((rc = s3xml_parse_list(body.data ? body.data : "", body.len, &page,
					   &dropped))) {
			log_err("s3: list %s: unparseable reply (%s)", o->prefix ? o->prefix : "",
				strerror(-rc));
			stats_inc(s3_errors);
			break;
		}
		if (dropped)
			log_warn("s3: list %s: %zu keys holding NUL bytes ignored",
				 o->prefix ? o->prefix : "", dropped);
		rc = fn(arg, &page);
		int more = page.is_truncated && page.next_token && page.next_token[0];
		free(token);
		token = more ? util_strdup(page.next_token) : NULL;
		s3xml_list_free(&page);
		if (rc)
			break;
		if (more && !token) {
			rc = -ENOMEM;
			break;
		}
		if (!more || (o->max_pages && ++pages >= o->max_pages))
			break;
	}
	free(token);
	buf_free(&body);
	buf_free(&rs.errbody);
	return rc;
}

/* The x-amz-meta-* headers of meta, formatted into vals (4 x 24 bytes). */
static void s3_meta_headers(struct s3_req *rq, const struct s3_meta *m, char vals[4][24])
{
	if (!m)
		return;
	if (m->have & S3_META_MODE) {
		snprintf(vals[0], 24, "%" PRIu32, m->mode);
		s3_add_hdr(rq, "x-amz-meta-mode", vals[0]);
	}
	if (m->have & S3_META_UID) {
		snprintf(vals[1], 24, "%" PRIu32, m->uid);
		s3_add_hdr(rq, "x-amz-meta-uid", vals[1]);
	}
	if (m->have & S3_META_GID) {
		snprintf(vals[2], 24, "%" PRIu32, m->gid);
		s3_add_hdr(rq, "x-amz-meta-gid", vals[2]);
	}
	if (m->have & S3_META_MTIME) {
		snprintf(vals[3], 24, "%lld", (long long)m->mtime.tv_sec);
		s3_add_hdr(rq, "x-amz-meta-mtime", vals[3]);
	}
}

int s3_put_buf(struct s3_client *c, const char *key, const void *data, size_t len,
	       const struct s3_meta *meta, char etag_out[80])
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	char vals[4][24];
	s3_req_init(&rq, "PUT", key);
	rq.has_body = 1;
	rq.mem = data ? data : "";
	rq.memlen = len;
	s3_meta_headers(&rq, meta, vals);
	int rc = s3_perform(c, &rq, &rs);
	if (rc == 0 && etag_out)
		memcpy(etag_out, rs.info.etag, 80);
	buf_free(&rs.errbody);
	return rc;
}

static int s3_put_single(struct s3_client *c, const char *key, uint64_t size, s3_read_fn rd,
			 void *arg, const struct s3_meta *meta, char etag_out[80])
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	char vals[4][24];
	s3_req_init(&rq, "PUT", key);
	rq.has_body = 1;
	rq.rd = rd;
	rq.rdarg = arg;
	rq.rdlen = size;
	s3_meta_headers(&rq, meta, vals);
	int rc = s3_perform(c, &rq, &rs);
	if (rc == 0 && etag_out)
		memcpy(etag_out, rs.info.etag, 80);
	buf_free(&rs.errbody);
	return rc;
}

int s3_mpu_create(struct s3_client *c, const char *key, const struct s3_meta *meta,
		  char **upload_id)
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	struct buf body = { 0 };
	char vals[4][24];
	s3_req_init(&rq, "POST", key);
	rq.has_body = 1;
	rq.mem = "";
	rq.memlen = 0;
	rq.resp = &body;
	rq.idempotent = 1;  /* a repeated create leaves an unused upload behind, nothing worse */
	s3_add_query(&rq, "uploads", "");
	s3_meta_headers(&rq, meta, vals);
	int rc = s3_perform(c, &rq, &rs);
	if (rc == 0 && (rc = s3xml_parse_initiate(body.data ? body.data : "", body.len, upload_id)))
		log_err("s3: create multipart upload for %s: unparseable reply", key);
	buf_free(&body);
	buf_free(&rs.errbody);
	return rc;
}

int s3_mpu_part(struct s3_client *c, const char *key, const char *upload_id, unsigned partno,
		s3_read_fn read, void *arg, uint64_t off, uint64_t len, char etag_out[80])
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	char pn[16];
	snprintf(pn, sizeof(pn), "%u", partno);
	s3_req_init(&rq, "PUT", key);
	rq.has_body = 1;
	rq.rd = read;
	rq.rdarg = arg;
	rq.rdoff = off;
	rq.rdlen = len;
	s3_add_query(&rq, "partNumber", pn);
	s3_add_query(&rq, "uploadId", upload_id);
	int rc = s3_perform(c, &rq, &rs);
	if (rc == 0) {
		if (!rs.info.etag[0]) {
			log_err("s3: upload part %u of %s: no ETag in the reply", partno, key);
			rc = -EPROTO;
		} else {
			memcpy(etag_out, rs.info.etag, 80);
		}
	}
	buf_free(&rs.errbody);
	return rc;
}

int s3_mpu_abort(struct s3_client *c, const char *key, const char *upload_id)
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	s3_req_init(&rq, "DELETE", key);
	s3_add_query(&rq, "uploadId", upload_id);
	rq.enoent_ok = 1;
	int rc = s3_perform(c, &rq, &rs);
	buf_free(&rs.errbody);
	return rc == -ENOENT ? 0 : rc;
}

int s3_mpu_complete(struct s3_client *c, const char *key, const char *upload_id,
		    const char *const *etags, size_t nparts, char etag_out[80])
{
	struct buf xml = { 0 }, body = { 0 };
	struct s3_resp rs = { 0 };
	char etag[80] = "";
	int rc, transient = 0;
	if ((rc = s3xml_build_complete(etags, nparts, &xml)))
		return rc;
	for (unsigned attempt = 0;; attempt++) {
		struct s3_req rq;
		s3_req_init(&rq, "POST", key);
		rq.has_body = 1;
		rq.mem = xml.data;
		rq.memlen = xml.len;
		rq.resp = &body;
		s3_add_query(&rq, "uploadId", upload_id);
		buf_reset(&body);
		rc = s3_attempt(c, &rq, &rs, &transient);
		if (rc == 0) {
			/* S3 may answer 200 and put an <Error> in the body */
			struct s3xml_error xe;
			memset(&xe, 0, sizeof(xe));
			rc = s3xml_parse_complete(body.data ? body.data : "", body.len, etag, &xe);
			if (rc == -EIO) {
				log_warn("s3: complete multipart %s: %s: %s (request id %s)", key,
					 xe.code, xe.message, xe.request_id);
				transient = s3_code_transient(xe.code);
			} else if (rc) {
				log_err("s3: complete multipart %s: unparseable reply", key);
			}
		} else if (rc == -ENOENT && attempt > 0) {
			/* NoSuchUpload on a retry: the earlier attempt may have completed it.
			 * The object then carries a multipart ETag with our part count. */
			struct s3_object_info oi;
			char suffix[24];
			snprintf(suffix, sizeof(suffix), "-%zu", nparts);
			size_t el, sl = strlen(suffix);
			if (s3_head(c, key, &oi) == 0 && (el = strlen(oi.etag)) > sl &&
			    strcmp(oi.etag + el - sl, suffix) == 0) {
				snprintf(etag, sizeof(etag), "%s", oi.etag);
				rc = 0;
			}
		}
		if (rc == 0 || !transient || attempt >= c->retries)
			break;
		stats_inc(s3_retries);
		s3_backoff(attempt);
	}
	if (rc == 0 && etag_out)
		memcpy(etag_out, etag, 80);
	if (rc)
		stats_inc(s3_errors);
	buf_free(&xml);
	buf_free(&body);
	buf_free(&rs.errbody);
	return rc;
}

struct s3_mpu {
	struct s3_client *c;
	const char *key;
	const char *upload_id;
	s3_read_fn rd;
	void *arg;
	uint64_t size, part;
	unsigned nparts;
	char (*etags)[80];
	atomic_uint next;
	atomic_int rc;       /* first failure */
};

static void *s3_mpu_worker(void *arg)
{
	struct s3_mpu *m = arg;
	for (;;) {
		unsigned i = atomic_fetch_add(&m->next, 1);
		if (i >= m->nparts || atomic_load(&m->rc))
			break;
		uint64_t off = (uint64_t)i * m->part;
		uint64_t len = m->size - off < m->part ? m->size - off : m->part;
		int rc = s3_mpu_part(m->c, m->key, m->upload_id, i + 1, m->rd, m->arg, off, len,
				     m->etags[i]);
		if (rc) {
			int zero = 0;
			atomic_compare_exchange_strong(&m->rc, &zero, rc);
			break;
		}
	}
	return NULL;
}

static int s3_put_multipart(struct s3_client *c, const char *key, uint64_t size, s3_read_fn rd,
			    void *arg, const struct s3_meta *meta, char etag_out[80])
{
	struct s3_mpu m = { .c = c, .key = key, .rd = rd, .arg = arg, .size = size };
	char *upload_id = NULL;
	const char **etagv = NULL;
	pthread_t tids[8];
	unsigned nthreads, started = 0;
	int rc;

	m.part = c->part_size;
	if ((size + m.part - 1) / m.part > S3_MAX_PARTS) {
		m.part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
		m.part = (m.part + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	}
	m.nparts = (unsigned)((size + m.part - 1) / m.part);
	m.etags = calloc(m.nparts, 80);
	etagv = calloc(m.nparts, sizeof(*etagv));
	if (!m.etags || !etagv) {
		rc = -ENOMEM;
		goto out_free;
	}
	if ((rc = s3_mpu_create(c, key, meta, &upload_id)))
		goto out_free;
	m.upload_id = upload_id;

	nthreads = c->nhandles / 2;
	if (nthreads > ARRAY_SIZE(tids) + 1)
		nthreads = ARRAY_SIZE(tids) + 1;
	if (nthreads > m.nparts)
		nthreads = m.nparts;
	if (nthreads < 1)
		nthreads = 1;
	for (unsigned i = 1; i < nthreads; i++) {
		if (pthread_create(&tids[started], NULL, s3_mpu_worker, &m))
			break;  /* fewer threads is still correct */
		started++;
	}
	s3_mpu_worker(&m);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if ((rc = atomic_load(&m.rc)))
		goto out_abort;
	for (unsigned i = 0; i < m.nparts; i++)
		etagv[i] = m.etags[i];
	if ((rc = s3_mpu_complete(c, key, upload_id, etagv, m.nparts, etag_out)))
		goto out_abort;
	log_debug("s3: multipart upload of %s done: %u parts", key, m.nparts);
	goto out_upload;
out_abort:
	log_err("s3: multipart upload of %s failed (%s): aborting it", key, strerror(-rc));
	s3_mpu_abort(c, key, upload_id);
out_upload:
	free(upload_id);
out_free:
	free(m.etags);
	free(etagv);
	return rc;
}

int s3_put(struct s3_client *c, const char *key, uint64_t size, s3_read_fn rd, void *arg,
	   const struct s3_meta *meta, char etag_out[80])
{
	if (size >= c->mp_threshold && size > c->part_size)
		return s3_put_multipart(c, key, size, rd, arg, meta, etag_out);
	if (size > S3_SMALL_BODY)
		return s3_put_single(c, key, size, rd, arg, meta, etag_out);
	/* small: read it into memory so the payload hash can be signed */
	char *mem = malloc(size ? size : 1);
	if (!mem)
		return -ENOMEM;
	size_t done = 0;
	int rc = 0;
	while (done < size) {
		ssize_t r = rd(arg, mem + done, size - done, done);
		if (r < 0) {
			rc = (int)r;
			goto out_mem;
		}
		if (r == 0) {
			rc = -EIO;
			goto out_mem;
		}
		done += (size_t)r;
	}
	rc = s3_put_buf(c, key, mem, size, meta, etag_out);
out_mem:
	free(mem);
	return rc;
}

int s3_delete(struct s3_client *c, const char *key)
{
	struct s3_req rq;
	struct s3_resp rs = { 0 };
	s3_req_init(&rq, "DELETE", key);
	rq.enoent_ok = 1;
	int rc = s3_perform(c, &rq, &rs);
	buf_free(&rs.errbody);
	return rc == -ENOENT ? 0 : rc;
}

struct s3_delctx {
	int n;
};

static void s3_on_delete_error(void *arg, const char *key, const char *code)
{
	struct s3_delctx *d = arg;
	d->n++;
	log_err("s3: batch delete: %s: %s", key, code);
}

int s3_delete_many(struct s3_client *c, const char *const *keys, size_t nkeys)
{
	int refused = 0, rc = 0;
	for (size_t at = 0; at < nkeys && rc == 0; at += 1000) {
		size_t n = nkeys - at < 1000 ? nkeys - at : 1000;
		struct buf xml = { 0 }, body = { 0 };
		struct s3_resp rs = { 0 };
		unsigned char md[16];
		unsigned mdlen = 0;
		char md5b64[32];
		struct s3_req rq;
		if ((rc = s3xml_build_delete(keys + at, n, &xml)))
			goto next;
		if (!EVP_Digest(xml.data, xml.len, md, &mdlen, EVP_md5(), NULL)) {
			rc = -EIO;
			goto next;
		}
		EVP_EncodeBlock((unsigned char *)md5b64, md, 16);
		s3_req_init(&rq, "POST", NULL);
		rq.has_body = 1;
		rq.mem = xml.data;
		rq.memlen = xml.len;
		rq.resp = &body;
		s3_add_query(&rq, "delete", "");
		s3_add_hdr(&rq, "content-md5", md5b64);
		if ((rc = s3_perform(c, &rq, &rs)))
			goto next;
		struct s3_delctx d = { 0 };
		int r = s3xml_parse_delete(body.data ? body.data : "", body.len, s3_on_delete_error,
					   &d);
		if (r < 0) {
			log_err("s3: batch delete: unparseable reply");
			rc = r;
		} else {
			refused += r;
		}
next:
		buf_free(&xml);
		buf_free(&body);
		buf_free(&rs.errbody);
	}
	return rc ? rc : refused;
}

int s3_copy(struct s3_client *c, const char *from, const char *to, const char *if_match,
	    char etag_out[80])
{
	struct buf src = { 0 }, body = { 0 };
	struct s3_resp rs = { 0 };
	struct s3_req rq;
	char etag[80] = "", quoted[84];
	struct timespec lm;
	struct s3xml_error xe;
	int rc = -ENOMEM;
	/* x-amz-copy-source: /bucket/key, URI-encoded */
	if (buf_printf(&src, "/%s/", c->cfg->s3_bucket) ||
	    sigv4_uri_encode(from, strlen(from), 1, &src))
		goto out;
	s3_req_init(&rq, "PUT", to);
	rq.has_body = 1;
	rq.mem = "";
	rq.memlen = 0;
	rq.resp = &body;
	s3_add_hdr(&rq, "x-amz-copy-source", src.data);
	if (if_match && if_match[0]) {
		snprintf(quoted, sizeof(quoted), "\"%s\"", if_match);
		s3_add_hdr(&rq, "x-amz-copy-source-if-match", quoted);
	}
	if ((rc = s3_perform(c, &rq, &rs))) {
		if (rc == -EINVAL) {
			struct s3_object_info oi;
			if (s3_head(c, from, &oi) == 0 && oi.size > S3_MAX_COPY)
				rc = -EFBIG;
		}
		goto out;
	}
	memset(&xe, 0, sizeof(xe));
	rc = s3xml_parse_copy(body.data ? body.data : "", body.len, etag, &lm, &xe);
	if (rc == -EIO)
		log_err("s3: copy %s to %s: %s: %s (request id %s)", from, to, xe.code, xe.message,
			xe.request_id);
	else if (rc)
		log_err("s3: copy %s to %s: unparseable reply", from, to);
	if (rc == 0 && etag_out)
		memcpy(etag_out, etag, 80);
	if (rc)
		stats_inc(s3_errors);
out:
	buf_free(&src);
	buf_free(&body);
	buf_free(&rs.errbody);
	return rc;
}
