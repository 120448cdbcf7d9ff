// sources: main/metrics.c core/onereq.c core/loop.c core/log.c
/*
 * test_metrics.c - the Prometheus endpoint: the exposition writer checked
 * line by line against the text format 0.0.4 grammar, and the HTTP server
 * scraped on 127.0.0.1 by real non-blocking clients driven by the same loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/loop.h"
#include "main/metrics.h"

/* --- an exposition format checker ----------------------------------------- */

static bool
is_name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (colon && c == ':')
		return true;
	return !first && c >= '0' && c <= '9';
}

/* scan_name - length of the metric (colon) or label name at s. */
static size_t
scan_name(const char *s, bool colon)
{
	size_t i = 0;

	while (s[i] != '\0' && is_name_char(s[i], i == 0, colon))
		i++;
	return i;
}

static bool
value_valid(const char *s)
{
	char *end;

	if (strcmp(s, "NaN") == 0 || strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0)
		return true;
	errno = 0;
	(void)strtod(s, &end);
	return *s != '\0' && *end == '\0' && errno == 0;
}

/* sample_valid - one sample line: name{label="value",...} value; *name_len set. */
static bool
sample_valid(const char *line, size_t *name_len)
{
	const char *p = line;
	size_t n = scan_name(p, true);

	if (n == 0)
		return false;
	*name_len = n;
	p += n;
	if (*p == '{') {
		p++;
		for (;;) {
			size_t ln = scan_name(p, false);

			if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"')
				return false;
			p += ln + 2;
			while (*p != '"') {
				if (*p == '\0' || *p == '\n')
					return false;
				if (*p == '\\') {
					if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
						return false;
					p++;
				}
				p++;
			}
			p++;
			if (*p == '}')
				break;
			if (*p != ',')
				return false;
			p++;
		}
		p++;
	}
	if (*p != ' ')
		return false;
	return value_valid(p + 1);
}

/*
 * exposition_check - every line of text is a HELP, a TYPE or a sample; each
 * family has exactly one HELP and one TYPE, before its samples, and its
 * samples are consecutive. Returns the number of samples, or -1.
 */
static int
exposition_check(const char *text)
{
	char fam[64][128];
	int n_fam = 0, samples = 0;
	char cur[128] = "";
	char *copy = strdup(text), *save = NULL, *line;
	int ret = -1;

	assert_non_null(copy);
	if (*text != '\0' && text[strlen(text) - 1] != '\n')
		goto out;
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t n;

		if (strncmp(line, "# HELP ", 7) == 0) {
			n = scan_name(line + 7, true);
			if (n == 0 || n >= sizeof(cur) || line[7 + n] != ' ')
				goto out;
			for (int i = 0; i < n_fam; i++)
				if (strlen(fam[i]) == n && strncmp(fam[i], line + 7, n) == 0)
					goto out; /* a second HELP */
			if (n_fam == 64)
				goto out;
			memcpy(fam[n_fam], line + 7, n);
			fam[n_fam][n] = '\0';
			memcpy(cur, fam[n_fam], n + 1);
			n_fam++;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			n = strlen(cur);
			if (n == 0 || strncmp(line + 7, cur, n) != 0 ||
			    (strcmp(line + 7 + n, " counter") != 0 &&
			     strcmp(line + 7 + n, " gauge") != 0))
				goto out;
		} else {
			if (!sample_valid(line, &n) || n != strlen(cur) ||
			    strncmp(line, cur, n) != 0)
				goto out;
			samples++;
		}
	}
	ret = samples;
out:
	free(copy);
	return ret;
}

/* --- writer cases --------------------------------------------------------- */

static void
writer_families_once(void **state)
{
	struct metrics_writer *w = metrics_writer_new();
	const struct metrics_label none[] = {{"mode", "none"}, {NULL, NULL}};
	const struct metrics_label enforce[] = {{"mode", "enforce"}, {NULL, NULL}};
	const char *text;

	(void)state;
	assert_non_null(w);
	assert_int_equal(metrics_counter(w, "a_total", "A things.", NULL, 1), 0);
	assert_int_equal(metrics_counter(w, "b_total", "B things.", none, 2), 0);
	assert_int_equal(metrics_counter(w, "b_total", "B things.", enforce, 3), 0);
	/* a_total was closed by b_total: writing it again would break the format */
	assert_int_equal(metrics_counter(w, "a_total", "A things.", NULL, 4), -1);
	/* same family, other type */
	assert_int_equal(metrics_gauge(w, "b_total", "B things.", NULL, 5), -1);
	assert_int_equal(metrics_gauge(w, "c", "C.", NULL, 1.5), 0);
	text = metrics_writer_text(w, NULL);
	assert_non_null(text);
	assert_string_equal(text, "# HELP a_total A things.\n"
	                          "# TYPE a_total counter\n"
	                          "a_total 1\n"
	                          "# HELP b_total B things.\n"
	                          "# TYPE b_total counter\n"
	                          "b_total{mode=\"none\"} 2\n"
	                          "b_total{mode=\"enforce\"} 3\n"
	                          "# HELP c C.\n"
	                          "# TYPE c gauge\n"
	                          "c 1.5\n");
	assert_int_equal(exposition_check(text), 4);
	metrics_writer_free(w);
	metrics_writer_free(NULL);
}

