/* readahead.c - integration checks of read-ahead (src/view/readahead.c) over the real S3 store
 * (src/store/s3.c) and a real s3rver, run by tests/integration/readahead.sh.
 *
 * Environment (set by the script):
 *   S3_URL, S3_BUCKET       the s3rver
 *   RA_KEY, RA_SHA256       a large object (256 MiB) and the SHA-256 of the seeded file
 *   RA_KEY2, RA_FILE_A      an object seeded from the local file RA_FILE_A ...
 *   RA_REPLACE_CMD          ... and a shell command (awscli) that replaces it
 *   RA_READ                 bytes per ra_read (default 131072, as a kernel read)
 * Suite bench (skipped unless RA_BENCH=1): reads RA_KEY once through ra_read and prints
 * "ra_read SECONDS" on stdout (tests/integration/readahead.sh RA_BENCH=N drives it). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cfg.h"
#include "base/log.h"
#include "view/readahead.h"
#include "base/stats.h"
#include "store/store.h"
#include "base/util.h"

#define MiB (1ull << 20)

static struct ferry_config cfg;
static struct store *st;

static const char *env(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

static void setup(void)
{
	log_init(LOG_TO_STDERR, atoi(env("RA_LOG", "4")), "integ-readahead");
	cfg_init(&cfg);
	cfg.s3_endpoint = strdup(env("S3_URL", "http://127.0.0.1:14567"));
	cfg.s3_bucket = strdup(env("S3_BUCKET", "ferry-test"));
	cfg.s3_path_style = 1;
	cfg.s3_access_key_id = strdup("S3RVER");
	cfg.s3_secret_access_key = strdup("S3RVER");
	cr_assert_eq(store_s3_new(&cfg, &st), 0);
}

static void teardown(void)
{
	ra_shutdown();
	store_destroy(st);
	st = NULL;
	cfg_free(&cfg);
}

static void open_key(const char *key, struct store_file **f, uint64_t *size)
{
	char path[1024];
	struct store_attr a;
	snprintf(path, sizeof(path), "/%s", key);
	cr_assert_eq(store_open(st, path, O_RDONLY, 0, NULL, f), 0, "open %s", path);
	cr_assert_eq(store_fstat(st, *f, &a), 0);
	*size = a.size;
}

/* Read the whole object sequentially through ra_read: the seconds it took, and its
 * SHA-256 in hex when hex is not NULL (the benchmark hashes nothing, as curl -o /dev/null). */
static double read_sha(const char *key, char hex[65], uint64_t *total)
{
	struct store_file *f;
	uint64_t size, off = 0;
	size_t rsz = (size_t)atol(env("RA_READ", "131072"));
	open_key(key, &f, &size);
	struct ra_file *rf;
	cr_assert_eq(ra_open(st, f, size, &rf), 0);
	char *buf = malloc(rsz);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	double t0 = util_now_s();
	for (;;) {
		ssize_t n = ra_read(rf, buf, rsz, off);
		cr_assert_geq(n, 0, "ra_read at %llu: %s", (unsigned long long)off,
			      strerror((int)-n));
		if (n == 0)
			break;
		if (hex)
			EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += (uint64_t)n;
	}
	double dt = util_now_s() - t0;
	unsigned char md[32];
	unsigned mdlen;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (hex)
		util_hex(md, 32, hex);
	ra_close(rf);
	store_close(st, f);
	free(buf);
	*total = off;
	return dt;
}

TestSuite(s3, .init = setup, .fini = teardown, .timeout = 600);

Test(s3, sequential_read_matches_sha256)
{
	char hex[65];
	uint64_t total;
	cr_assert_eq(ra_init(NULL), 0);
	uint64_t req0 = stats_get(s3_requests);
	double dt = read_sha(env("RA_KEY", "ra/big.bin"), hex, &total);
	uint64_t reqs = stats_get(s3_requests) - req0;
	struct ra_stats s;
	ra_stats(&s);
	fprintf(stderr, "# %llu bytes in %.2f s (%.0f MB/s), %llu S3 requests, peak %llu MiB\n",
		(unsigned long long)total, dt, total / dt / 1e6, (unsigned long long)reqs,
		(unsigned long long)(s.mem_peak >> 20));
	cr_assert_str_eq(hex, env("RA_SHA256", ""), "content differs from the seeded file");
	cr_assert_leq(s.mem_peak, s.mem_max);
	/* a request per kernel read would be total/131072; read-ahead needs a few dozen */
	cr_assert_lt(reqs, total / (4 * MiB) + 20, "%llu requests", (unsigned long long)reqs);
}

