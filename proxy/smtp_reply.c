/*
 * smtp_reply.c - the reply reader and the EHLO capability functions.
 *
 * The text of the current reply is kept in one buffer that grows in steps
 * up to SMTP_REPLY_MAX_SIZE, with the offset of each line beside it, so a
 * reply can be relayed as received or rewritten without copying lines.
 */
#include "core/util.h"
#include "proxy/smtp_reply.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALLOC_FIRST 512

enum rstate {
	R_EMPTY = 0, /* no line yet */
	R_PARTIAL,   /* continuation lines seen */
	R_DONE,      /* final line seen */
	R_BAD,       /* refused; only a reset clears it */
};

/*
 * Invariants: len <= cap <= SMTP_REPLY_MAX_SIZE; off[i] is where line i
 * starts in buf, off[nlines] == len; every stored line ends in CRLF.
 */
struct smtp_reply {
	enum rstate state;
	int code;
	char *buf;
	size_t len;
	size_t cap;
	size_t nlines;
	uint32_t off[SMTP_REPLY_MAX_LINES + 1];
	const char *error;
};

static const struct {
	const char *keyword;
	unsigned bit;
} caps[] = {
    {"STARTTLS", SMTP_CAP_STARTTLS},
    {"PIPELINING", SMTP_CAP_PIPELINING},
    {"CHUNKING", SMTP_CAP_CHUNKING},
    {"8BITMIME", SMTP_CAP_8BITMIME},
    {"SMTPUTF8", SMTP_CAP_SMTPUTF8},
    {"SIZE", SMTP_CAP_SIZE},
    {"DSN", SMTP_CAP_DSN},
    {"ENHANCEDSTATUSCODES", SMTP_CAP_ENHANCEDSTATUSCODES},
    {"BINARYMIME", SMTP_CAP_BINARYMIME},
    {"AUTH", SMTP_CAP_AUTH},
    {"REQUIRETLS", SMTP_CAP_REQUIRETLS},
    {"DELIVERBY", SMTP_CAP_DELIVERBY},
    {"ETRN", SMTP_CAP_ETRN},
    {"BURL", SMTP_CAP_BURL},
    {"MTRK", SMTP_CAP_MTRK},
    {"HELP", SMTP_CAP_HELP},
    {"VRFY", SMTP_CAP_VRFY},
    {"EXPN", SMTP_CAP_EXPN},
};

/* smtp_reply_new - an empty reader. */
struct smtp_reply *
smtp_reply_new(void)
{
	return calloc(1, sizeof(struct smtp_reply));
}

/* smtp_reply_free - frees r; NULL is a no-op. */
void
smtp_reply_free(struct smtp_reply *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

/* smtp_reply_reset - empty the reader. */
void
smtp_reply_reset(struct smtp_reply *r)
{
	r->state = R_EMPTY;
	r->code = 0;
	r->len = 0;
	r->nlines = 0;
	r->off[0] = 0;
	r->error = NULL;
}

static int
bad(struct smtp_reply *r, const char *why)
{
	r->state = R_BAD;
	r->error = why;
	return SMTP_REPLY_BAD;
}

static int
reserve(struct smtp_reply *r, size_t need)
{
	size_t cap = r->cap ? r->cap : ALLOC_FIRST;
	char *nb;

	if (need <= r->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > SMTP_REPLY_MAX_SIZE)
		cap = SMTP_REPLY_MAX_SIZE;
	nb = realloc(r->buf, cap);
	if (nb == NULL)
		return -1;
	r->buf = nb;
	r->cap = cap;
	return 0;
}

/* smtp_reply_feed - add one CRLF-terminated line. */
int
smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
	size_t i;
	int code;
	bool final;

	if (r->state == R_BAD)
		return SMTP_REPLY_BAD;
	if (r->state == R_DONE)
		smtp_reply_reset(r);

	/* RFC 5321 section 2.3.8: lines end in CRLF, and CR and LF appear nowhere else. */
	if (len < 5 || line[len - 2] != '\r' || line[len - 1] != '\n')
		return bad(r, "reply line not terminated by CRLF");
	for (i = 0; i < len - 2; i++) {
		if (line[i] == '\r' || line[i] == '\n' || line[i] == '\0')
			return bad(r, "bare CR, bare LF or NUL in reply");
	}

	/* RFC 5321 section 4.2: Reply-code = %x32-35 %x30-35 %x30-39 */
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || line[2] < '0' ||
	    line[2] > '9')
		return bad(r, "invalid reply code");
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');

	if (len == 5) {
		final = true; /* a bare code: "250" CRLF */
	} else if (line[3] == ' ') {
		final = true;
	} else if (line[3] == '-') {
		final = false;
	} else {
		return bad(r, "invalid character after the reply code");
	}

	/* RFC 5321 section 4.2.1: every line of a multi-line reply has the same code. */
	if (r->state == R_PARTIAL && code != r->code)
		return bad(r, "reply code changed inside a multi-line reply");
	if (r->nlines >= SMTP_REPLY_MAX_LINES)
		return bad(r, "too many lines in reply");
	if (len > SMTP_REPLY_MAX_SIZE - r->len)
		return bad(r, "reply too long");
	if (reserve(r, r->len + len) < 0)
		return bad(r, "out of memory");

	memcpy(r->buf + r->len, line, len);
	r->len += len;
	r->nlines++;
	r->off[r->nlines] = (uint32_t)r->len;
	r->code = code;
	r->state = final ? R_DONE : R_PARTIAL;
	return final ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

