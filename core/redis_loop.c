/*
 * redis_loop.c - hiredis's asynchronous connection bound to core/loop.
 *
 * The connection is one explicit state machine:
 *
 *   IDLE (no target) -> CONNECTING -> UP -> WAITING (backoff) -> CONNECTING
 *
 * CONNECTING covers the TCP or unix connect, AUTH and a PING, all under
 * the connect timer. hiredis asks for read and write interest through the
 * ev hooks; the loop calls back and we hand the event to
 * redisAsyncHandleRead/Write.
 *
 * hiredis frees its context, and calls every pending callback with a NULL
 * reply, when the connection fails or is freed. Freeing a context from
 * inside one of its own callbacks is deferred by hiredis, so this file
 * never frees one there: a callback that wants the connection gone sets
 * want_drop, and the fd callback drops it once hiredis has returned. For
 * the same reason redis_loop_free() inside a callback only marks the
 * connection dead; the outermost callback of this file destroys it.
 */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/redis_loop.h"

enum rl_state {
	RL_IDLE = 0,   /* no target yet */
	RL_CONNECTING, /* connect, AUTH, PING under the connect timer */
	RL_UP,         /* commands accepted */
	RL_WAITING,    /* backoff before the next connect */
};

static const char *const rl_state_names[] = {
    [RL_IDLE] = "idle",
    [RL_CONNECTING] = "connecting",
    [RL_UP] = "up",
    [RL_WAITING] = "waiting",
};

struct rl_cmd {
	struct rl_cmd *next, *prev;
	struct redis_loop *r;
	uint64_t id;
	uint64_t timer;
	redis_loop_reply_cb *cb; /* NULL: cancelled, the reply is dropped */
	void *arg;
};

struct rl_sub {
	struct redis_loop *r;
	char *channel;
	redis_loop_message_cb *cb;
	void *arg;
};

struct redis_loop {
	struct loop *loop;
	char *name, *path, *host, *user, *password;
	uint16_t port;
	unsigned connect_ms, command_ms, backoff_min, backoff_max, backoff;
	redis_loop_state_cb *on_state;
	void *state_arg;

	enum rl_state state;
	redisAsyncContext *ac; /* NULL outside CONNECTING and UP */
	int fd;                /* ac's fd while the loop watches it; -1 */
	int mask;              /* LOOP_READ|LOOP_WRITE asked for by hiredis */
	bool registered;       /* fd is known to the loop */
	uint64_t conn_timer, retry_timer;

	struct rl_cmd *cmds; /* sent, not yet answered (cancelled ones too) */
	uint64_t next_id;
	struct rl_sub subs[REDIS_LOOP_MAX_SUBS];
	size_t n_subs;

	int depth;       /* callbacks of this file running */
	bool in_hiredis; /* inside redisAsyncHandleRead/Write */
	bool want_drop;  /* drop the connection once hiredis returns */
	bool retry_now;  /* reconnect without backoff (a new target) */
	bool dead;       /* freed inside a callback: destroy when it unwinds */
	const char *why; /* why want_drop */
	struct redis_loop_stats stats;
};

static void connect_start(struct redis_loop *r);
static void destroy(struct redis_loop *r);

/* --- states ------------------------------------------------------------------ */

static void
enter(struct redis_loop *r, enum rl_state s)
{
	if (r->state != s)
		log_debug("event=redis-state name=%s state=%s->%s", r->name,
		          rl_state_names[r->state], rl_state_names[s]);
	r->state = s;
}

static void
set_error(struct redis_loop *r, const char *what, const char *detail)
{
	snprintf(r->stats.last_error, sizeof(r->stats.last_error), "%s%s%s", what,
	         detail != NULL && detail[0] != '\0' ? ": " : "", detail != NULL ? detail : "");
}

static void
unwind(struct redis_loop *r)
{
	if (--r->depth == 0 && r->dead)
		destroy(r);
}

/* --- the loop's side of hiredis's ev hooks ------------------------------------- */

static void fd_cb(struct loop *loop, int fd, int events, void *arg);

