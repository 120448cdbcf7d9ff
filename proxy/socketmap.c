/*
 * socketmap.c - the socketmap server: listeners, connections and their
 * state machine, on one worker's loop.
 *
 * A connection is in one state at a time (enum conn_state): reading
 * requests, waiting for the engine's answer to one, or writing a reply
 * the socket did not take at once. Requests are taken one by one from a
 * bounded input buffer, so pipelined requests are answered in order and
 * never more than one lookup per connection is open. Replies are built in
 * the server's scratch buffer and written straight from it; only what the
 * socket does not take is copied into the connection.
 *
 * One timer per connection, moved lazily: it carries the deadline of the
 * current state (idle, lookup, write) and re-arms itself when the deadline
 * moved later, so a busy connection costs no timer operation per request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>

#include "core/log.h"
#include "core/netstring.h"
#include "core/util.h"
#include "proxy/socketmap.h"

#define ACCEPT_BURST     64
#define ACCEPT_PAUSE_MS  100
#define OUT_INLINE       1024 /* pending replies up to this size stay in the connection */
#define BATCH_MAX        8192 /* replies of pipelined requests gathered before a send() */
#define HEADROOM         16   /* before the reply in scratch: its netstring length */
#define LOOKUP_MAX_MS    90000
#define REASON_TOO_LONG  "request too long"
#define REASON_MALFORMED "malformed request"

enum conn_state {
	C_READ = 0, /* waiting for (the rest of) a request */
	C_LOOKUP,   /* the engine is looking the domain up; reading paused */
	C_WRITE,    /* a reply is partly written; reading paused */
};

static const char *const state_names[] = {"read", "lookup", "write"};

struct conn {
	struct smap *s;
	struct conn *prev, *next;
	int fd;
	uint64_t id;
	enum conn_state state;
	uint64_t timer;    /* loop timer id; 0: none armed */
	uint64_t timer_at; /* when it fires */
	uint64_t deadline; /* when the current state's time is up */
	uint64_t lookup;   /* engine lookup id in C_LOOKUP */
	struct smap_query q;
	bool close_after; /* close once the replies are written */
	bool batching;    /* inside process(): replies wait in out[] for one send() */
	size_t req_used;  /* octets of in[] the request being answered took */
	char *out;        /* replies not written yet: out_small, or heap when larger */
	size_t out_len, out_off, out_cap;
	char out_small[OUT_INLINE];
	size_t in_len, in_cap;
	char in[]; /* in_cap octets: the longest request and its framing */
};

struct smap {
	struct loop *loop;
	struct sts_engine *engine;
	const struct conf *conf;
	struct smap_stats *stats;
	unsigned worker_id;
	struct smap_reply_opts opts;
	uint64_t idle_ms, lookup_ms;
	int *lfds;
	char **ltext;
	size_t n_lfds;
	uint64_t pause_timer;
	bool shutting_down;
	struct conn *conns;
	unsigned n_conns;
	uint64_t next_id;
	struct sts_answer answer;                    /* lookup_now's answer */
	char scratch[HEADROOM + SMAP_REPLY_MAX + 2]; /* one reply being built */
};

static void on_io(struct loop *loop, int fd, int events, void *arg);
static void on_timer(struct loop *loop, void *arg);
static int process(struct conn *c);
static void out_free(struct conn *c);

static void
enter_state(struct conn *c, enum conn_state to)
{
	if (c->state != to)
		log_debug("event=socketmap worker=%u conn=%llu state=%s->%s", c->s->worker_id,
		          (unsigned long long)c->id, state_names[c->state], state_names[to]);
	c->state = to;
}

/* conn_close - the one teardown: lookup, timer, fd, memory, slot */
static void
conn_close(struct conn *c)
{
	struct smap *s = c->s;

	if (c->lookup != 0)
		sts_engine_cancel(s->engine, c->lookup);
	loop_timer_cancel(s->loop, c->timer);
	loop_fd_del(s->loop, c->fd);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	out_free(c);
	atomic_fetch_sub_explicit(&s->stats->active, 1, memory_order_relaxed);
	free(c);
}

/* set_deadline - the current state's time runs out ms from now */
static void
set_deadline(struct conn *c, uint64_t ms)
{
	struct smap *s = c->s;
	uint64_t now = loop_now_ms(s->loop);

	c->deadline = now + ms;
	if (c->timer != 0 && c->timer_at <= c->deadline)
		return; /* fires first and re-arms itself */
	loop_timer_cancel(s->loop, c->timer);
	c->timer = loop_timer_add(s->loop, ms, on_timer, c);
	c->timer_at = c->deadline;
}

