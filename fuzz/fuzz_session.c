// sources: proxy/session.c proxy/relay.c proxy/upstream.c proxy/upstream_pool.c proxy/txn_report.c proxy/relay_events.c proxy/smtp_cmd.c proxy/smtp_reply.c
// sources: proxy/smtp_data.c tls/tls_io.c tls/tls_ctx.c tls/tls_resume.c tls/tls_verify.c tests/proxy/fake_sts_engine.c
// sources: core/loop.c core/log.c core/evlog.c core/util.c core/types.c core/conf.c
// sources: policy/sts_report.c tests/tls/testca.c
/*
 * fuzz_session.c - a whole proxied SMTP session driven by arbitrary bytes
 * from both sides: the real loop, session state machine, SMTP parsers,
 * endpoints and upstream TLS; the policy engine is
 * tests/proxy/fake_sts_engine.c.
 *
 * The mailer is our end of a socketpair. The "MX" is a loopback listener
 * (127.0.0.1, ephemeral port) registered in the same loop: the session
 * connects to it as its original destination, and every connection is
 * accepted in a loop callback; a new one (the proxy's plaintext fallback)
 * replaces the last and starts in plaintext. Everything runs in one thread.
 *
 * Input: one flags byte, then a script of operations. Flags:
 *   bit 0     the proxy only monitors (otherwise it enforces)
 *   bits 1-5  a zero timeout: 1 connect and starttls (the STARTTLS reply
 *             and the handshake), 2 greeting, 3 command, 4 data_block,
 *             5 data_done
 *   bit 6     TLS mode: the MX may offer STARTTLS and answer a handshake
 *   bit 7     in TLS mode the MX speaks TLS 1.2 at most (else 1.3)
 * Each operation is a header byte hh nnnnnn:
 *   00  the mailer sends n bytes (n == 63: 63 + the next byte)
 *   01  the MX sends n bytes (same length rule), in plaintext before the
 *       handshake, raw into it while it runs, through SSL_write after it;
 *       n == 0 while the handshake runs is one step of it: the MX's
 *       server reads what the proxy sent and sends the flight it produces;
 *       n == 0 after a TLS 1.3 handshake sends a KeyUpdate (update requested)
 *   10  n odd: session_shutdown_all(); even: the mailer half-closes, or,
 *       in fuzz_session_reuse with n bit 1 set, hangs up (the session
 *       ends, its upstream connection may be parked) and a new session of
 *       the same client to the same MX starts (up to SESSIONS_MAX)
 *   11  the MX cuts the connection: n bit 1 first takes a handshake step
 *       and sends its flight with no loop turn in between (the peer reads
 *       the flight and the cut together); n bit 2 first sends close_notify
 *       on a TLS connection; then n bit 0 set resets it, clear half-closes.
 * The loop runs until nothing moves after every operation. In plaintext
 * mode every "STARTTLS" of the MX's stream is defaced before the run, so
 * no handshake is ever attempted.
 *
 * The MX's server side runs through memory BIOs with a certificate for
 * mx.example.net from tests/tls/testca, which the proxy's upstream
 * context trusts; its handshake starts when the proxy's bytes right after
 * a STARTTLS line begin with a TLS handshake record (0x16) and moves only
 * when the script says so. It never issues a session ticket or a
 * resumable session id, so every run makes full handshakes whatever ran
 * before it.
 *
 * Invariants (abort() on violation):
 *  - the session ends: after the script, a draining stop and both peers
 *    closing, it is freed within a bounded number of loop iterations;
 *  - every reply line the mailer receives is well formed (three digits,
 *    ' ', '-' or CRLF, no bare CR, LF or NUL);
 *  - the reply to a final dot is acknowledged (2xx) only when the mailer
 *    really sent CRLF.CRLF, the MX really received a final dot for it, and
 *    the very reply bytes were sent by the MX after it got that dot (the
 *    script's payloads, sent as they are or through SSL_write; a dot is
 *    received when the MX reads it, decrypted on a TLS connection): the
 *    proxy never makes up or reuses an acknowledgement;
 *  - the MX never receives a NUL, a bare CR or a bare LF (in the SMTP
 *    stream of each connection, decrypted when it is TLS);
 *  - when the proxy enforces, no RCPT for a domain the rules enforce
 *    (enforce.example, async.example) reaches the MX over plaintext,
 *    outside message data (RFC 8461 section 5);
 *  - once the proxy began a handshake on a connection, everything it sends
 *    on it is TLS records: no plaintext behind STARTTLS.
 * fuzz_session_reuse (FUZZ_REUSE) runs the same with upstream connection
 * reuse on (proxy/upstream_pool.h) and sessions from one client address:
 * a session may take the connection the last one parked, check it with
 * RSET and move to a new one when it fails; the MX's script answers all
 * of that, and the invariants hold across the sessions (every session
 * ends; the dot replies of each session are matched to the dots the MX
 * received during it).
 * Leaks are found by the address sanitizer: every session must be freed.
 * With FUZZ_SESSION_TRACE set, a run prints what both peers received and
 * a summary of its connections and handshakes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "proxy/session.h"
#include "proxy/smtp_cmd.h"
#include "proxy/upstream_pool.h"
#include "tests/proxy/fake_sts_engine.h"
#include "tests/tls/testca.h"
#include "tls/tls_ctx.h"
#include "tls/tls_resume.h"

#ifndef FUZZ_REUSE
#define FUZZ_REUSE 0 /* fuzz_session_reuse.c sets it */
#endif
#define SESSIONS_MAX 16 /* sessions of one run, with FUZZ_REUSE */
#define INPUT_MAX    16384
#define STREAM_MAX   (1024 * 1024) /* replies can be many times the commands that caused them */
#define DOTS_MAX     8192
#define SETTLE_MAX   400  /* loop iterations until quiet after one operation */
#define END_MAX      2000 /* loop iterations for the session to end once both peers closed */
/* RFC 5246 section 6.2.3: the longest TLS 1.2 record (TLS 1.3 allows less). */
#define RECORD_MAX (16384 + 2048)

