/*
 * metrics.c - the Prometheus endpoint and the exposition writer.
 *
 * The exchange itself (accept, a request head of at most METRICS_REQUEST_MAX
 * octets, the answer, one timer per client) is core/onereq's; here are the
 * HTTP parts: when a head is complete, how it is judged and what the answer
 * says. After the answer we shut our side down and read until the client
 * closes (ONEREQ_LINGER), so that the kernel does not reset the connection
 * (and lose the answer) over unread request bytes.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include "core/log.h"
#include "core/onereq.h"
#include "main/metrics.h"

enum family_type {
	FAMILY_COUNTER = 0,
	FAMILY_GAUGE,
};

struct family {
	char *name;
	enum family_type type;
};

struct metrics_writer {
	char *buf; /* buf[len] == '\0' whenever buf != NULL */
	size_t len;
	size_t cap;
	bool failed; /* overflow or allocation failure: the scrape is lost */
	struct family *families;
	size_t n_families;
	size_t cap_families;
};

struct metrics {
	int fd;
	metrics_collect_fn *collect;
	void *arg;
	struct onereq *srv;
};

/* --- the exposition writer ------------------------------------------------ */

struct metrics_writer *
metrics_writer_new(void)
{
	return calloc(1, sizeof(struct metrics_writer));
}

void
metrics_writer_free(struct metrics_writer *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n_families; i++)
		free(w->families[i].name);
	free(w->families);
	free(w->buf);
	free(w);
}

