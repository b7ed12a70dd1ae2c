/* readahead.c - read-ahead for reads served by a store (see readahead.h), after the
 * prefetcher of mountpoint-s3. It only calls store_read_stream/store_pread on a store_file
 * it was given; it never opens, closes or writes anything, and never holds more than
 * max_mem bytes of data across all handles.
 *
 * DESIGN
 * A handle (struct ra_file) holds a list of parts sorted by offset: each part is one
 * ranged read [off, off+len) into its own buffer, queued, in flight, done or failed.
 * ra_read classifies each read:
 *   - hit: a part covers off. The first read to enter a part doubles the window (up to
 *     window_max); then parts are scheduled until fetch_end >= end of read + window, each
 *     at most part_size, so the window is fetched as several parallel ranged reads.
 *   - start: off is where the previous read ended (or 0 on the first read): a sequential
 *     stream starts at off with window_min (or, when off is where the last part ended,
 *     the reader caught up with the read-ahead: the window doubles).
 *   - straggler: off is just behind the parts or in a hole between them (out-of-order
 *     parallel kernel reads, a part dropped after an error): one direct store_pread,
 *     the stream is left alone.
 *   - random: anything else. Every part is dropped, the window falls back to window_min,
 *     and the read is one direct store_pread of exactly what was asked.
 * Bytes are copied out of a part as soon as they arrive (store_read_stream feeds the part
 * chunk by chunk), so a reader waits only for the bytes it needs, and it is woken only
 * once they are there. A part is freed when all of it was read or the reader is
 * part_size past it.
 *
 * Errors: a reader whose part failed (or was dropped) before its bytes arrived asks the
 * store for exactly its own bytes. So a store error reaches exactly the reads whose bytes
 * the store cannot give (a part is larger than a read), a transient failure costs one
 * more request, and a read returns all its bytes or -errno, never a mix: every request
 * is pinned by the store itself (S3: If-Match on the ETag seen at open).
 *
 * Memory: a part's buffer (a power-of-two class, at least RA_MIN_PART) is reserved from
 * the global budget before the part is queued. Buffers of finished parts are kept in
 * g.cache for reuse (fresh pages fault one by one, which on a VM costs more than the
 * transfer) and count against the budget too; a reservation that does not fit evicts
 * cached buffers, then takes a smaller class, then gives up (the reader falls back to a
 * direct read into its own buffer); the cache is freed when no handle is open. So
 * mem_used + mem_cached <= max_mem always, whatever the files.
 *
 * THREADS
 * - Callers of ra_read/ra_open/ra_close (FUSE threads), any number, any handle.
 * - g.nthreads workers (ra_worker): take the oldest queued part (a part a reader waits on
 *   is moved to the front), fetch it, mark it done or failed, wake its readers.
 *
 * LOCKS (lock order: ra_file.lock, then g.lock; never the other way round. Neither is
 * held across a store call or a memcpy of data.)
 * - g.lock protects the queue (g.qhead/g.qtail, part.qprev/qnext/queued), the budget and
 *   the buffer cache (g.mem_used, g.mem_cached, g.mem_peak, g.cache), g.files_open,
 *   g.running and g.stopping; g.qcond signals a queued part or stopping.
 * - ra_file.lock protects everything in its ra_file (part list, window, fetch_end,
 *   last_end, inflight, closing) and in its parts (state, got, rc, refs, waiters,
 *   wake_at, consumed, touched, linked) except the fields of g.lock above; ra_file.cond signals
 *   progress of any of its parts and the end of an in-flight fetch.
 * - part.cancelled is atomic: the worker's sink reads it without a lock to abort.
 * - part.buf: bytes [0, got) are immutable once got covers them, so readers holding a
 *   reference copy them without a lock; the worker alone writes [got, len).
 *
 * LIFETIMES
 * A part is referenced by the handle's list (while linked), by the queue or the worker
 * fetching it (the "job" reference, counted in ra_file.inflight), and by each reader
 * copying from it; the last reference frees it and gives its buffer back to the cache.
 * ra_close unlinks every part, takes queued ones off the queue, flags in-flight ones
 * cancelled (their sink aborts the transfer) and waits for inflight == 0: after that no
 * worker touches the handle, the store_file or the parts, and the handle is freed. */
#include "view/readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/log.h"
#include "store/store.h"

