// sources: proxy/session.c proxy/relay.c proxy/upstream.c proxy/txn_report.c proxy/relay_events.c proxy/smtp_cmd.c proxy/smtp_reply.c
// sources: proxy/smtp_data.c tls/tls_io.c tls/tls_ctx.c tls/tls_resume.c tls/tls_verify.c tests/tls/testca.c
// sources: tests/proxy/fake_sts_engine.c core/loop.c core/log.c core/evlog.c core/util.c
// sources: core/types.c core/conf.c
// sources: policy/sts_report.c
/*
 * test_session.c - whole SMTP sessions through the proxy, on the real
 * event loop, with both sides faked: the mailer is the test's end of a
 * socketpair (scripted lines in, replies checked), the destination MX is a
 * scripted SMTP server on 127.0.0.1 in a thread (real OpenSSL handshake
 * for STARTTLS, every received line recorded), and the policy engine is
 * tests/proxy/fake_sts_engine.c. Events are read back from the event file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "core/conf.h"
#include "core/evlog.h"
#include "core/log.h"
#include "core/loop.h"
#include "policy/sts_report.h"
#include "proxy/session.h"
#include "tests/proxy/fake_sts_engine.h"
#include "tests/tls/testca.h"
#include "tls/tls_ctx.h"

/* --- the fake destination MX ------------------------------------------------ */

enum data_mode {
	DATA_NORMAL = 0,
	DATA_RESET,    /* reset the connection after the first data bytes */
	DATA_NO_REPLY, /* never answer the final dot */
	DATA_EARLY,    /* start a reply ("250-early") before the final dot arrives */
};

struct fake_mx {
	/* behaviour, set before the session starts */
	bool starttls;              /* offer STARTTLS (before TLS) */
	bool pipelining;            /* offer PIPELINING (after TLS when starttls) */
	bool ehlo_refused;          /* 502 to EHLO */
	bool mangled;               /* an "XXXXXXXA" line where STARTTLS would be */
	bool mail_refused;          /* 550 to MAIL */
	const char *banner;         /* default "220 mx.example.net ESMTP" */
	const char *starttls_reply; /* default "220 2.0.0 Ready" */
	const char *after_220;      /* bytes injected behind the 220 */
	enum data_mode data_mode;
	bool tls_broken; /* answer the ClientHello with junk, then take a second connection */
	/* On the first connection, send the whole server handshake flight and
	 * cut the connection in the same breath (an on-path attacker relaying
	 * the real flight with a FIN or RST behind it), then take a second
	 * connection. */
	enum { CUT_NONE = 0, CUT_FIN, CUT_RST } hs_cut;
	/* what happened, read after the thread ended */
	char log[16384]; /* command lines received, CRLF kept */
	size_t log_len;
	char data[65536]; /* message data received */
	size_t data_len;
	bool got_dot;
	bool tls_done;
	/* private */
	int lfd;
	uint16_t port;
	pthread_t th;
	bool running;
	int fd;
	SSL *ssl;
	char in[8192];
	size_t in_len;
};

static struct {
	struct testca *ca;
	SSL_CTX *mx_server;   /* the fake MX's certificate mx.example.net */
	SSL_CTX *upstream;    /* the proxy's client context, trusting the test CA */
	SSL_CTX *client_side; /* the proxy's server context for client STARTTLS */
	SSL_CTX *mailer;      /* the mailer's client context, trusting the test CA */
	char events[256];
	char dir[128];
} env;

/* The test in progress. */
static struct {
	struct loop *loop;
	struct conf conf;
	struct sts_engine *engine;
	struct session_stats stats;
	struct session_ctx ctx;
	struct fake_mx mx;
	int cfd;          /* the mailer's end */
	SSL *cssl;        /* the mailer's TLS session after its STARTTLS; NULL: plaintext */
	char cbuf[65536]; /* replies received, not yet taken */
	size_t clen;
	bool ceof;
	long ev_off; /* event file size at the start */
	unsigned ended;
} t;

