/* ledger_queue.c - the migration queue: entries keyed (priority, not-before, sequence) with
 * a path index, and the queue operations, each of which also moves the file's state.
 */
#include "ledger/ledger_int.h"

#include <errno.h>

static void qent_key(const struct qent *q, unsigned char k[QKEY_LEN])
{
	if (q->copying)
		lg_qkey(k, QBAND_COPYING, 0, q->seq);
	else
		lg_qkey(k, (unsigned)q->prio, (uint64_t)q->not_before, q->seq);
}

/* 0, MDB_NOTFOUND or -EIO */
int lg_q_get(struct ledger *l, MDB_txn *txn, const struct pkey *k, struct qent *q)
{
	MDB_val key = lg_pkey_val(k), v;
	int rc = lg_mrc(mdb_get(txn, l->qidx, &key, &v));
	if (rc)
		return rc;
	const unsigned char *p = v.mv_data;
	if (v.mv_size != QKEY_LEN || (p[0] & 0x7f) >= LEDGER_NPRIO)
		return -EIO;
	q->prio = p[0] & 0x7f;
	q->copying = p[0] & 0x80;
	q->not_before = (time_t)get_be64(p + 1);
	q->seq = get_be64(p + 9);
	return 0;
}

/* Write the queue entry and its index for path (the old one must be gone). */
int lg_q_put(struct wtx *w, const struct pkey *k, const char *path, const struct qent *q)
{
	unsigned char qk[QKEY_LEN], iv[QKEY_LEN];
	qent_key(q, qk);
	iv[0] = (unsigned char)(q->prio | (q->copying ? 0x80 : 0));
	be64(iv + 1, (uint64_t)q->not_before);
	be64(iv + 9, q->seq);
	MDB_val key = { QKEY_LEN, qk }, v = { strlen(path), (void *)path };
	int rc = lg_mrc(mdb_put(w->txn, w->l->queue, &key, &v, 0));
	if (rc)
		return rc;
	key = lg_pkey_val(k);
	v = (MDB_val){ QKEY_LEN, iv };
	if ((rc = lg_mrc(mdb_put(w->txn, w->l->qidx, &key, &v, 0))))
		return rc;
	if ((rc = lg_cnt(w)))
		return rc;
	lg_cadd(w, q->copying ? C_COPYING : C_QUEUED + q->prio, +1);
	return 0;
}

/* Delete the queue entry q (of path key k) and, with index, its index entry. */
int lg_q_del(struct wtx *w, const struct pkey *k, const struct qent *q, bool index)
{
	unsigned char qk[QKEY_LEN];
	qent_key(q, qk);
	MDB_val key = { QKEY_LEN, qk };
	int rc = lg_mrc(mdb_del(w->txn, w->l->queue, &key, NULL));
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (index) {
		key = lg_pkey_val(k);
		rc = lg_mrc(mdb_del(w->txn, w->l->qidx, &key, NULL));
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	if ((rc = lg_cnt(w)))
		return rc;
	lg_cadd(w, q->copying ? C_COPYING : C_QUEUED + q->prio, -1);
	return 0;
}


struct queue_arg {
	const char *path;
	struct pkey k;
	int prio;
	bool copying;
	time_t now, not_before, next_at;
	char *out;
	size_t size;
	const char *error;
};

static int queue_push_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = lg_q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0) {
		if (q.copying || q.prio <= a->prio)
			return 0;
		if ((rc = lg_q_del(w, &a->k, &q, false)))
			return rc;
	} else if (rc != MDB_NOTFOUND && rc != -EIO) {
		return rc;
	}
	if ((rc = lg_cnt(w)))
		return rc;
	q = (struct qent){ .prio = a->prio, .seq = w->c.v[C_QSEQ_NEXT]++ };
	w->dirty = true;
	if ((rc = lg_q_put(w, &a->k, a->path, &q)) ||
	    (rc = lg_file_transition(w, &a->k, a->path, LEDGER_EV_QUEUE, 0, NULL)))
		return rc;
	return 1;
}

int ledger_queue_push(struct ledger *l, const char *path, int prio)
{
	struct queue_arg a = { .path = path, .prio = prio };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	if (prio < 0 || prio >= LEDGER_NPRIO)
		return -EINVAL;
	return lg_write(l, queue_push_w, &a);
}

struct push_many_arg {
	size_t n;
	const char *const *paths;
	int prio;
};

static int queue_push_many_w(struct wtx *w, void *arg)
{
	struct push_many_arg *a = arg;
	int queued = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct queue_arg q = { .path = a->paths[i], .prio = a->prio };
		int rc = lg_pkey_make(q.path, &q.k);
		if (!rc)
			rc = queue_push_w(w, &q);
		if (rc < 0)
			return rc;
		queued += rc;
	}
	return queued;
}

int ledger_queue_push_many(struct ledger *l, size_t n, const char *const *paths, int prio)
{
	if (prio < 0 || prio >= LEDGER_NPRIO)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int rc = lg_check_path(paths[i], &len);
		if (rc)
			return rc;
	}
	if (n == 0)
		return 0;
	struct push_many_arg a = { n, paths, prio };
	return lg_write(l, queue_push_many_w, &a);
}

