/* reconcile.c - the write-back's directory work (doc/mirror.md): make S3 under a
 * directory match the merged view (uploads now, deletes queued), delete a key or every
 * reachable key under a prefix, and verify, dry, that S3 holds what the view shows. Runs
 * on the mirror's workers; holds no lock. */
#include "writeback/mirror-int.h"
#include "writeback/mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cfg.h"
#include "base/log.h"
#include "base/naming.h"
#include "base/util.h"
#include "ledger/ledger.h"
#include "s3/client.h"
#include "s3/xml.h"
#include "store/store.h"
#include "view/route.h"
#include "writeback/journal.h"

/* ------------------------------------------------------------------------------------
 * reconciling a directory of the view with S3 (also the verification, dry) */

struct vent {            /* one entry of the merged view */
	char *name;
	uint32_t mode;
	uint64_t size;
	enum route_src src;
};

struct sent {            /* one S3 object or common prefix directly in the directory */
	char *name;
	int prefix;          /* a common prefix "name/" */
	uint64_t size;
	char etag[80];
};

struct vlist { struct vent *v; size_t n, cap; };
struct slist { struct sent *v; size_t n, cap; const char *dirkey; size_t dirlen; };

static int on_view(void *arg, const char *name, const struct stat *st, enum route_src src)
{
	struct vlist *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct vent *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].name = strdup(name)))
		return -ENOMEM;
	l->v[l->n].mode = st->st_mode;
	l->v[l->n].size = (uint64_t)st->st_size;
	l->v[l->n].src = src;
	l->n++;
	return 0;
}

static int slist_push(struct slist *l, const char *name, size_t len, int prefix,
		      uint64_t size, const char *etag)
{
	if (len == 0)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct sent *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct sent *e = &l->v[l->n];
	if (!(e->name = strndup(name, len)))
		return -ENOMEM;
	e->prefix = prefix;
	e->size = size;
	snprintf(e->etag, sizeof(e->etag), "%s", etag ? etag : "");
	l->n++;
	return 0;
}

static int on_s3_page(void *arg, const struct s3xml_list *page)
{
	struct slist *l = arg;
	int rc = 0;
	for (size_t i = 0; i < page->nobjects && !rc; i++) {
		const struct s3xml_object *o = &page->objects[i];
		if (strncmp(o->key, l->dirkey, l->dirlen))
			continue;
		rc = slist_push(l, o->key + l->dirlen, strlen(o->key + l->dirlen), 0, o->size,
				o->etag);
	}
	for (size_t i = 0; i < page->nprefixes && !rc; i++) {
		const char *p = page->prefixes[i];
		size_t n = strlen(p);
		if (strncmp(p, l->dirkey, l->dirlen) || n <= l->dirlen)
			continue;
		rc = slist_push(l, p + l->dirlen, n - l->dirlen - 1, 1, 0, NULL);
	}
	return rc;
}

static int vent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vent *)a)->name, ((const struct vent *)b)->name);
}

static const struct vent *view_find(const struct vlist *v, const char *name)
{
	struct vent k = { .name = (char *)name };
	if (!v->n)
		return NULL;      /* bsearch never gets a NULL array */
	return bsearch(&k, v->v, v->n, sizeof(*v->v), vent_cmp);
}

static const struct sent *s3_find(const struct slist *s, const char *name, int prefix)
{
	for (size_t i = 0; i < s->n; i++)   /* small per directory; sorted lookups not needed */
		if (s->v[i].prefix == prefix && !strcmp(s->v[i].name, name))
			return &s->v[i];
	return NULL;
}

static void child_path(const char *dir, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", strcmp(dir, "/") ? dir : "", name);
}

