// sources: proxy/session.c proxy/relay.c proxy/upstream.c proxy/upstream_pool.c proxy/txn_report.c proxy/relay_events.c proxy/smtp_cmd.c proxy/smtp_reply.c
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
 *
 * Most cases are data (struct scase): the fake MX's behaviour, the
 * policies, the mailer's transcript as steps, and what must hold after
 * the session; one function plays them all.
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
#include "proxy/upstream_pool.h"
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

/* How the fake MX behaves; set before the session starts. */
struct mx_how {
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
	/* After after_msgs messages on one connection: what an RSET gets
	 * (nothing and a close, or a 421 and a close), or a silent close
	 * idle_close_ms after the last message's 250; then a new connection
	 * is taken. */
	unsigned after_msgs;
	enum { RSET_OK = 0, RSET_421, RSET_CLOSE, RSET_SILENT } rset_after;
	unsigned idle_close_ms;
	unsigned rset_delay_ms; /* ... and that answer (or mail_after's) comes this late */
	/* After after_msgs messages on one connection: what the next MAIL
	 * gets (a 421 and a close, or a close without a reply); then a new
	 * connection is taken. */
	enum { MAIL_OK = 0, MAIL_421, MAIL_CLOSE } mail_after;
	bool later_mail_421; /* every MAIL after the first connection: 421 and a close */
	bool later_bad_cert; /* after the first connection: a certificate for mx.other.example */
	unsigned serve;      /* connections served one after another at least (0: one) */
};

