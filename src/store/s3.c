/* store/s3.c - the old store: the store.h interface over the S3 client (src/s3/client.h).
 *
 * Path "/a/b" is key cfg->s3_prefix + "a/b". A directory is any prefix "a/b/" that has keys
 * under it (or a marker object "a/b/"); it wins over an object "a/b" of the same name.
 * Open handles are read-only and pinned to the ETag seen at open: a replaced object reads
 * as -ESTALE, never as a mix of two versions.
 *
 * This file never writes anything but what a caller asked for (put/mkdir/rmdir/unlink/
 * rename), and never talks HTTP itself: every request goes through s3_*.
 *
 * Locks: none of its own. The store struct is read-only after store_s3_new; a store_file
 * is immutable after open, so parallel preads on one handle need no lock. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cfg.h"
#include "base/log.h"
#include "base/naming.h"
#include "base/stats.h"
#include "s3/client.h"
#include "base/util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

struct s3_store {
	struct store base;
	const struct ferry_config *cfg;
	struct s3_client *client;
	const char *prefix;          /* cfg->s3_prefix or "" */
	struct timespec mount_time;  /* mtime of directories that have no marker */
};

struct store_file {
	char *key;
	struct store_attr attr;      /* etag inside: the pin */
	char *head;                  /* bytes [0, head_len) of the pinned object, read at open */
	size_t head_len;
	int lazy;                    /* STORE_O_LAZY: attr holds only the pin until a read */
};

/* An open reads the object's first bytes with the GET that pins it (the response carries
 * the ETag, size and metadata a HEAD would), instead of a HEAD: a small file is then read
 * with one request in all, and a large one starts sooner. */
#define S3_OPEN_HEAD (64u << 10)

static struct s3_store *s3s(struct store *st) { return (struct s3_store *)st; }

/* Reject paths with empty, "." or ".." segments (callers should never send them). */
static int s3s_check_path(const char *path)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	if (path[1] == '\0')
		return 0;
	const char *seg = path + 1;
	for (;;) {
		const char *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return -EINVAL;
		if (!end)
			return 0;
		seg = end + 1;
	}
}

/* key of path (prefix + path without the leading '/'); dir adds a trailing '/' unless the
 * result is empty (the bucket root with no prefix). Returns a malloc'd string or NULL. */
/* 0 when path's key (dir: with a directory's '/') fits in S3's 1024 bytes, else -ENOENT:
 * S3 cannot hold such a key, so nothing is there (and nothing is asked for). */
static int s3s_fits(struct s3_store *s, const char *path, int dir)
{
	size_t key_len = strlen(s->prefix) + strlen(path) - 1 + (dir ? 1 : 0);
	return key_len <= NAME_S3_KEY_MAX ? 0 : -ENOENT;
}

static char *s3s_key(struct s3_store *s, const char *path, int dir)
{
	struct buf b = { 0 };
	const char *rel = path + 1;
	if (buf_puts(&b, s->prefix) || buf_puts(&b, rel))
		goto fail;
	if (dir && b.len && b.data[b.len - 1] != '/' && buf_puts(&b, "/"))
		goto fail;
	if (!b.data && buf_puts(&b, ""))
		goto fail;
	return b.data;
fail:
	buf_free(&b);
	return NULL;
}

static void s3s_dir_attr(struct s3_store *s, struct store_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = S_IFDIR | (s->cfg->dir_mode & 07777);
	a->nlink = 2;
	a->uid = s->cfg->uid;
	a->gid = s->cfg->gid;
	a->mtime = a->ctime = a->atime = s->mount_time;
	a->blocks = 0;
	a->have = STORE_IMPLIED_DIR;
}

/* Attributes of an object from HEAD (info) with metadata defaults from the configuration. */
static void s3s_file_attr(struct s3_store *s, const struct s3_object_info *oi, struct store_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = S_IFREG | (s->cfg->file_mode & 07777);
	a->nlink = 1;
	a->uid = s->cfg->uid;
	a->gid = s->cfg->gid;
	a->size = oi->size;
	a->blocks = (oi->size + 511) / 512;
	a->mtime = oi->last_modified;
	const struct s3_meta *m = &oi->meta;
	if (m->have & S3_META_MODE) {
		a->mode = S_IFREG | (m->mode & 07777);
		a->have |= STORE_HAVE_MODE;
	}
	if (m->have & S3_META_UID) {
		a->uid = m->uid;
		a->have |= STORE_HAVE_UID;
	}
	if (m->have & S3_META_GID) {
		a->gid = m->gid;
		a->have |= STORE_HAVE_GID;
	}
	if (m->have & S3_META_MTIME) {
		a->mtime = m->mtime;
		a->have |= STORE_HAVE_MTIME;
	}
	a->atime = a->ctime = a->mtime;
	snprintf(a->etag, sizeof(a->etag), "%s", oi->etag);
}