static int
mx_write(struct fake_mx *m, const char *s, size_t n)
{
	if (m->ssl != NULL)
		return SSL_write(m->ssl, s, (int)n) == (int)n ? 0 : -1;
	while (n > 0) {
		ssize_t w = send(m->fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
mx_puts(struct fake_mx *m, const char *s)
{
	return mx_write(m, s, strlen(s));
}

/* mx_fill - read more bytes; -1 on EOF, error or the 5 s receive timeout. */
static int
mx_fill(struct fake_mx *m)
{
	int n;

	if (m->in_len == sizeof(m->in))
		return -1;
	if (m->ssl != NULL)
		n = SSL_read(m->ssl, m->in + m->in_len, (int)(sizeof(m->in) - m->in_len));
	else
		n = (int)recv(m->fd, m->in + m->in_len, sizeof(m->in) - m->in_len, 0);
	if (n <= 0)
		return -1;
	m->in_len += (size_t)n;
	return 0;
}

/* mx_line - the next line (CRLF kept) into out; -1 at the end. */
static int
mx_line(struct fake_mx *m, char *out, size_t outlen)
{
	char *lf;
	size_t n;

	while ((lf = memchr(m->in, '\n', m->in_len)) == NULL)
		if (mx_fill(m) < 0)
			return -1;
	n = (size_t)(lf - m->in) + 1;
	if (n >= outlen)
		return -1;
	memcpy(out, m->in, n);
	out[n] = '\0';
	memmove(m->in, m->in + n, m->in_len - n);
	m->in_len -= n;
	if (m->log_len + n < sizeof(m->log)) {
		memcpy(m->log + m->log_len, out, n);
		m->log_len += n;
	}
	return 0;
}

/* mx_data - read message data up to CRLF.CRLF; -1 if the connection ends first. */
static int
mx_data(struct fake_mx *m)
{
	for (;;) {
		while (m->in_len > 0 && m->data_len < sizeof(m->data)) {
			m->data[m->data_len++] = m->in[0];
			memmove(m->in, m->in + 1, --m->in_len);
			if ((m->data_len == 3 && memcmp(m->data, ".\r\n", 3) == 0) ||
			    (m->data_len >= 5 &&
			     memcmp(m->data + m->data_len - 5, "\r\n.\r\n", 5) == 0)) {
				m->got_dot = true;
				return 0;
			}
		}
		if (m->data_mode == DATA_RESET && m->data_len > 0) {
			struct linger lg = {1, 0};
			setsockopt(m->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			return -1;
		}
		if (mx_fill(m) < 0)
			return -1;
	}
}

static void
mx_ehlo(struct fake_mx *m)
{
	mx_puts(m, "250-mx.example.net hello\r\n");
	if (m->starttls && m->ssl == NULL)
		mx_puts(m, "250-STARTTLS\r\n");
	if (m->mangled)
		mx_puts(m, "250-XXXXXXXA\r\n");
	if (m->pipelining && (m->ssl != NULL || !m->starttls))
		mx_puts(m, "250-PIPELINING\r\n");
	mx_puts(m, "250-CHUNKING\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n");
}

/*
 * mx_cut_after_flight - run the server side of the handshake through memory
 * BIOs until its flight (ServerHello to Finished) is ready, send it in one
 * write and cut the connection right behind it, before the client's
 * Finished is read.
 */
static void
mx_cut_after_flight(struct fake_mx *m)
{
	SSL *ssl = SSL_new(env.mx_server);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	char buf[16384];
	ssize_t n;

	SSL_set_bio(ssl, rb, wb);
	SSL_set_accept_state(ssl);
	while (BIO_pending(wb) == 0) {
		if (SSL_do_handshake(ssl) == 1 || BIO_pending(wb) > 0)
			break;
		if ((n = recv(m->fd, buf, sizeof(buf), 0)) <= 0)
			break;
		BIO_write(rb, buf, (int)n);
	}
	n = BIO_read(wb, buf, sizeof(buf));
	if (n > 0)
		(void)send(m->fd, buf, (size_t)n, MSG_NOSIGNAL);
	if (m->hs_cut == CUT_RST) {
		struct linger lg = {1, 0};
		setsockopt(m->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else {
		shutdown(m->fd, SHUT_WR);
	}
	SSL_free(ssl);
}

/* mx_serve - one SMTP connection; true when the proxy should connect again. */
static bool
mx_serve(struct fake_mx *m, bool first)
{
	char line[2048];
	bool again = false;

	mx_puts(m, m->banner ? m->banner : "220 mx.example.net ESMTP\r\n");
	while (mx_line(m, line, sizeof(line)) == 0) {
		if (strncasecmp(line, "EHLO", 4) == 0) {
			if (m->ehlo_refused)
				mx_puts(m, "502 5.5.2 EHLO not implemented\r\n");
			else
				mx_ehlo(m);
		} else if (strncasecmp(line, "HELO", 4) == 0) {
			mx_puts(m, "250 mx.example.net\r\n");
		} else if (strncasecmp(line, "STARTTLS", 8) == 0) {
			const char *r =
			    m->starttls_reply ? m->starttls_reply : "220 2.0.0 Ready\r\n";
			char buf[512];

			snprintf(buf, sizeof(buf), "%s%s", r, m->after_220 ? m->after_220 : "");
			mx_puts(m, buf);
			if (strncmp(r, "220", 3) != 0)
				continue;
			if (m->after_220 != NULL) {
				/* wait for the proxy to hang up */
				while (mx_fill(m) == 0)
					m->in_len = 0;
				break;
			}
			if (m->hs_cut != CUT_NONE && first) {
				mx_cut_after_flight(m);
				again = true;
				break;
			}
			if (m->tls_broken && first) {
				mx_fill(m); /* the ClientHello */
				m->in_len = 0;
				mx_puts(m, "HTTP/1.0 400 Bad Request\r\n\r\n");
				again = true;
				break;
			}
			m->ssl = SSL_new(env.mx_server);
			SSL_set_fd(m->ssl, m->fd);
			if (SSL_accept(m->ssl) != 1)
				break;
			m->tls_done = true;
		} else if (strncasecmp(line, "MAIL", 4) == 0) {
			mx_puts(m, m->mail_refused ? "550 5.7.1 Sender refused\r\n"
			                           : "250 2.1.0 Sender ok\r\n");
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			mx_puts(m, "250 2.1.5 Recipient ok\r\n");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			mx_puts(m, "354 End data with <CR><LF>.<CR><LF>\r\n");
			if (m->data_mode == DATA_EARLY)
				mx_puts(m, "250-early\r\n");
			if (mx_data(m) < 0)
				break;
			if (m->data_mode == DATA_NO_REPLY) {
				while (mx_fill(m) == 0)
					m->in_len = 0;
				break;
			}
			mx_puts(m, "250 2.0.0 Ok: queued as 4711\r\n");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			mx_puts(m, "221 2.0.0 Bye\r\n");
			break;
		} else if (strncasecmp(line, "RSET", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0) {
			mx_puts(m, "250 2.0.0 Ok\r\n");
		} else {
			mx_puts(m, "502 5.5.2 Command not recognized\r\n");
		}
	}
	return again;
}

static void *
mx_thread(void *arg)
{
	struct fake_mx *m = arg;
	struct timeval tv = {5, 0};
	struct pollfd pfd = {.fd = m->lfd, .events = POLLIN};
	bool first = true, again;

	do {
		if (poll(&pfd, 1, 5000) != 1 || (m->fd = accept(m->lfd, NULL, NULL)) < 0)
			return NULL;
		setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		m->in_len = 0;
		again = mx_serve(m, first);
		first = false;
		if (m->ssl != NULL) {
			SSL_free(m->ssl);
			m->ssl = NULL;
		}
		close(m->fd);
	} while (again);
	return NULL;
}

/* mx_start - listen on 127.0.0.1 and serve one connection in a thread. */
static void
mx_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct fake_mx *m = &t.mx;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	assert_int_equal(bind(m->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(m->lfd, 4), 0);
	assert_int_equal(getsockname(m->lfd, (struct sockaddr *)&sin, &len), 0);
	m->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&m->th, NULL, mx_thread, m), 0);
	m->running = true;
}

/* mx_start6 - as mx_start(), on [::1]; false when the host has no IPv6 loopback. */
static bool
mx_start6(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t len = sizeof(sin6);
	struct fake_mx *m = &t.mx;

	if ((m->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return false;
	if (bind(m->lfd, (struct sockaddr *)&sin6, sizeof(sin6)) != 0) {
		close(m->lfd);
		return false;
	}
	assert_int_equal(listen(m->lfd, 4), 0);
	assert_int_equal(getsockname(m->lfd, (struct sockaddr *)&sin6, &len), 0);
	m->port = ntohs(sin6.sin6_port);
	assert_int_equal(pthread_create(&m->th, NULL, mx_thread, m), 0);
	m->running = true;
	return true;
}

/* mx_join - wait for the fake MX to finish (its reads time out after 5 s). */
static void
mx_join(void)
{
	if (!t.mx.running)
		return;
	pthread_join(t.mx.th, NULL);
	close(t.mx.lfd);
	t.mx.running = false;
}

/* --- the mailer side --------------------------------------------------------- */

static void
on_end(void *arg)
{
	(void)arg;
	t.ended++;
}

/* start - the fake MX runs; a session is started toward it (or toward port). */
static void
start_at(uint16_t port)
{
	struct sockaddr_in client = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
	int sv[2];

	inet_pton(AF_INET, "10.0.0.1", &client.sin_addr);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t.cfd = sv[1];
	fcntl(t.cfd, F_SETFL, fcntl(t.cfd, F_GETFL) | O_NONBLOCK);
	assert_int_equal(session_start(&t.ctx, sv[0], (struct sockaddr *)&client, sizeof(client),
	                               (struct sockaddr *)&dst, sizeof(dst)),
	                 0);
}

/* start6_at - a session whose original destination is [::1]:port. */
static void
start6_at(uint16_t port)
{
	struct sockaddr_in6 client = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};
	struct sockaddr_in6 dst = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	int sv[2];

	inet_pton(AF_INET6, "2001:db8::1", &client.sin6_addr);
	dst.sin6_addr = in6addr_loopback;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t.cfd = sv[1];
	fcntl(t.cfd, F_SETFL, fcntl(t.cfd, F_GETFL) | O_NONBLOCK);
	assert_int_equal(session_start(&t.ctx, sv[0], (struct sockaddr *)&client, sizeof(client),
	                               (struct sockaddr *)&dst, sizeof(dst)),
	                 0);
}

static void
start(void)
{
	mx_start();
	start_at(t.mx.port);
}

static void
csend(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w;

		if (t.cssl != NULL) {
			int k = SSL_write(t.cssl, s, (int)n);
			int e = SSL_get_error(t.cssl, k);

			if (k <= 0 && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)) {
				loop_once(t.loop, 10);
				continue;
			}
			w = k;
			assert_true(w > 0);
			s += w;
			n -= (size_t)w;
			continue;
		}
		w = write(t.cfd, s, n);
		if (w < 0 && errno == EAGAIN) {
			loop_once(t.loop, 10);
			continue;
		}
		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

static void
csends(const char *s)
{
	csend(s, strlen(s));
}

/* cread - read what the proxy sent; false at EOF. */
static bool
cread(void)
{
	ssize_t n = -1;

	if (t.cssl != NULL) {
		int k = 1, e;

		while (t.clen < sizeof(t.cbuf) - 1 &&
		       (k = SSL_read(t.cssl, t.cbuf + t.clen, (int)(sizeof(t.cbuf) - 1 - t.clen))) >
		           0)
			t.clen += (size_t)k;
		e = k <= 0 ? SSL_get_error(t.cssl, k) : SSL_ERROR_NONE;
		/* close_notify, or the socket's end without it: either way the proxy closed */
		if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL)
			t.ceof = true;
		t.cbuf[t.clen] = '\0';
		return !t.ceof;
	}
	while (t.clen < sizeof(t.cbuf) - 1 &&
	       (n = read(t.cfd, t.cbuf + t.clen, sizeof(t.cbuf) - 1 - t.clen)) > 0)
		t.clen += (size_t)n;
	if (n == 0)
		t.ceof = true;
	t.cbuf[t.clen] = '\0';
	return !t.ceof;
}

/* reply_end - length of the first complete reply in cbuf, 0 if none yet. */
static size_t
reply_end(void)
{
	size_t pos = 0;
	char *lf;

	while ((lf = memchr(t.cbuf + pos, '\n', t.clen - pos)) != NULL) {
		size_t start = pos;

		pos = (size_t)(lf - t.cbuf) + 1;
		if (pos - start >= 4 && t.cbuf[start + 3] != '-')
			return pos;
	}
	return 0;
}

/* creply - the next whole reply into out (run the loop up to 8 s); false if none. */
static bool
creply(char *out, size_t outlen)
{
	size_t n;
	int i;

	for (i = 0; i < 800; i++) {
		cread();
		if ((n = reply_end()) > 0) {
			snprintf(out, outlen, "%.*s", (int)n, t.cbuf);
			memmove(t.cbuf, t.cbuf + n, t.clen - n);
			t.clen -= n;
			t.cbuf[t.clen] = '\0';
			return true;
		}
		if (t.ceof)
			break;
		loop_once(t.loop, 10);
	}
	out[0] = '\0';
	return false;
}

/* expect - the next reply starts with prefix; returns it in a static buffer. */
static const char *
expect_at(const char *prefix, int line)
{
	static char r[8192];

	if (!creply(r, sizeof(r)))
		fail_msg("line %d: no reply, wanted \"%s\"", line, prefix);
	if (strncmp(r, prefix, strlen(prefix)) != 0)
		fail_msg("line %d: got \"%s\", wanted \"%s\"", line, r, prefix);
	return r;
}
#define expect(p) expect_at((p), __LINE__)

/* expect_closed - the proxy closes the client's connection (and sent no further reply). */
static void
expect_closed_at(int line)
{
	for (int i = 0; i < 800 && cread(); i++)
		loop_once(t.loop, 10);
	if (!t.ceof)
		fail_msg("line %d: connection still open", line);
	if (t.clen != 0)
		fail_msg("line %d: unexpected bytes before close: \"%s\"", line, t.cbuf);
}
#define expect_closed() expect_closed_at(__LINE__)

/* finish - the session ends; the fake MX thread ends. */
static void
finish(void)
{
	for (int i = 0; i < 800 && session_count(&t.ctx) > 0; i++)
		loop_once(t.loop, 10);
	assert_int_equal(session_count(&t.ctx), 0);
	assert_int_equal(t.ended, 1);
	mx_join();
}

/* mx_saw - the fake MX received a line starting with s. */
static bool
mx_saw(const char *s)
{
	char *p = t.mx.log;
	size_t n = strlen(s);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, s, n) == 0)
			return true;
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return false;
}

/* event_find - the first event since the test began with "event" kind and "domain" dom. */
static json_t *
event_find(const char *kind, const char *dom)
{
	FILE *f = fopen(env.events, "r");
	char line[8192];
	json_t *o, *found = NULL;

	if (f == NULL)
		return NULL;
	fseek(f, t.ev_off, SEEK_SET);
	while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
		if ((o = json_loads(line, 0, NULL)) == NULL)
			continue;
		const char *k = json_string_value(json_object_get(o, "event"));
		const char *d = json_string_value(json_object_get(o, "domain"));
		if (k != NULL && strcmp(k, kind) == 0 &&
		    (dom == NULL || (d != NULL && strcmp(d, dom) == 0)))
			found = o;
		else
			json_decref(o);
	}
	fclose(f);
	return found;
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v != NULL ? v : "";
}

/* --- fixtures ------------------------------------------------------------------ */

static int
group_setup(void **state)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256];
	const char *sans[] = {"mx.example.net"};

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LVL_ERR);
	if ((env.ca = testca_new(NULL)) == NULL ||
	    testca_issue(env.ca, "mx", sans, 1, 0, crt, key) != 0)
		return -1;
	env.mx_server = tls_server_ctx_new(crt, key, err, sizeof(err));
	env.client_side = tls_server_ctx_new(crt, key, err, sizeof(err));
	env.upstream = tls_client_ctx_new(testca_ca_file(env.ca), err, sizeof(err));
	env.mailer = tls_client_ctx_new(testca_ca_file(env.ca), err, sizeof(err));
	if (env.mx_server == NULL || env.upstream == NULL || env.client_side == NULL ||
	    env.mailer == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(env.events, sizeof(env.events), "%s/events.jsonl", testca_dir(env.ca));
	return evlog_open(env.events);
}

