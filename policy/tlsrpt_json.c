/*
 * tlsrpt_json.c - the TLS-RPT aggregate report (RFC 8460 section 4) as
 * JSON text, built with jansson from a plain description.
 *
 * Every string is checked before it is used (UTF-8, no control
 * characters, bounded), every count fits a JSON integer, and the field
 * names are written here once, in the order of the RFC's example.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "policy/policy_internal.h"
#include "policy/tlsrpt_json.h"

#define STRING_MAX 4096 /* longest single string field */
#define DOMAIN_MAX 253

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
present(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* A host name, as a report names domains. */
static bool
host_ok(const char *s)
{
	return s != NULL && sts_host_valid(s, strnlen(s, DOMAIN_MAX + 1));
}

static bool
alnum_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* tlsrpt_time - see tlsrpt_json.h */
int
tlsrpt_time(char *out, size_t outlen, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	/* Years 0000-9999: RFC 3339 has four digits. */
	if (out == NULL || outlen < 21 || t < -62167219200LL || t > 253402300799LL ||
	    gmtime_r(&tt, &tm) == NULL)
		return -1;
	if (strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		return -1;
	return 0;
}

/* tlsrpt_report_id - see tlsrpt_json.h */
int
tlsrpt_report_id(char *out, size_t outlen, int64_t begin, const char *policy_domain,
                 const char *submitter, const char *unique)
{
	char day[21];
	int n;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (!host_ok(policy_domain) || !host_ok(submitter) ||
	    (present(unique) && !alnum_ok(unique, TLSRPT_UNIQUE_MAX)) ||
	    tlsrpt_time(day, sizeof(day), begin) < 0 || begin < 0)
		return -1;
	/* "YYYY-MM-DDT..." -> "YYYYMMDD" */
	n = snprintf(out, outlen, "%.4s%.2s%.2s.%s%s%s@%s", day, day + 5, day + 8,
	             present(unique) ? unique : "", present(unique) ? "." : "", policy_domain,
	             submitter);
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return -1;
	}
	return n;
}

/* A string field: valid UTF-8 (jansson checks), no control characters, bounded. */
static json_t *
str(const char *s, const char *what, char *err, size_t errlen)
{
	size_t n = strnlen(s, STRING_MAX + 1);
	json_t *j;

	if (n > STRING_MAX) {
		set_err(err, errlen, "%s: longer than %d octets", what, STRING_MAX);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			set_err(err, errlen, "%s: control character", what);
			return NULL;
		}
	}
	j = json_stringn(s, n);
	if (j == NULL)
		set_err(err, errlen, "%s: not UTF-8", what);
	return j;
}

