// sources: policy/report_store.c policy/sts_report.c core/types.c core/log.c
/*
 * test_report_store.c - the durable TLS-RPT results (RFC 8460 section 4):
 * counts from memory flushed, the file reopened and the sums unchanged;
 * the rows of two gateways summed; retention; the UTC day boundary; a
 * damaged file; a failed flush that loses and doubles nothing; the policy
 * strings of sts and tlsa; the report delivery state; a schema 1 file
 * upgraded with its rows still to publish.
 */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "policy/report_store.h"
#include "policy/sts_dane.h"
#include "policy/sts_policy.h"
#include "policy/sts_report.h"

#define T0  1700000000 /* 2023-11-14 22:13:20 UTC */
#define DAY ((int64_t)T0 / 86400 * 86400)

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup_dir(void **state)
{
	char *dir = strdup("/tmp/sts-report-store-XXXXXX");

	if (dir == NULL || mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int
teardown_dir(void **state)
{
	nftw(*state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(*state);
	return 0;
}

static struct report_store *
open_gw(const char *dir, const char *gw, unsigned keep)
{
	struct report_store_params p = {.state_dir = dir, .gateway_id = gw, .keep_days = keep};
	char err[512] = "";
	struct report_store *s = report_store_open(&p, err, sizeof(err));

	if (s == NULL)
		fail_msg("open: %s", err);
	return s;
}

/* A copy of what a day's walk showed. */
struct got {
	size_t n;
	struct {
		char domain[STS_REPORT_DOMAIN_LEN];
		enum sts_policy_type type;
		char id[STS_REPORT_ID_LEN];
		enum sts_mode mode;
		uint64_t success, failure, detail_other;
		uint64_t by_result[STS_RESULT_MAX];
		unsigned n_gateways;
		size_t n_details, n_policy, n_mx;
		char policy[8][600];
		char mx[4][STS_REPORT_DOMAIN_LEN];
		struct {
			enum sts_result result;
			char sending_ip[64], mx_host[STS_REPORT_DOMAIN_LEN],
			    mx_helo[STS_REPORT_DOMAIN_LEN], receiving_ip[64];
			uint64_t count;
		} d[8];
	} e[8];
};

static int
collect(void *arg, const struct report_store_entry *e)
{
	struct got *g = arg;
	__typeof__(g->e[0]) *c;

	assert_true(g->n < 8);
	c = &g->e[g->n++];
	snprintf(c->domain, sizeof(c->domain), "%s", e->domain);
	c->type = e->type;
	snprintf(c->id, sizeof(c->id), "%s", e->policy_id);
	c->mode = e->mode;
	c->success = e->success;
	c->failure = e->failure;
	c->detail_other = e->detail_other;
	memcpy(c->by_result, e->by_result, sizeof(c->by_result));
	c->n_gateways = e->n_gateways;
	c->n_details = e->n_details;
	c->n_policy = e->n_policy;
	c->n_mx = e->n_mx;
	for (size_t i = 0; i < e->n_policy && i < 8; i++)
		snprintf(c->policy[i], sizeof(c->policy[i]), "%s", e->policy[i]);
	for (size_t i = 0; i < e->n_mx && i < 4; i++)
		snprintf(c->mx[i], sizeof(c->mx[i]), "%s", e->mx[i]);
	for (size_t i = 0; i < e->n_details && i < 8; i++) {
		c->d[i].result = e->details[i].result;
		snprintf(c->d[i].sending_ip, sizeof(c->d[i].sending_ip), "%s",
		         e->details[i].sending_ip);
		snprintf(c->d[i].mx_host, sizeof(c->d[i].mx_host), "%s", e->details[i].mx_host);
		snprintf(c->d[i].mx_helo, sizeof(c->d[i].mx_helo), "%s", e->details[i].mx_helo);
		snprintf(c->d[i].receiving_ip, sizeof(c->d[i].receiving_ip), "%s",
		         e->details[i].receiving_ip);
		c->d[i].count = e->details[i].count;
	}
	return 0;
}

static void
read_day(struct report_store *s, int64_t day, struct got *g)
{
	char err[512] = "";

	memset(g, 0, sizeof(*g));
	if (report_store_foreach_day(s, day, NULL, collect, g, err, sizeof(err)) < 0)
		fail_msg("read: %s", err);
}

static int
find(const struct got *g, const char *domain, enum sts_policy_type type)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->e[i].domain, domain) == 0 && g->e[i].type == type)
			return (int)i;
	return -1;
}

