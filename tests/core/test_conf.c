// sources: core/conf.c core/util.c core/log.c core/types.c
/*
 * test_conf.c - the configuration loader: a good file, the defaults, and
 * each kind of bad file with the exact file, line and key in the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "core/conf.h"

static char tmpdir[] = "/tmp/stsproxy-conf-XXXXXX";

/* write_conf - text into a fresh file under tmpdir; returns its path (static). */
static const char *
write_conf(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char good[] =
    "state_dir = \"/tmp/sts\";\n"
    "mode = \"monitor\";\n"
    "listen = [ \"0.0.0.0:10025\", \"[::]:10025\" ];\n"
    "interception = \"tproxy\";\n"
    "clients = [ \"10.0.0.0/8\", \"2001:db8::/32\" ];\n"
    "upstream_mark = 0x25;\n"
    "max_sessions = 500;\n"
    "workers = 1;\n"
    "timeouts = { connect = 5; data_done = 60; };\n"
    "log = { level = \"debug\"; events = \"/tmp/sts/events.json\"; };\n"
    "dns = { forwarders = [ \"10.0.0.53\", \"10.0.0.54@5353\" ]; timeout = 3; };\n"
    "tls = { ca_file = \"/etc/ssl/certs/ca-certificates.crt\"; client_starttls = false; };\n"
    "sts = { fetch_timeout = 10; defer_on_dns_failure = false; };\n"
    "policies = (\n"
    "  { domain = \"Partner.Example\"; mode = \"enforce\"; mx = [ \"*.partner.example\" ]; },\n"
    "  { domain = \"b\xc3\xbc"
    "cher.example\"; mode = \"testing\"; mx = [ \"mx.example\" ]; }\n"
    ");\n"
    "smarthosts = ( { address = \"198.51.100.7:25\"; name = \"Relay.Example.NET\"; } );\n"
    "nfq = { queues = [ 0, 1 ]; action = \"block\"; fail_open = false; hold_timeout = 2;\n"
    "        hold_max = 0; hold_timeout_action = \"pass\"; };\n"
    "metrics = { };\n";

static void
good_file_loads_every_field(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load(write_conf("good.conf", good), err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->state_dir, "/tmp/sts");
	assert_int_equal(c->mode, CONF_PROXY_MONITOR);
	assert_int_equal(c->n_listen, 2);
	assert_int_equal(c->listen[0].sa.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&c->listen[0].sa)->sin_port), 10025);
	assert_int_equal(c->listen[1].sa.ss_family, AF_INET6);
	assert_int_equal(c->interception, CONF_INTERCEPT_TPROXY);
	assert_int_equal(c->n_clients, 2);
	assert_int_equal(c->upstream_mark, 0x25);
	assert_int_equal(c->max_sessions, 500);
	assert_int_equal(c->workers, 1);
	assert_int_equal(c->timeouts.connect, 5);
	assert_int_equal(c->timeouts.data_done, 60);
	assert_int_equal(c->timeouts.command, 300); /* default kept */
	assert_int_equal(c->log.level, LOG_LVL_DEBUG);
	assert_string_equal(c->log.events, "/tmp/sts/events.json");
	assert_int_equal(c->dns.n_forwarders, 2);
	assert_string_equal(c->dns.forwarders[1], "10.0.0.54@5353");
	assert_int_equal(c->dns.timeout, 3);
	assert_false(c->tls.client_starttls);
	assert_int_equal(c->sts.fetch_timeout, 10);
	assert_false(c->sts.defer_on_dns_failure);
	assert_int_equal(c->n_policies, 2);
	assert_string_equal(c->policies[0].domain, "partner.example");
	assert_int_equal(c->policies[0].mode, STS_MODE_ENFORCE);
	assert_string_equal(c->policies[0].mx[0], "*.partner.example");
	assert_int_equal(c->policies[0].line, 15);
	/* RFC 8461 section 4.1 and RFC-NOTES: domains become A-labels. */
	assert_string_equal(c->policies[1].domain, "xn--bcher-kva.example");
	assert_int_equal(c->n_smarthosts, 1);
	assert_string_equal(c->smarthosts[0].name, "relay.example.net");
	assert_true(c->nfq.enabled);
	assert_int_equal(c->nfq.n_queues, 2);
	assert_int_equal(c->nfq.queues[1], 1);
	assert_int_equal(c->nfq.action, CONF_NFQ_BLOCK);
	assert_false(c->nfq.fail_open);
	assert_int_equal(c->nfq.hold_timeout, 2);
	assert_int_equal(c->nfq.hold_max, 0);
	assert_int_equal(c->nfq.hold_timeout_action, CONF_NFQ_HOLD_PASS);
	assert_non_null(c->metrics.listen);
	assert_string_equal(c->metrics.listen->text, "127.0.0.1:9125");
	conf_free(c);
}

