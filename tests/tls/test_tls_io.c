// sources: tls/tls_io.c tls/tls_ctx.c tls/tls_resume.c tls/tls_verify.c tests/tls/testca.c core/loop.c core/log.c
// core/types.c
/*
 * test_tls_io.c - the endpoint and its TLS pump, driven by the real event
 * loop over non-blocking socketpairs (TCP on 127.0.0.1 where a reset is
 * needed), with real OpenSSL handshakes.
 *
 * Each side is a "peer": on every loop event it runs the pump, then its
 * application step (echo, STARTTLS dialogue, bulk transfer), again while
 * anything moves, and finally sets the loop mask to tls_io_events().
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "tls/tls_ctx.h"
#include "tls/tls_io.h"
#include "tls/tls_verify.h"
#include "tests/tls/testca.h"

#define IN_MAX  (64 * 1024)
#define OUT_MAX (64 * 1024)
#define BULK    (5u * 1024 * 1024)

static struct {
	struct testca *ca;
	SSL_CTX *client, *server;
	SSL_CTX *ticket_server; /* issues TLS 1.3 session tickets, like Postfix */
} env;

struct peer;
typedef int app_fn(struct peer *p); /* >0 when it did something */

struct peer {
	struct loop *loop;
	struct tls_io *io;
	app_fn *app;
	bool server;
	bool dead;
	char err[128];
	/* dialogue state */
	int step;
	int starttls_rc;
	char got[256];
	size_t got_len;
	/* bulk transfer */
	size_t sent, recvd, total;
	bool mismatch;
	size_t mem_max;
};

static int
setup(void **state)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256];
	const char *sans[] = {"mx1.example"};

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if ((env.ca = testca_new(NULL)) == NULL ||
	    testca_issue(env.ca, "mx1", sans, 1, 0, crt, key) != 0)
		return -1;
	env.client = tls_client_ctx_new(testca_ca_file(env.ca), err, sizeof(err));
	env.server = tls_server_ctx_new(crt, key, err, sizeof(err));
	env.ticket_server = tls_server_ctx_new(crt, key, err, sizeof(err));
	if (env.client == NULL || env.server == NULL || env.ticket_server == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	SSL_CTX_clear_options(env.ticket_server, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(env.ticket_server, 2);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	SSL_CTX_free(env.client);
	SSL_CTX_free(env.server);
	SSL_CTX_free(env.ticket_server);
	testca_free(env.ca);
	return 0;
}

/* peer_run - the owner's part of the strategy: pump, application, repeat, re-arm. */
static void
peer_run(struct peer *p)
{
	int r, a, guard = 0;
	size_t mem;

	if (p->dead)
		return;
	do {
		r = tls_io_pump(p->io);
		if (r < 0) {
			snprintf(p->err, sizeof(p->err), "%s", tls_io_error(p->io));
			p->dead = true;
			loop_fd_del(p->loop, tls_io_fd(p->io));
			return;
		}
		a = p->app != NULL ? p->app(p) : 0;
		mem = tls_io_memory(p->io);
		if (mem > p->mem_max)
			p->mem_max = mem;
	} while ((r > 0 || a > 0) && ++guard < 100000);
	assert_int_equal(loop_fd_mod(p->loop, tls_io_fd(p->io), tls_io_events(p->io)), 0);
}

static void
peer_cb(struct loop *loop, int fd, int events, void *arg)
{
	struct peer *p = arg;

	(void)loop;
	(void)fd;
	if (p->io != NULL)
		tls_io_events_seen(p->io, events);
	peer_run(p);
}

static void
peer_init(struct peer *p, struct loop *loop, int fd, bool server, app_fn *app)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->server = server;
	p->app = app;
	p->io = tls_io_new(fd, IN_MAX, OUT_MAX);
	assert_non_null(p->io);
	assert_int_equal(loop_fd_add(loop, fd, LOOP_READ | LOOP_WRITE, peer_cb, p), 0);
}

static void
peer_free(struct peer *p)
{
	if (p->io != NULL) {
		if (!p->dead)
			loop_fd_del(p->loop, tls_io_fd(p->io));
		tls_io_free(p->io);
		p->io = NULL;
	}
}

typedef bool done_fn(struct peer *a, struct peer *b);

/* drive - run the loop until done() or 20 seconds; false on the timeout. */
static bool
drive(struct loop *loop, struct peer *a, struct peer *b, done_fn *done)
{
	uint64_t end = loop_now_ms(loop) + 20000;

	peer_run(a);
	peer_run(b);
	while (!done(a, b)) {
		if (loop_now_ms(loop) > end)
			return false;
		assert_true(loop_once(loop, 100) >= 0);
	}
	return true;
}

static void
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* keep - append a received line to got (for the assertions). */
static void
keep(struct peer *p, const char *line, size_t len)
{
	if (p->got_len + len < sizeof(p->got)) {
		memcpy(p->got + p->got_len, line, len);
		p->got_len += len;
		p->got[p->got_len] = '\0';
	}
}

