/*
 * sts_dns.c - libunbound driven from our event loop.
 *
 * libunbound resolves in its own background thread and writes finished
 * answers into a pipe whose read end is ub_fd(); we watch that fd and call
 * ub_process(), which runs libunbound's callbacks on the loop's thread.
 * Each of our lookups owns one or two libunbound queries (A and AAAA for
 * addresses) and a loop timer; whichever ends first, the last answer or the
 * timer, reports once and frees the lookup.
 *
 * libunbound guarantees that a query it was told to ub_cancel() never calls
 * back, so a cancelled lookup can be freed at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <unbound.h>

#include "core/log.h"
#include "policy/sts_dns.h"
#include "policy/sts_rdata.h"

#define DNS_DEFAULT_TIMEOUT_MS 5000
#define RR_CLASS_IN            1
#define RR_TYPE_A              1
#define RR_TYPE_MX             15
#define RR_TYPE_TXT            16
#define RR_TYPE_AAAA           28
#define RR_TYPE_TLSA           52

enum dns_kind {
	K_TXT = 0,
	K_MX,
	K_ADDR,
	K_TLSA,
};

struct dns_query;

/* One libunbound query; mydata for its callback. */
struct dns_sub {
	struct dns_query *q;
	int ub_id;
	int rrtype;
	int pending; /* asked and not answered yet */
	int err;     /* libunbound error code, 0 if it answered */
	struct ub_result *res;
};

struct dns_query {
	struct dns_query *next, *prev;
	struct sts_dns *d;
	uint64_t id;
	enum dns_kind kind;
	int n_sub;
	struct dns_sub sub[2];
	uint64_t timer;
	sts_dns_cb *cb;
	void *arg;
};

struct sts_dns {
	struct loop *loop;
	struct ub_ctx *ctx;
	int fd;
	unsigned timeout_ms;
	uint64_t next_id;
	struct dns_query *head;
	int depth; /* > 0 while our callbacks run: a free must wait */
	int dying;
};

static const char *const status_names[] = {
    [STS_DNS_OK] = "ok",         [STS_DNS_NXDOMAIN] = "nxdomain",
    [STS_DNS_NODATA] = "nodata", [STS_DNS_TEMPFAIL] = "tempfail",
    [STS_DNS_BOGUS] = "bogus",   [STS_DNS_MALFORMED] = "malformed",
};

/* sts_dns_status_name - the name of a status for logs. */
const char *
sts_dns_status_name(enum sts_dns_status status)
{
	if ((unsigned)status < sizeof(status_names) / sizeof(status_names[0]))
		return status_names[status];
	return "unknown";
}

static void
set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	if (err != NULL && errlen > 0 && snprintf(err, errlen, fmt, a, b) >= (int)errlen)
		err[errlen - 1] = '\0'; /* a cut message is still useful */
}

static void
query_unlink(struct sts_dns *d, struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		d->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->next = q->prev = NULL;
}

/* Stop everything q still waits for and free it; its callback is not run. */
static void
query_drop(struct sts_dns *d, struct dns_query *q)
{
	loop_timer_cancel(d->loop, q->timer);
	for (int i = 0; i < q->n_sub; i++) {
		if (q->sub[i].pending)
			(void)ub_cancel(d->ctx, q->sub[i].ub_id);
		ub_resolve_free(q->sub[i].res);
	}
	free(q);
}

