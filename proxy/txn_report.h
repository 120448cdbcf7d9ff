/*
 * txn_report.h - the TLS-RPT accounting of one SMTP transaction (RFC 8460
 * section 4.4): which policy domains of the transaction passed their
 * policy, which of them the upstream took a recipient of, and the success
 * counted for each once the upstream acknowledged the message.
 *
 * A failure is counted when it is decided (txn_report_failure); a success
 * only when the message was acknowledged, so a transaction that ends
 * without a message counts nothing. Losing a count (no memory) never
 * loses a message.
 */
#ifndef STS_TXN_REPORT_H
#define STS_TXN_REPORT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/types.h"
#include "policy/sts_report.h"
#include "proxy/smtp_cmd.h"

/* A policy domain (MTA-STS mode testing or enforce, or DANE) that passed for a recipient. */
struct txn_dom {
	char domain[SMTP_DOMAIN_MAX + 1];
	enum sts_policy_type type;
	char id[STS_REPORT_ID_LEN];
	enum sts_mode mode;
	bool accepted; /* the upstream took at least one of its recipients */
};

/* The policy domains of one transaction; zeroed is empty. Owns doms. */
struct txn_report {
	struct txn_dom *doms;
	unsigned n, cap;
};

/*
 * txn_report_add - remember domain (policy type, id, mode) as passing in t, once.
 * Returns its handle for txn_report_accepted() (1 + index), or 0 when not
 * counted (rep is NULL, no domain, no memory).
 */
unsigned txn_report_add(struct txn_report *t, const struct sts_report *rep, const char *domain,
                        enum sts_policy_type type, const char *id, enum sts_mode mode);

/* txn_report_accepted - the upstream took a recipient of handle h (0 is ignored). */
void txn_report_accepted(struct txn_report *t, unsigned h);

/* txn_report_move - hand t's domains to *to (emptied first); t is empty after. */
void txn_report_move(struct txn_report *t, struct txn_report *to);

/*
 * txn_report_delivered - the upstream acknowledged the message of t: one
 * success per accepted domain, at the MX named mx.
 */
void txn_report_delivered(const struct txn_report *t, struct sts_report *rep, const char *mx);

/* txn_report_clear - forget every domain and free. */
void txn_report_clear(struct txn_report *t);

/* One failed session of a policy domain, as the relay decided it. */
struct txn_failure {
	const char *domain;
	enum sts_policy_type type;
	const char *policy_id;
	enum sts_mode mode;
	enum sts_result result;
	const char *matched;        /* the candidate the certificate was valid for; NULL, "" */
	const char *mx_name;        /* the name in the receiving MX's banner */
	const struct sockaddr *dst; /* the receiving MX's address */
	const struct sockaddr *src; /* the upstream connection's local address; NULL: unknown */
	const struct sts_policy *sts_policy; /* for the policy strings; may be NULL */
	const struct sts_dane_state *dane;   /* idem, for tlsa */
};

/*
 * txn_report_failure - count f (RFC 8460 section 4.4 "failure-details"):
 * the receiving MX is matched when set, else mx_name; its HELO is mx_name.
 * No-op when rep is NULL or f->result is OK.
 */
void txn_report_failure(struct sts_report *rep, const struct txn_failure *f);

/*
 * txn_report_policy - note the policy of a passing domain (its policy
 * strings, RFC 8460 section 4.4), whose success is counted later, when the
 * message is taken. No-op when rep is NULL.
 */
void txn_report_policy(struct sts_report *rep, const char *domain, enum sts_policy_type type,
                       const char *policy_id, enum sts_mode mode, const struct sts_policy *sts,
                       const struct sts_dane_state *dane);

#endif