/* fail - an error on c, logged once here; c is closed. Always -1. */
static int
fail(struct conn *c, const char *what, int err)
{
	atomic_fetch_add_explicit(&c->s->stats->errors, 1, memory_order_relaxed);
	log_notice("event=socketmap worker=%u conn=%llu state=%s error=\"%s%s%s\"", c->s->worker_id,
	           (unsigned long long)c->id, state_names[c->state], what, err != 0 ? ": " : "",
	           err != 0 ? strerror(err) : "");
	conn_close(c);
	return -1;
}

/* out_free - drop the written replies' buffer */
static void
out_free(struct conn *c)
{
	if (c->out != NULL && c->out != c->out_small)
		free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
}

/*
 * flush - write what waits in out[]. All written: back to C_READ (or
 * closed, after a PERM), idle deadline; else C_WRITE until the socket
 * takes the rest. 0, or -1 when c was closed.
 */
static int
flush(struct conn *c)
{
	struct smap *s = c->s;

	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return fail(c, "write", errno);
		c->out_off += (size_t)n;
	}
	if (c->out_off < c->out_len) {
		enter_state(c, C_WRITE);
		set_deadline(c, s->idle_ms);
		if (loop_fd_mod(s->loop, c->fd, LOOP_WRITE) < 0)
			return fail(c, "event loop", errno);
		return 0;
	}
	out_free(c);
	if (c->close_after) {
		conn_close(c);
		return -1;
	}
	enter_state(c, C_READ);
	set_deadline(c, s->idle_ms);
	if (loop_fd_mod(s->loop, c->fd, LOOP_READ) < 0)
		return fail(c, "event loop", errno);
	return 0;
}

/*
 * send_reply - frame the dlen octets at s->scratch + HEADROOM, queue them
 * in out[] and consume the request they answer; written now unless
 * process() gathers the replies of one read. 0, or -1 when c was closed.
 */
static int
send_reply(struct conn *c, size_t dlen, enum smap_kind kind)
{
	struct smap *s = c->s;
	char hdr[HEADROOM];
	int h = snprintf(hdr, sizeof(hdr), "%zu:", dlen);
	size_t total = (size_t)h + dlen + 1;

	memcpy(s->scratch + HEADROOM - h, hdr, (size_t)h);
	s->scratch[HEADROOM + dlen] = ',';
	atomic_fetch_add_explicit(&s->stats->replies[kind], 1, memory_order_relaxed);
	if (c->out == NULL) {
		c->out = c->out_small;
		c->out_cap = sizeof(c->out_small);
	}
	if (c->out_len + total > c->out_cap) {
		/* at most BATCH_MAX and one reply (SMAP_REPLY_MAX): bounded */
		char *p = malloc(c->out_len + total);

		if (p == NULL)
			return fail(c, "reply: out of memory", 0);
		memcpy(p, c->out, c->out_len);
		if (c->out != c->out_small)
			free(c->out);
		c->out = p;
		c->out_cap = c->out_len + total;
	}
	memcpy(c->out + c->out_len, s->scratch + HEADROOM - h, total);
	c->out_len += total;
	memmove(c->in, c->in + c->req_used, c->in_len - c->req_used);
	c->in_len -= c->req_used;
	c->req_used = 0;
	if (c->batching && !c->close_after)
		return 0;
	return flush(c);
}

/* send_word - a reply with no lookup behind it */
static int
send_word(struct conn *c, enum smap_kind kind, const char *reason)
{
	size_t n = smap_reply_word(kind, reason, c->s->scratch + HEADROOM, SMAP_REPLY_MAX + 1);

	return send_reply(c, n, kind);
}

/* send_answer - the reply to c's query from the engine's answer a */
static int
send_answer(struct conn *c, const struct sts_answer *a)
{
	struct smap *s = c->s;
	enum smap_kind kind;
	size_t n =
	    smap_reply_build(a, &c->q, &s->opts, s->scratch + HEADROOM, SMAP_REPLY_MAX + 1, &kind);

	if (n == 0) {
		log_warn("event=socketmap worker=%u conn=%llu domain=%s error=\"reply longer than "
		         "%d octets\"",
		         s->worker_id, (unsigned long long)c->id, c->q.domain, SMAP_REPLY_MAX);
		return send_word(c, SMAP_TEMP, "reply too long");
	}
	if (kind == SMAP_TEMP)
		log_notice("event=socketmap worker=%u conn=%llu domain=%s reply=temp reason=\"%s\"",
		           s->worker_id, (unsigned long long)c->id, c->q.domain,
		           a->reason[0] != '\0' ? a->reason : "DNSSEC");
	return send_reply(c, n, kind);
}

