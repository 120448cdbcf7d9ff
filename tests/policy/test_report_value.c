// sources: policy/report_value.c core/util.c core/types.c
/*
 * test_report_value.c - one gateway's TLS-RPT row as the shared Redis
 * holds it (RFC 8460 section 4.4 counts, failure details and policy
 * strings): encoded and decoded back unchanged, and every value that is
 * not exactly the format refused (a writer to Redis must not get a count
 * or a string past the store's bounds into a report).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/report_value.h"

#define DAY 1796256000 /* 2026-12-03 00:00:00 UTC */

static const char *const pol[] = {"version: STSv1", "mode: enforce", "mx: mx1.a.example",
                                  "max_age: 86400"};
static const char *const mx[] = {"mx1.a.example"};
static const struct report_store_detail details[] = {
    {STS_RESULT_STARTTLS_NOT_SUPPORTED, "198.51.100.2", "mx1.a.example", "", "192.0.2.1", 2},
    {STS_RESULT_CERT_HOST_MISMATCH, "", "mx1.a.example", "mx.other.example", "2001:db8::1", 1},
};

static struct report_store_row
sample(void)
{
	struct report_store_row r = {
	    .day = DAY,
	    .domain = "a.example",
	    .type = STS_PTYPE_STS,
	    .gateway = "gw-2.site_b",
	    .policy_id = "a1",
	    .mode = STS_MODE_ENFORCE,
	    .success = 17,
	    .failure = 4,
	    .detail_other = 1,
	    .n_policy = 4,
	    .policy = pol,
	    .n_mx = 1,
	    .mx = mx,
	    .n_details = 2,
	    .details = details,
	    .seen_at = DAY + 3600,
	    .policy_at = DAY + 60,
	};
	r.by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED] = 3;
	r.by_result[STS_RESULT_CERT_HOST_MISMATCH] = 1;
	return r;
}

