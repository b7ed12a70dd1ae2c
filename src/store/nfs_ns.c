/* store/nfs_ns.c - the NFS store's namespace operations: stat, readdir, statfs, and the
 * path operations (mkdir, rmdir, unlink, rename, link, symlink, readlink, mknod, chmod,
 * chown, truncate, utimens), by handle over NFSv3 where nfs_handle.c allows, else libnfs's
 * path calls.
 */
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

struct st_op {
	struct nfs_store *ns;
	const char *path;
	struct store_attr *attr;
};

static int stat_fn(struct nfsp_conn *c, void *arg)
{
	struct st_op *o = arg;
	struct nfs_stat_64 st;
	int rc = o->ns->fhc ? nst_v3_stat(o->ns, c, o->path, &st) : -ENOTSUP;
	if (rc == -ENOTSUP)
		rc = nfs_lstat64(c->nfs, o->path, &st);
	if (rc == 0)
		nst_attr_from_stat(&st, o->attr);
	return rc;
}

int nfs_st_stat(struct store *st, const char *path, struct store_attr *out)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path))
		return -EINVAL;
	struct st_op o = { .ns = NST(st), .path = path, .attr = out };
	return nfsp_call(NST(st)->pool, -1, stat_fn, &o);
}

/* This host moved or removed a directory: its cached handles (and its subtree's) go. */
static void forget_dir(struct store *st, const char *path)
{
	if (NST(st)->fhc)
		fhc_forget(NST(st)->fhc, path);
}

/* readdir: the whole listing is copied out of libnfs (READDIRPLUS: names with
 * attributes) while the context is held, then delivered with the context given back. */
struct dent {
	char *name;
	uint32_t type;
	struct store_attr attr;
};
struct dlist {
	int v4;
	const char *path;
	struct dent *v;
	size_t n, cap;
};

static void dlist_clear(struct dlist *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

static int readdir_fn(struct nfsp_conn *c, void *arg)
{
	struct dlist *d = arg;
	struct nfsdir *dir;
	struct nfsdirent *e;
	int rc;

	dlist_clear(d);   /* a retry after a reconnect starts over */
	rc = nfs_opendir(c->nfs, d->path, &dir);
	if (rc)
		return rc;
	while ((e = nfs_readdir(c->nfs, dir))) {
		if (!strcmp(e->name, ".") || !strcmp(e->name, ".."))
			continue;
		if (d->n == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 64;
			struct dent *v = realloc(d->v, cap * sizeof(*v));
			if (!v) {
				rc = -ENOMEM;
				goto close_dir;
			}
			d->v = v;
			d->cap = cap;
		}
		struct dent *x = &d->v[d->n];
		x->name = util_strdup(e->name);
		if (!x->name) {
			rc = -ENOMEM;
			goto close_dir;
		}
		d->n++;
		uint32_t type = nst_nf3_type(e->type);
		if (!type)
			type = e->mode & S_IFMT;
		x->type = type;
		struct store_attr *a = &x->attr;
		memset(a, 0, sizeof(*a));
		a->mode = type | (e->mode & 07777);
		a->nlink = e->nlink;
		a->uid = e->uid;
		a->gid = e->gid;
		a->size = e->size;
		a->ino = e->inode;
		a->rdev = e->rdev;
		a->blocks = e->used ? (e->used + 511) / 512 : e->blocks;
		a->atime.tv_sec = e->atime.tv_sec;
		a->atime.tv_nsec = (long)e->atime_nsec;
		a->mtime.tv_sec = e->mtime.tv_sec;
		a->mtime.tv_nsec = (long)e->mtime_nsec;
		a->ctime.tv_sec = e->ctime.tv_sec;
		a->ctime.tv_nsec = (long)e->ctime_nsec;
		a->have = STORE_HAVE_ALL;
		if (d->v4 && e->inode == 0) {
			/* libnfs 4.0's v4 READDIR asks for type, mode, size and times only:
			 * fetch the rest (fileid, nlink, owner) per entry. */
			char *p;
			struct nfs_stat_64 s;
			if (asprintf(&p, "%s/%s", nst_is_root(d->path) ? "" : d->path,
				     e->name) < 0) {
				rc = -ENOMEM;
				goto close_dir;
			}
			rc = nfs_lstat64(c->nfs, p, &s);
			free(p);
			if (rc == -ENOENT) {   /* removed meanwhile */
				free(x->name);
				d->n--;
				rc = 0;
				continue;
			}
			if (rc)
				goto close_dir;
			nst_attr_from_stat(&s, a);
			x->type = a->mode & S_IFMT;
		}
	}
close_dir:
	nfs_closedir(c->nfs, dir);
	return rc;
}

int nfs_st_readdir(struct store *st, const char *path, store_dirent_fn fn, void *arg)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path))
		return -EINVAL;
	struct dlist d = { .path = path, .v4 = NST(st)->v4 };
	int rc = nfsp_call(NST(st)->pool, -1, readdir_fn, &d);
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		struct store_dirent de = { .name = d.v[i].name, .type = d.v[i].type,
					   .attr = &d.v[i].attr };
		rc = fn(arg, &de);
	}
	dlist_clear(&d);
	return rc;
}

