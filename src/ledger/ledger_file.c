/* ledger_file.c - the ledger's files table: mount path -> what the ledger knows about the
 * file (state, size, ETag, SHA-256, inode number); get, put, update, delete, rename, the
 * chunked walk and the record of a finished migration. See ledger.h for the contract and
 * doc/ledger.md for the layout; the transactions are in ledger_txn.c.
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/util.h"

/* 0, MDB_NOTFOUND or -EIO. path is checked against the full path of a hashed key. */
int lg_file_get(struct ledger *l, MDB_txn *txn, const struct pkey *k, const char *path,
		 struct ledger_file *rec)
{
	MDB_val key = lg_pkey_val(k), v;
	int rc = lg_mrc(mdb_get(txn, l->files, &key, &v));
	if (rc)
		return rc;
	if (!k->hashed)
		return lg_file_decode(v.mv_data, v.mv_size, rec, NULL);
	char *full = malloc(LEDGER_PATH_MAX + 1);
	if (!full)
		return -ENOMEM;
	rc = lg_file_decode(v.mv_data, v.mv_size, rec, full);
	if (rc == 0 && strcmp(full, path) != 0)
		rc = MDB_NOTFOUND; /* a SHA-256 collision: not this path */
	free(full);
	return rc;
}

/* Store rec at path, keeping the counters right. */
int lg_file_store(struct wtx *w, const struct pkey *k, const char *path,
		   const struct ledger_file *rec)
{
	struct ledger *l = w->l;
	unsigned char buf[LEDGER_PATH_MAX + 1024];   /* a long path is kept in the value */
	struct wr wb = { .p = buf, .cap = sizeof(buf) };
	int rc = lg_file_encode(rec, path, k, &wb);
	if (rc)
		return rc;
	if ((rc = lg_cnt(w)))
		return rc;
	MDB_cursor *cur;
	if ((rc = lg_mrc(mdb_cursor_open(w->txn, l->files, &cur))))
		return rc;
	MDB_val key = lg_pkey_val(k), v = { wb.len, buf }, old;
	unsigned flags = 0;
	rc = lg_mrc(mdb_cursor_get(cur, &key, &old, MDB_SET_KEY));
	if (rc == 0) {
		struct ledger_file orec;
		if (lg_file_decode(old.mv_data, old.mv_size, &orec, NULL) == 0)
			lg_cfile(w, &orec, -1);
		else
			log_warn("ledger: replacing a corrupt record of %s", path);
	} else if (rc == MDB_NOTFOUND) {
		/* appending in key order (a crawl) fills pages completely */
		MDB_val last;
		rc = lg_mrc(mdb_cursor_get(cur, &last, NULL, MDB_LAST));
		if (rc == MDB_NOTFOUND) {
			flags = MDB_APPEND;
		} else if (rc == 0) {
			size_t m = last.mv_size < key.mv_size ? last.mv_size : key.mv_size;
			int c = memcmp(key.mv_data, last.mv_data, m);
			if (c > 0 || (c == 0 && key.mv_size > last.mv_size))
				flags = MDB_APPEND;
		} else {
			goto out_cursor;
		}
	} else {
		goto out_cursor;
	}
	key = lg_pkey_val(k);
	rc = lg_mrc(mdb_cursor_put(cur, &key, &v, flags));
	if (rc == 0)
		lg_cfile(w, rec, +1);
out_cursor:
	mdb_cursor_close(cur);
	return rc;
}

/* Remove path's record: 0 or MDB_NOTFOUND. */
int lg_file_remove(struct wtx *w, const struct pkey *k, const char *path)
{
	struct ledger_file old;
	int rc = lg_file_get(w->l, w->txn, k, path, &old);
	if (rc == 0) {
		if ((rc = lg_cnt(w)))
			return rc;
		lg_cfile(w, &old, -1);
	} else if (rc != -EIO) {
		return rc; /* a corrupt record is removed without counting it */
	}
	MDB_val key = lg_pkey_val(k);
	return lg_mrc(mdb_del(w->txn, w->l->files, &key, NULL));
}

/* Apply a queue event to path's record (LEDGER_BY_LEDGER) and add attempts_inc to its
 * attempts and error (if not NULL) as its error. Nothing is written when the event does
 * not apply, or when the state stays and nothing else changes. */
