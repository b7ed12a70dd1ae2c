/* links.c - the names of hard-linked files the kernel may cache attributes for (links.h).
 *
 * Each recorded name is in two hash chains (by path, by st_ino) and on one recency list;
 * the oldest name goes first when a bound is passed. Locking: lk_lock protects every field
 * of the table and every name in it; it is a leaf: nothing is called with it held but
 * malloc and free. Names handed back to the caller are copies. */
#include "view/links.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/naming.h"

#define LK_BITS 12
#define LK_BUCKETS (1u << LK_BITS)

struct lk_name {
	char *path;
	size_t len;
	uint64_t ino;
	struct lk_name *path_next;      /* chain of by_path[] */
	struct lk_name *ino_next;       /* chain of by_ino[] */
	struct lk_name *older, *newer;  /* recency list */
};

struct lk_table {
	pthread_mutex_t lk_lock;                  /* protects all below */
	struct lk_name *by_path[LK_BUCKETS];
	struct lk_name *by_ino[LK_BUCKETS];
	struct lk_name *oldest, *newest;
	size_t n, bytes;
	size_t max_names, max_bytes;
};

static size_t path_slot(const char *path)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h & (LK_BUCKETS - 1));
}

static size_t ino_slot(uint64_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> (64 - LK_BITS));
}

static struct lk_name *find(struct lk_table *t, const char *path)
{
	struct lk_name *e = t->by_path[path_slot(path)];
	while (e && strcmp(e->path, path))
		e = e->path_next;
	return e;
}

static void path_chain(struct lk_table *t, struct lk_name *e)
{
	struct lk_name **head = &t->by_path[path_slot(e->path)];
	e->path_next = *head;
	*head = e;
}

static void path_unchain(struct lk_table *t, struct lk_name *e)
{
	struct lk_name **pp = &t->by_path[path_slot(e->path)];
	while (*pp != e)
		pp = &(*pp)->path_next;
	*pp = e->path_next;
}

static void ino_chain(struct lk_table *t, struct lk_name *e)
{
	struct lk_name **head = &t->by_ino[ino_slot(e->ino)];
	e->ino_next = *head;
	*head = e;
}

static void ino_unchain(struct lk_table *t, struct lk_name *e)
{
	struct lk_name **pp = &t->by_ino[ino_slot(e->ino)];
	while (*pp != e)
		pp = &(*pp)->ino_next;
	*pp = e->ino_next;
}

static void recency_unlink(struct lk_table *t, struct lk_name *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	e->older = e->newer = NULL;
}

