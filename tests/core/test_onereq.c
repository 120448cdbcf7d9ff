// sources: core/onereq.c core/loop.c core/log.c
/*
 * test_onereq.c - the one-request server on a real loop and a real unix
 * listening socket, with a toy line protocol ("ok <line>"): a request
 * answered (whole, in pieces, with an answer larger than the socket
 * buffer), the size bound, the client limit with and without a busy
 * answer, the timer, peers that close early, both ways of finishing, the
 * accept tag, a refused answer, parameters and stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/onereq.h"

#define BIG_ANSWER (1u << 20) /* well beyond a unix socket's buffer */

/* --- a toy protocol -------------------------------------------------------- */

struct fix {
	struct loop *loop;
	int lfd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	struct onereq *srv;
	/* how the server behaves */
	int next_tag;
	bool refuse;
	bool big;
	/* what the callbacks saw */
	unsigned answers;
	unsigned accepts;
	char seen[256];
	size_t seen_len;
	bool seen_too_long;
	bool seen_nul;
	int seen_tag;
};

/* line_done - a request is one line. */
static bool
line_done(const char *buf, size_t len, bool eof)
{
	return !eof && memchr(buf, '\n', len) != NULL;
}

/* line_or_eof - a line, or whatever came before the peer's half-close. */
static bool
line_or_eof(const char *buf, size_t len, bool eof)
{
	return eof ? len > 0 : memchr(buf, '\n', len) != NULL;
}

static int
answer(void *arg, struct onereq_request *req, char **out, size_t *out_len)
{
	struct fix *f = arg;
	size_t n = req->len < sizeof(f->seen) - 1 ? req->len : sizeof(f->seen) - 1;
	const char *nl = memchr(req->buf, '\n', req->len);
	char *a;

	f->answers++;
	memcpy(f->seen, req->buf, n);
	f->seen[n] = '\0';
	f->seen_len = req->len;
	f->seen_too_long = req->too_long;
	f->seen_nul = req->buf[req->len] == '\0';
	f->seen_tag = req->tag;
	if (f->refuse)
		return -1;
	if (f->big) {
		if ((a = malloc(BIG_ANSWER)) == NULL)
			return -1;
		for (size_t i = 0; i < BIG_ANSWER; i++)
			a[i] = (char)('a' + i % 26);
		*out = a;
		*out_len = BIG_ANSWER;
		return 0;
	}
	if ((a = malloc(300)) == NULL)
		return -1;
	if (req->too_long)
		snprintf(a, 300, "too long\n");
	else
		snprintf(a, 300, "ok %.*s\n",
		         (int)(nl != NULL ? (size_t)(nl - req->buf) : req->len), req->buf);
	*out = a;
	*out_len = strlen(a);
	return 0;
}

static int
accepted(void *arg, int fd)
{
	struct fix *f = arg;

	assert_true(fd >= 0);
	f->accepts++;
	return f->next_tag;
}

/* --- fixture and clients ---------------------------------------------------- */

/* fix_new - a listener on an autobound abstract unix address, served with p (0: defaults). */
static struct fix *
fix_new(struct onereq_params p)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->loop = loop_new();
	assert_non_null(f->loop);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	f->addr.sun_family = AF_UNIX;
	/* an address of just the family: the kernel picks a free abstract name */
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&f->addr, sizeof(sa_family_t)), 0);
	f->addrlen = sizeof(f->addr);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&f->addr, &f->addrlen), 0);
	assert_int_equal(listen(f->lfd, 64), 0);
	p.loop = f->loop;
	p.fd = f->lfd;
	if (p.request_max == 0)
		p.request_max = 64;
	if (p.max_clients == 0)
		p.max_clients = 4;
	if (p.timeout_ms == 0)
		p.timeout_ms = 5000;
	if (p.complete == NULL)
		p.complete = line_done;
	p.answer = answer;
	p.accepted = accepted;
	p.arg = f;
	f->srv = onereq_start(&p);
	assert_non_null(f->srv);
	return f;
}

