/* bench_ledger - how fast and how big the ledger is with millions of migrated files.
 *
 *   bench_ledger [-n RECORDS] [-b BATCH] [-l LOOKUPS] [-d DIR] [--random] [--nosync] [--keep]
 *
 * Inserts RECORDS (default 11,000,000) synthetic migrated-file records (paths of 40-80
 * bytes, an MD5 ETag, a SHA-256, size, a 64-bit inode number, migration time) plus their
 * inomap entries, in transactions of BATCH (default 10,000), in crawl order (sorted, as a
 * ListObjectsV2 crawl records them) or with --random in a random order (as touched files
 * arrive). Then it measures random lookups (1 and 2 threads), single-file migration
 * commits (one durable transaction each, as the migrator does them) and journal appends,
 * and reports bytes per record. Lookups run twice: the first pass also pays for mapping
 * the file's pages into the process. --nosync opens the ledger with LEDGER_NOSYNC. Not a
 * test: figures go to doc/ledger.md. DIR must be on local disk (default: a new directory
 * under /var/tmp, removed unless --keep).
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ledger/ledger.h"
#include "base/util.h"

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Path of record i; lexicographic order of paths is the order of i. 40-80 bytes. */
static int make_path(uint64_t i, char *out, size_t size)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789_-";
	static const char *const ext[] = {
		"jpg", "png", "pdf", "json", "txt", "webp", "mp4", "gz"
	};
	char suffix[48];
	uint64_t h = mix(i + 1);
	int len = 6 + (int)(h % 35); /* 6..40 */
	for (int k = 0; k < len; k++) {
		suffix[k] = alnum[(h >> (k % 8 * 8)) % (sizeof(alnum) - 1)];
		if (k % 8 == 7)
			h = mix(h);
	}
	suffix[len] = '\0';
	return snprintf(out, size, "/data%02u/u%06u/d%u/%08x-%s.%s", (unsigned)(i / 700000),
			(unsigned)(i / 1000), (unsigned)(i / 100 % 10), (unsigned)i, suffix,
			ext[mix(i) % 8]);
}

static void make_rec(uint64_t i, struct ledger_file *r)
{
	memset(r, 0, sizeof(*r));
	r->state = LEDGER_MIGRATED;
	uint64_t h = mix(i ^ 0x5eed);
	r->size = h % (4u << 20);
	r->ino = mix(i ^ 0x1a0);              /* worst case: a full 64-bit inode number */
	r->migrated = 1767225600 + (int64_t)(i / 50);
	r->attempts = 1;
	unsigned char md5[16];
	for (int k = 0; k < 16; k++)
		md5[k] = (unsigned char)(mix(h + (uint64_t)k) & 0xff);
	util_hex(md5, 16, r->etag);
	if (i % 10 == 0)
		snprintf(r->etag + 32, sizeof(r->etag) - 32, "-%u",
			 (unsigned)(2 + i % 30)); /* multipart */
	r->has_sha256 = true;
	for (int k = 0; k < 32; k++)
		r->sha256[k] = (unsigned char)(mix(h + 100 + (uint64_t)k) & 0xff);
}

static double now(void)
{
	return util_now_s();
}

struct lookup_arg {
	struct ledger *l;
	uint64_t n, count, seed;
	int misses;
};

static void *lookups(void *p)
{
	struct lookup_arg *a = p;
	char path[128];
	struct ledger_file r;
	for (uint64_t k = 0; k < a->count; k++) {
		uint64_t i = mix(a->seed + k) % a->n;
		make_path(i, path, sizeof(path));
		if (ledger_file_get(a->l, path, &r) != 0 || r.state != LEDGER_MIGRATED)
			a->misses++;
	}
	return NULL;
}

struct append_arg {
	struct ledger *l;
	int id, count, errors;
};

static void *appends(void *p)
{
	struct append_arg *a = p;
	char path[64];
	for (int k = 0; k < a->count; k++) {
		snprintf(path, sizeof(path), "/zz-journal/t%d/%06d", a->id, k);
		struct ledger_jentry e = { .op = LEDGER_OP_CREATE, .path = path };
		if (ledger_journal_append(a->l, &e, NULL))
			a->errors++;
	}
	return NULL;
}

