// sources: policy/tlsrpt_queue.c policy/tlsrpt_sched.c core/util.c core/log.c core/types.c
/*
 * test_tlsrpt_queue.c - the delivery state machine of TLS-RPT reports
 * (RFC 8460 section 5.3) over a scripted transport and a fake clock:
 * first-time delivery, retries with backoff until the endpoint is back,
 * giving up, several destinations, no record, a report too big, a stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/tlsrpt_queue.h"

#define T0 1796256000 /* 2026-12-03 00:00:00 UTC */

/* The scripted world: the clock, what prepare and deliver answer, what was recorded. */
static struct {
	int64_t now;
	int64_t cost; /* seconds one delivery takes */
	enum tlsrpt_outcome prep[8];
	size_t n_prep, i_prep;
	size_t n_uri;
	enum tlsrpt_outcome script[4][16]; /* per destination, per attempt */
	size_t tries[4];
	int64_t tried_at[4][16];
	unsigned attempted, settled;
	enum tlsrpt_job_state last_state;
	int64_t last_next;
	unsigned sent_records;
	int stop;
} w;

static int64_t
now_fn(void)
{
	return w.now;
}

static enum tlsrpt_outcome
fake_prepare(void *arg, struct tlsrpt_job *j, char *why, size_t whylen)
{
	enum tlsrpt_outcome o = w.i_prep < w.n_prep ? w.prep[w.i_prep] : TLSRPT_OUT_DELIVERED;

	(void)arg;
	w.i_prep++;
	snprintf(why, whylen, "prepare %s", tlsrpt_outcome_name(o));
	if (o == TLSRPT_OUT_DELIVERED || o == TLSRPT_OUT_TOO_BIG) {
		j->n_dest = w.n_uri;
		for (size_t i = 0; i < w.n_uri; i++) {
			snprintf(j->dest[i].uri, sizeof(j->dest[i].uri), "https://r%zu.example/",
			         i);
			j->dest[i].https = 1;
			j->dest[i].body = malloc(10);
			j->dest[i].len = 10;
		}
	}
	return o;
}

static enum tlsrpt_outcome
fake_deliver(void *arg, const struct tlsrpt_job *j, const struct tlsrpt_dest *d, char *why,
             size_t whylen)
{
	size_t i = (size_t)(d - j->dest), n = w.tries[i]++;
	enum tlsrpt_outcome o = w.script[i][n];

	(void)arg;
	w.tried_at[i][n] = w.now;
	w.now += w.cost;
	snprintf(why, whylen, "try %zu", n);
	return o;
}

static void
fake_attempted(void *arg, const struct tlsrpt_job *j, const struct tlsrpt_dest *d,
               enum tlsrpt_outcome o, enum tlsrpt_state s, const char *why)
{
	(void)arg;
	(void)j;
	(void)d;
	(void)o;
	(void)s;
	(void)why;
	w.attempted++;
}

static void
fake_settled(void *arg, const struct tlsrpt_job *j, int64_t next_try)
{
	(void)arg;
	w.settled++;
	w.last_state = j->state;
	w.last_next = next_try;
	if (j->state == TLSRPT_JOB_SENT)
		w.sent_records++;
}

static int
fake_stopping(void *arg)
{
	(void)arg;
	return w.stop;
}

static const struct tlsrpt_queue_ops ops = {
    .prepare = fake_prepare,
    .deliver = fake_deliver,
    .attempted = fake_attempted,
    .settled = fake_settled,
    .stopping = fake_stopping,
};

static struct tlsrpt_queue *
setup(size_t n_uri, int64_t first, int64_t span)
{
	struct tlsrpt_retry r = {.first = first, .span = span};
	struct tlsrpt_queue *q;

	memset(&w, 0, sizeof(w));
	w.now = T0 + 86400 + 60;
	w.n_uri = n_uri;
	assert_non_null(q = tlsrpt_queue_new(&ops, &r));
	assert_int_equal(tlsrpt_queue_add(q, "example.test", T0, T0 + 86399, w.now, 0), 1);
	return q;
}

