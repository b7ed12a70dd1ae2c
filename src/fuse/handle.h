/* handle.h - an open file of the mount (the FUSE file handle, fi->fh): which store serves
 * it, its read-ahead, what the journal knows of it, and the one switch a handle makes. A
 * handle remembers its store so that reads never re-decide mid-file, with one exception:
 * a handle opened on S3 for reading is pinned to the object it opened (spec 5), and
 * follows its file onto the new store once the file is there with the content it pinned
 * (fh_read). Several FUSE threads may use one handle at once; the stores allow that, and
 * a pinned handle takes its rwlock `swap` (reads and fstat share it, the switch holds it).
 * No FUSE in here: fs.c keeps fi->fh. */
#ifndef FERRY_HANDLE_H
#define FERRY_HANDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "view/route.h"

struct ferry;
struct jn_file;
struct ra_file;

struct fh {
	struct store *st;          /* the store serving this open file */
	struct store_file *f;
	struct ra_file *ra;        /* read-ahead over f (S3 reads), NULL when none */
	struct jn_file *jf;        /* open for writing: what the journal knows of it */
	enum route_src src;
	uint64_t s3_ino;           /* an S3 handle's inode number, for fstat after unlink */
	atomic_int wrote;          /* written since the last flush (see fs.c: fs_flush) */
	int linked;                /* opened with more than one name (see fs.c: fs_flush) */
	/* Opened on S3 for reading (pinned): may switch to the new store (fh_read). swap
	 * protects st, f, ra, src and stale: read-held by a read or an fstat, write-held by
	 * the switch. pgen is the path's dc_path_generation when it was last looked at. */
	int pinned;
	int stale;                 /* the file was replaced under the handle: reads ESTALE */
	pthread_rwlock_t swap;
	atomic_uint_fast64_t pgen;
	char etag[STORE_ETAG_MAX]; /* the pinned object's */
};

/* A handle for f, open on st (which serves src). On failure f is closed. 0 / -ENOMEM. */
int fh_new(struct store *st, struct store_file *f, enum route_src src, struct fh **out);
/* Pin a handle opened on S3 for reading to the object with this ETag, seen when path's
 * dc_path_generation was pgen. Before any other thread sees the handle. */
void fh_pin(struct fh *h, uint64_t pgen, const char *etag);
/* Read through the handle (path: its name now, NULL when it has none): a pinned handle
 * first follows its file when the path changed through the mount. *s3 tells which store
 * answered (for the counters). Bytes read or -errno (ESTALE: the file was replaced). */
ssize_t fh_read(struct ferry *fy, struct fh *h, const char *path, char *buf, size_t size,
		uint64_t off, int *s3);
/* The attributes of the open file: e->src and e->attr. 0 / -errno. */
int fh_fstat(struct fh *h, struct route_entry *e);
/* Close the file and free the handle (not h->jf: the caller releases it after). Returns
 * what the store's close returned. */
int fh_close(struct fh *h);

#endif
