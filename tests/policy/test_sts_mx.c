// sources: policy/sts_mx.c policy/sts_policy.c core/types.c
/*
 * test_sts_mx.c - mx pattern validation (RFC 8461 section 3.2) and
 * matching (section 4.1), as tables of named cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sts_mx.h"
#include "policy/sts_policy.h"

#define L63 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc"
#define L64 L63 "d"
/* Three 63-octet labels, a 61-octet one and three dots: 253 octets, the longest name. */
#define N253                                                                                       \
	L63 "." L63 "." L63 "."                                                                    \
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghija"
#define N254 N253 "b"

struct valid_case {
	const char *name;
	const char *pattern;
	bool want;
};

static const struct valid_case valid_cases[] = {
    {"rfc8461_3_2_plain_host", "mx1.example.com", true},
    {"rfc8461_3_2_wildcard_prefix", "*.example.com", true},
    {"rfc8461_3_2_trailing_dot_allowed", "mx.example.com.", true},
    {"rfc8461_3_2_wildcard_trailing_dot", "*.example.com.", true},
    {"rfc8461_3_2_upper_case_allowed", "MX.Example.COM", true},
    {"rfc8461_3_2_a_label_allowed", "xn--bcher-kva.example", true},
    {"rfc8461_3_2_digits_in_labels", "mx1.123.example", true},
    {"rfc8461_3_2_single_label", "localhost", true},
    {"rfc8461_3_2_label_63_ok", L63 ".example", true},
    {"rfc8461_3_2_label_64_invalid", L64 ".example", false},
    {"rfc8461_3_2_name_253_ok", N253, true},
    {"rfc8461_3_2_name_253_trailing_dot_ok", N253 ".", true},
    {"rfc8461_3_2_name_254_invalid", N254, false},
    {"rfc8461_3_2_null_invalid", NULL, false},
    {"rfc8461_3_2_empty_invalid", "", false},
    {"rfc8461_3_2_dot_only_invalid", ".", false},
    {"rfc8461_3_2_ipv4_literal_invalid", "192.0.2.1", false},
    {"rfc8461_3_2_ipv4_bracket_invalid", "[192.0.2.1]", false},
    {"rfc8461_3_2_ipv6_literal_invalid", "2001:db8::1", false},
    {"rfc8461_3_2_ipv6_bracket_invalid", "[IPv6:2001:db8::1]", false},
    {"rfc8461_3_2_numeric_tld_invalid", "mx.example.123", false},
    {"rfc8461_3_2_star_alone_invalid", "*", false},
    {"rfc8461_3_2_star_dot_only_invalid", "*.", false},
    {"rfc8461_3_2_star_not_leftmost_invalid", "mx.*.example.com", false},
    {"rfc8461_3_2_partial_wildcard_invalid", "mx*.example.com", false},
    {"rfc8461_3_2_star_suffix_label_invalid", "*mx.example.com", false},
    {"rfc8461_3_2_double_wildcard_invalid", "*.*.example.com", false},
    {"rfc8461_3_2_star_last_label_invalid", "example.*", false},
    {"rfc8461_3_2_empty_label_invalid", "mx..example.com", false},
    {"rfc8461_3_2_leading_dot_invalid", ".example.com", false},
    {"rfc8461_3_2_two_trailing_dots_invalid", "example.com..", false},
    {"rfc8461_3_2_u_label_invalid",
     "b\xc3\xbc"
     "cher.example",
     false},
    {"rfc8461_3_2_underscore_invalid", "mx_1.example.com", false},
    {"rfc8461_3_2_space_invalid", "mx .example.com", false},
    {"rfc8461_3_2_hyphen_leading_invalid", "-mx.example.com", false},
    {"rfc8461_3_2_hyphen_trailing_invalid", "mx-.example.com", false},
    {"rfc8461_3_2_hyphen_inside_ok", "m-x.example.com", true},
};

static void
run_valid_case(void **state)
{
	const struct valid_case *c = *state;

	assert_int_equal(sts_mx_pattern_valid(c->pattern), c->want);
}

struct match_case {
	const char *name;
	const char *pattern;
	const char *host;
	bool want;
};

