// sources: policy/sts_policy.c policy/sts_mx.c core/types.c
/*
 * test_sts_policy.c - the policy file rules of RFC 8461 sections 3.2 and
 * 3.3, one named case per rule: either the normal JSON form of the parsed
 * policy, or the line and reason of the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sts_policy.h"

#define HEAD "version: STSv1\nmode: enforce\n"
#define MX1  "mx: mail.example.com\n"
#define AGE  "max_age: 86400\n"
#define JSON(mode, mx, age)                                                                        \
	"{\"version\":\"STSv1\",\"mode\":\"" mode "\",\"mx\":[" mx "],\"max_age\":" age "}"
#define JMX1     "\"mail.example.com\""
#define NUL_TEXT "version: STSv1\nmode: enf\0rce\n" MX1 AGE

struct policy_case {
	const char *name;
	const char *text;
	size_t len;         /* 0: strlen(text) */
	const char *json;   /* expected normal form; NULL: expect an error */
	unsigned line;      /* expected error line */
	const char *reason; /* substring expected in the error reason */
};

static const struct policy_case cases[] = {
    {"rfc8461_3_2_minimal_enforce", HEAD MX1 AGE, 0, JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_rfc_example",
     "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
     "mx: backupmx.example.com\nmax_age: 604800\n",
     0,
     JSON("enforce", "\"mail.example.com\",\"*.example.net\",\"backupmx.example.com\"", "604800"),
     0, NULL},
    {"rfc8461_3_2_crlf_and_lf", "version: STSv1\r\nmode: testing\nmx: mail.example.com\r\n" AGE, 0,
     JSON("testing", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_all_crlf",
     "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400\r\n", 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_final_newline_optional", HEAD MX1 "max_age: 86400", 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_whitespace_after_colon_optional",
     "version:STSv1\nmode:\t  enforce\nmx:mail.example.com\n" AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_trailing_whitespace_allowed",
     "version: STSv1 \nmode: enforce\t\r\nmx: mail.example.com  \n" AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_blank_lines_skipped", "\nversion: STSv1\n\n  \r\nmode: enforce\n\t\n" MX1 AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_order_free", AGE MX1 "mode: enforce\nversion: STSv1\n", 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_empty_file", "", 0, NULL, 0, "version: missing"},
    {"rfc8461_3_2_version_required", "mode: enforce\n" MX1 AGE, 0, NULL, 0, "version: missing"},
    {"rfc8461_3_2_version_must_be_stsv1", "version: STSv2\nmode: enforce\n" MX1 AGE, 0, NULL, 1,
     "version: unsupported value \"STSv2\""},
    {"rfc8461_3_2_version_case_sensitive", "version: stsv1\nmode: enforce\n" MX1 AGE, 0, NULL, 1,
     "unsupported value"},
    {"rfc8461_3_2_mode_required", "version: STSv1\n" MX1 AGE, 0, NULL, 0, "mode: missing"},
    {"rfc8461_3_2_mode_case_sensitive", "version: STSv1\nmode: Enforce\n" MX1 AGE, 0, NULL, 2,
     "mode: unknown value \"Enforce\""},
    {"rfc8461_3_2_mode_unknown_value", "version: STSv1\nmode: reject\n" MX1 AGE, 0, NULL, 2,
     "mode: unknown value \"reject\""},
    {"rfc8461_3_2_mode_empty", "version: STSv1\nmode:\n" MX1 AGE, 0, NULL, 2,
     "mode: unknown value \"\""},
    {"rfc8461_3_2_mode_testing", "version: STSv1\nmode: testing\n" MX1 AGE, 0,
     JSON("testing", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_mx_not_required_for_none", "version: STSv1\nmode: none\n" AGE, 0,
     JSON("none", "", "86400"), 0, NULL},
    {"rfc8461_3_2_mx_required_unless_none", HEAD AGE, 0, NULL, 0,
     "mx: required when mode is enforce"},
    {"rfc8461_3_2_mx_required_for_testing", "version: STSv1\nmode: testing\n" AGE, 0, NULL, 0,
     "mx: required when mode is testing"},
    {"rfc8461_3_2_max_age_required", HEAD MX1, 0, NULL, 0, "max_age: missing"},
    {"rfc8461_3_2_max_age_clamped", HEAD MX1 "max_age: 31557601\n", 0,
     JSON("enforce", JMX1, "31557600"), 0, NULL},
    {"rfc8461_3_2_max_age_ten_digits_clamped", HEAD MX1 "max_age: 9999999999\n", 0,
     JSON("enforce", JMX1, "31557600"), 0, NULL},
    {"rfc8461_3_2_max_age_at_limit", HEAD MX1 "max_age: 31557600\n", 0,
     JSON("enforce", JMX1, "31557600"), 0, NULL},
    {"rfc8461_3_2_max_age_leading_zeros", HEAD MX1 "max_age: 0000000060\n", 0,
     JSON("enforce", JMX1, "60"), 0, NULL},
    {"rfc8461_3_2_max_age_zero", HEAD MX1 "max_age: 0\n", 0, JSON("enforce", JMX1, "0"), 0, NULL},
    {"rfc8461_3_2_max_age_eleven_digits_invalid", HEAD MX1 "max_age: 00000000060\n", 0, NULL, 4,
     "max_age: expected 1 to 10 digits"},
    {"rfc8461_3_2_max_age_unit_invalid", HEAD MX1 "max_age: 86400s\n", 0, NULL, 4,
     "max_age: expected"},
    {"rfc8461_3_2_max_age_negative_invalid", HEAD MX1 "max_age: -1\n", 0, NULL, 4,
     "max_age: expected"},
    {"rfc8461_3_2_max_age_plus_invalid", HEAD MX1 "max_age: +60\n", 0, NULL, 4,
     "max_age: expected"},
    {"rfc8461_3_2_max_age_empty_invalid", HEAD MX1 "max_age:\n", 0, NULL, 4, "max_age: expected"},
    {"rfc8461_3_2_key_case_sensitive", "version: STSv1\nMode: enforce\n" MX1 AGE, 0, NULL, 0,
     "mode: missing"},
    {"rfc8461_3_2_unknown_key_ignored", HEAD "foo_bar.x-1: some value here\n" MX1 AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_first_mode_wins", "version: STSv1\nmode: testing\nmode: enforce\n" MX1 AGE, 0,
     JSON("testing", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_first_max_age_wins", HEAD MX1 "max_age: 60\nmax_age: 120\n", 0,
     JSON("enforce", JMX1, "60"), 0, NULL},
    {"rfc8461_3_2_first_version_wins", HEAD "version: STSv2\n" MX1 AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_mx_lines_accumulate", HEAD "mx: a.example\nmx: *.b.example\nmx: c.example\n" AGE,
     0, JSON("enforce", "\"a.example\",\"*.b.example\",\"c.example\"", "86400"), 0, NULL},
    {"rfc8461_3_2_mx_normal_form", HEAD "mx: MX.Example.COM.\nmx: mx.example.com\n" AGE, 0,
     JSON("enforce", "\"mx.example.com\"", "86400"), 0, NULL},
    {"rfc8461_3_2_mx_ip_literal_invalid", HEAD MX1 "mx: 192.0.2.1\n" AGE, 0, NULL, 4,
     "mx: invalid pattern \"192.0.2.1\""},
    {"rfc8461_3_2_mx_star_inside_invalid", HEAD "mx: mx.*.example.com\n" AGE, 0, NULL, 3,
     "mx: invalid pattern"},
    {"rfc8461_3_2_mx_star_alone_invalid", HEAD "mx: *\n" AGE, 0, NULL, 3, "mx: invalid pattern"},
    {"rfc8461_3_2_mx_empty_label_invalid", HEAD "mx: mx..example.com\n" AGE, 0, NULL, 3,
     "mx: invalid pattern"},
    {"rfc8461_3_2_mx_empty_invalid", HEAD "mx:\n" AGE, 0, NULL, 3, "mx: invalid pattern"},
    {"rfc8461_3_2_mx_two_values_invalid", HEAD "mx: a.example b.example\n" AGE, 0, NULL, 3,
     "mx: invalid pattern"},
    {"rfc8461_3_2_mx_u_label_invalid",
     HEAD "mx: b\xc3\xbc"
          "cher.example\n" AGE,
     0, NULL, 3, "mx: invalid pattern"},
    /* Section 3.2: sts-policy-vchar includes UTF8-2, UTF8-3 and UTF8-4 in extension values. */
    {"rfc8461_3_2_ext_value_utf8_2", HEAD "note: gr\xc3\xbc\xc3\x9f dich\n" MX1 AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_ext_value_utf8_3", HEAD "note: \xe2\x82\xac \xed\x9f\xbf \xe0\xa0\x80\n" MX1 AGE,
     0, JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_ext_value_utf8_4", HEAD "note: \xf0\x9f\x93\xa7 \xf4\x8f\xbf\xbf\n" MX1 AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_utf8_key_invalid", HEAD "n\xc3\xb6te: x\n" MX1 AGE, 0, NULL, 3, "malformed key"},
    {"rfc8461_3_2_utf8_mode_invalid", "version: STSv1\nmode: enf\xc3\xb6rce\n" MX1 AGE, 0, NULL, 2,
     "mode: unknown value"},
    {"rfc8461_3_2_utf8_max_age_invalid", HEAD MX1 "max_age: 8\xd9\xa0\n", 0, NULL, 4,
     "max_age: expected"},
    {"rfc3629_4_lone_continuation_invalid",
     HEAD "note: a\x80"
          "b\n" MX1 AGE,
     0, NULL, 3, "invalid UTF-8 at octet 8"},
    {"rfc3629_4_overlong_2_invalid", HEAD "note: \xc0\xaf\n" MX1 AGE, 0, NULL, 3, "invalid UTF-8"},
    {"rfc3629_4_overlong_3_invalid", HEAD "note: \xe0\x80\xaf\n" MX1 AGE, 0, NULL, 3,
     "invalid UTF-8"},
    {"rfc3629_4_overlong_4_invalid", HEAD "note: \xf0\x80\x80\xaf\n" MX1 AGE, 0, NULL, 3,
     "invalid UTF-8"},
    {"rfc3629_4_surrogate_invalid", HEAD "note: \xed\xa0\x80\n" MX1 AGE, 0, NULL, 3,
     "invalid UTF-8"},
    {"rfc3629_4_above_10ffff_invalid", HEAD "note: \xf4\x90\x80\x80\n" MX1 AGE, 0, NULL, 3,
     "invalid UTF-8"},
    {"rfc3629_4_f5_invalid", HEAD "note: \xf5\x80\x80\x80\n" MX1 AGE, 0, NULL, 3, "invalid UTF-8"},
    {"rfc3629_4_truncated_at_eol_invalid", HEAD "note: ab\xe2\x82\n" MX1 AGE, 0, NULL, 3,
     "invalid UTF-8 at octet 9"},
    {"rfc3629_4_truncated_at_eof_invalid", HEAD MX1 AGE "note: \xf0\x9f\x93", 0, NULL, 5,
     "invalid UTF-8"},
    {"rfc3629_4_c1_control_allowed", HEAD "note: \xc2\x85\n" MX1 AGE, 0,
     JSON("enforce", JMX1, "86400"), 0, NULL},
    {"rfc8461_3_2_mx_checked_for_none", "version: STSv1\nmode: none\nmx: 10.0.0.1\n" AGE, 0, NULL,
     3, "mx: invalid pattern"},
    {"rfc8461_3_2_line_without_colon_invalid", HEAD "mx mail.example.com\n" AGE, 0, NULL, 3,
     "expected \"key: value\""},
    {"rfc8461_3_2_space_before_colon_invalid", "version: STSv1\nmode : enforce\n" MX1 AGE, 0, NULL,
     2, "malformed key \"mode \""},
    {"rfc8461_3_2_leading_space_invalid", "version: STSv1\n mode: enforce\n" MX1 AGE, 0, NULL, 2,
     "malformed key"},
    {"rfc8461_3_2_comment_line_invalid", "# policy\n" HEAD MX1 AGE, 0, NULL, 1,
     "expected \"key: value\""},
    {"rfc8461_3_2_nul_invalid", NUL_TEXT, sizeof(NUL_TEXT) - 1, NULL, 2, "NUL octet"},
    {"rfc8461_3_2_bare_cr_invalid", "version: STSv1\rmode: enforce\n" MX1 AGE, 0, NULL, 1,
     "control character 0x0d"},
    {"rfc8461_3_2_cr_before_eof_invalid", HEAD MX1 "max_age: 60\r", 0, NULL, 4,
     "control character"},
    {"rfc8461_3_2_error_line_counts_blank_lines", "\n\nversion: STSv1\n\nmode: bogus\n" MX1 AGE, 0,
     NULL, 5, "mode: unknown value \"bogus\""},
    {"rfc8461_3_2_error_line_counts_crlf", "version: STSv1\r\n\r\nmode: enforce\r\nmx: *\r\n", 0,
     NULL, 4, "mx: invalid pattern \"*\""},
};

static void
run_case(void **state)
{
	const struct policy_case *c = *state;
	size_t len = c->len ? c->len : strlen(c->text);
	struct sts_policy p = {0};
	struct sts_policy_error err;
	char json[1024];
	int rc;

	memset(&err, 0x55, sizeof(err));
	rc = sts_policy_parse(c->text, len, &p, &err);
	if (c->json != NULL) {
		if (rc != 0)
			fail_msg("line %u: %s", err.line, err.reason);
		assert_int_equal(sts_policy_json(&p, json, sizeof(json)), (int)strlen(c->json));
		assert_string_equal(json, c->json);
	} else {
		assert_int_equal(rc, -1);
		assert_int_equal(err.line, c->line);
		if (strstr(err.reason, c->reason) == NULL)
			fail_msg("reason \"%s\" lacks \"%s\"", err.reason, c->reason);
		/* A failed parse leaves the output empty. */
		assert_null(p.mx);
		assert_int_equal(p.n_mx, 0);
		assert_int_equal(p.max_age, 0);
	}
	sts_policy_clear(&p);
}

/* Section 3.2 in our limits: at most STS_POLICY_MAX_MX distinct patterns. */
static void
rfc8461_3_2_mx_too_many(void **state)
{
	char text[8192];
	size_t off;
	struct sts_policy p = {0};
	struct sts_policy_error err;

	(void)state;
	off = (size_t)snprintf(text, sizeof(text), HEAD AGE);
	for (int i = 0; i < STS_POLICY_MAX_MX; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "mx: mx%d.example\n", i);
	assert_int_equal(sts_policy_parse(text, off, &p, &err), 0);
	assert_int_equal(p.n_mx, STS_POLICY_MAX_MX);
	assert_string_equal(p.mx[STS_POLICY_MAX_MX - 1], "mx63.example");
	sts_policy_clear(&p);

	/* Repeating a pattern does not count against the limit. */
	off += (size_t)snprintf(text + off, sizeof(text) - off, "mx: MX0.example.\n");
	assert_int_equal(sts_policy_parse(text, off, &p, &err), 0);
	sts_policy_clear(&p);

	off += (size_t)snprintf(text + off, sizeof(text) - off, "mx: one-more.example\n");
	assert_true(off < sizeof(text));
	assert_int_equal(sts_policy_parse(text, off, &p, &err), -1);
	assert_int_equal(err.line, 3 + STS_POLICY_MAX_MX + 2);
	assert_string_equal(err.reason, "mx: more than 64 patterns");
	assert_null(p.mx);
}

/* Section 3.3: the body is at most 64 KiB; padding with blank lines up to it is fine. */
static void
rfc8461_3_3_body_limit(void **state)
{
	size_t len = STS_POLICY_MAX_BODY + 1;
	char *text = malloc(len);
	struct sts_policy p = {0};
	struct sts_policy_error err;
	static const char head[] = HEAD MX1 AGE;

	(void)state;
	assert_non_null(text);
	memset(text, '\n', len);
	memcpy(text, head, sizeof(head) - 1);
	assert_int_equal(sts_policy_parse(text, STS_POLICY_MAX_BODY, &p, &err), 0);
	sts_policy_clear(&p);
	assert_int_equal(sts_policy_parse(text, len, &p, &err), -1);
	assert_int_equal(err.line, 0);
	assert_string_equal(err.reason, "policy larger than 65536 octets");
	free(text);
}

/* The JSON form fails cleanly when the buffer is short by one. */
static void
json_buffer_too_small(void **state)
{
	static const char text[] = HEAD MX1 AGE;
	static const char want[] = JSON("enforce", JMX1, "86400");
	char buf[sizeof(want)];
	struct sts_policy p = {0};

	(void)state;
	assert_int_equal(sts_policy_parse(text, sizeof(text) - 1, &p, NULL), 0);
	assert_int_equal(sts_policy_json(&p, buf, sizeof(buf)), (int)sizeof(want) - 1);
	assert_string_equal(buf, want);
	assert_int_equal(sts_policy_json(&p, buf, sizeof(buf) - 1), -1);
	assert_string_equal(buf, "");
	assert_int_equal(sts_policy_json(&p, buf, 0), -1);
	sts_policy_clear(&p);
}

/* Patterns that did not come from the parser are still written as valid JSON. */
static void
json_escapes_foreign_patterns(void **state)
{
	char a[] = "a\"b\\c\x01";
	char *mx[] = {a};
	struct sts_policy p = {.mode = STS_MODE_TESTING, .max_age = 5, .mx = mx, .n_mx = 1};
	char buf[256];

	(void)state;
	assert_true(sts_policy_json(&p, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, JSON("testing", "\"a\\\"b\\\\c\\u0001\"", "5"));
}

/* A copy is deep: clearing the original leaves it intact. */
static void
copy_is_deep(void **state)
{
	static const char text[] = HEAD "mx: a.example\nmx: *.b.example\n" AGE;
	struct sts_policy p = {0}, q = {0}, empty = {0}, r = {0};
	char buf[256];

	(void)state;
	assert_int_equal(sts_policy_parse(text, sizeof(text) - 1, &p, NULL), 0);
	assert_int_equal(sts_policy_copy(&q, &p), 0);
	assert_ptr_not_equal(q.mx, p.mx);
	assert_ptr_not_equal(q.mx[0], p.mx[0]);
	sts_policy_clear(&p);
	assert_null(p.mx);
	sts_policy_clear(&p);
	assert_true(sts_policy_json(&q, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, JSON("enforce", "\"a.example\",\"*.b.example\"", "86400"));
	sts_policy_clear(&q);
	assert_int_equal(sts_policy_copy(&r, &empty), 0);
	assert_null(r.mx);
	sts_policy_clear(&r);
	sts_policy_clear(NULL);
}

int
main(void)
{
	static const struct {
		const char *name;
		CMUnitTestFunction fn;
	} extra[] = {
	    {"rfc8461_3_2_mx_too_many", rfc8461_3_2_mx_too_many},
	    {"rfc8461_3_3_body_limit", rfc8461_3_3_body_limit},
	    {"json_buffer_too_small", json_buffer_too_small},
	    {"json_escapes_foreign_patterns", json_escapes_foreign_patterns},
	    {"copy_is_deep", copy_is_deep},
	};
	size_t nc = sizeof(cases) / sizeof(cases[0]);
	size_t ne = sizeof(extra) / sizeof(extra[0]);
	struct CMUnitTest *tests = calloc(nc + ne, sizeof(*tests));
	size_t n = 0;
	int rc;

	if (tests == NULL)
		return 1;
	for (size_t i = 0; i < nc; i++)
		tests[n++] = (struct CMUnitTest){.name = cases[i].name,
		                                 .test_func = run_case,
		                                 .initial_state = (void *)&cases[i]};
	for (size_t i = 0; i < ne; i++)
		tests[n++] = (struct CMUnitTest){.name = extra[i].name, .test_func = extra[i].fn};
	rc = _cmocka_run_group_tests("sts_policy", tests, n, NULL, NULL);
	free(tests);
	return rc;
}
