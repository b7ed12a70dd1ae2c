/* memstore.h - an in-memory implementation of the store.h table for unit tests: not a mock
 * (no scripted answers) but a small real store of immutable object versions, with the
 * S3 store's read semantics: a handle is pinned to the version seen at open, and a
 * request for a version that has since been replaced fails with -ESTALE at its start
 * (a request that started goes on with the old bytes, as a GET with If-Match does).
 *
 * Knobs for tests (set them before the requests they should affect):
 *   latency_us   sleep before every pread/read_stream (a request's first-byte latency)
 *   stream_bps   per-request bandwidth, 0 = unlimited (a request takes len/bps longer)
 *   chunk        bytes per sink call in read_stream (default 64 KiB)
 *   err_*        a byte range of one path that cannot be read: a request that includes
 *                any of its bytes fails with err_rc when it reaches err_off (read_stream
 *                delivers the bytes before it first; pread returns the error outright)
 * Counters (atomic): requests, bytes, inflight, max_inflight.
 * memstore_new(0) has read_stream; memstore_new(1) offers pread only. */
#ifndef FERRY_TEST_MEMSTORE_H
#define FERRY_TEST_MEMSTORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store/store.h"

struct memstore_ver;

struct memstore {
	struct store base;
	pthread_mutex_t lock;              /* protects objs/nobjs and the err_* fields */
	struct memstore_obj {
		char *path;
		struct memstore_ver *cur;  /* the current version */
	} *objs;
	unsigned nobjs;
	struct memstore_ver *versions;     /* every version ever put, freed at destroy */
	unsigned next_ver;

	atomic_uint latency_us;
	atomic_uint_fast64_t stream_bps;
	size_t chunk;
	char *err_path;
	uint64_t err_off, err_end;
	int err_rc;

	atomic_uint_fast64_t requests, bytes;
	atomic_int inflight, max_inflight;
};

struct memstore *memstore_new(int pread_only);
/* Store a copy of data as the new version of path (replacing any older one). 0 / -ENOMEM. */
int memstore_put(struct memstore *m, const char *path, const void *data, uint64_t size);
/* Make [off, end) of path unreadable with rc (rc 0 clears it). */
void memstore_fail_range(struct memstore *m, const char *path, uint64_t off, uint64_t end, int rc);

#endif
