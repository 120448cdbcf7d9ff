// sources: policy/tlsrpt_record.c
/*
 * test_tlsrpt_record.c - the _smtp._tls TXT record rules of RFC 8460
 * section 3, one named case per rule: parsing single records, then
 * choosing among all the records of a name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/tlsrpt_record.h"

struct parse_case {
	const char *name;
	const char *rec;
	size_t len; /* 0: strlen(rec) */
	enum tlsrpt_rec_status want;
	size_t n_rua;       /* expected when valid */
	const char *uri0;   /* expected rua[0].uri when valid */
	const char *addr0;  /* expected rua[0].addr when valid */
	const char *uri1;   /* expected rua[1].uri when n_rua > 1 */
	size_t n_skipped;   /* expected when valid */
	const char *reason; /* substring expected in the reason when invalid */
};

static const struct parse_case parse_cases[] = {
    {"rfc8460_3_mailto", "v=TLSRPTv1; rua=mailto:reports@example.com", 0, TLSRPT_REC_VALID, 1,
     "mailto:reports@example.com", "reports@example.com", NULL, 0, NULL},
    {"rfc8460_3_https", "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", 0,
     TLSRPT_REC_VALID, 1, "https://reporting.example.com/v1/tlsrpt", "reporting.example.com", NULL,
     0, NULL},
    {"rfc8460_3_final_semicolon_optional", "v=TLSRPTv1;rua=mailto:a@example.com;", 0,
     TLSRPT_REC_VALID, 1, "mailto:a@example.com", "a@example.com", NULL, 0, NULL},
    {"rfc8460_3_several_rua_uris", "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x",
     0, TLSRPT_REC_VALID, 2, "mailto:a@example.com", "a@example.com", "https://r.example.net/x", 0,
     NULL},
    {"rfc8460_3_wsp_around_comma",
     "v=TLSRPTv1; rua=mailto:a@example.com \t,  https://r.example.net/x", 0, TLSRPT_REC_VALID, 2,
     "mailto:a@example.com", "a@example.com", "https://r.example.net/x", 0, NULL},
    {"rfc8460_3_wsp_around_semicolons", "v=TLSRPTv1 \t;\t rua=mailto:a@example.com \t; ", 0,
     TLSRPT_REC_VALID, 1, "mailto:a@example.com", "a@example.com", NULL, 0, NULL},
    {"rfc8460_3_no_space_after_version", "v=TLSRPTv1;rua=mailto:a@example.com", 0, TLSRPT_REC_VALID,
     1, "mailto:a@example.com", "a@example.com", NULL, 0, NULL},
    {"rfc8460_3_escaped_comma_in_https", "v=TLSRPTv1; rua=https://r.example.net/a%2Cb%21c%3Bd", 0,
     TLSRPT_REC_VALID, 1, "https://r.example.net/a%2Cb%21c%3Bd", "r.example.net", NULL, 0, NULL},
    {"rfc8460_3_escaped_mailto_decoded", "v=TLSRPTv1; rua=mailto:tls%2Brpt@example.com", 0,
     TLSRPT_REC_VALID, 1, "mailto:tls%2Brpt@example.com", "tls+rpt@example.com", NULL, 0, NULL},
    {"rfc8460_3_escaped_comma_two_addresses_skipped",
     "v=TLSRPTv1; rua=mailto:a@example.com%2Cb@example.com,mailto:c@example.com", 0,
     TLSRPT_REC_VALID, 1, "mailto:c@example.com", "c@example.com", NULL, 1, NULL},
    {"rfc8460_3_bare_exclamation_invalid", "v=TLSRPTv1; rua=mailto:a@example.com!10m", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "not a URI"},
    {"rfc8460_3_mailto_hfields_dropped",
     "v=TLSRPTv1; rua=mailto:a@example.com?subject=x%0D%0ABcc:evil@example.org", 0,
     TLSRPT_REC_VALID, 1, "mailto:a@example.com?subject=x%0D%0ABcc:evil@example.org",
     "a@example.com", NULL, 0, NULL},
    {"rfc8460_3_mailto_encoded_crlf_skipped",
     "v=TLSRPTv1; rua=mailto:a%0D%0A@example.com,https://r.example.net/", 0, TLSRPT_REC_VALID, 1,
     "https://r.example.net/", "r.example.net", NULL, 1, NULL},
    {"rfc8460_3_scheme_case_insensitive", "v=TLSRPTv1; rua=MAILTO:a@example.com", 0,
     TLSRPT_REC_VALID, 1, "mailto:a@example.com", "a@example.com", NULL, 0, NULL},
    {"rfc8460_3_https_port", "v=TLSRPTv1; rua=https://R.Example.net:8443/tlsrpt", 0,
     TLSRPT_REC_VALID, 1, "https://R.Example.net:8443/tlsrpt", "r.example.net", NULL, 0, NULL},
    {"rfc8460_3_unknown_scheme_skipped", "v=TLSRPTv1; rua=ftp://x.example/,mailto:a@example.com", 0,
     TLSRPT_REC_VALID, 1, "mailto:a@example.com", "a@example.com", NULL, 1, NULL},
    {"rfc8460_3_http_not_https_skipped",
     "v=TLSRPTv1; rua=http://r.example.net/,mailto:a@example.com", 0, TLSRPT_REC_VALID, 1,
     "mailto:a@example.com", "a@example.com", NULL, 1, NULL},
    {"rfc8460_3_only_unknown_schemes_invalid", "v=TLSRPTv1; rua=ftp://x.example/", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "no usable"},
    {"rfc8460_3_https_userinfo_skipped",
     "v=TLSRPTv1; rua=https://u:p@r.example.net/,mailto:a@example.com", 0, TLSRPT_REC_VALID, 1,
     "mailto:a@example.com", "a@example.com", NULL, 1, NULL},
    {"rfc8460_3_https_ip_literal_skipped",
     "v=TLSRPTv1; rua=https://[2001:db8::1]/,mailto:a@example.com", 0, TLSRPT_REC_VALID, 1,
     "mailto:a@example.com", "a@example.com", NULL, 1, NULL},
    {"rfc8460_3_mailto_no_domain_skipped", "v=TLSRPTv1; rua=mailto:a,mailto:b@example.com", 0,
     TLSRPT_REC_VALID, 1, "mailto:b@example.com", "b@example.com", NULL, 1, NULL},
    {"rfc8460_3_extension_ignored", "v=TLSRPTv1; ext=1; rua=mailto:a@example.com; x.y-z_=v", 0,
     TLSRPT_REC_VALID, 1, "mailto:a@example.com", "a@example.com", NULL, 0, NULL},
    {"rfc8460_3_first_rua_counts", "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com",
     0, TLSRPT_REC_VALID, 1, "mailto:a@example.com", "a@example.com", NULL, 0, NULL},
    {"rfc8460_3_later_rua_still_checked", "v=TLSRPTv1; rua=mailto:a@example.com; rua=", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "empty URI"},
    {"rfc8460_3_key_case_sensitive", "v=TLSRPTv1; RUA=mailto:a@example.com", 0, TLSRPT_REC_INVALID,
     0, NULL, NULL, NULL, 0, "rua: missing"},
    {"rfc8460_3_rua_required", "v=TLSRPTv1; ext=1", 0, TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0,
     "rua: missing"},
    {"rfc8460_3_version_and_semicolon_only", "v=TLSRPTv1;", 0, TLSRPT_REC_INVALID, 0, NULL, NULL,
     NULL, 0, "rua: missing"},
    {"rfc8460_3_empty_rua_invalid", "v=TLSRPTv1; rua=", 0, TLSRPT_REC_INVALID, 0, NULL, NULL, NULL,
     0, "empty URI"},
    {"rfc8460_3_empty_list_entry_invalid", "v=TLSRPTv1; rua=mailto:a@example.com,,mailto:b@x.y", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "empty URI"},
    {"rfc8460_3_trailing_comma_invalid", "v=TLSRPTv1; rua=mailto:a@example.com,", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "empty URI"},
    {"rfc8460_3_space_after_equals_invalid", "v=TLSRPTv1; rua= mailto:a@example.com", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "empty URI"},
    {"rfc8460_3_space_inside_uri_invalid", "v=TLSRPTv1; rua=mailto:a@example.com x", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "white space inside"},
    {"rfc8460_3_not_a_uri_invalid", "v=TLSRPTv1; rua=reports@example.com", 0, TLSRPT_REC_INVALID, 0,
     NULL, NULL, NULL, 0, "not a URI"},
    {"rfc8460_3_bad_percent_invalid", "v=TLSRPTv1; rua=mailto:a%2@example.com", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "not a URI"},
    {"rfc8460_3_empty_field_invalid", "v=TLSRPTv1;; rua=mailto:a@example.com", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "empty field"},
    {"rfc8460_3_malformed_extension_invalid", "v=TLSRPTv1; rua=mailto:a@example.com; x=a b", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "malformed field"},
    {"rfc8460_3_extension_without_value_invalid", "v=TLSRPTv1; rua=mailto:a@example.com; x", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "malformed field"},
    {"rfc8460_3_duplicated_version_invalid", "v=TLSRPTv1; v=TLSRPTv1; rua=mailto:a@example.com", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "v: repeated"},
    {"rfc8460_3_two_records_joined_invalid",
     "v=TLSRPTv1; rua=mailto:a@example.com;v=TLSRPTv1; rua=mailto:b@example.com", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "v: repeated"},
    {"rfc8460_3_other_record_not_tlsrpt", "v=spf1 -all", 0, TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL,
     NULL, 0, NULL},
    {"rfc8460_3_empty_record_not_tlsrpt", "", 0, TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL, NULL, 0,
     NULL},
    {"rfc8460_3_version_alone_not_tlsrpt", "v=TLSRPTv1", 0, TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL,
     NULL, 0, NULL},
    {"rfc8460_3_bad_version_not_tlsrpt", "v=TLSRPTv2; rua=mailto:a@example.com", 0,
     TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL, NULL, 0, NULL},
    {"rfc8460_3_version_case_sensitive", "v=tlsrptv1; rua=mailto:a@example.com", 0,
     TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL, NULL, 0, NULL},
    {"rfc8460_3_version_must_be_whole", "v=TLSRPTv10; rua=mailto:a@example.com", 0,
     TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL, NULL, 0, NULL},
    {"rfc8460_3_version_must_be_first", "rua=mailto:a@example.com; v=TLSRPTv1", 0,
     TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL, NULL, 0, NULL},
    {"rfc8460_3_leading_space_not_tlsrpt", " v=TLSRPTv1; rua=mailto:a@example.com", 0,
     TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL, NULL, 0, NULL},
    {"rfc8460_3_version_space_missing_semicolon", "v=TLSRPTv1 rua=mailto:a@example.com", 0,
     TLSRPT_REC_NOT_TLSRPT, 0, NULL, NULL, NULL, 0, NULL},
    {"rfc8460_3_non_ascii_invalid", "v=TLSRPTv1; rua=mailto:r\xc3\xa9@example.com", 0,
     TLSRPT_REC_INVALID, 0, NULL, NULL, NULL, 0, "non-ASCII"},
    {"rfc8460_3_control_invalid", "v=TLSRPTv1; rua=mailto:a@example.com\r\n", 0, TLSRPT_REC_INVALID,
     0, NULL, NULL, NULL, 0, "control character"},
    {"rfc8460_3_nul_invalid", "v=TLSRPTv1; rua=mailto:a@example.com\0x", 38, TLSRPT_REC_INVALID, 0,
     NULL, NULL, NULL, 0, "control character"},
};

