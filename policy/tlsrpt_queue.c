/*
 * tlsrpt_queue.c - reports waiting to go out and the retries of each
 * destination (RFC 8460 section 5.3). See tlsrpt_queue.h.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "policy/tlsrpt_queue.h"

struct tlsrpt_queue {
	struct tlsrpt_queue_ops ops;
	struct tlsrpt_retry retry;
	struct tlsrpt_job *head;
	size_t n;
};

struct tlsrpt_queue *
tlsrpt_queue_new(const struct tlsrpt_queue_ops *ops, const struct tlsrpt_retry *retry)
{
	struct tlsrpt_queue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->ops = *ops;
	q->retry = *retry;
	return q;
}

static void
job_free(struct tlsrpt_job *j)
{
	for (size_t i = 0; i < j->n_dest; i++)
		free(j->dest[i].body);
	free(j);
}

void
tlsrpt_queue_free(struct tlsrpt_queue *q)
{
	struct tlsrpt_job *j, *next;

	if (q == NULL)
		return;
	for (j = q->head; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	free(q);
}

int
tlsrpt_queue_add(struct tlsrpt_queue *q, const char *domain, int64_t day, int64_t end, int64_t at,
                 unsigned attempts)
{
	struct tlsrpt_job *j, **tail = &q->head;

	for (j = q->head; j != NULL; j = j->next) {
		if (j->day == day && strcmp(j->domain, domain) == 0)
			return 0;
		tail = &j->next;
	}
	if (q->n >= TLSRPT_QUEUE_MAX || strlen(domain) >= sizeof(j->domain) ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->day = day;
	j->end = end;
	sts_strlcpy(j->domain, domain, sizeof(j->domain));
	tlsrpt_attempt_init(&j->prep, at);
	j->attempts = attempts;
	j->state = TLSRPT_JOB_PENDING;
	*tail = j; /* in the order added: oldest day first when the caller adds so */
	q->n++;
	return 1;
}

size_t
tlsrpt_queue_len(const struct tlsrpt_queue *q)
{
	return q->n;
}

/* settle - a new overall state (or next try) for j: tell the caller to record it. */
static void
settle(struct tlsrpt_queue *q, struct tlsrpt_job *j, enum tlsrpt_job_state s, int64_t next_try)
{
	j->state = s;
	if (q->ops.settled != NULL)
		q->ops.settled(q->ops.arg, j, next_try);
}

/*
 * prepare - find the record and build the payloads. Returns 1 when j's
 * destinations are ready, 0 when it waits (a temporary failure) or is
 * done (state final).
 */
static int
prepare(struct tlsrpt_queue *q, struct tlsrpt_job *j, int64_t now)
{
	char why[TLSRPT_WHY_MAX] = "";
	enum tlsrpt_outcome o;
	enum tlsrpt_state st;

	o = q->ops.prepare(q->ops.arg, j, why, sizeof(why));
	st = tlsrpt_attempt_result(&j->prep, o, now, &q->retry);
	if (o != TLSRPT_OUT_DELIVERED && o != TLSRPT_OUT_TOO_BIG)
		sts_strlcpy(j->last_error, why, sizeof(j->last_error));
	switch (o) {
	case TLSRPT_OUT_DELIVERED:
		for (size_t i = 0; i < j->n_dest; i++)
			tlsrpt_attempt_init(&j->dest[i].a, now);
		return 1;
	case TLSRPT_OUT_TOO_BIG:
		/* Not sent, one line per destination (RFC 8460 has no size limit of its own). */
		sts_strlcpy(j->last_error, why, sizeof(j->last_error));
		for (size_t i = 0; i < j->n_dest; i++) {
			tlsrpt_attempt_init(&j->dest[i].a, now);
			st = tlsrpt_attempt_result(&j->dest[i].a, o, now, &q->retry);
			if (q->ops.attempted != NULL)
				q->ops.attempted(q->ops.arg, j, &j->dest[i], o, st, why);
		}
		if (j->n_dest == 0 && q->ops.attempted != NULL)
			q->ops.attempted(q->ops.arg, j, NULL, o, TLSRPT_S_SKIPPED, why);
		settle(q, j, TLSRPT_JOB_SKIPPED, 0);
		return 0;
	case TLSRPT_OUT_PERM:
		if (q->ops.attempted != NULL)
			q->ops.attempted(q->ops.arg, j, NULL, o, st, why);
		settle(q, j, TLSRPT_JOB_SKIPPED, 0);
		return 0;
	default:
		if (q->ops.attempted != NULL)
			q->ops.attempted(q->ops.arg, j, NULL, o, st, why);
		if (st == TLSRPT_S_PENDING)
			settle(q, j, TLSRPT_JOB_PENDING, j->prep.next_at);
		else
			settle(q, j, TLSRPT_JOB_FAILED, 0);
		return 0;
	}
}

