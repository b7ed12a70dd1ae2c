/* Unit tests for xattrs.c: the one table of user.ferryfs.* names (spec 8). */
#include <criterion/criterion.h>
#include <string.h>

#include "base/xattrs.h"

Test(xattrs, every_name_once_and_found)
{
	for (size_t i = 0; i < xa_count; i++) {
		cr_assert_eq(xa_find(xa_names[i].name), &xa_names[i], "%s", xa_names[i].name);
		cr_assert(xa_names[i].flags & (XA_GET | XA_SET), "%s: neither read nor written",
			  xa_names[i].name);
	}
	cr_assert_null(xa_find("nosuch"));
	cr_assert_null(xa_find(""));
}

Test(xattrs, the_path_names_are_read_only_and_in_spec_order)
{
	static const char *const spec[] = { "state", "source", "s3key", "etag", "migrated",
					    "sha256", "synced", "error" };
	size_t k = 0;
	for (size_t i = 0; i < xa_count; i++) {
		if (!(xa_names[i].flags & XA_PATH))
			continue;
		cr_assert_lt(k, sizeof(spec) / sizeof(spec[0]));
		cr_assert_str_eq(xa_names[i].name, spec[k++]);
		cr_assert_eq(xa_names[i].flags & (XA_SET | XA_ROOT), 0u);
	}
	cr_assert_eq(k, sizeof(spec) / sizeof(spec[0]));
}

Test(xattrs, writable_names_of_spec_8)
{
	const char *const rw[] = { "migrate", "pause", "rate", "revert", "sync", "finish" };
	for (size_t i = 0; i < sizeof(rw) / sizeof(rw[0]); i++)
		cr_assert(xa_find(rw[i])->flags & XA_SET, "%s", rw[i]);
	cr_assert_eq(xa_find("stats")->flags & XA_SET, 0u);
	cr_assert(xa_find("stats")->flags & XA_ROOT);
}

Test(xattrs, strip_the_prefix)
{
	cr_assert_str_eq(xa_strip("user.ferryfs.state"), "state");
	cr_assert_null(xa_strip("user.other"));
	cr_assert_null(xa_strip("user.ferryfs"));
}
