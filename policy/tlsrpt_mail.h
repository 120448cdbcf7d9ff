/*
 * tlsrpt_mail.h - the TLS-RPT report as a file name (RFC 8460 section 5.1)
 * and as a mail message for a "mailto:" destination (section 5.3).
 *
 * Pure: no I/O, no clock, no randomness (the caller passes the time and a
 * unique token), so the same inputs always give the same message.
 *
 * Every value that goes into a header comes from the configuration or
 * from DNS; each is checked against the narrow syntax it must have (an
 * address, a host name, an id) and a value with CR, LF, a control
 * character, a space where none belongs or a non-ASCII octet is refused,
 * never cleaned up: a header is never built from a value that could start
 * another one.
 */
#ifndef TLSRPT_MAIL_H
#define TLSRPT_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "policy/tlsrpt_json.h" /* TLSRPT_UNIQUE_MAX */

#define TLSRPT_FILENAME_MAX 600               /* a file name, with the NUL */
#define TLSRPT_MAIL_MAX     (4 * 1024 * 1024) /* longest message built */

/*
 * tlsrpt_filename - section 5.1:
 *   submitter "!" policy-domain "!" begin "!" end [ "!" unique ] ".json.gz"
 * begin and end in seconds since the epoch (decimal, >= 0, end >= begin),
 * e.g. "mail.sender.example!example.com!1796256000!1796342399.json.gz".
 * submitter and policy_domain are host names (letters, digits, '-', '.'),
 * compared as given; unique, when neither NULL nor "", is
 * 1..TLSRPT_UNIQUE_MAX letters or digits (section 5.1: unique-id =
 * 1*(ALPHA / DIGIT)). Returns the length written (NUL-terminated), or -1
 * when an argument breaks those rules or out is too small
 * (TLSRPT_FILENAME_MAX is always enough).
 */
int tlsrpt_filename(char *out, size_t outlen, const char *submitter, const char *policy_domain,
                    int64_t begin, int64_t end, const char *unique);

/* What the message is made of. All strings are NUL-terminated, none is kept. */
struct tlsrpt_mail_params {
	const char *from;          /* From: the submitter's report address, "tlsrpt@example.net" */
	const char *to;            /* To: the decoded mailto: address of the record */
	const char *policy_domain; /* TLS-Report-Domain, and the Subject */
	const char *submitter;     /* TLS-Report-Submitter, and the Subject: a host name */
	const char *report_id;     /* the Subject's Report-ID: dot-atom "@" dot-atom */
	const char *filename;      /* as made by tlsrpt_filename() */
	const char *unique;        /* 8..60 letters or digits, fresh per message: the
	                              MIME boundary and the Message-ID's left part */
	int64_t now;               /* Date:, unix seconds */
	const uint8_t *gz;         /* the gzip'ed report (tlsrpt_gzip()) */
	size_t gzlen;              /* 1..; the whole message stays under TLSRPT_MAIL_MAX */
};

/*
 * tlsrpt_mail_build - a complete RFC 5322 message, CRLF line endings,
 * lines folded to stay short where the values allow and never over 998
 * octets (RFC 5322 section 2.1.1). Headers, each once: From, To, Date, Message-ID
 * (<unique@submitter>), Subject ("Report Domain: D Submitter: S
 * Report-ID: <id>", folded at its spaces as in section 5.3),
 * TLS-Report-Domain, TLS-Report-Submitter, TLS-Required: No (RFC 8689: a
 * report about TLS failures must get through them; section 5.3.1),
 * Auto-Submitted: auto-generated (RFC 3834), MIME-Version, and
 * Content-Type: multipart/report; report-type="tlsrpt"; boundary="...".
 * Two parts: a short text/plain note, then application/tlsrpt+gzip in
 * base64 (76-character lines) with Content-Disposition: attachment;
 * filename="<filename>". The boundary contains "=_", which base64 and the
 * note never do, so it cannot occur in the body.
 *
 * Returns 0 and sets *out to a malloc'ed NUL-terminated message of *outlen
 * octets (the caller frees it). Returns -1 with err filled (when not NULL
 * and errlen > 0) and *out NULL when a value breaks its syntax, the
 * message would exceed TLSRPT_MAIL_MAX, or there is no memory.
 */
int tlsrpt_mail_build(const struct tlsrpt_mail_params *p, char **out, size_t *outlen, char *err,
                      size_t errlen);

#endif
