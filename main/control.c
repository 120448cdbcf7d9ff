/*
 * control.c - the control socket (server side on the loop) and the
 * blocking client behind "stsproxy ctl".
 *
 * The exchange itself (accept, a bounded read, one answer, close, a timer
 * per connection) is core/onereq's; here are the line protocol, the answers
 * and the credential check.
 *
 * The file permissions (0660, service group, in a 0750 runtime directory)
 * are the first gate; the peer credentials are checked again on every
 * connection, so that a socket placed in a wider directory by mistake
 * still answers only to root and the service group.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/onereq.h"
#include "core/util.h"
#include "main/control.h"

#define DEFAULT_CONF "/etc/stsproxy/stsproxy.conf"

struct control_reply {
	char *buf; /* dot-stuffed body lines, each ending in "\n" */
	size_t len;
	size_t cap;
	bool too_large;
	bool has_error;
	char error[CONTROL_LINE_MAX];
};

struct control {
	int fd;
	char *path;
	gid_t group;
	const struct control_ops *ops;
	void *arg;
	struct onereq *srv;
};

/* The tag core/onereq keeps for a connection: what its peer credentials allow. */
enum peer_tag {
	PEER_ALLOWED = 0,
	PEER_DENIED, /* answered "permission denied" once its line is read */
};

/* --- replies --------------------------------------------------------------- */

