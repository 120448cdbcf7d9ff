// sources: policy/sts_fetch.c core/loop.c core/log.c core/types.c
/*
 * test_sts_fetch.c - sts_fetch against a real nginx on 127.0.0.1.
 *
 * The group setup makes a test CA and certificates with the openssl command,
 * writes an nginx configuration with one virtual server per case (all on one
 * port, chosen by SNI and Host), starts nginx in the foreground and waits
 * until it accepts; the group teardown stops it and removes the files.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/types.h"
#include "policy/sts_fetch.h"

#define POLICY "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 86400\n"

static char tmpdir[64];
static pid_t nginx_pid = -1;
static int port;

/* One fetch and what must come back. */
struct fetch_case {
	const char *name; /* test name, with the RFC section */
	const char *domain;
	int ok;
	enum sts_result result;
	long http_code;  /* -1: do not check */
	size_t len;      /* body length when ok */
	const char *why; /* substring of the reason when not ok */
};

static const struct fetch_case cases[] = {
    {"rfc8461_3_3_good_policy", "good.test", 1, STS_RESULT_OK, 200, sizeof(POLICY) - 1, NULL},
    {"rfc8461_3_3_content_type_case_and_parameters", "params.test", 1, STS_RESULT_OK, 200,
     sizeof(POLICY) - 1, NULL},
    {"rfc8461_3_3_missing_content_type_accepted", "noctype.test", 1, STS_RESULT_OK, 200,
     sizeof(POLICY) - 1, NULL},
    {"rfc8461_3_3_body_of_exactly_64k_accepted", "exact.test", 1, STS_RESULT_OK, 200, 65536, NULL},
    {"rfc8461_3_3_redirect_not_followed", "redirect.test", 0, STS_RESULT_STS_POLICY_FETCH_ERROR,
     301, 0, "redirect"},
    {"rfc8461_3_3_only_200_404_fails", "notfound.test", 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 404,
     0, "404"},
    {"rfc8461_3_3_text_html_rejected", "html.test", 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 200, 0,
     "text/html"},
    {"rfc8461_3_3_declared_body_over_64k_rejected", "big.test", 0,
     STS_RESULT_STS_POLICY_FETCH_ERROR, 200, 0, "larger than"},
    {"rfc8461_3_3_streamed_body_over_64k_rejected", "stream.test", 0,
     STS_RESULT_STS_POLICY_FETCH_ERROR, 200, 0, "larger than"},
    {"rfc8461_3_3_certificate_for_wrong_name", "wrongname.test", 0, STS_RESULT_STS_WEBPKI_INVALID,
     -1, 0, NULL},
    {"rfc8461_3_3_self_signed_certificate", "selfsigned.test", 0, STS_RESULT_STS_WEBPKI_INVALID, -1,
     0, NULL},
};

/* What a callback saw, copied out because the result dies with the call. */
struct seen {
	int calls;
	int ok;
	enum sts_result result;
	long http_code;
	size_t len;
	char head[64];
	char reason[160];
	struct sts_fetch *free_me;
};

static int
run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

static int
write_file(const char *name, const char *text, size_t fill, char c)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	if (text != NULL)
		fputs(text, f);
	for (size_t i = 0; i < fill; i++)
		fputc(c, f);
	return fclose(f);
}

static int
free_tcp_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p = -1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		p = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return p;
}

