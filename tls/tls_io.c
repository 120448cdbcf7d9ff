/*
 * tls_io.c - one endpoint of a proxied connection and the TLS pump.
 *
 * The pump (tls_io_pump) is the only place that touches the socket or the
 * SSL object after set-up, in the manner of Postfix's tlsproxy: every event
 * leads to one call that tries each direction, records what OpenSSL wants
 * for the next step, and lets tls_io_events() turn that into loop events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "core/loop.h"
#include "tls/tls_io.h"

/* Largest read per system call or SSL_read (one TLS record). */
#define IO_CHUNK 16384
/* First allocation of a buffer; it doubles up to its maximum. */
#define IO_MIN_ALLOC 4096

/*
 * A bounded byte queue. Invariants:
 *   p == NULL  <=>  cap == 0;  len == 0  =>  off == 0;
 *   len == 0 and the endpoint not active  =>  p == NULL
 *     (an idle endpoint releases a buffer the moment it becomes empty;
 *     an active one keeps it for the next bytes, see tls_io_set_active);
 *   off + len <= cap <= max, except that tls_io_set_in_max() may lower
 *   max below cap and len (reading then waits until len < max);
 *   the bytes are p[off .. off + len).
 * p may move (compaction, realloc) while OpenSSL retries a write of it:
 * hence SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER.
 */
struct buf {
	char *p;
	size_t off, len, cap, max;
};

enum io_state {
	IO_PLAIN = 0,   /* no TLS */
	IO_TLS_PENDING, /* TLS started; plaintext queued before still being sent */
	IO_HANDSHAKE,   /* TLS handshake running */
	IO_TLS,         /* TLS up */
};

struct tls_io {
	int fd;
	SSL *ssl;
	enum io_state state;
	struct buf in, out;
	struct buf wire;   /* TLS records written by OpenSSL, not yet sent */
	int wire_err;      /* errno of the send() that failed in the wire BIO */
	size_t plain_left; /* IO_TLS_PENDING: leading bytes of out to send in clear */
	int hs_want;       /* loop events the handshake waits for */
	int rd_want;       /* ... the last SSL_read */
	int wr_want;       /* ... the last SSL_write */
	int sd_want;       /* ... the last SSL_shutdown */
	bool peer_closed;  /* read returned 0 or close_notify: no more input */
	bool shut_req, shut_done;
	bool notify_sent; /* SSL_shutdown() queued our close_notify */
	bool failed;
	bool active;      /* keep emptied buffers (tls_io_set_active) */
	bool no_quickack; /* not a TCP socket: TCP_QUICKACK is not tried again */
	/*
	 * Readiness (tls_io_events_seen): once the owner reports events, a
	 * read that found the socket empty is not tried again until the loop
	 * reports it readable, nor a send that found it full until writable.
	 * Untold endpoints try every time.
	 */
	bool tracked, rd_ready, wr_ready;
	char err[128];
};

/* buf_release - free an empty buffer's memory. */
static void
buf_release(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->off = b->len = b->cap = 0;
}

/* buf_reserve - room for need more bytes after the data; 0, or -1 (max or memory). */
static int
buf_reserve(struct buf *b, size_t need)
{
	size_t cap;
	char *p;

	if (need > b->max - b->len)
		return -1;
	if (b->cap - b->off - b->len >= need)
		return 0;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
		if (b->cap - b->len >= need)
			return 0;
	}
	cap = b->cap > 0 ? b->cap : IO_MIN_ALLOC;
	while (cap < b->len + need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	if (cap > b->max)
		cap = b->max;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* buf_drop - remove n bytes from the front (n <= len); an emptied buffer is kept or released. */
static void
buf_drop(struct buf *b, size_t n, bool keep)
{
	b->off += n;
	b->len -= n;
	if (b->len > 0)
		return;
	if (keep)
		b->off = 0;
	else
		buf_release(b);
}

/* io_fail - remember the first reason; the endpoint is dead from now on. */
static int
io_fail(struct tls_io *io, const char *what, const char *detail)
{
	if (!io->failed) {
		if (detail != NULL)
			snprintf(io->err, sizeof(io->err), "%s: %s", what, detail);
		else
			snprintf(io->err, sizeof(io->err), "%s", what);
		io->failed = true;
	}
	ERR_clear_error();
	return -1;
}

/* io_fail_errno - a failed system call: a reset peer is "reset", others named. */
static int
io_fail_errno(struct tls_io *io, const char *call, int err)
{
	if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED)
		return io_fail(io, "reset", NULL);
	return io_fail(io, call, strerror(err));
}

