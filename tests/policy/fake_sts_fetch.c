/*
 * fake_sts_fetch.c - policy/sts_fetch.c replaced at link time: each domain
 * gets a scripted outcome (ok and body, or a failure with its TLS-RPT
 * result type and HTTP code), delivered later through a zero-millisecond
 * loop timer; fetches are counted per domain.
 *
 * Control functions (declared by the tests that link this file):
 *   fake_fetch_reset()
 *   fake_fetch_set(domain, ok, result, http_code, body)
 *   fake_fetch_count(domain)
 * An unscripted domain fails with sts-policy-fetch-error and http 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "policy/sts_fetch.h"

#define FAKE_MAX 64

struct fake_site {
	char domain[256];
	int ok;
	enum sts_result result;
	long code;
	char body[4096];
	unsigned count;
};

static struct fake_site sites[FAKE_MAX];
static size_t n_sites;

struct fake_req {
	struct fake_req *next;
	struct sts_fetch *f;
	uint64_t id, timer;
	char domain[256];
	size_t n_addrs;
	sts_fetch_cb *cb;
	void *arg;
};

struct sts_fetch {
	struct loop *loop;
	uint64_t next_id;
	struct fake_req *head;
};

static struct fake_site *
find(const char *domain)
{
	for (size_t i = 0; i < n_sites; i++)
		if (strcasecmp(sites[i].domain, domain) == 0)
			return &sites[i];
	return NULL;
}

void
fake_fetch_reset(void)
{
	memset(sites, 0, sizeof(sites));
	n_sites = 0;
}

void
fake_fetch_set(const char *domain, int ok, enum sts_result result, long code, const char *body)
{
	struct fake_site *s = find(domain);

	if (s == NULL) {
		if (n_sites == FAKE_MAX)
			abort();
		s = &sites[n_sites++];
		sts_strlcpy(s->domain, domain, sizeof(s->domain));
	}
	s->ok = ok;
	s->result = result;
	s->code = code;
	sts_strlcpy(s->body, body != NULL ? body : "", sizeof(s->body));
}

unsigned
fake_fetch_count(const char *domain)
{
	struct fake_site *s = find(domain);

	return s != NULL ? s->count : 0;
}

static void
unlink_req(struct fake_req *q)
{
	struct fake_req **pp;

	for (pp = &q->f->head; *pp != NULL && *pp != q; pp = &(*pp)->next)
		;
	if (*pp == q)
		*pp = q->next;
}

static void
deliver(struct loop *loop, void *arg)
{
	struct fake_req *q = arg;
	struct fake_site *s = find(q->domain);
	struct sts_fetch_result r = {.result = STS_RESULT_STS_POLICY_FETCH_ERROR};

	(void)loop;
	unlink_req(q);
	if (s != NULL && s->ok) {
		r.ok = 1;
		r.result = STS_RESULT_OK;
		r.http_code = 200;
		r.body = s->body;
		r.len = strlen(s->body);
	} else if (s != NULL) {
		r.result = s->result;
		r.http_code = s->code;
		snprintf(r.reason, sizeof(r.reason), "scripted failure, http %ld", s->code);
	} else {
		snprintf(r.reason, sizeof(r.reason), "no such site");
	}
	q->cb(q->arg, &r);
	free(q);
}

struct sts_fetch *
sts_fetch_new(struct loop *loop, const struct sts_fetch_params *p, char *err, size_t errlen)
{
	struct sts_fetch *f;

	(void)p;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->loop = loop;
	return f;
}

void
sts_fetch_free(struct sts_fetch *f)
{
	struct fake_req *q;

	if (f == NULL)
		return;
	while ((q = f->head) != NULL) {
		f->head = q->next;
		loop_timer_cancel(f->loop, q->timer);
		free(q);
	}
	free(f);
}

uint64_t
sts_fetch_start(struct sts_fetch *f, const char *domain, const struct sockaddr_storage *addrs,
                size_t n_addrs, sts_fetch_cb *cb, void *arg)
{
	struct fake_req *q;
	struct fake_site *s;

	if (f == NULL || domain == NULL || addrs == NULL || n_addrs == 0 ||
	    (q = calloc(1, sizeof(*q))) == NULL)
		return 0;
	if ((s = find(domain)) == NULL) {
		fake_fetch_set(domain, 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 0, NULL);
		s = find(domain);
	}
	s->count++;
	q->f = f;
	q->id = ++f->next_id;
	q->n_addrs = n_addrs;
	q->cb = cb;
	q->arg = arg;
	sts_strlcpy(q->domain, domain, sizeof(q->domain));
	if ((q->timer = loop_timer_add(f->loop, 0, deliver, q)) == 0) {
		free(q);
		return 0;
	}
	q->next = f->head;
	f->head = q;
	return q->id;
}

void
sts_fetch_cancel(struct sts_fetch *f, uint64_t id)
{
	struct fake_req *q;

	if (f == NULL || id == 0)
		return;
	for (q = f->head; q != NULL && q->id != id; q = q->next)
		;
	if (q == NULL)
		return;
	unlink_req(q);
	loop_timer_cancel(f->loop, q->timer);
	free(q);
}

bool
sts_fetch_content_type_ok(const char *value)
{
	return value == NULL || strncasecmp(value, "text/plain", 10) == 0;
}
