/*
 * worker.h - one event-loop thread of the proxy: its own loop, policy
 * engine and listener sockets (one per configured address, all bound with
 * SO_REUSEPORT so that the kernel spreads connections over the workers),
 * and the sessions it accepted.
 *
 * Used by proxy.c only. The accept path refuses, in this order: a source
 * outside conf->clients (554), a connection that was not intercepted (554,
 * never an open relay), and one beyond the global max_sessions (421); the
 * rest become sessions (session_start()).
 */
#ifndef STS_WORKER_H
#define STS_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "core/conf.h"
#include "policy/sts_cache.h"
#include "proxy/session.h"
#include "proxy/socketmap.h"

struct worker;

struct worker_params {
	unsigned id;
	const struct conf *conf;               /* outlives the worker; not owned */
	struct sts_cache *cache;               /* shared by every worker; not owned */
	SSL_CTX *upstream_tls;                 /* referenced by the worker (SSL_CTX_up_ref) */
	SSL_CTX *client_tls;                   /* the same; NULL: no STARTTLS offered to mailers */
	atomic_uint *active;                   /* sessions alive in the whole process; not owned */
	unsigned max_sessions;                 /* limit on *active */
	struct sts_engine_stats *engine_stats; /* shared counters; NULL: none */
	struct sts_report *report;             /* TLS-RPT counts, shared; NULL: none */
	/* A running worker of the configuration this one replaces: listeners on
	 * the same addresses are taken over (dup) instead of bound again, so a
	 * reload works after privileges were dropped. NULL: bind everything. */
	const struct worker *inherit;
	/* The socketmap listening sockets of the process (conf->socketmap.listen
	 * order), served by every worker through its own dup; not owned. */
	const int *smap_fds;
	size_t n_smap_fds;
	struct smap_stats *smap_stats; /* shared; not owned; NULL when n_smap_fds is 0 */
};

/*
 * worker_new - create the loop, the engine and the bound, listening
 * sockets of a worker, without starting its thread. Returns NULL with one
 * line in err (e.g. "listen 0.0.0.0:10025: bind: Address already in use").
 * Free with worker_free().
 */
struct worker *worker_new(const struct worker_params *p, char *err, size_t errlen);

/* worker_start - start the thread that runs the loop; 0, or -1 with err set. */
int worker_start(struct worker *w, char *err, size_t errlen);

/*
 * worker_stop - ask the thread to stop: close the listeners, tell every
 * session to drain (session_shutdown_all()), and end the loop once no
 * session is left (or after conf->timeouts.data_done seconds). Returns at
 * once; safe to call from any thread, and more than once.
 */
void worker_stop(struct worker *w);

/*
 * worker_free - stop if needed, join the thread and free everything.
 * Sessions still alive after the drain deadline are abandoned with their
 * loop and engine (the process is about to exit). NULL is a no-op.
 */
void worker_free(struct worker *w);

/* worker_finished - the thread's loop has returned (after a stop and its drain). */
bool worker_finished(const struct worker *w);

/* worker_stats_add - add the worker's counters to *sum (relaxed loads). */
void worker_stats_add(const struct worker *w, struct session_stats *sum);

#endif
