/* ferry.h - one mounted filesystem: its configuration, its two stores, the merged view
 * over them (route.h) and its ledger. The context every daemon module is handed (the FUSE
 * handlers, the journal, the mirror, the migrator, the crawl, the fleet); it knows nothing
 * of FUSE. */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include "base/cfg.h"
#include "view/route.h"

/* Created by ferryfs.c before mounting, read-only afterwards (its stores are thread-safe
 * themselves). */
struct ferry {
	struct ferry_config *cfg;
	struct store *nfs;
	struct store *s3;
	struct route route;
	struct ledger *ledger;     /* opened after daemonizing (LMDB must not cross a fork) */
	double started;            /* util_now_s() at mount */
	int readahead;             /* ra_init succeeded: S3 reads go through read-ahead */
};

#endif
