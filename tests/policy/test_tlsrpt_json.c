// sources: policy/tlsrpt_json.c core/types.c
/*
 * test_tlsrpt_json.c - the TLS-RPT report text of RFC 8460 section 4: every
 * report built here is parsed back and checked against the section 4.4
 * schema (each field name, each type, nothing unknown), then against the
 * values it was built from; and the builder's refusals, one case each.
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
#include <jansson.h>

#include "policy/tlsrpt_json.h"

/* --- a small schema checker --------------------------------------------------- */

enum ftype { F_STRING, F_INTEGER, F_OBJECT, F_ARRAY_STRING, F_ARRAY_OBJECT };

struct field {
	const char *name;
	enum ftype type;
	bool required;
	const struct field *sub; /* F_OBJECT, F_ARRAY_OBJECT: the members; NULL-name terminated */
	const char *const *enum_values; /* F_STRING: allowed values, NULL-terminated, or NULL */
};

static const char *const policy_types[] = {"tlsa", "sts", "no-policy-found", NULL};
static const char *const result_types[] = {"starttls-not-supported", "certificate-host-mismatch",
                                           "certificate-expired",    "certificate-not-trusted",
                                           "validation-failure",     "tlsa-invalid",
                                           "dnssec-invalid",         "dane-required",
                                           "sts-policy-fetch-error", "sts-policy-invalid",
                                           "sts-webpki-invalid",     NULL};

/* RFC 8460 section 4.4. */
static const struct field date_range[] = {
    {"start-datetime", F_STRING, true, NULL, NULL},
    {"end-datetime", F_STRING, true, NULL, NULL},
    {NULL, 0, false, NULL, NULL},
};
static const struct field policy[] = {
    {"policy-type", F_STRING, true, NULL, policy_types},
    {"policy-string", F_ARRAY_STRING, false, NULL, NULL},
    {"policy-domain", F_STRING, true, NULL, NULL},
    {"mx-host", F_ARRAY_STRING, false, NULL, NULL},
    {NULL, 0, false, NULL, NULL},
};
static const struct field summary[] = {
    {"total-successful-session-count", F_INTEGER, true, NULL, NULL},
    {"total-failure-session-count", F_INTEGER, true, NULL, NULL},
    {NULL, 0, false, NULL, NULL},
};
static const struct field failure_details[] = {
    {"result-type", F_STRING, true, NULL, result_types},
    {"sending-mta-ip", F_STRING, false, NULL, NULL},
    {"receiving-mx-hostname", F_STRING, false, NULL, NULL},
    {"receiving-mx-helo", F_STRING, false, NULL, NULL},
    {"receiving-ip", F_STRING, false, NULL, NULL},
    {"failed-session-count", F_INTEGER, true, NULL, NULL},
    {"additional-information", F_STRING, false, NULL, NULL},
    {"failure-reason-code", F_STRING, false, NULL, NULL},
    {NULL, 0, false, NULL, NULL},
};
static const struct field policies[] = {
    {"policy", F_OBJECT, true, policy, NULL},
    {"summary", F_OBJECT, true, summary, NULL},
    {"failure-details", F_ARRAY_OBJECT, false, failure_details, NULL},
    {NULL, 0, false, NULL, NULL},
};
static const struct field report[] = {
    {"organization-name", F_STRING, true, NULL, NULL},
    {"date-range", F_OBJECT, true, date_range, NULL},
    {"contact-info", F_STRING, true, NULL, NULL},
    {"report-id", F_STRING, true, NULL, NULL},
    {"policies", F_ARRAY_OBJECT, true, policies, NULL},
    {NULL, 0, false, NULL, NULL},
};

static void check_object(const json_t *o, const struct field *spec, const char *path);