/* ------------------------------------------------------------------------------------
 * stat: one listing of the keys that begin with the name's key ("a/b"), no delimiter, one
 * page. Keys come in byte order: "a/b" itself, then siblings that extend it with a byte
 * below '/' ("a/b-1", "a/b.txt"...), then "a/b/" (the marker) and "a/b/..." (the
 * directory's keys). A page that reaches "a/b/" or beyond, or the end, answers everything:
 * absent (one request), a directory (its marker known), or a file (then a HEAD for its
 * x-amz-meta-*). A page cut off among the siblings falls back to a one-key listing of
 * "a/b/". The directory wins over a file of the same name. */

#define S3S_PROBE_KEYS 100

struct s3s_probe {
	const char *key, *dkey;      /* "a/b" and "a/b/" */
	size_t dlen;
	int file;                    /* the object "a/b" exists */
	int dir;                     /* keys under "a/b/" exist */
	int marker;                  /* the object "a/b/" exists */
	int settled;                 /* the page reached "a/b/" or beyond, or the end */
};

static int s3s_on_probe_page(void *arg, const struct s3xml_list *page)
{
	struct s3s_probe *p = arg;
	for (size_t i = 0; i < page->nobjects; i++) {
		const char *k = page->objects[i].key;
		if (strcmp(k, p->key) == 0) {
			p->file = 1;
		} else if (strncmp(k, p->dkey, p->dlen) == 0) {
			p->dir = 1;
			p->marker |= k[p->dlen] == '\0';
			p->settled = 1;
		} else if (strcmp(k, p->dkey) > 0) {
			p->settled = 1;
		}
	}
	for (size_t i = 0; i < page->nprefixes; i++)
		if (strncmp(page->prefixes[i], p->dkey, p->dlen) == 0)
			p->dir = p->settled = 1;
	if (!page->is_truncated)
		p->settled = 1;
	return 1;  /* one page */
}

struct s3s_probe_dir {
	int any;
	int marker;                  /* the first key is the marker "dir/" itself */
	const char *dirkey;
};

static int s3s_on_probe_dir_page(void *arg, const struct s3xml_list *page)
{
	struct s3s_probe_dir *p = arg;
	if (page->nobjects || page->nprefixes)
		p->any = 1;
	if (page->nobjects && strcmp(page->objects[0].key, p->dirkey) == 0)
		p->marker = 1;
	return 1;  /* one page is enough */
}

/* Is the name key ("a/b") a directory (1, *marker set when "a/b/" exists as an object),
 * a file (2), or neither (0)? -errno when S3 fails. */
static int s3s_probe_name(struct s3_store *s, const char *key, const char *dkey, int *marker)
{
	struct s3s_probe p = { .key = key, .dkey = dkey, .dlen = strlen(dkey) };
	struct s3_list_opts o = { .prefix = key, .max_keys = S3S_PROBE_KEYS, .max_pages = 1 };
	int rc = s3_list(s->client, &o, s3s_on_probe_page, &p);
	if (rc < 0)
		return rc;
	if (!p.settled) {            /* cut off among siblings: ask about "a/b/" alone */
		struct s3s_probe_dir d = { .dirkey = dkey };
		struct s3_list_opts od = {
			.prefix = dkey, .delimiter = "/", .max_keys = 1, .max_pages = 1
		};
		if ((rc = s3_list(s->client, &od, s3s_on_probe_dir_page, &d)) < 0)
			return rc;
		p.dir = d.any;
		p.marker = d.marker;
	}
	*marker = p.marker;
	return p.dir ? 1 : p.file ? 2 : 0;
}