/* run - step until the queue is empty, jumping the clock to each due time. */
static void
run(struct tlsrpt_queue *q)
{
	for (int guard = 0; tlsrpt_queue_len(q) > 0; guard++) {
		int64_t next = tlsrpt_queue_step(q, now_fn);

		assert_true(guard < 1000);
		if (next != INT64_MAX && next > w.now)
			w.now = next;
	}
}

static void
rfc8460_5_3_delivered_first_time(void **state)
{
	struct tlsrpt_queue *q = setup(1, 300, 86400);

	(void)state;
	w.script[0][0] = TLSRPT_OUT_DELIVERED;
	assert_int_equal(tlsrpt_queue_add(q, "example.test", T0, T0 + 86399, w.now, 0), 0);
	run(q);
	assert_int_equal(w.tries[0], 1);
	assert_int_equal(w.attempted, 1);
	assert_int_equal(w.sent_records, 1);
	assert_int_equal(w.last_state, TLSRPT_JOB_SENT);
	tlsrpt_queue_free(q);
}

static void
rfc8460_5_3_endpoint_down_then_back(void **state)
{
	struct tlsrpt_queue *q = setup(1, 300, 86400);
	int64_t start;

	(void)state;
	start = w.now;
	w.script[0][0] = TLSRPT_OUT_TEMP;
	w.script[0][1] = TLSRPT_OUT_TEMP;
	w.script[0][2] = TLSRPT_OUT_DELIVERED;
	/* nothing happens before the next attempt is due */
	assert_int_equal(tlsrpt_queue_step(q, now_fn), start + 300);
	assert_int_equal(w.last_state, TLSRPT_JOB_PENDING);
	assert_int_equal(w.last_next, start + 300);
	w.now = start + 299;
	assert_int_equal(tlsrpt_queue_step(q, now_fn), start + 300);
	assert_int_equal(w.tries[0], 1);
	run(q);
	assert_int_equal(w.tries[0], 3);
	assert_int_equal(w.tried_at[0][1], start + 300);
	assert_int_equal(w.tried_at[0][2], start + 300 + 600);
	assert_int_equal(w.sent_records, 1);
	assert_int_equal(w.last_state, TLSRPT_JOB_SENT);
	tlsrpt_queue_free(q);
}

static void
rfc8460_5_3_gives_up(void **state)
{
	struct tlsrpt_queue *q = setup(1, 10, 100);

	(void)state;
	for (size_t i = 0; i < 16; i++)
		w.script[0][i] = TLSRPT_OUT_TEMP;
	run(q);
	/* 0, 10, 30, 70: the next would be at 150 > 100 */
	assert_int_equal(w.tries[0], 4);
	assert_int_equal(w.last_state, TLSRPT_JOB_FAILED);
	assert_int_equal(w.sent_records, 0);
	tlsrpt_queue_free(q);
}

static void
rfc8460_5_3_two_destinations(void **state)
{
	struct tlsrpt_queue *q = setup(2, 10, 1000);

	(void)state;
	w.script[0][0] = TLSRPT_OUT_DELIVERED;
	w.script[1][0] = TLSRPT_OUT_TEMP;
	w.script[1][1] = TLSRPT_OUT_PERM;
	run(q);
	assert_int_equal(w.tries[0], 1);
	assert_int_equal(w.tries[1], 2);
	/* recorded sent once, as soon as the first destination took it */
	assert_int_equal(w.sent_records, 1);
	assert_int_equal(w.last_state, TLSRPT_JOB_SENT);
	tlsrpt_queue_free(q);
}

static void
rfc8460_5_3_all_destinations_fail(void **state)
{
	struct tlsrpt_queue *q = setup(2, 10, 1000);

	(void)state;
	w.script[0][0] = TLSRPT_OUT_PERM;
	w.script[1][0] = TLSRPT_OUT_PERM;
	run(q);
	assert_int_equal(w.last_state, TLSRPT_JOB_FAILED);
	assert_int_equal(w.attempted, 2);
	tlsrpt_queue_free(q);
}

