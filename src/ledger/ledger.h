/* ledger.h - the per-mount ledger: one LMDB environment on local disk that records what
 * moved from S3 to NFS (state, size, ETag, SHA-256), keeps the migration queue, maps NFS
 * file ids to stable inode numbers, journals every change made through the mount and holds
 * the crawl checkpoints.
 *
 * It never does network I/O and never holds a transaction across a call: every function
 * opens, uses and ends its own short LMDB transaction, so a FUSE thread waits at most for
 * one other short write transaction. The layout, the error mapping and the durability
 * rules are in doc/ledger.md.
 *
 * Rules for callers:
 * - Open the ledger AFTER daemonizing and never use a handle across fork(): LMDB state
 *   does not survive fork. A handle used in a process other than the one that opened it
 *   fails every call with -ECHILD.
 * - Any number of threads may share one handle (LMDB write transactions are serialized
 *   by LMDB itself; readers run in parallel, MDB_NOTLS).
 * - One writer process per ledger: a second read-write open of the same directory gets
 *   -EBUSY. Read-only opens (LEDGER_RDONLY, e.g. ferryctl) may run beside the writer.
 * - Paths are mount paths: they begin with '/', at most LEDGER_PATH_MAX bytes.
 * - Every function returns 0 (or a documented count) or -errno. All structs passed in or
 *   out are caller-owned; nothing returned needs freeing except by ledger_close.
 */
#ifndef FERRY_LEDGER_H
#define FERRY_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define LEDGER_SCHEMA_VERSION 1
#define LEDGER_PATH_MAX 16383 /* bytes, without the NUL: NAME_MAX_PATH (naming.h) */
#define LEDGER_ETAG_MAX 80    /* bytes with the NUL (as STORE_ETAG_MAX) */
#define LEDGER_ERROR_MAX 128  /* bytes with the NUL; longer errors are truncated */
#define LEDGER_CKPT_MAX 34816 /* bytes of a checkpoint value: two paths and some */

struct ledger;

/* ledger_open flags */
#define LEDGER_CREATE 0x1  /* create the directory (mode 0700) and the ledger if missing */
#define LEDGER_RDONLY 0x2  /* read-only (ferryctl beside a mount): no upgrade, no recovery */
#define LEDGER_NOSYNC 0x4  /* no fsync at commit: a process crash loses nothing, an OS crash may
			    * lose recent transactions (tests, benchmarks) */

struct ledger_opts {
	size_t map_size;   /* initial LMDB map size in bytes; 0 = default (4 GiB). Grows by
			    * doubling on MDB_MAP_FULL, up to max_map_size. */
	size_t max_map_size; /* 0 = default (1 TiB) */
};

/* Open (and with LEDGER_CREATE create) the ledger in dir. Refuses a dir on NFS, FUSE, SMB
 * or 9p (-EREMOTE), a ledger with a newer schema (-EPROTO, logged with both versions),
 * a second writer (-EBUSY). A read-write open upgrades an older schema in place and puts
 * queue entries left `copying` by a crash back to `queued`. *out is freed by ledger_close. */
int ledger_open(const char *dir, unsigned flags, struct ledger **out);
int ledger_open_ex(const char *dir, unsigned flags, const struct ledger_opts *opts,
		   struct ledger **out);
/* Close; NULL is fine. No other thread may be using the handle. */
void ledger_close(struct ledger *l);
/* Flush to disk (useful with LEDGER_NOSYNC). */
int ledger_sync(struct ledger *l);

/* ---- files: mount path -> what the ledger knows about the file ---- */

enum ledger_state {
	LEDGER_S3_ONLY = 0,
	LEDGER_QUEUED,
	LEDGER_COPYING,
	LEDGER_MIGRATED,
	LEDGER_MODIFIED,
	LEDGER_NFS_ONLY,
	LEDGER_FAILED,
	LEDGER_CONFLICT,
	LEDGER_NSTATES
};

