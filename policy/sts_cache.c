/*
 * sts_cache.c - the persistent MTA-STS policy cache.
 *
 * Two locks. The read-write lock guards the in-memory table: lookups take it
 * shared and only for the time of a hash walk and a reference increment.
 * The database mutex serialises writers end to end (database write, then
 * table update), so the file and memory never disagree about which writer
 * came last, and readers are not blocked while SQLite writes.
 *
 * Each table node is one domain: its current entry (NULL when only a failed
 * fetch is remembered) and its backoff state. Entries are immutable and
 * reference counted; the table holds one reference.
 *
 * Durability: WAL with synchronous=NORMAL. In WAL mode that is still safe
 * against a process crash (a commit is in the WAL before the call returns)
 * and the file stays consistent after a power loss; only the last commits
 * before a power loss can be lost, which costs a refetch of those policies.
 * FULL would add an fsync to every write, and writes run on event-loop
 * threads, where an fsync stalls every session of that thread.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/types.h"
#include "policy/sts_cache.h"
#include "policy/sts_claim.h"
#include "policy/sts_seen.h"

#define SCHEMA_VERSION  1
#define INITIAL_BUCKETS 1024
/* Times beyond this are not unix seconds; refusing them keeps the sums below exact. */
#define TIME_MAX (INT64_MAX / 4)
/*
 * A node: the memory for a domain with a policy or a failed fetch. What a
 * lookup reads comes first, so that a typical name compares within the
 * first cache line.
 */
struct node {
	struct node *next;
	uint64_t hash;
	struct sts_cache_entry *entry; /* NULL: backoff state only */
	char domain[STS_CACHE_DOMAIN_MAX];
	char fail_id[STS_CACHE_ID_MAX];
	unsigned fail_count;
	int64_t retry_after;
};

struct sts_cache {
	pthread_rwlock_t lock; /* guards buckets, nodes and counts */
	struct node **buckets;
	size_t n_buckets; /* a power of two */
	size_t n_nodes;
	size_t n_entries;
	uint64_t seed;
	struct sts_seen *seen;     /* recent DNS answers, shared with the cache's users */
	struct sts_claims *claims; /* policy fetches in flight, shared likewise */

	pthread_mutex_t db_lock; /* serialises writers and every use of db */
	sqlite3 *db;             /* NULL after an unrecoverable database error */
	sqlite3_stmt *st_put;
	sqlite3_stmt *st_touch;
	sqlite3_stmt *st_delete;
	sqlite3_stmt *st_fail;
	sqlite3_stmt *st_prune;
	char path[PATH_MAX];
};

/*
 * Schema migrations: migrations[v] brings a file at user_version v to v+1.
 * A future schema appends a step; old files are upgraded in place on open.
 */
static const char *const migrations[SCHEMA_VERSION] = {
    "CREATE TABLE policies ("
    " domain TEXT PRIMARY KEY NOT NULL,"
    " policy_id TEXT,"
    " policy_text BLOB,"
    " mode TEXT,"
    " max_age INTEGER,"
    " mx TEXT,"
    " fetched_at INTEGER,"
    " expires_at INTEGER,"
    " last_checked INTEGER,"
    " fail_id TEXT,"
    " fail_count INTEGER NOT NULL DEFAULT 0,"
    " retry_after INTEGER NOT NULL DEFAULT 0);",
};

static const char sql_put[] =
    "INSERT OR REPLACE INTO policies (domain, policy_id, policy_text, mode, max_age, mx,"
    " fetched_at, expires_at, last_checked, fail_id, fail_count, retry_after)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, 0, 0)";
static const char sql_touch[] = "UPDATE policies SET last_checked = ?2 WHERE domain = ?1";
static const char sql_delete[] = "DELETE FROM policies WHERE domain = ?1";
/* Only a row without a policy: a put racing with the prune must not be undone. */
static const char sql_prune[] =
    "DELETE FROM policies WHERE domain = ?1 AND policy_text IS NULL AND retry_after <= ?2";
static const char sql_fail[] =
    "INSERT INTO policies (domain, fail_id, fail_count, retry_after) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (domain) DO UPDATE SET fail_id = excluded.fail_id,"
    " fail_count = excluded.fail_count, retry_after = excluded.retry_after";
static const char sql_load[] =
    "SELECT domain, policy_id, policy_text, mode, max_age, mx, fetched_at, expires_at,"
    " last_checked, fail_id, fail_count, retry_after FROM policies";

static inline int64_t
sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static inline bool
time_valid(int64_t t)
{
	return t >= 0 && t <= TIME_MAX;
}

/* --- keys ------------------------------------------------------------------ */

static inline unsigned char
lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

