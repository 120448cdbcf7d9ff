/*
 * sts_policy.c - parser for the MTA-STS policy file (RFC 8461 section 3.2)
 * and its normal JSON form.
 *
 * The body comes from a web server we do not control: it is read in place,
 * line by line, bounded by STS_POLICY_MAX_BODY, and the first problem is
 * reported with its line number. Only validated mx patterns are copied.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"
#include "policy/sts_mx.h"
#include "policy/sts_policy.h"

#define QUOTE_MAX      60 /* how much of a bad value a reason repeats */
#define MAX_AGE_DIGITS 10

/* What the parser has seen so far; the first occurrence of a key wins. */
struct parse_state {
	bool have_version, have_mode, have_max_age;
	size_t cap_mx;
};

static void __attribute__((format(printf, 3, 4)))
set_err(struct sts_policy_error *err, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->line = line;
	va_start(ap, fmt);
	/* A reason cut short is still a useful reason. */
	(void)vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
}

static bool
key_is(const char *key, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(key, name, n) == 0;
}

static int
quote_len(size_t n)
{
	return (int)(n > QUOTE_MAX ? QUOTE_MAX : n);
}

static int
add_mx(struct sts_policy *p, struct parse_state *st, const char *val, size_t n, unsigned line,
       struct sts_policy_error *err)
{
	char buf[STS_HOSTNAME_MAX + 2]; /* the name, a trailing dot, NUL */
	char *copy;

	if (n > STS_HOSTNAME_MAX + 1) {
		set_err(err, line, "mx: pattern longer than %d characters", STS_HOSTNAME_MAX);
		return -1;
	}
	memcpy(buf, val, n);
	buf[n] = '\0';
	/* Section 3.2: A-labels only, '*' only as the whole left-most label. */
	if (!sts_mx_pattern_valid(buf)) {
		set_err(err, line, "mx: invalid pattern \"%.*s\"", quote_len(n), val);
		return -1;
	}
	/* The normal form: lower case, no trailing dot, each pattern once. */
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] = (char)(buf[i] + ('a' - 'A'));
	for (size_t i = 0; i < p->n_mx; i++)
		if (strcmp(p->mx[i], buf) == 0)
			return 0;
	if (p->n_mx >= STS_POLICY_MAX_MX) {
		set_err(err, line, "mx: more than %d patterns", STS_POLICY_MAX_MX);
		return -1;
	}
	if (p->n_mx == st->cap_mx) {
		size_t cap = st->cap_mx ? st->cap_mx * 2 : 4;
		char **mx;

		if (cap > STS_POLICY_MAX_MX)
			cap = STS_POLICY_MAX_MX;
		mx = realloc(p->mx, cap * sizeof(*mx));
		if (mx == NULL)
			goto nomem;
		p->mx = mx;
		st->cap_mx = cap;
	}
	copy = strdup(buf);
	if (copy == NULL)
		goto nomem;
	p->mx[p->n_mx++] = copy;
	return 0;
nomem:
	set_err(err, line, "out of memory");
	return -1;
}

/*
 * utf8_len - the length of the well-formed UTF-8 sequence of two to four
 * octets at s (n available), or 0 (RFC 3629 section 4: no overlong form,
 * no surrogate, nothing above U+10FFFF).
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/*
 * One "key: value" line, already checked to be printable (VCHAR, WSP and
 * well-formed UTF-8) and trimmed. Keys are ASCII (sts_ext_name_valid);
 * UTF-8 survives only in the values of extension fields, whose grammar
 * allows it: the known fields' grammars are ASCII.
 */
static int
parse_line(struct sts_policy *p, struct parse_state *st, const char *s, size_t n, unsigned line,
           struct sts_policy_error *err)
{
	const char *colon = memchr(s, ':', n);
	const char *val;
	size_t klen, vlen;

