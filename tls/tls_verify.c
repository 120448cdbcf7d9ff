/*
 * tls_verify.c - collect the facts of an upstream TLS session and judge the
 * certificate as RFC 8461 section 4.2 requires.
 *
 * Name matching follows X509_check_host(): it implements RFC 6125 and is
 * what OpenSSL itself uses; the flags below narrow it to what MTA-STS allows.
 * It decodes the subjectAltName extension on every call, though, and the
 * check runs for every recipient: so the DNS-IDs are read once per session
 * (tls_facts_index_names) and matched by tls_dns_id_match(), which the tests
 * hold to X509_check_host()'s answers. X509_check_host() stays the fallback
 * for facts that were not indexed.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
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

/* index_add - append one DNS-ID, lower-cased; -1 when it does not fit. */
static int
index_add(struct tls_facts *f, size_t *used, const unsigned char *s, size_t len)
{
	char *dst = f->dns_ids + *used;

	/* One with a NUL never matches (see tls_dns_id_match), so it is not kept. */
	if (len == 0 || memchr(s, '\0', len) != NULL)
		return 0;
	if (len >= sizeof(f->dns_ids) - *used)
		return -1;
	for (size_t i = 0; i < len; i++)
		dst[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + ('a' - 'A') : s[i]);
	dst[len] = '\0';
	*used += len + 1;
	f->n_dns_ids++;
	return 0;
}

/* tls_facts_index_names - read the leaf's DNS-IDs once */
int
tls_facts_index_names(struct tls_facts *f)
{
	GENERAL_NAMES *gens;
	size_t used = 0;
	int ret = 0;

	f->dns_ids_ready = false;
	f->n_dns_ids = 0;
	f->dns_ids[0] = '\0';
	if (f->cert == NULL)
		return -1;
	/* The same decoding X509_check_host() does: absent, duplicated or broken
	 * extensions all read as "no DNS-ID". */
	gens = X509_get_ext_d2i(f->cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;

		if (g->type != GEN_DNS)
			continue;
		s = g->d.dNSName;
		if (s == NULL || ASN1_STRING_type(s) != V_ASN1_IA5STRING ||
		    ASN1_STRING_length(s) <= 0)
			continue;
		if (index_add(f, &used, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s)) <
		    0) {
			ret = -1;
			break;
		}
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	if (ret < 0) {
		f->n_dns_ids = 0;
		f->dns_ids[0] = '\0';
		return -1;
	}
	f->dns_ids_ready = true;
	return 0;
}

static inline unsigned char
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static inline bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ieq - ASCII case-insensitive equality of n octets; a NUL in a never matches. */
static bool
ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x == '\0' || lower(x) != lower(y))
			return false;
	}
	return true;
}

/*
 * whole_label_wildcard - id is "*." followed by at least two LDH labels
 * (no empty label, none starting or ending with '-'). Anything else holding
 * a '*' is not a wildcard under NO_PARTIAL_WILDCARDS and is compared
 * literally, as X509_check_host() does.
 */
static bool
whole_label_wildcard(const char *id, size_t len)
{
	size_t dots = 1;
	bool label_start = true, hyphen = false;

	if (len < 2 || id[0] != '*' || id[1] != '.')
		return false;
	for (size_t i = 2; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (is_alnum(c)) {
			label_start = hyphen = false;
		} else if (c == '.') {
			if (label_start || hyphen)
				return false;
			label_start = true;
			dots++;
		} else if (c == '-') {
			if (label_start)
				return false;
			hyphen = true;
		} else {
			return false;
		}
	}
	return !label_start && !hyphen && dots >= 2;
}

/* tls_dns_id_match - RFC 6125 DNS-ID matching as X509_check_host() does it */
bool
tls_dns_id_match(const char *id, size_t idlen, const char *host, size_t hostlen)
{
	size_t sn, wn;

	if (id == NULL || host == NULL || idlen == 0 || hostlen == 0 || host[0] == '.' ||
	    memchr(host, '\0', hostlen) != NULL)
		return false;
	if (!whole_label_wildcard(id, idlen))
		return idlen == hostlen && ieq(id, host, idlen);
	/* RFC 6125 section 6.4.3: "*" stands for exactly one non-empty left-most label. */
	sn = idlen - 1; /* ".example.com" */
	if (hostlen <= sn || !ieq(id + 1, host + (hostlen - sn), sn))
		return false;
	wn = hostlen - sn;
	if (wn == 1 && host[0] == '*')
		return true;
	for (size_t i = 0; i < wn; i++)
		if (!is_alnum((unsigned char)host[i]) && host[i] != '-')
			return false;
	return true;
}

