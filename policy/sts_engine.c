/*
 * sts_engine.c - the MTA-STS policy engine (RFC 8461 sections 3, 4 and 5).
 *
 * A lookup is a small state machine, one "resolution" per domain shared by
 * every waiter that asks for that domain while it runs:
 *
 *   START -> TXT -> FETCH_ADDR -> FETCH -> MX -> MX_ADDR -> done
 *
 * with shortcuts: an operator policy skips to MX, a cached policy whose id
 * the TXT record still names skips to MX, and an MX set that is still
 * within its TTL skips the rest (never for a recheck, which asks the
 * resolver for the MX set too). Every resolution asks for the TXT record:
 * a decision is made on the id the domain publishes now (RFC 8461 sections
 * 3.1 and 5.1), and a new id is fetched before the answer.
 *
 * The persistent cache holds policies; the table of recent DNS answers
 * that goes with it (sts_seen, shared by every engine) holds what the TXT
 * record said and the MX sets, each for the TTL of its answer within the
 * sts.*_ttl_* bounds. The warm path (sts_engine_lookup_now) answers from
 * those two alone, with no I/O, while the TXT answer is fresh and names the
 * cached policy (or says the domain publishes nothing) and the MX set is
 * fresh.
 *
 * Background resolutions (a proactive refresh) run the same machine
 * without waiters and without the MX steps.
 *
 * Every resolution and waiter lives on a list of the engine, so that
 * sts_engine_free() can cancel everything; a callback may free the engine,
 * which is then only marked and destroyed when the delivery unwinds.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "policy/sts_claim.h"
#include "policy/sts_dane_dns.h"
#include "policy/sts_dns.h"
#include "policy/sts_engine.h"
#include "policy/sts_fetch.h"
#include "policy/sts_mx.h"
#include "policy/sts_refresh.h"
#include "policy/sts_seen.h"
#include "policy/sts_txt.h"

#define TOUCH_AFTER  120 /* s: record a TXT check on disk only if the last is older */
#define INFLIGHT_MAX 1024
/*
 * After a temporary DNS failure the last TXT answer and MX set stand this
 * long before a lookup waits for the resolver again (the failure recheck
 * timer of RFC 8767 section 5): a resolver that does not answer must not
 * cost every recipient its timeout. A recheck always asks.
 */
#define FAIL_HOLD_MS 30000
/* How often a lookup waiting for another loop's fetch of its policy looks for the result. */
#define CLAIM_POLL_MS 10

_Static_assert(STS_ANSWER_MAX_MX == STS_SEEN_MAX_MX && STS_ANSWER_MAX_ADDR == STS_SEEN_MAX_ADDR,
               "an answer holds what the table of recent answers keeps");

enum res_kind {
	RK_LOOKUP = 0, /* waiters want an answer */
	RK_REFRESH,    /* background: fetch again before expiry (section 3.3) */
};

enum res_state {
	RS_START = 0,
	RS_TXT,
	RS_SHARED,     /* asking the shared Redis before fetching (shared.wait_max at most) */
	RS_FETCH_WAIT, /* another loop is fetching the same policy: waiting for its result */
	RS_FETCH_ADDR,
	RS_FETCH,
	RS_MX,
	RS_MX_ADDR,
	RS_DANE, /* the MTA-STS part is answered; the DANE lookup is not */
	RS_DONE,
};

static const char *const state_names[] = {
    [RS_START] = "start",
    [RS_TXT] = "txt",
    [RS_SHARED] = "shared",
    [RS_FETCH_WAIT] = "fetch-wait",
    [RS_FETCH_ADDR] = "fetch-addr",
    [RS_FETCH] = "fetch",
    [RS_MX] = "mx",
    [RS_MX_ADDR] = "mx-addr",
    [RS_DANE] = "dane",
    [RS_DONE] = "done",
};

struct resolution;

struct waiter {
	struct waiter *next, *prev; /* the engine's list, for cancel and free */
	struct waiter *rnext;       /* its resolution's list, in arrival order */
	struct resolution *r;
	uint64_t id;
	sts_engine_cb *cb;
	void *arg;
	bool has_dest;
	struct sockaddr_storage dest;
};

/* One address lookup of a candidate MX host; its callback finds r through it. */
struct addr_sub {
	struct resolution *r;
	uint64_t id;
};

struct resolution {
	struct resolution *next, *prev; /* the engine's in-flight list */
	struct sts_engine *e;
	enum res_kind kind;
	enum res_state state;
	bool solo;      /* not shared: answered per waiter (a smarthost destination) */
	bool recheck;   /* the MX set is asked for even when a fresh one is remembered */
	bool txt_asked; /* this resolution asked the resolver for the TXT record */
	bool mx_asked;  /* ... and for the MX set */
	char domain[STS_CACHE_DOMAIN_MAX];
	struct waiter *waiters, **wtail;
	uint64_t timer, dns_id, fetch_id, shared_id;
	uint64_t claim;    /* this resolution's claim on the fetch (policy/sts_claim.h); 0: none */
	uint64_t wait_end; /* RS_FETCH_WAIT: when to stop waiting for the other loop (ms) */
	/* A shared policy of another id, kept in case the fetch fails (section 3.3) */
	char *shared_text;
	size_t shared_len;
	struct shared_policy shared_meta; /* its text pointer is not kept */
	struct addr_sub sub[STS_ANSWER_MAX_MX];
	size_t n_sub_pending;
	char txt_id[STS_CACHE_ID_MAX];

	/* the outcome */
	enum sts_status status;
	enum sts_source source;
	const struct sts_cache_entry *entry; /* referenced; may be expired */
	const struct sts_policy *policy;     /* entry's, an operator's, or &fetched */
	const char *local_key;               /* the operator policy's MX-set key, or NULL */
	struct sts_policy fetched;
	char id[STS_CACHE_ID_MAX];
	int64_t expires_at;
	enum sts_result problem;
	char reason[160];
	bool mx_done;    /* the MX set is complete and may be remembered */
	uint32_t mx_ttl; /* seconds: the shortest TTL of the MX and address answers */
	size_t n_mx;
	char mx[STS_ANSWER_MAX_MX][254];
	size_t n_addr;
	struct sockaddr_storage addr[STS_ANSWER_MAX_ADDR];

	/* DANE (RFC 7672), beside the MTA-STS part: from memory or asked */
	enum sts_dane_mode dane_mode;
	const struct sts_dane_state *dane; /* referenced */
	uint64_t dane_id;                  /* a DANE lookup running */
	bool dane_asked;                   /* the state was asked of the resolver for r */
	bool dane_lost;                    /* the lookup could not run (no memory) */
	bool sts_done;                     /* the MTA-STS part has its answer */
};

struct local_policy {
	const char *domain; /* the configuration's */
	struct sts_policy policy;
	char key[STS_SEEN_KEY_MAX]; /* its MX sets' key: never a TXT id, and names the
	                               patterns, so that another configuration's set
	                               in the shared table is not taken for it */
};

struct sts_engine {
	struct loop *loop;
	const struct conf *conf;
	struct sts_cache *cache;
	struct sts_seen *seen; /* the cache's: shared by every engine */
	struct sts_dns *dns;
	struct sts_dane_dns *dane_dns; /* NULL: no trust anchor, no DANE */
	struct sts_fetch *fetch;
	struct shared_state *shared; /* NULL: nothing shared (no shared group) */
	sts_engine_trace_cb *trace;
	void *trace_arg;
	bool check_txt;

	struct local_policy *local;
	size_t n_local;
	struct sts_policy *smart; /* one per smarthost: mode enforce, mx = {name} */

	struct resolution *inflight;
	size_t n_inflight;
	struct waiter *waiters;
	uint64_t next_id;

	/* sts.*_ttl_min and _max, in milliseconds */
	uint64_t txt_ttl_min, txt_ttl_max, mx_ttl_min, mx_ttl_max;

	struct sts_refresh *refresh;    /* NULL: another engine refreshes, or none does */
	struct sts_engine_stats *stats; /* NULL: not counted */

	const struct sts_cache_entry *held; /* behind the last lookup_now answer */
	const struct sts_dane_state *held_dane;
	struct resolution *delivering;
	int busy;
	bool dead;
};

static void res_txt(struct resolution *r);
static void res_mx(struct resolution *r);
static void res_fetch(struct resolution *r);
static void res_finish(struct resolution *r);
static void res_deliver(struct resolution *r);
static void dane_start(struct resolution *r, bool fresh);
static void shared_put(struct resolution *r, const char *text, size_t len, int64_t now);
static void engine_destroy(struct sts_engine *e);

/* --- small helpers ---------------------------------------------------------- */

static void
trace(struct sts_engine *e, const char *domain, const char *what, const char *detail)
{
	if (e->trace != NULL)
		e->trace(e->trace_arg, domain, what, detail);
}

/*
 * wall_now - unix seconds from the coarse clock: read from the vDSO without
 * a system call and without touching the hardware clock, and a tick (a few
 * ms) of staleness is nothing next to policy lifetimes in seconds.
 */
static int64_t
wall_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
		return sts_now_wall();
	return (int64_t)ts.tv_sec;
}

