/* nfs/raw3.h - NFSv3 LOOKUP and GETATTR by file handle, on a context the caller holds.
 *
 * libnfs 4.0 resolves every path from the export root, one LOOKUP per component, and
 * then sends a GETATTR: a stat of a/b/c costs four round trips. With the handle of the
 * parent directory at hand (nfs/fhcache.h) a stat is one LOOKUP, whose reply carries the
 * object's attributes. These calls speak the raw protocol on the context's own RPC
 * connection and wait for the reply the way libnfs's sync calls do (poll + rpc_service,
 * libnfs's per-call timeout), so the context stays usable for libnfs's own calls.
 *
 * Thread safety: none of its own; the caller holds the pooled context (nfs/pool.h). */
#ifndef FERRY_NFS_RAW3_H
#define FERRY_NFS_RAW3_H

#include <stdint.h>

struct nfs_context;
struct nfs_stat_64;

#define RAW3_FH_MAX 64 /* NFSv3 handles are at most 64 bytes (RFC 1813) */

struct raw3_fh {
	uint32_t len;
	unsigned char data[RAW3_FH_MAX];
};

/* The handle of the directory the context mounted (the export plus the URL's SUB).
 * 0, -errno. */
int raw3_root(struct nfs_context *nfs, struct raw3_fh *out);

/* LOOKUP name in dir: *out gets the object's handle and, when the server sent them
 * (*have_attr = 1), st its attributes. 0, -ENOENT/-ENOTDIR/-ESTALE/... (the server's
 * answer as an errno), or a transport error (-EIO, -ETIMEDOUT: see
 * nfsp_is_transport_error) after which the context must be reconnected. */
int raw3_lookup(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
		struct raw3_fh *out, struct nfs_stat_64 *st, int *have_attr);

/* GETATTR of fh. Same returns as raw3_lookup. */
int raw3_getattr(struct nfs_context *nfs, const struct raw3_fh *fh, struct nfs_stat_64 *st);

/* An nfsstat3 as a negative errno (exposed for the unit tests). */
int raw3_errno(int nfsstat3);

#endif
