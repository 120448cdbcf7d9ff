// sources: nfq/hold.c
/*
 * test_hold.c - the records of what waits for a policy lookup: the bound
 * on records and on domains per record, the order of deadlines, finding
 * an unanswered domain, and freeing from any place in the list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nfq/hold.h"

static void
bounds_records_and_order(void **state)
{
	struct hold_table *t = hold_table_new(3);
	struct hold *a, *b, *c;

	(void)state;
	assert_non_null(t);
	assert_null(hold_first(t));
	a = hold_new(t, 0, 100);
	b = hold_new(t, 10, 110);
	c = hold_new(t, 20, 120);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_null(hold_new(t, 30, 130)); /* the bound */
	assert_int_equal(hold_count(t), 3);
	assert_ptr_equal(hold_first(t), a);
	assert_ptr_equal(hold_next(a), b);
	assert_ptr_equal(hold_next(b), c);
	assert_null(hold_next(c));
	assert_int_equal(a->since, 0);
	assert_int_equal(c->deadline, 120);
	/* Freed from the middle, the head and the tail; room again. */
	hold_free(t, b);
	assert_ptr_equal(hold_next(a), c);
	hold_free(t, a);
	assert_ptr_equal(hold_first(t), c);
	b = hold_new(t, 40, 140);
	assert_ptr_equal(hold_next(c), b);
	hold_free(t, b);
	assert_null(hold_next(c));
	hold_free(t, NULL);
	assert_int_equal(hold_count(t), 1);
	hold_table_free(t); /* frees c */
	hold_table_free(NULL);

	/* A table of no records refuses every one. */
	t = hold_table_new(0);
	assert_null(hold_new(t, 0, 1));
	hold_table_free(t);
}

static void
rfc8461_5_domains_per_record(void **state)
{
	static const struct {
		const char *domain;
		int index;
	} cases[] = {
	    {"a.example", 0}, {"b.example", 1},  {"a.example", 0}, {"c.example", 2},
	    {"d.example", 3}, {"e.example", 4},  {"f.example", 5}, {"g.example", 6},
	    {"h.example", 7}, {"i.example", -1}, {"b.example", 1},
	};
	struct hold_table *t = hold_table_new(1);
	struct hold *h = hold_new(t, 0, 1);
	char longname[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (hold_add(h, cases[i].domain, "RCPT TO:<x@y>", i % 2) != cases[i].index)
			fail_msg("%s: expected index %d", cases[i].domain, cases[i].index);
	assert_int_equal(h->n_domains, HOLD_DOMAINS);
	assert_int_equal(h->n_waiting, HOLD_DOMAINS);
	assert_string_equal(h->dom[1].line, "RCPT TO:<x@y>");
	assert_true(h->dom[1].no_starttls);
	assert_int_equal(hold_find(h, "c.example"), 2);
	h->dom[2].answered = true;
	assert_int_equal(hold_find(h, "c.example"), -1);
	assert_int_equal(hold_find(h, "z.example"), -1);
	hold_table_free(t);

	/* Too long for a domain name; a line is cut, never overflowed. */
	t = hold_table_new(1);
	h = hold_new(t, 0, 1);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(hold_add(h, longname, "x", false), -1);
	assert_int_equal(hold_add(h, "a.example", longname, false), 0);
	assert_int_equal(strlen(h->dom[0].line), HOLD_LINE_MAX - 1);
	hold_table_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bounds_records_and_order),
	    cmocka_unit_test(rfc8461_5_domains_per_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
