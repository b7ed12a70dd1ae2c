/* cmd-rebuild.c - `ferryctl rebuild --state DIR [--no-hash] [CONFIG] [-o KEY=VALUE,...]`:
 * reconstruct a lost ledger from the two stores (spec 9: losing it loses no file). Needs
 * the same configuration as the mount (S3 and NFS access), and the mount must be down
 * (the ledger has one writer).
 *
 * Every S3 object under the prefix is listed (recursively, every page). For each reachable,
 * unshadowed object whose path is a regular file on the new store:
 *   - the NFS file is read and hashed (unless --no-hash); when its size is the object's
 *     and its MD5 equals a single-part ETag (or, for a multipart ETag, its size and mtime
 *     are the object's), it is recorded `migrated` with the ETag, size and SHA-256;
 *     otherwise `modified` (it was changed through a mount after its migration);
 *   - its NFS file id is mapped to the inode number the file had in S3, so st_ino stays
 *     what this host reported.
 * Objects not on the new store need no record (s3-only is the default). What the lost
 * ledger's journal held but S3 had not received is on the new store already; `ferryctl
 * sync-back` cannot know of it, which the summary says. Existing records are kept. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/cfg.h"
#include "s3/creds.h"
#include "migrate/crawl.h"
#include "ctl/ctl.h"
#include "ledger/ledger.h"
#include "base/naming.h"
#include "view/route.h"
#include "s3/client.h"
#include "store/store.h"
#include "base/util.h"

struct rebuild {
	struct ferry_config *cfg;
	struct store *s3, *nfs;
	struct route r;
	struct ledger *l;
	struct crawl_shadow sh;
	char prev[CRAWL_KEY_MAX];
	int hash;
	uint64_t listed, migrated, modified, s3only, unreachable, shadowed, kept, errors;
};

static int hash_nfs(struct rebuild *b, const char *path, unsigned char sha[32], char md5[33],
		    uint64_t *size)
{
	struct store_file *f;
	int rc = store_open(b->nfs, path, O_RDONLY, 0, NULL, &f);
	if (rc)
		return rc;
	EVP_MD_CTX *s = EVP_MD_CTX_new(), *m = EVP_MD_CTX_new();
	size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	*size = 0;
	if (!s || !m || !buf || !EVP_DigestInit_ex(s, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(m, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = store_pread(b->nfs, f, buf, bufsz, *size);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(s, buf, (size_t)n);
		EVP_DigestUpdate(m, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	EVP_DigestFinal_ex(s, sha, &mdlen);
	EVP_DigestFinal_ex(m, md, &mdlen);
	util_hex(md, mdlen, md5);
out:
	free(buf);
	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(m);
	store_close(b->nfs, f);
	return rc;
}

static int one(void *arg, const char *key, int shadowed)
{
	struct rebuild *b = arg;
	char path[NAME_MAX_PATH + 2];
	int rc = name_key_to_path(b->cfg->s3_prefix, key, path, sizeof(path));
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		b->unreachable++;
		return 0;
	}
	if (shadowed) {
		b->shadowed++;
		return 0;
	}
	struct store_attr na, sa;
	struct ledger_file rec;
	if (ledger_file_get(b->l, path, &rec) == 0 && rec.state != LEDGER_S3_ONLY) {
		b->kept++;
		return 0;
	}
	rc = store_stat(b->nfs, path, &na);
	if (rc == -ENOENT || rc == -ENOTDIR || (rc == 0 && !S_ISREG(na.mode))) {
		b->s3only++;
		return 0;
	}
	if (rc)
		goto fail;
	/* the object's size, ETag and mtime (s3fs metadata) as the mount sees them */
	if ((rc = store_stat(b->s3, path, &sa)))
		goto fail;
	memset(&rec, 0, sizeof(rec));
	rec.ino = route_s3_ino(&b->r, path);
	rec.size = na.size;
	snprintf(rec.etag, sizeof(rec.etag), "%s", sa.etag);
	int same = na.size == sa.size;
	if (b->hash && same) {
		char md5[33];
		uint64_t size;
		if ((rc = hash_nfs(b, path, rec.sha256, md5, &size)))
			goto fail;
		rec.has_sha256 = true;
		rec.size = size;
		int single = strlen(sa.etag) == 32 && !strchr(sa.etag, '-');
		same = size == sa.size && (single ? !strcasecmp(md5, sa.etag) :
					   na.mtime.tv_sec == sa.mtime.tv_sec);
	} else if (same) {
		same = na.mtime.tv_sec == sa.mtime.tv_sec;
	}
	rec.state = same ? LEDGER_MIGRATED : LEDGER_MODIFIED;
	rec.migrated = same ? na.mtime.tv_sec : 0;
	if (!same)
		rec.has_sha256 = false;
	rc = ledger_file_put(b->l, path, &rec);
	if (!rc && na.ino)
		rc = ledger_ino_put(b->l, na.ino, rec.ino);
	if (rc)
		goto fail;
	if (same)
		b->migrated++;
	else
		b->modified++;
	return 0;
