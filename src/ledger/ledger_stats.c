/* ledger_stats.c - the ledger's counters (files and bytes per state, queue sizes, sequence
 * numbers), kept in the same transactions as the tables; ledger_stats, and ledger_check
 * which recounts them from the tables (also used by the schema upgrade).
 */
#include "ledger/ledger_int.h"

#include <errno.h>

#include "base/util.h"

const MDB_val lg_k_counters = { 8, "counters" };

void lg_counters_fresh(struct counters *c)
{
	memset(c, 0, sizeof(*c));
	c->v[C_JSEQ_NEXT] = 1;
	c->v[C_QSEQ_NEXT] = 1;
}

int lg_counters_read(MDB_txn *txn, MDB_dbi meta, struct counters *c)
{
	MDB_val v;
	int rc = lg_mrc(mdb_get(txn, meta, (MDB_val *)&lg_k_counters, &v));
	if (rc == MDB_NOTFOUND) {
		lg_counters_fresh(c);
		return 0;
	}
	if (rc)
		return rc;
	if (v.mv_size != sizeof(c->v))
		return -EIO;
	for (int i = 0; i < C_COUNT; i++)
		c->v[i] = get_le64((const unsigned char *)v.mv_data + 8 * i);
	return 0;
}

int lg_counters_write(MDB_txn *txn, MDB_dbi meta, const struct counters *c)
{
	unsigned char b[sizeof(c->v)];
	for (int i = 0; i < C_COUNT; i++)
		le64(b + 8 * i, c->v[i]);
	MDB_val v = { sizeof(b), b };
	return lg_mrc(mdb_put(txn, meta, (MDB_val *)&lg_k_counters, &v, 0));
}

int lg_cnt(struct wtx *w)
{
	if (w->loaded)
		return 0;
	int rc = lg_counters_read(w->txn, w->l->meta, &w->c);
	if (rc)
		return rc;
	w->loaded = true;
	return 0;
}

void lg_cadd(struct wtx *w, int idx, int64_t delta)
{
	uint64_t *v = &w->c.v[idx];
	if (delta < 0 && (uint64_t)-delta > *v)
		*v = 0; /* never wrap: ledger_check repairs a drift */
	else
		*v += (uint64_t)delta;
	w->dirty = true;
}

void lg_cfile(struct wtx *w, const struct ledger_file *rec, int sign)
{
	lg_cadd(w, C_FILES + rec->state, sign);
	lg_cadd(w, C_BYTES + rec->state, sign * (int64_t)rec->size);
}

/* Recount everything derivable from the tables into c (keeping failed_total from old). */
int lg_recount(struct ledger *l, MDB_txn *txn, const struct counters *old, struct counters *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;
	memset(c, 0, sizeof(*c));
	c->v[C_FAILED_TOTAL] = old->v[C_FAILED_TOTAL];
	if ((rc = lg_mrc(mdb_cursor_open(txn, l->files, &cur))))
		return rc;
	for (rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		struct ledger_file rec;
		if (lg_file_decode(v.mv_data, v.mv_size, &rec, NULL))
			continue; /* corrupt records count nowhere */
		c->v[C_FILES + rec.state]++;
		c->v[C_BYTES + rec.state] += rec.size;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	uint64_t maxseq = 0;
	if ((rc = lg_mrc(mdb_cursor_open(txn, l->queue, &cur))))
		return rc;
	for (rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST)); rc == 0;
	     rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		const unsigned char *p = k.mv_data;
		if (k.mv_size != QKEY_LEN)
			continue;
		if (p[0] == QBAND_COPYING)
			c->v[C_COPYING]++;
		else if (p[0] < LEDGER_NPRIO)
			c->v[C_QUEUED + p[0]]++;
		uint64_t s = get_be64(p + 9);
		if (s > maxseq)
			maxseq = s;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	c->v[C_QSEQ_NEXT] = maxseq + 1 > old->v[C_QSEQ_NEXT] ? maxseq + 1 : old->v[C_QSEQ_NEXT];
	c->v[C_JSEQ_NEXT] = old->v[C_JSEQ_NEXT] ? old->v[C_JSEQ_NEXT] : 1;
	if ((rc = lg_mrc(mdb_cursor_open(txn, l->journal, &cur))))
		return rc;
	rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_LAST));
	if (rc == 0 && k.mv_size == 8 && get_be64(k.mv_data) + 1 > c->v[C_JSEQ_NEXT])
		c->v[C_JSEQ_NEXT] = get_be64(k.mv_data) + 1;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Recount and rebuild all derived data in w (upgrade, ledger_check with fix). */
