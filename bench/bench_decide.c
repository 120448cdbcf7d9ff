// sources: policy/sts_engine.c policy/sts_decide.c policy/sts_refresh.c policy/sts_dane.c
// sources: policy/sts_dane_dns.c policy/sts_tlsa.c tls/tls_dane.c policy/sts_cache.c policy/sts_claim.c policy/sts_policy.c policy/sts_txt.c
// sources: policy/sts_mx.c policy/sts_seen.c tests/policy/fake_sts_dns.c tests/policy/fake_sts_fetch.c
// sources: tls/tls_verify.c tests/tls/testca.c core/loop.c core/log.c core/types.c
// sources: core/util.c core/conf.c
// sources: policy/shared_state.c policy/shared_value.c core/redis_loop.c
/*
 * bench_decide.c - the per-recipient decision path on one thread: a warm
 * engine (100,000 cached policies and their MX sets in memory) answering
 * sts_engine_lookup_now() and judging real TLS facts with sts_decide(),
 * then the same with DANE (RFC 7672): every domain's DANE state cached too,
 * a DANE-EE record of the leaf's key, so that DANE decides every recipient;
 * and the policy file parser on a typical policy.
 *
 * With a shared group (policy/shared_state.h) against a real redis-server
 * it starts on a unix socket in /dev/shm: the same warm decisions by an
 * engine with Redis configured and by one without, in interleaved rounds
 * (the median of each and their ratio); then the latency of a second-level
 * hit (a lookup that misses this engine's cache and is answered from Redis)
 * beside a first-level one (sts_engine_lookup_now()).
 *
 * DNS answers come from the scripted resolver used by the unit tests: the
 * benchmark measures the engine (and Redis), not the network.
 *
 *   bench_decide [--smoke | DOMAINS [ROUNDS]]
 * prints "decide_per_sec N", "decide_dane_per_sec N",
 * "decide_local_per_sec N", "decide_shared_per_sec N", "decide_shared_ratio R"
 * (and its quartiles),
 * "lookup_local_p50_us" and "_p99_us", "lookup_shared_p50_us" and "_p99_us",
 * and "policy_parse_per_sec N"; the Redis lines are left out (with a note
 * on stderr) when redis-server is not installed. --smoke is a quick run
 * (10,000 domains, 2 rounds, 0.2 s of parsing) that only keeps the
 * benchmark working.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
#include "tests/core/redis_server.h"
#include "tests/tls/testca.h"

void fake_dns_set(const char *name, int type, enum sts_dns_status status, const char *const *recs,
                  size_t n);
void fake_dns_secure(const char *name, int type, bool secure);

#define POLICY                                                                                     \
	"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.mx.example.com\r\n"       \
	"max_age: 604800\r\n"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
answered(void *arg, const struct sts_answer *a)
{
	size_t *n = arg;

	if (a->status == STS_POLICY && a->n_mx == 1 &&
	    (a->dane_mode == STS_DANE_MODE_OFF ||
	     (a->dane != NULL && a->dane->host[0].state == STS_DANE_HOST_USABLE)))
		(*n)++;
}

/*
 * warm_engine - an engine on conf whose every domain of names was looked
 * up once (asynchronously), so that sts_engine_lookup_now() answers;
 * counted in stats (NULL: not counted). NULL on failure.
 */
