/* mirror.c - write-back to S3 (spec 7). DESIGN (doc/mirror.md has the long form):
 *
 * - The journal says WHICH paths changed, never what to write: the replay is state-based.
 *   A batch of entries is coalesced by path (mirror_plan_*); each path is looked up in the
 *   merged view (route_lookup) now and S3 is made to match it: a file or symlink on the new
 *   store is uploaded whole (PUT, multipart when large) with x-amz-meta-mode/uid/gid/mtime;
 *   a directory gets its marker object "dir/" and, for entries that move or remove names
 *   (mkdir, rmdir, rename, unlink), its whole S3 subtree is reconciled with the view; a
 *   path the view does not show is deleted with everything under "path/". Replaying an
 *   entry twice, or an old entry after a newer change, converges to the same S3 state.
 * - Inside a batch every upload comes before any delete, and the entries are deleted from
 *   the journal only after S3 answered every request: a crash at any point replays the
 *   batch (uploads again, deletes again), never loses a change.
 * - It never uploads a name the view does not show (so never a ".ferryfs*" marker) and
 *   never deletes a key that cannot be a mount path (unreachable keys are not ours).
 * - A file that an open handle is still writing (journal.h: dirty) is not uploaded while
 *   the mount runs: its entry is journaled again at the end, keeping its age, so S3 never
 *   gets a half-written file and the entry survives a crash. After a revert nothing can
 *   write any more, and it is uploaded.
 * - A path whose upload or delete failed is journaled again likewise; the thread backs off
 *   (1 s doubling to 30 s) and the failure is counted (mirror_errors) and logged.
 *
 * Threads and locks: one mirror thread per mount (mirror_start), which replays a batch's
 * paths on up to MIRROR_WORKERS threads at once (started per batch, joined before the
 * deletes); FUSE threads only call mirror_wake (MR.lock, a leaf) and mirror_control.
 * par.lock (a leaf) hands out a batch's items. No lock is held while route.c, the stores
 * or the ledger are called, so the mirror fits doc/design.md's lock order as any FUSE
 * handler does. */
#include "writeback/mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cfg.h"
#include "view/dcache.h"
#include "view/ferry.h"
#include "writeback/journal.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
#include "view/ns.h"
#include "view/route.h"
#include "s3/client.h"
#include "store/store.h"
#include "base/util.h"
#include "view/whiteout.h"

static atomic_uint_fast64_t mr_puts, mr_deletes, mr_errors, mr_carried, mr_batches, mr_too_long;

void mirror_counters(struct mirror_counters *c)
{
	c->puts = atomic_load(&mr_puts);
	c->deletes = atomic_load(&mr_deletes);
	c->errors = atomic_load(&mr_errors);
	c->carried = atomic_load(&mr_carried);
	c->batches = atomic_load(&mr_batches);
	c->too_long = atomic_load(&mr_too_long);
}

/* ------------------------------------------------------------------------------------
 * the plan: journal entries coalesced by path */

static int plan_push(struct mirror_plan *p, const char *path, unsigned flags, int64_t t)
{
	if (!path || path[0] != '/')
		return 0;      /* a symlink's target is not a path of ours */
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct mirror_item *v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	char *s = strdup(path);
	if (!s)
		return -ENOMEM;
	p->v[p->n++] = (struct mirror_item){ s, flags, t };
	return 0;
}

int mirror_plan_add(struct mirror_plan *p, int op, const char *path, const char *path2,
		    int64_t time_ms)
{
	switch (op) {
	case LEDGER_OP_RENAME:   /* the old name goes (with its subtree), the new one comes */
		return plan_push(p, path, MIRROR_NODE | MIRROR_TREE, time_ms) ?:
		       plan_push(p, path2, MIRROR_NODE | MIRROR_TREE, time_ms);
	case LEDGER_OP_LINK:     /* a new name with the same content */
		return plan_push(p, path2, MIRROR_NODE, time_ms);
	case LEDGER_OP_UNLINK:
	case LEDGER_OP_RMDIR:
	case LEDGER_OP_MKDIR:    /* over a removed S3 directory: its old keys must go */
		return plan_push(p, path, MIRROR_NODE | MIRROR_TREE, time_ms);
	default:                 /* write, create, truncate, chmod, chown, utimens, symlink */
		return plan_push(p, path, MIRROR_NODE, time_ms);
	}
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mirror_item *)a)->path, ((const struct mirror_item *)b)->path);
}

void mirror_plan_finish(struct mirror_plan *p)
{
	if (p->n < 2)
		return;
	qsort(p->v, p->n, sizeof(*p->v), item_cmp);
	size_t w = 0;
	for (size_t i = 1; i < p->n; i++) {
		if (!strcmp(p->v[w].path, p->v[i].path)) {
			p->v[w].flags |= p->v[i].flags;
			if (p->v[i].time_ms < p->v[w].time_ms)
				p->v[w].time_ms = p->v[i].time_ms;
			free(p->v[i].path);
		} else {
			p->v[++w] = p->v[i];
		}
	}
	p->n = w + 1;
}