/* MD5 of the new store's file, hex, for comparing with a single-part ETag. */
static int nfs_md5(struct store *nfs, const char *path, char hex[33])
{
	struct store_file *f;
	int rc = store_open(nfs, path, O_RDONLY, 0, NULL, &f);
	if (rc)
		return rc;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	uint64_t off = 0;
	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = store_pread(nfs, f, buf, bufsz, off);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += (uint64_t)n;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	util_hex(md, mdlen, hex);
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	store_close(nfs, f);
	return rc;
}

/* Whether S3's object (listing size/ETag) already holds the new store's file at path:
 * the ETag this ledger recorded when it uploaded or migrated it, with the same size.
 * With deep (verification) the content is also compared by MD5 and the metadata by HEAD. */
static int s3_has_file(struct run *x, const char *path, const struct vent *ve,
		       const struct sent *se, int deep, const char **why)
{
	struct mirror *m = x->m;
	struct ledger_file rec;
	*why = "content";
	if (!se)
		return 0;
	if (se->size != ve->size) {
		*why = "size";
		return 0;
	}
	int known = m->l && ledger_file_get(m->l, path, &rec) == 0 && rec.etag[0] &&
		    !strcmp(rec.etag, se->etag) && rec.size == se->size;
	if (!deep)
		return known;
	if (known && rec.state == LEDGER_MIGRATED)
		return 1;     /* copied from this very object and unchanged since (else modified) */
	if (!known && S_ISREG(ve->mode)) {
		char md5[33];
		if (strlen(se->etag) != 32 || nfs_md5(m->r->nfs, path, md5) ||
		    strcmp(md5, se->etag))
			return 0;
	}
	/* metadata: what the mount shows of mode (and for symlinks the target) */
	struct buf key = { 0 };
	struct s3_object_info oi;
	int ok = 0;
	if (mirror_key_of(m, path, 0, &key) == 0 && s3_head(x->c, key.data, &oi) == 0) {
		*why = "x-amz-meta-mode";
		ok = (oi.meta.have & S3_META_MODE) && oi.meta.mode == ve->mode;
		if (ok && S_ISLNK(ve->mode)) {
			char t[NAME_MAX_PATH + 2], b[NAME_MAX_PATH + 2];
			ssize_t n = store_readlink(m->r->nfs, path, t, sizeof(t));
			*why = "symlink target";
			ok = n >= 0 && s3_get_range(x->c, key.data, NULL, 0, sizeof(b), b) == n &&
			     !memcmp(t, b, (size_t)n);
		}
	}
	buf_free(&key);
	return ok;
}

/* One entry of the view in a directory being reconciled. */
static int reconcile_entry(struct run *x, const char *path, const struct vent *ve,
			   const struct sent *obj, const struct sent *pre, struct buf *report,
			   int *diffs)
{
	struct mirror *m = x->m;
	const char *why;
	if (S_ISDIR(ve->mode)) {
		if (ve->src == ROUTE_S3)
			return 0;         /* only in S3: S3 already is the view there */
		if (!pre) {           /* S3 has nothing under it: the marker keeps it */
			if (report) {
				(*diffs)++;
				return buf_printf(report, "missing %s/\n", path);
			}
			struct store_attr a;
			int rc = store_stat(m->r->nfs, path, &a);
			if (rc == 0)
				rc = mirror_upload(x, path, &a);
			if (rc)
				return rc;
		}
		return reconcile_dir(x, path, report, diffs);
	}
	if (ve->src == ROUTE_S3 || !(S_ISREG(ve->mode) || S_ISLNK(ve->mode)))
		return 0;
	if (!report && m->in_mount && jn_is_busy(path, m->carry_dirty))
		return 0;             /* its own entry stays in the journal while it is busy */
	if (s3_has_file(x, path, ve, obj, report != NULL, &why))
		return 0;
	if (report) {
		(*diffs)++;
		return obj ? buf_printf(report, "differs %s: %s\n", path, why) :
			     buf_printf(report, "missing %s\n", path);
	}
	struct store_attr a = { .mode = ve->mode };
	return mirror_upload(x, path, &a);
}

