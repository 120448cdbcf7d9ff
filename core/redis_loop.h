/*
 * redis_loop.h - one asynchronous Redis connection driven by a core/loop.
 *
 * hiredis's asynchronous API (redisAsyncContext) bound to the loop of the
 * thread that owns the connection: its fd is watched by the loop, its
 * connect and command timeouts are loop timers, and a lost connection is
 * made again after a backoff (doubling from backoff_min_ms to
 * backoff_max_ms). Nothing here blocks: addresses are numeric (hiredis
 * resolves a name with a blocking getaddrinfo(), so none is given to it).
 *
 * A connection is "up" once it is connected, authenticated (AUTH when a
 * password is set) and has answered a PING. Commands are accepted only
 * while it is up: a caller whose command is refused takes its local path,
 * so an unreachable Redis never delays or changes anything else.
 *
 * A connection either runs commands or carries subscriptions (Redis allows
 * nothing else on a subscribed connection): subscribe on a connection of
 * its own. Subscriptions are made again after every reconnect.
 *
 * Not thread-safe: every call from the thread that runs the loop.
 */
#ifndef CORE_REDIS_LOOP_H
#define CORE_REDIS_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

struct redis_loop;
struct redisReply;

/*
 * redis_loop_reply_cb - the reply to a command: reply is NULL when the
 * command got no answer (timeout, connection lost, redis_loop_target());
 * otherwise it may be an error reply (type REDIS_REPLY_ERROR). reply is
 * valid only during the call. Never runs inside the call that issued the
 * command.
 */
typedef void redis_loop_reply_cb(void *arg, const struct redisReply *reply);

/* redis_loop_state_cb - the connection went up (true) or down (false). */
typedef void redis_loop_state_cb(void *arg, bool up);

/*
 * redis_loop_message_cb - a message published on channel (a subscription
 * of this connection); payload is len octets, not NUL-terminated, valid
 * only during the call.
 */
typedef void redis_loop_message_cb(void *arg, const char *channel, const char *payload, size_t len);

struct redis_loop_params {
	struct loop *loop;
	const char *name;              /* for log lines: "shared", "sentinel", ... */
	const char *path;              /* a unix socket; NULL: host and port */
	const char *host;              /* numeric IPv4 or IPv6 address */
	uint16_t port;                 /* with host */
	const char *user;              /* ACL user; NULL: "default" (AUTH with password only) */
	const char *password;          /* NULL: no AUTH */
	unsigned connect_timeout_ms;   /* connect, AUTH and PING together; 0: 1000 */
	unsigned command_timeout_ms;   /* per command; 0: 1000 */
	unsigned backoff_min_ms;       /* first reconnect delay; 0: 100 */
	unsigned backoff_max_ms;       /* longest; 0: 5000 */
	redis_loop_state_cb *on_state; /* NULL: none */
	void *state_arg;
};

/*
 * redis_loop_new - a connection on p->loop; connecting starts at once
 * (without a path or a host it waits for redis_loop_target()). Strings are
 * copied. Returns NULL on allocation failure. Free with redis_loop_free().
 */
struct redis_loop *redis_loop_new(const struct redis_loop_params *p);

/*
 * redis_loop_free - drop the connection, cancel timers; no callback runs
 * after (nor during) this call. NULL is a no-op.
 */
void redis_loop_free(struct redis_loop *r);

/*
 * redis_loop_target - connect to host:port from now on (a Sentinel named a
 * new master): the current connection is dropped (its commands get NULL
 * replies) and the new one made at once. 0, or -1 on allocation failure.
 */
int redis_loop_target(struct redis_loop *r, const char *host, uint16_t port);

/* redis_loop_up - connected, authenticated and answering. */
bool redis_loop_up(const struct redis_loop *r);

/*
 * redis_loop_command - send argv[0..argc) (lengths in argvlen). Returns a
 * non-zero id; cb runs once, later, unless cancelled. Returns 0 when the
 * connection is not up or cannot take the command: cb never runs.
 * A command unanswered after command_timeout_ms drops the connection
 * (replies come in order: everything behind it is late too), and every
 * pending command gets a NULL reply.
 */
uint64_t redis_loop_command(struct redis_loop *r, int argc, const char **argv,
                            const size_t *argvlen, redis_loop_reply_cb *cb, void *arg);

/* redis_loop_cancel - cb of id will not run; 0 and unknown ids are ignored. */
void redis_loop_cancel(struct redis_loop *r, uint64_t id);

/*
 * redis_loop_subscribe - subscribe to channel (copied), now if up and
 * again after each reconnect; cb runs for each message. At most
 * REDIS_LOOP_MAX_SUBS channels. 0, or -1 when full or out of memory.
 */
#define REDIS_LOOP_MAX_SUBS 4
int redis_loop_subscribe(struct redis_loop *r, const char *channel, redis_loop_message_cb *cb,
                         void *arg);

/* Counters of one connection, for metrics and status. */
struct redis_loop_stats {
	uint64_t connects;   /* connections that went up */
	uint64_t failures;   /* connects that failed or timed out, connections lost */
	uint64_t timeouts;   /* commands that timed out */
	uint64_t commands;   /* commands sent */
	uint64_t errors;     /* error replies */
	uint64_t messages;   /* published messages received */
	char last_error[96]; /* "" when none */
};

/* redis_loop_stats - a copy of r's counters. */
void redis_loop_stats(const struct redis_loop *r, struct redis_loop_stats *out);

#endif
