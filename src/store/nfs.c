/* store/nfs.c - the new store over libnfs: the store.h operations on an NFS export, every
 * call made on a context borrowed from the pool (src/nfs/pool.c) for that one call.
 *
 * The URL's path (export plus an optional subdirectory, spec section 2's SUB) is what each
 * context mounts: NFSv3 mounts it through MOUNT (ganesha and knfsd accept a directory
 * below an export), NFSv4 walks the pseudo path from the root. Store paths are then
 * absolute paths inside that mount.
 *
 * NFSv3 BY HANDLE. libnfs 4.0 resolves every path from the export root, one LOOKUP per
 * component, for every call. Over NFSv3 this store instead sends each call to the cached
 * handle of the parent directory (nfs/fhcache.h, nfs/raw3.h): a stat or open is one
 * LOOKUP, a create one CREATE, an unlink one REMOVE, and an open file is read and written
 * by its handle on whichever context is free. libnfs's own calls remain for NFSv4, for
 * FERRYFS_NFS_NO_FHCACHE=1, and for what has no by-handle path here (readdir, statfs,
 * symlink, readlink, mknod, xattrs, opening a symlink).
 *
 * OPEN FILES (libnfs's, above). A struct nfsfh belongs to the context that opened it,
 * and FUSE reads one handle from several threads. A file therefore keeps one nfsfh per
 * pool context (slot[i], used only by the thread holding context i, so the slots need no
 * lock): the open itself fills the slot of the context it ran on (its "home"); a read or
 * write that gets another context opens the file there by path the first time, and
 * checks that the fileid is the same file (if the path was renamed or replaced meanwhile
 * it falls back to the home context; the open costs one GETATTR to learn the fileid).
 * Parallel preads on one file thus run on parallel contexts, and the common case (the
 * home context is free) costs no extra open. Handles opened on
 * a context that was since reconnected are abandoned (the dead context cannot close
 * them) and reopened.
 *
 * Never: keep a context across calls, or call back into the caller (readdir's callback,
 * read_stream's sink) while holding one: a callback that used the store would deadlock a
 * small pool. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nfsc/libnfs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/log.h"
#include "base/naming.h"
#include "nfs/fhcache.h"
#include "nfs/pool.h"
#include "nfs/raw3.h"
#include "base/util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define NFS_CHUNK (1u << 20)  /* read_stream and put move data in 1 MiB calls */
/* libnfs 4.0's NFSv4 client reports no readmax/writemax, fails READs over 1 MiB (EIO)
 * and cannot encode a WRITE compound over ~3.9 KiB ("Failed to encode COMPOUND4args"):
 * v4 writes go in pieces of V4_WMAX, with room to spare for the largest filehandle. */
#define V4_WMAX 3072u

struct nfs_store {
	struct store base;
	const struct ferry_config *cfg;
	struct nfsp_pool *pool;
	atomic_uint tmpseq;       /* names of put's temporary files */
	int v4;                   /* NFSv4: work around libnfs 4.0's v4 gaps (see below) */
	/* NFSv3 stat in one round trip (see "STAT" below) */
	struct fhc *fhc;          /* directory handles by path; NULL for v4 */
	pthread_mutex_t root_lock; /* protects root and root_state */
	struct raw3_fh root;
	int root_state;           /* 0: not known yet, 1: root valid, -1: use libnfs's walk */
};

#define FHC_SLOTS 8192
#define FHC_TTL_MS 2000

struct fslot {
	struct nfsfh *fh;         /* NULL: not open on this context */
	uint64_t gen;             /* the context generation fh belongs to */
};

struct store_file {
	char *path;
	int oflags;               /* flags for opens on further contexts (no CREAT/EXCL/TRUNC) */
	int append;               /* O_APPEND: every write goes to the current end */
	unsigned home;            /* the context the file was opened on */
	uint64_t ino;             /* fileid, to recognise the file when reopening by path */
	atomic_int dirty;         /* written since the last COMMIT */
	pthread_mutex_t append_lock; /* O_APPEND writes one at a time (size lookup + write) */
	/* NFSv3 by handle (raw): the file's handle serves every context, slots are unused */
	int raw;
	struct raw3_fh fh;
	atomic_uint_least64_t wverf; /* the write verifier of the last UNSTABLE WRITE */
	atomic_int verf_seen;     /* wverf holds one */
	atomic_int verf_changed;  /* two WRITEs got different verifiers (server restarted) */
	unsigned nslots;
	struct fslot slot[];      /* slot[i] is touched only by the holder of context i */
};

#define NST(st) ((struct nfs_store *)(st))

static int path_ok(const char *p) { return store_path_ok(p); }

static int is_root(const char *p) { return p[0] == '/' && p[1] == '\0'; }

static void attr_from_stat(const struct nfs_stat_64 *s, struct store_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = (uint32_t)s->nfs_mode;
	a->nlink = (uint32_t)s->nfs_nlink;
	a->uid = (uint32_t)s->nfs_uid;
	a->gid = (uint32_t)s->nfs_gid;
	a->size = s->nfs_size;
	a->ino = s->nfs_ino;
	a->rdev = s->nfs_rdev;
	a->blocks = s->nfs_used ? (s->nfs_used + 511) / 512 : s->nfs_blocks;
	a->atime.tv_sec = (time_t)s->nfs_atime;
	a->atime.tv_nsec = (long)s->nfs_atime_nsec;
	a->mtime.tv_sec = (time_t)s->nfs_mtime;
	a->mtime.tv_nsec = (long)s->nfs_mtime_nsec;
	a->ctime.tv_sec = (time_t)s->nfs_ctime;
	a->ctime.tv_nsec = (long)s->nfs_ctime_nsec;
	a->have = STORE_HAVE_ALL;
}

/* NF3 file types (NF3REG = 1 ... NF3FIFO = 7) as S_IF* bits. */
static uint32_t nf3_type(uint32_t t)
{
	switch (t) {
	case 1: return S_IFREG;
	case 2: return S_IFDIR;
	case 3: return S_IFBLK;
	case 4: return S_IFCHR;
	case 5: return S_IFLNK;
	case 6: return S_IFSOCK;
	case 7: return S_IFIFO;
	default: return 0;
	}
}

/* One argument block for the small path operations below. */
struct op {
	struct nfs_store *ns;
	int v4;
	const char *path, *path2;
	int flags;
	uint32_t mode;
	uint32_t uid, gid;
	uint64_t u64;
	struct store_attr *attr;
	struct statvfs *svfs;
	struct timeval tv[2];
	int tv_null;
	struct raw3_sattr sa;     /* NFSv3 by handle: utimens's times */
	int refused;              /* the server ignored sa's times (a symlink's) */
	char *buf;
	size_t len;
	ssize_t result;
};

/* libnfs 4.0's NFSv4 OPEN does not advance the open-owner sequence id when the server
 * fails an OPEN (EEXIST, ...), while the server does: every later OPEN on that context
 * then gets the cached failure replayed, or crashes libnfs. So after a failed v4 OPEN the
 * context is discarded (a new one, a new client, is made on next use), and an O_EXCL
 * create first looks the name up so that the common EEXIST never reaches the server. */
static int v4_open_failed(struct nfsp_conn *c, int rc)
{
	if (rc < 0)
		nfsp_discard(c);
	return rc;
}

/* ---- path operations ---- */

/* STAT. libnfs 4.0's NFSv3 stat walks from the export root, one LOOKUP per component,
 * then sends a GETATTR: depth + 1 round trips. Here a v3 stat is one LOOKUP of the last
 * name in its parent's handle, taken from the handle cache (nfs/fhcache.h); the LOOKUP
 * reply carries the attributes. Parents not cached are looked up (and cached) on the way,
 * so a cold path costs one LOOKUP per component and a warm one exactly one. A component
 * that is not a directory ends the walk with ENOTDIR: the walk never follows a symlink
 * (libnfs's would), so nothing on the export can lead a stat outside it. A cached handle
 * the server calls stale (the directory was removed by another host) is forgotten and
 * the walk starts again from the root. NFSv4 keeps libnfs's stat: one COMPOUND. */