void mirror_plan_free(struct mirror_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].path);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------------------------
 * S3 requests */

/* What one batch does: the keys to delete (after every upload) and what failed. */
struct run {
	struct mirror *m;
	struct s3_client *c;
	char **dels;            /* keys to delete, or "path/" prefixes to delete under */
	unsigned char *del_tree;/* 1: dels[i] is a prefix: every key under it */
	size_t ndel, capdel;
	int held;               /* the current item met a foreign change (see upload) */
	int absent;             /* the current item is absent from the view (queue_absent) */
};

/* upload: S3 holds another version than this ledger knows: not overwritten */
#define MIRROR_HELD 2

static int key_of(struct mirror *m, const char *path, int dir, struct buf *b)
{
	buf_reset(b);
	int rc = name_path_to_key(m->cfg->s3_prefix ? m->cfg->s3_prefix : "", path, dir, b);
	if (!rc && !b->data && !(rc = buf_reserve(b, 1)))
		b->data[0] = '\0';   /* the root with no prefix: "" */
	return rc;
}

/* 1 when path's key (dir: its marker "key/") fits in S3's 1024 bytes. */
static int key_fits(struct mirror *m, const char *path, int dir)
{
	size_t plen = m->cfg->s3_prefix ? strlen(m->cfg->s3_prefix) : 0;
	return plen + strlen(path) - 1 + (dir ? 1 : 0) <= NAME_S3_KEY_MAX;
}

static int mark_too_long(struct ledger_file *rec, bool exists, void *arg)
{
	(void)arg;
	if (!exists)
		rec->ino = 0;
	snprintf(rec->error, sizeof(rec->error),
		 "not written back to S3: its key would be over %d bytes", NAME_S3_KEY_MAX);
	return LEDGER_WRITE;
}

/* A path the view shows whose key S3 cannot hold: not written back, and not retried (it
 * cannot succeed); counted (mirror_key_too_long), logged, and for a file kept in its
 * ledger record (user.ferryfs.error). */
static int too_long(struct run *x, const char *path, mode_t mode)
{
	atomic_fetch_add(&mr_too_long, 1);
	log_warn("mirror: %s is not written back: its S3 key would be over %d bytes", path,
		 NAME_S3_KEY_MAX);
	if (!S_ISDIR(mode) && x->m->l)
		ledger_file_event(x->m->l, path, LEDGER_EV_KEPT, LEDGER_BY_MIRROR, mark_too_long,
				  NULL);
	return 0;
}

