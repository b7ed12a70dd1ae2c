/* fs.c - the FUSE operations (high-level, path-based API, multi-threaded loop). Every
 * call from the kernel lands here: look the path up through route.c, then call the store
 * that serves it. Handlers return 0 / -errno as libfuse expects.
 *
 * Open files: struct fs_file is the FUSE file handle (fi->fh); it remembers which store
 * serves the file so that reads never re-decide mid-file, with one exception: a handle
 * opened on S3 follows its file onto the new store once it is there with the content it
 * pinned (fs_follow). Several FUSE threads may read one handle at once; the stores allow
 * that, and a handle that may switch stores takes its rwlock `swap` (reads share it). */
#include "fuse/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view/dcache.h"
#include "migrate/fleet.h"
#include "writeback/journal.h"
#include "ledger/ledger.h"
#include "view/links.h"
#include "base/log.h"
#include "migrate/migrate.h"
#include "writeback/mirror.h"
#include "view/ns.h"
#include "view/readahead.h"
#include "base/stats.h"
#include "base/util.h"
#include "view/whiteout.h"

struct fs_file {
	struct store *st;          /* the store serving this open file */
	struct store_file *f;
	struct ra_file *ra;        /* read-ahead over f (S3 reads), NULL when none */
	struct jn_file *jf;        /* open for writing: what the journal knows of it */
	enum route_src src;
	uint64_t s3_ino;           /* an S3 handle's inode number, for fstat after unlink */
	atomic_int wrote;          /* written since the last flush (see fs_flush) */
	int linked;                /* opened with more than one name (see fs_flush) */
	/* Opened on S3 for reading (pinned): may switch to the new store (fs_follow). swap
	 * protects st, f, ra, src and stale: read-held by a read or an fstat, write-held by
	 * the switch. pgen is the path's dc_path_generation when it was last looked at. */
	int pinned;
	int stale;                 /* the file was replaced under the handle: reads ESTALE */
	pthread_rwlock_t swap;
	atomic_uint_fast64_t pgen;
	char etag[STORE_ETAG_MAX]; /* the pinned object's */
};

/* Names of hard-linked files the kernel may hold attributes for (links.h); written by
 * fs_init and fs_destroy only, when no other handler runs. */
static struct lk_table *fs_links;

static void relinked(struct lk_names *names);
static struct ferry *fs_ctx(void);

/* The data or attributes of a file changed through path: drop what the kernel caches for
 * its other names (links.h), as relinked does after a link count changed; otherwise they
 * show the old size, mode and pages until their attribute timeout. path may be NULL (a
 * file unlinked while open). A name not in the table (not stat'ed since it got its second
 * link, say right after link(2)) is looked up first: one stat on the new store. */
static void retouched(const char *path)
{
	struct lk_names others;
	if (!path)
		return;
	lk_linked(fs_links, path, &others);   /* -ENOMEM: none, as without the table */
	if (!others.n) {
		struct ferry *fy = fs_ctx();
		struct route_entry e;
		struct stat st;
		if (route_lookup(&fy->route, path, &e) || e.src != ROUTE_NFS || e.attr.nlink < 2)
			return;
		route_to_stat(&fy->route, path, &e, &st);
		lk_seen(fs_links, path, &st);
		lk_linked(fs_links, path, &others);
	}
	relinked(&others);
}

static struct ferry *fs_ctx(void)
{
	return fuse_get_context()->private_data;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct ferry *fy = fs_ctx();
	cfg->use_ino = 1;              /* report our stable inode numbers (spec 4) */
	cfg->readdir_ino = 1;
	cfg->entry_timeout = 1.0;      /* other hosts change NFS and S3: keep caches short */
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	cfg->hard_remove = 0;          /* open files lose their name by a hide (ns_hide) */
	fs_links = lk_new(LK_MAX_NAMES, LK_MAX_BYTES);
	if (!fs_links)
		log_warn("out of memory: other names of a hard link may show a stale link count");
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* read-ahead starts threads: here, after daemonizing (spec 5: S3 reads read ahead) */
	if (fy->cfg->readahead_max) {
		struct ra_config rc = { .max_mem = fy->cfg->readahead_max };
		int err = ra_init(&rc);
		if (err)
			log_warn("read-ahead disabled: %s", strerror(-err));
		else
			fy->readahead = 1;
	}
	conn->max_readahead = 1u << 20;
	log_notice("mounted %s (S3 %s/%s%s, new store %s)", fy->cfg->mountpoint,
		   fy->cfg->s3_endpoint, fy->cfg->s3_bucket, fy->cfg->s3_prefix[0] ? "" : "",
		   fy->cfg->nfs);
	return fy;
}

static void fs_destroy(void *private_data)
{
	struct ferry *fy = private_data;
	log_notice("unmounting %s", fy->cfg->mountpoint);
	if (fy->readahead)
		ra_shutdown();
	lk_free(fs_links);
	fs_links = NULL;
}

/* A store that cannot be reached fails a call with EIO, as a filesystem whose device
 * failed does, not with the socket's errno (ETIMEDOUT, ECONNREFUSED...), which
 * applications do not expect from a file. The log and the s3_errors/nfs_errors counters
 * keep the cause. */
