/*
 * tls_verify.c - collect the facts of an upstream TLS session and judge the
 * certificate as RFC 8461 section 4.2 requires.
 *
 * Name matching is left to X509_check_host(): it implements RFC 6125 and is
 * what OpenSSL itself uses; the flags below narrow it to what MTA-STS allows.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_verify.h"

/*
 * RFC 8461 section 4.2 (and RFC 7672 section 3.2.3 which it follows): only
 * DNS-IDs in the subjectAltName count, never the subject CN, and a wildcard
 * is only a whole left-most label ("f*.example" is refused).
 */
#define CHECK_FLAGS (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)

/* copy_str - bounded copy, cut when too long; dst is always terminated. */
static void
copy_str(char *dst, size_t size, const char *src)
{
	int n;

	if (size == 0)
		return;
	n = snprintf(dst, size, "%s", src != NULL ? src : "");
	if (n < 0)
		dst[0] = '\0';
}

/* name_str - an X509_NAME in RFC 2253 form, cut to size. */
static void
name_str(char *dst, size_t size, const X509_NAME *name)
{
	BIO *bio;
	int n;

	dst[0] = '\0';
	if (name == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(bio, dst, (int)size - 1);
		dst[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
}

/* sans_str - the DNS-IDs of cert as "DNS:a, DNS:b", cut with "..." when too long. */
static void
sans_str(char *dst, size_t size, X509 *cert)
{
	GENERAL_NAMES *gens;
	size_t used = 0;
	int i, n;

	dst[0] = '\0';
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *s;

		if (g->type != GEN_DNS)
			continue;
		s = g->d.dNSName;
		/* %.*s: a DNS-ID with an embedded NUL is shown cut, never trusted. */
		n = snprintf(dst + used, size - used, "%sDNS:%.*s", used > 0 ? ", " : "",
		             ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
		if (n < 0 || (size_t)n >= size - used) {
			if (size >= 4)
				memcpy(dst + size - 4, "...", 4);
			break;
		}
		used += (size_t)n;
	}
	GENERAL_NAMES_free(gens);
}

/* time_str - an ASN1_TIME as RFC 3339 UTC. */
static void
time_str(char *dst, size_t size, const ASN1_TIME *t)
{
	struct tm tm;

	dst[0] = '\0';
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return;
	if (strftime(dst, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		dst[0] = '\0';
}

/* tls_facts_from_ssl - collect what the handshake showed */
void
tls_facts_from_ssl(struct tls_facts *f, SSL *ssl)
{
	const char *cipher;

	tls_facts_clear(f);
	f->starttls_offered = true;
	f->verify_result = X509_V_ERR_UNSPECIFIED;
	if (ssl == NULL)
		return;
	f->handshake_done = SSL_is_init_finished(ssl) == 1;
	if (!f->handshake_done)
		return;
	f->verify_result = SSL_get_verify_result(ssl);
	copy_str(f->version, sizeof(f->version), SSL_get_version(ssl));
	cipher = SSL_get_cipher_name(ssl);
	copy_str(f->cipher, sizeof(f->cipher), cipher);
	if ((f->cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return;
	name_str(f->subject, sizeof(f->subject), X509_get_subject_name(f->cert));
	name_str(f->issuer, sizeof(f->issuer), X509_get_issuer_name(f->cert));
	sans_str(f->sans, sizeof(f->sans), f->cert);
	time_str(f->not_after, sizeof(f->not_after), X509_get0_notAfter(f->cert));
}

/* tls_facts_clear - release the certificate and zero the facts */
void
tls_facts_clear(struct tls_facts *f)
{
	X509_free(f->cert);
	memset(f, 0, sizeof(*f));
}

/* tls_check_names - RFC 8461 section 4.2 verdict as a TLS-RPT result type */
enum sts_result
tls_check_names(const struct tls_facts *f, const char *const *names, size_t n, size_t *matched,
                char *reason, size_t reasonlen)
{
	size_t i, len;

	if (reasonlen == 0)
		reason = NULL;
	if (!f->starttls_offered) {
		if (reason != NULL)
			snprintf(reason, reasonlen, "STARTTLS not offered");
		return STS_RESULT_STARTTLS_NOT_SUPPORTED;
	}
	if (!f->handshake_done || f->cert == NULL) {
		if (reason != NULL)
			snprintf(reason, reasonlen, "%s",
			         f->handshake_done ? "no server certificate"
			                           : "TLS handshake not completed");
		return STS_RESULT_VALIDATION_FAILURE;
	}
	/* Section 4.2: the chain must be valid (trusted, not expired). */
	if (f->verify_result != X509_V_OK) {
		if (reason != NULL)
			snprintf(reason, reasonlen,
			         "%s (subject \"%s\", issuer \"%s\", not after %s)",
			         X509_verify_cert_error_string(f->verify_result), f->subject,
			         f->issuer, f->not_after);
		if (f->verify_result == X509_V_ERR_CERT_HAS_EXPIRED ||
		    f->verify_result == X509_V_ERR_CERT_NOT_YET_VALID)
			return STS_RESULT_CERT_EXPIRED;
		return STS_RESULT_CERT_NOT_TRUSTED;
	}
	for (i = 0; i < n; i++) {
		len = strlen(names[i]);
		/* An absolute name "mx.example." is the same host. */
		if (len > 1 && names[i][len - 1] == '.')
			len--;
		if (len == 0)
			continue;
		if (X509_check_host(f->cert, names[i], len, CHECK_FLAGS, NULL) == 1) {
			if (matched != NULL)
				*matched = i;
			if (reason != NULL)
				snprintf(reason, reasonlen, "certificate valid for %.*s", (int)len,
				         names[i]);
			return STS_RESULT_OK;
		}
	}
	ERR_clear_error();
	if (reason != NULL) {
		size_t used;
		int k;

		k = snprintf(reason, reasonlen, "no name matches (%s; wanted",
		             f->sans[0] != '\0' ? f->sans : "no DNS names");
		used = k > 0 ? (size_t)k : 0;
		for (i = 0; i < n && used < reasonlen; i++) {
			k = snprintf(reason + used, reasonlen - used, "%s %s", i > 0 ? "," : "",
			             names[i]);
			if (k < 0)
				break;
			used += (size_t)k;
		}
		if (used < reasonlen)
			snprintf(reason + used, reasonlen - used, ")");
		else if (reasonlen >= 4)
			memcpy(reason + reasonlen - 4, "...", 4);
	}
	return STS_RESULT_CERT_HOST_MISMATCH;
}
