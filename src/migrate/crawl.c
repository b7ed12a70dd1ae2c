/* crawl.c - the crawl: jobs that list S3 recursively and queue what they find (see crawl.h).
 *
 * DESIGN. One thread runs every job, one ListObjectsV2 page (1000 keys, no delimiter) at a
 * time: copy-up jobs (migrate=now on a directory) before crawl jobs, crawl jobs before
 * scans, round robin among equals. For each page it
 *   1. feeds every key through the shadow detector (an object "a" waits until the listing
 *      passes "a/"; a key under "a/" shadows it),
 *   2. for each decided object of its shard: unreachable keys are counted (never queued),
 *      shadowed ones counted, others queued in the ledger unless already migrated,
 *   3. writes the checkpoint: the key before the first object still waiting, or the
 *      page's last key, so a job resumed after a crash or unmount lists that key again
 *      and loses nothing (what it queues twice the ledger de-duplicates).
 * Back-pressure: while more than CRAWL_QUEUE_HIGH entries wait at the job's priority the
 * thread sleeps until fewer than CRAWL_QUEUE_LOW do, so the queue never balloons.
 *
 * Locks: crawl_lock protects the jobs[] table, gen[], pos[] and crawl_stopping. It is held
 * for short checkpoint writes (ledger calls, never S3 calls); nothing else is taken under
 * it except the ledger's own locks. */
#include "migrate/crawl.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cfg.h"
#include "view/ferry.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
#include "s3/client.h"
#include "base/stats.h"
#include "base/util.h"

/* ---- pure helpers ------------------------------------------------------------------ */

unsigned crawl_shard_of(const char *key, unsigned n)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *s = key; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return n ? (unsigned)(h % n) : 0;
}

int crawl_parse(const char *value, struct crawl_spec *out)
{
	memset(out, 0, sizeof(*out));
	out->shard_n = 1;
	out->prio = LEDGER_PRIO_CRAWL;
	const char *p = value;
	while (*p == ' ')
		p++;
	if (!strcmp(p, "scan")) {
		out->kind = CRAWL_SCAN;
		return 0;
	}
	if (strncmp(p, "crawl", 5) || (p[5] && p[5] != ' '))
		return -EINVAL;
	p += 5;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			return 0;
		if (!strncmp(p, "prefix=", 7)) {
			size_t n = strlen(p + 7);
			if (n >= sizeof(out->prefix) || memchr(p + 7, '/', n))
				return -EINVAL;   /* a name prefix in the directory, not a path */
			memcpy(out->prefix, p + 7, n + 1);
			return 0;
		}
		if (!strncmp(p, "shard=", 6)) {
			unsigned i, n;
			int used = 0;
			if (sscanf(p + 6, "%u/%u%n", &i, &n, &used) != 2 || n == 0 || n > 1000000 ||
			    i >= n || (p[6 + used] && p[6 + used] != ' '))
				return -EINVAL;
			out->shard_i = i;
			out->shard_n = n;
			p += 6 + used;
			continue;
		}
		return -EINVAL;
	}
}

int crawl_key_prefix(const char *s3_prefix, const struct crawl_spec *s, struct buf *out)
{
	int rc = buf_puts(out, s3_prefix ? s3_prefix : "");
	if (!rc && strcmp(s->dir, "/") && s->dir[0])
		rc = buf_printf(out, "%s/", s->dir + 1);
	if (!rc)
		rc = buf_puts(out, s->prefix);
	return rc;
}

int crawl_escape(const char *s, struct buf *out)
{
	int rc = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++)
		rc = (*p <= ' ' || *p == '%' || *p == 0x7f) ? buf_printf(out, "%%%02X", *p) :
							       buf_append(out, p, 1);
	return rc;
}