static int fs_errno(int rc)
{
	switch (-rc) {
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case EPIPE:
	case ENOTCONN:
	case ESHUTDOWN:
	case EPROTO:
		return -EIO;
	default:
		return rc;
	}
}

/* The path libfuse passes for an open file: NULL once the file lost its name (libfuse
 * renamed it to a ".fuse_hidden" name, see fs_hide): no name of it is journaled, mirrored,
 * queued or changed by name. */
static const char *named(const char *path)
{
	return ns_is_hidden(path) ? NULL : path;
}

/* The kernel's read-ahead on this mount (its backing device's read_ahead_kb). The FUSE
 * device starts at 128 KiB, and the INIT reply can only lower it (the kernel keeps the
 * smaller of the two), so the sysfs knob is set once INIT is done: from the first
 * request after it. 128 KiB means a sequential read reaches the daemon as 128 KiB READs,
 * one or two in flight; at 1 MiB a cold read of a new-store file took 0.432 s against
 * 0.467 s (doc/benchmarks.md). Needs root (else logged, and the kernel's value stays). */
static pthread_once_t fs_ra_once = PTHREAD_ONCE_INIT;

static void fs_kernel_readahead(void)
{
	struct ferry *fy = fs_ctx();
	uint64_t kb = fy->cfg->kernel_readahead >> 10;
	char line[4096], path[128];
	unsigned maj = 0, min = 0;
	int found = 0;
	if (!kb)
		return;
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	if (!mi)
		goto out;
	/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...": the mount point is octal-escaped; the
	 * last entry for it is the top one, ours */
	while (fgets(line, sizeof(line), mi)) {
		char mp[PATH_MAX];
		unsigned a, b;
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &a, &b, mp) != 3)
			continue;
		util_unescape_octal(mp);
		if (!strcmp(mp, fy->cfg->mountpoint)) {
			found = 1;
			maj = a;
			min = b;
		}
	}
	fclose(mi);
	if (!found)
		goto out;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
	FILE *f = fopen(path, "w");
	if (f) {
		int bad = fprintf(f, "%llu\n", (unsigned long long)kb) < 0;
		if (fclose(f) || bad)
			f = NULL;
	}
	if (f) {
		log_info("kernel read-ahead on the mount: %llu KiB (%s)", (unsigned long long)kb,
			 path);
		return;
	}
out:
	log_notice("cannot set the kernel's read-ahead on the mount to %llu KiB (%s): %s; it keeps "
		   "its own", (unsigned long long)kb, found ? path : "/proc/self/mountinfo",
		   found ? strerror(errno) : "the mount is not listed");
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct ferry *fy = fs_ctx();
	struct route_entry e;
	int rc;
	pthread_once(&fs_ra_once, fs_kernel_readahead);
	if (ns_is_hidden(path) && !(fi && fi->fh)) {
		/* fstat(2) (the kernel asks by name), or libfuse's probe for a free hidden name */
		uint64_t s3_ino;
		rc = ns_hidden_stat(&fy->route, path, &e, &s3_ino);
		if (rc == 0)
			route_to_stat(&fy->route, NULL, &e, st);
		if (rc == 0 && s3_ino)
			st->st_ino = (ino_t)s3_ino;
		if (rc == 0)
			ns_hidden_nlink(st, 1);
		return fs_errno(rc);
	}
	int hidden = ns_is_hidden(path);
	path = named(path);
	/* The kernel keeps one inode, one size, for the path, and asks with the handle that
	 * reads when its attributes are stale: a handle opened on S3 answers for the path as
	 * it is now (the pinned object's size would shrink a file copied up and grown through
	 * another handle, for every reader), and for itself only when the path is gone. */
	if (fi && fi->fh && path && ((struct fs_file *)(uintptr_t)fi->fh)->pinned &&
	    route_lookup(&fy->route, path, &e) == 0) {
		route_to_stat(&fy->route, path, &e, st);
		ns_hidden_nlink(st, 0);
		lk_seen(fs_links, path, st);
		return 0;
	}
	if (fi && fi->fh) {
		struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
		memset(&e, 0, sizeof(e));
		if (h->pinned)
			pthread_rwlock_rdlock(&h->swap);
		e.src = h->src;
		rc = store_fstat(h->st, h->f, &e.attr);
		if (h->pinned)
			pthread_rwlock_unlock(&h->swap);
		if (rc == 0) {
			route_to_stat(&fy->route, path, &e, st);
			if (!path && e.src == ROUTE_S3)
				st->st_ino = (ino_t)h->s3_ino;
			ns_hidden_nlink(st, hidden);
			lk_seen(fs_links, path, st);
			return 0;
		}
		/* no path: the name was removed while open (a hidden file), the handle is all
		 * there is to ask */
		if (!path)
			return fs_errno(rc);
	}
	rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return fs_errno(rc);
	route_to_stat(&fy->route, path, &e, st);
	ns_hidden_nlink(st, 0);
	lk_seen(fs_links, path, st);
	return 0;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct ferry *fy = fs_ctx();
	struct route_entry e;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return fs_errno(rc);
	if (!S_ISLNK(e.attr.mode))
		return -EINVAL;
	ssize_t n = store_readlink(fy->nfs, path, buf, size);
	return n < 0 ? fs_errno((int)n) : 0;
}