static void
writer_escaping(void **state)
{
	struct metrics_writer *w = metrics_writer_new();
	const struct metrics_label l[] = {
	    {"domain", "a\"b\\c\nd"}, {"bad", "\xff"}, {"x", ""}, {NULL, NULL}};
	const char *text;

	(void)state;
	assert_non_null(w);
	assert_int_equal(metrics_counter(w, "e_total", "Help with \\ and\nnew line.", l, 7), 0);
	text = metrics_writer_text(w, NULL);
	assert_non_null(text);
	assert_string_equal(text,
	                    "# HELP e_total Help with \\\\ and\\nnew line.\n"
	                    "# TYPE e_total counter\n"
	                    "e_total{domain=\"a\\\"b\\\\c\\nd\",bad=\"\xef\xbf\xbd\",x=\"\"} 7\n");
	assert_int_equal(exposition_check(text), 1);
	metrics_writer_free(w);
}

struct name_case {
	const char *metric;
	const char *label;
	int expect;
};

static void
writer_names(void **state)
{
	static const struct name_case cases[] = {
	    {"ok_name", "ok", 0},
	    {"ns:sub_total", "l_1", 0},
	    {"9starts_digit", "l", -1},
	    {"has-dash", "l", -1},
	    {"", "l", -1},
	    {"ok", "9l", -1},
	    {"ok", "__reserved", -1},
	    {"ok", "has:colon", -1},
	    {"ok", "", -1},
	    {"sp ace", "l", -1},
	    {"ok2", "_under", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_writer *w = metrics_writer_new();
		const struct metrics_label l[] = {{cases[i].label, "v"}, {NULL, NULL}};

		assert_non_null(w);
		assert_int_equal(metrics_counter(w, cases[i].metric, "h", l, 1), cases[i].expect);
		if (cases[i].expect == 0)
			assert_int_equal(exposition_check(metrics_writer_text(w, NULL)), 1);
		else
			assert_string_equal(metrics_writer_text(w, NULL), "");
		metrics_writer_free(w);
	}
}

static void
writer_gauge_values(void **state)
{
	struct metrics_writer *w = metrics_writer_new();
	const struct metrics_label a[] = {{"k", "a"}, {NULL, NULL}};
	const struct metrics_label b[] = {{"k", "b"}, {NULL, NULL}};
	const struct metrics_label c[] = {{"k", "c"}, {NULL, NULL}};
	const struct metrics_label d[] = {{"k", "d"}, {NULL, NULL}};
	const char *text;

	(void)state;
	assert_non_null(w);
	assert_int_equal(metrics_gauge(w, "g", "G.", a, NAN), 0);
	assert_int_equal(metrics_gauge(w, "g", "G.", b, INFINITY), 0);
	assert_int_equal(metrics_gauge(w, "g", "G.", c, -INFINITY), 0);
	assert_int_equal(metrics_gauge(w, "g", "G.", d, 12345678), 0);
	text = metrics_writer_text(w, NULL);
	assert_non_null(strstr(text, "g{k=\"a\"} NaN\n"));
	assert_non_null(strstr(text, "g{k=\"b\"} +Inf\n"));
	assert_non_null(strstr(text, "g{k=\"c\"} -Inf\n"));
	assert_non_null(strstr(text, "g{k=\"d\"} 12345678\n"));
	assert_int_equal(exposition_check(text), 4);
	metrics_writer_free(w);
}

static void
writer_overflow(void **state)
{
	struct metrics_writer *w = metrics_writer_new();
	char *big = malloc(METRICS_LABEL_VALUE_MAX + 1);
	int rc = 0;
	size_t len = 1;

	(void)state;
	assert_non_null(w);
	assert_non_null(big);
	memset(big, 'x', METRICS_LABEL_VALUE_MAX);
	big[METRICS_LABEL_VALUE_MAX] = '\0';
	for (unsigned i = 0; rc == 0 && i < 100000; i++) {
		const struct metrics_label l[] = {{"v", big}, {NULL, NULL}};

		rc = metrics_counter(w, "big_total", "Big.", l, i);
	}
	assert_int_equal(rc, -1);
	assert_null(metrics_writer_text(w, &len));
	assert_int_equal(len, 0);
	free(big);
	metrics_writer_free(w);
}

/* --- request parsing ------------------------------------------------------ */

struct req_case {
	const char *name;
	const char *req;
	int status;
	int head_only;
};

static void
parse_request_table(void **state)
{
	static const struct req_case cases[] = {
	    {"get", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, 0},
	    {"get_10_lf", "GET /metrics HTTP/1.0\n\n", 200, 0},
	    {"head", "HEAD /metrics HTTP/1.1\r\n\r\n", 200, 1},
	    {"query", "GET /metrics?x=1 HTTP/1.1\r\n\r\n", 200, 0},
	    {"other_path", "GET / HTTP/1.1\r\n\r\n", 404, 0},
	    {"prefix_path", "GET /metricsx HTTP/1.1\r\n\r\n", 404, 0},
	    {"post", "POST /metrics HTTP/1.1\r\n\r\n", 405, 0},
	    {"lower_get", "get /metrics HTTP/1.1\r\n\r\n", 405, 0},
	    {"http2", "GET /metrics HTTP/2.0\r\n\r\n", 505, 0},
	    {"http12", "GET /metrics HTTP/1.2\r\n\r\n", 505, 0},
	    {"no_version", "GET /metrics\r\n\r\n", 400, 0},
	    {"two_spaces", "GET  /metrics HTTP/1.1\r\n\r\n", 400, 0},
	    {"extra_field", "GET /metrics HTTP/1.1 x\r\n\r\n", 400, 0},
	    {"absolute", "GET http://x/metrics HTTP/1.1\r\n\r\n", 400, 0},
	    {"ctl_char", "GET /met\x01rics HTTP/1.1\r\n\r\n", 400, 0},
	    {"bare_cr", "GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n", 400, 0},
	    {"no_line", "GET /metrics HTTP/1.1", 400, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int head_only = -1;
		int st = metrics_parse_request(cases[i].req, strlen(cases[i].req), &head_only);

		if (st != cases[i].status || head_only != cases[i].head_only)
			fail_msg("case %s: status %d head_only %d", cases[i].name, st, head_only);
	}
}

/* --- the server, scraped through the loop --------------------------------- */

struct fake_stats {
	uint64_t sessions;
	unsigned scrapes;
};

static void
collect(void *arg, struct metrics_writer *w)
{
	struct fake_stats *s = arg;
	const struct metrics_label modes[][2] = {
	    {{"mode", "none"}, {NULL, NULL}},
	    {{"mode", "testing"}, {NULL, NULL}},
	    {{"mode", "enforce"}, {NULL, NULL}},
	};
	const struct metrics_label odd[] = {{"result", "quote\"back\\slash"}, {NULL, NULL}};

	s->scrapes++;
	metrics_counter(w, "stsproxy_sessions_total", "Sessions accepted.", NULL, s->sessions);
	metrics_gauge(w, "stsproxy_sessions_active", "Sessions open now.", NULL, 3);
	for (int i = 0; i < 3; i++)
		metrics_counter(w, "stsproxy_messages_relayed_total", "Messages relayed.", modes[i],
		                (uint64_t)i * 10);
	metrics_counter(w, "stsproxy_recipients_blocked_total", "Recipients refused.", odd, 1);
}

struct tclient {
	int fd;
	const char *req;
	size_t req_len;
	size_t sent;
	char resp[65536];
	size_t resp_len;
	bool done;
	int status;
};

static void
tclient_io(struct loop *loop, int fd, int events, void *arg)
{
	struct tclient *c = arg;

	if ((events & LOOP_WRITE) && c->sent < c->req_len) {
		ssize_t n = send(fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);

		if (n > 0)
			c->sent += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			c->sent = c->req_len; /* the server closed early: read what it said */
		if (c->sent == c->req_len)
			loop_fd_mod(loop, fd, LOOP_READ);
		return;
	}
	if (events & LOOP_READ) {
		for (;;) {
			ssize_t n =
			    recv(fd, c->resp + c->resp_len, sizeof(c->resp) - 1 - c->resp_len, 0);

			if (n > 0) {
				c->resp_len += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EAGAIN)
				return;
			break;
		}
		c->resp[c->resp_len] = '\0';
		c->done = true;
		if (sscanf(c->resp, "HTTP/1.1 %d ", &c->status) != 1)
			c->status = 0;
		loop_fd_del(loop, fd);
		close(fd);
		c->fd = -1;
	}
}

static void
tclient_start(struct loop *loop, struct tclient *c, int port, const char *req, size_t len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	memset(c, 0, sizeof(*c));
	c->req = req;
	c->req_len = len;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(c->fd >= 0);
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		assert_int_equal(errno, EINPROGRESS);
	assert_int_equal(loop_fd_add(loop, c->fd, len > 0 ? LOOP_WRITE : LOOP_READ, tclient_io, c),
	                 0);
}

/* run_until_done - drive the loop until every client is done, at most 10 s. */
static void
run_until_done(struct loop *loop, struct tclient *cs, size_t n)
{
	for (int i = 0; i < 1000; i++) {
		size_t done = 0;

		for (size_t j = 0; j < n; j++)
			done += cs[j].done;
		if (done == n)
			return;
		assert_true(loop_once(loop, 10) >= 0);
	}
	fail_msg("clients did not finish");
}

struct fixture {
	struct loop *loop;
	struct metrics *m;
	struct fake_stats stats;
	int port;
};

static struct fixture *
fixture_new(unsigned max_clients, unsigned timeout_ms)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
	struct metrics_params p = {0};
	char err[256] = "";

	assert_non_null(f);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->loop = loop_new();
	assert_non_null(f->loop);
	f->stats.sessions = 42;
	p.loop = f->loop;
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	p.collect = collect;
	p.arg = &f->stats;
	p.max_clients = max_clients;
	p.timeout_ms = timeout_ms;
	f->m = metrics_start(&p, err, sizeof(err));
	if (f->m == NULL)
		fail_msg("metrics_start: %s", err);
	f->port = metrics_port(f->m);
	assert_true(f->port > 0);
	return f;
}

static void
fixture_free(struct fixture *f)
{
	/* every client the server accepted is gone once the exchanges ended */
	for (int i = 0; i < 100 && metrics_clients(f->m) > 0; i++)
		loop_once(f->loop, 10);
	assert_int_equal(metrics_clients(f->m), 0);
	metrics_stop(f->m);
	loop_free(f->loop);
	free(f);
}

static const char *
body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

static void
scrape_ok(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct fixture *f = fixture_new(0, 0);
	struct tclient *c = malloc(sizeof(*c));
	const char *body;
	char cl[64];

	(void)state;
	assert_non_null(c);
	tclient_start(f->loop, c, f->port, req, sizeof(req) - 1);
	run_until_done(f->loop, c, 1);
	assert_int_equal(c->status, 200);
	assert_non_null(strstr(c->resp, "\r\nContent-Type: " METRICS_CONTENT_TYPE "\r\n"));
	body = body_of(c->resp);
	snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(body));
	assert_non_null(strstr(c->resp, cl));
	assert_int_equal(exposition_check(body), 6);
	assert_non_null(strstr(body, "\nstsproxy_sessions_total 42\n"));
	assert_non_null(strstr(body, "\nstsproxy_messages_relayed_total{mode=\"enforce\"} 20\n"));
	assert_non_null(strstr(
	    body, "\nstsproxy_recipients_blocked_total{result=\"quote\\\"back\\\\slash\"} 1\n"));
	assert_int_equal(f->stats.scrapes, 1);
	free(c);
	fixture_free(f);
}