static void
run_parse_case(void **state)
{
	const struct parse_case *c = *state;
	struct tlsrpt_record r;
	char reason[160];
	size_t len = c->len ? c->len : strlen(c->rec);
	enum tlsrpt_rec_status st;

	memset(&r, 0xa5, sizeof(r));
	st = tlsrpt_record_parse(c->rec, len, &r, reason, sizeof(reason));
	if (st != c->want)
		fail_msg("%s: status %d, want %d (%s)", c->name, st, c->want, reason);
	if (st == TLSRPT_REC_VALID) {
		assert_int_equal(r.n_rua, c->n_rua);
		assert_string_equal(r.rua[0].uri, c->uri0);
		assert_string_equal(r.rua[0].addr, c->addr0);
		if (c->uri1 != NULL)
			assert_string_equal(r.rua[1].uri, c->uri1);
		assert_int_equal(r.n_skipped, c->n_skipped);
	} else {
		assert_int_equal(r.n_rua, 0);
		assert_int_equal(r.n_skipped, 0);
	}
	if (st == TLSRPT_REC_INVALID && strstr(reason, c->reason) == NULL)
		fail_msg("%s: reason \"%s\" lacks \"%s\"", c->name, reason, c->reason);
}

/* Schemes come back as the enum the sender switches on. */
static void
rfc8460_3_schemes(void **state)
{
	struct tlsrpt_record r;
	const char *rec = "v=TLSRPTv1; rua=https://r.example.net/,mailto:a@example.com";

	(void)state;
	assert_int_equal(tlsrpt_record_parse(rec, strlen(rec), &r, NULL, 0), TLSRPT_REC_VALID);
	assert_int_equal(r.rua[0].scheme, TLSRPT_HTTPS);
	assert_int_equal(r.rua[1].scheme, TLSRPT_MAILTO);
	assert_string_equal(tlsrpt_scheme_name(TLSRPT_MAILTO), "mailto");
	assert_string_equal(tlsrpt_scheme_name(TLSRPT_HTTPS), "https");
	assert_string_equal(tlsrpt_scheme_name((enum tlsrpt_scheme)0), "?");
}

