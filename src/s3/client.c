/* client.c - the S3 client's request engine (see client.h): requests signed with SigV4, sent
 * over a pool of curl easy handles, retried when the failure is transient, mapped to -errno;
 * and the client's life cycle. The operations built on it are in ops.c.
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

#include "config.h"
#include "s3/sse.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
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
#include "s3/client-impl.h"
#include "s3/creds.h"

static pthread_once_t s3_global_once = PTHREAD_ONCE_INIT;
static void s3_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ------------------------------------------------------------------------------------
 * Small helpers */

void s3_add_hdr(struct s3_req *r, const char *name, const char *value)
{
	if (r->nhdrs < S3_MAX_HDRS) {
		r->hdrs[r->nhdrs].name = name;
		r->hdrs[r->nhdrs].value = value;
		r->nhdrs++;
	}
}

void s3_add_query(struct s3_req *r, const char *name, const char *value)
{
	if (r->nquery < S3_MAX_QUERY) {
		r->query[r->nquery].name = name;
		r->query[r->nquery].value = value;
		r->nquery++;
	}
}

void s3_req_init(struct s3_req *r, const char *method, const char *key)
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
void s3_backoff(unsigned attempt)
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
	} else if (strcasecmp(name, "x-amz-bucket-region") == 0) {
		snprintf(rs->bucket_region, sizeof(rs->bucket_region), "%s", v);
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
int s3_code_transient(const char *code)
{
	static const char *const codes[] = { "SlowDown", "InternalError", "ServiceUnavailable",
		"RequestTimeout", "RequestTimeTooSkewed", "OperationAborted", "Throttling",
		"ThrottlingException", "RequestLimitExceeded", "TooManyRequests" };
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

/* S3 error codes that mean "these credentials are no longer good": renewing them may help. */
static int s3_code_creds(const char *code)
{
	return strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0 ||
	       strcmp(code, "RequestExpired") == 0 || strcmp(code, "TokenRefreshRequired") == 0 ||
	       strcmp(code, "InvalidAccessKeyId") == 0;
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
	if (s3_code_creds(code) || strcmp(code, "SignatureDoesNotMatch") == 0)
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

/* S3 answered that the bucket lives in another region: say which, once. */
static void s3_wrong_region(struct s3_client *c, const char *region)
{
	if (atomic_exchange(&c->region_warned, 1))
		return;
	if (region[0])
		log_err("s3: bucket %s is in region %s, not %s: set s3_region=%s (or AWS_REGION)",
			c->cfg->s3_bucket, region,
			c->cfg->s3_region ? c->cfg->s3_region : "us-east-1", region);
	else
		log_err("s3: %s redirects the requests for bucket %s elsewhere: set s3_region to "
			"the bucket's region", c->endpoint, c->cfg->s3_bucket);
}

static int s3_set_common(struct s3_client *c, CURL *h, struct s3_resp *rs, char *errbuf)
{
	const struct ferry_config *cfg = c->cfg;
	curl_easy_reset(h);
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "ferryfs/" PACKAGE_VERSION);
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

static int s3_has_query(const struct s3_req *rq, const char *name)
{
	for (size_t i = 0; i < rq->nquery; i++)
		if (!strcmp(rq->query[i].name, name))
			return 1;
	return 0;
}

/* What a request is, for the encryption headers (s3/sse.h) */
static unsigned s3_sse_kind(const struct s3_req *rq)
{
	if (!rq->key)
		return 0;
	unsigned k = S3_SSE_OBJECT;
	int copy = 0;
	for (size_t i = 0; i < rq->nhdrs; i++)
		copy |= !strcasecmp(rq->hdrs[i].name, "x-amz-copy-source");
	if (!strcmp(rq->method, "PUT"))
		k |= s3_has_query(rq, "partNumber") ? S3_SSE_READ : S3_SSE_WRITE;
	else if (!strcmp(rq->method, "POST") && s3_has_query(rq, "uploads"))
		k |= S3_SSE_WRITE;
	else if (!strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD"))
		k |= S3_SSE_READ;
	if (copy)
		k |= S3_SSE_COPY;
	return k;
}

/* Send rq once (see s3_attempt), signed with the credentials of generation *gen;
 * *refused is set when S3 refused those credentials as expired or invalid. */
static int s3_attempt_once(struct s3_client *c, struct s3_req *rq, struct s3_resp *rs,
			   int *transient, unsigned *gen, int *refused)
{
	const struct ferry_config *cfg = c->cfg;
	struct buf path = { 0 }, url = { 0 }, hline = { 0 };
	struct sigv4_result sig;
	struct curl_slist *hl = NULL;
	struct creds_value cv = { 0 };
	char errbuf[CURL_ERROR_SIZE] = "";
	char payload[65];
	int rc;

	*transient = 0;
	*refused = 0;
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

	/* the request's headers and those encryption / Requester Pays add (s3/sse.h) */
	struct sigv4_header hv[S3_MAX_HDRS + 8];
	size_t nh = rq->nhdrs;
	memcpy(hv, rq->hdrs, nh * sizeof(hv[0]));
	nh += s3_sse_headers(&c->sse, s3_sse_kind(rq), hv + nh, 8);
	struct sigv4_request sr = {
		.method = rq->method, .host = c->host, .path = path.data,
		.query = rq->query, .nquery = rq->nquery,
		.headers = hv, .nheaders = nh, .payload_hash = payload,
	};
	memset(&sig, 0, sizeof(sig));
	if ((rc = creds_get(c->creds, &cv, gen)))
		goto out_path;
	struct sigv4_key key = {
		.access_key_id = cv.access_key_id,
		.secret_access_key = cv.secret_access_key,
		.session_token = cv.session_token,
		.region = cfg->s3_region ? cfg->s3_region : "us-east-1",
		.service = "s3",
	};
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
	if (cv.session_token && cv.session_token[0])
		S3_HDR("x-amz-security-token: %s", cv.session_token);
	for (size_t i = 0; i < nh; i++)
		S3_HDR("%s: %s", hv[i].name, hv[i].value);
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
	/* 1: S3 said the credentials are no longer good; 2: it may have (a HEAD's 400/403
	 * comes without the body that would say why) */
	*refused = s3_code_creds(xe.code) ? 1
		   : !xe.code[0] && (rs->status == 400 || rs->status == 403) &&
		     cv.session_token && cv.session_token[0] ? 2 : 0;
	if (rs->status == 301 || (rs->bucket_region[0] && rs->status == 400 &&
				  strcmp(xe.code, "AuthorizationHeaderMalformed") == 0))
		s3_wrong_region(c, rs->bucket_region);
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
	if (hline.data)
		explicit_bzero(hline.data, hline.len);
	buf_free(&hline);
out_sig:
	buf_free(&url);
	sigv4_result_free(&sig);
out_path:
	creds_value_clear(&cv);
	buf_free(&path);
	return rc;
}

/* A HEAD refused without a reason renews temporary credentials at most this often (s). */
#define S3_CREDS_MIN_AGE 10

int s3_attempt(struct s3_client *c, struct s3_req *rq, struct s3_resp *rs, int *transient)
{
	unsigned gen = 0;
	int refused = 0;
	int rc = s3_attempt_once(c, rq, rs, transient, &gen, &refused);
	if (refused && creds_rejected(c->creds, gen, refused == 2 ? S3_CREDS_MIN_AGE : 0) == 0) {
		log_info("s3: %s %s%s: S3 refused the credentials; retrying with renewed ones",
			 rq->method, rq->key ? "key " : "bucket", rq->key ? rq->key : "");
		rc = s3_attempt_once(c, rq, rs, transient, &gen, &refused);
	}
	return rc;
}

/* Send rq, retrying transient failures of idempotent requests. */
int s3_perform(struct s3_client *c, struct s3_req *rq, struct s3_resp *rs)
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
	char err[512] = "";
	if ((rc = creds_new(cfg, &c->creds, err, sizeof(err)))) {
		log_err("s3: %s", err);
		goto out_free;
	}
	if ((rc = creds_start(c->creds))) {
		log_err("s3: cannot start the credentials renewal: %s", strerror(-rc));
		goto out_free;
	}
	if ((rc = s3_sse_load(cfg, &c->sse)))
		goto out_free;
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
	log_notice("s3: credentials from %s, region %s", creds_source(c->creds),
		   cfg->s3_region ? cfg->s3_region : "us-east-1");
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
	creds_free(c->creds);
	free(c->scheme);
	free(c->host);
	free(c->base);
	free(c->url_prefix);
	free(c->endpoint);
	s3_sse_wipe(&c->sse);
	free(c);
}
