// sources: policy/sts_decide.c policy/sts_dane.c policy/sts_seen.c tls/tls_dane.c tls/tls_verify.c
// sources: tests/tls/testca.c core/types.c core/util.c
/*
 * test_sts_decide.c - the verdict on one recipient (policy/sts_decide.c)
 * as a table: answers built by hand, TLS facts from real certificates of a
 * throw-away CA.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "core/util.h"
#include "policy/sts_decide.h"
#include "tests/tls/testca.h"

/* --- decisions ------------------------------------------------------------------ */

struct certs {
	struct testca *ca;
	X509_STORE *store;
};

static struct certs certs;

static int
certs_setup(void **state)
{
	(void)state;
	certs.ca = testca_new(NULL);
	if (certs.ca == NULL || (certs.store = X509_STORE_new()) == NULL ||
	    X509_STORE_load_locations(certs.store, testca_ca_file(certs.ca), NULL) != 1)
		return -1;
	return 0;
}

static int
certs_teardown(void **state)
{
	(void)state;
	X509_STORE_free(certs.store);
	testca_free(certs.ca);
	return 0;
}

/* facts - what a completed handshake with a certificate for san would show. */
static void
facts(struct tls_facts *tf, const char *file, const char *san, int flags)
{
	char crt[TESTCA_PATH_MAX];
	X509_STORE_CTX *ctx;
	FILE *fp;

	memset(tf, 0, sizeof(*tf));
	tf->starttls_offered = true;
	tf->handshake_done = true;
	assert_int_equal(testca_issue(certs.ca, file, &san, 1, flags, crt, NULL), 0);
	assert_non_null(fp = fopen(crt, "r"));
	tf->cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(tf->cert);
	assert_non_null(ctx = X509_STORE_CTX_new());
	assert_int_equal(X509_STORE_CTX_init(ctx, certs.store, tf->cert, NULL), 1);
	tf->verify_result = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	snprintf(tf->sans, sizeof(tf->sans), "DNS:%s", san);
}

/* facts_chain - facts whose server presented its leaf and the CA, indexed as after a handshake. */
static void
facts_chain(struct tls_facts *tf, const char *file, const char *san, int flags)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509 *ca = NULL;
	FILE *fp;

	facts(tf, file, san, flags);
	assert_non_null(fp = fopen(testca_ca_file(certs.ca), "r"));
	ca = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(ca);
	assert_true(sk_X509_push(chain, tf->cert) > 0 && sk_X509_push(chain, ca) > 0);
	assert_int_equal(tls_facts_index_chain(tf, chain), 0);
	assert_int_equal(tls_facts_index_names(tf), 0);
	sk_X509_free(chain);
	X509_free(ca);
}

static void
answer(struct sts_answer *a, enum sts_mode mode, size_t n_mx)
{
	struct sockaddr_in *s;

	memset(a, 0, sizeof(*a));
	a->status = STS_POLICY;
	a->source = STS_SOURCE_CACHE;
	a->mode = mode;
	sts_strlcpy(a->domain, "example.com", sizeof(a->domain));
	a->n_mx = n_mx;
	sts_strlcpy(a->mx[0], "mx1.example.com", sizeof(a->mx[0]));
	sts_strlcpy(a->mx[1], "mx2.example.com", sizeof(a->mx[1]));
	a->n_addr = n_mx > 0 ? 1 : 0;
	s = (struct sockaddr_in *)&a->addr[0];
	s->sin_family = AF_INET;
	inet_pton(AF_INET, "10.0.25.2", &s->sin_addr);
}

