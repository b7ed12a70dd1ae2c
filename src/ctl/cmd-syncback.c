/* cmd-syncback.c - `ferryctl sync-back MOUNT [--wait]` and `ferryctl sync-back --state DIR
 * [CONFIG] [-o KEY=VALUE,...]`: write the journal back to S3 now (spec 7).
 *
 * With a MOUNT the daemon does it (user.ferryfs.sync = now, also with mirror=off); --wait
 * waits until the journal is empty, with progress on a terminal. With --state DIR the
 * mount must be down (the ledger has one writer): the journal is replayed here, with the
 * stores described by DIR/mount.conf (written by ferryfs at every mount, no secrets),
 * overridden by CONFIG and -o, and credentials from the usual chain. */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "s3/creds.h"
#include "ctl/ctl.h"
#include "ledger/ledger.h"
#include "writeback/mirror.h"
#include "view/route.h"
#include "store/store.h"
#include "base/util.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int ctl_wait_synced(const char *root, unsigned stall_s);

/* Wait until the mount's journal is empty. Gives up (-ETIMEDOUT) when it has not shrunk
 * for stall_s seconds (0: never). */
int ctl_wait_synced(const char *root, unsigned stall_s)
{
	uint64_t first = 0, best = UINT64_MAX;
	double since = util_now_s();
	for (;;) {
		char *text = NULL;
		int rc = ctl_getxattr(root, "user.ferryfs.stats", &text);
		if (rc)
			return rc;
		uint64_t pending = ctl_stat_value(text, "journal_pending");
		uint64_t errs = ctl_stat_value(text, "mirror_errors");
		uint64_t age = ctl_stat_value(text, "journal_oldest_s");
		free(text);
		if (!first)
			first = pending;
		if (pending == 0) {
			ctl_progress(1, 1, "journal empty: S3 holds every change");
			ctl_progress_done();
			return 0;
		}
		if (pending < best) {
			best = pending;
			since = util_now_s();
		} else if (stall_s && util_now_s() - since > stall_s) {
			ctl_progress_done();
			return -ETIMEDOUT;
		}
		ctl_progress(first > pending ? (double)(first - pending) : 0, (double)first,
			     "%llu journal entries to write back (oldest %llus), %llu error(s)",
			     (unsigned long long)pending, (unsigned long long)age,
			     (unsigned long long)errs);
		sleep_ms(200);
	}
}

