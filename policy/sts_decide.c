/*
 * sts_decide.c - the verdict on one recipient over one upstream connection
 * (see sts_decide.h): pure, table-tested in tests/policy/test_sts_decide.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "policy/sts_decide.h"
#include "tls/tls_dane.h"

/* sts_addr_equal - see sts_decide.h */
bool
sts_addr_equal(const struct sockaddr *a, const struct sockaddr *b, bool with_port)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_addr.s_addr == y->sin_addr.s_addr &&
		       (!with_port || x->sin_port == y->sin_port);
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
		       (!with_port || x->sin6_port == y->sin6_port);
	}
	return false;
}

static void
addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *src = NULL;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (src == NULL || inet_ntop(sa->sa_family, src, buf, (socklen_t)len) == NULL)
		sts_strlcpy(buf, "?", len);
}

/* append - bounded concatenation of len octets at *used; the result is always terminated. */
static void
append(char *dst, size_t size, size_t *used, const char *src, size_t len)
{
	if (*used >= size)
		return;
	if (len > size - 1 - *used)
		len = size - 1 - *used;
	memcpy(dst + *used, src, len);
	*used += len;
	dst[*used] = '\0';
}

/* dest_prefix - "destination IP is not an address of any <what>; " in buf; its length. */
static size_t
dest_prefix(const struct sockaddr *dest, const char *what, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	int k;

	addr_text(dest, ip, sizeof(ip));
	k = snprintf(buf, len, "destination %s is not an address of any %s; ", ip, what);
	return k < 0 ? 0 : (size_t)k < len ? (size_t)k : len - 1;
}

/* verdict - fill the decision's common fields: a policy of type that requires TLS. */
static void
verdict(struct sts_decision *out, enum sts_policy_type type, enum sts_mode mode)
{
	out->tls_required = true;
	out->type = type;
	out->mode = mode;
}

/* dane_fail - the verdict is result, for the reason fmt. */
static void __attribute__((format(printf, 4, 5)))
dane_fail(struct sts_decision *out, enum sts_result result, const char *prefix, const char *fmt,
          ...)
{
	size_t used = 0;
	va_list ap;

	out->pass = false;
	out->result = result;
	append(out->reason, sizeof(out->reason), &used, prefix, strlen(prefix));
	va_start(ap, fmt);
	(void)vsnprintf(out->reason + used, sizeof(out->reason) - used, fmt, ap);
	va_end(ap);
}

/* host_check - tls_dane_check() of f against host h's records, with its reference names. */
static enum sts_result
host_check(const struct sts_dane_host *h, const struct tls_facts *f, char *reason, size_t len)
{
	const char *names[2] = {h->base, h->name};

	/* Section 3.2.2: the TLSA base domain, and the MX host name it came from. */
	return tls_dane_check(f, h->tlsa, h->n_tlsa, names, strcmp(h->base, h->name) != 0 ? 2 : 1,
	                      NULL, reason, len);
}

/*
 * dane_decide - RFC 7672 for a connection to dest: true when DANE decides
 * (out is filled), false when DANE does not apply to dest (out untouched).
 * A pass costs no formatting: its reason is made of copies.
 */
static bool
dane_decide(const struct sts_answer *a, const struct sockaddr *dest, const struct tls_facts *f,
            struct sts_decision *out)
{
	static const char matches[] = "TLSA records of ", matched_tail[] = " match the certificate";
	const struct sts_dane_state *st = a->dane;
	size_t cand[STS_DANE_MAX_HOSTS], nc = 0, first_usable = SIZE_MAX, used = 0;
	unsigned usable = 0, failed = 0;
	const struct sts_dane_host *bad = NULL;
	char prefix[128] = "", why[240] = "";
	enum sts_result r, first = STS_RESULT_OK;
	bool known = false;