static void
flush_ok(struct report_store *s, struct sts_report *r, int64_t now)
{
	char err[512] = "";

	if (report_store_flush(s, r, now, err, sizeof(err)) < 0)
		fail_msg("flush: %s", err);
}

/* An MTA-STS policy: mode enforce, two patterns. */
static char mx1[] = "mx1.example.com", mx2[] = "*.backup.example.com";
static char *mxs[] = {mx1, mx2};
static const struct sts_policy sts_pol = {
    .mode = STS_MODE_ENFORCE, .max_age = 86400, .mx = mxs, .n_mx = 2};

static void
fail_at(struct sts_report *r, const char *domain, enum sts_result res, const char *sip,
        const char *rip, int64_t now)
{
	struct sts_report_count c = {
	    .domain = domain,
	    .type = STS_PTYPE_STS,
	    .policy_id = "20240101",
	    .mode = STS_MODE_ENFORCE,
	    .result = res,
	    .mx_host = "mx1.example.com",
	    .mx_helo = "mx1.example.com",
	    .dest_ip = rip,
	    .sending_ip = sip,
	    .sts_policy = &sts_pol,
	};

	assert_int_equal(sts_report_count(r, &c, now), 0);
}

static void
ok_at(struct sts_report *r, const char *domain, enum sts_policy_type type, int64_t now)
{
	struct sts_report_count c = {
	    .domain = domain,
	    .type = type,
	    .policy_id = type == STS_PTYPE_STS ? "20240101" : NULL,
	    .mode = type == STS_PTYPE_NONE ? STS_MODE_NONE : STS_MODE_ENFORCE,
	};

	assert_int_equal(sts_report_count(r, &c, now), 0);
}

/* RFC 8460 section 4.4: counts in, flush, reopen: the same sums, details and policy. */
static void
rfc8460_4_4_flush_reopen_sums_equal(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 7);
	struct sts_report *r = sts_report_new(T0);
	struct got g;
	int i;

	for (int k = 0; k < 5; k++)
		ok_at(r, "Example.COM", STS_PTYPE_STS, T0);
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0);
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0);
	fail_at(r, "example.com", STS_RESULT_STARTTLS_NOT_SUPPORTED, "10.0.0.1", "198.51.100.8",
	        T0);
	ok_at(r, "nopolicy.example", STS_PTYPE_NONE, T0);
	ok_at(r, "nopolicy.example", STS_PTYPE_NONE, T0);
	flush_ok(s, r, T0);
	/* More after the flush: memory holds only the delta. */
	ok_at(r, "example.com", STS_PTYPE_STS, T0 + 10);
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0 + 10);
	flush_ok(s, r, T0 + 10);
	report_store_close(s);

	s = open_gw(dir, "gw1", 7);
	read_day(s, T0, &g);
	assert_int_equal(g.n, 2);
	/* Ordered by domain, then type. */
	assert_string_equal(g.e[0].domain, "example.com");
	assert_string_equal(g.e[1].domain, "nopolicy.example");
	i = find(&g, "example.com", STS_PTYPE_STS);
	assert_true(i >= 0);
	assert_int_equal(g.e[i].success, 6);
	assert_int_equal(g.e[i].failure, 4);
	assert_int_equal(g.e[i].by_result[STS_RESULT_CERT_EXPIRED], 3);
	assert_int_equal(g.e[i].by_result[STS_RESULT_STARTTLS_NOT_SUPPORTED], 1);
	assert_string_equal(g.e[i].id, "20240101");
	assert_int_equal(g.e[i].mode, STS_MODE_ENFORCE);
	assert_int_equal(g.e[i].n_gateways, 1);
	assert_int_equal(g.e[i].n_details, 2);
	/* Ordered by result type name, then count. */
	assert_int_equal(g.e[i].d[1].result, STS_RESULT_STARTTLS_NOT_SUPPORTED);
	assert_int_equal(g.e[i].d[0].result, STS_RESULT_CERT_EXPIRED);
	assert_int_equal(g.e[i].d[0].count, 3);
	assert_string_equal(g.e[i].d[0].sending_ip, "10.0.0.1");
	assert_string_equal(g.e[i].d[0].receiving_ip, "198.51.100.7");
	assert_string_equal(g.e[i].d[0].mx_host, "mx1.example.com");
	assert_string_equal(g.e[i].d[0].mx_helo, "mx1.example.com");
	/* Section 4.4 "policy-string": the policy file's lines; "mx-host": the patterns. */
	assert_int_equal(g.e[i].n_policy, 5);
	assert_string_equal(g.e[i].policy[0], "version: STSv1");
	assert_string_equal(g.e[i].policy[1], "mode: enforce");
	assert_string_equal(g.e[i].policy[2], "mx: mx1.example.com");
	assert_string_equal(g.e[i].policy[3], "mx: *.backup.example.com");
	assert_string_equal(g.e[i].policy[4], "max_age: 86400");
	assert_int_equal(g.e[i].n_mx, 2);
	assert_string_equal(g.e[i].mx[1], "*.backup.example.com");
	/* Section 4.4 "no-policy-found", in its own bucket. */
	i = find(&g, "nopolicy.example", STS_PTYPE_NONE);
	assert_true(i >= 0);
	assert_int_equal(g.e[i].success, 2);
	assert_int_equal(g.e[i].failure, 0);
	assert_int_equal(g.e[i].n_policy, 0);
	/* Nothing on the next day. */
	read_day(s, T0 + 86400, &g);
	assert_int_equal(g.n, 0);
	sts_report_free(r);
	report_store_close(s);
}

