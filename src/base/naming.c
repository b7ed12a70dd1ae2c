/* naming.c - mount paths <-> S3 keys (see naming.h). Never maps a key outside the mount. */
#include "base/naming.h"

#include <errno.h>
#include <string.h>

int name_is_reserved(const char *seg, size_t len)
{
	size_t r = sizeof(NAME_RESERVED) - 1;
	return len >= r && memcmp(seg, NAME_RESERVED, r) == 0;
}

int name_segment_ok(const char *seg, size_t len)
{
	if (len == 0 || len > NAME_MAX_SEGMENT)
		return 0;
	if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
		return 0;
	if (memchr(seg, '/', len) || memchr(seg, '\0', len))
		return 0;
	return !name_is_reserved(seg, len);
}

int name_path_ok(const char *path)
{
	size_t n = strlen(path);
	if (n == 0 || path[0] != '/' || n > NAME_MAX_PATH)
		return 0;
	if (n == 1)
		return 1;
	const char *p = path + 1;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (!name_segment_ok(p, len))
			return 0;
		if (!slash)
			return 1;
		p = slash + 1;
	}
}

int name_too_long(const char *path)
{
	size_t n = strlen(path);
	if (n > NAME_MAX_PATH)
		return 1;
	for (const char *p = path; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len > NAME_MAX_SEGMENT)
			return 1;
		if (!slash)
			break;
		p = slash + 1;
	}
	return 0;
}

int name_path_to_key(const char *prefix, const char *path, int dir_marker, struct buf *out)
{
	if (!name_path_ok(path))
		return -EINVAL;
	int rc = buf_puts(out, prefix);
	if (!rc && path[1])
		rc = buf_puts(out, path + 1);
	if (!rc && dir_marker && path[1])
		rc = buf_puts(out, "/");
	return rc;
}

int name_key_to_path(const char *prefix, const char *key, char *out, size_t outlen)
{
	size_t plen = strlen(prefix);
	if (strncmp(key, prefix, plen) != 0)
		return -ENOENT;
	const char *rel = key + plen;
	size_t n = strlen(rel);
	if (n && rel[n - 1] == '/')
		n--;                  /* a directory marker names its directory */
	if (n + 2 > outlen || n + 1 > NAME_MAX_PATH)
		return n + 1 > NAME_MAX_PATH ? -EINVAL : -ENAMETOOLONG;
	out[0] = '/';
	memcpy(out + 1, rel, n);
	out[n + 1] = '\0';
	if (n == 0)
		return rel[0] == '/' ? -EINVAL : 0;   /* "PREFIX/" has an empty segment */
	return name_path_ok(out) ? 0 : -EINVAL;
}