const char *
metrics_writer_text(const struct metrics_writer *w, size_t *len)
{
	if (w->failed) {
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	if (len != NULL)
		*len = w->len;
	return w->buf != NULL ? w->buf : "";
}

/* w_put - append n octets; on overflow the writer fails for good. */
static void
w_put(struct metrics_writer *w, const char *s, size_t n)
{
	if (w->failed)
		return;
	if (n > METRICS_BODY_MAX - w->len) {
		w->failed = true;
		return;
	}
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap == 0 ? 4096 : w->cap;
		char *nb;

		while (cap < w->len + n + 1)
			cap *= 2;
		if ((nb = realloc(w->buf, cap)) == NULL) {
			w->failed = true;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void
w_puts(struct metrics_writer *w, const char *s)
{
	w_put(w, s, strlen(s));
}

/* metric names: [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool
metric_name_valid(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		bool alpha =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* label names: [a-zA-Z_][a-zA-Z0-9_]*, the "__" prefix being reserved */
static bool
label_name_valid(const char *s)
{
	if (s == NULL || *s == '\0' || strncmp(s, "__", 2) == 0)
		return false;
	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* utf8_len - length of the valid UTF-8 sequence at s, 0 if invalid. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned min, cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2, min = 0x80, cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, min = 0x800, cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, min = 0x10000, cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * w_escaped - HELP text escapes backslash and new line; label values also
 * the double quote. The format is UTF-8: invalid bytes become U+FFFD so
 * that one bad domain name never breaks a whole scrape.
 */
static void
w_escaped(struct metrics_writer *w, const char *s, bool quote)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		size_t n;

		if (*p == '\\') {
			w_put(w, "\\\\", 2);
			p++;
		} else if (*p == '\n') {
			w_put(w, "\\n", 2);
			p++;
		} else if (quote && *p == '"') {
			w_put(w, "\\\"", 2);
			p++;
		} else if ((n = utf8_len(p)) == 0) {
			w_put(w, "\xef\xbf\xbd", 3);
			p++;
		} else {
			w_put(w, (const char *)p, n);
			p += n;
		}
	}
}

/*
 * family_begin - 0 if name may get a sample now, writing HELP and TYPE the
 * first time; -1 if it was written before another family or with another type.
 */
static int
family_begin(struct metrics_writer *w, const char *name, const char *help, enum family_type type)
{
	struct family *f;

	for (size_t i = 0; i < w->n_families; i++) {
		if (strcmp(w->families[i].name, name) != 0)
			continue;
		if (i != w->n_families - 1 || w->families[i].type != type)
			return -1;
		return 0;
	}
	if (w->n_families == w->cap_families) {
		size_t cap = w->cap_families == 0 ? 32 : w->cap_families * 2;

		if ((f = realloc(w->families, cap * sizeof(*f))) == NULL)
			goto fail;
		w->families = f;
		w->cap_families = cap;
	}
	f = &w->families[w->n_families];
	if ((f->name = strdup(name)) == NULL)
		goto fail;
	f->type = type;
	w->n_families++;
	w_puts(w, "# HELP ");
	w_puts(w, name);
	w_puts(w, " ");
	w_escaped(w, help != NULL ? help : "", false);
	w_puts(w, "\n# TYPE ");
	w_puts(w, name);
	w_puts(w, type == FAMILY_COUNTER ? " counter\n" : " gauge\n");
	return 0;
fail:
	w->failed = true;
	return -1;
}

static int
sample(struct metrics_writer *w, const char *name, const char *help,
       const struct metrics_label *labels, enum family_type type, const char *value)
{
	if (w == NULL || w->failed || !metric_name_valid(name))
		return -1;
	for (const struct metrics_label *l = labels; l != NULL && l->name != NULL; l++) {
		if (!label_name_valid(l->name) || l->value == NULL ||
		    strlen(l->value) > METRICS_LABEL_VALUE_MAX)
			return -1;
	}
	if (family_begin(w, name, help, type) < 0)
		return -1;
	w_puts(w, name);
	if (labels != NULL && labels[0].name != NULL) {
		w_puts(w, "{");
		for (const struct metrics_label *l = labels; l->name != NULL; l++) {
			if (l != labels)
				w_puts(w, ",");
			w_puts(w, l->name);
			w_puts(w, "=\"");
			w_escaped(w, l->value, true);
			w_puts(w, "\"");
		}
		w_puts(w, "}");
	}
	w_puts(w, " ");
	w_puts(w, value);
	w_puts(w, "\n");
	return w->failed ? -1 : 0;
}

/* metrics_counter - see metrics.h */
int
metrics_counter(struct metrics_writer *w, const char *name, const char *help,
                const struct metrics_label *labels, uint64_t value)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu", (unsigned long long)value);
	return sample(w, name, help, labels, FAMILY_COUNTER, v);
}

/* metrics_gauge - see metrics.h */
int
metrics_gauge(struct metrics_writer *w, const char *name, const char *help,
              const struct metrics_label *labels, double value)
{
	char v[40];

	if (isnan(value))
		snprintf(v, sizeof(v), "NaN");
	else if (isinf(value))
		snprintf(v, sizeof(v), "%sInf", value > 0 ? "+" : "-");
	else
		snprintf(v, sizeof(v), "%.17g", value);
	return sample(w, name, help, labels, FAMILY_GAUGE, v);
}

/* --- request parsing ------------------------------------------------------ */

/* metrics_parse_request - see metrics.h */
int
metrics_parse_request(const char *buf, size_t len, int *head_only)
{
	const char *eol, *sp1, *sp2, *target, *version;
	size_t line_len, method_len, target_len, version_len;

	*head_only = 0;
	if ((eol = memchr(buf, '\n', len)) == NULL)
		return 400;
	line_len = (size_t)(eol - buf);
	if (line_len > 0 && buf[line_len - 1] == '\r')
		line_len--;
	for (size_t i = 0; i < line_len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 0x20 || c >= 0x7f)
			return 400;
	}
	/* Every header line must at least look like one: no NUL, no bare CR. */
	for (size_t i = line_len; i < len; i++) {
		if (buf[i] == '\0' || (buf[i] == '\r' && (i + 1 >= len || buf[i + 1] != '\n')))
			return 400;
	}
	if ((sp1 = memchr(buf, ' ', line_len)) == NULL)
		return 400;
	method_len = (size_t)(sp1 - buf);
	target = sp1 + 1;
	if ((sp2 = memchr(target, ' ', line_len - method_len - 1)) == NULL)
		return 400;
	target_len = (size_t)(sp2 - target);
	version = sp2 + 1;
	version_len = line_len - method_len - target_len - 2;
	if (method_len == 0 || target_len == 0 || memchr(version, ' ', version_len) != NULL)
		return 400;
	if (version_len != 8 || memcmp(version, "HTTP/1.", 7) != 0)
		return version_len >= 5 && memcmp(version, "HTTP/", 5) == 0 ? 505 : 400;
	if (version[7] != '0' && version[7] != '1')
		return 505;
	if (target[0] != '/')
		return 400;
	/* A query string changes nothing: scrapers sometimes add one. */
	for (size_t i = 0; i < target_len; i++) {
		if (target[i] == '?') {
			target_len = i;
			break;
		}
	}
	if (target_len != 8 || memcmp(target, "/metrics", 8) != 0)
		return 404;
	if (method_len == 3 && memcmp(buf, "GET", 3) == 0)
		return 200;
	if (method_len == 4 && memcmp(buf, "HEAD", 4) == 0) {
		*head_only = 1;
		return 200;
	}
	return 405;
}

/* --- the server ----------------------------------------------------------- */

static const char *
status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

/*
 * build_response - a malloc'ed answer in *out; body may be NULL. -1 on
 * allocation failure.
 */
