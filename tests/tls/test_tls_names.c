// sources: tls/tls_verify.c tests/tls/testca.c core/types.c core/log.c
/*
 * test_tls_names.c - the indexed DNS-ID matcher of tls/tls_verify.c held to
 * X509_check_host(), which stays the authority (RFC 6125 section 6.4 as RFC
 * 8461 section 4.2 narrows it: SAN DNS-IDs only, whole-label wildcards only).
 *
 * For every certificate of a table (each issued by a test CA with the DNS
 * names given) and every host name of a second table, three answers must
 * agree: X509_check_host() with the flags tls_check_names() uses,
 * tls_dns_id_match() over the indexed DNS-IDs, and tls_check_names() on
 * indexed and on unindexed facts. A few cases also state the expected answer
 * outright, so that the comparison cannot pass by both sides being wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls_verify.h"
#include "tests/tls/testca.h"

#define FLAGS (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)

struct cert_case {
	const char *file;
	const char *sans[4];
	size_t n;
};

static const struct cert_case certs[] = {
    {"plain", {"mx1.example.com", "MX2.Example.COM"}, 2},
    {"wild", {"*.mx.example.com"}, 1},
    {"wild2", {"*.example.com"}, 1},
    {"wildtop", {"*.com"}, 1},
    {"partial", {"f*.example.com"}, 1},
    {"partial2", {"*f.example.com"}, 1},
    {"inner", {"mx.*.example.com"}, 1},
    {"twostars", {"*.*.example.com"}, 1},
    {"idna", {"*.xn--bcher-kva.example"}, 1},
    {"idnaleft", {"xn--*.example.com"}, 1},
    {"trailing", {"mx.example.com."}, 1},
    {"wildtrail", {"*.example.com."}, 1},
    {"hyphen", {"*.a-.example.com"}, 1},
    {"underscore", {"*.mx_1.example.com", "mx_1.example.com"}, 2},
    {"empty", {"*..example.com"}, 1},
    {"cnonly", {NULL}, 0},
    {"many", {"a.example.net", "*.b.example.net", "c.example.net", "*.d.example.net"}, 4},
};

static const char *const hosts[] = {
    "mx1.example.com",
    "MX1.EXAMPLE.COM",
    "mx2.example.com",
    "mx3.example.com",
    "a.mx.example.com",
    "A.MX.example.com",
    "a.b.mx.example.com",
    "mx.example.com",
    "example.com",
    "com",
    "foo.example.com",
    "f.example.com",
    "*.example.com",
    "*.mx.example.com",
    "a*b.example.com",
    "a_b.example.com",
    "xn--bcher-kva.example",
    "x.xn--bcher-kva.example",
    "xn--abc.example.com",
    "mx.example.com.",
    "-.example.com",
    "a.a-.example.com",
    "a.mx_1.example.com",
    "mx_1.example.com",
    "a.b.example.net",
    "x.d.example.net",
    "c.example.net",
    "d.example.net",
    "cnonly",
    "x",
};

static struct testca *ca;
static X509 *loaded[sizeof(certs) / sizeof(certs[0])];

static int
setup(void **state)
{
	char path[TESTCA_PATH_MAX];

	(void)state;
	if ((ca = testca_new(NULL)) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		FILE *fp;

		if (testca_issue(ca, certs[i].file, certs[i].sans, certs[i].n, 0, path, NULL) < 0 ||
		    (fp = fopen(path, "r")) == NULL)
			return -1;
		loaded[i] = PEM_read_X509(fp, NULL, NULL, NULL);
		fclose(fp);
		if (loaded[i] == NULL)
			return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		X509_free(loaded[i]);
		loaded[i] = NULL;
	}
	testca_free(ca);
	return 0;
}

/* facts - verified-looking facts around cert (referenced), indexed or not. */
static void
facts(struct tls_facts *f, X509 *cert, bool indexed)
{
	memset(f, 0, sizeof(*f));
	f->starttls_offered = true;
	f->handshake_done = true;
	f->verify_result = X509_V_OK;
	X509_up_ref(cert);
	f->cert = cert;
	if (indexed)
		assert_int_equal(tls_facts_index_names(f), 0);
}

/* indexed_answer - tls_dns_id_match() over every indexed DNS-ID of f. */
static bool
indexed_answer(const struct tls_facts *f, const char *host)
{
	const char *id = f->dns_ids;
	size_t hlen = strlen(host);

	if (hlen > 1 && host[hlen - 1] == '.')
		hlen--;
	for (unsigned i = 0; i < f->n_dns_ids; i++) {
		if (tls_dns_id_match(id, strlen(id), host, hlen))
			return true;
		id += strlen(id) + 1;
	}
	return false;
}

static void
rfc6125_6_4_matcher_agrees_with_x509_check_host(void **state)
{
	size_t compared = 0, matches = 0;

	(void)state;
	for (size_t c = 0; c < sizeof(certs) / sizeof(certs[0]); c++) {
		struct tls_facts fi, fx;

		facts(&fi, loaded[c], true);
		facts(&fx, loaded[c], false);
		assert_int_equal(fi.n_dns_ids, certs[c].n);
		for (size_t h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
			const char *names[1] = {hosts[h]};
			size_t hlen = strlen(hosts[h]);
			bool want, got;
			enum sts_result ri, rx;

			if (hlen > 1 && hosts[h][hlen - 1] == '.')
				hlen--;
			want = X509_check_host(loaded[c], hosts[h], hlen, FLAGS, NULL) == 1;
			ERR_clear_error();
			got = indexed_answer(&fi, hosts[h]);
			if (want != got)
				fail_msg("cert %s host %s: X509_check_host %d, matcher %d",
				         certs[c].file, hosts[h], want, got);
			ri = tls_check_names(&fi, names, 1, NULL, NULL, 0);
			rx = tls_check_names(&fx, names, 1, NULL, NULL, 0);
			assert_int_equal(ri, rx);
			assert_int_equal(ri, want ? STS_RESULT_OK : STS_RESULT_CERT_HOST_MISMATCH);
			compared++;
			matches += want;
		}
		tls_facts_clear(&fi);
		tls_facts_clear(&fx);
	}
	/* the table exercises both answers, many times */
	assert_int_equal(compared,
	                 (sizeof(certs) / sizeof(certs[0])) * (sizeof(hosts) / sizeof(hosts[0])));
	assert_true(matches >= 15);
	assert_true(compared - matches >= 100);
}

