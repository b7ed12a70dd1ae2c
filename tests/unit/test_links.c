/* Unit tests for links.c: which other names of a hard-linked file the kernel must be told
 * about after unlink, link and rename, and the table's bounds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/naming.h"
#include "view/links.h"

static struct stat file(uint64_t ino, nlink_t nlink)
{
	struct stat st;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0644;
	st.st_ino = (ino_t)ino;
	st.st_nlink = nlink;
	return st;
}

/* names, sorted and joined by spaces, for one comparison */
static const char *joined(struct lk_names *n)
{
	static char out[1024];
	out[0] = '\0';
	for (size_t i = 1; i < n->n; i++)
		for (size_t j = i; j > 0 && strcmp(n->v[j - 1], n->v[j]) > 0; j--) {
			char *tmp = n->v[j];
			n->v[j] = n->v[j - 1];
			n->v[j - 1] = tmp;
		}
	for (size_t i = 0; i < n->n; i++) {
		if (i)
			strcat(out, " ");
		strcat(out, n->v[i]);
	}
	return out;
}

Test(links, unlink_names_the_other_links_only)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat a = file(7, 3), other = file(8, 2);
	lk_seen(t, "/f", &a);
	lk_seen(t, "/g", &a);
	lk_seen(t, "/d/h", &a);
	lk_seen(t, "/x", &other);
	struct lk_names n;
	cr_assert_eq(lk_unlinked(t, "/f", &n), 2);
	cr_assert_str_eq(joined(&n), "/d/h /g");
	lk_names_free(&n);
	cr_assert_eq(lk_count(t), 3, "the unlinked name is forgotten");
	cr_assert_eq(lk_unlinked(t, "/f", &n), 0, "a second unlink finds nothing");
	cr_assert_eq(n.n, 0);
	cr_assert_eq(lk_unlinked(t, "/unknown", &n), 0);
	lk_free(t);
}

Test(links, single_links_and_directories_are_not_recorded)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat one = file(1, 1), dir = file(2, 5);
	dir.st_mode = S_IFDIR | 0755;
	lk_seen(t, "/one", &one);
	lk_seen(t, "/dir", &dir);
	lk_seen(t, NULL, &dir);
	cr_assert_eq(lk_count(t), 0);
	struct lk_names n;
	cr_assert_eq(lk_seen(NULL, "/a", &one), 0, "a NULL table records nothing");
	cr_assert_eq(lk_unlinked(NULL, "/a", &n), 0);
	lk_free(t);
}

Test(links, readdirplus_entries_join_dir_and_name)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat a = file(9, 2);
	uint64_t ino = 0;
	lk_seen_in(t, "/", "top", &a);
	lk_seen_in(t, "/d/e", "deep", &a);
	cr_assert_eq(lk_ino(t, "/top", &ino), 0);
	cr_assert_eq(ino, 9);
	cr_assert_eq(lk_ino(t, "/d/e/deep", &ino), 0);
	static char longdir[NAME_MAX_PATH + 100];
	memset(longdir, 'x', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	cr_assert_eq(lk_seen_in(t, longdir, "n", &a), -ENAMETOOLONG);
	lk_free(t);
}

Test(links, a_name_seen_for_another_file_moves)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat a = file(1, 2), b = file(2, 2);
	lk_seen(t, "/f", &a);
	lk_seen(t, "/g", &a);
	lk_seen(t, "/f", &b);     /* /f was replaced by another host */
	lk_seen(t, "/k", &b);
	struct lk_names n;
	cr_assert_eq(lk_unlinked(t, "/g", &n), 0, "/f no longer names file 1");
	cr_assert_eq(lk_unlinked(t, "/k", &n), 1);
	cr_assert_str_eq(joined(&n), "/f");
	lk_names_free(&n);
	cr_assert_eq(lk_count(t), 1);
	lk_free(t);
}

Test(links, link_names_the_others_of_the_source)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat a = file(4, 2);
	lk_seen(t, "/f", &a);
	lk_seen(t, "/g", &a);
	struct lk_names n;
	cr_assert_eq(lk_linked(t, "/f", &n), 1);
	cr_assert_str_eq(joined(&n), "/g");
	lk_names_free(&n);
	cr_assert_eq(lk_count(t), 2, "link forgets nothing");
	cr_assert_eq(lk_linked(t, "/unknown", &n), 0);
	lk_free(t);
}

