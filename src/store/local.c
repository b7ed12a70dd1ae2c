/* store/local.c - the new store as a local directory: an NFS export the kernel already
 * mounts (`nfs=/abs/path`). Every call is made relative to a directory fd of the root.
 *
 * Never leave the root: a path's parent directory is opened with openat2(RESOLVE_BENEATH
 * | RESOLVE_NO_SYMLINKS) (or, on kernels without openat2, component by component with
 * O_NOFOLLOW), and the last component is acted on with *at() calls that do not follow a
 * symlink (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW). Store paths never legitimately pass through
 * a symlink (FUSE resolves symlinks itself), so refusing symlinks in the parent part costs
 * nothing and closes every escape. Paths with "..", "." or empty segments are refused.
 *
 * Extended attributes: user.* pass through to the directory's filesystem; other
 * namespaces are not exposed (get: ENODATA, set: ENOTSUP). */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/log.h"
#include "base/naming.h"
#include "base/util.h"

struct local_store {
	struct store base;
	const struct ferry_config *cfg;
	int root;                 /* O_PATH|O_DIRECTORY fd of the root, for the store's life */
	atomic_uint tmpseq;
};

struct store_file {
	int fd;
};

#define LST(st) ((struct local_store *)(st))

/* Open directory `rel` (relative to the root, "" for the root itself) without following
 * any symlink and without leaving the root. Returns an fd or -errno. */
static int open_dir_beneath(struct local_store *ls, const char *rel)
{
	if (!*rel)
		return openat(ls->root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	if (strlen(rel) < PATH_MAX) {    /* a longer path is walked: the kernel takes 4095 */
		long fd = syscall(SYS_openat2, ls->root, rel, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno == ELOOP)
			return -ENOTDIR;   /* a symlink in the parent part: not a directory to us */
		if (errno != ENOSYS)
			return -errno;
	}
	/* No openat2, or a path too long for one call: walk the components. */
	char part[NAME_MAX + 1];
	int dfd = openat(ls->root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	const char *s = rel;
	while (dfd >= 0 && *s) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		memcpy(part, s, n);
		part[n] = '\0';
		int nfd = openat(dfd, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int err = errno;
		close(dfd);
		if (nfd < 0)
			return err == ELOOP ? -ENOTDIR : -err;
		dfd = nfd;
		s = *e ? e + 1 : e;
	}
	return dfd < 0 ? -errno : dfd;
}

/* Split a checked path into its parent directory (opened, into *dfd) and its last
 * component (into name). The root itself yields dfd = root copy and name ".". */
static int parent_of(struct local_store *ls, const char *path, int *dfd, char name[NAME_MAX + 1])
{
	if (!store_path_ok(path))
		return -EINVAL;
	if (path[1] == '\0') {
		*dfd = open_dir_beneath(ls, "");
		strcpy(name, ".");
		return *dfd < 0 ? *dfd : 0;
	}
	const char *slash = strrchr(path, '/');
	char rel[NAME_MAX_PATH + 1];
	size_t dl = (size_t)(slash - path);
	memcpy(rel, path + 1, dl ? dl - 1 : 0);
	rel[dl ? dl - 1 : 0] = '\0';
	strcpy(name, slash + 1);
	int fd = open_dir_beneath(ls, rel);
	if (fd < 0)
		return fd;
	*dfd = fd;
	return 0;
}

static int is_root(const char *p) { return p[0] == '/' && p[1] == '\0'; }

static void attr_from_stat(const struct stat *s, struct store_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = s->st_mode;
	a->nlink = (uint32_t)s->st_nlink;
	a->uid = s->st_uid;
	a->gid = s->st_gid;
	a->size = (uint64_t)s->st_size;
	a->ino = s->st_ino;
	a->rdev = s->st_rdev;
	a->blocks = (uint64_t)s->st_blocks;
	a->atime = s->st_atim;
	a->mtime = s->st_mtim;
	a->ctime = s->st_ctim;
	a->have = STORE_HAVE_ALL;
}

/* Declares dfd/name, opens the parent or returns its error. */
#define WITH_PARENT(ls, path)                                  \
	int dfd;                                               \
	char name[NAME_MAX + 1];                               \
	do {                                                   \
		int prc_ = parent_of((ls), (path), &dfd, name); \
		if (prc_)                                      \
			return prc_;                           \
	} while (0)

static int ret_close(int dfd, int rc)
{
	int err = errno;
	close(dfd);
	return rc < 0 ? -err : 0;
}

static int loc_stat(struct store *st, const char *path, struct store_attr *out)
{
	struct stat sb;
	WITH_PARENT(LST(st), path);
	int rc = fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW);
	if (rc == 0)
		attr_from_stat(&sb, out);
	return ret_close(dfd, rc);
}

static int loc_readdir(struct store *st, const char *path, store_dirent_fn fn, void *arg)
{
	WITH_PARENT(LST(st), path);
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int err = errno;
	close(dfd);
	if (fd < 0)
		return err == ELOOP ? -ENOTDIR : -err;
	DIR *d = fdopendir(fd);
	if (!d) {
		err = errno;
		close(fd);
		return -err;
	}
	int rc = 0;
	struct dirent *e;
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e) {
			rc = errno ? -errno : 0;
			break;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat sb;
		struct store_attr a;
		if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;   /* removed since the listing was read */
			rc = -errno;
			break;
		}
		attr_from_stat(&sb, &a);
		struct store_dirent de = { .name = e->d_name, .type = sb.st_mode & S_IFMT,
					   .attr = &a };
		rc = fn(arg, &de);
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static int loc_statfs(struct store *st, const char *path, struct statvfs *out)
{
	if (!store_path_ok(path))
		return -EINVAL;
	return fstatvfs(LST(st)->root, out) < 0 ? -errno : 0;
}

static int loc_open(struct store *st, const char *path, int flags, uint32_t mode,
		    const char *expect_etag, struct store_file **out)
{
	(void)expect_etag;
	WITH_PARENT(LST(st), path);
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC, (mode_t)(mode & 07777));
	int err = errno;
	close(dfd);
	if (fd < 0)
		return -err;
	struct store_file *f = malloc(sizeof(*f));
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	*out = f;
	return 0;
}

