/*
 * tlsrpt_sched.h - when TLS-RPT reports go out and when a failed delivery
 * is tried again (RFC 8460 section 5.3: daily reports on whole UTC days,
 * sent after 00:00 UTC with a random delay, retried for a bounded time).
 *
 * Everything here is pure: no clock, no randomness, no I/O. The caller
 * passes the time and the random delay it drew, so that a day boundary, a
 * clock that steps back and a long outage are all plain table tests.
 * Times are unix seconds, days are unix seconds at 00:00:00 UTC (UTC has
 * no daylight saving: a day is always 86400 seconds).
 */
#ifndef TLSRPT_SCHED_H
#define TLSRPT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#define TLSRPT_DAY       86400
#define TLSRPT_NO_DAY    INT64_MIN /* "no day reported yet" */
#define TLSRPT_RETRY_CAP 21600     /* longest wait between two attempts: 6 h */
#define TLSRPT_WHY_MAX   256       /* a reason for the log, with the NUL */

/* tlsrpt_sched_day_of - the UTC day of t (t rounded down to a multiple of 86400). */
int64_t tlsrpt_sched_day_of(int64_t t);

/*
 * tlsrpt_sched_next - the next daily run after the report of done_day was
 * finished (TLSRPT_NO_DAY: none yet), at time now, with the random delay
 * of that run (0..delay_max). *day is the UTC day that run reports; the
 * return value is when it may start (<= now: start at once).
 *
 * The day reported is the day before today (section 4.1), never one that
 * is not over and never done_day or an earlier one: after a clock stepped
 * back below done_day the next run waits for the day after done_day to
 * end. Days missed while the daemon was down are the reporter's to catch
 * up at its start (policy/tlsrpt_reporter.c), not this schedule's.
 */
int64_t tlsrpt_sched_next(int64_t now, int64_t done_day, int64_t delay, int64_t *day);

/*
 * tlsrpt_sched_backoff - seconds to wait after failed attempt number
 * attempt (1 = the first) before the next: first, 2*first, 4*first...,
 * at most TLSRPT_RETRY_CAP (and at least 1).
 */
int64_t tlsrpt_sched_backoff(unsigned attempt, int64_t first);

/* What one delivery attempt came to. */
enum tlsrpt_outcome {
	TLSRPT_OUT_DELIVERED = 0, /* https: 2xx; mailto: the relay took the message (250) */
	TLSRPT_OUT_TEMP,          /* worth trying again: network, timeout, 5xx / 4xx SMTP, 429 */
	TLSRPT_OUT_PERM,          /* never worth trying again: 4xx HTTP, 5xx SMTP, bad URI */
	TLSRPT_OUT_TOO_BIG,       /* over report.max_size: not attempted */
	TLSRPT_OUT_MAX
};

/* The state of one delivery: one report (domain, day) to one rua URI. */
enum tlsrpt_state {
	TLSRPT_S_PENDING = 0, /* waiting for next_at */
	TLSRPT_S_DELIVERED,   /* final */
	TLSRPT_S_FAILED,      /* final: a permanent failure, or retries ran out */
	TLSRPT_S_SKIPPED,     /* final: not attempted (too big) */
	TLSRPT_S_MAX
};

/* One delivery; the caller keeps it, tlsrpt_attempt_*() move it on. */
struct tlsrpt_attempt {
	enum tlsrpt_state state;
	unsigned attempts; /* made so far */
	int64_t first_at;  /* time of the first attempt; 0 before it */
	int64_t next_at;   /* when the next attempt is due (TLSRPT_S_PENDING) */
};

/* Retry parameters (report.retry_first, report.retry_for). */
struct tlsrpt_retry {
	int64_t first; /* seconds before the first retry */
	int64_t span;  /* no attempt starts later than first_at + span */
};

/* tlsrpt_attempt_init - a new delivery, due at. */
void tlsrpt_attempt_init(struct tlsrpt_attempt *a, int64_t at);

/* tlsrpt_attempt_due - true when a is pending and next_at <= now. */
bool tlsrpt_attempt_due(const struct tlsrpt_attempt *a, int64_t now);

/*
 * tlsrpt_attempt_result - record the outcome of the attempt that started
 * at now and return the new state: DELIVERED, FAILED (permanent, or the
 * next attempt would start after first_at + span), SKIPPED (too big), or
 * PENDING with next_at = now + backoff. A final state does not change.
 */
enum tlsrpt_state tlsrpt_attempt_result(struct tlsrpt_attempt *a, enum tlsrpt_outcome o,
                                        int64_t now, const struct tlsrpt_retry *r);

/* tlsrpt_state_name - "pending", "delivered", "failed", "skipped"; never NULL. */
const char *tlsrpt_state_name(enum tlsrpt_state s);

/* tlsrpt_outcome_name - "delivered", "temp-failure", "perm-failure", "too-big"; never NULL. */
const char *tlsrpt_outcome_name(enum tlsrpt_outcome o);

#endif
