/* route.c - the namespace (spec section 3): which store serves a path, and the merged
 * directory listing. Lookup order for a path P:
 *   1. the new store has P                      -> that entry, whatever its type
 *   2. P is whited out, or its parent is opaque -> ENOENT
 *   3. S3 has P (object or keys under P/)       -> a file or a directory from S3
 *   4. otherwise ENOENT
 * (The spec checks whiteouts of P's ancestors too; the kernel looks every ancestor up
 * before P, and an ancestor that is whited out answers ENOENT there.)
 * A store error other than ENOENT is returned as it is: an unreachable server must
 * never look like a missing file. No locks: every store is thread-safe on its own. */
#include "view/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cfg.h"
#include "view/dcache.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "base/naming.h"
#include "base/stats.h"
#include "base/util.h"
#include "view/whiteout.h"

static int s3_entry(struct route_entry *out, const struct store_attr *a)
{
	out->src = ROUTE_S3;
	out->attr = *a;
	return 0;
}

static int lookup(struct route *r, const char *path, struct route_entry *out, int new_name)
{
	struct store_attr cached;
	int parent_on_nfs = 1;
	memset(out, 0, sizeof(*out));
	if (!name_path_ok(path))     /* reserved or impossible names do not exist */
		return name_too_long(path) ? -ENAMETOOLONG : -ENOENT;
	if (atomic_load_explicit(&r->finished, memory_order_relaxed)) {
		/* finished: the new store alone is the tree (its markers are gone) */
		int rc = store_stat(r->nfs, path, &out->attr);
		out->src = ROUTE_NFS;
		return rc == -ENOTDIR ? -ENOENT : rc;
	}

	/* A fresh listing of the parent answers for S3, and, when the parent is not on the
	 * new store at all, for the new store too: no round trip. */
	uint64_t pgen = dc_path_generation(path);
	enum dc_answer ans = dc_lookup(path, &cached, &parent_on_nfs, new_name);
	if (ans != DC_MISS && !parent_on_nfs)
		return ans == DC_S3 ? s3_entry(out, &cached) : -ENOENT;

	/* An ancestor a lookup found in S3 alone (dcache, 5 s): the new store cannot have
	 * path, a whiteout of it or an opaque parent either. */
	int off_nfs = dc_off_nfs(path);
	uint64_t gen = dc_generation();
	int rc = off_nfs ? -ENOENT : store_stat(r->nfs, path, &out->attr);
	if (rc == 0) {
		out->src = ROUTE_NFS;
		return 0;
	}
	if (rc != -ENOENT && rc != -ENOTDIR)
		return rc;
	int nfs_absent = rc == -ENOENT;
	if (ans != DC_MISS)
		return ans == DC_S3 ? s3_entry(out, &cached) : -ENOENT;
	if (strcmp(path, "/") != 0 && !off_nfs) {
		rc = wh_is_whiteout(r->nfs, path);
		if (rc)
			return rc > 0 ? -ENOENT : rc;
		char parent[NAME_MAX_PATH + 2];
		const char *slash = strrchr(path, '/');
		snprintf(parent, sizeof(parent), "%.*s", slash == path ? 1 : (int)(slash - path),
			 path);
		rc = wh_is_opaque(r->nfs, parent);
		if (rc)
			return rc > 0 ? -ENOENT : rc;
	}

	rc = store_stat(r->s3, path, &out->attr);
	if (rc == 0) {
		out->src = ROUTE_S3;
		dc_note_s3(path, &out->attr);
		if (nfs_absent && S_ISDIR(out->attr.mode))
			dc_note_off_nfs(path, gen);
		return 0;
	}
	if (rc == -ENOENT || rc == -ENOTDIR)
		dc_note_s3_absent(path, pgen);
	return rc == -ENOTDIR ? -ENOENT : rc;
}

int route_lookup(struct route *r, const char *path, struct route_entry *out)
{
	return lookup(r, path, out, 0);
}

int route_lookup_new(struct route *r, const char *path, struct route_entry *out)
{
	return lookup(r, path, out, 1);
}

/* 64-bit FNV-1a: a stable inode number for an S3-only path (same on every mount of the
 * same prefix). The top bit is set so it stays clear of NFS file ids, which servers
 * allocate from the bottom. */
