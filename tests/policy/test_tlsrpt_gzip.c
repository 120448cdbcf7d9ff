// sources: policy/tlsrpt_gzip.c
/*
 * test_tlsrpt_gzip.c - "application/tlsrpt+gzip" (RFC 8460 sections 5.3,
 * 5.4): gzip round trips, the gzip header itself, and the refusals of the
 * bounded gunzip (corrupt, truncated, trailing bytes, too large, not gzip).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "policy/tlsrpt_gzip.h"

static const char report[] =
    "{\"organization-name\":\"Company-X\",\"date-range\":{\"start-datetime\":"
    "\"2026-12-03T00:00:00Z\",\"end-datetime\":\"2026-12-03T23:59:59Z\"},"
    "\"contact-info\":\"sts-reporting@company-x.example\",\"report-id\":\"x@y\","
    "\"policies\":[]}";

static void
round_trip(const void *in, size_t len)
{
	uint8_t *gz, *back;
	size_t gzlen, backlen;

	assert_int_equal(tlsrpt_gzip(in, len, &gz, &gzlen), 0);
	assert_int_equal(tlsrpt_gunzip(gz, gzlen, len, &back, &backlen), 0);
	assert_int_equal(backlen, len);
	if (len > 0)
		assert_memory_equal(back, in, len);
	assert_int_equal(back[backlen], '\0');
	free(gz);
	free(back);
}

/* RFC 1952: magic 1f 8b, deflate, no name, time 0; the output depends on the input alone. */
static void
rfc1952_header(void **state)
{
	uint8_t *a, *b;
	size_t alen, blen;

	(void)state;
	assert_int_equal(tlsrpt_gzip(report, strlen(report), &a, &alen), 0);
	assert_true(alen > 18);
	assert_int_equal(a[0], 0x1f);
	assert_int_equal(a[1], 0x8b);
	assert_int_equal(a[2], 8);                      /* CM = deflate */
	assert_int_equal(a[3], 0);                      /* FLG: no name, no comment */
	assert_int_equal(a[4] | a[5] | a[6] | a[7], 0); /* MTIME */
	assert_int_equal(tlsrpt_gzip(report, strlen(report), &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	/* zlib's own reader agrees. */
	{
		uint8_t out[1024];
		z_stream z;

		memset(&z, 0, sizeof(z));
		assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
		z.next_in = a;
		z.avail_in = (uInt)alen;
		z.next_out = out;
		z.avail_out = sizeof(out);
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		assert_int_equal(z.total_out, strlen(report));
		inflateEnd(&z);
	}
	free(a);
	free(b);
}

static void
round_trips(void **state)
{
	static uint8_t big[300000];
	uint32_t x = 12345;

	(void)state;
	round_trip(report, strlen(report));
	round_trip("", 0);
	round_trip("x", 1);
	for (size_t i = 0; i < sizeof(big); i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)(x >> 24);
	}
	round_trip(big, sizeof(big)); /* incompressible, several output chunks */
	memset(big, 'a', sizeof(big));
	round_trip(big, sizeof(big));
}

static void
gunzip_refusals(void **state)
{
	uint8_t *gz, *out = (uint8_t *)1, *bad;
	size_t gzlen, outlen = 1;

	(void)state;
	assert_int_equal(tlsrpt_gzip(report, strlen(report), &gz, &gzlen), 0);
	bad = malloc(gzlen + 1);
	assert_non_null(bad);

	/* A flipped bit in the data or the CRC. */
	memcpy(bad, gz, gzlen);
	bad[gzlen / 2] ^= 0x10;
	assert_int_equal(tlsrpt_gunzip(bad, gzlen, 1 << 20, &out, &outlen), -1);
	assert_null(out);
	assert_int_equal(outlen, 0);
	memcpy(bad, gz, gzlen);
	bad[gzlen - 6] ^= 0x01;
	assert_int_equal(tlsrpt_gunzip(bad, gzlen, 1 << 20, &out, &outlen), -1);
	/* The ISIZE trailer. */
	memcpy(bad, gz, gzlen);
	bad[gzlen - 1] ^= 0x01;
	assert_int_equal(tlsrpt_gunzip(bad, gzlen, 1 << 20, &out, &outlen), -1);
	/* Truncated, at every length. */
	for (size_t n = 1; n < gzlen; n++)
		assert_int_equal(tlsrpt_gunzip(gz, n, 1 << 20, &out, &outlen), -1);
	/* Trailing bytes after the member. */
	memcpy(bad, gz, gzlen);
	bad[gzlen] = 0;
	assert_int_equal(tlsrpt_gunzip(bad, gzlen + 1, 1 << 20, &out, &outlen), -1);
	/* Larger than max: refused; exactly max: fine. */
	assert_int_equal(tlsrpt_gunzip(gz, gzlen, strlen(report) - 1, &out, &outlen), -1);
	assert_int_equal(tlsrpt_gunzip(gz, gzlen, strlen(report), &out, &outlen), 0);
	free(out);
	/* Not gzip at all: plain text, a zlib stream. */
	assert_int_equal(tlsrpt_gunzip(report, strlen(report), 1 << 20, &out, &outlen), -1);
	{
		uint8_t z[256];
		uLongf zlen = sizeof(z);

		assert_int_equal(compress(z, &zlen, (const Bytef *)report, strlen(report)), Z_OK);
		assert_int_equal(tlsrpt_gunzip(z, zlen, 1 << 20, &out, &outlen), -1);
	}
	/* Empty and missing input. */
	assert_int_equal(tlsrpt_gunzip(gz, 0, 1 << 20, &out, &outlen), -1);
	assert_int_equal(tlsrpt_gunzip(NULL, 10, 1 << 20, &out, &outlen), -1);
	free(bad);
	free(gz);
}

/* A gzip bomb stops at max, having allocated about max, not the whole expansion. */
static void
gunzip_bomb_bounded(void **state)
{
	size_t n = 8 * 1024 * 1024;
	uint8_t *zeros = calloc(1, n), *gz, *out;
	size_t gzlen, outlen;

	(void)state;
	assert_non_null(zeros);
	assert_int_equal(tlsrpt_gzip(zeros, n, &gz, &gzlen), 0);
	assert_true(gzlen < 64 * 1024);
	assert_int_equal(tlsrpt_gunzip(gz, gzlen, 65536, &out, &outlen), -1);
	assert_int_equal(tlsrpt_gunzip(gz, gzlen, n, &out, &outlen), 0);
	assert_int_equal(outlen, n);
	free(out);
	free(gz);
	free(zeros);
}

static void
gzip_refusals(void **state)
{
	uint8_t *gz = (uint8_t *)1;
	size_t gzlen = 1;

	(void)state;
	assert_int_equal(tlsrpt_gzip(NULL, 1, &gz, &gzlen), -1);
	assert_null(gz);
	assert_int_equal(tlsrpt_gzip(report, (size_t)TLSRPT_GZIP_IN_MAX + 1, &gz, &gzlen), -1);
	assert_int_equal(tlsrpt_gzip(report, 1, NULL, &gzlen), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc1952_header),  cmocka_unit_test(round_trips),
	    cmocka_unit_test(gunzip_refusals), cmocka_unit_test(gunzip_bomb_bounded),
	    cmocka_unit_test(gzip_refusals),
	};

	return cmocka_run_group_tests_name("tlsrpt_gzip", tests, NULL, NULL);
}
