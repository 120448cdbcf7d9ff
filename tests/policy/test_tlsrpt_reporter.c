// sources: policy/tlsrpt_reporter.c policy/tlsrpt_queue.c policy/tlsrpt_sched.c policy/tlsrpt_json.c policy/tlsrpt_gzip.c policy/tlsrpt_mail.c policy/tlsrpt_record.c tests/policy/fake_report_store.c tests/policy/fake_tlsrpt_dns.c tests/policy/fake_tlsrpt_send.c core/util.c core/log.c core/types.c core/conf.c tests/policy/fake_tlsrpt_shared.c
/*
 * test_tlsrpt_reporter.c - the daily TLS-RPT run (RFC 8460) over a scripted
 * result store, a scripted _smtp._tls zone and a recording transport: which
 * domains are reported (only_failures, include_no_policy, the overflow
 * bucket), what the report says (counts, failure details, the rows the
 * store could not keep), where it goes (https: body, mailto: message), and
 * the delivery records that keep a report from going twice.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "policy/report_store.h"
#include "policy/tlsrpt_dns.h"
#include "policy/tlsrpt_gzip.h"
#include "policy/tlsrpt_reporter.h"
#include "policy/tlsrpt_shared.h"

#define DAY 1796256000 /* 2026-12-03 00:00:00 UTC */

void fake_store_reset(void);
void fake_store_add(const struct report_store_entry *e);
unsigned fake_store_puts(void);
int fake_store_get(int64_t day, const char *domain, struct report_delivery *out);
void fake_store_claims(const int *answers, size_t n);
unsigned fake_store_claimed(void);
const char *fake_store_last_gateway(void);
void fake_dns_reset(void);
void fake_dns_set(const char *domain, enum tlsrpt_lookup_status status, const char *record);
unsigned fake_dns_count(const char *domain);
void fake_shared_reset(void);
void fake_shared_claim(enum tlsrpt_claim a, const char *holder);
void fake_shared_down(bool down);
unsigned fake_shared_count(const char *what);
void fake_shared_sent_fails(unsigned n);
void fake_send_reset(void);
void fake_send_script(enum tlsrpt_outcome o);
size_t fake_send_count(void);
const unsigned char *fake_send_payload(size_t i, size_t *len, const char **target, int *https);

static const char *const a_policy[] = {"version: STSv1", "mode: enforce", "mx: mx1.a.example",
                                       "max_age: 86400"};
static const char *const a_mx[] = {"mx1.a.example"};
static const struct report_store_detail a_details[] = {
    {.result = STS_RESULT_STARTTLS_NOT_SUPPORTED,
     .sending_ip = "198.51.100.2",
     .mx_host = "mx1.a.example",
     .mx_helo = "",
     .receiving_ip = "192.0.2.1",
     .count = 1},
};

/* The day's results: a.example failed, b.example did not, c.example has no policy. */
static void
script_store(void)
{
	struct report_store_entry a = {
	    .day = DAY,
	    .domain = "a.example",
	    .type = STS_PTYPE_STS,
	    .policy_id = "a1",
	    .mode = STS_MODE_ENFORCE,
	    .success = 5,
	    .failure = 3,
	    .n_policy = 4,
	    .policy = a_policy,
	    .n_mx = 1,
	    .mx = a_mx,
	    .n_details = 1,
	    .details = a_details,
	    .detail_other = 2,
	};
	struct report_store_entry b = {.day = DAY,
	                               .domain = "b.example",
	                               .type = STS_PTYPE_STS,
	                               .policy_id = "b1",
	                               .success = 4};
	struct report_store_entry c = {
	    .day = DAY, .domain = "c.example", .type = STS_PTYPE_NONE, .success = 1, .failure = 2};
	struct report_store_entry other = {
	    .day = DAY, .domain = STS_REPORT_OTHER, .type = STS_PTYPE_STS, .failure = 7};

	a.by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED] = 2;
	a.by_result[STS_RESULT_CERT_EXPIRED] = 1;
	c.by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED] = 2;
	other.by_result[STS_RESULT_CERT_EXPIRED] = 7;
	fake_store_reset();
	fake_store_add(&a);
	fake_store_add(&b);
	fake_store_add(&c);
	fake_store_add(&other);
	fake_dns_reset();
	fake_dns_set("a.example", TLSRPT_LOOKUP_FOUND,
	             "v=TLSRPTv1; rua=https://r.example/a,mailto:rpt@r.example");
	fake_dns_set("b.example", TLSRPT_LOOKUP_FOUND, "v=TLSRPTv1; rua=https://r.example/b");
	fake_dns_set("c.example", TLSRPT_LOOKUP_FOUND, "v=TLSRPTv1; rua=https://r.example/c");
	fake_send_reset();
}

