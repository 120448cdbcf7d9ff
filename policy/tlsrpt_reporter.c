/*
 * tlsrpt_reporter.c - the daily TLS-RPT reports (RFC 8460): which domains,
 * the report of each (store -> JSON -> gzip -> mail or POST body), the
 * queue of deliveries and the thread that runs them. See tlsrpt_reporter.h.
 *
 * The reporter never goes through the proxy: HTTPS goes straight out and
 * mail goes to report.relay from this process, so the proxy never sees, and
 * never counts, a report session (no report loops).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "policy/report_store.h"
#include "policy/tlsrpt_dns.h"
#include "policy/tlsrpt_gzip.h"
#include "policy/tlsrpt_json.h"
#include "policy/tlsrpt_mail.h"
#include "policy/tlsrpt_queue.h"
#include "policy/tlsrpt_reporter.h"
#include "policy/tlsrpt_send.h"
#include "policy/tlsrpt_shared.h"

#define WAIT_SLICE_S  60 /* the thread looks at the clock at least this often */
#define MERGE_FRESH_S 60 /* a day's rows read from Redis this recently are used as they are */
#define MARK_RETRY_S  2  /* a report sent but not marked sent in Redis: asked again this often */
#define MARK_WAIT_S   30 /* "report send" waits this long for the marks before it exits */
#define UNMARKED_MAX  64 /* such reports remembered (beyond: logged, not retried) */

struct tlsrpt_reporter {
	const struct conf *conf;
	struct report_store *store;
	struct sts_report *live;
	struct tlsrpt_resolver *resolver;
	struct tlsrpt_send *send;
	struct tlsrpt_queue *queue;
	struct tlsrpt_shared *shared; /* NULL unless shared.enabled */
	struct tlsrpt_shared_stats *shared_stats;
	char sender[REPORT_STORE_ERROR_LEN]; /* this process among the senders of the store */
	bool push_only;
	bool push_failing; /* the last push failed: said once, until one succeeds */
	bool left;         /* the last delivery was left to another process */
	struct {
		int64_t day;
		char domain[STS_REPORT_DOMAIN_LEN];
	} unmarked[UNMARKED_MAX]; /* sent, not yet marked sent in Redis (this thread only) */
	size_t n_unmarked;
	bool catching_up;              /* in catch_up(): "recorded already" is not news */
	int64_t merged_day, merged_at; /* the day last read from Redis, and when */
	atomic_uint_fast64_t attempts[TLSRPT_KIND_MAX][TLSRPT_OUT_MAX];
	unsigned failed; /* reports that ended failed, for drain */

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled on stop */
	atomic_bool stop;
};

static int64_t
wall_now(void)
{
	return (int64_t)time(NULL);
}

/* day_text - "YYYY-MM-DD" of a UTC day. */
static const char *
day_text(int64_t day, char *buf, size_t len)
{
	time_t t = (time_t)day;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)day);
	return buf;
}

/* --- one report's results, copied out of the store ---------------------------- */

/* The results of one policy domain on one day: the policies of its report. */
struct results {
	const char *domain;
	bool include_none;
	struct tlsrpt_policy pol[TLSRPT_POLICIES_MAX];
	size_t n_pol;
	char **pool; /* every string and array below, owned */
	size_t n_pool, cap_pool;
	int oom;
};

static void *
pool_add(struct results *res, void *p)
{
	if (p == NULL) {
		res->oom = 1;
		return NULL;
	}
	if (res->n_pool == res->cap_pool) {
		size_t cap = res->cap_pool ? res->cap_pool * 2 : 64;
		char **n = realloc(res->pool, cap * sizeof(*n));

		if (n == NULL) {
			free(p);
			res->oom = 1;
			return NULL;
		}
		res->pool = n;
		res->cap_pool = cap;
	}
	res->pool[res->n_pool++] = p;
	return p;
}

static const char *
pool_str(struct results *res, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return NULL;
	return pool_add(res, strdup(s));
}

