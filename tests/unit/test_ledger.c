/* Unit tests for the ledger (src/ledger/): every operation, persistence, schema upgrade
 * and refusal, the file state machine, crash recovery (a SIGKILLed writer), a reader in
 * another process, map growth and hostile bytes. Each test works in its own temporary
 * directory on local disk. */
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ledger/ledger.h"

static char dir[64];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ledger-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(ledger, .init = mkdir_tmp, .fini = rm_tmp);

static struct ledger *open_rw(void)
{
	struct ledger *l;
	int rc = ledger_open(dir, LEDGER_CREATE | LEDGER_NOSYNC, &l);
	cr_assert_eq(rc, 0, "ledger_open: %d", rc);
	return l;
}

static struct ledger_file mkrec(int state, uint64_t size, const char *etag)
{
	struct ledger_file r;
	memset(&r, 0, sizeof(r));
	r.state = (uint8_t)state;
	r.size = size;
	snprintf(r.etag, sizeof(r.etag), "%s", etag);
	return r;
}

/* Open the environment with plain LMDB (to fake old schemas and corrupt bytes). */
static void raw_open(MDB_env **env, MDB_txn **txn)
{
	cr_assert_eq(mdb_env_create(env), 0);
	mdb_env_set_maxdbs(*env, 16);
	cr_assert_eq(mdb_env_open(*env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(*env, NULL, 0, txn), 0);
}

static MDB_dbi raw_dbi(MDB_txn *txn, const char *name)
{
	MDB_dbi dbi;
	cr_assert_eq(mdb_dbi_open(txn, name, 0, &dbi), 0, "db %s", name);
	return dbi;
}

static void raw_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl)
{
	MDB_val key = { kl, (void *)k }, val = { vl, (void *)v };
	cr_assert_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
}

/* ---- files ---- */

Test(ledger, file_records_round_trip_every_field)
{
	struct ledger *l = open_rw();
	struct ledger_file r =
		mkrec(LEDGER_MIGRATED, 123456789012ULL, "0123456789abcdef0123456789abcdef");
	r.ino = 0xfedcba9876543210ULL;
	r.migrated = 1767225600;
	r.attempts = 3;
	r.has_sha256 = true;
	for (int i = 0; i < 32; i++)
		r.sha256[i] = (unsigned char)(i * 7);
	cr_assert_eq(ledger_file_put(l, "/a/b.txt", &r), 0);
	struct ledger_file g;
	cr_assert_eq(ledger_file_get(l, "/a/b.txt", &g), 0);
	cr_assert_eq(memcmp(&g, &r, sizeof(r)), 0, "record differs after a round trip");

	const char *etags[] = { "",
				"0123456789abcdef0123456789abcdef-17",
				"\"quoted\"",
				"0123456789ABCDEF0123456789ABCDEF",
				"0123456789abcdef0123456789abcdef-0",
				"0123456789abcdef0123456789abcdef-",
				"0123456789abcdef0123456789abcdef-12345678901",
				"x" };
	for (size_t i = 0; i < sizeof(etags) / sizeof(etags[0]); i++) {
		struct ledger_file e = mkrec(LEDGER_S3_ONLY, i, etags[i]);
		cr_assert_eq(ledger_file_put(l, "/etag", &e), 0);
		cr_assert_eq(ledger_file_get(l, "/etag", &g), 0);
		cr_expect_str_eq(g.etag, etags[i]);
	}
	struct ledger_file f = mkrec(LEDGER_FAILED, 1, "");
	memset(f.error, 'e', sizeof(f.error) - 1);
	cr_assert_eq(ledger_file_put(l, "/failed", &f), 0);
	cr_assert_eq(ledger_file_get(l, "/failed", &g), 0);
	cr_expect_eq(strlen(g.error), LEDGER_ERROR_MAX - 1);

	cr_expect_eq(ledger_file_get(l, "/nope", &g), -ENOENT);
	cr_expect_eq(ledger_file_delete(l, "/a/b.txt"), 0);
	cr_expect_eq(ledger_file_get(l, "/a/b.txt", &g), -ENOENT);
	cr_expect_eq(ledger_file_delete(l, "/a/b.txt"), -ENOENT);
	struct ledger_file bad = mkrec(LEDGER_NSTATES, 0, "");
	cr_expect_eq(ledger_file_put(l, "/bad", &bad), -EINVAL);
	ledger_close(l);
}

Test(ledger, counters_follow_every_change)
{
	struct ledger *l = open_rw();
	struct ledger_file r = mkrec(LEDGER_S3_ONLY, 100, "");
	cr_assert_eq(ledger_file_put(l, "/x", &r), 0);
	cr_assert_eq(ledger_file_put(l, "/y", &r), 0);
	r.state = LEDGER_MIGRATED;
	r.size = 50;
	cr_assert_eq(ledger_file_put(l, "/x", &r), 0); /* replaces: s3-only -> migrated */
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.files[LEDGER_S3_ONLY], 1);
	cr_expect_eq(st.bytes[LEDGER_S3_ONLY], 100);
	cr_expect_eq(st.files[LEDGER_MIGRATED], 1);
	cr_expect_eq(st.bytes[LEDGER_MIGRATED], 50);
	cr_expect_eq(st.files_total, 2);
	cr_expect_eq(st.bytes_total, 150);
	cr_assert_eq(ledger_file_delete(l, "/y"), 0);
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.files[LEDGER_S3_ONLY], 0);
	cr_expect_eq(st.bytes[LEDGER_S3_ONLY], 0);
	cr_expect_eq(ledger_check(l, false), 0);
	cr_expect_eq(st.schema, LEDGER_SCHEMA_VERSION);
	ledger_close(l);
}

static int grow(struct ledger_file *rec, bool exists, void *arg)
{
	int *calls = arg;
	(*calls)++;
	if (!exists)
		return LEDGER_KEEP;
	rec->size += 1;
	return LEDGER_WRITE;
}

static int drop(struct ledger_file *rec, bool exists, void *arg)
{
	(void)rec;
	(void)arg;
	return exists ? LEDGER_DELETE : -EIO;
}

