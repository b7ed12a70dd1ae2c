/* fleet.c - finish and revalidate (spec section 7), see fleet.h.
 *
 * DESIGN. One thread (started by fleet_start after the migrator):
 *   - until the mount is finished, it HEADs PREFIX.ferryfs.finished every FLEET_POLL_S
 *     seconds: `ferryctl finish` on any host puts that object before it removes the
 *     markers, so every host's mount stops consulting S3 before its whiteouts go;
 *   - with revalidate=N (N > 0), every N seconds (counted from the end of the previous
 *     pass) it lists the bucket (ListObjectsV2, 1000 keys a request: the ETags come with
 *     the listing, so one request checks 1000 files, where a HEAD checks one) and compares
 *     each object's ETag with the ledger's for files migrated, modified or in conflict.
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
 *   - a `modified` file whose bytes are the object's (MD5 = single-part ETag: our own
 *     write-back, seen before the mirror recorded its ETag) only takes the new ETag;
 *   - any other `modified` (or renamed, or already `conflict`) file keeps the new store's version
 *     at its name; S3's version is copied to "NAME.conflict-s3-<ETag[0..8]>" beside it
 *     (only if that name is free), both are journaled (the mirror then PUTs S3's version
 *     under the sibling key and ours over the key: nothing is lost on either store) and
 *     the file becomes `conflict`, user.ferryfs.error naming the sibling.
 * An object deleted from S3 by another host is left alone here (the copy stays).
 *
 * Locks: fl_lock protects the opened-files queue, the check table and the wake-up;
 * it is a leaf (nothing is called with it held). Re-migration takes ns_path_lock (inside
 * copy_s3_replace) with no other lock held. */
#include "migrate/fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "view/copy.h"
#include "migrate/sweep.h"
#include "migrate/crawl.h"
#include "view/dcache.h"
#include "view/ferry.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
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

static atomic_uint_fast64_t fl_remigrated, fl_conflicts;

int fleet_finished(struct ferry *fy)
{
	return atomic_load(&fy->route.finished);
}

int fleet_conflict_name(const char *path, const char *etag, char *out, size_t outlen)
{
	const char *leaf = strrchr(path, '/');
	leaf = leaf ? leaf + 1 : path;
	int n = snprintf(out, outlen, "%s.conflict-s3-%.8s", path, etag[0] ? etag : "none");
	if (n < 0 || (size_t)n >= outlen ||
	    strlen(leaf) + 13 + (etag[0] ? strnlen(etag, 8) : 4) > 255)
		return -ENAMETOOLONG;
	return 0;
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

struct to_conflict {
	const char *etag;
	const char *sibling;
};

/* Event `conflict` (a migrated, modified or conflict record becomes conflict): the record
 * takes S3's ETag and names the sibling that holds S3's version. */
static int describe_conflict(struct ledger_file *rec, bool exists, void *arg)
{
	struct to_conflict *c = arg;
	(void)exists;
	snprintf(rec->etag, sizeof(rec->etag), "%s", c->etag);
	const char *leaf = strrchr(c->sibling, '/');
	snprintf(rec->error, sizeof(rec->error), "conflict: S3 was changed by another host; its "
		 "version is %s", leaf ? leaf + 1 : c->sibling);
	return LEDGER_WRITE;
}

static void journal(struct ferry *fy, int op, const char *path)
{
	struct ledger_jentry e = { .op = op, .path = path };
	uint64_t seq;
	int rc = ledger_journal_append(fy->ledger, &e, &seq);
	if (rc)
		log_err("revalidate: cannot journal %s of %s: %s", ledger_op_name(op), path,
			strerror(-rc));
}

/* 1 when the new store's file at path holds exactly the bytes of an S3 object of this
 * size and single-part ETag (its MD5), 0 when not or when that cannot be told (multipart
 * ETag), -errno. Reads the file: only for the rare changed objects. */
static int same_as_object(struct ferry *fy, const char *path, const char *etag, uint64_t size)
{
	struct store_attr a;
	struct store_file *f;
	size_t n = strlen(etag);
	if (n != 32 || strspn(etag, "0123456789abcdefABCDEF") != 32)
		return 0;
	int rc = store_stat(fy->nfs, path, &a);
	if (rc || !S_ISREG(a.mode) || a.size != size)
		return rc;
	if ((rc = store_open(fy->nfs, path, O_RDONLY, 0, NULL, &f)))
		return rc;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl;
	char hex[65];
	uint64_t off = 0;
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = store_pread(fy->nfs, f, buf, bufsz, off);
		if (r < 0) {
			rc = (int)r;
			goto out;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)r);
		off += (uint64_t)r;
	}
	EVP_DigestFinal_ex(md, d, &dl);
	util_hex(d, dl, hex);
	rc = off == size && !strcasecmp(hex, etag);
