/*
 * sts_dane_dns.h - the DNS lookups of RFC 7672 section 2.2 for one
 * recipient domain: its MX RRset, then for each MX host its addresses,
 * then, when both are DNSSEC-secure, the TLSA RRset of the host's TLSA
 * base domain (its secure CNAME expansion first, then the host name,
 * section 2.2.3). The outcome is a DANE state (policy/sts_dane.h), kept
 * in the table of recent DNS answers (policy/sts_seen.h) for the shortest
 * TTL of its answers, bounded by dane.ttl_min/max.
 *
 * Addresses are looked up before TLSA records, and TLSA records only of
 * hosts whose addresses are secure (section 2.2.2: servers that time out
 * on TLSA queries are not asked). A temporary failure of the MX lookup
 * answers with the last state remembered, however old, and lets it stand
 * FAIL_HOLD_MS; with none, a TEMPFAIL state (sts.defer_on_dns_failure) or
 * one that says DANE does not apply.
 *
 * One per event loop, on the resolver (policy/sts_dns.h) of that loop;
 * every function from the loop's thread only.
 */
#ifndef STS_DANE_DNS_H
#define STS_DANE_DNS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "policy/sts_dane.h"
#include "policy/sts_dns.h"

/* How long the last state stands when the resolver fails temporarily. */
#define STS_DANE_FAIL_HOLD_MS 30000

struct sts_dane_dns;

struct sts_dane_dns_params {
	struct loop *loop;
	struct sts_dns *dns;       /* not owned; outlives the sts_dane_dns */
	struct sts_seen *seen;     /* shared; not owned */
	bool insecure_mx;          /* dane.insecure_mx */
	bool defer_on_dns_failure; /* sts.defer_on_dns_failure */
	unsigned ttl_min, ttl_max; /* dane.ttl_min, dane.ttl_max, seconds */
};

/* sts_dane_dns_new - NULL when out of memory. Free with sts_dane_dns_free(). */
struct sts_dane_dns *sts_dane_dns_new(const struct sts_dane_dns_params *p);

/* sts_dane_dns_free - cancel every lookup (no callback fires after) and free; NULL is a no-op. */
void sts_dane_dns_free(struct sts_dane_dns *dd);

/*
 * sts_dane_dns_cb - a lookup ended with st, NULL when out of memory (to be
 * taken as a temporary failure). st is valid during the call; take a
 * reference (sts_dane_ref) to keep it. The callback may call
 * sts_dane_dns_free().
 */
typedef void sts_dane_dns_cb(void *arg, const struct sts_dane_state *st);

/*
 * sts_dane_dns_lookup - ask the resolver about domain (lower case, no
 * trailing dot). Returns a non-zero id; cb then runs exactly once, later,
 * from the loop, unless cancelled. 0 on immediate failure (no memory, a
 * bad domain); cb never runs.
 */
uint64_t sts_dane_dns_lookup(struct sts_dane_dns *dd, const char *domain, sts_dane_dns_cb *cb,
                             void *arg);

/* sts_dane_dns_cancel - the callback of id will not run; 0 and unknown ids are ignored. */
void sts_dane_dns_cancel(struct sts_dane_dns *dd, uint64_t id);

#endif
