// sources: tls/tls_resume.c tls/tls_ctx.c tls/tls_verify.c tests/tls/testca.c core/types.c
// sources: core/log.c
/*
 * test_tls_resume.c - session resumption toward MX hosts (tls/tls_resume.c)
 * on real handshakes over socketpairs: a second connection to the same
 * destination and name resumes, with the facts of the first handshake; a
 * different name or port does not; a server whose certificate changed
 * cannot resume and its facts are its own; sessions expire with their own
 * timeout; connections that overlap get a ticket each while there are
 * several, and the last one is offered again (servers that issue one);
 * the cache stays within its bounds, per key and in all. The context
 * offered to mailers resumes their sessions with tickets.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tests/tls/testca.h"
#include "tls/tls_ctx.h"
#include "tls/tls_resume.h"
#include "tls/tls_verify.h"

struct env {
	struct testca *ca;    /* trusted by the client */
	struct testca *other; /* an unknown CA */
};

static struct env env;

static int
setup(void **state)
{
	static const char *const mx[] = {"mx.example"};
	static const char *const mx2[] = {"mx.example", "mx2.example"};

	(void)state;
	env.ca = testca_new(NULL);
	env.other = testca_new(NULL);
	if (env.ca == NULL || env.other == NULL)
		return -1;
	if (testca_issue(env.ca, "first", mx, 1, 0, NULL, NULL) != 0 ||
	    testca_issue(env.ca, "second", mx2, 2, 0, NULL, NULL) != 0 ||
	    testca_issue(env.other, "untrusted", mx, 1, 0, NULL, NULL) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	testca_free(env.ca);
	testca_free(env.other);
	memset(&env, 0, sizeof(env));
	return 0;
}

/* client - a client context with a cache, as the proxy makes it. */
static SSL_CTX *
client(void)
{
	char err[256];
	SSL_CTX *ctx = tls_client_ctx_new(testca_ca_file(env.ca), err, sizeof(err));

	if (ctx == NULL)
		fail_msg("tls_client_ctx_new: %s", err);
	return ctx;
}

/*
 * server - an MX host as Postfix runs one: OpenSSL's defaults, so tickets
 * (TLS 1.2 and 1.3). max_version 0 means TLS 1.3; lifetime 0 the default.
 */
static SSL_CTX *
server(const char *leaf, int untrusted, int max_version, long lifetime)
{
	const char *dir = testca_dir(untrusted ? env.other : env.ca);
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, leaf);
	snprintf(key, sizeof(key), "%s/%s.key", dir, leaf);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, crt), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	if (max_version != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
	if (lifetime > 0)
		SSL_CTX_set_timeout(ctx, lifetime);
	return ctx;
}

static void
dst_addr(struct sockaddr_in *sin, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	inet_pton(AF_INET, "198.51.100.25", &sin->sin_addr);
}

/* step - one handshake step; 1 done, 0 wants more, -1 failed. */
static int
step(SSL *ssl)
{
	int r = SSL_do_handshake(ssl);

	if (r == 1)
		return 1;
	r = SSL_get_error(ssl, r);
	return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* One connection's outcome, seen from the client. */
struct conn {
	int offered; /* tls_resume_prepare() */
	int reused;  /* SSL_session_reused() */
	struct tls_facts facts;
	enum sts_result check; /* tls_check_names() for "mx.example" */
};

/*
 * run_pair - the handshake of client cl with server sr over a new
 * socketpair, then the client reads what the server sent after it (TLS 1.3
 * tickets). Both must complete. Returns nothing; frees both SSLs and closes
 * the pair, after calling done(cl, arg) while the client is still there.
 */
static void
run_pair(SSL *cl, SSL *sr, void (*done)(SSL *cl, void *arg), void *arg)
{
	int sv[2], c = 0, s = 0;
	char buf[16];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	SSL_set_fd(cl, sv[0]);
	SSL_set_fd(sr, sv[1]);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sr);
	for (int i = 0; i < 100 && (c == 0 || s == 0) && c >= 0 && s >= 0; i++) {
		if (c == 0)
			c = step(cl);
		if (s == 0)
			s = step(sr);
	}
	assert_int_equal(c, 1);
	assert_int_equal(s, 1);
	/* The tickets follow the handshake; reading takes them in. */
	for (int i = 0; i < 4; i++)
		assert_true(SSL_read(cl, buf, sizeof(buf)) <= 0);
	done(cl, arg);
	ERR_clear_error();
	SSL_free(cl);
	SSL_free(sr);
	close(sv[0]);
	close(sv[1]);
}

