/*
 * upstream.c - the upstream leg: one connection at a time to the original
 * destination, its set-up dialogue and its replies (see upstream.h).
 *
 * The connection is struct up_conn: everything in it is a fact about that
 * one TCP connection and is reset by conn_drop(). What outlives a
 * connection is only what the session gave (destination, EHLO name) and,
 * after a failed handshake, the facts of that failure, kept to name it.
 *
 * Phases (enum upstream_phase) move forward only:
 *   CONNECT -> BANNER -> IDLE -> EHLO -> STARTTLS -> HANDSHAKE -> EHLO_TLS -> READY
 *                             \-> HELO --------------------------------------/
 * with READY reached straight from EHLO when STARTTLS is not offered or
 * refused. A handshake that fails before it completes reconnects once
 * without STARTTLS (CONNECT -> BANNER -> EHLO -> READY, the banner not
 * relayed again); a connection taken from the pool may be replaced once
 * (reconnect, upstream_retry); every other failure is UP_CLOSED with
 * UPN_LOST.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proxy/upstream_internal.h"
#include "tls/tls_io.h"
#include "tls/tls_resume.h"

/* Output bound: many pipelined commands, or message data in flight. */
#define UP_OUT_MAX (256 * 1024)
/* Longest banner or EHLO reply kept for a replay. */
#define UP_REPLY_KEEP 4096

static const char *const phase_names[UP_PHASE_MAX] = {
    [UP_CLOSED] = "closed",     [UP_CONNECT] = "connect",     [UP_BANNER] = "banner",
    [UP_IDLE] = "idle",         [UP_EHLO] = "ehlo",           [UP_HELO] = "helo",
    [UP_STARTTLS] = "starttls", [UP_HANDSHAKE] = "handshake", [UP_EHLO_TLS] = "ehlo-tls",
    [UP_READY] = "ready",       [UP_RSET] = "rset",
};

static const char lost_reply[] = "421 4.4.2 Connection to the destination mail server lost\r\n";

struct upstream {
	struct upstream_params p;
	char sid[24];
	char client[64]; /* the client's address: with helo and dst, the pool identity */
	struct sockaddr_storage dst;
	char helo[UP_NAME_MAX + 1];
	struct up_conn c;
	/* The failed handshake that made the current connection a fallback. */
	struct tls_facts *cause;
	bool fell_back; /* the one fallback was used */
	unsigned conns; /* connections made */
	/* The connection came from the pool, answered its RSET with 250, and
	 * no reply of it was part of a transaction the mailer was told of
	 * (upstream_retry_end): a failure now is offered to the session. */
	bool window;
	bool retried;  /* upstream_retry() was used: once per session */
	bool resuming; /* ... and its connection is being set up */
};

static loop_fd_cb on_fd;
static void cmd(struct upstream *u, const char *verb, const char *arg);

const char *
upstream_phase_name(enum upstream_phase phase)
{
	return (unsigned)phase < UP_PHASE_MAX ? phase_names[phase] : "?";
}

/* enter - the one phase transition; logs old -> new. */
static void
enter(struct upstream *u, enum upstream_phase ph)
{
	if (u->c.phase == ph)
		return;
	log_debug("session=%s upstream %s -> %s", u->sid, phase_names[u->c.phase], phase_names[ph]);
	u->c.phase = ph;
}

/* facts_free - release facts; NULL is a no-op. */
static void
facts_free(struct tls_facts *f)
{
	if (f == NULL)
		return;
	tls_facts_clear(f);
	free(f);
}

void
upstream_conn_free(struct loop *loop, struct up_conn *c, bool quit)
{
	static const char quit_line[] = "QUIT\r\n";

	if (c->io != NULL) {
		loop_fd_del(loop, tls_io_fd(c->io));
		/* Best effort: the server learns we are done rather than seeing a drop. */
		if (quit && tls_io_write(c->io, quit_line, sizeof(quit_line) - 1) == 0)
			(void)tls_io_pump(c->io);
		tls_io_free(c->io);
	}
	smtp_reply_free(c->rd);
	facts_free(c->facts);
	free(c->banner);
	free(c->ehlo);
	memset(c, 0, sizeof(*c));
	c->phase = UP_CLOSED;
}

/* conn_drop - close the connection and forget everything learnt on it. */
static void
conn_drop(struct upstream *u)
{
	u->window = false;
	upstream_conn_free(u->p.loop, &u->c, false);
}

/* keep_raw - a copy of reply r's raw text into *dst (bounded); a failure keeps nothing. */
static void
keep_raw(char **dst, const struct smtp_reply *r)
{
	const char *raw;
	size_t n;

	free(*dst);
	*dst = NULL;
	if ((raw = smtp_reply_raw(r, &n)) == NULL || n == 0 || n > UP_REPLY_KEEP ||
	    (*dst = malloc(n + 1)) == NULL)
		return;
	memcpy(*dst, raw, n);
	(*dst)[n] = '\0';
}

