// sources: core/util.c
/*
 * test_util.c - string helpers, host name validation and IDN conversion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/util.h"

/* --- sts_strlcpy / sts_lower ------------------------------------------------ */

static void
strlcpy_cases(void **state)
{
	static const struct {
		const char *name;
		const char *src;
		size_t size;
		const char *want;
		size_t ret;
	} cases[] = {
	    {"fits", "abc", 8, "abc", 3},
	    {"exact", "abcdefg", 8, "abcdefg", 7},
	    {"truncated", "abcdefgh", 8, "abcdefg", 8},
	    {"one_byte", "abc", 1, "", 3},
	    {"empty", "", 4, "", 0},
	};
	char buf[8];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, 'Z', sizeof(buf));
		assert_int_equal(sts_strlcpy(buf, cases[i].src, cases[i].size), cases[i].ret);
		assert_string_equal(buf, cases[i].want);
	}
	/* Size 0 writes nothing. */
	buf[0] = 'Q';
	assert_int_equal(sts_strlcpy(buf, "abc", 0), 3);
	assert_int_equal(buf[0], 'Q');
}

static void
lower_ascii_only(void **state)
{
	char s[] = "MiXeD.Example-COM_\xC3\x9C";

	(void)state;
	sts_lower(s);
	/* Non-ASCII bytes (here U+00DC) are left alone. */
	assert_string_equal(s, "mixed.example-com_\xC3\x9C");
}

/* --- sts_hostname_valid ----------------------------------------------------- */

#define L63 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123"
#define L64 L63 "4"

static void
rfc8461_4_1_hostname_valid_table(void **state)
{
	static const struct {
		const char *name;
		const char *host;
		bool valid;
	} cases[] = {
	    {"plain", "mx1.example.com", true},
	    {"two_labels", "example.com", true},
	    {"trailing_dot", "example.com.", true},
	    {"upper_case", "MX.EXAMPLE.COM", true},
	    {"digits_in_labels", "123.example.c0m", true},
	    {"hyphen_inside", "mx-1.ex-ample.com", true},
	    {"a_label", "xn--bcher-kva.example", true},
	    {"label_63", L63 ".example", true},
	    {"label_64", L64 ".example", false},
	    {"single_label", "localhost", false},
	    {"single_label_dot", "localhost.", false},
	    {"empty", "", false},
	    {"dot_only", ".", false},
	    {"two_trailing_dots", "example.com..", false},
	    {"leading_dot", ".example.com", false},
	    {"empty_label", "mx..example.com", false},
	    {"leading_hyphen", "-mx.example.com", false},
	    {"trailing_hyphen", "mx-.example.com", false},
	    {"tld_trailing_hyphen", "mx.example.com-", false},
	    {"underscore", "_mta-sts.example.com", false},
	    {"underscore_inside", "mx_1.example.com", false},
	    {"ip_literal_v4", "10.0.0.1", false},
	    {"ip_literal_v4_dot", "10.0.0.1.", false},
	    {"ip_literal_bracketed", "[10.0.0.1]", false},
	    {"ip_literal_v6", "2001:db8::1", false},
	    {"numeric_tld", "example.123", false},
	    {"wildcard", "*.example.com", false},
	    {"space", "mx .example.com", false},
	    {"u_label",
	     "b\xC3\xBC"
	     "cher.example",
	     false},
	    {"control", "mx\t.example.com", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (sts_hostname_valid(cases[i].host) != cases[i].valid)
			fail_msg("case %s: \"%s\" expected %s", cases[i].name, cases[i].host,
			         cases[i].valid ? "valid" : "invalid");
	}
	assert_false(sts_hostname_valid(NULL));
}

/* Total length: 253 octets pass (254 with the trailing dot), 254 fail. */
static void
rfc1035_2_3_4_hostname_length(void **state)
{
	char name[300];
	size_t len = 0;

	(void)state;
	/* 4 labels of 63 plus dots = 255; build exactly 253 = 63*3 + 61 + 3 dots. */
	for (int i = 0; i < 3; i++) {
		memcpy(name + len, L63 ".", 64);
		len += 64;
	}
	memset(name + len, 'a', 61);
	len += 61;
	name[len] = '\0';
	assert_int_equal(strlen(name), 253);
	assert_true(sts_hostname_valid(name));
	name[len] = '.';
	name[len + 1] = '\0';
	assert_true(sts_hostname_valid(name));
	name[len] = 'a';
	name[len + 1] = '\0';
	assert_int_equal(strlen(name), 254);
	assert_false(sts_hostname_valid(name));
}

/* --- sts_domain_to_ascii ---------------------------------------------------- */

static void
rfc8461_4_1_domain_to_ascii_table(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		const char *want; /* NULL: must fail */
	} cases[] = {
	    {"ascii", "example.com", "example.com"},
	    {"upper_trailing_dot", "EXAMPLE.com.", "example.com"},
	    {"u_label",
	     "b\xC3\xBC"
	     "cher.example",
	     "xn--bcher-kva.example"},
	    {"u_label_upper",
	     "B\xC3\x9C"
	     "CHER.example",
	     "xn--bcher-kva.example"},
	    {"u_label_mx",
	     "mx.m\xC3\xBC"
	     "nchen.example",
	     "mx.xn--mnchen-3ya.example"},
	    {"nontransitional_sharp_s", "fa\xC3\x9F.example", "xn--fa-hia.example"},
	    {"a_label_kept", "XN--BCHER-KVA.example", "xn--bcher-kva.example"},
	    {"cyrillic", "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xBC\xD0\xB5\xD1\x80.example",
	     "xn--e1afmkfd.example"},
	    {"ascii_hyphens_3_4", "r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com"},
	    {"ascii_digits_label", "1A.Example", "1a.example"},
	    {"two_trailing_dots", "example.com..", NULL},
	    {"empty", "", NULL},
	    {"dot", ".", NULL},
	    {"single_label", "localhost", NULL},
	    {"ip_literal", "10.0.0.1", NULL},
	    {"ip_literal_dot", "198.51.100.7.", NULL},
	    {"underscore", "_mta-sts.example.com", NULL},
	    {"space", "ex ample.com", NULL},
	    {"wildcard", "*.example.com", NULL},
	    {"bad_utf8_lone_continuation",
	     "b\xBC"
	     "cher.example",
	     NULL},
	    {"bad_utf8_truncated", "b\xC3", NULL},
	    {"bad_utf8_overlong_slash",
	     "a\xC0\xAF"
	     "b.example",
	     NULL},
	    {"bad_utf8_surrogate",
	     "a\xED\xA0\x80"
	     "b.example",
	     NULL},
	    {"bad_utf8_above_max",
	     "a\xF4\x90\x80\x80"
	     "b.example",
	     NULL},
	    {"bad_utf8_ff", "\xFF.example", NULL},
	    {"label_64", L64 ".example", NULL},
	    {"empty_label", "a..example", NULL},
	};
	char out[STS_HOSTNAME_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = sts_domain_to_ascii(cases[i].in, out, sizeof(out));
		if (cases[i].want == NULL) {
			if (rc != -1 || out[0] != '\0')
				fail_msg("case %s: expected failure, got %d \"%s\"", cases[i].name,
				         rc, out);
			continue;
		}
		if (rc != 0 || strcmp(out, cases[i].want) != 0)
			fail_msg("case %s: expected \"%s\", got %d \"%s\"", cases[i].name,
			         cases[i].want, rc, out);
		assert_true(sts_hostname_valid(out));
	}
	assert_int_equal(sts_domain_to_ascii(NULL, out, sizeof(out)), -1);
}

