// sources: policy/sts_rdata.c
/*
 * test_sts_rdata.c - DNS rdata decoding, as libunbound hands it over: TXT
 * character-strings joined without spaces (RFC 8461 section 3.1), MX
 * preference and name (RFC 1035 section 3.3.9, null MX of RFC 7505), A and
 * AAAA. Every malformed form must be refused, never read past its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "policy/sts_rdata.h"

struct txt_case {
	const char *name;
	const char *rd; /* wire bytes */
	size_t len;
	int ret;            /* expected length, or -1 */
	const char *joined; /* expected text when ret >= 0 */
};

#define RD(s) s, sizeof(s) - 1

static const struct txt_case txt_cases[] = {
    {"rfc8461_3_1_one_string", RD("\x10v=STSv1; id=1234"), 16, "v=STSv1; id=1234"},
    {"rfc8461_3_1_strings_joined_without_spaces", RD("\x08v=STSv1;\x08 id=abc;"), 16,
     "v=STSv1; id=abc;"},
    {"rfc1035_3_3_14_empty_string_allowed",
     RD("\x00\x03"
        "abc"),
     3, "abc"},
    {"rfc1035_3_3_14_string_past_the_end",
     RD("\x05"
        "abc"),
     -1, NULL},
    {"rfc1035_3_3_14_no_string_at_all", "", 0, -1, NULL},
    {"rfc1035_3_3_14_second_string_past_the_end",
     RD("\x02"
        "ab\x04"
        "c"),
     -1, NULL},
    {"nul_inside_is_kept_with_its_length",
     RD("\x03"
        "a\0b"),
     3, "a\0b"},
};

static void
txt_table(void **state)
{
	char out[STS_RDATA_TXT_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(txt_cases) / sizeof(txt_cases[0]); i++) {
		const struct txt_case *c = &txt_cases[i];
		int r = sts_rdata_txt((const uint8_t *)c->rd, c->len, out, sizeof(out));

		if (r != c->ret)
			fail_msg("case %s: returned %d, expected %d", c->name, r, c->ret);
		if (r >= 0 && memcmp(out, c->joined, (size_t)r) != 0)
			fail_msg("case %s: joined text differs", c->name);
		if (r >= 0 && out[r] != '\0')
			fail_msg("case %s: not NUL-terminated", c->name);
	}
}

static void
rfc8461_3_1_joined_record_bounded(void **state)
{
	uint8_t rd[20 * 256];
	char out[STS_RDATA_TXT_MAX + 1];
	size_t len = 0;

	(void)state;
	/* 16 strings of 255 = 4080 octets: accepted; one more string: refused. */
	for (int s = 0; s < 16; s++) {
		rd[len++] = 255;
		memset(rd + len, 'x', 255);
		len += 255;
	}
	assert_int_equal(sts_rdata_txt(rd, len, out, sizeof(out)), 4080);
	rd[len++] = 17;
	memset(rd + len, 'y', 17);
	len += 17;
	assert_int_equal(sts_rdata_txt(rd, len, out, sizeof(out)), -1);
}

static void
rfc1035_3_3_9_mx_and_rfc7505_null_mx(void **state)
{
	static const uint8_t mx[] = {0,   10,  3,   'm', 'x', '1', 7, 'e',
	                             'x', 'a', 'm', 'p', 'l', 'e', 0};
	static const uint8_t nullmx[] = {0, 0, 0};
	static const uint8_t trailing[] = {0, 10, 2, 'm', 'x', 0, 'z'};
	static const uint8_t pointer[] = {0, 10, 0xc0, 0x0c};
	static const uint8_t short_label[] = {0, 10, 5, 'm', 'x', 0};
	static const uint8_t dotted[] = {0, 10, 3, 'a', '.', 'b', 0};
	static const uint8_t no_pref[] = {0};
	char host[STS_RDATA_NAME_MAX + 1];
	unsigned pref = 0;

	(void)state;
	assert_int_equal(sts_rdata_mx(mx, sizeof(mx), &pref, host, sizeof(host)), 0);
	assert_int_equal(pref, 10);
	assert_string_equal(host, "mx1.example");
	assert_int_equal(sts_rdata_mx(nullmx, sizeof(nullmx), &pref, host, sizeof(host)), 0);
	assert_string_equal(host, "");
	/* The name must end exactly where the rdata ends. */
	assert_int_equal(sts_rdata_mx(trailing, sizeof(trailing), &pref, host, sizeof(host)), -1);
	/* Compression pointers are refused: libunbound hands names uncompressed. */
	assert_int_equal(sts_rdata_mx(pointer, sizeof(pointer), &pref, host, sizeof(host)), -1);
	assert_int_equal(sts_rdata_mx(short_label, sizeof(short_label), &pref, host, sizeof(host)),
	                 -1);
	/* A '.' inside a label would forge a different name in text. */
	assert_int_equal(sts_rdata_mx(dotted, sizeof(dotted), &pref, host, sizeof(host)), -1);
	assert_int_equal(sts_rdata_mx(no_pref, sizeof(no_pref), &pref, host, sizeof(host)), -1);
}

static void
rfc1035_2_3_4_name_longer_than_253_refused(void **state)
{
	uint8_t rd[300];
	char out[STS_RDATA_NAME_MAX + 1];
	size_t len = 0;

	(void)state;
	/* Five labels of 50: 254 characters with the dots. */
	for (int l = 0; l < 5; l++) {
		rd[len++] = 50;
		memset(rd + len, 'a', 50);
		len += 50;
	}
	rd[len++] = 0;
	assert_int_equal(sts_rdata_name(rd, len, out, sizeof(out)), -1);
	/* Four of them fit, and the wire length used is returned. */
	rd[4 * 51] = 0;
	assert_int_equal(sts_rdata_name(rd, 4 * 51 + 1, out, sizeof(out)), 4 * 51 + 1);
	assert_int_equal(strlen(out), 4 * 50 + 3);
}

static void
rfc1035_3_4_1_addresses(void **state)
{
	static const uint8_t a[] = {198, 51, 100, 25};
	uint8_t aaaa[16] = {0x20, 0x01, 0x0d, 0xb8};
	struct sockaddr_storage ss;
	char text[INET6_ADDRSTRLEN];

	(void)state;
	aaaa[15] = 1;
	assert_int_equal(sts_rdata_addr(AF_INET, a, sizeof(a), &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof(text));
	assert_string_equal(text, "198.51.100.25");
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, 0);
	assert_int_equal(sts_rdata_addr(AF_INET6, aaaa, sizeof(aaaa), &ss), 0);
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, text, sizeof(text));
	assert_string_equal(text, "2001:db8::1");
	/* The length must match the family exactly. */
	assert_int_equal(sts_rdata_addr(AF_INET, aaaa, sizeof(aaaa), &ss), -1);
	assert_int_equal(sts_rdata_addr(AF_INET6, a, sizeof(a), &ss), -1);
	assert_int_equal(sts_rdata_addr(AF_INET, a, 3, &ss), -1);
	assert_int_equal(sts_rdata_addr(AF_UNIX, a, sizeof(a), &ss), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(txt_table),
	    cmocka_unit_test(rfc8461_3_1_joined_record_bounded),
	    cmocka_unit_test(rfc1035_3_3_9_mx_and_rfc7505_null_mx),
	    cmocka_unit_test(rfc1035_2_3_4_name_longer_than_253_refused),
	    cmocka_unit_test(rfc1035_3_4_1_addresses),
	};

	return cmocka_run_group_tests_name("sts_rdata", tests, NULL, NULL);
}