struct fake_mx {
	struct mx_how how;
	/* what happened, read after the thread ended */
	char log[16384]; /* command lines received, CRLF kept */
	size_t log_len;
	char data[65536]; /* message data received */
	size_t data_len;
	bool got_dot;
	bool tls_done;
	unsigned conns, msgs, rsets; /* connections accepted, messages taken, RSETs seen */
	unsigned conn_msgs;          /* messages on the current connection */
	unsigned mails_cut;          /* MAILs answered with mail_after or later_mail_421 */
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
	SSL_CTX *mx_other;    /* ... one for mx.other.example, from the same CA */
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
		if (m->how.data_mode == DATA_RESET && m->data_len > 0) {
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
	if (m->how.starttls && m->ssl == NULL)
		mx_puts(m, "250-STARTTLS\r\n");
	if (m->how.mangled)
		mx_puts(m, "250-XXXXXXXA\r\n");
	if (m->how.pipelining && (m->ssl != NULL || !m->how.starttls))
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
	if (m->how.hs_cut == CUT_RST) {
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

	mx_puts(m, m->how.banner ? m->how.banner : "220 mx.example.net ESMTP\r\n");
	while (mx_line(m, line, sizeof(line)) == 0) {
		if (strncasecmp(line, "EHLO", 4) == 0) {
			if (m->how.ehlo_refused)
				mx_puts(m, "502 5.5.2 EHLO not implemented\r\n");
			else
				mx_ehlo(m);
		} else if (strncasecmp(line, "HELO", 4) == 0) {
			mx_puts(m, "250 mx.example.net\r\n");
		} else if (strncasecmp(line, "STARTTLS", 8) == 0) {
			const char *r =
			    m->how.starttls_reply ? m->how.starttls_reply : "220 2.0.0 Ready\r\n";
			char buf[512];

			snprintf(buf, sizeof(buf), "%s%s", r,
			         m->how.after_220 ? m->how.after_220 : "");
			mx_puts(m, buf);
			if (strncmp(r, "220", 3) != 0)
				continue;
			if (m->how.after_220 != NULL) {
				/* wait for the proxy to hang up */
				while (mx_fill(m) == 0)
					m->in_len = 0;
				break;
			}
			if (m->how.hs_cut != CUT_NONE && first) {
				mx_cut_after_flight(m);
				again = true;
				break;
			}
			if (m->how.tls_broken && first) {
				mx_fill(m); /* the ClientHello */
				m->in_len = 0;
				mx_puts(m, "HTTP/1.0 400 Bad Request\r\n\r\n");
				again = true;
				break;
			}
			m->ssl =
			    SSL_new(m->how.later_bad_cert && !first ? env.mx_other : env.mx_server);
			SSL_set_fd(m->ssl, m->fd);
			if (SSL_accept(m->ssl) != 1)
				break;
			m->tls_done = true;
		} else if (strncasecmp(line, "MAIL", 4) == 0 &&
		           ((m->how.later_mail_421 && !first) ||
		            (m->how.mail_after != MAIL_OK && m->conn_msgs >= m->how.after_msgs))) {
			m->mails_cut++;
			usleep(m->how.rset_delay_ms * 1000);
			if (m->how.mail_after == MAIL_421 || (m->how.later_mail_421 && !first))
				mx_puts(m, "421 4.7.0 Too many messages on this connection\r\n");
			again = !(m->how.later_mail_421 && !first);
			break;
		} else if (strncasecmp(line, "MAIL", 4) == 0) {
			mx_puts(m, m->how.mail_refused ? "550 5.7.1 Sender refused\r\n"
			                               : "250 2.1.0 Sender ok\r\n");
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			mx_puts(m, "250 2.1.5 Recipient ok\r\n");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			mx_puts(m, "354 End data with <CR><LF>.<CR><LF>\r\n");
			if (m->how.data_mode == DATA_EARLY)
				mx_puts(m, "250-early\r\n");
			if (mx_data(m) < 0)
				break;
			if (m->how.data_mode == DATA_NO_REPLY) {
				while (mx_fill(m) == 0)
					m->in_len = 0;
				break;
			}
			mx_puts(m, "250 2.0.0 Ok: queued as 4711\r\n");
			m->msgs++;
			m->conn_msgs++;
			if (m->how.idle_close_ms > 0 && m->conn_msgs >= m->how.after_msgs) {
				usleep(m->how.idle_close_ms * 1000);
				again = true;
				break;
			}
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			mx_puts(m, "221 2.0.0 Bye\r\n");
			break;
		} else if (strncasecmp(line, "RSET", 4) == 0 && m->how.after_msgs > 0 &&
		           m->conn_msgs >= m->how.after_msgs && m->how.rset_after != RSET_OK) {
			m->rsets++;
			usleep(m->how.rset_delay_ms * 1000);
			if (m->how.rset_after == RSET_421)
				mx_puts(m, "421 4.7.0 Too many messages on this connection\r\n");
			if (m->how.rset_after == RSET_SILENT)
				usleep(2000 * 1000); /* no answer; then the next connection */
			again = true;
			break;
		} else if (strncasecmp(line, "RSET", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0) {
			m->rsets += strncasecmp(line, "RSET", 4) == 0;
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
	unsigned served = 0;

	do {
		if (poll(&pfd, 1, 5000) != 1 || (m->fd = accept(m->lfd, NULL, NULL)) < 0)
			return NULL;
		setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		m->in_len = 0;
		m->conns++;
		m->conn_msgs = 0;
		again = mx_serve(m, first);
		first = false;
		if (m->ssl != NULL) {
			SSL_free(m->ssl);
			m->ssl = NULL;
		}
		close(m->fd);
	} while (again || ++served < m->how.serve);
	return NULL;
}

/*
 * mx_listen - listen on sa (port 0; the port taken is read back through
 * port, which points into sa) and serve one connection in a thread; false
 * when the address family or the address is not there.
 */
static bool
mx_listen(struct sockaddr *sa, socklen_t len, const in_port_t *port)
{
	struct fake_mx *m = &t.mx;

	if ((m->lfd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return false;
	if (bind(m->lfd, sa, len) != 0) {
		close(m->lfd);
		return false;
	}
	assert_int_equal(listen(m->lfd, 4), 0);
	assert_int_equal(getsockname(m->lfd, sa, &len), 0);
	m->port = ntohs(*port);
	assert_int_equal(pthread_create(&m->th, NULL, mx_thread, m), 0);
	m->running = true;
	return true;
}

/* mx_start - listen on 127.0.0.1 and serve one connection in a thread. */
static void
mx_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	assert_true(mx_listen((struct sockaddr *)&sin, sizeof(sin), &sin.sin_port));
}

/* mx_start6 - as mx_start(), on [::1]; false when the host has no IPv6 loopback. */
static bool
mx_start6(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};

	return mx_listen((struct sockaddr *)&sin6, sizeof(sin6), &sin6.sin6_port);
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

/* unused_port - a port of 127.0.0.1 nobody listens on: bound, noted and closed again. */
static uint16_t
unused_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* --- the mailer side --------------------------------------------------------- */

static void
on_end(void *arg)
{
	(void)arg;
	t.ended++;
}

/* session_to - a session from client toward dst; the mailer holds the other end. */
static void
session_to(const struct sockaddr *client, socklen_t client_len, const struct sockaddr *dst,
           socklen_t dst_len)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t.cfd = sv[1];
	fcntl(t.cfd, F_SETFL, fcntl(t.cfd, F_GETFL) | O_NONBLOCK);
	assert_int_equal(session_start(&t.ctx, sv[0], client, client_len, dst, dst_len), 0);
}

/* start_at - a session from 10.0.0.1 whose original destination is 127.0.0.1:port. */
static void
start_at(uint16_t port)
{
	struct sockaddr_in client = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in dst = {.sin_family = AF_INET,
	                          .sin_port = htons(port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	inet_pton(AF_INET, "10.0.0.1", &client.sin_addr);
	session_to((struct sockaddr *)&client, sizeof(client), (struct sockaddr *)&dst,
	           sizeof(dst));
}

/* start6_at - a session from 2001:db8::1 whose original destination is [::1]:port. */
static void
start6_at(uint16_t port)
{
	struct sockaddr_in6 client = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};
	struct sockaddr_in6 dst = {
	    .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};

	inet_pton(AF_INET6, "2001:db8::1", &client.sin6_addr);
	session_to((struct sockaddr *)&client, sizeof(client), (struct sockaddr *)&dst,
	           sizeof(dst));
}

/* start - the fake MX runs; a session is started toward it. */
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

/*
 * expect_at - the next reply starts with prefix; returns it in a static
 * buffer. where and n name the place of the expectation in a failure.
 */
static const char *
expect_at(const char *prefix, const char *where, size_t n)
{
	static char r[8192];

	if (!creply(r, sizeof(r)))
		fail_msg("%s %zu: no reply, wanted \"%s\"", where, n, prefix);
	if (strncmp(r, prefix, strlen(prefix)) != 0)
		fail_msg("%s %zu: got \"%s\", wanted \"%s\"", where, n, r, prefix);
	return r;
}
#define expect(p) expect_at((p), "line", __LINE__)

/* expect_closed_at - the proxy closes the client's connection (and sent no further reply). */
static void
expect_closed_at(const char *where, size_t n)
{
	for (int i = 0; i < 800 && cread(); i++)
		loop_once(t.loop, 10);
	if (!t.ceof)
		fail_msg("%s %zu: connection still open", where, n);
	if (t.clen != 0)
		fail_msg("%s %zu: unexpected bytes before close: \"%s\"", where, n, t.cbuf);
}

/* run_ms - run the proxy's loop for about ms milliseconds. */
static void
run_ms(uint64_t ms)
{
	uint64_t end = loop_now_ms(t.loop) + ms;

	while (loop_now_ms(t.loop) < end)
		loop_once(t.loop, 10);
}

/* drain - run the loop until no session is left (8 s at most). */
static void
drain(void)
{
	for (int i = 0; i < 800 && session_count(&t.ctx) > 0; i++)
		loop_once(t.loop, 10);
}

/* finish - the session ends; the fake MX thread ends. */
static void
finish(void)
{
	drain();
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

/*
 * jpath - the string at path in o: keys joined by dots, a number indexing
 * an array ("tls.sans", "mx.0"); NULL when there is none.
 */
static const char *
jpath(json_t *o, const char *path)
{
	char key[64];

	while (o != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		if (json_is_array(o))
			o = json_array_get(o, strtoul(key, NULL, 10));
		else
			o = json_object_get(o, key);
		path += n + (path[n] == '.');
	}
	return json_string_value(o);
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

/* --- fixtures ------------------------------------------------------------------ */

static int
group_setup(void **state)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256];
	const char *sans[] = {"mx.example.net"}, *other[] = {"mx.other.example"};

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
	if (testca_issue(env.ca, "mx-other", other, 1, 0, crt, key) != 0)
		return -1;
	env.mx_other = tls_server_ctx_new(crt, key, err, sizeof(err));
	if (env.mx_server == NULL || env.mx_other == NULL || env.upstream == NULL ||
	    env.client_side == NULL || env.mailer == NULL) {
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
	SSL_CTX_free(env.mx_other);
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
	drain();
	SSL_free(t.cssl);
	t.cssl = NULL;
	if (t.cfd >= 0)
		close(t.cfd);
	drain();
	/* Parked connections end with a QUIT: the fake MX finishes. */
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	sts_report_free(t.ctx.report);
	sts_engine_free(t.engine);
	loop_free(t.loop);
	free(t.conf.state_dir);
	free(t.conf.nfq.queues);
	free(t.conf.shared.prefix);
	return 0;
}

/* --- cases as data ------------------------------------------------------------ */

/*
 * A case is data: how the fake MX behaves, the policies, the mailer's
 * side of the transcript, and what must hold once the session ended.
 * run() plays one from start to end; a test that needs more (its own
 * start, a branch on what the proxy answered) uses the same pieces:
 * prepare(), begin(), play() and verify().
 */

enum op {
	OP_END = 0,
	OP_SEND,     /* the mailer sends the string s */
	OP_SEND_N,   /* the mailer sends exactly n octets at s */
	OP_REPLY,    /* the next whole reply starts with s, and comes no sooner than n ms */
	OP_HAS,      /* the last reply contains s */
	OP_LACKS,    /* the last reply does not contain s */
	OP_CLOSED,   /* the proxy closes the mailer's connection, sending nothing more */
	OP_SPIN,     /* n turns of the proxy's loop */
	OP_WAIT,     /* run the proxy's loop for n ms */
	OP_TLS,      /* the mailer's TLS handshake, after the 220 to its STARTTLS */
	OP_SHUTDOWN, /* a draining stop: session_shutdown_all() */
};

struct step {
	enum op op;
	const char *s;
	size_t n;
};

/* ITEM(a, b) is {a, b}: the one braced macro, so that the formatter keeps the others short. */
#define ITEM(...)                                                                                  \
	{                                                                                          \
		__VA_ARGS__                                                                        \
	}
#define C(x)                ITEM(OP_SEND, (x), 0)
#define C_N(p, len)         ITEM(OP_SEND_N, (p), (len))
#define S(x)                ITEM(OP_REPLY, (x), 0)
#define S_NOT_BEFORE(x, ms) ITEM(OP_REPLY, (x), (ms))
#define HAS(x)              ITEM(OP_HAS, (x), 0)
#define LACKS(x)            ITEM(OP_LACKS, (x), 0)
#define CLOSED              ITEM(OP_CLOSED, NULL, 0)
#define SPIN(k)             ITEM(OP_SPIN, NULL, (k))
#define WAIT_MS(ms)         ITEM(OP_WAIT, NULL, (ms))
#define MAILER_TLS          ITEM(OP_TLS, NULL, 0)
#define SHUTDOWN_ALL        ITEM(OP_SHUTDOWN, NULL, 0)
#define STEPS(...)          ((const struct step[]){__VA_ARGS__, {OP_END, NULL, 0}})

/* The words of most transcripts. */
#define EHLO       "EHLO client.example\r\n"
#define MAIL       "MAIL FROM:<a@client.example>\r\n"
#define RCPT(addr) "RCPT TO:<" addr ">\r\n"
#define QUIT       C("QUIT\r\n"), S("221")
/* From the banner to the 354 of a transaction with one recipient, pipelined up to DATA. */
#define TO_DATA(addr)                                                                              \
	S("220"), C(EHLO MAIL RCPT(addr)), S("250"), S("250"), S("250"), C("DATA\r\n"), S("354")

/* A field of an event and what it must be. */
enum match { IS = 0, STARTS, CONTAINS, A_STRING };
struct field {
	const char *key; /* a jpath() */
	const char *want;
	enum match how;
};
#define F_IS(k, v)     ITEM((k), (v), IS)
#define F_STARTS(k, v) ITEM((k), (v), STARTS)
#define F_HAS(k, v)    ITEM((k), (v), CONTAINS)
#define F_STRING(k)    ITEM((k), NULL, A_STRING)

/* The first event of kind (for domain; NULL: any) and its fields, or its absence. */
struct event_want {
	const char *kind, *domain;
	bool absent;
	struct field f[12];
};
#define EVENT(kind, dom, ...) ITEM((kind), (dom), false, ITEM(__VA_ARGS__))
#define NO_EVENT(kind, dom)   ITEM((kind), (dom), true, ITEM(ITEM(NULL, NULL, IS)))

/* A counter of struct session_stats and its value. */
struct count {
	const char *name;
	size_t off;
	uint64_t want;
};
#define COUNT(f, v) ITEM(#f, offsetof(struct session_stats, f), (v))

enum tri { ANY = 0, YES, NO };

struct scase {
	/* before the session */
	bool policy;                         /* rules[] below; else no domain has a policy */
	const struct fake_sts_rule *recheck; /* what rechecks answer (fake_sts_set_recheck) */
	size_t n_recheck;
	struct mx_how mx;
	bool no_mx;      /* nobody listens at the original destination */
	bool client_tls; /* STARTTLS is offered to the mailer */
	bool report;     /* TLS-RPT results are counted in t.ctx.report */
	unsigned max_line, data_block_s, data_done_s; /* 0: the fixture's */
	const struct step *steps;
	/* after it */
	const char *saw[4];    /* the MX received a line starting with each */
	const char *unseen[4]; /* ... and none starting with any of these */
	enum tri got_dot, tls_done;
	const char *data; /* the message data the MX received, exactly */
	struct count counts[3];
	unsigned async_lookups, rechecks; /* of the fake engine; 0: not checked */
	struct event_want events[2];
};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct fake_sts_rule rules[] = {
    {"enforce.example", STS_POLICY, STS_MODE_ENFORCE, "id1", "mx.example.net", false},
    {"testing.example", STS_POLICY, STS_MODE_TESTING, "id2", "mx.example.net", false},
    {"async.example", STS_POLICY, STS_MODE_ENFORCE, "id3", "mx.example.net", true},
    {"other.example", STS_POLICY, STS_MODE_ENFORCE, "id4", "mx.other.example", false},
    {"defer.example", STS_DEFER, STS_MODE_NONE, NULL, NULL, false},
};

static const char message[] = "Subject: test\r\n\r\nhello\r\n.\r\n";

/* prepare - the fixture as c wants it, before its session starts. */
static void
prepare(const struct scase *c)
{
	if (c->policy)
		fake_sts_set(rules, LEN(rules));
	if (c->recheck != NULL)
		fake_sts_set_recheck(c->recheck, c->n_recheck);
	t.mx.how = c->mx;
	if (c->client_tls)
		t.ctx.client_tls = env.client_side;
	if (c->report)
		assert_non_null(t.ctx.report = sts_report_new(time(NULL)));
	if (c->max_line > 0)
		t.conf.max_line = c->max_line;
	if (c->data_block_s > 0)
		t.conf.timeouts.data_block = c->data_block_s;
	if (c->data_done_s > 0)
		t.conf.timeouts.data_done = c->data_done_s;
}

/* play - the steps up to OP_END (none when st is NULL); a failure names the step from 1. */
static void
play(const struct step *st)
{
	const char *last = NULL;

	for (size_t i = 1; st != NULL && st->op != OP_END; st++, i++) {
		uint64_t t0 = loop_now_ms(t.loop);

		switch (st->op) {
		case OP_SEND:
			csends(st->s);
			break;
		case OP_SEND_N:
			csend(st->s, st->n);
			break;
		case OP_REPLY:
			last = expect_at(st->s, "step", i);
			if (loop_now_ms(t.loop) - t0 < st->n)
				fail_msg("step %zu: \"%s\" after %llu ms, not before %zu wanted", i,
				         st->s, (unsigned long long)(loop_now_ms(t.loop) - t0),
				         st->n);
			break;
		case OP_HAS:
		case OP_LACKS:
			if (last == NULL || (strstr(last, st->s) != NULL) != (st->op == OP_HAS))
				fail_msg("step %zu: the reply \"%s\" %s \"%s\"", i,
				         last != NULL ? last : "(none)",
				         st->op == OP_HAS ? "lacks" : "has", st->s);
			break;
		case OP_CLOSED:
			expect_closed_at("step", i);
			break;
		case OP_SPIN:
			for (size_t k = 0; k < st->n; k++)
				loop_once(t.loop, 10);
			break;
		case OP_WAIT:
			run_ms(st->n);
			break;
		case OP_TLS:
			mailer_starttls();
			break;
		case OP_SHUTDOWN:
			session_shutdown_all(&t.ctx);
			break;
		case OP_END:
			break;
		}
	}
}

/* check_tri - what the fake MX noted as name is as wanted. */
static void
check_tri(const char *name, enum tri want, bool got)
{
	if (want != ANY && got != (want == YES))
		fail_msg("the fake MX's %s is %s", name, got ? "true" : "false");
}

/* check_event - w holds in the event file. */
static void
check_event(const struct event_want *w)
{
	const char *dom = w->domain != NULL ? w->domain : "any domain";
	json_t *ev = event_find(w->kind, w->domain);
	char why[512] = "";

	if (w->absent) {
		bool found = ev != NULL;

		json_decref(ev);
		if (found)
			fail_msg("a %s event for %s", w->kind, dom);
		return;
	}
	if (ev == NULL)
		fail_msg("no %s event for %s", w->kind, dom);
	for (const struct field *f = w->f; f < w->f + LEN(w->f) && f->key != NULL; f++) {
		const char *v = jpath(ev, f->key);
		bool ok = v != NULL;

		if (ok && f->how == IS)
			ok = strcmp(v, f->want) == 0;
		else if (ok && f->how == STARTS)
			ok = strncmp(v, f->want, strlen(f->want)) == 0;
		else if (ok && f->how == CONTAINS)
			ok = strstr(v, f->want) != NULL;
		if (!ok) {
			snprintf(why, sizeof(why), "%s event for %s: %s is \"%s\", wanted \"%s\"",
			         w->kind, dom, f->key, v != NULL ? v : "(none)",
			         f->want != NULL ? f->want : "a string");
			break;
		}
	}
	json_decref(ev);
	if (why[0] != '\0')
		fail_msg("%s", why);
}

/* verify - the session ends; then all that c wants of it holds. */
static void
verify(const struct scase *c)
{
	finish();
	for (size_t i = 0; i < LEN(c->saw) && c->saw[i] != NULL; i++)
		if (!mx_saw(c->saw[i]))
			fail_msg("the fake MX never received \"%s\"", c->saw[i]);
	for (size_t i = 0; i < LEN(c->unseen) && c->unseen[i] != NULL; i++)
		if (mx_saw(c->unseen[i]))
			fail_msg("the fake MX received \"%s\"", c->unseen[i]);
	check_tri("got_dot", c->got_dot, t.mx.got_dot);
	check_tri("tls_done", c->tls_done, t.mx.tls_done);
	if (c->data != NULL) {
		assert_int_equal(t.mx.data_len, strlen(c->data));
		assert_memory_equal(t.mx.data, c->data, strlen(c->data));
	}
	for (const struct count *k = c->counts; k < c->counts + LEN(c->counts) && k->name != NULL;
	     k++) {
		uint64_t got = *(const _Atomic uint64_t *)((const char *)&t.stats + k->off);

		if (got != k->want)
			fail_msg("%s is %llu, wanted %llu", k->name, (unsigned long long)got,
			         (unsigned long long)k->want);
	}
	if (c->async_lookups > 0)
		assert_int_equal(fake_sts_async_count(), c->async_lookups);
	if (c->rechecks > 0)
		assert_int_equal(fake_sts_recheck_count(), c->rechecks);
	for (size_t i = 0; i < LEN(c->events) && c->events[i].kind != NULL; i++)
		check_event(&c->events[i]);
}

/* begin - c's fixture, its session started, its steps played. */
static void
begin(const struct scase *c)
{
	prepare(c);
	if (c->no_mx)
		start_at(unused_port());
	else
		start();
	play(c->steps);
}

/* run - c from start to end. */
static void
run(const struct scase *c)
{
	begin(c);
	verify(c);
}

/* run_case - the cmocka test of a case given as its initial state. */
static void
run_case(void **state)
{
	run(*state);
}

/* --- the cases ------------------------------------------------------------------ */

/* RFC 5321 section 3.3: a plain relay without any policy, data unchanged. */
static const struct scase rfc5321_3_3_plain_relay_no_policy = {
    .steps = STEPS(S("220 mx.example.net ESMTP"), C(EHLO), S("250-mx.example.net"),
                   LACKS("STARTTLS"), LACKS("CHUNKING"), LACKS("AUTH"), HAS("8BITMIME"), C(MAIL),
                   S("250 2.1.0"), C(RCPT("b@nopolicy.example")), S("250 2.1.5"), C("DATA\r\n"),
                   S("354"), C(message), S("250 2.0.0 Ok: queued as 4711"), QUIT, CLOSED),
    .saw = {"EHLO client.example\r\n", "MAIL FROM:<a@client.example>\r\n",
            "RCPT TO:<b@nopolicy.example>\r\n"},
    .data = message,
    .counts = {COUNT(messages_relayed[STS_MODE_NONE], 1)},
};

/* RFC 3207 section 4.2: upstream upgraded; only the post-TLS EHLO is used. */
static const struct scase rfc3207_4_2_starttls_upgrade_post_tls_ehlo = {
    .policy = true,
    .mx = {.starttls = true, .pipelining = true}, /* PIPELINING only after TLS */
    .steps = STEPS(S("220"), C(EHLO), S("250-mx.example.net"), HAS("PIPELINING"), LACKS("STARTTLS"),
                   C(MAIL RCPT("b@enforce.example")), S("250 2.1.0"), S("250 2.1.5"), C("DATA\r\n"),
                   S("354"), C(message), S("250 2.0.0"), QUIT, CLOSED),
    .tls_done = YES,
    .saw = {"STARTTLS\r\n"},
    .counts = {COUNT(tls_upstream, 1), COUNT(messages_relayed[STS_MODE_ENFORCE], 1)},
    .events = {NO_EVENT("policy-failure", "enforce.example")},
};

/* RFC 8461 section 5: STARTTLS stripped + enforce: 451 4.7.4, upstream sees nothing. */
static const struct scase rfc8461_5_starttls_stripped_enforce_blocked = {
    .policy = true,
    .steps = STEPS(S("220"), C(EHLO), S("250"), C(MAIL), S("250 2.1.0"),
                   C(RCPT("b@enforce.example")), S("451 4.7.4 enforce.example: MX 127.0.0.1:"),
                   C("DATA\r\n"), S("554 5.5.1"), QUIT, CLOSED),
    .unseen = {"RCPT", "MAIL"},
    .counts = {COUNT(recipients_blocked[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1)},
    .events = {EVENT("policy-failure", "enforce.example", F_IS("source", "proxy"),
                     F_IS("action", "blocked"), F_IS("result_type", "starttls-not-supported"),
                     F_IS("mode", "enforce"), F_IS("policy_id", "id1"),
                     F_IS("policy_source", "cache"), F_IS("client", "10.0.0.1"),
                     F_STARTS("dest", "127.0.0.1:"), F_STARTS("session", "w0-"), F_STRING("ts"),
                     F_IS("mx.0", "mx.example.net"))},
};

/* RFC 8461 section 5: a testing policy relays and reports. */
static const struct scase rfc8461_5_testing_relayed_reported = {
    .policy = true,
    .steps = STEPS(S("220"), C(EHLO MAIL RCPT("b@testing.example")), S("250"), S("250 2.1.0"),
                   S("250 2.1.5"), QUIT, CLOSED),
    .saw = {"RCPT TO:<b@testing.example>\r\n"},
    .events = {EVENT("policy-failure", "testing.example", F_IS("action", "reported"),
                     F_IS("mode", "testing"), F_IS("result_type", "starttls-not-supported"))},
    .counts = {COUNT(recipients_reported[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1)},
};

/* RFC 8461 section 5: one passing and one failing recipient in one envelope. */
static const struct scase rfc8461_5_mixed_envelope = {
    .policy = true,
    .steps = STEPS(S("220"), C(EHLO), S("250"), C(MAIL), S("250"), C(RCPT("b@nopolicy.example")),
                   S("250 2.1.5"), C(RCPT("c@enforce.example")), S("451 4.7.4"), C("DATA\r\n"),
                   S("354"), C(message), S("250 2.0.0"), QUIT),
    .saw = {"RCPT TO:<b@nopolicy.example>"},
    .unseen = {"RCPT TO:<c@enforce.example>"},
    .got_dot = YES,
};

/* RFC 2920 section 3.1: one pipelined group, replies strictly in order. */
static const struct scase rfc2920_3_1_pipelined_group_in_order = {
    .policy = true,
    .mx = {.pipelining = true},
    .steps = STEPS(S("220"), C(EHLO), S("250"),
                   C(MAIL RCPT("b@nopolicy.example") RCPT("c@async.example") RCPT(
                       "d@enforce.example") RCPT("e@defer.example") RCPT("f@x.example") "DATA\r\n"),
                   S("250 2.1.0"), S("250 2.1.5"), S("451 4.7.4 async.example"),
                   S("451 4.7.4 enforce.example"), S("451 4.4.3 defer.example"), S("250 2.1.5"),
                   S("354"), C(message), S("250 2.0.0"), QUIT),
    .async_lookups = 1,
    .saw = {"RCPT TO:<f@x.example>"},
    .unseen = {"RCPT TO:<c@async.example>"},
    .events = {EVENT("policy-defer", "defer.example", F_IS("action", "deferred"))},
};

/* RFC 3207 section 5: bytes pipelined behind the client's STARTTLS are refused. */
static const struct scase rfc3207_5_client_starttls_injection = {
    .client_tls = true,
    .steps = STEPS(S("220"), C(EHLO), S("250"), HAS("STARTTLS"),
                   C("STARTTLS\r\nMAIL FROM:<evil@client.example>\r\n"), S("554 5.5.0"), CLOSED),
    .unseen = {"MAIL"},
    .events = {EVENT("injection", NULL, F_IS("action", "refused"))},
};

/* RFC 3207 section 5: the upstream's bytes after its 220 abort the upstream. */
static const struct scase rfc3207_5_upstream_response_injection = {
    .mx = {.starttls = true, .after_220 = "250-injected\r\n"},
    .steps = STEPS(S("220"), C(EHLO), S("421 4.7.0"), CLOSED),
    .events = {EVENT("injection", NULL, F_IS("action", "aborted"), F_HAS("seen", "250-injected"))},
};

/* RFC 3207: a refused STARTTLS is a downgrade; the enforce recipient is blocked. */
static const struct scase rfc3207_4_starttls_refused_downgrade = {
    .policy = true,
    .mx = {.starttls = true, .starttls_reply = "454 4.7.0 TLS not available\r\n"},
    .steps = STEPS(S("220"), C(EHLO), S("250"), C(MAIL RCPT("b@enforce.example")), S("250"),
                   S("451 4.7.4"), QUIT),
    .events = {EVENT("downgrade", NULL, F_IS("result_type", "starttls-not-supported"),
                     F_HAS("seen", "454 4.7.0"))},
};

/* RFC 8461 section 4.2: a certificate not valid for the policy's MX: 451 4.7.5. */
static const struct scase rfc8461_4_2_certificate_mismatch_blocked = {
    .policy = true,
    .mx = {.starttls = true},
    .steps = STEPS(S("220"), C(EHLO MAIL RCPT("b@other.example")), S("250"), S("250"),
                   S("451 4.7.5 other.example"), QUIT),
    .unseen = {"RCPT"},
    .events = {EVENT("policy-failure", "other.example",
                     F_IS("result_type", "certificate-host-mismatch"),
                     F_HAS("tls.sans", "mx.example.net"))},
};

/* A mangled STARTTLS capability is reported with the line that replaced it. */
static const struct scase nostarttls_2021_mangled_capability_reported = {
    .policy = true,
    .mx = {.mangled = true},
    .steps = STEPS(S("220"), C(EHLO MAIL RCPT("b@enforce.example")), S("250"), S("250"),
                   S("451 4.7.4"), QUIT),
    .events = {EVENT("downgrade", NULL, F_IS("seen", "XXXXXXXA")),
               EVENT("policy-failure", "enforce.example", F_IS("seen", "XXXXXXXA"))},
};

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
	const struct scase c = {
	    .steps = STEPS(TO_DATA("b@nopolicy.example"), C("Subject: s\r\n\r\n")),
	    .got_dot = NO,                    /* the upstream saw no end of data */
	    .unseen = {"MAIL FROM:<s@evil>"}, /* nor the smuggled command */
	};

	(void)state;
	for (size_t i = 0; i < LEN(cases); i++) {
		const char *d = cases[i].data;
		size_t len = cases[i].len, split = cases[i].split;

		if (i > 0) {
			teardown(NULL);
			assert_int_equal(setup(NULL), 0);
		}
		print_message("case %s\n", cases[i].name);
		begin(&c);
		play(STEPS(C_N(d, split), SPIN(split > 0 ? 10 : 0), C_N(d + split, len - split),
		           S("554 5."), CLOSED));
		verify(&c);
		/* no lone CR or LF ever went upstream, not even a held one */
		for (size_t k = 0; k < t.mx.data_len; k++)
			if ((t.mx.data[k] == '\r' &&
			     (k + 1 >= t.mx.data_len || t.mx.data[k + 1] != '\n')) ||
			    (t.mx.data[k] == '\n' && (k == 0 || t.mx.data[k - 1] != '\r')))
				fail_msg("%s: bare CR/LF at %zu reached the upstream",
				         cases[i].name, k);
	}
}

static const char dots[] = "Subject: dots\r\n\r\n..one leading dot\r\n...two\r\n.\r\n";

/* RFC 5321 section 4.5.2: dot-stuffed lines arrive exactly as sent. */
static const struct scase rfc5321_4_5_2_dot_stuffing_unchanged = {
    /* split inside the final CRLF.CRLF */
    .steps = STEPS(TO_DATA("b@x.example"), C_N(dots, sizeof(dots) - 4), SPIN(5),
                   C_N(dots + sizeof(dots) - 4, 3), S("250 2.0.0"), QUIT),
    .data = dots,
};

/* RFC-NOTES "Replies the client sees": upstream reset mid-DATA -> 421 4.4.2, no 250. */
static const struct scase rfc5321_upstream_reset_mid_data_421 = {
    .mx = {.data_mode = DATA_RESET},
    .steps = STEPS(TO_DATA("b@x.example"), C("Subject: partial\r\n"), S("421 4.4.2"), CLOSED),
    .got_dot = NO,
};

/* RFC 5321 section 4.5.3.2.6: no reply to the final dot in time -> 421, never 250. */
static const struct scase rfc5321_4_5_3_2_timeout_after_dot_421 = {
    .data_done_s = 1,
    .mx = {.data_mode = DATA_NO_REPLY},
    .steps = STEPS(TO_DATA("b@x.example"), C(message), S("421 4.4.2"), CLOSED),
    .got_dot = YES,
    .counts = {COUNT(messages_relayed[0], 0)},
};

/* A line of data, 400 ms after the one before: well within a 1 s block limit. */
#define SLOW_LINE WAIT_MS(400), C("line\r\n")

/*
 * RFC 5321 section 4.5.3.2.5: the data block limit runs from the last block
 * received, so a message that arrives slowly but steadily is not cut off,
 * however long it takes in all.
 */
static const struct scase rfc5321_4_5_3_2_5_steady_data_not_timed_out = {
    .data_block_s = 1,
    .steps = STEPS(TO_DATA("b@x.example"), C("Subject: slow\r\n\r\n"), SLOW_LINE, SLOW_LINE,
                   SLOW_LINE, SLOW_LINE, SLOW_LINE, SLOW_LINE, C(".\r\n"), S("250"), QUIT, CLOSED),
    .got_dot = YES,
};

/* RFC 5321 section 4.5.3.2.5: ... and a stall times out one limit after the last block. */
static const struct scase rfc5321_4_5_3_2_5_stall_after_blocks_421 = {
    .data_block_s = 1,
    .steps = STEPS(TO_DATA("b@x.example"), SLOW_LINE, SLOW_LINE, SLOW_LINE, SPIN(1),
                   S_NOT_BEFORE("421 4.4.2", 800), CLOSED),
    .got_dot = NO,
};

/*
 * RFC 5321 section 4.1.1.4: the reply to the final dot comes after the
 * dot. A reply begun during the data (its first line arrived before the
 * dot was sent) is unsolicited, even when it ends after the dot: the
 * mailer gets 421 4.4.2, never that 250.
 */
static const struct scase rfc5321_4_1_1_4_reply_begun_before_dot_421 = {
    .mx = {.data_mode = DATA_EARLY},
    /* the spins let the early line arrive during the data */
    .steps = STEPS(TO_DATA("b@x.example"), SPIN(10), C(message), S("421 4.4.2"), CLOSED),
    .got_dot = YES,
    .counts = {COUNT(messages_relayed[STS_MODE_NONE], 0)},
};

/* RFC 5321 section 4.1.1.1: a HELO client gets a plain 250; the upstream gets EHLO. */
static const struct scase rfc5321_4_1_1_1_helo_client = {
    .steps = STEPS(S("220"), C("HELO client.example\r\n"), S("250 mx.example.net\r\n"), QUIT),
    .saw = {"EHLO client.example\r\n"},
    .unseen = {"HELO"},
};

/* RFC 5321 section 4.5.3.1.4: an overlong command line -> 500 and close. */
static void
rfc5321_4_5_3_1_4_overlong_line(void **state)
{
	const struct scase c = {.max_line = 512, .steps = STEPS(S("220"))};
	char line[700];

	(void)state;
	memset(line, 'A', sizeof(line));
	begin(&c);
	play(STEPS(C_N(line, sizeof(line)), S("500 5.5.6"), CLOSED));
	verify(&c);
}

/* RFC 5321 section 4.1.4: EHLO refused -> HELO, no STARTTLS -> enforce blocked. */
static const struct scase rfc5321_4_1_4_ehlo_refused_helo_fallback = {
    .policy = true,
    .mx = {.ehlo_refused = true},
    .steps = STEPS(S("220"), C(EHLO), S("250 mx.example.net\r\n"),
                   C(MAIL RCPT("b@enforce.example")), S("250"), S("451 4.7.4"), QUIT),
    .saw = {"HELO client.example"},
    .unseen = {"RCPT"},
    .events = {EVENT("policy-failure", "enforce.example",
                     F_IS("result_type", "starttls-not-supported"))},
};

/* Relay semantics: the upstream refuses the held MAIL; the recipient gets that reply. */
static const struct scase relay_mail_refused_upstream = {
    .mx = {.mail_refused = true},
    .steps = STEPS(S("220"), C(EHLO MAIL RCPT("b@x.example")), S("250"), S("250 2.1.0"),
                   S("550 5.7.1 Sender refused"), C("DATA\r\n"), S("554 5.5.1"), QUIT),
};

/* Upstream unreachable: 421 4.4.1 and close. */
static const struct scase rfc5321_connect_failure_421 = {
    .no_mx = true,
    .steps = STEPS(S("421 4.4.1"), CLOSED),
};

/* A refusing banner is relayed as it is, and the upstream is followed. */
static const struct scase rfc5321_3_1_banner_554_relayed = {
    .mx = {.banner = "554 5.3.2 No service here\r\n"},
    .steps = STEPS(S("554 5.3.2 No service here"), QUIT, CLOSED),
};

/*
 * RFC 8461 section 5: a failed upstream handshake reconnects without
 * STARTTLS; a recipient without policy goes on, an enforce one is blocked.
 */
static const struct scase rfc8461_5_handshake_failure_plaintext_only_without_policy = {
    .policy = true,
    .mx = {.starttls = true, .tls_broken = true},
    .steps = STEPS(S("220 mx.example.net"), C(EHLO), S("250-mx.example.net"),
                   C(MAIL RCPT("b@enforce.example") RCPT("c@nopolicy.example") "DATA\r\n"),
                   S("250 2.1.0"), S("451 4.7.5 enforce.example"), S("250 2.1.5"), S("354"),
                   C(message), S("250 2.0.0"), QUIT, CLOSED),
    .tls_done = NO,
    .unseen = {"RCPT TO:<b@enforce.example>"},
    .saw = {"RCPT TO:<c@nopolicy.example>"},
    .got_dot = YES,
    .events = {EVENT("policy-failure", "enforce.example", F_IS("result_type", "validation-failure"),
                     F_IS("action", "blocked"))},
};

/*
 * A handshake cut right behind the server's last flight (FIN or RST in the
 * same breath) is a lost upstream once the handshake completed, never a
 * failed handshake: no plaintext reconnect carries an enforce recipient,
 * whatever the client does next.
 */
static void
cut_after_flight(int cut)
{
	const struct scase c = {
	    .policy = true,
	    .mx = {.starttls = true, .hs_cut = cut},
	    .steps = STEPS(S("220 mx.example.net"), C(EHLO)),
	    .unseen = {"RCPT TO:<b@enforce.example>", "MAIL FROM"},
	};
	char r[8192];

	begin(&c);
	assert_true(creply(r, sizeof(r)));
	if (strncmp(r, "250", 3) == 0)
		/* Only a plaintext fallback after a handshake that did not complete
		 * may go on: it must refuse the enforce recipient. */
		play(STEPS(C(MAIL RCPT("b@enforce.example")), S("250 2.1.0"),
		           S("451 4.7.5 enforce.example"), QUIT));
	else
		assert_true(strncmp(r, "421 4.4.2", 9) == 0);
	play(STEPS(CLOSED));
	verify(&c);
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
static const struct scase rfc8460_4_3_fallback_reported = {
    .policy = true,
    .mx = {.starttls = true, .tls_broken = true},
    .steps = STEPS(S("220 mx.example.net"), C(EHLO "QUIT\r\n"), S("250-mx.example.net"), S("221"),
                   CLOSED),
    .events = {EVENT("downgrade", NULL, F_IS("action", "fallback-plaintext"),
                     F_IS("result_type", "validation-failure"))},
};

/* other.example's policy now names the MX the session reached. */
static const struct fake_sts_rule other_now_here[] = {
    {"other.example", STS_POLICY, STS_MODE_ENFORCE, "id5", "mx.example.net", false},
};

/*
 * RFC 8461 section 5.1: before a recipient is refused, the policy is looked
 * up again; a domain that replaced its policy (new MX names) is judged on
 * the new one, and a confirmed failure is refused once.
 */
static const struct scase rfc8461_5_1_recheck_before_refusal = {
    .policy = true,
    .recheck = other_now_here,
    .n_recheck = LEN(other_now_here),
    .mx = {.starttls = true},
    .steps =
        STEPS(S("220"), C(EHLO MAIL RCPT("b@other.example") "RSET\r\nQUIT\r\n"),
              S("250-mx.example.net"), S("250 2.1.0"), S("250 2.1.5"), S("250"), S("221"), CLOSED),
    .rechecks = 1,
    .saw = {"RCPT TO:<b@other.example>"},
};

/* The same failure with the policy unchanged: refused after one recheck. */
static const struct scase rfc8461_5_1_refusal_after_recheck = {
    .policy = true,
    .mx = {.starttls = true},
    .steps =
        STEPS(S("220"), C(EHLO MAIL RCPT("b@other.example") "QUIT\r\n"), S("250-mx.example.net"),
              S("250 2.1.0"), S("451 4.7.5 other.example"), S("221"), CLOSED),
    .rechecks = 1,
    .unseen = {"RCPT TO:<b@other.example>"},
};

/* Draining stop: an idle session gets 421 4.3.2. */
static const struct scase session_shutdown_all_idle = {
    .steps = STEPS(S("220"), C(EHLO), S("250"), SHUTDOWN_ALL, S("421 4.3.2"), CLOSED),
};

/*
 * RFC 3207 section 4.2: a successful STARTTLS from the mailer. The proxy
 * forgets the EHLO and the MAIL given before TLS, no longer offers
 * STARTTLS, and relays the message over the protected leg.
 */
static const struct scase rfc3207_4_2_client_starttls_state_reset = {
    .client_tls = true,
    .mx = {.pipelining = true},
    .steps = STEPS(S("220 mx.example.net"), C(EHLO), S("250-mx.example.net"), HAS("STARTTLS"),
                   C("MAIL FROM:<pre@client.example>\r\n"), S("250 2.1.0"), C("STARTTLS\r\n"),
                   S("220 2.0.0"), MAILER_TLS,
                   /* the greeting given before TLS no longer counts */
                   C(MAIL), S("503 5.5.1 Send EHLO first"), C(EHLO), S("250-mx.example.net"),
                   LACKS("STARTTLS"), HAS("PIPELINING"),
                   /* nor does the transaction begun before TLS */
                   C(RCPT("b@nopolicy.example")), S("503 5.5.1 Need MAIL"),
                   C(MAIL RCPT("b@nopolicy.example") "DATA\r\n"), S("250 2.1.0"), S("250 2.1.5"),
                   S("354"), C(message), S("250 2.0.0 Ok: queued as 4711"), QUIT, CLOSED),
    .unseen = {"MAIL FROM:<pre@"},
    .saw = {"MAIL FROM:<a@client.example>\r\n", "RCPT TO:<b@nopolicy.example>\r\n"},
    .data = message,
    .counts = {COUNT(messages_relayed[STS_MODE_NONE], 1)},
};

/*
 * An IPv6 original destination: the session connects to [::1], names it
 * "[::1]:port" in its replies and events, and relays. Without an IPv6
 * loopback the connection must fail cleanly with 421 4.4.1 instead.
 */
static void
rfc5321_ipv6_upstream(void **state)
{
	const struct scase c = {
	    .policy = true,
	    .got_dot = YES,
	    .unseen = {"RCPT TO:<b@enforce.example>"},
	    .saw = {"RCPT TO:<c@nopolicy.example>"},
	    .events = {EVENT("policy-failure", "enforce.example", F_IS("client", "2001:db8::1"))},
	};
	char want[80], dest[48];
	json_t *ev;

	(void)state;
	prepare(&c);
	if (!mx_start6()) {
		start6_at(25);
		play(STEPS(S("421 4.4.1"), CLOSED));
		finish();
		return;
	}
	start6_at(t.mx.port);
	play(STEPS(S("220 mx.example.net"), C(EHLO), S("250-mx.example.net"),
	           C(MAIL RCPT("b@enforce.example")), S("250 2.1.0")));
	snprintf(want, sizeof(want), "451 4.7.4 enforce.example: MX [::1]:%u does", t.mx.port);
	expect(want);
	play(STEPS(C(RCPT("c@nopolicy.example") "DATA\r\n"), S("250 2.1.5"), S("354"), C(message),
	           S("250 2.0.0"), QUIT, CLOSED));
	verify(&c);
	assert_non_null(ev = event_find("policy-failure", "enforce.example"));
	snprintf(dest, sizeof(dest), "[::1]:%u", t.mx.port);
	assert_string_equal(jpath(ev, "dest") ?: "", dest);
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
	if (!can_mark) {
		run(&(const struct scase){.steps = STEPS(S("421 4.4.1"), CLOSED)});
		return;
	}
	begin(&(const struct scase){.steps = STEPS(S("220"), C(EHLO), S("250"))});
	assert_true((fd = session_upstream_fd(t.mx.port)) >= 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_MARK, &got, &len), 0);
	assert_int_equal(got, mark);
	play(STEPS(QUIT, CLOSED));
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

/* report_row - what t.ctx.report holds for domain. */
static struct report_row
report_row(const char *domain)
{
	struct report_row row = {.want = domain};

	sts_report_foreach(t.ctx.report, report_row_get, &row);
	return row;
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
	const struct scase c = {
	    .policy = true,
	    .report = true,
	    .mx = {.starttls = true},
	    .steps = STEPS(
	        S("220"), C(EHLO), S("250"), C(MAIL), S("250 2.1.0"), C(RCPT("b@enforce.example")),
	        S("250 2.1.5"), C(RCPT("c@enforce.example")), S("250 2.1.5"),
	        C(RCPT("b@testing.example")), S("250 2.1.5"), C(RCPT("b@nopolicy.example")),
	        S("250 2.1.5"), C(RCPT("b@other.example")), S("451 4.7.5 other.example"),
	        C("DATA\r\n"), S("354"), C(message), S("250 2.0.0"),
	        /* A second envelope that is reset: no message, no success. */
	        C(MAIL), S("250 2.1.0"), C(RCPT("d@enforce.example")), S("250 2.1.5"),
	        C("RSET\r\n"), S("250"), QUIT, CLOSED),
	};
	struct report_row en, te, ot, no;

	(void)state;
	run(&c);
	en = report_row("enforce.example");
	te = report_row("testing.example");
	ot = report_row("other.example");
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
	/* Section 4.4 "sending-mta-ip": the upstream connection's own address. */
	assert_string_equal(ot.detail0.sending_ip, "127.0.0.1");
	assert_string_equal(ot.detail0.mx_helo, "mx.example.net");
	/* No policy: a session of its own bucket, "no-policy-found". */
	no = report_row("nopolicy.example");
	assert_true(no.found);
	assert_int_equal(no.mode, STS_MODE_NONE);
	assert_int_equal(no.success, 1);
	assert_int_equal(no.failure, 0);
}

/* RFC 8460 section 4.4: without TLS, a testing policy relays and counts a failure only. */
static void
rfc8460_4_4_testing_plaintext_counted_as_failure(void **state)
{
	const struct scase c = {
	    .policy = true,
	    .report = true,
	    .steps = STEPS(S("220"), C(EHLO), S("250"), C(MAIL), S("250 2.1.0"),
	                   C(RCPT("b@testing.example")), S("250 2.1.5"), C("DATA\r\n"), S("354"),
	                   C(message), S("250 2.0.0"), QUIT, CLOSED),
	};
	struct report_row te;

	(void)state;
	run(&c);
	te = report_row("testing.example");
	assert_true(te.found);
	assert_int_equal(te.success, 0);
	assert_int_equal(te.failure, 1);
	assert_int_equal(te.by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1);
	assert_string_equal(te.detail0.ip, "127.0.0.1");
}

/* --- reuse of upstream connections (proxy/upstream_pool.h) ------------------- */

/* reuse_on - a pool for the test's loop, as a worker with upstream.reuse_idle has. */
static void
reuse_on(unsigned max_messages)
{
	struct upstream_pool_params pp = {
	    .loop = t.loop,
	    .conf = &t.conf,
	    .stats = {.parked = &t.stats.reuse_parked,
	              .taken = &t.stats.reuse_taken,
	              .saved = &t.stats.reuse_saved,
	              .retried = &t.stats.reuse_retried,
	              .missed = &t.stats.reuse_missed,
	              .idle = &t.stats.reuse_idle},
	};

	t.conf.upstream.reuse_idle = 5;
	t.conf.upstream.reuse_max_messages = max_messages;
	t.conf.upstream.reuse_max_per_dest = 4;
	t.conf.upstream.reuse_max = 64;
	assert_non_null(t.ctx.pool = upstream_pool_new(&pp));
}

/* next_session - the mailer hangs up; a new session of the same client to the same MX. */
static void
next_session(void)
{
	drain();
	SSL_free(t.cssl);
	t.cssl = NULL;
	if (t.cfd >= 0)
		close(t.cfd);
	t.cfd = -1;
	t.clen = 0;
	t.ceof = false;
	start_at(t.mx.port);
}

/* count_of - a counter of t.stats. */
#define STAT(f) atomic_load(&t.stats.f)

/* One message per session, the dot and the QUIT pipelined behind it. */
#define ONE_MESSAGE(rcpt)                                                                          \
	S("220 mx.example.net ESMTP"), C(EHLO), S("250-mx.example.net"), HAS("PIPELINING"),        \
	    LACKS("CHUNKING"), C(MAIL RCPT(rcpt) "DATA\r\n"), S("250 2.1.0"), S("250 2.1.5"),      \
	    S("354"), C("Subject: test\r\n\r\nhello\r\n.\r\nQUIT\r\n"), S("250 2.0.0"), S("221"),  \
	    CLOSED

/*
 * RFC 2920 section 3.1 on a reused connection: three one-message sessions of
 * one client, each pipelining MAIL, RCPT and DATA, then the dot and QUIT:
 * one TCP connection and one TLS handshake at the MX, an RSET (answered
 * 250) before each reuse, the banner and capabilities of that connection
 * replayed, and the QUITs answered locally.
 */
static void
rfc2920_reuse_pipelined_sessions_one_connection(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){.starttls = true, .pipelining = true};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	for (int i = 0; i < 2; i++) {
		next_session();
		play(STEPS(ONE_MESSAGE("b@enforce.example")));
	}
	drain();
	assert_int_equal(t.ended, 3);
	assert_int_equal(STAT(tls_upstream), 1);
	assert_int_equal(STAT(reuse_parked), 3);
	assert_int_equal(STAT(reuse_taken), 2);
	assert_int_equal(STAT(reuse_saved), 2);
	assert_int_equal(STAT(reuse_missed), 1); /* the first session: nothing parked yet */
	assert_int_equal(STAT(reuse_idle), 1);
	assert_int_equal(STAT(messages_relayed[STS_MODE_ENFORCE]), 3);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 1);
	assert_int_equal(t.mx.msgs, 3);
	assert_int_equal(t.mx.rsets, 2);
	assert_true(t.mx.tls_done);
	assert_true(mx_saw("QUIT")); /* the proxy's own, when the pool closed it */
}

/*
 * An MX that closes a connection while it waits in the pool: the pool drops
 * it, and the next session gets a new connection without noticing.
 */
static void
reuse_mx_closes_idle_connection_new_one(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){
	    .starttls = true, .pipelining = true, .after_msgs = 1, .idle_close_ms = 100};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	assert_int_equal(STAT(reuse_idle), 1);
	run_ms(400); /* the MX closed it meanwhile */
	assert_int_equal(STAT(reuse_idle), 0);
	next_session();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	drain();
	assert_int_equal(t.ended, 2);
	assert_int_equal(STAT(reuse_taken), 0);
	assert_int_equal(STAT(reuse_missed), 2);
	assert_int_equal(STAT(tls_upstream), 2);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 2);
	assert_int_equal(t.mx.msgs, 2);
}

/*
 * RFC 5321 section 3.8: an MX that closes the connection when the RSET of
 * a reuse arrives (no reply). The waiting session is carried over to a new
 * connection, set up from the start (STARTTLS, handshake, EHLO): the mailer
 * sees an ordinary session and nothing was acknowledged on the old one.
 */
static void
rfc5321_3_8_reuse_closed_at_rset_reconnects(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){
	    .starttls = true, .pipelining = true, .after_msgs = 1, .rset_after = RSET_CLOSE};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	next_session();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	drain();
	assert_int_equal(t.ended, 2);
	assert_int_equal(STAT(reuse_taken), 1);
	assert_int_equal(STAT(reuse_saved), 0);
	assert_int_equal(STAT(reuse_missed), 2);
	assert_int_equal(STAT(tls_upstream), 2);
	assert_int_equal(STAT(messages_relayed[STS_MODE_ENFORCE]), 2);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 2);
	assert_int_equal(t.mx.msgs, 2);
}

/*
 * RFC 5321 section 4.2.2 (421): an MX that takes two messages per
 * connection and answers the next RSET with 421. The third session is
 * carried over to a new connection transparently; the fourth reuses that
 * one. Nothing reaches the mailers but the MX's own acknowledgements.
 */
static void
rfc5321_4_2_2_reuse_421_after_n_messages(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){
	    .starttls = true, .pipelining = true, .after_msgs = 2, .rset_after = RSET_421};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	for (int i = 0; i < 3; i++) {
		next_session();
		play(STEPS(ONE_MESSAGE("b@enforce.example")));
	}
	drain();
	assert_int_equal(t.ended, 4);
	assert_int_equal(STAT(messages_relayed[STS_MODE_ENFORCE]), 4);
	assert_int_equal(STAT(reuse_taken), 3);
	assert_int_equal(STAT(reuse_saved), 2);
	assert_int_equal(STAT(tls_upstream), 2);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 2);
	assert_int_equal(t.mx.msgs, 4);
}

/*
 * RFC 5321 section 4.2.2, the 421 arriving after the mailer's EHLO: the
 * session waits for the check, then is carried over to a new connection
 * set up for the name it gave.
 */
static void
rfc5321_4_2_2_reuse_421_after_ehlo_reconnects(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){.starttls = true,
	                           .pipelining = true,
	                           .after_msgs = 1,
	                           .rset_after = RSET_421,
	                           .rset_delay_ms = 300};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	next_session();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	drain();
	assert_int_equal(t.ended, 2);
	assert_int_equal(STAT(reuse_taken), 1);
	assert_int_equal(STAT(reuse_saved), 0);
	assert_int_equal(STAT(tls_upstream), 2);
	assert_int_equal(STAT(messages_relayed[STS_MODE_ENFORCE]), 2);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 2);
	assert_int_equal(t.mx.msgs, 2);
	assert_true(mx_saw("EHLO client.example"));
}

