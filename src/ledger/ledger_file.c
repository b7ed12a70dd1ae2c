/* ledger.c - the per-mount ledger on LMDB (see ledger.h for the contract and
 * doc/ledger.md for the on-disk layout).
 *
 * All LMDB calls live in this file. Every public function is one short transaction run
 * through with_read() or with_write(); inside, helpers return raw LMDB codes or -errno
 * and lerr() turns LMDB codes into -errno in exactly one place at the boundary.
 * This module must never do network I/O, never keep a transaction open when it returns,
 * never run a caller's callback while a transaction is open, and never be used across fork.
 *
 * Locking: LMDB serializes write transactions itself (a mutex in lock.mdb, across
 * processes). Our one extra lock is resize_lock, a rwlock: every transaction of ours holds
 * it shared from begin to end; growing the map (mdb_env_set_mapsize, which LMDB allows only
 * while this process has no transaction open) holds it exclusive. Lock order: resize_lock
 * before LMDB's writer mutex. No transaction of ours nests inside another one, so a thread
 * never waits for resize_lock while holding it.
 *
 * Group commit: a durable commit costs an fdatasync (milliseconds on slow disks), so write
 * requests that arrive while a commit is running are queued (gc_lock) and the next thread
 * through runs them all in one transaction, each in a nested transaction so that one
 * request's failure does not undo the others, and commits once. gc_lock is never held
 * while a transaction is open. pool_lock only guards the array of reusable read
 * transactions and is held for a few instructions. Order: gc_lock, then resize_lock
 * (never both at once in practice), pool_lock innermost.
 */
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define DEFAULT_MAP_SIZE ((size_t)4 << 30)
#define DEFAULT_MAX_MAP_SIZE ((size_t)1 << 40)
#define MAX_READERS 256

/* Path keys: a path of up to KEY_INLINE_MAX bytes is its own key; a longer one (LMDB keys
 * are limited to 511 bytes) is its first KEY_HASH_PREFIX bytes + the SHA-256 of the whole
 * path, and the full path is kept in the value. Prefix scans stay correct because the key
 * still starts with the path's first 448 bytes. */
#define KEY_INLINE_MAX 480
#define KEY_HASH_PREFIX 448

#define QKEY_LEN 17        /* band u8, not_before u64 BE, seq u64 BE */
#define QBAND_COPYING 0xFF /* the band holding entries being copied */
#define CHUNK 256          /* records per read transaction in the chunked walks */
#define JDEL_BATCH 10000   /* journal entries deleted per write transaction */
#define POOL_MAX 32        /* reset read transactions kept for reuse */

/* Incremented in every child of fork() (pthread_atfork), so a handle can tell that it is
 * being used across fork without a getpid() system call on every operation. */
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	atomic_fetch_add(&fork_generation, 1);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