static struct sts_engine *
warm_engine(struct loop *loop, struct conf *conf, struct sts_cache *cache, char (*names)[32],
            size_t n_dom, struct sts_engine_stats *stats)
{
	struct sts_engine_params ep = {.loop = loop,
	                               .conf = conf,
	                               .cache = cache,
	                               .mx_cache_max = n_dom + 1024,
	                               .stats = stats};
	struct sts_engine *e;
	size_t warm = 0;
	double t0;
	char err[256];

	if ((e = sts_engine_new(&ep, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench_decide: %s\n", err);
		return NULL;
	}
	t0 = now_s();
	for (size_t i = 0; i < n_dom;) {
		for (size_t j = 0; j < 512 && i < n_dom; j++, i++)
			sts_engine_lookup(e, names[i], NULL, answered, &warm);
		for (int k = 0; k < 8; k++)
			loop_once(loop, 0);
	}
	while (warm < n_dom && loop_once(loop, 0) > 0)
		;
	fprintf(stderr, "warm-up: %zu domains in %.1f s\n", warm, now_s() - t0);
	if (warm != n_dom) {
		sts_engine_free(e);
		return NULL;
	}
	return e;
}

/*
 * decide_pass - seconds e takes to answer and judge every domain of names
 * rounds times; every decision must pass, by policy type want. The loop
 * runs between blocks of decisions, as a worker's does between sessions.
 * 0 on failure.
 */
static double
decide_pass(struct sts_engine *e, struct loop *loop, char (*names)[32], size_t n_dom, size_t rounds,
            const struct tls_facts *facts, enum sts_policy_type want)
{
	struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(25)};
	struct sts_answer a;
	struct sts_decision d;
	size_t pass = 0, calls = 0;
	double t0, t;

	inet_pton(AF_INET, "10.0.25.2", &dest.sin_addr);
	t0 = now_s();
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n_dom; i++) {
			if (sts_engine_lookup_now(e, names[i], (struct sockaddr *)&dest, &a) != 1)
				return 0;
			sts_decide(&a, (struct sockaddr *)&dest, facts, &d);
			pass += d.pass && d.type == want;
			if ((++calls & 4095) == 0)
				loop_once(loop, 0);
		}
	}
	t = now_s() - t0;
	if (pass != calls) {
		fprintf(stderr, "bench_decide: %zu of %zu decisions failed\n", calls - pass, calls);
		return 0;
	}
	return t;
}

/*
 * decide_rate - decisions per second of an engine on conf over names,
 * after one asynchronous lookup per domain has warmed it. 0 on failure.
 */
static double
decide_rate(struct loop *loop, struct conf *conf, struct sts_cache *cache, char (*names)[32],
            size_t n_dom, size_t rounds, const struct tls_facts *facts, enum sts_policy_type want)
{
	struct sts_engine *e = warm_engine(loop, conf, cache, names, n_dom, NULL);
	double t = e != NULL ? decide_pass(e, loop, names, n_dom, rounds, facts, want) : 0;

	sts_engine_free(e);
	return t > 0 ? (double)(n_dom * rounds) / t : 0;
}

