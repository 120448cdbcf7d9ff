/*
 * upstream.h - the upstream leg of a proxied session: one connection at a
 * time to the original destination MX, its set-up dialogue (banner, EHLO,
 * STARTTLS, TLS handshake, EHLO again) and, once ready, the replies to
 * what the relay sends.
 *
 * Everything learnt about a connection - its phase, capabilities, banner
 * name, a mangled STARTTLS line, its TLS facts - belongs to that
 * connection and is forgotten with it: a reconnect starts with nothing.
 * The security of the leg is asked of the live connection at the moment
 * of a decision (upstream_tls()), never remembered beside it.
 *
 * A TLS handshake that fails before it completes is followed by one
 * reconnect without STARTTLS (plaintext fallback, reported as a downgrade
 * event); that connection is plaintext and says why (upstream_fallback_cause).
 * A connection lost after its handshake completed is a lost upstream,
 * never a failed handshake.
 *
 * Reuse (upstream_pool.h): at the client's QUIT a clean verified
 * connection may be parked instead of closed (upstream_release()); the
 * next session of the same client to the same destination takes it in
 * upstream_connect(), sends RSET at once and replays its banner; once the
 * client greets with the same EHLO name and the RSET is answered 250, the
 * connection's EHLO reply is replayed. Any failure before that 250 (the MX closed, a 421, another
 * name) is a quiet reconnect: the session sees the set-up of a new
 * connection and nothing was acknowledged on the old one. A failure after
 * that 250 but before a reply of the connection became part of the
 * mailer's transaction (an MX that limits messages per connection says
 * 421 to the next MAIL) is offered to the session (UPN_RETRY), which may
 * move to a new connection once per session (upstream_retry()).
 *
 * The upstream tells its session what happened through one callback
 * (struct upstream_params.note); the session owns the upstream and frees
 * it with upstream_free(). Single-threaded: the session's loop only.
 */
#ifndef STS_UPSTREAM_H
#define STS_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/conf.h"
#include "core/loop.h"
#include "proxy/relay_events.h"
#include "proxy/smtp_reply.h"
#include "tls/tls_verify.h"

struct upstream;

/* The phase of the current connection. */
enum upstream_phase {
	UP_CLOSED = 0, /* no connection */
	UP_CONNECT,    /* TCP connect running */
	UP_BANNER,     /* waiting for the banner */
	UP_IDLE,       /* banner 220 relayed; waiting for the client's EHLO name */
	UP_EHLO,       /* our EHLO sent */
	UP_HELO,       /* EHLO refused: our HELO sent */
	UP_STARTTLS,   /* our STARTTLS sent */
	UP_HANDSHAKE,  /* TLS handshake running */
	UP_EHLO_TLS,   /* EHLO again over TLS */
	UP_READY,      /* set up: relaying the client's commands */
	UP_RSET,       /* a reused connection: our RSET sent, its 250 awaited */
	UP_PHASE_MAX
};

/* What the upstream tells its session. */
enum upstream_note {
	/* The first connection's banner, r: the client gets it as it is. The
	 * phase is UP_IDLE after a 220, otherwise UP_READY (a refusing server
	 * that still takes commands; after a 421 the session closes). */
	UPN_BANNER = 0,
	/* An EHLO or HELO reply r of the set-up; the client's EHLO reply is
	 * made from the last one before UPN_READY. */
	UPN_EHLO,
	/* The set-up finished: the phase is UP_READY. */
	UPN_READY,
	/* A set-up step was refused with r (not 421): the client gets r and
	 * may greet again; the phase is UP_IDLE. */
	UPN_REFUSED,
	/* A reply r to a command sent with upstream_command(), in order. */
	UPN_REPLY,
	/* A reply r that answers nothing sent. The connection stays open:
	 * the session decides (a 421 is a server closing). */
	UPN_UNSOLICITED,
	/* The connection is gone (UP_CLOSED); final is the reply the client
	 * gets ("421 4.4.2 ...\r\n"). */
	UPN_LOST,
	/* The loop reported events on the connection: run the session. */
	UPN_IO,
	/* A connection taken from the pool answered its RSET with 250, then
	 * failed (a 421, a close, an error: final is why) while
	 * upstream_retry_open(). The session may carry its pending commands
	 * over to a new connection by calling upstream_retry() from this
	 * note; otherwise the failure goes on as on any connection
	 * (UPN_REPLY or UPN_UNSOLICITED with the 421, or UPN_LOST). */
	UPN_RETRY,
	/* The connection upstream_retry() opened is set up (UP_READY); no
	 * banner or EHLO reply of it was noted: the mailer has its own. */
	UPN_RESUMED,
};