static void
set_mask(struct redis_loop *r, int mask)
{
	if (r->fd < 0 || mask == r->mask)
		return;
	if (!r->registered) {
		if (loop_fd_add(r->loop, r->fd, mask, fd_cb, r) < 0) {
			r->want_drop = true;
			r->why = "cannot watch the socket";
			return;
		}
		r->registered = true;
	} else if (loop_fd_mod(r->loop, r->fd, mask) < 0) {
		r->want_drop = true;
		r->why = "cannot watch the socket";
		return;
	}
	r->mask = mask;
}

static void
ev_add_read(void *p)
{
	struct redis_loop *r = p;
	set_mask(r, r->mask | LOOP_READ);
}

static void
ev_del_read(void *p)
{
	struct redis_loop *r = p;
	set_mask(r, r->mask & ~LOOP_READ);
}

static void
ev_add_write(void *p)
{
	struct redis_loop *r = p;
	set_mask(r, r->mask | LOOP_WRITE);
}

static void
ev_del_write(void *p)
{
	struct redis_loop *r = p;
	set_mask(r, r->mask & ~LOOP_WRITE);
}

/* ev_cleanup - hiredis is about to close the socket. */
static void
ev_cleanup(void *p)
{
	struct redis_loop *r = p;

	if (r->fd >= 0 && r->registered)
		loop_fd_del(r->loop, r->fd);
	r->fd = -1;
	r->mask = 0;
	r->registered = false;
}

/* --- reconnecting --------------------------------------------------------------- */

static void
retry_cb(struct loop *loop, void *arg)
{
	struct redis_loop *r = arg;

	(void)loop;
	r->retry_timer = 0;
	r->depth++;
	connect_start(r);
	unwind(r);
}

/* schedule_retry - WAITING, and a connect after the backoff (doubling). */
static void
schedule_retry(struct redis_loop *r)
{
	unsigned ms = r->retry_now ? 0 : r->backoff;

	r->retry_now = false;
	enter(r, RL_WAITING);
	if (r->dead)
		return;
	if (ms != 0)
		r->backoff = r->backoff >= r->backoff_max / 2 ? r->backoff_max : r->backoff * 2;
	loop_timer_cancel(r->loop, r->retry_timer);
	r->retry_timer = loop_timer_add(r->loop, ms, retry_cb, r);
}

/*
 * drop - free the connection (never from inside a hiredis callback):
 * pending commands get NULL replies, then a reconnect is scheduled.
 */
static void
drop(struct redis_loop *r, const char *why)
{
	redisAsyncContext *ac = r->ac;
	bool was_up = r->state == RL_UP;

	if (ac == NULL)
		return;
	if (why != NULL) {
		r->stats.failures++;
		set_error(r, why, ac->errstr);
		log_warn("event=redis-down name=%s reason=\"%s\"", r->name, why);
	}
	r->ac = NULL; /* its callbacks below see they are not the current connection's */
	r->want_drop = false;
	loop_timer_cancel(r->loop, r->conn_timer);
	r->conn_timer = 0;
	enter(r, RL_WAITING);
	r->depth++;
	redisAsyncFree(ac);
	if (was_up && r->on_state != NULL && !r->dead)
		r->on_state(r->state_arg, false);
	schedule_retry(r);
	unwind(r);
}

static void
fd_cb(struct loop *loop, int fd, int events, void *arg)
{
	struct redis_loop *r = arg;

	(void)loop;
	(void)fd;
	r->depth++;
	r->in_hiredis = true;
	if ((events & LOOP_READ) && r->ac != NULL)
		redisAsyncHandleRead(r->ac);
	if ((events & LOOP_WRITE) && r->ac != NULL)
		redisAsyncHandleWrite(r->ac);
	r->in_hiredis = false;
	if (r->want_drop && r->ac != NULL)
		drop(r, r->why);
	unwind(r);
}

static void
conn_timeout_cb(struct loop *loop, void *arg)
{
	struct redis_loop *r = arg;

	(void)loop;
	r->conn_timer = 0;
	drop(r, "connect timeout");
}

