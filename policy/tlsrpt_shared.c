/*
 * tlsrpt_shared.c - the TLS-RPT rows of every gateway through the shared
 * Redis, and the lock that makes one gateway the sender of a report (see
 * tlsrpt_shared.h). Blocking by design: it runs in the reporter's thread,
 * every command bounded by shared.command_timeout.
 */
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "policy/report_value.h"
#include "policy/tlsrpt_shared.h"

#define PUSH_BATCH      256                 /* rows read from the store at a time */
#define PUSH_ROUNDS     64                  /* batches in one push at most */
#define MERGE_BYTES_MAX (64u * 1024 * 1024) /* values of one day read at most */

/*
 * The lock of a report: the sent mark wins; a lock of another gateway is
 * left alone; this gateway's own (or none) is set for ARGV[2] ms. One
 * script, so that no other gateway can come between the reads and the set.
 */
static const char claim_script[] = "local s = redis.call('GET', KEYS[2])\n"
                                   "if s then return {'sent', s} end\n"
                                   "local h = redis.call('GET', KEYS[1])\n"
                                   "if h and h ~= ARGV[1] then return {'held', h} end\n"
                                   "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                   "return {'ours', ARGV[1]}\n";

struct tlsrpt_shared {
	const struct conf *conf;
	struct report_store *store;
	struct tlsrpt_shared_stats *stats;
	redisContext *ctx; /* NULL: connect at the next call */
};

#define COUNT(t, field, n)                                                                         \
	do {                                                                                       \
		if ((t)->stats != NULL)                                                            \
			atomic_fetch_add_explicit(&(t)->stats->field, (n), memory_order_relaxed);  \
	} while (0)

static struct timeval
tv_ms(unsigned ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static void
drop(struct tlsrpt_shared *t)
{
	if (t->ctx != NULL)
		redisFree(t->ctx);
	t->ctx = NULL;
}

/* connect_addr - a connection to a numeric address; NULL with err. */
static redisContext *
connect_addr(const struct conf_addr *a, unsigned timeout_ms, char *err, size_t errlen)
{
	char ip[64];
	int port;

	sts_addr_text((const struct sockaddr *)&a->sa, ip, sizeof(ip), NULL, 0);
	port = a->sa.ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port)
	                                   : ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
	redisContext *c = redisConnectWithTimeout(ip, port, tv_ms(timeout_ms));

	if (c == NULL || c->err) {
		snprintf(err, errlen, "redis %s: %s", a->text,
		         c != NULL ? c->errstr : "out of memory");
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	return c;
}

/* connect_sentinel - ask the Sentinels in turn for the master, then connect to it. */
static redisContext *
connect_sentinel(const struct conf *c, char *err, size_t errlen)
{
	snprintf(err, errlen, "no Sentinel named a master");
	for (size_t i = 0; i < c->shared.n_sentinels; i++) {
		redisContext *s =
		    connect_addr(&c->shared.sentinels[i], c->shared.connect_timeout, err, errlen);
		redisReply *r;
		char host[64] = "";
		int port = 0;

		if (s == NULL)
			continue;
		redisSetTimeout(s, tv_ms(c->shared.command_timeout));
		r = redisCommand(s, "SENTINEL get-master-addr-by-name %s", c->shared.master);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    r->element[0]->len < sizeof(host)) {
			memcpy(host, r->element[0]->str, r->element[0]->len);
			host[r->element[0]->len] = '\0';
			port = atoi(r->element[1]->str);
		}
		freeReplyObject(r);
		redisFree(s);
		if (host[0] != '\0' && port > 0 && port < 65536) {
			redisContext *m =
			    redisConnectWithTimeout(host, port, tv_ms(c->shared.connect_timeout));

			if (m != NULL && !m->err)
				return m;
			snprintf(err, errlen, "redis master %s:%d: %s", host, port,
			         m != NULL ? m->errstr : "out of memory");
			if (m != NULL)
				redisFree(m);
		}
	}
	return NULL;
}