Test(ledger, update_is_a_read_modify_write)
{
	struct ledger *l = open_rw();
	int calls = 0;
	cr_expect_eq(ledger_file_update(l, "/u", grow, &calls), LEDGER_KEEP);
	struct ledger_file r = mkrec(LEDGER_MIGRATED, 10, "");
	cr_assert_eq(ledger_file_put(l, "/u", &r), 0);
	cr_expect_eq(ledger_file_update(l, "/u", grow, &calls), LEDGER_WRITE);
	cr_expect_eq(calls, 2);
	struct ledger_file g;
	cr_assert_eq(ledger_file_get(l, "/u", &g), 0);
	cr_expect_eq(g.state, LEDGER_MIGRATED);
	cr_expect_eq(g.size, 11);
	cr_expect_eq(ledger_file_update(l, "/u", drop, NULL), LEDGER_DELETE);
	cr_expect_eq(ledger_file_get(l, "/u", &g), -ENOENT);
	cr_expect_eq(ledger_file_update(l, "/u", drop, NULL), -EIO, "fn's error is returned");
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

Test(ledger, bad_and_long_paths)
{
	struct ledger *l = open_rw();
	struct ledger_file r = mkrec(LEDGER_S3_ONLY, 1, ""), g;
	cr_expect_eq(ledger_file_put(l, "relative", &r), -EINVAL);
	cr_expect_eq(ledger_file_put(l, "", &r), -EINVAL);
	cr_expect_eq(ledger_file_get(l, NULL, &g), -EINVAL);
	static char p[LEDGER_PATH_MAX + 100];
	p[0] = '/';
	memset(p + 1, 'a', LEDGER_PATH_MAX);
	p[LEDGER_PATH_MAX + 1] = '\0';
	cr_expect_eq(ledger_file_put(l, p, &r), -ENAMETOOLONG, "one byte over the limit");
	cr_expect_eq(ledger_queue_push(l, p, 0), -ENAMETOOLONG);
	p[LEDGER_PATH_MAX] = '\0';
	/* the longest legal path, and two long paths sharing their first 3000 bytes */
	cr_assert_eq(ledger_file_put(l, p, &r), 0);
	cr_assert_eq(ledger_file_get(l, p, &g), 0);
	char q[4096];
	memcpy(q, p, 3001);
	strcpy(q + 3001, "/other");
	r.size = 2;
	cr_assert_eq(ledger_file_put(l, q, &r), 0);
	cr_assert_eq(ledger_file_get(l, q, &g), 0);
	cr_expect_eq(g.size, 2);
	cr_assert_eq(ledger_file_get(l, p, &g), 0);
	cr_expect_eq(g.size, 1);
	/* 481 bytes: just over the inline-key limit */
	char m[482];
	m[0] = '/';
	memset(m + 1, 'm', 480);
	m[481] = '\0';
	cr_assert_eq(ledger_file_put(l, m, &r), 0);
	cr_assert_eq(ledger_file_get(l, m, &g), 0);
	m[480] = '\0';
	cr_expect_eq(ledger_file_get(l, m, &g), -ENOENT, "the 480-byte prefix is another path");
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.files_total, 3);
	cr_assert_eq(ledger_queue_push(l, q, LEDGER_PRIO_TOUCHED), 1);
	char out[4096];
	int prio;
	cr_assert_eq(ledger_queue_pop(l, time(NULL), out, sizeof(out), &prio, NULL), 1);
	cr_expect_str_eq(out, q);
	cr_expect_eq(ledger_queue_pop(l, time(NULL), out, 10, &prio, NULL), 0);
	ledger_close(l);
}

struct collect {
	char paths[64][4100];
	int n, stop_at;
};

static int collect_cb(const char *path, const struct ledger_file *rec, void *arg)
{
	(void)rec;
	struct collect *c = arg;
	if (c->n == c->stop_at)
		return 7;
	snprintf(c->paths[c->n++], sizeof(c->paths[0]), "%s", path);
	return 0;
}

Test(ledger, foreach_walks_a_prefix_in_order)
{
	struct ledger *l = open_rw();
	const char *paths[] = { "/a", "/a/1", "/a/2", "/a/sub/3", "/ab", "/b/1", "/a.txt" };
	struct ledger_file r = mkrec(LEDGER_S3_ONLY, 1, "");
	for (size_t i = 0; i < 7; i++)
		cr_assert_eq(ledger_file_put(l, paths[i], &r), 0);
	static struct collect c;
	c.n = 0;
	c.stop_at = -1;
	cr_assert_eq(ledger_foreach_file(l, "/a/", collect_cb, &c), 0);
	cr_assert_eq(c.n, 3);
	cr_expect_str_eq(c.paths[0], "/a/1");
	cr_expect_str_eq(c.paths[1], "/a/2");
	cr_expect_str_eq(c.paths[2], "/a/sub/3");
	c.n = 0;
	cr_assert_eq(ledger_foreach_file(l, NULL, collect_cb, &c), 0);
	cr_expect_eq(c.n, 7);
	c.n = 0;
	c.stop_at = 2;
	cr_expect_eq(ledger_foreach_file(l, "", collect_cb, &c), 7, "the callback's stop value");
	/* more than one chunk (256) of records, with a long-path prefix */
	static char base[1200];
	base[0] = '/';
	memset(base + 1, 'd', 1000);
	base[1001] = '\0';
	char p[1300];
	for (int i = 0; i < 600; i++) {
		snprintf(p, sizeof(p), "%s/f%04d", base, i);
		cr_assert_eq(ledger_file_put(l, p, &r), 0);
	}
	static struct collect c2;
	c2.stop_at = 40;
	snprintf(p, sizeof(p), "%s/f059", base);
	cr_expect_eq(ledger_foreach_file(l, p, collect_cb, &c2), 0);
	cr_expect_eq(c2.n, 10, "f0590..f0599 under a prefix longer than the key prefix");
	ledger_close(l);
}

static int count_cb(const char *path, const struct ledger_file *rec, void *arg)
{
	(void)path;
	(void)rec;
	(*(int *)arg)++;
	return 0;
}

Test(ledger, rename_moves_a_record_and_a_subtree)
{
	struct ledger *l = open_rw();
	struct ledger_file r = mkrec(LEDGER_MIGRATED, 5, ""), g;
	struct ledger_file rf = mkrec(LEDGER_MODIFIED, 5, "0123456789abcdef0123456789abcdef");
	struct ledger_file rg = mkrec(LEDGER_MIGRATED, 7, "fedcba9876543210fedcba9876543210");
	cr_assert_eq(ledger_file_put(l, "/f", &rf), 0);
	cr_assert_eq(ledger_file_put(l, "/g", &rg), 0);
	cr_expect_eq(ledger_file_rename(l, "/f", "/g", 0), 1);
	cr_expect_eq(ledger_file_get(l, "/f", &g), -ENOENT);
	cr_assert_eq(ledger_file_get(l, "/g", &g), 0);
	cr_expect_eq(g.state, LEDGER_MODIFIED, "from's record replaced to's");
	cr_expect_eq(g.size, 5);
	cr_expect_str_empty(g.etag, "the ETag of from's object is not that of S3's object at to");
	cr_expect_eq(ledger_file_rename(l, "/none", "/g", 0), 0);
	cr_assert_eq(ledger_file_get(l, "/g", &g), 0, "nothing known under from: target kept");

	const char *tree[] = { "/d/1", "/d/2", "/d/s/3", "/dd/keep" };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ledger_file_put(l, tree[i], &r), 0);
	cr_assert_eq(ledger_file_put(l, "/e/2", &r), 0); /* replaced by the rename */
	cr_expect_eq(ledger_file_rename(l, "/d", "/e", LEDGER_RENAME_TREE), 3);
	cr_expect_eq(ledger_file_get(l, "/e/1", &g), 0);
	cr_expect_eq(ledger_file_get(l, "/e/s/3", &g), 0);
	cr_expect_eq(ledger_file_get(l, "/d/1", &g), -ENOENT);
	cr_expect_eq(ledger_file_get(l, "/dd/keep", &g), 0, "a sibling with the same prefix stays");
	cr_expect_eq(ledger_file_rename(l, "/e", "/e/x", LEDGER_RENAME_TREE), -EINVAL);
	cr_expect_eq(ledger_file_rename(l, "/", "/x", LEDGER_RENAME_TREE), -EINVAL);
	cr_expect_eq(ledger_file_rename(l, "/g", "/", 0), -EINVAL);
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.files[LEDGER_MIGRATED], 4, "/e/1, /e/2, /e/s/3, /dd/keep");
	cr_expect_eq(st.files[LEDGER_MODIFIED], 1, "/g");
	cr_expect_eq(ledger_check(l, false), 0);
	int n = 0;
	cr_assert_eq(ledger_foreach_file(l, "/e/", count_cb, &n), 0);
	cr_expect_eq(n, 3);
	ledger_close(l);
}

/* ---- inomap, checkpoints, commit ---- */

