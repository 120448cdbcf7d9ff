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
 * DNS answers come from the scripted resolver used by the unit tests: the
 * benchmark measures the engine, not the network.
 *
 *   bench_decide [--smoke | DOMAINS [ROUNDS]]
 * prints "decide_per_sec N", "decide_dane_per_sec N" and
 * "policy_parse_per_sec N". --smoke is a quick run (10,000 domains, 2
 * rounds, 0.2 s of parsing) that only keeps the benchmark working.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * decide_rate - decisions per second of an engine on conf over names,
 * after one asynchronous lookup per domain has warmed it; every decision
 * must pass, by policy type want. 0 on failure.
 */
static double
decide_rate(struct loop *loop, struct conf *conf, struct sts_cache *cache, char (*names)[32],
            size_t n_dom, size_t rounds, const struct tls_facts *facts, enum sts_policy_type want)
{
	struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(25)};
	struct sts_engine_params ep = {
	    .loop = loop, .conf = conf, .cache = cache, .mx_cache_max = n_dom + 1024};
	struct sts_engine *e;
	struct sts_answer a;
	struct sts_decision d;
	size_t warm = 0, pass = 0, calls = 0;
	double t0, t = 0;
	char err[256];

	inet_pton(AF_INET, "10.0.25.2", &dest.sin_addr);
	if ((e = sts_engine_new(&ep, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench_decide: %s\n", err);
		return 0;
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
	if (warm != n_dom)
		goto out;
	t0 = now_s();
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n_dom; i++) {
			if (sts_engine_lookup_now(e, names[i], (struct sockaddr *)&dest, &a) != 1)
				goto out;
			sts_decide(&a, (struct sockaddr *)&dest, facts, &d);
			pass += d.pass && d.type == want;
			calls++;
		}
	}
	t = now_s() - t0;
	if (pass != calls) {
		fprintf(stderr, "bench_decide: %zu of %zu decisions failed\n", calls - pass, calls);
		t = 0;
	}
out:
	sts_engine_free(e);
	return t > 0 ? (double)calls / t : 0;
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
	const char *mx = "10 mx1.example.com", *addr = "10.0.25.2";
	char dir[] = "/tmp/bench-decide-XXXXXX", err[256], tlsa[100];
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
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return rc;
}