static void
fix_free(struct fix *f)
{
	onereq_stop(f->srv);
	/* the listener is the owner's */
	assert_true(fcntl(f->lfd, F_GETFD) >= 0);
	close(f->lfd);
	loop_free(f->loop);
	free(f);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* settle - run the loop for about ms milliseconds. */
static void
settle(struct fix *f, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		assert_true(loop_once(f->loop, 5) >= 0);
}

/* wait_clients - run the loop until the server counts n connections; false after ms. */
static bool
wait_clients(struct fix *f, unsigned n, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (onereq_clients(f->srv) != n) {
		if (now_ms() >= end)
			return false;
		assert_true(loop_once(f->loop, 5) >= 0);
	}
	return true;
}

/* cli - a connected, blocking client; the server sees it at the next loop turn. */
static int
cli(struct fix *f)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, f->addrlen), 0);
	return fd;
}

static void
cli_send(int fd, const char *s, size_t n)
{
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* What a client received, and how its connection ended. */
struct got {
	char *buf; /* buf[len] == '\0' */
	size_t len;
	bool closed; /* the server closed (or shut down) its side */
	int err;     /* 0 for a clean end of file, else the recv() error */
};

/* collect - run the loop and gather what fd receives until the server's end or ms pass. */
static struct got
collect(struct fix *f, int fd, unsigned ms)
{
	struct got g = {0};
	size_t cap = BIG_ANSWER + 4096;
	uint64_t end = now_ms() + ms;

	g.buf = malloc(cap + 1);
	assert_non_null(g.buf);
	while (now_ms() < end) {
		ssize_t n;

		assert_true(loop_once(f->loop, 5) >= 0);
		while ((n = recv(fd, g.buf + g.len, cap - g.len, MSG_DONTWAIT)) > 0)
			g.len += (size_t)n;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			g.closed = true;
			g.err = n == 0 ? 0 : errno;
			break;
		}
	}
	g.buf[g.len] = '\0';
	return g;
}

/* --- cases ------------------------------------------------------------------ */

static void
answered(void **state)
{
	struct fix *f = fix_new((struct onereq_params){0});
	struct got g;
	int fd;

	(void)state;
	fd = cli(f);
	cli_send(fd, "hello\n", 6);
	g = collect(f, fd, 2000);
	assert_true(g.closed);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.buf, "ok hello\n");
	assert_int_equal(f->answers, 1);
	assert_int_equal(f->accepts, 1);
	assert_string_equal(f->seen, "hello\n");
	assert_int_equal(f->seen_len, 6);
	assert_false(f->seen_too_long);
	assert_true(f->seen_nul);
	assert_int_equal(onereq_clients(f->srv), 0);
	free(g.buf);
	close(fd);

	/* in pieces: complete() judges the whole buffer, answer() runs once */
	fd = cli(f);
	cli_send(fd, "wor", 3);
	settle(f, 50);
	assert_int_equal(f->answers, 1);
	assert_int_equal(onereq_clients(f->srv), 1);
	cli_send(fd, "ld\n", 3);
	g = collect(f, fd, 2000);
	assert_string_equal(g.buf, "ok world\n");
	assert_int_equal(f->answers, 2);
	assert_string_equal(f->seen, "world\n");
	free(g.buf);
	close(fd);

	/* an answer far larger than the socket buffer arrives whole */
	f->big = true;
	fd = cli(f);
	cli_send(fd, "big\n", 4);
	g = collect(f, fd, 5000);
	assert_true(g.closed);
	assert_int_equal(g.err, 0);
	assert_int_equal(g.len, BIG_ANSWER);
	for (size_t i = 0; i < g.len; i++)
		if (g.buf[i] != (char)('a' + i % 26))
			fail_msg("octet %zu differs", i);
	free(g.buf);
	close(fd);
	assert_true(wait_clients(f, 0, 1000));
	fix_free(f);
}

