/* mirror-int.h - what the write-back's two files share (not an interface for others):
 * mirror.c replays batches, reconcile.c makes a directory's S3 subtree match the view,
 * runs the deletes and verifies. */
#ifndef FERRY_MIRROR_INT_H
#define FERRY_MIRROR_INT_H

#include <stddef.h>
#include <sys/types.h>

struct buf;
struct mirror;
struct mirror_item;
struct store_attr;

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

/* the key of path (dir: its marker "path/"); 0 / -errno */
int mirror_key_of(struct mirror *m, const char *path, int dir, struct buf *b);
/* queue a delete of key (tree: every reachable key under the prefix key) after the uploads */
int mirror_queue_delete(struct run *x, const char *key, int tree);
/* upload what path is on the new store (mirror.c: upload) */
int mirror_upload(struct run *x, const char *path, const struct store_attr *hint);
/* 1 when path's key (dir: its marker "key/") fits in S3's 1024 bytes */
int mirror_key_fits(struct mirror *m, const char *path, int dir);
/* path's key is too long for S3: counted, logged, kept in a file's ledger record; 0 */
int mirror_too_long(struct run *x, const char *path, mode_t mode);
/* count n keys deleted */
void mirror_count_deletes(size_t n);

/* reconcile.c */
/* Make S3 under dir match the merged view of dir, recursively through the parts the new
 * store holds. Uploads now; deletes are queued (they run after every upload). With
 * report, changes nothing and lists the differences (counted in *diffs). */
int reconcile_dir(struct run *x, const char *dir, struct buf *report, int *diffs);
/* Delete key now (tree: every reachable key under it). 0 / -errno. */
int reconcile_delete(struct run *x, const char *key, int tree);
/* A path the view does not show: queue deletes of its object, marker and subtree. */
int reconcile_absent(struct run *x, const char *path);
/* Does S3 hold what the view shows at one path (and, for a directory named by a removal
 * or rename, under it)? Differences are appended to out and counted. */
int reconcile_verify_item(struct run *x, const struct mirror_item *it, struct buf *out,
			  int *diffs);

#endif
