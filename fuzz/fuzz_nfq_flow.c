// sources: nfq/detect.c nfq/flow.c nfq/srvmem.c nfq/packet.c core/evlog.c core/log.c core/util.c core/types.c
/*
 * fuzz_nfq_flow.c - reassembly and detection on a sequence of segments
 * built from the input: each record is a header (direction, flow number,
 * flags, sequence offset, length) and its payload, fed through flow and
 * detect in block mode with a policy for one domain. Checks the memory
 * bounds after every segment.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "nfq/detect.h"

static int
policy(void *arg, const char *domain)
{
	(void)arg;
	if (strcmp(domain, "enforce.example") == 0)
		return STS_MODE_ENFORCE;
	if (strcmp(domain, "testing.example") == 0)
		return STS_MODE_TESTING;
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct detect_params dp = {0};
	struct detect *d;
	struct nfq_pkt p;
	uint32_t base[8][2] = {{0}};
	uint64_t now = 0;
	char err[128];
	size_t len;

	log_set_level(LOG_LVL_ERR);
	dp.action = CONF_NFQ_BLOCK;
	dp.policy = policy;
	dp.max_flows = 4;
	dp.max_memory = 48 * 1024;
	dp.idle_ms = 5000;
	if ((d = detect_new(&dp, err, sizeof(err))) == NULL)
		return 0;
	while (size >= 6) {
		unsigned flow = data[0] & 7;
		bool c2s = data[0] & 0x80;
		int16_t off = (int16_t)(data[2] << 8 | data[3]);
		bool slow = data[0] & 0x20;

		memset(&p, 0, sizeof(p));
		p.family = data[0] & 0x40 ? AF_INET6 : AF_INET;
		p.src[0] = c2s ? 10 : 20;
		p.dst[0] = c2s ? 20 : 10;
		p.src[3] = c2s ? (uint8_t)flow : 1;
		p.dst[3] = c2s ? 1 : (uint8_t)flow;
		p.sport = c2s ? (uint16_t)(1000 + flow) : 25;
		p.dport = c2s ? 25 : (uint16_t)(1000 + flow);
		p.flags = data[1];
		p.seq = base[flow][c2s] + (uint32_t)(int32_t)off;
		len = (size_t)(data[4] << 8 | data[5]) % 2048;
		data += 6;
		size -= 6;
		if (len > size)
			len = size;
		p.payload = len ? data : NULL;
		p.len = len;
		if (off >= 0)
			base[flow][c2s] = p.seq + (uint32_t)len;
		detect_packet(d, &p, now);
		now += slow ? 1000 : 1;
		if (detect_memory(d) > dp.max_memory || detect_flows(d) > 4)
			abort();
		data += len;
		size -= len;
		detect_expire(d, now);
	}
	detect_free(d);
	return 0;
}
