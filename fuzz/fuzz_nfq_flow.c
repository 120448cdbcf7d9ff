// sources: nfq/detect.c nfq/hold.c nfq/flow.c nfq/srvmem.c nfq/packet.c core/evlog.c core/log.c core/util.c core/types.c
/*
 * fuzz_nfq_flow.c - reassembly and detection on a sequence of segments
 * built from the input: each record is a header (direction, flow number,
 * flags, sequence offset, length) and its payload, fed through flow and
 * detect in block mode with a policy for one domain. Unknown domains are
 * looked up; a record may first answer the last lookup (a mode, or a
 * temporary failure), and time runs so that held packets also time out.
 * Checks the memory bounds after every segment, and that every held
 * packet gets exactly one later verdict, by the end at the latest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

#define HOLD_MAX 4

/* The packets held now (their cookies) and the last domain looked up. */
static uint64_t held[HOLD_MAX];
static size_t n_held;
static char looked_up[256];

static int
lookup(void *arg, const char *domain)
{
	(void)arg;
	snprintf(looked_up, sizeof(looked_up), "%s", domain);
	return 0;
}

static void
on_verdict(void *arg, uint64_t cookie, const struct nfq_pkt *p, struct detect_result r)
{
	size_t i;

	(void)arg;
	(void)p;
	if (r.verdict == DETECT_HOLD)
		abort();
	for (i = 0; i < n_held && held[i] != cookie; i++)
		;
	if (i == n_held)
		abort(); /* a verdict for a packet not held, or a second one */
	held[i] = held[--n_held];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct detect_params dp = {0};
	struct detect_result r;
	struct detect *d;
	struct nfq_pkt p;
	uint32_t base[8][2] = {{0}};
	uint64_t now = 0, cookie = 0;
	char err[128];
	size_t len;

	log_set_level(LOG_LVL_ERR);
	n_held = 0;
	looked_up[0] = '\0';
	dp.action = CONF_NFQ_BLOCK;
	dp.policy = policy;
	dp.lookup = lookup;
	dp.on_verdict = on_verdict;
	dp.max_flows = 4;
	dp.max_memory = 48 * 1024;
	dp.idle_ms = 5000;
	dp.hold_max = HOLD_MAX;
	dp.hold_ms = 3000;
	if ((d = detect_new(&dp, err, sizeof(err))) == NULL)
		return 0;
	while (size >= 6) {
		unsigned flow = data[0] & 7;
		bool c2s = data[0] & 0x80;
		int16_t off = (int16_t)(data[2] << 8 | data[3]);
		bool slow = data[0] & 0x20;

		if ((data[0] & 0x18) == 0x18 && looked_up[0] != '\0') {
			/* STS_MODE_* 0..2, or -1: a temporary failure. */
			detect_answer(d, looked_up, (int)(data[1] & 3) - 1, now);
			if (detect_holds(d) != n_held)
				abort();
		}
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
		r = detect_packet(d, &p, now, ++cookie);
		if (r.verdict == DETECT_HOLD) {
			if (n_held >= HOLD_MAX)
				abort();
			held[n_held++] = cookie;
		}
		now += slow ? 1000 : 1;
		if (detect_memory(d) > dp.max_memory || detect_flows(d) > 4 ||
		    detect_holds(d) != n_held)
			abort();
		data += len;
		size -= len;
		detect_expire(d, now);
		detect_expire_holds(d, now);
		if (detect_holds(d) != n_held || (n_held > 0 && detect_next_deadline(d) <= now))
			abort();
	}
	detect_free(d);
	if (n_held != 0)
		abort();
	return 0;
}
