/* s3client.c - integration checks of the S3 client (src/s3/client.c) and the S3 store
 * (src/store/s3.c) against a real s3rver, run by tests/integration/s3client.sh (suites
 * client, store, big) and tests/integration/s3faults.sh (suite faults, through
 * tests/tools/faultproxy.py).
 *
 * Environment: S3_URL (http://127.0.0.1:PORT), S3_BUCKET, S3TEST_OUT (a directory where
 * checksums are left for the shell script to compare with awscli), S3_RETRIES,
 * S3_TIMEOUT, FAULT (the proxy's mode, for the faults suite), S3_DIRECT_URL (s3rver itself,
 * bypassing the proxy, for seeding). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/log.h"
#include "s3/client.h"
#include "base/stats.h"
#include "store/store.h"
#include "base/util.h"

static struct ferry_config cfg;
static struct s3_client *cl;
static char uniq[32];

static const char *env(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

static void make_cfg(struct ferry_config *c, const char *url)
{
	cfg_init(c);
	c->s3_endpoint = strdup(url);
	c->s3_bucket = strdup(env("S3_BUCKET", "ferry-test"));
	c->s3_path_style = 1;
	c->s3_retries = (unsigned)atoi(env("S3_RETRIES", "5"));
	c->s3_timeout = (unsigned)atoi(env("S3_TIMEOUT", "30"));
	c->s3_access_key_id = strdup(env("AWS_ACCESS_KEY_ID", "S3RVER"));
	c->s3_secret_access_key = strdup(env("AWS_SECRET_ACCESS_KEY", "S3RVER"));
	c->s3_connections = 8;
}

static void setup(void)
{
	log_init(LOG_TO_STDERR, atoi(env("S3TEST_LOG", "4")), "s3client");
	make_cfg(&cfg, env("S3_URL", "http://127.0.0.1:14567"));
	cr_assert_eq(s3_client_new(&cfg, &cl), 0);
	snprintf(uniq, sizeof(uniq), "t%d-%llu/", getpid(),
		 (unsigned long long)util_now_ns() % 1000000007ull);
}

static void teardown(void)
{
	s3_client_free(cl);
	cl = NULL;
	cfg_free(&cfg);
}

static char *K(const char *suffix)
{
	static _Thread_local char k[8][1024];
	static _Thread_local int i;
	char *p = k[i++ & 7];
	snprintf(p, 1024, "%s%s", uniq, suffix);
	return p;
}

/* A deterministic pseudo-random source of any size, read at any offset. */
static unsigned char pat_byte(uint64_t off, uint64_t seed)
{
	uint64_t x = (off / 8) * 0x9e3779b97f4a7c15ull ^ seed;
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (unsigned char)(x >> (8 * (off % 8)));
}

struct pat {
	uint64_t size, seed;
};

static ssize_t pat_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct pat *p = arg;
	if (off >= p->size)
		return 0;
	if (len > p->size - off)
		len = (size_t)(p->size - off);
	unsigned char *b = buf;
	for (size_t i = 0; i < len; i++)
		b[i] = pat_byte(off + i, p->seed);
	return (ssize_t)len;
}

struct hasher {
	EVP_MD_CTX *ctx;
	uint64_t n;
	uint64_t seed;       /* when nonzero, compare with the pattern as we go */
	uint64_t off;
	uint64_t mismatches;
};

static int hash_sink(void *arg, const void *data, size_t len)
{
	struct hasher *h = arg;
	EVP_DigestUpdate(h->ctx, data, len);
	if (h->seed) {
		const unsigned char *b = data;
		for (size_t i = 0; i < len; i++)
			if (b[i] != pat_byte(h->off + i, h->seed))
				h->mismatches++;
	}
	h->off += len;
	h->n += len;
	return 0;
}

