// sources: core/util.c
/*
 * fuzz_util_domain.c - host name validation and IDN conversion on arbitrary
 * bytes. Checks the contract as well as memory safety: a converted name is
 * a valid host name in lower case without a trailing dot, conversion is
 * idempotent on its output, every valid LDH name converts to its lower-case
 * form, and a failed conversion leaves an empty string.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[2048], out[STS_HOSTNAME_MAX + 1], again[STS_HOSTNAME_MAX + 1], small[16];
	size_t len;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	len = strlen(in);

	(void)sts_hostname_valid(in);
	if (sts_domain_to_ascii(in, out, sizeof(out)) == 0) {
		size_t olen = strlen(out);
		if (!sts_hostname_valid(out) || olen == 0 || out[olen - 1] == '.')
			abort();
		for (size_t i = 0; i < olen; i++) {
			if (out[i] >= 'A' && out[i] <= 'Z')
				abort();
		}
		if (sts_domain_to_ascii(out, again, sizeof(again)) != 0 || strcmp(out, again) != 0)
			abort();
		/* A short buffer either holds the whole result or fails cleanly. */
		if (sts_domain_to_ascii(in, small, sizeof(small)) == 0) {
			if (strcmp(small, out) != 0)
				abort();
		} else if (small[0] != '\0' || olen < sizeof(small)) {
			abort();
		}
	} else if (out[0] != '\0') {
		abort();
	}
	/* Every valid LDH name converts to itself, lower-cased, without the dot. */
	if (sts_hostname_valid(in)) {
		char low[STS_HOSTNAME_MAX + 2];
		if (sts_strlcpy(low, in, sizeof(low)) >= sizeof(low))
			abort();
		sts_lower(low);
		if (low[len - 1] == '.')
			low[len - 1] = '\0';
		if (sts_domain_to_ascii(in, out, sizeof(out)) != 0 || strcmp(low, out) != 0)
			abort();
	}
	return 0;
}
