/* memstore.c - an in-memory store for unit tests (see memstore.h). Object versions are
 * immutable once put and live until the store is destroyed, so a request copies from its
 * version without holding the lock. */
#include "memstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct memstore_ver {
	struct memstore_ver *next;
	unsigned id;
	unsigned char *data;
	uint64_t size;
};

struct store_file {
	struct memstore_ver *ver;   /* the pin */
	char *path;
};

static struct memstore *ms(struct store *st) { return (struct memstore *)st; }

static struct memstore_obj *ms_find(struct memstore *m, const char *path)
{
	for (unsigned i = 0; i < m->nobjs; i++)
		if (strcmp(m->objs[i].path, path) == 0)
			return &m->objs[i];
	return NULL;
}

static void ms_attr(const struct memstore_ver *v, struct store_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = S_IFREG | 0644;
	a->nlink = 1;
	a->size = v->size;
	a->have = STORE_HAVE_ALL;
	snprintf(a->etag, sizeof(a->etag), "v%u", v->id);
}

static int ms_stat(struct store *st, const char *path, struct store_attr *out)
{
	struct memstore *m = ms(st);
	int rc = -ENOENT;
	pthread_mutex_lock(&m->lock);
	struct memstore_obj *o = ms_find(m, path);
	if (o) {
		ms_attr(o->cur, out);
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int ms_open(struct store *st, const char *path, int flags, uint32_t mode,
		   const char *expect_etag, struct store_file **out)
{
	struct memstore *m = ms(st);
	(void)mode;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	struct store_file *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return -ENOMEM;
	}
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct memstore_obj *o = ms_find(m, path);
	if (!o) {
		rc = -ENOENT;
	} else {
		struct store_attr a;
		ms_attr(o->cur, &a);
		if (expect_etag && expect_etag[0] && strcmp(expect_etag, a.etag))
			rc = -ESTALE;
		f->ver = o->cur;
	}
	pthread_mutex_unlock(&m->lock);
	if (rc) {
		free(f->path);
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

static int ms_fstat(struct store *st, struct store_file *f, struct store_attr *out)
{
	(void)st;
	ms_attr(f->ver, out);
	return 0;
}

/* Start a request: latency, the pin check, the injected error. Returns 0 or -ESTALE and
 * sets *fail_at and *fail_rc (fail_at = UINT64_MAX: no error in this range). */
static int ms_begin(struct memstore *m, struct store_file *f, uint64_t off, uint64_t len,
		    uint64_t *fail_at, int *fail_rc)
{
	atomic_fetch_add(&m->requests, 1);
	int n = atomic_fetch_add(&m->inflight, 1) + 1;
	int mx = atomic_load(&m->max_inflight);
	while (n > mx && !atomic_compare_exchange_weak(&m->max_inflight, &mx, n))
		;
	unsigned lat = atomic_load(&m->latency_us);
	if (lat)
		usleep(lat);
	int rc = 0;
	*fail_at = UINT64_MAX;
	*fail_rc = 0;
	pthread_mutex_lock(&m->lock);
	struct memstore_obj *o = ms_find(m, f->path);
	if (!o || o->cur != f->ver)
		rc = -ESTALE;
	if (m->err_rc && m->err_path && strcmp(m->err_path, f->path) == 0 &&
	    off < m->err_end && m->err_off < off + len) {
		*fail_at = m->err_off > off ? m->err_off : off;
		*fail_rc = m->err_rc;
	}
	pthread_mutex_unlock(&m->lock);
	if (rc)
		atomic_fetch_sub(&m->inflight, 1);
	return rc;
}

static ssize_t ms_pread(struct store *st, struct store_file *f, void *buf, size_t len, uint64_t off)
{
	struct memstore *m = ms(st);
	uint64_t fail_at;
	int fail_rc;
	if (off >= f->ver->size || len == 0)
		return 0;
	if (len > f->ver->size - off)
		len = (size_t)(f->ver->size - off);
	int rc = ms_begin(m, f, off, len, &fail_at, &fail_rc);
	if (rc)
		return rc;
	ssize_t n = (ssize_t)len;
	uint64_t bps = atomic_load(&m->stream_bps);
	if (bps)
		usleep((useconds_t)(len * 1000000ull / bps));
	if (fail_at != UINT64_MAX) {
		n = fail_rc;
	} else {
		memcpy(buf, f->ver->data + off, len);
		atomic_fetch_add(&m->bytes, len);
	}
	atomic_fetch_sub(&m->inflight, 1);
	return n;
}

static int ms_read_stream(struct store *st, struct store_file *f, uint64_t off, uint64_t len,
			  store_sink_fn sink, void *arg)
{
	struct memstore *m = ms(st);
	uint64_t fail_at;
	int fail_rc;
	if (off >= f->ver->size || len == 0)
		return 0;
	if (len > f->ver->size - off)
		len = f->ver->size - off;
	int rc = ms_begin(m, f, off, len, &fail_at, &fail_rc);
	if (rc)
		return rc;
	uint64_t end = off + len, pos = off;
	size_t chunk = m->chunk ? m->chunk : 64 << 10;
	uint64_t bps = atomic_load(&m->stream_bps);
	while (pos < end) {
		uint64_t stop = end < fail_at ? end : fail_at;
		if (pos >= stop) {
			rc = fail_rc;
			break;
		}
		size_t n = stop - pos < chunk ? (size_t)(stop - pos) : chunk;
		if (bps)
			usleep((useconds_t)(n * 1000000ull / bps));
		atomic_fetch_add(&m->bytes, n);
		if ((rc = sink(arg, f->ver->data + pos, n)))
			break;
		pos += n;
	}
	atomic_fetch_sub(&m->inflight, 1);
	return rc;
}

static int ms_close(struct store *st, struct store_file *f)
{
	(void)st;
	free(f->path);
	free(f);
	return 0;
}

static void ms_destroy(struct store *st)
{
	struct memstore *m = ms(st);
	for (unsigned i = 0; i < m->nobjs; i++)
		free(m->objs[i].path);
	free(m->objs);
	while (m->versions) {
		struct memstore_ver *v = m->versions;
		m->versions = v->next;
		free(v->data);
		free(v);
	}
	free(m->err_path);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct store_ops ms_ops = {
	.name = "mem",
	.destroy = ms_destroy,
	.stat = ms_stat,
	.open = ms_open,
	.fstat = ms_fstat,
	.pread = ms_pread,
	.read_stream = ms_read_stream,
	.close = ms_close,
};

static const struct store_ops ms_ops_pread_only = {
	.name = "mem-pread",
	.destroy = ms_destroy,
	.stat = ms_stat,
	.open = ms_open,
	.fstat = ms_fstat,
	.pread = ms_pread,
	.close = ms_close,
};

struct memstore *memstore_new(int pread_only)
{
	struct memstore *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->base.ops = pread_only ? &ms_ops_pread_only : &ms_ops;
	pthread_mutex_init(&m->lock, NULL);
	m->next_ver = 1;
	return m;
}

int memstore_put(struct memstore *m, const char *path, const void *data, uint64_t size)
{
	struct memstore_ver *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->data = malloc(size ? size : 1);
	if (!v->data) {
		free(v);
		return -ENOMEM;
	}
	memcpy(v->data, data, size);
	v->size = size;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	v->id = m->next_ver++;
	v->next = m->versions;
	m->versions = v;
	struct memstore_obj *o = ms_find(m, path);
	if (!o) {
		struct memstore_obj *n = realloc(m->objs, (m->nobjs + 1) * sizeof(*n));
		char *p = strdup(path);
		if (!n || !p) {
			free(p);
			if (n)
				m->objs = n;
			rc = -ENOMEM;
			goto out_unlock;
		}
		m->objs = n;
		o = &m->objs[m->nobjs++];
		o->path = p;
	}
	o->cur = v;
out_unlock:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void memstore_fail_range(struct memstore *m, const char *path, uint64_t off, uint64_t end, int rc)
{
	pthread_mutex_lock(&m->lock);
	free(m->err_path);
	m->err_path = rc ? strdup(path) : NULL;
	m->err_off = off;
	m->err_end = end;
	m->err_rc = rc;
	pthread_mutex_unlock(&m->lock);
}