/* --- operator policies and smarthosts ---------------------------------------- */

static const struct local_policy *
local_find(const struct sts_engine *e, const char *domain)
{
	for (size_t i = 0; i < e->n_local; i++)
		if (strcasecmp(e->local[i].domain, domain) == 0)
			return &e->local[i];
	return NULL;
}

static ssize_t
smarthost_find(const struct sts_engine *e, const struct sockaddr *dest)
{
	if (dest == NULL)
		return -1;
	for (size_t i = 0; i < e->conf->n_smarthosts; i++)
		if (sts_addr_equal((const struct sockaddr *)&e->conf->smarthosts[i].addr.sa, dest,
		                   true))
			return (ssize_t)i;
	return -1;
}

/* policy_from - a policy of mode with patterns mx[0..n), validated (section 3.2). */
static int
policy_from(struct sts_policy *p, enum sts_mode mode, char *const *mx, size_t n, const char *what,
            char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->mode = mode;
	p->max_age = STS_MAX_AGE_CLAMP;
	if (n > 0 && (p->mx = calloc(n, sizeof(*p->mx))) == NULL)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (!sts_mx_pattern_valid(mx[i])) {
			snprintf(err, errlen, "%s: invalid mx pattern \"%s\"", what, mx[i]);
			goto fail;
		}
		if ((p->mx[i] = strdup(mx[i])) == NULL)
			goto nomem;
		p->n_mx++;
		sts_lower(p->mx[i]);
	}
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory", what);
fail:
	sts_policy_clear(p);
	return -1;
}

/*
 * local_key - the key of an operator policy's MX sets: \001 (never in a TXT
 * id) and a hash of its patterns, which alone choose the candidates.
 */
static void
local_key(struct local_policy *lp)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < lp->policy.n_mx; i++)
		for (const char *c = lp->policy.mx[i];; c++) {
			h = (h ^ (unsigned char)*c) * 1099511628211ULL; /* the NUL separates */
			if (*c == '\0')
				break;
		}
	snprintf(lp->key, sizeof(lp->key), "\001%016llx", (unsigned long long)h);
}

/* --- answers ----------------------------------------------------------------------- */

static void
answer_init_len(struct sts_answer *a, const char *domain, size_t dlen)
{
	a->status = STS_NO_POLICY;
	a->source = STS_SOURCE_NONE;
	a->mode = STS_MODE_NONE;
	if (dlen >= sizeof(a->domain))
		dlen = sizeof(a->domain) - 1;
	memcpy(a->domain, domain, dlen);
	a->domain[dlen] = '\0';
	a->id[0] = '\0';
	a->policy = NULL;
	a->expires_at = 0;
	a->n_mx = 0;
	a->n_addr = 0;
	a->problem = STS_RESULT_OK;
	a->reason[0] = '\0';
	a->rechecked = false;
	a->dane_mode = STS_DANE_MODE_OFF;
	a->dane = NULL;
}

static void
answer_init(struct sts_answer *a, const char *domain)
{
	answer_init_len(a, domain, strlen(domain));
}

static void
answer_policy(struct sts_answer *a, enum sts_source source, const struct sts_policy *p,
              const char *id, int64_t expires_at)
{
	a->status = STS_POLICY;
	a->source = source;
	a->policy = p;
	a->mode = p->mode;
	sts_strlcpy(a->id, id, sizeof(a->id));
	a->expires_at = expires_at;
}

/* answer_smarthost - section 3.4: a smarthost is checked against its configured name. */
static void
answer_smarthost(const struct sts_engine *e, size_t i, const char *domain, struct sts_answer *a)
{
	const struct conf_smarthost *s = &e->conf->smarthosts[i];

	answer_init(a, domain);
	answer_policy(a, STS_SOURCE_SMARTHOST, &e->smart[i], "", 0);
	a->n_mx = 1;
	sts_strlcpy(a->mx[0], s->name, sizeof(a->mx[0]));
	a->n_addr = 1;
	memcpy(&a->addr[0], &s->addr.sa, sizeof(a->addr[0]));
}

/* --- resolutions ---------------------------------------------------------------- */

static void
res_enter(struct resolution *r, enum res_state s)
{
	log_debug("event=policy-state domain=%s state=%s->%s", r->domain, state_names[r->state],
	          state_names[s]);
	r->state = s;
}

static struct resolution *
res_find(struct sts_engine *e, const char *domain, enum res_kind kind)
{
	for (struct resolution *r = e->inflight; r != NULL; r = r->next)
		if (r->kind == kind && !r->solo && strcmp(r->domain, domain) == 0)
			return r;
	return NULL;
}

/*
 * res_find_recheck - a lookup of domain a recheck may join: one whose TXT
 * answer has not come back yet (its MX set is asked for later), made a
 * recheck so that its MX set is asked for too. A lookup past its TXT step
 * answers on what was asked before the recheck was: not joined.
 */
static struct resolution *
res_find_recheck(struct sts_engine *e, const char *domain)
{
	for (struct resolution *r = e->inflight; r != NULL; r = r->next) {
		if (r->kind == RK_LOOKUP && !r->solo && r->state <= RS_TXT &&
		    strcmp(r->domain, domain) == 0) {
			r->recheck = true;
			if (r->state != RS_START && !r->dane_asked)
				dane_start(r, true);
			return r;
		}
	}
	return NULL;
}

