/* test_plan.c - the migration planner's classification and cost model (migrate/plan.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "migrate/plan.h"

static struct plan_tally run(const char *prefix, const char *const *keys, const uint64_t *sizes,
			     const char *const *classes, size_t n)
{
	struct plan *p;
	struct plan_tally t;
	cr_assert_eq(plan_new(prefix, 64ull << 20, &p), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(plan_add(p, keys[i], sizes ? sizes[i] : 1,
				      classes ? classes[i] : NULL), 0, "key %s", keys[i]);
	plan_finish(p, &t);
	plan_free(p);
	return t;
}

Test(plan, files_dirs_and_markers)
{
	const char *k[] = { "a/1", "a/b/2", "a/b/3", "a/c/", "top", "z/y/x/w" };
	struct plan_tally t = run("", k, NULL, NULL, 6);
	cr_expect_eq(t.objects, 6);
	cr_expect_eq(t.files, 5);
	cr_expect_eq(t.markers, 1);
	cr_expect_eq(t.dirs, 6, "a, a/b, a/c, z, z/y, z/y/x: %llu", (unsigned long long)t.dirs);
	cr_expect_eq(t.unreachable, 0);
	cr_expect_eq(t.shadowed, 0);
}

Test(plan, shadowed_objects_wait_for_their_directory)
{
	/* "a" is followed by "a-1" (shadowed by "a-1/x") before "a/b" shadows it */
	const char *k[] = { "a", "a-1", "a-1/x", "a.txt", "a/b", "b", "b0/c" };
	uint64_t s[] = { 10, 20, 1, 1, 1, 1, 1 };
	struct plan_tally t = run("", k, s, NULL, 7);
	cr_expect_eq(t.shadowed, 2);
	cr_expect_eq(t.shadowed_bytes, 30);
	cr_expect_eq(t.files, 5, "a-1/x a.txt a/b b b0/c");
}

Test(plan, unreachable_keys)
{
	const char *k[] = { "a/../x", "a/.ferryfs.x", "a//b", "ok" };
	struct plan_tally t = run("", k, NULL, NULL, 4);
	cr_expect_eq(t.unreachable, 3);
	cr_expect_eq(t.files, 1);
}

Test(plan, prefix_filters_and_strips)
{
	const char *k[] = { "live/", "live/a", "live/d/b", "other" };
	struct plan_tally t = run("live/", k, NULL, NULL, 4);
	cr_expect_eq(t.objects, 3);
	cr_expect_eq(t.markers, 1, "the prefix's own marker");
	cr_expect_eq(t.files, 2);
	cr_expect_eq(t.dirs, 1, "d (the root is not counted)");
}

Test(plan, size_classes_archived_and_space)
{
	const char *k[] = { "a", "b", "c", "d", "e" };
	uint64_t s[] = { 100, 16 << 10, 2 << 20, 20 << 20, 100ull << 20 };
	const char *c[] = { "", "STANDARD", "GLACIER", "DEEP_ARCHIVE", NULL };
	struct plan_tally t = run("", k, s, c, 5);
	for (int i = 0; i < PLAN_CLASSES; i++)
		cr_expect_eq(t.class_files[i], 1, "class %d", i);
	cr_expect_eq(t.archived, 2);
	cr_expect_eq(t.archived_bytes, (2 << 20) + (20 << 20));
	cr_expect_eq(t.multipart_files, 1);
	cr_expect_eq(t.nfs_bytes, 4096 + (16 << 10) + (2 << 20) + (20 << 20) + (100ull << 20));
}

Test(plan, out_of_order_and_duplicates)
{
	struct plan *p;
	cr_assert_eq(plan_new("", 0, &p), 0);
	cr_expect_eq(plan_add(p, "b", 1, NULL), 0);
	cr_expect_eq(plan_add(p, "b", 1, NULL), 0, "a duplicate is ignored");
	cr_expect_eq(plan_add(p, "a", 1, NULL), -EINVAL);
	cr_expect_eq(plan_add(p, "", 1, NULL), -EINVAL);
	cr_expect_eq(plan_add(p, "b/c", 1, NULL), 0);
	struct plan_tally t;
	plan_finish(p, &t);
	plan_free(p);
	cr_expect_eq(t.objects, 2);
	cr_expect_eq(t.shadowed, 1);
	cr_expect_eq(t.files, 1);
}

Test(plan, estimate_uses_the_slower_limit_and_shares_among_hosts)
{
	struct plan_tally t = { .files = 1000000, .file_bytes = 10ull << 30, .objects = 1000000,
				.dirs = 999 };
	struct plan_params pp;
	plan_params_default(&pp);
	pp.rate = 100 << 20;
	pp.rate_files = 100;
	pp.hosts = 10;
	struct plan_estimate e;
	plan_estimate(&t, &pp, &e);
	cr_expect_float_eq(e.crawl_s, 1000.0, 1e-6, "files/s bound: 1e6 / (100 x 10)");
	cr_expect_eq(e.get_requests, 1000000);
	cr_expect_eq(e.list_requests, 999 + 1 + 1000);
	cr_expect_float_eq(e.crawl_cost, 2000 / 1000.0 * 0.005 + 1000 * 0.0004, 1e-9);
	cr_expect_eq(e.ledger_bytes, 240000000);
	pp.rate_files = 0;
	plan_estimate(&t, &pp, &e);
	cr_expect_eq(e.rate_files, PLAN_DEFAULT_RATE_FILES);
}
