/*
 * shared_state.c - the shared Redis as a second level behind each
 * gateway's own memory (see shared_state.h).
 *
 * Reads are bounded twice: the connection's command timeout (which drops
 * a connection that stopped answering) and, for a lookup, shared.wait_max,
 * after which the caller is told "miss" and goes on with its own path; a
 * late reply is then dropped. Writes are fire-and-forget: nothing waits
 * for them.
 *
 * Newest fetch wins: a policy is written by a script that compares the
 * fetch time it carries with the one already stored, so that a gateway
 * with an older copy (a slow fetch, a clock behind) never replaces a newer
 * one. The time a server was seen offering STARTTLS is only ever raised,
 * the same way.
 *
 * With Sentinels, the address of the master is asked of each Sentinel
 * when its connection comes up, and a +switch-master announcement moves
 * the command and subscription connections to the new master.
 */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/redis_loop.h"
#include "core/util.h"
#include "policy/shared_state.h"

#define SENTINELS_MAX 3     /* asked and listened to; more are not needed to learn the master */
#define SYNC_BATCH    500   /* keys per SCAN step of the server sync */
#define SYNC_MAX      65536 /* servers read at most per sync (srvmem's default size) */

/*
 * KEYS[1] the policy key; ARGV: value, its fetch time, seconds to live. A
 * tie (two fetches in one second) goes to the last writer: the domain may
 * have changed its id within that second, and every reader checks the id
 * against its own TXT answer anyway.
 */
static const char put_policy_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local f = string.match(cur, '\\nfetched=(%d+)\\n')\n"
    "  if f and tonumber(f) > tonumber(ARGV[2]) then return 0 end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])\n"
    "return 1\n";

