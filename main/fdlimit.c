/*
 * fdlimit.c - the open-files limit against max_sessions.
 *
 * The listeners are counted per worker: each worker binds its own socket
 * for every listen address (SO_REUSEPORT).
 */
#include <errno.h>
#include <string.h>

#include "main/fdlimit.h"

/*
 * reserve - the descriptors that are not sessions': per worker, its own
 * and its listeners, and the idle upstream connections it may keep
 * (upstream.reuse_max when reuse is on).
 */
static rlim_t
reserve(const struct conf *c)
{
	rlim_t parked = c->upstream.reuse_idle > 0 ? c->upstream.reuse_max : 0;

	return FDLIMIT_BASE +
	       (rlim_t)c->workers * (FDLIMIT_PER_WORKER + (rlim_t)c->n_listen + parked);
}

/* fdlimit_need - see fdlimit.h */
rlim_t
fdlimit_need(const struct conf *c)
{
	return reserve(c) + (rlim_t)FDLIMIT_PER_SESSION * c->max_sessions;
}

/* fdlimit_sessions - see fdlimit.h */
unsigned
fdlimit_sessions(const struct conf *c, rlim_t limit)
{
	rlim_t n;

	if (limit == RLIM_INFINITY)
		return c->max_sessions;
	if (limit <= reserve(c))
		return 0;
	n = (limit - reserve(c)) / FDLIMIT_PER_SESSION;
	return n < c->max_sessions ? (unsigned)n : c->max_sessions;
}

/* fdlimit_apply - see fdlimit.h */
int
fdlimit_apply(struct conf *c, struct fdlimit_result *r)
{
	struct rlimit rl;
	unsigned fit;

	memset(r, 0, sizeof(*r));
	r->need = fdlimit_need(c);
	r->wanted = c->max_sessions;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < r->need) {
		struct rlimit want = rl;

		want.rlim_cur =
		    rl.rlim_max == RLIM_INFINITY || rl.rlim_max > r->need ? r->need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) < 0)
			return -1;
		rl = want;
	}
	r->limit = rl.rlim_cur;
	r->hard = rl.rlim_cur == rl.rlim_max;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= r->need)
		return 0;
	fit = fdlimit_sessions(c, rl.rlim_cur);
	c->max_sessions = fit > 0 ? fit : 1;
	r->lowered = true;
	return 0;
}
