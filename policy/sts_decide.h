/*
 * sts_decide.h - the verdict on one recipient: given what the recipient
 * domain publishes (its MTA-STS answer and its DANE state) and what the
 * upstream connection showed of itself (its TLS facts), does delivery over
 * that connection meet the policy, which policy decided, and with which
 * TLS-RPT result type (RFC 8461 sections 4 and 5, RFC 7672 sections 2 and
 * 3, RFC 8460 section 4.3).
 *
 * Precedence (RFC 8461 section 2): an MX host with DANE state (a secure
 * TLSA RRset, usable or not, or one whose lookup failed) is judged by DANE
 * alone, whatever MTA-STS says; without it, by MTA-STS.
 *
 * sts_decide() is the one place that defines "pass". It is pure: no I/O,
 * no allocation, no clock; the same inputs always give the same verdict.
 * The answer types live here so that the decision can be tested, fuzzed
 * and benchmarked without the engine that fills them (policy/sts_engine.h).
 */
#ifndef STS_DECIDE_H
#define STS_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/types.h"
#include "policy/sts_dane.h"
#include "policy/sts_policy.h"
#include "tls/tls_verify.h"

#define STS_ANSWER_MAX_MX   16 /* candidate MX hosts kept per answer */
#define STS_ANSWER_MAX_ADDR 32 /* their addresses kept per answer */

/* Where the policy in an answer came from. */
enum sts_source {
	STS_SOURCE_NONE = 0,  /* no policy */
	STS_SOURCE_LOCAL,     /* an operator policy from the configuration */
	STS_SOURCE_SMARTHOST, /* the destination is a configured smarthost */
	STS_SOURCE_CACHE,     /* the persistent cache */
	STS_SOURCE_FETCHED,   /* fetched for this lookup */
};

enum sts_status {
	STS_NO_POLICY = 0, /* deliver as the mailer would have: plaintext allowed */
	STS_POLICY,        /* a policy applies: see mode and the candidates */
	STS_DEFER,         /* no answer now (temporary DNS failure, nothing cached,
	                      sts.defer_on_dns_failure): answer 451 and let the mailer retry */
};

/*
 * An answer. problem is set whenever something went wrong on the way, even
 * when the status is STS_NO_POLICY (e.g. a TXT record exists but the fetch
 * failed and nothing is cached: sts-policy-fetch-error, deliver as if no
 * policy, and report it, RFC 8461 section 5).
 *
 * rechecked: what applies was asked for by the lookup that answered (not
 * the TXT record for an operator policy; not the MX set without a policy
 * or with mode none; the DANE state when DANE is used), whatever the
 * resolver said; a smarthost's answer is rechecked when it answers
 * sts_engine_recheck(). Never set by sts_engine_lookup_now().
 *
 * dane_mode is the domain's DANE mode as the configuration makes it
 * (STS_DANE_MODE_OFF also without a trust anchor, unless "only"), and
 * dane its DANE state when DANE is used: NULL otherwise, and for a
 * smarthost.
 */
struct sts_answer {
	enum sts_status status;
	enum sts_source source;
	enum sts_mode mode; /* STS_MODE_NONE unless status is STS_POLICY */
	char domain[254];
	char id[33];                     /* policy id ("" for local policies and smarthosts) */
	const struct sts_policy *policy; /* valid only while the answer is */
	int64_t expires_at;              /* 0 for local policies and smarthosts */
	/* The domain's MX hosts whose names match the policy (section 4.1), or
	 * the smarthost's name: the certificate must be valid for one of them. */
	size_t n_mx;
	char mx[STS_ANSWER_MAX_MX][254];
	/* Their addresses, to say whether the destination is one of them. */
	size_t n_addr;
	struct sockaddr_storage addr[STS_ANSWER_MAX_ADDR];
	enum sts_result problem; /* STS_RESULT_OK, or what failed during the lookup */
	char reason[160];        /* human-readable, when problem is set */
	bool rechecked; /* the TXT record and MX set were asked of the resolver for this answer */
	enum sts_dane_mode dane_mode;
	const struct sts_dane_state *dane; /* valid only while the answer is */
};

