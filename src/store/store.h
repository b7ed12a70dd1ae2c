/* store.h - the store interface: one table of operations (in the style of redis's
 * ConnectionType) and three implementations, one table each:
 *   store/s3.c     the old store, S3, through src/s3/ (SigV4 over libcurl)
 *   store/nfs.c    the new store through libnfs (a pool of nfs_contexts, src/nfs/);
 *                  its namespace operations in nfs_ns.c, helpers in nfs_handle.c
 *   store/local.c  the new store as a local directory (an export the kernel already mounts)
 *
 * Paths are relative to the mount root: they begin with '/', "/" is the root, and they
 * never hold empty, "." or ".." segments (callers guarantee it; implementations check it
 * anyway and return -EINVAL). Every operation returns 0 / -errno, or a count (ssize_t).
 *
 * Thread safety: every implementation is safe to call from any number of threads at once.
 * A store_file belongs to its store and may be used by several threads at once for
 * pread/pwrite (FUSE may issue parallel reads on one handle).
 *
 * An operation an implementation cannot do is NULL in its table; the dispatchers below
 * then return -ENOTSUP (S3 has no chmod, symlink, link, ...). */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

struct ferry_config;
struct store;
struct store_file;

#define STORE_ETAG_MAX 80

/* What a store knows about one path. */
struct store_attr {
	uint32_t mode;            /* type and permission bits (S_IFREG | 0644, ...) */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t size;
	uint64_t ino;             /* the store's own file id (NFS fileid, local st_ino); 0 for S3 */
	uint64_t rdev;
	uint64_t blocks;          /* 512-byte blocks */
	struct timespec atime, mtime, ctime;
	unsigned have;            /* STORE_HAVE_*: which values the store itself held */
	char etag[STORE_ETAG_MAX];/* S3: the ETag without quotes; "" elsewhere */
};
/* For S3 objects: which of mode/uid/gid/mtime came from x-amz-meta-* (else defaults from
 * the configuration and LastModified). NFS and local set all of them. */
#define STORE_HAVE_MODE  0x1u
#define STORE_HAVE_UID   0x2u
#define STORE_HAVE_GID   0x4u
#define STORE_HAVE_MTIME 0x8u
#define STORE_HAVE_ALL   0xfu
/* S3 directories: the directory exists only because keys lie under it (no marker object). */
#define STORE_IMPLIED_DIR 0x10u

/* One directory entry delivered by readdir. name is one NUL-terminated segment as the
 * store holds it: S3 may deliver names that are not POSIX names (empty, "..", over 255
 * bytes); the caller (src/view/route.c) filters them with src/base/naming.c. */
struct store_dirent {
	const char *name;
	uint32_t type;                 /* S_IFREG, S_IFDIR, S_IFLNK, ... (0 when unknown) */
	const struct store_attr *attr; /* NULL when the listing carries none */
};
/* Called once per entry; return 0 to go on, anything else to stop (readdir returns it). */
typedef int (*store_dirent_fn)(void *arg, const struct store_dirent *de);

/* Streaming sink for store_read_stream: called with consecutive chunks. Return 0 to go
 * on, -errno to abort the transfer (the stream returns that value). */
typedef int (*store_sink_fn)(void *arg, const void *data, size_t len);

/* A body source for store_put: positional reads so that parts can be read in parallel.
 * read returns a count (short only at end of data) or -errno. */
struct store_source {
	uint64_t size;
	ssize_t (*read)(void *arg, void *buf, size_t len, uint64_t off);
	void *arg;
	/* metadata to store with the object (S3: x-amz-meta-mode/uid/gid/mtime) */
	uint32_t mode;
	uint32_t uid, gid;
	struct timespec mtime;
	int have_meta;            /* 0: store no metadata */
};

/* open() flags are the O_* flags of open(2). For S3 only O_RDONLY is supported: the
 * handle is pinned to the ETag seen at open; a later read of a replaced object gives
 * -ESTALE. `expect_etag`, when non-NULL and non-empty, makes the open fail with -ESTALE
 * unless the object still has that ETag (S3) and is ignored by other stores. */
/* S3 only: open sends nothing (a plain open GETs the first 64 KiB to pin the object).
 * The handle learns the object's attributes from the response of its first read_stream
 * from offset 0: a copy of a whole object is one GET, whatever its size. Any other first
 * use (fstat, pread, a ranged stream) HEADs first. The expect_etag pin applies as for a
 * plain open, checked by that first request. */
#define STORE_O_LAZY 0x40000000

struct store_ops {
	const char *name;                       /* "s3", "nfs", "local" */
	void (*destroy)(struct store *st);

	int (*stat)(struct store *st, const char *path, struct store_attr *out);  /* lstat */
	int (*readdir)(struct store *st, const char *path, store_dirent_fn fn, void *arg);
	int (*statfs)(struct store *st, const char *path, struct statvfs *out);