/* smtp_reply_done - true once the final line arrived. */
bool
smtp_reply_done(const struct smtp_reply *r)
{
	return r->state == R_DONE;
}

/* smtp_reply_code - the code, 0 before any line. */
int
smtp_reply_code(const struct smtp_reply *r)
{
	return r->state == R_BAD ? 0 : r->code;
}

/* smtp_reply_nlines - lines so far. */
size_t
smtp_reply_nlines(const struct smtp_reply *r)
{
	return r->state == R_BAD ? 0 : r->nlines;
}

/* smtp_reply_line - text of line i without code, separator and CRLF. */
const char *
smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *len)
{
	size_t start, end;

	*len = 0;
	if (r->state == R_BAD || i >= r->nlines)
		return NULL;
	start = r->off[i];
	end = r->off[i + 1] - 2;
	/* A bare code has no separator and no text. */
	start = end - start > 3 ? start + 4 : end;
	*len = end - start;
	return r->buf + start;
}

/* smtp_reply_name - the first word of the first line, printable. */
void
smtp_reply_name(const struct smtp_reply *r, char *out, size_t outlen)
{
	const char *l;
	size_t len, n = 0;

	if (outlen > 0)
		out[0] = '\0';
	if ((l = smtp_reply_line(r, 0, &len)) == NULL)
		return;
	while (n < len && l[n] != ' ')
		n++;
	sts_printable(out, outlen, l, n);
}

/* smtp_reply_raw - the reply as received. */
const char *
smtp_reply_raw(const struct smtp_reply *r, size_t *len)
{
	*len = r->state == R_BAD ? 0 : r->len;
	return r->buf;
}

/* smtp_reply_error - the reason for BAD, or NULL. */
const char *
smtp_reply_error(const struct smtp_reply *r)
{
	return r->error;
}

/* smtp_cap_lookup - bit of an EHLO keyword, 0 if unknown. */
unsigned
smtp_cap_lookup(const char *keyword, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (strlen(caps[i].keyword) == len &&
		    strncasecmp(caps[i].keyword, keyword, len) == 0)
			return caps[i].bit;
	}
	return 0;
}

static size_t
keyword_len(const char *s, size_t len)
{
	size_t k = 0;

	while (k < len && s[k] != ' ')
		k++;
	return k;
}

/* RFC 1870 section 3: size-param = 1*20DIGIT; an overflowing value is ignored. */
static int
parse_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static bool
complete_250(const struct smtp_reply *r)
{
	return r->state == R_DONE && r->code == 250 && r->nlines > 0;
}

/* smtp_ehlo_parse - capabilities of a complete 250 reply. */
int
smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!complete_250(r))
		return -1;
	/* Line 0 is the greeting ("mx.example.com Hello ..."), not a capability. */
	for (i = 1; i < r->nlines; i++) {
		size_t len, klen, plen;
		const char *cap = smtp_reply_line(r, i, &len);
		const char *param;
		unsigned bit;

		klen = keyword_len(cap, len);
		param = cap + klen;
		plen = len - klen;
		while (plen > 0 && *param == ' ') {
			param++;
			plen--;
		}
		if (smtp_cap_looks_mangled_starttls(cap, len))
			out->n_mangled++;
		bit = smtp_cap_lookup(cap, klen);
		if (bit == SMTP_CAP_SIZE) {
			uint64_t v = 0;

			if (plen > 0 && parse_size(param, plen, &v) < 0)
				continue;
			out->size = v;
		} else if (bit == SMTP_CAP_AUTH) {
			size_t used = strlen(out->auth);

			/* Repeated AUTH lines add up; what does not fit is left out. */
			if (plen > 0 && used + (used > 0) + plen < sizeof(out->auth)) {
				if (used > 0)
					out->auth[used++] = ' ';
				memcpy(out->auth + used, param, plen);
				out->auth[used + plen] = '\0';
			}
		}
		out->caps |= bit;
	}
	return 0;
}