enum {
	F_MONITOR = 0x01,
	F_TLS = 0x40,
	F_TLS12 = 0x80,
};

/* The same scripted domains as the session tests. */
static const struct fake_sts_rule rules[] = {
    {"enforce.example", STS_POLICY, STS_MODE_ENFORCE, "id1", "mx.example.net", false},
    {"testing.example", STS_POLICY, STS_MODE_TESTING, "id2", "mx.example.net", false},
    {"async.example", STS_POLICY, STS_MODE_ENFORCE, "id3", "mx.example.net", true},
    {"none.example", STS_POLICY, STS_MODE_NONE, "id4", "mx.example.net", true},
    {"defer.example", STS_DEFER, STS_MODE_NONE, NULL, NULL, false},
};

/* Process-wide: created once. */
static struct {
	bool init;
	int lfd; /* the MX listener */
	struct sockaddr_in addr;
	struct conf conf;
	SSL_CTX *upstream; /* the proxy's context toward MX hosts, trusting the test CA */
	SSL_CTX *mx;       /* the MX's server context: mx.example.net, no resumption */
} g;

/*
 * The MX's end of its current connection. The SMTP stream it received is
 * mx_got[start, ur_len); while the connection is TLS, only what the server
 * decrypted is appended there.
 */
enum mx_phase {
	MX_PLAIN = 0, /* no handshake began */
	MX_HANDSHAKE, /* the proxy sent its ClientHello; the script steps the server */
	MX_TLS,       /* the server completed the handshake */
	MX_BROKEN,    /* the server failed: what the proxy sends is only framed */
};

struct mx {
	enum mx_phase phase;
	SSL *ssl; /* its BIOs: rbio takes what the proxy sent, wbio what the server wrote */
	BIO *rbio, *wbio;
	size_t start;         /* where this connection's stream begins in mx_got */
	size_t line;          /* the first byte of its stream not yet split into lines */
	bool in_data;         /* between a DATA command line and CRLF.CRLF */
	bool starttls;        /* the stream ends right after a STARTTLS command line */
	unsigned char hdr[5]; /* record framing once the handshake began */
	size_t hdr_len, body_left;
};

/* One run. Streams are what each side sent or received, in order. */
static struct {
	struct loop *loop;
	struct sts_engine *engine;
	struct session_stats stats;
	struct session_ctx ctx;
	int cfd, ufd;
	unsigned ended, sessions;
	bool enforce;
	bool tls12;
	bool mx_gone; /* the end: the MX accepts no more connections (it closes them) */

	size_t cs_len, cs_sent; /* mailer_sent: all of it, and how much went out */
	size_t us_len, us_sent; /* mx_sent */
	size_t cr_len, cr_done; /* mailer_got, and how much was matched to replies */
	bool cr_full;
	size_t ur_len, ur_scan, ur_checked; /* mx_got */
	bool ur_full;
	size_t mo_off, mo_len; /* mx_out: sent, and queued */

	struct mx mx;
	unsigned conns, hs_begun, hs_done; /* for the trace */

	/* final dots the MX received, and how much it had sent at each */
	size_t dot_mark[DOTS_MAX];
	size_t n_dots;

	/* the mailer's view: which reply answers which of its lines */
	bool banner_seen;
	bool await_dot;
	size_t cpos;       /* next command line in cs */
	size_t data_start; /* message data after a DATA answered 354 */
	size_t n_slots;    /* final-dot replies received */
} r;

/* The streams of a run, in order (outside r, which is cleared per run). */
static char mailer_sent[INPUT_MAX]; /* mailer -> proxy: the script's */
static char mx_sent[INPUT_MAX];     /* MX -> proxy: the script's (defaced in plaintext mode) */
static char mailer_got[STREAM_MAX]; /* proxy -> mailer */
static char mx_got[STREAM_MAX];     /* proxy -> MX, the SMTP stream of every connection in turn */
static char mx_out[STREAM_MAX];     /* MX -> proxy, raw bytes queued for the socket */
static bool trace;

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_session: invariant violated: %s\n", what);
		abort();
	}
}

static void mx_begin(int fd);
static void mx_end(bool reset);

/* --- the MX listener ---------------------------------------------------------- */

static void
on_accept(struct loop *loop, int fd, int events, void *arg)
{
	int c, one = 1;

	(void)loop;
	(void)events;
	(void)arg;
	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (r.mx_gone) {
			/* A connection the proxy opened as the run ended: the MX is gone. */
			close(c);
			continue;
		}
		/* Without it Nagle holds back the MX's second small write until an ACK. */
		(void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* A new connection (the plaintext fallback) replaces the last one. */
		mx_end(false);
		mx_begin(c);
	}
}

