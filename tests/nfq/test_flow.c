// sources: nfq/flow.c nfq/packet.c core/util.c core/log.c
/*
 * test_flow.c - TCP reassembly for the packet inspector: lines come out
 * whole and in order whatever the segmentation (split at every byte, out
 * of order, retransmitted with overlaps, joined mid-flow), for IPv4 and
 * IPv6, both directions; and the bounds: held bytes per direction and in
 * total, the window, overlong lines, the flow cap, expiry, FIN and RST;
 * a paused flow neither reassembles nor ends by FIN until it resumes.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "nfq/flow.h"

/* What the callbacks saw: lines joined with '|' per direction. */
struct rec {
	char out[2][8192];
	size_t len[2];
	unsigned lines[2];
	unsigned truncated;
	unsigned ended[4];
	size_t longest;
	int ignore_after; /* flow_ignore() after this many client lines; 0: never */
};

static int
rec_data(void *arg, struct flow *f, enum flow_dir dir, const uint8_t *p, size_t n)
{
	(void)arg;
	(void)f;
	(void)dir;
	assert_non_null(p);
	assert_true(n > 0);
	return 0;
}

static void
rec_line(void *arg, struct flow *f, enum flow_dir dir, const char *line, size_t len, bool truncated)
{
	struct rec *r = arg;
	size_t room = sizeof(r->out[dir]) - r->len[dir];

	if (len > r->longest)
		r->longest = len;
	if (truncated)
		r->truncated++;
	if (len + 1 < room) {
		memcpy(r->out[dir] + r->len[dir], line, len);
		r->len[dir] += len;
		r->out[dir][r->len[dir]++] = '|';
		r->out[dir][r->len[dir]] = '\0';
	}
	r->lines[dir]++;
	if (r->ignore_after && dir == FLOW_C2S && r->lines[dir] == (unsigned)r->ignore_after)
		flow_ignore(f);
}

static void
rec_end(void *arg, struct flow *f, enum flow_end why)
{
	struct rec *r = arg;

	(void)f;
	r->ended[why]++;
}

static struct flow_table *
table(struct rec *r, size_t max_flows, size_t max_mem)
{
	struct flow_params p = {0};

	memset(r, 0, sizeof(*r));
	p.max_flows = max_flows;
	p.max_memory = max_mem;
	p.idle_ms = 1000;
	p.user_size = 16;
	p.ops.data = rec_data;
	p.ops.line = rec_line;
	p.ops.end = rec_end;
	p.arg = r;
	return flow_table_new(&p);
}

/* A segment of the client (c2s) or server side of flow number id. */
static struct nfq_pkt
seg(bool v6, bool c2s, unsigned id, uint32_t seq, const void *data, size_t len, uint8_t flags)
{
	struct nfq_pkt p;
	uint8_t client[16] = {0}, server[16] = {0};

	memset(&p, 0, sizeof(p));
	p.family = v6 ? AF_INET6 : AF_INET;
	if (v6) {
		inet_pton(AF_INET6, "2001:db8::10", client);
		inet_pton(AF_INET6, "2001:db8::25", server);
	} else {
		inet_pton(AF_INET, "198.51.100.10", client);
		inet_pton(AF_INET, "198.51.100.25", server);
	}
	client[v6 ? 14 : 2] = (uint8_t)(id >> 8); /* many distinct clients */
	client[v6 ? 15 : 3] = (uint8_t)id;
	memcpy(c2s ? p.src : p.dst, client, 16);
	memcpy(c2s ? p.dst : p.src, server, 16);
	p.sport = c2s ? (uint16_t)(40000 + id % 1000) : 25;
	p.dport = c2s ? 25 : (uint16_t)(40000 + id % 1000);
	p.seq = seq;
	p.flags = flags | NFQ_TCP_ACK;
	p.payload = len ? data : NULL;
	p.len = len;
	return p;
}

