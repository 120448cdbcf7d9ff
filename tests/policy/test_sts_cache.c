// sources: policy/sts_cache.c policy/sts_claim.c core/util.c policy/sts_seen.c policy/sts_policy.c policy/sts_mx.c core/types.c core/log.c
/*
 * test_sts_cache.c - the persistent MTA-STS policy cache: lookups,
 * replacement under live references, persistence across restarts, damaged
 * files, kill -9 during writes, failed-fetch backoff, refresh selection,
 * disk errors and concurrent readers and writers.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "policy/sts_cache.h"

#define T0 1700000000LL

/* --- helpers --------------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
rm_dir(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
setup_dir(void **state)
{
	char *dir = strdup("/tmp/sts-sts-cache-XXXXXX");

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
	rm_dir(*state);
	free(*state);
	return 0;
}

static struct sts_cache *
open_ok(const char *dir)
{
	char err[512] = "";
	struct sts_cache *c = sts_cache_open(dir, err, sizeof(err));

	if (c == NULL)
		fail_msg("sts_cache_open(%s): %s", dir, err);
	return c;
}

static void
path_in(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < len);
}

/* A policy whose mx patterns live in the caller's array. */
static struct sts_policy
mkpolicy(enum sts_mode mode, uint32_t max_age, char **mx, size_t n_mx)
{
	struct sts_policy p = {.mode = mode, .max_age = max_age, .mx = mx, .n_mx = n_mx};

	return p;
}

static char *mx_one[] = {"mx1.example.net"};
static char *mx_two[] = {"mx1.example.org", "*.backup.example.org"};

static int
put_simple(struct sts_cache *c, const char *domain, const char *id, int64_t now)
{
	char text[256];
	struct sts_policy p = mkpolicy(STS_MODE_ENFORCE, 86400, mx_one, 1);
	int n = snprintf(text, sizeof(text),
	                 "version: STSv1\nmode: enforce\nmx: mx1.example.net\nmax_age: 86400\n"
	                 "# %s %s\n",
	                 domain, id);

	assert_true(n > 0 && (size_t)n < sizeof(text));
	return sts_cache_put(c, domain, id, text, (size_t)n, &p, now);
}

static void
assert_policy_equal(const struct sts_policy *a, const struct sts_policy *b)
{
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->max_age, b->max_age);
	assert_int_equal(a->n_mx, b->n_mx);
	for (size_t i = 0; i < a->n_mx; i++)
		assert_string_equal(a->mx[i], b->mx[i]);
}

/* --- put, get, replace, delete -------------------------------------------- */

static void
rfc8461_3_3_put_get_replace_delete(void **state)
{
	struct sts_cache *c = open_ok(*state);
	struct sts_policy p = mkpolicy(STS_MODE_TESTING, 604800, mx_two, 2);
	const char text[] = "version: STSv1\r\nmode: testing\r\nmx: mx1.example.org\r\n"
	                    "mx: *.backup.example.org\r\nmax_age: 604800\r\n";
	const struct sts_cache_entry *e;

	assert_int_equal(sts_cache_count(c), 0);
	assert_null(sts_cache_get(c, "example.org"));
	assert_int_equal(
	    sts_cache_put(c, "example.org", "20240101", text, sizeof(text) - 1, &p, T0), 0);
	assert_int_equal(sts_cache_count(c), 1);

	e = sts_cache_get(c, "example.org");
	assert_non_null(e);
	assert_string_equal(e->domain, "example.org");
	assert_string_equal(e->id, "20240101");
	assert_int_equal(e->text_len, sizeof(text) - 1);
	assert_memory_equal(e->text, text, sizeof(text));
	assert_policy_equal(&e->policy, &p);
	assert_int_equal(e->fetched_at, T0);
	assert_int_equal(e->expires_at, T0 + 604800);
	assert_int_equal(e->last_checked, T0);
	sts_cache_release(e);

	/* section 3.3: a newer policy replaces the cached one, mode none included */
	p = mkpolicy(STS_MODE_NONE, 3600, NULL, 0);
	assert_int_equal(sts_cache_put(c, "example.org", "20240202",
	                               "version: STSv1\nmode: none\n"
	                               "max_age: 3600\n",
	                               40, &p, T0 + 10),
	                 0);
	assert_int_equal(sts_cache_count(c), 1);
	e = sts_cache_get(c, "example.org");
	assert_non_null(e);
	assert_string_equal(e->id, "20240202");
	assert_int_equal(e->policy.mode, STS_MODE_NONE);
	assert_int_equal(e->policy.n_mx, 0);
	assert_int_equal(e->expires_at, T0 + 10 + 3600);
	sts_cache_release(e);

	assert_int_equal(sts_cache_touch(c, "example.org", T0 + 20), 0);
	e = sts_cache_get(c, "example.org");
	assert_int_equal(e->last_checked, T0 + 20);
	assert_int_equal(e->fetched_at, T0 + 10);
	assert_string_equal(e->id, "20240202");
	sts_cache_release(e);
	assert_int_equal(sts_cache_touch(c, "unknown.example", T0), -1);

	assert_int_equal(sts_cache_delete(c, "example.org"), 0);
	assert_null(sts_cache_get(c, "example.org"));
	assert_int_equal(sts_cache_count(c), 0);
	assert_int_equal(sts_cache_delete(c, "example.org"), 0);
	sts_cache_release(NULL);
	sts_cache_close(c);
	sts_cache_close(NULL);
}