/* Expected answers, independent of OpenSSL: the RFC's own cases. */
static const struct {
	const char *name;
	const char *id, *host;
	bool match;
} direct[] = {
    {"rfc6125_6_4_1_exact", "mx.example.com", "mx.example.com", true},
    {"rfc6125_6_4_1_case", "mx.example.com", "MX.Example.Com", true},
    {"rfc6125_6_4_1_different", "mx.example.com", "mx2.example.com", false},
    {"rfc6125_6_4_3_wildcard_one_label", "*.example.com", "mx.example.com", true},
    {"rfc6125_6_4_3_wildcard_not_two_labels", "*.example.com", "a.mx.example.com", false},
    {"rfc6125_6_4_3_wildcard_not_empty", "*.example.com", "example.com", false},
    {"rfc6125_6_4_3_wildcard_not_bare_dot", "*.example.com", ".example.com", false},
    {"rfc8461_4_2_no_partial_wildcard", "f*.example.com", "foo.example.com", false},
    {"rfc8461_4_2_partial_literal", "f*.example.com", "f*.example.com", true},
    {"rfc6125_7_2_wildcard_under_tld_literal", "*.com", "example.com", false},
    {"rfc6125_6_4_3_wildcard_idna_label", "*.example.com", "xn--bcher-kva.example.com", true},
    {"rfc6125_6_4_3_wildcard_literal_star", "*.example.com", "*.example.com", true},
    {"rfc6125_6_4_3_wildcard_underscore", "*.example.com", "a_b.example.com", false},
    {"rfc6125_6_4_1_empty_id", "", "mx.example.com", false},
    {"rfc6125_6_4_1_embedded_nul", "mx.example.com\0x", "mx.example.com", false},
};

static void
rfc6125_6_4_matcher_direct_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(direct) / sizeof(direct[0]); i++) {
		size_t idlen = strlen(direct[i].id);

		if (strcmp(direct[i].name, "rfc6125_6_4_1_embedded_nul") == 0)
			idlen += 2; /* "\0x" */
		if (tls_dns_id_match(direct[i].id, idlen, direct[i].host, strlen(direct[i].host)) !=
		    direct[i].match)
			fail_msg("%s: %s vs %s", direct[i].name, direct[i].id, direct[i].host);
	}
}

static void
rfc8461_4_2_index_overflow_falls_back(void **state)
{
	const char *sans[20];
	char names[20][80], path[TESTCA_PATH_MAX];
	const char *want[1] = {
	    "host19-padding-padding-padding-padding-padding-padding.example.org"};
	struct tls_facts f;
	size_t matched = 99;
	FILE *fp;
	X509 *cert;

	(void)state;
	/* 20 names of ~68 octets: more than TLS_FACTS_DNS_IDS_MAX holds. */
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]),
		         "host%02d-padding-padding-padding-padding-padding-padding.example.org", i);
		sans[i] = names[i];
	}
	want[0] = names[19];
	assert_int_equal(testca_issue(ca, "big", sans, 20, 0, path, NULL), 0);
	assert_non_null(fp = fopen(path, "r"));
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(cert);
	memset(&f, 0, sizeof(f));
	f.starttls_offered = f.handshake_done = true;
	f.verify_result = X509_V_OK;
	f.cert = cert;
	assert_int_equal(tls_facts_index_names(&f), -1);
	assert_false(f.dns_ids_ready);
	/* the slower path still finds the last name */
	assert_int_equal(tls_check_names(&f, want, 1, &matched, NULL, 0), STS_RESULT_OK);
	assert_int_equal(matched, 0);
	tls_facts_clear(&f);
	assert_int_equal(tls_facts_index_names(&f), -1); /* no certificate */
}

static void
rfc8461_4_2_leading_dot_uses_x509(void **state)
{
	struct tls_facts f;
	const char *names[2] = {".mx.example.com", "a.mx.example.com"};
	char reason[256];
	size_t matched = 99;

	(void)state;
	facts(&f, loaded[1], true); /* "*.mx.example.com" */
	assert_int_equal(tls_check_names(&f, names, 2, &matched, reason, sizeof(reason)),
	                 STS_RESULT_OK);
	assert_int_equal(
	    matched,
	    X509_check_host(loaded[1], names[0], strlen(names[0]), FLAGS, NULL) == 1 ? 0 : 1);
	ERR_clear_error();
	assert_non_null(strstr(reason, "certificate valid for"));
	tls_facts_clear(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc6125_6_4_matcher_agrees_with_x509_check_host),
	    cmocka_unit_test(rfc6125_6_4_matcher_direct_table),
	    cmocka_unit_test(rfc8461_4_2_index_overflow_falls_back),
	    cmocka_unit_test(rfc8461_4_2_leading_dot_uses_x509),
	};

	return cmocka_run_group_tests_name("tls_names", tests, setup, teardown);
}