Test(ledger, inomap_and_checkpoints)
{
	struct ledger *l = open_rw();
	uint64_t ino;
	cr_expect_eq(ledger_ino_get(l, 42, &ino), -ENOENT);
	cr_assert_eq(ledger_ino_put(l, 42, 0x8000000000000001ULL), 0);
	cr_assert_eq(ledger_ino_put(l, 7, 9), 0);
	cr_assert_eq(ledger_ino_get(l, 42, &ino), 0);
	cr_expect_eq(ino, 0x8000000000000001ULL);
	cr_assert_eq(ledger_ino_get(l, 7, &ino), 0);
	cr_expect_eq(ino, 9);
	cr_assert_eq(ledger_ino_delete(l, 7), 0);
	cr_expect_eq(ledger_ino_get(l, 7, &ino), -ENOENT);

	char v[64];
	cr_expect_eq(ledger_ckpt_get(l, "crawl/0of1", v, sizeof(v)), -ENOENT);
	cr_assert_eq(ledger_ckpt_put(l, "crawl/0of1", "photos/2023/x.jpg"), 0);
	cr_expect_eq(ledger_ckpt_get(l, "crawl/0of1", v, sizeof(v)), 17);
	cr_expect_str_eq(v, "photos/2023/x.jpg");
	cr_expect_eq(ledger_ckpt_get(l, "crawl/0of1", v, 5), -ERANGE);
	cr_assert_eq(ledger_ckpt_delete(l, "crawl/0of1"), 0);
	cr_expect_eq(ledger_ckpt_get(l, "crawl/0of1", v, sizeof(v)), -ENOENT);
	cr_expect_eq(ledger_ckpt_put(l, "", "x"), -EINVAL);
	ledger_close(l);
}

Test(ledger, commit_migration_records_maps_and_dequeues)
{
	struct ledger *l = open_rw();
	cr_assert_eq(ledger_queue_push(l, "/m", LEDGER_PRIO_TOUCHED), 1);
	char p[64];
	cr_assert_eq(ledger_queue_pop(l, time(NULL), p, sizeof(p), NULL, NULL), 1);
	struct ledger_file r = mkrec(LEDGER_MIGRATED, 9, "0123456789abcdef0123456789abcdef"), g;
	r.ino = 1234;
	cr_assert_eq(ledger_commit_migration(l, "/m", &r, 555), 0);
	uint64_t ino;
	cr_assert_eq(ledger_ino_get(l, 555, &ino), 0);
	cr_expect_eq(ino, 1234);
	cr_expect_eq(ledger_queue_find(l, "/m", NULL, NULL), 0);
	cr_assert_eq(ledger_file_get(l, "/m", &g), 0);
	cr_expect_eq(g.state, LEDGER_MIGRATED);
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.copying, 0);
	cr_expect_eq(st.files[LEDGER_MIGRATED], 1);
	cr_expect_eq(st.files[LEDGER_COPYING], 0);
	/* a writer got there first: the migration must not overwrite its state */
	struct ledger_file w = mkrec(LEDGER_MODIFIED, 1, "");
	cr_assert_eq(ledger_file_put(l, "/w", &w), 0);
	cr_expect_eq(ledger_commit_migration(l, "/w", &r, 556), -ESTALE);
	cr_assert_eq(ledger_file_get(l, "/w", &g), 0);
	cr_expect_eq(g.state, LEDGER_MODIFIED);
	cr_expect_eq(ledger_ino_get(l, 556, &ino), -ENOENT);
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

/* ---- queue ---- */

Test(ledger, queue_priority_order_and_dedup)
{
	struct ledger *l = open_rw();
	time_t now = time(NULL);
	cr_expect_eq(ledger_queue_push(l, "/crawl1", LEDGER_PRIO_CRAWL), 1);
	cr_expect_eq(ledger_queue_push(l, "/touched1", LEDGER_PRIO_TOUCHED), 1);
	cr_expect_eq(ledger_queue_push(l, "/crawl2", LEDGER_PRIO_CRAWL), 1);
	cr_expect_eq(ledger_queue_push(l, "/copyup1", LEDGER_PRIO_COPYUP), 1);
	cr_expect_eq(ledger_queue_push(l, "/touched2", LEDGER_PRIO_TOUCHED), 1);
	cr_expect_eq(ledger_queue_push(l, "/touched1", LEDGER_PRIO_CRAWL), 0,
		     "keeps the better priority");
	cr_expect_eq(ledger_queue_push(l, "/touched1", LEDGER_PRIO_TOUCHED), 0, "already there");
	cr_expect_eq(ledger_queue_push(l, "/crawl2", LEDGER_PRIO_TOUCHED), 1, "moved up");
	cr_expect_eq(ledger_queue_push(l, "/x", 3), -EINVAL);
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.queued[LEDGER_PRIO_COPYUP], 1);
	cr_expect_eq(st.queued[LEDGER_PRIO_TOUCHED], 3);
	cr_expect_eq(st.queued[LEDGER_PRIO_CRAWL], 1);
	cr_expect_eq(st.files[LEDGER_QUEUED], 5, "records created as queued");
	int prio;
	bool copying;
	cr_assert_eq(ledger_queue_find(l, "/crawl2", &prio, &copying), 1);
	cr_expect_eq(prio, LEDGER_PRIO_TOUCHED);
	cr_expect_not(copying);

	const char *want[] = { "/copyup1", "/touched1", "/touched2", "/crawl2", "/crawl1" };
	const int wprio[] = { 0, 1, 1, 1, 2 };
	char p[64];
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(ledger_queue_pop(l, now, p, sizeof(p), &prio, NULL), 1);
		cr_expect_str_eq(p, want[i]);
		cr_expect_eq(prio, wprio[i]);
		struct ledger_file g;
		cr_assert_eq(ledger_file_get(l, p, &g), 0);
		cr_expect_eq(g.state, LEDGER_COPYING);
	}
	time_t next = 1;
	cr_expect_eq(ledger_queue_pop(l, now, p, sizeof(p), &prio, &next), 0);
	cr_expect_eq(next, 0);
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.copying, 5);
	cr_expect_eq(st.files[LEDGER_COPYING], 5);
	cr_expect_eq(ledger_queue_push(l, "/crawl1", LEDGER_PRIO_COPYUP), 0, "being copied");
	cr_expect_eq(ledger_queue_find(l, "/crawl1", &prio, &copying), 1);
	cr_expect(copying);

	/* a crawl page: many in one transaction, the same rules per path */
	cr_assert_eq(ledger_queue_push(l, "/p2", LEDGER_PRIO_TOUCHED), 1);
	const char *page[] = { "/p1", "/p2", "/crawl1", "/p3" };
	cr_expect_eq(ledger_queue_push_many(l, 4, page, LEDGER_PRIO_CRAWL), 2,
		     "/p1 and /p3 queued; /p2 waits at a better priority; /crawl1 is being copied");
	const char *bad[] = { "/p4", "no-slash" };
	cr_expect_eq(ledger_queue_push_many(l, 2, bad, LEDGER_PRIO_CRAWL), -EINVAL);
	cr_expect_eq(ledger_queue_find(l, "/p4", NULL, NULL), 0, "a bad path queues nothing");
	cr_expect_eq(ledger_queue_push_many(l, 0, NULL, LEDGER_PRIO_CRAWL), 0);
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.queued[LEDGER_PRIO_CRAWL], 2);
	cr_expect_eq(st.queued[LEDGER_PRIO_TOUCHED], 1);
	cr_assert_eq(ledger_queue_find(l, "/p3", &prio, &copying), 1);
	cr_expect_eq(prio, LEDGER_PRIO_CRAWL);
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