static void
rfc8460_3_no_record_nothing_sent(void **state)
{
	struct tlsrpt_queue *q = setup(1, 10, 1000);

	(void)state;
	w.prep[0] = TLSRPT_OUT_PERM;
	w.n_prep = 1;
	run(q);
	assert_int_equal(w.tries[0], 0);
	assert_int_equal(w.last_state, TLSRPT_JOB_SKIPPED);
	assert_int_equal(w.attempted, 1);
	tlsrpt_queue_free(q);
}

static void
rfc8460_3_lookup_tempfail_then_found(void **state)
{
	struct tlsrpt_queue *q = setup(1, 10, 1000);
	int64_t start = w.now;

	(void)state;
	w.prep[0] = TLSRPT_OUT_TEMP;
	w.prep[1] = TLSRPT_OUT_DELIVERED;
	w.n_prep = 2;
	w.script[0][0] = TLSRPT_OUT_DELIVERED;
	assert_int_equal(tlsrpt_queue_step(q, now_fn), start + 10);
	assert_int_equal(w.last_state, TLSRPT_JOB_PENDING);
	run(q);
	assert_int_equal(w.i_prep, 2);
	assert_int_equal(w.tried_at[0][0], start + 10);
	assert_int_equal(w.last_state, TLSRPT_JOB_SENT);
	tlsrpt_queue_free(q);
}

static void
size_limit_skips_every_destination(void **state)
{
	struct tlsrpt_queue *q = setup(2, 10, 1000);

	(void)state;
	w.prep[0] = TLSRPT_OUT_TOO_BIG;
	w.n_prep = 1;
	run(q);
	assert_int_equal(w.tries[0] + w.tries[1], 0);
	assert_int_equal(w.attempted, 2); /* one line per destination */
	assert_int_equal(w.last_state, TLSRPT_JOB_SKIPPED);
	tlsrpt_queue_free(q);
}

static void
stop_returns_at_once(void **state)
{
	struct tlsrpt_queue *q = setup(1, 10, 1000);

	(void)state;
	w.stop = 1;
	tlsrpt_queue_step(q, now_fn);
	assert_int_equal(w.tries[0], 0);
	assert_int_equal(tlsrpt_queue_len(q), 1);
	tlsrpt_queue_free(q); /* frees a job with no payload yet */
}

static void
jobs_in_order_and_bounded(void **state)
{
	struct tlsrpt_queue *q = setup(1, 10, 1000);

	(void)state;
	assert_int_equal(tlsrpt_queue_add(q, "other.test", T0, T0 + 86399, w.now, 0), 1);
	assert_int_equal(
	    tlsrpt_queue_add(q, "example.test", T0 + 86400, T0 + 2 * 86400 - 1, w.now, 0), 1);
	assert_int_equal(tlsrpt_queue_len(q), 3);
	w.script[0][0] = TLSRPT_OUT_DELIVERED;
	w.n_prep = 3;
	w.prep[0] = TLSRPT_OUT_DELIVERED;
	w.prep[1] = TLSRPT_OUT_PERM;
	w.prep[2] = TLSRPT_OUT_PERM;
	run(q);
	assert_int_equal(tlsrpt_queue_len(q), 0);
	assert_string_equal(tlsrpt_job_state_name(TLSRPT_JOB_SKIPPED), "skipped");
	tlsrpt_queue_free(q);
	tlsrpt_queue_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8460_5_3_delivered_first_time),
	    cmocka_unit_test(rfc8460_5_3_endpoint_down_then_back),
	    cmocka_unit_test(rfc8460_5_3_gives_up),
	    cmocka_unit_test(rfc8460_5_3_two_destinations),
	    cmocka_unit_test(rfc8460_5_3_all_destinations_fail),
	    cmocka_unit_test(rfc8460_3_no_record_nothing_sent),
	    cmocka_unit_test(rfc8460_3_lookup_tempfail_then_found),
	    cmocka_unit_test(size_limit_skips_every_destination),
	    cmocka_unit_test(stop_returns_at_once),
	    cmocka_unit_test(jobs_in_order_and_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