static int s3s_stat(struct store *st, const char *path, struct store_attr *out)
{
	struct s3_store *s = s3s(st);
	struct s3_object_info oi;
	int rc, marker = 0;
	if ((rc = s3s_check_path(path)))
		return rc;
	if ((rc = s3s_fits(s, path, 0)))
		return rc;
	if (strcmp(path, "/") == 0) {
		s3s_dir_attr(s, out);
		return 0;
	}
	char *key = s3s_key(s, path, 0);
	char *dkey = s3s_key(s, path, 1);
	if (!key || !dkey) {
		rc = -ENOMEM;
		goto out;
	}
	rc = s3s_probe_name(s, key, dkey, &marker);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		rc = -ENOENT;
		goto out;
	}
	if (rc == 1) {
		s3s_dir_attr(s, out);
		if (marker && s3_head(s->client, dkey, &oi) == 0) {
			/* a marker: its mtime (and any mode/owner it carries) */
			struct store_attr fa;
			s3s_file_attr(s, &oi, &fa);
			out->mtime = out->ctime = out->atime = fa.mtime;
			if (fa.have & STORE_HAVE_MODE)
				out->mode = S_IFDIR | (fa.mode & 07777);
			out->uid = fa.uid;
			out->gid = fa.gid;
			out->have = fa.have | STORE_HAVE_MTIME;
			snprintf(out->etag, sizeof(out->etag), "%s", fa.etag);
		}
		rc = 0;
		goto out;
	}
	if ((rc = s3_head(s->client, key, &oi)))
		goto out;
	s3s_file_attr(s, &oi, out);
out:
	free(key);
	free(dkey);
	return rc;
}

/* ------------------------------------------------------------------------------------
 * readdir: ListObjectsV2 with delimiter '/', every page. The two sorted lists of a page
 * (objects and common prefixes) are merged; an object "x" is held back until the listing
 * has passed "x/", so that when both exist only the directory is delivered. */

struct s3s_pending {
	char *name;
	struct store_attr attr;
};

struct s3s_readdir {
	struct s3_store *s;
	const char *dirkey;          /* "a/b/" or the prefix ("" at the bucket root) */
	size_t dirlen;
	store_dirent_fn fn;
	void *arg;
	int rc;                      /* what fn returned to stop */
	struct s3s_pending *pend;    /* FIFO of objects waiting for their "x/" to pass */
	size_t npend, cap;
	char *last_dir;              /* the last directory name delivered */
};

static int s3s_deliver_file(struct s3s_readdir *r, struct s3s_pending *p)
{
	struct store_dirent de = { .name = p->name, .type = S_IFREG, .attr = &p->attr };
	int rc = 0;
	if (!(r->last_dir && strcmp(r->last_dir, p->name) == 0))
		rc = r->fn(r->arg, &de);
	free(p->name);
	p->name = NULL;
	return rc;
}

/* Deliver held-back objects whose "name/" sorts before pos (they can have no directory). */
static int s3s_flush(struct s3s_readdir *r, const char *pos)
{
	size_t i = 0;
	int rc = 0;
	while (i < r->npend && rc == 0) {
		struct s3s_pending *p = &r->pend[i];
		size_t n = strlen(p->name);
		if (pos) {
			/* compare p->name + "/" with pos */
			int c = strncmp(p->name, pos, n);
			if (c == 0)
				c = (unsigned char)'/' - (unsigned char)pos[n];
			if (c >= 0)
				break;
		}
		rc = s3s_deliver_file(r, p);
		i++;
	}
	if (i) {
		memmove(r->pend, r->pend + i, (r->npend - i) * sizeof(*r->pend));
		r->npend -= i;
	}
	return rc;
}

