/*
 * tls_resume.h - TLS session resumption toward MX hosts: a client-side
 * session cache keyed by (destination address and port, SNI name).
 *
 * A full handshake per relayed message costs the MX host and us a
 * certificate decode and a signature each; mail to a big provider goes to
 * the same few MX addresses all day, so the second connection resumes the
 * first one's session (a TLS 1.2 ticket or session id, a TLS 1.3 ticket).
 *
 * One cache per client SSL_CTX, attached to it by tls_resume_enable() and
 * freed with the context (SSL_CTX_free() of the last reference). The worker
 * threads share that context, so the cache is shared too and locked inside.
 *
 * Policy decisions are unaffected: OpenSSL keeps the peer certificate and
 * the chain's verification result in the session, and a resumed SSL reports
 * exactly those (SSL_get_verify_result(), SSL_get1_peer_certificate()), so
 * tls_facts_from_ssl() yields the facts of the original full handshake and
 * the policy is judged from them afresh on every connection. A session is
 * never keyed without its SNI name, so a session made for one MX name is
 * never offered for another.
 */
#ifndef STS_TLS_RESUME_H
#define STS_TLS_RESUME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

/* The default number of slots; a slot holds the sessions of one (address, port, SNI). */
#define TLS_RESUME_ENTRIES 4096
/* Sessions kept per key: TLS 1.3 tickets for connections that overlap. */
#define TLS_RESUME_PER_KEY 4

/*
 * tls_resume_enable - give the client context ctx a session cache of
 * entries slots (rounded up to a power of two; 0 means TLS_RESUME_ENTRIES)
 * and turn on client session caching and tickets. A slot holds the newest
 * TLS_RESUME_PER_KEY sessions of one key; two keys that share a slot
 * replace each other (the cache never grows past entries times that).
 * Call once, before ctx is shared between threads.
 * Returns 0, or -1 with a line in err (ctx is unchanged, apart from options).
 */
int tls_resume_enable(SSL_CTX *ctx, size_t entries, char *err, size_t errlen);

/*
 * tls_resume_prepare - before the handshake of a new client SSL (made from a
 * context with a cache; otherwise this does nothing and returns 0): remember
 * the key (dst, sni) on ssl so that the sessions the server issues are kept
 * under it, and offer the cached session for that key if there is one that
 * has not expired (its own timeout), the newest first. sni NULL or "" is a
 * key of its own. A TLS 1.3 session is taken out of the cache when offered
 * (RFC 8446 appendix C.4: a ticket is used once), so connections that
 * overlap are offered different tickets; the server's new tickets are
 * added. The last session of a key, and any TLS 1.2 session, is offered
 * as a copy and stays: MX hosts that issue one ticket and none after a
 * resumption (Postfix) expect it to be offered again.
 * Returns 1 when a session was offered, 0 when none, -1 on error (nothing
 * offered; the handshake can go on in full).
 */
int tls_resume_prepare(SSL *ssl, const struct sockaddr *dst, const char *sni);

/* Counters of one cache, read under its lock. */
struct tls_resume_stats {
	uint64_t offered;  /* tls_resume_prepare() offered a session */
	uint64_t missed;   /* no usable session for the key */
	uint64_t expired;  /* a cached session had timed out and was dropped */
	uint64_t stored;   /* sessions the servers issued and the cache kept */
	uint64_t replaced; /* a stored session pushed out another key's sessions */
	size_t entries;    /* sessions held now */
};

/* tls_resume_stats - the counters of ctx's cache; -1 when ctx has none. */
int tls_resume_stats(SSL_CTX *ctx, struct tls_resume_stats *st);

#endif
