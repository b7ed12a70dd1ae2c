/* store/nfs_handle.c - the NFS store's helpers: attribute conversion, the NFSv4 limits
 * libnfs 4.0 imposes, and NFSv3 by handle: the export root's handle, the walk from the
 * deepest cached directory handle, and the parent handle each by-handle call is sent to
 * (see nfs.c's file comment).
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

void nst_attr_from_stat(const struct nfs_stat_64 *s, struct store_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = (uint32_t)s->nfs_mode;
	a->nlink = (uint32_t)s->nfs_nlink;
	a->uid = (uint32_t)s->nfs_uid;
	a->gid = (uint32_t)s->nfs_gid;
	a->size = s->nfs_size;
	a->ino = s->nfs_ino;
	a->rdev = s->nfs_rdev;
	a->blocks = s->nfs_used ? (s->nfs_used + 511) / 512 : s->nfs_blocks;
	a->atime.tv_sec = (time_t)s->nfs_atime;
	a->atime.tv_nsec = (long)s->nfs_atime_nsec;
	a->mtime.tv_sec = (time_t)s->nfs_mtime;
	a->mtime.tv_nsec = (long)s->nfs_mtime_nsec;
	a->ctime.tv_sec = (time_t)s->nfs_ctime;
	a->ctime.tv_nsec = (long)s->nfs_ctime_nsec;
	a->have = STORE_HAVE_ALL;
}

/* NF3 file types (NF3REG = 1 ... NF3FIFO = 7) as S_IF* bits. */
uint32_t nst_nf3_type(uint32_t t)
{
	switch (t) {
	case 1: return S_IFREG;
	case 2: return S_IFDIR;
	case 3: return S_IFBLK;
	case 4: return S_IFCHR;
	case 5: return S_IFLNK;
	case 6: return S_IFSOCK;
	case 7: return S_IFIFO;
	default: return 0;
	}
}

/* libnfs 4.0's NFSv4 OPEN does not advance the open-owner sequence id when the server
 * fails an OPEN (EEXIST, ...), while the server does: every later OPEN on that context
 * then gets the cached failure replayed, or crashes libnfs. So after a failed v4 OPEN the
 * context is discarded (a new one, a new client, is made on next use), and an O_EXCL
 * create first looks the name up so that the common EEXIST never reaches the server. */
int nst_v4_open_failed(struct nfsp_conn *c, int rc)
{
	if (rc < 0)
		nfsp_discard(c);
	return rc;
}

/* STAT. libnfs 4.0's NFSv3 stat walks from the export root, one LOOKUP per component,
 * then sends a GETATTR: depth + 1 round trips. Here a v3 stat is one LOOKUP of the last
 * name in its parent's handle, taken from the handle cache (nfs/fhcache.h); the LOOKUP
 * reply carries the attributes. Parents not cached are looked up (and cached) on the way,
 * so a cold path costs one LOOKUP per component and a warm one exactly one. A component
 * that is not a directory ends the walk with ENOTDIR: the walk never follows a symlink
 * (libnfs's would), so nothing on the export can lead a stat outside it. A cached handle
 * the server calls stale (the directory was removed by another host) is forgotten and
 * the walk starts again from the root. NFSv4 keeps libnfs's stat: one COMPOUND. */

