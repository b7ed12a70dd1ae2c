/* migrate.c - the background migrator (spec section 6), see migrate.h.
 *
 * DESIGN (in the manner of redis's bio.c). cfg->workers threads share the ledger's queue,
 * which survives restarts: copy-up (0) before touched (1) before crawl (2), oldest first
 * inside a priority. A worker
 *   1. pops the best ready entry (the ledger marks it copying, atomically);
 *   2. looks the path up afresh (route_lookup): gone -> its record is dropped; already on
 *      the new store (a writer, a copy-up or another host got there) -> dequeued, never
 *      overwritten; a directory -> dequeued;
 *   3. for a crawl entry, waits for the token buckets (`rate` bytes/s, `rate_files`
 *      files/s) and while foreground reads from S3 happened in the last 100 ms;
 *   4. copies with copy_s3_to_nfs(path, path, ETag of the lookup, COPY_IF_ABSENT), which
 *      verifies, publishes only if the name is free and records the migration in the
 *      ledger. An object replaced during the copy (-ESTALE) is looked up and copied again
 *      at once (copy.c asks our before_publish hook, which HEADs the object, so a stream
 *      that delivered the old version to the end is not published either); any other
 *      failure is requeued with jittered exponential backoff, and after the retry limit
 *      the file is `failed` with the error text (user.ferryfs.error).
 * Idle workers sleep on a condition variable: mig_wake (a file queued), the crawl (a page
 * queued), resume, the next backoff time, or mig_stop wake them. Pause stops taking work;
 * copies in progress finish.
 *
 * Temporary files. copy.c calls our hooks with the directory of each temporary file it
 * is about to create: the directory is recorded in a ledger checkpoint (tmpdir.<slot>)
 * before the file exists, durably. At the next mig_start those directories (and only
 * those: the export is never walked) are listed and the temporary files named with this
 * host and this state directory (copy_set_owner) by another pid are removed: this mount
 * holds the state directory's lock, so their process is gone, even one still exiting.
 * Copies that share a directory share a slot, so a crawl through one directory records
 * it once.
 *
 * Stop. mig_stop stops the crawl, lets copies in progress finish for up to
 * MIG_STOP_GRACE_MS, then cancels the rest (copy.c removes their temporary files; their
 * entries stay `copying` in the ledger, which the next ledger_open puts back to queued).
 *
 * Locks: mig_lock protects wake_seq and the token buckets and foreground clock;
 * tmp_lock protects the temporary-directory slots and is held across the checkpoint
 * write that records a slot (so no copy creates a file in a directory not yet recorded).
 * Neither is held with the other, nor across a store call. The ledger's locks are taken
 * under tmp_lock only. */
#include "migrate/migrate.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "view/copy.h"
#include "migrate/crawl.h"
#include "view/ferry.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
#include "view/ns.h"
#include "s3/client.h"
#include "base/stats.h"
#include "base/util.h"
#include "view/whiteout.h"

#define MIG_STOP_GRACE_MS 5000
#define MIG_ESTALE_TRIES 5       /* object replaced during the copy: look again this often */
#define MIG_FG_QUIET_S 0.1       /* the crawl waits until no S3 read happened for this long */
#define MIG_TMP_SLOTS_EXTRA 72   /* slots beyond the workers: copy-ups by FUSE threads */
#define MIG_RECHECK_S 1.0        /* copies this long HEAD the object before publishing */

static atomic_int mig_paused_flag;
static atomic_uint_fast64_t mig_rate_bps;

/* counters of this run, for logs and the status hook */
static atomic_uint_fast64_t mig_done_files, mig_done_bytes, mig_failed, mig_retried,
	mig_already, mig_gone;

static struct {
	struct ferry *fy;
	pthread_mutex_t lock;        /* mig_lock: wake_seq, token buckets, fg clock; leaf */
	pthread_cond_t cond;         /* work may be ready (wake_seq bumped), or stop */
	uint64_t wake_seq;           /* bumped by every wake */
	double tok_files, tok_bytes; /* token buckets (may go negative: debt) */
	double tok_at;               /* util_now_s() of the last refill */
	uint64_t fg_reads;           /* ferry_stats.reads_s3 when last looked at */
	double fg_at;                /* when it last changed */
	atomic_int stopping;
	pthread_t *threads;
	unsigned nthreads;
	unsigned retry_limit;        /* attempts before `failed` */
	unsigned backoff_s;          /* first retry delay */
	int crawl_started;
} M = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* ---- temporary-file directories (copy.c hooks) --------------------------------------- */

struct tmp_slot {
	char *dir;
	int inflight;                /* copies with a temporary file in dir now */
	int leaked;                  /* a temporary file could not be removed: keep the record */
	uint64_t used;
};

