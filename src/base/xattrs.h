/* xattrs.h - the names of the user.ferryfs.* control plane (spec 8), in one table: which
 * are read and which are written, on which paths, and which module answers each. The FUSE
 * layer dispatches from it (fuse/xattr.c), listxattr lists from it, and `ferryctl show`
 * prints from it; nothing else spells the names out. Pure data: no dependency. */
#ifndef FERRY_XATTRS_H
#define FERRY_XATTRS_H

#include <stddef.h>

#define XA_PREFIX "user.ferryfs."

#define XA_GET 0x1u    /* readable (getxattr); else ENODATA */
#define XA_SET 0x2u    /* writable (setxattr); else EROFS */
#define XA_PATH 0x4u   /* describes any path: listed (xattr_list=1) and shown by ferryctl */
#define XA_ROOT 0x8u   /* read on the mount root only (elsewhere ENODATA) */

/* Who answers a name (fuse/xattr.c calls the module). */
enum xa_owner {
	XA_VIEW,       /* the merged view and the ledger's record (fuse/xattr.c itself) */
	XA_MIRROR,     /* write-back: mirror_getxattr / mirror_control */
	XA_MIGRATOR,   /* migrator and crawl: mig_getxattr / mig_control */
	XA_FLEET,      /* finish: fleet_control */
};

struct xa_name {
	const char *name;      /* without XA_PREFIX */
	unsigned flags;        /* XA_* */
	enum xa_owner owner;
};

extern const struct xa_name xa_names[];
extern const size_t xa_count;

/* The entry of name (without the prefix), NULL for a name that is not ours. */
const struct xa_name *xa_find(const char *name);

/* name without XA_PREFIX when it has the prefix, else NULL. */
const char *xa_strip(const char *name);

#endif
