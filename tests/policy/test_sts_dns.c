// sources: policy/sts_dns.c policy/sts_rdata.c core/loop.c core/log.c
/*
 * test_sts_dns.c - sts_dns against a real unbound on 127.0.0.1.
 *
 * The group setup writes an unbound configuration with local data for every
 * case (and a zone forwarded to a closed port, which SERVFAILs), starts
 * unbound in the foreground on a free port and waits until it listens; the
 * group teardown kills it, whatever happened in between. Each case drives a
 * real core/loop until its callback has run.
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
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/loop.h"
#include "policy/sts_dns.h"

static char tmpdir[64];
static pid_t unbound_pid = -1;
static char forwarder[64];

enum qtype { Q_TXT, Q_MX, Q_ADDR, Q_TLSA };

/* One lookup and what must come back. */
struct dns_case {
	const char *name; /* test name, with the RFC section */
	enum qtype type;
	const char *qname;
	enum sts_dns_status status;
	size_t n;
	const char *expect[4]; /* TXT: records in any order; MX: "pref host"; ADDR: addresses;
	                          TLSA: "usage selector mtype hex" */
	size_t long_len;       /* TXT: one record of this length, all 'x' */
};

/* What a callback saw, copied out because the answer dies with the call. */
struct seen {
	int calls;
	enum sts_dns_status status;
	int secure;
	size_t n;
	char items[STS_DNS_MAX_RECORDS][4100];
	size_t lens[STS_DNS_MAX_RECORDS];
	char why[128];
	char canon[254];
	struct sts_dns *free_me; /* free the resolver from inside the callback */
};

static const char *const unbound_data[] = {
    "local-zone: \"ok.example.\" static",
    "local-zone: \"test.\" nodefault",
    "local-zone: \"lab.test.\" static",
    "local-data: 'mta.lab.test. TXT \"v=STSv1; id=t1\"'",
    "local-data: 'multi.ok.example. TXT \"v=STSv1;\" \" id=20240101\" \"abc\"'",
    "local-data: 'two.ok.example. TXT \"v=STSv1; id=one\"'",
    "local-data: 'two.ok.example. TXT \"other=record\"'",
    "local-data: 'nodata.ok.example. A 10.0.0.9'",
    "local-data: 'mx.ok.example. MX 10 mx1.ok.example.'",
    "local-data: 'mx.ok.example. MX 20 mx2.ok.example.'",
    "local-data: 'nullmx.ok.example. MX 0 .'",
    "local-data: 'host.ok.example. A 10.0.0.1'",
    "local-data: 'host.ok.example. A 10.0.0.2'",
    "local-data: 'host.ok.example. AAAA 2001:db8::1'",
    "local-data: 'v4only.ok.example. A 10.0.0.3'",
    "local-data: 'alias1.ok.example. CNAME alias2.ok.example.'",
    "local-data: 'alias2.ok.example. CNAME target.ok.example.'",
    "local-data: 'target.ok.example. TXT \"v=STSv1; id=viacname\"'",
    "local-data: 'target.ok.example. A 10.0.0.4'",
    "local-data: '_25._tcp.mx1.ok.example. TLSA 3 1 1 "
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'",
    "local-data: '_25._tcp.mx1.ok.example. TLSA 2 0 0 00ff'",
    "local-data: '_25._tcp.alias.ok.example. CNAME _25._tcp.mx1.ok.example.'",
    "forward-zone:",
    "  name: \"broken.example.\"",
    "  forward-addr: 127.0.0.1@1",
};

