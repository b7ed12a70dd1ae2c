/* store/nfs.c - the new store over libnfs: the store.h operations on an NFS export, every
 * call made on a context borrowed from the pool (src/nfs/pool.c) for that one call. This
 * file holds the store table, open files and their data operations; the namespace
 * operations are in nfs_ns.c, the helpers and NFSv3 by-handle resolution in nfs_handle.c,
 * what the three share in nfs_int.h.
 *
 * The URL's path (export plus an optional subdirectory, spec section 2's SUB) is what each
 * context mounts: NFSv3 mounts it through MOUNT (ganesha and knfsd accept a directory
 * below an export), NFSv4 walks the pseudo path from the root. Store paths are then
 * absolute paths inside that mount.
 *
 * NFSv3 BY HANDLE. libnfs 4.0 resolves every path from the export root, one LOOKUP per
 * component, for every call. Over NFSv3 this store instead sends each call to the cached
 * handle of the parent directory (nfs/fhcache.h, nfs/raw3.h): a stat or open is one
 * LOOKUP, a create one CREATE, an unlink one REMOVE, and an open file is read and written
 * by its handle on whichever context is free. libnfs's own calls remain for NFSv4, for
 * FERRYFS_NFS_NO_FHCACHE=1, and for what has no by-handle path here (readdir, statfs,
 * symlink, readlink, mknod, xattrs, opening a symlink).
 *
 * OPEN FILES (libnfs's, above). A struct nfsfh belongs to the context that opened it,
 * and FUSE reads one handle from several threads. A file therefore keeps one nfsfh per
 * pool context (slot[i], used only by the thread holding context i, so the slots need no
 * lock): the open itself fills the slot of the context it ran on (its "home"); a read or
 * write that gets another context opens the file there by path the first time, and
 * checks that the fileid is the same file (if the path was renamed or replaced meanwhile
 * it falls back to the home context; the open costs one GETATTR to learn the fileid).
 * Parallel preads on one file thus run on parallel contexts, and the common case (the
 * home context is free) costs no extra open. Handles opened on
 * a context that was since reconnected are abandoned (the dead context cannot close
 * them) and reopened.
 *
 * Never: keep a context across calls, or call back into the caller (readdir's callback,
 * read_stream's sink) while holding one: a callback that used the store would deadlock a
 * small pool. */
#include "store/nfs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/naming.h"
#include "base/util.h"

/* ---- open files ---- */

struct fop {
	struct nfs_store *ns;
	struct store_file *f;
	int flags;
	uint32_t mode;
	void *buf;
	const void *cbuf;
	size_t len;
	uint64_t off;
	int datasync;
	struct store_attr *attr;
	ssize_t result;
	int foreign;              /* a reopen found another file under the path */
};

/* The file's handle on the holder's context, opening it there if needed. */
static int file_fh(struct nfsp_conn *c, struct fop *o, struct nfsfh **out)
{
	struct store_file *f = o->f;
	struct fslot *s = &f->slot[c->idx];
	struct nfsfh *fh;
	int rc;

	if (s->fh && s->gen == c->gen) {
		*out = s->fh;
		return 0;
	}
	s->fh = NULL;   /* opened on a context since replaced: abandoned */
	if (o->ns->v4) {
		struct nfs_stat_64 pre;
		rc = nfs_lstat64(c->nfs, f->path, &pre);
		if (rc == 0 && pre.nfs_ino != f->ino)
			rc = -ENOENT;
		if (rc) {
			o->foreign = 1;
			return rc == -ENOENT ? -ESTALE : rc;
		}
	}
	rc = nfs_open2(c->nfs, f->path, f->oflags, 0, &fh);
	if (rc && o->ns->v4)
		nst_v4_open_failed(c, rc);
	if (rc == -ENOENT)
		rc = -ESTALE;
	if (rc)
		return rc;
	struct nfs_stat_64 sb;
	rc = nfs_fstat64(c->nfs, fh, &sb);
	if (rc || sb.nfs_ino != f->ino) {
		nfs_close(c->nfs, fh);
		if (rc && rc != -ENOENT && rc != -ESTALE)
			return rc;
		o->foreign = 1;
		return -ESTALE;
	}
	s->fh = fh;
	s->gen = c->gen;
	*out = fh;
	return 0;
}