static void
request_bound(void **state)
{
	struct fix *f = fix_new((struct onereq_params){.request_max = 16});
	char req[40];
	struct got g;
	int fd;

	(void)state;
	/* 15 octets and the LF: exactly the bound, still a request */
	memset(req, 'a', sizeof(req));
	req[15] = '\n';
	fd = cli(f);
	cli_send(fd, req, 16);
	g = collect(f, fd, 2000);
	assert_string_equal(g.buf, "ok aaaaaaaaaaaaaaa\n");
	assert_false(f->seen_too_long);
	assert_int_equal(f->seen_len, 16);
	free(g.buf);
	close(fd);

	/* the same in two pieces: 15 octets are not yet too many */
	fd = cli(f);
	cli_send(fd, req, 15);
	settle(f, 50);
	assert_int_equal(f->answers, 1);
	cli_send(fd, "\n", 1);
	g = collect(f, fd, 2000);
	assert_string_equal(g.buf, "ok aaaaaaaaaaaaaaa\n");
	assert_false(f->seen_too_long);
	assert_int_equal(f->seen_len, 16);
	free(g.buf);
	close(fd);

	/* 40 octets without a line end: answered as too long after exactly 16 */
	memset(req, 'b', sizeof(req));
	fd = cli(f);
	cli_send(fd, req, sizeof(req));
	g = collect(f, fd, 2000);
	assert_true(g.closed);
	assert_int_equal(g.err, 0); /* the unread rest was drained, not reset */
	assert_string_equal(g.buf, "too long\n");
	assert_int_equal(f->answers, 3);
	assert_true(f->seen_too_long);
	assert_int_equal(f->seen_len, 16);
	assert_string_equal(f->seen, "bbbbbbbbbbbbbbbb");
	assert_true(f->seen_nul);
	free(g.buf);
	close(fd);
	assert_int_equal(onereq_clients(f->srv), 0);
	fix_free(f);
}

static void
client_limit(void **state)
{
	static const char busy[] = "busy\n";
	struct fix *f =
	    fix_new((struct onereq_params){.max_clients = 2, .busy_answer = busy, .busy_len = 5});
	struct got g;
	int a, b, c;

	(void)state;
	a = cli(f);
	b = cli(f);
	assert_true(wait_clients(f, 2, 1000));
	/* the third is refused with the busy answer, never counted nor shown to accepted() */
	c = cli(f);
	g = collect(f, c, 2000);
	assert_true(g.closed);
	assert_string_equal(g.buf, "busy\n");
	assert_int_equal(onereq_clients(f->srv), 2);
	assert_int_equal(f->accepts, 2);
	assert_int_equal(f->answers, 0);
	free(g.buf);
	close(c);
	/* the two admitted ones are served as usual */
	cli_send(a, "a\n", 2);
	cli_send(b, "b\n", 2);
	g = collect(f, a, 2000);
	assert_string_equal(g.buf, "ok a\n");
	free(g.buf);
	g = collect(f, b, 2000);
	assert_string_equal(g.buf, "ok b\n");
	free(g.buf);
	close(a);
	close(b);
	/* the limit counts open connections: room again */
	assert_true(wait_clients(f, 0, 1000));
	c = cli(f);
	cli_send(c, "c\n", 2);
	g = collect(f, c, 2000);
	assert_string_equal(g.buf, "ok c\n");
	free(g.buf);
	close(c);
	fix_free(f);

	/* without a busy answer the refused peer just sees the close */
	f = fix_new((struct onereq_params){.max_clients = 1});
	a = cli(f);
	assert_true(wait_clients(f, 1, 1000));
	c = cli(f);
	g = collect(f, c, 2000);
	assert_true(g.closed);
	assert_int_equal(g.len, 0);
	assert_int_equal(onereq_clients(f->srv), 1);
	free(g.buf);
	close(c);
	close(a);
	assert_true(wait_clients(f, 0, 1000));
	fix_free(f);
}