static int
can_connect(int p)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static int
make_certs(void)
{
	static const char *const good[] = {"good",     "params", "noctype", "exact", "redirect",
	                                   "notfound", "html",   "big",     "stream"};
	char san[1024] = "subjectAltName=";
	size_t n = strlen(san);

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int m = snprintf(san + n, sizeof(san) - n, "%sDNS:mta-sts.%s.test", i ? "," : "",
		                 good[i]);

		if (m < 0 || (size_t)m >= sizeof(san) - n)
			return -1;
		n += (size_t)m;
	}
	if (write_file("san.cnf", san, 0, 0) < 0 ||
	    write_file("wrong.cnf", "subjectAltName=DNS:mta-sts.other.test", 0, 0) < 0)
		return -1;
	/* A CA, a server certificate for every good name, one for the wrong name, one self-signed.
	 */
	return run(
	    "(cd %s && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-subj '/CN=stsproxy test CA' -days 2 -keyout ca.key -out ca.pem "
	    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
	    "&& openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-subj /CN=mta-sts.good.test -keyout srv.key -out srv.csr "
	    "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "-days 2 -extfile san.cnf -out srv.pem "
	    "&& openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-subj /CN=mta-sts.wrongname.test -keyout wrong.key -out wrong.csr "
	    "&& openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "-days 2 -extfile wrong.cnf -out wrong.pem "
	    "&& openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-subj /CN=mta-sts.selfsigned.test -days 2 -keyout self.key -out self.pem "
	    "-addext subjectAltName=DNS:mta-sts.selfsigned.test) >/dev/null 2>&1",
	    tmpdir);
}

static void
server(FILE *f, const char *name, const char *cert, const char *body)
{
	fprintf(f,
	        " server {\n  listen 127.0.0.1:%d ssl;\n  server_name mta-sts.%s.test;\n"
	        "  ssl_certificate %s/%s.pem;\n  ssl_certificate_key %s/%s.key;\n"
	        "  location = /.well-known/mta-sts.txt {\n%s\n  }\n }\n",
	        port, name, tmpdir, cert, tmpdir, cert, body);
}