/* Run fn for file f: on its home context when that is free, else on any. When another
 * context cannot reach the same file by path any more, retry on the home context. */
static int file_call(struct nfs_store *ns, struct fop *o, nfsp_fn fn)
{
	o->foreign = 0;
	int rc = nfsp_call(ns->pool, (int)o->f->home, fn, o);
	if (rc == -ESTALE && o->foreign) {
		o->foreign = 0;
		rc = nfsp_call_idx(ns->pool, o->f->home, fn, o);
	}
	return rc;
}

/* NFSv3 by handle: an open is a LOOKUP (or a GUARDED CREATE) in the parent's cached
 * handle; the file's handle then works on every context, so reads and writes need no
 * per-context reopen. Reads and writes keep several READ/WRITE calls in flight on the
 * one context (raw3_read/raw3_write). Writes are UNSTABLE and made durable by COMMIT
 * (fsync, close); the write verifier of every WRITE is compared with the COMMIT's, and a
 * difference (the server restarted in between: unstable data may be lost) fails the
 * fsync or close with EIO instead of reporting lost data as durable. */
static int v3_open_once(struct nfsp_conn *c, struct fop *o, struct raw3_fh *fh,
			struct nfs_stat_64 *st, int *created)
{
	struct raw3_fh dir;
	const char *name;
	int have = 0, rc;
	struct raw3_sattr sa = { .set = RAW3_SET_MODE, .mode = o->mode & 07777 };

	*created = 0;
	rc = nst_v3_parent(o->ns, c, o->f->path, &dir, &name);
	if (rc)
		return rc;
	if ((o->flags & O_CREAT) && (o->flags & O_EXCL)) {
		rc = raw3_create(c->nfs, &dir, name, &sa, fh, st, &have);
		*created = rc == 0;
	} else if (o->flags & O_CREAT) {
		/* not UNCHECKED (it would reset an existing file): look up, else create */
		for (int tries = 0;; tries++) {
			rc = raw3_lookup(c->nfs, &dir, name, fh, st, &have);
			if (rc != -ENOENT || tries == 3)
				break;
			rc = raw3_create(c->nfs, &dir, name, &sa, fh, st, &have);
			if (rc != -EEXIST) {
				*created = rc == 0;
				break;
			}
		}
	} else {
		rc = raw3_lookup(c->nfs, &dir, name, fh, st, &have);
	}
	if (rc == 0 && !have)
		rc = raw3_getattr(c->nfs, fh, st);
	return rc;
}

static int v3_open(struct nfsp_conn *c, struct fop *o)
{
	struct store_file *f = o->f;
	struct raw3_fh fh;
	struct nfs_stat_64 st;
	int created = 0;
	int rc = nst_v3_raw(o->ns, c);
	if (rc <= 0)
		return rc ? rc : -ENOTSUP;
	rc = v3_open_once(c, o, &fh, &st, &created);
	if (rc == -ESTALE) {
		nst_v3_forget_parent(o->ns, f->path);
		rc = v3_open_once(c, o, &fh, &st, &created);
	}
	if (rc)
		return rc;
	if (S_ISLNK(st.nfs_mode))
		return (o->flags & O_NOFOLLOW) ? -ELOOP : -ENOTSUP; /* libnfs follows it */
	if (S_ISDIR(st.nfs_mode) && (o->flags & O_ACCMODE) != O_RDONLY)
		return -EISDIR;
	if ((o->flags & O_TRUNC) && !created && st.nfs_size > 0 && S_ISREG(st.nfs_mode) &&
	    (o->flags & O_ACCMODE) != O_RDONLY) {
		struct raw3_sattr sa = { .set = RAW3_SET_SIZE, .size = 0 };
		rc = raw3_setattr(c->nfs, &fh, &sa, NULL, NULL);
		if (rc)
			return rc;
	}
	f->raw = 1;
	f->fh = fh;
	f->ino = st.nfs_ino;
	f->home = c->idx;
	return 0;
}

static size_t v3_chunk(uint64_t max)
{
	return max == 0 || max > NFS_CHUNK ? NFS_CHUNK : (size_t)max;
}

static void v3_note_verf(struct store_file *f, uint64_t v)
{
	uint64_t prev = atomic_exchange(&f->wverf, v);
	if (atomic_exchange(&f->verf_seen, 1) && prev != v)
		atomic_store(&f->verf_changed, 1);
}

