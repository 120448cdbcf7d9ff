// sources: nfq/packet.c core/util.c core/log.c
/*
 * test_packet.c - the IPv4/IPv6 + TCP parser of the packet inspector:
 * well-formed segments of both families, options and extension headers,
 * and every way a packet can be short, fragmented or not TCP; and the RSTs
 * built to end a blocked flow (checksums verified independently).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "nfq/packet.h"

/* Build an IPv4 (v6 false) or IPv6 TCP packet into buf; returns its length. */
static size_t
build(uint8_t *buf, bool v6, size_t tcpopt, const char *payload, uint8_t flags)
{
	size_t plen = payload ? strlen(payload) : 0, ip = v6 ? 40 : 20, tcp = 20 + tcpopt;
	size_t total = ip + tcp + plen;

	memset(buf, 0, total);
	if (v6) {
		buf[0] = 0x60;
		buf[4] = (uint8_t)((tcp + plen) >> 8);
		buf[5] = (uint8_t)(tcp + plen);
		buf[6] = IPPROTO_TCP;
		buf[7] = 64;
		inet_pton(AF_INET6, "2001:db8::1", buf + 8);
		inet_pton(AF_INET6, "2001:db8::2", buf + 24);
	} else {
		buf[0] = 0x45;
		buf[2] = (uint8_t)(total >> 8);
		buf[3] = (uint8_t)total;
		buf[8] = 64;
		buf[9] = IPPROTO_TCP;
		inet_pton(AF_INET, "198.51.100.1", buf + 12);
		inet_pton(AF_INET, "198.51.100.2", buf + 16);
	}
	buf[ip + 0] = 0xc3;
	buf[ip + 1] = 0x50; /* 50000 */
	buf[ip + 3] = 25;
	buf[ip + 4] = 0x01; /* seq 0x01020304 */
	buf[ip + 5] = 0x02;
	buf[ip + 6] = 0x03;
	buf[ip + 7] = 0x04;
	buf[ip + 11] = 9; /* ack 9 */
	buf[ip + 12] = (uint8_t)((tcp / 4) << 4);
	buf[ip + 13] = flags;
	memset(buf + ip + 20, 1, tcpopt); /* NOPs */
	if (plen)
		memcpy(buf + ip + tcp, payload, plen);
	return total;
}

static void
rfc791_ipv4_data(void **state)
{
	uint8_t buf[256];
	struct nfq_pkt p;
	size_t n = build(buf, false, 12, "EHLO x\r\n", NFQ_TCP_ACK | NFQ_TCP_PSH);

	(void)state;
	assert_int_equal(nfq_packet_parse(buf, n, &p), 0);
	assert_int_equal(p.family, AF_INET);
	assert_int_equal(p.sport, 50000);
	assert_int_equal(p.dport, 25);
	assert_int_equal(p.seq, 0x01020304);
	assert_int_equal(p.ack, 9);
	assert_int_equal(p.flags, NFQ_TCP_ACK | NFQ_TCP_PSH);
	assert_int_equal(p.len, 8);
	assert_memory_equal(p.payload, "EHLO x\r\n", 8);
	assert_int_equal(p.src[0], 198);
	assert_int_equal(p.dst[3], 2);
	/* Link padding after the IP length is not payload. */
	memset(buf + n, 0xee, 6);
	assert_int_equal(nfq_packet_parse(buf, n + 6, &p), 0);
	assert_int_equal(p.len, 8);
}

static void
rfc8200_ipv6_data(void **state)
{
	uint8_t buf[256];
	struct nfq_pkt p;
	size_t n = build(buf, true, 0, "250 ok\r\n", NFQ_TCP_ACK);

	(void)state;
	assert_int_equal(nfq_packet_parse(buf, n, &p), 0);
	assert_int_equal(p.family, AF_INET6);
	assert_int_equal(p.len, 8);
	assert_int_equal(p.src[15], 1);
	assert_int_equal(p.dst[15], 2);
}

static void
rfc8200_4_ipv6_extension_headers(void **state)
{
	uint8_t buf[256], out[256];
	struct nfq_pkt p;
	size_t n = build(buf, true, 0, "DATA\r\n", NFQ_TCP_ACK);

	(void)state;
	/* Insert a hop-by-hop (8 bytes) and a destination options header (16). */
	memcpy(out, buf, 40);
	out[6] = IPPROTO_HOPOPTS;
	memset(out + 40, 0, 24);
	out[40] = IPPROTO_DSTOPTS;
	out[41] = 0;
	out[48] = IPPROTO_TCP;
	out[49] = 1;
	memcpy(out + 64, buf + 40, n - 40);
	out[5] = (uint8_t)(buf[5] + 24);
	assert_int_equal(nfq_packet_parse(out, n + 24, &p), 0);
	assert_int_equal(p.len, 6);
	assert_memory_equal(p.payload, "DATA\r\n", 6);
	/* A fragment header: not inspected. */
	out[48] = IPPROTO_FRAGMENT;
	assert_int_equal(nfq_packet_parse(out, n + 24, &p), -1);
	/* An extension header running past the payload length. */
	out[48] = IPPROTO_TCP;
	out[49] = 200;
	assert_int_equal(nfq_packet_parse(out, n + 24, &p), -1);
}