	if (colon == NULL) {
		set_err(err, line, "expected \"key: value\"");
		return -1;
	}
	klen = (size_t)(colon - s);
	if (!sts_ext_name_valid(s, klen)) {
		set_err(err, line, "malformed key \"%.*s\"", quote_len(klen), s);
		return -1;
	}
	/* Section 3.2: sts-policy-field-delim = ":" *WSP */
	val = colon + 1;
	vlen = n - klen - 1;
	while (vlen > 0 && sts_is_wsp(*val)) {
		val++;
		vlen--;
	}

	/* Section 3.2: keys and values are case-sensitive; "Mode" is an unknown key. */
	if (key_is(s, klen, "version")) {
		if (st->have_version)
			return 0;
		st->have_version = true;
		if (vlen != 5 || memcmp(val, "STSv1", 5) != 0) {
			set_err(err, line, "version: unsupported value \"%.*s\"", quote_len(vlen),
			        val);
			return -1;
		}
	} else if (key_is(s, klen, "mode")) {
		char buf[16];

		if (st->have_mode)
			return 0;
		st->have_mode = true;
		if (vlen >= sizeof(buf))
			goto bad_mode;
		memcpy(buf, val, vlen);
		buf[vlen] = '\0';
		if (sts_mode_parse(buf, &p->mode) != 0)
			goto bad_mode;
	} else if (key_is(s, klen, "max_age")) {
		uint64_t v = 0;

		if (st->have_max_age)
			return 0;
		st->have_max_age = true;
		/* Section 3.2: sts-policy-max-age-value = 1*10(DIGIT) */
		if (vlen == 0 || vlen > MAX_AGE_DIGITS) {
			set_err(err, line, "max_age: expected 1 to %d digits", MAX_AGE_DIGITS);
			return -1;
		}
		for (size_t i = 0; i < vlen; i++) {
			if (val[i] < '0' || val[i] > '9') {
				set_err(err, line, "max_age: expected 1 to %d digits",
				        MAX_AGE_DIGITS);
				return -1;
			}
			v = v * 10 + (uint64_t)(val[i] - '0');
		}
		/* Section 3.2: values above about one year are clamped, not rejected. */
		p->max_age = v > STS_MAX_AGE_CLAMP ? STS_MAX_AGE_CLAMP : (uint32_t)v;
	} else if (key_is(s, klen, "mx")) {
		return add_mx(p, st, val, vlen, line, err);
	}
	/* Section 3.2: unknown keys are ignored. */
	return 0;
bad_mode:
	set_err(err, line, "mode: unknown value \"%.*s\"", quote_len(vlen), val);
	return -1;
}

/* sts_policy_parse - see sts_policy.h */
int
sts_policy_parse(const char *text, size_t len, struct sts_policy *out, struct sts_policy_error *err)
{
	struct sts_policy p = {0};
	struct parse_state st = {0};
	size_t pos = 0;
	unsigned line = 0;

	if (err != NULL) {
		err->line = 0;
		err->reason[0] = '\0';
	}
	/* Section 3.3: the body is bounded. */
	if (len > STS_POLICY_MAX_BODY) {
		set_err(err, 0, "policy larger than %d octets", STS_POLICY_MAX_BODY);
		goto fail;
	}
	if (text == NULL && len > 0) {
		set_err(err, 0, "no policy text");
		goto fail;
	}

	while (pos < len) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;

		line++;
		pos += n + (nl ? 1 : 0);
		/* Section 3.2: lines end in LF or CRLF. */
		if (nl != NULL && n > 0 && s[n - 1] == '\r')
			n--;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\0') {
				set_err(err, line, "NUL octet");
				goto fail;
			}
			if (c >= 0x80) {
				/* Section 3.2: sts-policy-vchar = VCHAR / UTF8-2 / UTF8-3 / UTF8-4
				 */
				size_t k = utf8_len((const unsigned char *)s + i, n - i);

				if (k == 0) {
					set_err(err, line, "invalid UTF-8 at octet %zu", i + 1);
					goto fail;
				}
				i += k - 1;
				continue;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				set_err(err, line, "control character 0x%02x", c);
				goto fail;
			}
		}
		/* Trailing whitespace is allowed; a blank line is skipped. */
		while (n > 0 && sts_is_wsp(s[n - 1]))
			n--;
		if (n == 0)
			continue;
		if (parse_line(&p, &st, s, n, line, err) != 0)
			goto fail;
	}

	/* Section 3.2: version, mode and max_age are required. */
	if (!st.have_version) {
		set_err(err, 0, "version: missing");
		goto fail;
	}
	if (!st.have_mode) {
		set_err(err, 0, "mode: missing");
		goto fail;
	}
	if (!st.have_max_age) {
		set_err(err, 0, "max_age: missing");
		goto fail;
	}
	/* Section 3.2: at least one mx unless the mode is "none". */
	if (p.mode != STS_MODE_NONE && p.n_mx == 0) {
		set_err(err, 0, "mx: required when mode is %s", sts_mode_name(p.mode));
		goto fail;
	}
	*out = p;
	return 0;
