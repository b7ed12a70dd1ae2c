/* tests/bench/bench_nfs.c - read one NFS file through the store (the pool of libnfs
 * contexts) and report the time: a benchmark, not a test (contrib/bench-nfs.sh runs it
 * beside nfs-cp and prints medians).
 *
 *   bench_nfs URL PATH MODE [THREADS]
 *     URL   nfs://... as for the nfs= option;  PATH  the file, a store path ("/big")
 *     MODE  seq: one reader, 1 MiB preads in order (what read_stream does)
 *           par: THREADS readers (default 4) on one handle, each taking the next 1 MiB
 *                chunk, so the reads run on several contexts at once
 * Prints "<seconds> <bytes>" on stdout; exits 1 on any error or short read. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cfg.h"
#include "store/store.h"
#include "base/util.h"

#define CHUNK (1u << 20)

struct job {
	struct store *st;
	struct store_file *f;
	uint64_t size;
	atomic_uint_fast64_t next;
	atomic_int failed;
};

static void *reader(void *arg)
{
	struct job *j = arg;
	char *buf = malloc(CHUNK);
	if (!buf) {
		atomic_store(&j->failed, 1);
		return NULL;
	}
	for (;;) {
		uint64_t off = atomic_fetch_add(&j->next, CHUNK);
		if (off >= j->size)
			break;
		size_t want = j->size - off < CHUNK ? (size_t)(j->size - off) : CHUNK;
		if (store_pread(j->st, j->f, buf, want, off) != (ssize_t)want) {
			atomic_store(&j->failed, 1);
			break;
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct ferry_config cfg;
	struct store *st;
	struct store_attr a;
	struct job j = { 0 };

	if (argc < 4 || (strcmp(argv[3], "seq") && strcmp(argv[3], "par"))) {
		fprintf(stderr, "usage: %s URL PATH seq|par [THREADS]\n", argv[0]);
		return 2;
	}
	int threads = !strcmp(argv[3], "seq") ? 1 : (argc > 4 ? atoi(argv[4]) : 4);
	if (threads < 1 || threads > 64)
		return 2;
	log_init(LOG_TO_STDERR, LOG_WARNING, "bench_nfs");
	cfg_init(&cfg);
	cfg.nfs = argv[1];
	cfg.nfs_connections = (unsigned)threads;
	if (store_new_nfs_side(&cfg, &st) || store_probe(st))
		return 1;
	if (store_stat(st, argv[2], &a)) {
		fprintf(stderr, "bench_nfs: cannot stat %s\n", argv[2]);
		return 1;
	}
	j.st = st;
	j.size = a.size;
	double t0 = util_now_s();
	if (store_open(st, argv[2], O_RDONLY, 0, NULL, &j.f))
		return 1;
	pthread_t t[64];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, reader, &j);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	store_close(st, j.f);
	double dt = util_now_s() - t0;
	store_destroy(st);
	if (atomic_load(&j.failed)) {
		fprintf(stderr, "bench_nfs: a read failed or came back short\n");
		return 1;
	}
	printf("%.3f %llu\n", dt, (unsigned long long)j.size);
	return 0;
}
