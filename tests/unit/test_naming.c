/* Unit tests for naming.c: which S3 keys are reachable and where they land (spec 2). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/naming.h"

static int k2p(const char *prefix, const char *key, char *out)
{
	return name_key_to_path(prefix, key, out, NAME_MAX_PATH + 2);
}

Test(naming, reachable_keys_map_under_the_prefix)
{
	static char p[NAME_MAX_PATH + 2];
	cr_assert_eq(k2p("", "a/b.txt", p), 0);
	cr_assert_str_eq(p, "/a/b.txt");
	cr_assert_eq(k2p("data/", "data/x y+z%~é", p), 0);
	cr_assert_str_eq(p, "/x y+z%~é");
	cr_assert_eq(k2p("data/", "data/dir/", p), 0, "a marker names its directory");
	cr_assert_str_eq(p, "/dir");
	cr_assert_eq(k2p("data/", "data/", p), 0, "the prefix marker is the root");
	cr_assert_str_eq(p, "/");
}

Test(naming, keys_outside_the_prefix_are_not_ours)
{
	static char p[NAME_MAX_PATH + 2];
	cr_assert_eq(k2p("data/", "other/a", p), -ENOENT);
	cr_assert_eq(k2p("data/", "dat", p), -ENOENT);
}

Test(naming, unreachable_keys_never_map)
{
	static char p[NAME_MAX_PATH + 2];
	const char *bad[] = { "a//b", "/abs", "../x", "a/../../etc/passwd", "a/./b", "./a", "..",
			      "a/..", ".ferryfs", "a/.ferryfs-wh.b", "x/.ferryfsy/z", "//", "a//" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(k2p("", bad[i], p), -EINVAL, "key %s must be unreachable", bad[i]);
	char long_seg[300];
	memset(long_seg, 'x', 256);
	long_seg[256] = '\0';
	cr_expect_eq(k2p("", long_seg, p), -EINVAL, "256-byte segment");
	long_seg[255] = '\0';
	cr_expect_eq(k2p("", long_seg, p), 0, "255-byte segment is fine");
	static char long_path[NAME_MAX_PATH + 200];
	memset(long_path, 0, sizeof(long_path));
	for (int i = 0; i < NAME_MAX_PATH / 101 + 1; i++)
		strcat(long_path,
		       "01234567890123456789012345678901234567890123456789"
		       "01234567890123456789012345678901234567890123456789/");
	strcat(long_path, "f");
	cr_expect_eq(k2p("", long_path, p), -EINVAL, "path over NAME_MAX_PATH bytes");
}

Test(naming, segments)
{
	cr_assert(name_segment_ok("a", 1));
	cr_assert(!name_segment_ok("", 0));
	cr_assert(!name_segment_ok(".", 1));
	cr_assert(!name_segment_ok("..", 2));
	cr_assert(name_segment_ok("...", 3));
	cr_assert(name_segment_ok(".ferry", 6));
	cr_assert(!name_segment_ok(".ferryfs", 8));
	cr_assert(!name_segment_ok(".ferryfs.wh.x", 13));
	cr_assert(!name_segment_ok("a\0b", 3));
	cr_assert(name_is_reserved(".ferryfs-anything", 17));
	cr_assert(!name_is_reserved(".ferry", 6));
}

Test(naming, path_to_key)
{
	struct buf b = { 0 };
	cr_assert_eq(name_path_to_key("p/", "/a/b c", 0, &b), 0);
	cr_assert_str_eq(b.data, "p/a/b c");
	buf_reset(&b);
	cr_assert_eq(name_path_to_key("p/", "/a", 1, &b), 0);
	cr_assert_str_eq(b.data, "p/a/");
	buf_reset(&b);
	cr_assert_eq(name_path_to_key("p/", "/", 0, &b), 0);
	cr_assert_str_eq(b.data, "p/");
	buf_reset(&b);
	cr_assert_eq(name_path_to_key("", "/a/../b", 0, &b), -EINVAL);
	cr_assert_eq(name_path_to_key("", "a", 0, &b), -EINVAL);
	cr_assert_eq(name_path_to_key("", "/a/", 0, &b), -EINVAL);
	buf_free(&b);
}

Test(naming, round_trip)
{
	const char *keys[] = { "k", "d/e/f", "sp ace/+plus/%25/~t/ünï/=&" };
	for (size_t i = 0; i < 3; i++) {
		static char p[NAME_MAX_PATH + 2];
		struct buf b = { 0 };
		cr_assert_eq(k2p("pre/", keys[i], p), -ENOENT, "not under the prefix");
		char key[512];
		snprintf(key, sizeof(key), "pre/%s", keys[i]);
		cr_assert_eq(k2p("pre/", key, p), 0);
		cr_assert_eq(name_path_to_key("pre/", p, 0, &b), 0);
		cr_assert_str_eq(b.data, key);
		buf_free(&b);
	}
}

/* Crafted keys: whatever bytes a key holds, a key that maps gives one path under
 * the mount, never "..", an absolute path or a ".ferryfs" name; control characters other
 * than NUL are ordinary name bytes (POSIX allows them) and stay inside their segment. */