static int s3s_on_object(struct s3s_readdir *r, const struct s3xml_object *o)
{
	const char *name = o->key + r->dirlen;
	if (strncmp(o->key, r->dirkey, r->dirlen) != 0 || name[0] == '\0')
		return 0;  /* the directory's own marker (or a key outside it) */
	int rc = s3s_flush(r, name);
	if (rc)
		return rc;
	if (r->npend == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct s3s_pending *p = realloc(r->pend, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->pend = p;
		r->cap = cap;
	}
	struct s3s_pending *p = &r->pend[r->npend];
	struct s3_object_info oi = { .size = o->size, .last_modified = o->last_modified };
	snprintf(oi.etag, sizeof(oi.etag), "%s", o->etag);
	s3s_file_attr(r->s, &oi, &p->attr);
	p->name = util_strdup(name);
	if (!p->name)
		return -ENOMEM;
	r->npend++;
	return 0;
}

static int s3s_on_prefix(struct s3s_readdir *r, const char *prefix)
{
	if (strncmp(prefix, r->dirkey, r->dirlen) != 0)
		return 0;
	const char *rel = prefix + r->dirlen;     /* "x/" */
	size_t n = strlen(rel);
	int rc = s3s_flush(r, rel);
	if (rc)
		return rc;
	char *name = util_strndup(rel, n ? n - 1 : 0);
	if (!name)
		return -ENOMEM;
	/* an object "x" held back for this directory "x/" is shadowed: drop it */
	for (size_t i = 0; i < r->npend; i++) {
		if (strcmp(r->pend[i].name, name) == 0) {
			stats_inc(shadowed);     /* spec 2: counted, listed by ferryctl scan */
			free(r->pend[i].name);
			memmove(&r->pend[i], &r->pend[i + 1],
				(r->npend - i - 1) * sizeof(*r->pend));
			r->npend--;
			break;
		}
	}
	struct store_attr a;
	s3s_dir_attr(r->s, &a);
	struct store_dirent de = { .name = name, .type = S_IFDIR, .attr = &a };
	rc = r->fn(r->arg, &de);
	free(r->last_dir);
	r->last_dir = name;
	return rc;
}

static int s3s_on_page(void *arg, const struct s3xml_list *page)
{
	struct s3s_readdir *r = arg;
	size_t i = 0, j = 0;
	int rc = 0;
	while (rc == 0 && (i < page->nobjects || j < page->nprefixes)) {
		if (j >= page->nprefixes ||
		    (i < page->nobjects && strcmp(page->objects[i].key, page->prefixes[j]) < 0))
			rc = s3s_on_object(r, &page->objects[i++]);
		else
			rc = s3s_on_prefix(r, page->prefixes[j++]);
	}
	return rc;
}

static int s3s_readdir(struct store *st, const char *path, store_dirent_fn fn, void *arg)
{
	struct s3_store *s = s3s(st);
	int rc;
	if ((rc = s3s_check_path(path)))
		return rc;
	if ((rc = s3s_fits(s, path, 1)))
		return rc;
	char *dkey = s3s_key(s, path, 1);
	if (!dkey)
		return -ENOMEM;
	struct s3s_readdir r = {
		.s = s, .dirkey = dkey, .dirlen = strlen(dkey), .fn = fn, .arg = arg
	};
	struct s3_list_opts o = { .prefix = dkey, .delimiter = "/" };
	rc = s3_list(s->client, &o, s3s_on_page, &r);
	if (rc == 0)
		rc = s3s_flush(&r, NULL);
	for (size_t i = 0; i < r.npend; i++)
		free(r.pend[i].name);
	free(r.pend);
	free(r.last_dir);
	free(dkey);
	return rc;
}

/* ------------------------------------------------------------------------------------
 * files */

struct head_sink {
	char *buf;
	size_t len;
};

static int head_sink_fn(void *arg, const void *data, size_t len)
{
	struct head_sink *h = arg;
	if (len > S3_OPEN_HEAD - h->len)
		return -EIO;     /* more than asked for: not a response to our range */
	memcpy(h->buf + h->len, data, len);
	h->len += len;
	return 0;
}

/* GET the first S3_OPEN_HEAD bytes, keeping them and the object's info. An object the
 * range is past the end of (an empty one: 416) is pinned by a HEAD instead. */
static int open_get_head(struct s3_store *s, struct store_file *f, const char *expect_etag,
			 struct s3_object_info *oi)
{
	struct head_sink h = { .buf = malloc(S3_OPEN_HEAD) };
	if (!h.buf)
		return -ENOMEM;
	memset(oi, 0, sizeof(*oi));
	int rc = s3_get_stream(s->client, f->key, expect_etag, 0, S3_OPEN_HEAD, head_sink_fn, &h,
			       oi);
	if (rc == 0 && oi->etag[0] &&
	    h.len == (oi->size < S3_OPEN_HEAD ? oi->size : S3_OPEN_HEAD)) {
		f->head = h.buf;
		f->head_len = h.len;
		return 0;
	}
	free(h.buf);
	if (rc)
		return rc;
	return s3_head(s->client, f->key, oi);
}

static int s3s_open(struct store *st, const char *path, int flags, uint32_t mode,
		    const char *expect_etag, struct store_file **out)
{
	struct s3_store *s = s3s(st);
	struct s3_object_info oi;
	int rc;
	(void)mode;
	if ((rc = s3s_check_path(path)))
		return rc;
	if ((rc = s3s_fits(s, path, 0)))
		return (flags & O_ACCMODE) == O_RDONLY ? rc : -ENAMETOOLONG;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)))
		return -EROFS;
	int lazy = (flags & STORE_O_LAZY) != 0;
	if (strcmp(path, "/") == 0)
		return -EISDIR;
	struct store_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->key = s3s_key(s, path, 0);
	if (!f->key) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (lazy) {
		f->lazy = 1;
		if (expect_etag)
			snprintf(f->attr.etag, sizeof(f->attr.etag), "%s", expect_etag);
		*out = f;
		return 0;
	}
	if ((rc = open_get_head(s, f, expect_etag, &oi)))
		goto out_free;
	if (expect_etag && expect_etag[0] && strcmp(expect_etag, oi.etag) != 0) {
		log_info("s3: %s changed since it was seen (ETag %s, expected %s)", f->key, oi.etag,
			 expect_etag);
		rc = -ESTALE;
		goto out_free;
	}
	s3s_file_attr(s, &oi, &f->attr);
	if (f->head_len > f->attr.size)
		f->head_len = (size_t)f->attr.size;
	*out = f;
	return 0;
