/* fleet.h - the end of a migration and the hosts not on ferryfs yet (spec section 7):
 *  - finish: `ferryctl finish` checks that the new store holds everything and removes the
 *    markers; this module is the daemon's side: user.ferryfs.finish=1 on the root switches
 *    the mount to the new store alone (S3 is no longer consulted, nothing is whited out),
 *    durably (ledger checkpoint "finished"), and so does the marker object
 *    PREFIX + ".ferryfs.finished" that `ferryctl finish` puts in S3 for the other hosts;
 *  - revalidate: with revalidate=SECONDS, a migrated file whose S3 object was changed by a
 *    host still writing S3 directly is re-migrated when its copy was not modified, and
 *    becomes `conflict` (both versions kept on the new store) when it was.
 * doc/migration.md describes both. */
#ifndef FERRY_FLEET_H
#define FERRY_FLEET_H

#include <stddef.h>

struct ferry;
struct buf;

/* S3 key suffix (after the prefix) of the marker `ferryctl finish` puts in S3. Its name
 * is reserved (".ferryfs"), so no mount ever shows it. */
#define FLEET_FINISHED_KEY ".ferryfs.finished"
/* Ledger checkpoint holding the unix time the mount was finished. */
#define FLEET_FINISHED_CKPT "finished"

/* After the ledger is open and the migrator started: restore the finished state, start
 * the thread that revalidates and watches for the finished marker. 0 / -errno. */
int fleet_start(struct ferry *fy);
void fleet_stop(struct ferry *fy);

/* setxattr user.ferryfs.<name> on path: "finish" = "1" on the root. -EBUSY (with a log
 * line) while the journal holds changes or migrations are queued, copying or failed;
 * -EROFS elsewhere; -EINVAL for a bad value; -ENODATA for names that are not ours. */
int fleet_control(struct ferry *fy, const char *path, const char *name, const char *value,
		  size_t size);

/* A file served from the new store was opened: when revalidate is on and its last check is
 * older than revalidate seconds, its S3 object is checked soon (by the fleet thread, not
 * by the caller). Cheap; any thread. */
void fleet_opened(struct ferry *fy, const char *path);

/* 1 when the mount is finished. */
int fleet_finished(struct ferry *fy);

#endif
