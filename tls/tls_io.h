/*
 * tls_io.h - one endpoint of a proxied connection: a non-blocking socket,
 * an optional TLS session on it, a bounded input buffer and a bounded output
 * buffer, and the TLS pump.
 *
 * The pump is one strategy function, run by the owner after every loop
 * event on the endpoint (and after it consumed input or queued output): it
 * does whatever can be done now - the next handshake step, reading until
 * EAGAIN or a full input buffer, flushing the output buffer, the closing
 * handshake - and tls_io_events() then says which loop events to wait for.
 * OpenSSL may need to read in order to write and the reverse; the pump hides
 * that. Nothing here registers with the loop or logs: the owner does both.
 *
 * Ownership: the endpoint owns the fd (closed by tls_io_free()), its SSL
 * (created by tls_io_start_tls(), freed by tls_io_free()) and its buffers.
 * The SSL_CTX is the caller's and must outlive the endpoint. Pointers
 * returned by tls_io_in() and tls_io_line() are valid until the next call
 * of tls_io_pump(), tls_io_consume() or tls_io_free().
 *
 * Memory: buffers are allocated when bytes arrive or are queued and grow up
 * to their maximum. An endpoint starts idle: a buffer is released as soon as
 * it is empty, so it holds no buffer memory between exchanges (OpenSSL's
 * record buffers are released too, SSL_MODE_RELEASE_BUFFERS). While the
 * owner marks it active (tls_io_set_active), emptied buffers - its own and
 * OpenSSL's - are kept and reused, so relaying a message does not allocate
 * and free per read, per write or per TLS record.
 *
 * Acknowledgements: when a read drained the socket and nothing is queued to
 * send, the pump asks the kernel to acknowledge at once (TCP_QUICKACK), so
 * a peer running Nagle's algorithm never waits for our delayed ACK before
 * its next reply (see tls_io.c, io_ack_now).
 *
 * Sending: TLS records are gathered in a third buffer (the wire, with the
 * same idle and active rules) and sent in batches of up to TLS_IO_WIRE_MAX
 * octets: one send() per window of message data rather than one per 16 KiB
 * record. Whatever a pump produced is sent before it returns, as far as the
 * socket takes it. Every send() uses MSG_NOSIGNAL.
 */
#ifndef STS_TLS_IO_H
#define STS_TLS_IO_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_io;

/* TLS records gathered for one send(); an endpoint holds in_max + out_max + this at most. */
#define TLS_IO_WIRE_MAX 65536

/* Flags set by tls_io_line(). */
enum {
	TLS_IO_LINE_TOO_LONG = 1, /* in_max bytes and no LF: the caller answers 500 */
	TLS_IO_LINE_NO_EOL = 2,   /* the peer closed after this unterminated rest */
};

/*
 * tls_io_new - an endpoint on fd (made non-blocking here). in_max and
 * out_max bound the buffers (both > 0). Takes ownership of fd, also on
 * failure (it is closed). Returns NULL on allocation failure.
 */
struct tls_io *tls_io_new(int fd, size_t in_max, size_t out_max);

/* tls_io_free - SSL_free(), close(fd), free the buffers; NULL is a no-op. */
void tls_io_free(struct tls_io *io);

/* tls_io_fd - the socket, for loop registration; the endpoint still owns it. */
int tls_io_fd(const struct tls_io *io);

/*
 * tls_io_start_tls - begin a TLS handshake as server or client; the next
 * tls_io_pump() calls flush the plaintext already queued (e.g. the "220
 * ready" answer to STARTTLS) and then run the handshake. Output queued from
 * now on is encrypted. sni is sent by a client when not NULL and not an
 * IP literal.
 *
 * Returns -1 without changing anything when the input buffer is not empty:
 * bytes received before the handshake were sent in plaintext and would be
 * taken as protected (RFC 3207 section 5, CVE-2011-0411); the caller
 * reports the injection attempt and closes. Also -1 when TLS was already
 * started, after an error or shutdown, or when OpenSSL fails (tls_io_error()
 * then says why). 0 on success.
 */
int tls_io_start_tls(struct tls_io *io, SSL_CTX *ctx, bool server, const char *sni);

/*
 * tls_io_pump - do whatever can be done now without blocking.
 * Returns >0 when something progressed (bytes moved, a handshake step or
 * the shutdown advanced), 0 when nothing could be done, <0 on a fatal error
 * or when the peer closed and nothing is left to read or write; after that
 * every pump returns <0 and tls_io_error() says why: "eof", "reset",
 * "tls: <OpenSSL reason>" or "<syscall>: <strerror>". ("timeout" is the
 * caller's, which owns the timers.)
 * Call it again after consuming input from a full buffer: OpenSSL may hold
 * decrypted bytes that the socket will not signal again.
 */