static int v3_commit(struct nfsp_conn *c, struct store_file *f)
{
	uint64_t v;
	int rc = raw3_commit(c->nfs, &f->fh, &v);
	if (rc)
		return rc;
	if (atomic_load(&f->verf_seen) &&
	    (atomic_exchange(&f->verf_changed, 0) || v != atomic_load(&f->wverf))) {
		atomic_store(&f->wverf, v);
		log_err("nfs: the server restarted before %s was committed: written data may be "
			"lost", f->path);
		return -EIO;
	}
	return 0;
}

static int open_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct store_file *f = o->f;
	struct nfsfh *fh = NULL;
	int base = o->flags & (O_ACCMODE | O_SYNC | O_DSYNC | O_NOFOLLOW);
	int rc = v3_open(c, o);

	if (rc != -ENOTSUP)
		return rc;

	if (o->ns->v4) {
		/* Only send an OPEN that should succeed (see nst_v4_open_failed). */
		struct nfs_stat_64 sb;
		rc = nfs_lstat64(c->nfs, f->path, &sb);
		if (rc == 0 && (o->flags & O_CREAT) && (o->flags & O_EXCL))
			return -EEXIST;
		if (rc == 0 && S_ISDIR(sb.nfs_mode) && (o->flags & O_ACCMODE) != O_RDONLY)
			return -EISDIR;
		if (rc && (rc != -ENOENT || !(o->flags & O_CREAT))) {
			log_debug("nfs: v4 lookup of %s failed: %s", f->path,
				  nfs_get_error(c->nfs));
			return rc;
		}
		if (rc == 0)
			rc = nfs_open2(c->nfs, f->path, base | (o->flags & O_TRUNC), 0, &fh);
		else
			rc = nfs_create(c->nfs, f->path, base | O_EXCL, (int)(o->mode & 07777),
					&fh);
		if (rc)
			log_debug("nfs: v4 open of %s failed: %s", f->path, nfs_get_error(c->nfs));
		if (rc)
			return nst_v4_open_failed(c, rc);
	} else if ((o->flags & O_CREAT) && (o->flags & O_EXCL)) {
		rc = nfs_create(c->nfs, f->path, base | O_EXCL, (int)(o->mode & 07777), &fh);
	} else if (o->flags & O_CREAT) {
		/* Not an UNCHECKED create: that would reset the mode of an existing file.
		 * Open; if absent create exclusively; if someone else created it, open. */
		for (int tries = 0;; tries++) {
			rc = nfs_open2(c->nfs, f->path, base | (o->flags & O_TRUNC), 0, &fh);
			if (rc != -ENOENT || tries == 3)
				break;
			rc = nfs_create(c->nfs, f->path, base | O_EXCL, (int)(o->mode & 07777),
					&fh);
			if (rc != -EEXIST)
				break;
		}
	} else {
		rc = nfs_open2(c->nfs, f->path, base | (o->flags & O_TRUNC), 0, &fh);
	}
	if (rc)
		return rc;
	struct nfs_stat_64 sb;
	rc = nfs_fstat64(c->nfs, fh, &sb);
	if (rc) {
		nfs_close(c->nfs, fh);
		return rc;
	}
	f->ino = sb.nfs_ino;
	f->home = c->idx;
	f->slot[c->idx].fh = fh;
	f->slot[c->idx].gen = c->gen;
	return 0;
}

static void file_free(struct store_file *f)
{
	pthread_mutex_destroy(&f->append_lock);
	free(f->path);
	free(f);
}

static int nfs_st_open(struct store *st, const char *path, int flags, uint32_t mode,
		       const char *expect_etag, struct store_file **out)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	struct nfs_store *ns = NST(st);
	unsigned n = nfsp_size(ns->pool);
	struct store_file *f;
	(void)expect_etag;

	if (!store_path_ok(path))
		return -EINVAL;
	f = calloc(1, sizeof(*f) + n * sizeof(f->slot[0]));
	if (!f)
		return -ENOMEM;
	f->path = util_strdup(path);
	if (!f->path) {
		free(f);
		return -ENOMEM;
	}
	f->nslots = n;
	f->oflags = flags & (O_ACCMODE | O_SYNC | O_DSYNC | O_NOFOLLOW);
	f->append = !!(flags & O_APPEND);
	pthread_mutex_init(&f->append_lock, NULL);
	struct fop o = { .ns = ns, .f = f, .flags = flags, .mode = mode };
	int rc = nfsp_call(ns->pool, -1, open_fn, &o);
	if (rc) {
		file_free(f);
		return rc;
	}
	if (flags & O_TRUNC)
		atomic_store(&f->dirty, 1);
	*out = f;
	return 0;
}

