/*
 * report_store.c - the durable TLS-RPT results in state_dir/report.db (see
 * report_store.h and docs/DESIGN.md "TLS-RPT results").
 *
 * Every counter row carries its gateway; a flush adds to this gateway's
 * rows (UPSERT), never to another's, and readers SUM over gateways. Policy
 * and result types are stored by their RFC 8460 names, not enum values, so
 * that the file means the same to every version.
 *
 * Durability: WAL with synchronous=NORMAL, as the policy cache: a commit
 * survives a process crash; a power loss may cost the last flushes.
 * A delivery state is committed with synchronous=FULL (set around that one
 * write): in WAL mode FULL syncs the WAL at every commit, so a report
 * recorded as sent stays recorded even across a power loss.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "policy/report_store.h"

#define SCHEMA_VERSION 3

struct report_store {
	pthread_mutex_t lock; /* every use of db and pending */
	sqlite3 *db;
	sqlite3_stmt *st_result, *st_type, *st_detail, *st_detail_add, *st_detail_n, *st_other;
	struct sts_report_batch *pending; /* counts taken but not yet committed */
	unsigned keep_days;
	char gateway[REPORT_STORE_GATEWAY_LEN];
	char path[PATH_MAX];
};

/*
 * Schema migrations: migrations[v] brings a file at user_version v to v+1.
 * Keys put the day first: retention deletes and a day's report are range
 * scans. The gateway comes last in the keys, so that the rows of one
 * domain from every gateway are adjacent for the SUM.
 */
static const char *const migrations[SCHEMA_VERSION] = {
    "CREATE TABLE results ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " gateway TEXT NOT NULL,"
    " policy_id TEXT NOT NULL DEFAULT '',"
    " mode TEXT NOT NULL DEFAULT 'none',"
    " success INTEGER NOT NULL DEFAULT 0,"
    " failure INTEGER NOT NULL DEFAULT 0,"
    " detail_other INTEGER NOT NULL DEFAULT 0,"
    " policy TEXT,"
    " mx TEXT,"
    " policy_at INTEGER NOT NULL DEFAULT 0,"
    " seen_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, type, gateway)) WITHOUT ROWID;"
    "CREATE TABLE result_types ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " gateway TEXT NOT NULL,"
    " count INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, type, result, gateway)) WITHOUT ROWID;"
    "CREATE TABLE details ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " sending_ip TEXT NOT NULL,"
    " mx_host TEXT NOT NULL,"
    " mx_helo TEXT NOT NULL,"
    " receiving_ip TEXT NOT NULL,"
    " gateway TEXT NOT NULL,"
    " count INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, type, result, sending_ip, mx_host, mx_helo, receiving_ip,"
    "  gateway)) WITHOUT ROWID;"
    "CREATE TABLE reported ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_try INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " report_id TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (day, domain)) WITHOUT ROWID;",
    /* 2: a change count per row and the count last published to the other
     * gateways (policy/tlsrpt_shared.h); rows of an older file are unpublished. */
    "ALTER TABLE results ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE results ADD COLUMN pushed INTEGER NOT NULL DEFAULT 0;",
    /* 3: who is sending a day's report now (the daemon or "report send"), and until when. */
    "CREATE TABLE sending ("
    " day INTEGER NOT NULL,"
    " domain TEXT NOT NULL,"
    " sender TEXT NOT NULL,"
    " until INTEGER NOT NULL,"
    " PRIMARY KEY (day, domain)) WITHOUT ROWID;",
};

static const char sql_result[] =
    "INSERT INTO results (day, domain, type, gateway, policy_id, mode, success, failure,"
    " detail_other, policy, mx, policy_at, seen_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT (day, domain, type, gateway) DO UPDATE SET version = version + 1,"
    " success = success + excluded.success, failure = failure + excluded.failure,"
    " detail_other = detail_other + excluded.detail_other,"
    " policy_id = excluded.policy_id, mode = excluded.mode,"
    " policy = COALESCE(excluded.policy, policy), mx = COALESCE(excluded.mx, mx),"
    " policy_at = CASE WHEN excluded.policy IS NULL THEN policy_at ELSE excluded.policy_at END,"
    " seen_at = excluded.seen_at";
static const char sql_type[] =
    "INSERT INTO result_types (day, domain, type, result, gateway, count)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (day, domain, type, result, gateway) DO UPDATE SET"
    " count = count + excluded.count";
/* A detail row is added to when it exists, else inserted while the bound allows. */
static const char sql_detail_add[] =
    "UPDATE details SET count = count + ?10 WHERE day = ?1 AND domain = ?2 AND type = ?3"
    " AND result = ?4 AND sending_ip = ?5 AND mx_host = ?6 AND mx_helo = ?7"
    " AND receiving_ip = ?8 AND gateway = ?9";
static const char sql_detail_n[] =
    "SELECT COUNT(*) FROM details WHERE day = ?1 AND domain = ?2 AND type = ?3"
    " AND gateway = ?4";
static const char sql_detail[] =
    "INSERT INTO details (day, domain, type, result, sending_ip, mx_host, mx_helo,"
    " receiving_ip, gateway, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char sql_other[] =
    "UPDATE results SET detail_other = detail_other + ?5 WHERE day = ?1 AND domain = ?2"
    " AND type = ?3 AND gateway = ?4";

