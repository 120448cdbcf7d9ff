/*
 * session.c - one proxied SMTP session: its start, its one strategy
 * function, its timers, the streaming of message data and its one
 * teardown. The two peers live elsewhere: the upstream leg in upstream.c,
 * the client's commands and the reply FIFO in relay.c.
 *
 * The session's state (enum state) is the client's side of the dialogue:
 * waiting while the upstream sets up (S_UPSTREAM), then greeting, relaying
 * commands, streaming data, a TLS handshake with the client, closing.
 * Everything runs from session_run(), called after every loop event on
 * either leg, every policy answer and every timer; it pumps both legs,
 * consumes what can be consumed and sets the loop masks. session_free()
 * is the one teardown.
 *
 * Memory: an idle session is the struct session (about 1.8 KiB), the
 * upstream with its TLS facts (about 1.5 KiB) and OpenSSL's
 * per-connection state (a few KiB per TLS leg; its record buffers are
 * released when idle). Endpoint buffers and the reply reader are released
 * whenever they are empty, and no per-recipient state is kept beyond the
 * FIFO entries of commands still waiting for their reply.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proxy/session_internal.h"

/* How long a closing client may take to read its last reply. */
#define SESSION_LINGER_MS 5000

static const char *const state_names[S_MAX] = {
    [S_UPSTREAM] = "upstream", [S_GREET] = "greet",           [S_READY] = "ready",
    [S_DATA] = "data",         [S_CLIENT_TLS] = "client-tls", [S_CLOSING] = "closing",
};

static _Atomic uint64_t session_serial;

static void session_free(struct session *s);

/* session_enter - the one transition function; logs old -> new. */
void
session_enter(struct session *s, enum state st)
{
	if (s->state == st)
		return;
	log_debug("session=%s state %s -> %s", s->id, state_names[s->state], state_names[st]);
	/* Message data is read in wide windows; commands within one line's bound. */
	if (s->cio != NULL && (st == S_DATA || s->state == S_DATA))
		(void)tls_io_set_in_max(s->cio,
		                        st == S_DATA ? SESSION_DATA_WINDOW : s->conf->max_line);
	s->state = st;
}

/* session_stat_add - relaxed counter update; the metrics reader tolerates skew. */
void
session_stat_add(_Atomic uint64_t *c, int64_t n)
{
	atomic_fetch_add_explicit(c, (uint64_t)n, memory_order_relaxed);
}

/* session_event - fill the session's part of an event and emit it. */
void
session_event(struct session *s, struct relay_event *ev)
{
	const char *seen = upstream_seen(s->up);

	ev->session = s->id;
	ev->client = s->client_ip;
	ev->dest = s->dest;
	if (ev->seen == NULL && seen[0] != '\0') {
		ev->seen = seen;
		ev->seen_len = strlen(seen);
	}
	relay_event_emit(ev);
}

/* event_cb - upstream_event_cb. */
static void
event_cb(void *arg, struct relay_event *ev)
{
	session_event(arg, ev);
}

/* upstream_note - what the upstream said (upstream_note_cb). */
static void
upstream_note(void *arg, enum upstream_note note, const struct smtp_reply *r, const char *final)
{
	struct session *s = arg;
	const char *raw;
	size_t len;
	int code;

	if (note == UPN_IO) {
		session_run(s);
		return;
	}
	s->tick++; /* the session moved on */
	switch (note) {
	case UPN_BANNER:
		/* The banner goes to the client as it is; a refusal is followed as given. */
		raw = smtp_reply_raw(r, &len);
		relay_client_send(s, raw, len);
		code = smtp_reply_code(r);
		if (code == 421)
			session_close(s, NULL);
		else
			session_enter(s, code == 220 ? S_GREET : S_READY);
		return;
	case UPN_EHLO:
		relay_setup_ehlo(s, r);
		return;
	case UPN_READY:
		relay_setup_done(s);
		return;
	case UPN_REFUSED:
		/* A refused set-up step: relay the refusal and let the client try again. */
		raw = smtp_reply_raw(r, &len);
		relay_client_send(s, raw, len);
		session_enter(s, S_GREET);
		return;
	case UPN_REPLY:
		if (relay_reply(s, r) < 0)
			s->dead = true;
		return;
	case UPN_UNSOLICITED:
		/* A server closing (421) or a broken one. A flushed reply may
		 * close the session, and with it the connection that holds r. */
		code = smtp_reply_code(r);
		relay_flush(s);
		if (s->state == S_CLOSING)
			return;
		if (code == 421) {
			raw = smtp_reply_raw(r, &len);
			relay_client_send(s, raw, len);
			session_close(s, NULL);
		} else {
			upstream_fail(s->up, "unsolicited reply");
		}
		return;
	case UPN_LOST:
		relay_flush(s);
		session_close(s, final);
		return;
	case UPN_RETRY:
		relay_retry(s);
		return;
	case UPN_RESUMED:
		/* The pending recipients go out again from relay_commands(). */
		session_enter(s, S_READY);
		return;
	case UPN_IO:
		return;
	}
}