static void
refcount_keeps_replaced_entry(void **state)
{
	struct sts_cache *c = open_ok(*state);
	const struct sts_cache_entry *old, *cur;

	assert_int_equal(put_simple(c, "example.com", "one", T0), 0);
	old = sts_cache_get(c, "example.com");
	assert_non_null(old);
	assert_int_equal(put_simple(c, "example.com", "two", T0 + 1), 0);
	assert_int_equal(sts_cache_delete(c, "example.com"), 0);
	assert_int_equal(put_simple(c, "example.com", "three", T0 + 2), 0);
	cur = sts_cache_get(c, "example.com");
	sts_cache_close(c);

	/* Both outlive the replacement, the delete and even the cache. */
	assert_string_equal(old->id, "one");
	assert_non_null(strstr(old->text, "example.com one"));
	assert_int_equal(old->fetched_at, T0);
	assert_string_equal(cur->id, "three");
	assert_non_null(strstr(cur->text, "example.com three"));
	sts_cache_release(old);
	sts_cache_release(cur);
}

/* section 3.3: the cache is per policy domain; names compare without ASCII case. */
static void
rfc8461_3_3_lower_case_lookups(void **state)
{
	struct sts_cache *c = open_ok(*state);
	const struct sts_cache_entry *e;
	static const char *const lookups[] = {"example.com", "EXAMPLE.COM", "Example.Com"};

	assert_int_equal(put_simple(c, "ExAmPle.COM", "abc", T0), 0);
	for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		e = sts_cache_get(c, lookups[i]);
		assert_non_null(e);
		assert_string_equal(e->domain, "example.com");
		sts_cache_release(e);
		assert_false(sts_cache_get(c, "example.co") != NULL);
	}
	assert_null(sts_cache_get(c, "example.com."));
	assert_null(sts_cache_get(c, "xample.com"));
	assert_null(sts_cache_get(c, ""));
	assert_int_equal(put_simple(c, "EXAMPLE.com", "def", T0), 0);
	assert_int_equal(sts_cache_count(c), 1);
	sts_cache_close(c);
}

/* What the parser would never produce is refused, and nothing changes. */
static void
rfc8461_3_1_put_rejects_invalid(void **state)
{
	struct sts_cache *c = open_ok(*state);
	char long_domain[300], *many_mx[STS_POLICY_MAX_MX + 1], *bad_mx[] = {"a.example\nb"};
	struct sts_policy ok = mkpolicy(STS_MODE_ENFORCE, 60, mx_one, 1);
	struct sts_policy too_many, bad_mode = ok, too_old = ok, enforce_no_mx, newline;
	static const char text[] = "x";

	memset(long_domain, 'a', sizeof(long_domain));
	long_domain[254] = '\0';
	for (size_t i = 0; i < STS_POLICY_MAX_MX + 1; i++)
		many_mx[i] = "mx.example";
	too_many = mkpolicy(STS_MODE_ENFORCE, 60, many_mx, STS_POLICY_MAX_MX + 1);
	bad_mode.mode = (enum sts_mode)7;
	too_old.max_age = STS_MAX_AGE_CLAMP + 1;
	enforce_no_mx = mkpolicy(STS_MODE_ENFORCE, 60, NULL, 1);
	newline = mkpolicy(STS_MODE_ENFORCE, 60, bad_mx, 1);

	const struct {
		const char *name;
		const char *domain;
		const char *id;
		const struct sts_policy *p;
	} cases[] = {
	    {"rfc8461_3_1_id_empty", "a.example", "", &ok},
	    {"rfc8461_3_1_id_too_long", "a.example", "123456789012345678901234567890123", &ok},
	    {"rfc8461_3_1_id_not_alnum", "a.example", "abc-def", &ok},
	    {"rfc8461_3_1_id_null", "a.example", NULL, &ok},
	    {"domain_empty", "", "abc", &ok},
	    {"domain_too_long", long_domain, "abc", &ok},
	    {"domain_space", "a example", "abc", &ok},
	    {"domain_u_label",
	     "b\xc3\xbc"
	     "cher.example",
	     "abc", &ok},
	    {"domain_null", NULL, "abc", &ok},
	    {"rfc8461_3_2_too_many_mx", "a.example", "abc", &too_many},
	    {"rfc8461_3_2_bad_mode", "a.example", "abc", &bad_mode},
	    {"rfc8461_3_2_max_age_above_clamp", "a.example", "abc", &too_old},
	    {"mx_null_array", "a.example", "abc", &enforce_no_mx},
	    {"mx_with_newline", "a.example", "abc", &newline},
	    {"policy_null", "a.example", "abc", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = sts_cache_put(c, cases[i].domain, cases[i].id, text, 1, cases[i].p, T0);

		if (r != -1)
			fail_msg("%s: put returned %d", cases[i].name, r);
		assert_int_equal(sts_cache_count(c), 0);
	}
	/* the id length limit is exactly 32 */
	assert_int_equal(
	    sts_cache_put(c, "a.example", "12345678901234567890123456789012", text, 1, &ok, T0), 0);
	assert_int_equal(sts_cache_put(c, "a.example", "abc", NULL, 5, &ok, T0), -1);
	assert_int_equal(sts_cache_fetch_failed(c, "a.example", "no-good", T0), -1);
	assert_int_equal(sts_cache_count(c), 1);
	sts_cache_close(c);
}

static void
many_domains_all_found(void **state)
{
	enum { N = 100000 };
	struct sts_cache *c = open_ok(*state);
	char name[64];

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		assert_int_equal(put_simple(c, name, "id1", T0 + i), 0);
	}
	assert_int_equal(sts_cache_count(c), N);
	for (int i = 0; i < N; i++) {
		const struct sts_cache_entry *e;

		snprintf(name, sizeof(name), "d%d.example", i);
		e = sts_cache_get(c, name);
		if (e == NULL)
			fail_msg("%s not found", name);
		assert_string_equal(e->domain, name);
		assert_int_equal(e->fetched_at, T0 + i);
		sts_cache_release(e);
	}
	snprintf(name, sizeof(name), "d%d.example", N);
	assert_null(sts_cache_get(c, name));
	sts_cache_close(c);

	/* and all of them load back */
	c = open_ok(*state);
	assert_int_equal(sts_cache_count(c), N);
	sts_cache_close(c);
}