static int queue_pop_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	MDB_cursor *cur;
	int rc = lg_mrc(mdb_cursor_open(w->txn, w->l->queue, &cur));
	if (rc)
		return rc;
	a->next_at = 0;
	struct qent q = { .prio = -1 };
	size_t plen = 0;
	for (int p = 0; p < LEDGER_NPRIO; p++) {
		unsigned char start[QKEY_LEN];
		lg_qkey(start, (unsigned)p, 0, 0);
		MDB_val k = { QKEY_LEN, start }, v;
		rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
		if (rc == MDB_NOTFOUND)
			break;
		if (rc)
			goto out_cursor;
		const unsigned char *kp = k.mv_data;
		if (k.mv_size != QKEY_LEN || kp[0] != p)
			continue;
		time_t nb = (time_t)get_be64(kp + 1);
		if (nb > a->now) {
			if (!a->next_at || nb < a->next_at)
				a->next_at = nb;
			continue;
		}
		plen = v.mv_size;
		if (plen == 0 || plen > LEDGER_PATH_MAX) {
			rc = -EIO;
			goto out_cursor;
		}
		if (plen >= a->size) {
			rc = -ERANGE;
			goto out_cursor;
		}
		memcpy(a->out, v.mv_data, plen); /* before any write moves the page */
		a->out[plen] = '\0';
		q = (struct qent){ .prio = p, .not_before = nb, .seq = get_be64(kp + 9) };
		break;
	}
	rc = 0;
	mdb_cursor_close(cur);
	if (q.prio < 0)
		return 0;
	struct pkey pk;
	if ((rc = lg_pkey_make(a->out, &pk)) || (rc = lg_q_del(w, &pk, &q, false)))
		return rc;
	a->prio = q.prio;
	q.copying = true;
	q.not_before = 0;
	if ((rc = lg_q_put(w, &pk, a->out, &q)) ||
	    (rc = lg_file_transition(w, &pk, a->out, LEDGER_EV_TAKE, 0, NULL)))
		return rc;
	return 1;
out_cursor:
	mdb_cursor_close(cur);
	return rc;
}

int ledger_queue_pop(struct ledger *l, time_t now, char *path, size_t size, int *prio,
		     time_t *next_at)
{
	struct queue_arg a = { .now = now, .out = path, .size = size };
	if (!path || size == 0)
		return -EINVAL;
	int rc = lg_write(l, queue_pop_w, &a);
	if (rc == 1 && prio)
		*prio = a.prio;
	if (next_at)
		*next_at = rc == 0 ? a.next_at : 0;
	return rc;
}

static int queue_requeue_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = lg_q_get(w->l, w->txn, &a->k, &q);
	if (rc == MDB_NOTFOUND || (rc == 0 && !q.copying))
		return -ENOENT;
	if (rc || (rc = lg_q_del(w, &a->k, &q, false)))
		return rc;
	q.copying = false;
	q.not_before = a->not_before > 0 ? a->not_before : 0;
	if ((rc = lg_q_put(w, &a->k, a->path, &q)))
		return rc;
	return lg_file_transition(w, &a->k, a->path, LEDGER_EV_REQUEUE, 1, NULL);
}

int ledger_queue_requeue(struct ledger *l, const char *path, time_t not_before)
{
	struct queue_arg a = { .path = path, .not_before = not_before };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	return lg_write(l, queue_requeue_w, &a);
}

static int queue_fail_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = lg_q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0)
		rc = lg_q_del(w, &a->k, &q, true);
	else if (rc == MDB_NOTFOUND || rc == -EIO)
		rc = 0;
	if (rc || (rc = lg_cnt(w)))
		return rc;
	lg_cadd(w, C_FAILED_TOTAL, +1);
	return lg_file_transition(w, &a->k, a->path, LEDGER_EV_GIVE_UP, 1,
				  a->error ? a->error : "failed");
}

int ledger_queue_fail(struct ledger *l, const char *path, const char *error)
{
	struct queue_arg a = { .path = path, .error = error };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	return lg_write(l, queue_fail_w, &a);
}

static int queue_remove_w(struct wtx *w, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = lg_q_get(w->l, w->txn, &a->k, &q);
	if (rc == -EIO) {
		MDB_val key = lg_pkey_val(&a->k); /* a corrupt index entry: drop it */
		return lg_mrc(mdb_del(w->txn, w->l->qidx, &key, NULL));
	}
	if (rc)
		return rc;
	if ((rc = lg_q_del(w, &a->k, &q, true)))
		return rc;
	return lg_file_transition(w, &a->k, a->path, LEDGER_EV_DEQUEUE, 0, NULL);
}

int ledger_queue_remove(struct ledger *l, const char *path)
{
	struct queue_arg a = { .path = path };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	return lg_write(l, queue_remove_w, &a);
}

static int queue_find_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct queue_arg *a = arg;
	struct qent q;
	int rc = lg_q_get(l, txn, &a->k, &q);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	a->prio = q.prio;
	a->copying = q.copying;
	return 1;
}

int ledger_queue_find(struct ledger *l, const char *path, int *prio, bool *copying)
{
	struct queue_arg a = { .path = path };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	rc = lg_read(l, queue_find_r, &a);
	if (rc == 1) {
		if (prio)
			*prio = a.prio;
		if (copying)
			*copying = a.copying;
	}
	return rc;
}
