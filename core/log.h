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
#include <stdbool.h>
#include <stddef.h>

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

/*
 * Journal output. When stderr is the journal's stream (systemd sets
 * JOURNAL_STREAM to its "device:inode"), lines go to the journal through
 * sd_journal_sendv() with PRIORITY, MESSAGE and the fields below taken from
 * the message's key=value pairs, so that "journalctl SESSION_ID=..." finds
 * a session. If sending fails, the line goes to stderr as before (libsystemd
 * itself drops lines silently while journald's socket is absent).
 */
#define LOG_FIELDS_MAX      4
#define LOG_FIELD_VALUE_MAX 256 /* a longer value is cut */

struct log_field {
	const char *name; /* the journal field: "SESSION_ID", "DOMAIN", "RESULT_TYPE", "EVENT" */
	char value[LOG_FIELD_VALUE_MAX];
};

/*
 * log_fields - extract the journal fields of a key=value message into
 * out[0..LOG_FIELDS_MAX), in the order SESSION_ID (from session=), DOMAIN
 * (domain=), RESULT_TYPE (result_type=, else result=), EVENT (event=).
 * A key counts only at the start of a word; a value is the rest of the word
 * or a "double-quoted" string (with \" and \\ escapes). The first
 * occurrence of a key wins; empty values are skipped. Returns how many
 * fields were filled. Pure.
 */
size_t log_fields(const char *msg, struct log_field out[LOG_FIELDS_MAX]);

/* log_is_journal_stream - true when env ("dev:ino", JOURNAL_STREAM) names the file open on fd. */
bool log_is_journal_stream(const char *env, int fd);

/* fatal - log and exit(1): start-up errors and broken invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
