/*
 * report_store.h - the durable TLS-RPT results (RFC 8460 section 4): the
 * daily per policy domain counts of this gateway and of any other whose
 * rows were added, the failure details, the policy strings, and the state
 * of each day's report delivery. SQLite, in report.db of the state
 * directory (beside the policy cache, in a file of its own: see
 * docs/DESIGN.md "TLS-RPT results").
 *
 * Writers: the workers count into memory (policy/sts_report.h); every
 * report.flush_interval, on reload and before exit the daemon calls
 * report_store_flush(), which takes the deltas out of the table and adds
 * them to the store in one transaction. The store holds totals, the table
 * the counts since the last flush: for exact numbers, flush, then read.
 *
 * Several gateways: every row carries the gateway id; readers SUM over
 * gateways, so the rows of several gateways in one file (or one shared
 * database later) make one report.
 *
 * Threading: one handle may be used from any thread; calls are serialised
 * on an internal mutex. Callbacks run under it: they must not call into the
 * store.
 *
 * Return convention: 0 (or a count) on success, -1 on error with a
 * message in err when err is not NULL. No call exits the process.
 */
#ifndef STS_REPORT_STORE_H
#define STS_REPORT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"
#include "policy/sts_report.h"

#define REPORT_STORE_FILE          "report.db"
#define REPORT_STORE_GATEWAY_LEN   65 /* a host name label or configured id, and the NUL */
#define REPORT_STORE_ERROR_LEN     256
#define REPORT_STORE_KEEP_DAYS_MIN 2   /* the report of a day is sent the day after */
#define REPORT_STORE_DETAILS_MAX   256 /* detail rows a day, domain, type and gateway */

struct report_store;

struct report_store_params {
	const char *state_dir;  /* the directory of report.db; created by the caller */
	const char *gateway_id; /* this gateway's rows; NULL or "": the host name */
	unsigned keep_days;     /* days kept, today included; below KEEP_DAYS_MIN: that */
};

/*
 * report_store_open - open (create, upgrade) state_dir/report.db. Returns
 * NULL and a message in err when the file cannot be opened, is not a
 * database, or has a schema newer than this program knows ("report store
 * <path>: ..."). The daemon then goes on counting in memory only and says
 * so; it never deletes or rewrites a file it cannot read.
 */
struct report_store *report_store_open(const struct report_store_params *p, char *err,
                                       size_t errlen);

/* report_store_close - close; NULL is a no-op. Flush first: counts not yet written are lost. */
void report_store_close(struct report_store *s);

/* report_store_gateway - the gateway id the rows of this handle carry; never NULL. */
const char *report_store_gateway(const struct report_store *s);

/*
 * report_store_flush - move every count of rep into the store, in one
 * transaction, and delete the days older than keep_days before now (unix
 * seconds). On failure (disk full, locked, I/O error) the store keeps the
 * counts and writes them with the next flush, and -1 is returned: no
 * count is lost nor counted twice. rep may be NULL (retention and pending
 * counts only). Returns the number of (day, domain, type) rows
 * written.
 */
int report_store_flush(struct report_store *s, struct sts_report *rep, int64_t now, char *err,
                       size_t errlen);

/* One failure detail of a day, summed over gateways (RFC 8460 section 4.4 "failure-details"). */
struct report_store_detail {
	enum sts_result result;
	const char *sending_ip;   /* "sending-mta-ip"; "" when unknown */
	const char *mx_host;      /* "receiving-mx-hostname"; "" when unknown */
	const char *mx_helo;      /* "receiving-mx-helo"; "" when unknown */
	const char *receiving_ip; /* "receiving-ip"; "" when unknown */
	uint64_t count;           /* "failed-session-count" */
};

/*
 * The results of one policy domain and policy type on one day, summed over
 * gateways; valid only during the callback.
 */