struct ledger {
	MDB_env *env;
	MDB_dbi meta, files, inomap, queue, qidx, journal, jpath, ckpt;
	pthread_rwlock_t resize_lock; /* see the file comment */
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

/* ---------------------------------------------------------------------------------- */
/* Errors                                                                              */

/* LMDB returns system errors as positive errno values: make them -errno so that inside
 * this file every error is negative (LMDB's own codes are all below -30000). */
static int mrc(int rc)
{
	return rc > 0 ? -rc : rc;
}

/* The one translation of LMDB codes to -errno (documented in doc/ledger.md).
 * Values >= 0 and -errno values pass through unchanged. */
static int lerr(int rc)
{
	if (rc >= 0)
		return rc;
	if (rc > -4096)
		return rc; /* already -errno */
	switch (rc) {
	case MDB_NOTFOUND: return -ENOENT;
	case MDB_KEYEXIST: return -EEXIST;
	case MDB_MAP_FULL: return -ENOSPC;       /* and max_map_size reached */
	case MDB_TXN_FULL: return -E2BIG;        /* too many dirty pages in one transaction */
	case MDB_READERS_FULL: return -EAGAIN;   /* all reader slots taken */
	case MDB_TLS_FULL: return -EAGAIN;
	case MDB_MAP_RESIZED: return -EAGAIN;    /* handled internally; should not escape */
	case MDB_DBS_FULL: return -EMFILE;
	case MDB_BAD_VALSIZE: return -ENAMETOOLONG;
	case MDB_BAD_DBI: return -EBADF;
	case MDB_BAD_RSLOT: return -EINVAL;
	case MDB_INCOMPATIBLE: return -EPROTO;
	case MDB_VERSION_MISMATCH: return -EPROTO;
	case MDB_INVALID: return -EPROTO;        /* not an LMDB file */
	case MDB_CORRUPTED: return -EIO;
	case MDB_PAGE_NOTFOUND: return -EIO;
	case MDB_PANIC: return -EIO;
	case MDB_BAD_TXN: return -EIO;
	case MDB_CURSOR_FULL: return -EIO;
	case MDB_PAGE_FULL: return -EIO;
	default: return -EIO;
	}
}

/* ---------------------------------------------------------------------------------- */
/* Small encoders                                                                      */

struct wr {
	unsigned char *p;
	size_t len, cap;
	bool overflow;
};

static void wr_u8(struct wr *w, unsigned v)
{
	if (w->len + 1 > w->cap) {
		w->overflow = true;
		return;
	}
	w->p[w->len++] = (unsigned char)v;
}

static void wr_varint(struct wr *w, uint64_t v)
{
	do {
		unsigned b = v & 0x7f;
		v >>= 7;
		wr_u8(w, v ? (b | 0x80) : b);
	} while (v);
}

static void wr_bytes(struct wr *w, const void *p, size_t n)
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

static unsigned rd_u8(struct rd *r)
{
	if (r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

static uint64_t rd_varint(struct rd *r)
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

static const unsigned char *rd_bytes(struct rd *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += n;
	return p;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---------------------------------------------------------------------------------- */
/* Path keys                                                                           */

struct pkey {
	unsigned char b[KEY_INLINE_MAX];
	size_t len;
	bool hashed;
};

static int check_path(const char *path, size_t *len)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	size_t n = strnlen(path, LEDGER_PATH_MAX + 1);
	if (n > LEDGER_PATH_MAX)
		return -ENAMETOOLONG;
	*len = n;
	return 0;
}

static int pkey_make(const char *path, struct pkey *k)
{
	size_t n;
	int rc = check_path(path, &n);
	if (rc)
		return rc;
	if (n <= KEY_INLINE_MAX) {
		memcpy(k->b, path, n);
		k->len = n;
		k->hashed = false;
	} else {
		memcpy(k->b, path, KEY_HASH_PREFIX);
		SHA256((const unsigned char *)path, n, k->b + KEY_HASH_PREFIX);
		k->len = KEY_INLINE_MAX;
		k->hashed = true;
	}
	return 0;
}

static MDB_val pkey_val(const struct pkey *k)
{
	return (MDB_val){ .mv_size = k->len, .mv_data = (void *)k->b };
}

/* ---------------------------------------------------------------------------------- */
/* File records                                                                        */

#define FH_STATE 0x07
#define FH_ETAG_SHIFT 3 /* 2 bits: etag kind */
#define FH_SHA 0x20
#define FH_ERROR 0x40
#define FH_LONGPATH 0x80

enum { ETAG_NONE = 0, ETAG_MD5 = 1, ETAG_MD5_PARTS = 2, ETAG_RAW = 3 };

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Classify an ETag: a 32-digit lower-case hex MD5, optionally "-N" (multipart), is stored
 * as 16 raw bytes (+ N); anything else as its text. */
static int etag_kind(const char *etag, unsigned char md5[16], uint64_t *parts)
{
	size_t n = strlen(etag);
	if (n == 0)
		return ETAG_NONE;
	if (n < 32)
		return ETAG_RAW;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(etag[2 * i]), lo = hexval(etag[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return ETAG_RAW;
		md5[i] = (unsigned char)(hi << 4 | lo);
	}
	if (n == 32)
		return ETAG_MD5;
	if (etag[32] != '-' || n > 32 + 1 + 10 || etag[33] < '1' || etag[33] > '9')
		return ETAG_RAW;
	uint64_t v = 0;
	for (size_t i = 33; i < n; i++) {
		if (etag[i] < '0' || etag[i] > '9')
			return ETAG_RAW;
		v = v * 10 + (uint64_t)(etag[i] - '0');
	}
	*parts = v;
	return ETAG_MD5_PARTS;
}

/* Encode rec (for path, whose key is k) into w. -EINVAL on a bad record. */
static int file_encode(const struct ledger_file *rec, const char *path, const struct pkey *k,
		       struct wr *w)
{
	if (rec->state >= LEDGER_NSTATES)
		return -EINVAL;
	unsigned char md5[16];
	uint64_t parts = 0;
	size_t etag_len = strnlen(rec->etag, LEDGER_ETAG_MAX);
	if (etag_len >= LEDGER_ETAG_MAX)
		return -EINVAL;
	int kind = etag_kind(rec->etag, md5, &parts);
	size_t err_len = strnlen(rec->error, LEDGER_ERROR_MAX - 1);
	unsigned hdr = rec->state | (unsigned)kind << FH_ETAG_SHIFT;
	if (rec->has_sha256)
		hdr |= FH_SHA;
	if (err_len)
		hdr |= FH_ERROR;
	if (k->hashed)
		hdr |= FH_LONGPATH;
	wr_u8(w, hdr);
	wr_varint(w, rec->size);
	wr_varint(w, rec->ino);
	wr_varint(w, rec->migrated > 0 ? (uint64_t)rec->migrated : 0);
	wr_varint(w, rec->attempts);
	if (kind == ETAG_MD5 || kind == ETAG_MD5_PARTS)
		wr_bytes(w, md5, 16);
	if (kind == ETAG_MD5_PARTS)
		wr_varint(w, parts);
	if (kind == ETAG_RAW) {
		wr_u8(w, (unsigned)etag_len);
		wr_bytes(w, rec->etag, etag_len);
	}
	if (rec->has_sha256)
		wr_bytes(w, rec->sha256, 32);
	if (err_len) {
		wr_u8(w, (unsigned)err_len);
		wr_bytes(w, rec->error, err_len);
	}
	if (k->hashed) {
		size_t n = strlen(path);
		wr_varint(w, n);
		wr_bytes(w, path, n);
	}
	return w->overflow ? -EINVAL : 0;
}

/* Decode a stored value. If longpath is not NULL, it gets the full path when the value
 * carries one (LEDGER_PATH_MAX + 1 bytes), else "". -EIO on any inconsistency. */
static int file_decode(const void *data, size_t size, struct ledger_file *rec, char *longpath)
{
	struct rd r = { .p = data, .end = (const unsigned char *)data + size };
	memset(rec, 0, sizeof(*rec));
	if (longpath)
		longpath[0] = '\0';
	unsigned hdr = rd_u8(&r);
	int kind = (hdr >> FH_ETAG_SHIFT) & 3;
	rec->state = hdr & FH_STATE;
	rec->size = rd_varint(&r);
	rec->ino = rd_varint(&r);
	uint64_t mig = rd_varint(&r);
	uint64_t att = rd_varint(&r);
	if (r.bad || mig > INT64_MAX || att > UINT32_MAX)
		return -EIO;
	rec->migrated = (int64_t)mig;
	rec->attempts = (uint32_t)att;
	if (kind == ETAG_MD5 || kind == ETAG_MD5_PARTS) {
		const unsigned char *md5 = rd_bytes(&r, 16);
		if (!md5)
			return -EIO;
		util_hex(md5, 16, rec->etag);
		if (kind == ETAG_MD5_PARTS) {
			uint64_t parts = rd_varint(&r);
			if (r.bad)
				return -EIO;
			snprintf(rec->etag + 32, sizeof(rec->etag) - 32, "-%" PRIu64, parts);
		}
	} else if (kind == ETAG_RAW) {
		unsigned n = rd_u8(&r);
		const unsigned char *p = rd_bytes(&r, n);
		if (!p || n >= LEDGER_ETAG_MAX || n == 0)
			return -EIO;
		memcpy(rec->etag, p, n);
		rec->etag[n] = '\0';
	}
	if (hdr & FH_SHA) {
		const unsigned char *p = rd_bytes(&r, 32);
		if (!p)
			return -EIO;
		memcpy(rec->sha256, p, 32);
		rec->has_sha256 = true;
	}
	if (hdr & FH_ERROR) {
		unsigned n = rd_u8(&r);
		const unsigned char *p = rd_bytes(&r, n);
		if (!p || n >= LEDGER_ERROR_MAX || n == 0)
			return -EIO;
		memcpy(rec->error, p, n);
		rec->error[n] = '\0';
	}
	if (hdr & FH_LONGPATH) {
		uint64_t n = rd_varint(&r);
		const unsigned char *p = r.bad || n > LEDGER_PATH_MAX || n <= KEY_INLINE_MAX ?
			NULL : rd_bytes(&r, n);
		if (!p || p[0] != '/' || memchr(p, 0, n))
			return -EIO;
		if (longpath) {
			memcpy(longpath, p, n);
			longpath[n] = '\0';
		}
	}
	if (r.bad || r.p != r.end)
		return -EIO;
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Counters (meta "counters"): little-endian u64s, updated in the same transactions.    */

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

static const MDB_val k_schema = { 6, "schema" };
static const MDB_val k_counters = { 8, "counters" };

static void counters_fresh(struct counters *c)
{
	memset(c, 0, sizeof(*c));
	c->v[C_JSEQ_NEXT] = 1;
	c->v[C_QSEQ_NEXT] = 1;
}

static int counters_read(MDB_txn *txn, MDB_dbi meta, struct counters *c)
{
	MDB_val v;
	int rc = mrc(mdb_get(txn, meta, (MDB_val *)&k_counters, &v));
	if (rc == MDB_NOTFOUND) {
		counters_fresh(c);
		return 0;
	}
	if (rc)
		return rc;
	if (v.mv_size != sizeof(c->v))
		return -EIO;
	for (int i = 0; i < C_COUNT; i++)
		c->v[i] = get_le64((const unsigned char *)v.mv_data + 8 * i);
	return 0;
}

static int counters_write(MDB_txn *txn, MDB_dbi meta, const struct counters *c)
{
	unsigned char b[sizeof(c->v)];
	for (int i = 0; i < C_COUNT; i++)
		le64(b + 8 * i, c->v[i]);
	MDB_val v = { sizeof(b), b };
	return mrc(mdb_put(txn, meta, (MDB_val *)&k_counters, &v, 0));
}

static int cnt(struct wtx *w)
{
	if (w->loaded)
		return 0;
	int rc = counters_read(w->txn, w->l->meta, &w->c);
	if (rc)
		return rc;
	w->loaded = true;
	return 0;
}

static void cadd(struct wtx *w, int idx, int64_t delta)
{
	uint64_t *v = &w->c.v[idx];
	if (delta < 0 && (uint64_t)-delta > *v)
		*v = 0; /* never wrap: ledger_check repairs a drift */
	else
		*v += (uint64_t)delta;
	w->dirty = true;
}

static void cfile(struct wtx *w, const struct ledger_file *rec, int sign)
{
	cadd(w, C_FILES + rec->state, sign);
	cadd(w, C_BYTES + rec->state, sign * (int64_t)rec->size);
}

/* ---------------------------------------------------------------------------------- */
/* Transactions                                                                        */

static bool forked(const struct ledger *l)
{
	return atomic_load_explicit(&fork_generation, memory_order_relaxed) != l->fork_gen;
}

static int txn_begin(struct ledger *l, bool write, MDB_txn **txn)
{
	if (forked(l))
		return -ECHILD;
	for (;;) {
		pthread_rwlock_rdlock(&l->resize_lock);
		int rc = mdb_txn_begin(l->env, NULL, write ? 0 : MDB_RDONLY, txn);
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&l->resize_lock);
		if (rc != MDB_MAP_RESIZED)
			return mrc(rc);
		/* another process grew the map: adopt its size */
		pthread_rwlock_wrlock(&l->resize_lock);
		rc = mdb_env_set_mapsize(l->env, 0);
		MDB_envinfo info;
		if (rc == 0 && mdb_env_info(l->env, &info) == 0)
			l->map_size = info.me_mapsize;
		pthread_rwlock_unlock(&l->resize_lock);
		if (rc)
			return mrc(rc);
	}
}

static void txn_abort(struct ledger *l, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&l->resize_lock);
}

static int txn_commit(struct ledger *l, MDB_txn *txn)
{
	int rc = mrc(mdb_txn_commit(txn));
	pthread_rwlock_unlock(&l->resize_lock);
	return rc;
}

/* Double the map (up to max_map_size) unless someone already grew it past `seen`. */
static int grow_map(struct ledger *l, size_t seen)
{
	int rc = 0;
	pthread_rwlock_wrlock(&l->resize_lock);
	if (l->map_size > seen)
		goto out_unlock;
	if (l->map_size >= l->max_map_size) {
		rc = MDB_MAP_FULL;
		goto out_unlock;
	}
	size_t want = l->map_size * 2 > l->max_map_size ? l->max_map_size : l->map_size * 2;
	rc = mrc(mdb_env_set_mapsize(l->env, want));
	if (rc == 0) {
		log_info("ledger: map grown from %zu to %zu MiB", l->map_size >> 20, want >> 20);
		l->map_size = want;
	}
out_unlock:
	pthread_rwlock_unlock(&l->resize_lock);
	return rc;
}

typedef int (*write_fn)(struct wtx *w, void *arg);
typedef int (*read_fn)(struct ledger *l, MDB_txn *txn, void *arg);

/* A caller's write, queued for the group commit. */
struct wreq {
	write_fn fn;
	void *arg;
	int rc;
	bool done;   /* set under gc_lock by the leader */
	struct wreq *next;
};

/* Run one request in txn (the batch's own or a nested one); store its counters. */
static int run_fn(struct ledger *l, MDB_txn *txn, struct wreq *r)
{
	struct wtx w = { .l = l, .txn = txn };
	int rc = r->fn(&w, r->arg);
	if (rc >= 0 && w.dirty) {
		int rc2 = counters_write(txn, l->meta, &w.c);
		if (rc2)
			rc = rc2;
	}
	return rc;
}

/* Run a batch of requests in one transaction, growing the map and running again the
 * ones that hit MDB_MAP_FULL. Sets every r->rc (raw codes). */
static void run_batch(struct ledger *l, struct wreq *batch)
{
	while (batch) {
		MDB_txn *txn;
		int rc = txn_begin(l, true, &txn);
		if (rc) {
			for (struct wreq *r = batch; r; r = r->next)
				r->rc = rc;
			return;
		}
		size_t seen = l->map_size; /* stable: we hold resize_lock shared */
		bool full = false;
		if (!batch->next) {
			/* alone: no nested transaction needed */
			batch->rc = run_fn(l, txn, batch);
			full = batch->rc == MDB_MAP_FULL;
		} else {
			for (struct wreq *r = batch; r; r = r->next) {
				MDB_txn *child;
				r->rc = mrc(mdb_txn_begin(l->env, txn, 0, &child));
				if (r->rc)
					continue;
				r->rc = run_fn(l, child, r);
				if (r->rc >= 0) {
					int rc2 = mrc(mdb_txn_commit(child));
					if (rc2)
						r->rc = rc2;
				} else {
					mdb_txn_abort(child);
				}
				full |= r->rc == MDB_MAP_FULL;
			}
		}
		bool any_ok = false;
		for (struct wreq *r = batch; r; r = r->next)
			any_ok |= r->rc >= 0;
		if (any_ok) {
			rc = txn_commit(l, txn);
			if (rc == MDB_MAP_FULL) {
				full = true;
				for (struct wreq *r = batch; r; r = r->next)
					r->rc = MDB_MAP_FULL; /* nothing written: run all again */
			} else if (rc) {
				for (struct wreq *r = batch; r; r = r->next)
					if (r->rc >= 0)
						r->rc = rc;
			}
		} else {
			txn_abort(l, txn);
		}
		if (!full)
			return;
		/* keep the requests that hit MDB_MAP_FULL, grow, go again */
		struct wreq *again = NULL, **tail = &again;
		for (struct wreq *r = batch, *next; r; r = next) {
			next = r->next;
			if (r->rc == MDB_MAP_FULL) {
				*tail = r;
				tail = &r->next;
			}
		}
		*tail = NULL;
		if ((rc = grow_map(l, seen))) {
			for (struct wreq *r = again; r; r = r->next)
				r->rc = rc;
			return;
		}
		batch = again;
	}
}

/* Run fn in a write transaction: its changes are committed if it returns >= 0 (its value
 * is returned) and dropped otherwise. fn may run more than once (after MDB_MAP_FULL) and
 * must start from its arguments each time. Concurrent callers share one commit. */
static int with_write(struct ledger *l, write_fn fn, void *arg)
{
	if (l->flags & LEDGER_RDONLY)
		return -EROFS;
	if (forked(l))
		return -ECHILD;
	struct wreq req = { .fn = fn, .arg = arg };
	pthread_mutex_lock(&l->gc_lock);
	*l->gc_tail = &req;
	l->gc_tail = &req.next;
	while (!req.done) {
		if (l->gc_leader) {
			pthread_cond_wait(&l->gc_cond, &l->gc_lock);
			continue;
		}
		/* lead: take every waiting request (ours among them) */
		l->gc_leader = true;
		struct wreq *batch = l->gc_head;
		l->gc_head = NULL;
		l->gc_tail = &l->gc_head;
		pthread_mutex_unlock(&l->gc_lock);
		run_batch(l, batch);
		pthread_mutex_lock(&l->gc_lock);
		for (struct wreq *r = batch, *next; r; r = next) {
			next = r->next; /* r may vanish once done is seen */
			r->done = true;
		}
		l->gc_leader = false;
		pthread_cond_broadcast(&l->gc_cond);
	}
	pthread_mutex_unlock(&l->gc_lock);
	return lerr(req.rc);
}

/* Read transactions: reset ones are kept in a small pool and renewed, which keeps their
 * reader slot (no trip through LMDB's reader-table mutex). */
static int read_begin(struct ledger *l, MDB_txn **txn)
{
	if (forked(l))
		return -ECHILD;
	MDB_txn *t = NULL;
	pthread_mutex_lock(&l->pool_lock);
	if (l->npool)
		t = l->pool[--l->npool];
	pthread_mutex_unlock(&l->pool_lock);
	if (t) {
		pthread_rwlock_rdlock(&l->resize_lock);
		int rc = mdb_txn_renew(t);
		if (rc == 0) {
			*txn = t;
			return 0;
		}
		pthread_rwlock_unlock(&l->resize_lock);
		mdb_txn_abort(t); /* e.g. MDB_MAP_RESIZED: start afresh */
	}
	return txn_begin(l, false, txn);
}

static void read_end(struct ledger *l, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	pthread_rwlock_unlock(&l->resize_lock);
	pthread_mutex_lock(&l->pool_lock);
	if (l->npool < POOL_MAX) {
		l->pool[l->npool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&l->pool_lock);
	if (txn)
		mdb_txn_abort(txn);
}

static int with_read(struct ledger *l, read_fn fn, void *arg)
{
	MDB_txn *txn;
	int rc = read_begin(l, &txn);
	if (rc)
		return lerr(rc);
	rc = fn(l, txn, arg);
	read_end(l, txn);
	return lerr(rc);
}

/* ---------------------------------------------------------------------------------- */
/* File helpers inside transactions                                                    */

/* 0, MDB_NOTFOUND or -EIO. path is checked against the full path of a hashed key. */
static int f_get(struct ledger *l, MDB_txn *txn, const struct pkey *k, const char *path,
		 struct ledger_file *rec)
{
	MDB_val key = pkey_val(k), v;
	int rc = mrc(mdb_get(txn, l->files, &key, &v));
	if (rc)
		return rc;
	if (!k->hashed)
		return file_decode(v.mv_data, v.mv_size, rec, NULL);
	char *full = malloc(LEDGER_PATH_MAX + 1);
	if (!full)
		return -ENOMEM;
	rc = file_decode(v.mv_data, v.mv_size, rec, full);
	if (rc == 0 && strcmp(full, path) != 0)
		rc = MDB_NOTFOUND; /* a SHA-256 collision: not this path */
	free(full);
	return rc;
}

/* Store rec at path, keeping the counters right. */
static int f_store(struct wtx *w, const struct pkey *k, const char *path,
		   const struct ledger_file *rec)
{
	struct ledger *l = w->l;
	unsigned char buf[4608];
	struct wr wb = { .p = buf, .cap = sizeof(buf) };
	int rc = file_encode(rec, path, k, &wb);
	if (rc)
		return rc;
	if ((rc = cnt(w)))
		return rc;
	MDB_cursor *cur;
	if ((rc = mrc(mdb_cursor_open(w->txn, l->files, &cur))))
		return rc;
	MDB_val key = pkey_val(k), v = { wb.len, buf }, old;
	unsigned flags = 0;
	rc = mrc(mdb_cursor_get(cur, &key, &old, MDB_SET_KEY));
	if (rc == 0) {
		struct ledger_file orec;
		if (file_decode(old.mv_data, old.mv_size, &orec, NULL) == 0)
			cfile(w, &orec, -1);
		else
			log_warn("ledger: replacing a corrupt record of %s", path);
	} else if (rc == MDB_NOTFOUND) {
		/* appending in key order (a crawl) fills pages completely */
		MDB_val last;
		rc = mrc(mdb_cursor_get(cur, &last, NULL, MDB_LAST));
		if (rc == MDB_NOTFOUND) {
			flags = MDB_APPEND;
		} else if (rc == 0) {
			size_t m = last.mv_size < key.mv_size ? last.mv_size : key.mv_size;
			int c = memcmp(key.mv_data, last.mv_data, m);
			if (c > 0 || (c == 0 && key.mv_size > last.mv_size))
				flags = MDB_APPEND;
		} else {
			goto out_cursor;
		}
	} else {
		goto out_cursor;
	}
	key = pkey_val(k);
	rc = mrc(mdb_cursor_put(cur, &key, &v, flags));
	if (rc == 0)
		cfile(w, rec, +1);
out_cursor:
	mdb_cursor_close(cur);
	return rc;
}

/* Remove path's record: 0 or MDB_NOTFOUND. */
static int f_remove(struct wtx *w, const struct pkey *k, const char *path)
{
	struct ledger_file old;
	int rc = f_get(w->l, w->txn, k, path, &old);
	if (rc == 0) {
		if ((rc = cnt(w)))
			return rc;
		cfile(w, &old, -1);
	} else if (rc != -EIO) {
		return rc; /* a corrupt record is removed without counting it */
	}
	MDB_val key = pkey_val(k);
	return mrc(mdb_del(w->txn, w->l->files, &key, NULL));
}

static int ino_store(MDB_cursor *cur, uint64_t fileid, uint64_t ino);

/* ---------------------------------------------------------------------------------- */
/* Queue helpers                                                                       */

struct qent {
	int prio;
	bool copying;
	time_t not_before;
	uint64_t seq;
};

static void qkey(unsigned char k[QKEY_LEN], unsigned band, uint64_t nb, uint64_t seq)
{
	k[0] = (unsigned char)band;
	be64(k + 1, nb);
	be64(k + 9, seq);
}

static void qent_key(const struct qent *q, unsigned char k[QKEY_LEN])
{
	if (q->copying)
		qkey(k, QBAND_COPYING, 0, q->seq);
	else
		qkey(k, (unsigned)q->prio, (uint64_t)q->not_before, q->seq);
}

/* 0, MDB_NOTFOUND or -EIO */
static int q_get(struct ledger *l, MDB_txn *txn, const struct pkey *k, struct qent *q)
{
	MDB_val key = pkey_val(k), v;
	int rc = mrc(mdb_get(txn, l->qidx, &key, &v));
	if (rc)
		return rc;
	const unsigned char *p = v.mv_data;
	if (v.mv_size != QKEY_LEN || (p[0] & 0x7f) >= LEDGER_NPRIO)
		return -EIO;
	q->prio = p[0] & 0x7f;
	q->copying = p[0] & 0x80;
	q->not_before = (time_t)get_be64(p + 1);
	q->seq = get_be64(p + 9);
	return 0;
}

/* Write the queue entry and its index for path (the old one must be gone). */
static int q_put(struct wtx *w, const struct pkey *k, const char *path, const struct qent *q)
{
	unsigned char qk[QKEY_LEN], iv[QKEY_LEN];
	qent_key(q, qk);
	iv[0] = (unsigned char)(q->prio | (q->copying ? 0x80 : 0));
	be64(iv + 1, (uint64_t)q->not_before);
	be64(iv + 9, q->seq);
	MDB_val key = { QKEY_LEN, qk }, v = { strlen(path), (void *)path };
	int rc = mrc(mdb_put(w->txn, w->l->queue, &key, &v, 0));
	if (rc)
		return rc;
	key = pkey_val(k);
	v = (MDB_val){ QKEY_LEN, iv };
	if ((rc = mrc(mdb_put(w->txn, w->l->qidx, &key, &v, 0))))
		return rc;
	if ((rc = cnt(w)))
		return rc;
	cadd(w, q->copying ? C_COPYING : C_QUEUED + q->prio, +1);
	return 0;
}

/* Delete the queue entry q (of path key k) and, with index, its index entry. */
static int q_del(struct wtx *w, const struct pkey *k, const struct qent *q, bool index)
{
	unsigned char qk[QKEY_LEN];
	qent_key(q, qk);
	MDB_val key = { QKEY_LEN, qk };
	int rc = mrc(mdb_del(w->txn, w->l->queue, &key, NULL));
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (index) {
		key = pkey_val(k);
		rc = mrc(mdb_del(w->txn, w->l->qidx, &key, NULL));
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	if ((rc = cnt(w)))
		return rc;
	cadd(w, q->copying ? C_COPYING : C_QUEUED + q->prio, -1);
	return 0;
}

/* Set the file state of path from one of the states in `from` (a bit mask) to `to`,
 * creating a record when create is set and none exists. attempts_inc adds to attempts. */
static int f_transition(struct wtx *w, const struct pkey *k, const char *path, unsigned from,
			int to, bool create, unsigned attempts_inc, const char *error)
{
	struct ledger_file rec;
	int rc = f_get(w->l, w->txn, k, path, &rec);
	if (rc == MDB_NOTFOUND || rc == -EIO) {
		if (!create)
			return 0;
		memset(&rec, 0, sizeof(rec));
		rec.state = (uint8_t)to;
	} else if (rc) {
		return rc;
	} else if (from & (1u << rec.state)) {
		if (rec.state == LEDGER_FAILED && to == LEDGER_QUEUED)
			rec.attempts = 0;   /* queued again by the operator: a fresh retry budget */
		rec.state = (uint8_t)to;
	} else if (!attempts_inc && !error) {
		return 0;
	}
	rec.attempts += attempts_inc;
	if (error)
		snprintf(rec.error, sizeof(rec.error), "%s", error);
	return f_store(w, k, path, &rec);
}

#define BIT(s) (1u << (s))

/* ---------------------------------------------------------------------------------- */
/* Journal helpers                                                                     */

#define JF_PATH2 0x20

static bool op_has_path2(int op)
{
	return op == LEDGER_OP_RENAME || op == LEDGER_OP_LINK || op == LEDGER_OP_SYMLINK;
}

static bool op_indexes_path2(int op)
{
	return op == LEDGER_OP_RENAME || op == LEDGER_OP_LINK;
}

static int journal_encode(const struct ledger_jentry *e, struct wr *w)
{
	unsigned fields = e->fields & 0x1f;
	size_t n = strlen(e->path);
	wr_u8(w, (unsigned)e->op);
	wr_u8(w, fields | (e->path2 ? JF_PATH2 : 0));
	wr_varint(w, e->time_ms > 0 ? (uint64_t)e->time_ms : 0);
	wr_varint(w, n);
	wr_bytes(w, e->path, n);
	if (e->path2) {
		size_t n2 = strlen(e->path2);
		wr_varint(w, n2);
		wr_bytes(w, e->path2, n2);
	}
	if (fields & LEDGER_J_MODE)
		wr_varint(w, e->mode);
	if (fields & LEDGER_J_UID)
		wr_varint(w, e->uid);
	if (fields & LEDGER_J_GID)
		wr_varint(w, e->gid);
	if (fields & LEDGER_J_MTIME) {
		wr_varint(w, zigzag(e->mtime.tv_sec));
		wr_varint(w, (uint64_t)e->mtime.tv_nsec);
	}
	if (fields & LEDGER_J_SIZE)
		wr_varint(w, e->size);
	return w->overflow ? -EINVAL : 0;
}

/* Decode into e; the strings are copied into path/path2 (LEDGER_PATH_MAX + 1 bytes each). */
static int journal_decode(const void *data, size_t size, struct ledger_jentry *e, char *path,
			  char *path2)
{
	struct rd r = { .p = data, .end = (const unsigned char *)data + size };
	memset(e, 0, sizeof(*e));
	e->op = (int)rd_u8(&r);
	unsigned fields = rd_u8(&r);
	uint64_t t = rd_varint(&r);
	uint64_t n = rd_varint(&r);
	if (r.bad || e->op < LEDGER_OP_WRITE || e->op > LEDGER_OP_MAX || (fields & ~0x3fu) ||
	    t > INT64_MAX || n == 0 || n > LEDGER_PATH_MAX)
		return -EIO;
	const unsigned char *p = rd_bytes(&r, n);
	if (!p || p[0] != '/' || memchr(p, 0, n))
		return -EIO;
	memcpy(path, p, n);
	path[n] = '\0';
	e->path = path;
	e->time_ms = (int64_t)t;
	if (fields & JF_PATH2) {
		n = rd_varint(&r);
		p = r.bad || n > LEDGER_PATH_MAX ? NULL : rd_bytes(&r, n);
		if (!p || memchr(p, 0, n))
			return -EIO;
		memcpy(path2, p, n);
		path2[n] = '\0';
		e->path2 = path2;
	}
	e->fields = fields & 0x1f;
	uint64_t v;
	if (fields & LEDGER_J_MODE) {
		v = rd_varint(&r);
		e->mode = v > UINT32_MAX ? (r.bad = true, 0) : (uint32_t)v;
	}
	if (fields & LEDGER_J_UID) {
		v = rd_varint(&r);
		e->uid = v > UINT32_MAX ? (r.bad = true, 0) : (uint32_t)v;
	}
	if (fields & LEDGER_J_GID) {
		v = rd_varint(&r);
		e->gid = v > UINT32_MAX ? (r.bad = true, 0) : (uint32_t)v;
	}
	if (fields & LEDGER_J_MTIME) {
		e->mtime.tv_sec = (time_t)unzigzag(rd_varint(&r));
		v = rd_varint(&r);
		e->mtime.tv_nsec = v >= 1000000000 ? (r.bad = true, 0) : (long)v;
	}
	if (fields & LEDGER_J_SIZE)
		e->size = rd_varint(&r);
	if (r.bad || r.p != r.end)
		return -EIO;
	return 0;
}

/* Add delta to the pending count of path in jpath. */
static int jpath_add(struct wtx *w, const char *path, int delta)
{
	struct pkey k;
	int rc = pkey_make(path, &k);
	if (rc)
		return rc;
	MDB_val key = pkey_val(&k), v;
	uint32_t count = 0;
	rc = mrc(mdb_get(w->txn, w->l->jpath, &key, &v));
	if (rc == 0 && v.mv_size == 4)
		memcpy(&count, v.mv_data, 4);
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (delta < 0 && (uint32_t)-delta >= count) {
		rc = mrc(mdb_del(w->txn, w->l->jpath, &key, NULL));
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	count += (uint32_t)delta;
	v = (MDB_val){ 4, &count };
	return mrc(mdb_put(w->txn, w->l->jpath, &key, &v, 0));
}

static int jpath_entry(struct wtx *w, const struct ledger_jentry *e, int delta)
{
	int rc = jpath_add(w, e->path, delta);
	if (rc == 0 && e->path2 && op_indexes_path2(e->op) && e->path2[0] == '/')
		rc = jpath_add(w, e->path2, delta);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* Recount (ledger_check, schema upgrade)                                              */

/* Recount everything derivable from the tables into c (keeping failed_total from old). */
static int recount(struct ledger *l, MDB_txn *txn, const struct counters *old, struct counters *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;
	memset(c, 0, sizeof(*c));
	c->v[C_FAILED_TOTAL] = old->v[C_FAILED_TOTAL];
	if ((rc = mrc(mdb_cursor_open(txn, l->files, &cur))))
		return rc;
	for (rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		struct ledger_file rec;
		if (file_decode(v.mv_data, v.mv_size, &rec, NULL))
			continue; /* corrupt records count nowhere */
		c->v[C_FILES + rec.state]++;
		c->v[C_BYTES + rec.state] += rec.size;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	uint64_t maxseq = 0;
	if ((rc = mrc(mdb_cursor_open(txn, l->queue, &cur))))
		return rc;
	for (rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		const unsigned char *p = k.mv_data;
		if (k.mv_size != QKEY_LEN)
			continue;
		if (p[0] == QBAND_COPYING)
			c->v[C_COPYING]++;
		else if (p[0] < LEDGER_NPRIO)
			c->v[C_QUEUED + p[0]]++;
		uint64_t s = get_be64(p + 9);
		if (s > maxseq)
			maxseq = s;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	c->v[C_QSEQ_NEXT] = maxseq + 1 > old->v[C_QSEQ_NEXT] ? maxseq + 1 : old->v[C_QSEQ_NEXT];
	c->v[C_JSEQ_NEXT] = old->v[C_JSEQ_NEXT] ? old->v[C_JSEQ_NEXT] : 1;
	if ((rc = mrc(mdb_cursor_open(txn, l->journal, &cur))))
		return rc;
	rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_LAST));
	if (rc == 0 && k.mv_size == 8 && get_be64(k.mv_data) + 1 > c->v[C_JSEQ_NEXT])
		c->v[C_JSEQ_NEXT] = get_be64(k.mv_data) + 1;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Rebuild the path -> pending-count index from the journal. */
static int rebuild_jpath(struct wtx *w)
{
	int rc = mrc(mdb_drop(w->txn, w->l->jpath, 0));
	if (rc)
		return rc;
	char *path = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!path)
		return -ENOMEM;
	MDB_cursor *cur;
	MDB_val k, v;
	if ((rc = mrc(mdb_cursor_open(w->txn, w->l->journal, &cur))))
		goto out_path;
	for (rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		struct ledger_jentry e;
		if (journal_decode(v.mv_data, v.mv_size, &e, path, path + LEDGER_PATH_MAX + 1))
			continue;
		if ((rc = jpath_entry(w, &e, +1)))
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
out_path:
	free(path);
	return rc;
}

/* Recount and rebuild all derived data in w (upgrade, ledger_check with fix). */
static int rebuild_derived(struct wtx *w)
{
	struct counters old, c;
	int rc = counters_read(w->txn, w->l->meta, &old);
	if (rc == -EIO) {
		counters_fresh(&old);
		rc = 0;
	}
	if (rc || (rc = recount(w->l, w->txn, &old, &c)) || (rc = rebuild_jpath(w)))
		return rc;
	w->c = c;
	w->loaded = w->dirty = true;
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Open, schema, recovery                                                              */

static const char *const db_names[] = { "meta", "files", "inomap", "queue", "qidx",
					"journal", "jpath", "ckpt" };

static MDB_dbi *db_slot(struct ledger *l, size_t i)
{
	MDB_dbi *slots[] = { &l->meta, &l->files, &l->inomap, &l->queue, &l->qidx,
			     &l->journal, &l->jpath, &l->ckpt };
	return slots[i];
}

/* Upgrade steps: upgrades[v] turns schema v into v + 1. */
static int upgrade_0_to_1(struct wtx *w)
{
	/* v0 (before versioning) had the tables but no counters and no jpath index. */
	return rebuild_derived(w);
}

typedef int (*upgrade_fn)(struct wtx *w);
static const upgrade_fn upgrades[LEDGER_SCHEMA_VERSION] = { upgrade_0_to_1 };

static int schema_write(struct wtx *w, uint32_t ver)
{
	unsigned char b[4] = { ver & 0xff, (ver >> 8) & 0xff, (ver >> 16) & 0xff, ver >> 24 };
	MDB_val v = { 4, b };
	return mrc(mdb_put(w->txn, w->l->meta, (MDB_val *)&k_schema, &v, 0));
}

static int schema_read(struct ledger *l, MDB_txn *txn, uint32_t *ver)
{
	MDB_val v;
	int rc = mrc(mdb_get(txn, l->meta, (MDB_val *)&k_schema, &v));
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return -EIO;
	const unsigned char *b = v.mv_data;
	*ver = b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

static int init_rw(struct wtx *w, void *arg)
{
	struct ledger *l = w->l;
	const char *dir = arg;
	int rc;
	for (size_t i = 0; i < ARRAY_SIZE(db_names); i++)
		if ((rc = mrc(mdb_dbi_open(w->txn, db_names[i], MDB_CREATE, db_slot(l, i)))))
			return rc;
	uint32_t ver;
	rc = schema_read(l, w->txn, &ver);
	if (rc == MDB_NOTFOUND) {
		MDB_stat st;
		if ((rc = mrc(mdb_stat(w->txn, l->files, &st))))
			return rc;
		MDB_val v;
		bool has_counters = mdb_get(w->txn, l->meta, (MDB_val *)&k_counters, &v) == 0;
		if (st.ms_entries == 0 && !has_counters) {
			/* a new ledger */
			if ((rc = schema_write(w, LEDGER_SCHEMA_VERSION)) || (rc = cnt(w)))
				return rc;
			w->dirty = true;
			l->schema = LEDGER_SCHEMA_VERSION;
			return 0;
		}
		ver = 0;
	} else if (rc) {
		return rc;
	}
	if (ver > LEDGER_SCHEMA_VERSION) {
		log_err("ledger %s has schema version %u, newer than this ferryfs understands "
			"(%u): "
			"use a newer ferryfs or move the ledger away",
			dir, ver, LEDGER_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (ver < LEDGER_SCHEMA_VERSION) {
		log_notice("ledger %s: upgrading schema %u to %u", dir, ver, LEDGER_SCHEMA_VERSION);
		for (uint32_t v = ver; v < LEDGER_SCHEMA_VERSION; v++)
			if ((rc = upgrades[v](w)))
				return rc;
		if ((rc = schema_write(w, LEDGER_SCHEMA_VERSION)))
			return rc;
	}
	l->schema = LEDGER_SCHEMA_VERSION;
	return 0;
}

static int init_ro(struct ledger *l, const char *dir)
{
	MDB_txn *txn;
	int rc = txn_begin(l, false, &txn);
	if (rc)
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(db_names); i++)
		if ((rc = mrc(mdb_dbi_open(txn, db_names[i], 0, db_slot(l, i)))))
			goto out_abort;
	uint32_t ver;
	if ((rc = schema_read(l, txn, &ver)))
		goto out_abort;
	if (ver != LEDGER_SCHEMA_VERSION) {
		log_err("ledger %s has schema version %u, this ferryfs reads %u only%s", dir, ver,
			LEDGER_SCHEMA_VERSION, ver < LEDGER_SCHEMA_VERSION ?
			" (mount it once to upgrade it)" : "");
		rc = -EPROTO;
		goto out_abort;
	}
	l->schema = ver;
	return txn_commit(l, txn); /* keeps the dbi handles */
out_abort:
	txn_abort(l, txn);
	return rc;
}

/* Entries left in the copying band by a crash go back to their priority. */
static int recover_copying(struct wtx *w, void *arg)
{
	(void)arg;
	struct ledger *l = w->l;
	int n = 0, rc;
	char *path = malloc(LEDGER_PATH_MAX + 1);
	if (!path)
		return -ENOMEM;
	for (;;) {
		MDB_cursor *cur;
		unsigned char start[QKEY_LEN];
		qkey(start, QBAND_COPYING, 0, 0);
		MDB_val k = { QKEY_LEN, start }, v;
		if ((rc = mrc(mdb_cursor_open(w->txn, l->queue, &cur))))
			break;
		rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
		if (rc == 0 && (v.mv_size == 0 || v.mv_size > LEDGER_PATH_MAX))
			rc = -EIO;
		if (rc == 0) {
			memcpy(path, v.mv_data, v.mv_size);
			path[v.mv_size] = '\0';
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		struct pkey pk;
		struct qent q;
		uint64_t seq = get_be64((const unsigned char *)k.mv_data + 9);
		if ((rc = pkey_make(path, &pk)))
			break;
		rc = q_get(l, w->txn, &pk, &q);
		if (rc == MDB_NOTFOUND || rc == -EIO || (rc == 0 && !q.copying)) {
			/* an orphan entry: drop it */
			unsigned char kb[QKEY_LEN];
			qkey(kb, QBAND_COPYING, 0, seq);
			MDB_val dk = { QKEY_LEN, kb };
			if ((rc = mrc(mdb_del(w->txn, l->queue, &dk, NULL))) || (rc = cnt(w)))
				break;
			cadd(w, C_COPYING, -1);
			continue;
		}
		if (rc)
			break;
		q.seq = seq;
		if ((rc = q_del(w, &pk, &q, false)))
			break;
		q.copying = false;
		q.not_before = 0;
		if ((rc = q_put(w, &pk, path, &q)) ||
		    (rc = f_transition(w, &pk, path, BIT(LEDGER_COPYING), LEDGER_QUEUED, false, 0,
				       NULL)))
			break;
		n++;
	}
	free(path);
	if (rc == 0 && n)
		log_notice("ledger: %d interrupted copies queued again", n);
	return rc < 0 ? rc : 0;
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(tmp, mode) != 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* Refuse network and FUSE filesystems: LMDB needs local locking and mmap coherence. */
static int check_local(const char *dir)
{
	static const struct { unsigned long magic; const char *name; } remote[] = {
		{ 0x6969, "NFS" }, { 0x65735546, "FUSE" }, { 0x65735543, "FUSE control" },
		{ 0xFF534D42, "CIFS" }, { 0xFE534D42, "SMB2" }, { 0x517B, "SMB" },
		{ 0x01021997, "9p" }, { 0x00c36400, "Ceph" }, { 0x47504653, "GPFS" },
		{ 0x0BD00BD0, "Lustre" },
	};
	struct statfs sf;
	if (statfs(dir, &sf) != 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(remote); i++) {
		if ((unsigned long)sf.f_type == remote[i].magic) {
			log_err("ledger: state_dir %s is on %s; the ledger needs a local disk", dir,
				remote[i].name);
			return -EREMOTE;
		}
	}
	return 0;
}

int ledger_open(const char *dir, unsigned flags, struct ledger **out)
{
	return ledger_open_ex(dir, flags, NULL, out);
}

int ledger_open_ex(const char *dir, unsigned flags, const struct ledger_opts *opts,
		   struct ledger **out)
{
	int rc;
	*out = NULL;
	if (!dir || !*dir || (flags & ~(LEDGER_CREATE | LEDGER_RDONLY | LEDGER_NOSYNC)))
		return -EINVAL;
	if ((flags & LEDGER_CREATE) && !(flags & LEDGER_RDONLY) && (rc = mkdir_p(dir, 0700)))
		return rc;
	if ((rc = check_local(dir)))
		return rc;
	char data_path[PATH_MAX];
	if (snprintf(data_path, sizeof(data_path), "%s/data.mdb", dir) >= (int)sizeof(data_path))
		return -ENAMETOOLONG;
	if (!(flags & LEDGER_CREATE) && access(data_path, F_OK) != 0)
		return -ENOENT;

	struct ledger *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->flags = flags;
	pthread_once(&atfork_once, register_atfork);
	l->pid = getpid();
	l->fork_gen = atomic_load(&fork_generation);
	l->lock_fd = -1;
	l->map_size = opts && opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
	l->max_map_size = opts && opts->max_map_size ? opts->max_map_size : DEFAULT_MAX_MAP_SIZE;
	if (l->max_map_size < l->map_size)
		l->max_map_size = l->map_size;
	if ((rc = -pthread_rwlock_init(&l->resize_lock, NULL)))
		goto fail_alloc;
	pthread_mutex_init(&l->gc_lock, NULL);
	pthread_cond_init(&l->gc_cond, NULL);
	pthread_mutex_init(&l->pool_lock, NULL);
	l->gc_tail = &l->gc_head;

	if (!(flags & LEDGER_RDONLY)) {
		char lock_path[PATH_MAX];
		snprintf(lock_path, sizeof(lock_path), "%s/ledger.lock", dir);
		l->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (l->lock_fd < 0) {
			rc = -errno;
			goto fail_rwlock;
		}
		if (flock(l->lock_fd, LOCK_EX | LOCK_NB) != 0) {
			rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
			if (rc == -EBUSY)
				log_err("ledger %s is in use by another ferryfs", dir);
			goto fail_lock;
		}
	}

	if ((rc = mrc(mdb_env_create(&l->env))))
		goto fail_lock;
	unsigned envflags = MDB_NOTLS;
	if (flags & LEDGER_RDONLY)
		envflags |= MDB_RDONLY;
	else
		envflags |= (flags & LEDGER_NOSYNC) ? MDB_NOSYNC : MDB_NOMETASYNC;
	if ((rc = mrc(mdb_env_set_maxdbs(l->env, 16))) ||
	    (rc = mrc(mdb_env_set_maxreaders(l->env, MAX_READERS))) ||
	    (rc = mrc(mdb_env_set_mapsize(l->env, l->map_size))) ||
	    (rc = mrc(mdb_env_open(l->env, dir, envflags, 0600))))
		goto fail_env;
	if (mdb_env_get_maxkeysize(l->env) < KEY_INLINE_MAX) {
		log_err("ledger: this LMDB allows keys of %d bytes only",
			mdb_env_get_maxkeysize(l->env));
		rc = -ENOTSUP;
		goto fail_env;
	}
	MDB_envinfo info;
	if (mdb_env_info(l->env, &info) == 0)
		l->map_size = info.me_mapsize; /* an existing file may hold a larger size */
	if (l->max_map_size < l->map_size)
		l->max_map_size = l->map_size;

	if (flags & LEDGER_RDONLY)
		rc = init_ro(l, dir);
	else if ((rc = with_write(l, init_rw, (void *)dir)) == 0)
		rc = with_write(l, recover_copying, NULL);
	if (rc)
		goto fail_env;
	*out = l;
	return 0;

fail_env:
	mdb_env_close(l->env);
fail_lock:
	if (l->lock_fd >= 0)
		close(l->lock_fd);
fail_rwlock:
	pthread_mutex_destroy(&l->pool_lock);
	pthread_cond_destroy(&l->gc_cond);
	pthread_mutex_destroy(&l->gc_lock);
	pthread_rwlock_destroy(&l->resize_lock);
fail_alloc:
	free(l);
	return lerr(rc);
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	if (getpid() == l->pid) {
		while (l->npool)
			mdb_txn_abort(l->pool[--l->npool]);
		if (!(l->flags & (LEDGER_RDONLY)))
			mdb_env_sync(l->env, 1);
		mdb_env_close(l->env);
	}
	if (l->lock_fd >= 0)
		close(l->lock_fd);
	pthread_mutex_destroy(&l->pool_lock);
	pthread_cond_destroy(&l->gc_cond);
	pthread_mutex_destroy(&l->gc_lock);
	pthread_rwlock_destroy(&l->resize_lock);
	free(l);
}

int ledger_sync(struct ledger *l)
{
	if (getpid() != l->pid)
		return -ECHILD;
	if (l->flags & LEDGER_RDONLY)
		return 0;
	return lerr(mrc(mdb_env_sync(l->env, 1)));
}

/* ---------------------------------------------------------------------------------- */
/* Names                                                                               */

static const char *const state_names[LEDGER_NSTATES] = {
	"s3-only", "queued", "copying", "migrated", "modified", "nfs-only", "failed", "conflict"
};

const char *ledger_state_name(int state)
{
	return state >= 0 && state < LEDGER_NSTATES ? state_names[state] : "?";
}

int ledger_state_parse(const char *s)
{
	for (int i = 0; i < LEDGER_NSTATES; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -EINVAL;
}

static const char *const op_names[] = {
	NULL, "write", "create", "unlink", "rename", "mkdir", "rmdir", "chmod", "chown",
	"utimens", "symlink", "link", "truncate"
};

const char *ledger_op_name(int op)
{
	return op >= LEDGER_OP_WRITE && op <= LEDGER_OP_MAX ? op_names[op] : "?";
}

/* ---------------------------------------------------------------------------------- */
/* Files                                                                               */

struct file_arg {
	const char *path;
	struct pkey k;
	struct ledger_file *rec;
	const struct ledger_file *crec;
	uint64_t fileid;
	ledger_update_fn fn;
	void *fn_arg;
};

static int file_get_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct file_arg *a = arg;
	return f_get(l, txn, &a->k, a->path, a->rec);
}

int ledger_file_get(struct ledger *l, const char *path, struct ledger_file *rec)
{
	struct file_arg a = { .path = path, .rec = rec };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	return with_read(l, file_get_r, &a);
}

static int file_put_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	return f_store(w, &a->k, a->path, a->crec);
}

int ledger_file_put(struct ledger *l, const char *path, const struct ledger_file *rec)
{
	struct file_arg a = { .path = path, .crec = rec };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	if (rec->state >= LEDGER_NSTATES)
		return -EINVAL;
	return with_write(l, file_put_w, &a);
}

struct many_arg {
	size_t n;
	const char *const *paths;
	const struct ledger_file *recs;
};

static int file_put_many_w(struct wtx *w, void *arg)
{
	struct many_arg *a = arg;
	for (size_t i = 0; i < a->n; i++) {
		struct pkey k;
		int rc = pkey_make(a->paths[i], &k);
		if (rc || (rc = f_store(w, &k, a->paths[i], &a->recs[i])))
			return rc;
	}
	return 0;
}

int ledger_file_put_many(struct ledger *l, size_t n, const char *const *paths,
			 const struct ledger_file *recs)
{
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int rc = check_path(paths[i], &len);
		if (rc)
			return rc;
		if (recs[i].state >= LEDGER_NSTATES)
			return -EINVAL;
	}
	struct many_arg a = { n, paths, recs };
	return with_write(l, file_put_many_w, &a);
}

static int file_delete_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	struct qent q;
	bool queued = false;
	int rc = q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0) {
		if ((rc = q_del(w, &a->k, &q, true)))
			return rc;
		queued = true;
	} else if (rc != MDB_NOTFOUND && rc != -EIO) {
		return rc;
	}
	rc = f_remove(w, &a->k, a->path);
	if (rc == MDB_NOTFOUND && queued)
		rc = 0;
	return rc;
}

int ledger_file_delete(struct ledger *l, const char *path)
{
	struct file_arg a = { .path = path };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	return with_write(l, file_delete_w, &a);
}

static int file_update_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	struct ledger_file rec;
	int rc = f_get(w->l, w->txn, &a->k, a->path, &rec);
	bool exists = rc == 0;
	if (rc == MDB_NOTFOUND)
		memset(&rec, 0, sizeof(rec));
	else if (rc)
		return rc;
	int verdict = a->fn(&rec, exists, a->fn_arg);
	if (verdict < 0)
		return verdict;
	rc = 0;
	if (verdict == LEDGER_WRITE) {
		if (rec.state >= LEDGER_NSTATES)
			return -EINVAL;
		rc = f_store(w, &a->k, a->path, &rec);
	} else if (verdict == LEDGER_DELETE) {
		rc = exists ? f_remove(w, &a->k, a->path) : 0;
	} else if (verdict != LEDGER_KEEP) {
		return -EINVAL;
	}
	return rc ? rc : verdict;
}

int ledger_file_update(struct ledger *l, const char *path, ledger_update_fn fn, void *arg)
{
	struct file_arg a = { .path = path, .fn = fn, .fn_arg = arg };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	return with_write(l, file_update_w, &a);
}

static int commit_migration_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	struct ledger_file old;
	int rc = f_get(w->l, w->txn, &a->k, a->path, &old);
	if (rc == 0 && (old.state == LEDGER_MODIFIED || old.state == LEDGER_NFS_ONLY ||
			old.state == LEDGER_CONFLICT))
		return -ESTALE;
	if (rc && rc != MDB_NOTFOUND && rc != -EIO)
		return rc;
	if ((rc = f_store(w, &a->k, a->path, a->crec)))
		return rc;
	if (a->fileid && a->crec->ino) {
		MDB_cursor *cur;
		if ((rc = mrc(mdb_cursor_open(w->txn, w->l->inomap, &cur))))
			return rc;
		rc = ino_store(cur, a->fileid, a->crec->ino);
		mdb_cursor_close(cur);
		if (rc)
			return rc;
	}
	struct qent q;
	rc = q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0)
		return q_del(w, &a->k, &q, true);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int ledger_commit_migration(struct ledger *l, const char *path, const struct ledger_file *rec,
			    uint64_t nfs_fileid)
{
	struct file_arg a = { .path = path, .crec = rec, .fileid = nfs_fileid };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	if (rec->state >= LEDGER_NSTATES)
		return -EINVAL;
	return with_write(l, commit_migration_w, &a);
}

/* ---- chunked walk over files ---- */

struct walk {
	const char *prefix;
	size_t plen, seek_len;
	struct buf arena;           /* [u32 klen][key][u32 vlen][value] ... */
	size_t count;
	unsigned char last[KEY_INLINE_MAX];
	size_t last_len;
	bool started, done;
};

static int walk_chunk_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct walk *wk = arg;
	MDB_cursor *cur;
	int rc = mrc(mdb_cursor_open(txn, l->files, &cur));
	if (rc)
		return rc;
	MDB_val k, v;
	if (wk->started) {
		k = (MDB_val){ wk->last_len, wk->last };
	} else {
		k = (MDB_val){ wk->seek_len, (void *)wk->prefix };
	}
	rc = mrc(k.mv_size ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
			   : mdb_cursor_get(cur, &k, &v, MDB_FIRST));
	if (rc == 0 && wk->started && k.mv_size == wk->last_len &&
	    memcmp(k.mv_data, wk->last, k.mv_size) == 0)
		rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT));
	wk->count = 0;
	buf_reset(&wk->arena);
	for (; rc == 0; rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (k.mv_size < wk->seek_len || memcmp(k.mv_data, wk->prefix, wk->seek_len) != 0) {
			wk->done = true;
			break;
		}
		if (wk->count == CHUNK)
			break;
		uint32_t kl = (uint32_t)k.mv_size, vl = (uint32_t)v.mv_size;
		if (buf_append(&wk->arena, &kl, 4) || buf_append(&wk->arena, k.mv_data, kl) ||
		    buf_append(&wk->arena, &vl, 4) || buf_append(&wk->arena, v.mv_data, vl)) {
			rc = -ENOMEM;
			break;
		}
		memcpy(wk->last, k.mv_data, kl > KEY_INLINE_MAX ? KEY_INLINE_MAX : kl);
		wk->last_len = kl;
		wk->count++;
	}
	if (rc == MDB_NOTFOUND) {
		wk->done = true;
		rc = 0;
	}
	wk->started = true;
	mdb_cursor_close(cur);
	return rc;
}

int ledger_foreach_file(struct ledger *l, const char *prefix, ledger_file_cb cb, void *arg)
{
	struct walk wk = { .prefix = prefix ? prefix : "" };
	wk.plen = strlen(wk.prefix);
	wk.seek_len = wk.plen < KEY_HASH_PREFIX ? wk.plen : KEY_HASH_PREFIX;
	int rc = 0;
	char *path = malloc(LEDGER_PATH_MAX + 1);
	if (!path)
		return -ENOMEM;
	while (!wk.done && rc == 0) {
		if ((rc = with_read(l, walk_chunk_r, &wk)))
			break;
		const char *p = wk.arena.data, *end = p + wk.arena.len;
		while (p < end && rc == 0) {
			uint32_t kl, vl;
			memcpy(&kl, p, 4);
			const char *key = p + 4;
			memcpy(&vl, key + kl, 4);
			const char *val = key + kl + 4;
			p = val + vl;
			struct ledger_file rec;
			int drc = file_decode(val, vl, &rec, path);
			if (drc) {
				log_warn("ledger: skipping a corrupt file record (%u bytes)", vl);
				continue;
			}
			if (!path[0]) {
				if (kl > LEDGER_PATH_MAX)
					continue;
				memcpy(path, key, kl);
				path[kl] = '\0';
			}
			if (strncmp(path, wk.prefix, wk.plen) != 0)
				continue;
			rc = cb(path, &rec, arg);
		}
	}
	buf_free(&wk.arena);
	free(path);
	return rc;
}

/* ---- rename ---- */

struct rename_arg {
	const char *from, *to;
	size_t flen, tlen;
	bool tree;
	struct buf moved; /* full old paths, NUL-separated */
	size_t nmoved;
};

static int rename_one(struct wtx *w, const char *from, const char *to)
{
	struct pkey fk, tk;
	struct ledger_file rec;
	int rc = pkey_make(from, &fk);
	if (rc || (rc = pkey_make(to, &tk)))
		return rc;
	rc = f_get(w->l, w->txn, &fk, from, &rec);
	if (rc)
		return rc;
	if ((rc = f_remove(w, &fk, from)))
		return rc;
	/* The ETag was that of from's object; S3's object at `to`, if any, is another one
	 * (a file the rename replaces): unknown here until the mirror uploads `to` and
	 * records its own. Keeping from's would make revalidation (fleet.c) and the mirror's
	 * overwrite guard take that replaced object for another host's change. */
	rec.etag[0] = '\0';
	return f_store(w, &tk, to, &rec);
}

static int rename_w(struct wtx *w, void *arg)
{
	struct rename_arg *a = arg;
	int rc, n = 0;
	buf_reset(&a->moved);
	rc = rename_one(w, a->from, a->to);
	if (rc == 0)
		n++;
	else if (rc != MDB_NOTFOUND)
		return rc;
	if (!a->tree)
		return n;
	/* collect the subtree first: the cursor must not walk keys we are moving */
	char *sub = malloc(a->flen + 2);
	char *path = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!sub || !path) {
		rc = -ENOMEM;
		goto out_free;
	}
	memcpy(sub, a->from, a->flen);
	sub[a->flen] = '/';
	sub[a->flen + 1] = '\0';
	size_t slen = a->flen + 1, seek = slen < KEY_HASH_PREFIX ? slen : KEY_HASH_PREFIX;
	MDB_cursor *cur;
	if ((rc = mrc(mdb_cursor_open(w->txn, w->l->files, &cur))))
		goto out_free;
	MDB_val k = { seek, sub }, v;
	for (rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)); rc == 0;
	     rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (k.mv_size < seek || memcmp(k.mv_data, sub, seek) != 0)
			break;
		struct ledger_file rec;
		if (file_decode(v.mv_data, v.mv_size, &rec, path))
			continue;
		if (!path[0]) {
			memcpy(path, k.mv_data, k.mv_size);
			path[k.mv_size] = '\0';
		}
		if (strncmp(path, sub, slen) != 0)
			continue;
		if (buf_append(&a->moved, path, strlen(path) + 1)) {
			rc = -ENOMEM;
			break;
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND && rc != 0)
		goto out_free;
	rc = 0;
	for (const char *p = a->moved.data, *end = p + a->moved.len; p && p < end;
	     p += strlen(p) + 1) {
		size_t rest = strlen(p) - a->flen;
		if (a->tlen + rest > LEDGER_PATH_MAX) {
			rc = -ENAMETOOLONG;
			break;
		}
		memcpy(path, a->to, a->tlen);
		memcpy(path + a->tlen, p + a->flen, rest + 1);
		if ((rc = rename_one(w, p, path)))
			break;
		n++;
	}
out_free:
	free(sub);
	free(path);
	return rc ? rc : n;
}

int ledger_file_rename(struct ledger *l, const char *from, const char *to, unsigned flags)
{
	struct rename_arg a = { .from = from, .to = to, .tree = flags & LEDGER_RENAME_TREE };
	int rc;
	if ((rc = check_path(from, &a.flen)) || (rc = check_path(to, &a.tlen)))
		return rc;
	if (flags & ~LEDGER_RENAME_TREE)
		return -EINVAL;
	if (strcmp(from, to) == 0)
		return 0;
	if (a.tree && a.tlen > a.flen && strncmp(to, from, a.flen) == 0 &&
	    (to[a.flen] == '/' || a.flen == 1))
		return -EINVAL;
	if (strcmp(from, "/") == 0 || strcmp(to, "/") == 0)
		return -EINVAL;
	rc = with_write(l, rename_w, &a);
	buf_free(&a.moved);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* inomap                                                                              */

struct ino_arg {
	uint64_t fileid, ino;
};

static int ino_get_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct ino_arg *a = arg;
	unsigned char kb[8];
	be64(kb, a->fileid);
	MDB_val k = { 8, kb }, v;
	int rc = mrc(mdb_get(txn, l->inomap, &k, &v));
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return -EIO;
	a->ino = get_le64(v.mv_data);
	return 0;
}

int ledger_ino_get(struct ledger *l, uint64_t nfs_fileid, uint64_t *ino)
{
	struct ino_arg a = { .fileid = nfs_fileid };
	int rc = with_read(l, ino_get_r, &a);
	if (rc == 0)
		*ino = a.ino;
	return rc;
}

static int ino_store(MDB_cursor *cur, uint64_t fileid, uint64_t ino)
{
	unsigned char kb[8], vb[8];
	be64(kb, fileid);
	le64(vb, ino);
	MDB_val k = { 8, kb }, v = { 8, vb };
	/* NFS file ids mostly grow: append when the id is past the last one */
	MDB_val lk, lv;
	unsigned flags = 0;
	int rc = mrc(mdb_cursor_get(cur, &lk, &lv, MDB_LAST));
	if (rc == MDB_NOTFOUND || (rc == 0 && lk.mv_size == 8 && memcmp(kb, lk.mv_data, 8) > 0))
		flags = MDB_APPEND;
	return mrc(mdb_cursor_put(cur, &k, &v, flags));
}

struct ino_many {
	size_t n;
	const uint64_t *fileids, *inos;
};

static int ino_put_many_w(struct wtx *w, void *arg)
{
	struct ino_many *a = arg;
	MDB_cursor *cur;
	int rc = mrc(mdb_cursor_open(w->txn, w->l->inomap, &cur));
	if (rc)
		return rc;
	for (size_t i = 0; rc == 0 && i < a->n; i++)
		rc = ino_store(cur, a->fileids[i], a->inos[i]);
	mdb_cursor_close(cur);
	return rc;
}

int ledger_ino_put_many(struct ledger *l, size_t n, const uint64_t *nfs_fileids,
			const uint64_t *inos)
{
	struct ino_many a = { n, nfs_fileids, inos };
	return with_write(l, ino_put_many_w, &a);
}

int ledger_ino_put(struct ledger *l, uint64_t nfs_fileid, uint64_t ino)
{
	return ledger_ino_put_many(l, 1, &nfs_fileid, &ino);
}

static int ino_del_w(struct wtx *w, void *arg)
{
	struct ino_arg *a = arg;
	unsigned char kb[8];
	be64(kb, a->fileid);
	MDB_val k = { 8, kb };
	return mrc(mdb_del(w->txn, w->l->inomap, &k, NULL));
}

int ledger_ino_delete(struct ledger *l, uint64_t nfs_fileid)
{
	struct ino_arg a = { .fileid = nfs_fileid };
	return with_write(l, ino_del_w, &a);
}

/* ---------------------------------------------------------------------------------- */
/* Queue                                                                               */

struct queue_arg {
	const char *path;
	struct pkey k;
	int prio;
	bool copying;
	time_t now, not_before, next_at;
	char *out;
	size_t size;
	const char *error;
};

static int queue_push_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0) {
		if (q.copying || q.prio <= a->prio)
			return 0;
		if ((rc = q_del(w, &a->k, &q, false)))
			return rc;
	} else if (rc != MDB_NOTFOUND && rc != -EIO) {
		return rc;
	}
	if ((rc = cnt(w)))
		return rc;
	q = (struct qent){ .prio = a->prio, .seq = w->c.v[C_QSEQ_NEXT]++ };
	w->dirty = true;
	if ((rc = q_put(w, &a->k, a->path, &q)) ||
	    (rc = f_transition(w, &a->k, a->path, BIT(LEDGER_S3_ONLY) | BIT(LEDGER_FAILED),
			       LEDGER_QUEUED, true, 0, NULL)))
		return rc;
	return 1;
}

