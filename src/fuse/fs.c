/* fs.c - the FUSE operations (high-level, path-based API, multi-threaded loop). Every
 * call from the kernel lands here: look the path up through route.c, then call the store
 * that serves it. Handlers return 0 / -errno as libfuse expects. Open files are handle.h's
 * (fi->fh); the user.ferryfs.* names are xattr.h's. */
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
#include "base/naming.h"
#include "migrate/migrate.h"
#include "view/ns.h"
#include "view/readahead.h"
#include "base/stats.h"
#include "base/util.h"
#include "base/xattrs.h"
#include "fuse/xattr.h"
#include "fuse/handle.h"

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
	if (fi && fi->fh && path && ((struct fh *)(uintptr_t)fi->fh)->pinned &&
	    route_lookup(&fy->route, path, &e) == 0) {
		route_to_stat(&fy->route, path, &e, st);
		ns_hidden_nlink(st, 0);
		lk_seen(fs_links, path, st);
		return 0;
	}
	if (fi && fi->fh) {
		struct fh *h = (struct fh *)(uintptr_t)fi->fh;
		rc = fh_fstat(h, &e);
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

/* --- the change bracket ------------------------------------------------------------
 * Every change made through the mount takes these steps, in this order:
 *   change_begin  journal it (spec 7; op 0: the handle's journal, jn_open / jn_write,
 *                 covers it): a change that cannot be journaled is not made
 *   ...           the handler makes the change (ns.h, a store, the ledger's record)
 *   change_end    forget the cached listings of the names it touched, also on failure (a
 *                 copy-up may have happened before the failing step); end the journal's
 *                 busy bracket; once made, drop what the kernel caches of the file's other
 *                 names (links.h); and map the error, once. */

#define CH_FORGET2 0x1u   /* path2 is a name the change touched too (rename, link) */
#define CH_TOUCHED 0x2u   /* the data or attributes of path changed (retouched) */
#define CH_LINKED 0x4u    /* path got another name, path2 (link) */
#define CH_UNLINKED 0x8u  /* path lost its name */
#define CH_RENAMED 0x10u  /* path became path2 (a file there lost that name) */

struct change {
	const char *path;    /* NULL: a file unlinked while open */
	const char *path2;   /* rename's and link's new name, symlink's target, else NULL */
	unsigned flags;      /* CH_* */
	int journaled;       /* jn_change succeeded: jn_end is due */
};

static int change_begin(struct change *c, int op, const char *path, const char *path2,
			unsigned flags)
{
	*c = (struct change){ path, path2, flags, 0 };
	int rc = op ? jn_change(fs_ctx(), op, path, path2) : jn_writable();
	c->journaled = op && !rc;
	return fs_errno(rc);
}

static int change_end(struct change *c, int rc)
{
	if (c->path)
		dc_forget(c->path);
	if (c->path2 && (c->flags & CH_FORGET2))
		dc_forget(c->path2);
	if (c->journaled)
		jn_end();
	if (rc == 0) {
		struct lk_names others = { 0 };
		if (c->flags & CH_TOUCHED)
			retouched(c->path);
		if (c->flags & CH_LINKED) {   /* the source's cached nlink (and, after a
					       * copy-up, attributes) changed */
			fuse_invalidate_path(fuse_get_context()->fuse, c->path);
			lk_linked(fs_links, c->path, &others);
			relinked(&others);
		}
		if (c->flags & CH_UNLINKED) {  /* (ns_hidden_nlink keeps a hidden name off the
						* others' count) */
			lk_unlinked(fs_links, c->path, &others);
			relinked(&others);
		}
		if (c->flags & CH_RENAMED) {   /* a file replaced at path2 lost a name */
			lk_renamed(fs_links, c->path, c->path2, &others);
			relinked(&others);
		}
	}
	return fs_errno(rc);
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
	struct fh *h;
	int rc = fh_new(st, f, src, &h);
	if (!rc)
		fi->fh = (uint64_t)(uintptr_t)h;
	return rc;
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
	uint64_t pgen = dc_path_generation(path);   /* before the lookup: see handle.c */
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
		struct change c;
		if ((rc = jn_open(fy, path, trunc ? LEDGER_OP_WRITE : 0, &jf)))
			return rc;
		change_begin(&c, 0, path, NULL, trunc ? CH_TOUCHED : 0);   /* jn_open checked */
		/* spec 5: O_TRUNC makes an empty file on the new store, otherwise copy up first */
		rc = ns_copyup(&fy->route, path, trunc);
		if (!rc)
			rc = store_open(fy->nfs, path, fi->flags & ~(O_CREAT | O_EXCL), 0, NULL,
					&f);
		if (!rc)
			rc = new_handle(fi, fy->nfs, f, ROUTE_NFS);
		if (rc) {
			jn_release(fy, jf, NULL);
		} else {
			((struct fh *)(uintptr_t)fi->fh)->jf = jf;
			((struct fh *)(uintptr_t)fi->fh)->linked = e.attr.nlink > 1;
		}
		return change_end(&c, rc);
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
		((struct fh *)(uintptr_t)fi->fh)->s3_ino = route_s3_ino(&fy->route, path);
	if (!rc && e.src == ROUTE_S3)
		fh_pin((struct fh *)(uintptr_t)fi->fh, pgen, etag);
	if (!rc && e.src == ROUTE_S3 && fy->readahead) {
		struct fh *h = (struct fh *)(uintptr_t)fi->fh;
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
	struct change c;
	int rc = jn_open(fy, path, LEDGER_OP_CREATE, &jf);
	if (rc)
		return fs_errno(rc);
	change_begin(&c, 0, path, NULL, 0);   /* jn_open journaled it */
	rc = ns_create(&fy->route, path, mode, fi->flags, &who, &f);
	if (!rc)
		rc = new_handle(fi, fy->nfs, f, ROUTE_NFS);
	if (rc)
		jn_release(fy, jf, NULL);
	else
		((struct fh *)(uintptr_t)fi->fh)->jf = jf;
	return change_end(&c, rc);
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	if (h->src != ROUTE_NFS)
		return -EBADF;
	int rc = jn_write(fs_ctx(), h->jf, named(path));   /* the first write journals (spec 7) */
	if (rc)
		return fs_errno(rc);
	ssize_t n = store_pwrite(h->st, h->f, buf, size, (uint64_t)off);
	if (n > 0)
		atomic_store(&h->wrote, 1);
	return n < 0 ? fs_errno((int)n) : (int)n;
}

/* close(2): what was written through this handle shows through the file's other names
 * now (close-to-open, as on NFS), not after their attribute timeout. Not per write: a
 * WRITE holds the written name's pages locked, and writers on two names of one file
 * would each wait for the other's invalidation. Only for a file that had other names
 * when it was opened (a link made while it is open is seen after the attribute timeout),
 * so that closing an ordinary file costs nothing more. */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	if (atomic_exchange(&h->wrote, 0) && h->linked)
		retouched(named(path));
	return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	if (h->pinned)
		return 0;          /* opened for reading on S3: nothing of it to make durable */
	return h->src == ROUTE_NFS ? fs_errno(store_fsync(h->st, h->f, datasync)) : 0;
}

/* fallocate(2): mode 0 and FALLOC_FL_KEEP_SIZE where the new store has the call (a local
 * directory), else EOPNOTSUPP (NFSv3 has none); a file on S3 has no writable handle. */
static int fs_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	struct fh *h = fi ? (struct fh *)(uintptr_t)fi->fh : NULL;
	if (!h || h->src != ROUTE_NFS)
		return -EBADF;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (!h->st->ops->fallocate || (mode & ~FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	int rc = jn_write(fs_ctx(), h->jf, named(path));   /* a size change, as a write */
	if (rc)
		return rc;
	rc = store_fallocate(h->st, h->f, mode, (uint64_t)off, (uint64_t)len);
	if (rc == 0)
		atomic_store(&h->wrote, 1);
	return fs_errno(rc);
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct ferry *fy = fs_ctx();
	struct fh *h = fi && fi->fh ? (struct fh *)(uintptr_t)fi->fh : NULL;
	struct change c;
	if (size < 0)
		return -EINVAL;
	path = named(path);
	int rc = change_begin(&c, LEDGER_OP_TRUNCATE, path, NULL, CH_TOUCHED);
	if (rc)
		return rc;
	if (h && h->src == ROUTE_NFS) {
		rc = store_ftruncate(h->st, h->f, (uint64_t)size);
		/* through a handle: mark a migrated file `modified` (a change by path is
		 * marked by ns_copyup, which prepares it); no path: no record left to mark */
		if (path)
			ns_mark_modified(&fy->route, path);
	} else if (!path) {
		rc = -ENOENT;   /* unlinked while open, and not through an NFS handle */
	} else {
		rc = ns_truncate(&fy->route, path, (uint64_t)size);
	}
	return change_end(&c, rc);
}

/* The attribute calls get a hidden path for a file unlinked while open (fs_hide); the
 * new store is changed by name only: ENOENT. */
static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct change c;
	(void)fi;
	if (!named(path))
		return -ENOENT;
	int rc = change_begin(&c, LEDGER_OP_CHMOD, path, NULL, CH_TOUCHED);
	return rc ? rc : change_end(&c, ns_chmod(&fs_ctx()->route, path, mode));
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct change c;
	(void)fi;
	if (!named(path))
		return -ENOENT;
	int rc = change_begin(&c, LEDGER_OP_CHOWN, path, NULL, CH_TOUCHED);
	return rc ? rc : change_end(&c, ns_chown(&fs_ctx()->route, path, uid, gid));
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct change c;
	(void)fi;
	if (!named(path))
		return -ENOENT;
	int rc = change_begin(&c, LEDGER_OP_UTIMENS, path, NULL, CH_TOUCHED);
	return rc ? rc : change_end(&c, ns_utimens(&fs_ctx()->route, path, tv));
}

static int fs_mkdir(const char *path, mode_t mode)
{
	struct ns_caller who = caller();
	struct change c;
	int rc = change_begin(&c, LEDGER_OP_MKDIR, path, NULL, 0);
	return rc ? rc : change_end(&c, ns_mkdir(&fs_ctx()->route, path, mode, &who));
}

static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct ns_caller who = caller();
	struct change c;
	int rc = change_begin(&c, LEDGER_OP_CREATE, path, NULL, 0);
	return rc ? rc : change_end(&c, ns_mknod(&fs_ctx()->route, path, mode, rdev, &who));
}

