/* conflict.c - both versions kept when a file changed here and, by a host still on S3, in
 * S3 (see conflict.h and doc/mirror.md). Holds no lock: the ledger's updates are
 * transactions, the copy publishes its name only if it is free (COPY_IF_ABSENT), so two
 * callers resolving the same change (the mirror and revalidation) make one copy. */
#include "writeback/conflict.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/naming.h"
#include "base/util.h"
#include "ledger/ledger.h"
#include "store/store.h"
#include "view/copy.h"
#include "view/dcache.h"

static atomic_uint_fast64_t cf_count;

uint64_t conflict_count(void)
{
	return atomic_load(&cf_count);
}

int conflict_name(const char *path, const char *etag, char *out, size_t outlen)
{
	const char *leaf = strrchr(path, '/');
	leaf = leaf ? leaf + 1 : path;
	int n = snprintf(out, outlen, "%s.conflict-s3-%.8s", path, etag[0] ? etag : "none");
	if (n < 0 || (size_t)n >= outlen ||
	    strlen(leaf) + 13 + (etag[0] ? strnlen(etag, 8) : 4) > 255)
		return -ENAMETOOLONG;
	return 0;
}

struct to_conflict {
	const char *etag;
	const char *sibling;
};

/* Event `conflict` (a migrated, modified, nfs-only or conflict record becomes conflict; no
 * record: gone meanwhile, nothing to keep it for): the record takes S3's ETag and names the
 * sibling that holds S3's version. */
static int mark_conflict(struct ledger_file *rec, bool exists, void *arg)
{
	struct to_conflict *c = arg;
	(void)exists;
	snprintf(rec->etag, sizeof(rec->etag), "%s", c->etag);
	const char *leaf = strrchr(c->sibling, '/');
	snprintf(rec->error, sizeof(rec->error), "conflict: S3 was changed by another host; its "
		 "version is %s", leaf ? leaf + 1 : c->sibling);
	return LEDGER_WRITE;
}

static int take_etag(struct ledger_file *rec, bool exists, void *arg)
{
	if (!exists)
		return LEDGER_KEEP;
	snprintf(rec->etag, sizeof(rec->etag), "%s", (const char *)arg);
	return LEDGER_WRITE;
}

static void journal(struct ledger *l, int op, const char *path)
{
	struct ledger_jentry e = { .op = op, .path = path };
	uint64_t seq;
	int rc = ledger_journal_append(l, &e, &seq);
	if (rc)
		log_err("conflict: cannot journal %s of %s: %s", ledger_op_name(op), path,
			strerror(-rc));
}

/* 1 when the new store's file at path holds exactly the bytes of an S3 object of this
 * size and single-part ETag (its MD5), 0 when not or when that cannot be told (multipart
 * ETag), -errno. Reads the file: only for the rare changed objects. */
static int same_as_object(struct store *nfs, const char *path, const char *etag, uint64_t size)
{
	struct store_attr a;
	struct store_file *f;
	size_t n = strlen(etag);
	if (n != 32 || strspn(etag, "0123456789abcdefABCDEF") != 32)
		return 0;
	int rc = store_stat(nfs, path, &a);
	if (rc || !S_ISREG(a.mode) || a.size != size)
		return rc;
	if ((rc = store_open(nfs, path, O_RDONLY, 0, NULL, &f)))
		return rc;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl;
	char hex[65];
	uint64_t off = 0;
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = store_pread(nfs, f, buf, bufsz, off);
		if (r < 0) {
			rc = (int)r;
			goto out;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)r);
		off += (uint64_t)r;
	}
	EVP_DigestFinal_ex(md, d, &dl);
	util_hex(d, dl, hex);
	rc = off == size && !strcasecmp(hex, etag);
out:
	free(buf);
	EVP_MD_CTX_free(md);
	store_close(nfs, f);
	return rc;
}

int conflict_keep_both(struct route *r, const char *path, const char *etag, uint64_t size,
		       unsigned flags, unsigned who)
{
	char sib[NAME_MAX_PATH + 64];
	struct route_entry e;
	struct copy_result res;
	if (!r->ledger)
		return -EINVAL;
	/* S3 holds our very bytes (our own write-back, whose ETag the ledger has not got yet,
	 * or the same content written twice): no conflict, only a newer ETag */
	if (same_as_object(r->nfs, path, etag, size) == 1) {
		int rc = ledger_file_update(r->ledger, path, take_etag, (void *)etag);
		if (rc != LEDGER_WRITE)
			return rc < 0 ? rc : -ENOENT;
		log_info("conflict: %s: S3 holds the same bytes as the new store (ETag %s)", path,
			 etag);
		return 0;
	}
	int rc = conflict_name(path, etag, sib, sizeof(sib));
	if (rc) {
		log_err("conflict: %s: S3 changed and so did the file here, but the conflict "
			"copy's name is too long: the S3 version stays only in S3", path);
		return rc;
	}
	rc = route_lookup(r, sib, &e);
	if (rc == -ENOENT) {
		/* a copy with no ledger: the sibling is a file of its own (its own inode number),
		 * not a migration of the key it was read from */
		struct route r2 = *r;
		r2.ledger = NULL;
		rc = copy_s3_to_nfs(&r2, path, sib, etag, COPY_IF_ABSENT, &res);
		if (rc == -EEXIST)
			rc = 0;       /* made by another caller meanwhile */
		if (rc) {
			log_warn("conflict: %s: cannot copy S3's version to %s: %s", path, sib,
				 strerror(-rc));
			return rc;
		}
		dc_forget(sib);
		journal(r->ledger, LEDGER_OP_CREATE, sib);
	} else if (rc) {
		log_warn("conflict: %s: cannot look up %s: %s", path, sib, strerror(-rc));
		return rc;
	}
	if (flags & CONFLICT_JOURNAL_OURS)
		journal(r->ledger, LEDGER_OP_WRITE, path);   /* ours goes back over the key */
	struct to_conflict c = { etag, sib };
	rc = ledger_file_event(r->ledger, path, LEDGER_EV_CONFLICT, who, mark_conflict, &c);
	if (rc != LEDGER_WRITE) {
		rc = rc < 0 ? rc : -ENOENT;
		log_err("conflict: %s: cannot record the conflict: %s", path, strerror(-rc));
		return rc;
	}
	atomic_fetch_add(&cf_count, 1);
	log_warn("conflict: %s: changed here and in S3 by another host (ETag %s); both kept: ours "
		 "at the name, S3's at %s", path, etag, sib);
	return 0;
}
