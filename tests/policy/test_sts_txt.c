// sources: policy/sts_txt.c
/*
 * test_sts_txt.c - the _mta-sts TXT record rules of RFC 8461 section 3.1,
 * one named case per rule: parsing single records, then choosing among all
 * the records of a name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sts_txt.h"

#define ID33   "abcdefghijklmnopqrstuvwxyz0123456"
#define ID32   "abcdefghijklmnopqrstuvwxyz012345"
#define NAME33 "e23456789012345678901234567890123"

struct parse_case {
	const char *name;
	const char *rec;
	size_t len; /* 0: strlen(rec) */
	enum sts_txt_status want;
	const char *id;     /* expected id when valid */
	const char *reason; /* substring expected in the reason when invalid */
};

static const struct parse_case parse_cases[] = {
    {"rfc8461_3_1_minimal_valid", "v=STSv1; id=20160831085700Z;", 0, STS_TXT_VALID,
     "20160831085700Z", NULL},
    {"rfc8461_3_1_final_semicolon_optional", "v=STSv1; id=abc", 0, STS_TXT_VALID, "abc", NULL},
    {"rfc8461_3_1_no_space_after_semicolon", "v=STSv1;id=abc", 0, STS_TXT_VALID, "abc", NULL},
    {"rfc8461_3_1_join_without_spaces",
     "v=STSv1; id=2016083108"
     "5700Z;",
     0, STS_TXT_VALID, "20160831085700Z", NULL},
    {"rfc8461_3_1_joined_with_space_invalid", "v=STSv1; id=2016083108 5700Z;", 0, STS_TXT_INVALID,
     "", "expected ';'"},
    {"rfc8461_3_1_version_space_semicolon", "v=STSv1 ; id=abc", 0, STS_TXT_VALID, "abc", NULL},
    {"rfc8461_3_1_whitespace_around_semicolon", "v=STSv1\t;\t id=abc \t; ", 0, STS_TXT_VALID, "abc",
     NULL},
    {"rfc8461_3_1_missing_semicolon_invalid", "v=STSv1 id=abc", 0, STS_TXT_INVALID, "",
     "expected ';'"},
    {"rfc8461_3_1_other_record_not_sts", "v=spf1 -all", 0, STS_TXT_NOT_STS, "", NULL},
    {"rfc8461_3_1_empty_record_not_sts", "", 0, STS_TXT_NOT_STS, "", NULL},
    {"rfc8461_3_1_version_case_sensitive", "v=stsv1; id=abc;", 0, STS_TXT_NOT_STS, "", NULL},
    {"rfc8461_3_1_version_must_be_whole", "v=STSv10; id=abc;", 0, STS_TXT_NOT_STS, "", NULL},
    {"rfc8461_3_1_version_must_be_first", "id=abc; v=STSv1", 0, STS_TXT_NOT_STS, "", NULL},
    {"rfc8461_3_1_leading_space_not_sts", " v=STSv1; id=abc", 0, STS_TXT_NOT_STS, "", NULL},
    {"rfc8461_3_1_version_alone_id_required", "v=STSv1", 0, STS_TXT_INVALID, "", "id: missing"},
    {"rfc8461_3_1_id_required", "v=STSv1; ext=1;", 0, STS_TXT_INVALID, "", "id: missing"},
    {"rfc8461_3_1_id_32_chars_ok", "v=STSv1; id=" ID32, 0, STS_TXT_VALID, ID32, NULL},
    {"rfc8461_3_1_id_too_long", "v=STSv1; id=" ID33, 0, STS_TXT_INVALID, "", "longer than 32"},
    {"rfc8461_3_1_id_empty_invalid", "v=STSv1; id=;", 0, STS_TXT_INVALID, "", "malformed field"},
    {"rfc8461_3_1_id_letters_digits_only", "v=STSv1; id=abc-1;", 0, STS_TXT_INVALID, "",
     "letters and digits"},
    {"rfc8461_3_1_key_case_sensitive", "v=STSv1; ID=abc;", 0, STS_TXT_INVALID, "", "id: missing"},
    {"rfc8461_3_1_unknown_extension_ignored", "v=STSv1; id=abc; ext_1.x-y=some/v:alue!;", 0,
     STS_TXT_VALID, "abc", NULL},
    {"rfc8461_3_1_extension_before_id", "v=STSv1; x=1; id=abc", 0, STS_TXT_VALID, "abc", NULL},
    {"rfc8461_3_1_field_without_equals_invalid", "v=STSv1; id=abc; foo", 0, STS_TXT_INVALID, "",
     "malformed field \"foo\""},
    {"rfc8461_3_1_field_empty_name_invalid", "v=STSv1; id=abc; =x", 0, STS_TXT_INVALID, "",
     "malformed field"},
    {"rfc8461_3_1_extension_empty_value_invalid", "v=STSv1; id=abc; foo=", 0, STS_TXT_INVALID, "",
     "malformed field"},
    {"rfc8461_3_1_extension_name_start_invalid", "v=STSv1; id=abc; _foo=1", 0, STS_TXT_INVALID, "",
     "malformed field"},
    {"rfc8461_3_1_extension_name_too_long", "v=STSv1; id=abc; " NAME33 "=1", 0, STS_TXT_INVALID, "",
     "malformed field"},
    {"rfc8461_3_1_equals_in_value_invalid", "v=STSv1; id=abc; x=a=b", 0, STS_TXT_INVALID, "",
     "malformed field"},
    {"rfc8461_3_1_empty_field_invalid", "v=STSv1;; id=abc", 0, STS_TXT_INVALID, "", "empty field"},
    {"rfc8461_3_1_empty_final_field_invalid", "v=STSv1; id=abc;;", 0, STS_TXT_INVALID, "",
     "empty field"},
    {"rfc8461_3_1_empty_field_spaces_invalid", "v=STSv1; id=abc; ; x=1", 0, STS_TXT_INVALID, "",
     "empty field"},
    {"rfc8461_3_1_non_ascii_invalid", "v=STSv1; id=abc; x=caf\xc3\xa9", 0, STS_TXT_INVALID, "",
     "non-ASCII"},
    {"rfc8461_3_1_nul_invalid", "v=STSv1; id=abc\0;", 17, STS_TXT_INVALID, "", "control character"},
    {"rfc8461_3_1_control_char_invalid", "v=STSv1; id=abc;\r\n", 0, STS_TXT_INVALID, "",
     "control character"},
    {"rfc8461_3_1_first_repeated_wins", "v=STSv1; id=first; id=second", 0, STS_TXT_VALID, "first",
     NULL},
    {"rfc8461_3_1_first_repeated_wins_over_bad", "v=STSv1; id=first; id=" ID33, 0, STS_TXT_VALID,
     "first", NULL},
    {"rfc8461_3_1_length_bounds_the_record", "v=STSv1; id=abcdef", 15, STS_TXT_VALID, "abc", NULL},
};