Test(ledger, queue_requeue_backoff_fail_remove)
{
	struct ledger *l = open_rw();
	time_t now = 1000000;
	struct ledger_file r = mkrec(LEDGER_S3_ONLY, 10, ""), g;
	cr_assert_eq(ledger_file_put(l, "/a", &r), 0);
	cr_assert_eq(ledger_queue_push(l, "/a", LEDGER_PRIO_TOUCHED), 1);
	cr_assert_eq(ledger_queue_push(l, "/b", LEDGER_PRIO_TOUCHED), 1);
	char p[64];
	int prio;
	cr_assert_eq(ledger_queue_pop(l, now, p, sizeof(p), &prio, NULL), 1);
	cr_assert_str_eq(p, "/a");
	cr_expect_eq(ledger_queue_requeue(l, "/b", now + 5), -ENOENT, "not being copied");
	cr_assert_eq(ledger_queue_requeue(l, "/a", now + 30), 0);
	cr_assert_eq(ledger_file_get(l, "/a", &g), 0);
	cr_expect_eq(g.state, LEDGER_QUEUED);
	cr_expect_eq(g.attempts, 1);
	cr_expect_eq(g.size, 10, "the record keeps its fields");
	/* /a waits until now + 30: /b comes first, then nothing is ready */
	cr_assert_eq(ledger_queue_pop(l, now, p, sizeof(p), &prio, NULL), 1);
	cr_expect_str_eq(p, "/b");
	time_t next = 0;
	cr_expect_eq(ledger_queue_pop(l, now + 29, p, sizeof(p), &prio, &next), 0);
	cr_expect_eq(next, now + 30);
	cr_expect_eq(ledger_queue_pop(l, now, p, 2, &prio, NULL), 0);
	cr_assert_eq(ledger_queue_pop(l, now + 30, p, sizeof(p), &prio, NULL), 1);
	cr_expect_str_eq(p, "/a");
	cr_assert_eq(ledger_queue_push(l, "/c", LEDGER_PRIO_CRAWL), 1);
	cr_expect_eq(ledger_queue_pop(l, now + 30, p, 2, &prio, NULL), -ERANGE, "buffer too small");
	cr_expect_eq(ledger_queue_find(l, "/c", NULL, NULL), 1, "-ERANGE takes nothing");

	cr_assert_eq(ledger_queue_fail(l, "/a", "HTTP 403 AccessDenied"), 0);
	cr_assert_eq(ledger_file_get(l, "/a", &g), 0);
	cr_expect_eq(g.state, LEDGER_FAILED);
	cr_expect_str_eq(g.error, "HTTP 403 AccessDenied");
	cr_expect_eq(g.attempts, 2);
	cr_assert_eq(ledger_queue_remove(l, "/b"), 0);
	cr_assert_eq(ledger_file_get(l, "/b", &g), 0);
	cr_expect_eq(g.state, LEDGER_S3_ONLY);
	cr_expect_eq(ledger_queue_remove(l, "/b"), -ENOENT);
	cr_assert_eq(ledger_file_delete(l, "/c"), 0);
	cr_expect_eq(ledger_queue_find(l, "/c", NULL, NULL), 0, "deleting a file dequeues it");
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.copying, 0);
	cr_expect_eq(st.queued[0] + st.queued[1] + st.queued[2], 0);
	cr_expect_eq(st.failed_total, 1);
	cr_expect_eq(st.files[LEDGER_FAILED], 1);
	/* a failed file queued again */
	cr_assert_eq(ledger_queue_push(l, "/a", LEDGER_PRIO_COPYUP), 1);
	cr_assert_eq(ledger_file_get(l, "/a", &g), 0);
	cr_expect_eq(g.state, LEDGER_QUEUED);
	cr_expect_eq(g.attempts, 0, "queued again by the operator: a fresh retry budget");
	cr_expect_str_eq(g.error, "HTTP 403 AccessDenied", "the last error stays until it lands");
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

Test(ledger, queue_survives_reopen_and_copying_goes_back_to_queued)
{
	struct ledger *l = open_rw();
	cr_assert_eq(ledger_queue_push(l, "/one", LEDGER_PRIO_CRAWL), 1);
	cr_assert_eq(ledger_queue_push(l, "/two", LEDGER_PRIO_TOUCHED), 1);
	char p[64];
	int prio;
	cr_assert_eq(ledger_queue_pop(l, time(NULL), p, sizeof(p), &prio, NULL), 1);
	cr_assert_str_eq(p, "/two");
	ledger_close(l); /* as if the daemon died mid-copy */
	l = open_rw();
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.copying, 0);
	cr_expect_eq(st.queued[LEDGER_PRIO_TOUCHED], 1);
	cr_expect_eq(st.queued[LEDGER_PRIO_CRAWL], 1);
	struct ledger_file g;
	cr_assert_eq(ledger_file_get(l, "/two", &g), 0);
	cr_expect_eq(g.state, LEDGER_QUEUED);
	cr_assert_eq(ledger_queue_pop(l, time(NULL), p, sizeof(p), &prio, NULL), 1);
	cr_expect_str_eq(p, "/two", "back at its own priority");
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

/* ---- journal ---- */

struct jcollect {
	uint64_t seq[32];
	int op[32];
	char path[32][64], path2[32][64];
	int n;
};

static int jcollect_cb(const struct ledger_jentry *e, void *arg)
{
	struct jcollect *c = arg;
	c->seq[c->n] = e->seq;
	c->op[c->n] = e->op;
	snprintf(c->path[c->n], 64, "%s", e->path);
	snprintf(c->path2[c->n], 64, "%s", e->path2 ? e->path2 : "");
	c->n++;
	return 0;
}

static uint64_t jappend(struct ledger *l, int op, const char *path, const char *path2)
{
	struct ledger_jentry e = { .op = op, .path = path, .path2 = path2 };
	uint64_t seq = 0;
	cr_assert_eq(ledger_journal_append(l, &e, &seq), 0, "append %s", path);
	return seq;
}