static void table_pages(const char *dir, uint64_t n)
{
	MDB_env *env;
	MDB_txn *txn;
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
	    mdb_env_open(env, dir, MDB_RDONLY, 0600) ||
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
		fprintf(stderr, "cannot open %s with LMDB\n", dir);
		return;
	}
	const char *names[] = { "files",   "inomap", "queue", "qidx",
				"journal", "jpath",  "meta",  "ckpt" };
	printf("  %-8s %12s %8s %8s %10s %12s %9s\n", "table", "entries", "depth", "branch",
	       "leaf", "overflow", "B/record");
	for (size_t t = 0; t < sizeof(names) / sizeof(names[0]); t++) {
		MDB_dbi dbi;
		MDB_stat st;
		if (mdb_dbi_open(txn, names[t], 0, &dbi) || mdb_stat(txn, dbi, &st))
			continue;
		uint64_t pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
		printf("  %-8s %12zu %8u %8zu %10zu %12zu %9.1f\n", names[t], st.ms_entries,
		       st.ms_depth, st.ms_branch_pages, st.ms_leaf_pages, st.ms_overflow_pages,
		       (double)pages * st.ms_psize / (double)n);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

int main(int argc, char **argv)
{
	uint64_t n = 11000000, batch = 10000, nlookups = 1000000;
	const char *dir = NULL;
	int random_order = 0, keep = 0, nosync = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-b") && i + 1 < argc)
			batch = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-l") && i + 1 < argc)
			nlookups = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--random"))
			random_order = 1;
		else if (!strcmp(argv[i], "--nosync"))
			nosync = 1;
		else if (!strcmp(argv[i], "--keep"))
			keep = 1;
		else {
			fprintf(stderr, "usage: %s [-n RECORDS] [-b BATCH] [-l LOOKUPS] [-d DIR] "
				"[--random] [--nosync] [--keep]\n", argv[0]);
			return 2;
		}
	}
	if (n == 0 || batch == 0)
		return 2;
	char tmpl[] = "/var/tmp/bench-ledger-XXXXXX";
	if (!dir) {
		dir = mkdtemp(tmpl);
		if (!dir) {
			perror("mkdtemp");
			return 1;
		}
	}
	struct ledger *l;
	/* default durability: one fdatasync per commit */
	int rc = ledger_open(dir, LEDGER_CREATE | (nosync ? LEDGER_NOSYNC : 0), &l);
	if (rc) {
		fprintf(stderr, "ledger_open %s: %s\n", dir, strerror(-rc));
		return 1;
	}
	printf("ledger benchmark: %llu records, %s order, batches of %llu, %s, in %s\n",
	       (unsigned long long)n, random_order ? "random" : "crawl (sorted)",
	       (unsigned long long)batch, nosync ? "LEDGER_NOSYNC" : "fsync per commit", dir);

	char (*names)[128] = malloc(batch * 128);
	const char **paths = malloc(batch * sizeof(*paths));
	struct ledger_file *recs = malloc(batch * sizeof(*recs));
	uint64_t *fids = malloc(batch * 8), *inos = malloc(batch * 8);
	if (!names || !paths || !recs || !fids || !inos)
		return 1;
	/* random order: i -> (i * P + off) mod n with P coprime to n is a permutation */
	uint64_t P = 2654435761ULL % n;
	while (random_order && n > 1) {
		uint64_t a = P, b = n;
		while (b) {
			uint64_t t = a % b;
			a = b;
			b = t;
		}
		if (a == 1 && P > 1)
			break;
		P++;
	}
	size_t path_bytes = 0;
	double t0 = now(), last = t0;
	for (uint64_t base = 0; base < n; base += batch) {
		uint64_t m = n - base < batch ? n - base : batch;
		for (uint64_t k = 0; k < m; k++) {
			uint64_t i = random_order ? ((base + k) * P + 12345) % n : base + k;
			path_bytes += (size_t)make_path(i, names[k], 128);
			paths[k] = names[k];
			make_rec(i, &recs[k]);
			/* NFS file ids: growing in crawl order (files created in order), else
			 * random */
			fids[k] = random_order ? mix(i ^ 0xf11e) : 1000 + i;
			inos[k] = recs[k].ino;
		}
		if ((rc = ledger_file_put_many(l, m, paths, recs)) ||
		    (rc = ledger_ino_put_many(l, m, fids, inos))) {
			fprintf(stderr, "insert at %llu: %s\n", (unsigned long long)base,
				strerror(-rc));
			return 1;
		}
		double t = now();
		if (t - last > 10) {
			fprintf(stderr, "  %llu records, %.0f/s\n", (unsigned long long)(base + m),
				(double)(base + m) / (t - t0));
			last = t;
		}
	}
	double t_ins = now() - t0;
	printf("insert: %.1f s, %.0f records/s (file record + inomap entry each)\n", t_ins,
	       (double)n / t_ins);
	printf("average path: %.1f bytes\n", (double)path_bytes / (double)n);

	struct ledger_stats st;
	if ((rc = ledger_stats(l, &st)))
		return 1;
	char data[4200];
	snprintf(data, sizeof(data), "%s/data.mdb", dir);
	struct stat sb;
	stat(data, &sb);
	printf("size: tables %.1f MiB = %.1f bytes/record; file high-water %.1f bytes/record; "
	       "on disk %.1f MiB; map %.0f MiB\n", st.table_bytes / 1048576.0,
	       (double)st.table_bytes / (double)n, (double)st.used_bytes / (double)n,
	       (double)sb.st_blocks * 512 / 1048576.0, st.map_size / 1048576.0);

	/* random lookups, 1 then 2 threads, twice */
	for (int pass = 0; pass < 4; pass++) {
		int threads = 1 + pass % 2;
		struct lookup_arg a[2];
		pthread_t th[2];
		t0 = now();
		for (int t = 0; t < threads; t++) {
			a[t] = (struct lookup_arg){ .l = l, .n = n, .count = nlookups,
						    .seed = 777 + (uint64_t)t * 1000003 };
			pthread_create(&th[t], NULL, lookups, &a[t]);
		}
		int misses = 0;
		for (int t = 0; t < threads; t++) {
			pthread_join(th[t], NULL);
			misses += a[t].misses;
		}
		double dt = now() - t0;
		printf("lookup pass %d: %d thread%s, %.0f lookups/s%s\n", pass / 2 + 1, threads,
		       threads > 1 ? "s" : "", (double)nlookups * threads / dt,
		       misses ? " (MISSES!)" : "");
		if (misses)
			return 1;
	}

	/* the migrator's path: one commit per file, each its own durable transaction */
	uint64_t ncommit = 20000;
	t0 = now();
	for (uint64_t k = 0; k < ncommit; k++) {
		char p[128];
		struct ledger_file r;
		snprintf(p, sizeof(p), "/zz-commit/%08llu.bin", (unsigned long long)k);
		make_rec(n + k, &r);
		if ((rc = ledger_commit_migration(l, p, &r, 1ULL << 40 | k))) {
			fprintf(stderr, "commit: %s\n", strerror(-rc));
			return 1;
		}
	}
	double dt = now() - t0;
	printf("commit_migration: %.0f/s (one transaction each, one thread)\n",
	       (double)ncommit / dt);

	/* journal appends, one transaction each, then a drain */
	uint64_t njournal = 20000;
	t0 = now();
	for (uint64_t k = 0; k < njournal; k++) {
		char p[128];
		make_path(k, p, sizeof(p));
		struct ledger_jentry e = { .op = LEDGER_OP_WRITE, .path = p };
		if ((rc = ledger_journal_append(l, &e, NULL))) {
			fprintf(stderr, "journal: %s\n", strerror(-rc));
			return 1;
		}
	}
	dt = now() - t0;
	printf("journal_append: %.0f/s (one transaction each, one thread)\n",
	       (double)njournal / dt);
	/* the same from 8 threads (FUSE threads journaling at once): commits are shared */
	struct append_arg aa[8];
	pthread_t ath[8];
	t0 = now();
	for (int t = 0; t < 8; t++) {
		aa[t] = (struct append_arg){ .l = l, .id = t, .count = (int)(njournal / 8) };
		pthread_create(&ath[t], NULL, appends, &aa[t]);
	}
	for (int t = 0; t < 8; t++)
		pthread_join(ath[t], NULL);
	dt = now() - t0;
	printf("journal_append: %.0f/s (8 threads, group commit)\n", (double)njournal / dt);
	t0 = now();
	rc = ledger_journal_delete_upto(l, UINT64_MAX);
	dt = now() - t0;
	printf("journal_delete_upto: %d entries in %.2f s\n", rc, dt);

	ledger_close(l);
	printf("tables (after the commit and journal phases):\n");
	table_pages(dir, n);
	if (!keep) {
		char cmd[4300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	free(names);
	free(paths);
	free(recs);
	free(fids);
	free(inos);
	return 0;
}