static void
feed(struct flow_table *t, bool v6, bool c2s, uint32_t seq, const char *s, size_t len)
{
	struct nfq_pkt p = seg(v6, c2s, 1, seq, s, len, 0);

	flow_table_input(t, &p, 0);
}

static const char dialogue[] = "EHLO client.example\r\nMAIL FROM:<a@a.example>\r\n"
                               "RCPT TO:<b@b.example>\r\nDATA\r\n";
static const char expect[] = "EHLO client.example|MAIL FROM:<a@a.example>|"
                             "RCPT TO:<b@b.example>|DATA|";

static void
rfc9293_3_4_in_order_from_syn(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 0);
	struct nfq_pkt p;
	int v6;

	(void)state;
	for (v6 = 0; v6 < 2; v6++) {
		memset(&r, 0, sizeof(r));
		p = seg(v6, true, 1, 1000, NULL, 0, NFQ_TCP_SYN);
		assert_non_null(flow_table_input(t, &p, 0));
		p = seg(v6, false, 1, 5000, NULL, 0, NFQ_TCP_SYN);
		assert_non_null(flow_table_input(t, &p, 0));
		feed(t, v6, false, 5001, "220 mx ESMTP\r\n", 14);
		feed(t, v6, true, 1001, dialogue, strlen(dialogue));
		assert_string_equal(r.out[FLOW_C2S], expect);
		assert_string_equal(r.out[FLOW_S2C], "220 mx ESMTP|");
	}
	assert_int_equal(flow_table_count(t), 2);
	flow_table_free(t);
	assert_int_equal(r.ended[FLOW_END_FREED], 2);
}

static void
rfc9293_split_at_every_byte(void **state)
{
	struct rec r;
	struct flow_table *t;
	size_t n = strlen(dialogue), k, i;
	int v6;

	(void)state;
	for (v6 = 0; v6 < 2; v6++) {
		/* Two segments, split at every position. */
		for (k = 1; k < n; k++) {
			t = table(&r, 0, 0);
			feed(t, v6, true, 7, dialogue, k);
			feed(t, v6, true, 7 + (uint32_t)k, dialogue + k, n - k);
			assert_string_equal(r.out[FLOW_C2S], expect);
			flow_table_free(t);
		}
		/* One byte per segment. */
		t = table(&r, 0, 0);
		for (i = 0; i < n; i++)
			feed(t, v6, true, 0xfffffff0u + (uint32_t)i, dialogue + i, 1);
		assert_string_equal(r.out[FLOW_C2S], expect);
		assert_int_equal(flow_table_memory(t), 256); /* one line buffer, reused */
		flow_table_free(t);
	}
}

static void
rfc9293_3_10_7_out_of_order(void **state)
{
	struct rec r;
	struct flow_table *t;
	size_t n = strlen(dialogue), i;

	(void)state;
	/* Every byte in reverse order after the first: all held, then drained. */
	t = table(&r, 0, 0);
	feed(t, false, true, 100, dialogue, 1);
	for (i = n - 1; i >= 2; i--)
		feed(t, false, true, 100 + (uint32_t)i, dialogue + i, 1);
	assert_int_equal(r.lines[FLOW_C2S], 0);
	feed(t, false, true, 101, dialogue + 1, 1);
	assert_string_equal(r.out[FLOW_C2S], expect);
	assert_int_equal(flow_table_memory(t), 256); /* only the line buffer is left */
	flow_table_free(t);

	/* Interleaved: odd segments first, then even ones (IPv6). */
	t = table(&r, 0, 0);
	feed(t, true, true, 0, dialogue, 4);
	for (i = 8; i < n; i += 8)
		feed(t, true, true, (uint32_t)i, dialogue + i, n - i < 4 ? n - i : 4);
	for (i = 4; i < n; i += 8)
		feed(t, true, true, (uint32_t)i, dialogue + i, n - i < 4 ? n - i : 4);
	assert_string_equal(r.out[FLOW_C2S], expect);
	flow_table_free(t);
}

