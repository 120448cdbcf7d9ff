// sources: policy/sts_engine.c policy/sts_decide.c policy/sts_refresh.c policy/sts_dane.c
// sources: policy/sts_dane_dns.c policy/sts_tlsa.c tls/tls_dane.c policy/sts_cache.c policy/sts_claim.c policy/sts_policy.c policy/sts_txt.c
// sources: policy/sts_mx.c policy/sts_seen.c tests/policy/fake_sts_dns.c tests/policy/fake_sts_fetch.c
// sources: tls/tls_verify.c tests/tls/testca.c core/conf.c core/loop.c core/log.c
// sources: core/types.c core/util.c
// sources: policy/shared_state.c policy/shared_value.c core/redis_loop.c
/*
 * test_sts_engine.c - the MTA-STS policy engine against scripted DNS and
 * HTTPS answers (the fakes replace policy/sts_dns.c and policy/sts_fetch.c
 * at link time), with the real cache in a temporary state directory, the
 * real parsers and a real event loop.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "policy/sts_cache.h"
#include "policy/sts_dns.h"
#include "policy/sts_engine.h"
#include "policy/sts_policy.h"
#include "tests/tls/testca.h"

/* The fakes' control functions (tests/policy/fake_sts_dns.c, fake_sts_fetch.c). */
void fake_dns_reset(void);
void fake_dns_set(const char *name, int type, enum sts_dns_status status, const char *const *recs,
                  size_t n);
unsigned fake_dns_count(const char *name, int type);
void fake_dns_ttl(const char *name, int type, uint32_t ttl);
void fake_dns_delay(const char *name, int type, unsigned ms);
void fake_dns_secure(const char *name, int type, bool secure);
void fake_dns_canon(const char *name, int type, const char *canon);
void fake_fetch_reset(void);
void fake_fetch_set(const char *domain, int ok, enum sts_result result, long code,
                    const char *body);
unsigned fake_fetch_count(const char *domain);

#define POLICY_A  "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n"
#define POLICY_B  "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n"
#define POLICY_T  "version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 86400\n"
#define POLICY_N  "version: STSv1\nmode: none\nmax_age: 86400\n"
#define POLICY_1  "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 86400\n"
#define POLICY_2  "version: STSv1\nmode: enforce\nmx: mx2.example.com\nmax_age: 86400\n"
#define OLD_CHECK 600 /* seconds: older than the interval between two recorded TXT checks */

/* --- fixture ------------------------------------------------------------------ */

struct fx {
	char dir[64];
	char log[128];
	struct conf *conf;
	struct loop *loop;
	struct sts_cache *cache;
	struct sts_engine *e;
	unsigned refresh_ms;
};

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fx_engine(struct fx *f)
{
	struct sts_engine_params p = {
	    .loop = f->loop, .conf = f->conf, .cache = f->cache, .refresh_ms = f->refresh_ms};
	char err[256] = "";

	sts_engine_free(f->e);
	f->e = sts_engine_new(&p, err, sizeof(err));
	if (f->e == NULL)
		fail_msg("sts_engine_new: %s", err);
}

static int teardown(void **state);

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	*state = f;
	sts_strlcpy(f->dir, "/tmp/sts-engine-XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->log, sizeof(f->log), "%s/log", f->dir);
	if (log_open(f->log) < 0 || (f->conf = calloc(1, sizeof(*f->conf))) == NULL ||
	    conf_defaults(f->conf) < 0)
		goto fail;
	f->conf->sts.refresh = false;
	f->loop = loop_new();
	f->cache = sts_cache_open(f->dir, err, sizeof(err));
	if (f->loop == NULL || f->cache == NULL)
		goto fail;
	fake_dns_reset();
	fake_fetch_reset();
	return 0;
fail:
	teardown(state);
	return -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	sts_engine_free(f->e);
	sts_cache_close(f->cache);
	loop_free(f->loop);
	conf_free(f->conf);
	log_open(NULL);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* run - dispatch until nothing is left to do now. */
static void
run(struct fx *f)
{
	int idle = 0;

	for (int i = 0; i < 1000 && idle < 3; i++)
		idle = loop_once(f->loop, 0) > 0 ? 0 : idle + 1;
}

static bool
log_has(const struct fx *f, const char *needle)
{
	char buf[65536];
	FILE *fp = fopen(f->log, "r");
	size_t n;

	if (fp == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void
cache_put(struct fx *f, const char *domain, const char *id, const char *text, int64_t at)
{
	struct sts_policy p = {0};

	assert_int_equal(sts_policy_parse(text, strlen(text), &p, NULL), 0);
	assert_int_equal(sts_cache_put(f->cache, domain, id, text, strlen(text), &p, at), 0);
	sts_policy_clear(&p);
}

static void
set_txt(const char *domain, const char *rec)
{
	char name[300];

	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	fake_dns_set(name, 'T', STS_DNS_OK, &rec, 1);
}

static void
set_addr(const char *name, const char *a)
{
	fake_dns_set(name, 'A', STS_DNS_OK, &a, 1);
}

/* publish - a domain with a TXT id, a policy host that serves body, and two MX hosts. */
static void
publish(const char *domain, const char *id, const char *body)
{
	char rec[64], host[300];
	const char *mx[] = {"10 mx1.example.com", "20 mx2.example.com"};

	snprintf(rec, sizeof(rec), "v=STSv1; id=%s", id);
	set_txt(domain, rec);
	snprintf(host, sizeof(host), "mta-sts.%s", domain);
	set_addr(host, "10.0.44.2");
	fake_fetch_set(domain, 1, STS_RESULT_OK, 200, body);
	fake_dns_set(domain, 'M', STS_DNS_OK, mx, 2);
	set_addr("mx1.example.com", "10.0.25.2");
	set_addr("mx2.example.com", "10.0.26.2");
}

struct got {
	int calls;
	struct sts_answer a;
	enum sts_mode pmode;
	size_t p_nmx;
};

static void
got_cb(void *arg, const struct sts_answer *a)
{
	struct got *g = arg;

	g->calls++;
	g->a = *a;
	g->a.policy = NULL; /* valid only during the call */
	g->pmode = a->policy != NULL ? a->policy->mode : STS_MODE_NONE;
	g->p_nmx = a->policy != NULL ? a->policy->n_mx : 0;
}

static struct got
lookup(struct fx *f, const char *domain)
{
	struct got g = {0};

	assert_true(sts_engine_lookup(f->e, domain, NULL, got_cb, &g) != 0);
	assert_int_equal(g.calls, 0); /* never inside the call */
	run(f);
	assert_int_equal(g.calls, 1);
	return g;
}

static int64_t
entry_last_checked(struct fx *f, const char *domain, char id[STS_CACHE_ID_MAX])
{
	const struct sts_cache_entry *ce = sts_cache_get(f->cache, domain);
	int64_t t;

	assert_non_null(ce);
	if (id != NULL)
		sts_strlcpy(id, ce->id, STS_CACHE_ID_MAX);
	t = ce->last_checked;
	sts_cache_release(ce);
	return t;
}

/* --- lookups --------------------------------------------------------------------- */

static void
rfc8461_3_local_policy_wins(void **state)
{
	struct fx *f = *state;
	struct conf_policy *cp = calloc(1, sizeof(*cp));
	struct sts_answer a;
	struct got g;

	assert_non_null(cp);
	cp->domain = strdup("example.com");
	cp->has_mode = true;
	cp->mode = STS_MODE_ENFORCE;
	cp->mx = calloc(1, sizeof(char *));
	cp->mx[0] = strdup("mx2.example.com");
	cp->n_mx = 1;
	f->conf->policies = cp;
	f->conf->n_policies = 1;
	publish("example.com", "pub1", POLICY_A);
	cache_put(f, "example.com", "cached1", POLICY_B, sts_now_wall());
	fx_engine(f);

	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.source, STS_SOURCE_LOCAL);
	assert_int_equal(g.a.mode, STS_MODE_ENFORCE);
	assert_int_equal(g.a.n_mx, 1);
	assert_string_equal(g.a.mx[0], "mx2.example.com");
	assert_int_equal(g.a.n_addr, 1);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 0);
	assert_int_equal(fake_fetch_count("example.com"), 0);
	/* and warm: from memory */
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 1);
	assert_int_equal(a.source, STS_SOURCE_LOCAL);
	assert_string_equal(a.mx[0], "mx2.example.com");
}

static void
rfc8461_3_local_policy_bad_pattern_refused(void **state)
{
	struct fx *f = *state;
	struct conf_policy *cp = calloc(1, sizeof(*cp));
	struct sts_engine_params p = {.loop = f->loop, .conf = f->conf, .cache = f->cache};
	char err[256] = "";

	assert_non_null(cp);
	cp->domain = strdup("example.com");
	cp->has_mode = true;
	cp->mode = STS_MODE_ENFORCE;
	cp->mx = calloc(1, sizeof(char *));
	cp->mx[0] = strdup("mx.*.example.com");
	cp->n_mx = 1;
	cp->line = 7;
	f->conf->policies = cp;
	f->conf->n_policies = 1;
	assert_null(sts_engine_new(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "mx.*.example.com"));
}

static void
rfc8461_3_3_cached_fast_path_lookup_now(void **state)
{
	struct fx *f = *state;
	struct sts_answer a;
	struct got g;

	publish("example.com", "id1", POLICY_A);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall());
	fx_engine(f);

	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 0); /* cold MX */
	g = lookup(f, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	assert_string_equal(g.a.id, "id1");
	assert_int_equal(g.a.n_mx, 2);

	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 1);
	assert_int_equal(a.status, STS_POLICY);
	assert_int_equal(a.source, STS_SOURCE_CACHE);
	assert_int_equal(a.mode, STS_MODE_ENFORCE);
	assert_non_null(a.policy);
	assert_int_equal(a.policy->max_age, 86400);
	assert_int_equal(a.n_mx, 2);
	assert_string_equal(a.mx[0], "mx1.example.com");
	assert_int_equal(a.n_addr, 2);
	assert_true(a.expires_at > sts_now_wall());
	assert_false(a.rechecked);
	/* sections 3.1, 5.1: the lookup asked for the TXT record; the warm answers did not */
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 1);
	assert_int_equal(fake_dns_count("example.com", 'M'), 1);
	/* a second async lookup asks for the TXT record again, and reuses the MX set */
	g = lookup(f, "example.com");
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 2);
	assert_int_equal(fake_dns_count("example.com", 'M'), 1);
	assert_false(g.a.rechecked);
}