static void
silent_client_timeout(void **state)
{
	struct fix *f = fix_new((struct onereq_params){.timeout_ms = 150});
	uint64_t start;
	struct got g;
	int fd;

	(void)state;
	/* a silent client: closed by the timer, not before, without an answer */
	start = now_ms();
	fd = cli(f);
	g = collect(f, fd, 3000);
	assert_true(g.closed);
	assert_int_equal(g.len, 0);
	assert_true(now_ms() - start >= 140);
	assert_int_equal(f->accepts, 1);
	assert_int_equal(f->answers, 0);
	assert_int_equal(onereq_clients(f->srv), 0);
	free(g.buf);
	close(fd);

	/* half a request is no better */
	start = now_ms();
	fd = cli(f);
	cli_send(fd, "half", 4);
	g = collect(f, fd, 3000);
	assert_true(g.closed);
	assert_int_equal(g.len, 0);
	assert_true(now_ms() - start >= 140);
	assert_int_equal(f->answers, 0);
	free(g.buf);
	close(fd);
	assert_int_equal(onereq_clients(f->srv), 0);
	fix_free(f);

	/* the timer bounds the lingering after the answer too */
	f = fix_new((struct onereq_params){.timeout_ms = 150, .finish = ONEREQ_LINGER});
	fd = cli(f);
	cli_send(fd, "x\n", 2);
	g = collect(f, fd, 2000);
	assert_string_equal(g.buf, "ok x\n");
	free(g.buf);
	assert_int_equal(onereq_clients(f->srv), 1); /* waiting for our close */
	assert_true(wait_clients(f, 0, 2000));
	close(fd);
	fix_free(f);
}

static void
early_close(void **state)
{
	struct fix *f = fix_new((struct onereq_params){0});
	struct got g;
	int fd;

	(void)state;
	/* connects and closes: gone without an answer */
	fd = cli(f);
	assert_true(wait_clients(f, 1, 1000));
	close(fd);
	assert_true(wait_clients(f, 0, 1000));
	/* half a request, then the close */
	fd = cli(f);
	cli_send(fd, "hal", 3);
	settle(f, 30);
	close(fd);
	assert_true(wait_clients(f, 0, 1000));
	/* half a request and a half-close: incomplete for line_done() */
	fd = cli(f);
	cli_send(fd, "hal", 3);
	shutdown(fd, SHUT_WR);
	g = collect(f, fd, 2000);
	assert_true(g.closed);
	assert_int_equal(g.len, 0);
	free(g.buf);
	close(fd);
	/* a whole request, closed before the answer could be read: no harm */
	f->big = true;
	fd = cli(f);
	cli_send(fd, "gone\n", 5);
	close(fd);
	for (int i = 0; i < 400 && f->answers == 0; i++)
		assert_true(loop_once(f->loop, 5) >= 0);
	assert_int_equal(f->answers, 1);
	assert_true(wait_clients(f, 0, 2000));
	assert_int_equal(f->accepts, 4);
	fix_free(f);

	/* a protocol where the half-close ends the request */
	f = fix_new((struct onereq_params){.complete = line_or_eof});
	fd = cli(f);
	cli_send(fd, "no line end", 11);
	shutdown(fd, SHUT_WR);
	g = collect(f, fd, 2000);
	assert_string_equal(g.buf, "ok no line end\n");
	assert_int_equal(f->seen_len, 11);
	free(g.buf);
	close(fd);
	/* but an empty one is still nothing */
	fd = cli(f);
	shutdown(fd, SHUT_WR);
	g = collect(f, fd, 2000);
	assert_true(g.closed);
	assert_int_equal(g.len, 0);
	assert_int_equal(f->answers, 1);
	free(g.buf);
	close(fd);
	fix_free(f);
}

static void
finish_modes(void **state)
{
	char req[1000];
	struct fix *f = fix_new((struct onereq_params){.finish = ONEREQ_CLOSE});
	struct got g;
	int fd;

	(void)state;
	/* CLOSE: bytes after the request are consumed, so the end is clean, not a reset */
	memset(req, 'z', sizeof(req));
	memcpy(req, "req\n", 4);
	fd = cli(f);
	cli_send(fd, req, sizeof(req));
	g = collect(f, fd, 2000);
	assert_true(g.closed);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.buf, "ok req\n");
	assert_int_equal(onereq_clients(f->srv), 0); /* closed without waiting for us */
	free(g.buf);
	close(fd);
	fix_free(f);

	/* LINGER: our side shut down, the connection kept until the peer closes */
	f = fix_new((struct onereq_params){.finish = ONEREQ_LINGER});
	fd = cli(f);
	cli_send(fd, req, sizeof(req));
	g = collect(f, fd, 2000);
	assert_true(g.closed);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.buf, "ok req\n");
	free(g.buf);
	assert_int_equal(onereq_clients(f->srv), 1);
	cli_send(fd, req, sizeof(req)); /* read and discarded */
	settle(f, 50);
	assert_int_equal(onereq_clients(f->srv), 1);
	assert_int_equal(f->answers, 1);
	close(fd);
	assert_true(wait_clients(f, 0, 1000));
	fix_free(f);
}