static void
check_value(const json_t *v, const struct field *f, const char *path)
{
	size_t i;
	json_t *e;

	switch (f->type) {
	case F_STRING:
		if (!json_is_string(v))
			fail_msg("%s.%s: not a string", path, f->name);
		if (f->enum_values != NULL) {
			bool ok = false;

			for (i = 0; f->enum_values[i] != NULL; i++)
				ok |= strcmp(json_string_value(v), f->enum_values[i]) == 0;
			if (!ok)
				fail_msg("%s.%s: \"%s\" not allowed", path, f->name,
				         json_string_value(v));
		}
		break;
	case F_INTEGER:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			fail_msg("%s.%s: not a non-negative integer", path, f->name);
		break;
	case F_OBJECT:
		if (!json_is_object(v))
			fail_msg("%s.%s: not an object", path, f->name);
		check_object(v, f->sub, f->name);
		break;
	case F_ARRAY_STRING:
		if (!json_is_array(v))
			fail_msg("%s.%s: not an array", path, f->name);
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e))
				fail_msg("%s.%s[%zu]: not a string", path, f->name, i);
		}
		break;
	case F_ARRAY_OBJECT:
		if (!json_is_array(v))
			fail_msg("%s.%s: not an array", path, f->name);
		json_array_foreach(v, i, e)
		{
			if (!json_is_object(e))
				fail_msg("%s.%s[%zu]: not an object", path, f->name, i);
			check_object(e, f->sub, f->name);
		}
		break;
	}
}

/* Every member known and of its type; every required member present. */
static void
check_object(const json_t *o, const struct field *spec, const char *path)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)o, key, v)
	{
		const struct field *f = spec;

		while (f->name != NULL && strcmp(f->name, key) != 0)
			f++;
		if (f->name == NULL)
			fail_msg("%s: unknown field \"%s\"", path, key);
		check_value(v, f, path);
	}
	for (const struct field *f = spec; f->name != NULL; f++)
		if (f->required && json_object_get(o, f->name) == NULL)
			fail_msg("%s: required field \"%s\" missing", path, f->name);
}

/* Parse text, check it against the schema; the caller frees the result. */
static json_t *
parse_checked(const char *text, size_t len)
{
	json_error_t e;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);

	if (root == NULL)
		fail_msg("not JSON: %s at %d", e.text, e.position);
	if (!json_is_object(root))
		fail_msg("report: not an object");
	check_object(root, report, "report");
	return root;
}

/* --- reports ------------------------------------------------------------------- */

#define DAY_2026_12_03 1796256000LL /* 2026-12-03T00:00:00Z */

static const char *const sts_strings[] = {"version: STSv1", "mode: testing",
                                          "mx: *.mail.company-y.example", "max_age: 86400"};
static const char *const sts_mx[] = {"*.mail.company-y.example"};

static const struct tlsrpt_failure sts_failures[] = {
    {.result = STS_RESULT_CERT_EXPIRED,
     .sending_mta_ip = "2001:db8:abcd:0012::1",
     .receiving_mx_hostname = "mx1.mail.company-y.example",
     .failed_session_count = 100},
    {.result = STS_RESULT_STARTTLS_NOT_SUPPORTED,
     .sending_mta_ip = "2001:db8:abcd:0013::1",
     .receiving_mx_hostname = "mx2.mail.company-y.example",
     .receiving_ip = "203.0.113.56",
     .failed_session_count = 200,
     .additional_information = "https://reports.company-x.example/report_info?id=5065427c-23d3"},
    {.result = STS_RESULT_VALIDATION_FAILURE,
     .sending_mta_ip = "198.51.100.62",
     .receiving_ip = "203.0.113.58",
     .receiving_mx_hostname = "mx-backup.mail.company-y.example",
     .receiving_mx_helo = "mx-backup.example",
     .failed_session_count = 3,
     .failure_reason_code = "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"},
};

static struct tlsrpt_policy
sts_policy(void)
{
	struct tlsrpt_policy p = {
	    .type = STS_PTYPE_STS,
	    .policy_strings = sts_strings,
	    .n_policy_strings = 4,
	    .domain = "company-y.example",
	    .mx_hosts = sts_mx,
	    .n_mx_hosts = 1,
	    .success = 5326,
	    .failure = 303,
	    .failures = sts_failures,
	    .n_failures = 3,
	};
	return p;
}

