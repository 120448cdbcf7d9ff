/*
 * util.c - small string, host name and clock helpers.
 *
 * Host name checks are deliberately strict and pure: they sit in front of
 * DNS lookups and MTA-STS matching, where a lenient parser would let an
 * attacker-supplied name (a banner, an SMTPUTF8 address) reach places that
 * assume LDH names.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <idn2.h>

#include "core/util.h"

/*
 * Longest input accepted by sts_domain_to_ascii(): UTF-8 needs at most four
 * octets per character, so anything longer cannot map to 253 A-label
 * octets except through code points that the mapping drops, which no
 * real domain is padded with.
 */
#define DOMAIN_INPUT_MAX (4 * STS_HOSTNAME_MAX + 4)

/* sts_strlcpy - BSD strlcpy; returns strlen(src). */
size_t
sts_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

/* sts_lower - ASCII lower-case in place. */
void
sts_lower(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

static bool
is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* sts_hostname_valid - strict LDH host name check (see util.h). */
bool
sts_hostname_valid(const char *name)
{
	size_t len, label = 0, labels = 0;
	bool digits_only = true;

	if (name == NULL)
		return false;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > STS_HOSTNAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '.';

		if (c == '.') {
			/* Labels 1-63 octets, no leading or trailing hyphen (RFC 1123 2.1). */
			if (label == 0 || label > 63 || name[i - 1] == '-' ||
			    name[i - label] == '-')
				return false;
			labels++;
			if (i < len) {
				label = 0;
				digits_only = true;
			}
			continue;
		}
		if (!is_ldh(c))
			return false;
		if (c < '0' || c > '9')
			digits_only = false;
		label++;
	}
	/* An all-numeric top label would make "10.0.0.1" a host name. */
	return labels >= 2 && !digits_only;
}

/* sts_utf8_seq - length of the valid UTF-8 sequence at s, 0 if invalid. */
size_t
sts_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	unsigned lo = 0x80, hi = 0xBF;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 1;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 2;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 3;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (len - 1 < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k <= n; k++) {
		if (s[k] < 0x80 || s[k] > 0xBF)
			return 0;
	}
	return n + 1;
}

static bool
utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = sts_utf8_seq(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

/* Lower-case name in place, drop one trailing dot, and check what is left. */
static bool
normalise(char *name)
{
	size_t len;

	sts_lower(name);
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	/* Exactly one trailing dot was allowed; the result carries none. */
	return len > 0 && name[len - 1] != '.' && sts_hostname_valid(name);
}

/* sts_domain_to_ascii - U-labels to lower-case A-labels (see util.h). */
int
sts_domain_to_ascii(const char *in, char *out, size_t outlen)
{
	char ascii[STS_HOSTNAME_MAX + 2], *conv = NULL, *name;
	size_t len;

	if (outlen > 0)
		out[0] = '\0';
	if (in == NULL)
		return -1;
	len = strnlen(in, DOMAIN_INPUT_MAX + 1);
	if (len == 0 || len > DOMAIN_INPUT_MAX || !utf8_valid((const unsigned char *)in, len))
		return -1;
	/*
	 * Names already in ASCII are only lower-cased and checked as LDH names:
	 * the IDNA2008 label rules would refuse real host names with hyphens
	 * in the third and fourth positions (r3---sn-x.googlevideo.com).
	 */
	if (is_ascii(in)) {
		if (len > STS_HOSTNAME_MAX + 1)
			goto fail;
		memcpy(ascii, in, len + 1);
		name = ascii;
	} else {
		/*
		 * RFC 8461 section 4.1 compares A-labels; SMTPUTF8 domains arrive
		 * as U-labels and must be converted before any lookup.
		 * Non-transitional processing keeps the IDNA2008 meaning of sharp
		 * s and final sigma.
		 */
		if (idn2_to_ascii_8z(in, &conv, IDN2_NONTRANSITIONAL) != IDN2_OK)
			goto fail;
		name = conv;
	}
	if (!normalise(name) || sts_strlcpy(out, name, outlen) >= outlen)
		goto fail;
	idn2_free(conv);
	return 0;
fail:
	idn2_free(conv);
	if (outlen > 0)
		out[0] = '\0';
	return -1;
}

/* sts_now_wall - seconds since the epoch. */
int64_t
sts_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

void
sts_printable(char *out, size_t outlen, const char *in, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];

		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (outlen > 0)
		out[n] = '\0';
}

void
sts_addr_text(const struct sockaddr *sa, char *ip, size_t iplen, char *full, size_t fulllen)
{
	unsigned port = 0;

	if (iplen > 0)
		ip[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen) == NULL && iplen > 0)
			ip[0] = '\0';
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen) == NULL && iplen > 0)
			ip[0] = '\0';
		port = ntohs(in6->sin6_port);
	}
	if (full != NULL && fulllen > 0)
		snprintf(full, fulllen, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}
