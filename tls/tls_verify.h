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

/* Room for the leaf's DNS-IDs in struct tls_facts (a leaf with more falls back). */
#define TLS_FACTS_DNS_IDS_MAX 1024
/* Certificates of the presented chain kept in struct tls_facts, leaf first. */
#define TLS_FACTS_CHAIN_MAX 8

/*
 * The digests a TLSA record's association data is compared with (RFC 6698
 * section 2.1.3): SHA2-256 and SHA2-512 of a certificate's DER encoding
 * (selector Cert(0)) and of its SubjectPublicKeyInfo (selector SPKI(1)).
 */
struct tls_cert_digests {
	unsigned char cert256[32], cert512[64];
	unsigned char spki256[32], spki512[64];
};

/*
 * What the proxy learned about one upstream TLS session, kept for policy
 * decisions and events. Start from a zeroed struct; strings are always
 * NUL-terminated (cut when too long). Owns cert and chain; release with
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
	/*
	 * The leaf's SAN DNS-IDs, read once by tls_facts_index_names() so that
	 * tls_check_names() needs no certificate parsing and no allocation:
	 * lower case, each NUL-terminated, back to back. While dns_ids_ready is
	 * false the names are checked with X509_check_host() instead (same
	 * verdict, slower).
	 */
	bool dns_ids_ready;
	unsigned n_dns_ids;
	char dns_ids[TLS_FACTS_DNS_IDS_MAX];
	/*
	 * The chain as the server presented it, leaf first, at most
	 * TLS_FACTS_CHAIN_MAX certificates, each referenced: DANE (RFC 7672
	 * section 3) matches TLSA records against it after the handshake,
	 * when the recipient is known. n_digests of them (all, once indexed by
	 * tls_facts_index_chain()) have their digests computed, so that a
	 * DANE-EE match is a comparison of octets.
	 */
	STACK_OF(X509) * chain;
	unsigned n_digests;
	struct tls_cert_digests digests[TLS_FACTS_CHAIN_MAX];
};

/*
 * tls_facts_from_ssl - fill f from ssl after the handshake ended (either
 * way). Releases what f held before. Sets starttls_offered (a handshake was
 * attempted, so the peer offered STARTTLS) and handshake_done as
 * SSL_is_init_finished() says, indexes the leaf's DNS-IDs (see
 * tls_facts_index_names) and keeps the presented chain with its digests
 * (SSL_get_peer_cert_chain(): a resumed session has the chain of the
 * handshake that made it). Never fails: what cannot be read stays empty.
 */
void tls_facts_from_ssl(struct tls_facts *f, SSL *ssl);

/*
 * tls_facts_index_names - read the SAN DNS-IDs of f->cert into f->dns_ids
 * and set dns_ids_ready. For facts whose cert was set by hand; call it again
 * whenever cert changes. Returns 0, or -1 when there is no certificate or
 * its names do not fit (dns_ids_ready is then false and tls_check_names()
 * asks X509_check_host(): the verdict is the same either way).
 */
int tls_facts_index_names(struct tls_facts *f);

/*
 * tls_dns_id_match - does the certificate DNS-ID id[0..idlen) stand for host
 * name host[0..hostlen)? RFC 6125 section 6.4 as RFC 8461 section 4.2 narrows
 * it, and exactly what X509_check_host() answers with the flags
 * X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT:
 * ASCII case ignored; "*" only as the whole left-most label of an id with at
 * least two more labels, matching one non-empty label of letters, digits and
 * hyphens (or a literal "*"); any other id compared literally. An id holding
 * a NUL never matches. host must not begin with '.' (X509_check_host() reads
 * that as "any subdomain of") nor hold a NUL; such a host never matches here.
 * Pure: no allocation, no locale.
 */
bool tls_dns_id_match(const char *id, size_t idlen, const char *host, size_t hostlen);

/*
 * tls_facts_set_cert - f's server certificate is cert (referenced; the one
 * f held is released), presented with chain (leaf first; NULL: the leaf
 * alone): the subject, issuer, names and expiry are read from it, its
 * DNS-IDs and the chain indexed, as after a handshake. For facts made by
 * hand (the "check tlsa" command, tests); the session fields are the
 * caller's.
 */
void tls_facts_set_cert(struct tls_facts *f, X509 *cert, STACK_OF(X509) * chain);

/*
 * tls_facts_index_chain - keep chain (leaf first; NULL: the leaf f->cert
 * alone) as f's presented chain, referencing at most TLS_FACTS_CHAIN_MAX
 * certificates, and compute their digests. For facts made by hand; what f
 * held before is released. Returns 0, or -1 when out of memory or a
 * digest fails (f then has no chain and n_digests 0: nothing matches).
 */
int tls_facts_index_chain(struct tls_facts *f, STACK_OF(X509) * chain);

/* tls_facts_clear - release the certificates and zero f; safe on a zeroed struct. */
void tls_facts_clear(struct tls_facts *f);

/*
 * tls_facts_session - STS_RESULT_OK when f shows a completed handshake with
 * a server certificate; else STARTTLS_NOT_SUPPORTED (!starttls_offered) or
 * VALIDATION_FAILURE (no completed handshake, or no certificate), with a
 * line in reason (when reasonlen > 0). The first steps of every check.
 */
enum sts_result tls_facts_session(const struct tls_facts *f, char *reason, size_t reasonlen);

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
 * With f->dns_ids_ready it neither parses the certificate nor allocates.
 */
enum sts_result tls_check_names(const struct tls_facts *f, const char *const *names, size_t n,
                                size_t *matched, char *reason, size_t reasonlen);

#endif
