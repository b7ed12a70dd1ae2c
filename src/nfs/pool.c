/* nfs/pool.c - the pool of libnfs contexts (see pool.h).
 *
 * DESIGN
 * - n conns, fixed at creation. A conn is lent to one thread at a time; the holder calls
 *   libnfs's sync API on it without any lock (libnfs 4.0 is not thread-safe, so a context
 *   must never be touched by two threads: lending is what guarantees that).
 * - Connecting (nfs_init_context + URL options + nfs_mount) happens while the caller holds
 *   the conn, outside the pool lock, so a slow or dead server never blocks the pool lock.
 * - libnfs's own auto-reconnect is switched off: with it on, a sync call against a dead
 *   server would retry forever. Instead every call has a timeout (nfs_set_timeout), a
 *   failed transport surfaces as -errno, and nfsp_call replaces the context and retries
 *   once. During an outage a call therefore fails in bounded time (connection refused is
 *   immediate; a hung server costs at most two timeouts: the call's and the reconnect's;
 *   measured: a stat against a SIGSTOPped ganesha fails after 2 x 10 s).
 * - Retrying a non-idempotent call (create O_EXCL, mkdir, unlink, rename) after a
 *   transport error may report EEXIST/ENOENT although the first attempt took effect on the
 *   server: the same ambiguity every NFS client has without a duplicate request cache.
 *
 * Locking: pool->lock protects every conn's `busy` flag and nothing else; the cond is
 * signalled when a conn is given back. A conn's nfs/gen fields belong to its holder.
 * There is no lock order to respect: pool->lock is a leaf (never held across a call). */
#include "nfs/pool.h"

#include <errno.h>
#include <nfsc/libnfs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/stats.h"
#include "base/util.h"

struct nfsp_pool {
	char *url;
	int timeout_ms;
	int version;             /* 3 or 4, from the URL */
	unsigned n;
	struct nfsp_conn *conns;
	pthread_mutex_t lock;   /* protects conns[].busy */
	pthread_cond_t freed;   /* a conn was given back */
};

int nfsp_new(const char *url, unsigned n, int timeout_ms, struct nfsp_pool **out)
{
	struct nfsp_pool *p = NULL;
	struct nfs_context *nfs = NULL;
	struct nfs_url *u = NULL;
	int rc = -ENOMEM;

	if (!url || n == 0)
		return -EINVAL;
	/* Parse once now so that a bad URL is reported at mount time, not at first use. */
	nfs = nfs_init_context();
	if (!nfs)
		goto fail;
	u = nfs_parse_url_dir(nfs, url);
	if (!u || !u->server || !u->path) {
		log_err("nfs: bad URL %s: %s", url, nfs_get_error(nfs));
		rc = -EINVAL;
		goto fail;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto fail;
	p->conns = calloc(n, sizeof(*p->conns));
	p->url = util_strdup(url);
	if (!p->conns || !p->url)
		goto fail;
	p->n = n;
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : NFSP_TIMEOUT_MS;
	for (unsigned i = 0; i < n; i++)
		p->conns[i].idx = i;
	const char *q = strchr(url, '?');
	p->version = q && (strstr(q, "?version=4") || strstr(q, "&version=4")) ? 4 : 3;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	nfs_destroy_url(u);
	nfs_destroy_context(nfs);
	*out = p;
	return 0;
fail:
	if (p) {
		free(p->conns);
		free(p->url);
		free(p);
	}
	if (u)
		nfs_destroy_url(u);
	if (nfs)
		nfs_destroy_context(nfs);
	return rc;
}

void nfsp_destroy(struct nfsp_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++) {
		if (p->conns[i].nfs)
			nfs_destroy_context(p->conns[i].nfs);
	}
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p->conns);
	free(p->url);
	free(p);
}

unsigned nfsp_size(const struct nfsp_pool *p) { return p->n; }
int nfsp_version(const struct nfsp_pool *p) { return p->version; }

/* Connect and mount a fresh context for c (the caller holds c). 0 / -errno. */
static int conn_open(struct nfsp_pool *p, struct nfsp_conn *c)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *u = NULL;
	int rc;

	if (!nfs)
		return -ENOMEM;
	/* The URL's options (version, nfsport, mountport, uid, ...) are applied to the
	 * context by the parse, so it is parsed again for each context. */
	u = nfs_parse_url_dir(nfs, p->url);
	if (!u) {
		rc = -EINVAL;
		goto fail_context;
	}
	nfs_set_autoreconnect(nfs, 0);
	nfs_set_timeout(nfs, p->timeout_ms);
	nfs_set_dircache(nfs, 0);   /* other hosts change directories: never trust a cache */
	/* NFSv4: every context is its own client to the server. Two contexts presenting the
	 * same client name with different verifiers would make the server drop the state
	 * (opens) of the first, so each (re)connect gets a unique name. */
	char id[96];
	snprintf(id, sizeof(id), "ferryfs-%ld-%p-%u-%llu", (long)getpid(), (void *)p, c->idx,
		 (unsigned long long)c->gen + 1);
	nfs4_set_client_name(nfs, id);
	snprintf(id, sizeof(id), "%08x", (unsigned)(util_now_ns() ^ (c->idx << 24)));
	nfs4_set_verifier(nfs, id);
	rc = nfs_mount(nfs, u->server, u->path);
	if (rc < 0) {
		if (!c->failing)
			log_warn("nfs: mount of %s failed: %s", p->url, nfs_get_error(nfs));
		else
			log_debug("nfs: mount of %s failed: %s", p->url, nfs_get_error(nfs));
		c->failing = 1;
		goto fail_url;
	}
	nfs_destroy_url(u);
	c->nfs = nfs;
	c->gen++;
	c->failing = 0;
	return 0;