int crawl_unescape(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	for (const char *p = s; *p; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int h = util_hexval((unsigned char)p[1]),
			    l = h < 0 ? -1 : util_hexval((unsigned char)p[2]);
			if (l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			c = h * 16 + l;
			p += 2;
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static const char *const state_names[] = { "none", "running", "done", "stopped", "failed" };

const char *crawl_state_name(int state)
{
	return state >= 0 && state < (int)ARRAY_SIZE(state_names) ? state_names[state] : "?";
}

int crawl_job_format(const struct crawl_job *j, struct buf *b)
{
	int rc = buf_printf(b, "kind %s\nstate %s\nprio %d\nshard %u/%u\nstarted %" PRId64
			    "\nfinished %" PRId64 "\nlisted %" PRIu64 "\nqueued %" PRIu64
			    "\nskipped %" PRIu64 "\nunreachable %" PRIu64 "\nshadowed %" PRIu64
			    "\npages %" PRIu64 "\ndir ",
			    j->spec.kind == CRAWL_SCAN ? "scan" : "queue",
			    crawl_state_name(j->state), j->spec.prio, j->spec.shard_i,
			    j->spec.shard_n, j->started, j->finished, j->listed, j->queued,
			    j->skipped, j->unreachable, j->shadowed, j->pages);
	if (!rc)
		rc = crawl_escape(j->spec.dir, b);
	if (!rc)
		rc = buf_puts(b, "\nprefix ");
	if (!rc && j->spec.prefix[0])
		rc = crawl_escape(j->spec.prefix, b);
	if (!rc && j->error[0]) {
		rc = buf_puts(b, "\nerror ");
		if (!rc)
			rc = crawl_escape(j->error, b);
	}
	if (!rc)
		rc = buf_puts(b, "\n");
	return rc;
}

int crawl_job_parse(const char *text, struct crawl_job *j)
{
	memset(j, 0, sizeof(*j));
	j->spec.shard_n = 1;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[LEDGER_CKPT_MAX], key[32], val[LEDGER_CKPT_MAX];
		if (len >= sizeof(line))
			return -EINVAL;
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl ? 1 : 0);
		char *sp = strchr(line, ' ');
		if (!sp || (size_t)(sp - line) >= sizeof(key))
			continue;
		memcpy(key, line, (size_t)(sp - line));
		key[sp - line] = '\0';
		snprintf(val, sizeof(val), "%s", sp + 1);
		if (!strcmp(key, "kind"))
			j->spec.kind = !strcmp(val, "scan") ? CRAWL_SCAN : CRAWL_QUEUE;
		else if (!strcmp(key, "state")) {
			for (int s = 0; s < (int)ARRAY_SIZE(state_names); s++)
				if (!strcmp(val, state_names[s]))
					j->state = s;
		} else if (!strcmp(key, "prio"))
			j->spec.prio = atoi(val);
		else if (!strcmp(key, "shard")) {
			if (sscanf(val, "%u/%u", &j->spec.shard_i, &j->spec.shard_n) != 2 ||
			    !j->spec.shard_n || j->spec.shard_i >= j->spec.shard_n)
				return -EINVAL;
		} else if (!strcmp(key, "started"))
			j->started = strtoll(val, NULL, 10);
		else if (!strcmp(key, "finished"))
			j->finished = strtoll(val, NULL, 10);
		else if (!strcmp(key, "listed"))
			j->listed = strtoull(val, NULL, 10);
		else if (!strcmp(key, "queued"))
			j->queued = strtoull(val, NULL, 10);
		else if (!strcmp(key, "skipped"))
			j->skipped = strtoull(val, NULL, 10);
		else if (!strcmp(key, "unreachable"))
			j->unreachable = strtoull(val, NULL, 10);
		else if (!strcmp(key, "shadowed"))
			j->shadowed = strtoull(val, NULL, 10);
		else if (!strcmp(key, "pages"))
			j->pages = strtoull(val, NULL, 10);
		else if (!strcmp(key, "dir")) {
			if (crawl_unescape(val, j->spec.dir, sizeof(j->spec.dir)))
				return -EINVAL;
		} else if (!strcmp(key, "prefix")) {
			if (crawl_unescape(val, j->spec.prefix, sizeof(j->spec.prefix)))
				return -EINVAL;
		} else if (!strcmp(key, "error")) {
			if (crawl_unescape(val, j->error, sizeof(j->error)))
				j->error[0] = '\0';
		}
	}
	return j->spec.dir[0] == '/' ? 0 : -EINVAL;
}

int crawl_job_load(struct ledger *l, int slot, struct crawl_job *j)
{
	char name[32], text[LEDGER_CKPT_MAX];
	snprintf(name, sizeof(name), "crawl.%d", slot);
	int rc = ledger_ckpt_get(l, name, text, sizeof(text));
	if (rc < 0)
		return rc;
	if (!text[0])
		return -ENOENT;         /* a deleted checkpoint */
	if ((rc = crawl_job_parse(text, j)))
		return rc;
	snprintf(name, sizeof(name), "crawl.%d.last", slot);
	rc = ledger_ckpt_get(l, name, j->last, sizeof(j->last));
	if (rc == -ENOENT)
		j->last[0] = '\0';
	else if (rc < 0)
		return rc;
	return 0;
}

int crawl_job_save(struct ledger *l, int slot, const struct crawl_job *j, int with_last)
{
	char name[32];
	struct buf b = { 0 };
	int rc = crawl_job_format(j, &b);
	if (!rc && b.len >= LEDGER_CKPT_MAX)
		rc = -ENAMETOOLONG;
	if (!rc && with_last) {
		snprintf(name, sizeof(name), "crawl.%d.last", slot);
		rc = ledger_ckpt_put(l, name, j->last);
	}
	if (!rc) {
		snprintf(name, sizeof(name), "crawl.%d", slot);
		rc = ledger_ckpt_put(l, name, b.data);
	}
	buf_free(&b);
	return rc;
}

/* ---- shadow detection ------------------------------------------------------------ */

/* Does key lie under dir + "/"? */
static int under(const char *key, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(key, dir, n) == 0 && key[n] == '/';
}

/* Has a sorted listing at key passed every key that starts with w + "/"? */
static int passed(const char *key, const char *w)
{
	size_t n = strlen(w);
	int c = strncmp(key, w, n);
	if (c != 0)
		return c > 0;
	return (unsigned char)key[n] > '/';
}

static int shadow_pop(struct crawl_shadow *s, int (*emit)(void *, const char *, int), void *arg)
{
	char *k = s->keys[0], *pv = s->prev[0];
	int sh = k[strlen(k) + 1];           /* the flag byte after the NUL */
	s->n--;
	memmove(s->keys, s->keys + 1, s->n * sizeof(*s->keys));
	memmove(s->prev, s->prev + 1, s->n * sizeof(*s->prev));
	int rc = emit(arg, k, sh);
	free(k);
	free(pv);
	return rc;
}

int crawl_shadow_feed(struct crawl_shadow *s, const char *key, const char *prev,
		      int (*emit)(void *arg, const char *key, int shadowed), void *arg)
{
	int rc;
	for (size_t i = 0; i < s->n; i++)
		if (under(key, s->keys[i]))
			s->keys[i][strlen(s->keys[i]) + 1] = 1;
	while (s->n) {
		const char *w = s->keys[0];
		if (!w[strlen(w) + 1] && !passed(key, w))
			break;
		if ((rc = shadow_pop(s, emit, arg)))
			return rc;
	}
	size_t kl = strlen(key);
	if (!kl || key[kl - 1] == '/')
		return 0;                    /* a directory marker: not an object */
	if (prev && under(prev, key))
		return emit(arg, key, 1);    /* a listing that puts a directory's keys before the
					      * object of the same name (s3rver; real S3 sorts) */
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **k = realloc(s->keys, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		s->keys = k;
		char **p = realloc(s->prev, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->prev = p;
		s->cap = cap;
	}
	char *k = malloc(kl + 2);
	char *p = prev && prev[0] ? strdup(prev) : NULL;
	if (!k || (prev && prev[0] && !p)) {
		free(k);
		free(p);
		return -ENOMEM;
	}
	memcpy(k, key, kl + 1);
	k[kl + 1] = 0;                       /* the shadowed flag */
	s->keys[s->n] = k;
	s->prev[s->n] = p;
	s->n++;
	return 0;
}

int crawl_shadow_flush(struct crawl_shadow *s,
		       int (*emit)(void *arg, const char *key, int shadowed), void *arg)
{
	int rc;
	while (s->n)
		if ((rc = shadow_pop(s, emit, arg)))
			return rc;
	return 0;
}

const char *crawl_shadow_resume(const struct crawl_shadow *s, const char *last)
{
	if (s->n)
		return s->prev[0];
	return last && last[0] ? last : NULL;
}

void crawl_shadow_free(struct crawl_shadow *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->keys[i]);
		free(s->prev[i]);
	}
	free(s->keys);
	free(s->prev);
	memset(s, 0, sizeof(*s));
}