out_free:
	free(f->head);
	free(f->key);
	free(f);
	return rc;
}

/* A lazy handle used other than by a full stream: HEAD now, as a plain open would have. */
static int s3s_settle(struct s3_store *s, struct store_file *f)
{
	struct s3_object_info oi;
	if (!f->lazy)
		return 0;
	int rc = s3_head(s->client, f->key, &oi);
	if (rc)
		return rc;
	if (f->attr.etag[0] && strcmp(f->attr.etag, oi.etag) != 0) {
		log_info("s3: %s changed since it was seen (ETag %s, expected %s)", f->key, oi.etag,
			 f->attr.etag);
		return -ESTALE;
	}
	s3s_file_attr(s, &oi, &f->attr);
	f->lazy = 0;
	return 0;
}

static int s3s_fstat(struct store *st, struct store_file *f, struct store_attr *out)
{
	int rc = s3s_settle(s3s(st), f);
	if (!rc)
		*out = f->attr;
	return rc;
}

static ssize_t s3s_pread(struct store *st, struct store_file *f, void *buf, size_t len,
			 uint64_t off)
{
	struct s3_store *s = s3s(st);
	int rc = s3s_settle(s, f);
	if (rc)
		return rc;
	if (off >= f->attr.size || len == 0)
		return 0;
	if (len > f->attr.size - off)
		len = (size_t)(f->attr.size - off);
	if (off + len <= f->head_len) {
		memcpy(buf, f->head + off, len);
		return (ssize_t)len;
	}
	return s3_get_range(s->client, f->key, f->attr.etag, off, len, buf);
}

/* A lazy handle's whole-object GET: its first reply's headers are the HEAD we skipped, and
 * they settle the handle before the first body byte reaches the caller's sink, so the
 * sink may store_fstat the handle (the copy decides from the ETag how to verify). */
struct lazy_stream {
	struct s3_store *s;
	struct store_file *f;
	store_sink_fn sink;
	void *arg;
};

static void lazy_info(void *arg, const struct s3_object_info *oi)
{
	struct lazy_stream *ls = arg;
	if (ls->f->lazy) {     /* the first attempt; a resumed one is pinned to this ETag */
		s3s_file_attr(ls->s, oi, &ls->f->attr);
		ls->f->lazy = 0;
	}
}

static int lazy_sink(void *arg, const void *data, size_t len)
{
	struct lazy_stream *ls = arg;
	return ls->sink(ls->arg, data, len);
}