static pthread_mutex_t tmp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tmp_slot *tmp_slots;   /* protected by tmp_lock */
static unsigned tmp_nslots;
static uint64_t tmp_clock;
static struct ledger *tmp_ledger;

static int tmp_begin(const char *dir)
{
	int rc = 0;
	pthread_mutex_lock(&tmp_lock);
	int slot = -1;
	for (unsigned i = 0; i < tmp_nslots; i++) {
		if (tmp_slots[i].dir && !strcmp(tmp_slots[i].dir, dir)) {
			slot = (int)i;
			break;
		}
		if (!tmp_slots[i].inflight && !tmp_slots[i].leaked &&
		    (slot < 0 || tmp_slots[i].used < tmp_slots[slot].used))
			slot = (int)i;
	}
	if (slot >= 0 && !(tmp_slots[slot].dir && !strcmp(tmp_slots[slot].dir, dir))) {
		char name[32];
		char *d = strdup(dir);
		snprintf(name, sizeof(name), "tmpdir.%d", slot);
		if (!d)
			rc = -ENOMEM;
		else if (strlen(dir) >= LEDGER_CKPT_MAX)
			log_debug("migrate: directory too long to record for crash cleanup: %s",
				  dir);
		else
			rc = ledger_ckpt_put(tmp_ledger, name, dir);
		if (rc) {
			free(d);
			slot = -1;
		} else {
			free(tmp_slots[slot].dir);
			tmp_slots[slot].dir = d;
		}
	}
	if (slot >= 0) {
		tmp_slots[slot].inflight++;
		tmp_slots[slot].used = ++tmp_clock;
	}
	pthread_mutex_unlock(&tmp_lock);
	if (rc)
		log_warn("migrate: cannot record the temporary directory %s: %s", dir,
			 strerror(-rc));
	return rc;
}

static void tmp_end(const char *dir, int gone)
{
	pthread_mutex_lock(&tmp_lock);
	for (unsigned i = 0; i < tmp_nslots; i++) {
		if (tmp_slots[i].dir && !strcmp(tmp_slots[i].dir, dir) && tmp_slots[i].inflight) {
			tmp_slots[i].inflight--;
			if (!gone)
				tmp_slots[i].leaked = 1;
			break;
		}
	}
	pthread_mutex_unlock(&tmp_lock);
}

struct tmp_scan {
	const char *prefix;
	size_t plen;
	char **names;
	size_t n, cap;
};

static int tmp_scan_one(void *arg, const struct store_dirent *de)
{
	struct tmp_scan *s = arg;
	if (strncmp(de->name, s->prefix, s->plen))
		return 0;
	char *end;
	long pid = strtol(de->name + s->plen, &end, 10);
	if (*end != '.' || pid == (long)getpid())
		return 0;           /* this state directory's, and not ours: its process is gone */
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		char **v = realloc(s->names, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->names = v;
		s->cap = cap;
	}
	if (!(s->names[s->n] = strdup(de->name)))
		return -ENOMEM;
	s->n++;
	return 0;
}

/* Remove what a crash of this host left in the recorded directories. Returns the number
 * of files removed. */
static int tmp_cleanup(struct ferry *fy, unsigned nslots)
{
	char prefix[128], name[32], dir[NAME_MAX_PATH + 2], val[32];
	int removed = 0;
	unsigned prev = 0;
	copy_tmp_prefix(prefix, sizeof(prefix));
	if (ledger_ckpt_get(fy->ledger, "tmpdir.n", val, sizeof(val)) > 0)
		prev = (unsigned)strtoul(val, NULL, 10);
	unsigned upto = prev > nslots ? prev : nslots;
	for (unsigned i = 0; i < upto; i++) {
		snprintf(name, sizeof(name), "tmpdir.%u", i);
		if (ledger_ckpt_get(fy->ledger, name, dir, sizeof(dir)) <= 0)
			continue;
		struct tmp_scan s = { .prefix = prefix, .plen = strlen(prefix) };
		int rc = store_readdir(fy->nfs, dir, tmp_scan_one, &s);
		if (rc && rc != -ENOENT && rc != -ENOTDIR) {
			log_warn("migrate: cannot look for temporary files in %s: %s", dir,
				 strerror(-rc));
			goto next;    /* keep the record: try again at the next mount */
		}
		for (size_t k = 0; k < s.n; k++) {
			char p[NAME_MAX_PATH + 300];
			snprintf(p, sizeof(p), "%s/%s", strcmp(dir, "/") ? dir : "", s.names[k]);
			rc = store_unlink(fy->nfs, p);
			if (rc == 0) {
				removed++;
				log_notice("migrate: removed %s, left by an interrupted copy", p);
			} else if (rc != -ENOENT) {
				log_warn("migrate: cannot remove %s: %s", p, strerror(-rc));
			}
		}
		ledger_ckpt_delete(fy->ledger, name);
next:
		for (size_t k = 0; k < s.n; k++)
			free(s.names[k]);
		free(s.names);
	}
	snprintf(val, sizeof(val), "%u", upto);
	ledger_ckpt_put(fy->ledger, "tmpdir.n", val);
	return removed;
}