Test(s3, replaced_object_gives_estale_never_new_bytes)
{
	struct ra_config c = { .max_mem = 16 * MiB, .part_size = 4 * MiB, .window_max = 16 * MiB };
	cr_assert_eq(ra_init(&c), 0);
	FILE *fa = fopen(env("RA_FILE_A", ""), "rb");
	cr_assert_not_null(fa, "RA_FILE_A");
	struct stat sb;
	cr_assert_eq(fstat(fileno(fa), &sb), 0);
	uint64_t size = (uint64_t)sb.st_size;
	unsigned char *a = malloc(size);
	cr_assert_eq(fread(a, 1, size, fa), size);
	fclose(fa);

	struct store_file *f;
	uint64_t osize;
	open_key(env("RA_KEY2", "ra/replace.bin"), &f, &osize);
	cr_assert_eq(osize, size);
	struct ra_file *rf;
	cr_assert_eq(ra_open(st, f, size, &rf), 0);
	const size_t rsz = 128 << 10;
	unsigned char *buf = malloc(rsz);
	int stale = 0, replaced = 0;
	for (uint64_t off = 0; off < size; off += rsz) {
		if (off == 8 * MiB) {
			cr_assert_eq(system(env("RA_REPLACE_CMD", "false")), 0,
				     "replacing the object");
			replaced = 1;
		}
		ssize_t n = ra_read(rf, buf, rsz, off);
		if (n == -ESTALE) {
			stale++;
			continue;
		}
		cr_assert_eq(n, (ssize_t)rsz, "read at %llu gave %zd", (unsigned long long)off, n);
		cr_assert(memcmp(buf, a + off, rsz) == 0,
			  "bytes at %llu are not the old object's%s", (unsigned long long)off,
			  replaced ? " (after the replacement)" : "");
	}
	cr_assert_gt(stale, 0, "the replacement was never noticed");
	cr_assert_eq(ra_read(rf, buf, rsz, size / 2), -ESTALE);
	fprintf(stderr, "# %d of %llu reads gave ESTALE, every other read gave the old bytes\n",
		stale, (unsigned long long)(size / rsz));
	ra_close(rf);
	store_close(st, f);
	free(buf);
	free(a);
}

TestSuite(bench, .init = setup, .fini = teardown, .timeout = 600);

Test(bench, ra_read_once)
{
	if (strcmp(env("RA_BENCH", "0"), "1") != 0)
		cr_skip_test("RA_BENCH=1 not set");
	struct ra_config c = {
		.threads = (unsigned)atoi(env("RA_THREADS", "0")),
		.part_size = (uint64_t)atoll(env("RA_PART_MIB", "0")) * MiB,
		.window_max = (uint64_t)atoll(env("RA_WINDOW_MIB", "0")) * MiB,
	};
	cr_assert_eq(ra_init(&c), 0);
	uint64_t total;
	double dt = read_sha(env("RA_KEY", "ra/big.bin"), NULL, &total);
	printf("ra_read %.3f\n", dt);
	fflush(stdout);
}

static int null_sink(void *arg, const void *data, size_t len)
{
	(void)data;
	*(uint64_t *)arg += len;
	return 0;
}

/* The ceiling of one stream through our S3 client: store_read_stream with no copy. */
Test(bench, one_stream_once)
{
	if (strcmp(env("RA_BENCH", "0"), "1") != 0)
		cr_skip_test("RA_BENCH=1 not set");
	struct store_file *f;
	uint64_t size, got = 0;
	open_key(env("RA_KEY", "ra/big.bin"), &f, &size);
	double t0 = util_now_s();
	cr_assert_eq(store_read_stream(st, f, 0, UINT64_MAX, null_sink, &got), 0);
	printf("stream %.3f\n", util_now_s() - t0);
	cr_assert_eq(got, size);
	store_close(st, f);
}
