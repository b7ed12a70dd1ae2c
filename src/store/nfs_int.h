/* store/nfs_int.h - what the NFS store's files share: the store and open-file structures,
 * the argument block of the path operations, the helpers and NFSv3 by-handle resolution
 * (nfs_handle.c) and the namespace operations (nfs_ns.c) that nfs.c's store table names.
 * Private to src/store/: store_nfs_new (store.h) stays the one public entry.
 */
#ifndef FERRY_STORE_NFS_INT_H
#define FERRY_STORE_NFS_INT_H

#include "store/store.h"

#include <limits.h>
#include <nfsc/libnfs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/time.h>

#include "base/cfg.h"
#include "nfs/fhcache.h"
#include "nfs/pool.h"
#include "nfs/raw3.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define NFS_CHUNK (1u << 20)  /* read_stream and put move data in 1 MiB calls */
/* libnfs 4.0's NFSv4 client reports no readmax/writemax, fails READs over 1 MiB (EIO)
 * and cannot encode a WRITE compound over ~3.9 KiB ("Failed to encode COMPOUND4args"):
 * v4 writes go in pieces of V4_WMAX, with room to spare for the largest filehandle. */
#define V4_WMAX 3072u

struct nfs_store {
	struct store base;
	const struct ferry_config *cfg;
	struct nfsp_pool *pool;
	atomic_uint tmpseq;       /* names of put's temporary files */
	int v4;                   /* NFSv4: work around libnfs 4.0's v4 gaps (V4_WMAX, nst_v4_*) */
	/* NFSv3 stat in one round trip (see "STAT" in nfs_handle.c) */
	struct fhc *fhc;          /* directory handles by path; NULL for v4 */
	pthread_mutex_t root_lock; /* protects root and root_state */
	struct raw3_fh root;
	int root_state;           /* 0: not known yet, 1: root valid, -1: use libnfs's walk */
};

#define FHC_SLOTS 8192
#define FHC_TTL_MS 2000

struct fslot {
	struct nfsfh *fh;         /* NULL: not open on this context */
	uint64_t gen;             /* the context generation fh belongs to */
};

struct store_file {
	char *path;
	int oflags;               /* flags for opens on further contexts (no CREAT/EXCL/TRUNC) */
	int append;               /* O_APPEND: every write goes to the current end */
	unsigned home;            /* the context the file was opened on */
	uint64_t ino;             /* fileid, to recognise the file when reopening by path */
	atomic_int dirty;         /* written since the last COMMIT */
	pthread_mutex_t append_lock; /* O_APPEND writes one at a time (size lookup + write) */
	/* NFSv3 by handle (raw): the file's handle serves every context, slots are unused */
	int raw;
	struct raw3_fh fh;
	atomic_uint_least64_t wverf; /* the write verifier of the last UNSTABLE WRITE */
	atomic_int verf_seen;     /* wverf holds one */
	atomic_int verf_changed;  /* two WRITEs got different verifiers (server restarted) */
	unsigned nslots;
	struct fslot slot[];      /* slot[i] is touched only by the holder of context i */
};

#define NST(st) ((struct nfs_store *)(st))

/* One argument block for the small path operations (nfs_ns.c). */
struct op {
	struct nfs_store *ns;
	int v4;
	const char *path, *path2;
	int flags;
	uint32_t mode;
	uint32_t uid, gid;
	uint64_t u64;
	struct store_attr *attr;
	struct statvfs *svfs;
	struct timeval tv[2];
	int tv_null;
	struct raw3_sattr sa;     /* NFSv3 by handle: utimens's times */
	int refused;              /* the server ignored sa's times (a symlink's) */
	char *buf;
	size_t len;
	ssize_t result;
};

/* ---- helpers and NFSv3 by handle (nfs_handle.c describes each) ---- */

static inline int nst_is_root(const char *p) { return p[0] == '/' && p[1] == '\0'; }
void nst_attr_from_stat(const struct nfs_stat_64 *s, struct store_attr *a);
/* NF3 file types (NF3REG = 1 ... NF3FIFO = 7) as S_IF* bits. */
uint32_t nst_nf3_type(uint32_t t);
/* After a failed NFSv4 OPEN the context is discarded; returns rc. */
int nst_v4_open_failed(struct nfsp_conn *c, int rc);
int64_t nst_mono_ms(void);
/* 1 when path is too long for libnfs 4.0's NFSv4 encoding (the caller returns
 * -ENAMETOOLONG), else 0. */
int nst_v4_too_long(struct store *st, const char *path);
int nst_v3_resolve(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		   struct raw3_fh *fh, struct nfs_stat_64 *st);
int nst_v3_stat(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		struct nfs_stat_64 *st);
int nst_v3_parent(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		  struct raw3_fh *dir, const char **name);
void nst_v3_forget_parent(struct nfs_store *ns, const char *path);
int nst_v3_raw(struct nfs_store *ns, struct nfsp_conn *c);

/* ---- namespace operations (nfs_ns.c), as store.h describes them ---- */

int nfs_st_stat(struct store *st, const char *path, struct store_attr *out);
int nfs_st_readdir(struct store *st, const char *path, store_dirent_fn fn, void *arg);
int nfs_st_statfs(struct store *st, const char *path, struct statvfs *out);
int nfs_st_mkdir(struct store *st, const char *path, uint32_t mode);
int nfs_st_rmdir(struct store *st, const char *path);
int nfs_st_unlink(struct store *st, const char *path);
int nfs_st_rename(struct store *st, const char *from, const char *to, unsigned flags);
int nfs_st_link(struct store *st, const char *from, const char *to);
int nfs_st_symlink(struct store *st, const char *target, const char *path);
ssize_t nfs_st_readlink(struct store *st, const char *path, char *buf, size_t size);
int nfs_st_mknod(struct store *st, const char *path, uint32_t mode, uint64_t rdev);
int nfs_st_chmod(struct store *st, const char *path, uint32_t mode);
int nfs_st_chown(struct store *st, const char *path, uint32_t uid, uint32_t gid);
int nfs_st_truncate(struct store *st, const char *path, uint64_t size);
int nfs_st_utimens(struct store *st, const char *path, const struct timespec tv[2]);

#endif
