// sources: policy/sts_tlsa.c
/*
 * test_sts_tlsa.c - TLSA records as the resolver hands them over (wire
 * rdata, RFC 6698 section 2.1) and as operators write them (section 2.2),
 * and their printed form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sts_tlsa.h"

static void
rfc6698_2_1_rdata(void **state)
{
	static uint8_t big[3 + STS_TLSA_DATA_MAX + 1];
	const uint8_t rd[] = {3, 1, 1, 0xab, 0xcd};
	struct tls_tlsa rr;

	(void)state;
	assert_int_equal(sts_tlsa_rdata(rd, sizeof(rd), &rr), 0);
	assert_int_equal(rr.usage, 3);
	assert_int_equal(rr.selector, 1);
	assert_int_equal(rr.mtype, 1);
	assert_int_equal(rr.len, 2);
	assert_ptr_equal(rr.data, rd + 3);
	/* the three octets and at least one of data */
	assert_int_equal(sts_tlsa_rdata(rd, 3, &rr), -1);
	assert_int_equal(sts_tlsa_rdata(rd, 0, &rr), -1);
	assert_int_equal(sts_tlsa_rdata(NULL, 5, &rr), -1);
	/* values are not judged here: an unknown usage still parses */
	assert_int_equal(sts_tlsa_rdata((const uint8_t[]){255, 255, 255, 0}, 4, &rr), 0);
	/* bounded */
	assert_int_equal(sts_tlsa_rdata(big, 3 + STS_TLSA_DATA_MAX, &rr), 0);
	assert_int_equal(sts_tlsa_rdata(big, sizeof(big), &rr), -1);
}

static void
rfc6698_2_2_text_table(void **state)
{
	static const struct {
		const char *name, *text;
		int ok;
		uint8_t usage, selector, mtype;
		size_t len;
		const char *why;
	} cases[] = {
	    {"rfc6698_2_2_plain", "3 1 1 ab01", 1, 3, 1, 1, 2, NULL},
	    {"rfc6698_2_2_upper_hex", "2 0 2 ABCDEF", 1, 2, 0, 2, 3, NULL},
	    {"rfc6698_2_2_hex_split_by_space", "3 1 1 ab 01\tcd\n", 1, 3, 1, 1, 3, NULL},
	    {"rfc6698_2_2_leading_space", "  0 0 0 00", 1, 0, 0, 0, 1, NULL},
	    {"rfc6698_2_2_field_255", "255 255 255 00", 1, 255, 255, 255, 1, NULL},
	    {"rfc6698_2_2_field_256", "256 1 1 00", 0, 0, 0, 0, 0, "0-255"},
	    {"rfc6698_2_2_field_long", "0003 1 1 00", 0, 0, 0, 0, 0, "0-255"},
	    {"rfc6698_2_2_two_fields", "3 1", 0, 0, 0, 0, 0, "USAGE"},
	    {"rfc6698_2_2_no_data", "3 1 1 ", 0, 0, 0, 0, 0, "missing"},
	    {"rfc6698_2_2_no_data_at_all", "3 1 1", 0, 0, 0, 0, 0, "USAGE"},
	    {"rfc6698_2_2_odd_hex", "3 1 1 abc", 0, 0, 0, 0, 0, "odd"},
	    {"rfc6698_2_2_not_hex", "3 1 1 abzz", 0, 0, 0, 0, 0, "'z'"},
	    {"rfc6698_2_2_negative", "-3 1 1 ab", 0, 0, 0, 0, 0, "fields"},
	    {"rfc6698_2_2_letters", "x 1 1 ab", 0, 0, 0, 0, 0, "fields"},
	    {"rfc6698_2_2_empty", "", 0, 0, 0, 0, 0, "fields"},
	};
	uint8_t buf[64];
	struct tls_tlsa rr;
	char why[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		print_message("case %s\n", cases[i].name);
		why[0] = '\0';
		r = sts_tlsa_text(cases[i].text, buf, sizeof(buf), &rr, why, sizeof(why));
		assert_int_equal(r, cases[i].ok ? 0 : -1);
		if (!cases[i].ok) {
			if (strstr(why, cases[i].why) == NULL)
				fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].name, why,
				         cases[i].why);
			continue;
		}
		assert_int_equal(rr.usage, cases[i].usage);
		assert_int_equal(rr.selector, cases[i].selector);
		assert_int_equal(rr.mtype, cases[i].mtype);
		assert_int_equal(rr.len, cases[i].len);
	}
	/* the data must fit the caller's buffer */
	assert_int_equal(sts_tlsa_text("3 1 1 0102030405", buf, 4, &rr, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "longer"));
}

static void
rfc6698_2_2_format(void **state)
{
	const uint8_t d[] = {0x00, 0x1f, 0xa0, 0xff};
	struct tls_tlsa rr = {.usage = 3, .selector = 1, .mtype = 1, .data = d, .len = sizeof(d)};
	uint8_t back[8];
	struct tls_tlsa rt;
	char out[64], why[64];

	(void)state;
	assert_int_equal(sts_tlsa_format(&rr, out, sizeof(out)), strlen("3 1 1 001fa0ff"));
	assert_string_equal(out, "3 1 1 001fa0ff");
	/* what is printed parses back to the same record */
	assert_int_equal(sts_tlsa_text(out, back, sizeof(back), &rt, why, sizeof(why)), 0);
	assert_int_equal(rt.len, rr.len);
	assert_memory_equal(rt.data, d, sizeof(d));
	/* cut, and says so */
	sts_tlsa_format(&rr, out, 12);
	assert_string_equal(out, "3 1 1 00...");
	sts_tlsa_format(&rr, out, 4);
	assert_string_equal(out, "3 1");
	assert_int_equal(sts_tlsa_format(&rr, out, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc6698_2_1_rdata),
	    cmocka_unit_test(rfc6698_2_2_text_table),
	    cmocka_unit_test(rfc6698_2_2_format),
	};

	return cmocka_run_group_tests_name("sts_tlsa", tests, NULL, NULL) != 0;
}
