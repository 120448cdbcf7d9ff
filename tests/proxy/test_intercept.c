// sources: proxy/intercept.c core/conf.c core/log.c core/types.c core/util.c
/*
 * test_intercept.c - recognising connections that were not intercepted
 * (never an open relay), the options of listener and upstream sockets, and
 * the original destination of a loopback connection that no rule redirected.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf.h"
#include "proxy/intercept.h"

/* --- intercept_is_self ---------------------------------------------------- */

struct self_case {
	const char *name;
	const char *listen[3]; /* NULL-terminated */
	const char *dst;
	bool want;
};

static const struct self_case self_cases[] = {
    {"never_open_relay_v4_wildcard_same_port", {"0.0.0.0:10025"}, "10.1.2.3:10025", true},
    {"never_open_relay_v4_wildcard_loopback", {"0.0.0.0:10025"}, "127.0.0.1:10025", true},
    {"never_open_relay_v4_exact", {"10.0.0.1:10025"}, "10.0.0.1:10025", true},
    {"v4_exact_other_address", {"10.0.0.1:10025"}, "10.0.0.2:10025", false},
    {"v4_intercepted_port_25", {"0.0.0.0:10025"}, "198.51.100.7:25", false},
    {"v4_other_port", {"0.0.0.0:10025"}, "10.0.0.1:10026", false},
    {"never_open_relay_v6_wildcard", {"[::]:10025"}, "[2001:db8::1]:10025", true},
    {"never_open_relay_v6_exact", {"[::1]:10025"}, "[::1]:10025", true},
    {"v6_exact_other_address", {"[::1]:10025"}, "[::2]:10025", false},
    {"v6_intercepted_port_25", {"[::]:10025"}, "[2001:db8::25]:25", false},
    {"v4_dst_v6_listener_only", {"[::]:10025"}, "10.0.0.1:10025", false},
    {"v6_dst_v4_listener_only", {"0.0.0.0:10025"}, "[2001:db8::1]:10025", false},
    {"never_open_relay_v4_mapped_dst", {"0.0.0.0:10025"}, "[::ffff:10.0.0.1]:10025", true},
    {"v4_mapped_dst_port_25", {"0.0.0.0:10025"}, "[::ffff:10.0.0.1]:25", false},
    {"never_open_relay_second_listener", {"127.0.0.1:10025", "[::]:2525"}, "[fd00::1]:2525", true},
    {"no_listener", {NULL}, "10.0.0.1:10025", false},
};

static void
run_self_case(void **state)
{
	const struct self_case *c = *state;
	struct conf_addr listen[3];
	struct conf_addr dst;
	size_t n = 0;

	memset(listen, 0, sizeof(listen));
	while (n < 3 && c->listen[n] != NULL) {
		assert_int_equal(conf_parse_addr(c->listen[n], &listen[n]), 0);
		n++;
	}
	memset(&dst, 0, sizeof(dst));
	assert_int_equal(conf_parse_addr(c->dst, &dst), 0);
	assert_int_equal(intercept_is_self((struct sockaddr *)&dst.sa, listen, n), c->want);
}

static void
is_self_null(void **state)
{
	struct conf_addr l;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(conf_parse_addr("0.0.0.0:10025", &l), 0);
	assert_false(intercept_is_self(NULL, &l, 1));
}

/* --- listeners ------------------------------------------------------------ */

