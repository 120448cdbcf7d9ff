// sources: policy/sts_cache.c policy/sts_claim.c core/util.c policy/sts_seen.c policy/sts_policy.c policy/sts_mx.c core/types.c core/log.c
/*
 * bench_cache.c - lookups per second of the policy cache on one thread.
 *
 * Fills a cache in a temporary state directory with 100,000 domains, then
 * times sts_cache_get() + sts_cache_release() on random domains (90% hits,
 * 10% misses) and prints "cache_get_per_sec N". The state directory is
 * removed afterwards. "--smoke" as the only argument runs a small size
 * (2,000 domains, 200,000 lookups) that keeps the benchmark working in CI.
 *
 * Build and run by hand:
 *   cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -o build/bench_cache bench/bench_cache.c \
 *      policy/sts_cache.c policy/sts_policy.c policy/sts_mx.c core/types.c core/log.c \
 *      $(pkg-config --libs sqlite3 libsystemd) -lpthread && ./build/bench_cache [lookups]
 */
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "policy/sts_cache.h"

#define N_DOMAINS     100000
#define N_NAMES       (N_DOMAINS + N_DOMAINS / 9) /* the extra ones miss */
#define DEFAULT_GETS  10000000UL
#define SMOKE_DOMAINS 2000
#define SMOKE_GETS    200000UL

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: cheap enough not to dominate the loop being measured */
static inline uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

int
main(int argc, char **argv)
{
	static char names[N_NAMES][32];
	static char *mx[] = {"mx1.example.net", "*.mx.example.net"};
	static const char text[] = "version: STSv1\nmode: enforce\nmx: mx1.example.net\n"
	                           "mx: *.mx.example.net\nmax_age: 604800\n";
	struct sts_policy p = {.mode = STS_MODE_ENFORCE, .max_age = 604800, .mx = mx, .n_mx = 2};
	bool smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
	unsigned long gets = smoke      ? SMOKE_GETS
	                     : argc > 1 ? strtoul(argv[1], NULL, 10)
	                                : DEFAULT_GETS;
	int n_domains = smoke ? SMOKE_DOMAINS : N_DOMAINS;
	int n_names = n_domains + n_domains / 9;
	char dir[] = "/tmp/bench-cache-XXXXXX", err[512];
	unsigned long hits = 0;
	struct sts_cache *c;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	double t0, t1, fill;
	int ret = 1;

	log_set_level(LOG_LVL_WARN);
	if (gets == 0)
		gets = DEFAULT_GETS;
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if ((c = sts_cache_open(dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	for (int i = 0; i < n_names; i++)
		snprintf(names[i], sizeof(names[i]), "d%d.bench.example", i);
	t0 = now_sec();
	for (int i = 0; i < n_domains; i++) {
		if (sts_cache_put(c, names[i], "20240101", text, sizeof(text) - 1, &p,
		                  1700000000) != 0) {
			fprintf(stderr, "put %s failed\n", names[i]);
			goto out;
		}
	}
	fill = now_sec() - t0;

	t0 = now_sec();
	for (unsigned long i = 0; i < gets; i++) {
		const struct sts_cache_entry *e =
		    sts_cache_get(c, names[next_rand(&seed) % (uint64_t)n_names]);

		if (e != NULL) {
			hits += e->policy.mode == STS_MODE_ENFORCE;
			sts_cache_release(e);
		}
	}
	t1 = now_sec();
	printf("cache_fill_puts_per_sec %.0f\n", n_domains / fill);
	printf("cache_get_hit_ratio %.3f\n", (double)hits / (double)gets);
	printf("cache_get_per_sec %.0f\n", (double)gets / (t1 - t0));
	ret = 0;
out:
	sts_cache_close(c);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}