#define RA_MIN_CLASS 18            /* 256 KiB: below this, a part is not worth a request */
#define RA_MIN_PART (1ull << RA_MIN_CLASS)
#define RA_CLASSES 48

enum ra_state { RA_QUEUED, RA_FETCHING, RA_DONE, RA_FAILED };

struct ra_part {
	struct ra_file *file;
	uint64_t off, len;
	char *buf;                 /* 1 << cls bytes, from ra_buf_get; see the header comment */
	unsigned cls;
	uint64_t got;              /* bytes of buf filled */
	uint64_t consumed;         /* bytes copied out to readers (approximate: re-reads count) */
	enum ra_state state;
	int rc;                    /* -errno when RA_FAILED */
	unsigned refs;
	unsigned waiters;          /* readers waiting in ra_part_wait */
	uint64_t wake_at;          /* wake the waiters once got reaches this (UINT64_MAX: none) */
	bool touched;              /* a read has entered this part (window doubled) */
	bool linked;               /* in its file's list */
	atomic_bool cancelled;
	struct ra_part *prev, *next;      /* file list; protected by ra_file.lock */
	struct ra_part *qprev, *qnext;    /* queue; protected by g.lock */
	bool queued;                      /* protected by g.lock */
};

struct ra_file {
	pthread_mutex_t lock;          /* this file and its parts (LOCKS above); before g.lock */
	pthread_cond_t cond;           /* a part progressed, or a fetch ended */
	struct store *st;
	struct store_file *f;
	uint64_t size;
	struct ra_part *head, *tail;   /* sorted by off, not overlapping */
	uint64_t window;
	uint64_t fetch_end;            /* end of the last part scheduled */
	uint64_t last_end;             /* end of the previous read (UINT64_MAX: none yet) */
	unsigned inflight;             /* job references: parts queued or being fetched */
	bool closing;
};

static struct {
	pthread_mutex_t lock;          /* queue, budget, buffer cache, files_open, run state */
	pthread_cond_t qcond;          /* a part was queued, or stopping */
	bool running;
	bool stopping;
	struct ra_config cfg;
	pthread_t *threads;
	unsigned nthreads;
	struct ra_part *qhead, *qtail;
	uint64_t mem_used, mem_peak;   /* bytes in parts' buffers; peak of used + cached */
	uint64_t mem_cached;           /* bytes in g.cache */
	char *cache[RA_CLASSES];       /* idle buffers of 1 << class bytes, chained in place */
	uint64_t files_open;
	atomic_uint_fast64_t reads, hits, misses, bytes_served, bytes_fetched, bytes_direct,
		parts, parts_cancelled, errors;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER, .qcond = PTHREAD_COND_INITIALIZER };

#define ra_count(field, n) atomic_fetch_add_explicit(&g.field, (n), memory_order_relaxed)

/* ------------------------------------------------------------------------------------
 * budget and queue (g.lock) */

/* Part buffers come in power-of-two classes and are recycled through g.cache: on this
 * kind of machine (a VM) the page faults of fresh buffers cost more than the transfer.
 * Every buffer, in a part or cached, counts against max_mem; cached ones are freed when
 * a reservation needs their room and when the last handle closes. */
static unsigned ra_class(uint64_t n)
{
	unsigned c = 0;
	while ((1ull << c) < n)
		c++;
	return c;
}

/* g.lock held. Take a buffer of class c from the cache, or NULL. */
static char *ra_cache_take(unsigned c)
{
	char *b = g.cache[c];
	if (b) {
		memcpy(&g.cache[c], b, sizeof(char *));
		g.mem_cached -= 1ull << c;
	}
	return b;
}

/* g.lock held. Move cached buffers to *evicted until `room` bytes fit under the cap. */
static void ra_cache_evict(uint64_t room, char **evicted)
{
	for (unsigned c = 0; c < RA_CLASSES && g.mem_used + g.mem_cached + room > g.cfg.max_mem;
	     c++) {
		char *b;
		while (g.mem_used + g.mem_cached + room > g.cfg.max_mem && (b = ra_cache_take(c))) {
			memcpy(b, evicted, sizeof(char *));
			*evicted = b;
		}
	}
}

static void ra_free_list(char *b)
{
	while (b) {
		char *next;
		memcpy(&next, b, sizeof(char *));
		free(b);
		b = next;
	}
}

