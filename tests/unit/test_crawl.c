/* Unit tests for crawl.c's pure parts: the migrate=crawl value, shards, the job checkpoint
 * text, escaping, shadow detection over sorted listings and the resume key. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/crawl.h"
#include "ledger/ledger.h"

Test(crawl, parse_values)
{
	struct crawl_spec s;
	cr_assert_eq(crawl_parse("crawl", &s), 0);
	cr_assert_eq(s.kind, CRAWL_QUEUE);
	cr_assert_eq(s.prio, LEDGER_PRIO_CRAWL);
	cr_assert_eq(s.shard_n, 1);
	cr_assert_eq(crawl_parse("crawl shard=2/5", &s), 0);
	cr_assert_eq(s.shard_i, 2);
	cr_assert_eq(s.shard_n, 5);
	cr_assert_eq(crawl_parse("crawl shard=0/2 prefix=log 2024", &s), 0);
	cr_assert_str_eq(s.prefix, "log 2024", "prefix= takes the rest, spaces included");
	cr_assert_eq(s.shard_n, 2);
	cr_assert_eq(crawl_parse("crawl prefix=x", &s), 0);
	cr_assert_str_eq(s.prefix, "x");
	cr_assert_eq(crawl_parse("scan", &s), 0);
	cr_assert_eq(s.kind, CRAWL_SCAN);
	const char *bad[] = { "", "crawlx", "crawl shard=2/2", "crawl shard=1/0", "crawl shard=a/b",
			      "crawl shard=1/2x", "crawl nope", "crawl prefix=a/b", "now please" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(crawl_parse(bad[i], &s), -EINVAL, "'%s' must be refused", bad[i]);
}

Test(crawl, shards_split_keys_evenly_and_stably)
{
	unsigned count[4] = { 0 };
	char key[64];
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "many/obj-%05d.txt", i);
		unsigned s = crawl_shard_of(key, 4);
		cr_assert_lt(s, 4);
		cr_assert_eq(s, crawl_shard_of(key, 4), "same key, same shard");
		count[s]++;
	}
	for (int s = 0; s < 4; s++)
		cr_expect(count[s] > 2300 && count[s] < 2700, "shard %d has %u of 10000", s,
			  count[s]);
	cr_assert_eq(crawl_shard_of("anything", 1), 0);
}

Test(crawl, key_prefix_of_a_job)
{
	struct crawl_spec s = { .shard_n = 1 };
	struct buf b = { 0 };
	strcpy(s.dir, "/");
	cr_assert_eq(crawl_key_prefix("", &s, &b), 0);
	cr_assert_str_eq(b.data ? b.data : "", "");
	buf_reset(&b);
	strcpy(s.dir, "/a/b");
	strcpy(s.prefix, "x");
	cr_assert_eq(crawl_key_prefix("pre/", &s, &b), 0);
	cr_assert_str_eq(b.data, "pre/a/b/x");
	buf_free(&b);
}

Test(crawl, escape_round_trip)
{
	const char *in = "a b\n%c\x01\x7f\xc3\xa9";
	struct buf b = { 0 };
	char out[64];
	cr_assert_eq(crawl_escape(in, &b), 0);
	cr_assert_null(strpbrk(b.data, " \n\x01"), "one word: %s", b.data);
	cr_assert_eq(crawl_unescape(b.data, out, sizeof(out)), 0);
	cr_assert_str_eq(out, in);
	cr_assert_eq(crawl_unescape("%00", out, sizeof(out)), -EINVAL, "no NUL smuggled in");
	cr_assert_eq(crawl_unescape("%4", out, sizeof(out)), -EINVAL);
	buf_free(&b);
}

Test(crawl, job_text_round_trip)
{
	struct crawl_job j = { .state = CRAWL_RUNNING, .started = 1700000000, .listed = 12345,
			       .queued = 1000, .skipped = 11000, .unreachable = 3, .shadowed = 2,
			       .pages = 13 };
	j.spec.kind = CRAWL_QUEUE;
	j.spec.prio = LEDGER_PRIO_CRAWL;
	j.spec.shard_i = 1;
	j.spec.shard_n = 3;
	strcpy(j.spec.dir, "/dir with space\nnewline");
	strcpy(j.spec.prefix, "p%");
	strcpy(j.error, "Input/output error");
	struct buf b = { 0 };
	struct crawl_job k;
	cr_assert_eq(crawl_job_format(&j, &b), 0);
	cr_assert_eq(crawl_job_parse(b.data, &k), 0);
	cr_assert_eq(k.state, CRAWL_RUNNING);
	cr_assert_eq(k.spec.shard_i, 1);
	cr_assert_eq(k.spec.shard_n, 3);
	cr_assert_eq(k.listed, 12345);
	cr_assert_eq(k.queued, 1000);
	cr_assert_eq(k.unreachable, 3);
	cr_assert_eq(k.shadowed, 2);
	cr_assert_eq(k.pages, 13);
	cr_assert_eq(k.started, 1700000000);
	cr_assert_str_eq(k.spec.dir, j.spec.dir);
	cr_assert_str_eq(k.spec.prefix, "p%");
	cr_assert_str_eq(k.error, j.error);
	cr_assert_eq(crawl_job_parse("state running\n", &k), -EINVAL, "a job needs its dir");
	buf_free(&b);
}

/* ---- shadow detection ---- */

