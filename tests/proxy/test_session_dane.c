// sources: proxy/session.c proxy/relay.c proxy/upstream.c proxy/upstream_pool.c proxy/txn_report.c proxy/relay_events.c
// sources: proxy/smtp_cmd.c proxy/smtp_reply.c proxy/smtp_data.c tls/tls_io.c tls/tls_ctx.c
// sources: tls/tls_resume.c tls/tls_verify.c tls/tls_dane.c tests/tls/testca.c
// sources: tests/proxy/fake_sts_engine.c policy/sts_decide.c policy/sts_dane.c policy/sts_seen.c
// sources: policy/sts_report.c core/loop.c core/log.c core/evlog.c core/util.c core/types.c
// sources: core/conf.c
/*
 * test_session_dane.c - DANE (RFC 7672) through a whole proxied session:
 * the relay's verdict on a recipient judged by the real decision function
 * (policy/sts_decide.c) on the live upstream TLS session, with the policy
 * engine scripted (tests/proxy/fake_sts_engine.c) to hand over MTA-STS
 * answers and DANE states. What the mailer is answered, what the MX
 * received, the events, the TLS-RPT table and the counters are checked.
 *
 * The MX is a small SMTP server on 127.0.0.1 in a thread, with STARTTLS
 * (a certificate for mx.example.net from a throw-away CA) or without; the
 * mailer is the test's end of a socketpair. Cases are data, played by one
 * runner.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "core/conf.h"
#include "core/evlog.h"
#include "core/log.h"
#include "core/loop.h"
#include "policy/sts_dane.h"
#include "policy/sts_report.h"
#include "proxy/session.h"
#include "tests/proxy/fake_sts_engine.h"
#include "tests/tls/testca.h"
#include "tls/tls_ctx.h"

#define DOMAIN "example.net"
#define MXNAME "mx.example.net"

static struct {
	struct testca *ca;
	SSL_CTX *mx_server; /* the MX's certificate for mx.example.net */
	SSL_CTX *upstream;  /* the proxy's client context (tls.ca_file: the test CA) */
	uint8_t spki[32];   /* SHA2-256 of the MX leaf's public key */
	char events[256];
} env;

/* --- the MX ------------------------------------------------------------------------ */

struct mx {
	bool starttls;
	int lfd, fd;
	uint16_t port;
	pthread_t th;
	SSL *ssl;
	char in[8192];
	size_t in_len;
	char log[8192]; /* lines received, CRLF kept */
	size_t log_len;
	bool got_dot;
};

