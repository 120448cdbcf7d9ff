// sources: policy/sts_report.c core/types.c core/log.c
/*
 * test_sts_report.c - the per-domain TLS result table behind TLS-RPT
 * (RFC 8460 section 4): counting, bounds, the UTC day rollover, and two
 * threads counting at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "policy/sts_report.h"

#define T0       1700000000                            /* 2023-11-14 22:13:20 UTC */
#define MIDNIGHT ((int64_t)T0 / 86400 * 86400 + 86400) /* 2023-11-15 00:00:00 UTC */

/* A copy of what the walk showed, to check after the lock is gone. */
struct seen {
	size_t n;
	struct {
		char domain[STS_REPORT_DOMAIN_LEN];
		char id[STS_REPORT_ID_LEN];
		enum sts_mode mode;
		enum sts_policy_type type;
		int64_t day;
		uint64_t success, failure, detail_other;
		uint64_t by_result[STS_RESULT_MAX];
		size_t n_details;
		struct sts_report_detail details[STS_REPORT_DETAILS_MAX];
	} d[8];
	uint64_t total_success, total_failure;
	uint64_t other_success, other_failure; /* the STS_REPORT_OTHER bucket */
	size_t stop_after;                     /* 0: never stop */
};

static int
collect(void *arg, const struct sts_report_entry *e)
{
	struct seen *s = arg;

	if (s->n < 8) {
		snprintf(s->d[s->n].domain, sizeof(s->d[s->n].domain), "%s", e->domain);
		snprintf(s->d[s->n].id, sizeof(s->d[s->n].id), "%s", e->policy_id);
		s->d[s->n].mode = e->mode;
		s->d[s->n].type = e->type;
		s->d[s->n].day = e->day;
		s->d[s->n].success = e->success;
		s->d[s->n].failure = e->failure;
		s->d[s->n].detail_other = e->detail_other;
		memcpy(s->d[s->n].by_result, e->by_result, sizeof(e->by_result));
		s->d[s->n].n_details = e->n_details;
		if (e->n_details > 0)
			memcpy(s->d[s->n].details, e->details, e->n_details * sizeof(*e->details));
	}
	if (strcmp(e->domain, STS_REPORT_OTHER) == 0) {
		s->other_success += e->success;
		s->other_failure += e->failure;
	}
	s->n++;
	s->total_success += e->success;
	s->total_failure += e->failure;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

/* find - the index of domain in s, or -1. */
static int
find(const struct seen *s, const char *domain)
{
	for (size_t i = 0; i < s->n && i < 8; i++)
		if (strcmp(s->d[i].domain, domain) == 0)
			return (int)i;
	return -1;
}

static void
rfc8460_4_4_success_and_failure_counts(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct seen s = {0};
	int i;

	(void)state;
	assert_non_null(r);
	assert_int_equal(sts_report_success(r, "example.com", STS_PTYPE_STS, "id1",
	                                    STS_MODE_ENFORCE, "mx1.example.com", T0),
	                 0);
	assert_int_equal(sts_report_success(r, "Example.COM", STS_PTYPE_STS, "id2",
	                                    STS_MODE_TESTING, NULL, T0 + 1),
	                 0);
	assert_int_equal(sts_report_failure(r, "example.com", STS_PTYPE_STS, "id2",
	                                    STS_MODE_TESTING, STS_RESULT_STARTTLS_NOT_SUPPORTED,
	                                    "mx1.example.com", "198.51.100.7", T0 + 2),
	                 0);
	assert_int_equal(sts_report_failure(r, "example.org", STS_PTYPE_STS, NULL, STS_MODE_ENFORCE,
	                                    STS_RESULT_CERT_EXPIRED, NULL, NULL, T0 + 3),
	                 0);
	assert_int_equal(sts_report_foreach(r, collect, &s), 2);
	assert_int_equal(s.n, 2);

	i = find(&s, "example.com");
	assert_true(i >= 0);
	assert_string_equal(s.d[i].id, "id2"); /* the last seen */
	assert_int_equal(s.d[i].mode, STS_MODE_TESTING);
	assert_int_equal(s.d[i].day, MIDNIGHT - 86400);
	assert_int_equal(s.d[i].success, 2);
	assert_int_equal(s.d[i].failure, 1);
	assert_int_equal(s.d[i].by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1);
	assert_int_equal(s.d[i].by_result[STS_RESULT_OK], 0);
	assert_int_equal(s.d[i].n_details, 1);
	assert_int_equal(s.d[i].details[0].result, STS_RESULT_STARTTLS_NOT_SUPPORTED);
	assert_string_equal(s.d[i].details[0].mx_host, "mx1.example.com");
	assert_string_equal(s.d[i].details[0].ip, "198.51.100.7");
	assert_int_equal(s.d[i].details[0].count, 1);

	i = find(&s, "example.org");
	assert_true(i >= 0);
	assert_string_equal(s.d[i].id, "");
	assert_int_equal(s.d[i].success, 0);
	assert_int_equal(s.d[i].failure, 1);
	assert_int_equal(s.d[i].by_result[STS_RESULT_CERT_EXPIRED], 1);
	assert_string_equal(s.d[i].details[0].mx_host, "");
	sts_report_free(r);
}

static void
rfc8460_4_4_details_by_result_and_mx(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct seen s = {0};

	(void)state;
	assert_non_null(r);
	/* Same (result, MX, address) three times, in two spellings of the MX name. */
	for (int k = 0; k < 3; k++)
		assert_int_equal(sts_report_failure(r, "example.net", STS_PTYPE_STS, "a",
		                                    STS_MODE_ENFORCE, STS_RESULT_CERT_HOST_MISMATCH,
		                                    k == 1 ? "MX1.example.net" : "mx1.example.net",
		                                    "198.51.100.1", T0),
		                 0);
	/* Another result at the same MX, and the same result at another MX. */
	sts_report_failure(r, "example.net", STS_PTYPE_STS, "a", STS_MODE_ENFORCE,
	                   STS_RESULT_CERT_NOT_TRUSTED, "mx1.example.net", "198.51.100.1", T0);
	sts_report_failure(r, "example.net", STS_PTYPE_STS, "a", STS_MODE_ENFORCE,
	                   STS_RESULT_CERT_HOST_MISMATCH, "mx2.example.net", "198.51.100.2", T0);
	sts_report_foreach(r, collect, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.d[0].failure, 5);
	assert_int_equal(s.d[0].by_result[STS_RESULT_CERT_HOST_MISMATCH], 4);
	assert_int_equal(s.d[0].by_result[STS_RESULT_CERT_NOT_TRUSTED], 1);
	assert_int_equal(s.d[0].n_details, 3);
	assert_int_equal(s.d[0].details[0].count, 3);
	assert_string_equal(s.d[0].details[0].mx_host, "mx1.example.net");
	assert_int_equal(s.d[0].details[1].result, STS_RESULT_CERT_NOT_TRUSTED);
	assert_string_equal(s.d[0].details[2].mx_host, "mx2.example.net");
	assert_int_equal(s.d[0].detail_other, 0);
	sts_report_free(r);
}

static void
rfc8460_4_4_details_bounded(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct seen s = {0};
	char mx[64];

	(void)state;
	assert_non_null(r);
	for (int k = 0; k < STS_REPORT_DETAILS_MAX + 5; k++) {
		snprintf(mx, sizeof(mx), "mx%d.example.com", k);
		assert_int_equal(sts_report_failure(r, "example.com", STS_PTYPE_STS, "a",
		                                    STS_MODE_ENFORCE, STS_RESULT_VALIDATION_FAILURE,
		                                    mx, NULL, T0),
		                 0);
	}
	/* A known row still counts once the table of rows is full. */
	sts_report_failure(r, "example.com", STS_PTYPE_STS, "a", STS_MODE_ENFORCE,
	                   STS_RESULT_VALIDATION_FAILURE, "mx0.example.com", NULL, T0);
	sts_report_foreach(r, collect, &s);
	assert_int_equal(s.d[0].n_details, STS_REPORT_DETAILS_MAX);
	assert_int_equal(s.d[0].detail_other, 5);
	assert_int_equal(s.d[0].details[0].count, 2);
	assert_int_equal(s.d[0].failure, STS_REPORT_DETAILS_MAX + 6);
	assert_int_equal(s.d[0].by_result[STS_RESULT_VALIDATION_FAILURE],
	                 STS_REPORT_DETAILS_MAX + 6);
	sts_report_free(r);
}

static void
rfc8460_4_domains_bounded_other_bucket(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct seen s = {0};
	char name[64];
	size_t n;

	(void)state;
	assert_non_null(r);
	for (int k = 0; k < STS_REPORT_DOMAINS_MAX + 3; k++) {
		snprintf(name, sizeof(name), "d%d.example", k);
		assert_int_equal(
		    sts_report_success(r, name, STS_PTYPE_STS, "x", STS_MODE_TESTING, NULL, T0), 0);
	}
	/* A domain already in the table is still counted under its own name. */
	assert_int_equal(
	    sts_report_success(r, "d0.example", STS_PTYPE_STS, "x", STS_MODE_TESTING, NULL, T0), 0);
	assert_int_equal(sts_report_failure(r, "late.example", STS_PTYPE_STS, "y", STS_MODE_ENFORCE,
	                                    STS_RESULT_DANE_REQUIRED, "mx.late.example", NULL, T0),
	                 0);
	n = sts_report_foreach(r, collect, &s);
	assert_int_equal(n, STS_REPORT_DOMAINS_MAX + 1);
	assert_int_equal(s.total_success, STS_REPORT_DOMAINS_MAX + 4);
	assert_int_equal(s.total_failure, 1);

	/* The walk stops when the callback asks; the overflow bucket is last. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(sts_report_foreach(r, collect, &s), 2);
	sts_report_free(r);
}

static void
rfc8460_4_other_bucket_contents(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	char name[64];
	struct seen s = {0};

	(void)state;
	assert_non_null(r);
	for (int k = 0; k < STS_REPORT_DOMAINS_MAX; k++) {
		snprintf(name, sizeof(name), "d%d.example", k);
		sts_report_success(r, name, STS_PTYPE_STS, "x", STS_MODE_TESTING, NULL, T0);
	}
	sts_report_failure(r, "late.example", STS_PTYPE_STS, "y", STS_MODE_ENFORCE,
	                   STS_RESULT_DANE_REQUIRED, "mx.late.example", NULL, T0);
	sts_report_success(r, "later.example", STS_PTYPE_STS, "z", STS_MODE_ENFORCE, NULL, T0);
	sts_report_foreach(r, collect, &s);
	assert_int_equal(s.n, STS_REPORT_DOMAINS_MAX + 1);
	assert_int_equal(s.other_success, 1);
	assert_int_equal(s.other_failure, 1);

	/* A new day starts with room again. */
	assert_int_equal(sts_report_rollover(r, T0 + 86400), 1);
	memset(&s, 0, sizeof(s));
	sts_report_success(r, "later.example", STS_PTYPE_STS, "z", STS_MODE_ENFORCE, NULL,
	                   T0 + 86400);
	assert_int_equal(sts_report_foreach(r, collect, &s), 1);
	assert_string_equal(s.d[0].domain, "later.example");
	assert_int_equal(s.other_success, 0);
	sts_report_free(r);
}

static void
rfc8460_4_invalid_arguments(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	char long_name[300];
	struct seen s = {0};

	(void)state;
	assert_non_null(r);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(
	    sts_report_success(r, NULL, STS_PTYPE_STS, "a", STS_MODE_ENFORCE, NULL, T0), -1);
	assert_int_equal(sts_report_success(r, "", STS_PTYPE_STS, "a", STS_MODE_ENFORCE, NULL, T0),
	                 -1);
	assert_int_equal(
	    sts_report_success(r, long_name, STS_PTYPE_STS, "a", STS_MODE_ENFORCE, NULL, T0), -1);
	long_name[253] = '\0';
	assert_int_equal(
	    sts_report_success(r, long_name, STS_PTYPE_STS, "a", STS_MODE_ENFORCE, NULL, T0), 0);
	assert_int_equal(sts_report_failure(r, "example.com", STS_PTYPE_STS, "a", STS_MODE_ENFORCE,
	                                    STS_RESULT_OK, NULL, NULL, T0),
	                 -1);
	assert_int_equal(sts_report_failure(r, "example.com", STS_PTYPE_STS, "a", STS_MODE_ENFORCE,
	                                    STS_RESULT_MAX, NULL, NULL, T0),
	                 -1);
	assert_int_equal(
	    sts_report_success(NULL, "example.com", STS_PTYPE_STS, "a", STS_MODE_ENFORCE, NULL, T0),
	    -1);
	/* An over-long id is cut to the 32 characters RFC 8461 section 3.1 allows. */
	assert_int_equal(sts_report_success(r, "example.com", STS_PTYPE_STS,
	                                    "0123456789012345678901234567890123456789",
	                                    STS_MODE_ENFORCE, NULL, T0),
	                 0);
	sts_report_foreach(r, collect, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.d[find(&s, "example.com")].id, "01234567890123456789012345678901");
	sts_report_free(r);
	sts_report_free(NULL);
}

static void
rfc8460_4_rollover_at_utc_midnight(void **state)
{
	struct sts_report *r = sts_report_new(MIDNIGHT - 10);
	struct seen s = {0};

	(void)state;
	assert_non_null(r);
	assert_int_equal(sts_report_day_of(MIDNIGHT - 1), MIDNIGHT - 86400);
	assert_int_equal(sts_report_day_of(MIDNIGHT), MIDNIGHT);
	assert_int_equal(sts_report_day_of(-1), -86400);
	assert_int_equal(sts_report_day(r), MIDNIGHT - 86400);

	sts_report_success(r, "example.com", STS_PTYPE_STS, "a", STS_MODE_ENFORCE, NULL,
	                   MIDNIGHT - 5);
	assert_int_equal(sts_report_rollover(r, MIDNIGHT - 1), 0);
	assert_int_equal(sts_report_foreach_yesterday(r, collect, &s), 0);
	assert_int_equal(sts_report_rollover(r, MIDNIGHT), 1);
	assert_int_equal(sts_report_day(r), MIDNIGHT);
	assert_int_equal(sts_report_rollover(r, MIDNIGHT + 3600), 0);
	assert_int_equal(sts_report_foreach(r, collect, &s), 0);
	assert_int_equal(sts_report_foreach_yesterday(r, collect, &s), 1);
	assert_string_equal(s.d[0].domain, "example.com");
	assert_int_equal(s.d[0].success, 1);
	assert_int_equal(s.d[0].day, MIDNIGHT - 86400);

	/* A clock stepped back counts into the current day, never into a new one. */
	sts_report_success(r, "example.com", STS_PTYPE_STS, "a", STS_MODE_ENFORCE, NULL,
	                   MIDNIGHT - 100);
	assert_int_equal(sts_report_rollover(r, MIDNIGHT - 100), 0);
	assert_int_equal(sts_report_day(r), MIDNIGHT);

	/* A count after the next midnight starts the new day by itself; the
	 * day before yesterday is dropped. */
	sts_report_failure(r, "example.org", STS_PTYPE_STS, "b", STS_MODE_ENFORCE,
	                   STS_RESULT_CERT_EXPIRED, NULL, NULL, MIDNIGHT + 86400 + 1);
	assert_int_equal(sts_report_day(r), MIDNIGHT + 86400);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sts_report_foreach_yesterday(r, collect, &s), 1);
	assert_int_equal(s.d[0].day, MIDNIGHT);
	assert_int_equal(s.d[0].success, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sts_report_foreach(r, collect, &s), 1);
	assert_string_equal(s.d[0].domain, "example.org");
	assert_int_equal(s.d[0].failure, 1);

	/* After a gap of days the last table is kept as yesterday with its own day. */
	assert_int_equal(sts_report_rollover(r, MIDNIGHT + 5 * 86400 + 7), 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sts_report_foreach_yesterday(r, collect, &s), 1);
	assert_int_equal(s.d[0].day, MIDNIGHT + 86400);
	sts_report_free(r);
}