static void
rfc8461_3_3_id_unchanged_touch_no_fetch(void **state)
{
	struct fx *f = *state;
	int64_t t0 = sts_now_wall() - OLD_CHECK;
	struct got g;

	publish("example.com", "id1", POLICY_A);
	cache_put(f, "example.com", "id1", POLICY_A, t0);
	fx_engine(f);

	g = lookup(f, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_CACHE); /* answered at once */
	run(f);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 1); /* re-checked */
	assert_int_equal(fake_fetch_count("example.com"), 0);
	assert_true(entry_last_checked(f, "example.com", NULL) >= sts_now_wall() - 5);
}

static void
rfc8461_3_3_id_changed_refetch(void **state)
{
	struct fx *f = *state;
	char id[STS_CACHE_ID_MAX];
	struct got g;

	publish("example.com", "id2", POLICY_B);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall());
	fx_engine(f);

	/* a fresh cached policy is not used when the TXT record names another id */
	g = lookup(f, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_FETCHED);
	assert_string_equal(g.a.id, "id2");
	assert_int_equal(g.a.n_mx, 0); /* mail.example.com is not an MX host */
	assert_int_equal(fake_fetch_count("example.com"), 1);
	entry_last_checked(f, "example.com", id);
	assert_string_equal(id, "id2");
	g = lookup(f, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	assert_string_equal(g.a.id, "id2");
	assert_int_equal(fake_fetch_count("example.com"), 1);
}

static void
rfc8461_3_3_expired_cache_refetched(void **state)
{
	struct fx *f = *state;
	struct got g;

	publish("example.com", "id1", POLICY_A);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - 90000);
	fx_engine(f);

	g = lookup(f, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_FETCHED);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	assert_true(g.a.expires_at > sts_now_wall());
}

/* Section 3.1: several STSv1 records or an invalid one give no new policy. */
static void
check_txt_broken_keeps_cache(struct fx *f, const char *const *recs, size_t n)
{
	struct got g;
	char id[STS_CACHE_ID_MAX];

	fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_OK, recs, n);
	publish("other.com", "x", POLICY_A);
	fake_dns_set("_mta-sts.other.com", 'T', STS_DNS_OK, recs, n);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - OLD_CHECK);
	fake_fetch_set("example.com", 1, STS_RESULT_OK, 200, POLICY_B);
	fx_engine(f);

	g = lookup(f, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	run(f);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 1);
	assert_int_equal(fake_fetch_count("example.com"), 0);
	assert_int_equal(sts_cache_count(f->cache), 1);
	entry_last_checked(f, "example.com", id);
	assert_string_equal(id, "id1");
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);

	/* without a cache: no policy, and the problem is reported */
	g = lookup(f, "other.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_INVALID);
	assert_int_equal(fake_fetch_count("other.com"), 0);
}

static void
rfc8461_3_1_two_records_cache_kept(void **state)
{
	const char *recs[] = {"v=STSv1; id=a1", "v=STSv1; id=a2"};

	check_txt_broken_keeps_cache(*state, recs, 2);
}

static void
rfc8461_3_1_invalid_record_cache_kept(void **state)
{
	const char *recs[] = {"v=STSv1; id=not-valid!"};

	check_txt_broken_keeps_cache(*state, recs, 1);
}

static void
rfc8461_3_1_no_record_cache_used(void **state)
{
	struct fx *f = *state;
	struct sts_answer a;
	struct got g;

	fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_NXDOMAIN, NULL, 0);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - OLD_CHECK);
	fx_engine(f);
	g = lookup(f, "example.com");
	run(f);
	assert_int_equal(sts_cache_count(f->cache), 1); /* not deleted */
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);

	/* a domain without any record: no policy, remembered for the warm path */
	g = lookup(f, "plain.org");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_OK);
	assert_int_equal(sts_engine_lookup_now(f->e, "plain.org", NULL, &a), 1);
	assert_int_equal(a.status, STS_NO_POLICY);
}

static void
rfc8461_3_1_servfail_with_cache(void **state)
{
	struct fx *f = *state;
	struct got g;

	publish("example.com", "id2", POLICY_B);
	fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_TEMPFAIL, NULL, 0);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - OLD_CHECK);
	fx_engine(f);
	g = lookup(f, "example.com");
	run(f);
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	assert_int_equal(fake_fetch_count("example.com"), 0);
	assert_true(
	    log_has(f, "event=policy-lookup domain=example.com result=sts-policy-fetch-error"));
	g = lookup(f, "example.com");
	assert_string_equal(g.a.id, "id1");
}

static void
rfc8461_3_1_servfail_no_cache_defer(void **state)
{
	struct fx *f = *state;
	struct got g;

	fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_TEMPFAIL, NULL, 0);
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_DEFER);
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_FETCH_ERROR);
	assert_non_null(strstr(g.a.reason, "tempfail"));

	f->conf->sts.defer_on_dns_failure = false;
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_FETCH_ERROR);
}

static void
rfc8461_3_3_fetch_404_no_cache(void **state)
{
	struct fx *f = *state;
	struct got g;

	publish("example.com", "id1", POLICY_A);
	fake_fetch_set("example.com", 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 404, NULL);
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_FETCH_ERROR);
	assert_int_equal(sts_cache_count(f->cache), 0);
	assert_true(log_has(f, "domain=example.com result=sts-policy-fetch-error"));
}

static void
rfc8461_3_3_webpki_and_invalid_body(void **state)
{
	struct fx *f = *state;
	struct got g;

	publish("example.com", "id1", POLICY_A);
	fake_fetch_set("example.com", 0, STS_RESULT_STS_WEBPKI_INVALID, 0, NULL);
	publish("bad.com", "id1", "version: STSv1\nmode: enforce\n");
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_STS_WEBPKI_INVALID);
	g = lookup(f, "bad.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_INVALID);
	assert_int_equal(sts_cache_count(f->cache), 0);
}

static void
rfc8461_3_3_fetch_failure_with_cache(void **state)
{
	struct fx *f = *state;
	char id[STS_CACHE_ID_MAX];
	struct got g;

	publish("example.com", "id2", POLICY_B);
	fake_fetch_set("example.com", 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 500, NULL);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - OLD_CHECK);
	fx_engine(f);
	g = lookup(f, "example.com");
	run(f);
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	entry_last_checked(f, "example.com", id);
	assert_string_equal(id, "id1");
	assert_false(sts_cache_may_fetch(f->cache, "example.com", "id2", sts_now_wall()));
}

static void
rfc8461_3_3_backoff_no_refetch(void **state)
{
	struct fx *f = *state;
	struct got g;

	publish("example.com", "id1", POLICY_A);
	fake_fetch_set("example.com", 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 503, NULL);
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_FETCH_ERROR);
	/* the site recovers, but the same id is not retried within 5 minutes */
	fake_fetch_set("example.com", 1, STS_RESULT_OK, 200, POLICY_A);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_FETCH_ERROR);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	/* a new id is fetched at once */
	set_txt("example.com", "v=STSv1; id=id2");
	g = lookup(f, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_FETCHED);
	assert_int_equal(fake_fetch_count("example.com"), 2);
}

static void
rfc8461_3_3_concurrent_lookups_share(void **state)
{
	struct fx *f = *state;
	struct got g[3] = {{0}};

	publish("example.com", "id1", POLICY_A);
	fx_engine(f);
	for (int i = 0; i < 3; i++)
		assert_true(sts_engine_lookup(f->e, "example.com", NULL, got_cb, &g[i]) != 0);
	run(f);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].a.source, STS_SOURCE_FETCHED);
		assert_int_equal(g[i].a.n_mx, 2);
	}
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 1);
	assert_int_equal(fake_dns_count("mta-sts.example.com", 'A'), 1);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	assert_int_equal(fake_dns_count("example.com", 'M'), 1);
}

/* A second engine on a loop of its own, on the fixture's cache: another worker. */
struct other {
	struct loop *loop;
	struct sts_engine *e;
	struct sts_engine_stats stats;
};

static void
other_start(struct fx *f, struct other *o)
{
	char err[256] = "";

	memset(o, 0, sizeof(*o));
	assert_non_null(o->loop = loop_new());
	struct sts_engine_params p = {
	    .loop = o->loop, .conf = f->conf, .cache = f->cache, .stats = &o->stats};
	if ((o->e = sts_engine_new(&p, err, sizeof(err))) == NULL)
		fail_msg("sts_engine_new: %s", err);
}

static void
other_stop(struct other *o)
{
	sts_engine_free(o->e);
	loop_free(o->loop);
}

/* run_both - turn both loops until both lookups answered (10 ms polls included). */
static void
run_both(struct fx *f, struct other *o, const struct got *g0, const struct got *g1)
{
	for (int i = 0; i < 2000 && (g0->calls == 0 || g1->calls == 0); i++) {
		if (f->e != NULL)
			loop_once(f->loop, 1);
		loop_once(o->loop, 1);
	}
}

/* turn_until_waiting - turn both loops until o's lookup waits for f's fetch. */
static void
turn_until_waiting(struct fx *f, struct other *o)
{
	for (int i = 0; i < 200 && atomic_load(&o->stats.fetch_waits) == 0; i++) {
		loop_once(f->loop, 0);
		loop_once(o->loop, 0);
	}
	assert_int_equal(atomic_load(&o->stats.fetch_waits), 1);
}

/* look_up_pair - the fixture's engine and another one each look example.com up. */
static void
look_up_pair(struct fx *f, struct other *o, struct got g[2])
{
	fx_engine(f);
	other_start(f, o);
	assert_true(sts_engine_lookup(f->e, "example.com", NULL, got_cb, &g[0]) != 0);
	assert_true(sts_engine_lookup(o->e, "example.com", NULL, got_cb, &g[1]) != 0);
}

