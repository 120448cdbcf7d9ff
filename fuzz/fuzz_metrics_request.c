// sources: main/metrics.c core/onereq.c core/loop.c core/log.c
/*
 * fuzz_metrics_request.c - the metrics endpoint's request judge on
 * arbitrary request heads. Checks the contract as well as memory safety:
 * only the documented statuses come out, HEAD is flagged only on 200, and
 * a 200 really names GET or HEAD of /metrics.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "main/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int head_only = -1;
	int st;

	if (size > METRICS_REQUEST_MAX)
		return 0;
	st = metrics_parse_request((const char *)data, size, &head_only);
	if (st != 200 && st != 400 && st != 404 && st != 405 && st != 505)
		abort();
	if (head_only != 0 && (head_only != 1 || st != 200))
		abort();
	if (st == 200 && !(size >= 13 && memcmp(data, "GET /metrics", 12) == 0) &&
	    !(size >= 14 && memcmp(data, "HEAD /metrics", 13) == 0))
		abort();
	return 0;
}