struct st_op {
	struct nfs_store *ns;
	const char *path;
	struct store_attr *attr;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The export root's handle, learnt once (and checked: its GETATTR must name the file id
 * libnfs reports for "/"); -ENOTSUP when it does not check out (use libnfs's walk). */
static int v3_root(struct nfs_store *ns, struct nfsp_conn *c, struct raw3_fh *out)
{
	pthread_mutex_lock(&ns->root_lock);
	int state = ns->root_state;
	if (state == 1)
		*out = ns->root;
	pthread_mutex_unlock(&ns->root_lock);
	if (state)
		return state == 1 ? 0 : -ENOTSUP;
	struct raw3_fh fh;
	struct nfs_stat_64 a, b;
	int rc = raw3_root(c->nfs, &fh);
	if (rc == 0)
		rc = raw3_getattr(c->nfs, &fh, &a);
	if (rc == 0)
		rc = nfs_lstat64(c->nfs, "/", &b);
	if (rc)
		return rc == -EPROTO ? -ENOTSUP : rc;
	state = a.nfs_ino == b.nfs_ino && S_ISDIR(a.nfs_mode) ? 1 : -1;
	if (state < 0)
		log_warn("nfs: the export root's handle does not check out; stat walks each path");
	pthread_mutex_lock(&ns->root_lock);
	ns->root = fh;
	ns->root_state = state;
	pthread_mutex_unlock(&ns->root_lock);
	*out = fh;
	return state == 1 ? 0 : -ENOTSUP;
}

/* One walk from the deepest cached ancestor (or the root: use_cache 0). */
static int v3_walk(struct nfs_store *ns, struct nfsp_conn *c, const char *path, int use_cache,
		   struct raw3_fh *fh, struct nfs_stat_64 *st, size_t *from_cache)
{
	struct raw3_fh dir, obj;
	char name[NAME_MAX + 1];
	int64_t now = mono_ms();
	size_t start = 0;          /* path[0..start) is the directory the walk starts in */
	int rc = v3_root(ns, c, &dir);
	if (rc)
		return rc;
	if (use_cache) {
		for (const char *p = strrchr(path, '/'); p && p > path;
		     p = memrchr(path, '/', (size_t)(p - path))) {
			if (fhc_get(ns->fhc, path, (size_t)(p - path), now, &dir) == 0) {
				start = (size_t)(p - path);
				break;
			}
		}
	}
	*from_cache = start;
	const char *s = path + start + 1;
	for (;;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		int have = 0;
		memcpy(name, s, n);
		name[n] = '\0';
		rc = raw3_lookup(c->nfs, &dir, name, &obj, st, &have);
		if (rc == 0 && !have)
			rc = raw3_getattr(c->nfs, &obj, st);
		if (rc)
			return rc;
		if (S_ISDIR(st->nfs_mode))
			fhc_put(ns->fhc, path, (size_t)(e - path), &obj, now);
		if (!*e) {
			*fh = obj;
			return 0;
		}
		if (!S_ISDIR(st->nfs_mode))
			return -ENOTDIR;
		dir = obj;
		s = e + 1;
	}
}

/* The handle (and attributes) of path. With st NULL a directory the cache holds costs
 * nothing (only directories are cached, and nothing is asked of the server). */
static int v3_resolve(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		      struct raw3_fh *fh, struct nfs_stat_64 *st)
{
	struct raw3_fh root;
	struct nfs_stat_64 tmp;
	size_t cached = 0;
	int rc = v3_root(ns, c, &root);
	if (rc)
		return rc;
	if (is_root(path)) {
		*fh = root;
		return st ? raw3_getattr(c->nfs, &root, st) : 0;
	}
	if (!st) {
		if (fhc_get(ns->fhc, path, strlen(path), mono_ms(), fh) == 0)
			return 0;
		st = &tmp;
	}
	rc = v3_walk(ns, c, path, 1, fh, st, &cached);
	if (rc == -ESTALE && cached) {
		/* a cached directory is gone: forget it and walk from the root */
		char *dir = strndup(path, cached);
		if (dir) {
			fhc_forget(ns->fhc, dir);
			free(dir);
		}
		rc = v3_walk(ns, c, path, 0, fh, st, &cached);
	}
	if (rc == -ESTALE) {
		/* even the root's handle is refused (a server that does not keep handles
		 * across restarts): learn it again, once */
		pthread_mutex_lock(&ns->root_lock);
		ns->root_state = 0;
		pthread_mutex_unlock(&ns->root_lock);
		fhc_forget(ns->fhc, "/");
		rc = v3_walk(ns, c, path, 0, fh, st, &cached);
	}
	return rc;
}

static int v3_stat(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		   struct nfs_stat_64 *st)
{
	struct raw3_fh fh;
	return v3_resolve(ns, c, path, &fh, st);
}

/* The handle of path's parent directory, and path's last name (pointing into path). */
static int v3_parent(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		     struct raw3_fh *dir, const char **name)
{
	char parent[NAME_MAX_PATH + 1];
	const char *slash = strrchr(path, '/');
	*name = slash + 1;
	if (slash == path)
		return v3_resolve(ns, c, "/", dir, NULL);
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	struct nfs_stat_64 st;
	if (fhc_get(ns->fhc, parent, strlen(parent), mono_ms(), dir) == 0)
		return 0;
	int rc = v3_resolve(ns, c, parent, dir, &st);
	if (rc == 0 && !S_ISDIR(st.nfs_mode))
		rc = -ENOTDIR;
	return rc;
}

/* A call by handle failed with ESTALE: the cached handle of path's parent may name a
 * directory another host removed. Forget it (the caller tries once more). */
static void v3_forget_parent(struct nfs_store *ns, const char *path)
{
	char parent[NAME_MAX_PATH + 1];
	const char *slash = strrchr(path, '/');
	if (slash == path) {
		fhc_forget(ns->fhc, "/");
		return;
	}
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	fhc_forget(ns->fhc, parent);
}

/* Whether this store speaks NFSv3 by handle: 1, 0 (use libnfs's paths), or -errno. */
static int v3_raw(struct nfs_store *ns, struct nfsp_conn *c)
{
	struct raw3_fh root;
	if (!ns->fhc)
		return 0;
	int rc = v3_root(ns, c, &root);
	return rc == -ENOTSUP ? 0 : rc ? rc : 1;
}

static int stat_fn(struct nfsp_conn *c, void *arg)
{
	struct st_op *o = arg;
	struct nfs_stat_64 st;
	int rc = o->ns->fhc ? v3_stat(o->ns, c, o->path, &st) : -ENOTSUP;
	if (rc == -ENOTSUP)
		rc = nfs_lstat64(c->nfs, o->path, &st);
	if (rc == 0)
		attr_from_stat(&st, o->attr);
	return rc;
}

/* libnfs 4.0 encodes an NFSv4 request into 4 KiB, one LOOKUP per component of the path,
 * and a longer one fails with a wrong errno: such a path is ENAMETOOLONG here. NFSv3 goes
 * by handle, one name at a time, and has no such limit. */
static int v4_too_long(struct store *st, const char *path)
{
	if (!NST(st)->v4 || !path)
		return 0;
	size_t n = strlen(path), parts = 0;
	for (const char *c = path; *c; c++)
		parts += *c == '/';
	return n + 12 * parts + 768 > 4096;
}

static int nfs_st_stat(struct store *st, const char *path, struct store_attr *out)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path))
		return -EINVAL;
	struct st_op o = { .ns = NST(st), .path = path, .attr = out };
	return nfsp_call(NST(st)->pool, -1, stat_fn, &o);
}

/* This host moved or removed a directory: its cached handles (and its subtree's) go. */
static void forget_dir(struct store *st, const char *path)
{
	if (NST(st)->fhc)
		fhc_forget(NST(st)->fhc, path);
}

/* readdir: the whole listing is copied out of libnfs (READDIRPLUS: names with
 * attributes) while the context is held, then delivered with the context given back. */
struct dent {
	char *name;
	uint32_t type;
	struct store_attr attr;
};
struct dlist {
	int v4;
	const char *path;
	struct dent *v;
	size_t n, cap;
};

