/*
 * smap_reply.c - socketmap requests and replies for smtp_tls_policy_maps.
 *
 * The reply text follows what Postfix parses for a policy table entry
 * (postconf(5) smtp_tls_policy_maps; src/smtp/smtp_tls_policy.c): a
 * security level, then attribute=value words, and for Postfix 3.10 and
 * later the TLSRPT attributes with "{ ... }" values. Nothing here
 * allocates; every write is bounded and checked.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "proxy/smap_reply.h"

#define TLSRPT_NAME "querywithtlsrpt"

/* A bounded string builder: once full, it stays failed. */
struct sb {
	char *buf;
	size_t cap, len;
	bool full;
};

static void
sb_add(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->full = true;
		return;
	}
	b->len += (size_t)n;
}

/* finish - the length built, or the fallback reply when it did not fit */
static size_t
finish(struct sb *b, enum smap_kind *kind)
{
	if (!b->full && b->len <= SMAP_REPLY_MAX)
		return b->len;
	*kind = SMAP_TEMP;
	if (b->cap > 0)
		sts_strlcpy(b->buf, "TEMP reply too long", b->cap);
	return 0;
}

void
smap_query_parse(const char *data, size_t len, struct smap_query *q)
{
	const char *sp = memchr(data, ' ', len);
	char key[STS_HOSTNAME_MAX + 2];
	size_t nlen = sp != NULL ? (size_t)(sp - data) : len;
	size_t klen, i;
	const char *k;

	memset(q, 0, sizeof(*q));
	q->tlsrpt = nlen == strlen(TLSRPT_NAME) && strncasecmp(data, TLSRPT_NAME, nlen) == 0;
	if (sp == NULL)
		return; /* no key */
	k = sp + 1;
	klen = len - nlen - 1;
	while (klen > 0 && (k[0] == ' ' || k[0] == '\t')) {
		k++;
		klen--;
	}
	while (klen > 0 && (k[klen - 1] == ' ' || k[klen - 1] == '\t'))
		klen--;
	/* ".example.com" is Postfix asking for a parent-domain entry: the
	 * policy of a domain never covers its subdomains (RFC 8461 section 4). */
	if (klen == 0 || klen >= sizeof(key) || k[0] == '.')
		return;
	for (i = 0; i < klen; i++)
		if (k[i] == '\0')
			return;
	memcpy(key, k, klen);
	key[klen] = '\0';
	/* Checks LDH and refuses IP literals; U-labels become A-labels. */
	if (sts_domain_to_ascii(key, q->domain, sizeof(q->domain)) < 0) {
		q->domain[0] = '\0';
		return;
	}
	q->lookup = true;
}

/* dane_level - "dane-only", "dane", "temp" or NULL when DANE does not apply */
static const char *
dane_level(const struct sts_answer *a)
{
	const struct sts_dane_state *st = a->dane;
	size_t usable = 0, with_tlsa = 0;

	if (a->dane_mode == STS_DANE_MODE_OFF)
		return NULL;
	if (st != NULL && (st->status == STS_DANE_BOGUS || st->status == STS_DANE_TEMPFAIL))
		return "temp"; /* RFC 7672 section 2.2.1: not deliverable now */
	for (size_t i = 0; st != NULL && st->status == STS_DANE_HOSTS && i < st->n_host; i++) {
		if (st->host[i].state == STS_DANE_HOST_USABLE)
			usable++;
		if (st->host[i].state != STS_DANE_HOST_NONE)
			with_tlsa++;
	}
	/* Postfix's "dane" looks the TLSA records up itself, host by host:
	 * usable records authenticate, unusable ones still demand TLS
	 * (section 2.2), a failed lookup defers that host, and a host without
	 * records gets opportunistic TLS. "dane-only" refuses all but DANE. */
	if (st != NULL && usable > 0 && usable == st->n_host)
		return "dane-only";
	if (with_tlsa > 0)
		return "dane";
	if (a->dane_mode == STS_DANE_MODE_ONLY)
		return "dane-only"; /* no usable TLSA records: Postfix defers */
	return NULL;
}

