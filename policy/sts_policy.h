/*
 * sts_policy.h - the MTA-STS policy file (RFC 8461 sections 3.2 and 3.3):
 * a pure parser from bytes to struct sts_policy, and its normal JSON form.
 *
 * No I/O here. The parser accepts exactly what ../shared/RFC-NOTES.md says
 * and reports the first problem with its line number.
 */
#ifndef STS_POLICY_H
#define STS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

#define STS_POLICY_MAX_BODY 65536     /* section 3.3: 64 KiB */
#define STS_MAX_AGE_CLAMP   31557600u /* section 3.2: about one year */
#define STS_POLICY_MAX_MX   64        /* mx lines kept; more is an error */
#define STS_HOSTNAME_MAX    253

/* A parsed policy. Owns mx[] and its strings; release with sts_policy_clear(). */
struct sts_policy {
	enum sts_mode mode;
	uint32_t max_age; /* seconds, already clamped to STS_MAX_AGE_CLAMP */
	char **mx;        /* validated patterns, lower case, no trailing dot */
	size_t n_mx;
};

/* Why a policy was rejected. */
struct sts_policy_error {
	unsigned line;    /* 1-based line of the problem; 0: the whole file */
	char reason[160]; /* human-readable, e.g. "mode: unknown value \"Enforce\"" */
};

/*
 * sts_policy_parse - parse len bytes of text (not NUL-terminated; may hold
 * NULs, which are errors). On success returns 0 and fills *out (which must be
 * zeroed or cleared before). On failure returns -1, fills *err when not NULL,
 * and leaves *out empty.
 */
int sts_policy_parse(const char *text, size_t len, struct sts_policy *out,
                     struct sts_policy_error *err);

/* sts_policy_clear - free what p owns and zero it; safe on a zeroed struct. */
void sts_policy_clear(struct sts_policy *p);

/* sts_policy_copy - deep copy src into dst (zeroed); 0 or -1 on allocation failure. */
int sts_policy_copy(struct sts_policy *dst, const struct sts_policy *src);

/*
 * sts_policy_json - the normal form, written into buf:
 *   {"version":"STSv1","mode":"enforce","mx":["a.example"],"max_age":86400}
 * Returns the length written (without the NUL), or -1 if buf is too small.
 */
int sts_policy_json(const struct sts_policy *p, char *buf, size_t buflen);

#endif
