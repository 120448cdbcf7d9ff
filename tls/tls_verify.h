/*
 * tls_verify.h - what the proxy learned about an upstream TLS session, and
 * the certificate check of RFC 8461 section 4.2 (names per RFC 6125).
 *
 * The handshake itself never fails on a certificate (see tls/tls_ctx.h); the
 * facts are collected afterwards and judged here, so that the caller can
 * relay in "testing" mode and still report the exact TLS-RPT result type.
 */
#ifndef STS_TLS_VERIFY_H
#define STS_TLS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/types.h"

/*
 * What the proxy learned about one upstream TLS session, kept for policy
 * decisions and events. Start from a zeroed struct; strings are always
 * NUL-terminated (cut when too long). Owns cert; release with
 * tls_facts_clear().
 */
struct tls_facts {
	bool starttls_offered; /* set by the caller from the EHLO reply */
	bool handshake_done;
	long verify_result; /* X509_V_OK or the X509_V_ERR_* of the chain */
	char subject[256];  /* RFC 2253 form */
	char issuer[256];
	char sans[512];     /* "DNS:a, DNS:b" */
	char not_after[32]; /* RFC 3339, UTC: "2030-01-31T12:00:00Z" */
	char version[16];   /* "TLSv1.3" */
	char cipher[64];
	X509 *cert; /* peer leaf, referenced; freed by tls_facts_clear() */
};

/*
 * tls_facts_from_ssl - fill f from ssl after the handshake ended (either
 * way). Releases what f held before. Sets starttls_offered (a handshake was
 * attempted, so the peer offered STARTTLS) and handshake_done as
 * SSL_is_init_finished() says. Never fails: what cannot be read stays empty.
 */
void tls_facts_from_ssl(struct tls_facts *f, SSL *ssl);

/* tls_facts_clear - release the certificate and zero f; safe on a zeroed struct. */
void tls_facts_clear(struct tls_facts *f);

/*
 * tls_check_names - RFC 8461 section 4.2: the chain verified against the
 * trust store and the leaf has a SAN DNS-ID valid for one of names[0..n)
 * (RFC 6125: no CN fallback, "*" only as the whole left-most label). Names
 * may end in a dot; matching ignores case.
 *
 * Returns STS_RESULT_OK and sets *matched (when not NULL) to the index of
 * the first name that matches. Otherwise returns the TLS-RPT result type, in
 * this order of precedence:
 *   STARTTLS_NOT_SUPPORTED  !starttls_offered
 *   VALIDATION_FAILURE      no completed handshake, or no peer certificate
 *   CERT_EXPIRED            the chain is expired or not yet valid
 *   CERT_NOT_TRUSTED        self-signed, unknown CA, any other chain error
 *   CERT_HOST_MISMATCH      the chain is fine but no name matches
 * and writes a line naming what was seen to reason (when reasonlen > 0).
 */
enum sts_result tls_check_names(const struct tls_facts *f, const char *const *names, size_t n,
                                size_t *matched, char *reason, size_t reasonlen);

#endif
