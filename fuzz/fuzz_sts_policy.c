// sources: policy/sts_policy.c policy/sts_mx.c core/types.c
/*
 * fuzz_sts_policy.c - the policy file parser on arbitrary bytes. On success
 * the policy must keep the parser's promises (every mx valid and in normal
 * form, max_age clamped, mx present unless mode none), survive a deep copy,
 * and format as JSON; on failure the output must be empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sts_mx.h"
#include "policy/sts_policy.h"

#define JSON_MAX (STS_POLICY_MAX_MX * (STS_HOSTNAME_MAX + 3) + 128)

static char json[JSON_MAX];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_policy p = {0}, q = {0};
	struct sts_policy_error err;

	if (sts_policy_parse((const char *)data, size, &p, &err) != 0) {
		if (p.mx != NULL || p.n_mx != 0 || err.reason[0] == '\0')
			abort();
		return 0;
	}
	if (p.max_age > STS_MAX_AGE_CLAMP || p.n_mx > STS_POLICY_MAX_MX)
		abort();
	if (p.mode != STS_MODE_NONE && p.n_mx == 0)
		abort();
	for (size_t i = 0; i < p.n_mx; i++) {
		size_t n = strlen(p.mx[i]);

		if (!sts_mx_pattern_valid(p.mx[i]) || n == 0 || p.mx[i][n - 1] == '.')
			abort();
		for (size_t j = 0; j < n; j++)
			if (p.mx[i][j] >= 'A' && p.mx[i][j] <= 'Z')
				abort();
		/* A concrete host under a wildcard must match its own pattern. */
		if (p.mx[i][0] != '*' && !sts_mx_match_policy(&p, p.mx[i]))
			abort();
	}
	if (sts_policy_json(&p, json, sizeof(json)) <= 0)
		abort();
	if (sts_policy_copy(&q, &p) != 0 || q.n_mx != p.n_mx)
		abort();
	sts_policy_clear(&q);
	sts_policy_clear(&p);
	return 0;
}
