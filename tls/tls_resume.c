/*
 * tls_resume.c - the client session cache behind tls_resume.h: a fixed
 * table of slots indexed by a hash of the key, one mutex. Fixed size and
 * replacement on collision keep it bounded without an eviction list; at a
 * few thousand MX destinations a collision costs one full handshake.
 *
 * A slot keeps the newest TLS_RESUME_PER_KEY sessions of its key, newest
 * last. A TLS 1.3 ticket is used once while the key has others, and
 * several connections to one MX host start before any of them has its new
 * ticket: with one session per key, all but the first of them would pay a
 * full handshake. OpenSSL's defaults issue two tickets after a full
 * handshake and one after a resumption, so a few kept per key carry a busy
 * destination; the last one is offered again (see tls_resume_prepare).
 */
#include "tls/tls_resume.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "[address]:port|sni": an IPv6 text, a port, a DNS name of 253 octets. */
#define KEY_MAX (INET6_ADDRSTRLEN + 2 + 1 + 5 + 1 + 253 + 1)

/* Invariant: n <= TLS_RESUME_PER_KEY; sess[0..n-1] set, oldest first; n == 0: empty. */
struct slot {
	char key[KEY_MAX];
	size_t n;
	SSL_SESSION *sess[TLS_RESUME_PER_KEY]; /* one reference each, owned by the cache */
};

struct cache {
	pthread_mutex_t mu;
	size_t mask; /* slots - 1; slots is a power of two */
	struct slot *slots;
	struct tls_resume_stats st;
};

static pthread_once_t idx_once = PTHREAD_ONCE_INIT;
static int ctx_idx = -1; /* SSL_CTX ex_data: struct cache * */
static int ssl_idx = -1; /* SSL ex_data: the key, a malloc'd string */

static void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i <= c->mask; i++)
		for (size_t j = 0; j < c->slots[i].n; j++)
			SSL_SESSION_free(c->slots[i].sess[j]);
	free(c->slots);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Called by OpenSSL when the context goes. */
static void
ctx_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	cache_free(ptr);
}

/* Called by OpenSSL when an SSL goes. */
static void
ssl_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void
idx_init(void)
{
	ctx_idx =
	    CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, ctx_ex_free);
	ssl_idx = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, ssl_ex_free);
}

/* FNV-1a: the keys are short and not chosen by remote parties alone. */
static size_t
key_hash(const char *k)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *k != '\0'; k++) {
		h ^= (unsigned char)*k;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h ^ (h >> 32));
}

/* make_key - "[addr]:port|sni" into key; -1 when dst is not IP or it does not fit. */
static int
make_key(char *key, size_t keylen, const struct sockaddr *dst, const char *sni)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	int n;

	if (dst->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)dst;

		if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)) == NULL)
			return -1;
		port = ntohs(in->sin_port);
	} else if (dst->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)dst;

		if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)) == NULL)
			return -1;
		port = ntohs(in6->sin6_port);
	} else {
		return -1;
	}
	n = snprintf(key, keylen, "[%s]:%u|%s", ip, port, sni != NULL ? sni : "");
	return n < 0 || (size_t)n >= keylen ? -1 : 0;
}

/* usable - the session can still be offered: resumable and within its own timeout. */
static bool
usable(const SSL_SESSION *sess, time_t now)
{
	long t = SSL_SESSION_get_time(sess), life = SSL_SESSION_get_timeout(sess);
	unsigned long hint = SSL_SESSION_get_ticket_lifetime_hint(sess);

	/*
	 * The session's timeout is our context's default; a ticket also says
	 * how long the server will take it (RFC 8446 section 4.6.1, RFC 5077
	 * section 3.3), and the shorter of the two counts.
	 */
	if (hint > 0 && hint < (unsigned long)life)
		life = (long)hint;
	return SSL_SESSION_is_resumable(sess) == 1 && now >= (time_t)t && now < (time_t)t + life;
}

/* slot_take - remove the session at index i of s and return it (the caller's reference). */
static SSL_SESSION *
slot_take(struct cache *c, struct slot *s, size_t i)
{
	SSL_SESSION *sess = s->sess[i];

	memmove(&s->sess[i], &s->sess[i + 1], (s->n - i - 1) * sizeof(s->sess[0]));
	s->sess[--s->n] = NULL;
	c->st.entries--;
	return sess;
}

/*
 * new_session - OpenSSL hands over a session the server issued (after a
 * full handshake, with each TLS 1.3 NewSessionTicket). The cache keeps a
 * copy: the SSL's own session object is marked not resumable when the SSL
 * is freed without a close_notify sent, and MX connections often end
 * that way (after QUIT, or when the relay is torn down) although the
 * session is as good as after a clean close. Returns 0: OpenSSL keeps its
 * reference.
 */