/* flush_backlog - close connections left in the backlog by a previous run. */
static void
flush_backlog(void)
{
	int c;

	while ((c = accept4(g.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		close(c);
}

/* tls_init - the test CA, the MX's certificate for mx.example.net, both contexts. */
static int
tls_init(void)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256] = "";
	const char *sans[] = {"mx.example.net"};
	struct testca *ca;
	int ret = -1;

	if ((ca = testca_new(NULL)) == NULL || testca_issue(ca, "mx", sans, 1, 0, crt, key) != 0)
		goto done;
	g.mx = tls_server_ctx_new(crt, key, err, sizeof(err));
	g.upstream = tls_client_ctx_new(testca_ca_file(ca), err, sizeof(err));
	if (g.mx == NULL || g.upstream == NULL) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		goto done;
	}
	/*
	 * Nothing to resume: no TLS 1.3 ticket, no TLS 1.2 ticket or session
	 * id, so the proxy's session cache stays empty and a run does not
	 * depend on the runs before it.
	 */
	SSL_CTX_set_options(g.mx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(g.mx, 0);
	SSL_CTX_set_session_cache_mode(g.mx, SSL_SESS_CACHE_OFF);
	ret = 0;
done:
	testca_free(ca); /* the contexts hold what they loaded */
	return ret;
}

static int
global_init(void)
{
	socklen_t len = sizeof(g.addr);

	signal(SIGPIPE, SIG_IGN);
	trace = getenv("FUZZ_SESSION_TRACE") != NULL;
	log_set_level(trace ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	if (conf_defaults(&g.conf) < 0)
		return -1;
	g.conf.max_line = 1000; /* the smallest the configuration allows */
	g.addr.sin_family = AF_INET;
	g.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g.lfd < 0 || bind(g.lfd, (struct sockaddr *)&g.addr, sizeof(g.addr)) < 0 ||
	    listen(g.lfd, 64) < 0 || getsockname(g.lfd, (struct sockaddr *)&g.addr, &len) < 0)
		return -1;
	if (tls_init() < 0)
		return -1;
	fake_sts_set(rules, sizeof(rules) / sizeof(rules[0]));
	g.init = true;
	return 0;
}

/* --- what the MX receives --------------------------------------------------- */

/* up_received - account for new bytes of the connection's stream: dots, no bare CR/LF/NUL. */
static void
up_received(bool final)
{
	size_t i, end = r.ur_len;
	const char *p;

	/* RFC 5321 section 2.3.8 and SMTP smuggling: CR and LF only as a pair. */
	if (!final && end > r.mx.start && mx_got[end - 1] == '\r')
		end--; /* its LF may still be on the way */
	for (i = r.ur_checked; i < end; i++) {
		char c = mx_got[i];

		check(c != '\0', "NUL sent upstream");
		check(c != '\r' || (i + 1 < r.ur_len && mx_got[i + 1] == '\n'),
		      "bare CR sent upstream");
		check(c != '\n' || (i > r.mx.start && mx_got[i - 1] == '\r'),
		      "bare LF sent upstream");
	}
	r.ur_checked = end;
	/* A command line is never ".", so every CRLF.CRLF is the end of a message. */
	while (r.ur_scan + 5 <= r.ur_len &&
	       (p = memmem(mx_got + r.ur_scan, r.ur_len - r.ur_scan, "\r\n.\r\n", 5)) != NULL) {
		if (r.n_dots < DOTS_MAX)
			r.dot_mark[r.n_dots++] = r.us_sent;
		r.ur_scan = (size_t)(p - mx_got) + 5;
	}
}

/* enforced - d[0..n) is a domain the rules enforce (ASCII case-insensitive). */
static bool
enforced(const char *d, size_t n)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].status == STS_POLICY && rules[i].mode == STS_MODE_ENFORCE &&
		    strlen(rules[i].domain) == n && strncasecmp(rules[i].domain, d, n) == 0)
			return true;
	return false;
}

/* verb - l[0..n) begins with word (blanks before it allowed); the offset after it, or 0. */
static size_t
verb(const char *l, size_t n, const char *word)
{
	size_t pos = 0, len = strlen(word);

	while (pos < n && (l[pos] == ' ' || l[pos] == '\t'))
		pos++;
	if (n - pos < len || strncasecmp(l + pos, word, len) != 0)
		return 0;
	pos += len;
	/* the word must end there */
	if (pos < n && l[pos] != ' ' && l[pos] != '\t' && l[pos] != '\r' && l[pos] != '\n')
		return 0;
	return pos;
}

/*
 * rcpt_enforced - the command line l[0..n) is a RCPT for a domain the rules
 * enforce, as the MX may read it or as the proxy reads it. The MX's
 * reading is a lenient server's: "RCPT TO:" with blanks anywhere between
 * the words, the angle brackets optional, and the domain after the last
 * '@' outside a quoted string (RFC 5321 section 4.1.2: a source route or
 * a quoted local part may hold more), up to '>', a blank or the line end.
 */
