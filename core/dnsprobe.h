/*
 * dnsprobe.h - does a DNS resolver answer at all?
 *
 * When a lookup ends in SERVFAIL or a timeout, the cause may be the
 * domain's own servers or the resolver in between, and an operator needs
 * to know which. This asks each resolver directly: one query for the
 * root's NS records over UDP, sent again every second, where any reply
 * carrying the query's id counts as an answer, whatever its rcode.
 */
#ifndef STS_DNSPROBE_H
#define STS_DNSPROBE_H

#include <stddef.h>

#define DNSPROBE_MAX 8 /* resolvers probed; more are ignored */

struct dnsprobe_params {
	/* As in dns.forwarders: an IPv4 or IPv6 address, optionally "@port". */
	char *const *servers;
	size_t n_servers;
	/* Used when n_servers is 0: its "nameserver" lines; NULL: /etc/resolv.conf. */
	const char *resolv_conf;
	unsigned timeout_ms; /* for all of them together; 0: 3000 */
};

/*
 * dnsprobe_silent - probe the resolvers of p. Returns 1 when none of them
 * answered, with out holding "resolver ADDR unreachable (WHY)" for each,
 * joined by "; " (WHY: the socket error, as "Connection refused", or "no
 * answer in N s"); 0 when at least one answered (out is ""); -1 when there
 * was nothing to probe (out says why). Blocks
 * for at most p->timeout_ms. out is always NUL-terminated when outlen > 0.
 */
int dnsprobe_silent(const struct dnsprobe_params *p, char *out, size_t outlen);

#endif