static void
rfc8461_4_2_decide_table(void **state)
{
	static const struct {
		const char *name;
		enum sts_mode mode;
		size_t n_mx;
		int tls; /* 0 none, 1 STARTTLS but no handshake, 2 handshake */
		const char *san;
		int flags;
		const char *dest;
		bool pass;
		enum sts_result result;
		bool dest_is_mx;
		const char *reason;
	} cases[] = {
	    {"rfc8461_4_2_pass", STS_MODE_ENFORCE, 2, 2, "mx2.example.com", 0, "10.0.25.2", true,
	     STS_RESULT_OK, true, "certificate valid for mx2.example.com"},
	    {"rfc8461_4_2_pass_wildcard", STS_MODE_ENFORCE, 2, 2, "*.example.com", 0, "10.0.25.2",
	     true, STS_RESULT_OK, true, "valid for mx1.example.com"},
	    {"rfc3207_no_starttls", STS_MODE_ENFORCE, 2, 0, NULL, 0, "10.0.25.2", false,
	     STS_RESULT_STARTTLS_NOT_SUPPORTED, true, "STARTTLS"},
	    {"rfc8461_4_2_no_handshake", STS_MODE_ENFORCE, 2, 1, NULL, 0, "10.0.25.2", false,
	     STS_RESULT_VALIDATION_FAILURE, true, "handshake"},
	    {"rfc8461_4_2_expired", STS_MODE_ENFORCE, 2, 2, "mx1.example.com", 1, "10.0.25.2",
	     false, STS_RESULT_CERT_EXPIRED, true, "expired"},
	    {"rfc8461_4_2_untrusted", STS_MODE_ENFORCE, 2, 2, "mx1.example.com", 4, "10.0.25.2",
	     false, STS_RESULT_CERT_NOT_TRUSTED, true, "self"},
	    {"rfc8461_4_2_wrong_name", STS_MODE_ENFORCE, 2, 2, "mx.other.net", 0, "10.0.25.2",
	     false, STS_RESULT_CERT_HOST_MISMATCH, true, "no name matches"},
	    {"rfc8461_4_1_no_candidates", STS_MODE_ENFORCE, 0, 2, "mx1.example.com", 0, "10.0.25.2",
	     false, STS_RESULT_CERT_HOST_MISMATCH, false,
	     "no MX host of example.com matches the policy"},
	    {"rfc8461_4_1_dest_not_mx", STS_MODE_ENFORCE, 2, 2, "mx1.example.com", 0, "10.1.2.3",
	     true, STS_RESULT_OK, false,
	     "destination 10.1.2.3 is not an address of any policy MX; "},
	    {"rfc8461_5_testing_reports", STS_MODE_TESTING, 2, 0, NULL, 0, "10.0.25.2", false,
	     STS_RESULT_STARTTLS_NOT_SUPPORTED, true, "STARTTLS"},
	};
	struct sts_decision d;
	struct sts_answer a;
	struct tls_facts tf;
	char file[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(25)};

		print_message("case %s\n", cases[i].name);
		memset(&tf, 0, sizeof(tf));
		if (cases[i].tls == 2) {
			snprintf(file, sizeof(file), "leaf%zu", i);
			facts(&tf, file, cases[i].san, cases[i].flags);
		} else if (cases[i].tls == 1) {
			tf.starttls_offered = true;
		}
		answer(&a, cases[i].mode, cases[i].n_mx);
		inet_pton(AF_INET, cases[i].dest, &dest.sin_addr);
		sts_decide(&a, (struct sockaddr *)&dest, cases[i].tls == 0 ? NULL : &tf, &d);
		assert_int_equal(d.pass, cases[i].pass);
		assert_true(d.tls_required);
		assert_int_equal(d.mode, cases[i].mode);
		assert_int_equal(d.result, cases[i].result);
		assert_int_equal(d.dest_is_mx, cases[i].dest_is_mx);
		if (strstr(d.reason, cases[i].reason) == NULL)
			fail_msg("%s: reason \"%s\" lacks \"%s\"", cases[i].name, d.reason,
			         cases[i].reason);
		tls_facts_clear(&tf);
	}
}

static void
rfc8461_5_decide_without_policy(void **state)
{
	struct sts_decision d;
	struct sts_answer a;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.status = STS_NO_POLICY;
	sts_decide(&a, NULL, NULL, &d);
	assert_true(d.pass);
	assert_false(d.tls_required);
	assert_int_equal(d.result, STS_RESULT_OK);
	a.status = STS_DEFER;
	sts_decide(&a, NULL, NULL, &d);
	assert_false(d.tls_required);
	answer(&a, STS_MODE_NONE, 2);
	sts_decide(&a, NULL, NULL, &d);
	assert_true(d.pass);
	assert_false(d.tls_required);
	assert_int_equal(d.mode, STS_MODE_NONE);
}

/* --- DANE (RFC 7672) and its precedence over MTA-STS (RFC 8461 section 2) ------------- */

/* The records of a host in the table below. */
enum rec {
	R_NONE = 0, /* no record (a host without usable TLSA) */
	R_EE,       /* 3 1 1 of the leaf the case presents */
	R_EE_OTHER, /* 3 1 1 of another key */
	R_TA,       /* 2 0 1 of the CA */
	R_PKIX,     /* 1 1 1 of the leaf: unusable */
};

