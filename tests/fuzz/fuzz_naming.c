/* fuzz_naming.c - libFuzzer target: the key <-> path mapping of src/base/naming.c (spec 2).
 * Input: PREFIX NUL KEY [NUL outlen-byte]. Invariants, checked independently of naming.c:
 * a key that maps gives "/" or "/seg(/seg)*" where no segment is empty, ".", "..", over
 * 255 bytes or begins with ".ferryfs", the whole at most 4095 bytes, so the path resolved
 * under any mount point stays under it; mapping back gives the same key; a path that maps
 * to a key maps back to the same path. */
#include <errno.h>

#include "fuzz.h"
#include "base/naming.h"
#include "base/util.h"

static void check_path(const char *p)
{
	size_t n = strlen(p);
	FUZZ_CHECK(p[0] == '/' && n <= 4095);
	if (n == 1)
		return;
	FUZZ_CHECK(p[n - 1] != '/');
	const char *seg = p + 1;
	for (;;) {
		const char *slash = strchr(seg, '/');
		size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
		FUZZ_CHECK(len > 0 && len <= 255);
		FUZZ_CHECK(!(len == 1 && seg[0] == '.'));
		FUZZ_CHECK(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
		FUZZ_CHECK(!(len >= 8 && memcmp(seg, ".ferryfs", 8) == 0));
		if (!slash)
			break;
		seg = slash + 1;
	}
	/* Resolved lexically under a mount point, the path never climbs out of it. */
	int depth = 0;
	for (const char *s = p + 1; *s;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);
		depth += (len == 2 && s[0] == '.' && s[1] == '.') ? -1 : 1;
		FUZZ_CHECK(depth > 0);
		s += len + (slash != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16 * 1024)
		return 0;
	const char *f[3];
	char *blk = fuzz_fields(data, size, f, 3);
	const char *prefix = f[0], *key = f[1];
	size_t outlen = f[2][0] ? (unsigned char)f[2][0] : NAME_MAX_PATH + 2;

	char path[NAME_MAX_PATH + 2];
	int rc = name_key_to_path(prefix, key, path, outlen);
	FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENAMETOOLONG);
	/* a buffer for the longest mount path is always enough */
	FUZZ_CHECK(outlen < NAME_MAX_PATH + 2 || rc != -ENAMETOOLONG);
	if (rc == -ENOENT)
		FUZZ_CHECK(strncmp(key, prefix, strlen(prefix)) != 0);
	if (rc == 0) {
		check_path(path);
		FUZZ_CHECK(name_path_ok(path));
		/* Back again: the key itself, or (a directory marker) the key less its '/'. */
		struct buf b = { 0 };
		size_t klen = strlen(key);
		int marker = klen > strlen(prefix) && key[klen - 1] == '/';
		FUZZ_CHECK(name_path_to_key(prefix, path, marker, &b) == 0);
		FUZZ_CHECK(b.data && strcmp(b.data, key) == 0);
		buf_free(&b);
	}

	/* The key bytes as a mount path. */
	struct buf b = { 0 };
	rc = name_path_to_key(prefix, key, 0, &b);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	FUZZ_CHECK((rc == 0) == name_path_ok(key));
	if (rc == 0) {
		check_path(key);
		FUZZ_CHECK(strncmp(b.data, prefix, strlen(prefix)) == 0);
		char back[4096];
		FUZZ_CHECK(name_key_to_path(prefix, b.data, back, sizeof(back)) == 0);
		FUZZ_CHECK(strcmp(back, key) == 0);
	}
	buf_free(&b);
	free(blk);
	return 0;
}