static int
start_nginx(void **state)
{
	char conf[128], errlog[128];
	FILE *f;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sts-fetch-XXXXXX");
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0755) < 0)
		return -1;
	port = free_tcp_port();
	if (port < 0 || make_certs() < 0)
		return -1;
	if (write_file("exact.txt", NULL, 65536, 'x') < 0 ||
	    write_file("big.txt", NULL, 100 * 1024, 'x') < 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/nginx.conf", tmpdir);
	snprintf(errlog, sizeof(errlog), "%s/error.log", tmpdir);
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
	        "worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
	        "events { worker_connections 64; }\nhttp {\n access_log off;\n"
	        " client_body_temp_path %s/t_body;\n proxy_temp_path %s/t_proxy;\n"
	        " fastcgi_temp_path %s/t_fcgi;\n uwsgi_temp_path %s/t_uwsgi;\n"
	        " scgi_temp_path %s/t_scgi;\n ssl_protocols TLSv1.2 TLSv1.3;\n",
	        tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	/* The default server: anything not named below gets the good certificate and a 404. */
	fprintf(f,
	        " server {\n  listen 127.0.0.1:%d ssl default_server;\n  server_name _;\n"
	        "  ssl_certificate %s/srv.pem;\n  ssl_certificate_key %s/srv.key;\n"
	        "  return 404;\n }\n",
	        port, tmpdir, tmpdir);
	server(f, "good", "srv", "   default_type text/plain;\n   return 200 \"" POLICY "\";");
	server(f, "params", "srv",
	       "   types { }\n   default_type \"TEXT/Plain; charset=utf-8\";\n"
	       "   return 200 \"" POLICY "\";");
	server(f, "noctype", "srv",
	       "   types { }\n   default_type \"\";\n   return 200 \"" POLICY "\";");
	fprintf(f, "#\n");
	server(f, "redirect", "srv",
	       "   return 301 https://mta-sts.good.test/.well-known/mta-sts.txt;");
	server(f, "notfound", "srv", "   return 404;");
	server(f, "html", "srv", "   default_type text/html;\n   return 200 \"" POLICY "\";");
	fclose(f);
	/* Static files need a root: append the three file servers separately. */
	f = fopen(conf, "a");
	if (f == NULL)
		return -1;
	{
		char body[512];

		snprintf(body, sizeof(body),
		         "   types { }\n   default_type text/plain;\n   alias %s/exact.txt;",
		         tmpdir);
		server(f, "exact", "srv", body);
		snprintf(body, sizeof(body),
		         "   types { }\n   default_type text/plain;\n   alias %s/big.txt;", tmpdir);
		server(f, "big", "srv", body);
		/* sub_filter drops Content-Length: the body arrives chunked, size unknown. */
		snprintf(body, sizeof(body),
		         "   types { }\n   default_type text/plain;\n   alias %s/big.txt;\n"
		         "   sub_filter_types text/plain;\n   sub_filter 'never-there' 'x';",
		         tmpdir);
		server(f, "stream", "srv", body);
	}
	server(f, "wrongname", "wrong",
	       "   default_type text/plain;\n   return 200 \"" POLICY "\";");
	server(f, "selfsigned", "self",
	       "   default_type text/plain;\n   return 200 \"" POLICY "\";");
	fprintf(f, "}\n");
	fclose(f);

	nginx_pid = fork();
	if (nginx_pid < 0)
		return -1;
	if (nginx_pid == 0) {
		execl("/usr/sbin/nginx", "nginx", "-p", tmpdir, "-e", errlog, "-c", conf, "-g",
		      "daemon off;", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !can_connect(port); i++) {
		if (waitpid(nginx_pid, NULL, WNOHANG) == nginx_pid) {
			nginx_pid = -1;
			fprintf(stderr, "nginx exited, see %s\n", errlog);
			return -1;
		}
		usleep(50 * 1000);
	}
	return can_connect(port) ? 0 : -1;
}

static int
stop_nginx(void **state)
{
	(void)state;
	if (nginx_pid > 0) {
		kill(nginx_pid, SIGTERM);
		waitpid(nginx_pid, NULL, 0);
		nginx_pid = -1;
	}
	if (tmpdir[0] != '\0')
		(void)run("rm -rf '%s'", tmpdir);
	return 0;
}

static void
on_result(void *arg, const struct sts_fetch_result *r)
{
	struct seen *s = arg;

	s->calls++;
	s->ok = r->ok;
	s->result = r->result;
	s->http_code = r->http_code;
	s->len = r->len;
	snprintf(s->reason, sizeof(s->reason), "%s", r->reason);
	if (r->ok) {
		assert_non_null(r->body);
		assert_int_equal(r->body[r->len], '\0');
		snprintf(s->head, sizeof(s->head), "%.*s", (int)(r->len < 63 ? r->len : 63),
		         r->body);
	} else {
		assert_true(r->reason[0] != '\0');
		assert_int_not_equal(r->result, STS_RESULT_OK);
	}
	if (s->free_me != NULL) {
		sts_fetch_free(s->free_me);
		s->free_me = NULL;
	}
}

static void
run_until(struct loop *loop, const int *calls, int want, int limit_ms)
{
	for (int waited = 0; *calls < want && waited < limit_ms; waited += 20)
		assert_true(loop_once(loop, 20) >= 0);
}

static struct sts_fetch *
new_fetcher(struct loop *loop, uint16_t p, unsigned timeout_ms)
{
	char ca[128], err[256] = "";
	struct sts_fetch_params fp = {.ca_file = ca, .timeout_ms = timeout_ms, .port = p};
	struct sts_fetch *f;

	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	f = sts_fetch_new(loop, &fp, err, sizeof(err));
	if (f == NULL)
		fail_msg("sts_fetch_new: %s", err);
	return f;
}

static struct sockaddr_storage
loopback(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return ss;
}

static void
run_case(void **state)
{
	const struct fetch_case *c = *state;
	struct loop *loop = loop_new();
	struct sts_fetch *f;
	struct seen s = {0};
	struct sockaddr_storage addr = loopback();
	uint64_t id;

	assert_non_null(loop);
	f = new_fetcher(loop, (uint16_t)port, 10000);
	id = sts_fetch_start(f, c->domain, &addr, 1, on_result, &s);
	assert_true(id != 0);
	assert_int_equal(s.calls, 0); /* never inside the call */
	run_until(loop, &s.calls, 1, 12000);
	assert_int_equal(s.calls, 1);
	if (s.ok != c->ok || s.result != c->result)
		fail_msg("%s: ok=%d result=%s (%s), want ok=%d result=%s", c->domain, s.ok,
		         sts_result_name(s.result), s.reason, c->ok, sts_result_name(c->result));
	if (c->http_code >= 0)
		assert_int_equal(s.http_code, c->http_code);
	if (c->ok) {
		assert_int_equal(s.len, c->len);
		assert_true(strncmp(s.head, c->len == 65536 ? "xxxx" : "version: STSv1", 4) == 0);
	}
	if (c->why != NULL && strstr(s.reason, c->why) == NULL)
		fail_msg("%s: reason \"%s\" lacks \"%s\"", c->domain, s.reason, c->why);
	sts_fetch_free(f);
	loop_free(loop);
}

/* A server that accepts and never speaks: the total timeout must end the fetch. */
static void
rfc8461_3_3_total_timeout(void **state)
{
	struct loop *loop = loop_new();
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage addr = loopback();
	struct seen s = {0};
	struct sts_fetch *f;

	(void)state;
	assert_non_null(loop);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	f = new_fetcher(loop, ntohs(sin.sin_port), 400);
	assert_true(sts_fetch_start(f, "good.test", &addr, 1, on_result, &s) != 0);
	run_until(loop, &s.calls, 1, 5000);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.ok, 0);
	assert_int_equal(s.result, STS_RESULT_STS_POLICY_FETCH_ERROR);
	assert_non_null(strstr(s.reason, "imeout"));
	sts_fetch_free(f);
	loop_free(loop);
	close(lfd);
}

