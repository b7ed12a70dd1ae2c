/* copy.h - where a file is copied: one S3 object onto the new store, as spec section 6
 * says. Used by copy-up (a write to an S3-only file, the caller waiting) and by the
 * migrator (in the background). */
#ifndef FERRY_COPY_H
#define FERRY_COPY_H

#include <pthread.h>
#include <stdint.h>

#include "view/route.h"

enum copy_publish {
	COPY_IF_ABSENT,   /* publish only if the final name is still free (migration, copy-up) */
	COPY_REPLACE,     /* publish over whatever is there (rename of an S3-only file onto it) */
};

struct copy_result {
	uint64_t size;
	char sha256[65];  /* of the bytes written, hex */
	int published;    /* 0: the name was taken by another host or writer; nothing was changed */
	struct store_attr attr; /* the object's attributes as copied */
};

/* Copy the S3 object of `src` to the new store at `dst`: read it pinned to `etag` (NULL or
 * "": the ETag seen at open) into a temporary file beside dst, make it durable, give it the
 * object's mode/owner/mtime, verify its size (and MD5 for single-part ETags), then publish
 * it at dst per `how`. A partial or unverified copy is never visible under dst; on any
 * failure the temporary file is removed. Parent directories of dst are created on the new
 * store as needed (with the S3 directories' attributes).
 * 0 / -ESTALE (the object changed) / -EIO (verification failed) / other -errno. */
int copy_s3_to_nfs(struct route *r, const char *src, const char *dst, const char *etag,
		   enum copy_publish how, struct copy_result *out);

/* Re-migration (src/migrate/fleet.c): copy the object of path (pinned to etag) to a temporary
 * file beside it as copy_s3_to_nfs does, then, holding lock, call check(arg): only when it
 * returns 0 is the temporary file renamed over path (atomically: readers see the old or
 * the new file, never a mix) and the migration recorded in the ledger (same inode number).
 * A non-zero check is returned as is and nothing is changed. 0 / -errno. */
int copy_s3_replace(struct route *r, const char *path, const char *etag, pthread_mutex_t *lock,
		    int (*check)(void *arg), void *arg, struct copy_result *out);

/* A migration (src/migrate/migrate.c): copy_s3_to_nfs(path, path, NULL, COPY_IF_ABSENT), with the
 * publishing link(2) made holding lock and only when check(arg) returns 0 (a non-zero check
 * is returned as is and nothing is published). ns.c whites a name out under the same lock,
 * so a file deleted through the mount while its object was being copied stays deleted. */
int copy_s3_migrate(struct route *r, const char *path, pthread_mutex_t *lock,
		    int (*check)(void *arg), void *arg, struct copy_result *out);

/* Create the missing parent directories of path on the new store, each with the merged
 * view's attributes (an S3 directory's dir_mode/uid/gid). 0 / -errno. */
int copy_ensure_parents(struct route *r, const char *path);

/* Hooks for the migrator (src/migrate/migrate.c), so that temporary files a crash leaves behind
 * can be found without walking the export. Both optional; set once before any copy.
 * tmp_begin gets the directory (mount path) of a temporary file before it is created; a
 * non-zero return fails the copy with that value. tmp_end gets the same directory once
 * the temporary file is gone (gone = 1) or could not be removed (gone = 0).
 * before_publish, called with the source path and the ETag copied once the copy is
 * verified, may refuse to publish (-ESTALE: the object was replaced during the copy). */
struct copy_hooks {
	int (*tmp_begin)(const char *dir);
	void (*tmp_end)(const char *dir, int gone);
	int (*before_publish)(const char *src, const char *etag);
};
void copy_set_hooks(const struct copy_hooks *h);

/* Temporary copy files are named "<dir>/.ferryfs.tmp.<host>.<owner>.<pid>.<n>", owner an
 * id of state_dir: set once at start, before any copy. Only the process holding
 * state_dir's lock makes names with that owner, so at start every such name of another
 * pid is a dead process's, even one that has not finished exiting. */
void copy_set_owner(const char *state_dir);
/* ".ferryfs.tmp.<host>.<owner>." into out. */
void copy_tmp_prefix(char *out, size_t outlen);

/* on = 1: every copy in progress stops at its next chunk with -ECANCELED (its temporary
 * file removed), and so does every new one, until called with 0. For the migrator's
 * bounded stop at unmount. */
void copy_cancel_all(int on);

#endif
