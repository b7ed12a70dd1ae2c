/* ledger_ckpt.c - crawl checkpoints: name -> opaque value (e.g. the last key a shard listed). */
#include "ledger/ledger_int.h"

#include <errno.h>

struct ckpt_arg {
	const char *name;
	const char *value;
	char *out;
	size_t size, len;
};

static int ckpt_check_name(const char *name)
{
	size_t n = name ? strnlen(name, 256) : 0;
	return n == 0 || n > 255 ? -EINVAL : 0;
}

static int ckpt_get_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct ckpt_arg *a = arg;
	MDB_val k = { strlen(a->name), (void *)a->name }, v;
	int rc = lg_mrc(mdb_get(txn, l->ckpt, &k, &v));
	if (rc)
		return rc;
	if (v.mv_size >= LEDGER_CKPT_MAX || memchr(v.mv_data, 0, v.mv_size))
		return -EIO;
	if (v.mv_size >= a->size)
		return -ERANGE;
	memcpy(a->out, v.mv_data, v.mv_size);
	a->out[v.mv_size] = '\0';
	a->len = v.mv_size;
	return 0;
}

int ledger_ckpt_get(struct ledger *l, const char *name, char *out, size_t size)
{
	struct ckpt_arg a = { .name = name, .out = out, .size = size };
	int rc = ckpt_check_name(name);
	if (rc || (rc = lg_read(l, ckpt_get_r, &a)))
		return rc;
	return (int)a.len;
}

static int ckpt_put_w(struct wtx *w, void *arg)
{
	struct ckpt_arg *a = arg;
	MDB_val k = { strlen(a->name), (void *)a->name };
	if (!a->value)
		return lg_mrc(mdb_del(w->txn, w->l->ckpt, &k, NULL));
	MDB_val v = { strlen(a->value), (void *)a->value };
	return lg_mrc(mdb_put(w->txn, w->l->ckpt, &k, &v, 0));
}

int ledger_ckpt_put(struct ledger *l, const char *name, const char *value)
{
	struct ckpt_arg a = { .name = name, .value = value };
	int rc = ckpt_check_name(name);
	if (rc)
		return rc;
	if (!value || strnlen(value, LEDGER_CKPT_MAX) >= LEDGER_CKPT_MAX)
		return -EINVAL;
	return lg_write(l, ckpt_put_w, &a);
}

int ledger_ckpt_delete(struct ledger *l, const char *name)
{
	struct ckpt_arg a = { .name = name };
	int rc = ckpt_check_name(name);
	if (rc)
		return rc;
	return lg_write(l, ckpt_put_w, &a);
}