static int fs_symlink(const char *target, const char *path)
{
	struct ns_caller who = caller();
	struct change c;
	int rc = change_begin(&c, LEDGER_OP_SYMLINK, path, target, 0);
	return rc ? rc : change_end(&c, ns_symlink(&fs_ctx()->route, target, path, &who));
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
	struct change c;
	int rc = change_begin(&c, LEDGER_OP_LINK, from, to, CH_FORGET2 | CH_LINKED);
	return rc ? rc : change_end(&c, ns_link(&fs_ctx()->route, from, to));
}

/* Remove path's name: unlinked, or, when `hidden` is given, renamed to that hidden name
 * of a file still open (fs_hide). Both are an unlink for everyone else. */
static int remove_name(const char *path, const char *hidden)
{
	struct ferry *fy = fs_ctx();
	struct change c;
	int rc = change_begin(&c, LEDGER_OP_UNLINK, path, NULL, CH_UNLINKED);
	if (rc)
		return rc;
	rc = hidden ? ns_hide(&fy->route, path, hidden) : ns_unlink(&fy->route, path);
	if (rc == 0 && fy->ledger)
		ledger_file_delete(fy->ledger, path);   /* -ENOENT when it had no record */
	return change_end(&c, rc);
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
	struct change c;
	int rc = change_begin(&c, LEDGER_OP_RMDIR, path, NULL, 0);
	return rc ? rc : change_end(&c, ns_rmdir(&fs_ctx()->route, path));
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct ferry *fy = fs_ctx();
	struct change c;
	if (ns_is_hidden(to) && !flags)
		return fs_hide(from, to);
	if (ns_is_hidden(from))
		return -ENOENT;       /* the user cannot name a hidden file */
	int rc = change_begin(&c, LEDGER_OP_RENAME, from, to, CH_FORGET2 | CH_RENAMED);
	if (rc)
		return rc;
	rc = ns_rename(&fy->route, from, to, flags);
	if (rc == 0 && fy->ledger)
		ledger_file_rename(fy->ledger, from, to, LEDGER_RENAME_TREE);
	return change_end(&c, rc);
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	int s3;
	/* named: NULL once the name went while open, nothing to follow then */
	ssize_t n = fh_read(fs_ctx(), (struct fh *)(uintptr_t)fi->fh, named(path), buf, size,
			    (uint64_t)off, &s3);
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
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	struct jn_file *jf = h->jf;
	int rc = fh_close(h);
	jn_release(fs_ctx(), jf, named(path));
	return fs_errno(rc);
}

