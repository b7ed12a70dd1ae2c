/* nfs/pool.h - a fixed-size pool of libnfs contexts, each mounted on the same export.
 *
 * libnfs 4.0 has no thread support: one nfs_context must never be used by two threads at
 * once. The pool lends one context (a "conn") to one caller at a time; callers block on a
 * condition variable while every conn is lent out. A conn is connected and mounted lazily
 * the first time it is lent, and again after a call on it failed with a transport error
 * (server gone or restarted): nfsp_call does that reconnect and retries the call once.
 *
 * This module never interprets paths or file contents: it owns connections only. */
#ifndef FERRY_NFS_POOL_H
#define FERRY_NFS_POOL_H

#include <stdint.h>

struct nfs_context;
struct nfsp_pool;

/* One pooled context. Only the thread that currently holds the conn may read or use
 * `nfs`; idx and gen may be read by the holder. */
struct nfsp_conn {
	struct nfs_context *nfs;  /* NULL while not connected */
	unsigned idx;             /* position in the pool, 0..n-1, fixed */
	uint64_t gen;             /* bumped at every (re)connect; 0 = never connected */
	int busy;                 /* lent out (protected by the pool lock) */
	int failing;              /* the last connect failed (holder-owned; quiets the log) */
};

/* Default timeout of one NFS call (milliseconds) before it fails with -ETIMEDOUT. */
#define NFSP_TIMEOUT_MS 10000

/* Create a pool of n contexts for `url` (nfs://host/export[/sub]?version=..&nfsport=..).
 * The URL is checked here (one parse) but nothing connects until the first nfsp_get.
 * timeout_ms: per-call timeout (0: NFSP_TIMEOUT_MS). 0, -EINVAL (bad URL), -ENOMEM. */
int nfsp_new(const char *url, unsigned n, int timeout_ms, struct nfsp_pool **out);
/* Destroy the pool: every conn must have been given back. NULL is fine. */
void nfsp_destroy(struct nfsp_pool *p);
unsigned nfsp_size(const struct nfsp_pool *p);
/* The NFS version the URL asks for: 3 (the default) or 4. */
int nfsp_version(const struct nfsp_pool *p);

/* Borrow a conn, connected. `prefer` (-1 for none) names a conn to take if it is free;
 * otherwise any free one is taken, connected ones first. Blocks while all are busy.
 * 0, or -errno when the chosen conn could not connect (it is then given back). */
int nfsp_get(struct nfsp_pool *p, int prefer, struct nfsp_conn **out);
/* Borrow exactly conn `idx` (waiting for it). Same returns as nfsp_get. */
int nfsp_get_idx(struct nfsp_pool *p, unsigned idx, struct nfsp_conn **out);
/* Give a conn back and wake a waiter. */
void nfsp_put(struct nfsp_pool *p, struct nfsp_conn *c);

/* Drop the conn's context and connect + mount a new one (the caller holds c). Counts
 * nfs_reconnects. 0 / -errno (c is then left disconnected; the next get retries). */
int nfsp_reconnect(struct nfsp_pool *p, struct nfsp_conn *c);

/* Drop the conn's context now (the caller holds c): the next borrower reconnects. For a
 * context whose protocol state libnfs got wrong (see store/nfs_handle.c: NFSv4 OPEN errors). */
void nfsp_discard(struct nfsp_conn *c);

/* Whether rc (a -errno from libnfs) means the connection rather than the operation
 * failed: the server closed or reset the socket, refused it, or did not answer in time. */
int nfsp_is_transport_error(int rc);

/* Run fn on a borrowed conn. When fn fails with a transport error, the conn is
 * reconnected and fn runs once more (on a new context: fn must look at c->gen if it
 * caches anything per context). Counts nfs_errors for failures other than
 * ENOENT/EEXIST. Returns what fn returned (or the error of get/reconnect). */
typedef int (*nfsp_fn)(struct nfsp_conn *c, void *arg);
int nfsp_call(struct nfsp_pool *p, int prefer, nfsp_fn fn, void *arg);
/* The same on conn `idx` exactly. */
int nfsp_call_idx(struct nfsp_pool *p, unsigned idx, nfsp_fn fn, void *arg);

#endif
