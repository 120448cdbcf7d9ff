// sources: policy/tlsrpt_sched.c
/*
 * test_tlsrpt_sched.c - the daily run of TLS-RPT reports (RFC 8460
 * sections 4.1 and 5.3) across day boundaries and clock steps, the retry
 * backoff, and the state machine of one delivery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "policy/tlsrpt_sched.h"

#define D    86400
#define DAY0 1796169600 /* 2026-12-02 00:00:00 UTC */
#define DAY1 (DAY0 + D) /* 2026-12-03 */
#define DAY2 (DAY1 + D) /* 2026-12-04 */
#define DAY3 (DAY2 + D) /* 2026-12-05 */

static void
rfc8460_4_1_day_of(void **state)
{
	(void)state;
	assert_int_equal(tlsrpt_sched_day_of(DAY1), DAY1);
	assert_int_equal(tlsrpt_sched_day_of(DAY1 + D - 1), DAY1);
	assert_int_equal(tlsrpt_sched_day_of(DAY1 - 1), DAY0);
	assert_int_equal(tlsrpt_sched_day_of(0), 0);
	assert_int_equal(tlsrpt_sched_day_of(-1), -D);
}

static void
rfc8460_5_3_next_run(void **state)
{
	static const struct {
		const char *name;
		int64_t now, done, delay;
		int64_t want_at, want_day;
	} cases[] = {
	    /* nothing reported yet: yesterday goes after today's midnight + delay */
	    {"first start, in the morning: yesterday, due already", DAY2 + 3600 * 9, TLSRPT_NO_DAY,
	     600, DAY2 + 600, DAY1},
	    {"first start, before the delay: wait for it", DAY2 + 10, TLSRPT_NO_DAY, 600,
	     DAY2 + 600, DAY1},
	    {"first start at midnight sharp, no delay", DAY2, TLSRPT_NO_DAY, 0, DAY2, DAY1},
	    /* yesterday done: the next run reports today, after tomorrow's midnight */
	    {"yesterday done: tomorrow", DAY2 + 3600, DAY1, 1800, DAY3 + 1800, DAY2},
	    {"one second before midnight, yesterday done", DAY3 - 1, DAY1, 0, DAY3, DAY2},
	    {"crossing midnight: the day just ended is due", DAY3, DAY1, 0, DAY3, DAY2},
	    {"crossing midnight, delay pending", DAY3 + 5, DAY1, 3600, DAY3 + 3600, DAY2},
	    /* a long outage: only the day before today, no catching up */
	    {"down for days: only yesterday", DAY3 + 7200, DAY0 - 5 * D, 60, DAY3 + 60, DAY2},
	    /* the clock steps back */
	    {"clock back within the day: no second run", DAY2 + 100, DAY1, 0, DAY3, DAY2},
	    {"clock back over midnight: the done day is not repeated", DAY2 - 600, DAY1, 0, DAY3,
	     DAY2},
	    {"clock back two days: wait for the day after the done one", DAY0 + 3600, DAY2, 5,
	     DAY3 + D + 5, DAY3},
	    /* the delay is bounded to the day */
	    {"negative delay is none", DAY2 + 1, DAY0, -50, DAY2, DAY1},
	    {"delay of a day or more is cut", DAY2 + 1, DAY0, 2 * D, DAY2 + D - 1, DAY1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t day = -1,
		        at = tlsrpt_sched_next(cases[i].now, cases[i].done, cases[i].delay, &day);

		if (at != cases[i].want_at || day != cases[i].want_day)
			fail_msg("%s: at %lld day %lld, want at %lld day %lld", cases[i].name,
			         (long long)at, (long long)day, (long long)cases[i].want_at,
			         (long long)cases[i].want_day);
		/* never a day that is not over when the run is due */
		assert_true(day + D <= at);
	}
}

static void
rfc8460_5_3_backoff(void **state)
{
	(void)state;
	assert_int_equal(tlsrpt_sched_backoff(1, 300), 300);
	assert_int_equal(tlsrpt_sched_backoff(2, 300), 600);
	assert_int_equal(tlsrpt_sched_backoff(3, 300), 1200);
	assert_int_equal(tlsrpt_sched_backoff(7, 300), 19200);
	assert_int_equal(tlsrpt_sched_backoff(8, 300), TLSRPT_RETRY_CAP);
	assert_int_equal(tlsrpt_sched_backoff(4000000000u, 300), TLSRPT_RETRY_CAP);
	assert_int_equal(tlsrpt_sched_backoff(0, 300), 300);
	assert_int_equal(tlsrpt_sched_backoff(1, 0), 1);
	assert_int_equal(tlsrpt_sched_backoff(3, 1), 4);
	assert_int_equal(tlsrpt_sched_backoff(1, 100000), TLSRPT_RETRY_CAP);
}

static void
rfc8460_5_3_attempt_delivered_first(void **state)
{
	struct tlsrpt_retry r = {.first = 300, .span = 86400};
	struct tlsrpt_attempt a;

	(void)state;
	tlsrpt_attempt_init(&a, DAY2 + 60);
	assert_false(tlsrpt_attempt_due(&a, DAY2 + 59));
	assert_true(tlsrpt_attempt_due(&a, DAY2 + 60));
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_DELIVERED, DAY2 + 61, &r),
	                 TLSRPT_S_DELIVERED);
	assert_int_equal(a.attempts, 1);
	assert_false(tlsrpt_attempt_due(&a, DAY3));
	/* a final state does not move */
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_PERM, DAY2 + 62, &r),
	                 TLSRPT_S_DELIVERED);
	assert_int_equal(a.attempts, 1);
}