/*
 * RFC 5321 section 4.5.3.2: an MX that does not answer the RSET of a reuse.
 * After timeouts.connect the session is carried over to a new connection.
 */
static void
rfc5321_4_5_3_2_reuse_silent_rset_reconnects(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){
	    .starttls = true, .pipelining = true, .after_msgs = 1, .rset_after = RSET_SILENT};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	t.conf.timeouts.connect = 1;
	next_session();
	play(STEPS(S("220"), C(EHLO), S_NOT_BEFORE("250-mx.example.net", 900),
	           C(MAIL RCPT("b@enforce.example") "DATA\r\n"), S("250"), S("250"), S("354"),
	           C("Subject: test\r\n\r\nhello\r\n.\r\nQUIT\r\n"), S("250 2.0.0"), S("221"),
	           CLOSED));
	drain();
	assert_int_equal(t.ended, 2);
	assert_int_equal(STAT(reuse_taken), 1);
	assert_int_equal(STAT(reuse_saved), 0);
	assert_int_equal(STAT(tls_upstream), 2);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 2);
	assert_int_equal(t.mx.msgs, 2);
}

/*
 * upstream.reuse_max_messages: a connection that carried that many
 * messages is closed with a QUIT, not parked.
 */
static void
reuse_max_messages_closes(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){.starttls = true, .pipelining = true};
	reuse_on(2);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	next_session();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	drain();
	assert_int_equal(STAT(reuse_parked), 1);
	assert_int_equal(STAT(reuse_idle), 0);
	mx_join(); /* the MX got the proxy's QUIT */
	assert_int_equal(t.mx.conns, 1);
	assert_true(mx_saw("QUIT"));
}