int lg_file_transition(struct wtx *w, const struct pkey *k, const char *path, int event,
		       unsigned attempts_inc, const char *error)
{
	struct ledger_file rec;
	int rc = lg_file_get(w->l, w->txn, k, path, &rec);
	bool exists = rc == 0;
	if (rc == MDB_NOTFOUND || rc == -EIO)
		memset(&rec, 0, sizeof(rec));
	else if (rc)
		return rc;
	int from = rec.state;
	rc = lg_state_apply(path, &rec, exists, event, LEDGER_BY_LEDGER, -1);
	if (rc)
		return rc > 0 ? 0 : rc;
	if (exists && rec.state == from && !attempts_inc && !error)
		return 0;
	if (exists && from == LEDGER_FAILED && rec.state == LEDGER_QUEUED)
		rec.attempts = 0;   /* queued again by the operator: a fresh retry budget */
	rec.attempts += attempts_inc;
	if (error)
		snprintf(rec.error, sizeof(rec.error), "%s", error);
	return lg_file_store(w, k, path, &rec);
}

/* Store rec at path as an import (ledger_file_put): its state must be one the table
 * allows from the record there. */
static int import_one(struct wtx *w, const struct pkey *k, const char *path,
		      const struct ledger_file *rec)
{
	struct ledger_file old;
	int rc = lg_file_get(w->l, w->txn, k, path, &old);
	bool exists = rc == 0;
	if (rc && rc != MDB_NOTFOUND && rc != -EIO)
		return rc;
	if ((rc = lg_state_apply(path, &old, exists, LEDGER_EV_IMPORT, LEDGER_BY_LEDGER,
				 rec->state)))
		return rc > 0 ? -EINVAL : rc;
	return lg_file_store(w, k, path, rec);
}

struct file_arg {
	const char *path;
	struct pkey k;
	struct ledger_file *rec;
	const struct ledger_file *crec;
	uint64_t fileid;
	ledger_update_fn fn;
	void *fn_arg;
	int event;
	unsigned who;
};

static int file_get_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct file_arg *a = arg;
	return lg_file_get(l, txn, &a->k, a->path, a->rec);
}

int ledger_file_get(struct ledger *l, const char *path, struct ledger_file *rec)
{
	struct file_arg a = { .path = path, .rec = rec };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	return lg_read(l, file_get_r, &a);
}

static int file_put_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	return import_one(w, &a->k, a->path, a->crec);
}

int ledger_file_put(struct ledger *l, const char *path, const struct ledger_file *rec)
{
	struct file_arg a = { .path = path, .crec = rec };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	if (rec->state >= LEDGER_NSTATES)
		return -EINVAL;
	return lg_write(l, file_put_w, &a);
}

struct many_arg {
	size_t n;
	const char *const *paths;
	const struct ledger_file *recs;
};

static int file_put_many_w(struct wtx *w, void *arg)
{
	struct many_arg *a = arg;
	for (size_t i = 0; i < a->n; i++) {
		struct pkey k;
		int rc = lg_pkey_make(a->paths[i], &k);
		if (rc || (rc = import_one(w, &k, a->paths[i], &a->recs[i])))
			return rc;
	}
	return 0;
}

int ledger_file_put_many(struct ledger *l, size_t n, const char *const *paths,
			 const struct ledger_file *recs)
{
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int rc = lg_check_path(paths[i], &len);
		if (rc)
			return rc;
		if (recs[i].state >= LEDGER_NSTATES)
			return -EINVAL;
	}
	struct many_arg a = { n, paths, recs };
	return lg_write(l, file_put_many_w, &a);
}

static int file_delete_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	struct qent q;
	bool queued = false;
	int rc = lg_q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0) {
		if ((rc = lg_q_del(w, &a->k, &q, true)))
			return rc;
		queued = true;
	} else if (rc != MDB_NOTFOUND && rc != -EIO) {
		return rc;
	}
	rc = lg_file_remove(w, &a->k, a->path);
	if (rc == MDB_NOTFOUND && queued)
		rc = 0;
	return rc;
}