/* --- with Redis configured ---------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* quantile - the q-quantile of v[0..n), sorted here. */
static double
quantile(double *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

/* shared_wait_up - every Redis connection counted in st is up, within 5 s. */
static bool
shared_wait_up(struct loop *loop, const struct shared_stats *st)
{
	for (int i = 0; i < 500; i++) {
		uint64_t conns = atomic_load(&st->conns);
		if (conns > 0 && atomic_load(&st->up) == conns)
			return true;
		loop_once(loop, 10);
	}
	fprintf(stderr, "bench_decide: Redis is not up\n");
	return false;
}

static void
filled(void *arg, const struct shared_policy *p)
{
	*(int *)arg = p != NULL ? 1 : -1;
}

/*
 * shared_fill - store every domain's policy in Redis as the gateway that
 * fetched it would, 512 at a time (each batch answered before the next). 0 or -1.
 */
static int
shared_fill(struct loop *loop, const struct conf *conf, char (*names)[32], size_t n_dom)
{
	struct shared_stats st = {0};
	struct shared_state_params sp = {.loop = loop, .conf = conf, .stats = &st};
	struct shared_state *s = shared_state_new(&sp);
	int ret = -1;

	if (s == NULL || !shared_wait_up(loop, &st))
		goto out;
	for (size_t i = 0; i < n_dom;) {
		int done = 0;
		struct shared_policy p = {
		    .fetched_at = sts_now_wall(), .text = POLICY, .text_len = strlen(POLICY)};

		p.expires_at = p.fetched_at + 604800;
		snprintf(p.id, sizeof(p.id), "bench1");
		for (size_t j = 0; j < 512 && i < n_dom; j++, i++)
			shared_state_put(s, names[i], &p, false);
		if (shared_state_get(s, names[i - 1], "bench1", filled, &done) == 0)
			goto out;
		while (done == 0)
			loop_once(loop, 10);
		if (done < 0)
			goto out;
	}
	ret = 0;
out:
	shared_state_free(s);
	return ret;
}

struct got {
	bool done, ok;
};

static void
got_answer(void *arg, const struct sts_answer *a)
{
	struct got *g = arg;

	g->done = true;
	g->ok = a->status == STS_POLICY;
}

/*
 * decide_shared - warm decisions/s of an engine with Redis configured (conf_sh)
 * and of one without (conf), in pairs of passes back to back, the order
 * alternating; prints the median rate of each, and the median and quartiles
 * of the pairs' ratios (each pair ran under the same load). 0 or -1.
 */
static int
decide_shared(struct loop *loop, struct conf *conf, struct conf *conf_sh, struct sts_cache *cache,
              char (*names)[32], size_t n_dom, size_t rounds, size_t pairs,
              const struct tls_facts *facts)
{
	struct sts_engine_stats est = {0};
	struct sts_engine *e = warm_engine(loop, conf, cache, names, n_dom, NULL), *es = NULL;
	double local[32], shared[32], ratio[32];
	int ret = -1;

	if (e == NULL || pairs > 32 ||
	    (es = warm_engine(loop, conf_sh, cache, names, n_dom, &est)) == NULL ||
	    !shared_wait_up(loop, &est.shared))
		goto out;
	for (size_t k = 0; k < pairs; k++) {
		double tl, ts;

		if (k % 2 == 0) {
			tl = decide_pass(e, loop, names, n_dom, rounds, facts, STS_PTYPE_STS);
			ts = decide_pass(es, loop, names, n_dom, rounds, facts, STS_PTYPE_STS);
		} else {
			ts = decide_pass(es, loop, names, n_dom, rounds, facts, STS_PTYPE_STS);
			tl = decide_pass(e, loop, names, n_dom, rounds, facts, STS_PTYPE_STS);
		}
		if (tl == 0 || ts == 0)
			goto out;
		local[k] = (double)(n_dom * rounds) / tl;
		shared[k] = (double)(n_dom * rounds) / ts;
		ratio[k] = tl / ts;
	}
	printf("decide_local_per_sec %.0f\n", quantile(local, pairs, 0.5));
	printf("decide_shared_per_sec %.0f\n", quantile(shared, pairs, 0.5));
	printf("decide_shared_ratio %.3f\n", quantile(ratio, pairs, 0.5));
	printf("decide_shared_ratio_quartiles %.3f %.3f\n", quantile(ratio, pairs, 0.25),
	       quantile(ratio, pairs, 0.75));
	ret = 0;
out:
	sts_engine_free(e);
	sts_engine_free(es);
	return ret;
}

/*
 * lookup_latency - n lookups, one at a time, by an engine with Redis
 * configured and an empty cache of its own (in dir): each misses the
 * cache and is answered from Redis (the TXT id is the one it holds).
 * Then sts_engine_lookup_now() of the same domains, now cached: the
 * first-level hit. Prints p50 and p99 of each, in microseconds. 0 or -1.
 */
static int
lookup_latency(struct loop *loop, struct conf *conf_sh, const char *dir, char (*names)[32],
               size_t n)
{
	struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(25)};
	struct sts_engine_stats est = {0};
	struct sts_cache *cache = NULL;
	struct sts_engine *e = NULL;
	struct sts_answer a;
	double *lat = calloc(n, sizeof(*lat));
	char err[256] = "";
	int ret = -1;

	inet_pton(AF_INET, "10.0.25.2", &dest.sin_addr);
	if (lat == NULL || (cache = sts_cache_open(dir, err, sizeof(err))) == NULL)
		goto out;
	{
		struct sts_engine_params ep = {
		    .loop = loop, .conf = conf_sh, .cache = cache, .stats = &est};
		if ((e = sts_engine_new(&ep, err, sizeof(err))) == NULL ||
		    !shared_wait_up(loop, &est.shared))
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct got g = {0};
		double t0 = now_s();

		sts_engine_lookup(e, names[i], NULL, got_answer, &g);
		while (!g.done)
			loop_once(loop, 10);
		lat[i] = (now_s() - t0) * 1e6;
		if (!g.ok)
			goto out;
	}
	if (atomic_load(&est.shared.hits) != n) {
		fprintf(stderr, "bench_decide: %llu of %zu lookups answered from Redis\n",
		        (unsigned long long)atomic_load(&est.shared.hits), n);
		goto out;
	}
	printf("lookup_shared_p50_us %.1f\n", quantile(lat, n, 0.5));
	printf("lookup_shared_p99_us %.1f\n", quantile(lat, n, 0.99));
	for (size_t i = 0; i < n; i++) {
		double t0 = now_s();
		int r = sts_engine_lookup_now(e, names[i], (struct sockaddr *)&dest, &a);

		lat[i] = (now_s() - t0) * 1e6;
		if (r != 1)
			goto out;
	}
	printf("lookup_local_p50_us %.2f\n", quantile(lat, n, 0.5));
	printf("lookup_local_p99_us %.2f\n", quantile(lat, n, 0.99));
	ret = 0;
out:
	if (ret < 0 && err[0] != '\0')
		fprintf(stderr, "bench_decide: %s\n", err);
	sts_engine_free(e);
	sts_cache_close(cache);
	free(lat);
	return ret;
}