/* The verdict on one libunbound answer, before its rdata is looked at. */
static enum sts_dns_status
sub_status(const struct dns_sub *s, char *why, size_t whylen)
{
	const struct ub_result *r = s->res;

	if (s->pending) {
		snprintf(why, whylen, "timed out");
		return STS_DNS_TEMPFAIL;
	}
	if (s->err != 0 || r == NULL) {
		snprintf(why, whylen, "resolver: %s", ub_strerror(s->err));
		return STS_DNS_TEMPFAIL;
	}
	if (r->bogus) {
		snprintf(why, whylen, "DNSSEC bogus: %s",
		         r->why_bogus ? r->why_bogus : "no reason");
		return STS_DNS_BOGUS;
	}
	if (r->rcode == ns_r_nxdomain) {
		snprintf(why, whylen, "NXDOMAIN");
		return STS_DNS_NXDOMAIN;
	}
	if (r->rcode != ns_r_noerror) {
		snprintf(why, whylen, "rcode %d", r->rcode);
		return STS_DNS_TEMPFAIL;
	}
	if (!r->havedata || r->data == NULL || r->data[0] == NULL) {
		snprintf(why, whylen, "no data");
		return STS_DNS_NODATA;
	}
	/* CNAMEs were followed: the final owner must still be a sane name. */
	if (r->canonname != NULL &&
	    strnlen(r->canonname, STS_RDATA_NAME_MAX + 2) > STS_RDATA_NAME_MAX + 1) {
		snprintf(why, whylen, "canonical name too long");
		return STS_DNS_MALFORMED;
	}
	return STS_DNS_OK;
}

static size_t
count_data(const struct ub_result *r)
{
	size_t n = 0;

	while (r->data[n] != NULL)
		n++;
	return n;
}

static enum sts_dns_status
fill_txt(struct sts_dns_answer *a, const struct ub_result *r)
{
	char buf[STS_RDATA_TXT_MAX + 1];
	size_t n = count_data(r);

	if (n > STS_DNS_MAX_RECORDS) {
		snprintf(a->why, sizeof(a->why), "%zu TXT records, limit %d", n,
		         STS_DNS_MAX_RECORDS);
		return STS_DNS_MALFORMED;
	}
	a->txt = calloc(n, sizeof(*a->txt));
	a->txt_len = calloc(n, sizeof(*a->txt_len));
	if (a->txt == NULL || a->txt_len == NULL)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		int len = r->len[i] < 0 ? -1
		                        : sts_rdata_txt((const uint8_t *)r->data[i],
		                                        (size_t)r->len[i], buf, sizeof(buf));

		if (len < 0) {
			snprintf(a->why, sizeof(a->why), "malformed or oversized TXT record");
			return STS_DNS_MALFORMED;
		}
		a->txt[i] = malloc((size_t)len + 1);
		if (a->txt[i] == NULL)
			goto nomem;
		memcpy(a->txt[i], buf, (size_t)len + 1);
		a->txt_len[i] = (size_t)len;
		a->n = i + 1;
	}
	return STS_DNS_OK;
nomem:
	snprintf(a->why, sizeof(a->why), "out of memory");
	return STS_DNS_TEMPFAIL;
}

static enum sts_dns_status
fill_mx(struct sts_dns_answer *a, const struct ub_result *r)
{
	size_t n = count_data(r);

	if (n > STS_DNS_MAX_RECORDS) {
		snprintf(a->why, sizeof(a->why), "%zu MX records, limit %d", n,
		         STS_DNS_MAX_RECORDS);
		return STS_DNS_MALFORMED;
	}
	a->mx = calloc(n, sizeof(*a->mx));
	if (a->mx == NULL) {
		snprintf(a->why, sizeof(a->why), "out of memory");
		return STS_DNS_TEMPFAIL;
	}
	for (size_t i = 0; i < n; i++) {
		if (r->len[i] < 0 ||
		    sts_rdata_mx((const uint8_t *)r->data[i], (size_t)r->len[i], &a->mx[i].pref,
		                 a->mx[i].host, sizeof(a->mx[i].host)) < 0) {
			snprintf(a->why, sizeof(a->why), "malformed MX record");
			return STS_DNS_MALFORMED;
		}
	}
	a->n = n;
	return STS_DNS_OK;
}

static enum sts_dns_status
fill_tlsa(struct sts_dns_answer *a, const struct ub_result *r)
{
	size_t n = count_data(r);

	if (n > STS_DNS_MAX_RECORDS) {
		snprintf(a->why, sizeof(a->why), "%zu TLSA records, limit %d", n,
		         STS_DNS_MAX_RECORDS);
		return STS_DNS_MALFORMED;
	}
	if ((a->rdata = calloc(n, sizeof(*a->rdata))) == NULL) {
		snprintf(a->why, sizeof(a->why), "out of memory");
		return STS_DNS_TEMPFAIL;
	}
	for (size_t i = 0; i < n; i++) {
		if (r->len[i] < 0) {
			snprintf(a->why, sizeof(a->why), "malformed TLSA record");
			return STS_DNS_MALFORMED;
		}
		a->rdata[i].data = (const uint8_t *)r->data[i];
		a->rdata[i].len = (size_t)r->len[i];
	}
	a->n = n;
	return STS_DNS_OK;
}

