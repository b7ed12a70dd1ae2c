/* xattr.c - the user.ferryfs.* control plane of the mount (spec 8): getxattr, setxattr,
 * removexattr and listxattr of the names in base/xattrs.h's table. The table says whether
 * a name is read or written, on which paths, and who answers it: this file for what a
 * path is (state, source, s3key, etag, migrated, sha256, synced, error) and the counters
 * (stats), the write-back (mirror.h), the migrator (migrate.h) or the fleet (fleet.h) for
 * the rest. Functions return 0 / -errno or a length; fs.c maps the errors. */
#include "fuse/xattr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/stats.h"
#include "base/util.h"
#include "base/xattrs.h"
#include "ledger/ledger.h"
#include "migrate/fleet.h"
#include "migrate/migrate.h"
#include "view/ferry.h"
#include "view/whiteout.h"
#include "writeback/journal.h"
#include "writeback/mirror.h"

static int reply(const char *val, size_t len, char *out, size_t size)
{
	if (size == 0)
		return (int)len;
	if (len > size)
		return -ERANGE;
	memcpy(out, val, len);
	return (int)len;
}

static int stats_text(struct ferry *fy, struct buf *b)
{
	struct ledger_stats ls;
	memset(&ls, 0, sizeof(ls));
	if (fy->ledger)
		ledger_stats(fy->ledger, &ls);
	uint64_t queued = 0;
	for (int p = 0; p < LEDGER_NPRIO; p++)
		queued += ls.queued[p];
	struct mirror_counters mc;
	mirror_counters(&mc);
	int64_t oldest = 0;
	if (ls.journal_oldest_ms) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		oldest = ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 -
			  ls.journal_oldest_ms) /
			 1000;
	}
	const struct { const char *name; uint64_t v; } rows[] = {
		/* a file in conflict is on the new store too (both versions are) */
		{ "migrated_files", ls.files[LEDGER_MIGRATED] + ls.files[LEDGER_MODIFIED] +
					    ls.files[LEDGER_CONFLICT] },
		{ "migrated_bytes", ls.bytes[LEDGER_MIGRATED] + ls.bytes[LEDGER_MODIFIED] +
					    ls.bytes[LEDGER_CONFLICT] },
		{ "queued", queued }, { "copying", ls.copying },
		{ "failed", ls.files[LEDGER_FAILED] }, { "conflicts", ls.files[LEDGER_CONFLICT] },
		{ "copyups", stats_get(copyups) },
		{ "reads_s3", stats_get(reads_s3) }, { "reads_nfs", stats_get(reads_nfs) },
		{ "bytes_s3", stats_get(bytes_s3) }, { "bytes_nfs", stats_get(bytes_nfs) },
		{ "whiteouts", stats_get(whiteouts) }, { "unreachable", stats_get(unreachable) },
		{ "journal_pending", ls.journal_pending },
		{ "journal_oldest_s", (uint64_t)(oldest > 0 ? oldest : 0) },
		{ "mirror_puts", mc.puts }, { "mirror_deletes", mc.deletes },
		{ "mirror_key_too_long", mc.too_long },
		{ "mirror_errors", mc.errors + jn_errors() },
		{ "read_only", (uint64_t)jn_readonly() },
		{ "s3_requests", stats_get(s3_requests) }, { "s3_errors", stats_get(s3_errors) },
		{ "s3_retries", stats_get(s3_retries) }, { "nfs_errors", stats_get(nfs_errors) },
		{ "credential_refreshes", stats_get(credential_refreshes) },
		{ "credential_errors", stats_get(credential_errors) },
		{ "paused", (uint64_t)mig_paused(fy) }, { "rate", mig_rate(fy) },
		{ "uptime_s", (uint64_t)(util_now_s() - fy->started) },
		{ "heap_bytes", stats_heap_bytes() },
	};
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(rows) && !rc; i++)
		rc = buf_printf(b, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
	return rc;
}

