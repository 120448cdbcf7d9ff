// sources: core/dnsprobe.c core/util.c
/*
 * test_dnsprobe.c - does a resolver answer at all? Against resolvers of
 * our own on 127.0.0.1: one that answers (SERVFAIL is an answer), one that
 * answers with the wrong id, one that never answers, and a port where
 * nothing listens (ICMP port unreachable: refused).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/dnsprobe.h"

enum behaviour {
	ANSWER_SERVFAIL = 0, /* a reply with our id and rcode 2 */
	ANSWER_WRONG_ID,     /* a reply, but to another query */
	SILENT,              /* reads and never answers */
};

struct resolver {
	int fd;
	int port;
	enum behaviour how;
	atomic_int queries;
	atomic_bool stop;
	pthread_t thread;
};

static void *
serve(void *arg)
{
	struct resolver *r = arg;
	uint8_t buf[512];

	while (!atomic_load(&r->stop)) {
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recvfrom(r->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (n < 12)
			continue;
		atomic_fetch_add(&r->queries, 1);
		if (r->how == SILENT)
			continue;
		buf[2] |= 0x80;               /* QR */
		buf[3] = (buf[3] & 0xf0) | 2; /* SERVFAIL */
		if (r->how == ANSWER_WRONG_ID)
			buf[1] ^= 0xff;
		(void)sendto(r->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
	}
	return NULL;
}

/* bound_udp - a UDP socket on 127.0.0.1 and its port. */
static int
bound_udp(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static struct resolver *
resolver_start(enum behaviour how)
{
	struct resolver *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->how = how;
	r->fd = bound_udp(&r->port);
	assert_int_equal(pthread_create(&r->thread, NULL, serve, r), 0);
	return r;
}

static void
resolver_stop(struct resolver *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->fd);
	free(r);
}

/* closed_port - a port where nothing listens (bound, then closed). */
static int
closed_port(void)
{
	int port, fd = bound_udp(&port);

	close(fd);
	return port;
}

static double
seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int
probe(char **servers, size_t n, unsigned timeout_ms, char *out, size_t outlen)
{
	struct dnsprobe_params p = {.servers = servers, .n_servers = n, .timeout_ms = timeout_ms};

	return dnsprobe_silent(&p, out, outlen);
}

/* SERVFAIL comes from a resolver that is there: it answered. */
static void
servfail_is_an_answer(void **state)
{
	struct resolver *r = resolver_start(ANSWER_SERVFAIL);
	char addr[32], out[256];
	char *servers[] = {addr};

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1@%d", r->port);
	assert_int_equal(probe(servers, 1, 2000, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	resolver_stop(r);
}

/* Nothing listens: the port unreachable comes back as a refusal, at once. */
static void
refused_is_unreachable(void **state)
{
	char addr[32], want[96], out[256];
	char *servers[] = {addr};
	struct timespec t0;

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1@%d", closed_port());
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(probe(servers, 1, 3000, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "resolver %s unreachable (Connection refused)", addr);
	assert_string_equal(out, want);
	assert_true(seconds_since(&t0) < 1.0);
}

/* No answer at all: unreachable after the timeout, with the query sent every second. */
static void
silence_is_unreachable_after_timeout(void **state)
{
	struct resolver *r = resolver_start(SILENT);
	char addr[32], want[96], out[256];
	char *servers[] = {addr};
	struct timespec t0;
	double took;

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1@%d", r->port);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(probe(servers, 1, 1500, out, sizeof(out)), 1);
	took = seconds_since(&t0);
	snprintf(want, sizeof(want), "resolver %s unreachable (no answer in 2 s)", addr);
	assert_string_equal(out, want);
	assert_true(took >= 1.4 && took < 2.5);
	assert_int_equal(atomic_load(&r->queries), 2);
	resolver_stop(r);
}

/* A reply to another query (RFC 1035 section 4.1.1: the id pairs them) does not count. */
static void
rfc1035_4_1_1_wrong_id_is_no_answer(void **state)
{
	struct resolver *r = resolver_start(ANSWER_WRONG_ID);
	char addr[32], out[256];
	char *servers[] = {addr};

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1@%d", r->port);
	assert_int_equal(probe(servers, 1, 1200, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no answer in 2 s"));
	resolver_stop(r);
}

/* One of two answering is enough: the resolver path works. */
static void
one_of_two_answering_is_enough(void **state)
{
	struct resolver *r = resolver_start(ANSWER_SERVFAIL);
	char a[32], b[32], out[256];
	char *servers[] = {a, b};

	(void)state;
	snprintf(a, sizeof(a), "127.0.0.1@%d", closed_port());
	snprintf(b, sizeof(b), "127.0.0.1@%d", r->port);
	assert_int_equal(probe(servers, 2, 2000, out, sizeof(out)), 0);
	resolver_stop(r);
}

/* Both silent or refused: both are named. */
static void
every_one_is_named(void **state)
{
	struct resolver *r = resolver_start(SILENT);
	char a[32], b[32], want[256], out[256];
	char *servers[] = {a, b};

	(void)state;
	snprintf(a, sizeof(a), "127.0.0.1@%d", closed_port());
	snprintf(b, sizeof(b), "127.0.0.1@%d", r->port);
	assert_int_equal(probe(servers, 2, 1000, out, sizeof(out)), 1);
	snprintf(want, sizeof(want),
	         "resolver %s unreachable (Connection refused); resolver %s unreachable (no "
	         "answer in 1 s)",
	         a, b);
	assert_string_equal(out, want);
	resolver_stop(r);
}

/* Without forwarders, the nameserver lines of resolv.conf; none at all is an error. */
static void
resolv_conf_nameservers(void **state)
{
	char path[] = "/tmp/sts-probe-XXXXXX", out[256], want[96];
	struct dnsprobe_params p = {.resolv_conf = path, .timeout_ms = 1000};
	int port = closed_port();
	FILE *f;
	int fd;

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f, "# comment\nsearch example.net\nnameserver 127.0.0.1@%d\n", port);
	fclose(f);
	assert_int_equal(dnsprobe_silent(&p, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "resolver 127.0.0.1@%d unreachable (Connection refused)",
	         port);
	assert_string_equal(out, want);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "search example.net\n");
	fclose(f);
	assert_int_equal(dnsprobe_silent(&p, out, sizeof(out)), -1);
	assert_string_equal(out, "no resolver to ask");
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(servfail_is_an_answer),
	    cmocka_unit_test(refused_is_unreachable),
	    cmocka_unit_test(silence_is_unreachable_after_timeout),
	    cmocka_unit_test(rfc1035_4_1_1_wrong_id_is_no_answer),
	    cmocka_unit_test(one_of_two_answering_is_enough),
	    cmocka_unit_test(every_one_is_named),
	    cmocka_unit_test(resolv_conf_nameservers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
