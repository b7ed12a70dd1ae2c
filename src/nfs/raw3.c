/* nfs/raw3.c - NFSv3 calls by file handle (see raw3.h for why).
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
#include <unistd.h>

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

enum { CALL_LOOKUP, CALL_GETATTR, CALL_STATUS, CALL_NEWOBJ, CALL_SETATTR, CALL_READ,
       CALL_WRITE, CALL_COMMIT };

/* One call in flight. CALL_STATUS: REMOVE, RMDIR, RENAME, LINK (only the status is
 * used); CALL_NEWOBJ: CREATE, MKDIR (a handle and attributes may follow). */
struct call {
	int kind;
	int done;
	int abandoned;
	int rc;                   /* 0 or -errno */
	struct raw3_fh fh;        /* LOOKUP, CREATE, MKDIR: the object's handle */
	int have_fh;
	int have_attr;
	fattr3 attr;
	char *rbuf;               /* READ: where the data goes (at most rlen bytes) */
	uint32_t rlen;
	uint32_t count;           /* READ, WRITE: bytes done */
	int eof;                  /* READ: the reply said end of file */
	int committed;            /* WRITE: the stable_how the server used */
	uint64_t verf;            /* WRITE, COMMIT: the server's write verifier */
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

static void post_attr(struct call *c, const post_op_attr *a)
{
	c->have_attr = a->attributes_follow != 0;
	if (c->have_attr)
		c->attr = a->post_op_attr_u.attributes;
}

static uint64_t verf64(const char *v)
{
	uint64_t x;
	memcpy(&x, v, sizeof(x));
	return x;
}

static void call_cb(struct rpc_context *rpc, int status, void *data, void *private_data)
{
	(void)rpc;
	struct call *c = private_data;
	if (c->abandoned) {
		free(c);
		return;
	}
	if (status == RPC_STATUS_TIMEOUT) {
		c->rc = -ETIMEDOUT;
		goto done;
	}
	if (status != RPC_STATUS_SUCCESS) {
		c->rc = -EIO;     /* the connection failed or the context is going away */
		goto done;
	}
	/* every NFSv3 result begins with its nfsstat3 */
	c->rc = raw3_errno(*(const nfsstat3 *)data);
	switch (c->kind) {
	case CALL_LOOKUP: {
		LOOKUP3res *res = data;
		if (c->rc == 0) {
			copy_fh(&c->fh, &res->LOOKUP3res_u.resok.object, &c->rc);
			c->have_fh = 1;
			post_attr(c, &res->LOOKUP3res_u.resok.obj_attributes);
		}
		break;
	}
	case CALL_GETATTR: {
		GETATTR3res *res = data;
		if (c->rc == 0) {
			c->have_attr = 1;
			c->attr = res->GETATTR3res_u.resok.obj_attributes;
		}
		break;
	}
	case CALL_NEWOBJ: {
		/* CREATE3resok and MKDIR3resok have the same layout */
		CREATE3res *res = data;
		if (c->rc == 0) {
			post_op_fh3 *h = &res->CREATE3res_u.resok.obj;
			if (h->handle_follows) {
				copy_fh(&c->fh, &h->post_op_fh3_u.handle, &c->rc);
				c->have_fh = c->rc == 0;
				c->rc = 0;      /* a bad handle is looked up again by the caller */
			}
			post_attr(c, &res->CREATE3res_u.resok.obj_attributes);
		}
		break;
	}
	case CALL_SETATTR: {
		SETATTR3res *res = data;
		if (c->rc == 0)
			post_attr(c, &res->SETATTR3res_u.resok.obj_wcc.after);
		break;
	}
	case CALL_READ: {
		READ3res *res = data;
		if (c->rc == 0) {
			READ3resok *ok = &res->READ3res_u.resok;
			uint32_t n = ok->data.data_len < ok->count ? ok->data.data_len : ok->count;
			if (n > c->rlen)
				n = c->rlen;
			memcpy(c->rbuf, ok->data.data_val, n);
			c->count = n;
			c->eof = ok->eof != 0;
			post_attr(c, &ok->file_attributes);
		}
		break;
	}
	case CALL_WRITE: {
		WRITE3res *res = data;
		if (c->rc == 0) {
			c->count = res->WRITE3res_u.resok.count;
			c->committed = res->WRITE3res_u.resok.committed;
			c->verf = verf64(res->WRITE3res_u.resok.verf);
			post_attr(c, &res->WRITE3res_u.resok.file_wcc.after);
		}
		break;
	}
	case CALL_COMMIT: {
		COMMIT3res *res = data;
		if (c->rc == 0)
			c->verf = verf64(res->COMMIT3res_u.resok.verf);
		break;
	}
	default:
		break;
	}
done:
	c->done = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Service the connection until every call of v[0..n) is done. Returns 0 with all done
 * (their rc hold the answers; the caller frees them), or a transport error: then the
 * calls not done are abandoned (their callbacks free them later), the done ones are
 * freed here, and the caller must not touch any of them again. */
static int wait_calls(struct nfs_context *nfs, struct call **v, size_t n)
{
	struct rpc_context *rpc = nfs_get_rpc_context(nfs);
	int timeout = nfs_get_timeout(nfs);
	int64_t give_up = now_ms() + (timeout > 0 ? 2 * (int64_t)timeout : 60000) + 5000;
	int rc = 0;
	for (;;) {
		/* (calls complete in any order) */
		size_t pending = 0;
		for (size_t i = 0; i < n; i++)
			pending += !v[i]->done;
		if (!pending)
			return 0;
		struct pollfd pfd = { .fd = rpc_get_fd(rpc),
				      .events = (short)rpc_which_events(rpc) };
		int k = pfd.fd < 0 ? -1 : poll(&pfd, 1, 100);
		if (pfd.fd < 0)
			rc = -ENOTCONN;
		else if (k < 0 && errno != EINTR)
			rc = -EIO;
		/* with no events, rpc_service still expires timed-out calls */
		else if (rpc_service(rpc, k > 0 ? pfd.revents : 0) < 0)
			rc = -EIO;
		else if (now_ms() > give_up)
			rc = -ETIMEDOUT;
		if (rc)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i]->done)
			free(v[i]);
		else
			v[i]->abandoned = 1;
	}
	return rc;
}

