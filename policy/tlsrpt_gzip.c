/*
 * tlsrpt_gzip.c - gzip and bounded gunzip of TLS-RPT reports with zlib.
 *
 * windowBits 15 + 16 asks zlib for the gzip wrapper of RFC 1952 (header,
 * CRC-32, length) instead of the zlib one: "application/tlsrpt+gzip" is
 * gzip (RFC 8460 section 6.4).
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "policy/tlsrpt_gzip.h"

#define GZIP_WINDOW (15 + 16)
#define CHUNK       16384

/* tlsrpt_gzip - see tlsrpt_gzip.h */
int
tlsrpt_gzip(const void *in, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream z;
	uint8_t *buf;
	size_t cap;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if ((in == NULL && len > 0) || out == NULL || outlen == NULL || len > TLSRPT_GZIP_IN_MAX)
		return -1;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, GZIP_WINDOW, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -1;
	/* deflateBound() covers the gzip header and trailer: one call is enough. */
	cap = deflateBound(&z, (uLong)len);
	buf = malloc(cap);
	if (buf == NULL) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	if (rc != Z_STREAM_END) {
		deflateEnd(&z);
		free(buf);
		return -1;
	}
	*outlen = cap - z.avail_out;
	deflateEnd(&z);
	*out = buf;
	return 0;
}

/* tlsrpt_gunzip - see tlsrpt_gzip.h */
int
tlsrpt_gunzip(const void *in, size_t len, size_t max, uint8_t **out, size_t *outlen)
{
	z_stream z;
	uint8_t *buf = NULL;
	size_t cap = 0, used = 0;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (in == NULL || len == 0 || out == NULL || outlen == NULL || len > TLSRPT_GZIP_IN_MAX)
		return -1;
	memset(&z, 0, sizeof(z));
	/* 15 + 16: gzip only; a zlib or raw stream is refused. */
	if (inflateInit2(&z, GZIP_WINDOW) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	do {
		if (used == cap) {
			size_t ncap = cap == 0 ? CHUNK : cap * 2;
			uint8_t *nbuf;

			/* One octet more than max is how "too large" is seen. */
			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= used)
				goto fail;
			nbuf = realloc(buf, ncap + 1);
			if (nbuf == NULL)
				goto fail;
			buf = nbuf;
			cap = ncap;
		}
		z.next_out = buf + used;
		z.avail_out = (uInt)(cap - used);
		rc = inflate(&z, Z_NO_FLUSH);
		used = cap - z.avail_out;
		if (used > max)
			goto fail;
		if (rc != Z_OK && rc != Z_STREAM_END)
			goto fail; /* corrupt (Z_DATA_ERROR), truncated (Z_BUF_ERROR), memory */
	} while (rc != Z_STREAM_END);
	/* Exactly one member: trailing bytes are refused, not ignored. */
	if (z.avail_in != 0)
		goto fail;
	inflateEnd(&z);
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return -1;
	buf[used] = '\0';
	*out = buf;
	*outlen = used;
	return 0;
fail:
	inflateEnd(&z);
	free(buf);
	return -1;
}