/* Bounds: at most TLSRPT_RUA_MAX URIs kept, the rest counted as skipped. */
static void
bound_rua_count(void **state)
{
	char rec[2048];
	size_t off;
	struct tlsrpt_record r;

	(void)state;
	off = (size_t)snprintf(rec, sizeof(rec), "v=TLSRPTv1; rua=");
	for (int i = 0; i < TLSRPT_RUA_MAX + 3; i++)
		off += (size_t)snprintf(rec + off, sizeof(rec) - off, "%smailto:r%d@example.com",
		                        i ? "," : "", i);
	assert_int_equal(tlsrpt_record_parse(rec, off, &r, NULL, 0), TLSRPT_REC_VALID);
	assert_int_equal(r.n_rua, TLSRPT_RUA_MAX);
	assert_int_equal(r.n_skipped, 3);
	assert_string_equal(r.rua[TLSRPT_RUA_MAX - 1].addr, "r7@example.com");
}

/* Bounds: a URI longer than TLSRPT_URI_MAX is skipped; a record over 4096 octets is invalid. */
static void
bound_lengths(void **state)
{
	static char rec[8192];
	struct tlsrpt_record r;
	char reason[160];
	size_t off;

	(void)state;
	off = (size_t)snprintf(rec, sizeof(rec), "v=TLSRPTv1; rua=https://r.example.net/");
	memset(rec + off, 'a', TLSRPT_URI_MAX);
	off += TLSRPT_URI_MAX;
	off += (size_t)snprintf(rec + off, sizeof(rec) - off, ",mailto:a@example.com");
	assert_int_equal(tlsrpt_record_parse(rec, off, &r, NULL, 0), TLSRPT_REC_VALID);
	assert_int_equal(r.n_rua, 1);
	assert_int_equal(r.n_skipped, 1);

	/* A URI of exactly TLSRPT_URI_MAX octets is kept. */
	off = (size_t)snprintf(rec, sizeof(rec), "v=TLSRPTv1; rua=");
	{
		const char *head = "https://r.example.net/";
		size_t h = strlen(head);

		memcpy(rec + off, head, h);
		memset(rec + off + h, 'b', TLSRPT_URI_MAX - h);
		off += TLSRPT_URI_MAX;
	}
	assert_int_equal(tlsrpt_record_parse(rec, off, &r, NULL, 0), TLSRPT_REC_VALID);
	assert_int_equal(strlen(r.rua[0].uri), TLSRPT_URI_MAX);

	off = (size_t)snprintf(rec, sizeof(rec), "v=TLSRPTv1; rua=mailto:a@example.com; x=");
	memset(rec + off, 'c', 5000);
	off += 5000;
	assert_int_equal(tlsrpt_record_parse(rec, off, &r, reason, sizeof(reason)),
	                 TLSRPT_REC_INVALID);
	assert_non_null(strstr(reason, "longer than"));

	/* A mailto address over 254 octets is skipped. */
	off = (size_t)snprintf(rec, sizeof(rec), "v=TLSRPTv1; rua=mailto:a@");
	for (int i = 0; i < 5; i++)
		off += (size_t)snprintf(rec + off, sizeof(rec) - off, "%060d.", i);
	off += (size_t)snprintf(rec + off, sizeof(rec) - off, "example,mailto:b@example.com");
	assert_int_equal(tlsrpt_record_parse(rec, off, &r, NULL, 0), TLSRPT_REC_VALID);
	assert_string_equal(r.rua[0].addr, "b@example.com");
	assert_int_equal(r.n_skipped, 1);
}