/* Was the object replaced while it was copied? Then the copy must not be published: a
 * stream pinned at open may have delivered the old version to the end. One HEAD, for
 * copies that took MIG_RECHECK_S or more. A quicker copy is not asked about: its bytes
 * are the version whose ETag it verified, a replacement in the last second is no
 * different from one a second after publishing, and both are the revalidation's to
 * catch (spec 7); the HEAD would be a third of a small file's S3 requests. */
static __thread int in_worker;   /* copy-ups by FUSE threads keep copy.c's own rules */
static __thread double copy_t0;  /* when this worker's copy started */

static int before_publish(const char *src, const char *etag)
{
	struct s3_client *c = M.fy && in_worker ? store_s3_client(M.fy->s3) : NULL;
	struct s3_object_info oi;
	struct buf key = { 0 };
	if (!c || !etag || !etag[0] || util_now_s() - copy_t0 < MIG_RECHECK_S)
		return 0;
	int rc = name_path_to_key(M.fy->cfg->s3_prefix, src, 0, &key);
	if (!rc)
		rc = s3_head(c, key.data, &oi);
	if (!rc && strcmp(oi.etag, etag)) {
		log_info("migrate %s: the object was replaced during the copy (ETag %s, now %s)",
			 src, etag, oi.etag);
		rc = -ESTALE;
	} else if (rc == -ENOENT) {
		rc = -ESTALE;           /* deleted meanwhile: the lookup will tell */
	}
	buf_free(&key);
	return rc;
}

/* ---- waking and throttling ------------------------------------------------------------ */

static uint64_t wake_seq_now(void)
{
	pthread_mutex_lock(&M.lock);
	uint64_t s = M.wake_seq;
	pthread_mutex_unlock(&M.lock);
	return s;
}

/* Sleep until woken after `seen`, or ms milliseconds (0: until woken). */
static void sleep_until_woken(uint64_t seen, unsigned ms)
{
	pthread_mutex_lock(&M.lock);
	if (M.wake_seq == seen && !atomic_load(&M.stopping)) {
		if (ms == 0) {
			pthread_cond_wait(&M.cond, &M.lock);
		} else {
			struct timespec ts;
			util_abstime_ms(&ts, ms);
			pthread_cond_timedwait(&M.cond, &M.lock, &ts);
		}
	}
	pthread_mutex_unlock(&M.lock);
}

void mig_wake(struct ferry *fy)
{
	(void)fy;
	pthread_mutex_lock(&M.lock);
	M.wake_seq++;
	pthread_cond_signal(&M.cond);
	pthread_mutex_unlock(&M.lock);
}

void mig_wake_all(struct ferry *fy)
{
	(void)fy;
	pthread_mutex_lock(&M.lock);
	M.wake_seq++;
	pthread_cond_broadcast(&M.cond);
	pthread_mutex_unlock(&M.lock);
}

/* Milliseconds the crawl must still wait (0: go), lock held. Refills the buckets (one
 * second of burst) and watches foreground S3 reads. */
static unsigned throttle_wait_ms(double now)
{
	uint64_t rate = atomic_load(&mig_rate_bps), rate_files = M.fy->cfg->rate_files;
	double dt = now - M.tok_at;
	M.tok_at = now;
	M.tok_files += dt * (double)rate_files;
	if (M.tok_files > (double)(rate_files ? rate_files : 1))
		M.tok_files = (double)(rate_files ? rate_files : 1);
	M.tok_bytes += dt * (double)rate;
	if (M.tok_bytes > (double)rate)
		M.tok_bytes = (double)rate;
	uint64_t reads = stats_get(reads_s3);
	if (reads != M.fg_reads) {
		M.fg_reads = reads;
		M.fg_at = now;
	}
	double wait = 0;
	if (now - M.fg_at < MIG_FG_QUIET_S)
		wait = MIG_FG_QUIET_S - (now - M.fg_at);
	if (rate_files && M.tok_files < 1 && (1 - M.tok_files) / (double)rate_files > wait)
		wait = (1 - M.tok_files) / (double)rate_files;
	if (rate && M.tok_bytes < 0 && -M.tok_bytes / (double)rate > wait)
		wait = -M.tok_bytes / (double)rate;
	if (wait <= 0)
		return 0;
	unsigned ms = (unsigned)(wait * 1000) + 1;
	return ms > 1000 ? 1000 : ms;  /* look again at least every second (rate changes) */
}

