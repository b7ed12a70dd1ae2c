/* copy.c - copying one S3 object onto the new store (spec section 6): temporary file,
 * durable, attributes, verified, then published atomically. Publishing "only if absent"
 * is a hard link of the temporary file to the final name: link(2) fails with EEXIST when
 * the name exists, atomically on the server, so two hosts (or a host and a writer) racing
 * to create the same file never overwrite each other. No locks here. */
#include "view/copy.h"

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
#include <unistd.h>

#include "view/dcache.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
#include "base/util.h"
#include "view/whiteout.h"

int copy_ensure_parents(struct route *r, const char *path)
{
	char p[NAME_MAX_PATH + 2];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		struct store_attr a;
		int rc = store_stat(r->nfs, p, &a);
		if (rc == 0) {
			*s = '/';
			if (!S_ISDIR(a.mode))
				return -ENOTDIR;
			continue;
		}
		if (rc != -ENOENT)
			return rc;
		struct route_entry e;
		rc = route_lookup(r, p, &e);
		if (rc)
			return rc;
		if (!S_ISDIR(e.attr.mode))
			return -ENOTDIR;
		rc = store_mkdir(r->nfs, p, e.attr.mode & 07777);
		if (rc && rc != -EEXIST)
			return rc;
		/* p is on the new store now: a cached listing of p (or of its parent) that says
		 * otherwise would route lookups under p to S3 without asking NFS */
		dc_forget(p);
		if (rc == 0) {
			store_chown(r->nfs, p, e.attr.uid, e.attr.gid);
			if (e.attr.mtime.tv_sec) {
				struct timespec tv[2] = { e.attr.mtime, e.attr.mtime };
				store_utimens(r->nfs, p, tv);
			}
		}
		*s = '/';
	}
	return 0;
}

static atomic_uint copy_seq;
static atomic_int copy_cancel;
static struct copy_hooks copy_hooks;

void copy_set_hooks(const struct copy_hooks *h)
{
	copy_hooks = *h;
}

void copy_cancel_all(int on)
{
	atomic_store(&copy_cancel, on);
}

/* "<host>.<owner>" of the temporary names: the host ('/' and '.' become '_') and an id of
 * the state directory (copy_set_owner), so that a mount holding that directory's lock
 * knows every temporary file with this tag but another pid for a dead process's. */
static char tmp_tag[96] = "host.00000000";