/* --- message data ----------------------------------------------------------- */

/* data_step - stream message data upstream as it arrives. >0 on progress. */
static int
data_step(struct session *s)
{
	const char *buf;
	size_t n, used, send;
	int r, progress = 0;
	bool cr;
	struct pend *p;

	while (s->state == S_DATA && upstream_phase(s->up) == UP_READY && !upstream_broken(s->up) &&
	       (buf = tls_io_in(s->cio, &n)) != NULL) {
		/* Backpressure: read the client only as fast as the upstream drains. */
		size_t space = upstream_out_space(s->up);

		if (space < 2)
			break;
		if (n > space - 1)
			n = space - 1;
		r = smtp_data_feed(&s->data, buf, n, &used);
		if (r == SMTP_DATA_BAD) {
			char reply[160];

			/*
			 * Smuggling attempt (bare CR, LF or NUL): the upstream loses
			 * the connection without ever seeing an end of data, so it
			 * discards the partial message.
			 */
			log_warn("session=%s DATA refused at octet %llu: %s", s->id,
			         (unsigned long long)s->data.error_offset, s->data.error);
			upstream_close(s->up);
			snprintf(reply, sizeof(reply), "%s\r\n", s->data.error);
			session_close(s, reply);
			return 1;
		}
		/* A CR at the end of a chunk waits for its LF: no lone CR ever goes out. */
		cr = r == SMTP_DATA_MORE && smtp_data_cr_pending(&s->data);
		send = cr ? used - 1 : used;
		if (s->cr_held)
			upstream_send(s->up, "\r", 1);
		upstream_send(s->up, buf, send);
		s->cr_held = cr;
		tls_io_consume(s->cio, used);
		s->tick++;
		progress = 1;
		if (r == SMTP_DATA_END) {
			p = relay_push(s, SMTP_CMD_UNKNOWN, PF_UPSTREAM | PF_DOT, NULL, 0);
			if (p == NULL) {
				s->dead = true;
				return 1;
			}
			upstream_expect_reply(s->up);
			p->mode = s->txn_mode;
			/* The reply to the dot may come after the next transaction began. */
			txn_report_move(&s->tdoms, &p->tdoms);
			relay_txn_reset(s);
			session_enter(s, S_READY);
		}
	}
	return progress;
}

/* client_step - the client side: handshake, commands or data. */
static int
client_step(struct session *s)
{
	if (s->state == S_CLIENT_TLS) {
		if (!tls_io_handshake_done(s->cio))
			return 0;
		/* RFC 3207 section 4.2: forget everything the client said before TLS. */
		s->greeted = false;
		s->client_esmtp = false;
		relay_txn_reset(s);
		session_enter(s, S_READY);
		return 1;
	}
	if (s->state == S_DATA)
		return data_step(s);
	return relay_commands(s);
}

/* --- timers ----------------------------------------------------------------- */

/* timer_key - what the armed timer is for: the state, or the upstream's phase in it. */
static int
timer_key(const struct session *s)
{
	return s->state == S_UPSTREAM ? S_MAX + (int)upstream_phase(s->up) : (int)s->state;
}

