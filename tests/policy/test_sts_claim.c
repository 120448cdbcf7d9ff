// sources: policy/sts_claim.c core/util.c
/*
 * test_sts_claim.c - the table of policy fetches in flight: one holder per
 * (domain, id), expiry, stale tokens, a full table, and threads racing for
 * one claim.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sts_claim.h"

static void
one_holder_per_policy(void **state)
{
	struct sts_claims *t = sts_claims_new();
	uint64_t a, b, c;

	(void)state;
	assert_non_null(t);
	assert_int_equal(sts_claims_take(t, "example.com", "id1", 1000, 500, &a), STS_CLAIM_TAKEN);
	assert_true(a != 0);
	assert_int_equal(sts_claims_take(t, "example.com", "id1", 1001, 500, &b), STS_CLAIM_HELD);
	assert_int_equal(b, 0);
	assert_true(sts_claims_held(t, "example.com", "id1", 1001));
	/* another id or another domain is another fetch */
	assert_int_equal(sts_claims_take(t, "example.com", "id2", 1001, 500, &b), STS_CLAIM_TAKEN);
	assert_int_equal(sts_claims_take(t, "example.net", "id1", 1001, 500, &c), STS_CLAIM_TAKEN);
	assert_true(a != b && b != c && a != c);
	sts_claims_drop(t, a);
	assert_false(sts_claims_held(t, "example.com", "id1", 1002));
	assert_true(sts_claims_held(t, "example.com", "id2", 1002));
	assert_int_equal(sts_claims_take(t, "example.com", "id1", 1002, 500, &a), STS_CLAIM_TAKEN);
	sts_claims_free(t);
}

static void
expiry_and_stale_tokens(void **state)
{
	struct sts_claims *t = sts_claims_new();
	uint64_t old, cur;

	(void)state;
	assert_int_equal(sts_claims_take(t, "example.com", "id1", 1000, 500, &old),
	                 STS_CLAIM_TAKEN);
	assert_true(sts_claims_held(t, "example.com", "id1", 1499));
	assert_false(sts_claims_held(t, "example.com", "id1", 1500));
	/* past its time the claim is free to take; the first holder's token no longer ends it */
	assert_int_equal(sts_claims_take(t, "example.com", "id1", 1500, 500, &cur),
	                 STS_CLAIM_TAKEN);
	assert_true(cur != old);
	sts_claims_drop(t, old);
	assert_true(sts_claims_held(t, "example.com", "id1", 1600));
	sts_claims_drop(t, cur);
	assert_false(sts_claims_held(t, "example.com", "id1", 1600));
	sts_claims_drop(t, 0);
	sts_claims_drop(t, cur);
	sts_claims_drop(NULL, cur);
	sts_claims_free(t);
	sts_claims_free(NULL);
}

static void
bounded(void **state)
{
	struct sts_claims *t = sts_claims_new();
	char name[64], longname[300];
	uint64_t tok[STS_CLAIMS_MAX], x;

	(void)state;
	for (int i = 0; i < STS_CLAIMS_MAX; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		assert_int_equal(sts_claims_take(t, name, "id", 0, 100, &tok[i]), STS_CLAIM_TAKEN);
	}
	/* full: the caller fetches without a claim, as with no table */
	assert_int_equal(sts_claims_take(t, "more.example", "id", 0, 100, &x), STS_CLAIM_NONE);
	assert_int_equal(x, 0);
	assert_int_equal(sts_claims_take(t, "d7.example", "id", 0, 100, &x), STS_CLAIM_HELD);
	sts_claims_drop(t, tok[7]);
	assert_int_equal(sts_claims_take(t, "more.example", "id", 0, 100, &x), STS_CLAIM_TAKEN);
	/* expired claims make room too */
	assert_int_equal(sts_claims_take(t, "late.example", "id", 100, 100, &x), STS_CLAIM_TAKEN);
	/* what does not fit a slot is never claimed */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sts_claims_take(t, longname, "id", 0, 100, &x), STS_CLAIM_NONE);
	assert_int_equal(
	    sts_claims_take(t, "x.example", "0123456789abcdef0123456789abcdefX", 0, 100, &x),
	    STS_CLAIM_NONE);
	assert_int_equal(sts_claims_take(NULL, "x.example", "id", 0, 100, &x), STS_CLAIM_NONE);
	sts_claims_free(t);
}

#define RACERS 4
#define ROUNDS 200 /* below STS_CLAIMS_MAX: every round's claim fits */

static _Atomic unsigned takers[ROUNDS];

struct race {
	struct sts_claims *t;
	pthread_barrier_t *go;
};

static void *
racer(void *arg)
{
	struct race *r = arg;
	char id[16];
	uint64_t tok;

	for (int i = 0; i < ROUNDS; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		pthread_barrier_wait(r->go);
		if (sts_claims_take(r->t, "example.com", id, 0, 1000, &tok) == STS_CLAIM_TAKEN)
			atomic_fetch_add(&takers[i], 1);
	}
	return NULL;
}

/* Workers racing for one policy: exactly one takes each claim. */
static void
threads_one_taker(void **state)
{
	struct sts_claims *t = sts_claims_new();
	pthread_barrier_t go;
	pthread_t th[RACERS];
	struct race r[RACERS];

	(void)state;
	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (struct race){.t = t, .go = &go};
		assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < ROUNDS; i++)
		assert_int_equal(atomic_load(&takers[i]), 1);
	pthread_barrier_destroy(&go);
	sts_claims_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(one_holder_per_policy),
	    cmocka_unit_test(expiry_and_stale_tokens),
	    cmocka_unit_test(bounded),
	    cmocka_unit_test(threads_one_taker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