/*
 * set_canon - the name CNAMEs led to, when libunbound followed some: lower
 * case, without the trailing dot; "" when it is the name asked for.
 */
static void
set_canon(struct sts_dns_answer *a, const struct ub_result *r)
{
	size_t len;

	a->canon[0] = '\0';
	if (r == NULL || r->canonname == NULL || r->qname == NULL ||
	    (len = strnlen(r->canonname, sizeof(a->canon))) == 0 || len >= sizeof(a->canon))
		return;
	if (len > 1 && r->canonname[len - 1] == '.')
		len--;
	for (size_t i = 0; i < len; i++) {
		char c = r->canonname[i];

		a->canon[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	a->canon[len] = '\0';
	len = strlen(r->qname);
	if (len > 1 && r->qname[len - 1] == '.')
		len--;
	if (strlen(a->canon) == len && strncasecmp(a->canon, r->qname, len) == 0)
		a->canon[0] = '\0';
}

/* Append the addresses of one A or AAAA answer; extra ones are dropped. */
static enum sts_dns_status
add_addrs(struct sts_dns_answer *a, const struct ub_result *r, int family)
{
	for (size_t i = 0; r->data[i] != NULL; i++) {
		struct sockaddr_storage ss;

		if (r->len[i] < 0 ||
		    sts_rdata_addr(family, (const uint8_t *)r->data[i], (size_t)r->len[i], &ss) < 0)
			return STS_DNS_MALFORMED;
		if (a->n < STS_DNS_MAX_RECORDS)
			a->addr[a->n++] = ss;
	}
	return STS_DNS_OK;
}

/* How bad a failure is when two must be merged into one. */
static int
severity(enum sts_dns_status s)
{
	switch (s) {
	case STS_DNS_OK:
		return 0;
	case STS_DNS_NXDOMAIN:
		return 1;
	case STS_DNS_NODATA:
		return 2;
	case STS_DNS_MALFORMED:
		return 3;
	case STS_DNS_TEMPFAIL:
		return 4;
	case STS_DNS_BOGUS:
		return 5;
	}
	return 5;
}

/* sub_ttl - the TTL libunbound gives an answered query (0 when it has none). */
static uint32_t
sub_ttl(const struct dns_sub *s)
{
	return s->res != NULL && s->res->ttl > 0 ? (uint32_t)s->res->ttl : 0;
}

static void
build_addr(struct dns_query *q, struct sts_dns_answer *a)
{
	enum sts_dns_status st[2], worst = STS_DNS_NXDOMAIN;
	char why[2][sizeof(a->why)];
	int got = 0, secure = 1;

	a->addr = calloc(STS_DNS_MAX_RECORDS, sizeof(*a->addr));
	if (a->addr == NULL) {
		a->status = STS_DNS_TEMPFAIL;
		snprintf(a->why, sizeof(a->why), "out of memory");
		return;
	}
	for (int i = 0; i < 2; i++) {
		const struct dns_sub *s = &q->sub[i];

		st[i] = sub_status(s, why[i], sizeof(why[i]));
		if (st[i] == STS_DNS_OK) {
			st[i] = add_addrs(a, s->res, s->rrtype == RR_TYPE_A ? AF_INET : AF_INET6);
			if (st[i] == STS_DNS_OK)
				got = 1;
			else
				snprintf(why[i], sizeof(why[i]), "malformed address record");
		}
		if (s->res == NULL || !s->res->secure)
			secure = 0;
		if (i == 0 || severity(st[i]) > severity(worst))
			worst = st[i];
	}
	if (worst == STS_DNS_BOGUS || !got) {
		/* A bogus half poisons the whole: an attacker may have stripped the other. */
		int w = severity(st[0]) >= severity(st[1]) ? 0 : 1;

		a->status = worst;
		a->secure = secure;
		a->n = 0;
		if (snprintf(a->why, sizeof(a->why), "%s: %.100s", w == 0 ? "A" : "AAAA", why[w]) <
		    0)
			a->why[0] = '\0';
		return;
	}
	a->status = STS_DNS_OK;
	a->secure = secure;
	set_canon(a, st[0] == STS_DNS_OK ? q->sub[0].res : q->sub[1].res);
	/* The addresses are as current as the shorter-lived family that has some. */
	a->ttl = UINT32_MAX;
	for (int i = 0; i < 2; i++)
		if (st[i] == STS_DNS_OK && sub_ttl(&q->sub[i]) < a->ttl)
			a->ttl = sub_ttl(&q->sub[i]);
}

/* Report q (answered, or timed out with sub-queries still pending) and free it. */
static void
query_finish(struct sts_dns *d, struct dns_query *q)
{
	struct sts_dns_answer a;

	memset(&a, 0, sizeof(a));
	query_unlink(d, q);
	if (q->kind == K_ADDR) {
		build_addr(q, &a);
	} else {
		const struct dns_sub *s = &q->sub[0];

		a.status = sub_status(s, a.why, sizeof(a.why));
		if (a.status == STS_DNS_OK)
			a.status = q->kind == K_TXT  ? fill_txt(&a, s->res)
			           : q->kind == K_MX ? fill_mx(&a, s->res)
			                             : fill_tlsa(&a, s->res);
		if (a.status != STS_DNS_TEMPFAIL)
			set_canon(&a, s->res);
		a.secure = s->res != NULL && s->res->secure;
		a.ttl = sub_ttl(s);
	}
	if (a.status == STS_DNS_OK)
		a.why[0] = '\0';

	/* Arrays are only for answers that carry records; keep ours to free them. */
	struct sts_dns_answer view = a;
	size_t n_txt = a.txt != NULL ? a.n : 0;

	if (view.status != STS_DNS_OK) {
		if (view.status != STS_DNS_NXDOMAIN && view.status != STS_DNS_NODATA)
			view.ttl = 0;
		view.n = 0;
		/* A validated denial of existence is worth knowing; nothing else is. */
		view.secure =
		    (a.status == STS_DNS_NXDOMAIN || a.status == STS_DNS_NODATA) && a.secure;
		view.txt = NULL;
		view.txt_len = NULL;
		view.mx = NULL;
		view.addr = NULL;
		view.rdata = NULL;
	}
	q->cb(q->arg, &view);

	for (size_t i = 0; i < n_txt; i++)
		free(a.txt[i]);
	free(a.txt);
	free(a.txt_len);
	free(a.mx);
	free(a.addr);
	free(a.rdata);
	query_drop(d, q);
}

static void
dns_release(struct sts_dns *d)
{
	loop_fd_del(d->loop, d->fd);
	ub_ctx_delete(d->ctx);
	free(d);
}

/* libunbound's callback, run from ub_process(). */
static void
on_ub_answer(void *mydata, int err, struct ub_result *res)
{
	struct dns_sub *s = mydata;
	struct dns_query *q = s->q;

	s->pending = 0;
	s->err = err;
	s->res = res;
	for (int i = 0; i < q->n_sub; i++)
		if (q->sub[i].pending)
			return;
	query_finish(q->d, q);
}

static void
on_ub_fd(struct loop *loop, int fd, int events, void *arg)
{
	struct sts_dns *d = arg;
	int r;

	(void)loop;
	(void)fd;
	(void)events;
	d->depth++;
	r = ub_process(d->ctx);
	d->depth--;
	if (r != 0 && !d->dying)
		log_err("dns: ub_process: %s", ub_strerror(r));
	if (d->dying && d->depth == 0)
		dns_release(d);
}

static void
on_timeout(struct loop *loop, void *arg)
{
	struct dns_query *q = arg;
	struct sts_dns *d = q->d;

	(void)loop;
	q->timer = 0;
	d->depth++;
	query_finish(d, q);
	d->depth--;
	if (d->dying && d->depth == 0)
		dns_release(d);
}

/* A name we are willing to hand to the resolver: printable, no spaces, bounded. */
static int
name_ok(const char *name)
{
	size_t len;

	if (name == NULL)
		return 0;
	len = strnlen(name, STS_RDATA_NAME_MAX + 2);
	if (len == 0 || len > STS_RDATA_NAME_MAX + 1 ||
	    (len == STS_RDATA_NAME_MAX + 1 && name[len - 1] != '.'))
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
			return 0;
	return 1;
}

static uint64_t
query_start(struct sts_dns *d, enum dns_kind kind, const char *name, sts_dns_cb *cb, void *arg)
{
	struct dns_query *q;

	if (d == NULL || d->dying || cb == NULL || !name_ok(name))
		return 0;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return 0;
	q->d = d;
	q->kind = kind;
	q->cb = cb;
	q->arg = arg;
	q->n_sub = kind == K_ADDR ? 2 : 1;
	q->sub[0].rrtype = kind == K_TXT    ? RR_TYPE_TXT
	                   : kind == K_MX   ? RR_TYPE_MX
	                   : kind == K_TLSA ? RR_TYPE_TLSA
	                                    : RR_TYPE_A;
	q->sub[1].rrtype = RR_TYPE_AAAA;
	for (int i = 0; i < q->n_sub; i++) {
		int r;

		q->sub[i].q = q;
		r = ub_resolve_async(d->ctx, name, q->sub[i].rrtype, RR_CLASS_IN, &q->sub[i],
		                     on_ub_answer, &q->sub[i].ub_id);
		if (r != 0) {
			log_err("dns: cannot query %s: %s", name, ub_strerror(r));
			goto fail;
		}
		q->sub[i].pending = 1;
	}
	q->timer = loop_timer_add(d->loop, d->timeout_ms, on_timeout, q);
	if (q->timer == 0)
		goto fail;
	q->id = ++d->next_id;
	q->next = d->head;
	if (d->head != NULL)
		d->head->prev = q;
	d->head = q;
	return q->id;
fail:
	query_drop(d, q);
	return 0;
}

/* sts_dns_txt - start a TXT lookup. */
uint64_t
sts_dns_txt(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return query_start(d, K_TXT, name, cb, arg);
}

/* sts_dns_mx - start an MX lookup. */
uint64_t
sts_dns_mx(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return query_start(d, K_MX, name, cb, arg);
}

/* sts_dns_addr - start A and AAAA lookups reported together. */
uint64_t
sts_dns_addr(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return query_start(d, K_ADDR, name, cb, arg);
}

/* sts_dns_tlsa - start a TLSA lookup. */
uint64_t
sts_dns_tlsa(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return query_start(d, K_TLSA, name, cb, arg);
}

/* sts_dns_cancel - drop a pending lookup without calling back. */
void
sts_dns_cancel(struct sts_dns *d, uint64_t id)
{
	if (d == NULL || id == 0)
		return;
	for (struct dns_query *q = d->head; q != NULL; q = q->next) {
		if (q->id == id) {
			query_unlink(d, q);
			query_drop(d, q);
			return;
		}
	}
}

/* sts_dns_context - see sts_dns.h; the one place the resolver's options are chosen. */
struct ub_ctx *
sts_dns_context(const struct sts_dns_params *p, char *err, size_t errlen)
{
	struct ub_ctx *ctx;
	int r;

	if (p == NULL) {
		set_err(err, errlen, "%s%s", "dns: no parameters", "");
		return NULL;
	}
	ctx = ub_ctx_create();
	if (ctx == NULL) {
		set_err(err, errlen, "%s%s", "dns: cannot create the resolver context", "");
		return NULL;
	}
	/*
	 * An expired answer is never served in place of a fresh one: a TLSA or
	 * MX RRset past its TTL may have been withdrawn, and RFC 7672 decisions
	 * (and MTA-STS ones) rest on what the domain publishes now. It is
	 * libunbound's default; it is said here so that it stays so.
	 */
	if ((r = ub_ctx_set_option(ctx, "serve-expired:", "no")) != 0) {
		set_err(err, errlen, "dns: option: %s%s", ub_strerror(r), "");
		goto fail;
	}
	/* Forwarders are the operator's choice; a local resolver is a normal one. */
	if ((r = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) != 0) {
		set_err(err, errlen, "dns: option: %s%s", ub_strerror(r), "");
		goto fail;
	}
	/*
	 * libunbound answers the special-use "test." domain (RFC 6761) itself
	 * with NXDOMAIN. With forwarders configured, the operator's resolver
	 * decides: staging networks and our own lab publish policies there.
	 */
	if (p->n_forwarders > 0 &&
	    (r = ub_ctx_set_option(ctx, "local-zone:", "test. transparent")) != 0) {
		set_err(err, errlen, "dns: option: %s%s", ub_strerror(r), "");
		goto fail;
	}
	for (size_t i = 0; i < p->n_forwarders; i++) {
		if (p->forwarders == NULL || p->forwarders[i] == NULL ||
		    (r = ub_ctx_set_fwd(ctx, p->forwarders[i])) != 0) {
			set_err(err, errlen, "dns: bad forwarder \"%s\"%s",
			        p->forwarders && p->forwarders[i] ? p->forwarders[i] : "(null)",
			        "");
			goto fail;
		}
	}
	if (p->n_forwarders == 0 && (r = ub_ctx_resolvconf(ctx, NULL)) != 0) {
		set_err(err, errlen, "dns: /etc/resolv.conf: %s%s", ub_strerror(r), "");
		goto fail;
	}
	if (p->trust_anchor_file != NULL) {
		/* libunbound reads the file only when it starts resolving: check it now. */
		if (access(p->trust_anchor_file, R_OK) != 0) {
			set_err(err, errlen, "dns: trust anchor %s: %s", p->trust_anchor_file,
			        strerror(errno));
			goto fail;
		}
		if ((r = ub_ctx_add_ta_file(ctx, p->trust_anchor_file)) != 0) {
			set_err(err, errlen, "dns: trust anchor %s: %s", p->trust_anchor_file,
			        ub_strerror(r));
			goto fail;
		}
	}
	return ctx;
fail:
	ub_ctx_delete(ctx);
	return NULL;
}

/* sts_dns_new - a libunbound context wired into loop. */
struct sts_dns *
sts_dns_new(struct loop *loop, const struct sts_dns_params *p, char *err, size_t errlen)
{
	struct sts_dns *d;
	int r;

	if (loop == NULL || p == NULL) {
		set_err(err, errlen, "%s%s", "dns: no loop or parameters", "");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		set_err(err, errlen, "%s%s", "dns: out of memory", "");
		return NULL;
	}
	d->loop = loop;
	d->fd = -1;
	d->timeout_ms = p->timeout_ms ? p->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
	d->ctx = sts_dns_context(p, err, errlen);
	if (d->ctx == NULL)
		goto fail;
	/* A thread, not a process: answers come back through ub_fd() all the same. */
	if ((r = ub_ctx_async(d->ctx, 1)) != 0) {
		set_err(err, errlen, "dns: async: %s%s", ub_strerror(r), "");
		goto fail;
	}
	d->fd = ub_fd(d->ctx);
	if (d->fd < 0 || loop_fd_add(loop, d->fd, LOOP_READ, on_ub_fd, d) < 0) {
		set_err(err, errlen, "dns: cannot watch the resolver pipe: %s%s", strerror(errno),
		        "");
		d->fd = -1;
		goto fail;
	}
	return d;
fail:
	if (d->ctx != NULL)
		ub_ctx_delete(d->ctx);
	free(d);
	return NULL;
}

/* sts_dns_free - cancel all lookups and free d (later, if called from a callback). */
void
sts_dns_free(struct sts_dns *d)
{
	if (d == NULL || d->dying)
		return;
	while (d->head != NULL) {
		struct dns_query *q = d->head;

		query_unlink(d, q);
		query_drop(d, q);
	}
	if (d->depth > 0) {
		d->dying = 1;
		return;
	}
	dns_release(d);
}
