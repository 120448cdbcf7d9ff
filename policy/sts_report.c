/*
 * sts_report.c - per policy domain and policy type TLS result counters of
 * one UTC day (RFC 8460 section 4), handed over in batches to the durable
 * store (policy/report_store.c).
 *
 * A day is a chained hash table of domains. Entries are allocated once, on
 * a domain's first count of the day, and never moved, so a count for a known
 * domain is a lookup and a few additions. The detail rows of a domain are
 * allocated on its first failure, STS_REPORT_DETAILS_MAX at once; its policy
 * strings once per table (one block: pointers, then the text).
 *
 * Locks: the buckets are striped over NLOCKS mutexes (bucket i under
 * locks[i % NLOCKS]), so that workers counting for different domains do not
 * wait on each other; the overflow bucket has its own mutex, taken inside a
 * stripe's. Swapping the day tables (rollover, take) takes every stripe, in
 * order, then the overflow mutex: r->today and r->yesterday change only under
 * all of them, so any one stripe is enough to read them.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "policy/sts_dane.h"
#include "policy/sts_policy.h"
#include "policy/sts_report.h"

#define DAY_SECONDS 86400
#define BUCKETS     8192 /* a power of two; at most 8 domains a chain when full */
/* A power of two dividing BUCKETS; a swap holds all of them and the overflow lock, which
 * stays below the 64 locks ThreadSanitizer can follow in one thread. */
#define NLOCKS 32

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
	/* The policy strings and mx patterns: one block, NULL until known. */
	char **strings; /* n_policy policy strings, then n_mx patterns */
	size_t n_policy, n_mx;
};

struct rday {
	struct rday *next; /* in a batch */
	int64_t day;
	atomic_size_t n_domains; /* in the hash table, not counting other */
	atomic_bool full_warned;
	bool other_used;
	struct rdomain other;
	struct rdomain *buckets[BUCKETS];
};

/* A stripe's mutex, alone on its cache line. */
struct stripe {
	pthread_mutex_t lock;
} __attribute__((aligned(64)));

struct sts_report {
	struct stripe stripes[NLOCKS];
	pthread_mutex_t other_lock;
	struct rday *today;
	struct rday *yesterday; /* NULL until the first rollover, and after a take */
};

struct sts_report_batch {
	struct rday *days; /* a list, any order */
};

/* sts_report_day_of - see sts_report.h */
int64_t
sts_report_day_of(int64_t t)
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
	d->day = sts_report_day_of(now);
	snprintf(d->other.domain, sizeof(d->other.domain), "%s", STS_REPORT_OTHER);
	return d;
}

static void
rdomain_release(struct rdomain *e)
{
	free(e->details);
	free(e->strings);
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
			rdomain_release(e);
			free(e);
		}
	}
	rdomain_release(&d->other);
	free(d);
}

/* sts_report_new - see sts_report.h */
struct sts_report *
sts_report_new(int64_t now)
{
	struct sts_report *r = calloc(1, sizeof(*r));
	size_t i;

	if (r == NULL)
		return NULL;
	for (i = 0; i < NLOCKS; i++)
		if (pthread_mutex_init(&r->stripes[i].lock, NULL) != 0)
			goto fail;
	if (pthread_mutex_init(&r->other_lock, NULL) != 0)
		goto fail;
	if ((r->today = rday_new(now)) == NULL) {
		pthread_mutex_destroy(&r->other_lock);
		goto fail;
	}
	return r;
fail:
	while (i-- > 0)
		pthread_mutex_destroy(&r->stripes[i].lock);
	free(r);
	return NULL;
}

/* sts_report_free - see sts_report.h */
void
sts_report_free(struct sts_report *r)
{
	if (r == NULL)
		return;
	rday_free(r->today);
	rday_free(r->yesterday);
	for (size_t i = 0; i < NLOCKS; i++)
		pthread_mutex_destroy(&r->stripes[i].lock);
	pthread_mutex_destroy(&r->other_lock);
	free(r);
}

static void
lock_all(struct sts_report *r)
{
	for (size_t i = 0; i < NLOCKS; i++)
		pthread_mutex_lock(&r->stripes[i].lock);
	pthread_mutex_lock(&r->other_lock);
}