/* --- persistence ----------------------------------------------------------- */

static void
rfc8461_3_3_restart_keeps_cache(void **state)
{
	static const char *const domains[] = {"example.org", "example.net", "none.example"};
	const struct sts_cache_entry *before[3], *after;
	struct sts_cache *c = open_ok(*state);
	struct sts_policy p1 = mkpolicy(STS_MODE_TESTING, 604800, mx_two, 2);
	struct sts_policy p2 = mkpolicy(STS_MODE_ENFORCE, STS_MAX_AGE_CLAMP, mx_one, 1);
	struct sts_policy p3 = mkpolicy(STS_MODE_NONE, 1, NULL, 0);
	/* a policy file may hold anything the parser skipped, NULs excluded */
	static const char t1[] = "version: STSv1\nmode: testing\nmx: mx1.example.org\n"
	                         "mx: *.backup.example.org\nmax_age: 604800\nx-ext: \xff\n";

	assert_int_equal(sts_cache_put(c, domains[0], "A1", t1, sizeof(t1) - 1, &p1, T0), 0);
	assert_int_equal(sts_cache_put(c, domains[1], "B2b2", "t2", 2, &p2, T0 + 5), 0);
	assert_int_equal(sts_cache_put(c, domains[2], "C3", "", 0, &p3, T0 + 7), 0);
	assert_int_equal(sts_cache_touch(c, domains[1], T0 + 99), 0);
	/* backoff of a cached domain and of an unknown one persist too */
	assert_int_equal(sts_cache_fetch_failed(c, domains[0], "A2", T0 + 100), 0);
	assert_int_equal(sts_cache_fetch_failed(c, "nopolicy.example", "Z9", T0 + 100), 0);
	assert_int_equal(sts_cache_fetch_failed(c, "nopolicy.example", "Z9", T0 + 400), 0);
	for (int i = 0; i < 3; i++)
		before[i] = sts_cache_get(c, domains[i]);
	sts_cache_close(c);

	c = open_ok(*state);
	assert_int_equal(sts_cache_count(c), 3);
	for (int i = 0; i < 3; i++) {
		after = sts_cache_get(c, domains[i]);
		assert_non_null(after);
		assert_string_equal(after->domain, before[i]->domain);
		assert_string_equal(after->id, before[i]->id);
		assert_int_equal(after->text_len, before[i]->text_len);
		assert_memory_equal(after->text, before[i]->text, before[i]->text_len + 1);
		assert_policy_equal(&after->policy, &before[i]->policy);
		assert_int_equal(after->fetched_at, before[i]->fetched_at);
		assert_int_equal(after->expires_at, before[i]->expires_at);
		assert_int_equal(after->last_checked, before[i]->last_checked);
		sts_cache_release(after);
		sts_cache_release(before[i]);
	}
	assert_null(sts_cache_get(c, "nopolicy.example"));
	assert_false(sts_cache_may_fetch(c, domains[0], "A2", T0 + 399));
	assert_true(sts_cache_may_fetch(c, domains[0], "A2", T0 + 400));
	/* second failure in a row: 600 s */
	assert_false(sts_cache_may_fetch(c, "nopolicy.example", "Z9", T0 + 999));
	assert_true(sts_cache_may_fetch(c, "nopolicy.example", "Z9", T0 + 1000));
	sts_cache_close(c);
}