static void
run_parse_case(void **state)
{
	const struct parse_case *c = *state;
	size_t len = c->len ? c->len : strlen(c->rec);
	char id[STS_ID_MAX + 1];
	char reason[160];
	enum sts_txt_status st;

	memset(id, 'X', sizeof(id));
	st = sts_txt_parse(c->rec, len, id, reason, sizeof(reason));
	assert_int_equal(st, c->want);
	assert_string_equal(id, c->want == STS_TXT_VALID ? c->id : "");
	if (c->want == STS_TXT_INVALID) {
		assert_true(reason[0] != '\0');
		if (strstr(reason, c->reason) == NULL)
			fail_msg("reason \"%s\" lacks \"%s\"", reason, c->reason);
	}
}

struct select_case {
	const char *name;
	const char *recs[4];
	size_t n;
	int want;
	const char *id;
	const char *reason;
};

static const struct select_case select_cases[] = {
    {"rfc8461_3_1_no_records_no_policy", {NULL}, 0, 0, "", NULL},
    {"rfc8461_3_1_no_sts_record_no_policy",
     {"v=spf1 -all", "google-site-verification=x"},
     2,
     0,
     "",
     NULL},
    {"rfc8461_3_1_one_sts_among_others",
     {"v=spf1 -all", "v=STSv1; id=abc;", "v=STSv10; id=zzz"},
     3,
     1,
     "abc",
     NULL},
    {"rfc8461_3_1_select_version_space", {"v=STSv1 ; id=x1"}, 1, 1, "x1", NULL},
    {"rfc8461_3_1_two_sts_records",
     {"v=STSv1; id=abc;", "v=STSv1; id=def;"},
     2,
     -1,
     "",
     "more than one"},
    {"rfc8461_3_1_two_identical_sts_records",
     {"v=STSv1; id=abc;", "v=STSv1; id=abc;"},
     2,
     -1,
     "",
     "more than one"},
    {"rfc8461_3_1_two_sts_records_one_invalid",
     {"v=STSv1; id=abc;", "v=STSv1;;"},
     2,
     -1,
     "",
     "more than one"},
    {"rfc8461_3_1_single_sts_invalid",
     {"v=spf1 -all", "v=STSv1; id=a_b"},
     2,
     -1,
     "",
     "letters and digits"},
};