static int statfs_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct nfs_statvfs_64 s;
	int rc = nfs_statvfs64(c->nfs, o->path, &s);
	if (rc)
		return rc;
	struct statvfs *v = o->svfs;
	memset(v, 0, sizeof(*v));
	v->f_bsize = s.f_bsize;
	v->f_frsize = s.f_frsize ? s.f_frsize : s.f_bsize;
	v->f_blocks = s.f_blocks;
	v->f_bfree = s.f_bfree;
	v->f_bavail = s.f_bavail;
	v->f_files = s.f_files;
	v->f_ffree = s.f_ffree;
	v->f_favail = s.f_favail;
	v->f_fsid = s.f_fsid;
	v->f_flag = s.f_flag;
	v->f_namemax = s.f_namemax ? s.f_namemax : NAME_MAX;
	return 0;
}

int nfs_st_statfs(struct store *st, const char *path, struct statvfs *out)
{
	if (!store_path_ok(path))
		return -EINVAL;
	struct op o = { .ns = NST(st), .path = path, .svfs = out };
	return nfsp_call(NST(st)->pool, -1, statfs_fn, &o);
}

/* NFSv3 by handle: each call is sent to the cached handle of the parent directory (or of
 * the object, looked up there), one round trip instead of libnfs's walk from the root.
 * A stale cached handle (another host removed the directory) is forgotten and the call
 * made once more. They return -ENOTSUP when the store does not speak v3 by handle (NFSv4,
 * FERRYFS_NFS_NO_FHCACHE, a root handle that did not check out): the caller then uses
 * libnfs's path calls. */
enum { V3_REMOVE, V3_RMDIR, V3_MKDIR, V3_RENAME, V3_LINK, V3_SETATTR, V3_SYMLINK };

/* 0 when the attributes st show the times sa set (the ones given, not the server's
 * clock), else -ENOTTY: the server took the call and did not change them (utimens
 * answers EOPNOTSUPP, and does not try libnfs's call, which the same server ignores). */
static int v3_times_taken(const struct raw3_sattr *sa, const struct nfs_stat_64 *st)
{
	if ((sa->set & RAW3_SET_ATIME) && sa->atime.tv_nsec != UTIME_NOW &&
	    (int64_t)st->nfs_atime != (int64_t)sa->atime.tv_sec)
		return -ENOTTY;
	if ((sa->set & RAW3_SET_MTIME) && sa->mtime.tv_nsec != UTIME_NOW &&
	    (int64_t)st->nfs_mtime != (int64_t)sa->mtime.tv_sec)
		return -ENOTTY;
	return 0;
}

