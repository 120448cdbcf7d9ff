// sources: policy/tlsrpt_shared.c policy/report_value.c policy/report_store.c policy/sts_report.c
// sources: core/conf.c core/util.c core/types.c core/log.c
/*
 * test_tlsrpt_shared.c - the TLS-RPT rows of three gateways (three stores,
 * each in its own directory) through one real redis-server on a unix
 * socket: pushed totals merged into one store give the exact sum over
 * gateways (RFC 8460 section 4.4), a push retried counts nothing twice,
 * rows of other gateways are replaced and this gateway's own never, a
 * value nobody should have written is refused, the lock lets one gateway
 * send a report, and a Redis that is gone is an error, not a hang.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "core/conf.h"
#include "core/log.h"
#include "policy/report_store.h"
#include "policy/sts_policy.h"
#include "policy/sts_report.h"
#include "policy/tlsrpt_shared.h"
#include "tests/core/redis_server.h"

#define T0  1796259600 /* 2026-12-03 01:00:00 UTC */
#define DAY ((int64_t)T0 / 86400 * 86400)
#define NGW 3

static struct redis_server srv;

struct gw {
	char dir[64];
	struct report_store *store;
	struct sts_report *rep;
	struct tlsrpt_shared *sh;
	struct tlsrpt_shared_stats stats;
};

struct fx {
	struct conf *conf;
	struct gw gw[NGW];
	redisContext *raw;
};

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
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
	f->conf = calloc(1, sizeof(*f->conf));
	if (f->conf == NULL || conf_defaults(f->conf) < 0)
		return -1;
	f->conf->shared.enabled = true;
	f->conf->shared.redis_path = strdup(srv.sock);
	f->conf->report_store.keep_days = 7;
	for (int i = 0; i < NGW; i++) {
		struct gw *g = &f->gw[i];
		char id[8], err[512];
		struct report_store_params p = {.gateway_id = id, .keep_days = 7};
		struct tlsrpt_shared_params sp = {.conf = f->conf, .stats = &g->stats};

		snprintf(id, sizeof(id), "gw%d", i + 1);
		snprintf(g->dir, sizeof(g->dir), "/tmp/sts-rptshared-XXXXXX");
		if (mkdtemp(g->dir) == NULL)
			return -1;
		p.state_dir = g->dir;
		if ((g->store = report_store_open(&p, err, sizeof(err))) == NULL) {
			fprintf(stderr, "%s\n", err);
			return -1;
		}
		sp.store = g->store;
		g->rep = sts_report_new(T0);
		g->sh = tlsrpt_shared_new(&sp);
		if (g->rep == NULL || g->sh == NULL)
			return -1;
	}
	f->raw = redisConnectUnix(srv.sock);
	return f->raw != NULL && !f->raw->err ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->raw != NULL) {
		freeReplyObject(redisCommand(f->raw, "FLUSHALL"));
		redisFree(f->raw);
	}
	for (int i = 0; i < NGW; i++) {
		struct gw *g = &f->gw[i];

		tlsrpt_shared_free(g->sh);
		sts_report_free(g->rep);
		report_store_close(g->store);
		if (g->dir[0] != '\0')
			nftw(g->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	conf_free(f->conf);
	free(f);
	return 0;
}

#define NEED_SERVER() REDIS_NEED_SERVER(&srv)

static char mx1[] = "mx1.a.example";
static char *mxs[] = {mx1};
static const struct sts_policy pol = {
    .mode = STS_MODE_ENFORCE, .max_age = 86400, .mx = mxs, .n_mx = 1};

/* count - ok sessions and failures of result res for a.example at gateway g. */
static void
count(struct gw *g, unsigned ok, unsigned failed, enum sts_result res, const char *rip)
{
	struct sts_report_count c = {
	    .domain = "a.example",
	    .type = STS_PTYPE_STS,
	    .policy_id = "a1",
	    .mode = STS_MODE_ENFORCE,
	    .sts_policy = &pol,
	};
	char err[512];

	for (unsigned i = 0; i < ok; i++)
		assert_int_equal(sts_report_count(g->rep, &c, T0), 0);
	c.result = res;
	c.mx_host = "mx1.a.example";
	c.dest_ip = rip;
	c.sending_ip = "10.0.0.1";
	for (unsigned i = 0; i < failed; i++)
		assert_int_equal(sts_report_count(g->rep, &c, T0), 0);
	if (report_store_flush(g->store, g->rep, T0, err, sizeof(err)) < 0)
		fail_msg("flush: %s", err);
}

static int
push(struct gw *g)
{
	char err[512] = "";
	int n = tlsrpt_shared_push(g->sh, err, sizeof(err));

	if (n < 0)
		fail_msg("push: %s", err);
	return n;
}

static int
merge(struct gw *g)
{
	char err[512] = "";
	int n = tlsrpt_shared_merge(g->sh, DAY, err, sizeof(err));

	if (n < 0)
		fail_msg("merge: %s", err);
	return n;
}

struct sum {
	uint64_t success, failure, by_result[STS_RESULT_MAX], details;
	unsigned gateways, entries;
};

static int
sum_cb(void *arg, const struct report_store_entry *e)
{
	struct sum *s = arg;

	s->entries++;
	s->success += e->success;
	s->failure += e->failure;
	s->gateways = e->n_gateways;
	for (int k = 0; k < STS_RESULT_MAX; k++)
		s->by_result[k] += e->by_result[k];
	for (size_t i = 0; i < e->n_details; i++)
		s->details += e->details[i].count;
	return 0;
}

static struct sum
day_sum(struct gw *g)
{
	struct sum s = {0};
	char err[512];

	if (report_store_foreach_day(g->store, DAY, NULL, sum_cb, &s, err, sizeof(err)) < 0)
		fail_msg("read: %s", err);
	return s;
}

/* RFC 8460 section 4.4: one report's counts are the exact sum of every gateway's. */
static void
rfc8460_4_4_three_gateways_exact_sum(void **state)
{
	struct fx *f = *state;
	struct sum s;

	NEED_SERVER();
	count(&f->gw[0], 5, 2, STS_RESULT_STARTTLS_NOT_SUPPORTED, "192.0.2.1");
	count(&f->gw[1], 3, 1, STS_RESULT_CERT_HOST_MISMATCH, "192.0.2.2");
	count(&f->gw[2], 7, 4, STS_RESULT_STARTTLS_NOT_SUPPORTED, "192.0.2.1");
	for (int i = 0; i < NGW; i++)
		assert_int_equal(push(&f->gw[i]), 1);
	assert_int_equal(merge(&f->gw[0]), 2);
	s = day_sum(&f->gw[0]);
	assert_int_equal(s.entries, 1);
	assert_int_equal(s.gateways, 3);
	assert_int_equal(s.success, 15);
	assert_int_equal(s.failure, 7);
	assert_int_equal(s.by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED], 6);
	assert_int_equal(s.by_result[STS_RESULT_CERT_HOST_MISMATCH], 1);
	assert_int_equal(s.details, 7);
	assert_int_equal(atomic_load(&f->gw[0].stats.pushes), 1);
	assert_int_equal(atomic_load(&f->gw[0].stats.merged), 2);
}

