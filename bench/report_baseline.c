/*
 * report_baseline.c - the per-domain TLS result table as it was before the
 * durable store: one mutex around every count, as bench_report.c's
 * same-run baseline. Not linked into stsproxy.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "bench/report_baseline.h"

#define DAY_SECONDS 86400
#define BUCKETS     8192 /* a power of two; at most 8 domains a chain when full */

struct rdomain {
	struct rdomain *next;
	char domain[STS_REPORT_DOMAIN_LEN];
	enum sts_policy_type type;
	char id[STS_REPORT_ID_LEN];
	enum sts_mode mode;
	uint64_t success;
	uint64_t failure;
	uint64_t by_result[STS_RESULT_MAX];
	size_t n_details;
	struct sts_report_detail *details; /* STS_REPORT_DETAILS_MAX rows, or NULL */
	uint64_t detail_other;
};

struct rday {
	int64_t day;
	size_t n_domains; /* in the hash table, not counting other */
	bool full_warned;
	bool other_used;
	struct rdomain other;
	struct rdomain *buckets[BUCKETS];
};

struct base_report {
	pthread_mutex_t lock;
	struct rday *today;
	struct rday *yesterday; /* NULL until the first rollover */
};

/* base_report_day_of - see report_baseline.h */
int64_t
base_report_day_of(int64_t t)
{
	int64_t d = t / DAY_SECONDS;

	/* Round down, also before 1970, so that every day is 86400 seconds wide. */
	if (t % DAY_SECONDS < 0)
		d--;
	return d * DAY_SECONDS;
}

static struct rday *
rday_new(int64_t now)
{
	struct rday *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->day = base_report_day_of(now);
	snprintf(d->other.domain, sizeof(d->other.domain), "%s", STS_REPORT_OTHER);
	return d;
}

static void
rday_free(struct rday *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		struct rdomain *e = d->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e->details);
			free(e);
		}
	}
	free(d->other.details);
	free(d);
}

/* base_report_new - see report_baseline.h */
struct base_report *
base_report_new(int64_t now)
{
	struct base_report *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r);
		return NULL;
	}
	if ((r->today = rday_new(now)) == NULL)
		goto fail;
	return r;
fail:
	pthread_mutex_destroy(&r->lock);
	free(r);
	return NULL;
}

/* base_report_free - see report_baseline.h */
void
base_report_free(struct base_report *r)
{
	if (r == NULL)
		return;
	rday_free(r->today);
	rday_free(r->yesterday);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* hash_domain - FNV-1a over the lower-cased name. */
static uint32_t
hash_domain(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 16777619u;
	}
	return h;
}

/* copy_lower - domain names are case-insensitive; the table keeps them in lower case. */
static void
copy_lower(char *dst, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[len] = '\0';
}

/* roll_locked - start a new day when now is past the current one; 1, 0 or -1. */
static int
roll_locked(struct base_report *r, int64_t now)
{
	struct rday *d;

	if (base_report_day_of(now) <= r->today->day)
		return 0;
	if ((d = rday_new(now)) == NULL)
		return -1;
	rday_free(r->yesterday);
	r->yesterday = r->today;
	r->today = d;
	return 1;
}

/* find_locked - the entry of domain (len octets) and policy type for today, created if needed. */
static struct rdomain *
find_locked(struct base_report *r, const char *domain, size_t len, enum sts_policy_type type)
{
	struct rday *d = r->today;
	uint32_t b = (hash_domain(domain) + (uint32_t)type) & (BUCKETS - 1);
	struct rdomain *e;

	for (e = d->buckets[b]; e != NULL; e = e->next)
		if (e->type == type && strcasecmp(e->domain, domain) == 0)
			return e;
	if (d->n_domains >= STS_REPORT_DOMAINS_MAX) {
		if (!d->full_warned) {
			log_warn("event=report-table-full domains=%zu day=%lld: further policy "
			         "domains are counted as \"%s\" until the next UTC day",
			         d->n_domains, (long long)d->day, STS_REPORT_OTHER);
			d->full_warned = true;
		}
		d->other_used = true;
		return &d->other;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		/* Losing the name is better than losing the count. */
		d->other_used = true;
		return &d->other;
	}
	copy_lower(e->domain, domain, len);
	e->type = type;
	e->next = d->buckets[b];
	d->buckets[b] = e;
	d->n_domains++;
	return e;
}

/* check_domain - the length of a usable domain argument, or 0. */
static size_t
check_domain(const char *domain)
{
	size_t len;

	if (domain == NULL)
		return 0;
	len = strnlen(domain, STS_REPORT_DOMAIN_LEN);
	return len < STS_REPORT_DOMAIN_LEN ? len : 0;
}

/* note_policy - the id and mode of the policy last seen for the domain. */
static void
note_policy(struct rdomain *e, const char *policy_id, enum sts_mode mode)
{
	size_t n = 0;

	if (policy_id != NULL) {
		/* An id longer than RFC 8461 section 3.1 allows never gets here; cut it all the
		 * same. */
		n = strnlen(policy_id, STS_REPORT_ID_LEN - 1);
		memcpy(e->id, policy_id, n);
	}
	e->id[n] = '\0';
	e->mode = mode;
}

