/* ledger_txn.c - the ledger's transactions: LMDB error mapping, read transactions from a
 * small pool, write transactions with group commit and map growth, and the fork guard.
 *
 * Every public ledger function is one short transaction run through lg_read() or
 * lg_write(); inside, helpers return raw LMDB codes or -errno and lg_err() turns LMDB
 * codes into -errno in exactly one place at the boundary. The ledger must never do network
 * I/O, never keep a transaction open when it returns, never run a caller's callback while
 * a transaction is open, and never be used across fork.
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
#include "ledger/ledger_int.h"

#include <errno.h>
#include <stdatomic.h>

#include "base/log.h"

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

void lg_fork_init(struct ledger *l)
{
	pthread_once(&atfork_once, register_atfork);
	l->fork_gen = atomic_load(&fork_generation);
}

int lg_err(int rc)
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

static bool forked(const struct ledger *l)
{
	return atomic_load_explicit(&fork_generation, memory_order_relaxed) != l->fork_gen;
}


int lg_txn_begin(struct ledger *l, bool write, MDB_txn **txn)
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
			return lg_mrc(rc);
		/* another process grew the map: adopt its size */
		pthread_rwlock_wrlock(&l->resize_lock);
		rc = mdb_env_set_mapsize(l->env, 0);
		MDB_envinfo info;
		if (rc == 0 && mdb_env_info(l->env, &info) == 0)
			l->map_size = info.me_mapsize;
		pthread_rwlock_unlock(&l->resize_lock);
		if (rc)
			return lg_mrc(rc);
	}
}

void lg_txn_abort(struct ledger *l, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&l->resize_lock);
}

int lg_txn_commit(struct ledger *l, MDB_txn *txn)
{
	int rc = lg_mrc(mdb_txn_commit(txn));
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
	rc = lg_mrc(mdb_env_set_mapsize(l->env, want));
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
		int rc2 = lg_counters_write(txn, l->meta, &w.c);
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
		int rc = lg_txn_begin(l, true, &txn);
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
				r->rc = lg_mrc(mdb_txn_begin(l->env, txn, 0, &child));
				if (r->rc)
					continue;
				r->rc = run_fn(l, child, r);
				if (r->rc >= 0) {
					int rc2 = lg_mrc(mdb_txn_commit(child));
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
			rc = lg_txn_commit(l, txn);
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
			lg_txn_abort(l, txn);
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
int lg_write(struct ledger *l, write_fn fn, void *arg)
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
	return lg_err(req.rc);
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
	return lg_txn_begin(l, false, txn);
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

int lg_read(struct ledger *l, read_fn fn, void *arg)
{
	MDB_txn *txn;
	int rc = read_begin(l, &txn);
	if (rc)
		return lg_err(rc);
	rc = fn(l, txn, arg);
	read_end(l, txn);
	return lg_err(rc);
}
