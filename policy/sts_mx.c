/*
 * sts_mx.c - validation and matching of MTA-STS "mx" patterns.
 *
 * Kept free of allocation and locale: matching happens for every upstream
 * connection, and host names are compared as ASCII only (A-labels).
 */
#include <stddef.h>
#include <string.h>

#include "policy/sts_mx.h"
#include "policy/sts_policy.h"

#define LABEL_MAX 63

static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static bool
is_ldh(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* Length of s without one trailing dot. */
static size_t
name_len(const char *s)
{
	size_t n = strlen(s);

	if (n > 0 && s[n - 1] == '.')
		n--;
	return n;
}

/* Case-insensitive equality of two n-octet ASCII strings. */
static bool
ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

/* sts_mx_pattern_valid - see sts_mx.h */
bool
sts_mx_pattern_valid(const char *pattern)
{
	const char *p;
	size_t n, i, start, label_len = 0;
	bool all_digits = true;

	if (pattern == NULL)
		return false;
	n = name_len(pattern);
	if (n == 0 || n > STS_HOSTNAME_MAX)
		return false;
	/* Section 4.1: '*' may only be the whole left-most label. */
	p = pattern;
	start = 0;
	if (n >= 2 && p[0] == '*' && p[1] == '.')
		start = 2;
	if (start == n)
		return false;
	for (i = start; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '.') {
			if (label_len == 0 || p[i - 1] == '-')
				return false;
			label_len = 0;
			all_digits = true;
			continue;
		}
		/* Section 3.2: non-ASCII (U-labels), '*', '_', ':' and brackets all end here. */
		if (!is_ldh(c))
			return false;
		if (label_len == 0 && c == '-')
			return false;
		if (++label_len > LABEL_MAX)
			return false;
		if (c < '0' || c > '9')
			all_digits = false;
	}
	if (label_len == 0 || p[n - 1] == '-')
		return false;
	/* A numeric top label is an IP address literal, never a host name. */
	if (all_digits)
		return false;
	return true;
}

/* sts_mx_match - see sts_mx.h */
bool
sts_mx_match(const char *pattern, const char *host)
{
	size_t pn, hn, i;

	if (pattern == NULL || host == NULL)
		return false;
	pn = name_len(pattern);
	hn = name_len(host);
	if (pn == 0 || hn == 0)
		return false;
	if (pn >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* Section 4.1: the wildcard is exactly one left-most label. */
		const char *suffix = pattern + 1; /* ".example.com" */
		size_t sn = pn - 1;

		if (hn <= sn)
			return false;
		if (!ieq(host + (hn - sn), suffix, sn))
			return false;
		/* The part before the suffix must be one non-empty label. */
		for (i = 0; i < hn - sn; i++)
			if (host[i] == '.' || host[i] == '*')
				return false;
		return true;
	}
	return pn == hn && ieq(pattern, host, pn);
}

/* sts_mx_match_policy - see sts_mx.h */
bool
sts_mx_match_policy(const struct sts_policy *p, const char *host)
{
	if (p == NULL)
		return false;
	for (size_t i = 0; i < p->n_mx; i++)
		if (sts_mx_match(p->mx[i], host))
			return true;
	return false;
}
