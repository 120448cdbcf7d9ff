/*
 * smtp_reply.h - reading the replies of an SMTP server (RFC 5321 section
 * 4.2) and the capabilities of its EHLO reply.
 *
 * A reader is fed one line at a time and says when a whole reply, one or
 * more lines with the same code, has arrived. It refuses anything that is
 * not a well-formed reply; the session treats such an upstream as broken
 * and never guesses what it meant. A reply is bounded in lines and octets,
 * so a hostile server cannot make the proxy buffer without end.
 *
 * The EHLO functions read the capabilities of a complete reply, and build the
 * reply shown to the client: only what the proxy can relay, and STARTTLS
 * only when the proxy itself offers it to the client.
 */
#ifndef STS_PROXY_SMTP_REPLY_H
#define STS_PROXY_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of one reply (RFC 5321 section 4.5.3.1.5 sets 512 octets per line; we are generous). */
#define SMTP_REPLY_MAX_LINES 100
#define SMTP_REPLY_MAX_SIZE  65536

/* Results of smtp_reply_feed(). */
enum {
	SMTP_REPLY_BAD = -1, /* not a valid reply; see smtp_reply_error() */
	SMTP_REPLY_MORE = 0, /* a continuation line: feed the next one */
	SMTP_REPLY_DONE = 1, /* the final line: the reply is complete */
};

/* EHLO capabilities (RFC 5321 section 4.1.1.1 and the extensions' RFCs). */
enum {
	SMTP_CAP_STARTTLS = 1u << 0,            /* RFC 3207 */
	SMTP_CAP_PIPELINING = 1u << 1,          /* RFC 2920 */
	SMTP_CAP_CHUNKING = 1u << 2,            /* RFC 3030 */
	SMTP_CAP_8BITMIME = 1u << 3,            /* RFC 6152 */
	SMTP_CAP_SMTPUTF8 = 1u << 4,            /* RFC 6531 */
	SMTP_CAP_SIZE = 1u << 5,                /* RFC 1870 */
	SMTP_CAP_DSN = 1u << 6,                 /* RFC 3461 */
	SMTP_CAP_ENHANCEDSTATUSCODES = 1u << 7, /* RFC 2034 */
	SMTP_CAP_BINARYMIME = 1u << 8,          /* RFC 3030 */
	SMTP_CAP_AUTH = 1u << 9,                /* RFC 4954 */
	SMTP_CAP_REQUIRETLS = 1u << 10,         /* RFC 8689 */
	SMTP_CAP_DELIVERBY = 1u << 11,          /* RFC 2852 */
	SMTP_CAP_ETRN = 1u << 12,               /* RFC 1985 */
	SMTP_CAP_BURL = 1u << 13,               /* RFC 4468 */
	SMTP_CAP_MTRK = 1u << 14,               /* RFC 3885 */
	SMTP_CAP_HELP = 1u << 15,               /* RFC 5321 section 4.1.1.8 */
	SMTP_CAP_VRFY = 1u << 16,               /* RFC 5321 section 3.5.2 */
	SMTP_CAP_EXPN = 1u << 17,               /* RFC 5321 section 3.5.2 */
};

/* Capabilities read from an EHLO reply. */
struct smtp_ehlo {
	unsigned caps;      /* SMTP_CAP_* */
	uint64_t size;      /* SIZE value; 0: no SIZE or no fixed limit (RFC 1870 section 4) */
	char auth[256];     /* AUTH mechanisms as advertised, space separated; "" if none */
	unsigned n_mangled; /* lines that look like a damaged STARTTLS keyword */
};

struct smtp_reply;

/* smtp_reply_new - an empty reader, or NULL on allocation failure. Free with smtp_reply_free(). */
struct smtp_reply *smtp_reply_new(void);

/* smtp_reply_free - frees r and its text; NULL is a no-op. */
void smtp_reply_free(struct smtp_reply *r);

/* smtp_reply_reset - forget the current reply and any error, keep the memory. */
void smtp_reply_reset(struct smtp_reply *r);

/*
 * smtp_reply_feed - add one line of len octets, its CRLF included.
 * Returns SMTP_REPLY_MORE, SMTP_REPLY_DONE or SMTP_REPLY_BAD. Bad: code not
 * three digits in 2xx-5xx (RFC 5321 section 4.2), a code different from
 * the first line's, a fourth character other than '-', ' ' or the CRLF, a
 * bare CR or LF, a NUL, more than SMTP_REPLY_MAX_LINES lines or
 * SMTP_REPLY_MAX_SIZE octets, or no memory. After BAD the reader refuses
 * every line until smtp_reply_reset(); after DONE the reply stays readable
 * until the next feed, which starts a new reply.
 */
int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);

/* smtp_reply_done - true when the last feed completed a reply. */
bool smtp_reply_done(const struct smtp_reply *r);

/* smtp_reply_code - the reply code (e.g. 250), or 0 before the first line. */
int smtp_reply_code(const struct smtp_reply *r);

/* smtp_reply_nlines - lines in the reply so far. */
size_t smtp_reply_nlines(const struct smtp_reply *r);

/*
 * smtp_reply_line - the text of line i after the code and its separator,
 * without the CRLF (not NUL-terminated); NULL when i is out of range.
 * Valid until the next feed, reset or free.
 */
const char *smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *len);

/*
 * smtp_reply_name - the first word of the first line (a banner's or an EHLO
 * reply's host name), made printable, into out; "" when there is none.
 */
void smtp_reply_name(const struct smtp_reply *r, char *out, size_t outlen);

/* smtp_reply_raw - the reply as received, CRLFs included (not NUL-terminated). */
const char *smtp_reply_raw(const struct smtp_reply *r, size_t *len);

/* smtp_reply_error - why the reader refused the reply, or NULL. A static string. */
const char *smtp_reply_error(const struct smtp_reply *r);

/* smtp_cap_lookup - the SMTP_CAP_* bit of an EHLO keyword (case-insensitive), or 0. */
unsigned smtp_cap_lookup(const char *keyword, size_t len);

/*
 * smtp_ehlo_parse - read the capabilities of a complete 250 reply to EHLO
 * (the first line is the greeting, each further line one keyword with its
 * parameters). Returns 0, or -1 when r is not a complete 250 reply.
 * Unknown keywords are skipped; keywords are case-insensitive (RFC 5321
 * section 4.1.1.1).
 */
int smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out);

/*
 * smtp_ehlo_rewrite - build the EHLO reply shown to the client from the
 * upstream's complete 250 reply r: its first line (with the first word
 * replaced by greeting_name unless that is NULL), then, in their order,
 * only the capabilities whose bit is in allow_mask; the upstream's STARTTLS
 * is always dropped and "STARTTLS" is appended when offer_starttls is true.
 * Writes a NUL-terminated reply with CRLFs into out and returns its length,
 * or -1 when r is not a complete 250 reply, greeting_name holds anything
 * but printable ASCII, or outlen is too small.
 */
int smtp_ehlo_rewrite(const struct smtp_reply *r, unsigned allow_mask, bool offer_starttls,
                      char *out, size_t outlen, const char *greeting_name);

/*
 * smtp_cap_looks_mangled_starttls - true when the capability line cap
 * (keyword and parameters, no code) looks like a STARTTLS that a middlebox
 * has overwritten: an 8-character keyword that is not STARTTLS but is made
 * mostly of one repeated character ("XXXXXXXA", "********") or differs from
 * STARTTLS in a few characters ("STARTTLX"). Reported as a downgrade.
 */
bool smtp_cap_looks_mangled_starttls(const char *cap, size_t len);

#endif
