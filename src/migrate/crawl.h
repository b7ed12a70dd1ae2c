/* crawl.h - the crawl (spec section 6): jobs that list S3 recursively, page by page, and
 * queue every reachable object under a directory in the ledger, resumable from a
 * checkpoint, optionally split between N hosts by a hash of the key (--shard I/N, no
 * coordinator). The same machinery runs `migrate=now` on a directory (copy-up priority)
 * and `ferryctl scan` (lists unreachable and shadowed keys, queues nothing).
 *
 * Jobs live in the ledger's checkpoints, so they survive unmounts and crashes:
 *   crawl.<slot>       the job (spec, state, counters), crawl_job_format's text
 *   crawl.<slot>.last  the last key fully processed; a resumed job lists after it
 * ferryctl reads them through a read-only ledger (crawl_job_load).
 *
 * One thread (crawl_start) runs every running job, one listing page at a time, copy-up
 * jobs first. It holds crawl_lock across its short checkpoint writes to the ledger, never
 * across an S3 call. It must never queue an unreachable key, and never run ahead of the
 * workers by more than CRAWL_QUEUE_HIGH waiting entries (back-pressure). */
#ifndef FERRY_CRAWL_H
#define FERRY_CRAWL_H

#include <stdint.h>
#include <stdio.h>

#include "base/util.h"

struct ferry;
struct ledger;

#define CRAWL_SLOTS 8
#define CRAWL_DIR_MAX 16384      /* bytes of dir + prefix of one job: a mount path */
#define CRAWL_KEY_MAX 1100       /* S3 keys are at most 1024 bytes */
#define CRAWL_QUEUE_HIGH 20000   /* the crawl waits while more entries wait at its priority */
#define CRAWL_QUEUE_LOW 5000     /* ... until fewer than this do */

enum crawl_kind { CRAWL_QUEUE = 0, CRAWL_SCAN = 1 };
enum crawl_state { CRAWL_NONE = 0, CRAWL_RUNNING, CRAWL_DONE, CRAWL_STOPPED, CRAWL_FAILED };

struct crawl_spec {
	int kind;                  /* enum crawl_kind */
	int prio;                  /* ledger priority of what it queues (CRAWL_QUEUE) */
	unsigned shard_i, shard_n; /* keys whose hash mod shard_n == shard_i; n = 1: all */
	char dir[CRAWL_DIR_MAX];   /* mount path of the directory crawled ("/" = everything) */
	char prefix[CRAWL_DIR_MAX];/* name prefix inside dir ("" = all) */
};

struct crawl_job {
	struct crawl_spec spec;
	int state;                 /* enum crawl_state */
	int64_t started, finished; /* unix seconds */
	uint64_t listed;           /* keys listed (this shard's and others') */
	uint64_t queued;           /* paths queued (or moved up) */
	uint64_t skipped;          /* already migrated, queued, or another shard's */
	uint64_t unreachable;      /* keys that cannot be POSIX paths (spec 2) */
	uint64_t shadowed;         /* objects hidden by a directory of the same name */
	uint64_t pages;
	char error[128];           /* last listing error, "" = none */
	char last[CRAWL_KEY_MAX];  /* the checkpoint: last key fully processed */
};

/* Parse the value of user.ferryfs.migrate for a crawl request:
 *   "crawl [shard=I/N] [prefix=P]"  (prefix= takes the rest of the value: P may hold spaces)
 *   "scan"
 * into *out (dir left empty). 0 / -EINVAL. Pure. */
int crawl_parse(const char *value, struct crawl_spec *out);

/* The shard of a key: FNV-1a 64 of the full key, mod n. Pure. */
unsigned crawl_shard_of(const char *key, unsigned n);

/* The key prefix a spec lists: s3_prefix + dir (without its '/', plus '/') + prefix. */
int crawl_key_prefix(const char *s3_prefix, const struct crawl_spec *s, struct buf *out);

/* Text form of a job (without `last`), and back. Pure. */
int crawl_job_format(const struct crawl_job *j, struct buf *out);
int crawl_job_parse(const char *text, struct crawl_job *j);

/* Read/write slot's job from/to the ledger's checkpoints. load: 0 / -ENOENT / -errno. */
int crawl_job_load(struct ledger *l, int slot, struct crawl_job *j);
int crawl_job_save(struct ledger *l, int slot, const struct crawl_job *j, int with_last);

const char *crawl_state_name(int state);

/* Shadow detection over a sorted recursive listing: an object "a" is shadowed when a key
 * "a/..." exists. Objects wait in a FIFO until the listing passes "a/". Pure. */
struct crawl_shadow {
	char **keys;               /* waiting objects, in key order */
	char **prev;               /* for each, the key listed just before it (checkpoint) */
	size_t n, cap;
};
/* Feed the next key of the listing (objects and markers alike). Objects that are decided
 * are passed to emit(arg, key, shadowed) in key order. 0 / -ENOMEM / what emit returned. */
int crawl_shadow_feed(struct crawl_shadow *s, const char *key, const char *prev,
		      int (*emit)(void *arg, const char *key, int shadowed), void *arg);
/* The listing ended: every waiting object is not shadowed. */
int crawl_shadow_flush(struct crawl_shadow *s,
		       int (*emit)(void *arg, const char *key, int shadowed), void *arg);
/* The key a resumed listing must start after so that no waiting object is lost: the key
 * before the first waiting one, or `last` when none waits. NULL = from the beginning. */
const char *crawl_shadow_resume(const struct crawl_shadow *s, const char *last);
void crawl_shadow_free(struct crawl_shadow *s);

/* ---- the daemon side (src/migrate/crawl.c; used by migrate.c) ---- */

/* What the crawl asks of the migrator that runs it (migrate.c), injected so that the crawl
 * does not call the layer that starts it. Both are called from the crawl thread. */
struct crawl_hooks {
	int (*paused)(struct ferry *fy);   /* 1: list nothing for now (user.ferryfs.pause) */
	void (*queued)(struct ferry *fy);  /* a page queued files: wake every worker */
};

/* Load the jobs from the ledger and start the crawl thread. 0 / -errno. */
int crawl_start(struct ferry *fy, const struct crawl_hooks *hooks);
/* Stop the thread (the current page is abandoned; its checkpoint is the previous one). */
void crawl_stop(void);
/* Start (or resume, when the same spec is running or stopped) a job on dir. A finished
 * job of the same spec starts over. 0 / -EBUSY (every slot holds a running job) /
 * -ENAMETOOLONG / -errno. */
int crawl_request(struct ferry *fy, const char *dir, const struct crawl_spec *spec);
/* Stop the running jobs on dir ("/" = all). Returns how many. */
int crawl_cancel(struct ferry *fy, const char *dir);
/* One "key value" line per job field, for a status xattr. */
int crawl_status_text(struct ferry *fy, struct buf *b);
/* Where `scan` writes what it found: STATE_DIR/scan.txt, one "unreachable KEY" or
 * "shadowed KEY" a line, keys escaped (crawl_escape). */
#define CRAWL_SCAN_FILE "scan.txt"
/* %-escape '%' and bytes below 0x21 (so a key is one word on one line). */
int crawl_escape(const char *s, struct buf *out);
int crawl_unescape(const char *s, char *out, size_t outlen);

#endif
