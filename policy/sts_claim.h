/*
 * sts_claim.h - which policy fetches some loop of this process is making
 * now, so that the others wait for it instead of fetching the same policy
 * again: the engine of each worker loop shares one resolution among its own
 * concurrent lookups of a domain, and this table extends that to every
 * loop (RFC 8461 section 3.3 asks for the policy once per new id, not once
 * per worker).
 *
 * A claim names (domain, TXT id). It lasts until its holder drops it, or
 * until hold_ms after it was taken, so that a holder that never drops it
 * (a bug, a loop stopped mid-fetch) stops nobody for longer than a fetch
 * may take. The table is bounded: with every slot held, a claim is refused
 * and the caller fetches without one, as it would with no table at all.
 *
 * Owned by the policy cache (sts_cache_claims()) and shared by every engine
 * of it. Every function is safe from any thread, except sts_claims_free().
 * Times are monotonic milliseconds (loop_now_ms()).
 */
#ifndef STS_CLAIM_H
#define STS_CLAIM_H

#include <stdbool.h>
#include <stdint.h>

#define STS_CLAIMS_MAX 256 /* fetches in flight at once that can be shared */

struct sts_claims;

/* sts_claims_new - an empty table, or NULL when out of memory. */
struct sts_claims *sts_claims_new(void);

/* sts_claims_free - free the table; NULL is a no-op. */
void sts_claims_free(struct sts_claims *t);

enum sts_claim {
	STS_CLAIM_TAKEN = 0, /* the caller holds it (token set) and drops it when done */
	STS_CLAIM_HELD,      /* another holder is fetching it now: wait for its result */
	STS_CLAIM_NONE,      /* the table is full or the arguments too long: fetch unclaimed */
};

/*
 * sts_claims_take - claim the fetch of domain's policy of id at now, for at
 * most hold_ms. A claim past its time counts as dropped. On STS_CLAIM_TAKEN
 * *token identifies this claim for sts_claims_drop().
 */
enum sts_claim sts_claims_take(struct sts_claims *t, const char *domain, const char *id,
                               uint64_t now, uint64_t hold_ms, uint64_t *token);

/* sts_claims_held - some holder has the claim of (domain, id) at now. */
bool sts_claims_held(struct sts_claims *t, const char *domain, const char *id, uint64_t now);

/* sts_claims_drop - end the claim token took; 0, or a claim already ended or taken over, is
 * ignored. */
void sts_claims_drop(struct sts_claims *t, uint64_t token);

#endif
