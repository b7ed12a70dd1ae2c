/* nfs/raw3.h - NFSv3 calls by file handle, on a context the caller holds.
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

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

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

/* Attributes to set (SETATTR, CREATE, MKDIR): only the fields whose RAW3_SET_* bit is
 * in `set`. A time whose tv_nsec is UTIME_NOW is set to the server's clock. */
struct raw3_sattr {
	unsigned set;
	uint32_t mode, uid, gid;
	uint64_t size;
	struct timespec atime, mtime;
};
#define RAW3_SET_MODE  0x01u
#define RAW3_SET_UID   0x02u
#define RAW3_SET_GID   0x04u
#define RAW3_SET_SIZE  0x08u
#define RAW3_SET_ATIME 0x10u
#define RAW3_SET_MTIME 0x20u

/* The calls below have raw3_lookup's returns; st/have_attr (either may be NULL) get
 * the object's attributes when the reply carried them. */

/* CREATE name in dir, GUARDED (EEXIST when the name exists, atomically on the server),
 * with the attributes sa; *out: the new file's handle. */
int raw3_create(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
		const struct raw3_sattr *sa, struct raw3_fh *out, struct nfs_stat_64 *st,
		int *have_attr);
int raw3_mkdir(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
	       const struct raw3_sattr *sa, struct raw3_fh *out, struct nfs_stat_64 *st,
	       int *have_attr);
/* SYMLINK name in dir pointing at target (up to 4095 bytes: libnfs's own call encodes
 * requests into 4 KiB and fails a longer target with ENOMEM). -ENAMETOOLONG when the
 * request cannot be built. */
int raw3_symlink(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
		 const char *target, struct raw3_fh *out, struct nfs_stat_64 *st, int *have_attr);
int raw3_remove(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name);
int raw3_rmdir(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name);
int raw3_rename(struct nfs_context *nfs, const struct raw3_fh *fdir, const char *fname,
		const struct raw3_fh *tdir, const char *tname);
int raw3_link(struct nfs_context *nfs, const struct raw3_fh *fh, const struct raw3_fh *dir,
	      const char *name);
/* SETATTR; st gets the attributes after it. */
int raw3_setattr(struct nfs_context *nfs, const struct raw3_fh *fh, const struct raw3_sattr *sa,
		 struct nfs_stat_64 *st, int *have_attr);
/* COMMIT the whole file; *verf: the server's write verifier (a different one than the
 * WRITEs got means the server restarted and unstable data may be lost). */
int raw3_commit(struct nfs_context *nfs, const struct raw3_fh *fh, uint64_t *verf);
/* READ len bytes at off in pieces of `chunk` (0: 1 MiB), several in flight: the bytes
 * read (fewer at the end of the file: *eof), or -errno when nothing was read. */
ssize_t raw3_read(struct nfs_context *nfs, const struct raw3_fh *fh, void *buf, size_t len,
		  uint64_t off, size_t chunk, int *eof);
/* WRITE the same way; stable: 0 UNSTABLE, 1 DATA_SYNC, 2 FILE_SYNC; *verf: the write
 * verifier of the last reply. The bytes written, or -errno when none were. */
ssize_t raw3_write(struct nfs_context *nfs, const struct raw3_fh *fh, const void *buf,
		   size_t len, uint64_t off, size_t chunk, int stable, uint64_t *verf);

/* An nfsstat3 as a negative errno (exposed for the unit tests). */
int raw3_errno(int nfsstat3);

#endif