static void
rfc9293_retransmission_overlap_trimmed(void **state)
{
	struct rec r;
	struct flow_table *t;
	size_t n = strlen(dialogue), i, len;
	unsigned seed = 12345;

	(void)state;
	t = table(&r, 0, 0);
	feed(t, false, true, 50, dialogue, 10);
	feed(t, false, true, 50, dialogue, 10);     /* exact retransmission */
	feed(t, false, true, 55, dialogue + 5, 20); /* overlap on both sides */
	feed(t, false, true, 40, "XXXXXXXXXX", 10); /* before the start: old */
	feed(t, false, true, 50, dialogue, n);      /* the whole thing again */
	feed(t, false, true, 50, dialogue, n);
	assert_string_equal(r.out[FLOW_C2S], expect);
	flow_table_free(t);

	/* Random overlapping segments in random order until everything arrived. */
	t = table(&r, 0, 0);
	feed(t, false, true, 0, dialogue, 1);
	for (i = 0; i < 400; i++) {
		size_t off;

		seed = seed * 1103515245u + 12345u;
		off = (seed >> 8) % n;
		seed = seed * 1103515245u + 12345u;
		len = 1 + (seed >> 8) % 12;
		if (off + len > n)
			len = n - off;
		feed(t, false, true, (uint32_t)off, dialogue + off, len);
	}
	feed(t, false, true, 0, dialogue, n);
	assert_string_equal(r.out[FLOW_C2S], expect);
	assert_int_equal(flow_table_memory(t), 256);
	flow_table_free(t);
}

static void
join_mid_flow(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 0);
	const char *s = "250-mx.example\r\n250 STARTTLS\r\n";

	(void)state;
	/* No SYN seen: the first segment of each side is its start. */
	feed(t, false, false, 777777, s, strlen(s));
	feed(t, false, true, 3, "STARTTLS\r\n", 10);
	assert_string_equal(r.out[FLOW_S2C], "250-mx.example|250 STARTTLS|");
	assert_string_equal(r.out[FLOW_C2S], "STARTTLS|");
	assert_int_equal(flow_table_count(t), 1);
	flow_table_free(t);
}

static void
bare_lf_and_cr_kept(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 0);

	(void)state;
	feed(t, false, true, 0, "A\nB\r\r\nC", 7);
	feed(t, false, true, 7, "\r\n", 2);
	assert_string_equal(r.out[FLOW_C2S], "A|B\r|C|");
	flow_table_free(t);
}

static void
bounds_flood_within_limits(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 0);
	static char big[70000];
	size_t i;

	(void)state;
	memset(big, 'A', sizeof(big));
	feed(t, false, true, 0, "X", 1);
	/* 100 KiB of out-of-order data: held only up to FLOW_PENDING_MAX. */
	for (i = 0; i < 100; i++)
		feed(t, false, true, 2 + (uint32_t)i * 1024, big, 1024);
	assert_true(flow_table_memory(t) <= FLOW_PENDING_MAX);
	/* Beyond the window: never held. */
	feed(t, false, true, 1 + FLOW_WINDOW + 10, big, 10);
	assert_true(flow_table_memory(t) <= FLOW_PENDING_MAX);
	flow_table_free(t);

	/* An endless line: bounded, then reported truncated at its end. */
	t = table(&r, 0, 0);
	feed(t, false, true, 0, big, sizeof(big));
	assert_true(flow_table_memory(t) <= FLOW_PENDING_MAX);
	feed(t, false, true, (uint32_t)sizeof(big), "\r\nQUIT\r\n", 8);
	assert_int_equal(r.truncated, 1);
	assert_int_equal(r.longest, FLOW_PENDING_MAX);
	assert_int_equal(r.lines[FLOW_C2S], 2);
	assert_memory_equal(r.out[FLOW_C2S] + r.len[FLOW_C2S] - 5, "QUIT|", 5);
	flow_table_free(t);
}