Test(ledger, journal_order_delete_and_pending)
{
	struct ledger *l = open_rw();
	uint64_t s1 = jappend(l, LEDGER_OP_CREATE, "/f", NULL);
	uint64_t s2 = jappend(l, LEDGER_OP_WRITE, "/f", NULL);
	uint64_t s3 = jappend(l, LEDGER_OP_RENAME, "/f", "/g");
	uint64_t s4 = jappend(l, LEDGER_OP_SYMLINK, "/ln", "../target text");
	struct ledger_jentry e = { .op = LEDGER_OP_CHMOD, .path = "/g", .fields = LEDGER_J_MODE |
				   LEDGER_J_UID | LEDGER_J_GID | LEDGER_J_MTIME | LEDGER_J_SIZE,
				   .mode = 0100640, .uid = 1000, .gid = 4294967295u,
				   .mtime = { -5, 999999999 }, .size = 1ULL << 40 };
	uint64_t s5;
	cr_assert_eq(ledger_journal_append(l, &e, &s5), 0);
	cr_expect(s1 < s2 && s2 < s3 && s3 < s4 && s4 < s5);

	struct ledger_jentry bad = { .op = LEDGER_OP_RENAME, .path = "/a" };
	cr_expect_eq(ledger_journal_append(l, &bad, NULL), -EINVAL, "rename needs path2");
	bad = (struct ledger_jentry){ .op = LEDGER_OP_WRITE, .path = "/a", .path2 = "/b" };
	cr_expect_eq(ledger_journal_append(l, &bad, NULL), -EINVAL);
	bad = (struct ledger_jentry){ .op = 99, .path = "/a" };
	cr_expect_eq(ledger_journal_append(l, &bad, NULL), -EINVAL);

	cr_expect_eq(ledger_journal_pending(l, "/f"), 3);
	cr_expect_eq(ledger_journal_pending(l, "/g"), 2);
	cr_expect_eq(ledger_journal_pending(l, "/ln"), 1);
	cr_expect_eq(ledger_journal_pending(l, "/nothing"), 0);

	static struct jcollect c;
	cr_assert_eq(ledger_journal_foreach(l, 0, 0, jcollect_cb, &c), 0);
	cr_assert_eq(c.n, 5);
	cr_expect_eq(c.op[0], LEDGER_OP_CREATE);
	cr_expect_eq(c.op[2], LEDGER_OP_RENAME);
	cr_expect_str_eq(c.path2[2], "/g");
	cr_expect_str_eq(c.path2[3], "../target text");
	memset(&c, 0, sizeof(c));
	cr_assert_eq(ledger_journal_foreach(l, s3, 1, jcollect_cb, &c), 0);
	cr_assert_eq(c.n, 1, "max honoured");
	cr_expect_eq(c.seq[0], s3);

	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.journal_pending, 5);
	cr_expect_eq(st.journal_oldest_seq, s1);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	cr_expect(st.journal_oldest_ms > now_ms - 10000 && st.journal_oldest_ms <= now_ms);

	cr_expect_eq(ledger_journal_delete_upto(l, s3), 3);
	cr_expect_eq(ledger_journal_pending(l, "/f"), 0);
	cr_expect_eq(ledger_journal_pending(l, "/g"), 1);
	ledger_close(l);

	l = open_rw();
	memset(&c, 0, sizeof(c));
	cr_assert_eq(ledger_journal_foreach(l, 0, 0, jcollect_cb, &c), 0);
	cr_assert_eq(c.n, 2, "the journal survives a reopen");
	cr_expect_eq(c.seq[1], s5);
	struct ledger_jentry *got = NULL;
	(void)got;
	cr_expect_eq(ledger_journal_delete_upto(l, UINT64_MAX), 2);
	uint64_t s6 = jappend(l, LEDGER_OP_UNLINK, "/g", NULL);
	cr_expect_gt(s6, s5, "sequence numbers are never reused");
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.journal_pending, 1);
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

static int jfields_cb(const struct ledger_jentry *e, void *arg)
{
	(void)arg;
	cr_expect_eq(e->op, LEDGER_OP_CHMOD);
	cr_expect_eq(e->mode, 0100640);
	cr_expect_eq(e->uid, 1000);
	cr_expect_eq(e->gid, 4294967295u);
	cr_expect_eq(e->mtime.tv_sec, -5);
	cr_expect_eq(e->mtime.tv_nsec, 999999999);
	cr_expect_eq(e->size, 1ULL << 40);
	cr_expect_eq(e->time_ms, 1234);
	return 1;
}

Test(ledger, journal_fields_round_trip_and_many_entries)
{
	struct ledger *l = open_rw();
	struct ledger_jentry e = { .op = LEDGER_OP_CHMOD, .path = "/g", .time_ms = 1234,
				   .fields = LEDGER_J_MODE | LEDGER_J_UID | LEDGER_J_GID |
					     LEDGER_J_MTIME | LEDGER_J_SIZE,
				   .mode = 0100640, .uid = 1000, .gid = 4294967295u,
				   .mtime = { -5, 999999999 }, .size = 1ULL << 40 };
	cr_assert_eq(ledger_journal_append(l, &e, NULL), 0);
	cr_expect_eq(ledger_journal_foreach(l, 0, 0, jfields_cb, NULL), 1,
		     "stopped by the callback");
	/* more than a deletion batch (10,000) and a read chunk (256) */
	for (int i = 0; i < 12000; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/w/%d", i % 100);
		struct ledger_jentry w = { .op = LEDGER_OP_WRITE, .path = p };
		cr_assert_eq(ledger_journal_append(l, &w, NULL), 0);
	}
	cr_expect_eq(ledger_journal_pending(l, "/w/7"), 120);
	cr_expect_eq(ledger_journal_delete_upto(l, UINT64_MAX), 12001);
	cr_expect_eq(ledger_journal_pending(l, "/w/7"), 0);
	ledger_close(l);
}

/* ---- schema ---- */

