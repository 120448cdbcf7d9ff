// sources: core/conf.c core/util.c core/log.c core/types.c
/*
 * test_conf_report_store.c - the report_store group of the configuration:
 * its defaults, the bounds of each number, and the gateway id's alphabet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/conf.h"

#define LISTEN "listen = [ \"127.0.0.1:10025\" ]; "

static void
defaults(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	assert_non_null(c = conf_load_string(LISTEN, "mem", err, sizeof(err)));
	assert_int_equal(c->report_store.flush_interval, 5);
	assert_int_equal(c->report_store.keep_days, 7);
	assert_null(c->report_store.gateway_id);
	conf_free(c);
}

static void
all_keys(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load_string(LISTEN "report_store = { flush_interval = 30; keep_days = 2; "
	                            "gateway_id = \"gw-1.example_a\"; };",
	                     "mem", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->report_store.flush_interval, 30);
	assert_int_equal(c->report_store.keep_days, 2);
	assert_string_equal(c->report_store.gateway_id, "gw-1.example_a");
	conf_free(c);
}

static void
refused(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"report_store = { flush_interval = 0; };", "report_store.flush_interval"},
	    {"report_store = { flush_interval = 3601; };", "report_store.flush_interval"},
	    {"report_store = { keep_days = 1; };", "report_store.keep_days"},
	    {"report_store = { keep_days = 367; };", "report_store.keep_days"},
	    {"report_store = { gateway_id = \"\"; };", "report_store.gateway_id"},
	    {"report_store = { gateway_id = \"gw 1\"; };", "report_store.gateway_id"},
	    {"report_store = { gateway_id = \"gw/1\"; };", "report_store.gateway_id"},
	    {"report_store = { bogus = 1; };", "bogus"},
	};
	char text[256], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), LISTEN "%s", cases[i].text);
		err[0] = '\0';
		assert_null(conf_load_string(text, "mem", err, sizeof(err)));
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: %s", cases[i].text, err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(all_keys),
	    cmocka_unit_test(refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
