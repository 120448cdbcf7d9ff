/*
 * fake_report_store.c - policy/report_store.c replaced at link time: the
 * results of a day are the entries a test scripted, the delivery records a
 * small table in memory.
 *
 * Control functions (declared by the tests that link this file):
 *   fake_store_reset()
 *   fake_store_add(entry)      a copy of the struct (its pointers are kept)
 *   fake_store_puts()          how many delivery records were written
 *   fake_store_get(day, domain, out)   1 when recorded
 *   fake_store_claims(answers, n)      what the next n claims answer, in order
 *                                      (then REPORT_CLAIM_OURS); holder "other pid 1"
 *   fake_store_claimed()               how many claims were asked
 *   fake_store_last_gateway()          the gateway the last walk was narrowed to;
 *                                      "(all)" for none
 */
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "policy/report_store.h"

#define FAKE_MAX 32

static struct report_store_entry entries[FAKE_MAX];
static size_t n_entries;
static struct report_delivery records[FAKE_MAX];
static size_t n_records;
static unsigned n_puts;
static int claims[FAKE_MAX];
static size_t n_claims, next_claim;
static unsigned n_claimed;
static char last_gateway[REPORT_STORE_GATEWAY_LEN] = "(all)";

void fake_store_reset(void);
void fake_store_add(const struct report_store_entry *e);
unsigned fake_store_puts(void);
int fake_store_get(int64_t day, const char *domain, struct report_delivery *out);
void fake_store_claims(const int *answers, size_t n);
unsigned fake_store_claimed(void);
const char *fake_store_last_gateway(void);

void
fake_store_reset(void)
{
	n_entries = n_records = 0;
	n_puts = 0;
	n_claims = next_claim = 0;
	n_claimed = 0;
}

void
fake_store_claims(const int *answers, size_t n)
{
	n_claims = n < FAKE_MAX ? n : FAKE_MAX;
	memcpy(claims, answers, n_claims * sizeof(*claims));
	next_claim = 0;
}

unsigned
fake_store_claimed(void)
{
	return n_claimed;
}

const char *
fake_store_last_gateway(void)
{
	return last_gateway;
}

void
fake_store_add(const struct report_store_entry *e)
{
	if (n_entries < FAKE_MAX)
		entries[n_entries++] = *e;
}

unsigned
fake_store_puts(void)
{
	return n_puts;
}

int
fake_store_get(int64_t day, const char *domain, struct report_delivery *out)
{
	for (size_t i = 0; i < n_records; i++)
		if (records[i].day == day && strcmp(records[i].domain, domain) == 0) {
			*out = records[i];
			return 1;
		}
	return 0;
}

int
report_store_flush(struct report_store *s, struct sts_report *rep, int64_t now, char *err,
                   size_t errlen)
{
	(void)s;
	(void)rep;
	(void)now;
	(void)err;
	(void)errlen;
	return 0;
}

int
report_store_foreach_day(struct report_store *s, int64_t day, const char *gateway,
                         report_store_cb *cb, void *arg, char *err, size_t errlen)
{
	int n = 0;

	sts_strlcpy(last_gateway, gateway != NULL ? gateway : "(all)", sizeof(last_gateway));
	(void)s;
	(void)err;
	(void)errlen;
	for (size_t i = 0; i < n_entries; i++) {
		if (entries[i].day != day / 86400 * 86400)
			continue;
		n++;
		if (cb(arg, &entries[i]) != 0)
			break;
	}
	return n;
}

/* The days of the entries added, oldest first, each once. */
int
report_store_days(struct report_store *s, report_store_day_cb *cb, void *arg, char *err,
                  size_t errlen)
{
	int64_t last = INT64_MIN;
	int n = 0;

	(void)s;
	(void)err;
	(void)errlen;
	for (;;) {
		int64_t next = INT64_MAX;
		unsigned k = 0;

		for (size_t i = 0; i < n_entries; i++)
			if (entries[i].day > last && entries[i].day < next)
				next = entries[i].day;
		if (next == INT64_MAX)
			return n;
		for (size_t i = 0; i < n_entries; i++)
			k += entries[i].day == next;
		n++;
		if (cb(arg, next, k) != 0)
			return n;
		last = next;
	}
}

/* The gateway id of every fake store. */
const char *
report_store_gateway(const struct report_store *s)
{
	(void)s;
	return "gw1";
}

const char *
report_state_name(enum report_state state)
{
	static const char *const names[] = {"pending", "sent", "failed", "skipped"};

	return (unsigned)state < REPORT_STATE_MAX ? names[state] : "pending";
}

int
report_store_delivery_get(struct report_store *s, int64_t day, const char *domain,
                          struct report_delivery *out, char *err, size_t errlen)
{
	(void)s;
	(void)err;
	(void)errlen;
	if (fake_store_get(day, domain, out) == 1)
		return 1;
	memset(out, 0, sizeof(*out));
	out->day = day;
	sts_strlcpy(out->domain, domain, sizeof(out->domain));
	return 0;
}

int
report_store_delivery_put(struct report_store *s, const struct report_delivery *d,
                          const char *sender, int64_t now, char *err, size_t errlen)
{
	(void)s;
	(void)sender;
	(void)now;
	(void)err;
	(void)errlen;
	n_puts++;
	for (size_t i = 0; i < n_records; i++)
		if (records[i].day == d->day && strcmp(records[i].domain, d->domain) == 0) {
			records[i] = *d;
			return 0;
		}
	if (n_records < FAKE_MAX)
		records[n_records++] = *d;
	return 0;
}

int
report_store_delivery_claim(struct report_store *s, int64_t day, const char *domain,
                            const char *sender, int64_t now, unsigned hold_s, char *holder,
                            size_t holderlen, char *err, size_t errlen)
{
	(void)s;
	(void)day;
	(void)domain;
	(void)sender;
	(void)now;
	(void)hold_s;
	n_claimed++;
	if (next_claim == n_claims)
		return REPORT_CLAIM_OURS;
	if (holder != NULL)
		sts_strlcpy(holder, "other pid 1", holderlen);
	if (claims[next_claim] < 0 && err != NULL)
		sts_strlcpy(err, "report store: database is locked", errlen);
	return claims[next_claim++];
}