struct host_spec {
	const char *name, *base, *addr;
	enum sts_dane_host_state state;
	enum rec rec;
};

/*
 * dane_state - a state with hosts h[0..n) for facts tf (whose digests and
 * whose CA make the records); NULL for status NONE without hosts.
 */
static struct sts_dane_state *
dane_state(enum sts_dane_status status, const struct host_spec *h, size_t n,
           const struct tls_facts *tf)
{
	static struct sts_dane_build b;
	struct sts_dane_state *st;

	memset(&b, 0, sizeof(b));
	b.status = status;
	b.mx_secure = true;
	sts_strlcpy(b.domain, "example.com", sizeof(b.domain));
	sts_strlcpy(b.why, "MX example.com: scripted", sizeof(b.why));
	for (size_t i = 0; i < n && h[i].name != NULL; i++) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&b.host[i].addr[0];
		const unsigned char *d = NULL;

		sts_strlcpy(b.host[i].name, h[i].name, sizeof(b.host[i].name));
		sts_strlcpy(b.host[i].base, h[i].base != NULL ? h[i].base : h[i].name,
		            sizeof(b.host[i].base));
		b.host[i].state = h[i].state;
		if (h[i].state == STS_DANE_HOST_FAILED)
			b.host[i].problem = STS_RESULT_DNSSEC_INVALID;
		if (h[i].state == STS_DANE_HOST_UNUSABLE)
			b.host[i].problem = STS_RESULT_TLSA_INVALID;
		if (b.host[i].problem != STS_RESULT_OK)
			sts_strlcpy(b.host[i].why, "scripted", sizeof(b.host[i].why));
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, h[i].addr, &sin->sin_addr);
		b.host[i].n_addr = 1;
		if (h[i].rec == R_EE || h[i].rec == R_EE_OTHER || h[i].rec == R_PKIX)
			d = tf->digests[0].spki256;
		else if (h[i].rec == R_TA)
			d = tf->digests[1].cert256;
		if (d != NULL) {
			uint8_t *at = b.data + b.data_used;

			memcpy(at, d, 32);
			if (h[i].rec == R_EE_OTHER)
				at[0] ^= 0xff;
			b.data_used += 32;
			b.host[i].tlsa[0] = (struct tls_tlsa){.usage = h[i].rec == R_TA     ? 2
			                                               : h[i].rec == R_PKIX ? 1
			                                                                    : 3,
			                                      .selector = h[i].rec == R_TA ? 0 : 1,
			                                      .mtype = 1,
			                                      .data = at,
			                                      .len = 32};
			b.host[i].n_tlsa = 1;
		}
		b.n_host = i + 1;
	}
	assert_non_null(st = sts_dane_state_new(&b, 1));
	return st;
}

