/*
 * smtp_cmd.c - parsing of client command lines (RFC 5321 section 4.1).
 *
 * The verb table drives everything: a verb's flags say whether it takes an
 * argument and whether it must end a pipelined group. MAIL and RCPT paths
 * are parsed by hand following the grammar of RFC 5321 section 4.1.2 (with
 * the UTF-8 extensions of RFC 6531), because the recipient domain decides
 * which MTA-STS policy applies and a parser that can be fooled about it
 * (a quoted "@", a source route) would look up the wrong policy.
 */
#include "proxy/smtp_cmd.h"

#include <string.h>
#include <strings.h>

#include <idn2.h>

static const struct smtp_verb verbs[] = {
    {"EHLO", SMTP_CMD_EHLO, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_GROUP_END},
    {"HELO", SMTP_CMD_HELO, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_GROUP_END},
    {"MAIL", SMTP_CMD_MAIL, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_TRANSACTION},
    {"RCPT", SMTP_CMD_RCPT, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_TRANSACTION},
    {"DATA", SMTP_CMD_DATA, SMTP_CMDF_ARG_NONE | SMTP_CMDF_GROUP_END | SMTP_CMDF_TRANSACTION},
    {"BDAT", SMTP_CMD_BDAT, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_TRANSACTION},
    {"RSET", SMTP_CMD_RSET, SMTP_CMDF_ARG_NONE},
    {"NOOP", SMTP_CMD_NOOP, SMTP_CMDF_GROUP_END},
    {"QUIT", SMTP_CMD_QUIT, SMTP_CMDF_ARG_NONE | SMTP_CMDF_GROUP_END},
    {"VRFY", SMTP_CMD_VRFY, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_GROUP_END},
    {"EXPN", SMTP_CMD_EXPN, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_GROUP_END},
    {"HELP", SMTP_CMD_HELP, 0},
    /* RFC 3207 section 4: no parameters; nothing may follow it in a group. */
    {"STARTTLS", SMTP_CMD_STARTTLS, SMTP_CMDF_ARG_NONE | SMTP_CMDF_GROUP_END},
    /* RFC 4954 section 4: AUTH ends a pipelined group. */
    {"AUTH", SMTP_CMD_AUTH, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_GROUP_END},
    {"ETRN", SMTP_CMD_ETRN, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_GROUP_END},
    {"BURL", SMTP_CMD_BURL, SMTP_CMDF_ARG_REQUIRED | SMTP_CMDF_TRANSACTION},
};

#define ERR_NOT_TERMINATED "500 5.5.2 Syntax error: line not terminated by CRLF"
#define ERR_EMPTY          "500 5.5.2 Syntax error: empty command line"
#define ERR_NO_ARG         "501 5.5.4 Syntax error: no parameters allowed"
#define ERR_NEED_ARG       "501 5.5.4 Syntax error: parameter required"
#define ERR_MAIL_SYNTAX    "501 5.5.4 Syntax: MAIL FROM:<address>"
#define ERR_RCPT_SYNTAX    "501 5.5.4 Syntax: RCPT TO:<address>"
#define ERR_SENDER         "501 5.1.7 Syntax error in sender address"
#define ERR_RECIPIENT      "501 5.1.3 Syntax error in recipient address"
#define ERR_SENDER_DOM     "501 5.1.7 Invalid sender domain"
#define ERR_RECIPIENT_DOM  "501 5.1.2 Invalid recipient domain"
#define ERR_NULL_RCPT      "501 5.1.3 Null recipient not allowed"
#define ERR_BDAT_SYNTAX    "501 5.5.4 Syntax: BDAT chunk-size [LAST]"
#define ERR_BDAT_SIZE      "552 5.3.4 Chunk size too large"

/* Longest domain as written that is worth handing to the IDNA code. */
#define DOMAIN_RAW_MAX 1024

/* smtp_verb_lookup - the table row of a verb, or NULL. */
const struct smtp_verb *
smtp_verb_lookup(const char *verb, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].verb) == len && strncasecmp(verbs[i].verb, verb, len) == 0)
			return &verbs[i];
	}
	return NULL;
}

/* smtp_cmd_name - the verb of id, "UNKNOWN" for others. */
const char *
smtp_cmd_name(enum smtp_cmd_id id)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (verbs[i].id == id)
			return verbs[i].verb;
	}
	return "UNKNOWN";
}