/* start_pair - look_up_pair(), then turn both loops until the other waits for the fixture's
 * fetch. */
static void
start_pair(struct fx *f, struct other *o, struct got g[2])
{
	look_up_pair(f, o, g);
	turn_until_waiting(f, o);
}

static void
rfc8461_3_3_loops_share_one_fetch(void **state)
{
	struct fx *f = *state;
	struct other o;
	struct got g[2] = {{0}};

	publish("example.com", "id1", POLICY_A);
	start_pair(f, &o, g);
	run_both(f, &o, &g[0], &g[1]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].a.status, STS_POLICY);
		assert_string_equal(g[i].a.id, "id1");
		assert_int_equal(g[i].pmode, STS_MODE_ENFORCE);
		assert_int_equal(g[i].a.n_mx, 2);
	}
	assert_int_equal(g[0].a.source, STS_SOURCE_FETCHED);
	assert_int_equal(g[1].a.source, STS_SOURCE_CACHE);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	assert_int_equal(fake_dns_count("mta-sts.example.com", 'A'), 1);
	other_stop(&o);
}

static void
rfc8461_3_3_loops_share_one_failure(void **state)
{
	struct fx *f = *state;
	struct other o;
	struct got g[2] = {{0}};

	publish("example.com", "id1", POLICY_A);
	fake_fetch_set("example.com", 0, STS_RESULT_STS_WEBPKI_INVALID, 0, NULL);
	start_pair(f, &o, g);
	run_both(f, &o, &g[0], &g[1]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].a.status, STS_NO_POLICY);
	}
	assert_int_equal(g[0].a.problem, STS_RESULT_STS_WEBPKI_INVALID);
	assert_int_equal(g[1].a.problem, STS_RESULT_STS_POLICY_FETCH_ERROR);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	assert_true(log_has(f, "failed to fetch in another worker"));
	other_stop(&o);
}

/*
 * The other loop's TXT answer comes after the fixture's fetch has ended:
 * its policy is in the cache and the claim is gone, so the other takes the
 * cached policy instead of fetching the same id again.
 */
static void
rfc8461_3_3_late_loop_takes_fetched(void **state)
{
	struct fx *f = *state;
	struct other o;
	struct got g[2] = {{0}};

	publish("example.com", "id1", POLICY_A);
	look_up_pair(f, &o, g);
	/* both TXT queries asked; the other's answer waits on its loop */
	for (int i = 0; i < 200 && fake_dns_count("_mta-sts.example.com", 'T') < 2; i++) {
		loop_once(f->loop, 0);
		loop_once(o.loop, 0);
	}
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 2);
	for (int i = 0; i < 2000 && g[0].calls == 0; i++)
		loop_once(f->loop, 1);
	assert_int_equal(g[0].calls, 1);
	assert_int_equal(g[0].a.source, STS_SOURCE_FETCHED);
	run_both(f, &o, &g[0], &g[1]);
	assert_int_equal(g[1].calls, 1);
	assert_int_equal(g[1].a.status, STS_POLICY);
	assert_string_equal(g[1].a.id, "id1");
	assert_int_equal(g[1].a.source, STS_SOURCE_CACHE);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	assert_int_equal(atomic_load(&o.stats.fetch_waits), 0);
	other_stop(&o);
}

/* The loop that held the claim stops without a result: the waiting one fetches. */
static void
rfc8461_3_3_claim_holder_gone(void **state)
{
	struct fx *f = *state;
	struct other o;
	struct got g[2] = {{0}};

	publish("example.com", "id1", POLICY_A);
	start_pair(f, &o, g);
	sts_engine_free(f->e);
	f->e = NULL;
	run_both(f, &o, &g[1], &g[1]);
	assert_int_equal(g[0].calls, 0);
	assert_int_equal(g[1].calls, 1);
	assert_int_equal(g[1].a.status, STS_POLICY);
	assert_int_equal(g[1].a.source, STS_SOURCE_FETCHED);
	assert_int_equal(g[1].pmode, STS_MODE_ENFORCE);
	other_stop(&o);
}

static void
engine_cancel(void **state)
{
	struct fx *f = *state;
	struct got g[3] = {{0}};
	uint64_t id[3];

	publish("example.com", "id1", POLICY_A);
	fx_engine(f);
	for (int i = 0; i < 3; i++)
		id[i] = sts_engine_lookup(f->e, "example.com", NULL, got_cb, &g[i]);
	sts_engine_cancel(f->e, id[0]);
	sts_engine_cancel(f->e, id[2]);
	sts_engine_cancel(f->e, 0);
	sts_engine_cancel(f->e, 999999);
	run(f);
	assert_int_equal(g[0].calls, 0);
	assert_int_equal(g[1].calls, 1);
	assert_int_equal(g[2].calls, 0);
	/* freeing with lookups in flight: no callback ever fires */
	set_txt("new.com", "v=STSv1; id=z");
	id[0] = sts_engine_lookup(f->e, "new.com", NULL, got_cb, &g[0]);
	assert_true(id[0] != 0);
	loop_once(f->loop, 0);
	sts_engine_free(f->e);
	f->e = NULL;
	run(f);
	assert_int_equal(g[0].calls, 0);
	/* invalid domains fail at once */
	fx_engine(f);
	assert_int_equal(sts_engine_lookup(f->e, "not a domain", NULL, got_cb, &g[0]), 0);
	assert_int_equal(sts_engine_lookup(f->e, "10.0.0.1", NULL, got_cb, &g[0]), 0);
}

/* A callback may free the engine; the remaining waiters are dropped silently. */
static struct fx *free_fx;

static void
free_cb(void *arg, const struct sts_answer *a)
{
	got_cb(arg, a);
	sts_engine_free(free_fx->e);
	free_fx->e = NULL;
}

static void
engine_free_from_callback(void **state)
{
	struct fx *f = *state;
	struct got g[2] = {{0}};

	publish("example.com", "id1", POLICY_A);
	fx_engine(f);
	free_fx = f;
	assert_true(sts_engine_lookup(f->e, "example.com", NULL, free_cb, &g[0]) != 0);
	assert_true(sts_engine_lookup(f->e, "example.com", NULL, got_cb, &g[1]) != 0);
	run(f);
	assert_int_equal(g[0].calls, 1);
	assert_int_equal(g[1].calls, 0);
}

static void
rfc8461_3_3_mode_none_replaces_cache(void **state)
{
	struct fx *f = *state;
	const struct sts_cache_entry *ce;
	struct sts_decision d;
	struct got g;

	publish("example.com", "id2", POLICY_N);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - OLD_CHECK);
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.mode, STS_MODE_NONE); /* fetched before the answer */
	ce = sts_cache_get(f->cache, "example.com");
	assert_non_null(ce);
	assert_int_equal(ce->policy.mode, STS_MODE_NONE);
	assert_string_equal(ce->id, "id2");
	sts_cache_release(ce);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.mode, STS_MODE_NONE);
	sts_decide(&g.a, NULL, NULL, &d);
	assert_true(d.pass);
	assert_false(d.tls_required);
}

static void
rfc8461_4_1_mx_candidates_filtered(void **state)
{
	struct fx *f = *state;
	const char *mx[] = {"30 backup.other.net", "10 mx1.example.com", "5 Mx2.Example.Com",
	                    "40 example.com.evil.net"};
	struct got g;

	publish("example.com", "id1", POLICY_A);
	fake_dns_set("example.com", 'M', STS_DNS_OK, mx, 4);
	set_addr("backup.other.net", "10.9.9.9");
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.n_mx, 2);
	assert_string_equal(g.a.mx[0], "mx2.example.com"); /* by preference, lower case */
	assert_string_equal(g.a.mx[1], "mx1.example.com");
	assert_int_equal(g.a.n_addr, 2);
	assert_int_equal(fake_dns_count("backup.other.net", 'A'), 0);

	/* no matching host at all: no candidates, and the decision says why */
	publish("lonely.com", "id1", POLICY_A);
	fake_dns_set("lonely.com", 'M', STS_DNS_OK, mx, 1);
	g = lookup(f, "lonely.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.n_mx, 0);
}

static void
rfc8461_3_4_smarthost(void **state)
{
	struct fx *f = *state;
	struct conf_smarthost *sh = calloc(1, sizeof(*sh));
	struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(25)};
	struct sts_answer a;
	struct got g = {0};

	assert_non_null(sh);
	assert_int_equal(conf_parse_addr("198.51.100.7:25", &sh->addr), 0);
	sh->addr.text = strdup("198.51.100.7:25");
	sh->name = strdup("relay.example.net");
	f->conf->smarthosts = sh;
	f->conf->n_smarthosts = 1;
	fx_engine(f);
	inet_pton(AF_INET, "198.51.100.7", &dest.sin_addr);

	assert_int_equal(sts_engine_lookup_now(f->e, "any.org", (struct sockaddr *)&dest, &a), 1);
	assert_int_equal(a.source, STS_SOURCE_SMARTHOST);
	assert_int_equal(a.mode, STS_MODE_ENFORCE);
	assert_string_equal(a.mx[0], "relay.example.net");
	assert_true(sts_engine_lookup(f->e, "any.org", (struct sockaddr *)&dest, got_cb, &g) != 0);
	run(f);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.a.source, STS_SOURCE_SMARTHOST);
	assert_int_equal(fake_dns_count("_mta-sts.any.org", 'T'), 0);
	/* another port is not the smarthost */
	dest.sin_port = htons(587);
	assert_int_equal(sts_engine_lookup_now(f->e, "any.org", (struct sockaddr *)&dest, &a), 0);
}

