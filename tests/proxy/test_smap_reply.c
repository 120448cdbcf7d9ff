// sources: proxy/smap_reply.c core/util.c core/types.c
/*
 * test_smap_reply.c - socketmap requests for smtp_tls_policy_maps and the
 * reply to every policy shape: MTA-STS enforce, testing, none, no policy,
 * deferred; DANE usable on every host, on some, unusable, failed, bogus,
 * "only"; the TLSRPT attributes; the size bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/smap_reply.h"

/* --- requests --------------------------------------------------------------- */

static void
query_cases(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		bool lookup, tlsrpt;
		const char *domain;
	} cases[] = {
	    {"mta_sts_resolver_name", "postfix example.com", true, false, "example.com"},
	    {"tlspol_query", "QUERY example.com", true, false, "example.com"},
	    {"tlspol_tlsrpt", "QUERYwithTLSRPT example.com", true, true, "example.com"},
	    {"tlsrpt_any_case", "querywithtlsrpt example.com", true, true, "example.com"},
	    {"upper_case_key", "postfix EXAMPLE.Com", true, false, "example.com"},
	    {"trailing_dot", "postfix example.com.", true, false, "example.com"},
	    {"spaces_around_key", "postfix  example.com ", true, false, "example.com"},
	    {"u_label",
	     "postfix b\xc3\xbc"
	     "cher.example",
	     true, false, "xn--bcher-kva.example"},
	    {"no_key", "postfix", false, false, ""},
	    {"empty_key", "postfix ", false, false, ""},
	    {"parent_domain_lookup", "postfix .example.com", false, false, ""},
	    {"ipv4", "postfix 192.0.2.1", false, false, ""},
	    {"ipv6", "postfix 2001:db8::1", false, false, ""},
	    {"bracketed_nexthop", "postfix [mx.example.com]:587", false, false, ""},
	    {"single_label", "postfix localhost", false, false, ""},
	    {"invalid_utf8", "postfix \xff.example", false, false, ""},
	    {"empty", "", false, false, ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smap_query q;

		smap_query_parse(cases[i].in, strlen(cases[i].in), &q);
		if (q.lookup != cases[i].lookup || q.tlsrpt != cases[i].tlsrpt ||
		    strcmp(q.domain, cases[i].domain) != 0)
			fail_msg("%s: lookup=%d tlsrpt=%d domain=\"%s\"", cases[i].name, q.lookup,
			         q.tlsrpt, q.domain);
	}
}

static void
query_with_nul_is_not_looked_up(void **state)
{
	struct smap_query q;

	(void)state;
	smap_query_parse("postfix a\0b.example", 19, &q);
	assert_false(q.lookup);
}

/* --- replies ---------------------------------------------------------------- */

static char *mx2[] = {"*.example.com", "mx.example.net"};

static struct sts_policy pol_enforce = {STS_MODE_ENFORCE, 604800, mx2, 2};
static struct sts_policy pol_testing = {STS_MODE_TESTING, 86400, mx2, 2};

static void
answer_sts(struct sts_answer *a, enum sts_status status, struct sts_policy *p)
{
	memset(a, 0, sizeof(*a));
	strcpy(a->domain, "example.com");
	a->status = status;
	a->policy = status == STS_POLICY ? p : NULL;
	a->mode = status == STS_POLICY && p != NULL ? p->mode : STS_MODE_NONE;
	a->dane_mode = STS_DANE_MODE_OFF;
}

/* dane_state - a state with one host per letter of hosts: u usable, x
 * unusable, f failed, n none. Free with free(). */
static struct sts_dane_state *
dane_state(enum sts_dane_status status, const char *hosts)
{
	size_t n = strlen(hosts);
	struct sts_dane_state *st = calloc(1, sizeof(*st) + n * sizeof(st->host[0]));

	assert_non_null(st);
	st->status = status;
	st->mx_secure = true;
	st->domain = "example.com";
	st->why = "";
	st->n_host = n;
	for (size_t i = 0; i < n; i++) {
		st->host[i].name = "mx.example.com";
		st->host[i].base = "mx.example.com";
		st->host[i].why = "";
		st->host[i].state = hosts[i] == 'u'   ? STS_DANE_HOST_USABLE
		                    : hosts[i] == 'x' ? STS_DANE_HOST_UNUSABLE
		                    : hosts[i] == 'f' ? STS_DANE_HOST_FAILED
		                                      : STS_DANE_HOST_NONE;
	}
	return st;
}

static const char *
build(const struct sts_answer *a, bool tlsrpt, const struct smap_reply_opts *o,
      enum smap_kind *kind)
{
	static char out[SMAP_REPLY_MAX + 1];
	struct smap_query q = {.tlsrpt = tlsrpt, .lookup = true};
	struct smap_reply_opts none = {0};
	size_t n;

	strcpy(q.domain, a->domain);
	n = smap_reply_build(a, &q, o != NULL ? o : &none, out, sizeof(out), kind);
	assert_int_equal(n, strlen(out));
	return out;
}