static const char *const *
pool_strs(struct results *res, const char *const *v, size_t n)
{
	const char **out;

	if (n == 0)
		return NULL;
	if ((out = pool_add(res, calloc(n, sizeof(*out)))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = pool_str(res, v[i]);
	return out;
}

static void
results_free(struct results *res)
{
	for (size_t i = 0; i < res->n_pool; i++)
		free(res->pool[i]);
	free(res->pool);
	memset(res, 0, sizeof(*res));
}

/*
 * copy_entry - one store entry of res->domain as a report policy. The
 * failure details are the store's rows, then, per result type, what the
 * rows do not account for (failures beyond the rows kept), with the
 * result type alone: the totals always add up (section 4.4).
 */
static int
copy_entry(void *arg, const struct report_store_entry *e)
{
	struct results *res = arg;
	struct tlsrpt_policy *p;
	struct tlsrpt_failure *f;
	size_t n = 0;

	if (strcmp(e->domain, res->domain) != 0)
		return 0;
	if (e->type == STS_PTYPE_NONE && !res->include_none)
		return 0;
	if (res->n_pol == TLSRPT_POLICIES_MAX || e->n_details > TLSRPT_FAILURES_MAX)
		return 0;
	p = &res->pol[res->n_pol++];
	p->type = e->type;
	p->domain = res->domain;
	p->success = e->success;
	p->failure = e->failure;
	if (e->type != STS_PTYPE_NONE) {
		size_t np = e->n_policy < TLSRPT_STRINGS_MAX ? e->n_policy : TLSRPT_STRINGS_MAX;
		size_t nm = e->n_mx < TLSRPT_STRINGS_MAX ? e->n_mx : TLSRPT_STRINGS_MAX;

		p->policy_strings = pool_strs(res, e->policy, np);
		p->n_policy_strings = p->policy_strings != NULL ? np : 0;
		p->mx_hosts = pool_strs(res, e->mx, nm);
		p->n_mx_hosts = p->mx_hosts != NULL ? nm : 0;
	}
	f = pool_add(res, calloc(e->n_details + STS_RESULT_MAX, sizeof(*f)));
	if (f == NULL)
		return 1;
	for (size_t i = 0; i < e->n_details; i++) {
		const struct report_store_detail *d = &e->details[i];

		if (d->result <= STS_RESULT_OK || d->result >= STS_RESULT_MAX || d->count == 0)
			continue;
		f[n].result = d->result;
		f[n].sending_mta_ip = pool_str(res, d->sending_ip);
		f[n].receiving_mx_hostname = pool_str(res, d->mx_host);
		f[n].receiving_mx_helo = pool_str(res, d->mx_helo);
		f[n].receiving_ip = pool_str(res, d->receiving_ip);
		f[n].failed_session_count = d->count;
		n++;
	}
	for (int r = STS_RESULT_OK + 1; r < STS_RESULT_MAX; r++) {
		uint64_t listed = 0;

		for (size_t i = 0; i < n; i++)
			if (f[i].result == (enum sts_result)r)
				listed += f[i].failed_session_count;
		if (e->by_result[r] > listed) {
			f[n].result = (enum sts_result)r;
			f[n].failed_session_count = e->by_result[r] - listed;
			n++;
		}
	}
	p->failures = f;
	p->n_failures = n;
	return res->oom;
}

/*
 * report_text - the JSON of domain's report for day..end into *json.
 * Returns 0, 1 when there are no results to report, -1 with err.
 */
static int
report_text(struct tlsrpt_reporter *r, const char *domain, const char *unique, int64_t day,
            int64_t end, char **json, size_t *len, char *err, size_t errlen)
{
	const struct conf *c = r->conf;
	struct results res = {.domain = domain, .include_none = c->report.include_no_policy};
	char id[TLSRPT_REPORT_ID_MAX];
	struct tlsrpt_doc doc;
	int rc;

	*json = NULL;
	/* A partial report (unique set: Redis stayed away) carries this gateway's
	 * own counts only: the other gateways send theirs, and counts of theirs
	 * merged here earlier would be reported twice. */
	if (report_store_foreach_day(
	        r->store, day,
	        unique != NULL && unique[0] != '\0' ? report_store_gateway(r->store) : NULL,
	        copy_entry, &res, err, errlen) < 0) {
		results_free(&res);
		return -1;
	}
	if (res.oom) {
		snprintf(err, errlen, "out of memory");
		results_free(&res);
		return -1;
	}
	if (res.n_pol == 0) {
		results_free(&res);
		return 1;
	}
	if (tlsrpt_report_id(id, sizeof(id), day, domain, c->report.submitter, unique) < 0) {
		snprintf(err, errlen, "no report id for %s from submitter %s", domain,
		         c->report.submitter);
		results_free(&res);
		return -1;
	}
	doc = (struct tlsrpt_doc){
	    .organization_name = c->report.organization,
	    .begin = day,
	    .end = end,
	    .contact_info = c->report.contact,
	    .report_id = id,
	    .policies = res.pol,
	    .n_policies = res.n_pol,
	};
	rc = tlsrpt_json_build(&doc, json, len, err, errlen);
	results_free(&res);
	return rc < 0 ? -1 : 0;
}

int
tlsrpt_reporter_json(struct tlsrpt_reporter *r, const char *domain, int64_t day, int64_t end,
                     char **out, size_t *outlen, char *err, size_t errlen)
{
	char why[256];

	day = tlsrpt_sched_day_of(day);
	/* Several gateways: the report as it would be sent, with the others' counts
	 * as Redis has them now; without Redis, as this store last read them. */
	if (r->shared != NULL && tlsrpt_shared_merge(r->shared, day, why, sizeof(why)) < 0)
		log_warn("event=tlsrpt-shared warning=\"the other gateways' counts as last read: "
		         "%s\"",
		         why);
	return report_text(r, domain, NULL, day, end, out, outlen, err, errlen);
}

/* --- the queue's operations ------------------------------------------------------ */

static int
random_hex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[32];

	if (n / 2 > sizeof(raw) || getrandom(raw, n / 2, 0) != (ssize_t)(n / 2))
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	buf[n / 2 * 2] = '\0';
	return 0;
}

/* add_dests - the destinations of rec into j (bodies built later). */
static void
add_dests(struct tlsrpt_job *j, const struct tlsrpt_record *rec)
{
	j->n_dest = 0;
	for (size_t i = 0; i < rec->n_rua && j->n_dest < TLSRPT_QUEUE_URIS; i++) {
		struct tlsrpt_dest *d = &j->dest[j->n_dest];
		char addr[TLSRPT_SEND_ADDR_MAX];
		enum tlsrpt_uri_kind k = tlsrpt_send_uri(rec->rua[i].uri, addr, sizeof(addr));

		if (k == TLSRPT_URI_BAD)
			continue;
		memset(d, 0, sizeof(*d));
		sts_strlcpy(d->uri, rec->rua[i].uri, sizeof(d->uri));
		d->https = k == TLSRPT_URI_HTTPS;
		if (!d->https)
			sts_strlcpy(d->addr, rec->rua[i].addr[0] != '\0' ? rec->rua[i].addr : addr,
			            sizeof(d->addr));
		j->n_dest++;
	}
}

/* --- several gateways: one sender per report ------------------------------------ */

/* lock_ms - the lock outlives one attempt at every destination; renewed before each. */
static unsigned
lock_ms(const struct tlsrpt_reporter *r)
{
	return (r->conf->report.timeout * (TLSRPT_QUEUE_URIS + 1u) + 60u) * 1000u;
}

/*
 * local_claim - may this process send j? The daemon and "stsproxy report
 * send" share the store: one of them sends each report at a time, and a
 * report one of them recorded settled is not sent by the other. Returns
 * report_store_delivery_claim()'s answer, with why set unless it is ours.
 */
static int
local_claim(struct tlsrpt_reporter *r, const struct tlsrpt_job *j, char *why, size_t whylen)
{
	char holder[REPORT_STORE_ERROR_LEN] = "", err[256] = "";
	int got = report_store_delivery_claim(r->store, j->day, j->domain, r->sender, wall_now(),
	                                      lock_ms(r) / 1000u, holder, sizeof(holder), err,
	                                      sizeof(err));

	if (got == REPORT_CLAIM_HELD)
		snprintf(why, whylen, "being sent by %s", holder);
	else if (got == REPORT_CLAIM_SETTLED)
		snprintf(why, whylen, "recorded settled by another sender");
	else if (got < 0)
		snprintf(why, whylen, "%s", err);
	return got;
}

/* count_skipped - a report left to another gateway, for the metrics. */
static void
count_skipped(struct tlsrpt_reporter *r)
{
	if (r->shared_stats != NULL)
		atomic_fetch_add_explicit(&r->shared_stats->skipped, 1, memory_order_relaxed);
}

/* shared_sync - publish this gateway's rows, then read the others' of day (if stale). */
static int
shared_sync(struct tlsrpt_reporter *r, int64_t day, char *err, size_t errlen)
{
	int64_t now = wall_now();

	if (tlsrpt_shared_push(r->shared, err, errlen) < 0)
		return -1;
	if (r->merged_day == day && now - r->merged_at < MERGE_FRESH_S)
		return 0;
	if (tlsrpt_shared_merge(r->shared, day, err, errlen) < 0)
		return -1;
	r->merged_day = day;
	r->merged_at = now;
	return 0;
}

/*
 * partial_id - the unique part of the id of this gateway's partial report
 * (several gateways may each send one): the letters and digits of its id,
 * at most TLSRPT_UNIQUE_MAX; "gw" when it has none.
 */
static void
partial_id(char out[TLSRPT_UNIQUE_MAX + 1], const char *gateway)
{
	size_t n = 0;

	for (const char *p = gateway; *p != '\0' && n < TLSRPT_UNIQUE_MAX; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9'))
			out[n++] = *p;
	out[n] = '\0';
	if (n == 0)
		sts_strlcpy(out, "gw", TLSRPT_UNIQUE_MAX + 1);
}

/*
 * shared_claim - may this gateway build and send j? DELIVERED: yes (it
 * holds the lock, the other gateways' rows are read; or Redis has not
 * answered for report.shared_wait: then with what the store has); PERM:
 * another gateway sent it; TEMP: another holds it, or Redis does not
 * answer yet.
 */
static enum tlsrpt_outcome
shared_claim(struct tlsrpt_reporter *r, struct tlsrpt_job *j, char *why, size_t whylen)
{
	char holder[REPORT_STORE_GATEWAY_LEN], err[256] = "", day[16];
	int64_t first = j->prep.first_at != 0 ? j->prep.first_at : wall_now();

	if (r->shared == NULL)
		return TLSRPT_OUT_DELIVERED;
	switch (tlsrpt_shared_claim(r->shared, j->day, j->domain, lock_ms(r), holder, err,
	                            sizeof(err))) {
	case TLSRPT_CLAIM_SENT:
		snprintf(why, whylen, "sent by gateway %s", holder);
		count_skipped(r);
		return TLSRPT_OUT_PERM;
	case TLSRPT_CLAIM_HELD:
		snprintf(why, whylen, "held by gateway %s", holder);
		return TLSRPT_OUT_TEMP;
	case TLSRPT_CLAIM_OURS:
		if (shared_sync(r, j->day, err, sizeof(err)) == 0)
			return TLSRPT_OUT_DELIVERED;
		break;
	case TLSRPT_CLAIM_DOWN:
		break;
	}
	if (wall_now() - first < (int64_t)r->conf->report.shared_wait) {
		snprintf(why, whylen, "shared counts: %s (waiting up to report.shared_wait)", err);
		return TLSRPT_OUT_TEMP;
	}
	log_warn("event=tlsrpt-shared domain=%s day=%s warning=\"%s; report.shared_wait is over: "
	         "sending the counts this gateway has\"",
	         j->domain, day_text(j->day, day, sizeof(day)), err);
	partial_id(j->unique, report_store_gateway(r->store));
	return TLSRPT_OUT_DELIVERED;
}

/*
 * op_prepare - section 3: the domain's _smtp._tls record says where; no
 * record (or an invalid one) means no report. Then the report text, gzip
 * (section 5.3, 5.4), the size limit, and a body for every destination.
 */
static enum tlsrpt_outcome
op_prepare(void *arg, struct tlsrpt_job *j, char *why, size_t whylen)
{
	struct tlsrpt_reporter *r = arg;
	const struct conf *c = r->conf;
	struct tlsrpt_record rec;
	enum tlsrpt_lookup_status ls;
	char err[256] = "", id[TLSRPT_REPORT_ID_MAX], name[TLSRPT_FILENAME_MAX];
	char *json = NULL;
	uint8_t *gz = NULL;
	size_t jlen = 0, gzlen = 0;
	enum tlsrpt_outcome o = TLSRPT_OUT_TEMP;
	int rc;

	ls = tlsrpt_lookup(r->resolver, j->domain, &rec, err, sizeof(err));
	switch (ls) {
	case TLSRPT_LOOKUP_FOUND:
		break;
	case TLSRPT_LOOKUP_NONE:
	case TLSRPT_LOOKUP_INVALID:
		snprintf(why, whylen, "no TLS-RPT record at _smtp._tls.%s (%s%s%s)", j->domain,
		         tlsrpt_lookup_status_name(ls), err[0] ? ": " : "", err);
		return TLSRPT_OUT_PERM;
	default:
		snprintf(why, whylen, "_smtp._tls.%s: %s%s%s", j->domain,
		         tlsrpt_lookup_status_name(ls), err[0] ? ": " : "", err);
		return TLSRPT_OUT_TEMP;
	}
	add_dests(j, &rec);
	if (j->n_dest == 0) {
		snprintf(why, whylen, "_smtp._tls.%s: no usable rua URI", j->domain);
		return TLSRPT_OUT_PERM;
	}
	rc = local_claim(r, j, why, whylen);
	if (rc != REPORT_CLAIM_OURS) {
		j->n_dest = 0;
		return rc == REPORT_CLAIM_SETTLED ? TLSRPT_OUT_PERM : TLSRPT_OUT_TEMP;
	}
	if ((o = shared_claim(r, j, why, whylen)) != TLSRPT_OUT_DELIVERED) {
		j->n_dest = 0;
		return o;
	}
	o = TLSRPT_OUT_TEMP;
	rc = report_text(r, j->domain, j->unique, j->day, j->end, &json, &jlen, err, sizeof(err));
	if (rc != 0) {
		snprintf(why, whylen, "%s", rc > 0 ? "no results to report" : err);
		j->n_dest = 0;
		return rc > 0 ? TLSRPT_OUT_PERM : TLSRPT_OUT_TEMP;
	}
	if (tlsrpt_gzip(json, jlen, &gz, &gzlen) < 0) {
		snprintf(why, whylen, "gzip failed");
		goto out;
	}
	j->gz_len = gzlen;
	if (gzlen > c->report.max_size) {
		snprintf(why, whylen, "the gzip report is %zu octets, report.max_size is %u", gzlen,
		         c->report.max_size);
		o = TLSRPT_OUT_TOO_BIG;
		goto out;
	}
	if (tlsrpt_report_id(id, sizeof(id), j->day, j->domain, c->report.submitter, j->unique) <
	        0 ||
	    tlsrpt_filename(name, sizeof(name), c->report.submitter, j->domain, j->day, j->end,
	                    j->unique) < 0) {
		snprintf(why, whylen, "no report id or file name for %s", j->domain);
		o = TLSRPT_OUT_PERM;
		goto out;
	}
	for (size_t i = 0; i < j->n_dest; i++) {
		struct tlsrpt_dest *d = &j->dest[i];
		char unique[33];
		char *msg = NULL;
		size_t mlen = 0;

		if (d->https) {
			if ((d->body = malloc(gzlen)) == NULL)
				goto oom;
			memcpy(d->body, gz, gzlen);
			d->len = gzlen;
			continue;
		}
		struct tlsrpt_mail_params mp = {
		    .from = tlsrpt_send_from(r->send),
		    .to = d->addr,
		    .policy_domain = j->domain,
		    .submitter = c->report.submitter,
		    .report_id = id,
		    .filename = name,
		    .unique = unique,
		    .now = wall_now(),
		    .gz = gz,
		    .gzlen = gzlen,
		};
		if (random_hex(unique, 32) < 0 ||
		    tlsrpt_mail_build(&mp, &msg, &mlen, err, sizeof(err)) < 0) {
			/* A bad address in the record: this destination only. */
			log_warn("event=tlsrpt-send domain=%s uri=%s result=skipped detail=\"%s\"",
			         j->domain, d->uri, err);
			memmove(d, d + 1, sizeof(*d) * (j->n_dest - i - 1));
			j->n_dest--;
			i--;
			continue;
		}
		d->body = (uint8_t *)msg;
		d->len = mlen;
	}
	o = j->n_dest > 0 ? TLSRPT_OUT_DELIVERED : TLSRPT_OUT_PERM;
	if (o == TLSRPT_OUT_PERM)
		snprintf(why, whylen, "no destination could take a message");
	goto out;
oom:
	snprintf(why, whylen, "out of memory");
	o = TLSRPT_OUT_TEMP;
	for (size_t i = 0; i < j->n_dest; i++) {
		free(j->dest[i].body);
		j->dest[i].body = NULL;
	}
out:
	free(json);
	free(gz);
	return o;
}

static enum tlsrpt_outcome
op_deliver(void *arg, const struct tlsrpt_job *j, const struct tlsrpt_dest *d, char *why,
           size_t whylen)
{
	struct tlsrpt_reporter *r = arg;
	char holder[REPORT_STORE_GATEWAY_LEN], err[256];

	/* Renew this process's claim; another that took it over (or settled the
	 * report) decides. Once this process recorded it sent, its other
	 * destinations still get it. A store that does not answer stops nobody. */
	if (j->state != TLSRPT_JOB_SENT) {
		switch (local_claim(r, j, why, whylen)) {
		case REPORT_CLAIM_HELD:
		case REPORT_CLAIM_SETTLED:
			r->left = true;
			return TLSRPT_OUT_PERM;
		default:
			break;
		}
	}
	if (r->shared != NULL) {
		/* Renew the lock; a gateway that took it over (ours lapsed) sends instead. */
		switch (tlsrpt_shared_claim(r->shared, j->day, j->domain, lock_ms(r), holder, err,
		                            sizeof(err))) {
		case TLSRPT_CLAIM_HELD:
		case TLSRPT_CLAIM_SENT:
			if (strcmp(holder, report_store_gateway(r->store)) == 0)
				break;
			snprintf(why, whylen, "taken over by gateway %s", holder);
			count_skipped(r);
			return TLSRPT_OUT_PERM;
		default:
			break; /* ours, or Redis is down: this gateway goes on */
		}
	}
	if (d->https)
		return tlsrpt_send_https(r->send, d->uri, d->body, d->len, why, whylen);
	return tlsrpt_send_mail(r->send, d->addr, d->body, d->len, why, whylen);
}

/* op_attempted - one log line and one count per attempt. */
static void
op_attempted(void *arg, const struct tlsrpt_job *j, const struct tlsrpt_dest *d,
             enum tlsrpt_outcome o, enum tlsrpt_state s, const char *why)
{
	struct tlsrpt_reporter *r = arg;
	const char *result = s == TLSRPT_S_DELIVERED ? "delivered"
	                     : s == TLSRPT_S_PENDING ? "retry"
	                     : s == TLSRPT_S_SKIPPED ? "skipped"
	                                             : "failed";
	char day[16], next[48] = "";

	day_text(j->day, day, sizeof(day));
	if (d == NULL) {
		/* Finding the record: no record is the common case, not worth a warning. */
		if (s == TLSRPT_S_PENDING)
			snprintf(next, sizeof(next), " next_in=%lld",
			         (long long)(j->prep.next_at - wall_now()));
		log_msg(o == TLSRPT_OUT_PERM ? LOG_LVL_INFO : LOG_LVL_WARN,
		        "event=tlsrpt-send domain=%s day=%s uri=- attempt=%u result=%s%s "
		        "detail=\"%s\"",
		        j->domain, day, j->prep.attempts, o == TLSRPT_OUT_PERM ? "skipped" : result,
		        next, why);
		return;
	}
	if (r->left) {
		/* Not an attempt: the other sender's outcome is the report's. */
		r->left = false;
		log_info("event=tlsrpt-send domain=%s day=%s uri=%s result=left detail=\"%s\"",
		         j->domain, day, d->uri, why);
		return;
	}
	atomic_fetch_add(&r->attempts[d->https ? TLSRPT_KIND_HTTPS : TLSRPT_KIND_MAILTO][o], 1);
	if (s == TLSRPT_S_PENDING)
		snprintf(next, sizeof(next), " next_in=%lld",
		         (long long)(d->a.next_at - wall_now()));
	log_msg(s == TLSRPT_S_DELIVERED ? LOG_LVL_NOTICE : LOG_LVL_WARN,
	        "event=tlsrpt-send domain=%s day=%s uri=%s attempt=%u result=%s size=%zu%s "
	        "detail=\"%s\"",
	        j->domain, day, d->uri, d->a.attempts, result, j->gz_len, next, why);
}

/* op_settled - the durable record of (domain, day): what makes a restart safe. */
static void
op_settled(void *arg, const struct tlsrpt_job *j, int64_t next_try)
{
	static const enum report_state map[] = {
	    [TLSRPT_JOB_PENDING] = REPORT_STATE_PENDING,
	    [TLSRPT_JOB_SENT] = REPORT_STATE_SENT,
	    [TLSRPT_JOB_FAILED] = REPORT_STATE_FAILED,
	    [TLSRPT_JOB_SKIPPED] = REPORT_STATE_SKIPPED,
	};
	struct tlsrpt_reporter *r = arg;
	struct report_delivery d;
	char err[256];

	memset(&d, 0, sizeof(d));
	d.day = j->day;
	sts_strlcpy(d.domain, j->domain, sizeof(d.domain));
	d.state = map[j->state];
	d.attempts = j->attempts;
	d.next_try = next_try;
	sts_strlcpy(d.last_error, j->last_error, sizeof(d.last_error));
	(void)tlsrpt_report_id(d.report_id, sizeof(d.report_id), j->day, j->domain,
	                       r->conf->report.submitter, j->unique);
	/* A partial report (Redis was away for report.shared_wait) is not marked:
	 * each gateway sends its own, and a mark would stop the others'. */
	if (j->state == TLSRPT_JOB_SENT && r->shared != NULL && j->unique[0] == '\0' &&
	    tlsrpt_shared_sent(r->shared, j->day, j->domain, err, sizeof(err)) < 0) {
		/* Until marked, another gateway that takes the lock once ours ran
		 * out would send it again: asked again every MARK_RETRY_S. */
		log_warn("event=tlsrpt-shared domain=%s warning=\"sent, not marked sent in Redis: "
		         "%s; trying again\"",
		         j->domain, err);
		if (r->n_unmarked < UNMARKED_MAX) {
			r->unmarked[r->n_unmarked].day = j->day;
			sts_strlcpy(r->unmarked[r->n_unmarked].domain, j->domain,
			            sizeof(r->unmarked[0].domain));
			r->n_unmarked++;
		}
	}
	switch (report_store_delivery_put(r->store, &d, r->sender, wall_now(), err, sizeof(err))) {
	case 0:
		if (j->state == TLSRPT_JOB_FAILED)
			r->failed++;
		break;
	case 1:
		/* Another process of this store sends it, or has settled it. */
		log_info("event=tlsrpt-send domain=%s note=\"the outcome of another sender of this "
		         "store stands\"",
		         j->domain);
		break;
	default:
		if (j->state == TLSRPT_JOB_FAILED)
			r->failed++;
		log_err("event=tlsrpt-send domain=%s state=%s error=\"cannot record: %s\"",
		        j->domain, tlsrpt_job_state_name(j->state), err);
		break;
	}
}

static int
op_stopping(void *arg)
{
	struct tlsrpt_reporter *r = arg;

	return atomic_load(&r->stop);
}

/* --- which domains ------------------------------------------------------------------ */

struct pick {
	struct tlsrpt_reporter *r;
	const char *only; /* one domain, or NULL */
	bool include_none;
	char (*domains)[STS_REPORT_DOMAIN_LEN];
	uint64_t *failures;
	size_t n, cap;
	int oom;
};

/* pick_entry - entries come ordered by domain: one candidate per domain. */
static int
pick_entry(void *arg, const struct report_store_entry *e)
{
	struct pick *p = arg;

	if (strcmp(e->domain, STS_REPORT_OTHER) == 0 || (p->only && strcmp(e->domain, p->only)))
		return 0;
	if (e->type == STS_PTYPE_NONE && !p->include_none)
		return 0;
	if (p->n == 0 || strcmp(p->domains[p->n - 1], e->domain) != 0) {
		if (p->n == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 64;
			void *nd = realloc(p->domains, cap * sizeof(*p->domains));
			void *nf = nd ? realloc(p->failures, cap * sizeof(*p->failures)) : NULL;

			if (nd != NULL)
				p->domains = nd;
			if (nf == NULL) {
				p->oom = 1;
				return 1;
			}
			p->failures = nf;
			p->cap = cap;
		}
		sts_strlcpy(p->domains[p->n], e->domain, sizeof(p->domains[p->n]));
		p->failures[p->n] = 0;
		p->n++;
	}
	p->failures[p->n - 1] += e->failure;
	return 0;
}

int
tlsrpt_reporter_queue_day(struct tlsrpt_reporter *r, int64_t day, int64_t end, const char *domain,
                          char *err, size_t errlen)
{
	const struct conf *c = r->conf;
	struct pick p = {.r = r, .only = domain, .include_none = c->report.include_no_policy};
	int64_t now = wall_now();
	char dtext[16];
	int queued = 0;

	day = tlsrpt_sched_day_of(day);
	/* Counts still in memory belong to the day too. */
	if (r->live != NULL && report_store_flush(r->store, r->live, now, err, errlen) < 0)
		log_warn("event=tlsrpt-run day=%s warning=\"flush: %s\"",
		         day_text(day, dtext, sizeof(dtext)), err);
	/* The domains only other gateways saw have a report too. */
	if (r->shared != NULL && shared_sync(r, day, err, errlen) < 0)
		log_warn("event=tlsrpt-run day=%s warning=\"shared counts: %s\"",
		         day_text(day, dtext, sizeof(dtext)), err);
	if (report_store_foreach_day(r->store, day, NULL, pick_entry, &p, err, errlen) < 0 ||
	    p.oom) {
		if (p.oom)
			snprintf(err, errlen, "out of memory");
		free(p.domains);
		free(p.failures);
		return -1;
	}
	for (size_t i = 0; i < p.n; i++) {
		struct report_delivery d;
		int64_t at = now;
		unsigned attempts = 0;
		int got;

		/* RFC 8460 section 4: by default only domains that had failures. */
		if (domain == NULL && c->report.only_failures && p.failures[i] == 0)
			continue;
		got = report_store_delivery_get(r->store, day, p.domains[i], &d, err, errlen);
		if (got < 0) {
			log_err("event=tlsrpt-run domain=%s error=\"%s\"", p.domains[i], err);
			continue;
		}
		if (got == 1 && d.state != REPORT_STATE_PENDING) {
			if (!r->catching_up)
				log_info("event=tlsrpt-run domain=%s day=%s state=%s attempts=%u "
				         "note=\"recorded already, not sent again\"",
				         p.domains[i], day_text(day, dtext, sizeof(dtext)),
				         report_state_name(d.state), d.attempts);
			continue;
		}
		if (got == 1) {
			attempts = d.attempts;
			if (d.next_try > at)
				at = d.next_try;
		}
		if (tlsrpt_queue_add(r->queue, p.domains[i], day, end, at, attempts) > 0)
			queued++;
	}
	if (!r->catching_up || queued > 0)
		log_info("event=tlsrpt-run day=%s domains=%zu queued=%d",
		         day_text(day, dtext, sizeof(dtext)), p.n, queued);
	free(p.domains);
	free(p.failures);
	return queued;
}

/* sleep_until - wait until t (wall clock) or a stop, in slices: the clock may step. */
static void
sleep_until(struct tlsrpt_reporter *r, int64_t t)
{
	pthread_mutex_lock(&r->mu);
	while (!atomic_load(&r->stop)) {
		int64_t now = wall_now(), wait = t - now;
		struct timespec ts;

		if (wait <= 0)
			break;
		if (wait > WAIT_SLICE_S)
			wait = WAIT_SLICE_S;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)wait;
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		if (wait == WAIT_SLICE_S)
			continue;
		break;
	}
	pthread_mutex_unlock(&r->mu);
}

/*
 * mark_retry - mark sent in Redis the reports whose mark failed, oldest
 * first, until one fails again (Redis still away). Returns when to try
 * next: INT64_MAX when none is left.
 */
static int64_t
mark_retry(struct tlsrpt_reporter *r, int64_t now)
{
	char err[256];
	size_t done = 0;

	while (done < r->n_unmarked) {
		if (tlsrpt_shared_sent(r->shared, r->unmarked[done].day, r->unmarked[done].domain,
		                       err, sizeof(err)) < 0)
			break;
		log_notice("event=tlsrpt-shared domain=%s result=marked-sent",
		           r->unmarked[done].domain);
		done++;
	}
	memmove(r->unmarked, r->unmarked + done, (r->n_unmarked - done) * sizeof(r->unmarked[0]));
	r->n_unmarked -= done;
	return r->n_unmarked > 0 ? now + MARK_RETRY_S : INT64_MAX;
}

int
tlsrpt_reporter_drain(struct tlsrpt_reporter *r)
{
	int64_t until = 0;

	r->failed = 0;
	while (!atomic_load(&r->stop)) {
		int64_t next = INT64_MAX, mark;

		if (tlsrpt_queue_len(r->queue) > 0)
			next = tlsrpt_queue_step(r->queue, wall_now);
		if (r->n_unmarked > 0) {
			/* The marks this process owes go beside the other reports' retries,
			 * and for a while after them: then the lock has run out anyway,
			 * and the other gateways decide by it alone. */
			int64_t now = wall_now();

			if (until == 0)
				until = now + MARK_WAIT_S;
			mark = mark_retry(r, now);
			if (r->n_unmarked > 0 && tlsrpt_queue_len(r->queue) == 0 && now >= until) {
				for (size_t i = 0; i < r->n_unmarked; i++)
					log_warn(
					    "event=tlsrpt-shared domain=%s warning=\"sent, never "
					    "marked sent in Redis: another gateway may send it "
					    "again\"",
					    r->unmarked[i].domain);
				r->n_unmarked = 0;
			}
			if (mark < next)
				next = mark;
		}
		if (tlsrpt_queue_len(r->queue) == 0 && r->n_unmarked == 0)
			break;
		sleep_until(r, next);
	}
	return (int)r->failed;
}

/* --- the daily thread ----------------------------------------------------------------- */

static int64_t
random_delay(unsigned max)
{
	uint32_t v = 0;

	if (max == 0)
		return 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint32_t)wall_now() * 2654435761u;
	return (int64_t)(v % ((uint32_t)max + 1));
}

