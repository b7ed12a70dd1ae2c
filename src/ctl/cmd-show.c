/* cmd-show.c - `ferryctl show PATH...`: every user.ferryfs.* value that describes a path
 * (base/xattrs.h: XA_PATH), for each path (of a symlink itself, not of its target). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "base/util.h"
#include "base/xattrs.h"

static int cmd_show(int argc, char **argv)
{
	int status = 0;
	if (argc < 2)
		return 2;
	for (int i = 1; i < argc; i++) {
		printf("%s\n", argv[i]);
		for (size_t k = 0; k < xa_count; k++) {
			char xname[64], *v = NULL;
			if (!(xa_names[k].flags & XA_PATH))
				continue;
			snprintf(xname, sizeof(xname), XA_PREFIX "%s", xa_names[k].name);
			int rc = ctl_lgetxattr(argv[i], xname, &v);
			if (rc == -ENODATA)
				continue;
			if (rc) {
				ctl_err("%s: %s", argv[i], strerror(-rc));
				status = 1;
				break;
			}
			printf("  %-8s %s\n", xa_names[k].name, v);
			free(v);
		}
	}
	return status;
}

const struct ctl_cmd ctl_cmd_show = { "show", "show PATH...", cmd_show };