struct fixture {
	struct conf *conf;
	struct tlsrpt_reporter *r;
	int store; /* the fake store is never dereferenced: any address will do */
};

/* setup_top - a reporter with extra in the report group and top at the top level. */
static struct fixture *
setup_top(const char *extra, const char *top)
{
	static struct fixture f;
	char text[1024], err[512];
	struct tlsrpt_reporter_params p = {0};

	snprintf(
	    text, sizeof(text),
	    "listen = [ \"127.0.0.1:10025\" ];\n"
	    "report = { organization = \"Org\"; contact = \"mailto:pm@gw.example\";\n"
	    "  submitter = \"gw.example\"; from = \"tlsrpt@gw.example\"; retry_for = 0; %s };\n%s",
	    extra, top);
	memset(&f, 0, sizeof(f));
	f.conf = conf_load_string(text, "mem", err, sizeof(err));
	if (f.conf == NULL)
		fail_msg("%s", err);
	p.conf = f.conf;
	p.store = (struct report_store *)&f.store;
	f.r = tlsrpt_reporter_new(&p, err, sizeof(err));
	if (f.r == NULL)
		fail_msg("%s", err);
	script_store();
	fake_shared_reset();
	return &f;
}

static struct fixture *
setup(const char *extra)
{
	return setup_top(extra, "");
}

static void
teardown(struct fixture *f)
{
	tlsrpt_reporter_free(f->r);
	conf_free(f->conf);
	fake_send_reset();
}

static int
queue(struct fixture *f, const char *domain)
{
	char err[256];

	return tlsrpt_reporter_queue_day(f->r, DAY + 3600, DAY + 86399, domain, err, sizeof(err));
}

/* report_of - attempt i's report as JSON (gunzipped from an https body). */
static json_t *
report_of(size_t i)
{
	const char *target;
	const unsigned char *gz;
	uint8_t *text = NULL;
	size_t len, tlen;
	int https;
	json_t *j;

	gz = fake_send_payload(i, &len, &target, &https);
	assert_true(https);
	assert_int_equal(tlsrpt_gunzip(gz, len, 1 << 20, &text, &tlen), 0);
	j = json_loads((const char *)text, 0, NULL);
	free(text);
	assert_non_null(j);
	return j;
}

static uint64_t
count_of(json_t *pol, const char *field)
{
	return (uint64_t)json_integer_value(
	    json_object_get(json_object_get(pol, "summary"), field));
}

static void
rfc8460_4_only_domains_with_failures(void **state)
{
	struct fixture *f = setup("");
	struct report_delivery d;

	(void)state;
	/* a.example only: b.example had no failure, c.example no policy, "other" no domain */
	assert_int_equal(queue(f, NULL), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_dns_count("b.example") + fake_dns_count("c.example"), 0);
	assert_int_equal(fake_send_count(), 2); /* both rua destinations */
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	assert_int_equal(d.attempts, 1); /* recorded once the first destination had it */
	assert_string_equal(d.report_id, "20261203.a.example@gw.example");
	/* recorded: never queued again */
	assert_int_equal(queue(f, NULL), 0);
	assert_int_equal(queue(f, "a.example"), 0);
	teardown(f);
}