static void hasher_init(struct hasher *h, uint64_t seed, uint64_t off)
{
	memset(h, 0, sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
	h->seed = seed;
	h->off = off;
}

static void hasher_hex(struct hasher *h, char out[65])
{
	unsigned char md[32];
	unsigned n;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	EVP_MD_CTX_free(h->ctx);
	util_hex(md, 32, out);
}

static void pat_sha(struct pat *p, char out[65])
{
	struct hasher h;
	hasher_init(&h, 0, 0);
	char *buf = malloc(1 << 20);
	for (uint64_t off = 0; off < p->size; off += 1 << 20) {
		ssize_t n = pat_read(p, buf, 1 << 20, off);
		hash_sink(&h, buf, (size_t)n);
	}
	free(buf);
	hasher_hex(&h, out);
}

/* ------------------------------------------------------------------------------------ */

TestSuite(client, .init = setup, .fini = teardown, .timeout = 120);

Test(client, probe)
{
	cr_assert_eq(s3_probe(cl), 0);
}

Test(client, probe_missing_bucket)
{
	struct ferry_config c2;
	struct s3_client *x;
	make_cfg(&c2, env("S3_URL", ""));
	free(c2.s3_bucket);
	c2.s3_bucket = strdup("no-such-bucket-here");
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	cr_assert_eq(s3_probe(x), -ENOENT);
	s3_client_free(x);
	cfg_free(&c2);
}

Test(client, probe_unreachable_is_quick)
{
	struct ferry_config c2;
	struct s3_client *x;
	make_cfg(&c2, "http://127.0.0.1:1");   /* nothing listens on port 1 */
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	double t0 = util_now_s();
	int rc = s3_probe(x);
	cr_assert_eq(rc, -ECONNREFUSED, "probe of a closed port: %d", rc);
	cr_assert_lt(util_now_s() - t0, 5.0);
	s3_client_free(x);
	cfg_free(&c2);
}

Test(client, bad_endpoint)
{
	struct ferry_config c2;
	struct s3_client *x = NULL;
	make_cfg(&c2, "ftp://example.com");
	cr_assert_eq(s3_client_new(&c2, &x), -EINVAL);
	cfg_free(&c2);
}

Test(client, put_head_get_delete)
{
	const char *key = K("hello.txt");
	const char body[] = "hello, ferry\n";
	char etag[80], buf[64];
	struct s3_object_info oi;
	cr_assert_eq(s3_put_buf(cl, key, body, strlen(body), NULL, etag), 0);
	cr_assert_eq(strlen(etag), 32, "single-part ETag is an MD5: %s", etag);
	cr_assert_eq(s3_head(cl, key, &oi), 0);
	cr_assert_eq(oi.size, strlen(body));
	cr_assert_str_eq(oi.etag, etag);
	cr_assert_eq(oi.meta.have, 0);
	cr_assert_gt(oi.last_modified.tv_sec, 1600000000);
	cr_assert_eq(s3_get_range(cl, key, NULL, 0, sizeof(buf), buf), (ssize_t)strlen(body));
	cr_assert_eq(memcmp(buf, body, strlen(body)), 0);
	cr_assert_eq(s3_get_range(cl, key, etag, 7, 5, buf), 5);
	cr_assert_eq(memcmp(buf, "ferry", 5), 0);
	/* past the end: EOF, not an error */
	cr_assert_eq(s3_get_range(cl, key, NULL, 1000, 10, buf), 0);
	cr_assert_eq(s3_delete(cl, key), 0);
	cr_assert_eq(s3_head(cl, key, &oi), -ENOENT);
	cr_assert_eq(s3_get_range(cl, key, NULL, 0, 10, buf), -ENOENT);
	/* deleting what is not there succeeds, like S3 */
	cr_assert_eq(s3_delete(cl, key), 0);
}

Test(client, metadata_roundtrip)
{
	const char *key = K("meta");
	struct s3_meta m = { .have = S3_META_MODE | S3_META_UID | S3_META_GID | S3_META_MTIME,
			     .mode = S_IFREG | 0640, .uid = 1234, .gid = 5678,
			     .mtime = { .tv_sec = 1700000000 } };
	struct s3_object_info oi;
	cr_assert_eq(s3_put_buf(cl, key, "x", 1, &m, NULL), 0);
	cr_assert_eq(s3_head(cl, key, &oi), 0);
	cr_assert_eq(oi.meta.have, m.have);
	cr_assert_eq(oi.meta.mode, S_IFREG | 0640);
	cr_assert_eq(oi.meta.uid, 1234);
	cr_assert_eq(oi.meta.gid, 5678);
	cr_assert_eq(oi.meta.mtime.tv_sec, 1700000000);
}

Test(client, zero_byte_object)
{
	const char *key = K("empty");
	struct s3_object_info oi;
	char buf[8];
	struct hasher h;
	cr_assert_eq(s3_put_buf(cl, key, "", 0, NULL, NULL), 0);
	cr_assert_eq(s3_head(cl, key, &oi), 0);
	cr_assert_eq(oi.size, 0);
	/* A ranged GET of an empty object (an S3 open asks for the first 64 KiB before it
	 * knows the size) is end-of-file at once. S3 answers 416; s3rver 3.7.1 a 206 with
	 * "Content-Range: bytes 0-0/0" and a Content-Length of 1 it never sends: the client
	 * takes that for end-of-file too, rather than waiting for the byte and retrying. */
	time_t t0 = time(NULL);
	cr_assert_eq(s3_get_range(cl, key, oi.etag, 0, sizeof(buf), buf), 0);
	static char big[65536];
	cr_assert_eq(s3_get_range(cl, key, NULL, 0, sizeof(big), big), 0);
	cr_assert_leq(time(NULL) - t0, 2, "a ranged GET of an empty object took %lld s",
		      (long long)(time(NULL) - t0));
	hasher_init(&h, 0, 0);
	cr_assert_eq(s3_get_stream(cl, key, oi.etag, 0, UINT64_MAX, hash_sink, &h, NULL), 0);
	char hex[65];
	hasher_hex(&h, hex);
	cr_assert_eq(h.n, 0);
	/* and through s3_put with a source of size 0 */
	struct pat p = { 0, 1 };
	cr_assert_eq(s3_put(cl, K("empty2"), 0, pat_read, &p, NULL, NULL), 0);
	cr_assert_eq(s3_head(cl, K("empty2"), &oi), 0);
	cr_assert_eq(oi.size, 0);
}

static const char *odd_names[] = {
	"with space", "plus+sign", "per%cent", "tilde~x", "uni\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
	"eq=amp&x", "q?mark", "hash#x", "semi;colon", "star*", "paren(1)", "comma,x", "at@x",
	"dollar$x", "quote'x", "brackets[1]", "caret^x", "back`tick",
};

static int collect_page(void *arg, const struct s3xml_list *page)
{
	struct buf *b = arg;
	for (size_t i = 0; i < page->nobjects; i++) {
		buf_puts(b, page->objects[i].key);
		buf_puts(b, "\n");
	}
	for (size_t i = 0; i < page->nprefixes; i++) {
		buf_puts(b, "P:");
		buf_puts(b, page->prefixes[i]);
		buf_puts(b, "\n");
	}
	return 0;
}

Test(client, odd_keys)
{
	struct buf want = { 0 }, got = { 0 };
	for (size_t i = 0; i < ARRAY_SIZE(odd_names); i++) {
		const char *key = K(odd_names[i]);
		struct s3_object_info oi;
		char buf[256];
		cr_assert_eq(s3_put_buf(cl, key, odd_names[i], strlen(odd_names[i]), NULL, NULL), 0,
			     "put %s", key);
		cr_assert_eq(s3_head(cl, key, &oi), 0, "head %s", key);
		cr_assert_eq(oi.size, strlen(odd_names[i]));
		ssize_t n = s3_get_range(cl, key, oi.etag, 0, sizeof(buf), buf);
		cr_assert_eq(n, (ssize_t)strlen(odd_names[i]), "get %s", key);
		cr_assert_eq(memcmp(buf, odd_names[i], (size_t)n), 0);
	}
	/* the listing gives every name back exactly (encoding-type=url decoded) */
	struct s3_list_opts o = { .prefix = uniq };
	cr_assert_eq(s3_list(cl, &o, collect_page, &got), 0);
	for (size_t i = 0; i < ARRAY_SIZE(odd_names); i++) {
		char line[1100];
		snprintf(line, sizeof(line), "\n%s%s\n", uniq, odd_names[i]);
		buf_puts(&want, line);
		struct buf g2 = { 0 };
		buf_puts(&g2, "\n");
		buf_puts(&g2, got.data);
		cr_assert(strstr(g2.data, line), "listing lacks %s:\n%s", odd_names[i], got.data);
		buf_free(&g2);
	}
	/* a prefix with odd characters works too */
	struct buf g3 = { 0 };
	struct s3_list_opts o2 = { .prefix = K("plus+") };
	cr_assert_eq(s3_list(cl, &o2, collect_page, &g3), 0);
	cr_assert_str_eq(g3.data, K("plus+sign\n"));
	buf_free(&g3);
	buf_free(&want);
	buf_free(&got);
}

struct seed {
	const char *fmt;
	unsigned from, to;
	const char *base;
};

static void *seed_worker(void *arg)
{
	struct seed *s = arg;
	for (unsigned i = s->from; i < s->to; i++) {
		char key[256];
		snprintf(key, sizeof(key), s->fmt, s->base, i);
		if (s3_put_buf(cl, key, "k", 1, NULL, NULL))
			return (void *)1;
	}
	return NULL;
}

static void seed_keys(const char *fmt, const char *base, unsigned n)
{
	enum { T = 8 };
	pthread_t t[T];
	struct seed s[T];
	for (unsigned i = 0; i < T; i++) {
		s[i] = (struct seed){ fmt, n * i / T, n * (i + 1) / T, base };
		pthread_create(&t[i], NULL, seed_worker, &s[i]);
	}
	for (unsigned i = 0; i < T; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r, "seeding failed");
	}
}

