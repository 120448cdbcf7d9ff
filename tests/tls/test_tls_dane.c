// sources: tls/tls_dane.c tls/tls_verify.c tests/tls/testca.c core/types.c
/*
 * test_tls_dane.c - TLSA records against presented chains (RFC 7672
 * section 3, RFC 7671), as a table: every usage, selector and matching
 * type, unusable records and digest lengths, digest agility, DANE-TA
 * anchors presented, left out and given in full, names and dates.
 *
 * Chains come from a throw-away CA: leaves signed by the CA, a leaf signed
 * by an intermediate, expired, wrong-name, wildcard and self-signed leaves.
 * The records are computed here from the certificates, independently of
 * the digests tls_facts_index_chain() keeps.
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
#include <openssl/x509.h>

#include "tls/tls_dane.h"
#include "tls/tls_verify.h"
#include "tests/tls/testca.h"

/* The certificates of the cases. */
enum cert_id {
	C_ROOT = 0, /* the CA */
	C_LEAF,     /* mx1.example, signed by the CA */
	C_EXPIRED,  /* mx1.example, expired */
	C_OTHER,    /* mx.other.example: a name no case asks for */
	C_WILD,     /* *.example.net */
	C_PARTIAL,  /* m*.example.net: a partial wildcard */
	C_INTER,    /* an intermediate CA signed by the CA */
	C_LEAF2,    /* mx1.example, signed by the intermediate */
	C_SELF,     /* mx1.example, self-signed */
	C_STRANGER, /* the CA of another world */
	C_MAX
};

static X509 *certs[C_MAX];
static struct testca *ca, *stranger;

static X509 *
load(const char *path)
{
	X509 *x = NULL;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	return x;
}

static int
issue(enum cert_id id, const char *issuer, const char *name, const char *san, int flags)
{
	char crt[TESTCA_PATH_MAX];
	int r = issuer != NULL ? testca_issue_by(ca, issuer, name, &san, 1, flags, crt, NULL)
	                       : testca_issue(ca, name, &san, 1, flags, crt, NULL);

	return r == 0 && (certs[id] = load(crt)) != NULL ? 0 : -1;
}

static int
setup(void **state)
{
	(void)state;
	if ((ca = testca_new(NULL)) == NULL || (stranger = testca_new(NULL)) == NULL ||
	    (certs[C_ROOT] = load(testca_ca_file(ca))) == NULL ||
	    (certs[C_STRANGER] = load(testca_ca_file(stranger))) == NULL ||
	    issue(C_LEAF, NULL, "leaf", "mx1.example", 0) < 0 ||
	    issue(C_EXPIRED, NULL, "expired", "mx1.example", TESTCA_EXPIRED) < 0 ||
	    issue(C_OTHER, NULL, "other", "mx.other.example", 0) < 0 ||
	    issue(C_WILD, NULL, "wild", "*.example.net", 0) < 0 ||
	    issue(C_PARTIAL, NULL, "partial", "m*.example.net", 0) < 0 ||
	    issue(C_INTER, NULL, "inter", "inter.example", TESTCA_CA) < 0 ||
	    issue(C_LEAF2, "inter", "leaf2", "mx1.example", 0) < 0 ||
	    issue(C_SELF, NULL, "self", "mx1.example", TESTCA_SELF_SIGNED) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	for (int i = 0; i < C_MAX; i++)
		X509_free(certs[i]);
	testca_free(ca);
	testca_free(stranger);
	return 0;
}

/* How a record's data is made from its certificate. */
enum tweak {
	T_NONE = 0,
	T_FLIP,  /* one octet changed: a record for another key */
	T_SHORT, /* one octet short */
	T_LONG,  /* one octet more */
};

struct rr_spec {
	int usage, selector, mtype;
	enum cert_id cert;
	enum tweak tweak;
};

/* make_rr - the record spec describes, its data in buf (room for a full certificate). */
static void
make_rr(const struct rr_spec *s, uint8_t *buf, size_t buflen, struct tls_tlsa *rr)
{
	unsigned char *der = NULL;
	unsigned int dlen = 0;
	int len;

	len = s->selector == 0 ? i2d_X509(certs[s->cert], &der)
	                       : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(certs[s->cert]), &der);
	assert_true(len > 0);
	if (s->mtype == 0) {
		assert_true((size_t)len + 1 <= buflen);
		memcpy(buf, der, (size_t)len);
		dlen = (unsigned)len;
	} else {
		assert_int_equal(EVP_Digest(der, (size_t)len, buf, &dlen,
		                            s->mtype == 2 ? EVP_sha512() : EVP_sha256(), NULL),
		                 1);
	}
	OPENSSL_free(der);
	if (s->tweak == T_FLIP)
		buf[dlen / 2] ^= 0x5a;
	else if (s->tweak == T_SHORT)
		dlen--;
	else if (s->tweak == T_LONG)
		buf[dlen++] = 0;
	*rr = (struct tls_tlsa){.usage = (uint8_t)s->usage,
	                        .selector = (uint8_t)s->selector,
	                        .mtype = (uint8_t)s->mtype,
	                        .data = buf,
	                        .len = dlen};
}

