/*
 * sts_cache.h - the persistent MTA-STS policy cache (RFC 8461 sections 3.3
 * and 5.1).
 *
 * Policies are cached per policy domain (the recipient domain), never per
 * MX host or address, and survive a restart: a cached policy is what
 * protects later deliveries when an attacker blocks the policy fetch.
 *
 * Memory: a hash table keyed by lower-case domain. Lookups take a read lock
 * and an atomic reference, nothing else: no allocation and no system call in
 * the uncontended case, so the per-RCPT decision path can call
 * sts_cache_get() from every event-loop thread.
 *
 * Disk: <state_dir>/policy-cache.sqlite, SQLite in WAL mode, written through
 * on every change. A corrupt file is moved aside and the cache starts empty;
 * a failed write is reported but the in-memory cache is still updated, so
 * the running daemon keeps enforcing what it learned.
 *
 * Every function is safe to call from any thread, except sts_cache_close(),
 * which must not race with any other call on the same cache.
 *
 * A cache also carries the table of recent DNS answers (policy/sts_seen.h)
 * of the process: everything that shares the cache shares it.
 */
#ifndef STS_CACHE_H
#define STS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/sts_policy.h"

#define STS_CACHE_FILE        "policy-cache.sqlite"
#define STS_CACHE_DOMAIN_MAX  254 /* 253 octets and the NUL */
#define STS_CACHE_ID_MAX      33  /* RFC 8461 section 3.1: 1-32 characters, and the NUL */
#define STS_CACHE_BACKOFF_MIN 300 /* RFC 8461 section 3.3: no retry within 5 minutes */
#define STS_CACHE_BACKOFF_MAX 3600

struct sts_cache;
struct sts_claims;
struct sts_seen;

/*
 * A cached policy. Immutable once published: a replacement publishes a new
 * entry, and a reference obtained from sts_cache_get() stays valid, with the
 * old contents, until sts_cache_release().
 */
struct sts_cache_entry {
	/* What every lookup reads comes first, within the first cache lines. */
	char id[STS_CACHE_ID_MAX]; /* the TXT record id the policy was fetched for */
	struct sts_policy policy;  /* parsed */
	int64_t fetched_at;        /* unix seconds */
	int64_t expires_at;        /* fetched_at + policy.max_age */
	int64_t last_checked;      /* last time the TXT id was seen unchanged */
	atomic_uint refs;          /* private: every sts_cache_get() touches it */
	char *text;                /* the policy file as fetched; text[text_len] == '\0' */
	size_t text_len;
	char domain[STS_CACHE_DOMAIN_MAX]; /* lower case */
};

/*
 * sts_cache_open - open (or create) <state_dir>/policy-cache.sqlite and load
 * every policy into memory. A corrupt or unreadable-format file is not fatal:
 * it is renamed to policy-cache.sqlite.corrupt-<unix time> (with its -wal and
 * -shm files), one warning is logged and the cache starts empty.
 * Returns NULL on a fatal error (state_dir missing or not writable, out of
 * memory) and writes one line to err. Free with sts_cache_close().
 */
struct sts_cache *sts_cache_open(const char *state_dir, char *err, size_t errlen);

/*
 * sts_cache_close - close the database and free the table. Entries still
 * referenced by callers stay valid until released. NULL is a no-op.
 */
void sts_cache_close(struct sts_cache *c);

/*
 * sts_cache_seen - the table of recent DNS answers (TXT ids, MX sets) that
 * goes with c: created by sts_cache_open(), freed by sts_cache_close(), so
 * that every policy engine of the process shares it. Never NULL for an
 * open cache.
 */
struct sts_seen *sts_cache_seen(struct sts_cache *c);

/*
 * sts_cache_claims - the table of policy fetches in flight (policy/sts_claim.h),
 * shared like the table of recent answers by every engine of this cache.
 */
struct sts_claims *sts_cache_claims(struct sts_cache *c);

