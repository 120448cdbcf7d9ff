/*
 * flow.h - per-flow TCP reassembly of cleartext SMTP dialogues, for the
 * packet inspector.
 *
 * Pure: no I/O and no clock of its own. The caller feeds parsed segments
 * (nfq/packet.h) with the current time; the table puts each direction back
 * in order and hands complete lines to the callbacks.
 *
 * A flow is keyed by its 5-tuple, IPv4 or IPv6, both directions in one
 * flow: the side talking to port 25 is the client. Sequence numbers start
 * from the SYN, or from the first segment seen when the flow is joined in
 * the middle. Retransmitted bytes are trimmed, segments ahead of the next
 * expected byte are held (within a window, bounded per direction and in
 * total), everything else is dropped from inspection, never from the
 * network. Memory is bounded: FLOW_PENDING_MAX bytes of held text per
 * direction (partial line + out-of-order data), a cap on flows with LRU
 * eviction, and a cap on all held bytes. Idle flows expire; RST, or a FIN
 * from both sides, ends a flow.
 */
#ifndef NFQ_FLOW_H
#define NFQ_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nfq/packet.h"

#define FLOW_PENDING_MAX (16 * 1024)  /* held bytes per direction */
#define FLOW_WINDOW      (64 * 1024)  /* how far ahead a segment may be held */
#define FLOW_MAX_DEFAULT 65536        /* flows */
#define FLOW_IDLE_MS     (600 * 1000) /* 10 minutes */
#define FLOW_MEM_DEFAULT (64u << 20)  /* all held bytes together */

enum flow_dir {
	FLOW_C2S = 0, /* client to server (toward port 25) */
	FLOW_S2C = 1,
};

/* The two ends of a flow. Addresses in network order (IPv4 in [0..4)). */
struct flow_key {
	int family;
	uint8_t client[16];
	uint8_t server[16];
	uint16_t cport; /* host order */
	uint16_t sport;
};

struct flow;
struct flow_table;

/* Why a flow ended (for the end callback). */
enum flow_end {
	FLOW_END_CLOSED = 0, /* RST, or FIN from both sides */
	FLOW_END_IDLE,
	FLOW_END_EVICTED, /* the table was full */
	FLOW_END_FREED,   /* flow_table_free() */
};

struct flow_ops {
	/*
	 * data - n new in-order bytes of dir, before they are cut into lines.
	 * Return 0 to go on, non-zero when the flow needs no more inspection
	 * (flow_ignore() already called, or the flow was released).
	 */
	int (*data)(void *arg, struct flow *f, enum flow_dir dir, const uint8_t *p, size_t n);
	/*
	 * line - one complete line of dir, without its CR LF (or bare LF).
	 * truncated: the line was longer than FLOW_PENDING_MAX and only its
	 * beginning is given. May call flow_ignore().
	 */
	void (*line)(void *arg, struct flow *f, enum flow_dir dir, const char *line, size_t len,
	             bool truncated);
	/* end - the flow is about to be freed; its user area is still valid. May be NULL. */
	void (*end)(void *arg, struct flow *f, enum flow_end why);
};

struct flow_params {
	size_t max_flows;  /* 0: FLOW_MAX_DEFAULT */
	size_t max_memory; /* held bytes of all flows; 0: FLOW_MEM_DEFAULT */
	uint64_t idle_ms;  /* 0: FLOW_IDLE_MS */
	size_t user_size;  /* bytes of zeroed per-flow space for the caller (flow_user()) */
	struct flow_ops ops;
	void *arg; /* passed to every callback */
};

/* flow_table_new - an empty table, or NULL on allocation failure. */
struct flow_table *flow_table_new(const struct flow_params *p);

/* flow_table_free - end every flow (end callback, FLOW_END_FREED) and free; NULL is a no-op. */
void flow_table_free(struct flow_table *t);

/*
 * flow_table_input - feed one segment seen at now_ms. Creates the flow on
 * first sight (only for segments with port 25 at one end), runs the
 * callbacks for whatever became contiguous, and ends the flow on RST or a
 * second FIN (after the end callback). Returns the flow, or NULL when the
 * segment belongs to no flow (not port 25, the flow just ended, or no
 * memory). A paused flow is returned without reassembly (flow_pause()).
 * The pointer is valid until the next call into the table.
 */
struct flow *flow_table_input(struct flow_table *t, const struct nfq_pkt *p, uint64_t now_ms);

/* flow_table_expire - end flows idle for longer than idle_ms at now_ms; returns how many. */
size_t flow_table_expire(struct flow_table *t, uint64_t now_ms);

/* flow_table_count - the number of live flows. */
size_t flow_table_count(const struct flow_table *t);

/* flow_table_memory - bytes of text held by all flows (partial lines and out-of-order data). */
size_t flow_table_memory(const struct flow_table *t);

/* flow_user - the caller's zeroed per-flow area (params.user_size bytes). */
void *flow_user(struct flow *f);

/* flow_key_of - the flow's two ends. */
const struct flow_key *flow_key_of(const struct flow *f);

/* flow_id - a number unique to the flow for the table's lifetime (for logs). */
uint64_t flow_id(const struct flow *f);

/*
 * flow_ignore - stop reassembling f: held text is freed and later segments
 * only refresh its idle time, until it ends. Safe from inside callbacks.
 */
void flow_ignore(struct flow *f);

/* flow_ignored - true after flow_ignore(). */
bool flow_ignored(const struct flow *f);

/*
 * flow_pause - while f is paused, its segments are not reassembled and do
 * not end it by FIN (they only refresh its idle time; RST still ends it):
 * the caller drops them, and TCP sends them again once it resumes. From
 * inside a callback, the rest of the current segment is still delivered.
 */
void flow_pause(struct flow *f, bool paused);

/* flow_paused - true while paused. */
bool flow_paused(const struct flow *f);

#endif
