/* sweep.h - the fleet's shared sweep of the bucket for revalidation (spec section 7).
 *
 * Hosts still on S3 may overwrite objects that mounts have migrated. An open re-checks its
 * file (fleet.c); the sweep catches the rest: once per period (`revalidate_sweep` seconds)
 * ONE host of the fleet lists the bucket, and every host checks what changed against its
 * own ledger. The hosts share the work through files on the new store, with no coordinator:
 *
 *   .ferryfs.sweep/epoch        when the first mount of the fleet started (link-if-absent)
 *   .ferryfs.sweep/R.lease      the host sweeping round R (R = now / period): its token, the
 *                               round's start, the next chunk number and the listing cursor;
 *                               rewritten after every chunk, taken over once it is stale
 *   .ferryfs.sweep/R.cN         chunk N of round R: the cursor where it ends, then one line
 *                               "ETAG SIZE PATH" (PATH %-escaped) per object changed since
 *                               the previous finished round started (less a clock margin);
 *                               published whole (written aside, then linked: only once)
 *   .ferryfs.sweep/R.done       round R finished: its start time and its number of chunks
 *
 * An object not modified since the previous round started cannot have changed since that
 * round listed it, so a chunk holds only what changed: in an idle fleet the sweep costs
 * objects/1000 LIST requests per period for the whole fleet, and each host reads a few small
 * files. A host whose daemon dies mid-round leaves its lease; another host takes it over
 * after SW_LEASE_STALE_S and resumes from its cursor (a chunk published twice is refused by
 * the link, and the second host continues from the published chunk's own cursor).
 *
 * Every host reads the chunks in order and remembers how far it read in its ledger
 * (checkpoint "sweep_read"); a host that fell more than SW_KEEP_ROUNDS behind (the files
 * were removed) lists the bucket itself once. Not thread-safe: one caller (the fleet
 * thread). */
#ifndef FERRY_SWEEP_H
#define FERRY_SWEEP_H

#include <stdint.h>

struct store;
struct s3_client;
struct ledger;

#define SW_DIR "/.ferryfs.sweep"
#define SW_LEASE_STALE_S 600      /* a lease not refreshed for this long may be taken over */
#define SW_SKEW_S 300             /* clock margin between hosts and S3 */
#define SW_KEEP_ROUNDS 3          /* rounds kept on the new store for hosts behind */
#define SW_CHUNK_PAGES 50         /* listing pages (of 1,000 keys) per chunk */

/* What a host does with one changed object: path (mount path), its ETag and size now. */
typedef void (*sw_changed_fn)(void *arg, const char *path, const char *etag, uint64_t size);
/* 1 when the caller must stop (unmount, finish): the step returns at the next page. */
typedef int (*sw_stop_fn)(void *arg);

struct sw_ctx {
	struct store *nfs;            /* the new store (its root is the mount's root) */
	struct s3_client *s3;
	struct ledger *ledger;
	const char *prefix;           /* s3_prefix */
	unsigned period;              /* seconds between rounds (revalidate_sweep) */
	unsigned chunk_pages;         /* 0: SW_CHUNK_PAGES */
	unsigned page_keys;           /* keys a listing page (0: 1,000) */
	int skew;                     /* clock margin in seconds (< 0: SW_SKEW_S) */
	sw_changed_fn changed;
	sw_stop_fn stop;
	void *arg;
	/* state, the module's own */
	char token[80];               /* this process: host, pid, start time */
	double started;
	uint64_t listed, chunks_written, lines_read, takeovers, full_listings;
	uint64_t round_listed, round_changed;
	int holding;                  /* this host holds hold_round, not finished */
	uint64_t hold_round;
};

/* Set up ctx (fill the public fields first). 0 / -errno. */
int sw_init(struct sw_ctx *ctx);

/* One bounded step: sweep a chunk if this host holds a round or can take the current one,
 * then read every chunk published since the last step. Returns 1 when this host holds a
 * round not finished (call again soon), 0, or -errno (logged; the next step tries again). */
int sw_step(struct sw_ctx *ctx);

/* Remove the sweep's files from the new store (ferryctl finish). 0 / -errno. */
int sw_remove_all(struct store *nfs);

/* Pure helpers, exposed for tests. A line of a chunk: "ETAG SIZE PATH\n", PATH with '%',
 * bytes below 0x21 and 0x7f written %XX. sw_format_line appends to out; sw_parse_line
 * decodes one line (without its '\n') in place: 0 / -EINVAL. */
struct buf;
int sw_format_line(struct buf *out, const char *etag, uint64_t size, const char *path);
int sw_parse_line(char *line, const char **etag, uint64_t *size, const char **path);

#endif
