// sources: tls/tls_resume.c tls/tls_ctx.c tls/tls_verify.c tests/tls/testca.c core/types.c
// sources: core/log.c
/*
 * test_tls_resume.c - session resumption toward MX hosts (tls/tls_resume.c)
 * on real handshakes over socketpairs: a second connection to the same
 * destination and name resumes, with the facts of the first handshake; a
 * different name or port does not; a server whose certificate changed
 * cannot resume and its facts are its own; sessions expire with their own
 * timeout; the cache stays within its bound.
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
 * connect_once - one connection to "destination" port with sni: prepare,
 * handshake, read what the server sent after it (TLS 1.3 tickets), take the
 * facts and the name check. The connection must complete.
 */
static void
connect_once(SSL_CTX *cctx, SSL_CTX *sctx, uint16_t port, const char *sni, struct conn *out)
{
	static const char *const names[] = {"mx.example"};
	struct sockaddr_in dst;
	int sv[2], c = 0, s = 0;
	char buf[16];
	SSL *cl, *sr;

	memset(out, 0, sizeof(*out));
	dst_addr(&dst, port);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	cl = SSL_new(cctx);
	sr = SSL_new(sctx);
	assert_non_null(cl);
	assert_non_null(sr);
	SSL_set_fd(cl, sv[0]);
	SSL_set_fd(sr, sv[1]);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sr);
	if (sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(cl, sni), 1);
	out->offered = tls_resume_prepare(cl, (const struct sockaddr *)&dst, sni);
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
	out->reused = SSL_session_reused(cl);
	tls_facts_from_ssl(&out->facts, cl);
	out->check = tls_check_names(&out->facts, names, 1, NULL, NULL, 0);
	ERR_clear_error();
	SSL_free(cl);
	SSL_free(sr);
	close(sv[0]);
	close(sv[1]);
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
	assert_int_equal(st.entries, 1);
	sleep(2);
	connect_once(cctx, sctx, 25, "mx.example", &b);
	assert_int_equal(b.offered, 0);
	assert_int_equal(b.reused, 0);
	assert_int_equal(tls_resume_stats(cctx, &st), 0);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.offered, 0);
	conn_clear(&a);
	conn_clear(&b);
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
		assert_true(st.entries <= 4);
	}
	assert_true(st.replaced > 0);
	assert_int_equal(st.missed, 12);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
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
	struct CMUnitTest tests[sizeof(rcases) / sizeof(rcases[0]) + 5];
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
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(cache_bounded);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(no_cache);
	return _cmocka_run_group_tests("tls_resume", tests, n, setup, teardown);
}