int64_t nst_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The export root's handle, learnt once (and checked: its GETATTR must name the file id
 * libnfs reports for "/"); -ENOTSUP when it does not check out (use libnfs's walk). */
static int v3_root(struct nfs_store *ns, struct nfsp_conn *c, struct raw3_fh *out)
{
	pthread_mutex_lock(&ns->root_lock);
	int state = ns->root_state;
	if (state == 1)
		*out = ns->root;
	pthread_mutex_unlock(&ns->root_lock);
	if (state)
		return state == 1 ? 0 : -ENOTSUP;
	struct raw3_fh fh;
	struct nfs_stat_64 a, b;
	int rc = raw3_root(c->nfs, &fh);
	if (rc == 0)
		rc = raw3_getattr(c->nfs, &fh, &a);
	if (rc == 0)
		rc = nfs_lstat64(c->nfs, "/", &b);
	if (rc)
		return rc == -EPROTO ? -ENOTSUP : rc;
	state = a.nfs_ino == b.nfs_ino && S_ISDIR(a.nfs_mode) ? 1 : -1;
	if (state < 0)
		log_warn("nfs: the export root's handle does not check out; stat walks each path");
	pthread_mutex_lock(&ns->root_lock);
	ns->root = fh;
	ns->root_state = state;
	pthread_mutex_unlock(&ns->root_lock);
	*out = fh;
	return state == 1 ? 0 : -ENOTSUP;
}

/* One walk from the deepest cached ancestor (or the root: use_cache 0). */
static int v3_walk(struct nfs_store *ns, struct nfsp_conn *c, const char *path, int use_cache,
		   struct raw3_fh *fh, struct nfs_stat_64 *st, size_t *from_cache)
{
	struct raw3_fh dir, obj;
	char name[NAME_MAX + 1];
	int64_t now = nst_mono_ms();
	size_t start = 0;          /* path[0..start) is the directory the walk starts in */
	int rc = v3_root(ns, c, &dir);
	if (rc)
		return rc;
	if (use_cache) {
		for (const char *p = strrchr(path, '/'); p && p > path;
		     p = memrchr(path, '/', (size_t)(p - path))) {
			if (fhc_get(ns->fhc, path, (size_t)(p - path), now, &dir) == 0) {
				start = (size_t)(p - path);
				break;
			}
		}
	}
	*from_cache = start;
	const char *s = path + start + 1;
	for (;;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		int have = 0;
		memcpy(name, s, n);
		name[n] = '\0';
		rc = raw3_lookup(c->nfs, &dir, name, &obj, st, &have);
		if (rc == 0 && !have)
			rc = raw3_getattr(c->nfs, &obj, st);
		if (rc)
			return rc;
		if (S_ISDIR(st->nfs_mode))
			fhc_put(ns->fhc, path, (size_t)(e - path), &obj, now);
		if (!*e) {
			*fh = obj;
			return 0;
		}
		if (!S_ISDIR(st->nfs_mode))
			return -ENOTDIR;
		dir = obj;
		s = e + 1;
	}
}

/* The handle (and attributes) of path. With st NULL a directory the cache holds costs
 * nothing (only directories are cached, and nothing is asked of the server). */
int nst_v3_resolve(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		      struct raw3_fh *fh, struct nfs_stat_64 *st)
{
	struct raw3_fh root;
	struct nfs_stat_64 tmp;
	size_t cached = 0;
	int rc = v3_root(ns, c, &root);
	if (rc)
		return rc;
	if (nst_is_root(path)) {
		*fh = root;
		return st ? raw3_getattr(c->nfs, &root, st) : 0;
	}
	if (!st) {
		if (fhc_get(ns->fhc, path, strlen(path), nst_mono_ms(), fh) == 0)
			return 0;
		st = &tmp;
	}
	rc = v3_walk(ns, c, path, 1, fh, st, &cached);
	if (rc == -ESTALE && cached) {
		/* a cached directory is gone: forget it and walk from the root */
		char *dir = strndup(path, cached);
		if (dir) {
			fhc_forget(ns->fhc, dir);
			free(dir);
		}
		rc = v3_walk(ns, c, path, 0, fh, st, &cached);
	}
	if (rc == -ESTALE) {
		/* even the root's handle is refused (a server that does not keep handles
		 * across restarts): learn it again, once */
		pthread_mutex_lock(&ns->root_lock);
		ns->root_state = 0;
		pthread_mutex_unlock(&ns->root_lock);
		fhc_forget(ns->fhc, "/");
		rc = v3_walk(ns, c, path, 0, fh, st, &cached);
	}
	return rc;
}

int nst_v3_stat(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		   struct nfs_stat_64 *st)
{
	struct raw3_fh fh;
	return nst_v3_resolve(ns, c, path, &fh, st);
}

/* The handle of path's parent directory, and path's last name (pointing into path). */
int nst_v3_parent(struct nfs_store *ns, struct nfsp_conn *c, const char *path,
		     struct raw3_fh *dir, const char **name)
{
	char parent[NAME_MAX_PATH + 1];
	const char *slash = strrchr(path, '/');
	*name = slash + 1;
	if (slash == path)
		return nst_v3_resolve(ns, c, "/", dir, NULL);
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	struct nfs_stat_64 st;
	if (fhc_get(ns->fhc, parent, strlen(parent), nst_mono_ms(), dir) == 0)
		return 0;
	int rc = nst_v3_resolve(ns, c, parent, dir, &st);
	if (rc == 0 && !S_ISDIR(st.nfs_mode))
		rc = -ENOTDIR;
	return rc;
}

/* A call by handle failed with ESTALE: the cached handle of path's parent may name a
 * directory another host removed. Forget it (the caller tries once more). */
void nst_v3_forget_parent(struct nfs_store *ns, const char *path)
{
	char parent[NAME_MAX_PATH + 1];
	const char *slash = strrchr(path, '/');
	if (slash == path) {
		fhc_forget(ns->fhc, "/");
		return;
	}
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	fhc_forget(ns->fhc, parent);
}

/* Whether this store speaks NFSv3 by handle: 1, 0 (use libnfs's paths), or -errno. */
int nst_v3_raw(struct nfs_store *ns, struct nfsp_conn *c)
{
	struct raw3_fh root;
	if (!ns->fhc)
		return 0;
	int rc = v3_root(ns, c, &root);
	return rc == -ENOTSUP ? 0 : rc ? rc : 1;
}

/* libnfs 4.0 encodes an NFSv4 request into 4 KiB, one LOOKUP per component of the path,
 * and a longer one fails with a wrong errno: such a path is ENAMETOOLONG here. NFSv3 goes
 * by handle, one name at a time, and has no such limit. */
int nst_v4_too_long(struct store *st, const char *path)
{
	if (!NST(st)->v4 || !path)
		return 0;
	size_t n = strlen(path), parts = 0;
	for (const char *c = path; *c; c++)
		parts += *c == '/';
	return n + 12 * parts + 768 > 4096;
}
