/*
 * sts_dane_dns.c - the DNS lookups that make a DANE state (see
 * sts_dane_dns.h).
 *
 * A lookup is a job: one MX query, then per host an address query and up
 * to two TLSA queries, all on the loop's resolver. Each host moves
 *
 *   ADDR -> TLSA_BASE (its CNAME expansion) -> TLSA_NAME -> DONE
 *
 * skipping TLSA_BASE when the addresses came without a CNAME, and the job
 * ends when the last host is done: the state is packed, stored in the
 * shared table and handed to the callback, after the job is freed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "policy/sts_dane_dns.h"
#include "policy/sts_rdata.h"
#include "policy/sts_tlsa.h"

enum step {
	S_ADDR = 0,
	S_TLSA_BASE, /* _25._tcp.<the name CNAMEs led to> */
	S_TLSA_NAME, /* _25._tcp.<the MX host name> */
	S_DONE,
};

struct job;

/* One host's queries; its callbacks find the job through it. */
struct hostq {
	struct job *j;
	size_t i;
	uint64_t q;
	enum step step;
};

struct job {
	struct job *next, *prev;
	struct sts_dane_dns *dd;
	uint64_t id, mx_q, timer;
	sts_dane_dns_cb *cb;
	void *arg;
	size_t pending;
	uint32_t ttl; /* the shortest TTL of the answers so far */
	struct hostq hq[STS_DANE_MAX_HOSTS];
	struct sts_dane_build b;
};

struct sts_dane_dns {
	struct sts_dane_dns_params p;
	struct job *head;
	uint64_t next_id;
};

static void finish(struct job *j);

struct sts_dane_dns *
sts_dane_dns_new(const struct sts_dane_dns_params *p)
{
	struct sts_dane_dns *dd;

	if (p->loop == NULL || p->dns == NULL || p->seen == NULL ||
	    (dd = calloc(1, sizeof(*dd))) == NULL)
		return NULL;
	dd->p = *p;
	return dd;
}

static void
job_unlink(struct job *j)
{
	struct sts_dane_dns *dd = j->dd;

	if (j->prev != NULL)
		j->prev->next = j->next;
	else if (dd->head == j)
		dd->head = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
}

/* job_free - cancel what j waits for and free it. */
static void
job_free(struct job *j)
{
	struct sts_dane_dns *dd = j->dd;

	job_unlink(j);
	loop_timer_cancel(dd->p.loop, j->timer);
	sts_dns_cancel(dd->p.dns, j->mx_q);
	for (size_t i = 0; i < STS_DANE_MAX_HOSTS; i++)
		sts_dns_cancel(dd->p.dns, j->hq[i].q);
	free(j);
}

void
sts_dane_dns_free(struct sts_dane_dns *dd)
{
	if (dd == NULL)
		return;
	while (dd->head != NULL)
		job_free(dd->head);
	free(dd);
}

void
sts_dane_dns_cancel(struct sts_dane_dns *dd, uint64_t id)
{
	if (dd == NULL || id == 0)
		return;
	for (struct job *j = dd->head; j != NULL; j = j->next)
		if (j->id == id) {
			job_free(j);
			return;
		}
}

static void
ttl_add(struct job *j, uint32_t ttl)
{
	if (ttl < j->ttl)
		j->ttl = ttl;
}

static void __attribute__((format(printf, 3, 4)))
set_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, len, fmt, ap); /* a cut reason is still a reason */
	va_end(ap);
}

/* host_failed - section 2.2.1: no secure answer for host i; never a fallback. */
static void
host_failed(struct job *j, size_t i, const char *what, const struct sts_dns_answer *a)
{
	j->b.host[i].state = STS_DANE_HOST_FAILED;
	/* RFC 8460 section 4.3.2.1: no valid records from the resolver, bogus or not */
	j->b.host[i].problem = STS_RESULT_DNSSEC_INVALID;
	set_why(j->b.host[i].why, sizeof(j->b.host[i].why), "%s: %s%s%s", what,
	        a != NULL ? sts_dns_status_name(a->status) : "lookup could not start",
	        a != NULL && a->why[0] != '\0' ? ": " : "", a != NULL ? a->why : "");
}