/* KEYS[1] the server key; ARGV: unix time seen, seconds to live. */
static const char put_max_lua[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
                                  "if tonumber(ARGV[1]) > cur then\n"
                                  "  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n"
                                  "  return 1\n"
                                  "end\n"
                                  "return 0\n";

/*
 * KEYS[1] the policy key, KEYS[2] the fetch claim of (domain, id); ARGV:
 * the claim's milliseconds to live, the id wanted. Returns {value, 2} when
 * the stored policy has that id; otherwise {value or nil, 1} when this
 * caller now holds the claim (it fetches), {value or nil, 0} when another
 * gateway holds it (it is fetching that id now: wait for its store).
 */
static const char get_policy_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "local want = 'v1\\nid=' .. ARGV[2] .. '\\n'\n"
    "if v and string.sub(v, 1, #want) == want then return {v, 2} end\n"
    "if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {v or false, 1} end\n"
    "return {v or false, 0}\n";

#define CLAIM_POLL_MS 10 /* how often a gateway waiting for another's fetch asks again */

struct get_req {
	struct get_req *next, *prev;
	struct shared_state *s;
	uint64_t id;
	uint64_t cmd;         /* the Redis command */
	uint64_t timer;       /* wait_max */
	uint64_t poll;        /* the next ask while another gateway fetches */
	char key[80 + 254];   /* the policy key */
	char claim[80 + 300]; /* the fetch claim of (domain, id) */
	char want[40];        /* the TXT id asked for */
	shared_state_get_cb *cb;
	void *arg;
};

struct sentinel {
	struct shared_state *s;
	struct redis_loop *cmd; /* asks for the master */
	struct redis_loop *sub; /* hears +switch-master */
	uint64_t ask;
};

struct shared_state {
	struct loop *loop;
	const struct conf *conf;
	struct shared_stats *stats;
	shared_state_change_cb *on_change;
	shared_state_server_cb *on_server;
	void *arg;

	struct redis_loop *rc;  /* commands */
	struct redis_loop *sub; /* subscriptions; NULL unless subscribing */
	struct sentinel sentinels[SENTINELS_MAX];
	size_t n_sentinels;
	char master[64];             /* "ip port" the Sentinels named last; "" before */
	uint64_t sync_cmd;           /* the server sync's command in flight; 0: none */
	struct sync_step *sync_step; /* its MGET step, freed with s if still there */
	size_t sync_seen;            /* servers read by this sync */

	struct get_req *reqs;
	uint64_t next_id;
	char ch_policy[80], ch_srv[80];
};

static void
count(const struct shared_state *s, _Atomic uint64_t *c)
{
	if (s->stats != NULL)
		atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

#define COUNT(s, field)                                                                            \
	do {                                                                                       \
		if ((s)->stats != NULL)                                                            \
			count((s), &(s)->stats->field);                                            \
	} while (0)

struct sync_step;
static void sync_start(struct shared_state *s);

/* rc_state - the command connection: counted, and the server sync on each connect. */
static void
rc_state(void *arg, bool up)
{
	struct shared_state *s = arg;

	if (s->stats != NULL) {
		if (up)
			atomic_fetch_add_explicit(&s->stats->up, 1, memory_order_relaxed);
		else
			atomic_fetch_sub_explicit(&s->stats->up, 1, memory_order_relaxed);
	}
	if (!up)
		s->sync_cmd = 0; /* its reply comes back NULL */
	else if (s->on_server != NULL)
		sync_start(s);
}

static void
on_state(void *arg, bool up)
{
	struct shared_state *s = arg;

	if (s->stats == NULL)
		return;
	if (up)
		atomic_fetch_add_explicit(&s->stats->up, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&s->stats->up, 1, memory_order_relaxed);
}

/* --- subscriptions ------------------------------------------------------------ */

static void
on_message(void *arg, const char *channel, const char *payload, size_t len)
{
	struct shared_state *s = arg;
	char domain[254], id[STS_ID_MAX + 1];
	uint8_t addr[16];
	int family;
	int64_t seen;

	if (strcmp(channel, s->ch_policy) == 0) {
		if (shared_change_decode(payload, len, domain, id) < 0) {
			COUNT(s, refused);
			return;
		}
		COUNT(s, received);
		log_info("event=shared-change domain=%s id=%s", domain, id);
		if (s->on_change != NULL)
			s->on_change(s->arg, domain, id);
	} else if (strcmp(channel, s->ch_srv) == 0) {
		if (shared_server_decode(payload, len, &family, addr, &seen) < 0) {
			COUNT(s, refused);
			return;
		}
		COUNT(s, received);
		if (s->on_server != NULL)
			s->on_server(s->arg, family, addr, seen);
	}
}

/* --- Sentinel ------------------------------------------------------------------ */

static void
use_master(struct shared_state *s, const char *ip, const char *port)
{
	char *end;
	long p = strtol(port, &end, 10);
	unsigned char buf[16];

	if (*end != '\0' || p < 1 || p > 65535 ||
	    (inet_pton(AF_INET, ip, buf) != 1 && inet_pton(AF_INET6, ip, buf) != 1)) {
		log_warn("event=shared-sentinel result=invalid address=\"%s\" port=\"%s\"", ip,
		         port);
		return;
	}
	snprintf(s->master, sizeof(s->master), "%s %ld", ip, p);
	(void)redis_loop_target(s->rc, ip, (uint16_t)p);
	if (s->sub != NULL)
		(void)redis_loop_target(s->sub, ip, (uint16_t)p);
}

static void
ask_reply(void *arg, const struct redisReply *rep)
{
	struct sentinel *sn = arg;

	sn->ask = 0;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING) {
		COUNT(sn->s, errors);
		log_warn("event=shared-sentinel result=no-master master=%s",
		         sn->s->conf->shared.master);
		return;
	}
	use_master(sn->s, rep->element[0]->str, rep->element[1]->str);
}

static void
sentinel_state(void *arg, bool up)
{
	struct sentinel *sn = arg;
	const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", sn->s->conf->shared.master};

	if (up && sn->ask == 0)
		sn->ask = redis_loop_command(sn->cmd, 3, argv, NULL, ask_reply, sn);
}

/* "+switch-master <name> <old ip> <old port> <new ip> <new port>" */
static void
sentinel_message(void *arg, const char *channel, const char *payload, size_t len)
{
	struct sentinel *sn = arg;
	char buf[256], *w[5], *save = NULL;
	size_t n = 0;

	(void)channel;
	if (len >= sizeof(buf))
		return;
	memcpy(buf, payload, len);
	buf[len] = '\0';
	for (char *t = strtok_r(buf, " ", &save); t != NULL && n < 5;
	     t = strtok_r(NULL, " ", &save))
		w[n++] = t;
	if (n != 5 || strcmp(w[0], sn->s->conf->shared.master) != 0)
		return;
	log_notice("event=shared-failover master=%s address=%s port=%s", w[0], w[3], w[4]);
	use_master(sn->s, w[3], w[4]);
}

static int
sentinels_start(struct shared_state *s)
{
	const struct conf *c = s->conf;

	for (size_t i = 0; i < c->shared.n_sentinels && i < SENTINELS_MAX; i++) {
		struct sentinel *sn = &s->sentinels[s->n_sentinels];
		char host[INET6_ADDRSTRLEN];
		const struct sockaddr_storage *sa = &c->shared.sentinels[i].sa;
		uint16_t port;
		struct redis_loop_params p = {
		    .loop = s->loop,
		    .name = "sentinel",
		    .host = host,
		    .user = c->shared.sentinel_user,
		    .password = c->shared.sentinel_password,
		    .connect_timeout_ms = c->shared.connect_timeout,
		    .command_timeout_ms = c->shared.command_timeout,
		};

		if (sa->ss_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
		} else {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			port = ntohs(in6->sin6_port);
		}
		p.port = port;
		sn->s = s;
		p.on_state = sentinel_state;
		p.state_arg = sn;
		if ((sn->cmd = redis_loop_new(&p)) == NULL)
			return -1;
		p.on_state = NULL;
		if ((sn->sub = redis_loop_new(&p)) == NULL ||
		    redis_loop_subscribe(sn->sub, "+switch-master", sentinel_message, sn) < 0) {
			redis_loop_free(sn->cmd);
			redis_loop_free(sn->sub);
			return -1;
		}
		s->n_sentinels++;
	}
	return 0;
}

/* --- the object ------------------------------------------------------------------ */

/* --- the server sync --------------------------------------------------------------
 *
 * A gateway that was down or is new missed what the others published: on
 * each connect it reads every <prefix>srv:* key (SCAN, then MGET), at most
 * SYNC_MAX, one step at a time, feeding on_server as messages would.
 */

static void sync_scan(struct shared_state *s, const char *cursor);

/* A SCAN step whose values are asked for (MGET), and where the next step starts. */
struct sync_step {
	struct shared_state *s;
	char cursor[32];
	size_t n;
	char **keys;
};

static void
sync_step_free(struct sync_step *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->keys[i]);
	free(st->keys);
	free(st);
}