/* --- hiredis callbacks ------------------------------------------------------------- */

static void went_up(struct redis_loop *r);

static void
sub_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rl_sub *s = priv;
	struct redis_loop *r = s->r;
	const redisReply *rep = reply;

	if (rep == NULL || ac != r->ac || r->dead)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		r->stats.errors++;
		set_error(r, "subscribe", rep->str);
		r->want_drop = true;
		r->why = "subscribe refused";
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rep->element[0]->str, "message") != 0 ||
	    rep->element[2]->type != REDIS_REPLY_STRING)
		return; /* the subscription's confirmation */
	r->stats.messages++;
	s->cb(s->arg, s->channel, rep->element[2]->str, rep->element[2]->len);
}

static void
subscribe_one(struct redis_loop *r, struct rl_sub *s)
{
	const char *argv[2] = {"SUBSCRIBE", s->channel};

	if (redisAsyncCommandArgv(r->ac, sub_cb, s, 2, argv, NULL) != REDIS_OK) {
		r->want_drop = true;
		r->why = "subscribe failed";
	}
}

static void
ping_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_loop *r = priv;
	const redisReply *rep = reply;

	if (rep == NULL || ac != r->ac || r->dead || r->want_drop)
		return; /* after a refused AUTH, a PING answers for the default user */
	if (rep->type == REDIS_REPLY_ERROR) {
		set_error(r, "PING", rep->str);
		r->want_drop = true;
		r->why = "PING refused";
		return;
	}
	went_up(r);
}

static void
auth_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_loop *r = priv;
	const redisReply *rep = reply;

	if (rep == NULL || ac != r->ac || r->dead)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		log_err("event=redis-auth name=%s result=refused reason=\"%s\"", r->name, rep->str);
		r->want_drop = true;
		r->why = "AUTH refused";
	}
}

static void
went_up(struct redis_loop *r)
{
	loop_timer_cancel(r->loop, r->conn_timer);
	r->conn_timer = 0;
	r->backoff = r->backoff_min;
	r->stats.connects++;
	enter(r, RL_UP);
	log_info("event=redis-up name=%s", r->name);
	for (size_t i = 0; i < r->n_subs; i++)
		subscribe_one(r, &r->subs[i]);
	if (r->on_state != NULL)
		r->on_state(r->state_arg, true);
}

static void
connect_cb(const redisAsyncContext *ac, int status)
{
	struct redis_loop *r = ac->data;
	const char *argv[3];
	int argc = 0;

	if (ac != r->ac)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees ac when this returns. */
		r->ac = NULL;
		r->stats.failures++;
		set_error(r, "connect", ac->errstr);
		log_warn("event=redis-down name=%s reason=\"connect: %s\"", r->name, ac->errstr);
		loop_timer_cancel(r->loop, r->conn_timer);
		r->conn_timer = 0;
		schedule_retry(r);
		return;
	}
	if (r->password != NULL) {
		argv[argc++] = "AUTH";
		if (r->user != NULL)
			argv[argc++] = r->user;
		argv[argc++] = r->password;
		if (redisAsyncCommandArgv(r->ac, auth_cb, r, argc, argv, NULL) != REDIS_OK)
			goto fail;
	}
	argv[0] = "PING";
	if (redisAsyncCommandArgv(r->ac, ping_cb, r, 1, argv, NULL) != REDIS_OK)
		goto fail;
	return;
fail:
	r->want_drop = true;
	r->why = "cannot send the handshake";
}

static void
disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct redis_loop *r = ac->data;
	bool was_up = r->state == RL_UP;

	(void)status;
	if (ac != r->ac)
		return; /* dropped on purpose: drop() goes on */
	/* hiredis lost the connection and frees ac when this returns. */
	r->ac = NULL;
	r->stats.failures++;
	set_error(r, "connection lost", ac->errstr);
	log_warn("event=redis-down name=%s reason=\"connection lost: %s\"", r->name,
	         ac->errstr[0] != '\0' ? ac->errstr : "closed");
	loop_timer_cancel(r->loop, r->conn_timer);
	r->conn_timer = 0;
	enter(r, RL_WAITING);
	if (was_up && r->on_state != NULL && !r->dead)
		r->on_state(r->state_arg, false);
	schedule_retry(r);
}