static void
damaged_file_moved_aside(void **state)
{
	const char *dir = *state;
	char path[512], aside[600], garbage[8192];
	struct sts_cache *c = open_ok(dir);
	struct stat sb;
	FILE *f;
	time_t t;
	int found = 0;

	assert_int_equal(put_simple(c, "example.com", "abc", T0), 0);
	sts_cache_close(c);

	path_in(path, sizeof(path), dir, STS_CACHE_FILE);
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 7 + 13);
	f = fopen(path, "r+");
	assert_non_null(f);
	assert_int_equal(fwrite(garbage, 1, sizeof(garbage), f), sizeof(garbage));
	assert_int_equal(fclose(f), 0);

	t = time(NULL);
	c = open_ok(dir);
	assert_int_equal(sts_cache_count(c), 0);
	assert_null(sts_cache_get(c, "example.com"));
	for (time_t s = t; s <= time(NULL) && !found; s++) {
		snprintf(aside, sizeof(aside), "%s.corrupt-%ld", path, (long)s);
		found = stat(aside, &sb) == 0 && sb.st_size >= (off_t)sizeof(garbage);
	}
	assert_true(found);
	assert_int_equal(put_simple(c, "example.com", "def", T0), 0);
	sts_cache_close(c);

	c = open_ok(dir);
	assert_int_equal(sts_cache_count(c), 1);
	sts_cache_close(c);
}

/*
 * Damage inside a b-tree with an intact file header: the primary-key index,
 * which loading never reads, so only quick_check can find it.
 */
static void
damaged_index_moved_aside(void **state)
{
	const char *dir = *state;
	char path[512], name[64];
	struct sts_cache *c = open_ok(dir);
	sqlite3_stmt *st;
	sqlite3 *db;
	long root;
	FILE *f;

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "p%d.example", i);
		assert_int_equal(put_simple(c, name, "abc", T0), 0);
	}
	sts_cache_close(c);
	path_in(path, sizeof(path), dir, STS_CACHE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "SELECT rootpage FROM sqlite_schema WHERE type = 'index'"
	                       " AND tbl_name = 'policies'",
	                       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	root = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_true(root > 1);

	f = fopen(path, "r+");
	assert_non_null(f);
	assert_int_equal(fseek(f, (root - 1) * 4096, SEEK_SET), 0);
	for (int i = 0; i < 4096; i++)
		fputc(i * 31 + 7, f);
	assert_int_equal(fclose(f), 0);

	c = open_ok(dir);
	assert_int_equal(sts_cache_count(c), 0);
	assert_int_equal(put_simple(c, "example.com", "def", T0), 0);
	sts_cache_close(c);
	c = open_ok(dir);
	assert_int_equal(sts_cache_count(c), 1);
	sts_cache_close(c);
}

/* Rows written by something else are used only when complete and consistent. */
static void
load_skips_inconsistent_rows(void **state)
{
	static const struct {
		const char *name;
		const char *values; /* SQL after VALUES */
		bool loads;
	} rows[] = {
	    {"valid",
	     "('ok.example', 'abc', 't', 'enforce', 60, 'mx.example', 100, 160, 100,"
	     " NULL, 0, 0)",
	     true},
	    {"rfc8461_3_2_none_without_mx",
	     "('none.example', 'abc', 't', 'none', 60, NULL, 100,"
	     " 160, 100, NULL, 0, 0)",
	     true},
	    {"rfc8461_3_2_enforce_without_mx",
	     "('nomx.example', 'abc', 't', 'enforce', 60, NULL,"
	     " 100, 160, 100, NULL, 0, 0)",
	     false},
	    {"expires_mismatch",
	     "('exp.example', 'abc', 't', 'enforce', 60, 'mx.example', 100,"
	     " 999, 100, NULL, 0, 0)",
	     false},
	    {"rfc8461_3_1_bad_id",
	     "('id.example', 'a-b', 't', 'enforce', 60, 'mx.example', 100,"
	     " 160, 100, NULL, 0, 0)",
	     false},
	    {"rfc8461_3_2_bad_mode",
	     "('mode.example', 'abc', 't', 'Enforce', 60, 'mx.example',"
	     " 100, 160, 100, NULL, 0, 0)",
	     false},
	    {"rfc8461_3_2_max_age_above_clamp",
	     "('age.example', 'abc', 't', 'enforce',"
	     " 99999999999, 'mx.example', 100, 100000000099,"
	     " 100, NULL, 0, 0)",
	     false},
	    {"upper_case_key",
	     "('UP.example', 'abc', 't', 'enforce', 60, 'mx.example', 100, 160,"
	     " 100, NULL, 0, 0)",
	     false},
	    {"empty_mx_line",
	     "('mxl.example', 'abc', 't', 'enforce', 60, 'a.example' || char(10)"
	     " || char(10) || 'b.example', 100, 160, 100, NULL, 0, 0)",
	     false},
	    {"negative_time",
	     "('neg.example', 'abc', 't', 'enforce', 60, 'mx.example', -100,"
	     " -40, 100, NULL, 0, 0)",
	     false},
	};
	const char *dir = *state;
	char path[512], sql[512];
	struct sts_cache *c = open_ok(dir);
	size_t want = 0;
	sqlite3 *db;

	sts_cache_close(c);
	path_in(path, sizeof(path), dir, STS_CACHE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO policies VALUES %s", rows[i].values);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			fail_msg("%s: %s", rows[i].name, sqlite3_errmsg(db));
		want += rows[i].loads;
	}
	sqlite3_close(db);

	c = open_ok(dir);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char domain[64];
		const struct sts_cache_entry *e;

		/* the domain is the first quoted string */
		assert_int_equal(sscanf(rows[i].values, "('%63[^']'", domain), 1);
		e = sts_cache_get(c, domain);
		if ((e != NULL) != rows[i].loads)
			fail_msg("%s: loaded=%d", rows[i].name, e != NULL);
		sts_cache_release(e);
	}
	assert_int_equal(sts_cache_count(c), want);
	sts_cache_close(c);
}

