/* stats.c - the process-wide counters (see stats.h). */
#include "stats.h"

struct ferry_stats ferry_stats;
