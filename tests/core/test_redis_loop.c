// sources: core/redis_loop.c core/loop.c core/log.c
/*
 * test_redis_loop.c - the Redis connection on the loop, against a real
 * redis-server on a unix socket in a temporary directory: commands and
 * replies, refusal while down, publish and subscribe, a server that dies
 * and comes back, a command that outlives its timeout, ACL users, cancel
 * and free from inside a callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "core/loop.h"
#include "core/redis_loop.h"
#include "tests/core/redis_server.h"

static struct redis_server srv;

struct rec {
	int replies;
	int nulls;
	int type;
	char str[128];
	int ups, downs;
	int messages;
	char msg[128];
	bool in_call; /* a callback that ran inside redis_loop_command() would see it */
	bool reentered;
	struct redis_loop *free_me;
};

static void
on_reply(void *arg, const struct redisReply *rep)
{
	struct rec *r = arg;

	if (r->in_call)
		r->reentered = true;
	r->replies++;
	if (rep == NULL) {
		r->nulls++;
		return;
	}
	r->type = rep->type;
	snprintf(r->str, sizeof(r->str), "%.*s", rep->str != NULL ? (int)rep->len : 0,
	         rep->str != NULL ? rep->str : "");
	if (r->free_me != NULL) {
		redis_loop_free(r->free_me);
		r->free_me = NULL;
	}
}

static void
on_state(void *arg, bool up)
{
	struct rec *r = arg;

	if (up)
		r->ups++;
	else
		r->downs++;
}

static void
on_message(void *arg, const char *channel, const char *payload, size_t len)
{
	struct rec *r = arg;

	(void)channel;
	r->messages++;
	snprintf(r->msg, sizeof(r->msg), "%.*s", (int)len, payload);
}

/* run - the loop until *done is reached or ms pass; true if reached. */
static bool
run_until(struct loop *l, const int *counter, int want, unsigned ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (*counter >= want)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			return false;
		loop_once(l, 20);
	}
}

static struct redis_loop *
connect_to(struct loop *l, struct rec *rec, const char *user, const char *password)
{
	struct redis_loop_params p = {
	    .loop = l,
	    .name = "test",
	    .path = srv.sock,
	    .user = user,
	    .password = password,
	    .connect_timeout_ms = 500,
	    .command_timeout_ms = 300,
	    .backoff_min_ms = 20,
	    .backoff_max_ms = 100,
	    .on_state = on_state,
	    .state_arg = rec,
	};
	return redis_loop_new(&p);
}

static uint64_t
cmd(struct redis_loop *r, struct rec *rec, int argc, const char **argv)
{
	uint64_t id;

	rec->in_call = true;
	id = redis_loop_command(r, argc, argv, NULL, on_reply, rec);
	rec->in_call = false;
	return id;
}

static int
setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	if (!redis_server_available()) {
		fprintf(stderr, "SKIP: redis-server is not installed (apt-get install "
		                "redis-server)\n");
		return 0;
	}
	return redis_server_start(&srv);
}

static int
teardown(void **state)
{
	(void)state;
	redis_server_stop(&srv);
	return 0;
}

#define NEED_SERVER()                                                                              \
	do {                                                                                       \
		if (srv.pid <= 0)                                                                  \
			skip();                                                                    \
	} while (0)

static void
command_round_trip(void **state)
{
	struct loop *l = loop_new();
	struct rec rec = {0};
	struct redis_loop *r;
	const char *set[] = {"SET", "t:k", "v1"}, *get[] = {"GET", "t:k"};

	(void)state;
	NEED_SERVER();
	r = connect_to(l, &rec, NULL, NULL);
	assert_non_null(r);
	assert_false(redis_loop_up(r));
	assert_int_equal(cmd(r, &rec, 3, set), 0); /* not up yet: refused, no callback */
	assert_true(run_until(l, &rec.ups, 1, 2000));
	assert_true(redis_loop_up(r));
	assert_int_not_equal(cmd(r, &rec, 3, set), 0);
	assert_int_not_equal(cmd(r, &rec, 2, get), 0);
	assert_int_equal(rec.replies, 0);
	assert_true(run_until(l, &rec.replies, 2, 2000));
	assert_false(rec.reentered);
	assert_int_equal(rec.type, REDIS_REPLY_STRING);
	assert_string_equal(rec.str, "v1");
	redis_loop_free(r);
	loop_free(l);
}