static void
rfc8461_3_3_refresh_due_and_alert(void **state)
{
	struct fx *f = *state;
	int64_t old = sts_now_wall() - 86400 + 600; /* expires in 10 minutes */
	const struct sts_cache_entry *ce;

	publish("good.com", "g1", POLICY_A);
	publish("down.com", "d1", POLICY_A);
	fake_fetch_set("down.com", 0, STS_RESULT_STS_WEBPKI_INVALID, 0, NULL);
	publish("fresh.com", "f1", POLICY_A);
	cache_put(f, "good.com", "g1", POLICY_A, old);
	cache_put(f, "down.com", "d1", POLICY_A, old);
	cache_put(f, "fresh.com", "f1", POLICY_A, sts_now_wall());
	f->conf->sts.refresh = true;
	f->refresh_ms = 5;
	fx_engine(f);
	for (int i = 0; i < 20; i++)
		loop_once(f->loop, 10);
	run(f);

	ce = sts_cache_get(f->cache, "good.com");
	assert_non_null(ce);
	assert_true(ce->expires_at > sts_now_wall() + 86000); /* refetched */
	sts_cache_release(ce);
	assert_int_equal(fake_fetch_count("good.com"), 1);
	assert_int_equal(fake_fetch_count("fresh.com"), 0);
	assert_int_equal(fake_fetch_count("down.com"), 1); /* then backing off */
	assert_true(log_has(f, "alert=policy-refresh-failed domain=down.com id=d1 "
	                       "result=sts-webpki-invalid"));
	assert_false(log_has(f, "alert=policy-refresh-failed domain=good.com"));
	assert_int_equal(sts_cache_count(f->cache), 3);
}

/* A TXT check that finds the id unchanged writes to disk only if the last mark is old. */
static void
rfc8461_3_3_touch_only_when_old(void **state)
{
	struct fx *f = *state;
	struct sts_engine_params p = {
	    .loop = f->loop, .conf = f->conf, .cache = f->cache, .check_txt = true};
	char err[256];
	int64_t recent = sts_now_wall() - 30, old = sts_now_wall() - 200;
	const struct sts_cache_entry *before, *after;
	struct got g;

	publish("recent.com", "id1", POLICY_A);
	publish("old.com", "id2", POLICY_A);
	cache_put(f, "recent.com", "id1", POLICY_A, recent);
	cache_put(f, "old.com", "id2", POLICY_A, old);
	assert_non_null(f->e = sts_engine_new(&p, err, sizeof(err)));

	before = sts_cache_get(f->cache, "recent.com");
	g = lookup(f, "recent.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(fake_dns_count("_mta-sts.recent.com", 'T'), 1); /* checked */
	after = sts_cache_get(f->cache, "recent.com");
	assert_ptr_equal(before, after); /* not republished: no touch */
	assert_int_equal(after->last_checked, recent);
	sts_cache_release(before);
	sts_cache_release(after);

	g = lookup(f, "old.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(fake_dns_count("_mta-sts.old.com", 'T'), 1);
	assert_true(entry_last_checked(f, "old.com", NULL) >= sts_now_wall() - 5); /* touched */
	assert_int_equal(fake_fetch_count("recent.com") + fake_fetch_count("old.com"), 0);
}

/* A refresh whose TXT lookup fails backs off instead of coming back every tick. */
static void
rfc8461_3_3_refresh_dns_failure_backs_off(void **state)
{
	struct fx *f = *state;
	int64_t old = sts_now_wall() - 86400 + 600; /* expires in 10 minutes */
	char domains[4][254];

	publish("flaky.com", "k1", POLICY_A);
	fake_dns_set("_mta-sts.flaky.com", 'T', STS_DNS_TEMPFAIL, NULL, 0);
	publish("bad.com", "b1", POLICY_A);
	set_txt("bad.com", "v=STSv1; id=");
	cache_put(f, "flaky.com", "k1", POLICY_A, old);
	cache_put(f, "bad.com", "b1", POLICY_A, old);
	f->conf->sts.refresh = true;
	f->refresh_ms = 5;
	fx_engine(f);
	for (int i = 0; i < 20; i++)
		loop_once(f->loop, 10);
	run(f);

	/* tried once, then backing off: not offered for refresh again */
	assert_int_equal(fake_dns_count("_mta-sts.flaky.com", 'T'), 1);
	assert_int_equal(fake_dns_count("_mta-sts.bad.com", 'T'), 1);
	assert_int_equal(fake_fetch_count("flaky.com") + fake_fetch_count("bad.com"), 0);
	assert_false(sts_cache_may_fetch(f->cache, "flaky.com", "k1", sts_now_wall()));
	assert_int_equal(sts_cache_due(f->cache, sts_now_wall(), 3600, domains, 4), 0);
	assert_true(log_has(f, "alert=policy-refresh-failed domain=flaky.com id=k1"));
	/* the cached policies are still there and still used */
	assert_int_equal(sts_cache_count(f->cache), 2);
}

/* The warm path answers from memory with the candidates intact. */
static void
rfc8461_3_3_lookup_now_copies_candidates(void **state)
{
	struct fx *f = *state;
	struct sts_answer a;
	struct got g;

	publish("example.com", "id1", POLICY_A);
	fx_engine(f);
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 0); /* cold */
	g = lookup(f, "example.com");
	assert_int_equal(g.a.n_mx, 2);
	memset(&a, 0x5a, sizeof(a));
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 1);
	assert_int_equal(a.status, STS_POLICY);
	assert_int_equal(a.source, STS_SOURCE_CACHE);
	assert_string_equal(a.domain, "example.com");
	assert_string_equal(a.id, "id1");
	assert_int_equal(a.n_mx, 2);
	assert_string_equal(a.mx[0], "mx1.example.com");
	assert_string_equal(a.mx[1], "mx2.example.com");
	assert_int_equal(a.n_addr, 2);
	assert_int_equal(a.problem, STS_RESULT_OK);
	assert_string_equal(a.reason, "");
	/* ASCII case of the domain is ignored */
	assert_int_equal(sts_engine_lookup_now(f->e, "EXAMPLE.com", NULL, &a), 1);
	assert_int_equal(a.n_mx, 2);
	assert_int_equal(sts_engine_lookup_now(f->e, "example.co", NULL, &a), 0);
}

/* --- current facts: TXT ids and MX sets within their DNS TTL ---------------------- */

/* set_ttls - the sts.*_ttl_* bounds of the engines created next, in seconds. */
static void
set_ttls(struct fx *f, unsigned txt_min, unsigned txt_max, unsigned mx_min, unsigned mx_max)
{
	f->conf->sts.txt_ttl_min = txt_min;
	f->conf->sts.txt_ttl_max = txt_max;
	f->conf->sts.mx_ttl_min = mx_min;
	f->conf->sts.mx_ttl_max = mx_max;
}

/* pass_ms - let ms of real time go by, and the loop see it. */
static void
pass_ms(struct fx *f, unsigned ms)
{
	if (ms > 0)
		usleep(ms * 1000u);
	loop_once(f->loop, 0);
}

/*
 * The warm path answers from memory only while the TXT answer and the MX set
 * are within their DNS TTL, as bounded by sts.*_ttl_min and _max; past it,
 * the next lookup asks the resolver again (RFC 8461 sections 3.1, 4.1, 5.1).
 */
static void
rfc8461_ttl_table(void **state)
{
	static const struct {
		const char *name;
		uint32_t txt_ttl, mx_ttl, addr_ttl; /* what the resolver says */
		unsigned txt_min, txt_max, mx_min, mx_max;
		unsigned wait_ms;  /* time that passes after the first lookup */
		bool from_memory;  /* then sts_engine_lookup_now() answers */
		unsigned mx_asked; /* MX queries after a second lookup */
	} cases[] = {
	    {"rfc8461_3_1_within_ttls_from_memory", 300, 300, 300, 1, 300, 1, 300, 0, true, 1},
	    {"rfc8461_3_1_txt_ttl_zero_asked_again", 0, 300, 300, 0, 300, 1, 300, 0, false, 1},
	    {"rfc8461_3_1_txt_past_ttl_asked_again", 1, 300, 300, 0, 300, 1, 300, 1100, false, 1},
	    {"rfc8461_3_1_txt_ttl_raised_to_min", 0, 300, 300, 5, 300, 1, 300, 0, true, 1},
	    {"rfc8461_3_1_txt_ttl_cut_to_max", 3600, 300, 300, 0, 0, 1, 300, 0, false, 1},
	    {"rfc8461_4_1_mx_ttl_zero_asked_again", 300, 0, 300, 1, 300, 0, 300, 0, false, 2},
	    {"rfc8461_4_1_mx_past_ttl_asked_again", 300, 1, 300, 1, 300, 0, 300, 1100, false, 2},
	    {"rfc8461_4_1_mx_ttl_raised_to_min", 300, 0, 0, 1, 300, 5, 300, 0, true, 1},
	    {"rfc8461_4_1_mx_ttl_cut_to_max", 300, 3600, 3600, 1, 300, 0, 0, 0, false, 2},
	    {"rfc8461_4_1_address_ttl_bounds_mx_set", 300, 300, 0, 1, 300, 0, 300, 0, false, 2},
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sts_answer a;
		struct got g;

		print_message("%s\n", cases[i].name);
		teardown(state);
		assert_int_equal(setup(state), 0);
		f = *state;
		publish("example.com", "id1", POLICY_A);
		fake_dns_ttl("_mta-sts.example.com", 'T', cases[i].txt_ttl);
		fake_dns_ttl("example.com", 'M', cases[i].mx_ttl);
		fake_dns_ttl("mx1.example.com", 'A', cases[i].addr_ttl);
		cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall());
		set_ttls(f, cases[i].txt_min, cases[i].txt_max, cases[i].mx_min, cases[i].mx_max);
		fx_engine(f);

		g = lookup(f, "example.com");
		assert_int_equal(g.a.n_mx, 2);
		assert_true(g.a.rechecked); /* it asked for the TXT record and the MX set */
		pass_ms(f, cases[i].wait_ms);
		assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a),
		                 cases[i].from_memory ? 1 : 0);
		if (cases[i].from_memory) {
			assert_string_equal(a.id, "id1");
			assert_int_equal(a.n_mx, 2);
			assert_false(a.rechecked);
		}
		g = lookup(f, "example.com");
		assert_int_equal(g.a.n_mx, 2);
		assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 2);
		assert_int_equal(fake_dns_count("example.com", 'M'), cases[i].mx_asked);
		assert_int_equal(fake_fetch_count("example.com"), 0);
	}
}

