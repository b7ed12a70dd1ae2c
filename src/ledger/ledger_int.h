/* ledger_int.h - what the ledger's own files share: the handle, the key and value
 * encodings, the write transaction with its counters, and the helpers that run inside
 * transactions. Private to src/ledger/: never include it from outside (ledger.h is the
 * contract).
 *
 * Conventions inside the ledger: helpers return 0, a count, a raw LMDB code (MDB_NOTFOUND,
 * ...) or -errno; lg_err() turns LMDB codes into -errno in exactly one place, when a public
 * function returns (lg_write, lg_read). Locking is described in ledger_txn.c.
 */
#ifndef FERRY_LEDGER_INT_H
#define FERRY_LEDGER_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "ledger/ledger.h"

#define DEFAULT_MAP_SIZE ((size_t)4 << 30)
#define DEFAULT_MAX_MAP_SIZE ((size_t)1 << 40)
#define MAX_READERS 256

/* Path keys: a path of up to KEY_INLINE_MAX bytes is its own key; a longer one (LMDB keys
 * are limited to 511 bytes) is its first KEY_HASH_PREFIX bytes + the SHA-256 of the whole
 * path, and the full path is kept in the value. Prefix scans stay correct because the key
 * still starts with the path's first 448 bytes. */
#define KEY_INLINE_MAX 480

/* ledger_open waits up to this many 100 ms for the state directory's lock */
#define LEDGER_LOCK_WAIT_TRIES 30
#define KEY_HASH_PREFIX 448

#define QKEY_LEN 17        /* band u8, not_before u64 BE, seq u64 BE */
#define QBAND_COPYING 0xFF /* the band holding entries being copied */
#define CHUNK 256          /* records per read transaction in the chunked walks */
#define JDEL_BATCH 10000   /* journal entries deleted per write transaction */
#define POOL_MAX 32        /* reset read transactions kept for reuse */

struct ledger {
	MDB_env *env;
	MDB_dbi meta, files, inomap, queue, qidx, journal, jpath, ckpt;
	pthread_rwlock_t resize_lock; /* shared by each transaction, exclusive to grow the map */
	pthread_mutex_t gc_lock;      /* group commit: protects gc_head, gc_tail, gc_leader */
	pthread_cond_t gc_cond;       /* signalled when a batch is done */
	struct wreq *gc_head, **gc_tail; /* write requests waiting for the next leader */
	bool gc_leader;               /* a thread is running a batch */
	pthread_mutex_t pool_lock;    /* protects pool, npool */
	MDB_txn *pool[POOL_MAX];      /* reset read transactions kept for reuse */
	int npool;
	size_t map_size;              /* current map size; written under resize_lock exclusive */
	size_t max_map_size;          /* read-only after open */
	unsigned flags;               /* read-only after open */
	unsigned schema;              /* read-only after open */
	pid_t pid;                    /* the process that opened the handle */
	unsigned fork_gen;            /* fork_generation when opened */
	int lock_fd;                  /* flock'ed ledger.lock of the one writer; -1 for readers */
};

/* ---- errors (ledger_txn.c) ---- */

/* LMDB returns system errors as positive errno values: make them -errno so that inside
 * the ledger every error is negative (LMDB's own codes are all below -30000). */
static inline int lg_mrc(int rc)
{
	return rc > 0 ? -rc : rc;
}

/* The one translation of LMDB codes to -errno (documented in doc/ledger.md).
 * Values >= 0 and -errno values pass through unchanged. */
int lg_err(int rc);

/* ---- small encoders ---- */

struct wr {
	unsigned char *p;
	size_t len, cap;
	bool overflow;
};

static inline void wr_u8(struct wr *w, unsigned v)
{
	if (w->len + 1 > w->cap) {
		w->overflow = true;
		return;
	}
	w->p[w->len++] = (unsigned char)v;
}

