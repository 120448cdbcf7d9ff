/*
 * onereq.c - one request per connection: accept within a bound on the
 * number of connections, read a bounded request, write one answer, finish,
 * with one timer bounding each connection from accept to close.
 *
 * The protocol is all in the owner's callbacks (onereq.h); what is here is
 * what the metrics endpoint and the control socket would otherwise each
 * carry: the connection list, the states, and the careful end of an
 * exchange, where a close over unread input would reset the connection and
 * could lose the answer on its way.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/onereq.h"

/* ONEREQ_CLOSE reads at most this much unsent input before closing: 8 KiB. */
#define CLOSE_DRAIN_READS 16
#define CLOSE_DRAIN_CHUNK 512

enum conn_state {
	CS_READ = 0,
	CS_WRITE,
	CS_LINGER,
};

struct conn {
	struct onereq *srv;
	int fd;
	enum conn_state state;
	int tag; /* from accepted() */
	char *out;
	size_t out_len;
	size_t out_off; /* out_off <= out_len */
	uint64_t timer;
	struct conn *prev, *next;
	size_t in_len; /* in_len <= srv->request_max */
	char in[];     /* request_max + 1 octets, zeroed: in[in_len] == '\0' */
};

struct onereq {
	struct loop *loop;
	int fd;
	size_t request_max;
	unsigned max_clients;
	unsigned timeout_ms;
	enum onereq_finish finish;
	char *busy; /* NULL: refuse without a word */
	size_t busy_len;
	onereq_complete_fn *complete;
	onereq_answer_fn *answer;
	onereq_accepted_fn *accepted;
	void *arg;
	const char *ev_timeout;
	const char *ev_accept_failed;
	unsigned n_conns;
	struct conn *conns;
};

/* conn_free - the one teardown of a connection: timer, loop, socket, memory. */
static void
conn_free(struct conn *c)
{
	struct onereq *s = c->srv;

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
	free(c->out);
	free(c);
}

static void
conn_timeout(struct loop *loop, void *arg)
{
	struct conn *c = arg;

	(void)loop;
	c->timer = 0;
	log_debug("event=%s fd=%d", c->srv->ev_timeout, c->fd);
	conn_free(c);
}

/* conn_answer - ask the owner for the answer and start writing it. */
static void
conn_answer(struct conn *c, bool too_long)
{
	struct onereq *s = c->srv;
	struct onereq_request req = {
	    .buf = c->in, .len = c->in_len, .too_long = too_long, .tag = c->tag};
	char *out = NULL;
	size_t out_len = 0;

	if (s->answer(s->arg, &req, &out, &out_len) < 0) {
		conn_free(c);
		return;
	}
	c->out = out;
	c->out_len = out_len;
	c->out_off = 0;
	c->state = CS_WRITE;
	if (loop_fd_mod(s->loop, c->fd, LOOP_WRITE) < 0)
		conn_free(c);
}

static void
conn_read(struct conn *c)
{
	struct onereq *s = c->srv;
	bool too_long = false;

	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, s->request_max - c->in_len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_free(c);
			return;
		}
		if (n == 0) {
			if (!s->complete(c->in, c->in_len, true)) {
				conn_free(c);
				return;
			}
			break;
		}
		c->in_len += (size_t)n;
		if (s->complete(c->in, c->in_len, false))
			break;
		/* Full and still incomplete: answered now, never read further. */
		if (c->in_len == s->request_max) {
			too_long = true;
			break;
		}
	}
	conn_answer(c, too_long);
}

/* conn_finish - the answer is out: end the exchange as the owner asked. */
static void
conn_finish(struct conn *c)
{
	if (c->srv->finish == ONEREQ_LINGER) {
		shutdown(c->fd, SHUT_WR);
		c->state = CS_LINGER;
		if (loop_fd_mod(c->srv->loop, c->fd, LOOP_READ) < 0)
			conn_free(c);
		return;
	}
	for (int i = 0; i < CLOSE_DRAIN_READS; i++) {
		char junk[CLOSE_DRAIN_CHUNK];

		if (recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT) <= 0)
			break;
	}
	conn_free(c);
}

