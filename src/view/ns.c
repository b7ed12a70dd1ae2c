/* ns.c - changes to the merged namespace (spec section 5). Every write lands on the new
 * store. An S3-only file is copied up before anything changes it; a name removed while S3
 * still has it is whited out; a directory renamed with S3 content under it is copied up
 * first (at most rename_dir_limit objects, else EXDEV) and made opaque so that no S3 entry
 * leaks into its new place.
 *
 * One lock (copyup_lock, below) only to share a copy-up among threads. Otherwise each
 * step is an atomic call on the new store, and the order of steps is chosen so that a
 * crash between two of them never loses data (a file is copied before its name is
 * whited out; a directory is made opaque before it is renamed). */
#include "view/ns.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cfg.h"
#include "view/copy.h"
#include "view/dcache.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
#include "base/stats.h"
#include "view/whiteout.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static void child_path(const char *dir, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", strcmp(dir, "/") ? dir : "", name);
}

int ns_check_new_name(const char *path)
{
	const char *leaf = strrchr(path, '/') + 1;
	size_t len = strlen(leaf);
	if (name_is_reserved(leaf, len) || ns_is_hidden(path))
		return -EPERM;
	if (name_too_long(path))
		return -ENAMETOOLONG;
	return name_path_ok(path) ? 0 : -EINVAL;
}

/* Whether S3 has anything at path (an object or keys under it). 1 / 0 / -errno. */
static int s3_has(struct route *r, const char *path)
{
	struct store_attr a;
	if (atomic_load_explicit(&r->finished, memory_order_relaxed))
		return 0;              /* finished: S3 is retired, nothing to white out */
	int rc = store_stat(r->s3, path, &a);
	if (rc == 0)
		return 1;
	return rc == -ENOENT || rc == -ENOTDIR ? 0 : rc;
}

/* After removing path from the new store: white it out if S3 still has it. */
static int whiteout_if_s3(struct route *r, const char *path)
{
	int rc = s3_has(r, path);
	if (rc <= 0)
		return rc;
	rc = copy_ensure_parents(r, path);
	return rc ? rc : wh_create(r->nfs, path);
}

/* After removing the file `path` from the view (unlink, or the source of a rename): white
 * it out if S3 has it, holding the path's lock. The migrator publishes its copies under
 * the same lock and only where no whiteout is (src/migrate/migrate.c), so a copy of the object it
 * published since our lookup saw the name is removed here, and a later one is never made:
 * the deleted name cannot come back from S3. */
static int whiteout_file(struct route *r, const char *path)
{
	pthread_mutex_t *m = ns_path_lock(path);
	struct store_attr a;
	pthread_mutex_lock(m);
	int rc = s3_has(r, path);
	if (rc > 0 && !(rc = copy_ensure_parents(r, path)) && !(rc = wh_create(r->nfs, path)) &&
	    store_stat(r->nfs, path, &a) == 0 && S_ISREG(a.mode)) {
		rc = store_unlink(r->nfs, path);
		if (rc == 0)
			log_info("%s: removed a copy the migrator published while the name was "
				 "being deleted", path);
		else if (rc == -ENOENT)
			rc = 0;
	}
	pthread_mutex_unlock(m);
	return rc < 0 ? rc : 0;
}

/* After creating path on the new store: a whiteout of the same name is now stale. */
static void drop_whiteout(struct route *r, const char *path)
{
	int rc = wh_remove(r->nfs, path);
	if (rc)
		log_warn("cannot remove the whiteout of %s: %s", path, strerror(-rc));
}

/* An S3-only directory made real on the new store with the S3 directory's attributes
 * (not opaque: it still merges with the S3 keys under it). */
static int copyup_dir(struct route *r, const char *path, const struct store_attr *a)
{
	int rc = copy_ensure_parents(r, path);
	if (rc)
		return rc;
	rc = store_mkdir(r->nfs, path, a->mode & 07777);
	dc_forget(path);           /* a cached listing may say path is not on the new store */
	if (rc == -EEXIST)
		return 0;              /* another thread or host made it first */
	if (rc)
		return rc;
	store_chown(r->nfs, path, a->uid, a->gid);
	if (a->mtime.tv_sec) {
		struct timespec tv[2] = { a->mtime, a->mtime };
		store_utimens(r->nfs, path, tv);
	}
	return 0;
}