int ledger_queue_push(struct ledger *l, const char *path, int prio)
{
	struct queue_arg a = { .path = path, .prio = prio };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	if (prio < 0 || prio >= LEDGER_NPRIO)
		return -EINVAL;
	return with_write(l, queue_push_w, &a);
}

struct push_many_arg {
	size_t n;
	const char *const *paths;
	int prio;
};

static int queue_push_many_w(struct wtx *w, void *arg)
{
	struct push_many_arg *a = arg;
	int queued = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct queue_arg q = { .path = a->paths[i], .prio = a->prio };
		int rc = pkey_make(q.path, &q.k);
		if (!rc)
			rc = queue_push_w(w, &q);
		if (rc < 0)
			return rc;
		queued += rc;
	}
	return queued;
}

int ledger_queue_push_many(struct ledger *l, size_t n, const char *const *paths, int prio)
{
	if (prio < 0 || prio >= LEDGER_NPRIO)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int rc = check_path(paths[i], &len);
		if (rc)
			return rc;
	}
	if (n == 0)
		return 0;
	struct push_many_arg a = { n, paths, prio };
	return with_write(l, queue_push_many_w, &a);
}

static int queue_pop_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	MDB_cursor *cur;
	int rc = mrc(mdb_cursor_open(w->txn, w->l->queue, &cur));
	if (rc)
		return rc;
	a->next_at = 0;
	struct qent q = { .prio = -1 };
	size_t plen = 0;
	for (int p = 0; p < LEDGER_NPRIO; p++) {
		unsigned char start[QKEY_LEN];
		qkey(start, (unsigned)p, 0, 0);
		MDB_val k = { QKEY_LEN, start }, v;
		rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
		if (rc == MDB_NOTFOUND)
			break;
		if (rc)
			goto out_cursor;
		const unsigned char *kp = k.mv_data;
		if (k.mv_size != QKEY_LEN || kp[0] != p)
			continue;
		time_t nb = (time_t)get_be64(kp + 1);
		if (nb > a->now) {
			if (!a->next_at || nb < a->next_at)
				a->next_at = nb;
			continue;
		}
		plen = v.mv_size;
		if (plen == 0 || plen > LEDGER_PATH_MAX) {
			rc = -EIO;
			goto out_cursor;
		}
		if (plen >= a->size) {
			rc = -ERANGE;
			goto out_cursor;
		}
		memcpy(a->out, v.mv_data, plen); /* before any write moves the page */
		a->out[plen] = '\0';
		q = (struct qent){ .prio = p, .not_before = nb, .seq = get_be64(kp + 9) };
		break;
	}
	rc = 0;
	mdb_cursor_close(cur);
	if (q.prio < 0)
		return 0;
	struct pkey pk;
	if ((rc = pkey_make(a->out, &pk)) || (rc = q_del(w, &pk, &q, false)))
		return rc;
	a->prio = q.prio;
	q.copying = true;
	q.not_before = 0;
	if ((rc = q_put(w, &pk, a->out, &q)) ||
	    (rc = f_transition(w, &pk, a->out,
			       BIT(LEDGER_QUEUED) | BIT(LEDGER_S3_ONLY) | BIT(LEDGER_FAILED),
			       LEDGER_COPYING, true, 0, NULL)))
		return rc;
	return 1;