/* A reason buffer of any size, or none, is fine. */
static void
reason_buffers(void **state)
{
	struct tlsrpt_record r;
	char tiny[4];
	const char *bad = "v=TLSRPTv1; rua=";

	(void)state;
	assert_int_equal(tlsrpt_record_parse(bad, strlen(bad), &r, NULL, 0), TLSRPT_REC_INVALID);
	assert_int_equal(tlsrpt_record_parse(bad, strlen(bad), &r, tiny, sizeof(tiny)),
	                 TLSRPT_REC_INVALID);
	assert_int_equal(strlen(tiny), 3);
	assert_int_equal(tlsrpt_record_parse(NULL, 0, &r, tiny, sizeof(tiny)),
	                 TLSRPT_REC_NOT_TLSRPT);
}

struct select_case {
	const char *name;
	const char *recs[4];
	size_t n;
	int want;
	const char *addr0; /* when 1 */
	const char *reason;
};

static const struct select_case select_cases[] = {
    {"rfc8460_3_select_no_records", {NULL}, 0, 0, NULL, NULL},
    {"rfc8460_3_select_only_other_records", {"v=spf1 -all", "hello"}, 2, 0, NULL, NULL},
    {"rfc8460_3_select_one_among_others",
     {"v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@example.com", "google-site-verification=x"},
     3,
     1,
     "a@example.com",
     NULL},
    {"rfc8460_3_select_two_records_none",
     {"v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"},
     2,
     -1,
     NULL,
     "more than one"},
    {"rfc8460_3_select_two_identical_none",
     {"v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:a@example.com"},
     2,
     -1,
     NULL,
     "more than one"},
    {"rfc8460_3_select_valid_and_invalid_none",
     {"v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua="},
     2,
     -1,
     NULL,
     "more than one"},
    {"rfc8460_3_select_only_invalid",
     {"v=TLSRPTv1; rua=", "v=spf1 -all"},
     2,
     -1,
     NULL,
     "empty URI"},
    {"rfc8460_3_select_version_alone_discarded",
     {"v=TLSRPTv1", "v=TLSRPTv1; rua=mailto:a@example.com"},
     2,
     1,
     "a@example.com",
     NULL},
};

