/* naming.h - the mapping between mount paths and S3 keys (spec section 2), in one place.
 *
 * A path "/a/b" is the key PREFIX + "a/b". A key that cannot be a POSIX path (an empty,
 * "." or ".." segment, a segment over 255 bytes, a path over NAME_MAX_PATH bytes, a NUL
 * byte, or a segment beginning with the reserved ".ferryfs") is *unreachable*: never shown, never
 * mapped, so no key can ever name a path outside the mount. Pure functions. */
#ifndef FERRY_NAMING_H
#define FERRY_NAMING_H

#include <stddef.h>

#include "base/util.h"

#define NAME_MAX_SEGMENT 255
/* The longest mount path from the mount's root. The kernel hands over a path of up to
 * 4095 bytes from the directory a call is made in, which may itself lie deep: 16383
 * leaves 12288 bytes for that directory. */
#define NAME_MAX_PATH 16383
/* S3 keys are at most 1024 bytes (UTF-8): a longer path is never looked for in S3 and
 * is not written back (counted, and shown in user.ferryfs.error) */
#define NAME_S3_KEY_MAX 1024
#define NAME_RESERVED ".ferryfs"

/* 1 when seg[0..len) begins with the reserved prefix ".ferryfs". */
int name_is_reserved(const char *seg, size_t len);

/* 1 when seg[0..len) can be a name in the mount: non-empty, not "." or "..", at most 255
 * bytes, no '/' and no NUL, not reserved. */
int name_segment_ok(const char *seg, size_t len);

/* 1 when path is a valid mount path: "/" or "/seg(/seg)*" with every segment ok and at
 * most NAME_MAX_PATH bytes. */
int name_path_ok(const char *path);

/* 1 when path has a segment over 255 bytes or is over NAME_MAX_PATH bytes long: what a call on it
 * answers with ENAMETOOLONG (any other path that is not ok does not exist: ENOENT). */
int name_too_long(const char *path);

/* Key for a mount path: PREFIX + path without its leading '/'; "/" maps to PREFIX.
 * dir_marker appends '/' (the directory marker object of a directory). Appends to out.
 * 0 / -EINVAL (path not ok) / -ENOMEM. */
int name_path_to_key(const char *prefix, const char *path, int dir_marker, struct buf *out);

/* Mount path for a key. A key ending in '/' is a directory marker and maps to the
 * directory's path. Writes the path into out (outlen bytes, NAME_MAX_PATH + 2 is always enough).
 * 0 / -ENOENT (the key is not under the prefix) / -EINVAL (unreachable) / -ENAMETOOLONG. */
int name_key_to_path(const char *prefix, const char *key, char *out, size_t outlen);

#endif