/* RFC 8461 section 4.1, mta-sts-resolver's and postfix-tlspol's reply */
static void
sts_enforce_is_secure_match(void **state)
{
	struct sts_answer a;
	enum smap_kind k;

	(void)state;
	answer_sts(&a, STS_POLICY, &pol_enforce);
	assert_string_equal(build(&a, false, NULL, &k),
	                    "OK secure match=.example.com:mx.example.net servername=hostname");
	assert_int_equal(k, SMAP_OK);
}

static void
sts_enforce_with_tlsrpt(void **state)
{
	struct sts_answer a;
	enum smap_kind k;
	struct smap_reply_opts all = {.tlsrpt = true};
	const char *want =
	    "OK secure match=.example.com:mx.example.net servername=hostname"
	    " policy_type=sts policy_domain=example.com"
	    " mx_host_pattern=*.example.com mx_host_pattern=mx.example.net"
	    " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
	    " { policy_string = mx: *.example.com } { policy_string = mx: mx.example.net }"
	    " { policy_string = max_age: 604800 }";

	(void)state;
	answer_sts(&a, STS_POLICY, &pol_enforce);
	assert_string_equal(build(&a, true, NULL, &k), want);
	/* the configuration's tlsrpt gives them to every NAME */
	assert_string_equal(build(&a, false, &all, &k), want);
}

static void
sts_testing_none_and_no_policy_are_notfound(void **state)
{
	struct sts_policy none = {STS_MODE_NONE, 86400, mx2, 2};
	struct smap_reply_opts strict = {.testing_secure = true};
	struct sts_answer a;
	enum smap_kind k;

	(void)state;
	answer_sts(&a, STS_POLICY, &pol_testing);
	assert_string_equal(build(&a, false, NULL, &k), "NOTFOUND ");
	assert_int_equal(k, SMAP_NOTFOUND);
	/* testing_secure: as mta-sts-resolver's strict_testing */
	assert_string_equal(build(&a, false, &strict, &k),
	                    "OK secure match=.example.com:mx.example.net servername=hostname");
	answer_sts(&a, STS_POLICY, &none);
	assert_string_equal(build(&a, false, &strict, &k), "NOTFOUND ");
	answer_sts(&a, STS_NO_POLICY, NULL);
	a.problem = STS_RESULT_STS_POLICY_FETCH_ERROR; /* section 5: as if no policy */
	assert_string_equal(build(&a, true, NULL, &k), "NOTFOUND ");
	assert_int_equal(k, SMAP_NOTFOUND);
}

/* RFC 8461 section 5 with sts.defer_on_dns_failure: nothing now, nothing cached */
static void
sts_defer_is_temp(void **state)
{
	struct sts_answer a;
	enum smap_kind k;

	(void)state;
	answer_sts(&a, STS_DEFER, NULL);
	assert_string_equal(build(&a, false, NULL, &k),
	                    "TEMP policy lookup failed for example.com");
	assert_int_equal(k, SMAP_TEMP);
}

/* Without the policy text (an answer with candidates only), the candidates. */
static void
sts_enforce_without_policy_text_uses_candidates(void **state)
{
	struct sts_answer a;
	enum smap_kind k;

	(void)state;
	answer_sts(&a, STS_POLICY, NULL);
	a.mode = STS_MODE_ENFORCE;
	strcpy(a.mx[0], "mx1.example.com");
	a.n_mx = 1;
	assert_string_equal(build(&a, true, NULL, &k),
	                    "OK secure match=mx1.example.com servername=hostname");
}