/* --- the wire: OpenSSL's write side ------------------------------------------
 *
 * OpenSSL writes each record with its own BIO_write; on a socket BIO that is
 * one send() per 16 KiB record, each a pass through the TCP stack on both
 * hosts and a wake-up of the reader. The endpoint's write BIO instead
 * appends the records to io->wire (up to TLS_IO_WIRE_MAX octets) and sends
 * them together: when the wire is full, when OpenSSL flushes (the end of a
 * handshake flight, an alert), and at the end of every pump. Reads still go
 * through a socket BIO.
 */

/* wire_flush - send what the wire holds; 0 (maybe not all sent: EAGAIN) or -1. */
static int
wire_flush(struct tls_io *io)
{
	ssize_t n;

	if (io->tracked && !io->wr_ready)
		return 0;
	while (io->wire.len > 0) {
		size_t want = io->wire.len;

		n = send(io->fd, io->wire.p + io->wire.off, want, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				io->wr_ready = false;
				return 0;
			}
			io->wire_err = errno;
			return -1;
		}
		buf_drop(&io->wire, (size_t)n, io->active);
		/* A short send means a full socket buffer: another would fail. */
		if ((size_t)n < want) {
			io->wr_ready = false;
			return 0;
		}
	}
	return 0;
}

static int
wire_bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct tls_io *io = BIO_get_data(b);
	size_t room;

	BIO_clear_retry_flags(b);
	*written = 0;
	if (len == 0)
		return 1;
	if (io->wire.len + len > io->wire.max) {
		if (wire_flush(io) < 0) {
			errno = io->wire_err;
			return 0;
		}
	}
	room = io->wire.max - io->wire.len;
	if (room == 0) {
		BIO_set_retry_write(b);
		return 0;
	}
	if (len > room)
		len = room;
	if (buf_reserve(&io->wire, len) != 0) {
		errno = ENOMEM;
		return 0;
	}
	memcpy(io->wire.p + io->wire.off + io->wire.len, data, len);
	io->wire.len += len;
	*written = len;
	return 1;
}

static long
wire_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_io *io = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		BIO_clear_retry_flags(b);
		if (wire_flush(io) < 0) {
			errno = io->wire_err;
			return -1;
		}
		if (io->wire.len > 0) {
			BIO_set_retry_write(b);
			return -1;
		}
		return 1;
	case BIO_CTRL_WPENDING:
		return (long)io->wire.len;
	default: /* push, pop, kTLS queries...: nothing to do, nothing supported */
		return 0;
	}
}

static int
wire_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *wire_method;

static void
wire_method_init(void)
{
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "stsproxy wire");
	if (m == NULL)
		return;
	if (BIO_meth_set_write_ex(m, wire_bio_write) != 1 ||
	    BIO_meth_set_ctrl(m, wire_bio_ctrl) != 1 ||
	    BIO_meth_set_create(m, wire_bio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	wire_method = m;
}

/* wire_bio - a write BIO appending to io->wire; NULL on failure. */
static BIO *
wire_bio(struct tls_io *io)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	(void)pthread_once(&once, wire_method_init);
	if (wire_method == NULL || (b = BIO_new(wire_method)) == NULL)
		return NULL;
	BIO_set_data(b, io);
	return b;
}

/*
 * ssl_result - classify a failed SSL_* call. Returns 0 and sets *want when
 * OpenSSL must wait for the socket, 1 when the peer closed, -1 on a fatal
 * error (the endpoint has failed).
 */
static int
ssl_result(struct tls_io *io, int ret, int *want)
{
	/* A failed send() in the wire BIO is the cause, whatever errno says now. */
	int err = io->wire_err != 0 ? io->wire_err : errno;
	unsigned long e;
	const char *reason;

	switch (SSL_get_error(io->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		*want = LOOP_READ;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want = LOOP_WRITE;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return 1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (err == 0)
				return 1;
			return io_fail_errno(io, "tls", err);
		}
		break;
	default:
		break;
	}
	e = ERR_peek_last_error();
	reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	return io_fail(io, "tls", reason != NULL ? reason : "protocol error");
}