out_cursor:
	mdb_cursor_close(cur);
	return rc;
}

int ledger_queue_pop(struct ledger *l, time_t now, char *path, size_t size, int *prio,
		     time_t *next_at)
{
	struct queue_arg a = { .now = now, .out = path, .size = size };
	if (!path || size == 0)
		return -EINVAL;
	int rc = with_write(l, queue_pop_w, &a);
	if (rc == 1 && prio)
		*prio = a.prio;
	if (next_at)
		*next_at = rc == 0 ? a.next_at : 0;
	return rc;
}

static int queue_requeue_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = q_get(w->l, w->txn, &a->k, &q);
	if (rc == MDB_NOTFOUND || (rc == 0 && !q.copying))
		return -ENOENT;
	if (rc || (rc = q_del(w, &a->k, &q, false)))
		return rc;
	q.copying = false;
	q.not_before = a->not_before > 0 ? a->not_before : 0;
	if ((rc = q_put(w, &a->k, a->path, &q)))
		return rc;
	return f_transition(w, &a->k, a->path, BIT(LEDGER_COPYING), LEDGER_QUEUED, false, 1, NULL);
}

int ledger_queue_requeue(struct ledger *l, const char *path, time_t not_before)
{
	struct queue_arg a = { .path = path, .not_before = not_before };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	return with_write(l, queue_requeue_w, &a);
}