static void
host_done(struct hostq *hq)
{
	struct job *j = hq->j;

	hq->step = S_DONE;
	if (--j->pending == 0)
		finish(j);
}

static sts_dns_cb tlsa_cb;

/* ask_tlsa - the TLSA RRset of _25._tcp.<base> (RFC 7672 section 2.2.3); false if not asked. */
static bool
ask_tlsa(struct hostq *hq, const char *base, enum step step)
{
	struct job *j = hq->j;
	char name[STS_RDATA_NAME_MAX + 2];

	hq->step = step;
	if ((size_t)snprintf(name, sizeof(name), "_25._tcp.%s", base) >= sizeof(name) ||
	    (hq->q = sts_dns_tlsa(j->dd->p.dns, name, tlsa_cb, hq)) == 0) {
		host_failed(j, hq->i, "TLSA", NULL);
		return false;
	}
	sts_strlcpy(j->b.host[hq->i].base, base, sizeof(j->b.host[hq->i].base));
	return true;
}

/* keep_tlsa - the usable records of a secure TLSA answer for host i. */
static void
keep_tlsa(struct job *j, size_t i, const struct sts_dns_answer *a)
{
	struct sts_dane_build *b = &j->b;
	size_t unusable = 0;

	for (size_t k = 0; k < a->n; k++) {
		struct tls_tlsa rr;

		/* RFC 7672 section 3.1.3: unusable records are as if absent, and
		 * only usable ones are kept, within bounds */
		if (sts_tlsa_rdata(a->rdata[k].data, a->rdata[k].len, &rr) < 0 ||
		    !tls_tlsa_usable(&rr, NULL)) {
			unusable++;
			continue;
		}
		if (b->host[i].n_tlsa == STS_DANE_MAX_TLSA ||
		    rr.len > sizeof(b->data) - b->data_used) {
			/* more than a domain may publish here: not deliverable, said why */
			b->host[i].state = STS_DANE_HOST_FAILED;
			b->host[i].problem = STS_RESULT_TLSA_INVALID;
			set_why(b->host[i].why, sizeof(b->host[i].why),
			        "TLSA RRset of %s larger than %d records or %d octets",
			        b->host[i].base, STS_DANE_MAX_TLSA, STS_DANE_DATA_MAX);
			b->host[i].n_tlsa = 0;
			return;
		}
		memcpy(b->data + b->data_used, rr.data, rr.len);
		rr.data = b->data + b->data_used;
		b->data_used += rr.len;
		b->host[i].tlsa[b->host[i].n_tlsa++] = rr;
	}
	if (b->host[i].n_tlsa > 0) {
		b->host[i].state = STS_DANE_HOST_USABLE;
		return;
	}
	/* Section 2.2: TLSA records, none usable: TLS stays mandatory. */
	b->host[i].state = STS_DANE_HOST_UNUSABLE;
	b->host[i].problem = STS_RESULT_TLSA_INVALID;
	set_why(b->host[i].why, sizeof(b->host[i].why), "%zu TLSA record%s at %s, none usable",
	        unusable, unusable == 1 ? "" : "s", b->host[i].base);
}

static void
tlsa_cb(void *arg, const struct sts_dns_answer *a)
{
	struct hostq *hq = arg;
	struct job *j = hq->j;
	size_t i = hq->i;

	hq->q = 0;
	switch (a->status) {
	case STS_DNS_OK:
	case STS_DNS_NXDOMAIN:
	case STS_DNS_NODATA:
		ttl_add(j, a->ttl);
		if (a->status == STS_DNS_OK && a->secure) {
			keep_tlsa(j, i, a);
			break;
		}
		/* Section 2.2.3: nothing (secure) at the expanded name: the host name's. */
		if (hq->step == S_TLSA_BASE && ask_tlsa(hq, j->b.host[i].name, S_TLSA_NAME))
			return;
		/* An insecure TLSA RRset, or none: DANE does not apply to this host. */
		break;
	default:
		/* Section 2.2.1: SERVFAIL or bogus: the host cannot be used now. */
		host_failed(j, i, "TLSA", a);
		break;
	}
	host_done(hq);
}

