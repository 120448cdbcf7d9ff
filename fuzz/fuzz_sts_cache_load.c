// sources: policy/sts_cache.c policy/sts_claim.c core/util.c policy/sts_seen.c policy/sts_policy.c policy/sts_mx.c core/types.c core/log.c
/*
 * fuzz_sts_cache_load.c - loading the policy cache from a file someone else
 * may have damaged. The first byte chooses the input's meaning:
 *   even: the bytes are the whole policy-cache.sqlite file;
 *   odd:  the rest is one row, fields separated by 0x01 (domain, policy_id,
 *         policy_text, mode, max_age, mx, fetched_at, expires_at,
 *         last_checked, fail_id, fail_count, retry_after; empty or missing
 *         = NULL),
 *         written into a valid cache file with plain SQL.
 * Opening must never crash or fail, and whatever is loaded must keep the
 * header's promises: a complete entry, consistent with its own fields.
 */
#include <ftw.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "policy/sts_cache.h"

#define N_FIELDS 12

static char dir[] = "/tmp/fuzz-sts-cache-XXXXXX";
static char path[sizeof(dir) + 32];

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void
cleanup(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
clear_files(void)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char p[sizeof(path) + 8];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
	/* damaged files moved aside */
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(dir, 0700) != 0)
		abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/%s", dir, STS_CACHE_FILE);
	atexit(cleanup);
	log_set_level(LOG_LVL_ERR);
	return 0;
}

static void
write_file(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

static void
write_row(const uint8_t *data, size_t size)
{
	char err[256];
	const uint8_t *field[N_FIELDS] = {0};
	size_t len[N_FIELDS] = {0};
	size_t n = 0, start = 0;
	struct sts_cache *c;
	sqlite3_stmt *st;
	sqlite3 *db;

	/* a valid, empty cache file first */
	if ((c = sts_cache_open(dir, err, sizeof(err))) == NULL)
		abort();
	sts_cache_close(c);
	for (size_t i = 0; i <= size && n < N_FIELDS; i++) {
		if (i == size || data[i] == 0x01) {
			field[n] = data + start;
			len[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	if (sqlite3_open(path, &db) != SQLITE_OK)
		abort();
	if (sqlite3_prepare_v2(
	        db,
	        "INSERT OR REPLACE INTO policies (domain, policy_id, policy_text, mode,"
	        " max_age, mx, fetched_at, expires_at, last_checked, fail_id,"
	        " fail_count, retry_after)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	        -1, &st, NULL) != SQLITE_OK)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (len[i] == 0)
			continue; /* NULL */
		if (i == 2)
			sqlite3_bind_blob(st, 3, field[i], (int)len[i], SQLITE_TRANSIENT);
		else
			sqlite3_bind_text(st, (int)i + 1, (const char *)field[i], (int)len[i],
			                  SQLITE_TRANSIENT);
	}
	/* NOT NULL columns refuse some rows: nothing to load then */
	(void)sqlite3_step(st);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
check_entry(const struct sts_cache_entry *e)
{
	size_t idlen = strlen(e->id);

	if (idlen == 0 || idlen > 32 || strlen(e->domain) == 0)
		abort();
	if (e->expires_at != e->fetched_at + (int64_t)e->policy.max_age)
		abort();
	if (e->policy.max_age > STS_MAX_AGE_CLAMP || e->policy.n_mx > STS_POLICY_MAX_MX)
		abort();
	if (e->policy.mode != STS_MODE_NONE && e->policy.n_mx == 0)
		abort();
	if (e->text_len > STS_POLICY_MAX_BODY || e->text[e->text_len] != '\0')
		abort();
	for (size_t i = 0; i < e->policy.n_mx; i++) {
		size_t l = strlen(e->policy.mx[i]);

		if (l == 0 || l > STS_HOSTNAME_MAX)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], due[8][254];
	struct sts_cache *c;
	size_t n;

	if (size < 1 || size > 256 * 1024)
		return 0;
	clear_files();
	if (data[0] % 2 == 0)
		write_file(data + 1, size - 1);
	else
		write_row(data + 1, size - 1);

	if ((c = sts_cache_open(dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "open failed: %s\n", err);
		abort();
	}
	n = sts_cache_due(c, INT64_MAX / 2, 0, due, 8);
	for (size_t i = 0; i < n; i++) {
		const struct sts_cache_entry *e = sts_cache_get(c, due[i]);

		if (e == NULL)
			abort();
		check_entry(e);
		sts_cache_release(e);
		(void)sts_cache_may_fetch(c, due[i], "abc", 0);
	}
	if (n > sts_cache_count(c))
		abort();
	/* the loaded file keeps working */
	if (sts_cache_fetch_failed(c, "fuzz.example", "abc", 1) != 0)
		abort();
	sts_cache_close(c);
	return 0;
}
