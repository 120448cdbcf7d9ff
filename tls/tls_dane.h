/*
 * tls_dane.h - DANE authentication of an SMTP server (RFC 7672 section 3,
 * RFC 7671): does the certificate chain an MX presented match the TLSA
 * records of its host?
 *
 * The proxy completes the TLS handshake before it knows the recipient, so
 * the records are matched afterwards against the chain kept in struct
 * tls_facts (tls/tls_verify.h), with the rules OpenSSL's own DANE
 * verification applies during a handshake:
 *
 *   DANE-EE(3)  the leaf's certificate or public key; names and validity
 *               dates are not checked (RFC 7672 section 3.1.1).
 *   DANE-TA(2)  a certificate of the chain other than the leaf, or a
 *               certificate or public key given in full by the record; the
 *               chain up to it must verify (signatures, validity dates) with
 *               it as the only trust anchor, and the leaf must be valid for
 *               one of the reference identifiers (the TLSA base domain, the
 *               MX host name), DNS-IDs only, no partial wildcards (sections
 *               3.1.2, 3.2.2, 3.2.3).
 *   PKIX-TA(0), PKIX-EE(1) are unusable in SMTP (section 3.1.3), as are
 *   unknown selectors and matching types, and digests of the wrong length.
 *
 * Digest algorithm agility (RFC 7671 section 9): for each usage and
 * selector, only the records of the strongest digest present are used
 * (SHA2-512 before SHA2-256); Full(0) records always are.
 */
#ifndef STS_TLS_DANE_H
#define STS_TLS_DANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/types.h"
#include "tls/tls_verify.h"

/* RFC 6698 section 2.1 and RFC 7218: the fields of a TLSA record. */
enum tls_tlsa_usage {
	TLS_TLSA_PKIX_TA = 0,
	TLS_TLSA_PKIX_EE = 1,
	TLS_TLSA_DANE_TA = 2,
	TLS_TLSA_DANE_EE = 3,
};
enum tls_tlsa_selector {
	TLS_TLSA_CERT = 0,
	TLS_TLSA_SPKI = 1,
};
enum tls_tlsa_mtype {
	TLS_TLSA_FULL = 0,
	TLS_TLSA_SHA256 = 1,
	TLS_TLSA_SHA512 = 2,
};

/* One TLSA record; data is not owned. */
struct tls_tlsa {
	uint8_t usage, selector, mtype;
	const uint8_t *data; /* the certificate association data */
	size_t len;
};

/* What matched, for logs and events. */
struct tls_dane_match {
	struct tls_tlsa rr; /* the record (data not owned: the caller's) */
	int depth;          /* the certificate it matched, 0 the leaf; -1 a trust anchor the
	                       server did not present (a Full(0) DANE-TA record) */
	char name[254];     /* DANE-TA: the reference identifier the leaf is valid for */
};

/*
 * tls_tlsa_usable - RFC 7672 section 3.1.3 and RFC 6698 section 2.1:
 * usage DANE-TA(2) or DANE-EE(3), selector Cert(0) or SPKI(1), matching
 * type Full(0) with data, SHA2-256(1) with 32 octets or SHA2-512(2) with
 * 64. When it is not and why is not NULL, *why says what is wrong.
 */
bool tls_tlsa_usable(const struct tls_tlsa *rr, const char **why);

/*
 * tls_dane_check - does the chain of f match one of rr[0..n)? Unusable
 * records are skipped. names[0..n_names) are the reference identifiers
 * for DANE-TA (names may end in a dot).
 *
 * Returns STS_RESULT_OK and fills *m (when not NULL). Otherwise the
 * TLS-RPT result type (RFC 8460 section 4.3):
 *   STARTTLS_NOT_SUPPORTED  !starttls_offered
 *   VALIDATION_FAILURE      no completed handshake, or no certificate
 *   TLSA_INVALID            no usable record in rr
 *   CERT_EXPIRED            a DANE-TA anchor matched; the chain to it has expired
 *   CERT_HOST_MISMATCH      a DANE-TA anchor matched; no name is valid
 *   CERT_NOT_TRUSTED        nothing matched, or the chain to the anchor did not verify
 * and writes a line naming what was seen to reason (when reasonlen > 0).
 * A DANE-EE match compares the digests of f (no allocation, no parsing);
 * DANE-TA verifies the chain (allocates, and reads the clock).
 */
enum sts_result tls_dane_check(const struct tls_facts *f, const struct tls_tlsa *rr, size_t n,
                               const char *const *names, size_t n_names, struct tls_dane_match *m,
                               char *reason, size_t reasonlen);

/* tls_tlsa_usage_name - "PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE" or "usage-N"; buf for the last.
 */
const char *tls_tlsa_usage_name(unsigned usage);

#endif