static int queue_fail_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0)
		rc = q_del(w, &a->k, &q, true);
	else if (rc == MDB_NOTFOUND || rc == -EIO)
		rc = 0;
	if (rc || (rc = cnt(w)))
		return rc;
	cadd(w, C_FAILED_TOTAL, +1);
	return f_transition(w, &a->k, a->path,
			    BIT(LEDGER_QUEUED) | BIT(LEDGER_COPYING) | BIT(LEDGER_S3_ONLY),
			    LEDGER_FAILED, true, 1, a->error ? a->error : "failed");
}

int ledger_queue_fail(struct ledger *l, const char *path, const char *error)
{
	struct queue_arg a = { .path = path, .error = error };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	return with_write(l, queue_fail_w, &a);
}

static int queue_remove_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = q_get(w->l, w->txn, &a->k, &q);
	if (rc == -EIO) {
		MDB_val key = pkey_val(&a->k); /* a corrupt index entry: drop it */
		return mrc(mdb_del(w->txn, w->l->qidx, &key, NULL));
	}
	if (rc)
		return rc;
	if ((rc = q_del(w, &a->k, &q, true)))
		return rc;
	return f_transition(w, &a->k, a->path, BIT(LEDGER_QUEUED) | BIT(LEDGER_COPYING),
			    LEDGER_S3_ONLY, false, 0, NULL);
}