/* state_timeout_ms - the inactivity limit of the current state (RFC 5321 4.5.3.2). */
static uint64_t
state_timeout_ms(const struct session *s)
{
	const struct conf_timeouts *t = &s->conf->timeouts;
	const struct pend *p;
	unsigned sec;

	switch (s->state) {
	case S_UPSTREAM:
		sec = upstream_timeout_s(s->up);
		break;
	case S_CLIENT_TLS:
		sec = t->starttls;
		break;
	case S_DATA:
		sec = t->data_block;
		break;
	default:
		sec = t->command;
		for (p = s->head; p != NULL; p = p->next)
			if ((p->flags & (PF_UPSTREAM | PF_DONE)) == PF_UPSTREAM) {
				if (p->flags & PF_DOT)
					sec = t->data_done;
				break;
			}
		break;
	}
	return (uint64_t)sec * 1000;
}

/* on_timer - the state's limit passed without activity, or the close linger ended. */
static void
on_timer(struct loop *loop, void *arg)
{
	struct session *s = arg;
	uint64_t now = loop_now_ms(loop);

	s->timer = 0;
	if (s->state != S_CLOSING && s->armed_key == timer_key(s) && s->due_ms > now) {
		/* The session moved on since the timer was set: wait out the rest. */
		s->timer = loop_timer_add(loop, s->due_ms - now, on_timer, s);
		s->timer_at = s->due_ms;
		if (s->timer != 0)
			return;
	}
	switch (s->state) {
	case S_CLOSING:
		session_free(s);
		return;
	case S_UPSTREAM:
		upstream_timeout(s->up);
		break;
	case S_GREET:
	case S_READY:
		if (relay_upstream_next(s) == NULL && s->lookup == 0) {
			relay_flush(s);
			session_close(s, "421 4.4.2 Idle timeout, closing\r\n");
			break;
		}
		upstream_fail(s->up, "timeout");
		break;
	case S_DATA:
		session_close(s, "421 4.4.2 Timeout waiting for message data\r\n");
		break;
	case S_CLIENT_TLS:
	case S_MAX:
		s->dead = true;
		break;
	}
	session_run(s);
}

/*
 * keep_buffers - whether the legs keep their emptied buffers (and OpenSSL
 * its record buffers) for the next bytes: while a command, its reply or
 * message data is in flight after the set-up. They are given back whenever
 * the session waits for the mailer's next command, and during the set-up,
 * so that buffers kept through the upstream handshake do not leave holes
 * between the session's long-lived TLS objects.
 */
static bool
keep_buffers(const struct session *s)
{
	size_t n;

	if (upstream_phase(s->up) != UP_READY || s->state == S_CLOSING)
		return false;
	if (s->state == S_DATA || s->n_pend > 0 || s->lookup != 0)
		return true;
	if (tls_io_in(s->cio, &n) != NULL || tls_io_out_pending(s->cio) > 0)
		return true;
	return !upstream_idle(s->up);
}

/* update_io - the loop masks of both legs, buffer retention, and the state's timer. */
static void
update_io(struct session *s)
{
	struct loop *loop = s->ctx->loop;
	bool active = keep_buffers(s);
	uint64_t ms;

	tls_io_set_active(s->cio, active);
	upstream_set_active(s->up, active);
	upstream_update_io(s->up);
	loop_fd_mod(loop, tls_io_fd(s->cio), tls_io_events(s->cio));
	if (s->state == S_CLOSING)
		return;
	if (s->timer != 0 && s->armed_key == timer_key(s)) {
		if (s->armed_tick == s->tick)
			return;
		/*
		 * Progress within the same state moves the deadline; the timer
		 * itself only when the deadline comes earlier. A later one is
		 * taken up by on_timer, so that a block of message data costs
		 * no timer update.
		 */
		s->armed_tick = s->tick;
		s->due_ms = loop_now_ms(loop) + state_timeout_ms(s);
		if (s->due_ms >= s->timer_at)
			return;
	}
	loop_timer_cancel(loop, s->timer);
	ms = state_timeout_ms(s);
	s->timer = loop_timer_add(loop, ms, on_timer, s);
	s->timer_at = s->due_ms = loop_now_ms(loop) + ms;
	s->armed_key = timer_key(s);
	s->armed_tick = s->tick;
}

