/*
 * worker.c - an event-loop thread: accepts intercepted connections on its
 * own SO_REUSEPORT listeners, refuses what must not be relayed, and hands
 * the rest to sessions that live on its loop until they end.
 *
 * Everything here runs on the worker's thread except worker_new(),
 * worker_start(), worker_stop() and worker_free(), which the main thread
 * calls before the thread starts, through the eventfd, or after the join.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "policy/sts_engine.h"
#include "proxy/intercept.h"
#include "proxy/upstream_pool.h"
#include "proxy/worker.h"

#define ACCEPT_BURST    64  /* connections taken per wake-up, so one busy listener cannot starve */
#define ACCEPT_PAUSE_MS 100 /* out of descriptors: stop accepting this long instead of spinning */
#define DRAIN_POLL_MS   100
#define ABORT_GRACE_MS  2000 /* for the 421s of an aborted drain to be written */
#define LISTEN_BACKLOG  1024
#define TOO_MANY_LINE   "421 4.7.0 stsproxy: too many sessions, try again later\r\n"

struct worker {
	unsigned id;
	const struct conf *conf;
	atomic_uint *active;
	unsigned max_sessions;

	struct loop *loop;
	struct sts_engine *engine;
	struct smap *smap; /* the socketmap server; NULL without socketmap.listen */
	struct session_stats stats;
	struct session_ctx sctx;

	int *lfds; /* one per conf->listen[], same order; -1 once closed */
	size_t n_lfds;
	uint64_t pause_timer;

	int stopfd; /* eventfd: the main thread asks for a stop */
	bool draining;
	uint64_t drain_deadline; /* loop_now_ms() */
	uint64_t drain_timer;

	pthread_t thread;
	bool started;
	bool joined;
	atomic_bool finished; /* set by the thread as it returns */
	bool aborting;        /* the drain timed out: sessions were told 421 */
	bool abandoned;       /* sessions outlived even that: keep loop and engine */
};

static void on_accept(struct loop *loop, int fd, int events, void *arg);

/* addr_text - "a.b.c.d:port" or "[v6]:port" for logs. */
static const char *
addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	int n = -1;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host)) != NULL)
			n = snprintf(buf, len, "%s:%u", host, ntohs(s->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host)) != NULL)
			n = snprintf(buf, len, "[%s]:%u", host, ntohs(s->sin6_port));
	}
	if (n < 0 || (size_t)n >= len)
		snprintf(buf, len, "?");
	return buf;
}

/* client_allowed - an empty conf->clients lets every source in. */
static bool
client_allowed(const struct conf *c, const struct sockaddr *peer)
{
	if (c->n_clients == 0)
		return true;
	for (size_t i = 0; i < c->n_clients; i++) {
		if (conf_net_contains(&c->clients[i], peer))
			return true;
	}
	return false;
}

