/* ledger_codec.c - the ledger's on-disk encodings: path keys (long paths hashed), file
 * records (varints, ETags as raw MD5 when they are one) and journal entries. Pure functions,
 * no LMDB calls; the layout is in doc/ledger.md.
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>

#include "base/util.h"

int lg_check_path(const char *path, size_t *len)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	size_t n = strnlen(path, LEDGER_PATH_MAX + 1);
	if (n > LEDGER_PATH_MAX)
		return -ENAMETOOLONG;
	*len = n;
	return 0;
}

int lg_pkey_make(const char *path, struct pkey *k)
{
	size_t n;
	int rc = lg_check_path(path, &n);
	if (rc)
		return rc;
	if (n <= KEY_INLINE_MAX) {
		memcpy(k->b, path, n);
		k->len = n;
		k->hashed = false;
	} else {
		memcpy(k->b, path, KEY_HASH_PREFIX);
		SHA256((const unsigned char *)path, n, k->b + KEY_HASH_PREFIX);
		k->len = KEY_INLINE_MAX;
		k->hashed = true;
	}
	return 0;
}

#define FH_STATE 0x07
#define FH_ETAG_SHIFT 3 /* 2 bits: etag kind */
#define FH_SHA 0x20
#define FH_ERROR 0x40
#define FH_LONGPATH 0x80

enum { ETAG_NONE = 0, ETAG_MD5 = 1, ETAG_MD5_PARTS = 2, ETAG_RAW = 3 };

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Classify an ETag: a 32-digit lower-case hex MD5, optionally "-N" (multipart), is stored
 * as 16 raw bytes (+ N); anything else as its text. */