static int v3_path_once(struct nfs_store *ns, struct nfsp_conn *c, int what, const char *path,
			const char *path2, const struct raw3_sattr *sa)
{
	struct raw3_fh dir, dir2, obj;
	struct nfs_stat_64 st;
	const char *name, *name2;
	int have, rc;

	switch (what) {
	case V3_REMOVE:
	case V3_RMDIR:
		rc = nst_v3_parent(ns, c, path, &dir, &name);
		if (rc)
			return rc;
		return what == V3_REMOVE ? raw3_remove(c->nfs, &dir, name) :
					   raw3_rmdir(c->nfs, &dir, name);
	case V3_MKDIR:
		rc = nst_v3_parent(ns, c, path, &dir, &name);
		if (rc == 0)
			rc = raw3_mkdir(c->nfs, &dir, name, sa, &obj, &st, &have);
		if (rc == 0)
			fhc_put(ns->fhc, path, strlen(path), &obj, nst_mono_ms());
		return rc;
	case V3_RENAME:
		rc = nst_v3_parent(ns, c, path, &dir, &name);
		if (rc == 0)
			rc = nst_v3_parent(ns, c, path2, &dir2, &name2);
		return rc ? rc : raw3_rename(c->nfs, &dir, name, &dir2, name2);
	case V3_LINK:
		rc = nst_v3_resolve(ns, c, path, &obj, &st);
		if (rc == 0)
			rc = nst_v3_parent(ns, c, path2, &dir2, &name2);
		return rc ? rc : raw3_link(c->nfs, &obj, &dir2, name2);
	case V3_SETATTR:
		rc = nst_v3_resolve(ns, c, path, &obj, &st);
		if (rc)
			return rc;
		if (!S_ISLNK(st.nfs_mode))
			return raw3_setattr(c->nfs, &obj, sa, NULL, NULL);
		/* a symlink: some servers (nfs-ganesha's VFS) answer OK, even with the new
		 * times in the reply, and keep the old ones: asked again, separately */
		rc = raw3_setattr(c->nfs, &obj, sa, NULL, NULL);
		if (rc == 0)
			rc = raw3_getattr(c->nfs, &obj, &st);
		return rc ? rc : v3_times_taken(sa, &st);
	case V3_SYMLINK:        /* path2: the target, not a path */
		rc = nst_v3_parent(ns, c, path, &dir, &name);
		return rc ? rc : raw3_symlink(c->nfs, &dir, name, path2, &obj, &st, &have);
	}
	return -EINVAL;
}

static int v3_path_call(struct nfs_store *ns, struct nfsp_conn *c, int what, const char *path,
			const char *path2, const struct raw3_sattr *sa)
{
	int rc = nst_v3_raw(ns, c);
	if (rc <= 0)
		return rc ? rc : -ENOTSUP;
	rc = v3_path_once(ns, c, what, path, path2, sa);
	if (rc == -ESTALE) {
		nst_v3_forget_parent(ns, path);
		if (path2 && what != V3_SYMLINK)
			nst_v3_forget_parent(ns, path2);
		rc = v3_path_once(ns, c, what, path, path2, sa);
	}
	return rc;
}

static int mkdir_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .set = RAW3_SET_MODE, .mode = o->mode & 07777 };
	int rc = v3_path_call(o->ns, c, V3_MKDIR, o->path, NULL, &sa);
	if (rc != -ENOTSUP)
		return rc;
	return nfs_mkdir2(c->nfs, o->path, (int)(o->mode & 07777));
}
/* NFSv4 has one REMOVE for files and directories, and libnfs 4.0 does not check the
 * type: rmdir would remove a file and unlink an empty directory. Check it first (a
 * replacement between the check and the REMOVE is not caught). */
