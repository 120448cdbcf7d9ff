// sources: tls/tls_verify.c tls/tls_ctx.c tls/tls_resume.c tests/tls/testca.c core/types.c core/log.c
/*
 * test_tls_verify.c - the certificate check of RFC 8461 section 4.2 (names
 * per RFC 6125) on real handshakes, and the contexts of tls/tls_ctx.c.
 *
 * Every case runs a full OpenSSL handshake over a socketpair: a client
 * context from tls_client_ctx_new() trusting the test CA, a server with the
 * leaf of the case. Then the facts are collected and judged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls_ctx.h"
#include "tls/tls_verify.h"
#include "tests/tls/testca.h"

struct env {
	struct testca *ca;    /* trusted by the client */
	struct testca *other; /* an unknown CA */
	SSL_CTX *client;
};

static struct env env;

/* The leaves the cases use: file name, SAN DNS names, flags, issued by the unknown CA. */
struct leaf {
	const char *name;
	const char *sans[3];
	size_t n;
	int flags;
	int unknown_ca;
};

static const struct leaf leaves[] = {
    {"valid", {"mx1.example", "mx2.example"}, 2, 0, 0},
    {"expired", {"mx.example"}, 1, TESTCA_EXPIRED, 0},
    {"notyet", {"mx.example"}, 1, TESTCA_NOT_YET_VALID, 0},
    {"selfsigned", {"mx.example"}, 1, TESTCA_SELF_SIGNED, 0},
    {"unknownca", {"mx.example"}, 1, 0, 1},
    {"wildcard", {"*.mx.example"}, 1, 0, 0},
    {"partial", {"f*.example"}, 1, 0, 0},
    {"partial3", {"f*.mx.example"}, 1, 0, 0},
    /* CN-only: the subject CN is the host name, there is no subjectAltName. */
    {"mx.example", {NULL}, 0, 0, 0},
};

static int
leaf_paths(const char *name, char *crt, char *key)
{
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		const struct leaf *l = &leaves[i];
		const char *dir;

		if (strcmp(l->name, name) != 0)
			continue;
		dir = testca_dir(l->unknown_ca ? env.other : env.ca);
		snprintf(crt, TESTCA_PATH_MAX, "%s/%s.crt", dir, name);
		snprintf(key, TESTCA_PATH_MAX, "%s/%s.key", dir, name);
		return 0;
	}
	return -1;
}

static int
setup(void **state)
{
	char err[256];

	(void)state;
	env.ca = testca_new(NULL);
	env.other = testca_new(NULL);
	if (env.ca == NULL || env.other == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		const struct leaf *l = &leaves[i];

		if (testca_issue(l->unknown_ca ? env.other : env.ca, l->name, l->sans, l->n,
		                 l->flags, NULL, NULL) != 0)
			return -1;
	}
	env.client = tls_client_ctx_new(testca_ca_file(env.ca), err, sizeof(err));
	if (env.client == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	SSL_CTX_free(env.client);
	testca_free(env.ca);
	testca_free(env.other);
	memset(&env, 0, sizeof(env));
	return 0;
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

/*
 * handshake - run client and server over a non-blocking socketpair until
 * both finish or one fails, then fill facts from the client side. Returns
 * the client's step result (1 or -1).
 */
static int
handshake(SSL_CTX *cctx, SSL_CTX *sctx, const char *sni, struct tls_facts *facts)
{
	int sv[2], c = 0, s = 0;
	SSL *cl, *sr;

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
		SSL_set_tlsext_host_name(cl, sni);
	for (int i = 0; i < 100 && (c == 0 || s == 0) && c >= 0 && s >= 0; i++) {
		if (c == 0)
			c = step(cl);
		if (s == 0)
			s = step(sr);
	}
	/* A failed side has sent its alert; let the other one see it. */
	if (c == 0)
		c = step(cl);
	tls_facts_from_ssl(facts, cl);
	ERR_clear_error();
	SSL_free(cl);
	SSL_free(sr);
	close(sv[0]);
	close(sv[1]);
	return c == 1 ? 1 : -1;
}

static SSL_CTX *
server_ctx(const char *leaf)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256];
	SSL_CTX *ctx;

	assert_int_equal(leaf_paths(leaf, crt, key), 0);
	ctx = tls_server_ctx_new(crt, key, err, sizeof(err));
	if (ctx == NULL)
		fail_msg("tls_server_ctx_new: %s", err);
	return ctx;
}

/* One certificate check: server leaf, names the client wants, the verdict. */
struct vcase {
	const char *name;
	const char *leaf;
	const char *names[3];
	size_t n;
	enum sts_result want;
	size_t matched;
	const char *reason_has; /* a substring the reason must hold */
	int lax_match;          /* OpenSSL's default rules would accept names[0] */
};

