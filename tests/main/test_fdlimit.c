// sources: main/fdlimit.c
/*
 * test_fdlimit.c - open files for max_sessions: what a configuration
 * needs, what fits under a limit, and the soft limit raised (or
 * max_sessions lowered) in a child process whose limits are set first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "main/fdlimit.h"

static void
need_and_fit_table(void **state)
{
	static const struct {
		const char *name;
		unsigned workers;
		size_t n_listen;
		unsigned max_sessions;
		unsigned reuse_idle, reuse_max; /* idle upstream connections kept per worker */
		rlim_t need;
		rlim_t limit;
		unsigned fit;
	} cases[] = {
	    /* 64 + 2 * (64 + 2) = 196 reserved, 2 per session */
	    {"default_plenty", 2, 2, 10000, 0, 64, 20196, 65536, 10000},
	    {"default_shell_1024", 2, 2, 10000, 0, 64, 20196, 1024, 414},
	    {"exact", 2, 2, 10000, 0, 64, 20196, 20196, 10000},
	    {"one_short", 2, 2, 10000, 0, 64, 20196, 20195, 9999},
	    {"reserve_only", 2, 2, 10000, 0, 64, 20196, 196, 0},
	    {"below_reserve", 2, 2, 10000, 0, 64, 20196, 100, 0},
	    {"one_worker_one_listener", 1, 1, 100, 0, 64, 329, 1024, 100},
	    {"unlimited", 4, 2, 500, 0, 64, 1328, RLIM_INFINITY, 500},
	    /* reuse on: 2 * 64 parked connections more reserved */
	    {"upstream_reuse_parked", 2, 2, 10000, 10, 64, 20324, 1024, 350},
	};
	struct conf c;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.workers = cases[i].workers;
		c.n_listen = cases[i].n_listen;
		c.max_sessions = cases[i].max_sessions;
		c.upstream.reuse_idle = cases[i].reuse_idle;
		c.upstream.reuse_max = cases[i].reuse_max;
		if (fdlimit_need(&c) != cases[i].need ||
		    fdlimit_sessions(&c, cases[i].limit) != cases[i].fit)
			fail_msg("%s: need %llu sessions %u", cases[i].name,
			         (unsigned long long)fdlimit_need(&c),
			         fdlimit_sessions(&c, cases[i].limit));
	}
}

/* What a child saw after fdlimit_apply() under the limits it was given. */
struct outcome {
	int rc;
	struct fdlimit_result r;
	unsigned max_sessions;
	rlim_t soft, hard;
};

/*
 * under_valgrind - valgrind keeps descriptors of its own at the top of the
 * range and refuses any other hard RLIMIT_NOFILE: these cases cannot be set
 * up there. Its preloaded library names it.
 */
static bool
under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "vgpreload") != NULL;
}

static struct outcome
apply_under(rlim_t soft, rlim_t hard, unsigned max_sessions)
{
	struct outcome o = {.rc = -2};
	int p[2], status;
	pid_t pid;

	if (under_valgrind()) {
		print_message("skipped under valgrind: it refuses to change the hard open-files "
		              "limit; the plain and sanitizer runs check this case\n");
		skip();
	}

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
		struct conf c;

		memset(&c, 0, sizeof(c));
		c.workers = 2;
		c.n_listen = 2;
		c.max_sessions = max_sessions;
		o.rc = setrlimit(RLIMIT_NOFILE, &rl) == 0 ? fdlimit_apply(&c, &o.r) : -3;
		o.max_sessions = c.max_sessions;
		getrlimit(RLIMIT_NOFILE, &rl);
		o.soft = rl.rlim_cur;
		o.hard = rl.rlim_max;
		_exit(write(p[1], &o, sizeof(o)) == (ssize_t)sizeof(o) ? 0 : 1);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &o, sizeof(o)), (ssize_t)sizeof(o));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return o;
}

/* A shell's 1024 under a high hard limit: raised to exactly what is needed. */
static void
soft_limit_raised_to_need(void **state)
{
	struct outcome o = apply_under(1024, 8192, 2000);

	(void)state;
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.soft, 4196);
	assert_int_equal(o.hard, 8192);
	assert_false(o.r.lowered);
	assert_int_equal(o.max_sessions, 2000);
}

/* Already enough: the soft limit is never lowered. */
static void
soft_limit_never_lowered(void **state)
{
	struct outcome o = apply_under(6000, 8192, 2000);

	(void)state;
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.soft, 6000);
	assert_false(o.r.lowered);
}

/* The hard limit is too low: soft goes to it, max_sessions comes down to what fits. */
static void
hard_limit_too_low_lowers_max_sessions(void **state)
{
	struct outcome o = apply_under(256, 600, 10000);

	(void)state;
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.soft, 600);
	assert_true(o.r.lowered);
	assert_true(o.r.hard);
	assert_int_equal(o.r.need, 20196);
	assert_int_equal(o.r.limit, 600);
	assert_int_equal(o.r.wanted, 10000);
	assert_int_equal(o.max_sessions, (600 - 196) / 2);
}

/* Not even the reserve fits: one session is still allowed, never zero (unlimited). */
static void
no_room_keeps_one_session(void **state)
{
	struct outcome o = apply_under(64, 64, 10000);

	(void)state;
	assert_int_equal(o.rc, 0);
	assert_true(o.r.lowered);
	assert_int_equal(o.max_sessions, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(need_and_fit_table),
	    cmocka_unit_test(soft_limit_raised_to_need),
	    cmocka_unit_test(soft_limit_never_lowered),
	    cmocka_unit_test(hard_limit_too_low_lowers_max_sessions),
	    cmocka_unit_test(no_room_keeps_one_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