/* Two gateways' rows for one domain and day make one report: sums, summed details. */
static void
rfc8460_4_4_two_gateways_summed(void **state)
{
	const char *dir = *state;
	struct report_store *a = open_gw(dir, "gw-a", 7), *b = open_gw(dir, "gw-b", 7);
	struct sts_report *ra = sts_report_new(T0), *rb = sts_report_new(T0);
	struct got g;
	int i;

	assert_string_equal(report_store_gateway(a), "gw-a");
	for (int k = 0; k < 3; k++)
		ok_at(ra, "example.com", STS_PTYPE_STS, T0);
	for (int k = 0; k < 4; k++)
		ok_at(rb, "example.com", STS_PTYPE_STS, T0);
	fail_at(ra, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0);
	fail_at(rb, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0);
	fail_at(rb, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.2", "198.51.100.7", T0);
	flush_ok(a, ra, T0);
	flush_ok(b, rb, T0 + 1);
	read_day(a, T0, &g);
	assert_int_equal(g.n, 1);
	i = 0;
	assert_int_equal(g.e[i].n_gateways, 2);
	assert_int_equal(g.e[i].success, 7);
	assert_int_equal(g.e[i].failure, 3);
	assert_int_equal(g.e[i].by_result[STS_RESULT_CERT_EXPIRED], 3);
	assert_int_equal(g.e[i].n_details, 2);
	/* The same (result, sending IP, MX, receiving IP) from both: one row, summed. */
	assert_string_equal(g.e[i].d[0].sending_ip, "10.0.0.1");
	assert_int_equal(g.e[i].d[0].count, 2);
	assert_string_equal(g.e[i].d[1].sending_ip, "10.0.0.2");
	assert_int_equal(g.e[i].d[1].count, 1);
	/* One gateway's rows alone (its partial report): nothing of the other's. */
	memset(&g, 0, sizeof(g));
	assert_int_equal(report_store_foreach_day(a, T0, "gw-b", collect, &g, NULL, 0), 1);
	assert_int_equal(g.e[0].n_gateways, 1);
	assert_int_equal(g.e[0].success, 4);
	assert_int_equal(g.e[0].failure, 2);
	assert_int_equal(g.e[0].by_result[STS_RESULT_CERT_EXPIRED], 2);
	assert_int_equal(g.e[0].n_details, 2);
	assert_int_equal(g.e[0].d[0].count, 1);
	assert_int_equal(g.e[0].d[1].count, 1);
	memset(&g, 0, sizeof(g));
	assert_int_equal(report_store_foreach_day(a, T0, "gw-c", collect, &g, NULL, 0), 0);
	sts_report_free(ra);
	sts_report_free(rb);
	report_store_close(a);
	report_store_close(b);
}

static int
day_seen(void *arg, int64_t day, unsigned n)
{
	int64_t *v = arg;

	(void)n;
	v[v[0] + 1] = day;
	v[0]++;
	return 0;
}

/* Days older than keep_days go at a flush; at least two days are always kept. */
static void
rfc8460_4_1_retention(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 3);
	struct sts_report *r = sts_report_new(DAY - 5 * 86400);
	int64_t days[8] = {0};
	struct got g;

	/* a claim left by a sender that died: it goes with its day */
	assert_int_equal(report_store_delivery_claim(s, DAY - 5 * 86400, "example.com", "gw1 pid 1",
	                                             DAY - 5 * 86400, 30 * 86400, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_OURS);
	for (int k = 5; k >= 0; k--) {
		ok_at(r, "example.com", STS_PTYPE_STS, DAY - k * 86400 + 100);
		flush_ok(s, r, DAY - k * 86400 + 100);
	}
	assert_int_equal(report_store_days(s, day_seen, days, NULL, 0), 3);
	assert_int_equal(days[1], DAY - 2 * 86400);
	assert_int_equal(days[3], DAY);
	read_day(s, DAY - 3 * 86400, &g);
	assert_int_equal(g.n, 0);
	read_day(s, DAY - 2 * 86400, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(report_store_delivery_claim(s, DAY - 5 * 86400, "example.com", "gw1 pid 2",
	                                             DAY, 60, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_OURS);
	report_store_close(s);
	/* keep_days below the minimum is the minimum: yesterday stays for its report. */
	s = open_gw(dir, "gw1", 1);
	flush_ok(s, NULL, DAY + 100);
	memset(days, 0, sizeof(days));
	assert_int_equal(report_store_days(s, day_seen, days, NULL, 0), 2);
	assert_int_equal(days[1], DAY - 86400);
	sts_report_free(r);
	report_store_close(s);
}

/* Section 4.1: a day is a UTC day: 23:59:59 and 00:00:00 are counted apart, in one flush. */
static void
rfc8460_4_1_day_boundary(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 7);
	int64_t midnight = DAY + 86400;
	struct sts_report *r = sts_report_new(midnight - 1);
	struct got g;

	ok_at(r, "example.com", STS_PTYPE_STS, midnight - 1);
	ok_at(r, "example.com", STS_PTYPE_STS, midnight - 1);
	ok_at(r, "example.com", STS_PTYPE_STS, midnight);
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", midnight);
	flush_ok(s, r, midnight + 5);
	read_day(s, midnight - 1, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.e[0].success, 2);
	assert_int_equal(g.e[0].failure, 0);
	read_day(s, midnight, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.e[0].success, 1);
	assert_int_equal(g.e[0].failure, 1);
	sts_report_free(r);
	report_store_close(s);
}

/* A damaged file: a clear error naming it; the file is left as it was. */
static void
damaged_file_clear_error(void **state)
{
	const char *dir = *state;
	struct report_store_params p = {.state_dir = dir, .gateway_id = "gw1", .keep_days = 7};
	char path[512], err[512] = "", junk[4096], back[4096];
	struct report_store *s;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, REPORT_STORE_FILE);
	memset(junk, 'x', sizeof(junk));
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
	s = report_store_open(&p, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "report store "));
	assert_non_null(strstr(err, path));
	assert_non_null(f = fopen(path, "r"));
	assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(back));
	fclose(f);
	assert_memory_equal(junk, back, sizeof(junk));
	/* A missing state directory is an error too, not a crash. */
	p.state_dir = "/nonexistent/stsproxy";
	assert_null(report_store_open(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/stsproxy"));
}

/* A flush that cannot write (the file locked) keeps its counts: the next one writes them once. */
static void
failed_flush_loses_and_doubles_nothing(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 7);
	struct sts_report *r = sts_report_new(T0);
	char path[512], err[512] = "";
	sqlite3 *other;
	struct got g;

	snprintf(path, sizeof(path), "%s/%s", dir, REPORT_STORE_FILE);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (int k = 0; k < 3; k++)
		ok_at(r, "example.com", STS_PTYPE_STS, T0);
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0);
	assert_int_equal(report_store_flush(s, r, T0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "report store "));
	/* Counting goes on meanwhile. */
	ok_at(r, "example.com", STS_PTYPE_STS, T0 + 1);
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0 + 1);
	assert_int_equal(report_store_flush(s, r, T0 + 1, err, sizeof(err)), -1);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	flush_ok(s, r, T0 + 2);
	flush_ok(s, r, T0 + 3);
	read_day(s, T0, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.e[0].success, 4);
	assert_int_equal(g.e[0].failure, 2);
	assert_int_equal(g.e[0].n_details, 1);
	assert_int_equal(g.e[0].d[0].count, 2);
	sts_report_free(r);
	report_store_close(s);
}