static int
group_teardown(void **state)
{
	(void)state;
	evlog_close();
	SSL_CTX_free(env.mx_server);
	SSL_CTX_free(env.client_side);
	SSL_CTX_free(env.upstream);
	SSL_CTX_free(env.mailer);
	testca_free(env.ca);
	return 0;
}

static int
setup(void **state)
{
	struct sts_engine_params p = {0};
	struct stat st;
	char err[128];

	(void)state;
	memset(&t, 0, sizeof(t));
	t.cfd = -1;
	if ((t.loop = loop_new()) == NULL || conf_defaults(&t.conf) < 0)
		return -1;
	t.conf.timeouts.connect = 3;
	t.conf.timeouts.greeting = 3;
	t.conf.timeouts.command = 3;
	t.conf.timeouts.starttls = 3;
	t.conf.timeouts.data_block = 3;
	t.conf.timeouts.data_done = 3;
	p.loop = t.loop;
	p.conf = &t.conf;
	if ((t.engine = sts_engine_new(&p, err, sizeof(err))) == NULL)
		return -1;
	t.ctx.loop = t.loop;
	t.ctx.conf = &t.conf;
	t.ctx.engine = t.engine;
	t.ctx.upstream_tls = env.upstream;
	t.ctx.stats = &t.stats;
	t.ctx.on_end = on_end;
	fake_sts_set(NULL, 0);
	t.ev_off = stat(env.events, &st) == 0 ? (long)st.st_size : 0;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 800 && session_count(&t.ctx) > 0; i++)
		loop_once(t.loop, 10);
	SSL_free(t.cssl);
	t.cssl = NULL;
	if (t.cfd >= 0)
		close(t.cfd);
	for (int i = 0; i < 800 && session_count(&t.ctx) > 0; i++)
		loop_once(t.loop, 10);
	mx_join();
	sts_engine_free(t.engine);
	loop_free(t.loop);
	free(t.conf.state_dir);
	free(t.conf.nfq.queues);
	return 0;
}

/* --- transcripts ------------------------------------------------------------- */

static const struct fake_sts_rule rules[] = {
    {"enforce.example", STS_POLICY, STS_MODE_ENFORCE, "id1", "mx.example.net", false},
    {"testing.example", STS_POLICY, STS_MODE_TESTING, "id2", "mx.example.net", false},
    {"async.example", STS_POLICY, STS_MODE_ENFORCE, "id3", "mx.example.net", true},
    {"other.example", STS_POLICY, STS_MODE_ENFORCE, "id4", "mx.other.example", false},
    {"defer.example", STS_DEFER, STS_MODE_NONE, NULL, NULL, false},
};
#define RULES() fake_sts_set(rules, sizeof(rules) / sizeof(rules[0]))