struct fill_ctx {
	const char *dir;
	void *buf;
	fuse_fill_dir_t filler;
	int plus;
};

static int fill_one(void *arg, const char *name, const struct stat *st, enum route_src src)
{
	(void)src;
	struct fill_ctx *c = arg;
	struct stat own = *st;
	ns_hidden_nlink(&own, 0);
	if (c->plus)      /* the kernel caches these attributes as a lookup's */
		lk_seen_in(fs_links, c->dir, name, &own);
	if (c->filler(c->buf, name, &own, 0, c->plus ? FUSE_FILL_DIR_PLUS : 0))
		return -ENOBUFS;      /* never happens with offset 0: libfuse buffers it all */
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	struct ferry *fy = fs_ctx();
	struct fill_ctx c = { path, buf, filler, (flags & FUSE_READDIR_PLUS) != 0 };
	if (!path)
		return -ENOENT;     /* removed while open */
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	return fs_errno(route_readdir_cached(&fy->route, path, fill_one, &c));
}

/* Every change made through the mount forgets the cached listings it touches (also on
 * failure: a copy-up may have happened before the failing step). */
static int changed(int rc, const char *path)
{
	dc_forget(path);
	return fs_errno(rc);
}

/* A change through an open handle (ftruncate) marks a migrated file `modified`; every
 * change by path is marked by ns_copyup, which prepares it. */
static int modified(int rc, const char *path)
{
	if (path)         /* NULL: unlinked while open, no record left to mark */
		ns_mark_modified(&fs_ctx()->route, path);
	return rc;
}

/* An S3-only file was read: queue it for migration (migrate_on=open). A `failed` file
 * is not: it used up its retries, and an application reading it in a loop must not turn
 * that into a copy loop. The operator retries it (ferryctl migrate, migrate=now, a crawl). */
static void touched(struct ferry *fy, const char *path)
{
	int prio;
	bool copying;
	struct ledger_file rec;
	if (!fy->ledger || fy->cfg->migrate_on != MIGRATE_ON_OPEN)
		return;
	if (ledger_queue_find(fy->ledger, path, &prio, &copying) == 1)
		return;           /* already waiting: no write transaction */
	if (ledger_file_get(fy->ledger, path, &rec) == 0 && rec.state == LEDGER_FAILED)
		return;
	int rc = ledger_queue_push(fy->ledger, path, LEDGER_PRIO_TOUCHED);
	if (rc < 0)
		log_warn("ledger: cannot queue %s: %s", path, strerror(-rc));
	else if (rc > 0)
		mig_wake(fy);
}

/* Journal a change before making it (spec 7): a change that cannot be journaled is not
 * made. */
static int journal(int op, const char *path, const char *path2)
{
	return jn_change(fs_ctx(), op, path, path2);
}

/* The change journaled by journal() was made (rc: its result). */
static int done(int rc)
{
	jn_end();
	return rc;
}

static struct ns_caller caller(void)
{
	struct fuse_context *c = fuse_get_context();
	struct ns_caller who = { c->uid, c->gid };
	return who;
}

static int new_handle(struct fuse_file_info *fi, struct store *st, struct store_file *f,
		      enum route_src src)
{
	struct fs_file *h = calloc(1, sizeof(*h));
	if (!h) {
		store_close(st, f);
		return -ENOMEM;
	}
	h->st = st;
	h->f = f;
	h->src = src;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int open_impl(const char *path, struct fuse_file_info *fi);

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	return fs_errno(open_impl(path, fi));
}