/* safe_to_stop - a draining stop may close now (never between the dot and its reply). */
static bool
safe_to_stop(const struct session *s)
{
	return s->state != S_DATA && s->state != S_CLOSING && s->state != S_CLIENT_TLS &&
	       s->n_pend == 0 && s->lookup == 0;
}

/* --- driving ---------------------------------------------------------------- */

/*
 * session_run - the session's one strategy function: pump both legs, act on
 * what arrived, flush replies in order; repeat while anything moves.
 */
void
session_run(struct session *s)
{
	int progress, r;

	if (s->in_run) {
		s->rerun = true;
		return;
	}
	s->in_run = true;
	do {
		progress = 0;
		s->rerun = false;
		if ((r = tls_io_pump(s->cio)) < 0) {
			if (s->state != S_CLOSING)
				log_info("session=%s client gone in state %s: %s", s->id,
				         state_names[s->state], tls_io_error(s->cio));
			s->dead = true;
			break;
		}
		progress |= r;
		if (s->state == S_CLOSING) {
			if (tls_io_shutdown_done(s->cio))
				s->dead = true;
			continue;
		}
		progress |= upstream_run(s->up);
		if (s->dead || s->state == S_CLOSING)
			continue;
		progress |= client_step(s);
		progress |= relay_flush(s);
		if (upstream_broken(s->up) && s->state != S_CLOSING) {
			upstream_fail(s->up, "upstream write failed");
			progress = 1;
		}
		if (s->shutting_down && safe_to_stop(s))
			session_close(s, "421 4.3.2 stsproxy shutting down\r\n");
	} while ((progress || s->rerun) && !s->dead);
	s->in_run = false;
	if (s->dead) {
		session_free(s);
		return;
	}
	update_io(s);
}

/* session_close - send final (may be NULL) and close both legs. */
void
session_close(struct session *s, const char *final)
{
	if (s->state == S_CLOSING)
		return;
	if (final != NULL)
		(void)tls_io_write(s->cio, final, strlen(final));
	upstream_close(s->up);
	if (s->lookup != 0) {
		sts_engine_cancel(s->ctx->engine, s->lookup);
		s->lookup = 0;
	}
	while (s->head != NULL)
		relay_pop(s);
	s->n_replay = 0;
	tls_io_shutdown(s->cio);
	session_enter(s, S_CLOSING);
	loop_timer_cancel(s->ctx->loop, s->timer);
	s->timer = loop_timer_add(s->ctx->loop, SESSION_LINGER_MS, on_timer, s);
	s->rerun = true;
}

/* on_kick - run the session once from the loop (its first run). */
static void
on_kick(struct loop *loop, void *arg)
{
	struct session *s = arg;

	(void)loop;
	s->timer = 0;
	session_run(s);
}

/* on_client - the client leg's descriptor had events. */
static void
on_client(struct loop *loop, int fd, int events, void *arg)
{
	struct session *s = arg;

	(void)loop;
	(void)fd;
	tls_io_events_seen(s->cio, events);
	session_run(s);
}

/* session_free - the one teardown: timers, lookups, both legs, the list, on_end. */
static void
session_free(struct session *s)
{
	struct session_ctx *ctx;

	if (s == NULL)
		return;
	ctx = s->ctx;
	loop_timer_cancel(ctx->loop, s->timer);
	if (s->lookup != 0)
		sts_engine_cancel(ctx->engine, s->lookup);
	upstream_free(s->up);
	if (s->cio != NULL) {
		loop_fd_del(ctx->loop, tls_io_fd(s->cio));
		tls_io_free(s->cio);
	}
	while (s->head != NULL)
		relay_pop(s);
	free(s->mail_line);
	free(s->mail_refusal);
	free(s->ehlo_reply);
	txn_report_clear(&s->tdoms);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ctx->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	ctx->n_sessions--;
	session_stat_add(&ctx->stats->sessions_active, -1);
	log_debug("session=%s end", s->id);
	free(s);
	if (ctx->on_end != NULL)
		ctx->on_end(ctx->on_end_arg);
}