static int v4_type_is(struct nfsp_conn *c, const char *path, int want_dir)
{
	struct nfs_stat_64 s;
	int rc = nfs_lstat64(c->nfs, path, &s);
	if (rc)
		return rc;
	if (want_dir && !S_ISDIR(s.nfs_mode))
		return -ENOTDIR;
	if (!want_dir && S_ISDIR(s.nfs_mode))
		return -EISDIR;
	return 0;
}
static int rmdir_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_RMDIR, o->path, NULL, NULL);
	if (rc != -ENOTSUP)
		return rc;
	rc = o->v4 ? v4_type_is(c, o->path, 1) : 0;
	return rc ? rc : nfs_rmdir(c->nfs, o->path);
}
static int unlink_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_REMOVE, o->path, NULL, NULL);
	if (rc != -ENOTSUP)
		return rc;
	rc = o->v4 ? v4_type_is(c, o->path, 0) : 0;
	return rc ? rc : nfs_unlink(c->nfs, o->path);
}
static int rename_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_RENAME, o->path, o->path2, NULL);
	return rc != -ENOTSUP ? rc : nfs_rename(c->nfs, o->path, o->path2);
}
static int link_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_LINK, o->path, o->path2, NULL);
	return rc != -ENOTSUP ? rc : nfs_link(c->nfs, o->path, o->path2);
}
static int symlink_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = o->v4 ? -ENOTSUP : v3_path_call(o->ns, c, V3_SYMLINK, o->path, o->path2, NULL);
	return rc != -ENOTSUP ? rc : nfs_symlink(c->nfs, o->path2, o->path);
}
static int mknod_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	if (S_ISREG(o->mode) || (o->mode & S_IFMT) == 0) {
		struct nfsfh *fh;
		struct nfs_stat_64 sb;
		if (o->v4 && nfs_lstat64(c->nfs, o->path, &sb) == 0)
			return -EEXIST;
		int rc = nfs_create(c->nfs, o->path, O_EXCL | O_RDWR, (int)(o->mode & 07777), &fh);
		if (rc == 0)
			nfs_close(c->nfs, fh);
		return o->v4 ? nst_v4_open_failed(c, rc) : rc;
	}
	if (o->v4)
		return -EPERM;   /* libnfs 4.0 v4: no FIFO/socket, device numbers dropped */
	return nfs_mknod(c->nfs, o->path, (int)o->mode, (int)o->u64);
}
static int chmod_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .set = RAW3_SET_MODE, .mode = o->mode & 07777 };
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &sa);
	return rc != -ENOTSUP ? rc : nfs_lchmod(c->nfs, o->path, (int)(o->mode & 07777));
}
static int chown_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .uid = o->uid, .gid = o->gid };
	sa.set = (o->uid != (uint32_t)-1 ? RAW3_SET_UID : 0) |
		 (o->gid != (uint32_t)-1 ? RAW3_SET_GID : 0);
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &sa);
	if (rc != -ENOTSUP)
		return rc;
	if (o->uid == (uint32_t)-1 || o->gid == (uint32_t)-1) {
		/* -1 means "leave as is": fill it in from the current attributes. */
		struct nfs_stat_64 s;
		int rc = nfs_lstat64(c->nfs, o->path, &s);
		if (rc)
			return rc;
		if (o->uid == (uint32_t)-1)
			o->uid = (uint32_t)s.nfs_uid;
		if (o->gid == (uint32_t)-1)
			o->gid = (uint32_t)s.nfs_gid;
	}
	return nfs_lchown(c->nfs, o->path, (int)o->uid, (int)o->gid);
}
static int truncate_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	struct raw3_sattr sa = { .set = RAW3_SET_SIZE, .size = o->u64 };
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &sa);
	return rc != -ENOTSUP ? rc : nfs_truncate(c->nfs, o->path, o->u64);
}
static int readlink_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	char *target = NULL;
	int rc = nfs_readlink2(c->nfs, o->path, &target);
	if (rc)
		return rc;
	size_t n = strlen(target);
	if (o->len) {
		size_t k = n < o->len - 1 ? n : o->len - 1;
		memcpy(o->buf, target, k);
		o->buf[k] = '\0';
	}
	o->result = (ssize_t)n;
	free(target);
	return 0;
}

static int utimens_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	return nfs_lutimes(c->nfs, o->path, o->tv_null ? NULL : o->tv);
}

static int utimens_raw_fn(struct nfsp_conn *c, void *arg)
{
	struct op *o = arg;
	int rc = v3_path_call(o->ns, c, V3_SETATTR, o->path, NULL, &o->sa);
	o->refused = rc == -ENOTTY;
	return o->refused ? -EOPNOTSUPP : rc;
}

#define PATH_CALL(st, fn, ...)                                       \
	do {                                                         \
		struct op o_ = { .ns = NST(st), .v4 = NST(st)->v4, __VA_ARGS__ }; \
		return nfsp_call(NST(st)->pool, -1, fn, &o_);        \
	} while (0)

int nfs_st_mkdir(struct store *st, const char *path, uint32_t mode)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path) || nst_is_root(path))
		return store_path_ok(path) ? -EEXIST : -EINVAL;
	PATH_CALL(st, mkdir_fn, .path = path, .mode = mode);
}

static int rmdir_impl(struct store *st, const char *path)
{
	PATH_CALL(st, rmdir_fn, .path = path);
}