int ledger_file_delete(struct ledger *l, const char *path)
{
	struct file_arg a = { .path = path };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	return lg_write(l, file_delete_w, &a);
}

static int file_update_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	struct ledger_file rec;
	int rc = lg_file_get(w->l, w->txn, &a->k, a->path, &rec);
	bool exists = rc == 0;
	if (rc == MDB_NOTFOUND)
		memset(&rec, 0, sizeof(rec));
	else if (rc)
		return rc;
	int state = rec.state;
	int verdict = a->fn(&rec, exists, a->fn_arg);
	if (verdict < 0)
		return verdict;
	rc = 0;
	if (verdict == LEDGER_WRITE) {
		int want = rec.state;
		rec.state = (uint8_t)state;
		if ((rc = lg_state_apply(a->path, &rec, exists, LEDGER_EV_EDIT, LEDGER_BY_LEDGER,
					 want < LEDGER_NSTATES ? want : LEDGER_NSTATES)))
			return rc > 0 ? -EINVAL : rc;
		rc = lg_file_store(w, &a->k, a->path, &rec);
	} else if (verdict == LEDGER_DELETE) {
		rc = exists ? lg_file_remove(w, &a->k, a->path) : 0;
	} else if (verdict != LEDGER_KEEP) {
		return -EINVAL;
	}
	return rc ? rc : verdict;
}

int ledger_file_update(struct ledger *l, const char *path, ledger_update_fn fn, void *arg)
{
	struct file_arg a = { .path = path, .fn = fn, .fn_arg = arg };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	return lg_write(l, file_update_w, &a);
}

static int file_event_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	struct ledger_file rec;
	int rc = lg_file_get(w->l, w->txn, &a->k, a->path, &rec);
	bool exists = rc == 0;
	if (rc == MDB_NOTFOUND)
		memset(&rec, 0, sizeof(rec));
	else if (rc)
		return rc;
	if ((rc = lg_state_apply(a->path, &rec, exists, a->event, a->who, -1)))
		return rc > 0 ? LEDGER_KEEP : rc;
	int state = rec.state;
	int verdict = a->fn ? a->fn(&rec, exists, a->fn_arg) : LEDGER_WRITE;
	if (verdict < 0 || verdict == LEDGER_KEEP)
		return verdict;
	if (verdict != LEDGER_WRITE || rec.state != state) {
		log_err("ledger: %s: event %s: the callback may fill fields, not %s", a->path,
			ledger_event_name(a->event), verdict != LEDGER_WRITE ? "delete the record" :
			"change the state");
		return -EINVAL;
	}
	if ((rc = lg_file_store(w, &a->k, a->path, &rec)))
		return rc;
	return LEDGER_WRITE;
}

int ledger_file_event(struct ledger *l, const char *path, int event, unsigned who,
		      ledger_update_fn fn, void *arg)
{
	struct file_arg a = { .path = path, .fn = fn, .fn_arg = arg, .event = event, .who = who };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	if (event < 0 || event >= LEDGER_NEVENTS)
		return -EINVAL;
	return lg_write(l, file_event_w, &a);
}