static const struct vcase vcases[] = {
    {"rfc8461_4_2_valid_san", "valid", {"mx1.example"}, 1, STS_RESULT_OK, 0, "mx1.example", 0},
    {"rfc8461_4_2_valid_second_mx",
     "valid",
     {"other.example", "mx2.example"},
     2,
     STS_RESULT_OK,
     1,
     "mx2.example",
     0},
    {"rfc6125_6_4_1_case_and_trailing_dot",
     "valid",
     {"MX1.Example."},
     1,
     STS_RESULT_OK,
     0,
     NULL,
     0},
    {"rfc8461_4_2_host_mismatch",
     "valid",
     {"mx3.example", "mx1.example.net"},
     2,
     STS_RESULT_CERT_HOST_MISMATCH,
     0,
     "DNS:mx1.example, DNS:mx2.example",
     0},
    {"rfc8461_4_2_expired", "expired", {"mx.example"}, 1, STS_RESULT_CERT_EXPIRED, 0, "expired", 0},
    {"rfc8461_4_2_not_yet_valid",
     "notyet",
     {"mx.example"},
     1,
     STS_RESULT_CERT_EXPIRED,
     0,
     "not yet valid",
     0},
    {"rfc8461_4_2_self_signed_not_trusted",
     "selfsigned",
     {"mx.example"},
     1,
     STS_RESULT_CERT_NOT_TRUSTED,
     0,
     "self-signed",
     0},
    {"rfc8461_4_2_unknown_ca_not_trusted",
     "unknownca",
     {"mx.example"},
     1,
     STS_RESULT_CERT_NOT_TRUSTED,
     0,
     "issuer",
     0},
    {"rfc6125_6_4_3_wildcard_one_label",
     "wildcard",
     {"a.mx.example"},
     1,
     STS_RESULT_OK,
     0,
     NULL,
     0},
    {"rfc6125_6_4_3_wildcard_not_two_labels",
     "wildcard",
     {"b.a.mx.example"},
     1,
     STS_RESULT_CERT_HOST_MISMATCH,
     0,
     "*.mx.example",
     0},
    {"rfc6125_6_4_3_wildcard_not_parent",
     "wildcard",
     {"mx.example"},
     1,
     STS_RESULT_CERT_HOST_MISMATCH,
     0,
     NULL,
     0},
    {"rfc6125_6_4_3_partial_wildcard_refused",
     "partial",
     {"foo.example", "f.example"},
     2,
     STS_RESULT_CERT_HOST_MISMATCH,
     0,
     "f*.example",
     0},
    {"rfc6125_6_4_3_partial_wildcard_refused_deep",
     "partial3",
     {"foo.mx.example"},
     1,
     STS_RESULT_CERT_HOST_MISMATCH,
     0,
     "f*.mx.example",
     1},
    {"rfc6125_6_4_4_no_cn_fallback",
     "mx.example",
     {"mx.example"},
     1,
     STS_RESULT_CERT_HOST_MISMATCH,
     0,
     "no DNS names",
     1},
    {"rfc8461_4_2_no_names_no_match",
     "valid",
     {NULL},
     0,
     STS_RESULT_CERT_HOST_MISMATCH,
     0,
     NULL,
     0},
};

static void
run_vcase(void **state)
{
	const struct vcase *vc = *state;
	struct tls_facts f = {0};
	char reason[512];
	size_t matched = 99;
	enum sts_result r;
	SSL_CTX *sctx = server_ctx(vc->leaf);

	/* SSL_VERIFY_NONE: even a bad certificate completes the handshake. */
	assert_int_equal(handshake(env.client, sctx, vc->n > 0 ? vc->names[0] : NULL, &f), 1);
	assert_true(f.handshake_done);
	assert_true(f.starttls_offered);
	assert_non_null(f.cert);
	r = tls_check_names(&f, vc->names, vc->n, &matched, reason, sizeof(reason));
	if (r != vc->want)
		fail_msg("%s: got %s (%s), want %s", vc->name, sts_result_name(r), reason,
		         sts_result_name(vc->want));
	if (vc->want == STS_RESULT_OK)
		assert_int_equal(matched, vc->matched);
	else
		assert_int_equal(matched, 99);
	if (vc->reason_has != NULL && strstr(reason, vc->reason_has) == NULL)
		fail_msg("%s: reason \"%s\" lacks \"%s\"", vc->name, reason, vc->reason_has);
	/* The refusal comes from the MTA-STS flags, not from the certificate. */
	if (vc->lax_match)
		assert_int_equal(X509_check_host(f.cert, vc->names[0], 0, 0, NULL), 1);
	tls_facts_clear(&f);
	assert_null(f.cert);
	SSL_CTX_free(sctx);
}

