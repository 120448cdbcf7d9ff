// sources: policy/tlsrpt_dns.c policy/tlsrpt_record.c policy/sts_dns.c policy/sts_rdata.c core/loop.c core/log.c
/*
 * test_tlsrpt_dns.c - the _smtp._tls lookup (RFC 8460 section 3) against a
 * real unbound on 127.0.0.1, as test_sts_dns.c does: the group setup
 * starts unbound with local data for every case, a zone forwarded to a
 * closed port (SERVFAIL) and one forwarded to a socket that never answers
 * (the lookup's own timeout); the teardown stops it.
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
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "policy/tlsrpt_dns.h"

static char tmpdir[64];
static pid_t unbound_pid = -1;
static char forwarder[64];
static int silent_fd = -1;

static const char *const unbound_data[] = {
    "local-zone: \"ok.example.\" static",
    "local-data: '_smtp._tls.one.ok.example. TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@one.ok.example\"'",
    "local-data: '_smtp._tls.split.ok.example. TXT \"v=TLSRPTv1; rua=mailto:a@sp\" "
    "\"lit.ok.example,https://r.split.ok.example/x\"'",
    "local-data: '_smtp._tls.mixed.ok.example. TXT \"v=spf1 -all\"'",
    "local-data: '_smtp._tls.mixed.ok.example. TXT \"v=TLSRPTv1;rua=https://r.ok.example/\"'",
    "local-data: '_smtp._tls.two.ok.example. TXT \"v=TLSRPTv1; rua=mailto:a@two.ok.example\"'",
    "local-data: '_smtp._tls.two.ok.example. TXT \"v=TLSRPTv1; rua=mailto:b@two.ok.example\"'",
    "local-data: '_smtp._tls.bad.ok.example. TXT \"v=TLSRPTv1; rua=\"'",
    "local-data: '_smtp._tls.other.ok.example. TXT \"hello\"'",
    "local-data: '_smtp._tls.nodata.ok.example. A 10.0.0.1'",
    "local-data: '_smtp._tls.alias.ok.example. CNAME _smtp._tls.one.ok.example.'",
};

struct lookup_case {
	const char *name;
	const char *domain;
	enum tlsrpt_lookup_status want;
	size_t n_rua;
	const char *addr0; /* rua[0].addr when found */
	const char *why;   /* substring of why when not found */
};

static const struct lookup_case cases[] = {
    {"rfc8460_3_one_record", "one.ok.example", TLSRPT_LOOKUP_FOUND, 1, "tlsrpt@one.ok.example",
     NULL},
    {"rfc8460_3_strings_joined_without_spaces", "split.ok.example", TLSRPT_LOOKUP_FOUND, 2,
     "a@split.ok.example", NULL},
    {"rfc8460_3_other_records_discarded", "mixed.ok.example", TLSRPT_LOOKUP_FOUND, 1,
     "r.ok.example", NULL},
    {"rfc8460_3_cname_followed", "alias.ok.example", TLSRPT_LOOKUP_FOUND, 1,
     "tlsrpt@one.ok.example", NULL},
    {"rfc8460_3_two_records_no_tlsrpt", "two.ok.example", TLSRPT_LOOKUP_INVALID, 0, NULL,
     "more than one"},
    {"rfc8460_3_invalid_record_no_tlsrpt", "bad.ok.example", TLSRPT_LOOKUP_INVALID, 0, NULL,
     "empty URI"},
    {"rfc8460_3_no_tlsrpt_record", "other.ok.example", TLSRPT_LOOKUP_NONE, 0, NULL, "no TLSRPTv1"},
    {"rfc8460_3_nxdomain_none", "missing.ok.example", TLSRPT_LOOKUP_NONE, 0, NULL, "NXDOMAIN"},
    {"rfc8460_3_nodata_none", "nodata.ok.example", TLSRPT_LOOKUP_NONE, 0, NULL, "no TXT"},
    {"servfail_is_temporary", "x.broken.example", TLSRPT_LOOKUP_TEMPFAIL, 0, NULL, ""},
    {"timeout_is_temporary", "x.silent.example", TLSRPT_LOOKUP_TEMPFAIL, 0, NULL, ""},
    {"bad_domain_refused", "a b.example", TLSRPT_LOOKUP_INVALID, 0, NULL, "not a domain"},
    {"trailing_dot_refused", "one.ok.example.", TLSRPT_LOOKUP_INVALID, 0, NULL, "not a domain"},
};

static int
free_udp_port(int *keep_fd)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	port = ntohs(sin.sin_port);
	if (keep_fd != NULL)
		*keep_fd = fd;
	else
		close(fd);
	return port;
}

static int
port_in_use(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_DGRAM, 0), busy;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	busy = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno == EADDRINUSE;
	close(fd);
	return busy;
}