/*
 * upstream_note_cb - r is valid only during the call (NULL for UPN_READY and
 * UPN_LOST); final only for UPN_LOST. The callback may call any upstream_*
 * function, upstream_close() included, but not upstream_free().
 */
typedef void upstream_note_cb(void *arg, enum upstream_note note, const struct smtp_reply *r,
                              const char *final);

/* upstream_event_cb - emit ev after adding the session's part (id, client, dest). */
typedef void upstream_event_cb(void *arg, struct relay_event *ev);

struct upstream_params {
	struct loop *loop;
	const struct conf *conf; /* max_line, upstream_mark; outlives the upstream */
	SSL_CTX *tls;            /* client context toward MX hosts; not owned */
	const struct sockaddr *dst;
	socklen_t dst_len;
	const char *sid; /* session id, for log lines; copied */
	/* Counters of upgraded and resumed connections (may be NULL). */
	_Atomic uint64_t *tls_count;
	_Atomic uint64_t *tls_resumed;
	upstream_note_cb *note;
	upstream_event_cb *event;
	void *arg;
	/* Idle verified connections of this loop; NULL: no reuse. Not owned. */
	struct upstream_pool *pool;
	const char *client; /* the client's address text (pool identity); copied */
};

/* upstream_new - an upstream with no connection yet; NULL on no memory. */
struct upstream *upstream_new(const struct upstream_params *p);

/* upstream_free - close the connection and free; NULL is a no-op. No note fires. */
void upstream_free(struct upstream *u);

/*
 * upstream_connect - start the first connection (non-blocking), or take a
 * parked one of the same client and destination (upstream_reused() is then
 * true and the banner replay comes from the next upstream_run()). 0, or -1
 * when it failed at once (the phase stays UP_CLOSED; no note fires).
 */
int upstream_connect(struct upstream *u);

/* upstream_reused - the current connection came from the pool. */
bool upstream_reused(const struct upstream *u);

/*
 * upstream_retry - only from a UPN_RETRY note: close the failed reused
 * connection (never parked) and open a new one, set up quietly for the
 * client's EHLO name (connect, STARTTLS, handshake, EHLO); UPN_RESUMED
 * follows, or UPN_LOST. 0, or -1 when the connect failed at once (the
 * phase is then UP_CLOSED; no note fires).
 */
int upstream_retry(struct upstream *u);

/*
 * upstream_retry_open - a failure of the connection now would be offered
 * to the session (UPN_RETRY): it came from the pool, answered its RSET
 * with 250, upstream_retry_end() was not called since, and no retry was
 * made yet.
 */
bool upstream_retry_open(const struct upstream *u);

/*
 * upstream_retry_end - a reply of the connection became part of what the
 * mailer was told of its transaction (a refused MAIL, a recipient's
 * reply, DATA's, the final dot's): a failure is no longer offered.
 */
void upstream_retry_end(struct upstream *u);

/*
 * upstream_awaits_greeting - the client's EHLO/HELO sets the connection up
 * (upstream_greet): a new connection whose banner was 220, or one taken
 * from the pool whose client has not greeted yet.
 */
bool upstream_awaits_greeting(const struct upstream *u);

/*
 * upstream_may_park - the client's QUIT may be answered locally because
 * the connection is a candidate for the pool (a pool, and a verified-leg
 * TLS connection or a clean one taken from the pool); upstream_release()
 * makes the final decision.
 */
bool upstream_may_park(const struct upstream *u);

/*
 * upstream_release - the client quit: park the connection in the pool when
 * clean (no envelope open: open false; ready, TLS completed, a 220 banner,
 * at least one message acknowledged and fewer than
 * upstream.reuse_max_messages, last reply 2xx, nothing due, buffered or
 * pending, never in doubt), else QUIT and close. No note fires; the phase
 * is UP_CLOSED after. Returns true when parked.
 */
bool upstream_release(struct upstream *u, bool open);

/* upstream_message_done - the MX acknowledged a message (2xx to the final dot). */
void upstream_message_done(struct upstream *u);

/*
 * upstream_greet - in UP_IDLE: set up the connection for a client that
 * greeted with name (EHLO is always sent, whatever the client said).
 * name is copied (at most 255 octets). UPN_EHLO ... UPN_READY follow, or
 * UPN_REFUSED, UPN_LOST.
 */
