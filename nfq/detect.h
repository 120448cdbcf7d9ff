/*
 * detect.h - STARTTLS downgrade detection on reassembled SMTP dialogues,
 * and the verdict for each packet.
 *
 * The detector owns the flow table (nfq/flow.h) and follows each dialogue:
 * commands in a FIFO (RFC 2920 pipelining: replies come back in order),
 * multi-line replies, the EHLO capability list. Detections, each one JSON
 * event ("source":"nfq") in the event log plus one key=value log line,
 * every one naming the client and the server:
 *
 *   starttls_stripped  an EHLO reply without STARTTLS from a server that
 *                      offered it before (here, or at another gateway:
 *                      detect_server_learned()), or (reported at RCPT) on
 *                      the way to a recipient domain with a testing/enforce
 *                      policy
 *   starttls_mangled   the keyword rewritten in the capability list
 *                      ("XXXXXXXA", a run of one character, or STARTTLS
 *                      with a few letters replaced)
 *   starttls_refused   a reply other than 220 to STARTTLS (RFC 3207 section 4)
 *   cleartext_rcpt     RCPT TO a domain with a testing or enforce policy
 *                      (RFC 8461 section 5) outside TLS; names the domain,
 *                      and the transaction's MAIL FROM seen in the clear
 *   policy_unknown     RCPT TO a domain whose policy lookup gave no answer
 *                      in time: reason "timeout", "tempfail" (the resolver
 *                      failed), "hold_limit" (hold_max verdicts already
 *                      wait, or one packet names more than HOLD_DOMAINS
 *                      unknown domains), "flow_ended" or "stopping"; names
 *                      the domain and what was done (hold_action)
 *
 * Verdicts: ACCEPT; RELEASE once the flow needs no more inspection (a 220
 * to STARTTLS followed by a TLS record 0x16 0x03, or the message data has
 * started) - the caller marks the connection so the rules stop queueing
 * it; DROP in block mode for the packet carrying a cleartext RCPT to an
 * enforce-policy domain, or the EHLO reply without STARTTLS of a server
 * that offered it before (whatever the recipient domain: nothing of the
 * envelope has left yet), and every later packet of that flow, with reset
 * set on the first so the caller sends RSTs both ways.
 *
 * HOLD (block mode): the packet carries a cleartext RCPT to a domain
 * whose policy is not known. Its lookup starts (params.lookup) and the
 * packet's verdict waits, up to hold_ms, for detect_answer(); then it is
 * judged as if the policy had been cached, and on_verdict gives the
 * packet's verdict (with the cookie passed to detect_packet()). Every
 * earlier packet of the flow has had its verdict; every later one, either
 * way, is DROP without reset while the verdict waits (TCP sends it again),
 * so nothing after the RCPT passes before the judgement. When no answer
 * comes in time, or hold_max verdicts already wait, hold_action decides.
 * In log mode nothing waits: the packet passes, and the answer, when it
 * comes, is reported as if the policy had been cached.
 *
 * Pure apart from the event and log lines and the server memory file; no
 * sockets, no clock (time comes with each call).
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
	DETECT_HOLD, /* the verdict comes later, through on_verdict */
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
	DETECT_POLICY_UNKNOWN,
};

/* What a detection saw; valid only during the event callback. */
struct detect_event {
	enum detect_kind kind;
	uint64_t flow;
	const char *client; /* "addr port" of each end */
	const char *server;
	const char *domain;    /* recipient domain, or NULL */
	enum sts_mode mode;    /* its policy's mode (STS_MODE_NONE without one, or unknown) */
	const char *reason;    /* e.g. "offered_before", "policy", "timeout" */
	const char *detail;    /* the offending line or keyword, or NULL */
	bool blocked;          /* the flow is being reset */
	const char *action;    /* "block", "pass" (a held packet let go unjudged) or "log" */
	const char *mail_from; /* the reverse-path of the cleartext MAIL FROM, or NULL */
	int64_t held_ms;       /* how long the packet's verdict waited; -1: it did not */
};

/*
 * detect_policy_cb - the mode of the cached policy of domain (lower case,
 * A-labels): STS_MODE_* as an int, or -1 when the cache has none (then
 * lookup runs). Expired policies count as none.
 */
typedef int detect_policy_cb(void *arg, const char *domain);

/*
 * detect_lookup_cb - start an asynchronous policy lookup of domain: 0 when
 * started (its end is told through detect_answer(), never from inside this
 * call), -1 when none can start (nothing waits for it then).
 */
