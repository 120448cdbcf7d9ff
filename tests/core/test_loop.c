// sources: core/loop.c
/*
 * test_loop.c - the event loop: fd readiness through pipes and socket
 * pairs, timer order and cancellation, and callbacks that change the loop
 * while it dispatches.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"

/* --- fd events ------------------------------------------------------------ */

struct fd_rec {
	int calls;
	int last_fd;
	int last_events;
};

static void
fd_record(struct loop *loop, int fd, int events, void *arg)
{
	struct fd_rec *r = arg;

	(void)loop;
	r->calls++;
	r->last_fd = fd;
	r->last_events = events;
}

static void
pipe_read_ready(void **state)
{
	struct loop *loop = loop_new();
	struct fd_rec rec = {0};
	int p[2];

	(void)state;
	assert_non_null(loop);
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(loop_fd_add(loop, p[0], LOOP_READ, fd_record, &rec), 0);

	/* Nothing written: nothing to dispatch. */
	assert_int_equal(loop_once(loop, 0), 0);
	assert_int_equal(rec.calls, 0);

	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.last_fd, p[0]);
	assert_int_equal(rec.last_events, LOOP_READ);

	/* Level-triggered: still readable until drained. */
	assert_int_equal(loop_once(loop, 0), 1);
	assert_int_equal(rec.calls, 2);

	loop_fd_del(loop, p[0]);
	assert_int_equal(loop_once(loop, 0), 0);
	assert_int_equal(rec.calls, 2);

	close(p[0]);
	close(p[1]);
	loop_free(loop);
}

static void
socketpair_write_ready_and_mod(void **state)
{
	struct loop *loop = loop_new();
	struct fd_rec rec = {0};
	int sv[2];

	(void)state;
	assert_non_null(loop);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_WRITE, fd_record, &rec), 0);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.last_events, LOOP_WRITE);

	/* Readable and writable, but only read is asked for. */
	assert_int_equal(write(sv[1], "y", 1), 1);
	assert_int_equal(loop_fd_mod(loop, sv[0], LOOP_READ), 0);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.last_events, LOOP_READ);
	/* The same mask again: nothing changes. */
	assert_int_equal(loop_fd_mod(loop, sv[0], LOOP_READ), 0);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.last_events, LOOP_READ);
	assert_int_equal(loop_fd_mod(loop, 5000, LOOP_READ), -1);

	assert_int_equal(loop_fd_mod(loop, sv[0], LOOP_READ | LOOP_WRITE), 0);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.last_events, LOOP_READ | LOOP_WRITE);

	/* A mask of 0 pauses the fd. */
	assert_int_equal(loop_fd_mod(loop, sv[0], 0), 0);
	assert_int_equal(loop_once(loop, 0), 0);
	assert_int_equal(rec.calls, 4);
	/* ... even when the peer hangs up (epoll reports HUP for any mask). */
	close(sv[1]);
	assert_int_equal(loop_once(loop, 0), 0);
	assert_int_equal(rec.calls, 4);

	/* Resumed: the hang-up is reported as both read and write. */
	assert_int_equal(loop_fd_mod(loop, sv[0], LOOP_READ), 0);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.last_events, LOOP_READ | LOOP_WRITE);

	loop_fd_del(loop, sv[0]);
	close(sv[0]);
	loop_free(loop);
}

static void
hangup_reported_as_read_write(void **state)
{
	struct loop *loop = loop_new();
	struct fd_rec rec = {0};
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	/* A write-only registration still learns of the hang-up. */
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_WRITE, fd_record, &rec), 0);
	assert_int_equal(shutdown(sv[1], SHUT_RDWR), 0);
	close(sv[1]);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.last_events, LOOP_READ | LOOP_WRITE);
	loop_fd_del(loop, sv[0]);
	close(sv[0]);
	loop_free(loop);
}