static struct tlsrpt_doc
doc_of(const struct tlsrpt_policy *p, size_t n)
{
	struct tlsrpt_doc d = {
	    .organization_name = "Company-X",
	    .begin = DAY_2026_12_03,
	    .end = DAY_2026_12_03 + 86399,
	    .contact_info = "sts-reporting@company-x.example",
	    .report_id = "20261203.company-y.example@company-x.example",
	    .policies = p,
	    .n_policies = n,
	};
	return d;
}

/* Section 4.4: the RFC's own example, field by field. */
static void
rfc8460_4_4_example_report(void **state)
{
	struct tlsrpt_policy p = sts_policy();
	struct tlsrpt_doc d = doc_of(&p, 1);
	char *text, err[160];
	size_t len;
	json_t *root, *pol, *fd;

	(void)state;
	assert_int_equal(tlsrpt_json_build(&d, &text, &len, err, sizeof(err)), 0);
	assert_int_equal(strlen(text), len);
	root = parse_checked(text, len);
	assert_string_equal(json_string_value(json_object_get(root, "organization-name")),
	                    "Company-X");
	assert_string_equal(json_string_value(json_object_get(json_object_get(root, "date-range"),
	                                                      "start-datetime")),
	                    "2026-12-03T00:00:00Z");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(root, "date-range"), "end-datetime")),
	    "2026-12-03T23:59:59Z");
	assert_string_equal(json_string_value(json_object_get(root, "contact-info")),
	                    "sts-reporting@company-x.example");
	assert_string_equal(json_string_value(json_object_get(root, "report-id")),
	                    "20261203.company-y.example@company-x.example");
	assert_int_equal(json_array_size(json_object_get(root, "policies")), 1);
	pol = json_array_get(json_object_get(root, "policies"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(pol, "policy"), "policy-type")),
	    "sts");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(pol, "policy"), "policy-domain")),
	    "company-y.example");
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(pol, "policy"), "policy-string")), 4);
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(json_object_get(pol, "policy"), "mx-host"), 0)),
	                    "*.mail.company-y.example");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(pol, "summary"),
	                                                    "total-successful-session-count")),
	                 5326);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(pol, "summary"),
	                                                    "total-failure-session-count")),
	                 303);
	fd = json_object_get(pol, "failure-details");
	assert_int_equal(json_array_size(fd), 3);
	/* The first detail has no receiving-ip, helo or optional texts: omitted, not empty. */
	assert_null(json_object_get(json_array_get(fd, 0), "receiving-ip"));
	assert_null(json_object_get(json_array_get(fd, 0), "receiving-mx-helo"));
	assert_null(json_object_get(json_array_get(fd, 0), "additional-information"));
	assert_null(json_object_get(json_array_get(fd, 0), "failure-reason-code"));
	assert_int_equal(json_object_size(json_array_get(fd, 0)), 4);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(fd, 0), "result-type")),
	    "certificate-expired");
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(fd, 1), "failed-session-count")),
	    200);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(fd, 2), "failure-reason-code")),
	    "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(fd, 2), "receiving-mx-helo")),
	    "mx-backup.example");
	/* Field order of section 4.1: organization-name first. */
	assert_memory_equal(text, "{\"organization-name\":", 20);
	json_decref(root);
	free(text);
}