/* RFC 8460 section 4.4: a row encodes and decodes back to the same counts and strings. */
static void
rfc8460_4_4_round_trip(void **state)
{
	struct report_store_row r = sample();
	const struct report_store_row *d;
	struct report_value *v;
	char field[REPORT_VALUE_FIELD_MAX], *text;
	const char *why = NULL;
	size_t flen, len;

	(void)state;
	flen = report_value_field(&r, field, sizeof(field));
	assert_string_equal(field, "gw-2.site_b|a.example|sts");
	assert_int_equal(report_value_encode(&r, &text, &len), 0);
	v = report_value_decode(DAY + 100, field, flen, text, len, &why);
	if (v == NULL)
		fail_msg("refused: %s", why);
	d = report_value_row(v);
	assert_int_equal(d->day, DAY);
	assert_string_equal(d->gateway, "gw-2.site_b");
	assert_string_equal(d->domain, "a.example");
	assert_int_equal(d->type, STS_PTYPE_STS);
	assert_string_equal(d->policy_id, "a1");
	assert_int_equal(d->mode, STS_MODE_ENFORCE);
	assert_int_equal(d->success, 17);
	assert_int_equal(d->failure, 4);
	assert_int_equal(d->detail_other, 1);
	assert_memory_equal(d->by_result, r.by_result, sizeof(r.by_result));
	assert_int_equal(d->n_policy, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(d->policy[i], pol[i]);
	assert_int_equal(d->n_mx, 1);
	assert_string_equal(d->mx[0], "mx1.a.example");
	assert_int_equal(d->n_details, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(d->details[i].result, details[i].result);
		assert_string_equal(d->details[i].sending_ip, details[i].sending_ip);
		assert_string_equal(d->details[i].mx_host, details[i].mx_host);
		assert_string_equal(d->details[i].mx_helo, details[i].mx_helo);
		assert_string_equal(d->details[i].receiving_ip, details[i].receiving_ip);
		assert_int_equal(d->details[i].count, details[i].count);
	}
	assert_int_equal(d->seen_at, DAY + 3600);
	assert_int_equal(d->policy_at, DAY + 60);
	report_value_free(v);
	free(text);
}

/* A no-policy-found row: no policy strings, no details, the overflow bucket's name. */
static void
rfc8460_4_4_round_trip_no_policy(void **state)
{
	struct report_store_row r = {.day = DAY,
	                             .domain = STS_REPORT_OTHER,
	                             .type = STS_PTYPE_NONE,
	                             .gateway = "gw1",
	                             .policy_id = "",
	                             .success = 3};
	struct report_value *v;
	char field[REPORT_VALUE_FIELD_MAX], *text;
	const char *why = NULL;
	size_t flen, len;

	(void)state;
	flen = report_value_field(&r, field, sizeof(field));
	assert_int_equal(report_value_encode(&r, &text, &len), 0);
	v = report_value_decode(DAY, field, flen, text, len, &why);
	assert_non_null(v);
	assert_int_equal(report_value_row(v)->n_policy, 0);
	assert_int_equal(report_value_row(v)->n_details, 0);
	assert_int_equal(report_value_row(v)->success, 3);
	report_value_free(v);
	free(text);
}

/* What the decoder would refuse is never encoded. */
static void
encode_refuses_out_of_bounds(void **state)
{
	struct report_store_row r = sample();
	const char *const bad_pol[] = {"line\nbreak"};
	char *text;
	size_t len;

	(void)state;
	r.failure = 5; /* not the sum of the result types */
	assert_int_equal(report_value_encode(&r, &text, &len), -1);
	r = sample();
	r.policy = bad_pol;
	r.n_policy = 1;
	assert_int_equal(report_value_encode(&r, &text, &len), -1);
	r = sample();
	r.domain = "A.Example";
	assert_int_equal(report_value_encode(&r, &text, &len), -1);
}

#define GOOD_HEAD "{\"v\":1,\"id\":\"a1\",\"mode\":\"enforce\",\"success\":1,"
#define GOOD_TAIL ",\"seen\":1,\"policy_at\":0}"

static const struct {
	const char *name, *field, *value;
} bad[] = {
    {"field without bars", "gw1a.example",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"field gateway empty", "|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"field gateway chars", "g w|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"field domain upper case", "gw1|A.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"field domain syntax", "gw1|a..example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"field domain empty", "gw1||sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"field type unknown", "gw1|a.example|dane",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"field extra bar", "gw1|a.example|sts|x",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"not JSON", "gw1|a.example|sts", "v1 success=1"},
    {"JSON array", "gw1|a.example|sts", "[1,2]"},
    {"trailing garbage", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL "x"},
    {"duplicate member", "gw1|a.example|sts",
     GOOD_HEAD
     "\"success\":2,\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"unknown member", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[],\"x\":1" GOOD_TAIL},
    {"version 2", "gw1|a.example|sts",
     "{\"v\":2,\"id\":\"a1\",\"mode\":\"enforce\",\"success\":1,\"failure\":0,\"results\":{},"
     "\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"missing count", "gw1|a.example|sts",
     GOOD_HEAD "\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"negative count", "gw1|a.example|sts",
     "{\"v\":1,\"id\":\"a1\",\"mode\":\"enforce\",\"success\":-1,\"failure\":0,\"results\":{},"
     "\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"real count", "gw1|a.example|sts",
     "{\"v\":1,\"id\":\"a1\",\"mode\":\"enforce\",\"success\":1.5,\"failure\":0,\"results\":{},"
     "\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"string count", "gw1|a.example|sts",
     "{\"v\":1,\"id\":\"a1\",\"mode\":\"enforce\",\"success\":\"1\",\"failure\":0,\"results\":{},"
     "\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"count beyond bound", "gw1|a.example|sts",
     "{\"v\":1,\"id\":\"a1\",\"mode\":\"enforce\",\"success\":9223372036854775807,\"failure\":0,"
     "\"results\":{},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"bad policy id", "gw1|a.example|sts",
     "{\"v\":1,\"id\":\"a-1\",\"mode\":\"enforce\",\"success\":1,\"failure\":0,\"results\":{},"
     "\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"bad mode", "gw1|a.example|sts",
     "{\"v\":1,\"id\":\"a1\",\"mode\":\"strict\",\"success\":1,\"failure\":0,\"results\":{},"
     "\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"failures not the sum", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":3,\"results\":{\"certificate-expired\":2},\"detail_other\":0,"
               "\"details\":[]" GOOD_TAIL},
    {"unknown result type", "gw1|a.example|sts",
     GOOD_HEAD
     "\"failure\":2,\"results\":{\"bad-luck\":2},\"detail_other\":0,\"details\":[]" GOOD_TAIL},
    {"zero result count", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{\"certificate-expired\":0},\"detail_other\":0,"
               "\"details\":[]" GOOD_TAIL},
    {"detail_other beyond failures", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":1,\"details\":[]" GOOD_TAIL},
    {"details beyond their type", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":1,\"results\":{\"certificate-expired\":1},\"detail_other\":0,"
               "\"details\":[[\"certificate-expired\",\"\",\"mx\",\"\",\"\",2]]" GOOD_TAIL},
    {"detail of another type", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":1,\"results\":{\"certificate-expired\":1},\"detail_other\":0,"
               "\"details\":[[\"starttls-not-supported\",\"\",\"mx\",\"\",\"\",1]]" GOOD_TAIL},
    {"detail short", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":1,\"results\":{\"certificate-expired\":1},\"detail_other\":0,"
               "\"details\":[[\"certificate-expired\",\"\",\"mx\",\"\",1]]" GOOD_TAIL},
    {"detail bad ip", "gw1|a.example|sts",
     GOOD_HEAD
     "\"failure\":1,\"results\":{\"certificate-expired\":1},\"detail_other\":0,\"details\":[["
     "\"certificate-expired\",\"10.0.0.300\",\"mx\",\"\",\"\",1]]" GOOD_TAIL},
    {"detail control char", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":1,\"results\":{\"certificate-expired\":1},\"detail_other\":0,"
               "\"details\":[[\"certificate-expired\",\"\",\"mx\\u0007\",\"\",\"\",1]]" GOOD_TAIL},
    {"detail zero count", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":1,\"results\":{\"certificate-expired\":1},\"detail_other\":0,"
               "\"details\":[[\"certificate-expired\",\"\",\"mx\",\"\",\"\",0]]" GOOD_TAIL},
    {"details not an array", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":{}" GOOD_TAIL},
    {"policy string with newline", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"policy\":[\"a\\nb\"],\"details\":"
               "[]" GOOD_TAIL},
    {"policy not strings", "gw1|a.example|sts",
     GOOD_HEAD
     "\"failure\":0,\"results\":{},\"detail_other\":0,\"policy\":[1],\"details\":[]" GOOD_TAIL},
    {"mx NUL", "gw1|a.example|sts",
     GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"mx\":[\"a\\u0000b\"],\"details\":"
               "[]" GOOD_TAIL},
    {"negative time", "gw1|a.example|sts",
     GOOD_HEAD
     "\"failure\":0,\"results\":{},\"detail_other\":0,\"details\":[],\"seen\":-5,\"policy_at\":0}"},
};

/* Every malformed shape is refused with a reason. */
static void
malformed_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		struct report_value *v =
		    report_value_decode(DAY, bad[i].field, strlen(bad[i].field), bad[i].value,
		                        strlen(bad[i].value), &why);

		if (v != NULL)
			fail_msg("accepted: %s", bad[i].name);
		assert_non_null(why);
	}
}

/* The good shape the table breaks is itself accepted (the table tests what it says). */
static void
table_base_accepted(void **state)
{
	const char *f = "gw1|a.example|sts",
	           *val = GOOD_HEAD "\"failure\":1,\"results\":{\"certificate-expired\":1},"
	                            "\"detail_other\":0,\"details\":[[\"certificate-expired\",\"\","
	                            "\"mx\",\"\",\"\",1]]" GOOD_TAIL;
	const char *why = NULL;
	struct report_value *v = report_value_decode(DAY, f, strlen(f), val, strlen(val), &why);

	(void)state;
	if (v == NULL)
		fail_msg("refused: %s", why);
	report_value_free(v);
}

/* Bounds: more details than the store keeps, more policy strings, a value too long. */
static void
bounds_refused(void **state)
{
	size_t cap = REPORT_VALUE_MAX + 2048, at = 0;
	char *buf = malloc(cap);
	const char *why;
	const char *f = "gw1|a.example|sts";

	(void)state;
	assert_non_null(buf);
	at += (size_t)snprintf(buf + at, cap - at,
	                       GOOD_HEAD "\"failure\":%d,\"results\":{\"certificate-expired\":%d},"
	                                 "\"detail_other\":0,\"details\":[",
	                       REPORT_STORE_DETAILS_MAX + 1, REPORT_STORE_DETAILS_MAX + 1);
	for (int i = 0; i <= REPORT_STORE_DETAILS_MAX; i++)
		at += (size_t)snprintf(buf + at, cap - at,
		                       "%s[\"certificate-expired\",\"\",\"mx%d\",\"\",\"\",1]",
		                       i ? "," : "", i);
	at += (size_t)snprintf(buf + at, cap - at, "]" GOOD_TAIL);
	assert_null(report_value_decode(DAY, f, strlen(f), buf, at, &why));

	at = (size_t)snprintf(
	    buf, cap, GOOD_HEAD "\"failure\":0,\"results\":{},\"detail_other\":0,\"policy\":[");
	for (int i = 0; i <= STS_REPORT_POLICY_MAX; i++)
		at += (size_t)snprintf(buf + at, cap - at, "%s\"p%d\"", i ? "," : "", i);
	at += (size_t)snprintf(buf + at, cap - at, "],\"details\":[]" GOOD_TAIL);
	assert_null(report_value_decode(DAY, f, strlen(f), buf, at, &why));

	memset(buf, ' ', REPORT_VALUE_MAX + 1);
	assert_null(report_value_decode(DAY, f, strlen(f), buf, REPORT_VALUE_MAX + 1, &why));
	assert_string_equal(why, "value too long");
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8460_4_4_round_trip),
	    cmocka_unit_test(rfc8460_4_4_round_trip_no_policy),
	    cmocka_unit_test(encode_refuses_out_of_bounds),
	    cmocka_unit_test(table_base_accepted),
	    cmocka_unit_test(malformed_refused),
	    cmocka_unit_test(bounds_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