/*
 * shared_tick - publish this gateway's counts every flush interval, and
 * right after 00:00 UTC with the day's last counts flushed first: the
 * reports of the day, built TLSRPT_SHARED_MIN_DELAY later by any gateway,
 * find them; and the marks of reports sent but not marked sent in Redis
 * yet. Returns when the next tick is due.
 */
static int64_t
shared_tick(struct tlsrpt_reporter *r, int64_t now, int64_t *next_push, int64_t *boundary)
{
	char err[256];
	int64_t mark, next;

	if (r->shared == NULL)
		return INT64_MAX;
	if (now >= *boundary) {
		if (r->live != NULL &&
		    report_store_flush(r->store, r->live, now, err, sizeof(err)) < 0)
			log_warn("event=tlsrpt-shared warning=\"flush at the day's end: %s\"", err);
		*boundary = tlsrpt_sched_day_of(now) + TLSRPT_DAY + 1;
		*next_push = now;
	}
	if (now >= *next_push) {
		/* A push that fails (Redis down, an ACL without the hash commands)
		 * leaves this gateway's counts out of the others' reports: said at
		 * the first failure and at the recovery, counted every time. */
		if (tlsrpt_shared_push(r->shared, err, sizeof(err)) < 0) {
			if (!r->push_failing)
				log_warn("event=tlsrpt-shared result=failed reason=\"%s\"", err);
			r->push_failing = true;
		} else if (r->push_failing) {
			log_notice("event=tlsrpt-shared result=recovered");
			r->push_failing = false;
		}
		*next_push = now + (int64_t)r->conf->report_store.flush_interval;
	}
	mark = r->n_unmarked > 0 ? mark_retry(r, now) : INT64_MAX;
	next = *next_push < *boundary ? *next_push : *boundary;
	return mark < next ? mark : next;
}