fail:
	ctl_err("%s: %s", path, strerror(-rc));
	b->errors++;
	return 0;
}

static int on_page(void *arg, const struct s3xml_list *page)
{
	struct rebuild *b = arg;
	int rc;
	for (size_t i = 0; i < page->nobjects; i++) {
		b->listed++;
		if ((rc = crawl_shadow_feed(&b->sh, page->objects[i].key, b->prev, one, b)))
			return rc;
		snprintf(b->prev, sizeof(b->prev), "%s", page->objects[i].key);
	}
	ctl_progress(0, 0, "%llu keys listed, %llu migrated, %llu modified",
		     (unsigned long long)b->listed, (unsigned long long)b->migrated,
		     (unsigned long long)b->modified);
	return 0;
}

static int cmd_rebuild(int argc, char **argv)
{
	const char *state = NULL, *conf = NULL;
	struct ferry_config cfg;
	struct rebuild b = { .cfg = &cfg, .hash = 1 };
	char err[512] = "";
	int status = 2, rc;
	cfg_init(&cfg);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--no-hash"))
			b.hash = 0;
		else if (!strncmp(argv[i], "-o", 2)) {
			char *opts = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : NULL);
			char *save = NULL;
			if (!opts)
				goto out_cfg;
			for (char *kv = strtok_r(opts, ",", &save); kv;
			     kv = strtok_r(NULL, ",", &save)) {
				char *eq = strchr(kv, '=');
				if (eq)
					*eq = '\0';
				if (!strcmp(kv, "state_dir") && eq) {
					state = state ? state : eq + 1;
					continue;
				}
				if (cfg_set(&cfg, kv, eq ? eq + 1 : NULL, 0, err, sizeof(err))) {
					ctl_err("%s", err);
					goto out_cfg;
				}
			}
		} else if (argv[i][0] != '-' && !conf)
			conf = argv[i];
		else
			goto out_cfg;
	}
	if (!state)
		goto out_cfg;
	if (conf && (rc = cfg_load_file(&cfg, conf, err, sizeof(err)))) {
		ctl_err("%s", err);
		goto out_cfg;
	}
	free(cfg.state_dir);
	cfg.state_dir = strdup(state);
	cfg.mountpoint = strdup("/rebuild");
	if (creds_configure(&cfg, err, sizeof(err)) || cfg_finish(&cfg, err, sizeof(err))) {
		ctl_err("%s", err);
		goto out_cfg;
	}
	status = 1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out_cfg;
	if ((rc = store_s3_new(&cfg, &b.s3)) || (rc = store_new_nfs_side(&cfg, &b.nfs)) ||
	    (rc = store_probe(b.s3)) || (rc = store_probe(b.nfs))) {
		ctl_err("cannot reach the stores: %s", strerror(-rc));
		goto out_stores;
	}
	rc = ledger_open(state, LEDGER_CREATE, &b.l);
	if (rc) {
		ctl_err("cannot open the ledger in %s: %s", state,
			rc == -EBUSY ? "it is in use (unmount first)" : strerror(-rc));
		goto out_stores;
	}
	b.r = (struct route){ .cfg = &cfg, .nfs = b.nfs, .s3 = b.s3, .ledger = b.l };
	struct s3_list_opts o = { .prefix = cfg.s3_prefix, .max_keys = 1000 };
	rc = s3_list(store_s3_client(b.s3), &o, on_page, &b);
	if (!rc)
		rc = crawl_shadow_flush(&b.sh, one, &b);
	ctl_progress_done();
	if (rc) {
		ctl_err("listing S3 failed: %s", strerror(-rc));
		goto out_ledger;
	}
	ledger_check(b.l, true);
	printf("rebuilt %s: %llu keys listed; %llu migrated, %llu modified, %llu only in S3, "
	       "%llu kept from the ledger; %llu unreachable, %llu shadowed; %llu error(s)\n",
	       state, (unsigned long long)b.listed, (unsigned long long)b.migrated,
	       (unsigned long long)b.modified, (unsigned long long)b.s3only,
	       (unsigned long long)b.kept, (unsigned long long)b.unreachable,
	       (unsigned long long)b.shadowed, (unsigned long long)b.errors);
	if (b.modified)
		printf("note: modified files differ from S3; the lost journal cannot say how: "
		       "they stay on the new store (nothing is lost)\n");
	status = b.errors ? 1 : 0;
out_ledger:
	crawl_shadow_free(&b.sh);
	ledger_close(b.l);
out_stores:
	store_destroy(b.s3);
	store_destroy(b.nfs);
	curl_global_cleanup();
out_cfg:
	cfg_free(&cfg);
	return status;
}

const struct ctl_cmd ctl_cmd_rebuild = {
	"rebuild", "rebuild --state DIR [--no-hash] [CONFIG] [-o KEY=VALUE,...]", cmd_rebuild };