/* A buffer for a part of up to `want` bytes: *len gets the part's length (want, or less
 * when the budget is short, never below RA_MIN_PART unless want is), *cap the buffer's
 * class size. NULL when the budget cannot give one (or malloc fails). */
/* A fresh buffer. Large ones are aligned and asked to use transparent huge pages: in a
 * VM, faulting in 4 KiB pages one by one costs more than receiving the bytes. */
static char *ra_alloc(size_t n)
{
	const size_t huge = 2u << 20;
	void *b = NULL;
	if (n < huge)
		return malloc(n);
	if (posix_memalign(&b, huge, n))
		return NULL;
	(void)madvise(b, n, MADV_HUGEPAGE);   /* advice only: fine where THP is off */
	return b;
}

static char *ra_buf_get(uint64_t want, uint64_t *len, unsigned *cls)
{
	char *b, *evicted = NULL;
	bool fresh = false;
	unsigned c = ra_class(want < RA_MIN_PART ? RA_MIN_PART : want);
	pthread_mutex_lock(&g.lock);
	b = ra_cache_take(c);
	if (!b) {
		ra_cache_evict(1ull << c, &evicted);
		uint64_t avail = g.cfg.max_mem - g.mem_used - g.mem_cached;
		while ((1ull << c) > avail && c > RA_MIN_CLASS)
			c--;                              /* short of budget: a smaller part */
		if ((1ull << c) <= avail) {
			b = ra_cache_take(c);
			fresh = !b;
		}
	}
	if (b || fresh) {
		g.mem_used += 1ull << c;                  /* reserved before malloc */
		if (g.mem_used + g.mem_cached > g.mem_peak)
			g.mem_peak = g.mem_used + g.mem_cached;
	}
	pthread_mutex_unlock(&g.lock);
	ra_free_list(evicted);
	if (fresh && !(b = ra_alloc(1ull << c))) {
		pthread_mutex_lock(&g.lock);
		g.mem_used -= 1ull << c;
		pthread_mutex_unlock(&g.lock);
	}
	if (!b)
		return NULL;
	*cls = c;
	*len = want < (1ull << c) ? want : 1ull << c;
	return b;
}

/* g.lock held: take every cached buffer (to free after unlocking). */
static char *ra_cache_drain(void)
{
	char *all = NULL, *b;
	for (unsigned c = 0; c < RA_CLASSES; c++)
		while ((b = ra_cache_take(c))) {
			memcpy(b, &all, sizeof(char *));
			all = b;
		}
	return all;
}

/* Give a part's buffer back: to the cache (it stays within the cap). */
static void ra_buf_put(char *b, unsigned c)
{
	pthread_mutex_lock(&g.lock);
	g.mem_used -= 1ull << c;
	memcpy(b, &g.cache[c], sizeof(char *));
	g.cache[c] = b;
	g.mem_cached += 1ull << c;
	pthread_mutex_unlock(&g.lock);
}

/* g.lock held */
static void ra_queue_unlink(struct ra_part *p)
{
	if (p->qprev)
		p->qprev->qnext = p->qnext;
	else
		g.qhead = p->qnext;
	if (p->qnext)
		p->qnext->qprev = p->qprev;
	else
		g.qtail = p->qprev;
	p->qprev = p->qnext = NULL;
	p->queued = false;
}

/* g.lock held */
static void ra_queue_push(struct ra_part *p, bool front)
{
	p->queued = true;
	if (front) {
		p->qprev = NULL;
		p->qnext = g.qhead;
		if (g.qhead)
			g.qhead->qprev = p;
		else
			g.qtail = p;
		g.qhead = p;
	} else {
		p->qnext = NULL;
		p->qprev = g.qtail;
		if (g.qtail)
			g.qtail->qnext = p;
		else
			g.qhead = p;
		g.qtail = p;
	}
}

/* ------------------------------------------------------------------------------------
 * parts (ra_file.lock held in every function of this section) */

static void ra_part_unref(struct ra_part *p)
{
	if (--p->refs > 0)
		return;
	ra_buf_put(p->buf, p->cls);
	free(p);
}

/* Drop the list's reference; a queued part also loses its job reference, a part in
 * flight is flagged so that its transfer aborts. */
