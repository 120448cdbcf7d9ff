/*
 * fake_sts_engine.c - a scripted policy engine for session tests (see
 * fake_sts_engine.h). One process-wide rule table; engines hold their own
 * pending asynchronous lookups so that cancel works as in the real one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/proxy/fake_sts_engine.h"

struct fake_lookup {
	struct fake_lookup *next;
	struct sts_engine *e;
	uint64_t id, timer;
	char domain[254];
	bool recheck;
	sts_engine_cb *cb;
	void *arg;
};

struct sts_engine {
	struct loop *loop;
	uint64_t next_id;
	struct fake_lookup *pending;
};

static const struct fake_sts_rule *rules, *recheck_rules;
static size_t n_rules, n_recheck_rules;
static unsigned n_async, n_recheck;
static unsigned delay_ms; /* fake_sts_set_delay */

/* DANE per domain (fake_sts_set_dane) */
static struct {
	char domain[254];
	enum sts_dane_mode mode;
	const struct sts_dane_state *st;
} danes[8];
static size_t n_danes;

void
fake_sts_set(const struct fake_sts_rule *r, size_t n)
{
	rules = r;
	n_rules = n;
	recheck_rules = NULL;
	n_recheck_rules = 0;
	n_async = n_recheck = 0;
	n_danes = 0;
	delay_ms = 0;
}

void
fake_sts_set_delay(unsigned ms)
{
	delay_ms = ms;
}

void
fake_sts_set_dane(const char *domain, enum sts_dane_mode mode, const struct sts_dane_state *st)
{
	if (n_danes == sizeof(danes) / sizeof(danes[0]))
		abort();
	snprintf(danes[n_danes].domain, sizeof(danes[0].domain), "%s", domain);
	danes[n_danes].mode = mode;
	danes[n_danes++].st = st;
}

void
fake_sts_set_recheck(const struct fake_sts_rule *r, size_t n)
{
	recheck_rules = r;
	n_recheck_rules = n;
}

unsigned
fake_sts_recheck_count(void)
{
	return n_recheck;
}

unsigned
fake_sts_async_count(void)
{
	return n_async;
}

static const struct fake_sts_rule *
find_in(const struct fake_sts_rule *table, size_t n, const char *domain)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].domain, domain) == 0)
			return &table[i];
	return NULL;
}

static const struct fake_sts_rule *
find(const char *domain)
{
	return find_in(rules, n_rules, domain);
}

static void
fill(const char *domain, const struct fake_sts_rule *r, struct sts_answer *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->domain, sizeof(out->domain), "%s", domain);
	out->dane_mode = STS_DANE_MODE_OFF;
	for (size_t i = 0; i < n_danes; i++)
		if (strcmp(danes[i].domain, domain) == 0) {
			out->dane_mode = danes[i].mode;
			out->dane = danes[i].st;
		}
	if (r == NULL)
		return;
	out->status = r->status;
	out->mode = r->status == STS_POLICY ? r->mode : STS_MODE_NONE;
	out->source = r->status == STS_POLICY ? STS_SOURCE_CACHE : STS_SOURCE_NONE;
	snprintf(out->id, sizeof(out->id), "%s", r->id ? r->id : "");
	if (r->mx != NULL) {
		snprintf(out->mx[0], sizeof(out->mx[0]), "%s", r->mx);
		out->n_mx = 1;
	}
	if (r->status == STS_DEFER) {
		out->problem = STS_RESULT_STS_POLICY_FETCH_ERROR;
		snprintf(out->reason, sizeof(out->reason), "scripted temporary failure");
	}
}

struct sts_engine *
sts_engine_new(const struct sts_engine_params *p, char *err, size_t errlen)
{
	struct sts_engine *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->loop = p->loop;
	return e;
}

void
sts_engine_free(struct sts_engine *e)
{
	struct fake_lookup *l;

	if (e == NULL)
		return;
	while ((l = e->pending) != NULL) {
		e->pending = l->next;
		loop_timer_cancel(e->loop, l->timer);
		free(l);
	}
	free(e);
}