/* base_report_success - see report_baseline.h */
int
base_report_success(struct base_report *r, const char *domain, enum sts_policy_type type,
                    const char *policy_id, enum sts_mode mode, const char *mx_host, int64_t now)
{
	size_t len = check_domain(domain);
	struct rdomain *e;

	(void)mx_host;
	if (r == NULL || len == 0)
		return -1;
	pthread_mutex_lock(&r->lock);
	/* A count just after midnight belongs to the new day even before the timer's rollover. */
	roll_locked(r, now);
	e = find_locked(r, domain, len, type);
	note_policy(e, policy_id, mode);
	e->success++;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* same_text - NULL and "" are the same unknown value. */
static bool
same_text(const char *a, const char *b)
{
	return strcasecmp(a, b != NULL ? b : "") == 0;
}

/* add_detail - count a failure against its (result, MX, address) row, bounded. */
static void
add_detail(struct rdomain *e, enum sts_result result, const char *mx_host, const char *ip)
{
	struct sts_report_detail *row;

	for (size_t i = 0; i < e->n_details; i++) {
		row = &e->details[i];
		if (row->result == result && same_text(row->mx_host, mx_host) &&
		    same_text(row->ip, ip)) {
			row->count++;
			return;
		}
	}
	if (e->n_details >= STS_REPORT_DETAILS_MAX) {
		e->detail_other++;
		return;
	}
	if (e->details == NULL &&
	    (e->details = calloc(STS_REPORT_DETAILS_MAX, sizeof(*e->details))) == NULL) {
		e->detail_other++;
		return;
	}
	row = &e->details[e->n_details++];
	row->result = result;
	copy_lower(row->mx_host, mx_host != NULL ? mx_host : "",
	           mx_host != NULL ? strnlen(mx_host, sizeof(row->mx_host) - 1) : 0);
	snprintf(row->ip, sizeof(row->ip), "%s", ip != NULL ? ip : "");
	row->count = 1;
}

/* base_report_failure - see report_baseline.h */
int
base_report_failure(struct base_report *r, const char *domain, enum sts_policy_type type,
                    const char *policy_id, enum sts_mode mode, enum sts_result result,
                    const char *mx_host, const char *dest_ip, int64_t now)
{
	size_t len = check_domain(domain);
	struct rdomain *e;

	if (r == NULL || len == 0 || result <= STS_RESULT_OK || result >= STS_RESULT_MAX)
		return -1;
	pthread_mutex_lock(&r->lock);
	roll_locked(r, now);
	e = find_locked(r, domain, len, type);
	note_policy(e, policy_id, mode);
	e->failure++;
	e->by_result[result]++;
	add_detail(e, result, mx_host, dest_ip);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* show - fill the public view of e and call cb. */
static int
show(const struct rday *d, const struct rdomain *e, sts_report_cb *cb, void *arg)
{
	struct sts_report_entry v = {
	    .domain = e->domain,
	    .type = e->type,
	    .policy_id = e->id,
	    .mode = e->mode,
	    .day = d->day,
	    .success = e->success,
	    .failure = e->failure,
	    .n_details = e->n_details,
	    .details = e->details,
	    .detail_other = e->detail_other,
	};

	memcpy(v.by_result, e->by_result, sizeof(v.by_result));
	return cb(arg, &v);
}

static size_t
foreach_day(const struct rday *d, sts_report_cb *cb, void *arg)
{
	size_t n = 0;

	if (d == NULL)
		return 0;
	for (size_t i = 0; i < BUCKETS; i++)
		for (const struct rdomain *e = d->buckets[i]; e != NULL; e = e->next) {
			n++;
			if (show(d, e, cb, arg) != 0)
				return n;
		}
	if (d->other_used) {
		n++;
		show(d, &d->other, cb, arg);
	}
	return n;
}

/* base_report_foreach - see report_baseline.h */
size_t
base_report_foreach(struct base_report *r, sts_report_cb *cb, void *arg)
{
	size_t n;

	if (r == NULL || cb == NULL)
		return 0;
	pthread_mutex_lock(&r->lock);
	n = foreach_day(r->today, cb, arg);
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* base_report_foreach_yesterday - see report_baseline.h */
size_t
base_report_foreach_yesterday(struct base_report *r, sts_report_cb *cb, void *arg)
{
	size_t n;

	if (r == NULL || cb == NULL)
		return 0;
	pthread_mutex_lock(&r->lock);
	n = foreach_day(r->yesterday, cb, arg);
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* base_report_rollover - see report_baseline.h */
int
base_report_rollover(struct base_report *r, int64_t now)
{
	int rc;

	if (r == NULL)
		return -1;
	pthread_mutex_lock(&r->lock);
	rc = roll_locked(r, now);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* base_report_day - see report_baseline.h */
int64_t
base_report_day(struct base_report *r)
{
	int64_t day;

	pthread_mutex_lock(&r->lock);
	day = r->today->day;
	pthread_mutex_unlock(&r->lock);
	return day;
}
