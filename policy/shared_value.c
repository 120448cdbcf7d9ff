/*
 * shared_value.c - encoding and strict decoding of what stsproxy keeps in
 * the shared Redis (see shared_value.h for the format). Everything read is
 * untrusted: lengths are checked before every copy, numbers are parsed
 * digit by digit with an overflow bound, and anything unexpected is
 * refused rather than repaired.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/util.h"
#include "policy/shared_value.h"

#define YEAR_S   31557600LL     /* RFC 8461 section 3.2: max_age is at most about a year */
#define TIME_MAX 253402300799LL /* 9999-12-31: no fetch time is later */

int
shared_id_valid(const char *id, size_t len)
{
	if (len == 0 || len > STS_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

size_t
shared_policy_encode(const struct shared_policy *p, char *buf, size_t len)
{
	int n;

	if (!shared_id_valid(p->id, strlen(p->id)) || p->fetched_at < 0 ||
	    p->fetched_at > TIME_MAX || p->expires_at <= p->fetched_at ||
	    p->expires_at - p->fetched_at > YEAR_S || p->text_len == 0 ||
	    p->text_len > STS_POLICY_MAX_BODY)
		return 0;
	n = snprintf(buf, len, "v1\nid=%s\nfetched=%lld\nexpires=%lld\n\n", p->id,
	             (long long)p->fetched_at, (long long)p->expires_at);
	if (n < 0 || (size_t)n >= len || len - (size_t)n < p->text_len)
		return 0;
	memcpy(buf + n, p->text, p->text_len);
	return (size_t)n + p->text_len;
}

/*
 * field - the line "<name><value>\n" at buf[*pos]; *val and *vlen are its
 * value. 0, or -1 when the line is not there or has no end.
 */
static int
field(const char *buf, size_t len, size_t *pos, const char *name, const char **val, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *end;

	if (len - *pos < nl || memcmp(buf + *pos, name, nl) != 0)
		return -1;
	*val = buf + *pos + nl;
	if ((end = memchr(*val, '\n', len - *pos - nl)) == NULL)
		return -1;
	*vlen = (size_t)(end - *val);
	*pos = (size_t)(end - buf) + 1;
	return 0;
}

/* number - a decimal in [0, TIME_MAX], no sign, no leading zero but "0". */
static int
number(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;

	if (len == 0 || len > 12 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > TIME_MAX)
		return -1;
	*out = v;
	return 0;
}

int
shared_policy_decode(const char *buf, size_t len, struct shared_policy *out, const char **why)
{
	size_t pos = 0, vlen;
	const char *val;

	memset(out, 0, sizeof(*out));
	if (len > SHARED_VALUE_MAX) {
		*why = "too long";
		return -1;
	}
	if (len < 3 || memcmp(buf, "v1\n", 3) != 0) {
		*why = "not version 1";
		return -1;
	}
	pos = 3;
	if (field(buf, len, &pos, "id=", &val, &vlen) < 0 || !shared_id_valid(val, vlen)) {
		*why = "bad id";
		return -1;
	}
	memcpy(out->id, val, vlen);
	out->id[vlen] = '\0';
	if (field(buf, len, &pos, "fetched=", &val, &vlen) < 0 ||
	    number(val, vlen, &out->fetched_at) < 0) {
		*why = "bad fetch time";
		return -1;
	}
	if (field(buf, len, &pos, "expires=", &val, &vlen) < 0 ||
	    number(val, vlen, &out->expires_at) < 0 || out->expires_at <= out->fetched_at ||
	    out->expires_at - out->fetched_at > YEAR_S) {
		*why = "bad expiry";
		return -1;
	}
	if (pos >= len || buf[pos] != '\n') {
		*why = "no blank line before the policy";
		return -1;
	}
	pos++;
	if (pos >= len || len - pos > STS_POLICY_MAX_BODY) {
		*why = "policy empty or too long";
		return -1;
	}
	out->text = buf + pos;
	out->text_len = len - pos;
	return 0;
}

int
shared_change_decode(const char *buf, size_t len, char domain[254], char id[STS_ID_MAX + 1])
{
	const char *sp = memchr(buf, ' ', len);
	size_t dlen, ilen;

	if (sp == NULL)
		return -1;
	dlen = (size_t)(sp - buf);
	ilen = len - dlen - 1;
	if (dlen == 0 || dlen > 253 || !shared_id_valid(sp + 1, ilen))
		return -1;
	memcpy(domain, buf, dlen);
	domain[dlen] = '\0';
	if (memchr(domain, '\0', dlen) != NULL || !sts_hostname_valid(domain))
		return -1;
	sts_lower(domain);
	memcpy(id, sp + 1, ilen);
	id[ilen] = '\0';
	return 0;
}

int
shared_server_decode(const char *buf, size_t len, int *family, uint8_t addr[16], int64_t *seen)
{
	const char *sp = memchr(buf, ' ', len);
	char text[INET6_ADDRSTRLEN];
	size_t alen;

	if (sp == NULL || (alen = (size_t)(sp - buf)) == 0 || alen >= sizeof(text))
		return -1;
	memcpy(text, buf, alen);
	text[alen] = '\0';
	if (number(sp + 1, len - alen - 1, seen) < 0)
		return -1;
	if (inet_pton(AF_INET, text, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, text, addr) == 1)
		*family = AF_INET6;
	else
		return -1;
	return 0;
}

size_t
shared_server_encode(int family, const uint8_t *addr, int64_t seen, char *buf, size_t len)
{
	char text[INET6_ADDRSTRLEN];
	int n;

	if ((family != AF_INET && family != AF_INET6) ||
	    inet_ntop(family, addr, text, sizeof(text)) == NULL)
		return 0;
	n = snprintf(buf, len, "%s %lld", text, (long long)seen);
	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}