/* Copy-ups in flight: one at a time per path (striped by a hash of the path), so that
 * threads racing to write one S3-only file share one copy instead of each fetching the
 * whole object; the waiters then find the file on the new store. A stripe lock protects
 * nothing else; it is taken with no other lock held and held across the copy (a copy-up
 * of another path on the same stripe waits). Other hosts still race, safely: publishing
 * is only-if-absent (copy.c). */
#define COPYUP_STRIPES 64
static pthread_mutex_t copyup_lock[COPYUP_STRIPES];   /* ns_path_lock: see above */
static pthread_once_t copyup_once = PTHREAD_ONCE_INIT;

static void copyup_init(void)
{
	for (int i = 0; i < COPYUP_STRIPES; i++)
		pthread_mutex_init(&copyup_lock[i], NULL);
}

static pthread_mutex_t *copyup_stripe(const char *path)
{
	uint32_t h = 2166136261u;
	for (const char *s = path; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	pthread_once(&copyup_once, copyup_init);
	return &copyup_lock[h % COPYUP_STRIPES];
}

/* A file that replaced its S3-only self on the new store without a copy (O_TRUNC) keeps
 * the inode number it had (spec 4): map its new NFS file id to it in the ledger. */
static void keep_ino(struct route *r, const char *path)
{
	struct store_attr a;
	if (!r->ledger || store_stat(r->nfs, path, &a) || !a.ino)
		return;
	int rc = ledger_ino_put(r->ledger, a.ino, route_s3_ino(r, path));
	if (rc)
		log_warn("ledger: cannot keep the inode number of %s: %s", path, strerror(-rc));
}

static int copyup_locked(struct route *r, const char *path, int truncate)
{
	struct route_entry e;
	int rc = route_lookup(r, path, &e);
	if (rc)
		return rc;
	if (e.src == ROUTE_NFS)
		return 0;
	if (S_ISDIR(e.attr.mode))   /* chmod/chown/utimens of an S3-only directory */
		return truncate ? -EISDIR : copyup_dir(r, path, &e.attr);
	if (!S_ISREG(e.attr.mode))
		return -EISDIR;
	if (truncate) {
		struct store_file *f;
		rc = copy_ensure_parents(r, path);
		if (rc)
			return rc;
		rc = store_open(r->nfs, path, O_WRONLY | O_CREAT | O_EXCL, e.attr.mode & 07777,
				NULL, &f);
		if (rc == -EEXIST)
			return 0;          /* another writer made it first: it is on NFS */
		if (rc)
			return rc;
		store_close(r->nfs, f);
		store_chown(r->nfs, path, e.attr.uid, e.attr.gid);
		keep_ino(r, path);
		return 0;
	}
	struct copy_result res;
	rc = copy_s3_to_nfs(r, path, path, e.attr.etag, COPY_IF_ABSENT, &res);
	if (rc == 0) {
		stats_inc(copyups);
		log_info("copied up %s (%llu bytes)", path, (unsigned long long)res.size);
	}
	return rc;
}

pthread_mutex_t *ns_path_lock(const char *path)
{
	return copyup_stripe(path);
}

/* A migrated file is about to change: `modified` from now on, decided under the path's
 * lock, so that a re-migration (src/migrate/fleet.c), which replaces only a `migrated` copy
 * under the same lock, never replaces a file a writer is changing. */
void ns_mark_modified(struct route *r, const char *path)
{
	struct ledger_file rec;
	if (r->ledger && ledger_file_get(r->ledger, path, &rec) == 0 &&
	    rec.state == LEDGER_MIGRATED)
		ledger_file_event(r->ledger, path, LEDGER_EV_WRITTEN, LEDGER_BY_VIEW, NULL, NULL);
}

int ns_copyup(struct route *r, const char *path, int truncate)
{
	pthread_mutex_t *m = copyup_stripe(path);
	pthread_mutex_lock(m);
	int rc = copyup_locked(r, path, truncate);
	if (rc == 0)
		ns_mark_modified(r, path);
	/* before the next waiter looks: a cached listing of the parent still says S3 */
	dc_forget(path);
	pthread_mutex_unlock(m);
	return rc;
}

int ns_create(struct route *r, const char *path, uint32_t mode, int flags,
	      const struct ns_caller *who, struct store_file **out)
{
	struct route_entry e;
	int rc = ns_check_new_name(path);
	if (rc)
		return rc;
	rc = route_lookup_new(r, path, &e);
	if (rc == 0) {
		if (flags & O_EXCL)
			return -EEXIST;
		if (S_ISDIR(e.attr.mode))
			return -EISDIR;
		rc = ns_copyup(r, path, (flags & O_TRUNC) != 0);
		return rc ? rc :
			    store_open(r->nfs, path, flags & ~(O_CREAT | O_EXCL), 0, NULL, out);
	}
	if (rc != -ENOENT)
		return rc;
	rc = copy_ensure_parents(r, path);
	if (rc)
		return rc;
	rc = store_open(r->nfs, path, flags | O_CREAT, mode & 07777, NULL, out);
	if (rc)
		return rc;
	store_chown(r->nfs, path, who->uid, who->gid);
	drop_whiteout(r, path);
	return 0;
}

/* Common prologue of mkdir/mknod/symlink: the name must be free in the merged view. */
static int prepare_new(struct route *r, const char *path)
{
	struct route_entry e;
	int rc = ns_check_new_name(path);
	if (rc)
		return rc;
	rc = route_lookup_new(r, path, &e);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	return copy_ensure_parents(r, path);
}

int ns_mkdir(struct route *r, const char *path, uint32_t mode, const struct ns_caller *who)
{
	int rc = prepare_new(r, path);
	if (rc)
		return rc;
	rc = store_mkdir(r->nfs, path, mode & 07777);
	if (rc)
		return rc;
	store_chown(r->nfs, path, who->uid, who->gid);
	/* The name was free in the merged view, so whatever S3 holds at path is hidden (a
	 * whiteout of path or of an ancestor, or an opaque parent): the new directory must
	 * not show it, so it is opaque. */
	int was_whited = wh_is_whiteout(r->nfs, path);
	rc = s3_has(r, path);
	if (rc > 0)
		rc = wh_make_opaque(r->nfs, path);
	if (rc < 0)
		return rc;
	if (was_whited > 0)
		drop_whiteout(r, path);
	return 0;
}

int ns_mknod(struct route *r, const char *path, uint32_t mode, uint64_t rdev,
	     const struct ns_caller *who)
{
	int rc = prepare_new(r, path);
	if (rc)
		return rc;
	rc = store_mknod(r->nfs, path, mode, rdev);
	if (rc)
		return rc;
	store_chown(r->nfs, path, who->uid, who->gid);
	drop_whiteout(r, path);
	return 0;
}

int ns_symlink(struct route *r, const char *target, const char *path, const struct ns_caller *who)
{
	int rc = prepare_new(r, path);
	if (rc)
		return rc;
	rc = store_symlink(r->nfs, target, path);
	if (rc)
		return rc;
	store_chown(r->nfs, path, who->uid, who->gid);
	drop_whiteout(r, path);
	return 0;
}

int ns_link(struct route *r, const char *from, const char *to)
{
	struct route_entry e;
	int rc = route_lookup(r, from, &e);
	if (rc)
		return rc;
	if (S_ISDIR(e.attr.mode))
		return -EPERM;
	rc = prepare_new(r, to);
	if (rc)
		return rc;
	rc = ns_copyup(r, from, 0);
	if (rc)
		return rc;
	rc = store_link(r->nfs, from, to);
	if (rc)
		return rc;
	drop_whiteout(r, to);
	return 0;
}

int ns_unlink(struct route *r, const char *path)
{
	struct route_entry e;
	int rc = route_lookup(r, path, &e);
	if (rc)
		return rc;
	if (S_ISDIR(e.attr.mode))
		return -EISDIR;
	if (e.src == ROUTE_NFS) {
		pthread_mutex_t *m = copyup_stripe(path);   /* not under a re-migration */
		pthread_mutex_lock(m);
		rc = store_unlink(r->nfs, path);
		pthread_mutex_unlock(m);
		if (rc)
			return rc;
	}
	return whiteout_file(r, path);
}

/* --- files hidden while open ---------------------------------------------------------
 * libfuse (hard_remove off) renames a file still open to "<dir>/.fuse_hidden<16 hex>"
 * instead of removing it, and unlinks that name at the last close. Such a name is never
 * made on a store: it maps to the reserved "<dir>/.ferryfs.hidden.<host>.<pid>.<16 hex>"
 * on the new store alone (doc/namespace.md, "Open files that lose their name"). */
#define HIDDEN_FUSE ".fuse_hidden"
#define HIDDEN_PREFIX WH_HIDDEN_PREFIX

static char hidden_tag[96];          /* "<host>.<pid>", written once (hidden_once) */
static pthread_once_t hidden_once = PTHREAD_ONCE_INIT;

/* Every hidden file of this mount, for what the new store cannot say: an S3-only file has
 * nothing there (its open handles read S3), so its attributes are kept for a stat of the
 * hidden name (fstat(2) asks by name); a file on the new store counts its hidden names in
 * its link count, which the mount's other names must not show (ns_hidden_nlink). Entries
 * live from the hide to the unlink of the hidden name. hidden_lock (a leaf) protects the
 * list; hidden_nfs counts its new-store entries, read without the lock. */
struct hidden_file {
	char *path;                  /* the ".fuse_hidden" path */
	int s3;                      /* an S3-only file: attr holds its attributes */
	struct store_attr attr;
	uint64_t ino;                /* st_ino as the mount reports it */
	struct hidden_file *next;
};
static pthread_mutex_t hidden_lock = PTHREAD_MUTEX_INITIALIZER;  /* hidden_files; a leaf */
static struct hidden_file *hidden_files;
static atomic_int hidden_nfs;

/* Take the entry of hidden out of the list (freed by the caller), NULL when none. Called
 * with hidden_lock held. */
static struct hidden_file *hidden_take(const char *hidden)
{
	struct hidden_file **pp, *h = NULL;
	for (pp = &hidden_files; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->path, hidden)) {
			h = *pp;
			*pp = h->next;
			if (!h->s3)
				atomic_fetch_sub(&hidden_nfs, 1);
			break;
		}
	return h;
}

