/* dcache.h - what the last listing of a directory taught us, kept for a few seconds so
 * that `ls -l` of an S3 directory costs one paginated listing and no request per entry:
 *   - whether the directory exists on the new store (if not, no name in it can be there,
 *     and no NFS round trip is needed to say so);
 *   - its S3 entries after the merge rules (whiteouts, opaque, shadowing, unreachable
 *     names already applied), with the attributes the listing carried.
 * And, for DC_ONE_TTL_S, each S3 path a lookup found (HEAD and listing, outside any cached
 * listing), so that the FUSE lookup and the open right after it cost one S3 stat, not two.
 * Entries on the new store are never served from here: NFS attributes are always fresh.
 * Every change made through this mount forgets what it touches (dc_forget); changes by
 * other hosts are seen once the entry expires (DC_TTL_S). */
#ifndef FERRY_DCACHE_H
#define FERRY_DCACHE_H

#include "route.h"

#define DC_TTL_S 5.0
#define DC_MAX_DIRS 512
#define DC_MAX_ENTRIES 500000
#define DC_ONE_TTL_S 1.0    /* the kernel's own attribute timeout (fs.c) */
#define DC_ONE_SLOTS 4096

struct dc_dir;  /* a listing being built */

/* Start recording the listing of dir; NULL when out of memory (caching is best effort). */
struct dc_dir *dc_begin(const char *dir, int on_nfs);
/* Record one S3 entry of the merged listing. */
void dc_add(struct dc_dir *d, const char *name, const struct store_attr *attr);
/* Publish (complete) or drop (abandoned: listing failed) the recording. */
void dc_commit(struct dc_dir *d);
void dc_abort(struct dc_dir *d);

/* What the cache knows of path, whose parent directory's listing may be cached:
 *   DC_MISS      nothing fresh: ask the stores
 *   DC_S3        the parent lists path as an S3 entry: *attr filled
 *   DC_ABSENT    the parent's S3 side does not have it (the new store may, if on_nfs)
 * *parent_on_nfs tells whether the parent exists on the new store (valid unless DC_MISS). */
enum dc_answer { DC_MISS, DC_S3, DC_ABSENT };
enum dc_answer dc_lookup(const char *path, struct store_attr *attr, int *parent_on_nfs);

/* Remember that a lookup found path in S3 with attr (after whiteouts and opaque
 * directories were checked): answered as DC_S3 for DC_ONE_TTL_S. */
void dc_note_s3(const char *path, const struct store_attr *attr);

/* Forget the listing of path's parent and of path itself and everything below it (and the
 * lookups of path and below). */
void dc_forget(const char *path);
void dc_clear(void);

#endif
