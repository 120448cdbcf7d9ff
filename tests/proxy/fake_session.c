/*
 * fake_session.c - stands in for proxy/session.c in tests of the accept
 * path: a session writes a banner naming its worker and the original
 * destination, then lives until the client closes (so that max_sessions
 * can be reached) or session_shutdown_all() ends it with a 421.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/session.h"
#include "proxy/upstream_pool.h"

struct session {
	struct session_ctx *ctx;
	int fd;
	struct session *next;
};

/* fake_end - unlink, close, count and tell the owner, as the real one does */
static void
fake_end(struct session *s)
{
	struct session_ctx *ctx = s->ctx;
	struct session **pp = &ctx->sessions;

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	ctx->n_sessions--;
	atomic_fetch_sub(&ctx->stats->sessions_active, 1);
	loop_fd_del(ctx->loop, s->fd);
	close(s->fd);
	free(s);
	if (ctx->on_end != NULL)
		ctx->on_end(ctx->on_end_arg);
}

/* on_client - discard input; end at EOF or error */
static void
on_client(struct loop *loop, int fd, int events, void *arg)
{
	char buf[512];
	ssize_t n;

	(void)loop;
	(void)events;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		fake_end(arg);
}

/* session_start - banner, then wait for the client to leave */
int
session_start(struct session_ctx *ctx, int client_fd, const struct sockaddr *client,
              socklen_t client_len, const struct sockaddr *orig_dst, socklen_t orig_len)
{
	struct session *s;
	char line[128];
	int n;

	(void)client;
	(void)client_len;
	(void)orig_len;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(client_fd);
		return -1;
	}
	s->ctx = ctx;
	s->fd = client_fd;
	n = snprintf(line, sizeof(line), "220 fake.session worker=%u family=%d\r\n", ctx->worker_id,
	             orig_dst->sa_family);
	if (send(client_fd, line, (size_t)n, MSG_NOSIGNAL) < 0 ||
	    loop_fd_add(ctx->loop, client_fd, LOOP_READ, on_client, s) < 0) {
		close(client_fd);
		free(s);
		return -1;
	}
	s->next = ctx->sessions;
	ctx->sessions = s;
	ctx->n_sessions++;
	atomic_fetch_add(&ctx->stats->sessions_total, 1);
	atomic_fetch_add(&ctx->stats->sessions_active, 1);
	return 0;
}

/* session_shutdown_all - every session gets the drain reply and ends now */
void
session_shutdown_all(struct session_ctx *ctx)
{
	static const char bye[] = "421 4.3.2 stsproxy shutting down\r\n";

	while (ctx->sessions != NULL) {
		struct session *s = ctx->sessions;

		ssize_t n = send(s->fd, bye, sizeof(bye) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

		(void)n; /* the client may be gone already */
		fake_end(s);
	}
}

/* session_abort_all - the fake has nothing in flight: the same as a shutdown */
void
session_abort_all(struct session_ctx *ctx)
{
	session_shutdown_all(ctx);
}

/* session_count - sessions alive on ctx's loop */
unsigned
session_count(const struct session_ctx *ctx)
{
	return ctx->n_sessions;
}

/*
 * The fake sessions never leave an upstream connection behind: the pool
 * of idle upstream connections is an empty one that holds nothing.
 */
struct upstream_pool {
	int unused;
};

struct upstream_pool *
upstream_pool_new(const struct upstream_pool_params *p)
{
	(void)p;
	return calloc(1, sizeof(struct upstream_pool));
}

void
upstream_pool_flush(struct upstream_pool *p)
{
	(void)p;
}

void
upstream_pool_free(struct upstream_pool *p)
{
	free(p);
}

unsigned
upstream_pool_size(const struct upstream_pool *p)
{
	(void)p;
	return 0;
}
