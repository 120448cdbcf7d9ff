/*
 * dnsprobe.c - one UDP socket per resolver, connected so that an ICMP
 * unreachable comes back as an error on it, and poll() over all of them.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/dnsprobe.h"
#include "core/util.h"

#define DEFAULT_TIMEOUT_MS 3000
#define RESEND_MS          1000
#define ADDR_MAX           64

struct probe {
	char addr[ADDR_MAX]; /* as written, for the message */
	int fd;
	bool done; /* answered, or failed for good */
	bool answered;
	char why[64];
};

/* now_ms - monotonic milliseconds. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* fail - p will not answer: say why. */
static void
fail(struct probe *p, const char *why)
{
	p->done = true;
	sts_strlcpy(p->why, why, sizeof(p->why));
}

/* resolv_conf - the first DNSPROBE_MAX nameserver addresses of path into addrs. */
static size_t
resolv_conf(const char *path, char addrs[][ADDR_MAX])
{
	char line[512], word[16], addr[ADDR_MAX];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (n < DNSPROBE_MAX && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%15s %63s", word, addr) == 2 && strcmp(word, "nameserver") == 0)
			sts_strlcpy(addrs[n++], addr, ADDR_MAX);
	}
	fclose(f);
	return n;
}

/* probe_open - a socket connected to p->addr ("ADDR" or "ADDR@PORT"), port 53 by default. */
static void
probe_open(struct probe *p)
{
	char host[ADDR_MAX], *at;
	const char *port = "53";
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;

	p->fd = -1;
	sts_strlcpy(host, p->addr, sizeof(host));
	if ((at = strchr(host, '@')) != NULL) {
		*at = '\0';
		port = at + 1;
	}
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		fail(p, "not an address");
		return;
	}
	p->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0 || connect(p->fd, ai->ai_addr, ai->ai_addrlen) < 0)
		fail(p, strerror(errno));
	freeaddrinfo(ai);
}

/* probe_send - the query again; a refusal the kernel knows at once ends the probe. */
static void
probe_send(struct probe *p, const uint8_t *q, size_t qlen)
{
	if (!p->done && send(p->fd, q, qlen, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
		fail(p, strerror(errno));
}

/* probe_read - whatever is queued: a reply to id (QR set) is an answer. */
static void
probe_read(struct probe *p, uint16_t id)
{
	uint8_t buf[512];
	ssize_t n;

	while (!p->done) {
		n = recv(p->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fail(p, strerror(errno));
			return;
		}
		if (n >= 12 && ((buf[0] << 8) | buf[1]) == id && (buf[2] & 0x80) != 0) {
			p->done = p->answered = true;
			return;
		}
	}
}

/* report - "resolver A unreachable (why); resolver B ..." of every probe into out. */
static void
report(const struct probe *pr, size_t n, char *out, size_t outlen)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && off < outlen; i++) {
		int w = snprintf(out + off, outlen - off, "%sresolver %s unreachable (%s)",
		                 i > 0 ? "; " : "", pr[i].addr, pr[i].why);

		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* dnsprobe_silent - see dnsprobe.h */
int
dnsprobe_silent(const struct dnsprobe_params *p, char *out, size_t outlen)
{
	char addrs[DNSPROBE_MAX][ADDR_MAX];
	struct probe pr[DNSPROBE_MAX];
	struct pollfd pfd[DNSPROBE_MAX];
	unsigned timeout = p->timeout_ms != 0 ? p->timeout_ms : DEFAULT_TIMEOUT_MS;
	uint8_t q[17] = {0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
	uint64_t start = now_ms(), next = start;
	uint16_t id = 0;
	size_t n = 0;
	int answered = 0;

	if (outlen > 0)
		out[0] = '\0';
	if (p->n_servers > 0) {
		for (size_t i = 0; i < p->n_servers && n < DNSPROBE_MAX; i++)
			sts_strlcpy(addrs[n++], p->servers[i], ADDR_MAX);
	} else {
		n = resolv_conf(p->resolv_conf != NULL ? p->resolv_conf : "/etc/resolv.conf",
		                addrs);
	}
	if (n == 0) {
		snprintf(out, outlen, "no resolver to ask");
		return -1;
	}
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = (uint16_t)(start ^ (uint64_t)getpid());
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	memset(pr, 0, sizeof(pr));
	for (size_t i = 0; i < n; i++) {
		sts_strlcpy(pr[i].addr, addrs[i], sizeof(pr[i].addr));
		probe_open(&pr[i]);
	}
	for (;;) {
		uint64_t now = now_ms();
		size_t waiting = 0;
		int wait;

		if (now >= next) {
			for (size_t i = 0; i < n; i++)
				probe_send(&pr[i], q, sizeof(q));
			next = now + RESEND_MS;
		}
		for (size_t i = 0; i < n; i++) {
			pfd[i].fd = pr[i].done ? -1 : pr[i].fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			waiting += !pr[i].done;
		}
		if (waiting == 0 || now >= start + timeout)
			break;
		wait = (int)((next < start + timeout ? next : start + timeout) - now);
		if (poll(pfd, n, wait) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < n; i++)
			if (pfd[i].revents != 0)
				probe_read(&pr[i], id);
	}
	for (size_t i = 0; i < n; i++) {
		if (!pr[i].done)
			snprintf(pr[i].why, sizeof(pr[i].why), "no answer in %u s",
			         (timeout + 999) / 1000);
		answered += pr[i].answered;
		if (pr[i].fd >= 0)
			close(pr[i].fd);
	}
	if (answered > 0)
		return 0;
	report(pr, n, out, outlen);
	return 1;
}