/*
 * A domain replaces its policy: a new TXT id, a policy that lists only
 * mx2, and its MX moved to mx2. Past the old TXT answer's TTL a lookup
 * fetches the new policy before it answers; within it, the warm path still
 * answers the old one, and a recheck does not (sections 3.1, 3.3, 5.1).
 */
static void
rfc8461_5_1_policy_change_table(void **state)
{
	static const struct {
		const char *name;
		uint32_t txt_ttl;  /* of the TXT answer the engine holds before the change */
		int how;           /* 'L' sts_engine_lookup(), 'R' sts_engine_recheck() */
		bool fetch_ok;     /* the new policy can be fetched */
		bool txt_tempfail; /* the TXT lookup fails after the change */
		bool now_old;      /* right after the change, the warm path answers id1 */
		const char *id;    /* the answer */
		size_t n_mx;       /* its candidates: mx2.example.com when 1 */
		enum sts_result problem;
	} cases[] = {
	    {"rfc8461_5_1_new_id_past_ttl_fetched_first", 0, 'L', true, false, false, "id2", 1,
	     STS_RESULT_OK},
	    {"rfc8461_5_1_new_id_within_ttl_recheck_fetches", 300, 'R', true, false, true, "id2", 1,
	     STS_RESULT_OK},
	    {"rfc8461_3_3_recheck_fetch_fails_cache_applies", 300, 'R', false, false, true, "id1",
	     0, STS_RESULT_STS_POLICY_FETCH_ERROR},
	    {"rfc8461_3_1_recheck_txt_tempfail_cache_applies", 300, 'R', true, true, true, "id1", 0,
	     STS_RESULT_STS_POLICY_FETCH_ERROR},
	};
	const char *mx1 = "10 mx1.example.com", *mx2 = "10 mx2.example.com";
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sts_answer a;
		struct got g = {0};

		print_message("%s\n", cases[i].name);
		teardown(state);
		assert_int_equal(setup(state), 0);
		f = *state;
		set_ttls(f, 0, 300, 1, 300);
		publish("example.com", "id1", POLICY_1);
		fake_dns_set("example.com", 'M', STS_DNS_OK, &mx1, 1);
		fake_dns_ttl("_mta-sts.example.com", 'T', cases[i].txt_ttl);
		cache_put(f, "example.com", "id1", POLICY_1, sts_now_wall());
		fx_engine(f);
		g = lookup(f, "example.com");
		assert_string_equal(g.a.id, "id1");
		assert_string_equal(g.a.mx[0], "mx1.example.com");

		/* the change */
		set_txt("example.com", "v=STSv1; id=id2");
		fake_dns_ttl("_mta-sts.example.com", 'T', 300);
		if (cases[i].txt_tempfail)
			fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_TEMPFAIL, NULL, 0);
		if (cases[i].fetch_ok)
			fake_fetch_set("example.com", 1, STS_RESULT_OK, 200, POLICY_2);
		else
			fake_fetch_set("example.com", 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 503,
			               NULL);
		fake_dns_set("example.com", 'M', STS_DNS_OK, &mx2, 1);

		assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a),
		                 cases[i].now_old ? 1 : 0);
		if (cases[i].now_old)
			assert_string_equal(a.id, "id1");
		memset(&g, 0, sizeof(g));
		if (cases[i].how == 'R')
			assert_true(sts_engine_recheck(f->e, "example.com", NULL, got_cb, &g) != 0);
		else
			assert_true(sts_engine_lookup(f->e, "example.com", NULL, got_cb, &g) != 0);
		assert_int_equal(g.calls, 0);
		run(f);
		assert_int_equal(g.calls, 1);
		assert_int_equal(g.a.status, STS_POLICY);
		assert_string_equal(g.a.id, cases[i].id);
		assert_int_equal(g.a.n_mx, cases[i].n_mx);
		if (cases[i].n_mx > 0)
			assert_string_equal(g.a.mx[0], "mx2.example.com");
		assert_int_equal(g.a.problem, cases[i].problem);
		assert_true(g.a.rechecked);
		assert_int_equal(fake_fetch_count("example.com"), cases[i].txt_tempfail ? 0 : 1);
		if (cases[i].problem == STS_RESULT_OK) {
			/* every later decision sees the new policy, from memory */
			assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 1);
			assert_string_equal(a.id, "id2");
			assert_string_equal(a.mx[0], "mx2.example.com");
		}
	}
}

/* A recheck asks for the TXT record and the MX set whatever memory holds. */
static void
rfc8461_5_1_recheck_always_asks(void **state)
{
	struct fx *f = *state;
	struct sts_answer a;
	struct got g = {0};

	publish("example.com", "id1", POLICY_A);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall());
	fx_engine(f);
	(void)lookup(f, "example.com");
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 1);
	for (unsigned k = 1; k <= 2; k++) {
		memset(&g, 0, sizeof(g));
		assert_true(sts_engine_recheck(f->e, "example.com", NULL, got_cb, &g) != 0);
		assert_int_equal(g.calls, 0); /* never inside the call */
		run(f);
		assert_int_equal(g.calls, 1);
		assert_int_equal(g.a.source, STS_SOURCE_CACHE);
		assert_int_equal(g.a.n_mx, 2);
		assert_true(g.a.rechecked);
		assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 1 + k);
		assert_int_equal(fake_dns_count("example.com", 'M'), 1 + k);
		assert_int_equal(fake_dns_count("mx1.example.com", 'A'), 1 + k);
	}
	/* a lookup with the MX set fresh in memory asks for the TXT record only */
	g = lookup(f, "example.com");
	assert_false(g.a.rechecked);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 4);
	assert_int_equal(fake_dns_count("example.com", 'M'), 3);
	assert_int_equal(fake_fetch_count("example.com"), 0);
}

/*
 * Concurrent lookups share a resolution, but a recheck joins only one that
 * has not had its TXT answer yet (and then asks for the MX set for all).
 */
static void
rfc8461_5_1_recheck_joins_only_before_txt(void **state)
{
	struct fx *f = *state;
	struct got g[2] = {{0}};

	publish("example.com", "id1", POLICY_A);
	fx_engine(f);
	(void)lookup(f, "example.com");
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 1);

	/* both asked before the TXT query: one resolution, rechecked for both */
	assert_true(sts_engine_lookup(f->e, "example.com", NULL, got_cb, &g[0]) != 0);
	assert_true(sts_engine_recheck(f->e, "example.com", NULL, got_cb, &g[1]) != 0);
	run(f);
	assert_int_equal(g[0].calls + g[1].calls, 2);
	assert_true(g[0].a.rechecked && g[1].a.rechecked);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 2);
	assert_int_equal(fake_dns_count("example.com", 'M'), 2);

	/* A lookup past its TXT answer (about to fetch a new policy) is not joined:
	 * the recheck asks for the TXT record itself, then joins the fetch of the
	 * id it was told rather than fetch it twice. */
	memset(g, 0, sizeof(g));
	set_txt("example.com", "v=STSv1; id=id2");
	fake_dns_delay("mta-sts.example.com", 'A', 50);
	assert_true(sts_engine_lookup(f->e, "example.com", NULL, got_cb, &g[0]) != 0);
	loop_once(f->loop, 0); /* the TXT query leaves */
	loop_once(f->loop, 0); /* its answer: the policy host is resolved next */
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 3);
	assert_true(sts_engine_recheck(f->e, "example.com", NULL, got_cb, &g[1]) != 0);
	for (int i = 0; i < 100 && g[0].calls + g[1].calls < 2; i++)
		loop_once(f->loop, 10);
	assert_int_equal(g[0].calls + g[1].calls, 2);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 4);
	assert_string_equal(g[0].a.id, "id2");
	assert_string_equal(g[1].a.id, "id2");
	assert_true(g[0].a.rechecked && g[1].a.rechecked);
	assert_int_equal(fake_dns_count("example.com", 'M'), 3);
	assert_int_equal(fake_fetch_count("example.com"), 2); /* id1, then id2 once */
}

/* Engines that share a cache share what the resolver said: one answer for all. */
static void
rfc8461_4_1_engines_share_answers(void **state)
{
	struct fx *f = *state;
	struct sts_engine_params p = {.loop = f->loop, .conf = f->conf, .cache = f->cache};
	const char *mx2 = "10 mx2.example.com";
	struct sts_engine *other;
	struct sts_answer a;
	struct got g = {0};
	char err[256] = "";

	publish("example.com", "id1", POLICY_A);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall());
	fx_engine(f);
	assert_non_null(other = sts_engine_new(&p, err, sizeof(err)));
	assert_int_equal(sts_engine_lookup_now(other, "example.com", NULL, &a), 0);
	(void)lookup(f, "example.com");
	/* the other engine answers at once on the same TXT id and MX set */
	assert_int_equal(sts_engine_lookup_now(other, "example.com", NULL, &a), 1);
	assert_string_equal(a.id, "id1");
	assert_int_equal(a.n_mx, 2);
	assert_string_equal(a.mx[0], "mx1.example.com");

	/* the MX moves; a recheck by the other engine is what both see next */
	fake_dns_set("example.com", 'M', STS_DNS_OK, &mx2, 1);
	assert_true(sts_engine_recheck(other, "example.com", NULL, got_cb, &g) != 0);
	run(f);
	assert_int_equal(g.a.n_mx, 1);
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 1);
	assert_int_equal(a.n_mx, 1);
	assert_string_equal(a.mx[0], "mx2.example.com");
	assert_int_equal(a.n_addr, 1);
	assert_int_equal(fake_dns_count("example.com", 'M'), 2);
	sts_engine_free(other);
}

