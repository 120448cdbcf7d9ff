/*
 * smtp_load.c - the SMTP client of the relay benchmark.
 *
 * Sends MESSAGES messages to HOST:PORT over SESSIONS parallel connections and
 * prints one line of results. It plays the sending mailer: on the direct path
 * with -T it stands for a legacy mailer that does opportunistic STARTTLS
 * itself, the work stsproxy does on the mailer's behalf on the proxied path.
 *
 * Modelled on Postfix's smtp-source (-s -m -l -f -t, no pipelining), but:
 *   - it can do STARTTLS (-T), with resumption from one shared client-side
 *     session cache like Postfix's smtp_tls_session_cache (-R), and with
 *     certificate and name verification when given a CA file (-C, -N);
 *   - -d N sends N messages over a connection and then QUITs, like a
 *     mailer's connection cache, where smtp-source's -d never disconnects;
 *   - a bad reply fails that connection's messages and the run carries on,
 *     where smtp-source aborts (or, with -A, does not count);
 *   - it measures throughput and per-connection latency itself.
 *
 * Built by the benchmark script; single file, no project headers:
 *   cc -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -o smtp_load bench/smtp_load.c \
 *      -lssl -lcrypto
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* RFC 5321 4.5.3.1.5 allows 512 octets per reply line; keep headroom. */
#define LINE_OCTETS 1000
#define MAX_ERRORS  5                     /* distinct failures shown on stderr */
#define MAX_SIZE    (1024L * 1024 * 1024) /* -l upper bound */

struct config {
	long sessions, messages, per_conn, size, timeout;
	bool tls, resume;
	const char *cafile, *sni, *from, *to, *helo;
};

/* The run: read-only after start-up except the atomics and locked fields. */
struct run {
	const struct config *cf;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	SSL_CTX *ctx;
	char *msg; /* body + ".\r\n", built once */
	size_t msglen;
	char ehlo[300], mail[300], rcpt[300];
	atomic_long next, ok, failed, conns, tls, resumed;
	atomic_llong t_first, t_last; /* ns: first connect, last 250 after a dot */
	double *lat_ms;               /* one slot per connection, < 0 if unset */
	pthread_mutex_t lock;         /* guards cached and errors */
	SSL_SESSION *cached;
	char errors[MAX_ERRORS][256];
	int nerrors;
};

/* One connection. Invariant: in[0..inlen) holds unread server octets. */
struct conn {
	struct run *run;
	int fd;
	SSL *ssl;
	char in[LINE_OCTETS];
	size_t inlen;
	char line[LINE_OCTETS + 1]; /* last reply line, NUL-terminated */
	bool starttls;              /* offered in the last EHLO reply */
	char err[256];
};

/* now_ns - monotonic clock in nanoseconds */
static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* fail - record why the connection failed; returns -1 */
static int
fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap); /* a cut message is still useful */
	va_end(ap);
	return -1;
}

/* io_fail - describe an I/O error of a read or write; returns -1 */
static int
io_fail(struct conn *c, const char *what, int ret, int err)
{
	int e = c->ssl != NULL ? SSL_get_error(c->ssl, ret) : SSL_ERROR_SYSCALL;
	unsigned long code = ERR_get_error();
	long vr;

	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ret == 0 && code == 0))
		return fail(c, "%s: connection closed by server", what);
	if (e == SSL_ERROR_SYSCALL && code == 0) {
		if (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS)
			return fail(c, "%s: timeout", what);
		return fail(c, "%s: %s", what, strerror(err));
	}
	/* Without -C the chain is never trusted, so its verify result means nothing. */
	vr = c->ssl != NULL && c->run->cf->cafile != NULL ? SSL_get_verify_result(c->ssl)
	                                                  : X509_V_OK;
	if (vr != X509_V_OK)
		return fail(c, "%s: %s", what, X509_verify_cert_error_string(vr));
	return fail(c, "%s: %s", what, code != 0 ? ERR_reason_error_string(code) : "TLS error");
}

