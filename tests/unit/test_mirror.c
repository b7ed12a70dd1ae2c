/* Unit tests for the mirror's coalescing plan (mirror.c): which paths a batch of journal
 * entries names, and what must be done for each (spec 7, doc/mirror.md). */
#include <criterion/criterion.h>
#include <string.h>

#include "ledger/ledger.h"
#include "writeback/mirror.h"

static const struct mirror_item *find(const struct mirror_plan *p, const char *path)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].path, path))
			return &p->v[i];
	return NULL;
}

Test(mirror_plan, repeated_writes_to_one_path_are_one_item_with_the_oldest_time)
{
	struct mirror_plan p = { 0 };
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_CREATE, "/a", NULL, 30), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_WRITE, "/a", NULL, 10), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_CHMOD, "/a", NULL, 20), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_TRUNCATE, "/a", NULL, 40), 0);
	mirror_plan_finish(&p);
	cr_assert_eq(p.n, 1);
	cr_assert_str_eq(p.v[0].path, "/a");
	cr_assert_eq(p.v[0].flags, MIRROR_NODE);
	cr_assert_eq(p.v[0].time_ms, 10);
	mirror_plan_free(&p);
}

Test(mirror_plan, rename_names_both_sides_with_their_subtrees)
{
	struct mirror_plan p = { 0 };
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_RENAME, "/d", "/e", 1), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_WRITE, "/e/f", NULL, 2), 0);
	mirror_plan_finish(&p);
	cr_assert_eq(p.n, 3);
	cr_assert_str_eq(p.v[0].path, "/d", "sorted by path");
	cr_assert_eq(find(&p, "/d")->flags, MIRROR_NODE | MIRROR_TREE);
	cr_assert_eq(find(&p, "/e")->flags, MIRROR_NODE | MIRROR_TREE);
	cr_assert_eq(find(&p, "/e/f")->flags, MIRROR_NODE);
	mirror_plan_free(&p);
}

Test(mirror_plan, removals_and_mkdir_reconcile_the_subtree_link_names_the_new_name)
{
	struct mirror_plan p = { 0 };
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_UNLINK, "/u", NULL, 1), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_RMDIR, "/r", NULL, 1), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_MKDIR, "/m", NULL, 1), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_LINK, "/src", "/dst", 1), 0);
	mirror_plan_finish(&p);
	cr_assert_eq(p.n, 4);
	cr_assert_eq(find(&p, "/u")->flags, MIRROR_NODE | MIRROR_TREE);
	cr_assert_eq(find(&p, "/r")->flags, MIRROR_NODE | MIRROR_TREE);
	cr_assert_eq(find(&p, "/m")->flags, MIRROR_NODE | MIRROR_TREE);
	cr_assert_eq(find(&p, "/dst")->flags, MIRROR_NODE);
	cr_assert_null(find(&p, "/src"), "a link changes nothing S3 holds of its source");
	mirror_plan_free(&p);
}

Test(mirror_plan, a_symlink_names_the_link_not_its_target)
{
	struct mirror_plan p = { 0 };
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_SYMLINK, "/l", "../t", 1), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_SYMLINK, "/k", "/abs/t", 1), 0);
	mirror_plan_finish(&p);
	cr_assert_eq(p.n, 2);
	cr_assert_not_null(find(&p, "/l"));
	cr_assert_not_null(find(&p, "/k"));
	cr_assert_null(find(&p, "/abs/t"), "a target is text, never a path to upload");
	mirror_plan_free(&p);
}

Test(mirror_plan, flags_merge_across_entries)
{
	struct mirror_plan p = { 0 };
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_WRITE, "/x", NULL, 5), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_UNLINK, "/x", NULL, 6), 0);
	cr_assert_eq(mirror_plan_add(&p, LEDGER_OP_CREATE, "/x", NULL, 7), 0);
	mirror_plan_finish(&p);
	cr_assert_eq(p.n, 1);
	cr_assert_eq(p.v[0].flags, MIRROR_NODE | MIRROR_TREE);
	cr_assert_eq(p.v[0].time_ms, 5);
	mirror_plan_free(&p);
}
