// sources: nfq/packet.c core/util.c core/log.c
/*
 * fuzz_nfq_packet.c - the NFQUEUE packet parser on arbitrary bytes: a
 * parsed payload must lie inside the input, and a RST built from any
 * parsed packet must parse back with the ends swapped.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nfq/packet.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rst[NFQ_RST_MAX];
	struct nfq_pkt p, r;
	int n;

	if (nfq_packet_parse(data, size, &p) != 0)
		return 0;
	if (p.len > 0 && (p.payload < data || p.payload + p.len > data + size))
		abort();
	n = nfq_packet_build_rst(&p, true, rst, sizeof(rst));
	if (n < 0 || nfq_packet_parse(rst, (size_t)n, &r) != 0 || r.sport != p.dport ||
	    r.dport != p.sport || r.seq != p.ack || r.len != 0)
		abort();
	return 0;
}