static void ra_part_unlink(struct ra_file *rf, struct ra_part *p)
{
	if (!p->linked)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		rf->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		rf->tail = p->prev;
	p->prev = p->next = NULL;
	p->linked = false;
	if (p->state == RA_QUEUED || p->state == RA_FETCHING) {
		atomic_store(&p->cancelled, true);
		ra_count(parts_cancelled, 1);
		bool was_queued = false;
		pthread_mutex_lock(&g.lock);
		if (p->queued) {
			ra_queue_unlink(p);
			was_queued = true;
		}
		pthread_mutex_unlock(&g.lock);
		if (was_queued) {
			/* never fetched: readers waiting on it read directly instead */
			p->state = RA_FAILED;
			p->rc = -ECANCELED;
			pthread_cond_broadcast(&rf->cond);
			rf->inflight--;
			p->refs--;      /* the job reference; the list's one is dropped below */
		}
	}
	ra_part_unref(p);
}

static void ra_drop_all(struct ra_file *rf)
{
	while (rf->head)
		ra_part_unlink(rf, rf->head);
}

static struct ra_part *ra_find(struct ra_file *rf, uint64_t off)
{
	for (struct ra_part *p = rf->head; p; p = p->next) {
		if (off < p->off)
			return NULL;
		if (off < p->off + p->len)
			return p;
	}
	return NULL;
}

/* Offset of the first part that begins after off, or limit. */
static uint64_t ra_next_start(struct ra_file *rf, uint64_t off, uint64_t limit)
{
	for (struct ra_part *p = rf->head; p; p = p->next)
		if (p->off > off)
			return p->off < limit ? p->off : limit;
	return limit;
}

/* Queue parts from fetch_end until it reaches target (or the budget says no). */
static void ra_schedule(struct ra_file *rf, uint64_t target)
{
	if (target > rf->size)
		target = rf->size;
	while (rf->fetch_end < target) {
		uint64_t want = rf->size - rf->fetch_end;
		uint64_t cap = rf->window < g.cfg.part_size ? rf->window : g.cfg.part_size;
		if (want > cap)
			want = cap;
		uint64_t len;
		unsigned cls;
		char *buf = ra_buf_get(want, &len, &cls);
		if (!buf)
			break;
		struct ra_part *p = calloc(1, sizeof(*p));
		if (!p) {
			ra_buf_put(buf, cls);
			break;
		}
		p->buf = buf;
		p->cls = cls;
		p->file = rf;
		p->off = rf->fetch_end;
		p->len = len;
		p->state = RA_QUEUED;
		p->wake_at = UINT64_MAX;
		p->refs = 2;            /* the list and the job */
		p->linked = true;
		atomic_init(&p->cancelled, false);
		p->prev = rf->tail;
		if (rf->tail)
			rf->tail->next = p;
		else
			rf->head = p;
		rf->tail = p;
		rf->fetch_end += len;
		rf->inflight++;
		pthread_mutex_lock(&g.lock);
		ra_queue_push(p, false);
		pthread_cond_signal(&g.qcond);
		pthread_mutex_unlock(&g.lock);
	}
}

/* Free parts the reader has gone past (by more than part_size: parallel kernel reads
 * arrive slightly out of order) and parts read whole. */
static void ra_trim(struct ra_file *rf, uint64_t off)
{
	struct ra_part *p = rf->head, *next;
	for (; p; p = next) {
		next = p->next;
		if (p->off + p->len + g.cfg.part_size <= off ||
		    (p->state == RA_DONE && p->consumed >= p->len))
			ra_part_unlink(rf, p);
		else if (p->off >= off)
			break;
	}
}

/* Wait until p holds its first `need` bytes or failed. Returns 0 or -errno. */
static int ra_part_wait(struct ra_file *rf, struct ra_part *p, uint64_t need)
{
	bool urged = false;
	while (p->got < need && (p->state == RA_QUEUED || p->state == RA_FETCHING)) {
		if (!urged) {
			/* a reader waits for it: it goes before any mere read-ahead */
			pthread_mutex_lock(&g.lock);
			if (p->queued && g.qhead != p) {
				ra_queue_unlink(p);
				ra_queue_push(p, true);
			}
			pthread_mutex_unlock(&g.lock);
			urged = true;
		}
		p->waiters++;
		if (need < p->wake_at)
			p->wake_at = need;
		pthread_cond_wait(&rf->cond, &rf->lock);
		p->waiters--;
	}
	if (p->got >= need)
		return 0;
	return p->rc ? p->rc : -EIO;
}