struct pages {
	unsigned pages, objects, prefixes;
	char last[1024];
	int unsorted;
};

static int count_page(void *arg, const struct s3xml_list *page)
{
	struct pages *p = arg;
	p->pages++;
	p->objects += (unsigned)page->nobjects;
	p->prefixes += (unsigned)page->nprefixes;
	for (size_t i = 0; i < page->nobjects; i++) {
		if (strcmp(page->objects[i].key, p->last) <= 0)
			p->unsorted++;
		snprintf(p->last, sizeof(p->last), "%s", page->objects[i].key);
	}
	return 0;
}

Test(client, list_pages_small)
{
	seed_keys("%spg/k%03u", uniq, 25);
	seed_keys("%spg/sub%u/x", uniq, 4);
	struct pages p = { 0 };
	struct s3_list_opts o = { .prefix = K("pg/"), .max_keys = 7 };
	cr_assert_eq(s3_list(cl, &o, count_page, &p), 0);
	cr_assert_eq(p.objects, 29);
	cr_assert_eq(p.pages, 5);
	cr_assert_eq(p.unsorted, 0);
	/* with a delimiter: 25 objects and 4 prefixes over pages of 7 */
	struct pages q = { 0 };
	struct s3_list_opts o2 = { .prefix = K("pg/"), .delimiter = "/", .max_keys = 7 };
	cr_assert_eq(s3_list(cl, &o2, count_page, &q), 0);
	cr_assert_eq(q.objects, 25);
	cr_assert_eq(q.prefixes, 4);
	cr_assert_geq(q.pages, 4);
	/* start-after */
	struct pages r = { 0 };
	struct s3_list_opts o3 = { .prefix = K("pg/"), .start_after = K("pg/k019"), .max_keys = 3 };
	cr_assert_eq(s3_list(cl, &o3, count_page, &r), 0);
	cr_assert_eq(r.objects, 5 + 4);
	/* the global knob */
	struct pages s = { 0 };
	s3_client_set_list_page(cl, 10);
	struct s3_list_opts o4 = { .prefix = K("pg/") };
	cr_assert_eq(s3_list(cl, &o4, count_page, &s), 0);
	cr_assert_eq(s.pages, 3);
	cr_assert_eq(s.objects, 29);
	/* a callback that stops */
	s3_client_set_list_page(cl, 0);
}

Test(client, list_3500_keys_real_pages, .timeout = 300)
{
	seed_keys("%sbig/key-%05u", uniq, 3500);
	struct pages p = { 0 };
	struct s3_list_opts o = { .prefix = K("big/") };
	double t0 = util_now_s();
	cr_assert_eq(s3_list(cl, &o, count_page, &p), 0);
	cr_assert_eq(p.objects, 3500);
	cr_assert_eq(p.pages, 4, "1000-key pages: %u", p.pages);
	cr_assert_eq(p.unsorted, 0);
	cr_log_info("3500 keys listed in %.2fs", util_now_s() - t0);
	/* batch delete them all: 4 requests of at most 1000 keys */
	char **keys = calloc(3500, sizeof(*keys));
	for (unsigned i = 0; i < 3500; i++) {
		keys[i] = malloc(256);
		snprintf(keys[i], 256, "%sbig/key-%05u", uniq, i);
	}
	cr_assert_eq(s3_delete_many(cl, (const char *const *)keys, 3500), 0);
	struct pages q = { 0 };
	cr_assert_eq(s3_list(cl, &o, count_page, &q), 0);
	cr_assert_eq(q.objects, 0);
	for (unsigned i = 0; i < 3500; i++)
		free(keys[i]);
	free(keys);
}

Test(client, if_match_estale)
{
	const char *key = K("pinned");
	char e1[80], e2[80], buf[16];
	cr_assert_eq(s3_put_buf(cl, key, "version one", 11, NULL, e1), 0);
	cr_assert_eq(s3_get_range(cl, key, e1, 0, 7, buf), 7);
	cr_assert_eq(s3_put_buf(cl, key, "version two", 11, NULL, e2), 0);
	cr_assert_str_neq(e1, e2);
	cr_assert_eq(s3_get_range(cl, key, e1, 0, 7, buf), -ESTALE);
	struct hasher h;
	hasher_init(&h, 0, 0);
	cr_assert_eq(s3_get_stream(cl, key, e1, 0, UINT64_MAX, hash_sink, &h, NULL), -ESTALE);
	cr_assert_eq(h.n, 0);
	char hex[65];
	hasher_hex(&h, hex);
	cr_assert_eq(s3_get_range(cl, key, e2, 0, 11, buf), 11);
	cr_assert_eq(memcmp(buf, "version two", 11), 0);
}