static void dlist_clear(struct dlist *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

static int readdir_fn(struct nfsp_conn *c, void *arg)
{
	struct dlist *d = arg;
	struct nfsdir *dir;
	struct nfsdirent *e;
	int rc;

	dlist_clear(d);   /* a retry after a reconnect starts over */
	rc = nfs_opendir(c->nfs, d->path, &dir);
	if (rc)
		return rc;
	while ((e = nfs_readdir(c->nfs, dir))) {
		if (!strcmp(e->name, ".") || !strcmp(e->name, ".."))
			continue;
		if (d->n == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 64;
			struct dent *v = realloc(d->v, cap * sizeof(*v));
			if (!v) {
				rc = -ENOMEM;
				goto close_dir;
			}
			d->v = v;
			d->cap = cap;
		}
		struct dent *x = &d->v[d->n];
		x->name = util_strdup(e->name);
		if (!x->name) {
			rc = -ENOMEM;
			goto close_dir;
		}
		d->n++;
		uint32_t type = nf3_type(e->type);
		if (!type)
			type = e->mode & S_IFMT;
		x->type = type;
		struct store_attr *a = &x->attr;
		memset(a, 0, sizeof(*a));
		a->mode = type | (e->mode & 07777);
		a->nlink = e->nlink;
		a->uid = e->uid;
		a->gid = e->gid;
		a->size = e->size;
		a->ino = e->inode;
		a->rdev = e->rdev;
		a->blocks = e->used ? (e->used + 511) / 512 : e->blocks;
		a->atime.tv_sec = e->atime.tv_sec;
		a->atime.tv_nsec = (long)e->atime_nsec;
		a->mtime.tv_sec = e->mtime.tv_sec;
		a->mtime.tv_nsec = (long)e->mtime_nsec;
		a->ctime.tv_sec = e->ctime.tv_sec;
		a->ctime.tv_nsec = (long)e->ctime_nsec;
		a->have = STORE_HAVE_ALL;
		if (d->v4 && e->inode == 0) {
			/* libnfs 4.0's v4 READDIR asks for type, mode, size and times only:
			 * fetch the rest (fileid, nlink, owner) per entry. */
			char *p;
			struct nfs_stat_64 s;
			if (asprintf(&p, "%s/%s", is_root(d->path) ? "" : d->path, e->name) < 0) {
				rc = -ENOMEM;
				goto close_dir;
			}
			rc = nfs_lstat64(c->nfs, p, &s);
			free(p);
			if (rc == -ENOENT) {   /* removed meanwhile */
				free(x->name);
				d->n--;
				rc = 0;
				continue;
			}
			if (rc)
				goto close_dir;
			attr_from_stat(&s, a);
			x->type = a->mode & S_IFMT;
		}
	}
close_dir:
	nfs_closedir(c->nfs, dir);
	return rc;
}

static int nfs_st_readdir(struct store *st, const char *path, store_dirent_fn fn, void *arg)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path))
		return -EINVAL;
	struct dlist d = { .path = path, .v4 = NST(st)->v4 };
	int rc = nfsp_call(NST(st)->pool, -1, readdir_fn, &d);
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		struct store_dirent de = { .name = d.v[i].name, .type = d.v[i].type,
					   .attr = &d.v[i].attr };
		rc = fn(arg, &de);
	}
	dlist_clear(&d);
	return rc;
}

static int statfs_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct nfs_statvfs_64 s;
	int rc = nfs_statvfs64(c->nfs, o->path, &s);
	if (rc)
		return rc;
	struct statvfs *v = o->svfs;
	memset(v, 0, sizeof(*v));
	v->f_bsize = s.f_bsize;
	v->f_frsize = s.f_frsize ? s.f_frsize : s.f_bsize;
	v->f_blocks = s.f_blocks;
	v->f_bfree = s.f_bfree;
	v->f_bavail = s.f_bavail;
	v->f_files = s.f_files;
	v->f_ffree = s.f_ffree;
	v->f_favail = s.f_favail;
	v->f_fsid = s.f_fsid;
	v->f_flag = s.f_flag;
	v->f_namemax = s.f_namemax ? s.f_namemax : NAME_MAX;
	return 0;
}

static int nfs_st_statfs(struct store *st, const char *path, struct statvfs *out)
{
	if (!path_ok(path))
		return -EINVAL;
	struct op o = { .ns = NST(st), .path = path, .svfs = out };
	return nfsp_call(NST(st)->pool, -1, statfs_fn, &o);
}

/* NFSv3 by handle: each call is sent to the cached handle of the parent directory (or of
 * the object, looked up there), one round trip instead of libnfs's walk from the root.
 * A stale cached handle (another host removed the directory) is forgotten and the call
 * made once more. They return -ENOTSUP when the store does not speak v3 by handle (NFSv4,
 * FERRYFS_NFS_NO_FHCACHE, a root handle that did not check out): the caller then uses
 * libnfs's path calls. */
enum { V3_REMOVE, V3_RMDIR, V3_MKDIR, V3_RENAME, V3_LINK, V3_SETATTR, V3_SYMLINK };

/* 0 when the attributes st show the times sa set (the ones given, not the server's
 * clock), else -ENOTTY: the server took the call and did not change them (utimens
 * answers EOPNOTSUPP, and does not try libnfs's call, which the same server ignores). */
static int v3_times_taken(const struct raw3_sattr *sa, const struct nfs_stat_64 *st)
{
	if ((sa->set & RAW3_SET_ATIME) && sa->atime.tv_nsec != UTIME_NOW &&
	    (int64_t)st->nfs_atime != (int64_t)sa->atime.tv_sec)
		return -ENOTTY;
	if ((sa->set & RAW3_SET_MTIME) && sa->mtime.tv_nsec != UTIME_NOW &&
	    (int64_t)st->nfs_mtime != (int64_t)sa->mtime.tv_sec)
		return -ENOTTY;
	return 0;
}

static int v3_path_once(struct nfs_store *ns, struct nfsp_conn *c, int what, const char *path,
			const char *path2, const struct raw3_sattr *sa)
{
	struct raw3_fh dir, dir2, obj;
	struct nfs_stat_64 st;
	const char *name, *name2;
	int have, rc;

	switch (what) {
	case V3_REMOVE:
	case V3_RMDIR:
		rc = v3_parent(ns, c, path, &dir, &name);
		if (rc)
			return rc;
		return what == V3_REMOVE ? raw3_remove(c->nfs, &dir, name) :
					   raw3_rmdir(c->nfs, &dir, name);
	case V3_MKDIR:
		rc = v3_parent(ns, c, path, &dir, &name);
		if (rc == 0)
			rc = raw3_mkdir(c->nfs, &dir, name, sa, &obj, &st, &have);
		if (rc == 0)
			fhc_put(ns->fhc, path, strlen(path), &obj, mono_ms());
		return rc;
	case V3_RENAME:
		rc = v3_parent(ns, c, path, &dir, &name);
		if (rc == 0)
			rc = v3_parent(ns, c, path2, &dir2, &name2);
		return rc ? rc : raw3_rename(c->nfs, &dir, name, &dir2, name2);
	case V3_LINK:
		rc = v3_resolve(ns, c, path, &obj, &st);
		if (rc == 0)
			rc = v3_parent(ns, c, path2, &dir2, &name2);
		return rc ? rc : raw3_link(c->nfs, &obj, &dir2, name2);
	case V3_SETATTR:
		rc = v3_resolve(ns, c, path, &obj, &st);
		if (rc)
			return rc;
		if (!S_ISLNK(st.nfs_mode))
			return raw3_setattr(c->nfs, &obj, sa, NULL, NULL);
		/* a symlink: some servers (nfs-ganesha's VFS) answer OK, even with the new
		 * times in the reply, and keep the old ones: asked again, separately */
		rc = raw3_setattr(c->nfs, &obj, sa, NULL, NULL);
		if (rc == 0)
			rc = raw3_getattr(c->nfs, &obj, &st);
		return rc ? rc : v3_times_taken(sa, &st);
	case V3_SYMLINK:        /* path2: the target, not a path */
		rc = v3_parent(ns, c, path, &dir, &name);
		return rc ? rc : raw3_symlink(c->nfs, &dir, name, path2, &obj, &st, &have);
	}
	return -EINVAL;
}

