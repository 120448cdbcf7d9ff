/*
 * smap_load.c - the socketmap client of the policy-server benchmark: the
 * Postfix side of smtp_tls_policy_maps = socketmap:inet:HOST:PORT:NAME.
 *
 * Opens CONNS connections to HOST:PORT and keeps one request in flight on
 * each, as Postfix's SMTP clients do (one lookup at a time per process),
 * or DEPTH pipelined requests with -p (to measure what a server can take
 * when the client's own system calls are spread over several requests),
 * cycling through the domains given, for SECONDS seconds or until every
 * domain was asked once (-1). Prints one line:
 *   requests=N secs=S rate=R p50_us=A p99_us=B ok=K errors=E
 * HOST may be the path of a unix socket (PORT is then ignored).
 * where ok counts replies starting with the -e prefix ("OK secure").
 *
 * Single-threaded (epoll), so that it takes one core of the machine and
 * the server the rest. Built by the benchmark script; no project headers:
 *   cc -std=gnu11 -O2 -Wall -Wextra -Werror -o smap_load bench/smap_load.c
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (4u << 20)
#define BUF         2048

struct conn {
	int fd;
	uint64_t sent_ns[64]; /* a ring, one per request in flight */
	unsigned head, tail;
	size_t in;
	char buf[BUF];
};

static char **domains;
static size_t n_domains, next_domain;
static const char *name = "postfix", *expect = "OK secure";
static uint32_t *samples;
static size_t n_samples;
static uint64_t requests, ok, errors;
static unsigned depth = 1;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* send_next - one request on c; 0, or -1 when every domain was asked (once mode) */
static int
send_next(struct conn *c, bool once)
{
	char q[600], out[640];
	int qn, n;

	if (once && next_domain >= n_domains)
		return -1;
	qn = snprintf(q, sizeof(q), "%s %s", name, domains[next_domain++ % n_domains]);
	n = snprintf(out, sizeof(out), "%d:%s,", qn, q);
	c->sent_ns[c->tail++ % 64] = now_ns();
	if (send(c->fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
		perror("send");
		exit(1);
	}
	return 0;
}

/* reply - a complete netstring in c->buf? Consume it; 1 when one was taken. */
static int
reply(struct conn *c)
{
	char *colon = memchr(c->buf, ':', c->in);
	size_t len, hdr;

	if (colon == NULL)
		return 0;
	len = strtoul(c->buf, NULL, 10);
	hdr = (size_t)(colon - c->buf) + 1;
	if (c->in < hdr + len + 1)
		return 0;
	if (c->buf[hdr + len] != ',')
		errors++;
	else if (len >= strlen(expect) && memcmp(c->buf + hdr, expect, strlen(expect)) == 0)
		ok++;
	requests++;
	if (n_samples < MAX_SAMPLES)
		samples[n_samples++] = (uint32_t)((now_ns() - c->sent_ns[c->head % 64]) / 1000);
	c->head++;
	memmove(c->buf, c->buf + hdr + len + 1, c->in - (hdr + len + 1));
	c->in -= hdr + len + 1;
	return 1;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	bool unix_path;
	int conns = 1, opt, ep, active;
	double secs = 5;
	bool once = false;
	uint64_t t0, t1, end;
	struct conn *cs;
	FILE *f = NULL;
	char line[512];

	while ((opt = getopt(argc, argv, "c:s:n:e:f:p:1")) != -1) {
		switch (opt) {
		case 'p':
			depth = (unsigned)atoi(optarg);
			break;
		case 'c':
			conns = atoi(optarg);
			break;
		case 's':
			secs = atof(optarg);
			break;
		case 'n':
			name = optarg;
			break;
		case 'e':
			expect = optarg;
			break;
		case 'f':
			f = fopen(optarg, "r");
			break;
		case '1':
			once = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 2 || f == NULL || conns < 1 || depth < 1 || depth > 64)
		goto usage;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		domains = realloc(domains, (n_domains + 1) * sizeof(*domains));
		domains[n_domains++] = strdup(line);
	}
	fclose(f);
	/* HOST starting with '/' is a unix socket (PORT is then ignored) */
	unix_path = argv[optind][0] == '/';
	if (unix_path)
		snprintf(su.sun_path, sizeof(su.sun_path), "%s", argv[optind]);
	if (n_domains == 0 || (!unix_path && inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1))
		goto usage;
	sa.sin_port = htons((uint16_t)atoi(argv[optind + 1]));
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	cs = calloc((size_t)conns, sizeof(*cs));
	ep = epoll_create1(0);
	for (int i = 0; i < conns; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
		int one = 1;

		cs[i].fd = socket(unix_path ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
		if (cs[i].fd < 0 ||
		    (unix_path ? connect(cs[i].fd, (struct sockaddr *)&su, sizeof(su))
		               : connect(cs[i].fd, (struct sockaddr *)&sa, sizeof(sa))) < 0) {
			perror("connect");
			return 1;
		}
		if (!unix_path)
			setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	t0 = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	active = 0;
	for (int i = 0; i < conns; i++)
		if (send_next(&cs[i], once) == 0) {
			active++;
			for (unsigned k = 1; k < depth && send_next(&cs[i], once) == 0; k++)
				;
		}
	while (active > 0) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 1000);

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			ssize_t r = recv(c->fd, c->buf + c->in, BUF - c->in, 0);

			if (r <= 0) {
				fprintf(stderr, "connection closed by the server\n");
				errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				active--;
				continue;
			}
			c->in += (size_t)r;
			while (reply(c) == 1) {
				bool stop = (!once && now_ns() >= end);

				if (!stop && send_next(c, once) == 0)
					continue;
				if (c->head == c->tail) { /* nothing left in flight */
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					active--;
					break;
				}
			}
		}
	}
	t1 = now_ns();
	qsort(samples, n_samples, sizeof(*samples), cmp_u32);
	printf("requests=%llu secs=%.3f rate=%.1f p50_us=%u p99_us=%u ok=%llu errors=%llu\n",
	       (unsigned long long)requests, (double)(t1 - t0) / 1e9,
	       (double)requests / ((double)(t1 - t0) / 1e9), n_samples ? samples[n_samples / 2] : 0,
	       n_samples ? samples[(size_t)((double)n_samples * 0.99)] : 0, (unsigned long long)ok,
	       (unsigned long long)errors);
	return errors != 0;
usage:
	fprintf(stderr,
	        "usage: smap_load [-c CONNS] [-p DEPTH] [-s SECONDS | -1] [-n NAME] [-e PREFIX] "
	        "-f DOMAINS_FILE HOST PORT\n");
	return 2;
}