static void
publish_reaches_subscriber(void **state)
{
	struct loop *l = loop_new();
	struct rec pub = {0}, sub = {0};
	struct redis_loop *rp, *rs;
	const char *msg[] = {"PUBLISH", "t:chan", "hello"};

	(void)state;
	NEED_SERVER();
	rp = connect_to(l, &pub, NULL, NULL);
	rs = connect_to(l, &sub, NULL, NULL);
	assert_int_equal(redis_loop_subscribe(rs, "t:chan", on_message, &sub), 0);
	assert_int_equal(redis_loop_subscribe(rs, "t:other", on_message, &sub), 0);
	assert_true(run_until(l, &pub.ups, 1, 2000));
	assert_true(run_until(l, &sub.ups, 1, 2000));
	/* the SUBSCRIBE went out behind the PING: let it land */
	for (int i = 0; i < 5; i++)
		loop_once(l, 20);
	assert_int_not_equal(cmd(rp, &pub, 3, msg), 0);
	assert_true(run_until(l, &sub.messages, 1, 2000));
	assert_string_equal(sub.msg, "hello");
	for (int i = 0; i < 5; i++)
		loop_once(l, 20);
	assert_int_equal(sub.messages, 1); /* once, whatever else is subscribed */
	assert_true(run_until(l, &pub.replies, 1, 2000));
	assert_int_equal(pub.type, REDIS_REPLY_INTEGER);
	redis_loop_free(rp);
	redis_loop_free(rs);
	loop_free(l);
}

static void
server_restart_reconnects_and_resubscribes(void **state)
{
	struct loop *l = loop_new();
	struct rec pub = {0}, sub = {0};
	struct redis_loop *rp, *rs;
	const char *msg[] = {"PUBLISH", "t:chan", "again"};
	const char *get[] = {"GET", "t:k"};

	(void)state;
	NEED_SERVER();
	rp = connect_to(l, &pub, NULL, NULL);
	rs = connect_to(l, &sub, NULL, NULL);
	assert_int_equal(redis_loop_subscribe(rs, "t:chan", on_message, &sub), 0);
	assert_true(run_until(l, &pub.ups, 1, 2000));
	assert_true(run_until(l, &sub.ups, 1, 2000));

	redis_server_kill(&srv);
	assert_true(run_until(l, &pub.downs, 1, 2000));
	assert_true(run_until(l, &sub.downs, 1, 2000));
	assert_false(redis_loop_up(rp));
	assert_int_equal(cmd(rp, &pub, 2, get), 0); /* down: refused at once */
	/* a few failed connects back off without ever blocking the loop */
	for (int i = 0; i < 10; i++)
		loop_once(l, 20);

	assert_int_equal(redis_server_start(&srv), 0);
	assert_true(run_until(l, &pub.ups, 2, 3000));
	assert_true(run_until(l, &sub.ups, 2, 3000));
	for (int i = 0; i < 5; i++)
		loop_once(l, 20);
	assert_int_not_equal(cmd(rp, &pub, 3, msg), 0);
	assert_true(run_until(l, &sub.messages, 1, 2000));
	assert_string_equal(sub.msg, "again");
	redis_loop_free(rp);
	redis_loop_free(rs);
	loop_free(l);
}

static void
command_timeout_drops_and_reconnects(void **state)
{
	struct loop *l = loop_new();
	struct rec rec = {0};
	struct redis_loop *r;
	const char *blpop[] = {"BLPOP", "t:never", "5"}, *ping[] = {"PING"};
	struct redis_loop_stats st;

	(void)state;
	NEED_SERVER();
	r = connect_to(l, &rec, NULL, NULL);
	assert_true(run_until(l, &rec.ups, 1, 2000));
	assert_int_not_equal(cmd(r, &rec, 3, blpop), 0);
	assert_true(run_until(l, &rec.replies, 1, 1500)); /* 300 ms, not 5 s */
	assert_int_equal(rec.nulls, 1);
	assert_int_equal(rec.downs, 1);
	redis_loop_stats(r, &st);
	assert_int_equal(st.timeouts, 1);
	assert_true(run_until(l, &rec.ups, 2, 2000));
	assert_int_not_equal(cmd(r, &rec, 1, ping), 0);
	assert_true(run_until(l, &rec.replies, 2, 2000));
	assert_string_equal(rec.str, "PONG");
	redis_loop_free(r);
	loop_free(l);
}

