// sources: main/notify.c core/loop.c
/*
 * test_notify.c - sd_notify messages as systemd would receive them: a unix
 * datagram socket of our own named in NOTIFY_SOCKET, read back message by
 * message; the watchdog driven by a real loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "main/notify.h"

struct sink {
	char dir[64];
	char path[100];
	int fd;
};

static int
sink_setup(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};

	if (s == NULL)
		return -1;
	snprintf(s->dir, sizeof(s->dir), "/tmp/sts-notify-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		free(s);
		return -1;
	}
	snprintf(s->path, sizeof(s->path), "%s/notify.sock", s->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->path);
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (s->fd >= 0)
			close(s->fd);
		rmdir(s->dir);
		free(s);
		return -1;
	}
	/* a missing message shows as a timeout, not a hang */
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", s->path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	*state = s;
	return 0;
}

static int
sink_teardown(void **state)
{
	struct sink *s = *state;

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(s->fd);
	unlink(s->path);
	rmdir(s->dir);
	free(s);
	return 0;
}

/* next - the next datagram as a string, or "" after 200 ms of silence. */
static const char *
next(struct sink *s)
{
	static char buf[1024];
	ssize_t n = recv(s->fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
lifecycle_messages(void **state)
{
	struct sink *s = *state;
	const char *m;

	assert_int_equal(notify_ready(), 1);
	assert_string_equal(next(s), "READY=1");
	assert_int_equal(notify_status("serving %d listeners", 2), 1);
	assert_string_equal(next(s), "STATUS=serving 2 listeners");
	assert_int_equal(notify_reloading(), 1);
	m = next(s);
	assert_true(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	assert_true(strtoull(m + 27, NULL, 10) > 0);
	assert_int_equal(notify_stopping(), 1);
	assert_string_equal(next(s), "STOPPING=1");
	/* nothing else was sent */
	assert_string_equal(next(s), "");
}

static void
status_bounded_one_line(void **state)
{
	struct sink *s = *state;
	char big[NOTIFY_STATUS_MAX * 2];
	const char *m;

	assert_int_equal(notify_status("a\nb\rc"), 1);
	assert_string_equal(next(s), "STATUS=a b c");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(notify_status("%s", big), 1);
	m = next(s);
	assert_int_equal(strlen(m), 7 + NOTIFY_STATUS_MAX);
}

static void
no_socket_is_noop(void **state)
{
	struct sink *s = *state;
	struct loop *loop = loop_new();
	struct notify_watchdog *w = (struct notify_watchdog *)1;

	assert_non_null(loop);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_ready(), 0);
	assert_int_equal(notify_status("x"), 0);
	assert_int_equal(notify_stopping(), 0);
	assert_int_equal(notify_reloading(), 0);
	assert_int_equal(notify_watchdog_start(loop, &w), 0);
	assert_null(w);
	setenv("NOTIFY_SOCKET", s->path, 1);
	assert_string_equal(next(s), "");
	notify_watchdog_stop(NULL);
	loop_free(loop);
}

static void
watchdog_pings(void **state)
{
	struct sink *s = *state;
	struct loop *loop = loop_new();
	struct notify_watchdog *w = NULL;
	char pid[32];
	uint64_t start;
	int pings = 0;

	assert_non_null(loop);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_USEC", "200000", 1); /* 200 ms: a ping every 100 ms */
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_start(loop, &w), 1);
	assert_non_null(w);
	assert_int_equal(notify_watchdog_interval_ms(w), 100);
	/* one at once, then one per interval while the loop runs */
	assert_string_equal(next(s), "WATCHDOG=1");
	start = loop_now_ms(loop);
	while (loop_now_ms(loop) - start < 350)
		loop_once(loop, 50);
	notify_watchdog_stop(w);
	for (const char *m = next(s); *m != '\0'; m = next(s)) {
		assert_string_equal(m, "WATCHDOG=1");
		pings++;
	}
	assert_in_range(pings, 2, 4);
	/* stopped: the loop sends nothing more */
	loop_once(loop, 150);
	assert_string_equal(next(s), "");
	loop_free(loop);
}

static void
watchdog_other_pid(void **state)
{
	struct sink *s = *state;
	struct loop *loop = loop_new();
	struct notify_watchdog *w = NULL;
	char pid[32];

	assert_non_null(loop);
	/* the watchdog was meant for another process (our parent, say) */
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_USEC", "200000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_start(loop, &w), 0);
	assert_null(w);
	/* no interval at all */
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(notify_watchdog_start(loop, &w), 0);
	assert_string_equal(next(s), "");
	loop_free(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(lifecycle_messages, sink_setup, sink_teardown),
	    cmocka_unit_test_setup_teardown(status_bounded_one_line, sink_setup, sink_teardown),
	    cmocka_unit_test_setup_teardown(no_socket_is_noop, sink_setup, sink_teardown),
	    cmocka_unit_test_setup_teardown(watchdog_pings, sink_setup, sink_teardown),
	    cmocka_unit_test_setup_teardown(watchdog_other_pid, sink_setup, sink_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