static int
build_response(int status, const char *body, size_t body_len, int head_only, char **out,
               size_t *out_len)
{
	char head[512];
	int n;
	char *r;

	if (body == NULL) {
		body = status == 200 ? "" : status_text(status);
		body_len = strlen(body);
	}
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\n"
	             "Content-Type: %s\r\n"
	             "Content-Length: %zu\r\n"
	             "%s"
	             "Cache-Control: no-store\r\n"
	             "Connection: close\r\n\r\n",
	             status, status_text(status),
	             status == 200 ? METRICS_CONTENT_TYPE : "text/plain; charset=utf-8", body_len,
	             status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (head_only)
		body_len = 0;
	if ((r = malloc((size_t)n + body_len)) == NULL)
		return -1;
	memcpy(r, head, (size_t)n);
	if (body_len > 0)
		memcpy(r + n, body, body_len);
	*out = r;
	*out_len = (size_t)n + body_len;
	return 0;
}

/* head_end - true when buf holds a complete request head; end of file never completes one. */
static bool
head_end(const char *buf, size_t len, bool eof)
{
	if (eof)
		return false;
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n' || (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n'))
			return true;
	}
	return false;
}

/* answer - the HTTP answer to one request head (or to one that did not fit). */
static int
answer(void *arg, struct onereq_request *req, char **out, size_t *out_len)
{
	struct metrics *m = arg;
	struct metrics_writer *w = NULL;
	const char *body = NULL;
	size_t body_len = 0;
	int status, head_only = 0, rc;

	/* The request line fit but the headers did not: 431; else 400. */
	if (req->too_long)
		status = memchr(req->buf, '\n', req->len) != NULL ? 431 : 400;
	else
		status = metrics_parse_request(req->buf, req->len, &head_only);
	if (status == 200) {
		if ((w = metrics_writer_new()) == NULL) {
			status = 500;
		} else {
			m->collect(m->arg, w);
			if ((body = metrics_writer_text(w, &body_len)) == NULL) {
				log_warn("event=metrics_scrape_failed reason=\"output too large or "
				         "out of memory\"");
				status = 500;
			}
		}
	}
	rc = build_response(status, status == 200 ? body : NULL, body_len, head_only, out, out_len);
	metrics_writer_free(w);
	return rc;
}

/* metrics_start - see metrics.h */
struct metrics *
metrics_start(const struct metrics_params *p, char *err, size_t errlen)
{
	struct onereq_params op = {0};
	struct metrics *m;
	char *busy = NULL;
	size_t busy_len = 0;
	int one = 1;

	if (p == NULL || p->loop == NULL || p->addr == NULL || p->collect == NULL) {
		snprintf(err, errlen, "metrics: invalid parameters");
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    build_response(503, NULL, 0, 0, &busy, &busy_len) < 0) {
		snprintf(err, errlen, "metrics: out of memory");
		free(m);
		return NULL;
	}
	m->collect = p->collect;
	m->arg = p->arg;
	m->fd = socket(p->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		snprintf(err, errlen, "metrics: socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->fd, p->addr, p->addrlen) < 0) {
		snprintf(err, errlen, "metrics: bind: %s", strerror(errno));
		goto fail;
	}
	if (listen(m->fd, 64) < 0) {
		snprintf(err, errlen, "metrics: listen: %s", strerror(errno));
		goto fail;
	}
	op.loop = p->loop;
	op.fd = m->fd;
	op.request_max = METRICS_REQUEST_MAX;
	op.max_clients = p->max_clients != 0 ? p->max_clients : METRICS_CLIENTS_MAX;
	op.timeout_ms = p->timeout_ms != 0 ? p->timeout_ms : METRICS_TIMEOUT_MS;
	op.finish = ONEREQ_LINGER;
	op.busy_answer = busy; /* 503; the client retries at its next scrape */
	op.busy_len = busy_len;
	op.complete = head_end;
	op.answer = answer;
	op.arg = m;
	op.ev_timeout = "metrics_client_timeout";
	op.ev_accept_failed = "metrics_accept_failed";
	if ((m->srv = onereq_start(&op)) == NULL) {
		snprintf(err, errlen, "metrics: event loop: %s", strerror(errno));
		goto fail;
	}
	free(busy);
	return m;
fail:
	if (m->fd >= 0)
		close(m->fd);
	free(busy);
	free(m);
	return NULL;
}

/* metrics_port - see metrics.h */
int
metrics_port(const struct metrics *m)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (m == NULL || getsockname(m->fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* metrics_clients - see metrics.h */
unsigned
metrics_clients(const struct metrics *m)
{
	return m != NULL ? onereq_clients(m->srv) : 0;
}

/* metrics_stop - see metrics.h */
void
metrics_stop(struct metrics *m)
{
	if (m == NULL)
		return;
	onereq_stop(m->srv);
	close(m->fd);
	free(m);
}
