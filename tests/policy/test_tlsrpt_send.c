// sources: policy/tlsrpt_send.c core/util.c core/log.c core/types.c core/conf.c
/*
 * test_tlsrpt_send.c - the rua URIs the sender accepts (RFC 8460 section
 * 3: mailto: and https:), and a sender that refuses what it cannot do
 * without touching the network: no relay, a stop before the transfer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "policy/tlsrpt_send.h"

static void
rfc8460_3_uri_kinds(void **state)
{
	static const struct {
		const char *name, *uri;
		enum tlsrpt_uri_kind kind;
		const char *addr;
	} cases[] = {
	    {"https", "https://reports.example/tlsrpt", TLSRPT_URI_HTTPS, NULL},
	    {"https upper-case scheme", "HTTPS://reports.example/", TLSRPT_URI_HTTPS, NULL},
	    {"https empty", "https://", TLSRPT_URI_BAD, NULL},
	    {"https with a space", "https://r.example/a b", TLSRPT_URI_BAD, NULL},
	    {"http is not allowed", "http://reports.example/", TLSRPT_URI_BAD, NULL},
	    {"mailto", "mailto:tlsrpt@example.net", TLSRPT_URI_MAILTO, "tlsrpt@example.net"},
	    {"mailto query dropped", "mailto:tlsrpt@example.net?subject=x", TLSRPT_URI_MAILTO,
	     "tlsrpt@example.net"},
	    {"mailto percent-decoded", "mailto:tls%2Brpt@example.net", TLSRPT_URI_MAILTO,
	     "tls+rpt@example.net"},
	    {"rfc6068 encoded comma refused", "mailto:a%2Cb@example.net", TLSRPT_URI_BAD, NULL},
	    {"mailto CRLF injection", "mailto:a%0D%0ARCPT@example.net", TLSRPT_URI_BAD, NULL},
	    {"mailto bad escape", "mailto:a%zz@example.net", TLSRPT_URI_BAD, NULL},
	    {"mailto no domain", "mailto:tlsrpt", TLSRPT_URI_BAD, NULL},
	    {"mailto two @", "mailto:a@b@example.net", TLSRPT_URI_BAD, NULL},
	    {"mailto IP literal", "mailto:a@[10.0.0.1]", TLSRPT_URI_BAD, NULL},
	    {"other scheme", "ftp://x.example/", TLSRPT_URI_BAD, NULL},
	};
	char addr[TLSRPT_SEND_ADDR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum tlsrpt_uri_kind k = tlsrpt_send_uri(cases[i].uri, addr, sizeof(addr));

		if (k != cases[i].kind)
			fail_msg("%s: kind %d, want %d", cases[i].name, k, cases[i].kind);
		if (cases[i].addr != NULL && strcmp(addr, cases[i].addr) != 0)
			fail_msg("%s: addr %s, want %s", cases[i].name, addr, cases[i].addr);
	}
	assert_int_equal(tlsrpt_send_uri(NULL, addr, sizeof(addr)), TLSRPT_URI_BAD);
	assert_int_equal(tlsrpt_send_uri("mailto:averyveryverylongname@example.net", addr, 8),
	                 TLSRPT_URI_BAD);
}

static void
rfc8460_5_3_no_relay_is_permanent(void **state)
{
	char err[256], why[TLSRPT_WHY_MAX];
	struct conf *c = conf_load_string("listen = [ \"127.0.0.1:10025\" ];\n"
	                                  "report = { submitter = \"gw.example\"; };\n",
	                                  "mem", err, sizeof(err));
	struct tlsrpt_send *s;

	(void)state;
	assert_non_null(c);
	assert_non_null(s = tlsrpt_send_new(c, err, sizeof(err)));
	assert_string_equal(tlsrpt_send_from(s), "tlsrpt@gw.example");
	assert_int_equal(tlsrpt_send_mail(s, "a@example.net", "x\r\n", 3, why, sizeof(why)),
	                 TLSRPT_OUT_PERM);
	assert_string_equal(why, "no report.relay for mailto: reports");
	assert_int_equal(tlsrpt_send_https(s, "mailto:a@example.net", "x", 1, why, sizeof(why)),
	                 TLSRPT_OUT_PERM);
	/* after a stop nothing goes out, and it is worth trying again later */
	tlsrpt_send_abort(s);
	assert_int_equal(tlsrpt_send_https(s, "https://127.0.0.1:1/", "x", 1, why, sizeof(why)),
	                 TLSRPT_OUT_TEMP);
	assert_string_equal(why, "stopped");
	tlsrpt_send_free(s);
	tlsrpt_send_free(NULL);
	conf_free(c);
}