Test(links, rename_over_a_link_names_its_others)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat a = file(1, 3), x = file(2, 2);
	lk_seen(t, "/f", &a);
	lk_seen(t, "/g", &a);
	lk_seen(t, "/d/h", &a);
	lk_seen(t, "/x", &x);
	lk_seen(t, "/y", &x);
	struct lk_names n;
	cr_assert_eq(lk_renamed(t, "/x", "/f", &n), 2, "the old /f's file lost a name");
	cr_assert_str_eq(joined(&n), "/d/h /g");
	lk_names_free(&n);
	uint64_t ino = 0;
	cr_assert_eq(lk_ino(t, "/f", &ino), 0);
	cr_assert_eq(ino, 2, "/f now names x's file");
	cr_assert_eq(lk_ino(t, "/x", &ino), -ENOENT);
	cr_assert_eq(lk_unlinked(t, "/y", &n), 1);
	cr_assert_str_eq(joined(&n), "/f");
	lk_names_free(&n);
	lk_free(t);
}

Test(links, rename_between_two_links_of_one_file_changes_nothing)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat a = file(1, 2);
	lk_seen(t, "/f", &a);
	lk_seen(t, "/g", &a);
	struct lk_names n;
	cr_assert_eq(lk_renamed(t, "/f", "/g", &n), 0);
	cr_assert_eq(lk_count(t), 2);
	uint64_t ino;
	cr_assert_eq(lk_ino(t, "/f", &ino), 0, "rename(2) left /f in place");
	cr_assert_eq(lk_renamed(t, "/g", "/g", &n), 0);
	cr_assert_eq(lk_count(t), 2);
	lk_free(t);
}

Test(links, directory_rename_moves_the_names_below)
{
	struct lk_table *t = lk_new(100, 1 << 20);
	struct stat a = file(1, 3);
	lk_seen(t, "/d/h", &a);
	lk_seen(t, "/d/sub/i", &a);
	lk_seen(t, "/dd/j", &a);      /* shares a prefix, not a directory */
	lk_seen(t, "/e/stale", &a);   /* below the (empty) target: gone */
	struct lk_names n;
	cr_assert_eq(lk_renamed(t, "/d", "/e", &n), 0);
	uint64_t ino;
	cr_assert_eq(lk_ino(t, "/e/h", &ino), 0);
	cr_assert_eq(lk_ino(t, "/e/sub/i", &ino), 0);
	cr_assert_eq(lk_ino(t, "/d/h", &ino), -ENOENT);
	cr_assert_eq(lk_ino(t, "/dd/j", &ino), 0);
	cr_assert_eq(lk_ino(t, "/e/stale", &ino), -ENOENT);
	cr_assert_eq(lk_count(t), 3);
	cr_assert_eq(lk_unlinked(t, "/dd/j", &n), 2);
	cr_assert_str_eq(joined(&n), "/e/h /e/sub/i");
	lk_names_free(&n);
	lk_free(t);
}

Test(links, bounded_by_names_and_bytes_oldest_first)
{
	struct lk_table *t = lk_new(3, 1 << 20);
	struct stat a = file(1, 9);
	char p[32];
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "/n%d", i);
		lk_seen(t, p, &a);
	}
	cr_assert_eq(lk_count(t), 3);
	uint64_t ino;
	cr_assert_eq(lk_ino(t, "/n0", &ino), -ENOENT, "the oldest went first");
	cr_assert_eq(lk_ino(t, "/n4", &ino), 0);
	lk_seen(t, "/n2", &a);        /* seen again: now the newest */
	lk_seen(t, "/n5", &a);
	cr_assert_eq(lk_ino(t, "/n2", &ino), 0);
	cr_assert_eq(lk_ino(t, "/n3", &ino), -ENOENT);
	lk_free(t);

	t = lk_new(100, 3 * 4);       /* "/nX" costs 4 bytes */
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "/n%d", i);
		lk_seen(t, p, &a);
	}
	cr_assert_eq(lk_count(t), 3);
	struct lk_names n;
	lk_renamed(t, "/n4", "/a-much-longer-name", &n);   /* grows past the byte bound */
	cr_assert_eq(lk_ino(t, "/a-much-longer-name", &ino), -ENOENT,
		     "a name longer than the bound does not stay");
	cr_assert_eq(lk_count(t), 0);
	lk_free(t);
}