int ledger_queue_remove(struct ledger *l, const char *path)
{
	struct queue_arg a = { .path = path };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	return with_write(l, queue_remove_w, &a);
}

static int queue_find_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = q_get(l, txn, &a->k, &q);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	a->prio = q.prio;
	a->copying = q.copying;
	return 1;
}

int ledger_queue_find(struct ledger *l, const char *path, int *prio, bool *copying)
{
	struct queue_arg a = { .path = path };
	int rc = pkey_make(path, &a.k);
	if (rc)
		return rc;
	rc = with_read(l, queue_find_r, &a);
	if (rc == 1) {
		if (prio)
			*prio = a.prio;
		if (copying)
			*copying = a.copying;
	}
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* Journal                                                                             */

static int journal_append_w(struct wtx *w, void *arg)
{
	struct ledger_jentry *e = arg;
	unsigned char buf[2 * (LEDGER_PATH_MAX + 16) + 128];
	struct wr wb = { .p = buf, .cap = sizeof(buf) };
	int rc = journal_encode(e, &wb);
	if (rc || (rc = cnt(w)))
		return rc;
	e->seq = w->c.v[C_JSEQ_NEXT]++;
	w->dirty = true;
	unsigned char kb[8];
	be64(kb, e->seq);
	MDB_val k = { 8, kb }, v = { wb.len, buf };
	if ((rc = mrc(mdb_put(w->txn, w->l->journal, &k, &v, MDB_APPEND))))
		return rc;
	return jpath_entry(w, e, +1);
}

int ledger_journal_append(struct ledger *l, struct ledger_jentry *e, uint64_t *seq)
{
	size_t n;
	int rc = check_path(e->path, &n);
	if (rc)
		return rc;
	if (e->op < LEDGER_OP_WRITE || e->op > LEDGER_OP_MAX)
		return -EINVAL;
	if (op_has_path2(e->op) != (e->path2 != NULL))
		return -EINVAL;
	if (e->path2) {
		if (op_indexes_path2(e->op) && (rc = check_path(e->path2, &n)))
			return rc;
		if (strnlen(e->path2, LEDGER_PATH_MAX + 1) > LEDGER_PATH_MAX)
			return -ENAMETOOLONG;
	}
	if (e->time_ms <= 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		e->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	rc = with_write(l, journal_append_w, e);
	if (rc == 0 && seq)
		*seq = e->seq;
	return rc;
}

struct jwalk {
	uint64_t from;
	size_t want;         /* entries still wanted (SIZE_MAX = no limit) */
	struct buf arena;    /* [u64 seq][u32 len][value] ... */
	size_t count;
	bool done;
};

static int jwalk_chunk_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct jwalk *jw = arg;
	MDB_cursor *cur;
	int rc = mrc(mdb_cursor_open(txn, l->journal, &cur));
	if (rc)
		return rc;
	unsigned char kb[8];
	be64(kb, jw->from);
	MDB_val k = { 8, kb }, v;
	buf_reset(&jw->arena);
	jw->count = 0;
	for (rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)); rc == 0;
	     rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (jw->count == CHUNK || jw->count == jw->want)
			break;
		if (k.mv_size != 8)
			continue;
		uint64_t seq = get_be64(k.mv_data);
		uint32_t len = (uint32_t)v.mv_size;
		if (buf_append(&jw->arena, &seq, 8) || buf_append(&jw->arena, &len, 4) ||
		    buf_append(&jw->arena, v.mv_data, len)) {
			rc = -ENOMEM;
			break;
		}
		jw->count++;
		jw->from = seq + 1;
	}
	if (rc == MDB_NOTFOUND) {
		jw->done = true;
		rc = 0;
	}
	mdb_cursor_close(cur);
	return rc;
}

