/*
 * report_value.c - one gateway's TLS-RPT row as a value of the shared
 * Redis, encoded and decoded (see report_value.h). The decoder is the
 * only way a row of another gateway reaches the store: every field is
 * checked here, once.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "policy/report_value.h"

#define GATEWAY_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

struct report_value {
	struct report_store_row row;
	json_t *root; /* every string below points into it */
	char gateway[REPORT_STORE_GATEWAY_LEN];
	char domain[STS_REPORT_DOMAIN_LEN];
	const char *policy[STS_REPORT_POLICY_MAX];
	const char *mx[STS_REPORT_POLICY_MAX];
	struct report_store_detail details[REPORT_STORE_DETAILS_MAX];
};

static bool
gateway_valid(const char *s, size_t len)
{
	return len > 0 && len < REPORT_STORE_GATEWAY_LEN && strspn(s, GATEWAY_CHARS) >= len;
}

/* domain_valid - a lower-case host name, or the store's overflow bucket. */
static bool
domain_valid(const char *s)
{
	if (strcmp(s, STS_REPORT_OTHER) == 0)
		return true;
	for (const char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			return false;
	return strlen(s) < STS_REPORT_DOMAIN_LEN && sts_hostname_valid(s);
}

/* text_valid - printable ASCII, no newline (policy strings are stored one a line). */
static bool
text_valid(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e || n >= max)
			return false;
	return true;
}

