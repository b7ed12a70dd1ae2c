/* fs.h - the FUSE operations: where every call from the kernel lands (fs.c). They ask
 * route.c which store serves a path and then talk to that store; nothing else here. */
#ifndef FERRY_FS_H
#define FERRY_FS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <time.h>

#include "base/cfg.h"
#include "view/route.h"

/* One mounted filesystem. Created by ferryfs.c before mounting, read-only afterwards
 * (its stores are thread-safe themselves). */
struct ferry {
	struct ferry_config *cfg;
	struct store *nfs;
	struct store *s3;
	struct route route;
	struct ledger *ledger;     /* opened after daemonizing (LMDB must not cross a fork) */
	double started;            /* util_now_s() at mount */
	int readahead;             /* ra_init succeeded: S3 reads go through read-ahead */
};

/* The operation table handed to fuse_new; private data must be a struct ferry. */
const struct fuse_operations *fs_operations(void);

#endif
