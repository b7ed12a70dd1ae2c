/* plan.c - the migration planner (plan.h): classify a bucket's keys as the mount will see
 * them, fed in ascending order, and estimate the crawl's time, requests and space.
 *
 * Objects that may yet turn out shadowed wait on a stack: an object X is shadowed when a
 * later key begins with "X/", and every key between X and "X/" in byte order begins with X,
 * so the waiting objects are always prefixes of the current key (at most one per byte of
 * it). Directories are counted from each key's ancestors that the previous key did not
 * share: all keys under "D/" come together in byte order. */
#include "migrate/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/naming.h"

const uint64_t plan_class_limit[PLAN_CLASSES - 1] = {
	16ull << 10,
	1ull << 20,
	16ull << 20,
	64ull << 20,
};
const char *const plan_class_name[PLAN_CLASSES] = {
	"< 16 KiB", "16 KiB - 1 MiB", "1 - 16 MiB", "16 - 64 MiB", ">= 64 MiB",
};

struct pending {
	size_t len; /* length of the object's key after the prefix */
	uint64_t size;
	int archived;
};

struct plan {
	char *prefix;
	size_t plen;
	uint64_t multipart_threshold;
	char *prev; /* the previous key after the prefix; NULL before the first */
	size_t prev_len, prev_cap;
	struct pending *stack; /* objects that may be shadowed, shortest first */
	size_t depth, cap;
	struct plan_tally t;
};

int plan_class_archived(const char *sc)
{
	return sc && (!strcmp(sc, "GLACIER") || !strcmp(sc, "DEEP_ARCHIVE"));
}

int plan_new(const char *prefix, uint64_t multipart_threshold, struct plan **out)
{
	struct plan *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (!(p->prefix = strdup(prefix ? prefix : ""))) {
		free(p);
		return -ENOMEM;
	}
	p->plen = strlen(p->prefix);
	p->multipart_threshold = multipart_threshold;
	*out = p;
	return 0;
}

void plan_free(struct plan *p)
{
	if (!p)
		return;
	free(p->prefix);
	free(p->prev);
	free(p->stack);
	free(p);
}

static void count_file(struct plan *p, const struct pending *f)
{
	struct plan_tally *t = &p->t;
	int c = 0;
	while (c < PLAN_CLASSES - 1 && f->size >= plan_class_limit[c])
		c++;
	t->files++;
	t->file_bytes += f->size;
	t->class_files[c]++;
	t->class_bytes[c] += f->size;
	t->nfs_bytes += (f->size + 4095) / 4096 * 4096;
	if (f->archived) {
		t->archived++;
		t->archived_bytes += f->size;
	}
	if (p->multipart_threshold && f->size >= p->multipart_threshold)
		t->multipart_files++;
}

/* Settle the waiting objects against the next key rel, which shares lcp bytes with the
 * previous key (every waiting object is a prefix of the previous key). rel NULL: the end. */
static void settle(struct plan *p, const char *rel, size_t lcp)
{
	while (p->depth) {
		const struct pending *x = &p->stack[p->depth - 1];
		if (rel && lcp >= x->len && rel[x->len] != '/')
			break;              /* still a prefix of the keys to come */
		if (rel && lcp >= x->len) { /* rel is below "X/": the directory wins */
			p->t.shadowed++;
			p->t.shadowed_bytes += x->size;
		} else {
			count_file(p, x);
		}
		p->depth--;
	}
}

static int remember(struct plan *p, const char *rel, size_t len)
{
	if (len + 1 > p->prev_cap) {
		size_t cap = p->prev_cap ? p->prev_cap : 256;
		while (cap < len + 1)
			cap *= 2;
		char *n = realloc(p->prev, cap);
		if (!n)
			return -ENOMEM;
		p->prev = n;
		p->prev_cap = cap;
	}
	memcpy(p->prev, rel, len + 1);
	p->prev_len = len;
	return 0;
}

int plan_add(struct plan *p, const char *key, uint64_t size, const char *storage_class)
{
	if (strncmp(key, p->prefix, p->plen))
		return 0;
	const char *rel = key + p->plen;
	size_t len = strlen(rel), lcp = 0;
	if (p->prev) {
		while (lcp < len && lcp < p->prev_len && rel[lcp] == p->prev[lcp])
			lcp++;
		if (lcp == len && lcp == p->prev_len)
			return 0; /* the same key again (an inventory of versions) */
		if (lcp == len ||
		    (lcp < p->prev_len && (unsigned char)rel[lcp] < (unsigned char)p->prev[lcp]))
			return -EINVAL; /* out of order */
	}
	if (p->depth == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct pending *n = realloc(p->stack, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->stack = n;
		p->cap = cap;
	}
	settle(p, rel, lcp);
	p->t.objects++;
	p->t.bytes += size;
	for (size_t i = lcp; i < len; i++) /* ancestors the previous key did not share */
		if (rel[i] == '/')
			p->t.dirs++;

	char path[NAME_MAX_PATH + 2];
	int bad = name_key_to_path(p->prefix, key, path, sizeof(path)) != 0;
	if (!len || rel[len - 1] == '/') { /* a directory marker ("" : the root's) */
		if (bad) {
			p->t.unreachable++;
			p->t.unreachable_bytes += size;
		} else {
			p->t.markers++;
		}
	} else if (bad) {
		p->t.unreachable++;
		p->t.unreachable_bytes += size;
	} else {
		p->stack[p->depth++] = (struct pending){
			.len = len,
			.size = size,
			.archived = plan_class_archived(storage_class),
		};
	}
	return remember(p, rel, len);
}

void plan_finish(struct plan *p, struct plan_tally *out)
{
	settle(p, NULL, 0);
	*out = p->t;
	out->nfs_bytes += out->dirs * 4096;
}

void plan_params_default(struct plan_params *pp)
{
	*pp = (struct plan_params){
		.hosts = 1,
		.revalidate = 30,
		.price_list = 0.005,
		.price_get = 0.0004,
		.ledger_record_bytes = 240,
	};
}

void plan_estimate(const struct plan_tally *t, const struct plan_params *pp,
		   struct plan_estimate *out)
{
	unsigned hosts = pp->hosts ? pp->hosts : 1;
	uint64_t files = t->files - t->archived, bytes = t->file_bytes - t->archived_bytes;
	*out = (struct plan_estimate){
		.rate = pp->rate ? pp->rate : PLAN_DEFAULT_RATE,
		.rate_files = pp->rate_files ? pp->rate_files : PLAN_DEFAULT_RATE_FILES,
		.get_requests = files,
		.list_requests = t->dirs + 1 + (t->objects + 999) / 1000,
		.ledger_bytes = (uint64_t)(t->files * pp->ledger_record_bytes),
	};
	double by_bytes = (double)bytes / ((double)out->rate * hosts);
	double by_files = (double)files / ((double)out->rate_files * hosts);
	out->crawl_s = by_bytes > by_files ? by_bytes : by_files;
	out->crawl_cost = out->list_requests / 1000.0 * pp->price_list +
			  out->get_requests / 1000.0 * pp->price_get;
}