struct status_case {
	const char *name;
	const char *req;
	int status;
};

static void
scrape_statuses(void **state)
{
	static const struct status_case cases[] = {
	    {"other_path", "GET /favicon.ico HTTP/1.1\r\n\r\n", 404},
	    {"post", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405},
	    {"garbage", "\x16\x03\x01\x02\x01\n\n", 400},
	    {"version", "GET /metrics HTTP/2.0\r\n\r\n", 505},
	    {"head", "HEAD /metrics HTTP/1.0\r\n\r\n", 200},
	};
	struct fixture *f = fixture_new(0, 0);
	struct tclient *c = calloc(1, sizeof(*c));

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tclient_start(f->loop, c, f->port, cases[i].req, strlen(cases[i].req));
		run_until_done(f->loop, c, 1);
		if (c->status != cases[i].status)
			fail_msg("case %s: status %d", cases[i].name, c->status);
		if (cases[i].status == 405)
			assert_non_null(strstr(c->resp, "\r\nAllow: GET, HEAD\r\n"));
		if (strncmp(cases[i].req, "HEAD", 4) == 0) {
			/* the length of the body a GET would get, and no body */
			assert_string_equal(body_of(c->resp), "");
			assert_null(strstr(c->resp, "Content-Length: 0\r\n"));
		}
	}
	/* only the HEAD ran the collector */
	assert_int_equal(f->stats.scrapes, 1);
	free(c);
	fixture_free(f);
}