/* conn_done - take a connection's outcome (run_pair's done for connect_once). */
static void
conn_done(SSL *cl, void *arg)
{
	static const char *const names[] = {"mx.example"};
	struct conn *out = arg;

	out->reused = SSL_session_reused(cl);
	tls_facts_from_ssl(&out->facts, cl);
	out->check = tls_check_names(&out->facts, names, 1, NULL, NULL, 0);
}

/*
 * connect_once - one connection to "destination" port with sni: prepare,
 * handshake, take the facts and the name check.
 */
static void
connect_once(SSL_CTX *cctx, SSL_CTX *sctx, uint16_t port, const char *sni, struct conn *out)
{
	struct sockaddr_in dst;
	SSL *cl = SSL_new(cctx), *sr = SSL_new(sctx);

	memset(out, 0, sizeof(*out));
	assert_non_null(cl);
	assert_non_null(sr);
	dst_addr(&dst, port);
	if (sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(cl, sni), 1);
	out->offered = tls_resume_prepare(cl, (const struct sockaddr *)&dst, sni);
	run_pair(cl, sr, conn_done, out);
}

/* same_facts - everything a policy decision or an event reads. */
static void
same_facts(const struct conn *a, const struct conn *b)
{
	assert_true(a->facts.handshake_done);
	assert_true(b->facts.handshake_done);
	assert_int_equal(a->facts.verify_result, b->facts.verify_result);
	assert_string_equal(a->facts.subject, b->facts.subject);
	assert_string_equal(a->facts.issuer, b->facts.issuer);
	assert_string_equal(a->facts.sans, b->facts.sans);
	assert_string_equal(a->facts.not_after, b->facts.not_after);
	assert_string_equal(a->facts.version, b->facts.version);
	assert_non_null(b->facts.cert);
	assert_int_equal(X509_cmp(a->facts.cert, b->facts.cert), 0);
	assert_int_equal(a->facts.dns_ids_ready, b->facts.dns_ids_ready);
	assert_int_equal(a->facts.n_dns_ids, b->facts.n_dns_ids);
	assert_int_equal(a->check, b->check);
}

static void
conn_clear(struct conn *c)
{
	tls_facts_clear(&c->facts);
}

/* One resumption case: the server, and what both connections must show. */
struct rcase {
	const char *name;
	const char *leaf;
	int untrusted;
	int max_version;
	const char *want_version;
	long want_verify;
	enum sts_result want_check;
};

static const struct rcase rcases[] = {
    {"rfc8446_2_2_tls13_ticket_resumes_same_facts", "first", 0, 0, "TLSv1.3", X509_V_OK,
     STS_RESULT_OK},
    {"rfc5077_tls12_ticket_resumes_same_facts", "first", 0, TLS1_2_VERSION, "TLSv1.2", X509_V_OK,
     STS_RESULT_OK},
    /* A failed verification is the session's too: the policy still sees it. */
    {"rfc8461_4_2_untrusted_resumed_still_untrusted", "untrusted", 1, 0, "TLSv1.3",
     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, STS_RESULT_CERT_NOT_TRUSTED},
    {"rfc8461_4_2_untrusted_tls12_resumed_still_untrusted", "untrusted", 1, TLS1_2_VERSION,
     "TLSv1.2", X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, STS_RESULT_CERT_NOT_TRUSTED},
};

