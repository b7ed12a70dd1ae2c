/* journal.c - record every change made through the mount in the ledger's journal before
 * the change is made, and say which paths are busy (journal.h has the rules,
 * doc/mirror.md the design).
 *
 * It never makes a change itself and never talks to a store: it appends to the ledger,
 * keeps the busy list and tells whoever consumes the journal (jn_on_append: the mirror).
 *
 * Locks: jn_lock (a leaf) protects the busy list and the path strings in it. */
#include "writeback/journal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "view/ferry.h"
#include "ledger/ledger.h"
#include "base/log.h"

/* One busy path: a change in progress, or a handle that wrote. */
struct busy {
	char *path;                   /* protected by jn_lock */
	struct busy *prev, *next;     /* protected by jn_lock */
	bool listed;
	bool handle;                  /* an open handle that wrote, not a change in progress */
};

struct jn_file {
	atomic_int dirty;             /* 0 clean, 1 being journaled (others wait), 2 journaled */
	struct busy b;
};

static pthread_mutex_t jn_lock = PTHREAD_MUTEX_INITIALIZER;  /* busy list and its paths; leaf */
static struct busy *busy_head;        /* protected by jn_lock */
static atomic_int jn_ro;
static atomic_uint_fast64_t jn_errs;
static void (*_Atomic jn_appended)(struct ferry *fy);   /* jn_on_append */
static __thread struct busy tl_busy[2];   /* this thread's change in progress */

int jn_writable(void)
{
	return atomic_load_explicit(&jn_ro, memory_order_relaxed) ? -EROFS : 0;
}

void jn_set_readonly(int on)
{
	atomic_store(&jn_ro, on ? 1 : 0);
}

int jn_readonly(void)
{
	return atomic_load(&jn_ro);
}

uint64_t jn_errors(void)
{
	return atomic_load(&jn_errs);
}

/* List b under path (copied). 0 / -ENOMEM. */
static int busy_add(struct busy *b, const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&jn_lock);
	b->path = p;
	b->prev = NULL;
	b->next = busy_head;
	if (busy_head)
		busy_head->prev = b;
	busy_head = b;
	b->listed = true;
	pthread_mutex_unlock(&jn_lock);
	return 0;
}

static void busy_del(struct busy *b)
{
	if (!b->listed)
		return;
	pthread_mutex_lock(&jn_lock);
	if (b->prev)
		b->prev->next = b->next;
	else
		busy_head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->listed = false;
	char *p = b->path;
	b->path = NULL;
	pthread_mutex_unlock(&jn_lock);
	free(p);
}

int jn_is_busy(const char *path, int handles)
{
	int found = 0;
	pthread_mutex_lock(&jn_lock);
	for (struct busy *b = busy_head; b && !found; b = b->next)
		found = (handles || !b->handle) && !strcmp(b->path, path);
	pthread_mutex_unlock(&jn_lock);
	return found;
}

static int append(struct ferry *fy, int op, const char *path, const char *path2)
{
	struct ledger_jentry e = { .op = op, .path = path, .path2 = path2 };
	int rc = ledger_journal_append(fy->ledger, &e, NULL);
	if (rc) {
		atomic_fetch_add(&jn_errs, 1);
		log_err("journal: cannot record %s of %s: %s (the change is refused)",
			ledger_op_name(op), path, strerror(-rc));
		return rc == -ENOSPC ? rc : -EIO;
	}
	void (*wake)(struct ferry *) = atomic_load(&jn_appended);
	if (wake)
		wake(fy);
	return 0;
}

void jn_on_append(void (*fn)(struct ferry *fy))
{
	atomic_store(&jn_appended, fn);
}

int jn_change(struct ferry *fy, int op, const char *path, const char *path2)
{
	int rc = jn_writable();
	if (rc || !path || !fy->ledger)
		return rc;    /* no path: an unlinked open file, no name left to write back */
	int two = path2 && path2[0] == '/' && op != LEDGER_OP_SYMLINK;
	if ((rc = busy_add(&tl_busy[0], path)))
		return rc;
	if (two && (rc = busy_add(&tl_busy[1], path2))) {
		busy_del(&tl_busy[0]);
		return rc;
	}
	if ((rc = append(fy, op, path, path2)))
		jn_end();
	return rc;
}

void jn_end(void)
{
	busy_del(&tl_busy[0]);
	busy_del(&tl_busy[1]);
}

/* Journal op for the handle, its path busy first. */
static int file_begin(struct ferry *fy, struct jn_file *jf, int op, const char *path)
{
	int rc = busy_add(&jf->b, path);
	if (rc)
		return rc;
	if ((rc = append(fy, op, path, NULL))) {
		busy_del(&jf->b);
		return rc;
	}
	return 0;
}

int jn_open(struct ferry *fy, const char *path, int op, struct jn_file **out)
{
	int rc = jn_writable();
	if (rc)
		return rc;
	struct jn_file *jf = calloc(1, sizeof(*jf));
	if (!jf)
		return -ENOMEM;
	jf->b.handle = true;
	if (op && fy->ledger) {
		if ((rc = file_begin(fy, jf, op, path))) {
			free(jf);
			return rc;
		}
		atomic_store(&jf->dirty, 2);
	}
	*out = jf;
	return 0;
}

int jn_write(struct ferry *fy, struct jn_file *jf, const char *path)
{
	int rc = jn_writable();
	if (rc || !jf || !path || !fy->ledger)
		return rc;
	/* 0 clean, 1 being journaled by another thread writing through the handle, 2 dirty */
	for (;;) {
		int s = atomic_load_explicit(&jf->dirty, memory_order_acquire);
		if (s == 2)
			return 0;
		if (s == 0 && atomic_compare_exchange_strong(&jf->dirty, &s, 1)) {
			rc = file_begin(fy, jf, LEDGER_OP_WRITE, path);
			atomic_store(&jf->dirty, rc ? 0 : 2);
			return rc;
		}
		sched_yield();    /* rare and short: the other thread's one commit */
	}
}

void jn_release(struct ferry *fy, struct jn_file *jf, const char *path)
{
	if (!jf)
		return;
	int renamed = 0;
	if (atomic_load(&jf->dirty)) {
		pthread_mutex_lock(&jn_lock);
		renamed = path && jf->b.path && strcmp(path, jf->b.path);
		pthread_mutex_unlock(&jn_lock);
	}
	/* renamed while open: the entry of the old name is replayed by state (the rename's
	 * own entry covers both names), but the new name needs the final bytes. After a
	 * revert nothing can have been written since. */
	if (renamed && !jn_readonly() && fy->ledger)
		append(fy, LEDGER_OP_WRITE, path, NULL);
	busy_del(&jf->b);
	free(jf);
}
