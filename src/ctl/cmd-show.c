/* cmd-show.c - `ferryctl show PATH...`: every user.ferryfs.* value that describes a path
 * (base/xattrs.h: XA_PATH), for each path (of a symlink, only what it is: the kernel keeps
 * user.* names off symlinks). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "base/util.h"
#include "base/xattrs.h"

static int cmd_show(int argc, char **argv)
{
	int status = 0;
	if (argc < 2)
		return 2;
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		printf("%s\n", argv[i]);
		if (lstat(argv[i], &sb) == 0 && S_ISLNK(sb.st_mode)) {
			/* the kernel keeps user.* names off symlinks: nothing to show but the
			 * link itself (never its target's values as if they were the link's) */
			char t[PATH_MAX];
			ssize_t n = readlink(argv[i], t, sizeof(t) - 1);
			t[n > 0 ? n : 0] = '\0';
			printf("  %-8s symlink to %s (show the target for its attributes)\n",
			       "type", t);
			continue;
		}
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