/* The verdict on one upstream session for one recipient domain. */
struct sts_decision {
	bool pass;          /* the session meets the policy (always true without one) */
	bool tls_required;  /* the policy demands TLS (MTA-STS testing or enforce; DANE) */
	enum sts_mode mode; /* the policy's mode; STS_MODE_NONE without one; enforce for DANE */
	enum sts_policy_type type; /* the policy that decided: tlsa, sts, or none */
	enum sts_result result;    /* STS_RESULT_OK on a pass, else the TLS-RPT result type */
	enum sts_result report;    /* a pass still reported as a failure: tlsa-invalid (TLSA
	                              records, none usable: TLS without authentication) */
	bool dns_tempfail;         /* DANE: the resolver failed; nothing was asked of the MX */
	bool dest_is_mx;           /* the destination address is one of the candidates' */
	char matched[254];         /* the candidate the certificate is valid for */
	char reason[256];          /* for logs, events and the 451 text */
};

/*
 * sts_decide - does an upstream session with TLS facts f (NULL: plaintext,
 * no STARTTLS offered) to dest meet answer a? Pure: no I/O; no allocation
 * except for a DANE-TA chain check (tls/tls_dane.h). Without DANE state
 * for the destination and without an MTA-STS policy (or with mode none),
 * the decision passes with tls_required false.
 *
 * DANE (a->dane for the MX hosts dest is an address of; all of them when
 * it is none of theirs):
 *   usable TLSA records      pass when the chain matches a host's records
 *                            (tls_dane_check); else the result it gives
 *   failed TLSA or addresses fail: dnssec-invalid (section 2.2.1)
 *   unusable TLSA records    pass over TLS, reported as tlsa-invalid;
 *                            plaintext fails (section 2.2)
 *   MX RRset bogus           fail: dnssec-invalid
 *   MX lookup tempfail       fail: dnssec-invalid, dns_tempfail
 *   no DANE state, mode only fail: dane-required
 */
void sts_decide(const struct sts_answer *a, const struct sockaddr *dest, const struct tls_facts *f,
                struct sts_decision *out);

/*
 * sts_answer_tls_mode - for a caller that only asks whether a domain's mail
 * must go over TLS (the NFQUEUE inspector, which has no TLS facts):
 * STS_MODE_ENFORCE when DANE applies to one of its MX hosts (RFC 7672
 * section 2.2: a secure TLSA RRset, usable or not, or one that could not
 * be had), when its DANE lookup failed, or when its DANE mode is "only";
 * else the mode of its MTA-STS policy (STS_MODE_NONE without one); -1 when
 * the answer defers (no answer now).
 */
static inline int
sts_answer_tls_mode(const struct sts_answer *a)
{
	const struct sts_dane_state *st = a->dane;

	if (a->dane_mode == STS_DANE_MODE_ONLY)
		return STS_MODE_ENFORCE;
	if (a->dane_mode != STS_DANE_MODE_OFF && st != NULL) {
		if (st->status == STS_DANE_BOGUS || st->status == STS_DANE_TEMPFAIL)
			return STS_MODE_ENFORCE;
		for (size_t i = 0; st->status == STS_DANE_HOSTS && i < st->n_host; i++)
			if (st->host[i].state != STS_DANE_HOST_NONE)
				return STS_MODE_ENFORCE;
	}
	if (a->status == STS_DEFER)
		return -1;
	return a->status == STS_POLICY ? (int)a->mode : (int)STS_MODE_NONE;
}

/*
 * sts_addr_equal - the same address (AF_INET or AF_INET6), with the same
 * port when with_port. Addresses of other families are never equal.
 */
bool sts_addr_equal(const struct sockaddr *a, const struct sockaddr *b, bool with_port);

#endif