struct seen {
	char keys[64][64];
	int shadowed[64];
	int n;
};

static int collect(void *arg, const char *key, int shadowed)
{
	struct seen *s = arg;
	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->shadowed[s->n++] = shadowed;
	return 0;
}

static void run(const char *const *keys, size_t n, struct seen *out)
{
	struct crawl_shadow sh = { 0 };
	const char *prev = NULL;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(crawl_shadow_feed(&sh, keys[i], prev, collect, out), 0);
		prev = keys[i];
	}
	cr_assert_eq(crawl_shadow_flush(&sh, collect, out), 0);
	crawl_shadow_free(&sh);
}

static int shadowed_of(const struct seen *s, const char *key)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->keys[i], key))
			return s->shadowed[i];
	return -1;   /* not emitted */
}

Test(crawl, shadowed_objects_are_found_in_a_sorted_listing)
{
	/* S3 order: '!' (0x21) and '-' (0x2d) sort before '/' (0x2f) */
	const char *keys[] = {
		"a", "a!", "a!/z", "a-b", "a/", "a/x", "b", "c", "c.d", "d/e", "e/"
	};
	struct seen s;
	run(keys, sizeof(keys) / sizeof(keys[0]), &s);
	cr_assert_eq(shadowed_of(&s, "a"), 1, "a/ and a/x exist");
	cr_assert_eq(shadowed_of(&s, "a!"), 1, "a!/z exists, even though a waited before it");
	cr_assert_eq(shadowed_of(&s, "a-b"), 0);
	cr_assert_eq(shadowed_of(&s, "a!/z"), 0);
	cr_assert_eq(shadowed_of(&s, "a/x"), 0);
	cr_assert_eq(shadowed_of(&s, "b"), 0);
	cr_assert_eq(shadowed_of(&s, "c"), 0);
	cr_assert_eq(shadowed_of(&s, "c.d"), 0);
	cr_assert_eq(shadowed_of(&s, "d/e"), 0);
	cr_assert_eq(shadowed_of(&s, "a/"), -1, "markers are not objects");
	cr_assert_eq(shadowed_of(&s, "e/"), -1);
	cr_assert_eq(s.n, 9, "every object emitted exactly once");
	for (int i = 1; i < s.n; i++)
		cr_assert_lt(strcmp(s.keys[i - 1], s.keys[i]), 0, "emitted in key order");
}

Test(crawl, a_directory_listed_before_its_object_still_shadows_it)
{
	/* s3rver lists a directory's keys before the object of the same name */
	const char *keys[] = { "sc/a/b", "sc/a", "sc/b/c", "sc/b", "sc/ok" };
	struct seen s;
	run(keys, sizeof(keys) / sizeof(keys[0]), &s);
	cr_assert_eq(shadowed_of(&s, "sc/a"), 1);
	cr_assert_eq(shadowed_of(&s, "sc/b"), 1);
	cr_assert_eq(shadowed_of(&s, "sc/a/b"), 0);
	cr_assert_eq(shadowed_of(&s, "sc/ok"), 0);
	cr_assert_eq(s.n, 5, "every object emitted exactly once");
}

Test(crawl, a_marker_shadows_and_nested_objects_chain)
{
	const char *keys[] = { "x", "x/", "x/y", "x/y/z", "y" };
	struct seen s;
	run(keys, sizeof(keys) / sizeof(keys[0]), &s);
	cr_assert_eq(shadowed_of(&s, "x"), 1);
	cr_assert_eq(shadowed_of(&s, "x/y"), 1);
	cr_assert_eq(shadowed_of(&s, "x/y/z"), 0);
	cr_assert_eq(shadowed_of(&s, "y"), 0);
}

Test(crawl, resume_key_never_skips_a_waiting_object)
{
	struct crawl_shadow sh = { 0 };
	struct seen s = { 0 };
	cr_assert_null(crawl_shadow_resume(&sh, NULL), "nothing listed: from the beginning");
	cr_assert_eq(crawl_shadow_feed(&sh, "k1", NULL, collect, &s), 0);
	cr_assert_null(crawl_shadow_resume(&sh, "k1"), "k1 waits and nothing was before it");
	cr_assert_eq(crawl_shadow_feed(&sh, "k2", "k1", collect, &s), 0);
	cr_assert_eq(s.n, 1, "k2 passed k1/");
	cr_assert_str_eq(crawl_shadow_resume(&sh, "k2"), "k1", "k2 waits: list again after k1");
	cr_assert_eq(crawl_shadow_flush(&sh, collect, &s), 0);
	cr_assert_str_eq(crawl_shadow_resume(&sh, "k2"), "k2", "nothing waits: after the last key");
	crawl_shadow_free(&sh);
}