static void hidden_free(struct hidden_file *h)
{
	if (h)
		free(h->path);
	free(h);
}

/* Record a hide. Out of memory: -ENOMEM for an S3-only file (which could not be stat'ed
 * after), nothing for one on the new store (only its other names' link count is off). */
static int hidden_add(struct route *r, const char *path, const char *hidden,
		      const struct route_entry *e)
{
	struct stat st;
	struct hidden_file *h = calloc(1, sizeof(*h));
	if (!h || !(h->path = strdup(hidden))) {
		free(h);
		return e->src == ROUTE_S3 ? -ENOMEM : 0;
	}
	route_to_stat(r, path, e, &st);
	h->s3 = e->src == ROUTE_S3;
	h->attr = e->attr;
	h->ino = (uint64_t)st.st_ino;
	pthread_mutex_lock(&hidden_lock);
	hidden_free(hidden_take(hidden));   /* (libfuse never reuses a name in use) */
	h->next = hidden_files;
	hidden_files = h;
	if (!h->s3)
		atomic_fetch_add(&hidden_nfs, 1);
	pthread_mutex_unlock(&hidden_lock);
	return 0;
}

void ns_hidden_nlink(struct stat *st, int self)
{
	unsigned n = 0;
	if (!S_ISREG(st->st_mode) || st->st_nlink < 2 || !atomic_load(&hidden_nfs))
		return;
	pthread_mutex_lock(&hidden_lock);
	for (struct hidden_file *h = hidden_files; h; h = h->next)
		n += !h->s3 && h->ino == (uint64_t)st->st_ino;
	pthread_mutex_unlock(&hidden_lock);
	if (self && n)
		n--;                  /* libfuse takes a hidden name's own link off */
	if (n && st->st_nlink > n)
		st->st_nlink -= n;
}

