/* migrate.c - the background migrator (spec section 6), see migrate.h.
 *
 * This first part holds the operator's controls (pause, rate, migrate=now of a file);
 * the worker threads and the crawl are added on top of it. State shared by all threads
 * is atomic; no lock is held across store or ledger calls. */
#include "migrate.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "ledger.h"
#include "log.h"
#include "util.h"

static atomic_int mig_paused_flag;
static atomic_uint_fast64_t mig_rate_bps;

int mig_start(struct ferry *fy)
{
	atomic_store(&mig_rate_bps, fy->cfg->rate);
	return 0;
}

void mig_stop(struct ferry *fy)
{
	(void)fy;
}

void mig_wake(struct ferry *fy)
{
	(void)fy;
}

int mig_paused(struct ferry *fy)
{
	(void)fy;
	return atomic_load(&mig_paused_flag);
}

uint64_t mig_rate(struct ferry *fy)
{
	(void)fy;
	return atomic_load(&mig_rate_bps);
}

/* Copy an xattr value into a NUL-terminated string, trimming a trailing newline. */
static int value_str(const char *value, size_t size, char *out, size_t outlen)
{
	if (size >= outlen)
		return -EINVAL;
	memcpy(out, value, size);
	out[size] = '\0';
	if (size && out[size - 1] == '\n')
		out[size - 1] = '\0';
	return 0;
}

int mig_control(struct ferry *fy, const char *path, const char *name, const char *value,
		size_t size)
{
	char v[64];
	int root = !strcmp(path, "/");
	if (value_str(value, size, v, sizeof(v)))
		return -EINVAL;
	if (!strcmp(name, "pause")) {
		if (!root)
			return -EROFS;
		if (strcmp(v, "1") && strcmp(v, "0"))
			return -EINVAL;
		atomic_store(&mig_paused_flag, v[0] == '1');
		log_notice("migration %s by the operator", v[0] == '1' ? "paused" : "resumed");
		if (v[0] == '0')
			mig_wake(fy);
		return 0;
	}
	if (!strcmp(name, "rate")) {
		uint64_t r;
		if (!root)
			return -EROFS;
		if (util_parse_size(v, &r))
			return -EINVAL;
		atomic_store(&mig_rate_bps, r);
		log_notice("crawl rate set to %llu bytes/s%s", (unsigned long long)r,
			   r ? "" : " (unlimited)");
		return 0;
	}
	if (!strcmp(name, "migrate")) {
		struct route_entry e;
		if (strcmp(v, "now"))
			return -EINVAL;
		int rc = route_lookup(&fy->route, path, &e);
		if (rc)
			return rc;
		if (S_ISDIR(e.attr.mode))
			return -EOPNOTSUPP;     /* a directory's subtree is queued by the crawl */
		if (e.src != ROUTE_S3)
			return 0;               /* already on the new store */
		rc = ledger_queue_push(fy->ledger, path, LEDGER_PRIO_COPYUP);
		if (rc < 0)
			return rc;
		mig_wake(fy);
		return 0;
	}
	return -ENODATA;
}
