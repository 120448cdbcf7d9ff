/*
 * detect.h - STARTTLS downgrade detection on reassembled SMTP dialogues,
 * and the verdict for each packet.
 *
 * The detector owns the flow table (nfq/flow.h) and follows each dialogue:
 * commands in a FIFO (RFC 2920 pipelining: replies come back in order),
 * multi-line replies, the EHLO capability list. Detections, each one JSON
 * event ("source":"nfq") in the event log plus one key=value log line:
 *
 *   starttls_stripped  an EHLO reply without STARTTLS from a server that
 *                      offered it before, or (reported at RCPT) on the way
 *                      to a recipient domain with a testing/enforce policy
 *   starttls_mangled   the keyword rewritten in the capability list
 *                      ("XXXXXXXA", a run of one character, or STARTTLS
 *                      with a few letters replaced)
 *   starttls_refused   a reply other than 220 to STARTTLS (RFC 3207 section 4)
 *   cleartext_rcpt     RCPT TO a domain with a testing or enforce policy
 *                      (RFC 8461 section 5) outside TLS
 *
 * Verdicts: ACCEPT; RELEASE once the flow needs no more inspection (a 220
 * to STARTTLS followed by a TLS record 0x16 0x03, or the message data has
 * started) - the caller marks the connection so the rules stop queueing
 * it; DROP in block mode for the packet carrying a cleartext RCPT to an
 * enforce-policy domain and every later packet of that flow, with reset
 * set on the first so the caller sends RSTs both ways.
 *
 * Pure apart from the event and log lines and the server memory file; no
 * sockets, no clock (time comes with each packet).
 */
#ifndef NFQ_DETECT_H
#define NFQ_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/types.h"
#include "nfq/flow.h"
#include "nfq/packet.h"

struct detect;

enum detect_verdict {
	DETECT_ACCEPT = 0,
	DETECT_RELEASE,
	DETECT_DROP,
};

struct detect_result {
	enum detect_verdict verdict;
	bool reset; /* DROP only: the first drop of the flow, send RSTs both ways */
};

enum detect_kind {
	DETECT_STRIPPED = 0,
	DETECT_MANGLED,
	DETECT_REFUSED,
	DETECT_CLEARTEXT_RCPT,
};

/* What a detection saw; valid only during the event callback. */
struct detect_event {
	enum detect_kind kind;
	uint64_t flow;
	const char *client; /* "addr port" of each end */
	const char *server;
	const char *domain; /* recipient domain, or NULL */
	enum sts_mode mode; /* its policy's mode (STS_MODE_NONE without one) */
	const char *reason; /* e.g. "offered_before", "policy" */
	const char *detail; /* the offending line or keyword, or NULL */
	bool blocked;       /* the flow is being reset */
};

/*
 * detect_policy_cb - the mode of the cached policy of domain (lower case,
 * A-labels): STS_MODE_* as an int, or -1 when the cache has none (then
 * lookup runs, for next time). Expired policies count as none.
 */
typedef int detect_policy_cb(void *arg, const char *domain);

/* detect_lookup_cb - start an asynchronous policy lookup of domain; nothing is awaited. */
typedef void detect_lookup_cb(void *arg, const char *domain);

/* detect_event_cb - a detection happened (after it was logged). */
typedef void detect_event_cb(void *arg, const struct detect_event *ev);

struct detect_params {
	enum conf_nfq_action action;
	const char *state_dir;     /* server memory directory; NULL: memory only */
	detect_policy_cb *policy;  /* NULL: no policy knowledge */
	detect_lookup_cb *lookup;  /* NULL: none */
	detect_event_cb *on_event; /* NULL: none (tests observe detections here) */
	void *arg;
	size_t max_flows;   /* 0: FLOW_MAX_DEFAULT */
	size_t max_memory;  /* 0: FLOW_MEM_DEFAULT */
	size_t max_servers; /* 0: SRVMEM_MAX_DEFAULT */
	uint64_t idle_ms;   /* 0: FLOW_IDLE_MS */
};

struct detect_stats {
	uint64_t packets;
	uint64_t events;
	uint64_t drops;
	uint64_t releases;
};

/* detect_new - a detector; NULL with one line in err (no memory, unreadable server memory). */
struct detect *detect_new(const struct detect_params *p, char *err, size_t errlen);

/* detect_free - save the server memory, end every flow and free; NULL is a no-op. */
void detect_free(struct detect *d);

/*
 * detect_packet - inspect one segment seen at now_ms (monotonic) and
 * return its verdict. Segments of no port-25 flow are accepted.
 */
struct detect_result detect_packet(struct detect *d, const struct nfq_pkt *p, uint64_t now_ms);

/* detect_expire - end idle flows; returns how many. */
size_t detect_expire(struct detect *d, uint64_t now_ms);

/* detect_save - persist the server memory if it changed; 0 or -1 (logged). */
int detect_save(struct detect *d);

/* detect_get_stats - counters since detect_new(). */
void detect_get_stats(const struct detect *d, struct detect_stats *out);

/* detect_flows - live flows; detect_memory - held reassembly bytes. */
size_t detect_flows(const struct detect *d);
size_t detect_memory(const struct detect *d);

/* detect_kind_name - "starttls_stripped", ...; never NULL. */
const char *detect_kind_name(enum detect_kind kind);

/*
 * detect_starttls_mangled - true when an EHLO keyword (len bytes, not
 * STARTTLS itself) looks like STARTTLS rewritten by a middlebox: 8
 * characters with a run of 7 or more of one character, or differing from
 * "STARTTLS" (case ignored) in 1 to 4 positions. Pure; exported for tests.
 */
bool detect_starttls_mangled(const char *kw, size_t len);

#endif