/* Cancelled fetches never call back; another one still completes. */
static void
cancel_suppresses_callback(void **state)
{
	struct loop *loop = loop_new();
	struct sockaddr_storage addr = loopback();
	struct seen gone = {0}, kept = {0};
	struct sts_fetch *f;
	uint64_t a, b;

	(void)state;
	assert_non_null(loop);
	f = new_fetcher(loop, (uint16_t)port, 5000);
	a = sts_fetch_start(f, "good.test", &addr, 1, on_result, &gone);
	b = sts_fetch_start(f, "good.test", &addr, 1, on_result, &kept);
	assert_true(a != 0 && b != 0 && a != b);
	loop_once(loop, 0); /* let the first one get under way */
	sts_fetch_cancel(f, a);
	sts_fetch_cancel(f, a);
	sts_fetch_cancel(f, 0);
	sts_fetch_cancel(f, 424242);
	run_until(loop, &kept.calls, 1, 5000);
	assert_int_equal(kept.calls, 1);
	assert_int_equal(kept.ok, 1);
	for (int i = 0; i < 10; i++)
		loop_once(loop, 20);
	assert_int_equal(gone.calls, 0);
	sts_fetch_free(f);
	loop_free(loop);
}

/* A callback may free the fetcher; the other fetch is dropped silently. */
static void
free_inside_callback(void **state)
{
	struct loop *loop = loop_new();
	struct sockaddr_storage addr = loopback();
	struct seen first = {0}, second = {0};
	struct sts_fetch *f;

	(void)state;
	assert_non_null(loop);
	f = new_fetcher(loop, (uint16_t)port, 5000);
	first.free_me = f;
	second.free_me = f;
	assert_true(sts_fetch_start(f, "notfound.test", &addr, 1, on_result, &first) != 0);
	assert_true(sts_fetch_start(f, "big.test", &addr, 1, on_result, &second) != 0);
	for (int waited = 0; first.calls + second.calls == 0 && waited < 5000; waited += 20)
		loop_once(loop, 20);
	assert_int_equal(first.calls + second.calls, 1);
	for (int i = 0; i < 10; i++)
		loop_once(loop, 20);
	assert_int_equal(first.calls + second.calls, 1);
	loop_free(loop);
}

/* Freeing with fetches in flight (one connected to a server that never speaks) calls nobody back.
 */