static int fstat_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	struct nfs_stat_64 s;
	int rc = o->f->raw ? raw3_getattr(c->nfs, &o->f->fh, &s) : file_fh(c, o, &fh);
	if (rc)
		return rc;
	if (!o->f->raw)
		rc = nfs_fstat64(c->nfs, fh, &s);
	if (rc == 0)
		nst_attr_from_stat(&s, o->attr);
	return rc;
}

/* fsetattr: NFSv3 by handle only (one SETATTR, whose reply has the attributes after);
 * libnfs's files answer -ENOTSUP and the caller uses the path calls. */
static int fsetattr_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	const struct store_attr *a = o->cbuf;
	struct raw3_sattr sa = { .mode = a->mode & 07777, .uid = a->uid, .gid = a->gid,
				 .atime = a->mtime, .mtime = a->mtime };
	unsigned which = (unsigned)o->flags;
	struct nfs_stat_64 s;
	int have = 0;
	sa.set = ((which & STORE_HAVE_MODE) ? RAW3_SET_MODE : 0) |
		 ((which & STORE_HAVE_UID) ? RAW3_SET_UID : 0) |
		 ((which & STORE_HAVE_GID) ? RAW3_SET_GID : 0) |
		 ((which & STORE_HAVE_MTIME) ? RAW3_SET_ATIME | RAW3_SET_MTIME : 0);
	int rc = raw3_setattr(c->nfs, &o->f->fh, &sa, &s, &have);
	if (rc == 0 && o->attr) {
		if (!have)
			rc = raw3_getattr(c->nfs, &o->f->fh, &s);
		if (rc == 0)
			nst_attr_from_stat(&s, o->attr);
	}
	return rc;
}

static int nfs_st_fsetattr(struct store *st, struct store_file *f, const struct store_attr *a,
			   unsigned which, struct store_attr *out)
{
	if (!f->raw)
		return -ENOTSUP;
	struct fop o = { .ns = NST(st), .f = f, .cbuf = a, .flags = (int)which, .attr = out };
	return file_call(NST(st), &o, fsetattr_fn);
}

static int nfs_st_fstat(struct store *st, struct store_file *f, struct store_attr *out)
{
	struct fop o = { .ns = NST(st), .f = f, .attr = out };
	return file_call(NST(st), &o, fstat_fn);
}

static int pread_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	size_t got = 0;
	if (o->f->raw) {
		int eof;
		ssize_t n = raw3_read(c->nfs, &o->f->fh, o->buf, o->len, o->off,
				      v3_chunk(nfs_get_readmax(c->nfs)), &eof);
		if (n < 0)
			return (int)n;
		o->result = n;
		return 0;
	}
	int rc = file_fh(c, o, &fh);
	if (rc)
		return rc;
	size_t max = NFS_CHUNK;
	while (got < o->len) {
		size_t want = o->len - got < max ? o->len - got : max;
		int n = nfs_pread(c->nfs, fh, o->off + got, want, (char *)o->buf + got);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	o->result = (ssize_t)got;
	return 0;
}

static ssize_t nfs_st_pread(struct store *st, struct store_file *f, void *buf, size_t len,
			    uint64_t off)
{
	if (len > INT_MAX)
		len = INT_MAX & ~(size_t)4095;
	struct fop o = { .ns = NST(st), .f = f, .buf = buf, .len = len, .off = off };
	int rc = file_call(NST(st), &o, pread_fn);
	return rc ? rc : o.result;
}

/* libnfs 4.0 reports every failed WRITE as -EFAULT with an empty message, dropping the NFS
 * status (nfsp_call turns EFAULT into ESTALE, its usual cause). A full export must reach
 * the writer as ENOSPC: when the server has less room than the write, say so. */