typedef int detect_lookup_cb(void *arg, const char *domain);

/*
 * detect_verdict_cb - the verdict of a packet that detect_packet() held:
 * cookie as given there, p its headers (payload NULL; for the resets).
 * Runs from detect_packet(), detect_answer(), detect_expire_holds() or
 * detect_free(); must not call into the detector.
 */
typedef void detect_verdict_cb(void *arg, uint64_t cookie, const struct nfq_pkt *p,
                               struct detect_result r);

/* detect_event_cb - a detection happened (after it was logged). */
typedef void detect_event_cb(void *arg, const struct detect_event *ev);

struct detect_params {
	enum conf_nfq_action action;
	const char *state_dir;         /* server memory directory; NULL: memory only */
	detect_policy_cb *policy;      /* NULL: no policy knowledge */
	detect_lookup_cb *lookup;      /* NULL: none */
	detect_event_cb *on_event;     /* NULL: none (tests observe detections here) */
	detect_verdict_cb *on_verdict; /* required for holds (block mode, lookup, hold_max) */
	void *arg;
	size_t max_flows;   /* 0: FLOW_MAX_DEFAULT */
	size_t max_memory;  /* 0: FLOW_MEM_DEFAULT */
	size_t max_servers; /* 0: SRVMEM_MAX_DEFAULT */
	uint64_t idle_ms;   /* 0: FLOW_IDLE_MS */
	/* Verdicts (block mode) or judgements (log mode) waiting for a lookup
	 * at once; 0: nothing waits, an unknown domain is only looked up. */
	size_t hold_max;
	uint64_t hold_ms;                      /* how long one waits; 0: DETECT_HOLD_MS */
	enum conf_nfq_hold_action hold_action; /* a held packet without an answer in time */
	/* A server not remembered before was seen offering STARTTLS (for the
	 * other gateways); NULL: none. */
	void (*on_server)(void *arg, int family, const uint8_t *addr, int64_t seen);
};

#define DETECT_HOLD_MS 5000

/* Each packet gets one verdict: packets = accepts + drops + releases + held now. */
struct detect_stats {
	uint64_t packets;
	uint64_t events;
	uint64_t accepts;
	uint64_t drops;
	uint64_t releases;
	uint64_t holds;          /* packets whose verdict waited for a lookup */
	uint64_t hold_timeouts;  /* waits that ended without an answer in time */
	uint64_t hold_overflows; /* unknown domains not waited for: hold_max reached */
};

/* detect_new - a detector; NULL with one line in err (no memory, unreadable server memory). */
struct detect *detect_new(const struct detect_params *p, char *err, size_t errlen);

/*
 * detect_free - save the server memory, end every flow and free; held
 * packets get hold_action's verdict through on_verdict first (reason
 * "stopping"). NULL is a no-op.
 */
void detect_free(struct detect *d);

/*
 * detect_packet - inspect one segment seen at now_ms (monotonic, never
 * going back) and return its verdict. Segments of no port-25 flow are
 * accepted. cookie is the caller's handle of the packet, given back by
 * on_verdict when the verdict is HOLD.
 */
struct detect_result detect_packet(struct detect *d, const struct nfq_pkt *p, uint64_t now_ms,
                                   uint64_t cookie);

/*
 * detect_answer - a lookup started through params.lookup ended at now_ms:
 * mode is domain's STS_MODE_* (STS_MODE_NONE without a policy), or -1
 * when there is no answer now (temporary failure). Everything waiting for
 * domain is judged; held packets get their verdicts from inside this call.
 */
void detect_answer(struct detect *d, const char *domain, int mode, uint64_t now_ms);

/*
 * detect_server_learned - another gateway saw this server (AF_INET: 4
 * octets, AF_INET6: 16) offering STARTTLS at seen: remember it, so that
 * its reply without STARTTLS is a downgrade here too.
 */
void detect_server_learned(struct detect *d, int family, const uint8_t *addr, int64_t seen);

/* detect_expire_holds - waits past their deadline at now_ms end (hold_action); how many. */
size_t detect_expire_holds(struct detect *d, uint64_t now_ms);

/* detect_next_deadline - when the next wait ends (ms), or 0 when nothing waits. */
uint64_t detect_next_deadline(const struct detect *d);

/* detect_holds - verdicts or judgements waiting now. */
size_t detect_holds(const struct detect *d);

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