Test(naming, crafted_keys_never_escape)
{
	static char p[NAME_MAX_PATH + 2];
	const char *escape[] = { "../etc/passwd", "a/../../b", "/etc/passwd", "//etc/passwd",
				 "a/b/..", "a/./../..", "./.", "..%2F..", "x/../.ferryfs/ledger",
				 ".ferryfs/../x", "\x01/../x", "a\n/../../b" };
	for (size_t i = 0; i < sizeof(escape) / sizeof(escape[0]); i++) {
		int rc = k2p("", escape[i], p);
		if (rc == 0) {
			/* Only "..%2F.." is a name (S3 keys are not %-decoded): one segment. */
			cr_expect_str_eq(p, "/..%2F..", "key %s", escape[i]);
		} else {
			cr_expect_eq(rc, -EINVAL, "key %s", escape[i]);
		}
	}
	cr_assert_eq(k2p("data/", "data/../secret", p), -EINVAL);
	cr_assert_eq(k2p("data/", "data//etc/passwd", p), -EINVAL);
	cr_assert_eq(k2p("data/", "../data/x", p), -ENOENT);

	cr_assert_eq(k2p("", "a\x01\x1b[2J\x7f/b\tc\rd\n", p), 0);
	cr_assert_str_eq(p, "/a\x01\x1b[2J\x7f/b\tc\rd\n");
	cr_assert_eq(k2p("", "\n/\t", p), 0);
	cr_assert_str_eq(p, "/\n/\t");

	/* Over-long: a key longer than NAME_MAX_PATH never maps, and a small buffer gives
	 * -ENAMETOOLONG instead of a cut path. */
	static char big[NAME_MAX_PATH + 4096];
	memset(big, 'a', sizeof(big) - 1);
	for (size_t i = 200; i < sizeof(big) - 1; i += 201)
		big[i] = '/';
	cr_assert_eq(k2p("", big, p), -EINVAL);
	cr_assert_eq(name_key_to_path("", "abcdef", p, 4), -ENAMETOOLONG);
	cr_assert_eq(name_key_to_path("", "abc", p, 5), 0);
	cr_assert_str_eq(p, "/abc");
}

Test(naming, paths_longer_than_path_max_and_names_too_long)
{
	/* a path of 4095 bytes below a deep directory: more than 4095 from the root */
	static char p[NAME_MAX_PATH + 2];
	size_t n = 0;
	while (n < 8000) {
		p[n++] = '/';
		memset(p + n, 'd', 200);
		n += 200;
	}
	p[n] = '\0';
	cr_expect(name_path_ok(p), "an 8040-byte path of 200-byte names");
	cr_expect(!name_too_long(p));
	struct buf k = { 0 };
	cr_assert_eq(name_path_to_key("", p, 0, &k), 0);
	cr_expect_eq(k.len, n - 1);
	buf_free(&k);
	memset(p, 0, sizeof(p));
	p[0] = '/';
	memset(p + 1, 'x', 255);
	cr_expect(name_path_ok(p) && !name_too_long(p), "a 255-byte name");
	p[256] = 'x';
	cr_expect(!name_path_ok(p) && name_too_long(p), "a 256-byte name is too long");
	cr_expect(!name_too_long("/a/.ferryfs.x"), "reserved, not too long");
	cr_expect(!name_too_long("/a//b"));
	static char big[NAME_MAX_PATH + 10];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = i % 100 ? 'a' : '/';
	cr_expect(name_too_long(big), "over NAME_MAX_PATH bytes");
}