struct report_store_entry {
	int64_t day;               /* unix seconds at 00:00:00 UTC */
	const char *domain;        /* "policy-domain", lower case; STS_REPORT_OTHER possible */
	enum sts_policy_type type; /* "policy-type": sts, tlsa or no-policy-found */
	const char *policy_id;     /* the last seen, over all gateways; "" when none */
	enum sts_mode mode;        /* the last seen */
	uint64_t success;          /* "total-successful-session-count" */
	uint64_t failure;          /* "total-failure-session-count" */
	uint64_t by_result[STS_RESULT_MAX]; /* failures by result type */
	/* "policy-string": the last seen policy (sts: the policy file's lines; tlsa:
	 * the TLSA records in presentation form); none for no-policy-found. */
	size_t n_policy;
	const char *const *policy;
	size_t n_mx; /* "mx-host": the policy's mx patterns (sts only) */
	const char *const *mx;
	size_t n_details; /* ordered by result type name, then count (largest first) */
	const struct report_store_detail *details;
	uint64_t detail_other; /* failures beyond the detail rows kept (memory's bound between
	                          flushes, REPORT_STORE_DETAILS_MAX a day in the store) */
	unsigned n_gateways;   /* how many gateways' rows were summed */
};

/* report_store_cb - one entry; 0 to go on, anything else stops the walk. */
typedef int report_store_cb(void *arg, const struct report_store_entry *e);

/*
 * report_store_foreach_day - call cb for every (domain, type) with results
 * on the UTC day day (any time within the day is rounded down), ordered by
 * domain, then type: the entries of one report are adjacent. gateway: the
 * rows of that gateway only; NULL: summed over every gateway. Reads the
 * store only: flush first to include memory. Returns the number of entries
 * shown, or -1 on a database error.
 */
int report_store_foreach_day(struct report_store *s, int64_t day, const char *gateway,
                             report_store_cb *cb, void *arg, char *err, size_t errlen);

/* report_store_day_cb - one day with results and how many policy domains it has. */
typedef int report_store_day_cb(void *arg, int64_t day, unsigned n_domains);

/* report_store_days - the days with results, oldest first; count or -1. */
int report_store_days(struct report_store *s, report_store_day_cb *cb, void *arg, char *err,
                      size_t errlen);

/* --- one gateway's rows, shared between gateways ----------------------------- */

/*
 * The results of one gateway for one (day, policy domain, policy type), not
 * summed: what a gateway publishes of its own rows and what it takes in of
 * the others' (policy/tlsrpt_shared.h). Strings and arrays belong to the
 * caller (or to the store during a callback).
 */
struct report_store_row {
	int64_t day;        /* unix seconds at 00:00:00 UTC */
	const char *domain; /* lower case; STS_REPORT_OTHER possible */
	enum sts_policy_type type;
	const char *gateway;   /* whose counts */
	const char *policy_id; /* "" when none */
	enum sts_mode mode;
	uint64_t success;
	uint64_t failure;                   /* the sum of by_result */
	uint64_t by_result[STS_RESULT_MAX]; /* by_result[STS_RESULT_OK] is 0 */
	uint64_t detail_other;              /* failures not in a detail row */
	size_t n_policy;                    /* 0: no policy learnt */
	const char *const *policy;
	size_t n_mx;
	const char *const *mx;
	size_t n_details; /* at most REPORT_STORE_DETAILS_MAX */
	const struct report_store_detail *details;
	int64_t seen_at;   /* when counted last */
	int64_t policy_at; /* when the policy strings were learnt; 0: never */
	int64_t version;   /* this gateway's rows: the change count, for report_store_pushed() */
};

/* report_store_row_cb - one row, valid only during the call; 0 to go on. */
typedef int report_store_row_cb(void *arg, const struct report_store_row *row);

/*
 * report_store_changed - this gateway's rows changed since they were last
 * marked pushed, at most max of them, oldest day first. The callback runs
 * under the store's lock: copy what it needs, do no I/O. Returns the
 * number shown, or -1.
 */
int report_store_changed(struct report_store *s, size_t max, report_store_row_cb *cb, void *arg,
                         char *err, size_t errlen);

/*
 * report_store_pushed - row (day, domain, type) of this gateway is
 * published as it was at version: it is shown again by
 * report_store_changed() only once a flush changed it after that.
 * Returns 0 or -1.
 */
int report_store_pushed(struct report_store *s, int64_t day, const char *domain,
                        enum sts_policy_type type, int64_t version, char *err, size_t errlen);

