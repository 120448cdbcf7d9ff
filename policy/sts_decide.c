/*
 * sts_decide.c - the verdict on one recipient over one upstream connection
 * (see sts_decide.h): pure, table-tested in tests/policy/test_sts_decide.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "policy/sts_decide.h"

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
	char why[320] = "", prefix[128] = "", ip[INET6_ADDRSTRLEN];
	size_t matched = 0, used = 0, plen = 0;
	size_t n;

	memset(out, 0, offsetof(struct sts_decision, matched));
	out->matched[0] = '\0';
	out->reason[0] = '\0';
	out->pass = true;
	out->mode = STS_MODE_NONE;
	out->result = STS_RESULT_OK;
	if (a == NULL || a->status != STS_POLICY || a->mode == STS_MODE_NONE) {
		/* Section 5: mode none, or no policy: as the mailer would have delivered. */
		snprintf(out->reason, sizeof(out->reason), "no MTA-STS policy applies");
		return;
	}
	out->tls_required = true;
	out->mode = a->mode;

	if (dest != NULL) {
		for (size_t i = 0; i < a->n_addr && !out->dest_is_mx; i++)
			out->dest_is_mx =
			    sts_addr_equal((const struct sockaddr *)&a->addr[i], dest, false);
		if (!out->dest_is_mx) {
			int k;

			addr_text(dest, ip, sizeof(ip));
			k = snprintf(prefix, sizeof(prefix),
			             "destination %s is not an address of any policy MX; ", ip);
			plen = k < 0                        ? 0
			       : (size_t)k < sizeof(prefix) ? (size_t)k
			                                    : sizeof(prefix) - 1;
		}
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