static bool
rcpt_enforced(const char *l, size_t n)
{
	struct smtp_cmd c;
	size_t pos, at = 0;
	bool quoted = false, found = false;

	if ((pos = verb(l, n, "RCPT")) == 0)
		return false;
	while (pos < n && (l[pos] == ' ' || l[pos] == '\t'))
		pos++;
	if (n - pos < 2 || strncasecmp(l + pos, "TO", 2) != 0)
		return false;
	for (pos += 2; pos < n && (l[pos] == ' ' || l[pos] == '\t'); pos++)
		;
	if (pos >= n || l[pos] != ':')
		return false;
	for (pos++; pos < n && (l[pos] == ' ' || l[pos] == '\t'); pos++)
		;
	if (pos < n && l[pos] == '<')
		pos++;
	for (; pos < n; pos++) {
		char ch = l[pos];

		if (quoted) {
			if (ch == '\\')
				pos++;
			else if (ch == '"')
				quoted = false;
			continue;
		}
		if (ch == '"') {
			quoted = true;
		} else if (ch == '@') {
			at = pos + 1;
			found = true;
		} else if (ch == '>' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			break;
		}
	}
	if (found && enforced(l + at, (pos < n ? pos : n) - at))
		return true;
	return smtp_cmd_parse_max(l, n, n, &c) == 0 && c.id == SMTP_CMD_RCPT &&
	       enforced(c.domain, strlen(c.domain));
}

/*
 * mx_lines - split the connection's stream into lines and classify them.
 * Message data is what follows a DATA command line up to CRLF.CRLF,
 * whether or not the MX accepted that DATA. The proxy sends data only
 * after a DATA line, and data with no bare CR or LF (checked first) holds
 * no CRLF.CRLF before its end, so data is never read as commands; the
 * other way round, commands after a refused DATA are read as data, which
 * can only hide a violation, never report a false one.
 */
static void
mx_lines(bool tls)
{
	struct mx *m = &r.mx;
	const char *l, *lf;

	while ((lf = memchr(mx_got + m->line, '\n', r.ur_len - m->line)) != NULL) {
		size_t n = (size_t)(lf - (mx_got + m->line)) + 1;

		l = mx_got + m->line;
		m->line += n;
		m->starttls = false;
		if (m->in_data) {
			/* the line after a CRLF: "." CRLF ends the data */
			if (n == 3 && memcmp(l, ".\r\n", 3) == 0)
				m->in_data = false;
			continue;
		}
		/* RFC 8461 section 5: a policy in enforce mode is never met without TLS. */
		if (r.enforce && !tls)
			check(!rcpt_enforced(l, n),
			      "RCPT for an enforce domain sent upstream in plaintext");
		if (verb(l, n, "DATA") != 0)
			m->in_data = true;
		else if (!tls && verb(l, n, "STARTTLS") != 0 && m->line == r.ur_len)
			m->starttls = true;
	}
}

/* mx_append - bytes of the connection's SMTP stream (decrypted when tls) arrived. */
static void
mx_append(const char *buf, size_t n, bool tls)
{
	r.mx.starttls = false;
	if (r.ur_full || n == 0)
		return;
	if (n > STREAM_MAX - r.ur_len) {
		r.ur_full = true;
		return;
	}
	memcpy(mx_got + r.ur_len, buf, n);
	r.ur_len += n;
	up_received(false);
	mx_lines(tls);
}

/* mx_queue - raw bytes for the proxy, sent in order by mx_flush(). */
static void
mx_queue(const char *buf, size_t n)
{
	if (r.mo_off == r.mo_len)
		r.mo_off = r.mo_len = 0;
	if (n > sizeof(mx_out) - r.mo_len) {
		memmove(mx_out, mx_out + r.mo_off, r.mo_len - r.mo_off);
		r.mo_len -= r.mo_off;
		r.mo_off = 0;
	}
	if (n > sizeof(mx_out) - r.mo_len)
		n = sizeof(mx_out) - r.mo_len; /* never reached: a run sends far less */
	memcpy(mx_out + r.mo_len, buf, n);
	r.mo_len += n;
}

/* mx_wbio - queue what the server wrote. */
static void
mx_wbio(void)
{
	char buf[4096];
	int n;

	while (r.mx.wbio != NULL && (n = BIO_read(r.mx.wbio, buf, sizeof(buf))) > 0)
		mx_queue(buf, (size_t)n);
}

/* mx_flush - send what is queued as far as the socket takes it; false when some waits. */
static bool
mx_flush(void)
{
	while (r.ufd >= 0 && r.mo_off < r.mo_len) {
		ssize_t w = send(r.ufd, mx_out + r.mo_off, r.mo_len - r.mo_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EAGAIN)
			return false;
		if (w < 0)
			break; /* the proxy is gone: so is the rest */
		r.mo_off += (size_t)w;
	}
	r.mo_off = r.mo_len = 0;
	return true;
}

/* mx_ssl_failed - the server's last call returned ret: whether it failed for good. */
static bool
mx_ssl_failed(int ret)
{
	int e = SSL_get_error(r.mx.ssl, ret);

	return e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_ZERO_RETURN;
}

/* mx_tls_read - take the SMTP stream the server can decrypt now. */
static void
mx_tls_read(void)
{
	struct mx *m = &r.mx;
	char buf[16384];
	int n;

	while (m->phase == MX_TLS) {
		ERR_clear_error();
		if ((n = SSL_read(m->ssl, buf, sizeof(buf))) > 0) {
			mx_append(buf, (size_t)n, true);
			continue;
		}
		if (mx_ssl_failed(n))
			m->phase = MX_BROKEN;
		break;
	}
	ERR_clear_error(); /* the proxy's SSL calls share this thread's error queue */
	mx_wbio();         /* e.g. the KeyUpdate the proxy asked for */
}