static int loc_fstat(struct store *st, struct store_file *f, struct store_attr *out)
{
	(void)st;
	struct stat sb;
	if (fstat(f->fd, &sb) < 0)
		return -errno;
	attr_from_stat(&sb, out);
	return 0;
}

static int loc_fsetattr(struct store *st, struct store_file *f, const struct store_attr *a,
			unsigned which, struct store_attr *out)
{
	if ((which & (STORE_HAVE_UID | STORE_HAVE_GID)) &&
	    fchown(f->fd, (which & STORE_HAVE_UID) ? a->uid : (uid_t)-1,
		   (which & STORE_HAVE_GID) ? a->gid : (gid_t)-1) < 0)
		return -errno;
	if ((which & STORE_HAVE_MODE) && fchmod(f->fd, a->mode & 07777) < 0)
		return -errno;
	if (which & STORE_HAVE_MTIME) {
		struct timespec tv[2] = { a->mtime, a->mtime };
		if (futimens(f->fd, tv) < 0)
			return -errno;
	}
	return out ? loc_fstat(st, f, out) : 0;
}

static ssize_t loc_pread(struct store *st, struct store_file *f, void *buf, size_t len,
			 uint64_t off)
{
	(void)st;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(f->fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return got ? (ssize_t)got : -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* pwrite on an O_APPEND fd appends on Linux, whatever the offset: that is what we want. */
static ssize_t loc_pwrite(struct store *st, struct store_file *f, const void *buf, size_t len,
			  uint64_t off)
{
	(void)st;
	size_t put = 0;
	while (put < len) {
		ssize_t n = pwrite(f->fd, (const char *)buf + put, len - put, (off_t)(off + put));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return put ? (ssize_t)put : -errno;
		}
		put += (size_t)n;
	}
	return (ssize_t)put;
}

static int loc_read_stream(struct store *st, struct store_file *f, uint64_t off, uint64_t len,
			   store_sink_fn sink, void *arg)
{
	size_t chunk = 1u << 20;
	char *buf = malloc(chunk);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		size_t want = len < chunk ? (size_t)len : chunk;
		ssize_t n = loc_pread(st, f, buf, want, off);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
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

static int loc_ftruncate(struct store *st, struct store_file *f, uint64_t size)
{
	(void)st;
	return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
}

static int loc_fallocate(struct store *st, struct store_file *f, int mode, uint64_t off,
			 uint64_t len)
{
	(void)st;
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;   /* punching or zeroing holes: not offered through the mount */
	if (off > INT64_MAX || len > INT64_MAX - off)
		return -EFBIG;
	return fallocate(f->fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
}

static int loc_fsync(struct store *st, struct store_file *f, int datasync)
{
	(void)st;
	return (datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0 ? -errno : 0;
}

/* close flushes: an NFS client mount then sends the data to the server (close-to-open). */
static int loc_close(struct store *st, struct store_file *f)
{
	(void)st;
	int rc = close(f->fd) < 0 ? -errno : 0;
	free(f);
	return rc;
}

static int loc_mkdir(struct store *st, const char *path, uint32_t mode)
{
	WITH_PARENT(LST(st), path);
	if (is_root(path)) {
		close(dfd);
		return -EEXIST;
	}
	return ret_close(dfd, mkdirat(dfd, name, (mode_t)(mode & 07777)));
}

static int loc_rmdir(struct store *st, const char *path)
{
	WITH_PARENT(LST(st), path);
	if (is_root(path)) {
		close(dfd);
		return -EBUSY;
	}
	return ret_close(dfd, unlinkat(dfd, name, AT_REMOVEDIR));
}

static int loc_unlink(struct store *st, const char *path)
{
	WITH_PARENT(LST(st), path);
	if (is_root(path)) {
		close(dfd);
		return -EISDIR;
	}
	return ret_close(dfd, unlinkat(dfd, name, 0));
}

static int two_parents(struct local_store *ls, const char *a, const char *b, int *da,
		       char na[NAME_MAX + 1], int *db, char nb[NAME_MAX + 1])
{
	if (!store_path_ok(a) || !store_path_ok(b))
		return -EINVAL;
	if (is_root(a) || is_root(b))
		return -EBUSY;
	int rc = parent_of(ls, a, da, na);
	if (rc)
		return rc;
	rc = parent_of(ls, b, db, nb);
	if (rc)
		close(*da);
	return rc;
}

static int loc_rename(struct store *st, const char *from, const char *to, unsigned flags)
{
	int da, db;
	char na[NAME_MAX + 1], nb[NAME_MAX + 1];
	int rc = two_parents(LST(st), from, to, &da, na, &db, nb);
	if (rc)
		return rc;
	rc = renameat2(da, na, db, nb, flags) < 0 ? -errno : 0;
	close(da);
	close(db);
	return rc;
}

static int loc_link(struct store *st, const char *from, const char *to)
{
	int da, db;
	char na[NAME_MAX + 1], nb[NAME_MAX + 1];
	int rc = two_parents(LST(st), from, to, &da, na, &db, nb);
	if (rc)
		return rc;
	rc = linkat(da, na, db, nb, 0) < 0 ? -errno : 0;
	close(da);
	close(db);
	return rc;
}

static int loc_symlink(struct store *st, const char *target, const char *path)
{
	if (!target || !*target)
		return -EINVAL;
	WITH_PARENT(LST(st), path);
	return ret_close(dfd, symlinkat(target, dfd, name));
}

static ssize_t loc_readlink(struct store *st, const char *path, char *buf, size_t size)
{
	char tmp[PATH_MAX];
	WITH_PARENT(LST(st), path);
	ssize_t n = readlinkat(dfd, name, tmp, sizeof(tmp) - 1);
	int err = errno;
	close(dfd);
	if (n < 0)
		return -err;
	if (size) {
		size_t k = (size_t)n < size - 1 ? (size_t)n : size - 1;
		memcpy(buf, tmp, k);
		buf[k] = '\0';
	}
	return n;
}

static int loc_mknod(struct store *st, const char *path, uint32_t mode, uint64_t rdev)
{
	WITH_PARENT(LST(st), path);
	return ret_close(dfd, mknodat(dfd, name, (mode_t)mode, (dev_t)rdev));
}

/* Open the last component itself as O_PATH without following it; *isdir/link tell
 * what it is. Used where Linux has no *at() call that refuses to follow a symlink. */
static int open_node(struct local_store *ls, const char *path, struct stat *sb)
{
	WITH_PARENT(ls, path);
	int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int err = errno;
	close(dfd);
	if (fd < 0)
		return -err;
	if (fstat(fd, sb) < 0) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

static void proc_path(int fd, char out[64]) { snprintf(out, 64, "/proc/self/fd/%d", fd); }

static int loc_chmod(struct store *st, const char *path, uint32_t mode)
{
	struct stat sb;
	char pp[64];
	int fd = open_node(LST(st), path, &sb);
	if (fd < 0)
		return fd;
	int rc;
	if (S_ISLNK(sb.st_mode)) {
		rc = -EOPNOTSUPP;   /* Linux symlinks have no mode of their own */
	} else {
		proc_path(fd, pp);
		rc = chmod(pp, (mode_t)(mode & 07777)) < 0 ? -errno : 0;
	}
	close(fd);
	return rc;
}

static int loc_chown(struct store *st, const char *path, uint32_t uid, uint32_t gid)
{
	WITH_PARENT(LST(st), path);
	return ret_close(dfd, fchownat(dfd, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW));
}

static int loc_utimens(struct store *st, const char *path, const struct timespec tv[2])
{
	WITH_PARENT(LST(st), path);
	return ret_close(dfd, utimensat(dfd, name, tv, AT_SYMLINK_NOFOLLOW));
}

static int loc_truncate(struct store *st, const char *path, uint64_t size)
{
	WITH_PARENT(LST(st), path);
	int fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	int err = errno;
	close(dfd);
	if (fd < 0)
		return err == ELOOP ? -EINVAL : -err;
	int rc = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int user_ns(const char *name) { return strncmp(name, "user.", 5) == 0; }

static ssize_t loc_getxattr(struct store *st, const char *path, const char *name, void *buf,
			    size_t size)
{
	struct stat sb;
	char pp[64];
	if (!user_ns(name))
		return -ENODATA;
	int fd = open_node(LST(st), path, &sb);
	if (fd < 0)
		return fd;
	ssize_t n = -ENODATA;   /* user.* cannot exist on a symlink */
	if (!S_ISLNK(sb.st_mode)) {
		proc_path(fd, pp);
		n = getxattr(pp, name, buf, size);
		if (n < 0)
			n = -errno;
	}
	close(fd);
	return n;
}

static int loc_setxattr(struct store *st, const char *path, const char *name, const void *buf,
			size_t size, int flags)
{
	struct stat sb;
	char pp[64];
	if (!user_ns(name))
		return -ENOTSUP;
	int fd = open_node(LST(st), path, &sb);
	if (fd < 0)
		return fd;
	int rc = -EPERM;
	if (!S_ISLNK(sb.st_mode)) {
		proc_path(fd, pp);
		rc = setxattr(pp, name, buf, size, flags) < 0 ? -errno : 0;
	}
	close(fd);
	return rc;
}

static int loc_removexattr(struct store *st, const char *path, const char *name)
{
	struct stat sb;
	char pp[64];
	if (!user_ns(name))
		return -ENODATA;
	int fd = open_node(LST(st), path, &sb);
	if (fd < 0)
		return fd;
	int rc = -ENODATA;
	if (!S_ISLNK(sb.st_mode)) {
		proc_path(fd, pp);
		rc = removexattr(pp, name) < 0 ? -errno : 0;
	}
	close(fd);
	return rc;
}

/* The user.* names only, as listxattr(2) lays them out (NUL-separated). */
static ssize_t loc_listxattr(struct store *st, const char *path, char *buf, size_t size)
{
	struct stat sb;
	char pp[64];
	char *all = NULL;
	ssize_t rc;
	int fd = open_node(LST(st), path, &sb);
	if (fd < 0)
		return fd;
	if (S_ISLNK(sb.st_mode)) {
		rc = 0;
		goto close_fd;
	}
	proc_path(fd, pp);
	ssize_t n = listxattr(pp, NULL, 0);
	if (n < 0) {
		rc = -errno;
		goto close_fd;
	}
	all = malloc((size_t)n + 1);
	if (!all) {
		rc = -ENOMEM;
		goto close_fd;
	}
	n = listxattr(pp, all, (size_t)n);
	if (n < 0) {
		rc = -errno;
		goto free_all;
	}
	size_t out = 0;
	for (ssize_t i = 0; i < n;) {
		size_t l = strlen(all + i) + 1;
		if (user_ns(all + i)) {
			if (size) {
				if (out + l > size) {
					rc = -ERANGE;
					goto free_all;
				}
				memcpy(buf + out, all + i, l);
			}
			out += l;
		}
		i += (ssize_t)l;
	}
	rc = (ssize_t)out;
free_all:
	free(all);
close_fd:
	close(fd);
	return rc;
}

/* put: a temporary file in the same directory, written, made durable, given its
 * metadata, then renamed over the final name. */
static int loc_put(struct store *st, const char *path, const struct store_source *src)
{
	struct local_store *ls = LST(st);
	char tmp[NAME_MAX + 1];
	char *buf = NULL;
	int fd = -1;
	int rc;
	size_t chunk = 1u << 20;

	if (!store_path_ok(path) || is_root(path))
		return -EINVAL;
	WITH_PARENT(ls, path);
	snprintf(tmp, sizeof(tmp), ".ferryfs.put.%lx.%x", (long)getpid(),
		 atomic_fetch_add(&ls->tmpseq, 1));
	buf = malloc(chunk);
	if (!buf) {
		rc = -ENOMEM;
		goto close_dir;
	}
	fd = openat(dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
		    src->have_meta ? (mode_t)(src->mode & 07777) : 0644);
	if (fd < 0) {
		rc = -errno;
		goto free_buf;
	}
	for (uint64_t off = 0; off < src->size;) {
		size_t want = src->size - off < chunk ? (size_t)(src->size - off) : chunk;
		ssize_t n = src->read(src->arg, buf, want, off);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			goto remove_tmp;
		}
		struct store_file f = { .fd = fd };
		ssize_t w = loc_pwrite(st, &f, buf, (size_t)n, off);
		if (w < 0) {
			rc = (int)w;
			goto remove_tmp;
		}
		off += (uint64_t)n;
	}
	if (src->have_meta) {
		struct timespec tv[2] = { src->mtime, src->mtime };
		if (fchown(fd, src->uid, src->gid) < 0 || fchmod(fd, src->mode & 07777) < 0 ||
		    futimens(fd, tv) < 0) {
			rc = -errno;
			goto remove_tmp;
		}
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		goto remove_tmp;
	}
	rc = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (rc)
		goto remove_tmp;
	if (renameat(dfd, tmp, dfd, name) < 0) {
		rc = -errno;
		goto remove_tmp;
	}
	free(buf);
	close(dfd);
	return 0;
remove_tmp:
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
free_buf:
	free(buf);
close_dir:
	close(dfd);
	return rc;
}

static int loc_probe(struct store *st)
{
	struct stat sb;
	if (fstat(LST(st)->root, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		log_err("local: %s is not a usable directory", LST(st)->cfg->nfs);
		return -ENOTDIR;
	}
	if (faccessat(LST(st)->root, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		int err = errno;
		log_err("local: %s: %s", LST(st)->cfg->nfs, strerror(err));
		return -err;
	}
	return 0;
}

static void loc_destroy(struct store *st)
{
	close(LST(st)->root);
	free(st);
}

static const struct store_ops local_ops = {
	.name = "local",
	.destroy = loc_destroy,
	.stat = loc_stat,
	.readdir = loc_readdir,
	.statfs = loc_statfs,
	.open = loc_open,
	.fstat = loc_fstat,
	.fsetattr = loc_fsetattr,
	.pread = loc_pread,
	.pwrite = loc_pwrite,
	.read_stream = loc_read_stream,
	.ftruncate = loc_ftruncate,
	.fallocate = loc_fallocate,
	.fsync = loc_fsync,
	.close = loc_close,
	.put = loc_put,
	.mkdir = loc_mkdir,
	.rmdir = loc_rmdir,
	.unlink = loc_unlink,
	.rename = loc_rename,
	.link = loc_link,
	.symlink = loc_symlink,
	.readlink = loc_readlink,
	.mknod = loc_mknod,
	.chmod = loc_chmod,
	.chown = loc_chown,
	.utimens = loc_utimens,
	.truncate = loc_truncate,
	.getxattr = loc_getxattr,
	.setxattr = loc_setxattr,
	.listxattr = loc_listxattr,
	.removexattr = loc_removexattr,
	.probe = loc_probe,
};

int store_local_new(const struct ferry_config *cfg, struct store **out)
{
	if (!cfg->nfs || cfg->nfs[0] != '/') {
		log_err("local: not an absolute path: %s", cfg->nfs ? cfg->nfs : "(unset)");
		return -EINVAL;
	}
	struct local_store *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->root = open(cfg->nfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ls->root < 0) {
		int err = errno;
		log_err("local: cannot open %s: %s", cfg->nfs, strerror(err));
		free(ls);
		return -err;
	}
	ls->base.ops = &local_ops;
	ls->cfg = cfg;
	*out = &ls->base;
	return 0;
}
