/*
 * smap_reply.h - what a Postfix socketmap query for smtp_tls_policy_maps
 * asks, and the reply Postfix expects (socketmap_table(5), the TLS policy
 * levels of postconf(5) smtp_tls_policy_maps): pure, no I/O, no
 * allocation, so that every policy shape is tested and fuzzed alone.
 *
 * A request is "NAME key". The NAME selects the flavour of the reply, so
 * that a site moves from either usual daemon by changing one port:
 *   "QUERYwithTLSRPT" (any case) adds the TLSRPT attributes Postfix 3.10
 *       and later read (policy_type=sts policy_domain=... mx_host_pattern=...
 *       { policy_string = ... }), as postfix-tlspol does for that name;
 *   any other NAME ("postfix" for postfix-mta-sts-resolver, "QUERY" for
 *       postfix-tlspol) gets the plain reply, which Postfix 3.7 accepts.
 *
 * Replies, from the engine's answer (policy/sts_decide.h):
 *   DANE (RFC 7672): every MX host has usable TLSA records   OK dane-only
 *                    some MX host has TLSA records            OK dane
 *                    the domain's DANE mode is "only"         OK dane-only
 *                    DNSSEC failed (bogus MX, resolver fail)  TEMP ...
 *   MTA-STS (RFC 8461), when DANE does not apply:
 *                    enforce          OK secure match=P1:P2 servername=hostname
 *                    testing          NOTFOUND (or as enforce, testing_secure)
 *                    none, no policy  NOTFOUND
 *                    nothing now (DNS failure, nothing cached)  TEMP ...
 * A pattern "*.example.com" becomes ".example.com", Postfix's match for
 * any subdomain (RFC 8461 section 4.1 allows only one label there, which
 * Postfix cannot express; the certificate name check still applies).
 */
#ifndef STS_SMAP_REPLY_H
#define STS_SMAP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/sts_decide.h"

/* Postfix's dict_sockmap refuses replies longer than this (data octets). */
#define SMAP_REPLY_MAX 100000

/* The reply status words of the socketmap protocol. */
enum smap_kind { SMAP_OK = 0, SMAP_NOTFOUND, SMAP_TEMP, SMAP_TIMEOUT, SMAP_PERM, SMAP_KIND_MAX };

/* One parsed request. */
struct smap_query {
	bool tlsrpt;      /* the NAME asks for the TLSRPT attributes */
	bool lookup;      /* domain is a valid domain to look up; false: NOTFOUND */
	char domain[254]; /* lower case, A-labels, no trailing dot; "" unless lookup */
};

/* Options from the configuration (socketmap group). */
struct smap_reply_opts {
	bool testing_secure; /* a testing policy is answered as enforce */
	bool tlsrpt;         /* the TLSRPT attributes for every NAME */
};

/*
 * smap_query_parse - the request data (len bytes, may hold NULs). Never
 * fails: a key that is no domain to look up (empty, a parent-domain
 * ".example.com" lookup, an IP address, "[host]:port", invalid UTF-8 or
 * not a host name) gives lookup false, answered NOTFOUND as both usual
 * daemons do.
 */
void smap_query_parse(const char *data, size_t len, struct smap_query *q);

/*
 * smap_reply_build - the reply data (without the netstring framing) for
 * answer a to query q into out (outlen bytes, NUL-terminated). Returns its
 * length, or 0 when it does not fit in outlen or in SMAP_REPLY_MAX (out is
 * then "TEMP reply too long", still a valid reply when outlen allows).
 * *kind is the status word.
 */
size_t smap_reply_build(const struct sts_answer *a, const struct smap_query *q,
                        const struct smap_reply_opts *o, char *out, size_t outlen,
                        enum smap_kind *kind);

/*
 * smap_reply_word - a reply with no lookup behind it: "NOTFOUND ", or the
 * word and a reason ("PERM request too long"). Same return as above.
 */
size_t smap_reply_word(enum smap_kind kind, const char *reason, char *out, size_t outlen);

/* smap_kind_name - "ok", "notfound", "temp", "timeout", "perm"; never NULL. */
const char *smap_kind_name(enum smap_kind kind);

#endif
