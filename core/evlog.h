/*
 * evlog.h - the event log: one JSON object per line, shared by the proxy
 * and the packet inspector, read by operators and by TLS-RPT reporting.
 *
 * Events carry the RFC 8460 result type names from core/types.h. Several
 * threads and processes may write the same file: every line goes out in
 * one write(2) on an O_APPEND descriptor, so lines never interleave.
 *
 * Ownership: the writer never takes a reference on an event; the caller
 * keeps and releases it (json_decref).
 */
#ifndef STS_EVLOG_H
#define STS_EVLOG_H

#include <stddef.h>

#include <jansson.h>

/*
 * evlog_open - append events to path (created 0640 when missing). NULL or ""
 * disables the event log. Replaces a previously opened file. Returns 0, or
 * -1 with errno set; the previous state is kept on failure.
 */
int evlog_open(const char *path);

/* evlog_reopen - reopen the same path (after rotation); 0 (also when disabled) or -1 with errno. */
int evlog_reopen(void);

/* evlog_close - close the file; events are dropped until the next evlog_open(). */
void evlog_close(void);

/*
 * evlog_write - write event (a JSON object) as one compact line, with "ts"
 * (RFC 3339 UTC with milliseconds) first when the event has none. Thread
 * safe. event is not modified and not consumed. Returns 0 (also when
 * disabled), or -1 when event is not an object, cannot be serialised, or
 * the write fails (errno set).
 */
int evlog_write(json_t *event);

/*
 * evlog_str - a JSON string from arbitrary bytes (attacker-controlled
 * names, replies): valid UTF-8 is kept, each byte that is not part of a
 * valid sequence becomes U+FFFD, NUL and control characters are kept (the
 * serialiser escapes them). s may be NULL when len is 0. Returns a new
 * reference, or NULL only when out of memory.
 */
json_t *evlog_str(const char *s, size_t len);

#endif
