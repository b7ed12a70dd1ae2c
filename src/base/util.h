/* util.h - small shared helpers: a growable byte buffer, hex, string and time helpers.
 * Nothing here does I/O to a store or takes a lock. */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A growable buffer; data is always NUL-terminated (the NUL is not counted in len).
 * A zeroed struct buf is a valid empty buffer. buf_free releases the memory. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

int buf_reserve(struct buf *b, size_t extra);          /* 0 / -ENOMEM */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);                         /* len = 0, memory kept */
void buf_free(struct buf *b);
/* Overwrite the contents with zeroes before freeing (for buffers that held secrets). */
void buf_free_secure(struct buf *b);

/* Value of one hex digit (either case), -1 if c is not one. */
int util_hexval(int c);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void util_hex(const unsigned char *in, size_t n, char *out);

/* SHA-256 of a memory block as 64 hex characters + NUL. 0 / -EIO. */
int util_sha256_hex(const void *p, size_t n, char out[65]);

/* Undo the kernel's octal escapes of /proc/mounts and mountinfo ("\040" for a space), in
 * place. */
void util_unescape_octal(char *s);

/* strdup that returns NULL only on ENOMEM (util_strdup(NULL) is NULL); util_strndup
 * likewise. */
char *util_strdup(const char *s);
char *util_strndup(const char *s, size_t n);
/* Free a string after zeroing it (secrets). NULL is fine. */
void util_free_secret(char *s);

/* Parse a size with optional K/M/G/T suffix (powers of 1024): "64M" -> 67108864.
 * 0 / -EINVAL. */
int util_parse_size(const char *s, uint64_t *out);
/* Parse an unsigned integer in [min,max]; 0 / -EINVAL / -ERANGE. */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Monotonic clock in nanoseconds / seconds as double. */
uint64_t util_now_ns(void);
double util_now_s(void);
/* Sleep for ms milliseconds (restarting on EINTR). */
void util_sleep_ms(unsigned ms);

/* Parse an ISO 8601 UTC timestamp as S3 prints them ("2026-11-23T01:35:16.000Z").
 * 0 / -EINVAL. */
int util_parse_iso8601(const char *s, struct timespec *out);
/* The CLOCK_REALTIME time ms milliseconds from now, for pthread_cond_timedwait. */
void util_abstime_ms(struct timespec *ts, unsigned ms);
/* Parse an RFC 1123 HTTP date ("Mon, 23 Nov 2026 01:35:16 GMT"). 0 / -EINVAL. */
int util_parse_http_date(const char *s, struct timespec *out);
/* Format t as "2026-11-23T01:35:16Z" (21 bytes with NUL). */
void util_format_iso8601(time_t t, char out[21]);

#endif