/* RFC 7672 section 2.2 and RFC 8461 section 2: DANE first. */
static void
dane_cases(void **state)
{
	static const struct {
		const char *name;
		enum sts_dane_mode mode;
		enum sts_dane_status status;
		const char *hosts;
		bool with_state;
		const char *want;
		enum smap_kind kind;
	} cases[] = {
	    {"all_usable", STS_DANE_MODE_ON, STS_DANE_HOSTS, "uu", true, "OK dane-only", SMAP_OK},
	    {"some_usable", STS_DANE_MODE_ON, STS_DANE_HOSTS, "un", true, "OK dane", SMAP_OK},
	    {"unusable_only", STS_DANE_MODE_ON, STS_DANE_HOSTS, "x", true, "OK dane", SMAP_OK},
	    {"usable_and_failed", STS_DANE_MODE_ON, STS_DANE_HOSTS, "uf", true, "OK dane", SMAP_OK},
	    {"no_tlsa_falls_to_sts", STS_DANE_MODE_ON, STS_DANE_HOSTS, "nn", true,
	     "OK secure match=.example.com:mx.example.net servername=hostname", SMAP_OK},
	    {"insecure_mx_falls_to_sts", STS_DANE_MODE_ON, STS_DANE_NONE, "", true,
	     "OK secure match=.example.com:mx.example.net servername=hostname", SMAP_OK},
	    {"bogus_mx", STS_DANE_MODE_ON, STS_DANE_BOGUS, "", true,
	     "TEMP DNSSEC lookup failed for example.com", SMAP_TEMP},
	    {"mx_tempfail", STS_DANE_MODE_ON, STS_DANE_TEMPFAIL, "", true,
	     "TEMP DNSSEC lookup failed for example.com", SMAP_TEMP},
	    {"dane_off_ignores_tlsa", STS_DANE_MODE_OFF, STS_DANE_HOSTS, "uu", true,
	     "OK secure match=.example.com:mx.example.net servername=hostname", SMAP_OK},
	    {"only_without_tlsa", STS_DANE_MODE_ONLY, STS_DANE_HOSTS, "nn", true, "OK dane-only",
	     SMAP_OK},
	    {"only_without_state", STS_DANE_MODE_ONLY, STS_DANE_NONE, "", false, "OK dane-only",
	     SMAP_OK},
	    {"on_without_trust_anchor", STS_DANE_MODE_ON, STS_DANE_NONE, "", false,
	     "OK secure match=.example.com:mx.example.net servername=hostname", SMAP_OK},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sts_dane_state *st = dane_state(cases[i].status, cases[i].hosts);
		struct sts_answer a;
		enum smap_kind k;
		const char *got;

		answer_sts(&a, STS_POLICY, &pol_enforce);
		a.dane_mode = cases[i].mode;
		a.dane = cases[i].with_state ? st : NULL;
		got = build(&a, false, NULL, &k);
		if (strcmp(got, cases[i].want) != 0 || k != cases[i].kind)
			fail_msg("%s: got \"%s\" (%s)", cases[i].name, got, smap_kind_name(k));
		free(st);
	}
}

/* DANE wins even over a domain without any MTA-STS policy. */
static void
dane_without_sts(void **state)
{
	struct sts_dane_state *st = dane_state(STS_DANE_HOSTS, "u");
	struct sts_answer a;
	enum smap_kind k;

	(void)state;
	answer_sts(&a, STS_NO_POLICY, NULL);
	a.dane_mode = STS_DANE_MODE_ON;
	a.dane = st;
	assert_string_equal(build(&a, true, NULL, &k), "OK dane-only");
	/* and a DNS failure of MTA-STS does not hide it */
	answer_sts(&a, STS_DEFER, NULL);
	a.dane_mode = STS_DANE_MODE_ON;
	a.dane = st;
	assert_string_equal(build(&a, false, NULL, &k), "OK dane-only");
	free(st);
}

/* Postfix's dict_sockmap refuses replies over 100000 octets. */
static void
reply_bounds(void **state)
{
	static char *many[STS_POLICY_MAX_MX];
	static char names[STS_POLICY_MAX_MX][254];
	struct sts_policy big = {STS_MODE_ENFORCE, 86400, many, STS_POLICY_MAX_MX};
	struct smap_query q = {.lookup = true, .tlsrpt = true, .domain = "example.com"};
	struct smap_reply_opts o = {0};
	struct sts_answer a;
	enum smap_kind k;
	char small[64], *out = malloc(SMAP_REPLY_MAX + 1);
	size_t n;

	(void)state;
	assert_non_null(out);
	for (size_t i = 0; i < STS_POLICY_MAX_MX; i++) {
		memset(names[i], 'a', 240);
		snprintf(names[i] + 240, 14, "%02zu.example", i);
		many[i] = names[i];
	}
	answer_sts(&a, STS_POLICY, &big);
	/* the largest policy there can be still fits */
	n = smap_reply_build(&a, &q, &o, out, SMAP_REPLY_MAX + 1, &k);
	assert_true(n > 0 && n <= SMAP_REPLY_MAX);
	assert_int_equal(k, SMAP_OK);
	/* a buffer too small gives 0 and a TEMP reply, never a cut policy */
	assert_int_equal(smap_reply_build(&a, &q, &o, small, sizeof(small), &k), 0);
	assert_int_equal(k, SMAP_TEMP);
	assert_string_equal(small, "TEMP reply too long");
	free(out);
}

static void
words(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(smap_reply_word(SMAP_NOTFOUND, "", out, sizeof(out)), 9);
	assert_string_equal(out, "NOTFOUND ");
	smap_reply_word(SMAP_PERM, "request too long", out, sizeof(out));
	assert_string_equal(out, "PERM request too long");
	assert_string_equal(smap_kind_name(SMAP_TIMEOUT), "timeout");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(query_cases),
	    cmocka_unit_test(query_with_nul_is_not_looked_up),
	    cmocka_unit_test(sts_enforce_is_secure_match),
	    cmocka_unit_test(sts_enforce_with_tlsrpt),
	    cmocka_unit_test(sts_testing_none_and_no_policy_are_notfound),
	    cmocka_unit_test(sts_defer_is_temp),
	    cmocka_unit_test(sts_enforce_without_policy_text_uses_candidates),
	    cmocka_unit_test(dane_cases),
	    cmocka_unit_test(dane_without_sts),
	    cmocka_unit_test(reply_bounds),
	    cmocka_unit_test(words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
