// sources: policy/sts_tlsa.c tls/tls_dane.c tls/tls_verify.c core/types.c
/*
 * fuzz_sts_tlsa.c - TLSA records from arbitrary bytes: the rdata and
 * presentation parsers, the printer, and the DANE match of the records
 * against a fixed chain (a leaf for mx.example and its CA), which feeds
 * attacker-chosen association data to the DER decoders of Full(0)
 * DANE-TA records. The first byte picks the mode.
 *
 * Beyond not crashing: a parsed record stays within its bounds, what is
 * printed parses back to the same record, and a verdict is one of the
 * result types tls_dane_check() documents.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "policy/sts_tlsa.h"
#include "tls/tls_dane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RR 4

static const char chain_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                "MIIBjzCCATWgAwIBAgIUUUXkYiM/+pJvbzFHJTMvOmwe1qgwCgYIKoZIzj0EAwIw\n"
                                "EjEQMA4GA1UEAwwHZnV6eiBDQTAgFw0yNjEyMDQwNzM3NDVaGA8yMTI2MTExMDA3\n"
                                "Mzc0NVowFTETMBEGA1UEAwwKbXguZXhhbXBsZTBZMBMGByqGSM49AgEGCCqGSM49\n"
                                "AwEHA0IABFLRhlD+ZyyIsIXAbGgD9hTDSNJRS0PMaubGrR5DuFmXe2NXjFp0jSkW\n"
                                "/X41HgPJ8mrvGZeUIkLVy/w6aWx8Yj+jZDBiMBUGA1UdEQQOMAyCCm14LmV4YW1w\n"
                                "bGUwCQYDVR0TBAIwADAdBgNVHQ4EFgQUob0v5pMrYfaDKq37toVhyTE1lSQwHwYD\n"
                                "VR0jBBgwFoAUVVajHV42t1VRtHIFW/m/ulVqtuQwCgYIKoZIzj0EAwIDSAAwRQIg\n"
                                "XIh3OK+wRxQrca3b05Z2/DBvlptQ18BjT1q0xOl5LVICIQDEwPVh4LXhjEggF5jB\n"
                                "+JHJGX1FTJMGlXammi9NBSftvA==\n"
                                "-----END CERTIFICATE-----\n"
                                "-----BEGIN CERTIFICATE-----\n"
                                "MIIBijCCATGgAwIBAgIUBVssNlskBNHUEOH53W3JXswRI/IwCgYIKoZIzj0EAwIw\n"
                                "EjEQMA4GA1UEAwwHZnV6eiBDQTAgFw0yNjEyMDQwNzM3NDRaGA8yMTI2MTExMDA3\n"
                                "Mzc0NFowEjEQMA4GA1UEAwwHZnV6eiBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
                                "A0IABL949A0n8iCN5nYsubhesx0XKLyS2yVjOkLiDuRJTE60mRRoTDNNkw93cvTt\n"
                                "DRmG6pcbu7TgMlzvkc83yNS4yhmjYzBhMB0GA1UdDgQWBBRVVqMdXja3VVG0cgVb\n"
                                "+b+6VWq25DAfBgNVHSMEGDAWgBRVVqMdXja3VVG0cgVb+b+6VWq25DAPBgNVHRMB\n"
                                "Af8EBTADAQH/MA4GA1UdDwEB/wQEAwICBDAKBggqhkjOPQQDAgNHADBEAiBi3TKj\n"
                                "xVHBsIUiGJJT9ao5Ml/bWB9vISsyKMgQImogIAIgKFxk5Vz7GVs9cS73BJY3dm0j\n"
                                "e+lnlDMyPzitN5E8Wcs=\n"
                                "-----END CERTIFICATE-----\n";

static struct tls_facts facts;

/* chain_once - the facts of a completed handshake presenting the fixed chain. */
static void
chain_once(void)
{
	STACK_OF(X509) * sk;
	BIO *b;
	X509 *x;

	if (facts.cert != NULL)
		return;
	if ((sk = sk_X509_new_null()) == NULL ||
	    (b = BIO_new_mem_buf(chain_pem, (int)sizeof(chain_pem) - 1)) == NULL)
		abort();
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(sk, x) <= 0)
			abort();
	BIO_free(b);
	if (sk_X509_num(sk) != 2)
		abort();
	facts.starttls_offered = true;
	facts.handshake_done = true;
	facts.cert = sk_X509_value(sk, 0);
	if (X509_up_ref(facts.cert) != 1 || tls_facts_index_names(&facts) < 0 ||
	    tls_facts_index_chain(&facts, sk) < 0)
		abort();
	sk_X509_pop_free(sk, X509_free);
}

/* one_rdata - parse, print and parse back one record. */
static void
one_rdata(const uint8_t *rd, size_t len)
{
	char text[2 * STS_TLSA_DATA_MAX + 32];
	static uint8_t back[STS_TLSA_DATA_MAX];
	struct tls_tlsa rr, rt;
	char why[128];

	if (sts_tlsa_rdata(rd, len, &rr) < 0)
		return;
	if (rr.len + 3 != len || rr.len == 0 || rr.len > STS_TLSA_DATA_MAX || rr.data != rd + 3)
		abort();
	(void)tls_tlsa_usable(&rr, NULL);
	if (sts_tlsa_format(&rr, text, sizeof(text)) >= sizeof(text))
		abort();
	if (sts_tlsa_text(text, back, sizeof(back), &rt, why, sizeof(why)) < 0 ||
	    rt.usage != rr.usage || rt.selector != rr.selector || rt.mtype != rr.mtype ||
	    rt.len != rr.len || memcmp(rt.data, rr.data, rr.len) != 0)
		abort();
}

/* match - up to MAX_RR records, each a length octet and its rdata, against the chain. */
static void
match(const uint8_t *p, size_t size)
{
	const char *names[] = {"mx.example", "other.example."};
	struct tls_tlsa rr[MAX_RR];
	struct tls_dane_match m;
	char reason[256];
	size_t n = 0;
	enum sts_result r;

	chain_once();
	while (size > 0 && n < MAX_RR) {
		size_t len = p[0];

		if (len + 1 > size)
			len = size - 1;
		if (sts_tlsa_rdata(p + 1, len, &rr[n]) == 0)
			n++;
		p += len + 1;
		size -= len + 1;
	}
	r = tls_dane_check(&facts, rr, n, names, 2, &m, reason, sizeof(reason));
	switch (r) {
	case STS_RESULT_OK:
		if (m.depth < -1 || m.depth > 1 || !tls_tlsa_usable(&m.rr, NULL))
			abort();
		break;
	case STS_RESULT_TLSA_INVALID:
	case STS_RESULT_CERT_EXPIRED:
	case STS_RESULT_CERT_HOST_MISMATCH:
	case STS_RESULT_CERT_NOT_TRUSTED:
		break;
	default:
		abort();
	}
	if (memchr(reason, '\0', sizeof(reason)) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	char why[128];
	static uint8_t buf[STS_TLSA_DATA_MAX];
	struct tls_tlsa rr;

	if (size < 1)
		return 0;
	/* Copy so that a read past the input hits the sanitizer's redzone. */
	if ((copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		one_rdata(copy, size - 1);
		break;
	case 1:
		copy[size - 1] = '\0';
		if (sts_tlsa_text((const char *)copy, buf, sizeof(buf), &rr, why, sizeof(why)) ==
		        0 &&
		    (rr.len == 0 || rr.len > sizeof(buf) || rr.data != buf))
			abort();
		break;
	default:
		match(copy, size - 1);
		break;
	}
	free(copy);
	return 0;
}
