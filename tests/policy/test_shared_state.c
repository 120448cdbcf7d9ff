// sources: policy/shared_state.c policy/shared_value.c core/redis_loop.c
// sources: policy/sts_engine.c policy/sts_decide.c policy/sts_refresh.c policy/sts_dane.c
// sources: policy/sts_dane_dns.c policy/sts_tlsa.c tls/tls_dane.c policy/sts_cache.c policy/sts_claim.c policy/sts_policy.c policy/sts_txt.c
// sources: policy/sts_mx.c policy/sts_seen.c tests/policy/fake_sts_dns.c tests/policy/fake_sts_fetch.c
// sources: tls/tls_verify.c core/conf.c core/loop.c core/log.c core/types.c core/util.c
/*
 * test_shared_state.c - two gateways (two policy engines, each with its
 * own cache directory) sharing one real redis-server on a unix socket:
 * a policy fetched by one serves the other while the policy host is down
 * (RFC 8461 section 3.3), newest fetch wins, what is not accepted from
 * Redis (another id, a weaker mode, garbage), a change published by one
 * reaches the other, and a Redis that is not there changes nothing. DNS
 * and HTTPS are the scripted fakes of tests/policy.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/redis_loop.h"
#include "core/util.h"
#include "policy/shared_state.h"
#include "policy/shared_value.h"
#include "policy/sts_cache.h"
#include "policy/sts_dns.h"
#include "policy/sts_engine.h"
#include "tests/core/redis_server.h"

void fake_dns_reset(void);
void fake_dns_set(const char *name, int type, enum sts_dns_status status, const char *const *recs,
                  size_t n);
void fake_fetch_reset(void);
void fake_fetch_set(const char *domain, int ok, enum sts_result result, long code,
                    const char *body);
unsigned fake_fetch_count(const char *domain);

#define ENFORCE  "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n"
#define ENFORCE2 "version: STSv1\nmode: enforce\nmx: mx2.example.com\nmax_age: 86400\n"
#define TESTING  "version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 86400\n"
#define NONE     "version: STSv1\nmode: none\nmax_age: 86400\n"

static struct redis_server srv;

struct gw {
	char dir[64];
	struct sts_cache *cache;
	struct sts_engine *e;
	struct sts_engine_stats stats;
};

struct fx {
	struct loop *loop;
	struct conf *conf;
	struct gw a, b;
	struct redis_loop *raw; /* the test's own connection */
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
run_ms(struct fx *f, unsigned ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		loop_once(f->loop, 10);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static void
gw_start(struct fx *f, struct gw *g, bool subscribe)
{
	char err[256] = "";
	struct sts_engine_params p = {
	    .loop = f->loop, .conf = f->conf, .no_refresh = !subscribe, .stats = &g->stats};

	memset(&g->stats, 0, sizeof(g->stats));
	sts_strlcpy(g->dir, "/tmp/sts-shared-XXXXXX", sizeof(g->dir));
	assert_non_null(mkdtemp(g->dir));
	assert_non_null(g->cache = sts_cache_open(g->dir, err, sizeof(err)));
	p.cache = g->cache;
	if ((g->e = sts_engine_new(&p, err, sizeof(err))) == NULL)
		fail_msg("sts_engine_new: %s", err);
}

static void
gw_stop(struct gw *g)
{
	sts_engine_free(g->e);
	sts_cache_close(g->cache);
	if (g->dir[0] != '\0')
		nftw(g->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	memset(g, 0, sizeof(*g));
}

/* wait_up - both gateways' connections are up (commands and subscription). */
static void
wait_up(struct fx *f, const struct gw *g, uint64_t conns)
{
	for (int i = 0; i < 200 && atomic_load(&g->stats.shared.up) < conns; i++)
		run_ms(f, 10);
	assert_int_equal(atomic_load(&g->stats.shared.up), conns);
	run_ms(f, 30); /* the SUBSCRIBE behind the PING lands */
}

/* two_up - gateways A and B started, neither subscribing, both connected. */
static void
two_up(struct fx *f)
{
	gw_start(f, &f->a, false);
	gw_start(f, &f->b, false);
	wait_up(f, &f->a, 1);
	wait_up(f, &f->b, 1);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	*state = f;
	if (f == NULL)
		return -1;
	if (srv.pid <= 0)
		return 0; /* the tests skip */
	f->loop = loop_new();
	f->conf = calloc(1, sizeof(*f->conf));
	if (f->loop == NULL || f->conf == NULL || conf_defaults(f->conf) < 0)
		return -1;
	f->conf->sts.refresh = false;
	f->conf->shared.enabled = true;
	f->conf->shared.redis_path = strdup(srv.sock);
	f->conf->shared.wait_max = 500; /* generous: a loaded test machine */
	fake_dns_reset();
	fake_fetch_reset();
	{
		struct redis_loop_params p = {.loop = f->loop, .name = "test", .path = srv.sock};
		f->raw = redis_loop_new(&p);
		for (int i = 0; i < 100 && !redis_loop_up(f->raw); i++)
			loop_once(f->loop, 10);
	}
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->loop != NULL) {
		const char *flush[] = {"FLUSHALL"};
		redis_loop_command(f->raw, 1, flush, NULL, NULL, NULL);
		run_ms(f, 20);
	}
	gw_stop(&f->a);
	gw_stop(&f->b);
	redis_loop_free(f->raw);
	loop_free(f->loop);
	conf_free(f->conf);
	free(f);
	return 0;
}

static int
group_setup(void **state)
{
	(void)state;
	log_open(getenv("TEST_LOG") ? getenv("TEST_LOG") : "/dev/null");
	return redis_server_setup(&srv);
}

static int
group_teardown(void **state)
{
	(void)state;
	redis_server_stop(&srv);
	return 0;
}

#define NEED_SERVER() REDIS_NEED_SERVER(&srv)

/* publish - a domain with a TXT id, a policy host serving body, and its MX hosts. */
static void
publish(const char *domain, const char *id, const char *body)
{
	char rec[64], name[300];
	const char *r = rec, *a = "10.0.44.2", *mx[] = {"10 mx1.example.com"}, *mxa = "10.0.25.2";

	snprintf(rec, sizeof(rec), "v=STSv1; id=%s", id);
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	fake_dns_set(name, 'T', STS_DNS_OK, &r, 1);
	snprintf(name, sizeof(name), "mta-sts.%s", domain);
	fake_dns_set(name, 'A', STS_DNS_OK, &a, 1);
	fake_dns_set(domain, 'M', STS_DNS_OK, mx, 1);
	fake_dns_set("mx1.example.com", 'A', STS_DNS_OK, &mxa, 1);
	if (body != NULL)
		fake_fetch_set(domain, 1, STS_RESULT_OK, 200, body);
	else
		fake_fetch_set(domain, 0, STS_RESULT_STS_POLICY_FETCH_ERROR, 0, NULL);
}

struct got {
	int calls;
	struct sts_answer a;
};

static void
got_cb(void *arg, const struct sts_answer *a)
{
	struct got *g = arg;

	g->calls++;
	g->a = *a;
	g->a.policy = NULL;
}

static struct got
lookup(struct fx *f, struct gw *g, const char *domain)
{
	struct got r = {0};

	assert_true(sts_engine_lookup(g->e, domain, NULL, got_cb, &r) != 0);
	for (int i = 0; i < 300 && r.calls == 0; i++)
		loop_once(f->loop, 10);
	assert_int_equal(r.calls, 1);
	return r;
}

static void
raw_set(struct fx *f, const char *key, const char *val, size_t len)
{
	const char *argv[3] = {"SET", key, val};
	size_t lens[3] = {3, strlen(key), len};

	assert_int_not_equal(redis_loop_command(f->raw, 3, argv, lens, NULL, NULL), 0);
	run_ms(f, 20);
}

static void
store(struct fx *f, const char *domain, const char *id, const char *text, int64_t fetched)
{
	struct shared_policy p = {.fetched_at = fetched,
	                          .expires_at = fetched + 86400,
	                          .text = text,
	                          .text_len = strlen(text)};
	char buf[1024], key[300];
	size_t n;

	sts_strlcpy(p.id, id, sizeof(p.id));
	assert_int_not_equal(n = shared_policy_encode(&p, buf, sizeof(buf)), 0);
	snprintf(key, sizeof(key), "stsproxy:policy:%s", domain);
	raw_set(f, key, buf, n);
}

static void
rfc8461_3_3_policy_learned_by_a_serves_b_with_policy_host_down(void **state)
{
	struct fx *f = *state;
	struct got g;
	const struct sts_cache_entry *ce;

	NEED_SERVER();
	two_up(f);
	publish("example.com", "id1", ENFORCE);
	g = lookup(f, &f->a, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_FETCHED);
	assert_int_equal(fake_fetch_count("example.com"), 1);
	run_ms(f, 50); /* A's write lands */
	assert_int_equal(atomic_load(&f->a.stats.shared.stores), 1);

	publish("example.com", "id1", NULL); /* the policy host is down now */
	g = lookup(f, &f->b, "example.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.mode, STS_MODE_ENFORCE);
	assert_string_equal(g.a.id, "id1");
	assert_int_equal(g.a.n_mx, 1);
	assert_int_equal(fake_fetch_count("example.com"), 1); /* B never fetched */
	assert_int_equal(atomic_load(&f->b.stats.shared.hits), 1);
	/* and B keeps it in its own cache, with A's fetch time */
	assert_non_null(ce = sts_cache_get(f->b.cache, "example.com"));
	assert_string_equal(ce->id, "id1");
	assert_true(ce->expires_at == ce->fetched_at + 86400);
	sts_cache_release(ce);
}

/*
 * Two gateways look a new policy up at once: the first to ask Redis claims
 * its fetch, the other waits for the policy the first stores instead of
 * fetching it too. One fetch at the policy host for both.
 */
static void
rfc8461_3_3_gateways_at_once_fetch_once(void **state)
{
	struct fx *f = *state;
	struct got ga = {0}, gb = {0};

	NEED_SERVER();
	two_up(f);
	publish("example.com", "id1", ENFORCE);
	assert_true(sts_engine_lookup(f->a.e, "example.com", NULL, got_cb, &ga) != 0);
	assert_true(sts_engine_lookup(f->b.e, "example.com", NULL, got_cb, &gb) != 0);
	for (int i = 0; i < 300 && (ga.calls == 0 || gb.calls == 0); i++)
		loop_once(f->loop, 10);
	assert_int_equal(ga.calls, 1);
	assert_int_equal(gb.calls, 1);
	assert_int_equal(ga.a.status, STS_POLICY);
	assert_int_equal(gb.a.status, STS_POLICY);
	assert_string_equal(ga.a.id, "id1");
	assert_string_equal(gb.a.id, "id1");
	assert_int_equal(fake_fetch_count("example.com"), 1);
	assert_int_equal(
	    atomic_load(&f->a.stats.shared.hits) + atomic_load(&f->b.stats.shared.hits), 1);
	assert_true(atomic_load(&f->a.stats.shared.waits) + atomic_load(&f->b.stats.shared.waits) >=
	            1);
	/* a new id is a new claim: fetched once more, by one of them */
	publish("example.com", "id2", ENFORCE2);
	ga.calls = gb.calls = 0;
	assert_true(sts_engine_recheck(f->a.e, "example.com", NULL, got_cb, &ga) != 0);
	assert_true(sts_engine_recheck(f->b.e, "example.com", NULL, got_cb, &gb) != 0);
	for (int i = 0; i < 300 && (ga.calls == 0 || gb.calls == 0); i++)
		loop_once(f->loop, 10);
	assert_string_equal(ga.a.id, "id2");
	assert_string_equal(gb.a.id, "id2");
	assert_int_equal(fake_fetch_count("example.com"), 2);
}

static void
newest_fetch_wins(void **state)
{
	struct fx *f = *state;
	struct shared_policy p = {.id = "id1", .text = ENFORCE, .text_len = strlen(ENFORCE)};
	int64_t now = sts_now_wall();
	const struct sts_cache_entry *ce;
	struct got g;

	NEED_SERVER();
	two_up(f);
	/* A slow gateway's older fetch (now - 100) arrives after a newer one (now - 10). */
	p.fetched_at = now - 10;
	p.expires_at = p.fetched_at + 86400;
	shared_state_put(NULL, "x", &p, false); /* NULL: nothing, no crash */
	store(f, "example.com", "id1", ENFORCE2, now - 10);
	{
		/* through the script, as a gateway writes */
		struct shared_state_params sp = {.loop = f->loop, .conf = f->conf};
		struct shared_state *s = shared_state_new(&sp);
		for (int i = 0; i < 100 && !shared_state_up(s); i++)
			loop_once(f->loop, 10);
		p.fetched_at = now - 100;
		p.expires_at = p.fetched_at + 86400;
		shared_state_put(s, "example.com", &p, false);
		run_ms(f, 50);
		shared_state_free(s);
	}
	publish("example.com", "id1", NULL);
	g = lookup(f, &f->b, "example.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_non_null(ce = sts_cache_get(f->b.cache, "example.com"));
	assert_int_equal(ce->fetched_at, now - 10); /* the newer copy stayed */
	assert_int_equal(ce->policy.n_mx, 1);
	assert_string_equal(ce->policy.mx[0], "mx2.example.com");
	sts_cache_release(ce);
	(void)state;
}

static void
rfc8461_3_1_other_id_weaker_mode_and_garbage_are_fetched(void **state)
{
	struct fx *f = *state;
	int64_t now = sts_now_wall();
	struct got g;
	static const struct {
		const char *domain, *id, *text;
	} cases[] = {
	    {"a.example.com", "old1", ENFORCE}, /* an id the domain replaced */
	    {"b.example.com", "id1", NONE},     /* a weaker mode: could be injected */
	    {"c.example.com", "id1", TESTING},
	    {"d.example.com", "id1", "version: STSv1\nmode: enforce\n"}, /* does not parse */
	};

	NEED_SERVER();
	gw_start(f, &f->b, false);
	wait_up(f, &f->b, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		store(f, cases[i].domain, cases[i].id, cases[i].text, now - 5);
		publish(cases[i].domain, "id1", ENFORCE);
		g = lookup(f, &f->b, cases[i].domain);
		assert_int_equal(g.a.source, STS_SOURCE_FETCHED);
		assert_int_equal(g.a.mode, STS_MODE_ENFORCE);
		assert_int_equal(fake_fetch_count(cases[i].domain), 1);
	}
	raw_set(f, "stsproxy:policy:e.example.com", "v1\nid=id1\nfetched=x\n", 21);
	publish("e.example.com", "id1", ENFORCE);
	g = lookup(f, &f->b, "e.example.com");
	assert_int_equal(g.a.source, STS_SOURCE_FETCHED);
	assert_true(atomic_load(&f->b.stats.shared.refused) >= 4);
}

static void
rfc8461_3_3_fetch_of_new_id_fails_shared_policy_stands_in_for_the_cache(void **state)
{
	struct fx *f = *state;
	int64_t now = sts_now_wall();
	struct got g;

	NEED_SERVER();
	gw_start(f, &f->b, false);
	wait_up(f, &f->b, 1);
	/* Another gateway fetched id1; the domain (or a forger) now names id2,
	 * whose policy cannot be fetched; B has nothing cached. */
	store(f, "example.com", "id1", ENFORCE, now - 60);
	publish("example.com", "id2", NULL);
	g = lookup(f, &f->b, "example.com");
	assert_int_equal(g.a.status, STS_POLICY);
	assert_int_equal(g.a.mode, STS_MODE_ENFORCE);
	assert_string_equal(g.a.id, "id1");
	assert_int_equal(g.a.source, STS_SOURCE_CACHE);
	assert_int_equal(fake_fetch_count("example.com"), 1); /* B tried id2 itself */
	/* and it stays, as a cached policy would, while id2 backs off */
	g = lookup(f, &f->b, "example.com");
	assert_string_equal(g.a.id, "id1");
	assert_int_equal(fake_fetch_count("example.com"), 1);

	/* a testing policy of an earlier id does not stand in: no policy, as alone */
	store(f, "t.example.com", "id1", TESTING, now - 60);
	publish("t.example.com", "id2", NULL);
	g = lookup(f, &f->b, "t.example.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
}

static void
change_published_by_a_reaches_b(void **state)
{
	struct fx *f = *state;
	const struct sts_cache_entry *ce;
	struct got g;
	char id[40] = "";

	NEED_SERVER();
	gw_start(f, &f->a, false);
	gw_start(f, &f->b, true); /* B listens */
	wait_up(f, &f->a, 1);
	wait_up(f, &f->b, 2);
	publish("example.com", "id1", ENFORCE);
	g = lookup(f, &f->a, "example.com");
	g = lookup(f, &f->b, "example.com");
	assert_string_equal(g.a.id, "id1");
	run_ms(f, 50);

	/* The domain publishes id2; A learns it; B hears of it. */
	publish("example.com", "id2", ENFORCE2);
	assert_int_equal(sts_engine_refresh(f->a.e, "example.com"), 0);
	for (int i = 0; i < 100; i++) {
		run_ms(f, 10);
		if ((ce = sts_cache_get(f->b.cache, "example.com")) != NULL) {
			sts_strlcpy(id, ce->id, sizeof(id));
			sts_cache_release(ce);
			if (strcmp(id, "id2") == 0)
				break;
		}
	}
	assert_string_equal(id, "id2");
	assert_int_equal(atomic_load(&f->a.stats.shared.publishes), 1);
	assert_int_equal(atomic_load(&f->b.stats.shared.received), 1);
	g = lookup(f, &f->b, "example.com");
	assert_string_equal(g.a.id, "id2");
	assert_int_equal(g.a.n_mx, 0); /* mx1 does not match mx2.example.com */
}

static void
redis_not_there_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct got g;

	NEED_SERVER();
	free(f->conf->shared.redis_path);
	f->conf->shared.redis_path = strdup("/nonexistent/redis.sock");
	gw_start(f, &f->b, true);
	publish("example.com", "id1", ENFORCE);
	g = lookup(f, &f->b, "example.com");
	assert_int_equal(g.a.source, STS_SOURCE_FETCHED);
	assert_int_equal(g.a.mode, STS_MODE_ENFORCE);
	publish("example.com", "id1", NULL);
	publish("other.example.com", "id9", NULL);
	g = lookup(f, &f->b, "other.example.com");
	assert_int_equal(g.a.status, STS_NO_POLICY);
	assert_int_equal(atomic_load(&f->b.stats.shared.up), 0);
	assert_int_equal(atomic_load(&f->b.stats.shared.hits), 0);
}

struct srv_rec {
	int n;
	int family;
	uint8_t addr[16];
	int64_t seen;
};

static void
on_server(void *arg, int family, const uint8_t *addr, int64_t seen)
{
	struct srv_rec *r = arg;

	r->n++;
	r->family = family;
	memcpy(r->addr, addr, family == AF_INET ? 4 : 16);
	r->seen = seen;
}

struct raw_rec {
	int n;
	char str[64];
	long long integer;
};

static void
on_raw(void *arg, const struct redisReply *rep)
{
	struct raw_rec *r = arg;

	r->n++;
	r->str[0] = '\0';
	if (rep != NULL && rep->type == REDIS_REPLY_STRING)
		snprintf(r->str, sizeof(r->str), "%.*s", (int)rep->len, rep->str);
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
		r->integer = rep->integer;
}

static void
raw_cmd(struct fx *f, struct raw_rec *r, const char *a, const char *b)
{
	const char *argv[2] = {a, b};
	int want = r->n + 1;

	assert_int_not_equal(redis_loop_command(f->raw, 2, argv, NULL, on_raw, r), 0);
	for (int i = 0; i < 100 && r->n < want; i++)
		loop_once(f->loop, 10);
	assert_int_equal(r->n, want);
}

static void
servers_with_starttls_shared_as_a_monotonic_maximum(void **state)
{
	struct fx *f = *state;
	struct shared_state_params pa = {.loop = f->loop, .conf = f->conf};
	struct srv_rec got = {0};
	struct shared_state_params pb = {.loop = f->loop,
	                                 .conf = f->conf,
	                                 .subscribe = true,
	                                 .on_server = on_server,
	                                 .arg = &got};
	struct shared_state *a, *b;
	struct raw_rec rr = {0};
	uint8_t v4[4] = {198, 51, 100, 25};

	NEED_SERVER();
	a = shared_state_new(&pa);
	b = shared_state_new(&pb);
	for (int i = 0; i < 100 && !(shared_state_up(a) && shared_state_up(b)); i++)
		loop_once(f->loop, 10);
	run_ms(f, 50);
	shared_state_server(a, AF_INET, v4, 2000, 3600);
	for (int i = 0; i < 100 && got.n < 1; i++)
		loop_once(f->loop, 10);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.family, AF_INET);
	assert_memory_equal(got.addr, v4, 4);
	assert_int_equal(got.seen, 2000);
	raw_cmd(f, &rr, "GET", "stsproxy:srv:198.51.100.25");
	assert_string_equal(rr.str, "2000");
	/* an older sighting never lowers it */
	shared_state_server(a, AF_INET, v4, 1000, 3600);
	run_ms(f, 50);
	raw_cmd(f, &rr, "GET", "stsproxy:srv:198.51.100.25");
	assert_string_equal(rr.str, "2000");
	shared_state_server(a, AF_INET, v4, 3000, 3600);
	run_ms(f, 50);
	raw_cmd(f, &rr, "GET", "stsproxy:srv:198.51.100.25");
	assert_string_equal(rr.str, "3000");
	raw_cmd(f, &rr, "TTL", "stsproxy:srv:198.51.100.25");
	assert_true(rr.integer > 3500 && rr.integer <= 3600);

	/* A gateway that connects later reads what it missed. */
	{
		uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x25};
		struct srv_rec late = {0};
		struct shared_state_params pc = {
		    .loop = f->loop, .conf = f->conf, .on_server = on_server, .arg = &late};
		struct shared_state *c;

		shared_state_server(a, AF_INET6, v6, 4000, 3600);
		raw_set(f, "stsproxy:srv:not-an-address", "5", 1);
		run_ms(f, 50);
		c = shared_state_new(&pc);
		for (int i = 0; i < 200 && late.n < 2; i++)
			loop_once(f->loop, 10);
		run_ms(f, 50);
		assert_int_equal(late.n, 2);
		shared_state_free(c);
	}
	shared_state_free(a);
	shared_state_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        rfc8461_3_3_policy_learned_by_a_serves_b_with_policy_host_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_gateways_at_once_fetch_once, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(newest_fetch_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        rfc8461_3_1_other_id_weaker_mode_and_garbage_are_fetched, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        rfc8461_3_3_fetch_of_new_id_fails_shared_policy_stands_in_for_the_cache, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(change_published_by_a_reaches_b, setup, teardown),
	    cmocka_unit_test_setup_teardown(redis_not_there_changes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(servers_with_starttls_shared_as_a_monotonic_maximum,
	                                    setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