/* Section 4.4: tlsa and no-policy-found beside sts; optional arrays omitted when empty. */
static void
rfc8460_4_4_policy_types(void **state)
{
	static const char *const tlsa_strings[] = {"3 1 1 0123456789abcdef"};
	struct tlsrpt_policy p[3];
	struct tlsrpt_doc d;
	char *text, err[160];
	size_t len;
	json_t *root, *pols;

	(void)state;
	p[0] = sts_policy();
	memset(&p[1], 0, sizeof(p[1]));
	p[1].type = STS_PTYPE_TLSA;
	p[1].domain = "company-y.example";
	p[1].policy_strings = tlsa_strings;
	p[1].n_policy_strings = 1;
	p[1].success = 7;
	memset(&p[2], 0, sizeof(p[2]));
	p[2].type = STS_PTYPE_NONE;
	p[2].domain = "company-z.example";
	p[2].success = 0;
	d = doc_of(p, 3);
	assert_int_equal(tlsrpt_json_build(&d, &text, &len, err, sizeof(err)), 0);
	root = parse_checked(text, len);
	pols = json_object_get(root, "policies");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_array_get(pols, 1), "policy"), "policy-type")),
	                    "tlsa");
	assert_null(json_object_get(json_object_get(json_array_get(pols, 1), "policy"), "mx-host"));
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_array_get(pols, 2), "policy"), "policy-type")),
	                    "no-policy-found");
	assert_null(
	    json_object_get(json_object_get(json_array_get(pols, 2), "policy"), "policy-string"));
	/* failure-details is always there, [] when there were none. */
	assert_true(json_is_array(json_object_get(json_array_get(pols, 2), "failure-details")));
	assert_int_equal(
	    json_array_size(json_object_get(json_array_get(pols, 2), "failure-details")), 0);
	/* Counts are JSON integers, even zero. */
	assert_true(
	    json_is_integer(json_object_get(json_object_get(json_array_get(pols, 2), "summary"),
	                                    "total-successful-session-count")));
	json_decref(root);
	free(text);
}

/* Every result type of section 4.3 comes out under its RFC name. */
static void
rfc8460_4_3_every_result_type(void **state)
{
	struct tlsrpt_failure f[STS_RESULT_MAX - 1];
	struct tlsrpt_policy p = sts_policy();
	struct tlsrpt_doc d = doc_of(&p, 1);
	char *text;
	size_t len;
	json_t *root, *fd;

	(void)state;
	memset(f, 0, sizeof(f));
	for (int r = 1; r < STS_RESULT_MAX; r++) {
		f[r - 1].result = (enum sts_result)r;
		f[r - 1].failed_session_count = (uint64_t)r;
	}
	p.failures = f;
	p.n_failures = STS_RESULT_MAX - 1;
	assert_int_equal(tlsrpt_json_build(&d, &text, &len, NULL, 0), 0);
	root = parse_checked(text, len);
	fd = json_object_get(json_array_get(json_object_get(root, "policies"), 0),
	                     "failure-details");
	assert_int_equal(json_array_size(fd), STS_RESULT_MAX - 1);
	json_decref(root);
	free(text);
}

/* Counts up to INT64_MAX are exact JSON integers; above, refused. */
static void
rfc8460_4_4_integer_bounds(void **state)
{
	struct tlsrpt_policy p = sts_policy();
	struct tlsrpt_doc d = doc_of(&p, 1);
	char *text, err[160];
	size_t len;
	json_t *root;

	(void)state;
	p.success = (uint64_t)INT64_MAX;
	assert_int_equal(tlsrpt_json_build(&d, &text, &len, err, sizeof(err)), 0);
	root = parse_checked(text, len);
	assert_true(
	    json_integer_value(json_object_get(
	        json_object_get(json_array_get(json_object_get(root, "policies"), 0), "summary"),
	        "total-successful-session-count")) == INT64_MAX);
	json_decref(root);
	free(text);
	p.success = (uint64_t)INT64_MAX + 1;
	assert_int_equal(tlsrpt_json_build(&d, &text, &len, err, sizeof(err)), -1);
	assert_null(text);
	assert_non_null(strstr(err, "JSON integer"));
}

