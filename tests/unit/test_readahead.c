/* Unit tests for readahead.c over an in-memory store (tests/unit/memstore.c): content is
 * always compared byte for byte with the object, the global cap is checked against the
 * peak, errors must reach exactly the reads whose bytes fail, and closing with fetches in
 * flight must leave nothing behind (run it under valgrind: see doc/readahead.md).
 *
 * RA_TEST_SMALL=1 shrinks the big objects (for valgrind). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "memstore.h"
#include "view/readahead.h"

#define MiB (1ull << 20)
#define KiB (1ull << 10)

static int small(void)
{
	const char *s = getenv("RA_TEST_SMALL");
	return s && *s && *s != '0';
}

static unsigned char *pattern(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t k = n - i < 8 ? n - i : 8;
		memcpy(p + i, &x, k);
	}
	return p;
}

/* One object in a memstore, opened, with read-ahead on it. */
struct fx {
	struct memstore *m;
	struct store_file *f;
	struct ra_file *rf;
	unsigned char *data;
	uint64_t size;
};

static void fx_open(struct fx *x, int pread_only, uint64_t size, uint64_t seed)
{
	memset(x, 0, sizeof(*x));
	x->m = memstore_new(pread_only);
	cr_assert_not_null(x->m);
	x->size = size;
	x->data = pattern(size, seed);
	cr_assert_eq(memstore_put(x->m, "/obj", x->data, size), 0);
	cr_assert_eq(store_open(&x->m->base, "/obj", O_RDONLY, 0, NULL, &x->f), 0);
	cr_assert_eq(ra_open(&x->m->base, x->f, size, &x->rf), 0);
}

static void fx_close(struct fx *x)
{
	ra_close(x->rf);
	cr_assert_eq(atomic_load(&x->m->inflight), 0, "a fetch outlived ra_close");
	store_close(&x->m->base, x->f);
	store_destroy(&x->m->base);
	free(x->data);
}

static void init(uint64_t max_mem, uint64_t part, uint64_t wmin, uint64_t wmax, unsigned threads)
{
	struct ra_config c = { .max_mem = max_mem, .part_size = part, .window_min = wmin,
			       .window_max = wmax, .threads = threads };
	cr_assert_eq(ra_init(&c), 0);
}

static void setup(void)
{
	log_init(LOG_TO_STDERR, LOG_WARNING, "test_readahead");
}

static void teardown(void)
{
	struct ra_stats s;
	ra_stats(&s);
	if (s.mem_max) {
		cr_expect_eq(s.mem_used, 0, "memory still reserved after every close: %llu",
			     (unsigned long long)s.mem_used);
		cr_expect_eq(s.files_open, 0);
		cr_expect_eq(s.mem_cached, 0, "idle buffers kept with no handle open");
		cr_expect_leq(s.mem_peak, s.mem_max, "the cap was exceeded");
	}
	ra_shutdown();
}

TestSuite(readahead, .init = setup, .fini = teardown, .timeout = 300);

/* Read the whole object sequentially with reads of `rsz` bytes (every 7th one odd-sized)
 * and compare. */
static void read_all_seq(struct fx *x, size_t rsz)
{
	unsigned char *buf = malloc(rsz + 4096);
	uint64_t off = 0;
	unsigned i = 0;
	while (off < x->size) {
		size_t len = (i++ % 7 == 6) ? rsz - 4096 + 17 : rsz;
		ssize_t n = ra_read(x->rf, buf, len, off);
		uint64_t want = x->size - off < len ? x->size - off : len;
		cr_assert_eq(n, (ssize_t)want, "read at %llu: %zd", (unsigned long long)off, n);
		cr_assert(memcmp(buf, x->data + off, want) == 0, "bytes differ at %llu",
			  (unsigned long long)off);
		off += want;
	}
	cr_assert_eq(ra_read(x->rf, buf, rsz, off), 0, "a read at end of file gives 0");
	free(buf);
}

