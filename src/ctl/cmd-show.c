/* cmd-show.c - `ferryctl show PATH...`: every user.ferryfs.* value of each path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "base/util.h"

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
				ctl_err("%s: %s", argv[i], strerror(-rc));
				status = 1;
				break;
			}
			printf("  %-8s %s\n", names[k], v);
			free(v);
		}
	}
	return status;
}

const struct ctl_cmd ctl_cmd_show = { "show", "show PATH...", cmd_show };
