/* ferryctl.c - the operator's command: inspect and steer a ferryfs mount. Each command is
 * one descriptor in its own src/ctl/cmd-NAME.c (tmux's cmd-*.c pattern), listed in the
 * table below; src/ctl/ctl.c holds what they share. Commands talk to a mount through its
 * user.ferryfs.* extended attributes, so they need no socket and work with plain
 * permissions, and read its ledger read-only.
 *
 * Exit status: 0 ok, 1 failure, 2 usage. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "base/log.h"
#include "base/util.h"

static const struct ctl_cmd *const ctl_cmds[] = {
	&ctl_cmd_status, &ctl_cmd_show, &ctl_cmd_migrate, &ctl_cmd_pause, &ctl_cmd_resume,
	&ctl_cmd_verify, &ctl_cmd_scan, &ctl_cmd_stats, &ctl_cmd_rebuild, &ctl_cmd_finish,
	&ctl_cmd_syncback, &ctl_cmd_revert, &ctl_cmd_plan,
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ferryctl COMMAND [ARGS]\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(ctl_cmds); i++)
		fprintf(out, "  ferryctl %s\n", ctl_cmds[i]->usage);
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
	log_init(LOG_TO_STDERR, LOG_WARNING, "ferryctl");
	for (size_t i = 0; i < ARRAY_SIZE(ctl_cmds); i++) {
		if (strcmp(argv[1], ctl_cmds[i]->name))
			continue;
		int rc = ctl_cmds[i]->run(argc - 1, argv + 1);
		ctl_progress_done();
		if (rc == 2)
			fprintf(stderr, "usage: ferryctl %s\n", ctl_cmds[i]->usage);
		return rc;
	}
	fprintf(stderr, "ferryctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