static const char *const state_names[REPORT_STATE_MAX] = {"pending", "sent", "failed", "skipped"};

/* report_state_name - see report_store.h */
const char *
report_state_name(enum report_state state)
{
	return (unsigned)state < REPORT_STATE_MAX ? state_names[state] : "pending";
}

static enum report_state
state_parse(const char *s)
{
	for (int i = 0; i < REPORT_STATE_MAX; i++)
		if (s != NULL && strcmp(s, state_names[i]) == 0)
			return (enum report_state)i;
	return REPORT_STATE_PENDING;
}

/* result_parse - the result type named s; STS_RESULT_MAX when unknown. */
static enum sts_result
result_parse(const char *s)
{
	for (int i = STS_RESULT_OK + 1; i < STS_RESULT_MAX; i++)
		if (s != NULL && strcmp(s, sts_result_name((enum sts_result)i)) == 0)
			return (enum sts_result)i;
	return STS_RESULT_MAX;
}

static enum sts_policy_type
type_parse(const char *s)
{
	for (int i = 0; i < STS_PTYPE_MAX; i++)
		if (s != NULL && strcmp(s, sts_policy_type_name((enum sts_policy_type)i)) == 0)
			return (enum sts_policy_type)i;
	return STS_PTYPE_MAX;
}

