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

#include <stdbool.h>
#include <stddef.h>

#include "core/conf.h"
#include "policy/sts_cache.h"
#include "policy/sts_engine.h"
#include "proxy/session.h"
#include "proxy/socketmap.h"

struct proxy;

/*
 * proxy_new - create the TLS contexts (tls.ca_file for upstream; for the
 * mailer, when tls.client_starttls, tls.server_cert/server_key or else a
 * self-signed pair kept in state_dir), then the workers with their policy
 * engines and listeners. Every listener is bound and listening when this
 * returns, but no thread runs yet: privileges can be dropped now, before
 * proxy_run() starts the threads (capabilities are per thread). The
 * socketmap listeners (conf->socketmap.listen) are bound first.
 *
 * c, cache, stats (the policy engines' shared counters; may be NULL) and
 * report (per policy domain TLS results for TLS-RPT, counted by every
 * session; may be NULL) must outlive the proxy; none is owned. Proactive policy refresh is left
 * to the caller's own engine. prev (may be NULL) is the running proxy this
 * one replaces on a reload: its listening sockets on the same addresses
 * are shared, not bound again (privileges may be gone by then); call this
 * before proxy_drain(prev). Returns NULL with
 * one line in err on failure, e.g.
 * "listen 0.0.0.0:10025: bind: Address already in use"; nothing is left
 * open then.
 */
struct proxy *proxy_new(const struct conf *c, struct sts_cache *cache,
                        struct sts_engine_stats *stats, struct sts_report *report,
                        const struct proxy *prev, char *err, size_t errlen);

/*
 * proxy_run - start the worker threads; 0, or -1 with err set (the proxy
 * must then be freed with proxy_stop()). Call it with the signals the
 * caller handles blocked: the threads inherit the mask.
 */
int proxy_run(struct proxy *p, char *err, size_t errlen);

/* proxy_start - proxy_new() then proxy_run(); NULL with err set on failure. */
struct proxy *proxy_start(const struct conf *c, struct sts_cache *cache, char *err, size_t errlen);

/*
 * proxy_drain - stop accepting and ask every session to finish
 * (session_shutdown_all(): "421 4.3.2" at its next safe point; after
 * conf->timeouts.drain seconds, session_abort_all()). Does not wait: poll
 * proxy_drained(), then proxy_stop(). A reload drains the old proxy this
 * way while the new one serves.
 */
void proxy_drain(struct proxy *p);

/* proxy_drained - every worker has finished draining (true for NULL). */
bool proxy_drained(const struct proxy *p);

/*
 * proxy_stop - proxy_drain() if not done yet, wait for the threads and
 * free everything. Blocks until the workers are done (at most about
 * conf->timeouts.drain seconds, plus a grace period for the last 421s).
 * NULL is a no-op.
 */
void proxy_stop(struct proxy *p);

/*
 * proxy_stats - the counters of every worker summed into *out (which is
 * overwritten). Safe from any thread while the proxy runs.
 */
void proxy_stats(const struct proxy *p, struct session_stats *out);

/*
 * proxy_smap_stats - the counters of the socketmap servers of every worker
 * (proxy/socketmap.h); a proxy that replaces prev starts from prev's
 * counts. Safe from any thread while the proxy runs.
 */
const struct smap_stats *proxy_smap_stats(const struct proxy *p);

/* proxy_sessions - sessions alive across all workers, as counted for max_sessions. */
unsigned proxy_sessions(const struct proxy *p);

#endif