/* The days the store holds results for, oldest first (at most a retention's worth). */
struct days {
	int64_t day[64];
	size_t n;
};

static int
add_day(void *arg, int64_t day, unsigned n_domains)
{
	struct days *d = arg;

	(void)n_domains;
	if (d->n < sizeof(d->day) / sizeof(d->day[0]))
		d->day[d->n++] = day;
	return 0;
}

/*
 * catch_up - at start, the reports of the days before yesterday that the
 * store still holds and that never finished: the daemon was down when they
 * were due, or stopped while one was retried (RFC 8460 section 4.1: every
 * day has its report). A report recorded as sent, failed or skipped is
 * not sent again; a pending one resumes its retries. Yesterday's follows
 * the daily schedule.
 */
static void
catch_up(struct tlsrpt_reporter *r, int64_t now)
{
	struct days d = {.n = 0};
	int64_t yesterday = tlsrpt_sched_day_of(now) - TLSRPT_DAY;
	char err[256], dtext[16];

	if (report_store_days(r->store, add_day, &d, err, sizeof(err)) < 0) {
		log_warn("event=tlsrpt-catch-up error=\"%s\"", err);
		return;
	}
	r->catching_up = true;
	for (size_t i = 0; i < d.n && !atomic_load(&r->stop); i++)
		if (d.day[i] < yesterday &&
		    tlsrpt_reporter_queue_day(r, d.day[i], d.day[i] + TLSRPT_DAY - 1, NULL, err,
		                              sizeof(err)) < 0)
			log_err("event=tlsrpt-catch-up day=%s error=\"%s\"",
			        day_text(d.day[i], dtext, sizeof(dtext)), err);
	r->catching_up = false;
}