static const struct match_case match_cases[] = {
    {"rfc8461_4_1_exact_match", "mx.example.com", "mx.example.com", true},
    {"rfc8461_4_1_exact_mismatch", "mx.example.com", "mx2.example.com", false},
    {"rfc8461_4_1_case_insensitive", "MX.Example.com", "mx.EXAMPLE.COM", true},
    {"rfc8461_4_1_host_trailing_dot_ignored", "mx.example.com", "mx.example.com.", true},
    {"rfc8461_4_1_pattern_trailing_dot_ignored", "mx.example.com.", "mx.example.com", true},
    {"rfc8461_4_1_wildcard_one_label", "*.example.com", "mx.example.com", true},
    {"rfc8461_4_1_wildcard_case_insensitive", "*.example.com", "MX.EXAMPLE.com.", true},
    {"rfc8461_4_1_wildcard_not_two_labels", "*.example.com", "a.b.example.com", false},
    {"rfc8461_4_1_wildcard_not_bare_domain", "*.example.com", "example.com", false},
    {"rfc8461_4_1_wildcard_not_empty_label", "*.example.com", ".example.com", false},
    {"rfc8461_4_1_wildcard_suffix_boundary", "*.example.com", "mxexample.com", false},
    {"rfc8461_4_1_wildcard_other_domain", "*.example.com", "mx.example.org", false},
    {"rfc8461_4_1_wildcard_not_literal_star", "*.example.com", "*.example.com", false},
    {"rfc8461_4_1_suffix_is_not_match", "example.com", "mx.example.com", false},
    {"rfc8461_4_1_prefix_is_not_match", "mx.example.com", "mx.example.co", false},
    {"rfc8461_4_1_empty_host", "mx.example.com", "", false},
    {"rfc8461_4_1_null_host", "mx.example.com", NULL, false},
    {"rfc8461_4_1_null_pattern", NULL, "mx.example.com", false},
};

static void
run_match_case(void **state)
{
	const struct match_case *c = *state;

	assert_int_equal(sts_mx_match(c->pattern, c->host), c->want);
}

/* Any pattern of a policy may match; an empty or NULL policy matches nothing. */
static void
rfc8461_4_1_policy_any_pattern(void **state)
{
	static const char text[] = "version: STSv1\nmode: enforce\nmax_age: 60\n"
	                           "mx: mail.example.net\nmx: *.example.com\n";
	struct sts_policy p = {0};

	(void)state;
	assert_int_equal(sts_policy_parse(text, sizeof(text) - 1, &p, NULL), 0);
	assert_true(sts_mx_match_policy(&p, "mail.example.net"));
	assert_true(sts_mx_match_policy(&p, "mx1.example.com."));
	assert_false(sts_mx_match_policy(&p, "a.b.example.com"));
	assert_false(sts_mx_match_policy(&p, "example.net"));
	assert_false(sts_mx_match_policy(NULL, "mail.example.net"));
	sts_policy_clear(&p);
	assert_false(sts_mx_match_policy(&p, "mail.example.net"));
}

int
main(void)
{
	size_t nv = sizeof(valid_cases) / sizeof(valid_cases[0]);
	size_t nm = sizeof(match_cases) / sizeof(match_cases[0]);
	struct CMUnitTest *tests = calloc(nv + nm + 1, sizeof(*tests));
	size_t n = 0;
	int rc;

	if (tests == NULL)
		return 1;
	for (size_t i = 0; i < nv; i++)
		tests[n++] = (struct CMUnitTest){.name = valid_cases[i].name,
		                                 .test_func = run_valid_case,
		                                 .initial_state = (void *)&valid_cases[i]};
	for (size_t i = 0; i < nm; i++)
		tests[n++] = (struct CMUnitTest){.name = match_cases[i].name,
		                                 .test_func = run_match_case,
		                                 .initial_state = (void *)&match_cases[i]};
	tests[n++] = (struct CMUnitTest){.name = "rfc8461_4_1_policy_any_pattern",
	                                 .test_func = rfc8461_4_1_policy_any_pattern};
	rc = _cmocka_run_group_tests("sts_mx", tests, n, NULL, NULL);
	free(tests);
	return rc;
}
