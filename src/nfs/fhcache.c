/* nfs/fhcache.c - directory file handles by path (see fhcache.h). */
#include "nfs/fhcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct fhc_entry {
	char *path;               /* NULL: empty */
	size_t len;
	int64_t expires_ms;
	struct raw3_fh fh;
};

struct fhc {
	pthread_mutex_t lock;     /* protects slot[], hits, puts */
	unsigned mask;
	unsigned ttl_ms;
	uint64_t hits, puts;
	struct fhc_entry *slot;
};

static uint64_t hash(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ull;    /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

int fhc_new(unsigned slots, unsigned ttl_ms, struct fhc **out)
{
	unsigned n = 1;
	while (n < slots && n < (1u << 24))
		n <<= 1;
	struct fhc *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->slot = calloc(n, sizeof(*c->slot));
	if (!c->slot) {
		free(c);
		return -ENOMEM;
	}
	c->mask = n - 1;
	c->ttl_ms = ttl_ms;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void fhc_destroy(struct fhc *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i <= c->mask; i++)
		free(c->slot[i].path);
	pthread_mutex_destroy(&c->lock);
	free(c->slot);
	free(c);
}

int fhc_get(struct fhc *c, const char *path, size_t len, int64_t now_ms, struct raw3_fh *fh)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&c->lock);
	struct fhc_entry *e = &c->slot[hash(path, len) & c->mask];
	if (e->path && e->len == len && e->expires_ms > now_ms && !memcmp(e->path, path, len)) {
		*fh = e->fh;
		c->hits++;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void fhc_put(struct fhc *c, const char *path, size_t len, const struct raw3_fh *fh, int64_t now_ms)
{
	char *copy = malloc(len + 1);
	if (!copy)
		return;   /* a cache: not remembering is always correct */
	memcpy(copy, path, len);
	copy[len] = '\0';
	pthread_mutex_lock(&c->lock);
	struct fhc_entry *e = &c->slot[hash(path, len) & c->mask];
	char *old = e->path;
	e->path = copy;
	e->len = len;
	e->fh = *fh;
	e->expires_ms = now_ms + c->ttl_ms;
	c->puts++;
	pthread_mutex_unlock(&c->lock);
	free(old);
}

void fhc_forget(struct fhc *c, const char *path)
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	int root = len == 1 && path[0] == '/';
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i <= c->mask; i++) {
		struct fhc_entry *e = &c->slot[i];
		if (!e->path)
			continue;
		if (root || (e->len >= len && !memcmp(e->path, path, len) &&
			     (e->len == len || e->path[len] == '/'))) {
			free(e->path);
			e->path = NULL;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void fhc_counts(struct fhc *c, uint64_t *hits, uint64_t *puts)
{
	pthread_mutex_lock(&c->lock);
	*hits = c->hits;
	*puts = c->puts;
	pthread_mutex_unlock(&c->lock);
}