/* The facts name what was seen, for events and reports. */
static void
facts_fields(void **state)
{
	struct tls_facts f = {0};
	SSL_CTX *sctx = server_ctx("valid");

	(void)state;
	assert_int_equal(handshake(env.client, sctx, "mx1.example", &f), 1);
	assert_int_equal(f.verify_result, X509_V_OK);
	assert_string_equal(f.subject, "CN=valid");
	assert_non_null(strstr(f.issuer, "CN=stsproxy test CA"));
	assert_string_equal(f.sans, "DNS:mx1.example, DNS:mx2.example");
	assert_int_equal(strlen(f.not_after), 20);
	assert_true(f.not_after[4] == '-' && f.not_after[10] == 'T' && f.not_after[19] == 'Z');
	assert_string_equal(f.version, "TLSv1.3");
	assert_true(f.cipher[0] != '\0');
	/* A second fill releases the first certificate (valgrind checks). */
	assert_int_equal(handshake(env.client, sctx, "mx1.example", &f), 1);
	assert_non_null(f.cert);
	tls_facts_clear(&f);
	tls_facts_clear(&f);
	SSL_CTX_free(sctx);
}

/*
 * RFC 7672 section 3: the chain the server presented is kept, leaf first,
 * with the digests TLSA records are compared with.
 */
static void
rfc7672_3_chain_kept(void **state)
{
	unsigned char *der = NULL, want[32];
	unsigned int wlen = 0;
	struct tls_facts f = {0};
	SSL_CTX *sctx = server_ctx("valid");
	X509 *ca = NULL;
	FILE *fp;
	int len;

	(void)state;
	assert_int_equal(handshake(env.client, sctx, "mx1.example", &f), 1);
	assert_int_equal(f.n_digests, 1);
	assert_int_equal(X509_cmp(sk_X509_value(f.chain, 0), f.cert), 0);
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(f.cert), &der);
	assert_int_equal(EVP_Digest(der, (size_t)len, want, &wlen, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	assert_memory_equal(f.digests[0].spki256, want, 32);
	tls_facts_clear(&f);

	/* A server that sends its CA too: both, in order. */
	assert_non_null(fp = fopen(testca_ca_file(env.ca), "r"));
	ca = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(ca);
	assert_int_equal(SSL_CTX_add1_chain_cert(sctx, ca), 1);
	assert_int_equal(handshake(env.client, sctx, "mx1.example", &f), 1);
	assert_int_equal(f.n_digests, 2);
	assert_int_equal(X509_cmp(sk_X509_value(f.chain, 1), ca), 0);
	tls_facts_clear(&f);
	assert_null(f.chain);
	X509_free(ca);
	SSL_CTX_free(sctx);
}

/* RFC 8460 section 4.3: no STARTTLS, or no handshake, say so first. */
static void
rfc8460_4_3_starttls_not_supported(void **state)
{
	struct tls_facts f = {0};
	const char *names[] = {"mx.example"};
	char reason[128];

	(void)state;
	assert_int_equal(tls_check_names(&f, names, 1, NULL, reason, sizeof(reason)),
	                 STS_RESULT_STARTTLS_NOT_SUPPORTED);
	f.starttls_offered = true;
	assert_int_equal(tls_check_names(&f, names, 1, NULL, reason, sizeof(reason)),
	                 STS_RESULT_VALIDATION_FAILURE);
	assert_non_null(strstr(reason, "handshake"));
	/* reasonlen 0: nothing is written. */
	assert_int_equal(tls_check_names(&f, names, 1, NULL, NULL, 0),
	                 STS_RESULT_VALIDATION_FAILURE);
}

/* A server that only speaks TLS 1.1 (security level 0 lets it sign with SHA-1). */
static SSL_CTX *
tls11_server(void)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(leaf_paths("valid", crt, key), 0);
	SSL_CTX_set_security_level(ctx, 0);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION), 1);
	assert_int_equal(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	return ctx;
}

/* RFC 8461 section 4.2 / RFC-NOTES: TLS 1.2 or later, never a lower version. */
static void
rfc8461_4_2_tls11_server_refused(void **state)
{
	struct tls_facts f = {0};
	const char *names[] = {"mx1.example"};
	SSL_CTX *sctx = tls11_server(), *lax;
	char reason[128];

	(void)state;
	assert_int_equal(handshake(env.client, sctx, "mx1.example", &f), -1);
	assert_false(f.handshake_done);
	assert_null(f.cert);
	assert_int_equal(tls_check_names(&f, names, 1, NULL, reason, sizeof(reason)),
	                 STS_RESULT_VALIDATION_FAILURE);
	tls_facts_clear(&f);

	/* The same server completes with a client that allows TLS 1.1: the refusal is ours. */
	lax = SSL_CTX_new(TLS_client_method());
	assert_non_null(lax);
	SSL_CTX_set_security_level(lax, 0);
	assert_int_equal(SSL_CTX_set_cipher_list(lax, "DEFAULT:@SECLEVEL=0"), 1);
	assert_int_equal(SSL_CTX_set_min_proto_version(lax, TLS1_VERSION), 1);
	assert_int_equal(handshake(lax, sctx, "mx1.example", &f), 1);
	assert_string_equal(f.version, "TLSv1.1");
	tls_facts_clear(&f);
	SSL_CTX_free(lax);
	SSL_CTX_free(sctx);
}

