/* sweep.c - the fleet's shared sweep of the bucket (sweep.h): one host lists each round,
 * every host reads what changed. Files on the new store are written aside and published
 * with link(2), which fails when the name exists: a file is published once, whole. */
#include "migrate/sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/naming.h"
#include "base/util.h"
#include "ledger/ledger.h"
#include "s3/client.h"
#include "s3/xml.h"
#include "store/store.h"

#define SW_CKPT "sweep_read"    /* ledger checkpoint: "ROUND CHUNK" read next */
#define SW_MAX_FILE (64u << 20) /* a chunk holds at most 50,000 lines of ~1 KiB */

struct lease {
	char token[80];
	double start, refreshed;
	uint64_t next;     /* the next chunk to publish */
	struct buf cursor; /* the last key listed ("" before the first) */
};

/* Wall-clock seconds: lease times and the epoch are compared across hosts and with S3's
 * LastModified, so never the monotonic clock. */
static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- lines ------------------------------------------------------------------------ */

static int put_escaped(struct buf *out, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		int rc = (*c <= 0x20 || *c == '%' || *c == 0x7f) ? buf_printf(out, "%%%02X", *c) :
								   buf_append(out, c, 1);
		if (rc)
			return rc;
	}
	return 0;
}

static int unescape(char *s)
{
	char *w = s;
	for (; *s; s++) {
		if (*s == '%') {
			int h = util_hexval(s[1]), l = h < 0 ? -1 : util_hexval(s[2]);
			if (l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			*w++ = (char)(h * 16 + l);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return 0;
}

int sw_format_line(struct buf *out, const char *etag, uint64_t size, const char *path)
{
	if (!etag[0] || strpbrk(etag, " \n%"))
		return -EINVAL;
	int rc = buf_printf(out, "%s %" PRIu64 " ", etag, size);
	if (!rc)
		rc = put_escaped(out, path);
	if (!rc)
		rc = buf_append(out, "\n", 1);
	return rc;
}

int sw_parse_line(char *line, const char **etag, uint64_t *size, const char **path)
{
	char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == line)
		return -EINVAL;
	*sp1 = *sp2 = '\0';
	if (util_parse_u64(sp1 + 1, 0, UINT64_MAX, size) || unescape(sp2 + 1) ||
	    !name_path_ok(sp2 + 1) || !strcmp(sp2 + 1, "/"))
		return -EINVAL;
	*etag = line;
	*path = sp2 + 1;
	return 0;
}

/* --- small files on the new store ---------------------------------------------------- */

static void sw_path(char *out, size_t n, const char *name) { snprintf(out, n, SW_DIR "/%s", name); }

/* Read a whole small file into out (NUL-terminated). 0 / -ENOENT / -EFBIG / -errno. */
static int read_file(struct store *nfs, const char *path, struct buf *out)
{
	struct store_file *f;
	int rc = store_open(nfs, path, O_RDONLY, 0, NULL, &f);
	if (rc)
		return rc;
	buf_reset(out);
	char chunk[65536];
	for (;;) {
		ssize_t n = store_pread(nfs, f, chunk, sizeof(chunk), out->len);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > SW_MAX_FILE) {
			rc = -EFBIG;
			break;
		}
		if ((rc = buf_append(out, chunk, (size_t)n)))
			break;
	}
	store_close(nfs, f);
	if (!rc && (rc = buf_append(out, "", 1)) == 0)
		out->len--;
	return rc;
}

/* Write data to a file of this process beside the sweep's files; its name into tmp. */
static int write_aside(struct sw_ctx *c, const struct buf *data, char *tmp, size_t tmplen)
{
	static unsigned seq;
	snprintf(tmp, tmplen, SW_DIR "/tmp.%s.%u", c->token, ++seq);
	struct store_file *f;
	int rc = store_open(c->nfs, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, NULL, &f);
	if (rc)
		return rc;
	for (size_t off = 0; !rc && off < data->len;) {
		ssize_t n = store_pwrite(c->nfs, f, data->data + off, data->len - off, off);
		if (n <= 0)
			rc = n < 0 ? (int)n : -EIO;
		else
			off += (size_t)n;
	}
	if (!rc)
		rc = store_fsync(c->nfs, f, 0);
	int crc = store_close(c->nfs, f);
	if (!rc)
		rc = crc;
	if (rc)
		store_unlink(c->nfs, tmp);
	return rc;
}

/* Publish data at name unless the name exists: 0 / -EEXIST / -errno. */
static int publish(struct sw_ctx *c, const char *name, const struct buf *data)
{
	char tmp[256], path[256];
	sw_path(path, sizeof(path), name);
	int rc = write_aside(c, data, tmp, sizeof(tmp));
	if (rc)
		return rc;
	rc = store_link(c->nfs, tmp, path);
	store_unlink(c->nfs, tmp);
	return rc;
}

/* Replace name with data (the lease's refresh). */
static int replace(struct sw_ctx *c, const char *name, const struct buf *data)
{
	char tmp[256], path[256];
	sw_path(path, sizeof(path), name);
	int rc = write_aside(c, data, tmp, sizeof(tmp));
	if (rc)
		return rc;
	rc = store_rename(c->nfs, tmp, path, 0);
	if (rc)
		store_unlink(c->nfs, tmp);
	return rc;
}

static int read_named(struct sw_ctx *c, const char *name, struct buf *out)
{
	char path[256];
	sw_path(path, sizeof(path), name);
	return read_file(c->nfs, path, out);
}

/* --- the lease ----------------------------------------------------------------------- */

static int lease_format(const struct lease *l, struct buf *out)
{
	buf_reset(out);
	int rc = buf_printf(out, "%s\n%.3f\n%" PRIu64 "\n%.3f\n", l->token, l->start, l->next,
			    l->refreshed);
	if (!rc)
		rc = put_escaped(out, l->cursor.data ? l->cursor.data : "");
	if (!rc)
		rc = buf_append(out, "\n", 1);
	return rc;
}

/* 0 / -EINVAL (malformed: treated as stale by the caller) / -ENOMEM. */
static int lease_parse(char *text, struct lease *l)
{
	char *save = NULL, *f[5];
	for (int i = 0; i < 5; i++) {
		f[i] = strtok_r(i ? NULL : text, "\n", &save);
		if (!f[i] && i < 4)
			return -EINVAL;
	}
	char *end;
	snprintf(l->token, sizeof(l->token), "%s", f[0]);
	l->start = strtod(f[1], &end);
	if (*end)
		return -EINVAL;
	l->refreshed = strtod(f[3], &end);
	if (*end || util_parse_u64(f[2], 0, UINT64_MAX, &l->next))
		return -EINVAL;
	buf_reset(&l->cursor);
	if (f[4] && (unescape(f[4]) || buf_puts(&l->cursor, f[4])))
		return -EINVAL;
	return buf_append(&l->cursor, "", 1) ? -ENOMEM : (l->cursor.len--, 0);
}

/* --- sweeping a chunk ---------------------------------------------------------------- */

struct chunk {
	struct sw_ctx *c;
	struct buf lines, last_key;
	double threshold;
	int ended;
	uint64_t listed, nlines;
};

static int chunk_page(void *arg, const struct s3xml_list *page)
{
	struct chunk *k = arg;
	char path[NAME_MAX_PATH + 2];
	for (size_t i = 0; i < page->nobjects; i++) {
		const struct s3xml_object *o = &page->objects[i];
		double lm = o->last_modified.tv_sec + o->last_modified.tv_nsec / 1e9;
		if (lm >= k->threshold && o->etag[0] &&
		    !name_key_to_path(k->c->prefix, o->key, path, sizeof(path)) &&
		    strcmp(path, "/") &&
		    (k->nlines++, sw_format_line(&k->lines, o->etag, o->size, path)) == -ENOMEM)
			return -ENOMEM;
	}
	k->listed += page->nobjects;
	if (page->nobjects) {
		buf_reset(&k->last_key);
		if (buf_puts(&k->last_key, page->objects[page->nobjects - 1].key) ||
		    buf_append(&k->last_key, "", 1))
			return -ENOMEM;
		k->last_key.len--;
	}
	k->ended = !page->is_truncated;
	return k->c->stop(k->c->arg) ? 1 : 0;
}

/* The start of the latest finished round before r (its listing's lower bound), else the
 * fleet's epoch. */
static double threshold_for(struct sw_ctx *c, uint64_t r, double epoch)
{
	struct buf b = { 0 };
	char name[64];
	double t = epoch;
	for (uint64_t p = r; p-- > 0 && r - p <= SW_KEEP_ROUNDS + 1;) {
		snprintf(name, sizeof(name), "%" PRIu64 ".done", p);
		if (read_named(c, name, &b) == 0) {
			t = strtod(b.data, NULL);
			break;
		}
	}
	buf_free(&b);
	return t - (c->skew < 0 ? SW_SKEW_S : c->skew);
}

/* Remove the files of rounds before keep_from. */
struct rm_ctx {
	struct sw_ctx *c;
	uint64_t keep_from;
};

static int rm_old(void *arg, const struct store_dirent *de)
{
	struct rm_ctx *x = arg;
	char *end;
	unsigned long long r = strtoull(de->name, &end, 10);
	if (end != de->name && *end == '.' && r < x->keep_from) {
		char path[300];
		snprintf(path, sizeof(path), SW_DIR "/%s", de->name);
		store_unlink(x->c->nfs, path);
	}
	return 0;
}

/* Sweep one chunk of round r if this host holds (or may take) the round. */
static int sweep_chunk(struct sw_ctx *c, uint64_t r, double epoch, int *more)
{
	char name[64];
	struct buf b = { 0 }, text = { 0 };
	struct lease l = { 0 };
	struct chunk k = { .c = c };
	double now = wall_now();
	int rc;

	snprintf(name, sizeof(name), "%" PRIu64 ".done", r);
	if ((rc = read_named(c, name, &b)) != -ENOENT)
		goto out; /* finished (0), or the store failed */
	snprintf(name, sizeof(name), "%" PRIu64 ".lease", r);
	rc = read_named(c, name, &b);
	if (rc == -ENOENT) { /* nobody: claim the round */
		snprintf(l.token, sizeof(l.token), "%s", c->token);
		l.start = l.refreshed = now;
		if ((rc = lease_format(&l, &text)) || (rc = publish(c, name, &text)))
			goto out; /* -EEXIST: another host was first */
		log_info("sweep: round %" PRIu64 " is this host's (%s)", r, c->token);
		c->round_listed = c->round_changed = 0;
	} else if (rc) {
		goto out;
	} else if (lease_parse(b.data, &l) == 0 && !strcmp(l.token, c->token)) {
		/* ours: go on */
	} else if (l.token[0] && now - l.refreshed < SW_LEASE_STALE_S) {
		rc = 0; /* another host's, alive */
		goto out;
	} else { /* stale: take it over, from its cursor */
		char dead[300], path[256];
		sw_path(path, sizeof(path), name);
		snprintf(dead, sizeof(dead), SW_DIR "/%" PRIu64 ".dead.%s", r, c->token);
		if ((rc = store_rename(c->nfs, path, dead, 0)))
			goto out;
		store_unlink(c->nfs, dead);
		log_notice("sweep: round %" PRIu64
			   ": took over from %s (silent for %.0f s), at chunk %" PRIu64,
			   r, l.token[0] ? l.token : "(unreadable lease)", now - l.refreshed,
			   l.next);
		snprintf(l.token, sizeof(l.token), "%s", c->token);
		if (!l.start)
			l.start = now;
		l.refreshed = now;
		if ((rc = lease_format(&l, &text)) || (rc = publish(c, name, &text)))
			goto out;
		c->takeovers++;
	}

	k.threshold = threshold_for(c, r, epoch);
	struct s3_list_opts o = {
		.prefix = c->prefix,
		.max_keys = c->page_keys ? c->page_keys : 1000,
		.max_pages = c->chunk_pages ? c->chunk_pages : SW_CHUNK_PAGES,
	};
	struct buf start = { 0 };
	if (l.cursor.len &&
	    ((rc = buf_puts(&start, l.cursor.data)) || (rc = buf_append(&start, "", 1))))
		goto out;
	o.start_after = start.data;
	rc = s3_list(c->s3, &o, chunk_page, &k);
	buf_free(&start);
	if (rc) {
		if (rc < 0)
			log_warn("sweep: round %" PRIu64
				 ": listing S3 failed: %s (tried again later)",
				 r, strerror(-rc));
		rc = rc < 0 ? rc : 0;
		goto out;
	}
	/* the chunk: "C <cursor>" (or "E" at the end of the bucket), then the lines */
	struct buf head = { 0 };
	if (k.ended)
		rc = buf_puts(&head, "E\n");
	else if (!(rc = buf_puts(&head, "C ")) && !(rc = put_escaped(&head, k.last_key.data)))
		rc = buf_append(&head, "\n", 1);
	if (!rc && k.lines.len)
		rc = buf_append(&head, k.lines.data, k.lines.len);
	if (rc) {
		buf_free(&head);
		goto out;
	}
	/* still ours? (a host that took over meanwhile owns the round) */
	snprintf(name, sizeof(name), "%" PRIu64 ".lease", r);
	struct lease now_l = { 0 };
	if (read_named(c, name, &b) || lease_parse(b.data, &now_l) ||
	    strcmp(now_l.token, c->token)) {
		buf_free(&now_l.cursor);
		buf_free(&head);
		log_notice("sweep: round %" PRIu64 ": another host took it over", r);
		rc = 0;
		goto out;
	}
	buf_free(&now_l.cursor);
	snprintf(name, sizeof(name), "%" PRIu64 ".c%" PRIu64, r, l.next);
	rc = publish(c, name, &head);
	buf_free(&head);
	if (rc == -EEXIST) { /* published by the host we took over from */
		if ((rc = read_named(c, name, &b)))
			goto out;
		char *nl = strchr(b.data, '\n');
		if (nl)
			*nl = '\0';
		k.ended = !strcmp(b.data, "E");
		buf_reset(&k.last_key);
		if (!k.ended &&
		    (strncmp(b.data, "C ", 2) || unescape(b.data + 2) ||
		     buf_puts(&k.last_key, b.data + 2) || buf_append(&k.last_key, "", 1))) {
			log_err("sweep: %s is malformed", name);
			rc = -EIO;
			goto out;
		}
	} else if (rc) {
		goto out;
	} else {
		c->chunks_written++;
		c->listed += k.listed;
		c->round_listed += k.listed;
		c->round_changed += k.nlines;
	}
	l.next++;
	l.refreshed = wall_now();
	buf_reset(&l.cursor);
	if ((rc = buf_puts(&l.cursor, k.last_key.data ? k.last_key.data : "")) ||
	    (rc = buf_append(&l.cursor, "", 1)))
		goto out;
	l.cursor.len--;
	if (k.ended) {
		snprintf(name, sizeof(name), "%" PRIu64 ".done", r);
		buf_reset(&text);
		if ((rc = buf_printf(&text, "%.3f %" PRIu64 "\n", l.start, l.next)) ||
		    ((rc = publish(c, name, &text)) && rc != -EEXIST))
			goto out;
		log_info("sweep: round %" PRIu64 " done: %" PRIu64
			 " chunks in %.0f s; this host listed %" PRIu64 " keys, %" PRIu64
			 " changed",
			 r, l.next, wall_now() - l.start, c->round_listed, c->round_changed);
		c->round_listed = c->round_changed = 0;
		struct rm_ctx x = { c, r >= SW_KEEP_ROUNDS ? r - SW_KEEP_ROUNDS + 1 : 0 };
		store_readdir(c->nfs, SW_DIR, rm_old, &x);
		rc = 0;
	} else {
		snprintf(name, sizeof(name), "%" PRIu64 ".lease", r);
		rc = lease_format(&l, &text);
		rc = rc ? rc : replace(c, name, &text);
		*more = !rc;
	}
out:
	buf_free(&b);
	buf_free(&text);
	buf_free(&l.cursor);
	buf_free(&k.lines);
	buf_free(&k.last_key);
	return rc == -EEXIST ? 0 : rc;
}

/* --- reading the chunks -------------------------------------------------------------- */

static int ckpt_get(struct sw_ctx *c, uint64_t *r, uint64_t *n)
{
	char v[64];
	if (ledger_ckpt_get(c->ledger, SW_CKPT, v, sizeof(v)) <= 0 ||
	    sscanf(v, "%" SCNu64 " %" SCNu64, r, n) != 2)
		return -ENOENT;
	return 0;
}

static void ckpt_put(struct sw_ctx *c, uint64_t r, uint64_t n)
{
	char v[64];
	snprintf(v, sizeof(v), "%" PRIu64 " %" PRIu64, r, n);
	int rc = ledger_ckpt_put(c->ledger, SW_CKPT, v);
	if (rc)
		log_warn("sweep: cannot record how far this host read: %s", strerror(-rc));
}

static int full_page(void *arg, const struct s3xml_list *page)
{
	struct sw_ctx *c = arg;
	char path[NAME_MAX_PATH + 2];
	for (size_t i = 0; i < page->nobjects; i++) {
		const struct s3xml_object *o = &page->objects[i];
		if (o->etag[0] && !name_key_to_path(c->prefix, o->key, path, sizeof(path)) &&
		    strcmp(path, "/"))
			c->changed(c->arg, path, o->etag, o->size);
	}
	return c->stop(c->arg) ? 1 : 0;
}

/* Every line of a chunk, handed to the caller. */
static void apply_chunk(struct sw_ctx *c, char *text)
{
	char *save = NULL;
	strtok_r(text, "\n", &save); /* the cursor line */
	for (char *line; (line = strtok_r(NULL, "\n", &save));) {
		const char *etag, *path;
		uint64_t size;
		if (sw_parse_line(line, &etag, &size, &path)) {
			log_warn("sweep: a malformed line in a chunk, skipped");
			continue;
		}
		c->changed(c->arg, path, etag, size);
		c->lines_read++;
	}
}

static int read_chunks(struct sw_ctx *c, uint64_t now_r)
{
	uint64_t r, n;
	struct buf b = { 0 };
	char name[64];
	int rc = 0;
	if (ckpt_get(c, &r, &n) || r > now_r) {
		r = now_r;
		n = 0;
		ckpt_put(c, r, n);
	}
	if (now_r - r >= SW_KEEP_ROUNDS) { /* this host fell behind: list it once itself */
		log_notice("sweep: this host last read round %" PRIu64
			   ", and the fleet keeps %d rounds:"
			   " listing the bucket itself once",
			   r, SW_KEEP_ROUNDS);
		struct s3_list_opts o = { .prefix = c->prefix, .max_keys = 1000 };
		if ((rc = s3_list(c->s3, &o, full_page, c)) < 0) {
			log_warn("sweep: listing S3 failed: %s (tried again later)", strerror(-rc));
			goto out;
		}
		if (rc > 0) { /* stopped */
			rc = 0;
			goto out;
		}
		c->full_listings++;
		r = now_r;
		n = 0;
		ckpt_put(c, r, n);
	}
	while (!c->stop(c->arg)) {
		snprintf(name, sizeof(name), "%" PRIu64 ".c%" PRIu64, r, n);
		rc = read_named(c, name, &b);
		if (rc == 0) {
			apply_chunk(c, b.data);
			ckpt_put(c, r, ++n);
			continue;
		}
		if (rc != -ENOENT)
			goto out;
		rc = 0;
		if (r == now_r)
			break; /* the current round: more later */
		/* a past round: move on once it is done and read, or abandoned */
		snprintf(name, sizeof(name), "%" PRIu64 ".done", r);
		int done = read_named(c, name, &b) == 0;
		uint64_t chunks =
			done ? strtoull(strchr(b.data, ' ') ? strchr(b.data, ' ') + 1 : "0", NULL,
					10) :
			       0;
		if (done && n < chunks)
			break; /* published, not yet visible: next step */
		if (!done) {
			struct lease l = { 0 };
			snprintf(name, sizeof(name), "%" PRIu64 ".lease", r);
			int alive = read_named(c, name, &b) == 0 && lease_parse(b.data, &l) == 0 &&
				    wall_now() - l.refreshed < SW_LEASE_STALE_S;
			buf_free(&l.cursor);
			if (alive)
				break; /* still being swept */
		}
		r++;
		n = 0;
		ckpt_put(c, r, n);
	}
out:
	buf_free(&b);
	return rc;
}

/* --- the step ------------------------------------------------------------------------ */

int sw_init(struct sw_ctx *c)
{
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	for (char *s = host; *s; s++)
		if (*s == '.' || *s == ' ' || *s == '/' || *s == '\n')
			*s = '-';
	c->started = wall_now();
	snprintf(c->token, sizeof(c->token), "%.40s-%d-%.0f", host, (int)getpid(), c->started);
	return c->period && c->changed && c->stop ? 0 : -EINVAL;
}

int sw_step(struct sw_ctx *c)
{
	struct buf b = { 0 };
	int rc = store_mkdir(c->nfs, SW_DIR, 0755);
	if (rc && rc != -EEXIST)
		goto out;
	rc = read_named(c, "epoch", &b);
	if (rc == -ENOENT) {
		if ((rc = buf_printf(&b, "%.3f\n", c->started)) == 0) {
			rc = publish(c, "epoch", &b);
			rc = rc == -EEXIST ? 0 : rc;
		}
		rc = rc ? rc : read_named(c, "epoch", &b);
	}
	if (rc)
		goto out;
	double epoch = strtod(b.data, NULL);
	uint64_t r = (uint64_t)(time(NULL) / c->period);
	uint64_t sr = c->holding ? c->hold_round : r; /* a round this host holds goes on */
	int more = 0;
	if ((rc = sweep_chunk(c, sr, epoch, &more)))
		log_warn("sweep: round %" PRIu64 ": %s", sr, strerror(-rc));
	c->holding = more;
	c->hold_round = sr;
	rc = read_chunks(c, r);
	if (!rc)
		rc = more;
out:
	if (rc < 0)
		log_warn("sweep: %s (tried again later)", strerror(-rc));
	buf_free(&b);
	return rc;
}

static int rm_all(void *arg, const struct store_dirent *de)
{
	struct store *nfs = arg;
	char path[300];
	if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
		return 0;
	snprintf(path, sizeof(path), SW_DIR "/%s", de->name);
	store_unlink(nfs, path);
	return 0;
}

int sw_remove_all(struct store *nfs)
{
	int rc = store_readdir(nfs, SW_DIR, rm_all, nfs);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = store_rmdir(nfs, SW_DIR);
	return rc == -ENOENT ? 0 : rc;
}
