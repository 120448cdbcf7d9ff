/*
 * packet.h - parse the IPv4/IPv6 + TCP packets NFQUEUE hands us, and build
 * the TCP resets that end a blocked flow.
 *
 * The parser trusts nothing: every header length is checked against the
 * bytes present, IPv6 extension headers are walked (bounded), fragments are
 * ignored (a first fragment carries too little to reassemble SMTP lines
 * and later ones carry no TCP header), and truncated packets are refused.
 * Pure: no I/O, no allocation; the result points into the caller's buffer.
 */
#ifndef NFQ_PACKET_H
#define NFQ_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* TCP flags as they appear in the header. */
#define NFQ_TCP_FIN 0x01
#define NFQ_TCP_SYN 0x02
#define NFQ_TCP_RST 0x04
#define NFQ_TCP_PSH 0x08
#define NFQ_TCP_ACK 0x10

/* A parsed TCP segment. Addresses are in network order; IPv4 uses addr[0..4). */
struct nfq_pkt {
	int family; /* AF_INET or AF_INET6 */
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport; /* host order */
	uint16_t dport;
	uint32_t seq; /* host order */
	uint32_t ack;
	uint8_t flags;
	const uint8_t *payload; /* into the parsed buffer; NULL when len is 0 */
	size_t len;
};

/*
 * nfq_packet_parse - parse buf (len bytes, starting at the IP header) into
 * *out. Returns 0 for a TCP segment, -1 for anything else: not IPv4/IPv6,
 * not TCP, a fragment, bad or truncated headers. The payload length comes
 * from the IP length field; bytes beyond it (link padding) are ignored.
 */
int nfq_packet_parse(const uint8_t *buf, size_t len, struct nfq_pkt *out);

/* The size of the resets built below: an IPv6 header and a bare TCP header. */
#define NFQ_RST_MAX (40 + 20)

/*
 * nfq_packet_build_rst - write into buf (at least NFQ_RST_MAX bytes) an IP +
 * TCP RST with valid checksums that ends the connection of p: toward p's
 * source when to_source (claiming to come from p's destination, sequence
 * p->ack), else toward p's destination (from p's source, sequence p->seq,
 * which the receiver expects next). Returns the length written, or -1 when
 * buflen is too small.
 */
int nfq_packet_build_rst(const struct nfq_pkt *p, bool to_source, uint8_t *buf, size_t buflen);

/* nfq_addr_str - p's address (src or dst) as text into out; out is "?" if it does not fit. */
void nfq_addr_str(int family, const uint8_t *addr, char *out, size_t outlen);

#endif
