// sources: policy/tlsrpt_record.c
/*
 * fuzz_tlsrpt_record.c - the _smtp._tls TXT parser on arbitrary bytes: the
 * whole input as one record, then split on '\n' as all the records of a
 * name. Checks that a valid record only ever yields bounded,
 * NUL-terminated URIs whose addresses could go into a header as they are.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/tlsrpt_record.h"

#define MAX_RECS 16

static void
check_record(const struct tlsrpt_record *r)
{
	if (r->n_rua == 0 || r->n_rua > TLSRPT_RUA_MAX)
		abort();
	for (size_t i = 0; i < r->n_rua; i++) {
		const struct tlsrpt_uri *u = &r->rua[i];
		size_t ulen = strnlen(u->uri, sizeof(u->uri));
		size_t alen = strnlen(u->addr, sizeof(u->addr));

		if (ulen == 0 || ulen > TLSRPT_URI_MAX || alen == 0 || alen > TLSRPT_ADDR_MAX)
			abort();
		if (u->scheme == TLSRPT_MAILTO) {
			if (strncmp(u->uri, "mailto:", 7) != 0 || strchr(u->addr, '@') == NULL)
				abort();
		} else if (u->scheme == TLSRPT_HTTPS) {
			if (strncmp(u->uri, "https://", 8) != 0)
				abort();
		} else {
			abort();
		}
		/* Nothing that could end or extend a header line, nothing non-ASCII. */
		for (size_t k = 0; k < alen; k++) {
			unsigned char c = (unsigned char)u->addr[k];

			if (c <= 0x20 || c >= 0x7f || c == ',' || c == ';' || c == '<' || c == '>')
				abort();
		}
		for (size_t k = 0; k < ulen; k++) {
			unsigned char c = (unsigned char)u->uri[k];

			if (c <= 0x20 || c >= 0x7f || c == ',' || c == ';' || c == '!')
				abort();
		}
	}
}

static void
check_empty(const struct tlsrpt_record *r)
{
	if (r->n_rua != 0 || r->n_skipped != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *recs[MAX_RECS];
	size_t lens[MAX_RECS], n = 0, start = 0;
	struct tlsrpt_record r;
	char reason[160];
	enum tlsrpt_rec_status st;
	int rc;

	st = tlsrpt_record_parse(text, size, &r, reason, sizeof(reason));
	if (st == TLSRPT_REC_VALID)
		check_record(&r);
	else
		check_empty(&r);
	if (st == TLSRPT_REC_INVALID && strnlen(reason, sizeof(reason)) == 0)
		abort();

	for (size_t i = 0; i <= size && n < MAX_RECS; i++) {
		if (i == size || text[i] == '\n') {
			recs[n] = text + start;
			lens[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	rc = tlsrpt_record_select(recs, lens, n, &r, reason, sizeof(reason));
	if (rc == 1)
		check_record(&r);
	else if (rc == 0 || rc == -1)
		check_empty(&r);
	else
		abort();
	return 0;
}