static void seq_big(int pread_only)
{
	uint64_t size = small() ? 24 * MiB + 333 : 300 * MiB + 333;
	struct fx x;
	init(0, 0, 0, 0, 4);
	fx_open(&x, pread_only, size, 1);
	read_all_seq(&x, 128 * KiB);
	struct ra_stats s;
	ra_stats(&s);
	cr_expect_eq(s.bytes_served, size);
	cr_expect_leq(s.bytes_fetched, size, "fetched more than the file");
	cr_expect_leq(s.bytes_direct, 1 * MiB, "sequential reads went to the store directly: %llu",
		      (unsigned long long)s.bytes_direct);
	cr_expect_geq(s.hits * 100, s.reads * 99, "hits %llu of %llu", (unsigned long long)s.hits,
		      (unsigned long long)s.reads);
	/* the window grew: far fewer requests than kernel-sized reads */
	cr_expect_lt(atomic_load(&x.m->requests), s.reads / 8);
	fx_close(&x);
}

Test(readahead, sequential_300m_stream) { seq_big(0); }

/* Reads as large as the first window (FUSE max_read 1 MiB): the reader keeps catching up
 * with the read-ahead, which must still grow instead of fetching one read at a time. */
Test(readahead, sequential_1m_reads_grow_the_window)
{
	struct fx x;
	init(0, 0, 0, 0, 4);
	fx_open(&x, 0, 64 * MiB, 11);
	atomic_store(&x.m->latency_us, 2000);
	atomic_store(&x.m->stream_bps, 500 * MiB);
	read_all_seq(&x, 1 * MiB);
	struct ra_stats s;
	ra_stats(&s);
	cr_expect_leq(s.bytes_direct, 1 * MiB);
	cr_expect_lt(atomic_load(&x.m->requests), s.reads / 4, "%llu requests for %llu reads",
		     (unsigned long long)atomic_load(&x.m->requests), (unsigned long long)s.reads);
	cr_expect_geq(atomic_load(&x.m->max_inflight), 3,
		      "the window was fetched %d part at a time", atomic_load(&x.m->max_inflight));
	fx_close(&x);
}
Test(readahead, sequential_300m_pread_only) { seq_big(1); }

Test(readahead, random_reads_are_direct_and_exact)
{
	uint64_t size = 32 * MiB + 7;
	struct fx x;
	init(0, 0, 0, 0, 4);
	fx_open(&x, 0, size, 2);
	unsigned char *buf = malloc(300 * KiB);
	unsigned seed = 42;
	for (int i = 0; i < 3000; i++) {
		uint64_t off =
			((uint64_t)rand_r(&seed) << 16 ^ (uint64_t)rand_r(&seed)) % (size + 100);
		size_t len = 1 + (size_t)rand_r(&seed) % (300 * KiB);
		ssize_t n = ra_read(x.rf, buf, len, off);
		uint64_t want = off >= size ? 0 : (size - off < len ? size - off : len);
		cr_assert_eq(n, (ssize_t)want);
		cr_assert(memcmp(buf, x.data + off, want) == 0, "bytes differ at %llu",
			  (unsigned long long)off);
	}
	struct ra_stats s;
	ra_stats(&s);
	cr_expect_leq(s.bytes_fetched, 2 * MiB, "random reads fetched ahead %llu bytes",
		      (unsigned long long)s.bytes_fetched);
	/* then a sequential run from a random place starts a stream after one read */
	read_all_seq(&x, 64 * KiB);
	ra_stats(&s);
	cr_expect_gt(s.bytes_fetched, size / 2);
	free(buf);
	fx_close(&x);
}