/* ---- the daemon's crawl thread ----------------------------------------------------- */

static pthread_mutex_t crawl_lock = PTHREAD_MUTEX_INITIALIZER;  /* jobs, gen, pos, stopping */
static pthread_cond_t crawl_cond = PTHREAD_COND_INITIALIZER;    /* a job changed, or stop */
static struct ferry *crawl_fy;           /* set at start */
static struct crawl_hooks crawl_hooks;   /* set at start, before the thread */
static pthread_t crawl_thread;
static int crawl_running;                /* the thread exists */
static int crawl_stopping;               /* protected by crawl_lock */
static struct crawl_job jobs[CRAWL_SLOTS];   /* protected by crawl_lock */
static unsigned gen[CRAWL_SLOTS];        /* bumped when a slot's job is replaced or stopped */
static char pos[CRAWL_SLOTS][CRAWL_KEY_MAX];  /* where the listing goes on (>= the checkpoint) */
static struct crawl_shadow shadows[CRAWL_SLOTS];  /* the crawl thread's only */
static int rr;

static int same_spec(const struct crawl_spec *a, const struct crawl_spec *b)
{
	return a->kind == b->kind && a->prio == b->prio && a->shard_i == b->shard_i &&
	       a->shard_n == b->shard_n && !strcmp(a->dir, b->dir) && !strcmp(a->prefix, b->prefix);
}