/* Set key to a string; 0 or -1. */
static int
set_str(json_t *obj, const char *key, const char *s, char *err, size_t errlen)
{
	json_t *j = str(s, key, err, errlen);

	if (j == NULL)
		return -1;
	if (json_object_set_new(obj, key, j) != 0) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Set key to a string when there is one (optional fields); 0 or -1. */
static int
set_opt(json_t *obj, const char *key, const char *s, char *err, size_t errlen)
{
	return present(s) ? set_str(obj, key, s, err, errlen) : 0;
}

static int
set_int(json_t *obj, const char *key, uint64_t v, char *err, size_t errlen)
{
	json_t *j;

	if (v > (uint64_t)INT64_MAX) {
		set_err(err, errlen, "%s: %" PRIu64 " does not fit a JSON integer", key, v);
		return -1;
	}
	j = json_integer((json_int_t)v);
	if (j == NULL || json_object_set_new(obj, key, j) != 0) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* An array of strings, set only when not empty; 0 or -1. */
static int
set_strings(json_t *obj, const char *key, const char *const *v, size_t n, char *err, size_t errlen)
{
	json_t *a;

	if (n == 0)
		return 0;
	if (v == NULL || n > TLSRPT_STRINGS_MAX) {
		set_err(err, errlen, "%s: %zu entries (limit %d)", key, n, TLSRPT_STRINGS_MAX);
		return -1;
	}
	if ((a = json_array()) == NULL || json_object_set_new(obj, key, a) != 0) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *j;

		if (v[i] == NULL) {
			set_err(err, errlen, "%s: entry %zu missing", key, i);
			return -1;
		}
		if ((j = str(v[i], key, err, errlen)) == NULL)
			return -1;
		if (json_array_append_new(a, j) != 0) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* Section 4.4 "failure-details", one entry. */
static json_t *
failure_json(const struct tlsrpt_failure *f, char *err, size_t errlen)
{
	json_t *o = json_object();

	if (o == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	if (f->result <= STS_RESULT_OK || f->result >= STS_RESULT_MAX) {
		set_err(err, errlen, "result-type: %d is not a failure", (int)f->result);
		goto fail;
	}
	if (set_str(o, "result-type", sts_result_name(f->result), err, errlen) < 0 ||
	    set_opt(o, "sending-mta-ip", f->sending_mta_ip, err, errlen) < 0 ||
	    set_opt(o, "receiving-mx-hostname", f->receiving_mx_hostname, err, errlen) < 0 ||
	    set_opt(o, "receiving-mx-helo", f->receiving_mx_helo, err, errlen) < 0 ||
	    set_opt(o, "receiving-ip", f->receiving_ip, err, errlen) < 0 ||
	    set_int(o, "failed-session-count", f->failed_session_count, err, errlen) < 0 ||
	    set_opt(o, "additional-information", f->additional_information, err, errlen) < 0 ||
	    set_opt(o, "failure-reason-code", f->failure_reason_code, err, errlen) < 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* Section 4.4 "policies", one entry: {policy, summary, failure-details}. */
static json_t *
policy_json(const struct tlsrpt_policy *p, char *err, size_t errlen)
{
	json_t *o = json_object(), *pol, *sum, *fd;

	/* json_object_set_new() takes the value even when it fails: nothing leaks. */
	if (o == NULL || json_object_set_new(o, "policy", pol = json_object()) != 0 ||
	    json_object_set_new(o, "summary", sum = json_object()) != 0 ||
	    json_object_set_new(o, "failure-details", fd = json_array()) != 0) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	if (p->type < STS_PTYPE_NONE || p->type >= STS_PTYPE_MAX) {
		set_err(err, errlen, "policy-type: %d out of range", (int)p->type);
		goto fail;
	}
	if (!host_ok(p->domain)) {
		set_err(err, errlen, "policy-domain: not a domain name");
		goto fail;
	}
	if (p->type == STS_PTYPE_NONE && (p->n_policy_strings > 0 || p->n_mx_hosts > 0)) {
		set_err(err, errlen, "no-policy-found: has no policy-string or mx-host");
		goto fail;
	}
	if (set_str(pol, "policy-type", sts_policy_type_name(p->type), err, errlen) < 0 ||
	    set_strings(pol, "policy-string", p->policy_strings, p->n_policy_strings, err, errlen) <
	        0 ||
	    set_str(pol, "policy-domain", p->domain, err, errlen) < 0 ||
	    set_strings(pol, "mx-host", p->mx_hosts, p->n_mx_hosts, err, errlen) < 0)
		goto fail;
	if (set_int(sum, "total-successful-session-count", p->success, err, errlen) < 0 ||
	    set_int(sum, "total-failure-session-count", p->failure, err, errlen) < 0)
		goto fail;
	if (p->n_failures > TLSRPT_FAILURES_MAX || (p->n_failures > 0 && p->failures == NULL)) {
		set_err(err, errlen, "failure-details: %zu entries (limit %d)", p->n_failures,
		        TLSRPT_FAILURES_MAX);
		goto fail;
	}
	for (size_t i = 0; i < p->n_failures; i++) {
		json_t *f = failure_json(&p->failures[i], err, errlen);

		if (f == NULL)
			goto fail;
		if (json_array_append_new(fd, f) != 0) {
			set_err(err, errlen, "out of memory");
			goto fail;
		}
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* tlsrpt_json_build - see tlsrpt_json.h */
int
tlsrpt_json_build(const struct tlsrpt_doc *doc, char **out, size_t *outlen, char *err,
                  size_t errlen)
{
	char start[21], end[21];
	json_t *root = NULL, *range, *pols;
	char *text;
	size_t n;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (doc == NULL || out == NULL || outlen == NULL) {
		set_err(err, errlen, "no report");
		return -1;
	}
	/* Section 4.1: organization-name, date-range, contact-info and report-id are required. */
	if (!present(doc->organization_name) || !present(doc->contact_info) ||
	    !present(doc->report_id)) {
		set_err(err, errlen, "organization-name, contact-info and report-id are required");
		return -1;
	}
	if (doc->end < doc->begin || tlsrpt_time(start, sizeof(start), doc->begin) < 0 ||
	    tlsrpt_time(end, sizeof(end), doc->end) < 0) {
		set_err(err, errlen, "date-range: bad times");
		return -1;
	}
	if (doc->n_policies == 0 || doc->n_policies > TLSRPT_POLICIES_MAX ||
	    doc->policies == NULL) {
		set_err(err, errlen, "policies: %zu entries (1 to %d)", doc->n_policies,
		        TLSRPT_POLICIES_MAX);
		return -1;
	}
	if ((root = json_object()) == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	/* In the order of section 4.1 (jansson keeps insertion order). */
	if (set_str(root, "organization-name", doc->organization_name, err, errlen) < 0)
		goto fail;
	if (json_object_set_new(root, "date-range", range = json_object()) != 0) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	if (set_str(range, "start-datetime", start, err, errlen) < 0 ||
	    set_str(range, "end-datetime", end, err, errlen) < 0 ||
	    set_str(root, "contact-info", doc->contact_info, err, errlen) < 0 ||
	    set_str(root, "report-id", doc->report_id, err, errlen) < 0)
		goto fail;
	if ((pols = json_array()) == NULL || json_object_set_new(root, "policies", pols) != 0) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < doc->n_policies; i++) {
		json_t *p = policy_json(&doc->policies[i], err, errlen);

		if (p == NULL)
			goto fail;
		if (json_array_append_new(pols, p) != 0) {
			set_err(err, errlen, "out of memory");
			goto fail;
		}
	}
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	n = strlen(text);
	if (n > TLSRPT_JSON_MAX) {
		free(text);
		set_err(err, errlen, "report longer than %d octets", TLSRPT_JSON_MAX);
		return -1;
	}
	*out = text;
	*outlen = n;
	return 0;
fail:
	json_decref(root);
	return -1;
}