static int open_impl(const char *path, struct fuse_file_info *fi)
{
	struct ferry *fy = fs_ctx();
	struct route_entry e;
	struct store_file *f;
	int writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	uint64_t pgen = dc_path_generation(path);   /* before the lookup: see fs_follow */
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (S_ISDIR(e.attr.mode))
		return -EISDIR;
	if (writing) {
		int trunc = (fi->flags & O_TRUNC) != 0;
		struct jn_file *jf;
		if (e.src == ROUTE_NFS)
			fleet_opened(fy, path);
		if ((rc = jn_open(fy, path, trunc ? LEDGER_OP_WRITE : 0, &jf)))
			return rc;
		/* spec 5: O_TRUNC makes an empty file on the new store, otherwise copy up first */
		rc = changed(ns_copyup(&fy->route, path, trunc), path);
		if (!rc)
			rc = store_open(fy->nfs, path, fi->flags & ~(O_CREAT | O_EXCL), 0, NULL,
					&f);
		if (!rc)
			rc = new_handle(fi, fy->nfs, f, ROUTE_NFS);
		if (rc)
			jn_release(fy, jf, NULL);
		else
			((struct fs_file *)(uintptr_t)fi->fh)->jf = jf;
		if (!rc)
			((struct fs_file *)(uintptr_t)fi->fh)->linked = e.attr.nlink > 1;
		if (!rc && trunc)
			retouched(path);
		return rc;
	}
	if (e.src == ROUTE_NFS)
		fleet_opened(fy, path);    /* revalidate: was S3 changed by another host? */
	struct store *st = e.src == ROUTE_NFS ? fy->nfs : fy->s3;
	/* pinned to the ETag seen now, at open (spec 5), not to what a listing cached */
	rc = store_open(st, path, O_RDONLY, 0, NULL, &f);
	if (rc)
		return rc;
	char etag[STORE_ETAG_MAX];
	snprintf(etag, sizeof(etag), "%s", e.attr.etag);
	if (e.src == ROUTE_S3) {
		struct store_attr now;
		if (store_fstat(st, f, &now) == 0 && strcmp(now.etag, e.attr.etag)) {
			dc_forget(path);   /* the object changed since the listing: drop it */
			pgen = dc_path_generation(path);
			e.attr.size = now.size;   /* read-ahead covers the pinned object */
			snprintf(etag, sizeof(etag), "%s", now.etag);
		}
	}
	if (e.src == ROUTE_S3)
		touched(fy, path);
	rc = new_handle(fi, st, f, e.src);
	if (!rc)
		((struct fs_file *)(uintptr_t)fi->fh)->s3_ino = route_s3_ino(&fy->route, path);
	if (!rc && e.src == ROUTE_S3) {
		struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
		h->pinned = 1;
		pthread_rwlock_init(&h->swap, NULL);
		atomic_init(&h->pgen, pgen);
		memcpy(h->etag, etag, sizeof(etag));
	}
	if (!rc && e.src == ROUTE_S3 && fy->readahead) {
		struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
		if (ra_open(st, f, e.attr.size, &h->ra))
			h->ra = NULL;     /* served without read-ahead */
	}
	return rc;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct ferry *fy = fs_ctx();
	struct ns_caller who = caller();
	struct store_file *f;
	struct jn_file *jf;
	int rc = jn_open(fy, path, LEDGER_OP_CREATE, &jf);
	if (rc)
		return rc;
	rc = changed(ns_create(&fy->route, path, mode, fi->flags, &who, &f), path);
	if (!rc)
		rc = new_handle(fi, fy->nfs, f, ROUTE_NFS);
	if (rc)
		jn_release(fy, jf, NULL);
	else
		((struct fs_file *)(uintptr_t)fi->fh)->jf = jf;
	return rc;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
	if (h->src != ROUTE_NFS)
		return -EBADF;
	int rc = jn_write(fs_ctx(), h->jf, named(path));   /* the first write journals (spec 7) */
	if (rc)
		return rc;
	ssize_t n = store_pwrite(h->st, h->f, buf, size, (uint64_t)off);
	if (n > 0)
		atomic_store(&h->wrote, 1);
	return (int)n;
}

/* close(2): what was written through this handle shows through the file's other names
 * now (close-to-open, as on NFS), not after their attribute timeout. Not per write: a
 * WRITE holds the written name's pages locked, and writers on two names of one file
 * would each wait for the other's invalidation. Only for a file that had other names
 * when it was opened (a link made while it is open is seen after the attribute timeout),
 * so that closing an ordinary file costs nothing more. */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
	if (atomic_exchange(&h->wrote, 0) && h->linked)
		retouched(named(path));
	return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
	if (h->pinned)
		return 0;          /* opened for reading on S3: nothing of it to make durable */
	return h->src == ROUTE_NFS ? store_fsync(h->st, h->f, datasync) : 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct ferry *fy = fs_ctx();
	if (size < 0)
		return -EINVAL;
	path = named(path);
	int rc = journal(LEDGER_OP_TRUNCATE, path, NULL);
	if (rc)
		return rc;
	if (fi && fi->fh) {
		struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
		if (h->src == ROUTE_NFS) {
			rc = done(modified(store_ftruncate(h->st, h->f, (uint64_t)size), path));
			goto out;
		}
	}
	if (!path)
		return done(-ENOENT);   /* unlinked while open, and not through an NFS handle */
	rc = done(changed(ns_truncate(&fy->route, path, (uint64_t)size), path));
out:
	if (rc == 0)
		retouched(path);
	return rc;
}

/* The attribute calls get a hidden path for a file unlinked while open (fs_hide); the
 * new store is changed by name only: ENOENT. */
static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)fi;
	if (!named(path))
		return -ENOENT;
	int rc = journal(LEDGER_OP_CHMOD, path, NULL);
	if (rc)
		return rc;
	rc = done(changed(ns_chmod(&fs_ctx()->route, path, mode), path));
	if (rc == 0)
		retouched(path);
	return rc;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)fi;
	if (!named(path))
		return -ENOENT;
	int rc = journal(LEDGER_OP_CHOWN, path, NULL);
	if (rc)
		return rc;
	rc = done(changed(ns_chown(&fs_ctx()->route, path, uid, gid), path));
	if (rc == 0)
		retouched(path);
	return rc;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)fi;
	if (!named(path))
		return -ENOENT;
	int rc = journal(LEDGER_OP_UTIMENS, path, NULL);
	if (rc)
		return rc;
	rc = done(changed(ns_utimens(&fs_ctx()->route, path, tv), path));
	if (rc == 0)
		retouched(path);
	return rc;
}

static int fs_mkdir(const char *path, mode_t mode)
{
	struct ns_caller who = caller();
	int rc = journal(LEDGER_OP_MKDIR, path, NULL);
	if (rc)
		return rc;
	return done(changed(ns_mkdir(&fs_ctx()->route, path, mode, &who), path));
}

