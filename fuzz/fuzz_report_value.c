// sources: policy/report_value.c core/util.c core/types.c
/*
 * fuzz_report_value.c - another gateway's TLS-RPT row as read from the
 * shared Redis, which anyone able to write the database controls: the
 * input is "<field>\n<value>". A decoded row must keep the decoder's
 * promises (failures the sum of the result types, details within their
 * type's count and the store's bound, strings printable without a
 * newline, counts within REPORT_VALUE_COUNT_MAX) and encode to a value
 * that decodes to the same row.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/report_value.h"

#define DAY 1796256000

static void
check_text(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			abort();
}

static void
check_row(const struct report_store_row *r)
{
	uint64_t sum = 0, listed[STS_RESULT_MAX] = {0};

	if (r->day != DAY || r->type >= STS_PTYPE_MAX || r->success > REPORT_VALUE_COUNT_MAX ||
	    r->failure > REPORT_VALUE_COUNT_MAX || r->detail_other > r->failure ||
	    r->n_details > REPORT_STORE_DETAILS_MAX || r->n_policy > STS_REPORT_POLICY_MAX ||
	    r->n_mx > STS_REPORT_POLICY_MAX || r->by_result[STS_RESULT_OK] != 0)
		abort();
	for (int k = 0; k < STS_RESULT_MAX; k++)
		sum += r->by_result[k];
	if (sum != r->failure)
		abort();
	for (size_t i = 0; i < r->n_details; i++) {
		const struct report_store_detail *d = &r->details[i];

		if (d->result <= STS_RESULT_OK || d->result >= STS_RESULT_MAX || d->count == 0)
			abort();
		listed[d->result] += d->count;
		if (listed[d->result] > r->by_result[d->result])
			abort();
		check_text(d->sending_ip);
		check_text(d->mx_host);
		check_text(d->mx_helo);
		check_text(d->receiving_ip);
	}
	for (size_t i = 0; i < r->n_policy; i++)
		check_text(r->policy[i]);
	for (size_t i = 0; i < r->n_mx; i++)
		check_text(r->mx[i]);
	check_text(r->domain);
	check_text(r->gateway);
	check_text(r->policy_id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *nl, *why = NULL;
	struct report_value *v, *again;
	char *text = NULL, field[REPORT_VALUE_FIELD_MAX];
	size_t len, flen;

	if ((nl = memchr(buf, '\n', size)) == NULL)
		return 0;
	v = report_value_decode(DAY + 5, buf, (size_t)(nl - buf), nl + 1,
	                        size - (size_t)(nl - buf) - 1, &why);
	if (v == NULL) {
		if (why == NULL || why[0] == '\0')
			abort();
		return 0;
	}
	check_row(report_value_row(v));
	if ((flen = report_value_field(report_value_row(v), field, sizeof(field))) == 0 ||
	    report_value_encode(report_value_row(v), &text, &len) < 0)
		abort();
	if ((again = report_value_decode(DAY, field, flen, text, len, &why)) == NULL)
		abort();
	if (report_value_row(again)->success != report_value_row(v)->success ||
	    report_value_row(again)->failure != report_value_row(v)->failure ||
	    report_value_row(again)->n_details != report_value_row(v)->n_details ||
	    memcmp(report_value_row(again)->by_result, report_value_row(v)->by_result,
	           sizeof(report_value_row(v)->by_result)) != 0)
		abort();
	report_value_free(again);
	report_value_free(v);
	free(text);
	return 0;
}