/* Totals, not increments: a push or a merge done twice changes no sum. */
static void
rfc8460_4_4_retried_push_counts_once(void **state)
{
	struct fx *f = *state;
	struct sum s;
	redisReply *r;

	NEED_SERVER();
	count(&f->gw[1], 3, 1, STS_RESULT_CERT_EXPIRED, "192.0.2.2");
	assert_int_equal(push(&f->gw[1]), 1);
	/* A reply lost: the same row written again, as a retry would. */
	freeReplyObject(redisCommand(f->raw, "HGETALL stsproxy:rpt:20261203"));
	r = redisCommand(f->raw, "HGET stsproxy:rpt:20261203 gw2|a.example|sts");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	freeReplyObject(redisCommand(f->raw, "HSET stsproxy:rpt:20261203 gw2|a.example|sts %b",
	                             r->str, r->len));
	freeReplyObject(r);
	assert_int_equal(push(&f->gw[1]), 0); /* nothing changed since */
	merge(&f->gw[0]);
	merge(&f->gw[0]);
	s = day_sum(&f->gw[0]);
	assert_int_equal(s.success, 3);
	assert_int_equal(s.failure, 1);
	/* More counted at gw2: the new totals replace the old, nothing added twice. */
	count(&f->gw[1], 2, 0, STS_RESULT_OK, NULL);
	assert_int_equal(push(&f->gw[1]), 1);
	merge(&f->gw[0]);
	s = day_sum(&f->gw[0]);
	assert_int_equal(s.success, 5);
	assert_int_equal(s.failure, 1);
	/* The key expires with report_store.keep_days. */
	r = redisCommand(f->raw, "TTL stsproxy:rpt:20261203");
	assert_true(r != NULL && r->integer > 6 * 86400 && r->integer <= 7 * 86400);
	freeReplyObject(r);
}

