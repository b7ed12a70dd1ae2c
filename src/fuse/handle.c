/* handle.c - the open files of the mount (handle.h): creation, the read path of a handle
 * pinned to an S3 object and its switch to the new store, fstat and close.
 *
 * Locks: each pinned handle's rwlock `swap` (handle.h). It is taken with no other lock of
 * ours held; the switch holds it around a stat, a ledger read, an open, ra_close and a
 * close (doc/design.md, lock order). */
#include "fuse/handle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "ledger/ledger.h"
#include "view/dcache.h"
#include "view/ferry.h"
#include "view/readahead.h"

int fh_new(struct store *st, struct store_file *f, enum route_src src, struct fh **out)
{
	struct fh *h = calloc(1, sizeof(*h));
	if (!h) {
		store_close(st, f);
		return -ENOMEM;
	}
	h->st = st;
	h->f = f;
	h->src = src;
	*out = h;
	return 0;
}

void fh_pin(struct fh *h, uint64_t pgen, const char *etag)
{
	h->pinned = 1;
	pthread_rwlock_init(&h->swap, NULL);
	atomic_init(&h->pgen, pgen);
	snprintf(h->etag, sizeof(h->etag), "%s", etag);
}

/* A handle opened on S3 pins the object it opened (spec 5). When its path has since come
 * onto the new store through this mount (a copy-up for a writer, or a migration, then
 * writes), the kernel's one inode for the path holds the new size, and a read of the
 * pinned object short of it would be taken for the end of the file: the kernel would
 * shrink the file for every reader until its attributes expire. So before each read the
 * handle compares its path's dc_path_generation (bumped by every change through the
 * mount); when it moved, it looks: still S3-only, nothing to do; on the new store with the
 * ledger's record of a copy of the very version it pinned (the ETag), it reads the new
 * store from then on, as any reader of a file sees another process's writes; on the new
 * store as anything else (another version, a new empty file), its file was replaced:
 * ESTALE, as for an object replaced in S3, never a mix of two versions. Called with no
 * lock; takes swap. */
static void follow(struct ferry *fy, struct fh *h, const char *path)
{
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

ssize_t fh_read(struct ferry *fy, struct fh *h, const char *path, char *buf, size_t size,
		uint64_t off, int *s3)
{
	ssize_t n;
	if (!h->pinned) {
		*s3 = h->src == ROUTE_S3;
		return h->ra ? ra_read(h->ra, buf, size, off) :
			       store_pread(h->st, h->f, buf, size, off);
	}
	if (path && dc_path_generation(path) != atomic_load(&h->pgen))
		follow(fy, h, path);
	pthread_rwlock_rdlock(&h->swap);
	*s3 = h->src == ROUTE_S3;
	n = h->stale ? -ESTALE : h->ra ? ra_read(h->ra, buf, size, off) :
		store_pread(h->st, h->f, buf, size, off);
	pthread_rwlock_unlock(&h->swap);
	return n;
}

int fh_fstat(struct fh *h, struct route_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (h->pinned)
		pthread_rwlock_rdlock(&h->swap);
	e->src = h->src;
	int rc = store_fstat(h->st, h->f, &e->attr);
	if (h->pinned)
		pthread_rwlock_unlock(&h->swap);
	return rc;
}

int fh_close(struct fh *h)
{
	if (h->ra)
		ra_close(h->ra);   /* returns once no fetch uses h->f */
	int rc = store_close(h->st, h->f);
	if (h->pinned)
		pthread_rwlock_destroy(&h->swap);
	free(h);
	return rc;
}
