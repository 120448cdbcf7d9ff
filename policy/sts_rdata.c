/*
 * sts_rdata.c - defensive parsers for TXT, MX, A and AAAA rdata.
 *
 * The resolver has already checked that each rdata fits in its message, but
 * nothing more: a hostile authoritative server chooses every byte. So each
 * parser walks the bytes with an explicit remaining length and refuses
 * anything that does not add up exactly.
 */
#include <string.h>

#include <netinet/in.h>

#include "policy/sts_rdata.h"

/* sts_rdata_txt - join the character-strings of one TXT record. */
int
sts_rdata_txt(const uint8_t *rd, size_t len, char *out, size_t outlen)
{
	size_t pos = 0, n = 0;

	if (rd == NULL || out == NULL || outlen < STS_RDATA_TXT_MAX + 1 || len == 0)
		return -1;
	while (pos < len) {
		size_t sl = rd[pos++];

		if (sl > len - pos)
			return -1;
		if (sl > STS_RDATA_TXT_MAX - n)
			return -1;
		/* RFC 8461 section 3.1: strings are joined without spaces. */
		memcpy(out + n, rd + pos, sl);
		n += sl;
		pos += sl;
	}
	out[n] = '\0';
	return (int)n;
}

/* sts_rdata_name - uncompressed wire name to dotted text. */
int
sts_rdata_name(const uint8_t *rd, size_t len, char *out, size_t outlen)
{
	size_t pos = 0, n = 0;

	if (rd == NULL || out == NULL || outlen < STS_RDATA_NAME_MAX + 1)
		return -1;
	for (;;) {
		size_t ll;

		if (pos >= len)
			return -1;
		ll = rd[pos++];
		if (ll == 0)
			break;
		/* 0xc0 and friends: pointers and extended labels have no place here. */
		if (ll > 63 || ll > len - pos)
			return -1;
		if (n != 0) {
			if (n >= STS_RDATA_NAME_MAX)
				return -1;
			out[n++] = '.';
		}
		if (ll > STS_RDATA_NAME_MAX - n)
			return -1;
		for (size_t i = 0; i < ll; i++) {
			uint8_t c = rd[pos + i];

			if (c <= ' ' || c >= 0x7f || c == '.' || c == '\\')
				return -1;
			out[n++] = (char)c;
		}
		pos += ll;
	}
	out[n] = '\0';
	return (int)pos;
}

/* sts_rdata_mx - preference and exchange host of one MX record. */
int
sts_rdata_mx(const uint8_t *rd, size_t len, unsigned *pref, char *host, size_t hostlen)
{
	int used;

	if (rd == NULL || pref == NULL || len < 3)
		return -1;
	used = sts_rdata_name(rd + 2, len - 2, host, hostlen);
	if (used < 0 || (size_t)used != len - 2)
		return -1;
	*pref = ((unsigned)rd[0] << 8) | rd[1];
	return 0;
}

/* sts_rdata_addr - A or AAAA rdata to a socket address. */
int
sts_rdata_addr(int family, const uint8_t *rd, size_t len, struct sockaddr_storage *out)
{
	if (rd == NULL || out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	if (family == AF_INET && len == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, rd, 4);
		return 0;
	}
	if (family == AF_INET6 && len == 16) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, rd, 16);
		return 0;
	}
	return -1;
}