/* ---- the file state machine ----
 *
 * A file record's state changes only by an event, as ledger_transitions says: for each event
 * and each current state (or LEDGER_ABSENT: no record), the new state, and which modules may
 * cause the event. One function in the ledger applies it to every write of a record; an
 * illegal change is refused with -EINVAL, logged, and writes nothing. doc/ledger.md draws
 * the table. Events with who = LEDGER_BY_LEDGER happen only inside the named ledger
 * function (which also keeps the queue and the inode map right); the others are caused
 * with ledger_file_event by the module named. */

enum ledger_event {
	LEDGER_EV_QUEUE,    /* ledger_queue_push[_many] (fs.c, crawl.c, migrate.c) */
	LEDGER_EV_TAKE,     /* ledger_queue_pop: a migration worker copies it (migrate.c) */
	LEDGER_EV_REQUEUE,  /* ledger_queue_requeue (migrate.c); a copy interrupted by a crash */
	LEDGER_EV_GIVE_UP,  /* ledger_queue_fail (migrate.c) */
	LEDGER_EV_DEQUEUE,  /* ledger_queue_remove (migrate.c) */
	LEDGER_EV_COPIED,   /* ledger_commit_migration: a copy is published (migrate.c, copy.c) */
	LEDGER_EV_IMPORT,   /* ledger_file_put[_many]: a record made from what is found
			     * (ferryctl rebuild, tools) */
	LEDGER_EV_EDIT,     /* ledger_file_update: other fields change, never the state
			     * (writeback/conflict.c) */
	LEDGER_EV_FOUND,    /* the migrator finds the path written on NFS, not by its copy */
	LEDGER_EV_WRITTEN,  /* a migrated file changes through the mount (view/ns.c) */
	LEDGER_EV_UPLOADED, /* the write-back uploaded the file to S3 (writeback/mirror.c) */
	LEDGER_EV_CONFLICT, /* S3 changed by another host too, found by revalidation
			     * (migrate/fleet.c) or by an upload (writeback/mirror.c); both
			     * through writeback/conflict.c */
	LEDGER_EV_KEPT,     /* the write-back keeps a file on the new store only: S3 cannot hold
			     * its key (writeback/mirror.c) */
	LEDGER_NEVENTS
};

/* who may cause an event (bits) */
#define LEDGER_BY_LEDGER  0x01  /* the ledger function named with the event */
#define LEDGER_BY_VIEW    0x02  /* src/view/ (copy-up, writes through the mount) */
#define LEDGER_BY_MIGRATE 0x04  /* src/migrate/migrate.c (the migrator) */
#define LEDGER_BY_FLEET   0x08  /* src/migrate/fleet.c (revalidation) */
#define LEDGER_BY_MIRROR  0x10  /* src/writeback/mirror.c (the write-back to S3) */

#define LEDGER_ABSENT LEDGER_NSTATES /* the current "state" of a path with no record */

/* cells of the table other than a new state */
#define LEDGER_T_SAME  (-1) /* stays in its state; the event's other fields are written */
#define LEDGER_T_KEEP  (-2) /* the event does not apply: nothing is written, not an error */
#define LEDGER_T_STALE (-3) /* a writer got there first: -ESTALE, nothing is written */
#define LEDGER_T_NO    (-4) /* illegal: -EINVAL, logged, nothing is written */
#define LEDGER_T_ANY   (-5) /* the state the imported record carries */

struct ledger_transition {
	const char *name;                 /* "queue", "take", ... */
	unsigned who;                     /* LEDGER_BY_* bits */
	signed char to[LEDGER_NSTATES + 1]; /* per current state (and LEDGER_ABSENT) */
};
extern const struct ledger_transition ledger_transitions[LEDGER_NEVENTS];

/* What event (caused by who) does to a record in state `from` (LEDGER_ABSENT: none), when
 * the caller's record carries state `want` (-1: whatever the table says). Returns 0 with
 * *to set, 1 when the event does not apply (nothing to write), -ESTALE, or -EINVAL (an
 * illegal change: a state, event or who the table does not allow). Pure; no logging. */
int ledger_state_next(int from, int event, unsigned who, int want, int *to);
const char *ledger_event_name(int event); /* "queue", ...; "?" for a bad value */