void copy_set_owner(const char *state_dir)
{
	char host[64] = "host";
	uint32_t h = 2166136261u;                 /* FNV-1a of the state directory's path */
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	for (char *c = host; *c; c++)
		if (*c == '/' || *c == '.')
			*c = '_';
	char *real = state_dir ? realpath(state_dir, NULL) : NULL;
	for (const char *c = real ? real : state_dir ? state_dir : ""; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	free(real);
	snprintf(tmp_tag, sizeof(tmp_tag), "%s.%08x", host, h);
}

void copy_tmp_prefix(char *out, size_t outlen)
{
	snprintf(out, outlen, WH_TMP_PREFIX "%s.", tmp_tag);
}

static void tmp_name(const char *dst, char *out, size_t outlen)
{
	const char *slash = strrchr(dst, '/');
	snprintf(out, outlen, "%.*s/" WH_TMP_PREFIX "%s.%d.%u", (int)(slash - dst), dst, tmp_tag,
		 (int)getpid(), atomic_fetch_add(&copy_seq, 1));
}

/* The sink: bytes arrive from S3 in curl's small chunks and are gathered into SINK_BUF
 * blocks, a ring of SINK_NBUF buffers. A full block is handed to two stage threads that
 * work through the ring in order, oldest block first: the writer SHA-256-hashes the
 * block and writes it to NFS, the hasher MD5-hashes it. The receiver only copies, so
 * none of the three threads carries most of the CPU work (MD5 alone is 1.5 s of CPU a
 * GiB here) and they share the cores with s3rver and the NFS server evenly; it waits
 * only when every other buffer is still with a stage, so a slow moment on either side
 * (a WRITE window, a COMMIT on the server) does not stall the S3 stream at once. The
 * stages are started by the first full block: a file smaller than a block never starts
 * them, and its one block is hashed and written here at the end (sink_flush).
 *
 * A large copy is also committed as it goes: every SINK_COMMIT_EVERY bytes the receiver
 * asks a fourth thread, the committer, for a COMMIT of what has been written so far,
 * which it sends on its own NFS context while the writes go on. The server's disk then
 * writes the copy during the stream instead of all of it in the final COMMIT (the one
 * that counts: it is sent after the last write, as before). A COMMIT the committer got
 * wrong (an error, a changed write verifier) fails the copy like the final one.
 *
 * wlock protects the ring's hand-off fields (each stage's pend and head, wstop, werr,
 * wlen, wat) and the committer's (creq, cstop, cerr); wcond signals a change of the
 * former, ccond of the latter. The stage threads touch only their own digest. */
#define SINK_BUF (8u << 20)
#define SINK_NBUF 4
#define SINK_COMMIT_EVERY (64u << 20)

enum { SINK_WRITE, SINK_MD5, SINK_STAGES };

struct sink_ctx;

struct sink_stage {
	struct sink_ctx *c;
	int id;
	pthread_t thread;
	int pend, head;         /* blocks handed over and not yet done here; the oldest */
};

struct sink_ctx {
	struct route *r;
	struct store_file *in, *out;
	int want_md5;           /* -1: not known yet; 1: the ETag is an MD5, hash for it; 0: a
				 * multipart ETag, which no MD5 of the body can match: skip */
	uint64_t off;           /* bytes received */
	EVP_MD_CTX *sha, *md5;
	char *buf[SINK_NBUF];   /* buf[cur] is being filled; the blocks before it are with
				 * the stages until each has done them */
	int cur;
	size_t blen;            /* bytes in buf[cur] */
	size_t wlen[SINK_NBUF]; /* a handed-over block's length and offset in the file */
	uint64_t wat[SINK_NBUF];
	struct sink_stage st[SINK_STAGES];
	int started;            /* the stage threads run (the receiver's own) */
	pthread_mutex_t wlock;  /* the hand-off fields (see above); a leaf */
	pthread_cond_t wcond;
	int wstop, werr;        /* stop when nothing is left / the first error of a stage */
	pthread_t committer;
	int cstarted;
	pthread_cond_t ccond;
	int creq, cstop, cerr;  /* a COMMIT is asked for / stop / its error */
	uint64_t creq_at;       /* bytes received when the receiver last asked (its own) */
};

/* Write one block at its offset. */
static int sink_write(struct sink_ctx *c, const char *data, size_t len, uint64_t at)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = store_pwrite(c->r->nfs, c->out, data + done, len - done, at + done);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* One stage's work on block k (in its thread, or here for the last block). */
static int sink_stage_work(struct sink_ctx *c, int id, int k)
{
	if (id == SINK_MD5)
		return !c->want_md5 || EVP_DigestUpdate(c->md5, c->buf[k], c->wlen[k]) ? 0 : -EIO;
	if (!EVP_DigestUpdate(c->sha, c->buf[k], c->wlen[k]))
		return -EIO;
	return sink_write(c, c->buf[k], c->wlen[k], c->wat[k]);
}

static void *sink_stage_main(void *arg)
{
	struct sink_stage *s = arg;
	struct sink_ctx *c = s->c;
	pthread_mutex_lock(&c->wlock);
	for (;;) {
		while (!s->pend && !c->wstop)
			pthread_cond_wait(&c->wcond, &c->wlock);
		if (!s->pend)
			break;
		int k = s->head, failed = c->werr != 0;
		pthread_mutex_unlock(&c->wlock);
		int rc = failed ? 0 : sink_stage_work(c, s->id, k);
		pthread_mutex_lock(&c->wlock);
		if (rc && !c->werr)
			c->werr = rc;
		s->head = (k + 1) % SINK_NBUF;
		s->pend--;
		pthread_cond_broadcast(&c->wcond);
	}
	pthread_mutex_unlock(&c->wlock);
	return NULL;
}

static void *sink_committer(void *arg)
{
	struct sink_ctx *c = arg;
	pthread_mutex_lock(&c->wlock);
	for (;;) {
		while (!c->creq && !c->cstop)
			pthread_cond_wait(&c->ccond, &c->wlock);
		if (c->cstop)
			break;
		c->creq = 0;
		pthread_mutex_unlock(&c->wlock);
		int rc = store_fsync(c->r->nfs, c->out, 0);
		pthread_mutex_lock(&c->wlock);
		if (rc && !c->cerr)
			c->cerr = rc;
	}
	pthread_mutex_unlock(&c->wlock);
	return NULL;
}

/* Ask the committer for a COMMIT (starting it the first time); without a thread, the
 * final COMMIT does it all. */
static void sink_commit_soon(struct sink_ctx *c)
{
	c->creq_at = c->off;
	if (!c->cstarted) {
		if (pthread_create(&c->committer, NULL, sink_committer, c))
			return;
		c->cstarted = 1;
	}
	pthread_mutex_lock(&c->wlock);
	c->creq = 1;
	pthread_cond_signal(&c->ccond);
	pthread_mutex_unlock(&c->wlock);
}

/* Wait until the stages have done every block handed over; their error, if any. */
static int sink_wait_idle(struct sink_ctx *c)
{
	pthread_mutex_lock(&c->wlock);
	while (c->st[SINK_WRITE].pend || c->st[SINK_MD5].pend)
		pthread_cond_wait(&c->wcond, &c->wlock);
	int rc = c->werr;
	pthread_mutex_unlock(&c->wlock);
	return rc;
}

/* Stop and join the stages (after what was handed to them) and the committer (after
 * its current COMMIT; one asked for and not yet sent is dropped). */
static void sink_stop(struct sink_ctx *c)
{
	pthread_mutex_lock(&c->wlock);
	c->wstop = 1;
	c->cstop = 1;
	pthread_cond_broadcast(&c->wcond);
	pthread_cond_broadcast(&c->ccond);
	pthread_mutex_unlock(&c->wlock);
	for (int i = 0; i < SINK_STAGES && c->started; i++)
		pthread_join(c->st[i].thread, NULL);
	if (c->cstarted)
		pthread_join(c->committer, NULL);
	c->started = 0;
	c->cstarted = 0;
	c->wstop = 0;
	c->cstop = 0;
}

/* Start the stage threads: both, or none (then the receiver does their work). */
static int sink_start(struct sink_ctx *c)
{
	for (int i = 0; i < SINK_STAGES; i++) {
		c->st[i] = (struct sink_stage){ .c = c, .id = i };
		if (pthread_create(&c->st[i].thread, NULL, sink_stage_main, &c->st[i])) {
			pthread_mutex_lock(&c->wlock);
			c->wstop = 1;
			pthread_cond_broadcast(&c->wcond);
			pthread_mutex_unlock(&c->wlock);
			while (i-- > 0)
				pthread_join(c->st[i].thread, NULL);
			c->wstop = 0;
			return -EAGAIN;
		}
	}
	c->started = 1;
	return 0;
}

/* Both stages' work on buf[cur] here, in order (no thread, or the last block). */
static int sink_inline(struct sink_ctx *c)
{
	c->wlen[c->cur] = c->blen;
	c->wat[c->cur] = c->off - c->blen;
	int rc = sink_stage_work(c, SINK_MD5, c->cur);
	if (!rc)
		rc = sink_stage_work(c, SINK_WRITE, c->cur);
	c->blen = 0;
	return rc;
}

/* buf[cur] is full: hand it to the stages and fill the next buffer of the ring, once
 * both are done with it. */
static int sink_handoff(struct sink_ctx *c)
{
	int rc, next = (c->cur + 1) % SINK_NBUF;
	if (!c->started && sink_start(c))
		return sink_inline(c);
	if (!c->buf[next] && !(c->buf[next] = malloc(SINK_BUF)))
		return -ENOMEM;
	pthread_mutex_lock(&c->wlock);
	while (c->st[SINK_WRITE].pend >= SINK_NBUF - 1 || c->st[SINK_MD5].pend >= SINK_NBUF - 1)
		pthread_cond_wait(&c->wcond, &c->wlock);      /* buf[next] is still handed over */
	rc = c->werr;
	if (!rc) {
		c->wlen[c->cur] = c->blen;
		c->wat[c->cur] = c->off - c->blen;
		c->st[SINK_WRITE].pend++;
		c->st[SINK_MD5].pend++;
		pthread_cond_broadcast(&c->wcond);
	}
	pthread_mutex_unlock(&c->wlock);
	if (rc)
		return rc;
	c->cur = next;
	c->blen = 0;
	if (c->off - c->creq_at >= SINK_COMMIT_EVERY)
		sink_commit_soon(c);
	return 0;
}

/* The end of the stream: wait for the stages, then do the last block here. */
static int sink_flush(struct sink_ctx *c)
{
	int rc = sink_wait_idle(c);
	if (!rc && c->blen)
		rc = sink_inline(c);
	c->blen = 0;
	return rc;
}

/* 1 when an ETag is a plain MD5 (single-part upload): 32 hex digits. */
static int etag_is_md5(const char *etag)
{
	size_t n = strlen(etag);
	if (n != 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((etag[i] >= '0' && etag[i] <= '9') || (etag[i] >= 'a' && etag[i] <= 'f') ||
		      (etag[i] >= 'A' && etag[i] <= 'F')))
			return 0;
	return 1;
}

/* Whether the body is MD5-hashed, decided once from the ETag before the first byte is
 * (the S3 store settles a lazy handle from the reply's headers): MD5 is the largest CPU
 * cost of a copy, and a multipart ETag (MD5 of the parts' MD5s, "-N") cannot be checked
 * against the body's MD5 anyway. When the ETag cannot be had, hash (and check if, at the
 * end, it turns out to be an MD5). */
static void sink_decide_md5(struct sink_ctx *c)
{
	struct store_attr a;
	c->want_md5 = store_fstat(c->r->s3, c->in, &a) != 0 || etag_is_md5(a.etag);
	if (!c->want_md5)
		log_debug("copy: ETag %s is a multipart one: checked by size, no MD5", a.etag);
}

static int sink(void *arg, const void *data, size_t len)
{
	struct sink_ctx *c = arg;
	int rc;
	if (atomic_load_explicit(&copy_cancel, memory_order_relaxed))
		return -ECANCELED;
	if (c->want_md5 < 0)
		sink_decide_md5(c);
	if (!c->buf[c->cur] && !(c->buf[c->cur] = malloc(SINK_BUF)))
		return -ENOMEM;
	while (len) {
		size_t n = SINK_BUF - c->blen < len ? SINK_BUF - c->blen : len;
		memcpy(c->buf[c->cur] + c->blen, data, n);
		c->blen += n;
		c->off += n;
		data = (const char *)data + n;
		len -= n;
		if (c->blen == SINK_BUF && (rc = sink_handoff(c)))
			return rc;
	}
	return 0;
}

/* A plain pread loop, for a store without read_stream. */
static int copy_by_pread(struct route *r, struct store_file *in, uint64_t size, struct sink_ctx *c)
{
	size_t bufsz = 4u << 20;
	char *buf = malloc(bufsz);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < size && !rc;) {
		ssize_t n = store_pread(r->s3, in, buf, bufsz, off);
		if (n < 0)
			rc = (int)n;
		else if (n == 0)
			rc = -EIO;      /* the object is shorter than it said */
		else {
			rc = sink(c, buf, (size_t)n);
			off += (uint64_t)n;
		}
	}
	free(buf);
	return rc;
}