static int v3_path_call(struct nfs_store *ns, struct nfsp_conn *c, int what, const char *path,
			const char *path2, const struct raw3_sattr *sa)
{
	int rc = v3_raw(ns, c);
	if (rc <= 0)
		return rc ? rc : -ENOTSUP;
	rc = v3_path_once(ns, c, what, path, path2, sa);
	if (rc == -ESTALE) {
		v3_forget_parent(ns, path);
		if (path2 && what != V3_SYMLINK)
			v3_forget_parent(ns, path2);
		rc = v3_path_once(ns, c, what, path, path2, sa);
	}
	return rc;
}

static int mkdir_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .set = RAW3_SET_MODE, .mode = o->mode & 07777 };
	int rc = v3_path_call(o->ns, c, V3_MKDIR, o->path, NULL, &sa);
	if (rc != -ENOTSUP)
		return rc;
	return nfs_mkdir2(c->nfs, o->path, (int)(o->mode & 07777));
}
/* NFSv4 has one REMOVE for files and directories, and libnfs 4.0 does not check the
 * type: rmdir would remove a file and unlink an empty directory. Check it first (a
 * replacement between the check and the REMOVE is not caught). */
static int v4_type_is(struct nfsp_conn *c, const char *path, int want_dir)
{
	struct nfs_stat_64 s;
	int rc = nfs_lstat64(c->nfs, path, &s);
	if (rc)
		return rc;
	if (want_dir && !S_ISDIR(s.nfs_mode))
		return -ENOTDIR;
	if (!want_dir && S_ISDIR(s.nfs_mode))
		return -EISDIR;
	return 0;
}
static int rmdir_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_RMDIR, o->path, NULL, NULL);
	if (rc != -ENOTSUP)
		return rc;
	rc = o->v4 ? v4_type_is(c, o->path, 1) : 0;
	return rc ? rc : nfs_rmdir(c->nfs, o->path);
}
static int unlink_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_REMOVE, o->path, NULL, NULL);
	if (rc != -ENOTSUP)
		return rc;
	rc = o->v4 ? v4_type_is(c, o->path, 0) : 0;
	return rc ? rc : nfs_unlink(c->nfs, o->path);
}
static int rename_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_RENAME, o->path, o->path2, NULL);
	return rc != -ENOTSUP ? rc : nfs_rename(c->nfs, o->path, o->path2);
}
static int link_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_LINK, o->path, o->path2, NULL);
	return rc != -ENOTSUP ? rc : nfs_link(c->nfs, o->path, o->path2);
}
static int symlink_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = o->v4 ? -ENOTSUP : v3_path_call(o->ns, c, V3_SYMLINK, o->path, o->path2, NULL);
	return rc != -ENOTSUP ? rc : nfs_symlink(c->nfs, o->path2, o->path);
}
static int mknod_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	if (S_ISREG(o->mode) || (o->mode & S_IFMT) == 0) {
		struct nfsfh *fh;
		struct nfs_stat_64 sb;
		if (o->v4 && nfs_lstat64(c->nfs, o->path, &sb) == 0)
			return -EEXIST;
		int rc = nfs_create(c->nfs, o->path, O_EXCL | O_RDWR, (int)(o->mode & 07777), &fh);
		if (rc == 0)
			nfs_close(c->nfs, fh);
		return o->v4 ? v4_open_failed(c, rc) : rc;
	}
	if (o->v4)
		return -EPERM;   /* libnfs 4.0 v4: no FIFO/socket, device numbers dropped */
	return nfs_mknod(c->nfs, o->path, (int)o->mode, (int)o->u64);
}
static int chmod_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .set = RAW3_SET_MODE, .mode = o->mode & 07777 };
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &sa);
	return rc != -ENOTSUP ? rc : nfs_lchmod(c->nfs, o->path, (int)(o->mode & 07777));
}
static int chown_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .uid = o->uid, .gid = o->gid };
	sa.set = (o->uid != (uint32_t)-1 ? RAW3_SET_UID : 0) |
		 (o->gid != (uint32_t)-1 ? RAW3_SET_GID : 0);
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &sa);
	if (rc != -ENOTSUP)
		return rc;
	if (o->uid == (uint32_t)-1 || o->gid == (uint32_t)-1) {
		/* -1 means "leave as is": fill it in from the current attributes. */
		struct nfs_stat_64 s;
		int rc = nfs_lstat64(c->nfs, o->path, &s);
		if (rc)
			return rc;
		if (o->uid == (uint32_t)-1)
			o->uid = (uint32_t)s.nfs_uid;
		if (o->gid == (uint32_t)-1)
			o->gid = (uint32_t)s.nfs_gid;
	}
	return nfs_lchown(c->nfs, o->path, (int)o->uid, (int)o->gid);
}
static int truncate_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .set = RAW3_SET_SIZE, .size = o->u64 };
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &sa);
	return rc != -ENOTSUP ? rc : nfs_truncate(c->nfs, o->path, o->u64);
}
static int readlink_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	char *target = NULL;
	int rc = nfs_readlink2(c->nfs, o->path, &target);
	if (rc)
		return rc;
	size_t n = strlen(target);
	if (o->len) {
		size_t k = n < o->len - 1 ? n : o->len - 1;
		memcpy(o->buf, target, k);
		o->buf[k] = '\0';
	}
	o->result = (ssize_t)n;
	free(target);
	return 0;
}

static int utimens_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	return nfs_lutimes(c->nfs, o->path, o->tv_null ? NULL : o->tv);
}

static int utimens_raw_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &o->sa);
	o->refused = rc == -ENOTTY;
	return o->refused ? -EOPNOTSUPP : rc;
}

#define PATH_CALL(st, fn, ...)                                       \
	do {                                                         \
		struct op o_ = { .ns = NST(st), .v4 = NST(st)->v4, __VA_ARGS__ }; \
		return nfsp_call(NST(st)->pool, -1, fn, &o_);        \
	} while (0)

static int nfs_st_mkdir(struct store *st, const char *path, uint32_t mode)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path) || is_root(path))
		return path_ok(path) ? -EEXIST : -EINVAL;
	PATH_CALL(st, mkdir_fn, .path = path, .mode = mode);
}

static int rmdir_impl(struct store *st, const char *path)
{
	PATH_CALL(st, rmdir_fn, .path = path);
}

static int nfs_st_rmdir(struct store *st, const char *path)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path) || is_root(path))
		return path_ok(path) ? -EBUSY : -EINVAL;
	int rc = rmdir_impl(st, path);
	forget_dir(st, path);
	return rc;
}

static int nfs_st_unlink(struct store *st, const char *path)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path) || is_root(path))
		return path_ok(path) ? -EISDIR : -EINVAL;
	PATH_CALL(st, unlink_fn, .path = path);
}

/* RENAME_NOREPLACE: NFS (v3 and v4) has no rename that refuses to replace.
 * - a non-directory is renamed as LINK(to) + REMOVE(from): LINK fails with EEXIST when
 *   `to` exists, atomically on the server, so nothing is ever replaced. The window: for
 *   a moment both names exist (another client may see nlink 2), and if this host dies
 *   between the two calls both names stay.
 * - a directory (LINK refuses directories) is checked with LOOKUP and then renamed: a
 *   `to` created by another client between the two calls can be replaced if it is a
 *   file... NFS RENAME over a non-empty directory fails, but over an empty directory
 *   (or, for a file source, a file) it replaces. That race is documented, not closed. */
static int rename_impl(struct store *st, const char *from, const char *to, unsigned flags)
{
	struct nfsp_pool *pool = NST(st)->pool;
	struct store_attr a;
	int rc;

	if (!path_ok(from) || !path_ok(to))
		return -EINVAL;
	if (is_root(from) || is_root(to))
		return -EBUSY;
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (!flags) {
		struct op o = { .ns = NST(st), .v4 = NST(st)->v4, .path = from, .path2 = to };
		return nfsp_call(pool, -1, rename_fn, &o);
	}
	rc = nfs_st_stat(st, from, &a);
	if (rc)
		return rc;
	if (!S_ISDIR(a.mode)) {
		struct op o = { .ns = NST(st), .v4 = NST(st)->v4, .path = from, .path2 = to };
		rc = nfsp_call(pool, -1, link_fn, &o);
		if (rc == -EPERM || rc == -ENOTSUP || rc == -EOPNOTSUPP)
			goto check_then_rename;   /* a server without hard links */
		if (rc)
			return rc;
		rc = nfsp_call(pool, -1, unlink_fn, &o);
		return rc == -ENOENT ? 0 : rc;
	}
check_then_rename:
	rc = nfs_st_stat(st, to, &a);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	struct op o = { .ns = NST(st), .v4 = NST(st)->v4, .path = from, .path2 = to };
	return nfsp_call(pool, -1, rename_fn, &o);
}