/*
 * RFC 8461 section 4.2 on a reused connection: the recipient is judged on
 * the TLS facts bound to that connection, with its policy looked up as
 * usual. A domain whose policy names another MX is refused (451 4.7.5) and
 * never reaches the MX; a passing one beside it goes on.
 */
static void
rfc8461_4_2_reused_connection_recipient_fails_policy(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){.starttls = true, .pipelining = true};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	next_session();
	play(STEPS(S("220"), C(EHLO), S("250"), C(MAIL), S("250 2.1.0"), C(RCPT("x@other.example")),
	           S("451 4.7.5 other.example"), C(RCPT("c@enforce.example")), S("250 2.1.5"),
	           C("DATA\r\n"), S("354"), C(message), S("250 2.0.0"), C("QUIT\r\n"), S("221"),
	           CLOSED));
	drain();
	assert_int_equal(STAT(reuse_saved), 1);
	assert_int_equal(STAT(recipients_blocked[STS_RESULT_CERT_HOST_MISMATCH]), 1);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 1);
	assert_false(mx_saw("RCPT TO:<x@other.example>"));
	assert_true(mx_saw("RCPT TO:<c@enforce.example>"));
}

/*
 * A plaintext connection (no STARTTLS) is never parked: the QUIT is
 * relayed, and the next session makes its own connection.
 */