static const char message[] = "Subject: test\r\n\r\nhello\r\n.\r\n";

/* RFC 5321 section 3.3: a plain relay without any policy, data unchanged. */
static void
rfc5321_3_3_plain_relay_no_policy(void **state)
{
	const char *r;

	(void)state;
	start();
	expect("220 mx.example.net ESMTP");
	csends("EHLO client.example\r\n");
	r = expect("250-mx.example.net");
	assert_null(strstr(r, "STARTTLS"));
	assert_null(strstr(r, "CHUNKING"));
	assert_null(strstr(r, "AUTH"));
	assert_non_null(strstr(r, "8BITMIME"));
	csends("MAIL FROM:<a@client.example>\r\n");
	expect("250 2.1.0");
	csends("RCPT TO:<b@nopolicy.example>\r\n");
	expect("250 2.1.5");
	csends("DATA\r\n");
	expect("354");
	csends(message);
	expect("250 2.0.0 Ok: queued as 4711");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_true(mx_saw("EHLO client.example\r\n"));
	assert_true(mx_saw("MAIL FROM:<a@client.example>\r\n"));
	assert_true(mx_saw("RCPT TO:<b@nopolicy.example>\r\n"));
	assert_int_equal(t.mx.data_len, strlen(message));
	assert_memory_equal(t.mx.data, message, strlen(message));
	assert_int_equal(t.stats.messages_relayed[STS_MODE_NONE], 1);
}

/* RFC 3207 section 4.2: upstream upgraded; only the post-TLS EHLO is used. */
static void
rfc3207_4_2_starttls_upgrade_post_tls_ehlo(void **state)
{
	const char *r;

	(void)state;
	RULES();
	t.mx.starttls = true;
	t.mx.pipelining = true; /* offered only after TLS by the fake */
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	r = expect("250-mx.example.net");
	assert_non_null(strstr(r, "PIPELINING"));
	assert_null(strstr(r, "STARTTLS"));
	csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@enforce.example>\r\n");
	expect("250 2.1.0");
	expect("250 2.1.5");
	csends("DATA\r\n");
	expect("354");
	csends(message);
	expect("250 2.0.0");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_true(t.mx.tls_done);
	assert_true(mx_saw("STARTTLS\r\n"));
	assert_int_equal(t.stats.tls_upstream, 1);
	assert_int_equal(t.stats.messages_relayed[STS_MODE_ENFORCE], 1);
	assert_null(event_find("policy-failure", "enforce.example"));
}

/* RFC 8461 section 5: STARTTLS stripped + enforce: 451 4.7.4, upstream sees nothing. */
static void
rfc8461_5_starttls_stripped_enforce_blocked(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	csends("MAIL FROM:<a@client.example>\r\n");
	expect("250 2.1.0");
	csends("RCPT TO:<b@enforce.example>\r\n");
	expect("451 4.7.4 enforce.example: MX 127.0.0.1:");
	csends("DATA\r\n");
	expect("554 5.5.1");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_false(mx_saw("RCPT"));
	assert_false(mx_saw("MAIL"));
	assert_int_equal(t.stats.recipients_blocked[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1);
	assert_non_null(ev = event_find("policy-failure", "enforce.example"));
	assert_string_equal(jstr(ev, "source"), "proxy");
	assert_string_equal(jstr(ev, "action"), "blocked");
	assert_string_equal(jstr(ev, "result_type"), "starttls-not-supported");
	assert_string_equal(jstr(ev, "mode"), "enforce");
	assert_string_equal(jstr(ev, "policy_id"), "id1");
	assert_string_equal(jstr(ev, "policy_source"), "cache");
	assert_string_equal(jstr(ev, "client"), "10.0.0.1");
	assert_int_equal(strncmp(jstr(ev, "dest"), "127.0.0.1:", 10), 0);
	assert_int_equal(strncmp(jstr(ev, "session"), "w0-", 3), 0);
	assert_non_null(json_string_value(json_object_get(ev, "ts")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(ev, "mx"), 0)),
	                    "mx.example.net");
	json_decref(ev);
}

/* RFC 8461 section 5: a testing policy relays and reports. */
static void
rfc8461_5_testing_relayed_reported(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT "
	       "TO:<b@testing.example>\r\n");
	expect("250");
	expect("250 2.1.0");
	expect("250 2.1.5");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_true(mx_saw("RCPT TO:<b@testing.example>\r\n"));
	assert_non_null(ev = event_find("policy-failure", "testing.example"));
	assert_string_equal(jstr(ev, "action"), "reported");
	assert_string_equal(jstr(ev, "mode"), "testing");
	assert_string_equal(jstr(ev, "result_type"), "starttls-not-supported");
	json_decref(ev);
	assert_int_equal(t.stats.recipients_reported[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1);
}

/* RFC 8461 section 5: one passing and one failing recipient in one envelope. */
static void
rfc8461_5_mixed_envelope(void **state)
{
	(void)state;
	RULES();
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	csends("MAIL FROM:<a@client.example>\r\n");
	expect("250");
	csends("RCPT TO:<b@nopolicy.example>\r\n");
	expect("250 2.1.5");
	csends("RCPT TO:<c@enforce.example>\r\n");
	expect("451 4.7.4");
	csends("DATA\r\n");
	expect("354");
	csends(message);
	expect("250 2.0.0");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_true(mx_saw("RCPT TO:<b@nopolicy.example>"));
	assert_false(mx_saw("RCPT TO:<c@enforce.example>"));
	assert_true(t.mx.got_dot);
}

/* RFC 2920 section 3.1: one pipelined group, replies strictly in order. */
static void
rfc2920_3_1_pipelined_group_in_order(void **state)
{
	(void)state;
	RULES();
	t.mx.pipelining = true;
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@nopolicy.example>\r\n"
	       "RCPT TO:<c@async.example>\r\nRCPT TO:<d@enforce.example>\r\n"
	       "RCPT TO:<e@defer.example>\r\nRCPT TO:<f@x.example>\r\nDATA\r\n");
	expect("250 2.1.0");
	expect("250 2.1.5");
	expect("451 4.7.4 async.example");
	expect("451 4.7.4 enforce.example");
	expect("451 4.4.3 defer.example");
	expect("250 2.1.5");
	expect("354");
	csends(message);
	expect("250 2.0.0");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_int_equal(fake_sts_async_count(), 1);
	assert_true(mx_saw("RCPT TO:<f@x.example>"));
	assert_false(mx_saw("RCPT TO:<c@async.example>"));
	json_t *ev = event_find("policy-defer", "defer.example");
	assert_non_null(ev);
	assert_string_equal(jstr(ev, "action"), "deferred");
	json_decref(ev);
}

/* RFC 3207 section 5: bytes pipelined behind the client's STARTTLS are refused. */
static void
rfc3207_5_client_starttls_injection(void **state)
{
	const char *r;
	json_t *ev;

	(void)state;
	t.ctx.client_tls = env.client_side;
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	r = expect("250");
	assert_non_null(strstr(r, "STARTTLS"));
	csends("STARTTLS\r\nMAIL FROM:<evil@client.example>\r\n");
	expect("554 5.5.0");
	expect_closed();
	finish();
	assert_false(mx_saw("MAIL"));
	assert_non_null(ev = event_find("injection", NULL));
	assert_string_equal(jstr(ev, "action"), "refused");
	json_decref(ev);
}

/* RFC 3207 section 5: the upstream's bytes after its 220 abort the upstream. */
static void
rfc3207_5_upstream_response_injection(void **state)
{
	json_t *ev;

	(void)state;
	t.mx.starttls = true;
	t.mx.after_220 = "250-injected\r\n";
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("421 4.7.0");
	expect_closed();
	finish();
	assert_non_null(ev = event_find("injection", NULL));
	assert_string_equal(jstr(ev, "action"), "aborted");
	assert_non_null(strstr(jstr(ev, "seen"), "250-injected"));
	json_decref(ev);
}