int reconcile_dir(struct run *x, const char *dir, struct buf *report, int *diffs)
{
	struct mirror *m = x->m;
	struct vlist v = { 0 };
	struct buf dkey = { 0 };
	struct slist s = { 0 };
	char *child = malloc(NAME_MAX_PATH + 2);     /* on the heap: this recurses */
	int rc = child ? route_readdir(m->r, dir, on_view, &v) : -ENOMEM;
	if (rc)
		goto out;
	if (v.n > 1)
		qsort(v.v, v.n, sizeof(*v.v), vent_cmp);
	if ((rc = mirror_key_of(m, dir, 1, &dkey)))
		goto out;
	s.dirkey = dkey.data;
	s.dirlen = dkey.len;
	struct s3_list_opts o = { .prefix = dkey.data, .delimiter = "/" };
	if ((rc = s3_list(x->c, &o, on_s3_page, &s)))
		goto out;
	for (size_t i = 0; i < v.n && !rc; i++) {
		child_path(dir, v.v[i].name, child, NAME_MAX_PATH + 2);
		if (!mirror_key_fits(m, child, S_ISDIR(v.v[i].mode))) {
			if (report) {
				(*diffs)++;
				rc = buf_printf(report,
						"not in S3 %s: its key would be over %d bytes\n",
						child, NAME_S3_KEY_MAX);
			} else {
				rc = mirror_too_long(x, child, v.v[i].mode);
			}
			continue;
		}
		rc = reconcile_entry(x, child, &v.v[i], s3_find(&s, v.v[i].name, 0),
				     s3_find(&s, v.v[i].name, 1), report, diffs);
	}
	/* what S3 holds here and the view does not show */
	for (size_t i = 0; i < s.n && !rc; i++) {
		const struct sent *e = &s.v[i];
		const struct vent *ve = view_find(&v, e->name);
		if (!name_segment_ok(e->name, strlen(e->name)))
			continue;     /* unreachable: never shown, never ours to delete */
		if (ve && (e->prefix ? S_ISDIR(ve->mode) : 1))
			continue;     /* shown (an object hidden by a directory is left alone) */
		struct buf k = { 0 };
		rc = buf_printf(&k, "%s%s%s", dkey.data, e->name, e->prefix ? "/" : "");
		if (!rc && report) {
			(*diffs)++;
			rc = buf_printf(report, "extra %s\n", k.data);
		} else if (!rc) {
			rc = mirror_queue_delete(x, k.data, e->prefix);
		}
		buf_free(&k);
	}
out:
	for (size_t i = 0; i < v.n; i++)
		free(v.v[i].name);
	free(v.v);
	for (size_t i = 0; i < s.n; i++)
		free(s.v[i].name);
	free(s.v);
	buf_free(&dkey);
	free(child);
	return rc;
}

/* ------------------------------------------------------------------------------------
 * deletes: a key, or every reachable key under a prefix */

struct tree_del {
	struct mirror *m;
	const char **keys;
	size_t n, cap;
	int rc;
};

static int on_tree_page(void *arg, const struct s3xml_list *page)
{
	struct tree_del *t = arg;
	char path[NAME_MAX_PATH + 2];
	const char *prefix = t->m->cfg->s3_prefix ? t->m->cfg->s3_prefix : "";
	for (size_t i = 0; i < page->nobjects; i++) {
		const char *key = page->objects[i].key;
		if (name_key_to_path(prefix, key, path, sizeof(path)))
			continue;     /* unreachable keys are not ours */
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 256;
			const char **k = realloc(t->keys, cap * sizeof(*k));
			if (!k)
				return -ENOMEM;
			t->keys = k;
			t->cap = cap;
		}
		if (!(t->keys[t->n] = strdup(key)))
			return -ENOMEM;
		t->n++;
	}
	return 0;
}