/* "s3-only", "queued", ... as user.ferryfs.state shows them; "?" for a bad value. */
const char *ledger_state_name(int state);
/* Parse a state name; -EINVAL if unknown. */
int ledger_state_parse(const char *s);

struct ledger_file {
	uint8_t state;            /* enum ledger_state */
	bool has_sha256;
	uint32_t attempts;        /* migration attempts so far */
	uint64_t size;            /* bytes */
	uint64_t ino;             /* stable inode number reported for this path (0 = none) */
	int64_t migrated;         /* unix seconds of the migration, 0 = never */
	unsigned char sha256[32]; /* raw, valid when has_sha256 */
	char etag[LEDGER_ETAG_MAX];   /* S3 ETag without quotes, "" = none */
	char error[LEDGER_ERROR_MAX]; /* last migration error, "" = none (kept for `failed`) */
};

/* Get the record of path into *rec. -ENOENT if none, -EIO if the stored bytes are corrupt. */
int ledger_file_get(struct ledger *l, const char *path, struct ledger_file *rec);
/* Insert or replace (event LEDGER_EV_IMPORT: a new record, or one in state s3-only, may
 * take any state; another record keeps its state). -EINVAL on a bad state or path or a
 * refused state change, -ENAMETOOLONG on a path too long. */
int ledger_file_put(struct ledger *l, const char *path, const struct ledger_file *rec);
/* Insert or replace n records in ONE transaction (a crawl page, a benchmark batch). */
int ledger_file_put_many(struct ledger *l, size_t n, const char *const *paths,
			 const struct ledger_file *recs);
/* Delete the record and any queue entry of path. -ENOENT if there was no record. */
int ledger_file_delete(struct ledger *l, const char *path);

/* Read-modify-write in one write transaction. fn gets the current record (zeroed and
 * exists=false if none) and returns LEDGER_KEEP (write nothing), LEDGER_WRITE (store *rec),
 * LEDGER_DELETE, or -errno (abort; returned as is). fn must be quick and must not call
 * back into the ledger. Returns the fn verdict (>= 0) or -errno. */
#define LEDGER_KEEP 0
#define LEDGER_WRITE 1
#define LEDGER_DELETE 2
typedef int (*ledger_update_fn)(struct ledger_file *rec, bool exists, void *arg);
/* fn may change any field but the state (event LEDGER_EV_EDIT): a changed state, or a new
 * record, is refused with -EINVAL and nothing is written. */
int ledger_file_update(struct ledger *l, const char *path, ledger_update_fn fn, void *arg);

/* Apply event, caused by the module who (one LEDGER_BY_* bit), to path's record in one
 * write transaction: the state moves as ledger_transitions says, then fn (NULL: none)
 * fills the other fields of *rec (exists = a record was there; *rec is zeroed but for the
 * state if not). fn returns LEDGER_WRITE, LEDGER_KEEP or -errno and must not change the
 * state; it runs under the same rules as ledger_file_update's. Returns LEDGER_WRITE,
 * LEDGER_KEEP (the event does not apply to the current state, or fn kept it), -EINVAL (an
 * illegal change: logged, nothing written), -ESTALE, -EIO (a corrupt record), -errno. */
int ledger_file_event(struct ledger *l, const char *path, int event, unsigned who,
		      ledger_update_fn fn, void *arg);

/* Move the record of `from` to `to` (replacing a record there), its ETag cleared (S3 holds
 * no object of ours at `to` yet: the mirror records one when it uploads). With LEDGER_RENAME_TREE,
 * also every record under from + "/" to the same place under to + "/" (one transaction;
 * meant for at most rename_dir_limit records). Queue entries are not moved. Returns the
 * number of records moved (0 = nothing known under from) or -errno; -EINVAL when `to` is
 * inside `from`. */
#define LEDGER_RENAME_TREE 0x1
int ledger_file_rename(struct ledger *l, const char *from, const char *to, unsigned flags);

/* Call cb for each record whose path starts with prefix ("" or NULL = all), in path order.
 * Records are read in chunks, each chunk in its own short read transaction, and cb runs
 * with no transaction open, so cb may be slow (S3 I/O in `ferryctl verify`); the walk is
 * not a snapshot. path and rec are valid during the call only. cb returns 0 to continue,
 * > 0 to stop (returned), < 0 to abort (returned). Returns 0 at the end. */