/* conn - the connection, made (and authenticated) when there is none; -1 with err. */
static int
conn(struct tlsrpt_shared *t, char *err, size_t errlen)
{
	const struct conf *c = t->conf;
	redisReply *r;

	if (t->ctx != NULL)
		return 0;
	if (c->shared.redis_path != NULL) {
		t->ctx = redisConnectUnixWithTimeout(c->shared.redis_path,
		                                     tv_ms(c->shared.connect_timeout));
		if (t->ctx == NULL || t->ctx->err) {
			snprintf(err, errlen, "redis %s: %s", c->shared.redis_path,
			         t->ctx != NULL ? t->ctx->errstr : "out of memory");
			drop(t);
			return -1;
		}
	} else if (c->shared.redis != NULL) {
		t->ctx = connect_addr(c->shared.redis, c->shared.connect_timeout, err, errlen);
	} else {
		t->ctx = connect_sentinel(c, err, errlen);
	}
	if (t->ctx == NULL)
		return -1;
	redisSetTimeout(t->ctx, tv_ms(c->shared.command_timeout));
	if (c->shared.password == NULL)
		return 0;
	if (c->shared.user != NULL)
		r = redisCommand(t->ctx, "AUTH %s %s", c->shared.user, c->shared.password);
	else
		r = redisCommand(t->ctx, "AUTH %s", c->shared.password);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis AUTH: %s",
		         r != NULL           ? r->str
		         : t->ctx->errstr[0] ? t->ctx->errstr
		                             : "no answer");
		freeReplyObject(r);
		drop(t);
		return -1;
	}
	freeReplyObject(r);
	return 0;
}

/*
 * command - one command; its reply (free it), or NULL with err: no
 * answer (the connection is dropped, the next call makes a new one) or an
 * error reply.
 */