/* A file from a newer schema is set aside, not misread. */
static void
newer_schema_moved_aside(void **state)
{
	const char *dir = *state;
	char path[512];
	struct sts_cache *c = open_ok(dir);
	sqlite3 *db;

	assert_int_equal(put_simple(c, "example.com", "abc", T0), 0);
	sts_cache_close(c);
	path_in(path, sizeof(path), dir, STS_CACHE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	c = open_ok(dir);
	assert_int_equal(sts_cache_count(c), 0);
	sts_cache_close(c);
}

static void
state_dir_unusable(void **state)
{
	char err[256] = "", file[512];
	FILE *f;

	assert_null(sts_cache_open("/nonexistent/sts-state", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/sts-state"));
	path_in(file, sizeof(file), *state, "plain-file");
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	err[0] = '\0';
	assert_null(sts_cache_open(file, err, sizeof(err)));
	assert_non_null(strstr(err, "not usable"));
}

/* --- kill -9 while writing ------------------------------------------------- */

/* The text the writer puts for (round, i); the loader must find it unchanged. */
static int
crash_text(char *buf, size_t len, unsigned gen, unsigned i)
{
	static const char pad[] =
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

	return snprintf(
	    buf, len, "version: STSv1\nmode: %s\nmx: mx%u.g%u.example\nmax_age: %u\nx-pad: a%.*s\n",
	    gen % 2 ? "enforce" : "testing", i, gen, 1000 + gen * 7 + i,
	    (int)((gen * 131 + i * 17) % (sizeof(pad) - 1)), pad);
}

static void __attribute__((noreturn)) crash_writer(const char *dir, int ready_fd)
{
	char err[256], text[4096], mxbuf[64], name[64], id[33];
	struct sts_cache *c = sts_cache_open(dir, err, sizeof(err));
	char *mx[1] = {mxbuf};

	if (c == NULL)
		_exit(2);
	for (unsigned gen = 0;; gen++) {
		for (unsigned i = 0; i < 200; i++) {
			struct sts_policy p =
			    mkpolicy(gen % 2 ? STS_MODE_ENFORCE : STS_MODE_TESTING,
			             1000 + gen * 7 + i, mx, 1);
			int n = crash_text(text, sizeof(text), gen, i);

			snprintf(mxbuf, sizeof(mxbuf), "mx%u.g%u.example", i, gen);
			snprintf(name, sizeof(name), "d%u.crash.example", i);
			snprintf(id, sizeof(id), "g%ui%u", gen, i);
			sts_cache_put(c, name, id, text, (size_t)n, &p, T0 + gen);
			if (i % 5 == 0)
				sts_cache_touch(c, name, T0 + gen + 1);
			if (i % 11 == 0)
				sts_cache_fetch_failed(c, name, "next", T0 + gen);
			if (i % 13 == 0)
				sts_cache_delete(c, name);
			if (gen == 0 && i == 50 && write(ready_fd, "r", 1) != 1)
				_exit(3);
		}
	}
}

static void
check_integrity(const char *dir)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;

	path_in(path, sizeof(path), dir, STS_CACHE_FILE);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
crash_safety_kill9(void **state)
{
	const char *dir = *state;

	for (int round = 0; round < 5; round++) {
		char text[4096], mx[64], name[64];
		struct sts_policy parsed = {0};
		int fds[2], status;
		struct timespec ts = {0, (long)(40 + round * 90) * 1000000L};
		size_t loaded = 0;
		pid_t pid;
		char ch;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_writer(dir, fds[1]);
		}
		close(fds[1]);
		assert_int_equal(read(fds[0], &ch, 1), 1);
		close(fds[0]);
		nanosleep(&ts, NULL);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		check_integrity(dir);
		struct sts_cache *c = open_ok(dir);

		for (unsigned i = 0; i < 200; i++) {
			const struct sts_cache_entry *e;
			unsigned gen, ii;
			int n;

			snprintf(name, sizeof(name), "d%u.crash.example", i);
			if ((e = sts_cache_get(c, name)) == NULL)
				continue;
			loaded++;
			/* every field agrees with the text the writer put for that id */
			assert_int_equal(sscanf(e->id, "g%ui%u", &gen, &ii), 2);
			assert_int_equal(ii, i);
			n = crash_text(text, sizeof(text), gen, i);
			assert_int_equal(e->text_len, (size_t)n);
			assert_memory_equal(e->text, text, (size_t)n + 1);
			snprintf(mx, sizeof(mx), "mx%u.g%u.example", i, gen);
			assert_int_equal(e->policy.n_mx, 1);
			assert_string_equal(e->policy.mx[0], mx);
			assert_int_equal(e->policy.mode,
			                 gen % 2 ? STS_MODE_ENFORCE : STS_MODE_TESTING);
			assert_int_equal(e->policy.max_age, 1000 + gen * 7 + i);
			assert_int_equal(e->fetched_at, T0 + gen);
			assert_int_equal(e->expires_at, e->fetched_at + e->policy.max_age);
			assert_true(e->last_checked == T0 + gen || e->last_checked == T0 + gen + 1);
			/* and the stored text parses to the stored policy */
			assert_int_equal(sts_policy_parse(e->text, e->text_len, &parsed, NULL), 0);
			assert_policy_equal(&parsed, &e->policy);
			sts_policy_clear(&parsed);
			sts_cache_release(e);
		}
		assert_true(loaded > 0);
		assert_int_equal(sts_cache_count(c), loaded);
		sts_cache_close(c);
	}
}

/* --- backoff --------------------------------------------------------------- */

/* section 3.3: a failed fetch is retried no sooner than 5 minutes later. */
static void
rfc8461_3_3_backoff(void **state)
{
	static const struct {
		const char *name;
		unsigned failures; /* consecutive failures of one id */
		int64_t wait;      /* expected wait after the last one */
	} cases[] = {
	    {"rfc8461_3_3_first_failure_5min", 1, 300},
	    {"rfc8461_3_3_second_failure_doubles", 2, 600},
	    {"rfc8461_3_3_third_failure", 3, 1200},
	    {"rfc8461_3_3_fourth_failure", 4, 2400},
	    {"rfc8461_3_3_capped_at_1h", 5, 3600},
	    {"rfc8461_3_3_many_failures_capped", 80, 3600},
	};
	struct sts_cache *c = open_ok(*state);

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		char domain[64];
		int64_t t = T0;

		snprintf(domain, sizeof(domain), "case%zu.example", k);
		assert_true(sts_cache_may_fetch(c, domain, "id1", t));
		for (unsigned f = 0; f < cases[k].failures; f++) {
			assert_int_equal(sts_cache_fetch_failed(c, domain, "id1", t), 0);
			if (f + 1 < cases[k].failures)
				t += 4000; /* retried after the window, failed again */
		}
		if (sts_cache_may_fetch(c, domain, "id1", t) ||
		    sts_cache_may_fetch(c, domain, "id1", t + cases[k].wait - 1))
			fail_msg("%s: may fetch before %" PRId64 " s", cases[k].name,
			         cases[k].wait);
		if (!sts_cache_may_fetch(c, domain, "id1", t + cases[k].wait))
			fail_msg("%s: still backing off after %" PRId64 " s", cases[k].name,
			         cases[k].wait);
		/* a new id is a new policy: fetch at once */
		assert_true(sts_cache_may_fetch(c, domain, "id2", t));
		assert_true(sts_cache_may_fetch(c, "other.example", "id1", t));
		assert_int_equal(sts_cache_count(c), 0);
	}

	/* a failure of a new id starts over at 5 minutes */
	assert_int_equal(sts_cache_fetch_failed(c, "case4.example", "id2", T0 + 9000), 0);
	assert_false(sts_cache_may_fetch(c, "case4.example", "id2", T0 + 9299));
	assert_true(sts_cache_may_fetch(c, "case4.example", "id2", T0 + 9300));
	assert_true(sts_cache_may_fetch(c, "case4.example", "id1", T0 + 9000));

	/* a successful fetch clears it */
	assert_int_equal(sts_cache_fetch_failed(c, "case0.example", "id1", T0 + 9000), 0);
	assert_false(sts_cache_may_fetch(c, "case0.example", "id1", T0 + 9001));
	assert_int_equal(put_simple(c, "case0.example", "id1", T0 + 9001), 0);
	assert_true(sts_cache_may_fetch(c, "case0.example", "id1", T0 + 9001));
	/* case-insensitive like every lookup */
	assert_int_equal(sts_cache_fetch_failed(c, "CASE1.example", "id9", T0), 0);
	assert_false(sts_cache_may_fetch(c, "case1.EXAMPLE", "id9", T0));
	/* delete forgets it */
	assert_int_equal(sts_cache_delete(c, "case1.example"), 0);
	assert_true(sts_cache_may_fetch(c, "case1.example", "id9", T0));
	sts_cache_close(c);
}

/* --- refresh selection ----------------------------------------------------- */

static void
rfc8461_3_3_due_for_refresh(void **state)
{
	struct sts_cache *c = open_ok(*state);
	char out[8][254];
	struct sts_policy p = mkpolicy(STS_MODE_ENFORCE, 0, mx_one, 1);
	static const struct {
		const char *domain;
		uint32_t max_age;
	} put[] = {
	    {"a.example", 100},  {"b.example", 1000}, {"c.example", 50},
	    {"d.example", 4000}, {"e.example", 200},
	};

	for (size_t i = 0; i < sizeof(put) / sizeof(put[0]); i++) {
		p.max_age = put[i].max_age;
		assert_int_equal(sts_cache_put(c, put[i].domain, "id", "t", 1, &p, 1000), 0);
	}
	/* expiring at 1050, 1100, 1200 are within 200 s of 1000; soonest first */
	assert_int_equal(sts_cache_due(c, 1000, 200, out, 8), 3);
	assert_string_equal(out[0], "c.example");
	assert_string_equal(out[1], "a.example");
	assert_string_equal(out[2], "e.example");
	/* bounded: the caller takes a few per round */
	assert_int_equal(sts_cache_due(c, 1000, 200, out, 2), 2);
	assert_string_equal(out[0], "c.example");
	assert_string_equal(out[1], "a.example");
	assert_int_equal(sts_cache_due(c, 1000, 10, out, 8), 0);
	assert_int_equal(sts_cache_due(c, 1000, 200, out, 0), 0);
	/* expired ones are due as well */
	assert_int_equal(sts_cache_due(c, 3000, 0, out, 8), 4);
	assert_string_equal(out[3], "b.example");
	/* a failing refresh backs off, then comes back */
	assert_int_equal(sts_cache_fetch_failed(c, "a.example", "id", 3000), 0);
	assert_int_equal(sts_cache_due(c, 3000, 0, out, 8), 3);
	assert_string_equal(out[0], "c.example");
	assert_string_equal(out[1], "e.example");
	assert_int_equal(sts_cache_due(c, 3300, 0, out, 8), 4);
	assert_string_equal(out[1], "a.example");
	/* a replaced policy moves out */
	p.max_age = 86400;
	assert_int_equal(sts_cache_put(c, "c.example", "id2", "t", 1, &p, 3300), 0);
	assert_int_equal(sts_cache_due(c, 3300, 0, out, 8), 3);
	assert_string_equal(out[0], "a.example");
	sts_cache_close(c);
}

/* --- disk errors ----------------------------------------------------------- */

/*
 * The file cannot grow (RLIMIT_FSIZE, as on a full disk): put reports the
 * error but the running daemon already uses the new policy. Runs in a child
 * so that the limit never touches the test's own output.
 */
static int
disk_full_child(const char *dir)
{
	static char big[60000];
	struct sts_policy p = mkpolicy(STS_MODE_ENFORCE, 600, mx_one, 1);
	const struct sts_cache_entry *e;
	struct rlimit rl, full;
	struct sts_cache *c;
	char err[256];
	int code = 0;

	memset(big, 'x', sizeof(big));
	if ((c = sts_cache_open(dir, err, sizeof(err))) == NULL)
		return 10;
	if (sts_cache_put(c, "example.com", "old", "t", 1, &p, T0) != 0)
		code = 11;
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &rl);
	full = rl;
	full.rlim_cur = 16384;
	if (code == 0 && setrlimit(RLIMIT_FSIZE, &full) != 0)
		code = 12;
	if (code == 0 && sts_cache_put(c, "example.com", "new", big, sizeof(big), &p, T0 + 1) != -1)
		code = 13;
	if (code == 0 && (e = sts_cache_get(c, "example.com")) != NULL) {
		if (strcmp(e->id, "new") != 0 || e->text_len != sizeof(big))
			code = 14;
		sts_cache_release(e);
	} else if (code == 0) {
		code = 15;
	}
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0 && code == 0)
		code = 16;
	/* the disk has room again: writes go through */
	if (code == 0 &&
	    sts_cache_put(c, "example.com", "again", big, sizeof(big), &p, T0 + 2) != 0)
		code = 17;
	sts_cache_close(c);
	if (code == 0) {
		if ((c = sts_cache_open(dir, err, sizeof(err))) == NULL)
			return 18;
		if ((e = sts_cache_get(c, "example.com")) == NULL || strcmp(e->id, "again") != 0)
			code = 19;
		sts_cache_release(e);
		sts_cache_close(c);
	}
	return code;
}

