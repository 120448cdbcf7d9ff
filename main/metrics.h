/*
 * metrics.h - the Prometheus endpoint: counters in text exposition format
 * 0.0.4, served over plain HTTP from the main event loop.
 *
 * The server is deliberately tiny: one request per connection, GET or HEAD
 * of /metrics, a bounded request head, a bounded number of clients and a
 * timeout on each. It knows no metric itself: on each scrape it calls the
 * collect callback the daemon gave it, which writes the samples through the
 * writer helpers below. The metric names the daemon exports are listed in
 * docs/METRICS.md.
 */
#ifndef STS_METRICS_H
#define STS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;
struct metrics;
struct metrics_writer;

#define METRICS_CONTENT_TYPE    "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_REQUEST_MAX     4096 /* request line and headers, octets */
#define METRICS_CLIENTS_MAX     16
#define METRICS_TIMEOUT_MS      5000
#define METRICS_BODY_MAX        (4u << 20) /* a scrape larger than this fails with 500 */
#define METRICS_LABEL_VALUE_MAX 1024

/* One label of a sample. Arrays of labels end with an entry whose name is NULL. */
struct metrics_label {
	const char *name;
	const char *value;
};

/*
 * metrics_collect_fn - write every sample of one scrape into w, from the
 * loop thread that runs the endpoint. The samples of one family must be
 * written one after the other; the writer refuses a family that comes back
 * after another one, so the output always stays valid.
 */
typedef void metrics_collect_fn(void *arg, struct metrics_writer *w);

/*
 * metrics_counter - append one sample of the counter family name (with the
 * "# HELP" and "# TYPE ... counter" lines the first time the family is
 * written in this scrape). labels is NULL or ends with a {NULL, NULL} entry;
 * label values are escaped as the format requires (backslash, double quote,
 * new line). Returns 0, or -1 if the sample was dropped: invalid metric or
 * label name, a family already written with another type or earlier in the
 * scrape, or the scrape exceeding METRICS_BODY_MAX (then the whole scrape
 * fails with 500).
 */
int metrics_counter(struct metrics_writer *w, const char *name, const char *help,
                    const struct metrics_label *labels, uint64_t value);

/* metrics_gauge - as metrics_counter() for a gauge; NaN and infinities are written as such. */
int metrics_gauge(struct metrics_writer *w, const char *name, const char *help,
                  const struct metrics_label *labels, double value);

/*
 * metrics_writer_new - a writer outside the server (tests, a one-shot dump).
 * NULL on allocation failure. metrics_writer_text() is the exposition text so
 * far (NUL-terminated, owned by the writer), or NULL after an overflow or an
 * allocation failure. metrics_writer_free(NULL) is a no-op.
 */
struct metrics_writer *metrics_writer_new(void);
const char *metrics_writer_text(const struct metrics_writer *w, size_t *len);
void metrics_writer_free(struct metrics_writer *w);

struct metrics_params {
	struct loop *loop;
	const struct sockaddr *addr; /* where to listen, e.g. &conf->metrics.listen->sa */
	socklen_t addrlen;
	metrics_collect_fn *collect;
	void *arg;            /* passed to collect */
	unsigned max_clients; /* 0: METRICS_CLIENTS_MAX */
	unsigned timeout_ms;  /* per client, whole exchange; 0: METRICS_TIMEOUT_MS */
};

/*
 * metrics_start - listen on p->addr (SO_REUSEADDR, non-blocking) and serve
 * on p->loop. Returns the endpoint, or NULL with one line in err (bind or
 * listen failure, allocation failure). Stop with metrics_stop(). A client
 * beyond max_clients gets 503 and is closed; a client that does not finish
 * within timeout_ms is closed. Per-client errors are logged at debug level
 * and never stop the endpoint.
 */
struct metrics *metrics_start(const struct metrics_params *p, char *err, size_t errlen);

/* metrics_port - the local port listened on (useful after binding port 0); -1 on error. */
int metrics_port(const struct metrics *m);

/* metrics_clients - clients currently connected. */
unsigned metrics_clients(const struct metrics *m);

/*
 * metrics_stop - close the listener and every client, cancel their timers,
 * free everything; NULL is a no-op. Call from the loop's thread.
 */
void metrics_stop(struct metrics *m);

/*
 * metrics_parse_request - judge a complete request head (request line and
 * headers, up to and including the empty line). Returns the HTTP status to
 * answer: 200 for GET or HEAD of /metrics (a query string is ignored), 404
 * for another path, 405 for another method, 505 for a version other than
 * HTTP/1.0 or 1.1, 400 for anything malformed. *head_only is set for HEAD.
 * Pure; exported for the tests and the fuzz target.
 */
int metrics_parse_request(const char *buf, size_t len, int *head_only);

#endif
