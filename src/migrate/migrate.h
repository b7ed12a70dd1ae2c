/* migrate.h - the background migrator (spec section 6): worker threads that take files from
 * the ledger's queue (copy-up > touched > crawl) and copy each with copy_s3_to_nfs, the
 * crawl that queues the rest of the bucket, and the controls behind user.ferryfs.migrate,
 * .pause and .rate. fs.c and ferryfs.c call only these functions. */
#ifndef FERRY_MIGRATE_H
#define FERRY_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

struct ferry;

/* Start cfg->workers worker threads (after daemonizing, once the ledger is open); clean up
 * temporary files a crash of this host left behind. 0 / -errno. */
int mig_start(struct ferry *fy);
/* Stop the workers: in-flight copies finish or are abandoned cleanly within a bounded
 * time (an abandoned copy leaves its entry queued for the next mount). */
void mig_stop(struct ferry *fy);

/* A file was queued (touched): wake a worker. Cheap; any thread. */
void mig_wake(struct ferry *fy);
/* Many files were queued (a crawl page, resume): wake every worker. */
void mig_wake_all(struct ferry *fy);

/* setxattr of a writable user.ferryfs.* name (spec 8): "migrate" on any path, "pause" and
 * "rate" on the root. migrate's values: "now" (a file: queued at copy-up priority; a
 * directory: its subtree, by a crawl job at copy-up priority), "crawl [shard=I/N]
 * [prefix=P]" (a directory or the root: crawl at crawl priority), "scan" (list
 * unreachable and shadowed keys into STATE_DIR/scan.txt), "stop" (stop the crawl jobs on
 * this directory; the root: all). name is without the "user.ferryfs." prefix. 0,
 * -EINVAL (bad value), -ENODATA (unknown name), -EROFS (not writable here), -errno. */
int mig_control(struct ferry *fy, const char *path, const char *name, const char *value,
		size_t size);

/* getxattr of user.ferryfs.<name> names the migrator serves on the root, for ferryctl:
 * "state_dir" (where the ledger is), "crawl" (the crawl jobs, crawl_job_format lines after
 * "slot N"), "migrator" (workers, paused, rates, this run's counters). Appends the value
 * to b; -ENODATA for any other name or path. */
struct buf;
int mig_getxattr(struct ferry *fy, const char *path, const char *name, struct buf *b);

/* For user.ferryfs.stats. */
int mig_paused(struct ferry *fy);
uint64_t mig_rate(struct ferry *fy);

#endif
