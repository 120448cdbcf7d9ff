/*
 * tlsrpt_send.h - delivering one TLS-RPT report to one rua URI (RFC 8460
 * sections 5.3 and 5.4): an HTTPS POST of the gzip report, or a mail
 * handed to the operator's SMTP relay (report.relay).
 *
 * Transfers block the calling thread (the reporter's own, never an event
 * loop), each bounded by report.timeout. tlsrpt_send_abort(), from any
 * thread, ends the running transfer within milliseconds and makes every
 * later one fail at once, so that a stop is never held up by a report.
 *
 * The report mail never goes through the proxy: it goes from this process
 * straight to report.relay, on a socket that carries upstream_mark when
 * one is configured (the on-host rules skip marked connections).
 */
#ifndef TLSRPT_SEND_H
#define TLSRPT_SEND_H

#include <stddef.h>

#include "core/conf.h"
#include "policy/tlsrpt_sched.h"

#define TLSRPT_SEND_ADDR_MAX 320 /* a mailto: address: 64 + @ + 253, and the NUL */

struct tlsrpt_send;

/* What a rua URI asks for. */
enum tlsrpt_uri_kind {
	TLSRPT_URI_BAD = 0, /* neither, or malformed */
	TLSRPT_URI_HTTPS,
	TLSRPT_URI_MAILTO,
};

/*
 * tlsrpt_send_uri - classify a rua URI (as the record parser gave it:
 * "https://..." or "mailto:addr[?query]"). For mailto:, addr (addrlen
 * octets) gets the percent-decoded address, which must be one plain
 * local@domain with a host name domain and no control characters or
 * spaces. Pure.
 */
enum tlsrpt_uri_kind tlsrpt_send_uri(const char *uri, char *addr, size_t addrlen);

/*
 * tlsrpt_send_new - a sender for c (report.*, tls.ca_file, upstream_mark;
 * c must outlive it). Reads report.relay_password_file now. NULL with a
 * message in err on failure (libcurl, memory, the password file).
 */
struct tlsrpt_send *tlsrpt_send_new(const struct conf *c, char *err, size_t errlen);

/* tlsrpt_send_free - free s; NULL is a no-op. No transfer may be running. */
void tlsrpt_send_free(struct tlsrpt_send *s);

/* tlsrpt_send_abort - from any thread: stop the running transfer and refuse later ones. */
void tlsrpt_send_abort(struct tlsrpt_send *s);

/*
 * tlsrpt_send_https - POST gz (len octets, the gzip report) to url with
 * "Content-Type: application/tlsrpt+gzip" (section 5.4), the server's
 * certificate verified, redirects not followed. DELIVERED on 2xx; TEMP on
 * a network or TLS error, a timeout, 408, 429 or 5xx, or an abort; PERM
 * on any other status. why gets a short reason ("HTTP 503", curl's error).
 */
enum tlsrpt_outcome tlsrpt_send_https(struct tlsrpt_send *s, const char *url, const void *gz,
                                      size_t len, char *why, size_t whylen);

/*
 * tlsrpt_send_mail - hand msg (len octets, a whole message with CRLF line
 * ends) to report.relay for rcpt, from report.from, with STARTTLS as
 * report.relay_starttls says. DELIVERED when the relay accepted it; PERM
 * without a relay or on a 5xx reply; TEMP otherwise.
 */
enum tlsrpt_outcome tlsrpt_send_mail(struct tlsrpt_send *s, const char *rcpt, const void *msg,
                                     size_t len, char *why, size_t whylen);

/* tlsrpt_send_from - the envelope sender used: report.from or tlsrpt@<submitter>. */
const char *tlsrpt_send_from(const struct tlsrpt_send *s);

#endif
