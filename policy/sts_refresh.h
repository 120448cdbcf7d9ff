/*
 * sts_refresh.h - the proactive refresh of cached policies (RFC 8461
 * section 3.3): on a loop timer, forget what has expired and hand the
 * domains whose policy expires within the hour to the engine, a few per
 * tick, so that policies fetched together are not all fetched again at
 * once.
 *
 * The scheduler only chooses: the engine that owns it does the refresh
 * (sts_refresh_start_cb) and decides which domains to skip (an operator
 * policy needs none). One per process is enough, since every engine shares
 * the cache. Single-threaded: the loop's thread only.
 */
#ifndef STS_REFRESH_H
#define STS_REFRESH_H

#include "core/loop.h"
#include "policy/sts_cache.h"

#define STS_REFRESH_MS       60000 /* the default tick */
#define STS_REFRESH_MARGIN   3600  /* s before expiry a cached policy is refreshed */
#define STS_REFRESH_PER_TICK 4

struct sts_refresh;

/* sts_refresh_start_cb - refresh domain now, in the background; a string valid during the call. */
typedef void sts_refresh_start_cb(void *arg, const char *domain);

struct sts_refresh_params {
	struct loop *loop;
	struct sts_cache *cache; /* not owned */
	unsigned interval_ms;    /* 0: STS_REFRESH_MS */
	sts_refresh_start_cb *start;
	void *arg;
};

/* sts_refresh_new - start ticking; NULL when out of memory. Free with sts_refresh_free(). */
struct sts_refresh *sts_refresh_new(const struct sts_refresh_params *p);

/* sts_refresh_free - stop and free; NULL is a no-op. start never runs after. */
void sts_refresh_free(struct sts_refresh *r);

#endif
