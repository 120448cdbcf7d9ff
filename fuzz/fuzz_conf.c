// sources: core/conf.c core/util.c core/log.c core/types.c
/*
 * fuzz_conf.c - the configuration loader fed arbitrary text: it must either
 * load a struct that satisfies the invariants the daemon relies on, or
 * refuse with a message naming the input, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	char *text;
	struct conf *c;

	if (size > 65536)
		return 0;
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	c = conf_load_string(text, "fuzz", err, sizeof(err));
	if (c == NULL) {
		if (strncmp(err, "fuzz:", 5) != 0)
			abort();
	} else {
		if (c->n_listen == 0 && !c->nfq.enabled)
			abort();
		for (size_t i = 0; i < c->n_policies; i++)
			if (c->policies[i].domain == NULL ||
			    (c->policies[i].mode != STS_MODE_NONE && c->policies[i].n_mx == 0))
				abort();
		if (c->nfq.n_queues == 0 || c->max_sessions == 0)
			abort();
		conf_free(c);
	}
	free(text);
	return 0;
}