static void
sync_mget_reply(void *arg, const struct redisReply *rep)
{
	struct sync_step *st = arg;
	struct shared_state *s = st->s;
	size_t plen = strlen(s->conf->shared.prefix) + 4; /* "<prefix>srv:" */
	char buf[128];
	uint8_t addr[16];
	int family;
	int64_t seen;

	s->sync_cmd = 0;
	s->sync_step = NULL;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != st->n) {
		if (rep != NULL)
			COUNT(s, errors);
		sync_step_free(st);
		return;
	}
	for (size_t i = 0; i < st->n; i++) {
		const redisReply *v = rep->element[i];
		int n;

		if (v->type != REDIS_REPLY_STRING || strlen(st->keys[i]) <= plen)
			continue;
		n = snprintf(buf, sizeof(buf), "%s %.*s", st->keys[i] + plen, (int)v->len, v->str);
		if (n < 0 || (size_t)n >= sizeof(buf) ||
		    shared_server_decode(buf, (size_t)n, &family, addr, &seen) < 0) {
			COUNT(s, refused);
			continue;
		}
		COUNT(s, received);
		s->sync_seen++;
		s->on_server(s->arg, family, addr, seen);
	}
	if (strcmp(st->cursor, "0") != 0 && s->sync_seen < SYNC_MAX)
		sync_scan(s, st->cursor);
	else
		log_info("event=shared-sync servers=%zu", s->sync_seen);
	sync_step_free(st);
}