static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct ns_caller who = caller();
	int rc = journal(LEDGER_OP_CREATE, path, NULL);
	if (rc)
		return rc;
	return done(changed(ns_mknod(&fs_ctx()->route, path, mode, rdev, &who), path));
}

static int fs_symlink(const char *target, const char *path)
{
	struct ns_caller who = caller();
	int rc = journal(LEDGER_OP_SYMLINK, path, target);
	if (rc)
		return rc;
	return done(changed(ns_symlink(&fs_ctx()->route, target, path, &who), path));
}

/* The link count of a file changed through one of its names: the kernel caches each name's
 * attributes apart (path-based API), so tell it to drop those of the file's other names
 * (doc/namespace.md). Called after the change, before the reply (so the caller's next
 * stat of another name is fresh), with no lock of ours held. fuse_invalidate_path blocks
 * only on dirty pages of that name (no writeback cache here: a shared writable mmap), whose
 * WRITE another FUSE thread serves. -ENOENT (a name the kernel forgot) is no error.
 * Frees *names. */
static void relinked(struct lk_names *names)
{
	struct fuse *f = fuse_get_context()->fuse;
	for (size_t i = 0; i < names->n; i++)
		fuse_invalidate_path(f, names->v[i]);
	lk_names_free(names);
}

static int fs_link(const char *from, const char *to)
{
	int rc = journal(LEDGER_OP_LINK, from, to);
	if (rc)
		return rc;
	rc = done(changed(changed(ns_link(&fs_ctx()->route, from, to), from), to));
	if (rc == 0) {   /* the source's cached nlink (and, after a copy-up, attributes) changed */
		struct lk_names others;
		fuse_invalidate_path(fuse_get_context()->fuse, from);
		lk_linked(fs_links, from, &others);
		relinked(&others);
	}
	return rc;
}

/* Remove path's name: unlinked, or, when `hidden` is given, renamed to that hidden name
 * of a file still open (fs_hide). Both are an unlink for everyone else. */
static int remove_name(const char *path, const char *hidden)
{
	struct ferry *fy = fs_ctx();
	int rc = journal(LEDGER_OP_UNLINK, path, NULL);
	if (rc)
		return rc;
	rc = changed(hidden ? ns_hide(&fy->route, path, hidden) : ns_unlink(&fy->route, path),
		     path);
	if (rc == 0 && fy->ledger)
		ledger_file_delete(fy->ledger, path);   /* -ENOENT when it had no record */
	rc = done(rc);
	if (rc == 0) {   /* (ns_hidden_nlink keeps a hidden name off the others' count) */
		struct lk_names others;
		lk_unlinked(fs_links, path, &others);
		relinked(&others);
	}
	return rc;
}

static int fs_unlink(const char *path)
{
	if (ns_is_hidden(path))   /* the last close of a hidden file (fs_hide) */
		return fs_errno(ns_hidden_unlink(&fs_ctx()->route, path));
	return remove_name(path, NULL);
}

/* libfuse (hard_remove off) keeps a file that loses its name while open (unlink, or a
 * rename onto it): it renames it to "<dir>/.fuse_hidden<N>" first, passes that name for
 * the open handles, and unlinks it at the last close. Here that rename is the unlink of
 * `path`, except that the new store keeps the file under a reserved name (ns_hide):
 * NFSv3 handles of a removed file are stale, and libnfs does no silly rename. */
static int fs_hide(const char *path, const char *hidden)
{
	if (ns_is_hidden(path))
		return -ENOENT;       /* a hidden file is not renamed again */
	return remove_name(path, hidden);
}

static int fs_rmdir(const char *path)
{
	int rc = journal(LEDGER_OP_RMDIR, path, NULL);
	if (rc)
		return rc;
	return done(changed(ns_rmdir(&fs_ctx()->route, path), path));
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct ferry *fy = fs_ctx();
	if (ns_is_hidden(to) && !flags)
		return fs_hide(from, to);
	if (ns_is_hidden(from))
		return -ENOENT;       /* the user cannot name a hidden file */
	int rc = journal(LEDGER_OP_RENAME, from, to);
	if (rc)
		return rc;
	rc = changed(changed(ns_rename(&fy->route, from, to, flags), from), to);
	if (rc == 0 && fy->ledger)
		ledger_file_rename(fy->ledger, from, to, LEDGER_RENAME_TREE);
	rc = done(rc);
	if (rc == 0) {   /* a file replaced at `to` lost a name */
		struct lk_names others;
		lk_renamed(fs_links, from, to, &others);
		relinked(&others);
	}
	return rc;
}

/* A handle opened on S3 pins the object it opened (spec 5). When its path has since come
 * onto the new store through this mount (a copy-up for a writer, or a migration, then
 * writes), the kernel's one inode for the path holds the new size, and a read of the
 * pinned object short of it would be taken for the end of the file: the kernel would
 * shrink the file for every reader until its attributes expire (a copied-up, grown file
 * would read back at its old size). So before each read the handle compares its
 * path's dc_path_generation (bumped by every change through the mount); when it moved,
 * it looks: still S3-only, nothing to do; on the new store with the ledger's record of a
 * copy of the very version it pinned (the ETag), it reads the new store from then on, as
 * any reader of a file sees another process's writes; on the new store as anything else
 * (another version, a new empty file), its file was replaced: ESTALE, as for an object
 * replaced in S3, never a mix of two versions. Called with no lock; takes swap. */