static int pwrite_failed(struct nfsp_conn *c, const char *path, size_t want, int n)
{
	struct nfs_statvfs_64 s;
	if (n != -EFAULT || nfs_statvfs64(c->nfs, path, &s) != 0)
		return n;
	uint64_t unit = s.f_frsize ? s.f_frsize : s.f_bsize;
	return s.f_bavail * unit < want ? -ENOSPC : n;
}

static int pwrite_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	size_t put = 0;
	if (o->f->raw) {
		struct store_file *f = o->f;
		if (f->append) {
			struct nfs_stat_64 s;
			int rc = raw3_getattr(c->nfs, &f->fh, &s);
			if (rc)
				return rc;
			o->off = s.nfs_size;
		}
		int stable = (f->oflags & (O_SYNC | O_DSYNC)) ? 2 : 0;
		uint64_t v = 0;
		ssize_t n = raw3_write(c->nfs, &f->fh, o->cbuf, o->len, o->off,
				       v3_chunk(nfs_get_writemax(c->nfs)), stable, &v);
		if (n < 0)
			return (int)n;
		if (!stable)
			v3_note_verf(f, v);
		o->result = n;
		return 0;
	}
	int rc = file_fh(c, o, &fh);
	if (rc)
		return rc;
	if (o->f->append) {
		struct nfs_stat_64 s;
		rc = nfs_fstat64(c->nfs, fh, &s);
		if (rc)
			return rc;
		o->off = s.nfs_size;
	}
	size_t max = o->ns->v4 ? V4_WMAX : NFS_CHUNK;
	while (put < o->len) {
		size_t want = o->len - put < max ? o->len - put : max;
		int n = nfs_pwrite(c->nfs, fh, o->off + put, want, (const char *)o->cbuf + put);
		if (n < 0)
			return pwrite_failed(c, o->f->path, want, n);
		if (n == 0)
			return -EIO;
		put += (size_t)n;
	}
	o->result = (ssize_t)put;
	return 0;
}

/* O_APPEND: NFS has no atomic append. Writes of this process to one handle are
 * serialised (size lookup, then write at that size); writers elsewhere can interleave. */
static ssize_t nfs_st_pwrite(struct store *st, struct store_file *f, const void *buf,
			     size_t len, uint64_t off)
{
	if (len > INT_MAX)
		len = INT_MAX & ~(size_t)4095;
	struct fop o = { .ns = NST(st), .f = f, .cbuf = buf, .len = len, .off = off };
	if (f->append)
		pthread_mutex_lock(&f->append_lock);
	int rc = file_call(NST(st), &o, pwrite_fn);
	if (f->append)
		pthread_mutex_unlock(&f->append_lock);
	if (rc)
		return rc;
	atomic_store(&f->dirty, 1);
	return o.result;
}

static int nfs_st_read_stream(struct store *st, struct store_file *f, uint64_t off,
			      uint64_t len, store_sink_fn sink, void *arg)
{
	char *buf = malloc(NFS_CHUNK);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		size_t want = len < NFS_CHUNK ? (size_t)len : NFS_CHUNK;
		ssize_t n = nfs_st_pread(st, f, buf, want, off);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		rc = sink(arg, buf, (size_t)n);
		if (rc)
			break;
		off += (uint64_t)n;
		if (len != UINT64_MAX)
			len -= (uint64_t)n;
		if ((size_t)n < want)
			break;
	}
	free(buf);
	return rc;
}

static int ftruncate_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	if (o->f->raw) {
		struct raw3_sattr sa = { .set = RAW3_SET_SIZE, .size = o->off };
		return raw3_setattr(c->nfs, &o->f->fh, &sa, NULL, NULL);
	}
	int rc = file_fh(c, o, &fh);
	return rc ? rc : nfs_ftruncate(c->nfs, fh, o->off);
}

static int nfs_st_ftruncate(struct store *st, struct store_file *f, uint64_t size)
{
	struct fop o = { .ns = NST(st), .f = f, .off = size };
	int rc = file_call(NST(st), &o, ftruncate_fn);
	if (rc == 0)
		atomic_store(&f->dirty, 1);
	return rc;
}

/* COMMIT applies to the file on the server, whichever handle or client wrote: one
 * COMMIT on any context makes every write made so far durable. */
