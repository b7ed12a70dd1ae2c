/* readahead.h - read-ahead for files read through a store (in practice: S3-only files).
 *
 * The kernel asks for 128 KiB - 1 MiB at a time; one ranged GET per kernel read is far
 * below what S3 streams give. Per open handle, ra_* detects sequential access and keeps a
 * window of bytes ahead of the reader fetched as parallel ranged reads ("parts") on a
 * small shared pool of worker threads; the window starts at window_min and doubles each
 * time the reader enters a new part, up to window_max. A random read is served by one
 * direct store_pread of exactly what was asked and resets the window. Every byte held by
 * read-ahead across all handles counts against one global cap (max_mem): at the cap,
 * read-ahead shrinks (smaller or fewer parts, then direct reads); it never allocates past it.
 *
 * It uses only the store.h interface (store_read_stream when the store has it, else
 * store_pread) and never changes what is read: the store pins content (S3: the ETag seen
 * at open), an error of the store reaches every read that needs the bytes it hit, and a
 * read returns either all the bytes it asked for (short only at end of file) or -errno,
 * never a part of them.
 *
 * Use (fs.c):
 *   ra_init(&cfg)                       once, after daemonizing (it starts threads)
 *   ra_open(st, f, size, &rf)           after store_open of an S3-only file
 *   ra_read(rf, buf, len, off)          instead of store_pread; any number of threads
 *   ra_close(rf)                        then store_close(st, f): ra_close returns only
 *                                       when no worker uses f any more
 *   ra_shutdown()                       after every handle is closed
 */
#ifndef FERRY_READAHEAD_H
#define FERRY_READAHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_file;
struct ra_file;

/* Zero in any field means its default. */
struct ra_config {
	uint64_t max_mem;     /* global cap on read-ahead memory (`readahead_max`; 256 MiB) */
	uint64_t part_size;   /* largest single ranged read (8 MiB) */
	uint64_t window_min;  /* first window of a sequential stream (1 MiB) */
	uint64_t window_max;  /* per-handle cap on the window (64 MiB) */
	unsigned threads;     /* fetch workers shared by all handles (8) */
};

#define RA_DEFAULT_MAX_MEM    (256ull << 20)
#define RA_DEFAULT_PART_SIZE  (8ull << 20)
#define RA_DEFAULT_WINDOW_MIN (1ull << 20)
#define RA_DEFAULT_WINDOW_MAX (64ull << 20)
#define RA_DEFAULT_THREADS    8u

/* Start the workers. cfg may be NULL (all defaults). 0, -EALREADY (already running),
 * -EINVAL (window_min > window_max), -ENOMEM, or -errno from pthread_create. */
int ra_init(const struct ra_config *cfg);

/* Stop the workers. Every ra_file must have been closed (a handle still open is logged
 * and its queued fetches are abandoned). Safe to call when ra_init was not. */
void ra_shutdown(void);

/* Read-ahead state for one open handle of `size` bytes. st and f stay owned by the
 * caller and must stay valid until ra_close returns. 0, -ENOMEM, or -ENXIO when
 * ra_init has not run. */
int ra_open(struct store *st, struct store_file *f, uint64_t size, struct ra_file **out);

/* Read [off, off+len) into buf: the count (len, or less only at end of file; 0 at or
 * past it), or -errno from the store (-ESTALE: the object changed since open; -EIO ...),
 * in which case buf holds nothing meaningful. Thread-safe on one handle. */
ssize_t ra_read(struct ra_file *rf, void *buf, size_t len, uint64_t off);

/* Cancel the handle's queued fetches, abort the ones in flight, wait for them to end and
 * free everything. NULL is fine. */
void ra_close(struct ra_file *rf);

struct ra_stats {
	uint64_t reads;          /* ra_read calls that returned data or an error */
	uint64_t hits;           /* ... served wholly from read-ahead parts */
	uint64_t misses;         /* ... that needed at least one direct store_pread */
	uint64_t bytes_served;   /* bytes returned by ra_read */
	uint64_t bytes_fetched;  /* bytes fetched into parts (used or not) */
	uint64_t bytes_direct;   /* bytes read by direct store_pread */
	uint64_t parts;          /* parts fetched (started) */
	uint64_t parts_cancelled;/* parts dropped before they were fully fetched */
	uint64_t errors;         /* parts that ended in a store error */
	uint64_t mem_used;       /* bytes in the buffers of parts now */
	uint64_t mem_cached;     /* idle buffers kept for reuse (freed when none is open) */
	uint64_t mem_peak;       /* the most of used + cached at once since ra_init (<= mem_max) */
	uint64_t mem_max;        /* the cap */
	uint64_t files_open;
};

/* A snapshot of the counters (all zero when ra_init has not run). */
void ra_stats(struct ra_stats *out);

#endif