	int (*open)(struct store *st, const char *path, int flags, uint32_t mode,
		    const char *expect_etag, struct store_file **out);
	int (*fstat)(struct store *st, struct store_file *f, struct store_attr *out);
	ssize_t (*pread)(struct store *st, struct store_file *f, void *buf, size_t len,
			 uint64_t off);
	ssize_t (*pwrite)(struct store *st, struct store_file *f, const void *buf, size_t len,
			  uint64_t off);
	/* Deliver [off, off+len) to sink as it arrives (len UINT64_MAX: to the end). */
	int (*read_stream)(struct store *st, struct store_file *f, uint64_t off, uint64_t len,
			   store_sink_fn sink, void *arg);
	int (*ftruncate)(struct store *st, struct store_file *f, uint64_t size);
	/* fallocate(2) of an open file, mode 0 or FALLOC_FL_KEEP_SIZE; NULL (-EOPNOTSUPP) where
	 * the protocol has no such call (NFSv3; NFSv4.2's ALLOCATE is not in libnfs). */
	int (*fallocate)(struct store *st, struct store_file *f, int mode, uint64_t off,
			 uint64_t len);
	/* Set the attributes of an open file named by `which` (STORE_HAVE_MODE, _UID, _GID,
	 * _MTIME: the access time too) in one call; *out (NULL: not wanted) gets the file's
	 * attributes after. Where a store cannot, -ENOTSUP: use the path calls. */
	int (*fsetattr)(struct store *st, struct store_file *f, const struct store_attr *a,
			unsigned which, struct store_attr *out);
	int (*fsync)(struct store *st, struct store_file *f, int datasync);
	int (*close)(struct store *st, struct store_file *f);

	/* Whole-object write (S3: PUT or multipart upload; others: write via a temp name
	 * and rename). */
	int (*put)(struct store *st, const char *path, const struct store_source *src);

	int (*mkdir)(struct store *st, const char *path, uint32_t mode);
	int (*rmdir)(struct store *st, const char *path);
	int (*unlink)(struct store *st, const char *path);
	/* flags: 0 or RENAME_NOREPLACE / RENAME_EXCHANGE as for renameat2(2). */
	int (*rename)(struct store *st, const char *from, const char *to, unsigned flags);
	int (*link)(struct store *st, const char *from, const char *to);
	int (*symlink)(struct store *st, const char *target, const char *path);
	/* Writes at most size-1 bytes and a NUL; returns the length of the target. */
	ssize_t (*readlink)(struct store *st, const char *path, char *buf, size_t size);
	int (*mknod)(struct store *st, const char *path, uint32_t mode, uint64_t rdev);
	int (*chmod)(struct store *st, const char *path, uint32_t mode);
	int (*chown)(struct store *st, const char *path, uint32_t uid, uint32_t gid);
	/* tv[0] atime, tv[1] mtime; tv_nsec UTIME_NOW / UTIME_OMIT honoured. */
	int (*utimens)(struct store *st, const char *path, const struct timespec tv[2]);
	int (*truncate)(struct store *st, const char *path, uint64_t size);

	ssize_t (*getxattr)(struct store *st, const char *path, const char *name, void *buf,
			    size_t size);
	int (*setxattr)(struct store *st, const char *path, const char *name, const void *buf,
			size_t size, int flags);
	ssize_t (*listxattr)(struct store *st, const char *path, char *buf, size_t size);
	int (*removexattr)(struct store *st, const char *path, const char *name);

	/* Check that the store answers (mount time): 0, or -errno with a message logged. */
	int (*probe)(struct store *st);
};

/* Every implementation's struct begins with this. */
struct store {
	const struct store_ops *ops;
};

/* Constructors, one per implementation. Each reads what it needs from cfg (which must
 * outlive the store). 0 / -errno; on error a one-line cause is logged. */
int store_s3_new(const struct ferry_config *cfg, struct store **out);
int store_nfs_new(const struct ferry_config *cfg, struct store **out);
int store_local_new(const struct ferry_config *cfg, struct store **out);
/* The new store named by cfg->nfs: store_local_new for an absolute path, else store_nfs_new. */
int store_new_nfs_side(const struct ferry_config *cfg, struct store **out);

/* 1 when path is one the new store's implementations (nfs.c, local.c) accept: it begins
 * with '/', is shorter than PATH_MAX, and holds no empty, "." or ".." segment nor one
 * longer than NAME_MAX; else 0. */
int store_path_ok(const char *path);

static inline void store_destroy(struct store *st)
{
	if (st)
		st->ops->destroy(st);
}

#define STORE_CALL(st, op, ...) ((st)->ops->op ? (st)->ops->op((st), __VA_ARGS__) : -ENOTSUP)