/* reserve - take one of the max_sessions slots shared by all workers. */
static bool
reserve(struct worker *w)
{
	unsigned cur = atomic_load_explicit(w->active, memory_order_relaxed);

	do {
		if (w->max_sessions != 0 && cur >= w->max_sessions)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
	    w->active, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
	return true;
}

/* on_session_end - a session of this worker is gone: its slot is free. */
static void
on_session_end(void *arg)
{
	struct worker *w = arg;

	atomic_fetch_sub_explicit(w->active, 1, memory_order_relaxed);
}

/* handle - decide the fate of one accepted connection. */
static void
handle(struct worker *w, int fd, const struct sockaddr *peer, socklen_t plen)
{
	struct sockaddr_storage dst;
	socklen_t dlen = sizeof(dst);
	char pbuf[INET6_ADDRSTRLEN + 8], dbuf[INET6_ADDRSTRLEN + 8];

	if (!client_allowed(w->conf, peer)) {
		log_notice("event=refused worker=%u client=%s reason=\"not in clients\"", w->id,
		           addr_text(peer, pbuf, sizeof(pbuf)));
		intercept_refuse(fd, INTERCEPT_REFUSED_LINE);
		return;
	}
	if (intercept_original_dst(fd, w->conf->interception, &dst, &dlen) < 0) {
		log_warn("event=refused worker=%u client=%s reason=\"original destination: %s\"",
		         w->id, addr_text(peer, pbuf, sizeof(pbuf)), strerror(errno));
		close(fd);
		return;
	}
	if (intercept_is_self((const struct sockaddr *)&dst, w->conf->listen, w->conf->n_listen)) {
		/* Only intercepted traffic is relayed: a direct connection to the
		 * proxy port would otherwise reach any destination it asks for. */
		log_notice("event=refused worker=%u client=%s dst=%s reason=\"not intercepted\"",
		           w->id, addr_text(peer, pbuf, sizeof(pbuf)),
		           addr_text((const struct sockaddr *)&dst, dbuf, sizeof(dbuf)));
		intercept_refuse(fd, INTERCEPT_REFUSED_LINE);
		return;
	}
	if (!reserve(w)) {
		log_warn(
		    "event=refused worker=%u client=%s dst=%s reason=\"max_sessions %u reached\"",
		    w->id, addr_text(peer, pbuf, sizeof(pbuf)),
		    addr_text((const struct sockaddr *)&dst, dbuf, sizeof(dbuf)), w->max_sessions);
		intercept_refuse(fd, TOO_MANY_LINE);
		return;
	}
	log_debug("event=accept worker=%u client=%s dst=%s", w->id,
	          addr_text(peer, pbuf, sizeof(pbuf)),
	          addr_text((const struct sockaddr *)&dst, dbuf, sizeof(dbuf)));
	if (session_start(&w->sctx, fd, peer, plen, (const struct sockaddr *)&dst, dlen) < 0) {
		/* fd is closed and on_end will not run: give the slot back. */
		log_err("event=accept worker=%u client=%s error=\"session: %s\"", w->id,
		        addr_text(peer, pbuf, sizeof(pbuf)), strerror(errno));
		on_session_end(w);
	}
}

/* listeners_set - watch (LOOP_READ) or pause (0) every open listener. */
static void
listeners_set(struct worker *w, int events)
{
	for (size_t i = 0; i < w->n_lfds; i++) {
		if (w->lfds[i] >= 0 && loop_fd_mod(w->loop, w->lfds[i], events) < 0)
			log_err("event=listen worker=%u error=\"%s\"", w->id, strerror(errno));
	}
}

/* on_resume - the accept pause is over */
static void
on_resume(struct loop *loop, void *arg)
{
	struct worker *w = arg;

	(void)loop;
	w->pause_timer = 0;
	if (!w->draining)
		listeners_set(w, LOOP_READ);
}

/* on_accept - take what the listener has queued, a bounded burst at a time */
static void
on_accept(struct loop *loop, int lfd, int events, void *arg)
{
	struct worker *w = arg;

	(void)events;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd;

		fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			handle(w, fd, (const struct sockaddr *)&peer, plen);
			if (w->draining)
				return; /* a session callback cannot stop us, but be safe */
			continue;
		}
		switch (errno) {
		case EAGAIN:
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue; /* a client that left before we got to it */
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* The pending connection stays queued and the listener stays
			 * readable: pause instead of spinning on it. */
			log_warn("event=accept worker=%u error=\"%s\" pause_ms=%d", w->id,
			         strerror(errno), ACCEPT_PAUSE_MS);
			listeners_set(w, 0);
			if (w->pause_timer == 0)
				w->pause_timer =
				    loop_timer_add(loop, ACCEPT_PAUSE_MS, on_resume, w);
			if (w->pause_timer == 0)
				listeners_set(w, LOOP_READ);
			return;
		default:
			log_err("event=accept worker=%u error=\"%s\"", w->id, strerror(errno));
			return;
		}
	}
}

