// sources: proxy/smtp_data.c
/*
 * fuzz_smtp_data.c - the DATA scanner fed the input cut into chunks at
 * positions taken from its first bytes. The verdict and its offset must not
 * depend on the cuts, and must match a plain reference: the first bare CR,
 * bare LF or NUL refuses the data, otherwise the first CRLF.CRLF (counting
 * the CRLF that ended the DATA command) ends it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/smtp_data.h"

#define MAX_CUTS 6

struct verdict {
	int rc;
	uint64_t pos; /* END: octets up to the final LF; BAD: offending octet */
};

static struct verdict
reference(const char *in, size_t len)
{
	struct verdict v = {SMTP_DATA_MORE, 0};
	size_t i;

	for (i = 0; i < len; i++) {
		char c = in[i];
		bool bol = i == 0 || (i >= 2 && in[i - 1] == '\n');

		if (c == '\0' || (c == '\n' && (i == 0 || in[i - 1] != '\r'))) {
			v.rc = SMTP_DATA_BAD;
			v.pos = i;
			return v;
		}
		if (c == '\r' && i + 1 < len && in[i + 1] != '\n') {
			v.rc = SMTP_DATA_BAD;
			v.pos = i;
			return v;
		}
		if (c == '.' && bol && i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n') {
			v.rc = SMTP_DATA_END;
			v.pos = i + 3;
			return v;
		}
	}
	return v;
}

static struct verdict
run(const char *in, size_t len, const size_t *cuts, size_t ncuts)
{
	struct smtp_data d;
	struct verdict v = {SMTP_DATA_MORE, 0};
	size_t start = 0, k, consumed;

	smtp_data_init(&d);
	for (k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		int rc = smtp_data_feed(&d, in + start, end - start, &consumed);

		if (consumed > end - start)
			__builtin_trap();
		if (rc == SMTP_DATA_END) {
			v.rc = rc;
			v.pos = start + consumed;
			if (v.pos != d.octets)
				__builtin_trap();
			return v;
		}
		if (rc == SMTP_DATA_BAD) {
			if (d.error == NULL || d.error[0] != '5')
				__builtin_trap();
			v.rc = rc;
			v.pos = d.error_offset;
			return v;
		}
		if (rc != SMTP_DATA_MORE || consumed != end - start)
			__builtin_trap();
		start = end;
	}
	if (d.octets != len)
		__builtin_trap();
	return v;
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cuts[MAX_CUTS] = {0}, ncuts, i, len;
	const char *in;
	struct verdict one, split, ref;

	if (size < 1)
		return 0;
	ncuts = data[0] % (MAX_CUTS + 1);
	if (size < 1 + ncuts)
		return 0;
	in = (const char *)data + 1 + ncuts;
	len = size - 1 - ncuts;
	for (i = 0; i < ncuts; i++)
		cuts[i] = len ? data[1 + i] % (len + 1) : 0;
	qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);

	one = run(in, len, cuts, 0);
	split = run(in, len, cuts, ncuts);
	ref = reference(in, len);
	if (one.rc != split.rc || one.pos != split.pos)
		__builtin_trap();
	if (one.rc != ref.rc || (one.rc != SMTP_DATA_MORE && one.pos != ref.pos))
		__builtin_trap();
	return 0;
}