static void
rfc8460_4_4_report_counts_and_details(void **state)
{
	struct fixture *f = setup("");
	json_t *rep, *pol, *fd, *v;
	size_t i;
	uint64_t sum = 0, starttls = 0, expired = 0, with_mx = 0;

	(void)state;
	assert_int_equal(queue(f, NULL), 1);
	tlsrpt_reporter_drain(f->r);
	rep = report_of(0);
	assert_string_equal(json_string_value(json_object_get(rep, "organization-name")), "Org");
	assert_string_equal(json_string_value(json_object_get(rep, "report-id")),
	                    "20261203.a.example@gw.example");
	assert_int_equal(json_array_size(json_object_get(rep, "policies")), 1);
	pol = json_array_get(json_object_get(rep, "policies"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(pol, "policy"), "policy-type")),
	    "sts");
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(pol, "policy"), "policy-string")), 4);
	assert_int_equal(count_of(pol, "total-successful-session-count"), 5);
	assert_int_equal(count_of(pol, "total-failure-session-count"), 3);
	/* the row the store kept, then what it could not keep, by result type alone */
	fd = json_object_get(pol, "failure-details");
	json_array_foreach(fd, i, v)
	{
		uint64_t n =
		    (uint64_t)json_integer_value(json_object_get(v, "failed-session-count"));
		const char *t = json_string_value(json_object_get(v, "result-type"));

		sum += n;
		if (strcmp(t, "starttls-not-supported") == 0)
			starttls += n;
		if (strcmp(t, "certificate-expired") == 0)
			expired += n;
		if (json_object_get(v, "receiving-mx-hostname") != NULL)
			with_mx += n;
	}
	assert_int_equal(sum, 3);
	assert_int_equal(starttls, 2);
	assert_int_equal(expired, 1);
	assert_int_equal(with_mx, 1);
	json_decref(rep);
	teardown(f);
}

static void
rfc8460_5_3_mail_for_mailto(void **state)
{
	struct fixture *f = setup("");
	const char *target;
	const unsigned char *msg;
	size_t len;
	int https;

	(void)state;
	queue(f, NULL);
	tlsrpt_reporter_drain(f->r);
	msg = fake_send_payload(1, &len, &target, &https);
	assert_false(https);
	assert_string_equal(target, "rpt@r.example");
	assert_non_null(strstr((const char *)msg, "TLS-Report-Domain: a.example\r\n"));
	assert_non_null(strstr((const char *)msg, "TLS-Report-Submitter: gw.example\r\n"));
	assert_non_null(strstr((const char *)msg, "From: tlsrpt@gw.example"));
	assert_non_null(strstr((const char *)msg, "gw.example!a.example!1796256000!1796342399"));
	teardown(f);
}

static void
rfc8460_4_every_domain_and_no_policy_found(void **state)
{
	struct fixture *f = setup("only_failures = false; include_no_policy = true;");
	json_t *rep;
	const char *target;
	size_t len;
	int https;

	(void)state;
	assert_int_equal(queue(f, NULL), 3); /* a, b, c; never "other" */
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 4);
	fake_send_payload(3, &len, &target, &https);
	assert_string_equal(target, "https://r.example/c");
	rep = report_of(3);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_array_get(json_object_get(rep, "policies"), 0), "policy"),
	        "policy-type")),
	    "no-policy-found");
	json_decref(rep);
	teardown(f);
}

static void
rfc8460_3_no_record_nothing_sent(void **state)
{
	struct fixture *f = setup("");
	struct report_delivery d;

	(void)state;
	fake_dns_reset(); /* a.example publishes nothing */
	assert_int_equal(queue(f, NULL), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0); /* not a failure */
	assert_int_equal(fake_send_count(), 0);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SKIPPED);
	teardown(f);
}

static void
rfc8460_5_3_every_destination_failed(void **state)
{
	struct fixture *f = setup("");
	struct report_delivery d;

	(void)state;
	fake_send_script(TLSRPT_OUT_TEMP); /* retry_for = 0: no retry */
	fake_send_script(TLSRPT_OUT_PERM);
	queue(f, NULL);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 1);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_FAILED);
	assert_int_equal(d.attempts, 2);
	assert_string_equal(d.last_error, "scripted");
	teardown(f);
}