static int rank(const struct crawl_job *j)
{
	return j->spec.kind == CRAWL_SCAN ? LEDGER_NPRIO : j->spec.prio;
}

int crawl_request(struct ferry *fy, const char *dir, const struct crawl_spec *spec_in)
{
	struct crawl_spec spec = *spec_in;
	if (strlen(dir) + strlen(spec.prefix) >= CRAWL_DIR_MAX - 1)
		return -ENAMETOOLONG;
	snprintf(spec.dir, sizeof(spec.dir), "%s", dir);
	pthread_mutex_lock(&crawl_lock);
	int slot = -1, rc = 0;
	for (int i = 0; i < CRAWL_SLOTS && slot < 0; i++)
		if (jobs[i].state != CRAWL_NONE && same_spec(&jobs[i].spec, &spec))
			slot = i;
	if (slot >= 0 && jobs[slot].state == CRAWL_RUNNING)
		goto out;                           /* already running: nothing to do */
	if (slot >= 0 && (jobs[slot].state == CRAWL_STOPPED || jobs[slot].state == CRAWL_FAILED)) {
		jobs[slot].state = CRAWL_RUNNING;   /* resume from its checkpoint */
		jobs[slot].error[0] = '\0';
		jobs[slot].finished = 0;
		gen[slot]++;
		rc = crawl_job_save(fy->ledger, slot, &jobs[slot], 0);
		goto out_wake;
	}
	if (slot < 0) {
		for (int i = 0; i < CRAWL_SLOTS && slot < 0; i++)
			if (jobs[i].state == CRAWL_NONE)
				slot = i;
		for (int i = 0; i < CRAWL_SLOTS; i++)
			if (jobs[i].state != CRAWL_RUNNING &&
			    (slot < 0 || (jobs[slot].state != CRAWL_NONE &&
					  jobs[i].finished < jobs[slot].finished)))
				slot = i;
	}
	if (slot < 0) {
		rc = -EBUSY;
		goto out;
	}
	/* a new job, or a finished one started over */
	memset(&jobs[slot], 0, sizeof(jobs[slot]));
	jobs[slot].spec = spec;
	jobs[slot].state = CRAWL_RUNNING;
	jobs[slot].started = time(NULL);
	pos[slot][0] = '\0';
	gen[slot]++;
	rc = crawl_job_save(fy->ledger, slot, &jobs[slot], 1);
	if (!rc)
		log_notice("%s of %s%s%s started (slot %d, shard %u/%u)",
			   spec.kind == CRAWL_SCAN ? "scan" : spec.prio == LEDGER_PRIO_COPYUP ?
			   "migration" : "crawl", spec.dir, spec.prefix[0] ? " prefix " : "",
			   spec.prefix, slot, spec.shard_i, spec.shard_n);
out_wake:
	pthread_cond_broadcast(&crawl_cond);
out:
	pthread_mutex_unlock(&crawl_lock);
	return rc;
}