#define THREAD_COUNTS 20000

struct worker_arg {
	struct sts_report *r;
	int which;
};

static void *
count_thread(void *p)
{
	struct worker_arg *a = p;
	char name[32];

	for (int k = 0; k < THREAD_COUNTS; k++) {
		snprintf(name, sizeof(name), "d%d.example", k % 50);
		if (a->which == 0)
			sts_report_success(a->r, name, STS_PTYPE_STS, "t", STS_MODE_ENFORCE, NULL,
			                   T0);
		else
			sts_report_failure(a->r, name, STS_PTYPE_STS, "t", STS_MODE_ENFORCE,
			                   STS_RESULT_CERT_NOT_TRUSTED, "mx.example", "10.0.0.1",
			                   T0);
	}
	return NULL;
}

static void
rfc8460_4_two_threads_count_concurrently(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct worker_arg a[2] = {{r, 0}, {r, 1}};
	pthread_t t[2];
	struct seen s = {0};

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, count_thread, &a[i]), 0);
	/* Walks and rollovers on the same day race with the counting. */
	for (int k = 0; k < 50; k++) {
		struct seen tmp = {0};

		sts_report_foreach(r, collect, &tmp);
		assert_int_equal(sts_report_rollover(r, T0), 0);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(sts_report_foreach(r, collect, &s), 50);
	assert_int_equal(s.total_success, THREAD_COUNTS);
	assert_int_equal(s.total_failure, THREAD_COUNTS);
	sts_report_free(r);
}