static void
sync_scan_reply(void *arg, const struct redisReply *rep)
{
	struct shared_state *s = arg;
	const redisReply *keys;
	struct sync_step *st;
	const char **argv;
	size_t *lens;

	s->sync_cmd = 0;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len >= 32 ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		if (rep != NULL) {
			COUNT(s, errors);
			log_notice("event=shared-sync result=failed reason=\"%s\"",
			           rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		}
		return;
	}
	keys = rep->element[1];
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return;
	st->s = s;
	memcpy(st->cursor, rep->element[0]->str, rep->element[0]->len);
	st->cursor[rep->element[0]->len] = '\0';
	if (keys->elements == 0) {
		if (strcmp(st->cursor, "0") != 0)
			sync_scan(s, st->cursor);
		else
			log_info("event=shared-sync servers=%zu", s->sync_seen);
		sync_step_free(st);
		return;
	}
	if (keys->elements > SYNC_BATCH * 4 ||
	    (st->keys = calloc(keys->elements, sizeof(*st->keys))) == NULL ||
	    (argv = calloc(keys->elements + 1, sizeof(*argv))) == NULL) {
		sync_step_free(st);
		return;
	}
	if ((lens = calloc(keys->elements + 1, sizeof(*lens))) == NULL) {
		free(argv);
		sync_step_free(st);
		return;
	}
	argv[0] = "MGET";
	lens[0] = 4;
	for (size_t i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		if (k->type != REDIS_REPLY_STRING ||
		    (st->keys[st->n] = strndup(k->str, k->len)) == NULL)
			continue;
		argv[st->n + 1] = st->keys[st->n];
		lens[st->n + 1] = strlen(st->keys[st->n]);
		st->n++;
	}
	if (st->n == 0 || (s->sync_cmd = redis_loop_command(s->rc, (int)st->n + 1, argv, lens,
	                                                    sync_mget_reply, st)) == 0)
		sync_step_free(st);
	else
		s->sync_step = st;
	free(argv);
	free(lens);
}

static void
sync_scan(struct shared_state *s, const char *cursor)
{
	char match[96], count[16];
	const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", count};

	snprintf(match, sizeof(match), "%ssrv:*", s->conf->shared.prefix);
	snprintf(count, sizeof(count), "%d", SYNC_BATCH);
	s->sync_cmd = redis_loop_command(s->rc, 6, argv, NULL, sync_scan_reply, s);
}

static void
sync_start(struct shared_state *s)
{
	s->sync_seen = 0;
	sync_scan(s, "0");
}

static struct redis_loop *
data_conn(struct shared_state *s, const char *name)
{
	const struct conf *c = s->conf;
	char host[INET6_ADDRSTRLEN] = "";
	struct redis_loop_params p = {
	    .loop = s->loop,
	    .name = name,
	    .user = c->shared.user,
	    .password = c->shared.password,
	    .connect_timeout_ms = c->shared.connect_timeout,
	    .command_timeout_ms = c->shared.command_timeout,
	    .on_state = strcmp(name, "shared") == 0 ? rc_state : on_state,
	    .state_arg = s,
	};
	struct redis_loop *r;

	if (c->shared.redis_path != NULL) {
		p.path = c->shared.redis_path;
	} else if (c->shared.redis != NULL) {
		const struct sockaddr_storage *sa = &c->shared.redis->sa;
		if (sa->ss_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			p.port = ntohs(in->sin_port);
		} else {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			p.port = ntohs(in6->sin6_port);
		}
		p.host = host;
	} /* else: Sentinels name the master later */
	if ((r = redis_loop_new(&p)) != NULL && s->stats != NULL)
		atomic_fetch_add_explicit(&s->stats->conns, 1, memory_order_relaxed);
	return r;
}

