/* fleet.c - finish and revalidate (spec section 7), see fleet.h.
 *
 * DESIGN. One thread (started by fleet_start after the migrator):
 *   - until the mount is finished, it HEADs PREFIX.ferryfs.finished every FLEET_POLL_S
 *     seconds: `ferryctl finish` on any host puts that object before it removes the
 *     markers, so every host's mount stops consulting S3 before its whiteouts go;
 *   - with revalidate=N (N > 0), every N seconds (counted from the end of the previous
 *     pass) it lists the bucket (ListObjectsV2, 1000 keys a request: the ETags come with
 *     the listing, so one request checks 1000 files, where a HEAD checks one) and compares
 *     each object's ETag with the ledger's for files on the new store (migrated,
 *     modified, nfs-only or in conflict).
 *     A pass is skipped while the ledger has no such file;
 *   - files opened from the new store (fleet_opened) whose last check is older than N
 *     seconds are checked sooner, one HEAD each, by this thread (the open never waits).
 * A changed ETag means a host still on S3 wrote the object after the migration (the
 * mirror records the ETag of its own PUTs in the ledger, so our own write-back is not
 * mistaken for one). Then:
 *   - a `migrated` file (unchanged since it was copied at this very path) is re-migrated:
 *     the new version is copied to a temporary file and renamed over the old copy, under
 *     the path's lock (ns_path_lock), only if the ledger still says `migrated` with the
 *     old ETag and the old copy still has the same NFS file id, size, mtime and ctime.
 *     Every change through the mount marks the file `modified` under the same lock before
 *     it touches the file, and unlink and rename take it too, so a change is never
 *     replaced. The ledger keeps the inode number (the new NFS file id is mapped to it);
 *   - any other file on the new store (modified, created here and written back, renamed,
 *     already `conflict`) keeps the new store's version at its name and S3's version is
 *     kept beside it as a conflict copy (writeback/conflict.h: conflict_keep_both).
 * An object deleted from S3 by another host is left alone here (the copy stays).
 *
 * Locks: fl_lock protects the opened-files queue, the check table and the wake-up;
 * it is a leaf (nothing is called with it held). Re-migration takes ns_path_lock (inside
 * copy_s3_replace) with no other lock held. */
#include "migrate/fleet.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "view/copy.h"
#include "migrate/sweep.h"
#include "migrate/crawl.h"
#include "view/dcache.h"
#include "view/ferry.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
#include "writeback/conflict.h"
#include "writeback/mirror.h"
#include "view/ns.h"
#include "s3/client.h"
#include "s3/xml.h"
#include "base/util.h"

#define FLEET_POLL_S 10          /* seconds between looks for the finished marker */
#define FLEET_CHECK_SLOTS 4096   /* last-check times of opened files (direct-mapped) */
#define FLEET_OPENED_MAX 256     /* opened files waiting for a check */
#define FLEET_STOP_GRACE_S 5     /* at unmount, a copy in progress may finish this long */

static struct {
	struct ferry *fy;
	pthread_mutex_t lock;        /* fl_lock: opened[], head, n, checked[], the flags; leaf */
	pthread_cond_t cond;         /* a file opened, stop, or the thread exited */
	pthread_t thread;
	int running;
	int stopping;
	int exited;                  /* the thread is about to return */
	int no_sweep;                /* test knob FERRYFS_REVALIDATE_SWEEP=0: opens only */
	struct sw_ctx sw;            /* the shared sweep (the fleet thread's alone) */
	char *opened[FLEET_OPENED_MAX];  /* ring of paths to check */
	unsigned head, n;
	struct { uint64_t h; double at; } checked[FLEET_CHECK_SLOTS];
} F = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static atomic_uint_fast64_t fl_remigrated;

int fleet_finished(struct ferry *fy)
{
	return atomic_load(&fy->route.finished);
}

/* ---- finish ---------------------------------------------------------------------------- */

static void become_finished(struct ferry *fy, const char *why)
{
	char t[32];
	if (atomic_exchange(&fy->route.finished, 1))
		return;
	snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
	int rc = ledger_ckpt_put(fy->ledger, FLEET_FINISHED_CKPT, t);
	if (rc)
		log_err("finish: cannot record it in the ledger: %s (the mount is finished until "
			"it is unmounted)", strerror(-rc));
	crawl_cancel(fy, "/");
	log_notice("finished (%s): the new store is the whole tree; S3 is no longer read", why);
}