/* RFC 8460 section 4.4 "policy-string" of a tlsa policy: the records, presentation form. */
static void
rfc8460_4_4_tlsa_policy_strings(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 7);
	struct sts_report *r = sts_report_new(T0);
	static const uint8_t d1[] = {0x1f, 0x85, 0x0a, 0x33}, d2[] = {0xab, 0xcd};
	struct tls_tlsa rr[2] = {{3, 1, 1, d1, sizeof(d1)}, {2, 0, 1, d2, sizeof(d2)}};
	struct sts_dane_state *st = calloc(1, sizeof(*st) + 2 * sizeof(struct sts_dane_host));
	struct got g;

	assert_non_null(st);
	st->n_host = 2;
	st->host[0].name = "mx1.example.net";
	st->host[0].n_tlsa = 2;
	st->host[0].tlsa = rr;
	st->host[1].name = "mx2.example.net";
	st->host[1].n_tlsa = 1; /* the same first record: listed once */
	st->host[1].tlsa = rr;
	{
		struct sts_report_count c = {.domain = "example.net",
		                             .type = STS_PTYPE_TLSA,
		                             .mode = STS_MODE_ENFORCE,
		                             .dane = st};

		assert_int_equal(sts_report_note_policy(r, &c, T0), 0);
	}
	ok_at(r, "example.net", STS_PTYPE_TLSA, T0);
	flush_ok(s, r, T0);
	read_day(s, T0, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.e[0].type, STS_PTYPE_TLSA);
	assert_int_equal(g.e[0].success, 1);
	assert_int_equal(g.e[0].n_policy, 2);
	assert_string_equal(g.e[0].policy[0], "3 1 1 1F850A33");
	assert_string_equal(g.e[0].policy[1], "2 0 1 ABCD");
	assert_int_equal(g.e[0].n_mx, 0);
	/* A later flush without the policy at hand keeps the strings. */
	ok_at(r, "example.net", STS_PTYPE_TLSA, T0 + 5);
	flush_ok(s, r, T0 + 5);
	read_day(s, T0, &g);
	assert_int_equal(g.e[0].success, 2);
	assert_int_equal(g.e[0].n_policy, 2);
	free(st);
	sts_report_free(r);
	report_store_close(s);
}