int nfs_st_rmdir(struct store *st, const char *path)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path) || nst_is_root(path))
		return store_path_ok(path) ? -EBUSY : -EINVAL;
	int rc = rmdir_impl(st, path);
	forget_dir(st, path);
	return rc;
}

int nfs_st_unlink(struct store *st, const char *path)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path) || nst_is_root(path))
		return store_path_ok(path) ? -EISDIR : -EINVAL;
	PATH_CALL(st, unlink_fn, .path = path);
}

/* RENAME_NOREPLACE: NFS (v3 and v4) has no rename that refuses to replace.
 * - a non-directory is renamed as LINK(to) + REMOVE(from): LINK fails with EEXIST when
 *   `to` exists, atomically on the server, so nothing is ever replaced. The window: for
 *   a moment both names exist (another client may see nlink 2), and if this host dies
 *   between the two calls both names stay.
 * - a directory (LINK refuses directories) is checked with LOOKUP and then renamed: a
 *   `to` created by another client between the two calls can be replaced if it is a
 *   file... NFS RENAME over a non-empty directory fails, but over an empty directory
 *   (or, for a file source, a file) it replaces. That race is documented, not closed. */
static int rename_impl(struct store *st, const char *from, const char *to, unsigned flags)
{
	struct nfsp_pool *pool = NST(st)->pool;
	struct store_attr a;
	int rc;

	if (!store_path_ok(from) || !store_path_ok(to))
		return -EINVAL;
	if (nst_is_root(from) || nst_is_root(to))
		return -EBUSY;
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (!flags) {
		struct op o = { .ns = NST(st), .v4 = NST(st)->v4, .path = from, .path2 = to };
		return nfsp_call(pool, -1, rename_fn, &o);
	}
	rc = nfs_st_stat(st, from, &a);
	if (rc)
		return rc;
	if (!S_ISDIR(a.mode)) {
		struct op o = { .ns = NST(st), .v4 = NST(st)->v4, .path = from, .path2 = to };
		rc = nfsp_call(pool, -1, link_fn, &o);
		if (rc == -EPERM || rc == -ENOTSUP || rc == -EOPNOTSUPP)
			goto check_then_rename;   /* a server without hard links */
		if (rc)
			return rc;
		rc = nfsp_call(pool, -1, unlink_fn, &o);
		return rc == -ENOENT ? 0 : rc;
	}
check_then_rename:
	rc = nfs_st_stat(st, to, &a);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	struct op o = { .ns = NST(st), .v4 = NST(st)->v4, .path = from, .path2 = to };
	return nfsp_call(pool, -1, rename_fn, &o);
}

int nfs_st_rename(struct store *st, const char *from, const char *to, unsigned flags)
{
	if (nst_v4_too_long(st, from) || nst_v4_too_long(st, to))
		return -ENAMETOOLONG;
	int rc = rename_impl(st, from, to, flags);
	/* after the rename: a stat racing with it may have cached the old names again */
	forget_dir(st, from);
	forget_dir(st, to);
	return rc;
}

int nfs_st_link(struct store *st, const char *from, const char *to)
{
	if (nst_v4_too_long(st, from) || nst_v4_too_long(st, to))
		return -ENAMETOOLONG;
	if (!store_path_ok(from) || !store_path_ok(to))
		return -EINVAL;
	PATH_CALL(st, link_fn, .path = from, .path2 = to);
}

int nfs_st_symlink(struct store *st, const char *target, const char *path)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path) || !target || !*target)
		return -EINVAL;
	PATH_CALL(st, symlink_fn, .path = path, .path2 = target);
}

ssize_t nfs_st_readlink(struct store *st, const char *path, char *buf, size_t size)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path))
		return -EINVAL;
	struct op o = { .ns = NST(st), .path = path, .buf = buf, .len = size };
	int rc = nfsp_call(NST(st)->pool, -1, readlink_fn, &o);
	return rc ? rc : o.result;
}

int nfs_st_mknod(struct store *st, const char *path, uint32_t mode, uint64_t rdev)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path) || nst_is_root(path))
		return store_path_ok(path) ? -EEXIST : -EINVAL;
	PATH_CALL(st, mknod_fn, .path = path, .mode = mode, .u64 = rdev);
}