/* echo - the server: every complete line goes back, within the output budget. */
static int
app_echo(struct peer *p)
{
	const char *line;
	size_t len;
	int did = 0;

	while ((line = tls_io_line(p->io, &len, NULL)) != NULL && tls_io_out_space(p->io) >= len) {
		if (len == 10 && memcmp(line, "STARTTLS\r\n", 10) == 0) {
			tls_io_consume(p->io, len);
			assert_int_equal(tls_io_write(p->io, "220 ready\r\n", 11), 0);
			p->starttls_rc = tls_io_start_tls(p->io, env.server, true, NULL);
			return 1;
		}
		assert_int_equal(tls_io_write(p->io, line, len), 0);
		tls_io_consume(p->io, len);
		did = 1;
	}
	return did;
}

/* collect - the client: keep every line; on "220 ready" start TLS and send "secret". */
static int
app_client(struct peer *p)
{
	const char *line;
	size_t len;
	int did = 0;

	while ((line = tls_io_line(p->io, &len, NULL)) != NULL) {
		bool ready = len == 11 && memcmp(line, "220 ready\r\n", 11) == 0;

		keep(p, line, len);
		tls_io_consume(p->io, len);
		did = 1;
		if (ready) {
			p->starttls_rc = tls_io_start_tls(p->io, env.client, false, "mx1.example");
			assert_int_equal(tls_io_write(p->io, "secret\r\n", 8), 0);
		}
	}
	return did;
}

static bool
got_secret(struct peer *a, struct peer *b)
{
	(void)b;
	return a->dead || strstr(a->got, "secret\r\n") != NULL;
}

static bool
got_three(struct peer *a, struct peer *b)
{
	(void)b;
	return a->dead || strstr(a->got, "three\r\n") != NULL;
}

static void
plaintext_echo(void **state)
{
	struct loop *loop = loop_new();
	struct peer a, b;
	int sv[2];

	(void)state;
	pair(sv);
	peer_init(&a, loop, sv[0], false, app_client);
	peer_init(&b, loop, sv[1], true, app_echo);
	assert_int_equal(tls_io_write(a.io, "one\r\ntwo\r\n", 10), 0);
	assert_int_equal(tls_io_out_pending(a.io), 10);
	assert_int_equal(tls_io_write(a.io, "three\r\n", 7), 0);
	assert_true(tls_io_memory(a.io) >= 17);
	assert_int_equal(tls_io_events(a.io), LOOP_READ | LOOP_WRITE);
	assert_true(drive(loop, &a, &b, got_three));
	assert_false(a.dead);
	assert_string_equal(a.got, "one\r\ntwo\r\nthree\r\n");
	assert_false(tls_io_is_tls(a.io));
	assert_null(tls_io_ssl(a.io));
	/* Idle: every buffer is released. */
	assert_int_equal(tls_io_memory(a.io), 0);
	assert_int_equal(tls_io_memory(b.io), 0);
	peer_free(&a);
	peer_free(&b);
	loop_free(loop);
}

/* RFC 3207 section 4: STARTTLS in the middle of a plaintext dialogue. */
static void
rfc3207_4_starttls_upgrade_then_echo(void **state)
{
	struct loop *loop = loop_new();
	struct peer a, b;
	int sv[2];

	(void)state;
	pair(sv);
	peer_init(&a, loop, sv[0], false, app_client);
	peer_init(&b, loop, sv[1], true, app_echo);
	a.starttls_rc = b.starttls_rc = 99;
	assert_int_equal(tls_io_write(a.io, "EHLO a\r\nSTARTTLS\r\n", 18), 0);
	assert_true(drive(loop, &a, &b, got_secret));
	if (a.dead || b.dead)
		fail_msg("client: %s, server: %s", a.err, b.err);
	assert_int_equal(a.starttls_rc, 0);
	assert_int_equal(b.starttls_rc, 0);
	/* The 220 was read in clear, the echo of "secret" came back through TLS. */
	assert_string_equal(a.got, "EHLO a\r\n220 ready\r\nsecret\r\n");
	assert_true(tls_io_is_tls(a.io) && tls_io_is_tls(b.io));
	assert_true(tls_io_handshake_done(a.io) && tls_io_handshake_done(b.io));
	assert_string_equal(SSL_get_servername(tls_io_ssl(b.io), TLSEXT_NAMETYPE_host_name),
	                    "mx1.example");
	assert_true(SSL_version(tls_io_ssl(a.io)) >= TLS1_2_VERSION);
	/* What the proxy does next: judge the upstream certificate (RFC 8461 section 4.2). */
	struct tls_facts f = {0};
	const char *names[] = {"mx1.example"};
	tls_facts_from_ssl(&f, tls_io_ssl(a.io));
	assert_int_equal(tls_check_names(&f, names, 1, NULL, NULL, 0), STS_RESULT_OK);
	tls_facts_clear(&f);
	/* A second STARTTLS is refused. */
	assert_int_equal(tls_io_start_tls(a.io, env.client, false, NULL), -1);
	assert_int_equal(tls_io_memory(a.io), 0);
	assert_int_equal(tls_io_memory(b.io), 0);
	peer_free(&a);
	peer_free(&b);
	loop_free(loop);
}