static void
unlock_all(struct sts_report *r)
{
	pthread_mutex_unlock(&r->other_lock);
	for (size_t i = NLOCKS; i-- > 0;)
		pthread_mutex_unlock(&r->stripes[i].lock);
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

static uint32_t
bucket_of(const char *domain, enum sts_policy_type type)
{
	return (hash_domain(domain) + (uint32_t)type) & (BUCKETS - 1);
}

/* copy_lower - domain names are case-insensitive; the table keeps them in lower case. */
static void
copy_lower(char *dst, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[len] = '\0';
}

/*
 * roll_all_locked - with every lock held, start a new day when now is past
 * the current one (d, allocated by the caller, becomes today; else it is
 * left to the caller). 1 when rolled, 0 otherwise.
 */
static int
roll_all_locked(struct sts_report *r, int64_t now, struct rday *d)
{
	if (d == NULL || sts_report_day_of(now) <= r->today->day)
		return 0;
	rday_free(r->yesterday);
	r->yesterday = r->today;
	r->today = d;
	return 1;
}

/* roll - rollover from outside any lock; 1, 0 or -1 (no memory). */
static int
roll(struct sts_report *r, int64_t now)
{
	struct rday *d;
	int rc;

	if ((d = rday_new(now)) == NULL)
		return -1;
	lock_all(r);
	rc = roll_all_locked(r, now, d);
	unlock_all(r);
	if (rc == 0)
		rday_free(d);
	return rc;
}

/*
 * find_in - the entry of domain (len octets) and type in bucket b of d,
 * created if needed, or d's overflow bucket; *other says which. The caller
 * holds b's stripe (or owns d).
 */
static struct rdomain *
find_in(struct rday *d, uint32_t b, const char *domain, size_t len, enum sts_policy_type type,
        bool *other)
{
	struct rdomain *e;

	*other = false;
	for (e = d->buckets[b]; e != NULL; e = e->next)
		if (e->type == type && strncasecmp(e->domain, domain, len) == 0 &&
		    e->domain[len] == '\0')
			return e;
	if (atomic_load(&d->n_domains) >= STS_REPORT_DOMAINS_MAX) {
		if (!atomic_exchange(&d->full_warned, true))
			log_warn("event=report-table-full domains=%zu day=%lld: further policy "
			         "domains are counted as \"%s\" until the next flush or UTC day",
			         atomic_load(&d->n_domains), (long long)d->day, STS_REPORT_OTHER);
		*other = true;
		return &d->other;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		/* Losing the name is better than losing the count. */
		*other = true;
		return &d->other;
	}
	copy_lower(e->domain, domain, len);
	e->type = type;
	e->next = d->buckets[b];
	d->buckets[b] = e;
	atomic_fetch_add(&d->n_domains, 1);
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

/* note_id - the id and mode of the policy last seen for the domain. */
static void
note_id(struct rdomain *e, const char *policy_id, enum sts_mode mode)
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

/* --- policy strings (RFC 8460 section 4.4 "policy-string", "mx-host") ---------- */

/* A list of strings being built: sizes first, then one block. */
struct sbuild {
	size_t n_policy, n_mx, bytes;
	char text[STS_REPORT_POLICY_BYTES];
	size_t len[STS_REPORT_POLICY_MAX * 2];
	char rr[STS_REPORT_POLICY_BYTES]; /* one TLSA record being written */
};

/* sb_add - append s (a policy string, or an mx pattern when mx); false when it does not fit. */
static bool
sb_add(struct sbuild *b, bool mx, const char *s)
{
	size_t n = strlen(s), i = b->n_policy + b->n_mx;

	if ((mx ? b->n_mx : b->n_policy) >= STS_REPORT_POLICY_MAX ||
	    b->bytes + n + 1 > sizeof(b->text))
		return false;
	/* Every policy string precedes every pattern: patterns are added last. */
	memcpy(b->text + b->bytes, s, n + 1);
	b->bytes += n + 1;
	b->len[i] = n;
	if (mx)
		b->n_mx++;
	else
		b->n_policy++;
	return true;
}

/* sb_has - s is among the strings added so far. */
static bool
sb_has(const struct sbuild *b, const char *s)
{
	const char *p = b->text;

	for (size_t i = 0; i < b->n_policy + b->n_mx; i++) {
		if (strcmp(p, s) == 0)
			return true;
		p += b->len[i] + 1;
	}
	return false;
}

/* sb_sts - the lines of an MTA-STS policy file (RFC 8461 section 3.2), then its patterns. */
static void
sb_sts(struct sbuild *b, const struct sts_policy *p)
{
	char line[STS_REPORT_DOMAIN_LEN + 8];

	sb_add(b, false, "version: STSv1");
	snprintf(line, sizeof(line), "mode: %s", sts_mode_name(p->mode));
	sb_add(b, false, line);
	for (size_t i = 0; i < p->n_mx; i++) {
		snprintf(line, sizeof(line), "mx: %s", p->mx[i]);
		sb_add(b, false, line);
	}
	snprintf(line, sizeof(line), "max_age: %u", (unsigned)p->max_age);
	sb_add(b, false, line);
	for (size_t i = 0; i < p->n_mx; i++)
		sb_add(b, true, p->mx[i]);
}

/* sb_tlsa - the TLSA records of every MX host, in presentation form, once each. */
static void
sb_tlsa(struct sbuild *b, const struct sts_dane_state *st)
{
	static const char hex[] = "0123456789ABCDEF";
	char *rr = b->rr;

	for (size_t h = 0; h < st->n_host; h++)
		for (size_t i = 0; i < st->host[h].n_tlsa; i++) {
			const struct tls_tlsa *t = &st->host[h].tlsa[i];
			int k = snprintf(rr, STS_REPORT_POLICY_BYTES, "%u %u %u ", t->usage,
			                 t->selector, t->mtype);
			size_t n = (size_t)k;

			if (k < 0 || n + t->len * 2 >= STS_REPORT_POLICY_BYTES)
				continue;
			for (size_t j = 0; j < t->len; j++) {
				rr[n++] = hex[t->data[j] >> 4];
				rr[n++] = hex[t->data[j] & 15];
			}
			rr[n] = '\0';
			if (!sb_has(b, rr))
				sb_add(b, false, rr);
		}
}

/* sb_block - one allocation: the n pointers, then the text; NULL without memory. */
static char **
sb_block(const struct sbuild *b)
{
	size_t n = b->n_policy + b->n_mx;
	char **v = malloc(n * sizeof(char *) + b->bytes);
	char *text;

	if (v == NULL)
		return NULL;
	text = (char *)(v + n);
	memcpy(text, b->text, b->bytes);
	for (size_t i = 0; i < n; i++) {
		v[i] = text;
		text += b->len[i] + 1;
	}
	return v;
}

/* policy_wanted - c carries a policy the entry does not have yet. */
static bool
policy_wanted(const struct rdomain *e, const struct sts_report_count *c)
{
	if (c->sts_policy == NULL && c->dane == NULL)
		return false;
	if (e->strings == NULL)
		return true;
	/* An MTA-STS policy changes with its id (RFC 8461 section 3.1). */
	return c->sts_policy != NULL && c->policy_id != NULL && strcmp(e->id, c->policy_id) != 0;
}

/* render - c's policy strings as a block for set_strings(); NULL when none or no memory. */
static char **
render(const struct sts_report_count *c, size_t *n_policy, size_t *n_mx)
{
	struct sbuild *b = malloc(sizeof(*b));
	char **v = NULL;

	if (b == NULL)
		return NULL;
	b->n_policy = b->n_mx = b->bytes = 0;
	if (c->type == STS_PTYPE_TLSA && c->dane != NULL)
		sb_tlsa(b, c->dane);
	else if (c->type == STS_PTYPE_STS && c->sts_policy != NULL)
		sb_sts(b, c->sts_policy);
	if (b->n_policy + b->n_mx > 0 && (v = sb_block(b)) != NULL) {
		*n_policy = b->n_policy;
		*n_mx = b->n_mx;
	}
	free(b);
	return v;
}

static void
set_strings(struct rdomain *e, char **v, size_t n_policy, size_t n_mx)
{
	free(e->strings);
	e->strings = v;
	e->n_policy = n_policy;
	e->n_mx = n_mx;
}

/* --- counting ---------------------------------------------------------------- */

/* same_text - NULL and "" are the same unknown value. */
static bool
same_text(const char *a, const char *b)
{
	return strcasecmp(a, b != NULL ? b : "") == 0;
}

static void
copy_text(char *dst, size_t size, const char *src, bool lower)
{
	size_t n = src != NULL ? strnlen(src, size - 1) : 0;

	if (lower)
		copy_lower(dst, src != NULL ? src : "", n);
	else {
		memcpy(dst, src != NULL ? src : "", n);
		dst[n] = '\0';
	}
}

/* detail_row - the row of key k in e (created, bounded), or NULL: count in detail_other. */
static struct sts_report_detail *
detail_row(struct rdomain *e, const struct sts_report_detail *k)
{
	struct sts_report_detail *row;

	for (size_t i = 0; i < e->n_details; i++) {
		row = &e->details[i];
		if (row->result == k->result && same_text(row->mx_host, k->mx_host) &&
		    same_text(row->ip, k->ip) && same_text(row->sending_ip, k->sending_ip) &&
		    same_text(row->mx_helo, k->mx_helo))
			return row;
	}
	if (e->n_details >= STS_REPORT_DETAILS_MAX)
		return NULL;
	if (e->details == NULL &&
	    (e->details = calloc(STS_REPORT_DETAILS_MAX, sizeof(*e->details))) == NULL)
		return NULL;
	row = &e->details[e->n_details++];
	*row = *k;
	row->count = 0;
	return row;
}

/* add_count - the count of c into e; the caller holds e's lock. */
static void
add_count(struct rdomain *e, const struct sts_report_count *c)
{
	struct sts_report_detail k, *row;

	if (c->result == STS_RESULT_OK) {
		e->success++;
		return;
	}
	e->failure++;
	e->by_result[c->result]++;
	k.result = c->result;
	copy_text(k.mx_host, sizeof(k.mx_host), c->mx_host, true);
	copy_text(k.ip, sizeof(k.ip), c->dest_ip, false);
	copy_text(k.sending_ip, sizeof(k.sending_ip), c->sending_ip, false);
	copy_text(k.mx_helo, sizeof(k.mx_helo), c->mx_helo, true);
	if ((row = detail_row(e, &k)) != NULL)
		row->count++;
	else
		e->detail_other++;
}

/*
 * record - the common path of count and note: find the entry of c under
 * its stripe, note the policy (rendered outside the lock when the entry
 * lacks it), and count when counting.
 */
static int
record(struct sts_report *r, const struct sts_report_count *c, int64_t now, bool counting)
{
	size_t len = check_domain(c != NULL ? c->domain : NULL);
	char **strings = NULL;
	size_t n_policy = 0, n_mx = 0;
	pthread_mutex_t *lock;
	struct rdomain *e;
	uint32_t b;
	bool other;

	if (r == NULL || len == 0 || (unsigned)c->result >= STS_RESULT_MAX ||
	    (unsigned)c->type >= STS_PTYPE_MAX)
		return -1;
	b = bucket_of(c->domain, c->type);
	lock = &r->stripes[b & (NLOCKS - 1)].lock;
	for (int pass = 0;; pass++) {
		pthread_mutex_lock(lock);
		/* A count just after midnight belongs to the new day even before the timer's
		 * rollover. */
		if (sts_report_day_of(now) > r->today->day) {
			pthread_mutex_unlock(lock);
			(void)roll(r, now);
			pthread_mutex_lock(lock);
		}
		e = find_in(r->today, b, c->domain, len, c->type, &other);
		if (other)
			pthread_mutex_lock(&r->other_lock);
		if (strings != NULL || pass > 0 || !policy_wanted(e, c))
			break;
		/* Rendering allocates: not under the lock. The table may have moved on
		 * meanwhile; the second pass finds the entry again. */
		if (other)
			pthread_mutex_unlock(&r->other_lock);
		pthread_mutex_unlock(lock);
		strings = render(c, &n_policy, &n_mx);
		if (strings == NULL)
			pass = 1; /* count without them */
	}
	if (strings != NULL && policy_wanted(e, c)) {
		set_strings(e, strings, n_policy, n_mx);
		strings = NULL;
	}
	if (counting || c->policy_id != NULL)
		note_id(e, c->policy_id, c->mode);
	if (counting)
		add_count(e, c);
	if (other) {
		r->today->other_used = true;
		pthread_mutex_unlock(&r->other_lock);
	}
	pthread_mutex_unlock(lock);
	free(strings);
	return 0;
}

/* sts_report_count - see sts_report.h */
int
sts_report_count(struct sts_report *r, const struct sts_report_count *c, int64_t now)
{
	return record(r, c, now, true);
}

/* sts_report_note_policy - see sts_report.h */
int
sts_report_note_policy(struct sts_report *r, const struct sts_report_count *c, int64_t now)
{
	return record(r, c, now, false);
}

/* sts_report_success - see sts_report.h */
int
sts_report_success(struct sts_report *r, const char *domain, enum sts_policy_type type,
                   const char *policy_id, enum sts_mode mode, const char *mx_host, int64_t now)
{
	struct sts_report_count c = {
	    .domain = domain, .type = type, .policy_id = policy_id, .mode = mode};

	(void)mx_host;
	return record(r, &c, now, true);
}

/* sts_report_failure - see sts_report.h */
int
sts_report_failure(struct sts_report *r, const char *domain, enum sts_policy_type type,
                   const char *policy_id, enum sts_mode mode, enum sts_result result,
                   const char *mx_host, const char *dest_ip, int64_t now)
{
	struct sts_report_count c = {
	    .domain = domain,
	    .type = type,
	    .policy_id = policy_id,
	    .mode = mode,
	    .result = result,
	    .mx_host = mx_host,
	    .dest_ip = dest_ip,
	};

	if (result <= STS_RESULT_OK || result >= STS_RESULT_MAX)
		return -1;
	return record(r, &c, now, true);
}

/* --- walks ------------------------------------------------------------------- */

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
	    .n_policy = e->n_policy,
	    .policy = (const char *const *)e->strings,
	    .n_mx = e->n_mx,
	    .mx = e->strings != NULL ? (const char *const *)e->strings + e->n_policy : NULL,
	};

	memcpy(v.by_result, e->by_result, sizeof(v.by_result));
	return cb(arg, &v);
}