/* ------------------------------------------------------------------------------------
 * the workers */

/* n more bytes of p arrived (rf->lock held): wake its readers only once the first of
 * them can go on, not on every chunk of the transfer. */
static void ra_part_grow(struct ra_file *rf, struct ra_part *p, uint64_t n)
{
	p->got += n;
	if (p->waiters && p->got >= p->wake_at) {
		p->wake_at = UINT64_MAX;     /* readers still short of their bytes set it again */
		pthread_cond_broadcast(&rf->cond);
	}
}

static int ra_sink(void *arg, const void *data, size_t len)
{
	struct ra_part *p = arg;
	struct ra_file *rf = p->file;
	if (atomic_load_explicit(&p->cancelled, memory_order_relaxed))
		return -ECANCELED;
	/* only this thread changes got, so reading it without the lock is safe */
	if (len > p->len - p->got)
		return -EIO;     /* the store gave more than asked: never trust such a part */
	memcpy(p->buf + p->got, data, len);
	pthread_mutex_lock(&rf->lock);
	ra_part_grow(rf, p, len);
	pthread_mutex_unlock(&rf->lock);
	return 0;
}

static int ra_fetch(struct ra_part *p)
{
	struct ra_file *rf = p->file;
	if (rf->st->ops->read_stream) {
		int rc = store_read_stream(rf->st, rf->f, p->off, p->len, ra_sink, p);
		if (rc)
			return rc;
		return p->got == p->len ? 0 : -EIO;  /* a short part: not the object we opened */
	}
	while (p->got < p->len) {
		if (atomic_load_explicit(&p->cancelled, memory_order_relaxed))
			return -ECANCELED;
		ssize_t n = store_pread(rf->st, rf->f, p->buf + p->got, p->len - p->got,
					p->off + p->got);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		pthread_mutex_lock(&rf->lock);
		ra_part_grow(rf, p, (uint64_t)n);
		pthread_mutex_unlock(&rf->lock);
	}
	return 0;
}

static void *ra_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.lock);
	for (;;) {
		while (!g.qhead && !g.stopping)
			pthread_cond_wait(&g.qcond, &g.lock);
		if (g.stopping)
			break;
		struct ra_part *p = g.qhead;
		ra_queue_unlink(p);
		pthread_mutex_unlock(&g.lock);

		struct ra_file *rf = p->file;
		pthread_mutex_lock(&rf->lock);
		p->state = RA_FETCHING;
		pthread_mutex_unlock(&rf->lock);
		ra_count(parts, 1);

		int rc = atomic_load(&p->cancelled) ? -ECANCELED : ra_fetch(p);
		ra_count(bytes_fetched, p->got);

		pthread_mutex_lock(&rf->lock);
		if (rc) {
			p->state = RA_FAILED;
			p->rc = rc;
			if (rc != -ECANCELED) {
				ra_count(errors, 1);
				log_info("readahead: fetch of [%llu, +%llu) failed: %s",
					 (unsigned long long)p->off, (unsigned long long)p->len,
					 strerror(-rc));
			}
		} else {
			p->state = RA_DONE;
		}
		rf->inflight--;
		ra_part_unref(p);                   /* the job reference */
		pthread_cond_broadcast(&rf->cond);  /* readers of p, and ra_close */
		pthread_mutex_unlock(&rf->lock);    /* rf may be freed right after this */

		pthread_mutex_lock(&g.lock);
	}
	pthread_mutex_unlock(&g.lock);
	return NULL;
}

/* ------------------------------------------------------------------------------------
 * the API */