/* user.ferryfs.state of a path (spec 8). */
static int state_of(struct ferry *fy, const char *path, const struct route_entry *e,
		    const struct ledger_file *rec, int have_rec, struct buf *b)
{
	struct store_attr a;
	if (S_ISDIR(e->attr.mode)) {
		if (e->src == ROUTE_S3)
			return buf_puts(b, "s3-only");
		int rc = store_stat(fy->s3, path, &a);
		if (rc && rc != -ENOENT && rc != -ENOTDIR)
			return rc;
		int merged = rc == 0 && S_ISDIR(a.mode) && wh_is_opaque(fy->route.nfs, path) != 1;
		return buf_puts(b, merged ? "merged" : "nfs-only");
	}
	if (have_rec && rec->state != LEDGER_S3_ONLY)
		return buf_puts(b, ledger_state_name(rec->state));
	if (e->src == ROUTE_S3)
		return buf_puts(b, "s3-only");
	int rc = store_stat(fy->s3, path, &a);
	if (rc && rc != -ENOENT && rc != -ENOTDIR)
		return rc;
	/* on both stores with no record here: copied by another host, or before ferryfs */
	return buf_puts(b, rc == 0 && S_ISREG(a.mode) ? "migrated" : "nfs-only");
}

/* A name that describes path (found as *pe), or stats. */
static int view_get(struct ferry *fy, const char *path, const struct route_entry *pe,
		    const char *name, char *out, size_t size)
{
	struct route_entry e = *pe;
	struct ledger_file rec;
	struct buf b = { 0 };
	int rc = 0;
	int have_rec =
		fy->ledger && !S_ISDIR(e.attr.mode) && ledger_file_get(fy->ledger, path, &rec) == 0;
	if (!strcmp(name, "source")) {
		const char *v = e.src == ROUTE_S3 ? "s3" : "nfs";
		return reply(v, strlen(v), out, size);
	}
	if (!strcmp(name, "s3key") || !strcmp(name, "etag")) {
		struct store_attr a;
		const struct store_attr *pa = &e.attr;
		if (e.src != ROUTE_S3) {
			rc = store_stat(fy->s3, path, &a);
			if (rc)
				return rc == -ENOENT || rc == -ENOTDIR ? -ENODATA : rc;
			pa = &a;
		}
		if (!S_ISREG(pa->mode))
			return -ENODATA;      /* a directory has no object of its own */
		if (!strcmp(name, "etag"))
			return reply(pa->etag, strlen(pa->etag), out, size);
		rc = buf_printf(&b, "%s%s", fy->cfg->s3_prefix, path + 1);
	} else if (!strcmp(name, "state")) {
		rc = state_of(fy, path, &e, &rec, have_rec, &b);
	} else if (!strcmp(name, "migrated")) {
		if (!have_rec || !rec.migrated)
			return -ENODATA;
		char t[21];
		util_format_iso8601((time_t)rec.migrated, t);
		rc = buf_puts(&b, t);
	} else if (!strcmp(name, "sha256")) {
		if (!have_rec || !rec.has_sha256)
			return -ENODATA;
		char hex[65];
		util_hex(rec.sha256, 32, hex);
		rc = buf_puts(&b, hex);
	} else if (!strcmp(name, "error")) {
		if (!have_rec || !rec.error[0])
			return -ENODATA;
		rc = buf_puts(&b, rec.error);
	} else if (!strcmp(name, "synced")) {
		/* yes: S3 holds this path's current content (S3-only, migrated and unchanged, or
		 * written back by the mirror: it records the ETag of its upload) */
		int pending = fy->ledger ? ledger_journal_pending(fy->ledger, path) : 0;
		int same = e.src == ROUTE_S3 ||
			   (have_rec && rec.state == LEDGER_MIGRATED) ||
			   (have_rec && rec.etag[0] && rec.size == e.attr.size &&
			    (rec.state == LEDGER_MODIFIED || rec.state == LEDGER_NFS_ONLY)) ||
			   (!S_ISREG(e.attr.mode) &&
			    store_stat(fy->s3, path, &(struct store_attr){ 0 }) == 0);
		rc = buf_puts(&b, pending <= 0 && same ? "yes" : "pending");
	} else if (!strcmp(name, "stats")) {
		rc = stats_text(fy, &b);
	} else {
		rc = -ENODATA;
	}
	if (!rc)
		rc = reply(b.data, b.len, out, size);
	buf_free(&b);
	return rc;
}

