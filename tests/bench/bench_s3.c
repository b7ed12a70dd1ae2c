/* bench_s3.c - read one S3 object through the S3 client and report the throughput;
 * contrib/bench-s3.sh runs it beside curl's command line. Not a test.
 *
 *   bench_s3 URL BUCKET KEY stream
 *   bench_s3 URL BUCKET KEY ranged THREADS CHUNK_MIB
 * prints "SECONDS BYTES" on stdout. Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cfg.h"
#include "base/log.h"
#include "s3/client.h"
#include "base/util.h"

static struct s3_client *cl;
static const char *key;
static char etag[80];
static uint64_t size, chunk;
static atomic_uint_fast64_t next_off, total;
static atomic_int failed;

static int discard(void *arg, const void *data, size_t len)
{
	(void)data;
	*(uint64_t *)arg += len;
	return 0;
}

static void *ranged_worker(void *arg)
{
	(void)arg;
	char *buf = malloc(chunk);
	if (!buf) {
		atomic_store(&failed, -ENOMEM);
		return NULL;
	}
	for (;;) {
		uint64_t off = atomic_fetch_add(&next_off, chunk);
		if (off >= size)
			break;
		ssize_t n = s3_get_range(cl, key, etag, off, chunk, buf);
		if (n < 0) {
			atomic_store(&failed, (int)n);
			break;
		}
		atomic_fetch_add(&total, (uint64_t)n);
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct ferry_config cfg;
	struct s3_object_info oi;
	int rc;
	if (argc < 5) {
		fprintf(stderr, "usage: %s URL BUCKET KEY stream|ranged [THREADS CHUNK_MIB]\n",
			argv[0]);
		return 2;
	}
	log_init(LOG_TO_STDERR, LOG_WARNING, "bench_s3");
	cfg_init(&cfg);
	cfg.s3_endpoint = util_strdup(argv[1]);
	cfg.s3_bucket = util_strdup(argv[2]);
	cfg.s3_path_style = 1;
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	cfg.s3_access_key_id = util_strdup(ak ? ak : "S3RVER");
	cfg.s3_secret_access_key = util_strdup(sk ? sk : "S3RVER");
	key = argv[3];
	if ((rc = s3_client_new(&cfg, &cl)) || (rc = s3_head(cl, key, &oi))) {
		fprintf(stderr, "bench_s3: %s\n", strerror(-rc));
		return 1;
	}
	size = oi.size;
	memcpy(etag, oi.etag, sizeof(etag));
	double t0 = util_now_s();
	uint64_t got = 0;
	if (strcmp(argv[4], "stream") == 0) {
		rc = s3_get_stream(cl, key, etag, 0, UINT64_MAX, discard, &got, NULL);
	} else {
		unsigned threads = argc > 5 ? (unsigned)atoi(argv[5]) : 4;
		chunk = (argc > 6 ? (uint64_t)atoi(argv[6]) : 8) << 20;
		pthread_t t[64];
		if (threads < 1 || threads > 64)
			threads = 4;
		for (unsigned i = 0; i < threads; i++)
			pthread_create(&t[i], NULL, ranged_worker, NULL);
		for (unsigned i = 0; i < threads; i++)
			pthread_join(t[i], NULL);
		rc = atomic_load(&failed);
		got = atomic_load(&total);
	}
	double dt = util_now_s() - t0;
	if (rc || got != size) {
		fprintf(stderr, "bench_s3: %s (%llu of %llu bytes)\n",
			rc ? strerror(-rc) : "short read", (unsigned long long)got,
			(unsigned long long)size);
		return 1;
	}
	printf("%.4f %llu\n", dt, (unsigned long long)got);
	s3_client_free(cl);
	cfg_free(&cfg);
	return 0;
}
