/* cmd-stats.c - `ferryctl stats [--prometheus] MOUNT`: the mount's counters, as text or in
 * the Prometheus text exposition format (node_exporter's textfile collector). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int cmd_stats(int argc, char **argv)
{
	int prometheus = 0;
	const char *mount = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--prometheus"))
			prometheus = 1;
		else if (!mount && argv[i][0] != '-')
			mount = argv[i];
		else
			return 2;
	}
	if (!mount)
		return 2;
	char *text = NULL;
	int rc = ctl_getxattr(mount, "user.ferryfs.stats", &text);
	if (rc) {
		ctl_err("%s: %s (is it the root of a ferryfs mount?)", mount,
			rc == -ENODATA ? "no ferryfs statistics here" : strerror(-rc));
		return 1;
	}
	if (!prometheus) {
		fputs(text, stdout);
		free(text);
		return 0;
	}
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[64];
		unsigned long long v;
		if (sscanf(line, "%63s %llu", key, &v) != 2)
			continue;
		int counter = strcmp(key, "queued") && strcmp(key, "copying") &&
			      strcmp(key, "paused") && strcmp(key, "journal_pending") &&
			      strcmp(key, "journal_oldest_s") && strcmp(key, "uptime_s") &&
			      strcmp(key, "failed") && strcmp(key, "rate") &&
			      strcmp(key, "conflicts") && strcmp(key, "migrated_files") &&
			      strcmp(key, "migrated_bytes") && strcmp(key, "read_only") &&
			      strcmp(key, "heap_bytes");
		printf("# TYPE ferryfs_%s%s %s\n", key, counter ? "_total" : "",
		       counter ? "counter" : "gauge");
		printf("ferryfs_%s%s{mount=\"%s\"} %llu\n", key, counter ? "_total" : "", mount, v);
	}
	free(text);
	return 0;
}

const struct ctl_cmd ctl_cmd_stats = { "stats", "stats [--prometheus] MOUNT", cmd_stats };
