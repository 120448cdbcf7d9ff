// sources: core/conf.c core/util.c core/log.c core/types.c
/*
 * test_conf_report.c - the "report" group (TLS-RPT, RFC 8460): defaults,
 * a full group, and the exact message for each bad value.
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
rfc8460_report_defaults(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	assert_non_null(c = conf_load_string(LISTEN, "mem", err, sizeof(err)));
	assert_false(c->report.enable);
	assert_null(c->report.organization);
	assert_null(c->report.relay);
	assert_int_equal(c->report.relay_starttls, CONF_REPORT_STARTTLS_REQUIRED);
	assert_int_equal(c->report.delay_max, 3600);
	assert_int_equal(c->report.retry_first, 300);
	assert_int_equal(c->report.retry_for, 86400);
	assert_int_equal(c->report.timeout, 60);
	assert_int_equal(c->report.max_size, 1 << 20);
	assert_true(c->report.only_failures);
	assert_false(c->report.include_no_policy);
	assert_int_equal(c->report.shared_wait, 3600);
	conf_free(c);
}

static void
rfc8460_report_full(void **state)
{
	static const char text[] = LISTEN "report = {\n"
	                                  "  enable = true;\n"
	                                  "  organization = \"Example Org\";\n"
	                                  "  contact = \"mailto:postmaster@example.org\";\n"
	                                  "  submitter = \"GW.Example.org\";\n"
	                                  "  from = \"tlsrpt@gw.example.org\";\n"
	                                  "  relay = \"smtp.example.org:587\";\n"
	                                  "  relay_user = \"gw\";\n"
	                                  "  relay_password_file = \"/etc/stsproxy/relay.pw\";\n"
	                                  "  relay_starttls = \"optional\";\n"
	                                  "  delay_max = 600;\n"
	                                  "  retry_first = 2;\n"
	                                  "  retry_for = 60;\n"
	                                  "  timeout = 5;\n"
	                                  "  max_size = 4096;\n"
	                                  "  only_failures = false;\n"
	                                  "  include_no_policy = true;\n"
	                                  "  shared_wait = 0;\n"
	                                  "};\n";
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load_string(text, "mem", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_true(c->report.enable);
	assert_string_equal(c->report.organization, "Example Org");
	assert_string_equal(c->report.contact, "mailto:postmaster@example.org");
	assert_string_equal(c->report.submitter, "gw.example.org");
	assert_string_equal(c->report.from, "tlsrpt@gw.example.org");
	assert_string_equal(c->report.relay, "smtp.example.org:587");
	assert_string_equal(c->report.relay_user, "gw");
	assert_int_equal(c->report.relay_starttls, CONF_REPORT_STARTTLS_OPTIONAL);
	assert_int_equal(c->report.delay_max, 600);
	assert_int_equal(c->report.retry_first, 2);
	assert_int_equal(c->report.retry_for, 60);
	assert_int_equal(c->report.timeout, 5);
	assert_int_equal(c->report.max_size, 4096);
	assert_false(c->report.only_failures);
	assert_true(c->report.include_no_policy);
	assert_int_equal(c->report.shared_wait, 0);
	conf_free(c);
}

static void
rfc8460_report_relay_forms(void **state)
{
	static const char *const good[] = {"10.0.0.25:25", "[fd00::25]:25", "mail.example:2525",
	                                   "localhost:25"};
	char text[512], err[512];
	struct conf *c;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), LISTEN "report = { relay = \"%s\"; };\n", good[i]);
		if ((c = conf_load_string(text, "mem", err, sizeof(err))) == NULL)
			fail_msg("%s: %s", good[i], err);
		conf_free(c);
	}
}

static void
rfc8460_report_bad(void **state)
{
	static const struct {
		const char *name, *group, *want;
	} cases[] = {
	    {"unknown key", "relay_port = 25;", "mem:2: report.relay_port: unknown key"},
	    {"enable not a boolean", "enable = 1;", "mem:2: report.enable: expected true or false"},
	    {"section 4.4: organization required", "enable = true;",
	     "mem:2: report: \"organization\" is required with enable = true"},
	    {"section 4.4: contact required", "enable = true; organization = \"o\";",
	     "mem:2: report: \"contact\" is required with enable = true"},
	    {"submitter required", "enable = true; organization = \"o\"; contact = \"c\";",
	     "mem:2: report: \"submitter\" is required with enable = true"},
	    {"empty organization", "organization = \"\";",
	     "mem:2: report.organization: must not be empty"},
	    {"submitter not a host name", "submitter = \"gw example\";",
	     "mem:2: report.submitter: \"gw example\" is not a host name"},
	    {"from without a domain", "from = \"tlsrpt\";",
	     "mem:2: report.from: \"tlsrpt\" is not an address local@domain"},
	    {"from with a space", "from = \"a b@example.org\";",
	     "mem:2: report.from: \"a b@example.org\" is not an address local@domain"},
	    {"relay without a port", "relay = \"mail.example\";",
	     "mem:2: report.relay: \"mail.example\": expected HOST:PORT (a host name, an IPv4 "
	     "address or [IPv6])"},
	    {"relay with port 0", "relay = \"mail.example:0\";",
	     "mem:2: report.relay: \"mail.example:0\": expected HOST:PORT (a host name, an IPv4 "
	     "address or [IPv6])"},
	    {"relay bare IPv6", "relay = \"fd00::25:25\";",
	     "mem:2: report.relay: \"fd00::25:25\": expected HOST:PORT (a host name, an IPv4 "
	     "address or [IPv6])"},
	    {"relay_starttls", "relay_starttls = \"never\";",
	     "mem:2: report.relay_starttls: \"never\" is not one of \"required\", \"optional\""},
	    {"user without password file", "relay = \"m.example:25\"; relay_user = \"u\";",
	     "mem:2: report: relay_user and relay_password_file go together"},
	    {"auth without relay", "relay_user = \"u\"; relay_password_file = \"/p\";",
	     "mem:2: report.relay_user: needs a relay"},
	    {"delay_max a day", "delay_max = 86400;",
	     "mem:2: report.delay_max: 86400 is out of range (0 to 86399)"},
	    {"retry_first 0", "retry_first = 0;",
	     "mem:2: report.retry_first: 0 is out of range (1 to 86400)"},
	    {"max_size tiny", "max_size = 10;",
	     "mem:2: report.max_size: 10 is out of range (1024 to 104857600)"},
	    {"shared_wait beyond a day", "shared_wait = 86401;",
	     "mem:2: report.shared_wait: 86401 is out of range (0 to 86400)"},
	    {"shared_wait negative", "shared_wait = -1;",
	     "mem:2: report.shared_wait: -1 is out of range (0 to 86400)"},
	};
	char text[512], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c;

		snprintf(text, sizeof(text), LISTEN "report = { %s };\n", cases[i].group);
		if ((c = conf_load_string(text, "mem", err, sizeof(err))) != NULL) {
			conf_free(c);
			fail_msg("%s: accepted", cases[i].name);
		}
		if (strcmp(err, cases[i].want) != 0)
			fail_msg("%s:\n got  %s\n want %s", cases[i].name, err, cases[i].want);
	}
	/* not a group */
	assert_null(conf_load_string(LISTEN "report = 1;\n", "mem", err, sizeof(err)));
	assert_string_equal(err, "mem:2: report: expected a group { ... }");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8460_report_defaults),
	    cmocka_unit_test(rfc8460_report_full),
	    cmocka_unit_test(rfc8460_report_relay_forms),
	    cmocka_unit_test(rfc8460_report_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
