/*
 * netstring.h - netstrings (D. J. Bernstein, "Netstrings", 1997), the
 * framing of Postfix's socketmap protocol (socketmap_table(5)): the
 * decimal length of the data, ':', the data, ','.
 *
 * Pure: no I/O, no allocation. The parser reads from a caller's bounded
 * buffer and may be called again on the same bytes as more arrive; it
 * never reads past len, and a declared length above the caller's bound
 * is refused as soon as its digits show it, before the data is read.
 */
#ifndef STS_NETSTRING_H
#define STS_NETSTRING_H

#include <stddef.h>

enum netstring_status {
	NETSTRING_TOOBIG = -2, /* the declared length exceeds max */
	NETSTRING_BAD = -1,    /* malformed: a non-digit in the length, a leading zero,
	                          an empty length, or no ',' after the data */
	NETSTRING_MORE = 0,    /* a valid beginning: more bytes are needed */
	NETSTRING_OK = 1,      /* one complete netstring */
};

/*
 * netstring_parse - the netstring at the start of buf (len bytes, not
 * NUL-terminated; NUL bytes in the data are data). On NETSTRING_OK,
 * *data points into buf at the *dlen data bytes and *used is the length
 * of the whole netstring (what the caller consumes: a pipelined next one
 * follows it). The outputs are untouched on any other result. max is the
 * longest data accepted (at most 999999999).
 */
enum netstring_status netstring_parse(const char *buf, size_t len, size_t max, const char **data,
                                      size_t *dlen, size_t *used);

/*
 * netstring_encode - write data (dlen bytes) as a netstring into out
 * (outlen bytes, no NUL added). Returns the length written, or 0 when it
 * does not fit (out is then unspecified).
 */
size_t netstring_encode(char *out, size_t outlen, const char *data, size_t dlen);

/* netstring_size - the encoded size of dlen data bytes. */
size_t netstring_size(size_t dlen);

#endif
