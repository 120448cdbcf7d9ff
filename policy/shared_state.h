/*
 * shared_state.h - what several gateways share through one Redis: the
 * second level of the policy cache, policy changes, and the servers seen
 * offering STARTTLS.
 *
 * Each gateway keeps its own memory and SQLite cache; Redis is asked only
 * on a local miss, for at most shared.wait_max, and a Redis that is down,
 * slow or answering nonsense makes every call here a quick miss: it never
 * blocks a loop and never changes a decision by its absence. What is
 * accepted from Redis is decided by the caller (policy/sts_engine.c, see
 * docs/SECURITY.md): a value read here is only decoded and bounded.
 *
 * Keys (prefix is shared.prefix):
 *   <prefix>policy:<domain>  a policy fetched by some gateway, expiring
 *                            with it; newest fetch wins (a script compares
 *                            fetch times)
 *   <prefix>fetch:<domain>:<id>  a gateway is fetching that policy now
 *                            (SET NX, expiring with the fetch's time bound)
 *   <prefix>srv:<address>    unix time a server was last seen offering
 *                            STARTTLS; only ever raised (a script keeps the
 *                            maximum), expiring with srvmem's memory
 * Channels: <prefix>policy carries "<domain> <id>" when a gateway fetched
 * a policy under a new id; <prefix>srv carries "<address> <unix time>".
 *
 * One object per loop (per policy engine), with its own connection; the
 * object that subscribes (one per process) has a second connection for
 * the subscription. Not thread-safe: every call from the loop's thread.
 */
#ifndef POLICY_SHARED_STATE_H
#define POLICY_SHARED_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/loop.h"
#include "policy/shared_value.h"

/* Counters of every shared_state of a process (relaxed atomics). */
struct shared_stats {
	_Atomic uint64_t conns;     /* Redis connections (gauge) */
	_Atomic uint64_t up;        /* of those, up now (gauge) */
	_Atomic uint64_t hits;      /* lookups Redis answered with a valid policy */
	_Atomic uint64_t misses;    /* lookups without one: none, timeout, down */
	_Atomic uint64_t waits;     /* asks again while another gateway fetched the same id */
	_Atomic uint64_t refused;   /* values read that were invalid or not accepted */
	_Atomic uint64_t stores;    /* policies written */
	_Atomic uint64_t publishes; /* changes and servers published */
	_Atomic uint64_t received;  /* changes and servers received */
	_Atomic uint64_t errors;    /* commands that failed or got an error reply */
};

struct shared_state;

/* shared_state_change_cb - another gateway fetched domain's policy under id. */
typedef void shared_state_change_cb(void *arg, const char *domain, const char *id);

/* shared_state_server_cb - a server was seen offering STARTTLS at seen (unix s). */
typedef void shared_state_server_cb(void *arg, int family, const uint8_t *addr, int64_t seen);

struct shared_state_params {
	struct loop *loop;
	const struct conf *conf; /* shared.*; not owned, outlives the object */
	bool subscribe; /* a subscription for the callbacks set below (one per process each) */
	struct shared_stats *stats;        /* NULL: not counted */
	shared_state_change_cb *on_change; /* with subscribe; NULL: none */
	shared_state_server_cb *on_server; /* with subscribe; NULL: none */
	void *arg;
};

/*
 * shared_state_new - connect as conf->shared says (conf->shared.enabled
 * must be true). Returns NULL on allocation failure. Free with
 * shared_state_free().
 */
struct shared_state *shared_state_new(const struct shared_state_params *p);

/* shared_state_free - drop the connections; no callback after. NULL is a no-op. */
void shared_state_free(struct shared_state *s);

/* shared_state_up - the command connection is up. */
bool shared_state_up(const struct shared_state *s);

/*
 * shared_state_get_cb - the shared policy of the domain asked for, decoded
 * (p->text valid only during the call), or NULL: none, invalid, Redis did
 * not answer within shared.wait_max, or the connection was lost.
 */
typedef void shared_state_get_cb(void *arg, const struct shared_policy *p);

/*
 * shared_state_get - ask Redis for domain's policy of TXT id. When Redis has
 * no policy of that id, the first gateway to ask claims its fetch (the
 * claim <prefix>fetch:<domain>:<id> lasts as long as a fetch may take) and
 * gets a miss (or the stored policy of another id): it fetches. A gateway
 * that finds the claim taken asks again every 10 ms for the policy the
 * claimant will store, until shared.wait_max: gateways that look up a
 * new policy at once fetch it once when the fetch takes less than that.
 * Returns a non-zero id; cb runs once, later (never inside this call), at
 * the latest after shared.wait_max. Returns 0 when Redis is not up or on
 * allocation failure: cb never runs, the caller goes on at once.
 */
uint64_t shared_state_get(struct shared_state *s, const char *domain, const char *id,
                          shared_state_get_cb *cb, void *arg);

/* shared_state_cancel - cb of id will not run; 0 and unknown ids are ignored. */
void shared_state_cancel(struct shared_state *s, uint64_t id);

/*
 * shared_state_put - store p for domain unless Redis holds a later fetch
 * of it; it expires with the policy. When changed is true, also publish
 * "<domain> <id>" so that the other gateways look again. Nothing is
 * waited for; a failure is counted and logged at debug level.
 */
void shared_state_put(struct shared_state *s, const char *domain, const struct shared_policy *p,
                      bool changed);

/*
 * shared_state_server - a server (AF_INET: 4 octets, AF_INET6: 16) was
 * seen offering STARTTLS at seen: raise its shared time (never lower it),
 * expiring after ttl seconds, and publish it.
 */
void shared_state_server(struct shared_state *s, int family, const uint8_t *addr, int64_t seen,
                         unsigned ttl);

/* shared_state_describe - "redis=<where> up" or "... down (<last error>)", for status. */
void shared_state_describe(const struct shared_state *s, char *buf, size_t len);

#endif
