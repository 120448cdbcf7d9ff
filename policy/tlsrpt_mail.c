/*
 * tlsrpt_mail.c - the report file name (RFC 8460 section 5.1) and the
 * report mail message (section 5.3).
 *
 * Header values are checked against their narrow syntax before anything
 * is written; the message is then built into one buffer whose size is
 * computed first, so the bound is checked before the allocation.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy_internal.h"
#include "policy/tlsrpt_mail.h"

#define UNIQUE_MIN      8
#define UNIQUE_MAX      60 /* "=_tlsrpt_" + 60: boundaries are at most 70 (RFC 2046 5.1.1) */
#define DOMAIN_MAX      253
#define LOCAL_MAX       64 /* RFC 5321 section 4.5.3.1.1 */
#define ADDR_MAX        254
#define B64_LINE        76 /* RFC 2045 section 6.8 */
#define HEADERS_MAX     8192
#define FILENAME_SUFFIX ".json.gz"

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
host_ok(const char *s)
{
	return s != NULL && sts_host_valid(s, strnlen(s, DOMAIN_MAX + 1));
}

static bool
alnum_ok(const char *s, size_t min, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, max + 1);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!sts_is_alnum(s[i]))
			return false;
	return true;
}

/* RFC 5322 section 3.2.3 atext. */
static bool
atext(char c)
{
	return sts_is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* dot-atom-text of n octets: atext runs separated by single dots. */
static bool
dot_atom_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i - 1] == '.')
				return false;
		} else if (!atext(s[i])) {
			return false;
		}
	}
	return true;
}

/* A plain address: dot-atom local part "@" a host name. Nothing that could end a header. */
static bool
addr_ok(const char *s)
{
	const char *at;
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, ADDR_MAX + 1);
	if (n > ADDR_MAX || (at = memchr(s, '@', n)) == NULL)
		return false;
	return (size_t)(at - s) <= LOCAL_MAX && dot_atom_ok(s, (size_t)(at - s)) &&
	       sts_host_valid(at + 1, n - (size_t)(at - s) - 1);
}

/* A report id as the Subject shows it in "<>": dot-atom "@" dot-atom (RFC 5322 msg-id). */
static bool
report_id_ok(const char *s)
{
	const char *at;
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, TLSRPT_REPORT_ID_MAX);
	if (n >= TLSRPT_REPORT_ID_MAX || (at = memchr(s, '@', n)) == NULL)
		return false;
	return dot_atom_ok(s, (size_t)(at - s)) && dot_atom_ok(at + 1, n - (size_t)(at - s) - 1);
}

/* tlsrpt_filename - see tlsrpt_mail.h */
int
tlsrpt_filename(char *out, size_t outlen, const char *submitter, const char *policy_domain,
                int64_t begin, int64_t end, const char *unique)
{
	bool u = unique != NULL && unique[0] != '\0';
	int n;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	/* Section 5.1: sender and policy-domain are domains, the timestamps
	 * 1*DIGIT seconds since the epoch, unique-id 1*(ALPHA / DIGIT). */
	if (!host_ok(submitter) || !host_ok(policy_domain) || begin < 0 || end < begin ||
	    (u && !alnum_ok(unique, 1, TLSRPT_UNIQUE_MAX)))
		return -1;
	n = snprintf(out, outlen, "%s!%s!%" PRId64 "!%" PRId64 "%s%s" FILENAME_SUFFIX, submitter,
	             policy_domain, begin, end, u ? "!" : "", u ? unique : "");
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return -1;
	}
	return n;
}

/* A file name as tlsrpt_filename() makes them: nothing a quoted-string would need escaped. */
static bool
filename_ok(const char *s)
{
	size_t n, sl = sizeof(FILENAME_SUFFIX) - 1;

	if (s == NULL)
		return false;
	n = strnlen(s, TLSRPT_FILENAME_MAX);
	if (n >= TLSRPT_FILENAME_MAX || n <= sl || strcmp(s + n - sl, FILENAME_SUFFIX) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!sts_is_alnum(s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '!')
			return false;
	return true;
}

/* RFC 5322 section 3.3 date-time, in English whatever the locale: "Fri, 04 Dec 2026 ...". */
static int
mail_date(char *out, size_t outlen, int64_t t)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	int n;

	/* 1900..9999: a four-digit year not before the one RFC 5322 requires. */
	if (t < -2208988800LL || t > 253402300799LL || gmtime_r(&tt, &tm) == NULL)
		return -1;
	n = snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
	             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	             tm.tm_sec);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* A bounded output buffer; an append that does not fit marks it failed. */