Test(readahead, reads_across_part_boundaries)
{
	uint64_t size = 5 * MiB + 12345;
	struct fx x;
	init(0, 256 * KiB, 256 * KiB, 1 * MiB, 3);
	fx_open(&x, 0, size, 3);
	read_all_seq(&x, 100003);

	/* one read much larger than a part and than the window */
	unsigned char *buf = malloc(size + 10);
	cr_assert_eq(ra_read(x.rf, buf, 3 * MiB, 0), (ssize_t)(3 * MiB));
	cr_assert(memcmp(buf, x.data, 3 * MiB) == 0);
	cr_assert_eq(ra_read(x.rf, buf, 3 * MiB, 3 * MiB), (ssize_t)(size - 3 * MiB));
	cr_assert(memcmp(buf, x.data + 3 * MiB, size - 3 * MiB) == 0);
	/* around the end of the file */
	cr_assert_eq(ra_read(x.rf, buf, 100, size - 10), 10);
	cr_assert(memcmp(buf, x.data + size - 10, 10) == 0);
	cr_assert_eq(ra_read(x.rf, buf, 100, size), 0);
	cr_assert_eq(ra_read(x.rf, buf, 100, size + 5000), 0);
	cr_assert_eq(ra_read(x.rf, buf, 0, 10), 0);
	/* the whole file in one read */
	cr_assert_eq(ra_read(x.rf, buf, size + 10, 0), (ssize_t)size);
	cr_assert(memcmp(buf, x.data, size) == 0);
	free(buf);
	fx_close(&x);
}

/* Threads taking the next 128 KiB chunk from a shared counter, as the kernel's parallel
 * read-ahead does; optionally one thread reading at random at the same time. */
struct crowd {
	struct fx *x;
	atomic_uint_fast64_t next;
	atomic_int bad;
	atomic_int stop;
	unsigned seed;
};

static void *crowd_seq(void *arg)
{
	struct crowd *c = arg;
	unsigned char *buf = malloc(128 * KiB);
	for (;;) {
		uint64_t off = atomic_fetch_add(&c->next, 128 * KiB);
		if (off >= c->x->size)
			break;
		uint64_t want = c->x->size - off < 128 * KiB ? c->x->size - off : 128 * KiB;
		ssize_t n = ra_read(c->x->rf, buf, 128 * KiB, off);
		if (n != (ssize_t)want || memcmp(buf, c->x->data + off, want))
			atomic_fetch_add(&c->bad, 1);
	}
	free(buf);
	return NULL;
}

static void *crowd_random(void *arg)
{
	struct crowd *c = arg;
	unsigned char *buf = malloc(64 * KiB);
	unsigned seed = c->seed;
	while (!atomic_load(&c->stop)) {
		uint64_t off = (uint64_t)rand_r(&seed) * 4096 % c->x->size;
		uint64_t want = c->x->size - off < 64 * KiB ? c->x->size - off : 64 * KiB;
		ssize_t n = ra_read(c->x->rf, buf, 64 * KiB, off);
		if (n != (ssize_t)want || memcmp(buf, c->x->data + off, want))
			atomic_fetch_add(&c->bad, 1);
	}
	free(buf);
	return NULL;
}

static void crowd_run(int pread_only, int with_random)
{
	struct fx x;
	init(32 * MiB, 4 * MiB, 0, 16 * MiB, 4);
	fx_open(&x, pread_only, (small() ? 16 : 64) * MiB + 4321, 4);
	atomic_store(&x.m->latency_us, 500);
	struct crowd c = { .x = &x, .seed = 7 };
	pthread_t t[5];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, crowd_seq, &c), 0);
	if (with_random)
		cr_assert_eq(pthread_create(&t[4], NULL, crowd_random, &c), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	atomic_store(&c.stop, 1);
	if (with_random)
		pthread_join(t[4], NULL);
	cr_assert_eq(atomic_load(&c.bad), 0, "%d reads gave wrong bytes", atomic_load(&c.bad));
	struct ra_stats s;
	ra_stats(&s);
	if (!with_random)
		cr_expect_gt(s.hits * 10, s.reads * 8, "hits %llu of %llu",
			     (unsigned long long)s.hits, (unsigned long long)s.reads);
	fx_close(&x);
}

Test(readahead, concurrent_readers_one_handle) { crowd_run(0, 0); }
Test(readahead, concurrent_readers_one_handle_pread_only) { crowd_run(1, 0); }
Test(readahead, concurrent_sequential_and_random_one_handle) { crowd_run(0, 1); }

/* Many handles, each read by its own thread, under a cap far below their windows. */
struct reader {
	struct fx *x;
	struct ra_file *rf;
	int bad;
};

