/*
 * fake_sts_dns.c - policy/sts_dns.c replaced at link time: answers come
 * from a table the test fills (name and type -> status and records), are
 * delivered later through a zero-millisecond loop timer, never inside the
 * call, and every query is counted so that tests can prove sharing.
 *
 * Control functions (declared by the tests that link this file):
 *   fake_dns_reset()                      forget every answer and count
 *   fake_dns_set(name, type, status, recs, n)  type 'T' TXT, 'M' MX ("10 host"),
 *                                         'A' addresses ("10.0.0.1", "fd00::1"),
 *                                         'L' TLSA ("3 1 1 0a1b...", hex data)
 *   fake_dns_count(name, type)            queries asked so far
 *   fake_dns_ttl(name, type, ttl)         the TTL its answers carry (default
 *                                         FAKE_TTL seconds, NXDOMAIN included)
 *   fake_dns_delay(name, type, ms)        its answers come ms later (default 0)
 *   fake_dns_secure(name, type, secure)   its answers are DNSSEC-validated (default not)
 *   fake_dns_canon(name, type, canon)     its answers say CNAMEs led to canon
 * A name and type with no entry answers as the entry named "*" of that
 * type, if any, else NXDOMAIN.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "policy/sts_dns.h"

#define FAKE_MAX 128
#define FAKE_TTL 300

struct fake_rr {
	char name[256];
	int type;
	enum sts_dns_status status;
	size_t n;
	char recs[STS_DNS_MAX_RECORDS][300];
	unsigned count;
	bool ttl_set;
	uint32_t ttl;
	unsigned delay_ms;
	bool secure;
	char canon[254];
};

static struct fake_rr table[FAKE_MAX];
static size_t n_table;

struct fake_q {
	struct fake_q *next;
	struct sts_dns *d;
	uint64_t id, timer;
	char name[256];
	int type;
	sts_dns_cb *cb;
	void *arg;
};

struct sts_dns {
	struct loop *loop;
	uint64_t next_id;
	struct fake_q *head;
};

static struct fake_rr *
find_exact(const char *name, int type)
{
	for (size_t i = 0; i < n_table; i++)
		if (table[i].type == type && strcasecmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

static struct fake_rr *
find(const char *name, int type)
{
	struct fake_rr *rr = find_exact(name, type);

	if (rr != NULL)
		return rr;
	for (size_t i = 0; i < n_table; i++)
		if (table[i].type == type && strcmp(table[i].name, "*") == 0)
			return &table[i];
	return NULL;
}

void
fake_dns_reset(void)
{
	memset(table, 0, sizeof(table));
	n_table = 0;
}

/* fake_dns_set - script the answer to name/type; replaces an earlier one, keeps the count. */
void
fake_dns_set(const char *name, int type, enum sts_dns_status status, const char *const *recs,
             size_t n)
{
	struct fake_rr *rr = find_exact(name, type);

	if (rr == NULL) {
		if (n_table == FAKE_MAX)
			abort();
		rr = &table[n_table++];
		sts_strlcpy(rr->name, name, sizeof(rr->name));
		rr->type = type;
	}
	rr->status = status;
	rr->n = n < STS_DNS_MAX_RECORDS ? n : STS_DNS_MAX_RECORDS;
	for (size_t i = 0; i < rr->n; i++)
		sts_strlcpy(rr->recs[i], recs[i], sizeof(rr->recs[i]));
}

/* scripted - the entry of name/type; an unscripted one is made to answer NXDOMAIN. */
static struct fake_rr *
scripted(const char *name, int type)
{
	if (find_exact(name, type) == NULL)
		fake_dns_set(name, type, STS_DNS_NXDOMAIN, NULL, 0);
	return find_exact(name, type);
}

/* fake_dns_ttl - the TTL of name/type's answers from now on. */
void
fake_dns_ttl(const char *name, int type, uint32_t ttl)
{
	struct fake_rr *rr = scripted(name, type);

	rr->ttl_set = true;
	rr->ttl = ttl;
}

/* fake_dns_delay - name/type's answers from now on come ms after the query. */
void
fake_dns_delay(const char *name, int type, unsigned ms)
{
	scripted(name, type)->delay_ms = ms;
}

/* fake_dns_secure - name/type's answers from now on are (not) DNSSEC-validated. */
void
fake_dns_secure(const char *name, int type, bool secure)
{
	scripted(name, type)->secure = secure;
}

/* fake_dns_canon - name/type's answers from now on say that CNAMEs led to canon. */
void
fake_dns_canon(const char *name, int type, const char *canon)
{
	sts_strlcpy(scripted(name, type)->canon, canon, sizeof(scripted(name, type)->canon));
}

unsigned
fake_dns_count(const char *name, int type)
{
	struct fake_rr *rr = find_exact(name, type);

	return rr != NULL ? rr->count : 0;
}

static void
unlink_q(struct fake_q *q)
{
	struct fake_q **pp;

	for (pp = &q->d->head; *pp != NULL && *pp != q; pp = &(*pp)->next)
		;
	if (*pp == q)
		*pp = q->next;
}

