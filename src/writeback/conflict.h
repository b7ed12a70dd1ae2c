/* conflict.h - a file changed both on the new store and, by a host still on S3, in S3:
 * both versions are kept. Called by the mirror (its upload met another version in S3) and
 * by revalidation (src/migrate/fleet.c). */
#ifndef FERRY_CONFLICT_H
#define FERRY_CONFLICT_H

#include <stddef.h>
#include <stdint.h>

#include "view/route.h"

/* The name S3's version of path gets beside it: "PATH.conflict-s3-<first 8 of etag>".
 * 0 / -ENAMETOOLONG. */
int conflict_name(const char *path, const char *etag, char *out, size_t outlen);

#define CONFLICT_JOURNAL_OURS 1u   /* journal path too (its upload is not under way) */

/* S3 holds the object of path at etag (size bytes), another version than the ledger
 * records for the file on the new store, whatever its state (migrated, modified,
 * nfs-only, conflict). If the new store's file holds exactly those bytes, the ledger only
 * takes the ETag. Else S3's version is copied to conflict_name() beside it (if that name
 * is free), the copy is journaled (the mirror uploads it under its own key), the record
 * becomes `conflict` with etag and user.ferryfs.error naming the copy, and, with
 * CONFLICT_JOURNAL_OURS, path is journaled so ours goes back over the key. Afterwards the
 * ledger records etag: the caller may overwrite that version. 0 / -errno (nothing
 * recorded: S3's version is still only in S3). who: the caller's LEDGER_BY_* bit (the
 * ledger's event `conflict`). */
int conflict_keep_both(struct route *r, const char *path, const char *etag, uint64_t size,
		       unsigned flags, unsigned who);

/* Conflicts recorded by this process. */
uint64_t conflict_count(void);

#endif