/* An operator policy's MX set is not taken for another configuration's. */
static void
rfc8461_4_1_local_mx_set_keyed_by_patterns(void **state)
{
	struct fx *f = *state;
	struct conf *c2 = calloc(1, sizeof(*c2));
	struct sts_engine_params p = {.loop = f->loop, .cache = f->cache};
	const char *mx[] = {"10 mx1.example.com", "20 mx2.example.com"};
	struct sts_engine *other;
	struct sts_answer a;
	struct got g = {0};
	char err[256] = "";
	struct conf *cs[2] = {f->conf, c2};
	const char *pat[2] = {"mx1.example.com", "mx2.example.com"};

	assert_non_null(c2);
	assert_int_equal(conf_defaults(c2), 0);
	for (int i = 0; i < 2; i++) {
		struct conf_policy *cp = calloc(1, sizeof(*cp));

		assert_non_null(cp);
		cp->domain = strdup("example.com");
		cp->has_mode = true;
		cp->mode = STS_MODE_ENFORCE;
		cp->mx = calloc(1, sizeof(char *));
		cp->mx[0] = strdup(pat[i]);
		cp->n_mx = 1;
		cs[i]->policies = cp;
		cs[i]->n_policies = 1;
		cs[i]->sts.refresh = false;
	}
	fake_dns_set("example.com", 'M', STS_DNS_OK, mx, 2);
	set_addr("mx1.example.com", "10.0.25.2");
	set_addr("mx2.example.com", "10.0.26.2");
	fx_engine(f);
	p.conf = c2;
	assert_non_null(other = sts_engine_new(&p, err, sizeof(err)));
	g = lookup(f, "example.com");
	assert_string_equal(g.a.mx[0], "mx1.example.com");
	assert_int_equal(sts_engine_lookup_now(other, "example.com", NULL, &a), 0);
	memset(&g, 0, sizeof(g));
	assert_true(sts_engine_lookup(other, "example.com", NULL, got_cb, &g) != 0);
	run(f);
	assert_int_equal(g.a.n_mx, 1);
	assert_string_equal(g.a.mx[0], "mx2.example.com");
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 0);
	sts_engine_free(other);
	conf_free(c2);
}

/*
 * The resolver fails temporarily: the cached policy applies with the last MX
 * set, and both stand for a while before a lookup waits for the resolver
 * again; a recheck still asks (RFC 8461 section 3.3, RFC 8767 section 5).
 */
static void
rfc8461_3_3_tempfail_last_answers_stand(void **state)
{
	struct fx *f = *state;
	struct sts_answer a;
	struct got g = {0};

	publish("example.com", "id1", POLICY_A);
	fake_dns_ttl("_mta-sts.example.com", 'T', 0);
	fake_dns_ttl("example.com", 'M', 0);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall());
	set_ttls(f, 0, 300, 0, 300);
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.n_mx, 2);
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 0); /* TTL 0 */

	fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_TEMPFAIL, NULL, 0);
	fake_dns_set("example.com", 'M', STS_DNS_TEMPFAIL, NULL, 0);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	assert_int_equal(g.a.problem, STS_RESULT_STS_POLICY_FETCH_ERROR);
	assert_int_equal(g.a.n_mx, 2); /* the last MX set */
	assert_int_equal(g.a.n_addr, 2);
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &a), 1);
	assert_int_equal(a.n_mx, 2);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 2);

	memset(&g, 0, sizeof(g));
	assert_true(sts_engine_recheck(f->e, "example.com", NULL, got_cb, &g) != 0);
	run(f);
	assert_int_equal(g.a.n_mx, 2);
	assert_true(g.a.rechecked);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 3);
	assert_int_equal(fake_dns_count("example.com", 'M'), 3);

	/* a forged (bogus) MX set is never answered by the last one */
	fake_dns_set("example.com", 'M', STS_DNS_BOGUS, NULL, 0);
	memset(&g, 0, sizeof(g));
	assert_true(sts_engine_recheck(f->e, "example.com", NULL, got_cb, &g) != 0);
	run(f);
	assert_int_equal(g.a.n_mx, 0);
	assert_int_equal(g.a.problem, STS_RESULT_DNSSEC_INVALID);
}

/* --- DNSSEC: bogus answers ----------------------------------------------------- */

/*
 * A bogus answer (DNSSEC validation failed: the answer was forged or
 * tampered with on the way) for the TXT record, the policy host's address,
 * the MX set or an MX host's address is a suspicious temporary failure: the
 * cached policy is kept, with nothing cached the lookup defers (when
 * sts.defer_on_dns_failure), the problem is dnssec-invalid, and nothing of
 * it is remembered. It is never read as NXDOMAIN: that would let whoever
 * forged it strip the policy (RFC 8461 section 3.1, RFC 8460 section 4.3.2.1).
 */
struct bogus_case {
	const char *name;
	int what; /* 'T' TXT, 'H' policy host address, 'M' MX set, 'X' an MX host address */
	bool cached;
	bool defer_on_dns_failure;
	enum sts_status status;
	enum sts_source source;
	size_t n_mx, n_addr;
	bool asked_again; /* the next lookup repeats the bogus query */
};

static const struct bogus_case bogus_cases[] = {
    {"rfc8461_3_1_bogus_txt_no_cache_defers", 'T', false, true, STS_DEFER, STS_SOURCE_NONE, 0, 0,
     true},
    {"rfc8461_3_1_bogus_txt_no_cache_no_defer", 'T', false, false, STS_NO_POLICY, STS_SOURCE_NONE,
     0, 0, true},
    {"rfc8461_3_1_bogus_txt_cache_kept", 'T', true, true, STS_POLICY, STS_SOURCE_CACHE, 2, 2, true},
    {"rfc8461_3_3_bogus_policy_host_no_cache_defers", 'H', false, true, STS_DEFER, STS_SOURCE_NONE,
     0, 0, true},
    {"rfc8461_3_3_bogus_policy_host_no_cache_no_defer", 'H', false, false, STS_NO_POLICY,
     STS_SOURCE_NONE, 0, 0, true},
    {"rfc8461_3_3_bogus_policy_host_cache_kept", 'H', true, true, STS_POLICY, STS_SOURCE_CACHE, 2,
     2, false},
    {"rfc8461_4_1_bogus_mx_set_no_candidates", 'M', false, true, STS_POLICY, STS_SOURCE_FETCHED, 0,
     0, true},
    {"rfc8461_4_1_bogus_mx_set_cached_policy", 'M', true, true, STS_POLICY, STS_SOURCE_CACHE, 0, 0,
     true},
    {"rfc8461_4_1_bogus_mx_address_dropped", 'X', true, true, STS_POLICY, STS_SOURCE_CACHE, 2, 1,
     true},
};

/* bogus_name - the name and record type a case forges. */
static void
bogus_name(const struct bogus_case *c, const char **name, int *type)
{
	switch (c->what) {
	case 'T':
		*name = "_mta-sts.example.com", *type = 'T';
		break;
	case 'H':
		*name = "mta-sts.example.com", *type = 'A';
		break;
	case 'M':
		*name = "example.com", *type = 'M';
		break;
	default:
		*name = "mx1.example.com", *type = 'A';
		break;
	}
}

/* engine_check_txt - an engine that checks the TXT record on every lookup, as the
 * "policy" command does, so that the answer itself carries the problem. */
static void
engine_check_txt(struct fx *f)
{
	struct sts_engine_params p = {
	    .loop = f->loop, .conf = f->conf, .cache = f->cache, .check_txt = true};
	char err[256] = "";

	sts_engine_free(f->e);
	f->e = sts_engine_new(&p, err, sizeof(err));
	if (f->e == NULL)
		fail_msg("sts_engine_new: %s", err);
}

static void
rfc8461_dnssec_bogus_table(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(bogus_cases) / sizeof(bogus_cases[0]); i++) {
		const struct bogus_case *c = &bogus_cases[i];
		const char *name;
		int type;
		struct sts_answer now;
		struct got g;
		char id[STS_CACHE_ID_MAX];
		unsigned asked;

		print_message("%s\n", c->name);
		teardown(state);
		assert_int_equal(setup(state), 0);
		f = *state;
		f->conf->sts.defer_on_dns_failure = c->defer_on_dns_failure;
		/* A cached id1 and a published id2: the policy host is needed. */
		publish("example.com", c->what == 'H' && c->cached ? "id2" : "id1", POLICY_A);
		if (c->cached)
			cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - OLD_CHECK);
		bogus_name(c, &name, &type);
		fake_dns_set(name, type, STS_DNS_BOGUS, NULL, 0);
		engine_check_txt(f);

		g = lookup(f, "example.com");
		assert_int_equal(g.a.status, c->status);
		assert_int_equal(g.a.source, c->source);
		assert_int_equal(g.a.problem, STS_RESULT_DNSSEC_INVALID);
		assert_non_null(strstr(g.a.reason, "bogus"));
		assert_int_equal(g.a.n_mx, c->n_mx);
		assert_int_equal(g.a.n_addr, c->n_addr);
		assert_true(log_has(f, "domain=example.com result=dnssec-invalid"));
		if (c->status == STS_POLICY)
			assert_int_equal(g.a.mode, STS_MODE_ENFORCE);
		if (c->cached) {
			/* section 3.3: the cached policy is neither replaced nor deleted */
			entry_last_checked(f, "example.com", id);
			assert_string_equal(id, "id1");
		}
		if (c->what == 'T' || c->what == 'H')
			assert_int_equal(fake_fetch_count("example.com"), 0);

		/* Nothing forged is remembered: not "no policy", not an MX set. */
		asked = fake_dns_count(name, type);
		if (c->status != STS_POLICY)
			assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &now), 0);
		g = lookup(f, "example.com");
		assert_int_equal(g.a.status, c->status);
		/* a policy fetched by the first lookup is cached for the second */
		assert_int_equal(g.a.source,
		                 c->source == STS_SOURCE_FETCHED ? STS_SOURCE_CACHE : c->source);
		assert_int_equal(fake_dns_count(name, type), asked + (c->asked_again ? 1 : 0));
		if (c->asked_again)
			assert_int_equal(g.a.problem, STS_RESULT_DNSSEC_INVALID);
	}
}

/* Without check_txt (the daemon), the bogus TXT record seen by a lookup neither
 * replaces nor deletes the cached policy, which answers. */
static void
rfc8461_3_1_bogus_txt_keeps_cache(void **state)
{
	struct fx *f = *state;
	char id[STS_CACHE_ID_MAX];
	struct got g;

	publish("example.com", "id2", POLICY_B);
	fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_BOGUS, NULL, 0);
	cache_put(f, "example.com", "id1", POLICY_A, sts_now_wall() - OLD_CHECK);
	fx_engine(f);
	g = lookup(f, "example.com");
	run(f);
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	assert_int_equal(fake_dns_count("_mta-sts.example.com", 'T'), 1);
	assert_int_equal(fake_fetch_count("example.com"), 0);
	assert_true(log_has(f, "event=policy-lookup domain=example.com result=dnssec-invalid"));
	entry_last_checked(f, "example.com", id);
	assert_string_equal(id, "id1");
	assert_int_equal(sts_cache_count(f->cache), 1);
}