typedef int (*ledger_file_cb)(const char *path, const struct ledger_file *rec, void *arg);
int ledger_foreach_file(struct ledger *l, const char *prefix, ledger_file_cb cb, void *arg);

/* Record a finished migration atomically (event LEDGER_EV_COPIED): store rec (its state
 * must be migrated), map nfs_fileid -> rec->ino in inomap (when both are non-zero) and
 * remove the path's queue entry. -ESTALE (nothing written) if the path changed state
 * meanwhile to modified, nfs-only or conflict: a writer got there first. */
int ledger_commit_migration(struct ledger *l, const char *path, const struct ledger_file *rec,
			    uint64_t nfs_fileid);

/* ---- inomap: NFS file id -> stable inode number ---- */
int ledger_ino_get(struct ledger *l, uint64_t nfs_fileid, uint64_t *ino); /* -ENOENT if none */
int ledger_ino_put(struct ledger *l, uint64_t nfs_fileid, uint64_t ino);
int ledger_ino_delete(struct ledger *l, uint64_t nfs_fileid);
/* n mappings in ONE transaction (rebuild, benchmarks). */
int ledger_ino_put_many(struct ledger *l, size_t n, const uint64_t *nfs_fileids,
			const uint64_t *inos);

/* ---- queue: (priority, not-before, sequence) -> path ---- */

enum ledger_prio { LEDGER_PRIO_COPYUP = 0, LEDGER_PRIO_TOUCHED = 1, LEDGER_PRIO_CRAWL = 2,
		   LEDGER_NPRIO };

/* Queue path at prio. Returns 1 if it was queued or moved up to a better priority, 0 if
 * it already waits at the same or a better priority or is being copied. The file record
 * (created if missing) goes to `queued` when it was absent, s3-only or failed. */
int ledger_queue_push(struct ledger *l, const char *path, int prio);
/* ledger_queue_push of n paths at prio in ONE transaction (one crawl page). Returns the
 * number queued or moved up (the others were waiting or being copied already), or -errno
 * (nothing queued). */
int ledger_queue_push_many(struct ledger *l, size_t n, const char *const *paths, int prio);
/* Take the best ready entry (lowest priority number, then oldest; entries whose backoff
 * time is after now are skipped) and mark it copying, entry and file record, atomically.
 * Returns 1 with path (size bytes) and *prio filled, 0 if nothing is ready, -ERANGE if
 * size is too small (nothing taken). When 0 is returned and next_at is not NULL,
 * *next_at is the earliest backoff time (unix seconds) of a waiting entry, 0 if none. */
int ledger_queue_pop(struct ledger *l, time_t now, char *path, size_t size, int *prio,
		     time_t *next_at);
/* Put a copying entry back in the queue at its priority, not before not_before (unix
 * seconds); its file record goes back to queued with attempts + 1. -ENOENT if path is
 * not being copied. */
int ledger_queue_requeue(struct ledger *l, const char *path, time_t not_before);
/* Give up: remove the entry, mark the file failed with error, attempts + 1. */
int ledger_queue_fail(struct ledger *l, const char *path, const char *error);
/* Remove path from the queue (waiting or copying); a file record left queued or copying
 * goes back to s3-only. -ENOENT if path was not queued. */
int ledger_queue_remove(struct ledger *l, const char *path);
/* 1 and *prio, *copying filled if path is in the queue, 0 if not. */
int ledger_queue_find(struct ledger *l, const char *path, int *prio, bool *copying);

/* ---- journal: seq -> change made through the mount ---- */

enum ledger_op {
	LEDGER_OP_WRITE = 1, LEDGER_OP_CREATE, LEDGER_OP_UNLINK, LEDGER_OP_RENAME,
	LEDGER_OP_MKDIR, LEDGER_OP_RMDIR, LEDGER_OP_CHMOD, LEDGER_OP_CHOWN, LEDGER_OP_UTIMENS,
	LEDGER_OP_SYMLINK, LEDGER_OP_LINK, LEDGER_OP_TRUNCATE, LEDGER_OP_MAX = LEDGER_OP_TRUNCATE
};
const char *ledger_op_name(int op); /* "write", "create", ...; "?" for a bad value */