/* reply_of - a reply object made again from raw (a kept banner or EHLO reply); NULL on error. */
static struct smtp_reply *
reply_of(const char *raw)
{
	struct smtp_reply *r;
	const char *lf;
	int st = SMTP_REPLY_MORE;

	if (raw == NULL || (r = smtp_reply_new()) == NULL)
		return NULL;
	while (*raw != '\0' && (lf = strchr(raw, '\n')) != NULL) {
		st = smtp_reply_feed(r, raw, (size_t)(lf - raw) + 1);
		raw = lf + 1;
		if (st != SMTP_REPLY_MORE)
			break;
	}
	if (st != SMTP_REPLY_DONE) {
		smtp_reply_free(r);
		return NULL;
	}
	return r;
}

/* emit - a session-level event about this connection. */
static void
emit(struct upstream *u, enum relay_event_kind kind, enum sts_result result, const char *seen,
     size_t seen_len, const char *action, const char *reason)
{
	struct relay_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.result = result;
	ev.seen = seen;
	ev.seen_len = seen_len > 200 ? 200 : seen_len;
	ev.action = action;
	ev.reason = reason;
	if (seen == NULL && u->c.seen[0] != '\0') {
		ev.seen = u->c.seen;
		ev.seen_len = strlen(u->c.seen);
	}
	u->p.event(u->p.arg, &ev);
}

/* note - tell the session; it may close the connection meanwhile. */
static void
note(struct upstream *u, enum upstream_note n, const struct smtp_reply *r, const char *final)
{
	u->p.note(u->p.arg, n, r, final);
}

/* lost - the connection is gone: close it and tell the session with final. */
static void
lost(struct upstream *u, const char *why, const char *final)
{
	log_info("session=%s upstream lost in phase %s: %s", u->sid, phase_names[u->c.phase], why);
	conn_drop(u);
	note(u, UPN_LOST, NULL, final);
}

/*
 * conn_open - start a non-blocking connect; 0, or -1 (nothing left open).
 * plain: never STARTTLS; quiet: the banner is not the client's.
 */
static int
conn_open(struct upstream *u, bool plain, bool quiet)
{
	const struct sockaddr *dst = (const struct sockaddr *)&u->dst;
	uint32_t mark = u->p.conf->upstream_mark;
	int fd, one = 1;

	fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("session=%s socket: %s", u->sid, strerror(errno));
		return -1;
	}
	/* The mark keeps our own connections out of the interception rules. */
	if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		log_warn("session=%s SO_MARK: %s", u->sid, strerror(errno));
		close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, dst, u->p.dst_len) < 0 && errno != EINPROGRESS) {
		log_info("session=%s connect: %s", u->sid, strerror(errno));
		close(fd);
		return -1;
	}
	if ((u->c.io = tls_io_new(fd, u->p.conf->max_line, UP_OUT_MAX)) == NULL) {
		close(fd);
		return -1;
	}
	if (loop_fd_add(u->p.loop, fd, LOOP_WRITE, on_fd, u) < 0) {
		tls_io_free(u->c.io);
		u->c.io = NULL;
		return -1;
	}
	/* Nothing to read before the loop says so (the connection is not even up). */
	tls_io_events_seen(u->c.io, 0);
	u->c.plain = plain;
	u->c.banner_quiet = quiet;
	u->conns++;
	enter(u, UP_CONNECT);
	return 0;
}

