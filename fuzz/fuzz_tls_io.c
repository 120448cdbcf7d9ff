// sources: tls/tls_io.c
/*
 * fuzz_tls_io.c - the endpoint's bounded buffers under arbitrary sequences
 * of peer bytes, pumps, line reads, consumes, writes and closes.
 *
 * Input: in_max, out_max (one byte each, 1-256), then operations of two
 * bytes (op, argument). The peer is the raw other end of a socketpair.
 * Invariants are checked after every operation; a violation aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "tls/tls_io.h"

static void
check(bool ok)
{
	if (!ok)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char pad[256] = "EHLO a\r\n";
	struct tls_io *io;
	size_t in_max, out_max, pos = 2, len, space;
	char sink[4096];
	const char *p;
	int sv[2], flags, ev;

	if (size < 2)
		return 0;
	in_max = (size_t)data[0] + 1;
	out_max = (size_t)data[1] + 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return 0;
	if ((io = tls_io_new(sv[0], in_max, out_max)) == NULL) {
		close(sv[1]);
		return 0;
	}
	while (pos + 2 <= size) {
		uint8_t op = data[pos] & 7, arg = data[pos + 1];

		pos += 2;
		switch (op) {
		case 0: /* the peer sends arg bytes of the input (or padding) */
			len = arg;
			if (len > size - pos)
				len = size - pos;
			if (send(sv[1], data + pos, len, MSG_NOSIGNAL) > 0)
				pos += len;
			break;
		case 1:
			tls_io_pump(io);
			break;
		case 2:
			p = tls_io_line(io, &len, &flags);
			if (p != NULL) {
				size_t have;

				check(tls_io_in(io, &have) == p && len <= have && len > 0);
				if (flags == 0)
					check(p[len - 1] == '\n' &&
					      memchr(p, '\n', len - 1) == NULL);
				else if (flags == TLS_IO_LINE_TOO_LONG)
					check(len == in_max && memchr(p, '\n', len) == NULL);
				else
					check(flags == TLS_IO_LINE_NO_EOL);
				tls_io_consume(io, len);
			}
			break;
		case 3:
			tls_io_consume(io, arg);
			break;
		case 4:
			space = tls_io_out_space(io);
			if (tls_io_write(io, pad, arg) == 0)
				check(arg <= space);
			else /* too big, or the endpoint takes nothing more */
				check(arg > space || space == 0);
			break;
		case 5: /* the peer reads */
			while (recv(sv[1], sink, sizeof(sink), 0) > 0)
				;
			break;
		case 6:
			if (arg & 1)
				tls_io_shutdown(io);
			break;
		case 7:
			if (arg & 1)
				shutdown(sv[1], SHUT_WR);
			break;
		}
		tls_io_in(io, &len);
		check(len <= in_max);
		check(tls_io_out_pending(io) <= out_max);
		check(tls_io_memory(io) <= in_max + out_max);
		check(tls_io_out_pending(io) + tls_io_out_space(io) <= out_max);
		if (len == 0 && tls_io_out_pending(io) == 0)
			check(tls_io_memory(io) == 0);
		ev = tls_io_events(io);
		check((ev & ~(LOOP_READ | LOOP_WRITE)) == 0);
		if (len == in_max)
			check((ev & LOOP_READ) == 0);
	}
	tls_io_free(io);
	close(sv[1]);
	return 0;
}