/* conn_write - write all of buf (plain or TLS); -1 on error */
static int
conn_write(struct conn *c, const char *buf, size_t len, const char *what)
{
	while (len > 0) {
		int chunk = len > (1 << 30) ? 1 << 30 : (int)len;
		ssize_t n;

		if (c->ssl != NULL)
			n = SSL_write(c->ssl, buf, chunk);
		else
			n = send(c->fd, buf, (size_t)chunk, MSG_NOSIGNAL);
		if (n <= 0)
			return io_fail(c, what, (int)n, errno);
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* conn_line - read one line into c->line without its CRLF; -1 on error */
static int
conn_line(struct conn *c, const char *what)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->inlen);
		size_t room = sizeof(c->in) - c->inlen;
		ssize_t n;

		if (nl != NULL) {
			size_t len = (size_t)(nl - c->in), used = len + 1;

			if (len > 0 && c->in[len - 1] == '\r')
				len--;
			memcpy(c->line, c->in, len);
			c->line[len] = '\0';
			memmove(c->in, c->in + used, c->inlen - used);
			c->inlen -= used;
			return 0;
		}
		if (room == 0)
			return fail(c, "%s: reply line longer than %d octets", what, LINE_OCTETS);
		if (c->ssl != NULL)
			n = SSL_read(c->ssl, c->in + c->inlen, (int)room);
		else
			n = recv(c->fd, c->in + c->inlen, room, 0);
		if (n <= 0)
			return io_fail(c, what, (int)n, errno);
		c->inlen += (size_t)n;
	}
}

/* conn_reply - read a possibly multi-line reply (RFC 5321 4.2.1); its code, or -1 */
static int
conn_reply(struct conn *c, const char *what)
{
	c->starttls = false;
	for (;;) {
		const char *l = c->line;

		if (conn_line(c, what) < 0)
			return -1;
		if (strlen(l) < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
		    l[2] < '0' || l[2] > '9' || (l[3] != '\0' && l[3] != ' ' && l[3] != '-'))
			return fail(c, "%s: malformed reply \"%.80s\"", what, l);
		if (l[3] != '\0' && strncasecmp(l + 4, "STARTTLS", 8) == 0 &&
		    (l[12] == '\0' || l[12] == ' '))
			c->starttls = true;
		if (l[3] != '-')
			return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	}
}

/* expect - read a reply and check its code is want; -1 on error */
static int
expect(struct conn *c, const char *what, int want)
{
	int code = conn_reply(c, what);

	if (code < 0)
		return -1;
	if (code != want)
		return fail(c, "%s: unexpected reply \"%.120s\"", what, c->line);
	return 0;
}

/* chat - send one command and expect the reply code want; -1 on error */
static int
chat(struct conn *c, const char *cmd, int want)
{
	/* Name the step by the command itself, without its CRLF. */
	char what[64];

	snprintf(what, sizeof(what), "%.*s", (int)strcspn(cmd, "\r"), cmd);
	if (conn_write(c, cmd, strlen(cmd), what) < 0)
		return -1;
	return expect(c, what, want);
}