int nfs_st_chmod(struct store *st, const char *path, uint32_t mode)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path))
		return -EINVAL;
	PATH_CALL(st, chmod_fn, .path = path, .mode = mode);
}

int nfs_st_chown(struct store *st, const char *path, uint32_t uid, uint32_t gid)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path))
		return -EINVAL;
	PATH_CALL(st, chown_fn, .path = path, .uid = uid, .gid = gid);
}

int nfs_st_truncate(struct store *st, const char *path, uint64_t size)
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path))
		return -EINVAL;
	PATH_CALL(st, truncate_fn, .path = path, .u64 = size);
}

/* utimens: NFSv3 by handle sets each time exactly (nanoseconds; UTIME_NOW: the server's
 * clock; UTIME_OMIT: not sent). Otherwise libnfs's high-level SETATTR, which takes
 * microseconds and has no "server time" or "leave as is" per field: UTIME_OMIT is filled
 * in from the current attributes,
 * UTIME_NOW from this host's clock, except both-NOW over NFSv3, which asks the server's
 * clock (times == NULL; libnfs 4.0's v4 code crashes on NULL). Nanoseconds are truncated
 * to microseconds. */
int nfs_st_utimens(struct store *st, const char *path, const struct timespec tv[2])
{
	if (nst_v4_too_long(st, path))
		return -ENAMETOOLONG;
	if (!store_path_ok(path))
		return -EINVAL;
	/* NFSv3 carries seconds as an unsigned 32-bit number (1970 to 2106): another time
	 * would be stored modulo 2^32, so it is refused (NFSv4 carries 64-bit seconds) */
	for (int i = 0; tv && !NST(st)->v4 && i < 2; i++)
		if (tv[i].tv_nsec != UTIME_OMIT && tv[i].tv_nsec != UTIME_NOW &&
		    (tv[i].tv_sec < 0 || (uint64_t)tv[i].tv_sec > UINT32_MAX))
			return -EOVERFLOW;
	struct timespec nows[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	struct op o = { .ns = NST(st), .path = path };
	if (!tv)
		tv = nows;
	if (!NST(st)->v4) {
		struct op r = { .ns = NST(st), .path = path };
		if (tv[0].tv_nsec != UTIME_OMIT) {
			r.sa.set |= RAW3_SET_ATIME;
			r.sa.atime = tv[0];
		}
		if (tv[1].tv_nsec != UTIME_OMIT) {
			r.sa.set |= RAW3_SET_MTIME;
			r.sa.mtime = tv[1];
		}
		if (!r.sa.set)
			return 0;
		int rc = nfsp_call(NST(st)->pool, -1, utimens_raw_fn, &r);
		if (rc != -ENOTSUP || r.refused)
			return rc;
	}
	if (!NST(st)->v4 && (!tv || (tv[0].tv_nsec == UTIME_NOW && tv[1].tv_nsec == UTIME_NOW))) {
		o.tv_null = 1;
		return nfsp_call(NST(st)->pool, -1, utimens_fn, &o);
	}
	if (tv[0].tv_nsec == UTIME_OMIT && tv[1].tv_nsec == UTIME_OMIT)
		return 0;
	struct store_attr cur;
	if (tv[0].tv_nsec == UTIME_OMIT || tv[1].tv_nsec == UTIME_OMIT) {
		int rc = nfs_st_stat(st, path, &cur);
		if (rc)
			return rc;
	}
	struct timeval now;
	gettimeofday(&now, NULL);
	for (int i = 0; i < 2; i++) {
		if (tv[i].tv_nsec == UTIME_NOW) {
			o.tv[i] = now;
		} else if (tv[i].tv_nsec == UTIME_OMIT) {
			const struct timespec *t = i ? &cur.mtime : &cur.atime;
			o.tv[i].tv_sec = t->tv_sec;
			o.tv[i].tv_usec = t->tv_nsec / 1000;
		} else {
			o.tv[i].tv_sec = tv[i].tv_sec;
			o.tv[i].tv_usec = tv[i].tv_nsec / 1000;
		}
	}
	return nfsp_call(NST(st)->pool, -1, utimens_fn, &o);
}