static void
free_with_pending_fetches(void **state)
{
	struct loop *loop = loop_new();
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage addr = loopback();
	struct seen s = {0}, sg = {0};
	struct sts_fetch *f, *g;

	(void)state;
	assert_non_null(loop);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	f = new_fetcher(loop, ntohs(sin.sin_port), 5000);
	g = new_fetcher(loop, (uint16_t)port, 5000);
	assert_true(sts_fetch_start(f, "good.test", &addr, 1, on_result, &s) != 0);
	assert_true(sts_fetch_start(f, "big.test", &addr, 1, on_result, &s) != 0);
	assert_true(sts_fetch_start(g, "good.test", &addr, 1, on_result, &sg) != 0);
	for (int i = 0; i < 3; i++)
		loop_once(loop, 0);
	sts_fetch_free(f);
	sts_fetch_free(g); /* perhaps half-way through a handshake, perhaps done */
	sts_fetch_free(NULL);
	for (int i = 0; i < 10; i++)
		loop_once(loop, 10);
	assert_int_equal(s.calls, 0);
	assert_true(sg.calls <= 1);
	loop_free(loop);
	close(lfd);
}

/* Inputs refused up front: 0 and no callback. */
static void
bad_inputs_refused(void **state)
{
	struct loop *loop = loop_new();
	struct sockaddr_storage addr = loopback(), none;
	struct seen s = {0};
	struct sts_fetch *f;
	char longname[300];

	(void)state;
	assert_non_null(loop);
	memset(&none, 0, sizeof(none));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	f = new_fetcher(loop, (uint16_t)port, 1000);
	assert_int_equal(sts_fetch_start(f, "good.test", &addr, 0, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, "good.test", &none, 1, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, "good.test", NULL, 1, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, "good.test", &addr, 1, NULL, &s), 0);
	assert_int_equal(sts_fetch_start(f, NULL, &addr, 1, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, "", &addr, 1, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, "evil.test:1:10.0.0.1", &addr, 1, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, "a..test", &addr, 1, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, "good.test/x", &addr, 1, on_result, &s), 0);
	assert_int_equal(sts_fetch_start(f, longname, &addr, 1, on_result, &s), 0);
	for (int i = 0; i < 5; i++)
		loop_once(loop, 10);
	assert_int_equal(s.calls, 0);
	sts_fetch_free(f);
	loop_free(loop);
}

/* RFC 8461 section 3.3: text/plain, any case, parameters allowed; missing is fine. */
static void
rfc8461_3_3_content_type_table(void **state)
{
	static const struct {
		const char *value;
		bool ok;
	} t[] = {
	    {NULL, true},
	    {"text/plain", true},
	    {"TEXT/PLAIN", true},
	    {"Text/Plain; charset=utf-8", true},
	    {"text/plain ;charset=us-ascii", true},
	    {" text/plain", true},
	    {"text/plainx", false},
	    {"text/html", false},
	    {"text/plain2; x=y", false},
	    {"application/octet-stream", false},
	    {"", false},
	    {"text/", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (sts_fetch_content_type_ok(t[i].value) != t[i].ok)
			fail_msg("\"%s\": want %d", t[i].value ? t[i].value : "(null)", t[i].ok);
}

int
main(void)
{
	enum { N_CASES = sizeof(cases) / sizeof(cases[0]) };
	struct CMUnitTest tests[N_CASES + 6];

	log_set_level(LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < N_CASES; i++)
		tests[i] = (struct CMUnitTest){.name = cases[i].name,
		                               .test_func = run_case,
		                               .initial_state = (void *)&cases[i]};
	tests[N_CASES + 0] = (struct CMUnitTest)cmocka_unit_test(rfc8461_3_3_total_timeout);
	tests[N_CASES + 1] = (struct CMUnitTest)cmocka_unit_test(cancel_suppresses_callback);
	tests[N_CASES + 2] = (struct CMUnitTest)cmocka_unit_test(free_inside_callback);
	tests[N_CASES + 3] = (struct CMUnitTest)cmocka_unit_test(free_with_pending_fetches);
	tests[N_CASES + 4] = (struct CMUnitTest)cmocka_unit_test(bad_inputs_refused);
	tests[N_CASES + 5] = (struct CMUnitTest)cmocka_unit_test(rfc8461_3_3_content_type_table);
	return cmocka_run_group_tests_name("sts_fetch", tests, start_nginx, stop_nginx);
}