/* mx_step - one step of the server's handshake: read what came, queue its flight. */
static void
mx_step(void)
{
	struct mx *m = &r.mx;
	int ret;

	if (m->phase != MX_HANDSHAKE)
		return;
	ERR_clear_error();
	ret = SSL_do_handshake(m->ssl);
	if (ret == 1) {
		m->phase = MX_TLS;
		r.hs_done++;
		if (trace)
			fprintf(stderr, "mx: handshake complete, %s\n", SSL_get_version(m->ssl));
	} else if (mx_ssl_failed(ret)) {
		m->phase = MX_BROKEN;
		if (trace)
			fprintf(stderr, "mx: handshake failed\n");
	}
	ERR_clear_error();
	mx_wbio();
	mx_tls_read(); /* what the proxy sent behind its Finished */
}

/* mx_tls_begin - the proxy's ClientHello is coming: a server for this connection. */
static void
mx_tls_begin(void)
{
	struct mx *m = &r.mx;

	if ((m->ssl = SSL_new(g.mx)) == NULL || (m->rbio = BIO_new(BIO_s_mem())) == NULL ||
	    (m->wbio = BIO_new(BIO_s_mem())) == NULL)
		abort();
	SSL_set_bio(m->ssl, m->rbio, m->wbio); /* the SSL owns both */
	SSL_set_accept_state(m->ssl);
	if (r.tls12)
		SSL_set_max_proto_version(m->ssl, TLS1_2_VERSION);
	m->phase = MX_HANDSHAKE;
	r.hs_begun++;
	if (trace)
		fprintf(stderr, "mx: handshake begins\n");
}

/* mx_frame - once a handshake began, the proxy sends TLS records only (RFC 8446 section 5.1). */
static void
mx_frame(const unsigned char *p, size_t n)
{
	struct mx *m = &r.mx;

	while (n > 0) {
		if (m->body_left > 0) {
			size_t k = n < m->body_left ? n : m->body_left;

			m->body_left -= k;
			p += k;
			n -= k;
			continue;
		}
		m->hdr[m->hdr_len++] = *p++;
		n--;
		if (m->hdr_len < sizeof(m->hdr))
			continue;
		/* content types 20-23 (change_cipher_spec .. application_data), version 3.x */
		check(m->hdr[0] >= 20 && m->hdr[0] <= 23 && m->hdr[1] == 3,
		      "plaintext sent upstream behind STARTTLS");
		m->body_left = (size_t)m->hdr[3] << 8 | m->hdr[4];
		check(m->body_left <= RECORD_MAX, "TLS record too long sent upstream");
		m->hdr_len = 0;
	}
}

/* mx_input - raw bytes the proxy sent on the MX's connection. */
static void
mx_input(const char *buf, size_t n)
{
	struct mx *m = &r.mx;
	const char *lf;
	size_t k;

	while (n > 0 && m->phase == MX_PLAIN) {
		/* RFC 3207 section 4: the handshake follows the STARTTLS exchange at once. */
		if (m->starttls && (unsigned char)buf[0] == 0x16) {
			mx_tls_begin();
			break;
		}
		/* Line by line, so that a ClientHello is seen where a line ends. */
		k = (lf = memchr(buf, '\n', n)) != NULL ? (size_t)(lf - buf) + 1 : n;
		mx_append(buf, k, false);
		buf += k;
		n -= k;
	}
	if (n == 0)
		return;
	mx_frame((const unsigned char *)buf, n);
	if (m->phase == MX_BROKEN)
		return;
	if (BIO_write(m->rbio, buf, (int)n) != (int)n)
		abort();
	mx_tls_read();
}

/* mx_pull - read what the proxy sent to the MX; true if bytes came. */
static bool
mx_pull(void)
{
	char buf[16384];
	bool got = false;
	ssize_t n;

	while (r.ufd >= 0 && (n = read(r.ufd, buf, sizeof(buf))) > 0) {
		mx_input(buf, (size_t)n);
		got = true;
	}
	return got;
}

/* mx_begin - the MX accepted fd: a new connection, in plaintext, with a stream of its own. */
static void
mx_begin(int fd)
{
	memset(&r.mx, 0, sizeof(r.mx));
	r.mx.start = r.mx.line = r.ur_checked = r.ur_scan = r.ur_len;
	r.mo_off = r.mo_len = 0;
	r.ufd = fd;
	r.conns++;
	if (trace)
		fprintf(stderr, "mx: connection %u\n", r.conns);
}