int ledger_journal_foreach(struct ledger *l, uint64_t from_seq, size_t max,
			   ledger_journal_cb cb, void *arg)
{
	struct jwalk jw = { .from = from_seq, .want = max ? max : SIZE_MAX };
	char *paths = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!paths)
		return -ENOMEM;
	int rc = 0;
	while (!jw.done && jw.want > 0 && rc == 0) {
		if ((rc = with_read(l, jwalk_chunk_r, &jw)))
			break;
		if (jw.count == 0)
			break;
		jw.want -= jw.count;
		const char *p = jw.arena.data, *end = p + jw.arena.len;
		while (p < end && rc == 0) {
			uint64_t seq;
			uint32_t len;
			memcpy(&seq, p, 8);
			memcpy(&len, p + 8, 4);
			struct ledger_jentry e;
			rc = journal_decode(p + 12, len, &e, paths, paths + LEDGER_PATH_MAX + 1);
			p += 12 + len;
			if (rc) {
				log_err("ledger: journal entry %" PRIu64 " is corrupt", seq);
				break;
			}
			e.seq = seq;
			rc = cb(&e, arg);
		}
	}
	buf_free(&jw.arena);
	free(paths);
	return rc;
}

struct jdel_arg {
	uint64_t upto;
	int deleted;
	bool more;
	char *paths;
};

