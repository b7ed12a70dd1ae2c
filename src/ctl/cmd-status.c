/* cmd-status.c - `ferryctl status [--state DIR] [MOUNT]`: one screen on how far the
 * migration is. Counters come from user.ferryfs.stats (read twice, one second apart, for
 * the throughput); the queue per priority, the crawl jobs and the failed files (with their
 * errors) from the mount's ledger, opened read-only. Without MOUNT: every ferryfs mount. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/crawl.h"
#include "ctl/ctl.h"
#include "ledger/ledger.h"
#include "base/util.h"

#define MAX_FAILED_SHOWN 20

struct failed_walk {
	int shown;
	int state;          /* LEDGER_FAILED or LEDGER_CONFLICT */
};

static int show_failed(const char *path, const struct ledger_file *rec, void *arg)
{
	struct failed_walk *w = arg;
	if (rec->state != w->state)
		return 0;
	if (w->state == LEDGER_CONFLICT)
		printf("             %s: %s\n", path, rec->error[0] ? rec->error : "?");
	else
		printf("             %s: %s (%u attempts)\n", path,
		       rec->error[0] ? rec->error : "?", rec->attempts);
	return ++w->shown >= MAX_FAILED_SHOWN;
}

static int status_one(const char *mount, const char *state_opt, int sample)
{
	char root[PATH_MAX], rel[PATH_MAX], h1[16], h2[16], bar[64];
	char *s1 = NULL, *s2 = NULL;
	struct ledger *l = NULL;
	struct ledger_stats ls;
	int rc = ctl_mount_of(mount, root, rel);
	if (rc) {
		ctl_err("%s: %s", mount, rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
		return 1;
	}
	if ((rc = ctl_getxattr(root, "user.ferryfs.stats", &s1))) {
		ctl_err("%s: cannot read the statistics: %s", root, strerror(-rc));
		return 1;
	}
	double t0 = util_now_s();
	if (sample) {
		sleep(1);
		if (ctl_getxattr(root, "user.ferryfs.stats", &s2))
			s2 = NULL;
	}
	double dt = util_now_s() - t0;
	const char *s = s2 ? s2 : s1;
	char dir[PATH_MAX];
	int have_ledger = ctl_state_dir(root, state_opt, dir, sizeof(dir)) == 0 &&
			  ledger_open(dir, LEDGER_RDONLY, &l) == 0 && ledger_stats(l, &ls) == 0;

	uint64_t mf = ctl_stat_value(s, "migrated_files"), mb = ctl_stat_value(s, "migrated_bytes");
	printf("mount        %s%s%s%s\n", root, have_ledger ? " (ledger " : "",
	       have_ledger ? dir : "",
	       have_ledger ? ")" : " (ledger not found: give --state DIR for details)");
	if (have_ledger) {
		uint64_t kf = ls.files_total - ls.files[LEDGER_NFS_ONLY];
		uint64_t kb = ls.bytes_total - ls.bytes[LEDGER_NFS_ONLY];
		ctl_bar(kf ? (double)mf / (double)kf : 0, 30, bar);
		printf("migrated     %llu of %llu known files  %s %5.1f%%\n",
		       (unsigned long long)mf, (unsigned long long)kf, bar,
		       kf ? 100.0 * (double)mf / (double)kf : 0.0);
		printf("             %s of %s\n", ctl_human((double)mb, h1),
		       ctl_human((double)kb, h2));
		printf("queue        copy-up %llu, touched %llu, crawl %llu; copying %llu\n",
		       (unsigned long long)ls.queued[LEDGER_PRIO_COPYUP],
		       (unsigned long long)ls.queued[LEDGER_PRIO_TOUCHED],
		       (unsigned long long)ls.queued[LEDGER_PRIO_CRAWL],
		       (unsigned long long)ls.copying);
	} else {
		printf("migrated     %llu files, %s\n", (unsigned long long)mf,
		       ctl_human((double)mb, h1));
		printf("queue        %llu waiting; copying %llu\n",
		       (unsigned long long)ctl_stat_value(s, "queued"),
		       (unsigned long long)ctl_stat_value(s, "copying"));
	}
	if (s2 && dt > 0) {
		double f = (double)(ctl_stat_value(s2, "migrated_files") -
				    ctl_stat_value(s1, "migrated_files"));
		double b = (double)(ctl_stat_value(s2, "migrated_bytes") -
				    ctl_stat_value(s1, "migrated_bytes"));
		printf("throughput   %.1f files/s, %s/s (over %.1f s)\n", f / dt,
		       ctl_human(b / dt, h1), dt);
	}
	if (have_ledger) {
		for (int i = 0; i < CRAWL_SLOTS; i++) {
			struct crawl_job j;
			if (crawl_job_load(l, i, &j))
				continue;
			printf("%-12s %s %s%s%s (shard %u/%u): %llu listed, %llu queued, %llu "
			       "skipped, "
			       "%llu unreachable, %llu shadowed%s%s\n",
			       j.spec.kind == CRAWL_SCAN         ? "scan" :
			       j.spec.prio == LEDGER_PRIO_COPYUP ? "migrate-now" :
								   "crawl",
			       crawl_state_name(j.state), j.spec.dir,
			       j.spec.prefix[0] ? " prefix " : "", j.spec.prefix, j.spec.shard_i,
			       j.spec.shard_n, (unsigned long long)j.listed,
			       (unsigned long long)j.queued, (unsigned long long)j.skipped,
			       (unsigned long long)j.unreachable, (unsigned long long)j.shadowed,
			       j.error[0] ? "; last error: " : "", j.error);
		}
	}
	uint64_t failed = ctl_stat_value(s, "failed");
	printf("failed       %llu file(s)\n", (unsigned long long)failed);
	if (failed && have_ledger) {
		struct failed_walk w = { 0, LEDGER_FAILED };
		ledger_foreach_file(l, NULL, show_failed, &w);
		if (failed > (uint64_t)w.shown)
			printf("             ... and %llu more\n",
			       (unsigned long long)(failed - (uint64_t)w.shown));
	}
	uint64_t conflicts = ctl_stat_value(s, "conflicts");
	printf("conflicts    %llu file(s)%s\n", (unsigned long long)conflicts,
	       conflicts ? " (changed here and by a host still writing S3: both versions kept)" :
			   "");
	if (conflicts && have_ledger) {
		struct failed_walk w = { 0, LEDGER_CONFLICT };
		ledger_foreach_file(l, NULL, show_failed, &w);
		if (conflicts > (uint64_t)w.shown)
			printf("             ... and %llu more\n",
			       (unsigned long long)(conflicts - (uint64_t)w.shown));
	}
	printf("journal      %llu entries pending, oldest %llu s\n",
	       (unsigned long long)ctl_stat_value(s, "journal_pending"),
	       (unsigned long long)ctl_stat_value(s, "journal_oldest_s"));
	uint64_t rate = ctl_stat_value(s, "rate");
	printf("migrator     %s, crawl rate %s%s\n",
	       ctl_stat_value(s, "paused") ? "PAUSED" : "running",
	       rate ? ctl_human((double)rate, h1) : "unlimited", rate ? "/s" : "");
	ledger_close(l);
	free(s1);
	free(s2);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	const char *state = NULL, *mount = NULL;
	int sample = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--no-rate"))
			sample = 0;
		else if (argv[i][0] != '-' && !mount)
			mount = argv[i];
		else
			return 2;
	}
	if (mount)
		return status_one(mount, state, sample);
	static char roots[16][4096];
	int n = ctl_mounts(roots, 16), rc = 0;
	if (n == 0) {
		ctl_err("no ferryfs mount on this host");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if (i)
			putchar('\n');
		rc |= status_one(roots[i], n == 1 ? state : NULL, sample);
	}
	return rc;
}

const struct ctl_cmd ctl_cmd_status = { "status", "status [--state DIR] [--no-rate] [MOUNT]",
					cmd_status };