static int sync_mount(const char *mount, int wait)
{
	char root[PATH_MAX], rel[PATH_MAX];
	int rc = ctl_mount_of(mount, root, rel);
	if (rc) {
		ctl_err("%s: %s", mount, rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
		return 1;
	}
	if ((rc = ctl_setxattr(root, "sync", "now"))) {
		ctl_err("%s: cannot ask for write-back: %s", root, strerror(-rc));
		return 1;
	}
	if (!wait) {
		printf("write-back to S3 started on %s\n", root);
		return 0;
	}
	if ((rc = ctl_wait_synced(root, 0))) {
		ctl_err("%s: %s", root, strerror(-rc));
		return 1;
	}
	printf("%s: the journal is empty: S3 holds every change made through the mount\n", root);
	return 0;
}

static int set_opts(struct ferry_config *cfg, char *opts)
{
	char err[512];
	char *save = NULL;
	for (char *kv = strtok_r(opts, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		if (cfg_set(cfg, kv, eq ? eq + 1 : NULL, 0, err, sizeof(err))) {
			ctl_err("%s", err);
			return -EINVAL;
		}
	}
	return 0;
}

static int sync_state(const char *state, const char *conf, char **opts, int nopts)
{
	struct ferry_config cfg;
	struct store *s3 = NULL, *nfs = NULL;
	struct ledger *l = NULL;
	char err[512] = "";
	char path[PATH_MAX];
	int status = 1, rc;
	cfg_init(&cfg);
	snprintf(path, sizeof(path), "%s/mount.conf", state);
	if (access(path, F_OK) == 0 && (rc = cfg_load_file(&cfg, path, err, sizeof(err)))) {
		ctl_err("%s", err);
		goto out_cfg;
	}
	if (conf && (rc = cfg_load_file(&cfg, conf, err, sizeof(err)))) {
		ctl_err("%s", err);
		goto out_cfg;
	}
	for (int i = 0; i < nopts; i++)
		if (set_opts(&cfg, opts[i]))
			goto out_cfg;
	free(cfg.state_dir);
	cfg.state_dir = strdup(state);
	free(cfg.mountpoint);
	cfg.mountpoint = strdup("/sync-back");
	if (creds_configure(&cfg, err, sizeof(err)) || cfg_finish(&cfg, err, sizeof(err))) {
		ctl_err("%s%s", err, access(path, F_OK) ? " (no mount.conf in the state directory: "
			"give the mount's CONFIG or -o)" : "");
		goto out_cfg;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out_cfg;
	if ((rc = store_s3_new(&cfg, &s3)) || (rc = store_new_nfs_side(&cfg, &nfs)) ||
	    (rc = store_probe(s3)) || (rc = store_probe(nfs))) {
		ctl_err("cannot reach the stores: %s", strerror(-rc));
		goto out_stores;
	}
	if ((rc = ledger_open(state, 0, &l))) {
		ctl_err("cannot open the ledger in %s: %s", state,
			rc == -EBUSY ?
				"it is in use: the mount is up, use `ferryctl sync-back MOUNT`" :
				strerror(-rc));
		goto out_stores;
	}
	struct route r = { .cfg = &cfg, .nfs = nfs, .s3 = s3, .ledger = l };
	clock_gettime(CLOCK_REALTIME, &r.mount_time);
	struct mirror m = { .r = &r, .l = l, .cfg = &cfg, .carry_dirty = 0 };
	struct ledger_stats ls;
	ledger_stats(l, &ls);
	uint64_t first = ls.journal_pending, done = 0;
	unsigned fails = 0;
	for (;;) {
		size_t failed = 0;
		int n = mirror_batch(&m, &failed, NULL);
		if (n == 0)
			break;
		if (n < 0 || failed) {
			if (++fails >= 6) {
				ctl_progress_done();
				ledger_stats(l, &ls);
				ctl_err("write-back keeps failing (%s); %llu journal entries are "
					"kept for "
					"the next try",
					n < 0 ? strerror(-n) : "see the messages above",
					(unsigned long long)ls.journal_pending);
				goto out_ledger;
			}
			sleep_ms(1000u << fails);
			continue;
		}
		fails = 0;
		done += (uint64_t)n;
		ctl_progress((double)done, (double)first,
			     "%llu of %llu journal entries written back", (unsigned long long)done,
			     (unsigned long long)first);
	}
	ctl_progress_done();
	printf("%s: %llu journal entries written back; the journal is empty\n", state,
	       (unsigned long long)done);
	status = 0;
out_ledger:
	ledger_close(l);
out_stores:
	store_destroy(s3);
	store_destroy(nfs);
	curl_global_cleanup();
out_cfg:
	cfg_free(&cfg);
	return status;
}

static int cmd_syncback(int argc, char **argv)
{
	const char *state = NULL, *conf = NULL, *mount = NULL;
	char *opts[16];
	int nopts = 0, wait = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--wait"))
			wait = 1;
		else if (!strncmp(argv[i], "-o", 2) && nopts < 16) {
			char *o = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!o)
				return 2;
			opts[nopts++] = o;
		} else if (argv[i][0] != '-' && !mount && !conf)
			(state ? &conf : &mount)[0] = argv[i];
		else
			return 2;
	}
	if (state)
		return wait || mount ? 2 : sync_state(state, conf, opts, nopts);
	if (!mount || nopts || conf)
		return 2;
	return sync_mount(mount, wait);
}

const struct ctl_cmd ctl_cmd_syncback = {
	"sync-back", "sync-back MOUNT [--wait] | sync-back --state DIR [CONFIG] [-o KEY=VALUE,...]",
	cmd_syncback };