/* What Redis says of this gateway never replaces its own counts; others' rows are replaced. */
static void
own_rows_never_replaced(void **state)
{
	struct fx *f = *state;
	struct sum s;

	NEED_SERVER();
	count(&f->gw[0], 2, 0, STS_RESULT_OK, NULL);
	count(&f->gw[1], 1, 0, STS_RESULT_OK, NULL);
	push(&f->gw[0]);
	push(&f->gw[1]);
	merge(&f->gw[0]);
	assert_int_equal(day_sum(&f->gw[0]).success, 3);
	/* Someone writes gw1's field with other numbers: gw1 keeps its own. */
	freeReplyObject(redisCommand(
	    f->raw, "HSET stsproxy:rpt:20261203 gw1|a.example|sts %s",
	    "{\"v\":1,\"id\":\"a1\",\"mode\":\"enforce\",\"success\":1000,\"failure\":0,"
	    "\"results\":{},\"detail_other\":0,\"details\":[],\"seen\":1,\"policy_at\":0}"));
	merge(&f->gw[0]);
	assert_int_equal(day_sum(&f->gw[0]).success, 3);
	/* gw2's row gone from Redis: gone from gw1's store at the next merge too. */
	freeReplyObject(redisCommand(f->raw, "HDEL stsproxy:rpt:20261203 gw2|a.example|sts"));
	merge(&f->gw[0]);
	s = day_sum(&f->gw[0]);
	assert_int_equal(s.success, 2);
	assert_int_equal(s.gateways, 1);
}

/* A value that is not the format is refused and counted; the valid rows still merge. */
static void
invalid_value_refused(void **state)
{
	struct fx *f = *state;

	NEED_SERVER();
	count(&f->gw[2], 4, 0, STS_RESULT_OK, NULL);
	push(&f->gw[2]);
	freeReplyObject(redisCommand(f->raw, "HSET stsproxy:rpt:20261203 gw9|a.example|sts %s",
	                             "{\"v\":1,\"success\":99999999999999999}"));
	freeReplyObject(
	    redisCommand(f->raw, "HSET stsproxy:rpt:20261203 %s x", "gw9|a\n.example|sts"));
	assert_int_equal(merge(&f->gw[0]), 1);
	assert_int_equal(atomic_load(&f->gw[0].stats.refused), 2);
	assert_int_equal(day_sum(&f->gw[0]).success, 4);
}

/* One sender a report: the lock, its renewal by the holder, and the sent mark. */
static void
rfc8460_5_3_one_sender(void **state)
{
	struct fx *f = *state;
	char who[REPORT_STORE_GATEWAY_LEN], err[256];
	redisReply *r;

	NEED_SERVER();
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[0].sh, DAY, "a.example", 60000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_OURS);
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[1].sh, DAY, "a.example", 60000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_HELD);
	assert_string_equal(who, "gw1");
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[0].sh, DAY, "a.example", 60000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_OURS);
	/* Another domain is another lock. */
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[2].sh, DAY, "b.example", 60000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_OURS);
	assert_int_equal(tlsrpt_shared_sent(f->gw[0].sh, DAY, "a.example", err, sizeof(err)), 0);
	/* Sent: nobody sends again, even once the lock expired. */
	freeReplyObject(redisCommand(f->raw, "DEL stsproxy:rpt-lock:20261203:a.example"));
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[1].sh, DAY, "a.example", 60000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_SENT);
	assert_string_equal(who, "gw1");
	/* The lock expires: a holder that died leaves the report to the others. */
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[0].sh, DAY, "c.example", 50, who, err, sizeof(err)),
	    TLSRPT_CLAIM_OURS);
	r = redisCommand(f->raw, "PTTL stsproxy:rpt-lock:20261203:c.example");
	assert_true(r != NULL && r->integer > 0 && r->integer <= 50);
	freeReplyObject(r);
	usleep(120 * 1000);
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[1].sh, DAY, "c.example", 60000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_OURS);
	/* A forged holder name is not repeated. */
	freeReplyObject(
	    redisCommand(f->raw, "SET stsproxy:rpt-lock:20261203:d.example %s", "bad name\n"));
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[1].sh, DAY, "d.example", 60000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_HELD);
	assert_string_equal(who, "?");
}

/* Redis gone: every call fails at once with a reason, and works again when it is back. */
static void
redis_down_is_an_error(void **state)
{
	struct fx *f = *state;
	char who[REPORT_STORE_GATEWAY_LEN], err[256] = "";
	struct timespec t0, t1;

	NEED_SERVER();
	count(&f->gw[0], 1, 0, STS_RESULT_OK, NULL);
	redis_server_kill(&srv);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(tlsrpt_shared_push(f->gw[0].sh, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(tlsrpt_shared_merge(f->gw[0].sh, DAY, err, sizeof(err)), -1);
	assert_int_equal(
	    tlsrpt_shared_claim(f->gw[0].sh, DAY, "a.example", 1000, who, err, sizeof(err)),
	    TLSRPT_CLAIM_DOWN);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	assert_int_equal(atomic_load(&f->gw[0].stats.push_errors), 1);
	assert_int_equal(redis_server_start(&srv), 0);
	redisFree(f->raw);
	f->raw = redisConnectUnix(srv.sock);
	/* The row not pushed then is pushed now. */
	assert_int_equal(push(&f->gw[0]), 1);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(rfc8460_4_4_three_gateways_exact_sum, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8460_4_4_retried_push_counts_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(own_rows_never_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(invalid_value_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(rfc8460_5_3_one_sender, setup, teardown),
	    cmocka_unit_test_setup_teardown(redis_down_is_an_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
