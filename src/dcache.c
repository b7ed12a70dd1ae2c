/* dcache.c - the short-lived directory cache (see dcache.h).
 *
 * Locking: one mutex, dc_lock, protects the slot table, every published dc_dir in it and
 * dc_entries. A dc_dir being built (between dc_begin and dc_commit) belongs to the one
 * thread building it and is not reachable from the table. No other lock is ever taken
 * while dc_lock is held. */
#include "dcache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct dc_ent {
	char *name;
	struct store_attr attr;
};

struct dc_dir {
	char *path;
	int on_nfs;
	double born;
	struct dc_ent *v;
	size_t n, cap;
	int failed;        /* out of memory while building: never published */
};

/* One S3 path found by a lookup (not a listing), kept DC_ONE_TTL_S. */
struct dc_one {
	char *path;                /* NULL: empty */
	struct store_attr attr;
	double born;
};

static pthread_mutex_t dc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dc_dir *dc_slots[DC_MAX_DIRS];   /* protected by dc_lock */
static size_t dc_entries;                        /* protected by dc_lock */
static struct dc_one dc_ones[DC_ONE_SLOTS];      /* protected by dc_lock */

static size_t one_slot(const char *path)
{
	uint64_t h = 1469598103934665603ull;       /* FNV-1a */
	for (const char *s = path; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % DC_ONE_SLOTS);
}

static void one_drop(struct dc_one *o)
{
	free(o->path);
	o->path = NULL;
}

void dc_note_s3(const char *path, const struct store_attr *attr)
{
	char *copy = strdup(path);
	if (!copy)
		return;              /* a cache: not remembering is always correct */
	pthread_mutex_lock(&dc_lock);
	struct dc_one *o = &dc_ones[one_slot(path)];
	free(o->path);
	o->path = copy;
	o->attr = *attr;
	o->born = util_now_s();
	pthread_mutex_unlock(&dc_lock);
}

static void dir_free(struct dc_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d->path);
	free(d);
}

struct dc_dir *dc_begin(const char *dir, int on_nfs)
{
	struct dc_dir *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->path = strdup(dir);
	if (!d->path) {
		free(d);
		return NULL;
	}
	d->on_nfs = on_nfs;
	d->born = util_now_s();
	return d;
}

void dc_add(struct dc_dir *d, const char *name, const struct store_attr *attr)
{
	if (!d || d->failed)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct dc_ent *v = realloc(d->v, cap * sizeof(*v));
		if (!v) {
			d->failed = 1;
			return;
		}
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n].name = strdup(name);
	if (!d->v[d->n].name) {
		d->failed = 1;
		return;
	}
	d->v[d->n].attr = *attr;
	d->n++;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dc_ent *)a)->name, ((const struct dc_ent *)b)->name);
}

void dc_abort(struct dc_dir *d)
{
	dir_free(d);
}

/* Drop slot i. Called with dc_lock held. */
static void slot_drop(size_t i)
{
	dc_entries -= dc_slots[i]->n;
	dir_free(dc_slots[i]);
	dc_slots[i] = NULL;
}

/* The slot holding the oldest listing, or DC_MAX_DIRS when none. dc_lock held. */
static size_t slot_oldest(void)
{
	size_t o = DC_MAX_DIRS;
	for (size_t i = 0; i < DC_MAX_DIRS; i++)
		if (dc_slots[i] && (o == DC_MAX_DIRS || dc_slots[i]->born < dc_slots[o]->born))
			o = i;
	return o;
}

void dc_commit(struct dc_dir *d)
{
	if (!d)
		return;
	if (d->failed || d->n > DC_MAX_ENTRIES) {
		dir_free(d);
		return;
	}
	if (d->n > 1)       /* an empty directory has v == NULL: qsort's is nonnull */
		qsort(d->v, d->n, sizeof(*d->v), ent_cmp);
	pthread_mutex_lock(&dc_lock);
	size_t free_slot = DC_MAX_DIRS;
	for (size_t i = 0; i < DC_MAX_DIRS; i++) {
		if (dc_slots[i] && !strcmp(dc_slots[i]->path, d->path))
			slot_drop(i);
		if (!dc_slots[i] && free_slot == DC_MAX_DIRS)
			free_slot = i;
	}
	if (free_slot == DC_MAX_DIRS) {
		free_slot = slot_oldest();
		slot_drop(free_slot);
	}
	/* keep the total bounded: evict the oldest listings until the new one fits */
	while (dc_entries + d->n > DC_MAX_ENTRIES) {
		size_t o = slot_oldest();
		if (o == DC_MAX_DIRS)
			break;
		slot_drop(o);
	}
	dc_slots[free_slot] = d;
	dc_entries += d->n;
	pthread_mutex_unlock(&dc_lock);
}

enum dc_answer dc_lookup(const char *path, struct store_attr *attr, int *parent_on_nfs)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash == path ? 1 : (size_t)(slash - path);
	const char *leaf = slash + 1;
	enum dc_answer ans = DC_MISS;
	if (!*leaf)
		return DC_MISS;       /* the root has no parent listing */
	double now = util_now_s();
	pthread_mutex_lock(&dc_lock);
	for (size_t i = 0; i < DC_MAX_DIRS; i++) {
		struct dc_dir *d = dc_slots[i];
		if (!d || strlen(d->path) != plen || strncmp(d->path, path, plen))
			continue;
		if (now - d->born > DC_TTL_S) {
			slot_drop(i);
			break;
		}
		struct dc_ent key = { .name = (char *)leaf };
		struct dc_ent *e = d->n ? bsearch(&key, d->v, d->n, sizeof(*d->v), ent_cmp) : NULL;
		if (e) {
			*attr = e->attr;
			ans = DC_S3;
		} else {
			ans = DC_ABSENT;
		}
		*parent_on_nfs = d->on_nfs;
		break;
	}
	if (ans == DC_MISS) {
		struct dc_one *o = &dc_ones[one_slot(path)];
		if (o->path && now - o->born > DC_ONE_TTL_S)
			one_drop(o);
		else if (o->path && !strcmp(o->path, path)) {
			*attr = o->attr;
			*parent_on_nfs = 1;   /* not known: the new store is still asked first */
			ans = DC_S3;
		}
	}
	pthread_mutex_unlock(&dc_lock);
	return ans;
}

void dc_forget(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash == path ? 1 : (size_t)(slash - path);
	size_t len = strlen(path);
	pthread_mutex_lock(&dc_lock);
	for (size_t i = 0; i < DC_MAX_DIRS; i++) {
		struct dc_dir *d = dc_slots[i];
		if (!d)
			continue;
		size_t dl = strlen(d->path);
		int parent = dl == plen && !strncmp(d->path, path, plen);
		int below = dl >= len && !strncmp(d->path, path, len) &&
			    (d->path[len] == '\0' || d->path[len] == '/' || len == 1);
		if (parent || below)
			slot_drop(i);
	}
	for (size_t i = 0; i < DC_ONE_SLOTS; i++) {
		struct dc_one *o = &dc_ones[i];
		if (o->path && (len == 1 || (!strncmp(o->path, path, len) &&
					     (o->path[len] == '\0' || o->path[len] == '/'))))
			one_drop(o);
	}
	pthread_mutex_unlock(&dc_lock);
}

void dc_clear(void)
{
	pthread_mutex_lock(&dc_lock);
	for (size_t i = 0; i < DC_MAX_DIRS; i++)
		if (dc_slots[i])
			slot_drop(i);
	for (size_t i = 0; i < DC_ONE_SLOTS; i++)
		one_drop(&dc_ones[i]);
	pthread_mutex_unlock(&dc_lock);
}