static void
acl_user_and_wrong_password(void **state)
{
	struct loop *l = loop_new();
	struct rec admin = {0}, good = {0}, bad = {0};
	struct redis_loop *ra, *rg, *rb;
	const char *acl[] = {"ACL", "SETUSER", "gw", "on", ">s3cret", "~t:*", "+get", "+ping"};
	const char *get[] = {"GET", "t:k"}, *set[] = {"SET", "t:k", "x"};

	(void)state;
	NEED_SERVER();
	ra = connect_to(l, &admin, NULL, NULL);
	assert_true(run_until(l, &admin.ups, 1, 2000));
	assert_int_not_equal(cmd(ra, &admin, 8, acl), 0);
	assert_true(run_until(l, &admin.replies, 1, 2000));
	assert_string_equal(admin.str, "OK");

	rg = connect_to(l, &good, "gw", "s3cret");
	rb = connect_to(l, &bad, "gw", "wrong");
	assert_true(run_until(l, &good.ups, 1, 2000));
	assert_int_not_equal(cmd(rg, &good, 2, get), 0);
	assert_true(run_until(l, &good.replies, 1, 2000));
	assert_int_not_equal(cmd(rg, &good, 3, set), 0); /* not allowed: an error reply */
	assert_true(run_until(l, &good.replies, 2, 2000));
	assert_int_equal(good.type, REDIS_REPLY_ERROR);
	for (int i = 0; i < 20; i++)
		loop_once(l, 20);
	assert_int_equal(bad.ups, 0);
	assert_false(redis_loop_up(rb));
	redis_loop_free(ra);
	redis_loop_free(rg);
	redis_loop_free(rb);
	loop_free(l);
}

static void
cancel_and_free_inside_callback(void **state)
{
	struct loop *l = loop_new();
	struct rec rec = {0}, other = {0};
	struct redis_loop *r;
	const char *ping[] = {"PING"};
	uint64_t id;

	(void)state;
	NEED_SERVER();
	r = connect_to(l, &rec, NULL, NULL);
	assert_true(run_until(l, &rec.ups, 1, 2000));
	id = redis_loop_command(r, 1, ping, NULL, on_reply, &other);
	assert_int_not_equal(id, 0);
	redis_loop_cancel(r, id);
	rec.free_me = r; /* the reply's callback frees the connection */
	assert_int_not_equal(cmd(r, &rec, 1, ping), 0);
	assert_true(run_until(l, &rec.replies, 1, 2000));
	assert_int_equal(other.replies, 0);
	assert_null(rec.free_me);
	for (int i = 0; i < 5; i++)
		loop_once(l, 10);
	loop_free(l);
}

static void
unreachable_never_blocks(void **state)
{
	struct loop *l = loop_new();
	struct rec rec = {0};
	struct redis_loop_params p = {
	    .loop = l, .name = "test", .path = "/nonexistent/redis.sock", .backoff_min_ms = 10};
	struct redis_loop *r;
	struct redis_loop_stats st;

	(void)state;
	p.on_state = on_state;
	p.state_arg = &rec;
	r = redis_loop_new(&p);
	assert_non_null(r);
	for (int i = 0; i < 10; i++)
		loop_once(l, 20);
	redis_loop_stats(r, &st);
	assert_true(st.failures >= 2);
	assert_int_equal(rec.ups, 0);
	redis_loop_free(r);
	loop_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(command_round_trip),
	    cmocka_unit_test(publish_reaches_subscriber),
	    cmocka_unit_test(server_restart_reconnects_and_resubscribes),
	    cmocka_unit_test(command_timeout_drops_and_reconnects),
	    cmocka_unit_test(acl_user_and_wrong_password),
	    cmocka_unit_test(cancel_and_free_inside_callback),
	    cmocka_unit_test(unreachable_never_blocks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
