/* cmd-migrate.c - `ferryctl migrate`, `pause` and `resume`: steer the migrator through the
 * writable xattrs (spec 8). `migrate PATH...` sets user.ferryfs.migrate=now on each path
 * (a directory: its subtree at copy-up priority); `migrate --all` sets
 * user.ferryfs.migrate="crawl [shard=I/N] [prefix=P]" on the mount root (or a directory),
 * which starts (or resumes) a crawl at crawl priority. With --wait it polls until done:
 * files through user.ferryfs.state, jobs through the ledger (read-only) and the mount's
 * counters. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/crawl.h"
#include "ctl/ctl.h"
#include "ledger/ledger.h"
#include "base/util.h"

#define POLL_MS 200         /* a crawl: its stats, five times a second */
#define POLL_FILE_MS 25     /* up to 16 files: a getxattr each; a done copy is seen at once */

static int file_done(const char *state, int *failed)
{
	*failed = !strcmp(state, "failed");
	return *failed || !strcmp(state, "migrated") || !strcmp(state, "modified") ||
	       !strcmp(state, "nfs-only") || !strcmp(state, "conflict");
}

/* Wait for a job (kind, prio, ...) on dir of the mount at root, then for the queue to
 * drain. 0 ok, 1 failure. */
static int wait_job(const char *root, const char *state_opt, const char *dir,
		    const struct crawl_spec *s)
{
	struct ledger *l = NULL;
	struct crawl_job j;
	char *stats = NULL;
	int rc = 1;
	if (ctl_open_ledger(root, state_opt, &l))
		return 1;
	uint64_t base = 0;
	int have_base = 0;
	for (;;) {
		int slot = ctl_find_job(l, dir, s->kind, s->prio, s->shard_i, s->shard_n, s->prefix,
					&j);
		if (slot < 0) {
			ctl_err("no crawl job for %s in the ledger", dir);
			goto out;
		}
		free(stats);
		stats = NULL;
		if (ctl_getxattr(root, "user.ferryfs.stats", &stats)) {
			ctl_err("%s: cannot read the mount's statistics", root);
			goto out;
		}
		uint64_t migrated = ctl_stat_value(stats, "migrated_files");
		uint64_t waiting =
			ctl_stat_value(stats, "queued") + ctl_stat_value(stats, "copying");
		if (!have_base) {
			base = migrated;
			have_base = 1;
		}
		if (s->kind == CRAWL_SCAN) {
			ctl_progress(j.state == CRAWL_DONE, 1, "scan: %llu keys listed",
				     (unsigned long long)j.listed);
		} else {
			double done = (double)(migrated - base), total = (double)j.queued;
			ctl_progress(done, total > done ? total : done + (double)waiting,
				     "%s %s: %llu listed, %llu queued, %llu migrated, %llu waiting",
				     j.spec.prio == LEDGER_PRIO_COPYUP ? "migration of" :
									 "crawl of",
				     dir, (unsigned long long)j.listed,
				     (unsigned long long)j.queued,
				     (unsigned long long)(migrated - base),
				     (unsigned long long)waiting);
		}
		if (j.state == CRAWL_STOPPED || j.state == CRAWL_FAILED) {
			ctl_err("the job on %s is %s%s%s", dir, crawl_state_name(j.state),
				j.error[0] ? ": " : "", j.error);
			goto out;
		}
		if (j.state == CRAWL_DONE && (s->kind == CRAWL_SCAN || waiting == 0)) {
			rc = 0;
			if (s->kind != CRAWL_SCAN && ctl_stat_value(stats, "failed")) {
				ctl_err("%llu file(s) failed: see ferryctl status",
					(unsigned long long)ctl_stat_value(stats, "failed"));
				rc = 1;
			}
			goto out;
		}
		usleep(POLL_MS * 1000);
	}
out:
	ctl_progress_done();
	free(stats);
	ledger_close(l);
	return rc;
}

static int wait_files(char **paths, int n)
{
	int left = n, failed_any = 0;
	char *done = calloc((size_t)n, 1);
	if (!done)
		return 1;
	while (left) {
		for (int i = 0; i < n; i++) {
			char *st = NULL;
			int failed;
			if (done[i])
				continue;
			int rc = ctl_getxattr(paths[i], "user.ferryfs.state", &st);
			if (rc) {
				ctl_err("%s: %s", paths[i], strerror(-rc));
				done[i] = 1;
				left--;
				failed_any = 1;
				continue;
			}
			if (file_done(st, &failed)) {
				done[i] = 1;
				left--;
				if (failed) {
					char *e = NULL;
					ctl_getxattr(paths[i], "user.ferryfs.error", &e);
					ctl_err("%s: failed: %s", paths[i], e ? e : "?");
					free(e);
					failed_any = 1;
				}
			}
			free(st);
		}
		ctl_progress(n - left, n, "%d of %d files migrated", n - left, n);
		if (left)
			usleep((left <= 16 ? POLL_FILE_MS : POLL_MS) * 1000);
	}
	ctl_progress_done();
	free(done);
	return failed_any;
}