static int fsync_fn(struct nfsp_conn *c, void *arg)
{
	struct fop *o = arg;
	struct nfsfh *fh;
	if (o->f->raw)
		return v3_commit(c, o->f);
	int rc = file_fh(c, o, &fh);
	return rc ? rc : nfs_fsync(c->nfs, fh);
}

static int nfs_st_fsync(struct store *st, struct store_file *f, int datasync)
{
	(void)datasync;
	struct fop o = { .ns = NST(st), .f = f };
	atomic_store(&f->dirty, 0);
	int rc = file_call(NST(st), &o, fsync_fn);
	if (rc)
		atomic_store(&f->dirty, 1);
	return rc;
}

struct close_arg {
	struct store_file *f;
	int commit;
};

static int close_fn(struct nfsp_conn *c, void *arg)
{
	struct close_arg *a = arg;
	struct fslot *s = &a->f->slot[c->idx];
	int rc = 0;
	if (!s->fh || s->gen != c->gen)
		return 0;   /* never opened here, or abandoned with its dead context */
	if (a->commit) {
		rc = nfs_fsync(c->nfs, s->fh);
		if (rc == 0)
			a->commit = 0;
	}
	nfs_close(c->nfs, s->fh);
	s->fh = NULL;
	return rc;
}

/* close: COMMIT if written (close-to-open: other clients then see durable data), then
 * close the handle on every context that opened one. */
static int nfs_st_close(struct store *st, struct store_file *f)
{
	struct nfs_store *ns = NST(st);
	struct close_arg a = { .f = f, .commit = atomic_load(&f->dirty) };
	int rc = 0;
	if (f->raw) {
		struct fop o = { .ns = ns, .f = f };
		if (a.commit)
			rc = file_call(ns, &o, fsync_fn);
		file_free(f);
		return rc;
	}
	/* home first: it is the one that exists unless its context was reconnected */
	for (unsigned k = 0; k < f->nslots; k++) {
		unsigned i = (f->home + k) % f->nslots;
		if (!f->slot[i].fh)
			continue;
		int r = nfsp_call_idx(ns->pool, i, close_fn, &a);
		if (r && !rc)
			rc = r;
	}
	if (a.commit) {
		/* no live handle to COMMIT through: reopen one */
		struct fop o = { .ns = ns, .f = f };
		int r = file_call(ns, &o, fsync_fn);
		if (r && !rc)
			rc = r;
		for (unsigned i = 0; i < f->nslots; i++) {
			if (f->slot[i].fh) {
				a.commit = 0;
				nfsp_call_idx(ns->pool, i, close_fn, &a);
			}
		}
	}
	file_free(f);
	return rc;
}

/* put: write to a temporary name in the same directory, COMMIT, set the metadata, then
 * rename over the final name (atomic on the server: readers see old or new, never part).
 * The temporary name begins with ".ferryfs" (reserved, invisible through the mount). */
static int nfs_st_put(struct store *st, const char *path, const struct store_source *src)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	struct nfs_store *ns = NST(st);
	struct store_file *f = NULL;
	char tmp[NAME_MAX_PATH + 64];
	char *buf = NULL;
	int rc;

	if (!store_path_ok(path) || nst_is_root(path))
		return -EINVAL;
	const char *slash = strrchr(path, '/');
	int dlen = (int)(slash - path);
	rc = snprintf(tmp, sizeof(tmp), "%.*s/.ferryfs.put.%lx.%x", dlen, path, (long)getpid(),
		      atomic_fetch_add(&ns->tmpseq, 1));
	if (rc < 0 || (size_t)rc >= sizeof(tmp))
		return -ENAMETOOLONG;
	buf = malloc(NFS_CHUNK);
	if (!buf)
		return -ENOMEM;
	uint32_t mode = src->have_meta ? (src->mode & 07777) : 0644;
	rc = nfs_st_open(st, tmp, O_CREAT | O_EXCL | O_WRONLY, mode, NULL, &f);
	if (rc)
		goto free_buf;
	for (uint64_t off = 0; off < src->size;) {
		size_t want = src->size - off < NFS_CHUNK ? (size_t)(src->size - off) : NFS_CHUNK;
		ssize_t n = src->read(src->arg, buf, want, off);
		if (n < 0) {
			rc = (int)n;
			goto remove_tmp;
		}
		if (n == 0) {
			rc = -EIO;   /* the source ended before its announced size */
			goto remove_tmp;
		}
		ssize_t w = nfs_st_pwrite(st, f, buf, (size_t)n, off);
		if (w < 0) {
			rc = (int)w;
			goto remove_tmp;
		}
		off += (uint64_t)n;
	}
	rc = nfs_st_fsync(st, f, 0);
	if (rc)
		goto remove_tmp;
	rc = nfs_st_close(st, f);
	f = NULL;
	if (rc)
		goto remove_tmp;
	if (src->have_meta) {
		rc = nfs_st_chown(st, tmp, src->uid, src->gid);
		if (rc == 0)
			rc = nfs_st_chmod(st, tmp, src->mode & 07777);
		if (rc == 0) {
			struct timespec tv[2] = { src->mtime, src->mtime };
			rc = nfs_st_utimens(st, tmp, tv);
		}
		if (rc)
			goto remove_tmp;
	}
	rc = nfs_st_rename(st, tmp, path, 0);
	if (rc)
		goto remove_tmp;
	free(buf);
	return 0;