int ra_init(const struct ra_config *cfg)
{
	struct ra_config c = cfg ? *cfg : (struct ra_config){ 0 };
	int rc = 0;
	if (!c.max_mem)
		c.max_mem = RA_DEFAULT_MAX_MEM;
	if (!c.part_size)
		c.part_size = RA_DEFAULT_PART_SIZE;
	if (!c.window_min)
		c.window_min = RA_DEFAULT_WINDOW_MIN;
	if (!c.window_max)
		c.window_max = RA_DEFAULT_WINDOW_MAX;
	if (!c.threads)
		c.threads = RA_DEFAULT_THREADS;
	if (c.window_min > c.window_max)
		return -EINVAL;

	pthread_mutex_lock(&g.lock);
	if (g.running) {
		pthread_mutex_unlock(&g.lock);
		return -EALREADY;
	}
	g.running = true;
	g.stopping = false;
	g.cfg = c;
	g.mem_used = g.mem_peak = g.mem_cached = 0;
	g.files_open = 0;
	g.qhead = g.qtail = NULL;
	pthread_mutex_unlock(&g.lock);
	atomic_store(&g.reads, 0);
	atomic_store(&g.hits, 0);
	atomic_store(&g.misses, 0);
	atomic_store(&g.bytes_served, 0);
	atomic_store(&g.bytes_fetched, 0);
	atomic_store(&g.bytes_direct, 0);
	atomic_store(&g.parts, 0);
	atomic_store(&g.parts_cancelled, 0);
	atomic_store(&g.errors, 0);

	g.threads = calloc(c.threads, sizeof(*g.threads));
	if (!g.threads) {
		rc = -ENOMEM;
		goto out_stop;
	}
	for (g.nthreads = 0; g.nthreads < c.threads; g.nthreads++) {
		int e = pthread_create(&g.threads[g.nthreads], NULL, ra_worker, NULL);
		if (e) {
			rc = -e;
			goto out_stop;
		}
	}
	log_info("readahead: %u workers, window %llu..%llu KiB, parts of %llu KiB, cap %llu MiB",
		 c.threads, (unsigned long long)(c.window_min >> 10),
		 (unsigned long long)(c.window_max >> 10), (unsigned long long)(c.part_size >> 10),
		 (unsigned long long)(c.max_mem >> 20));
	return 0;
out_stop:
	ra_shutdown();
	return rc;
}

void ra_shutdown(void)
{
	pthread_mutex_lock(&g.lock);
	if (!g.running) {
		pthread_mutex_unlock(&g.lock);
		return;
	}
	if (g.files_open)
		log_warn("readahead: shutting down with %llu handles still open",
			 (unsigned long long)g.files_open);
	g.stopping = true;
	pthread_cond_broadcast(&g.qcond);
	pthread_mutex_unlock(&g.lock);
	for (unsigned i = 0; i < g.nthreads; i++)
		pthread_join(g.threads[i], NULL);
	free(g.threads);
	g.threads = NULL;
	g.nthreads = 0;
	pthread_mutex_lock(&g.lock);
	char *idle = ra_cache_drain();
	g.running = false;
	pthread_mutex_unlock(&g.lock);
	ra_free_list(idle);
}

int ra_open(struct store *st, struct store_file *f, uint64_t size, struct ra_file **out)
{
	pthread_mutex_lock(&g.lock);
	bool running = g.running && !g.stopping;
	if (running)
		g.files_open++;
	pthread_mutex_unlock(&g.lock);
	if (!running)
		return -ENXIO;
	struct ra_file *rf = calloc(1, sizeof(*rf));
	if (!rf)
		goto out_count;
	pthread_mutex_init(&rf->lock, NULL);
	pthread_cond_init(&rf->cond, NULL);
	rf->st = st;
	rf->f = f;
	rf->size = size;
	rf->window = g.cfg.window_min;
	rf->last_end = UINT64_MAX;
	*out = rf;
	return 0;
out_count:
	pthread_mutex_lock(&g.lock);
	g.files_open--;
	pthread_mutex_unlock(&g.lock);
	return -ENOMEM;
}

void ra_close(struct ra_file *rf)
{
	if (!rf)
		return;
	pthread_mutex_lock(&rf->lock);
	rf->closing = true;
	ra_drop_all(rf);
	while (rf->inflight)
		pthread_cond_wait(&rf->cond, &rf->lock);
	pthread_mutex_unlock(&rf->lock);
	pthread_cond_destroy(&rf->cond);
	pthread_mutex_destroy(&rf->lock);
	free(rf);
	char *idle = NULL;
	pthread_mutex_lock(&g.lock);
	if (--g.files_open == 0)
		idle = ra_cache_drain();     /* nothing is read: give the memory back */
	pthread_mutex_unlock(&g.lock);
	ra_free_list(idle);
}

/* Decide how this read relates to the stream and schedule read-ahead (rf->lock held).
 * Returns true when the read was random (the stream was reset). */