int tls_io_pump(struct tls_io *io);

/* tls_io_error - why the endpoint failed; "" while it has not. Never NULL. */
const char *tls_io_error(const struct tls_io *io);

/*
 * tls_io_events - the LOOP_READ/LOOP_WRITE mask (core/loop.h) the pump waits
 * for now: it follows OpenSSL's wants (SSL_ERROR_WANT_READ during a write
 * and the reverse), stops reading while the input buffer is full
 * (backpressure) and after the peer closed. 0 after a failure.
 */
int tls_io_events(const struct tls_io *io);

/* tls_io_eof - the peer closed and the caller consumed all buffered input. */
bool tls_io_eof(const struct tls_io *io);

/* tls_io_is_tls - tls_io_start_tls() succeeded (the handshake may still be running). */
bool tls_io_is_tls(const struct tls_io *io);

/* tls_io_handshake_done - the TLS handshake completed. */
bool tls_io_handshake_done(const struct tls_io *io);

/* tls_io_ssl - the TLS session or NULL; owned by the endpoint. */
SSL *tls_io_ssl(const struct tls_io *io);

/* tls_io_in - the buffered input (*len bytes; NULL when empty). */
const char *tls_io_in(const struct tls_io *io, size_t *len);

/* tls_io_consume - drop the first n buffered input bytes (n larger than held: all). */
void tls_io_consume(struct tls_io *io, size_t n);

/*
 * tls_io_line - the first complete line of the input, ending in LF (*len
 * counts the line end), or NULL when there is none yet. *flags (when not
 * NULL) is set to 0 or: TLS_IO_LINE_TOO_LONG when the full buffer holds no
 * LF (the whole buffer is returned; the line exceeds in_max), or
 * TLS_IO_LINE_NO_EOL when the peer closed after an unterminated rest (the
 * rest is returned). The caller consumes what it was given.
 */
const char *tls_io_line(const struct tls_io *io, size_t *len, int *flags);

/*
 * tls_io_write - queue len bytes for sending. Returns 0, or -1 (nothing
 * queued) when they would exceed out_max, after a failure or once shutdown
 * was requested. Check tls_io_out_space() to apply backpressure to the
 * other side.
 */
int tls_io_write(struct tls_io *io, const void *buf, size_t len);

/*
 * tls_io_out_pending - octets not yet handed to the kernel: queued output,
 * and TLS records OpenSSL wrote that wait to be sent in one batch.
 */
size_t tls_io_out_pending(const struct tls_io *io);

/* tls_io_out_space - how many more bytes tls_io_write() accepts now. */
size_t tls_io_out_space(const struct tls_io *io);

/*
 * tls_io_shutdown - close gracefully: the pump flushes the output, sends
 * the TLS close_notify when TLS is up, then shuts down the sending side of
 * the socket. tls_io_shutdown_done() says when that is finished; the
 * caller then frees the endpoint (or lets its timer do it).
 */
void tls_io_shutdown(struct tls_io *io);

/* tls_io_shutdown_done - the shutdown requested above is complete. */
bool tls_io_shutdown_done(const struct tls_io *io);

/*
 * tls_io_set_active - active: emptied buffers (the endpoint's and OpenSSL's
 * record buffers) are kept for the next bytes. Inactive (the initial
 * state): empty buffers are released now and whenever they empty later.
 * The owner marks an endpoint inactive while the session waits for its
 * peer's next command, active while a command or message is in flight.
 */
void tls_io_set_active(struct tls_io *io, bool active);

/*
 * tls_io_events_seen - the owner's loop reported events (LOOP_READ,
 * LOOP_WRITE, or 0 to start tracking before any event) on the endpoint's
 * socket. From the first call on, a pump reads only if the socket was
 * reported readable since that call or since a read last found it empty;
 * a session that pumps both legs after an event on either one then spends
 * no system call on the quiet leg. Likewise, once a send found
 * the socket full, batched TLS records wait until it is reported writable.
 * An endpoint never told reads and sends on every pump.
 */
void tls_io_events_seen(struct tls_io *io, int events);

/*
 * tls_io_set_in_max - bound buffered input by in_max octets from now on
 * (more may be buffered already; reading stops until it is consumed below
 * the bound). A line reader keeps the bound of the longest line; a
 * stream of message data reads in larger windows, fewer system calls.
 * Returns 0, or -1 for in_max 0 (nothing changed).
 */
int tls_io_set_in_max(struct tls_io *io, size_t in_max);

/*
 * tls_io_memory - bytes of buffer memory the endpoint holds now (0 when it
 * is inactive and both buffers are empty; OpenSSL's buffers not counted).
 */
size_t tls_io_memory(const struct tls_io *io);

#endif
