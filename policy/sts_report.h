/*
 * sts_report.h - per policy domain TLS results of the current UTC day, the
 * raw material of the daily TLS-RPT reports (RFC 8460 section 4) and of
 * "stsproxy ctl report".
 *
 * For every policy domain and policy type (section 4.4 "policy-type": a
 * recipient domain with an MTA-STS policy in mode testing or enforce,
 * "sts", or with DANE TLSA records, "tlsa", RFC 7672) the table keeps the
 * policy id and mode last seen (a TLSA policy has no id; its mode is
 * enforce), the number of successful and failed sessions (section 4.4:
 * "total-successful-session-count", "total-failure-session-count"), the
 * failures by result type (section 4.3) and, bounded, the failures by
 * result type, sending address and receiving MX (section 4.4
 * "failure-details": "sending-mta-ip", "receiving-mx-hostname",
 * "receiving-mx-helo", "receiving-ip"), and the policy last seen
 * ("policy-string", "mx-host"). Sessions to domains without any policy are
 * counted under policy type STS_PTYPE_NONE ("no-policy-found").
 *
 * Successes are counted, never logged: at one per delivered message an
 * event each would drown the log.
 *
 * Bounds: at most STS_REPORT_DOMAINS_MAX domains a day; later domains are
 * all counted under STS_REPORT_OTHER, and a warning is logged once a day.
 * Per domain, at most STS_REPORT_DETAILS_MAX distinct (result, MX, address)
 * rows; later failures still count in the totals and by result type, and
 * in detail_other.
 *
 * Days: a table covers one UTC day. sts_report_rollover() (and any count
 * whose time falls on a later day) starts a new table; the finished one is
 * kept as "yesterday" until the next rollover or sts_report_take(), then
 * dropped.
 *
 * Durability: the table holds the counts since the last
 * sts_report_take(); policy/report_store.h writes them to disk and
 * keeps a batch it could not write for the next attempt.
 *
 * Threading: every function is safe from any thread (one mutex; these run
 * once per recipient or message, not per packet). A count for a domain
 * already in the table allocates nothing.
 */
#ifndef STS_REPORT_H
#define STS_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

#define STS_REPORT_DOMAINS_MAX  65536
#define STS_REPORT_DETAILS_MAX  16
#define STS_REPORT_DOMAIN_LEN   254     /* 253 octets and the NUL */
#define STS_REPORT_ID_LEN       33      /* RFC 8461 section 3.1: 1-32 characters, and the NUL */
#define STS_REPORT_IP_LEN       46      /* INET6_ADDRSTRLEN */
#define STS_REPORT_OTHER        "other" /* the bucket for domains beyond the bound */
#define STS_REPORT_POLICY_MAX   64      /* policy strings (and mx patterns) kept a domain */
#define STS_REPORT_POLICY_BYTES 16384   /* their text in all; a string beyond is left out */

struct sts_report;
struct sts_report_batch;
struct sts_policy;
struct sts_dane_state;

/* One failure detail: a result type from one sending address at one receiving MX. */
struct sts_report_detail {
	enum sts_result result;
	char mx_host[STS_REPORT_DOMAIN_LEN]; /* "receiving-mx-hostname"; "" when unknown */
	char ip[STS_REPORT_IP_LEN];          /* "receiving-ip"; "" when unknown */
	char sending_ip[STS_REPORT_IP_LEN];  /* "sending-mta-ip"; "" when unknown */
	char mx_helo[STS_REPORT_DOMAIN_LEN]; /* "receiving-mx-helo"; "" when unknown */
	uint64_t count;
};

/* What sts_report_foreach() shows of one domain; valid only during the callback. */
struct sts_report_entry {
	const char *domain;        /* lower case; STS_REPORT_OTHER for the overflow bucket */
	enum sts_policy_type type; /* STS_PTYPE_STS or STS_PTYPE_TLSA */
	const char *policy_id;     /* last seen; "" when none was given */
	enum sts_mode mode;        /* last seen */
	int64_t day;               /* the UTC day: unix seconds at 00:00:00 */
	uint64_t success;
	uint64_t failure;
	uint64_t by_result[STS_RESULT_MAX]; /* failures; by_result[STS_RESULT_OK] stays 0 */
	size_t n_details;
	const struct sts_report_detail *details; /* in order of first appearance */
	uint64_t detail_other;                   /* failures beyond STS_REPORT_DETAILS_MAX rows */
	size_t n_policy;                         /* "policy-string": 0 when not (yet) known */
	const char *const *policy;
	size_t n_mx; /* "mx-host": the mx patterns of an sts policy */
	const char *const *mx;
};

/*
 * One session's result for one policy domain, for sts_report_count(). Only
 * domain is required; every other pointer may be NULL.
 */
struct sts_report_count {
	const char *domain;        /* the policy domain (the recipient domain) */
	enum sts_policy_type type; /* STS_PTYPE_NONE: "no-policy-found" */
	const char *policy_id;     /* sts: the policy id */
	enum sts_mode mode;
	enum sts_result result; /* STS_RESULT_OK: a success; else a failure of this type */
	const char *mx_host;    /* the receiving MX (failures only) */
	const char *mx_helo;    /* its banner/EHLO name (failures only) */
	const char *dest_ip;    /* its address (failures only) */
	const char *sending_ip; /* the local address of the upstream connection (failures) */
	/* The policy, rendered into policy strings when the domain has none in the
	 * table yet or its policy id changed: an sts policy or a DANE state. */
	const struct sts_policy *sts_policy;
	const struct sts_dane_state *dane;
};

