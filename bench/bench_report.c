// sources: policy/sts_report.c bench/report_baseline.c core/types.c core/log.c
/*
 * bench_report.c - the TLS-RPT count on the hot path: threads counting
 * sessions for 2,000 policy domains at once (99 successes to 1 failure,
 * with the failure details of RFC 8460 section 4.4), into
 *   base   the single-mutex table as it was (bench/report_baseline.c),
 *   new    policy/sts_report.c: striped locks and the new detail fields,
 *   flush  the same with a thread taking the counts out every 100 ms, as
 *          the store's flush does every few seconds (50 times as often).
 * Each is run five times, interleaved, and the median kept: the machine is
 * shared, so wall-clock throughput (which shows lock waits) is noisy; the
 * CPU time per count of the counting threads is the steadier figure.
 *
 *   bench_report [--smoke | COUNTS_PER_THREAD]
 * prints, for 1, 2 and 4 threads, "report_count_{base,new,flush}_per_sec_tN"
 * (wall clock), "report_count_{base,new,flush}_cpu_ns_tN" (CPU per count)
 * and the ratios to base "report_count_{new,flush}_{ratio,cpu_ratio}_tN".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/report_baseline.h"
#include "core/log.h"
#include "policy/sts_report.h"

#define DOMAINS 2000
#define T0      1700000000
#define ROUNDS  5

enum kind { BASE, NEW, FLUSH, KINDS };

static char names[DOMAINS][32];

struct run {
	enum kind kind;
	struct base_report *base;
	struct sts_report *rep;
	unsigned tid;
	unsigned long n;
	atomic_bool *stop;
	double cpu; /* seconds of this thread's CPU */
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
counter(void *arg)
{
	struct run *r = arg;
	double c0 = cpu_s();

	for (unsigned long i = 0; i < r->n; i++) {
		const char *d = names[(i * 7919 + r->tid * 131) % DOMAINS];
		bool fail = i % 100 == 0;

		if (r->kind == BASE) {
			if (fail)
				base_report_failure(r->base, d, STS_PTYPE_STS, "id1",
				                    STS_MODE_ENFORCE, STS_RESULT_CERT_EXPIRED,
				                    "mx1.example.com", "198.51.100.7", T0);
			else
				base_report_success(r->base, d, STS_PTYPE_STS, "id1",
				                    STS_MODE_ENFORCE, "mx1.example.com", T0);
		} else {
			struct sts_report_count c = {
			    .domain = d,
			    .type = STS_PTYPE_STS,
			    .policy_id = "id1",
			    .mode = STS_MODE_ENFORCE,
			};

			if (fail) {
				c.result = STS_RESULT_CERT_EXPIRED;
				c.mx_host = "mx1.example.com";
				c.mx_helo = "mx1.example.com";
				c.dest_ip = "198.51.100.7";
				c.sending_ip = "192.0.2.1";
			}
			sts_report_count(r->rep, &c, T0);
		}
	}
	r->cpu = cpu_s() - c0;
	return NULL;
}

static void *
flusher(void *arg)
{
	struct run *r = arg;

	while (!atomic_load(r->stop)) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		nanosleep(&ts, NULL);
		sts_report_batch_free(sts_report_take(r->rep));
	}
	return NULL;
}

/* measure - counts per second of kind with threads threads of n counts each; *cpu_ns per count. */
static double
measure(enum kind kind, unsigned threads, unsigned long n, double *cpu_ns)
{
	struct run runs[8], fl;
	pthread_t th[8], ft;
	atomic_bool stop = false;
	double t;

	memset(&fl, 0, sizeof(fl));
	fl.stop = &stop;
	for (unsigned i = 0; i < threads; i++)
		runs[i] = (struct run){.kind = kind, .tid = i, .n = n, .stop = &stop};
	if (kind == BASE)
		runs[0].base = base_report_new(T0);
	else
		runs[0].rep = sts_report_new(T0);
	for (unsigned i = 1; i < threads; i++) {
		runs[i].base = runs[0].base;
		runs[i].rep = runs[0].rep;
	}
	fl.rep = runs[0].rep;
	t = now_s();
	if (kind == FLUSH)
		pthread_create(&ft, NULL, flusher, &fl);
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, counter, &runs[i]);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t = now_s() - t;
	atomic_store(&stop, true);
	if (kind == FLUSH)
		pthread_join(ft, NULL);
	base_report_free(runs[0].base);
	sts_report_free(runs[0].rep);
	*cpu_ns = 0;
	for (unsigned i = 0; i < threads; i++)
		*cpu_ns += runs[i].cpu;
	*cpu_ns = *cpu_ns * 1e9 / ((double)n * threads);
	return (double)n * threads / t;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v)
{
	qsort(v, ROUNDS, sizeof(*v), cmp_double);
	return v[ROUNDS / 2];
}

int
main(int argc, char **argv)
{
	static const char *const kname[KINDS] = {"base", "new", "flush"};
	static const unsigned nthreads[] = {1, 2, 4};
	unsigned long n = 2000000;

	if (argc > 1 && strcmp(argv[1], "--smoke") == 0)
		n = 50000;
	else if (argc > 1)
		n = strtoul(argv[1], NULL, 10);
	log_set_level(LOG_LVL_ERR);
	for (int i = 0; i < DOMAINS; i++)
		snprintf(names[i], sizeof(names[i]), "d%d.example", i);
	for (size_t k = 0; k < sizeof(nthreads) / sizeof(nthreads[0]); k++) {
		double rate[KINDS][ROUNDS], cpu[KINDS][ROUNDS], mr[KINDS], mc[KINDS];

		for (int round = 0; round < ROUNDS; round++)
			for (int kind = 0; kind < KINDS; kind++)
				rate[kind][round] =
				    measure((enum kind)kind, nthreads[k], n, &cpu[kind][round]);
		for (int kind = 0; kind < KINDS; kind++) {
			mr[kind] = median(rate[kind]);
			mc[kind] = median(cpu[kind]);
			printf("report_count_%s_per_sec_t%u %.0f\n", kname[kind], nthreads[k],
			       mr[kind]);
			printf("report_count_%s_cpu_ns_t%u %.1f\n", kname[kind], nthreads[k],
			       mc[kind]);
		}
		printf("report_count_new_ratio_t%u %.2f\n", nthreads[k], mr[NEW] / mr[BASE]);
		printf("report_count_flush_ratio_t%u %.2f\n", nthreads[k], mr[FLUSH] / mr[BASE]);
		printf("report_count_new_cpu_ratio_t%u %.2f\n", nthreads[k], mc[NEW] / mc[BASE]);
		printf("report_count_flush_cpu_ratio_t%u %.2f\n", nthreads[k],
		       mc[FLUSH] / mc[BASE]);
	}
	return 0;
}
