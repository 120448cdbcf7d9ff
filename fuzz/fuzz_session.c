// sources: proxy/session.c proxy/relay.c proxy/upstream.c proxy/txn_report.c proxy/relay_events.c proxy/smtp_cmd.c proxy/smtp_reply.c
// sources: proxy/smtp_data.c tls/tls_io.c tls/tls_resume.c tls/tls_verify.c tests/proxy/fake_sts_engine.c
// sources: core/loop.c core/log.c core/evlog.c core/util.c core/types.c core/conf.c
// sources: policy/sts_report.c
/*
 * fuzz_session.c - a whole proxied SMTP session driven by arbitrary bytes
 * from both sides: the real loop, session state machine, SMTP parsers and
 * endpoints; the policy engine is tests/proxy/fake_sts_engine.c.
 *
 * The mailer is our end of a socketpair. The "MX" is a loopback listener
 * (127.0.0.1, ephemeral port) registered in the same loop: the session
 * connects to it as its original destination, and the connection is
 * accepted in a loop callback. Everything runs in one thread.
 *
 * Input: one flags byte (bit 0: the proxy only monitors; bits 1-5: a zero
 * timeout for connect, greeting, command, data_block, data_done), then a
 * script of operations, each a header byte hh nnnnnn:
 *   00  the mailer sends n bytes (n == 63: 63 + the next byte)
 *   01  the MX sends n bytes (same length rule)
 *   10  n odd: session_shutdown_all(); even: the mailer half-closes
 *   11  n odd: the MX resets the connection; even: the MX half-closes
 * The loop runs until nothing moves after every operation. The MX stream
 * never offers STARTTLS (every "STARTTLS" in it is defaced before the run),
 * so no handshake is ever attempted and a run stays in plaintext.
 *
 * Invariants (abort() on violation):
 *  - the session ends: after the script, a draining stop and both peers
 *    closing, it is freed within a bounded number of loop iterations;
 *  - every reply line the mailer receives is well formed (three digits,
 *    ' ', '-' or CRLF, no bare CR, LF or NUL);
 *  - the reply to a final dot is acknowledged (2xx) only when the mailer
 *    really sent CRLF.CRLF, the MX really received a final dot for it, and
 *    the very reply bytes were sent by the MX after it got that dot: the
 *    proxy never makes up or reuses an acknowledgement;
 *  - the MX never receives a NUL, a bare CR or a bare LF.
 * Leaks are found by the address sanitizer: every session must be freed.
 * With FUZZ_SESSION_TRACE set, a run prints what both peers received.
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

#include <openssl/ssl.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "proxy/session.h"
#include "tests/proxy/fake_sts_engine.h"

#define INPUT_MAX  16384
#define STREAM_MAX (1024 * 1024) /* replies can be many times the commands that caused them */
#define DOTS_MAX   8192
#define SETTLE_MAX 400  /* loop iterations until quiet after one operation */
#define END_MAX    2000 /* loop iterations for the session to end once both peers closed */

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
	SSL_CTX *tls; /* never used: no STARTTLS reaches the session */
} g;

/* One run. Streams are what each side sent or received, in order. */
static struct {
	struct loop *loop;
	struct sts_engine *engine;
	struct session_stats stats;
	struct session_ctx ctx;
	int cfd, ufd;
	unsigned ended;

	size_t cs_len, cs_sent; /* mailer_sent: all of it, and how much went out */
	size_t us_len, us_sent; /* mx_sent */
	size_t cr_len, cr_done; /* mailer_got, and how much was matched to replies */
	bool cr_full;
	size_t ur_len, ur_scan, ur_checked; /* mx_got */
	bool ur_full;

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

/* The four streams of a run, in order (outside r, which is cleared per run). */
static char mailer_sent[INPUT_MAX]; /* mailer -> proxy: the script's */
static char mx_sent[INPUT_MAX];     /* MX -> proxy: the script's, defaced */
static char mailer_got[STREAM_MAX]; /* proxy -> mailer */
static char mx_got[STREAM_MAX];     /* proxy -> MX */
static bool trace;

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_session: invariant violated: %s\n", what);
		abort();
	}
}

/* --- the MX listener ---------------------------------------------------------- */

