/*
 * sts_refresh.c - the refresh scheduler of cached policies (see
 * sts_refresh.h): one loop timer, re-armed after every tick.
 */
#include <stdlib.h>

#include "core/util.h"
#include "policy/sts_refresh.h"

struct sts_refresh {
	struct sts_refresh_params p;
	uint64_t timer;
};

static void
tick(struct loop *loop, void *arg)
{
	struct sts_refresh *r = arg;
	char domains[STS_REFRESH_PER_TICK][254];
	size_t n;

	r->timer = 0;
	/* Section 3.3: refresh before expiry, a few per tick so that policies fetched
	 * together are not all refetched at once. */
	(void)sts_cache_prune(r->p.cache, sts_now_wall());
	n = sts_cache_due(r->p.cache, sts_now_wall(), STS_REFRESH_MARGIN, domains,
	                  STS_REFRESH_PER_TICK);
	for (size_t i = 0; i < n; i++)
		r->p.start(r->p.arg, domains[i]);
	r->timer = loop_timer_add(loop, r->p.interval_ms, tick, r);
}

struct sts_refresh *
sts_refresh_new(const struct sts_refresh_params *p)
{
	struct sts_refresh *r;

	if (p->start == NULL || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->p = *p;
	if (r->p.interval_ms == 0)
		r->p.interval_ms = STS_REFRESH_MS;
	if ((r->timer = loop_timer_add(p->loop, r->p.interval_ms, tick, r)) == 0) {
		free(r);
		return NULL;
	}
	return r;
}

void
sts_refresh_free(struct sts_refresh *r)
{
	if (r == NULL)
		return;
	loop_timer_cancel(r->p.loop, r->timer);
	free(r);
}
