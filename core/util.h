/*
 * util.h - small string, host name and clock helpers shared by every module.
 *
 * Host names handled here are what MTA-STS compares (RFC 8461 section 4.1):
 * A-labels in lower case without a trailing dot. Anything coming from the
 * network or a mailer goes through sts_domain_to_ascii() before a lookup.
 */
#ifndef STS_UTIL_H
#define STS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest host name in presentation form, without the trailing dot. */
#define STS_HOSTNAME_MAX 253

/*
 * sts_strlcpy - BSD strlcpy: copy src into dst of size bytes, always
 * NUL-terminated when size > 0. Returns strlen(src); a result >= size means
 * the copy was truncated.
 */
size_t sts_strlcpy(char *dst, const char *src, size_t size);

/* sts_lower - ASCII lower-case s in place; other bytes are left alone. */
void sts_lower(char *s);

/*
 * sts_hostname_valid - true for an LDH A-label host name: labels of 1-63
 * letters, digits and hyphens, not starting or ending with a hyphen, at
 * least two labels, at most 253 octets (plus one optional trailing dot), and
 * a last label that is not all digits, so that IP literals are refused.
 * NULL is invalid.
 */
bool sts_hostname_valid(const char *name);

/*
 * sts_domain_to_ascii - convert a domain that may hold U-labels (UTF-8) to
 * A-labels (IDNA2008 with UTS #46 non-transitional mapping), lower case,
 * without a trailing dot, into out (outlen bytes). Input that is already
 * ASCII is only lower-cased and checked as an LDH name (its xn-- labels are
 * not decoded), so every name sts_hostname_valid() accepts converts to its
 * lower-case form without the trailing dot. The result always passes
 * sts_hostname_valid(). Returns 0, or -1 when in is NULL, not valid UTF-8,
 * not a valid host name, or does not fit in out; out is then the empty
 * string (when outlen > 0).
 */
int sts_domain_to_ascii(const char *in, char *out, size_t outlen);

/*
 * sts_utf8_seq - the length (1-4) of the valid UTF-8 sequence at the start
 * of s (len > 0 bytes), or 0 when it is not one: overlong forms, surrogates
 * and code points above U+10FFFF are invalid. NUL is a valid sequence of 1.
 */
size_t sts_utf8_seq(const unsigned char *s, size_t len);

/* sts_now_wall - wall-clock seconds since the epoch (CLOCK_REALTIME). */
int64_t sts_now_wall(void);

/*
 * sts_printable - len bytes from the network made safe for a log line, an
 * event or a reply: every byte outside 0x20-0x7e becomes '?'. out is always
 * NUL-terminated (when outlen > 0) and cut to fit.
 */
void sts_printable(char *out, size_t outlen, const char *in, size_t len);

struct sockaddr;

/*
 * sts_addr_text - the address of sa (AF_INET or AF_INET6) as text into ip
 * ("" for any other family), and, when full is not NULL, "ip:port" or
 * "[ip]:port" into full. Never fails; outputs are cut to their sizes.
 */
void sts_addr_text(const struct sockaddr *sa, char *ip, size_t iplen, char *full, size_t fulllen);

#endif
