// sources: policy/sts_mx.c
/*
 * fuzz_sts_mx.c - mx pattern validation and matching on "pattern\0host".
 * Checks the symmetries section 4.1 promises: matching ignores case and a
 * trailing dot, and a wildcard covers exactly one extra label.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sts_mx.h"

#define NAME_MAX_FUZZ 300

static void
to_upper(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - ('a' - 'A'));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char pattern[NAME_MAX_FUZZ + 2], host[NAME_MAX_FUZZ + 2], alt[NAME_MAX_FUZZ + 4];
	const uint8_t *nul = memchr(data, 0, size);
	size_t pn, hn;
	bool valid, m;

	if (nul == NULL)
		return 0;
	pn = (size_t)(nul - data);
	hn = size - pn - 1;
	if (pn > NAME_MAX_FUZZ || hn > NAME_MAX_FUZZ)
		return 0;
	memcpy(pattern, data, pn);
	pattern[pn] = '\0';
	memcpy(host, nul + 1, hn);
	host[hn] = '\0';
	if (memchr(host, 0, hn) != NULL)
		return 0;

	valid = sts_mx_pattern_valid(pattern);
	m = sts_mx_match(pattern, host);
	if (!valid)
		return 0;

	/* Case does not matter. */
	memcpy(alt, host, hn + 1);
	to_upper(alt);
	if (sts_mx_match(pattern, alt) != m)
		abort();
	/* One trailing dot on the host does not matter. */
	if (hn > 0 && host[hn - 1] != '.') {
		memcpy(alt, host, hn);
		alt[hn] = '.';
		alt[hn + 1] = '\0';
		if (sts_mx_match(pattern, alt) != m)
			abort();
	}
	/* A matching host gains no match by adding a left-most label. */
	if (m && hn > 0) {
		alt[0] = 'x';
		alt[1] = '.';
		memcpy(alt + 2, host, hn + 1);
		if (sts_mx_match(pattern, alt))
			abort();
	}
	/* A valid non-wildcard pattern matches itself. */
	if (pattern[0] != '*' && !sts_mx_match(pattern, pattern))
		abort();
	return 0;
}