/* on_answer - the engine finished c's lookup */
static void
on_answer(void *arg, const struct sts_answer *a)
{
	struct conn *c = arg;

	c->lookup = 0;
	if (send_answer(c, a) == 0 && c->state == C_READ)
		process(c);
}

/* request - one complete request: answer from memory, or start a lookup */
static int
request(struct conn *c, const char *data, size_t dlen)
{
	struct smap *s = c->s;

	smap_query_parse(data, dlen, &c->q);
	if (!c->q.lookup)
		return send_word(c, SMAP_NOTFOUND, "");
	if (sts_engine_lookup_now(s->engine, c->q.domain, NULL, &s->answer) == 1)
		return send_answer(c, &s->answer);
	/* Earlier replies leave first; if the socket does not take them all,
	 * this request is parsed again once they are written. */
	if (c->out_len > 0) {
		if (flush(c) < 0)
			return -1;
		if (c->state == C_WRITE)
			return 0;
	}
	atomic_fetch_add_explicit(&s->stats->lookups_async, 1, memory_order_relaxed);
	c->lookup = sts_engine_lookup(s->engine, c->q.domain, NULL, on_answer, c);
	if (c->lookup == 0) {
		log_warn("event=socketmap worker=%u conn=%llu domain=%s error=\"lookup could not "
		         "start\"",
		         s->worker_id, (unsigned long long)c->id, c->q.domain);
		return send_word(c, SMAP_TEMP, "lookup could not start");
	}
	enter_state(c, C_LOOKUP);
	set_deadline(c, s->lookup_ms);
	if (loop_fd_mod(s->loop, c->fd, 0) < 0)
		return fail(c, "event loop", errno);
	return 0;
}

/*
 * process - answer the complete requests in the buffer, in order, their
 * replies gathered for one send(). 0, or -1 when c was closed.
 */
static int
process(struct conn *c)
{
	int rc = 0;

	c->batching = true;
	while (rc == 0 && c->state == C_READ) {
		const char *data;
		size_t dlen, used;

		if (c->out_len >= BATCH_MAX) {
			rc = flush(c);
			continue;
		}
		switch (netstring_parse(c->in, c->in_len, c->s->conf->socketmap.max_request, &data,
		                        &dlen, &used)) {
		case NETSTRING_OK:
			c->req_used = used;
			rc = request(c, data, dlen);
			break;
		case NETSTRING_MORE:
			c->batching = false;
			if (c->out_len > 0 && flush(c) < 0)
				return -1;
			if (c->state == C_READ && c->s->shutting_down && c->in_len == 0) {
				conn_close(c);
				return -1;
			}
			return 0;
		case NETSTRING_TOOBIG:
		case NETSTRING_BAD: {
			bool big =
			    c->in_len > 0 && c->in[0] >= '0' && c->in[0] <= '9' &&
			    netstring_parse(c->in, c->in_len, c->s->conf->socketmap.max_request,
			                    &data, &dlen, &used) == NETSTRING_TOOBIG;

			/* The stream cannot be resynchronised: say why, then close. */
			atomic_fetch_add_explicit(&c->s->stats->errors, 1, memory_order_relaxed);
			log_notice("event=socketmap worker=%u conn=%llu error=\"%s\"",
			           c->s->worker_id, (unsigned long long)c->id,
			           big ? REASON_TOO_LONG : REASON_MALFORMED);
			c->close_after = true;
			c->batching = false;
			c->req_used = c->in_len;
			return send_word(c, SMAP_PERM, big ? REASON_TOO_LONG : REASON_MALFORMED);
		}
		}
	}
	if (rc == 0)
		c->batching = false;
	return rc;
}

/* on_io - the connection is readable (C_READ) or writable (C_WRITE) */
static void
on_io(struct loop *loop, int fd, int events, void *arg)
{
	struct conn *c = arg;
	ssize_t n;

	(void)loop;
	if (c->state == C_WRITE && (events & LOOP_WRITE)) {
		if (flush(c) == 0 && c->state == C_READ)
			process(c);
		return;
	}
	if (c->state != C_READ || !(events & LOOP_READ))
		return;
	n = read(fd, c->in + c->in_len, c->in_cap - c->in_len);
	if (n == 0) {
		/* Postfix closes an idle connection after its own timeout. */
		log_debug("event=socketmap worker=%u conn=%llu closed=peer", c->s->worker_id,
		          (unsigned long long)c->id);
		conn_close(c);
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			fail(c, "read", errno);
		return;
	}
	c->in_len += (size_t)n;
	set_deadline(c, c->s->idle_ms);
	process(c);
}