static void *reader_seq(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = malloc(128 * KiB);
	for (uint64_t off = 0; off < r->x->size; off += 128 * KiB) {
		uint64_t want = r->x->size - off < 128 * KiB ? r->x->size - off : 128 * KiB;
		ssize_t n = ra_read(r->rf, buf, 128 * KiB, off);
		if (n != (ssize_t)want || memcmp(buf, r->x->data + off, want))
			r->bad++;
	}
	free(buf);
	return NULL;
}

static void *sampler(void *arg)
{
	atomic_int *stop = arg;
	uint64_t worst = 0;
	while (!atomic_load(stop)) {
		struct ra_stats s;
		ra_stats(&s);
		if (s.mem_used > worst)
			worst = s.mem_used;
		usleep(200);
	}
	return (void *)(uintptr_t)worst;
}

static void many_handles(uint64_t cap, uint64_t part, uint64_t wmax)
{
	enum { N = 12 };
	struct fx x;
	init(cap, part, 0, wmax, 4);
	fx_open(&x, 0, (small() ? 6 : 24) * MiB + 99, 5);
	atomic_store(&x.m->stream_bps, 400 * MiB);
	struct reader r[N];
	pthread_t t[N], ts;
	atomic_int stop = 0;
	cr_assert_eq(pthread_create(&ts, NULL, sampler, &stop), 0);
	for (int i = 0; i < N; i++) {
		r[i] = (struct reader){ .x = &x };
		cr_assert_eq(ra_open(&x.m->base, x.f, x.size, &r[i].rf), 0);
		cr_assert_eq(pthread_create(&t[i], NULL, reader_seq, &r[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(r[i].bad, 0, "handle %d: %d bad reads", i, r[i].bad);
		ra_close(r[i].rf);
	}
	atomic_store(&stop, 1);
	void *worst;
	pthread_join(ts, &worst);
	struct ra_stats s;
	ra_stats(&s);
	cr_assert_leq(s.mem_peak, cap, "peak %llu over the cap %llu",
		      (unsigned long long)s.mem_peak, (unsigned long long)cap);
	cr_assert_leq((uint64_t)(uintptr_t)worst, cap);
	cr_expect_gt(s.mem_peak, cap / 2,
		     "the cap was not even approached: the test tests nothing");
	fx_close(&x);
}

Test(readahead, global_cap_many_handles) { many_handles(16 * MiB, 2 * MiB, 8 * MiB); }
Test(readahead, global_cap_below_one_part) { many_handles(1 * MiB, 8 * MiB, 64 * MiB); }

/* A store error in one byte: exactly the reads that include it fail, the others are exact. */
static void error_exact(int pread_only)
{
	uint64_t size = 16 * MiB, bad = 5 * MiB + 1000;
	struct fx x;
	init(0, 2 * MiB, 0, 8 * MiB, 3);
	fx_open(&x, pread_only, size, 6);
	memstore_fail_range(x.m, "/obj", bad, bad + 1, -EIO);
	unsigned char *buf = malloc(128 * KiB);
	int fails = 0;
	for (uint64_t off = 0; off < size; off += 128 * KiB) {
		ssize_t n = ra_read(x.rf, buf, 128 * KiB, off);
		if (off <= bad && bad < off + 128 * KiB) {
			cr_expect_eq(n, -EIO, "the read holding the bad byte gave %zd", n);
			fails++;
		} else {
			cr_assert_eq(n, (ssize_t)(128 * KiB), "read at %llu gave %zd",
				     (unsigned long long)off, n);
			cr_assert(memcmp(buf, x.data + off, 128 * KiB) == 0);
		}
	}
	cr_assert_eq(fails, 1);
	/* the error is not remembered: once the store is well again, so are the reads */
	memstore_fail_range(x.m, "/obj", 0, 0, 0);
	cr_assert_eq(ra_read(x.rf, buf, 128 * KiB, bad - 10), (ssize_t)(128 * KiB));
	cr_assert(memcmp(buf, x.data + bad - 10, 128 * KiB) == 0);
	free(buf);
	fx_close(&x);
}

Test(readahead, error_reaches_exactly_its_reads) { error_exact(0); }
Test(readahead, error_reaches_exactly_its_reads_pread_only) { error_exact(1); }

/* The object is replaced while it is read: reads give the old bytes or -ESTALE, never the
 * new bytes and never a mix. */
static void replaced(int pread_only)
{
	uint64_t size = 64 * MiB;
	struct fx x;
	init(16 * MiB, 4 * MiB, 0, 16 * MiB, 4);
	fx_open(&x, pread_only, size, 7);
	unsigned char *newer = pattern(size, 8);
	unsigned char *buf = malloc(128 * KiB);
	int stale = 0;
	for (uint64_t off = 0; off < size; off += 128 * KiB) {
		if (off == 8 * MiB)
			cr_assert_eq(memstore_put(x.m, "/obj", newer, size), 0);
		ssize_t n = ra_read(x.rf, buf, 128 * KiB, off);
		if (n == -ESTALE) {
			stale++;
			continue;
		}
		cr_assert_eq(n, (ssize_t)(128 * KiB), "read at %llu gave %zd",
			     (unsigned long long)off, n);
		cr_assert(memcmp(buf, x.data + off, 128 * KiB) == 0, "not the old bytes at %llu",
			  (unsigned long long)off);
	}
	cr_assert_gt(stale, 0, "the change was never noticed");
	cr_assert_eq(ra_read(x.rf, buf, 128 * KiB, 40 * MiB), -ESTALE);
	free(newer);
	free(buf);
	fx_close(&x);
}

Test(readahead, replaced_object_gives_estale_never_new_bytes) { replaced(0); }
Test(readahead, replaced_object_gives_estale_pread_only) { replaced(1); }

/* Close handles while their fetches are queued and in flight: nothing leaks, no fetch
 * survives ra_close (fx_close checks the store saw no request in flight). */
static void close_inflight(int pread_only)
{
	struct fx x;
	init(64 * MiB, 2 * MiB, 0, 16 * MiB, 3);
	fx_open(&x, pread_only, 64 * MiB, 9);
	atomic_store(&x.m->latency_us, 2000);
	atomic_store(&x.m->stream_bps, 200 * MiB);
	unsigned char *buf = malloc(128 * KiB);
	for (int round = 0; round < (small() ? 5 : 20); round++) {
		struct ra_file *rf[4];
		for (int i = 0; i < 4; i++) {
			cr_assert_eq(ra_open(&x.m->base, x.f, x.size, &rf[i]), 0);
			for (int k = 0; k < 2 + (round + i) % 5; k++) {
				uint64_t off = (uint64_t)k * 128 * KiB + (uint64_t)i * 8 * MiB;
				cr_assert_eq(ra_read(rf[i], buf, 128 * KiB, off),
					     (ssize_t)(128 * KiB));
				cr_assert(memcmp(buf, x.data + off, 128 * KiB) == 0);
			}
		}
		for (int i = 0; i < 4; i++)
			ra_close(rf[i]);
		cr_assert_eq(atomic_load(&x.m->inflight), 0);
	}
	struct ra_stats s;
	ra_stats(&s);
	cr_expect_gt(s.parts_cancelled, 0, "no close ever met a fetch in flight");
	cr_expect_eq(s.mem_used, 0);
	free(buf);
	fx_close(&x);
}

Test(readahead, close_during_inflight_fetches) { close_inflight(0); }
Test(readahead, close_during_inflight_fetches_pread_only) { close_inflight(1); }

Test(readahead, api_errors)
{
	struct ra_file *rf;
	struct ra_config bad = { .window_min = 8 * MiB, .window_max = 1 * MiB };
	cr_assert_eq(ra_open(NULL, NULL, 0, &rf), -ENXIO, "ra_open before ra_init");
	cr_assert_eq(ra_init(&bad), -EINVAL);
	cr_assert_eq(ra_init(NULL), 0);
	cr_assert_eq(ra_init(NULL), -EALREADY);
	struct ra_stats s;
	ra_stats(&s);
	cr_assert_eq(s.mem_max, RA_DEFAULT_MAX_MEM);
	ra_close(NULL);
	/* an empty file */
	struct fx x;
	fx_open(&x, 0, 0, 10);
	char b[16];
	cr_assert_eq(ra_read(x.rf, b, sizeof(b), 0), 0);
	fx_close(&x);
}