static void
bounds_total_memory(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 8192);
	char buf[600];
	unsigned id;

	(void)state;
	memset(buf, 'b', sizeof(buf));
	for (id = 0; id < 100; id++) {
		struct nfq_pkt p = seg(false, true, id, 0, "a", 1, 0);

		flow_table_input(t, &p, 0);
		p = seg(false, true, id, 10, buf, sizeof(buf), 0);
		flow_table_input(t, &p, 0);
		assert_true(flow_table_memory(t) <= 8192);
	}
	assert_int_equal(flow_table_count(t), 100);
	flow_table_free(t);
}

static void
bounds_flow_cap_lru(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 64, 0);
	struct nfq_pkt p;
	unsigned id;

	(void)state;
	for (id = 0; id < 64; id++) {
		p = seg(id & 1, true, id, 0, NULL, 0, NFQ_TCP_SYN);
		assert_non_null(flow_table_input(t, &p, id));
	}
	/* Touch flow 0 so flow 1 is the least recently used. */
	p = seg(false, true, 0, 1, "x", 1, 0);
	flow_table_input(t, &p, 100);
	p = seg(false, true, 1000, 0, NULL, 0, NFQ_TCP_SYN);
	assert_non_null(flow_table_input(t, &p, 101));
	assert_int_equal(flow_table_count(t), 64);
	assert_int_equal(r.ended[FLOW_END_EVICTED], 1);
	/* Flow 1 is gone (a new one is created), flow 0 survived. */
	p = seg(true, true, 1, 1, "y\n", 2, 0);
	flow_table_input(t, &p, 102);
	assert_int_equal(r.ended[FLOW_END_EVICTED], 2);
	p = seg(false, true, 0, 2, "\n", 1, 0);
	flow_table_input(t, &p, 103);
	assert_string_equal(r.out[FLOW_C2S], "y|x|");
	flow_table_free(t);
}

static void
expiry_and_close(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 0);
	struct nfq_pkt p;

	(void)state;
	p = seg(false, true, 1, 0, "a", 1, 0);
	flow_table_input(t, &p, 0);
	p = seg(false, true, 2, 0, "a", 1, 0);
	flow_table_input(t, &p, 600);
	assert_int_equal(flow_table_expire(t, 1000), 0);
	assert_int_equal(flow_table_expire(t, 1001), 1);
	assert_int_equal(flow_table_count(t), 1);
	assert_int_equal(flow_table_expire(t, 1601), 1);
	assert_int_equal(r.ended[FLOW_END_IDLE], 2);

	/* RST ends at once; FIN only from both sides. */
	p = seg(false, true, 3, 0, "a", 1, 0);
	assert_non_null(flow_table_input(t, &p, 0));
	p = seg(false, false, 3, 0, NULL, 0, NFQ_TCP_RST);
	assert_null(flow_table_input(t, &p, 0));
	assert_int_equal(r.ended[FLOW_END_CLOSED], 1);
	p = seg(false, true, 4, 0, "QUIT\r\n", 6, NFQ_TCP_FIN);
	assert_non_null(flow_table_input(t, &p, 0));
	assert_string_equal(r.out[FLOW_C2S], "QUIT|");
	p = seg(false, false, 4, 0, NULL, 0, NFQ_TCP_FIN);
	assert_null(flow_table_input(t, &p, 0));
	assert_int_equal(r.ended[FLOW_END_CLOSED], 2);
	assert_int_equal(flow_table_count(t), 0);
	/* A lone RST or a segment of another port creates nothing. */
	p = seg(false, true, 5, 0, NULL, 0, NFQ_TCP_RST);
	assert_null(flow_table_input(t, &p, 0));
	p = seg(false, true, 6, 0, "a", 1, 0);
	p.dport = 587;
	assert_null(flow_table_input(t, &p, 0));
	assert_int_equal(flow_table_count(t), 0);
	flow_table_free(t);
}