static int
due_seen(void *arg, const struct report_delivery *d)
{
	struct report_delivery *v = arg;

	v[0].attempts++;
	v[v[0].attempts] = *d;
	return 0;
}

/* The delivery state of a day's report survives a reopen; only pending and due ones are due. */
static void
delivery_state_idempotent(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 7);
	struct report_delivery d, v[4];

	assert_int_equal(report_store_delivery_get(s, DAY, "example.com", &d, NULL, 0), 0);
	assert_int_equal(d.state, REPORT_STATE_PENDING);
	assert_string_equal(d.domain, "example.com");
	d.attempts = 1;
	d.next_try = T0 + 600;
	snprintf(d.last_error, sizeof(d.last_error), "451 try later");
	assert_int_equal(report_store_delivery_put(s, &d, NULL, T0, NULL, 0), 0);
	snprintf(d.domain, sizeof(d.domain), "example.org");
	d.state = REPORT_STATE_SENT;
	snprintf(d.report_id, sizeof(d.report_id), "2023-11-14T00:00:00Z_example.org@gw");
	assert_int_equal(report_store_delivery_put(s, &d, NULL, T0, NULL, 0), 0);
	report_store_close(s);

	s = open_gw(dir, "gw1", 7);
	memset(v, 0, sizeof(v));
	assert_int_equal(report_store_deliveries_due(s, T0, due_seen, v, NULL, 0), 0);
	assert_int_equal(report_store_deliveries_due(s, T0 + 600, due_seen, v, NULL, 0), 1);
	assert_string_equal(v[1].domain, "example.com");
	assert_int_equal(v[1].attempts, 1);
	assert_string_equal(v[1].last_error, "451 try later");
	assert_int_equal(report_store_delivery_get(s, DAY + 3600, "example.org", &d, NULL, 0), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	assert_string_equal(d.report_id, "2023-11-14T00:00:00Z_example.org@gw");
	assert_string_equal(report_state_name(REPORT_STATE_SKIPPED), "skipped");
	report_store_close(s);
}

