/*
 * relay_events.h - the records a proxied session leaves for operators and
 * for TLS-RPT reporting: one JSON line in the event log (core/evlog.h) and
 * one key=value line in the main log for every policy failure, deferred
 * recipient and suspected downgrade or injection.
 *
 * Successful deliveries are counted, not recorded here. Everything that
 * came from the network (certificate names, capability lines, replies) is
 * passed through evlog_str() into the JSON line and made printable in the
 * human line, so a peer cannot forge fields or log lines.
 */
#ifndef STS_RELAY_EVENTS_H
#define STS_RELAY_EVENTS_H

#include <stddef.h>

#include "core/types.h"
#include "policy/sts_engine.h"
#include "tls/tls_verify.h"

/* What happened, the "event" field. */
enum relay_event_kind {
	RELAY_EV_POLICY_FAILURE = 0, /* a recipient's policy is not met */
	RELAY_EV_POLICY_DEFER,       /* no policy answer now: 451 4.4.3 */
	RELAY_EV_DOWNGRADE,          /* STARTTLS missing, mangled or refused by the MX */
	RELAY_EV_INJECTION,          /* bytes pipelined across a STARTTLS boundary */
	RELAY_EV_MAX
};

/*
 * One event. Every pointer may be NULL (the field is then left out) except
 * session. Nothing is kept after relay_event_emit() returns.
 */
struct relay_event {
	enum relay_event_kind kind;
	const char *session; /* "w0-000042" */
	const char *client;  /* client IP address */
	const char *dest;    /* original destination "ip:port" */
	const char *domain;  /* recipient domain (A-labels); NULL for session-level events */
	const struct sts_answer *answer;     /* mode, id, source, candidates */
	const struct sts_decision *decision; /* result and reason of the check */
	enum sts_result result;              /* used when decision is NULL */
	const struct tls_facts *facts;       /* upstream TLS session; NULL: plaintext */
	const char *seen;                    /* what was seen on the wire (attacker-controlled) */
	size_t seen_len;
	const char *action; /* "blocked", "reported", "deferred", "aborted" */
	const char *reason; /* used when decision is NULL */
};

/* relay_event_kind_name - "policy-failure", "policy-defer", "downgrade", "injection". */
const char *relay_event_kind_name(enum relay_event_kind kind);

/*
 * relay_event_emit - write ev to the event log (when one is open) and as
 * one notice line to the main log. Returns 0, or -1 when the JSON line
 * could not be built or written (the log line is written regardless).
 */
int relay_event_emit(const struct relay_event *ev);

#endif