/* close_listeners - stop accepting; queued connections are reset by the kernel. */
static void
close_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->n_lfds; i++) {
		if (w->lfds[i] < 0)
			continue;
		if (w->loop != NULL)
			loop_fd_del(w->loop, w->lfds[i]);
		close(w->lfds[i]);
		w->lfds[i] = -1;
	}
}

/* on_drain_tick - end the loop once the last session is gone, or at the deadline */
static void
on_drain_tick(struct loop *loop, void *arg)
{
	struct worker *w = arg;
	unsigned n = session_count(&w->sctx) + smap_count(w->smap);

	w->drain_timer = 0;
	if (n == 0) {
		loop_stop(loop);
		return;
	}
	if (loop_now_ms(loop) >= w->drain_deadline && !w->aborting) {
		/* timeouts.drain is over: close what is left with 421, and give
		 * those replies a moment to be written. */
		log_warn("event=stop worker=%u sessions=%u reason=\"drain timeout, closing with "
		         "421\"",
		         w->id, n);
		w->aborting = true;
		session_abort_all(&w->sctx);
		w->drain_deadline = loop_now_ms(loop) + ABORT_GRACE_MS;
	} else if (loop_now_ms(loop) >= w->drain_deadline) {
		log_warn("event=stop worker=%u sessions=%u reason=\"sessions did not close\"",
		         w->id, n);
		w->abandoned = true;
		loop_stop(loop);
		return;
	}
	w->drain_timer = loop_timer_add(loop, DRAIN_POLL_MS, on_drain_tick, w);
	if (w->drain_timer == 0) {
		w->abandoned = true;
		loop_stop(loop);
	}
}

/* on_stop - the main thread asked for a stop: stop accepting and drain */
static void
on_stop(struct loop *loop, int fd, int events, void *arg)
{
	struct worker *w = arg;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("event=stop worker=%u error=\"%s\"", w->id, strerror(errno));
	if (w->draining)
		return;
	w->draining = true;
	loop_timer_cancel(loop, w->pause_timer);
	w->pause_timer = 0;
	close_listeners(w);
	smap_shutdown(w->smap);
	/* Parked connections carry no session: they end now, with a QUIT. */
	upstream_pool_flush(w->sctx.pool);
	session_shutdown_all(&w->sctx);
	/* Sessions finish their transactions undisturbed for timeouts.drain;
	 * what is left then is closed with 421 (the mailer retries). */
	w->drain_deadline = loop_now_ms(loop) + (uint64_t)w->conf->timeouts.drain * 1000;
	on_drain_tick(loop, w);
}

/* worker_main - the thread: run the loop until the drain ends */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "stsproxy-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	if (loop_run(w->loop) < 0)
		log_err("event=loop worker=%u error=\"%s\"", w->id, strerror(errno));
	atomic_store(&w->finished, true);
	return NULL;
}

/* worker_finished - has the thread's loop returned? */
bool
worker_finished(const struct worker *w)
{
	return !w->started || atomic_load(&w->finished);
}

/*
 * inherited_fd - the listening socket a previous worker holds for addr (same
 * address text and interception mode), or -1. Read before that worker is
 * asked to stop: only its own thread closes listeners, and only on a stop.
 */
static int
inherited_fd(const struct worker *prev, const struct conf_addr *addr, enum conf_interception mode)
{
	if (prev == NULL || prev->conf->interception != mode)
		return -1;
	for (size_t i = 0; i < prev->n_lfds && i < prev->conf->n_listen; i++)
		if (strcmp(prev->conf->listen[i].text, addr->text) == 0)
			return prev->lfds[i];
	return -1;
}

