// sources: policy/sts_check.c policy/sts_tlsa.c policy/sts_txt.c policy/sts_policy.c
// sources: policy/sts_mx.c tls/tls_dane.c tls/tls_verify.c tests/tls/testca.c core/types.c
/*
 * test_sts_check_tlsa.c - "stsproxy check tlsa RECORD CERTFILE [HOST]"
 * (RFC 7672 section 3) on certificates of a throw-away CA: the exit status
 * of each kind of record, as a table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "policy/sts_check.h"
#include "tests/tls/testca.h"

static struct testca *ca;
static char leaf[TESTCA_PATH_MAX], chain[TESTCA_PATH_MAX + 16];
static char ee[80], ee_other[80], ta[80];

/* hex_digest - SHA2-256 of der in hex. */
static void
hex_digest(const unsigned char *der, int len, char *out)
{
	unsigned char d[32];
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(der, (size_t)len, d, &n, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static X509 *
load(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static int
setup(void **state)
{
	const char *san = "mx1.example.com";
	unsigned char *der = NULL;
	X509 *x;
	FILE *f, *in;
	char buf[8192];
	size_t n;
	int len;

	(void)state;
	if ((ca = testca_new(NULL)) == NULL || testca_issue(ca, "mx1", &san, 1, 0, leaf, NULL) != 0)
		return -1;
	x = load(leaf);
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	snprintf(ee, sizeof(ee), "3 1 1 ");
	hex_digest(der, len, ee + 6);
	memcpy(ee_other, ee, sizeof(ee));
	ee_other[6] = ee_other[6] == '0' ? '1' : '0';
	OPENSSL_free(der);
	X509_free(x);
	x = load(testca_ca_file(ca));
	der = NULL;
	len = i2d_X509(x, &der);
	snprintf(ta, sizeof(ta), "2 0 1 ");
	hex_digest(der, len, ta + 6);
	OPENSSL_free(der);
	X509_free(x);
	/* the chain as a server presents it: its leaf, then the CA */
	snprintf(chain, sizeof(chain), "%s.chain", leaf);
	if ((f = fopen(chain, "w")) == NULL)
		return -1;
	for (int i = 0; i < 2; i++) {
		if ((in = fopen(i == 0 ? leaf : testca_ca_file(ca), "r")) == NULL)
			return -1;
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, f);
		fclose(in);
	}
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	remove(chain);
	testca_free(ca);
	return 0;
}

static void
rfc7672_3_check_tlsa_table(void **state)
{
	const struct {
		const char *name, *record, *file, *host;
		int rc;
	} cases[] = {
	    {"rfc7672_3_1_1_ee_matches", ee, leaf, NULL, 0},
	    {"rfc7672_3_1_1_ee_matches_any_host", ee, chain, "other.example", 0},
	    {"rfc7672_3_1_1_ee_other_key", ee_other, leaf, NULL, 1},
	    {"rfc7672_3_1_2_ta_matches", ta, chain, "mx1.example.com", 0},
	    {"rfc7672_3_2_2_ta_wrong_host", ta, chain, "mx2.example.com", 1},
	    {"rfc7672_3_1_2_ta_not_presented", ta, leaf, "mx1.example.com", 1},
	    {"rfc7672_3_1_2_ta_needs_host", ta, chain, NULL, 2},
	    {"rfc7672_3_1_3_pkix_unusable", "1 1 1 00", leaf, NULL, 1},
	    {"rfc6698_2_1_3_bad_length", "3 1 1 0011", leaf, NULL, 1},
	    {"rfc6698_2_2_not_a_record", "3 1 x 00", leaf, NULL, 2},
	    {"missing_file", ee, "/nonexistent/cert.pem", NULL, 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = {"check",
		                "tlsa",
		                (char *)cases[i].record,
		                (char *)cases[i].file,
		                (char *)cases[i].host,
		                NULL};
		int rc = sts_check_main(cases[i].host != NULL ? 5 : 4, argv);

		if (rc != cases[i].rc)
			fail_msg("%s: exit %d, wanted %d", cases[i].name, rc, cases[i].rc);
	}
	{
		char *argv[] = {"check", "tlsa", ee, NULL};

		assert_int_equal(sts_check_main(3, argv), 2);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc7672_3_check_tlsa_table),
	};

	return cmocka_run_group_tests_name("check_tlsa", tests, setup, teardown) != 0;
}
