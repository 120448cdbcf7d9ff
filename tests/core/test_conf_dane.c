// sources: core/conf.c core/util.c core/log.c core/types.c
/*
 * test_conf_dane.c - the DANE keys of the configuration (RFC 7672): the
 * "dane" group, its defaults, and "dane" in the operator policies, with
 * the exact message for each bad value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/conf.h"

#define LISTEN "listen = [ \"127.0.0.1:10025\" ];\n"

static void
rfc7672_dane_defaults(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	assert_non_null(c = conf_load_string(LISTEN, "mem", err, sizeof(err)));
	assert_true(c->dane.enabled);
	/* as Postfix's "dane" level: no TLSA for hosts of an unsigned MX RRset */
	assert_false(c->dane.insecure_mx);
	assert_int_equal(c->dane.ttl_min, 1);
	assert_int_equal(c->dane.ttl_max, 300);
	conf_free(c);
	assert_string_equal(sts_dane_mode_name(STS_DANE_MODE_ON), "on");
	assert_string_equal(sts_dane_mode_name(STS_DANE_MODE_OFF), "off");
	assert_string_equal(sts_dane_mode_name(STS_DANE_MODE_ONLY), "only");
	assert_string_equal(sts_policy_type_name(STS_PTYPE_NONE), "no-policy-found");
	assert_string_equal(sts_policy_type_name(STS_PTYPE_STS), "sts");
	assert_string_equal(sts_policy_type_name(STS_PTYPE_TLSA), "tlsa");
	assert_string_equal(sts_policy_type_name((enum sts_policy_type)9), "no-policy-found");
}

static void
rfc7672_dane_keys(void **state)
{
	static const char text[] = LISTEN
	    "dane = { enabled = false; insecure_mx = true; ttl_min = 5; ttl_max = 60; };\n"
	    "policies = (\n"
	    "  { domain = \"a.example\"; dane = \"only\"; },\n"
	    "  { domain = \"b.example\"; mode = \"enforce\"; mx = [ \"mx.b.example\" ]; dane = "
	    "\"off\"; },\n"
	    "  { domain = \"c.example\"; mode = \"testing\"; mx = [ \"mx.c.example\" ]; },\n"
	    "  { domain = \"d.example\"; dane = \"on\"; }\n"
	    ");\n";
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load_string(text, "mem", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_false(c->dane.enabled);
	assert_true(c->dane.insecure_mx);
	assert_int_equal(c->dane.ttl_min, 5);
	assert_int_equal(c->dane.ttl_max, 60);
	assert_int_equal(c->n_policies, 4);
	/* DANE alone: the published MTA-STS policy still applies */
	assert_false(c->policies[0].has_mode);
	assert_int_equal(c->policies[0].mode, STS_MODE_NONE);
	assert_int_equal(c->policies[0].n_mx, 0);
	assert_true(c->policies[0].has_dane);
	assert_int_equal(c->policies[0].dane, STS_DANE_MODE_ONLY);
	assert_true(c->policies[1].has_mode);
	assert_int_equal(c->policies[1].dane, STS_DANE_MODE_OFF);
	assert_false(c->policies[2].has_dane);
	assert_int_equal(c->policies[3].dane, STS_DANE_MODE_ON);
	conf_free(c);
}

static void
rfc7672_dane_bad_values(void **state)
{
	static const struct {
		const char *name, *text, *message;
	} cases[] = {
	    {"dane_unknown_key", LISTEN "dane = { half = true; };\n",
	     "mem:2: dane.half: unknown key"},
	    {"dane_enabled_not_bool", LISTEN "dane = { enabled = 1; };\n",
	     "mem:2: dane.enabled: expected true or false"},
	    {"dane_ttl_order", LISTEN "dane = { ttl_min = 60; ttl_max = 5; };\n",
	     "mem:2: dane: ttl_min 60 is above ttl_max 5"},
	    {"dane_ttl_range", LISTEN "dane = { ttl_max = 90000; };\n",
	     "mem:2: dane.ttl_max: 90000 is out of range (0 to 86400)"},
	    {"policy_dane_bad",
	     LISTEN "policies = ( { domain = \"a.example\"; dane = \"yes\"; } );\n",
	     "mem:2: policies[0].dane: \"yes\" is not one of \"on\", \"off\", \"only\""},
	    {"policy_mx_without_mode",
	     LISTEN "policies = ( { domain = \"a.example\"; dane = \"on\"; mx = [ \"m.example\" ]; "
	            "} );\n",
	     "mem:2: policies[0]: \"mx\" needs a \"mode\""},
	    {"policy_neither", LISTEN "policies = ( { domain = \"a.example\"; } );\n",
	     "mem:2: policies[0]: \"mode\" is required"},
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c = conf_load_string(cases[i].text, "mem", err, sizeof(err));

		print_message("case %s\n", cases[i].name);
		assert_null(c);
		assert_string_equal(err, cases[i].message);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc7672_dane_defaults),
	    cmocka_unit_test(rfc7672_dane_keys),
	    cmocka_unit_test(rfc7672_dane_bad_values),
	};

	return cmocka_run_group_tests_name("conf_dane", tests, NULL, NULL) != 0;
}