/* smtp_line_scan - length of the first line (LF included), 0 for more, -1 when too long. */
long
smtp_line_scan(const char *buf, size_t len, size_t max)
{
	size_t n = len < max ? len : max;
	const char *lf = memchr(buf, '\n', n);

	if (lf != NULL)
		return (long)(lf - buf) + 1;
	return len >= max ? -1 : 0;
}

static int
fail(struct smtp_cmd *out, const char *error, bool close)
{
	out->error = error;
	out->error_close = close;
	out->domain[0] = '\0';
	return -1;
}

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5321 section 4.1.2 atext, plus UTF-8 octets (RFC 6531 section 3.3). */
static bool
is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c) || c >= 0x80)
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * Checks a domain in A-labels (RFC 5321 section 4.1.2: sub-domain =
 * Let-dig [Ldh-str]; RFC 1035: labels of 1 to 63 octets).
 */
static bool
ldh_domain_valid(const char *d, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && d[len - 1] != '-';
}

/*
 * Fills out->domain from the domain as written: lower case, and U-labels
 * converted to A-labels so that the policy lookup uses the DNS name.
 */
static int
domain_to_ascii(const char *raw, size_t len, bool utf8, char *out, size_t outlen)
{
	char tmp[DOMAIN_RAW_MAX + 1];
	uint8_t *ascii = NULL;
	size_t i, alen;

	if (len == 0 || len > DOMAIN_RAW_MAX)
		return -1;
	if (!utf8) {
		if (len >= outlen)
			return -1;
		for (i = 0; i < len; i++) {
			char c = raw[i];

			out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		out[len] = '\0';
		return ldh_domain_valid(out, len) ? 0 : -1;
	}
	memcpy(tmp, raw, len);
	tmp[len] = '\0';
	/* UTS 46 non-transitional mapping also folds case (IDNA2008 lookup). */
	if (idn2_lookup_u8((const uint8_t *)tmp, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
	    IDN2_OK)
		goto fail;
	alen = strlen((const char *)ascii);
	if (alen >= outlen)
		goto fail;
	for (i = 0; i < alen; i++) {
		char c = (char)ascii[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[alen] = '\0';
	idn2_free(ascii);
	return ldh_domain_valid(out, alen) ? 0 : -1;
fail:
	idn2_free(ascii);
	out[0] = '\0';
	return -1;
}

static bool
has_utf8(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned char)p[i] >= 0x80)
			return true;
	}
	return false;
}

/* Skips a domain or U-label domain as written; returns its end. */
static size_t
scan_domain(const char *p, size_t pos, size_t n)
{
	while (pos < n) {
		unsigned char c = (unsigned char)p[pos];

		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c < 0x80)
			break;
		pos++;
	}
	return pos;
}

/*
 * Parses "<path> params" of MAIL (is_mail) or RCPT from p[0..n), which
 * starts at the "<". RFC 5321 section 4.1.2 and RFC 6531 section 3.3.
 */