static void
oversized_request(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	struct tclient *c = calloc(1, sizeof(*c));
	size_t big = 3 * METRICS_REQUEST_MAX;
	char *req = malloc(big);
	int n;

	(void)state;
	assert_non_null(c);
	assert_non_null(req);
	/* a fine request line, then headers without end: 431 */
	n = snprintf(req, big, "GET /metrics HTTP/1.1\r\n");
	while ((size_t)n + 20 < big)
		n += snprintf(req + n, big - (size_t)n, "X-Pad: aaaaaaaaaa\r\n");
	tclient_start(f->loop, c, f->port, req, (size_t)n);
	run_until_done(f->loop, c, 1);
	assert_int_equal(c->status, 431);
	/* a request line longer than the whole limit: 400 */
	memset(req, 'a', big);
	memcpy(req, "GET /", 5);
	tclient_start(f->loop, c, f->port, req, big);
	run_until_done(f->loop, c, 1);
	assert_int_equal(c->status, 400);
	assert_int_equal(f->stats.scrapes, 0);
	free(req);
	free(c);
	fixture_free(f);
}

static void
many_clients(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
	enum { N = 40 };
	struct fixture *f = fixture_new(16, 0);
	struct tclient *cs = calloc(N, sizeof(*cs));
	int ok = 0, busy = 0;

	(void)state;
	assert_non_null(cs);
	/* 40 at once against a limit of 16: each gets an answer, 200 or 503 */
	for (int i = 0; i < N; i++)
		tclient_start(f->loop, &cs[i], f->port, req, sizeof(req) - 1);
	run_until_done(f->loop, cs, N);
	for (int i = 0; i < N; i++) {
		if (cs[i].status == 200)
			ok++;
		else if (cs[i].status == 503 || cs[i].resp_len == 0)
			busy++; /* a refused client may see the reset before the 503 */
		else
			fail_msg("client %d: status %d", i, cs[i].status);
	}
	assert_true(ok >= 16);
	assert_int_equal(ok + busy, N);
	/* then 5 rounds of 10, under the limit: all served */
	for (int r = 0; r < 5; r++) {
		for (int i = 0; i < 10; i++)
			tclient_start(f->loop, &cs[i], f->port, req, sizeof(req) - 1);
		run_until_done(f->loop, cs, 10);
		for (int i = 0; i < 10; i++)
			assert_int_equal(cs[i].status, 200);
	}
	free(cs);
	fixture_free(f);
}

