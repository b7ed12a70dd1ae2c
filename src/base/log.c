/* log.c - diagnostics to syslog or stderr. Thread-safe: each message is formatted into
 * one buffer and written with a single write(2)/syslog(3) call, so lines never interleave. */
#include "base/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_target log_target = LOG_TO_STDERR;
static atomic_int log_level = LOG_NOTICE;
static const char *log_ident = "ferryfs";

void log_init(enum log_target target, int level, const char *ident)
{
	log_target = target;
	atomic_store(&log_level, level);
	if (ident)
		log_ident = ident;
	if (target == LOG_TO_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(int level) { atomic_store(&log_level, level); }
int log_get_level(void) { return atomic_load(&log_level); }

int log_parse_level(const char *s)
{
	static const struct { const char *name; int level; } names[] = {
		{ "error", LOG_ERR }, { "err", LOG_ERR }, { "warning", LOG_WARNING },
		{ "warn", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].level;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	return -EINVAL;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
	if (level > atomic_load(&log_level))
		return;
	int saved = errno;
	char line[2048];
	if (log_target == LOG_TO_SYSLOG) {
		vsnprintf(line, sizeof(line), fmt, ap);
		syslog(level, "%s", line);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		int n = snprintf(line, sizeof(line),
				 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ",
				 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_ident,
				 (int)getpid(), level_name(level));
		if (n < 0)
			n = 0;
		if ((size_t)n < sizeof(line))
			n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if ((size_t)n >= sizeof(line) - 1)
			n = sizeof(line) - 2;
		line[n++] = '\n';
		ssize_t w = write(STDERR_FILENO, line, n);
		(void)w;
	}
	errno = saved;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