static void
rfc7672_decide_table(void **state)
{
#define H(...)                                                                                     \
	{                                                                                          \
		__VA_ARGS__                                                                        \
	}
	static const struct {
		const char *name;
		enum sts_mode sts;        /* the MTA-STS policy (mode none: no policy) */
		enum sts_dane_mode dmode; /* the domain's DANE mode */
		enum sts_dane_status status;
		struct host_spec h[2];
		const char *san; /* the leaf presented; NULL: plaintext */
		int flags;
		const char *dest;
		bool pass;
		enum sts_policy_type type;
		enum sts_result result, report;
		const char *reason;
	} cases[] = {
	    /* Section 3.1.1: DANE-EE, and DANE alone decides (RFC 8461 section 2). */
	    {"rfc7672_3_1_1_ee_match", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE}),
	     "mx1.example.com", 0, "10.0.25.2", true, STS_PTYPE_TLSA, STS_RESULT_OK, 0,
	     "TLSA records of mx1.example.com match"},
	    {"rfc7672_3_1_1_ee_mismatch", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE_OTHER}),
	     "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_CERT_NOT_TRUSTED,
	     0, "no TLSA record matches"},
	    {"rfc7672_3_1_1_ee_expired_wrong_name", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE}),
	     "wrong.example.net", TESTCA_EXPIRED, "10.0.25.2", true, STS_PTYPE_TLSA, STS_RESULT_OK,
	     0, "match"},
	    {"rfc8461_2_dane_pass_wins_over_failing_sts", STS_MODE_ENFORCE, STS_DANE_MODE_ON,
	     STS_DANE_HOSTS, H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE}),
	     "wrong.example.net", 0, "10.0.25.2", true, STS_PTYPE_TLSA, STS_RESULT_OK, 0, "match"},
	    {"rfc8461_2_dane_failure_wins_over_passing_sts", STS_MODE_ENFORCE, STS_DANE_MODE_ON,
	     STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE_OTHER}),
	     "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_CERT_NOT_TRUSTED,
	     0, "mx1.example.com: "},
	    /* Sections 3.1.2, 3.2.2: DANE-TA, the chain and the names. */
	    {"rfc7672_3_1_2_ta_match", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_TA}),
	     "mx1.example.com", 0, "10.0.25.2", true, STS_PTYPE_TLSA, STS_RESULT_OK, 0, "match"},
	    {"rfc7672_3_2_2_ta_base_domain_name", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx.alias.example", "mx1.example.com", "10.0.25.2", STS_DANE_HOST_USABLE, R_TA}),
	     "mx1.example.com", 0, "10.0.25.2", true, STS_PTYPE_TLSA, STS_RESULT_OK, 0, "match"},
	    {"rfc7672_3_2_2_ta_wrong_name", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_TA}),
	     "wrong.example.net", 0, "10.0.25.2", false, STS_PTYPE_TLSA,
	     STS_RESULT_CERT_HOST_MISMATCH, 0, "no name matches"},
	    {"rfc7672_3_1_2_ta_expired", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_TA}),
	     "mx1.example.com", TESTCA_EXPIRED, "10.0.25.2", false, STS_PTYPE_TLSA,
	     STS_RESULT_CERT_EXPIRED, 0, "expired"},
	    /* Section 2.2: TLSA records make TLS mandatory. */
	    {"rfc7672_2_2_no_starttls", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE}), NULL, 0,
	     "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_STARTTLS_NOT_SUPPORTED, 0,
	     "STARTTLS not offered"},
	    {"rfc7672_2_2_unusable_tls_passes_reported", STS_MODE_ENFORCE, STS_DANE_MODE_ON,
	     STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_UNUSABLE, R_PKIX}),
	     "wrong.example.net", TESTCA_SELF_SIGNED, "10.0.25.2", true, STS_PTYPE_TLSA,
	     STS_RESULT_OK, STS_RESULT_TLSA_INVALID, "TLS without authentication"},
	    {"rfc7672_2_2_unusable_plaintext_fails", STS_MODE_NONE, STS_DANE_MODE_ON,
	     STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_UNUSABLE, R_PKIX}), NULL, 0,
	     "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_STARTTLS_NOT_SUPPORTED, 0,
	     "STARTTLS not offered"},
	    /* Section 2.2.1: what cannot be had securely defers, never falls back. */
	    {"rfc7672_2_2_1_tlsa_failed_defers", STS_MODE_ENFORCE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_FAILED, R_NONE}),
	     "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_DNSSEC_INVALID, 0,
	     "scripted"},
	    {"rfc7672_2_2_1_tlsa_failed_plaintext", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_FAILED, R_NONE}), NULL, 0,
	     "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_DNSSEC_INVALID, 0, "scripted"},
	    {"rfc7672_2_2_1_mx_bogus", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_BOGUS, H({NULL}),
	     "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_DNSSEC_INVALID, 0,
	     "scripted"},
	    {"rfc7672_2_2_1_mx_tempfail", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_TEMPFAIL,
	     H({NULL}), "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA,
	     STS_RESULT_DNSSEC_INVALID, 0, "temporarily"},
	    /* Without DANE state, MTA-STS as before. */
	    {"rfc7672_2_2_1_insecure_mx_sts_decides", STS_MODE_ENFORCE, STS_DANE_MODE_ON,
	     STS_DANE_NONE, H({NULL}), "wrong.example.net", 0, "10.0.25.2", false, STS_PTYPE_STS,
	     STS_RESULT_CERT_HOST_MISMATCH, 0, "no name matches"},
	    {"rfc7672_2_2_no_tlsa_no_policy", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_NONE, R_NONE}), NULL, 0,
	     "10.0.25.2", true, STS_PTYPE_NONE, STS_RESULT_OK, 0, "no MTA-STS policy"},
	    {"rfc7672_dane_off_sts_decides", STS_MODE_ENFORCE, STS_DANE_MODE_OFF, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE_OTHER}),
	     "mx1.example.com", 0, "10.0.25.2", true, STS_PTYPE_STS, STS_RESULT_OK, 0,
	     "certificate valid for mx1.example.com"},
	    /* RFC 8460 section 4.3.1: "only" without TLSA records. */
	    {"rfc8460_4_3_1_dane_required_insecure", STS_MODE_NONE, STS_DANE_MODE_ONLY,
	     STS_DANE_NONE, H({NULL}), "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA,
	     STS_RESULT_DANE_REQUIRED, 0, "not DNSSEC-signed"},
	    {"rfc8460_4_3_1_dane_required_no_tlsa", STS_MODE_ENFORCE, STS_DANE_MODE_ONLY,
	     STS_DANE_HOSTS, H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_NONE, R_NONE}),
	     "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_DANE_REQUIRED, 0,
	     "DANE required"},
	    {"rfc7672_only_match", STS_MODE_NONE, STS_DANE_MODE_ONLY, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE}),
	     "mx1.example.com", 0, "10.0.25.2", true, STS_PTYPE_TLSA, STS_RESULT_OK, 0, "match"},
	    /* Section 2.2: per MX host; the destination names which. */
	    {"rfc7672_2_2_dest_host_without_dane", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE_OTHER},
	       {"mx2.example.com", NULL, "10.0.26.2", STS_DANE_HOST_NONE, R_NONE}),
	     NULL, 0, "10.0.26.2", true, STS_PTYPE_NONE, STS_RESULT_OK, 0, "no MTA-STS"},
	    {"rfc7672_2_2_dest_second_host", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE_OTHER},
	       {"mx2.example.com", NULL, "10.0.26.2", STS_DANE_HOST_USABLE, R_EE}),
	     "mx1.example.com", 0, "10.0.26.2", true, STS_PTYPE_TLSA, STS_RESULT_OK, 0,
	     "TLSA records of mx2.example.com match"},
	    {"rfc7672_2_2_dest_first_host_other_key", STS_MODE_NONE, STS_DANE_MODE_ON,
	     STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE_OTHER},
	       {"mx2.example.com", NULL, "10.0.26.2", STS_DANE_HOST_USABLE, R_EE}),
	     "mx1.example.com", 0, "10.0.25.2", false, STS_PTYPE_TLSA, STS_RESULT_CERT_NOT_TRUSTED,
	     0, "mx1.example.com: "},
	    {"rfc7672_2_2_dest_unknown_held_to_every_host", STS_MODE_NONE, STS_DANE_MODE_ON,
	     STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_FAILED, R_NONE},
	       {"mx2.example.com", NULL, "10.0.26.2", STS_DANE_HOST_USABLE, R_EE}),
	     "mx1.example.com", 0, "10.9.9.9", true, STS_PTYPE_TLSA, STS_RESULT_OK, 0,
	     "destination 10.9.9.9 is not an address of any MX host; TLSA records of "
	     "mx2.example.com match"},
	    {"rfc7672_2_2_dest_unknown_plaintext", STS_MODE_NONE, STS_DANE_MODE_ON, STS_DANE_HOSTS,
	     H({"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_NONE, R_NONE},
	       {"mx2.example.com", NULL, "10.0.26.2", STS_DANE_HOST_USABLE, R_EE}),
	     NULL, 0, "10.9.9.9", false, STS_PTYPE_TLSA, STS_RESULT_STARTTLS_NOT_SUPPORTED, 0,
	     "destination 10.9.9.9"},
	};
	struct sts_decision d;
	struct sts_answer a;
	struct tls_facts tf, *fp;
	char file[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(25)};
		struct sts_dane_state *st;

		print_message("case %s\n", cases[i].name);
		/* the records are made from the chain presented (plaintext: one made anyway) */
		snprintf(file, sizeof(file), "dane%zu", i);
		facts_chain(&tf, file, cases[i].san != NULL ? cases[i].san : "mx1.example.com",
		            cases[i].flags);
		st = dane_state(cases[i].status, cases[i].h, 2, &tf);
		fp = cases[i].san != NULL ? &tf : NULL;
		answer(&a, cases[i].sts, cases[i].sts == STS_MODE_NONE ? 0 : 1);
		if (cases[i].sts == STS_MODE_NONE)
			a.status = STS_NO_POLICY;
		a.dane_mode = cases[i].dmode;
		a.dane = st;
		inet_pton(AF_INET, cases[i].dest, &dest.sin_addr);
		sts_decide(&a, (struct sockaddr *)&dest, fp, &d);
		if (d.pass != cases[i].pass || d.type != cases[i].type ||
		    d.result != cases[i].result || d.report != cases[i].report ||
		    strstr(d.reason, cases[i].reason) == NULL)
			fail_msg("%s: pass %d type %s result %s report %s reason \"%s\"",
			         cases[i].name, d.pass, sts_policy_type_name(d.type),
			         sts_result_name(d.result), sts_result_name(d.report), d.reason);
		if (d.type == STS_PTYPE_TLSA) {
			assert_true(d.tls_required);
			assert_int_equal(d.mode, STS_MODE_ENFORCE);
		}
		assert_int_equal(d.dns_tempfail, cases[i].status == STS_DANE_TEMPFAIL);
		sts_dane_release(st);
		tls_facts_clear(&tf);
	}