struct upstream *
upstream_new(const struct upstream_params *p)
{
	struct upstream *u;

	if (p->dst_len > sizeof(u->dst) || (u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->p = *p;
	u->p.dst = NULL;
	snprintf(u->sid, sizeof(u->sid), "%s", p->sid);
	snprintf(u->client, sizeof(u->client), "%s", p->client != NULL ? p->client : "");
	u->p.client = NULL;
	memcpy(&u->dst, p->dst, p->dst_len);
	u->c.phase = UP_CLOSED;
	return u;
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	conn_drop(u);
	facts_free(u->cause);
	free(u);
}

/* take - a parked connection of this client to this destination; 0, or -1 (none). */
static int
take(struct upstream *u)
{
	struct up_conn *c = &u->c;

	if (upstream_pool_take(u->p.pool, u->client, (const struct sockaddr *)&u->dst, u->p.dst_len,
	                       c) < 0)
		return -1;
	if (loop_fd_add(u->p.loop, tls_io_fd(c->io), LOOP_READ, on_fd, u) < 0) {
		upstream_conn_free(u->p.loop, c, true);
		return -1;
	}
	tls_io_events_seen(c->io, 0);
	c->reused = true;
	c->replay = true;
	c->banner_quiet = false;
	u->conns++;
	log_info("session=%s upstream reusing a connection to the same destination "
	         "(messages=%u)",
	         u->sid, c->msgs);
	/* The check runs while the mailer reads the banner and says EHLO. */
	cmd(u, "RSET", NULL);
	enter(u, UP_RSET);
	return 0;
}

int
upstream_connect(struct upstream *u)
{
	if (u->p.pool != NULL && u->client[0] != '\0' && take(u) == 0)
		return 0;
	upstream_pool_count(u->p.pool, POOL_MISS);
	return conn_open(u, false, false);
}

bool
upstream_reused(const struct upstream *u)
{
	return u->c.reused;
}

bool
upstream_retry_open(const struct upstream *u)
{
	return u->window;
}

void
upstream_retry_end(struct upstream *u)
{
	u->window = false;
}

/*
 * reconnect - a connection taken from the pool failed before its RSET was
 * answered (why): nothing was relayed on it, so a new connection takes its
 * place quietly; the session sees only the new connection's set-up.
 */
static void
reconnect(struct upstream *u, const char *why)
{
	log_info("session=%s upstream reused connection unusable (%s): connecting again", u->sid,
	         why);
	upstream_pool_count(u->p.pool, POOL_MISS);
	upstream_conn_free(u->p.loop, &u->c, true);
	if (conn_open(u, false, true) < 0)
		note(u, UPN_LOST, NULL, "421 4.4.1 Cannot reach the destination mail server\r\n");
}

/*
 * offer_retry - the connection failed (why) in its window (see struct
 * upstream): the session may go on over a new connection. True when it
 * did: the failed connection is gone and nothing more is done with it.
 */
static bool
offer_retry(struct upstream *u, const char *why)
{
	if (!u->window)
		return false;
	u->window = false;
	log_info("session=%s upstream reused connection failed before the transaction: %s", u->sid,
	         why);
	note(u, UPN_RETRY, NULL, why);
	return u->retried;
}

int
upstream_retry(struct upstream *u)
{
	log_info("session=%s upstream connecting again for the pending transaction", u->sid);
	u->window = false;
	u->retried = true;
	u->resuming = true;
	upstream_pool_count(u->p.pool, POOL_RETRY);
	/* Never parked again: whatever it was, it is in doubt. */
	upstream_conn_free(u->p.loop, &u->c, false);
	if (conn_open(u, false, true) < 0) {
		u->resuming = false;
		return -1;
	}
	return 0;
}

/* cmd - send "VERB arg\r\n" during the set-up. */
static void
cmd(struct upstream *u, const char *verb, const char *arg)
{
	char line[UP_NAME_MAX + 16];
	int n;

	n = snprintf(line, sizeof(line), "%s%s%s\r\n", verb, arg ? " " : "", arg ? arg : "");
	if (n < 0 || (size_t)n >= sizeof(line)) {
		u->c.write_failed = true;
		return;
	}
	if (strcmp(verb, "EHLO") == 0 || strcmp(verb, "HELO") == 0)
		sts_strlcpy(u->c.helo_sent, arg, sizeof(u->c.helo_sent));
	upstream_send(u, line, (size_t)n);
}

/*
 * greet_reused - the client greeted on a connection taken from the pool
 * (its RSET sent at the take, answered or not): the same EHLO name is the
 * same client identity, and the session is set up once the RSET is
 * answered 250; another name puts the connection back (when its RSET is
 * answered; else it is closed) and a new connection is made for this one.
 */
static void
greet_reused(struct upstream *u)
{
	struct up_conn *c = &u->c;

	if (strcmp(c->helo_sent, u->helo) == 0) {
		if (c->phase == UP_RSET)
			c->greeted = true; /* finished by rset_reply() */
		else
			c->finish = true; /* finished by the next upstream_run() */
		return;
	}
	log_info("session=%s upstream pooled connection greeted as another name: not reused",
	         u->sid);
	loop_fd_del(u->p.loop, tls_io_fd(c->io));
	c->reused = false;
	if (c->phase != UP_IDLE) {
		upstream_conn_free(u->p.loop, c, true);
	} else {
		c->phase = UP_READY;
		if (upstream_pool_put(u->p.pool, c, u->client, (const struct sockaddr *)&u->dst,
		                      u->p.dst_len) < 0)
			upstream_conn_free(u->p.loop, c, true);
	}
	upstream_pool_count(u->p.pool, POOL_MISS);
	if (conn_open(u, false, true) < 0)
		note(u, UPN_LOST, NULL, "421 4.4.1 Cannot reach the destination mail server\r\n");
}

void
upstream_greet(struct upstream *u, const char *name, size_t len)
{
	if (len > UP_NAME_MAX)
		len = UP_NAME_MAX;
	memcpy(u->helo, name, len);
	u->helo[len] = '\0';
	if (u->c.phase == UP_READY) {
		/* The relay sends this EHLO itself: the connection's name changes. */
		sts_strlcpy(u->c.helo_sent, u->helo, sizeof(u->c.helo_sent));
		return;
	}
	if (u->c.reused && (u->c.phase == UP_IDLE || u->c.phase == UP_RSET)) {
		greet_reused(u);
		return;
	}
	if (u->c.phase != UP_IDLE)
		return;
	cmd(u, "EHLO", u->helo);
	enter(u, UP_EHLO);
}

/* find_mangled - a capability line that looks like a STARTTLS a middlebox overwrote. */
static void
find_mangled(struct upstream *u, const struct smtp_reply *r)
{
	const char *l;
	size_t i, len;

	for (i = 1; i < smtp_reply_nlines(r); i++) {
		if ((l = smtp_reply_line(r, i, &len)) == NULL ||
		    !smtp_cap_looks_mangled_starttls(l, len))
			continue;
		sts_printable(u->c.seen, sizeof(u->c.seen), l, len);
		emit(u, RELAY_EV_DOWNGRADE, STS_RESULT_STARTTLS_NOT_SUPPORTED, l, len, "reported",
		     "EHLO capability looks like a mangled STARTTLS");
		return;
	}
}

/* ready - the set-up is done. */
static void
ready(struct upstream *u)
{
	enter(u, UP_READY);
	if (u->resuming) {
		u->resuming = false;
		note(u, UPN_RESUMED, NULL, NULL);
		return;
	}
	note(u, UPN_READY, NULL, NULL);
}

/*
 * fallback - the handshake failed before it completed (why): report it and
 * reconnect once without STARTTLS. The new connection is plaintext and
 * carries only recipients whose policy allows it (the relay judges every
 * recipient on upstream_tls() of that connection, which is NULL).
 */
static void
fallback(struct upstream *u, const char *why)
{
	struct tls_facts *f;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		lost(u, "no memory", lost_reply);
		return;
	}
	tls_facts_from_ssl(f, tls_io_ssl(u->c.io));
	facts_free(u->cause);
	u->cause = f;
	u->fell_back = true;
	log_info("session=%s upstream TLS handshake failed: %s; reconnecting without STARTTLS",
	         u->sid, why);
	/* RFC-NOTES: a downgrade is never silent. */
	emit(u, RELAY_EV_DOWNGRADE, STS_RESULT_VALIDATION_FAILURE, why, strlen(why),
	     "fallback-plaintext", "TLS handshake failed; reconnecting without STARTTLS");
	conn_drop(u);
	if (conn_open(u, true, true) < 0)
		note(u, UPN_LOST, NULL, lost_reply);
}

/*
 * fail - the connection failed (why). Only a handshake that has not
 * completed, on a connection that tried TLS for the first time, falls back;
 * once the handshake completed the connection is simply lost.
 */
static void
fail(struct upstream *u, const char *why)
{
	const char *final = lost_reply;
	struct up_conn *c = &u->c;

	c->doubt = true;
	if (c->reused) {
		reconnect(u, why);
		return;
	}
	if (c->phase == UP_READY && offer_retry(u, why))
		return;
	if (c->phase == UP_HANDSHAKE && !tls_io_handshake_done(c->io) && !u->fell_back) {
		fallback(u, why);
		return;
	}
	if ((c->phase == UP_CONNECT || c->phase == UP_BANNER) && !c->banner_quiet)
		final = "421 4.4.1 Cannot reach the destination mail server\r\n";
	if (c->phase == UP_STARTTLS)
		emit(u, RELAY_EV_DOWNGRADE, STS_RESULT_STARTTLS_NOT_SUPPORTED, NULL, 0, "reported",
		     why);
	lost(u, why, final);
}

void
upstream_fail(struct upstream *u, const char *why)
{
	if (u->c.phase == UP_CLOSED)
		return;
	fail(u, why);
}

void
upstream_close(struct upstream *u)
{
	conn_drop(u);
}

/* handshake_done - the connection is TLS: forget what was learnt before, EHLO again. */
static void
handshake_done(struct upstream *u)
{
	struct up_conn *c = &u->c;
	SSL *ssl = tls_io_ssl(c->io);
	bool resumed;

	if ((c->facts = calloc(1, sizeof(*c->facts))) == NULL) {
		lost(u, "no memory", lost_reply);
		return;
	}
	tls_facts_from_ssl(c->facts, ssl);
	resumed = SSL_session_reused(ssl) == 1;
	if (u->p.tls_count != NULL)
		atomic_fetch_add_explicit(u->p.tls_count, 1, memory_order_relaxed);
	if (resumed && u->p.tls_resumed != NULL)
		atomic_fetch_add_explicit(u->p.tls_resumed, 1, memory_order_relaxed);
	log_info("session=%s upstream TLS %s %s subject=\"%s\" resumed=%s", u->sid,
	         c->facts->version, c->facts->cipher, c->facts->subject, resumed ? "yes" : "no");
	/* RFC 3207 section 4.2: forget the pre-TLS capabilities; EHLO again. */
	c->caps = 0;
	c->seen[0] = '\0';
	cmd(u, "EHLO", u->helo);
	enter(u, UP_EHLO_TLS);
}

/* starttls_reply - exactly one reply r to our STARTTLS has arrived. */
static void
starttls_reply(struct upstream *u, const struct smtp_reply *r, int code)
{
	struct up_conn *c = &u->c;
	const char *sni = sts_hostname_valid(c->name) ? c->name : NULL;
	const char *raw;
	size_t n;

	if (code == 220) {
		/* RFC 3207 section 5: nothing may follow the 220 before the handshake. */
		if ((raw = tls_io_in(c->io, &n)) != NULL && n > 0) {
			log_warn("session=%s upstream sent %zu bytes after its 220 to STARTTLS: "
			         "aborted",
			         u->sid, n);
			emit(u, RELAY_EV_INJECTION, STS_RESULT_VALIDATION_FAILURE, raw, n,
			     "aborted", "response injection after STARTTLS");
			lost(u, "response injection after STARTTLS",
			     "421 4.7.0 Destination mail server failed the TLS negotiation\r\n");
			return;
		}
		if (tls_io_start_tls(c->io, u->p.tls, false, sni) < 0) {
			lost(u, "TLS start failed", lost_reply);
			return;
		}
		/* Without a cached session the handshake is simply a full one. */
		(void)tls_resume_prepare(tls_io_ssl(c->io), (const struct sockaddr *)&u->dst, sni);
		enter(u, UP_HANDSHAKE);
		return;
	}
	/* RFC-NOTES: a refused STARTTLS is a downgrade, never silent. */
	raw = smtp_reply_raw(r, &n);
	emit(u, RELAY_EV_DOWNGRADE, STS_RESULT_STARTTLS_NOT_SUPPORTED, raw, n, "reported",
	     "STARTTLS offered but refused");
	ready(u);
}

/* ehlo_reply - the reply r to our EHLO (pre- or post-TLS) or HELO. */
static void
ehlo_reply(struct upstream *u, const struct smtp_reply *r, int code)
{
	struct up_conn *c = &u->c;
	enum upstream_phase ph = c->phase;
	struct smtp_ehlo caps;

	if (code != 250) {
		if (ph == UP_EHLO_TLS) {
			fail(u, "EHLO refused after STARTTLS");
		} else if (ph == UP_EHLO && code >= 500) {
			/* RFC 5321 section 4.1.4: fall back to HELO; no STARTTLS then. */
			cmd(u, "HELO", u->helo);
			enter(u, UP_HELO);
		} else if (code == 421) {
			fail(u, "set-up refused with 421");
		} else if (c->banner_quiet) {
			/* A fallback connection has no client waiting on its steps. */
			fail(u, "EHLO refused on reconnect");
		} else {
			/* Relay the refusal; the client may greet again. */
			enter(u, UP_IDLE);
			note(u, UPN_REFUSED, r, NULL);
		}
		return;
	}
	if (ph == UP_HELO) {
		c->helo_only = true;
		c->caps = 0;
	} else if (smtp_ehlo_parse(r, &caps) == 0) {
		c->caps = caps.caps;
	}
	keep_raw(&c->ehlo, r);
	/* A connection of upstream_retry(): the mailer has its EHLO reply already. */
	if (!u->resuming)
		note(u, UPN_EHLO, r, NULL);
	if (c->phase != ph)
		return; /* the session closed the connection */
	if (ph == UP_EHLO && (c->caps & SMTP_CAP_STARTTLS) && !c->plain) {
		cmd(u, "STARTTLS", NULL);
		enter(u, UP_STARTTLS);
		return;
	}
	if (ph == UP_EHLO && !(c->caps & SMTP_CAP_STARTTLS))
		find_mangled(u, r);
	ready(u);
}

/* banner - the connection's banner r. */
static void
banner(struct upstream *u, const struct smtp_reply *r, int code)
{
	struct up_conn *c = &u->c;

	/* the first word of the banner: the SNI hint and the reported MX name */
	smtp_reply_name(r, c->name, sizeof(c->name));
	keep_raw(&c->banner, r);
	if (c->banner_quiet) {
		if (code != 220) {
			fail(u, "banner refused on reconnect");
			return;
		}
		if (u->helo[0] == '\0') {
			/* A reconnect before the client greeted: wait for its name. */
			enter(u, UP_IDLE);
			return;
		}
		cmd(u, "EHLO", u->helo);
		enter(u, UP_EHLO);
		return;
	}
	/* The banner goes to the client as it is; a refusal is followed as given. */
	enter(u, code == 220 ? UP_IDLE : UP_READY);
	note(u, UPN_BANNER, r, NULL);
}

/*
 * finish_reuse - the RSET was answered 250 and the client greeted with the
 * connection's EHLO name: the connection is this session's, with its own
 * EHLO reply replayed (what the MX said on it, after TLS).
 */
static void
finish_reuse(struct upstream *u)
{
	struct up_conn *c = &u->c;
	enum upstream_phase ph = c->phase;
	struct smtp_reply *ehlo;

	if ((ehlo = reply_of(c->ehlo)) == NULL) {
		reconnect(u, "no EHLO reply kept");
		return;
	}
	c->reused = c->greeted = c->finish = false;
	u->window = !u->retried;
	upstream_pool_count(u->p.pool, POOL_SAVED);
	note(u, UPN_EHLO, ehlo, NULL);
	smtp_reply_free(ehlo);
	if (c->phase != ph)
		return; /* the session closed the connection */
	ready(u);
}

/*
 * rset_reply - the reply to the RSET on a connection taken from the pool:
 * anything but 250 (a 421 above all) is a quiet reconnect; a 250 waits for
 * the client's EHLO, or finishes the set-up when it came already.
 */
static void
rset_reply(struct upstream *u, int code)
{
	struct up_conn *c = &u->c;

	if (code != 250) {
		reconnect(u, "RSET refused");
		return;
	}
	if (!c->greeted) {
		enter(u, UP_IDLE);
		return;
	}
	finish_reuse(u);
}

/* on_reply - a whole reply is in c->rd. */
static void
on_reply(struct upstream *u)
{
	struct up_conn *c = &u->c;
	struct smtp_reply *r = c->rd;
	int code = smtp_reply_code(r);

	if (c->rd_unsolicited) {
		c->doubt = true;
		if (c->reused) {
			reconnect(u, "unsolicited reply");
			return;
		}
		if (code == 421 && offer_retry(u, "unsolicited 421"))
			return;
		note(u, UPN_UNSOLICITED, r, NULL);
		return;
	}
	switch (c->phase) {
	case UP_BANNER:
		banner(u, r, code);
		return;
	case UP_EHLO:
	case UP_HELO:
	case UP_EHLO_TLS:
		ehlo_reply(u, r, code);
		return;
	case UP_STARTTLS:
		starttls_reply(u, r, code);
		return;
	case UP_READY:
		/* RFC 5321 section 3.8: the server is closing the connection. */
		if (code == 421 && offer_retry(u, "421 after the check"))
			return;
		c->due--;
		c->last_ok = code >= 200 && code < 300;
		note(u, UPN_REPLY, r, NULL);
		return;
	case UP_RSET:
		rset_reply(u, code);
		return;
	default:
		c->doubt = true;
		note(u, UPN_UNSOLICITED, r, NULL);
		return;
	}
}

/* reply_due - a reply beginning now answers something we sent. */
static bool
reply_due(const struct up_conn *c)
{
	switch (c->phase) {
	case UP_BANNER:
	case UP_EHLO:
	case UP_HELO:
	case UP_STARTTLS:
	case UP_EHLO_TLS:
	case UP_RSET:
		return true;
	case UP_READY:
		return c->due > 0;
	default:
		return false;
	}
}

/* read_replies - feed whole lines to the reply reader. >0 on progress. */
static int
read_replies(struct upstream *u)
{
	struct up_conn *c = &u->c;
	const char *line;
	size_t len;
	int flags, r, progress = 0;

	while (c->io != NULL && c->connected && c->phase != UP_HANDSHAKE &&
	       (line = tls_io_line(c->io, &len, &flags)) != NULL) {
		if (flags & TLS_IO_LINE_TOO_LONG) {
			fail(u, "reply line too long");
			return 1;
		}
		if (flags & TLS_IO_LINE_NO_EOL) {
			fail(u, "unterminated reply");
			return 1;
		}
		/*
		 * A reply that begins while none is due is unsolicited however
		 * it ends: its first lines must not become the answer to a
		 * command (above all a final dot) sent while it was arriving.
		 */
		if (c->rd == NULL || smtp_reply_done(c->rd) || smtp_reply_nlines(c->rd) == 0)
			c->rd_unsolicited = !reply_due(c);
		if (c->rd == NULL && (c->rd = smtp_reply_new()) == NULL) {
			fail(u, "no memory");
			return 1;
		}
		r = smtp_reply_feed(c->rd, line, len);
		tls_io_consume(c->io, len);
		progress = 1;
		if (r == SMTP_REPLY_BAD) {
			log_info("session=%s bad reply from upstream: %s", u->sid,
			         smtp_reply_error(c->rd));
			fail(u, "malformed reply");
			return 1;
		}
		if (r == SMTP_REPLY_DONE)
			on_reply(u);
	}
	/* An idle reply reader holds memory for nothing. */
	if (c->rd != NULL && smtp_reply_done(c->rd) && c->phase == UP_READY && c->due == 0) {
		smtp_reply_free(c->rd);
		c->rd = NULL;
	}
	return progress;
}

/* replay_banner - the session's banner is the one this pooled connection began with. */
static void
replay_banner(struct upstream *u)
{
	struct up_conn *c = &u->c;
	struct smtp_reply *r;

	c->replay = false;
	if ((r = reply_of(c->banner)) == NULL) {
		reconnect(u, "no banner kept");
		return;
	}
	/* The phase stays UP_RSET until the check is answered. */
	note(u, UPN_BANNER, r, NULL);
	smtp_reply_free(r);
}

int
upstream_run(struct upstream *u)
{
	struct up_conn *c = &u->c;
	int r, progress = 0;

	if (c->replay) {
		replay_banner(u);
		return 1;
	}
	if (c->finish) {
		finish_reuse(u);
		return 1;
	}
	if (c->io == NULL || !c->connected)
		return 0;
	if ((r = tls_io_pump(c->io)) < 0) {
		/* The handshake may have completed in the very call that failed. */
		fail(u, tls_io_error(c->io));
		return 1;
	}
	progress |= r;
	if (c->phase == UP_HANDSHAKE) {
		if (!tls_io_handshake_done(c->io))
			return progress;
		handshake_done(u);
		progress = 1;
	}
	return progress | read_replies(u);
}

void
upstream_on_event(struct upstream *u, int events)
{
	struct up_conn *c = &u->c;
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->io == NULL)
		return;
	tls_io_events_seen(c->io, events);
	if (c->phase != UP_CONNECT || c->connected)
		return;
	if (getsockopt(tls_io_fd(c->io), SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		fail(u, strerror(err));
		return;
	}
	c->connected = true;
	enter(u, UP_BANNER);
}

/* on_fd - loop callback; the session's own callback drives the run. */
static void
on_fd(struct loop *loop, int fd, int events, void *arg)
{
	struct upstream *u = arg;

	(void)loop;
	(void)fd;
	upstream_on_event(u, events);
	note(u, UPN_IO, NULL, NULL);
}

void
upstream_send(struct upstream *u, const char *buf, size_t len)
{
	if (u->c.io == NULL || tls_io_write(u->c.io, buf, len) < 0)
		u->c.write_failed = true;
}

size_t
upstream_out_space(const struct upstream *u)
{
	return u->c.io != NULL ? tls_io_out_space(u->c.io) : 0;
}

void
upstream_command(struct upstream *u, const char *line, size_t len)
{
	upstream_send(u, line, len);
	u->c.due++;
}

void
upstream_expect_reply(struct upstream *u)
{
	u->c.due++;
}

unsigned
upstream_replies_due(const struct upstream *u)
{
	return u->c.due;
}

bool
upstream_broken(const struct upstream *u)
{
	return u->c.write_failed;
}

unsigned
upstream_conn_id(const struct upstream *u)
{
	return u->conns;
}

enum upstream_phase
upstream_phase(const struct upstream *u)
{
	return u->c.phase;
}

unsigned
upstream_timeout_s(const struct upstream *u)
{
	const struct conf_timeouts *t = &u->p.conf->timeouts;

	switch (u->c.phase) {
	case UP_CLOSED:
		return 0;
	case UP_CONNECT:
		return t->connect;
	case UP_BANNER:
		return t->greeting;
	case UP_STARTTLS:
	case UP_HANDSHAKE:
		return t->starttls;
	case UP_RSET:
		/* A check slower than a new connection gives way to one. */
		return t->connect;
	default:
		return t->command;
	}
}

void
upstream_timeout(struct upstream *u)
{
	switch (u->c.phase) {
	case UP_CLOSED:
		note(u, UPN_LOST, NULL, "421 4.4.1 Cannot reach the destination mail server\r\n");
		return;
	case UP_CONNECT:
		fail(u, "connect timeout");
		return;
	case UP_STARTTLS:
		/* A STARTTLS that never answers is a downgrade attempt. */
		emit(u, RELAY_EV_DOWNGRADE, STS_RESULT_STARTTLS_NOT_SUPPORTED, NULL, 0, "reported",
		     "timeout waiting for the reply to STARTTLS");
		lost(u, "STARTTLS timeout", "421 4.4.2 Destination mail server timed out\r\n");
		return;
	default:
		fail(u, "timeout");
		return;
	}
}

const struct tls_facts *
upstream_tls(const struct upstream *u)
{
	const struct up_conn *c = &u->c;

	/* Derived from the live connection: ready, handshake completed, still TLS. */
	if (c->phase != UP_READY || c->io == NULL || c->facts == NULL || c->plain ||
	    !tls_io_is_tls(c->io) || !tls_io_handshake_done(c->io) || !c->facts->handshake_done)
		return NULL;
	return c->facts;
}

const struct tls_facts *
upstream_fallback_cause(const struct upstream *u)
{
	return u->c.plain ? u->cause : NULL;
}

unsigned
upstream_caps(const struct upstream *u)
{
	return u->c.caps;
}

void
upstream_learn_caps(struct upstream *u, const struct smtp_reply *r)
{
	struct smtp_ehlo caps;

	if (!u->c.helo_only && smtp_ehlo_parse(r, &caps) == 0)
		u->c.caps = caps.caps;
	keep_raw(&u->c.ehlo, r);
}

void
upstream_message_done(struct upstream *u)
{
	u->c.msgs++;
}

bool
upstream_may_park(const struct upstream *u)
{
	const struct up_conn *c = &u->c;

	if (u->p.pool == NULL)
		return false;
	return upstream_tls(u) != NULL ||
	       (c->reused && (c->phase == UP_IDLE || c->phase == UP_RSET));
}

bool
upstream_awaits_greeting(const struct upstream *u)
{
	const struct up_conn *c = &u->c;

	/* A quiet reconnect before the client greeted waits for its name too. */
	return c->phase == UP_IDLE || (c->phase == UP_RSET && c->reused && !c->greeted) ||
	       ((c->phase == UP_CONNECT || c->phase == UP_BANNER) && c->banner_quiet &&
	        u->helo[0] == '\0');
}

/* parkable - every condition of upstream_release() on the connection itself. */
static bool
parkable(const struct upstream *u, bool open)
{
	const struct up_conn *c = &u->c;
	const struct conf *cf = u->p.conf;
	SSL *ssl;
	size_t n;

	if (u->p.pool == NULL || u->client[0] == '\0' || c->io == NULL || c->doubt ||
	    c->write_failed || c->due > 0 || c->replay || c->finish || c->greeted || c->plain ||
	    c->helo_only || c->banner == NULL || c->ehlo == NULL ||
	    strncmp(c->banner, "220", 3) != 0)
		return false;
	if (tls_io_in(c->io, &n) != NULL || tls_io_out_pending(c->io) > 0 ||
	    (c->rd != NULL && !smtp_reply_done(c->rd)) ||
	    ((ssl = tls_io_ssl(c->io)) != NULL && SSL_pending(ssl) > 0))
		return false;
	/* Taken from the pool, not yet used: as clean as when it was parked. */
	if (c->phase == UP_IDLE && c->reused)
		return true;
	if (open || c->phase != UP_READY || upstream_tls(u) == NULL || !c->last_ok || c->msgs == 0)
		return false;
	return cf->upstream.reuse_max_messages == 0 || c->msgs < cf->upstream.reuse_max_messages;
}

bool
upstream_release(struct upstream *u, bool open)
{
	struct up_conn *c = &u->c;
	unsigned msgs = c->msgs;

	if (c->phase == UP_CLOSED)
		return false;
	if (parkable(u, open)) {
		loop_fd_del(u->p.loop, tls_io_fd(c->io));
		smtp_reply_free(c->rd);
		c->rd = NULL;
		c->reused = false;
		c->phase = UP_READY;
		if (upstream_pool_put(u->p.pool, c, u->client, (const struct sockaddr *)&u->dst,
		                      u->p.dst_len) == 0) {
			log_info("session=%s upstream connection parked for reuse (messages=%u)",
			         u->sid, msgs);
			return true;
		}
	}
	upstream_conn_free(u->p.loop, c, true);
	return false;
}

bool
upstream_helo_only(const struct upstream *u)
{
	return u->c.helo_only;
}

const char *
upstream_name(const struct upstream *u)
{
	return u->c.name;
}

const char *
upstream_seen(const struct upstream *u)
{
	return u->c.seen;
}

bool
upstream_idle(const struct upstream *u)
{
	size_t n;

	return u->c.io == NULL ||
	       (tls_io_in(u->c.io, &n) == NULL && tls_io_out_pending(u->c.io) == 0);
}

void
upstream_set_active(struct upstream *u, bool active)
{
	if (u->c.io != NULL)
		tls_io_set_active(u->c.io, active);
}

void
upstream_update_io(struct upstream *u)
{
	if (u->c.io == NULL)
		return;
	loop_fd_mod(u->p.loop, tls_io_fd(u->c.io),
	            u->c.connected ? tls_io_events(u->c.io) : LOOP_WRITE);
}

int
upstream_local_addr(const struct upstream *u, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	if (u->c.io == NULL || getsockname(tls_io_fd(u->c.io), (struct sockaddr *)ss, &len) < 0)
		return -1;
	return 0;
}