int crawl_cancel(struct ferry *fy, const char *dir)
{
	int n = 0;
	pthread_mutex_lock(&crawl_lock);
	for (int i = 0; i < CRAWL_SLOTS; i++) {
		if (jobs[i].state != CRAWL_RUNNING)
			continue;
		if (strcmp(dir, "/") && strcmp(jobs[i].spec.dir, dir))
			continue;
		jobs[i].state = CRAWL_STOPPED;
		jobs[i].finished = time(NULL);
		gen[i]++;
		crawl_job_save(fy->ledger, i, &jobs[i], 0);
		n++;
	}
	pthread_mutex_unlock(&crawl_lock);
	if (n)
		log_notice("%d crawl job(s) on %s stopped by the operator", n, dir);
	return n;
}

int crawl_status_text(struct ferry *fy, struct buf *b)
{
	(void)fy;
	int rc = 0;
	pthread_mutex_lock(&crawl_lock);
	for (int i = 0; i < CRAWL_SLOTS && !rc; i++) {
		if (jobs[i].state == CRAWL_NONE)
			continue;
		rc = buf_printf(b, "slot %d\n", i);
		if (!rc)
			rc = crawl_job_format(&jobs[i], b);
	}
	pthread_mutex_unlock(&crawl_lock);
	return rc;
}

/* What one page of one job does (the crawl thread's, no lock held). */
struct page_ctx {
	struct ferry *fy;
	struct crawl_job *j;           /* a private copy; merged back after the page */
	struct crawl_shadow *sh;
	FILE *scan;
	char prev[CRAWL_KEY_MAX];
	char last[CRAWL_KEY_MAX];      /* the page's last key */
	int truncated, nkeys;
	char **pend;                   /* paths to queue, pushed in one ledger transaction */
	size_t npend, cappend;
};

/* Queue what the page found, in one transaction (one fsync per page, not per key). */
static int push_flush(struct page_ctx *c)
{
	int rc = 0;
	if (c->npend) {
		rc = ledger_queue_push_many(c->fy->ledger, c->npend, (const char *const *)c->pend,
					    c->j->spec.prio);
		if (rc < 0) {
			log_warn("crawl: cannot queue %zu files: %s", c->npend, strerror(-rc));
		} else {
			c->j->queued += (uint64_t)rc;
			c->j->skipped += c->npend - (uint64_t)rc;
			rc = 0;
		}
	}
	for (size_t i = 0; i < c->npend; i++)
		free(c->pend[i]);
	c->npend = 0;
	return rc;
}

static void scan_line(struct page_ctx *c, const char *what, const char *key)
{
	struct buf b = { 0 };
	if (c->scan && !crawl_escape(key, &b))
		fprintf(c->scan, "%s %s\n", what, b.data ? b.data : "");
	buf_free(&b);
}

static int emit(void *arg, const char *key, int shadowed)
{
	struct page_ctx *c = arg;
	struct crawl_job *j = c->j;
	char path[NAME_MAX_PATH + 2];
	if (j->spec.shard_n > 1 && crawl_shard_of(key, j->spec.shard_n) != j->spec.shard_i) {
		j->skipped++;
		return 0;
	}
	int rc = name_key_to_path(c->fy->cfg->s3_prefix, key, path, sizeof(path));
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		j->unreachable++;
		stats_inc(unreachable);
		scan_line(c, "unreachable", key);
		return 0;
	}
	if (shadowed) {
		j->shadowed++;
		stats_inc(shadowed);
		scan_line(c, "shadowed", key);
		return 0;
	}
	if (j->spec.kind == CRAWL_SCAN)
		return 0;
	struct ledger_file rec;
	rc = ledger_file_get(c->fy->ledger, path, &rec);
	if (rc == 0 && (rec.state == LEDGER_MIGRATED || rec.state == LEDGER_MODIFIED ||
			rec.state == LEDGER_NFS_ONLY || rec.state == LEDGER_CONFLICT ||
			rec.state == LEDGER_COPYING ||
			(rec.state == LEDGER_QUEUED && j->spec.prio == LEDGER_PRIO_CRAWL))) {
		j->skipped++;
		return 0;
	}
	if (c->npend == c->cappend) {
		size_t cap = c->cappend ? c->cappend * 2 : 256;
		char **v = realloc(c->pend, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->pend = v;
		c->cappend = cap;
	}
	if (!(c->pend[c->npend] = strdup(path)))
		return -ENOMEM;
	c->npend++;
	return 0;
}