static int nfs_st_rename(struct store *st, const char *from, const char *to, unsigned flags)
{
	if (v4_too_long(st, from) || v4_too_long(st, to))
		return -ENAMETOOLONG;
	int rc = rename_impl(st, from, to, flags);
	/* after the rename: a stat racing with it may have cached the old names again */
	forget_dir(st, from);
	forget_dir(st, to);
	return rc;
}

static int nfs_st_link(struct store *st, const char *from, const char *to)
{
	if (v4_too_long(st, from) || v4_too_long(st, to))
		return -ENAMETOOLONG;
	if (!path_ok(from) || !path_ok(to))
		return -EINVAL;
	PATH_CALL(st, link_fn, .path = from, .path2 = to);
}

static int nfs_st_symlink(struct store *st, const char *target, const char *path)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path) || !target || !*target)
		return -EINVAL;
	PATH_CALL(st, symlink_fn, .path = path, .path2 = target);
}

static ssize_t nfs_st_readlink(struct store *st, const char *path, char *buf, size_t size)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path))
		return -EINVAL;
	struct op o = { .ns = NST(st), .path = path, .buf = buf, .len = size };
	int rc = nfsp_call(NST(st)->pool, -1, readlink_fn, &o);
	return rc ? rc : o.result;
}

static int nfs_st_mknod(struct store *st, const char *path, uint32_t mode, uint64_t rdev)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path) || is_root(path))
		return path_ok(path) ? -EEXIST : -EINVAL;
	PATH_CALL(st, mknod_fn, .path = path, .mode = mode, .u64 = rdev);
}

static int nfs_st_chmod(struct store *st, const char *path, uint32_t mode)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path))
		return -EINVAL;
	PATH_CALL(st, chmod_fn, .path = path, .mode = mode);
}

static int nfs_st_chown(struct store *st, const char *path, uint32_t uid, uint32_t gid)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path))
		return -EINVAL;
	PATH_CALL(st, chown_fn, .path = path, .uid = uid, .gid = gid);
}

static int nfs_st_truncate(struct store *st, const char *path, uint64_t size)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path))
		return -EINVAL;
	PATH_CALL(st, truncate_fn, .path = path, .u64 = size);
}

/* utimens: NFSv3 by handle sets each time exactly (nanoseconds; UTIME_NOW: the server's
 * clock; UTIME_OMIT: not sent). Otherwise libnfs's high-level SETATTR, which takes
 * microseconds and has no "server time" or "leave as is" per field: UTIME_OMIT is filled
 * in from the current attributes,
 * UTIME_NOW from this host's clock, except both-NOW over NFSv3, which asks the server's
 * clock (times == NULL; libnfs 4.0's v4 code crashes on NULL). Nanoseconds are truncated
 * to microseconds. */
static int nfs_st_utimens(struct store *st, const char *path, const struct timespec tv[2])
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!path_ok(path))
		return -EINVAL;
	/* NFSv3 carries seconds as an unsigned 32-bit number (1970 to 2106): another time
	 * would be stored modulo 2^32, so it is refused (NFSv4 carries 64-bit seconds) */
	for (int i = 0; tv && !NST(st)->v4 && i < 2; i++)
		if (tv[i].tv_nsec != UTIME_OMIT && tv[i].tv_nsec != UTIME_NOW &&
		    (tv[i].tv_sec < 0 || (uint64_t)tv[i].tv_sec > UINT32_MAX))
			return -EOVERFLOW;
	struct timespec nows[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	struct op o = { .ns = NST(st), .path = path };
	if (!tv)
		tv = nows;
	if (!NST(st)->v4) {
		struct op r = { .ns = NST(st), .path = path };
		if (tv[0].tv_nsec != UTIME_OMIT) {
			r.sa.set |= RAW3_SET_ATIME;
			r.sa.atime = tv[0];
		}
		if (tv[1].tv_nsec != UTIME_OMIT) {
			r.sa.set |= RAW3_SET_MTIME;
			r.sa.mtime = tv[1];
		}
		if (!r.sa.set)
			return 0;
		int rc = nfsp_call(NST(st)->pool, -1, utimens_raw_fn, &r);
		if (rc != -ENOTSUP || r.refused)
			return rc;
	}
	if (!NST(st)->v4 && (!tv || (tv[0].tv_nsec == UTIME_NOW && tv[1].tv_nsec == UTIME_NOW))) {
		o.tv_null = 1;
		return nfsp_call(NST(st)->pool, -1, utimens_fn, &o);
	}
	if (tv[0].tv_nsec == UTIME_OMIT && tv[1].tv_nsec == UTIME_OMIT)
		return 0;
	struct store_attr cur;
	if (tv[0].tv_nsec == UTIME_OMIT || tv[1].tv_nsec == UTIME_OMIT) {
		int rc = nfs_st_stat(st, path, &cur);
		if (rc)
			return rc;
	}
	struct timeval now;
	gettimeofday(&now, NULL);
	for (int i = 0; i < 2; i++) {
		if (tv[i].tv_nsec == UTIME_NOW) {
			o.tv[i] = now;
		} else if (tv[i].tv_nsec == UTIME_OMIT) {
			const struct timespec *t = i ? &cur.mtime : &cur.atime;
			o.tv[i].tv_sec = t->tv_sec;
			o.tv[i].tv_usec = t->tv_nsec / 1000;
		} else {
			o.tv[i].tv_sec = tv[i].tv_sec;
			o.tv[i].tv_usec = tv[i].tv_nsec / 1000;
		}
	}
	return nfsp_call(NST(st)->pool, -1, utimens_fn, &o);
}

/* ---- open files ---- */

struct fop {
	struct nfs_store *ns;
	struct store_file *f;
	int flags;
	uint32_t mode;
	void *buf;
	const void *cbuf;
	size_t len;
	uint64_t off;
	int datasync;
	struct store_attr *attr;
	ssize_t result;
	int foreign;              /* a reopen found another file under the path */
};

/* The file's handle on the holder's context, opening it there if needed. */
static int file_fh(struct nfsp_conn *c, struct fop *o, struct nfsfh **out)
{
	struct store_file *f = o->f;
	struct fslot *s = &f->slot[c->idx];
	struct nfsfh *fh;
	int rc;

	if (s->fh && s->gen == c->gen) {
		*out = s->fh;
		return 0;
	}
	s->fh = NULL;   /* opened on a context since replaced: abandoned */
	if (o->ns->v4) {
		struct nfs_stat_64 pre;
		rc = nfs_lstat64(c->nfs, f->path, &pre);
		if (rc == 0 && pre.nfs_ino != f->ino)
			rc = -ENOENT;
		if (rc) {
			o->foreign = 1;
			return rc == -ENOENT ? -ESTALE : rc;
		}
	}
	rc = nfs_open2(c->nfs, f->path, f->oflags, 0, &fh);
	if (rc && o->ns->v4)
		v4_open_failed(c, rc);
	if (rc == -ENOENT)
		rc = -ESTALE;
	if (rc)
		return rc;
	struct nfs_stat_64 sb;
	rc = nfs_fstat64(c->nfs, fh, &sb);
	if (rc || sb.nfs_ino != f->ino) {
		nfs_close(c->nfs, fh);
		if (rc && rc != -ENOENT && rc != -ESTALE)
			return rc;
		o->foreign = 1;
		return -ESTALE;
	}
	s->fh = fh;
	s->gen = c->gen;
	*out = fh;
	return 0;
}

/* Run fn for file f: on its home context when that is free, else on any. When another
 * context cannot reach the same file by path any more, retry on the home context. */
static int file_call(struct nfs_store *ns, struct fop *o, nfsp_fn fn)
{
	o->foreign = 0;
	int rc = nfsp_call(ns->pool, (int)o->f->home, fn, o);
	if (rc == -ESTALE && o->foreign) {
		o->foreign = 0;
		rc = nfsp_call_idx(ns->pool, o->f->home, fn, o);
	}
	return rc;
}