/* RFC 3207: a refused STARTTLS is a downgrade; the enforce recipient is blocked. */
static void
rfc3207_4_starttls_refused_downgrade(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	t.mx.starttls = true;
	t.mx.starttls_reply = "454 4.7.0 TLS not available\r\n";
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@enforce.example>\r\n");
	expect("250");
	expect("451 4.7.4");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_non_null(ev = event_find("downgrade", NULL));
	assert_string_equal(jstr(ev, "result_type"), "starttls-not-supported");
	assert_non_null(strstr(jstr(ev, "seen"), "454 4.7.0"));
	json_decref(ev);
}

/* RFC 8461 section 4.2: a certificate not valid for the policy's MX: 451 4.7.5. */
static void
rfc8461_4_2_certificate_mismatch_blocked(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	t.mx.starttls = true;
	start();
	expect("220");
	csends(
	    "EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@other.example>\r\n");
	expect("250");
	expect("250");
	expect("451 4.7.5 other.example");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_false(mx_saw("RCPT"));
	assert_non_null(ev = event_find("policy-failure", "other.example"));
	assert_string_equal(jstr(ev, "result_type"), "certificate-host-mismatch");
	assert_non_null(strstr(jstr(json_object_get(ev, "tls"), "sans"), "mx.example.net"));
	json_decref(ev);
}

/* A mangled STARTTLS capability is reported with the line that replaced it. */
static void
nostarttls_2021_mangled_capability_reported(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	t.mx.mangled = true;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT "
	       "TO:<b@enforce.example>\r\n");
	expect("250");
	expect("250");
	expect("451 4.7.4");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_non_null(ev = event_find("downgrade", NULL));
	assert_string_equal(jstr(ev, "seen"), "XXXXXXXA");
	json_decref(ev);
	assert_non_null(ev = event_find("policy-failure", "enforce.example"));
	assert_string_equal(jstr(ev, "seen"), "XXXXXXXA");
	json_decref(ev);
}

/* SMTP smuggling: each non-CRLF end of data is refused and never forwarded. */
static void
smtp_smuggling_endings_refused(void **state)
{
	static const struct {
		const char *name;
		const char *data;
		size_t len;
		size_t split; /* sent in two writes at this offset (0: one write) */
	} cases[] = {
	    {"lf.lf", "x\n.\nMAIL FROM:<s@evil>\r\n", 25, 0},
	    {"crlf.lf", "x\r\n.\nMAIL FROM:<s@evil>\r\n", 26, 0},
	    {"lf.crlf", "x\n.\r\nMAIL FROM:<s@evil>\r\n", 26, 0},
	    {"cr.cr", "x\r.\rMAIL FROM:<s@evil>\r\n", 25, 0},
	    {"crlf.cr", "x\r\n.\rMAIL FROM:<s@evil>\r\n", 26, 0},
	    {"nul", "x\r\n\0.\r\nMAIL FROM:<s@evil>\r\n", 28, 0},
	    {"cr|.cr-split", "x\r.\rMAIL FROM:<s@evil>\r\n", 25, 2},
	    {"crlf|.lf-split", "x\r\n.\nMAIL FROM:<s@evil>\r\n", 26, 3},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (i > 0) {
			teardown(NULL);
			assert_int_equal(setup(NULL), 0);
		}
		start();
		expect("220");
		csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\n"
		       "RCPT TO:<b@nopolicy.example>\r\n");
		expect("250");
		expect("250");
		expect("250");
		csends("DATA\r\n");
		expect("354");
		csends("Subject: s\r\n\r\n");
		print_message("case %s\n", cases[i].name);
		if (cases[i].split > 0) {
			csend(cases[i].data, cases[i].split);
			for (int k = 0; k < 10; k++)
				loop_once(t.loop, 10);
		}
		csend(cases[i].data + cases[i].split, cases[i].len - cases[i].split);
		expect("554 5.");
		expect_closed();
		finish();
		if (t.mx.got_dot)
			fail_msg("%s: the upstream saw an end of data", cases[i].name);
		if (mx_saw("MAIL FROM:<s@evil>"))
			fail_msg("%s: smuggled command reached the upstream", cases[i].name);
		/* no lone CR or LF ever went upstream, not even a held one */
		for (size_t k = 0; k < t.mx.data_len; k++)
			if ((t.mx.data[k] == '\r' &&
			     (k + 1 >= t.mx.data_len || t.mx.data[k + 1] != '\n')) ||
			    (t.mx.data[k] == '\n' && (k == 0 || t.mx.data[k - 1] != '\r')))
				fail_msg("%s: bare CR/LF at %zu reached the upstream",
				         cases[i].name, k);
	}
}

/* RFC 5321 section 4.5.2: dot-stuffed lines arrive exactly as sent. */
static void
rfc5321_4_5_2_dot_stuffing_unchanged(void **state)
{
	static const char msg[] = "Subject: dots\r\n\r\n..one leading dot\r\n...two\r\n.\r\n";

	(void)state;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@x.example>\r\n");
	expect("250");
	expect("250");
	expect("250");
	csends("DATA\r\n");
	expect("354");
	/* split inside the final CRLF.CRLF */
	csend(msg, sizeof(msg) - 4);
	for (int i = 0; i < 5; i++)
		loop_once(t.loop, 10);
	csend(msg + sizeof(msg) - 4, 3);
	expect("250 2.0.0");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_int_equal(t.mx.data_len, sizeof(msg) - 1);
	assert_memory_equal(t.mx.data, msg, sizeof(msg) - 1);
}

/* RFC-NOTES "Replies the client sees": upstream reset mid-DATA -> 421 4.4.2, no 250. */
static void
rfc5321_upstream_reset_mid_data_421(void **state)
{
	(void)state;
	t.mx.data_mode = DATA_RESET;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@x.example>\r\n");
	expect("250");
	expect("250");
	expect("250");
	csends("DATA\r\n");
	expect("354");
	csends("Subject: partial\r\n");
	expect("421 4.4.2");
	expect_closed();
	finish();
	assert_false(t.mx.got_dot);
}

/* RFC 5321 section 4.5.3.2.6: no reply to the final dot in time -> 421, never 250. */
static void
rfc5321_4_5_3_2_timeout_after_dot_421(void **state)
{
	(void)state;
	t.conf.timeouts.data_done = 1;
	t.mx.data_mode = DATA_NO_REPLY;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@x.example>\r\n");
	expect("250");
	expect("250");
	expect("250");
	csends("DATA\r\n");
	expect("354");
	csends(message);
	expect("421 4.4.2");
	expect_closed();
	finish();
	assert_true(t.mx.got_dot);
	assert_int_equal(t.stats.messages_relayed[0], 0);
}

/* run_ms - run the proxy's loop for about ms milliseconds. */
static void
run_ms(uint64_t ms)
{
	uint64_t end = loop_now_ms(t.loop) + ms;

	while (loop_now_ms(t.loop) < end)
		loop_once(t.loop, 10);
}

/*
 * RFC 5321 section 4.5.3.2.5: the data block limit runs from the last block
 * received, so a message that arrives slowly but steadily is not cut off,
 * however long it takes in all.
 */
static void
rfc5321_4_5_3_2_5_steady_data_not_timed_out(void **state)
{
	(void)state;
	t.conf.timeouts.data_block = 1;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@x.example>\r\n");
	expect("250");
	expect("250");
	expect("250");
	csends("DATA\r\n");
	expect("354");
	csends("Subject: slow\r\n\r\n");
	for (int i = 0; i < 6; i++) {
		run_ms(400);
		csends("line\r\n");
	}
	csends(".\r\n");
	expect("250");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_true(t.mx.got_dot);
}

