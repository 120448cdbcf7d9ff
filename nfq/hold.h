/*
 * hold.h - what waits for a policy lookup in the packet inspector: per
 * flow at most one record naming the recipient domains whose policy is
 * not known yet and, in block mode, the one packet whose verdict waits
 * with them (the packet that carried the RCPT lines).
 *
 * Bounded: at most max records at once (hold_new() refuses beyond) and
 * HOLD_DOMAINS domains per record. Records are listed in the order they
 * were made; with one timeout for all and a clock that never goes back,
 * that is the order of their deadlines, so hold_first() is always the
 * next to expire. Pure: no I/O, no clock; not thread-safe.
 */
#ifndef NFQ_HOLD_H
#define NFQ_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nfq/flow.h"
#include "nfq/packet.h"

#define HOLD_DOMAINS    8   /* recipient domains one record waits for */
#define HOLD_DOMAIN_MAX 254 /* a domain name and its NUL */
#define HOLD_LINE_MAX   80  /* the printable RCPT line kept for the event */

struct hold_table;

/* One recipient domain a record waits for. */
struct hold_domain {
	char name[HOLD_DOMAIN_MAX]; /* lower case, A-labels */
	char line[HOLD_LINE_MAX];   /* its RCPT line, printable */
	bool no_starttls;           /* the EHLO reply before it lacked STARTTLS */
	bool answered;
};

/*
 * A record. hold_new() zeroes it and sets since and deadline; the rest is
 * the caller's, apart from the domains, which hold_add() fills.
 */
struct hold {
	struct flow *flow; /* NULL once the flow ended (a record without a packet may outlive it) */
	struct flow_key key;
	uint64_t flow_id;
	bool has_packet;               /* a packet's verdict waits (block mode) */
	uint64_t cookie;               /* the caller's handle of that packet */
	uint64_t pkt_no;               /* the detector's number of that packet */
	struct nfq_pkt pkt;            /* its headers, for the resets (payload NULL) */
	bool release;                  /* once let go, the flow needs no more inspection */
	char mail_from[HOLD_LINE_MAX]; /* the flow's cleartext MAIL FROM as sent (cut), or "" */
	uint64_t since;                /* ms, when the record was made */
	uint64_t deadline;             /* ms */
	size_t n_domains;
	size_t n_waiting; /* domains not answered yet */
	struct hold_domain dom[HOLD_DOMAINS];
};

/* hold_table_new - an empty table of at most max records (0: none), or NULL without memory. */
struct hold_table *hold_table_new(size_t max);

/* hold_table_free - free every record and the table (nothing is called); NULL is a no-op. */
void hold_table_free(struct hold_table *t);

/*
 * hold_new - a zeroed record made at since, expiring at deadline, last
 * in the list. NULL when max records exist or without memory.
 */
struct hold *hold_new(struct hold_table *t, uint64_t since, uint64_t deadline);

/* hold_free - unlink and free h; NULL is a no-op. */
void hold_free(struct hold_table *t, struct hold *h);

/*
 * hold_add - make h wait for domain (its RCPT line printable in line):
 * the domain's index, the existing index when h already names it, or -1
 * when h names HOLD_DOMAINS domains or domain is too long.
 */
int hold_add(struct hold *h, const char *domain, const char *line, bool no_starttls);

/* hold_find - the index of domain among h's domains not answered yet, or -1. */
int hold_find(const struct hold *h, const char *domain);

/* hold_first - the oldest record (the next deadline), or NULL. */
struct hold *hold_first(const struct hold_table *t);

/* hold_next - the record made after h, or NULL. */
struct hold *hold_next(const struct hold *h);

/* hold_count - records now. */
size_t hold_count(const struct hold_table *t);

#endif
