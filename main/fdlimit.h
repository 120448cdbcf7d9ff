/*
 * fdlimit.h - open files enough for max_sessions.
 *
 * Every session holds two descriptors, the mailer's connection and the
 * MX's. A process started from a shell inherits a soft RLIMIT_NOFILE of
 * 1024, which ends sessions at random long before max_sessions; the
 * shipped unit sets LimitNOFILE= itself. At start the daemon raises the
 * soft limit to what its configuration needs, up to the hard limit, and
 * when even that is too low it lowers max_sessions to what fits, so that a
 * session beyond it is refused cleanly with 421 (the mailer retries)
 * instead of failing half-way.
 */
#ifndef STS_FDLIMIT_H
#define STS_FDLIMIT_H

#include <stdbool.h>
#include <sys/resource.h>

#include "core/conf.h"

#define FDLIMIT_PER_SESSION 2
#define FDLIMIT_BASE        64 /* main loop: logs, signals, cache, metrics, control, NFQUEUE */
#define FDLIMIT_PER_WORKER  64 /* each worker's loop, resolver and policy fetches */

/* fdlimit_need - descriptors c needs with max_sessions sessions open at once. */
rlim_t fdlimit_need(const struct conf *c);

/* fdlimit_sessions - sessions that fit in limit descriptors under c (0 when none fit). */
unsigned fdlimit_sessions(const struct conf *c, rlim_t limit);

/* What fdlimit_apply() did. */
struct fdlimit_result {
	rlim_t need;     /* fdlimit_need() of the configuration as given */
	rlim_t limit;    /* the soft limit now in force */
	bool hard;       /* limit is the hard limit (it could not go higher) */
	unsigned wanted; /* max_sessions as given */
	bool lowered;    /* c->max_sessions was lowered to what fits */
};

/*
 * fdlimit_apply - raise the soft RLIMIT_NOFILE to fdlimit_need(c), never
 * above the hard limit and never lowering it; then, when the limit is still
 * short, lower c->max_sessions to fdlimit_sessions() (at least 1). Fills r.
 * Returns 0, or -1 when the limits cannot be read or set (errno set;
 * c is left alone). Process-wide: call before the workers start, or on the
 * main thread for a reloaded configuration.
 */
int fdlimit_apply(struct conf *c, struct fdlimit_result *r);

#endif
