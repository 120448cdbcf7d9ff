/*
 * tls_ctx.h - OpenSSL contexts for both sides of the proxy, and the
 * self-signed certificate used for client-side STARTTLS when the operator
 * configured none.
 *
 * A context is shared read-only by every session of a loop thread; callers
 * create one at start-up (or reload) and release it with SSL_CTX_free().
 * Every function writes one human-readable line to err on failure.
 */
#ifndef STS_TLS_CTX_H
#define STS_TLS_CTX_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * tls_client_ctx_new - context for upstream SMTP connections: TLS 1.2 or
 * later, trust store ca_file (PEM) or the system default paths when NULL.
 *
 * The handshake does NOT fail on a bad certificate (SSL_VERIFY_NONE): the
 * chain is still verified and its result kept in SSL_get_verify_result(), so
 * that the proxy can decide by policy afterwards (RFC 8461 section 5: in
 * "testing" mode or without a policy the message is relayed anyway, and
 * the failure must be reported with its precise TLS-RPT result type).
 * Opportunistic TLS to a host with a bad certificate is still better than
 * plaintext. Host names are checked by tls_check_names() (tls/tls_verify.h).
 *
 * The context carries a session cache for resumption toward MX hosts
 * (tls/tls_resume.h); an SSL made from it resumes only after
 * tls_resume_prepare().
 *
 * Returns a new context (free with SSL_CTX_free()), or NULL with err set.
 */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/*
 * tls_server_ctx_new - context for STARTTLS offered to the mailer: TLS 1.2
 * or later, certificate chain cert_file and key key_file (PEM), which must
 * match. Mailers resume with stateless tickets (one per TLS 1.3
 * handshake), valid for the life of the context.
 * Returns a new context (free with SSL_CTX_free()), or NULL with err.
 */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/*
 * tls_selfsigned_ensure - make sure dir/server.crt and dir/server.key exist:
 * when either is missing, generate an EC P-256 key (file mode 0600) and a
 * self-signed certificate for cn (subject CN and SAN DNS cn), replacing both
 * atomically. Existing files are left alone (never overwritten by a restart).
 * Their paths are written to cert_path and key_path.
 * Returns 0, or -1 with err set (also when a path does not fit).
 */
int tls_selfsigned_ensure(const char *dir, const char *cn, char *cert_path, size_t cplen,
                          char *key_path, size_t kplen, char *err, size_t errlen);

#endif
