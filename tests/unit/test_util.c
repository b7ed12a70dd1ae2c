/* Unit tests for util.c: buffers, sizes, numbers, timestamps, hashes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "base/util.h"

Test(util, buf_grows_and_stays_terminated)
{
	struct buf b = { 0 };
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(buf_printf(&b, "%d,", i), 0);
	cr_assert_eq(b.len, strlen(b.data));
	cr_assert(strncmp(b.data, "0,1,2,", 6) == 0);
	cr_assert(strstr(b.data, "999,") != NULL);
	buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_str_eq(b.data, "");
	cr_assert_eq(buf_append(&b, "a\0b", 3), 0);
	cr_assert_eq(b.len, 3);
	buf_free_secure(&b);
	cr_assert_null(b.data);
}

Test(util, sizes)
{
	uint64_t v;
	cr_assert_eq(util_parse_size("64M", &v), 0);
	cr_assert_eq(v, 64ull << 20);
	cr_assert_eq(util_parse_size("10k", &v), 0);
	cr_assert_eq(v, 10240);
	cr_assert_eq(util_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(util_parse_size("123", &v), 0);
	cr_assert_eq(v, 123);
	cr_assert_eq(util_parse_size("", &v), -EINVAL);
	cr_assert_eq(util_parse_size("-1", &v), -EINVAL);
	cr_assert_eq(util_parse_size("12X", &v), -EINVAL);
	cr_assert_eq(util_parse_size("99999999999999999999", &v), -EINVAL);
	cr_assert_eq(util_parse_size("16777216T", &v), -EINVAL, "overflow");
}

Test(util, numbers)
{
	uint64_t v;
	cr_assert_eq(util_parse_u64("42", 0, 100, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(util_parse_u64("101", 0, 100, &v), -ERANGE);
	cr_assert_eq(util_parse_u64("4x", 0, 100, &v), -EINVAL);
	cr_assert_eq(util_parse_u64("+4", 0, 100, &v), -EINVAL);
}

Test(util, timestamps)
{
	struct timespec ts;
	cr_assert_eq(util_parse_iso8601("2013-05-24T00:00:00.000Z", &ts), 0);
	cr_assert_eq(ts.tv_sec, 1369353600);
	cr_assert_eq(util_parse_iso8601("2026-11-23T01:35:16.5Z", &ts), 0);
	cr_assert_eq(ts.tv_nsec, 500000000);
	cr_assert_eq(util_parse_iso8601("garbage", &ts), -EINVAL);
	cr_assert_eq(util_parse_iso8601("2026-13-23T01:35:16Z", &ts), -EINVAL);
	cr_assert_eq(util_parse_http_date("Fri, 24 May 2013 00:00:00 GMT", &ts), 0);
	cr_assert_eq(ts.tv_sec, 1369353600);
	cr_assert_eq(util_parse_http_date("Fri, 24 Foo 2013 00:00:00 GMT", &ts), -EINVAL);
	char out[21];
	util_format_iso8601(1369353600, out);
	cr_assert_str_eq(out, "2013-05-24T00:00:00Z");
}

Test(util, sha256)
{
	char hex[65];
	cr_assert_eq(util_sha256_hex("", 0, hex), 0);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	cr_assert_eq(util_sha256_hex("abc", 3, hex), 0);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