static void
reuse_plaintext_never_parked(void **state)
{
	(void)state;
	t.mx.how = (struct mx_how){.pipelining = true, .serve = 2};
	reuse_on(100);
	start();
	play(STEPS(S("220"), C(EHLO), S("250"), C(MAIL RCPT("b@nopolicy.example") "DATA\r\n"),
	           S("250"), S("250"), S("354"), C(message), S("250 2.0.0"), QUIT, CLOSED));
	next_session();
	play(STEPS(S("220"), C(EHLO), S("250"), C("QUIT\r\n"), S("221"), CLOSED));
	drain();
	assert_int_equal(STAT(reuse_parked), 0);
	assert_int_equal(STAT(reuse_missed), 2);
	mx_join();
	assert_int_equal(t.mx.conns, 2);
}

/*
 * The client identity includes the EHLO name: a session of the same client
 * address that greets with another name does not get the parked connection
 * (it stays parked); it gets a new one of its own.
 */
static void
reuse_other_ehlo_name_new_connection(void **state)
{
	(void)state;
	fake_sts_set(rules, LEN(rules));
	/* The fake MX serves one connection at a time: the second waits until
	 * the first, parked, times out there (5 s). */
	t.mx.how = (struct mx_how){.starttls = true, .pipelining = true, .serve = 2};
	t.conf.timeouts.greeting = 9;
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	next_session();
	/* The RSET of the take is answered first: the connection goes back. */
	play(STEPS(S("220"), WAIT_MS(300), C("EHLO other.example\r\n"), S("250-mx.example.net"),
	           C(MAIL RCPT("b@enforce.example") "DATA\r\n"), S("250"), S("250"), S("354"),
	           C("Subject: test\r\n\r\nhello\r\n.\r\nQUIT\r\n"), S("250 2.0.0"), S("221"),
	           CLOSED));
	drain();
	assert_int_equal(STAT(reuse_taken), 1);
	assert_int_equal(STAT(reuse_saved), 0);
	assert_int_equal(STAT(tls_upstream), 2);
	assert_int_equal(STAT(reuse_parked), 3); /* the first one twice */
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.rsets, 1);
}

