// sources: proxy/proxy.c proxy/worker.c proxy/intercept.c tls/tls_ctx.c tls/tls_resume.c tls/tls_verify.c
// sources: tests/proxy/fake_session.c tests/proxy/fake_sts_engine.c proxy/socketmap.c proxy/smap_reply.c core/netstring.c
// sources: core/loop.c core/conf.c core/log.c core/types.c core/util.c
/*
 * test_proxy.c - start-up and stop of the workers, and the refusals of the
 * accept path that need no interception rule: a direct connection to the
 * proxy port and a source outside "clients" both get 554 (never an open
 * relay), an address in use is reported at start-up with the address, and
 * the client-side STARTTLS certificate is generated when none is given.
 * Sessions behind a real REDIRECT rule are covered by
 * tests/integration/proxy_intercept.sh.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

#include "core/conf.h"
#include "proxy/proxy.h"

struct fixture {
	char dir[64];
	unsigned port;
	struct conf *conf;
	struct proxy *proxy;
};

/* free_port - a TCP port nobody listens on right now, on both loopbacks. */
static unsigned
free_port(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	socklen_t len = sizeof(sin6);
	int fd = socket(AF_INET6, SOCK_STREAM, 0), off = 0;

	assert_true(fd >= 0);
	/* dual stack: the port is free for IPv4 too */
	assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin6, &len), 0);
	close(fd);
	return ntohs(sin6.sin6_port);
}

static struct conf *
load(struct fixture *f, const char *extra)
{
	char text[1024], err[256] = "";
	struct conf *c;
	int n;

	n = snprintf(text, sizeof(text),
	             "state_dir = \"%s\";\n"
	             "listen = [ \"127.0.0.1:%u\", \"[::1]:%u\" ];\n"
	             "workers = 2;\n"
	             "timeouts = { data_done = 5; };\n"
	             "%s\n",
	             f->dir, f->port, f->port, extra);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	c = conf_load_string(text, "test.conf", err, sizeof(err));
	if (c == NULL)
		fail_msg("config: %s", err);
	return c;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_proxy.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->port = free_port();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	proxy_stop(f->proxy);
	conf_free(f->conf);
	snprintf(path, sizeof(path), "%s/server.crt", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/server.key", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct proxy *
start(struct fixture *f, const char *extra)
{
	char err[256] = "";

	f->conf = load(f, extra);
	f->proxy = proxy_start(f->conf, NULL, err, sizeof(err));
	if (f->proxy == NULL)
		fail_msg("proxy_start: %s", err);
	return f->proxy;
}

/* talk - connect to the proxy on family's loopback and read until EOF or 2 s. */
static void
talk(const struct fixture *f, int family, char *buf, size_t size)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	size_t got = 0;
	int fd;

	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)f->port);
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)f->port);
		s->sin6_addr = in6addr_loopback;
		len = sizeof(*s);
	}
	fd = socket(family, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		assert_int_equal(poll(&p, 1, 2000), 1);
		n = read(fd, buf + got, size - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
}

static void
never_open_relay_direct_connection_v4(void **state)
{
	struct fixture *f = *state;
	char buf[256];

	start(f, "");
	for (int i = 0; i < 8; i++) { /* whichever worker the kernel picks */
		talk(f, AF_INET, buf, sizeof(buf));
		assert_string_equal(buf, "554 5.7.1 stsproxy is not an open relay\r\n");
	}
	assert_int_equal(proxy_sessions(f->proxy), 0);
}

static void
never_open_relay_direct_connection_v6(void **state)
{
	struct fixture *f = *state;
	char buf[256];

	start(f, "");
	for (int i = 0; i < 8; i++) {
		talk(f, AF_INET6, buf, sizeof(buf));
		assert_string_equal(buf, "554 5.7.1 stsproxy is not an open relay\r\n");
	}
}

static void
client_outside_allowlist(void **state)
{
	struct fixture *f = *state;
	char buf[256];

	start(f, "clients = [ \"10.0.0.0/8\", \"fd00::/8\" ];");
	talk(f, AF_INET, buf, sizeof(buf));
	assert_string_equal(buf, "554 5.7.1 stsproxy is not an open relay\r\n");
	talk(f, AF_INET6, buf, sizeof(buf));
	assert_string_equal(buf, "554 5.7.1 stsproxy is not an open relay\r\n");
}

static void
address_in_use_reported_at_start(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char err[256] = "", want[64];
	int fd;

	sin.sin_port = htons((uint16_t)f->port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 1), 0);
	f->conf = load(f, "");
	assert_null(proxy_start(f->conf, NULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "listen 127.0.0.1:%u: bind: ", f->port);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, strerror(EADDRINUSE)));
	close(fd);
}

static void
stats_start_at_zero(void **state)
{
	struct fixture *f = *state;
	struct session_stats st;

	start(f, "");
	memset(&st, 0xff, sizeof(st));
	proxy_stats(f->proxy, &st);
	assert_int_equal(st.sessions_total, 0);
	assert_int_equal(st.sessions_active, 0);
	assert_int_equal(st.recipients_blocked[STS_RESULT_MAX - 1], 0);
	assert_int_equal(proxy_sessions(f->proxy), 0);
}

static void
rfc3207_selfsigned_when_no_certificate(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct stat st;

	start(f, "tls = { client_starttls = true; };");
	snprintf(path, sizeof(path), "%s/server.key", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	snprintf(path, sizeof(path), "%s/server.crt", f->dir);
	assert_int_equal(stat(path, &st), 0);
}

static void
no_certificate_without_client_starttls(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct stat st;

	start(f, "tls = { client_starttls = false; };");
	snprintf(path, sizeof(path), "%s/server.crt", f->dir);
	assert_int_equal(stat(path, &st), -1);
}

static void
bad_server_certificate_reported(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	f->conf = load(f, "tls = { client_starttls = true; server_cert = \"/nonexistent.crt\";"
	                  " server_key = \"/nonexistent.key\"; };");
	assert_null(proxy_start(f->conf, NULL, err, sizeof(err)));
	assert_true(err[0] != '\0');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(never_open_relay_direct_connection_v4, setup, teardown),
	    cmocka_unit_test_setup_teardown(never_open_relay_direct_connection_v6, setup, teardown),
	    cmocka_unit_test_setup_teardown(client_outside_allowlist, setup, teardown),
	    cmocka_unit_test_setup_teardown(address_in_use_reported_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(stats_start_at_zero, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc3207_selfsigned_when_no_certificate, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(no_certificate_without_client_starttls, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(bad_server_certificate_reported, setup, teardown),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests_name("proxy", tests, NULL, NULL);
}