/* foreach_day - every entry of d; *stop set when cb asked to stop. */
static size_t
foreach_day(const struct rday *d, sts_report_cb *cb, void *arg, bool *stop)
{
	size_t n = 0;

	if (d == NULL)
		return 0;
	for (size_t i = 0; i < BUCKETS; i++)
		for (const struct rdomain *e = d->buckets[i]; e != NULL; e = e->next) {
			n++;
			if (show(d, e, cb, arg) != 0) {
				*stop = true;
				return n;
			}
		}
	if (d->other_used) {
		n++;
		if (show(d, &d->other, cb, arg) != 0)
			*stop = true;
	}
	return n;
}

/* sts_report_foreach - see sts_report.h */
size_t
sts_report_foreach(struct sts_report *r, sts_report_cb *cb, void *arg)
{
	bool stop = false;
	size_t n;

	if (r == NULL || cb == NULL)
		return 0;
	lock_all(r);
	n = foreach_day(r->today, cb, arg, &stop);
	unlock_all(r);
	return n;
}

/* sts_report_foreach_yesterday - see sts_report.h */
size_t
sts_report_foreach_yesterday(struct sts_report *r, sts_report_cb *cb, void *arg)
{
	bool stop = false;
	size_t n;

	if (r == NULL || cb == NULL)
		return 0;
	lock_all(r);
	n = foreach_day(r->yesterday, cb, arg, &stop);
	unlock_all(r);
	return n;
}

