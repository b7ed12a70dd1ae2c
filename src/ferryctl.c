/* ferryctl.c - the operator's command: inspect and steer a ferryfs mount. Each command is
 * one descriptor in the table below (tmux's cmd-*.c pattern); commands talk to a mount
 * through its user.ferryfs.* extended attributes, so they need no socket and work with
 * plain permissions.
 *
 * Exit status: 0 ok, 1 failure, 2 usage. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "util.h"

struct ctl_cmd {
	const char *name;
	const char *usage;
	int (*run)(int argc, char **argv);   /* argv[0] is the command name */
};

/* Read an xattr into a malloc'd NUL-terminated string. 0 / -errno. */
static int ctl_getxattr(const char *path, const char *name, char **out)
{
	ssize_t n = getxattr(path, name, NULL, 0);
	if (n < 0)
		return -errno;
	char *v = malloc((size_t)n + 1);
	if (!v)
		return -ENOMEM;
	ssize_t m = getxattr(path, name, v, (size_t)n);
	if (m < 0) {
		int rc = -errno;
		free(v);
		return rc;
	}
	v[m] = '\0';
	*out = v;
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	static const char *const names[] = { "state", "source", "s3key", "etag", "migrated",
					     "sha256", "synced", "error" };
	int status = 0;
	if (argc < 2)
		return 2;
	for (int i = 1; i < argc; i++) {
		printf("%s\n", argv[i]);
		for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
			char xname[64], *v = NULL;
			snprintf(xname, sizeof(xname), "user.ferryfs.%s", names[k]);
			int rc = ctl_getxattr(argv[i], xname, &v);
			if (rc == -ENODATA)
				continue;
			if (rc) {
				fprintf(stderr, "ferryctl: %s: %s\n", argv[i], strerror(-rc));
				status = 1;
				break;
			}
			printf("  %-8s %s\n", names[k], v);
			free(v);
		}
	}
	return status;
}

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
		fprintf(stderr, "ferryctl: %s: %s (is it the root of a ferryfs mount?)\n", mount,
			rc == -ENODATA ? "no ferryfs statistics here" : strerror(-rc));
		return 1;
	}
	if (!prometheus) {
		fputs(text, stdout);
		free(text);
		return 0;
	}
	/* Text exposition format, for node_exporter's textfile collector. */
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[64];
		unsigned long long v;
		if (sscanf(line, "%63s %llu", key, &v) != 2)
			continue;
		int counter = strcmp(key, "queued") && strcmp(key, "copying") && strcmp(key, "paused") &&
			      strcmp(key, "journal_pending") && strcmp(key, "journal_oldest_s") &&
			      strcmp(key, "uptime_s") && strcmp(key, "failed");
		printf("# TYPE ferryfs_%s%s %s\n", key, counter ? "_total" : "", counter ? "counter" : "gauge");
		printf("ferryfs_%s%s{mount=\"%s\"} %llu\n", key, counter ? "_total" : "", mount, v);
	}
	free(text);
	return 0;
}

static const struct ctl_cmd ctl_cmds[] = {
	{ "show", "show PATH...", cmd_show },
	{ "stats", "stats [--prometheus] MOUNT", cmd_stats },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ferryctl COMMAND [ARGS]\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(ctl_cmds); i++)
		fprintf(out, "  ferryctl %s\n", ctl_cmds[i].usage);
	fprintf(out, "See ferryctl(8).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("ferryctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(ctl_cmds); i++) {
		if (strcmp(argv[1], ctl_cmds[i].name))
			continue;
		int rc = ctl_cmds[i].run(argc - 1, argv + 1);
		if (rc == 2)
			fprintf(stderr, "usage: ferryctl %s\n", ctl_cmds[i].usage);
		return rc;
	}
	fprintf(stderr, "ferryctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
