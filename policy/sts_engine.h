/*
 * sts_engine.h - the MTA-STS policy engine: for a recipient domain, what
 * must a connection to its MX look like, and does a given upstream session
 * meet it (RFC 8461 sections 3, 4 and 5).
 *
 * An engine belongs to one event loop (one per worker thread): its resolver
 * (sts_dns) and policy fetcher (sts_fetch) run in that loop, and every
 * function here must be called from that loop's thread. Engines of several
 * loops share one struct sts_cache, which is thread-safe, and with it the
 * table of recent DNS answers (sts_cache_seen()): every engine judges a
 * domain on the same TXT id and the same MX set.
 *
 * Decisions rest on what the domain publishes now (sections 3.1, 5.1): the
 * TXT record _mta-sts.<domain> is asked for on every lookup that is not
 * answered from memory, and a new id is fetched before the answer. An
 * answer comes from memory (sts_engine_lookup_now(), without a system call
 * or an allocation) only for an operator policy or a smarthost, or while
 * the TXT answer last received is within its DNS TTL and names the cached
 * policy (or no policy), and the MX set is within its own TTL; the TTLs
 * are bounded by sts.txt_ttl_min/max and sts.mx_ttl_min/max. Otherwise
 * sts_engine_lookup() resolves asynchronously: TXT _mta-sts.<domain>, the
 * policy fetch when the id is new, the MX set unless one within its TTL is
 * remembered, and the addresses of the MX hosts that match the policy.
 * sts_engine_recheck() asks for the MX set in every case. Concurrent
 * lookups of one domain share one resolution; a policy id that the engine
 * of another loop is fetching is not fetched again: the lookup waits for
 * that fetch's result in the cache (policy/sts_claim.h).
 *
 * When the resolver fails temporarily, the cached policy applies (section
 * 3.3), and the last TXT answer and MX set stand for 30 s before a lookup
 * waits for the resolver again.
 *
 * Beside MTA-STS, every lookup of a domain whose DANE mode is not off
 * (dane.enabled, the operator's "dane" for the domain, and a trust anchor)
 * carries the domain's DANE state (RFC 7672 section 2.2, policy/sts_dane.h):
 * from the table of recent answers while it is within its TTL, else from
 * the resolver (policy/sts_dane_dns.h), in parallel with the MTA-STS steps.
 * A recheck asks the resolver for it too. sts_engine_lookup_now() answers
 * only when both parts are in memory.
 */
#ifndef STS_ENGINE_H
#define STS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/conf.h"
#include "core/loop.h"
#include "core/types.h"
#include "policy/shared_state.h"
#include "policy/sts_cache.h"
#include "policy/sts_decide.h"
#include "policy/sts_policy.h"

struct sts_engine;

/*
 * sts_engine_trace_cb - what a lookup saw on the network, for the "policy"
 * command and debugging: what is one of
 *   "txt"        detail is one TXT record of _mta-sts.<domain>, as joined
 *   "txt-status" the TXT lookup did not answer OK: "nxdomain", "tempfail", ...
 *   "fetch"      the policy fetch ended: "ok http=200" or "failed http=N: reason"
 *   "mx"         detail is "<pref> <host>", one MX record of domain
 *   "mx-status"  the MX lookup did not answer OK
 *   "txt-dnssec", "mx-dnssec"
 *                that lookup's answer was DNSSEC-validated: "secure",
 *                "insecure" (no trust anchor covers it) or "bogus" (it failed
 *                validation: reported as dnssec-invalid, never as no record)
 * Runs from the loop while the lookup proceeds; strings are valid only
 * during the call. Must not call into the engine.
 */
typedef void sts_engine_trace_cb(void *arg, const char *domain, const char *what,
                                 const char *detail);

/*
 * Counters shared by every engine of a process (relaxed atomics; the
 * daemon owns them and reads them for its metrics).
 */