/*
 * sts_cache_get - the cached policy of domain (ASCII case is ignored; callers
 * pass A-labels), or NULL if there is none. Expired entries are returned
 * too: the caller compares expires_at with its clock. The entry is
 * referenced; give it back with sts_cache_release(). No allocation, no
 * system call when no writer holds the table.
 */
const struct sts_cache_entry *sts_cache_get(struct sts_cache *c, const char *domain);

/* sts_cache_release - drop a reference from sts_cache_get(); NULL is a no-op. */
void sts_cache_release(const struct sts_cache_entry *e);

/*
 * Times are unix seconds; put and touch refuse a now outside 0..INT64_MAX/4.
 *
 * sts_cache_put - cache policy p (deep-copied) and its text for domain,
 * fetched at now for TXT id; expires_at = now + p->max_age. Replaces any
 * previous entry (RFC 8461 section 3.3: a fetched "mode: none" policy
 * replaces the cache too) and clears the failed-fetch state of the domain.
 * Returns 0; -1 on invalid arguments or allocation failure (nothing
 * changed), and -1 on a disk error, after logging it once, with the
 * in-memory entry already replaced.
 */
int sts_cache_put(struct sts_cache *c, const char *domain, const char *id, const char *text,
                  size_t text_len, const struct sts_policy *p, int64_t now);

/*
 * sts_cache_touch - record that the TXT id of domain was seen unchanged at
 * now (publishes a copy with last_checked = now). Returns 0, or -1 if there
 * is no entry, on allocation failure (nothing changed), or on a disk error
 * (memory updated).
 */
int sts_cache_touch(struct sts_cache *c, const char *domain, int64_t now);

/*
 * sts_cache_delete - forget the policy and the failed-fetch state of
 * domain. Returns 0 (also when nothing was cached), or -1 on a disk error
 * (memory updated).
 */
int sts_cache_delete(struct sts_cache *c, const char *domain);

/* sts_cache_count - the number of cached policies (not counting backoff-only domains). */
size_t sts_cache_count(struct sts_cache *c);

/*
 * sts_cache_fetch_failed - record a failed fetch of the policy with TXT id
 * for domain (cached or not). The next fetch of that id is allowed no sooner
 * than now + 300 s, doubling with each consecutive failure up to 1 h (RFC
 * 8461 section 3.3). Returns 0; -1 on invalid arguments or allocation
 * failure (nothing changed) or on a disk error (memory updated).
 */
int sts_cache_fetch_failed(struct sts_cache *c, const char *domain, const char *id, int64_t now);

/*
 * sts_cache_may_fetch - false while a failed fetch of this id for domain is
 * backing off; true otherwise (a different id may be fetched at once: the
 * domain published a new policy). sts_cache_put() clears the state.
 */
bool sts_cache_may_fetch(struct sts_cache *c, const char *domain, const char *id, int64_t now);

/*
 * sts_cache_prune - forget, in memory and on disk, the domains that hold
 * only a failed-fetch state (no policy) whose backoff ended before now:
 * without a policy there is nothing the state still protects, and a table
 * of every domain that ever failed once would only grow. Returns how many
 * were forgotten. A disk error is logged and the memory is pruned anyway.
 */
size_t sts_cache_prune(struct sts_cache *c, int64_t now);

/*
 * sts_cache_due - for proactive refresh (RFC 8461 section 3.3): copy into
 * domains[0..max) the cached domains whose policy expires within margin
 * seconds of now (or already expired), soonest first, skipping domains whose
 * last fetch failed and is still backing off. Returns how many were copied.
 * Calling it periodically with a small max spreads the refreshes over time
 * instead of refetching everything fetched together at once.
 */
size_t sts_cache_due(struct sts_cache *c, int64_t now, int64_t margin, char (*domains)[254],
                     size_t max);

/*
 * sts_cache_foreach - call fn for every cached policy, in no particular
 * order, under the read lock: fn must not call back into the cache. For
 * operators (listing), not for the hot path.
 */
void sts_cache_foreach(struct sts_cache *c, void (*fn)(void *arg, const struct sts_cache_entry *e),
                       void *arg);

#endif
