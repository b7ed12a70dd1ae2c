/* whiteout.h - the markers that live on the new store so that every host sees them
 * (spec section 3):
 *   whiteout of name N in directory D:  D/.ferryfs.wh.<SHA-256 of N in hex>
 *       (a fixed-length name, so a name of any legal length can be whited out; the file
 *        holds N itself, for `ferryctl finish` and `scan`)
 *   opaque directory D:                 D/.ferryfs.opaque
 * Both begin with the reserved ".ferryfs", so the mount never shows them. Each marker
 * is one NFS file, created and removed atomically: hosts never rewrite a shared list. */
#ifndef FERRY_WHITEOUT_H
#define FERRY_WHITEOUT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define WH_PREFIX ".ferryfs.wh."
#define WH_OPAQUE ".ferryfs.opaque"
#define WH_TMP_PREFIX ".ferryfs.tmp."
/* a file still open when its name went (ns.c, "<dir>/.ferryfs.hidden.<host>.<pid>.<hex>") */
#define WH_HIDDEN_PREFIX ".ferryfs.hidden."

/* The marker path whiting out `path` (its parent + "/.ferryfs.wh.<hex>"). out >= 4200. */
int wh_marker_path(const char *path, char *out, size_t outlen);

/* 1 when path is whited out in its parent on the new store, 0 when not, -errno on error. */
int wh_is_whiteout(struct store *nfs, const char *path);
/* White path out (its parent must exist on the new store). 0 / -errno; EEXIST is 0. */
int wh_create(struct store *nfs, const char *path);
/* Remove path's whiteout if there is one. 0 / -errno (ENOENT is 0). */
int wh_remove(struct store *nfs, const char *path);

/* 1 when the directory is opaque on the new store, 0 when not, -errno on error. */
int wh_is_opaque(struct store *nfs, const char *dir);
int wh_make_opaque(struct store *nfs, const char *dir);

/* 1 when path is hidden on the new store by a marker of its own or of an ancestor: it or
 * an ancestor is whited out, or an ancestor directory is opaque (what the kernel's lookup
 * of each ancestor would find). 0 when not, -errno on error. Two NFS calls per level: for
 * the rare paths where it matters (a copy of a queued file that S3 still has failed with
 * ENOENT; ferryctl finish). */
int wh_is_hidden(struct store *nfs, const char *path);

/* Remove every marker directly inside dir (before an rmdir of an empty-looking directory). */
int wh_clear_dir(struct store *nfs, const char *dir);

#endif