static void
addr_cb(void *arg, const struct sts_dns_answer *a)
{
	struct hostq *hq = arg;
	struct job *j = hq->j;
	size_t i = hq->i;
	const char *canon = a->canon;

	hq->q = 0;
	switch (a->status) {
	case STS_DNS_OK:
		ttl_add(j, a->ttl);
		for (size_t k = 0; k < a->n && k < STS_DANE_MAX_ADDR; k++)
			j->b.host[i].addr[j->b.host[i].n_addr++] = a->addr[k];
		/* Section 2.2.2: TLSA records only for hosts with secure addresses. */
		if (!a->secure)
			break;
		if (canon[0] != '\0' && strcasecmp(canon, j->b.host[i].name) != 0) {
			if (ask_tlsa(hq, canon, S_TLSA_BASE))
				return;
		} else if (ask_tlsa(hq, j->b.host[i].name, S_TLSA_NAME)) {
			return;
		}
		break;
	case STS_DNS_NXDOMAIN:
	case STS_DNS_NODATA:
		/* no address: nothing to connect to, nothing to authenticate */
		ttl_add(j, a->ttl);
		break;
	default:
		host_failed(j, i, "addresses", a);
		break;
	}
	host_done(hq);
}

static int
mx_pref_cmp(const void *a, const void *b)
{
	const struct sts_dns_mx *x = a, *y = b;

	return (x->pref > y->pref) - (x->pref < y->pref);
}

/* add_host - one MX host, once; the null MX (RFC 7505) names none. */
static void
add_host(struct sts_dane_build *b, const char *host)
{
	if (host[0] == '\0' || b->n_host >= STS_DANE_MAX_HOSTS)
		return;
	for (size_t i = 0; i < b->n_host; i++)
		if (strcasecmp(b->host[i].name, host) == 0)
			return;
	sts_strlcpy(b->host[b->n_host].name, host, sizeof(b->host[0].name));
	sts_lower(b->host[b->n_host].name);
	sts_strlcpy(b->host[b->n_host].base, b->host[b->n_host].name, sizeof(b->host[0].base));
	b->n_host++;
}

static void
mx_cb(void *arg, const struct sts_dns_answer *a)
{
	struct job *j = arg;
	struct sts_dane_build *b = &j->b;
	struct sts_dns_mx mx[STS_DNS_MAX_RECORDS];
	size_t n;

	j->mx_q = 0;
	switch (a->status) {
	case STS_DNS_OK:
		n = a->n < STS_DNS_MAX_RECORDS ? a->n : STS_DNS_MAX_RECORDS;
		memcpy(mx, a->mx, n * sizeof(mx[0]));
		qsort(mx, n, sizeof(mx[0]), mx_pref_cmp);
		for (size_t i = 0; i < n; i++)
			add_host(b, mx[i].host);
		break;
	case STS_DNS_NXDOMAIN:
	case STS_DNS_NODATA:
		/* RFC 5321 section 5.1, RFC 7672 section 2.2.1: the domain is its own host. */
		add_host(b, b->domain);
		break;
	case STS_DNS_BOGUS:
		b->status = STS_DANE_BOGUS;
		set_why(b->why, sizeof(b->why), "MX %s: %s", b->domain, a->why);
		finish(j);
		return;
	default:
		b->status = STS_DANE_TEMPFAIL;
		set_why(b->why, sizeof(b->why), "MX %s: %s%s%s", b->domain,
		        sts_dns_status_name(a->status), a->why[0] != '\0' ? ": " : "", a->why);
		finish(j);
		return;
	}
	ttl_add(j, a->ttl);
	b->mx_secure = a->secure;
	/* Section 2.2.1: DANE rests on a secure MX RRset, or (half-DANE, by
	 * choice) on the hosts' own secure records. */
	if (b->n_host == 0 || (!a->secure && !j->dd->p.insecure_mx)) {
		b->status = STS_DANE_NONE;
		b->n_host = a->secure ? b->n_host : 0;
		finish(j);
		return;
	}
	b->status = STS_DANE_HOSTS;
	for (size_t i = 0; i < b->n_host; i++) {
		struct hostq *hq = &j->hq[i];

		*hq = (struct hostq){.j = j, .i = i, .step = S_ADDR};
		if ((hq->q = sts_dns_addr(j->dd->p.dns, b->host[i].name, addr_cb, hq)) == 0)
			host_failed(j, i, "addresses", NULL);
		else
			j->pending++;
	}
	if (j->pending == 0)
		finish(j);
}