static void
run_rcase(void **state)
{
	const struct rcase *rc = *state;
	SSL_CTX *cctx = client();
	SSL_CTX *sctx = server(rc->leaf, rc->untrusted, rc->max_version, 0);
	struct conn a, b, c;

	connect_once(cctx, sctx, 25, "mx.example", &a);
	assert_int_equal(a.offered, 0);
	assert_int_equal(a.reused, 0);
	assert_string_equal(a.facts.version, rc->want_version);
	assert_int_equal(a.facts.verify_result, rc->want_verify);
	assert_int_equal(a.check, rc->want_check);

	connect_once(cctx, sctx, 25, "mx.example", &b);
	assert_int_equal(b.offered, 1);
	assert_int_equal(b.reused, 1);
	same_facts(&a, &b);

	/* And again: the tickets of a resumed connection are kept too. */
	connect_once(cctx, sctx, 25, "mx.example", &c);
	assert_int_equal(c.offered, 1);
	assert_int_equal(c.reused, 1);
	same_facts(&a, &c);

	conn_clear(&a);
	conn_clear(&b);
	conn_clear(&c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* RFC 6066 section 3: a session is bound to its server name; so is the key. */
static void
rfc6066_3_other_sni_not_resumed(void **state)
{
	SSL_CTX *cctx = client();
	SSL_CTX *sctx = server("second", 0, 0, 0);
	struct conn a, b, c, d;

	(void)state;
	connect_once(cctx, sctx, 25, "mx.example", &a);
	connect_once(cctx, sctx, 25, "mx2.example", &b);
	assert_int_equal(b.offered, 0);
	assert_int_equal(b.reused, 0);
	connect_once(cctx, sctx, 25, NULL, &c);
	assert_int_equal(c.offered, 0);
	assert_int_equal(c.reused, 0);
	/* Same name, another port: another destination. */
	connect_once(cctx, sctx, 587, "mx.example", &d);
	assert_int_equal(d.offered, 0);
	assert_int_equal(d.reused, 0);
	conn_clear(&a);
	conn_clear(&b);
	conn_clear(&c);
	conn_clear(&d);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/*
 * rfc8461_4_2_new_certificate_not_resumed - another server (new keys, new
 * certificate) on the same address: the cached ticket is offered but cannot
 * be resumed, and the facts are those of the new certificate.
 */
static void
rfc8461_4_2_new_certificate_not_resumed(void **state)
{
	SSL_CTX *cctx = client();
	SSL_CTX *old = server("first", 0, 0, 0);
	SSL_CTX *newer = server("untrusted", 1, 0, 0);
	SSL_CTX *tls12 = server("second", 0, TLS1_2_VERSION, 0);
	struct conn a, b, c, d;

	(void)state;
	connect_once(cctx, old, 25, "mx.example", &a);
	connect_once(cctx, newer, 25, "mx.example", &b);
	assert_int_equal(b.offered, 1);
	assert_int_equal(b.reused, 0);
	assert_string_not_equal(a.facts.subject, b.facts.subject);
	assert_int_equal(X509_cmp(a.facts.cert, b.facts.cert) == 0, 0);
	assert_int_equal(a.check, STS_RESULT_OK);
	assert_int_equal(b.check, STS_RESULT_CERT_NOT_TRUSTED);
	/* The new server's own session now resumes, with its facts. */
	connect_once(cctx, newer, 25, "mx.example", &c);
	assert_int_equal(c.reused, 1);
	same_facts(&b, &c);
	/* The same for TLS 1.2 after a TLS 1.3 server. */
	connect_once(cctx, tls12, 25, "mx.example", &d);
	assert_int_equal(d.reused, 0);
	assert_string_equal(d.facts.version, "TLSv1.2");
	assert_string_equal(d.facts.sans, "DNS:mx.example, DNS:mx2.example");
	assert_int_equal(d.check, STS_RESULT_OK);
	conn_clear(&a);
	conn_clear(&b);
	conn_clear(&c);
	conn_clear(&d);
	SSL_CTX_free(old);
	SSL_CTX_free(newer);
	SSL_CTX_free(tls12);
	SSL_CTX_free(cctx);
}

/* rfc8446_4_6_1_ticket_lifetime_expires - a session is dropped after its own timeout. */
static void
rfc8446_4_6_1_ticket_lifetime_expires(void **state)
{
	SSL_CTX *cctx = client();
	SSL_CTX *sctx = server("first", 0, 0, 1);
	struct tls_resume_stats st;
	struct conn a, b;

	(void)state;
	connect_once(cctx, sctx, 25, "mx.example", &a);
	assert_int_equal(tls_resume_stats(cctx, &st), 0);
	assert_int_equal(st.entries, 2); /* OpenSSL's two tickets after a full handshake */
	sleep(2);
	connect_once(cctx, sctx, 25, "mx.example", &b);
	assert_int_equal(b.offered, 0);
	assert_int_equal(b.reused, 0);
	assert_int_equal(tls_resume_stats(cctx, &st), 0);
	assert_int_equal(st.expired, 2);
	assert_int_equal(st.offered, 0);
	assert_int_equal(st.entries, 2); /* b's own */
	conn_clear(&a);
	conn_clear(&b);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* ticket_of - the ticket a prepared SSL would offer, as a comparable copy. */
static size_t
ticket_of(SSL *ssl, unsigned char *out, size_t outlen)
{
	const unsigned char *tick = NULL;
	size_t len = 0;
	SSL_SESSION *sess = SSL_get_session(ssl);

	assert_non_null(sess);
	SSL_SESSION_get0_ticket(sess, &tick, &len);
	assert_true(len > 0 && len <= outlen);
	memcpy(out, tick, len);
	return len;
}

/*
 * rfc8446_c_4_overlapping_connections_get_a_ticket_each - two connections
 * that start before either has finished are offered different tickets;
 * a third gets the last one again, which stays. The case of a busy MX host.
 */
static void
rfc8446_c_4_overlapping_connections_get_a_ticket_each(void **state)
{
	SSL_CTX *cctx = client();
	SSL_CTX *sctx = server("first", 0, 0, 0);
	struct sockaddr_in dst;
	unsigned char t1[4096], t2[4096], t3[4096];
	size_t l1, l2, l3;
	struct tls_resume_stats st;
	struct conn a, b, c;
	SSL *p1, *p2, *p3;

	(void)state;
	connect_once(cctx, sctx, 25, "mx.example", &a);
	dst_addr(&dst, 25);
	p1 = SSL_new(cctx);
	p2 = SSL_new(cctx);
	p3 = SSL_new(cctx);
	assert_non_null(p1);
	assert_non_null(p2);
	assert_non_null(p3);
	assert_int_equal(tls_resume_prepare(p1, (const struct sockaddr *)&dst, "mx.example"), 1);
	assert_int_equal(tls_resume_prepare(p2, (const struct sockaddr *)&dst, "mx.example"), 1);
	assert_int_equal(tls_resume_prepare(p3, (const struct sockaddr *)&dst, "mx.example"), 1);
	l1 = ticket_of(p1, t1, sizeof(t1));
	l2 = ticket_of(p2, t2, sizeof(t2));
	l3 = ticket_of(p3, t3, sizeof(t3));
	assert_false(l1 == l2 && memcmp(t1, t2, l1) == 0);
	assert_true(l2 == l3 && memcmp(t2, t3, l2) == 0);
	assert_int_equal(tls_resume_stats(cctx, &st), 0);
	assert_int_equal(st.entries, 1);
	SSL_free(p1);
	SSL_free(p2);
	SSL_free(p3);

	/* Each resumption brings a ticket back: the supply lasts. */
	connect_once(cctx, sctx, 25, "mx.example", &b);
	assert_int_equal(b.reused, 1);
	connect_once(cctx, sctx, 25, "mx.example", &c);
	assert_int_equal(c.reused, 1);
	same_facts(&a, &b);
	same_facts(&a, &c);
	conn_clear(&a);
	conn_clear(&b);
	conn_clear(&c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/*
 * use_no_renew - a ticket callback as Postfix's: a ticket that decrypts is
 * used and not renewed, so no new ticket follows a resumption.
 */
static SSL_TICKET_RETURN
use_no_renew(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
             SSL_TICKET_STATUS status, void *arg)
{
	(void)ssl;
	(void)sess;
	(void)keyname;
	(void)keyname_len;
	(void)arg;
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		return SSL_TICKET_RETURN_USE;
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NO_DECRYPT:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
}

/*
 * one_ticket_server_keeps_resuming - an MX host that issues one ticket
 * after a full handshake and none after a resumption (Postfix): the last
 * ticket is offered again, so every connection after the first resumes.
 */
static void
one_ticket_server_keeps_resuming(void **state)
{
	SSL_CTX *cctx = client();
	SSL_CTX *sctx = server("first", 0, 0, 0);
	struct tls_resume_stats st;
	struct conn a, b;

	(void)state;
	assert_int_equal(SSL_CTX_set_num_tickets(sctx, 1), 1);
	assert_int_equal(SSL_CTX_set_session_ticket_cb(sctx, NULL, use_no_renew, NULL), 1);
	connect_once(cctx, sctx, 25, "mx.example", &a);
	assert_int_equal(a.reused, 0);
	for (int i = 0; i < 4; i++) {
		connect_once(cctx, sctx, 25, "mx.example", &b);
		assert_int_equal(b.offered, 1);
		assert_int_equal(b.reused, 1);
		same_facts(&a, &b);
		conn_clear(&b);
	}
	assert_int_equal(tls_resume_stats(cctx, &st), 0);
	assert_int_equal(st.stored, 1); /* no ticket after a resumption: the callback works */
	assert_int_equal(st.entries, 1);
	conn_clear(&a);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* per_key_bounded - a server that issues many tickets fills one key only up to its bound. */
static void
per_key_bounded(void **state)
{
	SSL_CTX *cctx = client();
	SSL_CTX *sctx = server("first", 0, 0, 0);
	struct tls_resume_stats st;
	struct conn a;

	(void)state;
	assert_int_equal(SSL_CTX_set_num_tickets(sctx, TLS_RESUME_PER_KEY + 3), 1);
	for (int i = 0; i < 3; i++) {
		connect_once(cctx, sctx, 25, "mx.example", &a);
		assert_int_equal(a.reused, i > 0);
		conn_clear(&a);
		assert_int_equal(tls_resume_stats(cctx, &st), 0);
		assert_int_equal(st.entries, TLS_RESUME_PER_KEY);
		/* All the tickets of the full handshake came; the oldest went. */
		if (i == 0)
			assert_int_equal(st.stored, TLS_RESUME_PER_KEY + 3);
	}
	assert_int_equal(st.replaced, 0);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* cache_bounded - more destinations than slots: the cache never grows past them. */
static void
cache_bounded(void **state)
{
	char err[256];
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX *sctx = server("first", 0, 0, 0);
	struct tls_resume_stats st;
	struct conn a;

	(void)state;
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_load_verify_locations(cctx, testca_ca_file(env.ca), NULL), 1);
	assert_int_equal(tls_resume_enable(cctx, 3, err, sizeof(err)), 0); /* 4 slots */
	assert_int_equal(tls_resume_enable(cctx, 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already"));
	for (uint16_t port = 1000; port < 1012; port++) {
		connect_once(cctx, sctx, port, "mx.example", &a);
		conn_clear(&a);
		assert_int_equal(tls_resume_stats(cctx, &st), 0);
		assert_true(st.entries <= 4 * TLS_RESUME_PER_KEY);
	}
	assert_true(st.replaced > 0);
	assert_int_equal(st.missed, 12);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* One mailer connection: whether it resumed, and a copy of its session. */
struct mailer_conn {
	int reused;
	SSL_SESSION *kept;
};

static void
mailer_done(SSL *cl, void *arg)
{
	struct mailer_conn *m = arg;

	m->reused = SSL_session_reused(cl);
	/* A copy: the SSL's own is spoilt when it goes without close_notify. */
	SSL_SESSION_free(m->kept);
	m->kept = SSL_SESSION_dup(SSL_get0_session(cl));
	assert_non_null(m->kept);
	assert_int_equal(SSL_SESSION_has_ticket(m->kept), 1);
}

/*
 * mailer_side_resumes - the context offered to mailers issues a ticket, and
 * a mailer that keeps it resumes; another context (after a reload) cannot
 * take it, and the handshake is a full one.
 */
static void
mailer_side_resumes(void **state)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256];
	SSL_CTX *mailer = SSL_CTX_new(TLS_client_method());
	SSL_CTX *proxy, *reloaded;
	struct mailer_conn m = {0, NULL};

	(void)state;
	assert_non_null(mailer);
	snprintf(crt, sizeof(crt), "%s/first.crt", testca_dir(env.ca));
	snprintf(key, sizeof(key), "%s/first.key", testca_dir(env.ca));
	proxy = tls_server_ctx_new(crt, key, err, sizeof(err));
	reloaded = tls_server_ctx_new(crt, key, err, sizeof(err));
	assert_non_null(proxy);
	assert_non_null(reloaded);
	for (int i = 0; i < 3; i++) {
		SSL *cl = SSL_new(mailer), *sr = SSL_new(i < 2 ? proxy : reloaded);

		assert_non_null(cl);
		assert_non_null(sr);
		if (m.kept != NULL)
			assert_int_equal(SSL_set_session(cl, m.kept), 1);
		run_pair(cl, sr, mailer_done, &m);
		/* The second connection resumes; the third meets new ticket keys. */
		assert_int_equal(m.reused, i == 1);
	}
	SSL_SESSION_free(m.kept);
	SSL_CTX_free(proxy);
	SSL_CTX_free(reloaded);
	SSL_CTX_free(mailer);
}

/* no_cache - a context without a cache: nothing offered, nothing kept. */
static void
no_cache(void **state)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX *sctx = server("first", 0, 0, 0);
	struct tls_resume_stats st;
	struct conn a, b;

	(void)state;
	assert_non_null(cctx);
	connect_once(cctx, sctx, 25, "mx.example", &a);
	connect_once(cctx, sctx, 25, "mx.example", &b);
	assert_int_equal(b.offered, 0);
	assert_int_equal(b.reused, 0);
	assert_int_equal(tls_resume_stats(cctx, &st), -1);
	conn_clear(&a);
	conn_clear(&b);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(rcases) / sizeof(rcases[0]) + 9];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test(run_rcase);
		tests[n].name = rcases[i].name;
		tests[n].initial_state = (void *)&rcases[i];
		n++;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc6066_3_other_sni_not_resumed);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc8461_4_2_new_certificate_not_resumed);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc8446_4_6_1_ticket_lifetime_expires);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    rfc8446_c_4_overlapping_connections_get_a_ticket_each);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(one_ticket_server_keeps_resuming);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(per_key_bounded);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(cache_bounded);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(mailer_side_resumes);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(no_cache);
	return _cmocka_run_group_tests("tls_resume", tests, n, setup, teardown);
}