remove_tmp:
	if (f)
		nfs_st_close(st, f);
	nfs_st_unlink(st, tmp);
free_buf:
	free(buf);
	return rc;
}

static int nfs_st_probe(struct store *st)
{
	struct store_attr a;
	int rc = nfs_st_stat(st, "/", &a);
	if (rc)
		log_err("nfs: %s is not reachable: %s", NST(st)->cfg->nfs, strerror(-rc));
	else if (!S_ISDIR(a.mode))
		rc = -ENOTDIR;
	return rc;
}

static void nfs_st_destroy(struct store *st)
{
	struct nfs_store *ns = NST(st);
	nfsp_destroy(ns->pool);
	fhc_destroy(ns->fhc);
	pthread_mutex_destroy(&ns->root_lock);
	free(ns);
}

static const struct store_ops nfs_ops = {
	.name = "nfs",
	.destroy = nfs_st_destroy,
	.stat = nfs_st_stat,
	.readdir = nfs_st_readdir,
	.statfs = nfs_st_statfs,
	.open = nfs_st_open,
	.fstat = nfs_st_fstat,
	.fsetattr = nfs_st_fsetattr,
	.pread = nfs_st_pread,
	.pwrite = nfs_st_pwrite,
	.read_stream = nfs_st_read_stream,
	.ftruncate = nfs_st_ftruncate,
	.fsync = nfs_st_fsync,
	.close = nfs_st_close,
	.put = nfs_st_put,
	.mkdir = nfs_st_mkdir,
	.rmdir = nfs_st_rmdir,
	.unlink = nfs_st_unlink,
	.rename = nfs_st_rename,
	.link = nfs_st_link,
	.symlink = nfs_st_symlink,
	.readlink = nfs_st_readlink,
	.mknod = nfs_st_mknod,
	.chmod = nfs_st_chmod,
	.chown = nfs_st_chown,
	.utimens = nfs_st_utimens,
	.truncate = nfs_st_truncate,
	/* NFS has no extended attributes here: getxattr & co are NULL (-ENOTSUP). */
	.probe = nfs_st_probe,
};

int store_nfs_new(const struct ferry_config *cfg, struct store **out)
{
	struct nfs_store *ns;
	int rc;

	if (!cfg->nfs || strncmp(cfg->nfs, "nfs://", 6) != 0) {
		log_err("nfs: not an nfs:// URL: %s", cfg->nfs ? cfg->nfs : "(unset)");
		return -EINVAL;
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->base.ops = &nfs_ops;
	ns->cfg = cfg;
	rc = nfsp_new(cfg->nfs, cfg->nfs_connections ? cfg->nfs_connections : 8, 0, &ns->pool);
	if (rc) {
		free(ns);
		return rc;
	}
	ns->v4 = nfsp_version(ns->pool) == 4;
	pthread_mutex_init(&ns->root_lock, NULL);
	if (!ns->v4 && getenv("FERRYFS_NFS_NO_FHCACHE") == NULL &&
	    fhc_new(FHC_SLOTS, FHC_TTL_MS, &ns->fhc) != 0)
		ns->fhc = NULL;   /* no memory: libnfs's walk */
	*out = &ns->base;
	return 0;
}
