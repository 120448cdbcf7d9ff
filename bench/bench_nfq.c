// sources: nfq/detect.c nfq/hold.c nfq/flow.c nfq/srvmem.c nfq/packet.c core/evlog.c
// sources: core/log.c core/util.c core/types.c
/*
 * bench_nfq.c - the packet inspector's detector on one thread, without the
 * kernel: whole cleartext SMTP sessions (banner, EHLO without STARTTLS,
 * MAIL, RCPT, DATA, 354, one packet per line, and an ACK per packet) fed to
 * detect_packet(), many flows interleaved, for
 *
 *   known_log    action log, the recipient domain known (mode none)
 *   known_block  action block, the domain known: nothing is held
 *   first        action block, every flow a first contact: the RCPT packet
 *                is held and the lookup answered at once (detect_answer())
 *   answer       the cost of one answer while hold_max (1024) verdicts wait
 *                for as many domains (each answer looks through them all)
 *
 *   bench_nfq [--smoke | FLOWS [ROUNDS]]
 * prints packets per second of each mode, the ratio of known_block and of
 * first to known_log, the time a hold adds per flow, and the time of one
 * answer among 1024 waiting. Each figure is the best of ROUNDS rounds.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "nfq/detect.h"

#define HOLD_MAX 1024

enum mode { KNOWN_LOG = 0, KNOWN_BLOCK, FIRST };

static const char *const lines[][2] = {
    /* {direction: "s" server or "c" client, text} */
    {"s", "220 mx.bench.example ESMTP\r\n"},
    {"c", "EHLO client.example\r\n"},
    {"s", "250-mx.bench.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"},
    {"c", "MAIL FROM:<sender@client.example>\r\n"},
    {"s", "250 2.1.0 Ok\r\n"},
    {"c", "RCPT TO:<rcpt@bench.example>\r\n"},
    {"s", "250 2.1.5 Ok\r\n"},
    {"c", "DATA\r\n"},
    {"s", "354 End data with <CR><LF>.<CR><LF>\r\n"},
};
#define N_LINES (sizeof(lines) / sizeof(lines[0]))

static bool first_contact;
static size_t held; /* verdicts given later */

static int
policy(void *arg, const char *domain)
{
	(void)arg;
	(void)domain;
	return first_contact ? -1 : STS_MODE_NONE;
}

static int
lookup(void *arg, const char *domain)
{
	(void)arg;
	(void)domain;
	return 0;
}