static int journal_delete_w(struct wtx *w, void *arg)
{
	struct jdel_arg *a = arg;
	MDB_cursor *cur;
	int rc = mrc(mdb_cursor_open(w->txn, w->l->journal, &cur));
	if (rc)
		return rc;
	MDB_val k, v;
	int n = 0;
	a->more = false;
	/* we delete from the front, so the first entry is always the next one */
	for (rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST))) {
		if (k.mv_size == 8 && get_be64(k.mv_data) > a->upto)
			break;
		if (n == JDEL_BATCH) {
			a->more = true;
			break;
		}
		struct ledger_jentry e;
		if (journal_decode(v.mv_data, v.mv_size, &e, a->paths,
				   a->paths + LEDGER_PATH_MAX + 1) == 0) {
			if ((rc = jpath_entry(w, &e, -1)))
				break;
		} else {
			log_warn("ledger: deleting a corrupt journal entry");
		}
		if ((rc = mrc(mdb_cursor_del(cur, 0))))
			break;
		n++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc)
		return rc;
	a->deleted = n;
	return 0;
}

int ledger_journal_delete_upto(struct ledger *l, uint64_t upto)
{
	struct jdel_arg a = { .upto = upto };
	a.paths = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!a.paths)
		return -ENOMEM;
	int total = 0, rc;
	do {
		if ((rc = with_write(l, journal_delete_w, &a)))
			break;
		total += a.deleted;
	} while (a.more);
	free(a.paths);
	return rc ? rc : total;
}

struct jpend_arg {
	struct pkey k;
	uint32_t count;
};

static int journal_pending_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct jpend_arg *a = arg;
	MDB_val k = pkey_val(&a->k), v;
	int rc = mrc(mdb_get(txn, l->jpath, &k, &v));
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return -EIO;
	memcpy(&a->count, v.mv_data, 4);
	return 0;
}

int ledger_journal_pending(struct ledger *l, const char *path)
{
	struct jpend_arg a = { .count = 0 };
	int rc = pkey_make(path, &a.k);
	if (rc || (rc = with_read(l, journal_pending_r, &a)))
		return rc;
	return a.count > INT_MAX ? INT_MAX : (int)a.count;
}

/* ---------------------------------------------------------------------------------- */
/* Checkpoints                                                                         */

struct ckpt_arg {
	const char *name;
	const char *value;
	char *out;
	size_t size, len;
};

static int ckpt_check_name(const char *name)
{
	size_t n = name ? strnlen(name, 256) : 0;
	return n == 0 || n > 255 ? -EINVAL : 0;
}

static int ckpt_get_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct ckpt_arg *a = arg;
	MDB_val k = { strlen(a->name), (void *)a->name }, v;
	int rc = mrc(mdb_get(txn, l->ckpt, &k, &v));
	if (rc)
		return rc;
	if (v.mv_size >= LEDGER_CKPT_MAX || memchr(v.mv_data, 0, v.mv_size))
		return -EIO;
	if (v.mv_size >= a->size)
		return -ERANGE;
	memcpy(a->out, v.mv_data, v.mv_size);
	a->out[v.mv_size] = '\0';
	a->len = v.mv_size;
	return 0;
}

int ledger_ckpt_get(struct ledger *l, const char *name, char *out, size_t size)
{
	struct ckpt_arg a = { .name = name, .out = out, .size = size };
	int rc = ckpt_check_name(name);
	if (rc || (rc = with_read(l, ckpt_get_r, &a)))
		return rc;
	return (int)a.len;
}

static int ckpt_put_w(struct wtx *w, void *arg)
{
	struct ckpt_arg *a = arg;
	MDB_val k = { strlen(a->name), (void *)a->name };
	if (!a->value)
		return mrc(mdb_del(w->txn, w->l->ckpt, &k, NULL));
	MDB_val v = { strlen(a->value), (void *)a->value };
	return mrc(mdb_put(w->txn, w->l->ckpt, &k, &v, 0));
}

int ledger_ckpt_put(struct ledger *l, const char *name, const char *value)
{
	struct ckpt_arg a = { .name = name, .value = value };
	int rc = ckpt_check_name(name);
	if (rc)
		return rc;
	if (!value || strnlen(value, LEDGER_CKPT_MAX) >= LEDGER_CKPT_MAX)
		return -EINVAL;
	return with_write(l, ckpt_put_w, &a);
}

int ledger_ckpt_delete(struct ledger *l, const char *name)
{
	struct ckpt_arg a = { .name = name };
	int rc = ckpt_check_name(name);
	if (rc)
		return rc;
	return with_write(l, ckpt_put_w, &a);
}

/* ---------------------------------------------------------------------------------- */
/* Statistics                                                                          */

static void fill_counters(struct ledger_stats *st, const struct counters *c)
{
	st->files_total = st->bytes_total = 0;
	for (int i = 0; i < LEDGER_NSTATES; i++) {
		st->files[i] = c->v[C_FILES + i];
		st->bytes[i] = c->v[C_BYTES + i];
		st->files_total += st->files[i];
		st->bytes_total += st->bytes[i];
	}
	for (int i = 0; i < LEDGER_NPRIO; i++)
		st->queued[i] = c->v[C_QUEUED + i];
	st->copying = c->v[C_COPYING];
	st->failed_total = c->v[C_FAILED_TOTAL];
	st->journal_next_seq = c->v[C_JSEQ_NEXT];
}

static int stats_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct ledger_stats *st = arg;
	struct counters c;
	int rc = counters_read(txn, l->meta, &c);
	if (rc)
		return rc;
	fill_counters(st, &c);
	MDB_stat ms;
	if ((rc = mrc(mdb_stat(txn, l->journal, &ms))))
		return rc;
	st->journal_pending = ms.ms_entries;
	MDB_cursor *cur;
	if ((rc = mrc(mdb_cursor_open(txn, l->journal, &cur))))
		return rc;
	MDB_val k, v;
	rc = mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST));
	if (rc == 0 && k.mv_size == 8) {
		st->journal_oldest_seq = get_be64(k.mv_data);
		struct rd r = { .p = v.mv_data,
				.end = (const unsigned char *)v.mv_data + v.mv_size };
		rd_u8(&r);
		rd_u8(&r);
		uint64_t t = rd_varint(&r);
		st->journal_oldest_ms = r.bad || t > INT64_MAX ? 0 : (int64_t)t;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	MDB_dbi all[] = { l->meta, l->files, l->inomap, l->queue, l->qidx, l->journal, l->jpath,
			  l->ckpt };
	uint64_t pages = 0;
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		if ((rc = mrc(mdb_stat(txn, all[i], &ms))))
			return rc;
		pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
		if (all[i] == l->inomap)
			st->inomap_entries = ms.ms_entries;
	}
	st->page_size = ms.ms_psize;
	st->table_bytes = pages * ms.ms_psize;
	MDB_envinfo info;
	if ((rc = mrc(mdb_env_info(l->env, &info))))
		return rc;
	st->map_size = info.me_mapsize;
	st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	st->schema = l->schema;
	return 0;
}

int ledger_stats(struct ledger *l, struct ledger_stats *st)
{
	memset(st, 0, sizeof(*st));
	return with_read(l, stats_r, st);
}

struct check_arg {
	int diffs;
};

static int count_diffs(const struct counters *a, const struct counters *b)
{
	int d = 0;
	for (int i = 0; i < C_COUNT; i++)
		if (a->v[i] != b->v[i])
			d++;
	return d;
}

static int check_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct check_arg *a = arg;
	struct counters old, c;
	int rc = counters_read(txn, l->meta, &old);
	if (rc || (rc = recount(l, txn, &old, &c)))
		return rc;
	a->diffs = count_diffs(&old, &c);
	return 0;
}

static int check_w(struct wtx *w, void *arg)
{
	struct check_arg *a = arg;
	struct counters old;
	int rc = counters_read(w->txn, w->l->meta, &old);
	if (rc == -EIO) {
		counters_fresh(&old);
		old.v[C_JSEQ_NEXT] = old.v[C_QSEQ_NEXT] = 0;
	} else if (rc) {
		return rc;
	}
	if ((rc = rebuild_derived(w)))
		return rc;
	a->diffs = count_diffs(&old, &w->c);
	return 0;
}

int ledger_check(struct ledger *l, bool fix)
{
	struct check_arg a = { 0 };
	int rc = fix ? with_write(l, check_w, &a) : with_read(l, check_r, &a);
	return rc ? rc : a.diffs;
}