static void
on_accept(struct loop *loop, int fd, int events, void *arg)
{
	int c, one = 1;

	(void)loop;
	(void)events;
	(void)arg;
	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		/* Without it Nagle holds back the MX's second small write until an ACK. */
		(void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* A second connection (never expected without TLS) replaces the first. */
		if (r.ufd >= 0)
			close(r.ufd);
		r.ufd = c;
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
	if ((g.tls = SSL_CTX_new(TLS_client_method())) == NULL)
		return -1;
	fake_sts_set(rules, sizeof(rules) / sizeof(rules[0]));
	g.init = true;
	return 0;
}

/* --- what the MX receives --------------------------------------------------- */

/* up_received - account for new bytes from the proxy: dots, and no bare CR/LF/NUL. */
static void
up_received(bool final)
{
	size_t i, end = r.ur_len;
	const char *p;

	/* RFC 5321 section 2.3.8 and SMTP smuggling: CR and LF only as a pair. */
	if (!final && end > 0 && mx_got[end - 1] == '\r')
		end--; /* its LF may still be on the way */
	for (i = r.ur_checked; i < end; i++) {
		char c = mx_got[i];

		check(c != '\0', "NUL sent upstream");
		check(c != '\r' || (i + 1 < r.ur_len && mx_got[i + 1] == '\n'),
		      "bare CR sent upstream");
		check(c != '\n' || (i > 0 && mx_got[i - 1] == '\r'), "bare LF sent upstream");
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
	if (r.ufd >= 0 && read_all(r.ufd, mx_got, &r.ur_len, &r.ur_full) > 0) {
		any = true;
		if (!r.ur_full)
			up_received(false);
	}
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

/* deface - no STARTTLS offer may reach the session: a handshake needs a real peer. */
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
	int sv[2];

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
	deface(mx_sent, r.us_len);

	conf = g.conf;
	conf.mode = (data[0] & 1) ? CONF_PROXY_MONITOR : CONF_PROXY_ENFORCE;
	/* A zero timeout fires at the next loop iteration: the timeout paths of each state. */
	if (data[0] & 0x02)
		conf.timeouts.connect = 0;
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
	r.ctx.upstream_tls = g.tls;
	r.ctx.stats = &r.stats;
	r.ctx.on_end = on_end;
	flush_backlog();
	if (loop_fd_add(r.loop, g.lfd, LOOP_READ, on_accept, NULL) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	r.cfd = sv[1];
	if (session_start(&r.ctx, sv[0], NULL, 0, (struct sockaddr *)&g.addr, sizeof(g.addr)) < 0)
		abort();
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
				deliver(r.ufd, mx_sent + o->off, o->len);
			}
			break;
		case 2:
			if (o->arg & 1)
				session_shutdown_all(&r.ctx);
			else if (r.cfd >= 0)
				shutdown(r.cfd, SHUT_WR);
			break;
		default:
			if (r.ufd < 0)
				break;
			if (o->arg & 1) {
				struct linger lg = {1, 0};

				setsockopt(r.ufd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				close(r.ufd);
				r.ufd = -1;
			} else {
				shutdown(r.ufd, SHUT_WR);
			}
			break;
		}
		settle();
	}

	/* The end: a draining stop, then both peers go away; the session must be freed. */
	session_shutdown_all(&r.ctx);
	settle();
	if (r.ufd >= 0) {
		close(r.ufd);
		r.ufd = -1;
	}
	if (r.cfd >= 0) {
		close(r.cfd);
		r.cfd = -1;
	}
	for (i = 0; i < END_MAX && session_count(&r.ctx) > 0; i++)
		loop_once(r.loop, 0);
	check(session_count(&r.ctx) == 0, "the session did not end");
	check(r.ended == 1, "on_end not called exactly once");
	if (!r.ur_full)
		up_received(true);
	if (trace)
		fprintf(stderr,
		        "--- mailer got:\n%.*s--- MX got:\n%.*s--- dots %zu, dot replies %zu\n",
		        (int)r.cr_len, mailer_got, (int)r.ur_len, mx_got, r.n_dots, r.n_slots);

	loop_fd_del(r.loop, g.lfd);
	flush_backlog();
	sts_engine_free(r.engine);
	loop_free(r.loop);
	return 0;
}
