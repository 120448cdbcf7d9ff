/*
 * session.h - one proxied SMTP session: the mailer (client) on one side,
 * the original destination MX (upstream) on the other.
 *
 * The session connects upstream, relays the banner, always upgrades the
 * upstream leg to STARTTLS when offered, asks the policy engine about every
 * recipient domain, and refuses recipients whose policy is not met (451)
 * without the upstream ever seeing them. Nothing is acknowledged to the
 * mailer that the upstream did not acknowledge first.
 *
 * Threading: a session lives on the loop of the worker that accepted it and
 * is touched only from that thread.
 */
#ifndef STS_SESSION_H
#define STS_SESSION_H

#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/conf.h"
#include "core/loop.h"
#include "policy/sts_engine.h"

struct sts_report;
struct upstream_pool;

/* Counters of one worker, read by the metrics endpoint (relaxed atomics). */
struct session_stats {
	_Atomic uint64_t sessions_total;
	_Atomic uint64_t sessions_active;
	_Atomic uint64_t messages_relayed[3]; /* by policy mode: none, testing, enforce */
	_Atomic uint64_t recipients_blocked[STS_RESULT_MAX]; /* by result type */
	_Atomic uint64_t recipients_reported[STS_RESULT_MAX];
	/* by the policy that decided (sts, tlsa, none): passed, refused, reported */
	_Atomic uint64_t recipients_by_policy[STS_PTYPE_MAX][3];
	_Atomic uint64_t tls_upstream;         /* sessions upgraded upstream */
	_Atomic uint64_t tls_upstream_resumed; /* ... of which resumed a cached TLS session */
	/* upstream reuse (proxy/upstream_pool.h): parked, taken from the pool,
	 * taken and used (a connect and handshake saved), taken and failed
	 * before the mailer's transaction had an answer from them (the session
	 * went on over a new connection), new connections made while pooling; and the
	 * connections parked now (a gauge) */
	_Atomic uint64_t reuse_parked;
	_Atomic uint64_t reuse_taken;
	_Atomic uint64_t reuse_saved;
	_Atomic uint64_t reuse_retried;
	_Atomic uint64_t reuse_missed;
	_Atomic uint64_t reuse_idle;
};

/*
 * What a worker shares with all its sessions. Owned by the worker; it
 * outlives every session started with it.
 */
struct session_ctx {
	struct loop *loop;
	const struct conf *conf;   /* the configuration at accept time */
	struct sts_engine *engine; /* this worker's policy engine */
	SSL_CTX *upstream_tls;     /* client context toward MX hosts (tls_client_ctx_new) */
	SSL_CTX *client_tls;       /* server context toward the mailer; NULL: no STARTTLS offered */
	struct session_stats *stats;
	/* Per policy domain TLS results for TLS-RPT, shared by every worker
	 * (not owned); NULL: not counted. */
	struct sts_report *report;
	unsigned worker_id;
	/* Called once when a session ends (after it is freed), e.g. to count
	 * it against max_sessions. May be NULL. */
	void (*on_end)(void *arg);
	void *on_end_arg;
	/* Idle verified upstream connections of this loop (owned by the worker,
	 * outlives every session); NULL: no reuse. */
	struct upstream_pool *pool;
	/* private to session.c: the sessions alive on this loop */
	struct session *sessions;
	unsigned n_sessions;
};

/*
 * session_start - take over client_fd (non-blocking, accepted and already
 * checked against the allowlist and max_sessions) whose original
 * destination is orig_dst, and run the session on ctx->loop. Returns 0; or
 * -1 on allocation failure, in which case client_fd is closed and on_end is
 * not called. From then on the session frees itself.
 */
int session_start(struct session_ctx *ctx, int client_fd, const struct sockaddr *client,
                  socklen_t client_len, const struct sockaddr *orig_dst, socklen_t orig_len);

/*
 * session_shutdown_all - for a draining stop: every session of ctx still
 * running gets "421 4.3.2 stsproxy shutting down" and is closed at its next
 * safe point (never between a final dot and the upstream's reply).
 */
void session_shutdown_all(struct session_ctx *ctx);

/*
 * session_abort_all - when a drain has lasted long enough: every session
 * still running gets "421 4.3.2 stsproxy shutting down" now and is closed
 * as soon as that reply is written, wherever it is. A mailer waiting for
 * the reply to its final dot keeps the message queued and retries: at worst
 * a duplicate, never a loss.
 */
void session_abort_all(struct session_ctx *ctx);

/* session_count - sessions alive on ctx's loop. */
unsigned session_count(const struct session_ctx *ctx);

#endif