static int on_page(void *arg, const struct s3xml_list *page)
{
	struct page_ctx *c = arg;
	int rc;
	for (size_t i = 0; i < page->nobjects; i++) {
		const char *key = page->objects[i].key;
		c->j->listed++;
		if ((rc = crawl_shadow_feed(c->sh, key, c->prev, emit, c)))
			return rc;
		snprintf(c->prev, sizeof(c->prev), "%s", key);
	}
	c->nkeys += (int)page->nobjects;
	if (page->nobjects)
		snprintf(c->last, sizeof(c->last), "%s", page->objects[page->nobjects - 1].key);
	c->truncated = page->is_truncated;
	return push_flush(c);
}

static uint64_t queue_high = CRAWL_QUEUE_HIGH, queue_low = CRAWL_QUEUE_LOW;

/* Wait (lock held) until the queue at prio drains below the low mark, if it is over the
 * high mark. 1 when stopping. */
static int backpressure(struct ferry *fy, int prio)
{
	int waiting = 0;
	for (;;) {
		struct ledger_stats ls;
		pthread_mutex_unlock(&crawl_lock);
		int rc = ledger_stats(fy->ledger, &ls);
		pthread_mutex_lock(&crawl_lock);
		if (crawl_stopping)
			return 1;
		if (rc || ls.queued[prio] < (waiting ? queue_low : queue_high))
			return 0;
		waiting = 1;
		struct timespec ts;
		util_abstime_ms(&ts, 200);
		pthread_cond_timedwait(&crawl_cond, &crawl_lock, &ts);
	}
}

static FILE *scan_open(struct ferry *fy, int fresh)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/" CRAWL_SCAN_FILE, fy->cfg->state_dir);
	FILE *f = fopen(p, fresh ? "w" : "a");
	if (!f)
		log_warn("scan: cannot write %s: %s", p, strerror(errno));
	return f;
}

static void *crawl_main(void *arg)
{
	struct ferry *fy = arg;
	struct s3_client *s3 = store_s3_client(fy->s3);
	unsigned delay_ms = 0;
	pthread_mutex_lock(&crawl_lock);
	while (!crawl_stopping) {
		int slot = -1;
		for (int k = 0; k < CRAWL_SLOTS; k++) {
			int i = (rr + k) % CRAWL_SLOTS;
			if (jobs[i].state == CRAWL_RUNNING &&
			    (slot < 0 || rank(&jobs[i]) < rank(&jobs[slot])))
				slot = i;
		}
		if (slot < 0 || crawl_hooks.paused(fy)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&crawl_cond, &crawl_lock, &ts);
			continue;
		}
		rr = slot + 1;
		if (jobs[slot].spec.kind == CRAWL_QUEUE && backpressure(fy, jobs[slot].spec.prio))
			break;
		if (jobs[slot].state != CRAWL_RUNNING)
			continue;
		unsigned g = gen[slot];
		struct crawl_job j = jobs[slot];
		char start[CRAWL_KEY_MAX];
		snprintf(start, sizeof(start), "%s", pos[slot][0] ? pos[slot] : j.last);
		pthread_mutex_unlock(&crawl_lock);

		struct page_ctx c = { .fy = fy, .j = &j, .sh = &shadows[slot] };
		struct buf kp = { 0 };
		int fresh = !start[0] && j.pages == 0;
		if (fresh)
			crawl_shadow_free(c.sh);
		snprintf(c.prev, sizeof(c.prev), "%s", start);
		if (j.spec.kind == CRAWL_SCAN)
			c.scan = scan_open(fy, fresh);
		int rc = crawl_key_prefix(fy->cfg->s3_prefix, &j.spec, &kp);
		if (!rc) {
			struct s3_list_opts o = { .prefix = kp.data ? kp.data : "",
						  .start_after = start[0] ? start : NULL,
						  .max_keys = 1000, .max_pages = 1 };
			rc = s3 ? s3_list(s3, &o, on_page, &c) : -ENOTSUP;
		}
		buf_free(&kp);
		if (!rc && !c.truncated)
			rc = crawl_shadow_flush(c.sh, emit, &c);
		if (!rc)
			rc = push_flush(&c);
		for (size_t k = 0; k < c.npend; k++)   /* what an error left unpushed */
			free(c.pend[k]);
		free(c.pend);
		if (c.scan)
			fclose(c.scan);
		if (rc) {
			log_warn("crawl of %s%s%s: %s (retrying)", j.spec.dir,
				 j.spec.prefix[0] ? " prefix " : "", j.spec.prefix, strerror(-rc));
			delay_ms = delay_ms ? (delay_ms * 2 > 30000 ? 30000 : delay_ms * 2) : 1000;
		} else {
			delay_ms = 0;
		}

		pthread_mutex_lock(&crawl_lock);
		if (gen[slot] != g || jobs[slot].state != CRAWL_RUNNING) {
			crawl_shadow_free(c.sh); /* replaced or stopped meanwhile: drop the page */
			pos[slot][0] = '\0';
			continue;
		}
		if (rc) {
			snprintf(jobs[slot].error, sizeof(jobs[slot].error), "%s", strerror(-rc));
			/* the page is listed again from the last position; keep the counters as
			 * they were before it */
			crawl_job_save(fy->ledger, slot, &jobs[slot], 0);
			crawl_shadow_free(c.sh);
			pos[slot][0] = '\0';
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += delay_ms / 1000;
			pthread_cond_timedwait(&crawl_cond, &crawl_lock, &ts);
			continue;
		}
		j.pages++;
		j.error[0] = '\0';
		if (c.nkeys)
			snprintf(pos[slot], sizeof(pos[slot]), "%s", c.last);
		const char *resume = crawl_shadow_resume(c.sh, c.nkeys ? c.last : j.last);
		snprintf(j.last, sizeof(j.last), "%s", resume ? resume : "");
		if (!c.truncated) {
			j.state = CRAWL_DONE;
			j.finished = time(NULL);
			pos[slot][0] = '\0';
			log_notice("%s of %s%s%s done: %" PRIu64 " keys listed, %" PRIu64
				   " queued, %" PRIu64 " unreachable, %" PRIu64 " shadowed",
				   j.spec.kind == CRAWL_SCAN ? "scan" : "crawl", j.spec.dir,
				   j.spec.prefix[0] ? " prefix " : "", j.spec.prefix, j.listed,
				   j.queued, j.unreachable, j.shadowed);
		}
		jobs[slot] = j;
		rc = crawl_job_save(fy->ledger, slot, &jobs[slot], 1);
		if (rc)
			log_warn("crawl: cannot write the checkpoint: %s", strerror(-rc));
		if (j.queued)
			crawl_hooks.queued(fy);
	}
	pthread_mutex_unlock(&crawl_lock);
	return NULL;
}

