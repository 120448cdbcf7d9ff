/*
 * netstring.c - parse and write netstrings for the socketmap protocol.
 *
 * The grammar is strict, as Postfix's own netstring reader is
 * (src/util/netstring.c): the length is one or more decimal digits with no
 * leading zero (except "0" itself), no sign and no white space; the data
 * is followed by exactly ','. Anything else is malformed and the
 * connection that sent it cannot be resynchronised.
 */
#include <stdio.h>
#include <string.h>

#include "core/netstring.h"

#define LEN_DIGITS_MAX 9 /* 999999999: far above any bound a caller passes */

/* netstring_parse - one netstring at the start of buf, or why not */
enum netstring_status
netstring_parse(const char *buf, size_t len, size_t max, const char **data, size_t *dlen,
                size_t *used)
{
	size_t n = 0, i;

	for (i = 0; i < len && buf[i] != ':'; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return NETSTRING_BAD;
		if (i == 1 && buf[0] == '0')
			return NETSTRING_BAD; /* leading zero */
		if (i >= LEN_DIGITS_MAX)
			return NETSTRING_TOOBIG;
		n = n * 10 + (size_t)(buf[i] - '0');
		if (n > max)
			return NETSTRING_TOOBIG;
	}
	if (i == len)
		return NETSTRING_MORE;
	if (i == 0)
		return NETSTRING_BAD; /* ":" with no length */
	/* buf[i] is ':'; the data is buf[i+1 .. i+n], then ',' */
	if (len - i - 1 < n + 1)
		return NETSTRING_MORE;
	if (buf[i + 1 + n] != ',')
		return NETSTRING_BAD;
	*data = buf + i + 1;
	*dlen = n;
	*used = i + n + 2;
	return NETSTRING_OK;
}

/* netstring_size - digits, ':', data, ',' */
size_t
netstring_size(size_t dlen)
{
	size_t digits = 1;

	for (size_t v = dlen; v >= 10; v /= 10)
		digits++;
	return digits + dlen + 2;
}

/* netstring_encode - "LEN:DATA," into out, or 0 when it does not fit */
size_t
netstring_encode(char *out, size_t outlen, const char *data, size_t dlen)
{
	size_t total = netstring_size(dlen);
	int h;

	if (total > outlen)
		return 0;
	h = snprintf(out, outlen, "%zu:", dlen);
	if (h < 0 || (size_t)h + dlen + 1 != total)
		return 0;
	if (dlen > 0)
		memmove(out + h, data, dlen);
	out[h + dlen] = ',';
	return total;
}
