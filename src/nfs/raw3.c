/* nfs/raw3.c - NFSv3 LOOKUP and GETATTR by file handle (see raw3.h for why).
 *
 * A call queues one RPC on the context's rpc_context and services that connection until
 * the callback ran. libnfs guarantees the callback: success, error, timeout (libnfs's
 * per-call timeout, nfs_set_timeout, which the pool sets) or cancel (the context is
 * destroyed). The reply lives only during the callback, so the callback copies it into
 * a heap-allocated `struct call`; if the wait is ever given up (a safety deadline well
 * past libnfs's own timeout) the call is marked abandoned and the callback frees it
 * whenever libnfs finally runs it, so no callback ever writes into a dead stack frame. */
#include "nfs/raw3.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>


/* libnfs 4.0 declares nfs_get_fh() but keeps struct nfs_fh private; its layout (a length
 * and a pointer) is the same in every release that has nfs_get_fh. raw3_root checks what
 * it read (a plausible length) before trusting it. */
struct nfs_fh {
	int len;
	char *val;
};

enum { CALL_LOOKUP, CALL_GETATTR };

struct call {
	int kind;
	int done;
	int abandoned;
	int rc;                   /* 0 or -errno */
	struct raw3_fh fh;        /* LOOKUP: the object's handle */
	int have_attr;
	fattr3 attr;
};

int raw3_errno(int s)
{
	switch (s) {
	case NFS3_OK: return 0;
	case NFS3ERR_PERM: return -EPERM;
	case NFS3ERR_NOENT: return -ENOENT;
	case NFS3ERR_NXIO: return -ENXIO;
	case NFS3ERR_ACCES: return -EACCES;
	case NFS3ERR_EXIST: return -EEXIST;
	case NFS3ERR_XDEV: return -EXDEV;
	case NFS3ERR_NODEV: return -ENODEV;
	case NFS3ERR_NOTDIR: return -ENOTDIR;
	case NFS3ERR_ISDIR: return -EISDIR;
	case NFS3ERR_INVAL: return -EINVAL;
	case NFS3ERR_FBIG: return -EFBIG;
	case NFS3ERR_NOSPC: return -ENOSPC;
	case NFS3ERR_ROFS: return -EROFS;
	case NFS3ERR_MLINK: return -EMLINK;
	case NFS3ERR_NAMETOOLONG: return -ENAMETOOLONG;
	case NFS3ERR_NOTEMPTY: return -ENOTEMPTY;
	case NFS3ERR_DQUOT: return -EDQUOT;
	case NFS3ERR_STALE:
	case NFS3ERR_BADHANDLE: return -ESTALE;
	case NFS3ERR_NOTSUPP: return -ENOTSUP;
	case NFS3ERR_JUKEBOX: return -EAGAIN;
	default: return -EIO;
	}
}

static void copy_fh(struct raw3_fh *to, const nfs_fh3 *from, int *rc)
{
	if (from->data.data_len == 0 || from->data.data_len > RAW3_FH_MAX) {
		*rc = -EIO;   /* not a valid NFSv3 handle */
		return;
	}
	to->len = from->data.data_len;
	memcpy(to->data, from->data.data_val, to->len);
}