/* tlsrpt_sts - the TLSRPT attributes of an MTA-STS policy (Postfix >= 3.10) */
static void
tlsrpt_sts(struct sb *b, const struct sts_answer *a)
{
	const struct sts_policy *p = a->policy;

	sb_add(b, " policy_type=sts policy_domain=%s", a->domain);
	for (size_t i = 0; i < p->n_mx; i++)
		sb_add(b, " mx_host_pattern=%s", p->mx[i]);
	/* RFC 8460 section 4.4: policy-string, the policy's lines. */
	sb_add(b, " { policy_string = version: STSv1 } { policy_string = mode: %s }",
	       sts_mode_name(p->mode));
	for (size_t i = 0; i < p->n_mx; i++)
		sb_add(b, " { policy_string = mx: %s }", p->mx[i]);
	sb_add(b, " { policy_string = max_age: %u }", p->max_age);
}

size_t
smap_reply_build(const struct sts_answer *a, const struct smap_query *q,
                 const struct smap_reply_opts *o, char *out, size_t outlen, enum smap_kind *kind)
{
	struct sb b = {.buf = out, .cap = outlen};
	const char *dane = dane_level(a);
	const struct sts_policy *p = a->policy;

	if (outlen > 0)
		out[0] = '\0';
	if (dane != NULL && strcmp(dane, "temp") == 0) {
		*kind = SMAP_TEMP;
		sb_add(&b, "TEMP DNSSEC lookup failed for %s", a->domain);
		return finish(&b, kind);
	}
	if (dane != NULL) {
		*kind = SMAP_OK;
		sb_add(&b, "OK %s", dane);
		return finish(&b, kind);
	}
	if (a->status == STS_DEFER) {
		/* RFC 8461 section 5: no policy could be had and none is cached;
		 * the configuration asked to defer rather than deliver in clear. */
		*kind = SMAP_TEMP;
		sb_add(&b, "TEMP policy lookup failed for %s", a->domain);
		return finish(&b, kind);
	}
	if (a->status != STS_POLICY || (p == NULL && a->n_mx == 0) || (p != NULL && p->n_mx == 0) ||
	    !(a->mode == STS_MODE_ENFORCE || (a->mode == STS_MODE_TESTING && o->testing_secure))) {
		*kind = SMAP_NOTFOUND;
		sb_add(&b, "NOTFOUND ");
		return finish(&b, kind);
	}
	/* RFC 8461 section 4.1: the certificate must be valid (WebPKI, Postfix
	 * "secure") for a name matching one of the policy's patterns; without
	 * the policy text, for one of the MX hosts that matched it. */
	*kind = SMAP_OK;
	sb_add(&b, "OK secure match=");
	for (size_t i = 0; i < (p != NULL ? p->n_mx : a->n_mx); i++) {
		const char *m = p != NULL ? p->mx[i] : a->mx[i];

		sb_add(&b, "%s%s", i > 0 ? ":" : "", m[0] == '*' ? m + 1 : m);
	}
	sb_add(&b, " servername=hostname");
	if ((q->tlsrpt || o->tlsrpt) && p != NULL)
		tlsrpt_sts(&b, a);
	return finish(&b, kind);
}

size_t
smap_reply_word(enum smap_kind kind, const char *reason, char *out, size_t outlen)
{
	static const char *const words[SMAP_KIND_MAX] = {"OK", "NOTFOUND", "TEMP", "TIMEOUT",
	                                                 "PERM"};
	struct sb b = {.buf = out, .cap = outlen};

	if ((unsigned)kind >= SMAP_KIND_MAX)
		kind = SMAP_PERM;
	sb_add(&b, "%s %s", words[kind], reason != NULL ? reason : "");
	return finish(&b, &kind);
}

const char *
smap_kind_name(enum smap_kind kind)
{
	static const char *const names[SMAP_KIND_MAX] = {"ok", "notfound", "temp", "timeout",
	                                                 "perm"};

	return (unsigned)kind < SMAP_KIND_MAX ? names[kind] : "?";
}