static inline void wr_varint(struct wr *w, uint64_t v)
{
	do {
		unsigned b = v & 0x7f;
		v >>= 7;
		wr_u8(w, v ? (b | 0x80) : b);
	} while (v);
}

static inline void wr_bytes(struct wr *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

struct rd {
	const unsigned char *p, *end;
	bool bad;
};

static inline unsigned rd_u8(struct rd *r)
{
	if (r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

static inline uint64_t rd_varint(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		unsigned b = rd_u8(r);
		if (r->bad)
			return 0;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true; /* more than 10 bytes */
	return 0;
}

static inline const unsigned char *rd_bytes(struct rd *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += n;
	return p;
}

static inline uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline void be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static inline uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static inline uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---- path keys (ledger_codec.c) ---- */

struct pkey {
	unsigned char b[KEY_INLINE_MAX];
	size_t len;
	bool hashed;
};

/* 0, -EINVAL (not starting with '/'), -ENAMETOOLONG; *len gets the length. */
int lg_check_path(const char *path, size_t *len);
/* Make the key of path (checked as lg_check_path). */
int lg_pkey_make(const char *path, struct pkey *k);

static inline MDB_val lg_pkey_val(const struct pkey *k)
{
	return (MDB_val){ .mv_size = k->len, .mv_data = (void *)k->b };
}

/* ---- record codecs (ledger_codec.c) ---- */

/* Encode rec (for path, whose key is k) into w. -EINVAL on a bad record. */
int lg_file_encode(const struct ledger_file *rec, const char *path, const struct pkey *k,
		   struct wr *w);
/* Decode a stored value. If longpath is not NULL, it gets the full path when the value
 * carries one (LEDGER_PATH_MAX + 1 bytes), else "". -EIO on any inconsistency. */
int lg_file_decode(const void *data, size_t size, struct ledger_file *rec, char *longpath);
/* Encode a journal entry into w; -EINVAL if it does not fit. */
int lg_journal_encode(const struct ledger_jentry *e, struct wr *w);
/* Decode into e; the strings are copied into path/path2 (LEDGER_PATH_MAX + 1 bytes each). */
int lg_journal_decode(const void *data, size_t size, struct ledger_jentry *e, char *path,
		      char *path2);

/* ---- counters and write transactions (ledger_stats.c, ledger_txn.c) ---- */

/* Counters (meta "counters"): little-endian u64s, updated in the same transactions. */
enum {
	C_FILES = 0,
	C_BYTES = C_FILES + LEDGER_NSTATES,
	C_QUEUED = C_BYTES + LEDGER_NSTATES,
	C_COPYING = C_QUEUED + LEDGER_NPRIO,
	C_FAILED_TOTAL,
	C_JSEQ_NEXT,
	C_QSEQ_NEXT,
	C_COUNT
};

struct counters {
	uint64_t v[C_COUNT];
};

/* A write transaction with its counters, loaded on first use and stored at commit. */
struct wtx {
	struct ledger *l;
	MDB_txn *txn;
	struct counters c;
	bool loaded, dirty;
};

extern const MDB_val lg_k_counters; /* the meta key of the counters */

void lg_counters_fresh(struct counters *c);
int lg_counters_read(MDB_txn *txn, MDB_dbi meta, struct counters *c);
int lg_counters_write(MDB_txn *txn, MDB_dbi meta, const struct counters *c);
/* Load w's counters (once per transaction). */
int lg_cnt(struct wtx *w);
/* Add delta to counter idx (never below 0). */
void lg_cadd(struct wtx *w, int idx, int64_t delta);
/* Count rec in (sign +1) or out (-1) of the per-state counters. */
void lg_cfile(struct wtx *w, const struct ledger_file *rec, int sign);
/* Recount everything derivable from the tables into c (keeping failed_total from old). */
int lg_recount(struct ledger *l, MDB_txn *txn, const struct counters *old, struct counters *c);
/* Recount and rebuild all derived data in w (upgrade, ledger_check with fix). */
int lg_rebuild_derived(struct wtx *w);

/* ---- transactions (ledger_txn.c) ---- */

typedef int (*write_fn)(struct wtx *w, void *arg);
typedef int (*read_fn)(struct ledger *l, MDB_txn *txn, void *arg);

/* Record the fork generation in a new handle (see ledger_txn.c). */
void lg_fork_init(struct ledger *l);
int lg_txn_begin(struct ledger *l, bool write, MDB_txn **txn);
void lg_txn_abort(struct ledger *l, MDB_txn *txn);
int lg_txn_commit(struct ledger *l, MDB_txn *txn);
/* Run fn in a write transaction: its changes are committed if it returns >= 0 (its value
 * is returned) and dropped otherwise. fn may run more than once (after MDB_MAP_FULL) and
 * must start from its arguments each time. Concurrent callers share one commit. */
int lg_write(struct ledger *l, write_fn fn, void *arg);
/* Run fn in a (pooled) read transaction. */
int lg_read(struct ledger *l, read_fn fn, void *arg);

/* ---- files inside transactions (ledger_file.c) ---- */

/* 0, MDB_NOTFOUND or -EIO. path is checked against the full path of a hashed key. */
int lg_file_get(struct ledger *l, MDB_txn *txn, const struct pkey *k, const char *path,
		struct ledger_file *rec);
/* Store rec at path, keeping the counters right. */
int lg_file_store(struct wtx *w, const struct pkey *k, const char *path,
		  const struct ledger_file *rec);
/* Remove path's record: 0 or MDB_NOTFOUND. */
int lg_file_remove(struct wtx *w, const struct pkey *k, const char *path);
/* Apply a queue event (ledger_transitions) to path's record, adding attempts_inc to its
 * attempts and setting error when not NULL. */
int lg_file_transition(struct wtx *w, const struct pkey *k, const char *path, int event,
		       unsigned attempts_inc, const char *error);

/* ---- the state machine (ledger_state.c) ---- */

/* The one place a file record's state changes: set rec->state (the record as stored if
 * exists, else zeroed) to what event, caused by who, makes of it, want being the state the
 * caller's record carries (-1: none). 0 = write the record, 1 = the event does not apply
 * (write nothing), -ESTALE, -EINVAL (illegal: logged). */
int lg_state_apply(const char *path, struct ledger_file *rec, bool exists, int event,
		   unsigned who, int want);

/* ---- queue entries (ledger_queue.c) ---- */

struct qent {
	int prio;
	bool copying;
	time_t not_before;
	uint64_t seq;
};

static inline void lg_qkey(unsigned char k[QKEY_LEN], unsigned band, uint64_t nb, uint64_t seq)
{
	k[0] = (unsigned char)band;
	be64(k + 1, nb);
	be64(k + 9, seq);
}

/* 0, MDB_NOTFOUND or -EIO */
int lg_q_get(struct ledger *l, MDB_txn *txn, const struct pkey *k, struct qent *q);
/* Write the queue entry and its index for path (the old one must be gone). */
int lg_q_put(struct wtx *w, const struct pkey *k, const char *path, const struct qent *q);
/* Delete the queue entry q (of path key k) and, with index, its index entry. */
int lg_q_del(struct wtx *w, const struct pkey *k, const struct qent *q, bool index);

/* ---- inode map (ledger_ino.c) ---- */

/* Put fileid -> ino through an inomap cursor (appending when the id is past the last). */
int lg_ino_store(MDB_cursor *cur, uint64_t fileid, uint64_t ino);

/* ---- journal index (ledger_journal.c) ---- */

/* Add delta to the pending counts of the paths e names. */
int lg_jpath_entry(struct wtx *w, const struct ledger_jentry *e, int delta);
/* Rebuild the path -> pending-count index from the journal. */
int lg_jpath_rebuild(struct wtx *w);

#endif
