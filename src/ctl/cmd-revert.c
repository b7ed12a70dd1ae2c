/* cmd-revert.c - `ferryctl revert [--full] MOUNT`: make the mount refuse every change
 * (EROFS; reads go on), write the journal back to S3 (also with mirror=off), check that S3
 * holds what the mount shows for every path the drained journal named (--full: for
 * everything the new store holds), and say whether it is safe to unmount (spec 7). Exit 0:
 * safe; 1: not (what differs is printed). `ferryctl revert --cancel MOUNT` accepts
 * changes again. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "ctl/ctl.h"

int ctl_wait_synced(const char *root, unsigned stall_s);   /* cmd-syncback.c */

static int cmd_revert(int argc, char **argv)
{
	const char *mount = NULL;
	int cancel = 0, full = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cancel"))
			cancel = 1;
		else if (!strcmp(argv[i], "--full"))
			full = 1;
		else if (argv[i][0] != '-' && !mount)
			mount = argv[i];
		else
			return 2;
	}
	if (!mount)
		return 2;
	char root[PATH_MAX], rel[PATH_MAX];
	int rc = ctl_mount_of(mount, root, rel);
	if (rc) {
		ctl_err("%s: %s", mount, rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
		return 1;
	}
	if ((rc = ctl_setxattr(root, "revert", cancel ? "0" : "1"))) {
		ctl_err("%s: %s", root, strerror(-rc));
		return 1;
	}
	if (cancel) {
		printf("%s accepts changes again\n", root);
		return 0;
	}
	fprintf(stderr, "%s refuses changes now (EROFS); writing the journal back to S3\n", root);
	if ((rc = ctl_wait_synced(root, 300))) {
		ctl_err("%s: write-back did not finish (%s); the mount stays read-only, see its "
			"log "
			"and `ferryctl status`; run revert again to retry",
			root, rc == -ETIMEDOUT ? "no progress for 300 s" : strerror(-rc));
		return 1;
	}
	/* one call with the largest value a getxattr can return: the check runs once */
	size_t size = 65536;
	char *v = malloc(size + 1);
	if (!v)
		return 1;
	ssize_t n = getxattr(root,
			     full ? "user.ferryfs.sync_verify_all" : "user.ferryfs.sync_verify",
			     v, size);
	if (n < 0) {
		rc = errno;
		ctl_err("%s: cannot check S3 against the mount: %s", root,
			rc == ERANGE ? "too many differences to list" : strerror(rc));
		free(v);
		return 1;
	}
	v[n] = '\0';
	if (!strncmp(v, "ok\n", 3)) {
		printf("%s: S3 holds every change made through the mount; safe to unmount\n", root);
		free(v);
		return 0;
	}
	printf("%s: S3 does NOT match the mount yet:\n%s", root, v);
	printf("the mount stays read-only; fix the cause and run `ferryctl revert %s` again\n",
	       root);
	free(v);
	return 1;
}

const struct ctl_cmd ctl_cmd_revert = { "revert", "revert [--full] [--cancel] MOUNT", cmd_revert };