static void
size_limit(void **state)
{
	struct fixture *f = setup("max_size = 1024;");
	static struct report_store_detail many[200];
	static char names[200][64];
	struct report_store_entry big = {
	    .day = DAY, .domain = "big.example", .type = STS_PTYPE_STS, .failure = 200};
	struct report_delivery d;

	(void)state;
	for (size_t i = 0; i < 200; i++) {
		/* distinct, hard to compress: the gzip report is well over 1 KiB */
		snprintf(names[i], sizeof(names[i]), "mx%zu-%08x.big.example", i,
		         (unsigned)(i * 2654435761u));
		many[i] = (struct report_store_detail){.result = STS_RESULT_CERT_EXPIRED,
		                                       .sending_ip = "",
		                                       .mx_host = names[i],
		                                       .mx_helo = "",
		                                       .receiving_ip = "",
		                                       .count = 1};
	}
	big.by_result[STS_RESULT_CERT_EXPIRED] = 200;
	big.n_details = 200;
	big.details = many;
	fake_store_reset();
	fake_store_add(&big);
	fake_dns_set("big.example", TLSRPT_LOOKUP_FOUND, "v=TLSRPTv1; rua=https://r.example/big");
	assert_int_equal(queue(f, NULL), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 0);
	assert_int_equal(fake_store_get(DAY, "big.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SKIPPED);
	teardown(f);
}

static void
resumed_after_restart(void **state)
{
	struct fixture *f = setup("only_failures = false;");
	struct report_delivery d = {.day = DAY, .state = REPORT_STATE_PENDING, .attempts = 3};
	char err[256];

	(void)state;
	strcpy(d.domain, "a.example");
	assert_int_equal(report_store_delivery_put(NULL, &d, NULL, 0, err, sizeof(err)), 0);
	d.state = REPORT_STATE_FAILED;
	strcpy(d.domain, "b.example");
	assert_int_equal(report_store_delivery_put(NULL, &d, NULL, 0, err, sizeof(err)), 0);
	/* a.example pending: resumed; b.example failed: left alone */
	assert_int_equal(queue(f, NULL), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	assert_int_equal(d.attempts, 4);
	assert_int_equal(fake_dns_count("b.example"), 0);
	teardown(f);
}

static void
show_text(void **state)
{
	struct fixture *f = setup("");
	char *text = NULL, err[256];
	size_t len = 0;

	(void)state;
	assert_int_equal(tlsrpt_reporter_json(f->r, "a.example", DAY + 5, DAY + 86399, &text, &len,
	                                      err, sizeof(err)),
	                 0);
	assert_non_null(strstr(text, "\"policy-domain\":\"a.example\""));
	free(text);
	/* no-policy-found is left out without include_no_policy: nothing to show */
	assert_int_equal(tlsrpt_reporter_json(f->r, "c.example", DAY, DAY + 86399, &text, &len, err,
	                                      sizeof(err)),
	                 1);
	assert_null(text);
	assert_int_equal(fake_send_count(), 0);
	teardown(f);
}

static void
identity_required(void **state)
{
	char err[512];
	struct conf *c = conf_load_string("listen = [ \"127.0.0.1:10025\" ];\n"
	                                  "report = { organization = \"Org\"; };\n",
	                                  "mem", err, sizeof(err));
	struct tlsrpt_reporter_params p = {.conf = c};
	int store;

	(void)state;
	assert_non_null(c);
	p.store = (struct report_store *)&store;
	assert_null(tlsrpt_reporter_new(&p, err, sizeof(err)));
	assert_string_equal(err, "mem: report.contact is not set: a report needs it (RFC 8460 "
	                         "section 4.4)");
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
 * The daemon's thread: started with no delay, it reports the day before
 * today at once (RFC 8460 section 4.1), then waits for the next day; a
 * stop ends the wait at once.
 */
static void
rfc8460_5_3_thread_reports_yesterday_and_stops(void **state)
{
	struct fixture *f = setup("delay_max = 0;");
	int64_t yesterday = (int64_t)time(NULL) / 86400 * 86400 - 86400;
	struct report_store_entry a = {.day = yesterday,
	                               .domain = "a.example",
	                               .type = STS_PTYPE_STS,
	                               .policy_id = "a1",
	                               .success = 1,
	                               .failure = 1};
	struct report_delivery d;
	char err[256];
	double t0;

	(void)state;
	a.by_result[STS_RESULT_CERT_HOST_MISMATCH] = 1;
	fake_store_reset();
	fake_store_add(&a);
	assert_int_equal(tlsrpt_reporter_start(f->r, err, sizeof(err)), 0);
	for (int i = 0; i < 200 && fake_send_count() < 2; i++)
		usleep(10 * 1000);
	t0 = now_s();
	tlsrpt_reporter_stop(f->r);
	if (now_s() - t0 > 1.0)
		fail_msg("the stop took %.2f s", now_s() - t0);
	assert_int_equal(fake_send_count(), 2);
	assert_int_equal(fake_store_get(yesterday, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	assert_int_equal(tlsrpt_reporter_attempts(f->r, TLSRPT_KIND_HTTPS, TLSRPT_OUT_DELIVERED),
	                 1);
	assert_int_equal(tlsrpt_reporter_attempts(f->r, TLSRPT_KIND_MAILTO, TLSRPT_OUT_DELIVERED),
	                 1);
	teardown(f);
}

/*
 * Days missed while the daemon was down: at start, the thread sends the
 * report of every day before yesterday the store holds and that never
 * finished; one recorded as sent is not sent again (RFC 8460 section 4.1).
 */
static void
rfc8460_4_1_missed_days_caught_up(void **state)
{
	struct fixture *f = setup("delay_max = 0;");
	int64_t today = (int64_t)time(NULL) / 86400 * 86400;
	const int64_t days[3] = {today - 4 * 86400, today - 3 * 86400, today - 86400};
	struct report_store_entry e[3];
	struct report_delivery d = {.day = days[1], .state = REPORT_STATE_SENT, .attempts = 1};
	char err[256];

	(void)state;
	fake_store_reset();
	for (int i = 0; i < 3; i++) {
		e[i] = (struct report_store_entry){.day = days[i],
		                                   .domain = "a.example",
		                                   .type = STS_PTYPE_STS,
		                                   .policy_id = "a1",
		                                   .success = 1,
		                                   .failure = 1};
		e[i].by_result[STS_RESULT_CERT_HOST_MISMATCH] = 1;
		fake_store_add(&e[i]);
	}
	sts_strlcpy(d.domain, "a.example", sizeof(d.domain));
	assert_int_equal(report_store_delivery_put(NULL, &d, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(tlsrpt_reporter_start(f->r, err, sizeof(err)), 0);
	/* two days, an https and a mailto destination each */
	for (int i = 0; i < 300 && fake_send_count() < 4; i++)
		usleep(10 * 1000);
	usleep(50 * 1000); /* a report sent twice would show now */
	tlsrpt_reporter_stop(f->r);
	assert_int_equal(fake_send_count(), 4);
	assert_int_equal(fake_store_get(days[0], "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	assert_int_equal(fake_store_get(days[2], "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	assert_int_equal(fake_store_get(days[1], "a.example", &d), 1);
	assert_int_equal(d.attempts, 1);
	teardown(f);
}

#define SHARED "shared = { redis = \"127.0.0.1:6379\"; };\n"

/*
 * The daemon and "stsproxy report send" share the store: a report another
 * process is sending is not sent here now, and is tried again later.
 */
static void
rfc8460_5_3_another_process_sending(void **state)
{
	struct fixture *f = setup("");
	static const int held[] = {REPORT_CLAIM_HELD};
	struct report_delivery d;

	(void)state;
	fake_store_claims(held, 1);
	assert_int_equal(queue(f, "a.example"), 1);
	tlsrpt_reporter_drain(f->r); /* retry_for = 0: the one try */
	assert_int_equal(fake_send_count(), 0);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_string_equal(d.last_error, "being sent by other pid 1");
	teardown(f);
}

/* A report the other process recorded settled is never sent here. */
static void
rfc8460_5_3_settled_by_another_process(void **state)
{
	struct fixture *f = setup("");
	static const int settled[] = {REPORT_CLAIM_SETTLED};
	struct report_delivery d;

	(void)state;
	fake_store_claims(settled, 1);
	assert_int_equal(queue(f, "a.example"), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 0);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_string_equal(d.last_error, "recorded settled by another sender");
	teardown(f);
}

/*
 * The claim is renewed before each destination: one the other process
 * took over (this one's time ran out) goes to none of them from here. A
 * store that does not answer stops nobody, nor does this process's own
 * record of the report sent.
 */
static void
rfc8460_5_3_taken_over_before_sending(void **state)
{
	struct fixture *f = setup("");
	static const int over[] = {REPORT_CLAIM_OURS, REPORT_CLAIM_HELD, REPORT_CLAIM_SETTLED};
	static const int busy[] = {REPORT_CLAIM_OURS, -1, -1};
	static const int sent_here[] = {REPORT_CLAIM_OURS, REPORT_CLAIM_OURS, REPORT_CLAIM_SETTLED};

	(void)state;
	fake_store_claims(over, 3);
	assert_int_equal(queue(f, "a.example"), 1);
	tlsrpt_reporter_drain(f->r);
	assert_int_equal(fake_store_claimed(), 3);
	assert_int_equal(fake_send_count(), 0);
	teardown(f);

	f = setup("");
	fake_store_claims(busy, 3);
	assert_int_equal(queue(f, "a.example"), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 2);
	teardown(f);

	/* Recorded sent by this process at the first destination: the claim
	 * is over, and the second destination still gets the report. */
	f = setup("");
	fake_store_claims(sent_here, 3);
	assert_int_equal(queue(f, "a.example"), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_store_claimed(), 2);
	assert_int_equal(fake_send_count(), 2);
	teardown(f);
}

/* Several gateways: the gateway holding the lock sends, and marks the report sent. */
static void
rfc8460_5_3_shared_lock_holder_sends(void **state)
{
	struct fixture *f = setup_top("", SHARED);
	struct report_delivery d;

	(void)state;
	assert_int_equal(queue(f, "a.example"), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 2);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	/* Own rows published, the others' read before the report was built. */
	assert_true(fake_shared_count("push") >= 1);
	assert_true(fake_shared_count("merge") >= 1);
	assert_int_equal(fake_shared_count("sent"), 1);
	assert_string_equal(d.report_id, "20261203.a.example@gw.example");
	assert_string_equal(fake_store_last_gateway(), "(all)");
	teardown(f);
}

/*
 * Redis away just when the report went out: the mark that stops the other
 * gateways from sending it too is asked again until Redis takes it.
 */
static void
rfc8460_5_3_shared_mark_retried(void **state)
{
	struct fixture *f = setup_top("", SHARED);
	struct report_delivery d;

	(void)state;
	fake_shared_sent_fails(2);
	assert_int_equal(queue(f, "a.example"), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 2);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	assert_int_equal(fake_shared_count("sent"), 3);
	teardown(f);
}

/* A report another gateway sent is recorded skipped, never sent here. */
static void
rfc8460_5_3_shared_sent_by_another(void **state)
{
	struct fixture *f = setup_top("", SHARED);
	struct report_delivery d;

	(void)state;
	fake_shared_claim(TLSRPT_CLAIM_SENT, "gw2");
	assert_int_equal(queue(f, "a.example"), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 0);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SKIPPED);
	assert_string_equal(d.last_error, "sent by gateway gw2");
	assert_int_equal(fake_shared_count("sent"), 0);
	teardown(f);
}

/* A lock held by another gateway: not sent now, tried again later (the holder may die). */
static void
rfc8460_5_3_shared_held_by_another(void **state)
{
	struct fixture *f = setup_top("", SHARED);
	struct report_delivery d;

	(void)state;
	fake_shared_claim(TLSRPT_CLAIM_HELD, "gw3");
	assert_int_equal(queue(f, "a.example"), 1);
	tlsrpt_reporter_drain(f->r); /* retry_for = 0: the one try */
	assert_int_equal(fake_send_count(), 0);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_string_equal(d.last_error, "held by gateway gw3");
	teardown(f);
}

/* Redis down: with report.shared_wait 0 this gateway sends what it has at once. */
static void
rfc8460_5_3_shared_down_sends_own_counts(void **state)
{
	struct fixture *f = setup_top("shared_wait = 0;", SHARED);
	struct report_delivery d;
	json_t *rep;

	(void)state;
	fake_shared_down(true);
	assert_int_equal(queue(f, "a.example"), 1);
	assert_int_equal(tlsrpt_reporter_drain(f->r), 0);
	assert_int_equal(fake_send_count(), 2);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	/* One of several partial reports: its id names this gateway (section 4.1). */
	rep = report_of(0);
	assert_string_equal(json_string_value(json_object_get(rep, "report-id")),
	                    "20261203.gw1.a.example@gw.example");
	assert_string_equal(d.report_id, "20261203.gw1.a.example@gw.example");
	/* Not marked sent: the other gateways send their own partial reports. */
	assert_int_equal(fake_shared_count("sent"), 0);
	/* Built from this gateway's own rows only: the others report theirs. */
	assert_string_equal(fake_store_last_gateway(), "gw1");
	json_decref(rep);
	teardown(f);
}

/* Redis down within report.shared_wait: the report waits, nothing is sent yet. */
static void
rfc8460_5_3_shared_down_waits(void **state)
{
	struct fixture *f = setup_top("shared_wait = 3600;", SHARED);
	struct report_delivery d;

	(void)state;
	fake_shared_down(true);
	assert_int_equal(queue(f, "a.example"), 1);
	tlsrpt_reporter_drain(f->r);
	assert_int_equal(fake_send_count(), 0);
	assert_int_equal(fake_store_get(DAY, "a.example", &d), 1);
	assert_non_null(strstr(d.last_error, "report.shared_wait"));
	teardown(f);
}

/* A gateway without report.enable among others: its thread pushes its counts, sends nothing. */
static void
rfc8460_5_3_shared_push_only(void **state)
{
	char err[512];
	struct conf *c =
	    conf_load_string("listen = [ \"127.0.0.1:10025\" ];\n" SHARED, "mem", err, sizeof(err));
	int store = 0;
	struct tlsrpt_reporter_params p = {
	    .conf = c, .store = (struct report_store *)&store, .push_only = true};
	struct tlsrpt_reporter *r;

	(void)state;
	assert_non_null(c);
	fake_shared_reset();
	fake_send_reset();
	/* No organization, contact nor submitter: none is needed to push. */
	assert_non_null(r = tlsrpt_reporter_new(&p, err, sizeof(err)));
	assert_int_equal(tlsrpt_reporter_start(r, err, sizeof(err)), 0);
	for (int i = 0; i < 200 && fake_shared_count("push") == 0; i++)
		usleep(10 * 1000);
	tlsrpt_reporter_stop(r);
	assert_true(fake_shared_count("push") >= 1);
	assert_int_equal(fake_shared_count("claim"), 0);
	assert_int_equal(fake_send_count(), 0);
	tlsrpt_reporter_free(r);
	conf_free(c);
	/* Without a shared group there is nothing to push to. */
	c = conf_load_string("listen = [ \"127.0.0.1:10025\" ];\n", "mem", err, sizeof(err));
	p.conf = c;
	assert_null(tlsrpt_reporter_new(&p, err, sizeof(err)));
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8460_4_only_domains_with_failures),
	    cmocka_unit_test(rfc8460_4_4_report_counts_and_details),
	    cmocka_unit_test(rfc8460_5_3_mail_for_mailto),
	    cmocka_unit_test(rfc8460_4_every_domain_and_no_policy_found),
	    cmocka_unit_test(rfc8460_3_no_record_nothing_sent),
	    cmocka_unit_test(rfc8460_5_3_every_destination_failed),
	    cmocka_unit_test(size_limit),
	    cmocka_unit_test(resumed_after_restart),
	    cmocka_unit_test(show_text),
	    cmocka_unit_test(identity_required),
	    cmocka_unit_test(rfc8460_5_3_thread_reports_yesterday_and_stops),
	    cmocka_unit_test(rfc8460_4_1_missed_days_caught_up),
	    cmocka_unit_test(rfc8460_5_3_another_process_sending),
	    cmocka_unit_test(rfc8460_5_3_settled_by_another_process),
	    cmocka_unit_test(rfc8460_5_3_taken_over_before_sending),
	    cmocka_unit_test(rfc8460_5_3_shared_lock_holder_sends),
	    cmocka_unit_test(rfc8460_5_3_shared_mark_retried),
	    cmocka_unit_test(rfc8460_5_3_shared_sent_by_another),
	    cmocka_unit_test(rfc8460_5_3_shared_held_by_another),
	    cmocka_unit_test(rfc8460_5_3_shared_down_sends_own_counts),
	    cmocka_unit_test(rfc8460_5_3_shared_down_waits),
	    cmocka_unit_test(rfc8460_5_3_shared_push_only),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
