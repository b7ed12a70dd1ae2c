/* cmd-verify.c - `ferryctl verify [--state DIR] PATH...|--all [MOUNT]`: compare each
 * migrated file's copy on the new store with what was migrated from S3. The copy is read
 * through the mount (a migrated file is served from NFS) and hashed; then
 *   - its size must be the size recorded at migration,
 *   - its SHA-256 the one recorded at migration (user.ferryfs.sha256),
 *   - where S3's current ETag is a plain MD5 (single-part upload), its MD5 that ETag,
 *   - S3's current ETag the ETag recorded at migration (else S3 changed since).
 * Files not migrated (s3-only, queued, ...) are counted, not compared; `modified` files
 * differ from S3 by design and are skipped. Exit 1 on any mismatch, each one listed. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "ledger/ledger.h"
#include "base/util.h"

struct verify {
	struct ledger *l;         /* NULL: xattrs only */
	const char *root;
	uint64_t ok, mismatched, skipped, not_migrated, errors;
};

static struct verify *V;

static int hash_file(const char *path, char sha[65], char md5[33], uint64_t *size)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	EVP_MD_CTX *s = EVP_MD_CTX_new(), *m = EVP_MD_CTX_new();
	unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	int rc = 0;
	*size = 0;
	if (!s || !m || !EVP_DigestInit_ex(s, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(m, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(s, buf, (size_t)n);
		EVP_DigestUpdate(m, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	EVP_DigestFinal_ex(s, md, &mdlen);
	util_hex(md, mdlen, sha);
	EVP_DigestFinal_ex(m, md, &mdlen);
	util_hex(md, mdlen, md5);
out:
	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(m);
	close(fd);
	return rc;
}

static int is_md5(const char *etag)
{
	if (strlen(etag) != 32)
		return 0;
	for (const char *p = etag; *p; p++)
		if (!strchr("0123456789abcdefABCDEF", *p))
			return 0;
	return 1;
}

/* Reasons a file differs, joined into one MISMATCH line per file. */
static struct buf why;

static void mismatch(const char *path, const char *fmt, const char *a, const char *b)
{
	(void)path;
	if (why.len)
		buf_puts(&why, "; ");
	buf_printf(&why, fmt, a, b);
}

/* Verify one file (full path through the mount; rel its path in the mount). */
static void verify_one(const char *full, const char *rel)
{
	char *state = NULL, *sha_x = NULL, *etag_now = NULL;
	struct ledger_file rec;
	int have_rec = V->l && ledger_file_get(V->l, rel, &rec) == 0;
	int rc = ctl_getxattr(full, "user.ferryfs.state", &state);
	if (rc) {
		ctl_err("%s: %s", full, strerror(-rc));
		V->errors++;
		return;
	}
	if (!strcmp(state, "modified") || !strcmp(state, "conflict") ||
	    !strcmp(state, "nfs-only")) {
		V->skipped++;
		goto out;
	}
	if (strcmp(state, "migrated")) {
		V->not_migrated++;
		goto out;
	}
	char sha[65], md5[33], sz[2][32];
	uint64_t size;
	if ((rc = hash_file(full, sha, md5, &size))) {
		ctl_err("%s: cannot read: %s", full, strerror(-rc));
		V->errors++;
		goto out;
	}
	buf_reset(&why);
	if (have_rec && rec.size != size) {
		snprintf(sz[0], sizeof(sz[0]), "%llu", (unsigned long long)size);
		snprintf(sz[1], sizeof(sz[1]), "%llu", (unsigned long long)rec.size);
		mismatch(full, "size %s, %s bytes were migrated", sz[0], sz[1]);
	}
	if (ctl_getxattr(full, "user.ferryfs.sha256", &sha_x) == 0 && strcmp(sha_x, sha))
		mismatch(full, "SHA-256 %s, %s was recorded at migration", sha, sha_x);
	rc = ctl_getxattr(full, "user.ferryfs.etag", &etag_now);
	if (rc == 0) {
		if (is_md5(etag_now) && strcasecmp(etag_now, md5))
			mismatch(full, "MD5 %s, S3's ETag is %s", md5, etag_now);
		if (have_rec && rec.etag[0] && strcmp(rec.etag, etag_now))
			mismatch(full, "S3's object changed since migration (ETag %s, migrated %s)",
				 etag_now, rec.etag);
	} else if (rc == -ENODATA) {
		mismatch(full, "%s%sthe S3 object is gone", "", "");
	} else {
		ctl_err("%s: cannot ask S3: %s", full, strerror(-rc));
		V->errors++;
	}
	if (!sha_x && (!etag_now || !is_md5(etag_now)))
		printf("UNCHECKED %s: no checksum recorded and a multipart ETag: size only\n",
		       full);
	if (why.len) {
		printf("MISMATCH %s: %s\n", full, why.data);
		V->mismatched++;
	} else {
		V->ok++;
	}
out:
	free(state);
	free(sha_x);
	free(etag_now);
}

static int walk_fn(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F && S_ISREG(sb->st_mode)) {
		const char *rel = fpath + strlen(V->root);
		verify_one(fpath, *rel ? rel : "/");
	}
	if ((V->ok + V->mismatched) % 100 == 0)
		ctl_progress((double)(V->ok + V->mismatched), 0, "%llu files verified",
			     (unsigned long long)(V->ok + V->mismatched));
	return 0;
}

struct all_walk {
	uint64_t total, seen;
};

static int count_migrated(const char *path, const struct ledger_file *rec, void *arg)
{
	(void)path;
	struct all_walk *w = arg;
	w->total += rec->state == LEDGER_MIGRATED;
	return 0;
}

static int verify_ledger_one(const char *path, const struct ledger_file *rec, void *arg)
{
	struct all_walk *w = arg;
	char full[PATH_MAX + 4096];
	if (rec->state == LEDGER_MODIFIED || rec->state == LEDGER_NFS_ONLY ||
	    rec->state == LEDGER_CONFLICT) {
		V->skipped++;     /* differ from S3 by design, as in verify_one */
		return 0;
	}
	if (rec->state != LEDGER_MIGRATED)
		return 0;
	snprintf(full, sizeof(full), "%s%s", strcmp(V->root, "/") ? V->root : "", path);
	verify_one(full, path);
	w->seen++;
	ctl_progress((double)w->seen, (double)w->total, "%llu of %llu migrated files verified",
		     (unsigned long long)w->seen, (unsigned long long)w->total);
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	const char *state = NULL;
	int all = 0, npaths = 0;
	char **paths = calloc((size_t)argc, sizeof(*paths));
	struct verify v = { 0 };
	int status = 0;
	if (!paths)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all"))
			all = 1;
		else if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (argv[i][0] == '-') {
			free(paths);
			return 2;
		} else
			paths[npaths++] = argv[i];
	}
	if (!npaths && !all) {
		free(paths);
		return 2;
	}
	if (!npaths)
		paths[npaths++] = ".";
	V = &v;
	for (int i = 0; i < npaths; i++) {
		char root[PATH_MAX], rel[PATH_MAX], real[PATH_MAX];
		int rc = ctl_mount_of(paths[i], root, rel);
		if (rc) {
			ctl_err("%s: %s", paths[i],
				rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
			status = 1;
			continue;
		}
		char dir[PATH_MAX];
		if (ctl_state_dir(root, state, dir, sizeof(dir)) == 0)
			ledger_open(dir, LEDGER_RDONLY, &v.l);
		if (all && !v.l) {
			ctl_err("--all needs the mount's ledger (give --state DIR)");
			status = 1;
			continue;
		}
		v.root = root;
		if (all) {
			struct all_walk w = { 0 };
			ledger_foreach_file(v.l, NULL, count_migrated, &w);
			ledger_foreach_file(v.l, NULL, verify_ledger_one, &w);
		} else {
			struct stat sb;
			if (!realpath(paths[i], real) || stat(real, &sb)) {
				ctl_err("%s: %s", paths[i], strerror(errno));
				status = 1;
			} else if (S_ISDIR(sb.st_mode)) {
				nftw(real, walk_fn, 32, FTW_PHYS | FTW_MOUNT);
			} else {
				verify_one(real, rel);
			}
		}
		ledger_close(v.l);
		v.l = NULL;
	}
	ctl_progress_done();
	buf_free(&why);
	printf("verified %llu file(s): %llu identical, %llu differ; %llu not migrated, "
	       "%llu modified or nfs-only (skipped), %llu error(s)\n",
	       (unsigned long long)(v.ok + v.mismatched), (unsigned long long)v.ok,
	       (unsigned long long)v.mismatched, (unsigned long long)v.not_migrated,
	       (unsigned long long)v.skipped, (unsigned long long)v.errors);
	free(paths);
	return status || v.mismatched || v.errors ? 1 : 0;
}

const struct ctl_cmd ctl_cmd_verify = { "verify",
					"verify [--state DIR] PATH... | verify --all [MOUNT]",
					cmd_verify };
