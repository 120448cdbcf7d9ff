// sources: policy/shared_value.c core/util.c
/*
 * test_shared_value.c - the values kept in the shared Redis: a policy
 * round-trips, and every malformed value, change message or server
 * message is refused with its reason (what Redis holds is untrusted).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "policy/shared_value.h"

#define POLICY "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n"
#define HEAD   "v1\nid=20240101T000000\nfetched=1700000000\nexpires=1700086400\n\n"

static void
policy_round_trip(void **state)
{
	struct shared_policy p = {.id = "20240101T000000",
	                          .fetched_at = 1700000000,
	                          .expires_at = 1700086400,
	                          .text = POLICY,
	                          .text_len = strlen(POLICY)},
	                     q;
	char buf[512];
	const char *why = NULL;
	size_t n;

	(void)state;
	assert_int_not_equal(n = shared_policy_encode(&p, buf, sizeof(buf)), 0);
	assert_int_equal(n, strlen(HEAD POLICY));
	assert_memory_equal(buf, HEAD POLICY, n);
	assert_int_equal(shared_policy_decode(buf, n, &q, &why), 0);
	assert_string_equal(q.id, p.id);
	assert_int_equal(q.fetched_at, p.fetched_at);
	assert_int_equal(q.expires_at, p.expires_at);
	assert_int_equal(q.text_len, strlen(POLICY));
	assert_memory_equal(q.text, POLICY, q.text_len);
	/* too small a buffer, a bad id: nothing to store */
	assert_int_equal(shared_policy_encode(&p, buf, 40), 0);
	strcpy(p.id, "bad id");
	assert_int_equal(shared_policy_encode(&p, buf, sizeof(buf)), 0);
}

static const struct {
	const char *name, *value, *why;
} bad[] = {
    {"empty", "", "not version 1"},
    {"v2", "v2\nid=a\n", "not version 1"},
    {"rfc8461_3_1_id_too_long", "v1\nid=123456789012345678901234567890123\n", "bad id"},
    {"rfc8461_3_1_id_punct", "v1\nid=a-b\nfetched=1\nexpires=2\n\nx", "bad id"},
    {"no fetch", "v1\nid=a\nexpires=2\n\nx", "bad fetch time"},
    {"negative", "v1\nid=a\nfetched=-1\nexpires=2\n\nx", "bad fetch time"},
    {"leading zero", "v1\nid=a\nfetched=01\nexpires=2\n\nx", "bad fetch time"},
    {"huge", "v1\nid=a\nfetched=99999999999999\nexpires=2\n\nx", "bad fetch time"},
    {"expiry before fetch", "v1\nid=a\nfetched=5\nexpires=5\n\nx", "bad expiry"},
    {"rfc8461_3_2_beyond_a_year", "v1\nid=a\nfetched=0\nexpires=31557601\n\nx", "bad expiry"},
    {"no blank line", "v1\nid=a\nfetched=1\nexpires=2\nx", "no blank line before the policy"},
    {"empty policy", "v1\nid=a\nfetched=1\nexpires=2\n\n", "policy empty or too long"},
    {"unterminated", "v1\nid=a\nfetched=1", "bad fetch time"},
};

static void
bad_values_refused_with_reason(void **state)
{
	struct shared_policy q;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		if (shared_policy_decode(bad[i].value, strlen(bad[i].value), &q, &why) == 0 ||
		    why == NULL || strcmp(why, bad[i].why) != 0)
			fail_msg("case %s: got \"%s\", expected \"%s\"", bad[i].name,
			         why ? why : "(accepted)", bad[i].why);
	}
}

static void
change_and_server_messages(void **state)
{
	char domain[254], id[STS_ID_MAX + 1], msg[96];
	uint8_t addr[16], v4[4] = {198, 51, 100, 25};
	int family;
	int64_t seen;

	(void)state;
	assert_int_equal(shared_change_decode("Example.COM id2", 15, domain, id), 0);
	assert_string_equal(domain, "example.com");
	assert_string_equal(id, "id2");
	assert_int_equal(shared_change_decode("example.com", 11, domain, id), -1);
	assert_int_equal(shared_change_decode("exa mple.com id2", 16, domain, id), -1);
	assert_int_equal(shared_change_decode("ex\0mple.com id2", 15, domain, id), -1);
	assert_int_equal(shared_change_decode(" id2", 4, domain, id), -1);

	assert_int_equal(shared_server_encode(AF_INET, v4, 1700000000, msg, sizeof(msg)), 24);
	assert_string_equal(msg, "198.51.100.25 1700000000");
	assert_int_equal(shared_server_decode(msg, strlen(msg), &family, addr, &seen), 0);
	assert_int_equal(family, AF_INET);
	assert_memory_equal(addr, v4, 4);
	assert_int_equal(seen, 1700000000);
	assert_int_equal(shared_server_decode("2001:db8::25 7", 14, &family, addr, &seen), 0);
	assert_int_equal(family, AF_INET6);
	assert_int_equal(shared_server_decode("mx.example 7", 12, &family, addr, &seen), -1);
	assert_int_equal(shared_server_decode("10.0.0.1 -7", 11, &family, addr, &seen), -1);
	assert_int_equal(shared_server_decode("10.0.0.1", 8, &family, addr, &seen), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(policy_round_trip),
	    cmocka_unit_test(bad_values_refused_with_reason),
	    cmocka_unit_test(change_and_server_messages),
	};

	return cmocka_run_group_tests_name("shared_value", tests, NULL, NULL);
}