static void hidden_init(void)
{
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	for (char *h = host; *h; h++)
		if (*h == '/' || *h == '.')
			*h = '_';
	snprintf(hidden_tag, sizeof(hidden_tag), "%s.%ld", host, (long)getpid());
}

int ns_is_hidden(const char *path)
{
	const char *leaf = path ? strrchr(path, '/') : NULL;
	return leaf && !strncmp(leaf + 1, HIDDEN_FUSE, sizeof(HIDDEN_FUSE) - 1);
}

/* The new store's name for a hidden path. 0 / -ENAMETOOLONG. */
static int hidden_nfs_path(const char *hidden, char *out, size_t outlen)
{
	pthread_once(&hidden_once, hidden_init);
	const char *leaf = strrchr(hidden, '/') + 1;
	int n = snprintf(out, outlen, "%.*s" HIDDEN_PREFIX "%s.%s", (int)(leaf - hidden), hidden,
			 hidden_tag, leaf + sizeof(HIDDEN_FUSE) - 1);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int ns_hide(struct route *r, const char *path, const char *hidden)
{
	char to[NAME_MAX_PATH + 200];
	struct route_entry e;
	int rc = hidden_nfs_path(hidden, to, sizeof(to));
	if (rc)
		return rc;
	if ((rc = route_lookup(r, path, &e)))
		return rc;
	if (S_ISDIR(e.attr.mode))
		return -EISDIR;
	if ((rc = hidden_add(r, path, hidden, &e)))
		return rc;
	if (e.src == ROUTE_NFS) {
		pthread_mutex_t *m = copyup_stripe(path);   /* as ns_unlink */
		pthread_mutex_lock(m);
		rc = store_rename(r->nfs, path, to, 0);
		pthread_mutex_unlock(m);
		if (rc) {
			pthread_mutex_lock(&hidden_lock);
			hidden_free(hidden_take(hidden));
			pthread_mutex_unlock(&hidden_lock);
			return rc;
		}
	}
	return whiteout_file(r, path);
}

int ns_hidden_stat(struct route *r, const char *hidden, struct route_entry *out, uint64_t *s3_ino)
{
	char p[NAME_MAX_PATH + 200];
	memset(out, 0, sizeof(*out));
	*s3_ino = 0;
	pthread_mutex_lock(&hidden_lock);
	for (struct hidden_file *h = hidden_files; h; h = h->next)
		if (h->s3 && !strcmp(h->path, hidden)) {
			out->src = ROUTE_S3;
			out->attr = h->attr;
			*s3_ino = h->ino;
			break;
		}
	pthread_mutex_unlock(&hidden_lock);
	if (*s3_ino)
		return 0;
	int rc = hidden_nfs_path(hidden, p, sizeof(p));
	if (rc)
		return rc == -ENAMETOOLONG ? -ENOENT : rc;
	out->src = ROUTE_NFS;
	rc = store_stat(r->nfs, p, &out->attr);
	return rc == -ENOTDIR ? -ENOENT : rc;
}

int ns_hidden_unlink(struct route *r, const char *hidden)
{
	char p[NAME_MAX_PATH + 200];
	pthread_mutex_lock(&hidden_lock);
	struct hidden_file *h = hidden_take(hidden);
	pthread_mutex_unlock(&hidden_lock);
	int s3 = h && h->s3;
	hidden_free(h);
	if (s3)
		return 0;
	int rc = hidden_nfs_path(hidden, p, sizeof(p));
	if (!rc)
		rc = store_unlink(r->nfs, p);
	return rc == -ENOENT ? 0 : rc;   /* an S3-only file had nothing on the new store */
}

static int first_entry(void *arg, const char *name, const struct stat *st, enum route_src src)
{
	(void)arg;
	(void)name;
	(void)st;
	(void)src;
	return 1;
}

/* 0 when the directory is empty in the merged view, -ENOTEMPTY when not, -errno. */
static int merged_empty(struct route *r, const char *dir)
{
	int rc = route_readdir(r, dir, first_entry, NULL);
	return rc == 1 ? -ENOTEMPTY : rc;
}

int ns_rmdir(struct route *r, const char *path)
{
	struct route_entry e;
	int rc = route_lookup(r, path, &e);
	if (rc)
		return rc;
	if (!S_ISDIR(e.attr.mode))
		return -ENOTDIR;
	if (!strcmp(path, "/"))
		return -EBUSY;
	rc = merged_empty(r, path);
	if (rc)
		return rc;
	if (e.src == ROUTE_NFS) {
		rc = wh_clear_dir(r->nfs, path);
		if (rc)
			return rc;
		rc = store_rmdir(r->nfs, path);
		if (rc)
			return rc;
	}
	return whiteout_if_s3(r, path);
}

/* --- rename ----------------------------------------------------------------------- */

struct walk {
	struct route *r;
	uint64_t s3_files;    /* S3-only files seen */
	uint64_t limit;
	int copy;             /* 0: count only; 1: copy up and make every directory opaque */
	int rc;
};

static int walk_dir(struct walk *w, const char *dir);

struct walk_entry {
	char *name;
	enum route_src src;
	mode_t mode;
};

struct walk_list {
	struct walk_entry *v;
	size_t n, cap;
};

static int collect(void *arg, const char *name, const struct stat *st, enum route_src src)
{
	struct walk_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct walk_entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name)
		return -ENOMEM;
	l->v[l->n].src = src;
	l->v[l->n].mode = st->st_mode;
	l->n++;
	return 0;
}