static void fs_follow(struct fs_file *h, const char *path)
{
	struct ferry *fy = fs_ctx();
	uint64_t g = dc_path_generation(path);
	struct store_attr a;
	struct ledger_file rec;
	struct store_file *nf = NULL;
	pthread_rwlock_wrlock(&h->swap);
	if (h->src != ROUTE_S3 || h->stale || atomic_load(&h->pgen) == g)
		goto done;                    /* decided already (by another reader) */
	int rc = store_stat(fy->nfs, path, &a);
	if (rc == -ENOENT || rc == -ENOTDIR)
		goto done;                    /* still S3 only */
	if (rc)
		goto out;                     /* the new store did not answer: look again */
	if (S_ISREG(a.mode) && fy->ledger && ledger_file_get(fy->ledger, path, &rec) == 0 &&
	    h->etag[0] && !strcmp(rec.etag, h->etag)) {
		if ((rc = store_open(fy->nfs, path, O_RDONLY, 0, NULL, &nf)))
			goto out;
		if (h->ra)
			ra_close(h->ra);      /* returns once no fetch uses h->f */
		store_close(h->st, h->f);
		h->ra = NULL;
		h->st = fy->nfs;
		h->f = nf;
		h->src = ROUTE_NFS;
		log_debug("%s: a reader opened on S3 follows its file onto the new store", path);
	} else {
		h->stale = 1;
		log_debug("%s: replaced on the new store under a reader opened on S3: ESTALE",
			  path);
	}
done:
	atomic_store(&h->pgen, g);
out:
	pthread_rwlock_unlock(&h->swap);
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
	int s3;
	ssize_t n;
	if (h->pinned) {
		path = named(path);   /* NULL: the name went while open; nothing to follow */
		if (path && dc_path_generation(path) != atomic_load(&h->pgen))
			fs_follow(h, path);
		pthread_rwlock_rdlock(&h->swap);
		s3 = h->src == ROUTE_S3;
		n = h->stale ? -ESTALE : h->ra ? ra_read(h->ra, buf, size, (uint64_t)off) :
			store_pread(h->st, h->f, buf, size, (uint64_t)off);
		pthread_rwlock_unlock(&h->swap);
	} else {
		s3 = h->src == ROUTE_S3;
		n = h->ra ? ra_read(h->ra, buf, size, (uint64_t)off) :
			    store_pread(h->st, h->f, buf, size, (uint64_t)off);
	}
	if (n < 0)
		return fs_errno((int)n);
	if (s3) {
		stats_inc(reads_s3);
		stats_add(bytes_s3, (uint64_t)n);
	} else {
		stats_inc(reads_nfs);
		stats_add(bytes_nfs, (uint64_t)n);
	}
	return (int)n;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
	if (h->ra)
		ra_close(h->ra);   /* returns once no fetch uses h->f */
	int rc = store_close(h->st, h->f);
	jn_release(fs_ctx(), h->jf, named(path));
	if (h->pinned)
		pthread_rwlock_destroy(&h->swap);
	free(h);
	return rc;
}

static int fs_statfs(const char *path, struct statvfs *out)
{
	(void)path;
	struct ferry *fy = fs_ctx();
	return store_statfs(fy->nfs, "/", out);     /* spec 5: statfs reports the new store */
}


/* --- introspection: user.ferryfs.* extended attributes (spec 8) ------------------- */

#define XA_PREFIX "user.ferryfs."

static int xattr_reply(const char *val, size_t len, char *out, size_t size)
{
	if (size == 0)
		return (int)len;
	if (len > size)
		return -ERANGE;
	memcpy(out, val, len);
	return (int)len;
}

static int stats_text(struct ferry *fy, struct buf *b)
{
	struct ledger_stats ls;
	memset(&ls, 0, sizeof(ls));
	if (fy->ledger)
		ledger_stats(fy->ledger, &ls);
	uint64_t queued = 0;
	for (int p = 0; p < LEDGER_NPRIO; p++)
		queued += ls.queued[p];
	struct mirror_counters mc;
	mirror_counters(&mc);
	int64_t oldest = 0;
	if (ls.journal_oldest_ms) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		oldest = ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 -
			  ls.journal_oldest_ms) /
			 1000;
	}
	const struct { const char *name; uint64_t v; } rows[] = {
		{ "migrated_files", ls.files[LEDGER_MIGRATED] + ls.files[LEDGER_MODIFIED] },
		{ "migrated_bytes", ls.bytes[LEDGER_MIGRATED] + ls.bytes[LEDGER_MODIFIED] },
		{ "queued", queued },
		{ "copying", ls.copying },
		{ "failed", ls.files[LEDGER_FAILED] },
		{ "conflicts", ls.files[LEDGER_CONFLICT] },
		{ "copyups", stats_get(copyups) },
		{ "reads_s3", stats_get(reads_s3) },
		{ "reads_nfs", stats_get(reads_nfs) },
		{ "bytes_s3", stats_get(bytes_s3) },
		{ "bytes_nfs", stats_get(bytes_nfs) },
		{ "whiteouts", stats_get(whiteouts) },
		{ "unreachable", stats_get(unreachable) },
		{ "journal_pending", ls.journal_pending },
		{ "journal_oldest_s", (uint64_t)(oldest > 0 ? oldest : 0) },
		{ "mirror_puts", mc.puts },
		{ "mirror_deletes", mc.deletes },
		{ "mirror_errors", mc.errors + jn_errors() },
		{ "read_only", (uint64_t)jn_readonly() },
		{ "s3_requests", stats_get(s3_requests) },
		{ "s3_errors", stats_get(s3_errors) },
		{ "s3_retries", stats_get(s3_retries) },
		{ "nfs_errors", stats_get(nfs_errors) },
		{ "credential_refreshes", stats_get(credential_refreshes) },
		{ "credential_errors", stats_get(credential_errors) },
		{ "paused", (uint64_t)mig_paused(fy) },
		{ "rate", mig_rate(fy) },
		{ "uptime_s", (uint64_t)(util_now_s() - fy->started) },
		{ "heap_bytes", stats_heap_bytes() },
	};
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(rows) && !rc; i++)
		rc = buf_printf(b, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
	return rc;
}