struct mbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) mb_add(struct mbuf *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (m->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(m->p + m->len, m->cap - m->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= m->cap - m->len) {
		m->failed = true;
		return;
	}
	m->len += (size_t)n;
}

static size_t
b64_len(size_t n)
{
	size_t chars = (n + 2) / 3 * 4;

	return chars + (chars + B64_LINE - 1) / B64_LINE * 2; /* and a CRLF per line */
}

/* RFC 2045 section 6.8 base64, B64_LINE characters a line, each line ended by CRLF. */
static void
mb_base64(struct mbuf *m, const uint8_t *d, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t col = 0;

	if (m->failed || b64_len(n) >= m->cap - m->len) {
		m->failed = true;
		return;
	}
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		size_t left = n - i;
		char q[4];

		if (left > 1)
			v |= (uint32_t)d[i + 1] << 8;
		if (left > 2)
			v |= d[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = left > 1 ? tab[(v >> 6) & 63] : '=';
		q[3] = left > 2 ? tab[v & 63] : '=';
		memcpy(m->p + m->len, q, 4);
		m->len += 4;
		col += 4;
		if (col == B64_LINE || i + 3 >= n) {
			memcpy(m->p + m->len, "\r\n", 2);
			m->len += 2;
			col = 0;
		}
	}
	m->p[m->len] = '\0';
}

/* tlsrpt_mail_build - see tlsrpt_mail.h */
int
tlsrpt_mail_build(const struct tlsrpt_mail_params *p, char **out, size_t *outlen, char *err,
                  size_t errlen)
{
	struct mbuf m = {0};
	char date[64];
	size_t need;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (p == NULL || out == NULL || outlen == NULL) {
		set_err(err, errlen, "no message parameters");
		return -1;
	}
	/* Values from the configuration and from DNS: each must fit its syntax,
	 * which excludes CR, LF, controls, spaces and non-ASCII. */
	if (!addr_ok(p->from)) {
		set_err(err, errlen, "From: not a plain address");
		return -1;
	}
	if (!addr_ok(p->to)) {
		set_err(err, errlen, "To: not a plain address");
		return -1;
	}
	if (!host_ok(p->policy_domain)) {
		set_err(err, errlen, "TLS-Report-Domain: not a domain name");
		return -1;
	}
	if (!host_ok(p->submitter)) {
		set_err(err, errlen, "TLS-Report-Submitter: not a domain name");
		return -1;
	}
	if (!report_id_ok(p->report_id)) {
		set_err(err, errlen, "Report-ID: not dot-atom \"@\" dot-atom");
		return -1;
	}
	if (!filename_ok(p->filename)) {
		set_err(err, errlen, "file name: not one of ours");
		return -1;
	}
	if (!alnum_ok(p->unique, UNIQUE_MIN, UNIQUE_MAX)) {
		set_err(err, errlen, "unique: %d to %d letters or digits", UNIQUE_MIN, UNIQUE_MAX);
		return -1;
	}
	if (mail_date(date, sizeof(date), p->now) < 0) {
		set_err(err, errlen, "Date: time out of range");
		return -1;
	}
	if (p->gz == NULL || p->gzlen == 0 || p->gzlen > TLSRPT_MAIL_MAX) {
		set_err(err, errlen, "no report to attach");
		return -1;
	}
	/* Every value is bounded above, so HEADERS_MAX holds all the rest. */
	need = HEADERS_MAX + b64_len(p->gzlen) + 1;
	if (need > TLSRPT_MAIL_MAX) {
		set_err(err, errlen, "message longer than %d octets", TLSRPT_MAIL_MAX);
		return -1;
	}
	if ((m.p = malloc(need)) == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	m.cap = need;
	m.p[0] = '\0';

	mb_add(&m, "From: %s\r\n", p->from);
	mb_add(&m, "To: %s\r\n", p->to);
	mb_add(&m, "Date: %s\r\n", date);
	mb_add(&m, "Message-ID: <%s@%s>\r\n", p->unique, p->submitter);
	/* Section 5.3: the subject names domain, submitter and report id; folded at its spaces. */
	mb_add(&m, "Subject: Report Domain: %s\r\n Submitter: %s\r\n Report-ID: <%s>\r\n",
	       p->policy_domain, p->submitter, p->report_id);
	mb_add(&m, "TLS-Report-Domain: %s\r\n", p->policy_domain);
	mb_add(&m, "TLS-Report-Submitter: %s\r\n", p->submitter);
	/* Section 5.3.1: a report must be delivered despite TLS failures (RFC 8689). */
	mb_add(&m, "TLS-Required: No\r\n");
	mb_add(&m, "Auto-Submitted: auto-generated\r\n");
	mb_add(&m, "MIME-Version: 1.0\r\n");
	/* Section 5.3: multipart/report with report-type "tlsrpt" (RFC 6522). */
	mb_add(&m,
	       "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
	       " boundary=\"=_tlsrpt_%s\"\r\n",
	       p->unique);
	mb_add(&m, "\r\nThis is a multipart message in MIME format.\r\n");
	mb_add(&m, "\r\n--=_tlsrpt_%s\r\n", p->unique);
	mb_add(&m, "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
	           "Content-Transfer-Encoding: 7bit\r\n\r\n");
	mb_add(&m, "This is an aggregate TLS report (RFC 8460)\r\nfrom %s\r\nfor %s.\r\n",
	       p->submitter, p->policy_domain);
	mb_add(&m, "\r\n--=_tlsrpt_%s\r\n", p->unique);
	mb_add(&m, "Content-Type: application/tlsrpt+gzip\r\n"
	           "Content-Transfer-Encoding: base64\r\n");
	mb_add(&m, "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\n", p->filename);
	mb_base64(&m, p->gz, p->gzlen);
	mb_add(&m, "--=_tlsrpt_%s--\r\n", p->unique); /* base64 ended with CRLF */
	if (m.failed) {
		free(m.p);
		set_err(err, errlen, "message longer than its bound");
		return -1;
	}
	*out = m.p;
	*outlen = m.len;
	return 0;
}
