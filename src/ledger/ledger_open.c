/* ledger_open.c - opening and closing a ledger: the local-disk check, the one-writer
 * lock, the LMDB environment, the schema version and its in-place upgrades, and the
 * recovery of copies interrupted by a crash.
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

static const MDB_val k_schema = { 6, "schema" };

static const char *const db_names[] = { "meta", "files", "inomap", "queue", "qidx",
					"journal", "jpath", "ckpt" };

static MDB_dbi *db_slot(struct ledger *l, size_t i)
{
	MDB_dbi *slots[] = { &l->meta, &l->files, &l->inomap, &l->queue, &l->qidx,
			     &l->journal, &l->jpath, &l->ckpt };
	return slots[i];
}

/* Upgrade steps: upgrades[v] turns schema v into v + 1. */
static int upgrade_0_to_1(struct wtx *w)
{
	/* v0 (before versioning) had the tables but no counters and no jpath index. */
	return lg_rebuild_derived(w);
}

typedef int (*upgrade_fn)(struct wtx *w);
static const upgrade_fn upgrades[LEDGER_SCHEMA_VERSION] = { upgrade_0_to_1 };

static int schema_write(struct wtx *w, uint32_t ver)
{
	unsigned char b[4] = { ver & 0xff, (ver >> 8) & 0xff, (ver >> 16) & 0xff, ver >> 24 };
	MDB_val v = { 4, b };
	return lg_mrc(mdb_put(w->txn, w->l->meta, (MDB_val *)&k_schema, &v, 0));
}