	if (a->dane_mode == STS_DANE_MODE_OFF)
		return false;
	if (st != NULL && st->status == STS_DANE_HOSTS) {
		for (size_t i = 0; dest != NULL && i < st->n_host && !known; i++)
			known = sts_dane_host_has(&st->host[i], dest);
		/* Section 2.2: DANE is per MX host; a destination that is none of the
		 * domain's secure addresses is held to every host that has DANE. */
		for (size_t i = 0; i < st->n_host; i++) {
			const struct sts_dane_host *h = &st->host[i];

			if (h->state == STS_DANE_HOST_NONE ||
			    (known && !sts_dane_host_has(h, dest)))
				continue;
			cand[nc++] = i;
			if (h->state == STS_DANE_HOST_USABLE) {
				usable++;
				if (first_usable == SIZE_MAX)
					first_usable = i;
			} else if (h->state == STS_DANE_HOST_FAILED) {
				failed++;
				bad = h;
			} else if (bad == NULL) {
				bad = h;
			}
		}
	}
	if (nc == 0 &&
	    (st == NULL || st->status == STS_DANE_NONE || st->status == STS_DANE_HOSTS)) {
		if (a->dane_mode != STS_DANE_MODE_ONLY)
			return false;
		/* RFC 8460 section 4.3.1: DANE required, no DNSSEC-validated TLSA records. */
		verdict(out, STS_PTYPE_TLSA, STS_MODE_ENFORCE);
		dane_fail(out, STS_RESULT_DANE_REQUIRED, "", "DANE required: %s",
		          st == NULL ? "DNSSEC validation is not configured"
		          : st->status == STS_DANE_NONE
		              ? "the MX RRset is not DNSSEC-signed"
		              : "no MX host has DNSSEC-validated TLSA records");
		return true;
	}
	verdict(out, STS_PTYPE_TLSA, STS_MODE_ENFORCE);
	out->dest_is_mx = known;
	if (st->status == STS_DANE_BOGUS) {
		dane_fail(out, STS_RESULT_DNSSEC_INVALID, "", "DANE: %s", st->why);
		return true;
	}
	if (st->status == STS_DANE_TEMPFAIL) {
		out->dns_tempfail = true;
		dane_fail(out, STS_RESULT_DNSSEC_INVALID, "", "DANE lookup failed temporarily: %s",
		          st->why);
		return true;
	}
	if (dest != NULL && !known)
		(void)dest_prefix(dest, "MX host", prefix, sizeof(prefix));
	if (usable == 0 && failed > 0) {
		/* Section 2.2.1: a TLSA RRset that cannot be had securely: defer. */
		dane_fail(out, bad->problem, prefix, "%s: %s", bad->name, bad->why);
		return true;
	}
	if (f == NULL || !f->starttls_offered) {
		/* Section 2.2: TLSA records make TLS mandatory, usable or not. */
		dane_fail(out, STS_RESULT_STARTTLS_NOT_SUPPORTED, prefix,
		          "STARTTLS not offered (%s publishes TLSA records)",
		          st->host[cand[0]].name);
		return true;
	}
	if (!f->handshake_done) {
		dane_fail(out, STS_RESULT_VALIDATION_FAILURE, prefix,
		          "TLS handshake did not complete (TLSA records published)");
		return true;
	}
	for (size_t k = 0; k < nc && usable > 0; k++) {
		const struct sts_dane_host *h = &st->host[cand[k]];

		if (h->state != STS_DANE_HOST_USABLE)
			continue;
		if ((r = host_check(h, f, NULL, 0)) == STS_RESULT_OK) {
			sts_strlcpy(out->matched, h->name, sizeof(out->matched));
			out->pass = true;
			append(out->reason, sizeof(out->reason), &used, prefix, strlen(prefix));
			append(out->reason, sizeof(out->reason), &used, matches,
			       sizeof(matches) - 1);
			append(out->reason, sizeof(out->reason), &used, h->name, strlen(h->name));
			append(out->reason, sizeof(out->reason), &used, matched_tail,
			       sizeof(matched_tail) - 1);
			return true;
		}
		if (first == STS_RESULT_OK)
			first = r;
	}
	if (usable > 0) {
		/* Sections 3.1, 3.2: no record matches; the first host says what it saw. */
		const struct sts_dane_host *h = &st->host[first_usable];

		(void)host_check(h, f, why, sizeof(why));
		dane_fail(out, first, prefix, "%s: %s", h->name, why);
		return true;
	}
	/* Section 2.2: TLSA records, none usable: TLS without authentication, reported. */
	out->pass = true;
	out->report = STS_RESULT_TLSA_INVALID;
	sts_strlcpy(out->matched, bad->name, sizeof(out->matched));
	snprintf(out->reason, sizeof(out->reason), "%s%s: %s; TLS without authentication", prefix,
	         bad->name, bad->why);
	return true;
}