static int
start_unbound_once(void)
{
	char conf[128];
	FILE *f;
	int port, silent;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tlsrpt-dns-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	port = free_udp_port(NULL);
	if (silent_fd < 0 && free_udp_port(&silent_fd) < 0)
		return -1;
	{
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);

		if (getsockname(silent_fd, (struct sockaddr *)&sin, &len) < 0)
			return -1;
		silent = ntohs(sin.sin_port);
	}
	if (port < 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/unbound.conf", tmpdir);
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(
	    f,
	    "server:\n interface: 127.0.0.1\n port: %d\n username: \"\"\n chroot: \"\"\n"
	    " directory: \"%s\"\n pidfile: \"\"\n do-daemonize: no\n use-syslog: no\n"
	    " logfile: \"unbound.log\"\n verbosity: 0\n do-ip6: no\n do-not-query-localhost: no\n"
	    " module-config: \"iterator\"\n access-control: 127.0.0.0/8 allow\n"
	    " num-threads: 1\n outbound-msg-retry: 0\n",
	    port, tmpdir);
	for (size_t i = 0; i < sizeof(unbound_data) / sizeof(unbound_data[0]); i++)
		fprintf(f, " %s\n", unbound_data[i]);
	fprintf(f, "forward-zone:\n name: \"broken.example.\"\n forward-addr: 127.0.0.1@1\n");
	fprintf(f, "forward-zone:\n name: \"silent.example.\"\n forward-addr: 127.0.0.1@%d\n",
	        silent);
	fclose(f);

	unbound_pid = fork();
	if (unbound_pid < 0)
		return -1;
	if (unbound_pid == 0) {
		execl("/usr/sbin/unbound", "unbound", "-d", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !port_in_use(port); i++) {
		int st;

		if (waitpid(unbound_pid, &st, WNOHANG) == unbound_pid) {
			unbound_pid = -1;
			fprintf(stderr, "unbound exited, see %s\n", conf);
			return -1;
		}
		usleep(50 * 1000);
	}
	if (!port_in_use(port))
		return -1;
	snprintf(forwarder, sizeof(forwarder), "127.0.0.1@%d", port);
	return 0;
}

static void
remove_tmpdir(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/unbound.conf", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/unbound.log", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

static int
stop_unbound(void **state)
{
	(void)state;
	if (unbound_pid > 0) {
		kill(unbound_pid, SIGTERM);
		waitpid(unbound_pid, NULL, 0);
		unbound_pid = -1;
	}
	if (silent_fd >= 0)
		close(silent_fd);
	silent_fd = -1;
	remove_tmpdir();
	return 0;
}

/* Another process may take the chosen port before unbound binds it: try a new one. */
static int
start_unbound(void **state)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		if (start_unbound_once() == 0)
			return 0;
		if (unbound_pid > 0) {
			kill(unbound_pid, SIGTERM);
			waitpid(unbound_pid, NULL, 0);
			unbound_pid = -1;
		}
		remove_tmpdir();
	}
	stop_unbound(state);
	return -1;
}

static struct tlsrpt_resolver *
resolver(unsigned timeout_ms)
{
	const char *fwd[] = {forwarder};
	struct sts_dns_params p = {.forwarders = fwd, .n_forwarders = 1, .timeout_ms = timeout_ms};
	char err[160];
	struct tlsrpt_resolver *r = tlsrpt_resolver_new(&p, err, sizeof(err));

	if (r == NULL)
		fail_msg("resolver: %s", err);
	return r;
}

static void
run_case(void **state)
{
	const struct lookup_case *c = *state;
	struct tlsrpt_resolver *r = resolver(1500);
	struct tlsrpt_record rec;
	char why[160];
	enum tlsrpt_lookup_status st;

	memset(&rec, 0xa5, sizeof(rec));
	st = tlsrpt_lookup(r, c->domain, &rec, why, sizeof(why));
	if (st != c->want)
		fail_msg("%s: %s (%s), want %s", c->name, tlsrpt_lookup_status_name(st), why,
		         tlsrpt_lookup_status_name(c->want));
	if (st == TLSRPT_LOOKUP_FOUND) {
		assert_int_equal(rec.n_rua, c->n_rua);
		assert_string_equal(rec.rua[0].addr, c->addr0);
		assert_string_equal(why, "");
	} else {
		assert_int_equal(rec.n_rua, 0);
		if (strstr(why, c->why) == NULL)
			fail_msg("%s: why \"%s\" lacks \"%s\"", c->name, why, c->why);
	}
	tlsrpt_resolver_free(r);
}

/* The timeout bounds the wait, and the resolver is usable after one. */
static void
timeout_bounded_and_reusable(void **state)
{
	struct tlsrpt_resolver *r = resolver(300);
	struct tlsrpt_record rec;
	struct timespec a, b;
	char why[160];
	long ms;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(tlsrpt_lookup(r, "y.silent.example", &rec, why, sizeof(why)),
	                 TLSRPT_LOOKUP_TEMPFAIL);
	assert_non_null(strstr(why, "timed out"));
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 250 && ms < 2000);
	assert_int_equal(tlsrpt_lookup(r, "one.ok.example", &rec, NULL, 0), TLSRPT_LOOKUP_FOUND);
	tlsrpt_resolver_free(r);
}

static void
params_refused(void **state)
{
	const char *bad[] = {"not-an-address"};
	struct sts_dns_params p = {.forwarders = bad, .n_forwarders = 1};
	struct sts_dns_params ta = {.trust_anchor_file = "/nonexistent/root.key"};
	char err[160];

	(void)state;
	assert_null(tlsrpt_resolver_new(NULL, err, sizeof(err)));
	assert_null(tlsrpt_resolver_new(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "forwarder"));
	assert_null(tlsrpt_resolver_new(&ta, err, sizeof(err)));
	assert_non_null(strstr(err, "trust anchor"));
	tlsrpt_resolver_free(NULL);
	assert_string_equal(tlsrpt_lookup_status_name(TLSRPT_LOOKUP_BOGUS), "bogus");
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 2];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct CMUnitTest t = {.name = cases[i].name,
		                       .test_func = run_case,
		                       .initial_state = (void *)&cases[i]};
		tests[n++] = t;
	}
	{
		struct CMUnitTest t[] = {cmocka_unit_test(timeout_bounded_and_reusable),
		                         cmocka_unit_test(params_refused)};
		tests[n++] = t[0];
		tests[n++] = t[1];
	}
	return _cmocka_run_group_tests("tlsrpt_dns", tests, n, start_unbound, stop_unbound);
}