/* tls_io_new - an endpoint owning a non-blocking fd */
struct tls_io *
tls_io_new(int fd, size_t in_max, size_t out_max)
{
	struct tls_io *io;
	int fl;

	if (fd < 0 || in_max == 0 || out_max == 0)
		goto fail;
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	if ((io = calloc(1, sizeof(*io))) == NULL)
		goto fail;
	io->fd = fd;
	io->in.max = in_max;
	io->out.max = out_max;
	io->wire.max = TLS_IO_WIRE_MAX;
	io->rd_want = LOOP_READ;
	io->wr_want = LOOP_WRITE;
	io->sd_want = LOOP_WRITE;
	io->rd_ready = true;
	io->wr_ready = true;
	return io;
fail:
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* tls_io_free - release everything the endpoint owns */
void
tls_io_free(struct tls_io *io)
{
	if (io == NULL)
		return;
	SSL_free(io->ssl);
	close(io->fd);
	buf_release(&io->in);
	buf_release(&io->out);
	buf_release(&io->wire);
	free(io);
}

/* tls_io_fd - the socket, still owned by the endpoint */
int
tls_io_fd(const struct tls_io *io)
{
	return io->fd;
}

/* is_ip_literal - an address is never sent as SNI (RFC 6066 section 3). */
static bool
is_ip_literal(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/*
 * io_release_mode - let OpenSSL free its record buffers whenever they empty
 * (idle: memory matters) or keep them (active: each free and re-allocation
 * of ~17 KiB per record was the allocator churn of the data path).
 */
static void
io_release_mode(SSL *ssl, bool release)
{
	if (release)
		SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	else
		SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
}

/* tls_io_start_tls - arm a handshake; refuse when plaintext is buffered */
int
tls_io_start_tls(struct tls_io *io, SSL_CTX *ctx, bool server, const char *sni)
{
	BIO *rbio, *wbio;
	SSL *ssl;

	/* RFC 3207 section 5: nothing received in clear may be kept past STARTTLS. */
	if (io->in.len > 0)
		return -1;
	if (io->state != IO_PLAIN || io->failed || io->shut_req || io->peer_closed)
		return -1;
	ERR_clear_error();
	if ((ssl = SSL_new(ctx)) == NULL)
		return io_fail(io, "tls", "SSL_new failed");
	if ((rbio = BIO_new_socket(io->fd, BIO_NOCLOSE)) == NULL || (wbio = wire_bio(io)) == NULL) {
		BIO_free(rbio);
		SSL_free(ssl);
		return io_fail(io, "tls", "BIO_new failed");
	}
	SSL_set_bio(ssl, rbio, wbio);
	/*
	 * SMTP servers often close after QUIT without close_notify; the SMTP
	 * dialogue itself shows a truncation (no final reply), so a missing
	 * close_notify is an ordinary end of input, not an error.
	 */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/*
	 * Read as many records as the socket holds in one read() rather than a
	 * header and a body per record. Everything after STARTTLS is TLS, so no
	 * plaintext can be swallowed; io_read calls SSL_read until it wants
	 * more, so records buffered inside OpenSSL are never left waiting.
	 */
	SSL_set_read_ahead(ssl, 1);
	io_release_mode(ssl, !io->active);
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		if (sni != NULL && sni[0] != '\0' && !is_ip_literal(sni) &&
		    SSL_set_tlsext_host_name(ssl, sni) != 1) {
			SSL_free(ssl);
			return io_fail(io, "tls", "bad SNI host name");
		}
		SSL_set_connect_state(ssl);
	}
	io->ssl = ssl;
	io->plain_left = io->out.len;
	io->state = io->plain_left > 0 ? IO_TLS_PENDING : IO_HANDSHAKE;
	io->hs_want = server ? LOOP_READ : LOOP_WRITE;
	return 0;
}

/*
 * io_ack_now - acknowledge what was just read at once instead of after the
 * delayed-ACK timer (40 ms and more). A peer with Nagle's algorithm on (most
 * MTAs) holds its next small write until everything it sent is
 * acknowledged: Postfix sends its TLS 1.3 session tickets right after the
 * handshake, then the EHLO reply, and that reply sat in its socket until
 * our delayed ACK for the tickets went out. When we have nothing to send,
 * no data segment would carry the ACK early.
 */
static void
io_ack_now(struct tls_io *io)
{
	int one = 1;

	if (io->no_quickack)
		return;
	/* Not TCP (a socketpair): nothing to acknowledge, do not ask again. */
	if (setsockopt(io->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) < 0)
		io->no_quickack = true;
}

/*
 * io_read - read until EAGAIN, a full buffer or the end; -1 on failure, else
 * bytes read. An active endpoint reads straight into its input buffer; an
 * idle one reads into the stack first, so that a wake-up with nothing to
 * read allocates nothing and a short line allocates little. Records that
 * carry no application data (TLS 1.3 session tickets, key updates) are
 * consumed too: SSL_read only reports WANT_READ once the socket itself is
 * drained, so nothing stays behind in OpenSSL waiting for another event.
 */
static long
io_read(struct tls_io *io)
{
	BIO *rbio = io->ssl != NULL ? SSL_get_rbio(io->ssl) : NULL;
	uint64_t wire0 = rbio != NULL ? BIO_number_read(rbio) : 0;
	bool wire = false, drained = false;
	char chunk[IO_CHUNK];
	size_t room, got;
	long total = 0;
	char *dst;
	ssize_t n;
	int r;

	if (io->tracked && !io->rd_ready)
		return 0;
	while (!io->peer_closed && io->in.len < io->in.max) {
		/*
		 * Plaintext is read in as large a piece as the buffer allows (one
		 * system call per window of message data); SSL_read gives one
		 * record at most anyway.
		 */
		room = io->in.max - io->in.len;
		if (io->active || io->in.cap - io->in.off - io->in.len >= room) {
			if (buf_reserve(&io->in, room) != 0)
				return io_fail(io, "out of memory", NULL);
			dst = io->in.p + io->in.off + io->in.len;
		} else {
			if (room > IO_CHUNK)
				room = IO_CHUNK;
			dst = chunk;
		}
		if (io->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			r = SSL_read_ex(io->ssl, dst, room, &got);
			if (r != 1) {
				r = ssl_result(io, r, &io->rd_want);
				if (r < 0)
					return -1;
				if (r > 0)
					io->peer_closed = true;
				else
					drained = io->rd_want == LOOP_READ;
				break;
			}
			io->rd_want = LOOP_READ;
		} else {
			n = recv(io->fd, dst, room, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					drained = true;
					break;
				}
				return io_fail_errno(io, "recv", errno);
			}
			if (n == 0) {
				io->peer_closed = true;
				break;
			}
			got = (size_t)n;
			wire = true;
		}
		if (dst == chunk) {
			if (buf_reserve(&io->in, got) != 0)
				return io_fail(io, "out of memory", NULL);
			memcpy(io->in.p + io->in.off + io->in.len, chunk, got);
		}
		io->in.len += got;
		total += (long)got;
		/*
		 * A short read of a stream socket emptied it: with the loop
		 * reporting readiness, the next bytes (or the end) bring an
		 * event, so the read that would fail with EAGAIN is skipped.
		 */
		if (io->ssl == NULL && io->tracked && got < room) {
			drained = true;
			break;
		}
	}
	if (rbio != NULL)
		wire = BIO_number_read(rbio) != wire0;
	if (drained)
		io->rd_ready = false;
	if (wire && drained && io->out.len == 0 && io->wire.len == 0)
		io_ack_now(io);
	return total;
}

