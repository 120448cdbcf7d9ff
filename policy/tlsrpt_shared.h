/*
 * tlsrpt_shared.h - the TLS-RPT counts of several gateways summed into one
 * report per policy domain and day, through the shared Redis (the shared
 * group; see docs/DESIGN.md "TLS-RPT results").
 *
 *   <prefix>rpt:<YYYYMMDD>            a hash: every gateway's totals of the
 *                                      day (policy/report_value.h), expiring
 *                                      after report_store.keep_days
 *   <prefix>rpt-lock:<day>:<domain>   the gateway building and sending that
 *                                      report (SET NX PX, renewed by it)
 *   <prefix>rpt-sent:<day>:<domain>   the gateway that delivered it
 *
 * Each gateway publishes its own rows, absolute totals (a retried write
 * never counts twice); the gateway that holds a report's lock takes the
 * others' rows of the day into its store in place of the ones it had, so
 * that the store's sum over gateways is the exact sum.
 *
 * Synchronous (hiredis, with shared.connect_timeout and
 * shared.command_timeout): only for the reporter's thread and "stsproxy
 * report", never for a loop. One object per thread. A call that cannot
 * reach Redis returns -1 (or TLSRPT_CLAIM_DOWN) and the next call connects
 * again.
 */
#ifndef POLICY_TLSRPT_SHARED_H
#define POLICY_TLSRPT_SHARED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "policy/report_store.h"

#define TLSRPT_SHARED_MIN_DELAY  300 /* seconds after 00:00 UTC before a shared report is built */
#define TLSRPT_SHARED_FIELDS_MAX 262144 /* rows of one day read from Redis */

/* Counters (relaxed atomics), kept by the caller across reporters. */
struct tlsrpt_shared_stats {
	_Atomic uint64_t pushes;      /* rows written to Redis */
	_Atomic uint64_t push_errors; /* pushes that failed (Redis down, error reply) */
	_Atomic uint64_t merged;      /* other gateways' rows taken into the store */
	_Atomic uint64_t refused;     /* values read that were invalid */
	_Atomic uint64_t skipped;     /* reports left to the gateway holding their lock */
};

struct tlsrpt_shared_params {
	const struct conf *conf;    /* shared.*, report_store.keep_days; outlives the object */
	struct report_store *store; /* this gateway's rows; outlives the object */
	struct tlsrpt_shared_stats *stats; /* NULL: not counted */
};

struct tlsrpt_shared;

/* tlsrpt_shared_new - NULL without memory; connects at the first call. */
struct tlsrpt_shared *tlsrpt_shared_new(const struct tlsrpt_shared_params *p);

/* tlsrpt_shared_free - NULL is a no-op. */
void tlsrpt_shared_free(struct tlsrpt_shared *t);

/*
 * tlsrpt_shared_push - write every row of this gateway changed since its
 * last push, and mark each one pushed once Redis took it. Returns the
 * number of rows written, or -1 with err (the rows stay to push).
 */
int tlsrpt_shared_push(struct tlsrpt_shared *t, char *err, size_t errlen);

/*
 * tlsrpt_shared_merge - read the rows of day from Redis and put the other
 * gateways' rows into the store in place of the ones it held for them
 * (report_store_replace_others); invalid values are logged, counted and
 * left out. Returns the number of rows taken in, or -1 with err (the
 * store is unchanged).
 */
int tlsrpt_shared_merge(struct tlsrpt_shared *t, int64_t day, char *err, size_t errlen);

enum tlsrpt_claim {
	TLSRPT_CLAIM_OURS = 0, /* this gateway holds the lock (taken or renewed) */
	TLSRPT_CLAIM_HELD,     /* another gateway holds it; holder names it */
	TLSRPT_CLAIM_SENT,     /* the report was delivered; holder names by whom */
	TLSRPT_CLAIM_DOWN,     /* no answer from Redis; err says why */
};

/*
 * tlsrpt_shared_claim - take (or renew) the lock of the report of
 * (day, domain) for ttl_ms, unless another gateway holds it or it was
 * sent. holder (at least REPORT_STORE_GATEWAY_LEN octets) gets the
 * gateway named in Redis ("?" when that name is not a valid id).
 */
enum tlsrpt_claim tlsrpt_shared_claim(struct tlsrpt_shared *t, int64_t day, const char *domain,
                                      unsigned ttl_ms, char *holder, char *err, size_t errlen);

/*
 * tlsrpt_shared_sent - record that this gateway delivered the report of
 * (day, domain): nobody sends it again, also after the lock expired.
 * 0, or -1 with err.
 */
int tlsrpt_shared_sent(struct tlsrpt_shared *t, int64_t day, const char *domain, char *err,
                       size_t errlen);

#endif
