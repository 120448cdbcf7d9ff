/*
 * sts_mx.h - MTA-STS "mx" patterns (RFC 8461 sections 3.2 and 4.1).
 *
 * Pure, allocation-free functions: they run on the decision path of every
 * upstream connection. A pattern is a host name in A-labels, optionally
 * prefixed by "*." to stand for exactly one left-most label.
 */
#ifndef STS_MX_H
#define STS_MX_H

#include <stdbool.h>

struct sts_policy;

/*
 * sts_mx_pattern_valid - true if pattern is an acceptable policy "mx" value:
 * LDH labels of 1-63 octets (no leading or trailing hyphen), at most 253
 * octets without the optional trailing dot, an optional "*." prefix, and no
 * IP literal (a numeric last label), no '*' elsewhere, no empty label and no
 * non-ASCII octet (U-labels must be given as A-labels). NULL is invalid.
 */
bool sts_mx_pattern_valid(const char *pattern);

/*
 * sts_mx_match - true if host matches pattern (section 4.1): ASCII
 * case-insensitive, one trailing dot on either side ignored; "*.example.com"
 * matches exactly one extra non-empty left-most label. The pattern is assumed
 * valid (see sts_mx_pattern_valid); NULL arguments never match.
 */
bool sts_mx_match(const char *pattern, const char *host);

/* sts_mx_match_policy - true if host matches any mx pattern of p; NULL p never matches. */
bool sts_mx_match_policy(const struct sts_policy *p, const char *host);

#endif