struct shared_state *
shared_state_new(const struct shared_state_params *p)
{
	struct shared_state *s;
	const char *prefix = p->conf->shared.prefix;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->loop = p->loop;
	s->conf = p->conf;
	s->stats = p->stats;
	s->on_change = p->on_change;
	s->on_server = p->on_server;
	s->arg = p->arg;
	s->next_id = 1;
	snprintf(s->ch_policy, sizeof(s->ch_policy), "%spolicy", prefix);
	snprintf(s->ch_srv, sizeof(s->ch_srv), "%ssrv", prefix);
	if ((s->rc = data_conn(s, "shared")) == NULL)
		goto fail;
	if (p->subscribe) {
		if ((s->sub = data_conn(s, "shared-sub")) == NULL ||
		    (s->on_change != NULL &&
		     redis_loop_subscribe(s->sub, s->ch_policy, on_message, s) < 0) ||
		    (s->on_server != NULL &&
		     redis_loop_subscribe(s->sub, s->ch_srv, on_message, s) < 0))
			goto fail;
	}
	if (p->conf->shared.n_sentinels > 0 && sentinels_start(s) < 0)
		goto fail;
	return s;
fail:
	log_err("event=shared-state result=failed reason=\"out of memory\"");
	shared_state_free(s);
	return NULL;
}

static void
conn_free(struct shared_state *s, struct redis_loop *r)
{
	if (r == NULL)
		return;
	if (s->stats != NULL) {
		atomic_fetch_sub_explicit(&s->stats->conns, 1, memory_order_relaxed);
		if (redis_loop_up(r))
			atomic_fetch_sub_explicit(&s->stats->up, 1, memory_order_relaxed);
	}
	redis_loop_free(r);
}

void
shared_state_free(struct shared_state *s)
{
	if (s == NULL)
		return;
	while (s->reqs != NULL) {
		struct get_req *g = s->reqs;
		s->reqs = g->next;
		loop_timer_cancel(s->loop, g->timer);
		free(g);
	}
	for (size_t i = 0; i < s->n_sentinels; i++) {
		redis_loop_free(s->sentinels[i].cmd);
		redis_loop_free(s->sentinels[i].sub);
	}
	conn_free(s, s->rc);
	conn_free(s, s->sub);
	if (s->sync_step != NULL)
		sync_step_free(s->sync_step);
	free(s);
}

bool
shared_state_up(const struct shared_state *s)
{
	return s != NULL && redis_loop_up(s->rc);
}

/* --- lookups ---------------------------------------------------------------------- */

static void
req_unlink(struct shared_state *s, struct get_req *g)
{
	if (g->prev != NULL)
		g->prev->next = g->next;
	else
		s->reqs = g->next;
	if (g->next != NULL)
		g->next->prev = g->prev;
}

/* req_done - deliver p (NULL: miss) and free g. */
static void
req_done(struct get_req *g, const struct shared_policy *p)
{
	struct shared_state *s = g->s;
	shared_state_get_cb *cb = g->cb;
	void *arg = g->arg;

	req_unlink(s, g);
	loop_timer_cancel(s->loop, g->timer);
	loop_timer_cancel(s->loop, g->poll);
	redis_loop_cancel(s->rc, g->cmd);
	free(g);
	if (p != NULL)
		COUNT(s, hits);
	else
		COUNT(s, misses);
	cb(arg, p);
}

static int get_ask(struct get_req *g);