static void
disk_error_put_keeps_memory(void **state)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exit(disk_full_child(*state));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- threads --------------------------------------------------------------- */

struct race {
	struct sts_cache *c;
	atomic_int stop;
};

struct reader {
	struct race *race;
	unsigned long gets, hits, bad;
};

static void *
race_reader(void *arg)
{
	struct reader *r = arg;
	char name[64], want[128];

	for (unsigned long i = 0; !atomic_load(&r->race->stop); i++) {
		const struct sts_cache_entry *e;

		snprintf(name, sizeof(name), "r%lu.example", i % 50);
		r->gets++;
		if ((e = sts_cache_get(r->race->c, name)) == NULL)
			continue;
		r->hits++;
		/* an entry is never seen half-written */
		snprintf(want, sizeof(want), "# %s %s\n", name, e->id);
		if (strcmp(e->domain, name) != 0 || strstr(e->text, want) == NULL ||
		    e->policy.n_mx != 1 || strcmp(e->policy.mx[0], "mx1.example.net") != 0)
			r->bad++;
		sts_cache_release(e);
	}
	return NULL;
}

static void
threads_get_while_put(void **state)
{
	struct race r = {.c = open_ok(*state)};
	struct reader rd[2] = {{.race = &r}, {.race = &r}};
	pthread_t readers[2];
	char name[64], id[16];

	atomic_init(&r.stop, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&readers[i], NULL, race_reader, &rd[i]), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "r%d.example", i % 50);
		snprintf(id, sizeof(id), "v%d", i);
		assert_int_equal(put_simple(r.c, name, id, T0 + i), 0);
		if (i % 7 == 0)
			assert_int_equal(sts_cache_touch(r.c, name, T0 + i + 1), 0);
		if (i % 17 == 0)
			assert_int_equal(sts_cache_delete(r.c, name), 0);
		if (i % 19 == 0)
			assert_int_equal(sts_cache_fetch_failed(r.c, name, "x1", T0 + i), 0);
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(readers[i], NULL);
		assert_int_equal(rd[i].bad, 0);
		assert_true(rd[i].hits > 0);
	}
	sts_cache_close(r.c);
}