/* RFC 8460 section 4.4: one domain, two policy types (MTA-STS and DANE), counted apart. */
static void
rfc8460_4_4_policy_types_apart(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct seen s = {0};
	int sts = -1, tlsa = -1;

	(void)state;
	assert_non_null(r);
	assert_int_equal(
	    sts_report_success(r, "example.com", STS_PTYPE_STS, "id1", STS_MODE_ENFORCE, NULL, T0),
	    0);
	assert_int_equal(sts_report_success(r, "example.com", STS_PTYPE_TLSA, "", STS_MODE_ENFORCE,
	                                    "mx1.example.com", T0),
	                 0);
	assert_int_equal(sts_report_failure(r, "Example.com", STS_PTYPE_TLSA, NULL,
	                                    STS_MODE_ENFORCE, STS_RESULT_TLSA_INVALID,
	                                    "mx1.example.com", "10.0.25.2", T0),
	                 0);
	assert_int_equal(sts_report_foreach(r, collect, &s), 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(s.d[i].domain, "example.com");
		if (s.d[i].type == STS_PTYPE_STS)
			sts = (int)i;
		else if (s.d[i].type == STS_PTYPE_TLSA)
			tlsa = (int)i;
	}
	assert_true(sts >= 0 && tlsa >= 0);
	assert_int_equal(s.d[sts].success, 1);
	assert_int_equal(s.d[sts].failure, 0);
	assert_string_equal(s.d[sts].id, "id1");
	assert_int_equal(s.d[tlsa].success, 1);
	assert_int_equal(s.d[tlsa].failure, 1);
	assert_int_equal(s.d[tlsa].by_result[STS_RESULT_TLSA_INVALID], 1);
	assert_string_equal(s.d[tlsa].id, "");
	sts_report_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8460_4_4_success_and_failure_counts),
	    cmocka_unit_test(rfc8460_4_4_details_by_result_and_mx),
	    cmocka_unit_test(rfc8460_4_4_details_bounded),
	    cmocka_unit_test(rfc8460_4_domains_bounded_other_bucket),
	    cmocka_unit_test(rfc8460_4_other_bucket_contents),
	    cmocka_unit_test(rfc8460_4_invalid_arguments),
	    cmocka_unit_test(rfc8460_4_rollover_at_utc_midnight),
	    cmocka_unit_test(rfc8460_4_two_threads_count_concurrently),
	    cmocka_unit_test(rfc8460_4_4_policy_types_apart),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