Test(client, copy_and_batch_delete)
{
	char e1[80], e2[80];
	struct s3_meta m = { .have = S3_META_MODE, .mode = S_IFREG | 0600 };
	struct s3_object_info oi;
	cr_assert_eq(s3_put_buf(cl, K("src file"), "copy me", 7, &m, e1), 0);
	cr_assert_eq(s3_copy(cl, K("src file"), K("dst+file"), e1, e2), 0);
	cr_assert_str_eq(e1, e2);
	cr_assert_eq(s3_head(cl, K("dst+file"), &oi), 0);
	cr_assert_eq(oi.size, 7);
	cr_assert_eq(oi.meta.mode, S_IFREG | 0600, "metadata copied");
	cr_assert_eq(s3_copy(cl, K("no such"), K("x"), NULL, NULL), -ENOENT);
	/* a source that is not the version pinned: -ESTALE, whether the server honours
	 * x-amz-copy-source-if-match (412) or ignores it (s3rver, RGW: checked after) */
	char e3[80];
	cr_assert_eq(s3_put_buf(cl, K("src file"), "changed!", 8, &m, e3), 0);
	cr_assert_eq(s3_copy(cl, K("src file"), K("dst+file"), e1, NULL), -ESTALE);
	cr_assert_eq(s3_head(cl, K("src file"), &oi), 0);
	cr_assert_str_eq(oi.etag, e3, "the source is left alone");
	cr_assert_eq(s3_copy(cl, K("src file"), K("dst+file"), e3, e2), 0, "pinned to its version");
	const char *keys[] = { K("src file"), K("dst+file"), K("never existed") };
	cr_assert_eq(s3_delete_many(cl, keys, 3), 0);
	cr_assert_eq(s3_head(cl, K("src file"), &oi), -ENOENT);
	cr_assert_eq(s3_head(cl, K("dst+file"), &oi), -ENOENT);
}

Test(client, multipart_small_parts)
{
	/* 12 MiB + 5 bytes in parts of 5 MiB: 3 parts, the last short */
	struct ferry_config c2;
	struct s3_client *x;
	make_cfg(&c2, env("S3_URL", ""));
	c2.s3_part_size = 5u << 20;
	c2.s3_multipart_threshold = 6u << 20;
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	struct pat p = { (12u << 20) + 5, 77 };
	char etag[80];
	struct s3_meta m = { .have = S3_META_MTIME, .mtime = { .tv_sec = 1234567890 } };
	cr_assert_eq(s3_put(x, K("mp3"), p.size, pat_read, &p, &m, etag), 0);
	cr_assert_eq(strlen(etag) >= 32, 1, "ETag: %s", etag);  /* s3rver: no "-3" suffix */
	struct s3_object_info oi;
	cr_assert_eq(s3_head(x, K("mp3"), &oi), 0);
	cr_assert_str_eq(etag, oi.etag, "the ETag S3 holds");
	cr_assert_eq(oi.size, p.size);
	cr_assert_eq(oi.meta.mtime.tv_sec, 1234567890);
	struct hasher h;
	hasher_init(&h, 77, 0);
	cr_assert_eq(s3_get_stream(x, K("mp3"), oi.etag, 0, UINT64_MAX, hash_sink, &h, NULL), 0);
	char hex[65];
	hasher_hex(&h, hex);
	cr_assert_eq(h.n, p.size);
	cr_assert_eq(h.mismatches, 0);
	s3_client_free(x);
	cfg_free(&c2);
}

Test(client, single_put_streamed)
{
	/* between 1 MiB and the multipart threshold: one PUT, body streamed (UNSIGNED-PAYLOAD) */
	struct pat p = { (3u << 20) + 17, 99 };
	char etag[80];
	cr_assert_eq(s3_put(cl, K("streamed"), p.size, pat_read, &p, NULL, etag), 0);
	cr_assert_eq(strlen(etag), 32);
	struct hasher h;
	struct s3_object_info oi;
	hasher_init(&h, 99, 0);
	cr_assert_eq(s3_get_stream(cl, K("streamed"), NULL, 0, UINT64_MAX, hash_sink, &h, &oi), 0);
	char hex[65];
	hasher_hex(&h, hex);
	cr_assert_eq(h.n, p.size);
	cr_assert_eq(h.mismatches, 0);
	cr_assert_eq(oi.size, p.size);
	cr_assert_str_eq(oi.etag, etag);
}

static void *head_worker(void *arg)
{
	struct s3_client *x = arg;
	struct s3_object_info oi;
	for (int i = 0; i < 20; i++)
		if (s3_head(x, K("pool"), &oi) || oi.size != 4)
			return (void *)1;
	return NULL;
}

Test(client, pool_blocks_when_busy)
{
	/* 8 threads on 2 handles: callers wait for a handle, none fails */
	struct ferry_config c2;
	struct s3_client *x;
	make_cfg(&c2, env("S3_URL", ""));
	c2.s3_connections = 2;
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	cr_assert_eq(s3_put_buf(x, K("pool"), "pool", 4, NULL, NULL), 0);
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, head_worker, x);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r);
	}
	s3_client_free(x);
	cfg_free(&c2);
}

Test(client, virtual_hosted)
{
	/* BUCKET.s3.amazonaws.com:PORT, connected to the local s3rver (which routes
	 * virtual-hosted names of that form): the key goes in the path, the bucket in Host */
	const char *url = env("S3_URL", "");
	const char *port = strrchr(url, ':') + 1;
	char ep[128], spec[256];
	struct ferry_config c2;
	struct s3_client *x;
	snprintf(ep, sizeof(ep), "http://s3.amazonaws.com:%s", port);
	make_cfg(&c2, ep);
	c2.s3_path_style = 0;
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	snprintf(spec, sizeof(spec), "%s.s3.amazonaws.com:%s:127.0.0.1:%s", c2.s3_bucket, port,
		 port);
	cr_assert_eq(s3_client_set_connect_to(x, spec), 0);
	cr_assert_eq(s3_probe(x), 0);
	char buf[16];
	cr_assert_eq(s3_put_buf(x, K("vhost key+1"), "vhost", 5, NULL, NULL), 0);
	cr_assert_eq(s3_get_range(cl, K("vhost key+1"), NULL, 0, sizeof(buf), buf), 5,
		     "seen path-style");
	cr_assert_eq(memcmp(buf, "vhost", 5), 0);
	struct pages p = { 0 };
	struct s3_list_opts o = { .prefix = K("vhost") };
	cr_assert_eq(s3_list(x, &o, count_page, &p), 0);
	cr_assert_eq(p.objects, 1);
	s3_client_free(x);
	cfg_free(&c2);
}

static ssize_t failing_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct pat *p = arg;
	if (off >= (6u << 20))
		return -EIO;
	return pat_read(p, buf, len, off);
}

