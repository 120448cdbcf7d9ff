/*
 * smtp_data.h - the scanner of a DATA stream (RFC 5321 sections 4.1.1.4
 * and 4.5.2).
 *
 * The session relays message data as it arrives, so the scanner is fed
 * chunks split anywhere, including inside the final CRLF.CRLF. It never
 * changes the bytes: dot-stuffing stays as the client sent it, because the
 * upstream expects the stuffed form too. It finds the end of the data, and
 * refuses the stream at the first bare CR, bare LF or NUL: those are how a
 * second message is smuggled past a relay to a server that reads the end
 * of data differently (SMTP smuggling, 2023). Only CRLF.CRLF ends the data.
 */
#ifndef STS_PROXY_SMTP_DATA_H
#define STS_PROXY_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of smtp_data_feed(). */
enum {
	SMTP_DATA_BAD = -1, /* refused: d->error and d->error_offset are set */
	SMTP_DATA_MORE = 0, /* the whole chunk was consumed; the data goes on */
	SMTP_DATA_END = 1,  /* CRLF.CRLF seen; *consumed counts up to its LF */
};

/* RFC 5321 section 4.5.3.1.6: a text line is at most 1000 octets with its CRLF. */
#define SMTP_DATA_LINE_MAX 998

/* The state of one message's data; all fields are read-only for the caller. */
struct smtp_data {
	int state;             /* private */
	uint64_t octets;       /* octets consumed so far, the final CRLF.CRLF included */
	size_t line_len;       /* octets in the current line so far, without CRLF */
	size_t longest_line;   /* the longest complete line, without its CRLF */
	uint64_t long_lines;   /* complete lines longer than SMTP_DATA_LINE_MAX */
	const char *error;     /* after BAD: the reply for the client (static, no CRLF) */
	uint64_t error_offset; /* after BAD: stream offset of the offending octet */
};

/*
 * smtp_data_init - start a message. The state assumes the CRLF that ended
 * the DATA command was just seen, so ".\r\n" at once is an empty message.
 */
void smtp_data_init(struct smtp_data *d);

/*
 * smtp_data_feed - scan the next chunk buf[0..len).
 * SMTP_DATA_MORE: *consumed == len.
 * SMTP_DATA_END: *consumed is the number of octets of buf up to and
 *   including the LF of the final CRLF.CRLF; what follows is the next
 *   command (RFC 2920 allows pipelining after the final dot).
 * SMTP_DATA_BAD: *consumed is the number of octets of buf before the
 *   offending one (0 when it was a CR at the end of an earlier chunk). The
 *   session refuses the message with d->error, closes the connection and
 *   aborts the upstream transaction without ever sending the end of data.
 * Once END or BAD is returned, further calls return the same value with
 * *consumed = 0 until smtp_data_init().
 */
int smtp_data_feed(struct smtp_data *d, const char *buf, size_t len, size_t *consumed);

/*
 * smtp_data_cr_pending - true when the last octet fed was a CR whose LF has
 * not arrived. A session relaying as it goes holds that one octet back and
 * sends "\r" in front of the next chunk, so that no upstream ever sees a
 * lone CR, which some servers take as a line end.
 */
bool smtp_data_cr_pending(const struct smtp_data *d);

#endif
