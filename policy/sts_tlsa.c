/*
 * sts_tlsa.c - TLSA rdata, presentation form and printing (see sts_tlsa.h).
 * Every length is checked: rdata comes from the network.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy/sts_tlsa.h"

int
sts_tlsa_rdata(const uint8_t *rd, size_t len, struct tls_tlsa *out)
{
	/* RFC 6698 section 2.1: three octets, then at least one of data. */
	if (rd == NULL || len < 4 || len - 3 > STS_TLSA_DATA_MAX)
		return -1;
	out->usage = rd[0];
	out->selector = rd[1];
	out->mtype = rd[2];
	out->data = rd + 3;
	out->len = len - 3;
	return 0;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* field - one decimal field 0-255 at *s, then white space; -1 when there is none. */
static int
field(const char **s)
{
	const char *p = *s;
	unsigned v = 0;
	int digits = 0;

	while (is_space(*p))
		p++;
	while (*p >= '0' && *p <= '9' && digits < 4) {
		v = v * 10 + (unsigned)(*p++ - '0');
		digits++;
	}
	if (digits == 0 || digits > 3 || v > 255 || !is_space(*p))
		return -1;
	*s = p;
	return (int)v;
}

int
sts_tlsa_text(const char *s, uint8_t *buf, size_t buflen, struct tls_tlsa *out, char *why,
              size_t whylen)
{
	int f[3], hi = -1;
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		if ((f[i] = field(&s)) < 0) {
			snprintf(why, whylen,
			         "expected \"USAGE SELECTOR MTYPE HEX\", fields 0-255");
			return -1;
		}
	}
	for (; *s != '\0'; s++) {
		int v;

		if (is_space(*s))
			continue;
		if ((v = hexval(*s)) < 0) {
			snprintf(why, whylen, "association data: '%c' is not hexadecimal", *s);
			return -1;
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= buflen || n >= STS_TLSA_DATA_MAX) {
			snprintf(why, whylen, "association data longer than %d octets",
			         STS_TLSA_DATA_MAX);
			return -1;
		}
		buf[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0 || n == 0) {
		snprintf(why, whylen, "association data: %s",
		         n == 0 && hi < 0 ? "missing" : "odd number of hexadecimal digits");
		return -1;
	}
	out->usage = (uint8_t)f[0];
	out->selector = (uint8_t)f[1];
	out->mtype = (uint8_t)f[2];
	out->data = buf;
	out->len = n;
	return 0;
}

size_t
sts_tlsa_format(const struct tls_tlsa *rr, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t used;
	int k;

	if (outlen == 0)
		return 0;
	k = snprintf(out, outlen, "%u %u %u ", rr->usage, rr->selector, rr->mtype);
	if (k < 0 || (size_t)k >= outlen) {
		out[outlen - 1] = '\0';
		return strlen(out);
	}
	used = (size_t)k;
	for (size_t i = 0; i < rr->len; i++) {
		if (used + 2 >= outlen) {
			/* cut: the last three characters say so */
			if (outlen >= 4) {
				used = outlen - 4;
				memcpy(out + used, "...", 3);
				used += 3;
			}
			break;
		}
		out[used++] = hex[rr->data[i] >> 4];
		out[used++] = hex[rr->data[i] & 15];
	}
	out[used] = '\0';
	return used;
}