/* facts - what a completed handshake presenting chain[0..n) shows (leaf first). */
static void
facts(struct tls_facts *f, const enum cert_id *chain, size_t n)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	memset(f, 0, sizeof(*f));
	f->starttls_offered = true;
	f->handshake_done = true;
	f->cert = certs[chain[0]];
	assert_int_equal(X509_up_ref(f->cert), 1);
	for (size_t i = 0; i < n; i++)
		assert_true(sk_X509_push(sk, certs[chain[i]]) > 0);
	assert_int_equal(tls_facts_index_chain(f, sk), 0);
	assert_int_equal(f->n_digests, n);
	sk_X509_free(sk);
}

#define CHAIN(...) {__VA_ARGS__}, sizeof((enum cert_id[]){__VA_ARGS__}) / sizeof(enum cert_id)
#define MAX_RR     3

static void
rfc7672_3_match_table(void **state)
{
	static const struct {
		const char *name;
		enum cert_id chain[4];
		size_t n_chain;
		struct rr_spec rr[MAX_RR];
		size_t n_rr;
		const char *names[2];
		enum sts_result result;
		int depth; /* of the match, when OK */
	} cases[] = {
	    /* Section 3.1.1: DANE-EE, every selector and matching type. */
	    {"rfc7672_3_1_1_ee_spki_sha256",
	     CHAIN(C_LEAF),
	     {{3, 1, 1, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_cert_sha256",
	     CHAIN(C_LEAF),
	     {{3, 0, 1, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_spki_sha512",
	     CHAIN(C_LEAF),
	     {{3, 1, 2, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_cert_sha512",
	     CHAIN(C_LEAF),
	     {{3, 0, 2, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_spki_full",
	     CHAIN(C_LEAF),
	     {{3, 1, 0, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_cert_full",
	     CHAIN(C_LEAF),
	     {{3, 0, 0, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_other_key",
	     CHAIN(C_LEAF),
	     {{3, 1, 1, C_LEAF, T_FLIP}},
	     1,
	     {NULL},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     -1},
	    {"rfc7672_3_1_1_ee_full_other",
	     CHAIN(C_LEAF),
	     {{3, 0, 0, C_LEAF, T_FLIP}},
	     1,
	     {NULL},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     -1},
	    {"rfc7672_3_1_1_ee_intermediate_not_leaf",
	     CHAIN(C_LEAF2, C_INTER),
	     {{3, 1, 1, C_INTER, 0}},
	     1,
	     {NULL},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     -1},
	    /* Section 3.1.1: no name and no date checks for DANE-EE. */
	    {"rfc7672_3_1_1_ee_expired",
	     CHAIN(C_EXPIRED),
	     {{3, 1, 1, C_EXPIRED, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_wrong_name",
	     CHAIN(C_OTHER),
	     {{3, 1, 1, C_OTHER, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_1_ee_self_signed",
	     CHAIN(C_SELF),
	     {{3, 0, 1, C_SELF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    /* Section 3.1.3, RFC 6698 section 2.1: unusable records and digest lengths. */
	    {"rfc7672_3_1_3_pkix_ta",
	     CHAIN(C_LEAF, C_ROOT),
	     {{0, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc7672_3_1_3_pkix_ee",
	     CHAIN(C_LEAF),
	     {{1, 1, 1, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc7672_3_1_3_pkix_both",
	     CHAIN(C_LEAF, C_ROOT),
	     {{0, 1, 1, C_ROOT, 0}, {1, 0, 2, C_LEAF, 0}},
	     2,
	     {"mx1.example"},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc6698_2_1_1_unknown_usage",
	     CHAIN(C_LEAF),
	     {{4, 1, 1, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc6698_2_1_2_unknown_selector",
	     CHAIN(C_LEAF),
	     {{3, 2, 1, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc6698_2_1_3_unknown_mtype",
	     CHAIN(C_LEAF),
	     {{3, 1, 3, C_LEAF, 0}},
	     1,
	     {NULL},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc6698_2_1_3_sha256_short",
	     CHAIN(C_LEAF),
	     {{3, 1, 1, C_LEAF, T_SHORT}},
	     1,
	     {NULL},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc6698_2_1_3_sha256_long",
	     CHAIN(C_LEAF),
	     {{3, 1, 1, C_LEAF, T_LONG}},
	     1,
	     {NULL},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc6698_2_1_3_sha512_short",
	     CHAIN(C_LEAF),
	     {{3, 1, 2, C_LEAF, T_SHORT}},
	     1,
	     {NULL},
	     STS_RESULT_TLSA_INVALID,
	     -1},
	    {"rfc7672_3_1_3_unusable_beside_usable",
	     CHAIN(C_LEAF),
	     {{1, 1, 1, C_LEAF, 0}, {3, 1, 1, C_LEAF, T_SHORT}, {3, 1, 1, C_LEAF, 0}},
	     3,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    /* RFC 7671 section 9: only the strongest digest of a usage and selector. */
	    {"rfc7671_9_sha512_hides_sha256",
	     CHAIN(C_LEAF),
	     {{3, 1, 1, C_LEAF, 0}, {3, 1, 2, C_LEAF, T_FLIP}},
	     2,
	     {NULL},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     -1},
	    {"rfc7671_9_sha512_used",
	     CHAIN(C_LEAF),
	     {{3, 1, 1, C_LEAF, T_FLIP}, {3, 1, 2, C_LEAF, 0}},
	     2,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7671_9_per_selector",
	     CHAIN(C_LEAF),
	     {{3, 0, 2, C_LEAF, T_FLIP}, {3, 1, 1, C_LEAF, 0}},
	     2,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7671_9_unusable_sha512_hides_nothing",
	     CHAIN(C_LEAF),
	     {{3, 1, 2, C_LEAF, T_SHORT}, {3, 1, 1, C_LEAF, 0}},
	     2,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    {"rfc7671_9_full_always_used",
	     CHAIN(C_LEAF),
	     {{3, 1, 2, C_LEAF, T_FLIP}, {3, 1, 0, C_LEAF, 0}},
	     2,
	     {NULL},
	     STS_RESULT_OK,
	     0},
	    /* Section 3.1.2: DANE-TA, the anchor presented. */
	    {"rfc7672_3_1_2_ta_cert_sha256",
	     CHAIN(C_LEAF, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     1},
	    {"rfc7672_3_1_2_ta_spki_sha256",
	     CHAIN(C_LEAF, C_ROOT),
	     {{2, 1, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     1},
	    {"rfc7672_3_1_2_ta_cert_sha512",
	     CHAIN(C_LEAF, C_ROOT),
	     {{2, 0, 2, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     1},
	    {"rfc7672_3_1_2_ta_intermediate",
	     CHAIN(C_LEAF2, C_INTER, C_ROOT),
	     {{2, 1, 1, C_INTER, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     1},
	    {"rfc7672_3_1_2_ta_root_above_intermediate",
	     CHAIN(C_LEAF2, C_INTER, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     2},
	    {"rfc7672_3_1_2_ta_wrong_anchor",
	     CHAIN(C_LEAF, C_ROOT),
	     {{2, 0, 1, C_ROOT, T_FLIP}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     -1},
	    {"rfc7672_3_1_2_ta_not_the_issuer",
	     CHAIN(C_LEAF, C_STRANGER),
	     {{2, 0, 1, C_STRANGER, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     1},
	    {"rfc7672_3_1_2_ta_never_the_leaf",
	     CHAIN(C_SELF),
	     {{2, 0, 1, C_SELF, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     -1},
	    /* The anchor left out of the chain: only a Full(0) record can name it. */
	    {"rfc7672_3_1_2_ta_digest_not_presented",
	     CHAIN(C_LEAF),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_CERT_NOT_TRUSTED,
	     -1},
	    {"rfc7672_3_1_2_ta_full_cert_not_presented",
	     CHAIN(C_LEAF),
	     {{2, 0, 0, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     -1},
	    {"rfc7672_3_1_2_ta_full_key_not_presented",
	     CHAIN(C_LEAF),
	     {{2, 1, 0, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     0},
	    {"rfc7672_3_1_2_ta_full_key_signs_intermediate",
	     CHAIN(C_LEAF2, C_INTER),
	     {{2, 1, 0, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     1},
	    /* Sections 3.2.2, 3.2.3: names and dates count for DANE-TA. */
	    {"rfc7672_3_2_2_ta_second_name",
	     CHAIN(C_LEAF, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"base.example", "mx1.example."},
	     STS_RESULT_OK,
	     1},
	    {"rfc7672_3_2_2_ta_wrong_name",
	     CHAIN(C_OTHER, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_CERT_HOST_MISMATCH,
	     1},
	    {"rfc7672_3_2_2_ta_no_name",
	     CHAIN(C_LEAF, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {NULL},
	     STS_RESULT_CERT_HOST_MISMATCH,
	     1},
	    {"rfc7672_3_2_3_ta_wildcard",
	     CHAIN(C_WILD, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example.net"},
	     STS_RESULT_OK,
	     1},
	    {"rfc7672_3_2_3_ta_partial_wildcard",
	     CHAIN(C_PARTIAL, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example.net"},
	     STS_RESULT_CERT_HOST_MISMATCH,
	     1},
	    {"rfc7672_3_1_2_ta_expired_leaf",
	     CHAIN(C_EXPIRED, C_ROOT),
	     {{2, 0, 1, C_ROOT, 0}},
	     1,
	     {"mx1.example"},
	     STS_RESULT_CERT_EXPIRED,
	     1},
	    /* Both usages: DANE-EE first, then DANE-TA. */
	    {"rfc7672_3_1_ee_wrong_ta_right",
	     CHAIN(C_LEAF, C_ROOT),
	     {{3, 1, 1, C_LEAF, T_FLIP}, {2, 0, 1, C_ROOT, 0}},
	     2,
	     {"mx1.example"},
	     STS_RESULT_OK,
	     1},
	};
	uint8_t bufs[MAX_RR][4096];
	struct tls_tlsa rr[MAX_RR];
	struct tls_dane_match m;
	struct tls_facts f;
	char reason[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *names[2];
		size_t n_names = 0;
		enum sts_result r;

		print_message("case %s\n", cases[i].name);
		facts(&f, cases[i].chain, cases[i].n_chain);
		for (size_t j = 0; j < cases[i].n_rr; j++)
			make_rr(&cases[i].rr[j], bufs[j], sizeof(bufs[j]), &rr[j]);
		for (size_t j = 0; j < 2; j++)
			if (cases[i].names[j] != NULL)
				names[n_names++] = cases[i].names[j];
		r = tls_dane_check(&f, rr, cases[i].n_rr, names, n_names, &m, reason,
		                   sizeof(reason));
		if (r != cases[i].result)
			fail_msg("%s: %s, wanted %s (%s)", cases[i].name, sts_result_name(r),
			         sts_result_name(cases[i].result), reason);
		if (r == STS_RESULT_OK) {
			assert_int_equal(m.depth, cases[i].depth);
			if (m.rr.usage == TLS_TLSA_DANE_TA)
				assert_non_null(strstr(m.name, "mx1.example"));
		} else if (cases[i].depth >= 0) {
			/* an anchor matched: the reason says so */
			assert_non_null(strstr(reason, "matches a trust anchor"));
		}
		/* without a reason buffer the verdict is the same */
		assert_int_equal(
		    tls_dane_check(&f, rr, cases[i].n_rr, names, n_names, NULL, NULL, 0), r);
		tls_facts_clear(&f);
	}
}

static void
rfc7672_3_before_tls(void **state)
{
	struct rr_spec spec = {3, 1, 1, C_LEAF, 0};
	uint8_t buf[64];
	struct tls_tlsa rr;
	struct tls_facts f;
	char reason[128];

	(void)state;
	make_rr(&spec, buf, sizeof(buf), &rr);
	memset(&f, 0, sizeof(f));
	assert_int_equal(tls_dane_check(&f, &rr, 1, NULL, 0, NULL, reason, sizeof(reason)),
	                 STS_RESULT_STARTTLS_NOT_SUPPORTED);
	f.starttls_offered = true;
	assert_int_equal(tls_dane_check(&f, &rr, 1, NULL, 0, NULL, reason, sizeof(reason)),
	                 STS_RESULT_VALIDATION_FAILURE);
	assert_string_equal(reason, "TLS handshake not completed");
	/* facts whose chain was never indexed match nothing */
	f.handshake_done = true;
	f.cert = certs[C_LEAF];
	assert_int_equal(tls_dane_check(&f, &rr, 1, NULL, 0, NULL, NULL, 0),
	                 STS_RESULT_VALIDATION_FAILURE);
	/* the leaf alone when no chain is given */
	assert_int_equal(X509_up_ref(f.cert), 1);
	assert_int_equal(tls_facts_index_chain(&f, NULL), 0);
	assert_int_equal(f.n_digests, 1);
	assert_int_equal(tls_dane_check(&f, &rr, 1, NULL, 0, NULL, NULL, 0), STS_RESULT_OK);
	tls_facts_clear(&f);
	assert_null(f.chain);
}

static void
rfc7672_3_1_3_usable(void **state)
{
	static const uint8_t d32[32], d64[64];
	static const struct {
		struct tls_tlsa rr;
		bool usable;
	} cases[] = {
	    {{3, 1, 1, d32, 32}, true},  {{2, 0, 2, d64, 64}, true},  {{3, 0, 0, d32, 1}, true},
	    {{3, 0, 0, d32, 0}, false},  {{3, 1, 1, d64, 64}, false}, {{3, 1, 2, d32, 32}, false},
	    {{0, 0, 1, d32, 32}, false}, {{1, 1, 1, d32, 32}, false}, {{255, 1, 1, d32, 32}, false},
	    {{3, 2, 1, d32, 32}, false}, {{3, 1, 3, d32, 32}, false},
	};
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = NULL;
		assert_int_equal(tls_tlsa_usable(&cases[i].rr, &why), cases[i].usable);
		assert_true(cases[i].usable ? why == NULL : why != NULL);
	}
	assert_string_equal(tls_tlsa_usage_name(2), "DANE-TA");
	assert_string_equal(tls_tlsa_usage_name(9), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc7672_3_match_table),
	    cmocka_unit_test(rfc7672_3_before_tls),
	    cmocka_unit_test(rfc7672_3_1_3_usable),
	};

	return cmocka_run_group_tests_name("tls_dane", tests, setup, teardown) != 0;
}