/* sts_report_cb - one domain; return 0 to go on, anything else to stop the walk. */
typedef int sts_report_cb(void *arg, const struct sts_report_entry *e);

/* sts_report_new - an empty table for the UTC day of now (unix seconds); NULL without memory. */
struct sts_report *sts_report_new(int64_t now);

/* sts_report_free - free both days; NULL is a no-op. No other call may race with it. */
void sts_report_free(struct sts_report *r);

/*
 * sts_report_success - one successful session (a message acknowledged by
 * the upstream over TLS that met the policy) for domain under its policy
 * of type. policy_id may be
 * NULL. mx_host (may be NULL) is the MX that took it; it is not counted,
 * as the report details of section 4.4 describe failures only.
 * Returns 0; or -1 when domain is NULL, empty or longer than 253 octets
 * (nothing is counted). A new domain that finds the table full or no
 * memory is counted under STS_REPORT_OTHER, and that is still 0.
 */
int sts_report_success(struct sts_report *r, const char *domain, enum sts_policy_type type,
                       const char *policy_id, enum sts_mode mode, const char *mx_host, int64_t now);

/*
 * sts_report_failure - one failed session for domain with the TLS-RPT
 * result type result (not STS_RESULT_OK), at the receiving MX mx_host
 * and address dest_ip (either may be NULL or ""). Returns as
 * sts_report_success(); -1 also for a result out of range.
 */
int sts_report_failure(struct sts_report *r, const char *domain, enum sts_policy_type type,
                       const char *policy_id, enum sts_mode mode, enum sts_result result,
                       const char *mx_host, const char *dest_ip, int64_t now);

/*
 * sts_report_count - count c (a success when c->result is STS_RESULT_OK,
 * else a failure) at time now. Returns as sts_report_success(); -1 also
 * for a result out of range. The strings are copied.
 */
int sts_report_count(struct sts_report *r, const struct sts_report_count *c, int64_t now);

/*
 * sts_report_note_policy - remember c's policy (c->sts_policy or c->dane,
 * id, mode) for c->domain and c->type without counting anything: a passing
 * recipient's success is counted only when the message is taken, when the
 * policy is no longer at hand. Cheap when the table has it already.
 * Returns as sts_report_count().
 */
int sts_report_note_policy(struct sts_report *r, const struct sts_report_count *c, int64_t now);

/*
 * sts_report_foreach - call cb for every domain of the current day, in no
 * particular order, the STS_REPORT_OTHER bucket last if it was used. Runs
 * under the table's lock: cb must not call into r. Returns the number of
 * domains shown.
 */
size_t sts_report_foreach(struct sts_report *r, sts_report_cb *cb, void *arg);

/* sts_report_foreach_yesterday - the same for the finished day; 0 when there is none. */
size_t sts_report_foreach_yesterday(struct sts_report *r, sts_report_cb *cb, void *arg);

/*
 * sts_report_rollover - when now falls on a later UTC day than the current
 * table, start an empty one; the current table becomes "yesterday" (keeping
 * its own day, even after a longer gap) and the previous "yesterday" is
 * freed. Returns 1 when it rolled over, 0 when the day is unchanged (or now
 * is earlier: a clock stepped back never discards counts), -1 without
 * memory (the current table is kept and counting goes on).
 */
int sts_report_rollover(struct sts_report *r, int64_t now);

/*
 * sts_report_take - take every count and policy string out of r (both
 * days) into a batch, leaving r empty (the store keeps the last policy
 * strings of a domain; the next count renders them again). Short: swaps tables under the lock.
 * Returns NULL without memory (nothing taken) and an empty batch when there was nothing to take.
 */
struct sts_report_batch *sts_report_take(struct sts_report *r);

/* sts_report_batch_foreach - call cb for every entry of b (any day); returns their number. */
size_t sts_report_batch_foreach(const struct sts_report_batch *b, sts_report_cb *cb, void *arg);

/* sts_report_batch_empty - b holds no entry. */
int sts_report_batch_empty(const struct sts_report_batch *b);

/*
 * sts_report_batch_merge - add every count of from into into (by day,
 * domain and type; the policy strings of from win) and free from: a
 * batch that could not be written waits, merged with the next one.
 * Returns 0, or -1 without memory (then the entries that did not fit are
 * counted under STS_REPORT_OTHER of their day, as in the table).
 */
int sts_report_batch_merge(struct sts_report_batch *into, struct sts_report_batch *from);

/* sts_report_batch_free - free b; NULL is a no-op. */
void sts_report_batch_free(struct sts_report_batch *b);

/* sts_report_day - the UTC day (unix seconds at midnight) of the current table. */
int64_t sts_report_day(struct sts_report *r);

/* sts_report_day_of - the UTC day of t: t rounded down to a multiple of 86400. Pure. */
int64_t sts_report_day_of(int64_t t);

#endif
