/* ledger_journal.c - the journal of changes made through the mount (seq -> entry) and its
 * path index (path -> number of entries still naming it).
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

static bool op_has_path2(int op)
{
	return op == LEDGER_OP_RENAME || op == LEDGER_OP_LINK || op == LEDGER_OP_SYMLINK;
}

static bool op_indexes_path2(int op)
{
	return op == LEDGER_OP_RENAME || op == LEDGER_OP_LINK;
}

/* Add delta to the pending count of path in jpath. */
static int jpath_add(struct wtx *w, const char *path, int delta)
{
	struct pkey k;
	int rc = lg_pkey_make(path, &k);
	if (rc)
		return rc;
	MDB_val key = lg_pkey_val(&k), v;
	uint32_t count = 0;
	rc = lg_mrc(mdb_get(w->txn, w->l->jpath, &key, &v));
	if (rc == 0 && v.mv_size == 4)
		memcpy(&count, v.mv_data, 4);
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (delta < 0 && (uint32_t)-delta >= count) {
		rc = lg_mrc(mdb_del(w->txn, w->l->jpath, &key, NULL));
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	count += (uint32_t)delta;
	v = (MDB_val){ 4, &count };
	return lg_mrc(mdb_put(w->txn, w->l->jpath, &key, &v, 0));
}

int lg_jpath_entry(struct wtx *w, const struct ledger_jentry *e, int delta)
{
	int rc = jpath_add(w, e->path, delta);
	if (rc == 0 && e->path2 && op_indexes_path2(e->op) && e->path2[0] == '/')
		rc = jpath_add(w, e->path2, delta);
	return rc;
}

/* Rebuild the path -> pending-count index from the journal. */
int lg_jpath_rebuild(struct wtx *w)
{
	int rc = lg_mrc(mdb_drop(w->txn, w->l->jpath, 0));
	if (rc)
		return rc;
	char *path = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!path)
		return -ENOMEM;
	MDB_cursor *cur;
	MDB_val k, v;
	if ((rc = lg_mrc(mdb_cursor_open(w->txn, w->l->journal, &cur))))
		goto out_path;
	for (rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		struct ledger_jentry e;
		if (lg_journal_decode(v.mv_data, v.mv_size, &e, path, path + LEDGER_PATH_MAX + 1))
			continue;
		if ((rc = lg_jpath_entry(w, &e, +1)))
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
out_path:
	free(path);
	return rc;
}

static const char *const op_names[] = {
	NULL, "write", "create", "unlink", "rename", "mkdir", "rmdir", "chmod", "chown",
	"utimens", "symlink", "link", "truncate"
};

const char *ledger_op_name(int op)
{
	return op >= LEDGER_OP_WRITE && op <= LEDGER_OP_MAX ? op_names[op] : "?";
}

static int journal_append_w(struct wtx *w, void *arg)
{
	struct ledger_jentry *e = arg;
	unsigned char buf[2 * (LEDGER_PATH_MAX + 16) + 128];
	struct wr wb = { .p = buf, .cap = sizeof(buf) };
	int rc = lg_journal_encode(e, &wb);
	if (rc || (rc = lg_cnt(w)))
		return rc;
	e->seq = w->c.v[C_JSEQ_NEXT]++;
	w->dirty = true;
	unsigned char kb[8];
	be64(kb, e->seq);
	MDB_val k = { 8, kb }, v = { wb.len, buf };
	if ((rc = lg_mrc(mdb_put(w->txn, w->l->journal, &k, &v, MDB_APPEND))))
		return rc;
	return lg_jpath_entry(w, e, +1);
}

int ledger_journal_append(struct ledger *l, struct ledger_jentry *e, uint64_t *seq)
{
	size_t n;
	int rc = lg_check_path(e->path, &n);
	if (rc)
		return rc;
	if (e->op < LEDGER_OP_WRITE || e->op > LEDGER_OP_MAX)
		return -EINVAL;
	if (op_has_path2(e->op) != (e->path2 != NULL))
		return -EINVAL;
	if (e->path2) {
		if (op_indexes_path2(e->op) && (rc = lg_check_path(e->path2, &n)))
			return rc;
		if (strnlen(e->path2, LEDGER_PATH_MAX + 1) > LEDGER_PATH_MAX)
			return -ENAMETOOLONG;
	}
	if (e->time_ms <= 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		e->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	rc = lg_write(l, journal_append_w, e);
	if (rc == 0 && seq)
		*seq = e->seq;
	return rc;
}

struct jwalk {
	uint64_t from;
	size_t want;         /* entries still wanted (SIZE_MAX = no limit) */
	struct buf arena;    /* [u64 seq][u32 len][value] ... */
	size_t count;
	bool done;
};

static int jwalk_chunk_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct jwalk *jw = arg;
	MDB_cursor *cur;
	int rc = lg_mrc(mdb_cursor_open(txn, l->journal, &cur));
	if (rc)
		return rc;
	unsigned char kb[8];
	be64(kb, jw->from);
	MDB_val k = { 8, kb }, v;
	buf_reset(&jw->arena);
	jw->count = 0;
	for (rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)); rc == 0;
	     rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (jw->count == CHUNK || jw->count == jw->want)
			break;
		if (k.mv_size != 8)
			continue;
		uint64_t seq = get_be64(k.mv_data);
		uint32_t len = (uint32_t)v.mv_size;
		if (buf_append(&jw->arena, &seq, 8) || buf_append(&jw->arena, &len, 4) ||
		    buf_append(&jw->arena, v.mv_data, len)) {
			rc = -ENOMEM;
			break;
		}
		jw->count++;
		jw->from = seq + 1;
	}
	if (rc == MDB_NOTFOUND) {
		jw->done = true;
		rc = 0;
	}
	mdb_cursor_close(cur);
	return rc;
}

