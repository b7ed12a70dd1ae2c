/* journal.h - the foreground half of write-back (spec 7): every change made through the
 * mount is recorded in the ledger's journal BEFORE it is made, so that no change S3 has
 * not received can be forgotten, even by a crash between the two. fs.c calls these; the
 * mirror (mirror.h) replays the journal to S3 and asks to be woken (jn_on_append).
 *
 * Busy paths: a path is busy from just before its entry is appended until the change is
 * made (jn_change .. jn_end), and while a handle that wrote to it is open (jn_open /
 * jn_write .. jn_release). The mirror never consumes the entry of a busy path (it journals
 * it again instead), so it never replays a change before the change is made, nor uploads a
 * file that is still being written and then forgets it. Data written is therefore
 * journaled once per open handle (at create, at an O_TRUNC open, or at the first write),
 * not per write(2).
 *
 * Revert: jn_set_readonly(1) makes every changing call fail with EROFS (reads go on).
 *
 * Locks: jn_lock protects the busy list (a leaf: nothing is called with it held). The
 * read-only flag is an atomic. */
#ifndef FERRY_JOURNAL_H
#define FERRY_JOURNAL_H

#include <stdint.h>

struct ferry;
struct jn_file;

/* Journal a change of path (path2: the new name of rename/link, the target of symlink)
 * before it is made, and mark the path(s) busy for this thread until jn_end. With no
 * ledger (tools) nothing is recorded. 0, -EROFS after a revert, or -EIO / -ENOSPC when
 * the ledger cannot record it: the change must then not be made (nothing unjournaled ever
 * reaches the new store), and jn_end is not needed. op is an enum ledger_op. */
int jn_change(struct ferry *fy, int op, const char *path, const char *path2);
/* The change begun by this thread's last successful jn_change was made (or failed). */
void jn_end(void);

/* -EROFS after a revert, else 0: for calls that journal nothing but must be refused
 * (setxattr of user xattrs, open for writing). */
int jn_writable(void);

/* Open for writing: a tracker for the handle (freed by jn_release). op (create, or write
 * for an O_TRUNC open; 0 = none) is journaled now and the handle is busy from the start;
 * call it before making the change. 0 / -EROFS / -ENOMEM / -EIO. */
int jn_open(struct ferry *fy, const char *path, int op, struct jn_file **out);
/* Before each write through the handle: the first one journals a WRITE and makes the
 * path busy; later ones cost one atomic load. path may be NULL (an unlinked file:
 * nothing to write back). 0, -EROFS, -errno. */
int jn_write(struct ferry *fy, struct jn_file *jf, const char *path);
/* Close: the path stops being busy; when it was renamed while open, its new name is
 * journaled. jf may be NULL. */
void jn_release(struct ferry *fy, struct jn_file *jf, const char *path);

/* 1 when path is busy (see above), else 0. handles: also count open handles that wrote
 * (0 after a revert: they cannot write any more). */
int jn_is_busy(const char *path, int handles);

/* Revert (spec 7): 1 = refuse every change with EROFS, 0 = accept again. */
void jn_set_readonly(int on);
int jn_readonly(void);

/* fn(fy) is called after each entry appended (cheap, any thread; NULL: none). The mirror
 * sets it when it starts, so that this module does not call the layer above it. */
void jn_on_append(void (*fn)(struct ferry *fy));

/* journal appends that failed (each refused its change with an error) */
uint64_t jn_errors(void);

#endif
