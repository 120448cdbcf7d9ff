// sources: policy/sts_decide.c tls/tls_verify.c tests/tls/testca.c core/types.c core/util.c
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

int
main(void)
{
	const struct CMUnitTest decide[] = {
	    cmocka_unit_test(rfc8461_4_2_decide_table),
	    cmocka_unit_test(rfc8461_5_decide_without_policy),
	};

	return cmocka_run_group_tests_name("sts_decide", decide, certs_setup, certs_teardown) != 0;
}
