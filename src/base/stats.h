/* stats.h - process-wide counters behind user.ferryfs.stats and `ferryctl stats`.
 * Every counter is a C11 atomic: any thread bumps any counter without a lock. */
#ifndef FERRY_STATS_H
#define FERRY_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct ferry_stats {
	atomic_uint_fast64_t s3_requests;  /* HTTP requests sent to S3, retries included */
	atomic_uint_fast64_t s3_errors;    /* requests that returned an error to their caller */
	atomic_uint_fast64_t s3_retries;   /* requests sent again after a transient failure */
	atomic_uint_fast64_t credential_refreshes; /* credentials renewed (s3/creds.h) */
	atomic_uint_fast64_t credential_errors;    /* renewals that failed */
	atomic_uint_fast64_t nfs_errors;   /* NFS calls that failed (any errno but ENOENT/EEXIST) */
	atomic_uint_fast64_t nfs_reconnects;
	atomic_uint_fast64_t reads_s3;     /* FUSE reads served from S3 */
	atomic_uint_fast64_t reads_nfs;    /* FUSE reads served from the new store */
	atomic_uint_fast64_t bytes_s3;
	atomic_uint_fast64_t bytes_nfs;
	atomic_uint_fast64_t unreachable;  /* S3 keys seen that cannot be POSIX names (spec 2) */
	atomic_uint_fast64_t shadowed;     /* S3 objects hidden by a directory of the same name */
	atomic_uint_fast64_t whiteouts;    /* whiteouts created through this mount */
	atomic_uint_fast64_t copyups;      /* files copied up because a write needed them on NFS */
};

extern struct ferry_stats ferry_stats;

/* Bytes the C allocator has handed out and not got back (glibc's mallinfo2: in-use heap
 * chunks plus mmapped blocks), 0 where it cannot tell. Unlike RSS it does not count freed
 * memory an arena keeps: the figure a leak makes grow (tests/integration/load.sh). */
uint64_t stats_heap_bytes(void);

#define stats_inc(field) atomic_fetch_add_explicit(&ferry_stats.field, 1, memory_order_relaxed)
#define stats_add(field, n) atomic_fetch_add_explicit(&ferry_stats.field, (n), memory_order_relaxed)
#define stats_get(field) atomic_load_explicit(&ferry_stats.field, memory_order_relaxed)

#endif