/* FNV-1a over the lower-cased name, seeded per process, then a final mix. */
static inline uint64_t
key_hash(uint64_t seed, const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s != '\0'; s++) {
		h ^= lower((unsigned char)*s);
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* stored is lower case; name may not be. */
static inline bool
key_equal(const char *stored, const char *name)
{
	for (; *stored != '\0'; stored++, name++) {
		if (*stored != (char)lower((unsigned char)*name))
			return false;
	}
	return *name == '\0';
}

/* domain_norm - lower-case copy of an A-label domain into out; 0 or -1 if not a domain. */
static int
domain_norm(const char *in, char out[STS_CACHE_DOMAIN_MAX])
{
	size_t i;

	if (in == NULL || in[0] == '\0')
		return -1;
	for (i = 0; in[i] != '\0'; i++) {
		unsigned char ch = lower((unsigned char)in[i]);

		if (i >= STS_CACHE_DOMAIN_MAX - 1)
			return -1;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '.' || ch == '_'))
			return -1;
		out[i] = (char)ch;
	}
	out[i] = '\0';
	return 0;
}

/* RFC 8461 section 3.1: id is 1 to 32 letters and digits. */
static bool
id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return false;
	for (i = 0; id[i] != '\0'; i++) {
		char ch = id[i];

		if (i >= STS_CACHE_ID_MAX - 1)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9')))
			return false;
	}
	return i > 0;
}

/* What the parser can produce is what may be stored: anything else would not load back. */
static bool
policy_valid(const struct sts_policy *p)
{
	if (p->mode != STS_MODE_NONE && p->mode != STS_MODE_TESTING && p->mode != STS_MODE_ENFORCE)
		return false;
	if (p->max_age > STS_MAX_AGE_CLAMP || p->n_mx > STS_POLICY_MAX_MX)
		return false;
	if (p->n_mx > 0 && p->mx == NULL)
		return false;
	for (size_t i = 0; i < p->n_mx; i++) {
		size_t len;

		if (p->mx[i] == NULL)
			return false;
		len = strlen(p->mx[i]);
		if (len == 0 || len > STS_HOSTNAME_MAX || strchr(p->mx[i], '\n') != NULL)
			return false;
	}
	return true;
}

/* --- entries ------------------------------------------------------------- */

static void
entry_free(struct sts_cache_entry *e)
{
	sts_policy_clear(&e->policy);
	free(e->text);
	free(e);
}

static void
entry_unref(const struct sts_cache_entry *ce)
{
	struct sts_cache_entry *e = (struct sts_cache_entry *)ce;

	/* The last reference frees; acq_rel orders every reader's use before the free. */
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		entry_free(e);
}

/* entry_new - a new entry with one reference, or NULL on allocation failure. */
static struct sts_cache_entry *
entry_new(const char *domain, const char *id, const char *text, size_t text_len,
          const struct sts_policy *p, int64_t fetched_at, int64_t last_checked)
{
	struct sts_cache_entry *e;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	snprintf(e->id, sizeof(e->id), "%s", id);
	if ((e->text = malloc(text_len + 1)) == NULL)
		goto fail;
	if (text_len > 0)
		memcpy(e->text, text, text_len);
	e->text[text_len] = '\0';
	e->text_len = text_len;
	if (sts_policy_copy(&e->policy, p) == -1)
		goto fail;
	e->fetched_at = fetched_at;
	e->expires_at = fetched_at + (int64_t)p->max_age;
	e->last_checked = last_checked;
	atomic_init(&e->refs, 1);
	return e;
fail:
	free(e->text);
	free(e);
	return NULL;
}

/* --- table (callers hold the lock) ----------------------------------------- */

static struct node *
node_find(const struct sts_cache *c, const char *domain, uint64_t h)
{
	struct node *n;

	for (n = c->buckets[h & (c->n_buckets - 1)]; n != NULL; n = n->next) {
		if (n->hash == h && key_equal(n->domain, domain))
			return n;
	}
	return NULL;
}

