/*
 * socketmap.h - the socketmap server for Postfix's smtp_tls_policy_maps
 * (socketmap_table(5)), on one worker's event loop and policy engine.
 *
 * A Postfix SMTP client keeps a connection open and sends one netstring
 * request "NAME domain" at a time; each gets one netstring reply
 * (proxy/smap_reply.h says which). Requests on one connection are answered
 * in order, pipelined ones included. Nothing blocks the loop: an answer
 * from memory (sts_engine_lookup_now) is written at once, anything else
 * waits for the engine's callback, and concurrent lookups of one domain
 * share one resolution (sts_engine).
 *
 * Bounds: a request longer than conf->socketmap.max_request gets "PERM
 * request too long" and the connection is closed, as a malformed netstring
 * gets "PERM malformed request"; at most max_connections are open in the
 * whole process (more are closed at once); a connection idle for
 * idle_timeout seconds is closed; a lookup that has not answered within
 * its deadline gets "TEMP lookup timed out".
 *
 * Listening sockets are made once per process by smap_listen() and shared
 * by every worker, each through its own dup (a unix socket cannot be bound
 * twice, and the kernel wakes one of the waiting accepts).
 *
 * Everything but smap_listen() runs on the loop's thread.
 */
#ifndef STS_SOCKETMAP_H
#define STS_SOCKETMAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/loop.h"
#include "policy/sts_engine.h"
#include "proxy/smap_reply.h"

/* Counters of every socketmap server of a process (relaxed atomics). */
struct smap_stats {
	_Atomic uint64_t replies[SMAP_KIND_MAX]; /* replies sent, by status word */
	_Atomic uint64_t lookups_async;          /* requests not answered from memory */
	_Atomic uint64_t connections_total;      /* accepted and served */
	_Atomic uint64_t connections_refused;    /* closed at once: max_connections */
	_Atomic uint64_t errors;                 /* malformed or oversized requests, I/O errors */
	atomic_uint active;                      /* open now, checked against max_connections */
};

struct smap;

struct smap_params {
	struct loop *loop;
	struct sts_engine *engine; /* the worker's; not owned */
	const struct conf *conf;   /* socketmap.*, dns.timeout, sts.fetch_timeout; not owned */
	struct smap_stats *stats;  /* shared; not owned; never NULL */
	unsigned worker_id;        /* for logs */
};

/* smap_new - a server with no listener yet; NULL (errno set) when out of memory. */
struct smap *smap_new(const struct smap_params *p);

/*
 * smap_add_listener - accept on listening socket fd (non-blocking), which
 * the server owns from now on, even on failure. text names it in logs.
 * 0, or -1 (errno set).
 */
int smap_add_listener(struct smap *s, int fd, const char *text);

/*
 * smap_shutdown - stop accepting (the listeners are closed), close idle
 * connections now and the others once their pending replies are written.
 */
void smap_shutdown(struct smap *s);

/* smap_count - connections still open. */
unsigned smap_count(const struct smap *s);

/* smap_free - close every listener and connection, cancel their lookups; NULL is a no-op. */
void smap_free(struct smap *s);

/*
 * smap_listen - a listening socket for "host:port", "[v6]:port" or
 * "unix:/path" (a stale socket file at path is replaced; the new one is
 * mode 0666: the directory decides who may connect). Non-blocking,
 * close-on-exec. Returns the fd, or -1 with one line in err.
 */
int smap_listen(const char *text, int backlog, char *err, size_t errlen);

#endif
