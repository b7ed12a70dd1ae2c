/* ops.c - the S3 operations (see client.h): HEAD, streamed and ranged GET, ListObjectsV2,
 * PUT (single or multipart, parts in parallel), DELETE (one and batch), CopyObject. Each
 * builds an s3_req and sends it through the engine of client.c (s3_perform/s3_attempt).
 * No state of its own: the multipart upload's worker threads share only their struct s3_mpu
 * (atomics). */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cfg.h"
#include "base/log.h"
#include "base/stats.h"
#include "base/util.h"
#include "s3/client-impl.h"
#include "s3/sigv4.h"
#include "s3/xml.h"

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

int s3_etag_usable(const char *etag)
{
	size_t n = etag ? strlen(etag) : 0;
	if (n == 0 || n > 78)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)etag[i];
		if (ch <= ' ' || ch >= 0x7f || ch == '"')
			return 0;
	}
	return 1;
}

/* A write answered with no usable ETag (CompleteMultipartUpload's <ETag></ETag> on some
 * servers): what S3 holds at key now, read by HEAD, is recorded instead. suffix (NULL:
 * any) is what that ETag must end with for it to be taken as ours ("-N" for an upload of
 * N parts): else etag stays "" and the caller knows the ETag is unknown. */
static void s3_etag_by_head(struct s3_client *c, const char *key, const char *suffix,
			    char etag[80])
{
	struct s3_object_info oi;
	size_t el, sl = suffix ? strlen(suffix) : 0;
	etag[0] = '\0';
	int rc = s3_head(c, key, &oi);
	if (rc == 0 && s3_etag_usable(oi.etag) && (el = strlen(oi.etag)) > sl &&
	    (!sl || strcmp(oi.etag + el - sl, suffix) == 0)) {
		snprintf(etag, 80, "%s", oi.etag);
		log_debug("s3: %s: no usable ETag in the reply; S3 holds ETag %s", key, etag);
		return;
	}
	log_warn("s3: %s: no usable ETag in the reply and none of ours found by HEAD (%s): "
		 "the ETag is unknown", key, rc ? strerror(-rc) : oi.etag);
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
	if (rc == 0 && etag_out) {
		memcpy(etag_out, rs.info.etag, 80);
		if (!s3_etag_usable(etag_out))
			s3_etag_by_head(c, key, NULL, etag_out);
	}
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
	if (rc == 0 && etag_out) {
		memcpy(etag_out, rs.info.etag, 80);
		if (!s3_etag_usable(etag_out))
			s3_etag_by_head(c, key, NULL, etag_out);
	}
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
	if (rc == 0 && !s3_etag_usable(etag)) {
		char suffix[24];
		snprintf(suffix, sizeof(suffix), "-%zu", nparts);
		s3_etag_by_head(c, key, suffix, etag);
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
	if (rc == 0 && if_match && if_match[0] && strcmp(etag, if_match)) {
		/* A server may ignore x-amz-copy-source-if-match: the copy's ETag differs (as
		 * it does for a multipart source, or under SSE) and the source is not the
		 * version pinned any more: what was copied may be another version. */
		struct s3_object_info oi;
		int hrc = s3_head(c, from, &oi);
		if (hrc || strcmp(oi.etag, if_match)) {
			log_warn("s3: copy %s to %s: the source changed (ETag %s, pinned to %s): "
				 "the copy is not the version pinned", from, to,
				 hrc ? strerror(-hrc) : oi.etag, if_match);
			rc = hrc == -ENOENT || !hrc ? -ESTALE : hrc;
		}
	}
	if (rc == 0 && !s3_etag_usable(etag))
		s3_etag_by_head(c, to, NULL, etag);
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