static uint8_t
pattern(size_t i, bool server)
{
	uint32_t x = (uint32_t)i * 2654435761u + (server ? 0x9e3779b9u : 0);

	return (uint8_t)(x >> 13 ^ x >> 24);
}

/* bulk - send total bytes of the pattern, check what comes in against the peer's. */
static int
app_bulk(struct peer *p)
{
	char chunk[16384];
	const char *in;
	size_t len, n, i;
	int did = 0;

	if ((in = tls_io_in(p->io, &len)) != NULL) {
		for (i = 0; i < len; i++)
			if ((uint8_t)in[i] != pattern(p->recvd + i, !p->server))
				p->mismatch = true;
		p->recvd += len;
		tls_io_consume(p->io, len);
		did = 1;
	}
	while (p->sent < p->total && (n = tls_io_out_space(p->io)) > 0) {
		if (n > sizeof(chunk))
			n = sizeof(chunk);
		if (n > p->total - p->sent)
			n = p->total - p->sent;
		for (i = 0; i < n; i++)
			chunk[i] = (char)pattern(p->sent + i, p->server);
		assert_int_equal(tls_io_write(p->io, chunk, n), 0);
		p->sent += n;
		did = 1;
	}
	return did;
}

static bool
bulk_done(struct peer *a, struct peer *b)
{
	return a->dead || b->dead || (a->recvd >= BULK && b->recvd >= BULK);
}

static void
bulk_transfer(void **state)
{
	bool tls = *state != NULL;
	struct loop *loop = loop_new();
	struct peer a, b;
	int sv[2];

	pair(sv);
	peer_init(&a, loop, sv[0], false, app_bulk);
	peer_init(&b, loop, sv[1], true, app_bulk);
	a.total = b.total = BULK;
	if (tls) {
		assert_int_equal(tls_io_start_tls(a.io, env.client, false, "mx1.example"), 0);
		assert_int_equal(tls_io_start_tls(b.io, env.server, true, NULL), 0);
		assert_true(tls_io_is_tls(a.io));
		assert_false(tls_io_handshake_done(a.io));
	}
	assert_true(drive(loop, &a, &b, bulk_done));
	if (a.dead || b.dead)
		fail_msg("client: %s, server: %s", a.err, b.err);
	assert_int_equal(a.recvd, BULK);
	assert_int_equal(b.recvd, BULK);
	assert_false(a.mismatch);
	assert_false(b.mismatch);
	assert_int_equal(tls_io_handshake_done(a.io), tls);
	/* Bounded: never more than the three buffers, and nothing once idle. */
	assert_true(a.mem_max <= IN_MAX + OUT_MAX + TLS_IO_WIRE_MAX);
	assert_true(b.mem_max <= IN_MAX + OUT_MAX + TLS_IO_WIRE_MAX);
	assert_int_equal(tls_io_memory(a.io), 0);
	assert_int_equal(tls_io_memory(b.io), 0);
	peer_free(&a);
	peer_free(&b);
	loop_free(loop);
}

/* settle - pump both until nothing moves (no loop: for the short cases). */
static void
settle(struct tls_io *a, struct tls_io *b)
{
	for (int i = 0; i < 200; i++) {
		int ra = tls_io_pump(a), rb = tls_io_pump(b);

		if (ra <= 0 && rb <= 0)
			return;
		usleep(1000);
	}
}

/*
 * RFC 3207 section 5, CVE-2011-0411: plaintext after STARTTLS would be taken
 * as protected. Both directions: the mailer pipelining a command after its
 * STARTTLS, and a server sending bytes after its 220.
 */
