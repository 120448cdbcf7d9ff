/*
 * sts_rdata.h - pure parsers for the DNS record data the policy module reads:
 * TXT, MX, A and AAAA, in wire format as a resolver hands them over (the
 * rdata alone, without the RR header, names uncompressed).
 *
 * No I/O and no allocation: the input is untrusted and may be anything, so
 * every parser checks every length and reports malformed data with -1. They
 * are kept apart from the resolver so that they can be fuzzed.
 */
#ifndef STS_RDATA_H
#define STS_RDATA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STS_RDATA_TXT_MAX  4096 /* longest joined TXT record we accept */
#define STS_RDATA_NAME_MAX 253  /* longest host name in text, no trailing dot */

/*
 * sts_rdata_txt - join the character-strings of one TXT record without
 * separators (RFC 8461 section 3.1) into out, NUL-terminated. out must hold
 * STS_RDATA_TXT_MAX + 1 bytes. Returns the joined length (which may contain
 * NULs: use it, not strlen), or -1 if the rdata is malformed (a string runs
 * past the end, or there is none) or the result exceeds STS_RDATA_TXT_MAX.
 */
int sts_rdata_txt(const uint8_t *rd, size_t len, char *out, size_t outlen);

/*
 * sts_rdata_name - convert the uncompressed wire name at rd into dotted text
 * without the trailing dot ("" for the root). Labels must be printable ASCII
 * other than '.', '\\' and space; compression pointers are refused. Returns
 * the number of wire bytes used, or -1 if malformed or longer than
 * STS_RDATA_NAME_MAX (out must hold STS_RDATA_NAME_MAX + 1 bytes).
 */
int sts_rdata_name(const uint8_t *rd, size_t len, char *out, size_t outlen);

/*
 * sts_rdata_mx - parse MX rdata: a 16-bit preference and an uncompressed
 * name that must end exactly at the end of the rdata. A null MX (RFC 7505)
 * yields host "". Returns 0, or -1 if malformed.
 */
int sts_rdata_mx(const uint8_t *rd, size_t len, unsigned *pref, char *host, size_t hostlen);

/*
 * sts_rdata_addr - parse A (4 bytes, family AF_INET) or AAAA (16 bytes,
 * AF_INET6) rdata into out with port 0. Returns 0, or -1 if the length does
 * not match the family or the family is neither.
 */
int sts_rdata_addr(int family, const uint8_t *rd, size_t len, struct sockaddr_storage *out);

#endif