static int wait_call(struct nfs_context *nfs, struct call *c)
{
	return wait_calls(nfs, &c, 1);
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
	int rc = run_call(nfs, c,
			  rpc_nfs3_lookup_async(nfs_get_rpc_context(nfs), call_cb, &args, c));
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
	int rc = run_call(nfs, c,
			  rpc_nfs3_getattr_async(nfs_get_rpc_context(nfs), call_cb, &args, c));
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

/* ---- the rest of the protocol: namespace changes, attributes, data ---- */

static struct call *new_call(int kind)
{
	struct call *c = calloc(1, sizeof(*c));
	if (c)
		c->kind = kind;
	return c;
}

static void set_fh3(nfs_fh3 *to, const struct raw3_fh *fh)
{
	to->data.data_len = fh->len;
	to->data.data_val = (char *)fh->data;
}

static void set_diropargs(diropargs3 *to, const struct raw3_fh *dir, const char *name)
{
	set_fh3(&to->dir, dir);
	to->name = (char *)name;
}

static void set_time(time_how *how, nfstime3 *t, const struct timespec *ts)
{
	if (ts->tv_nsec == UTIME_NOW) {
		*how = SET_TO_SERVER_TIME;
	} else {
		*how = SET_TO_CLIENT_TIME;
		t->seconds = (u_int)ts->tv_sec;
		t->nseconds = (u_int)ts->tv_nsec;
	}
}

static void set_sattr(sattr3 *to, const struct raw3_sattr *sa)
{
	memset(to, 0, sizeof(*to));
	if (!sa)
		return;
	if (sa->set & RAW3_SET_MODE) {
		to->mode.set_it = 1;
		to->mode.set_mode3_u.mode = sa->mode & 07777;
	}
	if (sa->set & RAW3_SET_UID) {
		to->uid.set_it = 1;
		to->uid.set_uid3_u.uid = sa->uid;
	}
	if (sa->set & RAW3_SET_GID) {
		to->gid.set_it = 1;
		to->gid.set_gid3_u.gid = sa->gid;
	}
	if (sa->set & RAW3_SET_SIZE) {
		to->size.set_it = 1;
		to->size.set_size3_u.size = sa->size;
	}
	if (sa->set & RAW3_SET_ATIME)
		set_time(&to->atime.set_it, &to->atime.set_atime_u.atime, &sa->atime);
	if (sa->set & RAW3_SET_MTIME)
		set_time(&to->mtime.set_it, &to->mtime.set_mtime_u.mtime, &sa->mtime);
}

/* Run one queued call; on success hand back its attributes (if asked and sent). */
static int finish_one(struct nfs_context *nfs, struct call *c, int queued,
		      struct nfs_stat_64 *st, int *have_attr)
{
	int rc = run_call(nfs, c, queued);
	if (rc)
		return rc;     /* c is freed or abandoned */
	rc = c->rc;
	if (have_attr)
		*have_attr = rc == 0 && c->have_attr;
	if (rc == 0 && c->have_attr && st)
		to_stat(&c->attr, st);
	free(c);
	return rc;
}

/* CREATE or MKDIR: the new object's handle (looked up when the reply has none). */
static int new_object(struct nfs_context *nfs, struct call *c, int queued,
		      const struct raw3_fh *dir, const char *name, struct raw3_fh *out,
		      struct nfs_stat_64 *st, int *have_attr)
{
	int rc = run_call(nfs, c, queued);
	if (rc)
		return rc;
	rc = c->rc;
	int have_fh = c->have_fh;
	*have_attr = 0;
	if (rc == 0 && have_fh) {
		*out = c->fh;
		*have_attr = c->have_attr;
		if (c->have_attr)
			to_stat(&c->attr, st);
	}
	free(c);
	if (rc == 0 && !have_fh)
		rc = raw3_lookup(nfs, dir, name, out, st, have_attr);
	return rc;
}

int raw3_create(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
		const struct raw3_sattr *sa, struct raw3_fh *out, struct nfs_stat_64 *st,
		int *have_attr)
{
	struct call *c = new_call(CALL_NEWOBJ);
	if (!c)
		return -ENOMEM;
	CREATE3args args;
	memset(&args, 0, sizeof(args));
	set_diropargs(&args.where, dir, name);
	args.how.mode = GUARDED;
	set_sattr(&args.how.createhow3_u.obj_attributes, sa);
	return new_object(nfs, c,
			  rpc_nfs3_create_async(nfs_get_rpc_context(nfs), call_cb, &args, c), dir,
			  name, out, st, have_attr);
}

/* libnfs exports these but declares them in a header it does not install. A PDU begins,
 * in every release that has rpc_allocate_pdu2, with a link, the xid and the encoder the
 * arguments go into; raw3_symlink checks the encoder (encoding, the RPC header written,
 * room for the hint) before it writes a byte. */
struct rpc_pdu;
struct rpc_pdu *rpc_allocate_pdu2(struct rpc_context *rpc, int program, int version,
				  int procedure, rpc_cb cb, void *private_data,
				  zdrproc_t zdr_decode_fn, int zdr_bufsize, size_t alloc_hint);
void rpc_free_pdu(struct rpc_context *rpc, struct rpc_pdu *pdu);
int rpc_queue_pdu(struct rpc_context *rpc, struct rpc_pdu *pdu);
struct pdu_head {
	struct rpc_pdu *next;
	uint32_t xid;
	ZDR zdr;
};

int raw3_symlink(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
		 const char *target, struct raw3_fh *out, struct nfs_stat_64 *st, int *have_attr)
{
	struct call *c = new_call(CALL_NEWOBJ);     /* SYMLINK3res is laid out as CREATE3res */
	if (!c)
		return -ENOMEM;
	SYMLINK3args args;
	memset(&args, 0, sizeof(args));
	set_diropargs(&args.where, dir, name);
	set_sattr(&args.symlink.symlink_attributes, &(struct raw3_sattr){ 0 });
	args.symlink.symlink_data = (char *)target;
	struct rpc_context *rpc = nfs_get_rpc_context(nfs);
	size_t hint = strlen(target) + strlen(name) + dir->len + 256;
	struct rpc_pdu *pdu = rpc_allocate_pdu2(rpc, NFS_PROGRAM, NFS_V3, NFS3_SYMLINK, call_cb, c,
						(zdrproc_t)zdr_SYMLINK3res, sizeof(SYMLINK3res),
						hint);
	if (!pdu) {
		free(c);
		return -ENOMEM;
	}
	ZDR *z = &((struct pdu_head *)pdu)->zdr;
	if (z->x_op != ZDR_ENCODE || z->pos <= 0 || z->size < z->pos ||
	    (size_t)(z->size - z->pos) < hint || !zdr_SYMLINK3args(z, &args)) {
		rpc_free_pdu(rpc, pdu);
		free(c);
		return -ENAMETOOLONG;
	}
	return new_object(nfs, c, rpc_queue_pdu(rpc, pdu), dir, name, out, st, have_attr);
}

int raw3_mkdir(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name,
	       const struct raw3_sattr *sa, struct raw3_fh *out, struct nfs_stat_64 *st,
	       int *have_attr)
{
	struct call *c = new_call(CALL_NEWOBJ);
	if (!c)
		return -ENOMEM;
	MKDIR3args args;
	memset(&args, 0, sizeof(args));
	set_diropargs(&args.where, dir, name);
	set_sattr(&args.attributes, sa);
	return new_object(nfs, c, rpc_nfs3_mkdir_async(nfs_get_rpc_context(nfs), call_cb, &args, c),
			  dir, name, out, st, have_attr);
}

int raw3_remove(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name)
{
	struct call *c = new_call(CALL_STATUS);
	if (!c)
		return -ENOMEM;
	REMOVE3args args;
	memset(&args, 0, sizeof(args));
	set_diropargs(&args.object, dir, name);
	return finish_one(nfs, c,
			  rpc_nfs3_remove_async(nfs_get_rpc_context(nfs), call_cb, &args, c), NULL,
			  NULL);
}

int raw3_rmdir(struct nfs_context *nfs, const struct raw3_fh *dir, const char *name)
{
	struct call *c = new_call(CALL_STATUS);
	if (!c)
		return -ENOMEM;
	RMDIR3args args;
	memset(&args, 0, sizeof(args));
	set_diropargs(&args.object, dir, name);
	return finish_one(nfs, c, rpc_nfs3_rmdir_async(nfs_get_rpc_context(nfs), call_cb, &args, c),
			  NULL, NULL);
}

int raw3_rename(struct nfs_context *nfs, const struct raw3_fh *fdir, const char *fname,
		const struct raw3_fh *tdir, const char *tname)
{
	struct call *c = new_call(CALL_STATUS);
	if (!c)
		return -ENOMEM;
	RENAME3args args;
	memset(&args, 0, sizeof(args));
	set_diropargs(&args.from, fdir, fname);
	set_diropargs(&args.to, tdir, tname);
	return finish_one(nfs, c,
			  rpc_nfs3_rename_async(nfs_get_rpc_context(nfs), call_cb, &args, c), NULL,
			  NULL);
}

int raw3_link(struct nfs_context *nfs, const struct raw3_fh *fh, const struct raw3_fh *dir,
	      const char *name)
{
	struct call *c = new_call(CALL_STATUS);
	if (!c)
		return -ENOMEM;
	LINK3args args;
	memset(&args, 0, sizeof(args));
	set_fh3(&args.file, fh);
	set_diropargs(&args.link, dir, name);
	return finish_one(nfs, c, rpc_nfs3_link_async(nfs_get_rpc_context(nfs), call_cb, &args, c),
			  NULL, NULL);
}

int raw3_setattr(struct nfs_context *nfs, const struct raw3_fh *fh, const struct raw3_sattr *sa,
		 struct nfs_stat_64 *st, int *have_attr)
{
	struct call *c = new_call(CALL_SETATTR);
	if (!c)
		return -ENOMEM;
	SETATTR3args args;
	memset(&args, 0, sizeof(args));
	set_fh3(&args.object, fh);
	set_sattr(&args.new_attributes, sa);
	return finish_one(nfs, c,
			  rpc_nfs3_setattr_async(nfs_get_rpc_context(nfs), call_cb, &args, c), st,
			  have_attr);
}

int raw3_commit(struct nfs_context *nfs, const struct raw3_fh *fh, uint64_t *verf)
{
	struct call *c = new_call(CALL_COMMIT);
	if (!c)
		return -ENOMEM;
	COMMIT3args args;
	memset(&args, 0, sizeof(args));
	set_fh3(&args.file, fh);
	int rc = run_call(nfs, c,
			  rpc_nfs3_commit_async(nfs_get_rpc_context(nfs), call_cb, &args, c));
	if (rc)
		return rc;
	rc = c->rc;
	if (rc == 0 && verf)
		*verf = c->verf;
	free(c);
	return rc;
}

/* READ and WRITE: len split into pieces of at most `chunk` bytes, up to RAW3_DEPTH READs
 * or RAW3_WDEPTH WRITEs in flight on the one connection. WRITEs to one file are kept
 * fewer: a server writes them into the same file, where concurrent writers only wait for
 * each other (ext4 takes the inode's lock for each buffered write); measured over
 * nfs-ganesha on loopback, a 1 GiB copy took 5.3-5.6 s with 1-3 WRITEs in flight and
 * 5.9-6.6 s with 4 or 8, the server spending up to a second more CPU on the same bytes
 * (doc/benchmarks.md). A window is sent, then waited for; a short piece ends
 * the transfer at its end (READ at end of file) or starts the next window there (a server
 * may always answer with less than asked). */
#define RAW3_DEPTH 8
#define RAW3_WDEPTH 2

static ssize_t transfer(struct nfs_context *nfs, const struct raw3_fh *fh, int write,
			char *buf, size_t len, uint64_t off, size_t chunk, int stable,
			uint64_t *verf, int *eof)
{
	size_t done = 0;
	if (chunk == 0)
		chunk = 1u << 20;
	if (eof)
		*eof = 0;
	while (done < len) {
		struct call *v[RAW3_DEPTH];
		size_t n = 0, at = done;
		int rc = 0;
		for (; n < (write ? RAW3_WDEPTH : RAW3_DEPTH) && at < len; n++) {
			size_t want = len - at < chunk ? len - at : chunk;
			struct call *c = new_call(write ? CALL_WRITE : CALL_READ);
			if (!c) {
				rc = -ENOMEM;
				break;
			}
			int q;
			if (write) {
				WRITE3args a;
				memset(&a, 0, sizeof(a));
				set_fh3(&a.file, fh);
				a.offset = off + at;
				a.count = (count3)want;
				a.stable = (stable_how)stable;
				a.data.data_len = (u_int)want;
				a.data.data_val = buf + at;
				q = rpc_nfs3_write_async(nfs_get_rpc_context(nfs), call_cb, &a, c);
			} else {
				READ3args a;
				memset(&a, 0, sizeof(a));
				set_fh3(&a.file, fh);
				a.offset = off + at;
				a.count = (count3)want;
				c->rbuf = buf + at;
				c->rlen = (uint32_t)want;
				q = rpc_nfs3_read_async(nfs_get_rpc_context(nfs), call_cb, &a, c);
			}
			if (q != 0) {
				free(c);
				rc = -EIO;
				break;
			}
			c->rlen = (uint32_t)want;  /* (WRITE: what was asked) */
			v[n] = c;
			at += want;
		}
		if (n == 0)
			return done ? (ssize_t)done : rc;
		int wrc = wait_calls(nfs, v, n);
		if (wrc)
			return wrc;        /* transport error: the calls are gone */
		int stop = rc != 0;
		for (size_t i = 0; i < n; i++) {
			struct call *c = v[i];
			if (!stop) {
				if (c->rc) {
					rc = c->rc;
					stop = 1;
				} else {
					done += c->count;
					if (write && verf)
						*verf = c->verf;
					if (c->count < c->rlen) {
						stop = 1;
						if (!write && (c->eof || c->count == 0)) {
							if (eof)
								*eof = 1;
							len = done;   /* the end of the file */
						} else if (write && c->count == 0) {
							rc = -EIO;
						}
					}
				}
			}
			free(c);
		}
		if (rc)
			return done ? (ssize_t)done : rc;
	}
	return (ssize_t)done;
}

ssize_t raw3_read(struct nfs_context *nfs, const struct raw3_fh *fh, void *buf, size_t len,
		  uint64_t off, size_t chunk, int *eof)
{
	return transfer(nfs, fh, 0, buf, len, off, chunk, 0, NULL, eof);
}

ssize_t raw3_write(struct nfs_context *nfs, const struct raw3_fh *fh, const void *buf,
		   size_t len, uint64_t off, size_t chunk, int stable, uint64_t *verf)
{
	return transfer(nfs, fh, 1, (char *)buf, len, off, chunk, stable, verf, NULL);
}