static struct dns_case cases[] = {
    /* RFC 6761 section 6.2: the forwarder, not libunbound, answers "test." */
    {"rfc6761_6_2_test_domain_goes_to_the_forwarder",
     Q_TXT,
     "mta.lab.test",
     STS_DNS_OK,
     1,
     {"v=STSv1; id=t1"},
     0},
    {"rfc8461_3_1_txt_strings_joined_without_spaces",
     Q_TXT,
     "multi.ok.example",
     STS_DNS_OK,
     1,
     {"v=STSv1; id=20240101abc"},
     0},
    {"rfc8461_3_1_two_txt_records_kept_apart",
     Q_TXT,
     "two.ok.example",
     STS_DNS_OK,
     2,
     {"v=STSv1; id=one", "other=record"},
     0},
    {"rfc8461_3_1_long_txt_record_joined", Q_TXT, "long.ok.example", STS_DNS_OK, 1, {NULL}, 4000},
    {"rfc8461_3_1_txt_over_4096_malformed",
     Q_TXT,
     "huge.ok.example",
     STS_DNS_MALFORMED,
     0,
     {NULL},
     0},
    {"rfc8461_3_1_too_many_txt_records_malformed",
     Q_TXT,
     "many.ok.example",
     STS_DNS_MALFORMED,
     0,
     {NULL},
     0},
    {"rfc8461_3_1_cname_chain_followed",
     Q_TXT,
     "alias1.ok.example",
     STS_DNS_OK,
     1,
     {"v=STSv1; id=viacname"},
     0},
    {"rfc8461_3_1_nxdomain_is_no_record",
     Q_TXT,
     "missing.ok.example",
     STS_DNS_NXDOMAIN,
     0,
     {NULL},
     0},
    {"rfc8461_3_1_nodata_is_no_record", Q_TXT, "nodata.ok.example", STS_DNS_NODATA, 0, {NULL}, 0},
    {"rfc8461_3_1_servfail_is_temporary",
     Q_TXT,
     "x.broken.example",
     STS_DNS_TEMPFAIL,
     0,
     {NULL},
     0},
    {"rfc8461_4_mx_set",
     Q_MX,
     "mx.ok.example",
     STS_DNS_OK,
     2,
     {"10 mx1.ok.example", "20 mx2.ok.example"},
     0},
    {"rfc7505_null_mx_empty_host", Q_MX, "nullmx.ok.example", STS_DNS_OK, 1, {"0 "}, 0},
    {"rfc8461_4_mx_nxdomain", Q_MX, "missing.ok.example", STS_DNS_NXDOMAIN, 0, {NULL}, 0},
    {"rfc8461_3_3_addr_a_and_aaaa_merged",
     Q_ADDR,
     "host.ok.example",
     STS_DNS_OK,
     3,
     {"10.0.0.1", "10.0.0.2", "2001:db8::1"},
     0},
    {"rfc8461_3_3_addr_ipv4_only", Q_ADDR, "v4only.ok.example", STS_DNS_OK, 1, {"10.0.0.3"}, 0},
    {"rfc8461_3_3_addr_through_cname", Q_ADDR, "alias1.ok.example", STS_DNS_OK, 1, {"10.0.0.4"}, 0},
    {"rfc8461_3_3_addr_nxdomain", Q_ADDR, "missing.ok.example", STS_DNS_NXDOMAIN, 0, {NULL}, 0},
    {"rfc8461_3_3_addr_servfail_is_temporary",
     Q_ADDR,
     "x.broken.example",
     STS_DNS_TEMPFAIL,
     0,
     {NULL},
     0},
    {"rfc6698_2_1_tlsa_records",
     Q_TLSA,
     "_25._tcp.mx1.ok.example",
     STS_DNS_OK,
     2,
     {"3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "2 0 0 00ff"},
     0},
    {"rfc7671_7_tlsa_through_cname",
     Q_TLSA,
     "_25._tcp.alias.ok.example",
     STS_DNS_OK,
     2,
     {"2 0 0 00ff"},
     0},
    {"rfc7672_2_2_tlsa_nxdomain",
     Q_TLSA,
     "_25._tcp.mx2.ok.example",
     STS_DNS_NXDOMAIN,
     0,
     {NULL},
     0},
    {"rfc7672_2_2_tlsa_servfail_is_temporary",
     Q_TLSA,
     "_25._tcp.x.broken.example",
     STS_DNS_TEMPFAIL,
     0,
     {NULL},
     0},
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

static void
put_txt_strings(FILE *f, const char *owner, size_t total)
{
	fprintf(f, "local-data: '%s TXT", owner);
	while (total > 0) {
		size_t n = total > 250 ? 250 : total;

		fprintf(f, " \"%.*s\"", (int)n,
		        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		total -= n;
	}
	fprintf(f, "'\n");
}

static int
start_unbound_once(void)
{
	char conf[128];
	FILE *f;
	int port;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sts-dns-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	port = free_udp_port(NULL);
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
	for (size_t i = 0; i < sizeof(unbound_data) / sizeof(unbound_data[0]); i++) {
		if (strncmp(unbound_data[i], "forward-zone:", 13) == 0) {
			put_txt_strings(f, "long.ok.example.", 4000);
			put_txt_strings(f, "huge.ok.example.", 4097);
			for (int r = 0; r < STS_DNS_MAX_RECORDS + 1; r++)
				fprintf(f, "local-data: 'many.ok.example. TXT \"r%d\"'\n", r);
		}
		fprintf(f, "%s%s\n", unbound_data[i][0] == ' ' ? " " : " ", unbound_data[i]);
	}
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

/*
 * start_unbound - the port was free for UDP when we chose it, but another
 * process may take it, or hold it for TCP, before unbound binds both: try
 * again on a new port.
 */
static int
start_unbound(void **state)
{
	char cmd[160];

	(void)state;
	for (int attempt = 0; attempt < 5; attempt++) {
		if (start_unbound_once() == 0)
			return 0;
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			break;
	}
	return -1;
}

static int
stop_unbound(void **state)
{
	char path[128];

	(void)state;
	if (unbound_pid > 0) {
		kill(unbound_pid, SIGTERM);
		waitpid(unbound_pid, NULL, 0);
		unbound_pid = -1;
	}
	snprintf(path, sizeof(path), "%s/unbound.conf", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/unbound.log", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

static void
on_answer(void *arg, const struct sts_dns_answer *a)
{
	struct seen *s = arg;

	s->calls++;
	s->status = a->status;
	s->secure = a->secure;
	s->n = a->n;
	snprintf(s->why, sizeof(s->why), "%s", a->why);
	snprintf(s->canon, sizeof(s->canon), "%s", a->canon);
	for (size_t i = 0; i < a->n && i < STS_DNS_MAX_RECORDS; i++) {
		if (a->txt != NULL) {
			assert_non_null(a->txt_len);
			assert_true(a->txt_len[i] < sizeof(s->items[i]));
			memcpy(s->items[i], a->txt[i], a->txt_len[i] + 1);
			s->lens[i] = a->txt_len[i];
		} else if (a->mx != NULL) {
			snprintf(s->items[i], sizeof(s->items[i]), "%u %s", a->mx[i].pref,
			         a->mx[i].host);
		} else if (a->rdata != NULL) {
			size_t used;

			assert_true(a->rdata[i].len >= 3);
			used = (size_t)snprintf(s->items[i], sizeof(s->items[i]), "%u %u %u ",
			                        a->rdata[i].data[0], a->rdata[i].data[1],
			                        a->rdata[i].data[2]);
			for (size_t k = 3; k < a->rdata[i].len && used + 3 < sizeof(s->items[i]);
			     k++)
				used += (size_t)snprintf(s->items[i] + used, 3, "%02x",
				                         a->rdata[i].data[k]);
		} else if (a->addr != NULL) {
			const struct sockaddr_storage *ss = &a->addr[i];
			const void *p =
			    ss->ss_family == AF_INET
			        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
			        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

			assert_non_null(
			    inet_ntop(ss->ss_family, p, s->items[i], sizeof(s->items[i])));
		} else {
			fail_msg("answer with n=%zu and no array", a->n);
		}
	}
	if (a->status != STS_DNS_OK) {
		assert_int_equal(a->n, 0);
		assert_null(a->txt);
		assert_null(a->mx);
		assert_null(a->addr);
		assert_null(a->rdata);
	}
	if (s->free_me != NULL) {
		sts_dns_free(s->free_me);
		s->free_me = NULL;
	}
}

static void
run_until(struct loop *loop, const int *calls, int want, int limit_ms)
{
	for (int waited = 0; *calls < want && waited < limit_ms; waited += 20)
		assert_true(loop_once(loop, 20) >= 0);
}

static struct sts_dns *
new_resolver(struct loop *loop, const char *fwd, unsigned timeout_ms)
{
	const char *const fwds[] = {fwd};
	struct sts_dns_params p = {.forwarders = fwds, .n_forwarders = 1, .timeout_ms = timeout_ms};
	char err[256] = "";
	struct sts_dns *d = sts_dns_new(loop, &p, err, sizeof(err));

	if (d == NULL)
		fail_msg("sts_dns_new: %s", err);
	return d;
}

static int
has_item(const struct seen *s, const char *want)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->items[i], want) == 0)
			return 1;
	return 0;
}

static void
run_case(void **state)
{
	const struct dns_case *c = *state;
	struct loop *loop = loop_new();
	struct sts_dns *d;
	struct seen *s = calloc(1, sizeof(*s));
	uint64_t id = 0;

	assert_non_null(loop);
	assert_non_null(s);
	d = new_resolver(loop, forwarder, 10000);
	switch (c->type) {
	case Q_TXT:
		id = sts_dns_txt(d, c->qname, on_answer, s);
		break;
	case Q_MX:
		id = sts_dns_mx(d, c->qname, on_answer, s);
		break;
	case Q_ADDR:
		id = sts_dns_addr(d, c->qname, on_answer, s);
		break;
	case Q_TLSA:
		id = sts_dns_tlsa(d, c->qname, on_answer, s);
		break;
	}
	assert_true(id != 0);
	assert_int_equal(s->calls, 0); /* never inside the call */
	run_until(loop, &s->calls, 1, 12000);
	assert_int_equal(s->calls, 1);
	if (s->status != c->status)
		fail_msg("%s: status %s (%s), want %s", c->qname, sts_dns_status_name(s->status),
		         s->why, sts_dns_status_name(c->status));
	assert_int_equal(s->n, c->n);
	assert_false(s->secure); /* no trust anchor, never secure */
	for (size_t i = 0; i < 4 && c->expect[i] != NULL; i++)
		if (!has_item(s, c->expect[i]))
			fail_msg("%s: missing \"%s\" (first: \"%s\")", c->qname, c->expect[i],
			         s->items[0]);
	if (c->long_len != 0) {
		assert_int_equal(s->lens[0], c->long_len);
		assert_int_equal(strspn(s->items[0], "x"), c->long_len);
	}
	if (s->status == STS_DNS_OK && c->type == Q_ADDR)
		assert_string_not_equal(s->items[0], "2001:db8::1"); /* IPv4 first */

	if (s->status != STS_DNS_OK)
		assert_true(s->why[0] != '\0');
	/* A SERVFAIL must be reported as such, not by running into our timer. */
	if (s->status == STS_DNS_TEMPFAIL && strstr(s->why, "timed out") != NULL)
		fail_msg("%s: %s", c->qname, s->why);
	sts_dns_free(d);
	loop_free(loop);
	free(s);
}

/* RFC 7672 section 2.2.3: the name CNAMEs lead to is the TLSA base domain. */
static void
rfc7672_2_2_3_canonical_name(void **state)
{
	static const struct {
		int tlsa;
		const char *qname, *canon;
	} cases[] = {
	    {0, "alias1.ok.example", "target.ok.example"},
	    {0, "ALIAS1.ok.example.", "target.ok.example"},
	    {0, "v4only.ok.example", ""},
	    {0, "V4only.OK.example.", ""},
	    {1, "_25._tcp.alias.ok.example", "_25._tcp.mx1.ok.example"},
	    {1, "_25._tcp.mx1.ok.example", ""},
	};
	struct loop *loop = loop_new();
	struct sts_dns *d;

	(void)state;
	assert_non_null(loop);
	d = new_resolver(loop, forwarder, 10000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seen *s = calloc(1, sizeof(*s));

		assert_non_null(s);
		assert_true((cases[i].tlsa ? sts_dns_tlsa : sts_dns_addr)(d, cases[i].qname,
		                                                          on_answer, s) != 0);
		run_until(loop, &s->calls, 1, 12000);
		assert_int_equal(s->status, STS_DNS_OK);
		if (strcmp(s->canon, cases[i].canon) != 0)
			fail_msg("%s: canon \"%s\", want \"%s\"", cases[i].qname, s->canon,
			         cases[i].canon);
		free(s);
	}
	sts_dns_free(d);
	loop_free(loop);
}

/* A server that never answers: our timer must report a temporary failure. */
static void
rfc8461_3_1_timeout_is_temporary(void **state)
{
	struct loop *loop = loop_new();
	struct seen *s = calloc(1, sizeof(*s));
	char fwd[64];
	int sink = -1, port = free_udp_port(&sink);
	struct sts_dns *d;
	struct timespec t0, t1;
	long ms;

	(void)state;
	assert_non_null(loop);
	assert_non_null(s);
	assert_true(port > 0);
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", port);
	d = new_resolver(loop, fwd, 300);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(sts_dns_txt(d, "_mta-sts.silent.example", on_answer, s) != 0);
	run_until(loop, &s->calls, 1, 5000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_int_equal(s->calls, 1);
	assert_int_equal(s->status, STS_DNS_TEMPFAIL);
	assert_non_null(strstr(s->why, "timed out"));
	assert_true(ms >= 250 && ms < 3000);
	sts_dns_free(d);
	loop_free(loop);
	close(sink);
	free(s);
}

/* Cancelled lookups never call back; the others still do. */
static void
cancel_suppresses_callback(void **state)
{
	struct loop *loop = loop_new();
	struct seen *gone = calloc(1, sizeof(*gone)), *kept = calloc(1, sizeof(*kept));
	struct sts_dns *d;
	uint64_t a, b, c;

	(void)state;
	assert_non_null(loop);
	assert_non_null(gone);
	assert_non_null(kept);
	d = new_resolver(loop, forwarder, 5000);
	a = sts_dns_txt(d, "multi.ok.example", on_answer, gone);
	b = sts_dns_addr(d, "host.ok.example", on_answer, gone);
	c = sts_dns_mx(d, "mx.ok.example", on_answer, kept);
	assert_true(a != 0 && b != 0 && c != 0);
	assert_true(a != b && b != c);
	sts_dns_cancel(d, a);
	sts_dns_cancel(d, b);
	sts_dns_cancel(d, b);    /* twice: ignored */
	sts_dns_cancel(d, 0);    /* ignored */
	sts_dns_cancel(d, 9999); /* unknown: ignored */
	run_until(loop, &kept->calls, 1, 5000);
	assert_int_equal(kept->calls, 1);
	assert_int_equal(kept->status, STS_DNS_OK);
	/* Give the cancelled answers every chance to arrive. */
	for (int i = 0; i < 10; i++)
		loop_once(loop, 20);
	assert_int_equal(gone->calls, 0);
	sts_dns_free(d);
	loop_free(loop);
	free(gone);
	free(kept);
}

/* Freeing with lookups pending (one stuck on a silent server) calls nobody back. */
static void
free_with_pending_lookups(void **state)
{
	struct loop *loop = loop_new();
	struct seen *s = calloc(1, sizeof(*s));
	const char *const fwds[] = {forwarder};
	struct sts_dns_params p = {.forwarders = fwds, .n_forwarders = 1, .timeout_ms = 200};
	char err[256];
	struct sts_dns *d;

	(void)state;
	assert_non_null(loop);
	assert_non_null(s);
	d = sts_dns_new(loop, &p, err, sizeof(err));
	assert_non_null(d);
	assert_true(sts_dns_txt(d, "multi.ok.example", on_answer, s) != 0);
	assert_true(sts_dns_addr(d, "x.broken.example", on_answer, s) != 0);
	sts_dns_free(d);
	for (int i = 0; i < 20; i++)
		loop_once(loop, 20);
	assert_int_equal(s->calls, 0);
	sts_dns_free(NULL);
	loop_free(loop);
	free(s);
}

/* A callback may free the resolver; the other pending lookup is then dropped. */
static void
free_inside_callback(void **state)
{
	struct loop *loop = loop_new();
	struct seen *first = calloc(1, sizeof(*first)), *second = calloc(1, sizeof(*second));
	struct sts_dns *d;

	(void)state;
	assert_non_null(loop);
	assert_non_null(first);
	assert_non_null(second);
	d = new_resolver(loop, forwarder, 5000);
	first->free_me = d;
	assert_true(sts_dns_txt(d, "two.ok.example", on_answer, first) != 0);
	assert_true(sts_dns_txt(d, "x.broken.example", on_answer, second) != 0);
	run_until(loop, &first->calls, 1, 5000);
	assert_int_equal(first->calls, 1);
	for (int i = 0; i < 10; i++)
		loop_once(loop, 20);
	assert_int_equal(second->calls, 0);
	loop_free(loop);
	free(first);
	free(second);
}

/* Names the resolver must refuse up front: 0 and no callback. */
static void
bad_names_refused(void **state)
{
	struct loop *loop = loop_new();
	struct seen *s = calloc(1, sizeof(*s));
	struct sts_dns *d;
	char longname[300];

	(void)state;
	assert_non_null(loop);
	assert_non_null(s);
	d = new_resolver(loop, forwarder, 1000);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sts_dns_txt(d, "", on_answer, s), 0);
	assert_int_equal(sts_dns_txt(d, NULL, on_answer, s), 0);
	assert_int_equal(sts_dns_txt(d, "a b.test", on_answer, s), 0);
	assert_int_equal(sts_dns_mx(d, longname, on_answer, s), 0);
	assert_int_equal(sts_dns_addr(d, "ok.example", NULL, s), 0);
	for (int i = 0; i < 5; i++)
		loop_once(loop, 10);
	assert_int_equal(s->calls, 0);
	sts_dns_free(d);
	loop_free(loop);
	free(s);
}

/* Bad parameters fail at creation with a reason. */
static void
bad_params_refused(void **state)
{
	struct loop *loop = loop_new();
	const char *const bad[] = {"not an address"};
	struct sts_dns_params p = {.forwarders = bad, .n_forwarders = 1};
	struct sts_dns_params ta = {
	    .forwarders = NULL, .n_forwarders = 0, .trust_anchor_file = "/nonexistent/root.key"};
	char err[256] = "";

	(void)state;
	assert_non_null(loop);
	assert_null(sts_dns_new(loop, &p, err, sizeof(err)));
	assert_non_null(strstr(err, "forwarder"));
	err[0] = '\0';
	assert_null(sts_dns_new(loop, &ta, err, sizeof(err)));
	assert_non_null(strstr(err, "trust anchor"));
	loop_free(loop);
}

int
main(void)
{
	enum { N_CASES = sizeof(cases) / sizeof(cases[0]) };
	struct CMUnitTest tests[N_CASES + 7];

	log_set_level(LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < N_CASES; i++)
		tests[i] = (struct CMUnitTest){
		    .name = cases[i].name, .test_func = run_case, .initial_state = &cases[i]};
	tests[N_CASES + 0] = (struct CMUnitTest)cmocka_unit_test(rfc8461_3_1_timeout_is_temporary);
	tests[N_CASES + 1] = (struct CMUnitTest)cmocka_unit_test(cancel_suppresses_callback);
	tests[N_CASES + 2] = (struct CMUnitTest)cmocka_unit_test(free_with_pending_lookups);
	tests[N_CASES + 3] = (struct CMUnitTest)cmocka_unit_test(free_inside_callback);
	tests[N_CASES + 4] = (struct CMUnitTest)cmocka_unit_test(bad_names_refused);
	tests[N_CASES + 5] = (struct CMUnitTest)cmocka_unit_test(bad_params_refused);
	tests[N_CASES + 6] = (struct CMUnitTest)cmocka_unit_test(rfc7672_2_2_3_canonical_name);
	return cmocka_run_group_tests_name("sts_dns", tests, start_unbound, stop_unbound);
}
