/*
 * intercept.h - the sockets of a transparent proxy: listeners that receive
 * intercepted port-25 connections (iptables/nftables REDIRECT or TPROXY),
 * the original destination of an accepted connection, and the upstream
 * socket a session connects with.
 *
 * REDIRECT rewrites the destination in conntrack: the original one is read
 * back with SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6). TPROXY
 * leaves the packet untouched and delivers it to a socket with
 * IP_TRANSPARENT: the local address of the accepted socket IS the original
 * destination.
 *
 * A connection whose original destination is one of our own listeners was
 * not intercepted at all (someone connected to the proxy port directly).
 * Relaying it would make the proxy an open relay: the caller refuses it.
 *
 * Every function here is thread-safe and allocation-free.
 */
#ifndef STS_INTERCEPT_H
#define STS_INTERCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/conf.h"

/* What a connection that was not intercepted, or comes from outside conf->clients, is told. */
#define INTERCEPT_REFUSED_LINE "554 5.7.1 stsproxy is not an open relay\r\n"

/*
 * intercept_original_dst - the destination the client meant to reach for
 * the accepted connection fd. REDIRECT: the conntrack entry's original
 * destination; when there is none (the connection was not NATed, or
 * conntrack is not loaded) the local address of fd, so that a direct
 * connection is recognised by intercept_is_self(). TPROXY: the local
 * address of fd. *len must be sizeof(*dst) on entry and is set to the
 * length of the address. Returns 0, or -1 with errno set.
 */
int intercept_original_dst(int fd, enum conf_interception mode, struct sockaddr_storage *dst,
                           socklen_t *len);

/*
 * intercept_is_self - true when dst is the address of one of the n
 * listeners: the same port, and the same address or a wildcard listener
 * (0.0.0.0, [::]) of the same family. An IPv4-mapped IPv6 dst is compared
 * as IPv4. Such a connection was not intercepted; the caller answers
 * INTERCEPT_REFUSED_LINE and closes. False when dst is NULL.
 */
bool intercept_is_self(const struct sockaddr *dst, const struct conf_addr *listen, size_t n);

/*
 * intercept_listen - a listening socket for a: non-blocking, close-on-exec,
 * SO_REUSEADDR and SO_REUSEPORT (one socket per worker on the same address,
 * the kernel spreads connections over them), IPV6_V6ONLY for IPv6 (so that
 * "[::]:port" and "0.0.0.0:port" can both be listed), and IP_TRANSPARENT /
 * IPV6_TRANSPARENT in TPROXY mode (needs CAP_NET_ADMIN). Returns the fd,
 * or -1 with one line in err naming the address, e.g.
 * "listen 0.0.0.0:10025: Address already in use".
 */
int intercept_listen(const struct conf_addr *a, enum conf_interception mode, int backlog, char *err,
                     size_t errlen);

/*
 * intercept_upstream_socket - a TCP socket of family (AF_INET or AF_INET6)
 * for a session's upstream connection: non-blocking, close-on-exec, and
 * with SO_MARK set to mark when mark is not 0 (conf->upstream_mark, so
 * that an on-host redirect rule can skip the proxy's own connections; needs
 * CAP_NET_ADMIN). The caller connects it. Returns the fd, or -1 with errno
 * set (nothing left open).
 */
int intercept_upstream_socket(int family, uint32_t mark);

/*
 * intercept_refuse - best effort: write line to the accepted, non-blocking
 * fd, shut down the sending side and close fd. Never blocks.
 */
void intercept_refuse(int fd, const char *line);

#endif
