/*
 * policy_internal.h - lexical helpers shared by the policy module's
 * parsers; nothing outside policy/ includes this file.
 *
 * The TXT record (RFC 8461 section 3.1) and the policy file (section 3.2)
 * share one grammar for extension names and the same notion of white space.
 */
#ifndef STS_POLICY_INTERNAL_H
#define STS_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#define STS_EXT_NAME_MAX 32 /* sections 3.1 and 3.2: 1 + 31 characters */

/* sts_is_wsp - WSP of RFC 5234: space or horizontal tab. */
static inline bool
sts_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* sts_is_alnum - ASCII ALPHA / DIGIT, whatever the locale. */
static inline bool
sts_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* sts_ext_name_valid - (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."), n octets at s. */
static inline bool
sts_ext_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > STS_EXT_NAME_MAX || !sts_is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!sts_is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/*
 * sts_host_valid - a host name in A-labels: LDH labels of 1-63 octets, no
 * label starting or ending with '-', at most 253 octets, no trailing dot;
 * n octets at s. What a TLS-RPT report or address may name.
 */
static inline bool
sts_host_valid(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!sts_is_alnum(c) && (c != '-' || label == 0))
			return false;
		if (++label > 63)
			return false;
	}
	return s[n - 1] != '-' && s[n - 1] != '.';
}

/*
 * sts_ext_value_valid - an extension value of the MTA-STS TXT record
 * (RFC 8461 section 3.1, sts-ext-value) and of the TLS-RPT record (RFC 8460
 * section 3, tlsrpt-ext-value), one grammar: 1*(%x21-3A / %x3C / %x3E-7E),
 * i.e. no '=', ';' or space; n octets at s.
 */
static inline bool
sts_ext_value_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
			return false;
	}
	return true;
}

#endif