static void
defaults_follow_rfc5321_timeouts(void **state)
{
	char err[512];
	struct conf *c;

	(void)state;
	c = conf_load_string("listen = [ \"127.0.0.1:10025\" ];", "mem", err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->mode, CONF_PROXY_ENFORCE);
	assert_int_equal(c->interception, CONF_INTERCEPT_REDIRECT);
	/* RFC 5321 section 4.5.3.2 */
	assert_int_equal(c->timeouts.greeting, 300);
	assert_int_equal(c->timeouts.command, 300);
	assert_int_equal(c->timeouts.data_block, 180);
	assert_int_equal(c->timeouts.data_done, 600);
	assert_false(c->nfq.enabled);
	/* A verdict waits a few seconds for a policy lookup, then blocks. */
	assert_int_equal(c->nfq.hold_timeout, 5);
	assert_int_equal(c->nfq.hold_max, 1024);
	assert_int_equal(c->nfq.hold_timeout_action, CONF_NFQ_HOLD_BLOCK);
	assert_null(c->metrics.listen);
	assert_int_equal(c->n_policies, 0);
	conf_free(c);
}

/* One bad file: its text, and the exact message expected after "DIR/bad.conf:". */
struct bad_case {
	const char *name;
	const char *text;
	const char *message;
};

static const struct bad_case bad_cases[] = {
    {"syntax_error", "listen = [ \"127.0.0.1:1\" ]\nmode = ;\n", "2: syntax error: syntax error"},
    {"unknown_top_key", "listen = [ \"127.0.0.1:1\" ];\n\nbogus = 1;\n", "3: bogus: unknown key"},
    {"unknown_group_key", "listen = [ \"127.0.0.1:1\" ];\ndns = {\n  timeuot = 3;\n};\n",
     "3: dns.timeuot: unknown key"},
    {"wrong_type_integer", "listen = [ \"127.0.0.1:1\" ];\ndns = { timeout = \"3\"; };\n",
     "2: dns.timeout: expected an integer"},
    {"wrong_type_string", "listen = [ \"127.0.0.1:1\" ];\nstate_dir = 5;\n",
     "2: state_dir: expected a string"},
    {"wrong_type_bool", "listen = [ \"127.0.0.1:1\" ];\ntls = { client_starttls = 1; };\n",
     "2: tls.client_starttls: expected true or false"},
    {"wrong_type_group", "listen = [ \"127.0.0.1:1\" ];\ndns = 1;\n",
     "2: dns: expected a group { ... }"},
    {"wrong_type_list", "listen = \"127.0.0.1:1\";\n", "1: listen: expected a list [ ... ]"},
    {"out_of_range", "listen = [ \"127.0.0.1:1\" ];\nmax_sessions = 0;\n",
     "2: max_sessions: 0 is out of range (1 to 1000000)"},
    {"bad_choice", "listen = [ \"127.0.0.1:1\" ];\nmode = \"block\";\n",
     "2: mode: \"block\" is not one of \"enforce\", \"monitor\""},
    {"bad_listen_address", "listen = [ \"localhost:25\" ];\n",
     "1: listen[0]: \"localhost:25\": expected ADDRESS:PORT with a numeric address"},
    {"bad_client_network", "listen = [ \"127.0.0.1:1\" ];\nclients = [ \"10.0.0.0/33\" ];\n",
     "2: clients[0]: \"10.0.0.0/33\": expected ADDRESS or ADDRESS/PREFIX"},
    {"bad_forwarder",
     "listen = [ \"127.0.0.1:1\" ];\ndns = { forwarders = [ \"ns.example\" ]; };\n",
     "2: dns.forwarders[0]: \"ns.example\": expected an IP address, optionally with @PORT"},
    {"policy_without_mode",
     "listen = [ \"127.0.0.1:1\" ];\npolicies = (\n { domain = \"a.example\"; mx = [ "
     "\"mx.a.example\" ]; }\n);\n",
     "3: policies[0]: \"mode\" is required"},
    {"policy_bad_domain",
     "listen = [ \"127.0.0.1:1\" ];\npolicies = ( { domain = \"a..example\"; mode = \"enforce\"; "
     "mx = [ \"x.example\" ]; } );\n",
     "2: policies[0]: domain: \"a..example\" is not a valid domain name"},
    {"policy_enforce_without_mx",
     "listen = [ \"127.0.0.1:1\" ];\npolicies = ( { domain = \"a.example\"; mode = \"enforce\"; } "
     ");\n",
     "2: policies[0]: \"mx\" needs at least one pattern unless mode is \"none\""},
    {"policy_duplicate",
     "listen = [ \"127.0.0.1:1\" ];\npolicies = ( { domain = \"a.example\"; mode = \"none\"; },\n"
     " { domain = \"A.example\"; mode = \"none\"; } );\n",
     "3: policies[1]: domain \"a.example\" has a policy already"},
    {"policy_unknown_key",
     "listen = [ \"127.0.0.1:1\" ];\npolicies = ( { domain = \"a.example\"; mode = \"none\"; "
     "max_age = 5; } );\n",
     "2: policies[0].max_age: unknown key"},
    {"smarthost_bad_name",
     "listen = [ \"127.0.0.1:1\" ];\nsmarthosts = ( { address = \"10.0.0.1:25\"; name = "
     "\"10.0.0.1\"; } );\n",
     "2: smarthosts[0]: name: \"10.0.0.1\" is not a host name"},
    {"server_cert_without_key",
     "listen = [ \"127.0.0.1:1\" ];\ntls = { server_cert = \"/x.pem\"; };\n",
     "2: tls: server_cert and server_key go together"},
    {"nfq_bad_queue", "nfq = { queues = [ 70000 ]; };\n",
     "1: nfq.queues: expected queue numbers from 0 to 65535"},
    {"nfq_hold_timeout_zero", "nfq = { hold_timeout = 0; };\n",
     "1: nfq.hold_timeout: 0 is out of range (1 to 60)"},
    {"nfq_hold_max_too_big", "nfq = { hold_max = 70000; };\n",
     "1: nfq.hold_max: 70000 is out of range (0 to 65536)"},
    {"nfq_hold_timeout_action_bad", "nfq = { hold_timeout_action = \"log\"; };\n",
     "1: nfq.hold_timeout_action: \"log\" is not one of \"block\", \"pass\""},
    {"nothing_to_do", "mode = \"enforce\";\n",
     "0: listen: nothing to do: set \"listen\", an \"nfq\" group or socketmap.listen"},
};

