/* nfs/fhcache.h - directory file handles by path, so that an NFSv3 lookup of a/b/c is one
 * LOOKUP of c in the cached handle of a/b (nfs/raw3.h) instead of a walk from the root.
 *
 * A fixed table, direct-mapped by a hash of the path (a collision replaces the older
 * entry), each entry valid for ttl_ms. What can go stale: another host renames or
 * removes a directory; the cached handle then still names the moved directory (lookups
 * under the old path answer from it for at most ttl_ms, the same window as the kernel's
 * entry cache) or the removed one (the server answers ESTALE, the caller forgets the entry
 * and walks again). This host's own renames and rmdirs forget their subtree at once.
 *
 * Locking: one mutex protects the table; it is a leaf (nothing is called with it held). */
#ifndef FERRY_NFS_FHCACHE_H
#define FERRY_NFS_FHCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "nfs/raw3.h"

struct fhc;

/* slots: table size (rounded up to a power of two); ttl_ms: life of an entry. */
int fhc_new(unsigned slots, unsigned ttl_ms, struct fhc **out);
void fhc_destroy(struct fhc *c);
/* The handle of directory path[0..len) if cached and fresh at now_ms: 0 and *fh, else
 * -ENOENT. */
int fhc_get(struct fhc *c, const char *path, size_t len, int64_t now_ms, struct raw3_fh *fh);
/* Remember directory path[0..len) -> fh from now_ms on. */
void fhc_put(struct fhc *c, const char *path, size_t len, const struct raw3_fh *fh, int64_t now_ms);
/* Forget path and every path below it. */
void fhc_forget(struct fhc *c, const char *path);
/* Lookups answered from the cache / entries stored, for tests and stats. */
void fhc_counts(struct fhc *c, uint64_t *hits, uint64_t *puts);

#endif