static redisReply *
command(struct tlsrpt_shared *t, int argc, const char **argv, const size_t *lens, char *err,
        size_t errlen)
{
	redisReply *r;

	if (conn(t, err, errlen) < 0)
		return NULL;
	if ((r = redisCommandArgv(t->ctx, argc, argv, lens)) == NULL) {
		snprintf(err, errlen, "redis: %s",
		         t->ctx->errstr[0] ? t->ctx->errstr : "no answer");
		drop(t);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis: %.*s", (int)r->len, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* day_key - "<prefix><what><YYYYMMDD><rest>" into buf. */
static void
day_key(const struct tlsrpt_shared *t, const char *what, int64_t day, const char *rest, char *buf,
        size_t len)
{
	time_t tt = (time_t)day;
	struct tm tm;
	char d[16] = "0";

	if (gmtime_r(&tt, &tm) != NULL)
		strftime(d, sizeof(d), "%Y%m%d", &tm);
	snprintf(buf, len, "%s%s%s%s", t->conf->shared.prefix, what, d, rest);
}

struct tlsrpt_shared *
tlsrpt_shared_new(const struct tlsrpt_shared_params *p)
{
	struct tlsrpt_shared *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->conf = p->conf;
	t->store = p->store;
	t->stats = p->stats;
	return t;
}

void
tlsrpt_shared_free(struct tlsrpt_shared *t)
{
	if (t == NULL)
		return;
	drop(t);
	free(t);
}

/* --- push ---------------------------------------------------------------------- */

struct pushed_row {
	int64_t day, version;
	char domain[STS_REPORT_DOMAIN_LEN];
	enum sts_policy_type type;
	char field[REPORT_VALUE_FIELD_MAX];
	char *value; /* NULL: not encodable, marked pushed without a write */
	size_t len;
};

struct push_batch {
	struct pushed_row *rows;
	size_t n;
};

static int
collect(void *arg, const struct report_store_row *row)
{
	struct push_batch *b = arg;
	struct pushed_row *p = &b->rows[b->n];

	memset(p, 0, sizeof(*p));
	p->day = row->day;
	p->version = row->version;
	p->type = row->type;
	sts_strlcpy(p->domain, row->domain, sizeof(p->domain));
	if (report_value_field(row, p->field, sizeof(p->field)) == 0 ||
	    report_value_encode(row, &p->value, &p->len) < 0)
		p->value = NULL;
	b->n++;
	return 0;
}

/* push_batch - write b's rows, pipelined; the number written, -1 when Redis did not answer. */
static int
push_batch(struct tlsrpt_shared *t, struct push_batch *b, char *err, size_t errlen)
{
	char ttl[24];
	int written = 0;

	if (conn(t, err, errlen) < 0)
		return -1;
	snprintf(ttl, sizeof(ttl), "%u", t->conf->report_store.keep_days * 86400u);
	for (size_t i = 0; i < b->n; i++) {
		struct pushed_row *p = &b->rows[i];
		char key[128];
		const char *hset[4] = {"HSET", key, p->field, p->value};
		size_t hlen[4] = {4, 0, strlen(p->field), p->len};
		const char *exp[3] = {"EXPIRE", key, ttl};
		size_t elen[3] = {6, 0, strlen(ttl)};

		if (p->value == NULL)
			continue;
		day_key(t, "rpt:", p->day, "", key, sizeof(key));
		hlen[1] = elen[1] = strlen(key);
		redisAppendCommandArgv(t->ctx, 4, hset, hlen);
		redisAppendCommandArgv(t->ctx, 3, exp, elen);
	}
	for (size_t i = 0; i < b->n; i++) {
		struct pushed_row *p = &b->rows[i];
		redisReply *r1 = NULL, *r2 = NULL;
		bool ok;

		if (p->value == NULL) {
			/* Pushing it again would fail again: it stays this gateway's alone. */
			log_warn(
			    "event=tlsrpt-shared domain=%s field=%s warning=\"a row out of the "
			    "shared format's bounds is not shared\"",
			    p->domain, p->field);
			(void)report_store_pushed(t->store, p->day, p->domain, p->type, p->version,
			                          NULL, 0);
			continue;
		}
		if (redisGetReply(t->ctx, (void **)&r1) != REDIS_OK ||
		    redisGetReply(t->ctx, (void **)&r2) != REDIS_OK) {
			snprintf(err, errlen, "redis: %s",
			         t->ctx->errstr[0] ? t->ctx->errstr : "no answer");
			freeReplyObject(r1);
			drop(t);
			return -1;
		}
		ok = r1->type == REDIS_REPLY_INTEGER && r2->type == REDIS_REPLY_INTEGER;
		if (!ok)
			snprintf(err, errlen, "redis: %.*s",
			         (int)(r1->type == REDIS_REPLY_ERROR ? r1->len : r2->len),
			         r1->type == REDIS_REPLY_ERROR ? r1->str
			         : r2->str != NULL             ? r2->str
			                                       : "?");
		freeReplyObject(r1);
		freeReplyObject(r2);
		if (!ok)
			return -1;
		if (report_store_pushed(t->store, p->day, p->domain, p->type, p->version, err,
		                        errlen) < 0)
			return -1;
		written++;
	}
	return written;
}

int
tlsrpt_shared_push(struct tlsrpt_shared *t, char *err, size_t errlen)
{
	struct push_batch b = {0};
	int total = 0;

	if ((b.rows = calloc(PUSH_BATCH, sizeof(*b.rows))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int round = 0; round < PUSH_ROUNDS; round++) {
		int n;

		b.n = 0;
		if (report_store_changed(t->store, PUSH_BATCH, collect, &b, err, errlen) < 0) {
			total = -1;
			break;
		}
		n = b.n > 0 ? push_batch(t, &b, err, errlen) : 0;
		for (size_t i = 0; i < b.n; i++)
			free(b.rows[i].value);
		if (n < 0) {
			total = -1;
			break;
		}
		total += n;
		COUNT(t, pushes, (uint64_t)n);
		if (b.n < PUSH_BATCH)
			break;
	}
	if (total < 0)
		COUNT(t, push_errors, 1);
	free(b.rows);
	return total;
}

/* --- merge ------------------------------------------------------------------------ */

/* printable - the first octets of an untrusted string, safe for a log line. */
static void
printable(char *out, size_t outlen, const redisReply *r)
{
	sts_printable(out, outlen, r->str, r->len < 80 ? r->len : 80);
}

int
tlsrpt_shared_merge(struct tlsrpt_shared *t, int64_t day, char *err, size_t errlen)
{
	const char *own = report_store_gateway(t->store);
	struct report_value **vals = NULL;
	struct report_store_row *rows = NULL;
	redisReply *r = NULL;
	char key[128];
	const char *argv[2] = {"HLEN", key};
	size_t lens[2] = {4, 0}, n = 0, bytes = 0;
	int ret = -1;

	day = sts_report_day_of(day);
	day_key(t, "rpt:", day, "", key, sizeof(key));
	lens[1] = strlen(key);
	if ((r = command(t, 2, argv, lens, err, errlen)) == NULL)
		return -1;
	if (r->type != REDIS_REPLY_INTEGER || r->integer > TLSRPT_SHARED_FIELDS_MAX) {
		snprintf(err, errlen, "redis %s: %lld rows, more than %d", key,
		         (long long)r->integer, TLSRPT_SHARED_FIELDS_MAX);
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	argv[0] = "HGETALL";
	lens[0] = 7;
	if ((r = command(t, 2, argv, lens, err, errlen)) == NULL)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0 ||
	    r->elements / 2 > TLSRPT_SHARED_FIELDS_MAX) {
		snprintf(err, errlen, "redis %s: not a hash of at most %d rows", key,
		         TLSRPT_SHARED_FIELDS_MAX);
		goto out;
	}
	if (r->elements > 0 && ((vals = calloc(r->elements / 2, sizeof(*vals))) == NULL ||
	                        (rows = calloc(r->elements / 2, sizeof(*rows))) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		const char *why = "not a string";
		struct report_value *rv = NULL;
		char shown[96];

		if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING) {
			if ((bytes += v->len) > MERGE_BYTES_MAX) {
				snprintf(err, errlen, "redis %s: more than %u octets", key,
				         MERGE_BYTES_MAX);
				goto out;
			}
			rv = report_value_decode(day, f->str, f->len, v->str, v->len, &why);
		}
		if (rv == NULL) {
			/* Written by someone who can write the database: never counted. */
			printable(shown, sizeof(shown), f);
			log_warn(
			    "event=tlsrpt-shared key=%s field=\"%s\" result=refused reason=\"%s\"",
			    key, shown, why);
			COUNT(t, refused, 1);
			continue;
		}
		if (strcmp(report_value_row(rv)->gateway, own) == 0) {
			report_value_free(rv); /* this gateway's counts come from its own store */
			continue;
		}
		vals[n] = rv;
		rows[n++] = *report_value_row(rv);
	}
	if ((ret = report_store_replace_others(t->store, day, rows, n, err, errlen)) >= 0)
		COUNT(t, merged, (uint64_t)ret);
out:
	for (size_t i = 0; i < n; i++)
		report_value_free(vals[i]);
	free(vals);
	free(rows);
	freeReplyObject(r);
	return ret;
}

/* --- the lock of a report ------------------------------------------------------------ */

enum tlsrpt_claim
tlsrpt_shared_claim(struct tlsrpt_shared *t, int64_t day, const char *domain, unsigned ttl_ms,
                    char *holder, char *err, size_t errlen)
{
	char lock[400], sent[400], ms[16], rest[STS_REPORT_DOMAIN_LEN + 2];
	const char *argv[7] = {
	    "EVAL", claim_script, "2", lock, sent, report_store_gateway(t->store), ms};
	size_t lens[7];
	enum tlsrpt_claim got = TLSRPT_CLAIM_DOWN;
	redisReply *r;

	snprintf(rest, sizeof(rest), ":%s", domain);
	day_key(t, "rpt-lock:", sts_report_day_of(day), rest, lock, sizeof(lock));
	day_key(t, "rpt-sent:", sts_report_day_of(day), rest, sent, sizeof(sent));
	snprintf(ms, sizeof(ms), "%u", ttl_ms);
	for (int i = 0; i < 7; i++)
		lens[i] = strlen(argv[i]);
	sts_strlcpy(holder, "?", REPORT_STORE_GATEWAY_LEN);
	if ((r = command(t, 7, argv, lens, err, errlen)) == NULL)
		return TLSRPT_CLAIM_DOWN;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		const redisReply *what = r->element[0], *who = r->element[1];

		if (who->len > 0 && who->len < REPORT_STORE_GATEWAY_LEN &&
		    strspn(who->str,
		           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		           ".-_") == who->len)
			sts_strlcpy(holder, who->str, REPORT_STORE_GATEWAY_LEN);
		if (strcmp(what->str, "ours") == 0)
			got = TLSRPT_CLAIM_OURS;
		else if (strcmp(what->str, "held") == 0)
			got = TLSRPT_CLAIM_HELD;
		else if (strcmp(what->str, "sent") == 0)
			got = TLSRPT_CLAIM_SENT;
	}
	if (got == TLSRPT_CLAIM_DOWN)
		snprintf(err, errlen, "redis: unexpected answer to the lock script");
	freeReplyObject(r);
	return got;
}

int
tlsrpt_shared_sent(struct tlsrpt_shared *t, int64_t day, const char *domain, char *err,
                   size_t errlen)
{
	char key[400], ttl[24], rest[STS_REPORT_DOMAIN_LEN + 2];
	const char *argv[5] = {"SET", key, report_store_gateway(t->store), "EX", ttl};
	size_t lens[5];
	redisReply *r;

	snprintf(rest, sizeof(rest), ":%s", domain);
	day_key(t, "rpt-sent:", sts_report_day_of(day), rest, key, sizeof(key));
	snprintf(ttl, sizeof(ttl), "%u", t->conf->report_store.keep_days * 86400u);
	for (int i = 0; i < 5; i++)
		lens[i] = strlen(argv[i]);
	if ((r = command(t, 5, argv, lens, err, errlen)) == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}