static int walk_dir(struct walk *w, const char *dir)
{
	struct walk_list l = { 0 };
	char *child = malloc(NAME_MAX_PATH + 2);     /* on the heap: this recurses */
	int rc = child ? route_readdir(w->r, dir, collect, &l) : -ENOMEM;
	for (size_t i = 0; i < l.n && !rc; i++) {
		child_path(dir, l.v[i].name, child, NAME_MAX_PATH + 2);
		if (S_ISDIR(l.v[i].mode)) {
			if (w->copy && l.v[i].src == ROUTE_S3) {
				rc = copy_ensure_parents(w->r, child);
				if (!rc) {
					rc = store_mkdir(w->r->nfs, child, l.v[i].mode & 07777);
					rc = rc == -EEXIST ? 0 : rc;
					dc_forget(child);
				}
			}
			if (!rc)
				rc = walk_dir(w, child);
		} else if (l.v[i].src == ROUTE_S3) {
			if (!w->copy && ++w->s3_files > w->limit)
				rc = -EXDEV;
			else if (w->copy)
				rc = ns_copyup(w->r, child, 0);
		}
	}
	if (!rc && w->copy)
		rc = wh_make_opaque(w->r->nfs, dir);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	free(child);
	return rc;
}

static int rename_dir(struct route *r, const char *from, const struct route_entry *ef,
		      const char *to, const struct route_entry *et, unsigned flags)
{
	int s3_from = s3_has(r, from), s3_to = s3_has(r, to), rc;
	if (s3_from < 0)
		return s3_from;
	if (s3_to < 0)
		return s3_to;
	if (s3_from || s3_to || ef->src == ROUTE_S3) {
		struct walk w = { .r = r, .limit = r->cfg->rename_dir_limit };
		rc = walk_dir(&w, from);          /* count first: EXDEV changes nothing */
		if (rc)
			return rc;
		w.copy = 1;
		if (ef->src == ROUTE_S3) {
			rc = copy_ensure_parents(r, from);
			if (!rc) {
				rc = store_mkdir(r->nfs, from, ef->attr.mode & 07777);
				rc = rc == -EEXIST ? 0 : rc;
				dc_forget(from);
			}
			if (rc)
				return rc;
		}
		rc = walk_dir(&w, from);
		if (rc)
			return rc;
	}
	rc = copy_ensure_parents(r, to);
	/* A target directory that is empty in the merged view may still hold whiteout or
	 * opaque markers on the new store (its S3 files were deleted through the mount), and
	 * the store would refuse to replace it. Those markers hide S3 keys under `to`, so
	 * s3_to was set and `from` is opaque by now: they are not needed after the rename.
	 * (If the rename itself fails after this, the S3 keys under `to` show again.) */
	if (!rc && et && et->src == ROUTE_NFS)
		rc = wh_clear_dir(r->nfs, to);
	if (!rc)
		rc = store_rename(r->nfs, from, to, flags);
	if (rc)
		return rc;
	drop_whiteout(r, to);
	return s3_from ? whiteout_if_s3(r, from) : 0;
}