static void
conn_write(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_free(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	conn_finish(c);
}

/* conn_linger - discard input until the peer closes (or the timer fires). */
static void
conn_linger(struct conn *c)
{
	char junk[1024];

	for (;;) {
		ssize_t n = recv(c->fd, junk, sizeof(junk), 0);

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_free(c);
		return;
	}
}

static void
conn_io(struct loop *loop, int fd, int events, void *arg)
{
	struct conn *c = arg;

	(void)loop;
	(void)fd;
	switch (c->state) {
	case CS_READ:
		if (events & LOOP_READ)
			conn_read(c);
		break;
	case CS_WRITE:
		if (events & LOOP_WRITE)
			conn_write(c);
		break;
	case CS_LINGER:
		if (events & LOOP_READ)
			conn_linger(c);
		break;
	}
}

/* refuse_busy - one connection too many: the busy answer if there is one, then close. */
static void
refuse_busy(const struct onereq *s, int fd)
{
	if (s->busy != NULL) {
		ssize_t n = send(fd, s->busy, s->busy_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		(void)n; /* best effort: the peer may try again */
	}
	close(fd);
}

static void
listener_io(struct loop *loop, int fd, int events, void *arg)
{
	struct onereq *s = arg;

	(void)events;
	for (;;) {
		struct conn *c;
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_debug("event=%s error=\"%s\"", s->ev_accept_failed,
				          strerror(errno));
			return;
		}
		if (s->n_conns >= s->max_clients) {
			refuse_busy(s, cfd);
			continue;
		}
		if ((c = calloc(1, sizeof(*c) + s->request_max + 1)) == NULL) {
			close(cfd);
			continue;
		}
		c->srv = s;
		c->fd = cfd;
		c->state = CS_READ;
		if ((c->timer = loop_timer_add(loop, s->timeout_ms, conn_timeout, c)) == 0 ||
		    loop_fd_add(loop, cfd, LOOP_READ, conn_io, c) < 0) {
			loop_timer_cancel(loop, c->timer);
			close(cfd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = c;
		s->conns = c;
		s->n_conns++;
		if (s->accepted != NULL)
			c->tag = s->accepted(s->arg, cfd);
	}
}

/* onereq_start - see onereq.h */
struct onereq *
onereq_start(const struct onereq_params *p)
{
	struct onereq *s;
	int e;

	if (p == NULL || p->loop == NULL || p->fd < 0 || p->request_max == 0 ||
	    p->request_max > SIZE_MAX - sizeof(struct conn) - 1 || p->max_clients == 0 ||
	    p->timeout_ms == 0 || (p->finish != ONEREQ_CLOSE && p->finish != ONEREQ_LINGER) ||
	    p->complete == NULL || p->answer == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (p->busy_answer != NULL && p->busy_len > 0) {
		if ((s->busy = malloc(p->busy_len)) == NULL)
			goto fail;
		memcpy(s->busy, p->busy_answer, p->busy_len);
		s->busy_len = p->busy_len;
	}
	s->loop = p->loop;
	s->fd = p->fd;
	s->request_max = p->request_max;
	s->max_clients = p->max_clients;
	s->timeout_ms = p->timeout_ms;
	s->finish = p->finish;
	s->complete = p->complete;
	s->answer = p->answer;
	s->accepted = p->accepted;
	s->arg = p->arg;
	s->ev_timeout = p->ev_timeout != NULL ? p->ev_timeout : "onereq_timeout";
	s->ev_accept_failed =
	    p->ev_accept_failed != NULL ? p->ev_accept_failed : "onereq_accept_failed";
	if (loop_fd_add(s->loop, s->fd, LOOP_READ, listener_io, s) < 0)
		goto fail;
	return s;
fail:
	e = errno;
	free(s->busy);
	free(s);
	errno = e;
	return NULL;
}

/* onereq_clients - see onereq.h */
unsigned
onereq_clients(const struct onereq *s)
{
	return s != NULL ? s->n_conns : 0;
}

/* onereq_stop - see onereq.h */
void
onereq_stop(struct onereq *s)
{
	if (s == NULL)
		return;
	while (s->conns != NULL)
		conn_free(s->conns);
	loop_fd_del(s->loop, s->fd);
	free(s->busy);
	free(s);
}
