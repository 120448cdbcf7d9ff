/*
 * tls_dane.c - TLSA records matched against a presented chain (see
 * tls_dane.h).
 *
 * DANE-EE compares the digests tls_facts_index_chain() computed once per
 * connection. DANE-TA builds an X509_STORE from the anchors the records
 * name and verifies the presented chain up to one of them, with the host
 * names and flags OpenSSL uses for DANE-TA itself (X509_V_FLAG_PARTIAL_CHAIN:
 * an anchor need not be self-signed).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "tls/tls_dane.h"

/* RFC 7672 section 3.2.3: DNS-IDs only, "*" only as a whole left-most label. */
#define HOST_FLAGS (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)

static const char *const selector_names[] = {"Cert", "SPKI"};
static const char *const mtype_names[] = {"Full", "SHA2-256", "SHA2-512"};

const char *
tls_tlsa_usage_name(unsigned usage)
{
	static const char *const names[] = {"PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE"};

	return usage < 4 ? names[usage] : "unknown";
}

bool
tls_tlsa_usable(const struct tls_tlsa *rr, const char **why)
{
	const char *w = NULL;

	if (rr->usage == TLS_TLSA_PKIX_TA || rr->usage == TLS_TLSA_PKIX_EE)
		w = "PKIX usages are unusable in SMTP (RFC 7672 section 3.1.3)";
	else if (rr->usage != TLS_TLSA_DANE_TA && rr->usage != TLS_TLSA_DANE_EE)
		w = "unknown certificate usage";
	else if (rr->selector != TLS_TLSA_CERT && rr->selector != TLS_TLSA_SPKI)
		w = "unknown selector";
	else if (rr->mtype == TLS_TLSA_FULL && rr->len == 0)
		w = "empty association data";
	else if (rr->mtype == TLS_TLSA_SHA256 && rr->len != 32)
		w = "SHA2-256 data is not 32 octets";
	else if (rr->mtype == TLS_TLSA_SHA512 && rr->len != 64)
		w = "SHA2-512 data is not 64 octets";
	else if (rr->mtype > TLS_TLSA_SHA512)
		w = "unknown matching type";
	if (w != NULL && why != NULL)
		*why = w;
	return w == NULL;
}

/* der_of - the DER of x (selector Cert) or of its SubjectPublicKeyInfo; free with OPENSSL_free. */
static int
der_of(X509 *x, unsigned selector, unsigned char **der)
{
	*der = NULL;
	if (selector == TLS_TLSA_CERT)
		return i2d_X509(x, der);
	return i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), der);
}

/* rr_matches - rr (usable) stands for certificate x with digests d. */
static bool
rr_matches(const struct tls_tlsa *rr, X509 *x, const struct tls_cert_digests *d)
{
	const unsigned char *want = NULL;
	unsigned char *der;
	bool same;
	int len;

	switch (rr->mtype) {
	case TLS_TLSA_SHA256:
		want = rr->selector == TLS_TLSA_CERT ? d->cert256 : d->spki256;
		return memcmp(rr->data, want, 32) == 0;
	case TLS_TLSA_SHA512:
		want = rr->selector == TLS_TLSA_CERT ? d->cert512 : d->spki512;
		return memcmp(rr->data, want, 64) == 0;
	default:
		len = der_of(x, rr->selector, &der);
		same = len > 0 && (size_t)len == rr->len && memcmp(der, rr->data, rr->len) == 0;
		OPENSSL_free(der);
		return same;
	}
}

/*
 * agile - RFC 7671 section 9: rr[i] is used when usable and, for a digest,
 * of the strongest digest type its usage and selector have in rr.
 */
static bool
agile(const struct tls_tlsa *rr, size_t n, size_t i)
{
	if (!tls_tlsa_usable(&rr[i], NULL))
		return false;
	if (rr[i].mtype == TLS_TLSA_FULL)
		return true;
	for (size_t j = 0; j < n; j++)
		if (rr[j].usage == rr[i].usage && rr[j].selector == rr[i].selector &&
		    rr[j].mtype > rr[i].mtype && tls_tlsa_usable(&rr[j], NULL))
			return false;
	return true;
}