out:
	free(buf);
	EVP_MD_CTX_free(md);
	store_close(fy->nfs, f);
	return rc;
}

static int take_etag(struct ledger_file *rec, bool exists, void *arg)
{
	if (!exists || !(rec->state == LEDGER_MODIFIED || rec->state == LEDGER_CONFLICT))
		return LEDGER_KEEP;
	snprintf(rec->etag, sizeof(rec->etag), "%s", (const char *)arg);
	return LEDGER_WRITE;
}

static void conflict(struct ferry *fy, const char *path, const char *etag, uint64_t size)
{
	char sib[NAME_MAX_PATH + 64];
	struct route_entry e;
	struct copy_result res;
	/* S3 holds our very bytes (our own write-back, whose ETag the ledger has not got yet,
	 * or the same content written twice): no conflict, only a newer ETag */
	if (same_as_object(fy, path, etag, size) == 1) {
		ledger_file_update(fy->ledger, path, take_etag, (void *)etag);
		log_info("revalidate %s: S3 holds the same bytes as the new store (ETag %s)", path,
			 etag);
		return;
	}
	int rc = fleet_conflict_name(path, etag, sib, sizeof(sib));
	if (rc) {
		log_err("revalidate %s: S3 changed and the file was modified, but the conflict "
			"copy's "
			"name is too long: the S3 version stays only in S3",
			path);
		return;
	}
	rc = route_lookup(&fy->route, sib, &e);
	if (rc == -ENOENT) {
		/* a copy with no ledger: the sibling is a file of its own (its own inode number),
		 * not a migration of the key it was read from */
		struct route r2 = fy->route;
		r2.ledger = NULL;
		rc = copy_s3_to_nfs(&r2, path, sib, etag, COPY_IF_ABSENT, &res);
		if (rc) {
			log_warn("revalidate %s: cannot copy S3's version to %s: %s", path, sib,
				 strerror(-rc));
			return;
		}
		dc_forget(sib);
		journal(fy, LEDGER_OP_CREATE, sib);
	} else if (rc) {
		log_warn("revalidate %s: cannot look up %s: %s", path, sib, strerror(-rc));
		return;
	}
	journal(fy, LEDGER_OP_WRITE, path);   /* ours goes back over the key */
	struct to_conflict c = { etag, sib };
	rc = ledger_file_event(fy->ledger, path, LEDGER_EV_CONFLICT, LEDGER_BY_FLEET,
			       describe_conflict, &c);
	if (rc < 0) {
		log_err("revalidate %s: cannot record the conflict: %s", path, strerror(-rc));
		return;
	}
	atomic_fetch_add(&fl_conflicts, 1);
	log_warn("revalidate %s: conflict: modified here and changed in S3 by another host "
		 "(ETag %s); both kept: ours at the name, S3's at %s", path, etag, sib);
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
		 rec.state == LEDGER_CONFLICT)
		conflict(fy, path, etag, size);  /* moved here by a rename: keep ours */
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
	      rec.state == LEDGER_CONFLICT))
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
		 (unsigned long long)atomic_load(&fl_conflicts));
}
