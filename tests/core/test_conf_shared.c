// sources: core/conf.c core/util.c core/log.c core/types.c
/*
 * test_conf_shared.c - the "shared" group (state shared with other
 * gateways through Redis): off by default, its keys and defaults, and the
 * exact message for each bad value.
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
shared_is_off_by_default(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	assert_non_null(c = conf_load_string(LISTEN, "mem", err, sizeof(err)));
	assert_false(c->shared.enabled);
	assert_null(c->shared.redis);
	assert_string_equal(c->shared.prefix, "stsproxy:");
	assert_int_equal(c->shared.wait_max, 50);
	conf_free(c);
}

static void
shared_keys(void **state)
{
	static const char one[] = LISTEN "shared = { redis = \"10.0.0.5:6379\"; user = \"gw\"; "
	                                 "password = \"pw\"; prefix = \"site1:\"; "
	                                 "connect_timeout = 200; command_timeout = 300; "
	                                 "wait_max = 20; };\n";
	static const char unix_sock[] = LISTEN "shared = { redis = \"/run/redis/redis.sock\"; };\n";
	static const char sentinels[] =
	    LISTEN "shared = { sentinels = [ \"10.0.0.1:26379\", \"[2001:db8::2]:26379\" ]; "
	           "master = \"mymaster\"; sentinel_user = \"gw-s\"; "
	           "sentinel_password = \"spw\"; };\n";
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load_string(one, "mem", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_true(c->shared.enabled);
	assert_string_equal(c->shared.redis->text, "10.0.0.5:6379");
	assert_string_equal(c->shared.user, "gw");
	assert_string_equal(c->shared.password, "pw");
	assert_string_equal(c->shared.prefix, "site1:");
	assert_int_equal(c->shared.connect_timeout, 200);
	assert_int_equal(c->shared.command_timeout, 300);
	assert_int_equal(c->shared.wait_max, 20);
	conf_free(c);

	assert_non_null(c = conf_load_string(unix_sock, "mem", err, sizeof(err)));
	assert_string_equal(c->shared.redis_path, "/run/redis/redis.sock");
	assert_null(c->shared.redis);
	conf_free(c);

	assert_non_null(c = conf_load_string(sentinels, "mem", err, sizeof(err)));
	assert_int_equal(c->shared.n_sentinels, 2);
	assert_string_equal(c->shared.sentinels[1].text, "[2001:db8::2]:26379");
	assert_string_equal(c->shared.master, "mymaster");
	assert_string_equal(c->shared.sentinel_user, "gw-s");
	assert_string_equal(c->shared.sentinel_password, "spw");
	assert_null(c->shared.user);
	assert_null(c->shared.password);
	conf_free(c);
}

static const struct {
	const char *name;
	const char *text;
	const char *message;
} bad_cases[] = {
    {"empty group", LISTEN "shared = { };\n", "mem:2: shared: set \"redis\" or \"sentinels\""},
    {"unknown key", LISTEN "shared = { redis = \"10.0.0.1:6379\"; db = 2; };\n",
     "mem:2: shared.db: unknown key"},
    {"name, not address", LISTEN "shared = { redis = \"redis.example:6379\"; };\n",
     "mem:2: shared.redis: \"redis.example:6379\": expected ADDRESS:PORT with a numeric "
     "address, or the path of a unix socket"},
    {"both",
     LISTEN "shared = { redis = \"10.0.0.1:6379\"; sentinels = [ \"10.0.0.2:26379\" ]; "
            "master = \"m\"; };\n",
     "mem:2: shared: \"redis\" and \"sentinels\" exclude each other"},
    {"sentinels without master", LISTEN "shared = { sentinels = [ \"10.0.0.2:26379\" ]; };\n",
     "mem:2: shared.master: sentinels need the master's name"},
    {"master without sentinels",
     LISTEN "shared = { redis = \"10.0.0.1:6379\"; master = \"m\"; };\n",
     "mem:2: shared.master: only with \"sentinels\""},
    {"user without password", LISTEN "shared = { redis = \"10.0.0.1:6379\"; user = \"gw\"; };\n",
     "mem:2: shared.user: an ACL user needs \"password\""},
    {"sentinel password without sentinels",
     LISTEN "shared = { redis = \"10.0.0.1:6379\"; sentinel_password = \"x\"; };\n",
     "mem:2: shared.sentinel_password: only with \"sentinels\""},
    {"sentinel user without sentinel password",
     LISTEN "shared = { sentinels = [ \"10.0.0.2:26379\" ]; master = \"m\"; "
            "password = \"pw\"; sentinel_user = \"gw\"; };\n",
     "mem:2: shared.sentinel_user: an ACL user needs \"sentinel_password\""},
    {"prefix with space", LISTEN "shared = { redis = \"10.0.0.1:6379\"; prefix = \"a b\"; };\n",
     "mem:2: shared.prefix: \"a b\": 1 to 64 printable characters, no space"},
    {"wait_max too long", LISTEN "shared = { redis = \"10.0.0.1:6379\"; wait_max = 9000; };\n",
     "mem:2: shared.wait_max: 9000 is out of range (1 to 5000)"},
    {"bad sentinel", LISTEN "shared = { sentinels = [ \"s1\" ]; master = \"m\"; };\n",
     "mem:2: shared.sentinels[0]: \"s1\": expected ADDRESS:PORT with a numeric address"},
    {"not a group", LISTEN "shared = 1;\n", "mem:2: shared: expected a group { ... }"},
};

static void
shared_bad_values(void **state)
{
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct conf *c = conf_load_string(bad_cases[i].text, "mem", err, sizeof(err));
		if (c != NULL || strcmp(err, bad_cases[i].message) != 0)
			fail_msg("case %s: got \"%s\", expected \"%s\"", bad_cases[i].name,
			         c ? "(loaded)" : err, bad_cases[i].message);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(shared_is_off_by_default),
	    cmocka_unit_test(shared_keys),
	    cmocka_unit_test(shared_bad_values),
	};

	return cmocka_run_group_tests_name("conf_shared", tests, NULL, NULL);
}