/* user.ferryfs.state of a path (spec 8). */
static int state_of(struct ferry *fy, const char *path, const struct route_entry *e,
		    const struct ledger_file *rec, int have_rec, struct buf *b)
{
	struct store_attr a;
	if (S_ISDIR(e->attr.mode)) {
		if (e->src == ROUTE_S3)
			return buf_puts(b, "s3-only");
		int rc = store_stat(fy->s3, path, &a);
		if (rc && rc != -ENOENT && rc != -ENOTDIR)
			return rc;
		return buf_puts(b,
				rc == 0 && S_ISDIR(a.mode) && wh_is_opaque(&fy->route, path) != 1 ?
					"merged" :
					"nfs-only");
	}
	if (have_rec && rec->state != LEDGER_S3_ONLY)
		return buf_puts(b, ledger_state_name(rec->state));
	if (e->src == ROUTE_S3)
		return buf_puts(b, "s3-only");
	int rc = store_stat(fy->s3, path, &a);
	if (rc && rc != -ENOENT && rc != -ENOTDIR)
		return rc;
	/* on both stores with no record here: copied by another host, or before ferryfs */
	return buf_puts(b, rc == 0 && S_ISREG(a.mode) ? "migrated" : "nfs-only");
}

static int fs_getxattr_ferry(struct ferry *fy, const char *path, const char *name, char *out,
			     size_t size)
{
	struct route_entry e;
	struct ledger_file rec;
	struct buf b = { 0 };
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	int have_rec =
		fy->ledger && !S_ISDIR(e.attr.mode) && ledger_file_get(fy->ledger, path, &rec) == 0;
	if (!strcmp(name, "source")) {
		const char *v = e.src == ROUTE_S3 ? "s3" : "nfs";
		return xattr_reply(v, strlen(v), out, size);
	}
	if (!strcmp(name, "s3key") || !strcmp(name, "etag")) {
		struct store_attr a;
		const struct store_attr *pa = &e.attr;
		if (e.src != ROUTE_S3) {
			rc = store_stat(fy->s3, path, &a);
			if (rc)
				return rc == -ENOENT || rc == -ENOTDIR ? -ENODATA : rc;
			pa = &a;
		}
		if (!S_ISREG(pa->mode))
			return -ENODATA;      /* a directory has no object of its own */
		if (!strcmp(name, "etag"))
			return xattr_reply(pa->etag, strlen(pa->etag), out, size);
		rc = buf_printf(&b, "%s%s", fy->cfg->s3_prefix, path + 1);
	} else if (!strcmp(name, "state")) {
		rc = state_of(fy, path, &e, &rec, have_rec, &b);
	} else if (!strcmp(name, "migrated")) {
		if (!have_rec || !rec.migrated)
			return -ENODATA;
		char t[21];
		util_format_iso8601((time_t)rec.migrated, t);
		rc = buf_puts(&b, t);
	} else if (!strcmp(name, "sha256")) {
		if (!have_rec || !rec.has_sha256)
			return -ENODATA;
		char hex[65];
		util_hex(rec.sha256, 32, hex);
		rc = buf_puts(&b, hex);
	} else if (!strcmp(name, "error")) {
		if (!have_rec || !rec.error[0])
			return -ENODATA;
		rc = buf_puts(&b, rec.error);
	} else if (!strcmp(name, "synced")) {
		/* yes: S3 holds this path's current content (S3-only, migrated and unchanged, or
		 * written back by the mirror: it records the ETag of its upload) */
		int pending = fy->ledger ? ledger_journal_pending(fy->ledger, path) : 0;
		int same = e.src == ROUTE_S3 || (have_rec && rec.state == LEDGER_MIGRATED) ||
			   (have_rec && rec.etag[0] && rec.size == e.attr.size &&
			    (rec.state == LEDGER_MODIFIED || rec.state == LEDGER_NFS_ONLY)) ||
			   (!S_ISREG(e.attr.mode) &&
			    store_stat(fy->s3, path, &(struct store_attr){ 0 }) == 0);
		rc = buf_puts(&b, pending <= 0 && same ? "yes" : "pending");
	} else if (!strcmp(name, "stats") && !strcmp(path, "/")) {
		rc = stats_text(fy, &b);
	} else {
		/* the root's own names: write-back (revert, sync_verify), then the migrator's
		 * (state_dir, crawl, migrator) */
		rc = mirror_getxattr(fy, path, name, &b);
		if (rc == -ENODATA)
			rc = fy->ledger ? mig_getxattr(fy, path, name, &b) : -ENODATA;
		if (rc) {
			buf_free(&b);
			return rc;
		}
	}
	if (!rc)
		rc = xattr_reply(b.data, b.len, out, size);
	buf_free(&b);
	return rc;
}