/* NFSv3 by handle: an open is a LOOKUP (or a GUARDED CREATE) in the parent's cached
 * handle; the file's handle then works on every context, so reads and writes need no
 * per-context reopen. Reads and writes keep several READ/WRITE calls in flight on the
 * one context (raw3_read/raw3_write). Writes are UNSTABLE and made durable by COMMIT
 * (fsync, close); the write verifier of every WRITE is compared with the COMMIT's, and a
 * difference (the server restarted in between: unstable data may be lost) fails the
 * fsync or close with EIO instead of reporting lost data as durable. */
static int v3_open_once(struct nfsp_conn *c, struct fop *o, struct raw3_fh *fh,
			struct nfs_stat_64 *st, int *created)
{
	struct raw3_fh dir;
	const char *name;
	int have = 0, rc;
	struct raw3_sattr sa = { .set = RAW3_SET_MODE, .mode = o->mode & 07777 };

	*created = 0;
	rc = v3_parent(o->ns, c, o->f->path, &dir, &name);
	if (rc)
		return rc;
	if ((o->flags & O_CREAT) && (o->flags & O_EXCL)) {
		rc = raw3_create(c->nfs, &dir, name, &sa, fh, st, &have);
		*created = rc == 0;
	} else if (o->flags & O_CREAT) {
		/* not UNCHECKED (it would reset an existing file): look up, else create */
		for (int tries = 0;; tries++) {
			rc = raw3_lookup(c->nfs, &dir, name, fh, st, &have);
			if (rc != -ENOENT || tries == 3)
				break;
			rc = raw3_create(c->nfs, &dir, name, &sa, fh, st, &have);
			if (rc != -EEXIST) {
				*created = rc == 0;
				break;
			}
		}
	} else {
		rc = raw3_lookup(c->nfs, &dir, name, fh, st, &have);
	}
	if (rc == 0 && !have)
		rc = raw3_getattr(c->nfs, fh, st);
	return rc;
}

static int v3_open(struct nfsp_conn *c, struct fop *o)
{
	struct store_file *f = o->f;
	struct raw3_fh fh;
	struct nfs_stat_64 st;
	int created = 0;
	int rc = v3_raw(o->ns, c);
	if (rc <= 0)
		return rc ? rc : -ENOTSUP;
	rc = v3_open_once(c, o, &fh, &st, &created);
	if (rc == -ESTALE) {
		v3_forget_parent(o->ns, f->path);
		rc = v3_open_once(c, o, &fh, &st, &created);
	}
	if (rc)
		return rc;
	if (S_ISLNK(st.nfs_mode))
		return (o->flags & O_NOFOLLOW) ? -ELOOP : -ENOTSUP; /* libnfs follows it */
	if (S_ISDIR(st.nfs_mode) && (o->flags & O_ACCMODE) != O_RDONLY)
		return -EISDIR;
	if ((o->flags & O_TRUNC) && !created && st.nfs_size > 0 && S_ISREG(st.nfs_mode) &&
	    (o->flags & O_ACCMODE) != O_RDONLY) {
		struct raw3_sattr sa = { .set = RAW3_SET_SIZE, .size = 0 };
		rc = raw3_setattr(c->nfs, &fh, &sa, NULL, NULL);
		if (rc)
			return rc;
	}
	f->raw = 1;
	f->fh = fh;
	f->ino = st.nfs_ino;
	f->home = c->idx;
	return 0;
}

static size_t v3_chunk(uint64_t max)
{
	return max == 0 || max > NFS_CHUNK ? NFS_CHUNK : (size_t)max;
}

static void v3_note_verf(struct store_file *f, uint64_t v)
{
	uint64_t prev = atomic_exchange(&f->wverf, v);
	if (atomic_exchange(&f->verf_seen, 1) && prev != v)
		atomic_store(&f->verf_changed, 1);
}

static int v3_commit(struct nfsp_conn *c, struct store_file *f)
{
	uint64_t v;
	int rc = raw3_commit(c->nfs, &f->fh, &v);
	if (rc)
		return rc;
	if (atomic_load(&f->verf_seen) &&
	    (atomic_exchange(&f->verf_changed, 0) || v != atomic_load(&f->wverf))) {
		atomic_store(&f->wverf, v);
		log_err("nfs: the server restarted before %s was committed: written data may be "
			"lost", f->path);
		return -EIO;
	}
	return 0;
}

static int open_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct store_file *f = o->f;
	struct nfsfh *fh = NULL;
	int base = o->flags & (O_ACCMODE | O_SYNC | O_DSYNC | O_NOFOLLOW);
	int rc = v3_open(c, o);

	if (rc != -ENOTSUP)
		return rc;

	if (o->ns->v4) {
		/* Only send an OPEN that should succeed (see v4_open_failed). */
		struct nfs_stat_64 sb;
		rc = nfs_lstat64(c->nfs, f->path, &sb);
		if (rc == 0 && (o->flags & O_CREAT) && (o->flags & O_EXCL))
			return -EEXIST;
		if (rc == 0 && S_ISDIR(sb.nfs_mode) && (o->flags & O_ACCMODE) != O_RDONLY)
			return -EISDIR;
		if (rc && (rc != -ENOENT || !(o->flags & O_CREAT))) {
			log_debug("nfs: v4 lookup of %s failed: %s", f->path,
				  nfs_get_error(c->nfs));
			return rc;
		}
		if (rc == 0)
			rc = nfs_open2(c->nfs, f->path, base | (o->flags & O_TRUNC), 0, &fh);
		else
			rc = nfs_create(c->nfs, f->path, base | O_EXCL, (int)(o->mode & 07777),
					&fh);
		if (rc)
			log_debug("nfs: v4 open of %s failed: %s", f->path, nfs_get_error(c->nfs));
		if (rc)
			return v4_open_failed(c, rc);
	} else if ((o->flags & O_CREAT) && (o->flags & O_EXCL)) {
		rc = nfs_create(c->nfs, f->path, base | O_EXCL, (int)(o->mode & 07777), &fh);
	} else if (o->flags & O_CREAT) {
		/* Not an UNCHECKED create: that would reset the mode of an existing file.
		 * Open; if absent create exclusively; if someone else created it, open. */
		for (int tries = 0;; tries++) {
			rc = nfs_open2(c->nfs, f->path, base | (o->flags & O_TRUNC), 0, &fh);
			if (rc != -ENOENT || tries == 3)
				break;
			rc = nfs_create(c->nfs, f->path, base | O_EXCL, (int)(o->mode & 07777),
					&fh);
			if (rc != -EEXIST)
				break;
		}
	} else {
		rc = nfs_open2(c->nfs, f->path, base | (o->flags & O_TRUNC), 0, &fh);
	}
	if (rc)
		return rc;
	struct nfs_stat_64 sb;
	rc = nfs_fstat64(c->nfs, fh, &sb);
	if (rc) {
		nfs_close(c->nfs, fh);
		return rc;
	}
	f->ino = sb.nfs_ino;
	f->home = c->idx;
	f->slot[c->idx].fh = fh;
	f->slot[c->idx].gen = c->gen;
	return 0;
}

static void file_free(struct store_file *f)
{
	pthread_mutex_destroy(&f->append_lock);
	free(f->path);
	free(f);
}

static int nfs_st_open(struct store *st, const char *path, int flags, uint32_t mode,
		       const char *expect_etag, struct store_file **out)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	struct nfs_store *ns = NST(st);
	unsigned n = nfsp_size(ns->pool);
	struct store_file *f;
	(void)expect_etag;

	if (!path_ok(path))
		return -EINVAL;
	f = calloc(1, sizeof(*f) + n * sizeof(f->slot[0]));
	if (!f)
		return -ENOMEM;
	f->path = util_strdup(path);
	if (!f->path) {
		free(f);
		return -ENOMEM;
	}
	f->nslots = n;
	f->oflags = flags & (O_ACCMODE | O_SYNC | O_DSYNC | O_NOFOLLOW);
	f->append = !!(flags & O_APPEND);
	pthread_mutex_init(&f->append_lock, NULL);
	struct fop o = { .ns = ns, .f = f, .flags = flags, .mode = mode };
	int rc = nfsp_call(ns->pool, -1, open_fn, &o);
	if (rc) {
		file_free(f);
		return rc;
	}
	if (flags & O_TRUNC)
		atomic_store(&f->dirty, 1);
	*out = f;
	return 0;
}