/* sts_report_rollover - see sts_report.h */
int
sts_report_rollover(struct sts_report *r, int64_t now)
{
	if (r == NULL)
		return -1;
	return roll(r, now);
}

/* sts_report_day - see sts_report.h */
int64_t
sts_report_day(struct sts_report *r)
{
	int64_t day;

	pthread_mutex_lock(&r->stripes[0].lock);
	day = r->today->day;
	pthread_mutex_unlock(&r->stripes[0].lock);
	return day;
}

/* --- batches ----------------------------------------------------------------- */

/* rday_empty - nothing was counted or noted in d. */
static bool
rday_empty(const struct rday *d)
{
	return atomic_load(&d->n_domains) == 0 && !d->other_used;
}

/* sts_report_take - see sts_report.h */
struct sts_report_batch *
sts_report_take(struct sts_report *r)
{
	struct sts_report_batch *b;
	struct rday *fresh, *old, *yday;

	if (r == NULL || (b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	/* The day may change between here and the lock: fresh takes today's day below. */
	if ((fresh = rday_new(0)) == NULL) {
		free(b);
		return NULL;
	}
	lock_all(r);
	old = r->today;
	yday = r->yesterday;
	fresh->day = old->day;
	r->today = fresh;
	r->yesterday = NULL;
	unlock_all(r);
	if (yday != NULL && rday_empty(yday))
		rday_free(yday);
	else if (yday != NULL) {
		yday->next = b->days;
		b->days = yday;
	}
	if (rday_empty(old))
		rday_free(old);
	else {
		old->next = b->days;
		b->days = old;
	}
	return b;
}

/* sts_report_batch_foreach - see sts_report.h */
size_t
sts_report_batch_foreach(const struct sts_report_batch *b, sts_report_cb *cb, void *arg)
{
	bool stop = false;
	size_t n = 0;

	if (b == NULL || cb == NULL)
		return 0;
	for (const struct rday *d = b->days; d != NULL && !stop; d = d->next)
		n += foreach_day(d, cb, arg, &stop);
	return n;
}

/* sts_report_batch_empty - see sts_report.h */
int
sts_report_batch_empty(const struct sts_report_batch *b)
{
	return b == NULL || b->days == NULL;
}

/* sts_report_batch_free - see sts_report.h */
void
sts_report_batch_free(struct sts_report_batch *b)
{
	struct rday *d, *next;

	if (b == NULL)
		return;
	for (d = b->days; d != NULL; d = next) {
		next = d->next;
		rday_free(d);
	}
	free(b);
}

/* merge_entry - add the counts of f into e (both private); false when a detail did not fit. */
static void
merge_entry(struct rdomain *e, struct rdomain *f)
{
	e->success += f->success;
	e->failure += f->failure;
	for (size_t k = 0; k < STS_RESULT_MAX; k++)
		e->by_result[k] += f->by_result[k];
	for (size_t i = 0; i < f->n_details; i++) {
		struct sts_report_detail *row = detail_row(e, &f->details[i]);

		if (row != NULL)
			row->count += f->details[i].count;
		else
			e->detail_other += f->details[i].count;
	}
	e->detail_other += f->detail_other;
	/* The later batch saw the later policy. */
	if (f->id[0] != '\0' || e->id[0] == '\0')
		note_id(e, f->id, f->mode);
	if (f->strings != NULL) {
		set_strings(e, f->strings, f->n_policy, f->n_mx);
		f->strings = NULL;
	}
}

/* merge_day - every entry of f into t, the same day. */
static void
merge_day(struct rday *t, struct rday *f)
{
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct rdomain *e = f->buckets[i]; e != NULL; e = e->next) {
			bool other;
			struct rdomain *into =
			    find_in(t, (uint32_t)i, e->domain, strlen(e->domain), e->type, &other);

			if (other)
				t->other_used = true;
			merge_entry(into, e);
		}
	if (f->other_used) {
		merge_entry(&t->other, &f->other);
		t->other_used = true;
	}
}

/* sts_report_batch_merge - see sts_report.h */
int
sts_report_batch_merge(struct sts_report_batch *into, struct sts_report_batch *from)
{
	struct rday *f, *next, *t;

	if (into == NULL || from == NULL) {
		sts_report_batch_free(from);
		return into == NULL ? -1 : 0;
	}
	for (f = from->days; f != NULL; f = next) {
		next = f->next;
		for (t = into->days; t != NULL && t->day != f->day; t = t->next)
			;
		if (t == NULL) {
			f->next = into->days;
			into->days = f;
			continue;
		}
		merge_day(t, f);
		rday_free(f);
	}
	free(from);
	return 0;
}
