/*
 * sts_txt.c - parser for the _mta-sts TXT record (RFC 8461 section 3.1).
 *
 * The record is untrusted DNS data: it is scanned once, in place, with no
 * allocation, and the first problem found is reported.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy_internal.h"
#include "policy/sts_txt.h"

#define STS_VERSION     "v=STSv1"
#define STS_VERSION_LEN (sizeof(STS_VERSION) - 1)
#define QUOTE_MAX       40 /* how much of a bad field a reason repeats */

static void __attribute__((format(printf, 3, 4)))
set_reason(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	if (reason == NULL || reasonlen == 0)
		return;
	va_start(ap, fmt);
	/* A reason cut short is still a useful reason. */
	(void)vsnprintf(reason, reasonlen, fmt, ap);
	va_end(ap);
}

/* Section 3.1: sts-id = 1*32(ALPHA / DIGIT) */
static bool
id_valid(const char *s, size_t n)
{
	if (n == 0 || n > STS_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!sts_is_alnum(s[i]))
			return false;
	return true;
}

/* sts_txt_parse - see sts_txt.h */
enum sts_txt_status
sts_txt_parse(const char *rec, size_t len, char id[STS_ID_MAX + 1], char *reason, size_t reasonlen)
{
	char found[STS_ID_MAX + 1];
	size_t pos, i;
	bool have_id = false;

	id[0] = '\0';
	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	/* Section 3.1: records not starting with the version are not ours; the
	 * version is case-sensitive and must be whole ("v=STSv10" is not it). */
	if (rec == NULL || len < STS_VERSION_LEN || memcmp(rec, STS_VERSION, STS_VERSION_LEN) != 0)
		return STS_TXT_NOT_STS;
	if (len > STS_VERSION_LEN && rec[STS_VERSION_LEN] != ';' &&
	    !sts_is_wsp(rec[STS_VERSION_LEN]))
		return STS_TXT_NOT_STS;

	/* Section 3.1: the record is ASCII; anything else makes it invalid. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)rec[i];

		if (c >= 0x80) {
			set_reason(reason, reasonlen, "non-ASCII octet at offset %zu", i);
			return STS_TXT_INVALID;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			set_reason(reason, reasonlen, "control character at offset %zu", i);
			return STS_TXT_INVALID;
		}
	}

	pos = STS_VERSION_LEN;
	for (;;) {
		size_t start, eq, end;

		/* sts-field-delim = *WSP ";" *WSP; a final delimiter is optional. */
		while (pos < len && sts_is_wsp(rec[pos]))
			pos++;
		if (pos == len)
			break;
		if (rec[pos] != ';') {
			set_reason(reason, reasonlen, "expected ';' at offset %zu", pos);
			return STS_TXT_INVALID;
		}
		pos++;
		while (pos < len && sts_is_wsp(rec[pos]))
			pos++;
		if (pos == len)
			break;
		if (rec[pos] == ';') {
			set_reason(reason, reasonlen, "empty field at offset %zu", pos);
			return STS_TXT_INVALID;
		}

		start = pos;
		while (pos < len && rec[pos] != ';' && !sts_is_wsp(rec[pos]))
			pos++;
		end = pos;
		for (eq = start; eq < end && rec[eq] != '='; eq++)
			;
		if (eq == end || !sts_ext_name_valid(rec + start, eq - start) ||
		    !sts_ext_value_valid(rec + eq + 1, end - eq - 1)) {
			set_reason(reason, reasonlen, "malformed field \"%.*s\"",
			           (int)(end - start > QUOTE_MAX ? QUOTE_MAX : end - start),
			           rec + start);
			return STS_TXT_INVALID;
		}
		/* Keys are case-sensitive ("ID=" is an extension); the first id wins. */
		if (eq - start == 2 && memcmp(rec + start, "id", 2) == 0 && !have_id) {
			size_t n = end - eq - 1;

			if (!id_valid(rec + eq + 1, n)) {
				if (n > STS_ID_MAX)
					set_reason(reason, reasonlen,
					           "id: longer than %d characters", STS_ID_MAX);
				else
					set_reason(reason, reasonlen,
					           "id: only letters and digits allowed");
				return STS_TXT_INVALID;
			}
			memcpy(found, rec + eq + 1, n);
			found[n] = '\0';
			have_id = true;
		}
	}

	/* Section 3.1: id is required. */
	if (!have_id) {
		set_reason(reason, reasonlen, "id: missing");
		return STS_TXT_INVALID;
	}
	/* Only a valid record hands out an id. */
	memcpy(id, found, strlen(found) + 1);
	return STS_TXT_VALID;
}

/* sts_txt_select - see sts_txt.h */
int
sts_txt_select(const char *const *recs, const size_t *lens, size_t n, char id[STS_ID_MAX + 1],
               char *reason, size_t reasonlen)
{
	char cur[STS_ID_MAX + 1];
	enum sts_txt_status found = STS_TXT_NOT_STS;
	size_t n_sts = 0;

	id[0] = '\0';
	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char why[160];
		enum sts_txt_status st = sts_txt_parse(recs[i], lens[i], cur, why, sizeof(why));

		if (st == STS_TXT_NOT_STS)
			continue;
		/* Section 3.1: more than one STSv1 record means no usable record. */
		if (++n_sts > 1) {
			id[0] = '\0';
			set_reason(reason, reasonlen, "more than one STSv1 record");
			return -1;
		}
		found = st;
		if (st == STS_TXT_VALID) {
			memcpy(id, cur, sizeof(cur));
		} else {
			set_reason(reason, reasonlen, "%s", why);
		}
	}
	if (n_sts == 0)
		return 0;
	if (found != STS_TXT_VALID) {
		id[0] = '\0';
		return -1;
	}
	return 1;
}