static int schema_read(struct ledger *l, MDB_txn *txn, uint32_t *ver)
{
	MDB_val v;
	int rc = lg_mrc(mdb_get(txn, l->meta, (MDB_val *)&k_schema, &v));
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return -EIO;
	const unsigned char *b = v.mv_data;
	*ver = b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

static int init_rw(struct wtx *w, void *arg)
{
	struct ledger *l = w->l;
	const char *dir = arg;
	int rc;
	for (size_t i = 0; i < ARRAY_SIZE(db_names); i++)
		if ((rc = lg_mrc(mdb_dbi_open(w->txn, db_names[i], MDB_CREATE, db_slot(l, i)))))
			return rc;
	uint32_t ver;
	rc = schema_read(l, w->txn, &ver);
	if (rc == MDB_NOTFOUND) {
		MDB_stat st;
		if ((rc = lg_mrc(mdb_stat(w->txn, l->files, &st))))
			return rc;
		MDB_val v;
		bool has_counters = mdb_get(w->txn, l->meta, (MDB_val *)&lg_k_counters, &v) == 0;
		if (st.ms_entries == 0 && !has_counters) {
			/* a new ledger */
			if ((rc = schema_write(w, LEDGER_SCHEMA_VERSION)) || (rc = lg_cnt(w)))
				return rc;
			w->dirty = true;
			l->schema = LEDGER_SCHEMA_VERSION;
			return 0;
		}
		ver = 0;
	} else if (rc) {
		return rc;
	}
	if (ver > LEDGER_SCHEMA_VERSION) {
		log_err("ledger %s has schema version %u, newer than this ferryfs understands "
			"(%u): use a newer ferryfs or move the ledger away", dir, ver,
			LEDGER_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (ver < LEDGER_SCHEMA_VERSION) {
		log_notice("ledger %s: upgrading schema %u to %u", dir, ver, LEDGER_SCHEMA_VERSION);
		for (uint32_t v = ver; v < LEDGER_SCHEMA_VERSION; v++)
			if ((rc = upgrades[v](w)))
				return rc;
		if ((rc = schema_write(w, LEDGER_SCHEMA_VERSION)))
			return rc;
	}
	l->schema = LEDGER_SCHEMA_VERSION;
	return 0;
}

static int init_ro(struct ledger *l, const char *dir)
{
	MDB_txn *txn;
	int rc = lg_txn_begin(l, false, &txn);
	if (rc)
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(db_names); i++)
		if ((rc = lg_mrc(mdb_dbi_open(txn, db_names[i], 0, db_slot(l, i)))))
			goto out_abort;
	uint32_t ver;
	if ((rc = schema_read(l, txn, &ver)))
		goto out_abort;
	if (ver != LEDGER_SCHEMA_VERSION) {
		log_err("ledger %s has schema version %u, this ferryfs reads %u only%s", dir, ver,
			LEDGER_SCHEMA_VERSION, ver < LEDGER_SCHEMA_VERSION ?
			" (mount it once to upgrade it)" : "");
		rc = -EPROTO;
		goto out_abort;
	}
	l->schema = ver;
	return lg_txn_commit(l, txn); /* keeps the dbi handles */
out_abort:
	lg_txn_abort(l, txn);
	return rc;
}

/* Entries left in the copying band by a crash go back to their priority. */
static int recover_copying(struct wtx *w, void *arg)
{
	(void)arg;
	struct ledger *l = w->l;
	int n = 0, rc;
	char *path = malloc(LEDGER_PATH_MAX + 1);
	if (!path)
		return -ENOMEM;
	for (;;) {
		MDB_cursor *cur;
		unsigned char start[QKEY_LEN];
		lg_qkey(start, QBAND_COPYING, 0, 0);
		MDB_val k = { QKEY_LEN, start }, v;
		if ((rc = lg_mrc(mdb_cursor_open(w->txn, l->queue, &cur))))
			break;
		rc = lg_mrc(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
		if (rc == 0 && (v.mv_size == 0 || v.mv_size > LEDGER_PATH_MAX))
			rc = -EIO;
		if (rc == 0) {
			memcpy(path, v.mv_data, v.mv_size);
			path[v.mv_size] = '\0';
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		struct pkey pk;
		struct qent q;
		uint64_t seq = get_be64((const unsigned char *)k.mv_data + 9);
		if ((rc = lg_pkey_make(path, &pk)))
			break;
		rc = lg_q_get(l, w->txn, &pk, &q);
		if (rc == MDB_NOTFOUND || rc == -EIO || (rc == 0 && !q.copying)) {
			/* an orphan entry: drop it */
			unsigned char kb[QKEY_LEN];
			lg_qkey(kb, QBAND_COPYING, 0, seq);
			MDB_val dk = { QKEY_LEN, kb };
			if ((rc = lg_mrc(mdb_del(w->txn, l->queue, &dk, NULL))) || (rc = lg_cnt(w)))
				break;
			lg_cadd(w, C_COPYING, -1);
			continue;
		}
		if (rc)
			break;
		q.seq = seq;
		if ((rc = lg_q_del(w, &pk, &q, false)))
			break;
		q.copying = false;
		q.not_before = 0;
		if ((rc = lg_q_put(w, &pk, path, &q)) ||
		    (rc = lg_file_transition(w, &pk, path, LEDGER_EV_REQUEUE, 0, NULL)))
			break;
		n++;
	}
	free(path);
	if (rc == 0 && n)
		log_notice("ledger: %d interrupted copies queued again", n);
	return rc < 0 ? rc : 0;
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(tmp, mode) != 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* Refuse network and FUSE filesystems: LMDB needs local locking and mmap coherence. */
static int check_local(const char *dir)
{
	static const struct { unsigned long magic; const char *name; } remote[] = {
		{ 0x6969, "NFS" }, { 0x65735546, "FUSE" }, { 0x65735543, "FUSE control" },
		{ 0xFF534D42, "CIFS" }, { 0xFE534D42, "SMB2" }, { 0x517B, "SMB" },
		{ 0x01021997, "9p" }, { 0x00c36400, "Ceph" }, { 0x47504653, "GPFS" },
		{ 0x0BD00BD0, "Lustre" },
	};
	struct statfs sf;
	if (statfs(dir, &sf) != 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(remote); i++) {
		if ((unsigned long)sf.f_type == remote[i].magic) {
			log_err("ledger: state_dir %s is on %s; the ledger needs a local disk", dir,
				remote[i].name);
			return -EREMOTE;
		}
	}
	return 0;
}

int ledger_open(const char *dir, unsigned flags, struct ledger **out)
{
	return ledger_open_ex(dir, flags, NULL, out);
}

int ledger_open_ex(const char *dir, unsigned flags, const struct ledger_opts *opts,
		   struct ledger **out)
{
	int rc;
	*out = NULL;
	if (!dir || !*dir || (flags & ~(LEDGER_CREATE | LEDGER_RDONLY | LEDGER_NOSYNC)))
		return -EINVAL;
	if ((flags & LEDGER_CREATE) && !(flags & LEDGER_RDONLY) && (rc = mkdir_p(dir, 0700)))
		return rc;
	if ((rc = check_local(dir)))
		return rc;
	char data_path[PATH_MAX];
	if (snprintf(data_path, sizeof(data_path), "%s/data.mdb", dir) >= (int)sizeof(data_path))
		return -ENAMETOOLONG;
	if (!(flags & LEDGER_CREATE) && access(data_path, F_OK) != 0)
		return -ENOENT;

	struct ledger *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->flags = flags;
	l->pid = getpid();
	lg_fork_init(l);
	l->lock_fd = -1;
	l->map_size = opts && opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
	l->max_map_size = opts && opts->max_map_size ? opts->max_map_size : DEFAULT_MAX_MAP_SIZE;
	if (l->max_map_size < l->map_size)
		l->max_map_size = l->map_size;
	if ((rc = -pthread_rwlock_init(&l->resize_lock, NULL)))
		goto fail_alloc;
	pthread_mutex_init(&l->gc_lock, NULL);
	pthread_cond_init(&l->gc_cond, NULL);
	pthread_mutex_init(&l->pool_lock, NULL);
	l->gc_tail = &l->gc_head;

	if (!(flags & LEDGER_RDONLY)) {
		char lock_path[PATH_MAX];
		snprintf(lock_path, sizeof(lock_path), "%s/ledger.lock", dir);
		l->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (l->lock_fd < 0) {
			rc = -errno;
			goto fail_rwlock;
		}
		/* A process killed a moment ago may still be exiting: its lock goes with its
		 * files, so wait a little before calling the directory busy. */
		int tries = 0;
		while (flock(l->lock_fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK &&
		       tries++ < LEDGER_LOCK_WAIT_TRIES)
			usleep(100 * 1000);
		if (flock(l->lock_fd, LOCK_EX | LOCK_NB) != 0) {
			rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
			if (rc == -EBUSY)
				log_err("ledger %s is in use by another ferryfs", dir);
			goto fail_lock;
		}
	}

	if ((rc = lg_mrc(mdb_env_create(&l->env))))
		goto fail_lock;
	unsigned envflags = MDB_NOTLS;
	if (flags & LEDGER_RDONLY)
		envflags |= MDB_RDONLY;
	else
		envflags |= (flags & LEDGER_NOSYNC) ? MDB_NOSYNC : MDB_NOMETASYNC;
	if ((rc = lg_mrc(mdb_env_set_maxdbs(l->env, 16))) ||
	    (rc = lg_mrc(mdb_env_set_maxreaders(l->env, MAX_READERS))) ||
	    (rc = lg_mrc(mdb_env_set_mapsize(l->env, l->map_size))) ||
	    (rc = lg_mrc(mdb_env_open(l->env, dir, envflags, 0600))))
		goto fail_env;
	if (mdb_env_get_maxkeysize(l->env) < KEY_INLINE_MAX) {
		log_err("ledger: this LMDB allows keys of %d bytes only",
			mdb_env_get_maxkeysize(l->env));
		rc = -ENOTSUP;
		goto fail_env;
	}
	MDB_envinfo info;
	if (mdb_env_info(l->env, &info) == 0)
		l->map_size = info.me_mapsize; /* an existing file may hold a larger size */
	if (l->max_map_size < l->map_size)
		l->max_map_size = l->map_size;

	if (flags & LEDGER_RDONLY)
		rc = init_ro(l, dir);
	else if ((rc = lg_write(l, init_rw, (void *)dir)) == 0)
		rc = lg_write(l, recover_copying, NULL);
	if (rc)
		goto fail_env;
	*out = l;
	return 0;

fail_env:
	mdb_env_close(l->env);
fail_lock:
	if (l->lock_fd >= 0)
		close(l->lock_fd);
fail_rwlock:
	pthread_mutex_destroy(&l->pool_lock);
	pthread_cond_destroy(&l->gc_cond);
	pthread_mutex_destroy(&l->gc_lock);
	pthread_rwlock_destroy(&l->resize_lock);
fail_alloc:
	free(l);
	return lg_err(rc);
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	if (getpid() == l->pid) {
		while (l->npool)
			mdb_txn_abort(l->pool[--l->npool]);
		if (!(l->flags & (LEDGER_RDONLY)))
			mdb_env_sync(l->env, 1);
		mdb_env_close(l->env);
	}
	if (l->lock_fd >= 0)
		close(l->lock_fd);
	pthread_mutex_destroy(&l->pool_lock);
	pthread_cond_destroy(&l->gc_cond);
	pthread_mutex_destroy(&l->gc_lock);
	pthread_rwlock_destroy(&l->resize_lock);
	free(l);
}

int ledger_sync(struct ledger *l)
{
	if (getpid() != l->pid)
		return -ECHILD;
	if (l->flags & LEDGER_RDONLY)
		return 0;
	return lg_err(lg_mrc(mdb_env_sync(l->env, 1)));
}