static void
rfc3207_5_injection_refused(void **state)
{
	static const struct {
		const char *sent, *first;
		bool server;
	} cases[] = {
	    {"STARTTLS\r\nMAIL FROM:<evil@example>\r\n", "STARTTLS\r\n", true},
	    {"220 2.0.0 ready\r\n250 injected\r\n", "220 2.0.0 ready\r\n", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_io *us, *them;
		const char *line;
		size_t len;
		int sv[2];

		pair(sv);
		us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
		them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
		assert_int_equal(tls_io_write(them, cases[i].sent, strlen(cases[i].sent)), 0);
		settle(us, them);
		line = tls_io_line(us, &len, NULL);
		assert_non_null(line);
		assert_int_equal(len, strlen(cases[i].first));
		assert_memory_equal(line, cases[i].first, len);
		tls_io_consume(us, len);
		assert_int_equal(tls_io_start_tls(us, cases[i].server ? env.server : env.client,
		                                  cases[i].server, NULL),
		                 -1);
		assert_false(tls_io_is_tls(us));
		assert_string_equal(tls_io_error(us), "");
		/* Nothing was dropped: the caller still sees the injected bytes to report. */
		assert_non_null(tls_io_in(us, &len));
		assert_int_equal(len, strlen(cases[i].sent) - strlen(cases[i].first));
		tls_io_free(us);
		tls_io_free(them);
	}
}

/* Plaintext arriving after the handshake began is no ClientHello: the handshake fails. */
static void
rfc3207_5_plaintext_after_starttls_fails(void **state)
{
	struct tls_io *srv, *cl;
	int sv[2], r = 0;

	(void)state;
	pair(sv);
	srv = tls_io_new(sv[0], IN_MAX, OUT_MAX);
	cl = tls_io_new(sv[1], IN_MAX, OUT_MAX);
	assert_int_equal(tls_io_start_tls(srv, env.server, true, NULL), 0);
	assert_int_equal(tls_io_events(srv), LOOP_READ);
	assert_int_equal(tls_io_write(cl, "MAIL FROM:<evil@example>\r\n", 26), 0);
	for (int i = 0; i < 100 && r >= 0; i++) {
		tls_io_pump(cl);
		r = tls_io_pump(srv);
	}
	assert_true(r < 0);
	assert_int_equal(strncmp(tls_io_error(srv), "tls: ", 5), 0);
	assert_int_equal(tls_io_events(srv), 0);
	assert_int_equal(tls_io_pump(srv), -1);
	tls_io_free(srv);
	tls_io_free(cl);
}

/* tcp_pair - a connected TCP pair on 127.0.0.1 (a reset needs TCP). */
static void
tcp_pair(int sv[2])
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	int l;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((l = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &slen), 0);
	assert_true((sv[0] = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(sv[0], (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_true((sv[1] = accept(l, NULL, NULL)) >= 0);
	close(l);
}

static void
abort_close(struct tls_io *io)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	assert_int_equal(setsockopt(tls_io_fd(io), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	tls_io_free(io);
}

/* A reset peer surfaces as the error "reset", in clear and under TLS. */
static void
peer_reset(void **state)
{
	for (int tls = 0; tls <= 1; tls++) {
		struct tls_io *us, *them;
		int sv[2], r = 0;
		size_t len;

		(void)state;
		tcp_pair(sv);
		us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
		them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
		if (tls) {
			assert_int_equal(tls_io_start_tls(us, env.client, false, NULL), 0);
			assert_int_equal(tls_io_start_tls(them, env.server, true, NULL), 0);
			for (int i = 0;
			     i < 200 && !(tls_io_handshake_done(us) && tls_io_handshake_done(them));
			     i++) {
				assert_true(tls_io_pump(us) >= 0);
				assert_true(tls_io_pump(them) >= 0);
				usleep(500);
			}
			assert_true(tls_io_handshake_done(us));
		}
		assert_int_equal(tls_io_write(them, "hello\r\n", 7), 0);
		settle(us, them);
		assert_non_null(tls_io_in(us, &len));
		assert_int_equal(len, 7);
		abort_close(them);
		for (int i = 0; i < 200 && r >= 0; i++) {
			r = tls_io_pump(us);
			usleep(500);
		}
		assert_true(r < 0);
		if (strcmp(tls_io_error(us), "reset") != 0)
			fail_msg("tls=%d: error \"%s\", want \"reset\"", tls, tls_io_error(us));
		tls_io_free(us);
	}
}

/* A graceful close: output flushed, close_notify, then the peer sees the end. */
static void
shutdown_then_eof(void **state)
{
	for (int tls = 0; tls <= 1; tls++) {
		struct tls_io *us, *them;
		const char *line;
		int sv[2], r = 0, flags;
		size_t len;

		(void)state;
		pair(sv);
		us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
		them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
		if (tls) {
			assert_int_equal(tls_io_start_tls(us, env.server, true, NULL), 0);
			assert_int_equal(tls_io_start_tls(them, env.client, false, NULL), 0);
		}
		assert_int_equal(tls_io_write(us, "221 bye\r\npartial", 16), 0);
		tls_io_shutdown(us);
		assert_int_equal(tls_io_write(us, "more", 4), -1);
		assert_int_equal(tls_io_out_space(us), 0);
		for (int i = 0; i < 200 && !tls_io_shutdown_done(us); i++) {
			assert_true(tls_io_pump(us) >= 0);
			assert_true(tls_io_pump(them) >= 0);
		}
		assert_true(tls_io_shutdown_done(us));
		assert_int_equal(tls_io_out_pending(us), 0);
		settle(us, them);
		line = tls_io_line(them, &len, &flags);
		assert_non_null(line);
		assert_int_equal(len, 9);
		assert_int_equal(flags, 0);
		tls_io_consume(them, len);
		assert_false(tls_io_eof(them));
		/* The unterminated rest comes with its flag once the peer closed. */
		line = tls_io_line(them, &len, &flags);
		assert_non_null(line);
		assert_int_equal(flags, TLS_IO_LINE_NO_EOL);
		assert_memory_equal(line, "partial", 7);
		assert_int_equal(len, 7);
		tls_io_consume(them, len);
		assert_true(tls_io_eof(them));
		assert_int_equal(tls_io_events(them) & LOOP_READ, 0);
		r = tls_io_pump(them);
		assert_int_equal(r, -1);
		assert_string_equal(tls_io_error(them), "eof");
		tls_io_free(us);
		tls_io_free(them);
	}
}

/* RFC 5321 section 4.5.3.1: bounded lines; an overlong one is flagged, not grown. */
static void
rfc5321_4_5_3_1_line_too_long(void **state)
{
	char big[100];
	struct tls_io *us, *them;
	const char *line;
	int sv[2], flags;
	size_t len;

	(void)state;
	pair(sv);
	us = tls_io_new(sv[0], 64, 32);
	them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
	memset(big, 'A', sizeof(big));
	assert_int_equal(tls_io_write(them, "short\n", 6), 0);
	assert_int_equal(tls_io_write(them, big, sizeof(big)), 0);
	settle(us, them);
	line = tls_io_line(us, &len, &flags);
	assert_non_null(line);
	assert_int_equal(len, 6);
	assert_int_equal(flags, 0);
	tls_io_consume(us, len);
	/* The buffer refills to its bound and stops reading (backpressure). */
	settle(us, them);
	line = tls_io_line(us, &len, &flags);
	assert_non_null(line);
	assert_int_equal(len, 64);
	assert_int_equal(flags, TLS_IO_LINE_TOO_LONG);
	assert_int_equal(tls_io_events(us) & LOOP_READ, 0);
	assert_true(tls_io_memory(us) <= 64);
	tls_io_consume(us, 1000); /* more than held: all */
	assert_null(tls_io_in(us, &len));
	assert_int_equal(len, 0);
	assert_int_equal(tls_io_memory(us), 0);
	/* A partial line is not a line yet. */
	settle(us, them);
	assert_null(tls_io_line(us, &len, &flags));
	assert_int_equal(flags, 0);

	/* The output bound: a write that does not fit is refused whole. */
	assert_int_equal(tls_io_out_space(us), 32);
	assert_int_equal(tls_io_write(us, big, 33), -1);
	assert_int_equal(tls_io_write(us, big, 30), 0);
	assert_int_equal(tls_io_out_space(us), 2);
	assert_int_equal(tls_io_write(us, big, 3), -1);
	assert_int_equal(tls_io_out_pending(us), 30);
	tls_io_free(us);
	tls_io_free(them);
	tls_io_free(NULL);
}

/* handshake - pump both ends until their TLS handshakes are done. */
static void
handshake(struct tls_io *client, struct tls_io *server, SSL_CTX *server_ctx)
{
	assert_int_equal(tls_io_start_tls(client, env.client, false, "mx1.example"), 0);
	assert_int_equal(tls_io_start_tls(server, server_ctx, true, NULL), 0);
	for (int i = 0;
	     i < 400 && !(tls_io_handshake_done(client) && tls_io_handshake_done(server)); i++) {
		assert_true(tls_io_pump(client) >= 0);
		assert_true(tls_io_pump(server) >= 0);
		usleep(200);
	}
	assert_true(tls_io_handshake_done(client) && tls_io_handshake_done(server));
}

/* readable - wait up to ms for fd to be readable. */
static bool
readable(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, ms) == 1;
}

/*
 * RFC 8446 section 4.6.1: a TLS 1.3 server sends its session tickets after
 * the handshake, typically right before its first reply (Postfix: before the
 * answer to the EHLO that follows STARTTLS). Tickets and reply arrive
 * together: one socket event and one pump must deliver the reply, with
 * the tickets consumed on the way.
 */
static void
rfc8446_4_6_1_tickets_then_reply_one_pump(void **state)
{
	struct tls_io *us, *them;
	const char *line;
	SSL_SESSION *sess;
	int sv[2];
	size_t len;

	(void)state;
	pair(sv);
	us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
	them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
	assert_non_null(us);
	assert_non_null(them);
	handshake(us, them, env.ticket_server);
	assert_int_equal(SSL_version(tls_io_ssl(us)), TLS1_3_VERSION);
	assert_int_equal(tls_io_write(them, "250 ok\r\n", 8), 0);
	for (int i = 0; i < 100 && tls_io_out_pending(them) > 0; i++)
		assert_true(tls_io_pump(them) >= 0);
	assert_int_equal(tls_io_out_pending(them), 0);
	assert_true(readable(sv[0], 1000));
	assert_true(tls_io_pump(us) > 0);
	line = tls_io_line(us, &len, NULL);
	assert_non_null(line);
	assert_int_equal(len, 8);
	assert_memory_equal(line, "250 ok\r\n", 8);
	/* The tickets were read in the same pump, not left for a later event. */
	sess = SSL_get_session(tls_io_ssl(us));
	assert_non_null(sess);
	assert_true(SSL_SESSION_is_resumable(sess));
	assert_int_equal(SSL_pending(tls_io_ssl(us)), 0);
	tls_io_free(us);
	tls_io_free(them);
}

/* outq - bytes the kernel holds for fd: not yet sent or not yet acknowledged. */
static int
outq(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, SIOCOUTQ, &n), 0);
	return n;
}

/* elapsed_ms - milliseconds since *t0. */
static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * RFC 1122 section 4.2.3.2 allows an ACK to be delayed (Linux: 40 ms and
 * more), RFC 896 has the sender hold small writes while data is
 * unacknowledged: together they stalled every session for ~40 ms (tickets
 * from Postfix left unacknowledged, its EHLO reply held behind them). Once
 * the endpoint has read everything and has nothing to send, the peer's
 * bytes must be acknowledged at once. The peer here keeps Nagle on and the
 * endpoint is first brought into the kernel's interactive (delayed-ACK)
 * mode by a few request/answer rounds.
 */
static void
rfc1122_4_2_3_2_read_acknowledged_at_once(void **state)
{
	struct tls_io *us;
	struct timespec t0;
	char b[64];
	int sv[2];
	size_t len;
	double ms;

	(void)state;
	tcp_pair(sv);
	us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
	assert_non_null(us);
	for (int round = 0; round < 6; round++) {
		assert_int_equal(send(sv[1], "q\r\n", 3, 0), 3);
		assert_true(readable(sv[0], 1000));
		assert_true(tls_io_pump(us) > 0);
		tls_io_consume(us, 3);
		assert_int_equal(tls_io_write(us, "a\r\n", 3), 0);
		assert_true(tls_io_pump(us) > 0);
		assert_true(readable(sv[1], 1000));
		assert_int_equal(recv(sv[1], b, sizeof(b), 0), 3);
	}
	/* The "tickets": read by the endpoint, which has nothing to answer. */
	assert_int_equal(send(sv[1], "t\r\n", 3, 0), 3);
	assert_true(readable(sv[0], 1000));
	assert_true(tls_io_pump(us) > 0);
	assert_non_null(tls_io_in(us, &len));
	assert_int_equal(len, 3);
	assert_int_equal(tls_io_out_pending(us), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (outq(sv[1]) > 0 && elapsed_ms(&t0) < 100)
		usleep(200);
	ms = elapsed_ms(&t0);
	if (ms >= 20)
		fail_msg("the peer's bytes were acknowledged after %.1f ms", ms);
	tls_io_free(us);
	close(sv[1]);
}

/*
 * Buffers: kept while the owner marks the endpoint active (no allocation per
 * read or write), released when it becomes idle and from then on whenever
 * they empty; OpenSSL's record buffers follow the same rule.
 */
static void
buffers_kept_while_active(void **state)
{
	for (int tls = 0; tls <= 1; tls++) {
		struct tls_io *us, *them;
		int sv[2];
		size_t len;

		(void)state;
		pair(sv);
		us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
		them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
		if (tls) {
			handshake(us, them, env.server);
			assert_true(SSL_get_mode(tls_io_ssl(us)) & SSL_MODE_RELEASE_BUFFERS);
		}
		tls_io_set_active(us, true);
		if (tls)
			assert_false(SSL_get_mode(tls_io_ssl(us)) & SSL_MODE_RELEASE_BUFFERS);
		/* Both directions once: the buffers stay after they empty. */
		assert_int_equal(tls_io_write(us, "MAIL FROM:<>\r\n", 14), 0);
		assert_int_equal(tls_io_write(them, "250 ok\r\n", 8), 0);
		settle(us, them);
		assert_int_equal(tls_io_out_pending(us), 0);
		assert_non_null(tls_io_in(us, &len));
		assert_int_equal(len, 8);
		tls_io_consume(us, len);
		assert_null(tls_io_in(us, &len));
		assert_true(tls_io_memory(us) > 0);
		/* Reused, not re-allocated: the capacity does not move. */
		size_t held = tls_io_memory(us);
		assert_int_equal(tls_io_write(them, "250 ok\r\n", 8), 0);
		settle(us, them);
		tls_io_consume(us, 8);
		assert_int_equal(tls_io_memory(us), held);
		/* Idle: released now, and again after the next exchange. */
		tls_io_set_active(us, false);
		assert_int_equal(tls_io_memory(us), 0);
		if (tls)
			assert_true(SSL_get_mode(tls_io_ssl(us)) & SSL_MODE_RELEASE_BUFFERS);
		assert_int_equal(tls_io_write(them, "250 ok\r\n", 8), 0);
		settle(us, them);
		assert_true(tls_io_memory(us) > 0);
		tls_io_consume(us, 8);
		assert_int_equal(tls_io_memory(us), 0);
		tls_io_free(us);
		tls_io_free(them);
	}
}

/* send_all - them queues text and pumps until it is out and us can read it. */
static void
send_all(struct tls_io *them, int us_fd, const char *text)
{
	assert_int_equal(tls_io_write(them, text, strlen(text)), 0);
	for (int i = 0; i < 200 && tls_io_out_pending(them) > 0; i++)
		assert_true(tls_io_pump(them) >= 0);
	assert_int_equal(tls_io_out_pending(them), 0);
	assert_true(readable(us_fd, 2000));
}

/*
 * arrives_when_readable - text sent to us is not read by a pump, nor after
 * a writable report, but once the socket is reported readable.
 */
static void
arrives_when_readable(struct tls_io *us, struct tls_io *them, int us_fd, const char *text)
{
	size_t len;

	send_all(them, us_fd, text);
	assert_int_equal(tls_io_pump(us), 0);
	assert_null(tls_io_in(us, &len));
	tls_io_events_seen(us, LOOP_WRITE);
	assert_int_equal(tls_io_pump(us), 0);
	assert_null(tls_io_in(us, &len));
	tls_io_events_seen(us, LOOP_READ);
	assert_true(tls_io_pump(us) > 0);
	assert_non_null(tls_io_in(us, &len));
	assert_int_equal(len, strlen(text));
}

/*
 * reads_when_reported_readable - an endpoint told its loop events reads
 * again, after a read found its socket empty, only once the loop reports
 * the socket readable: a pump after an event on the other leg costs no
 * system call. The bytes wait in the socket meanwhile, nothing is lost.
 */
static void
reads_when_reported_readable(void **state)
{
	for (int tls = 0; tls <= 1; tls++) {
		struct tls_io *us, *them;
		int sv[2];
		size_t len;

		(void)state;
		pair(sv);
		us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
		them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
		if (tls)
			handshake(us, them, env.server);
		send_all(them, sv[0], "250 one\r\n");
		tls_io_events_seen(us, LOOP_READ);
		assert_true(tls_io_pump(us) > 0);
		assert_non_null(tls_io_in(us, &len));
		assert_int_equal(len, 9);
		tls_io_consume(us, len);

		/* That read ended on an empty socket: the next bytes wait for an event. */
		arrives_when_readable(us, them, sv[0], "250 two\r\n");
		tls_io_free(us);
		tls_io_free(them);
	}
}

/*
 * input_bound_follows_the_owner - tls_io_set_in_max() widens the input
 * window (message data) and narrows it again (command lines): above the
 * bound nothing more is read or asked for until the input is consumed.
 */
static void
input_bound_follows_the_owner(void **state)
{
	struct tls_io *us, *them;
	int sv[2];
	size_t len;

	(void)state;
	pair(sv);
	us = tls_io_new(sv[0], 16, OUT_MAX);
	them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
	send_all(them, sv[0], "0123456789abcdef0123456789abcdef01234567");
	assert_true(tls_io_pump(us) > 0);
	assert_non_null(tls_io_in(us, &len));
	assert_int_equal(len, 16);
	assert_int_equal(tls_io_events(us) & LOOP_READ, 0);
	assert_int_equal(tls_io_set_in_max(us, 64), 0);
	assert_true(tls_io_events(us) & LOOP_READ);
	assert_true(tls_io_pump(us) > 0);
	assert_non_null(tls_io_in(us, &len));
	assert_int_equal(len, 40);
	/* Narrowed below what is held: nothing is read until it is consumed. */
	assert_int_equal(tls_io_set_in_max(us, 8), 0);
	send_all(them, sv[0], "more\r\n");
	assert_int_equal(tls_io_pump(us), 0);
	assert_int_equal(tls_io_events(us) & LOOP_READ, 0);
	tls_io_consume(us, 40);
	assert_int_equal(tls_io_memory(us), 0);
	assert_true(tls_io_pump(us) > 0);
	assert_non_null(tls_io_in(us, &len));
	assert_int_equal(len, 6);
	assert_int_equal(tls_io_set_in_max(us, 0), -1);
	tls_io_free(us);
	tls_io_free(them);
}

/*
 * tracking_starts_before_any_event - tls_io_events_seen(io, 0) right after
 * the socket is registered: bytes that are already there wait for the
 * loop's first readable report instead of costing a read on every pump.
 */
static void
tracking_starts_before_any_event(void **state)
{
	struct tls_io *us, *them;
	int sv[2];

	(void)state;
	pair(sv);
	us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
	them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
	tls_io_events_seen(us, 0);
	arrives_when_readable(us, them, sv[0], "EHLO early.example\r\n");
	tls_io_free(us);
	tls_io_free(them);
}

/*
 * records_held_by_openssl_are_delivered - OpenSSL reads ahead: one read()
 * may take several records off the socket while the input buffer has room
 * for part of the first. Once the owner consumes, the rest comes with the
 * next pump, although the socket is empty and the loop reports nothing.
 */
static void
records_held_by_openssl_are_delivered(void **state)
{
	static const char *const parts[] = {"0123456789abcdef", "0123456789abcdef", "01234567"};
	struct tls_io *us, *them;
	int sv[2];
	size_t len, total = 0;

	(void)state;
	pair(sv);
	us = tls_io_new(sv[0], 16, OUT_MAX);
	them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
	handshake(us, them, env.server);
	tls_io_events_seen(us, 0);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		send_all(them, sv[0], parts[i]);
	tls_io_events_seen(us, LOOP_READ);
	for (int i = 0; i < 3; i++) {
		assert_true(tls_io_pump(us) > 0);
		assert_non_null(tls_io_in(us, &len));
		assert_int_equal(len, i < 2 ? 16 : 8);
		total += len;
		tls_io_consume(us, len);
	}
	assert_int_equal(total, 40);
	assert_int_equal(tls_io_pump(us), 0);
	assert_null(tls_io_in(us, &len));
	tls_io_free(us);
	tls_io_free(them);
}

/* take_all - pump io and append its input to got[0 .. size) after total; the new total. */
static size_t
take_all(struct tls_io *io, char *got, size_t size, size_t total)
{
	const char *in;
	size_t len;

	assert_true(tls_io_pump(io) >= 0);
	if ((in = tls_io_in(io, &len)) != NULL) {
		assert_true(total + len <= size);
		memcpy(got + total, in, len);
		total += len;
		tls_io_consume(io, len);
	}
	return total;
}

/*
 * records_wait_for_writable - TLS records are sent in batches: records that
 * a full socket did not take stay queued (tls_io_out_pending, LOOP_WRITE
 * asked for) and, once the endpoint is told its events, wait until the
 * socket is reported writable; no system call is spent on a socket known
 * to be full. A close requested meanwhile puts the close_notify on the wire
 * after the last record, never before it.
 */
static void
records_wait_for_writable(void **state)
{
	static char data[60000], got[60000];
	struct tls_io *us, *them;
	size_t pending, total = 0;
	int sv[2], small = 4096;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	pair(sv);
	us = tls_io_new(sv[0], IN_MAX, OUT_MAX);
	them = tls_io_new(sv[1], IN_MAX, OUT_MAX);
	handshake(them, us, env.server);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	tls_io_events_seen(us, 0);
	assert_int_equal(tls_io_write(us, data, sizeof(data)), 0);
	tls_io_shutdown(us);
	assert_true(tls_io_pump(us) > 0);
	/* The socket took part; the rest waits, and the close waits behind it. */
	pending = tls_io_out_pending(us);
	assert_true(pending > 0);
	assert_true(tls_io_events(us) & LOOP_WRITE);
	assert_false(tls_io_shutdown_done(us));
	for (int i = 0; i < 2000 && !tls_io_shutdown_done(us); i++) {
		/* The peer drains; without a writable report nothing is sent. */
		total = take_all(them, got, sizeof(got), total);
		assert_true(tls_io_pump(us) >= 0);
		assert_int_equal(tls_io_out_pending(us), pending);
		tls_io_events_seen(us, LOOP_WRITE);
		assert_true(tls_io_pump(us) >= 0);
		assert_true(tls_io_out_pending(us) <= pending);
		pending = tls_io_out_pending(us);
		if (pending > 0)
			assert_true(tls_io_events(us) & LOOP_WRITE);
	}
	assert_true(tls_io_shutdown_done(us));
	assert_int_equal(tls_io_out_pending(us), 0);
	for (int i = 0; i < 200 && !tls_io_eof(them); i++)
		total = take_all(them, got, sizeof(got), total);
	assert_int_equal(total, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	/* A TLS close, not a bare FIN: the close_notify came after every record. */
	assert_true(tls_io_eof(them));
	assert_true(SSL_get_shutdown(tls_io_ssl(them)) & SSL_RECEIVED_SHUTDOWN);
	tls_io_free(us);
	tls_io_free(them);
}

int
main(void)
{
	static const int on = 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(plaintext_echo),
	    cmocka_unit_test(rfc3207_4_starttls_upgrade_then_echo),
	    cmocka_unit_test_prestate(bulk_transfer, NULL),
	    cmocka_unit_test_prestate(bulk_transfer, (void *)&on),
	    cmocka_unit_test(rfc3207_5_injection_refused),
	    cmocka_unit_test(rfc3207_5_plaintext_after_starttls_fails),
	    cmocka_unit_test(peer_reset),
	    cmocka_unit_test(shutdown_then_eof),
	    cmocka_unit_test(rfc5321_4_5_3_1_line_too_long),
	    cmocka_unit_test(rfc8446_4_6_1_tickets_then_reply_one_pump),
	    cmocka_unit_test(rfc1122_4_2_3_2_read_acknowledged_at_once),
	    cmocka_unit_test(buffers_kept_while_active),
	    cmocka_unit_test(reads_when_reported_readable),
	    cmocka_unit_test(input_bound_follows_the_owner),
	    cmocka_unit_test(records_wait_for_writable),
	    cmocka_unit_test(tracking_starts_before_any_event),
	    cmocka_unit_test(records_held_by_openssl_are_delivered),
	};

	return cmocka_run_group_tests_name("tls_io", tests, setup, teardown);
}