/* io_write - send up to limit queued bytes; -1 on failure, else bytes sent. */
static long
io_write(struct tls_io *io, size_t limit, bool clear)
{
	long total = 0;
	size_t done;
	ssize_t n;
	int r;

	while (limit > 0) {
		if (clear) {
			n = send(io->fd, io->out.p + io->out.off, limit, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				return io_fail_errno(io, "send", errno);
			}
			done = (size_t)n;
		} else {
			ERR_clear_error();
			errno = 0;
			r = SSL_write_ex(io->ssl, io->out.p + io->out.off, limit, &done);
			if (r != 1) {
				r = ssl_result(io, r, &io->wr_want);
				if (r < 0)
					return -1;
				if (r > 0) /* the peer closed both ways */
					return io_fail(io, "reset", NULL);
				break;
			}
			io->wr_want = LOOP_WRITE;
		}
		buf_drop(&io->out, done, io->active);
		limit -= done;
		total += (long)done;
	}
	return total;
}

/*
 * io_close_write - TLS close_notify, then the socket's sending side; <0, 0,
 * >0 as the pump. The close_notify must be on the wire before the FIN.
 */
static int
io_close_write(struct tls_io *io)
{
	int r;

	if (io->state == IO_TLS && !io->notify_sent) {
		ERR_clear_error();
		errno = 0;
		r = SSL_shutdown(io->ssl);
		if (r < 0) {
			r = ssl_result(io, r, &io->sd_want);
			if (r < 0)
				return -1;
			if (r == 0)
				return 0;
		}
		io->notify_sent = true;
	}
	if (wire_flush(io) < 0)
		return io_fail_errno(io, "send", io->wire_err);
	if (io->wire.len > 0) {
		io->sd_want = LOOP_WRITE;
		return 0;
	}
	/* The peer may be gone already; the close is done either way. */
	shutdown(io->fd, SHUT_WR);
	io->shut_done = true;
	return 1;
}