static void
password_file_missing(void **state)
{
	char err[256];
	struct conf *c = conf_load_string("listen = [ \"127.0.0.1:10025\" ];\n"
	                                  "report = { relay = \"127.0.0.1:25\"; relay_user = \"u\";"
	                                  " relay_password_file = \"/nonexistent/pw\"; };\n",
	                                  "mem", err, sizeof(err));

	(void)state;
	assert_non_null(c);
	assert_null(tlsrpt_send_new(c, err, sizeof(err)));
	assert_string_equal(
	    err, "report.relay_password_file /nonexistent/pw: No such file or directory");
	conf_free(c);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * stop_bound - seconds a stop may take: one second, as the daemon promises;
 * under valgrind, whose CPU is tens of times slower (freeing the CA store
 * alone takes a second there), the transfer must still end long before
 * report.timeout.
 */
static double
stop_bound(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "vgpreload") != NULL ? 15.0 : 1.0;
}

/* The receiver: takes the connection, reads the ClientHello, stops the sender. */
struct hang {
	int fd;
	struct tlsrpt_send *s;
	double aborted_at;
};

static void *
abort_when_hello(void *arg)
{
	struct hang *h = arg;
	char buf[512];
	int c = accept(h->fd, NULL, NULL);

	if (c >= 0)
		(void)recv(c, buf, sizeof(buf), 0);
	h->aborted_at = now_s();
	tlsrpt_send_abort(h->s);
	usleep(300 * 1000); /* the connection stays open: the client waits for an answer */
	if (c >= 0)
		close(c);
	return NULL;
}

/*
 * A receiver that takes the connection and never answers: the POST waits
 * in the TLS handshake until a stop, from another thread, cuts it at once,
 * not after report.timeout.
 */
static void
stop_cuts_a_hanging_transfer(void **state)
{
	char err[256], why[TLSRPT_WHY_MAX], url[64];
	struct conf *c =
	    conf_load_string("listen = [ \"127.0.0.1:10025\" ];\n"
	                     "report = { submitter = \"gw.example\"; timeout = 60; };\n",
	                     "mem", err, sizeof(err));
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct hang h = {0};
	enum tlsrpt_outcome o;
	pthread_t t;
	double spent;

	(void)state;
	assert_non_null(c);
	assert_true((h.fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(h.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(h.fd, 8), 0);
	assert_int_equal(getsockname(h.fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/", (unsigned)ntohs(sin.sin_port));
	assert_non_null(h.s = tlsrpt_send_new(c, err, sizeof(err)));
	assert_int_equal(pthread_create(&t, NULL, abort_when_hello, &h), 0);
	o = tlsrpt_send_https(h.s, url, "x", 1, why, sizeof(why));
	spent = now_s() - h.aborted_at;
	pthread_join(t, NULL);
	tlsrpt_send_free(h.s);
	close(h.fd);
	conf_free(c);
	assert_int_equal(o, TLSRPT_OUT_TEMP);
	assert_string_equal(why, "stopped");
	if (spent > stop_bound())
		fail_msg("the transfer ended %.2f s after the stop", spent);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8460_3_uri_kinds),
	    cmocka_unit_test(rfc8460_5_3_no_relay_is_permanent),
	    cmocka_unit_test(password_file_missing),
	    cmocka_unit_test(stop_cuts_a_hanging_transfer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
