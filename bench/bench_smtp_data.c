// sources: proxy/smtp_data.c
/*
 * bench_smtp_data.c - throughput of the DATA stream scanner on one thread.
 *
 * Builds a 10 MiB message the way mail looks on the wire (text lines of 70
 * to 80 octets ending in CRLF, one in forty dot-stuffed, a header block in
 * front, the final CRLF.CRLF at the end), then feeds it to smtp_data_feed()
 * in 64 KiB chunks, as the session reads it, a number of times, and prints
 * "smtp_data_mb_per_sec N" (MiB per second). Every pass must end with
 * SMTP_DATA_END at the last octet, or the benchmark fails. "--smoke" as the
 * only argument runs one pass of 1 MiB, to keep the benchmark working in CI.
 *
 * Build and run by hand:
 *   cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -o build/bench_smtp_data \
 *      bench/bench_smtp_data.c proxy/smtp_data.c && ./build/bench_smtp_data
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/smtp_data.h"

#define FULL_SIZE   (10u * 1024 * 1024)
#define FULL_PASSES 20
#define SMOKE_SIZE  (1u * 1024 * 1024)
#define CHUNK       65536

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* make_message - a message of about size octets; NULL when out of memory. */
static char *
make_message(size_t size, size_t *out_len)
{
	static const char hdr[] = "From: sender@example.org\r\n"
	                          "To: rcpt@example.net\r\n"
	                          "Subject: bench\r\n"
	                          "\r\n";
	static const char alpha[] =
	    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789,;";
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	char *m = malloc(size + 128);
	size_t n = 0, line = 0;

	if (m == NULL)
		return NULL;
	memcpy(m, hdr, sizeof(hdr) - 1);
	n = sizeof(hdr) - 1;
	while (n + 90 < size) {
		size_t len = 70 + next_rand(&seed) % 11;
		size_t k = 0;

		/* RFC 5321 section 4.5.2: a line starting with "." is stuffed. */
		if (line++ % 40 == 39)
			m[n + k++] = '.';
		for (; k < len; k++)
			m[n + k] = alpha[next_rand(&seed) % (sizeof(alpha) - 1)];
		n += len;
		m[n++] = '\r';
		m[n++] = '\n';
	}
	memcpy(m + n, ".\r\n", 3);
	n += 3;
	*out_len = n;
	return m;
}

int
main(int argc, char **argv)
{
	int smoke = argc == 2 && strcmp(argv[1], "--smoke") == 0;
	size_t size = smoke ? SMOKE_SIZE : FULL_SIZE;
	int passes = smoke ? 1 : FULL_PASSES;
	size_t len = 0;
	char *msg = make_message(size, &len);
	double t0, t1;
	int p;

	if (msg == NULL) {
		fprintf(stderr, "bench_smtp_data: out of memory\n");
		return 1;
	}
	t0 = now_sec();
	for (p = 0; p < passes; p++) {
		struct smtp_data d;
		size_t off = 0, used = 0;
		int r = SMTP_DATA_MORE;

		smtp_data_init(&d);
		while (off < len && r == SMTP_DATA_MORE) {
			size_t n = len - off < CHUNK ? len - off : CHUNK;

			r = smtp_data_feed(&d, msg + off, n, &used);
			off += used;
		}
		if (r != SMTP_DATA_END || off != len || d.octets != len) {
			fprintf(stderr, "bench_smtp_data: scan ended at %zu of %zu (r=%d)\n", off,
			        len, r);
			free(msg);
			return 1;
		}
	}
	t1 = now_sec();
	printf("smtp_data_mb_per_sec %.0f\n",
	       (double)len * passes / (1024.0 * 1024.0) / (t1 - t0 > 0 ? t1 - t0 : 1e-9));
	free(msg);
	return 0;
}