/* --- connecting ---------------------------------------------------------------------- */

static void
connect_start(struct redis_loop *r)
{
	redisAsyncContext *ac;

	if (r->dead || r->ac != NULL)
		return;
	if (r->path == NULL && r->host == NULL) {
		enter(r, RL_IDLE);
		return;
	}
	ac = r->path != NULL ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->host, r->port);
	if (ac == NULL || ac->err) {
		r->stats.failures++;
		set_error(r, "connect", ac != NULL ? ac->errstr : "out of memory");
		log_warn("event=redis-down name=%s reason=\"%s\"", r->name, r->stats.last_error);
		if (ac != NULL)
			redisAsyncFree(ac);
		schedule_retry(r);
		return;
	}
	enter(r, RL_CONNECTING);
	r->ac = ac;
	r->fd = ac->c.fd;
	r->mask = 0;
	r->registered = false;
	ac->data = r;
	ac->ev.data = r;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	r->conn_timer = loop_timer_add(r->loop, r->connect_ms, conn_timeout_cb, r);
	/* The hooks are in place: setting the connect callback asks for write
	 * interest, which is how hiredis learns that the connect completed. */
	redisAsyncSetConnectCallback(ac, connect_cb);
	redisAsyncSetDisconnectCallback(ac, disconnect_cb);
}

/* --- public ---------------------------------------------------------------------- */

static char *
dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*ok = false;
	return d;
}

struct redis_loop *
redis_loop_new(const struct redis_loop_params *p)
{
	struct redis_loop *r;
	bool ok = true;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->loop = p->loop;
	r->fd = -1;
	r->name = dup_or_null(p->name != NULL ? p->name : "redis", &ok);
	r->path = dup_or_null(p->path, &ok);
	r->host = p->path == NULL ? dup_or_null(p->host, &ok) : NULL;
	r->port = p->port;
	r->user = dup_or_null(p->user, &ok);
	r->password = dup_or_null(p->password, &ok);
	r->connect_ms = p->connect_timeout_ms != 0 ? p->connect_timeout_ms : 1000;
	r->command_ms = p->command_timeout_ms != 0 ? p->command_timeout_ms : 1000;
	r->backoff_min = p->backoff_min_ms != 0 ? p->backoff_min_ms : 100;
	r->backoff_max = p->backoff_max_ms != 0 ? p->backoff_max_ms : 5000;
	if (r->backoff_max < r->backoff_min)
		r->backoff_max = r->backoff_min;
	r->backoff = r->backoff_min;
	r->on_state = p->on_state;
	r->state_arg = p->state_arg;
	r->next_id = 1;
	if (!ok) {
		destroy(r);
		return NULL;
	}
	connect_start(r);
	return r;
}

static void
destroy(struct redis_loop *r)
{
	redisAsyncContext *ac = r->ac;

	r->dead = true;
	r->depth = 1; /* nothing below destroys it again */
	loop_timer_cancel(r->loop, r->conn_timer);
	loop_timer_cancel(r->loop, r->retry_timer);
	if (ac != NULL) {
		r->ac = NULL;
		redisAsyncFree(ac); /* every pending command's callback runs, dropped */
	}
	while (r->cmds != NULL) { /* none should be left; never leak one */
		struct rl_cmd *c = r->cmds;
		r->cmds = c->next;
		loop_timer_cancel(r->loop, c->timer);
		free(c);
	}
	for (size_t i = 0; i < r->n_subs; i++)
		free(r->subs[i].channel);
	free(r->name);
	free(r->path);
	free(r->host);
	free(r->user);
	free(r->password);
	free(r);
}