static void
run_select_case(void **state)
{
	const struct select_case *c = *state;
	size_t lens[4];
	char id[STS_ID_MAX + 1];
	char reason[160];
	int rc;

	for (size_t i = 0; i < c->n; i++)
		lens[i] = strlen(c->recs[i]);
	memset(id, 'X', sizeof(id));
	rc = sts_txt_select(c->recs, lens, c->n, id, reason, sizeof(reason));
	assert_int_equal(rc, c->want);
	assert_string_equal(id, c->id);
	if (c->want < 0) {
		if (strstr(reason, c->reason) == NULL)
			fail_msg("reason \"%s\" lacks \"%s\"", reason, c->reason);
	} else {
		assert_string_equal(reason, "");
	}
}

/* A short reason buffer is cut and still terminated; NULL reason is allowed. */
static void
reason_truncated(void **state)
{
	char id[STS_ID_MAX + 1];
	char reason[8];

	(void)state;
	memset(reason, 'X', sizeof(reason));
	assert_int_equal(sts_txt_parse("v=STSv1;;", 9, id, reason, sizeof(reason)),
	                 STS_TXT_INVALID);
	assert_int_equal(strlen(reason), sizeof(reason) - 1);
	assert_memory_equal(reason, "empty f", 7);
	assert_int_equal(sts_txt_parse("v=STSv1;;", 9, id, NULL, 0), STS_TXT_INVALID);
	assert_int_equal(sts_txt_parse("v=STSv1; id=a", 13, id, NULL, 0), STS_TXT_VALID);
	assert_string_equal(id, "a");
}

int
main(void)
{
	size_t np = sizeof(parse_cases) / sizeof(parse_cases[0]);
	size_t ns = sizeof(select_cases) / sizeof(select_cases[0]);
	struct CMUnitTest *tests = calloc(np + ns + 1, sizeof(*tests));
	size_t n = 0;
	int rc;

	if (tests == NULL)
		return 1;
	for (size_t i = 0; i < np; i++)
		tests[n++] = (struct CMUnitTest){.name = parse_cases[i].name,
		                                 .test_func = run_parse_case,
		                                 .initial_state = (void *)&parse_cases[i]};
	for (size_t i = 0; i < ns; i++)
		tests[n++] = (struct CMUnitTest){.name = select_cases[i].name,
		                                 .test_func = run_select_case,
		                                 .initial_state = (void *)&select_cases[i]};
	tests[n++] = (struct CMUnitTest){.name = "reason_truncated", .test_func = reason_truncated};
	rc = _cmocka_run_group_tests("sts_txt", tests, n, NULL, NULL);
	free(tests);
	return rc;
}