int
sts_engine_lookup_now(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                      struct sts_answer *out)
{
	const struct fake_sts_rule *r = find(domain);

	(void)e;
	(void)dest;
	if (r != NULL && r->async)
		return 0;
	fill(domain, r, out);
	return 1;
}

static void
unlink_lookup(struct sts_engine *e, struct fake_lookup *l)
{
	struct fake_lookup **pp;

	for (pp = &e->pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			return;
		}
}

static void
answer(struct loop *loop, void *arg)
{
	struct fake_lookup *l = arg;
	struct sts_answer a;

	(void)loop;
	unlink_lookup(l->e, l);
	if (l->recheck && recheck_rules != NULL)
		fill(l->domain, find_in(recheck_rules, n_recheck_rules, l->domain), &a);
	else
		fill(l->domain, find(l->domain), &a);
	a.rechecked = l->recheck;
	l->cb(l->arg, &a);
	free(l);
}

/* start - an asynchronous answer from a timer (zero milliseconds, or fake_sts_set_delay's). */
static uint64_t
start(struct sts_engine *e, const char *domain, bool recheck, sts_engine_cb *cb, void *arg)
{
	struct fake_lookup *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return 0;
	l->e = e;
	l->id = ++e->next_id;
	snprintf(l->domain, sizeof(l->domain), "%s", domain);
	l->cb = cb;
	l->arg = arg;
	l->recheck = recheck;
	if ((l->timer = loop_timer_add(e->loop, delay_ms, answer, l)) == 0) {
		free(l);
		return 0;
	}
	l->next = e->pending;
	e->pending = l;
	if (recheck)
		n_recheck++;
	else
		n_async++;
	return l->id;
}

uint64_t
sts_engine_lookup(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                  sts_engine_cb *cb, void *arg)
{
	(void)dest;
	return start(e, domain, false, cb, arg);
}

uint64_t
sts_engine_recheck(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                   sts_engine_cb *cb, void *arg)
{
	(void)dest;
	return start(e, domain, true, cb, arg);
}

void
sts_engine_cancel(struct sts_engine *e, uint64_t id)
{
	struct fake_lookup *l;

	for (l = e->pending; l != NULL; l = l->next)
		if (l->id == id) {
			unlink_lookup(e, l);
			loop_timer_cancel(e->loop, l->timer);
			free(l);
			return;
		}
}

/* the real one (policy/sts_decide.c), when linked, wins */
__attribute__((weak)) void
sts_decide(const struct sts_answer *a, const struct sockaddr *dest, const struct tls_facts *f,
           struct sts_decision *out)
{
	const char *names[STS_ANSWER_MAX_MX];
	size_t i, m = 0;

	(void)dest;
	memset(out, 0, sizeof(*out));
	out->pass = true;
	if (a->status != STS_POLICY || a->mode == STS_MODE_NONE)
		return;
	out->mode = a->mode;
	out->tls_required = true;
	if (f == NULL) {
		out->pass = false;
		out->result = STS_RESULT_STARTTLS_NOT_SUPPORTED;
		snprintf(out->reason, sizeof(out->reason), "STARTTLS not offered");
		return;
	}
	for (i = 0; i < a->n_mx && i < STS_ANSWER_MAX_MX; i++)
		names[i] = a->mx[i];
	out->result = tls_check_names(f, names, i, &m, out->reason, sizeof(out->reason));
	out->pass = out->result == STS_RESULT_OK;
	if (out->pass)
		snprintf(out->matched, sizeof(out->matched), "%s", a->mx[m]);
}

const char *
sts_source_name(enum sts_source source)
{
	static const char *const names[] = {"none", "local", "smarthost", "cache", "fetched"};

	if ((unsigned)source >= sizeof(names) / sizeof(names[0]))
		return "none";
	return names[source];
}