void
redis_loop_free(struct redis_loop *r)
{
	if (r == NULL)
		return;
	if (r->depth > 0) {
		r->dead = true;
		loop_timer_cancel(r->loop, r->retry_timer);
		r->retry_timer = 0;
		return;
	}
	destroy(r);
}

int
redis_loop_target(struct redis_loop *r, const char *host, uint16_t port)
{
	char *h;

	if (r->host != NULL && strcmp(r->host, host) == 0 && r->port == port && r->path == NULL)
		return 0;
	if ((h = strdup(host)) == NULL)
		return -1;
	free(r->path);
	r->path = NULL;
	free(r->host);
	r->host = h;
	r->port = port;
	log_notice("event=redis-target name=%s address=%s port=%u", r->name, host, port);
	r->retry_now = true;
	if (r->ac != NULL) {
		if (r->in_hiredis) {
			r->want_drop = true;
			r->why = NULL;
		} else {
			drop(r, NULL);
		}
		return 0;
	}
	loop_timer_cancel(r->loop, r->retry_timer);
	r->retry_timer = 0;
	r->retry_now = false;
	connect_start(r);
	return 0;
}

bool
redis_loop_up(const struct redis_loop *r)
{
	return r != NULL && r->state == RL_UP && r->ac != NULL && !r->dead;
}

static void
cmd_unlink(struct redis_loop *r, struct rl_cmd *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		r->cmds = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
}

static void
cmd_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rl_cmd *c = priv;
	struct redis_loop *r = c->r;
	const redisReply *rep = reply;

	(void)ac;
	cmd_unlink(r, c);
	loop_timer_cancel(r->loop, c->timer);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
		r->stats.errors++;
		set_error(r, "error reply", rep->str);
	}
	if (c->cb != NULL && !r->dead)
		c->cb(c->arg, rep);
	free(c);
}

static void
cmd_timeout_cb(struct loop *loop, void *arg)
{
	struct rl_cmd *c = arg;
	struct redis_loop *r = c->r;

	(void)loop;
	c->timer = 0;
	r->stats.timeouts++;
	drop(r, "command timeout");
}

uint64_t
redis_loop_command(struct redis_loop *r, int argc, const char **argv, const size_t *argvlen,
                   redis_loop_reply_cb *cb, void *arg)
{
	struct rl_cmd *c;

	if (!redis_loop_up(r) || r->want_drop || (c = calloc(1, sizeof(*c))) == NULL)
		return 0;
	c->r = r;
	c->cb = cb;
	c->arg = arg;
	if ((c->timer = loop_timer_add(r->loop, r->command_ms, cmd_timeout_cb, c)) == 0 ||
	    redisAsyncCommandArgv(r->ac, cmd_reply, c, argc, argv, argvlen) != REDIS_OK) {
		loop_timer_cancel(r->loop, c->timer);
		free(c);
		return 0;
	}
	c->id = r->next_id++;
	c->next = r->cmds;
	if (r->cmds != NULL)
		r->cmds->prev = c;
	r->cmds = c;
	r->stats.commands++;
	return c->id;
}

void
redis_loop_cancel(struct redis_loop *r, uint64_t id)
{
	if (r == NULL || id == 0)
		return;
	for (struct rl_cmd *c = r->cmds; c != NULL; c = c->next)
		if (c->id == id) {
			c->cb = NULL;
			return;
		}
}

int
redis_loop_subscribe(struct redis_loop *r, const char *channel, redis_loop_message_cb *cb,
                     void *arg)
{
	struct rl_sub *s;

	if (r->n_subs >= REDIS_LOOP_MAX_SUBS)
		return -1;
	s = &r->subs[r->n_subs];
	if ((s->channel = strdup(channel)) == NULL)
		return -1;
	s->r = r;
	s->cb = cb;
	s->arg = arg;
	r->n_subs++;
	if (redis_loop_up(r))
		subscribe_one(r, s);
	return 0;
}

void
redis_loop_stats(const struct redis_loop *r, struct redis_loop_stats *out)
{
	*out = r->stats;
}