/* Wait until the crawl may start one more copy, then take its file token (its bytes are
 * taken after the copy, throttle_debit: a debt the next copies wait for). 1 if stopping. */
static int throttle_take(void)
{
	for (;;) {
		if (atomic_load(&M.stopping))
			return 1;
		pthread_mutex_lock(&M.lock);
		unsigned ms = throttle_wait_ms(util_now_s());
		if (!ms) {
			M.tok_files -= 1;
			pthread_mutex_unlock(&M.lock);
			return 0;
		}
		pthread_mutex_unlock(&M.lock);
		util_sleep_ms(ms);
	}
}

static void throttle_debit(uint64_t size)
{
	pthread_mutex_lock(&M.lock);
	M.tok_bytes -= (double)size;
	pthread_mutex_unlock(&M.lock);
}

/* Is the crawl throttled now while nothing better waits? Then a worker should not take a
 * crawl entry yet. *ms: how long to sleep. */
static int crawl_blocked(unsigned *ms)
{
	pthread_mutex_lock(&M.lock);
	*ms = throttle_wait_ms(util_now_s());
	pthread_mutex_unlock(&M.lock);
	if (!*ms)
		return 0;
	struct ledger_stats ls;
	if (ledger_stats(M.fy->ledger, &ls))
		return 0;
	return ls.queued[LEDGER_PRIO_COPYUP] + ls.queued[LEDGER_PRIO_TOUCHED] == 0 &&
	       ls.queued[LEDGER_PRIO_CRAWL] > 0;
}

/* ---- one migration ---------------------------------------------------------------- */

/* The path is on the new store already and we did not put it there (called after its
 * queue entry is gone). Keep the inode number this host reported while it was in S3
 * (spec 4). When the NFS file looks like a copy of the object (same size and mtime:
 * another host migrated it), record it migrated (without a SHA-256: this host did not
 * read it); otherwise it was written (through a mount, or directly): `modified`. */
static int keep_s3_ino(struct ledger_file *rec, bool exists, void *arg)
{
	(void)exists;
	rec->ino = *(const uint64_t *)arg;
	rec->error[0] = '\0';
	return LEDGER_WRITE;
}

static void adopt(struct ferry *fy, const char *path, const struct route_entry *e)
{
	struct ledger_file rec;
	uint64_t ino, s3ino = route_s3_ino(&fy->route, path);
	if (!S_ISREG(e->attr.mode) || !e->attr.ino)
		return;
	if (ledger_file_get(fy->ledger, path, &rec) || rec.state == LEDGER_MIGRATED ||
	    rec.state == LEDGER_MODIFIED || rec.state == LEDGER_CONFLICT ||
	    rec.state == LEDGER_NFS_ONLY)
		return;
	if (ledger_ino_get(fy->ledger, e->attr.ino, &ino) == -ENOENT)
		ledger_ino_put(fy->ledger, e->attr.ino, s3ino);
	struct store_attr s3;
	int rc = store_stat(fy->s3, path, &s3);
	if (rc == 0 && S_ISREG(s3.mode) && s3.size == e->attr.size &&
	    s3.mtime.tv_sec == e->attr.mtime.tv_sec) {
		struct ledger_file m = { .state = LEDGER_MIGRATED, .size = s3.size, .ino = s3ino,
					 .migrated = time(NULL) };
		snprintf(m.etag, sizeof(m.etag), "%s", s3.etag);
		ledger_commit_migration(fy->ledger, path, &m, e->attr.ino);
	} else if (rc == 0 || rc == -ENOENT) {
		ledger_file_event(fy->ledger, path, LEDGER_EV_FOUND, LEDGER_BY_MIGRATE, keep_s3_ino,
				  &s3ino);
	}
}

/* Drop path's queue entry if it is still there (after a copy that published nothing, or
 * whose record a writer changed meanwhile). */
static void dequeue(struct ferry *fy, const char *path)
{
	int prio;
	bool copying;
	if (ledger_queue_find(fy->ledger, path, &prio, &copying) == 1)
		ledger_queue_remove(fy->ledger, path);
}

