/*
 * tlsrpt_reporter.h - the TLS-RPT reports of this gateway (RFC 8460): once
 * every UTC day, after 00:00 UTC and a random delay of up to
 * report.delay_max, the report of the day before for each policy domain
 * with results in the store (only those with failures when
 * report.only_failures; no-policy-found results only with
 * report.include_no_policy), to every rua destination of the domain's
 * _smtp._tls record, retried as policy/tlsrpt_queue.h says.
 *
 * The daemon runs it in a thread of its own (tlsrpt_reporter_start);
 * "stsproxy report send" runs the same steps in the foreground
 * (tlsrpt_reporter_queue_day, tlsrpt_reporter_drain). Either way the
 * store's delivery record of (domain, day) decides: a report recorded as
 * sent, failed or skipped is never sent again, also after a restart.
 *
 * Several gateways (shared.enabled, policy/tlsrpt_shared.h): the thread
 * publishes this gateway's counts every report_store.flush_interval and
 * once more just after 00:00 UTC; a day's reports start no earlier than
 * TLSRPT_SHARED_MIN_DELAY after 00:00 UTC. A report is built by the gateway
 * that takes its lock, from the rows of every gateway; a gateway that finds
 * it sent by another records it skipped ("sent by gateway X"), one that
 * finds it held tries again later (the holder may die). A Redis that does
 * not answer delays the report up to report.shared_wait after its first
 * try; then this gateway sends what it has: its own counts, and the other
 * gateways' as it last read them.
 *
 * Every attempt is one log line
 *   event=tlsrpt-send domain=D day=YYYY-MM-DD uri=U attempt=N result=R ...
 * (R: delivered, retry, failed, skipped) and one count in the metrics.
 */
#ifndef TLSRPT_REPORTER_H
#define TLSRPT_REPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "policy/tlsrpt_sched.h"

struct report_store;
struct sts_report;
struct tlsrpt_reporter;
struct tlsrpt_shared_stats;

/* Attempts by destination kind and outcome, for the metrics. */
enum tlsrpt_kind { TLSRPT_KIND_HTTPS = 0, TLSRPT_KIND_MAILTO, TLSRPT_KIND_MAX };

struct tlsrpt_reporter_params {
	const struct conf *conf;    /* report.*, dns.*, tls.ca_file; must outlive the reporter */
	struct report_store *store; /* results and delivery records; must outlive it */
	struct sts_report *live;    /* counts not yet in the store, flushed before a day is
	                               read; NULL: none */
	/* With shared.enabled: the counters of policy/tlsrpt_shared.h; NULL: not counted. */
	struct tlsrpt_shared_stats *shared_stats;
	/* Only publish this gateway's counts to the shared Redis, send no report (a
	 * gateway without report.enable among others that send). */
	bool push_only;
};

/*
 * tlsrpt_reporter_new - a reporter (its resolver and sender ready, no
 * thread yet). NULL with a message in err on failure.
 */
struct tlsrpt_reporter *tlsrpt_reporter_new(const struct tlsrpt_reporter_params *p, char *err,
                                            size_t errlen);

/* tlsrpt_reporter_free - stop (if started) and free r; NULL is a no-op. */
void tlsrpt_reporter_free(struct tlsrpt_reporter *r);

/* tlsrpt_reporter_start - the daily thread; 0, or -1 with a message in err. */
int tlsrpt_reporter_start(struct tlsrpt_reporter *r, char *err, size_t errlen);

/*
 * tlsrpt_reporter_stop - end the thread: a running transfer is cut at
 * once, a wait ends at once (a DNS lookup in progress runs out its
 * timeout). Returns when the thread is gone. Reports not yet delivered
 * stay pending in the store. No-op when not started.
 */
void tlsrpt_reporter_stop(struct tlsrpt_reporter *r);

/* tlsrpt_reporter_attempts - attempts so far by kind and outcome (any thread). */
uint64_t tlsrpt_reporter_attempts(struct tlsrpt_reporter *r, enum tlsrpt_kind k,
                                  enum tlsrpt_outcome o);

/*
 * tlsrpt_reporter_queue_day - queue the reports of day (UTC midnight)
 * covering day..end, for every policy domain the filters keep, or for
 * domain alone (then only_failures does not apply: the operator asked for
 * it). Domains whose delivery is recorded as final are left out. Not while
 * the thread runs. Returns the number queued, -1 with err on a store error.
 */
int tlsrpt_reporter_queue_day(struct tlsrpt_reporter *r, int64_t day, int64_t end,
                              const char *domain, char *err, size_t errlen);

/*
 * tlsrpt_reporter_drain - step the queue until every job is final,
 * sleeping between retries. Returns the number of reports that were not
 * delivered anywhere (failed; a domain without a record is not counted).
 */
int tlsrpt_reporter_drain(struct tlsrpt_reporter *r);

/*
 * tlsrpt_reporter_json - the report text of domain for day..end, exactly
 * as it would be sent (the filters do not apply); with a shared Redis, the
 * other gateways' rows of the day are read from it first. Returns 0 and a
 * malloc'ed text in *out (free() it), 1 when the store has no results for
 * domain that day, -1 with err on an error.
 */
int tlsrpt_reporter_json(struct tlsrpt_reporter *r, const char *domain, int64_t day, int64_t end,
                         char **out, size_t *outlen, char *err, size_t errlen);

#endif
