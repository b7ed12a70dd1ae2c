/* test_sweep.c - the lines of the fleet sweep's chunks (migrate/sweep.c): written and read
 * back, with every byte a path may hold, and malformed lines refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "migrate/sweep.h"

Test(sweep, line_round_trip)
{
	const char *paths[] = { "/a", "/a b/c%d", "/tab\there", "/nl\nx", "/\x7f\x01%25" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
		struct buf b = { 0 };
		cr_assert_eq(sw_format_line(&b, "0123abcd-2", 12345, paths[i]), 0);
		cr_assert_eq(b.data[b.len - 1], '\n');
		cr_assert_eq(memchr(b.data, '\n', b.len), b.data + b.len - 1, "one line: %s",
			     paths[i]);
		b.data[b.len - 1] = '\0';
		const char *etag, *path;
		uint64_t size;
		cr_assert_eq(sw_parse_line(b.data, &etag, &size, &path), 0);
		cr_expect_str_eq(etag, "0123abcd-2");
		cr_expect_eq(size, 12345);
		cr_expect_str_eq(path, paths[i]);
		buf_free(&b);
	}
}

Test(sweep, malformed_lines)
{
	const char *bad[] = { "",
			      "etag",
			      "etag 12",
			      "etag x /a",
			      " 12 /a",
			      "etag 12 a",
			      "etag 12 /a/../b",
			      "etag 12 /%zz",
			      "etag 12 /%00",
			      "etag 12 /" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char line[64];
		snprintf(line, sizeof(line), "%s", bad[i]);
		const char *etag, *path;
		uint64_t size;
		cr_expect_eq(sw_parse_line(line, &etag, &size, &path), -EINVAL, "%s", bad[i]);
	}
	struct buf b = { 0 };
	cr_expect_eq(sw_format_line(&b, "", 1, "/a"), -EINVAL, "no ETag");
	cr_expect_eq(sw_format_line(&b, "a b", 1, "/a"), -EINVAL, "an ETag with a space");
	buf_free(&b);
}