static int queue_delete(struct run *x, const char *key, int tree)
{
	if (x->ndel == x->capdel) {
		size_t cap = x->capdel ? x->capdel * 2 : 32;
		char **d = realloc(x->dels, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		x->dels = d;
		unsigned char *t = realloc(x->del_tree, cap);
		if (!t)
			return -ENOMEM;
		x->del_tree = t;
		x->capdel = cap;
	}
	if (!(x->dels[x->ndel] = strdup(key)))
		return -ENOMEM;
	x->del_tree[x->ndel++] = (unsigned char)tree;
	return 0;
}

struct nfs_src {
	struct store *st;
	struct store_file *f;
};

static ssize_t nfs_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct nfs_src *s = arg;
	size_t done = 0;
	while (done < len) {
		ssize_t n = store_pread(s->st, s->f, (char *)buf + done, len - done, off + done);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Paths being uploaded (mirror_uploading): a few nodes on the uploaders' stacks. */
struct uploading {
	const char *path;
	struct uploading *next;
};
static pthread_mutex_t up_lock = PTHREAD_MUTEX_INITIALIZER;  /* protects up_head; a leaf */
static struct uploading *up_head;

static void up_add(struct uploading *u, const char *path)
{
	u->path = path;
	pthread_mutex_lock(&up_lock);
	u->next = up_head;
	up_head = u;
	pthread_mutex_unlock(&up_lock);
}

static void up_del(struct uploading *u)
{
	pthread_mutex_lock(&up_lock);
	for (struct uploading **p = &up_head; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			break;
		}
	pthread_mutex_unlock(&up_lock);
}

int mirror_uploading(const char *path)
{
	int found = 0;
	pthread_mutex_lock(&up_lock);
	for (struct uploading *u = up_head; u && !found; u = u->next)
		found = !strcmp(u->path, path);
	pthread_mutex_unlock(&up_lock);
	return found;
}

/* Event `uploaded`: a file new to the ledger becomes nfs-only; the others keep their state.
 * Either way the record takes the uploaded object's ETag and size. */
static int record_etag(struct ledger_file *rec, bool exists, void *arg)
{
	const struct ledger_file *now = arg;
	(void)exists;
	snprintf(rec->etag, sizeof(rec->etag), "%s", now->etag);
	rec->size = now->size;
	return LEDGER_WRITE;
}

static void meta_of(const struct store_attr *a, struct s3_meta *meta)
{
	meta->have = S3_META_MODE | S3_META_UID | S3_META_GID | S3_META_MTIME;
	meta->mode = a->mode;
	meta->uid = a->uid;
	meta->gid = a->gid;
	meta->mtime = a->mtime;
}

/* Upload what path is on the new store: a file (its bytes), a symlink (s3fs: the target
 * as the body) or a directory (its marker "path/"). Other types are not held by S3. */
static int upload(struct run *x, const char *path, const struct store_attr *hint)
{
	struct mirror *m = x->m;
	struct store *nfs = m->r->nfs;
	struct buf key = { 0 };
	struct s3_meta meta;
	char etag[80] = "";
	int rc;
	if (S_ISDIR(hint->mode)) {
		if (!strcmp(path, "/"))
			return 0;
		if (!(rc = key_of(m, path, 1, &key))) {
			meta_of(hint, &meta);
			rc = s3_put_buf(x->c, key.data, "", 0, &meta, NULL);
		}
		goto out;
	}
	if (S_ISLNK(hint->mode)) {
		char target[NAME_MAX_PATH + 2];
		ssize_t n = store_readlink(nfs, path, target, sizeof(target));
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (!(rc = key_of(m, path, 0, &key))) {
			meta_of(hint, &meta);
			rc = s3_put_buf(x->c, key.data, target, (size_t)n, &meta, NULL);
		}
		goto out;
	}
	if (!S_ISREG(hint->mode)) {
		rc = 0;       /* fifos, devices, sockets: S3 cannot hold them (doc/mirror.md) */
		goto out;
	}
	struct nfs_src src = { .st = nfs };
	struct store_attr a;
	struct ledger_file rec;
	struct uploading up;
	up_add(&up, path);        /* until the new ETag is recorded (mirror_uploading) */
	if (m->l && ledger_file_get(m->l, path, &rec) == 0 && rec.etag[0]) {
		/* A host still on S3 may have written the object since we last saw it: never
		 * overwrite that version. Revalidation (fleet.c) keeps it beside ours as a
		 * conflict copy and records its ETag; then ours goes over the key. (Check then
		 * PUT: a write landing in between is not seen; S3 conditional writes would close
		 * that, s3rver has none.) */
		struct s3_object_info oi;
		if ((rc = key_of(m, path, 0, &key)))
			goto out_up;
		rc = s3_head(x->c, key.data, &oi);
		if (rc == 0 && strcmp(oi.etag, rec.etag)) {
			log_info("mirror: %s: S3 holds another version (ETag %s, known %s): not "
				 "overwritten, kept for revalidation", path, oi.etag, rec.etag);
			x->held = 1;
			rc = MIRROR_HELD;
			goto out_up;
		}
		if (rc && rc != -ENOENT)
			goto out_up;
	}
	if ((rc = store_open(nfs, path, O_RDONLY, 0, NULL, &src.f)))
		goto out_up;
	if (!(rc = store_fstat(nfs, src.f, &a)) && !(rc = key_of(m, path, 0, &key))) {
		meta_of(&a, &meta);
		rc = s3_put(x->c, key.data, a.size, nfs_read, &src, &meta, etag);
	}
	store_close(nfs, src.f);
	if (!rc && m->l) {
		struct ledger_file now = { .size = a.size };
		snprintf(now.etag, sizeof(now.etag), "%s", etag);
		int lrc = ledger_file_event(m->l, path, LEDGER_EV_UPLOADED, LEDGER_BY_MIRROR,
					    record_etag, &now);
		if (lrc < 0)
			log_warn("mirror: %s uploaded, but its ETag is not recorded: %s", path,
				 strerror(-lrc));
	}
out_up:
	up_del(&up);
out:
	if (!rc)
		atomic_fetch_add(&mr_puts, 1);
	buf_free(&key);
	return rc == MIRROR_HELD ? 0 : rc;   /* held: x->held says so */
}

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
	if (key_of(m, path, 0, &key) == 0 && s3_head(x->c, key.data, &oi) == 0) {
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

static int reconcile_dir(struct run *x, const char *dir, struct buf *report, int *diffs);

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
				rc = upload(x, path, &a);
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
	return upload(x, path, &a);
}

/* Make S3 under dir match the merged view of dir, recursively through the parts the new
 * store holds. Uploads now; deletes are queued (they run after every upload). With
 * report, changes nothing and lists the differences. */
static int reconcile_dir(struct run *x, const char *dir, struct buf *report, int *diffs)
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
	if ((rc = key_of(m, dir, 1, &dkey)))
		goto out;
	s.dirkey = dkey.data;
	s.dirlen = dkey.len;
	struct s3_list_opts o = { .prefix = dkey.data, .delimiter = "/" };
	if ((rc = s3_list(x->c, &o, on_s3_page, &s)))
		goto out;
	for (size_t i = 0; i < v.n && !rc; i++) {
		child_path(dir, v.v[i].name, child, NAME_MAX_PATH + 2);
		if (!key_fits(m, child, S_ISDIR(v.v[i].mode))) {
			if (report) {
				(*diffs)++;
				rc = buf_printf(report,
						"not in S3 %s: its key would be over %d bytes\n",
						child, NAME_S3_KEY_MAX);
			} else {
				rc = too_long(x, child, v.v[i].mode);
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
			rc = queue_delete(x, k.data, e->prefix);
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
		atomic_fetch_add(&mr_deletes, n);
	return rc;
}

static int delete_one(struct run *x, const char *key, int tree)
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

/* A path the view does not show: its object, its marker and everything under it. */
static int queue_absent(struct run *x, const char *path)
{
	struct buf k = { 0 };
	int rc = key_of(x->m, path, 0, &k);
	if (!rc)
		rc = queue_delete(x, k.data, 0);
	if (!rc)
		rc = buf_puts(&k, "/") ?: queue_delete(x, k.data, 1);
	buf_free(&k);
	return rc;
}

/* A name the view does not show and whose keys S3 no longer has (a batch deleted them)
 * needs its whiteout no more: S3 is the store it hid. Left in place, it would hide the
 * name for good, also from what a host not yet on ferryfs writes there later (spec 7,
 * a rolling update: the application deletes a file and another host makes it again).
 *
 * Not at once: a migrator (of this host or another) may be copying the object the
 * delete removed, and a copy publishes unless the name is whited out (copies that took
 * a second or more ask S3 again first and find it gone). So the whiteout goes when the
 * delete is MIRROR_WH_GRACE_MS old, by when every such short copy is over; and only if
 * S3 has nothing at the name or under it then (keys that are not mount paths are never
 * deleted, and must stay hidden), under the path's lock, as a create through the mount
 * removes it; the listing cache forgets the parent, whose S3 side may have been listed
 * before the delete. Only the mount does this (not sync-back --state); a whiteout whose
 * time comes after the unmount, or that fails to go, simply stays, as before. The list
 * is the mirror thread's; wh_lock (a leaf) guards it all the same. */
#define MIRROR_WH_GRACE_MS 5000
#define MIRROR_WH_MAX 4096

static pthread_mutex_t wh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wh_due {
	char *path;
	uint64_t at_ms;         /* when S3 had forgotten the name */
} wh_due[MIRROR_WH_MAX];
static size_t wh_ndue;

static void wh_note(const char *path)
{
	char *p = strdup(path);
	pthread_mutex_lock(&wh_lock);
	if (p && wh_ndue < MIRROR_WH_MAX) {
		wh_due[wh_ndue++] = (struct wh_due){ p, util_now_ns() / 1000000 };
		p = NULL;
	}
	pthread_mutex_unlock(&wh_lock);
	free(p);
}

static void drop_whiteout(struct mirror *m, const char *path)
{
	struct route *r = m->r;
	struct store_attr a;
	pthread_mutex_t *lock = m->in_mount ? ns_path_lock(path) : NULL;
	if (lock)
		pthread_mutex_lock(lock);
	if (wh_is_whiteout(r->nfs, path) == 1 && store_stat(r->s3, path, &a) == -ENOENT) {
		int rc = wh_remove(r->nfs, path);
		if (rc)
			log_debug("mirror: keeping the whiteout of %s: %s", path, strerror(-rc));
		else
			log_debug("mirror: %s is gone from S3: its whiteout is removed", path);
		if (m->in_mount)
			dc_forget(path);
	}
	if (lock)
		pthread_mutex_unlock(lock);
}

/* Drop the whiteouts whose grace is over (all of them with now_ms = UINT64_MAX and
 * m = NULL: forget the list). */
static void wh_run(struct mirror *m, uint64_t now_ms)
{
	for (;;) {
		char *path = NULL;
		pthread_mutex_lock(&wh_lock);
		if (wh_ndue &&
		    (now_ms == UINT64_MAX || wh_due[0].at_ms + MIRROR_WH_GRACE_MS <= now_ms)) {
			path = wh_due[0].path;
			memmove(&wh_due[0], &wh_due[1], (wh_ndue - 1) * sizeof(wh_due[0]));
			wh_ndue--;
		}
		pthread_mutex_unlock(&wh_lock);
		if (!path)
			return;
		if (m)
			drop_whiteout(m, path);
		free(path);
	}
}

/* ------------------------------------------------------------------------------------
 * one batch */

struct collect {
	struct mirror_plan *p;
	uint64_t last;
	size_t count;
	int rc;
};

static int on_entry(const struct ledger_jentry *e, void *arg)
{
	struct collect *c = arg;
	c->last = e->seq;
	c->count++;
	c->rc = mirror_plan_add(c->p, e->op, e->path, e->path2, e->time_ms);
	return c->rc;
}

/* Journal an item again (carry), keeping its age. */
static int carry(struct mirror *m, const struct mirror_item *it)
{
	struct ledger_jentry e = { .op = it->flags & MIRROR_TREE ? LEDGER_OP_UNLINK :
								   LEDGER_OP_WRITE,
				   .path = it->path,
				   .time_ms = it->time_ms };
	return ledger_journal_append(m->l, &e, NULL);
}

/* Replay one item: uploads now, deletes queued. 1 = carried (dirty file), 0, -errno. */
static int replay_item(struct run *x, const struct mirror_item *it)
{
	struct mirror *m = x->m;
	struct route_entry e;
	if (!name_path_ok(it->path))
		return 0;             /* reserved or malformed: never a name in S3 */
	if (m->in_mount && jn_is_busy(it->path, m->carry_dirty))
		return 1;             /* changing now, or being written: replayed later */
	int rc = route_lookup(m->r, it->path, &e);
	log_debug("mirror: %s (%s%s): %s", it->path, it->flags & MIRROR_NODE ? "node" : "",
		  it->flags & MIRROR_TREE ? " tree" : "", rc ? strerror(-rc) :
		  e.src == ROUTE_S3 ? "only in S3" : "on the new store");
	if (rc == -ENOENT || rc == -ENOTDIR) {
		if (!strcmp(it->path, "/") || !key_fits(m, it->path, 0))
			return 0;     /* S3 cannot hold it: nothing to delete */
		x->absent = 1;
		return queue_absent(x, it->path);
	}
	if (rc)
		return rc;
	if (e.src == ROUTE_S3)
		return 0;             /* only in S3: S3 already holds what the view shows */
	if (!key_fits(m, it->path, S_ISDIR(e.attr.mode)))
		return too_long(x, it->path, e.attr.mode);
	if (S_ISDIR(e.attr.mode)) {
		if ((it->flags & MIRROR_NODE) && (rc = upload(x, it->path, &e.attr)))
			return rc;
		if (it->flags & MIRROR_TREE)
			rc = reconcile_dir(x, it->path, NULL, NULL);
		return rc;
	}
	rc = upload(x, it->path, &e.attr);
	if (!rc && (it->flags & MIRROR_TREE)) {
		/* a file where a directory may have been: nothing may stay under "path/" */
		struct buf k = { 0 };
		rc = key_of(m, it->path, 1, &k) ?: queue_delete(x, k.data, 1);
		buf_free(&k);
	}
	return rc;
}

static void revert_note(const struct mirror_plan *p, const unsigned char *bad);

/* Items replayed in parallel: each worker has its own run (its own delete list), merged
 * into x afterwards. Paths are independent (each is replayed by state), so the order of
 * uploads does not matter; only the deletes wait for every upload. */
#define MIRROR_WORKERS 4

struct par {
	struct run *x;              /* the batch's run: deletes are merged into it */
	struct mirror_plan *p;
	unsigned char *bad;         /* per item: 1 failed, 2 busy (carried) */
	unsigned char *absent;      /* per item: 1 absent from the view, its keys deleted */
	pthread_mutex_t lock;       /* protects next and the merge into x; a leaf */
	size_t next;
	int rc;                     /* first -ENOMEM of a merge */
};

static void replay_one(struct par *pa, struct run *w, size_t i)
{
	size_t before = w->ndel;
	w->held = 0;
	w->absent = 0;
	int r = replay_item(w, &pa->p->v[i]);
	if (r == 0 && w->absent)
		pa->absent[i] = 1;
	if (r == 0 && w->held)
		r = 1;            /* kept in the journal like a busy path, not a failure */
	if (r == 1) {
		pa->bad[i] = 2;
	} else if (r < 0) {
		log_warn("mirror: %s: %s (kept in the journal, tried again later)",
			 pa->p->v[i].path, strerror(-r));
		pa->bad[i] = 1;
		for (size_t k = before; k < w->ndel; k++)   /* nothing deleted for a failed item */
			free(w->dels[k]);
		w->ndel = before;
	}
}

static void *replay_worker(void *arg)
{
	struct par *pa = arg;
	dc_bypass(1);            /* the view from the stores themselves (dcache.h) */
	struct run w = { .m = pa->x->m, .c = pa->x->c };
	for (;;) {
		pthread_mutex_lock(&pa->lock);
		size_t i = pa->next++;
		pthread_mutex_unlock(&pa->lock);
		if (i >= pa->p->n)
			break;
		replay_one(pa, &w, i);
	}
	pthread_mutex_lock(&pa->lock);
	for (size_t k = 0; k < w.ndel; k++) {
		if (!pa->rc)
			pa->rc = queue_delete(pa->x, w.dels[k], w.del_tree[k]);
		free(w.dels[k]);
	}
	pthread_mutex_unlock(&pa->lock);
	free(w.dels);
	free(w.del_tree);
	return NULL;
}

static int replay_all(struct run *x, struct mirror_plan *p, unsigned char *bad,
		      unsigned char *absent)
{
	struct par pa = { .x = x, .p = p, .bad = bad, .absent = absent };
	pthread_t th[MIRROR_WORKERS];
	unsigned n = p->n < MIRROR_WORKERS ? (unsigned)p->n : MIRROR_WORKERS, started = 0;
	pthread_mutex_init(&pa.lock, NULL);
	for (; started + 1 < n; started++)   /* this thread is one of the workers */
		if (pthread_create(&th[started], NULL, replay_worker, &pa))
			break;
	replay_worker(&pa);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&pa.lock);
	return pa.rc;
}

int mirror_batch(struct mirror *m, size_t *failed, size_t *carried)
{
	struct mirror_plan p = { 0 };
	struct collect c = { .p = &p };
	struct run x = { .m = m, .c = store_s3_client(m->r->s3) };
	size_t nfail = 0, ncarry = 0, taken = 0;
	m->last_items = 0;
	unsigned char *bad = NULL, *absent = NULL;
	int rc;
	if (failed)
		*failed = 0;
	if (carried)
		*carried = 0;
	if (!x.c)
		return -EINVAL;
	if (m->in_mount)
		wh_run(m, util_now_ns() / 1000000);
	/* count what we take: the plan merges entries */
	rc = ledger_journal_foreach(m->l, 0, m->batch ? m->batch : 512, on_entry, &c);
	if (rc < 0 || c.rc)
		goto out;
	if (!c.last) {
		rc = 0;
		goto out;
	}
	taken = c.count;
	mirror_plan_finish(&p);
	m->last_items = p.n;
	if (!(bad = calloc(p.n ? p.n : 1, 1)) || !(absent = calloc(p.n ? p.n : 1, 1))) {
		rc = -ENOMEM;
		goto out;
	}
	/* uploads (deletes queued), several paths at once, then deletes */
	if ((rc = replay_all(&x, &p, bad, absent)))
		goto out;
	int deleted = 1;
	for (size_t i = 0; i < x.ndel; i++) {
		int r = delete_one(&x, x.dels[i], x.del_tree[i]);
		if (r < 0) {
			/* which item queued it is not tracked: keep every item of the batch that
			 * removes names, so the whole delete runs again */
			log_warn("mirror: deleting %s%s: %s (tried again later)", x.dels[i],
				 x.del_tree[i] ? "*" : "", strerror(-r));
			for (size_t j = 0; j < p.n; j++)
				if (!bad[j] && (p.v[j].flags & MIRROR_TREE))
					bad[j] = 1;
			deleted = 0;
			break;
		}
	}
	if (deleted && m->in_mount)
		for (size_t i = 0; i < p.n; i++)
			if (absent[i] && !bad[i])
				wh_note(p.v[i].path);
	/* every path busy and nothing else in the journal: leave it as it is (journaling the
	 * same entries again every second would only churn the ledger) */
	size_t nbusy = 0;
	for (size_t i = 0; i < p.n; i++)
		nbusy += bad[i] == 2;
	if (nbusy == p.n && c.count < (m->batch ? m->batch : 512)) {
		if (carried)
			*carried = nbusy;
		rc = (int)taken;
		goto out;
	}
	/* carry what must stay, then drop the batch */
	for (size_t i = 0; i < p.n; i++) {
		if (!bad[i])
			continue;
		if ((rc = carry(m, &p.v[i]))) {
			log_err("mirror: cannot keep %s in the journal: %s", p.v[i].path,
				strerror(-rc));
			goto out;     /* nothing deleted: the whole batch runs again */
		}
		if (bad[i] == 1)
			nfail++;
		else
			ncarry++;
	}
	rc = ledger_journal_delete_upto(m->l, c.last);
	if (rc < 0)
		goto out;
	if (m->in_mount && jn_readonly())
		revert_note(&p, bad);      /* what ferryctl revert will verify */
	atomic_fetch_add(&mr_batches, 1);
	atomic_fetch_add(&mr_errors, nfail);
	atomic_fetch_add(&mr_carried, ncarry);
	if (failed)
		*failed = nfail;
	if (carried)
		*carried = ncarry;
	rc = (int)taken;
out:
	for (size_t i = 0; i < x.ndel; i++)
		free(x.dels[i]);
	free(x.dels);
	free(x.del_tree);
	free(bad);
	free(absent);
	mirror_plan_free(&p);
	if (rc < 0)
		atomic_fetch_add(&mr_errors, 1);
	return rc;
}

/* What a revert drained: the paths of every batch replayed since the revert was asked,
 * checked by mirror_verify_paths. */
static struct {
	pthread_mutex_t lock;      /* RV.lock: protects set; a leaf */
	struct mirror_plan set;
} RV = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void revert_note(const struct mirror_plan *p, const unsigned char *bad)
{
	pthread_mutex_lock(&RV.lock);
	for (size_t i = 0; i < p->n; i++)
		if (!bad[i] && plan_push(&RV.set, p->v[i].path, p->v[i].flags, p->v[i].time_ms))
			log_warn("mirror: out of memory: %s will not be verified", p->v[i].path);
	mirror_plan_finish(&RV.set);
	pthread_mutex_unlock(&RV.lock);
}

static void revert_reset(void)
{
	pthread_mutex_lock(&RV.lock);
	mirror_plan_free(&RV.set);
	pthread_mutex_unlock(&RV.lock);
}

/* Does S3 hold what the view shows at one path (and, for a directory named by a removal
 * or rename, under it)? Differences are appended to out and counted. */
static int verify_item(struct run *x, const struct mirror_item *it, struct buf *out, int *diffs)
{
	struct mirror *m = x->m;
	struct route_entry e;
	struct store_attr a;
	if (!name_path_ok(it->path))
		return 0;
	int rc = route_lookup(m->r, it->path, &e);
	if (rc == 0 && e.src != ROUTE_S3 && !key_fits(m, it->path, S_ISDIR(e.attr.mode))) {
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
	if ((rc = key_of(m, it->path, 0, &key)))
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

int mirror_verify_paths(struct mirror *m, struct buf *out)
{
	struct run x = { .m = m, .c = store_s3_client(m->r->s3) };
	struct mirror_plan p = { 0 };
	int diffs = 0, rc = 0;
	if (!x.c)
		return -EINVAL;
	pthread_mutex_lock(&RV.lock);
	for (size_t i = 0; i < RV.set.n && !rc; i++)
		rc = plan_push(&p, RV.set.v[i].path, RV.set.v[i].flags, RV.set.v[i].time_ms);
	pthread_mutex_unlock(&RV.lock);
	for (size_t i = 0; i < p.n && !rc; i++)
		rc = verify_item(&x, &p.v[i], out, &diffs);
	mirror_plan_free(&p);
	return rc ? rc : diffs;
}

int mirror_verify(struct mirror *m, const char *path, struct buf *out)
{
	struct run x = { .m = m, .c = store_s3_client(m->r->s3) };
	int diffs = 0;
	if (!x.c)
		return -EINVAL;
	int rc = reconcile_dir(&x, path, out, &diffs);
	return rc ? rc : diffs;
}

/* ------------------------------------------------------------------------------------
 * the mount's thread */

static struct {
	pthread_mutex_t lock;      /* MR.lock: protects every field below; a leaf */
	pthread_cond_t cond;       /* wake_seq bumped, a drain asked, or stop */
	uint64_t wake_seq;         /* bumped by mirror_wake */
	int drain;                 /* a drain was asked (sync, revert): run even with mirror=off */
	int stop;
	int running;
	pthread_t th;
} MR = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

void mirror_wake(struct ferry *fy)
{
	(void)fy;
	pthread_mutex_lock(&MR.lock);
	MR.wake_seq++;
	pthread_cond_signal(&MR.cond);
	pthread_mutex_unlock(&MR.lock);
}

static void drain_request(void)
{
	pthread_mutex_lock(&MR.lock);
	MR.drain = 1;
	MR.wake_seq++;
	pthread_cond_signal(&MR.cond);
	pthread_mutex_unlock(&MR.lock);
}

/* Wait until woken (a change, a drain, stop) or ms passed; MR.lock held. */
static void wait_ms(unsigned ms)
{
	struct timespec ts;
	util_abstime_ms(&ts, ms);
	pthread_cond_timedwait(&MR.cond, &MR.lock, &ts);
}

static void *mirror_main(void *arg)
{
	struct ferry *fy = arg;
	dc_bypass(1);            /* what the write-back deletes is decided from the stores */
	struct mirror m = { .r = &fy->route, .l = fy->ledger, .cfg = fy->cfg, .carry_dirty = 1,
			    .in_mount = 1 };
	uint64_t seen = (uint64_t)-1;
	unsigned backoff = 0;        /* ms after a batch with failures */
	pthread_mutex_lock(&MR.lock);
	for (;;) {
		if (MR.stop)
			break;
		int asked = MR.drain || jn_readonly();
		int active = fy->cfg->mirror != MIRROR_OFF || asked;
		if (!active || (MR.wake_seq == seen && !backoff)) {
			/* idle: a second at most, so that carried entries (open files) are looked
			 * at again */
			uint64_t was = MR.wake_seq;
			wait_ms(1000);
			if (MR.wake_seq == was)
				seen = (uint64_t)-1;   /* a timeout: look at the journal anyway */
			continue;
		}
		seen = MR.wake_seq;
		if (backoff) {
			wait_ms(backoff);
			if (MR.stop)
				break;
		} else if (!asked) {
			wait_ms(200);              /* let a burst gather into one batch */
			seen = MR.wake_seq;
			if (MR.stop)
				break;
		}
		pthread_mutex_unlock(&MR.lock);
		size_t failed = 0, carried = 0;
		int n;
		m.carry_dirty = !jn_readonly();
		for (;;) {
			n = mirror_batch(&m, &failed, &carried);
			if (n <= 0 || failed || carried == m.last_items)
				break;      /* empty, failing, or only open files left: wait */
			pthread_mutex_lock(&MR.lock);
			int stop = MR.stop;
			pthread_mutex_unlock(&MR.lock);
			if (stop)
				break;
		}
		if (n < 0)
			log_warn("mirror: %s (tried again later)", strerror(-n));
		pthread_mutex_lock(&MR.lock);
		if (n < 0 || failed) {
			backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 1000;
		} else {
			backoff = 0;
			if (n == 0)
				MR.drain = 0;      /* the journal is empty: the drain is done */
		}
	}
	pthread_mutex_unlock(&MR.lock);
	return NULL;
}

int mirror_start(struct ferry *fy)
{
	jn_on_append(mirror_wake);
	if (!fy->ledger)
		return 0;
	pthread_mutex_lock(&MR.lock);
	MR.stop = 0;
	MR.drain = 0;
	pthread_mutex_unlock(&MR.lock);
	int rc = pthread_create(&MR.th, NULL, mirror_main, fy);
	if (rc)
		return -rc;
	MR.running = 1;
	if (fy->cfg->state_dir) {
		struct buf p = { 0 };
		if (buf_printf(&p, "%s/mount.conf", fy->cfg->state_dir) == 0 &&
		    (rc = mirror_save_config(fy->cfg, p.data)))
			log_warn("cannot write %s: %s (ferryctl sync-back --state then needs the "
				 "configuration)", p.data, strerror(-rc));
		buf_free(&p);
	}
	return 0;
}

void mirror_stop(struct ferry *fy)
{
	(void)fy;
	if (!MR.running)
		return;
	pthread_mutex_lock(&MR.lock);
	MR.stop = 1;
	pthread_cond_broadcast(&MR.cond);
	pthread_mutex_unlock(&MR.lock);
	pthread_join(MR.th, NULL);
	MR.running = 0;
	wh_run(NULL, UINT64_MAX);
}

static int value_is(const char *value, size_t size, const char *want)
{
	size_t n = strlen(want);
	while (size && (value[size - 1] == '\n' || value[size - 1] == '\0'))
		size--;
	return size == n && !memcmp(value, want, n);
}

int mirror_control(struct ferry *fy, const char *path, const char *name, const char *value,
		   size_t size)
{
	if (strcmp(name, "sync") && strcmp(name, "revert"))
		return -ENODATA;
	if (strcmp(path, "/"))
		return -EROFS;
	if (!fy->ledger)
		return -EROFS;
	if (!strcmp(name, "sync")) {
		if (!value_is(value, size, "now"))
			return -EINVAL;
		log_notice("write-back to S3 asked now");
		drain_request();
		return 0;
	}
	if (value_is(value, size, "1")) {
		if (!jn_readonly()) {
			log_notice("revert: the mount refuses changes (EROFS) and writes back "
				   "to S3");
			revert_reset();
		}
		jn_set_readonly(1);
		drain_request();
		return 0;
	}
	if (value_is(value, size, "0")) {
		if (jn_readonly())
			log_notice("revert cancelled: the mount accepts changes again");
		jn_set_readonly(0);
		return 0;
	}
	return -EINVAL;
}

int mirror_getxattr(struct ferry *fy, const char *path, const char *name, struct buf *b)
{
	if (strcmp(path, "/"))
		return -ENODATA;
	if (!strcmp(name, "revert"))
		return buf_puts(b, jn_readonly() ? "1" : "0");
	int all = !strcmp(name, "sync_verify_all");
	if (all || !strcmp(name, "sync_verify")) {
		struct mirror m = { .r = &fy->route, .l = fy->ledger, .cfg = fy->cfg };
		struct buf d = { 0 };
		int rc = all ? mirror_verify(&m, "/", &d) : mirror_verify_paths(&m, &d);
		if (d.len > 60000) {     /* a getxattr value is at most 64 KiB */
			d.len = 60000;
			d.data[d.len] = '\0';
			buf_puts(&d, "...\n");
		}
		if (rc >= 0)
			rc = rc == 0 ? buf_puts(b, "ok\n") :
				       buf_printf(b, "%d difference(s)\n%s", rc,
						  d.data ? d.data : "");
		buf_free(&d);
		return rc;
	}
	return -ENODATA;
}

/* ------------------------------------------------------------------------------------
 * the mount's configuration for `ferryctl sync-back --state` */

int mirror_save_config(const struct ferry_config *cfg, const char *path)
{
	struct buf b = { 0 };
	struct buf tmp = { 0 };
	int rc = buf_printf(&b, "# written by ferryfs at mount: the stores of this state "
			    "directory (credentials are never written here)\n");
	if (!rc)
		rc = cfg_format_saved(cfg, &b);
	if (!rc)
		rc = buf_printf(&tmp, "%s.tmp", path);
	if (rc)
		goto out;
	int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd))
		rc = errno ? -errno : -EIO;
	close(fd);
	if (!rc && rename(tmp.data, path))
		rc = -errno;
	if (rc)
		unlink(tmp.data);
out:
	buf_free(&b);
	buf_free(&tmp);
	return rc;
}