/* Appends one line "250-"/"250 " + text + CRLF; -1 when it does not fit (NUL kept). */
static int
put_line(char *out, size_t outlen, size_t *pos, bool last, const char *text, size_t tlen,
         const char *text2, size_t t2len)
{
	size_t need = 4 + tlen + t2len + 2;

	if (need >= outlen - *pos)
		return -1;
	memcpy(out + *pos, last ? "250 " : "250-", 4);
	memcpy(out + *pos + 4, text, tlen);
	memcpy(out + *pos + 4 + tlen, text2, t2len);
	memcpy(out + *pos + 4 + tlen + t2len, "\r\n", 2);
	*pos += need;
	out[*pos] = '\0';
	return 0;
}

static bool
keep_cap(const struct smtp_reply *r, size_t i, unsigned allow_mask)
{
	size_t len;
	const char *cap = smtp_reply_line(r, i, &len);
	unsigned bit = smtp_cap_lookup(cap, keyword_len(cap, len));

	/* The upstream's STARTTLS is between it and us; the client gets ours or none. */
	return bit != 0 && bit != SMTP_CAP_STARTTLS && (allow_mask & bit);
}

/* smtp_ehlo_rewrite - the filtered EHLO reply for the client. */
int
smtp_ehlo_rewrite(const struct smtp_reply *r, unsigned allow_mask, bool offer_starttls, char *out,
                  size_t outlen, const char *greeting_name)
{
	size_t pos = 0, i, last = 0, len;
	const char *first;

	if (outlen == 0 || !complete_250(r))
		return -1;
	out[0] = '\0';

	/* Which line ends the reply decides where the ' ' separator goes. */
	for (i = 1; i < r->nlines; i++) {
		if (keep_cap(r, i, allow_mask))
			last = i;
	}

	first = smtp_reply_line(r, 0, &len);
	if (greeting_name != NULL) {
		size_t glen = strlen(greeting_name);
		size_t k = keyword_len(first, len);

		if (glen == 0)
			return -1;
		for (i = 0; i < glen; i++) {
			if (greeting_name[i] <= ' ' || greeting_name[i] > '~')
				return -1;
		}
		if (put_line(out, outlen, &pos, last == 0 && !offer_starttls, greeting_name, glen,
		             first + k, len - k) < 0)
			return -1;
	} else if (put_line(out, outlen, &pos, last == 0 && !offer_starttls, first, len, "", 0) <
	           0) {
		return -1;
	}

	for (i = 1; i < r->nlines; i++) {
		const char *cap;

		if (!keep_cap(r, i, allow_mask))
			continue;
		cap = smtp_reply_line(r, i, &len);
		if (put_line(out, outlen, &pos, i == last && !offer_starttls, cap, len, "", 0) < 0)
			return -1;
	}
	if (offer_starttls && put_line(out, outlen, &pos, true, "STARTTLS", 8, "", 0) < 0)
		return -1;
	return (int)pos;
}

/* smtp_cap_looks_mangled_starttls - an 8-character keyword damaged in place of STARTTLS. */
bool
smtp_cap_looks_mangled_starttls(const char *cap, size_t len)
{
	static const char want[] = "STARTTLS";
	size_t i, j, diff = 0, most = 0;

	/*
	 * Middleboxes overwrite the keyword in place, so the length stays 8;
	 * the line may be all blanks, so the keyword is not cut at spaces here.
	 */
	if (len < 8 || (len > 8 && cap[8] != ' '))
		return false;
	for (i = 0; i < 8; i++) {
		char c = cap[i];
		size_t same = 0;

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != want[i])
			diff++;
		for (j = 0; j < 8; j++) {
			if (cap[j] == cap[i])
				same++;
		}
		if (same > most)
			most = same;
	}
	if (diff == 0)
		return false;
	/* "XXXXXXXA" (a known firewall rewrite), "********", "        ". */
	if (most >= 6)
		return true;
	/* A few characters replaced: "STARTTLX", "XTARTTLS", "STARTXXX". */
	return diff <= 4;
}