static int fs_statfs(const char *path, struct statvfs *out)
{
	(void)path;
	struct ferry *fy = fs_ctx();
	/* spec 5: statfs reports the new store */
	int rc = store_statfs(fy->nfs, "/", out);
	if (rc == 0 && (!out->f_namemax || out->f_namemax > NAME_MAX_SEGMENT))
		out->f_namemax = NAME_MAX_SEGMENT;  /* the longest name every layer takes */
	return fs_errno(rc);
}


/* Extended attributes: the user.ferryfs.* names go to the control plane (xattr.h); the
 * others are the new store's, for a path it serves. */
static int fs_getxattr(const char *path, const char *name, char *out, size_t size)
{
	struct ferry *fy = fs_ctx();
	const char *ours = xa_strip(name);
	if (ours)
		return fs_errno(fx_get(fy, path, ours, out, size));
	if (!fy->nfs->ops->getxattr)
		return -ENODATA;      /* ls -l asks for security.* and ACLs on every entry */
	struct route_entry e;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return fs_errno(rc);
	if (e.src != ROUTE_NFS)
		return -ENODATA;
	ssize_t n = store_getxattr(fy->nfs, path, name, out, size);
	return n == -ENOTSUP ? -ENODATA : fs_errno((int)n);
}

static int fs_listxattr(const char *path, char *out, size_t size)
{
	return fs_errno(fx_list(fs_ctx(), path, out, size));
}