/* The contrast: a validated NXDOMAIN is "no record" and is remembered. */
static void
rfc8461_3_1_nxdomain_is_no_policy_unlike_bogus(void **state)
{
	struct fx *f = *state;
	struct sts_answer now;
	struct got g;

	fake_dns_set("_mta-sts.example.com", 'T', STS_DNS_NXDOMAIN, NULL, 0);
	fake_dns_set("_mta-sts.forged.com", 'T', STS_DNS_BOGUS, NULL, 0);
	fx_engine(f);
	g = lookup(f, "example.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(g.a.problem, STS_RESULT_OK);
	assert_int_equal(sts_engine_lookup_now(f->e, "example.com", NULL, &now), 1);
	assert_int_equal(now.status, STS_NO_POLICY);
	g = lookup(f, "forged.com");
	assert_int_equal(g.a.status, STS_DEFER);
	assert_int_equal(g.a.problem, STS_RESULT_DNSSEC_INVALID);
	assert_int_equal(sts_engine_lookup_now(f->e, "forged.com", NULL, &now), 0);
}

/* --- DANE (RFC 7672) -------------------------------------------------------------- */

#define EE1 "3 1 1 0101010101010101010101010101010101010101010101010101010101010101"
#define TA1 "2 0 1 0202020202020202020202020202020202020202020202020202020202020202"

/* dane_on - the engine again, with a trust anchor: DANE is looked up. */
static void
dane_on(struct fx *f)
{
	free(f->conf->dns.trust_anchor_file);
	f->conf->dns.trust_anchor_file = strdup("fake-anchor");
	assert_non_null(f->conf->dns.trust_anchor_file);
	fx_engine(f);
}

/* secure - script name/type as a DNSSEC-validated answer of n records. */
static void
secure(const char *name, int type, const char *const *recs, size_t n)
{
	fake_dns_set(name, type, n > 0 ? STS_DNS_OK : STS_DNS_NODATA, recs, n);
	fake_dns_secure(name, type, true);
}

/* dane_host - a secure MX host: its address and its TLSA record (NULL: none). */
static void
dane_host(const char *host, const char *addr, const char *tlsa)
{
	char name[300];

	secure(host, 'A', &addr, 1);
	snprintf(name, sizeof(name), "_25._tcp.%s", host);
	secure(name, 'L', &tlsa, tlsa != NULL ? 1 : 0);
}

struct dgot {
	int calls;
	struct sts_answer a;
	const struct sts_dane_state *st; /* referenced */
};

static void
dgot_cb(void *arg, const struct sts_answer *a)
{
	struct dgot *g = arg;

	g->calls++;
	g->a = *a;
	g->a.policy = NULL;
	g->st = sts_dane_ref(a->dane);
	g->a.dane = NULL; /* valid only during the call */
}

/* dlookup - a full lookup (recheck: sts_engine_recheck); release g.st after. */
static struct dgot
dlookup(struct fx *f, const char *domain, bool recheck)
{
	struct dgot g = {0};

	assert_true((recheck ? sts_engine_recheck : sts_engine_lookup)(f->e, domain, NULL, dgot_cb,
	                                                               &g) != 0);
	run(f);
	assert_int_equal(g.calls, 1);
	return g;
}

static void
rfc7672_2_2_dane_state_table(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *name, *domain;
		enum sts_dane_status status;
		size_t n_host;
		enum sts_dane_host_state host; /* of the first host */
		const char *base;              /* of the first host */
		enum sts_result problem;       /* of the first host */
	} cases[] = {
	    {"rfc7672_2_2_dane_ee", "ee.example", STS_DANE_HOSTS, 1, STS_DANE_HOST_USABLE,
	     "mx1.ee.example", STS_RESULT_OK},
	    {"rfc7672_2_2_1_insecure_mx", "insecure.example", STS_DANE_NONE, 0, 0, NULL,
	     STS_RESULT_OK},
	    {"rfc7672_2_2_2_insecure_addresses", "addr.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_NONE, "mx1.addr.example", STS_RESULT_OK},
	    {"rfc7672_2_2_1_bogus_mx", "bogusmx.example", STS_DANE_BOGUS, 0, 0, NULL,
	     STS_RESULT_OK},
	    {"rfc7672_2_2_1_tlsa_servfail", "servfail.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_FAILED, "mx1.servfail.example", STS_RESULT_DNSSEC_INVALID},
	    {"rfc7672_2_2_1_tlsa_bogus", "bogustlsa.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_FAILED, "mx1.bogustlsa.example", STS_RESULT_DNSSEC_INVALID},
	    {"rfc7672_2_2_1_address_bogus", "bogusaddr.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_FAILED, "mx1.bogusaddr.example", STS_RESULT_DNSSEC_INVALID},
	    {"rfc7672_3_1_3_unusable_only", "unusable.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_UNUSABLE, "mx1.unusable.example", STS_RESULT_TLSA_INVALID},
	    {"rfc7672_2_2_no_tlsa", "notlsa.example", STS_DANE_HOSTS, 1, STS_DANE_HOST_NONE,
	     "mx1.notlsa.example", STS_RESULT_OK},
	    {"rfc7672_2_2_insecure_tlsa_ignored", "insecuretlsa.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_NONE, "mx1.insecuretlsa.example", STS_RESULT_OK},
	    {"rfc7672_2_2_3_cname_base", "cname.example", STS_DANE_HOSTS, 1, STS_DANE_HOST_USABLE,
	     "real.cname.example", STS_RESULT_OK},
	    {"rfc7672_2_2_3_cname_falls_back_to_name", "cname2.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_USABLE, "mx1.cname2.example", STS_RESULT_OK},
	    {"rfc7672_2_2_1_no_mx_domain_is_host", "nomx.example", STS_DANE_HOSTS, 1,
	     STS_DANE_HOST_USABLE, "nomx.example", STS_RESULT_OK},
	    {"rfc7505_null_mx_no_host", "nullmx.example", STS_DANE_NONE, 0, 0, NULL, STS_RESULT_OK},
	    {"rfc7672_2_2_1_mx_tempfail_defers", "mxfail.example", STS_DANE_TEMPFAIL, 0, 0, NULL,
	     STS_RESULT_OK},
	};
	const char *mx;
	char buf[64];

	dane_on(f);
	/* ee.example: everything secure, a DANE-EE record */
	mx = "10 mx1.ee.example";
	secure("ee.example", 'M', &mx, 1);
	dane_host("mx1.ee.example", "10.0.25.2", EE1);
	/* insecure.example: the same, but the MX RRset is not signed */
	mx = "10 mx1.insecure.example";
	fake_dns_set("insecure.example", 'M', STS_DNS_OK, &mx, 1);
	dane_host("mx1.insecure.example", "10.0.25.3", EE1);
	/* addr.example: secure MX, addresses not signed */
	mx = "10 mx1.addr.example";
	secure("addr.example", 'M', &mx, 1);
	dane_host("mx1.addr.example", "10.0.25.4", EE1);
	fake_dns_secure("mx1.addr.example", 'A', false);
	fake_dns_set("bogusmx.example", 'M', STS_DNS_BOGUS, NULL, 0);
	mx = "10 mx1.servfail.example";
	secure("servfail.example", 'M', &mx, 1);
	dane_host("mx1.servfail.example", "10.0.25.5", EE1);
	fake_dns_set("_25._tcp.mx1.servfail.example", 'L', STS_DNS_TEMPFAIL, NULL, 0);
	mx = "10 mx1.bogustlsa.example";
	secure("bogustlsa.example", 'M', &mx, 1);
	dane_host("mx1.bogustlsa.example", "10.0.25.6", EE1);
	fake_dns_set("_25._tcp.mx1.bogustlsa.example", 'L', STS_DNS_BOGUS, NULL, 0);
	mx = "10 mx1.bogusaddr.example";
	secure("bogusaddr.example", 'M', &mx, 1);
	fake_dns_set("mx1.bogusaddr.example", 'A', STS_DNS_BOGUS, NULL, 0);
	mx = "10 mx1.unusable.example";
	secure("unusable.example", 'M', &mx, 1);
	dane_host("mx1.unusable.example", "10.0.25.7", "1 1 1 0101");
	mx = "10 mx1.notlsa.example";
	secure("notlsa.example", 'M', &mx, 1);
	dane_host("mx1.notlsa.example", "10.0.25.8", NULL);
	mx = "10 mx1.insecuretlsa.example";
	secure("insecuretlsa.example", 'M', &mx, 1);
	dane_host("mx1.insecuretlsa.example", "10.0.25.9", EE1);
	fake_dns_secure("_25._tcp.mx1.insecuretlsa.example", 'L', false);
	/* cname.example: the MX host is an alias; TLSA at the target */
	mx = "10 mx1.cname.example";
	secure("cname.example", 'M', &mx, 1);
	dane_host("mx1.cname.example", "10.0.25.10", NULL);
	fake_dns_canon("mx1.cname.example", 'A', "real.cname.example");
	dane_host("real.cname.example", "10.0.25.10", TA1);
	/* cname2.example: nothing at the target, the alias's own TLSA */
	mx = "10 mx1.cname2.example";
	secure("cname2.example", 'M', &mx, 1);
	dane_host("mx1.cname2.example", "10.0.25.11", EE1);
	fake_dns_canon("mx1.cname2.example", 'A', "real.cname2.example");
	secure("_25._tcp.real.cname2.example", 'L', NULL, 0);
	/* nomx.example: a secure denial of MX; the domain is its own host */
	secure("nomx.example", 'M', NULL, 0);
	dane_host("nomx.example", "10.0.25.12", EE1);
	mx = "0 ";
	secure("nullmx.example", 'M', &mx, 1);
	fake_dns_set("mxfail.example", 'M', STS_DNS_TEMPFAIL, NULL, 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dgot g;

		print_message("case %s\n", cases[i].name);
		g = dlookup(f, cases[i].domain, false);
		assert_int_equal(g.a.dane_mode, STS_DANE_MODE_ON);
		assert_non_null(g.st);
		if (g.st->status != cases[i].status)
			fail_msg("%s: status %s", cases[i].name,
			         sts_dane_status_name(g.st->status));
		assert_int_equal(g.st->n_host, cases[i].n_host);
		if (cases[i].n_host > 0) {
			const struct sts_dane_host *h = &g.st->host[0];

			if (h->state != cases[i].host)
				fail_msg("%s: host %s (%s)", cases[i].name,
				         sts_dane_host_state_name(h->state), h->why);
			assert_string_equal(h->base, cases[i].base);
			assert_int_equal(h->problem, cases[i].problem);
			assert_true(h->n_addr == 1 || h->state == STS_DANE_HOST_FAILED);
			if (h->state == STS_DANE_HOST_USABLE) {
				assert_int_equal(h->n_tlsa, 1);
				assert_int_equal(h->tlsa[0].len, 32);
			}
			if (h->problem != STS_RESULT_OK)
				assert_true(h->why[0] != '\0');
		}
		snprintf(buf, sizeof(buf), "_25._tcp.mx1.%s", cases[i].domain);
		/* Section 2.2.2: no TLSA query for hosts of an insecure MX RRset or with
		 * insecure addresses */
		if (i == 1 || i == 2)
			assert_int_equal(fake_dns_count(buf, 'L'), 0);
		sts_dane_release(g.st);
	}
}

/* The state stands for its TTL, shared by every lookup; a recheck asks again. */
static void
rfc7672_dane_state_cached_by_ttl(void **state)
{
	struct fx *f = *state;
	const char *mx = "10 mx1.ee.example";
	struct sts_answer now;
	struct dgot g;

	dane_on(f);
	secure("ee.example", 'M', &mx, 1);
	dane_host("mx1.ee.example", "10.0.25.2", EE1);
	fake_dns_ttl("_25._tcp.mx1.ee.example", 'L', 2);
	/* nothing known yet: the warm path cannot answer */
	set_txt("ee.example", "v=spf1 -all");
	assert_int_equal(sts_engine_lookup_now(f->e, "ee.example", NULL, &now), 0);
	g = dlookup(f, "ee.example", false);
	assert_int_equal(g.st->status, STS_DANE_HOSTS);
	assert_false(g.a.rechecked == false && g.a.dane_mode == STS_DANE_MODE_OFF);
	sts_dane_release(g.st);
	assert_int_equal(fake_dns_count("_25._tcp.mx1.ee.example", 'L'), 1);
	/* from memory now: the MTA-STS part (no record) and the DANE state */
	assert_int_equal(sts_engine_lookup_now(f->e, "ee.example", NULL, &now), 1);
	assert_non_null(now.dane);
	assert_int_equal(now.dane->host[0].state, STS_DANE_HOST_USABLE);
	g = dlookup(f, "ee.example", false);
	sts_dane_release(g.st);
	assert_int_equal(fake_dns_count("_25._tcp.mx1.ee.example", 'L'), 1);
	/* a recheck asks the resolver */
	g = dlookup(f, "ee.example", true);
	assert_true(g.a.rechecked);
	sts_dane_release(g.st);
	assert_int_equal(fake_dns_count("_25._tcp.mx1.ee.example", 'L'), 2);
	/* past the TLSA TTL (2 s, dane.ttl_min 1 s): asked again */
	usleep(2100 * 1000);
	run(f); /* the loop's clock */
	assert_int_equal(sts_engine_lookup_now(f->e, "ee.example", NULL, &now), 0);
	g = dlookup(f, "ee.example", false);
	sts_dane_release(g.st);
	assert_int_equal(fake_dns_count("_25._tcp.mx1.ee.example", 'L'), 3);
}

/* RFC 8767 section 5: a resolver that fails keeps the last state a while. */
static void
rfc7672_dane_tempfail_keeps_last_state(void **state)
{
	struct fx *f = *state;
	const char *mx = "10 mx1.ee.example";
	struct dgot g;

	dane_on(f);
	secure("ee.example", 'M', &mx, 1);
	dane_host("mx1.ee.example", "10.0.25.2", EE1);
	g = dlookup(f, "ee.example", false);
	sts_dane_release(g.st);
	fake_dns_set("ee.example", 'M', STS_DNS_TEMPFAIL, NULL, 0);
	g = dlookup(f, "ee.example", true);
	assert_int_equal(g.st->status, STS_DANE_HOSTS);
	assert_int_equal(g.st->host[0].state, STS_DANE_HOST_USABLE);
	sts_dane_release(g.st);
	/* a bogus MX RRset is never covered */
	fake_dns_set("ee.example", 'M', STS_DNS_BOGUS, NULL, 0);
	g = dlookup(f, "ee.example", true);
	assert_int_equal(g.st->status, STS_DANE_BOGUS);
	sts_dane_release(g.st);
}

/* The operator's mode per domain; no trust anchor, no DANE lookups at all. */
static void
rfc7672_dane_modes(void **state)
{
	struct fx *f = *state;
	struct conf_policy *cp = calloc(2, sizeof(*cp));
	const char *mx = "10 mx1.ee.example";
	struct dgot g;

	assert_non_null(cp);
	secure("ee.example", 'M', &mx, 1);
	dane_host("mx1.ee.example", "10.0.25.2", EE1);
	secure("off.example", 'M', &mx, 1);
	/* without a trust anchor */
	fx_engine(f);
	g = dlookup(f, "ee.example", false);
	assert_int_equal(g.a.dane_mode, STS_DANE_MODE_OFF);
	assert_null(g.st);
	assert_int_equal(fake_dns_count("_25._tcp.mx1.ee.example", 'L'), 0);
	cp[0].domain = strdup("off.example");
	cp[0].has_dane = true;
	cp[0].dane = STS_DANE_MODE_OFF;
	cp[1].domain = strdup("only.example");
	cp[1].has_dane = true;
	cp[1].dane = STS_DANE_MODE_ONLY;
	f->conf->policies = cp;
	f->conf->n_policies = 2;
	/* "only" refuses without a trust anchor: the answer says so */
	fx_engine(f);
	g = dlookup(f, "only.example", false);
	assert_int_equal(g.a.dane_mode, STS_DANE_MODE_ONLY);
	assert_null(g.st);
	dane_on(f);
	g = dlookup(f, "off.example", false);
	assert_int_equal(g.a.dane_mode, STS_DANE_MODE_OFF);
	assert_null(g.st);
	assert_int_equal(fake_dns_count("off.example", 'M'), 0);
	g = dlookup(f, "only.example", false);
	assert_int_equal(g.a.dane_mode, STS_DANE_MODE_ONLY);
	assert_non_null(g.st);
	sts_dane_release(g.st);
	f->conf->dane.enabled = false;
	fx_engine(f);
	g = dlookup(f, "ee.example", false);
	assert_int_equal(g.a.dane_mode, STS_DANE_MODE_OFF);
	assert_null(g.st);
}

/* dane.insecure_mx: half-DANE, the TLSA of hosts named by an unsigned MX RRset. */
static void
rfc7672_2_2_1_half_dane(void **state)
{
	struct fx *f = *state;
	const char *mx = "10 mx1.half.example";
	struct dgot g;

	fake_dns_set("half.example", 'M', STS_DNS_OK, &mx, 1);
	dane_host("mx1.half.example", "10.0.25.2", EE1);
	dane_on(f);
	g = dlookup(f, "half.example", false);
	assert_int_equal(g.st->status, STS_DANE_NONE);
	assert_false(g.st->mx_secure);
	sts_dane_release(g.st);
	f->conf->dane.insecure_mx = true;
	fx_engine(f);
	g = dlookup(f, "half.example", true);
	assert_int_equal(g.st->status, STS_DANE_HOSTS);
	assert_false(g.st->mx_secure);
	assert_int_equal(g.st->host[0].state, STS_DANE_HOST_USABLE);
	sts_dane_release(g.st);
}

static void
engine_source_names(void **state)
{
	(void)state;
	assert_string_equal(sts_source_name(STS_SOURCE_FETCHED), "fetched");
	assert_string_equal(sts_source_name((enum sts_source)99), "none");
}

int
main(void)
{
	const struct CMUnitTest engine[] = {
	    cmocka_unit_test(engine_source_names),
	    cmocka_unit_test_setup_teardown(rfc7672_2_2_dane_state_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc7672_dane_state_cached_by_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc7672_dane_tempfail_keeps_last_state, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc7672_dane_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc7672_2_2_1_half_dane, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_local_policy_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_local_policy_bad_pattern_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_cached_fast_path_lookup_now, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_id_unchanged_touch_no_fetch, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_id_changed_refetch, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_expired_cache_refetched, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_two_records_cache_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_invalid_record_cache_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_no_record_cache_used, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_servfail_with_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_servfail_no_cache_defer, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_fetch_404_no_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_webpki_and_invalid_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_fetch_failure_with_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_backoff_no_refetch, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_concurrent_lookups_share, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_loops_share_one_fetch, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_loops_share_one_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_claim_holder_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_late_loop_takes_fetched, setup, teardown),
	    cmocka_unit_test_setup_teardown(engine_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(engine_free_from_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_mode_none_replaces_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_4_1_mx_candidates_filtered, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_4_smarthost, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_refresh_due_and_alert, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_touch_only_when_old, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_refresh_dns_failure_backs_off, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_lookup_now_copies_candidates, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_dnssec_bogus_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_bogus_txt_keeps_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_nxdomain_is_no_policy_unlike_bogus, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_ttl_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_5_1_policy_change_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_5_1_recheck_always_asks, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_5_1_recheck_joins_only_before_txt, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_4_1_engines_share_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_4_1_local_mx_set_keyed_by_patterns, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_tempfail_last_answers_stand, setup,
	                                    teardown),
	};
	int fails;

	fails = cmocka_run_group_tests_name("sts_engine", engine, NULL, NULL);
	return fails != 0;
}