static inline int store_stat(struct store *st, const char *p, struct store_attr *a)
{
	return STORE_CALL(st, stat, p, a);
}
static inline int store_readdir(struct store *st, const char *p, store_dirent_fn fn, void *arg)
{
	return STORE_CALL(st, readdir, p, fn, arg);
}
static inline int store_statfs(struct store *st, const char *p, struct statvfs *o)
{
	return STORE_CALL(st, statfs, p, o);
}
static inline int store_open(struct store *st, const char *p, int flags, uint32_t mode,
			     const char *etag, struct store_file **out)
{
	return STORE_CALL(st, open, p, flags, mode, etag, out);
}
static inline int store_fstat(struct store *st, struct store_file *f, struct store_attr *a)
{
	return STORE_CALL(st, fstat, f, a);
}
static inline ssize_t store_pread(struct store *st, struct store_file *f, void *b, size_t n,
				  uint64_t off)
{
	return STORE_CALL(st, pread, f, b, n, off);
}
static inline ssize_t store_pwrite(struct store *st, struct store_file *f, const void *b, size_t n,
				   uint64_t off)
{
	return STORE_CALL(st, pwrite, f, b, n, off);
}
static inline int store_read_stream(struct store *st, struct store_file *f, uint64_t off,
				    uint64_t len, store_sink_fn fn, void *arg)
{
	return STORE_CALL(st, read_stream, f, off, len, fn, arg);
}
static inline int store_ftruncate(struct store *st, struct store_file *f, uint64_t size)
{
	return STORE_CALL(st, ftruncate, f, size);
}
static inline int store_fallocate(struct store *st, struct store_file *f, int mode, uint64_t off,
				  uint64_t len)
{
	return STORE_CALL(st, fallocate, f, mode, off, len);
}
static inline int store_fsetattr(struct store *st, struct store_file *f, const struct store_attr *a,
				 unsigned which, struct store_attr *out)
{
	return STORE_CALL(st, fsetattr, f, a, which, out);
}
static inline int store_fsync(struct store *st, struct store_file *f, int datasync)
{
	return STORE_CALL(st, fsync, f, datasync);
}
static inline int store_close(struct store *st, struct store_file *f)
{
	return STORE_CALL(st, close, f);
}
static inline int store_put(struct store *st, const char *p, const struct store_source *src)
{
	return STORE_CALL(st, put, p, src);
}
static inline int store_mkdir(struct store *st, const char *p, uint32_t mode)
{
	return STORE_CALL(st, mkdir, p, mode);
}
static inline int store_rmdir(struct store *st, const char *p) { return STORE_CALL(st, rmdir, p); }
static inline int store_unlink(struct store *st, const char *p)
{
	return STORE_CALL(st, unlink, p);
}
static inline int store_rename(struct store *st, const char *a, const char *b, unsigned flags)
{
	return STORE_CALL(st, rename, a, b, flags);
}
static inline int store_link(struct store *st, const char *a, const char *b)
{
	return STORE_CALL(st, link, a, b);
}
static inline int store_symlink(struct store *st, const char *target, const char *p)
{
	return STORE_CALL(st, symlink, target, p);
}
static inline ssize_t store_readlink(struct store *st, const char *p, char *buf, size_t n)
{
	return STORE_CALL(st, readlink, p, buf, n);
}
static inline int store_mknod(struct store *st, const char *p, uint32_t mode, uint64_t rdev)
{
	return STORE_CALL(st, mknod, p, mode, rdev);
}
static inline int store_chmod(struct store *st, const char *p, uint32_t mode)
{
	return STORE_CALL(st, chmod, p, mode);
}
static inline int store_chown(struct store *st, const char *p, uint32_t uid, uint32_t gid)
{
	return STORE_CALL(st, chown, p, uid, gid);
}
static inline int store_utimens(struct store *st, const char *p, const struct timespec tv[2])
{
	return STORE_CALL(st, utimens, p, tv);
}
static inline int store_truncate(struct store *st, const char *p, uint64_t size)
{
	return STORE_CALL(st, truncate, p, size);
}
static inline ssize_t store_getxattr(struct store *st, const char *p, const char *n, void *b,
				     size_t s)
{
	return STORE_CALL(st, getxattr, p, n, b, s);
}
static inline int store_setxattr(struct store *st, const char *p, const char *n, const void *b,
				 size_t s, int fl)
{
	return STORE_CALL(st, setxattr, p, n, b, s, fl);
}
static inline ssize_t store_listxattr(struct store *st, const char *p, char *b, size_t s)
{
	return STORE_CALL(st, listxattr, p, b, s);
}
static inline int store_removexattr(struct store *st, const char *p, const char *n)
{
	return STORE_CALL(st, removexattr, p, n);
}
static inline int store_probe(struct store *st) { return st->ops->probe ? st->ops->probe(st) : 0; }

#endif
