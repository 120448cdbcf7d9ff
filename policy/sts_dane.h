/*
 * sts_dane.h - the DANE state of a recipient domain (RFC 7672 section 2.2):
 * whether its MX RRset is DNSSEC-secure, and for each MX host its
 * addresses, its TLSA base domain and what its TLSA RRset says.
 *
 * A state is immutable once made and shared by reference: the table of
 * recent DNS answers (policy/sts_seen.h) holds one per domain until its
 * TTL runs out, and so does every answer that carries it (sts_dane_ref and
 * sts_dane_release, safe from any thread). It is one allocation, its
 * strings, addresses and records packed behind it.
 */
#ifndef STS_DANE_H
#define STS_DANE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/types.h"
#include "policy/sts_seen.h"
#include "tls/tls_dane.h"

#define STS_DANE_MAX_HOSTS 16    /* MX hosts of a domain considered */
#define STS_DANE_MAX_ADDR  8     /* addresses kept per host */
#define STS_DANE_MAX_TLSA  8     /* TLSA records kept per host */
#define STS_DANE_DATA_MAX  16384 /* association data of a domain, all hosts together */
#define STS_DANE_WHY_MAX   128

/* What the DNS says of one MX host. */
enum sts_dane_host_state {
	STS_DANE_HOST_NONE = 0, /* DANE does not apply: insecure addresses, or no secure
	                           TLSA RRset (section 2.2.2) */
	STS_DANE_HOST_USABLE,   /* a secure TLSA RRset with usable records */
	STS_DANE_HOST_UNUSABLE, /* a secure TLSA RRset, none usable: TLS is mandatory,
	                           unauthenticated (section 2.2) */
	STS_DANE_HOST_FAILED,   /* its addresses or its TLSA RRset could not be had
	                           securely (SERVFAIL, bogus, timeout): not deliverable now
	                           (section 2.2.1), never a fallback */
};

/* What the DNS says of the domain. */
enum sts_dane_status {
	STS_DANE_NONE = 0, /* DANE does not apply: the MX RRset is insecure (and
	                      dane.insecure_mx is off) or names no host */
	STS_DANE_HOSTS,    /* the MX RRset is secure (or half-DANE): see each host */
	STS_DANE_BOGUS,    /* the MX lookup failed DNSSEC validation */
	STS_DANE_TEMPFAIL, /* the MX lookup failed temporarily and nothing was remembered
	                      (never stored in the table) */
};

struct sts_dane_host {
	const char *name; /* the MX host name, lower case */
	const char *base; /* the TLSA base domain: name, or its secure CNAME expansion
	                     (section 2.2.3) */
	enum sts_dane_host_state state;
	enum sts_result problem; /* FAILED: dnssec-invalid; UNUSABLE: tlsa-invalid; else OK */
	const char *why;         /* for logs when problem is set; "" otherwise */
	size_t n_addr;
	const struct sockaddr_storage *addr;
	size_t n_tlsa; /* the records as published, usable or not */
	const struct tls_tlsa *tlsa;
};

/*
 * What a decision reads comes first, and the hosts' addresses and records
 * right behind the n_host hosts, so that a decision touches a few
 * adjacent cache lines.
 */
struct sts_dane_state {
	struct sts_seen_ref ref; /* first: references, and fresh while now < ref.until */
	enum sts_dane_status status;
	bool mx_secure;
	size_t n_host;
	const char *domain;
	const char *why;             /* BOGUS, TEMPFAIL: what the resolver said; else "" */
	struct sts_dane_host host[]; /* n_host of them */
};

/*
 * What a lookup learns, before it is packed into a state: fixed arrays,
 * filled by the engine. data holds the association data of every record.
 */
struct sts_dane_build {
	enum sts_dane_status status;
	bool mx_secure;
	char domain[254];
	char why[STS_DANE_WHY_MAX];
	size_t n_host;
	struct {
		char name[254], base[254];
		enum sts_dane_host_state state;
		enum sts_result problem;
		char why[STS_DANE_WHY_MAX];
		size_t n_addr;
		struct sockaddr_storage addr[STS_DANE_MAX_ADDR];
		size_t n_tlsa;
		struct tls_tlsa tlsa[STS_DANE_MAX_TLSA]; /* data points into data[] */
	} host[STS_DANE_MAX_HOSTS];
	size_t data_used;
	uint8_t data[STS_DANE_DATA_MAX];
};

/*
 * sts_dane_state_new - pack b into a new state with one reference, fresh
 * until until (monotonic milliseconds). NULL when out of memory.
 */
struct sts_dane_state *sts_dane_state_new(const struct sts_dane_build *b, uint64_t until);

/* sts_dane_ref - one more reference to st (NULL is a no-op); returns st. */
const struct sts_dane_state *sts_dane_ref(const struct sts_dane_state *st);

/* sts_dane_release - drop a reference; the last frees st. NULL is a no-op. */
void sts_dane_release(const struct sts_dane_state *st);

/* sts_dane_host_has - dest (AF_INET or AF_INET6) is one of h's addresses. */
bool sts_dane_host_has(const struct sts_dane_host *h, const struct sockaddr *dest);

/*
 * sts_dane_applies - does DANE apply to one of the hosts of st, for a
 * connection to dest (NULL: any host)? True when a host that dest is an
 * address of (every host when dest is none of theirs) has a TLSA RRset
 * (usable, unusable or failed), or when st is BOGUS or TEMPFAIL: TLS is
 * then required whatever else the domain publishes.
 */
bool sts_dane_applies(const struct sts_dane_state *st, const struct sockaddr *dest);

/* sts_dane_host_state_name - "none", "usable", "unusable", "failed"; never NULL. */
const char *sts_dane_host_state_name(enum sts_dane_host_state s);

/* sts_dane_status_name - "none", "hosts", "bogus", "tempfail"; never NULL. */
const char *sts_dane_status_name(enum sts_dane_status s);

#endif