static void
get_poll(struct loop *loop, void *arg)
{
	struct get_req *g = arg;

	(void)loop;
	g->poll = 0;
	if (get_ask(g) < 0) {
		COUNT(g->s, errors);
		req_done(g, NULL);
	}
}

static void
get_reply(void *arg, const struct redisReply *rep)
{
	struct get_req *g = arg;
	const struct redisReply *v;
	struct shared_policy p;
	const char *why = "";

	g->cmd = 0;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_INTEGER) {
		COUNT(g->s, errors);
		req_done(g, NULL);
		return;
	}
	v = rep->element[0];
	if (rep->element[1]->integer == 0) {
		/* Another gateway is fetching this id: ask again until wait_max. */
		if ((g->poll = loop_timer_add(g->s->loop, CLAIM_POLL_MS, get_poll, g)) == 0)
			req_done(g, NULL);
		else
			COUNT(g->s, waits);
		return;
	}
	if (v->type != REDIS_REPLY_STRING) {
		req_done(g, NULL); /* nil: nobody stored it */
		return;
	}
	if (shared_policy_decode(v->str, v->len, &p, &why) < 0) {
		COUNT(g->s, refused);
		log_notice("event=shared-policy result=invalid reason=\"%s\"", why);
		req_done(g, NULL);
		return;
	}
	req_done(g, &p);
}

static void
get_timeout(struct loop *loop, void *arg)
{
	struct get_req *g = arg;

	(void)loop;
	g->timer = 0;
	req_done(g, NULL);
}

/* get_ask - send g's script: the policy, or the claim to fetch it. 0, or -1. */
static int
get_ask(struct get_req *g)
{
	char hold[24];
	const char *argv[7] = {"EVAL", get_policy_lua, "2", g->key, g->claim, hold, g->want};

	/* A claim lasts as long as a fetch may take; the store ends the wait sooner. */
	snprintf(hold, sizeof(hold), "%u",
	         1000u * (g->s->conf->sts.fetch_timeout + g->s->conf->dns.timeout));
	return (g->cmd = redis_loop_command(g->s->rc, 7, argv, NULL, get_reply, g)) == 0 ? -1 : 0;
}

uint64_t
shared_state_get(struct shared_state *s, const char *domain, const char *id,
                 shared_state_get_cb *cb, void *arg)
{
	struct get_req *g;

	if (!shared_state_up(s) || (g = calloc(1, sizeof(*g))) == NULL)
		return 0;
	snprintf(g->key, sizeof(g->key), "%spolicy:%s", s->conf->shared.prefix, domain);
	snprintf(g->claim, sizeof(g->claim), "%sfetch:%s:%s", s->conf->shared.prefix, domain, id);
	sts_strlcpy(g->want, id, sizeof(g->want));
	g->s = s;
	g->cb = cb;
	g->arg = arg;
	if (get_ask(g) < 0 ||
	    (g->timer = loop_timer_add(s->loop, s->conf->shared.wait_max, get_timeout, g)) == 0) {
		redis_loop_cancel(s->rc, g->cmd);
		COUNT(s, errors);
		free(g);
		return 0;
	}
	g->id = s->next_id++;
	g->next = s->reqs;
	if (s->reqs != NULL)
		s->reqs->prev = g;
	s->reqs = g;
	return g->id;
}

void
shared_state_cancel(struct shared_state *s, uint64_t id)
{
	if (s == NULL || id == 0)
		return;
	for (struct get_req *g = s->reqs; g != NULL; g = g->next)
		if (g->id == id) {
			req_unlink(s, g);
			loop_timer_cancel(s->loop, g->timer);
			loop_timer_cancel(s->loop, g->poll);
			redis_loop_cancel(s->rc, g->cmd);
			free(g);
			return;
		}
}

/* --- writes --------------------------------------------------------------------------- */

static void
write_reply(void *arg, const struct redisReply *rep)
{
	struct shared_state *s = arg;

	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		COUNT(s, errors);
		log_debug("event=shared-write result=failed reason=\"%s\"",
		          rep != NULL ? rep->str : "no answer");
	}
}