static int
parse_path(const char *p, size_t n, bool is_mail, struct smtp_cmd *out)
{
	const char *syntax = is_mail ? ERR_SENDER : ERR_RECIPIENT;
	size_t pos = 1, local, dom;

	if (n == 0 || p[0] != '<')
		return fail(out, is_mail ? ERR_MAIL_SYNTAX : ERR_RCPT_SYNTAX, false);

	if (pos < n && p[pos] == '>') {
		/* RFC 5321 section 4.1.1.2: only the reverse-path may be null. */
		if (!is_mail)
			return fail(out, ERR_NULL_RCPT, false);
		out->path_flags |= SMTP_PATH_NULL;
		out->path = p + 1;
		out->path_len = 0;
		pos++;
		goto params;
	}

	/* RFC 5321 section 4.1.1.3: a source route MUST be accepted and ignored. */
	if (pos < n && p[pos] == '@') {
		for (;;) {
			size_t start;

			if (pos >= n || p[pos] != '@')
				return fail(out, syntax, false);
			start = ++pos;
			pos = scan_domain(p, pos, n);
			if (pos == start || pos >= n)
				return fail(out, syntax, false);
			if (p[pos] == ':')
				break;
			if (p[pos] != ',')
				return fail(out, syntax, false);
			pos++;
		}
		pos++;
		out->path_flags |= SMTP_PATH_SOURCE_ROUTE;
	}

	/* Local-part = Dot-string / Quoted-string. */
	local = pos;
	if (pos < n && p[pos] == '"') {
		out->path_flags |= SMTP_PATH_QUOTED_LOCAL;
		pos++;
		for (;;) {
			unsigned char c;

			if (pos >= n)
				return fail(out, syntax, false);
			c = (unsigned char)p[pos];
			if (c == '"')
				break;
			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (pos + 1 >= n || (unsigned char)p[pos + 1] < 32 ||
				    (unsigned char)p[pos + 1] == 127)
					return fail(out, syntax, false);
				pos += 2;
				continue;
			}
			/* qtextSMTP = %d32-33 / %d35-91 / %d93-126, and UTF-8 */
			if (c < 32 || c == 127)
				return fail(out, syntax, false);
			pos++;
		}
		pos++;
	} else {
		/* Dots are left to the upstream: only the characters are checked. */
		while (pos < n && (is_atext((unsigned char)p[pos]) || p[pos] == '.'))
			pos++;
	}
	if (pos == local || pos >= n)
		return fail(out, syntax, false);

	if (p[pos] == '>') {
		/* RFC 5321 section 4.1.1.3: "Postmaster" without a domain. */
		if (is_mail || pos - local != 10 || strncasecmp(p + local, "postmaster", 10) != 0 ||
		    (out->path_flags & SMTP_PATH_SOURCE_ROUTE))
			return fail(out, syntax, false);
		out->path_flags |= SMTP_PATH_POSTMASTER;
		out->path = p + 1;
		out->path_len = pos - 1;
		out->mailbox = p + local;
		out->mailbox_len = pos - local;
		pos++;
		goto params;
	}
	if (p[pos] != '@')
		return fail(out, syntax, false);
	dom = ++pos;

	if (pos < n && p[pos] == '[') {
		/* address-literal: dcontent = %d33-90 / %d94-126 */
		pos++;
		while (pos < n && p[pos] != ']') {
			unsigned char c = (unsigned char)p[pos];

			if (c < 33 || c > 126 || c == '[' || c == '\\')
				return fail(out, syntax, false);
			pos++;
		}
		if (pos >= n || pos == dom + 1)
			return fail(out, syntax, false);
		pos++;
		out->path_flags |= SMTP_PATH_ADDR_LITERAL;
		out->domain[0] = '\0';
	} else {
		pos = scan_domain(p, pos, n);
		if (pos == dom)
			return fail(out, syntax, false);
		if (domain_to_ascii(p + dom, pos - dom, has_utf8(p + dom, pos - dom), out->domain,
		                    sizeof(out->domain)) < 0)
			return fail(out, is_mail ? ERR_SENDER_DOM : ERR_RECIPIENT_DOM, false);
	}
	if (pos >= n || p[pos] != '>')
		return fail(out, syntax, false);
	out->domain_raw = p + dom;
	out->domain_raw_len = pos - dom;
	out->path = p + 1;
	out->path_len = pos - 1;
	out->mailbox = p + local;
	out->mailbox_len = pos - local;
	pos++;

params:
	if (has_utf8(p, pos))
		out->path_flags |= SMTP_PATH_UTF8;
	if (pos == n)
		return 0;
	if (p[pos] != ' ')
		return fail(out, syntax, false);
	while (pos < n && p[pos] == ' ')
		pos++;
	if (pos < n) {
		out->params = p + pos;
		out->params_len = n - pos;
	}
	return 0;
}

/* RFC 3030 section 2: "BDAT" SP chunk-size [ SP end-marker ], end-marker = "LAST". */
static int
parse_bdat(const char *p, size_t n, struct smtp_cmd *out)
{
	size_t pos = 0;
	uint64_t size = 0;

	while (pos < n && is_digit((unsigned char)p[pos])) {
		size = size * 10 + (uint64_t)(p[pos] - '0');
		/* Checked on every digit, so the product above never wraps. */
		if (size > SMTP_BDAT_MAX)
			return fail(out, ERR_BDAT_SIZE, false);
		pos++;
	}
	if (pos == 0)
		return fail(out, ERR_BDAT_SYNTAX, false);
	out->bdat_size = size;
	if (pos == n)
		return 0;
	if (p[pos] != ' ')
		return fail(out, ERR_BDAT_SYNTAX, false);
	while (pos < n && p[pos] == ' ')
		pos++;
	if (n - pos != 4 || strncasecmp(p + pos, "LAST", 4) != 0)
		return fail(out, ERR_BDAT_SYNTAX, false);
	out->bdat_last = true;
	return 0;
}

