/* dcache.c - the short-lived directory cache (see dcache.h).
 *
 * Locking: one mutex, dc_lock, protects the slot table, every published dc_dir in it
 * (its refs and dropped fields; its entries are immutable once published) and
 * dc_entries. A dc_dir being built (between dc_begin and dc_commit) belongs to the one
 * thread building it and is not reachable from the table. No other lock is ever taken
 * while dc_lock is held, and no callback runs with it: dc_replay holds a reference
 * (refs) instead, so a listing dropped meanwhile is freed by the last holder. */
#include "view/dcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct dc_ent {
	char *name;
	struct store_attr attr;
};

/* One S3 entry as the old store listed it, before the merge (dc_replay). */
struct dc_raw {
	char *name;
	uint32_t type;
	int has_attr;
	struct store_attr attr;
};

struct dc_dir {
	char *path;
	int on_nfs;
	double born;
	struct dc_ent *v;
	size_t n, cap;
	struct dc_raw *raw;    /* the S3 side as listed, for readdir (dc_replay) */
	size_t nraw, capraw;
	int raw_rc;            /* what S3's readdir returned: 0 or -ENOENT; 1: not recorded */
	int failed;        /* out of memory while building: never published */
	int refs;          /* dc_replay calls reading it (dc_lock) */
	int dropped;       /* no longer in the table: the last dc_replay frees it (dc_lock) */
};

/* One S3 path a lookup (not a listing) found, or found absent, kept DC_ONE_TTL_S. */
struct dc_one {
	char *path;                /* NULL: empty */
	int absent;                /* 1: S3 had nothing at path (attr unused) */
	struct store_attr attr;
	double born;
};

/* A directory a lookup found on S3 and not on the new store, kept DC_TTL_S. */
struct dc_off {
	char *path;                /* NULL: empty */
	double born;
};

static pthread_mutex_t dc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dc_dir *dc_slots[DC_MAX_DIRS];   /* protected by dc_lock */
static size_t dc_entries;                        /* protected by dc_lock */
static struct dc_one dc_ones[DC_ONE_SLOTS];      /* protected by dc_lock */
static struct dc_off dc_offs[DC_OFF_SLOTS];      /* protected by dc_lock */
static uint64_t dc_gen;                          /* dc_forget calls; protected by dc_lock */
static _Thread_local int dc_bypassed;            /* this thread never reads the cache */
#define DC_PGEN_SLOTS 4096
static atomic_uint_fast64_t dc_pgen[DC_PGEN_SLOTS]; /* dc_forget of a path of the slot */
static atomic_uint_fast64_t dc_pgen_all;            /* dc_forget("/"), dc_clear */

void dc_bypass(int on)
{
	dc_bypassed = on;
}

static uint64_t hash_n(const char *path, size_t len)
{
	uint64_t h = 1469598103934665603ull;       /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)path[i]) * 1099511628211ull;
	return h;
}

static size_t one_slot(const char *path)
{
	return (size_t)(hash_n(path, strlen(path)) % DC_ONE_SLOTS);
}

/* The slot of dc_offs for the first len bytes of path, if it holds exactly them. */
static struct dc_off *off_find(const char *path, size_t len)
{
	struct dc_off *o = &dc_offs[hash_n(path, len) % DC_OFF_SLOTS];
	if (o->path && !strncmp(o->path, path, len) && o->path[len] == '\0')
		return o;
	return NULL;
}

static void off_drop(struct dc_off *o)
{
	free(o->path);
	o->path = NULL;
}

uint64_t dc_generation(void)
{
	pthread_mutex_lock(&dc_lock);
	uint64_t g = dc_gen;
	pthread_mutex_unlock(&dc_lock);
	return g;
}

void dc_note_off_nfs(const char *dir, uint64_t gen)
{
	if (!strcmp(dir, "/"))
		return;
	char *copy = strdup(dir);
	if (!copy)
		return;              /* a cache: not remembering is always correct */
	pthread_mutex_lock(&dc_lock);
	if (gen == dc_gen) {  /* nothing changed through the mount since the new store said so */
		struct dc_off *o = &dc_offs[hash_n(dir, strlen(dir)) % DC_OFF_SLOTS];
		free(o->path);
		o->path = copy;
		o->born = util_now_s();
		copy = NULL;
	}
	pthread_mutex_unlock(&dc_lock);
	free(copy);
}

int dc_off_nfs(const char *path)
{
	int off = 0;
	double now = util_now_s();
	if (dc_bypassed)
		return 0;
	pthread_mutex_lock(&dc_lock);
	/* every proper ancestor but the root: "/a" and "/a/b" of "/a/b/c" */
	for (const char *s = strchr(path + 1, '/'); s && !off; s = strchr(s + 1, '/')) {
		struct dc_off *o = off_find(path, (size_t)(s - path));
		if (!o)
			continue;
		if (now - o->born > DC_TTL_S)
			off_drop(o);
		else
			off = 1;
	}
	pthread_mutex_unlock(&dc_lock);
	return off;
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
	o->absent = 0;
	o->attr = *attr;
	o->born = util_now_s();
	pthread_mutex_unlock(&dc_lock);
}

void dc_note_s3_absent(const char *path, uint64_t pgen)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	pthread_mutex_lock(&dc_lock);
	if (pgen == dc_path_generation(path)) {   /* no change of path since it was asked */
		struct dc_one *o = &dc_ones[one_slot(path)];
		free(o->path);
		o->path = copy;
		copy = NULL;
		o->absent = 1;
		o->born = util_now_s();
	}
	pthread_mutex_unlock(&dc_lock);
	free(copy);
}