static int
new_session(SSL *ssl, SSL_SESSION *orig)
{
	struct cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	const char *key = SSL_get_ex_data(ssl, ssl_idx);
	SSL_SESSION *sess;
	struct slot *s;

	if (c == NULL || key == NULL || SSL_SESSION_is_resumable(orig) != 1)
		return 0;
	if ((sess = SSL_SESSION_dup(orig)) == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	s = &c->slots[key_hash(key) & c->mask];
	if (s->n > 0 && strcmp(s->key, key) != 0) {
		/* Another key's sessions: a collision; the newer key wins the slot. */
		c->st.replaced++;
		while (s->n > 0)
			SSL_SESSION_free(slot_take(c, s, s->n - 1));
	}
	if (s->n == TLS_RESUME_PER_KEY)
		SSL_SESSION_free(slot_take(c, s, 0)); /* the oldest goes */
	/* make_key() bounded the key by KEY_MAX, so it fits. */
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->sess[s->n++] = sess;
	c->st.entries++;
	c->st.stored++;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* tls_resume_enable - attach a cache to a client context. */
int
tls_resume_enable(SSL_CTX *ctx, size_t entries, char *err, size_t errlen)
{
	struct cache *c;
	size_t n = 1;

	pthread_once(&idx_once, idx_init);
	if (ctx_idx < 0 || ssl_idx < 0) {
		snprintf(err, errlen, "session cache: no OpenSSL ex_data index");
		return -1;
	}
	if (SSL_CTX_get_ex_data(ctx, ctx_idx) != NULL) {
		snprintf(err, errlen, "session cache: already enabled");
		return -1;
	}
	if (entries == 0)
		entries = TLS_RESUME_ENTRIES;
	if (entries > (size_t)1 << 24) {
		snprintf(err, errlen, "session cache: %zu entries is too many", entries);
		return -1;
	}
	while (n < entries)
		n <<= 1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	if ((c->slots = calloc(n, sizeof(*c->slots))) == NULL) {
		free(c);
		goto nomem;
	}
	c->mask = n - 1;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c->slots);
		free(c);
		goto nomem;
	}
	if (SSL_CTX_set_ex_data(ctx, ctx_idx, c) != 1) {
		cache_free(c);
		goto nomem;
	}
	/*
	 * Sessions go to our cache only: OpenSSL's internal one is keyed by
	 * session id, not by destination, and would never be looked up by a
	 * client anyway. Tickets are what most MX hosts resume with.
	 */
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx,
	                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	return 0;
nomem:
	snprintf(err, errlen, "session cache: out of memory");
	return -1;
}

/* tls_resume_prepare - key the SSL and offer a cached session. */
int
tls_resume_prepare(SSL *ssl, const struct sockaddr *dst, const char *sni)
{
	struct cache *c;
	char key[KEY_MAX], *dup;
	SSL_SESSION *sess = NULL;
	struct slot *s;
	int r;

	pthread_once(&idx_once, idx_init);
	if (ctx_idx < 0 || ssl_idx < 0)
		return 0;
	if ((c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx)) == NULL)
		return 0;
	if (make_key(key, sizeof(key), dst, sni) < 0)
		return -1;
	if ((dup = strdup(key)) == NULL)
		return -1;
	free(SSL_get_ex_data(ssl, ssl_idx));
	if (SSL_set_ex_data(ssl, ssl_idx, dup) != 1) {
		free(dup);
		return -1;
	}

	pthread_mutex_lock(&c->mu);
	s = &c->slots[key_hash(key) & c->mask];
	if (s->n > 0 && strcmp(s->key, key) == 0) {
		time_t now = time(NULL);

		/* The newest usable session; the expired ones met on the way go. */
		while (s->n > 0 && sess == NULL) {
			SSL_SESSION *top = s->sess[s->n - 1];

			if (!usable(top, now)) {
				SSL_SESSION_free(slot_take(c, s, s->n - 1));
				c->st.expired++;
			} else if (SSL_SESSION_get_protocol_version(top) >= TLS1_3_VERSION &&
			           s->n > 1) {
				/* RFC 8446 appendix C.4: take it; a ticket is not offered twice...
				 */
				sess = slot_take(c, s, s->n - 1);
			} else {
				/*
				 * ...unless it is the last one. Postfix, the most common
				 * MX software, issues one TLS 1.3 ticket after a full
				 * handshake and none after a resumption, expecting the
				 * client to offer that ticket again (as its own client
				 * does); a single-use last ticket would make every other
				 * connection a full handshake. Between two MTAs the
				 * addresses link the connections anyway, which is what
				 * the appendix's advice is about. A server that refuses a
				 * ticket twice costs one full handshake, which brings new
				 * tickets.
				 */
				/*
				 * A copy, for TLS 1.2 too: the cached object must stay
				 * resumable however this connection ends (see
				 * new_session). A failed copy is a miss.
				 */
				if ((sess = SSL_SESSION_dup(top)) == NULL)
					break;
			}
		}
	}
	if (sess != NULL)
		c->st.offered++;
	else
		c->st.missed++;
	pthread_mutex_unlock(&c->mu);

	if (sess == NULL)
		return 0;
	/* SSL_set_session() takes its own reference (and the verify result). */
	r = SSL_set_session(ssl, sess);
	SSL_SESSION_free(sess);
	return r == 1 ? 1 : -1;
}

/* tls_resume_stats - a copy of the counters. */
int
tls_resume_stats(SSL_CTX *ctx, struct tls_resume_stats *st)
{
	struct cache *c;

	pthread_once(&idx_once, idx_init);
	if (ctx_idx < 0 || (c = SSL_CTX_get_ex_data(ctx, ctx_idx)) == NULL)
		return -1;
	pthread_mutex_lock(&c->mu);
	*st = c->st;
	pthread_mutex_unlock(&c->mu);
	return 0;
}