static void
idle_client_timeout(void **state)
{
	struct fixture *f = fixture_new(0, 200);
	struct tclient *c = calloc(1, sizeof(*c));
	uint64_t start;

	(void)state;
	assert_non_null(c);
	/* connects and never sends a byte: closed without an answer */
	tclient_start(f->loop, c, f->port, "", 0);
	start = loop_now_ms(f->loop);
	run_until_done(f->loop, c, 1);
	assert_int_equal(c->resp_len, 0);
	assert_true(loop_now_ms(f->loop) - start >= 150);
	assert_int_equal(metrics_clients(f->m), 0);
	free(c);
	fixture_free(f);
}

static void
bind_failure(void **state)
{
	struct loop *loop = loop_new();
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
	struct metrics_params p = {0};
	struct fake_stats s = {0};
	char err[256] = "";

	(void)state;
	assert_non_null(loop);
	/* 198.51.100.1 is not on this host: bind fails, the error says why */
	inet_pton(AF_INET, "198.51.100.1", &sin.sin_addr);
	p.loop = loop;
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	p.collect = collect;
	p.arg = &s;
	assert_null(metrics_start(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "metrics: bind:"));
	metrics_stop(NULL);
	loop_free(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(writer_families_once),
	    cmocka_unit_test(writer_escaping),
	    cmocka_unit_test(writer_names),
	    cmocka_unit_test(writer_gauge_values),
	    cmocka_unit_test(writer_overflow),
	    cmocka_unit_test(parse_request_table),
	    cmocka_unit_test(scrape_ok),
	    cmocka_unit_test(scrape_statuses),
	    cmocka_unit_test(oversized_request),
	    cmocka_unit_test(many_clients),
	    cmocka_unit_test(idle_client_timeout),
	    cmocka_unit_test(bind_failure),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
