/* route.h - the namespace of spec section 3: for any path, which store serves it, and
 * the merged listing of a directory. This is where "NFS or S3" is decided; fs.c (the
 * FUSE operations) asks here and never decides on its own. */
#ifndef FERRY_ROUTE_H
#define FERRY_ROUTE_H

#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "store/store.h"

struct ferry_config;
struct ledger;

enum route_src {
	ROUTE_NFS,   /* the new store has the entry: it wins, whatever its type */
	ROUTE_S3,    /* only the old store has it */
};

struct route {
	const struct ferry_config *cfg;
	struct store *nfs;              /* the new store (NFS or local directory) */
	struct store *s3;               /* the old store */
	struct timespec mount_time;     /* mtime of S3 directories without a marker */
	struct ledger *ledger;          /* this host's ledger (NULL in tools that run without) */
	atomic_int finished;            /* set once by `ferryctl finish` (migrate/fleet.c): the
					 * new store is complete; S3 is not consulted */
};

/* Where a path lives and what it looks like. */
struct route_entry {
	enum route_src src;
	struct store_attr attr;         /* as the serving store reported it */
};

/* Look a path up as spec 3 says. 0 with *out filled, -ENOENT, or another -errno (a store
 * error: never turned into ENOENT, so an outage is not mistaken for a missing file). */
int route_lookup(struct route *r, const char *path, struct route_entry *out);
/* The same, for a name about to be created (create, mkdir, mknod, symlink): a lookup that
 * found nothing in S3 a moment ago answers for S3 (dcache.h, dc_note_s3_absent). */
int route_lookup_new(struct route *r, const char *path, struct route_entry *out);

/* Called once per merged entry with its attributes and the store that serves it.
 * Return 0 to go on, non-zero to stop (route_readdir then returns that value). */
typedef int (*route_fill_fn)(void *arg, const char *name, const struct stat *st,
			     enum route_src src);

/* List a directory: the union of its new-store and S3 entries, the new store winning a
 * name clash, names that cannot be POSIX names (or are reserved) left out and counted. */
int route_readdir(struct route *r, const char *path, route_fill_fn fn, void *arg);
/* The same for a listing shown to the user (FUSE readdir): S3's side may come from a
 * listing of the directory younger than 5 s (dcache.h), merged again with a fresh
 * new-store listing. Not for callers that change S3 or the namespace from what they see
 * (rmdir's emptiness check, a directory rename's copy, the mirror's reconcile): an object
 * another host put in S3 within those 5 s would be missed, and hidden or deleted. */
int route_readdir_cached(struct route *r, const char *path, route_fill_fn fn, void *arg);

/* The inode number an S3-only path reports: a hash of prefix and path, top bit set (clear
 * of NFS file ids). A copy-up records it in the ledger's inomap for the new NFS file id,
 * so the file keeps it (spec 4). */
uint64_t route_s3_ino(const struct route *r, const char *path);

/* struct stat for an entry at path (fills a stable st_ino). */
void route_to_stat(const struct route *r, const char *path, const struct route_entry *e,
		   struct stat *st);

#endif