static bool
ip_valid(const char *s)
{
	unsigned char buf[16];

	if (s[0] == '\0')
		return true;
	if (strlen(s) >= STS_REPORT_IP_LEN)
		return false;
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool
id_valid(const char *s)
{
	size_t n = strlen(s);

	return n < STS_REPORT_ID_LEN &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
}

static enum sts_result
result_by_name(const char *s)
{
	for (int i = STS_RESULT_OK + 1; i < STS_RESULT_MAX; i++)
		if (strcmp(s, sts_result_name((enum sts_result)i)) == 0)
			return (enum sts_result)i;
	return STS_RESULT_MAX;
}

/* count_get - a JSON integer 0..max; false otherwise. */
static bool
count_get(const json_t *j, uint64_t max, uint64_t *out)
{
	json_int_t v;

	if (!json_is_integer(j) || (v = json_integer_value(j)) < 0 || (uint64_t)v > max)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* strings_get - an array of at most STS_REPORT_POLICY_MAX strings, STS_REPORT_POLICY_BYTES in all.
 */
static bool
strings_get(const json_t *j, const char **v, size_t *n)
{
	size_t total = 0, i;
	const json_t *s;

	*n = 0;
	if (!json_is_array(j) || json_array_size(j) > STS_REPORT_POLICY_MAX)
		return false;
	json_array_foreach(j, i, s)
	{
		if (!json_is_string(s) ||
		    !text_valid(json_string_value(s), STS_REPORT_POLICY_BYTES))
			return false;
		total += json_string_length(s) + 1;
		if (total > STS_REPORT_POLICY_BYTES)
			return false;
		v[(*n)++] = json_string_value(s);
	}
	return true;
}

/* detail_get - one ["result", sending ip, mx host, mx helo, receiving ip, count]. */
static bool
detail_get(const json_t *j, struct report_store_detail *d)
{
	const char *f[5];

	if (!json_is_array(j) || json_array_size(j) != 6)
		return false;
	for (size_t i = 0; i < 5; i++) {
		if (!json_is_string(json_array_get(j, i)))
			return false;
		f[i] = json_string_value(json_array_get(j, i));
	}
	if ((d->result = result_by_name(f[0])) >= STS_RESULT_MAX || !ip_valid(f[1]) ||
	    !text_valid(f[2], STS_REPORT_DOMAIN_LEN - 1) ||
	    !text_valid(f[3], STS_REPORT_DOMAIN_LEN - 1) || !ip_valid(f[4]) ||
	    !count_get(json_array_get(j, 5), REPORT_VALUE_COUNT_MAX, &d->count) || d->count == 0)
		return false;
	d->sending_ip = f[1];
	d->mx_host = f[2];
	d->mx_helo = f[3];
	d->receiving_ip = f[4];
	return true;
}

/* field_parse - "<gateway>|<domain>|<type>" into v; NULL, or the reason. */
static const char *
field_parse(struct report_value *v, const char *field, size_t flen)
{
	const char *bar1, *bar2;
	char type[32];
	size_t dlen, tlen;

	if (flen >= REPORT_VALUE_FIELD_MAX || memchr(field, '\0', flen) != NULL)
		return "bad field";
	if ((bar1 = memchr(field, '|', flen)) == NULL ||
	    (bar2 = memchr(bar1 + 1, '|', flen - (size_t)(bar1 + 1 - field))) == NULL)
		return "bad field";
	if (!gateway_valid(field, (size_t)(bar1 - field)))
		return "bad gateway";
	memcpy(v->gateway, field, (size_t)(bar1 - field));
	v->gateway[bar1 - field] = '\0';
	dlen = (size_t)(bar2 - bar1 - 1);
	tlen = flen - (size_t)(bar2 + 1 - field);
	if (dlen == 0 || dlen >= sizeof(v->domain) || tlen == 0 || tlen >= sizeof(type))
		return "bad field";
	memcpy(v->domain, bar1 + 1, dlen);
	v->domain[dlen] = '\0';
	if (!domain_valid(v->domain))
		return "bad domain";
	memcpy(type, bar2 + 1, tlen);
	type[tlen] = '\0';
	for (int i = 0; i < STS_PTYPE_MAX; i++)
		if (strcmp(type, sts_policy_type_name((enum sts_policy_type)i)) == 0) {
			v->row.type = (enum sts_policy_type)i;
			return NULL;
		}
	return "bad policy type";
}

/* body_parse - the value's object into v->row; NULL, or the reason. */
static const char *
body_parse(struct report_value *v)
{
	static const char *const keys[] = {
	    "v",      "id", "mode",    "success", "failure",   "results", "detail_other",
	    "policy", "mx", "details", "seen",    "policy_at", NULL};
	struct report_store_row *r = &v->row;
	const char *key;
	json_t *j, *x;
	uint64_t u, sum = 0, listed[STS_RESULT_MAX] = {0};
	size_t i;

	if (!json_is_object(v->root))
		return "not an object";
	json_object_foreach(v->root, key, j)
	{
		size_t k = 0;

		while (keys[k] != NULL && strcmp(keys[k], key) != 0)
			k++;
		if (keys[k] == NULL)
			return "unknown member";
	}
	if (!count_get(json_object_get(v->root, "v"), 1, &u) || u != 1)
		return "not version 1";
	if (!json_is_string(j = json_object_get(v->root, "id")) || !id_valid(json_string_value(j)))
		return "bad policy id";
	r->policy_id = json_string_value(j);
	if (!json_is_string(j = json_object_get(v->root, "mode")) ||
	    sts_mode_parse(json_string_value(j), &r->mode) < 0)
		return "bad mode";
	if (!count_get(json_object_get(v->root, "success"), REPORT_VALUE_COUNT_MAX, &r->success) ||
	    !count_get(json_object_get(v->root, "failure"), REPORT_VALUE_COUNT_MAX, &r->failure) ||
	    !count_get(json_object_get(v->root, "detail_other"), r->failure, &r->detail_other))
		return "bad count";
	if (!json_is_object(j = json_object_get(v->root, "results")))
		return "bad results";
	json_object_foreach(j, key, x)
	{
		enum sts_result res = result_by_name(key);

		if (res >= STS_RESULT_MAX || !count_get(x, REPORT_VALUE_COUNT_MAX, &u) || u == 0)
			return "bad result type";
		r->by_result[res] = u;
		sum += u;
	}
	if (sum != r->failure)
		return "failures are not the sum of the result types";
	if ((j = json_object_get(v->root, "policy")) != NULL &&
	    !strings_get(j, v->policy, &r->n_policy))
		return "bad policy strings";
	if ((j = json_object_get(v->root, "mx")) != NULL && !strings_get(j, v->mx, &r->n_mx))
		return "bad mx patterns";
	r->policy = v->policy;
	r->mx = v->mx;
	if (!json_is_array(j = json_object_get(v->root, "details")) ||
	    json_array_size(j) > REPORT_STORE_DETAILS_MAX)
		return "bad details";
	json_array_foreach(j, i, x)
	{
		struct report_store_detail *d = &v->details[i];

		if (!detail_get(x, d))
			return "bad detail";
		listed[d->result] += d->count;
		if (listed[d->result] > r->by_result[d->result])
			return "details beyond their result type's count";
	}
	r->details = v->details;
	r->n_details = json_array_size(j);
	if (!count_get(json_object_get(v->root, "seen"), REPORT_VALUE_TIME_MAX, &u))
		return "bad time";
	r->seen_at = (int64_t)u;
	if (!count_get(json_object_get(v->root, "policy_at"), REPORT_VALUE_TIME_MAX, &u))
		return "bad time";
	r->policy_at = (int64_t)u;
	return NULL;
}

/* report_value_decode - see report_value.h */
struct report_value *
report_value_decode(int64_t day, const char *field, size_t flen, const char *value, size_t vlen,
                    const char **why)
{
	struct report_value *v;
	json_error_t jerr;
	const char *bad;

	*why = "out of memory";
	if (vlen > REPORT_VALUE_MAX) {
		*why = "value too long";
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	if ((bad = field_parse(v, field, flen)) != NULL)
		goto fail;
	if ((v->root = json_loadb(value, vlen, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		bad = "not JSON";
		goto fail;
	}
	if ((bad = body_parse(v)) != NULL)
		goto fail;
	v->row.day = day - ((day % 86400) + 86400) % 86400; /* the UTC day */
	v->row.domain = v->domain;
	v->row.gateway = v->gateway;
	return v;
fail:
	*why = bad;
	report_value_free(v);
	return NULL;
}

/* report_value_row - see report_value.h */
const struct report_store_row *
report_value_row(const struct report_value *v)
{
	return &v->row;
}

/* report_value_free - see report_value.h */
void
report_value_free(struct report_value *v)
{
	if (v == NULL)
		return;
	json_decref(v->root);
	free(v);
}

/* report_value_field - see report_value.h */
size_t
report_value_field(const struct report_store_row *row, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s|%s|%s", row->gateway, row->domain,
	                 sts_policy_type_name(row->type));

	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

static json_t *
strings_json(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* report_value_encode - see report_value.h */
int
report_value_encode(const struct report_store_row *row, char **out, size_t *len)
{
	json_t *o, *results, *details;
	struct report_value *check;
	char field[REPORT_VALUE_FIELD_MAX];
	const char *why;
	size_t flen;
	char *text;
	int bad = 0;

	*out = NULL;
	*len = 0;
	if ((flen = report_value_field(row, field, sizeof(field))) == 0)
		return -1;
	o = json_object();
	results = json_object();
	details = json_array();
	if (o == NULL || results == NULL || details == NULL) {
		json_decref(o);
		json_decref(results);
		json_decref(details);
		return -1;
	}
	for (int r = STS_RESULT_OK + 1; r < STS_RESULT_MAX; r++)
		if (row->by_result[r] > 0)
			bad |= json_object_set_new(results, sts_result_name((enum sts_result)r),
			                           json_integer((json_int_t)row->by_result[r]));
	for (size_t i = 0; i < row->n_details; i++) {
		const struct report_store_detail *d = &row->details[i];

		bad |= json_array_append_new(details,
		                             json_pack("[sssssI]", sts_result_name(d->result),
		                                       d->sending_ip, d->mx_host, d->mx_helo,
		                                       d->receiving_ip, (json_int_t)d->count));
	}
	bad |= json_object_set_new(o, "v", json_integer(1));
	bad |= json_object_set_new(o, "id", json_string(row->policy_id));
	bad |= json_object_set_new(o, "mode", json_string(sts_mode_name(row->mode)));
	bad |= json_object_set_new(o, "success", json_integer((json_int_t)row->success));
	bad |= json_object_set_new(o, "failure", json_integer((json_int_t)row->failure));
	bad |= json_object_set_new(o, "results", results);
	bad |= json_object_set_new(o, "detail_other", json_integer((json_int_t)row->detail_other));
	if (row->n_policy > 0)
		bad |= json_object_set_new(o, "policy", strings_json(row->policy, row->n_policy));
	if (row->n_mx > 0)
		bad |= json_object_set_new(o, "mx", strings_json(row->mx, row->n_mx));
	bad |= json_object_set_new(o, "details", details);
	bad |= json_object_set_new(o, "seen", json_integer((json_int_t)row->seen_at));
	bad |= json_object_set_new(o, "policy_at", json_integer((json_int_t)row->policy_at));
	text = bad == 0 ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text == NULL)
		return -1;
	/* What the others would refuse is not written: the same checks, here. */
	if ((check = report_value_decode(row->day, field, flen, text, strlen(text), &why)) ==
	    NULL) {
		free(text);
		return -1;
	}
	report_value_free(check);
	*out = text;
	*len = strlen(text);
	return 0;
}
