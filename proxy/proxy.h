/*
 * proxy.h - the transparent SMTP proxy as a whole: conf->workers event-loop
 * threads, each accepting intercepted connections on every conf->listen
 * address (SO_REUSEPORT) and running the sessions it accepted.
 *
 * Shared by the workers: the configuration, the policy cache, the TLS
 * contexts (upstream, and toward the mailer when client_starttls) and the
 * count of live sessions checked against conf->max_sessions.
 */
#ifndef STS_PROXY_H
#define STS_PROXY_H

#include <stddef.h>

#include "core/conf.h"
#include "policy/sts_cache.h"
#include "proxy/session.h"

struct proxy;

/*
 * proxy_start - create the TLS contexts (tls.ca_file for upstream; for the
 * mailer, when tls.client_starttls, tls.server_cert/server_key or else a
 * self-signed pair kept in state_dir), then the workers with their policy
 * engines and listeners, and start the threads. Every listener is bound
 * and listening when this returns. Call it with the signals the caller
 * handles blocked: the threads inherit the mask.
 *
 * c and cache must outlive the proxy; neither is owned. Returns NULL with
 * one line in err on failure, e.g.
 * "listen 0.0.0.0:10025: bind: Address already in use"; nothing is left
 * running then.
 */
struct proxy *proxy_start(const struct conf *c, struct sts_cache *cache, char *err, size_t errlen);

/*
 * proxy_stop - stop accepting, let every session drain
 * (session_shutdown_all(): "421 4.3.2" at its next safe point), wait for
 * the threads and free everything. Blocks until the workers are done (at
 * most about conf->timeouts.data_done seconds). NULL is a no-op.
 */
void proxy_stop(struct proxy *p);

/*
 * proxy_stats - the counters of every worker summed into *out (which is
 * overwritten). Safe from any thread while the proxy runs.
 */
void proxy_stats(const struct proxy *p, struct session_stats *out);

/* proxy_sessions - sessions alive across all workers, as counted for max_sessions. */
unsigned proxy_sessions(const struct proxy *p);

#endif