struct sts_engine_stats {
	_Atomic uint64_t cache_hits;   /* answers served from the cache (lookup_now) */
	_Atomic uint64_t fetches;      /* HTTPS policy fetches started */
	_Atomic uint64_t fetch_errors; /* fetches that failed, for whatever reason */
	_Atomic uint64_t fetch_waits;  /* lookups that waited for another loop's fetch */
	struct shared_stats shared;    /* the shared Redis (shared.*), when configured */
};

struct sts_engine_params {
	struct loop *loop;
	const struct conf *conf; /* dns.*, tls.ca_file, sts.*, policies, smarthosts; not owned */
	struct sts_cache *cache; /* shared by every engine, with its table of recent DNS
	                            answers (sts_cache_seen()); not owned */
	uint16_t fetch_port;     /* 0: 443. Other values only for tests. */
	size_t mx_cache_max;     /* domains whose answers the cache's table keeps at least
	                            (the largest any engine asks for); 0: its default,
	                            STS_SEEN_DEFAULT_MAX */
	unsigned refresh_ms;     /* proactive refresh tick; 0: 60000 (other values for tests) */
	bool check_txt;          /* sts_engine_lookup_now() never answers: every answer
	                            rests on a live TXT lookup (the "policy" command) */
	bool no_refresh;         /* leave proactive refresh to another engine (one per
	                            process is enough: they share the cache) */
	struct sts_engine_stats *stats; /* NULL: not counted */
	sts_engine_trace_cb *trace;     /* NULL: none */
	void *trace_arg;
};

/* sts_engine_cb - a lookup finished; a is valid only during the call. */
typedef void sts_engine_cb(void *arg, const struct sts_answer *a);

/*
 * sts_engine_new - an engine on p->loop. Validates the operator policies'
 * MX patterns. Returns NULL with one line in err on failure. Free with
 * sts_engine_free().
 */
struct sts_engine *sts_engine_new(const struct sts_engine_params *p, char *err, size_t errlen);

/* sts_engine_free - cancel every lookup (no callback fires after) and free; NULL is a no-op. */
void sts_engine_free(struct sts_engine *e);

/*
 * sts_engine_lookup_now - answer from memory if possible: returns 1 and
 * fills *out (valid until the next call into the engine from this thread),
 * or 0 when an asynchronous lookup is needed (*out is then undefined): the
 * TXT answer or the MX set is past its TTL, the TXT record names another
 * policy, or nothing is known. dest (may be NULL) is the address the
 * session is connected to, for smarthosts. No allocation and no system
 * call when it returns 1.
 */
int sts_engine_lookup_now(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                          struct sts_answer *out);

/*
 * sts_engine_lookup - the full lookup. domain is lower case, in A-labels.
 * Returns a non-zero id; cb then runs exactly once, later, from the loop
 * (never inside this call), unless cancelled. Returns 0 on immediate failure
 * (invalid domain, no memory); cb never runs.
 */
uint64_t sts_engine_lookup(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                           sts_engine_cb *cb, void *arg);

/*
 * sts_engine_recheck - like sts_engine_lookup(), but always asks the
 * resolver for the TXT record and the MX set before answering (their
 * in-memory copies are not trusted, whatever their age), and refetches
 * the policy first when the id changed (RFC 8461 sections 3.1, 5.1). Used
 * before refusing a recipient, so that a 451 is never answered on a
 * policy the domain has replaced. When the recheck cannot complete
 * (DNS temporary failure, fetch failure) the answer is what the cache
 * holds, as for sts_engine_lookup(). Same return and callback contract.
 */
uint64_t sts_engine_recheck(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                            sts_engine_cb *cb, void *arg);

/*
 * sts_engine_refresh - for operators: check the TXT record of a cached
 * domain and fetch its policy again now, in the background, whatever its
 * age (a failed fetch still backs off, section 3.3). 0 when started, -1
 * when domain has no cached policy or on allocation failure.
 */
int sts_engine_refresh(struct sts_engine *e, const char *domain);

/* sts_engine_cancel - the callback of id will not run; 0 and unknown ids are ignored. */
void sts_engine_cancel(struct sts_engine *e, uint64_t id);

/* sts_source_name - "none", "local", "smarthost", "cache", "fetched"; never NULL. */
const char *sts_source_name(enum sts_source source);

#endif
