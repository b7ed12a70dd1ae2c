/* whiteout.c - whiteout and opaque markers on the new store (see whiteout.h). Each
 * operation is one or two NFS calls; no locks: the markers' atomic create/unlink on the
 * server is what makes concurrent hosts safe. */
#include "view/whiteout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "base/naming.h"
#include "base/stats.h"
#include "base/util.h"

/* Split path into parent (without trailing '/', "" for the root) and leaf. */
static void split(const char *path, const char **leaf, size_t *parent_len)
{
	const char *slash = strrchr(path, '/');
	*leaf = slash + 1;
	*parent_len = (size_t)(slash - path);
}

int wh_marker_path(const char *path, char *out, size_t outlen)
{
	const char *leaf;
	size_t plen;
	char hex[65];
	split(path, &leaf, &plen);
	if (util_sha256_hex(leaf, strlen(leaf), hex))
		return -EIO;
	int n = snprintf(out, outlen, "%.*s/" WH_PREFIX "%s", (int)plen, path, hex);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int marker_exists(struct store *nfs, const char *marker)
{
	struct store_attr a;
	int rc = store_stat(nfs, marker, &a);
	if (rc == 0)
		return 1;
	return rc == -ENOENT || rc == -ENOTDIR ? 0 : rc;
}

int wh_is_whiteout(struct store *nfs, const char *path)
{
	char m[NAME_MAX_PATH + 100];
	if (!strcmp(path, "/"))
		return 0;
	int rc = wh_marker_path(path, m, sizeof(m));
	return rc ? rc : marker_exists(nfs, m);
}

int wh_create(struct store *nfs, const char *path)
{
	char m[NAME_MAX_PATH + 100];
	struct store_file *f;
	const char *leaf;
	size_t plen;
	int rc = wh_marker_path(path, m, sizeof(m));
	if (rc)
		return rc;
	rc = store_open(nfs, m, O_WRONLY | O_CREAT | O_EXCL, 0644, NULL, &f);
	if (rc == -EEXIST)
		return 0;
	if (rc)
		return rc;
	stats_inc(whiteouts);
	split(path, &leaf, &plen);
	ssize_t n = store_pwrite(nfs, f, leaf, strlen(leaf), 0);
	int crc = store_close(nfs, f);
	if (n < 0)
		return (int)n;
	return crc;
}

int wh_remove(struct store *nfs, const char *path)
{
	char m[NAME_MAX_PATH + 100];
	int rc = wh_marker_path(path, m, sizeof(m));
	if (rc)
		return rc;
	rc = store_unlink(nfs, m);
	return rc == -ENOENT || rc == -ENOTDIR ? 0 : rc;
}

static int opaque_path(const char *dir, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/" WH_OPAQUE, strcmp(dir, "/") ? dir : "");
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int wh_is_opaque(struct store *nfs, const char *dir)
{
	char m[NAME_MAX_PATH + 100];
	int rc = opaque_path(dir, m, sizeof(m));
	return rc ? rc : marker_exists(nfs, m);
}

int wh_make_opaque(struct store *nfs, const char *dir)
{
	char m[NAME_MAX_PATH + 100];
	struct store_file *f;
	int rc = opaque_path(dir, m, sizeof(m));
	if (rc)
		return rc;
	rc = store_open(nfs, m, O_WRONLY | O_CREAT | O_EXCL, 0644, NULL, &f);
	if (rc == -EEXIST)
		return 0;
	return rc ? rc : store_close(nfs, f);
}

struct clear_ctx {
	struct store *nfs;
	const char *dir;
	int rc;
};

static int clear_one(void *arg, const struct store_dirent *de)
{
	struct clear_ctx *c = arg;
	char m[NAME_MAX_PATH + 100];
	if (strncmp(de->name, WH_PREFIX, sizeof(WH_PREFIX) - 1) && strcmp(de->name, WH_OPAQUE))
		return 0;
	snprintf(m, sizeof(m), "%s/%s", strcmp(c->dir, "/") ? c->dir : "", de->name);
	int rc = store_unlink(c->nfs, m);
	if (rc && rc != -ENOENT && !c->rc)
		c->rc = rc;
	return 0;
}

int wh_clear_dir(struct store *nfs, const char *dir)
{
	struct clear_ctx c = { nfs, dir, 0 };
	int rc = store_readdir(nfs, dir, clear_one, &c);
	return rc ? rc : c.rc;
}

int wh_is_hidden(struct store *nfs, const char *path)
{
	char p[NAME_MAX_PATH + 2];
	snprintf(p, sizeof(p), "%s", path);
	while (strcmp(p, "/")) {
		int rc = wh_is_whiteout(nfs, p);
		if (rc)
			return rc;
		char *slash = strrchr(p, '/');
		if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
		rc = wh_is_opaque(nfs, p);
		if (rc)
			return rc;
	}
	return 0;
}
