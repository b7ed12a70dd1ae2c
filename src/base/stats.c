/* stats.c - the process-wide counters (see stats.h). */
#include "base/stats.h"

#include <malloc.h>

struct ferry_stats ferry_stats;

uint64_t stats_heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();
	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#else
	return 0;
#endif
}