static int
mx_puts(struct mx *m, const char *s)
{
	size_t n = strlen(s);

	if (m->ssl != NULL)
		return SSL_write(m->ssl, s, (int)n) == (int)n ? 0 : -1;
	return send(m->fd, s, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* mx_getline - the next line received (CRLF kept); -1 at the end or after 5 s. */
static int
mx_getline(struct mx *m, char *out, size_t outlen)
{
	char *lf;
	int n;

	while ((lf = memchr(m->in, '\n', m->in_len)) == NULL) {
		if (m->in_len == sizeof(m->in))
			return -1;
		n = m->ssl != NULL
		        ? SSL_read(m->ssl, m->in + m->in_len, (int)(sizeof(m->in) - m->in_len))
		        : (int)recv(m->fd, m->in + m->in_len, sizeof(m->in) - m->in_len, 0);
		if (n <= 0)
			return -1;
		m->in_len += (size_t)n;
	}
	n = (int)(lf - m->in) + 1;
	if ((size_t)n >= outlen)
		return -1;
	memcpy(out, m->in, (size_t)n);
	out[n] = '\0';
	memmove(m->in, m->in + n, m->in_len - (size_t)n);
	m->in_len -= (size_t)n;
	if (m->log_len + (size_t)n < sizeof(m->log)) {
		memcpy(m->log + m->log_len, out, (size_t)n);
		m->log_len += (size_t)n;
	}
	return 0;
}

static void *
mx_main(void *arg)
{
	struct mx *m = arg;
	struct timeval tv = {5, 0};
	struct pollfd pfd = {.fd = m->lfd, .events = POLLIN};
	char line[2048];
	bool data = false;

	if (poll(&pfd, 1, 5000) != 1 || (m->fd = accept(m->lfd, NULL, NULL)) < 0)
		return NULL;
	setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	mx_puts(m, "220 " MXNAME " ESMTP\r\n");
	while (mx_getline(m, line, sizeof(line)) == 0) {
		if (data) {
			if (strcmp(line, ".\r\n") == 0) {
				data = false;
				m->got_dot = true;
				mx_puts(m, "250 2.0.0 queued\r\n");
			}
		} else if (strncasecmp(line, "EHLO", 4) == 0) {
			mx_puts(m, m->starttls && m->ssl == NULL ? "250-" MXNAME
			                                           "\r\n250 STARTTLS\r\n"
			                                         : "250 " MXNAME "\r\n");
		} else if (strncasecmp(line, "STARTTLS", 8) == 0) {
			mx_puts(m, "220 2.0.0 Ready\r\n");
			m->ssl = SSL_new(env.mx_server);
			SSL_set_fd(m->ssl, m->fd);
			if (SSL_accept(m->ssl) != 1)
				break;
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			data = true;
			mx_puts(m, "354 go on\r\n");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			mx_puts(m, "221 2.0.0 Bye\r\n");
			break;
		} else {
			mx_puts(m, "250 2.0.0 Ok\r\n");
		}
	}
	SSL_free(m->ssl);
	m->ssl = NULL;
	close(m->fd);
	return NULL;
}

/* --- the session ------------------------------------------------------------------ */

static struct {
	struct loop *loop;
	struct conf conf;
	struct sts_engine *engine;
	struct session_stats stats;
	struct session_ctx ctx;
	struct mx mx;
	int cfd;
	char in[16384];
	size_t in_len;
	long ev_off;
} t;

static void
mx_start(bool starttls)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);

	memset(&t.mx, 0, sizeof(t.mx));
	t.mx.starttls = starttls;
	assert_true((t.mx.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	assert_int_equal(bind(t.mx.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(t.mx.lfd, 4), 0);
	assert_int_equal(getsockname(t.mx.lfd, (struct sockaddr *)&sin, &len), 0);
	t.mx.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&t.mx.th, NULL, mx_main, &t.mx), 0);
}

/* say - the mailer sends line and waits for the whole reply, returned in a static buffer. */
static const char *
say(const char *line)
{
	static char reply[4096];
	char *p, *lf;

	if (line != NULL)
		assert_int_equal(write(t.cfd, line, strlen(line)), (ssize_t)strlen(line));
	for (int i = 0; i < 800; i++) {
		ssize_t n = read(t.cfd, t.in + t.in_len, sizeof(t.in) - 1 - t.in_len);

		if (n > 0)
			t.in_len += (size_t)n;
		t.in[t.in_len] = '\0';
		/* the last line of a reply has a space after its code */
		for (p = t.in; (lf = strchr(p, '\n')) != NULL; p = lf + 1) {
			size_t len = (size_t)(lf - t.in) + 1;

			if (lf - p < 4 || p[3] != ' ')
				continue;
			snprintf(reply, sizeof(reply), "%.*s", (int)len, t.in);
			memmove(t.in, t.in + len, t.in_len - len + 1);
			t.in_len -= len;
			return reply;
		}
		loop_once(t.loop, 10);
	}
	fail_msg("no reply to %s", line != NULL ? line : "(banner)");
	return NULL;
}

/* event - the first event since the case began for the domain, or NULL. */
static json_t *
event(void)
{
	FILE *f = fopen(env.events, "r");
	char line[8192];
	json_t *o, *found = NULL;

	if (f == NULL)
		return NULL;
	fseek(f, t.ev_off, SEEK_SET);
	while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
		const char *d;

		if ((o = json_loads(line, 0, NULL)) == NULL)
			continue;
		d = json_string_value(json_object_get(o, "domain"));
		if (d != NULL && strcmp(d, DOMAIN) == 0)
			found = o;
		else
			json_decref(o);
	}
	fclose(f);
	return found;
}

/* --- fixtures ----------------------------------------------------------------------- */

static int
group_setup(void **state)
{
	char crt[TESTCA_PATH_MAX], key[TESTCA_PATH_MAX], err[256];
	const char *san = MXNAME;
	unsigned char *der = NULL;
	unsigned int dlen = 0;
	X509 *leaf = NULL;
	FILE *fp;
	int len;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LVL_ERR);
	if ((env.ca = testca_new(NULL)) == NULL ||
	    testca_issue(env.ca, "mx", &san, 1, 0, crt, key) != 0 || (fp = fopen(crt, "r")) == NULL)
		return -1;
	leaf = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (leaf == NULL || (len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der)) <= 0 ||
	    EVP_Digest(der, (size_t)len, env.spki, &dlen, EVP_sha256(), NULL) != 1)
		return -1;
	OPENSSL_free(der);
	X509_free(leaf);
	env.mx_server = tls_server_ctx_new(crt, key, err, sizeof(err));
	env.upstream = tls_client_ctx_new(testca_ca_file(env.ca), err, sizeof(err));
	if (env.mx_server == NULL || env.upstream == NULL)
		return -1;
	snprintf(env.events, sizeof(env.events), "%s/events.jsonl", testca_dir(env.ca));
	return evlog_open(env.events);
}

