// sources: policy/sts_txt.c
/*
 * fuzz_sts_txt.c - the _mta-sts TXT parser on arbitrary bytes: the whole
 * input as one record, then split on '\n' as all the records of a name.
 * Checks that a valid record always yields a well-formed id.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sts_txt.h"

#define MAX_RECS 16

static void
check_id(const char *id)
{
	size_t n = strnlen(id, STS_ID_MAX + 1);

	if (n == 0 || n > STS_ID_MAX)
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *recs[MAX_RECS];
	size_t lens[MAX_RECS], n = 0, start = 0;
	char id[STS_ID_MAX + 1], reason[160];
	enum sts_txt_status st;
	int rc;

	st = sts_txt_parse(text, size, id, reason, sizeof(reason));
	if (st == STS_TXT_VALID)
		check_id(id);
	else if (id[0] != '\0')
		abort();
	if (st == STS_TXT_INVALID && strnlen(reason, sizeof(reason)) == 0)
		abort();

	for (size_t i = 0; i <= size && n < MAX_RECS; i++) {
		if (i == size || text[i] == '\n') {
			recs[n] = text + start;
			lens[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	rc = sts_txt_select(recs, lens, n, id, reason, sizeof(reason));
	if (rc == 1)
		check_id(id);
	else if (id[0] != '\0' || rc < -1 || rc > 1)
		abort();
	return 0;
}