/* RFC 5321 section 4.5.3.2.5: ... and a stall times out one limit after the last block. */
static void
rfc5321_4_5_3_2_5_stall_after_blocks_421(void **state)
{
	uint64_t t0;

	(void)state;
	t.conf.timeouts.data_block = 1;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@x.example>\r\n");
	expect("250");
	expect("250");
	expect("250");
	csends("DATA\r\n");
	expect("354");
	for (int i = 0; i < 3; i++) {
		run_ms(400);
		csends("line\r\n");
	}
	loop_once(t.loop, 10);
	t0 = loop_now_ms(t.loop);
	expect("421 4.4.2");
	if (loop_now_ms(t.loop) - t0 < 800)
		fail_msg("timed out %llu ms after the last block, limit 1 s",
		         (unsigned long long)(loop_now_ms(t.loop) - t0));
	expect_closed();
	finish();
	assert_false(t.mx.got_dot);
}

/*
 * RFC 5321 section 4.1.1.4: the reply to the final dot comes after the
 * dot. A reply begun during the data (its first line arrived before the
 * dot was sent) is unsolicited, even when it ends after the dot: the
 * mailer gets 421 4.4.2, never that 250.
 */
static void
rfc5321_4_1_1_4_reply_begun_before_dot_421(void **state)
{
	(void)state;
	t.mx.data_mode = DATA_EARLY;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@x.example>\r\n");
	expect("250");
	expect("250");
	expect("250");
	csends("DATA\r\n");
	expect("354");
	for (int i = 0; i < 10; i++) /* let the early line arrive during the data */
		loop_once(t.loop, 10);
	csends(message);
	expect("421 4.4.2");
	expect_closed();
	finish();
	assert_true(t.mx.got_dot);
	assert_int_equal(t.stats.messages_relayed[STS_MODE_NONE], 0);
}

/* RFC 5321 section 4.1.1.1: a HELO client gets a plain 250; the upstream gets EHLO. */
static void
rfc5321_4_1_1_1_helo_client(void **state)
{
	(void)state;
	start();
	expect("220");
	csends("HELO client.example\r\n");
	expect("250 mx.example.net\r\n");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_true(mx_saw("EHLO client.example\r\n"));
	assert_false(mx_saw("HELO"));
}

/* RFC 5321 section 4.5.3.1.4: an overlong command line -> 500 and close. */
static void
rfc5321_4_5_3_1_4_overlong_line(void **state)
{
	char line[700];

	(void)state;
	t.conf.max_line = 512;
	start();
	expect("220");
	memset(line, 'A', sizeof(line));
	csend(line, sizeof(line));
	expect("500 5.5.6");
	expect_closed();
	finish();
}

/* RFC 5321 section 4.1.4: EHLO refused -> HELO, no STARTTLS -> enforce blocked. */
static void
rfc5321_4_1_4_ehlo_refused_helo_fallback(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	t.mx.ehlo_refused = true;
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250 mx.example.net\r\n");
	csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@enforce.example>\r\n");
	expect("250");
	expect("451 4.7.4");
	csends("QUIT\r\n");
	expect("221");
	finish();
	assert_true(mx_saw("HELO client.example"));
	assert_false(mx_saw("RCPT"));
	assert_non_null(ev = event_find("policy-failure", "enforce.example"));
	assert_string_equal(jstr(ev, "result_type"), "starttls-not-supported");
	json_decref(ev);
}

/* Relay semantics: the upstream refuses the held MAIL; the recipient gets that reply. */
static void
relay_mail_refused_upstream(void **state)
{
	(void)state;
	t.mx.mail_refused = true;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@x.example>\r\n");
	expect("250");
	expect("250 2.1.0");
	expect("550 5.7.1 Sender refused");
	csends("DATA\r\n");
	expect("554 5.5.1");
	csends("QUIT\r\n");
	expect("221");
	finish();
}

/* Upstream unreachable: 421 4.4.1 and close. */
static void
rfc5321_connect_failure_421(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd;

	(void)state;
	/* a port nobody listens on: bind, note it, close */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	start_at(ntohs(sin.sin_port));
	expect("421 4.4.1");
	expect_closed();
	finish();
}

/* A refusing banner is relayed as it is, and the upstream is followed. */
static void
rfc5321_3_1_banner_554_relayed(void **state)
{
	(void)state;
	t.mx.banner = "554 5.3.2 No service here\r\n";
	start();
	expect("554 5.3.2 No service here");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
}

/*
 * RFC 8461 section 5: a failed upstream handshake reconnects without
 * STARTTLS; a recipient without policy goes on, an enforce one is blocked.
 */
static void
rfc8461_5_handshake_failure_plaintext_only_without_policy(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	t.mx.starttls = true;
	t.mx.tls_broken = true;
	start();
	expect("220 mx.example.net");
	csends("EHLO client.example\r\n");
	expect("250-mx.example.net");
	csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@enforce.example>\r\n"
	       "RCPT TO:<c@nopolicy.example>\r\nDATA\r\n");
	expect("250 2.1.0");
	expect("451 4.7.5 enforce.example");
	expect("250 2.1.5");
	expect("354");
	csends(message);
	expect("250 2.0.0");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_false(t.mx.tls_done);
	assert_false(mx_saw("RCPT TO:<b@enforce.example>"));
	assert_true(mx_saw("RCPT TO:<c@nopolicy.example>"));
	assert_true(t.mx.got_dot);
	assert_non_null(ev = event_find("policy-failure", "enforce.example"));
	assert_string_equal(jstr(ev, "result_type"), "validation-failure");
	assert_string_equal(jstr(ev, "action"), "blocked");
	json_decref(ev);
}

/*
 * A handshake cut right behind the server's last flight (FIN or RST in the
 * same breath) is a lost upstream once the handshake completed, never a
 * failed handshake: no plaintext reconnect carries an enforce recipient,
 * whatever the client does next.
 */
static void
cut_after_flight(int cut)
{
	char r[8192];

	RULES();
	t.mx.starttls = true;
	t.mx.hs_cut = cut;
	start();
	expect("220 mx.example.net");
	csends("EHLO client.example\r\n");
	assert_true(creply(r, sizeof(r)));
	if (strncmp(r, "250", 3) == 0) {
		/* Only a plaintext fallback after a handshake that did not complete
		 * may go on: it must refuse the enforce recipient. */
		csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@enforce.example>\r\n");
		expect("250 2.1.0");
		expect("451 4.7.5 enforce.example");
		csends("QUIT\r\n");
		expect("221");
	} else {
		assert_true(strncmp(r, "421 4.4.2", 9) == 0);
	}
	expect_closed();
	finish();
	assert_false(mx_saw("RCPT TO:<b@enforce.example>"));
	assert_false(mx_saw("MAIL FROM"));
}

static void
rfc8461_4_2_handshake_cut_fin_no_cleartext(void **state)
{
	(void)state;
	cut_after_flight(CUT_FIN);
}

static void
rfc8461_4_2_handshake_cut_rst_no_cleartext(void **state)
{
	(void)state;
	cut_after_flight(CUT_RST);
}

/* Every plaintext fallback after a failed handshake is a downgrade event. */
static void
rfc8460_4_3_fallback_reported(void **state)
{
	json_t *ev;

	(void)state;
	RULES();
	t.mx.starttls = true;
	t.mx.tls_broken = true;
	start();
	expect("220 mx.example.net");
	csends("EHLO client.example\r\nQUIT\r\n");
	expect("250-mx.example.net");
	expect("221");
	expect_closed();
	finish();
	assert_non_null(ev = event_find("downgrade", NULL));
	assert_string_equal(jstr(ev, "action"), "fallback-plaintext");
	assert_string_equal(jstr(ev, "result_type"), "validation-failure");
	json_decref(ev);
}

