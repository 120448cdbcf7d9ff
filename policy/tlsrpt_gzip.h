/*
 * tlsrpt_gzip.h - gzip for TLS-RPT reports: "application/tlsrpt+gzip"
 * (RFC 8460 sections 5.3 and 5.4) is the report text in the gzip format
 * of RFC 1952.
 *
 * Pure: memory to memory with zlib, bounded both ways. The header carries
 * no file name and a zero time, so the output depends on the input alone.
 */
#ifndef TLSRPT_GZIP_H
#define TLSRPT_GZIP_H

#include <stddef.h>
#include <stdint.h>

#define TLSRPT_GZIP_IN_MAX (16 * 1024 * 1024) /* largest input either way */

/*
 * tlsrpt_gzip - compress len octets at in (len <= TLSRPT_GZIP_IN_MAX) into
 * one gzip member. Returns 0 and sets *out to a malloc'ed buffer of *outlen
 * octets (the caller frees it); -1 on a bad argument, a too-large input,
 * or no memory (*out NULL).
 */
int tlsrpt_gzip(const void *in, size_t len, uint8_t **out, size_t *outlen);

/*
 * tlsrpt_gunzip - decompress exactly one gzip member of len octets at in
 * (len <= TLSRPT_GZIP_IN_MAX), producing at most max octets. Returns 0 and
 * sets *out to a malloc'ed, NUL-terminated buffer of *outlen octets (the
 * NUL not counted); -1 when the data is not gzip, is corrupt or truncated
 * (CRC and length are checked), has bytes after the member, would exceed
 * max, or there is no memory (*out NULL).
 */
int tlsrpt_gunzip(const void *in, size_t len, size_t max, uint8_t **out, size_t *outlen);

#endif