static void *
thread_main(void *arg)
{
	struct tlsrpt_reporter *r = arg;
	int64_t done = TLSRPT_NO_DAY, day = 0, at = 0;
	int64_t next_push = 0, boundary = tlsrpt_sched_day_of(wall_now()) + TLSRPT_DAY + 1;
	bool planned = false;
	char err[256], dtext[16];

	if (!r->push_only)
		catch_up(r, wall_now());
	while (!atomic_load(&r->stop)) {
		int64_t now = wall_now(), next, tick;

		tick = shared_tick(r, now, &next_push, &boundary);
		if (r->push_only) {
			sleep_until(r, tick);
			continue;
		}
		/* RFC 8460 section 5.3: after 00:00 UTC, spread by a random delay. */
		if (!planned) {
			int64_t delay = random_delay(r->conf->report.delay_max);

			if (r->shared != NULL && delay < TLSRPT_SHARED_MIN_DELAY)
				delay = TLSRPT_SHARED_MIN_DELAY;
			at = tlsrpt_sched_next(now, done, delay, &day);
			planned = true;
			log_info("event=tlsrpt-schedule day=%s in=%lld",
			         day_text(day, dtext, sizeof(dtext)), (long long)(at - now));
		}
		if (now >= at) {
			if (tlsrpt_reporter_queue_day(r, day, day + TLSRPT_DAY - 1, NULL, err,
			                              sizeof(err)) < 0) {
				log_err("event=tlsrpt-run day=%s error=\"%s\"",
				        day_text(day, dtext, sizeof(dtext)), err);
				at = now + WAIT_SLICE_S; /* the store may come back */
				sleep_until(r, at);
				continue;
			}
			done = day;
			planned = false;
			continue;
		}
		next = tlsrpt_queue_step(r->queue, wall_now);
		if (tick < next)
			next = tick;
		if (r->n_unmarked > 0 && now + MARK_RETRY_S < next)
			next = now + MARK_RETRY_S; /* a mark failed in this step */
		sleep_until(r, next < at ? next : at);
	}
	return NULL;
}