/* Record a published copy in the ledger: a migration (src == dst) becomes `migrated` with
 * its ETag, size and SHA-256; either way the new NFS file id keeps the inode number the
 * S3 file had. A ledger failure is logged, never fatal: the copy itself is done. */
static void copy_record(struct route *r, const char *src, const char *dst,
			const struct copy_result *res, uint64_t fileid)
{
	uint64_t ino = route_s3_ino(r, src);
	int rc;
	if (strcmp(src, dst) == 0) {
		struct ledger_file rec = { .state = LEDGER_MIGRATED, .size = res->size, .ino = ino,
					   .migrated = time(NULL), .has_sha256 = true };
		snprintf(rec.etag, sizeof(rec.etag), "%s", res->attr.etag);
		for (int i = 0; i < 32; i++)
			rec.sha256[i] = (unsigned char)(util_hexval(res->sha256[2 * i]) << 4 |
							util_hexval(res->sha256[2 * i + 1]));
		rc = ledger_commit_migration(r->ledger, dst, &rec, fileid);
		if (rc == -ESTALE)
			rc = 0;   /* a writer got there first: the file is modified, not migrated */
	} else {
		rc = fileid ? ledger_ino_put(r->ledger, fileid, ino) : 0;
	}
	if (rc)
		log_warn("ledger: cannot record the copy of %s: %s", dst, strerror(-rc));
}