/*
 * RFC 8461 section 5.1: before a recipient is refused, the policy is looked
 * up again; a domain that replaced its policy (new MX names) is judged on
 * the new one, and a confirmed failure is refused once.
 */
static void
rfc8461_5_1_recheck_before_refusal(void **state)
{
	static const struct fake_sts_rule now[] = {
	    {"other.example", STS_POLICY, STS_MODE_ENFORCE, "id5", "mx.example.net", false},
	};

	(void)state;
	RULES();
	fake_sts_set_recheck(now, 1);
	t.mx.starttls = true;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\n"
	       "RCPT TO:<b@other.example>\r\nRSET\r\nQUIT\r\n");
	expect("250-mx.example.net");
	expect("250 2.1.0");
	expect("250 2.1.5");
	expect("250");
	expect("221");
	expect_closed();
	finish();
	assert_int_equal(fake_sts_recheck_count(), 1);
	assert_true(mx_saw("RCPT TO:<b@other.example>"));
}

/* The same failure with the policy unchanged: refused after one recheck. */
static void
rfc8461_5_1_refusal_after_recheck(void **state)
{
	(void)state;
	RULES();
	t.mx.starttls = true;
	start();
	expect("220");
	csends("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\n"
	       "RCPT TO:<b@other.example>\r\nQUIT\r\n");
	expect("250-mx.example.net");
	expect("250 2.1.0");
	expect("451 4.7.5 other.example");
	expect("221");
	expect_closed();
	finish();
	assert_int_equal(fake_sts_recheck_count(), 1);
	assert_false(mx_saw("RCPT TO:<b@other.example>"));
}

/* Draining stop: an idle session gets 421 4.3.2. */
static void
session_shutdown_all_idle(void **state)
{
	(void)state;
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	session_shutdown_all(&t.ctx);
	expect("421 4.3.2");
	expect_closed();
	finish();
}

/* mailer_starttls - the mailer's side of the TLS handshake, run against the loop. */
static void
mailer_starttls(void)
{
	int r = 0, e;

	assert_int_equal(t.clen, 0); /* nothing may be left from before TLS */
	assert_non_null(t.cssl = SSL_new(env.mailer));
	assert_int_equal(SSL_set_fd(t.cssl, t.cfd), 1);
	assert_int_equal(SSL_set_tlsext_host_name(t.cssl, "mx.example.net"), 1);
	assert_int_equal(SSL_set1_host(t.cssl, "mx.example.net"), 1);
	SSL_set_verify(t.cssl, SSL_VERIFY_PEER, NULL);
	for (int i = 0; i < 800; i++) {
		if ((r = SSL_connect(t.cssl)) == 1)
			break;
		e = SSL_get_error(t.cssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			fail_msg("mailer handshake failed: SSL error %d", e);
		loop_once(t.loop, 10);
	}
	assert_int_equal(r, 1);
	assert_int_equal(SSL_get_verify_result(t.cssl), X509_V_OK);
}

/*
 * RFC 3207 section 4.2: a successful STARTTLS from the mailer. The proxy
 * forgets the EHLO and the MAIL given before TLS, no longer offers
 * STARTTLS, and relays the message over the protected leg.
 */
static void
rfc3207_4_2_client_starttls_state_reset(void **state)
{
	const char *r;

	(void)state;
	t.ctx.client_tls = env.client_side;
	t.mx.pipelining = true;
	start();
	expect("220 mx.example.net");
	csends("EHLO client.example\r\n");
	r = expect("250-mx.example.net");
	assert_non_null(strstr(r, "STARTTLS"));
	csends("MAIL FROM:<pre@client.example>\r\n");
	expect("250 2.1.0");
	csends("STARTTLS\r\n");
	expect("220 2.0.0");
	mailer_starttls();
	/* the greeting given before TLS no longer counts */
	csends("MAIL FROM:<a@client.example>\r\n");
	expect("503 5.5.1 Send EHLO first");
	csends("EHLO client.example\r\n");
	r = expect("250-mx.example.net");
	assert_null(strstr(r, "STARTTLS"));
	assert_non_null(strstr(r, "PIPELINING"));
	/* nor does the transaction begun before TLS */
	csends("RCPT TO:<b@nopolicy.example>\r\n");
	expect("503 5.5.1 Need MAIL");
	csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@nopolicy.example>\r\nDATA\r\n");
	expect("250 2.1.0");
	expect("250 2.1.5");
	expect("354");
	csends(message);
	expect("250 2.0.0 Ok: queued as 4711");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_false(mx_saw("MAIL FROM:<pre@"));
	assert_true(mx_saw("MAIL FROM:<a@client.example>\r\n"));
	assert_true(mx_saw("RCPT TO:<b@nopolicy.example>\r\n"));
	assert_int_equal(t.mx.data_len, strlen(message));
	assert_memory_equal(t.mx.data, message, strlen(message));
	assert_int_equal(t.stats.messages_relayed[STS_MODE_NONE], 1);
}

/*
 * An IPv6 original destination: the session connects to [::1], names it
 * "[::1]:port" in its replies and events, and relays. Without an IPv6
 * loopback the connection must fail cleanly with 421 4.4.1 instead.
 */
static void
rfc5321_ipv6_upstream(void **state)
{
	char want[80], dest[48];
	json_t *ev;

	(void)state;
	RULES();
	if (!mx_start6()) {
		start6_at(25);
		expect("421 4.4.1");
		expect_closed();
		finish();
		return;
	}
	start6_at(t.mx.port);
	expect("220 mx.example.net");
	csends("EHLO client.example\r\n");
	expect("250-mx.example.net");
	csends("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@enforce.example>\r\n");
	expect("250 2.1.0");
	snprintf(want, sizeof(want), "451 4.7.4 enforce.example: MX [::1]:%u does", t.mx.port);
	expect(want);
	csends("RCPT TO:<c@nopolicy.example>\r\nDATA\r\n");
	expect("250 2.1.5");
	expect("354");
	csends(message);
	expect("250 2.0.0");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	assert_true(t.mx.got_dot);
	assert_false(mx_saw("RCPT TO:<b@enforce.example>"));
	assert_true(mx_saw("RCPT TO:<c@nopolicy.example>"));
	assert_non_null(ev = event_find("policy-failure", "enforce.example"));
	snprintf(dest, sizeof(dest), "[::1]:%u", t.mx.port);
	assert_string_equal(jstr(ev, "dest"), dest);
	assert_string_equal(jstr(ev, "client"), "2001:db8::1");
	json_decref(ev);
}

/* session_upstream_fd - the session's end of the connection to 127.0.0.1:port; -1 if none. */
static int
session_upstream_fd(uint16_t port)
{
	int found = -1;

	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_in peer, self;
		socklen_t plen = sizeof(peer), slen = sizeof(self);

		if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 ||
		    peer.sin_family != AF_INET || ntohs(peer.sin_port) != port ||
		    getsockname(fd, (struct sockaddr *)&self, &slen) < 0 ||
		    ntohs(self.sin_port) == port)
			continue;
		assert_int_equal(found, -1); /* exactly one */
		found = fd;
	}
	return found;
}

/*
 * upstream_mark: the upstream socket carries SO_MARK, so that an on-host
 * REDIRECT rule can skip the proxy's own connections. Setting it needs
 * CAP_NET_ADMIN; without it the session must not connect unmarked (that
 * would loop back into the proxy) and answers 421 4.4.1.
 */
