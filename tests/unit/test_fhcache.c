/* Unit tests for nfs/fhcache.c: directory handles by path, expiry, forgetting a subtree,
 * and nfs/raw3.c's mapping of NFSv3 status codes to errno values. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nfs/fhcache.h"
#include "nfs/raw3.h"

static struct raw3_fh fh_of(unsigned char b)
{
	struct raw3_fh f = { .len = 8 };
	memset(f.data, b, f.len);
	return f;
}

static int get(struct fhc *c, const char *path, int64_t now, struct raw3_fh *out)
{
	return fhc_get(c, path, strlen(path), now, out);
}

static void put(struct fhc *c, const char *path, unsigned char b, int64_t now)
{
	struct raw3_fh f = fh_of(b);
	fhc_put(c, path, strlen(path), &f, now);
}

Test(fhcache, remembers_by_exact_path_until_expiry)
{
	struct fhc *c;
	struct raw3_fh f;
	cr_assert_eq(fhc_new(64, 2000, &c), 0);
	put(c, "/a/b", 1, 1000);
	cr_assert_eq(get(c, "/a/b", 1500, &f), 0);
	cr_assert_eq(f.len, 8);
	cr_assert_eq(f.data[0], 1);
	cr_assert_eq(get(c, "/a/b", 2999, &f), 0, "fresh until ttl");
	cr_assert_eq(get(c, "/a/b", 3000, &f), -ENOENT, "expired at ttl");
	cr_assert_eq(get(c, "/a", 1500, &f), -ENOENT, "a prefix is another path");
	cr_assert_eq(get(c, "/a/bc", 1500, &f), -ENOENT);
	/* a length names a prefix of a longer string without copying it */
	cr_assert_eq(fhc_get(c, "/a/b/c/d", 4, 1500, &f), 0);
	fhc_destroy(c);
}

Test(fhcache, forget_drops_the_subtree_only)
{
	struct fhc *c;
	struct raw3_fh f;
	cr_assert_eq(fhc_new(1024, 2000, &c), 0);
	put(c, "/a", 1, 0);
	put(c, "/a/b", 2, 0);
	put(c, "/a/b/c", 3, 0);
	put(c, "/ab", 4, 0);
	put(c, "/x", 5, 0);
	fhc_forget(c, "/a/");
	cr_assert_eq(get(c, "/a", 1, &f), -ENOENT);
	cr_assert_eq(get(c, "/a/b", 1, &f), -ENOENT);
	cr_assert_eq(get(c, "/a/b/c", 1, &f), -ENOENT);
	cr_assert_eq(get(c, "/ab", 1, &f), 0, "a sibling sharing the prefix stays");
	cr_assert_eq(get(c, "/x", 1, &f), 0);
	fhc_forget(c, "/");
	cr_assert_eq(get(c, "/ab", 1, &f), -ENOENT, "forgetting the root forgets all");
	cr_assert_eq(get(c, "/x", 1, &f), -ENOENT);
	fhc_destroy(c);
}

Test(fhcache, a_collision_replaces_and_never_answers_for_another_path)
{
	struct fhc *c;
	struct raw3_fh f;
	char p[32];
	cr_assert_eq(fhc_new(1, 2000, &c), 0);   /* one slot: every path collides */
	for (int i = 0; i < 100; i++) {
		snprintf(p, sizeof(p), "/d%d", i);
		put(c, p, (unsigned char)i, 0);
	}
	cr_assert_eq(get(c, "/d99", 1, &f), 0);
	cr_assert_eq(f.data[0], 99);
	cr_assert_eq(get(c, "/d98", 1, &f), -ENOENT);
	uint64_t hits, puts;
	fhc_counts(c, &hits, &puts);
	cr_assert_eq(hits, 1);
	cr_assert_eq(puts, 100);
	fhc_destroy(c);
}

Test(raw3, status_codes_become_errno_values)
{
	cr_assert_eq(raw3_errno(0), 0);
	cr_assert_eq(raw3_errno(2), -ENOENT);
	cr_assert_eq(raw3_errno(20), -ENOTDIR);
	cr_assert_eq(raw3_errno(70), -ESTALE);
	cr_assert_eq(raw3_errno(10001), -ESTALE, "BADHANDLE is a stale handle too");
	cr_assert_eq(raw3_errno(63), -ENAMETOOLONG);
	cr_assert_eq(raw3_errno(66), -ENOTEMPTY);
	cr_assert_eq(raw3_errno(10008), -EAGAIN);
	cr_assert_eq(raw3_errno(12345), -EIO, "anything unknown is EIO");
}