/* mx_end - the MX takes what is left on its connection and closes it (reset: with an RST). */
static void
mx_end(bool reset)
{
	struct linger lg = {1, 0};

	if (r.ufd < 0)
		return;
	(void)mx_pull();
	if (!r.ur_full)
		up_received(true);
	SSL_free(r.mx.ssl);
	memset(&r.mx, 0, sizeof(r.mx));
	r.mo_off = r.mo_len = 0;
	if (reset)
		(void)setsockopt(r.ufd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(r.ufd);
	r.ufd = -1;
}

/* --- what the mailer receives ------------------------------------------------ */

/* reply_code - the code of a well-formed reply, checking every line. */
static int
reply_code(const char *rep, size_t len)
{
	size_t i, start = 0;

	for (i = 0; i < len; i++) {
		char c = rep[i];

		check(c != '\0', "NUL in a reply to the client");
		if (c == '\r')
			check(i + 1 < len && rep[i + 1] == '\n', "bare CR in a reply");
		if (c != '\n')
			continue;
		check(i > 0 && rep[i - 1] == '\r', "bare LF in a reply");
		check(i - start >= 4, "reply line too short");
		for (size_t k = 0; k < 3; k++)
			check(rep[start + k] >= '0' && rep[start + k] <= '9',
			      "reply code not digits");
		check(rep[start + 3] == ' ' || rep[start + 3] == '-' || rep[start + 3] == '\r',
		      "bad reply separator");
		check(memcmp(rep, rep + start, 3) == 0, "reply lines with different codes");
		start = i + 1;
	}
	return (rep[0] - '0') * 100 + (rep[1] - '0') * 10 + (rep[2] - '0');
}

/*
 * data_end - where the message data starting at from ends in what the
 * mailer sent so far: the offset after CRLF.CRLF, or 0 when the data is
 * refused first (bare CR, bare LF, NUL) or has not ended yet.
 */
static size_t
data_end(size_t from)
{
	const char *s = mailer_sent;
	size_t i, n = r.cs_sent;

	for (i = from; i < n; i++) {
		if (s[i] == '\0')
			return 0;
		if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
			return 0;
		if (s[i] == '\n' && (i == from || s[i - 1] != '\r'))
			return 0;
		if (s[i] == '.' && (i == from || s[i - 1] == '\n') && i + 2 < n &&
		    s[i + 1] == '\r' && s[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* mx_sent_after - rep was sent by the MX at a line start at or after offset from. */
static bool
mx_sent_after(const char *rep, size_t len, size_t from)
{
	const char *p;
	size_t pos = from;

	while (pos + len <= r.us_sent && (p = memmem(mx_sent + pos, r.us_sent - pos, rep, len))) {
		size_t off = (size_t)(p - mx_sent);

		if (off == 0 || mx_sent[off - 1] == '\n')
			return true;
		pos = off + 1;
	}
	return false;
}

/* dot_reply - the reply that answers a final dot (RFC 5321 section 4.1.1.4). */
static void
dot_reply(const char *rep, size_t len, int code)
{
	size_t end = data_end(r.data_start), slot = r.n_slots++;

	r.await_dot = false;
	if (end != 0)
		r.cpos = end;
	if (code < 200 || code >= 300)
		return;
	/* A message is acknowledged only by the MX's own reply to its final dot. */
	check(end != 0, "2xx to a message the client never ended");
	check(slot < r.n_dots, "2xx to a final dot the upstream never received");
	check(mx_sent_after(rep, len, r.dot_mark[slot]),
	      "2xx to a final dot that the upstream did not send after the dot");
}

/* client_reply - the mailer got one whole reply; match it to what it sent. */
static void
client_reply(const char *rep, size_t len)
{
	int code = reply_code(rep, len);
	const char *line, *lf;
	size_t n;

	if (!r.banner_seen) {
		r.banner_seen = true; /* the banner, or the refusal to connect */
		return;
	}
	if (r.await_dot) {
		dot_reply(rep, len, code);
		return;
	}
	/* Every command line gets one reply, in order (RFC 2920 section 3.1). */
	line = mailer_sent + r.cpos;
	if ((lf = memchr(line, '\n', r.cs_sent - r.cpos)) == NULL)
		return; /* a session-level reply (421, 500 for an overlong line): it closes */
	n = (size_t)(lf - line) + 1;
	r.cpos += n;
	if (code == 354 && n >= 4 && strncasecmp(line, "DATA", 4) == 0) {
		r.await_dot = true;
		r.data_start = r.cpos;
	}
}

/* client_received - split new bytes from the proxy into replies. */
static void
client_received(void)
{
	size_t pos = r.cr_done, start = r.cr_done;
	const char *lf;

	while ((lf = memchr(mailer_got + pos, '\n', r.cr_len - pos)) != NULL) {
		size_t line = pos;

		pos = (size_t)(lf - mailer_got) + 1;
		if (pos - line >= 4 && mailer_got[line + 3] == '-')
			continue;
		client_reply(mailer_got + start, pos - start);
		start = pos;
	}
	r.cr_done = start;
}

/* --- driving ------------------------------------------------------------------ */

/* read_all - read fd into buf until EAGAIN; >0 if bytes came, -1 at EOF or error. */
static int
read_all(int fd, char *buf, size_t *len, bool *full)
{
	char sink[4096];
	ssize_t n;
	int got = 0;

	for (;;) {
		if (*len < STREAM_MAX)
			n = read(fd, buf + *len, STREAM_MAX - *len);
		else
			n = read(fd, sink, sizeof(sink));
		if (n > 0) {
			if (*len < STREAM_MAX)
				*len += (size_t)n;
			else
				*full = true;
			got = 1;
			continue;
		}
		if (n == 0 || errno != EAGAIN)
			return got ? got : -1;
		return got;
	}
}

/* drain - take what the proxy sent to both peers; true if anything came. */
static bool
drain(void)
{
	bool any = false;

	if (r.cfd >= 0 && read_all(r.cfd, mailer_got, &r.cr_len, &r.cr_full) > 0) {
		any = true;
		if (!r.cr_full)
			client_received();
	}
	if (mx_pull())
		any = true;
	/* What the MX's server wrote meanwhile (a KeyUpdate) follows what it queued before. */
	(void)mx_flush();
	return any;
}

/* settle - run the loop until nothing moves (bounded). */
static void
settle(void)
{
	for (int i = 0; i < SETTLE_MAX; i++) {
		int n = loop_once(r.loop, 0);
		bool d = drain();

		if (n <= 0 && !d)
			return;
	}
}

/* deliver - write len bytes to fd, running the loop while the socket is full. */
static void
deliver(int fd, const char *buf, size_t len)
{
	for (int tries = 0; len > 0 && tries < 64; tries++) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno != EAGAIN)
				return;
			settle();
			continue;
		}
		buf += w;
		len -= (size_t)w;
	}
}

/* mx_deliver - send what the MX queued, running the loop while the socket is full. */
static void
mx_deliver(void)
{
	for (int tries = 0; tries < 64 && !mx_flush(); tries++)
		settle();
}

/* mx_send - operation 01: the MX sends buf[0..len), or takes a step when len is 0. */
static void
mx_send(const char *buf, size_t len)
{
	struct mx *m = &r.mx;

	switch (m->phase) {
	case MX_TLS:
		ERR_clear_error();
		if (len > 0) {
			(void)SSL_write(m->ssl, buf, (int)len);
		} else if (SSL_version(m->ssl) == TLS1_3_VERSION &&
		           SSL_key_update(m->ssl, SSL_KEY_UPDATE_REQUESTED) == 1) {
			/* RFC 8446 section 4.6.3: sent by the next handshake call */
			(void)SSL_do_handshake(m->ssl);
		}
		ERR_clear_error();
		mx_wbio();
		break;
	case MX_HANDSHAKE:
		if (len == 0)
			mx_step();
		else
			mx_queue(buf, len); /* raw bytes in the middle of the handshake */
		break;
	case MX_PLAIN:
	case MX_BROKEN:
		mx_queue(buf, len);
		break;
	}
	mx_deliver();
}

/* mx_cut - operation 11 (see the top). */
static void
mx_cut(unsigned arg)
{
	struct mx *m = &r.mx;

	if ((arg & 2) && m->phase == MX_HANDSHAKE)
		mx_step();
	if ((arg & 4) && m->phase == MX_TLS) {
		ERR_clear_error();
		(void)SSL_shutdown(m->ssl);
		ERR_clear_error();
		mx_wbio();
	}
	/* No loop turn before the cut: the proxy reads the last flight and the end together. */
	(void)mx_flush();
	if (arg & 1)
		mx_end(true);
	else
		shutdown(r.ufd, SHUT_WR);
}

/* deface - no STARTTLS offer may reach the session: no handshake in plaintext mode. */
static void
deface(char *s, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i++)
		if (strncasecmp(s + i, "STARTTLS", 8) == 0)
			s[i] = 'X';
}

static void
on_end(void *arg)
{
	(void)arg;
	r.ended++;
}

/*
 * new_session - a session of the mailer to the MX (with FUZZ_REUSE from
 * 10.0.0.1, so that the pool can match its sessions). The mailer's view
 * starts again; the MX's dots before it belong to the sessions before.
 */
static void
new_session(void)
{
	struct sockaddr_in client = {.sin_family = AF_INET, .sin_port = htons(40000)};
	int sv[2];

	client.sin_addr.s_addr = htonl(0x0a000001);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	r.cfd = sv[1];
	r.banner_seen = r.await_dot = false;
	r.cpos = r.cs_sent;
	r.cr_done = r.cr_len;
	r.n_slots = r.n_dots;
	r.sessions++;
	if (session_start(&r.ctx, sv[0], FUZZ_REUSE ? (struct sockaddr *)&client : NULL,
	                  FUZZ_REUSE ? sizeof(client) : 0, (struct sockaddr *)&g.addr,
	                  sizeof(g.addr)) < 0)
		abort();
}

/*
 * next_session - the mailer hangs up and a new session starts. The last
 * one may still wait for its MX (a set-up, a reply due): it ends when that
 * connection does, at the latest at the end of the run.
 */
static void
next_session(void)
{
	if (r.cfd >= 0)
		close(r.cfd);
	r.cfd = -1;
	settle();
	new_session();
}

/* trace_end - what the run did, for FUZZ_SESSION_TRACE. */
static void
trace_end(void)
{
	struct tls_resume_stats st = {0};

	(void)tls_resume_stats(g.upstream, &st);
	fprintf(stderr,
	        "--- mailer got:\n%.*s--- MX got:\n%.*s--- dots %zu, dot replies %zu\n"
	        "--- MX connections %u, handshakes begun %u, completed by the MX %u, "
	        "by the proxy %llu; sessions cached %zu\n",
	        (int)r.cr_len, mailer_got, (int)r.ur_len, mx_got, r.n_dots, r.n_slots, r.conns,
	        r.hs_begun, r.hs_done, (unsigned long long)r.stats.tls_upstream, st.entries);
}

/* One operation of the script. */
struct op {
	uint8_t kind, arg;
	size_t off, len;
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct op ops[INPUT_MAX];
	struct sts_engine_params p = {0};
	struct conf conf;
	size_t pos = 1, n_ops = 0, i;
	char err[128];

	if (size < 1 || size > INPUT_MAX)
		return 0;
	if (!g.init && global_init() < 0)
		abort();

	/* Parse the script; the two streams are laid out first so that the MX's can be defaced. */
	memset(&r, 0, sizeof(r));
	while (pos < size) {
		uint8_t h = data[pos++];
		struct op *o = &ops[n_ops++];

		o->kind = h >> 6;
		o->arg = h & 0x3f;
		if (o->kind >= 2)
			continue;
		o->len = o->arg;
		if (o->len == 0x3f && pos < size)
			o->len += data[pos++];
		if (o->len > size - pos)
			o->len = size - pos;
		if (o->kind == 0) {
			o->off = r.cs_len;
			memcpy(mailer_sent + r.cs_len, data + pos, o->len);
			r.cs_len += o->len;
		} else {
			o->off = r.us_len;
			memcpy(mx_sent + r.us_len, data + pos, o->len);
			r.us_len += o->len;
		}
		pos += o->len;
	}
	if (!(data[0] & F_TLS))
		deface(mx_sent, r.us_len);

	conf = g.conf;
	conf.mode = (data[0] & F_MONITOR) ? CONF_PROXY_MONITOR : CONF_PROXY_ENFORCE;
	r.enforce = conf.mode == CONF_PROXY_ENFORCE;
	r.tls12 = (data[0] & F_TLS12) != 0;
	/* A zero timeout fires at the next loop iteration: the timeout paths of each state. */
	if (data[0] & 0x02)
		conf.timeouts.connect = conf.timeouts.starttls = 0;
	if (data[0] & 0x04)
		conf.timeouts.greeting = 0;
	if (data[0] & 0x08)
		conf.timeouts.command = 0;
	if (data[0] & 0x10)
		conf.timeouts.data_block = 0;
	if (data[0] & 0x20)
		conf.timeouts.data_done = 0;
	r.cfd = r.ufd = -1;
	if ((r.loop = loop_new()) == NULL)
		abort();
	p.loop = r.loop;
	p.conf = &conf;
	if ((r.engine = sts_engine_new(&p, err, sizeof(err))) == NULL)
		abort();
	r.ctx.loop = r.loop;
	r.ctx.conf = &conf;
	r.ctx.engine = r.engine;
	r.ctx.upstream_tls = g.upstream;
	r.ctx.stats = &r.stats;
	r.ctx.on_end = on_end;
	if (FUZZ_REUSE) {
		struct upstream_pool_params pp = {.loop = r.loop, .conf = &conf};

		conf.upstream.reuse_idle = 30;
		conf.upstream.reuse_max_messages = 3;
		conf.upstream.reuse_max_per_dest = 2;
		conf.upstream.reuse_max = 4;
		pp.stats.parked = &r.stats.reuse_parked;
		pp.stats.taken = &r.stats.reuse_taken;
		pp.stats.saved = &r.stats.reuse_saved;
		pp.stats.retried = &r.stats.reuse_retried;
		pp.stats.missed = &r.stats.reuse_missed;
		pp.stats.idle = &r.stats.reuse_idle;
		if ((r.ctx.pool = upstream_pool_new(&pp)) == NULL)
			abort();
	}
	flush_backlog();
	if (loop_fd_add(r.loop, g.lfd, LOOP_READ, on_accept, NULL) < 0)
		abort();
	new_session();
	settle();

	for (i = 0; i < n_ops; i++) {
		struct op *o = &ops[i];

		if (trace)
			fprintf(stderr, "op %u %u len %zu: %.*s\n", o->kind, o->arg, o->len,
			        (int)o->len, (o->kind ? mx_sent : mailer_sent) + o->off);
		switch (o->kind) {
		case 0:
			r.cs_sent = o->off + o->len;
			if (r.cfd >= 0)
				deliver(r.cfd, mailer_sent + o->off, o->len);
			break;
		case 1:
			if (r.ufd >= 0) {
				/* The MX has seen all the proxy sent so far (settle drained it). */
				r.us_sent = o->off + o->len;
				mx_send(mx_sent + o->off, o->len);
			}
			break;
		case 2:
			if (o->arg & 1)
				session_shutdown_all(&r.ctx);
			else if (FUZZ_REUSE && (o->arg & 2) && r.sessions < SESSIONS_MAX)
				next_session();
			else if (r.cfd >= 0)
				shutdown(r.cfd, SHUT_WR);
			break;
		default:
			if (r.ufd >= 0)
				mx_cut(o->arg);
			break;
		}
		settle();
	}

	/* The end: a draining stop, then both peers go away; the session must be freed. */
	session_shutdown_all(&r.ctx);
	settle();
	r.mx_gone = true;
	mx_end(false);
	if (r.cfd >= 0) {
		close(r.cfd);
		r.cfd = -1;
	}
	for (i = 0; i < END_MAX && session_count(&r.ctx) > 0; i++)
		loop_once(r.loop, 0);
	check(session_count(&r.ctx) == 0, "the session did not end");
	check(r.ended == r.sessions, "on_end not called exactly once per session");
	if (trace)
		trace_end();

	upstream_pool_free(r.ctx.pool); /* parked connections: a QUIT, closed */
	loop_fd_del(r.loop, g.lfd);
	flush_backlog();
	sts_engine_free(r.engine);
	loop_free(r.loop);
	return 0;
}