/* Backoff-only state is forgotten once it ended, in memory and on disk; a policy's is kept. */
static void
rfc8461_3_3_prune_expired_backoff(void **state)
{
	const char *dir = *state;
	struct sts_cache *c = open_ok(dir);

	assert_int_equal(sts_cache_fetch_failed(c, "gone.example", "id1", T0), 0);
	assert_int_equal(sts_cache_fetch_failed(c, "later.example", "id1", T0 + 100), 0);
	assert_int_equal(put_simple(c, "kept.example", "p1", T0), 0);
	assert_int_equal(sts_cache_fetch_failed(c, "kept.example", "p2", T0), 0);

	/* nothing has ended yet */
	assert_int_equal(sts_cache_prune(c, T0 + STS_CACHE_BACKOFF_MIN - 1), 0);
	assert_false(sts_cache_may_fetch(c, "gone.example", "id1", T0 + 1));
	/* gone.example's backoff ended; later.example's has not */
	assert_int_equal(sts_cache_prune(c, T0 + STS_CACHE_BACKOFF_MIN), 1);
	assert_int_equal(sts_cache_prune(c, T0 + STS_CACHE_BACKOFF_MIN), 0);
	assert_int_equal(sts_cache_count(c), 1);
	sts_cache_close(c);

	/* on disk too: reloaded, gone.example no longer backs off, the others still do */
	c = open_ok(dir);
	assert_true(sts_cache_may_fetch(c, "gone.example", "id1", T0 + 1));
	assert_false(sts_cache_may_fetch(c, "later.example", "id1", T0 + 101));
	assert_false(sts_cache_may_fetch(c, "kept.example", "p2", T0 + 1));
	assert_int_equal(sts_cache_count(c), 1);
	/* a domain with a policy is never pruned, even long after its backoff */
	assert_int_equal(sts_cache_prune(c, T0 + 100000), 1); /* later.example */
	assert_int_equal(sts_cache_count(c), 1);
	{
		const struct sts_cache_entry *ce = sts_cache_get(c, "kept.example");

		assert_non_null(ce);
		sts_cache_release(ce);
	}
	assert_int_equal(sts_cache_prune(NULL, T0), 0);
	sts_cache_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_put_get_replace_delete, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(refcount_keeps_replaced_entry, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_lower_case_lookups, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8461_3_1_put_rejects_invalid, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(many_domains_all_found, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_restart_keeps_cache, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(damaged_file_moved_aside, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(damaged_index_moved_aside, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(load_skips_inconsistent_rows, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(newer_schema_moved_aside, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(state_dir_unusable, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(crash_safety_kill9, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_backoff, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_due_for_refresh, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(rfc8461_3_3_prune_expired_backoff, setup_dir,
	                                    teardown_dir),
	    cmocka_unit_test_setup_teardown(disk_error_put_keeps_memory, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(threads_get_while_put, setup_dir, teardown_dir),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
