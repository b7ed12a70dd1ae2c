/* xattr.h - the user.ferryfs.* control plane of the mount (spec 8), driven by the table of
 * names in base/xattrs.h. fs.c hands it every getxattr, setxattr and removexattr of a name
 * with the prefix (name given without it), and every listxattr. Each returns 0, a length
 * (get, list), or -errno: ENODATA for a name that is not ours or not readable here, EROFS
 * for a name that is not writable, EINVAL for a bad value, ERANGE for a short buffer. */
#ifndef FERRY_XATTR_H
#define FERRY_XATTR_H

#include <stddef.h>

struct ferry;

int fx_get(struct ferry *fy, const char *path, const char *name, char *out, size_t size);
int fx_set(struct ferry *fy, const char *path, const char *name, const char *value,
	   size_t size);
/* No name of ours can be removed: EROFS; ENODATA for the others. */
int fx_remove(const char *name);
/* listxattr: our names that path has a value for (with xattr_list=1), then the new store's
 * of a path it serves. */
int fx_list(struct ferry *fy, const char *path, char *out, size_t size);

#endif