/* until - when an answer of ttl seconds, within [ttl_min, ttl_max], stops being fresh. */
static uint64_t
until(const struct sts_dane_dns *dd, uint32_t ttl)
{
	uint64_t s = ttl < dd->p.ttl_min   ? dd->p.ttl_min
	             : ttl > dd->p.ttl_max ? dd->p.ttl_max
	                                   : ttl;

	return loop_now_ms(dd->p.loop) + s * 1000u;
}

/* finish - pack the state, remember it, free the job, then tell the caller. */
static void
finish(struct job *j)
{
	struct sts_dane_dns *dd = j->dd;
	const struct sts_dane_state *st = NULL;
	struct sts_dane_state *made;
	sts_dane_dns_cb *cb = j->cb;
	void *arg = j->arg;

	job_unlink(j);
	if (j->b.status == STS_DANE_TEMPFAIL) {
		/* RFC 8767 section 5: the last state stands a while; a DNSSEC failure never does */
		log_notice("event=dane-lookup domain=%s result=tempfail reason=\"%s\"", j->b.domain,
		           j->b.why);
		st = (const struct sts_dane_state *)(void *)sts_seen_get_ref(
		    dd->p.seen, j->b.domain, strlen(j->b.domain), 0);
		if (st != NULL) {
			sts_seen_hold(dd->p.seen, j->b.domain, STS_SEEN_REF, NULL,
			              loop_now_ms(dd->p.loop) + STS_DANE_FAIL_HOLD_MS);
		} else {
			if (!dd->p.defer_on_dns_failure) {
				j->b.status = STS_DANE_NONE;
				j->b.n_host = 0;
			}
			st = sts_dane_state_new(&j->b, loop_now_ms(dd->p.loop));
		}
	} else {
		if (j->b.status == STS_DANE_BOGUS)
			log_notice("event=dane-lookup domain=%s result=%s reason=\"%s\"",
			           j->b.domain, sts_result_name(STS_RESULT_DNSSEC_INVALID),
			           j->b.why);
		if ((made = sts_dane_state_new(&j->b, until(dd, j->ttl))) != NULL)
			(void)sts_seen_put_ref(dd->p.seen, j->b.domain, &made->ref);
		st = made;
	}
	loop_timer_cancel(dd->p.loop, j->timer);
	free(j);
	cb(arg, st);
	sts_dane_release(st);
}

static void
finish_later(struct loop *loop, void *arg)
{
	struct job *j = arg;

	(void)loop;
	j->timer = 0;
	finish(j);
}

uint64_t
sts_dane_dns_lookup(struct sts_dane_dns *dd, const char *domain, sts_dane_dns_cb *cb, void *arg)
{
	struct job *j;
	size_t len;

	if (dd == NULL || cb == NULL || domain == NULL || (len = strnlen(domain, 254)) == 0 ||
	    len >= 254 || (j = calloc(1, sizeof(*j))) == NULL)
		return 0;
	j->dd = dd;
	j->cb = cb;
	j->arg = arg;
	j->ttl = UINT32_MAX;
	memcpy(j->b.domain, domain, len + 1);
	sts_lower(j->b.domain);
	if ((j->mx_q = sts_dns_mx(dd->p.dns, j->b.domain, mx_cb, j)) == 0) {
		/* the callback never runs inside this call */
		j->b.status = STS_DANE_TEMPFAIL;
		set_why(j->b.why, sizeof(j->b.why), "MX %s: lookup could not start", j->b.domain);
		if ((j->timer = loop_timer_add(dd->p.loop, 0, finish_later, j)) == 0) {
			free(j);
			return 0;
		}
	}
	j->id = ++dd->next_id;
	j->next = dd->head;
	if (dd->head != NULL)
		dd->head->prev = j;
	dd->head = j;
	return j->id;
}