/*
 * step_job - the attempts of j due at now. Returns the time of j's next
 * attempt, or 0 when j is final (to be dropped).
 */
static int64_t
step_job(struct tlsrpt_queue *q, struct tlsrpt_job *j, int64_t (*now_fn)(void))
{
	int64_t now = now_fn(), next = INT64_MAX;
	bool pending = false, tried = false, delivered = j->state == TLSRPT_JOB_SENT;

	if (j->state == TLSRPT_JOB_FAILED || j->state == TLSRPT_JOB_SKIPPED)
		return 0;
	if (j->prep.state == TLSRPT_S_PENDING) {
		if (!tlsrpt_attempt_due(&j->prep, now))
			return j->prep.next_at;
		if (prepare(q, j, now) == 0)
			return j->prep.state == TLSRPT_S_PENDING ? j->prep.next_at : 0;
	}
	for (size_t i = 0; i < j->n_dest; i++) {
		struct tlsrpt_dest *d = &j->dest[i];
		char why[TLSRPT_WHY_MAX] = "";
		enum tlsrpt_outcome o;
		enum tlsrpt_state st;

		if (q->ops.stopping != NULL && q->ops.stopping(q->ops.arg))
			return now;
		now = now_fn();
		if (tlsrpt_attempt_due(&d->a, now)) {
			tried = true;
			o = q->ops.deliver(q->ops.arg, j, d, why, sizeof(why));
			now = now_fn();
			st = tlsrpt_attempt_result(&d->a, o, now, &q->retry);
			j->attempts++;
			if (o != TLSRPT_OUT_DELIVERED)
				sts_strlcpy(j->last_error, why, sizeof(j->last_error));
			if (q->ops.attempted != NULL)
				q->ops.attempted(q->ops.arg, j, d, o, st, why);
			/* Recorded at once: a restart must never send it again. */
			if (st == TLSRPT_S_DELIVERED && !delivered) {
				delivered = true;
				settle(q, j, TLSRPT_JOB_SENT, 0);
			}
		}
		if (d->a.state == TLSRPT_S_PENDING) {
			pending = true;
			if (d->a.next_at < next)
				next = d->a.next_at;
		}
	}
	if (pending) {
		if (!delivered && tried)
			settle(q, j, TLSRPT_JOB_PENDING, next);
		return next;
	}
	if (!delivered)
		settle(q, j, TLSRPT_JOB_FAILED, 0);
	return 0;
}

int64_t
tlsrpt_queue_step(struct tlsrpt_queue *q, int64_t (*now_fn)(void))
{
	struct tlsrpt_job **pp = &q->head, *j;
	int64_t next = INT64_MAX;

	while ((j = *pp) != NULL) {
		int64_t t;

		if (q->ops.stopping != NULL && q->ops.stopping(q->ops.arg))
			return now_fn();
		t = step_job(q, j, now_fn);
		if (t == 0) {
			*pp = j->next;
			job_free(j);
			q->n--;
			continue;
		}
		if (t < next)
			next = t;
		pp = &j->next;
	}
	return next;
}

const char *
tlsrpt_job_state_name(enum tlsrpt_job_state s)
{
	static const char *const names[] = {"pending", "sent", "failed", "skipped"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "pending";
}