static void
fd_errors(void **state)
{
	struct loop *loop = loop_new();
	struct fd_rec rec = {0};
	int p[2];

	(void)state;
	assert_int_equal(loop_fd_add(loop, -1, LOOP_READ, fd_record, &rec), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(loop_fd_mod(loop, 5000, LOOP_READ), -1);
	assert_int_equal(errno, ENOENT);
	loop_fd_del(loop, 5000); /* ignored */
	loop_fd_del(loop, -3);   /* ignored */

	/* A closed fd cannot be added; the table entry stays free. */
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(loop_fd_add(loop, p[0], LOOP_READ, fd_record, &rec), -1);
	assert_int_equal(loop_fd_mod(loop, p[0], LOOP_READ), -1);
	loop_free(loop);
	loop_free(NULL);
}

static void
fd_add_replaces(void **state)
{
	struct loop *loop = loop_new();
	struct fd_rec a = {0}, b = {0};
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(loop_fd_add(loop, p[0], LOOP_READ, fd_record, &a), 0);
	assert_int_equal(loop_fd_add(loop, p[0], LOOP_READ, fd_record, &b), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	loop_fd_del(loop, p[0]);
	close(p[0]);
	close(p[1]);
	loop_free(loop);
}

/* A high fd number makes the table grow. */
static void
fd_table_grows(void **state)
{
	struct loop *loop = loop_new();
	struct fd_rec rec = {0};
	int p[2], hi;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	hi = fcntl(p[0], F_DUPFD_CLOEXEC, 700);
	assert_true(hi >= 700);
	assert_int_equal(loop_fd_add(loop, hi, LOOP_READ, fd_record, &rec), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(rec.last_fd, hi);
	loop_fd_del(loop, hi);
	close(hi);
	close(p[0]);
	close(p[1]);
	loop_free(loop);
}

/* Two ready fds; whichever runs first deletes the other, which must not run. */
struct del_pair {
	int fd[2];
	int calls[2];
	int deleted_self;
};

static void
fd_delete_other(struct loop *loop, int fd, int events, void *arg)
{
	struct del_pair *d = arg;
	int me = fd == d->fd[0] ? 0 : 1;

	(void)events;
	d->calls[me]++;
	loop_fd_del(loop, d->fd[1 - me]);
}

static void
callback_deletes_other_ready_fd(void **state)
{
	struct loop *loop = loop_new();
	struct del_pair d = {0};
	int p1[2], p2[2];

	(void)state;
	assert_int_equal(pipe2(p1, O_NONBLOCK), 0);
	assert_int_equal(pipe2(p2, O_NONBLOCK), 0);
	d.fd[0] = p1[0];
	d.fd[1] = p2[0];
	assert_int_equal(loop_fd_add(loop, p1[0], LOOP_READ, fd_delete_other, &d), 0);
	assert_int_equal(loop_fd_add(loop, p2[0], LOOP_READ, fd_delete_other, &d), 0);
	assert_int_equal(write(p1[1], "x", 1), 1);
	assert_int_equal(write(p2[1], "x", 1), 1);

	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(d.calls[0] + d.calls[1], 1);

	/* The survivor keeps firing; the deleted one never does. */
	int survivor = d.calls[0] == 1 ? 0 : 1;
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(d.calls[survivor], 2);
	assert_int_equal(d.calls[1 - survivor], 0);

	loop_fd_del(loop, p1[0]);
	loop_fd_del(loop, p2[0]);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
	loop_free(loop);
}

/*
 * The first callback deletes the other fd, closes it, and a new pipe takes
 * the same fd number with a new registration: the stale event from the
 * batch must not reach the new registration.
 */
struct reuse_ctx {
	int fd[2];
	int wfd[2];
	int first;
	int calls_old;
	struct fd_rec fresh;
	int new_w;
};

static void
fd_delete_reuse(struct loop *loop, int fd, int events, void *arg)
{
	struct reuse_ctx *c = arg;
	int other, np[2];

	(void)events;
	c->calls_old++;
	if (c->first != -1)
		return;
	c->first = fd;
	other = fd == c->fd[0] ? c->fd[1] : c->fd[0];
	loop_fd_del(loop, other);
	close(other);
	assert_int_equal(pipe2(np, O_NONBLOCK), 0);
	assert_int_equal(np[0], other); /* lowest free number */
	c->new_w = np[1];
	assert_int_equal(loop_fd_add(loop, np[0], LOOP_READ, fd_record, &c->fresh), 0);
}

static void
callback_deletes_and_reuses_fd_number(void **state)
{
	struct loop *loop = loop_new();
	struct reuse_ctx c = {.first = -1};
	int p1[2], p2[2];

	(void)state;
	assert_int_equal(pipe2(p1, O_NONBLOCK), 0);
	assert_int_equal(pipe2(p2, O_NONBLOCK), 0);
	c.fd[0] = p1[0];
	c.fd[1] = p2[0];
	assert_int_equal(loop_fd_add(loop, p1[0], LOOP_READ, fd_delete_reuse, &c), 0);
	assert_int_equal(loop_fd_add(loop, p2[0], LOOP_READ, fd_delete_reuse, &c), 0);
	assert_int_equal(write(p1[1], "x", 1), 1);
	assert_int_equal(write(p2[1], "x", 1), 1);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(c.calls_old, 1);
	assert_int_equal(c.fresh.calls, 0); /* the new pipe is empty */

	int other = c.first == p1[0] ? p2[0] : p1[0];
	loop_fd_del(loop, c.first);
	loop_fd_del(loop, other);
	close(c.first);
	close(other);
	close(c.new_w);
	close(p1[1]);
	close(p2[1]);
	loop_free(loop);
}

static void
fd_delete_self(struct loop *loop, int fd, int events, void *arg)
{
	struct fd_rec *r = arg;

	r->calls++;
	r->last_events = events;
	loop_fd_del(loop, fd);
}

static void
callback_deletes_itself(void **state)
{
	struct loop *loop = loop_new();
	struct fd_rec rec = {0};
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_READ | LOOP_WRITE, fd_delete_self, &rec), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(loop_once(loop, 1000), 1);
	assert_int_equal(loop_once(loop, 0), 0);
	assert_int_equal(rec.calls, 1);
	close(sv[0]);
	close(sv[1]);
	loop_free(loop);
}

/* --- timers ----------------------------------------------------------------- */

#define ORDER_MAX 64

struct order {
	int seq[ORDER_MAX];
	int n;
};

struct order_arg {
	struct order *o;
	int tag;
};

static void
timer_record(struct loop *loop, void *arg)
{
	struct order_arg *a = arg;

	(void)loop;
	if (a->o->n < ORDER_MAX)
		a->o->seq[a->o->n++] = a->tag;
}

/* Run until n timers have fired or 2 s pass. */
static void
run_until(struct loop *loop, const struct order *o, int n)
{
	uint64_t start = loop_now_ms(loop);

	while (o->n < n && loop_now_ms(loop) - start < 2000)
		assert_true(loop_once(loop, -1) >= 0);
}

static void
timers_fire_in_deadline_order(void **state)
{
	static const struct {
		uint64_t ms;
		int tag;
	} cases[] = {
	    {30, 3}, {10, 1}, {50, 5}, {0, 0}, {20, 2}, {40, 4},
	};
	struct loop *loop = loop_new();
	struct order o = {0};
	struct order_arg args[6];
	uint64_t start = loop_now_ms(loop);

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		args[i].o = &o;
		args[i].tag = cases[i].tag;
		assert_int_not_equal(loop_timer_add(loop, cases[i].ms, timer_record, &args[i]), 0);
	}
	run_until(loop, &o, 6);
	assert_int_equal(o.n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(o.seq[i], i);
	/* loop_once(-1) slept until the timers instead of spinning or stalling. */
	assert_true(loop_now_ms(loop) - start >= 50);
	loop_free(loop);
}

static void
equal_deadlines_fire_in_id_order(void **state)
{
	struct loop *loop = loop_new();
	struct order o = {0};
	struct order_arg args[20];
	uint64_t prev = 0;

	(void)state;
	for (int i = 0; i < 20; i++) {
		uint64_t id;
		args[i].o = &o;
		args[i].tag = i;
		id = loop_timer_add(loop, 5, timer_record, &args[i]);
		assert_true(id > prev); /* never reused, increasing */
		prev = id;
	}
	run_until(loop, &o, 20);
	assert_int_equal(o.n, 20);
	for (int i = 0; i < 20; i++)
		assert_int_equal(o.seq[i], i);
	loop_free(loop);
}

static void
cancel_pending_fired_unknown(void **state)
{
	struct loop *loop = loop_new();
	struct order o = {0};
	struct order_arg a = {&o, 1}, b = {&o, 2}, c = {&o, 3};
	uint64_t ia, ib, ic;

	(void)state;
	ia = loop_timer_add(loop, 0, timer_record, &a);
	ib = loop_timer_add(loop, 1, timer_record, &b);
	ic = loop_timer_add(loop, 2, timer_record, &c);
	loop_timer_cancel(loop, ib); /* pending */
	loop_timer_cancel(loop, 0);  /* the null id */
	loop_timer_cancel(loop, 999999);
	run_until(loop, &o, 2);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.seq[0], 1);
	assert_int_equal(o.seq[1], 3);
	loop_timer_cancel(loop, ia); /* already fired */
	loop_timer_cancel(loop, ic);
	loop_timer_cancel(loop, ib); /* cancelled twice */
	assert_int_equal(loop_once(loop, 20), 0);
	assert_int_equal(o.n, 2);
	loop_free(loop);
}

struct chain {
	int fired;
	uint64_t victim;
	uint64_t added;
};

static void
timer_count(struct loop *loop, void *arg)
{
	(void)loop;
	((struct chain *)arg)->fired++;
}

static void
timer_adds_timer(struct loop *loop, void *arg)
{
	struct chain *c = arg;

	c->fired++;
	c->added = loop_timer_add(loop, 0, timer_count, c);
}

static void
timer_callback_adds_timer(void **state)
{
	struct loop *loop = loop_new();
	struct chain c = {0};

	(void)state;
	assert_int_not_equal(loop_timer_add(loop, 0, timer_adds_timer, &c), 0);
	/* The new zero-delay timer runs in a later iteration, not this one. */
	assert_int_equal(loop_once(loop, -1), 1);
	assert_int_equal(c.fired, 1);
	assert_int_not_equal(c.added, 0);
	assert_int_equal(loop_once(loop, -1), 1);
	assert_int_equal(c.fired, 2);
	loop_free(loop);
}

static void
timer_cancels_other(struct loop *loop, void *arg)
{
	struct chain *c = arg;

	c->fired++;
	loop_timer_cancel(loop, c->victim);
}

static void
timer_callback_cancels_due_timer(void **state)
{
	struct loop *loop = loop_new();
	struct chain c = {0};

	(void)state;
	assert_int_not_equal(loop_timer_add(loop, 0, timer_cancels_other, &c), 0);
	c.victim = loop_timer_add(loop, 0, timer_count, &c);
	assert_int_equal(loop_once(loop, -1), 1);
	assert_int_equal(c.fired, 1);
	assert_int_equal(loop_once(loop, 10), 0);
	assert_int_equal(c.fired, 1);
	loop_free(loop);
}

/* The timeout given to loop_once() bounds the wait even with later timers. */
static void
timeout_shorter_than_timer(void **state)
{
	struct loop *loop = loop_new();
	struct chain c = {0};
	uint64_t t0;

	(void)state;
	assert_int_not_equal(loop_timer_add(loop, 10000, timer_count, &c), 0);
	t0 = loop_now_ms(loop);
	assert_int_equal(loop_once(loop, 20), 0);
	assert_true(loop_now_ms(loop) - t0 < 5000);
	assert_int_equal(c.fired, 0);
	loop_free(loop); /* drops the pending timer */
}

/* --- stop and before-sleep -------------------------------------------------- */

struct stop_ctx {
	int fired;
	int sleeps;
	int sleeps_at_fire;
};

static void
timer_stop(struct loop *loop, void *arg)
{
	struct stop_ctx *s = arg;

	s->fired++;
	s->sleeps_at_fire = s->sleeps;
	loop_stop(loop);
}

static void
before_sleep_count(struct loop *loop, void *arg)
{
	(void)loop;
	((struct stop_ctx *)arg)->sleeps++;
}

static void
loop_stop_from_callback(void **state)
{
	struct loop *loop = loop_new();
	struct stop_ctx s = {0};

	(void)state;
	loop_set_before_sleep(loop, before_sleep_count, &s);
	assert_int_not_equal(loop_timer_add(loop, 5, timer_stop, &s), 0);
	assert_int_not_equal(loop_timer_add(loop, 60000, timer_stop, &s), 0);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(s.fired, 1);
	assert_true(s.sleeps >= 1);
	assert_int_equal(s.sleeps, s.sleeps_at_fire);

	/* A stopped loop can run again. */
	assert_int_not_equal(loop_timer_add(loop, 0, timer_stop, &s), 0);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(s.fired, 2);

	/* Removing the hook stops it from running. */
	int before = s.sleeps;
	loop_set_before_sleep(loop, NULL, NULL);
	assert_int_equal(loop_once(loop, 0), 0);
	assert_int_equal(s.sleeps, before);
	loop_free(loop);
}

static void
before_sleep_adds_timer(struct loop *loop, void *arg)
{
	struct chain *c = arg;

	if (c->added == 0)
		c->added = loop_timer_add(loop, 0, timer_count, c);
}

/* The hook runs before the wait, so a timer it adds shortens that wait. */
static void
before_sleep_runs_each_iteration(void **state)
{
	struct loop *loop = loop_new();
	struct chain c = {0};

	(void)state;
	loop_set_before_sleep(loop, before_sleep_adds_timer, &c);
	/* Without the hook's timer, loop_once(-1) would block forever. */
	assert_int_equal(loop_once(loop, -1), 1);
	assert_int_equal(c.fired, 1);
	loop_free(loop);
}

/* --- many timers ------------------------------------------------------------ */

#define MANY 10000

struct many {
	int fired[MANY];
	int count;
	uint64_t last_deadline;
	int order_ok;
};

struct many_arg {
	struct many *m;
	int idx;
	uint64_t deadline;
};

static void
timer_many(struct loop *loop, void *arg)
{
	struct many_arg *a = arg;

	(void)loop;
	a->m->fired[a->idx]++;
	a->m->count++;
	if (a->deadline < a->m->last_deadline)
		a->m->order_ok = 0;
	a->m->last_deadline = a->deadline;
}

static void
many_timers_half_cancelled(void **state)
{
	struct loop *loop = loop_new();
	struct many *m = calloc(1, sizeof(*m));
	struct many_arg *args = calloc(MANY, sizeof(*args));
	uint64_t *ids = calloc(MANY, sizeof(*ids));
	uint64_t now = loop_now_ms(loop);

	(void)state;
	assert_non_null(m);
	assert_non_null(args);
	assert_non_null(ids);
	m->order_ok = 1;
	for (int i = 0; i < MANY; i++) {
		/* Pseudo-random deadlines within 0..49 ms, many equal. */
		uint64_t ms = ((uint64_t)i * 7919u) % 50u;
		args[i].m = m;
		args[i].idx = i;
		args[i].deadline = now + ms;
		ids[i] = loop_timer_add(loop, ms, timer_many, &args[i]);
		assert_int_not_equal(ids[i], 0);
	}
	for (int i = 0; i < MANY; i += 2)
		loop_timer_cancel(loop, ids[i]);
	while (m->count < MANY / 2 && loop_now_ms(loop) - now < 5000)
		assert_true(loop_once(loop, -1) >= 0);
	assert_int_equal(m->count, MANY / 2);
	assert_true(m->order_ok);
	for (int i = 0; i < MANY; i++)
		assert_int_equal(m->fired[i], i % 2 == 0 ? 0 : 1);
	/* Nothing left. */
	assert_int_equal(loop_once(loop, 0), 0);
	free(ids);
	free(args);
	free(m);
	loop_free(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pipe_read_ready),
	    cmocka_unit_test(socketpair_write_ready_and_mod),
	    cmocka_unit_test(hangup_reported_as_read_write),
	    cmocka_unit_test(fd_errors),
	    cmocka_unit_test(fd_add_replaces),
	    cmocka_unit_test(fd_table_grows),
	    cmocka_unit_test(callback_deletes_other_ready_fd),
	    cmocka_unit_test(callback_deletes_and_reuses_fd_number),
	    cmocka_unit_test(callback_deletes_itself),
	    cmocka_unit_test(timers_fire_in_deadline_order),
	    cmocka_unit_test(equal_deadlines_fire_in_id_order),
	    cmocka_unit_test(cancel_pending_fired_unknown),
	    cmocka_unit_test(timer_callback_adds_timer),
	    cmocka_unit_test(timer_callback_cancels_due_timer),
	    cmocka_unit_test(timeout_shorter_than_timer),
	    cmocka_unit_test(loop_stop_from_callback),
	    cmocka_unit_test(before_sleep_runs_each_iteration),
	    cmocka_unit_test(many_timers_half_cancelled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
