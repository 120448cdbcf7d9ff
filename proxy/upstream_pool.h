/*
 * upstream_pool.h - idle upstream connections of one worker loop, kept
 * after a client's QUIT so that the next session of the same client
 * identity (client address, EHLO name, original destination address and
 * port) to the same destination takes it instead of a new TCP connect and
 * TLS handshake.
 *
 * Only a verified-leg candidate is parked: a TLS connection whose
 * handshake completed, that acknowledged at least one message, whose last
 * reply was 2xx, with nothing due or buffered either way and never in
 * doubt (see upstream_park() in upstream.h). The connection keeps its TLS
 * facts, banner and EHLO reply; recipients on it are judged on those facts
 * as on any connection. While parked, any byte or the end of the
 * connection from the MX drops it (a 421 or a close is how an MX ends an
 * idle connection), and so does the idle limit (after a QUIT).
 *
 * One pool per worker loop, touched only from that loop's thread: no
 * locks. The counters are relaxed atomics that other threads may read.
 */
#ifndef STS_UPSTREAM_POOL_H
#define STS_UPSTREAM_POOL_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/loop.h"

struct upstream_pool;

/* Counters kept by the pool (each may be NULL). */
struct upstream_pool_stats {
	_Atomic uint64_t *parked;  /* connections parked after a QUIT */
	_Atomic uint64_t *taken;   /* ... taken by a session of the same client and destination */
	_Atomic uint64_t *saved;   /* ... that answered RSET and carried it: a connect and a
	                              handshake saved */
	_Atomic uint64_t *retried; /* ... then failed before the mailer's transaction had an
	                              answer from them: it went on over a new connection */
	_Atomic uint64_t *missed;  /* sessions that made a new connection while pooling */
	_Atomic uint64_t *idle;    /* gauge: connections parked now */
};

struct upstream_pool_params {
	struct loop *loop;
	const struct conf *conf; /* upstream.reuse_*; outlives the pool */
	struct upstream_pool_stats stats;
};

/* upstream_pool_new - an empty pool; NULL on no memory. */
struct upstream_pool *upstream_pool_new(const struct upstream_pool_params *p);

/* upstream_pool_flush - close every parked connection (QUIT first); for a drain. */
void upstream_pool_flush(struct upstream_pool *p);

/* upstream_pool_free - flush and free; NULL is a no-op. Before the loop is freed. */
void upstream_pool_free(struct upstream_pool *p);

/* upstream_pool_size - connections parked now. */
unsigned upstream_pool_size(const struct upstream_pool *p);

#endif
