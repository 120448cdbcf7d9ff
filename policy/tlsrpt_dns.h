/*
 * tlsrpt_dns.h - find where a policy domain wants its TLS-RPT reports: the
 * TXT records at _smtp._tls.<domain> (RFC 8460 section 3), looked up and
 * chosen with policy/tlsrpt_record.h.
 *
 * Synchronous, for the report sender's own thread, never for the proxy's
 * loops: each lookup blocks for at most the configured DNS timeout. The
 * resolver is configured exactly as the proxy's (policy/sts_dns.h: the
 * same forwarders, trust anchor and options), so reports see the DNS the
 * policy decisions saw. One struct tlsrpt_resolver per thread; it keeps
 * libunbound's cache between lookups.
 */
#ifndef TLSRPT_DNS_H
#define TLSRPT_DNS_H

#include <stddef.h>

#include "policy/sts_dns.h"
#include "policy/tlsrpt_record.h"

struct tlsrpt_resolver;

enum tlsrpt_lookup_status {
	TLSRPT_LOOKUP_FOUND = 0, /* exactly one valid TLSRPTv1 record: rec filled */
	TLSRPT_LOOKUP_NONE,      /* NXDOMAIN, NODATA, or no TLSRPTv1 record: no report */
	TLSRPT_LOOKUP_INVALID,   /* several TLSRPTv1 records, or an invalid one: no report */
	TLSRPT_LOOKUP_TEMPFAIL,  /* SERVFAIL, timeout, network, malformed answer: try later */
	TLSRPT_LOOKUP_BOGUS,     /* DNSSEC validation failed: try later, never guess */
};

/*
 * tlsrpt_resolver_new - a resolver configured from p as sts_dns_new()
 * configures its own (p->timeout_ms bounds each lookup; 0: 5000). Returns
 * NULL and writes a reason into err on failure. Free with
 * tlsrpt_resolver_free().
 */
struct tlsrpt_resolver *tlsrpt_resolver_new(const struct sts_dns_params *p, char *err,
                                            size_t errlen);

/* tlsrpt_resolver_free - free r; NULL is a no-op. */
void tlsrpt_resolver_free(struct tlsrpt_resolver *r);

/*
 * tlsrpt_lookup - resolve TXT _smtp._tls.<domain> (CNAMEs followed), join
 * each record's strings (RFC 8460 section 3, as RFC 8461 section 3.1) and
 * choose with tlsrpt_record_select(). domain is a host name in A-labels,
 * without the trailing dot; anything else is TLSRPT_LOOKUP_INVALID.
 * rec is filled only on TLSRPT_LOOKUP_FOUND (cleared otherwise). why (when
 * not NULL and whylen > 0) says what happened, for the log, on every
 * status but TLSRPT_LOOKUP_FOUND. Blocks for at most the timeout.
 */
enum tlsrpt_lookup_status tlsrpt_lookup(struct tlsrpt_resolver *r, const char *domain,
                                        struct tlsrpt_record *rec, char *why, size_t whylen);

/* tlsrpt_lookup_status_name - "found", "none", "invalid", "tempfail", "bogus"; never NULL. */
const char *tlsrpt_lookup_status_name(enum tlsrpt_lookup_status status);

#endif