/* which optional fields of a journal entry are set */
#define LEDGER_J_MODE  0x01
#define LEDGER_J_UID   0x02
#define LEDGER_J_GID   0x04
#define LEDGER_J_MTIME 0x08
#define LEDGER_J_SIZE  0x10

struct ledger_jentry {
	uint64_t seq;        /* set by append / by the iterator */
	int op;              /* enum ledger_op */
	int64_t time_ms;     /* unix ms when journaled; append sets it when 0 */
	const char *path;    /* the path changed (rename/link: the source) */
	const char *path2;   /* rename/link: the new name; symlink: the target text; else NULL */
	unsigned fields;     /* LEDGER_J_* */
	uint32_t mode, uid, gid;
	struct timespec mtime;
	uint64_t size;       /* truncate: the new size */
};

/* Append e (seq and, if 0, time_ms are filled in); *seq gets the sequence number.
 * Sequence numbers grow monotonically and are never reused, even after deletion. */
int ledger_journal_append(struct ledger *l, struct ledger_jentry *e, uint64_t *seq);
/* Call cb for up to max entries (0 = no limit) with seq >= from_seq, oldest first, in one
 * read transaction: cb must be quick (copy what it needs; the strings live only during
 * the call). cb returns 0 to go on, > 0 to stop (returned), < 0 to abort (returned).
 * Returns 0 at the end. */
typedef int (*ledger_journal_cb)(const struct ledger_jentry *e, void *arg);
int ledger_journal_foreach(struct ledger *l, uint64_t from_seq, size_t max,
			   ledger_journal_cb cb, void *arg);
/* Delete every entry with seq <= upto (in transactions of at most 10,000 entries).
 * Returns the number deleted. */
int ledger_journal_delete_upto(struct ledger *l, uint64_t upto);
/* Number of journal entries still naming path (path and, for rename/link, path2): > 0
 * means user.ferryfs.synced is `pending`. O(log n). */
int ledger_journal_pending(struct ledger *l, const char *path);

/* ---- crawl checkpoints: name -> opaque value (e.g. the last key listed by a shard) ---- */
/* Copy the value into out (size bytes, NUL-terminated); returns its length, -ENOENT,
 * -ERANGE if out is too small. */
int ledger_ckpt_get(struct ledger *l, const char *name, char *out, size_t size);
int ledger_ckpt_put(struct ledger *l, const char *name, const char *value);
int ledger_ckpt_delete(struct ledger *l, const char *name);

/* ---- statistics, kept consistent with the tables in the same transactions ---- */
struct ledger_stats {
	uint64_t files[LEDGER_NSTATES]; /* records per state */
	uint64_t bytes[LEDGER_NSTATES]; /* sum of sizes per state */
	uint64_t files_total, bytes_total;
	uint64_t queued[LEDGER_NPRIO];  /* waiting entries per priority */
	uint64_t copying;               /* entries being copied */
	uint64_t failed_total;          /* migrations given up, ever (ledger_queue_fail) */
	uint64_t journal_pending;       /* journal entries */
	uint64_t journal_oldest_seq;    /* 0 if empty */
	int64_t journal_oldest_ms;      /* unix ms of the oldest entry, 0 if empty */
	uint64_t journal_next_seq;
	uint64_t inomap_entries;
	uint64_t map_size;              /* bytes of LMDB map */
	uint64_t used_bytes;            /* file high-water mark: (last page + 1) * page size */
	uint64_t table_bytes;           /* page size * pages held by the tables (not free ones) */
	unsigned page_size;
	unsigned schema;
};
int ledger_stats(struct ledger *l, struct ledger_stats *st);

/* Recount the statistics from the tables and compare. Returns the number of counters
 * that differed (0 = consistent); with fix, also stores the recounted values. */
int ledger_check(struct ledger *l, bool fix);

#endif
