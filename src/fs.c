/* fs.c - the FUSE operations (high-level, path-based API, multi-threaded loop). Every
 * call from the kernel lands here: look the path up through route.c, then call the store
 * that serves it. Handlers return 0 / -errno as libfuse expects.
 *
 * Open files: struct fs_file is the FUSE file handle (fi->fh); it remembers which store
 * serves the file so that reads never re-decide mid-file. Several FUSE threads may read
 * one handle at once; the stores allow that. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stats.h"
#include "util.h"

struct fs_file {
	struct store *st;          /* the store serving this open file */
	struct store_file *f;
	enum route_src src;
};

static struct ferry *fs_ctx(void)
{
	return fuse_get_context()->private_data;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct ferry *fy = fs_ctx();
	cfg->use_ino = 1;              /* report our stable inode numbers (spec 4) */
	cfg->readdir_ino = 1;
	cfg->entry_timeout = 1.0;      /* other hosts change NFS and S3: keep caches short */
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	cfg->hard_remove = 1;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->max_readahead = 1u << 20;
	log_notice("mounted %s (S3 %s/%s%s, new store %s)", fy->cfg->mountpoint, fy->cfg->s3_endpoint,
		   fy->cfg->s3_bucket, fy->cfg->s3_prefix[0] ? "" : "", fy->cfg->nfs);
	return fy;
}

static void fs_destroy(void *private_data)
{
	struct ferry *fy = private_data;
	log_notice("unmounting %s", fy->cfg->mountpoint);
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct ferry *fy = fs_ctx();
	struct route_entry e;
	int rc;
	if (fi && fi->fh) {
		struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
		memset(&e, 0, sizeof(e));
		e.src = h->src;
		rc = store_fstat(h->st, h->f, &e.attr);
		if (rc == 0) {
			route_to_stat(&fy->route, path, &e, st);
			return 0;
		}
	}
	rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	route_to_stat(&fy->route, path, &e, st);
	return 0;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct ferry *fy = fs_ctx();
	struct route_entry e;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (!S_ISLNK(e.attr.mode))
		return -EINVAL;
	ssize_t n = store_readlink(fy->nfs, path, buf, size);
	return n < 0 ? (int)n : 0;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
	int plus;
};

static int fill_one(void *arg, const char *name, const struct stat *st)
{
	struct fill_ctx *c = arg;
	if (c->filler(c->buf, name, st, 0, c->plus ? FUSE_FILL_DIR_PLUS : 0))
		return -ENOBUFS;      /* never happens with offset 0: libfuse buffers it all */
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	struct ferry *fy = fs_ctx();
	struct fill_ctx c = { buf, filler, (flags & FUSE_READDIR_PLUS) != 0 };
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	return route_readdir(&fy->route, path, fill_one, &c);
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct ferry *fy = fs_ctx();
	struct route_entry e;
	struct fs_file *h = NULL;
	int rc;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;         /* the write path arrives with the full mount contract */
	rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (S_ISDIR(e.attr.mode))
		return -EISDIR;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->src = e.src;
	h->st = e.src == ROUTE_NFS ? fy->nfs : fy->s3;
	rc = store_open(h->st, path, O_RDONLY, 0, e.src == ROUTE_S3 ? e.attr.etag : NULL, &h->f);
	if (rc)
		goto err_free;
	fi->fh = (uint64_t)(uintptr_t)h;
	if (e.src == ROUTE_S3)
		fi->keep_cache = 0;
	return 0;
err_free:
	free(h);
	return rc;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
	ssize_t n = store_pread(h->st, h->f, buf, size, (uint64_t)off);
	if (n < 0)
		return (int)n;
	if (h->src == ROUTE_S3) {
		stats_inc(reads_s3);
		stats_add(bytes_s3, (uint64_t)n);
	} else {
		stats_inc(reads_nfs);
		stats_add(bytes_nfs, (uint64_t)n);
	}
	return (int)n;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
	int rc = store_close(h->st, h->f);
	free(h);
	return rc;
}

static int fs_statfs(const char *path, struct statvfs *out)
{
	(void)path;
	struct ferry *fy = fs_ctx();
	return store_statfs(fy->nfs, "/", out);     /* spec 5: statfs reports the new store */
}

static const struct fuse_operations fs_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.statfs = fs_statfs,
};

const struct fuse_operations *fs_operations(void)
{
	return &fs_ops;
}