/* The copy; with a replace check (copy_s3_replace), the rename over dst happens under
 * lock, only when check(arg) says dst is still what the caller expects. */
struct replace_check {
	pthread_mutex_t *lock;
	int (*check)(void *arg);
	void *arg;
};

static int copy_impl(struct route *r, const char *src, const char *dst, const char *etag,
		     enum copy_publish how, const struct replace_check *rc_check,
		     struct copy_result *out);

int copy_s3_to_nfs(struct route *r, const char *src, const char *dst, const char *etag,
		   enum copy_publish how, struct copy_result *out)
{
	return copy_impl(r, src, dst, etag, how, NULL, out);
}

int copy_s3_replace(struct route *r, const char *path, const char *etag, pthread_mutex_t *lock,
		    int (*check)(void *arg), void *arg, struct copy_result *out)
{
	struct replace_check c = { lock, check, arg };
	return copy_impl(r, path, path, etag, COPY_REPLACE, &c, out);
}

int copy_s3_migrate(struct route *r, const char *path, pthread_mutex_t *lock,
		    int (*check)(void *arg), void *arg, struct copy_result *out)
{
	struct replace_check c = { lock, check, arg };
	return copy_impl(r, path, path, NULL, COPY_IF_ABSENT, &c, out);
}

static int copy_impl(struct route *r, const char *src, const char *dst, const char *etag,
		     enum copy_publish how, const struct replace_check *chk,
		     struct copy_result *out)
{
	struct store_file *in = NULL;
	struct sink_ctx c = { .r = r, .want_md5 = -1, .wlock = PTHREAD_MUTEX_INITIALIZER,
			      .wcond = PTHREAD_COND_INITIALIZER,
			      .ccond = PTHREAD_COND_INITIALIZER };
	char tmp[NAME_MAX_PATH + 128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char md5hex[33];
	char tmpdir[NAME_MAX_PATH + 2];
	int rc, have_tmp = 0, hooked = 0;

	memset(out, 0, sizeof(*out));
	/* With a streaming store the object's attributes come with the GET (STORE_O_LAZY):
	 * one S3 request per file instead of a HEAD and a GET. */
	int stream = r->s3->ops->read_stream != NULL;
	rc = store_open(r->s3, src, O_RDONLY | (stream ? STORE_O_LAZY : 0), 0, etag, &in);
	if (rc)
		return rc;
	c.in = in;
	if (!stream && (rc = store_fstat(r->s3, in, &out->attr)))
		goto out_in;

	tmp_name(dst, tmp, sizeof(tmp));
	snprintf(tmpdir, sizeof(tmpdir), "%.*s", strrchr(dst, '/') == dst ? 1 :
		 (int)(strrchr(dst, '/') - dst), dst);
	if (copy_hooks.tmp_begin) {
		if ((rc = copy_hooks.tmp_begin(tmpdir)))
			goto out_in;
		hooked = 1;
	}
	/* the parent directories are made only when the first try says they are missing:
	 * a crawl copies many files into directories that exist */
	rc = store_open(r->nfs, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, NULL, &c.out);
	if (rc == -ENOENT) {
		rc = copy_ensure_parents(r, dst);
		if (!rc)
			rc = store_open(r->nfs, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, NULL,
					&c.out);
	}
	if (rc)
		goto out_tmp;
	have_tmp = 1;
	c.sha = EVP_MD_CTX_new();
	c.md5 = EVP_MD_CTX_new();
	if (!c.sha || !c.md5 || !EVP_DigestInit_ex(c.sha, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(c.md5, EVP_md5(), NULL)) {
		rc = -ENOMEM;
		goto out_tmp;
	}
	double t_start = util_now_s();
	if (stream) {
		rc = store_read_stream(r->s3, in, 0, UINT64_MAX, sink, &c);
		if (!rc)
			rc = store_fstat(r->s3, in, &out->attr);   /* from the GET's headers */
	} else {
		rc = copy_by_pread(r, in, out->attr.size, &c);
	}
	if (!rc)
		rc = sink_flush(&c);
	else
		sink_wait_idle(&c);
	sink_stop(&c);
	if (!rc)
		rc = c.cerr;
	if (rc)
		goto out_tmp;
	double t_streamed = util_now_s();
	rc = store_fsync(r->nfs, c.out, 0);
	if (rc)
		goto out_tmp;
	if (c.off >= SINK_BUF)
		log_debug("copy %s: %llu bytes streamed in %.1f ms, the final COMMIT %.1f ms", src,
			  (unsigned long long)c.off, (t_streamed - t_start) * 1e3,
			  (util_now_s() - t_streamed) * 1e3);
	/* the object's attributes (spec 4) on the open handle, in one call where the store
	 * can (NFSv3: one SETATTR, whose reply also gives the copy's NFS file id, to map it
	 * to the inode number the file had in S3); else by path after the close */
	struct store_attr tmp_attr;
	rc = store_fsetattr(r->nfs, c.out, &out->attr,
			    STORE_HAVE_MODE | STORE_HAVE_UID | STORE_HAVE_GID | STORE_HAVE_MTIME,
			    &tmp_attr);
	int by_path = rc == -ENOTSUP;
	if (by_path)
		rc = store_fstat(r->nfs, c.out, &tmp_attr);
	if (rc)
		goto out_tmp;
	uint64_t fileid = tmp_attr.ino;
	rc = store_close(r->nfs, c.out);
	c.out = NULL;
	if (rc)
		goto out_tmp;

	/* verify: size, and the MD5 where the ETag is one */
	out->size = c.off;
	if (c.off != out->attr.size) {
		log_err("copy %s: got %llu bytes, the object has %llu", src,
			(unsigned long long)c.off, (unsigned long long)out->attr.size);
		rc = -EIO;
		goto out_tmp;
	}
	EVP_DigestFinal_ex(c.md5, md, &mdlen);
	util_hex(md, mdlen, md5hex);
	if (etag_is_md5(out->attr.etag) &&
	    (!c.want_md5 || strcasecmp(md5hex, out->attr.etag) != 0)) {
		/* (!want_md5: skipped for a multipart ETag, and the pinned reply now says an MD5:
		 * cannot be, but never publish what was not checked) */
		log_err("copy %s: MD5 %s does not match the ETag %s", src,
			c.want_md5 ? md5hex : "(not computed)", out->attr.etag);
		rc = -EIO;
		goto out_tmp;
	}
	EVP_DigestFinal_ex(c.sha, md, &mdlen);
	util_hex(md, mdlen, out->sha256);

	if (by_path) {
		if (tmp_attr.uid != out->attr.uid || tmp_attr.gid != out->attr.gid)
			store_chown(r->nfs, tmp, out->attr.uid, out->attr.gid);
		rc = store_chmod(r->nfs, tmp, out->attr.mode & 07777);
		if (!rc) {
			struct timespec tv[2] = { out->attr.mtime, out->attr.mtime };
			rc = store_utimens(r->nfs, tmp, tv);
			if (rc == -EOVERFLOW) {
				/* a time the new store cannot hold (NFSv3: 1970-2106): the copy
				 * keeps the time of the copy rather than another wrong one */
				log_warn("copy %s: its mtime %lld is outside what the new store "
					 "holds; the copy has the time it was made", src,
					 (long long)out->attr.mtime.tv_sec);
				rc = 0;
			}
		}
		if (rc)
			goto out_tmp;
	}
	if (copy_hooks.before_publish && (rc = copy_hooks.before_publish(src, out->attr.etag)))
		goto out_tmp;
	if (chk) {
		/* publish only what the caller's check allows, with writers held off: replace
		 * what it expects to be there, or take a name it says is still ours to take */
		pthread_mutex_lock(chk->lock);
		rc = chk->check(chk->arg);
		if (!rc && how == COPY_REPLACE) {
			rc = store_rename(r->nfs, tmp, dst, 0);
			have_tmp = rc != 0;
		} else if (!rc) {
			rc = store_link(r->nfs, tmp, dst);
		}
		if (!rc) {
			out->published = 1;
			if (r->ledger)
				copy_record(r, src, dst, out, fileid);
		} else if (rc == -EEXIST && how != COPY_REPLACE) {
			rc = 0;                 /* someone got there first: theirs stands */
		}
		pthread_mutex_unlock(chk->lock);
		goto out_tmp;
	} else if (how == COPY_REPLACE) {
		rc = store_rename(r->nfs, tmp, dst, 0);
		if (rc)
			goto out_tmp;
		have_tmp = 0;
		out->published = 1;
	} else {
		rc = store_link(r->nfs, tmp, dst);
		if (rc == 0)
			out->published = 1;
		else if (rc == -EEXIST)
			rc = 0;                 /* someone got there first: theirs stands */
	}
	if (!rc && out->published && r->ledger)
		copy_record(r, src, dst, out, fileid);
out_tmp:
	sink_stop(&c);          /* (stopped already, unless we failed before the stream) */
	if (c.out)
		store_close(r->nfs, c.out);
	if (have_tmp) {
		int urc = store_unlink(r->nfs, tmp);
		have_tmp = urc != 0 && urc != -ENOENT;
	}
	if (hooked && copy_hooks.tmp_end)
		copy_hooks.tmp_end(tmpdir, !have_tmp);
	EVP_MD_CTX_free(c.sha);
	EVP_MD_CTX_free(c.md5);
	for (int i = 0; i < SINK_NBUF; i++)
		free(c.buf[i]);
out_in:
	store_close(r->s3, in);
	return rc;
}