/* leaf_facts - what a verified handshake with mx1.example.com would show. */
static int
leaf_facts(struct testca *ca, struct tls_facts *f)
{
	const char *san = "mx1.example.com";
	char crt[TESTCA_PATH_MAX];
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	FILE *fp;
	int ret = -1;

	memset(f, 0, sizeof(*f));
	if (store == NULL || ctx == NULL ||
	    X509_STORE_load_locations(store, testca_ca_file(ca), NULL) != 1 ||
	    testca_issue(ca, "mx1", &san, 1, 0, crt, NULL) < 0 || (fp = fopen(crt, "r")) == NULL)
		goto out;
	f->cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (f->cert == NULL || X509_STORE_CTX_init(ctx, store, f->cert, NULL) != 1)
		goto out;
	f->verify_result = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	f->starttls_offered = true;
	f->handshake_done = true;
	/* as tls_facts_from_ssl() does after a real handshake */
	if (tls_facts_index_names(f) < 0 || tls_facts_index_chain(f, NULL) < 0)
		goto out;
	ret = f->verify_result == X509_V_OK ? 0 : -1;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ret;
}

int
main(int argc, char **argv)
{
	bool smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
	size_t n_dom = smoke ? 10000 : argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	size_t rounds = smoke ? 2 : argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
	double parse_secs = smoke ? 0.2 : 1.0; /* smoke: the whole run in about a second */
	const char *mx = "10 mx1.example.com", *addr = "10.0.25.2", *txt = "v=STSv1; id=bench1";
	/* Redis: pairs of passes over the domains, n_lat lookups timed */
	size_t n_lat = smoke ? 200 : 2000, pairs = smoke ? 3 : 31, pair_rounds = 1;
	char dir[] = "/tmp/bench-decide-XXXXXX", dir2[64], err[256], tlsa[100];
	struct redis_server srv = {0};
	struct conf *conf_sh = NULL;
	char(*names)[32] = NULL;
	struct conf *conf = NULL;
	struct loop *loop = NULL;
	struct sts_cache *cache = NULL;
	struct testca *ca = NULL;
	struct tls_facts facts = {0};
	struct sts_policy p = {0};
	const char *rec = tlsa;
	size_t calls = 0;
	double t0, t, rate;
	int rc = 1;

	if (n_dom == 0 || rounds == 0 || mkdtemp(dir) == NULL)
		return 2;
	log_set_level(LOG_LVL_WARN);
	fake_dns_set("*", 'M', STS_DNS_OK, &mx, 1);
	fake_dns_set("*", 'A', STS_DNS_OK, &addr, 1);
	/* the id of the cached policies (and of those stored in Redis) */
	fake_dns_set("*", 'T', STS_DNS_OK, &txt, 1);
	if ((names = calloc(n_dom, sizeof(*names))) == NULL ||
	    (conf = calloc(1, sizeof(*conf))) == NULL || conf_defaults(conf) < 0 ||
	    (loop = loop_new()) == NULL ||
	    (cache = sts_cache_open(dir, err, sizeof(err))) == NULL ||
	    (ca = testca_new(NULL)) == NULL || leaf_facts(ca, &facts) < 0 ||
	    sts_policy_parse(POLICY, strlen(POLICY), &p, NULL) < 0) {
		fprintf(stderr, "bench_decide: set-up failed %s\n", err);
		goto out;
	}
	conf->sts.refresh = false;
	/* DNSSEC-signed MX and addresses, a DANE-EE record of the leaf's key: used
	 * once there is a trust anchor */
	snprintf(tlsa, sizeof(tlsa), "3 1 1 ");
	for (size_t i = 0; i < 32; i++)
		snprintf(tlsa + 6 + 2 * i, sizeof(tlsa) - 6 - 2 * i, "%02x",
		         facts.digests[0].spki256[i]);
	fake_dns_set("*", 'L', STS_DNS_OK, &rec, 1);
	fake_dns_secure("*", 'M', true);
	fake_dns_secure("*", 'A', true);
	fake_dns_secure("*", 'L', true);
	for (size_t i = 0; i < n_dom; i++) {
		snprintf(names[i], sizeof(names[i]), "d%07zu.example.net", i);
		if (sts_cache_put(cache, names[i], "bench1", POLICY, strlen(POLICY), &p,
		                  sts_now_wall()) < 0)
			goto out;
	}

	/* MTA-STS alone: no trust anchor, no DANE. */
	if ((rate = decide_rate(loop, conf, cache, names, n_dom, rounds, &facts, STS_PTYPE_STS)) ==
	    0)
		goto out;
	printf("decide_per_sec %.0f\n", rate);

	/* Redis configured: a redis-server of our own, every policy stored in it. */
	if (!redis_server_available()) {
		fprintf(stderr,
		        "bench_decide: redis-server is not installed: nothing with Redis\n");
	} else {
		snprintf(srv.dir, sizeof(srv.dir), "/dev/shm/bench-decide-XXXXXX");
		/* the second engine's cache, removed with dir */
		snprintf(dir2, sizeof(dir2), "%s/second", dir);
		if (mkdtemp(srv.dir) == NULL || mkdir(dir2, 0700) < 0 ||
		    redis_server_start(&srv) < 0 ||
		    (conf_sh = calloc(1, sizeof(*conf_sh))) == NULL || conf_defaults(conf_sh) < 0 ||
		    (conf_sh->shared.redis_path = strdup(srv.sock)) == NULL) {
			fprintf(stderr, "bench_decide: cannot start redis-server\n");
			goto out;
		}
		conf_sh->sts.refresh = false;
		conf_sh->shared.enabled = true;
		conf_sh->shared.wait_max = 1000; /* a lookup never falls back to a fetch */
		if (shared_fill(loop, conf_sh, names, n_dom) < 0 ||
		    decide_shared(loop, conf, conf_sh, cache, names, n_dom, pair_rounds, pairs,
		                  &facts) < 0 ||
		    lookup_latency(loop, conf_sh, dir2, names, n_lat < n_dom ? n_lat : n_dom) < 0)
			goto out;
	}

	/* DANE decides: a trust anchor, and the records scripted above. */
	if ((conf->dns.trust_anchor_file = strdup("bench")) == NULL ||
	    (rate = decide_rate(loop, conf, cache, names, n_dom, rounds, &facts, STS_PTYPE_TLSA)) ==
	        0)
		goto out;
	printf("decide_dane_per_sec %.0f\n", rate);

	t0 = now_s();
	do {
		for (int i = 0; i < 10000; i++) {
			struct sts_policy q = {0};
			if (sts_policy_parse(POLICY, strlen(POLICY), &q, NULL) < 0)
				goto out;
			sts_policy_clear(&q);
			calls++;
		}
	} while ((t = now_s() - t0) < parse_secs);
	printf("policy_parse_per_sec %.0f\n", (double)calls / t);
	rc = 0;
out:
	sts_cache_close(cache);
	loop_free(loop);
	conf_free(conf);
	sts_policy_clear(&p);
	tls_facts_clear(&facts);
	testca_free(ca);
	free(names);
	conf_free(conf_sh);
	if (srv.dir[0] != '\0')
		redis_server_stop(&srv);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return rc;
}