/* Retry later, or give up. */
static void retry_or_fail(struct ferry *fy, const char *path, const char *what, int err)
{
	struct ledger_file rec;
	uint32_t attempts = ledger_file_get(fy->ledger, path, &rec) == 0 ? rec.attempts : 0;
	char msg[LEDGER_ERROR_MAX];
	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-err));
	if (attempts + 1 >= M.retry_limit) {
		int rc = ledger_queue_fail(fy->ledger, path, msg);
		atomic_fetch_add(&mig_failed, 1);
		log_err("migrate %s: %s; giving up after %u attempts%s", path, msg, attempts + 1,
			rc ? " (and the ledger refused to record it)" : "");
		return;
	}
	/* jittered exponential backoff: base * 2^attempts * [0.5, 1.5), at most an hour */
	double d = (double)M.backoff_s * (double)(1u << (attempts < 12 ? attempts : 12));
	d *= 0.5 + (double)(random() % 1000) / 1000.0;
	if (d > 3600)
		d = 3600;
	if (d < 1)
		d = 1;
	time_t at = time(NULL) + (time_t)(d + 0.5);
	atomic_fetch_add(&mig_retried, 1);
	log_warn("migrate %s: %s; retry %u in %.0f s", path, msg, attempts + 1, d);
	if (ledger_queue_requeue(fy->ledger, path, at))
		dequeue(fy, path);
}

/* The migrator's lookup of a queued path, cheaper than route_lookup: the new store (the
 * path itself, its whiteout, its parent's opaque marker), and nothing of S3: the copy's
 * own open HEADs the object. Whether the object is shadowed by a directory was settled when
 * it was queued (the crawl skips shadowed keys; fs.c queues what it opened as a file), so
 * the LIST that route_lookup spends on it is saved (a LIST costs S3 far more than a HEAD).
 * 1: the path is on the new store (*e filled); 0: go on and copy; -ENOENT: the path is
 * gone (whited out or under an opaque directory); other -errno. */