static int
opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static void
listener_options_v4(void **state)
{
	struct conf_addr a = {.text = "127.0.0.1:0"};
	char err[256] = "";
	int fd;

	(void)state;
	assert_int_equal(conf_parse_addr(a.text, &a), 0);
	fd = intercept_listen(&a, CONF_INTERCEPT_REDIRECT, 16, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_not_equal(opt(fd, SOL_SOCKET, SO_REUSEPORT), 0);
	assert_int_not_equal(opt(fd, SOL_SOCKET, SO_REUSEADDR), 0);
	assert_int_not_equal(opt(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	assert_int_equal(opt(fd, SOL_IP, IP_TRANSPARENT), 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static void
listener_options_v6(void **state)
{
	struct conf_addr a = {.text = "[::1]:0"};
	char err[256] = "";
	int fd;

	(void)state;
	assert_int_equal(conf_parse_addr(a.text, &a), 0);
	fd = intercept_listen(&a, CONF_INTERCEPT_REDIRECT, 16, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_not_equal(opt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	assert_int_not_equal(opt(fd, SOL_SOCKET, SO_REUSEPORT), 0);
	assert_int_equal(opt(fd, SOL_IPV6, IPV6_TRANSPARENT), 0);
	close(fd);
}

/* Needs CAP_NET_ADMIN: the suite runs as root, and a failure to set the
 * option must be reported, not ignored. */
static void
listener_options_tproxy(void **state)
{
	struct conf_addr a4 = {.text = "127.0.0.1:0"};
	struct conf_addr a6 = {.text = "[::1]:0"};
	char err[256] = "";
	int fd;

	(void)state;
	assert_int_equal(conf_parse_addr(a4.text, &a4), 0);
	assert_int_equal(conf_parse_addr(a6.text, &a6), 0);
	fd = intercept_listen(&a4, CONF_INTERCEPT_TPROXY, 16, err, sizeof(err));
	if (fd < 0) {
		/* Without the capability the error names the option. */
		assert_non_null(strstr(err, "IP_TRANSPARENT"));
		assert_int_equal(geteuid() == 0, 0);
		return;
	}
	assert_int_not_equal(opt(fd, SOL_IP, IP_TRANSPARENT), 0);
	close(fd);
	fd = intercept_listen(&a6, CONF_INTERCEPT_TPROXY, 16, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_not_equal(opt(fd, SOL_IPV6, IPV6_TRANSPARENT), 0);
	assert_int_not_equal(opt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	close(fd);
}

/* Both families on one port need IPV6_V6ONLY on the IPv6 one. */
static void
listener_v4_and_v6_same_port(void **state)
{
	struct conf_addr a4 = {.text = "0.0.0.0:0"};
	struct conf_addr a6 = {.text = "[::]:0"};
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char err[256] = "";
	int fd4, fd6;

	(void)state;
	assert_int_equal(conf_parse_addr(a4.text, &a4), 0);
	fd4 = intercept_listen(&a4, CONF_INTERCEPT_REDIRECT, 16, err, sizeof(err));
	assert_true(fd4 >= 0);
	assert_int_equal(getsockname(fd4, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(conf_parse_addr(a6.text, &a6), 0);
	((struct sockaddr_in6 *)&a6.sa)->sin6_port = sin.sin_port;
	fd6 = intercept_listen(&a6, CONF_INTERCEPT_REDIRECT, 16, err, sizeof(err));
	assert_true(fd6 >= 0);
	close(fd6);
	close(fd4);
}

/* Two workers share one address (SO_REUSEPORT); a third party without the
 * option cannot, and the error names the address. */
static void
listener_reuseport_and_in_use(void **state)
{
	struct conf_addr a = {.text = "127.0.0.1:0"};
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char err[256] = "";
	int fd1, fd2, plain;

	(void)state;
	assert_int_equal(conf_parse_addr(a.text, &a), 0);
	plain = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(plain >= 0);
	assert_int_equal(bind(plain, (struct sockaddr *)&a.sa, a.salen), 0);
	assert_int_equal(listen(plain, 1), 0);
	assert_int_equal(getsockname(plain, (struct sockaddr *)&sin, &len), 0);
	((struct sockaddr_in *)&a.sa)->sin_port = sin.sin_port;
	a.text = "127.0.0.1:busy";
	fd1 = intercept_listen(&a, CONF_INTERCEPT_REDIRECT, 16, err, sizeof(err));
	assert_int_equal(fd1, -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(err, "listen 127.0.0.1:busy: bind: "));
	close(plain);

	a.text = "127.0.0.1:shared";
	fd1 = intercept_listen(&a, CONF_INTERCEPT_REDIRECT, 16, err, sizeof(err));
	assert_true(fd1 >= 0);
	fd2 = intercept_listen(&a, CONF_INTERCEPT_REDIRECT, 16, err, sizeof(err));
	assert_true(fd2 >= 0);
	close(fd1);
	close(fd2);
}

/* --- original destination --------------------------------------------------- */

/* connect_pair - a loopback connection to a listener of ours: the accepted fd. */
static int
connect_pair(const char *text, int *client, struct conf_addr *bound)
{
	char err[256];
	socklen_t len = sizeof(bound->sa);
	int l, fd;

	memset(bound, 0, sizeof(*bound));
	bound->text = (char *)text;
	assert_int_equal(conf_parse_addr(text, bound), 0);
	l = intercept_listen(bound, CONF_INTERCEPT_REDIRECT, 4, err, sizeof(err));
	assert_true(l >= 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&bound->sa, &len), 0);
	bound->salen = len;
	*client = socket(bound->sa.ss_family, SOCK_STREAM, 0);
	assert_true(*client >= 0);
	assert_int_equal(connect(*client, (struct sockaddr *)&bound->sa, bound->salen), 0);
	for (int i = 0; i < 100; i++) {
		fd = accept(l, NULL, NULL);
		if (fd >= 0 || errno != EAGAIN)
			break;
		usleep(10000);
	}
	assert_true(fd >= 0);
	close(l);
	return fd;
}

static void
check_original_dst(const char *text, enum conf_interception mode)
{
	struct conf_addr bound;
	struct sockaddr_storage dst;
	socklen_t len = sizeof(dst);
	int client, fd;

	fd = connect_pair(text, &client, &bound);
	assert_int_equal(intercept_original_dst(fd, mode, &dst, &len), 0);
	assert_int_equal(len, bound.salen);
	assert_memory_equal(&dst, &bound.sa, len);
	/* A direct connection to the proxy port: refused, never relayed. */
	assert_true(intercept_is_self((struct sockaddr *)&dst, &bound, 1));
	close(fd);
	close(client);
}

static void
original_dst_redirect_fallback_v4(void **state)
{
	(void)state;
	check_original_dst("127.0.0.1:0", CONF_INTERCEPT_REDIRECT);
}

static void
original_dst_redirect_fallback_v6(void **state)
{
	(void)state;
	check_original_dst("[::1]:0", CONF_INTERCEPT_REDIRECT);
}

static void
original_dst_tproxy_local_address(void **state)
{
	(void)state;
	check_original_dst("127.0.0.1:0", CONF_INTERCEPT_TPROXY);
	check_original_dst("[::1]:0", CONF_INTERCEPT_TPROXY);
}

static void
original_dst_short_buffer(void **state)
{
	struct sockaddr_storage dst;
	socklen_t len = sizeof(struct sockaddr_in);

	(void)state;
	assert_int_equal(intercept_original_dst(0, CONF_INTERCEPT_REDIRECT, &dst, &len), -1);
	assert_int_equal(errno, EINVAL);
}

static void
original_dst_not_a_socket(void **state)
{
	struct sockaddr_storage dst;
	socklen_t len = sizeof(dst);
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(intercept_original_dst(p[0], CONF_INTERCEPT_REDIRECT, &dst, &len), -1);
	assert_int_equal(errno, ENOTSOCK);
	close(p[0]);
	close(p[1]);
}

/* --- refusal and upstream sockets ---------------------------------------------- */

static void
refuse_sends_line_and_closes(void **state)
{
	struct conf_addr bound;
	char buf[128];
	ssize_t n;
	size_t got = 0;
	int client, fd;

	(void)state;
	fd = connect_pair("127.0.0.1:0", &client, &bound);
	intercept_refuse(fd, INTERCEPT_REFUSED_LINE);
	assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */
	while ((n = read(client, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	assert_int_equal(n, 0); /* EOF after the line */
	buf[got] = '\0';
	assert_string_equal(buf, "554 5.7.1 stsproxy is not an open relay\r\n");
	close(client);
}

static void
upstream_socket_mark(void **state)
{
	int fd;

	(void)state;
	fd = intercept_upstream_socket(AF_INET, 0);
	assert_true(fd >= 0);
	assert_int_equal(opt(fd, SOL_SOCKET, SO_MARK), 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	fd = intercept_upstream_socket(AF_INET6, 0x25);
	if (fd < 0) {
		assert_int_equal(errno, EPERM); /* SO_MARK needs CAP_NET_ADMIN */
		assert_int_not_equal(geteuid(), 0);
		return;
	}
	assert_int_equal(opt(fd, SOL_SOCKET, SO_MARK), 0x25);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
}

static void
upstream_socket_bad_family(void **state)
{
	(void)state;
	assert_int_equal(intercept_upstream_socket(AF_UNIX, 0), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
}

int
main(void)
{
	struct CMUnitTest tests[64];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(self_cases) / sizeof(self_cases[0]); i++) {
		tests[n] = (struct CMUnitTest){.name = self_cases[i].name,
		                               .test_func = run_self_case,
		                               .initial_state = (void *)&self_cases[i]};
		n++;
	}
#define T(f) tests[n++] = (struct CMUnitTest)cmocka_unit_test(f)
	T(is_self_null);
	T(listener_options_v4);
	T(listener_options_v6);
	T(listener_options_tproxy);
	T(listener_v4_and_v6_same_port);
	T(listener_reuseport_and_in_use);
	T(original_dst_redirect_fallback_v4);
	T(original_dst_redirect_fallback_v6);
	T(original_dst_tproxy_local_address);
	T(original_dst_short_buffer);
	T(original_dst_not_a_socket);
	T(refuse_sends_line_and_closes);
	T(upstream_socket_mark);
	T(upstream_socket_bad_family);
#undef T
	return _cmocka_run_group_tests("intercept", tests, n, NULL, NULL);
}