static bool ra_plan(struct ra_file *rf, uint64_t off, uint64_t end)
{
	struct ra_part *p = ra_find(rf, off);
	if (p) {                                         /* hit */
		if (!p->touched) {
			p->touched = true;
			rf->window *= 2;
			if (rf->window > g.cfg.window_max)
				rf->window = g.cfg.window_max;
		}
	} else if (rf->head && off + g.cfg.part_size >= rf->head->off && off < rf->fetch_end) {
		return false;                            /* straggler or hole: read it directly */
	} else if (off == rf->last_end || (rf->last_end == UINT64_MAX && off == 0)) {
		if (off != rf->fetch_end || !rf->head) {
			rf->window = g.cfg.window_min;   /* a new stream */
		} else {
			rf->window *= 2;                 /* the reader caught up: a bigger window */
			if (rf->window > g.cfg.window_max)
				rf->window = g.cfg.window_max;
		}
		ra_drop_all(rf);
		rf->fetch_end = off;
	} else {                                         /* random */
		ra_drop_all(rf);
		rf->window = g.cfg.window_min;
		rf->fetch_end = off;
		return true;
	}
	ra_schedule(rf, end + rf->window);       /* the window lies beyond this read */
	return false;
}

ssize_t ra_read(struct ra_file *rf, void *buf, size_t len, uint64_t off)
{
	if (off >= rf->size || len == 0)
		return 0;
	if (len > rf->size - off)
		len = (size_t)(rf->size - off);
	uint64_t end = off + len, pos = off;
	bool direct = false;
	int rc = 0;

	pthread_mutex_lock(&rf->lock);
	ra_trim(rf, off);
	if (ra_plan(rf, off, end) || rf->last_end == UINT64_MAX || end > rf->last_end)
		rf->last_end = end;
	while (pos < end) {
		struct ra_part *p = ra_find(rf, pos);
		if (!p) {
			uint64_t stop = ra_next_start(rf, pos, end);
			pthread_mutex_unlock(&rf->lock);
			ssize_t n = store_pread(rf->st, rf->f, (char *)buf + (pos - off),
						stop - pos, pos);
			pthread_mutex_lock(&rf->lock);
			direct = true;
			if (n < 0) {
				rc = (int)n;
				break;
			}
			ra_count(bytes_direct, (uint64_t)n);
			if (n == 0) {
				rc = -EIO;      /* shorter than at open: not the object we pinned */
				break;
			}
			pos += (uint64_t)n;
			continue;
		}
		uint64_t take = (end < p->off + p->len ? end : p->off + p->len) - pos;
		p->refs++;
		if (ra_part_wait(rf, p, pos - p->off + take)) {
			/* The part failed (or was dropped by a random read on this handle) before
			 * our bytes arrived. Ask the store for exactly our bytes: the error then
			 * reaches exactly the reads whose own bytes the store cannot give (a part
			 * is larger than a read), and a transient failure costs one retry. */
			ra_part_unlink(rf, p);
			ra_part_unref(p);
			continue;
		}
		pthread_mutex_unlock(&rf->lock);
		memcpy((char *)buf + (pos - off), p->buf + (pos - p->off), take);
		pthread_mutex_lock(&rf->lock);
		p->consumed += take;
		if (p->consumed >= p->len && p->linked)
			ra_part_unlink(rf, p);
		ra_part_unref(p);
		pos += take;
	}
	pthread_mutex_unlock(&rf->lock);

	ra_count(reads, 1);
	if (direct)
		ra_count(misses, 1);
	else
		ra_count(hits, 1);
	if (rc)
		return rc;
	ra_count(bytes_served, len);
	return (ssize_t)len;
}

void ra_stats(struct ra_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&g.lock);
	if (!g.running) {
		pthread_mutex_unlock(&g.lock);
		return;
	}
	out->mem_used = g.mem_used;
	out->mem_cached = g.mem_cached;
	out->mem_peak = g.mem_peak;
	out->mem_max = g.cfg.max_mem;
	out->files_open = g.files_open;
	pthread_mutex_unlock(&g.lock);
	out->reads = atomic_load(&g.reads);
	out->hits = atomic_load(&g.hits);
	out->misses = atomic_load(&g.misses);
	out->bytes_served = atomic_load(&g.bytes_served);
	out->bytes_fetched = atomic_load(&g.bytes_fetched);
	out->bytes_direct = atomic_load(&g.bytes_direct);
	out->parts = atomic_load(&g.parts);
	out->parts_cancelled = atomic_load(&g.parts_cancelled);
	out->errors = atomic_load(&g.errors);
}