/*
 * reuse_retry_on - the fake MX takes one message per connection and cuts the
 * next at its MAIL (how); the first session leaves its connection parked.
 */
static void
reuse_retry_on(int how, bool later_421, bool later_bad_cert)
{
	fake_sts_set(rules, LEN(rules));
	t.mx.how = (struct mx_how){.starttls = true,
	                           .pipelining = true,
	                           .after_msgs = 1,
	                           .mail_after = how,
	                           .later_mail_421 = later_421,
	                           .later_bad_cert = later_bad_cert};
	reuse_on(100);
	start();
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	next_session();
}

/*
 * reuse_retry_end - the pool closes what it holds; the fake MX ends. One
 * retry, two MX connections; msgs delivered (and counted), cut MAILs cut.
 */
static void
reuse_retry_end(unsigned msgs, unsigned cut)
{
	drain();
	assert_int_equal(t.ended, 2);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(STAT(reuse_retried), 1);
	assert_int_equal(STAT(messages_relayed[STS_MODE_ENFORCE]), msgs);
	assert_int_equal(t.mx.conns, 2);
	assert_int_equal(t.mx.msgs, msgs);
	assert_int_equal(t.mx.mails_cut, cut);
}

/*
 * RFC 5321 section 3.8: an MX that limits messages per connection answers
 * the MAIL of a reused connection (its RSET answered 250) with 421. The
 * mailer was told nothing of it but the proxy's own 250 to MAIL: the
 * transaction moves to a new connection, set up and verified as any, and
 * the message is delivered there once.
 */