static int s3s_read_stream(struct store *st, struct store_file *f, uint64_t off, uint64_t len,
			   store_sink_fn sink, void *arg)
{
	struct s3_store *s = s3s(st);
	int rc;
	if (f->lazy && off == 0 && len == UINT64_MAX) {
		struct lazy_stream ls = { s, f, sink, arg };
		struct s3_object_info oi;
		rc = s3_get_stream_info(s->client, f->key, f->attr.etag, 0, UINT64_MAX, lazy_sink,
					lazy_info, &ls, &oi);
		if (!rc) {
			s3s_file_attr(s, &oi, &f->attr);
			f->lazy = 0;
		}
		return rc;
	}
	if ((rc = s3s_settle(s, f)))
		return rc;
	if (off >= f->attr.size || len == 0)
		return 0;
	if (len == UINT64_MAX || len > f->attr.size - off)
		len = f->attr.size - off;
	if (off < f->head_len) {   /* the part read at open first */
		size_t n = f->head_len - (size_t)off;
		if (n > len)
			n = (size_t)len;
		rc = sink(arg, f->head + off, n);
		if (rc || n == len)
			return rc;
		off += n;
		len -= n;
	}
	return s3_get_stream(s->client, f->key, f->attr.etag, off, len, sink, arg, NULL);
}

static int s3s_close(struct store *st, struct store_file *f)
{
	(void)st;
	if (f) {
		free(f->head);
		free(f->key);
		free(f);
	}
	return 0;
}

/* ------------------------------------------------------------------------------------
 * writes (the mirror writes back to S3 through these) */

static int s3s_put(struct store *st, const char *path, const struct store_source *src)
{
	struct s3_store *s = s3s(st);
	struct s3_meta meta = { 0 };
	int rc;
	if ((rc = s3s_check_path(path)))
		return rc;
	if (s3s_fits(s, path, 0))
		return -ENAMETOOLONG;    /* S3 refuses a key over 1024 bytes */
	if (strcmp(path, "/") == 0)
		return -EISDIR;
	char *key = s3s_key(s, path, 0);
	if (!key)
		return -ENOMEM;
	if (src->have_meta) {
		meta.have = S3_META_MODE | S3_META_UID | S3_META_GID | S3_META_MTIME;
		meta.mode = src->mode;
		meta.uid = src->uid;
		meta.gid = src->gid;
		meta.mtime = src->mtime;
	}
	rc = s3_put(s->client, key, src->size, src->read, src->arg, src->have_meta ? &meta : NULL,
		    NULL);
	free(key);
	return rc;
}

static int s3s_mkdir(struct store *st, const char *path, uint32_t mode)
{
	struct s3_store *s = s3s(st);
	int rc;
	if ((rc = s3s_check_path(path)))
		return rc;
	if (strcmp(path, "/") == 0)
		return -EEXIST;
	char *dkey = s3s_key(s, path, 1);
	if (!dkey)
		return -ENOMEM;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct s3_meta meta = { .have = S3_META_MODE | S3_META_MTIME,
				.mode = S_IFDIR | (mode & 07777), .mtime = now };
	rc = s3_put_buf(s->client, dkey, "", 0, &meta, NULL);
	free(dkey);
	return rc;
}

struct s3s_rmdir_probe {
	const char *dirkey;
	int marker, others;
};

static int s3s_on_rmdir_page(void *arg, const struct s3xml_list *page)
{
	struct s3s_rmdir_probe *p = arg;
	for (size_t i = 0; i < page->nobjects; i++) {
		if (strcmp(page->objects[i].key, p->dirkey) == 0)
			p->marker = 1;
		else
			p->others = 1;
	}
	if (page->nprefixes)
		p->others = 1;
	return 1;
}

static int s3s_rmdir(struct store *st, const char *path)
{
	struct s3_store *s = s3s(st);
	int rc;
	if ((rc = s3s_check_path(path)))
		return rc;
	if (strcmp(path, "/") == 0)
		return -EBUSY;
	char *dkey = s3s_key(s, path, 1);
	if (!dkey)
		return -ENOMEM;
	struct s3s_rmdir_probe p = { .dirkey = dkey };
	struct s3_list_opts o = { .prefix = dkey, .delimiter = "/", .max_keys = 2, .max_pages = 1 };
	rc = s3_list(s->client, &o, s3s_on_rmdir_page, &p);
	if (rc < 0)
		goto out;
	if (p.others)
		rc = -ENOTEMPTY;
	else if (!p.marker)
		rc = -ENOENT;
	else
		rc = s3_delete(s->client, dkey);
out:
	free(dkey);
	return rc;
}