static int commit_migration_w(struct wtx *w, void *arg)
{
	struct file_arg *a = arg;
	struct ledger_file old;
	int rc = lg_file_get(w->l, w->txn, &a->k, a->path, &old);
	if (rc && rc != MDB_NOTFOUND && rc != -EIO)
		return rc;
	if ((rc = lg_state_apply(a->path, &old, rc == 0, LEDGER_EV_COPIED, LEDGER_BY_LEDGER,
				 a->crec->state)))
		return rc > 0 ? -EINVAL : rc;
	if ((rc = lg_file_store(w, &a->k, a->path, a->crec)))
		return rc;
	if (a->fileid && a->crec->ino) {
		MDB_cursor *cur;
		if ((rc = lg_mrc(mdb_cursor_open(w->txn, w->l->inomap, &cur))))
			return rc;
		rc = lg_ino_store(cur, a->fileid, a->crec->ino);
		mdb_cursor_close(cur);
		if (rc)
			return rc;
	}
	struct qent q;
	rc = lg_q_get(w->l, w->txn, &a->k, &q);
	if (rc == 0)
		return lg_q_del(w, &a->k, &q, true);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int ledger_commit_migration(struct ledger *l, const char *path, const struct ledger_file *rec,
			    uint64_t nfs_fileid)
{
	struct file_arg a = { .path = path, .crec = rec, .fileid = nfs_fileid };
	int rc = lg_pkey_make(path, &a.k);
	if (rc)
		return rc;
	if (rec->state >= LEDGER_NSTATES)
		return -EINVAL;
	return lg_write(l, commit_migration_w, &a);
}

/* ---- chunked walk over files ---- */

struct walk {
	const char *prefix;
	size_t plen, seek_len;
	struct buf arena;           /* [u32 klen][key][u32 vlen][value] ... */
	size_t count;
	unsigned char last[KEY_INLINE_MAX];
	size_t last_len;
	bool started, done;
};

static int walk_chunk_r(struct ledger *l, MDB_txn *txn, void *arg)
{
	struct walk *wk = arg;
	MDB_cursor *cur;
	int rc = lg_mrc(mdb_cursor_open(txn, l->files, &cur));
	if (rc)
		return rc;
	MDB_val k, v;
	if (wk->started) {
		k = (MDB_val){ wk->last_len, wk->last };
	} else {
		k = (MDB_val){ wk->seek_len, (void *)wk->prefix };
	}
	rc = lg_mrc(k.mv_size ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
			   : mdb_cursor_get(cur, &k, &v, MDB_FIRST));
	if (rc == 0 && wk->started && k.mv_size == wk->last_len &&
	    memcmp(k.mv_data, wk->last, k.mv_size) == 0)
		rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT));
	wk->count = 0;
	buf_reset(&wk->arena);
	for (; rc == 0; rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (k.mv_size < wk->seek_len || memcmp(k.mv_data, wk->prefix, wk->seek_len) != 0) {
			wk->done = true;
			break;
		}
		if (wk->count == CHUNK)
			break;
		uint32_t kl = (uint32_t)k.mv_size, vl = (uint32_t)v.mv_size;
		if (buf_append(&wk->arena, &kl, 4) || buf_append(&wk->arena, k.mv_data, kl) ||
		    buf_append(&wk->arena, &vl, 4) || buf_append(&wk->arena, v.mv_data, vl)) {
			rc = -ENOMEM;
			break;
		}
		memcpy(wk->last, k.mv_data, kl > KEY_INLINE_MAX ? KEY_INLINE_MAX : kl);
		wk->last_len = kl;
		wk->count++;
	}
	if (rc == MDB_NOTFOUND) {
		wk->done = true;
		rc = 0;
	}
	wk->started = true;
	mdb_cursor_close(cur);
	return rc;
}

int ledger_foreach_file(struct ledger *l, const char *prefix, ledger_file_cb cb, void *arg)
{
	struct walk wk = { .prefix = prefix ? prefix : "" };
	wk.plen = strlen(wk.prefix);
	wk.seek_len = wk.plen < KEY_HASH_PREFIX ? wk.plen : KEY_HASH_PREFIX;
	int rc = 0;
	char *path = malloc(LEDGER_PATH_MAX + 1);
	if (!path)
		return -ENOMEM;
	while (!wk.done && rc == 0) {
		if ((rc = lg_read(l, walk_chunk_r, &wk)))
			break;
		const char *p = wk.arena.data, *end = p + wk.arena.len;
		while (p < end && rc == 0) {
			uint32_t kl, vl;
			memcpy(&kl, p, 4);
			const char *key = p + 4;
			memcpy(&vl, key + kl, 4);
			const char *val = key + kl + 4;
			p = val + vl;
			struct ledger_file rec;
			int drc = lg_file_decode(val, vl, &rec, path);
			if (drc) {
				log_warn("ledger: skipping a corrupt file record (%u bytes)", vl);
				continue;
			}
			if (!path[0]) {
				if (kl > LEDGER_PATH_MAX)
					continue;
				memcpy(path, key, kl);
				path[kl] = '\0';
			}
			if (strncmp(path, wk.prefix, wk.plen) != 0)
				continue;
			rc = cb(path, &rec, arg);
		}
	}
	buf_free(&wk.arena);
	free(path);
	return rc;
}

/* ---- rename ---- */