/* 0 when nothing is pending that finish must wait for; else -EBUSY, logged. */
static int nothing_pending(struct ferry *fy)
{
	struct ledger_stats st;
	int rc = ledger_stats(fy->ledger, &st);
	if (rc)
		return rc;
	uint64_t queued = 0;
	for (int p = 0; p < LEDGER_NPRIO; p++)
		queued += st.queued[p];
	if (st.journal_pending || queued || st.copying || st.files[LEDGER_FAILED]) {
		log_warn("finish refused: %llu journal entries, %llu queued, %llu copying, "
			 "%llu failed", (unsigned long long)st.journal_pending,
			 (unsigned long long)queued, (unsigned long long)st.copying,
			 (unsigned long long)st.files[LEDGER_FAILED]);
		return -EBUSY;
	}
	return 0;
}

int fleet_control(struct ferry *fy, const char *path, const char *name, const char *value,
		  size_t size)
{
	if (strcmp(name, "finish"))
		return -ENODATA;
	if (strcmp(path, "/"))
		return -EROFS;
	if (!(size == 1 || (size == 2 && value[1] == '\n')) || value[0] != '1')
		return -EINVAL;
	if (!fy->ledger)
		return -EROFS;
	if (fleet_finished(fy))
		return 0;
	int rc = nothing_pending(fy);
	if (rc)
		return rc;
	become_finished(fy, "ferryctl finish");
	return 0;
}

static void poll_marker(struct ferry *fy)
{
	struct s3_client *c = store_s3_client(fy->s3);
	struct s3_object_info oi;
	struct buf key = { 0 };
	if (!c || buf_printf(&key, "%s%s", fy->cfg->s3_prefix, FLEET_FINISHED_KEY))
		goto out;
	if (s3_head(c, key.data, &oi) == 0)
		become_finished(fy, "S3 holds the fleet's finished marker");
out:
	buf_free(&key);
}

/* ---- revalidate -------------------------------------------------------------------------- */

struct remig {
	struct ferry *fy;
	const char *path;
	const char *old_etag;
	struct store_attr before;
};

/* Under the path's lock, right before the rename: is the copy still the one migrated? */
static int remig_check(void *arg)
{
	struct remig *m = arg;
	struct ledger_file rec;
	struct store_attr now;
	if (ledger_file_get(m->fy->ledger, m->path, &rec) || rec.state != LEDGER_MIGRATED ||
	    strcmp(rec.etag, m->old_etag))
		return -EAGAIN;
	if (store_stat(m->fy->nfs, m->path, &now) || now.ino != m->before.ino ||
	    now.size != m->before.size || now.mtime.tv_sec != m->before.mtime.tv_sec ||
	    now.mtime.tv_nsec != m->before.mtime.tv_nsec ||
	    now.ctime.tv_sec != m->before.ctime.tv_sec ||
	    now.ctime.tv_nsec != m->before.ctime.tv_nsec)
		return -EAGAIN;
	return 0;
}

static void remigrate(struct ferry *fy, const char *path, const struct ledger_file *rec,
		      const char *etag)
{
	struct remig m = { .fy = fy, .path = path, .old_etag = rec->etag };
	struct copy_result res;
	int rc = store_stat(fy->nfs, path, &m.before);
	if (rc || !S_ISREG(m.before.mode))
		return;                  /* gone or replaced meanwhile: nothing to refresh */
	rc = copy_s3_replace(&fy->route, path, etag, ns_path_lock(path), remig_check, &m, &res);
	if (rc == -EAGAIN) {
		log_info("revalidate %s: changed through the mount meanwhile; looked at again "
			 "later", path);
		return;
	}
	if (rc) {
		log_warn("revalidate %s: cannot re-migrate (ETag %s): %s", path, etag,
			 strerror(-rc));
		return;
	}
	struct store_attr after;
	if (m.before.ino && store_stat(fy->nfs, path, &after) == 0 && after.ino != m.before.ino)
		ledger_ino_delete(fy->ledger, m.before.ino);   /* the old copy is gone */
	dc_forget(path);
	atomic_fetch_add(&fl_remigrated, 1);
	log_notice("revalidate %s: S3 was changed by another host (ETag %s, now %s): re-migrated",
		   path, rec->etag, etag);
}