/* tls_io_pump - the strategy function run after every event */
int
tls_io_pump(struct tls_io *io)
{
	int progress = 0, r;
	bool was_closed = io->peer_closed;
	long n;

	if (io->failed)
		return -1;
	if (io->state == IO_TLS_PENDING) {
		if ((n = io_write(io, io->plain_left, true)) < 0)
			return -1;
		io->plain_left -= (size_t)n;
		progress |= n > 0;
		if (io->plain_left > 0)
			return progress;
		io->state = IO_HANDSHAKE;
	}
	if (io->state == IO_HANDSHAKE) {
		ERR_clear_error();
		errno = 0;
		r = SSL_do_handshake(io->ssl);
		if (r != 1) {
			r = ssl_result(io, r, &io->hs_want);
			if (r < 0)
				return -1;
			if (r > 0)
				return io_fail(io, "tls", "connection closed during handshake");
			return progress;
		}
		io->state = IO_TLS;
		/* The handshake's last read may have left records in the socket. */
		io->rd_ready = true;
		progress = 1;
	}
	if ((n = io_read(io)) < 0)
		return -1;
	progress |= n > 0 || io->peer_closed != was_closed;
	if (io->out.len > 0) {
		if ((n = io_write(io, io->out.len, io->ssl == NULL)) < 0)
			return -1;
		progress |= n > 0;
	}
	if (io->shut_req && !io->shut_done && io->out.len == 0) {
		if ((r = io_close_write(io)) < 0)
			return -1;
		progress |= r;
	}
	/* Whatever OpenSSL wrote in this pump (records, a handshake flight) goes now. */
	if (io->wire.len > 0) {
		size_t before = io->wire.len;

		if (wire_flush(io) < 0)
			return io_fail_errno(io, "send", io->wire_err);
		progress |= io->wire.len < before;
	}
	if (io->peer_closed && io->in.len == 0 && io->out.len == 0 && io->wire.len == 0)
		return io_fail(io, "eof", NULL);
	return progress;
}

/* tls_io_error - why the endpoint failed, or "" */
const char *
tls_io_error(const struct tls_io *io)
{
	return io->failed ? io->err : "";
}

/* tls_io_events - loop events the pump waits for now */
int
tls_io_events(const struct tls_io *io)
{
	int ev = 0;

	if (io->failed)
		return 0;
	switch (io->state) {
	case IO_TLS_PENDING:
		return LOOP_WRITE;
	case IO_HANDSHAKE:
		return io->hs_want | (io->wire.len > 0 ? LOOP_WRITE : 0);
	case IO_PLAIN:
	case IO_TLS:
		break;
	}
	if (!io->peer_closed && io->in.len < io->in.max)
		ev |= io->ssl != NULL ? io->rd_want : LOOP_READ;
	if (io->out.len > 0)
		ev |= io->ssl != NULL ? io->wr_want : LOOP_WRITE;
	else if (io->shut_req && !io->shut_done)
		ev |= io->sd_want;
	if (io->wire.len > 0)
		ev |= LOOP_WRITE;
	return ev;
}

/* tls_io_eof - peer closed and all input consumed */
bool
tls_io_eof(const struct tls_io *io)
{
	return io->peer_closed && io->in.len == 0;
}

/* tls_io_is_tls - TLS was started */
bool
tls_io_is_tls(const struct tls_io *io)
{
	return io->ssl != NULL;
}