Test(client, multipart_failure_aborts)
{
	struct ferry_config c2;
	struct s3_client *x;
	make_cfg(&c2, env("S3_URL", ""));
	c2.s3_part_size = 5u << 20;
	c2.s3_multipart_threshold = 6u << 20;
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	struct pat p = { 16u << 20, 5 };
	cr_assert_eq(s3_put(x, K("mpfail"), p.size, failing_read, &p, NULL, NULL), -EIO);
	struct s3_object_info oi;
	cr_assert_eq(s3_head(x, K("mpfail"), &oi), -ENOENT);
	s3_client_free(x);
	cfg_free(&c2);
}

/* ------------------------------------------------------------------------------------
 * > 100 MiB: multipart upload, streamed and ranged reads, checksum left for awscli */

TestSuite(big, .init = setup, .fini = teardown, .timeout = 600);

Test(big, roundtrip_110mib)
{
	struct pat p = { (110ull << 20) + 12345, 4242 };
	const char *key = env("S3TEST_BIGKEY", "big/object.bin");
	char etag[80], want[65], got[65];
	pat_sha(&p, want);
	double t0 = util_now_s();
	cr_assert_eq(s3_put(cl, key, p.size, pat_read, &p, NULL, etag), 0);
	double t1 = util_now_s();
	struct hasher h;
	hasher_init(&h, 4242, 0);
	cr_assert_eq(s3_get_stream(cl, key, etag, 0, UINT64_MAX, hash_sink, &h, NULL), 0);
	double t2 = util_now_s();
	hasher_hex(&h, got);
	cr_assert_eq(h.n, p.size);
	cr_assert_eq(h.mismatches, 0);
	cr_assert_str_eq(got, want);
	cr_log_info("110 MiB: put %.2fs, streamed get %.2fs", t1 - t0, t2 - t1);
	/* ranged reads across part boundaries */
	size_t n = 3u << 20;
	unsigned char *buf = malloc(n);
	uint64_t offs[] = { 0, (16ull << 20) - 100, (48ull << 20) + 7, p.size - 1000 };
	for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
		ssize_t r = s3_get_range(cl, key, etag, offs[i], n, buf);
		size_t expect = p.size - offs[i] < n ? (size_t)(p.size - offs[i]) : n;
		cr_assert_eq(r, (ssize_t)expect);
		for (size_t j = 0; j < expect; j++)
			if (buf[j] != pat_byte(offs[i] + j, 4242))
				cr_assert_fail("byte %zu of range at %llu differs", j,
					       (unsigned long long)offs[i]);
	}
	/* a streamed window in the middle */
	hasher_init(&h, 4242, 1000000);
	cr_assert_eq(s3_get_stream(cl, key, etag, 1000000, 40000000, hash_sink, &h, NULL), 0);
	hasher_hex(&h, got);
	cr_assert_eq(h.n, 40000000);
	cr_assert_eq(h.mismatches, 0);
	free(buf);
	const char *out = getenv("S3TEST_OUT");
	if (out) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/big.sha256", out);
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f);
		fprintf(f, "%s\n", want);
		fclose(f);
	}
}

/* ------------------------------------------------------------------------------------
 * The store */

static struct store *st;
static struct ferry_config scfg;

static void store_setup(void)
{
	setup();
	make_cfg(&scfg, env("S3_URL", ""));
	free(scfg.s3_prefix);
	scfg.s3_prefix = strdup(uniq);  /* each run in its own prefix */
	scfg.file_mode = 0640;
	scfg.dir_mode = 0750;
	scfg.uid = 4321;
	scfg.gid = 8765;
	cr_assert_eq(store_s3_new(&scfg, &st), 0);
	cr_assert_eq(store_probe(st), 0);
}

static void store_teardown(void)
{
	store_destroy(st);
	st = NULL;
	cfg_free(&scfg);
	teardown();
}

TestSuite(store, .init = store_setup, .fini = store_teardown, .timeout = 120);

struct ents {
	struct buf names;
	unsigned n;
};

static int collect_ent(void *arg, const struct store_dirent *de)
{
	struct ents *e = arg;
	buf_printf(&e->names, "%s:%s%s%s;", S_ISDIR(de->type) ? "d" : "f", de->name,
		   de->attr && S_ISREG(de->type) ? "=" : "", "");
	if (de->attr && S_ISREG(de->type))
		buf_printf(&e->names, "%llu;", (unsigned long long)de->attr->size);
	e->n++;
	return 0;
}

Test(store, root_and_files)
{
	struct store_attr a;
	cr_assert_eq(store_stat(st, "/", &a), 0);
	cr_assert(S_ISDIR(a.mode));
	cr_assert_eq(a.mode & 07777, 0750);
	cr_assert_eq(store_stat(st, "/nope", &a), -ENOENT);
	cr_assert_eq(store_stat(st, "/a//b", &a), -EINVAL);
	cr_assert_eq(store_stat(st, "/a/../b", &a), -EINVAL);

	cr_assert_eq(s3_put_buf(cl, K("plain"), "12345", 5, NULL, NULL), 0);
	cr_assert_eq(store_stat(st, "/plain", &a), 0);
	cr_assert(S_ISREG(a.mode));
	cr_assert_eq(a.mode & 07777, 0640);
	cr_assert_eq(a.uid, 4321);
	cr_assert_eq(a.gid, 8765);
	cr_assert_eq(a.size, 5);
	cr_assert_eq(a.nlink, 1);
	cr_assert_eq(a.have, 0);
	cr_assert_eq(strlen(a.etag), 32);

	struct s3_meta m = { .have = S3_META_MODE | S3_META_UID | S3_META_GID | S3_META_MTIME,
			     .mode = S_IFREG | 0604,
			     .uid = 7,
			     .gid = 8,
			     .mtime = { .tv_sec = 1500000000 } };
	cr_assert_eq(s3_put_buf(cl, K("withmeta"), "abc", 3, &m, NULL), 0);
	cr_assert_eq(store_stat(st, "/withmeta", &a), 0);
	cr_assert_eq(a.mode, S_IFREG | 0604);
	cr_assert_eq(a.uid, 7);
	cr_assert_eq(a.gid, 8);
	cr_assert_eq(a.mtime.tv_sec, 1500000000);
	cr_assert_eq(a.have, STORE_HAVE_ALL);
}