static int etag_kind(const char *etag, unsigned char md5[16], uint64_t *parts)
{
	size_t n = strlen(etag);
	if (n == 0)
		return ETAG_NONE;
	if (n < 32)
		return ETAG_RAW;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(etag[2 * i]), lo = hexval(etag[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return ETAG_RAW;
		md5[i] = (unsigned char)(hi << 4 | lo);
	}
	if (n == 32)
		return ETAG_MD5;
	if (etag[32] != '-' || n > 32 + 1 + 10 || etag[33] < '1' || etag[33] > '9')
		return ETAG_RAW;
	uint64_t v = 0;
	for (size_t i = 33; i < n; i++) {
		if (etag[i] < '0' || etag[i] > '9')
			return ETAG_RAW;
		v = v * 10 + (uint64_t)(etag[i] - '0');
	}
	*parts = v;
	return ETAG_MD5_PARTS;
}

/* Encode rec (for path, whose key is k) into w. -EINVAL on a bad record. */
int lg_file_encode(const struct ledger_file *rec, const char *path, const struct pkey *k,
		       struct wr *w)
{
	if (rec->state >= LEDGER_NSTATES)
		return -EINVAL;
	unsigned char md5[16];
	uint64_t parts = 0;
	size_t etag_len = strnlen(rec->etag, LEDGER_ETAG_MAX);
	if (etag_len >= LEDGER_ETAG_MAX)
		return -EINVAL;
	int kind = etag_kind(rec->etag, md5, &parts);
	size_t err_len = strnlen(rec->error, LEDGER_ERROR_MAX - 1);
	unsigned hdr = rec->state | (unsigned)kind << FH_ETAG_SHIFT;
	if (rec->has_sha256)
		hdr |= FH_SHA;
	if (err_len)
		hdr |= FH_ERROR;
	if (k->hashed)
		hdr |= FH_LONGPATH;
	wr_u8(w, hdr);
	wr_varint(w, rec->size);
	wr_varint(w, rec->ino);
	wr_varint(w, rec->migrated > 0 ? (uint64_t)rec->migrated : 0);
	wr_varint(w, rec->attempts);
	if (kind == ETAG_MD5 || kind == ETAG_MD5_PARTS)
		wr_bytes(w, md5, 16);
	if (kind == ETAG_MD5_PARTS)
		wr_varint(w, parts);
	if (kind == ETAG_RAW) {
		wr_u8(w, (unsigned)etag_len);
		wr_bytes(w, rec->etag, etag_len);
	}
	if (rec->has_sha256)
		wr_bytes(w, rec->sha256, 32);
	if (err_len) {
		wr_u8(w, (unsigned)err_len);
		wr_bytes(w, rec->error, err_len);
	}
	if (k->hashed) {
		size_t n = strlen(path);
		wr_varint(w, n);
		wr_bytes(w, path, n);
	}
	return w->overflow ? -EINVAL : 0;
}

/* Decode a stored value. If longpath is not NULL, it gets the full path when the value
 * carries one (LEDGER_PATH_MAX + 1 bytes), else "". -EIO on any inconsistency. */
int lg_file_decode(const void *data, size_t size, struct ledger_file *rec, char *longpath)
{
	struct rd r = { .p = data, .end = (const unsigned char *)data + size };
	memset(rec, 0, sizeof(*rec));
	if (longpath)
		longpath[0] = '\0';
	unsigned hdr = rd_u8(&r);
	int kind = (hdr >> FH_ETAG_SHIFT) & 3;
	rec->state = hdr & FH_STATE;
	rec->size = rd_varint(&r);
	rec->ino = rd_varint(&r);
	uint64_t mig = rd_varint(&r);
	uint64_t att = rd_varint(&r);
	if (r.bad || mig > INT64_MAX || att > UINT32_MAX)
		return -EIO;
	rec->migrated = (int64_t)mig;
	rec->attempts = (uint32_t)att;
	if (kind == ETAG_MD5 || kind == ETAG_MD5_PARTS) {
		const unsigned char *md5 = rd_bytes(&r, 16);
		if (!md5)
			return -EIO;
		util_hex(md5, 16, rec->etag);
		if (kind == ETAG_MD5_PARTS) {
			uint64_t parts = rd_varint(&r);
			if (r.bad)
				return -EIO;
			snprintf(rec->etag + 32, sizeof(rec->etag) - 32, "-%" PRIu64, parts);
		}
	} else if (kind == ETAG_RAW) {
		unsigned n = rd_u8(&r);
		const unsigned char *p = rd_bytes(&r, n);
		if (!p || n >= LEDGER_ETAG_MAX || n == 0)
			return -EIO;
		memcpy(rec->etag, p, n);
		rec->etag[n] = '\0';
	}
	if (hdr & FH_SHA) {
		const unsigned char *p = rd_bytes(&r, 32);
		if (!p)
			return -EIO;
		memcpy(rec->sha256, p, 32);
		rec->has_sha256 = true;
	}
	if (hdr & FH_ERROR) {
		unsigned n = rd_u8(&r);
		const unsigned char *p = rd_bytes(&r, n);
		if (!p || n >= LEDGER_ERROR_MAX || n == 0)
			return -EIO;
		memcpy(rec->error, p, n);
		rec->error[n] = '\0';
	}
	if (hdr & FH_LONGPATH) {
		uint64_t n = rd_varint(&r);
		const unsigned char *p = r.bad || n > LEDGER_PATH_MAX || n <= KEY_INLINE_MAX ?
			NULL : rd_bytes(&r, n);
		if (!p || p[0] != '/' || memchr(p, 0, n))
			return -EIO;
		if (longpath) {
			memcpy(longpath, p, n);
			longpath[n] = '\0';
		}
	}
	if (r.bad || r.p != r.end)
		return -EIO;
	return 0;
}

#define JF_PATH2 0x20

int lg_journal_encode(const struct ledger_jentry *e, struct wr *w)
{
	unsigned fields = e->fields & 0x1f;
	size_t n = strlen(e->path);
	wr_u8(w, (unsigned)e->op);
	wr_u8(w, fields | (e->path2 ? JF_PATH2 : 0));
	wr_varint(w, e->time_ms > 0 ? (uint64_t)e->time_ms : 0);
	wr_varint(w, n);
	wr_bytes(w, e->path, n);
	if (e->path2) {
		size_t n2 = strlen(e->path2);
		wr_varint(w, n2);
		wr_bytes(w, e->path2, n2);
	}
	if (fields & LEDGER_J_MODE)
		wr_varint(w, e->mode);
	if (fields & LEDGER_J_UID)
		wr_varint(w, e->uid);
	if (fields & LEDGER_J_GID)
		wr_varint(w, e->gid);
	if (fields & LEDGER_J_MTIME) {
		wr_varint(w, zigzag(e->mtime.tv_sec));
		wr_varint(w, (uint64_t)e->mtime.tv_nsec);
	}
	if (fields & LEDGER_J_SIZE)
		wr_varint(w, e->size);
	return w->overflow ? -EINVAL : 0;
}

/* Decode into e; the strings are copied into path/path2 (LEDGER_PATH_MAX + 1 bytes each). */
int lg_journal_decode(const void *data, size_t size, struct ledger_jentry *e, char *path,
			  char *path2)
{
	struct rd r = { .p = data, .end = (const unsigned char *)data + size };
	memset(e, 0, sizeof(*e));
	e->op = (int)rd_u8(&r);
	unsigned fields = rd_u8(&r);
	uint64_t t = rd_varint(&r);
	uint64_t n = rd_varint(&r);
	if (r.bad || e->op < LEDGER_OP_WRITE || e->op > LEDGER_OP_MAX || (fields & ~0x3fu) ||
	    t > INT64_MAX || n == 0 || n > LEDGER_PATH_MAX)
		return -EIO;
	const unsigned char *p = rd_bytes(&r, n);
	if (!p || p[0] != '/' || memchr(p, 0, n))
		return -EIO;
	memcpy(path, p, n);
	path[n] = '\0';
	e->path = path;
	e->time_ms = (int64_t)t;
	if (fields & JF_PATH2) {
		n = rd_varint(&r);
		p = r.bad || n > LEDGER_PATH_MAX ? NULL : rd_bytes(&r, n);
		if (!p || memchr(p, 0, n))
			return -EIO;
		memcpy(path2, p, n);
		path2[n] = '\0';
		e->path2 = path2;
	}
	e->fields = fields & 0x1f;
	uint64_t v;
	if (fields & LEDGER_J_MODE) {
		v = rd_varint(&r);
		e->mode = v > UINT32_MAX ? (r.bad = true, 0) : (uint32_t)v;
	}
	if (fields & LEDGER_J_UID) {
		v = rd_varint(&r);
		e->uid = v > UINT32_MAX ? (r.bad = true, 0) : (uint32_t)v;
	}
	if (fields & LEDGER_J_GID) {
		v = rd_varint(&r);
		e->gid = v > UINT32_MAX ? (r.bad = true, 0) : (uint32_t)v;
	}
	if (fields & LEDGER_J_MTIME) {
		e->mtime.tv_sec = (time_t)unzigzag(rd_varint(&r));
		v = rd_varint(&r);
		e->mtime.tv_nsec = v >= 1000000000 ? (r.bad = true, 0) : (long)v;
	}
	if (fields & LEDGER_J_SIZE)
		e->size = rd_varint(&r);
	if (r.bad || r.p != r.end)
		return -EIO;
	return 0;
}
