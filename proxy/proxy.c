/*
 * proxy.c - start and stop the workers, and own what they share.
 *
 * Workers are created (listeners bound) one after the other before any
 * thread starts, so that a configuration error such as an address in use
 * is reported by proxy_start() itself, with the address, and nothing is
 * half running.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"
#include "tls/tls_ctx.h"

struct proxy {
	const struct conf *conf;
	SSL_CTX *upstream_tls;
	SSL_CTX *client_tls;
	struct worker **workers;
	size_t n_workers;
	atomic_uint active;
	bool draining; /* proxy_drain() was called */
	int *smap_fds; /* conf->socketmap.listen order; each worker serves a dup */
	size_t n_smap_fds;
	struct smap_stats smap_stats;
};

#define SMAP_BACKLOG 1024

/*
 * smap_listeners - the socketmap listening sockets: taken over (dup) from
 * prev for an address it already listens on, bound otherwise. 0, or -1
 * with err set.
 */
static int
smap_listeners(struct proxy *p, const struct proxy *prev, char *err, size_t errlen)
{
	const struct conf *c = p->conf;

	if (c->socketmap.n_listen == 0)
		return 0;
	if ((p->smap_fds = calloc(c->socketmap.n_listen, sizeof(*p->smap_fds))) == NULL) {
		snprintf(err, errlen, "socketmap: out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->socketmap.n_listen; i++) {
		const char *text = c->socketmap.listen[i];
		int fd = -1;

		for (size_t k = 0; prev != NULL && k < prev->n_smap_fds; k++)
			if (strcmp(prev->conf->socketmap.listen[k], text) == 0 &&
			    (fd = fcntl(prev->smap_fds[k], F_DUPFD_CLOEXEC, 0)) < 0) {
				snprintf(err, errlen, "socketmap %s: dup: %s", text,
				         strerror(errno));
				return -1;
			}
		if (fd < 0 && (fd = smap_listen(text, SMAP_BACKLOG, err, errlen)) < 0)
			return -1;
		p->smap_fds[p->n_smap_fds++] = fd;
	}
	/* Counters go on across a reload. */
	for (size_t k = 0; prev != NULL && k < SMAP_KIND_MAX; k++)
		atomic_store(&p->smap_stats.replies[k], atomic_load(&prev->smap_stats.replies[k]));
	if (prev != NULL) {
		atomic_store(&p->smap_stats.lookups_async,
		             atomic_load(&prev->smap_stats.lookups_async));
		atomic_store(&p->smap_stats.connections_total,
		             atomic_load(&prev->smap_stats.connections_total));
		atomic_store(&p->smap_stats.connections_refused,
		             atomic_load(&prev->smap_stats.connections_refused));
		atomic_store(&p->smap_stats.errors, atomic_load(&prev->smap_stats.errors));
	}
	return 0;
}

/* client_tls_new - the STARTTLS context offered to mailers; NULL and *err "" when not offered. */
static int
client_tls_new(const struct conf *c, SSL_CTX **out, char *err, size_t errlen)
{
	char cert[4096], key[4096], cn[256];

	*out = NULL;
	if (!c->tls.client_starttls)
		return 0;
	if (c->tls.server_cert != NULL && c->tls.server_key != NULL) {
		*out = tls_server_ctx_new(c->tls.server_cert, c->tls.server_key, err, errlen);
		return *out != NULL ? 0 : -1;
	}
	/* Mailers rarely verify the certificate of a next hop they do not
	 * know they talk to; encryption on that leg still beats none. */
	if (gethostname(cn, sizeof(cn)) < 0 || cn[0] == '\0')
		snprintf(cn, sizeof(cn), "stsproxy");
	cn[sizeof(cn) - 1] = '\0';
	if (tls_selfsigned_ensure(c->state_dir, cn, cert, sizeof(cert), key, sizeof(key), err,
	                          errlen) < 0)
		return -1;
	*out = tls_server_ctx_new(cert, key, err, errlen);
	return *out != NULL ? 0 : -1;
}

/* proxy_new - TLS contexts and workers with bound listeners; no thread yet */
struct proxy *
proxy_new(const struct conf *c, struct sts_cache *cache, struct sts_engine_stats *stats,
          struct sts_report *report, const struct proxy *prev, char *err, size_t errlen)
{
	struct proxy *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "proxy: out of memory");
		return NULL;
	}
	p->conf = c;
	atomic_init(&p->active, 0);
	if (smap_listeners(p, prev, err, errlen) < 0)
		goto fail;
	if ((p->upstream_tls = tls_client_ctx_new(c->tls.ca_file, err, errlen)) == NULL)
		goto fail;
	if (client_tls_new(c, &p->client_tls, err, errlen) < 0)
		goto fail;
	if ((p->workers = calloc(c->workers, sizeof(*p->workers))) == NULL) {
		snprintf(err, errlen, "proxy: out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < c->workers; i++) {
		struct worker_params wp = {
		    .id = i,
		    .conf = c,
		    .cache = cache,
		    .upstream_tls = p->upstream_tls,
		    .client_tls = p->client_tls,
		    .active = &p->active,
		    .max_sessions = c->max_sessions,
		    .engine_stats = stats,
		    .report = report,
		    .inherit = prev != NULL && prev->n_workers > 0
		                   ? prev->workers[i % prev->n_workers]
		                   : NULL,
		    .smap_fds = p->smap_fds,
		    .n_smap_fds = p->n_smap_fds,
		    .smap_stats = &p->smap_stats,
		};

		if ((p->workers[i] = worker_new(&wp, err, errlen)) == NULL)
			goto fail;
		p->n_workers++;
	}
	return p;
fail:
	proxy_stop(p);
	return NULL;
}