static void call_cb(struct rpc_context *rpc, int status, void *data, void *private_data)
{
	(void)rpc;
	struct call *c = private_data;
	if (c->abandoned) {
		free(c);
		return;
	}
	if (status == RPC_STATUS_SUCCESS && c->kind == CALL_LOOKUP) {
		LOOKUP3res *res = data;
		c->rc = raw3_errno(res->status);
		if (c->rc == 0) {
			copy_fh(&c->fh, &res->LOOKUP3res_u.resok.object, &c->rc);
			c->have_attr = res->LOOKUP3res_u.resok.obj_attributes.attributes_follow != 0;
			if (c->have_attr)
				c->attr = res->LOOKUP3res_u.resok.obj_attributes.post_op_attr_u.attributes;
		}
	} else if (status == RPC_STATUS_SUCCESS) {
		GETATTR3res *res = data;
		c->rc = raw3_errno(res->status);
		if (c->rc == 0) {
			c->have_attr = 1;
			c->attr = res->GETATTR3res_u.resok.obj_attributes;
		}
	} else if (status == RPC_STATUS_TIMEOUT) {
		c->rc = -ETIMEDOUT;
	} else {
		c->rc = -EIO;     /* the connection failed or the context is going away */
	}
	c->done = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Service the connection until c is done. Returns 0 with c done (its rc holds the
 * answer; the caller frees c), or a transport error with c abandoned (its callback frees
 * it later: the caller must not touch c again). */
static int wait_call(struct nfs_context *nfs, struct call *c)
{
	struct rpc_context *rpc = nfs_get_rpc_context(nfs);
	int timeout = nfs_get_timeout(nfs);
	int64_t give_up = now_ms() + (timeout > 0 ? 2 * (int64_t)timeout : 60000) + 5000;
	int rc = 0;
	while (!c->done) {
		struct pollfd pfd = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
		int n = pfd.fd < 0 ? -1 : poll(&pfd, 1, 100);
		if (pfd.fd < 0)
			rc = -ENOTCONN;
		else if (n < 0 && errno != EINTR)
			rc = -EIO;
		/* with no events, rpc_service still expires timed-out calls */
		else if (rpc_service(rpc, n > 0 ? pfd.revents : 0) < 0 && !c->done)
			rc = -EIO;
		else if (!c->done && now_ms() > give_up)
			rc = -ETIMEDOUT;
		if (rc) {
			c->abandoned = 1;
			return rc;
		}
	}
	return 0;
}

static void to_stat(const fattr3 *a, struct nfs_stat_64 *st)
{
	static const uint64_t type_bits[] = { 0, S_IFREG, S_IFDIR, S_IFBLK, S_IFCHR,
					      S_IFLNK, S_IFSOCK, S_IFIFO };
	memset(st, 0, sizeof(*st));
	st->nfs_dev = a->fsid;
	st->nfs_ino = a->fileid;
	st->nfs_mode = (a->type < 8 ? type_bits[a->type] : 0) | (a->mode & 07777);
	st->nfs_nlink = a->nlink;
	st->nfs_uid = a->uid;
	st->nfs_gid = a->gid;
	st->nfs_rdev = makedev(a->rdev.specdata1, a->rdev.specdata2);
	st->nfs_size = a->size;
	st->nfs_blksize = 4096;
	st->nfs_blocks = (a->used + 511) / 512;
	st->nfs_used = a->used;
	st->nfs_atime = a->atime.seconds;
	st->nfs_atime_nsec = a->atime.nseconds;
	st->nfs_mtime = a->mtime.seconds;
	st->nfs_mtime_nsec = a->mtime.nseconds;
	st->nfs_ctime = a->ctime.seconds;
	st->nfs_ctime_nsec = a->ctime.nseconds;
}

/* Queue the call (args already encoded by `queue`) and wait for it. */
static int run_call(struct nfs_context *nfs, struct call *c, int queued)
{
	if (queued != 0) {
		free(c);   /* not queued: the callback will not run */
		return -EIO;
	}
	return wait_call(nfs, c);
}

int raw3_lookup(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
		struct raw3_fh *out, struct nfs_stat_64 *st, int *have_attr)
{
	struct call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->kind = CALL_LOOKUP;
	LOOKUP3args args;
	memset(&args, 0, sizeof(args));
	args.what.dir.data.data_len = dir->len;
	args.what.dir.data.data_val = (char *)dir->data;
	args.what.name = (char *)name;
	int rc = run_call(nfs, c, rpc_nfs3_lookup_async(nfs_get_rpc_context(nfs), call_cb, &args, c));
	if (rc)
		return rc;     /* c is freed or abandoned */
	rc = c->rc;
	if (rc == 0) {
		*out = c->fh;
		*have_attr = c->have_attr;
		if (c->have_attr)
			to_stat(&c->attr, st);
	}
	free(c);
	return rc;
}

int raw3_getattr(struct nfs_context *nfs, const struct raw3_fh *fh, struct nfs_stat_64 *st)
{
	struct call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->kind = CALL_GETATTR;
	GETATTR3args args;
	memset(&args, 0, sizeof(args));
	args.object.data.data_len = fh->len;
	args.object.data.data_val = (char *)fh->data;
	int rc = run_call(nfs, c, rpc_nfs3_getattr_async(nfs_get_rpc_context(nfs), call_cb, &args, c));
	if (rc)
		return rc;
	rc = c->rc;
	if (rc == 0)
		to_stat(&c->attr, st);
	free(c);
	return rc;
}

int raw3_root(struct nfs_context *nfs, struct raw3_fh *out)
{
	struct nfsfh *f;
	int rc = nfs_open(nfs, "/", O_RDONLY, &f);
	if (rc)
		return rc < 0 ? rc : -EIO;
	const struct nfs_fh *h = nfs_get_fh(f);
	rc = -EPROTO;
	if (h && h->len > 0 && h->len <= RAW3_FH_MAX && h->val) {
		out->len = (uint32_t)h->len;
		memcpy(out->data, h->val, out->len);
		rc = 0;
	}
	nfs_close(nfs, f);
	return rc;
}