static void
bad_files_name_file_line_and_key(void **state)
{
	char err[512], expect[768];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *path = write_conf("bad.conf", bad_cases[i].text);
		struct conf *c = conf_load(path, err, sizeof(err));

		snprintf(expect, sizeof(expect), "%s:%s", path, bad_cases[i].message);
		if (c != NULL || strcmp(err, expect) != 0)
			fail_msg("case %s: got \"%s\", expected \"%s\"", bad_cases[i].name,
			         c ? "(loaded)" : err, expect);
	}
}

static void
missing_file_is_an_error(void **state)
{
	char err[512], path[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	assert_null(conf_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "cannot open: No such file or directory"));
}

static void
addresses_and_networks(void **state)
{
	struct conf_addr a;
	struct conf_net n;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

	(void)state;
	assert_int_equal(conf_parse_addr("[2001:db8::1]:25", &a), 0);
	assert_int_equal(a.sa.ss_family, AF_INET6);
	assert_int_equal(conf_parse_addr("2001:db8::1:25", &a), -1);
	assert_int_equal(conf_parse_addr("10.0.0.1:65536", &a), -1);
	assert_int_equal(conf_parse_addr("10.0.0.1:", &a), -1);
	assert_int_equal(conf_parse_addr("10.0.0.1", &a), -1);

	assert_int_equal(conf_parse_net("10.1.0.0/16", &n), 0);
	inet_pton(AF_INET, "10.1.200.3", &sin.sin_addr);
	assert_true(conf_net_contains(&n, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "10.2.0.1", &sin.sin_addr);
	assert_false(conf_net_contains(&n, (struct sockaddr *)&sin));
	/* An IPv4 client seen on a dual-stack socket. */
	inet_pton(AF_INET6, "::ffff:10.1.0.9", &sin6.sin6_addr);
	assert_true(conf_net_contains(&n, (struct sockaddr *)&sin6));

	assert_int_equal(conf_parse_net("2001:db8::/33", &n), 0);
	inet_pton(AF_INET6, "2001:db8:7fff::1", &sin6.sin6_addr);
	assert_true(conf_net_contains(&n, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "2001:db8:8000::1", &sin6.sin6_addr);
	assert_false(conf_net_contains(&n, (struct sockaddr *)&sin6));
	assert_int_equal(conf_parse_net("10.0.0.1/", &n), -1);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(good_file_loads_every_field),
	    cmocka_unit_test(defaults_follow_rfc5321_timeouts),
	    cmocka_unit_test(bad_files_name_file_line_and_key),
	    cmocka_unit_test(missing_file_is_an_error),
	    cmocka_unit_test(addresses_and_networks),
	};

	return cmocka_run_group_tests_name("conf", tests, setup, teardown);
}