static void dir_free(struct dc_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	for (size_t i = 0; i < d->nraw; i++)
		free(d->raw[i].name);
	free(d->raw);
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
	d->raw_rc = 1;
	return d;
}

void dc_add_raw(struct dc_dir *d, const struct store_dirent *de)
{
	if (!d || d->failed)
		return;
	if (d->nraw == d->capraw) {
		size_t cap = d->capraw ? d->capraw * 2 : 64;
		struct dc_raw *v = realloc(d->raw, cap * sizeof(*v));
		if (!v) {
			d->failed = 1;
			return;
		}
		d->raw = v;
		d->capraw = cap;
	}
	struct dc_raw *e = &d->raw[d->nraw];
	e->name = strdup(de->name);
	if (!e->name) {
		d->failed = 1;
		return;
	}
	e->type = de->type;
	e->has_attr = de->attr != NULL;
	if (de->attr)
		e->attr = *de->attr;
	d->nraw++;
}

void dc_raw_done(struct dc_dir *d, int rc)
{
	if (d && (rc == 0 || rc == -ENOENT))
		d->raw_rc = rc;
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
	struct dc_dir *d = dc_slots[i];
	dc_entries -= d->n + d->nraw;
	dc_slots[i] = NULL;
	if (d->refs)
		d->dropped = 1;    /* being replayed: the last dc_replay frees it */
	else
		dir_free(d);
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
	if (d->failed || d->n + d->nraw > DC_MAX_ENTRIES) {
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
	while (dc_entries + d->n + d->nraw > DC_MAX_ENTRIES) {
		size_t o = slot_oldest();
		if (o == DC_MAX_DIRS)
			break;
		slot_drop(o);
	}
	dc_slots[free_slot] = d;
	dc_entries += d->n + d->nraw;
	pthread_mutex_unlock(&dc_lock);
}

enum dc_answer dc_lookup(const char *path, struct store_attr *attr, int *parent_on_nfs,
			 int new_name)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash == path ? 1 : (size_t)(slash - path);
	const char *leaf = slash + 1;
	enum dc_answer ans = DC_MISS;
	if (!*leaf || dc_bypassed)
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
		else if (o->path && !strcmp(o->path, path) && (!o->absent || new_name)) {
			if (!o->absent)
				*attr = o->attr;
			*parent_on_nfs = 1;   /* not known: the new store is still asked first */
			ans = o->absent ? DC_ABSENT : DC_S3;
		}
	}
	pthread_mutex_unlock(&dc_lock);
	return ans;
}

int dc_replay(const char *dir, int on_nfs, store_dirent_fn fn, void *arg)
{
	struct dc_dir *d = NULL;
	double now = util_now_s();
	if (dc_bypassed)
		return 1;
	pthread_mutex_lock(&dc_lock);
	for (size_t i = 0; i < DC_MAX_DIRS; i++) {
		if (!dc_slots[i] || strcmp(dc_slots[i]->path, dir))
			continue;
		if (now - dc_slots[i]->born > DC_TTL_S)
			slot_drop(i);
		else if (dc_slots[i]->raw_rc != 1 && dc_slots[i]->on_nfs == on_nfs)
			d = dc_slots[i];
		break;
	}
	if (d)
		d->refs++;
	pthread_mutex_unlock(&dc_lock);
	if (!d)
		return 1;
	int rc = d->raw_rc;
	for (size_t i = 0; i < d->nraw && !rc; i++) {
		struct dc_raw *e = &d->raw[i];
		struct store_dirent de = { .name = e->name, .type = e->type,
					   .attr = e->has_attr ? &e->attr : NULL };
		rc = fn(arg, &de);
	}
	pthread_mutex_lock(&dc_lock);
	int last = --d->refs == 0 && d->dropped;
	pthread_mutex_unlock(&dc_lock);
	if (last)
		dir_free(d);
	return rc;
}

uint64_t dc_path_generation(const char *path)
{
	size_t slot = (size_t)(hash_n(path, strlen(path)) % DC_PGEN_SLOTS);
	return atomic_load(&dc_pgen[slot]) + atomic_load(&dc_pgen_all);
}

void dc_forget(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash == path ? 1 : (size_t)(slash - path);
	size_t len = strlen(path);
	atomic_fetch_add(&dc_pgen[hash_n(path, len) % DC_PGEN_SLOTS], 1);
	if (len == 1)
		atomic_fetch_add(&dc_pgen_all, 1);
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
	/* what is off the new store: path and below, and path's ancestors (a change at path
	 * may have made them on the new store: a copy-up makes its parents) */
	for (size_t i = 0; i < DC_OFF_SLOTS; i++) {
		struct dc_off *o = &dc_offs[i];
		if (o->path && (len == 1 || (!strncmp(o->path, path, len) &&
					     (o->path[len] == '\0' || o->path[len] == '/'))))
			off_drop(o);
	}
	for (const char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
		struct dc_off *o = off_find(path, (size_t)(s - path));
		if (o)
			off_drop(o);
	}
	dc_gen++;
	pthread_mutex_unlock(&dc_lock);
}

void dc_clear(void)
{
	atomic_fetch_add(&dc_pgen_all, 1);
	pthread_mutex_lock(&dc_lock);
	for (size_t i = 0; i < DC_MAX_DIRS; i++)
		if (dc_slots[i])
			slot_drop(i);
	for (size_t i = 0; i < DC_ONE_SLOTS; i++)
		one_drop(&dc_ones[i]);
	for (size_t i = 0; i < DC_OFF_SLOTS; i++)
		off_drop(&dc_offs[i]);
	dc_gen++;
	pthread_mutex_unlock(&dc_lock);
}