static void
tag_and_refusal(void **state)
{
	struct fix *f = fix_new((struct onereq_params){0});
	struct got g;
	int fd;

	(void)state;
	f->next_tag = 7;
	fd = cli(f);
	cli_send(fd, "t\n", 2);
	g = collect(f, fd, 2000);
	assert_string_equal(g.buf, "ok t\n");
	assert_int_equal(f->seen_tag, 7);
	free(g.buf);
	close(fd);
	/* an answer refused by the owner: closed without a word */
	f->refuse = true;
	fd = cli(f);
	cli_send(fd, "r\n", 2);
	g = collect(f, fd, 2000);
	assert_true(g.closed);
	assert_int_equal(g.len, 0);
	assert_int_equal(f->answers, 2);
	assert_int_equal(onereq_clients(f->srv), 0);
	free(g.buf);
	close(fd);
	fix_free(f);
}

static void
params_and_stop(void **state)
{
	struct loop *loop = loop_new();
	struct onereq_params ok = {.fd = 0,
	                           .request_max = 8,
	                           .max_clients = 1,
	                           .timeout_ms = 1,
	                           .complete = line_done,
	                           .answer = answer};
	struct onereq_params p;
	struct fix *f;
	struct got g;
	int a, b, late;

	(void)state;
	assert_non_null(loop);
	ok.loop = loop;
	errno = 0;
	assert_null(onereq_start(NULL));
	assert_int_equal(errno, EINVAL);
	p = ok, p.loop = NULL;
	assert_null(onereq_start(&p));
	p = ok, p.fd = -1;
	assert_null(onereq_start(&p));
	p = ok, p.request_max = 0;
	assert_null(onereq_start(&p));
	p = ok, p.request_max = SIZE_MAX;
	assert_null(onereq_start(&p));
	p = ok, p.max_clients = 0;
	assert_null(onereq_start(&p));
	p = ok, p.timeout_ms = 0;
	assert_null(onereq_start(&p));
	p = ok, p.finish = (enum onereq_finish)9;
	assert_null(onereq_start(&p));
	p = ok, p.complete = NULL;
	assert_null(onereq_start(&p));
	p = ok, p.answer = NULL;
	errno = 0;
	assert_null(onereq_start(&p));
	assert_int_equal(errno, EINVAL);
	onereq_stop(NULL);
	assert_int_equal(onereq_clients(NULL), 0);
	loop_free(loop);

	/* stop closes what is open, lingering or not, and leaves the listener */
	f = fix_new((struct onereq_params){.finish = ONEREQ_LINGER});
	a = cli(f);
	b = cli(f);
	cli_send(b, "b\n", 2);
	g = collect(f, b, 2000);
	assert_string_equal(g.buf, "ok b\n");
	free(g.buf);
	assert_int_equal(onereq_clients(f->srv), 2);
	onereq_stop(f->srv);
	f->srv = NULL;
	g = collect(f, a, 200);
	assert_true(g.closed);
	assert_int_equal(g.len, 0);
	free(g.buf);
	assert_int_equal(send(b, "more", 4, MSG_NOSIGNAL), -1); /* b's peer is gone */
	/* nobody accepts on the listener any more: the connection waits in its backlog */
	late = cli(f);
	settle(f, 30);
	{
		int afd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK);

		assert_true(afd >= 0);
		close(afd);
	}
	close(late);
	close(a);
	close(b);
	fix_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(answered),        cmocka_unit_test(request_bound),
	    cmocka_unit_test(client_limit),    cmocka_unit_test(silent_client_timeout),
	    cmocka_unit_test(early_close),     cmocka_unit_test(finish_modes),
	    cmocka_unit_test(tag_and_refusal), cmocka_unit_test(params_and_stop),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
