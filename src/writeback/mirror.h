/* mirror.h - write-back to S3 (spec 7): replays the journal (journal.h) to S3, state-based
 * and idempotent, in a background thread of the mount (mirror=async; with mirror=off only
 * when asked: user.ferryfs.sync / .revert) or in-process without a mount (`ferryctl
 * sync-back --state DIR`). doc/mirror.md has the design. */
#ifndef FERRY_MIRROR_H
#define FERRY_MIRROR_H

#include <stddef.h>
#include <stdint.h>

struct ferry;
struct ferry_config;
struct route;
struct ledger;
struct buf;

/* ---- the replay (no mount needed) ---- */

struct mirror {
	struct route *r;          /* the merged view: its stores and ledger */
	struct ledger *l;
	const struct ferry_config *cfg;
	int in_mount;             /* run by the mount: paths being changed now (journal.h:
				   * busy) are journaled again, not replayed */
	int carry_dirty;          /* ... and so are files a still-open handle wrote */
	size_t batch;             /* journal entries per batch (0: 512) */
	size_t last_items;        /* set by mirror_batch: paths in the last batch */
};

/* One batch: read up to m->batch journal entries, coalesce them by path, make S3 match
 * the merged view for every path named (PUTs first, then DELETEs) and delete the entries
 * from the journal. Paths that failed, and dirty files (carry_dirty), are journaled again
 * (at the end, keeping their age) before the batch is deleted, so nothing is dropped.
 * Returns the number of entries taken (0 = journal empty) or -errno (nothing deleted);
 * *failed (may be NULL) gets the number of paths that failed, *carried those carried. */
int mirror_batch(struct mirror *m, size_t *failed, size_t *carried);

/* Compare S3 with the merged view under path (a directory; "/" for everything the new
 * store holds): every file, symlink and directory that lives on the new store must be in
 * S3 with its size, content (ETag recorded at upload, or MD5) and x-amz-meta-mode, and
 * S3 must hold nothing the view does not show. Appends one line per difference to out
 * ("missing PATH", "differs PATH: why", "extra KEY"). Returns the number of differences
 * or -errno. */
int mirror_verify(struct mirror *m, const char *path, struct buf *out);

/* Check, as mirror_verify does, the paths named by the journal entries the mount drained
 * since its revert was asked (directories named by a removal or rename: their subtree).
 * Returns the number of differences or -errno. Mount only. */
int mirror_verify_paths(struct mirror *m, struct buf *out);

/* ---- the coalescing plan (pure; unit-tested) ---- */

#define MIRROR_NODE 0x1u   /* the path itself: upload what it is now, or delete it */
#define MIRROR_TREE 0x2u   /* and the S3 subtree under it: make it match the view */

struct mirror_item {
	char *path;
	unsigned flags;        /* MIRROR_* */
	int64_t time_ms;       /* the oldest entry's time */
};

struct mirror_plan {
	struct mirror_item *v;
	size_t n, cap;
};

/* Add what a journal entry (op: enum ledger_op) asks for. 0 / -ENOMEM. */
int mirror_plan_add(struct mirror_plan *p, int op, const char *path, const char *path2,
		    int64_t time_ms);
/* Sort by path and merge duplicates (flags or'ed, oldest time kept). */
void mirror_plan_finish(struct mirror_plan *p);
void mirror_plan_free(struct mirror_plan *p);

/* ---- the mount's thread and controls ---- */

/* Start the mirror thread (after daemonizing, once the ledger is open). It drains the
 * journal left by a previous run too. With mirror=off it runs only when asked. */
int mirror_start(struct ferry *fy);
void mirror_stop(struct ferry *fy);
/* A change was journaled: cheap, any thread. */
void mirror_wake(struct ferry *fy);

/* setxattr on the root: "sync" = "now" (drain now, even with mirror=off), "revert" = "1"
 * (refuse every change with EROFS, drain) or "0" (accept changes again). -ENODATA for
 * other names, -EROFS off the root, -EINVAL for a bad value. */
int mirror_control(struct ferry *fy, const char *path, const char *name, const char *value,
		   size_t size);
/* getxattr on the root: "revert" = "1"/"0"; "sync_verify" = the output of
 * mirror_verify_paths, "sync_verify_all" that of mirror_verify of "/" ("ok\n" when nothing
 * differs, else "N difference(s)\n" and one line each). -ENODATA otherwise. */
int mirror_getxattr(struct ferry *fy, const char *path, const char *name, struct buf *b);

/* 1 while the mirror is uploading path (from before its PUT until the new ETag is in the
 * ledger), else 0. Revalidation asks this BEFORE reading the ledger record: a changed
 * ETag it saw is then either ours in flight (1) or already recorded (the record says so). */
int mirror_uploading(const char *path);

/* counters for user.ferryfs.stats */
struct mirror_counters {
	uint64_t puts, deletes, errors, carried, batches;
	uint64_t too_long;       /* paths not written back: their key is over 1024 bytes */
};
void mirror_counters(struct mirror_counters *c);

/* Write the mount's non-secret configuration to path (mode 0600), so that `ferryctl
 * sync-back --state DIR` can reach the stores with the mount down. 0 / -errno. */
int mirror_save_config(const struct ferry_config *cfg, const char *path);

#endif
