/*
 * upstream_pool.c - idle upstream connections of one worker loop (see
 * upstream_pool.h): a list, most recently parked first, bounded per
 * destination (upstream.reuse_max_per_dest) and in total
 * (upstream.reuse_max); the oldest goes first when a bound is reached.
 *
 * A parked connection is watched for reading: whatever the MX sends while
 * nobody asked (a 421, a close, a TLS alert) drops it at once, unread. Its
 * idle timer (upstream.reuse_idle) ends it with a QUIT. The pool never
 * parses a reply; a connection it hands out is checked by its session
 * with an RSET before anything is relayed on it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "proxy/upstream_internal.h"

struct entry {
	struct entry *next, *prev;
	struct upstream_pool *pool;
	struct up_conn c;
	char client[64];
	struct sockaddr_storage dst;
	socklen_t dst_len;
	uint64_t timer;
};

struct upstream_pool {
	struct upstream_pool_params p;
	struct entry *head, *tail; /* head: most recently parked */
	unsigned n;
};

static void
stat_add(_Atomic uint64_t *c, int64_t n)
{
	if (c != NULL)
		atomic_fetch_add_explicit(c, (uint64_t)n, memory_order_relaxed);
}

struct upstream_pool *
upstream_pool_new(const struct upstream_pool_params *p)
{
	struct upstream_pool *pool;

	if ((pool = calloc(1, sizeof(*pool))) == NULL)
		return NULL;
	pool->p = *p;
	return pool;
}

unsigned
upstream_pool_size(const struct upstream_pool *p)
{
	return p != NULL ? p->n : 0;
}

void
upstream_pool_count(struct upstream_pool *p, enum upstream_pool_stat what)
{
	if (p == NULL)
		return;
	switch (what) {
	case POOL_MISS:
		stat_add(p->p.stats.missed, 1);
		break;
	case POOL_SAVED:
		stat_add(p->p.stats.saved, 1);
		break;
	case POOL_RETRY:
		stat_add(p->p.stats.retried, 1);
		break;
	}
}

/* unlink - take e out of the list, its watch and its timer; e keeps its connection. */
static void
unlink_entry(struct upstream_pool *p, struct entry *e)
{
	loop_timer_cancel(p->p.loop, e->timer);
	e->timer = 0;
	if (e->c.io != NULL)
		loop_fd_del(p->p.loop, tls_io_fd(e->c.io));
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		p->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		p->tail = e->prev;
	p->n--;
	stat_add(p->p.stats.idle, -1);
}

/* drop - close e's connection (QUIT first when quit) and free it. */
static void
drop(struct upstream_pool *p, struct entry *e, bool quit, const char *why)
{
	log_debug("upstream pool: drop dest_client=%s msgs=%u: %s", e->client, e->c.msgs, why);
	unlink_entry(p, e);
	upstream_conn_free(p->p.loop, &e->c, quit);
	free(e);
}

/* on_idle_fd - the MX spoke or closed while nobody asked: drop, unread. */
static void
on_idle_fd(struct loop *loop, int fd, int events, void *arg)
{
	struct entry *e = arg;

	(void)loop;
	(void)fd;
	(void)events;
	drop(e->pool, e, false, "the server spoke or closed while idle");
}

/* on_idle_timer - upstream.reuse_idle passed. */
static void
on_idle_timer(struct loop *loop, void *arg)
{
	struct entry *e = arg;

	(void)loop;
	e->timer = 0;
	drop(e->pool, e, true, "idle limit");
}

/* same_dst - the same address family, address and port. */
static bool
same_dst(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
		       x->sin6_scope_id == y->sin6_scope_id;
	}
	return false;
}

/* quiet - nothing is waiting on the socket: no byte, no end of file. */
static bool
quiet(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int
upstream_pool_put(struct upstream_pool *p, struct up_conn *c, const char *client,
                  const struct sockaddr *dst, socklen_t dst_len)
{
	const struct conf *cf = p->p.conf;
	struct entry *e, *x, *oldest = NULL;
	unsigned same = 0;
	int fd;

	if (cf->upstream.reuse_idle == 0 || cf->upstream.reuse_max == 0 || c->io == NULL ||
	    dst_len > sizeof(e->dst) || strlen(client) >= sizeof(e->client))
		return -1;
	for (x = p->head; x != NULL; x = x->next)
		if (same_dst((const struct sockaddr *)&x->dst, dst)) {
			same++;
			oldest = x;
		}
	if (same >= cf->upstream.reuse_max_per_dest && oldest != NULL)
		drop(p, oldest, true, "reuse_max_per_dest reached");
	if (p->n >= cf->upstream.reuse_max && p->tail != NULL)
		drop(p, p->tail, true, "reuse_max reached");
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	fd = tls_io_fd(c->io);
	if (!quiet(fd) || loop_fd_add(p->p.loop, fd, LOOP_READ, on_idle_fd, e) < 0) {
		free(e);
		return -1;
	}
	e->timer =
	    loop_timer_add(p->p.loop, (uint64_t)cf->upstream.reuse_idle * 1000, on_idle_timer, e);
	if (e->timer == 0) {
		loop_fd_del(p->p.loop, fd);
		free(e);
		return -1;
	}
	e->pool = p;
	e->c = *c;
	memset(c, 0, sizeof(*c));
	c->phase = UP_CLOSED;
	snprintf(e->client, sizeof(e->client), "%s", client);
	memcpy(&e->dst, dst, dst_len);
	e->dst_len = dst_len;
	tls_io_set_active(e->c.io, false);
	e->next = p->head;
	if (p->head != NULL)
		p->head->prev = e;
	else
		p->tail = e;
	p->head = e;
	p->n++;
	stat_add(p->p.stats.idle, 1);
	stat_add(p->p.stats.parked, 1);
	return 0;
}

int
upstream_pool_take(struct upstream_pool *p, const char *client, const struct sockaddr *dst,
                   socklen_t dst_len, struct up_conn *out)
{
	struct entry *e, *next;

	(void)dst_len;
	for (e = p->head; e != NULL; e = next) {
		next = e->next;
		if (strcmp(e->client, client) != 0 ||
		    !same_dst((const struct sockaddr *)&e->dst, dst))
			continue;
		/* Bytes or an end that the loop has not reported yet: never handed out. */
		if (!quiet(tls_io_fd(e->c.io))) {
			drop(p, e, false, "the server spoke or closed while idle");
			continue;
		}
		unlink_entry(p, e);
		*out = e->c;
		free(e);
		stat_add(p->p.stats.taken, 1);
		return 0;
	}
	return -1;
}

void
upstream_pool_flush(struct upstream_pool *p)
{
	if (p == NULL)
		return;
	while (p->head != NULL)
		drop(p, p->head, true, "flushed");
}

void
upstream_pool_free(struct upstream_pool *p)
{
	if (p == NULL)
		return;
	upstream_pool_flush(p);
	free(p);
}