/* describe - "DANE-EE(3) SPKI(1) SHA2-256(1)" */
static void
describe(const struct tls_tlsa *rr, char *buf, size_t len)
{
	snprintf(buf, len, "%s(%u) %s(%u) %s(%u)", tls_tlsa_usage_name(rr->usage), rr->usage,
	         rr->selector < 2 ? selector_names[rr->selector] : "?", rr->selector,
	         rr->mtype < 3 ? mtype_names[rr->mtype] : "?", rr->mtype);
}

/* name_len - the length of name without a final dot. */
static size_t
name_len(const char *name)
{
	size_t len = strlen(name);

	return len > 1 && name[len - 1] == '.' ? len - 1 : len;
}

/*
 * anchors - the DANE-TA anchors of rr[0..n) for the chain of f, added to
 * st: presented certificates below the leaf that a record names, a
 * certificate a Full(0) record gives, the presented certificate a Full(0)
 * public key signed. The first anchor found is described in *m. Returns
 * how many were added.
 */
static int
anchors(const struct tls_facts *f, const struct tls_tlsa *rr, size_t n, X509_STORE *st,
        struct tls_dane_match *m)
{
	int added = 0, depth = (int)f->n_digests;

	for (size_t i = 0; i < n; i++) {
		if (rr[i].usage != TLS_TLSA_DANE_TA || !agile(rr, n, i))
			continue;
		int at = -2;
		for (int d = 1; d < depth; d++) {
			X509 *x = sk_X509_value(f->chain, d);

			if (rr_matches(&rr[i], x, &f->digests[d]) &&
			    X509_STORE_add_cert(st, x) == 1) {
				at = d;
				break;
			}
		}
		if (at == -2 && rr[i].mtype == TLS_TLSA_FULL) {
			const unsigned char *p = rr[i].data;

			if (rr[i].selector == TLS_TLSA_CERT) {
				/* Section 3.1.2: a trust anchor the server left out of its chain.
				 */
				X509 *x = d2i_X509(NULL, &p, (long)rr[i].len);

				if (x != NULL && X509_cmp(x, f->cert) != 0 &&
				    X509_STORE_add_cert(st, x) == 1)
					at = -1;
				X509_free(x);
			} else {
				/* A bare key: the highest presented certificate it signed anchors.
				 */
				EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)rr[i].len);

				for (int d = depth - 1; k != NULL && d >= 0 && at == -2; d--) {
					X509 *x = sk_X509_value(f->chain, d);

					if (X509_verify(x, k) == 1 &&
					    X509_STORE_add_cert(st, x) == 1)
						at = d;
				}
				EVP_PKEY_free(k);
			}
		}
		if (at == -2)
			continue;
		if (added++ == 0 && m != NULL) {
			m->rr = rr[i];
			m->depth = at;
		}
	}
	ERR_clear_error();
	return added;
}

/* verify_to_anchors - X509_verify_cert of f's chain against st with the reference names. */
static int
verify_to_anchors(const struct tls_facts *f, X509_STORE *st, const char *const *names,
                  size_t n_names, char *peer, size_t peerlen)
{
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int err = X509_V_ERR_UNSPECIFIED, hosts = 0;

	if (untrusted == NULL || ctx == NULL)
		goto out;
	for (int d = 1; d < sk_X509_num(f->chain); d++)
		if (sk_X509_push(untrusted, sk_X509_value(f->chain, d)) <= 0)
			goto out;
	if (X509_STORE_CTX_init(ctx, st, f->cert, untrusted) != 1 ||
	    X509_STORE_CTX_set_default(ctx, "ssl_server") != 1)
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_hostflags(param, HOST_FLAGS);
	for (size_t i = 0; i < n_names; i++) {
		size_t len = name_len(names[i]);

		if (len == 0 || names[i][0] == '.')
			continue;
		if ((hosts == 0 ? X509_VERIFY_PARAM_set1_host(param, names[i], len)
		                : X509_VERIFY_PARAM_add1_host(param, names[i], len)) != 1)
			goto out;
		hosts++;
	}
	if (hosts == 0) {
		err = X509_V_ERR_HOSTNAME_MISMATCH;
		goto out;
	}
	err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	/* the reference identifier that matched, not the certificate's name for it */
	for (size_t i = 0; err == X509_V_OK && i < n_names; i++) {
		size_t len = name_len(names[i]);

		if (len > 0 && names[i][0] != '.' &&
		    X509_check_host(f->cert, names[i], len, HOST_FLAGS, NULL) == 1) {
			snprintf(peer, peerlen, "%.*s", (int)len, names[i]);
			break;
		}
	}
out:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	ERR_clear_error();
	return err;
}