static int quick_lookup(struct ferry *fy, const char *path, struct route_entry *e)
{
	int rc = store_stat(fy->nfs, path, &e->attr);
	if (rc == 0) {
		e->src = ROUTE_NFS;
		return 1;
	}
	if (rc != -ENOENT && rc != -ENOTDIR)
		return rc;
	rc = wh_is_whiteout(fy->route.nfs, path);
	if (rc)
		return rc > 0 ? -ENOENT : rc;
	char parent[NAME_MAX_PATH + 2];
	const char *slash = strrchr(path, '/');
	snprintf(parent, sizeof(parent), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	rc = wh_is_opaque(fy->route.nfs, parent);
	return rc ? (rc > 0 ? -ENOENT : rc) : 0;
}

struct pub_check {
	struct ferry *fy;
	const char *path;
};

/* Just before a copy is published, under the path's lock (ns_path_lock): a name deleted
 * or renamed away through the mount since quick_lookup is whited out by then (ns.c does
 * it under the same lock), and the copy must not bring it back. -ENOENT: gone. */
static int publish_check(void *arg)
{
	struct pub_check *p = arg;
	int rc = wh_is_whiteout(p->fy->route.nfs, p->path);
	return rc > 0 ? -ENOENT : rc;
}

/* 1 if some ancestor of path exists on the new store as something other than a directory
 * (a file, or a symlink, which is never followed). */
static int nfs_ancestor_not_dir(struct ferry *fy, const char *path)
{
	char a[NAME_MAX_PATH + 2];
	struct store_attr at;
	snprintf(a, sizeof(a), "%s", path);
	for (char *slash = strrchr(a, '/'); slash && slash > a; slash = strrchr(a, '/')) {
		*slash = '\0';
		int rc = store_stat(fy->nfs, a, &at);
		if (rc == 0)
			return !S_ISDIR(at.mode);
	}
	return 0;
}

static void migrate_one(struct ferry *fy, const char *path, int prio)
{
	struct route_entry e;
	struct copy_result res;
	int rc = 0, throttled = 0;
	const char *what = "lookup";
	double t0 = util_now_s(), t1 = t0;
	if (atomic_load(&fy->route.finished)) {
		/* finished (migrate/fleet.c): the new store is the whole tree and its whiteouts
		 * may be gone, so a copy from S3 now could bring back a file deleted through a
		 * mount */
		dequeue(fy, path);
		return;
	}
	for (int tries = 0; tries < MIG_ESTALE_TRIES; tries++) {
		what = "lookup";
		rc = quick_lookup(fy, path, &e);
		t1 = util_now_s();
		if (rc == -ENOENT) {
			/* whited out through a mount: nothing to migrate */
			ledger_file_delete(fy->ledger, path);
			atomic_fetch_add(&mig_gone, 1);
			return;
		}
		if (rc < 0)
			break;
		if (rc == 1) {
			dequeue(fy, path);
			adopt(fy, path, &e);
			atomic_fetch_add(&mig_already, 1);
			return;
		}
		if (prio == LEDGER_PRIO_CRAWL && !throttled) {
			if (throttle_take())
				return; /* stopping: the entry stays for the next mount */
			throttled = 1;
		}
		what = "copy";
		copy_t0 = util_now_s();
		struct pub_check pc = { fy, path };
		rc = copy_s3_migrate(&fy->route, path, ns_path_lock(path), publish_check, &pc,
				     &res);
		if (rc == -ENOENT || rc == -EISDIR || rc == -ENOTDIR || rc == -ELOOP) {
			/* the object is gone, or the path is a directory: the full lookup says */
			int lrc = route_lookup(&fy->route, path, &e);
			/* route_lookup leaves ancestors to the kernel: a key under a directory
			 * deleted or made opaque through a mount is gone too */
			if (lrc == 0 && rc == -ENOENT && wh_is_hidden(fy->route.nfs, path) == 1)
				lrc = -ENOENT;
			if (lrc == -ENOENT) {
				ledger_file_delete(fy->ledger, path);
				atomic_fetch_add(&mig_gone, 1);
				return;
			}
			if (lrc == 0 && !S_ISREG(e.attr.mode)) {
				dequeue(fy, path);
				return;
			}
			if ((rc == -ENOTDIR || rc == -ELOOP) && lrc == 0 &&
			    nfs_ancestor_not_dir(fy, path)) {
				/* an ancestor on the new store is a file or a symlink: it wins
				 * (spec 3), the key is unreachable through the mount, no retry */
				log_info("migrate %s: an ancestor on the new store is not a "
					 "directory; the key is shadowed, skipped", path);
				dequeue(fy, path);
				ledger_file_delete(fy->ledger, path);
				atomic_fetch_add(&mig_gone, 1);
				return;
			}
		}
		if (rc != -ESTALE)
			break;
		log_info("migrate %s: the object changed during the copy; copying it again", path);
	}
	if (throttled)
		throttle_debit(rc == 0 ? res.size : 0);
	if (rc == -ECANCELED)
		return;                       /* stopping */
	if (rc) {
		retry_or_fail(fy, path, what, rc);
		return;
	}
	if (!res.published) {
		/* another host or a writer published first: theirs stands */
		dequeue(fy, path);
		if (quick_lookup(fy, path, &e) == 1)
			adopt(fy, path, &e);
		atomic_fetch_add(&mig_already, 1);
		return;
	}
	dequeue(fy, path);                    /* normally done by the ledger commit already */
	atomic_fetch_add(&mig_done_files, 1);
	atomic_fetch_add(&mig_done_bytes, res.size);
	log_debug("migrated %s (%llu bytes): lookup %.1f ms, copy %.1f ms", path,
		  (unsigned long long)res.size, (t1 - t0) * 1000, (util_now_s() - t1) * 1000);
}

static void *worker_main(void *arg)
{
	struct ferry *fy = arg;
	char path[LEDGER_PATH_MAX + 1];
	in_worker = 1;
	while (!atomic_load(&M.stopping)) {
		uint64_t seen = wake_seq_now();
		unsigned ms;
		if (atomic_load(&mig_paused_flag)) {
			sleep_until_woken(seen, 0);
			continue;
		}
		if (crawl_blocked(&ms)) {
			sleep_until_woken(seen, ms);
			continue;
		}
		int prio = 0;
		time_t next_at = 0;
		int rc = ledger_queue_pop(fy->ledger, time(NULL), path, sizeof(path), &prio,
					  &next_at);
		if (rc < 0) {
			log_err("migrate: cannot take work from the ledger: %s", strerror(-rc));
			sleep_until_woken(seen, 1000);
			continue;
		}
		if (rc == 0) {
			time_t now = time(NULL);
			unsigned wait = 0;        /* until woken */
			if (next_at)
				wait = next_at > now ? (unsigned)(next_at - now) * 1000 : 100;
			sleep_until_woken(seen, wait);
			continue;
		}
		migrate_one(fy, path, prio);
	}
	return NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

static unsigned env_uint(const char *name, unsigned def, unsigned min)
{
	const char *v = getenv(name);
	uint64_t u;
	if (!v || util_parse_u64(v, min, 1000000, &u))
		return def;
	return (unsigned)u;
}

int mig_start(struct ferry *fy)
{
	int rc;
	M.fy = fy;
	atomic_store(&M.stopping, 0);
	atomic_store(&mig_rate_bps, fy->cfg->rate);
	M.tok_at = util_now_s();
	M.tok_files = 1;
	M.tok_bytes = 0;
	M.fg_reads = stats_get(reads_s3);
	M.fg_at = 0;
	/* test knobs (undocumented for operators): retry limit and first backoff */
	M.retry_limit = env_uint("FERRYFS_MIGRATE_RETRIES", 10, 1);
	M.backoff_s = env_uint("FERRYFS_MIGRATE_BACKOFF", 2, 1);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	if (!fy->ledger)
		return -EINVAL;
	copy_set_owner(fy->cfg->state_dir);   /* before any copy names a temporary file */

	unsigned workers = fy->cfg->workers ? fy->cfg->workers : 1;
	tmp_ledger = fy->ledger;
	tmp_nslots = workers + MIG_TMP_SLOTS_EXTRA;
	tmp_slots = calloc(tmp_nslots, sizeof(*tmp_slots));
	if (!tmp_slots)
		return -ENOMEM;
	rc = tmp_cleanup(fy, tmp_nslots);
	if (rc > 0)
		log_notice("migrate: removed %d temporary file(s) left by a crash", rc);
	struct copy_hooks h = { tmp_begin, tmp_end, before_publish };
	copy_set_hooks(&h);
	copy_cancel_all(0);

	M.threads = calloc(workers, sizeof(*M.threads));
	if (!M.threads) {
		rc = -ENOMEM;
		goto out_slots;
	}
	for (M.nthreads = 0; M.nthreads < workers; M.nthreads++) {
		rc = pthread_create(&M.threads[M.nthreads], NULL, worker_main, fy);
		if (rc) {
			rc = -rc;
			goto out_threads;
		}
	}
	static const struct crawl_hooks hooks = { mig_paused, mig_wake_all };
	rc = crawl_start(fy, &hooks);
	if (rc)
		goto out_threads;
	M.crawl_started = 1;
	log_info("migrator: %u workers, rate %llu bytes/s, %llu files/s", workers,
		 (unsigned long long)fy->cfg->rate, (unsigned long long)fy->cfg->rate_files);
	return 0;
out_threads:
	atomic_store(&M.stopping, 1);
	mig_wake_all(fy);
	for (unsigned i = 0; i < M.nthreads; i++)
		pthread_join(M.threads[i], NULL);
	free(M.threads);
	M.threads = NULL;
	M.nthreads = 0;
out_slots:
	copy_set_hooks(&(struct copy_hooks){ 0 });
	free(tmp_slots);
	tmp_slots = NULL;
	tmp_nslots = 0;
	return rc;
}

struct join_arg {
	pthread_t *threads;
	unsigned n;
	pthread_mutex_t lock;        /* protects done; a leaf */
	pthread_cond_t cond;         /* done was set */
	int done;
};

static void *joiner(void *arg)
{
	struct join_arg *j = arg;
	for (unsigned i = 0; i < j->n; i++)
		pthread_join(j->threads[i], NULL);
	pthread_mutex_lock(&j->lock);
	j->done = 1;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

void mig_stop(struct ferry *fy)
{
	if (!M.threads && !M.crawl_started)
		return;
	atomic_store(&M.stopping, 1);
	if (M.crawl_started) {
		crawl_stop();
		M.crawl_started = 0;
	}
	mig_wake_all(fy);
	/* give copies in progress MIG_STOP_GRACE_MS to finish, then cancel them */
	struct join_arg j = { .threads = M.threads, .n = M.nthreads,
			      .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	pthread_t jt;
	if (pthread_create(&jt, NULL, joiner, &j) == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += MIG_STOP_GRACE_MS / 1000;
		pthread_mutex_lock(&j.lock);
		while (!j.done && pthread_cond_timedwait(&j.cond, &j.lock, &ts) == 0)
			;
		int done = j.done;
		pthread_mutex_unlock(&j.lock);
		if (!done) {
			log_notice("migrator: abandoning the copies still in progress");
			copy_cancel_all(1);
		}
		pthread_join(jt, NULL);
	} else {
		copy_cancel_all(1);
		joiner(&j);
	}
	free(M.threads);
	M.threads = NULL;
	M.nthreads = 0;
	copy_set_hooks(&(struct copy_hooks){ 0 });
	pthread_mutex_lock(&tmp_lock);
	for (unsigned i = 0; i < tmp_nslots; i++)
		free(tmp_slots[i].dir);
	free(tmp_slots);
	tmp_slots = NULL;
	tmp_nslots = 0;
	pthread_mutex_unlock(&tmp_lock);
	log_info("migrator stopped: %" PRIuFAST64 " files (%" PRIuFAST64 " bytes) migrated, %"
		 PRIuFAST64 " found migrated already, %" PRIuFAST64 " retried, %" PRIuFAST64
		 " failed in this run", atomic_load(&mig_done_files), atomic_load(&mig_done_bytes),
		 atomic_load(&mig_already), atomic_load(&mig_retried), atomic_load(&mig_failed));
}

/* ---- the operator's controls ---------------------------------------------------------- */

int mig_paused(struct ferry *fy)
{
	(void)fy;
	return atomic_load(&mig_paused_flag);
}

uint64_t mig_rate(struct ferry *fy)
{
	(void)fy;
	return atomic_load(&mig_rate_bps);
}

/* Copy an xattr value into a NUL-terminated string, trimming a trailing newline. */
static int value_str(const char *value, size_t size, char *out, size_t outlen)
{
	if (size >= outlen || memchr(value, '\0', size))
		return -EINVAL;
	memcpy(out, value, size);
	out[size] = '\0';
	if (size && out[size - 1] == '\n')
		out[size - 1] = '\0';
	return 0;
}

/* migrate=now of a path: a file is queued at copy-up priority; a directory's subtree is
 * queued by a crawl job at copy-up priority. */
static int migrate_now(struct ferry *fy, const char *path)
{
	struct route_entry e;
	int rc = route_lookup(&fy->route, path, &e);
	if (rc)
		return rc;
	if (S_ISDIR(e.attr.mode)) {
		struct crawl_spec s = { .kind = CRAWL_QUEUE,
					.prio = LEDGER_PRIO_COPYUP,
					.shard_n = 1 };
		return crawl_request(fy, path, &s);
	}
	if (e.src != ROUTE_S3 || !S_ISREG(e.attr.mode))
		return 0;               /* already on the new store */
	rc = ledger_queue_push(fy->ledger, path, LEDGER_PRIO_COPYUP);
	if (rc < 0)
		return rc;
	mig_wake(fy);
	return 0;
}

int mig_control(struct ferry *fy, const char *path, const char *name, const char *value,
		size_t size)
{
	char v[CRAWL_DIR_MAX + 64];
	int root = !strcmp(path, "/");
	if (value_str(value, size, v, sizeof(v)))
		return -EINVAL;
	if (!strcmp(name, "pause")) {
		if (!root)
			return -EROFS;
		if (strcmp(v, "1") && strcmp(v, "0"))
			return -EINVAL;
		atomic_store(&mig_paused_flag, v[0] == '1');
		log_notice("migration %s by the operator", v[0] == '1' ? "paused" : "resumed");
		if (v[0] == '0')
			mig_wake_all(fy);
		return 0;
	}
	if (!strcmp(name, "rate")) {
		uint64_t r;
		if (!root)
			return -EROFS;
		if (util_parse_size(v, &r))
			return -EINVAL;
		atomic_store(&mig_rate_bps, r);
		log_notice("crawl rate set to %llu bytes/s%s", (unsigned long long)r,
			   r ? "" : " (unlimited)");
		mig_wake_all(fy);
		return 0;
	}
	if (!strcmp(name, "migrate")) {
		if (!fy->ledger)
			return -EROFS;
		if (!strcmp(v, "now"))
			return migrate_now(fy, path);
		if (!strcmp(v, "stop")) {
			crawl_cancel(fy, path);
			return 0;
		}
		struct crawl_spec s;
		if (crawl_parse(v, &s))
			return -EINVAL;
		struct route_entry e;
		int rc = route_lookup(&fy->route, path, &e);
		if (rc)
			return rc;
		if (!S_ISDIR(e.attr.mode))
			return -ENOTDIR;
		return crawl_request(fy, path, &s);
	}
	return -ENODATA;
}

int mig_getxattr(struct ferry *fy, const char *path, const char *name, struct buf *b)
{
	if (strcmp(path, "/"))
		return -ENODATA;
	if (!strcmp(name, "state_dir"))
		return buf_puts(b, fy->cfg->state_dir);
	if (!strcmp(name, "crawl"))
		return crawl_status_text(fy, b);
	if (!strcmp(name, "migrator"))
		return buf_printf(b,
				  "workers %u\npaused %d\nrate %llu\nrate_files %llu\n"
				  "run_migrated_files %" PRIuFAST64
				  "\nrun_migrated_bytes %" PRIuFAST64 "\nrun_already %" PRIuFAST64
				  "\nrun_retried %" PRIuFAST64 "\nrun_failed %" PRIuFAST64 "\n",
				  M.nthreads, atomic_load(&mig_paused_flag),
				  (unsigned long long)atomic_load(&mig_rate_bps),
				  (unsigned long long)fy->cfg->rate_files,
				  atomic_load(&mig_done_files), atomic_load(&mig_done_bytes),
				  atomic_load(&mig_already), atomic_load(&mig_retried),
				  atomic_load(&mig_failed));
	return -ENODATA;
}