static void recency_push(struct lk_table *t, struct lk_name *e)
{
	e->older = t->newest;
	e->newer = NULL;
	if (t->newest)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

static void drop(struct lk_table *t, struct lk_name *e)
{
	path_unchain(t, e);
	ino_unchain(t, e);
	recency_unlink(t, e);
	t->n--;
	t->bytes -= e->len + 1;
	free(e->path);
	free(e);
}

static void evict(struct lk_table *t)
{
	while (t->oldest && (t->n > t->max_names || t->bytes > t->max_bytes))
		drop(t, t->oldest);
}

static int insert(struct lk_table *t, const char *path, uint64_t ino)
{
	struct lk_name *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->len = strlen(path);
	e->path = malloc(e->len + 1);
	if (!e->path) {
		free(e);
		return -ENOMEM;
	}
	memcpy(e->path, path, e->len + 1);
	e->ino = ino;
	path_chain(t, e);
	ino_chain(t, e);
	recency_push(t, e);
	t->n++;
	t->bytes += e->len + 1;
	evict(t);
	return 0;
}

/* Copies of the names of file ino other than except into *out; the count or -ENOMEM. */
static int collect(struct lk_table *t, uint64_t ino, const struct lk_name *except,
		   struct lk_names *out)
{
	size_t n = 0;
	for (struct lk_name *e = t->by_ino[ino_slot(ino)]; e; e = e->ino_next)
		n += e->ino == ino && e != except;
	if (n == 0)
		return 0;
	out->v = calloc(n, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (struct lk_name *e = t->by_ino[ino_slot(ino)]; e; e = e->ino_next) {
		if (e->ino != ino || e == except)
			continue;
		out->v[out->n] = strdup(e->path);
		if (!out->v[out->n]) {
			lk_names_free(out);
			return -ENOMEM;
		}
		out->n++;
	}
	return (int)out->n;
}

/* path is p itself or a name below it */
static int under(const char *path, const char *p, size_t plen)
{
	return strncmp(path, p, plen) == 0 && (path[plen] == '\0' || path[plen] == '/');
}

struct lk_table *lk_new(size_t max_names, size_t max_bytes)
{
	struct lk_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (pthread_mutex_init(&t->lk_lock, NULL)) {
		free(t);
		return NULL;
	}
	t->max_names = max_names;
	t->max_bytes = max_bytes;
	return t;
}

void lk_free(struct lk_table *t)
{
	if (!t)
		return;
	while (t->oldest)
		drop(t, t->oldest);
	pthread_mutex_destroy(&t->lk_lock);
	free(t);
}

static int worth(const struct stat *st)
{
	return st && !S_ISDIR(st->st_mode) && st->st_nlink > 1;
}

int lk_seen(struct lk_table *t, const char *path, const struct stat *st)
{
	if (!t || !path || !worth(st))
		return 0;
	int rc = 0;
	uint64_t ino = (uint64_t)st->st_ino;
	pthread_mutex_lock(&t->lk_lock);
	struct lk_name *e = find(t, path);
	if (!e) {
		rc = insert(t, path, ino);
		goto out;
	}
	if (e->ino != ino) {   /* the name now names another file */
		ino_unchain(t, e);
		e->ino = ino;
		ino_chain(t, e);
	}
	recency_unlink(t, e);
	recency_push(t, e);
out:
	pthread_mutex_unlock(&t->lk_lock);
	return rc;
}

int lk_seen_in(struct lk_table *t, const char *dir, const char *name, const struct stat *st)
{
	if (!t || !dir || !worth(st))
		return 0;
	char path[NAME_MAX_PATH + 2];
	size_t dl = strlen(dir);
	const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
	int n = snprintf(path, sizeof(path), "%s%s%s", dir, sep, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return lk_seen(t, path, st);
}

int lk_unlinked(struct lk_table *t, const char *path, struct lk_names *out)
{
	out->v = NULL;
	out->n = 0;
	if (!t)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&t->lk_lock);
	struct lk_name *e = find(t, path);
	if (e) {
		rc = collect(t, e->ino, e, out);
		drop(t, e);
	}
	pthread_mutex_unlock(&t->lk_lock);
	return rc;
}

int lk_linked(struct lk_table *t, const char *from, struct lk_names *out)
{
	out->v = NULL;
	out->n = 0;
	if (!t)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&t->lk_lock);
	struct lk_name *e = find(t, from);
	if (e)
		rc = collect(t, e->ino, e, out);
	pthread_mutex_unlock(&t->lk_lock);
	return rc;
}

int lk_renamed(struct lk_table *t, const char *from, const char *to, struct lk_names *out)
{
	out->v = NULL;
	out->n = 0;
	if (!t || strcmp(from, to) == 0)
		return 0;
	int rc = 0;
	size_t fl = strlen(from), tl = strlen(to);
	pthread_mutex_lock(&t->lk_lock);
	struct lk_name *ef = find(t, from), *et = find(t, to);
	if (ef && et && ef->ino == et->ino)
		goto out;          /* two names of one file: rename(2) does nothing */
	if (et)
		rc = collect(t, et->ino, et, out);
	/* what to named is gone (a file, or an empty directory's stale names) */
	for (struct lk_name *e = t->oldest, *next; e; e = next) {
		next = e->newer;
		if (under(e->path, to, tl))
			drop(t, e);
	}
	for (struct lk_name *e = t->oldest, *next; e; e = next) {
		next = e->newer;
		if (!under(e->path, from, fl))
			continue;
		size_t len = tl + (e->len - fl);
		char *p = malloc(len + 1);
		if (!p) {          /* forgotten: at worst stale for attr_timeout */
			drop(t, e);
			continue;
		}
		memcpy(p, to, tl);
		memcpy(p + tl, e->path + fl, e->len - fl + 1);
		path_unchain(t, e);
		free(e->path);
		t->bytes = t->bytes - e->len + len;
		e->path = p;
		e->len = len;
		path_chain(t, e);
	}
	evict(t);
out:
	pthread_mutex_unlock(&t->lk_lock);
	return rc;
}

void lk_names_free(struct lk_names *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->v[i]);
	free(names->v);
	names->v = NULL;
	names->n = 0;
}

size_t lk_count(struct lk_table *t)
{
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lk_lock);
	size_t n = t->n;
	pthread_mutex_unlock(&t->lk_lock);
	return n;
}

int lk_ino(struct lk_table *t, const char *path, uint64_t *ino)
{
	if (!t)
		return -ENOENT;
	pthread_mutex_lock(&t->lk_lock);
	struct lk_name *e = find(t, path);
	if (e)
		*ino = e->ino;
	pthread_mutex_unlock(&t->lk_lock);
	return e ? 0 : -ENOENT;
}