int lg_rebuild_derived(struct wtx *w)
{
	struct counters old, c;
	int rc = lg_counters_read(w->txn, w->l->meta, &old);
	if (rc == -EIO) {
		lg_counters_fresh(&old);
		rc = 0;
	}
	if (rc || (rc = lg_recount(w->l, w->txn, &old, &c)) || (rc = lg_jpath_rebuild(w)))
		return rc;
	w->c = c;
	w->loaded = w->dirty = true;
	return 0;
}

static void fill_counters(struct ledger_stats *st, const struct counters *c)
{
	st->files_total = st->bytes_total = 0;
	for (int i = 0; i < LEDGER_NSTATES; i++) {
		st->files[i] = c->v[C_FILES + i];
		st->bytes[i] = c->v[C_BYTES + i];
		st->files_total += st->files[i];
		st->bytes_total += st->bytes[i];
	}
	for (int i = 0; i < LEDGER_NPRIO; i++)
		st->queued[i] = c->v[C_QUEUED + i];
	st->copying = c->v[C_COPYING];
	st->failed_total = c->v[C_FAILED_TOTAL];
	st->journal_next_seq = c->v[C_JSEQ_NEXT];
}

static int stats_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct ledger_stats *st = arg;
	struct counters c;
	int rc = lg_counters_read(txn, l->meta, &c);
	if (rc)
		return rc;
	fill_counters(st, &c);
	MDB_stat ms;
	if ((rc = lg_mrc(mdb_stat(txn, l->journal, &ms))))
		return rc;
	st->journal_pending = ms.ms_entries;
	MDB_cursor *cur;
	if ((rc = lg_mrc(mdb_cursor_open(txn, l->journal, &cur))))
		return rc;
	MDB_val k, v;
	rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_FIRST));
	if (rc == 0 && k.mv_size == 8) {
		st->journal_oldest_seq = get_be64(k.mv_data);
		const unsigned char *p = v.mv_data;
		struct rd r = { .p = p, .end = p + v.mv_size };
		rd_u8(&r);
		rd_u8(&r);
		uint64_t t = rd_varint(&r);
		st->journal_oldest_ms = r.bad || t > INT64_MAX ? 0 : (int64_t)t;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	MDB_dbi all[] = { l->meta, l->files, l->inomap, l->queue, l->qidx, l->journal, l->jpath,
			  l->ckpt };
	uint64_t pages = 0;
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		if ((rc = lg_mrc(mdb_stat(txn, all[i], &ms))))
			return rc;
		pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
		if (all[i] == l->inomap)
			st->inomap_entries = ms.ms_entries;
	}
	st->page_size = ms.ms_psize;
	st->table_bytes = pages * ms.ms_psize;
	MDB_envinfo info;
	if ((rc = lg_mrc(mdb_env_info(l->env, &info))))
		return rc;
	st->map_size = info.me_mapsize;
	st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	st->schema = l->schema;
	return 0;
}

int ledger_stats(struct ledger *l, struct ledger_stats *st)
{
	memset(st, 0, sizeof(*st));
	return lg_read(l, stats_r, st);
}

struct check_arg {
	int diffs;
};

static int count_diffs(const struct counters *a, const struct counters *b)
{
	int d = 0;
	for (int i = 0; i < C_COUNT; i++)
		if (a->v[i] != b->v[i])
			d++;
	return d;
}

static int check_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct check_arg *a = arg;
	struct counters old, c;
	int rc = lg_counters_read(txn, l->meta, &old);
	if (rc || (rc = lg_recount(l, txn, &old, &c)))
		return rc;
	a->diffs = count_diffs(&old, &c);
	return 0;
}

static int check_w(struct wtx *w, void *arg)
{
	struct check_arg *a = arg;
	struct counters old;
	int rc = lg_counters_read(w->txn, w->l->meta, &old);
	if (rc == -EIO) {
		lg_counters_fresh(&old);
		old.v[C_JSEQ_NEXT] = old.v[C_QSEQ_NEXT] = 0;
	} else if (rc) {
		return rc;
	}
	if ((rc = lg_rebuild_derived(w)))
		return rc;
	a->diffs = count_diffs(&old, &w->c);
	return 0;
}

int ledger_check(struct ledger *l, bool fix)
{
	struct check_arg a = { 0 };
	int rc = fix ? lg_write(l, check_w, &a) : lg_read(l, check_r, &a);
	return rc ? rc : a.diffs;
}
