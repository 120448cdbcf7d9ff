/*
 * tlsrpt_sched.c - the daily run time of TLS-RPT reports and the retry
 * state of one delivery (RFC 8460 section 5.3). Pure; see tlsrpt_sched.h.
 */
#include "policy/tlsrpt_sched.h"

int64_t
tlsrpt_sched_day_of(int64_t t)
{
	int64_t d = t / TLSRPT_DAY;

	if (t < 0 && t % TLSRPT_DAY != 0)
		d--; /* round toward minus infinity */
	return d * TLSRPT_DAY;
}

int64_t
tlsrpt_sched_next(int64_t now, int64_t done_day, int64_t delay, int64_t *day)
{
	int64_t yesterday = tlsrpt_sched_day_of(now) - TLSRPT_DAY;
	int64_t d = yesterday;

	if (delay < 0)
		delay = 0;
	if (delay >= TLSRPT_DAY)
		delay = TLSRPT_DAY - 1;
	/* Never a day already done, even when the clock went back past it. */
	if (done_day != TLSRPT_NO_DAY && done_day >= d)
		d = done_day + TLSRPT_DAY;
	*day = d;
	/* Section 4.1: a report covers a whole UTC day; it goes once that day is over. */
	return d + TLSRPT_DAY + delay;
}

int64_t
tlsrpt_sched_backoff(unsigned attempt, int64_t first)
{
	int64_t w = first < 1 ? 1 : first;

	for (unsigned i = 1; i < attempt && w < TLSRPT_RETRY_CAP; i++)
		w *= 2;
	return w > TLSRPT_RETRY_CAP ? TLSRPT_RETRY_CAP : w;
}

void
tlsrpt_attempt_init(struct tlsrpt_attempt *a, int64_t at)
{
	a->state = TLSRPT_S_PENDING;
	a->attempts = 0;
	a->first_at = 0;
	a->next_at = at;
}

bool
tlsrpt_attempt_due(const struct tlsrpt_attempt *a, int64_t now)
{
	return a->state == TLSRPT_S_PENDING && a->next_at <= now;
}

enum tlsrpt_state
tlsrpt_attempt_result(struct tlsrpt_attempt *a, enum tlsrpt_outcome o, int64_t now,
                      const struct tlsrpt_retry *r)
{
	int64_t next;

	if (a->state != TLSRPT_S_PENDING)
		return a->state;
	if (o == TLSRPT_OUT_TOO_BIG) {
		a->state = TLSRPT_S_SKIPPED;
		return a->state;
	}
	if (a->attempts == 0)
		a->first_at = now;
	a->attempts++;
	switch (o) {
	case TLSRPT_OUT_DELIVERED:
		a->state = TLSRPT_S_DELIVERED;
		break;
	case TLSRPT_OUT_TEMP:
		next = now + tlsrpt_sched_backoff(a->attempts, r->first);
		if (next > a->first_at + r->span) {
			a->state = TLSRPT_S_FAILED;
		} else {
			a->next_at = next;
		}
		break;
	default:
		a->state = TLSRPT_S_FAILED;
		break;
	}
	return a->state;
}

const char *
tlsrpt_state_name(enum tlsrpt_state s)
{
	static const char *const names[TLSRPT_S_MAX] = {"pending", "delivered", "failed",
	                                                "skipped"};

	return (unsigned)s < TLSRPT_S_MAX ? names[s] : "pending";
}

const char *
tlsrpt_outcome_name(enum tlsrpt_outcome o)
{
	static const char *const names[TLSRPT_OUT_MAX] = {"delivered", "temp-failure",
	                                                  "perm-failure", "too-big"};

	return (unsigned)o < TLSRPT_OUT_MAX ? names[o] : "perm-failure";
}