Test(ledger, older_schema_is_upgraded_in_place)
{
	struct ledger *l = open_rw();
	struct ledger_file r = mkrec(LEDGER_MIGRATED, 77, "");
	cr_assert_eq(ledger_file_put(l, "/old", &r), 0);
	cr_assert_eq(ledger_queue_push(l, "/q", LEDGER_PRIO_CRAWL), 1);
	jappend(l, LEDGER_OP_WRITE, "/old", NULL);
	jappend(l, LEDGER_OP_WRITE, "/old", NULL);
	ledger_close(l);

	/* make it look like a v0 ledger: schema 0, no counters, no pending index */
	MDB_env *env;
	MDB_txn *txn;
	raw_open(&env, &txn);
	MDB_dbi meta = raw_dbi(txn, "meta"), jpath = raw_dbi(txn, "jpath");
	unsigned char zero[4] = { 0 };
	raw_put(txn, meta, "schema", 6, zero, 4);
	MDB_val k = { 8, "counters" };
	cr_assert_eq(mdb_del(txn, meta, &k, NULL), 0);
	cr_assert_eq(mdb_drop(txn, jpath, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	struct ledger *ro;
	cr_expect_eq(ledger_open(dir, LEDGER_RDONLY, &ro), -EPROTO, "a reader does not upgrade");
	l = open_rw();
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.schema, LEDGER_SCHEMA_VERSION);
	cr_expect_eq(st.files[LEDGER_MIGRATED], 1);
	cr_expect_eq(st.bytes[LEDGER_MIGRATED], 77);
	cr_expect_eq(st.files[LEDGER_QUEUED], 1);
	cr_expect_eq(st.queued[LEDGER_PRIO_CRAWL], 1);
	cr_expect_eq(ledger_journal_pending(l, "/old"), 2);
	uint64_t seq = jappend(l, LEDGER_OP_UNLINK, "/old", NULL);
	cr_expect_eq(seq, 3, "journal sequence continues after the last entry");
	cr_assert_eq(ledger_queue_push(l, "/q2", LEDGER_PRIO_CRAWL), 1);
	char p[16];
	cr_assert_eq(ledger_queue_pop(l, time(NULL), p, sizeof(p), NULL, NULL), 1);
	cr_expect_str_eq(p, "/q", "queue sequence continues too");
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

Test(ledger, newer_schema_is_refused)
{
	struct ledger *l = open_rw();
	ledger_close(l);
	MDB_env *env;
	MDB_txn *txn;
	raw_open(&env, &txn);
	unsigned char v2[4] = { LEDGER_SCHEMA_VERSION + 1, 0, 0, 0 };
	raw_put(txn, raw_dbi(txn, "meta"), "schema", 6, v2, 4);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	cr_expect_eq(ledger_open(dir, LEDGER_CREATE, &l), -EPROTO);
	cr_expect_eq(ledger_open(dir, LEDGER_RDONLY, &l), -EPROTO);
}

/* ---- hostile bytes ---- */

Test(ledger, corrupt_records_give_eio_never_a_crash)
{
	struct ledger *l = open_rw();
	struct ledger_file r = mkrec(LEDGER_S3_ONLY, 1, "");
	cr_assert_eq(ledger_file_put(l, "/good", &r), 0);
	jappend(l, LEDGER_OP_WRITE, "/good", NULL);
	ledger_close(l);

	MDB_env *env;
	MDB_txn *txn;
	raw_open(&env, &txn);
	MDB_dbi files = raw_dbi(txn, "files"), journal = raw_dbi(txn, "journal");
	/* truncated varints, lengths past the end, trailing bytes, bad flags, empty */
	static const struct { const char *key; const char *bytes; size_t len; } bad[] = {
		{ "/b0", "", 0 },
		{ "/b1", "\x03\xff\xff", 3 },
		{ "/b2", "\x1b\x01\x01\x01\x01\x05" "ab", 8 }, /* raw etag of 5, 2 given */
		{ "/b3", "\x03\x01\x01\x01\x01\x00", 6 },                /* trailing byte */
		{ "/b4", "\x83\x01\x01\x01\x01\x02/a", 8 },              /* long path too short */
		{ "/b5", "\x43\x01\x01\x01\x01\x00", 6 },                /* empty error */
		/* an 11-byte varint */
		{ "/b6", "\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12 },
		{ "/b7", "\x23\x01\x01\x01\x01", 5 },                    /* sha256 missing */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		raw_put(txn, files, bad[i].key, strlen(bad[i].key), bad[i].bytes, bad[i].len);
	unsigned char seq[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
	raw_put(txn, journal, seq, 8, "\x01\x00\x05\x09/ab", 7);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	l = open_rw();
	struct ledger_file g;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ledger_file_get(l, bad[i].key, &g), -EIO, "%s", bad[i].key);
	cr_expect_eq(ledger_file_get(l, "/good", &g), 0);
	int n = 0;
	cr_expect_eq(ledger_foreach_file(l, "", count_cb, &n), 0);
	cr_expect_eq(n, 1, "corrupt records are skipped by the walk");
	static struct jcollect c;
	cr_expect_eq(ledger_journal_foreach(l, 0, 0, jcollect_cb, &c), -EIO);
	cr_expect_eq(c.n, 1, "the good entry came first");
	cr_expect_eq(ledger_journal_delete_upto(l, 2), 2, "a corrupt entry can be deleted");
	cr_expect_eq(ledger_file_put(l, "/b1", &r), 0, "a corrupt record can be replaced");
	cr_expect_eq(ledger_file_get(l, "/b1", &g), 0);
	cr_expect_eq(ledger_file_delete(l, "/b2"), 0, "and deleted");
	ledger_close(l);
}

/* ---- processes, crashes, growth ---- */

Test(ledger, handles_refuse_use_across_fork_and_second_writer)
{
	struct ledger *l = open_rw(), *l2;
	cr_expect_eq(ledger_open(dir, LEDGER_CREATE, &l2), -EBUSY);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ledger_file g;
		_exit(ledger_file_get(l, "/x", &g) == -ECHILD ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child got -ECHILD");
	struct ledger *ro;
	cr_assert_eq(ledger_open(dir, LEDGER_RDONLY, &ro), 0);
	struct ledger_file r = mkrec(LEDGER_S3_ONLY, 1, "");
	cr_expect_eq(ledger_file_put(ro, "/x", &r), -EROFS);
	ledger_close(ro);
	ledger_close(l);
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/none", dir);
	cr_expect_eq(ledger_open(missing, 0, &l), -ENOENT);
	cr_expect_eq(ledger_open(missing, LEDGER_RDONLY, &l), -ENOENT);
}

/* The writer child: records, queue moves and journal entries in a loop, forever; each
 * round under its own directory (a new record may take any state, a migrated one may not
 * go back to s3-only). */
static void crash_writer(int ready_fd, int round)
{
	struct ledger *l;
	if (ledger_open(dir, LEDGER_CREATE | LEDGER_NOSYNC, &l))
		_exit(2);
	char p[64];
	for (long i = 0;; i++) {
		snprintf(p, sizeof(p), "/crash/%d/%06ld", round, i);
		struct ledger_file r = mkrec(LEDGER_S3_ONLY, (uint64_t)i, "");
		if (ledger_file_put(l, p, &r) || ledger_queue_push(l, p, (int)(i % 3)) < 0)
			_exit(3);
		char q[64];
		if (ledger_queue_pop(l, time(NULL), q, sizeof(q), NULL, NULL) < 0)
			_exit(4);
		if (i % 2 == 0) {
			r.state = LEDGER_MIGRATED;
			if (ledger_commit_migration(l, q, &r, (uint64_t)i + 1) < 0)
				_exit(5);
		}
		struct ledger_jentry e = { .op = LEDGER_OP_WRITE, .path = p };
		if (ledger_journal_append(l, &e, NULL))
			_exit(6);
		if (i == 200 && write(ready_fd, "x", 1) != 1)
			_exit(7);
	}
}

Test(ledger, a_sigkilled_writer_leaves_a_consistent_ledger)
{
	for (int round = 0; round < 3; round++) {
		int fds[2];
		cr_assert_eq(pipe(fds), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			crash_writer(fds[1], round);
		}
		close(fds[1]);
		char c;
		cr_assert_eq(read(fds[0], &c, 1), 1, "writer got going");
		close(fds[0]);
		usleep(20000 + round * 15000);
		kill(pid, SIGKILL);
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status), "writer was killed, not failed (%d)", status);

		struct ledger *l = open_rw();
		struct ledger_stats st;
		cr_assert_eq(ledger_stats(l, &st), 0);
		cr_expect_eq(st.copying, 0, "copying entries went back to the queue");
		cr_expect_eq(st.files[LEDGER_COPYING], 0);
		cr_expect_eq(ledger_check(l, false), 0, "counters match the tables");
		cr_expect_gt(st.files_total, 200);
		cr_expect_gt(st.journal_pending, 200);
		ledger_close(l);
	}
}

Test(ledger, a_reader_in_another_process_sees_consistent_snapshots)
{
	struct ledger *l = open_rw();
	int go[2], res[2];
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(res), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* never touch the parent's handle: open our own, read-only */
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(10);
		struct ledger *ro;
		if (ledger_open(dir, LEDGER_RDONLY, &ro))
			_exit(11);
		uint64_t last = 0;
		int bad = 0, reads = 0;
		for (;;) {
			struct ledger_stats st;
			if (ledger_stats(ro, &st)) {
				bad++;
				break;
			}
			/* every batch writes 100 records and 100 journal entries in one transaction
			 * each: a reader sees totals grow monotonically */
			if (st.files_total < last)
				bad++;
			last = st.files_total;
			struct ledger_file g;
			int rc = ledger_file_get(ro, "/r/000000", &g);
			if (rc != 0 && rc != -ENOENT)
				bad++;
			reads++;
			if (last >= 20000)
				break;
		}
		ledger_close(ro);
		_exit(bad ? 12 : reads > 0 ? 0 : 13);
	}
	cr_assert_eq(write(go[1], "g", 1), 1);
	static char names[100][32];
	static const char *paths[100];
	static struct ledger_file recs[100];
	for (int b = 0; b < 200; b++) {
		for (int i = 0; i < 100; i++) {
			snprintf(names[i], sizeof(names[i]), "/r/%06d", b * 100 + i);
			paths[i] = names[i];
			recs[i] = mkrec(LEDGER_MIGRATED, 1, "0123456789abcdef0123456789abcdef");
		}
		cr_assert_eq(ledger_file_put_many(l, 100, paths, recs), 0);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader status %d",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	(void)res;
	ledger_close(l);
}

Test(ledger, a_tiny_map_grows_when_full)
{
	struct ledger_opts o = { .map_size = 64 * 1024 };
	struct ledger *l;
	cr_assert_eq(ledger_open_ex(dir, LEDGER_CREATE | LEDGER_NOSYNC, &o, &l), 0);
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	uint64_t first = st.map_size;
	struct ledger_file r = mkrec(LEDGER_MIGRATED, 1, "0123456789abcdef0123456789abcdef");
	r.has_sha256 = true;
	char p[128];
	for (int i = 0; i < 20000; i++) {
		snprintf(p, sizeof(p), "/grow/%08d/with/a/reasonably/long/name.bin",
			 (i * 7919) % 20000);
		cr_assert_eq(ledger_file_put(l, p, &r), 0, "put %d", i);
	}
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_gt(st.map_size, first, "map grew from %llu", (unsigned long long)first);
	cr_expect_eq(st.files_total, 20000);
	ledger_close(l);
	cr_assert_eq(ledger_open_ex(dir, LEDGER_NOSYNC, &o, &l), 0);
	struct ledger_file g;
	cr_expect_eq(ledger_file_get(l, "/grow/00000123/with/a/reasonably/long/name.bin", &g), 0);
	ledger_close(l);
	/* a hard cap turns MDB_MAP_FULL into -ENOSPC */
	rm_tmp();
	mkdir_tmp();
	o.max_map_size = 128 * 1024;
	cr_assert_eq(ledger_open_ex(dir, LEDGER_CREATE | LEDGER_NOSYNC, &o, &l), 0);
	int rc = 0;
	for (int i = 0; i < 20000 && rc == 0; i++) {
		snprintf(p, sizeof(p), "/cap/%08d", i);
		rc = ledger_file_put(l, p, &r);
	}
	cr_expect_eq(rc, -ENOSPC);
	ledger_close(l);
}

Test(ledger, names)
{
	cr_expect_str_eq(ledger_state_name(LEDGER_NFS_ONLY), "nfs-only");
	cr_expect_str_eq(ledger_state_name(99), "?");
	cr_expect_eq(ledger_state_parse("conflict"), LEDGER_CONFLICT);
	cr_expect_eq(ledger_state_parse("bogus"), -EINVAL);
	cr_expect_str_eq(ledger_op_name(LEDGER_OP_TRUNCATE), "truncate");
	cr_expect_str_eq(ledger_op_name(0), "?");
}

/* ---- threads: group commit and shared readers ---- */

struct thr_arg {
	struct ledger *l;
	int id, errors;
};

static void *thr_writer(void *p)
{
	struct thr_arg *a = p;
	char path[64];
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/t%d/%04d", a->id, i);
		struct ledger_file r = mkrec(LEDGER_S3_ONLY, 10, "");
		struct ledger_jentry e = { .op = LEDGER_OP_CREATE, .path = path };
		struct ledger_file g;
		if (ledger_file_put(a->l, path, &r) || ledger_journal_append(a->l, &e, NULL) ||
		    ledger_queue_push(a->l, path, i % 3) != 1 || ledger_file_get(a->l, path, &g) ||
		    g.state != LEDGER_QUEUED)
			a->errors++;
		/* failures inside a shared batch stay private to their caller */
		if (ledger_file_delete(a->l, "/never/there") != -ENOENT ||
		    ledger_queue_requeue(a->l, path, 0) != -ENOENT)
			a->errors++;
	}
	return NULL;
}

Test(ledger, concurrent_writers_share_commits_and_keep_counts)
{
	struct ledger *l;
	cr_assert_eq(ledger_open(dir, LEDGER_CREATE, &l), 0); /* durable: commits are batched */
	enum { NT = 8 };
	pthread_t th[NT];
	struct thr_arg a[NT];
	for (int t = 0; t < NT; t++) {
		a[t] = (struct thr_arg){ .l = l, .id = t };
		cr_assert_eq(pthread_create(&th[t], NULL, thr_writer, &a[t]), 0);
	}
	int errors = 0;
	for (int t = 0; t < NT; t++) {
		pthread_join(th[t], NULL);
		errors += a[t].errors;
	}
	cr_expect_eq(errors, 0);
	struct ledger_stats st;
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(st.files[LEDGER_QUEUED], NT * 300);
	cr_expect_eq(st.journal_pending, NT * 300);
	cr_expect_eq(st.queued[0] + st.queued[1] + st.queued[2], NT * 300);
	cr_expect_eq(st.journal_next_seq, NT * 300 + 1, "no sequence number lost or doubled");
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}

/* ---- the file state machine ---- */

static int state_of(struct ledger *l, const char *path)
{
	struct ledger_file g;
	int rc = ledger_file_get(l, path, &g);
	return rc ? rc : g.state;
}

Test(ledger, the_state_table_answers_every_cell)
{
	for (int ev = 0; ev < LEDGER_NEVENTS; ev++) {
		const struct ledger_transition *t = &ledger_transitions[ev];
		cr_expect_str_neq(ledger_event_name(ev), "?");
		for (int from = 0; from <= LEDGER_ABSENT; from++) {
			int cell = t->to[from], to = -1;
			int want = cell == LEDGER_T_ANY ? LEDGER_MODIFIED : -1;
			int rc = ledger_state_next(from, ev, t->who, want, &to);
			if (cell >= 0)
				cr_expect(rc == 0 && to == cell, "%s from %d", t->name, from);
			else if (cell == LEDGER_T_SAME)
				cr_expect(rc == 0 && to == from, "%s from %d", t->name, from);
			else if (cell == LEDGER_T_ANY)
				cr_expect(rc == 0 && to == LEDGER_MODIFIED, "%s from %d", t->name,
					  from);
			else if (cell == LEDGER_T_KEEP)
				cr_expect_eq(rc, 1, "%s from %d", t->name, from);
			else if (cell == LEDGER_T_STALE)
				cr_expect_eq(rc, -ESTALE, "%s from %d", t->name, from);
			else
				cr_expect_eq(rc, -EINVAL, "%s from %d", t->name, from);
			/* no module but the ones named may cause it */
			unsigned other = t->who & LEDGER_BY_VIEW ? LEDGER_BY_FLEET
								 : LEDGER_BY_VIEW;
			cr_expect_eq(ledger_state_next(from, ev, other, want, &to), -EINVAL,
				     "%s by another module", t->name);
		}
	}
	int to;
	cr_expect_eq(ledger_state_next(0, LEDGER_NEVENTS, LEDGER_BY_LEDGER, -1, &to), -EINVAL);
	cr_expect_eq(ledger_state_next(LEDGER_ABSENT + 1, 0, LEDGER_BY_LEDGER, -1, &to), -EINVAL);
	cr_expect_eq(ledger_state_next(LEDGER_MIGRATED, LEDGER_EV_COPIED, LEDGER_BY_LEDGER,
				       LEDGER_MODIFIED, &to), -EINVAL, "copied makes it migrated");
}

static int fill_size(struct ledger_file *rec, bool exists, void *arg)
{
	(void)exists;
	rec->size = *(const uint64_t *)arg;
	return LEDGER_WRITE;
}

Test(ledger, the_legal_transitions_walk_a_file_through_its_life)
{
	struct ledger *l = open_rw();
	char path[64];
	time_t next;
	int prio;
	/* queue, take, requeue, take, give up, queue again (fresh budget), dequeue */
	cr_assert_eq(ledger_queue_push(l, "/a", LEDGER_PRIO_CRAWL), 1);
	cr_expect_eq(state_of(l, "/a"), LEDGER_QUEUED);
	cr_assert_eq(ledger_queue_pop(l, time(NULL), path, sizeof(path), &prio, &next), 1);
	cr_expect_eq(state_of(l, "/a"), LEDGER_COPYING);
	cr_assert_eq(ledger_queue_requeue(l, "/a", 0), 0);
	cr_expect_eq(state_of(l, "/a"), LEDGER_QUEUED);
	cr_assert_eq(ledger_queue_pop(l, time(NULL), path, sizeof(path), &prio, &next), 1);
	cr_assert_eq(ledger_queue_fail(l, "/a", "no"), 0);
	cr_expect_eq(state_of(l, "/a"), LEDGER_FAILED);
	cr_assert_eq(ledger_queue_push(l, "/a", LEDGER_PRIO_TOUCHED), 1);
	struct ledger_file g;
	cr_assert_eq(ledger_file_get(l, "/a", &g), 0);
	cr_expect_eq(g.state, LEDGER_QUEUED);
	cr_expect_eq(g.attempts, 0, "queued again after failed: a fresh retry budget");
	cr_assert_eq(ledger_queue_remove(l, "/a"), 0);
	cr_expect_eq(state_of(l, "/a"), LEDGER_S3_ONLY);
	/* copied, written through the mount, changed in S3 by another host */
	struct ledger_file m = mkrec(LEDGER_MIGRATED, 5, "");
	cr_assert_eq(ledger_commit_migration(l, "/a", &m, 0), 0);
	cr_expect_eq(state_of(l, "/a"), LEDGER_MIGRATED);
	cr_expect_eq(ledger_file_event(l, "/a", LEDGER_EV_WRITTEN, LEDGER_BY_VIEW, NULL, NULL),
		     LEDGER_WRITE);
	cr_expect_eq(state_of(l, "/a"), LEDGER_MODIFIED);
	cr_expect_eq(ledger_file_event(l, "/a", LEDGER_EV_WRITTEN, LEDGER_BY_VIEW, NULL, NULL),
		     LEDGER_KEEP, "written applies to migrated files only");
	cr_expect_eq(ledger_file_event(l, "/a", LEDGER_EV_CONFLICT, LEDGER_BY_FLEET, NULL, NULL),
		     LEDGER_WRITE);
	cr_expect_eq(state_of(l, "/a"), LEDGER_CONFLICT);
	/* uploaded: a new file gets a record, nfs-only; a known one keeps its state */
	uint64_t size = 7;
	cr_expect_eq(ledger_file_event(l, "/n", LEDGER_EV_UPLOADED, LEDGER_BY_MIRROR, fill_size,
				       &size), LEDGER_WRITE);
	cr_assert_eq(ledger_file_get(l, "/n", &g), 0);
	cr_expect_eq(g.state, LEDGER_NFS_ONLY);
	cr_expect_eq(g.size, 7);
	cr_expect_eq(ledger_file_event(l, "/a", LEDGER_EV_UPLOADED, LEDGER_BY_MIRROR, fill_size,
				       &size), LEDGER_WRITE);
	cr_assert_eq(ledger_file_get(l, "/a", &g), 0);
	cr_expect_eq(g.state, LEDGER_CONFLICT);
	cr_expect_eq(g.size, 7);
	/* an uploaded file (nfs-only) overwritten in S3 by another host: the mirror's upload
	 * finds it */
	cr_expect_eq(ledger_file_event(l, "/n", LEDGER_EV_CONFLICT, LEDGER_BY_MIRROR, NULL, NULL),
		     LEDGER_WRITE);
	cr_expect_eq(state_of(l, "/n"), LEDGER_CONFLICT);
	/* found written on NFS by someone else while waiting */
	cr_assert_eq(ledger_queue_push(l, "/f", LEDGER_PRIO_CRAWL), 1);
	cr_expect_eq(ledger_file_event(l, "/f", LEDGER_EV_FOUND, LEDGER_BY_MIGRATE, NULL, NULL),
		     LEDGER_WRITE);
	cr_expect_eq(state_of(l, "/f"), LEDGER_MODIFIED);
	cr_expect_eq(ledger_check(l, false), 0, "counters follow every transition");
	ledger_close(l);
}

static int set_state(struct ledger_file *rec, bool exists, void *arg)
{
	(void)exists;
	rec->state = (uint8_t)*(const int *)arg;
	return LEDGER_WRITE;
}

/* The record of path and the statistics are exactly as before. */
static void expect_unchanged(struct ledger *l, const char *path, const struct ledger_file *was,
			     const struct ledger_stats *st_was, const char *what)
{
	struct ledger_file g;
	struct ledger_stats st;
	cr_assert_eq(ledger_file_get(l, path, &g), 0, "%s", what);
	cr_expect_eq(memcmp(&g, was, sizeof(g)), 0, "%s: the record is unchanged", what);
	cr_assert_eq(ledger_stats(l, &st), 0);
	cr_expect_eq(memcmp(st.files, st_was->files, sizeof(st.files)), 0, "%s: counters", what);
}

Test(ledger, an_illegal_transition_is_refused_and_changes_nothing)
{
	struct ledger *l = open_rw();
	struct ledger_file r = mkrec(LEDGER_MIGRATED, 10, "0123456789abcdef0123456789abcdef");
	cr_assert_eq(ledger_file_put(l, "/x", &r), 0);
	struct ledger_file was;
	struct ledger_stats st_was;
	cr_assert_eq(ledger_file_get(l, "/x", &was), 0);
	cr_assert_eq(ledger_stats(l, &st_was), 0);

	int s3only = LEDGER_S3_ONLY;
	cr_expect_eq(ledger_file_update(l, "/x", set_state, &s3only), -EINVAL);
	expect_unchanged(l, "/x", &was, &st_was, "an edit that changes the state");
	struct ledger_file back = mkrec(LEDGER_S3_ONLY, 10, "");
	cr_expect_eq(ledger_file_put(l, "/x", &back), -EINVAL);
	expect_unchanged(l, "/x", &was, &st_was, "an import over a migrated record");
	cr_expect_eq(ledger_file_event(l, "/x", LEDGER_EV_WRITTEN, LEDGER_BY_FLEET, NULL, NULL),
		     -EINVAL);
	expect_unchanged(l, "/x", &was, &st_was, "an event by a module that may not cause it");
	cr_expect_eq(ledger_file_event(l, "/x", LEDGER_EV_COPIED, LEDGER_BY_MIGRATE, NULL, NULL),
		     -EINVAL);
	expect_unchanged(l, "/x", &was, &st_was, "copied outside ledger_commit_migration");
	int failed = LEDGER_FAILED;
	cr_expect_eq(ledger_file_event(l, "/x", LEDGER_EV_WRITTEN, LEDGER_BY_VIEW, set_state,
				       &failed), -EINVAL);
	expect_unchanged(l, "/x", &was, &st_was, "a callback that changes the state");
	cr_expect_eq(ledger_file_event(l, "/x", LEDGER_NEVENTS, LEDGER_BY_VIEW, NULL, NULL),
		     -EINVAL);
	struct ledger_file mod = mkrec(LEDGER_MODIFIED, 10, "");
	cr_expect_eq(ledger_commit_migration(l, "/x", &mod, 0), -EINVAL);
	expect_unchanged(l, "/x", &was, &st_was, "a migration that is not migrated");

	cr_expect_eq(ledger_file_update(l, "/none", set_state, &s3only), -EINVAL,
		     "an edit never creates a record");
	cr_expect_eq(ledger_file_get(l, "/none", &was), -ENOENT);
	cr_expect_eq(ledger_check(l, false), 0);
	ledger_close(l);
}