/* on_timer - the armed time is up: re-arm if the deadline moved, else act */
static void
on_timer(struct loop *loop, void *arg)
{
	struct conn *c = arg;
	uint64_t now = loop_now_ms(loop);

	c->timer = 0;
	if (now < c->deadline) {
		c->timer = loop_timer_add(loop, c->deadline - now, on_timer, c);
		c->timer_at = c->deadline;
		if (c->timer == 0)
			fail(c, "timer: out of memory", 0);
		return;
	}
	switch (c->state) {
	case C_LOOKUP:
		sts_engine_cancel(c->s->engine, c->lookup);
		c->lookup = 0;
		log_notice("event=socketmap worker=%u conn=%llu domain=%s error=\"lookup timed "
		           "out\"",
		           c->s->worker_id, (unsigned long long)c->id, c->q.domain);
		if (send_word(c, SMAP_TEMP, "lookup timed out") == 0 && c->state == C_READ)
			process(c);
		break;
	case C_WRITE:
		fail(c, "reply not taken in time", 0);
		break;
	case C_READ:
		log_debug("event=socketmap worker=%u conn=%llu closed=idle", c->s->worker_id,
		          (unsigned long long)c->id);
		conn_close(c);
		break;
	}
}

/* conn_new - a connection for fd, or -1 (fd closed) */
static void
conn_new(struct smap *s, int fd)
{
	size_t cap = (size_t)s->conf->socketmap.max_request + HEADROOM;
	struct conn *c = calloc(1, sizeof(*c) + cap);

	if (c == NULL) {
		log_warn("event=socketmap worker=%u error=\"connection: out of memory\"",
		         s->worker_id);
		atomic_fetch_sub_explicit(&s->stats->active, 1, memory_order_relaxed);
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->id = ++s->next_id;
	c->in_cap = cap;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	atomic_fetch_add_explicit(&s->stats->connections_total, 1, memory_order_relaxed);
	if (loop_fd_add(s->loop, fd, LOOP_READ, on_io, c) < 0) {
		fail(c, "event loop", errno);
		return;
	}
	set_deadline(c, s->idle_ms);
	if (c->timer == 0)
		fail(c, "timer: out of memory", 0);
}

/* reserve - one of max_connections, shared by every worker */
static bool
reserve(struct smap *s)
{
	unsigned cur = atomic_load_explicit(&s->stats->active, memory_order_relaxed);

	do {
		if (cur >= s->conf->socketmap.max_connections)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
	    &s->stats->active, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
	return true;
}

static void
listeners_set(struct smap *s, int events)
{
	for (size_t i = 0; i < s->n_lfds; i++)
		if (s->lfds[i] >= 0)
			loop_fd_mod(s->loop, s->lfds[i], events);
}

static void
on_resume(struct loop *loop, void *arg)
{
	struct smap *s = arg;

	(void)loop;
	s->pause_timer = 0;
	if (!s->shutting_down)
		listeners_set(s, LOOP_READ);
}

/* on_accept - take a bounded burst of queued connections */
static void
on_accept(struct loop *loop, int lfd, int events, void *arg)
{
	struct smap *s = arg;

	(void)events;
	for (int i = 0; i < ACCEPT_BURST && !s->shutting_down; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			if (!reserve(s)) {
				atomic_fetch_add_explicit(&s->stats->connections_refused, 1,
				                          memory_order_relaxed);
				log_warn("event=socketmap worker=%u error=\"max_connections %u "
				         "reached\"",
				         s->worker_id, s->conf->socketmap.max_connections);
				close(fd);
				continue;
			}
			conn_new(s, fd);
			continue;
		}
		switch (errno) {
		case EAGAIN:
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			log_warn("event=socketmap worker=%u error=\"accept: %s\" pause_ms=%d",
			         s->worker_id, strerror(errno), ACCEPT_PAUSE_MS);
			listeners_set(s, 0);
			if (s->pause_timer == 0)
				s->pause_timer =
				    loop_timer_add(loop, ACCEPT_PAUSE_MS, on_resume, s);
			if (s->pause_timer == 0)
				listeners_set(s, LOOP_READ);
			return;
		default:
			log_err("event=socketmap worker=%u error=\"accept: %s\"", s->worker_id,
			        strerror(errno));
			return;
		}
	}
}

struct smap *
smap_new(const struct smap_params *p)
{
	struct smap *s = calloc(1, sizeof(*s));
	uint64_t lookup_s;

	if (s == NULL)
		return NULL;
	s->loop = p->loop;
	s->engine = p->engine;
	s->conf = p->conf;
	s->stats = p->stats;
	s->worker_id = p->worker_id;
	s->opts.testing_secure = p->conf->socketmap.testing_secure;
	s->opts.tlsrpt = p->conf->socketmap.tlsrpt;
	s->idle_ms = (uint64_t)p->conf->socketmap.idle_timeout * 1000;
	/* The engine's own timeouts end every lookup; this only bounds a hang,
	 * well within Postfix's socketmap timeout (100 s). */
	lookup_s = 3ull * p->conf->dns.timeout + p->conf->sts.fetch_timeout + 5;
	s->lookup_ms = lookup_s * 1000 < LOOKUP_MAX_MS ? lookup_s * 1000 : LOOKUP_MAX_MS;
	return s;
}

int
smap_add_listener(struct smap *s, int fd, const char *text)
{
	int *lfds = realloc(s->lfds, (s->n_lfds + 1) * sizeof(*lfds));
	char **lt;

	if (lfds != NULL)
		s->lfds = lfds;
	lt = lfds != NULL ? realloc(s->ltext, (s->n_lfds + 1) * sizeof(*lt)) : NULL;
	if (lt != NULL)
		s->ltext = lt;
	if (lfds == NULL || lt == NULL || (lt[s->n_lfds] = strdup(text)) == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	s->lfds[s->n_lfds++] = fd;
	return loop_fd_add(s->loop, fd, LOOP_READ, on_accept, s);
}

static void
close_listeners(struct smap *s)
{
	for (size_t i = 0; i < s->n_lfds; i++) {
		if (s->lfds[i] < 0)
			continue;
		loop_fd_del(s->loop, s->lfds[i]);
		close(s->lfds[i]);
		s->lfds[i] = -1;
	}
	loop_timer_cancel(s->loop, s->pause_timer);
	s->pause_timer = 0;
}

void
smap_shutdown(struct smap *s)
{
	struct conn *c, *next;

	if (s == NULL || s->shutting_down)
		return;
	s->shutting_down = true;
	close_listeners(s);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_READ) /* a partial request is not worth waiting for */
			conn_close(c);
		else
			c->close_after = true;
	}
}