/* starttls - STARTTLS, the handshake and a fresh EHLO (RFC 3207 4.2); -1 on error */
static int
starttls(struct conn *c)
{
	struct run *run = c->run;
	int ret;

	if (!c->starttls)
		return fail(c, "EHLO: STARTTLS not offered");
	if (chat(c, "STARTTLS\r\n", 220) < 0)
		return -1;
	/* RFC 3207 5: anything sent before the handshake must not be trusted. */
	if (c->inlen != 0)
		return fail(c, "STARTTLS: server sent data before the TLS handshake");
	if ((c->ssl = SSL_new(run->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return fail(c, "STARTTLS: cannot make a TLS connection");
	if (run->cf->sni != NULL) {
		X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);

		if (SSL_set_tlsext_host_name(c->ssl, run->cf->sni) != 1 ||
		    (run->cf->cafile != NULL &&
		     X509_VERIFY_PARAM_set1_host(param, run->cf->sni, 0) != 1))
			return fail(c, "STARTTLS: cannot use the name %.100s", run->cf->sni);
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	if (run->cf->resume) {
		/*
		 * Offer a private copy: after a TLS 1.3 resumption OpenSSL marks the
		 * session it used not resumable, and the cache must survive its use
		 * (Postfix gets the same by keeping its sessions serialized).
		 */
		SSL_SESSION *copy;

		pthread_mutex_lock(&run->lock);
		copy = run->cached != NULL ? SSL_SESSION_dup(run->cached) : NULL;
		pthread_mutex_unlock(&run->lock);
		if (copy != NULL)
			SSL_set_session(c->ssl, copy); /* takes its own reference */
		SSL_SESSION_free(copy);
	}
	if ((ret = SSL_connect(c->ssl)) != 1)
		return io_fail(c, "TLS handshake", ret, errno);
	atomic_fetch_add(&run->tls, 1);
	if (SSL_session_reused(c->ssl))
		atomic_fetch_add(&run->resumed, 1);
	return chat(c, run->ehlo, 250);
}

/* new_session - keep the newest session the server issued, for every later connection */
static int
new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct run *run = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	SSL_SESSION *copy = SSL_SESSION_dup(sess), *old;

	if (copy == NULL)
		return 0;
	pthread_mutex_lock(&run->lock);
	old = run->cached;
	run->cached = copy;
	pthread_mutex_unlock(&run->lock);
	SSL_SESSION_free(old);
	return 0; /* sess stays OpenSSL's */
}

/* atomic_widen - lower *a to v (lower) or raise it to v (!lower), whichever widens */
static void
atomic_widen(atomic_llong *a, long long v, bool lower)
{
	long long cur = atomic_load(a);

	while ((lower ? v < cur : v > cur) && !atomic_compare_exchange_weak(a, &cur, v))
		continue;
}

/* deliver - one connection, count messages from first on; -1 on error */
static int
deliver(struct conn *c, long first, long count, long *sent)
{
	struct run *run = c->run;
	const struct config *cf = run->cf;
	long long t0, t;
	struct timeval tv = {.tv_sec = cf->timeout};
	int one = 1;

	if ((c->fd = socket(run->addr.ss_family, SOCK_STREAM, 0)) < 0)
		return fail(c, "socket: %s", strerror(errno));
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return fail(c, "setsockopt: %s", strerror(errno));
	t0 = now_ns();
	if (connect(c->fd, (struct sockaddr *)&run->addr, run->addrlen) < 0)
		return io_fail(c, "connect", -1, errno);
	atomic_fetch_add(&run->conns, 1);
	atomic_widen(&run->t_first, t0, true);
	if (expect(c, "banner", 220) < 0 || chat(c, run->ehlo, 250) < 0)
		return -1;
	if (cf->tls && starttls(c) < 0)
		return -1;
	for (*sent = 0; *sent < count; (*sent)++) {
		if (chat(c, run->mail, 250) < 0 || chat(c, run->rcpt, 250) < 0 ||
		    chat(c, "DATA\r\n", 354) < 0 ||
		    conn_write(c, run->msg, run->msglen, "body") < 0 ||
		    expect(c, "end of data", 250) < 0)
			return -1;
		t = now_ns();
		if (*sent == 0)
			run->lat_ms[first / cf->per_conn] = (double)(t - t0) / 1e6;
		atomic_widen(&run->t_last, t, false);
		atomic_fetch_add(&run->ok, 1);
	}
	if (chat(c, "QUIT\r\n", 221) < 0)
		return -1;
	if (c->ssl != NULL)
		SSL_shutdown(c->ssl); /* send close_notify; the server closes anyway */
	return 0;
}

/* report - print a failure to stderr unless already shown or too many shown */
static void
report(struct run *run, const char *err)
{
	pthread_mutex_lock(&run->lock);
	for (int i = 0; i < run->nerrors; i++)
		if (strcmp(run->errors[i], err) == 0)
			goto out;
	if (run->nerrors < MAX_ERRORS) {
		snprintf(run->errors[run->nerrors++], sizeof(run->errors[0]), "%s", err);
		fprintf(stderr, "smtp_load: %s\n", err);
	}
out:
	pthread_mutex_unlock(&run->lock);
}

/* worker - claim up to -d messages at a time and send each batch over one connection */
static void *
worker(void *arg)
{
	struct run *run = arg;
	const struct config *cf = run->cf;

	for (;;) {
		long first = atomic_load(&run->next), count, sent = 0;
		struct conn c = {.run = run, .fd = -1};

		do {
			if (first >= cf->messages)
				return NULL;
			count = cf->messages - first < cf->per_conn ? cf->messages - first
			                                            : cf->per_conn;
		} while (!atomic_compare_exchange_weak(&run->next, &first, first + count));
		if (deliver(&c, first, count, &sent) < 0) {
			atomic_fetch_add(&run->failed, count - sent);
			report(run, c.err);
		}
		ERR_clear_error();
		SSL_free(c.ssl);
		if (c.fd >= 0)
			close(c.fd);
	}
}

/* complain - print a start-up error; returns -1 */
static int
complain(const char *fmt, ...)
{
	va_list ap;

	fputs("smtp_load: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* build_message - headers, then lines of 76 octets or fewer, exactly size octets + ".\r\n" */
static int
build_message(struct run *run)
{
	const struct config *cf = run->cf;
	char head[1024];
	int hl = snprintf(head, sizeof(head),
	                  "From: <%s>\r\nTo: <%s>\r\nSubject: smtp_load\r\n"
	                  "Message-ID: <smtp_load@%s>\r\n\r\n",
	                  cf->from, cf->to, cf->helo);
	size_t left, n;
	char *p;

	if (hl < 0 || (size_t)hl >= sizeof(head) || cf->size < hl + 2)
		return complain("-l must be at least %d (the headers)", hl + 2);
	if ((run->msg = malloc((size_t)cf->size + 3)) == NULL)
		return complain("out of memory for a %ld-octet message", cf->size);
	memcpy(run->msg, head, (size_t)hl);
	p = run->msg + hl;
	/* Each line is n octets with its CRLF; never leave a single octet over. */
	for (left = (size_t)cf->size - (size_t)hl; left > 0; left -= n) {
		n = left > 78 ? (left == 79 ? 77 : 78) : left;
		memset(p, 'x', n - 2);
		memcpy(p + n - 2, "\r\n", 2);
		p += n;
	}
	memcpy(p, ".\r\n", 3);
	run->msglen = (size_t)cf->size + 3;
	return 0;
}

/* setup - resolve the target, make the commands, the message and the TLS context */
static int
setup(struct run *run, const char *target)
{
	const struct config *cf = run->cf;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	char host[256], *port;
	int err;

	snprintf(host, sizeof(host), "%s", target);
	if ((port = strrchr(host, ':')) == NULL || port[1] == '\0' ||
	    strlen(target) >= sizeof(host))
		return complain("target must be HOST:PORT");
	*port++ = '\0';
	if (host[0] == '[' && port[-2] == ']') {
		port[-2] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((err = getaddrinfo(host, port, &hints, &ai)) != 0)
		return complain("%s: %s", target, gai_strerror(err));
	memcpy(&run->addr, ai->ai_addr, ai->ai_addrlen);
	run->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);

	snprintf(run->ehlo, sizeof(run->ehlo), "EHLO %s\r\n", cf->helo);
	snprintf(run->mail, sizeof(run->mail), "MAIL FROM:<%s>\r\n", cf->from);
	snprintf(run->rcpt, sizeof(run->rcpt), "RCPT TO:<%s>\r\n", cf->to);
	if (build_message(run) < 0)
		return -1;
	if (!cf->tls)
		return 0;
	if ((run->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return complain("SSL_CTX_new failed");
	SSL_CTX_set_app_data(run->ctx, run);
	if (cf->cafile != NULL) {
		if (SSL_CTX_load_verify_locations(run->ctx, cf->cafile, NULL) != 1)
			return complain("cannot load CA file %s", cf->cafile);
		SSL_CTX_set_verify(run->ctx, SSL_VERIFY_PEER, NULL);
	}
	if (cf->resume) {
		/* Postfix's external cache: the client keeps sessions, OpenSSL does not. */
		SSL_CTX_set_session_cache_mode(run->ctx, SSL_SESS_CACHE_CLIENT |
		                                             SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(run->ctx, new_session);
	}
	return 0;
}

/* cmp_double - qsort order for latencies */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* summary - print the result line */
static void
summary(struct run *run)
{
	long slots = (run->cf->messages + run->cf->per_conn - 1) / run->cf->per_conn, n = 0;
	double *lat = run->lat_ms;
	long ok = atomic_load(&run->ok), last = atomic_load(&run->t_last);
	double secs = ok > 0 ? (double)(last - atomic_load(&run->t_first)) / 1e9 : 0;
	double med = 0, p90 = 0, rate = secs > 0 ? (double)ok / secs : 0;

	for (long i = 0; i < slots; i++)
		if (lat[i] >= 0)
			lat[n++] = lat[i]; /* drop connections that failed first */
	if (n > 0) {
		qsort(lat, (size_t)n, sizeof(double), cmp_double);
		med = n % 2 ? lat[n / 2] : (lat[n / 2 - 1] + lat[n / 2]) / 2;
		p90 = lat[(n * 9 + 9) / 10 - 1]; /* nearest rank */
	}
	printf("ok=%ld failed=%ld secs=%.3f msgs_per_s=%.1f mib_per_s=%.2f conns=%ld tls=%ld "
	       "resumed=%ld lat_median_ms=%.3f lat_p90_ms=%.3f\n",
	       ok, atomic_load(&run->failed), secs, rate,
	       rate * (double)run->cf->size / (1024.0 * 1024.0), atomic_load(&run->conns),
	       atomic_load(&run->tls), atomic_load(&run->resumed), med, p90);
}

/* number - parse a decimal option in [min, max]; -1 if bad */
static long
number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || v < min || v > max ? -1 : v;
}

/* plain_word - true if s is usable verbatim in an SMTP command */
static bool
plain_word(const char *s)
{
	return *s != '\0' && strlen(s) < 256 && s[strcspn(s, " <>\r\n\t")] == '\0';
}

/* usage - print the synopsis; returns the exit status of a usage error */
static int
usage(void)
{
	fprintf(stderr, "usage: smtp_load [-s SESSIONS] [-m MESSAGES] [-d PER_SESSION] [-l SIZE]\n"
	                "                 [-T] [-R] [-C CAFILE] [-N SNI] [-f FROM] [-t TO]\n"
	                "                 [-H HELO] [-w TIMEOUT_S] HOST:PORT\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct config cf = {.sessions = 1,
	                    .messages = 1,
	                    .per_conn = 1,
	                    .size = 1024,
	                    .timeout = 30,
	                    .from = "sender@client.example",
	                    .to = "rcpt@bench.example",
	                    .helo = "client.example"};
	struct run run = {.cf = &cf};
	pthread_t *tids;
	long started = 0, slots;
	int ch, status = 1;

	while ((ch = getopt(argc, argv, "s:m:d:l:TRC:N:f:t:H:w:")) != -1) {
		switch (ch) {
		case 's':
			cf.sessions = number(optarg, 1, 10000);
			break;
		case 'm':
			cf.messages = number(optarg, 1, 1000000000);
			break;
		case 'd':
			cf.per_conn = number(optarg, 1, 1000000000);
			break;
		case 'l':
			cf.size = number(optarg, 0, MAX_SIZE);
			break;
		case 'T':
			cf.tls = true;
			break;
		case 'R':
			cf.resume = true;
			break;
		case 'C':
			cf.cafile = optarg;
			break;
		case 'N':
			cf.sni = optarg;
			break;
		case 'f':
			cf.from = optarg;
			break;
		case 't':
			cf.to = optarg;
			break;
		case 'H':
			cf.helo = optarg;
			break;
		case 'w':
			cf.timeout = number(optarg, 1, 86400);
			break;
		default:
			return usage();
		}
	}
	if (optind != argc - 1 || cf.sessions < 1 || cf.messages < 1 || cf.per_conn < 1 ||
	    cf.size < 0 || cf.timeout < 1 || !plain_word(cf.from) || !plain_word(cf.to) ||
	    !plain_word(cf.helo) || ((cf.resume || cf.cafile || cf.sni) && !cf.tls))
		return usage();

	signal(SIGPIPE, SIG_IGN); /* a peer's close is an error to count, not a reason to die */
	pthread_mutex_init(&run.lock, NULL);
	atomic_init(&run.t_first, (long long)1 << 62);
	slots = (cf.messages + cf.per_conn - 1) / cf.per_conn;
	if (cf.sessions > slots)
		cf.sessions = slots;
	tids = calloc((size_t)cf.sessions, sizeof(*tids));
	run.lat_ms = malloc((size_t)slots * sizeof(double));
	if (tids == NULL || run.lat_ms == NULL) {
		complain("out of memory");
		goto done;
	}
	for (long i = 0; i < slots; i++)
		run.lat_ms[i] = -1;
	if (setup(&run, argv[optind]) < 0) {
		status = 2; /* a bad target, CA file or size: the arguments' fault */
		goto done;
	}
	for (; started < cf.sessions; started++)
		if ((errno = pthread_create(&tids[started], NULL, worker, &run)) != 0)
			break;
	if (started == 0) {
		complain("pthread_create: %s", strerror(errno));
		goto done;
	}
	for (long i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	summary(&run);
	status = atomic_load(&run.failed) == 0 ? 0 : 1;
done:
	SSL_SESSION_free(run.cached);
	SSL_CTX_free(run.ctx);
	free(run.msg);
	free(run.lat_ms);
	free(tids);
	pthread_mutex_destroy(&run.lock);
	return status;
}
