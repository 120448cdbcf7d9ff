/*
 * log.h - the main log: one line per event, key=value for humans.
 *
 * Lines go to stderr (or the configured file) with a timestamp and level.
 * An error is logged once, where it is detected. Every line about a session
 * carries its id (callers put "session=%s" in the message).
 */
#ifndef STS_LOG_H
#define STS_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* log_level_parse - 0 and *out for "err", "warn", "notice", "info", "debug"; -1 otherwise. */
int log_level_parse(const char *name, enum log_level *out);

/* log_set_level - lines above this level are dropped. Default: info. */
void log_set_level(enum log_level level);

/* log_open - send lines to path (append); NULL or "" means stderr. 0 or -1 (errno). */
int log_open(const char *path);

/* log_reopen - reopen the current file (after rotation); 0 or -1. */
int log_reopen(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_err(...)    log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* fatal - log and exit(1): start-up errors and broken invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