/* The object of path now has ETag etag (and size bytes); act if the ledger knows another. */
static void revalidate_one(struct ferry *fy, const char *path, const char *etag, uint64_t size)
{
	struct ledger_file rec;
	/* our own write-back, between its PUT and the ledger's record of the new ETag: not
	 * another host's change. Asked before the ledger is read (mirror.h says why). */
	if (mirror_uploading(path))
		return;
	if (ledger_file_get(fy->ledger, path, &rec) || !rec.etag[0] || !strcmp(rec.etag, etag))
		return;
	if (rec.state == LEDGER_MIGRATED && rec.ino == route_s3_ino(&fy->route, path))
		remigrate(fy, path, &rec, etag);
	else if (rec.state == LEDGER_MIGRATED || rec.state == LEDGER_MODIFIED ||
		 rec.state == LEDGER_NFS_ONLY || rec.state == LEDGER_CONFLICT)
		/* changed here (or a migrated record moved here by a rename): keep both */
		conflict_keep_both(&fy->route, path, etag, size, CONFLICT_JOURNAL_OURS,
				   LEDGER_BY_FLEET);
}

static int stopping(void)
{
	pthread_mutex_lock(&F.lock);
	int s = F.stopping;
	pthread_mutex_unlock(&F.lock);
	return s;
}

static void sweep_changed(void *arg, const char *path, const char *etag, uint64_t size)
{
	revalidate_one(arg, path, etag, size);
}

static int sweep_stop(void *arg)
{
	return stopping() || fleet_finished(arg);
}

static void check_opened(struct ferry *fy, const char *path)
{
	struct ledger_file rec;
	struct s3_object_info oi;
	struct buf key = { 0 };
	if (ledger_file_get(fy->ledger, path, &rec) || !rec.etag[0] ||
	    !(rec.state == LEDGER_MIGRATED || rec.state == LEDGER_MODIFIED ||
	      rec.state == LEDGER_NFS_ONLY || rec.state == LEDGER_CONFLICT))
		return;
	if (name_path_to_key(fy->cfg->s3_prefix, path, 0, &key) == 0 &&
	    s3_head(store_s3_client(fy->s3), key.data, &oi) == 0)
		revalidate_one(fy, path, oi.etag, oi.size);
	buf_free(&key);
}

static uint64_t path_hash(const char *path)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *s = path; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h | 1;
}

void fleet_opened(struct ferry *fy, const char *path)
{
	unsigned rv = fy->cfg->revalidate;
	if (!rv || !F.running || fleet_finished(fy))
		return;
	uint64_t h = path_hash(path);
	double now = util_now_s();
	pthread_mutex_lock(&F.lock);
	unsigned slot = (unsigned)(h % FLEET_CHECK_SLOTS);
	if (F.checked[slot].h == h && now - F.checked[slot].at < rv) {
		pthread_mutex_unlock(&F.lock);
		return;
	}
	F.checked[slot].h = h;
	F.checked[slot].at = now;
	if (F.n < FLEET_OPENED_MAX) {
		char *p = strdup(path);
		if (p) {
			F.opened[(F.head + F.n) % FLEET_OPENED_MAX] = p;
			F.n++;
			pthread_cond_signal(&F.cond);
		}
	}   /* else: dropped; the next pass of the sweep sees it */
	pthread_mutex_unlock(&F.lock);
}

static void *fleet_main(void *arg)
{
	struct ferry *fy = arg;
	unsigned rv = fy->cfg->revalidate, period = fy->cfg->revalidate_sweep;
	int sweeping = rv && period && !F.no_sweep;
	/* a look at the sweep's files every period, at most every FLEET_POLL_S */
	unsigned every = period < FLEET_POLL_S ? period : FLEET_POLL_S;
	double next_poll = 0, next_sweep = util_now_s() + (every ? every : 1);
	for (;;) {
		double now = util_now_s();
		if (!fleet_finished(fy) && now >= next_poll) {
			poll_marker(fy);
			next_poll = util_now_s() + FLEET_POLL_S;
		}
		for (;;) {               /* files opened: checked first, one HEAD each */
			pthread_mutex_lock(&F.lock);
			char *p = F.n && !F.stopping ? F.opened[F.head] : NULL;
			if (p) {
				F.head = (F.head + 1) % FLEET_OPENED_MAX;
				F.n--;
			}
			pthread_mutex_unlock(&F.lock);
			if (!p)
				break;
			if (!fleet_finished(fy))
				check_opened(fy, p);
			free(p);
		}
		if (sweeping && !fleet_finished(fy) && util_now_s() >= next_sweep) {
			int more = sw_step(&F.sw);        /* 1: a round of ours goes on at once */
			next_sweep = util_now_s() + (more == 1 ? 0 : every);
		}
		double until = fleet_finished(fy) ? util_now_s() + 3600 : next_poll;
		if (sweeping && !fleet_finished(fy) && next_sweep < until)
			until = next_sweep;
		pthread_mutex_lock(&F.lock);
		if (!F.stopping && !F.n) {
			struct timespec ts;
			double w = until - util_now_s();
			if (w > 0) {
				util_abstime_ms(&ts, (unsigned)(w * 1000));
				pthread_cond_timedwait(&F.cond, &F.lock, &ts);
			}
		}
		int s = F.stopping;
		pthread_mutex_unlock(&F.lock);
		if (s)
			break;
	}
	pthread_mutex_lock(&F.lock);
	F.exited = 1;
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	return NULL;
}

