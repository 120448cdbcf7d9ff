/*
 * onereq.h - a server of one request per connection, on a core/loop.
 *
 * The metrics endpoint and the control socket speak different protocols
 * over the same small exchange: accept, read one bounded request, write one
 * answer, close. This module is that exchange; its owner keeps the protocol
 * (when a request is complete, what to answer) and the listening socket.
 *
 * A connection goes through three steps, all bounded by one timer:
 *
 *   read    octets are buffered, at most request_max of them; after each
 *           read complete() says whether the request is whole. A request
 *           that is whole, or that fills the buffer first, goes to answer().
 *   write   the answer is written out.
 *   finish  ONEREQ_CLOSE: what the peer sent beyond its request (at most
 *           8 KiB of it, without waiting) is read, then the connection is
 *           closed. ONEREQ_LINGER: our side is shut down and the connection
 *           is read until the peer closes it. Either way the kernel does not
 *           answer unread input with a reset that could overtake the answer.
 *
 * A connection is closed without an answer when the timer fires, when the
 * peer closes before its request is complete, on a socket error, and when
 * answer() gives none. Such closes are not errors of the server: they are
 * logged at debug level at most, and the server goes on.
 *
 * Ownership: the owner creates, binds and closes the listening socket; the
 * server registers it in the loop and removes it in onereq_stop(). The
 * server owns every accepted connection and closes it itself.
 */
#ifndef STS_ONEREQ_H
#define STS_ONEREQ_H

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct onereq;

/* What happens once the answer is written. */
enum onereq_finish {
	ONEREQ_CLOSE = 0, /* read what is already there (8 KiB at most), then close */
	ONEREQ_LINGER, /* shutdown(SHUT_WR), then read until the peer closes or the timer fires */
};

/* One request, as answer() sees it. */
struct onereq_request {
	char *buf;     /* the octets read, buf[len] == '\0'; answer() may change buf[0..len] */
	size_t len;    /* at most request_max */
	bool too_long; /* request_max octets arrived and complete() never said yes */
	int tag;       /* what accepted() returned for this connection, 0 without it */
};

/*
 * onereq_complete_fn - whether buf[0..len) is a whole request. Called after
 * every read that brought octets (eof false), and once when the peer has
 * closed its side (eof true, len may then be 0): false then closes the
 * connection without an answer. Must not keep buf.
 */
typedef bool onereq_complete_fn(const char *buf, size_t len, bool eof);

/*
 * onereq_answer_fn - the answer to req: 0 with *out a malloc'ed buffer of
 * *out_len octets, which the server then owns and frees; or -1 to close the
 * connection without an answer (the callback logs why, if it matters).
 * Called once per connection at most, never from inside onereq_start().
 */
typedef int onereq_answer_fn(void *arg, struct onereq_request *req, char **out, size_t *out_len);

/*
 * onereq_accepted_fn - a connection was accepted on fd and is counted and
 * timed; look at it (getsockopt(), not read, write or close). The return
 * value is the connection's tag, handed back in its onereq_request and not
 * interpreted by the server.
 */
typedef int onereq_accepted_fn(void *arg, int fd);

struct onereq_params {
	struct loop *loop;
	int fd;               /* listening, non-blocking; never closed by the server */
	size_t request_max;   /* octets buffered per connection, > 0 */
	unsigned max_clients; /* connections served at once, > 0 */
	unsigned timeout_ms;  /* per connection, the whole exchange, > 0 */
	enum onereq_finish finish;
	/*
	 * Written (one send(2), no waiting, best effort) to a connection beyond
	 * max_clients before it is closed; NULL closes it without a word. The
	 * server keeps its own copy.
	 */
	const char *busy_answer;
	size_t busy_len;
	onereq_complete_fn *complete; /* required */
	onereq_answer_fn *answer;     /* required */
	onereq_accepted_fn *accepted; /* optional */
	void *arg;                    /* passed to answer() and accepted() */
	/* Event names of the server's debug log lines, kept by pointer; NULL: "onereq_...". */
	const char *ev_timeout;       /* a connection closed by its timer */
	const char *ev_accept_failed; /* accept(2) failed (other than EAGAIN) */
};

/*
 * onereq_start - serve the listening socket p->fd on p->loop. Returns the
 * server, or NULL with errno set: EINVAL for missing or zero parameters,
 * ENOMEM, or the loop's error when the socket cannot be registered. No
 * callback runs from inside this call. Stop with onereq_stop().
 */
struct onereq *onereq_start(const struct onereq_params *p);

/* onereq_clients - connections currently open (accepted and not yet closed); 0 for NULL. */
unsigned onereq_clients(const struct onereq *s);

/*
 * onereq_stop - close every connection (without an answer), cancel their
 * timers, remove the listening socket from the loop (it stays open), free
 * everything; NULL is a no-op. Call from the loop's thread, never from
 * inside one of the server's callbacks.
 */
void onereq_stop(struct onereq *s);

#endif