int fx_get(struct ferry *fy, const char *path, const char *name, char *out, size_t size)
{
	const struct xa_name *x = xa_find(name);
	struct route_entry e;
	struct buf b = { 0 };
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (!x || !(x->flags & XA_GET) || ((x->flags & XA_ROOT) && strcmp(path, "/")))
		return -ENODATA;
	switch (x->owner) {
	case XA_VIEW:
		return view_get(fy, path, &e, name, out, size);
	case XA_MIRROR:
		rc = mirror_getxattr(fy, path, name, &b);
		break;
	case XA_MIGRATOR:
		rc = fy->ledger ? mig_getxattr(fy, path, name, &b) : -ENODATA;
		break;
	default:
		rc = -ENODATA;
		break;
	}
	if (!rc)
		rc = reply(b.data, b.len, out, size);
	buf_free(&b);
	return rc;
}

int fx_set(struct ferry *fy, const char *path, const char *name, const char *value,
	   size_t size)
{
	const struct xa_name *x = xa_find(name);
	struct route_entry e;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (!x)
		return -ENODATA;
	if (!(x->flags & XA_SET))
		return -EROFS;
	switch (x->owner) {
	case XA_MIRROR:
		return mirror_control(fy, path, name, value, size);
	case XA_MIGRATOR:
		return mig_control(fy, path, name, value, size);
	case XA_FLEET:
		return fleet_control(fy, path, name, value, size);
	default:
		return -EROFS;
	}
}

int fx_remove(const char *name)
{
	return xa_find(name) ? -EROFS : -ENODATA;
}

/* The names listxattr shows (xattr_list=1): "user.ferryfs.NAME\0" each, only those path
 * has a value for (getfattr -d reads every name listed), into out (at least list_max()
 * bytes). Returns the length. */
static size_t list_ours(struct ferry *fy, const char *path, char *out)
{
	size_t len = 0;
	for (size_t i = 0; i < xa_count; i++) {
		if (!(xa_names[i].flags & XA_PATH))
			continue;
		if (fx_get(fy, path, xa_names[i].name, NULL, 0) < 0)
			continue;
		size_t n = sizeof(XA_PREFIX) - 1 + strlen(xa_names[i].name) + 1;
		snprintf(out + len, n, "%s%s", XA_PREFIX, xa_names[i].name);
		len += n;
	}
	return len;
}

/* The length of every name list_ours may list. */
static size_t list_max(void)
{
	size_t len = 0;
	for (size_t i = 0; i < xa_count; i++)
		if (xa_names[i].flags & XA_PATH)
			len += sizeof(XA_PREFIX) - 1 + strlen(xa_names[i].name) + 1;
	return len;
}

int fx_list(struct ferry *fy, const char *path, char *out, size_t size)
{
	struct route_entry e;
	char *theirs = NULL, *ours = NULL;
	ssize_t n = 0;
	size_t len = 0;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (fy->cfg->xattr_list) {
		if (!(ours = malloc(list_max() + 1)))
			return -ENOMEM;
		len = list_ours(fy, path, ours);
	}
	if (e.src == ROUTE_NFS) {
		n = store_listxattr(fy->nfs, path, NULL, 0);
		if (n > 0) {
			theirs = malloc((size_t)n);
			if (!theirs) {
				rc = -ENOMEM;
				goto out;
			}
			n = store_listxattr(fy->nfs, path, theirs, (size_t)n);
		}
		if (n == -ENOTSUP)
			n = 0;
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
	}
	rc = (int)(len + (size_t)n);
	if (size == 0)
		goto out;
	if ((size_t)rc > size) {
		rc = -ERANGE;
		goto out;
	}
	if (len)
		memcpy(out, ours, len);
	if (n > 0)
		memcpy(out + len, theirs, (size_t)n);
out:
	free(ours);
	free(theirs);
	return rc;
}