/* tlsa_wire - "U S M hex" as TLSA rdata in out; its length (short text: what parsed). */
static size_t
tlsa_wire(const char *text, uint8_t *out, size_t outlen)
{
	unsigned u = 0, sel = 0, mt = 0;
	int off = 0;
	size_t n = 3;

	if (sscanf(text, "%u %u %u %n", &u, &sel, &mt, &off) < 3 || outlen < 3)
		return 0;
	out[0] = (uint8_t)u;
	out[1] = (uint8_t)sel;
	out[2] = (uint8_t)mt;
	for (const char *p = text + off; p[0] != '\0' && p[1] != '\0' && n < outlen; p += 2) {
		unsigned v;

		if (sscanf(p, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void
deliver(struct loop *loop, void *arg)
{
	struct fake_q *q = arg;
	struct fake_rr *rr = find(q->name, q->type);
	struct sts_dns_answer a = {.status = STS_DNS_NXDOMAIN};
	char *txt[STS_DNS_MAX_RECORDS];
	size_t txt_len[STS_DNS_MAX_RECORDS];
	struct sts_dns_mx mx[STS_DNS_MAX_RECORDS];
	struct sockaddr_storage addr[STS_DNS_MAX_RECORDS];
	struct sts_dns_rdata rdata[STS_DNS_MAX_RECORDS];
	static uint8_t wire[STS_DNS_MAX_RECORDS][160];

	(void)loop;
	unlink_q(q);
	a.ttl = FAKE_TTL;
	if (rr != NULL) {
		a.status = rr->status;
		if (a.status == STS_DNS_OK && rr->n == 0)
			a.status = STS_DNS_NODATA;
		if (rr->ttl_set)
			a.ttl = rr->ttl;
		a.secure = rr->secure && a.status != STS_DNS_BOGUS;
		sts_strlcpy(a.canon, rr->canon, sizeof(a.canon));
	}
	if (a.status != STS_DNS_OK && a.status != STS_DNS_NXDOMAIN && a.status != STS_DNS_NODATA)
		a.ttl = 0; /* as the real resolver: a failure carries no TTL */
	if (a.status == STS_DNS_OK) {
		a.n = rr->n;
		for (size_t i = 0; i < rr->n; i++) {
			if (q->type == 'T') {
				txt[i] = rr->recs[i];
				txt_len[i] = strlen(rr->recs[i]);
			} else if (q->type == 'M') {
				char *sp = strchr(rr->recs[i], ' ');
				mx[i].pref = (unsigned)atoi(rr->recs[i]);
				sts_strlcpy(mx[i].host, sp != NULL ? sp + 1 : "",
				            sizeof(mx[i].host));
			} else if (q->type == 'L') {
				rdata[i].data = wire[i];
				rdata[i].len = tlsa_wire(rr->recs[i], wire[i], sizeof(wire[i]));
			} else {
				memset(&addr[i], 0, sizeof(addr[i]));
				if (strchr(rr->recs[i], ':') != NULL) {
					struct sockaddr_in6 *s6 = (void *)&addr[i];
					s6->sin6_family = AF_INET6;
					inet_pton(AF_INET6, rr->recs[i], &s6->sin6_addr);
				} else {
					struct sockaddr_in *s4 = (void *)&addr[i];
					s4->sin_family = AF_INET;
					inet_pton(AF_INET, rr->recs[i], &s4->sin_addr);
				}
			}
		}
		if (q->type == 'T') {
			a.txt = txt;
			a.txt_len = txt_len;
		} else if (q->type == 'M') {
			a.mx = mx;
		} else if (q->type == 'L') {
			a.rdata = rdata;
		} else {
			a.addr = addr;
		}
	} else {
		snprintf(a.why, sizeof(a.why), "scripted %s", sts_dns_status_name(a.status));
	}
	q->cb(q->arg, &a);
	free(q);
}

static uint64_t
ask(struct sts_dns *d, const char *name, int type, sts_dns_cb *cb, void *arg)
{
	struct fake_q *q;
	struct fake_rr *rr;

	if (d == NULL || name == NULL || name[0] == '\0' || (q = calloc(1, sizeof(*q))) == NULL)
		return 0;
	if ((rr = find_exact(name, type)) != NULL)
		rr->count++;
	else if (n_table < FAKE_MAX && find(name, type) == NULL) {
		/* count unscripted names too: an entry answering NXDOMAIN */
		fake_dns_set(name, type, STS_DNS_NXDOMAIN, NULL, 0);
		find_exact(name, type)->count++;
	}
	q->d = d;
	q->id = ++d->next_id;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	sts_strlcpy(q->name, name, sizeof(q->name));
	rr = find(name, type);
	if ((q->timer = loop_timer_add(d->loop, rr != NULL ? rr->delay_ms : 0, deliver, q)) == 0) {
		free(q);
		return 0;
	}
	q->next = d->head;
	d->head = q;
	return q->id;
}

struct sts_dns *
sts_dns_new(struct loop *loop, const struct sts_dns_params *p, char *err, size_t errlen)
{
	struct sts_dns *d;

	(void)p;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->loop = loop;
	return d;
}

void
sts_dns_free(struct sts_dns *d)
{
	struct fake_q *q;

	if (d == NULL)
		return;
	while ((q = d->head) != NULL) {
		d->head = q->next;
		loop_timer_cancel(d->loop, q->timer);
		free(q);
	}
	free(d);
}

uint64_t
sts_dns_txt(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return ask(d, name, 'T', cb, arg);
}

uint64_t
sts_dns_mx(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return ask(d, name, 'M', cb, arg);
}

uint64_t
sts_dns_addr(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return ask(d, name, 'A', cb, arg);
}

uint64_t
sts_dns_tlsa(struct sts_dns *d, const char *name, sts_dns_cb *cb, void *arg)
{
	return ask(d, name, 'L', cb, arg);
}

void
sts_dns_cancel(struct sts_dns *d, uint64_t id)
{
	struct fake_q *q;

	if (d == NULL || id == 0)
		return;
	for (q = d->head; q != NULL && q->id != id; q = q->next)
		;
	if (q == NULL)
		return;
	unlink_q(q);
	loop_timer_cancel(d->loop, q->timer);
	free(q);
}

const char *
sts_dns_status_name(enum sts_dns_status status)
{
	static const char *const names[] = {"ok",       "nxdomain", "nodata",
	                                    "tempfail", "bogus",    "malformed"};

	return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}