void upstream_greet(struct upstream *u, const char *name, size_t len);

/*
 * upstream_run - pump the connection and act on what arrived, firing
 * notes. Returns >0 on progress, 0 otherwise.
 */
int upstream_run(struct upstream *u);

/* upstream_on_event - the loop reported events on the upstream descriptor. */
void upstream_on_event(struct upstream *u, int events);

/* upstream_send - queue raw bytes (message data); a failure is upstream_broken(). */
void upstream_send(struct upstream *u, const char *buf, size_t len);

/* upstream_out_space - octets that upstream_send() can still queue (0 without a connection). */
size_t upstream_out_space(const struct upstream *u);

/* upstream_command - queue a command line (CRLF included) whose reply is due. */
void upstream_command(struct upstream *u, const char *line, size_t len);

/* upstream_expect_reply - one more reply is due (the final dot of data sent raw). */
void upstream_expect_reply(struct upstream *u);

/* upstream_replies_due - replies due for what was sent and not answered yet. */
unsigned upstream_replies_due(const struct upstream *u);

/* upstream_broken - a write failed; the session calls upstream_fail(). */
bool upstream_broken(const struct upstream *u);

/*
 * upstream_fail - the session gives up on the connection (timeout, write
 * failure, bad data): a handshake that has not completed falls back to
 * plaintext once; a connection open to a retry (upstream_retry_open) is
 * offered first (UPN_RETRY); anything else is UPN_LOST with why logged.
 */
void upstream_fail(struct upstream *u, const char *why);

/* upstream_close - drop the connection silently (no note, no event). */
void upstream_close(struct upstream *u);

/*
 * upstream_conn_id - which connection is current: a new value for every
 * connection made (never 0 once one was), so that what was decided on one
 * is not taken for another.
 */
unsigned upstream_conn_id(const struct upstream *u);

/* upstream_phase - the current connection's phase. */
enum upstream_phase upstream_phase(const struct upstream *u);

/* upstream_phase_name - "connect", "banner", ...; never NULL. */
const char *upstream_phase_name(enum upstream_phase phase);

/* upstream_timeout_s - the inactivity limit of the current phase, in seconds. */
unsigned upstream_timeout_s(const struct upstream *u);

/*
 * upstream_timeout - the phase's limit passed: a STARTTLS that never
 * answers is a downgrade event; a handshake that never ends falls back;
 * anything else is lost. Fires UPN_LOST (or starts the fallback).
 */
void upstream_timeout(struct upstream *u);

/*
 * upstream_tls - the TLS facts of the live connection: non-NULL only when
 * it is ready, its handshake completed and it is still TLS. The pointer is
 * valid until the connection changes.
 */
const struct tls_facts *upstream_tls(const struct upstream *u);

/*
 * upstream_fallback_cause - for a plaintext connection made after a
 * handshake failed: the facts of that failed handshake (handshake_done is
 * false), to name the failure; NULL otherwise. Never a reason to pass.
 */
const struct tls_facts *upstream_fallback_cause(const struct upstream *u);

/* upstream_caps - SMTP_CAP_* of the current connection's last EHLO reply. */
unsigned upstream_caps(const struct upstream *u);

/* upstream_learn_caps - a relayed EHLO reply r replaces the capabilities. */
void upstream_learn_caps(struct upstream *u, const struct smtp_reply *r);

/* upstream_helo_only - the current connection refused EHLO. */
bool upstream_helo_only(const struct upstream *u);

/* upstream_name - the name in the current connection's banner ("" before). */
const char *upstream_name(const struct upstream *u);

/* upstream_seen - a mangled STARTTLS line of the current connection, or "". */
const char *upstream_seen(const struct upstream *u);

/* upstream_idle - nothing buffered either way (buffers may be released). */
bool upstream_idle(const struct upstream *u);

/* upstream_set_active - keep buffers between reads and writes (see tls_io_set_active). */
void upstream_set_active(struct upstream *u, bool active);

/* upstream_update_io - set the loop mask of the connection's descriptor. */
void upstream_update_io(struct upstream *u);

/*
 * upstream_local_addr - the local address of the current connection
 * (getsockname: RFC 8460 section 4.4 "sending-mta-ip") into *ss; 0, or -1
 * when there is no connection.
 */
int upstream_local_addr(const struct upstream *u, struct sockaddr_storage *ss);

#endif