int ns_rename(struct route *r, const char *from, const char *to, unsigned flags)
{
	struct route_entry ef, et;
	int rc, to_exists;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	rc = ns_check_new_name(to);
	if (rc)
		return rc;
	rc = route_lookup(r, from, &ef);
	if (rc)
		return rc;
	rc = route_lookup(r, to, &et);
	if (rc && rc != -ENOENT)
		return rc;
	to_exists = rc == 0;
	if (to_exists) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (S_ISDIR(ef.attr.mode) && !S_ISDIR(et.attr.mode))
			return -ENOTDIR;
		if (!S_ISDIR(ef.attr.mode) && S_ISDIR(et.attr.mode))
			return -EISDIR;
		if (S_ISDIR(et.attr.mode)) {
			rc = merged_empty(r, to);
			if (rc)
				return rc;
		}
	}
	if (!strcmp(from, to))
		return 0;
	/* Two names of one file (hard links on the new store): rename does nothing (POSIX).
	 * The server would do nothing too, and whiteout_file would then take the source left
	 * in place for a migrator's copy and remove it. */
	if (to_exists && ef.src == ROUTE_NFS && et.src == ROUTE_NFS && !S_ISDIR(ef.attr.mode) &&
	    ef.attr.ino && ef.attr.ino == et.attr.ino)
		return 0;
	if (S_ISDIR(ef.attr.mode)) {
		size_t fl = strlen(from);
		if (!strncmp(to, from, fl) && to[fl] == '/')
			return -EINVAL;      /* into its own subtree */
		return rename_dir(r, from, &ef, to, to_exists ? &et : NULL, flags);
	}

	if (ef.src == ROUTE_S3) {
		/* an S3-only file: copied up to its new name, then its old name whited out */
		struct copy_result res;
		rc = copy_s3_to_nfs(r, from, to, ef.attr.etag, COPY_REPLACE, &res);
		if (rc)
			return rc;
	} else {
		rc = copy_ensure_parents(r, to);
		if (!rc) {
			/* not under a re-migration of either name (stripes in address order) */
			pthread_mutex_t *a = copyup_stripe(from), *b = copyup_stripe(to);
			if (a > b) {
				pthread_mutex_t *t = a;
				a = b;
				b = t;
			}
			pthread_mutex_lock(a);
			if (b != a)
				pthread_mutex_lock(b);
			rc = store_rename(r->nfs, from, to, flags);
			if (b != a)
				pthread_mutex_unlock(b);
			pthread_mutex_unlock(a);
		}
		if (rc)
			return rc;
	}
	drop_whiteout(r, to);
	return whiteout_file(r, from);
}

/* --- attributes ---------------------------------------------------------------------- */

int ns_chmod(struct route *r, const char *path, uint32_t mode)
{
	int rc = ns_copyup(r, path, 0);
	return rc ? rc : store_chmod(r->nfs, path, mode & 07777);
}

int ns_chown(struct route *r, const char *path, uint32_t uid, uint32_t gid)
{
	struct store_attr a;
	int rc = ns_copyup(r, path, 0);
	if (rc)
		return rc;
	if (uid == (uint32_t)-1 || gid == (uint32_t)-1) {   /* -1: leave that id as it is */
		rc = store_stat(r->nfs, path, &a);
		if (rc)
			return rc;
		uid = uid == (uint32_t)-1 ? a.uid : uid;
		gid = gid == (uint32_t)-1 ? a.gid : gid;
	}
	return store_chown(r->nfs, path, uid, gid);
}

int ns_utimens(struct route *r, const char *path, const struct timespec tv[2])
{
	int rc = ns_copyup(r, path, 0);
	return rc ? rc : store_utimens(r->nfs, path, tv);
}

int ns_truncate(struct route *r, const char *path, uint64_t size)
{
	int rc = ns_copyup(r, path, size == 0);
	return rc ? rc : store_truncate(r->nfs, path, size);
}