static int fstat_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	struct nfs_stat_64 s;
	int rc = o->f->raw ? raw3_getattr(c->nfs, &o->f->fh, &s) : file_fh(c, o, &fh);
	if (rc)
		return rc;
	if (!o->f->raw)
		rc = nfs_fstat64(c->nfs, fh, &s);
	if (rc == 0)
		attr_from_stat(&s, o->attr);
	return rc;
}

/* fsetattr: NFSv3 by handle only (one SETATTR, whose reply has the attributes after);
 * libnfs's files answer -ENOTSUP and the caller uses the path calls. */
static int fsetattr_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	const struct store_attr *a = o->cbuf;
	struct raw3_sattr sa = { .mode = a->mode & 07777, .uid = a->uid, .gid = a->gid,
				 .atime = a->mtime, .mtime = a->mtime };
	unsigned which = (unsigned)o->flags;
	struct nfs_stat_64 s;
	int have = 0;
	sa.set = ((which & STORE_HAVE_MODE) ? RAW3_SET_MODE : 0) |
		 ((which & STORE_HAVE_UID) ? RAW3_SET_UID : 0) |
		 ((which & STORE_HAVE_GID) ? RAW3_SET_GID : 0) |
		 ((which & STORE_HAVE_MTIME) ? RAW3_SET_ATIME | RAW3_SET_MTIME : 0);
	int rc = raw3_setattr(c->nfs, &o->f->fh, &sa, &s, &have);
	if (rc == 0 && o->attr) {
		if (!have)
			rc = raw3_getattr(c->nfs, &o->f->fh, &s);
		if (rc == 0)
			attr_from_stat(&s, o->attr);
	}
	return rc;
}

static int nfs_st_fsetattr(struct store *st, struct store_file *f, const struct store_attr *a,
			   unsigned which, struct store_attr *out)
{
	if (!f->raw)
		return -ENOTSUP;
	struct fop o = { .ns = NST(st), .f = f, .cbuf = a, .flags = (int)which, .attr = out };
	return file_call(NST(st), &o, fsetattr_fn);
}

static int nfs_st_fstat(struct store *st, struct store_file *f, struct store_attr *out)
{
	struct fop o = { .ns = NST(st), .f = f, .attr = out };
	return file_call(NST(st), &o, fstat_fn);
}

static int pread_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	size_t got = 0;
	if (o->f->raw) {
		int eof;
		ssize_t n = raw3_read(c->nfs, &o->f->fh, o->buf, o->len, o->off,
				      v3_chunk(nfs_get_readmax(c->nfs)), &eof);
		if (n < 0)
			return (int)n;
		o->result = n;
		return 0;
	}
	int rc = file_fh(c, o, &fh);
	if (rc)
		return rc;
	size_t max = NFS_CHUNK;
	while (got < o->len) {
		size_t want = o->len - got < max ? o->len - got : max;
		int n = nfs_pread(c->nfs, fh, o->off + got, want, (char *)o->buf + got);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	o->result = (ssize_t)got;
	return 0;
}

static ssize_t nfs_st_pread(struct store *st, struct store_file *f, void *buf, size_t len,
			    uint64_t off)
{
	if (len > INT_MAX)
		len = INT_MAX & ~(size_t)4095;
	struct fop o = { .ns = NST(st), .f = f, .buf = buf, .len = len, .off = off };
	int rc = file_call(NST(st), &o, pread_fn);
	return rc ? rc : o.result;
}

/* libnfs 4.0 reports every failed WRITE as -EFAULT with an empty message, dropping the NFS
 * status (nfsp_call turns EFAULT into ESTALE, its usual cause). A full export must reach
 * the writer as ENOSPC: when the server has less room than the write, say so. */
static int pwrite_failed(struct nfsp_conn *c, const char *path, size_t want, int n)
{
	struct nfs_statvfs_64 s;
	if (n != -EFAULT || nfs_statvfs64(c->nfs, path, &s) != 0)
		return n;
	uint64_t unit = s.f_frsize ? s.f_frsize : s.f_bsize;
	return s.f_bavail * unit < want ? -ENOSPC : n;
}

static int pwrite_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	size_t put = 0;
	if (o->f->raw) {
		struct store_file *f = o->f;
		if (f->append) {
			struct nfs_stat_64 s;
			int rc = raw3_getattr(c->nfs, &f->fh, &s);
			if (rc)
				return rc;
			o->off = s.nfs_size;
		}
		int stable = (f->oflags & (O_SYNC | O_DSYNC)) ? 2 : 0;
		uint64_t v = 0;
		ssize_t n = raw3_write(c->nfs, &f->fh, o->cbuf, o->len, o->off,
				       v3_chunk(nfs_get_writemax(c->nfs)), stable, &v);
		if (n < 0)
			return (int)n;
		if (!stable)
			v3_note_verf(f, v);
		o->result = n;
		return 0;
	}
	int rc = file_fh(c, o, &fh);
	if (rc)
		return rc;
	if (o->f->append) {
		struct nfs_stat_64 s;
		rc = nfs_fstat64(c->nfs, fh, &s);
		if (rc)
			return rc;
		o->off = s.nfs_size;
	}
	size_t max = o->ns->v4 ? V4_WMAX : NFS_CHUNK;
	while (put < o->len) {
		size_t want = o->len - put < max ? o->len - put : max;
		int n = nfs_pwrite(c->nfs, fh, o->off + put, want, (const char *)o->cbuf + put);
		if (n < 0)
			return pwrite_failed(c, o->f->path, want, n);
		if (n == 0)
			return -EIO;
		put += (size_t)n;
	}
	o->result = (ssize_t)put;
	return 0;
}

/* O_APPEND: NFS has no atomic append. Writes of this process to one handle are
 * serialised (size lookup, then write at that size); writers elsewhere can interleave. */
static ssize_t nfs_st_pwrite(struct store *st, struct store_file *f, const void *buf,
			     size_t len, uint64_t off)
{
	if (len > INT_MAX)
		len = INT_MAX & ~(size_t)4095;
	struct fop o = { .ns = NST(st), .f = f, .cbuf = buf, .len = len, .off = off };
	if (f->append)
		pthread_mutex_lock(&f->append_lock);
	int rc = file_call(NST(st), &o, pwrite_fn);
	if (f->append)
		pthread_mutex_unlock(&f->append_lock);
	if (rc)
		return rc;
	atomic_store(&f->dirty, 1);
	return o.result;
}

static int nfs_st_read_stream(struct store *st, struct store_file *f, uint64_t off,
			      uint64_t len, store_sink_fn sink, void *arg)
{
	char *buf = malloc(NFS_CHUNK);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		size_t want = len < NFS_CHUNK ? (size_t)len : NFS_CHUNK;
		ssize_t n = nfs_st_pread(st, f, buf, want, off);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		rc = sink(arg, buf, (size_t)n);
		if (rc)
			break;
		off += (uint64_t)n;
		if (len != UINT64_MAX)
			len -= (uint64_t)n;
		if ((size_t)n < want)
			break;
	}
	free(buf);
	return rc;
}

static int ftruncate_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	if (o->f->raw) {
		struct raw3_sattr sa = { .set = RAW3_SET_SIZE, .size = o->off };
		return raw3_setattr(c->nfs, &o->f->fh, &sa, NULL, NULL);
	}
	int rc = file_fh(c, o, &fh);
	return rc ? rc : nfs_ftruncate(c->nfs, fh, o->off);
}

static int nfs_st_ftruncate(struct store *st, struct store_file *f, uint64_t size)
{
	struct fop o = { .ns = NST(st), .f = f, .off = size };
	int rc = file_call(NST(st), &o, ftruncate_fn);
	if (rc == 0)
		atomic_store(&f->dirty, 1);
	return rc;
}

/* COMMIT applies to the file on the server, whichever handle or client wrote: one
 * COMMIT on any context makes every write made so far durable. */
static int fsync_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	if (o->f->raw)
		return v3_commit(c, o->f);
	int rc = file_fh(c, o, &fh);
	return rc ? rc : nfs_fsync(c->nfs, fh);
}