/* format_line - vsnprintf into line, cut to fit, line ends turned into spaces. */
static void
format_line(char *line, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(line, size, fmt, ap);

	if (n < 0)
		line[0] = '\0';
	for (char *p = line; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static int
reply_put(struct control_reply *r, const char *s, size_t n)
{
	if (r->too_large)
		return -1;
	if (n > CONTROL_REPLY_MAX - r->len) {
		r->too_large = true;
		return -1;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap == 0 ? 1024 : r->cap;
		char *nb;

		while (cap < r->len + n)
			cap *= 2;
		if ((nb = realloc(r->buf, cap)) == NULL) {
			r->too_large = true;
			return -1;
		}
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	return 0;
}

/* control_reply_line - see control.h */
int
control_reply_line(struct control_reply *r, const char *fmt, ...)
{
	char line[CONTROL_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	format_line(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A body line starting with "." is stuffed so that it cannot end the answer. */
	if (line[0] == '.' && reply_put(r, ".", 1) < 0)
		return -1;
	if (reply_put(r, line, strlen(line)) < 0 || reply_put(r, "\n", 1) < 0)
		return -1;
	return 0;
}

/* control_reply_error - see control.h */
void
control_reply_error(struct control_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	format_line(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->has_error = true;
}

/* --- requests ------------------------------------------------------------- */

/* control_parse - see control.h */
int
control_parse(const char *line, enum control_cmd *cmd, char *domain, size_t domainlen, char *err,
              size_t errlen)
{
	char buf[CONTROL_REQUEST_MAX + 1];
	char *words[4], *save = NULL, *w;
	size_t n = 0;

	if (sts_strlcpy(buf, line, sizeof(buf)) >= sizeof(buf)) {
		snprintf(err, errlen, "request too long");
		return -1;
	}
	for (const char *p = buf; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\t') {
			snprintf(err, errlen, "control character in request");
			return -1;
		}
	}
	for (w = strtok_r(buf, " \t", &save); w != NULL; w = strtok_r(NULL, " \t", &save)) {
		if (n == sizeof(words) / sizeof(words[0])) {
			snprintf(err, errlen, "too many words");
			return -1;
		}
		words[n++] = w;
	}
	if (n == 1 && strcmp(words[0], "status") == 0) {
		*cmd = CONTROL_STATUS;
		return 0;
	}
	if (n == 1 && strcmp(words[0], "report") == 0) {
		*cmd = CONTROL_REPORT;
		return 0;
	}
	if (n >= 2 && strcmp(words[0], "cache") == 0) {
		if (n == 2 && strcmp(words[1], "list") == 0) {
			*cmd = CONTROL_CACHE_LIST;
			return 0;
		}
		if (strcmp(words[1], "flush") == 0 || strcmp(words[1], "refresh") == 0) {
			if (n != 3) {
				snprintf(err, errlen, "usage: cache %s DOMAIN", words[1]);
				return -1;
			}
			if (!sts_hostname_valid(words[2]) || strlen(words[2]) >= domainlen) {
				snprintf(err, errlen, "invalid domain");
				return -1;
			}
			sts_strlcpy(domain, words[2], domainlen);
			sts_lower(domain);
			/* The cache holds names without the trailing dot. */
			if (domain[0] != '\0' && domain[strlen(domain) - 1] == '.')
				domain[strlen(domain) - 1] = '\0';
			*cmd = strcmp(words[1], "flush") == 0 ? CONTROL_CACHE_FLUSH
			                                      : CONTROL_CACHE_REFRESH;
			return 0;
		}
	}
	snprintf(err, errlen, "unknown command");
	return -1;
}

/* --- the server ----------------------------------------------------------- */

/* final_answer - the answer on the wire: "ok" and the body of r, or "error: <reason>". */
static int
final_answer(int rc, const struct control_reply *r, char **out, size_t *out_len)
{
	struct control_reply fin = {0};
	const char *reason = NULL;

	if (r->too_large)
		reason = "answer too large";
	else if (rc < 0)
		reason = r->has_error ? r->error : "failed";
	if (reason != NULL) {
		if (reply_put(&fin, "error: ", 7) < 0 ||
		    reply_put(&fin, reason, strlen(reason)) < 0)
			goto fail;
	} else if (reply_put(&fin, "ok", 2) < 0 ||
	           (r->len > 0 &&
	            (reply_put(&fin, "\n", 1) < 0 || reply_put(&fin, r->buf, r->len - 1) < 0))) {
		goto fail;
	}
	if (reply_put(&fin, "\n.\n", 3) < 0)
		goto fail;
	*out = fin.buf;
	*out_len = fin.len;
	return 0;
fail:
	free(fin.buf);
	return -1;
}

static int
error_answer(const char *reason, char **out, size_t *out_len)
{
	struct control_reply r = {0};

	control_reply_error(&r, "%s", reason);
	return final_answer(-1, &r, out, out_len);
}

/* run_request - the answer to one request line from a peer that may be denied. */
static int
run_request(struct control *ctl, const char *line, bool denied, char **out, size_t *out_len)
{
	const struct control_ops *ops = ctl->ops;
	struct control_reply r = {0};
	char domain[256], err[128];
	enum control_cmd cmd;
	int rc = -1;

	if (denied)
		return error_answer("permission denied", out, out_len);
	if (control_parse(line, &cmd, domain, sizeof(domain), err, sizeof(err)) < 0) {
		log_debug("event=control_bad_request reason=\"%s\"", err);
		return error_answer(err, out, out_len);
	}
	switch (cmd) {
	case CONTROL_STATUS:
		if (ops->status == NULL)
			goto unsupported;
		rc = ops->status(ctl->arg, &r);
		break;
	case CONTROL_CACHE_LIST:
		if (ops->cache_list == NULL)
			goto unsupported;
		rc = ops->cache_list(ctl->arg, &r);
		break;
	case CONTROL_CACHE_FLUSH:
		if (ops->cache_flush == NULL)
			goto unsupported;
		log_notice("event=control_cache_flush domain=%s", domain);
		rc = ops->cache_flush(ctl->arg, domain, &r);
		break;
	case CONTROL_CACHE_REFRESH:
		if (ops->cache_refresh == NULL)
			goto unsupported;
		log_notice("event=control_cache_refresh domain=%s", domain);
		rc = ops->cache_refresh(ctl->arg, domain, &r);
		break;
	case CONTROL_REPORT:
		if (ops->report == NULL)
			goto unsupported;
		rc = ops->report(ctl->arg, &r);
		break;
	}
	rc = final_answer(rc < 0 ? -1 : 0, &r, out, out_len);
	free(r.buf);
	return rc;
unsupported:
	return error_answer("not supported", out, out_len);
}

/*
 * line_end - a request is one line; a peer that half-closes after its line
 * without LF is still heard.
 */
static bool
line_end(const char *buf, size_t len, bool eof)
{
	return eof ? len > 0 : memchr(buf, '\n', len) != NULL;
}

/* answer - the answer to one request line (or to one that did not fit). */
static int
answer(void *arg, struct onereq_request *req, char **out, size_t *out_len)
{
	const char *nl;
	size_t line_len;

	if (req->too_long)
		return error_answer("request too long", out, out_len);
	nl = memchr(req->buf, '\n', req->len);
	line_len = nl != NULL ? (size_t)(nl - req->buf) : req->len;
	req->buf[line_len] = '\0';
	if (line_len > 0 && req->buf[line_len - 1] == '\r')
		req->buf[--line_len] = '\0';
	/* A NUL inside would hide the rest of the line from the parser. */
	if (strlen(req->buf) != line_len)
		return error_answer("malformed request", out, out_len);
	return run_request(arg, req->buf, req->tag == PEER_DENIED, out, out_len);
}

/* peer_allowed - root, our own user, or a member of the service group. */
static bool
peer_allowed(const struct control *ctl, int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);
	gid_t groups[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0 || len != sizeof(*cred))
		return false;
	if (cred->uid == 0 || cred->uid == geteuid() || cred->gid == ctl->group)
		return true;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == ctl->group)
			return true;
	return false;
}

/* accepted - check the peer's credentials as soon as it connects. */
static int
accepted(void *arg, int fd)
{
	const struct control *ctl = arg;
	/* -1s: what is logged when the credentials cannot be read at all. */
	struct ucred cred = {.pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1};

	if (peer_allowed(ctl, fd, &cred))
		return PEER_ALLOWED;
	log_warn("event=control_denied uid=%u gid=%u pid=%d", (unsigned)cred.uid,
	         (unsigned)cred.gid, (int)cred.pid);
	return PEER_DENIED;
}

/*
 * replace_stale - make room for a new socket at path: nothing there is
 * fine; a socket nobody listens on is removed; anything else is an error.
 */
static int
replace_stale(const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	if (lstat(sun->sun_path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "control: %s: %s", sun->sun_path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control: %s: exists and is not a socket", sun->sun_path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "control: socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "control: %s: in use by a running process", sun->sun_path);
		return -1;
	}
	if (unlink(sun->sun_path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "control: %s: cannot remove stale socket: %s", sun->sun_path,
		         strerror(errno));
		return -1;
	}
	return 0;
}

/* control_start - see control.h */
struct control *
control_start(const struct control_params *p, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct onereq_params op = {0};
	struct control *ctl = NULL;
	bool bound = false;
	mode_t old_mask;
	struct stat st;
	int rc;

	if (p == NULL || p->loop == NULL || p->path == NULL || p->ops == NULL) {
		snprintf(err, errlen, "control: invalid parameters");
		return NULL;
	}
	if (sts_strlcpy(sun.sun_path, p->path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control: %s: path too long", p->path);
		return NULL;
	}
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL) {
		snprintf(err, errlen, "control: out of memory");
		return NULL;
	}
	ctl->fd = -1; /* before any goto fail: calloc's 0 is stdin */
	if ((ctl->path = strdup(p->path)) == NULL) {
		snprintf(err, errlen, "control: out of memory");
		goto fail;
	}
	ctl->ops = p->ops;
	ctl->arg = p->arg;
	ctl->group = p->group == (gid_t)-1 ? getegid() : p->group;
	if (replace_stale(&sun, err, errlen) < 0)
		goto fail;
	if ((ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "control: socket: %s", strerror(errno));
		goto fail;
	}
	/* Never wider than 0660, not even between bind() and chmod(): this runs at
	 * start-up, before other threads create files. */
	old_mask = umask(0117);
	rc = bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (rc < 0) {
		snprintf(err, errlen, "control: bind %s: %s", p->path, strerror(errno));
		goto fail;
	}
	bound = true;
	/* The socket is born with the process's group (or a setgid directory's):
	 * chown only when that is not the group asked for, so that the service
	 * runs without the chown() family of system calls. */
	if (stat(p->path, &st) < 0 ||
	    (st.st_gid != ctl->group && chown(p->path, (uid_t)-1, ctl->group) < 0) ||
	    chmod(p->path, 0660) < 0) {
		snprintf(err, errlen, "control: %s: %s", p->path, strerror(errno));
		goto fail;
	}
	if (listen(ctl->fd, 16) < 0) {
		snprintf(err, errlen, "control: listen: %s", strerror(errno));
		goto fail;
	}
	op.loop = p->loop;
	op.fd = ctl->fd;
	op.request_max = CONTROL_REQUEST_MAX + 2; /* the line, its CR and LF */
	op.max_clients = CONTROL_CLIENTS_MAX;
	op.timeout_ms = p->timeout_ms != 0 ? p->timeout_ms : CONTROL_TIMEOUT_MS;
	/* Consume what is left of a one-line request, then close; no busy answer. */
	op.finish = ONEREQ_CLOSE;
	op.complete = line_end;
	op.answer = answer;
	op.accepted = accepted;
	op.arg = ctl;
	op.ev_timeout = "control_timeout";
	op.ev_accept_failed = "control_accept_failed";
	if ((ctl->srv = onereq_start(&op)) == NULL) {
		snprintf(err, errlen, "control: event loop: %s", strerror(errno));
		goto fail;
	}
	return ctl;
fail:
	if (ctl != NULL) {
		if (bound)
			unlink(p->path);
		if (ctl->fd >= 0)
			close(ctl->fd);
		free(ctl->path);
		free(ctl);
	}
	return NULL;
}

/* control_clients - see control.h */
unsigned
control_clients(const struct control *c)
{
	return c != NULL ? onereq_clients(c->srv) : 0;
}

/* control_stop - see control.h */
void
control_stop(struct control *c)
{
	if (c == NULL)
		return;
	onereq_stop(c->srv);
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
}

/* --- the client ----------------------------------------------------------- */

/* control_client_run - see control.h */
int
control_client_run(const char *path, const char *request, FILE *out, FILE *errout)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = CONTROL_TIMEOUT_MS / 1000};
	struct control_reply ans = {0};
	char chunk[4096];
	char *line, *next, *end;
	size_t reqlen = strlen(request);
	int fd = -1, ret = 1;
	bool ok, finished = false;

	if (sts_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		fprintf(errout, "stsproxy ctl: %s: path too long\n", path);
		return 1;
	}
	if (reqlen > CONTROL_REQUEST_MAX || strchr(request, '\n') != NULL) {
		fprintf(errout, "stsproxy ctl: request too long or not one line\n");
		return 1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(errout, "stsproxy ctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (send(fd, request, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		fprintf(errout, "stsproxy ctl: %s: send: %s\n", path, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* the server closed with our bytes unread: what came is what we judge */
			if (errno == ECONNRESET)
				break;
			fprintf(errout, "stsproxy ctl: %s: %s\n", path,
			        errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		if (reply_put(&ans, chunk, (size_t)n) < 0) {
			fprintf(errout, "stsproxy ctl: answer too large\n");
			goto out;
		}
	}
	if (reply_put(&ans, "", 1) < 0) {
		fprintf(errout, "stsproxy ctl: out of memory\n");
		goto out;
	}
	line = ans.buf;
	if ((end = strchr(line, '\n')) == NULL)
		goto malformed;
	*end = '\0';
	ok = strcmp(line, "ok") == 0;
	if (!ok && strncmp(line, "error: ", 7) != 0)
		goto malformed;
	if (!ok)
		fprintf(errout, "stsproxy ctl: %s\n", line + 7);
	for (line = end + 1; *line != '\0'; line = next) {
		if ((end = strchr(line, '\n')) == NULL)
			goto malformed;
		*end = '\0';
		next = end + 1;
		if (strcmp(line, ".") == 0) {
			finished = true;
			break;
		}
		fprintf(out, "%s\n", line[0] == '.' ? line + 1 : line);
	}
	if (!finished)
		goto malformed;
	ret = ok ? 0 : 1;
	goto out;
malformed:
	fprintf(errout, "stsproxy ctl: malformed or truncated answer\n");
out:
	if (fd >= 0)
		close(fd);
	free(ans.buf);
	fflush(out);
	return ret;
}

static void
ctl_usage(FILE *f)
{
	fprintf(f, "usage: stsproxy ctl [-c FILE | -s SOCKET] COMMAND\n"
	           "commands:\n"
	           "  status                 the daemon's state and counters\n"
	           "  cache list             the cached MTA-STS policies\n"
	           "  cache flush DOMAIN     forget the cached policy of DOMAIN\n"
	           "  cache refresh DOMAIN   fetch the policy of DOMAIN again now\n"
	           "  report                 today's TLS results per policy domain (UTC)\n"
	           "  -c FILE     configuration naming control.socket (default " DEFAULT_CONF ")\n"
	           "  -s SOCKET   the control socket itself\n");
}

/* control_client_main - see control.h */
int
control_client_main(int argc, char **argv)
{
	const char *conf_path = DEFAULT_CONF, *sock = NULL;
	char request[CONTROL_REQUEST_MAX + 1] = "", domain[256], err[512];
	struct conf *c = NULL;
	enum control_cmd cmd;
	size_t len = 0;
	int ch, ret;

	optind = 0; /* "+": stop at the first command word; 0: full reset for repeat calls */
	while ((ch = getopt(argc, argv, "+c:s:h")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		default:
			ctl_usage(stderr);
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		int n = snprintf(request + len, sizeof(request) - len, "%s%s",
		                 i > optind ? " " : "", argv[i]);

		if (n < 0 || (size_t)n >= sizeof(request) - len) {
			fprintf(stderr, "stsproxy ctl: request too long\n");
			return 2;
		}
		len += (size_t)n;
	}
	if (control_parse(request, &cmd, domain, sizeof(domain), err, sizeof(err)) < 0) {
		fprintf(stderr, "stsproxy ctl: %s\n", err);
		ctl_usage(stderr);
		return 2;
	}
	if (sock == NULL) {
		if ((c = conf_load(conf_path, err, sizeof(err))) == NULL) {
			fprintf(stderr, "stsproxy ctl: %s\n", err);
			return 1;
		}
		if (c->control.socket == NULL) {
			fprintf(stderr, "stsproxy ctl: %s: no control.socket configured\n",
			        conf_path);
			conf_free(c);
			return 1;
		}
		sock = c->control.socket;
	}
	ret = control_client_run(sock, request, stdout, stderr);
	conf_free(c);
	return ret;
}
