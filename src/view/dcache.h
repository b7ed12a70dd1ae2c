/* dcache.h - what the last listing of a directory taught us, kept for a few seconds so
 * that `ls -l` of an S3 directory costs one paginated listing and no request per entry:
 *   - whether the directory exists on the new store (if not, no name in it can be there,
 *     and no NFS round trip is needed to say so);
 *   - its S3 entries after the merge rules (whiteouts, opaque, shadowing, unreachable
 *     names already applied), with the attributes the listing carried.
 * And, for DC_ONE_TTL_S, each S3 path a lookup found (HEAD and listing, outside any cached
 * listing), or found absent (for a create only), so that the FUSE lookup and the open or
 * create right after it cost one S3 stat, not two.
 * And the S3 side of each listing as S3 delivered it (before the merge), so that a readdir
 * of the same directory within DC_TTL_S merges it again with a fresh new-store listing
 * instead of listing S3 again (a warm `ls -l` costs one NFS READDIR, no S3 request).
 * And, for DC_TTL_S, each directory a lookup found in S3 and not on the new store: no path
 * below it can be on the new store either (nor whited out, nor under an opaque marker), so
 * lookups below it ask S3 alone.
 * Entries on the new store are never served from here: NFS attributes are always fresh.
 * Every change made through this mount forgets what it touches (dc_forget); changes by
 * other hosts are seen once the entry expires (DC_TTL_S). */
#ifndef FERRY_DCACHE_H
#define FERRY_DCACHE_H

#include "store/store.h"

#define DC_TTL_S 5.0
#define DC_MAX_DIRS 512
#define DC_MAX_ENTRIES 500000
#define DC_ONE_TTL_S 1.0    /* the kernel's own attribute timeout (fs.c) */
#define DC_ONE_SLOTS 4096
#define DC_OFF_SLOTS 1024

struct dc_dir;  /* a listing being built */

/* Start recording the listing of dir; NULL when out of memory (caching is best effort). */
struct dc_dir *dc_begin(const char *dir, int on_nfs);
/* Record one S3 entry of the merged listing. */
void dc_add(struct dc_dir *d, const char *name, const struct store_attr *attr);
/* Record one S3 entry as the old store's readdir delivered it (before the merge). */
void dc_add_raw(struct dc_dir *d, const struct store_dirent *de);
/* The S3 listing recorded by dc_add_raw ended with rc: 0 or -ENOENT make it complete
 * (dc_replay serves it); anything else leaves it unused. */
void dc_raw_done(struct dc_dir *d, int rc);

/* Publish (complete) or drop (abandoned: listing failed) the recording. */
void dc_commit(struct dc_dir *d);
void dc_abort(struct dc_dir *d);

/* What the cache knows of path, whose parent directory's listing may be cached:
 *   DC_MISS      nothing fresh: ask the stores
 *   DC_S3        the parent lists path as an S3 entry: *attr filled
 *   DC_ABSENT    the parent's S3 side does not have it (the new store may, if on_nfs)
 * *parent_on_nfs tells whether the parent exists on the new store (valid unless DC_MISS).
 * new_name: the lookup of a name about to be created, which may also be answered by a
 * lookup that just found nothing in S3 (dc_note_s3_absent). */
enum dc_answer { DC_MISS, DC_S3, DC_ABSENT };
enum dc_answer dc_lookup(const char *path, struct store_attr *attr, int *parent_on_nfs,
			 int new_name);

/* When a fresh listing of dir (younger than DC_TTL_S) recorded its S3 side, and dir was
 * then on the new store exactly when on_nfs says it is now: hand its S3 entries, as S3
 * delivered them, to fn (no lock held) and return what S3's readdir returned then (0 or
 * -ENOENT) or what fn returned. 1 when there is no such listing: list S3. */
int dc_replay(const char *dir, int on_nfs, store_dirent_fn fn, void *arg);

/* Remember that a lookup found path in S3 with attr (after whiteouts and opaque
 * directories were checked): answered as DC_S3 for DC_ONE_TTL_S. */
void dc_note_s3(const char *path, const struct store_attr *attr);

/* Remember that a lookup found nothing at path in S3 (no object, no key below it), unless
 * a change of path through the mount (dc_forget) came in between (pgen: dc_path_generation
 * read before the stores were asked): for DC_ONE_TTL_S, dc_lookup with new_name answers
 * DC_ABSENT (the new store still asked first). The kernel's LOOKUP of a new name and the
 * create's own lookup right after it then ask S3 once, not twice. Only the creates use it:
 * any other lookup asks S3 again, so that an object another host has just put in S3 shows
 * at once (S3 reads after writes). Whether to white out is never decided from here. */
void dc_note_s3_absent(const char *path, uint64_t pgen);

/* For the calling thread from now on: 1 = never answer from the cache (dc_lookup is always
 * DC_MISS, dc_replay 1, dc_off_nfs 0). For threads that change S3 from what they see (the
 * write-back: an object another host put in S3 a moment ago must not look absent, and be
 * deleted). */
void dc_bypass(int on);

/* Directories off the new store. dc_generation() is read before the new store is asked;
 * dc_note_off_nfs(dir, gen) then remembers that dir is not on the new store, unless a
 * change through the mount (dc_forget) came in between. dc_off_nfs(path): 1 when one of
 * path's proper ancestors (the root excepted) is remembered so, younger than DC_TTL_S. */
uint64_t dc_generation(void);
void dc_note_off_nfs(const char *dir, uint64_t gen);
int dc_off_nfs(const char *path);

/* A counter for path (shared with the paths of one hash slot) that dc_forget of path and
 * dc_clear move on, read with one atomic load and no lock: a file open on S3 compares it
 * before each read to learn that its path may have changed through the mount (fs.c). */
uint64_t dc_path_generation(const char *path);

/* Forget the listing of path's parent and of path itself and everything below it (and the
 * lookups of path and below, and what is off the new store at, below and above path). */
void dc_forget(const char *path);
void dc_clear(void);

#endif