static void
send_or_count(struct shared_state *s, int argc, const char **argv, const size_t *lens)
{
	if (redis_loop_command(s->rc, argc, argv, lens, write_reply, s) == 0)
		COUNT(s, errors);
}

void
shared_state_put(struct shared_state *s, const char *domain, const struct shared_policy *p,
                 bool changed)
{
	char key[80 + 254], fetched[24], ttl[24], msg[300];
	char *value;
	size_t vlen;
	int64_t now = sts_now_wall();

	if (!shared_state_up(s) || p->expires_at <= now)
		return;
	/* Loops run on several threads: the value is built per call. */
	if ((value = malloc(SHARED_VALUE_MAX)) == NULL)
		return;
	if ((vlen = shared_policy_encode(p, value, SHARED_VALUE_MAX)) == 0) {
		free(value);
		return;
	}
	snprintf(key, sizeof(key), "%spolicy:%s", s->conf->shared.prefix, domain);
	snprintf(fetched, sizeof(fetched), "%lld", (long long)p->fetched_at);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(p->expires_at - now));
	{
		const char *av[7] = {"EVAL", put_policy_lua, "1", key, value, fetched, ttl};
		size_t lv[7] = {4,    strlen(put_policy_lua), 1,          strlen(key),
		                vlen, strlen(fetched),        strlen(ttl)};
		send_or_count(s, 7, av, lv);
	}
	free(value); /* hiredis keeps its own copy of the command */
	COUNT(s, stores);
	if (changed) {
		int n = snprintf(msg, sizeof(msg), "%s %s", domain, p->id);
		const char *av[3] = {"PUBLISH", s->ch_policy, msg};
		size_t lv[3] = {7, strlen(s->ch_policy), (size_t)n};

		send_or_count(s, 3, av, lv);
		COUNT(s, publishes);
	}
}

void
shared_state_server(struct shared_state *s, int family, const uint8_t *addr, int64_t seen,
                    unsigned ttl)
{
	char msg[96], key[80 + 64], seen_s[24], ttl_s[24];
	size_t n;

	if (!shared_state_up(s) ||
	    (n = shared_server_encode(family, addr, seen, msg, sizeof(msg))) == 0)
		return;
	snprintf(key, sizeof(key), "%ssrv:%.*s", s->conf->shared.prefix,
	         (int)(strchr(msg, ' ') - msg), msg);
	snprintf(seen_s, sizeof(seen_s), "%lld", (long long)seen);
	snprintf(ttl_s, sizeof(ttl_s), "%u", ttl != 0 ? ttl : 1);
	{
		const char *av[6] = {"EVAL", put_max_lua, "1", key, seen_s, ttl_s};
		send_or_count(s, 6, av, NULL);
	}
	{
		const char *av[3] = {"PUBLISH", s->ch_srv, msg};
		size_t lv[3] = {7, strlen(s->ch_srv), n};
		send_or_count(s, 3, av, lv);
	}
	COUNT(s, publishes);
}

void
shared_state_describe(const struct shared_state *s, char *buf, size_t len)
{
	const struct conf *c = s->conf;
	struct redis_loop_stats st;
	char where[128];

	if (c->shared.redis_path != NULL)
		snprintf(where, sizeof(where), "%s", c->shared.redis_path);
	else if (c->shared.redis != NULL)
		snprintf(where, sizeof(where), "%s", c->shared.redis->text);
	else
		snprintf(where, sizeof(where), "sentinel:%s(%s)", c->shared.master,
		         s->master[0] != '\0' ? s->master : "unknown");
	redis_loop_stats(s->rc, &st);
	if (redis_loop_up(s->rc))
		snprintf(buf, len, "redis=%s up", where);
	else
		snprintf(buf, len, "redis=%s down (%s)", where,
		         st.last_error[0] != '\0' ? st.last_error : "not connected yet");
}