int fleet_start(struct ferry *fy)
{
	char v[32];
	F.fy = fy;
	F.stopping = 0;
	F.exited = 0;
	const char *ns = getenv("FERRYFS_REVALIDATE_SWEEP");   /* test knob, see doc/testing.md */
	F.no_sweep = ns && !strcmp(ns, "0");
	if (!fy->ledger)
		return -EINVAL;
	if (ledger_ckpt_get(fy->ledger, FLEET_FINISHED_CKPT, v, sizeof(v)) > 0) {
		atomic_store(&fy->route.finished, 1);
		log_notice("this mount was finished (at %s): serving the new store alone", v);
	}
	F.sw = (struct sw_ctx){
		.nfs = fy->nfs, .s3 = store_s3_client(fy->s3), .ledger = fy->ledger,
		.prefix = fy->cfg->s3_prefix, .period = fy->cfg->revalidate_sweep,
		.changed = sweep_changed, .stop = sweep_stop, .arg = fy,
	};
	const char *cp = getenv("FERRYFS_SWEEP_CHUNK_PAGES");   /* test knob: small chunks */
	if (cp)
		F.sw.chunk_pages = (unsigned)atoi(cp);
	const char *pk = getenv("FERRYFS_SWEEP_PAGE_KEYS"), *sk = getenv("FERRYFS_SWEEP_SKEW");
	F.sw.page_keys = pk ? (unsigned)atoi(pk) : 0;
	F.sw.skew = sk ? atoi(sk) : -1;
	if (fy->cfg->revalidate_sweep)
		sw_init(&F.sw);
	int rc = pthread_create(&F.thread, NULL, fleet_main, fy);
	if (rc)
		return -rc;
	F.running = 1;
	if (fy->cfg->revalidate)
		log_info("revalidate: an open re-checks a file after %u s; the fleet sweeps the "
			 "bucket every %u s", fy->cfg->revalidate, fy->cfg->revalidate_sweep);
	return 0;
}

void fleet_stop(struct ferry *fy)
{
	(void)fy;
	if (!F.running)
		return;
	/* a re-migration or conflict copy in progress gets FLEET_STOP_GRACE_S to finish, then
	 * is cancelled at its next chunk (copy.c removes its temporary file; the next pass
	 * finds the file unchanged and starts over): unmount stays bounded */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += FLEET_STOP_GRACE_S;
	pthread_mutex_lock(&F.lock);
	F.stopping = 1;
	pthread_cond_broadcast(&F.cond);
	while (!F.exited && pthread_cond_timedwait(&F.cond, &F.lock, &ts) == 0)
		;
	int done = F.exited;
	pthread_mutex_unlock(&F.lock);
	if (!done) {
		log_notice("revalidate: abandoning the copy in progress");
		copy_cancel_all(1);   /* the migrator's copies too: they are stopping as well */
	}
	pthread_join(F.thread, NULL);
	if (!done)
		copy_cancel_all(0);
	F.running = 0;
	while (F.n) {
		free(F.opened[F.head]);
		F.head = (F.head + 1) % FLEET_OPENED_MAX;
		F.n--;
	}
	log_info("revalidate: %llu file(s) re-migrated, %llu conflict(s) in this run",
		 (unsigned long long)atomic_load(&fl_remigrated),
		 (unsigned long long)conflict_count());
}