static void
upstream_mark_set_on_session_socket(void **state)
{
	uint32_t mark = 0x25, got = 0;
	socklen_t len = sizeof(got);
	int probe, fd;
	bool can_mark;

	(void)state;
	probe = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(probe >= 0);
	can_mark = setsockopt(probe, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0;
	close(probe);
	t.conf.upstream_mark = mark;
	start();
	if (!can_mark) {
		expect("421 4.4.1");
		expect_closed();
		finish();
		return;
	}
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	assert_true((fd = session_upstream_fd(t.mx.port)) >= 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_MARK, &got, &len), 0);
	assert_int_equal(got, mark);
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
}

/* What the TLS-RPT table holds for one domain, copied out of the walk. */
struct report_row {
	const char *want;
	bool found;
	char id[STS_REPORT_ID_LEN];
	enum sts_mode mode;
	uint64_t success, failure, by_result[STS_RESULT_MAX];
	size_t n_details;
	struct sts_report_detail detail0;
};

static int
report_row_get(void *arg, const struct sts_report_entry *e)
{
	struct report_row *row = arg;

	if (strcmp(e->domain, row->want) != 0)
		return 0;
	row->found = true;
	snprintf(row->id, sizeof(row->id), "%s", e->policy_id);
	row->mode = e->mode;
	row->success = e->success;
	row->failure = e->failure;
	memcpy(row->by_result, e->by_result, sizeof(row->by_result));
	row->n_details = e->n_details;
	if (e->n_details > 0)
		row->detail0 = e->details[0];
	return 1;
}

/*
 * RFC 8460 section 4.4: a message the upstream took over verified TLS is a
 * successful session for each passing policy domain that had a recipient
 * accepted; a blocked recipient is a failure with its result type and MX.
 * A transaction that ends without a message counts nothing.
 */
static void
rfc8460_4_4_delivery_and_block_counted(void **state)
{
	struct report_row en = {.want = "enforce.example"}, te = {.want = "testing.example"},
	                  ot = {.want = "other.example"}, np = {.want = "nopolicy.example"};

	(void)state;
	RULES();
	assert_non_null(t.ctx.report = sts_report_new(time(NULL)));
	t.mx.starttls = true;
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	csends("MAIL FROM:<a@client.example>\r\n");
	expect("250 2.1.0");
	csends("RCPT TO:<b@enforce.example>\r\n");
	expect("250 2.1.5");
	csends("RCPT TO:<c@enforce.example>\r\n");
	expect("250 2.1.5");
	csends("RCPT TO:<b@testing.example>\r\n");
	expect("250 2.1.5");
	csends("RCPT TO:<b@nopolicy.example>\r\n");
	expect("250 2.1.5");
	csends("RCPT TO:<b@other.example>\r\n");
	expect("451 4.7.5 other.example");
	csends("DATA\r\n");
	expect("354");
	csends(message);
	expect("250 2.0.0");
	/* A second envelope that is reset: no message, no success. */
	csends("MAIL FROM:<a@client.example>\r\n");
	expect("250 2.1.0");
	csends("RCPT TO:<d@enforce.example>\r\n");
	expect("250 2.1.5");
	csends("RSET\r\n");
	expect("250");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();

	sts_report_foreach(t.ctx.report, report_row_get, &en);
	sts_report_foreach(t.ctx.report, report_row_get, &te);
	sts_report_foreach(t.ctx.report, report_row_get, &ot);
	sts_report_foreach(t.ctx.report, report_row_get, &np);
	sts_report_free(t.ctx.report);
	t.ctx.report = NULL;

	assert_true(en.found);
	assert_string_equal(en.id, "id1");
	assert_int_equal(en.mode, STS_MODE_ENFORCE);
	assert_int_equal(en.success, 1); /* one message, two recipients: one session */
	assert_int_equal(en.failure, 0);
	assert_true(te.found);
	assert_string_equal(te.id, "id2");
	assert_int_equal(te.mode, STS_MODE_TESTING);
	assert_int_equal(te.success, 1);
	assert_true(ot.found);
	assert_string_equal(ot.id, "id4");
	assert_int_equal(ot.success, 0);
	assert_int_equal(ot.failure, 1);
	assert_int_equal(ot.by_result[STS_RESULT_CERT_HOST_MISMATCH], 1);
	assert_int_equal(ot.n_details, 1);
	assert_int_equal(ot.detail0.result, STS_RESULT_CERT_HOST_MISMATCH);
	assert_string_equal(ot.detail0.mx_host, "mx.example.net");
	assert_string_equal(ot.detail0.ip, "127.0.0.1");
	assert_false(np.found); /* no policy: nothing to report */
}

/* RFC 8460 section 4.4: without TLS, a testing policy relays and counts a failure only. */
static void
rfc8460_4_4_testing_plaintext_counted_as_failure(void **state)
{
	struct report_row te = {.want = "testing.example"};

	(void)state;
	RULES();
	assert_non_null(t.ctx.report = sts_report_new(time(NULL)));
	start();
	expect("220");
	csends("EHLO client.example\r\n");
	expect("250");
	csends("MAIL FROM:<a@client.example>\r\n");
	expect("250 2.1.0");
	csends("RCPT TO:<b@testing.example>\r\n");
	expect("250 2.1.5");
	csends("DATA\r\n");
	expect("354");
	csends(message);
	expect("250 2.0.0");
	csends("QUIT\r\n");
	expect("221");
	expect_closed();
	finish();
	sts_report_foreach(t.ctx.report, report_row_get, &te);
	sts_report_free(t.ctx.report);
	t.ctx.report = NULL;
	assert_true(te.found);
	assert_int_equal(te.success, 0);
	assert_int_equal(te.failure, 1);
	assert_int_equal(te.by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1);
	assert_string_equal(te.detail0.ip, "127.0.0.1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(rfc5321_3_3_plain_relay_no_policy),
	    T(rfc3207_4_2_starttls_upgrade_post_tls_ehlo),
	    T(rfc8461_5_starttls_stripped_enforce_blocked),
	    T(rfc8461_5_testing_relayed_reported),
	    T(rfc8461_5_mixed_envelope),
	    T(rfc2920_3_1_pipelined_group_in_order),
	    T(rfc3207_5_client_starttls_injection),
	    T(rfc3207_5_upstream_response_injection),
	    T(rfc3207_4_starttls_refused_downgrade),
	    T(rfc8461_4_2_certificate_mismatch_blocked),
	    T(nostarttls_2021_mangled_capability_reported),
	    T(smtp_smuggling_endings_refused),
	    T(rfc5321_4_5_2_dot_stuffing_unchanged),
	    T(rfc5321_upstream_reset_mid_data_421),
	    T(rfc5321_4_5_3_2_timeout_after_dot_421),
	    T(rfc5321_4_5_3_2_5_steady_data_not_timed_out),
	    T(rfc5321_4_5_3_2_5_stall_after_blocks_421),
	    T(rfc5321_4_1_1_1_helo_client),
	    T(rfc5321_4_5_3_1_4_overlong_line),
	    T(rfc5321_4_1_4_ehlo_refused_helo_fallback),
	    T(relay_mail_refused_upstream),
	    T(rfc5321_connect_failure_421),
	    T(rfc5321_3_1_banner_554_relayed),
	    T(rfc8461_5_handshake_failure_plaintext_only_without_policy),
	    T(rfc8461_4_2_handshake_cut_fin_no_cleartext),
	    T(rfc8461_4_2_handshake_cut_rst_no_cleartext),
	    T(rfc8460_4_3_fallback_reported),
	    T(rfc8461_5_1_recheck_before_refusal),
	    T(rfc8461_5_1_refusal_after_recheck),
	    T(session_shutdown_all_idle),
	    T(rfc5321_4_1_1_4_reply_begun_before_dot_421),
	    T(rfc3207_4_2_client_starttls_state_reset),
	    T(rfc5321_ipv6_upstream),
	    T(upstream_mark_set_on_session_socket),
	    T(rfc8460_4_4_delivery_and_block_counted),
	    T(rfc8460_4_4_testing_plaintext_counted_as_failure),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