fail:
	sts_policy_clear(&p);
	memset(out, 0, sizeof(*out));
	return -1;
}

/* sts_policy_clear - see sts_policy.h */
void
sts_policy_clear(struct sts_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_mx; i++)
		free(p->mx[i]);
	free(p->mx);
	memset(p, 0, sizeof(*p));
}

/* sts_policy_copy - see sts_policy.h */
int
sts_policy_copy(struct sts_policy *dst, const struct sts_policy *src)
{
	struct sts_policy p = {0};

	p.mode = src->mode;
	p.max_age = src->max_age;
	if (src->n_mx > 0) {
		p.mx = calloc(src->n_mx, sizeof(*p.mx));
		if (p.mx == NULL)
			goto fail;
		for (size_t i = 0; i < src->n_mx; i++) {
			p.mx[i] = strdup(src->mx[i]);
			if (p.mx[i] == NULL)
				goto fail;
			p.n_mx = i + 1;
		}
	}
	*dst = p;
	return 0;
fail:
	sts_policy_clear(&p);
	return -1;
}

/* Append to buf at *off; false when it does not fit. */
static bool __attribute__((format(printf, 4, 5)))
append(char *buf, size_t buflen, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= buflen)
		return false;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, buflen - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= buflen - *off)
		return false;
	*off += (size_t)n;
	return true;
}

/* sts_policy_json - see sts_policy.h */
int
sts_policy_json(const struct sts_policy *p, char *buf, size_t buflen)
{
	size_t off = 0;

	if (!append(buf, buflen, &off, "{\"version\":\"STSv1\",\"mode\":\"%s\",\"mx\":[",
	            sts_mode_name(p->mode)))
		goto fail;
	for (size_t i = 0; i < p->n_mx; i++) {
		if (!append(buf, buflen, &off, "%s\"", i ? "," : ""))
			goto fail;
		/* Parsed patterns are plain LDH names, but a policy may come from
		 * elsewhere (the cache), so escape anyway. */
		for (const char *c = p->mx[i]; *c != '\0'; c++) {
			unsigned char u = (unsigned char)*c;
			bool ok;

			if (u == '"' || u == '\\')
				ok = append(buf, buflen, &off, "\\%c", u);
			else if (u < 0x20 || u >= 0x7f)
				ok = append(buf, buflen, &off, "\\u%04x", u);
			else
				ok = append(buf, buflen, &off, "%c", u);
			if (!ok)
				goto fail;
		}
		if (!append(buf, buflen, &off, "\""))
			goto fail;
	}
	if (!append(buf, buflen, &off, "],\"max_age\":%u}", (unsigned)p->max_age))
		goto fail;
	if (off > (size_t)INT_MAX)
		goto fail;
	return (int)off;
fail:
	if (buflen > 0)
		buf[0] = '\0';
	return -1;
}