static int delete_keys(struct run *x, const char *const *keys, size_t n)
{
	int rc = 0;
	if (!n)
		return 0;
	rc = s3_delete_many(x->c, keys, n);
	if (rc == -ENOTSUP) {
		rc = 0;
		for (size_t i = 0; i < n && !rc; i++)
			rc = s3_delete(x->c, keys[i]);
	} else if (rc > 0) {
		rc = -EIO;           /* S3 refused some (each logged): try the batch again */
	}
	if (!rc)
		mirror_count_deletes(n);
	return rc;
}

int reconcile_delete(struct run *x, const char *key, int tree)
{
	if (!tree) {
		const char *k = key;
		return delete_keys(x, &k, 1);
	}
	struct tree_del t = { .m = x->m };
	struct s3_list_opts o = { .prefix = key };
	int rc = s3_list(x->c, &o, on_tree_page, &t);
	if (!rc)
		rc = delete_keys(x, t.keys, t.n);
	for (size_t i = 0; i < t.n; i++)
		free((char *)t.keys[i]);
	free(t.keys);
	return rc;
}

int reconcile_absent(struct run *x, const char *path)
{
	struct buf k = { 0 };
	int rc = mirror_key_of(x->m, path, 0, &k);
	if (!rc)
		rc = mirror_queue_delete(x, k.data, 0);
	if (!rc)
		rc = buf_puts(&k, "/") ?: mirror_queue_delete(x, k.data, 1);
	buf_free(&k);
	return rc;
}

/* ------------------------------------------------------------------------------------
 * verification */

int reconcile_verify_item(struct run *x, const struct mirror_item *it, struct buf *out, int *diffs)
{
	struct mirror *m = x->m;
	struct route_entry e;
	struct store_attr a;
	if (!name_path_ok(it->path))
		return 0;
	int rc = route_lookup(m->r, it->path, &e);
	if (rc == 0 && e.src != ROUTE_S3 && !mirror_key_fits(m, it->path, S_ISDIR(e.attr.mode))) {
		(*diffs)++;
		return buf_printf(out, "not in S3 %s: its key would be over %d bytes\n", it->path,
				  NAME_S3_KEY_MAX);
	}
	if (rc == -ENOENT || rc == -ENOTDIR) {
		rc = store_stat(m->r->s3, it->path, &a);
		if (rc == -ENOENT || rc == -ENOTDIR)
			return 0;
		if (rc)
			return rc;
		(*diffs)++;
		return buf_printf(out, "extra %s: gone from the mount, still in S3\n", it->path);
	}
	if (rc || e.src == ROUTE_S3)
		return rc;
	if (S_ISDIR(e.attr.mode)) {
		rc = store_stat(m->r->s3, it->path, &a);
		if (rc == -ENOENT || rc == -ENOTDIR || (rc == 0 && !S_ISDIR(a.mode))) {
			(*diffs)++;
			return buf_printf(out, "missing %s/\n", it->path);
		}
		if (rc)
			return rc;
		return (it->flags & MIRROR_TREE) ? reconcile_dir(x, it->path, out, diffs) : 0;
	}
	if (!S_ISREG(e.attr.mode) && !S_ISLNK(e.attr.mode))
		return 0;
	struct buf key = { 0 };
	struct s3_object_info oi;
	if ((rc = mirror_key_of(m, it->path, 0, &key)))
		return rc;
	rc = s3_head(x->c, key.data, &oi);
	buf_free(&key);
	if (rc == -ENOENT) {
		(*diffs)++;
		return buf_printf(out, "missing %s\n", it->path);
	}
	if (rc)
		return rc;
	struct vent ve = { .mode = e.attr.mode, .size = e.attr.size, .src = e.src };
	struct sent se = { .size = oi.size };
	snprintf(se.etag, sizeof(se.etag), "%s", oi.etag);
	const char *why;
	if (s3_has_file(x, it->path, &ve, &se, 1, &why))
		return 0;
	(*diffs)++;
	return buf_printf(out, "differs %s: %s\n", it->path, why);
}