fail_url:
	nfs_destroy_url(u);
fail_context:
	nfs_destroy_context(nfs);
	return rc;
}

int nfsp_reconnect(struct nfsp_pool *p, struct nfsp_conn *c)
{
	if (c->nfs) {
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
	}
	stats_inc(nfs_reconnects);
	int was_failing = c->failing;
	int rc = conn_open(p, c);
	if (rc == 0 && was_failing)
		log_notice("nfs: context %u reconnected", c->idx);
	return rc;
}

void nfsp_discard(struct nfsp_conn *c)
{
	if (c->nfs) {
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
	}
}

/* Called with the conn lent (busy set): make sure it is connected. */
static int conn_ready(struct nfsp_pool *p, struct nfsp_conn *c, struct nfsp_conn **out)
{
	if (!c->nfs) {
		int rc = c->gen ? nfsp_reconnect(p, c) : conn_open(p, c);
		if (rc) {
			stats_inc(nfs_errors);
			nfsp_put(p, c);
			return rc;
		}
	}
	*out = c;
	return 0;
}

int nfsp_get(struct nfsp_pool *p, int prefer, struct nfsp_conn **out)
{
	struct nfsp_conn *c = NULL;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (prefer >= 0 && (unsigned)prefer < p->n && !p->conns[prefer].busy) {
			c = &p->conns[prefer];
			break;
		}
		struct nfsp_conn *idle = NULL;
		for (unsigned i = 0; i < p->n; i++) {
			struct nfsp_conn *k = &p->conns[i];
			if (k->busy)
				continue;
			if (k->nfs) {
				c = k;
				break;
			}
			if (!idle)
				idle = k;
		}
		if (!c)
			c = idle;
		if (c)
			break;
		pthread_cond_wait(&p->freed, &p->lock);
	}
	c->busy = 1;
	pthread_mutex_unlock(&p->lock);
	return conn_ready(p, c, out);
}

int nfsp_get_idx(struct nfsp_pool *p, unsigned idx, struct nfsp_conn **out)
{
	if (idx >= p->n)
		return -EINVAL;
	struct nfsp_conn *c = &p->conns[idx];
	pthread_mutex_lock(&p->lock);
	while (c->busy)
		pthread_cond_wait(&p->freed, &p->lock);
	c->busy = 1;
	pthread_mutex_unlock(&p->lock);
	return conn_ready(p, c, out);
}

void nfsp_put(struct nfsp_pool *p, struct nfsp_conn *c)
{
	pthread_mutex_lock(&p->lock);
	c->busy = 0;
	/* Broadcast: a waiter for one particular conn must not swallow the only wakeup. */
	pthread_cond_broadcast(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

int nfsp_is_transport_error(int rc)
{
	switch (-rc) {
	case EIO: /* libnfs reports a dead socket ("rpc_service failed") as EIO */
	case ETIMEDOUT:
	case EINTR:   /* libnfs 4.0 fails a sync call that hit nfs_set_timeout with EINTR */
	case ENOTCONN:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EPIPE:
	case ESHUTDOWN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EAGAIN:
		return 1;
	default:
		return 0;
	}
}

static int run(struct nfsp_pool *p, struct nfsp_conn *c, nfsp_fn fn, void *arg)
{
	int rc = fn(c, arg);
	if (rc == -EFAULT)
		rc = -ESTALE;   /* libnfs 4.0 reports NFS3ERR_STALE as EFAULT */
	if (rc < 0 && nfsp_is_transport_error(rc)) {
		log_info("nfs: context %u: %s (%s); reconnecting", c->idx, strerror(-rc),
			 c->nfs ? nfs_get_error(c->nfs) : "not connected");
		stats_inc(nfs_errors);
		int rrc = nfsp_reconnect(p, c);
		rc = rrc ? rrc : fn(c, arg);
		if (rc == -EFAULT)
			rc = -ESTALE;
	}
	if (rc == -EINTR)
		rc = -ETIMEDOUT;   /* a timeout: never hand EINTR to a FUSE caller */
	if (rc < 0 && rc != -ENOENT && rc != -EEXIST)
		stats_inc(nfs_errors);
	nfsp_put(p, c);
	return rc;
}

int nfsp_call(struct nfsp_pool *p, int prefer, nfsp_fn fn, void *arg)
{
	struct nfsp_conn *c;
	int rc = nfsp_get(p, prefer, &c);
	return rc ? rc : run(p, c, fn, arg);
}

int nfsp_call_idx(struct nfsp_pool *p, unsigned idx, nfsp_fn fn, void *arg)
{
	struct nfsp_conn *c;
	int rc = nfsp_get_idx(p, idx, &c);
	return rc ? rc : run(p, c, fn, arg);
}