static void
domain_to_ascii_output_too_small(void **state)
{
	char out[12];

	(void)state;
	assert_int_equal(sts_domain_to_ascii("example.com", out, sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(sts_domain_to_ascii("example.com", out, 11), -1);
	assert_string_equal(out, "");
	/* The A-label form is longer than the input. */
	assert_int_equal(sts_domain_to_ascii("b\xC3\xBC"
	                                     "cher.ex",
	                                     out, sizeof(out)),
	                 -1);
	assert_int_equal(sts_domain_to_ascii("example.com", out, 0), -1);
}

static void
domain_to_ascii_too_long(void **state)
{
	char in[2000], out[STS_HOSTNAME_MAX + 1];

	(void)state;
	/* 300 octets of valid labels: longer than 253. */
	memset(in, 'a', 300);
	for (int i = 10; i < 300; i += 10)
		in[i] = '.';
	memcpy(in + 300, ".com", 5);
	assert_int_equal(sts_domain_to_ascii(in, out, sizeof(out)), -1);
	/* 253 octets and a trailing dot fit a 254-byte buffer once the dot is gone. */
	memset(in, 'a', 253);
	for (int i = 50; i < 253; i += 50)
		in[i] = '.';
	in[253] = '.';
	in[254] = '\0';
	assert_int_equal(sts_domain_to_ascii(in, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 253);
	in[254] = 'a';
	in[255] = '\0';
	assert_int_equal(sts_domain_to_ascii(in, out, sizeof(out)), -1);
	/* Input far above any possible host name is refused before conversion. */
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	assert_int_equal(sts_domain_to_ascii(in, out, sizeof(out)), -1);
}

static void
now_wall_is_realtime(void **state)
{
	int64_t a = (int64_t)time(NULL), b = sts_now_wall();

	(void)state;
	assert_true(b >= a && b - a <= 2);
	assert_true(b > 1600000000); /* after 2020 */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(strlcpy_cases),
	    cmocka_unit_test(lower_ascii_only),
	    cmocka_unit_test(rfc8461_4_1_hostname_valid_table),
	    cmocka_unit_test(rfc1035_2_3_4_hostname_length),
	    cmocka_unit_test(rfc8461_4_1_domain_to_ascii_table),
	    cmocka_unit_test(domain_to_ascii_output_too_small),
	    cmocka_unit_test(domain_to_ascii_too_long),
	    cmocka_unit_test(now_wall_is_realtime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
