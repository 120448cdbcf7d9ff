/*
 * tlsrpt_record.c - parser for the _smtp._tls TXT record (RFC 8460
 * section 3): which URIs a policy domain wants its reports sent to.
 *
 * The record is untrusted DNS data: it is scanned once, in place, and the
 * first problem found is reported. Only the decoded address of a mailto:
 * URI is copied, and only after its length is checked.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy_internal.h"
#include "policy/sts_rdata.h"
#include "policy/tlsrpt_record.h"

#define TLSRPT_VERSION     "v=TLSRPTv1"
#define TLSRPT_VERSION_LEN (sizeof(TLSRPT_VERSION) - 1)
#define QUOTE_MAX          40 /* how much of a bad field a reason repeats */
#define LOCAL_PART_MAX     64 /* RFC 5321 section 4.5.3.1.1 */

static void __attribute__((format(printf, 3, 4)))
set_reason(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	if (reason == NULL || reasonlen == 0)
		return;
	va_start(ap, fmt);
	/* A reason cut short is still a useful reason. */
	(void)vsnprintf(reason, reasonlen, fmt, ap);
	va_end(ap);
}

static int
quote_len(size_t n)
{
	return (int)(n > QUOTE_MAX ? QUOTE_MAX : n);
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/*
 * A URI character of RFC 3986 (unreserved, gen-delims, sub-delims) other
 * than those section 3 says MUST be percent-encoded in a tlsrpt-uri:
 * ',' '!' ';'. '%' is checked separately, with its two hex digits.
 */
static bool
uri_char(char c)
{
	if (sts_is_alnum(c))
		return true;
	return c != '\0' && strchr("-._~:/?#[]@$&'()*+=", c) != NULL;
}

/* scheme ":" followed by URI characters and well-formed percent-encodings. */
static bool
uri_syntax_ok(const char *s, size_t n, size_t *scheme_len)
{
	size_t i = 0;

	if (n == 0 || !is_alpha(s[0]))
		return false;
	/* RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	while (i < n && (sts_is_alnum(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
		i++;
	if (i == n || s[i] != ':')
		return false;
	*scheme_len = i;
	for (i++; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return false;
			i += 2;
		} else if (!uri_char(s[i])) {
			return false;
		}
	}
	return true;
}

/*
 * mailto: (RFC 6068) - the percent-decoded addr-spec before any "?hfields",
 * which must be one plain "local@domain": anything fancier (quoted local
 * parts, several addresses, address literals) is not worth a report.
 */
static bool
mailto_addr(const char *s, size_t n, char addr[TLSRPT_ADDR_MAX + 1])
{
	size_t o = 0, at = 0, n_at = 0;

	for (size_t i = 0; i < n && s[i] != '?'; i++) {
		char c = s[i];

		if (c == '%') {
			/* uri_syntax_ok() has checked the two hex digits. */
			c = (char)(hex_val(s[i + 1]) * 16 + hex_val(s[i + 2]));
			i += 2;
		}
		if ((unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f ||
		    strchr("<>()[],;:\\\"", c) != NULL)
			return false;
		if (c == '@') {
			n_at++;
			at = o;
		}
		if (o >= TLSRPT_ADDR_MAX)
			return false;
		addr[o++] = c;
	}
	addr[o] = '\0';
	if (n_at != 1 || at == 0 || at > LOCAL_PART_MAX ||
	    !sts_host_valid(addr + at + 1, o - at - 1))
		return false;
	return true;
}

/* https: "//" authority with a plain host name and an optional port, then path, query... */
static bool
https_host(const char *s, size_t n, char host[TLSRPT_ADDR_MAX + 1])
{
	size_t i = 2, h;

	if (n < 3 || s[0] != '/' || s[1] != '/')
		return false;
	while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#' && s[i] != ':') {
		/* No userinfo, no IP literal, no percent-encoded host. */
		if (s[i] == '@' || s[i] == '[' || s[i] == '%')
			return false;
		i++;
	}
	h = i - 2;
	if (!sts_host_valid(s + 2, h))
		return false;
	if (i < n && s[i] == ':') {
		unsigned long port = 0;
		size_t digits = 0;

		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
			port = port * 10 + (unsigned long)(s[i] - '0');
			if (port > 65535)
				return false;
		}
		if (digits == 0 || port == 0)
			return false;
	}
	if (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
		return false;
	for (size_t k = 0; k < h; k++)
		host[k] = lower(s[2 + k]);
	host[h] = '\0';
	return true;
}

/*
 * One URI of the rua list: -1 if it is not a URI (the record is invalid),
 * 0 when used or skipped (out->n_skipped counts the latter).
 */
static int
rua_uri(const char *s, size_t n, struct tlsrpt_record *out, bool use, char *reason,
        size_t reasonlen)
{
	struct tlsrpt_uri u;
	size_t scheme_len;

	if (!uri_syntax_ok(s, n, &scheme_len)) {
		set_reason(reason, reasonlen, "rua: not a URI: \"%.*s\"", quote_len(n), s);
		return -1;
	}
	if (!use)
		return 0;
	memset(&u, 0, sizeof(u));
	/* Section 3 "rua": mailto and https are the two supported schemes (case-insensitive). */
	if (scheme_len == 6 && strncasecmp(s, "mailto", 6) == 0) {
		u.scheme = TLSRPT_MAILTO;
		if (!mailto_addr(s + 7, n - 7, u.addr))
			goto skip;
	} else if (scheme_len == 5 && strncasecmp(s, "https", 5) == 0) {
		u.scheme = TLSRPT_HTTPS;
		if (!https_host(s + 6, n - 6, u.addr))
			goto skip;
	} else {
		goto skip;
	}
	if (n > TLSRPT_URI_MAX || out->n_rua >= TLSRPT_RUA_MAX)
		goto skip;
	for (size_t i = 0; i < scheme_len; i++)
		u.uri[i] = lower(s[i]);
	memcpy(u.uri + scheme_len, s + scheme_len, n - scheme_len);
	u.uri[n] = '\0';
	out->rua[out->n_rua++] = u;
	return 0;
skip:
	out->n_skipped++;
	return 0;
}

/* Section 3: tlsrpt-rua value = tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri). */
static int
rua_list(const char *s, size_t n, struct tlsrpt_record *out, bool use, char *reason,
         size_t reasonlen)
{
	size_t pos = 0;

	for (;;) {
		size_t start = pos;

		while (pos < n && s[pos] != ',' && !sts_is_wsp(s[pos]))
			pos++;
		if (pos == start) {
			set_reason(reason, reasonlen, "rua: empty URI at offset %zu of the list",
			           start);
			return -1;
		}
		if (rua_uri(s + start, pos - start, out, use, reason, reasonlen) < 0)
			return -1;
		while (pos < n && sts_is_wsp(s[pos]))
			pos++;
		if (pos == n)
			return 0;
		if (s[pos] != ',') {
			set_reason(reason, reasonlen, "rua: white space inside a URI at \"%.*s\"",
			           quote_len(n - start), s + start);
			return -1;
		}
		pos++;
		while (pos < n && sts_is_wsp(s[pos]))
			pos++;
	}
}

/* Section 3: a record is ours when it begins with "v=TLSRPTv1;" (*WSP tolerated before ';'). */
static bool
is_tlsrpt(const char *rec, size_t len, size_t *after)
{
	size_t pos = TLSRPT_VERSION_LEN;

	if (rec == NULL || len < TLSRPT_VERSION_LEN ||
	    memcmp(rec, TLSRPT_VERSION, TLSRPT_VERSION_LEN) != 0)
		return false;
	while (pos < len && sts_is_wsp(rec[pos]))
		pos++;
	if (pos == len || rec[pos] != ';')
		return false;
	*after = TLSRPT_VERSION_LEN;
	return true;
}

/* tlsrpt_record_parse - see tlsrpt_record.h */
enum tlsrpt_rec_status
tlsrpt_record_parse(const char *rec, size_t len, struct tlsrpt_record *out, char *reason,
                    size_t reasonlen)
{
	size_t pos, i;
	bool have_rua = false;

	memset(out, 0, sizeof(*out));
	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	if (!is_tlsrpt(rec, len, &pos))
		return TLSRPT_REC_NOT_TLSRPT;
	if (len > STS_RDATA_TXT_MAX) {
		set_reason(reason, reasonlen, "record longer than %d octets", STS_RDATA_TXT_MAX);
		goto invalid;
	}
	/* The record is ASCII (section 3 grammar); anything else makes it invalid. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)rec[i];

		if (c >= 0x80) {
			set_reason(reason, reasonlen, "non-ASCII octet at offset %zu", i);
			goto invalid;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			set_reason(reason, reasonlen, "control character at offset %zu", i);
			goto invalid;
		}
	}

	for (;;) {
		size_t start, eq, end, fend;

		/* field-delim = *WSP ";" *WSP; a final delimiter is optional. */
		while (pos < len && sts_is_wsp(rec[pos]))
			pos++;
		if (pos == len)
			break;
		if (rec[pos] != ';') {
			set_reason(reason, reasonlen, "expected ';' at offset %zu", pos);
			goto invalid;
		}
		pos++;
		while (pos < len && sts_is_wsp(rec[pos]))
			pos++;
		if (pos == len)
			break;
		if (rec[pos] == ';') {
			set_reason(reason, reasonlen, "empty field at offset %zu", pos);
			goto invalid;
		}

		start = pos;
		while (pos < len && rec[pos] != ';')
			pos++;
		end = pos;
		/* White space before the next ';' belongs to the delimiter. */
		fend = end;
		while (fend > start && sts_is_wsp(rec[fend - 1]))
			fend--;
		for (eq = start; eq < fend && rec[eq] != '='; eq++)
			;
		if (eq == fend || !sts_ext_name_valid(rec + start, eq - start)) {
			set_reason(reason, reasonlen, "malformed field \"%.*s\"",
			           quote_len(fend - start), rec + start);
			goto invalid;
		}
		/* Keys are case-sensitive (%s"rua="): "RUA=" is an extension. */
		if (eq - start == 3 && memcmp(rec + start, "rua", 3) == 0) {
			/* The first rua counts; a later one must still be well formed. */
			if (rua_list(rec + eq + 1, fend - eq - 1, out, !have_rua, reason,
			             reasonlen) < 0)
				goto invalid;
			have_rua = true;
		} else if (eq - start == 1 && rec[start] == 'v') {
			set_reason(reason, reasonlen, "v: repeated (two records in one?)");
			goto invalid;
		} else if (!sts_ext_value_valid(rec + eq + 1, fend - eq - 1)) {
			set_reason(reason, reasonlen, "malformed field \"%.*s\"",
			           quote_len(fend - start), rec + start);
			goto invalid;
		}
	}

	/* Section 3: rua is required. */
	if (!have_rua) {
		set_reason(reason, reasonlen, "rua: missing");
		goto invalid;
	}
	if (out->n_rua == 0) {
		set_reason(reason, reasonlen, "rua: no usable mailto: or https: URI (%zu skipped)",
		           out->n_skipped);
		goto invalid;
	}
	return TLSRPT_REC_VALID;
invalid:
	memset(out, 0, sizeof(*out));
	return TLSRPT_REC_INVALID;
}

/* tlsrpt_record_select - see tlsrpt_record.h */
int
tlsrpt_record_select(const char *const *recs, const size_t *lens, size_t n,
                     struct tlsrpt_record *out, char *reason, size_t reasonlen)
{
	struct tlsrpt_record cur;
	enum tlsrpt_rec_status found = TLSRPT_REC_NOT_TLSRPT;
	size_t n_tlsrpt = 0;

	memset(out, 0, sizeof(*out));
	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char why[160];
		enum tlsrpt_rec_status st =
		    tlsrpt_record_parse(recs[i], lens[i], &cur, why, sizeof(why));

		if (st == TLSRPT_REC_NOT_TLSRPT)
			continue;
		/* Section 3: unless exactly one TLSRPTv1 record remains, the domain
		 * MUST be taken as not implementing TLS-RPT. */
		if (++n_tlsrpt > 1) {
			memset(out, 0, sizeof(*out));
			set_reason(reason, reasonlen, "more than one TLSRPTv1 record");
			return -1;
		}
		found = st;
		if (st == TLSRPT_REC_VALID)
			*out = cur;
		else
			set_reason(reason, reasonlen, "%s", why);
	}
	if (n_tlsrpt == 0)
		return 0;
	if (found != TLSRPT_REC_VALID) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 1;
}

/* tlsrpt_scheme_name - see tlsrpt_record.h */
const char *
tlsrpt_scheme_name(enum tlsrpt_scheme scheme)
{
	switch (scheme) {
	case TLSRPT_MAILTO:
		return "mailto";
	case TLSRPT_HTTPS:
		return "https";
	}
	return "?";
}
