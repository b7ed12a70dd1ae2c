/* ns.h - changes to the merged namespace (spec section 5): every operation that creates,
 * removes, renames or changes an entry. All writes go to the new store; an S3-only file is
 * copied up first (copy.c); a name that S3 still has is whited out (whiteout.c). fs.c calls
 * these after the kernel's permission checks; route.c answers the lookups. */
#ifndef FERRY_NS_H
#define FERRY_NS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "view/route.h"

/* Who asks: entries created are given to this uid/gid (as on any filesystem). */
struct ns_caller {
	uid_t uid;
	gid_t gid;
};

/* A migrated file is about to change: `modified` from now on, under the path's lock
 * (ns_copyup does it for every change it prepares). */
void ns_mark_modified(struct route *r, const char *path);
/* Make sure path (a file) is on the new store, copying it up from S3 if it is S3-only.
 * With `truncate`, an S3-only file becomes an empty file on the new store with the
 * object's attributes and no data is copied (open with O_TRUNC). 0 / -errno. */
int ns_copyup(struct route *r, const char *path, int truncate);
/* The per-path lock (one of 64 stripes) held by copy-ups, by the `migrated` -> `modified`
 * step of every change through the mount (inside ns_copyup), by unlink and rename of a
 * file on the new store, and by a re-migration (migrate/fleet.c) while it checks and replaces
 * a migrated copy. Taken with no other lock held. */
pthread_mutex_t *ns_path_lock(const char *path);

/* Check a name about to be created: -EPERM for the reserved ".ferryfs" names. */
int ns_check_new_name(const char *path);

/* Create a regular file (open flags for the new store); *out receives the open file. */
int ns_create(struct route *r, const char *path, uint32_t mode, int flags,
	      const struct ns_caller *who, struct store_file **out);
int ns_mkdir(struct route *r, const char *path, uint32_t mode, const struct ns_caller *who);
int ns_mknod(struct route *r, const char *path, uint32_t mode, uint64_t rdev,
	     const struct ns_caller *who);
int ns_symlink(struct route *r, const char *target, const char *path, const struct ns_caller *who);
int ns_link(struct route *r, const char *from, const char *to);
int ns_unlink(struct route *r, const char *path);
int ns_rmdir(struct route *r, const char *path);

/* Open files that lose their name (libfuse's ".fuse_hidden" names, doc/namespace.md):
 * 1 when path's last segment is such a name (never a user's name: ns_check_new_name). */
int ns_is_hidden(const char *path);
/* Unlink path as ns_unlink does, except that a file on the new store is renamed to the
 * reserved name that `hidden` maps to, so that its open handles keep working. */
int ns_hide(struct route *r, const char *path, const char *hidden);
/* Stat (-ENOENT when absent; libfuse takes the hidden name off st_nlink; *s3_ino is the
 * inode number of a hidden S3-only file, else 0) and remove a hidden path's file. */
int ns_hidden_stat(struct route *r, const char *hidden, struct route_entry *out, uint64_t *s3_ino);
int ns_hidden_unlink(struct route *r, const char *hidden);
/* Take this mount's hidden names of a file on the new store off st's link count (self: st
 * is a hidden name's own, whose link libfuse takes off). */
void ns_hidden_nlink(struct stat *st, int self);
/* flags: 0 or RENAME_NOREPLACE (RENAME_EXCHANGE is EINVAL). */
int ns_rename(struct route *r, const char *from, const char *to, unsigned flags);

/* Attribute changes: copy up, then apply on the new store. */
int ns_chmod(struct route *r, const char *path, uint32_t mode);
int ns_chown(struct route *r, const char *path, uint32_t uid, uint32_t gid);
int ns_utimens(struct route *r, const char *path, const struct timespec tv[2]);
int ns_truncate(struct route *r, const char *path, uint64_t size);

#endif