static int
group_teardown(void **state)
{
	(void)state;
	evlog_close();
	SSL_CTX_free(env.mx_server);
	SSL_CTX_free(env.upstream);
	testca_free(env.ca);
	return 0;
}

/* --- the cases ---------------------------------------------------------------------- */

enum rec {
	R_EE = 0, /* 3 1 1 of the MX's key */
	R_OTHER,  /* 3 1 1 of another key */
	R_PKIX,   /* 1 1 1 of the MX's key: unusable */
};

struct dcase {
	const char *name;
	bool starttls;                    /* the MX offers it */
	enum sts_dane_status status;      /* the domain's DANE state */
	enum sts_dane_host_state host;    /* of its one MX host */
	enum rec rec;                     /* its record */
	enum sts_status sts;              /* the MTA-STS answer */
	const char *sts_mx;               /* its one candidate */
	bool monitor;                     /* mode = "monitor" */
	const char *rcpt;                 /* the reply to RCPT begins so */
	const char *event_result;         /* the event's result type; NULL: no event */
	enum sts_policy_type type;        /* the policy that decided */
	int outcome;                      /* 0 pass, 1 refused, 2 reported */
	bool recheck;                     /* a refusal asked for the current policy first */
	enum sts_policy_type report_type; /* the TLS-RPT row the result went to */
};

static const struct dcase cases[] = {
    {"rfc7672_3_1_1_dane_ee_delivered", true, STS_DANE_HOSTS, STS_DANE_HOST_USABLE, R_EE,
     STS_NO_POLICY, NULL, false, "250", NULL, STS_PTYPE_TLSA, 0, false, STS_PTYPE_TLSA},
    {"rfc7672_3_dane_mismatch_451_4_7_5", true, STS_DANE_HOSTS, STS_DANE_HOST_USABLE, R_OTHER,
     STS_NO_POLICY, NULL, false, "451 4.7.5 " DOMAIN ": MX 127.0.0.1:", "certificate-not-trusted",
     STS_PTYPE_TLSA, 1, true, STS_PTYPE_TLSA},
    {"rfc7672_2_2_no_starttls_451_4_7_4", false, STS_DANE_HOSTS, STS_DANE_HOST_USABLE, R_EE,
     STS_NO_POLICY, NULL, false, "451 4.7.4 ", "starttls-not-supported", STS_PTYPE_TLSA, 1, true,
     STS_PTYPE_TLSA},
    {"rfc7672_2_2_1_tlsa_failed_451_4_7_5", true, STS_DANE_HOSTS, STS_DANE_HOST_FAILED, R_EE,
     STS_NO_POLICY, NULL, false, "451 4.7.5 ", "dnssec-invalid", STS_PTYPE_TLSA, 1, true,
     STS_PTYPE_TLSA},
    {"rfc7672_2_2_1_mx_tempfail_451_4_4_3", true, STS_DANE_TEMPFAIL, STS_DANE_HOST_NONE, R_EE,
     STS_NO_POLICY, NULL, false, "451 4.4.3 ", "dnssec-invalid", STS_PTYPE_TLSA, 1, true,
     STS_PTYPE_TLSA},
    {"rfc7672_2_2_unusable_relayed_reported", true, STS_DANE_HOSTS, STS_DANE_HOST_UNUSABLE, R_PKIX,
     STS_NO_POLICY, NULL, false, "250", "tlsa-invalid", STS_PTYPE_TLSA, 2, false, STS_PTYPE_TLSA},
    /* RFC 8461 section 2: DANE alone decides where it applies. */
    {"rfc8461_2_dane_wins_over_sts_mismatch", true, STS_DANE_HOSTS, STS_DANE_HOST_USABLE, R_EE,
     STS_POLICY, "other.example.org", false, "250", NULL, STS_PTYPE_TLSA, 0, false, STS_PTYPE_TLSA},
    {"rfc8461_2_dane_refuses_despite_sts_pass", true, STS_DANE_HOSTS, STS_DANE_HOST_USABLE, R_OTHER,
     STS_POLICY, MXNAME, false, "451 4.7.5 ", "certificate-not-trusted", STS_PTYPE_TLSA, 1, true,
     STS_PTYPE_TLSA},
    {"rfc8461_2_dane_decides_when_sts_defers", true, STS_DANE_HOSTS, STS_DANE_HOST_USABLE, R_EE,
     STS_DEFER, NULL, false, "250", NULL, STS_PTYPE_TLSA, 0, false, STS_PTYPE_TLSA},
    {"rfc7672_2_2_no_dane_sts_as_before", true, STS_DANE_NONE, STS_DANE_HOST_NONE, R_EE, STS_POLICY,
     "other.example.org", false, "451 4.7.5 " DOMAIN ": MX 127.0.0.1:", "certificate-host-mismatch",
     STS_PTYPE_STS, 1, true, STS_PTYPE_STS},
    {"rfc7672_monitor_relays_and_reports", true, STS_DANE_HOSTS, STS_DANE_HOST_USABLE, R_OTHER,
     STS_NO_POLICY, NULL, true, "250", "certificate-not-trusted", STS_PTYPE_TLSA, 2, false,
     STS_PTYPE_TLSA},
};