/*
 * A pass costs no formatting: the certificate check runs without a reason
 * and the line is assembled by copies. A failure runs the check again to
 * have it say what it saw; failures are rare and end in a log line anyway.
 */
void
sts_decide(const struct sts_answer *a, const struct sockaddr *dest, const struct tls_facts *f,
           struct sts_decision *out)
{
	static const char valid_for[] = "certificate valid for ";
	const char *names[STS_ANSWER_MAX_MX];
	char why[320] = "", prefix[128] = "";
	size_t matched = 0, used = 0, plen = 0;
	size_t n;

	memset(out, 0, offsetof(struct sts_decision, matched));
	out->matched[0] = '\0';
	out->reason[0] = '\0';
	out->pass = true;
	out->mode = STS_MODE_NONE;
	out->type = STS_PTYPE_NONE;
	out->result = STS_RESULT_OK;
	out->report = STS_RESULT_OK;
	/* RFC 8461 section 2: where DANE applies, it alone decides. */
	if (a != NULL && dane_decide(a, dest, f, out))
		return;
	if (a == NULL || a->status != STS_POLICY || a->mode == STS_MODE_NONE) {
		/* Section 5: mode none, or no policy: as the mailer would have delivered. */
		snprintf(out->reason, sizeof(out->reason), "no MTA-STS policy applies");
		return;
	}
	verdict(out, STS_PTYPE_STS, a->mode);

	if (dest != NULL) {
		for (size_t i = 0; i < a->n_addr && !out->dest_is_mx; i++)
			out->dest_is_mx =
			    sts_addr_equal((const struct sockaddr *)&a->addr[i], dest, false);
		if (!out->dest_is_mx)
			plen = dest_prefix(dest, "policy MX", prefix, sizeof(prefix));
	}

	n = a->n_mx < STS_ANSWER_MAX_MX ? a->n_mx : STS_ANSWER_MAX_MX;
	if (f == NULL || !f->starttls_offered) {
		out->result = STS_RESULT_STARTTLS_NOT_SUPPORTED;
		snprintf(why, sizeof(why), "STARTTLS not offered");
	} else if (!f->handshake_done) {
		out->result = STS_RESULT_VALIDATION_FAILURE;
		snprintf(why, sizeof(why), "TLS handshake did not complete");
	} else if (n == 0) {
		/* Section 4.1: the MX host must match the policy; none of the domain's does. */
		out->result = STS_RESULT_CERT_HOST_MISMATCH;
		snprintf(why, sizeof(why), "no MX host of %s matches the policy", a->domain);
	} else {
		/* Section 4.2: a trusted chain and a SAN valid for a matching MX host. */
		for (size_t i = 0; i < n; i++)
			names[i] = a->mx[i];
		out->result = tls_check_names(f, names, n, &matched, NULL, 0);
		if (out->result == STS_RESULT_OK)
			sts_strlcpy(out->matched, a->mx[matched], sizeof(out->matched));
		else
			(void)tls_check_names(f, names, n, NULL, why, sizeof(why));
	}
	out->pass = out->result == STS_RESULT_OK;
	/* the reason is for logs and a 451 text: a cut one is still useful */
	append(out->reason, sizeof(out->reason), &used, prefix, plen);
	if (out->pass) {
		append(out->reason, sizeof(out->reason), &used, valid_for, sizeof(valid_for) - 1);
		append(out->reason, sizeof(out->reason), &used, out->matched, strlen(out->matched));
	} else {
		append(out->reason, sizeof(out->reason), &used, why, strlen(why));
	}
}