/* smtp_cmd_parse_max - parse one CRLF-terminated line no longer than max. */
int
smtp_cmd_parse_max(const char *line, size_t len, size_t max, struct smtp_cmd *out)
{
	const struct smtp_verb *v;
	size_t i, n, vlen, pos;

	memset(out, 0, sizeof(*out));
	/* RFC 5321 section 4.5.3.1.4: lines are bounded; the excess is not read as a new line. */
	if (len > max)
		return fail(out, SMTP_ERR_LINE_TOO_LONG, true);

	/*
	 * RFC 5321 section 2.3.8: CR and LF only as a CRLF pair. A bare one
	 * or a NUL is where parsers of two servers disagree; refuse it.
	 */
	for (i = 0; i < len; i++) {
		char c = line[i];

		if (c == '\0')
			return fail(out, SMTP_ERR_BARE_CRLF, true);
		if (c == '\r' && (i + 2 != len || line[i + 1] != '\n'))
			return fail(out, SMTP_ERR_BARE_CRLF, true);
		if (c == '\n' && (i + 1 != len || i == 0 || line[i - 1] != '\r'))
			return fail(out, SMTP_ERR_BARE_CRLF, true);
	}
	if (len < 2 || line[len - 1] != '\n')
		return fail(out, ERR_NOT_TERMINATED, true);
	/*
	 * Blanks around the verb are cut, so that "DATA\t" is DATA here as
	 * it is for servers that tolerate it: the proxy must never think a
	 * command is something else than what the upstream will execute.
	 */
	n = len - 2;
	while (n > 0 && is_blank(line[n - 1]))
		n--;
	if (n == 0)
		return fail(out, ERR_EMPTY, false);

	for (pos = 0; pos < n && is_blank(line[pos]); pos++)
		;
	for (vlen = 0; pos + vlen < n && !is_blank(line[pos + vlen]); vlen++)
		;
	out->verb = line + pos;
	out->verb_len = vlen;
	for (pos += vlen; pos < n && is_blank(line[pos]); pos++)
		;
	if (pos < n) {
		out->arg = line + pos;
		out->arg_len = n - pos;
	}

	v = smtp_verb_lookup(out->verb, vlen);
	if (v == NULL) {
		out->id = SMTP_CMD_UNKNOWN;
		return 0;
	}
	out->id = v->id;
	out->flags = v->flags;
	if ((v->flags & SMTP_CMDF_ARG_NONE) && out->arg_len > 0)
		return fail(out, ERR_NO_ARG, false);
	if ((v->flags & SMTP_CMDF_ARG_REQUIRED) && out->arg_len == 0)
		return fail(out, ERR_NEED_ARG, false);

	switch (v->id) {
	case SMTP_CMD_MAIL:
	case SMTP_CMD_RCPT: {
		bool is_mail = v->id == SMTP_CMD_MAIL;
		const char *kw = is_mail ? "FROM:" : "TO:";
		size_t kwlen = strlen(kw);
		size_t a = 0;

		if (out->arg_len < kwlen || strncasecmp(out->arg, kw, kwlen) != 0)
			return fail(out, is_mail ? ERR_MAIL_SYNTAX : ERR_RCPT_SYNTAX, false);
		a = kwlen;
		/* Tolerated: "MAIL FROM: <a@b>", which common clients send. */
		while (a < out->arg_len && out->arg[a] == ' ')
			a++;
		return parse_path(out->arg + a, out->arg_len - a, is_mail, out);
	}
	case SMTP_CMD_BDAT:
		return parse_bdat(out->arg, out->arg_len, out);
	default:
		return 0;
	}
}

/* smtp_cmd_parse - parse one line with the default bound. */
int
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
	return smtp_cmd_parse_max(line, len, SMTP_CMD_LINE_MAX, out);
}

/* smtp_param_get - find key in an ESMTP parameter string. */
int
smtp_param_get(const char *params, size_t len, const char *key, const char **val, size_t *vlen)
{
	size_t klen = strlen(key);
	size_t pos = 0;

	*val = NULL;
	*vlen = 0;
	while (pos < len) {
		size_t start, end, eq;

		while (pos < len && params[pos] == ' ')
			pos++;
		start = pos;
		while (pos < len && params[pos] != ' ')
			pos++;
		end = pos;
		if (start == end)
			break;
		for (eq = start; eq < end && params[eq] != '='; eq++)
			;
		if (eq - start == klen && strncasecmp(params + start, key, klen) == 0) {
			if (eq < end) {
				*val = params + eq + 1;
				*vlen = end - eq - 1;
			}
			return 1;
		}
	}
	return 0;
}