Test(store, dir_wins_and_markers)
{
	struct store_attr a;
	/* object "d" and objects under "d/": the directory wins */
	cr_assert_eq(s3_put_buf(cl, K("d"), "shadowed", 8, NULL, NULL), 0);
	cr_assert_eq(s3_put_buf(cl, K("d/x"), "x", 1, NULL, NULL), 0);
	cr_assert_eq(s3_put_buf(cl, K("d-sibling"), "s", 1, NULL, NULL), 0);
	cr_assert_eq(s3_put_buf(cl, K("d!bang"), "s", 1, NULL, NULL), 0);
	cr_assert_eq(store_stat(st, "/d", &a), 0);
	cr_assert(S_ISDIR(a.mode), "dir wins");
	cr_assert_eq(a.mode & 07777, 0750);
	cr_assert(a.have & STORE_IMPLIED_DIR);
	/* a marker-only directory */
	struct s3_meta m = { .have = S3_META_MTIME, .mtime = { .tv_sec = 1400000000 } };
	cr_assert_eq(s3_put_buf(cl, K("m/"), "", 0, &m, NULL), 0);
	cr_assert_eq(store_stat(st, "/m", &a), 0);
	cr_assert(S_ISDIR(a.mode));
	cr_assert_eq(a.mtime.tv_sec, 1400000000, "mtime from the marker");
	struct ents e = { 0 };
	cr_assert_eq(store_readdir(st, "/m", collect_ent, &e), 0);
	cr_assert_eq(e.n, 0, "the marker itself is not an entry: %s", e.names.data);
	buf_free(&e.names);

	struct ents r = { 0 };
	cr_assert_eq(store_readdir(st, "/", collect_ent, &r), 0);
	/* the order of a directory's entries is the server's: only the set is asserted */
	cr_assert_eq(r.n, 4, "%s", r.names.data);
	const char *want[] = { "f:d!bang=;1;", "f:d-sibling=;1;", "d:d;", "d:m;" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert(strstr(r.names.data, want[i]), "%s in %s", want[i], r.names.data);
	buf_free(&r.names);

	struct ents s = { 0 };
	cr_assert_eq(store_readdir(st, "/d", collect_ent, &s), 0);
	cr_assert_str_eq(s.names.data, "f:x=;1;");
	buf_free(&s.names);
}

Test(store, readdir_many_pages)
{
	seed_keys("%sdir/f%04u", uniq, 30);
	seed_keys("%sdir/s%u/y", uniq, 5);
	s3_client_set_list_page(store_s3_client(st), 4);
	struct ents e = { 0 };
	cr_assert_eq(store_readdir(st, "/dir", collect_ent, &e), 0);
	cr_assert_eq(e.n, 35, "%s", e.names.data);
	s3_client_set_list_page(store_s3_client(st), 0);
	buf_free(&e.names);
}

static int stop_after_two(void *arg, const struct store_dirent *de)
{
	(void)de;
	return ++*(int *)arg == 2 ? 42 : 0;
}

Test(store, readdir_stops)
{
	seed_keys("%sstop/f%u", uniq, 5);
	int n = 0;
	cr_assert_eq(store_readdir(st, "/stop", stop_after_two, &n), 42);
	cr_assert_eq(n, 2);
}

struct bufsink {
	struct buf b;
};

static int buf_sink(void *arg, const void *data, size_t len)
{
	return buf_append(&((struct bufsink *)arg)->b, data, len);
}

Test(store, open_read_pinned)
{
	struct store_file *f;
	struct store_attr a;
	char buf[32];
	cr_assert_eq(s3_put_buf(cl, K("f.txt"), "0123456789", 10, NULL, NULL), 0);
	cr_assert_eq(store_open(st, "/f.txt", O_WRONLY, 0, NULL, &f), -EROFS);
	cr_assert_eq(store_open(st, "/f.txt", O_RDWR, 0, NULL, &f), -EROFS);
	cr_assert_eq(store_open(st, "/nope", O_RDONLY, 0, NULL, &f), -ENOENT);
	cr_assert_eq(store_open(st, "/f.txt", O_RDONLY, 0, "ffffffffffffffffffffffffffffffff", &f),
		     -ESTALE);
	cr_assert_eq(store_open(st, "/f.txt", O_RDONLY, 0, NULL, &f), 0);
	cr_assert_eq(store_fstat(st, f, &a), 0);
	cr_assert_eq(a.size, 10);
	struct store_file *g;
	cr_assert_eq(store_open(st, "/f.txt", O_RDONLY, 0, a.etag, &g), 0);
	cr_assert_eq(store_close(st, g), 0);
	cr_assert_eq(store_pread(st, f, buf, 4, 3), 4);
	cr_assert_eq(memcmp(buf, "3456", 4), 0);
	cr_assert_eq(store_pread(st, f, buf, 32, 8), 2);
	cr_assert_eq(store_pread(st, f, buf, 32, 10), 0);
	struct bufsink bs = { 0 };
	cr_assert_eq(store_read_stream(st, f, 2, UINT64_MAX, buf_sink, &bs), 0);
	cr_assert_str_eq(bs.b.data, "23456789");
	buf_free(&bs.b);
	/* replaced under the open handle: never the new bytes. What the open read with the
	 * GET that pinned it (the first 64 KiB) is still the pinned version, served as is,
	 * like a file replaced by rename under an open descriptor; */
	cr_assert_eq(s3_put_buf(cl, K("f.txt"), "abcdefghij", 10, NULL, NULL), 0);
	cr_assert_eq(store_pread(st, f, buf, 4, 0), 4);
	cr_assert_eq(memcmp(buf, "0123", 4), 0);
	cr_assert_eq(store_close(st, f), 0);
	/* a read that needs S3 again gives ESTALE */
	size_t big = 200 << 10;
	char *data = malloc(big), *other = malloc(big);
	cr_assert(data && other);
	memset(data, 'a', big);
	memset(other, 'b', big);
	cr_assert_eq(s3_put_buf(cl, K("big.bin"), data, big, NULL, NULL), 0);
	cr_assert_eq(store_open(st, "/big.bin", O_RDONLY, 0, NULL, &f), 0);
	cr_assert_eq(store_pread(st, f, buf, 4, 0), 4);
	cr_assert_eq(memcmp(buf, "aaaa", 4), 0);
	cr_assert_eq(s3_put_buf(cl, K("big.bin"), other, big, NULL, NULL), 0);
	cr_assert_eq(store_pread(st, f, buf, 4, 100 << 10), -ESTALE);
	cr_assert_eq(store_read_stream(st, f, 0, big, buf_sink, &bs), -ESTALE);
	cr_assert(bs.b.len <= 64 << 10, "only the pinned head was delivered");
	cr_assert(bs.b.len == 0 || bs.b.data[0] == 'a');
	buf_free(&bs.b);
	cr_assert_eq(store_close(st, f), 0);
	free(data);
	free(other);
}

Test(store, writes)
{
	struct store_attr a;
	struct pat p = { 3000, 9 };
	struct store_source src = { .size = p.size,
				    .read = pat_read,
				    .arg = &p,
				    .mode = S_IFREG | 0612,
				    .uid = 11,
				    .gid = 12,
				    .mtime = { .tv_sec = 1600000001 },
				    .have_meta = 1 };
	cr_assert_eq(store_put(st, "/w/file", &src), 0);
	cr_assert_eq(store_stat(st, "/w/file", &a), 0);
	cr_assert_eq(a.size, 3000);
	cr_assert_eq(a.mode, S_IFREG | 0612);
	cr_assert_eq(a.uid, 11);
	cr_assert_eq(a.mtime.tv_sec, 1600000001);
	cr_assert_eq(store_stat(st, "/w", &a), 0);
	cr_assert(S_ISDIR(a.mode));

	cr_assert_eq(store_mkdir(st, "/newdir", 0700), 0);
	cr_assert_eq(store_stat(st, "/newdir", &a), 0);
	cr_assert(S_ISDIR(a.mode));
	cr_assert_eq(a.mode & 07777, 0700);
	cr_assert_eq(store_rmdir(st, "/w"), -ENOTEMPTY);
	cr_assert_eq(store_rmdir(st, "/nodir"), -ENOENT);
	cr_assert_eq(store_rmdir(st, "/newdir"), 0);
	cr_assert_eq(store_stat(st, "/newdir", &a), -ENOENT);

	cr_assert_eq(store_rename(st, "/w/file", "/w/renamed", 0), 0);
	cr_assert_eq(store_stat(st, "/w/file", &a), -ENOENT);
	cr_assert_eq(store_stat(st, "/w/renamed", &a), 0);
	cr_assert_eq(a.mode, S_IFREG | 0612, "metadata kept by the copy");
	cr_assert_eq(s3_put_buf(cl, K("w/other"), "o", 1, NULL, NULL), 0);
	cr_assert_eq(store_rename(st, "/w/renamed", "/w/other", RENAME_NOREPLACE), -EEXIST);
	cr_assert_eq(store_rename(st, "/w", "/w2", 0), -EXDEV);
	cr_assert_eq(store_rename(st, "/missing", "/w2", 0), -ENOENT);
	cr_assert_eq(store_unlink(st, "/w/renamed"), 0);
	cr_assert_eq(store_stat(st, "/w/renamed", &a), -ENOENT);

	struct statvfs sv;
	cr_assert_eq(store_statfs(st, "/", &sv), 0);
	cr_assert_gt(sv.f_bavail, 1000000);
	cr_assert_eq(store_chmod(st, "/w/other", 0600), -ENOTSUP);
}

/* ------------------------------------------------------------------------------------
 * Faults (run through tests/tools/faultproxy.py by s3faults.sh; S3_URL is the proxy, and
 * FAULT names the proxy's mode). The object "faults/obj" (FAULT_SIZE bytes of pattern 31)
 * was seeded directly. */

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 300);

