/*
 * sts_seen.h - what the resolver last said about recipient domains: the id
 * of the _mta-sts TXT record (or that there is none, RFC 8461 section 3.1),
 * the MX hosts that match a policy, with their addresses (section 4.1), and
 * the domain's DANE state (RFC 7672 section 2.2, policy/sts_dane.h), each
 * kept until the TTL of the DNS answers it came from runs out.
 *
 * One table per process, shared by every policy engine, so that every
 * worker judges a domain on the same answer: the policy cache creates it
 * and owns it (sts_cache_seen()). The MX set of a domain is kept under a
 * key naming the policy its candidates were chosen for (a policy id, or a
 * key of the engine's own for an operator policy): a set chosen under
 * another policy is never returned.
 *
 * Every function is safe to call from any thread, except sts_seen_free().
 * A lookup takes the read lock of one of 64 shards for a hash walk and a
 * copy: no allocation and no system call. Writers allocate before they
 * lock. Bounded: beyond its share of the capacity, a shard forgets the
 * domain it wrote least recently; a forgotten answer only costs a lookup.
 *
 * Times are monotonic milliseconds (CLOCK_MONOTONIC, as loop_now_ms()). An
 * answer is fresh at now while now < until.
 */
#ifndef STS_SEEN_H
#define STS_SEEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STS_SEEN_MAX_MX      16    /* candidate names kept per MX set */
#define STS_SEEN_MAX_ADDR    32    /* their addresses kept per MX set */
#define STS_SEEN_NAME_MAX    254   /* a host or domain name and its NUL */
#define STS_SEEN_KEY_MAX     33    /* a TXT id or an MX-set key and its NUL */
#define STS_SEEN_DEFAULT_MAX 65536 /* domains kept when sts_seen_new() is given 0 */

/* What sts_seen_get() found fresh (or at all, with now 0). */
#define STS_SEEN_TXT 1u
#define STS_SEEN_MX  2u
#define STS_SEEN_REF 4u /* the shared value */

struct sts_seen;

/*
 * An MX set: candidate names and their addresses. The arrays belong to the
 * caller: sts_seen_put_mx() reads n_mx names and n_addr addresses (beyond
 * STS_SEEN_MAX_MX and STS_SEEN_MAX_ADDR they are dropped); sts_seen_get()
 * writes at most that many and sets the counts.
 */
struct sts_seen_mx {
	char (*mx)[STS_SEEN_NAME_MAX];
	size_t n_mx;
	struct sockaddr_storage *addr;
	size_t n_addr;
};

/*
 * A value the table shares by reference (a DANE state begins with one):
 * one allocation, freed with free() by the last sts_seen_ref_release().
 * until is when it stops being fresh; sts_seen_hold() may extend it.
 */
struct sts_seen_ref {
	_Atomic unsigned refs;
	_Atomic uint64_t until;
};

/* sts_seen_ref_take - one more reference to r. */
void sts_seen_ref_take(struct sts_seen_ref *r);

/* sts_seen_ref_release - drop a reference; the last frees r. NULL is a no-op. */
void sts_seen_ref_release(struct sts_seen_ref *r);

/*
 * sts_seen_new - an empty table for max domains (0: STS_SEEN_DEFAULT_MAX).
 * NULL when out of memory. Free with sts_seen_free().
 */
struct sts_seen *sts_seen_new(size_t max);

/* sts_seen_free - free s and everything in it; NULL is a no-op. No other call may race with it. */
void sts_seen_free(struct sts_seen *s);

/*
 * sts_seen_reserve - raise the capacity of s to max domains (never lowers
 * it). Each shard keeps its share with a margin, so that max domains are
 * kept however they spread; at most about 1.25 * max are.
 */
void sts_seen_reserve(struct sts_seen *s, size_t max);

/*
 * sts_seen_put_txt - the TXT record of _mta-sts.<domain> was answered: id
 * is the id of its one valid STSv1 record, "" when there is none (NXDOMAIN,
 * NODATA, no STSv1 record). Fresh until until. Replaces what was
 * remembered. Returns 0; -1 for an invalid domain or id, or out of memory
 * (nothing changed).
 */
int sts_seen_put_txt(struct sts_seen *s, const char *domain, const char *id, uint64_t until);

/*
 * sts_seen_put_mx - the MX set of domain chosen under key (copied), fresh
 * until until. Replaces the domain's MX set, whatever its key. Returns 0;
 * -1 for an invalid domain or key, or out of memory (nothing changed).
 */
int sts_seen_put_mx(struct sts_seen *s, const char *domain, const char *key,
                    const struct sts_seen_mx *set, uint64_t until);

/*
 * sts_seen_hold - keep what is remembered of domain, however old, fresh
 * until at least until: the TXT answer (what has STS_SEEN_TXT), the MX set
 * if its key is mx_key (what has STS_SEEN_MX), the shared value (what has
 * STS_SEEN_REF). For a resolver that fails temporarily: the last answer
 * stands until it is asked again. Nothing is created.
 */
void sts_seen_hold(struct sts_seen *s, const char *domain, unsigned what, const char *mx_key,
                   uint64_t until);

/*
 * sts_seen_put_ref - domain's shared value is v from now on (the table
 * takes a reference), replacing the one it had. Returns 0; -1 for an
 * invalid domain, or out of memory (nothing changed).
 */
int sts_seen_put_ref(struct sts_seen *s, const char *domain, struct sts_seen_ref *v);

/*
 * sts_seen_get_ref - domain's shared value, fresh at now (0: however old),
 * with a reference for the caller; NULL when there is none. No allocation
 * and no system call.
 */
struct sts_seen_ref *sts_seen_get_ref(struct sts_seen *s, const char *domain, size_t dlen,
                                      uint64_t now);

/*
 * sts_seen_get - what is remembered of domain (dlen octets, ASCII case
 * ignored) and fresh at now; now 0 takes it however old. Returns a mask:
 * STS_SEEN_TXT when the TXT answer is, its id copied into txt_id (unless
 * NULL); STS_SEEN_MX when mx_key is not NULL and the domain's MX set has
 * that key and is, copied into *set; STS_SEEN_REF when ref is not NULL and
 * the domain's shared value is, with a reference in *ref (the same as
 * sts_seen_get_ref(), under the same lock).
 */
unsigned sts_seen_get(struct sts_seen *s, const char *domain, size_t dlen, uint64_t now,
                      char txt_id[STS_SEEN_KEY_MAX], const char *mx_key, struct sts_seen_mx *set,
                      struct sts_seen_ref **ref);

#endif