static void
rfc8460_5_3_attempt_retry_then_delivered(void **state)
{
	struct tlsrpt_retry r = {.first = 300, .span = 86400};
	struct tlsrpt_attempt a;
	int64_t t = DAY2;

	(void)state;
	tlsrpt_attempt_init(&a, t);
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_TEMP, t, &r), TLSRPT_S_PENDING);
	assert_int_equal(a.next_at, t + 300);
	assert_int_equal(a.first_at, t);
	assert_false(tlsrpt_attempt_due(&a, t + 299));
	t = a.next_at;
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_TEMP, t, &r), TLSRPT_S_PENDING);
	assert_int_equal(a.next_at, t + 600);
	t = a.next_at;
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_DELIVERED, t, &r),
	                 TLSRPT_S_DELIVERED);
	assert_int_equal(a.attempts, 3);
	assert_int_equal(a.first_at, DAY2);
}

static void
rfc8460_5_3_attempt_gives_up_after_span(void **state)
{
	struct tlsrpt_retry r = {.first = 300, .span = 86400};
	struct tlsrpt_attempt a;
	int64_t t = DAY2;
	unsigned n = 0;

	(void)state;
	tlsrpt_attempt_init(&a, t);
	while (tlsrpt_attempt_result(&a, TLSRPT_OUT_TEMP, t, &r) == TLSRPT_S_PENDING) {
		assert_true(a.next_at <= DAY2 + 86400);
		t = a.next_at;
		n++;
		assert_true(n < 100);
	}
	assert_int_equal(a.state, TLSRPT_S_FAILED);
	/* 300 ... 19200, then 6 h steps: every attempt within the day */
	assert_true(t <= DAY2 + 86400);
	assert_int_equal(a.attempts, n + 1);
	assert_true(a.attempts >= 8 && a.attempts <= 12);
}

static void
rfc8460_5_3_attempt_no_retry_window(void **state)
{
	struct tlsrpt_retry r = {.first = 300, .span = 0};
	struct tlsrpt_attempt a;

	(void)state;
	tlsrpt_attempt_init(&a, DAY2);
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_TEMP, DAY2, &r), TLSRPT_S_FAILED);
	assert_int_equal(a.attempts, 1);
}

static void
rfc8460_5_3_attempt_permanent(void **state)
{
	struct tlsrpt_retry r = {.first = 300, .span = 86400};
	struct tlsrpt_attempt a;

	(void)state;
	tlsrpt_attempt_init(&a, DAY2);
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_TEMP, DAY2, &r), TLSRPT_S_PENDING);
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_PERM, DAY2 + 300, &r),
	                 TLSRPT_S_FAILED);
	assert_int_equal(a.attempts, 2);
}

static void
rfc8460_5_3_attempt_too_big(void **state)
{
	struct tlsrpt_retry r = {.first = 300, .span = 86400};
	struct tlsrpt_attempt a;

	(void)state;
	tlsrpt_attempt_init(&a, DAY2);
	assert_int_equal(tlsrpt_attempt_result(&a, TLSRPT_OUT_TOO_BIG, DAY2, &r), TLSRPT_S_SKIPPED);
	assert_int_equal(a.attempts, 0);
	assert_false(tlsrpt_attempt_due(&a, DAY3));
}

static void
names(void **state)
{
	(void)state;
	assert_string_equal(tlsrpt_state_name(TLSRPT_S_PENDING), "pending");
	assert_string_equal(tlsrpt_state_name(TLSRPT_S_SKIPPED), "skipped");
	assert_string_equal(tlsrpt_state_name((enum tlsrpt_state)99), "pending");
	assert_string_equal(tlsrpt_outcome_name(TLSRPT_OUT_TEMP), "temp-failure");
	assert_string_equal(tlsrpt_outcome_name((enum tlsrpt_outcome)99), "perm-failure");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8460_4_1_day_of),
	    cmocka_unit_test(rfc8460_5_3_next_run),
	    cmocka_unit_test(rfc8460_5_3_backoff),
	    cmocka_unit_test(rfc8460_5_3_attempt_delivered_first),
	    cmocka_unit_test(rfc8460_5_3_attempt_retry_then_delivered),
	    cmocka_unit_test(rfc8460_5_3_attempt_gives_up_after_span),
	    cmocka_unit_test(rfc8460_5_3_attempt_no_retry_window),
	    cmocka_unit_test(rfc8460_5_3_attempt_permanent),
	    cmocka_unit_test(rfc8460_5_3_attempt_too_big),
	    cmocka_unit_test(names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