static void
rfc791_ipv4_fragments_ignored(void **state)
{
	uint8_t buf[256];
	struct nfq_pkt p;
	size_t n = build(buf, false, 0, "RCPT TO:<a@b.example>\r\n", NFQ_TCP_ACK);

	(void)state;
	buf[6] = 0x20; /* MF */
	assert_int_equal(nfq_packet_parse(buf, n, &p), -1);
	buf[6] = 0x00;
	buf[7] = 0x10; /* offset */
	assert_int_equal(nfq_packet_parse(buf, n, &p), -1);
	buf[7] = 0;
	buf[6] = 0x40; /* DF alone is fine */
	assert_int_equal(nfq_packet_parse(buf, n, &p), 0);
}

static void
rfc9293_truncated_refused(void **state)
{
	uint8_t buf[256];
	struct nfq_pkt p;
	size_t n = build(buf, false, 8, "QUIT\r\n", NFQ_TCP_ACK), i;
	size_t n6;
	uint8_t b6[256];

	(void)state;
	/* Every truncation of the packet below its IP length is refused. */
	for (i = 0; i < n; i++)
		assert_int_equal(nfq_packet_parse(buf, i, &p), -1);
	n6 = build(b6, true, 0, "QUIT\r\n", NFQ_TCP_ACK);
	for (i = 0; i < n6; i++)
		assert_int_equal(nfq_packet_parse(b6, i, &p), -1);
	assert_int_equal(nfq_packet_parse(NULL, 0, &p), -1);
}

static void
rfc9293_bad_headers_refused(void **state)
{
	struct {
		const char *name;
		size_t off;
		uint8_t val;
	} cases[] = {
	    {"ip version 5", 0, 0x55},         {"ihl 4", 0, 0x44},
	    {"ihl past total", 0, 0x4f},       {"not tcp", 9, IPPROTO_UDP},
	    {"total below ihl", 3, 10},        {"tcp offset 4", 20 + 12, 0x40},
	    {"tcp offset past end", 32, 0xf0},
	};
	uint8_t buf[256];
	struct nfq_pkt p;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = build(buf, false, 0, "x", NFQ_TCP_ACK);
		buf[cases[i].off] = cases[i].val;
		if (nfq_packet_parse(buf, n, &p) != -1)
			fail_msg("case %s accepted", cases[i].name);
	}
	n = build(buf, true, 0, "x", NFQ_TCP_ACK);
	buf[6] = IPPROTO_UDP;
	assert_int_equal(nfq_packet_parse(buf, n, &p), -1);
	buf[6] = IPPROTO_TCP;
	buf[4] = buf[5] = 0; /* jumbogram */
	assert_int_equal(nfq_packet_parse(buf, n, &p), -1);
}

static uint16_t
csum(const uint8_t *p, size_t n, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void
rfc9293_3_10_7_rst_both_ways(void **state)
{
	uint8_t buf[256], rst[NFQ_RST_MAX];
	struct nfq_pkt p, r;
	int n, fam;
	uint32_t pseudo;

	(void)state;
	for (fam = 0; fam < 2; fam++) {
		size_t len = build(buf, fam == 1, 0, "RCPT TO:<a@b.example>\r\n", NFQ_TCP_ACK);
		size_t ip = fam ? 40 : 20, alen = fam ? 16 : 4;

		assert_int_equal(nfq_packet_parse(buf, len, &p), 0);
		/* Toward the source (the client), from the server. */
		n = nfq_packet_build_rst(&p, true, rst, sizeof(rst));
		assert_int_equal(n, (int)(ip + 20));
		assert_int_equal(nfq_packet_parse(rst, (size_t)n, &r), 0);
		assert_memory_equal(r.src, p.dst, alen);
		assert_memory_equal(r.dst, p.src, alen);
		assert_int_equal(r.sport, 25);
		assert_int_equal(r.dport, 50000);
		assert_int_equal(r.seq, p.ack);
		assert_int_equal(r.flags, NFQ_TCP_RST);
		pseudo = csum(r.src, alen, 0) + csum(r.dst, alen, 0) + IPPROTO_TCP + 20;
		assert_int_equal(csum(rst + ip, 20, pseudo), 0xffff);
		if (!fam)
			assert_int_equal(csum(rst, 20, 0), 0xffff);
		/* Toward the destination (the server), from the client. */
		n = nfq_packet_build_rst(&p, false, rst, sizeof(rst));
		assert_int_equal(nfq_packet_parse(rst, (size_t)n, &r), 0);
		assert_memory_equal(r.src, p.src, alen);
		assert_int_equal(r.dport, 25);
		assert_int_equal(r.seq, p.seq);
		pseudo = csum(r.src, alen, 0) + csum(r.dst, alen, 0) + IPPROTO_TCP + 20;
		assert_int_equal(csum(rst + ip, 20, pseudo), 0xffff);
		assert_int_equal(nfq_packet_build_rst(&p, true, rst, ip + 19), -1);
	}
}

static void
addr_text(void **state)
{
	uint8_t a[16] = {198, 51, 100, 7};
	char out[64], tiny[4];

	(void)state;
	nfq_addr_str(AF_INET, a, out, sizeof(out));
	assert_string_equal(out, "198.51.100.7");
	nfq_addr_str(AF_INET, a, tiny, sizeof(tiny));
	assert_string_equal(tiny, "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc791_ipv4_data),
	    cmocka_unit_test(rfc8200_ipv6_data),
	    cmocka_unit_test(rfc8200_4_ipv6_extension_headers),
	    cmocka_unit_test(rfc791_ipv4_fragments_ignored),
	    cmocka_unit_test(rfc9293_truncated_refused),
	    cmocka_unit_test(rfc9293_bad_headers_refused),
	    cmocka_unit_test(rfc9293_3_10_7_rst_both_ways),
	    cmocka_unit_test(addr_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