static int nfs_st_fsync(struct store *st, struct store_file *f, int datasync)
{
	(void)datasync;
	struct fop o = { .ns = NST(st), .f = f };
	atomic_store(&f->dirty, 0);
	int rc = file_call(NST(st), &o, fsync_fn);
	if (rc)
		atomic_store(&f->dirty, 1);
	return rc;
}

struct close_arg {
	struct store_file *f;
	int commit;
};

static int close_fn(struct nfsp_conn *c, void *arg)
{
	struct close_arg *a = arg;
	struct fslot *s = &a->f->slot[c->idx];
	int rc = 0;
	if (!s->fh || s->gen != c->gen)
		return 0;   /* never opened here, or abandoned with its dead context */
	if (a->commit) {
		rc = nfs_fsync(c->nfs, s->fh);
		if (rc == 0)
			a->commit = 0;
	}
	nfs_close(c->nfs, s->fh);
	s->fh = NULL;
	return rc;
}

/* close: COMMIT if written (close-to-open: other clients then see durable data), then
 * close the handle on every context that opened one. */
static int nfs_st_close(struct store *st, struct store_file *f)
{
	struct nfs_store *ns = NST(st);
	struct close_arg a = { .f = f, .commit = atomic_load(&f->dirty) };
	int rc = 0;
	if (f->raw) {
		struct fop o = { .ns = ns, .f = f };
		if (a.commit)
			rc = file_call(ns, &o, fsync_fn);
		file_free(f);
		return rc;
	}
	/* home first: it is the one that exists unless its context was reconnected */
	for (unsigned k = 0; k < f->nslots; k++) {
		unsigned i = (f->home + k) % f->nslots;
		if (!f->slot[i].fh)
			continue;
		int r = nfsp_call_idx(ns->pool, i, close_fn, &a);
		if (r && !rc)
			rc = r;
	}
	if (a.commit) {
		/* no live handle to COMMIT through: reopen one */
		struct fop o = { .ns = ns, .f = f };
		int r = file_call(ns, &o, fsync_fn);
		if (r && !rc)
			rc = r;
		for (unsigned i = 0; i < f->nslots; i++) {
			if (f->slot[i].fh) {
				a.commit = 0;
				nfsp_call_idx(ns->pool, i, close_fn, &a);
			}
		}
	}
	file_free(f);
	return rc;
}

/* put: write to a temporary name in the same directory, COMMIT, set the metadata, then
 * rename over the final name (atomic on the server: readers see old or new, never part).
 * The temporary name begins with ".ferryfs" (reserved, invisible through the mount). */
static int nfs_st_put(struct store *st, const char *path, const struct store_source *src)
{
	if (v4_too_long(st, path))
		return -ENAMETOOLONG;
	struct nfs_store *ns = NST(st);
	struct store_file *f = NULL;
	char tmp[NAME_MAX_PATH + 64];
	char *buf = NULL;
	int rc;

	if (!path_ok(path) || is_root(path))
		return -EINVAL;
	const char *slash = strrchr(path, '/');
	int dlen = (int)(slash - path);
	rc = snprintf(tmp, sizeof(tmp), "%.*s/.ferryfs.put.%lx.%x", dlen, path, (long)getpid(),
		      atomic_fetch_add(&ns->tmpseq, 1));
	if (rc < 0 || (size_t)rc >= sizeof(tmp))
		return -ENAMETOOLONG;
	buf = malloc(NFS_CHUNK);
	if (!buf)
		return -ENOMEM;
	uint32_t mode = src->have_meta ? (src->mode & 07777) : 0644;
	rc = nfs_st_open(st, tmp, O_CREAT | O_EXCL | O_WRONLY, mode, NULL, &f);
	if (rc)
		goto free_buf;
	for (uint64_t off = 0; off < src->size;) {
		size_t want = src->size - off < NFS_CHUNK ? (size_t)(src->size - off) : NFS_CHUNK;
		ssize_t n = src->read(src->arg, buf, want, off);
		if (n < 0) {
			rc = (int)n;
			goto remove_tmp;
		}
		if (n == 0) {
			rc = -EIO;   /* the source ended before its announced size */
			goto remove_tmp;
		}
		ssize_t w = nfs_st_pwrite(st, f, buf, (size_t)n, off);
		if (w < 0) {
			rc = (int)w;
			goto remove_tmp;
		}
		off += (uint64_t)n;
	}
	rc = nfs_st_fsync(st, f, 0);
	if (rc)
		goto remove_tmp;
	rc = nfs_st_close(st, f);
	f = NULL;
	if (rc)
		goto remove_tmp;
	if (src->have_meta) {
		rc = nfs_st_chown(st, tmp, src->uid, src->gid);
		if (rc == 0)
			rc = nfs_st_chmod(st, tmp, src->mode & 07777);
		if (rc == 0) {
			struct timespec tv[2] = { src->mtime, src->mtime };
			rc = nfs_st_utimens(st, tmp, tv);
		}
		if (rc)
			goto remove_tmp;
	}
	rc = nfs_st_rename(st, tmp, path, 0);
	if (rc)
		goto remove_tmp;
	free(buf);
	return 0;
remove_tmp:
	if (f)
		nfs_st_close(st, f);
	nfs_st_unlink(st, tmp);
free_buf:
	free(buf);
	return rc;
}

static int nfs_st_probe(struct store *st)
{
	struct store_attr a;
	int rc = nfs_st_stat(st, "/", &a);
	if (rc)
		log_err("nfs: %s is not reachable: %s", NST(st)->cfg->nfs, strerror(-rc));
	else if (!S_ISDIR(a.mode))
		rc = -ENOTDIR;
	return rc;
}

static void nfs_st_destroy(struct store *st)
{
	struct nfs_store *ns = NST(st);
	nfsp_destroy(ns->pool);
	fhc_destroy(ns->fhc);
	pthread_mutex_destroy(&ns->root_lock);
	free(ns);
}

static const struct store_ops nfs_ops = {
	.name = "nfs",
	.destroy = nfs_st_destroy,
	.stat = nfs_st_stat,
	.readdir = nfs_st_readdir,
	.statfs = nfs_st_statfs,
	.open = nfs_st_open,
	.fstat = nfs_st_fstat,
	.fsetattr = nfs_st_fsetattr,
	.pread = nfs_st_pread,
	.pwrite = nfs_st_pwrite,
	.read_stream = nfs_st_read_stream,
	.ftruncate = nfs_st_ftruncate,
	.fsync = nfs_st_fsync,
	.close = nfs_st_close,
	.put = nfs_st_put,
	.mkdir = nfs_st_mkdir,
	.rmdir = nfs_st_rmdir,
	.unlink = nfs_st_unlink,
	.rename = nfs_st_rename,
	.link = nfs_st_link,
	.symlink = nfs_st_symlink,
	.readlink = nfs_st_readlink,
	.mknod = nfs_st_mknod,
	.chmod = nfs_st_chmod,
	.chown = nfs_st_chown,
	.utimens = nfs_st_utimens,
	.truncate = nfs_st_truncate,
	/* NFS has no extended attributes here: getxattr & co are NULL (-ENOTSUP). */
	.probe = nfs_st_probe,
};

int store_nfs_new(const struct ferry_config *cfg, struct store **out)
{
	struct nfs_store *ns;
	int rc;

	if (!cfg->nfs || strncmp(cfg->nfs, "nfs://", 6) != 0) {
		log_err("nfs: not an nfs:// URL: %s", cfg->nfs ? cfg->nfs : "(unset)");
		return -EINVAL;
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->base.ops = &nfs_ops;
	ns->cfg = cfg;
	rc = nfsp_new(cfg->nfs, cfg->nfs_connections ? cfg->nfs_connections : 8, 0, &ns->pool);
	if (rc) {
		free(ns);
		return rc;
	}
	ns->v4 = nfsp_version(ns->pool) == 4;
	pthread_mutex_init(&ns->root_lock, NULL);
	if (!ns->v4 && getenv("FERRYFS_NFS_NO_FHCACHE") == NULL &&
	    fhc_new(FHC_SLOTS, FHC_TTL_MS, &ns->fhc) != 0)
		ns->fhc = NULL;   /* no memory: libnfs's walk */
	*out = &ns->base;
	return 0;
}