int ledger_journal_foreach(struct ledger *l, uint64_t from_seq, size_t max,
			   ledger_journal_cb cb, void *arg)
{
	struct jwalk jw = { .from = from_seq, .want = max ? max : SIZE_MAX };
	char *paths = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!paths)
		return -ENOMEM;
	int rc = 0;
	while (!jw.done && jw.want > 0 && rc == 0) {
		if ((rc = lg_read(l, jwalk_chunk_r, &jw)))
			break;
		if (jw.count == 0)
			break;
		jw.want -= jw.count;
		const char *p = jw.arena.data, *end = p + jw.arena.len;
		while (p < end && rc == 0) {
			uint64_t seq;
			uint32_t len;
			memcpy(&seq, p, 8);
			memcpy(&len, p + 8, 4);
			struct ledger_jentry e;
			rc = lg_journal_decode(p + 12, len, &e, paths, paths + LEDGER_PATH_MAX + 1);
			p += 12 + len;
			if (rc) {
				log_err("ledger: journal entry %" PRIu64 " is corrupt", seq);
				break;
			}
			e.seq = seq;
			rc = cb(&e, arg);
		}
	}
	buf_free(&jw.arena);
	free(paths);
	return rc;
}

struct jdel_arg {
	uint64_t upto;
	int deleted;
	bool more;
	char *paths;
};

static int journal_delete_w(struct wtx *w, void *arg)
{
	struct jdel_arg *a = arg;
	MDB_cursor *cur;
	int rc = lg_mrc(mdb_cursor_open(w->txn, w->l->journal, &cur));
	if (rc)
		return rc;
	MDB_val k, v;
	int n = 0;
	a->more = false;
	/* we delete from the front, so the first entry is always the next one */
	for (rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST))) {
		if (k.mv_size == 8 && get_be64(k.mv_data) > a->upto)
			break;
		if (n == JDEL_BATCH) {
			a->more = true;
			break;
		}
		struct ledger_jentry e;
		char *p2 = a->paths + LEDGER_PATH_MAX + 1;
		if (lg_journal_decode(v.mv_data, v.mv_size, &e, a->paths, p2) == 0) {
			if ((rc = lg_jpath_entry(w, &e, -1)))
				break;
		} else {
			log_warn("ledger: deleting a corrupt journal entry");
		}
		if ((rc = lg_mrc(mdb_cursor_del(cur, 0))))
			break;
		n++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc)
		return rc;
	a->deleted = n;
	return 0;
}

int ledger_journal_delete_upto(struct ledger *l, uint64_t upto)
{
	struct jdel_arg a = { .upto = upto };
	a.paths = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!a.paths)
		return -ENOMEM;
	int total = 0, rc;
	do {
		if ((rc = lg_write(l, journal_delete_w, &a)))
			break;
		total += a.deleted;
	} while (a.more);
	free(a.paths);
	return rc ? rc : total;
}

struct jpend_arg {
	struct pkey k;
	uint32_t count;
};

static int journal_pending_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct jpend_arg *a = arg;
	MDB_val k = lg_pkey_val(&a->k), v;
	int rc = lg_mrc(mdb_get(txn, l->jpath, &k, &v));
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return -EIO;
	memcpy(&a->count, v.mv_data, 4);
	return 0;
}

int ledger_journal_pending(struct ledger *l, const char *path)
{
	struct jpend_arg a = { .count = 0 };
	int rc = lg_pkey_make(path, &a.k);
	if (rc || (rc = lg_read(l, journal_pending_r, &a)))
		return rc;
	return a.count > INT_MAX ? INT_MAX : (int)a.count;
}