static enum sts_mode
mode_parse(const char *s)
{
	enum sts_mode m = STS_MODE_NONE;

	if (s != NULL)
		(void)sts_mode_parse(s, &m);
	return m;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

static uint64_t
col_u64(sqlite3_stmt *st, int i)
{
	sqlite3_int64 v = sqlite3_column_int64(st, i);

	return v > 0 ? (uint64_t)v : 0;
}

/* fail - the message "report store PATH: what: sqlite's words" into err; -1. */
static int
fail(struct report_store *s, char *err, size_t errlen, const char *what)
{
	if (err != NULL)
		snprintf(err, errlen, "report store %s: %s: %s", s->path, what,
		         s->db != NULL ? sqlite3_errmsg(s->db) : "not open");
	return -1;
}

/* db_text - run a one-row statement and copy its first column to out. */
static int
db_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(out, outlen, "%s", col_text(st, 0));
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		out[0] = '\0';
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static void
db_close(struct report_store *s)
{
	sqlite3_finalize(s->st_result);
	sqlite3_finalize(s->st_type);
	sqlite3_finalize(s->st_detail);
	sqlite3_finalize(s->st_detail_add);
	sqlite3_finalize(s->st_detail_n);
	sqlite3_finalize(s->st_other);
	s->st_result = s->st_type = s->st_detail = NULL;
	s->st_detail_add = s->st_detail_n = s->st_other = NULL;
	sqlite3_close(s->db);
	s->db = NULL;
}

/* db_open - open, check and migrate s->path; 0, or -1 with why set and the database closed. */
static int
db_open(struct report_store *s, char *why, size_t whylen)
{
	char buf[64];
	int version;

	if (sqlite3_open_v2(s->path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(s->db, 1);
	/* Flushes run on the main loop: wait briefly for an outside reader, never long. */
	sqlite3_busy_timeout(s->db, 250);
	if (db_text(s->db, "PRAGMA quick_check", buf, sizeof(buf)) != SQLITE_OK)
		goto fail;
	if (strcmp(buf, "ok") != 0) {
		snprintf(why, whylen, "damaged (quick_check: %s)", buf);
		goto out;
	}
	if (db_text(s->db, "PRAGMA journal_mode=WAL", buf, sizeof(buf)) != SQLITE_OK)
		goto fail;
	if (strcmp(buf, "wal") != 0) {
		snprintf(why, whylen, "journal_mode is %s, not wal", buf);
		goto out;
	}
	if (sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
	    db_text(s->db, "PRAGMA user_version", buf, sizeof(buf)) != SQLITE_OK)
		goto fail;
	version = atoi(buf);
	if (version < 0 || version > SCHEMA_VERSION) {
		/* A newer daemon wrote this; leave it for that one rather than misread it. */
		snprintf(why, whylen, "schema version %d is not known (at most %d)", version,
		         SCHEMA_VERSION);
		goto out;
	}
	for (; version < SCHEMA_VERSION; version++) {
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", version + 1);
		if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
		if (sqlite3_exec(s->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(why, whylen, "schema upgrade to %d: %s", version + 1,
			         sqlite3_errmsg(s->db));
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			goto out;
		}
	}
	if (sqlite3_prepare_v2(s->db, sql_result, -1, &s->st_result, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, sql_type, -1, &s->st_type, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, sql_detail, -1, &s->st_detail, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, sql_detail_add, -1, &s->st_detail_add, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, sql_detail_n, -1, &s->st_detail_n, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, sql_other, -1, &s->st_other, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(why, whylen, "%s", s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
out:
	db_close(s);
	return -1;
}

/* report_store_open - see report_store.h */
struct report_store *
report_store_open(const struct report_store_params *p, char *err, size_t errlen)
{
	struct report_store *s;
	char why[256];
	int n;

	if (p == NULL || p->state_dir == NULL) {
		snprintf(err, errlen, "report store: no state directory");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "report store: out of memory");
		return NULL;
	}
	n = snprintf(s->path, sizeof(s->path), "%s/%s", p->state_dir, REPORT_STORE_FILE);
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		snprintf(err, errlen, "report store %s: path too long", p->state_dir);
		free(s);
		return NULL;
	}
	if (p->gateway_id != NULL && p->gateway_id[0] != '\0')
		snprintf(s->gateway, sizeof(s->gateway), "%s", p->gateway_id);
	else if (gethostname(s->gateway, sizeof(s->gateway)) != 0 || s->gateway[0] == '\0')
		snprintf(s->gateway, sizeof(s->gateway), "localhost");
	s->gateway[sizeof(s->gateway) - 1] = '\0';
	s->keep_days =
	    p->keep_days < REPORT_STORE_KEEP_DAYS_MIN ? REPORT_STORE_KEEP_DAYS_MIN : p->keep_days;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		snprintf(err, errlen, "report store: %s", strerror(errno));
		free(s);
		return NULL;
	}
	if (db_open(s, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "report store %s: %s", s->path, why);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	return s;
}

/* report_store_close - see report_store.h */
void
report_store_close(struct report_store *s)
{
	if (s == NULL)
		return;
	db_close(s);
	sts_report_batch_free(s->pending);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* report_store_gateway - see report_store.h */
const char *
report_store_gateway(const struct report_store *s)
{
	return s->gateway;
}

/* --- flush ------------------------------------------------------------------- */

struct flush {
	struct report_store *s;
	int64_t now;
	int rows;
	int failed; /* the SQLite code of the first failure, else 0 */
	char *joined;
	size_t joined_len;
};

/* run - step a bound write statement, then reset it; false on failure. */
static bool
run(struct flush *f, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		f->failed = rc;
		return false;
	}
	return true;
}

/* join - v[0..n) joined with newlines into f->joined; NULL when n is 0 or without memory. */
static const char *
join(struct flush *f, const char *const *v, size_t n)
{
	size_t len = 0, at = 0;

	if (n == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	if (len > f->joined_len) {
		char *p = realloc(f->joined, len);

		if (p == NULL)
			return NULL;
		f->joined = p;
		f->joined_len = len;
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(v[i]);

		memcpy(f->joined + at, v[i], k);
		at += k;
		f->joined[at++] = i + 1 < n ? '\n' : '\0';
	}
	return f->joined;
}

static void
bind_key(sqlite3_stmt *st, const struct report_store_row *r)
{
	sqlite3_bind_int64(st, 1, r->day);
	sqlite3_bind_text(st, 2, r->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sts_policy_type_name(r->type), -1, SQLITE_STATIC);
}

/* bind_detail - the ten parameters of the detail statements st. */
static void
bind_detail(sqlite3_stmt *st, const struct report_store_row *r, const struct report_store_detail *d)
{
	bind_key(st, r);
	sqlite3_bind_text(st, 4, sts_result_name(d->result), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, d->sending_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, d->mx_host, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, d->mx_helo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, d->receiving_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, r->gateway, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)d->count);
}

/*
 * add_detail - add d to its row; 1 when counted there, 0 when the day's
 * rows of this domain are at REPORT_STORE_DETAILS_MAX (the count goes to
 * detail_other: the MX names and addresses come from the network), -1 on
 * a database error.
 */
static int
add_detail(struct flush *f, const struct report_store_row *r, const struct report_store_detail *d)
{
	struct report_store *s = f->s;
	sqlite3_int64 n;
	int rc;

	bind_detail(s->st_detail_add, r, d);
	if (!run(f, s->st_detail_add))
		return -1;
	if (sqlite3_changes(s->db) > 0)
		return 1;
	bind_key(s->st_detail_n, r);
	sqlite3_bind_text(s->st_detail_n, 4, r->gateway, -1, SQLITE_STATIC);
	rc = sqlite3_step(s->st_detail_n);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(s->st_detail_n, 0) : 0;
	sqlite3_reset(s->st_detail_n);
	sqlite3_clear_bindings(s->st_detail_n);
	if (rc != SQLITE_ROW) {
		f->failed = rc;
		return -1;
	}
	if (n >= REPORT_STORE_DETAILS_MAX)
		return 0;
	bind_detail(s->st_detail, r, d);
	return run(f, s->st_detail) ? 1 : -1;
}

/*
 * write_row - add r to the rows of r->gateway: its counts to the totals
 * there, its policy in place of the one there (when it has one), its
 * details to theirs. A flush adds this gateway's deltas; a merge writes
 * another gateway's totals into rows just emptied. 0, or 1 on a database
 * error (the first failure in f->failed).
 */
static int
write_row(struct flush *f, const struct report_store_row *r)
{
	struct report_store *s = f->s;
	const char *text;
	uint64_t overflow = 0;

	bind_key(s->st_result, r);
	sqlite3_bind_text(s->st_result, 4, r->gateway, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->st_result, 5, r->policy_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->st_result, 6, sts_mode_name(r->mode), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->st_result, 7, (sqlite3_int64)r->success);
	sqlite3_bind_int64(s->st_result, 8, (sqlite3_int64)r->failure);
	sqlite3_bind_int64(s->st_result, 9, (sqlite3_int64)r->detail_other);
	if ((text = join(f, r->policy, r->n_policy)) != NULL)
		sqlite3_bind_text(s->st_result, 10, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s->st_result, 10);
	if ((text = join(f, r->mx, r->n_mx)) != NULL)
		sqlite3_bind_text(s->st_result, 11, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s->st_result, 11);
	sqlite3_bind_int64(s->st_result, 12, r->policy_at);
	sqlite3_bind_int64(s->st_result, 13, r->seen_at);
	if (!run(f, s->st_result))
		return 1;
	for (int k = STS_RESULT_OK + 1; k < STS_RESULT_MAX; k++) {
		if (r->by_result[k] == 0)
			continue;
		bind_key(s->st_type, r);
		sqlite3_bind_text(s->st_type, 4, sts_result_name((enum sts_result)k), -1,
		                  SQLITE_STATIC);
		sqlite3_bind_text(s->st_type, 5, r->gateway, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->st_type, 6, (sqlite3_int64)r->by_result[k]);
		if (!run(f, s->st_type))
			return 1;
	}
	for (size_t i = 0; i < r->n_details; i++) {
		int added = add_detail(f, r, &r->details[i]);

		if (added < 0)
			return 1;
		if (added == 0)
			overflow += r->details[i].count;
	}
	if (overflow > 0) {
		bind_key(s->st_other, r);
		sqlite3_bind_text(s->st_other, 4, r->gateway, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->st_other, 5, (sqlite3_int64)overflow);
		if (!run(f, s->st_other))
			return 1;
	}
	f->rows++;
	return 0;
}

/* flush_entry - one entry of the batch into this gateway's rows. */
static int
flush_entry(void *arg, const struct sts_report_entry *e)
{
	struct flush *f = arg;
	struct report_store_detail d[STS_REPORT_DETAILS_MAX];
	struct report_store_row r = {
	    .day = e->day,
	    .domain = e->domain,
	    .type = e->type,
	    .gateway = f->s->gateway,
	    .policy_id = e->policy_id,
	    .mode = e->mode,
	    .success = e->success,
	    .failure = e->failure,
	    .detail_other = e->detail_other,
	    .n_policy = e->n_policy,
	    .policy = e->policy,
	    .n_mx = e->n_mx,
	    .mx = e->mx,
	    .details = d,
	    .seen_at = f->now,
	    .policy_at = f->now,
	};

	if (e->success == 0 && e->failure == 0 && e->n_policy == 0 && e->n_mx == 0)
		return 0; /* a policy noted, nothing counted, nothing learnt */
	memcpy(r.by_result, e->by_result, sizeof(r.by_result));
	for (size_t i = 0; i < e->n_details; i++) {
		const struct sts_report_detail *m = &e->details[i];

		if (r.n_details == STS_REPORT_DETAILS_MAX) {
			r.detail_other += m->count; /* memory keeps no more: never reached */
			continue;
		}
		d[r.n_details++] = (struct report_store_detail){
		    .result = m->result,
		    .sending_ip = m->sending_ip,
		    .mx_host = m->mx_host,
		    .mx_helo = m->mx_helo,
		    .receiving_ip = m->ip,
		    .count = m->count,
		};
	}
	return write_row(f, &r);
}

/* prune - delete every day before the oldest one kept. */
static int
prune(struct report_store *s, int64_t now)
{
	static const char *const tables[] = {"results", "result_types", "details", "reported",
	                                     "sending"};
	int64_t oldest = sts_report_day_of(now) - (int64_t)(s->keep_days - 1) * 86400;

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[80];
		sqlite3_stmt *st;
		int rc;

		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE day < ?1", tables[i]);
		if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int64(st, 1, oldest);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

/* report_store_flush - see report_store.h */
int
report_store_flush(struct report_store *s, struct sts_report *rep, int64_t now, char *err,
                   size_t errlen)
{
	struct flush f = {.s = s, .now = now};
	struct sts_report_batch *b;

	if (s == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	if (rep != NULL && (b = sts_report_take(rep)) != NULL) {
		if (s->pending == NULL)
			s->pending = b;
		else
			(void)sts_report_batch_merge(s->pending, b);
	}
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		fail(s, err, errlen, "begin");
		goto out;
	}
	sts_report_batch_foreach(s->pending, flush_entry, &f);
	if (f.failed != 0) {
		fail(s, err, errlen, "write");
		goto rollback;
	}
	if (prune(s, now) < 0) {
		fail(s, err, errlen, "retention");
		goto rollback;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail(s, err, errlen, "commit");
		goto rollback;
	}
	sts_report_batch_free(s->pending);
	s->pending = NULL;
	free(f.joined);
	pthread_mutex_unlock(&s->lock);
	return f.rows;
rollback:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
out:
	/* The counts stay in pending: the next flush writes them, once. */
	free(f.joined);
	pthread_mutex_unlock(&s->lock);
	return -1;
}

/* --- readers ----------------------------------------------------------------- */

/* split - text split at newlines into a new vector (one block); NULL when empty. */
static char **
split(const char *text, size_t *n)
{
	size_t len = strlen(text), k = 1;
	char **v, *copy;

	*n = 0;
	if (len == 0)
		return NULL;
	for (size_t i = 0; i < len; i++)
		k += text[i] == '\n';
	if ((v = malloc(k * sizeof(char *) + len + 1)) == NULL)
		return NULL;
	copy = (char *)(v + k);
	memcpy(copy, text, len + 1);
	v[(*n)++] = copy;
	for (char *p = copy; (p = strchr(p, '\n')) != NULL;) {
		*p++ = '\0';
		v[(*n)++] = p;
	}
	return v;
}

/* What one entry needs beyond the grouped row, read with its own statements. */
struct entry_extra {
	char policy_id[STS_REPORT_ID_LEN];
	char **policy, **mx;
	struct report_store_detail *details;
	char **texts; /* per detail: one block of four strings */
	size_t n_details;
};

static void
extra_free(struct entry_extra *x)
{
	free(x->policy);
	free(x->mx);
	for (size_t i = 0; i < x->n_details; i++)
		free(x->texts[i]);
	free(x->texts);
	free(x->details);
	memset(x, 0, sizeof(*x));
}

/* prepare_key - sql with ?1 day, ?2 domain, ?3 type and ?4 the gateway (NULL: every one). */
static int
prepare_key(struct report_store *s, sqlite3_stmt **st, const char *sql, int64_t day,
            const char *domain, const char *type, const char *gateway)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(*st, 1, day);
	sqlite3_bind_text(*st, 2, domain, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(*st, 3, type, -1, SQLITE_TRANSIENT);
	if (gateway != NULL)
		sqlite3_bind_text(*st, 4, gateway, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(*st, 4);
	return 0;
}

/*
 * detail_read - the columns result, sending_ip, mx_host, mx_helo,
 * receiving_ip and count of st into *d, its strings in one new block
 * (*block, to free). 1, 0 for a result type this version does not know
 * (skipped), -1 without memory.
 */
static int
detail_read(sqlite3_stmt *st, struct report_store_detail *d, char **block)
{
	const char *f[4];
	size_t len[4], total = 0;
	char *b;

	if ((d->result = result_parse(col_text(st, 0))) >= STS_RESULT_MAX)
		return 0;
	for (int i = 0; i < 4; i++) {
		f[i] = col_text(st, i + 1);
		len[i] = strlen(f[i]);
		total += len[i] + 1;
	}
	if ((*block = b = malloc(total)) == NULL)
		return -1;
	for (int i = 0; i < 4; i++) {
		memcpy(b, f[i], len[i] + 1);
		f[i] = b;
		b += len[i] + 1;
	}
	d->sending_ip = f[0];
	d->mx_host = f[1];
	d->mx_helo = f[2];
	d->receiving_ip = f[3];
	d->count = col_u64(st, 5);
	return 1;
}

/* read_extra - the last policy, the result types and the details of one entry into e and x. */
static int
read_extra(struct report_store *s, struct report_store_entry *e, const char *type,
           const char *gateway, struct entry_extra *x)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	if (prepare_key(s, &st,
	                "SELECT policy_id, mode FROM results WHERE day = ?1 AND domain = ?2 AND"
	                " type = ?3 AND (?4 IS NULL OR gateway = ?4)"
	                " ORDER BY seen_at DESC, gateway LIMIT 1",
	                e->day, e->domain, type, gateway) < 0)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(x->policy_id, sizeof(x->policy_id), "%s", col_text(st, 0));
		e->mode = mode_parse(col_text(st, 1));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (prepare_key(s, &st,
	                "SELECT policy, mx FROM results WHERE day = ?1 AND domain = ?2 AND"
	                " type = ?3 AND (?4 IS NULL OR gateway = ?4) AND policy IS NOT NULL"
	                " ORDER BY policy_at DESC, gateway LIMIT 1",
	                e->day, e->domain, type, gateway) < 0)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		x->policy = split(col_text(st, 0), &e->n_policy);
		x->mx = split(col_text(st, 1), &e->n_mx);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (prepare_key(s, &st,
	                "SELECT result, SUM(count) FROM result_types WHERE day = ?1 AND"
	                " domain = ?2 AND type = ?3 AND (?4 IS NULL OR gateway = ?4)"
	                " GROUP BY result",
	                e->day, e->domain, type, gateway) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum sts_result r = result_parse(col_text(st, 0));

		if (r < STS_RESULT_MAX)
			e->by_result[r] += col_u64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (prepare_key(s, &st,
	                "SELECT result, sending_ip, mx_host, mx_helo, receiving_ip, SUM(count) AS n"
	                " FROM details WHERE day = ?1 AND domain = ?2 AND type = ?3"
	                " AND (?4 IS NULL OR gateway = ?4)"
	                " GROUP BY result, sending_ip, mx_host, mx_helo, receiving_ip"
	                " ORDER BY result, n DESC, mx_host, receiving_ip, sending_ip",
	                e->day, e->domain, type, gateway) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int got;

		if (x->n_details == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			void *p = realloc(x->details, ncap * sizeof(*x->details));

			if (p == NULL)
				break;
			x->details = p;
			if ((p = realloc(x->texts, ncap * sizeof(*x->texts))) == NULL)
				break;
			x->texts = p;
			cap = ncap;
		}
		got = detail_read(st, &x->details[x->n_details], &x->texts[x->n_details]);
		if (got < 0)
			break;
		x->n_details += (size_t)got;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return -1;
	if (rc == SQLITE_ROW) /* out of memory part way */
		return -1;
	e->policy_id = x->policy_id;
	e->policy = (const char *const *)x->policy;
	e->mx = (const char *const *)x->mx;
	e->details = x->details;
	e->n_details = x->n_details;
	return 0;
}

/* report_store_foreach_day - see report_store.h */
int
report_store_foreach_day(struct report_store *s, int64_t day, const char *gateway,
                         report_store_cb *cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int n = 0, rc;

	if (s == NULL || cb == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	day = sts_report_day_of(day);
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT domain, type, SUM(success), SUM(failure), SUM(detail_other),"
	                       " COUNT(*) FROM results WHERE day = ?1"
	                       " AND (?2 IS NULL OR gateway = ?2) GROUP BY domain, type"
	                       " HAVING SUM(success) + SUM(failure) > 0 ORDER BY domain, type",
	                       -1, &st, NULL) != SQLITE_OK) {
		n = fail(s, err, errlen, "read");
		goto out;
	}
	sqlite3_bind_int64(st, 1, day);
	if (gateway != NULL)
		sqlite3_bind_text(st, 2, gateway, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 2);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct report_store_entry e;
		struct entry_extra x;
		char domain[STS_REPORT_DOMAIN_LEN], type[32];
		int stop;

		memset(&e, 0, sizeof(e));
		memset(&x, 0, sizeof(x));
		snprintf(domain, sizeof(domain), "%s", col_text(st, 0));
		snprintf(type, sizeof(type), "%s", col_text(st, 1));
		if ((e.type = type_parse(type)) >= STS_PTYPE_MAX)
			continue;
		e.day = day;
		e.domain = domain;
		e.policy_id = "";
		e.success = col_u64(st, 2);
		e.failure = col_u64(st, 3);
		e.detail_other = col_u64(st, 4);
		e.n_gateways = (unsigned)col_u64(st, 5);
		if (read_extra(s, &e, type, gateway, &x) < 0) {
			extra_free(&x);
			n = fail(s, err, errlen, "read");
			goto out;
		}
		n++;
		stop = cb(arg, &e);
		extra_free(&x);
		if (stop != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		n = fail(s, err, errlen, "read");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* report_store_days - see report_store.h */
int
report_store_days(struct report_store *s, report_store_day_cb *cb, void *arg, char *err,
                  size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int n = 0, rc;

	if (s == NULL || cb == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT day, COUNT(DISTINCT domain) FROM results"
	                       " WHERE success + failure > 0 GROUP BY day ORDER BY day",
	                       -1, &st, NULL) != SQLITE_OK) {
		n = fail(s, err, errlen, "read");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (cb(arg, sqlite3_column_int64(st, 0), (unsigned)col_u64(st, 1)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		n = fail(s, err, errlen, "read");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* --- delivery state ---------------------------------------------------------- */

static void
delivery_row(sqlite3_stmt *st, struct report_delivery *d)
{
	d->day = sqlite3_column_int64(st, 0);
	snprintf(d->domain, sizeof(d->domain), "%s", col_text(st, 1));
	d->state = state_parse(col_text(st, 2));
	d->attempts = (unsigned)col_u64(st, 3);
	d->next_try = sqlite3_column_int64(st, 4);
	snprintf(d->last_error, sizeof(d->last_error), "%s", col_text(st, 5));
	snprintf(d->report_id, sizeof(d->report_id), "%s", col_text(st, 6));
}

/* report_store_delivery_get - see report_store.h */
int
report_store_delivery_get(struct report_store *s, int64_t day, const char *domain,
                          struct report_delivery *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret;

	if (s == NULL || domain == NULL || out == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->day = sts_report_day_of(day);
	snprintf(out->domain, sizeof(out->domain), "%s", domain);
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(
	        s->db,
	        "SELECT day, domain, state, attempts, next_try, last_error, report_id"
	        " FROM reported WHERE day = ?1 AND domain = ?2",
	        -1, &st, NULL) != SQLITE_OK) {
		ret = fail(s, err, errlen, "read");
		goto out;
	}
	sqlite3_bind_int64(st, 1, out->day);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		delivery_row(st, out);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = fail(s, err, errlen, "read");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * claim_read - in a transaction of s: 1 when (day, domain) is recorded
 * settled (sent, failed or skipped), otherwise 0 with the sender holding
 * it at now copied to holder ("" when none or expired); -1 on error.
 */
static int
claim_read(struct report_store *s, int64_t day, const char *domain, int64_t now, char *holder,
           size_t holderlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	holder[0] = '\0';
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT (SELECT state FROM reported WHERE day = ?1 AND domain = ?2),"
	                       " (SELECT sender FROM sending WHERE day = ?1 AND domain = ?2"
	                       " AND until > ?3)",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, day);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		ret = -1;
	else if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
	         state_parse(col_text(st, 0)) != REPORT_STATE_PENDING)
		ret = 1;
	else
		snprintf(holder, holderlen, "%s", col_text(st, 1));
	sqlite3_finalize(st);
	return ret;
}

/* db_run - one statement of s with ?1 day, ?2 domain and, when it has them, ?3 text and ?4 n;
 * SQLITE_DONE on success. */
static int
db_run(struct report_store *s, const char *sql, int64_t day, const char *domain, const char *text,
       int64_t n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return SQLITE_ERROR;
	sqlite3_bind_int64(st, 1, day);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	if (text != NULL)
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 4)
		sqlite3_bind_int64(st, 4, n);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc;
}

/* report_store_delivery_claim - see report_store.h */
int
report_store_delivery_claim(struct report_store *s, int64_t day, const char *domain,
                            const char *sender, int64_t now, unsigned hold_s, char *holder,
                            size_t holderlen, char *err, size_t errlen)
{
	char who[REPORT_STORE_ERROR_LEN];
	int ret, got;

	if (s == NULL || domain == NULL || sender == NULL || sender[0] == '\0') {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open, or no sender");
		return -1;
	}
	day = sts_report_day_of(day);
	pthread_mutex_lock(&s->lock);
	/* IMMEDIATE: the read and the write are one step for every process of the file. */
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		ret = fail(s, err, errlen, "claim");
		goto out;
	}
	got = claim_read(s, day, domain, now, who, sizeof(who));
	if (got < 0) {
		ret = fail(s, err, errlen, "claim");
	} else if (got == 1) {
		ret = REPORT_CLAIM_SETTLED;
	} else if (who[0] != '\0' && strcmp(who, sender) != 0) {
		ret = REPORT_CLAIM_HELD;
	} else if (db_run(s,
	                  "INSERT OR REPLACE INTO sending (day, domain, sender, until)"
	                  " VALUES (?1, ?2, ?3, ?4)",
	                  day, domain, sender, now + (int64_t)hold_s) != SQLITE_DONE) {
		ret = fail(s, err, errlen, "claim");
	} else {
		ret = REPORT_CLAIM_OURS;
	}
	if (ret < 0 || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		if (ret >= 0)
			ret = fail(s, err, errlen, "claim");
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (ret == REPORT_CLAIM_HELD && holder != NULL)
		snprintf(holder, holderlen, "%s", who);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* report_store_delivery_put - see report_store.h */
int
report_store_delivery_put(struct report_store *s, const struct report_delivery *d,
                          const char *sender, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char who[REPORT_STORE_ERROR_LEN];
	int64_t day;
	int ret = 0, got;

	if (s == NULL || d == NULL || d->domain[0] == '\0') {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open, or no domain");
		return -1;
	}
	day = sts_report_day_of(d->day);
	pthread_mutex_lock(&s->lock);
	/* A sent report must never be sent again: this commit reaches the disk. */
	sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		ret = fail(s, err, errlen, "write");
		goto out;
	}
	/* A settled report stays settled, and a sender whose claim another took
	 * over records nothing: the other sender's outcome is the one that holds. */
	got = claim_read(s, day, d->domain, now, who, sizeof(who));
	if (got < 0) {
		ret = fail(s, err, errlen, "write");
		goto end;
	}
	if (got == 1 || (sender != NULL && who[0] != '\0' && strcmp(who, sender) != 0)) {
		ret = 1;
		goto end;
	}
	if (sqlite3_prepare_v2(s->db,
	                       "INSERT OR REPLACE INTO reported (day, domain, state, attempts,"
	                       " next_try, last_error, report_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	                       " ?7)",
	                       -1, &st, NULL) != SQLITE_OK) {
		ret = fail(s, err, errlen, "write");
		goto end;
	}
	sqlite3_bind_int64(st, 1, day);
	sqlite3_bind_text(st, 2, d->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, report_state_name(d->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, d->attempts);
	sqlite3_bind_int64(st, 5, d->next_try);
	sqlite3_bind_text(st, 6, d->last_error, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, d->report_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE ||
	    (sender != NULL && db_run(s,
	                              "DELETE FROM sending WHERE day = ?1 AND domain = ?2"
	                              " AND sender = ?3",
	                              day, d->domain, sender, 0) != SQLITE_DONE))
		ret = fail(s, err, errlen, "write");
end:
	sqlite3_finalize(st);
	if (ret < 0 || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		if (ret >= 0)
			ret = fail(s, err, errlen, "write");
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
out:
	sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* report_store_deliveries_due - see report_store.h */
int
report_store_deliveries_due(struct report_store *s, int64_t now, report_store_delivery_cb *cb,
                            void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int n = 0, rc;

	if (s == NULL || cb == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(
	        s->db,
	        "SELECT day, domain, state, attempts, next_try, last_error, report_id"
	        " FROM reported WHERE state = 'pending' AND next_try <= ?1"
	        " ORDER BY day, domain",
	        -1, &st, NULL) != SQLITE_OK) {
		n = fail(s, err, errlen, "read");
		goto out;
	}
	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct report_delivery d;

		delivery_row(st, &d);
		n++;
		if (cb(arg, &d) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		n = fail(s, err, errlen, "read");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* --- one gateway's rows ------------------------------------------------------ */

/* What a row needs beyond its results line: owned until row_parts_free(). */
struct row_parts {
	char **policy, **mx;
	struct report_store_detail details[REPORT_STORE_DETAILS_MAX];
	char *texts[REPORT_STORE_DETAILS_MAX];
	size_t n_details;
};

static void
row_parts_free(struct row_parts *x)
{
	free(x->policy);
	free(x->mx);
	for (size_t i = 0; i < x->n_details; i++)
		free(x->texts[i]);
	x->policy = x->mx = NULL;
	x->n_details = 0;
}

/* read_row_parts - the result types and details of gateway's row into row and x. */
static int
read_row_parts(struct report_store *s, struct report_store_row *row, const char *type,
               struct row_parts *x)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (prepare_key(s, &st,
	                "SELECT result, count FROM result_types WHERE day = ?1 AND domain = ?2"
	                " AND type = ?3 AND gateway = ?4",
	                row->day, row->domain, type, row->gateway) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum sts_result r = result_parse(col_text(st, 0));

		if (r < STS_RESULT_MAX)
			row->by_result[r] += col_u64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (prepare_key(
	        s, &st,
	        "SELECT result, sending_ip, mx_host, mx_helo, receiving_ip, count FROM details"
	        " WHERE day = ?1 AND domain = ?2 AND type = ?3 AND gateway = ?4"
	        " ORDER BY result, count DESC, mx_host, receiving_ip, sending_ip",
	        row->day, row->domain, type, row->gateway) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && x->n_details < REPORT_STORE_DETAILS_MAX) {
		int got = detail_read(st, &x->details[x->n_details], &x->texts[x->n_details]);

		if (got < 0)
			break;
		x->n_details += (size_t)got;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && !(rc == SQLITE_ROW && x->n_details == REPORT_STORE_DETAILS_MAX))
		return -1;
	row->details = x->details;
	row->n_details = x->n_details;
	return 0;
}

/* report_store_changed - see report_store.h */
int
report_store_changed(struct report_store *s, size_t max, report_store_row_cb *cb, void *arg,
                     char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int n = 0, rc;

	if (s == NULL || cb == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT day, domain, type, policy_id, mode, success, failure,"
	                       " detail_other, policy, mx, seen_at, policy_at, version FROM results"
	                       " WHERE gateway = ?1 AND version > pushed ORDER BY day, domain, type"
	                       " LIMIT ?2",
	                       -1, &st, NULL) != SQLITE_OK) {
		n = fail(s, err, errlen, "read");
		goto out;
	}
	sqlite3_bind_text(st, 1, s->gateway, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, max > INT32_MAX ? INT32_MAX : (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct report_store_row row;
		struct row_parts x = {0};
		char type[32];
		int stop;

		memset(&row, 0, sizeof(row));
		snprintf(type, sizeof(type), "%s", col_text(st, 2));
		if ((row.type = type_parse(type)) >= STS_PTYPE_MAX)
			continue;
		row.day = sqlite3_column_int64(st, 0);
		row.domain = col_text(st, 1);
		row.gateway = s->gateway;
		row.policy_id = col_text(st, 3);
		row.mode = mode_parse(col_text(st, 4));
		row.success = col_u64(st, 5);
		row.failure = col_u64(st, 6);
		row.detail_other = col_u64(st, 7);
		x.policy = split(col_text(st, 8), &row.n_policy);
		x.mx = split(col_text(st, 9), &row.n_mx);
		row.policy = (const char *const *)x.policy;
		row.mx = (const char *const *)x.mx;
		row.seen_at = sqlite3_column_int64(st, 10);
		row.policy_at = sqlite3_column_int64(st, 11);
		row.version = sqlite3_column_int64(st, 12);
		if (read_row_parts(s, &row, type, &x) < 0) {
			row_parts_free(&x);
			n = fail(s, err, errlen, "read");
			goto out;
		}
		n++;
		stop = cb(arg, &row);
		row_parts_free(&x);
		if (stop != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		n = fail(s, err, errlen, "read");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* report_store_pushed - see report_store.h */
int
report_store_pushed(struct report_store *s, int64_t day, const char *domain,
                    enum sts_policy_type type, int64_t version, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = 0;

	if (s == NULL || domain == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	if (prepare_key(
	        s, &st,
	        "UPDATE results SET pushed = ?5 WHERE day = ?1 AND domain = ?2 AND type = ?3"
	        " AND gateway = ?4 AND pushed < ?5",
	        day, domain, sts_policy_type_name(type), s->gateway) < 0) {
		ret = fail(s, err, errlen, "write");
		goto out;
	}
	sqlite3_bind_int64(st, 5, version);
	if (sqlite3_step(st) != SQLITE_DONE)
		ret = fail(s, err, errlen, "write");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* report_store_replace_others - see report_store.h */
int
report_store_replace_others(struct report_store *s, int64_t day,
                            const struct report_store_row *rows, size_t n, char *err, size_t errlen)
{
	static const char *const tables[] = {"results", "result_types", "details"};
	struct flush f = {.s = s};

	if (s == NULL || (rows == NULL && n > 0)) {
		if (err != NULL)
			snprintf(err, errlen, "report store: not open");
		return -1;
	}
	day = sts_report_day_of(day);
	pthread_mutex_lock(&s->lock);
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		fail(s, err, errlen, "begin");
		goto out;
	}
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[80];
		sqlite3_stmt *st;
		int rc;

		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE day = ?1 AND gateway != ?2",
		         tables[i]);
		if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
			fail(s, err, errlen, "write");
			goto rollback;
		}
		sqlite3_bind_int64(st, 1, day);
		sqlite3_bind_text(st, 2, s->gateway, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			fail(s, err, errlen, "write");
			goto rollback;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rows[i].day != day || strcmp(rows[i].gateway, s->gateway) == 0)
			continue;
		if (write_row(&f, &rows[i]) != 0) {
			fail(s, err, errlen, "write");
			goto rollback;
		}
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail(s, err, errlen, "commit");
		goto rollback;
	}
	free(f.joined);
	pthread_mutex_unlock(&s->lock);
	return f.rows;
rollback:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
out:
	free(f.joined);
	pthread_mutex_unlock(&s->lock);
	return -1;
}
