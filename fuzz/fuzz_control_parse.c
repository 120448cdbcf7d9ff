// sources: main/control.c core/onereq.c core/loop.c core/log.c core/conf.c core/util.c core/types.c
/*
 * fuzz_control_parse.c - the control socket's request parser on arbitrary
 * lines. Checks the contract as well as memory safety: an accepted flush or
 * refresh carries a valid lower-case host name without a trailing dot, and
 * an error always says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "main/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[CONTROL_REQUEST_MAX + 64], domain[256], err[128];
	enum control_cmd cmd;

	if (size >= sizeof(line))
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	domain[0] = err[0] = '\0';
	if (control_parse(line, &cmd, domain, sizeof(domain), err, sizeof(err)) < 0) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	if (cmd == CONTROL_CACHE_FLUSH || cmd == CONTROL_CACHE_REFRESH) {
		size_t len = strlen(domain);

		if (len == 0 || domain[len - 1] == '.' || !sts_hostname_valid(domain))
			abort();
		for (size_t i = 0; i < len; i++)
			if (domain[i] >= 'A' && domain[i] <= 'Z')
				abort();
	}
	return 0;
}
