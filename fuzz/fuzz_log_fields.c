// sources: core/log.c
/*
 * fuzz_log_fields.c - journal field extraction on arbitrary messages.
 * Checks the contract as well as memory safety: at most LOG_FIELDS_MAX
 * fields, each named once, in the documented order, with a NUL-terminated
 * value that is not empty and fits LOG_FIELD_VALUE_MAX.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const order[] = {"SESSION_ID", "DOMAIN", "RESULT_TYPE", "EVENT"};
	struct log_field f[LOG_FIELDS_MAX];
	char *msg;
	size_t n, next = 0;

	if ((msg = malloc(size + 1)) == NULL)
		return 0;
	memcpy(msg, data, size);
	msg[size] = '\0';
	n = log_fields(msg, f);
	if (n > LOG_FIELDS_MAX)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(f[i].value, sizeof(f[i].value));

		if (len == 0 || len == sizeof(f[i].value))
			abort();
		while (next < LOG_FIELDS_MAX && strcmp(order[next], f[i].name) != 0)
			next++;
		if (next == LOG_FIELDS_MAX)
			abort();
		next++;
	}
	free(msg);
	return 0;
}