/* tls_io_handshake_done - TLS is up */
bool
tls_io_handshake_done(const struct tls_io *io)
{
	return io->state == IO_TLS;
}

/* tls_io_ssl - the TLS session, or NULL */
SSL *
tls_io_ssl(const struct tls_io *io)
{
	return io->ssl;
}

/* tls_io_in - the buffered input */
const char *
tls_io_in(const struct tls_io *io, size_t *len)
{
	*len = io->in.len;
	return io->in.len > 0 ? io->in.p + io->in.off : NULL;
}

/* tls_io_consume - drop consumed input */
void
tls_io_consume(struct tls_io *io, size_t n)
{
	buf_drop(&io->in, n < io->in.len ? n : io->in.len, io->active);
}

/* tls_io_line - the first complete line, or a flagged remainder */
const char *
tls_io_line(const struct tls_io *io, size_t *len, int *flags)
{
	const char *p, *lf;

	if (flags != NULL)
		*flags = 0;
	*len = 0;
	if (io->in.len == 0)
		return NULL;
	p = io->in.p + io->in.off;
	if ((lf = memchr(p, '\n', io->in.len)) != NULL) {
		*len = (size_t)(lf - p) + 1;
		return p;
	}
	if (io->in.len >= io->in.max) {
		if (flags != NULL)
			*flags = TLS_IO_LINE_TOO_LONG;
	} else if (io->peer_closed) {
		if (flags != NULL)
			*flags = TLS_IO_LINE_NO_EOL;
	} else {
		return NULL;
	}
	*len = io->in.len;
	return p;
}

/* tls_io_write - queue output within out_max */
int
tls_io_write(struct tls_io *io, const void *buf, size_t len)
{
	if (io->failed || io->shut_req)
		return -1;
	if (len == 0)
		return 0;
	if (buf_reserve(&io->out, len) != 0)
		return -1;
	memcpy(io->out.p + io->out.off + io->out.len, buf, len);
	io->out.len += len;
	return 0;
}

/* tls_io_out_pending - bytes queued, not yet sent */
size_t
tls_io_out_pending(const struct tls_io *io)
{
	return io->out.len + io->wire.len;
}

/* tls_io_out_space - room left in the output buffer */
size_t
tls_io_out_space(const struct tls_io *io)
{
	if (io->failed || io->shut_req)
		return 0;
	return io->out.max - io->out.len;
}

/* tls_io_shutdown - request a graceful close after the flush */
void
tls_io_shutdown(struct tls_io *io)
{
	io->shut_req = true;
}

/* tls_io_shutdown_done - the graceful close is complete */
bool
tls_io_shutdown_done(const struct tls_io *io)
{
	return io->shut_done;
}

/* tls_io_events_seen - the loop's events for the socket; readiness is tracked from now on */
void
tls_io_events_seen(struct tls_io *io, int events)
{
	/* From the first report on, only the loop says the socket is readable. */
	if (!io->tracked)
		io->rd_ready = false;
	io->tracked = true;
	if (events & LOOP_READ)
		io->rd_ready = true;
	if (events & LOOP_WRITE)
		io->wr_ready = true;
}

/* tls_io_set_in_max - a new bound on buffered input */
int
tls_io_set_in_max(struct tls_io *io, size_t in_max)
{
	if (in_max == 0)
		return -1;
	io->in.max = in_max;
	/* An empty buffer larger than the new bound goes; the next read sizes it. */
	if (io->in.len == 0 && io->in.cap > in_max)
		buf_release(&io->in);
	return 0;
}

/* tls_io_set_active - keep buffers while busy; release them when idle */
void
tls_io_set_active(struct tls_io *io, bool active)
{
	if (io->active == active)
		return;
	io->active = active;
	if (io->ssl != NULL)
		io_release_mode(io->ssl, !active);
	if (active)
		return;
	if (io->in.len == 0)
		buf_release(&io->in);
	if (io->out.len == 0)
		buf_release(&io->out);
	if (io->wire.len == 0)
		buf_release(&io->wire);
	/* Refused (harmlessly) while a record is half read or written. */
	if (io->ssl != NULL && io->state == IO_TLS)
		(void)SSL_free_buffers(io->ssl);
}

/* tls_io_memory - buffer bytes held now */
size_t
tls_io_memory(const struct tls_io *io)
{
	return io->in.cap + io->out.cap + io->wire.cap;
}
