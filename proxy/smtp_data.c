/*
 * smtp_data.c - the DATA stream scanner: a small state machine over the
 * octets, so that chunk boundaries never matter.
 */
#include "proxy/smtp_data.h"

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/*
 * The position in the stream. Every line end must be CRLF (RFC 5321
 * section 2.3.8), and the data ends at a line holding only "." (section
 * 4.1.1.4), that is CRLF "." CRLF, the first CRLF being the previous line's.
 */
enum dstate {
	D_BOL = 0, /* at the start of a line */
	D_TEXT,    /* inside a line */
	D_CR,      /* after a CR inside a line: only LF may follow */
	D_DOT,     /* after a "." at the start of a line */
	D_DOT_CR,  /* after "." CR at the start of a line: LF ends the data */
	D_END,
	D_BAD,
};

#define ERR_BARE_CR "554 5.5.2 Message refused: bare CR in data"
#define ERR_BARE_LF "554 5.5.2 Message refused: bare LF in data"
#define ERR_NUL     "554 5.6.0 Message refused: NUL in data"

/* smtp_data_init - ready for the first octet after the DATA command's CRLF. */
void
smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = D_BOL;
}

static void
line_done(struct smtp_data *d)
{
	if (d->line_len > d->longest_line)
		d->longest_line = d->line_len;
	if (d->line_len > SMTP_DATA_LINE_MAX)
		d->long_lines++;
	d->line_len = 0;
}

static int
refuse(struct smtp_data *d, const char *why, uint64_t offset)
{
	d->state = D_BAD;
	d->error = why;
	d->error_offset = offset;
	return SMTP_DATA_BAD;
}

/*
 * Eight octets at a time: a word holds an octet equal to c when x ^ (c * ONES)
 * has a zero octet, and has_zero() is the classic test for one. The test
 * can flag octets above a true zero (the borrow runs upward), never below,
 * so the lowest flagged octet is exact; only the memory order of the octets
 * decides whether that is the lowest or the highest bit.
 */
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t
has_zero(uint64_t x)
{
	return (x - ONES) & ~x & HIGHS;
}

/* text_span - the offset of the first CR, LF or NUL in buf[i..len), or len. */
static inline size_t
text_span(const char *buf, size_t i, size_t len)
{
#ifdef __SSE2__
	/* Sixteen at a time where the CPU has it (every x86-64 does). */
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), nul = _mm_setzero_si128();

	while (i + 16 <= len) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + i));
		__m128i hit =
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
		                 _mm_cmpeq_epi8(v, nul));
		unsigned mask = (unsigned)_mm_movemask_epi8(hit);

		if (mask != 0)
			return i + (size_t)__builtin_ctz(mask);
		i += 16;
	}
#endif
	while (i + 8 <= len) {
		uint64_t w, hit;

		memcpy(&w, buf + i, 8);
		hit = has_zero(w ^ ('\r' * ONES)) | has_zero(w ^ ('\n' * ONES)) | has_zero(w);
		if (hit != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return i + (size_t)(__builtin_ctzll(hit) >> 3);
#else
			break;
#endif
		}
		i += 8;
	}
	while (i < len && buf[i] != '\r' && buf[i] != '\n' && buf[i] != '\0')
		i++;
	return i;
}

/*
 * scan_lines - the fast path over ordinary text: from D_BOL or D_TEXT at
 * buf[i], consume whole lines that end in CRLF and do not start with "."
 * (the only lines that can end the data), and the text of a last partial
 * line. Returns the offset of the first octet left to the state machine
 * (len when none). Accounts octets and lines as the machine would.
 */
static size_t
scan_lines(struct smtp_data *d, const char *buf, size_t i, size_t len)
{
	while (i < len) {
		size_t start;

		if (d->state == D_BOL) {
			char c = buf[i];

			if (c == '.' || c == '\r' || c == '\n' || c == '\0')
				return i;
			d->state = D_TEXT;
		}
		start = i;
		i = text_span(buf, i, len);
		d->line_len += i - start;
		d->octets += i - start;
		if (i == len || buf[i] != '\r' || i + 1 == len || buf[i + 1] != '\n')
			return i;
		line_done(d);
		d->octets += 2;
		i += 2;
		d->state = D_BOL;
	}
	return i;
}

/* smtp_data_feed - scan one chunk. */
int
smtp_data_feed(struct smtp_data *d, const char *buf, size_t len, size_t *consumed)
{
	size_t i = 0;

	*consumed = 0;
	if (d->state == D_END)
		return SMTP_DATA_END;
	if (d->state == D_BAD)
		return SMTP_DATA_BAD;

	while (i < len) {
		unsigned char c;

		if (d->state == D_BOL || d->state == D_TEXT) {
			i = scan_lines(d, buf, i, len);
			if (i == len)
				break;
		}
		c = (unsigned char)buf[i];
		switch (d->state) {
		case D_BOL:
		case D_TEXT:
		case D_DOT:
			if (c == '\0') {
				*consumed = i;
				return refuse(d, ERR_NUL, d->octets);
			}
			if (c == '\n') {
				*consumed = i;
				return refuse(d, ERR_BARE_LF, d->octets);
			}
			if (c == '\r') {
				d->state = d->state == D_DOT ? D_DOT_CR : D_CR;
			} else {
				d->state = (d->state == D_BOL && c == '.') ? D_DOT : D_TEXT;
				d->line_len++;
			}
			break;
		case D_CR:
		case D_DOT_CR:
			if (c != '\n') {
				/* The CR is the offender; it came just before this octet. */
				*consumed = i > 0 ? i - 1 : 0;
				return refuse(d, ERR_BARE_CR, d->octets - 1);
			}
			if (d->state == D_DOT_CR) {
				d->octets++;
				d->state = D_END;
				*consumed = i + 1;
				return SMTP_DATA_END;
			}
			line_done(d);
			d->state = D_BOL;
			break;
		default:
			break;
		}
		d->octets++;
		i++;
	}
	*consumed = len;
	return SMTP_DATA_MORE;
}

/* smtp_data_cr_pending - a CR waits for its LF. */
bool
smtp_data_cr_pending(const struct smtp_data *d)
{
	return d->state == D_CR || d->state == D_DOT_CR;
}