/* state - the DANE state of the case: one host, mx.example.net at 127.0.0.1. */
static struct sts_dane_state *
state(const struct dcase *c)
{
	static struct sts_dane_build b;
	struct sockaddr_in *sin = (struct sockaddr_in *)&b.host[0].addr[0];

	memset(&b, 0, sizeof(b));
	b.status = c->status;
	b.mx_secure = true;
	snprintf(b.domain, sizeof(b.domain), "%s", DOMAIN);
	snprintf(b.why, sizeof(b.why), "MX %s: scripted", DOMAIN);
	if (c->status == STS_DANE_HOSTS) {
		b.n_host = 1;
		snprintf(b.host[0].name, sizeof(b.host[0].name), "%s", MXNAME);
		snprintf(b.host[0].base, sizeof(b.host[0].base), "%s", MXNAME);
		b.host[0].state = c->host;
		if (c->host == STS_DANE_HOST_FAILED || c->host == STS_DANE_HOST_UNUSABLE) {
			b.host[0].problem = c->host == STS_DANE_HOST_FAILED
			                        ? STS_RESULT_DNSSEC_INVALID
			                        : STS_RESULT_TLSA_INVALID;
			snprintf(b.host[0].why, sizeof(b.host[0].why), "scripted");
		}
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		b.host[0].n_addr = 1;
		memcpy(b.data, env.spki, 32);
		if (c->rec == R_OTHER)
			b.data[0] ^= 0xff;
		b.host[0].tlsa[0] = (struct tls_tlsa){.usage = c->rec == R_PKIX ? 1 : 3,
		                                      .selector = 1,
		                                      .mtype = 1,
		                                      .data = b.data,
		                                      .len = 32};
		b.host[0].n_tlsa = c->host == STS_DANE_HOST_USABLE ? 1 : 0;
		b.data_used = 32;
	}
	return sts_dane_state_new(&b, 0);
}

struct row {
	enum sts_policy_type type;
	uint64_t success, failure;
};

static int
row_get(void *arg, const struct sts_report_entry *e)
{
	struct row *r = arg;

	if (strcmp(e->domain, DOMAIN) == 0 && e->type == r->type) {
		r->success = e->success;
		r->failure = e->failure;
	}
	return 0;
}

