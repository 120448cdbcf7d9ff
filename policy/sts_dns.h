/*
 * sts_dns.h - asynchronous DNS for the policy module: TXT, MX, addresses and
 * TLSA,
 * resolved (and optionally DNSSEC-validated) by libunbound and delivered
 * through our event loop.
 *
 * libunbound resolves in a background thread; its answers are picked up when
 * ub_fd() becomes readable, from the loop, so every callback runs on the
 * thread that owns the loop. All functions here must be called from that
 * thread only. One struct sts_dns per loop.
 */
#ifndef STS_DNS_H
#define STS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"

#define STS_DNS_MAX_RECORDS 64 /* records kept per answer */

struct sts_dns;
struct ub_ctx;

struct sts_dns_params {
	const char *const *forwarders; /* "10.0.0.53" or "10.0.0.53@5353"; none: /etc/resolv.conf */
	size_t n_forwarders;
	const char *trust_anchor_file; /* NULL: no DNSSEC validation */
	unsigned timeout_ms;           /* per lookup; 0: 5000 */
};

enum sts_dns_status {
	STS_DNS_OK = 0,
	STS_DNS_NXDOMAIN,
	STS_DNS_NODATA,
	STS_DNS_TEMPFAIL,  /* SERVFAIL, timeout, network */
	STS_DNS_BOGUS,     /* DNSSEC validation failed */
	STS_DNS_MALFORMED, /* unparsable rdata, a bad name or too many records */
};

struct sts_dns_mx {
	unsigned pref;
	char host[254]; /* dotted, no trailing dot; "" for a null MX (RFC 7505) */
};

/* One record's rdata as it came (TLSA: parsed by policy/sts_tlsa.h). */
struct sts_dns_rdata {
	const uint8_t *data;
	size_t len;
};

/*
 * An answer. n counts the records of the queried type; only the array for
 * that type is set (txt and txt_len for TXT, mx for MX, addr for
 * addresses, rdata for TLSA), the others are NULL. Arrays are set only
 * when status is STS_DNS_OK, and then n >= 1.
 */
struct sts_dns_answer {
	enum sts_dns_status status;
	bool secure;  /* DNSSEC-validated (never without a trust anchor) */
	uint32_t ttl; /* seconds the answer may be kept, as the resolver says (the
	                 records' remaining TTL; for NXDOMAIN and NODATA the negative
	                 TTL when the resolver knows it, else 0; for addresses the
	                 smaller of those of A and AAAA records); 0 on a failure */
	size_t n;
	char **txt;      /* each TXT record's strings joined WITHOUT spaces (RFC 8461 3.1),
	                    NUL-terminated */
	size_t *txt_len; /* exact lengths (a record may hold NULs) */
	struct sts_dns_mx *mx;
	struct sockaddr_storage *addr; /* AF_INET and AF_INET6, port 0 */
	struct sts_dns_rdata *rdata;   /* TLSA */
	char canon[254];               /* the name CNAMEs led to when it is not the one asked
	                                  for (lower case, no trailing dot), else "" */
	char why[128];                 /* for the log when status is not STS_DNS_OK */
};

/* sts_dns_cb - a lookup finished; a and everything it points to are valid only during the call. */
typedef void sts_dns_cb(void *arg, const struct sts_dns_answer *a);

/*
 * sts_dns_new - a resolver on loop. Forwarders are used in the order given;
 * with none, those of /etc/resolv.conf. Servers on loopback are allowed.
 * With a trust anchor file (zone-file format, e.g. /usr/share/dns/root.key)
 * answers are validated: failures come back as STS_DNS_BOGUS.
 * Returns NULL and writes a reason into err on failure.
 */
struct sts_dns *sts_dns_new(struct loop *loop, const struct sts_dns_params *p, char *err,
                            size_t errlen);

/*
 * sts_dns_free - cancel every pending lookup (no callback fires after) and
 * free d. NULL is a no-op. May be called from inside an sts_dns callback.
 */
void sts_dns_free(struct sts_dns *d);

/*
 * sts_dns_txt - look up the TXT records of name, following CNAMEs. Returns a
 * non-zero id, or 0 on immediate failure (bad name, no memory), in which
 * case cb never runs. Otherwise cb runs exactly once, later, from the loop
 * (never inside this call), unless the lookup is cancelled first.
 */
uint64_t sts_dns_txt(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg);

/* sts_dns_mx - as sts_dns_txt(), for the MX records of name. */
uint64_t sts_dns_mx(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg);

/*
 * sts_dns_addr - as sts_dns_txt(), for A and AAAA together: one callback
 * with both families merged (IPv4 first). It is STS_DNS_OK if either lookup
 * gave addresses, STS_DNS_BOGUS if either was bogus, and otherwise the worse
 * of the two failures. At most STS_DNS_MAX_RECORDS addresses are kept.
 */
uint64_t sts_dns_addr(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg);

/*
 * sts_dns_tlsa - as sts_dns_txt(), for the TLSA records of name (RFC 6698:
 * "_25._tcp.<host>"), each as its rdata.
 */
uint64_t sts_dns_tlsa(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg);

/* sts_dns_cancel - forget a pending lookup; its callback never runs. 0 and unknown ids are ignored.
 */
void sts_dns_cancel(struct sts_dns *d, uint64_t id);

/*
 * sts_dns_context - a libunbound context configured from p exactly as
 * sts_dns_new() configures its own (forwarders or /etc/resolv.conf, trust
 * anchor, options), but not threaded and not on a loop: for synchronous
 * ub_resolve() from a thread of its own (the report sender). Returns NULL
 * and writes a reason into err on failure; free with ub_ctx_delete().
 */
struct ub_ctx *sts_dns_context(const struct sts_dns_params *p, char *err, size_t errlen);

/* sts_dns_status_name - "ok", "nxdomain", ...; never NULL. */
const char *sts_dns_status_name(enum sts_dns_status status);

#endif
