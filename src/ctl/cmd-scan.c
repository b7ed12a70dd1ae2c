/* cmd-scan.c - `ferryctl scan [--state DIR] MOUNT`: the S3 keys the mount cannot show
 * (spec 2): unreachable keys (not POSIX names) and shadowed objects (a directory of the
 * same name wins). The daemon lists the bucket (user.ferryfs.migrate=scan on the root,
 * a crawl job that queues nothing) and writes what it finds to STATE_DIR/scan.txt; this
 * command starts it, waits, and prints "unreachable KEY" / "shadowed KEY" lines, keys
 * %-escaped (spaces, control bytes and '%' as %XX), each once. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/crawl.h"
#include "ctl/ctl.h"
#include "ledger/ledger.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_scan(int argc, char **argv)
{
	const char *state = NULL, *mount = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (argv[i][0] != '-' && !mount)
			mount = argv[i];
		else
			return 2;
	}
	if (!mount)
		return 2;
	char root[PATH_MAX], rel[PATH_MAX], dir[PATH_MAX];
	int rc = ctl_mount_of(mount, root, rel);
	if (rc) {
		ctl_err("%s: %s", mount, rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
		return 1;
	}
	if (ctl_state_dir(root, state, dir, sizeof(dir))) {
		ctl_err("cannot find the ledger of %s (give --state DIR)", root);
		return 1;
	}
	if ((rc = ctl_setxattr(root, "migrate", "scan"))) {
		ctl_err("%s: cannot start the scan: %s", root, strerror(-rc));
		return 1;
	}
	struct ledger *l;
	if (ctl_open_ledger(root, state, &l))
		return 1;
	struct crawl_job j;
	for (;;) {
		if (ctl_find_job(l, "/", CRAWL_SCAN, 0, 0, 1, "", &j) < 0) {
			ctl_err("the scan job is not in the ledger");
			ledger_close(l);
			return 1;
		}
		ctl_progress(j.state == CRAWL_DONE, 1, "%llu keys listed",
			     (unsigned long long)j.listed);
		if (j.state != CRAWL_RUNNING)
			break;
		usleep(200 * 1000);
	}
	ledger_close(l);
	ctl_progress_done();
	if (j.state != CRAWL_DONE) {
		ctl_err("the scan is %s%s%s", crawl_state_name(j.state), j.error[0] ? ": " : "",
			j.error);
		return 1;
	}
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/" CRAWL_SCAN_FILE, dir);
	FILE *f = fopen(p, "r");
	if (!f) {
		ctl_err("%s: %s", p, strerror(errno));
		return 1;
	}
	char **lines = NULL, line[8192];
	size_t n = 0, cap = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **v = realloc(lines, cap * sizeof(*v));
			if (!v)
				break;
			lines = v;
		}
		if (!(lines[n] = strdup(line)))
			break;
		n++;
	}
	fclose(f);
	if (n > 1)          /* lines is NULL for an empty scan, and qsort's array is nonnull */
		qsort(lines, n, sizeof(*lines), cmp);
	unsigned long long unreachable = 0, shadowed = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(lines[i], lines[i - 1]))
			continue;     /* a resumed scan lists a few keys twice */
		puts(lines[i]);
		unreachable += !strncmp(lines[i], "unreachable ", 12);
		shadowed += !strncmp(lines[i], "shadowed ", 9);
	}
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	fprintf(stderr, "%llu keys listed: %llu unreachable, %llu shadowed\n",
		(unsigned long long)j.listed, unreachable, shadowed);
	return 0;
}

const struct ctl_cmd ctl_cmd_scan = { "scan", "scan [--state DIR] MOUNT", cmd_scan };