Test(faults, read_through)
{
	const char *mode = env("FAULT", "none");
	const char *expect = env("FAULT_EXPECT", "ok");
	uint64_t size = strtoull(env("FAULT_SIZE", "0"), NULL, 10);
	double limit = atof(env("FAULT_MAX_SECONDS", "60"));
	uint64_t r0 = stats_get(s3_requests), e0 = stats_get(s3_errors),
		 t0r = stats_get(s3_retries);
	struct hasher h;
	hasher_init(&h, 31, 0);
	double t0 = util_now_s();
	int rc = s3_get_stream(cl, "faults/obj", NULL, 0, UINT64_MAX, hash_sink, &h, NULL);
	double dt = util_now_s() - t0;
	char hex[65];
	hasher_hex(&h, hex);
	uint64_t dr = stats_get(s3_requests) - r0, de = stats_get(s3_errors) - e0,
		 dtr = stats_get(s3_retries) - t0r;
	cr_log_info("fault %s: rc %d in %.2fs, %llu requests, %llu retries, %llu errors", mode, rc,
		    dt, (unsigned long long)dr, (unsigned long long)dtr, (unsigned long long)de);
	printf("# fault %s: rc %d (%s) in %.2fs: %llu requests, %llu retries, %llu errors\n", mode,
	       rc, rc ? strerror(-rc) : "ok", dt, (unsigned long long)dr, (unsigned long long)dtr,
	       (unsigned long long)de);
	cr_assert_lt(dt, limit, "took %.1fs, bound %.1fs", dt, limit);
	if (strcmp(expect, "ok") == 0) {
		cr_assert_eq(rc, 0, "stream through %s: %d", mode, rc);
		cr_assert_eq(h.n, size);
		cr_assert_eq(h.mismatches, 0, "resumed stream delivered wrong bytes");
		cr_assert_eq(de, 0);
		if (getenv("FAULT_FIRST"))   /* the first requests fail: this one did */
			cr_assert_gt(dtr, 0, "the retry counter moved");
	} else {
		int want = strcmp(expect, "eio") == 0 ? -EIO : -ETIMEDOUT;
		cr_assert(rc == want || rc == -EIO || rc == -ETIMEDOUT, "rc %d, want %d", rc, want);
		cr_assert_eq(h.mismatches, 0, "no wrong bytes even on failure");
		cr_assert_geq(de, 1, "the error counter moved");
	}
	cr_assert_geq(dr, 1);
}