unsigned
smap_count(const struct smap *s)
{
	return s != NULL ? s->n_conns : 0;
}

void
smap_free(struct smap *s)
{
	if (s == NULL)
		return;
	close_listeners(s);
	while (s->conns != NULL)
		conn_close(s->conns);
	for (size_t i = 0; i < s->n_lfds; i++)
		free(s->ltext[i]);
	free(s->ltext);
	free(s->lfds);
	free(s);
}

/* listen_unix - a unix socket at path, replacing a stale one */
static int
listen_unix(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	const char *what = "socket";
	int fd;

	if (sts_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socketmap unix:%s: path too long", path);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "socketmap unix:%s: exists and is not a socket",
			         path);
			return -1;
		}
		unlink(path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	what = "bind";
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		goto fail;
	what = "chmod";
	if (chmod(path, 0666) < 0)
		goto fail;
	what = "listen";
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "socketmap unix:%s: %s: %s", path, what, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int
smap_listen(const char *text, int backlog, char *err, size_t errlen)
{
	struct conf_addr a;
	const char *what = "socket";
	int on = 1, fd;

	if (strncmp(text, "unix:", 5) == 0)
		return listen_unix(text + 5, backlog, err, errlen);
	if (conf_parse_addr(text, &a) < 0) {
		snprintf(err, errlen, "socketmap %s: expected ADDRESS:PORT or unix:/path", text);
		return -1;
	}
	if ((fd = socket(a.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	what = "SO_REUSEADDR";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		goto fail;
	what = "IPV6_V6ONLY";
	if (a.sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
		goto fail;
	what = "bind";
	if (bind(fd, (struct sockaddr *)&a.sa, a.salen) < 0)
		goto fail;
	what = "listen";
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "socketmap %s: %s: %s", text, what, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}