static void
rfc5321_3_8_reuse_421_at_mail_reconnects(void **state)
{
	(void)state;
	reuse_retry_on(MAIL_421, false, false);
	play(STEPS(S("220 mx.example.net ESMTP"), C(EHLO), S("250-mx.example.net"), C(MAIL),
	           S("250 2.1.0"), C(RCPT("b@enforce.example")), S("250 2.1.5"), C("DATA\r\n"),
	           S("354"), C(message), S("250 2.0.0"), QUIT, CLOSED));
	reuse_retry_end(2, 1);
	assert_int_equal(STAT(reuse_taken), 1);
	assert_int_equal(STAT(reuse_saved), 1);
	assert_int_equal(STAT(tls_upstream), 2);
}

/*
 * RFC 2920 section 3.1 with the 421 of rfc5321_3_8_reuse_421_at_mail_reconnects:
 * MAIL, RCPT and DATA pipelined; the replies still come in order, the DATA
 * waits for the recipient's reply from the new connection.
 */
static void
rfc2920_3_1_reuse_421_pipelined_reconnects(void **state)
{
	(void)state;
	reuse_retry_on(MAIL_421, false, false);
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	reuse_retry_end(2, 1);
}

/* The same with an MX that closes at the MAIL without a word. */
static void
rfc5321_3_8_reuse_closed_at_mail_reconnects(void **state)
{
	(void)state;
	reuse_retry_on(MAIL_CLOSE, false, false);
	play(STEPS(ONE_MESSAGE("b@enforce.example")));
	reuse_retry_end(2, 1);
}