int crawl_start(struct ferry *fy, const struct crawl_hooks *hooks)
{
	crawl_fy = fy;
	crawl_hooks = *hooks;
	crawl_stopping = 0;
	/* test knob (not for operators): a lower high mark, to interrupt a crawl mid-listing */
	const char *hi = getenv("FERRYFS_CRAWL_QUEUE_HIGH");
	if (hi && strtoull(hi, NULL, 10) >= 4) {
		queue_high = strtoull(hi, NULL, 10);
		queue_low = queue_high / 4;
	}
	for (int i = 0; i < CRAWL_SLOTS; i++) {
		int rc = crawl_job_load(fy->ledger, i, &jobs[i]);
		if (rc == -ENOENT)
			memset(&jobs[i], 0, sizeof(jobs[i]));
		else if (rc) {
			log_warn("crawl: the checkpoint of slot %d is unreadable (%s): dropped", i,
				 strerror(-rc));
			memset(&jobs[i], 0, sizeof(jobs[i]));
		} else if (jobs[i].state == CRAWL_RUNNING) {
			log_notice("crawl of %s%s%s resumes after key '%s'", jobs[i].spec.dir,
				   jobs[i].spec.prefix[0] ? " prefix " : "", jobs[i].spec.prefix,
				   jobs[i].last);
		}
		pos[i][0] = '\0';
	}
	int rc = pthread_create(&crawl_thread, NULL, crawl_main, fy);
	if (rc)
		return -rc;
	crawl_running = 1;
	return 0;
}

void crawl_stop(void)
{
	if (!crawl_running)
		return;
	pthread_mutex_lock(&crawl_lock);
	crawl_stopping = 1;
	pthread_cond_broadcast(&crawl_cond);
	pthread_mutex_unlock(&crawl_lock);
	pthread_join(crawl_thread, NULL);
	crawl_running = 0;
	for (int i = 0; i < CRAWL_SLOTS; i++)
		crawl_shadow_free(&shadows[i]);
}