Test(faults, small_ops)
{
	const char *expect = env("FAULT_EXPECT", "ok");
	if (strcmp(expect, "ok") != 0)
		return;
	/* HEAD, ranged GET, PUT, list and DELETE also come through transient faults */
	struct s3_object_info oi;
	char buf[100];
	cr_assert_eq(s3_head(cl, "faults/obj", &oi), 0);
	cr_assert_eq(s3_get_range(cl, "faults/obj", oi.etag, 1000, sizeof(buf), buf),
		     (ssize_t)sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq((unsigned char)buf[i], pat_byte(1000 + i, 31));
	cr_assert_eq(s3_put_buf(cl, K("put"), "through faults", 14, NULL, NULL), 0);
	struct pages p = { 0 };
	struct s3_list_opts o = { .prefix = uniq };
	cr_assert_eq(s3_list(cl, &o, count_page, &p), 0);
	cr_assert_eq(p.objects, 1);
	cr_assert_eq(s3_delete(cl, K("put")), 0);
}

Test(faults, multipart_upload)
{
	const char *expect = env("FAULT_EXPECT", "ok");
	if (strcmp(expect, "ok") != 0)
		return;
	/* 16 MiB in 5 MiB parts: create, 4 parts in parallel, complete, each retried */
	struct ferry_config c2;
	struct s3_client *x;
	make_cfg(&c2, env("S3_URL", ""));
	c2.s3_part_size = 5u << 20;
	c2.s3_multipart_threshold = 6u << 20;
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	struct pat p = { 16u << 20, 55 };
	cr_assert_eq(s3_put(x, K("mp"), p.size, pat_read, &p, NULL, NULL), 0);
	struct hasher h;
	hasher_init(&h, 55, 0);
	cr_assert_eq(s3_get_stream(x, K("mp"), NULL, 0, UINT64_MAX, hash_sink, &h, NULL), 0);
	char hex[65];
	hasher_hex(&h, hex);
	cr_assert_eq(h.n, p.size);
	cr_assert_eq(h.mismatches, 0);
	cr_assert_eq(s3_delete(x, K("mp")), 0);
	s3_client_free(x);
	cfg_free(&c2);
}

/* A part upload that fails for good (the proxy answers 500 to every PUT ...partNumber=):
 * the client gives up after its retries, sends AbortMultipartUpload (s3faults.sh finds the
 * DELETE ...?uploadId= in the proxy's log) and returns the part's error, -EIO, not the
 * abort's (s3rver answers it 405, which would be -ENOTSUP). */
Test(faults, multipart_part_fails)
{
	if (strcmp(env("FAULT_EXPECT", "ok"), "partfail") != 0)
		return;
	struct ferry_config c2;
	struct s3_client *x;
	make_cfg(&c2, env("S3_URL", ""));
	c2.s3_part_size = 5u << 20;
	c2.s3_multipart_threshold = 6u << 20;
	cr_assert_eq(s3_client_new(&c2, &x), 0);
	struct pat p = { 16u << 20, 57 };
	uint64_t e0 = stats_get(s3_errors);
	int rc = s3_put(x, K("mpabort"), p.size, pat_read, &p, NULL, NULL);
	printf("# multipart upload with every part failing: rc %d (%s)\n", rc, strerror(-rc));
	cr_assert_eq(rc, -EIO, "the part's error, not the abort's: %d", rc);
	cr_assert_geq(stats_get(s3_errors) - e0, 1, "the error counter moved");
	struct s3_object_info oi;
	cr_assert_eq(s3_head(x, K("mpabort"), &oi), -ENOENT, "no object was made");
	s3_client_free(x);
	cfg_free(&c2);
}

/* Errors the client cannot retry (the proxy answers 403 AccessDenied to faults/obj, run
 * with S3TEST_LOG=7 so that a 404 is logged too): 403 is -EACCES, tried once; a missing key
 * is -ENOENT. s3faults.sh checks that each failure's log line names the S3 error code and
 * the request id. */
Test(faults, errors_mapped)
{
	if (strcmp(env("FAULT_EXPECT", "ok"), "eacces") != 0)
		return;
	char buf[100];
	struct s3_object_info oi;
	uint64_t r0 = stats_get(s3_requests), t0r = stats_get(s3_retries);
	cr_assert_eq(s3_get_range(cl, "faults/obj", NULL, 0, sizeof(buf), buf), -EACCES);
	cr_assert_eq(stats_get(s3_requests) - r0, 1, "a 403 is not retried");
	cr_assert_eq(stats_get(s3_retries), t0r);
	cr_assert_eq(s3_head(cl, "faults/obj", &oi), -EACCES);
	cr_assert_eq(s3_get_range(cl, K("missing"), NULL, 0, sizeof(buf), buf), -ENOENT);
}

/* Seeds faults/obj (run against s3rver directly). */
Test(faults, seed)
{
	if (!getenv("FAULT_SEED"))
		return;
	struct pat p = { strtoull(env("FAULT_SIZE", "0"), NULL, 10), 31 };
	cr_assert_eq(s3_put(cl, "faults/obj", p.size, pat_read, &p, NULL, NULL), 0);
}

/* ------------------------------------------------------------------------------------
 * TLS (S3_TLS_URL: an https s3rver with a self-signed certificate in S3_TLS_CA) */

TestSuite(tls, .timeout = 60);

static int tls_probe(int with_ca, int insecure)
{
	struct ferry_config c;
	struct s3_client *x;
	make_cfg(&c, env("S3_TLS_URL", "https://127.0.0.1:1"));
	c.s3_retries = 1;
	if (with_ca)
		c.s3_ca_file = strdup(env("S3_TLS_CA", "/nonexistent"));
	c.s3_insecure_tls = insecure;
	cr_assert_eq(s3_client_new(&c, &x), 0);
	int rc = s3_probe(x);
	if (rc == 0) {
		char buf[8];
		cr_assert_eq(s3_put_buf(x, "tls/obj", "secure", 6, NULL, NULL), 0);
		cr_assert_eq(s3_get_range(x, "tls/obj", NULL, 0, sizeof(buf), buf), 6);
		cr_assert_eq(memcmp(buf, "secure", 6), 0);
	}
	s3_client_free(x);
	cfg_free(&c);
	return rc;
}

Test(tls, peer_verified_by_default)
{
	if (!getenv("S3_TLS_URL"))
		cr_skip_test("no S3_TLS_URL");
	log_init(LOG_TO_STDERR, LOG_WARNING, "s3client");
	cr_assert_eq(tls_probe(0, 0), -EPROTO, "a self-signed server is refused");
	cr_assert_eq(tls_probe(1, 0), 0, "accepted with s3_ca_file");
	cr_assert_eq(tls_probe(0, 1), 0, "accepted with s3_insecure_tls");
}