/*
 * RFC 5321 section 4.2.2: the new connection answers the MAIL with 421 as
 * well. There is one retry per session: the mailer gets a 421 and nothing
 * is acknowledged.
 */
static void
rfc5321_4_2_2_reuse_421_again_on_new_connection(void **state)
{
	(void)state;
	reuse_retry_on(MAIL_421, true, false);
	play(STEPS(S("220"), C(EHLO), S("250-mx.example.net"),
	           C(MAIL RCPT("b@enforce.example") "DATA\r\n"), S("250 2.1.0"), S("421"), CLOSED));
	reuse_retry_end(1, 2);
}

/*
 * RFC 8461 section 4.2 after a retry: the recipients are judged again on the
 * new connection's own TLS facts. Its certificate names another host: both
 * recipients (one judged at once, one after an asynchronous lookup) get the
 * policy's 451 4.7.5, and the MX gets no recipient on it.
 */
static void
rfc8461_4_2_reuse_retry_judged_on_new_connection(void **state)
{
	(void)state;
	reuse_retry_on(MAIL_421, false, true);
	play(STEPS(S("220"), C(EHLO), S("250-mx.example.net"),
	           C(MAIL RCPT("b@enforce.example") RCPT("c@async.example") "DATA\r\n"),
	           S("250 2.1.0"), S("451 4.7.5 enforce.example"), S("451 4.7.5 async.example"),
	           S("554"), QUIT, CLOSED));
	reuse_retry_end(1, 1);
	assert_int_equal(STAT(recipients_blocked[STS_RESULT_CERT_HOST_MISMATCH]), 2);
	assert_false(mx_saw("RCPT TO:<c@async.example>"));
}

/*
 * RFC 3207 section 4.2 with the 421 of rfc5321_3_8_reuse_421_at_mail_reconnects:
 * the mailer starts TLS with the proxy and greets again (an EHLO the reused
 * connection answers); the 421 to the MAIL that follows still moves the
 * transaction to a new connection.
 */
static void
rfc3207_4_2_reuse_421_after_client_starttls_reconnects(void **state)
{
	(void)state;
	t.ctx.client_tls = env.client_side;
	reuse_retry_on(MAIL_421, false, false);
	play(STEPS(S("220"), C(EHLO), S("250-mx.example.net"), HAS("STARTTLS"), C("STARTTLS\r\n"),
	           S("220"), MAILER_TLS, C(EHLO), S("250-mx.example.net"),
	           C(MAIL RCPT("b@enforce.example") "DATA\r\n"), S("250 2.1.0"), S("250 2.1.5"),
	           S("354"), C(message), S("250 2.0.0"), QUIT, CLOSED));
	reuse_retry_end(2, 1);
}

/*
 * A draining stop (session_shutdown_all) lets a transaction finish but
 * opens no connection: a reused connection that closes at the MAIL then
 * is relayed as any lost connection (421), nothing acknowledged.
 */
static void
reuse_no_retry_while_draining(void **state)
{
	(void)state;
	reuse_retry_on(MAIL_CLOSE, false, false);
	t.mx.how.rset_delay_ms = 300;
	play(STEPS(S("220"), C(EHLO), S("250-mx.example.net"),
	           C(MAIL RCPT("b@enforce.example") "DATA\r\n"), S("250 2.1.0"), SHUTDOWN_ALL,
	           S("421 4.4.2"), CLOSED));
	drain();
	assert_int_equal(t.ended, 2);
	assert_int_equal(STAT(reuse_retried), 0);
	assert_int_equal(STAT(messages_relayed[STS_MODE_ENFORCE]), 1);
	upstream_pool_free(t.ctx.pool);
	t.ctx.pool = NULL;
	mx_join();
	assert_int_equal(t.mx.conns, 1);
	assert_int_equal(t.mx.msgs, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f)    cmocka_unit_test_setup_teardown(f, setup, teardown)
#define CASE(c) {#c, run_case, setup, teardown, (void *)&(c)}
	    CASE(rfc5321_3_3_plain_relay_no_policy),
	    CASE(rfc3207_4_2_starttls_upgrade_post_tls_ehlo),
	    CASE(rfc8461_5_starttls_stripped_enforce_blocked),
	    CASE(rfc8461_5_testing_relayed_reported),
	    CASE(rfc8461_5_mixed_envelope),
	    CASE(rfc2920_3_1_pipelined_group_in_order),
	    CASE(rfc3207_5_client_starttls_injection),
	    CASE(rfc3207_5_upstream_response_injection),
	    CASE(rfc3207_4_starttls_refused_downgrade),
	    CASE(rfc8461_4_2_certificate_mismatch_blocked),
	    CASE(nostarttls_2021_mangled_capability_reported),
	    T(smtp_smuggling_endings_refused),
	    CASE(rfc5321_4_5_2_dot_stuffing_unchanged),
	    CASE(rfc5321_upstream_reset_mid_data_421),
	    CASE(rfc5321_4_5_3_2_timeout_after_dot_421),
	    CASE(rfc5321_4_5_3_2_5_steady_data_not_timed_out),
	    CASE(rfc5321_4_5_3_2_5_stall_after_blocks_421),
	    CASE(rfc5321_4_1_1_1_helo_client),
	    T(rfc5321_4_5_3_1_4_overlong_line),
	    CASE(rfc5321_4_1_4_ehlo_refused_helo_fallback),
	    CASE(relay_mail_refused_upstream),
	    CASE(rfc5321_connect_failure_421),
	    CASE(rfc5321_3_1_banner_554_relayed),
	    CASE(rfc8461_5_handshake_failure_plaintext_only_without_policy),
	    T(rfc8461_4_2_handshake_cut_fin_no_cleartext),
	    T(rfc8461_4_2_handshake_cut_rst_no_cleartext),
	    CASE(rfc8460_4_3_fallback_reported),
	    CASE(rfc8461_5_1_recheck_before_refusal),
	    CASE(rfc8461_5_1_refusal_after_recheck),
	    CASE(session_shutdown_all_idle),
	    CASE(rfc5321_4_1_1_4_reply_begun_before_dot_421),
	    CASE(rfc3207_4_2_client_starttls_state_reset),
	    T(rfc5321_ipv6_upstream),
	    T(upstream_mark_set_on_session_socket),
	    T(rfc8460_4_4_delivery_and_block_counted),
	    T(rfc8460_4_4_testing_plaintext_counted_as_failure),
	    T(rfc2920_reuse_pipelined_sessions_one_connection),
	    T(reuse_mx_closes_idle_connection_new_one),
	    T(rfc5321_3_8_reuse_closed_at_rset_reconnects),
	    T(rfc5321_4_2_2_reuse_421_after_n_messages),
	    T(rfc5321_4_2_2_reuse_421_after_ehlo_reconnects),
	    T(rfc5321_4_5_3_2_reuse_silent_rset_reconnects),
	    T(reuse_max_messages_closes),
	    T(rfc8461_4_2_reused_connection_recipient_fails_policy),
	    T(reuse_plaintext_never_parked),
	    T(reuse_other_ehlo_name_new_connection),
	    T(rfc5321_3_8_reuse_421_at_mail_reconnects),
	    T(rfc2920_3_1_reuse_421_pipelined_reconnects),
	    T(rfc5321_3_8_reuse_closed_at_mail_reconnects),
	    T(rfc5321_4_2_2_reuse_421_again_on_new_connection),
	    T(rfc8461_4_2_reuse_retry_judged_on_new_connection),
	    T(rfc3207_4_2_reuse_421_after_client_starttls_reconnects),
	    T(reuse_no_retry_while_draining),
#undef CASE
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