/* leaf_digest - the leaf's SPKI SHA2-256 in hex, for a reason line. */
static void
leaf_digest(const struct tls_facts *f, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	buf[0] = '\0';
	if (f->n_digests == 0 || len < 65)
		return;
	for (i = 0; i < 32; i++) {
		buf[2 * i] = hex[f->digests[0].spki256[i] >> 4];
		buf[2 * i + 1] = hex[f->digests[0].spki256[i] & 15];
	}
	buf[64] = '\0';
}

enum sts_result
tls_dane_check(const struct tls_facts *f, const struct tls_tlsa *rr, size_t n,
               const char *const *names, size_t n_names, struct tls_dane_match *m, char *reason,
               size_t reasonlen)
{
	struct tls_dane_match local;
	X509_STORE *st = NULL;
	char what[64], dig[65], peer[254] = "";
	size_t usable = 0;
	enum sts_result res;
	int err;

	if (m == NULL)
		m = &local;
	memset(m, 0, sizeof(*m));
	m->depth = -1;
	if (reasonlen == 0)
		reason = NULL;
	if ((res = tls_facts_session(f, reason, reasonlen)) != STS_RESULT_OK)
		return res;
	if (f->n_digests == 0) {
		if (reason != NULL)
			snprintf(reason, reasonlen, "the server's chain was not kept");
		return STS_RESULT_VALIDATION_FAILURE;
	}
	/* Section 3.1.1: DANE-EE binds the leaf's key; nothing else is checked. */
	for (size_t i = 0; i < n; i++) {
		if (!tls_tlsa_usable(&rr[i], NULL))
			continue;
		usable++;
		if (rr[i].usage != TLS_TLSA_DANE_EE || !agile(rr, n, i) ||
		    !rr_matches(&rr[i], f->cert, &f->digests[0]))
			continue;
		m->rr = rr[i];
		m->depth = 0;
		if (reason != NULL) {
			describe(&rr[i], what, sizeof(what));
			snprintf(reason, reasonlen, "%s matches the server certificate", what);
		}
		return STS_RESULT_OK;
	}
	if (usable == 0) {
		if (reason != NULL)
			snprintf(reason, reasonlen, "no usable TLSA record");
		return STS_RESULT_TLSA_INVALID;
	}
	/* Sections 3.1.2, 3.2.2: the chain up to a DANE-TA anchor, and the names. */
	if ((st = X509_STORE_new()) == NULL) {
		if (reason != NULL)
			snprintf(reason, reasonlen, "out of memory");
		return STS_RESULT_VALIDATION_FAILURE;
	}
	if (anchors(f, rr, n, st, m) == 0) {
		X509_STORE_free(st);
		leaf_digest(f, dig, sizeof(dig));
		if (reason != NULL)
			snprintf(reason, reasonlen,
			         "no TLSA record matches the certificate chain (subject \"%s\", "
			         "SPKI SHA2-256 %s)",
			         f->subject, dig);
		m->depth = -1;
		return STS_RESULT_CERT_NOT_TRUSTED;
	}
	err = verify_to_anchors(f, st, names, n_names, peer, sizeof(peer));
	X509_STORE_free(st);
	if (err == X509_V_OK) {
		snprintf(m->name, sizeof(m->name), "%s", peer);
		if (reason != NULL) {
			describe(&m->rr, what, sizeof(what));
			snprintf(reason, reasonlen,
			         "%s matches a trust anchor; certificate valid for %s", what, peer);
		}
		return STS_RESULT_OK;
	}
	if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID)
		res = STS_RESULT_CERT_EXPIRED;
	else if (err == X509_V_ERR_HOSTNAME_MISMATCH)
		res = STS_RESULT_CERT_HOST_MISMATCH;
	else
		res = STS_RESULT_CERT_NOT_TRUSTED;
	if (reason != NULL) {
		describe(&m->rr, what, sizeof(what));
		if (res == STS_RESULT_CERT_HOST_MISMATCH)
			snprintf(reason, reasonlen,
			         "%s matches a trust anchor; no name matches (%s)", what,
			         f->sans[0] != '\0' ? f->sans : "no DNS names");
		else
			snprintf(
			    reason, reasonlen,
			    "%s matches a trust anchor; the chain to it fails: %s (not after %s)",
			    what, X509_verify_cert_error_string(err), f->not_after);
	}
	return res;
}