static void
on_verdict(void *arg, uint64_t cookie, const struct nfq_pkt *p, struct detect_result r)
{
	(void)arg;
	(void)cookie;
	(void)p;
	(void)r;
	held++;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct detect *
detector(enum conf_nfq_action action)
{
	struct detect_params p = {0};
	struct detect *d;
	char err[256];

	p.action = action;
	p.policy = policy;
	p.lookup = lookup;
	p.on_verdict = on_verdict;
	p.hold_max = HOLD_MAX;
	if ((d = detect_new(&p, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench_nfq: %s\n", err);
		exit(1);
	}
	return d;
}

/* One segment of flow i, its client address and port from i. */
static struct nfq_pkt
segment(size_t i, bool c2s, uint32_t seq, uint32_t ack, const char *text)
{
	struct nfq_pkt p;
	uint8_t client[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
	uint8_t server[4] = {10, 0, 25, 2};

	memset(&p, 0, sizeof(p));
	p.family = AF_INET;
	memcpy(c2s ? p.src : p.dst, client, 4);
	memcpy(c2s ? p.dst : p.src, server, 4);
	p.sport = c2s ? 40000 : 25;
	p.dport = c2s ? 25 : 40000;
	p.seq = seq;
	p.ack = ack;
	p.flags = NFQ_TCP_ACK | (text ? NFQ_TCP_PSH : 0);
	p.payload = (const uint8_t *)text;
	p.len = text ? strlen(text) : 0;
	return p;
}

/*
 * run - flows sessions in batches of 256 interleaved flows; returns the
 * seconds taken and adds the packets fed to *packets.
 */
static double
run(enum mode m, size_t flows, uint64_t *packets)
{
	struct detect *d = detector(m == KNOWN_LOG ? CONF_NFQ_LOG : CONF_NFQ_BLOCK);
	uint32_t seq[256][2];
	uint64_t cookie = 0;
	size_t base, i, l, batch;
	struct nfq_pkt p;
	struct detect_result r;
	double t0;

	first_contact = m == FIRST;
	held = 0;
	t0 = now_s();
	for (base = 0; base < flows; base += batch) {
		batch = flows - base < 256 ? flows - base : 256;
		for (i = 0; i < batch; i++)
			seq[i][0] = seq[i][1] = 1000;
		for (l = 0; l < N_LINES; l++) {
			bool c2s = lines[l][0][0] == 'c';

			for (i = 0; i < batch; i++) {
				p = segment(base + i, c2s, seq[i][!c2s], seq[i][c2s], lines[l][1]);
				r = detect_packet(d, &p, 0, ++cookie);
				if (r.verdict == DETECT_HOLD)
					detect_answer(d, "bench.example", STS_MODE_NONE, 0);
				seq[i][!c2s] += (uint32_t)p.len;
				/* The other side's ACK. */
				p = segment(base + i, !c2s, seq[i][c2s], seq[i][!c2s], NULL);
				detect_packet(d, &p, 0, ++cookie);
				*packets += 2;
			}
		}
	}
	t0 = now_s() - t0;
	if (m == FIRST && held != flows) {
		fprintf(stderr, "bench_nfq: %zu of %zu flows held\n", held, flows);
		exit(1);
	}
	detect_free(d);
	return t0;
}

/* answers - seconds per answer while HOLD_MAX verdicts wait for as many domains. */
static double
answers(void)
{
	struct detect *d = detector(CONF_NFQ_BLOCK);
	static char names[HOLD_MAX][64], rcpt[HOLD_MAX][96];
	uint32_t seq[HOLD_MAX][2];
	uint64_t cookie = 0;
	struct nfq_pkt p;
	size_t i, l;
	double t0;

	first_contact = true;
	held = 0;
	for (i = 0; i < HOLD_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "d%04zu.bench.example", i);
		snprintf(rcpt[i], sizeof(rcpt[i]), "RCPT TO:<rcpt@%s>\r\n", names[i]);
		seq[i][0] = seq[i][1] = 1000;
		for (l = 0; l < 6; l++) {
			bool c2s = lines[l][0][0] == 'c';
			const char *text = l == 5 ? rcpt[i] : lines[l][1];

			p = segment(i, c2s, seq[i][!c2s], seq[i][c2s], text);
			detect_packet(d, &p, 0, ++cookie);
			seq[i][!c2s] += (uint32_t)p.len;
		}
	}
	if (detect_holds(d) != HOLD_MAX) {
		fprintf(stderr, "bench_nfq: %zu holds\n", detect_holds(d));
		exit(1);
	}
	/* The last made first: each answer looks at every record still waiting. */
	t0 = now_s();
	for (i = HOLD_MAX; i-- > 0;)
		detect_answer(d, names[i], STS_MODE_NONE, 1);
	t0 = now_s() - t0;
	detect_free(d);
	return t0 / HOLD_MAX;
}

int
main(int argc, char **argv)
{
	static const char *const names[] = {"known_log", "known_block", "first"};
	bool smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
	size_t flows = smoke ? 5000 : argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
	size_t rounds = smoke ? 1 : argc > 2 ? strtoul(argv[2], NULL, 10) : 5;
	double best[3] = {0, 0, 0}, pps[3], ans = 0, a;
	uint64_t packets[3] = {0, 0, 0};
	size_t r, m;

	log_set_level(LOG_LVL_ERR);
	if (flows == 0 || rounds == 0) {
		fprintf(stderr, "usage: bench_nfq [--smoke | FLOWS [ROUNDS]]\n");
		return 2;
	}
	/* Rounds interleave the modes, so none always runs on a warmer machine. */
	for (r = 0; r < rounds; r++) {
		for (m = 0; m < 3; m++) {
			uint64_t n = 0;
			double t = run((enum mode)m, flows, &n);

			packets[m] = n;
			if (best[m] == 0 || t < best[m])
				best[m] = t;
		}
		a = answers();
		if (ans == 0 || a < ans)
			ans = a;
	}
	for (m = 0; m < 3; m++) {
		pps[m] = (double)packets[m] / best[m];
		printf("nfq_%s_pkts_per_sec %.0f\n", names[m], pps[m]);
	}
	printf("nfq_known_block_vs_log_pkts_ratio %.3f\n", pps[KNOWN_BLOCK] / pps[KNOWN_LOG]);
	printf("nfq_first_vs_known_block_pkts_ratio %.3f\n", pps[FIRST] / pps[KNOWN_BLOCK]);
	printf("nfq_hold_added_ns_per_flow %.0f\n",
	       (best[FIRST] - best[KNOWN_BLOCK]) / (double)flows * 1e9);
	printf("nfq_answer_ns_at_%d_holds %.0f\n", HOLD_MAX, ans * 1e9);
	return 0;
}
