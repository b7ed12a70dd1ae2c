/* fs.h - the FUSE operations: where every call from the kernel lands (fs.c). They ask
 * route.c which store serves a path and then talk to that store; nothing else here. */
#ifndef FERRY_FS_H
#define FERRY_FS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>

#include "view/ferry.h"

/* The operation table handed to fuse_new; private data must be a struct ferry. */
const struct fuse_operations *fs_operations(void);

#endif