struct rename_arg {
	const char *from, *to;
	size_t flen, tlen;
	bool tree;
	struct buf moved; /* full old paths, NUL-separated */
	size_t nmoved;
};

static int rename_one(struct wtx *w, const char *from, const char *to)
{
	struct pkey fk, tk;
	struct ledger_file rec;
	int rc = lg_pkey_make(from, &fk);
	if (rc || (rc = lg_pkey_make(to, &tk)))
		return rc;
	rc = lg_file_get(w->l, w->txn, &fk, from, &rec);
	if (rc)
		return rc;
	if ((rc = lg_file_remove(w, &fk, from)))
		return rc;
	/* The ETag was that of from's object; S3's object at `to`, if any, is another one
	 * (a file the rename replaces): unknown here until the mirror uploads `to` and
	 * records its own. Keeping from's would make revalidation (fleet.c) and the mirror's
	 * overwrite guard take that replaced object for another host's change. */
	rec.etag[0] = '\0';
	return lg_file_store(w, &tk, to, &rec);
}

static int rename_w(struct wtx *w, void *arg)
{
	struct rename_arg *a = arg;
	int rc, n = 0;
	buf_reset(&a->moved);
	rc = rename_one(w, a->from, a->to);
	if (rc == 0)
		n++;
	else if (rc != MDB_NOTFOUND)
		return rc;
	if (!a->tree)
		return n;
	/* collect the subtree first: the cursor must not walk keys we are moving */
	char *sub = malloc(a->flen + 2);
	char *path = malloc(2 * (LEDGER_PATH_MAX + 1));
	if (!sub || !path) {
		rc = -ENOMEM;
		goto out_free;
	}
	memcpy(sub, a->from, a->flen);
	sub[a->flen] = '/';
	sub[a->flen + 1] = '\0';
	size_t slen = a->flen + 1, seek = slen < KEY_HASH_PREFIX ? slen : KEY_HASH_PREFIX;
	MDB_cursor *cur;
	if ((rc = lg_mrc(mdb_cursor_open(w->txn, w->l->files, &cur))))
		goto out_free;
	MDB_val k = { seek, sub }, v;
	for (rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)); rc == 0;
	     rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (k.mv_size < seek || memcmp(k.mv_data, sub, seek) != 0)
			break;
		struct ledger_file rec;
		if (lg_file_decode(v.mv_data, v.mv_size, &rec, path))
			continue;
		if (!path[0]) {
			memcpy(path, k.mv_data, k.mv_size);
			path[k.mv_size] = '\0';
		}
		if (strncmp(path, sub, slen) != 0)
			continue;
		if (buf_append(&a->moved, path, strlen(path) + 1)) {
			rc = -ENOMEM;
			break;
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND && rc != 0)
		goto out_free;
	rc = 0;
	for (const char *p = a->moved.data, *end = p + a->moved.len; p && p < end;
	     p += strlen(p) + 1) {
		size_t rest = strlen(p) - a->flen;
		if (a->tlen + rest > LEDGER_PATH_MAX) {
			rc = -ENAMETOOLONG;
			break;
		}
		memcpy(path, a->to, a->tlen);
		memcpy(path + a->tlen, p + a->flen, rest + 1);
		if ((rc = rename_one(w, p, path)))
			break;
		n++;
	}
out_free:
	free(sub);
	free(path);
	return rc ? rc : n;
}

int ledger_file_rename(struct ledger *l, const char *from, const char *to, unsigned flags)
{
	struct rename_arg a = { .from = from, .to = to, .tree = flags & LEDGER_RENAME_TREE };
	int rc;
	if ((rc = lg_check_path(from, &a.flen)) || (rc = lg_check_path(to, &a.tlen)))
		return rc;
	if (flags & ~LEDGER_RENAME_TREE)
		return -EINVAL;
	if (strcmp(from, to) == 0)
		return 0;
	if (a.tree && a.tlen > a.flen && strncmp(to, from, a.flen) == 0 &&
	    (to[a.flen] == '/' || a.flen == 1))
		return -EINVAL;
	if (strcmp(from, "/") == 0 || strcmp(to, "/") == 0)
		return -EINVAL;
	rc = lg_write(l, rename_w, &a);
	buf_free(&a.moved);
	return rc;
}