static int cmd_migrate(int argc, char **argv)
{
	int all = 0, wait = 0, stop = 0;
	const char *prefix = NULL, *state_opt = NULL;
	unsigned si = 0, sn = 1;
	char **paths = calloc((size_t)argc, sizeof(*paths));
	int npaths = 0, status = 0;
	if (!paths)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all"))
			all = 1;
		else if (!strcmp(argv[i], "--wait"))
			wait = 1;
		else if (!strcmp(argv[i], "--stop"))
			stop = 1;
		else if (!strcmp(argv[i], "--prefix") && i + 1 < argc)
			prefix = argv[++i];
		else if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state_opt = argv[++i];
		else if (!strcmp(argv[i], "--shard") && i + 1 < argc) {
			char extra;
			if (sscanf(argv[++i], "%u/%u%c", &si, &sn, &extra) != 2 || !sn ||
			    si >= sn) {
				ctl_err("--shard takes I/N with 0 <= I < N");
				free(paths);
				return 2;
			}
		} else if (argv[i][0] == '-') {
			free(paths);
			return 2;
		} else
			paths[npaths++] = argv[i];
	}
	if ((!all && !stop && (prefix || sn > 1)) || (!all && !stop && !npaths)) {
		free(paths);
		return 2;
	}
	if (prefix && (strchr(prefix, '/') || strlen(prefix) >= CRAWL_DIR_MAX)) {
		const char *slash = strrchr(prefix, '/');
		if (slash)
			ctl_err("--prefix %s: a prefix of names inside the directory, without "
				"'/'; to crawl the directory %.*s, give its path: ferryctl "
				"migrate --all DIR/%.*s", prefix, (int)(slash - prefix), prefix,
				(int)(slash - prefix), prefix);
		else
			ctl_err("--prefix: longer than %d bytes", CRAWL_DIR_MAX - 1);
		free(paths);
		return 1;
	}
	if ((all || stop) && !npaths)
		paths[npaths++] = ".";
	if (all || stop) {
		for (int i = 0; i < npaths; i++) {
			char root[PATH_MAX], rel[PATH_MAX], val[CRAWL_DIR_MAX + 64];
			int rc = ctl_mount_of(paths[i], root, rel);
			if (rc) {
				ctl_err("%s: %s", paths[i],
					rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
				status = 1;
				continue;
			}
			int n = snprintf(val, sizeof(val), stop ? "stop" : "crawl");
			if (!stop && sn > 1)
				n += snprintf(val + n, sizeof(val) - (size_t)n, " shard=%u/%u", si,
					      sn);
			if (!stop && prefix)
				snprintf(val + n, sizeof(val) - (size_t)n, " prefix=%s", prefix);
			rc = ctl_setxattr(paths[i], "migrate", val);
			if (rc) {
				ctl_err("%s: %s", paths[i],
					rc == -EBUSY  ? "every crawl slot is busy" :
					rc == -EINVAL ? "refused: not a directory of the mount, "
							"or a bad --prefix" :
							strerror(-rc));
				status = 1;
				continue;
			}
			if (stop) {
				printf("%s: crawl stopped\n", paths[i]);
				continue;
			}
			printf("%s: crawl of %s%s%s started (shard %u/%u)\n", root, rel,
			       prefix ? " prefix " : "", prefix ? prefix : "", si, sn);
			if (wait) {
				struct crawl_spec s = { .kind = CRAWL_QUEUE,
							.prio = LEDGER_PRIO_CRAWL,
							.shard_i = si,
							.shard_n = sn };
				snprintf(s.prefix, sizeof(s.prefix), "%s", prefix ? prefix : "");
				status |= wait_job(root, state_opt, rel, &s);
			}
		}
		free(paths);
		return status;
	}
	char **files = calloc((size_t)npaths, sizeof(*files));
	int nfiles = 0;
	for (int i = 0; i < npaths; i++) {
		int rc = ctl_setxattr(paths[i], "migrate", "now");
		if (rc) {
			ctl_err("%s: %s", paths[i], strerror(-rc));
			status = 1;
			continue;
		}
		char root[PATH_MAX], rel[PATH_MAX];
		struct stat sb;
		int isdir = stat(paths[i], &sb) == 0 && S_ISDIR(sb.st_mode) &&
			    ctl_mount_of(paths[i], root, rel) == 0;
		if (!wait)
			continue;
		if (isdir) {
			struct crawl_spec s = { .kind = CRAWL_QUEUE, .prio = LEDGER_PRIO_COPYUP,
						.shard_n = 1 };
			status |= wait_job(root, state_opt, rel, &s);
		} else if (files) {
			files[nfiles++] = paths[i];
		}
	}
	if (wait && nfiles)
		status |= wait_files(files, nfiles);
	free(files);
	free(paths);
	return status;
}

static int set_pause(int argc, char **argv, const char *v)
{
	if (argc != 2)
		return 2;
	char root[PATH_MAX], rel[PATH_MAX];
	int rc = ctl_mount_of(argv[1], root, rel);
	if (rc) {
		ctl_err("%s: %s", argv[1],
			rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
		return 1;
	}
	rc = ctl_setxattr(root, "pause", v);
	if (rc) {
		ctl_err("%s: %s", root, strerror(-rc));
		return 1;
	}
	printf("%s: migration %s\n", root, v[0] == '1' ? "paused" : "resumed");
	return 0;
}

static int cmd_pause(int argc, char **argv) { return set_pause(argc, argv, "1"); }
static int cmd_resume(int argc, char **argv) { return set_pause(argc, argv, "0"); }

const struct ctl_cmd ctl_cmd_migrate = {
	"migrate", "migrate [--wait] PATH... | migrate --all [--prefix P] [--shard I/N] [--wait] "
		   "[--state DIR] [MOUNT|DIR] | migrate --stop [MOUNT|DIR]", cmd_migrate };
const struct ctl_cmd ctl_cmd_pause = { "pause", "pause MOUNT", cmd_pause };
const struct ctl_cmd ctl_cmd_resume = { "resume", "resume MOUNT", cmd_resume };
