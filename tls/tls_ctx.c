/*
 * tls_ctx.c - OpenSSL contexts and the generated self-signed certificate.
 *
 * Both sides refuse anything below TLS 1.2 (RFC-NOTES: never retry at a
 * lower version). The mailer-facing side resumes with stateless tickets: a
 * mailer with a TLS session cache comes back for every message to a busy
 * destination. The upstream side resumes toward MX hosts (tls_resume.c);
 * a resumed session reports the certificate and verification result of its
 * full handshake, so the check on every connection still has them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls/tls_ctx.h"
#include "tls/tls_resume.h"

#define SELFSIGNED_DAYS 3650

/* ssl_err - write "what: <openssl reason>" to err and empty the error queue. */
static void
ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (errlen > 0)
		snprintf(err, errlen, "%s: %s", what, reason != NULL ? reason : "unknown error");
	ERR_clear_error();
}

/* tls_client_ctx_new - upstream context: TLS >= 1.2, verdict left to the policy */
SSL_CTX *
tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		ssl_err(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		ssl_err(err, errlen, "minimum TLS version");
		goto fail;
	}
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			ssl_err(err, errlen, ca_file);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_err(err, errlen, "system trust store");
		goto fail;
	}
	/* The policy decides after the handshake; see tls_ctx.h. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* Resumption toward MX hosts (tls/tls_resume.h); it turns tickets on. */
	if (tls_resume_enable(ctx, TLS_RESUME_ENTRIES, err, errlen) < 0)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* tls_server_ctx_new - context for the STARTTLS we offer to the mailer */
SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ssl_err(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		ssl_err(err, errlen, "minimum TLS version");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_err(err, errlen, cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_err(err, errlen, key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errlen, "key does not match certificate");
		goto fail;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/*
	 * Stateless tickets only: no server-side cache to bound or share
	 * between the worker threads. The ticket keys are the context's own,
	 * made at random when it is created and never written anywhere, so a
	 * reload starts afresh. One TLS 1.3 ticket per handshake is what a
	 * mailer's cache keeps.
	 */
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* selfsigned_make - a new P-256 key and a certificate for cn signed by it. */
static int
selfsigned_make(const char *cn, EVP_PKEY **keyp, X509 **certp, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	ASN1_INTEGER *serial;
	unsigned char rnd[16];
	BIGNUM *bn = NULL;
	char san[300];
	int n;

	n = snprintf(san, sizeof(san), "DNS:%s", cn);
	if (n < 0 || (size_t)n >= sizeof(san)) {
		snprintf(err, errlen, "host name too long: %s", cn);
		return -1;
	}
	if ((key = EVP_EC_gen("P-256")) == NULL) {
		ssl_err(err, errlen, "EC key generation");
		goto fail;
	}
	if ((cert = X509_new()) == NULL || X509_set_version(cert, X509_VERSION_3) != 1)
		goto fail_ssl;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail_ssl;
	rnd[0] &= 0x7f; /* a positive serial */
	serial = X509_get_serialNumber(cert);
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, serial) == NULL)
		goto fail_ssl;
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), SELFSIGNED_DAYS, 0, NULL) == NULL)
		goto fail_ssl;
	name = X509_get_subject_name(cert);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, key) != 1)
		goto fail_ssl;
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san)) == NULL ||
	    X509_add_ext(cert, ext, -1) != 1)
		goto fail_ssl;
	X509_EXTENSION_free(ext);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:FALSE")) ==
	        NULL ||
	    X509_add_ext(cert, ext, -1) != 1)
		goto fail_ssl;
	X509_EXTENSION_free(ext);
	ext = NULL;
	if (X509_sign(cert, key, EVP_sha256()) == 0)
		goto fail_ssl;
	BN_free(bn);
	*keyp = key;
	*certp = cert;
	return 0;
fail_ssl:
	ssl_err(err, errlen, "self-signed certificate");
fail:
	X509_EXTENSION_free(ext);
	BN_free(bn);
	X509_free(cert);
	EVP_PKEY_free(key);
	return -1;
}

/* write_pem - write a key or a certificate to path through a temporary file. */
static int
write_pem(const char *path, EVP_PKEY *key, X509 *cert, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f = NULL;
	int fd, n, ok;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	/* The key is never readable by others, not even for an instant. */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key != NULL ? 0600 : 0644)) <
	    0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		goto fail;
	}
	if (key != NULL)
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_X509(f, cert);
	if (ok != 1) {
		ssl_err(err, errlen, tmp);
		fclose(f);
		goto fail;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		fclose(f);
		goto fail;
	}
	if (fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return -1;
}

/* tls_selfsigned_ensure - create state_dir/server.{crt,key} once */
int
tls_selfsigned_ensure(const char *dir, const char *cn, char *cert_path, size_t cplen,
                      char *key_path, size_t kplen, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int n, ret = -1;

	n = snprintf(cert_path, cplen, "%s/server.crt", dir);
	if (n < 0 || (size_t)n >= cplen) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	n = snprintf(key_path, kplen, "%s/server.key", dir);
	if (n < 0 || (size_t)n >= kplen) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0)
		return 0;
	if (cn == NULL || cn[0] == '\0') {
		snprintf(err, errlen, "no host name for the self-signed certificate");
		return -1;
	}
	ERR_clear_error();
	if (selfsigned_make(cn, &key, &cert, err, errlen) != 0)
		return -1;
	/* A half-written pair is removed: the next start regenerates both. */
	if (write_pem(key_path, key, NULL, err, errlen) != 0)
		goto out;
	if (write_pem(cert_path, NULL, cert, err, errlen) != 0) {
		unlink(key_path);
		goto out;
	}
	ret = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return ret;
}