/*
 * report_store_replace_others - in one transaction, delete every row of
 * day that another gateway counted and insert rows[0..n) in their place.
 * Rows of this gateway (and of another day) in rows are left out: this
 * gateway's counts come from its own flushes only. Returns the number of
 * rows inserted, or -1 (nothing changed).
 */
int report_store_replace_others(struct report_store *s, int64_t day,
                                const struct report_store_row *rows, size_t n, char *err,
                                size_t errlen);

/* --- report delivery state -------------------------------------------------- */

/* The delivery of the report of one policy domain for one day. */
enum report_state {
	REPORT_STATE_PENDING = 0, /* not sent yet; retry at next_try */
	REPORT_STATE_SENT,        /* delivered (to at least one rua): never again */
	REPORT_STATE_FAILED,      /* given up after the sender's attempts */
	REPORT_STATE_SKIPPED, /* nothing to send: no TLS-RPT record, or not reported by choice */
	REPORT_STATE_MAX
};

struct report_delivery {
	int64_t day;                             /* UTC day of the report */
	char domain[STS_REPORT_DOMAIN_LEN];      /* the policy domain */
	enum report_state state;                 /* PENDING when never recorded */
	unsigned attempts;                       /* attempts so far */
	int64_t next_try;                        /* unix seconds; 0: at once */
	char last_error[REPORT_STORE_ERROR_LEN]; /* "" when none */
	char report_id[REPORT_STORE_ERROR_LEN];  /* the Report-ID once chosen, "" before */
};

/* report_state_name - "pending", "sent", "failed", "skipped"; never NULL. */
const char *report_state_name(enum report_state state);

/*
 * report_store_delivery_get - the delivery state of (day, domain) into
 * *out. Returns 1 when recorded, 0 when not (then *out holds day, domain,
 * PENDING, 0 attempts, next_try 0), -1 on error.
 */
int report_store_delivery_get(struct report_store *s, int64_t day, const char *domain,
                              struct report_delivery *out, char *err, size_t errlen);

/*
 * report_store_delivery_put - record *d (insert or replace), durably
 * (committed before it returns): a sender that records SENT before it
 * forgets a report never sends it twice after a restart. A report already
 * recorded sent, failed or skipped is left as it is, and so is one that
 * another sender holds at now (report_store_delivery_claim()): then 1 is
 * returned and nothing written. sender: the claim this put ends (it is
 * dropped with the write); NULL for none. Returns 0, 1 or -1.
 */
int report_store_delivery_put(struct report_store *s, const struct report_delivery *d,
                              const char *sender, int64_t now, char *err, size_t errlen);

/*
 * Who sends a report. Every process that opens the file sends (the
 * daemon's reporter and "stsproxy report send" by hand): a claim makes
 * one of them send each (day, domain) at a time.
 */
enum report_claim {
	REPORT_CLAIM_OURS = 0, /* taken, or renewed: this sender goes on */
	REPORT_CLAIM_HELD,     /* another sender holds it (holder says which) */
	REPORT_CLAIM_SETTLED,  /* recorded sent, failed or skipped: nobody sends it */
};

/*
 * report_store_delivery_claim - claim (day, domain) for sender (a name
 * unique to one process of this store) at now, for hold_s seconds: taken
 * when nobody holds it or the holder's time is over, renewed when sender
 * holds it. It ends with report_store_delivery_put() by the same sender,
 * or at its time. Returns an enum report_claim, or -1 (the file is busy
 * or failing: try later).
 */
int report_store_delivery_claim(struct report_store *s, int64_t day, const char *domain,
                                const char *sender, int64_t now, unsigned hold_s, char *holder,
                                size_t holderlen, char *err, size_t errlen);

/* report_store_delivery_cb - one recorded delivery; 0 to go on. */
typedef int report_store_delivery_cb(void *arg, const struct report_delivery *d);

/*
 * report_store_deliveries_due - every recorded delivery in state PENDING
 * with next_try <= now, oldest day first. Returns the count shown or -1.
 */
int report_store_deliveries_due(struct report_store *s, int64_t now, report_store_delivery_cb *cb,
                                void *arg, char *err, size_t errlen);

#endif