uint64_t route_s3_ino(const struct route *r, const char *path)
{
	const char *prefix = r->cfg->s3_prefix;
	uint64_t h = 1469598103934665603ull;
	for (const char *s = prefix; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	for (const char *s = path; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h | (1ull << 63);
}

void route_to_stat(const struct route *r, const char *path, const struct route_entry *e,
		   struct stat *st)
{
	const struct store_attr *a = &e->attr;
	memset(st, 0, sizeof(*st));
	st->st_mode = a->mode;
	st->st_nlink = a->nlink ? a->nlink : (S_ISDIR(a->mode) ? 2 : 1);
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_rdev = (dev_t)a->rdev;
	st->st_blksize = 1 << 20;
	st->st_blocks = a->blocks ? (blkcnt_t)a->blocks : (blkcnt_t)((a->size + 511) / 512);
	st->st_atim = a->atime.tv_sec ? a->atime : a->mtime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime.tv_sec ? a->ctime : a->mtime;
	uint64_t mapped;
	if (e->src == ROUTE_NFS && a->ino)
		st->st_ino = (ino_t)(r->ledger && ledger_ino_get(r->ledger, a->ino, &mapped) == 0 ?
				     mapped : a->ino);
	else if (path)      /* NULL: an open file whose name is gone; fs.c knows its number */
		st->st_ino = (ino_t)route_s3_ino(r, path);
	if (S_ISDIR(a->mode) && e->src == ROUTE_S3 && !a->mtime.tv_sec) {
		st->st_mtim = r->mount_time;
		st->st_atim = r->mount_time;
		st->st_ctim = r->mount_time;
	}
}

/* --- readdir: merge the two listings ------------------------------------------------
 * The new store's names are collected first (a sorted array of strings), then each S3
 * name is checked against them, so a clash costs a binary search, not a rescan. */

struct name_set {
	char **names;
	size_t n, cap;
};

static int set_add(struct name_set *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **p = realloc(s->names, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->names = p;
		s->cap = cap;
	}
	s->names[s->n] = strdup(name);
	if (!s->names[s->n])
		return -ENOMEM;
	s->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int set_has(const struct name_set *s, const char *name)
{
	return s->n && bsearch(&name, s->names, s->n, sizeof(char *), cmp_str) != NULL;
}

static void set_free(struct name_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
}

struct s3_file {
	char *name;
	struct store_attr attr;
	int has_attr;
};

struct merge_ctx {
	struct route *r;
	const char *dir;
	struct name_set nfs_names;    /* sorted after the new store's listing */
	struct name_set s3_dirs;      /* S3 directory names (common prefixes) */
	struct name_set whiteouts;    /* hex SHA-256 of the names whited out here (sorted) */
	int opaque;                   /* the directory is opaque: S3 contributes nothing */
	struct s3_file *files;        /* S3 objects, held until every page was seen */
	size_t nfiles, capfiles;
	route_fill_fn fn;
	void *arg;
	struct dc_dir *dc;            /* this listing, recorded for later lookups */
};

static void entry_stat(struct merge_ctx *m, const char *name, const struct store_attr *attr,
		       uint32_t type, enum route_src src, struct stat *st)
{
	struct route_entry e = { .src = src };
	if (attr)
		e.attr = *attr;
	else
		e.attr.mode = type ? type : S_IFREG;
	if (src == ROUTE_S3 && !(e.attr.have & STORE_HAVE_MODE))
		e.attr.mode = (e.attr.mode & S_IFMT) |
			      (S_ISDIR(e.attr.mode) ? m->r->cfg->dir_mode : m->r->cfg->file_mode);
	if (src == ROUTE_S3 && !attr) {
		e.attr.uid = m->r->cfg->uid;
		e.attr.gid = m->r->cfg->gid;
	}
	char path[NAME_MAX_PATH + 2];
	size_t dl = strlen(m->dir);
	if (dl == 1)
		dl = 0;
	snprintf(path, sizeof(path), "%.*s/%s", (int)dl, m->dir, name);
	route_to_stat(m->r, path, &e, st);
}

static int on_nfs_entry(void *arg, const struct store_dirent *de)
{
	struct merge_ctx *m = arg;
	if (!strncmp(de->name, WH_PREFIX, sizeof(WH_PREFIX) - 1))
		return set_add(&m->whiteouts, de->name + sizeof(WH_PREFIX) - 1);
	if (!strcmp(de->name, WH_OPAQUE)) {
		m->opaque = 1;
		return 0;
	}
	if (!name_segment_ok(de->name, strlen(de->name)))
		return 0;                /* ".", "..", and other reserved names stay hidden */
	int rc = set_add(&m->nfs_names, de->name);
	if (rc)
		return rc;
	struct stat st;
	entry_stat(m, de->name, de->attr, de->type, ROUTE_NFS, &st);
	return m->fn(m->arg, de->name, &st, ROUTE_NFS);
}

/* S3 pages interleave objects and common prefixes, and a shadowed object "a" may come
 * pages before the prefix "a/" that hides it; so objects are held until the end. */
static int on_s3_entry(void *arg, const struct store_dirent *de)
{
	struct merge_ctx *m = arg;
	size_t len = strlen(de->name);
	if (!name_segment_ok(de->name, len)) {
		stats_inc(unreachable);  /* spec 2: reserved ".ferryfs" keys are unreachable too */
		return 0;
	}
	if (set_has(&m->nfs_names, de->name))
		return 0;                /* the new store wins a name clash */
	if (m->whiteouts.n) {
		char hex[65];
		if (util_sha256_hex(de->name, len, hex))
			return -EIO;
		if (set_has(&m->whiteouts, hex))
			return 0;            /* deleted through the mount */
	}
	if (S_ISDIR(de->type))
		return set_add(&m->s3_dirs, de->name);
	if (m->nfiles == m->capfiles) {
		size_t cap = m->capfiles ? m->capfiles * 2 : 256;
		struct s3_file *p = realloc(m->files, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		m->files = p;
		m->capfiles = cap;
	}
	struct s3_file *f = &m->files[m->nfiles];
	f->name = strdup(de->name);
	if (!f->name)
		return -ENOMEM;
	f->has_attr = de->attr != NULL;
	if (de->attr)
		f->attr = *de->attr;
	m->nfiles++;
	return 0;
}

/* An entry of a real S3 listing: recorded as it came (for dc_replay), then merged. */
static int on_s3_listed(void *arg, const struct store_dirent *de)
{
	struct merge_ctx *m = arg;
	dc_add_raw(m->dc, de);
	return on_s3_entry(arg, de);
}

static int emit_s3(struct merge_ctx *m)
{
	int rc = 0;
	if (m->s3_dirs.n > 1)
		qsort(m->s3_dirs.names, m->s3_dirs.n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < m->s3_dirs.n && !rc; i++) {
		struct stat st;
		struct store_attr da = { .mode = S_IFDIR | m->r->cfg->dir_mode, .nlink = 2,
					 .uid = m->r->cfg->uid, .gid = m->r->cfg->gid,
					 .have = STORE_IMPLIED_DIR };
		dc_add(m->dc, m->s3_dirs.names[i], &da);
		entry_stat(m, m->s3_dirs.names[i], NULL, S_IFDIR, ROUTE_S3, &st);
		rc = m->fn(m->arg, m->s3_dirs.names[i], &st, ROUTE_S3);
	}
	for (size_t i = 0; i < m->nfiles && !rc; i++) {
		struct s3_file *f = &m->files[i];
		if (set_has(&m->s3_dirs, f->name)) {
			stats_inc(shadowed); /* object "a" and keys "a/...": the directory wins */
			continue;
		}
		struct stat st;
		if (!f->has_attr) {
			memset(&f->attr, 0, sizeof(f->attr));
			f->attr.mode = S_IFREG;
		}
		if (!(f->attr.have & STORE_HAVE_MODE))
			f->attr.mode = S_IFREG | m->r->cfg->file_mode;
		if (!(f->attr.have & STORE_HAVE_UID))
			f->attr.uid = m->r->cfg->uid;
		if (!(f->attr.have & STORE_HAVE_GID))
			f->attr.gid = m->r->cfg->gid;
		f->has_attr = 1;
		dc_add(m->dc, f->name, &f->attr);
		entry_stat(m, f->name, &f->attr, S_IFREG, ROUTE_S3, &st);
		rc = m->fn(m->arg, f->name, &st, ROUTE_S3);
	}
	return rc;
}

static int readdir_impl(struct route *r, const char *path, route_fill_fn fn, void *arg,
			int may_replay)
{
	struct merge_ctx m = { .r = r, .dir = path, .fn = fn, .arg = arg };
	int found = 0, rc;
	if (!name_path_ok(path))
		return name_too_long(path) ? -ENAMETOOLONG : -ENOENT;

	rc = store_readdir(r->nfs, path, on_nfs_entry, &m);
	if (rc == 0)
		found = 1;
	else if (rc != -ENOENT && rc != -ENOTDIR)
		goto out;
	/* qsort's array is declared nonnull: an empty list has names == NULL (UBSan). */
	if (m.nfs_names.n > 1)
		qsort(m.nfs_names.names, m.nfs_names.n, sizeof(char *), cmp_str);
	if (m.whiteouts.n > 1)
		qsort(m.whiteouts.names, m.whiteouts.n, sizeof(char *), cmp_str);
	if (m.opaque || atomic_load_explicit(&r->finished, memory_order_relaxed)) {
		m.dc = dc_begin(path, found);
		rc = found ? 0 : -ENOENT;
		goto out;
	}

	/* The S3 side of a listing younger than DC_TTL_S is merged again with the fresh
	 * new-store listing above (whiteouts, opaque, clashes all re-applied); it is not
	 * recorded again, so it still expires DC_TTL_S after S3 was listed. */
	rc = may_replay ? dc_replay(path, found, on_s3_entry, &m) : 1;
	if (rc == 1) {
		m.dc = dc_begin(path, found);
		rc = store_readdir(r->s3, path, on_s3_listed, &m);
		dc_raw_done(m.dc, rc);
	}
	if (rc == 0)
		rc = emit_s3(&m);
	else if (rc == -ENOENT || rc == -ENOTDIR)
		rc = found ? 0 : -ENOENT;
out:
	if (rc == 0)
		dc_commit(m.dc);
	else
		dc_abort(m.dc);
	set_free(&m.nfs_names);
	set_free(&m.s3_dirs);
	set_free(&m.whiteouts);
	for (size_t i = 0; i < m.nfiles; i++)
		free(m.files[i].name);
	free(m.files);
	return rc;
}

int route_readdir(struct route *r, const char *path, route_fill_fn fn, void *arg)
{
	return readdir_impl(r, path, fn, arg, 0);
}

int route_readdir_cached(struct route *r, const char *path, route_fill_fn fn, void *arg)
{
	return readdir_impl(r, path, fn, arg, 1);
}
