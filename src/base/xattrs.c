/* xattrs.c - the table of user.ferryfs.* names (xattrs.h). The order is the order of
 * listxattr and of `ferryctl show`. */
#include "base/xattrs.h"

#include <string.h>

const struct xa_name xa_names[] = {
	/* every path: what it is and where it is served from */
	{ "state", XA_GET | XA_PATH, XA_VIEW },
	{ "source", XA_GET | XA_PATH, XA_VIEW },
	{ "s3key", XA_GET | XA_PATH, XA_VIEW },
	{ "etag", XA_GET | XA_PATH, XA_VIEW },
	{ "migrated", XA_GET | XA_PATH, XA_VIEW },
	{ "sha256", XA_GET | XA_PATH, XA_VIEW },
	{ "synced", XA_GET | XA_PATH, XA_VIEW },
	{ "error", XA_GET | XA_PATH, XA_VIEW },
	/* the mount root: counters, write-back, migrator, finish */
	{ "stats", XA_GET | XA_ROOT, XA_VIEW },
	{ "revert", XA_GET | XA_SET | XA_ROOT, XA_MIRROR },
	{ "sync", XA_SET, XA_MIRROR },
	{ "sync_verify", XA_GET | XA_ROOT, XA_MIRROR },
	{ "sync_verify_all", XA_GET | XA_ROOT, XA_MIRROR },
	{ "state_dir", XA_GET | XA_ROOT, XA_MIGRATOR },
	{ "crawl", XA_GET | XA_ROOT, XA_MIGRATOR },
	{ "migrator", XA_GET | XA_ROOT, XA_MIGRATOR },
	{ "migrate", XA_SET, XA_MIGRATOR },
	{ "pause", XA_SET, XA_MIGRATOR },
	{ "rate", XA_SET, XA_MIGRATOR },
	{ "finish", XA_SET, XA_FLEET },
};

const size_t xa_count = sizeof(xa_names) / sizeof(xa_names[0]);

const struct xa_name *xa_find(const char *name)
{
	for (size_t i = 0; i < xa_count; i++)
		if (!strcmp(xa_names[i].name, name))
			return &xa_names[i];
	return NULL;
}

const char *xa_strip(const char *name)
{
	return strncmp(name, XA_PREFIX, sizeof(XA_PREFIX) - 1) ? NULL :
								 name + sizeof(XA_PREFIX) - 1;
}
