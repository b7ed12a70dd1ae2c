/* log.h - the one place ferryfs writes diagnostics: syslog or stderr, with a level.
 *
 * Never pass a secret (secret access key, session token, Authorization header) to
 * these functions: nothing here can tell a secret from any other string. */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdarg.h>
#include <syslog.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
void log_init(enum log_target target, int level, const char *ident);
void log_set_level(int level);
int log_get_level(void);
/* Parse "error", "warning", "notice", "info", "debug" (or 3..7); -EINVAL if unknown. */
int log_parse_level(const char *s);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