/* Strings with quotes and backslashes are escaped, UTF-8 kept, and read back unchanged. */
static void
rfc8460_4_strings_escaped(void **state)
{
	struct tlsrpt_policy p = sts_policy();
	struct tlsrpt_doc d = doc_of(&p, 1);
	char *text;
	size_t len;
	json_t *root;

	(void)state;
	d.organization_name = "Company \"X\" \\ Gm\xc3\xb6"
	                      "bH";
	assert_int_equal(tlsrpt_json_build(&d, &text, &len, NULL, 0), 0);
	root = parse_checked(text, len);
	assert_string_equal(json_string_value(json_object_get(root, "organization-name")),
	                    "Company \"X\" \\ Gm\xc3\xb6"
	                    "bH");
	json_decref(root);
	free(text);
}

struct bad_case {
	const char *name;
	void (*spoil)(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f);
	const char *reason;
};

static void
no_org(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->organization_name = "";
}
static void
no_contact(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->contact_info = NULL;
}
static void
no_report_id(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->report_id = NULL;
}
static void
end_before_begin(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->end = d->begin - 1;
}
static void
no_policies(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->n_policies = 0;
}
static void
bad_utf8(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->organization_name = "X\xff";
}
static void
control_char(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->contact_info = "a@b.example\r\nBcc: x";
}
static void
ok_result(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)d, (void)p;
	f->result = STS_RESULT_OK;
}
static void
result_out_of_range(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)d, (void)p;
	f->result = STS_RESULT_MAX;
}
static void
type_out_of_range(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)d, (void)f;
	p->type = STS_PTYPE_MAX;
}
static void
bad_domain(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)d, (void)f;
	p->domain = "company y.example";
}
static void
none_with_strings(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)d, (void)f;
	p->type = STS_PTYPE_NONE;
}
static void
null_string_entry(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	static const char *const v[] = {"a", NULL};

	(void)d, (void)f;
	p->policy_strings = v;
	p->n_policy_strings = 2;
}
static void
failure_count_too_big(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)d, (void)p;
	f->failed_session_count = UINT64_MAX;
}
static void
time_out_of_range(struct tlsrpt_doc *d, struct tlsrpt_policy *p, struct tlsrpt_failure *f)
{
	(void)p, (void)f;
	d->end = 253402300800LL; /* year 10000 */
}

static const struct bad_case bad_cases[] = {
    {"rfc8460_4_1_organization_name_required", no_org, "required"},
    {"rfc8460_4_1_contact_info_required", no_contact, "required"},
    {"rfc8460_4_1_report_id_required", no_report_id, "required"},
    {"rfc8460_4_2_end_before_begin", end_before_begin, "date-range"},
    {"rfc8460_4_2_time_out_of_range", time_out_of_range, "date-range"},
    {"rfc8460_4_4_policies_required", no_policies, "policies"},
    {"rfc8460_4_invalid_utf8", bad_utf8, "UTF-8"},
    {"rfc8460_4_control_character", control_char, "control"},
    {"rfc8460_4_3_ok_is_not_a_result_type", ok_result, "not a failure"},
    {"rfc8460_4_3_result_out_of_range", result_out_of_range, "not a failure"},
    {"rfc8460_4_4_policy_type_out_of_range", type_out_of_range, "policy-type"},
    {"rfc8460_4_4_policy_domain_not_a_domain", bad_domain, "policy-domain"},
    {"rfc8460_4_4_no_policy_found_has_no_strings", none_with_strings, "no-policy-found"},
    {"rfc8460_4_4_null_policy_string", null_string_entry, "missing"},
    {"rfc8460_4_4_failed_count_too_big", failure_count_too_big, "JSON integer"},
};

static void
run_bad_case(void **state)
{
	const struct bad_case *c = *state;
	struct tlsrpt_failure f[3];
	struct tlsrpt_policy p = sts_policy();
	struct tlsrpt_doc d;
	char *text = (char *)1, err[160];
	size_t len = 1;

	memcpy(f, sts_failures, sizeof(f));
	p.failures = f;
	d = doc_of(&p, 1);
	c->spoil(&d, &p, &f[0]);
	if (tlsrpt_json_build(&d, &text, &len, err, sizeof(err)) != -1)
		fail_msg("%s: built", c->name);
	assert_null(text);
	assert_int_equal(len, 0);
	if (strstr(err, c->reason) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err, c->reason);
}

