/* mirror.c - write-back to S3 (spec 7): batches, uploads, the mount's thread; a directory's
 * subtree, deletes and verification are in reconcile.c, a version of another host met by
 * an upload goes to conflict.c. DESIGN (doc/mirror.md has the long form):
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
#include "writeback/mirror-int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "writeback/conflict.h"
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

void mirror_count_deletes(size_t n)
{
	atomic_fetch_add(&mr_deletes, n);
}

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

int mirror_key_of(struct mirror *m, const char *path, int dir, struct buf *b)
{
	buf_reset(b);
	int rc = name_path_to_key(m->cfg->s3_prefix ? m->cfg->s3_prefix : "", path, dir, b);
	if (!rc && !b->data && !(rc = buf_reserve(b, 1)))
		b->data[0] = '\0';   /* the root with no prefix: "" */
	return rc;
}

/* 1 when path's key (dir: its marker "key/") fits in S3's 1024 bytes. */
int mirror_key_fits(struct mirror *m, const char *path, int dir)
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
int mirror_too_long(struct run *x, const char *path, mode_t mode)
{
	atomic_fetch_add(&mr_too_long, 1);
	log_warn("mirror: %s is not written back: its S3 key would be over %d bytes", path,
		 NAME_S3_KEY_MAX);
	if (!S_ISDIR(mode) && x->m->l)
		ledger_file_event(x->m->l, path, LEDGER_EV_KEPT, LEDGER_BY_MIRROR, mark_too_long,
				  NULL);
	return 0;
}

int mirror_queue_delete(struct run *x, const char *key, int tree)
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
int mirror_upload(struct run *x, const char *path, const struct store_attr *hint)
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
		if (!(rc = mirror_key_of(m, path, 1, &key))) {
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
		if (!(rc = mirror_key_of(m, path, 0, &key))) {
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
		 * overwrite that version. It is kept beside ours as a conflict copy and its
		 * ETag recorded (conflict.h), whatever the file's state; then ours goes over the
		 * key. When that cannot be done now, the path stays in the journal. (Check then
		 * PUT: a write landing in between is not seen; S3 conditional writes would close
		 * that, s3rver has none.) */
		struct s3_object_info oi;
		if ((rc = mirror_key_of(m, path, 0, &key)))
			goto out_up;
		rc = s3_head(x->c, key.data, &oi);
		if (rc == 0 && strcmp(oi.etag, rec.etag)) {
			log_info("mirror: %s: S3 holds another version (ETag %s, known %s): both "
				 "kept", path, oi.etag, rec.etag);
			if (conflict_keep_both(m->r, path, oi.etag, oi.size, 0,
					       LEDGER_BY_MIRROR)) {
				log_warn("mirror: %s: S3 holds another host's version, which "
					 "cannot be kept now: not overwritten, tried again later",
					 path);
				x->held = 1;
				rc = MIRROR_HELD;
				goto out_up;
			}
		}
		if (rc && rc != -ENOENT)
			goto out_up;
	}
	if ((rc = store_open(nfs, path, O_RDONLY, 0, NULL, &src.f)))
		goto out_up;
	if (!(rc = store_fstat(nfs, src.f, &a)) && !(rc = mirror_key_of(m, path, 0, &key))) {
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
		if (!strcmp(it->path, "/") || !mirror_key_fits(m, it->path, 0))
			return 0;     /* S3 cannot hold it: nothing to delete */
		x->absent = 1;
		return reconcile_absent(x, it->path);
	}
	if (rc)
		return rc;
	if (e.src == ROUTE_S3)
		return 0;             /* only in S3: S3 already holds what the view shows */
	if (!mirror_key_fits(m, it->path, S_ISDIR(e.attr.mode)))
		return mirror_too_long(x, it->path, e.attr.mode);
	if (S_ISDIR(e.attr.mode)) {
		if ((it->flags & MIRROR_NODE) && (rc = mirror_upload(x, it->path, &e.attr)))
			return rc;
		if (it->flags & MIRROR_TREE)
			rc = reconcile_dir(x, it->path, NULL, NULL);
		return rc;
	}
	rc = mirror_upload(x, it->path, &e.attr);
	if (!rc && (it->flags & MIRROR_TREE)) {
		/* a file where a directory may have been: nothing may stay under "path/" */
		struct buf k = { 0 };
		rc = mirror_key_of(m, it->path, 1, &k) ?: mirror_queue_delete(x, k.data, 1);
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
			pa->rc = mirror_queue_delete(pa->x, w.dels[k], w.del_tree[k]);
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
		int r = reconcile_delete(&x, x.dels[i], x.del_tree[i]);
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
		rc = reconcile_verify_item(&x, &p.v[i], out, &diffs);
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
