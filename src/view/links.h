/* links.h - the names of hard-linked files that the kernel may hold attributes for.
 *
 * With the path-based FUSE API every name is its own kernel inode, each with its own cached
 * attributes (attr_timeout). When unlink, rename over or link changes a file's link count,
 * the kernel learns the new count for the name the call was about, not for the file's other
 * names. This table remembers, for each file whose link count was seen above 1 (st_ino ->
 * the names getattr and readdirplus reported it under), so that fs.c can tell the kernel
 * to drop the other names' attributes (fuse_invalidate_path). doc/namespace.md.
 *
 * Bounded: at most max_names names and max_bytes bytes of paths; the least recently seen
 * name is forgotten first, and a forgotten name's attributes may then stay stale for up to
 * the attribute timeout, as without this table. A name of a file whose count is 1 is never
 * recorded: a file with one name has no other name to tell the kernel about.
 *
 * Thread-safe: one mutex per table, lk_lock, a leaf (nothing is called with it held; the
 * names to invalidate are handed back as copies, invalidated after it is released).
 * A NULL table is valid everywhere and records nothing. */
#ifndef FERRY_LINKS_H
#define FERRY_LINKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define LK_MAX_NAMES 16384
#define LK_MAX_BYTES (4u << 20)

struct lk_table;

/* Names handed back to the caller, which frees them with lk_names_free. */
struct lk_names {
	char **v;
	size_t n;
};

/* A table of at most max_names names and max_bytes bytes of paths; NULL when out of memory. */
struct lk_table *lk_new(size_t max_names, size_t max_bytes);
void lk_free(struct lk_table *t);

/* path was reported with st: recorded when st is not a directory and st_nlink > 1 (else
 * nothing happens, without taking the lock). Returns 0 or -ENOMEM. */
int lk_seen(struct lk_table *t, const char *path, const struct stat *st);
/* The same for entry name of directory dir (a readdirplus entry); -ENAMETOOLONG. */
int lk_seen_in(struct lk_table *t, const char *dir, const char *name, const struct stat *st);

/* path was unlinked: forget it; *out gets the other recorded names of its file. Returns
 * their count, or -ENOMEM (out empty; path is forgotten all the same). */
int lk_unlinked(struct lk_table *t, const char *path, struct lk_names *out);
/* from was linked to a new name: *out gets the other recorded names of from's file (the
 * new name is reported by the lookup that follows the link). Returns the count or -ENOMEM. */
int lk_linked(struct lk_table *t, const char *from, struct lk_names *out);
/* from was renamed to to (a file or a directory: names below from move too). A file to
 * replaced is forgotten and *out gets its other names, whose count fell. When from and to
 * were names of one file the rename changed nothing (POSIX) and neither does this.
 * Returns the count or -ENOMEM (the table is updated all the same). */
int lk_renamed(struct lk_table *t, const char *from, const char *to, struct lk_names *out);

void lk_names_free(struct lk_names *names);

/* For tests: how many names are recorded; the file path was recorded for (0 or -ENOENT). */
size_t lk_count(struct lk_table *t);
int lk_ino(struct lk_table *t, const char *path, uint64_t *ino);

#endif