int
tlsrpt_reporter_start(struct tlsrpt_reporter *r, char *err, size_t errlen)
{
	int e;

	if (r->started)
		return 0;
	if ((e = pthread_create(&r->thread, NULL, thread_main, r)) != 0) {
		snprintf(err, errlen, "report thread: %s", strerror(e));
		return -1;
	}
	r->started = true;
	return 0;
}

void
tlsrpt_reporter_stop(struct tlsrpt_reporter *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	atomic_store(&r->stop, true);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	tlsrpt_send_abort(r->send);
	if (r->started) {
		pthread_join(r->thread, NULL);
		r->started = false;
	}
}

uint64_t
tlsrpt_reporter_attempts(struct tlsrpt_reporter *r, enum tlsrpt_kind k, enum tlsrpt_outcome o)
{
	if (r == NULL || (unsigned)k >= TLSRPT_KIND_MAX || (unsigned)o >= TLSRPT_OUT_MAX)
		return 0;
	return atomic_load(&r->attempts[k][o]);
}

struct tlsrpt_reporter *
tlsrpt_reporter_new(const struct tlsrpt_reporter_params *p, char *err, size_t errlen)
{
	const struct conf *c = p->conf;
	struct tlsrpt_retry retry = {.first = c->report.retry_first, .span = c->report.retry_for};
	struct tlsrpt_queue_ops ops = {
	    .prepare = op_prepare,
	    .deliver = op_deliver,
	    .attempted = op_attempted,
	    .settled = op_settled,
	    .stopping = op_stopping,
	};
	struct sts_dns_params dp = {
	    .forwarders = (const char *const *)c->dns.forwarders,
	    .n_forwarders = c->dns.n_forwarders,
	    .trust_anchor_file = c->dns.trust_anchor_file,
	    .timeout_ms = c->dns.timeout * 1000u,
	};
	struct tlsrpt_reporter *r;
	pthread_condattr_t ca;

	/* Section 4.4: every report names its organization, a contact and the submitter. */
	if (!p->push_only && (c->report.organization == NULL || c->report.contact == NULL ||
	                      c->report.submitter == NULL)) {
		snprintf(err, errlen,
		         "%s: report.%s is not set: a report needs it (RFC 8460 section 4.4)",
		         c->path,
		         c->report.organization == NULL ? "organization"
		         : c->report.contact == NULL    ? "contact"
		                                        : "submitter");
		return NULL;
	}
	if (p->store == NULL) {
		snprintf(err, errlen, "no report store");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "report: out of memory");
		return NULL;
	}
	r->conf = c;
	r->store = p->store;
	snprintf(r->sender, sizeof(r->sender), "%s pid %ld", report_store_gateway(p->store),
	         (long)getpid());
	r->live = p->live;
	r->push_only = p->push_only;
	r->shared_stats = p->shared_stats;
	r->merged_day = TLSRPT_NO_DAY;
	atomic_init(&r->stop, false);
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	ops.arg = r;
	if (c->shared.enabled) {
		struct tlsrpt_shared_params sp = {
		    .conf = c, .store = p->store, .stats = p->shared_stats};

		if ((r->shared = tlsrpt_shared_new(&sp)) == NULL) {
			snprintf(err, errlen, "report: out of memory");
			goto fail;
		}
	} else if (p->push_only) {
		snprintf(err, errlen, "report: nothing to push without a shared group");
		goto fail;
	}
	if (!p->push_only && ((r->send = tlsrpt_send_new(c, err, errlen)) == NULL ||
	                      (r->resolver = tlsrpt_resolver_new(&dp, err, errlen)) == NULL))
		goto fail;
	if ((r->queue = tlsrpt_queue_new(&ops, &retry)) == NULL) {
		snprintf(err, errlen, "report: out of memory");
		goto fail;
	}
	return r;
fail:
	tlsrpt_reporter_free(r);
	return NULL;
}

void
tlsrpt_reporter_free(struct tlsrpt_reporter *r)
{
	if (r == NULL)
		return;
	tlsrpt_reporter_stop(r);
	tlsrpt_queue_free(r->queue);
	tlsrpt_resolver_free(r->resolver);
	tlsrpt_send_free(r->send);
	tlsrpt_shared_free(r->shared);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