/* unlink deletes the object; like S3 itself, deleting a missing key succeeds (the
 * mirror replays journal entries and must be idempotent). */
static int s3s_unlink(struct store *st, const char *path)
{
	struct s3_store *s = s3s(st);
	int rc;
	if ((rc = s3s_check_path(path)))
		return rc;
	if (strcmp(path, "/") == 0)
		return -EISDIR;
	char *key = s3s_key(s, path, 0);
	if (!key)
		return -ENOMEM;
	rc = s3_delete(s->client, key);
	free(key);
	return rc;
}

/* rename of a file: CopyObject (metadata kept) then DELETE of the source. Directories
 * are not renamed here (-EXDEV: the caller copies). */
static int s3s_rename(struct store *st, const char *from, const char *to, unsigned flags)
{
	struct s3_store *s = s3s(st);
	struct s3_object_info oi;
	char *fk = NULL, *tk = NULL;
	int rc;
	if ((rc = s3s_check_path(from)) || (rc = s3s_check_path(to)))
		return rc;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (strcmp(from, "/") == 0 || strcmp(to, "/") == 0)
		return -EBUSY;
	fk = s3s_key(s, from, 0);
	tk = s3s_key(s, to, 0);
	if (!fk || !tk) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = s3_head(s->client, fk, &oi))) {
		if (rc == -ENOENT) {
			struct store_attr a;
			if (s3s_stat(st, from, &a) == 0 && S_ISDIR(a.mode))
				rc = -EXDEV;
		}
		goto out;
	}
	if (flags & RENAME_NOREPLACE) {
		struct store_attr a;
		rc = s3s_stat(st, to, &a);
		if (rc == 0) {
			rc = -EEXIST;
			goto out;
		}
		if (rc != -ENOENT)
			goto out;
	}
	if ((rc = s3_copy(s->client, fk, tk, oi.etag, NULL)))
		goto out;
	rc = s3_delete(s->client, fk);
out:
	free(fk);
	free(tk);
	return rc;
}

static int s3s_statfs(struct store *st, const char *path, struct statvfs *out)
{
	(void)st;
	(void)path;
	memset(out, 0, sizeof(*out));
	out->f_bsize = out->f_frsize = 4096;
	out->f_blocks = out->f_bfree = out->f_bavail = 1ull << 40;  /* 4 PiB: S3 has no limit */
	out->f_files = out->f_ffree = out->f_favail = 1ull << 40;
	out->f_namemax = 255;
	return 0;
}

static int s3s_probe(struct store *st)
{
	return s3_probe(s3s(st)->client);
}

static void s3s_destroy(struct store *st)
{
	struct s3_store *s = s3s(st);
	if (!s)
		return;
	s3_client_free(s->client);
	free(s);
}

static const struct store_ops s3_store_ops = {
	.name = "s3",
	.destroy = s3s_destroy,
	.stat = s3s_stat,
	.readdir = s3s_readdir,
	.statfs = s3s_statfs,
	.open = s3s_open,
	.fstat = s3s_fstat,
	.pread = s3s_pread,
	.read_stream = s3s_read_stream,
	.close = s3s_close,
	.put = s3s_put,
	.mkdir = s3s_mkdir,
	.rmdir = s3s_rmdir,
	.unlink = s3s_unlink,
	.rename = s3s_rename,
	.probe = s3s_probe,
};

int store_s3_new(const struct ferry_config *cfg, struct store **out)
{
	struct s3_store *s = calloc(1, sizeof(*s));
	int rc;
	if (!s)
		return -ENOMEM;
	s->base.ops = &s3_store_ops;
	s->cfg = cfg;
	s->prefix = cfg->s3_prefix ? cfg->s3_prefix : "";
	clock_gettime(CLOCK_REALTIME, &s->mount_time);
	if ((rc = s3_client_new(cfg, &s->client))) {
		free(s);
		return rc;
	}
	*out = &s->base;
	return 0;
}

struct s3_client *store_s3_client(struct store *st)
{
	return st && st->ops == &s3_store_ops ? s3s(st)->client : NULL;
}