static int fs_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	struct ferry *fy = fs_ctx();
	const char *ours = xa_strip(name);
	if (ours)
		return fs_errno(fx_set(fy, path, ours, value, size));
	if (!fy->nfs->ops->setxattr)
		return -ENOTSUP;      /* NFS through libnfs has no xattrs: no copy-up for nothing */
	/* S3 holds no xattrs: nothing to journal, but refused after a revert */
	struct change c;
	int rc = change_begin(&c, 0, path, NULL, 0);
	if (rc)
		return rc;
	rc = ns_copyup(&fy->route, path, 0);
	return change_end(&c, rc ? rc : store_setxattr(fy->nfs, path, name, value, size, flags));
}

static int fs_removexattr(const char *path, const char *name)
{
	struct ferry *fy = fs_ctx();
	const char *ours = xa_strip(name);
	if (ours)
		return fx_remove(ours);
	if (!fy->nfs->ops->removexattr)
		return -ENOTSUP;
	/* S3 holds no xattrs: nothing to journal, but refused after a revert */
	struct change c;
	int rc = change_begin(&c, 0, path, NULL, 0);
	if (rc)
		return rc;
	rc = ns_copyup(&fy->route, path, 0);
	return change_end(&c, rc ? rc : store_removexattr(fy->nfs, path, name));
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
	.fallocate = fs_fallocate,
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
