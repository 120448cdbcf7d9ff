// sources: core/conf.c core/util.c core/log.c core/types.c
/*
 * test_conf_socketmap.c - the socketmap group of the configuration: its
 * defaults, TCP and unix addresses, the bounds of each number, and that a
 * socketmap listener alone is something to do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/conf.h"

static void
defaults(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	assert_non_null(
	    c = conf_load_string("listen = [ \"127.0.0.1:10025\" ];", "mem", err, sizeof(err)));
	assert_int_equal(c->socketmap.n_listen, 0);
	assert_int_equal(c->socketmap.max_connections, 1024);
	assert_int_equal(c->socketmap.idle_timeout, 60);
	assert_int_equal(c->socketmap.max_request, 1024);
	assert_false(c->socketmap.testing_secure);
	assert_false(c->socketmap.tlsrpt);
	conf_free(c);
}

static void
socketmap_alone(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load_string("socketmap = { listen = [ \"127.0.0.1:8461\", "
	                     "\"unix:/run/stsproxy/socketmap.sock\", \"[::1]:8461\" ]; "
	                     "max_connections = 8; idle_timeout = 30; max_request = 512; "
	                     "testing_secure = true; tlsrpt = true; };",
	                     "mem", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->socketmap.n_listen, 3);
	assert_string_equal(c->socketmap.listen[1], "unix:/run/stsproxy/socketmap.sock");
	assert_int_equal(c->socketmap.max_connections, 8);
	assert_int_equal(c->socketmap.idle_timeout, 30);
	assert_int_equal(c->socketmap.max_request, 512);
	assert_true(c->socketmap.testing_secure);
	assert_true(c->socketmap.tlsrpt);
	conf_free(c);
}

static void
bad_values(void **state)
{
	static const struct {
		const char *name, *text, *want;
	} cases[] = {
	    {"relative_unix", "socketmap = { listen = [ \"unix:sock\" ]; };",
	     "socketmap.listen[0]"},
	    {"host_name", "socketmap = { listen = [ \"localhost:8461\" ]; };",
	     "socketmap.listen[0]"},
	    {"request_too_small",
	     "socketmap = { listen = [ \"127.0.0.1:1\" ]; max_request = 10; };",
	     "socketmap.max_request"},
	    {"no_connections",
	     "socketmap = { listen = [ \"127.0.0.1:1\" ]; max_connections = 0; };",
	     "socketmap.max_connections"},
	    {"unknown_key", "socketmap = { listen = [ \"127.0.0.1:1\" ]; port = 1; };",
	     "socketmap.port"},
	    {"nothing_to_do", "socketmap = { };", "nothing to do"},
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c = conf_load_string(cases[i].text, "mem", err, sizeof(err));

		if (c != NULL || strstr(err, cases[i].want) == NULL)
			fail_msg("%s: \"%s\"", cases[i].name, c != NULL ? "(accepted)" : err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(socketmap_alone),
	    cmocka_unit_test(bad_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