static int fs_getxattr(const char *path, const char *name, char *out, size_t size)
{
	struct ferry *fy = fs_ctx();
	if (!strncmp(name, XA_PREFIX, sizeof(XA_PREFIX) - 1))
		return fs_getxattr_ferry(fy, path, name + sizeof(XA_PREFIX) - 1, out, size);
	if (!fy->nfs->ops->getxattr)
		return -ENODATA;      /* ls -l asks for security.* and ACLs on every entry */
	struct route_entry e;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (e.src != ROUTE_NFS)
		return -ENODATA;
	ssize_t n = store_getxattr(fy->nfs, path, name, out, size);
	return n == -ENOTSUP ? -ENODATA : (int)n;
}

static int fs_listxattr(const char *path, char *out, size_t size)
{
	static const char ours[] = XA_PREFIX "state\0" XA_PREFIX "source\0" XA_PREFIX "s3key\0"
				   XA_PREFIX "etag\0" XA_PREFIX "migrated\0" XA_PREFIX "sha256\0"
				   XA_PREFIX "synced\0" XA_PREFIX "error\0";
	struct ferry *fy = fs_ctx();
	struct route_entry e;
	char *theirs = NULL;
	ssize_t n = 0;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	size_t len = fy->cfg->xattr_list ? sizeof(ours) - 1 : 0;
	if (e.src == ROUTE_NFS) {
		n = store_listxattr(fy->nfs, path, NULL, 0);
		if (n > 0) {
			theirs = malloc((size_t)n);
			if (!theirs)
				return -ENOMEM;
			n = store_listxattr(fy->nfs, path, theirs, (size_t)n);
		}
		if (n == -ENOTSUP)
			n = 0;
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
	}
	rc = (int)(len + (size_t)n);
	if (size == 0)
		goto out;
	if ((size_t)rc > size) {
		rc = -ERANGE;
		goto out;
	}
	memcpy(out, ours, len);
	if (n > 0)
		memcpy(out + len, theirs, (size_t)n);
out:
	free(theirs);
	return rc;
}

/* Names of spec 8 that describe a path: read-only through setxattr (EROFS). */
static int ferry_name_readonly(const char *name)
{
	static const char *const ro[] = { "state", "source", "s3key", "etag", "migrated", "sha256",
					  "synced", "error", "stats" };
	for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
		if (!strcmp(name, ro[i]))
			return 1;
	return 0;
}

static int fs_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	struct ferry *fy = fs_ctx();
	if (!strncmp(name, XA_PREFIX, sizeof(XA_PREFIX) - 1)) {
		const char *n = name + sizeof(XA_PREFIX) - 1;
		struct route_entry e;
		int rc = route_lookup(&fy->route, path, &e);
		if (rc)
			return rc;
		if (ferry_name_readonly(n))
			return -EROFS;
		rc = fleet_control(fy, path, n, value, size);
		if (rc == -ENODATA)
			rc = mirror_control(fy, path, n, value, size);
		return rc != -ENODATA ? rc : mig_control(fy, path, n, value, size);
	}
	if (!fy->nfs->ops->setxattr)
		return -ENOTSUP;      /* NFS through libnfs has no xattrs: no copy-up for nothing */
	int rc = jn_writable();   /* S3 has no xattrs: nothing to journal; refused after revert */
	if (rc)
		return rc;
	rc = changed(ns_copyup(&fy->route, path, 0), path);
	return rc ? rc : store_setxattr(fy->nfs, path, name, value, size, flags);
}

static int fs_removexattr(const char *path, const char *name)
{
	struct ferry *fy = fs_ctx();
	if (!strncmp(name, XA_PREFIX, sizeof(XA_PREFIX) - 1))
		return ferry_name_readonly(name + sizeof(XA_PREFIX) - 1) ? -EROFS : -ENODATA;
	if (!fy->nfs->ops->removexattr)
		return -ENOTSUP;
	int rc = jn_writable();
	if (rc)
		return rc;
	rc = changed(ns_copyup(&fy->route, path, 0), path);
	return rc ? rc : store_removexattr(fy->nfs, path, name);
}

static const struct fuse_operations fs_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.flush = fs_flush,
	.statfs = fs_statfs,
	.create = fs_create,
	.write = fs_write,
	.fsync = fs_fsync,
	.truncate = fs_truncate,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.utimens = fs_utimens,
	.mkdir = fs_mkdir,
	.mknod = fs_mknod,
	.symlink = fs_symlink,
	.link = fs_link,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.rename = fs_rename,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
};

const struct fuse_operations *fs_operations(void)
{
	return &fs_ops;
}
