/* fuzz.h - what the libFuzzer targets share: a check that aborts (so libFuzzer records the
 * input as a crash) and a splitter for inputs made of NUL-separated fields. */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: a failure is a bug, reported as a crash. */
#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz: %s:%d: invariant broken: %s\n", __FILE__,    \
				__LINE__, #cond);                                                 \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* Copy data into one malloc'd block of NUL-terminated fields (split at NUL bytes) and
 * point up to max entries of f at them; missing fields are "". Returns the block (free it). */
static inline char *fuzz_fields(const uint8_t *data, size_t size, const char **f, size_t max)
{
	char *blk = malloc(size + 1);
	if (!blk)
		abort();
	memcpy(blk, data, size);
	blk[size] = '\0';
	size_t n = 0;
	char *p = blk, *end = blk + size;
	while (n < max) {
		f[n++] = p;
		p += strlen(p);
		if (p >= end)
			break;
		p++;
	}
	while (n < max)
		f[n++] = "";
	return blk;
}

#endif