static void
ctx_errors(void **state)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], key2[TESTCA_PATH_MAX], err[256];

	(void)state;
	err[0] = '\0';
	assert_null(tls_client_ctx_new("/nonexistent/ca.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	assert_int_equal(leaf_paths("valid", crt, key), 0);
	assert_int_equal(leaf_paths("expired", crt + 0, key2), 0);
	assert_int_equal(leaf_paths("valid", crt, key), 0);
	err[0] = '\0';
	/* The key of another certificate. */
	assert_null(tls_server_ctx_new(crt, key2, err, sizeof(err)));
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_null(tls_server_ctx_new("/nonexistent.crt", key, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent.crt"));
	/* NULL: the system store loads (it may be empty, but it is not an error). */
	SSL_CTX *sys = tls_client_ctx_new(NULL, err, sizeof(err));
	assert_non_null(sys);
	assert_int_equal(SSL_CTX_get_min_proto_version(sys), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_verify_mode(sys), SSL_VERIFY_NONE);
	SSL_CTX_free(sys);
}

/* The generated certificate: created once, key private, usable, valid for cn only. */
static void
selfsigned_ensure(void **state)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256], dir[] = "/tmp/sts-ss.XXXXXX";
	struct stat st1, st2;
	struct tls_facts f = {0};
	const char *names[] = {"relay.example", "other.example"};
	size_t matched = 9;
	SSL_CTX *sctx;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(tls_selfsigned_ensure(dir, "relay.example", crt, sizeof(crt), key,
	                                       sizeof(key), err, sizeof(err)),
	                 0);
	assert_int_equal(stat(key, &st1), 0);
	assert_int_equal(st1.st_mode & 0777, 0600);
	assert_int_equal(stat(crt, &st1), 0);
	/* A second call keeps the files. */
	assert_int_equal(tls_selfsigned_ensure(dir, "other.example", crt, sizeof(crt), key,
	                                       sizeof(key), err, sizeof(err)),
	                 0);
	assert_int_equal(stat(crt, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	assert_true(st1.st_mtim.tv_sec == st2.st_mtim.tv_sec &&
	            st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);

	sctx = tls_server_ctx_new(crt, key, err, sizeof(err));
	assert_non_null(sctx);
	assert_int_equal(handshake(env.client, sctx, "relay.example", &f), 1);
	assert_string_equal(f.sans, "DNS:relay.example");
	assert_string_equal(f.subject, "CN=relay.example");
	assert_int_equal(tls_check_names(&f, names, 2, &matched, err, sizeof(err)),
	                 STS_RESULT_CERT_NOT_TRUSTED);
	/* Trusted directly, it is valid for its own name and nothing else. */
	SSL_CTX *cctx = tls_client_ctx_new(crt, err, sizeof(err));
	assert_non_null(cctx);
	assert_int_equal(handshake(cctx, sctx, "relay.example", &f), 1);
	assert_int_equal(tls_check_names(&f, names, 2, &matched, err, sizeof(err)), STS_RESULT_OK);
	assert_int_equal(matched, 0);
	assert_int_equal(tls_check_names(&f, names + 1, 1, &matched, err, sizeof(err)),
	                 STS_RESULT_CERT_HOST_MISMATCH);
	tls_facts_clear(&f);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);

	/* A missing key regenerates both. */
	assert_int_equal(unlink(key), 0);
	assert_int_equal(tls_selfsigned_ensure(dir, "relay.example", crt, sizeof(crt), key,
	                                       sizeof(key), err, sizeof(err)),
	                 0);
	sctx = tls_server_ctx_new(crt, key, err, sizeof(err));
	assert_non_null(sctx);
	SSL_CTX_free(sctx);
	/* Paths that do not fit are refused. */
	char small[8];
	assert_int_equal(tls_selfsigned_ensure(dir, "relay.example", small, sizeof(small), key,
	                                       sizeof(key), err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "too long"));
	unlink(crt);
	unlink(key);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(vcases) / sizeof(vcases[0]) + 8];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test(run_vcase);
		tests[n].name = vcases[i].name;
		tests[n].initial_state = (void *)&vcases[i];
		n++;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(facts_fields);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc7672_3_chain_kept);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc8460_4_3_starttls_not_supported);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc8461_4_2_tls11_server_refused);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(ctx_errors);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(selfsigned_ensure);
	return _cmocka_run_group_tests("tls_verify", tests, n, setup, teardown);
}