int
session_start(struct session_ctx *ctx, int client_fd, const struct sockaddr *client,
              socklen_t client_len, const struct sockaddr *orig_dst, socklen_t orig_len)
{
	struct upstream_params up;
	struct session *s;
	char dst_ip[INET6_ADDRSTRLEN];
	uint64_t n;

	if ((s = calloc(1, sizeof(*s))) == NULL || orig_len > sizeof(s->dst) ||
	    (orig_dst->sa_family != AF_INET && orig_dst->sa_family != AF_INET6)) {
		free(s);
		close(client_fd);
		return -1;
	}
	s->ctx = ctx;
	s->conf = ctx->conf;
	n = atomic_fetch_add_explicit(&session_serial, 1, memory_order_relaxed) + 1;
	snprintf(s->id, sizeof(s->id), "w%u-%06llu", ctx->worker_id, (unsigned long long)n);
	if (client != NULL && client_len > 0)
		sts_addr_text(client, s->client_ip, sizeof(s->client_ip), NULL, 0);
	memcpy(&s->dst, orig_dst, orig_len);
	s->dst_len = orig_len;
	sts_addr_text(orig_dst, dst_ip, sizeof(dst_ip), s->dest, sizeof(s->dest));

	memset(&up, 0, sizeof(up));
	up.loop = ctx->loop;
	up.conf = ctx->conf;
	up.tls = ctx->upstream_tls;
	up.dst = orig_dst;
	up.dst_len = orig_len;
	up.sid = s->id;
	up.tls_count = &ctx->stats->tls_upstream;
	up.tls_resumed = &ctx->stats->tls_upstream_resumed;
	up.note = upstream_note;
	up.event = event_cb;
	up.arg = s;
	up.pool = ctx->pool;
	up.client = s->client_ip;
	if ((s->up = upstream_new(&up)) == NULL) {
		free(s);
		close(client_fd);
		return -1;
	}
	/*
	 * Replies are written whole from our own buffer: Nagle would only hold
	 * a local reply back behind an earlier one until the mailer's delayed
	 * ACK, some 40 ms per pipelined group.
	 */
	(void)setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if ((s->cio = tls_io_new(client_fd, ctx->conf->max_line, SESSION_OUT_MAX)) == NULL) {
		upstream_free(s->up);
		free(s);
		close(client_fd);
		return -1;
	}
	if (loop_fd_add(ctx->loop, client_fd, LOOP_READ, on_client, s) < 0) {
		tls_io_free(s->cio);
		upstream_free(s->up);
		free(s);
		return -1;
	}
	/* The mailer waits for the banner: its first bytes come with an event. */
	tls_io_events_seen(s->cio, 0);
	s->next = ctx->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	ctx->sessions = s;
	ctx->n_sessions++;
	session_stat_add(&ctx->stats->sessions_total, 1);
	session_stat_add(&ctx->stats->sessions_active, 1);
	log_info("session=%s start client=%s dest=%s", s->id, s->client_ip, s->dest);

	s->state = S_UPSTREAM;
	if (upstream_connect(s->up) == 0 && upstream_reused(s->up)) {
		/* A pooled connection replays its banner from the loop, never from here. */
		s->timer = loop_timer_add(ctx->loop, 0, on_kick, s);
		return 0;
	}
	if (upstream_phase(s->up) != UP_CLOSED) {
		s->armed_key = timer_key(s);
		s->timer = loop_timer_add(ctx->loop, state_timeout_ms(s), on_timer, s);
		s->timer_at = s->due_ms = loop_now_ms(ctx->loop) + state_timeout_ms(s);
		return 0;
	}
	/* Connect failed at once: tell the client from the loop, never from here. */
	s->timer = loop_timer_add(ctx->loop, 0, on_timer, s);
	return 0;
}

void
session_shutdown_all(struct session_ctx *ctx)
{
	struct session *s, *next;

	for (s = ctx->sessions; s != NULL; s = next) {
		next = s->next;
		s->shutting_down = true;
		session_run(s);
	}
}

void
session_abort_all(struct session_ctx *ctx)
{
	struct session *s, *next;

	for (s = ctx->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->dead || s->state == S_CLOSING)
			continue;
		session_close(s, "421 4.3.2 stsproxy shutting down\r\n");
		session_run(s);
	}
}

unsigned
session_count(const struct session_ctx *ctx)
{
	return ctx->n_sessions;
}