/* proxy_run - start the threads, with every signal blocked in them */
int
proxy_run(struct proxy *p, char *err, size_t errlen)
{
	sigset_t all, old;
	bool masked;
	int ret = 0;

	/* Signals belong to the main loop's signalfd, never to a worker. */
	sigfillset(&all);
	masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
	for (size_t i = 0; i < p->n_workers && ret == 0; i++)
		ret = worker_start(p->workers[i], err, errlen);
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/* proxy_start - proxy_new, then proxy_run */
struct proxy *
proxy_start(const struct conf *c, struct sts_cache *cache, char *err, size_t errlen)
{
	struct proxy *p = proxy_new(c, cache, NULL, NULL, NULL, err, errlen);

	if (p != NULL && proxy_run(p, err, errlen) < 0) {
		proxy_stop(p);
		return NULL;
	}
	return p;
}

/* proxy_drain - ask every worker to stop accepting and drain; does not wait */
void
proxy_drain(struct proxy *p)
{
	if (p == NULL || p->draining)
		return;
	p->draining = true;
	for (size_t i = 0; i < p->n_workers; i++)
		worker_stop(p->workers[i]);
}

/* proxy_drained - have all the workers' loops returned? */
bool
proxy_drained(const struct proxy *p)
{
	if (p == NULL)
		return true;
	for (size_t i = 0; i < p->n_workers; i++)
		if (!worker_finished(p->workers[i]))
			return false;
	return true;
}

/* proxy_stop - drain every worker at once, then join and free */
void
proxy_stop(struct proxy *p)
{
	if (p == NULL)
		return;
	/* Ask all first so that the workers drain in parallel. */
	proxy_drain(p);
	for (size_t i = 0; i < p->n_workers; i++)
		worker_free(p->workers[i]);
	free(p->workers);
	for (size_t i = 0; i < p->n_smap_fds; i++)
		close(p->smap_fds[i]);
	free(p->smap_fds);
	SSL_CTX_free(p->upstream_tls);
	SSL_CTX_free(p->client_tls);
	free(p);
}

/* proxy_stats - sum of the per-worker counters */
void
proxy_stats(const struct proxy *p, struct session_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < p->n_workers; i++)
		worker_stats_add(p->workers[i], out);
}

/* proxy_smap_stats - the socketmap counters of this proxy's workers */
const struct smap_stats *
proxy_smap_stats(const struct proxy *p)
{
	return &p->smap_stats;
}

/* proxy_sessions - live sessions, all workers */
unsigned
proxy_sessions(const struct proxy *p)
{
	return atomic_load_explicit(&p->active, memory_order_relaxed);
}
