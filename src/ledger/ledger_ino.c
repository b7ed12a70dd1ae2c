/* ledger_ino.c - the inode map: NFS file id -> the stable inode number the mount reports. */
#include "ledger/ledger_int.h"

#include <errno.h>

struct ino_arg {
	uint64_t fileid, ino;
};

static int ino_get_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct ino_arg *a = arg;
	unsigned char kb[8];
	be64(kb, a->fileid);
	MDB_val k = { 8, kb }, v;
	int rc = lg_mrc(mdb_get(txn, l->inomap, &k, &v));
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return -EIO;
	a->ino = get_le64(v.mv_data);
	return 0;
}

int ledger_ino_get(struct ledger *l, uint64_t nfs_fileid, uint64_t *ino)
{
	struct ino_arg a = { .fileid = nfs_fileid };
	int rc = lg_read(l, ino_get_r, &a);
	if (rc == 0)
		*ino = a.ino;
	return rc;
}

int lg_ino_store(MDB_cursor *cur, uint64_t fileid, uint64_t ino)
{
	unsigned char kb[8], vb[8];
	be64(kb, fileid);
	le64(vb, ino);
	MDB_val k = { 8, kb }, v = { 8, vb };
	/* NFS file ids mostly grow: append when the id is past the last one */
	MDB_val lk, lv;
	unsigned flags = 0;
	int rc = lg_mrc(mdb_cursor_get(cur, &lk, &lv, MDB_LAST));
	if (rc == MDB_NOTFOUND || (rc == 0 && lk.mv_size == 8 && memcmp(kb, lk.mv_data, 8) > 0))
		flags = MDB_APPEND;
	return lg_mrc(mdb_cursor_put(cur, &k, &v, flags));
}

struct ino_many {
	size_t n;
	const uint64_t *fileids, *inos;
};

static int ino_put_many_w(struct wtx *w, void *arg)
{
	struct ino_many *a = arg;
	MDB_cursor *cur;
	int rc = lg_mrc(mdb_cursor_open(w->txn, w->l->inomap, &cur));
	if (rc)
		return rc;
	for (size_t i = 0; rc == 0 && i < a->n; i++)
		rc = lg_ino_store(cur, a->fileids[i], a->inos[i]);
	mdb_cursor_close(cur);
	return rc;
}

int ledger_ino_put_many(struct ledger *l, size_t n, const uint64_t *nfs_fileids,
			const uint64_t *inos)
{
	struct ino_many a = { n, nfs_fileids, inos };
	return lg_write(l, ino_put_many_w, &a);
}

int ledger_ino_put(struct ledger *l, uint64_t nfs_fileid, uint64_t ino)
{
	return ledger_ino_put_many(l, 1, &nfs_fileid, &ino);
}

static int ino_del_w(struct wtx *w, void *arg)
{
	struct ino_arg *a = arg;
	unsigned char kb[8];
	be64(kb, a->fileid);
	MDB_val k = { 8, kb };
	return lg_mrc(mdb_del(w->txn, w->l->inomap, &k, NULL));
}

int ledger_ino_delete(struct ledger *l, uint64_t nfs_fileid)
{
	struct ino_arg a = { .fileid = nfs_fileid };
	return lg_write(l, ino_del_w, &a);
}