/* table_grow - double the buckets; a failure only leaves chains longer. */
static void
table_grow(struct sts_cache *c)
{
	size_t nb = c->n_buckets * 2;
	struct node **b;

	if ((b = calloc(nb, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i < c->n_buckets; i++) {
		struct node *n, *next;

		for (n = c->buckets[i]; n != NULL; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->n_buckets = nb;
}

static void
node_link(struct sts_cache *c, struct node *n)
{
	struct node **b;

	if (c->n_nodes >= c->n_buckets)
		table_grow(c);
	b = &c->buckets[n->hash & (c->n_buckets - 1)];
	n->next = *b;
	*b = n;
	c->n_nodes++;
}

static void
node_unlink(struct sts_cache *c, struct node *victim)
{
	struct node **pp = &c->buckets[victim->hash & (c->n_buckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			c->n_nodes--;
			return;
		}
	}
}

static struct node *
node_new(const char *domain, uint64_t h)
{
	struct node *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->hash = h;
	snprintf(n->domain, sizeof(n->domain), "%s", domain);
	return n;
}

static void
table_clear(struct sts_cache *c)
{
	for (size_t i = 0; c->buckets != NULL && i < c->n_buckets; i++) {
		struct node *n, *next;

		for (n = c->buckets[i]; n != NULL; n = next) {
			next = n->next;
			if (n->entry != NULL)
				entry_unref(n->entry);
			free(n);
		}
		c->buckets[i] = NULL;
	}
	c->n_nodes = 0;
	c->n_entries = 0;
}

/* --- database -------------------------------------------------------------- */

/*
 * A damaged file, as opposed to a system problem (I/O error, full disk, lock
 * held by another process, no memory) that moving the file would not fix.
 * SQLITE_ERROR and friends mean a readable file whose schema is not ours.
 */
static bool
db_corrupt_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_ERROR:
	case SQLITE_SCHEMA:
	case SQLITE_MISMATCH:
	case SQLITE_FORMAT:
	case SQLITE_RANGE:
		return true;
	default:
		return false;
	}
}

static void
db_close(struct sts_cache *c)
{
	sqlite3_finalize(c->st_put);
	sqlite3_finalize(c->st_touch);
	sqlite3_finalize(c->st_delete);
	sqlite3_finalize(c->st_fail);
	sqlite3_finalize(c->st_prune);
	c->st_put = c->st_touch = c->st_delete = c->st_fail = c->st_prune = NULL;
	sqlite3_close(c->db);
	c->db = NULL;
}

/* db_exec_text - run a one-row statement and copy its first column to out. */
static int
db_exec_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		out[0] = '\0';
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* mx_split - the mx column (one pattern per line) into p->mx; 0 or -1. */
static int
mx_split(const char *text, struct sts_policy *p)
{
	const char *s = text, *nl;

	p->mx = NULL;
	p->n_mx = 0;
	if (text == NULL || text[0] == '\0')
		return 0;
	if ((p->mx = calloc(STS_POLICY_MAX_MX, sizeof(*p->mx))) == NULL)
		return -1;
	for (;;) {
		size_t len;

		nl = strchr(s, '\n');
		len = nl != NULL ? (size_t)(nl - s) : strlen(s);
		if (p->n_mx >= STS_POLICY_MAX_MX || len == 0 || len > STS_HOSTNAME_MAX)
			return -1;
		if ((p->mx[p->n_mx] = strndup(s, len)) == NULL)
			return -1;
		p->n_mx++;
		if (nl == NULL)
			return 0;
		s = nl + 1;
	}
}

/* Frees what mx_split() built (not through sts_policy_clear(): we allocated it). */
static void
mx_free(struct sts_policy *p)
{
	for (size_t i = 0; i < p->n_mx; i++)
		free(p->mx[i]);
	free(p->mx);
	p->mx = NULL;
	p->n_mx = 0;
}

/* mx_join - the patterns, one per line, in a new string; NULL on allocation failure. */
static char *
mx_join(const struct sts_policy *p)
{
	size_t len = 1, off = 0;
	char *s;

	for (size_t i = 0; i < p->n_mx; i++)
		len += strlen(p->mx[i]) + 1;
	if ((s = malloc(len)) == NULL)
		return NULL;
	for (size_t i = 0; i < p->n_mx; i++) {
		size_t l = strlen(p->mx[i]);

		if (i > 0)
			s[off++] = '\n';
		memcpy(s + off, p->mx[i], l);
		off += l;
	}
	s[off] = '\0';
	return s;
}

/*
 * load_row - one row into the table. Returns 0, 1 if the row is not a usable
 * policy (skipped, counted by the caller), or -1 on allocation failure.
 */
static int
load_row(struct sts_cache *c, sqlite3_stmt *st)
{
	char domain[STS_CACHE_DOMAIN_MAX];
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const char *id = (const char *)sqlite3_column_text(st, 1);
	const char *fail_id = (const char *)sqlite3_column_text(st, 9);
	struct sts_policy p = {0};
	struct node *n;
	uint64_t h;
	int64_t max_age, fetched_at, expires_at;
	int ret = 1;

	if (name == NULL || domain_norm(name, domain) == -1 || strcmp(name, domain) != 0)
		return 1;
	h = key_hash(c->seed, domain);
	if (node_find(c, domain, h) != NULL)
		return 1;
	if ((n = node_new(domain, h)) == NULL)
		return -1;
	if (fail_id != NULL && id_valid(fail_id)) {
		int64_t fc = sqlite3_column_int64(st, 10);

		snprintf(n->fail_id, sizeof(n->fail_id), "%s", fail_id);
		n->fail_count = fc < 0 ? 0 : fc > 64 ? 64 : (unsigned)fc;
		n->retry_after = sqlite3_column_int64(st, 11);
	}
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		const char *text = sqlite3_column_blob(st, 2);
		int text_len = sqlite3_column_bytes(st, 2);
		const char *mode = (const char *)sqlite3_column_text(st, 3);
		const char *mx = (const char *)sqlite3_column_text(st, 5);

		max_age = sqlite3_column_int64(st, 4);
		fetched_at = sqlite3_column_int64(st, 6);
		expires_at = sqlite3_column_int64(st, 7);
		/* A row must be complete and self-consistent, or it is not used. */
		if (!id_valid(id) || mode == NULL || sts_mode_parse(mode, &p.mode) == -1)
			goto skip;
		if (max_age < 0 || max_age > STS_MAX_AGE_CLAMP || !time_valid(fetched_at) ||
		    expires_at != fetched_at + max_age || !time_valid(sqlite3_column_int64(st, 8)))
			goto skip;
		if (text_len < 0 || text_len > STS_POLICY_MAX_BODY ||
		    (text == NULL && text_len > 0))
			goto skip;
		p.max_age = (uint32_t)max_age;
		if (mx_split(mx, &p) == -1)
			goto skip;
		if (p.mode != STS_MODE_NONE && p.n_mx == 0)
			goto skip;
		n->entry = entry_new(domain, id, text, (size_t)text_len, &p, fetched_at,
		                     sqlite3_column_int64(st, 8));
		mx_free(&p);
		if (n->entry == NULL) {
			free(n);
			return -1;
		}
		c->n_entries++;
	} else if (n->fail_id[0] == '\0') {
		goto skip; /* neither policy nor backoff: nothing to remember */
	}
	node_link(c, n);
	return 0;
skip:
	mx_free(&p);
	free(n);
	return ret;
}

/*
 * db_open - open, check, migrate and load c->path. Returns 0, 1 when the
 * file is damaged (why set), or -1 on any other error (why set). On a
 * non-zero return the database is closed and the table is empty.
 */
static int
db_open(struct sts_cache *c, char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	char buf[64];
	int rc, version;
	size_t skipped = 0;

	rc =
	    sqlite3_open_v2(c->path, &c->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(c->db, 1);
	/* Writes run on event-loop threads: wait briefly for an outside reader, never long. */
	sqlite3_busy_timeout(c->db, 250);
	if ((rc = db_exec_text(c->db, "PRAGMA quick_check", buf, sizeof(buf))) != SQLITE_OK)
		goto fail;
	if (strcmp(buf, "ok") != 0) {
		snprintf(why, whylen, "quick_check: %s", buf);
		db_close(c);
		return 1;
	}
	if ((rc = db_exec_text(c->db, "PRAGMA journal_mode=WAL", buf, sizeof(buf))) != SQLITE_OK)
		goto fail;
	if (strcmp(buf, "wal") != 0) {
		snprintf(why, whylen, "journal_mode is %s, not wal", buf);
		db_close(c);
		return -1;
	}
	if ((rc = sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL)) != SQLITE_OK)
		goto fail;
	if ((rc = db_exec_text(c->db, "PRAGMA user_version", buf, sizeof(buf))) != SQLITE_OK)
		goto fail;
	version = atoi(buf);
	if (version < 0 || version > SCHEMA_VERSION) {
		/* A newer daemon wrote this; set it aside rather than misread it. */
		snprintf(why, whylen, "schema version %d is not known (at most %d)", version,
		         SCHEMA_VERSION);
		db_close(c);
		return 1;
	}
	for (; version < SCHEMA_VERSION; version++) {
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", version + 1);
		if ((rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
			goto fail;
		if ((rc = sqlite3_exec(c->db, migrations[version], NULL, NULL, NULL)) !=
		        SQLITE_OK ||
		    (rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL)) != SQLITE_OK ||
		    (rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
			int save = rc;

			snprintf(why, whylen, "schema upgrade to %d: %s", version + 1,
			         sqlite3_errmsg(c->db));
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			db_close(c);
			return db_corrupt_code(save) ? 1 : -1;
		}
	}
	if ((rc = sqlite3_prepare_v2(c->db, sql_put, -1, &c->st_put, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(c->db, sql_touch, -1, &c->st_touch, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(c->db, sql_delete, -1, &c->st_delete, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(c->db, sql_fail, -1, &c->st_fail, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(c->db, sql_prune, -1, &c->st_prune, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(c->db, sql_load, -1, &st, NULL)) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int r = load_row(c, st);

		if (r == -1) {
			snprintf(why, whylen, "out of memory loading the cache");
			sqlite3_finalize(st);
			table_clear(c);
			db_close(c);
			return -1;
		}
		skipped += (size_t)r;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	if (skipped > 0)
		log_warn("sts_cache: file=%s skipped=%zu reason=\"incomplete rows\"", c->path,
		         skipped);
	return 0;
fail:
	snprintf(why, whylen, "%s", c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
	sqlite3_finalize(st);
	table_clear(c);
	db_close(c);
	return db_corrupt_code(rc) ? 1 : -1;
}

/* move_aside - rename the damaged file and its WAL and shared-memory files. */
static int
move_aside(const char *path, char *aside, size_t asidelen)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	long now = (long)time(NULL);
	struct stat sb;
	int n;

	/* Never overwrite an earlier damaged file from the same second. */
	for (int i = 0;; i++) {
		if (i == 0)
			n = snprintf(aside, asidelen, "%s.corrupt-%ld", path, now);
		else
			n = snprintf(aside, asidelen, "%s.corrupt-%ld.%d", path, now, i);
		if (n < 0 || (size_t)n >= asidelen)
			return -1;
		if (lstat(aside, &sb) == -1 && errno == ENOENT)
			break;
		if (i == 100)
			return -1;
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char from[PATH_MAX + 8], to[PATH_MAX + 40];

		n = snprintf(from, sizeof(from), "%s%s", path, suffixes[i]);
		if (n < 0 || (size_t)n >= sizeof(from))
			return -1;
		n = snprintf(to, sizeof(to), "%s%s", aside, suffixes[i]);
		if (n < 0 || (size_t)n >= sizeof(to))
			return -1;
		if (rename(from, to) == -1 && errno != ENOENT)
			return -1;
	}
	return 0;
}

/*
 * db_step - run a bound write statement; 0, or -1 after logging. Called with
 * db_lock held.
 */
static int
db_step(struct sts_cache *c, sqlite3_stmt *st, const char *op, const char *domain)
{
	int rc;

	if (c->db == NULL || st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		log_err("sts_cache: op=%s domain=%s file=%s error=\"%s\" memory=updated", op,
		        domain, c->path, sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

/* --- public ---------------------------------------------------------------- */

/* sts_cache_open - open or create the cache in state_dir and load it */
struct sts_cache *
sts_cache_open(const char *state_dir, char *err, size_t errlen)
{
	struct sts_cache *c = NULL;
	pthread_rwlockattr_t attr;
	struct stat sb;
	char why[256], aside[PATH_MAX];
	int n, r;

	errno = 0;
	if (state_dir == NULL || stat(state_dir, &sb) == -1 || !S_ISDIR(sb.st_mode) ||
	    access(state_dir, W_OK | X_OK) == -1) {
		snprintf(err, errlen, "%s: state directory not usable: %s",
		         state_dir != NULL ? state_dir : "(null)",
		         errno != 0 ? strerror(errno) : "not a directory");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	n = snprintf(c->path, sizeof(c->path), "%s/%s", state_dir, STS_CACHE_FILE);
	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		snprintf(err, errlen, "%s: state directory path too long", state_dir);
		free(c);
		return NULL;
	}
	if ((c->buckets = calloc(INITIAL_BUCKETS, sizeof(*c->buckets))) == NULL)
		goto nomem;
	c->n_buckets = INITIAL_BUCKETS;
	if ((c->seen = sts_seen_new(0)) == NULL || (c->claims = sts_claims_new()) == NULL)
		goto nomem;
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
		c->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	/* Writers are rare: let them in ahead of the stream of readers. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&c->db_lock, NULL);

	r = db_open(c, why, sizeof(why));
	if (r == 1) {
		if (move_aside(c->path, aside, sizeof(aside)) == -1) {
			snprintf(err, errlen, "%s: damaged (%s) and cannot be moved aside: %s",
			         c->path, why, strerror(errno));
			sts_cache_close(c);
			return NULL;
		}
		log_warn("sts_cache: file=%s damaged=\"%s\" moved_to=%s starting=empty", c->path,
		         why, aside);
		r = db_open(c, why, sizeof(why));
	}
	if (r != 0) {
		snprintf(err, errlen, "%s: %s", c->path, why);
		sts_cache_close(c);
		return NULL;
	}
	return c;
nomem:
	snprintf(err, errlen, "%s: out of memory", state_dir);
	if (c != NULL) {
		free(c->buckets);
		sts_seen_free(c->seen);
		sts_claims_free(c->claims);
	}
	free(c);
	return NULL;
}

/* sts_cache_seen - the table of recent DNS answers that lives as long as c. */
struct sts_seen *
sts_cache_seen(struct sts_cache *c)
{
	return c != NULL ? c->seen : NULL;
}

/* sts_cache_claims - the table of policy fetches in flight that lives as long as c. */
struct sts_claims *
sts_cache_claims(struct sts_cache *c)
{
	return c != NULL ? c->claims : NULL;
}

/* sts_cache_close - close the database and drop the table's references */
void
sts_cache_close(struct sts_cache *c)
{
	if (c == NULL)
		return;
	db_close(c);
	table_clear(c);
	free(c->buckets);
	sts_seen_free(c->seen);
	sts_claims_free(c->claims);
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->db_lock);
	free(c);
}

/* sts_cache_get - a referenced entry for domain, or NULL */
const struct sts_cache_entry *
sts_cache_get(struct sts_cache *c, const char *domain)
{
	struct sts_cache_entry *e = NULL;
	struct node *n;
	uint64_t h;

	if (c == NULL || domain == NULL)
		return NULL;
	h = key_hash(c->seed, domain);
	pthread_rwlock_rdlock(&c->lock);
	if ((n = node_find(c, domain, h)) != NULL && (e = n->entry) != NULL)
		atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&c->lock);
	return e;
}

/* sts_cache_release - drop a reference */
void
sts_cache_release(const struct sts_cache_entry *e)
{
	if (e != NULL)
		entry_unref(e);
}

/*
 * publish - make e the entry of domain (NULL removes it) and, if clear_fail,
 * forget its backoff. A missing node is created from spare. Called with
 * db_lock held; takes the table lock. Returns the entry it replaced (the
 * caller drops that reference outside the lock) and consumes spare if used.
 */
static struct sts_cache_entry *
publish(struct sts_cache *c, const char *domain, uint64_t h, struct sts_cache_entry *e,
        bool clear_fail, struct node **spare)
{
	struct sts_cache_entry *old = NULL;
	struct node *n;

	pthread_rwlock_wrlock(&c->lock);
	n = node_find(c, domain, h);
	if (n == NULL && e != NULL) {
		n = *spare;
		*spare = NULL;
		node_link(c, n);
	}
	if (n != NULL) {
		old = n->entry;
		n->entry = e;
		if (e != NULL && old == NULL)
			c->n_entries++;
		else if (e == NULL && old != NULL)
			c->n_entries--;
		if (clear_fail) {
			n->fail_id[0] = '\0';
			n->fail_count = 0;
			n->retry_after = 0;
		}
		if (n->entry == NULL && n->fail_id[0] == '\0') {
			node_unlink(c, n);
			free(n);
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return old;
}

/* sts_cache_put - cache a fetched policy, write-through */
int
sts_cache_put(struct sts_cache *c, const char *domain, const char *id, const char *text,
              size_t text_len, const struct sts_policy *p, int64_t now)
{
	char key[STS_CACHE_DOMAIN_MAX];
	struct sts_cache_entry *e, *old;
	struct node *spare;
	char *mx;
	uint64_t h;
	int ret;

	if (c == NULL || p == NULL || domain_norm(domain, key) == -1 || !id_valid(id) ||
	    !policy_valid(p) || (text == NULL && text_len > 0) || text_len > STS_POLICY_MAX_BODY ||
	    !time_valid(now))
		return -1;
	h = key_hash(c->seed, key);
	if ((e = entry_new(key, id, text, text_len, p, now, now)) == NULL)
		return -1;
	mx = mx_join(p);
	spare = node_new(key, h);
	if (mx == NULL || spare == NULL) {
		free(mx);
		free(spare);
		entry_free(e);
		return -1;
	}

	pthread_mutex_lock(&c->db_lock);
	if (c->st_put != NULL) {
		sqlite3_stmt *st = c->st_put;

		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, e->id, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 3, e->text, text_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, sts_mode_name(p->mode), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, p->max_age);
		sqlite3_bind_text(st, 6, mx, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, e->fetched_at);
		sqlite3_bind_int64(st, 8, e->expires_at);
		sqlite3_bind_int64(st, 9, e->last_checked);
	}
	ret = db_step(c, c->st_put, "put", key);
	old = publish(c, key, h, e, true, &spare);
	pthread_mutex_unlock(&c->db_lock);

	if (old != NULL)
		entry_unref(old);
	free(spare);
	free(mx);
	return ret;
}

/* sts_cache_touch - publish a copy of the entry with a new last_checked */
int
sts_cache_touch(struct sts_cache *c, const char *domain, int64_t now)
{
	char key[STS_CACHE_DOMAIN_MAX];
	const struct sts_cache_entry *cur;
	struct sts_cache_entry *e, *old;
	struct node *spare = NULL;
	uint64_t h;
	int ret;

	if (c == NULL || domain_norm(domain, key) == -1 || !time_valid(now))
		return -1;
	h = key_hash(c->seed, key);
	/* Writers are serialised, so cur stays the current entry until we publish. */
	pthread_mutex_lock(&c->db_lock);
	if ((cur = sts_cache_get(c, key)) == NULL) {
		pthread_mutex_unlock(&c->db_lock);
		return -1;
	}
	e = entry_new(key, cur->id, cur->text, cur->text_len, &cur->policy, cur->fetched_at, now);
	if (e == NULL) {
		pthread_mutex_unlock(&c->db_lock);
		sts_cache_release(cur);
		return -1;
	}
	if (c->st_touch != NULL) {
		sqlite3_bind_text(c->st_touch, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(c->st_touch, 2, now);
	}
	ret = db_step(c, c->st_touch, "touch", key);
	old = publish(c, key, h, e, false, &spare);
	pthread_mutex_unlock(&c->db_lock);

	sts_cache_release(cur);
	if (old != NULL)
		entry_unref(old);
	return ret;
}

/* sts_cache_delete - forget a domain */
int
sts_cache_delete(struct sts_cache *c, const char *domain)
{
	char key[STS_CACHE_DOMAIN_MAX];
	struct sts_cache_entry *old;
	struct node *spare = NULL;
	int ret;

	if (c == NULL || domain_norm(domain, key) == -1)
		return -1;
	pthread_mutex_lock(&c->db_lock);
	if (c->st_delete != NULL)
		sqlite3_bind_text(c->st_delete, 1, key, -1, SQLITE_STATIC);
	ret = db_step(c, c->st_delete, "delete", key);
	old = publish(c, key, key_hash(c->seed, key), NULL, true, &spare);
	pthread_mutex_unlock(&c->db_lock);
	if (old != NULL)
		entry_unref(old);
	return ret;
}

/* sts_cache_count - cached policies */
size_t
sts_cache_count(struct sts_cache *c)
{
	size_t n;

	if (c == NULL)
		return 0;
	pthread_rwlock_rdlock(&c->lock);
	n = c->n_entries;
	pthread_rwlock_unlock(&c->lock);
	return n;
}

/* sts_cache_fetch_failed - start or extend the backoff of (domain, id) */
int
sts_cache_fetch_failed(struct sts_cache *c, const char *domain, const char *id, int64_t now)
{
	char key[STS_CACHE_DOMAIN_MAX];
	struct node *n, *spare;
	unsigned count;
	int64_t delay, retry_after;
	uint64_t h;
	int ret;

	if (c == NULL || domain_norm(domain, key) == -1 || !id_valid(id))
		return -1;
	h = key_hash(c->seed, key);
	if ((spare = node_new(key, h)) == NULL)
		return -1;

	pthread_mutex_lock(&c->db_lock);
	pthread_rwlock_wrlock(&c->lock);
	if ((n = node_find(c, key, h)) == NULL) {
		n = spare;
		spare = NULL;
		node_link(c, n);
	}
	/* Consecutive failures of the same id double the wait; a new id starts over. */
	count = strcmp(n->fail_id, id) == 0 ? n->fail_count + 1 : 1;
	if (count > 64)
		count = 64;
	delay = STS_CACHE_BACKOFF_MIN;
	for (unsigned i = 1; i < count && delay < STS_CACHE_BACKOFF_MAX; i++)
		delay *= 2;
	if (delay > STS_CACHE_BACKOFF_MAX)
		delay = STS_CACHE_BACKOFF_MAX;
	/* RFC 8461 section 3.3: never sooner than 5 minutes after the failure. */
	retry_after = sat_add(now, delay);
	snprintf(n->fail_id, sizeof(n->fail_id), "%s", id);
	n->fail_count = count;
	n->retry_after = retry_after;
	pthread_rwlock_unlock(&c->lock);

	if (c->st_fail != NULL) {
		sqlite3_bind_text(c->st_fail, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(c->st_fail, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(c->st_fail, 3, count);
		sqlite3_bind_int64(c->st_fail, 4, retry_after);
	}
	ret = db_step(c, c->st_fail, "fetch_failed", key);
	pthread_mutex_unlock(&c->db_lock);
	free(spare);
	return ret;
}

/* sts_cache_may_fetch - false while (domain, id) backs off */
bool
sts_cache_may_fetch(struct sts_cache *c, const char *domain, const char *id, int64_t now)
{
	const struct node *n;
	bool ok = true;

	if (c == NULL || domain == NULL || id == NULL)
		return true;
	pthread_rwlock_rdlock(&c->lock);
	n = node_find(c, domain, key_hash(c->seed, domain));
	if (n != NULL && n->fail_id[0] != '\0' && strcmp(n->fail_id, id) == 0 &&
	    now < n->retry_after)
		ok = false;
	pthread_rwlock_unlock(&c->lock);
	return ok;
}

static bool
backoff_over(const struct node *n, int64_t now)
{
	return n->entry == NULL && now >= n->retry_after;
}

/* sts_cache_prune - drop backoff-only domains whose backoff ended */
size_t
sts_cache_prune(struct sts_cache *c, int64_t now)
{
	struct node *gone = NULL, *n, **pp;
	size_t found = 0;

	if (c == NULL)
		return 0;
	/* A shared scan first: most ticks find nothing and never block readers. */
	pthread_rwlock_rdlock(&c->lock);
	for (size_t b = 0; b < c->n_buckets && found == 0; b++)
		for (n = c->buckets[b]; n != NULL && found == 0; n = n->next)
			found += backoff_over(n, now);
	pthread_rwlock_unlock(&c->lock);
	if (found == 0)
		return 0;

	found = 0;
	pthread_mutex_lock(&c->db_lock);
	pthread_rwlock_wrlock(&c->lock);
	for (size_t b = 0; b < c->n_buckets; b++) {
		for (pp = &c->buckets[b]; (n = *pp) != NULL;) {
			if (!backoff_over(n, now)) {
				pp = &n->next;
				continue;
			}
			*pp = n->next;
			c->n_nodes--;
			n->next = gone;
			gone = n;
			found++;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	while ((n = gone) != NULL) {
		gone = n->next;
		if (c->st_prune != NULL) {
			sqlite3_bind_text(c->st_prune, 1, n->domain, -1, SQLITE_STATIC);
			sqlite3_bind_int64(c->st_prune, 2, now);
		}
		(void)db_step(c, c->st_prune, "prune", n->domain);
		free(n);
	}
	pthread_mutex_unlock(&c->db_lock);
	return found;
}

/* A bounded max-heap on expires_at keeps the `max` soonest candidates. */
struct due {
	int64_t expires_at;
	const struct node *node;
};

static bool
due_later(const struct due *a, const struct due *b)
{
	if (a->expires_at != b->expires_at)
		return a->expires_at > b->expires_at;
	return strcmp(a->node->domain, b->node->domain) > 0;
}

static void
due_sift_down(struct due *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct due t;

		if (l < n && due_later(&h[l], &h[m]))
			m = l;
		if (r < n && due_later(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void
due_sift_up(struct due *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		struct due t;

		if (!due_later(&h[i], &h[p]))
			return;
		t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

/* sts_cache_due - domains to refresh soon, soonest first */
size_t
sts_cache_due(struct sts_cache *c, int64_t now, int64_t margin, char (*domains)[254], size_t max)
{
	struct due *heap;
	size_t n = 0;

	if (c == NULL || domains == NULL || max == 0)
		return 0;
	if (max > SIZE_MAX / sizeof(*heap) || (heap = malloc(max * sizeof(*heap))) == NULL)
		return 0;
	pthread_rwlock_rdlock(&c->lock);
	for (size_t b = 0; b < c->n_buckets; b++) {
		for (const struct node *nd = c->buckets[b]; nd != NULL; nd = nd->next) {
			struct due d;

			if (nd->entry == NULL || nd->entry->expires_at > sat_add(now, margin))
				continue;
			if (nd->fail_id[0] != '\0' && now < nd->retry_after)
				continue;
			d.expires_at = nd->entry->expires_at;
			d.node = nd;
			if (n < max) {
				heap[n] = d;
				due_sift_up(heap, n++);
			} else if (due_later(&heap[0], &d)) {
				heap[0] = d;
				due_sift_down(heap, n, 0);
			}
		}
	}
	/* Pop the latest into the back: the result is sorted soonest first. */
	for (size_t k = n; k > 0; k--) {
		snprintf(domains[k - 1], sizeof(domains[k - 1]), "%s", heap[0].node->domain);
		heap[0] = heap[k - 1];
		due_sift_down(heap, k - 1, 0);
	}
	pthread_rwlock_unlock(&c->lock);
	free(heap);
	return n;
}

void
sts_cache_foreach(struct sts_cache *c, void (*fn)(void *arg, const struct sts_cache_entry *e),
                  void *arg)
{
	if (c == NULL || fn == NULL)
		return;
	pthread_rwlock_rdlock(&c->lock);
	for (size_t b = 0; b < c->n_buckets; b++)
		for (const struct node *nd = c->buckets[b]; nd != NULL; nd = nd->next)
			if (nd->entry != NULL)
				fn(arg, nd->entry);
	pthread_rwlock_unlock(&c->lock);
}
