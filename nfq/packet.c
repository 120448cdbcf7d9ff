/*
 * packet.c - defensive IPv4/IPv6 + TCP parsing of NFQUEUE payloads, and the
 * resets sent when a flow is blocked.
 *
 * Everything the network sends is checked before it is used: version,
 * header lengths, total length against the bytes copied to us, the TCP
 * data offset. A packet that does not pass is simply not inspected; the
 * caller accepts it unchanged.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/util.h"
#include "nfq/packet.h"

#define IPV6_MAX_EXT 8 /* extension headers walked before giving up */

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int
parse_tcp(const uint8_t *tcp, size_t len, struct nfq_pkt *out)
{
	size_t off;

	if (len < 20)
		return -1;
	off = (size_t)(tcp[12] >> 4) * 4;
	if (off < 20 || off > len)
		return -1;
	out->sport = get16(tcp);
	out->dport = get16(tcp + 2);
	out->seq = get32(tcp + 4);
	out->ack = get32(tcp + 8);
	out->flags = tcp[13];
	out->len = len - off;
	out->payload = out->len ? tcp + off : NULL;
	return 0;
}

static int
parse_ipv4(const uint8_t *buf, size_t len, struct nfq_pkt *out)
{
	size_t ihl, total;
	uint16_t frag;

	if (len < 20)
		return -1;
	ihl = (size_t)(buf[0] & 0x0f) * 4;
	total = get16(buf + 2);
	if (ihl < 20 || total < ihl || total > len)
		return -1;
	frag = get16(buf + 6);
	if ((frag & 0x3fff) != 0) /* MF set or an offset: a fragment */
		return -1;
	if (buf[9] != IPPROTO_TCP)
		return -1;
	out->family = AF_INET;
	memcpy(out->src, buf + 12, 4);
	memcpy(out->dst, buf + 16, 4);
	return parse_tcp(buf + ihl, total - ihl, out);
}

static int
parse_ipv6(const uint8_t *buf, size_t len, struct nfq_pkt *out)
{
	size_t off = 40, end;
	uint8_t next;
	int i;

	if (len < 40)
		return -1;
	end = 40 + (size_t)get16(buf + 4);
	if (end > len || end == 40) /* jumbograms (length 0) are not SMTP traffic we see */
		return -1;
	next = buf[6];
	for (i = 0; i < IPV6_MAX_EXT && next != IPPROTO_TCP; i++) {
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (off + 8 > end)
				return -1;
			next = buf[off];
			off += ((size_t)buf[off + 1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if (off + 8 > end)
				return -1;
			next = buf[off];
			off += ((size_t)buf[off + 1] + 2) * 4;
			break;
		default: /* fragments, ESP, no next header, other protocols */
			return -1;
		}
		if (off > end)
			return -1;
	}
	if (next != IPPROTO_TCP)
		return -1;
	out->family = AF_INET6;
	memcpy(out->src, buf + 8, 16);
	memcpy(out->dst, buf + 24, 16);
	return parse_tcp(buf + off, end - off, out);
}

/* nfq_packet_parse - an IP + TCP packet into *out; 0, or -1 if it is not one. */
int
nfq_packet_parse(const uint8_t *buf, size_t len, struct nfq_pkt *out)
{
	memset(out, 0, sizeof(*out));
	if (buf == NULL || len < 1)
		return -1;
	switch (buf[0] >> 4) {
	case 4:
		return parse_ipv4(buf, len, out);
	case 6:
		return parse_ipv6(buf, len, out);
	default:
		return -1;
	}
}

static uint32_t
sum_bytes(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t
fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* nfq_packet_build_rst - a RST ending p's connection toward one side; length or -1. */
int
nfq_packet_build_rst(const struct nfq_pkt *p, bool to_source, uint8_t *buf, size_t buflen)
{
	const uint8_t *src = to_source ? p->dst : p->src;
	const uint8_t *dst = to_source ? p->src : p->dst;
	size_t alen = p->family == AF_INET6 ? 16 : 4;
	size_t iplen = p->family == AF_INET6 ? 40 : 20;
	uint8_t *tcp = buf + iplen;
	uint32_t sum;

	if (buflen < iplen + 20 || (p->family != AF_INET && p->family != AF_INET6))
		return -1;
	memset(buf, 0, iplen + 20);
	put16(tcp, to_source ? p->dport : p->sport);
	put16(tcp + 2, to_source ? p->sport : p->dport);
	/* RFC 9293 section 3.10.7: a RST is accepted when its sequence number
	 * is the one the receiver expects next. */
	put32(tcp + 4, to_source ? p->ack : p->seq);
	tcp[12] = 5 << 4;
	tcp[13] = NFQ_TCP_RST;
	/* The pseudo header of RFC 9293 section 3.1 / RFC 8200 section 8.1. */
	sum = sum_bytes(0, src, alen);
	sum = sum_bytes(sum, dst, alen);
	sum += IPPROTO_TCP + 20;
	put16(tcp + 16, fold(sum_bytes(sum, tcp, 20)));
	if (p->family == AF_INET) {
		buf[0] = 0x45;
		put16(buf + 2, 40);
		put16(buf + 6, 0x4000); /* DF */
		buf[8] = 64;
		buf[9] = IPPROTO_TCP;
		memcpy(buf + 12, src, 4);
		memcpy(buf + 16, dst, 4);
		put16(buf + 10, fold(sum_bytes(0, buf, 20)));
	} else {
		buf[0] = 0x60;
		put16(buf + 4, 20);
		buf[6] = IPPROTO_TCP;
		buf[7] = 64;
		memcpy(buf + 8, src, 16);
		memcpy(buf + 24, dst, 16);
	}
	return (int)(iplen + 20);
}

/* nfq_addr_str - an address as text; "?" when it does not fit. */
void
nfq_addr_str(int family, const uint8_t *addr, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	if (inet_ntop(family, addr, out, (socklen_t)outlen) == NULL)
		sts_strlcpy(out, "?", outlen);
}