#undef H
}

/* "only" without a state (no trust anchor) refuses too. */
static void
rfc8460_4_3_1_dane_required_without_dnssec(void **state)
{
	struct sts_decision d;
	struct sts_answer a;

	(void)state;
	answer(&a, STS_MODE_NONE, 0);
	a.status = STS_NO_POLICY;
	a.dane_mode = STS_DANE_MODE_ONLY;
	sts_decide(&a, NULL, NULL, &d);
	assert_false(d.pass);
	assert_int_equal(d.type, STS_PTYPE_TLSA);
	assert_int_equal(d.result, STS_RESULT_DANE_REQUIRED);
	assert_non_null(strstr(d.reason, "DNSSEC validation is not configured"));
	a.dane_mode = STS_DANE_MODE_ON;
	sts_decide(&a, NULL, NULL, &d);
	assert_true(d.pass);
	assert_int_equal(d.type, STS_PTYPE_NONE);
}

/* What the NFQUEUE inspector is told of a domain: a DANE domain requires TLS. */
static void
rfc7672_answer_tls_mode(void **state)
{
	static const struct host_spec usable[] = {
	    {"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_USABLE, R_EE}};
	static const struct host_spec none[] = {
	    {"mx1.example.com", NULL, "10.0.25.2", STS_DANE_HOST_NONE, R_NONE}};
	struct sts_dane_state *st_usable, *st_none, *st_bogus;
	struct sts_answer a;
	struct tls_facts tf;

	(void)state;
	facts_chain(&tf, "tlsmode", "mx1.example.com", 0);
	st_usable = dane_state(STS_DANE_HOSTS, usable, 1, &tf);
	st_none = dane_state(STS_DANE_HOSTS, none, 1, &tf);
	st_bogus = dane_state(STS_DANE_BOGUS, NULL, 0, &tf);
	answer(&a, STS_MODE_TESTING, 1);
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_TESTING);
	a.dane = st_usable;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_ENFORCE);
	a.dane_mode = STS_DANE_MODE_OFF;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_TESTING);
	a.dane_mode = STS_DANE_MODE_ON;
	a.dane = st_none;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_TESTING);
	a.dane = st_bogus;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_ENFORCE);
	a.status = STS_NO_POLICY;
	a.dane = st_none;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_NONE);
	a.dane = st_usable;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_ENFORCE);
	a.status = STS_DEFER;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_ENFORCE);
	a.dane = NULL;
	assert_int_equal(sts_answer_tls_mode(&a), -1);
	a.dane_mode = STS_DANE_MODE_ONLY;
	assert_int_equal(sts_answer_tls_mode(&a), STS_MODE_ENFORCE);
	sts_dane_release(st_usable);
	sts_dane_release(st_none);
	sts_dane_release(st_bogus);
	tls_facts_clear(&tf);
}

int
main(void)
{
	const struct CMUnitTest decide[] = {
	    cmocka_unit_test(rfc8461_4_2_decide_table),
	    cmocka_unit_test(rfc8461_5_decide_without_policy),
	    cmocka_unit_test(rfc7672_decide_table),
	    cmocka_unit_test(rfc8460_4_3_1_dane_required_without_dnssec),
	    cmocka_unit_test(rfc7672_answer_tls_mode),
	};

	return cmocka_run_group_tests_name("sts_decide", decide, certs_setup, certs_teardown) != 0;
}