/* --- report id and times -------------------------------------------------------- */

static void
rfc8460_4_1_report_id(void **state)
{
	char id[TLSRPT_REPORT_ID_MAX];
	char big[300];

	(void)state;
	assert_int_equal(tlsrpt_report_id(id, sizeof(id), DAY_2026_12_03 + 3600,
	                                  "company-y.example", "company-x.example", NULL),
	                 (int)strlen("20261203.company-y.example@company-x.example"));
	assert_string_equal(id, "20261203.company-y.example@company-x.example");
	assert_true(tlsrpt_report_id(id, sizeof(id), DAY_2026_12_03, "company-y.example",
	                             "company-x.example", "gw1") > 0);
	assert_string_equal(id, "20261203.gw1.company-y.example@company-x.example");
	/* The same day gives the same id: a retried delivery is recognisably the same report. */
	{
		char id2[TLSRPT_REPORT_ID_MAX];

		assert_true(tlsrpt_report_id(id2, sizeof(id2), DAY_2026_12_03 + 86399,
		                             "company-y.example", "company-x.example", "gw1") > 0);
		assert_string_equal(id, id2);
	}
	assert_int_equal(tlsrpt_report_id(id, sizeof(id), DAY_2026_12_03, "a b", "x.example", NULL),
	                 -1);
	assert_int_equal(id[0], '\0');
	assert_int_equal(
	    tlsrpt_report_id(id, sizeof(id), DAY_2026_12_03, "y.example", "x.example\r\n", NULL),
	    -1);
	assert_int_equal(
	    tlsrpt_report_id(id, sizeof(id), DAY_2026_12_03, "y.example", "x.example", "g-1"), -1);
	assert_int_equal(tlsrpt_report_id(id, sizeof(id), -1, "y.example", "x.example", NULL), -1);
	assert_int_equal(tlsrpt_report_id(id, 10, DAY_2026_12_03, "y.example", "x.example", NULL),
	                 -1);
	/* The longest inputs still fit TLSRPT_REPORT_ID_MAX. */
	memset(big, 0, sizeof(big));
	for (int i = 0; i < 4; i++)
		memcpy(big + i * 64,
		       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.", 64);
	big[253] = '\0'; /* 3 labels of 63, a dot each, and 61 more */
	assert_true(tlsrpt_report_id(id, sizeof(id), DAY_2026_12_03, big, big,
	                             "abcdefghijklmnopqrstuvwxyz012345") > 0);
}

static void
rfc3339_times(void **state)
{
	char t[21];

	(void)state;
	assert_int_equal(tlsrpt_time(t, sizeof(t), 0), 0);
	assert_string_equal(t, "1970-01-01T00:00:00Z");
	assert_int_equal(tlsrpt_time(t, sizeof(t), DAY_2026_12_03 + 86399), 0);
	assert_string_equal(t, "2026-12-03T23:59:59Z");
	assert_int_equal(tlsrpt_time(t, 20, 0), -1);
	assert_int_equal(tlsrpt_time(t, sizeof(t), 253402300800LL), -1);
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(bad_cases) / sizeof(bad_cases[0]) + 8];
	size_t n = 0;
	const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(rfc8460_4_4_example_report),
	    cmocka_unit_test(rfc8460_4_4_policy_types),
	    cmocka_unit_test(rfc8460_4_3_every_result_type),
	    cmocka_unit_test(rfc8460_4_4_integer_bounds),
	    cmocka_unit_test(rfc8460_4_strings_escaped),
	    cmocka_unit_test(rfc8460_4_1_report_id),
	    cmocka_unit_test(rfc3339_times),
	};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct CMUnitTest t = {.name = bad_cases[i].name,
		                       .test_func = run_bad_case,
		                       .initial_state = (void *)&bad_cases[i]};
		tests[n++] = t;
	}
	return _cmocka_run_group_tests("tlsrpt_json", tests, n, NULL, NULL);
}