static void
run_case(void **state_)
{
	const struct dcase *c = *state_;
	struct sts_engine_params p = {0};
	const struct fake_sts_rule rule = {DOMAIN, c->sts,    STS_MODE_ENFORCE,
	                                   "id1",  c->sts_mx, true};
	struct sockaddr_in client = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sts_dane_state *st;
	struct row row = {.type = c->report_type};
	struct stat sb;
	char err[128];
	json_t *ev;
	int sv[2];

	memset(&t, 0, sizeof(t));
	assert_non_null(t.loop = loop_new());
	assert_int_equal(conf_defaults(&t.conf), 0);
	t.conf.timeouts.connect = t.conf.timeouts.greeting = t.conf.timeouts.command = 3;
	t.conf.timeouts.starttls = t.conf.timeouts.data_block = t.conf.timeouts.data_done = 3;
	t.conf.mode = c->monitor ? CONF_PROXY_MONITOR : CONF_PROXY_ENFORCE;
	p.loop = t.loop;
	p.conf = &t.conf;
	assert_non_null(t.engine = sts_engine_new(&p, err, sizeof(err)));
	t.ctx = (struct session_ctx){.loop = t.loop,
	                             .conf = &t.conf,
	                             .engine = t.engine,
	                             .upstream_tls = env.upstream,
	                             .stats = &t.stats};
	assert_non_null(t.ctx.report = sts_report_new(time(NULL)));
	assert_non_null(st = state(c));
	fake_sts_set(&rule, 1);
	fake_sts_set_dane(DOMAIN, STS_DANE_MODE_ON, st);
	t.ev_off = stat(env.events, &sb) == 0 ? (long)sb.st_size : 0;

	mx_start(c->starttls);
	dst.sin_port = htons(t.mx.port);
	inet_pton(AF_INET, "10.0.0.1", &client.sin_addr);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t.cfd = sv[1];
	fcntl(t.cfd, F_SETFL, fcntl(t.cfd, F_GETFL) | O_NONBLOCK);
	assert_int_equal(session_start(&t.ctx, sv[0], (struct sockaddr *)&client, sizeof(client),
	                               (struct sockaddr *)&dst, sizeof(dst)),
	                 0);

	assert_non_null(strstr(say(NULL), "220 "));
	assert_int_equal(strncmp(say("EHLO mail.corp.example\r\n"), "250", 3), 0);
	assert_int_equal(strncmp(say("MAIL FROM:<a@corp.example>\r\n"), "250", 3), 0);
	{
		const char *r = say("RCPT TO:<b@" DOMAIN ">\r\n");

		if (strncmp(r, c->rcpt, strlen(c->rcpt)) != 0)
			fail_msg("%s: RCPT got \"%s\", wanted \"%s\"", c->name, r, c->rcpt);
		if (c->type == STS_PTYPE_TLSA && c->outcome == 1)
			assert_non_null(strstr(r, strstr(c->rcpt, "4.4.3") != NULL
			                              ? "DANE TLSA lookup failed"
			                              : "DANE TLSA records"));
	}
	if (c->rcpt[0] == '2') {
		assert_int_equal(strncmp(say("DATA\r\n"), "354", 3), 0);
		assert_int_equal(strncmp(say("Subject: dane\r\n\r\nhello\r\n.\r\n"), "250", 3), 0);
	}
	say("QUIT\r\n");
	for (int i = 0; i < 800 && session_count(&t.ctx) > 0; i++)
		loop_once(t.loop, 10);
	pthread_join(t.mx.th, NULL);
	close(t.mx.lfd);
	close(t.cfd);

	/* The MX never learns a refused recipient, nor the sender before one passes. */
	assert_int_equal(strstr(t.mx.log, "RCPT TO:") != NULL, c->rcpt[0] == '2');
	assert_int_equal(t.mx.got_dot, c->rcpt[0] == '2');
	assert_int_equal(fake_sts_recheck_count(), c->recheck ? 1 : 0);
	assert_int_equal(atomic_load(&t.stats.recipients_by_policy[c->type][c->outcome]), 1);
	ev = event();
	if (c->event_result == NULL) {
		assert_null(ev);
	} else {
		assert_non_null(ev);
		assert_string_equal(json_string_value(json_object_get(ev, "result_type")),
		                    c->event_result);
		assert_string_equal(json_string_value(json_object_get(ev, "policy_type")),
		                    sts_policy_type_name(c->type));
		json_decref(ev);
	}
	/* RFC 8460 section 4.4: the result is counted under the policy type that decided. */
	sts_report_foreach(t.ctx.report, row_get, &row);
	assert_int_equal(row.success, c->outcome == 0 ? 1 : 0);
	assert_int_equal(row.failure, c->outcome == 0 ? 0 : 1);

	sts_report_free(t.ctx.report);
	sts_engine_free(t.engine);
	loop_free(t.loop);
	free(t.conf.state_dir);
	free(t.conf.nfq.queues);
	free(t.conf.shared.prefix);
	sts_dane_release(st);
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0])];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[i] = (struct CMUnitTest){.name = cases[i].name,
		                               .test_func = run_case,
		                               .initial_state = (void *)&cases[i]};
	return _cmocka_run_group_tests("session_dane", tests, sizeof(tests) / sizeof(tests[0]),
	                               group_setup, group_teardown);
}
