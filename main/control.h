/*
 * control.h - the control socket and "stsproxy ctl".
 *
 * A unix stream socket (conf->control.socket, mode 0660, group of the
 * service) that takes one request per connection. The protocol is text:
 *
 *   request:  one line, at most CONTROL_REQUEST_MAX octets, LF or CRLF:
 *               status
 *               cache list
 *               cache flush DOMAIN
 *               cache refresh DOMAIN
 *               report
 *   answer:   a first line "ok" or "error: <reason>", then the body lines
 *             (a line starting with "." gets one more "." in front, as in
 *             SMTP DATA), then a line holding a single ".". The server then
 *             closes the connection.
 *
 * The module knows nothing of the daemon: the answers come from the
 * control_ops callbacks it is given, which run synchronously on the loop
 * thread that serves the socket. A peer is served only when SO_PEERCRED
 * shows root, the daemon's own user, or membership (primary or
 * supplementary) of the service group; others get "error: permission
 * denied".
 */
#ifndef STS_CONTROL_H
#define STS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

struct loop;
struct control;
struct control_reply;

#define CONTROL_REQUEST_MAX 512        /* one request line, octets, without the line end */
#define CONTROL_REPLY_MAX   (4u << 20) /* a larger answer is cut to an error */
#define CONTROL_LINE_MAX    4096       /* one answer line, octets; longer lines are cut */
#define CONTROL_CLIENTS_MAX 8
#define CONTROL_TIMEOUT_MS  10000

/*
 * The daemon's side. Each handler fills r and returns 0 for "ok" or -1 for
 * an error (after control_reply_error(); without it the reason is
 * "failed"). DOMAIN arguments arrive checked (an LDH host name) and in lower
 * case. A NULL handler answers "error: not supported". "cache refresh" is
 * expected to start a refresh and answer at once, not to wait for it.
 */
struct control_ops {
	int (*status)(void *arg, struct control_reply *r);
	int (*cache_list)(void *arg, struct control_reply *r);
	int (*cache_flush)(void *arg, const char *domain, struct control_reply *r);
	int (*cache_refresh)(void *arg, const char *domain, struct control_reply *r);
	/* The TLS results of the current UTC day, one line per policy domain. */
	int (*report)(void *arg, struct control_reply *r);
};

/*
 * control_reply_line - append one body line (printf format, no line end).
 * A new line or carriage return inside becomes a space; a line longer than
 * CONTROL_LINE_MAX is cut. Returns 0, or -1 once the answer would exceed
 * CONTROL_REPLY_MAX or memory ran out: the answer then becomes "error:
 * answer too large" and later lines are ignored.
 */
int control_reply_line(struct control_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* control_reply_error - set the reason of an error answer (one line, cut like a body line). */
void control_reply_error(struct control_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct control_params {
	struct loop *loop;
	const char *path; /* the socket file; at most sizeof(sun_path) - 1 octets */
	gid_t group;      /* the service group: owns the socket file, may connect; -1: our egid */
	const struct control_ops *ops;
	void *arg;           /* passed to every handler */
	unsigned timeout_ms; /* per connection; 0: CONTROL_TIMEOUT_MS */
};

/*
 * control_start - create the socket at p->path and serve it on p->loop. A
 * stale socket file (no process listening) is replaced; a live one, or a
 * path that exists and is not a socket, is an error. The file gets mode
 * 0660 and group p->group. Returns the server, or NULL with one line in err.
 * Stop with control_stop(). Per-connection errors are logged at debug level
 * and never stop the server; a peer beyond CONTROL_CLIENTS_MAX is closed at
 * once.
 */
struct control *control_start(const struct control_params *p, char *err, size_t errlen);

/* control_stop - close every connection and the socket, unlink the file, free; NULL is a no-op. */
void control_stop(struct control *c);

/* control_clients - connections currently open. */
unsigned control_clients(const struct control *c);

enum control_cmd {
	CONTROL_STATUS = 0,
	CONTROL_CACHE_LIST,
	CONTROL_CACHE_FLUSH,
	CONTROL_CACHE_REFRESH,
	CONTROL_REPORT,
};

/*
 * control_parse - parse one request line (without its line end). Returns 0
 * with *cmd set, and for the cache flush and refresh commands the checked,
 * lower-cased domain in domain (domainlen octets, at least 254); or -1 with
 * the reason in err. Pure; exported for the tests and the fuzz target.
 */
int control_parse(const char *line, enum control_cmd *cmd, char *domain, size_t domainlen,
                  char *err, size_t errlen);

/*
 * control_client_run - connect to path, send request (one line, no line
 * end), print the body lines of the answer to out and an error reason to
 * errout. Returns the exit status: 0 for "ok", 1 for an error answer or any
 * failure (connect, timeout after CONTROL_TIMEOUT_MS, malformed answer).
 */
int control_client_run(const char *path, const char *request, FILE *out, FILE *errout);

/*
 * control_client_main - "stsproxy ctl [-c FILE | -s SOCKET] COMMAND...";
 * argv[0] is "ctl". The socket is -s SOCKET, else control.socket of FILE
 * (-c, default /etc/stsproxy/stsproxy.conf). Returns the exit status (2 for
 * a usage error).
 */
int control_client_main(int argc, char **argv);

#endif