/*
 * Two processes of one store (the daemon and "report send"), as two
 * handles on the file: one sender at a time, a claim past its time is
 * taken over, the sender that lost it records nothing, and a settled
 * report is neither claimed nor rewritten.
 */
static void
rfc8460_4_one_sender_per_store(void **state)
{
	const char *dir = *state;
	struct report_store *a = open_gw(dir, "gw1", 7), *b = open_gw(dir, "gw1", 7);
	struct report_delivery d;
	char who[REPORT_STORE_ERROR_LEN] = "";

	assert_int_equal(report_store_delivery_claim(a, DAY, "example.com", "gw1 pid 1", T0, 60,
	                                             who, sizeof(who), NULL, 0),
	                 REPORT_CLAIM_OURS);
	assert_int_equal(report_store_delivery_claim(b, DAY, "example.com", "gw1 pid 2", T0 + 1, 60,
	                                             who, sizeof(who), NULL, 0),
	                 REPORT_CLAIM_HELD);
	assert_string_equal(who, "gw1 pid 1");
	/* renewed by its holder; another domain is free */
	assert_int_equal(report_store_delivery_claim(a, DAY, "example.com", "gw1 pid 1", T0 + 50,
	                                             60, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_OURS);
	assert_int_equal(report_store_delivery_claim(b, DAY, "example.com", "gw1 pid 2", T0 + 100,
	                                             60, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_HELD);
	assert_int_equal(report_store_delivery_claim(b, DAY, "example.org", "gw1 pid 2", T0 + 100,
	                                             60, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_OURS);
	/* a's time is over: b takes it, and a's outcome is not recorded */
	assert_int_equal(report_store_delivery_claim(b, DAY, "example.com", "gw1 pid 2", T0 + 111,
	                                             60, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_OURS);
	assert_int_equal(report_store_delivery_get(a, DAY, "example.com", &d, NULL, 0), 0);
	d.state = REPORT_STATE_FAILED;
	assert_int_equal(report_store_delivery_put(a, &d, "gw1 pid 1", T0 + 112, NULL, 0), 1);
	assert_int_equal(report_store_delivery_get(b, DAY, "example.com", &d, NULL, 0), 0);
	/* b records it sent: settled for both, and a later put changes nothing */
	d.state = REPORT_STATE_SENT;
	assert_int_equal(report_store_delivery_put(b, &d, "gw1 pid 2", T0 + 120, NULL, 0), 0);
	assert_int_equal(report_store_delivery_claim(a, DAY, "example.com", "gw1 pid 1", T0 + 121,
	                                             60, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_SETTLED);
	d.state = REPORT_STATE_PENDING;
	assert_int_equal(report_store_delivery_put(a, &d, NULL, T0 + 122, NULL, 0), 1);
	assert_int_equal(report_store_delivery_get(a, DAY, "example.com", &d, NULL, 0), 1);
	assert_int_equal(d.state, REPORT_STATE_SENT);
	/* a pending outcome ends the claim: the other process may send at once */
	memset(&d, 0, sizeof(d));
	d.day = DAY;
	snprintf(d.domain, sizeof(d.domain), "example.org");
	d.attempts = 1;
	assert_int_equal(report_store_delivery_put(b, &d, "gw1 pid 2", T0 + 130, NULL, 0), 0);
	assert_int_equal(report_store_delivery_claim(a, DAY, "example.org", "gw1 pid 1", T0 + 131,
	                                             60, NULL, 0, NULL, 0),
	                 REPORT_CLAIM_OURS);
	report_store_close(a);
	report_store_close(b);
}

static int
count_details(void *arg, const struct report_store_entry *e)
{
	uint64_t *v = arg;

	v[0] = e->n_details;
	v[1] = e->detail_other;
	v[2] = e->failure;
	for (size_t i = 0; i < e->n_details; i++)
		v[3] += e->details[i].count;
	return 0;
}

/* Detail rows come from the network (MX names, addresses): a day keeps a bounded number. */
static void
rfc8460_4_4_details_bounded_per_day(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 7);
	struct sts_report *r = sts_report_new(T0);
	uint64_t v[4] = {0};
	char ip[32];
	int k = 0;

	for (int flush = 0; flush < 20; flush++) {
		for (int i = 0; i < 16; i++, k++) {
			snprintf(ip, sizeof(ip), "198.51.%d.%d", k / 200, k % 200);
			fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", ip, T0);
		}
		flush_ok(s, r, T0);
	}
	assert_int_equal(report_store_foreach_day(s, T0, NULL, count_details, v, NULL, 0), 1);
	assert_int_equal(v[0], REPORT_STORE_DETAILS_MAX);
	assert_int_equal(v[1], 320 - REPORT_STORE_DETAILS_MAX);
	assert_int_equal(v[2], 320);
	assert_int_equal(v[3] + v[1], 320); /* every failure in a row or in detail_other */
	sts_report_free(r);
	report_store_close(s);
}

struct stress {
	struct sts_report *r;
	int tid;
};

static void *
stress_count(void *arg)
{
	struct stress *st = arg;
	char dom[32];

	for (int i = 0; i < 20000; i++) {
		snprintf(dom, sizeof(dom), "d%d.example", (i * 31 + st->tid) % 500);
		if (i % 10 == 0)
			fail_at(st->r, dom, STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7",
			        T0);
		else
			ok_at(st->r, dom, STS_PTYPE_STS, T0);
	}
	return NULL;
}

struct walked {
	uint64_t success, failure, details, detail_count;
};

static int
walk(void *arg, const struct sts_report_entry *e)
{
	struct walked *w = arg;

	w->success += e->success;
	w->failure += e->failure;
	w->details += e->n_details;
	for (size_t i = 0; i < e->n_details; i++)
		w->detail_count += e->details[i].count;
	return 0;
}

/* Four threads count while the flusher takes batches: every count is in exactly one batch. */
static void
counts_while_taking_none_lost(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct sts_report_batch *all = NULL, *b;
	struct stress st[4];
	pthread_t th[4];
	struct walked w;

	(void)state;
	for (int i = 0; i < 4; i++) {
		st[i] = (struct stress){.r = r, .tid = i};
		assert_int_equal(pthread_create(&th[i], NULL, stress_count, &st[i]), 0);
	}
	for (int k = 0; k < 50; k++) {
		assert_non_null(b = sts_report_take(r));
		if (all == NULL)
			all = b;
		else
			assert_int_equal(sts_report_batch_merge(all, b), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(sts_report_batch_merge(all, sts_report_take(r)), 0);
	memset(&w, 0, sizeof(w));
	sts_report_batch_foreach(all, walk, &w);
	assert_int_equal(w.success, 4 * 18000);
	assert_int_equal(w.failure, 4 * 2000);
	sts_report_batch_free(all);
	sts_report_free(r);
}

/* Batches that waited are merged by day and domain, details by key. */
static void
batches_merge_by_day_and_key(void **state)
{
	struct sts_report *r = sts_report_new(T0);
	struct sts_report_batch *a, *b;
	struct walked w;
	size_t n;

	(void)state;
	ok_at(r, "example.com", STS_PTYPE_STS, T0);
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0);
	assert_non_null(a = sts_report_take(r));
	assert_false(sts_report_batch_empty(a));
	fail_at(r, "example.com", STS_RESULT_CERT_EXPIRED, "10.0.0.1", "198.51.100.7", T0);
	ok_at(r, "example.com", STS_PTYPE_STS, T0 + 86400);
	assert_non_null(b = sts_report_take(r));
	assert_int_equal(sts_report_batch_merge(a, b), 0);
	memset(&w, 0, sizeof(w));
	n = sts_report_batch_foreach(a, walk, &w);
	assert_int_equal(n, 2); /* one domain on two days */
	assert_int_equal(w.success, 2);
	assert_int_equal(w.failure, 2);
	assert_int_equal(w.details, 1);
	assert_int_equal(w.detail_count, 2);
	assert_non_null(b = sts_report_take(r));
	assert_true(sts_report_batch_empty(b));
	sts_report_batch_free(b);
	sts_report_batch_free(a);
	sts_report_free(r);
}

static int
count_changed(void *arg, const struct report_store_row *row)
{
	int64_t *version = arg;

	*version = row->version;
	return 0;
}

/*
 * A file of schema 1 (before the push marks): its rows are upgraded as
 * not yet published, shown once, and not again after they are marked.
 */
static void
schema_1_rows_published_after_upgrade(void **state)
{
	const char *dir = *state;
	struct report_store *s = open_gw(dir, "gw1", 7);
	struct sts_report *r = sts_report_new(T0);
	char path[512], err[512] = "";
	int64_t version = 0;
	sqlite3 *db;

	ok_at(r, "example.com", STS_PTYPE_STS, T0);
	flush_ok(s, r, T0);
	report_store_close(s);
	snprintf(path, sizeof(path), "%s/%s", dir, REPORT_STORE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DROP TABLE sending;"
	                              "ALTER TABLE results DROP COLUMN pushed;"
	                              "ALTER TABLE results DROP COLUMN version;"
	                              "PRAGMA user_version=1",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);

	s = open_gw(dir, "gw1", 7);
	assert_int_equal(report_store_changed(s, 10, count_changed, &version, err, sizeof(err)), 1);
	assert_int_equal(version, 1);
	assert_int_equal(
	    report_store_pushed(s, DAY, "example.com", STS_PTYPE_STS, version, err, sizeof(err)),
	    0);
	assert_int_equal(report_store_changed(s, 10, count_changed, &version, err, sizeof(err)), 0);
	/* A flush changes the row: shown again, with a higher version. */
	ok_at(r, "example.com", STS_PTYPE_STS, T0 + 5);
	flush_ok(s, r, T0 + 5);
	assert_int_equal(report_store_changed(s, 10, count_changed, &version, err, sizeof(err)), 1);
	assert_int_equal(version, 2);
	report_store_close(s);
	sts_report_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(rfc8460_4_4_flush_reopen_sums_equal, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8460_4_4_two_gateways_summed, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8460_4_1_retention, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8460_4_1_day_boundary, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(damaged_file_clear_error, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(failed_flush_loses_and_doubles_nothing, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8460_4_4_tlsa_policy_strings, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(delivery_state_idempotent, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8460_4_4_details_bounded_per_day, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8460_4_one_sender_per_store, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(schema_1_rows_published_after_upgrade, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test(batches_merge_by_day_and_key),
	    cmocka_unit_test(counts_while_taking_none_lost),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