/* indexed_match - tls_dns_id_match() against every indexed DNS-ID of f. */
static bool
indexed_match(const struct tls_facts *f, const char *host, size_t hostlen)
{
	const char *id = f->dns_ids;

	for (unsigned i = 0; i < f->n_dns_ids; i++) {
		size_t len = strlen(id);

		if (tls_dns_id_match(id, len, host, hostlen))
			return true;
		id += len + 1;
	}
	return false;
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

/* digest_der - SHA2-256 and SHA2-512 of der[0..len); 0 or -1. */
static int
digest_der(const unsigned char *der, int len, unsigned char *d256, unsigned char *d512)
{
	unsigned int n256 = 0, n512 = 0;

	if (len <= 0 || EVP_Digest(der, (size_t)len, d256, &n256, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(der, (size_t)len, d512, &n512, EVP_sha512(), NULL) != 1 || n256 != 32 ||
	    n512 != 64)
		return -1;
	return 0;
}

/* cert_digests - the four digests of x (RFC 6698 section 2.1.3); 0 or -1. */
static int
cert_digests(X509 *x, struct tls_cert_digests *d)
{
	unsigned char *der = NULL;
	int len, rc;

	len = i2d_X509(x, &der);
	rc = digest_der(der, len, d->cert256, d->cert512);
	OPENSSL_free(der);
	if (rc < 0)
		return -1;
	der = NULL;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	rc = digest_der(der, len, d->spki256, d->spki512);
	OPENSSL_free(der);
	return rc;
}

/* chain_release - forget the presented chain. */
static void
chain_release(struct tls_facts *f)
{
	sk_X509_pop_free(f->chain, X509_free);
	f->chain = NULL;
	f->n_digests = 0;
}

/* tls_facts_index_chain - keep the presented chain and digest it */
int
tls_facts_index_chain(struct tls_facts *f, STACK_OF(X509) * chain)
{
	int n = chain != NULL ? sk_X509_num(chain) : (f->cert != NULL ? 1 : 0);

	chain_release(f);
	if (n <= 0)
		return 0;
	if (n > TLS_FACTS_CHAIN_MAX)
		n = TLS_FACTS_CHAIN_MAX;
	if ((f->chain = sk_X509_new_reserve(NULL, n)) == NULL)
		goto fail;
	for (int i = 0; i < n; i++) {
		X509 *x = chain != NULL ? sk_X509_value(chain, i) : f->cert;

		if (X509_up_ref(x) != 1)
			goto fail;
		if (sk_X509_push(f->chain, x) <= 0) {
			X509_free(x);
			goto fail;
		}
		if (cert_digests(x, &f->digests[i]) < 0)
			goto fail;
	}
	f->n_digests = (unsigned)n;
	return 0;
fail:
	chain_release(f);
	ERR_clear_error();
	return -1;
}

/* tls_facts_set_cert - what a server certificate and its chain show */
void
tls_facts_set_cert(struct tls_facts *f, X509 *cert, STACK_OF(X509) * chain)
{
	if (cert == NULL || X509_up_ref(cert) != 1)
		return;
	X509_free(f->cert);
	f->cert = cert;
	name_str(f->subject, sizeof(f->subject), X509_get_subject_name(cert));
	name_str(f->issuer, sizeof(f->issuer), X509_get_issuer_name(cert));
	sans_str(f->sans, sizeof(f->sans), cert);
	(void)tls_facts_index_names(f); /* on failure the slower check still applies */
	time_str(f->not_after, sizeof(f->not_after), X509_get0_notAfter(cert));
	/* A chain that does not begin with the leaf is not the one it came in. */
	if (chain != NULL && sk_X509_num(chain) > 0 && X509_cmp(sk_X509_value(chain, 0), cert) == 0)
		(void)tls_facts_index_chain(f, chain);
	else
		(void)tls_facts_index_chain(f, NULL);
}

/* tls_facts_from_ssl - collect what the handshake showed */
void
tls_facts_from_ssl(struct tls_facts *f, SSL *ssl)
{
	X509 *cert;

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
	copy_str(f->cipher, sizeof(f->cipher), SSL_get_cipher_name(ssl));
	/* On the client side the peer's chain holds its leaf first. */
	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return;
	tls_facts_set_cert(f, cert, SSL_get_peer_cert_chain(ssl));
	X509_free(cert);
}

/* tls_facts_clear - release the certificates and zero the facts */
void
tls_facts_clear(struct tls_facts *f)
{
	chain_release(f);
	X509_free(f->cert);
	memset(f, 0, sizeof(*f));
}

/* tls_facts_session - was there a TLS session with a certificate at all? */
enum sts_result
tls_facts_session(const struct tls_facts *f, char *reason, size_t reasonlen)
{
	if (!f->starttls_offered) {
		if (reason != NULL && reasonlen > 0)
			snprintf(reason, reasonlen, "STARTTLS not offered");
		return STS_RESULT_STARTTLS_NOT_SUPPORTED;
	}
	if (!f->handshake_done || f->cert == NULL) {
		if (reason != NULL && reasonlen > 0)
			snprintf(reason, reasonlen, "%s",
			         f->handshake_done ? "no server certificate"
			                           : "TLS handshake not completed");
		return STS_RESULT_VALIDATION_FAILURE;
	}
	return STS_RESULT_OK;
}

/* tls_check_names - RFC 8461 section 4.2 verdict as a TLS-RPT result type */
enum sts_result
tls_check_names(const struct tls_facts *f, const char *const *names, size_t n, size_t *matched,
                char *reason, size_t reasonlen)
{
	size_t i, len;
	bool used_x509 = false, ok;

	enum sts_result pre;

	if (reasonlen == 0)
		reason = NULL;
	if ((pre = tls_facts_session(f, reason, reasonlen)) != STS_RESULT_OK)
		return pre;
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
		/* A name with a leading dot means "any subdomain" to X509_check_host(): a
		 * corner the indexed matcher leaves to it. */
		if (f->dns_ids_ready && names[i][0] != '.') {
			ok = indexed_match(f, names[i], len);
		} else {
			ok = X509_check_host(f->cert, names[i], len, CHECK_FLAGS, NULL) == 1;
			used_x509 = true;
		}
		if (ok) {
			if (used_x509)
				ERR_clear_error();
			if (matched != NULL)
				*matched = i;
			if (reason != NULL)
				snprintf(reason, reasonlen, "certificate valid for %.*s", (int)len,
				         names[i]);
			return STS_RESULT_OK;
		}
	}
	if (used_x509)
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