static void
ignore_frees_and_stops(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 0);
	struct flow *f;

	(void)state;
	r.ignore_after = 1;
	feed(t, false, true, 0, "A\r\nB\r\nC", 7);
	feed(t, false, true, 20, "held", 4);
	assert_int_equal(r.lines[FLOW_C2S], 1);
	assert_int_equal(flow_table_memory(t), 0);
	{
		struct nfq_pkt p = seg(false, true, 1, 7, "\r\n", 2, 0);

		f = flow_table_input(t, &p, 0);
	}
	assert_non_null(f);
	assert_true(flow_ignored(f));
	assert_int_equal(r.lines[FLOW_C2S], 1);
	assert_int_equal(flow_key_of(f)->sport, 25);
	assert_int_equal(flow_id(f), 1);
	assert_non_null(flow_user(f));
	flow_table_free(t);
}

static void
rfc9293_3_10_pause_and_resume(void **state)
{
	struct rec r;
	struct flow_table *t = table(&r, 0, 0);
	struct flow *f;
	struct nfq_pkt p;

	(void)state;
	p = seg(false, true, 1, 0, "A\r\n", 3, 0);
	f = flow_table_input(t, &p, 0);
	assert_non_null(f);
	flow_pause(f, true);
	assert_true(flow_paused(f));
	/* Dropped by the caller while paused: neither delivered nor a FIN. */
	p = seg(false, true, 1, 3, "B\r\n", 3, NFQ_TCP_FIN);
	assert_ptr_equal(flow_table_input(t, &p, 10), f);
	p = seg(false, false, 1, 0, "250 x\r\n", 7, NFQ_TCP_FIN);
	assert_ptr_equal(flow_table_input(t, &p, 10), f);
	assert_string_equal(r.out[FLOW_C2S], "A|");
	assert_int_equal(r.lines[FLOW_S2C], 0);
	assert_int_equal(r.ended[FLOW_END_CLOSED], 0);
	/* Idle time still counts from the last segment. */
	assert_int_equal(flow_table_expire(t, 1005), 0);
	/* Resumed, the segments sent again are reassembled and end the flow. */
	flow_pause(f, false);
	p = seg(false, true, 1, 3, "B\r\n", 3, NFQ_TCP_FIN);
	assert_ptr_equal(flow_table_input(t, &p, 20), f);
	p = seg(false, false, 1, 0, "250 x\r\n", 7, NFQ_TCP_FIN);
	assert_null(flow_table_input(t, &p, 20));
	assert_string_equal(r.out[FLOW_C2S], "A|B|");
	assert_string_equal(r.out[FLOW_S2C], "250 x|");
	assert_int_equal(r.ended[FLOW_END_CLOSED], 1);
	/* RST ends a paused flow. */
	p = seg(false, true, 2, 0, "A\r\n", 3, 0);
	f = flow_table_input(t, &p, 0);
	flow_pause(f, true);
	p = seg(false, false, 2, 0, NULL, 0, NFQ_TCP_RST);
	assert_null(flow_table_input(t, &p, 0));
	assert_int_equal(r.ended[FLOW_END_CLOSED], 2);
	flow_table_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc9293_3_4_in_order_from_syn),
	    cmocka_unit_test(rfc9293_split_at_every_byte),
	    cmocka_unit_test(rfc9293_3_10_7_out_of_order),
	    cmocka_unit_test(rfc9293_retransmission_overlap_trimmed),
	    cmocka_unit_test(join_mid_flow),
	    cmocka_unit_test(bare_lf_and_cr_kept),
	    cmocka_unit_test(bounds_flood_within_limits),
	    cmocka_unit_test(bounds_total_memory),
	    cmocka_unit_test(bounds_flow_cap_lru),
	    cmocka_unit_test(expiry_and_close),
	    cmocka_unit_test(ignore_frees_and_stops),
	    cmocka_unit_test(rfc9293_3_10_pause_and_resume),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
