/*
 * tlsrpt_queue.h - the TLS-RPT reports waiting to go out: one job per
 * report (policy domain, UTC day), each with its rua destinations and the
 * retry state of each (policy/tlsrpt_sched.h), stepped by the reporter's
 * thread or by "stsproxy report send".
 *
 * The queue does no I/O itself. The caller's ops find a job's record and
 * build its payloads (prepare), deliver one payload to one URI (deliver),
 * and hear of every attempt (attempted: the log line and the metric) and
 * of every change of the job's overall state (settled: the durable
 * delivery record), so that the whole state machine is tested with a fake
 * transport.
 *
 * A job's overall state, as recorded: sent once any destination took the
 * report (never sent again, even after a restart; the other destinations
 * are still tried while this process runs), failed when every destination
 * failed, skipped when there is nothing to send (no record, too big),
 * pending otherwise.
 *
 * Not thread-safe: one thread steps a queue.
 */
#ifndef TLSRPT_QUEUE_H
#define TLSRPT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/sts_report.h"
#include "policy/tlsrpt_json.h"
#include "policy/tlsrpt_sched.h"

#define TLSRPT_QUEUE_URIS    8   /* destinations per job (the record parser's bound) */
#define TLSRPT_QUEUE_URI_LEN 513 /* a URI as published, and the NUL */
#define TLSRPT_QUEUE_MAX     100000

/* The overall state of one job, for the durable record. */
enum tlsrpt_job_state {
	TLSRPT_JOB_PENDING = 0,
	TLSRPT_JOB_SENT,
	TLSRPT_JOB_FAILED,
	TLSRPT_JOB_SKIPPED,
};

/* One destination of a job. */
struct tlsrpt_dest {
	char uri[TLSRPT_QUEUE_URI_LEN];
	char addr[TLSRPT_QUEUE_URI_LEN]; /* mailto: the decoded address; https: "" */
	int https;                       /* 1: POST body; 0: mail to addr */
	uint8_t *body;                   /* what deliver sends (owned, freed by the queue) */
	size_t len;
	struct tlsrpt_attempt a;
};

/* One report: a policy domain on a UTC day. */
struct tlsrpt_job {
	int64_t day;
	int64_t end; /* last second covered: day + 86399, or earlier for a day not over */
	char domain[STS_REPORT_DOMAIN_LEN];
	/* "", or the part of the report id and file name that makes this gateway's
	 * report its own when it is one of several partial reports of the domain */
	char unique[TLSRPT_UNIQUE_MAX + 1];
	struct tlsrpt_attempt prep; /* finding the record, building the payloads */
	size_t n_dest;
	struct tlsrpt_dest dest[TLSRPT_QUEUE_URIS];
	size_t gz_len; /* the gzip report's size, for the log */
	enum tlsrpt_job_state state;
	unsigned attempts; /* delivery attempts, all destinations */
	char last_error[TLSRPT_WHY_MAX];
	struct tlsrpt_job *next;
};

struct tlsrpt_queue_ops {
	/*
	 * prepare - find j's destinations and build their payloads into
	 * j->dest[] (n_dest, uri, addr, https, body/len: malloc'ed, the queue
	 * frees them) and j->gz_len. DELIVERED: ready; TEMP: try again later
	 * (a DNS failure); PERM: nothing to send (no record, no results);
	 * TOO_BIG: over the size limit. why says which.
	 */
	enum tlsrpt_outcome (*prepare)(void *arg, struct tlsrpt_job *j, char *why, size_t whylen);
	/* deliver - one attempt of d's payload; the outcome and why. */
	enum tlsrpt_outcome (*deliver)(void *arg, const struct tlsrpt_job *j,
	                               const struct tlsrpt_dest *d, char *why, size_t whylen);
	/* attempted - after each attempt (d NULL for prepare), with d's new state. */
	void (*attempted)(void *arg, const struct tlsrpt_job *j, const struct tlsrpt_dest *d,
	                  enum tlsrpt_outcome o, enum tlsrpt_state s, const char *why);
	/* settled - j's overall state changed (or its next try moved): record it. */
	void (*settled)(void *arg, const struct tlsrpt_job *j, int64_t next_try);
	/* stopping - true when the queue must return at once (a stop). May be NULL. */
	int (*stopping)(void *arg);
	void *arg;
};

struct tlsrpt_queue;

/* tlsrpt_queue_new - an empty queue; NULL without memory. ops is copied. */
struct tlsrpt_queue *tlsrpt_queue_new(const struct tlsrpt_queue_ops *ops,
                                      const struct tlsrpt_retry *retry);

/* tlsrpt_queue_free - free q and every job; NULL is a no-op. */
void tlsrpt_queue_free(struct tlsrpt_queue *q);

/*
 * tlsrpt_queue_add - a job for (domain, day) covering day..end, first due
 * at, resumed after attempts earlier attempts (0 for a new one). A job
 * already queued for the same pair is left alone (returns 0). Returns 1
 * when added, 0 when already there, -1 without memory or beyond
 * TLSRPT_QUEUE_MAX jobs.
 */
int tlsrpt_queue_add(struct tlsrpt_queue *q, const char *domain, int64_t day, int64_t end,
                     int64_t at, unsigned attempts);

/*
 * tlsrpt_queue_step - run every attempt due at now (the clock is read
 * through now_fn between attempts, as attempts take time) and drop the
 * jobs that are final. Returns when the next attempt is due (INT64_MAX:
 * the queue is empty), or as soon as ops->stopping says so.
 */
int64_t tlsrpt_queue_step(struct tlsrpt_queue *q, int64_t (*now_fn)(void));

/* tlsrpt_queue_len - jobs queued. */
size_t tlsrpt_queue_len(const struct tlsrpt_queue *q);

/* tlsrpt_job_state_name - "pending", "sent", "failed", "skipped"; never NULL. */
const char *tlsrpt_job_state_name(enum tlsrpt_job_state s);

#endif
