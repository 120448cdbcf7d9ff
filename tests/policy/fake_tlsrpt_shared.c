/*
 * fake_tlsrpt_shared.c - policy/tlsrpt_shared.c replaced at link time: the
 * lock of every report answers as scripted, pushes and merges succeed or
 * fail as scripted, and the calls are counted.
 *
 * Control functions (declared by the tests that link this file):
 *   fake_shared_reset()
 *   fake_shared_claim(answer, holder)   what every claim answers
 *   fake_shared_down(down)              push and merge fail, claims say DOWN
 *   fake_shared_count(what)             "push", "merge", "claim", "sent" calls
 *   fake_shared_sent_fails(n)           the next n marks fail (Redis gone then)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "policy/tlsrpt_shared.h"

struct tlsrpt_shared {
	int unused;
};

static enum tlsrpt_claim answer = TLSRPT_CLAIM_OURS;
static char answer_holder[REPORT_STORE_GATEWAY_LEN] = "gw1";
static bool is_down;
static unsigned n_push, n_merge, n_claim, n_sent, sent_fails;

void fake_shared_reset(void);
void fake_shared_claim(enum tlsrpt_claim a, const char *holder);
void fake_shared_down(bool down);
unsigned fake_shared_count(const char *what);
void fake_shared_sent_fails(unsigned n);

void
fake_shared_reset(void)
{
	answer = TLSRPT_CLAIM_OURS;
	sts_strlcpy(answer_holder, "gw1", sizeof(answer_holder));
	is_down = false;
	n_push = n_merge = n_claim = n_sent = sent_fails = 0;
}

void
fake_shared_sent_fails(unsigned n)
{
	sent_fails = n;
}

void
fake_shared_claim(enum tlsrpt_claim a, const char *holder)
{
	answer = a;
	sts_strlcpy(answer_holder, holder, sizeof(answer_holder));
}

void
fake_shared_down(bool down)
{
	is_down = down;
}

unsigned
fake_shared_count(const char *what)
{
	return strcmp(what, "push") == 0    ? n_push
	       : strcmp(what, "merge") == 0 ? n_merge
	       : strcmp(what, "claim") == 0 ? n_claim
	                                    : n_sent;
}

struct tlsrpt_shared *
tlsrpt_shared_new(const struct tlsrpt_shared_params *p)
{
	(void)p;
	return calloc(1, sizeof(struct tlsrpt_shared));
}

void
tlsrpt_shared_free(struct tlsrpt_shared *t)
{
	free(t);
}

int
tlsrpt_shared_push(struct tlsrpt_shared *t, char *err, size_t errlen)
{
	(void)t;
	n_push++;
	if (is_down)
		snprintf(err, errlen, "redis: connection refused");
	return is_down ? -1 : 0;
}

int
tlsrpt_shared_merge(struct tlsrpt_shared *t, int64_t day, char *err, size_t errlen)
{
	(void)t;
	(void)day;
	n_merge++;
	if (is_down)
		snprintf(err, errlen, "redis: connection refused");
	return is_down ? -1 : 0;
}

enum tlsrpt_claim
tlsrpt_shared_claim(struct tlsrpt_shared *t, int64_t day, const char *domain, unsigned ttl_ms,
                    char *holder, char *err, size_t errlen)
{
	(void)t;
	(void)day;
	(void)domain;
	(void)ttl_ms;
	n_claim++;
	sts_strlcpy(holder, answer_holder, REPORT_STORE_GATEWAY_LEN);
	if (is_down) {
		snprintf(err, errlen, "redis: connection refused");
		return TLSRPT_CLAIM_DOWN;
	}
	return answer;
}

int
tlsrpt_shared_sent(struct tlsrpt_shared *t, int64_t day, const char *domain, char *err,
                   size_t errlen)
{
	(void)t;
	(void)day;
	(void)domain;
	n_sent++;
	if (is_down || sent_fails > 0) {
		if (sent_fails > 0)
			sent_fails--;
		snprintf(err, errlen, "redis: connection refused");
		return -1;
	}
	return 0;
}