static void
run_select_case(void **state)
{
	const struct select_case *c = *state;
	size_t lens[4];
	struct tlsrpt_record r;
	char reason[160];
	int rc;

	for (size_t i = 0; i < c->n; i++)
		lens[i] = strlen(c->recs[i]);
	rc = tlsrpt_record_select(c->recs, lens, c->n, &r, reason, sizeof(reason));
	if (rc != c->want)
		fail_msg("%s: %d, want %d (%s)", c->name, rc, c->want, reason);
	if (rc == 1) {
		assert_string_equal(r.rua[0].addr, c->addr0);
	} else {
		assert_int_equal(r.n_rua, 0);
		if (c->reason != NULL && strstr(reason, c->reason) == NULL)
			fail_msg("%s: reason \"%s\" lacks \"%s\"", c->name, reason, c->reason);
	}
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(parse_cases) / sizeof(parse_cases[0]) +
	                        sizeof(select_cases) / sizeof(select_cases[0]) + 4];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		struct CMUnitTest t = {.name = parse_cases[i].name,
		                       .test_func = run_parse_case,
		                       .initial_state = (void *)&parse_cases[i]};
		tests[n++] = t;
	}
	for (size_t i = 0; i < sizeof(select_cases) / sizeof(select_cases[0]); i++) {
		struct CMUnitTest t = {.name = select_cases[i].name,
		                       .test_func = run_select_case,
		                       .initial_state = (void *)&select_cases[i]};
		tests[n++] = t;
	}
	{
		struct CMUnitTest t[] = {
		    cmocka_unit_test(rfc8460_3_schemes),
		    cmocka_unit_test(bound_rua_count),
		    cmocka_unit_test(bound_lengths),
		    cmocka_unit_test(reason_buffers),
		};
		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			tests[n++] = t[i];
	}
	return _cmocka_run_group_tests("tlsrpt_record", tests, n, NULL, NULL);
}
