/*
 * intercept.c - listener and upstream sockets of the transparent proxy, and
 * the original destination of an intercepted connection.
 *
 * Kept apart from the worker so that the socket options, which are easy to
 * get subtly wrong and decide whether the proxy is an open relay, can be
 * tested on their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include "proxy/intercept.h"

/* intercept_original_dst - conntrack's original destination, else the local address */
int
intercept_original_dst(int fd, enum conf_interception mode, struct sockaddr_storage *dst,
                       socklen_t *len)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);

	if (*len < sizeof(*dst)) {
		errno = EINVAL;
		return -1;
	}
	memset(dst, 0, sizeof(*dst));
	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
		return -1;
	if (mode == CONF_INTERCEPT_REDIRECT) {
		socklen_t olen = sizeof(*dst);
		int rc = -1;

		if (local.ss_family == AF_INET)
			rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, dst, &olen);
		else if (local.ss_family == AF_INET6)
			rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, dst, &olen);
		if (rc == 0 && dst->ss_family == local.ss_family) {
			*len = olen;
			return 0;
		}
		/* No conntrack entry (ENOENT) or no conntrack at all: the
		 * connection was not redirected, and its local address lets
		 * intercept_is_self() recognise a direct connection. */
	}
	memcpy(dst, &local, llen);
	*len = llen;
	return 0;
}

/* unmap - an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as AF_INET into tmp. */
static const struct sockaddr *
unmap(const struct sockaddr *sa, struct sockaddr_in *tmp)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return sa;
	memset(tmp, 0, sizeof(*tmp));
	tmp->sin_family = AF_INET;
	tmp->sin_port = s6->sin6_port;
	memcpy(&tmp->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	return (const struct sockaddr *)tmp;
}

/* addr_matches - same port, and the same address or a wildcard listener. */
static bool
addr_matches(const struct sockaddr *dst, const struct sockaddr *l)
{
	if (dst->sa_family != l->sa_family)
		return false;
	if (dst->sa_family == AF_INET) {
		const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
		const struct sockaddr_in *s = (const struct sockaddr_in *)l;

		return d->sin_port == s->sin_port && (s->sin_addr.s_addr == htonl(INADDR_ANY) ||
		                                      s->sin_addr.s_addr == d->sin_addr.s_addr);
	}
	if (dst->sa_family == AF_INET6) {
		const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)dst;
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)l;

		return d->sin6_port == s->sin6_port &&
		       (IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr) ||
		        IN6_ARE_ADDR_EQUAL(&s->sin6_addr, &d->sin6_addr));
	}
	return false;
}

/* intercept_is_self - was this connection made to the proxy port directly? */
bool
intercept_is_self(const struct sockaddr *dst, const struct conf_addr *listen, size_t n)
{
	struct sockaddr_in t1, t2;

	if (dst == NULL)
		return false;
	dst = unmap(dst, &t1);
	for (size_t i = 0; i < n; i++) {
		if (addr_matches(dst, unmap((const struct sockaddr *)&listen[i].sa, &t2)))
			return true;
	}
	return false;
}

/* intercept_listen - one listener socket with the options interception needs */
int
intercept_listen(const struct conf_addr *a, enum conf_interception mode, int backlog, char *err,
                 size_t errlen)
{
	const char *what = "socket";
	int family = a->sa.ss_family;
	int on = 1;
	int fd;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		goto fail;
	what = "SO_REUSEADDR";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		goto fail;
	what = "SO_REUSEPORT";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
		goto fail;
	if (family == AF_INET6) {
		/* "[::]:port" must not take the IPv4 port from "0.0.0.0:port". */
		what = "IPV6_V6ONLY";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
			goto fail;
	}
	if (mode == CONF_INTERCEPT_TPROXY) {
		/* TPROXY delivers packets addressed to foreign addresses: the
		 * socket must accept them. */
		what = family == AF_INET6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT";
		if ((family == AF_INET6 &&
		     setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, sizeof(on)) < 0) ||
		    (family == AF_INET &&
		     setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof(on)) < 0))
			goto fail;
	}
	what = "bind";
	if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) < 0)
		goto fail;
	what = "listen";
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail : {
	int saved = errno;

	snprintf(err, errlen, "listen %s: %s: %s", a->text ? a->text : "?", what, strerror(saved));
	if (fd >= 0)
		close(fd);
	errno = saved;
	return -1;
}
}

/* intercept_upstream_socket - a marked, non-blocking socket for a session's upstream */
int
intercept_upstream_socket(int family, uint32_t mark)
{
	int fd, saved;

	if (family != AF_INET && family != AF_INET6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -1;
	if (mark != 0) {
		/* The on-host redirect rule skips marked connections: without
		 * the mark, our own upstream connection would loop back to us. */
		if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
			goto fail;
	}
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* intercept_refuse - one reply line, then close, without blocking the loop */
void
intercept_refuse(int fd, const char *line)
{
	ssize_t n;

	if (fd < 0)
		return;
	n = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n; /* best effort: the client may already be gone */
	shutdown(fd, SHUT_WR);
	close(fd);
}