static struct resolution *
res_new(struct sts_engine *e, const char *domain, enum res_kind kind)
{
	struct resolution *r;

	if (e->n_inflight >= INFLIGHT_MAX) {
		log_warn(
		    "event=policy-lookup domain=%s result=%s reason=\"too many lookups in flight\"",
		    domain, sts_result_name(STS_RESULT_STS_POLICY_FETCH_ERROR));
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->e = e;
	r->kind = kind;
	r->wtail = &r->waiters;
	sts_strlcpy(r->domain, domain, sizeof(r->domain));
	r->next = e->inflight;
	if (e->inflight != NULL)
		e->inflight->prev = r;
	e->inflight = r;
	e->n_inflight++;
	return r;
}

static void
res_unlink(struct resolution *r)
{
	struct sts_engine *e = r->e;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (e->inflight == r)
		e->inflight = r->next;
	else
		return; /* not linked */
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	e->n_inflight--;
}

/* res_free - cancel what r still waits for and free it; its waiters must be gone. */
static void
res_free(struct resolution *r)
{
	struct sts_engine *e = r->e;

	res_unlink(r);
	sts_claims_drop(sts_cache_claims(e->cache), r->claim);
	loop_timer_cancel(e->loop, r->timer);
	sts_dns_cancel(e->dns, r->dns_id);
	sts_fetch_cancel(e->fetch, r->fetch_id);
	shared_state_cancel(e->shared, r->shared_id);
	free(r->shared_text);
	for (size_t i = 0; i < STS_ANSWER_MAX_MX; i++)
		sts_dns_cancel(e->dns, r->sub[i].id);
	sts_cache_release(r->entry);
	sts_policy_clear(&r->fetched);
	sts_dane_dns_cancel(e->dane_dns, r->dane_id);
	sts_dane_release(r->dane);
	free(r);
}

static void
waiter_unlink(struct sts_engine *e, struct waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		e->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
}

static bool
entry_valid(const struct sts_cache_entry *ce, int64_t now)
{
	return ce != NULL && ce->expires_at > now;
}

static void set_problem(struct resolution *r, enum sts_result problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_problem(struct resolution *r, enum sts_result problem, const char *fmt, ...)
{
	va_list ap;

	r->problem = problem;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

/*
 * dns_result - the result type of a failed lookup. A DNSSEC validation
 * failure means the answer was changed on the way: it is reported as
 * dnssec-invalid (RFC 8460 section 4.3.2.1), never folded into "no record",
 * which would let whoever forged it strip the policy.
 */
static enum sts_result
dns_result(const struct sts_dns_answer *a, enum sts_result other)
{
	return a->status == STS_DNS_BOGUS ? STS_RESULT_DNSSEC_INVALID : other;
}

static const char *
dnssec_name(const struct sts_dns_answer *a)
{
	return a->status == STS_DNS_BOGUS ? "bogus" : a->secure ? "secure" : "insecure";
}

/* use_cache - section 3.3: no live policy but a valid cached one: apply the cached one. */
static void
use_cache(struct resolution *r)
{
	r->status = STS_POLICY;
	r->source = STS_SOURCE_CACHE;
	r->policy = &r->entry->policy;
	sts_strlcpy(r->id, r->entry->id, sizeof(r->id));
	r->expires_at = r->entry->expires_at;
}

/* no_policy_or_cache - the live lookup gave nothing usable: the cache if valid, else none. */
static void
no_policy_or_cache(struct resolution *r)
{
	if (entry_valid(r->entry, sts_now_wall())) {
		use_cache(r);
		if (r->kind == RK_LOOKUP) {
			res_mx(r);
			return;
		}
	} else {
		r->status = STS_NO_POLICY;
		r->source = STS_SOURCE_NONE;
	}
	res_finish(r);
}

static void
refresh_alert(struct resolution *r)
{
	if (r->kind == RK_REFRESH && r->entry != NULL && r->entry->policy.mode != STS_MODE_NONE)
		log_warn("alert=policy-refresh-failed domain=%s id=%s result=%s reason=\"%s\"",
		         r->domain, r->entry->id, sts_result_name(r->problem), r->reason);
}

static void shared_fallback(struct resolution *r);

/* unclaim - r's fetch is over and its outcome is in the cache: other loops stop waiting. */
static void
unclaim(struct resolution *r)
{
	sts_claims_drop(sts_cache_claims(r->e->cache), r->claim);
	r->claim = 0;
}

/*
 * res_have_policy - r's policy id is now known: from ce (referenced, taken
 * over) when it is the cache's entry of that id, otherwise from r->fetched,
 * fetched at fetched_at. Goes on to the MX set.
 */
static void
res_have_policy(struct resolution *r, enum sts_source source, const struct sts_cache_entry *ce,
                int64_t fetched_at)
{
	sts_cache_release(r->entry);
	r->entry = ce;
	r->status = STS_POLICY;
	r->source = source;
	sts_strlcpy(r->id, r->txt_id, sizeof(r->id));
	if (ce != NULL && strcmp(ce->id, r->txt_id) == 0) {
		r->policy = &ce->policy;
		r->expires_at = ce->expires_at;
	} else {
		r->policy = &r->fetched;
		r->expires_at = fetched_at + r->fetched.max_age;
	}
	if (r->kind == RK_LOOKUP)
		res_mx(r);
	else
		res_finish(r);
}

static void
fetch_failed(struct resolution *r)
{
	if (r->e->stats != NULL)
		atomic_fetch_add_explicit(&r->e->stats->fetch_errors, 1, memory_order_relaxed);
	shared_fallback(r); /* before the failure is recorded: a put clears it */
	/* Section 3.3: the same policy id is not fetched again within 5 minutes. */
	sts_cache_fetch_failed(r->e->cache, r->domain, r->txt_id, sts_now_wall());
	unclaim(r); /* after the failure is recorded: the loops waiting for it see it */
	refresh_alert(r);
	no_policy_or_cache(r);
}

static void
fetch_cb(void *arg, const struct sts_fetch_result *fr)
{
	struct resolution *r = arg;
	struct sts_engine *e = r->e;
	struct sts_policy_error perr = {0};
	char detail[200];
	int64_t now = sts_now_wall();

	r->fetch_id = 0;
	if (!fr->ok) {
		snprintf(detail, sizeof(detail), "failed http=%ld: %s", fr->http_code, fr->reason);
		trace(e, r->domain, "fetch", detail);
		set_problem(r, fr->result, "policy fetch: %s", fr->reason);
		fetch_failed(r);
		return;
	}
	snprintf(detail, sizeof(detail), "ok http=%ld", fr->http_code);
	trace(e, r->domain, "fetch", detail);
	if (sts_policy_parse(fr->body, fr->len, &r->fetched, &perr) < 0) {
		set_problem(r, STS_RESULT_STS_POLICY_INVALID, "policy file line %u: %s", perr.line,
		            perr.reason);
		fetch_failed(r);
		return;
	}
	/* Section 3.3: a fetched policy, "mode: none" included, replaces the cache. A disk
	 * error is logged by the cache and the memory copy still applies. */
	(void)sts_cache_put(e->cache, r->domain, r->txt_id, fr->body, fr->len, &r->fetched, now);
	unclaim(r);
	shared_put(r, fr->body, fr->len, now);
	res_have_policy(r, STS_SOURCE_FETCHED, sts_cache_get(e->cache, r->domain), now);
}

static void
fetch_addr_cb(void *arg, const struct sts_dns_answer *a)
{
	struct resolution *r = arg;
	struct sts_engine *e = r->e;

	r->dns_id = 0;
	if (a->status != STS_DNS_OK) {
		set_problem(r, dns_result(a, STS_RESULT_STS_POLICY_FETCH_ERROR),
		            "mta-sts.%s: %s%s%s", r->domain, sts_dns_status_name(a->status),
		            a->why[0] != '\0' ? ": " : "", a->why);
		trace(e, r->domain, "fetch", r->reason);
		if (a->status == STS_DNS_BOGUS && r->kind == RK_LOOKUP &&
		    !entry_valid(r->entry, sts_now_wall())) {
			/* A forged address is an attack, not a failed fetch: the section 3.3
			 * retry delay would turn the next lookups into "no policy". With
			 * nothing cached, defer as for a failed TXT lookup. */
			r->status = e->conf->sts.defer_on_dns_failure ? STS_DEFER : STS_NO_POLICY;
			res_finish(r);
			return;
		}
		fetch_failed(r);
		return;
	}
	res_enter(r, RS_FETCH);
	r->fetch_id = sts_fetch_start(e->fetch, r->domain, a->addr, a->n, fetch_cb, r);
	if (r->fetch_id == 0) {
		set_problem(r, STS_RESULT_STS_POLICY_FETCH_ERROR, "policy fetch could not start");
		fetch_failed(r);
	}
}

/* res_fetch_live - section 3.3: the policy host is resolved by our own resolver, then fetched. */
static void
res_fetch_live(struct resolution *r)
{
	char name[STS_CACHE_DOMAIN_MAX + 8];

	res_enter(r, RS_FETCH_ADDR);
	if (r->e->stats != NULL)
		atomic_fetch_add_explicit(&r->e->stats->fetches, 1, memory_order_relaxed);
	if ((size_t)snprintf(name, sizeof(name), "mta-sts.%s", r->domain) >= sizeof(name) ||
	    (r->dns_id = sts_dns_addr(r->e->dns, name, fetch_addr_cb, r)) == 0) {
		set_problem(r, STS_RESULT_STS_POLICY_FETCH_ERROR, "%s: cannot be resolved", name);
		fetch_failed(r);
	}
}

/* --- the shared second level (policy/shared_state.h, docs/SECURITY.md) ------------ */

/*
 * shared_accept - may the policy another gateway stored for r's domain be
 * used in place of a fetch? Only the policy of the id this gateway's own
 * resolver just gave (section 3.1), still valid, not fetched in the future,
 * newer than any local copy, that parses (section 3.2), whose expiry its
 * max_age covers, and in mode enforce: a weaker mode could be an injected
 * downgrade, so a testing or none policy is fetched by this gateway
 * itself. Parses into r->fetched. A reason for a refusal goes to why.
 */
static bool
shared_accept(struct resolution *r, const struct shared_policy *p, int64_t now, const char **why)
{
	struct sts_policy_error perr = {0};

	*why = NULL;
	if (strcmp(p->id, r->txt_id) != 0)
		return false; /* another id: not what the domain publishes now, not an error */
	if (p->expires_at <= now || p->fetched_at > now + 300) {
		*why = "expired or fetched in the future";
		return false;
	}
	if (r->entry != NULL && strcmp(r->entry->id, p->id) == 0 &&
	    r->entry->fetched_at >= p->fetched_at)
		return false; /* not newer than ours: fetch */
	sts_policy_clear(&r->fetched);
	if (sts_policy_parse(p->text, p->text_len, &r->fetched, &perr) < 0) {
		*why = "policy does not parse";
		return false;
	}
	if (p->expires_at > p->fetched_at + (int64_t)r->fetched.max_age) {
		*why = "expiry beyond max_age";
		return false;
	}
	if (r->fetched.mode != STS_MODE_ENFORCE) {
		*why = "not enforce: fetched here";
		return false;
	}
	return true;
}

/*
 * shared_keep - the shared policy is of another id than the one published
 * now: not used in place of the fetch, but kept in case the fetch fails
 * while nothing valid is cached here, when it stands in for the cache
 * another gateway would have had (section 3.3).
 */
static void
shared_keep(struct resolution *r, const struct shared_policy *p, int64_t now)
{
	if (entry_valid(r->entry, now) || p->expires_at <= now || p->fetched_at > now + 300 ||
	    (r->shared_text = malloc(p->text_len)) == NULL)
		return;
	memcpy(r->shared_text, p->text, p->text_len);
	r->shared_len = p->text_len;
	r->shared_meta = *p;
	r->shared_meta.text = NULL;
}

/*
 * shared_fallback - the fetch failed: with nothing valid cached here, the
 * policy another gateway fetched under an earlier id is put in the cache,
 * as this gateway's own copy would be (section 3.3: a cached policy is used
 * until it expires when no new one can be fetched), if it passes what
 * shared_accept() asks of a policy (parses, enforce, expiry within max_age).
 */
static void
shared_fallback(struct resolution *r)
{
	struct sts_policy pol = {0};
	struct sts_policy_error perr = {0};
	const struct shared_policy *m = &r->shared_meta;
	int64_t now = sts_now_wall();

	if (r->shared_text == NULL || entry_valid(r->entry, now))
		goto done;
	if (m->expires_at <= now ||
	    sts_policy_parse(r->shared_text, r->shared_len, &pol, &perr) < 0 ||
	    pol.mode != STS_MODE_ENFORCE || m->expires_at > m->fetched_at + (int64_t)pol.max_age) {
		if (r->e->stats != NULL)
			atomic_fetch_add_explicit(&r->e->stats->shared.refused, 1,
			                          memory_order_relaxed);
		goto done;
	}
	log_notice("event=shared-policy domain=%s id=%s result=fallback published_id=%s "
	           "reason=\"the policy of the published id could not be fetched\"",
	           r->domain, m->id, r->txt_id);
	(void)sts_cache_put(r->e->cache, r->domain, m->id, r->shared_text, r->shared_len, &pol,
	                    m->fetched_at);
	sts_cache_release(r->entry);
	r->entry = sts_cache_get(r->e->cache, r->domain);
done:
	sts_policy_clear(&pol);
	free(r->shared_text);
	r->shared_text = NULL;
}

static void
shared_cb(void *arg, const struct shared_policy *p)
{
	struct resolution *r = arg;
	struct sts_engine *e = r->e;
	int64_t now = sts_now_wall();
	const char *why = NULL;

	r->shared_id = 0;
	if (p != NULL && strcmp(p->id, r->txt_id) != 0)
		shared_keep(r, p, now);
	if (p == NULL || !shared_accept(r, p, now, &why)) {
		if (why != NULL) {
			if (e->stats != NULL)
				atomic_fetch_add_explicit(&e->stats->shared.refused, 1,
				                          memory_order_relaxed);
			log_notice(
			    "event=shared-policy domain=%s id=%s result=refused reason=\"%s\"",
			    r->domain, p->id, why);
		}
		sts_policy_clear(&r->fetched);
		res_fetch_live(r);
		return;
	}
	log_info("event=shared-policy domain=%s id=%s result=used fetched=%lld", r->domain, p->id,
	         (long long)p->fetched_at);
	trace(e, r->domain, "fetch", "shared");
	/* The shared copy keeps its own fetch time: it expires when the fetched one does. */
	(void)sts_cache_put(e->cache, r->domain, r->txt_id, p->text, p->text_len, &r->fetched,
	                    p->fetched_at);
	unclaim(r);
	res_have_policy(r, STS_SOURCE_CACHE, sts_cache_get(e->cache, r->domain), p->fetched_at);
}

/*
 * claim_hold_ms - how long a claim on a fetch may stand: the fetch's own
 * bounds (the policy host's address, the shared Redis, the HTTPS fetch).
 */
static uint64_t
claim_hold_ms(const struct sts_engine *e)
{
	const struct conf *c = e->conf;

	return 1000ull * (c->dns.timeout + c->sts.fetch_timeout) +
	       (c->shared.enabled ? c->shared.wait_max : 0) + 1000u;
}

/*
 * other_loop_result - another loop's fetch of r's policy id ended: take its
 * policy once the cache has it, or its failure once the cache records one
 * (section 3.3: that id is not fetched again for a while). Drops r's own
 * claim, if any, when it does.
 */
static bool
other_loop_result(struct resolution *r)
{
	struct sts_engine *e = r->e;
	const struct sts_cache_entry *ce = sts_cache_get(e->cache, r->domain);
	int64_t wall = sts_now_wall();

	/* A lookup fetches only an id not cached or expired, so a valid entry of
	 * that id is the other loop's result. */
	if (ce != NULL && strcmp(ce->id, r->txt_id) == 0 && entry_valid(ce, wall)) {
		unclaim(r);
		res_have_policy(r, STS_SOURCE_CACHE, ce, wall);
		return true;
	}
	sts_cache_release(ce);
	if (!sts_cache_may_fetch(e->cache, r->domain, r->txt_id, wall)) {
		unclaim(r);
		set_problem(r, STS_RESULT_STS_POLICY_FETCH_ERROR,
		            "policy id %s failed to fetch in another worker", r->txt_id);
		no_policy_or_cache(r);
		return true;
	}
	return false;
}

/*
 * fetch_wait_cb - r waits for another loop's fetch of its policy id: take
 * the policy once the cache has it, take the failure once the cache
 * records one (section 3.3: that id is not fetched again for a while), and
 * fetch it here when the other loop gave up without either (its lookup was
 * cancelled, or it stopped waiting) or took longer than a fetch may.
 */
static void
fetch_wait_cb(struct loop *loop, void *arg)
{
	struct resolution *r = arg;
	struct sts_engine *e = r->e;
	uint64_t now = loop_now_ms(loop);

	r->timer = 0;
	if (other_loop_result(r))
		return;
	if (now < r->wait_end &&
	    sts_claims_held(sts_cache_claims(e->cache), r->domain, r->txt_id, now) &&
	    (r->timer = loop_timer_add(loop, CLAIM_POLL_MS, fetch_wait_cb, r)) != 0)
		return;
	res_fetch(r);
}

/*
 * res_fetch - one fetch of a policy id for the whole process (policy/sts_claim.h):
 * when another loop is fetching it, wait for its result; otherwise the
 * shared Redis first, for at most shared.wait_max, then the policy host.
 */
static void
res_fetch(struct resolution *r)
{
	struct sts_engine *e = r->e;
	uint64_t now = loop_now_ms(e->loop);

	/* A refresh does not wait: it fetches beside the other loop. Nor does a
	 * lookup that waited as long as a fetch may take. */
	if (r->claim == 0 &&
	    sts_claims_take(sts_cache_claims(e->cache), r->domain, r->txt_id, now, claim_hold_ms(e),
	                    &r->claim) == STS_CLAIM_HELD &&
	    r->kind == RK_LOOKUP && (r->wait_end == 0 || now < r->wait_end) &&
	    (r->timer = loop_timer_add(e->loop, CLAIM_POLL_MS, fetch_wait_cb, r)) != 0) {
		if (r->wait_end == 0) {
			r->wait_end = now + claim_hold_ms(e);
			if (e->stats != NULL)
				atomic_fetch_add_explicit(&e->stats->fetch_waits, 1,
				                          memory_order_relaxed);
		}
		res_enter(r, RS_FETCH_WAIT);
		return;
	}
	/* The other loop may have finished between this lookup's reading of the
	 * cache and its claim: its outcome is in the cache before its claim
	 * ends, so looking again now, claim held, misses nothing. */
	if (r->kind == RK_LOOKUP && other_loop_result(r))
		return;
	if (r->e->shared != NULL && (r->shared_id = shared_state_get(
	                                 r->e->shared, r->domain, r->txt_id, shared_cb, r)) != 0) {
		res_enter(r, RS_SHARED);
		return;
	}
	res_fetch_live(r);
}

/*
 * shared_put - a policy was fetched: store it for the other gateways, and
 * tell them when it replaces a policy of another id (they look again).
 */
static void
shared_put(struct resolution *r, const char *text, size_t len, int64_t now)
{
	struct shared_policy sp = {.fetched_at = now, .text = text, .text_len = len};

	if (r->e->shared == NULL)
		return;
	sts_strlcpy(sp.id, r->txt_id, sizeof(sp.id));
	sp.expires_at = now + r->fetched.max_age;
	shared_state_put(r->e->shared, r->domain, &sp,
	                 r->entry != NULL && strcmp(r->entry->id, r->txt_id) != 0);
}

/*
 * shared_change - another gateway fetched domain's policy under id: the
 * TXT answer remembered here is no longer taken as current (the next
 * lookup asks the resolver), and a cached policy of another id is
 * refreshed now. Nothing from the message is trusted beyond "look again".
 */
static void
shared_change(void *arg, const char *domain, const char *id)
{
	struct sts_engine *e = arg;
	const struct sts_cache_entry *ce;
	char seen_id[STS_SEEN_KEY_MAX];

	if (local_find(e, domain) != NULL)
		return;
	if ((sts_seen_get(e->seen, domain, strlen(domain), 0, seen_id, NULL, NULL, NULL) &
	     STS_SEEN_TXT) != 0 &&
	    strcmp(seen_id, id) != 0)
		(void)sts_seen_put_txt(e->seen, domain, seen_id, 1);
	ce = sts_cache_get(e->cache, domain);
	if (ce != NULL && strcmp(ce->id, id) != 0)
		(void)sts_engine_refresh(e, domain);
	sts_cache_release(ce);
}

/*
 * touch_if_old - record that id was seen unchanged, unless that was recorded
 * less than TOUCH_AFTER ago: a touch is a database write, and with every
 * lookup of every loop (and the "policy" command) checking the TXT record
 * they would otherwise pile up. The current entry is read again because
 * another loop may have touched or replaced it since this resolution began.
 */
static void
touch_if_old(struct sts_engine *e, const char *domain, const char *id, int64_t now)
{
	const struct sts_cache_entry *cur = sts_cache_get(e->cache, domain);

	if (cur != NULL && strcmp(cur->id, id) == 0 && now - cur->last_checked >= TOUCH_AFTER)
		(void)sts_cache_touch(e->cache, domain, now);
	sts_cache_release(cur);
}

/*
 * refresh_failed_early - a proactive refresh failed before any fetch (the TXT
 * lookup failed or the record is invalid). Recorded as a failed fetch of the
 * cached id, so that sts_cache_due() backs the domain off (5 minutes,
 * doubling) instead of offering it again at every tick, ahead of the domains
 * that can be refreshed (section 3.3).
 */
static void
refresh_failed_early(struct resolution *r, int64_t now)
{
	if (r->kind == RK_REFRESH && r->entry != NULL)
		(void)sts_cache_fetch_failed(r->e->cache, r->domain, r->entry->id, now);
}

/*
 * join_fetch - another lookup of r's domain is already fetching the policy
 * of the id r was just told: r's waiters join it rather than fetch it a
 * second time, and it asks for the MX set if r was to. r is freed. False
 * when there is no such lookup.
 */
static bool
join_fetch(struct resolution *r)
{
	struct resolution *o;

	if (r->kind != RK_LOOKUP || r->solo)
		return false;
	for (o = r->e->inflight; o != NULL; o = o->next)
		if (o != r && o->kind == RK_LOOKUP && !o->solo &&
		    (o->state == RS_SHARED || o->state == RS_FETCH_WAIT ||
		     o->state == RS_FETCH_ADDR || o->state == RS_FETCH) &&
		    strcmp(o->domain, r->domain) == 0 && strcmp(o->txt_id, r->txt_id) == 0)
			break;
	if (o == NULL)
		return false;
	o->recheck = o->recheck || r->recheck;
	if (r->recheck && !o->dane_asked)
		dane_start(o, true);
	if (r->waiters != NULL) {
		for (struct waiter *w = r->waiters; w != NULL; w = w->rnext)
			w->r = o;
		*o->wtail = r->waiters;
		o->wtail = r->wtail;
		r->waiters = NULL;
		r->wtail = &r->waiters;
	}
	res_free(r);
	return true;
}

/* until - when an answer of ttl seconds, bounded to [min, max] ms, stops being fresh. */
static uint64_t
until(const struct sts_engine *e, uint32_t ttl, uint64_t min, uint64_t max)
{
	uint64_t ms = (uint64_t)ttl * 1000u;

	return loop_now_ms(e->loop) + (ms < min ? min : ms > max ? max : ms);
}

/* hold_until - the end of a failure hold that starts now. */
static uint64_t
hold_until(const struct sts_engine *e)
{
	return loop_now_ms(e->loop) + FAIL_HOLD_MS;
}

static void
txt_cb(void *arg, const struct sts_dns_answer *a)
{
	struct resolution *r = arg;
	struct sts_engine *e = r->e;
	char id[STS_ID_MAX + 1] = "", why[128] = "";
	int64_t now = sts_now_wall();
	bool have_cache = entry_valid(r->entry, now);
	int sel;

	r->dns_id = 0;
	trace(e, r->domain, "txt-dnssec", dnssec_name(a));
	if (a->status == STS_DNS_OK) {
		for (size_t i = 0; i < a->n; i++)
			trace(e, r->domain, "txt", a->txt[i]);
		sel = sts_txt_select((const char *const *)a->txt, a->txt_len, a->n, id, why,
		                     sizeof(why));
	} else {
		trace(e, r->domain, "txt-status", sts_dns_status_name(a->status));
		if (a->status == STS_DNS_NXDOMAIN || a->status == STS_DNS_NODATA)
			sel = 0;
		else
			sel = -2;
	}

	/* What the domain publishes, for every engine's next decisions. */
	if (sel == 1 || sel == 0)
		(void)sts_seen_put_txt(e->seen, r->domain, sel == 1 ? id : "",
		                       until(e, a->ttl, e->txt_ttl_min, e->txt_ttl_max));
	else if (a->status == STS_DNS_TEMPFAIL)
		sts_seen_hold(e->seen, r->domain, STS_SEEN_TXT, NULL, hold_until(e));

	if (sel == -2) {
		/* Section 3.1 and RFC-NOTES: a temporary failure keeps the cache; with
		 * nothing cached, defer unless configured to treat it as no policy. A
		 * DNSSEC failure (bogus) is handled the same way, never as no record. */
		set_problem(r, dns_result(a, STS_RESULT_STS_POLICY_FETCH_ERROR),
		            "TXT _mta-sts.%s: %s%s%s", r->domain, sts_dns_status_name(a->status),
		            a->why[0] != '\0' ? ": " : "", a->why);
		refresh_alert(r);
		refresh_failed_early(r, now);
		if (!have_cache && r->kind == RK_LOOKUP) {
			r->status = e->conf->sts.defer_on_dns_failure ? STS_DEFER : STS_NO_POLICY;
			res_finish(r);
			return;
		}
		no_policy_or_cache(r);
		return;
	}
	if (sel == -1) {
		/* Section 3.1: several STSv1 records or an invalid one: no new policy now, but
		 * a cached policy is kept. */
		set_problem(r, STS_RESULT_STS_POLICY_INVALID, "TXT _mta-sts.%s: %s", r->domain,
		            why);
		refresh_alert(r);
		refresh_failed_early(r, now);
		no_policy_or_cache(r);
		return;
	}
	if (sel == 0) {
		if (r->kind == RK_REFRESH && r->entry != NULL) {
			/* The record is gone but the policy host may still serve the policy
			 * we hold: refresh it under its id rather than let it lapse. */
			sts_strlcpy(r->txt_id, r->entry->id, sizeof(r->txt_id));
			res_fetch(r);
			return;
		}
		/* No record: no policy now; a cached one is used until it expires
		 * (section 3.3 and RFC-NOTES: it is not deleted). */
		no_policy_or_cache(r);
		return;
	}

	sts_strlcpy(r->txt_id, id, sizeof(r->txt_id));
	if (have_cache && strcmp(r->entry->id, id) == 0 && r->kind != RK_REFRESH) {
		/* Section 3.3: the id is unchanged, the cached policy stays current. */
		touch_if_old(e, r->domain, id, now);
		no_policy_or_cache(r);
		return;
	}
	if (!sts_cache_may_fetch(e->cache, r->domain, id, now)) {
		set_problem(r, STS_RESULT_STS_POLICY_FETCH_ERROR,
		            "policy id %s failed to fetch recently; not retried yet", id);
		no_policy_or_cache(r);
		return;
	}
	/* Section 3.3: a new id (or nothing valid cached) means the policy is fetched. */
	if (!join_fetch(r))
		res_fetch(r);
}

static void
res_txt(struct resolution *r)
{
	char name[STS_CACHE_DOMAIN_MAX + 10];

	res_enter(r, RS_TXT);
	if ((size_t)snprintf(name, sizeof(name), "_mta-sts.%s", r->domain) >= sizeof(name) ||
	    (r->dns_id = sts_dns_txt(r->e->dns, name, txt_cb, r)) == 0) {
		struct sts_dns_answer a = {.status = STS_DNS_TEMPFAIL};
		sts_strlcpy(a.why, "lookup could not start", sizeof(a.why));
		txt_cb(r, &a);
		return;
	}
	r->txt_asked = true;
}

/* mx_key - the key of r's MX set: the candidates depend on the policy's patterns. */
static const char *
mx_key(const struct resolution *r)
{
	return r->local_key != NULL ? r->local_key : r->id;
}

/* mx_set - a view of r's candidates for the table of recent answers. */
static struct sts_seen_mx
mx_set(struct resolution *r)
{
	return (struct sts_seen_mx){
	    .mx = r->mx, .n_mx = r->n_mx, .addr = r->addr, .n_addr = r->n_addr};
}

static void
mx_addrs_done(struct resolution *r)
{
	struct sts_seen_mx set = mx_set(r);

	if (r->mx_done)
		(void)sts_seen_put_mx(r->e->seen, r->domain, mx_key(r), &set,
		                      until(r->e, r->mx_ttl, r->e->mx_ttl_min, r->e->mx_ttl_max));
	res_finish(r);
}

/* mx_ttl - the MX set is as current as its shortest-lived answer. */
static void
mx_ttl(struct resolution *r, uint32_t ttl)
{
	if (ttl < r->mx_ttl)
		r->mx_ttl = ttl;
}

static void
mx_addr_cb(void *arg, const struct sts_dns_answer *a)
{
	struct addr_sub *s = arg;
	struct resolution *r = s->r;

	s->id = 0;
	if (a->status == STS_DNS_OK) {
		for (size_t i = 0; i < a->n && r->n_addr < STS_ANSWER_MAX_ADDR; i++)
			r->addr[r->n_addr++] = a->addr[i];
		mx_ttl(r, a->ttl);
	} else if (a->status == STS_DNS_TEMPFAIL || a->status == STS_DNS_BOGUS) {
		r->mx_done = false; /* try again next time rather than remember a hole */
		if (a->status == STS_DNS_BOGUS)
			set_problem(r, STS_RESULT_DNSSEC_INVALID, "%s: %s", r->mx[s - r->sub],
			            a->why);
	}
	if (--r->n_sub_pending == 0)
		mx_addrs_done(r);
}

static int
mx_pref_cmp(const void *a, const void *b)
{
	const struct sts_dns_mx *x = a, *y = b;

	return (x->pref > y->pref) - (x->pref < y->pref);
}

static void
mx_add_candidate(struct resolution *r, const char *host)
{
	/* Section 4.1: only MX hosts whose names match a policy pattern are candidates. */
	if (host[0] == '\0' || r->n_mx >= STS_ANSWER_MAX_MX ||
	    !sts_mx_match_policy(r->policy, host))
		return;
	for (size_t i = 0; i < r->n_mx; i++)
		if (strcasecmp(r->mx[i], host) == 0)
			return;
	sts_strlcpy(r->mx[r->n_mx], host, sizeof(r->mx[0]));
	sts_lower(r->mx[r->n_mx]);
	r->n_mx++;
}

/*
 * mx_remembered - copy the MX set remembered under r's key, fresh at now
 * (0: however old), into r's candidates. False when there is none.
 */
static bool
mx_remembered(struct resolution *r, uint64_t now)
{
	struct sts_seen_mx set = mx_set(r);

	if ((sts_seen_get(r->e->seen, r->domain, strlen(r->domain), now, NULL, mx_key(r), &set,
	                  NULL) &
	     STS_SEEN_MX) == 0)
		return false;
	r->n_mx = set.n_mx;
	r->n_addr = set.n_addr;
	return true;
}

/*
 * mx_stale - the MX lookup failed temporarily: answer with the last MX set
 * chosen under the same policy, however old, and let it stand FAIL_HOLD_MS
 * (its hosts were the domain's and still match the policy; a resolver that
 * does not answer is no reason to refuse them). False when there is none:
 * then there are no candidates and the policy fails closed.
 */
static bool
mx_stale(struct resolution *r)
{
	if (!mx_remembered(r, 0))
		return false;
	sts_seen_hold(r->e->seen, r->domain, STS_SEEN_MX, mx_key(r), hold_until(r->e));
	res_finish(r);
	return true;
}

static void
mx_cb(void *arg, const struct sts_dns_answer *a)
{
	struct resolution *r = arg;
	struct sts_engine *e = r->e;
	struct sts_dns_mx mx[STS_DNS_MAX_RECORDS];
	size_t n = 0;
	char line[300];

	r->dns_id = 0;
	r->n_mx = r->n_addr = 0;
	trace(e, r->domain, "mx-dnssec", dnssec_name(a));
	if (a->status == STS_DNS_OK) {
		n = a->n < STS_DNS_MAX_RECORDS ? a->n : STS_DNS_MAX_RECORDS;
		memcpy(mx, a->mx, n * sizeof(mx[0]));
		qsort(mx, n, sizeof(mx[0]), mx_pref_cmp);
		for (size_t i = 0; i < n; i++) {
			snprintf(line, sizeof(line), "%u %s", mx[i].pref, mx[i].host);
			trace(e, r->domain, "mx", line);
			mx_add_candidate(r, mx[i].host);
		}
		r->mx_done = true;
		mx_ttl(r, a->ttl);
	} else {
		trace(e, r->domain, "mx-status", sts_dns_status_name(a->status));
		if (a->status == STS_DNS_NXDOMAIN || a->status == STS_DNS_NODATA) {
			/* RFC 5321 section 5.1: without MX records the domain is its own MX. */
			mx_add_candidate(r, r->domain);
			r->mx_done = true;
			mx_ttl(r, a->ttl);
		} else if (a->status == STS_DNS_BOGUS) {
			/* A forged MX set gives no candidate: the policy fails closed, and
			 * the set is not remembered. */
			set_problem(r, STS_RESULT_DNSSEC_INVALID, "MX %s: %s", r->domain, a->why);
		} else {
			log_notice("event=policy-lookup domain=%s result=mx-lookup reason=\"MX %s: "
			           "%s\"",
			           r->domain, sts_dns_status_name(a->status), a->why);
			if (a->status == STS_DNS_TEMPFAIL && mx_stale(r))
				return;
		}
	}
	if (r->n_mx == 0) {
		mx_addrs_done(r);
		return;
	}
	res_enter(r, RS_MX_ADDR);
	for (size_t i = 0; i < r->n_mx; i++) {
		r->sub[i].r = r;
		r->sub[i].id = sts_dns_addr(e->dns, r->mx[i], mx_addr_cb, &r->sub[i]);
		if (r->sub[i].id != 0)
			r->n_sub_pending++;
		else
			r->mx_done = false;
	}
	if (r->n_sub_pending == 0)
		mx_addrs_done(r);
}

/*
 * res_mx - the candidates: the domain's MX hosts that match the policy
 * (section 4.1), from a fresh remembered MX set, else from the resolver
 * (always for a recheck).
 */
static void
res_mx(struct resolution *r)
{
	if (r->policy == NULL || r->policy->mode == STS_MODE_NONE) {
		res_finish(r);
		return;
	}
	if (!r->recheck && mx_remembered(r, loop_now_ms(r->e->loop))) {
		res_finish(r);
		return;
	}
	res_enter(r, RS_MX);
	r->mx_ttl = UINT32_MAX;
	if ((r->dns_id = sts_dns_mx(r->e->dns, r->domain, mx_cb, r)) == 0) {
		struct sts_dns_answer a = {.status = STS_DNS_TEMPFAIL};
		mx_cb(r, &a);
		return;
	}
	r->mx_asked = true;
}

static void
start_background(struct sts_engine *e, const char *domain, enum res_kind kind)
{
	struct resolution *r;

	if (res_find(e, domain, kind) != NULL || (r = res_new(e, domain, kind)) == NULL)
		return;
	r->entry = sts_cache_get(e->cache, domain);
	if (r->entry == NULL) {
		res_free(r);
		return;
	}
	res_txt(r);
}

static void
res_start(struct loop *loop, void *arg)
{
	struct resolution *r = arg;
	struct sts_engine *e = r->e;
	const struct local_policy *lp;

	(void)loop;
	r->timer = 0;
	if (r->solo) {
		res_finish(r);
		return;
	}
	/* RFC 7672 beside RFC 8461: the DANE state is looked up alongside. */
	dane_start(r, r->recheck);
	/* Operator policies win over published ones: no first-use gap. */
	if ((lp = local_find(e, r->domain)) != NULL) {
		r->status = STS_POLICY;
		r->source = STS_SOURCE_LOCAL;
		r->policy = &lp->policy;
		r->local_key = lp->key;
		res_mx(r);
		return;
	}
	/* Sections 3.1 and 5.1: the TXT id is checked on every use, a cached
	 * policy included; a changed id is fetched before the answer. */
	r->entry = sts_cache_get(e->cache, r->domain);
	res_txt(r);
}

/* --- DANE ----------------------------------------------------------------------- */

/*
 * dane_mode_of - the DANE mode of domain: the operator's for it, else
 * dane.enabled. Without a trust anchor nothing is ever secure: "on" is
 * "off", and "only" stays (it refuses).
 */
static enum sts_dane_mode
dane_mode_of(const struct sts_engine *e, const char *domain)
{
	const struct conf *c = e->conf;
	enum sts_dane_mode mode = c->dane.enabled ? STS_DANE_MODE_ON : STS_DANE_MODE_OFF;

	for (size_t i = 0; i < c->n_policies; i++)
		if (c->policies[i].has_dane && strcasecmp(c->policies[i].domain, domain) == 0) {
			mode = c->policies[i].dane;
			break;
		}
	if (mode == STS_DANE_MODE_ON && e->dane_dns == NULL)
		mode = STS_DANE_MODE_OFF;
	return mode;
}

static void
dane_cb(void *arg, const struct sts_dane_state *st)
{
	struct resolution *r = arg;

	r->dane_id = 0;
	r->dane = sts_dane_ref(st);
	r->dane_lost = st == NULL;
	if (r->sts_done)
		res_deliver(r);
}

/*
 * dane_start - r's DANE state: remembered and fresh, unless fresh is asked
 * for, else from the resolver (sts_dane_dns). A lookup already asked for r
 * is not repeated.
 */
static void
dane_start(struct resolution *r, bool fresh)
{
	struct sts_engine *e = r->e;

	r->dane_mode = dane_mode_of(e, r->domain);
	if (r->dane_mode == STS_DANE_MODE_OFF || e->dane_dns == NULL || r->dane_asked)
		return;
	if (!fresh && r->dane == NULL)
		r->dane = (const struct sts_dane_state *)(void *)sts_seen_get_ref(
		    e->seen, r->domain, strlen(r->domain), loop_now_ms(e->loop));
	if (!fresh && r->dane != NULL)
		return;
	sts_dane_release(r->dane);
	r->dane = NULL;
	r->dane_id = sts_dane_dns_lookup(e->dane_dns, r->domain, dane_cb, r);
	r->dane_asked = true;
	r->dane_lost = r->dane_id == 0;
}

/* res_finish - the MTA-STS part is answered: deliver, once the DANE part is too. */
static void
res_finish(struct resolution *r)
{
	r->sts_done = true;
	if (r->dane_id != 0) {
		res_enter(r, RS_DANE);
		return;
	}
	res_deliver(r);
}

/* res_deliver - log a problem once, deliver to every waiter, free r. */
static void
res_deliver(struct resolution *r)
{
	struct sts_engine *e = r->e;
	struct sts_answer a;
	struct waiter *w;
	bool dead;

	res_enter(r, RS_DONE);
	if (r->problem != STS_RESULT_OK)
		log_notice(
		    "event=policy-lookup domain=%s result=%s status=%s source=%s reason=\"%s\"",
		    r->domain, sts_result_name(r->problem),
		    r->status == STS_POLICY  ? "policy"
		    : r->status == STS_DEFER ? "defer"
		                             : "none",
		    sts_source_name(r->source), r->reason);
	res_unlink(r);

	answer_init(&a, r->domain);
	a.status = r->status;
	if (r->status == STS_POLICY && r->policy != NULL) {
		answer_policy(&a, r->source, r->policy, r->id, r->expires_at);
		a.n_mx = r->n_mx;
		if (r->n_mx > 0)
			memcpy(a.mx, r->mx, r->n_mx * sizeof(a.mx[0]));
		a.n_addr = r->n_addr;
		if (r->n_addr > 0)
			memcpy(a.addr, r->addr, r->n_addr * sizeof(a.addr[0]));
	} else if (r->status == STS_POLICY) {
		a.status = STS_NO_POLICY;
	}
	a.problem = r->problem;
	if (r->problem != STS_RESULT_OK)
		sts_strlcpy(a.reason, r->reason, sizeof(a.reason));
	/* What applies was asked of the resolver by this resolution: the TXT record
	 * unless an operator policy decides, the MX set when candidates matter, the
	 * DANE state when DANE is used. */
	a.rechecked = (r->txt_asked || r->local_key != NULL) &&
	              (r->mx_asked || a.status != STS_POLICY || a.mode == STS_MODE_NONE) &&
	              (r->dane_asked || r->dane_mode == STS_DANE_MODE_OFF || e->dane_dns == NULL);
	a.dane_mode = r->dane_mode;
	a.dane = r->dane;
	if (r->dane_lost && r->dane_mode != STS_DANE_MODE_OFF && r->kind == RK_LOOKUP) {
		/* no DANE state could be had: never a reason to skip DANE */
		a.status = STS_DEFER;
		a.problem = STS_RESULT_DNSSEC_INVALID;
		sts_strlcpy(a.reason, "DANE lookup could not run", sizeof(a.reason));
	}

	e->busy++;
	e->delivering = r;
	while (!e->dead && (w = r->waiters) != NULL) {
		ssize_t sh = w->has_dest ? smarthost_find(e, (struct sockaddr *)&w->dest) : -1;
		struct sts_answer sa;

		r->waiters = w->rnext;
		if (r->waiters == NULL)
			r->wtail = &r->waiters;
		waiter_unlink(e, w);
		if (sh >= 0) {
			answer_smarthost(e, (size_t)sh, r->domain, &sa);
			sa.rechecked = r->recheck; /* nothing in DNS to ask */
			w->cb(w->arg, &sa);
		} else {
			w->cb(w->arg, &a);
		}
		free(w);
	}
	e->delivering = NULL;
	dead = e->dead;
	e->busy--;
	if (dead) {
		/* the engine was freed from a callback: the rest of r's waiters are freed
		 * with it, silently */
		while ((w = r->waiters) != NULL) {
			r->waiters = w->rnext;
			waiter_unlink(e, w);
			free(w);
		}
	}
	res_free(r);
	if (dead && e->busy == 0)
		engine_destroy(e);
}

/* --- proactive refresh ------------------------------------------------------- */

/* refresh_start - the scheduler's choice: operator policies need no refresh. */
static void
refresh_start(void *arg, const char *domain)
{
	struct sts_engine *e = arg;

	if (local_find(e, domain) == NULL)
		start_background(e, domain, RK_REFRESH);
}

/* --- the public functions --------------------------------------------------- */

struct sts_engine *
sts_engine_new(const struct sts_engine_params *p, char *err, size_t errlen)
{
	const struct conf *c = p->conf;
	struct sts_engine *e;
	struct sts_dns_params dp = {0};
	struct sts_fetch_params fp = {0};

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "policy engine: out of memory");
		return NULL;
	}
	e->loop = p->loop;
	e->conf = c;
	e->cache = p->cache;
	e->trace = p->trace;
	e->trace_arg = p->trace_arg;
	e->check_txt = p->check_txt;
	e->seen = sts_cache_seen(p->cache);
	sts_seen_reserve(e->seen, p->mx_cache_max);
	e->txt_ttl_min = c->sts.txt_ttl_min * 1000ull;
	e->txt_ttl_max = c->sts.txt_ttl_max * 1000ull;
	e->mx_ttl_min = c->sts.mx_ttl_min * 1000ull;
	e->mx_ttl_max = c->sts.mx_ttl_max * 1000ull;

	if (c->n_policies > 0 && (e->local = calloc(c->n_policies, sizeof(*e->local))) == NULL)
		goto nomem;
	for (size_t i = 0; i < c->n_policies; i++) {
		struct local_policy *lp = &e->local[e->n_local];
		char what[300];

		/* An entry without a mode sets only the domain's DANE mode. */
		if (!c->policies[i].has_mode)
			continue;
		snprintf(what, sizeof(what), "policy for %s (line %d)", c->policies[i].domain,
		         c->policies[i].line);
		if (policy_from(&lp->policy, c->policies[i].mode, c->policies[i].mx,
		                c->policies[i].n_mx, what, err, errlen) < 0)
			goto fail;
		lp->domain = c->policies[i].domain;
		local_key(lp);
		e->n_local++;
	}
	if (c->n_smarthosts > 0 && (e->smart = calloc(c->n_smarthosts, sizeof(*e->smart))) == NULL)
		goto nomem;
	for (size_t i = 0; i < c->n_smarthosts; i++) {
		/* The name is checked as a certificate name, not as a pattern. */
		if ((e->smart[i].mx = calloc(1, sizeof(char *))) == NULL ||
		    (e->smart[i].mx[0] = strdup(c->smarthosts[i].name)) == NULL)
			goto nomem;
		e->smart[i].n_mx = 1;
		e->smart[i].mode = STS_MODE_ENFORCE;
		e->smart[i].max_age = STS_MAX_AGE_CLAMP;
	}

	dp.forwarders = (const char *const *)c->dns.forwarders;
	dp.n_forwarders = c->dns.n_forwarders;
	dp.trust_anchor_file = c->dns.trust_anchor_file;
	dp.timeout_ms = c->dns.timeout * 1000u;
	if ((e->dns = sts_dns_new(p->loop, &dp, err, errlen)) == NULL)
		goto fail;
	if (c->dns.trust_anchor_file != NULL) {
		/* RFC 7672 rests on DNSSEC: without a trust anchor nothing is secure */
		struct sts_dane_dns_params dd = {.loop = p->loop,
		                                 .dns = e->dns,
		                                 .seen = e->seen,
		                                 .insecure_mx = c->dane.insecure_mx,
		                                 .defer_on_dns_failure =
		                                     c->sts.defer_on_dns_failure,
		                                 .ttl_min = c->dane.ttl_min,
		                                 .ttl_max = c->dane.ttl_max};

		if ((e->dane_dns = sts_dane_dns_new(&dd)) == NULL)
			goto nomem;
	}
	fp.ca_file = c->tls.ca_file;
	fp.timeout_ms = c->sts.fetch_timeout * 1000u;
	fp.port = p->fetch_port;
	if ((e->fetch = sts_fetch_new(p->loop, &fp, err, errlen)) == NULL)
		goto fail;
	e->stats = p->stats;
	if (c->sts.refresh && !p->no_refresh) {
		struct sts_refresh_params rp = {.loop = p->loop,
		                                .cache = p->cache,
		                                .interval_ms = p->refresh_ms,
		                                .start = refresh_start,
		                                .arg = e};

		if ((e->refresh = sts_refresh_new(&rp)) == NULL)
			goto nomem;
	}
	if (c->shared.enabled && !p->check_txt) {
		struct shared_state_params sp = {
		    .loop = p->loop,
		    .conf = c,
		    .subscribe = !p->no_refresh, /* one engine per process listens */
		    .stats = p->stats != NULL ? &p->stats->shared : NULL,
		    .on_change = shared_change,
		    .arg = e,
		};

		if ((e->shared = shared_state_new(&sp)) == NULL)
			goto nomem;
	}
	return e;
nomem:
	snprintf(err, errlen, "policy engine: out of memory");
fail:
	engine_destroy(e);
	return NULL;
}

static void
engine_destroy(struct sts_engine *e)
{
	struct waiter *w;

	if (e == NULL)
		return;
	sts_refresh_free(e->refresh);
	while ((w = e->waiters) != NULL) {
		e->waiters = w->next;
		free(w);
	}
	while (e->inflight != NULL) {
		e->inflight->waiters = NULL;
		res_free(e->inflight);
	}
	sts_cache_release(e->held);
	sts_dane_release(e->held_dane);
	for (size_t i = 0; i < e->n_local; i++)
		sts_policy_clear(&e->local[i].policy);
	free(e->local);
	if (e->smart != NULL)
		for (size_t i = 0; i < e->conf->n_smarthosts; i++)
			sts_policy_clear(&e->smart[i]);
	free(e->smart);
	shared_state_free(e->shared);
	sts_fetch_free(e->fetch);
	sts_dane_dns_free(e->dane_dns);
	sts_dns_free(e->dns);
	free(e);
}

void
sts_engine_free(struct sts_engine *e)
{
	if (e == NULL)
		return;
	if (e->busy > 0) {
		e->dead = true; /* finished when the delivery in progress unwinds */
		return;
	}
	engine_destroy(e);
}

/*
 * The warm path: one hash lookup in the shared cache, one in the table of
 * recent DNS answers, a clock read and copies of what the answer needs; no
 * allocation and no system call.
 */
static int
sts_now(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
        struct sts_answer *out, struct sts_seen_ref **ref)
{
	const struct local_policy *lp;
	const struct sts_cache_entry *ce;
	struct sts_seen_mx set;
	char txt_id[STS_SEEN_KEY_MAX];
	uint64_t now_ms = loop_now_ms(e->loop);
	unsigned seen;
	bool need_mx;
	ssize_t sh;
	size_t dlen;

	sts_cache_release(e->held);
	e->held = NULL;
	if (domain == NULL || (dlen = strnlen(domain, STS_HOSTNAME_MAX + 1)) > STS_HOSTNAME_MAX)
		return 0;
	if ((sh = smarthost_find(e, dest)) >= 0) {
		answer_smarthost(e, (size_t)sh, domain, out);
		return 1;
	}
	/* Candidates are copied straight into the answer. */
	answer_init_len(out, domain, dlen);
	set = (struct sts_seen_mx){.mx = out->mx, .addr = out->addr};
	if ((lp = local_find(e, domain)) != NULL) {
		need_mx = lp->policy.mode != STS_MODE_NONE;
		if (need_mx &&
		    (sts_seen_get(e->seen, domain, dlen, now_ms, NULL, lp->key, &set, ref) &
		     STS_SEEN_MX) == 0)
			return 0;
		answer_policy(out, STS_SOURCE_LOCAL, &lp->policy, "", 0);
		if (need_mx) {
			out->n_mx = set.n_mx;
			out->n_addr = set.n_addr;
		}
		return 1;
	}
	if (e->check_txt)
		return 0;
	ce = sts_cache_get(e->cache, domain);
	if (ce == NULL || !entry_valid(ce, wall_now())) {
		/* Nothing usable cached: "no policy" while the domain publishes no record. */
		sts_cache_release(ce);
		seen = sts_seen_get(e->seen, domain, dlen, now_ms, txt_id, NULL, NULL, ref);
		return (seen & STS_SEEN_TXT) != 0 && txt_id[0] == '\0';
	}
	/*
	 * Sections 3.1 and 5.1: the cached policy answers only while the TXT
	 * record, as answered within its TTL, names its id, or names none (a
	 * cached policy outlives its record, section 3.3). Anything else is
	 * for the resolver: a new id is fetched before the answer.
	 */
	need_mx = ce->policy.mode != STS_MODE_NONE;
	seen =
	    sts_seen_get(e->seen, domain, dlen, now_ms, txt_id, need_mx ? ce->id : NULL, &set, ref);
	if ((seen & STS_SEEN_TXT) == 0 || (txt_id[0] != '\0' && strcmp(txt_id, ce->id) != 0) ||
	    (need_mx && (seen & STS_SEEN_MX) == 0)) {
		sts_cache_release(ce);
		return 0;
	}
	answer_policy(out, STS_SOURCE_CACHE, &ce->policy, ce->id, ce->expires_at);
	if (need_mx) {
		out->n_mx = set.n_mx;
		out->n_addr = set.n_addr;
	}
	e->held = ce;
	if (e->stats != NULL)
		atomic_fetch_add_explicit(&e->stats->cache_hits, 1, memory_order_relaxed);
	return 1;
}

/*
 * sts_engine_lookup_now - the MTA-STS answer from memory and the DANE
 * state with it: a reference taken under the same lock of the table of
 * recent answers that gave the TXT answer and the MX set.
 */
int
sts_engine_lookup_now(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                      struct sts_answer *out)
{
	struct sts_seen_ref *ref = NULL;
	enum sts_dane_mode mode;
	bool want;

	sts_dane_release(e->held_dane);
	e->held_dane = NULL;
	if (domain == NULL)
		return 0;
	mode = dane_mode_of(e, domain);
	want = mode != STS_DANE_MODE_OFF && e->dane_dns != NULL;
	if (sts_now(e, domain, dest, out, want ? &ref : NULL) == 0) {
		sts_seen_ref_release(ref);
		return 0;
	}
	if (out->source == STS_SOURCE_SMARTHOST) {
		sts_seen_ref_release(ref);
		return 1;
	}
	out->dane_mode = mode;
	if (!want)
		return 1;
	/* an answer that did not consult the table (an operator policy of mode none) */
	if (ref == NULL &&
	    (ref = sts_seen_get_ref(e->seen, domain, strlen(domain), loop_now_ms(e->loop))) == NULL)
		return 0;
	out->dane = e->held_dane = (const struct sts_dane_state *)(void *)ref;
	return 1;
}

int
sts_engine_refresh(struct sts_engine *e, const char *domain)
{
	const struct sts_cache_entry *ce = sts_cache_get(e->cache, domain);

	if (ce == NULL)
		return -1;
	sts_cache_release(ce);
	if (res_find(e, domain, RK_REFRESH) != NULL)
		return 0;
	start_background(e, domain, RK_REFRESH);
	return res_find(e, domain, RK_REFRESH) != NULL ? 0 : -1;
}

/* lookup_start - sts_engine_lookup() and sts_engine_recheck(). */
static uint64_t
lookup_start(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
             sts_engine_cb *cb, void *arg, bool recheck)
{
	struct resolution *r = NULL;
	struct waiter *w;
	char dom[STS_CACHE_DOMAIN_MAX];
	bool solo;

	sts_cache_release(e->held);
	e->held = NULL;
	sts_dane_release(e->held_dane);
	e->held_dane = NULL;
	if (domain == NULL || cb == NULL || sts_strlcpy(dom, domain, sizeof(dom)) >= sizeof(dom) ||
	    !sts_hostname_valid(dom))
		return 0;
	sts_lower(dom);
	if (dom[strlen(dom) - 1] == '.')
		dom[strlen(dom) - 1] = '\0';
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return 0;
	solo = smarthost_find(e, dest) >= 0;
	if (!solo)
		r = recheck ? res_find_recheck(e, dom) : res_find(e, dom, RK_LOOKUP);
	if (r == NULL) {
		if ((r = res_new(e, dom, RK_LOOKUP)) == NULL) {
			free(w);
			return 0;
		}
		r->solo = solo;
		r->recheck = recheck;
		/* The callback never runs inside this call, even for an answer from memory. */
		if ((r->timer = loop_timer_add(e->loop, 0, res_start, r)) == 0) {
			res_free(r);
			free(w);
			return 0;
		}
	}
	w->id = ++e->next_id;
	w->cb = cb;
	w->arg = arg;
	w->r = r;
	if (dest != NULL && (dest->sa_family == AF_INET || dest->sa_family == AF_INET6)) {
		w->has_dest = true;
		memcpy(&w->dest, dest,
		       dest->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                  : sizeof(struct sockaddr_in6));
	}
	*r->wtail = w;
	r->wtail = &w->rnext;
	w->next = e->waiters;
	if (e->waiters != NULL)
		e->waiters->prev = w;
	e->waiters = w;
	return w->id;
}

uint64_t
sts_engine_lookup(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                  sts_engine_cb *cb, void *arg)
{
	return lookup_start(e, domain, dest, cb, arg, false);
}

uint64_t
sts_engine_recheck(struct sts_engine *e, const char *domain, const struct sockaddr *dest,
                   sts_engine_cb *cb, void *arg)
{
	return lookup_start(e, domain, dest, cb, arg, true);
}

void
sts_engine_cancel(struct sts_engine *e, uint64_t id)
{
	struct waiter *w, **pp;

	sts_cache_release(e->held);
	e->held = NULL;
	sts_dane_release(e->held_dane);
	e->held_dane = NULL;
	if (id == 0)
		return;
	for (w = e->waiters; w != NULL && w->id != id; w = w->next)
		;
	if (w == NULL)
		return;
	waiter_unlink(e, w);
	for (pp = &w->r->waiters; *pp != w; pp = &(*pp)->rnext)
		;
	*pp = w->rnext;
	if (w->r->wtail == &w->rnext)
		w->r->wtail = pp;
	/* A shared resolution goes on without its last waiter: what it learns is
	 * cached for the next lookup. A solo one has nothing more to do. */
	if (w->r->waiters == NULL && w->r->solo && w->r != e->delivering)
		res_free(w->r);
	free(w);
}

const char *
sts_source_name(enum sts_source source)
{
	switch (source) {
	case STS_SOURCE_LOCAL:
		return "local";
	case STS_SOURCE_SMARTHOST:
		return "smarthost";
	case STS_SOURCE_CACHE:
		return "cache";
	case STS_SOURCE_FETCHED:
		return "fetched";
	case STS_SOURCE_NONE:
	default:
		return "none";
	}
}