/* smap_start - this worker's socketmap server, on dups of the process's listeners */
static int
smap_start(struct worker *w, const struct worker_params *p, char *err, size_t errlen)
{
	struct smap_params sp = {.loop = w->loop,
	                         .engine = w->engine,
	                         .conf = w->conf,
	                         .stats = p->smap_stats,
	                         .worker_id = w->id};

	if ((w->smap = smap_new(&sp)) == NULL) {
		snprintf(err, errlen, "worker %u: socketmap: out of memory", w->id);
		return -1;
	}
	for (size_t i = 0; i < p->n_smap_fds; i++) {
		const char *text = w->conf->socketmap.listen[i];
		int fd = fcntl(p->smap_fds[i], F_DUPFD_CLOEXEC, 0);

		if (fd < 0 || smap_add_listener(w->smap, fd, text) < 0) {
			snprintf(err, errlen, "socketmap %s: %s", text, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* worker_new - loop, engine and listeners of one worker; the thread is not started */
struct worker *
worker_new(const struct worker_params *p, char *err, size_t errlen)
{
	const struct conf *c = p->conf;
	struct sts_engine_params ep = {0};
	struct worker *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "worker %u: out of memory", p->id);
		return NULL;
	}
	w->id = p->id;
	w->conf = c;
	w->active = p->active;
	w->max_sessions = p->max_sessions;
	w->stopfd = -1;
	if ((w->loop = loop_new()) == NULL) {
		snprintf(err, errlen, "worker %u: event loop: %s", p->id, strerror(errno));
		goto fail;
	}
	ep.loop = w->loop;
	ep.conf = c;
	ep.cache = p->cache;
	ep.stats = p->engine_stats;
	/* The daemon's own engine refreshes the shared cache; one is enough. */
	ep.no_refresh = true;
	if ((w->engine = sts_engine_new(&ep, err, errlen)) == NULL)
		goto fail;

	w->sctx.loop = w->loop;
	w->sctx.conf = c;
	w->sctx.engine = w->engine;
	w->sctx.stats = &w->stats;
	w->sctx.report = p->report;
	w->sctx.worker_id = p->id;
	w->sctx.on_end = on_session_end;
	w->sctx.on_end_arg = w;
	if (c->upstream.reuse_idle > 0) {
		/* One pool per worker loop, used from its thread only: no locks. */
		struct upstream_pool_params pp = {
		    .loop = w->loop,
		    .conf = c,
		    .stats = {.parked = &w->stats.reuse_parked,
		              .taken = &w->stats.reuse_taken,
		              .saved = &w->stats.reuse_saved,
		              .retried = &w->stats.reuse_retried,
		              .missed = &w->stats.reuse_missed,
		              .idle = &w->stats.reuse_idle},
		};

		if ((w->sctx.pool = upstream_pool_new(&pp)) == NULL) {
			snprintf(err, errlen, "worker %u: out of memory", p->id);
			goto fail;
		}
	}
	if (p->upstream_tls != NULL && SSL_CTX_up_ref(p->upstream_tls) == 1)
		w->sctx.upstream_tls = p->upstream_tls;
	if (p->client_tls != NULL && SSL_CTX_up_ref(p->client_tls) == 1)
		w->sctx.client_tls = p->client_tls;
	if ((p->upstream_tls != NULL && w->sctx.upstream_tls == NULL) ||
	    (p->client_tls != NULL && w->sctx.client_tls == NULL)) {
		snprintf(err, errlen, "worker %u: TLS context reference failed", p->id);
		goto fail;
	}

	if ((w->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    loop_fd_add(w->loop, w->stopfd, LOOP_READ, on_stop, w) < 0) {
		snprintf(err, errlen, "worker %u: eventfd: %s", p->id, strerror(errno));
		goto fail;
	}

	if (c->n_listen > 0 && (w->lfds = calloc(c->n_listen, sizeof(*w->lfds))) == NULL) {
		snprintf(err, errlen, "worker %u: out of memory", p->id);
		goto fail;
	}
	for (size_t i = 0; i < c->n_listen; i++)
		w->lfds[i] = -1;
	w->n_lfds = c->n_listen;
	for (size_t i = 0; i < c->n_listen; i++) {
		int old = inherited_fd(p->inherit, &c->listen[i], c->interception);

		if (old >= 0 && (w->lfds[i] = fcntl(old, F_DUPFD_CLOEXEC, 0)) < 0) {
			snprintf(err, errlen, "listen %s: dup: %s", c->listen[i].text,
			         strerror(errno));
			goto fail;
		}
		if (old < 0)
			w->lfds[i] = intercept_listen(&c->listen[i], c->interception,
			                              LISTEN_BACKLOG, err, errlen);
		if (w->lfds[i] < 0)
			goto fail;
		if (loop_fd_add(w->loop, w->lfds[i], LOOP_READ, on_accept, w) < 0) {
			snprintf(err, errlen, "listen %s: event loop: %s", c->listen[i].text,
			         strerror(errno));
			goto fail;
		}
	}
	if (p->n_smap_fds > 0 && smap_start(w, p, err, errlen) < 0)
		goto fail;
	return w;
fail:
	worker_free(w);
	return NULL;
}

/* worker_start - run the worker's loop on a new thread */
int
worker_start(struct worker *w, char *err, size_t errlen)
{
	int rc = pthread_create(&w->thread, NULL, worker_main, w);

	if (rc != 0) {
		snprintf(err, errlen, "worker %u: thread: %s", w->id, strerror(rc));
		return -1;
	}
	w->started = true;
	return 0;
}

/* worker_stop - wake the worker through its eventfd; it drains, then returns */
void
worker_stop(struct worker *w)
{
	uint64_t one = 1;

	if (w == NULL || w->stopfd < 0)
		return;
	if (write(w->stopfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("event=stop worker=%u error=\"%s\"", w->id, strerror(errno));
}

/* worker_free - join the thread, then release what the worker owns */
void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->started && !w->joined) {
		worker_stop(w);
		pthread_join(w->thread, NULL);
		w->joined = true;
	}
	close_listeners(w);
	free(w->lfds);
	if (w->abandoned) {
		/* Sessions still point at the loop, the engine and the TLS
		 * contexts; the process is exiting, so leave them be. */
		smap_shutdown(w->smap);
		if (w->stopfd >= 0)
			close(w->stopfd);
		return;
	}
	if (w->stopfd >= 0) {
		if (w->loop != NULL)
			loop_fd_del(w->loop, w->stopfd);
		close(w->stopfd);
	}
	if (w->loop != NULL) {
		loop_timer_cancel(w->loop, w->pause_timer);
		loop_timer_cancel(w->loop, w->drain_timer);
	}
	smap_free(w->smap); /* cancels its lookups: before the engine goes */
	upstream_pool_free(w->sctx.pool);
	sts_engine_free(w->engine);
	SSL_CTX_free(w->sctx.upstream_tls);
	SSL_CTX_free(w->sctx.client_tls);
	loop_free(w->loop);
	free(w);
}

/* worker_stats_add - add this worker's session counters to *sum */
void
worker_stats_add(const struct worker *w, struct session_stats *sum)
{
	const struct session_stats *s = &w->stats;

#define ADD(f)                                                                                     \
	atomic_fetch_add_explicit(&sum->f, atomic_load_explicit(&s->f, memory_order_relaxed),      \
	                          memory_order_relaxed)
	ADD(sessions_total);
	ADD(sessions_active);
	ADD(tls_upstream);
	ADD(tls_upstream_resumed);
	ADD(reuse_parked);
	ADD(reuse_taken);
	ADD(reuse_saved);
	ADD(reuse_retried);
	ADD(reuse_missed);
	ADD(reuse_idle);
	for (size_t i = 0; i < 3; i++)
		ADD(messages_relayed[i]);
	for (size_t i = 0; i < STS_RESULT_MAX; i++) {
		ADD(recipients_blocked[i]);
		ADD(recipients_reported[i]);
	}
	for (size_t i = 0; i < STS_PTYPE_MAX; i++)
		for (size_t k = 0; k < 3; k++)
			ADD(recipients_by_policy[i][k]);
#undef ADD
}
