// sources: proxy/socketmap.c proxy/smap_reply.c core/netstring.c core/conf.c core/types.c
// sources: tests/proxy/fake_sts_engine.c core/loop.c core/log.c core/util.c tls/tls_verify.c
/*
 * test_socketmap.c - the socketmap server on a real loop and unix socket,
 * with scripted engine answers: answers from memory and from a lookup,
 * pipelined requests answered in order, a request split in pieces, the
 * size bound (PERM and close), malformed input (PERM and close), the
 * connection bound, the idle timeout, and a shutdown.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "proxy/socketmap.h"
#include "tests/proxy/fake_sts_engine.h"

struct fx {
	char dir[40], path[80], text[90];
	struct conf conf;
	struct loop *loop;
	struct sts_engine *engine;
	struct smap_stats stats;
	struct smap *smap;
};

static const struct fake_sts_rule rules[] = {
    {"sync.test", STS_POLICY, STS_MODE_ENFORCE, "1", "mx.sync.test", false},
    {"async.test", STS_POLICY, STS_MODE_ENFORCE, "1", "mx.async.test", true},
    {"testing.test", STS_POLICY, STS_MODE_TESTING, "1", "mx.testing.test", false},
    {"defer.test", STS_DEFER, STS_MODE_NONE, NULL, NULL, true},
};

#define SYNC_REPLY  "48:OK secure match=mx.sync.test servername=hostname,"
#define ASYNC_REPLY "49:OK secure match=mx.async.test servername=hostname,"

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sts_engine_params ep = {0};
	char err[256];
	int fd;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_socketmap.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sm.sock", f->dir);
	snprintf(f->text, sizeof(f->text), "unix:%s", f->path);
	f->conf.socketmap.max_connections = 4;
	f->conf.socketmap.idle_timeout = 1;
	f->conf.socketmap.max_request = 256;
	f->conf.dns.timeout = 0; /* the lookup deadline: 5 s */
	f->conf.sts.fetch_timeout = 0;
	assert_non_null(f->loop = loop_new());
	ep.loop = f->loop;
	ep.conf = &f->conf;
	assert_non_null(f->engine = sts_engine_new(&ep, err, sizeof(err)));
	fake_sts_set(rules, sizeof(rules) / sizeof(rules[0]));
	struct smap_params sp = {
	    .loop = f->loop, .engine = f->engine, .conf = &f->conf, .stats = &f->stats};
	assert_non_null(f->smap = smap_new(&sp));
	fd = smap_listen(f->text, 16, err, sizeof(err));
	if (fd < 0)
		fail_msg("%s", err);
	assert_int_equal(smap_add_listener(f->smap, fd, f->text), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	smap_free(f->smap);
	sts_engine_free(f->engine);
	loop_free(f->loop);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int
client(struct fx *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void
put(int fd, const char *s, size_t len)
{
	assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/*
 * get - run the loop until want octets arrived on fd or ms passed; returns
 * the count read into buf (NUL-terminated), or -1 when the server closed
 * with nothing more.
 */
static ssize_t
get(struct fx *f, int fd, char *buf, size_t want, unsigned ms)
{
	size_t got = 0;

	for (unsigned t = 0; t < ms && got < want; t += 5) {
		ssize_t n;

		loop_once(f->loop, 5);
		n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n == 0) {
			buf[got] = '\0';
			return got > 0 ? (ssize_t)got : -1;
		}
		if (n > 0)
			got += (size_t)n;
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

/* closed - the server has closed fd (EOF) within ms */
static bool
closed(struct fx *f, int fd, unsigned ms)
{
	char c;

	for (unsigned t = 0; t < ms; t += 5) {
		loop_once(f->loop, 5);
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
	return false;
}

static void
answers_from_memory_and_lookup(void **state)
{
	struct fx *f = *state;
	char buf[256];
	int fd = client(f);

	put(fd, "17:postfix sync.test,", 21);
	assert_int_equal(get(f, fd, buf, strlen(SYNC_REPLY), 1000), strlen(SYNC_REPLY));
	assert_string_equal(buf, SYNC_REPLY);
	assert_int_equal(fake_sts_async_count(), 0);
	put(fd, "18:postfix async.test,", 22);
	assert_int_equal(get(f, fd, buf, strlen(ASYNC_REPLY), 1000), strlen(ASYNC_REPLY));
	assert_string_equal(buf, ASYNC_REPLY);
	assert_int_equal(fake_sts_async_count(), 1);
	put(fd, "20:postfix testing.test,", 24);
	assert_int_equal(get(f, fd, buf, 12, 1000), 12);
	assert_string_equal(buf, "9:NOTFOUND ,");
	put(fd, "18:postfix defer.test,", 22);
	assert_int_equal(get(f, fd, buf, 44, 1000), 44);
	assert_string_equal(buf, "40:TEMP policy lookup failed for defer.test,");
	put(fd, "18:postfix 192.0.2.1.,", 22);
	get(f, fd, buf, 12, 1000);
	assert_string_equal(buf, "9:NOTFOUND ,");
	assert_int_equal(atomic_load(&f->stats.replies[SMAP_OK]), 2);
	assert_int_equal(atomic_load(&f->stats.replies[SMAP_NOTFOUND]), 2);
	assert_int_equal(atomic_load(&f->stats.replies[SMAP_TEMP]), 1);
	close(fd);
}

/* Replies leave in request order, the slow lookup first. */
static void
pipelined_in_order(void **state)
{
	struct fx *f = *state;
	static const char req[] = "18:postfix async.test,17:postfix sync.test,7:postfix,";
	const char *want = ASYNC_REPLY SYNC_REPLY "9:NOTFOUND ,";
	char buf[512];
	int fd = client(f);

	put(fd, req, sizeof(req) - 1);
	assert_int_equal(get(f, fd, buf, strlen(want), 1000), strlen(want));
	assert_string_equal(buf, want);
	close(fd);
}

/*
 * 5000 pipelined requests, more than the input buffer and the socket
 * buffers hold: the replies of each read leave together, the server stops
 * reading while the client does not take them, and every reply arrives,
 * in order.
 */
static void
pipelined_flood(void **state)
{
	struct fx *f = *state;
	static const char req[] = "17:postfix sync.test,";
	const size_t n = 5000, rl = strlen(SYNC_REPLY);
	size_t sent = 0, got = 0, total = n * (sizeof(req) - 1);
	char *out = malloc(total), *in = malloc(n * rl + 1);
	int fd = client(f);

	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < n; i++)
		memcpy(out + i * (sizeof(req) - 1), req, sizeof(req) - 1);
	/* The client reads only when nothing else moves: the server's socket
	 * buffer fills first and it has to wait (C_WRITE), reading nothing. */
	for (int spins = 0, quiet = 0; got < n * rl && spins < 400000; spins++) {
		ssize_t k = 0;
		int ran;

		if (sent < total && (k = send(fd, out + sent, total - sent, MSG_NOSIGNAL)) > 0)
			sent += (size_t)k;
		ran = loop_once(f->loop, 0);
		quiet = (k > 0 || ran > 0) ? 0 : quiet + 1;
		if (quiet > 20 && (k = recv(fd, in + got, n * rl - got, MSG_DONTWAIT)) > 0) {
			got += (size_t)k;
			quiet = 0;
		}
	}
	assert_true(atomic_load(&f->stats.replies[SMAP_OK]) > 0);
	assert_int_equal(sent, total);
	assert_int_equal(got, n * rl);
	for (size_t i = 0; i < n; i++)
		if (memcmp(in + i * rl, SYNC_REPLY, rl) != 0)
			fail_msg("reply %zu differs", i);
	assert_int_equal(atomic_load(&f->stats.replies[SMAP_OK]), n);
	free(out);
	free(in);
	close(fd);
}

/* A request arriving one octet at a time is answered once, when complete. */
static void
split_request(void **state)
{
	struct fx *f = *state;
	static const char req[] = "17:postfix sync.test,";
	char buf[256];
	int fd = client(f);

	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		put(fd, req + i, 1);
		if (i + 2 < sizeof(req))
			assert_int_equal(get(f, fd, buf, 1, 10), 0);
	}
	assert_int_equal(get(f, fd, buf, strlen(SYNC_REPLY), 1000), strlen(SYNC_REPLY));
	assert_string_equal(buf, SYNC_REPLY);
	close(fd);
}

/* socketmap.max_request: PERM, then close, before the data is read. */
static void
too_long_is_perm_and_close(void **state)
{
	struct fx *f = *state;
	char buf[256];
	int fd = client(f);

	put(fd, "257:", 4);
	assert_int_equal(get(f, fd, buf, 25, 1000), 25);
	assert_string_equal(buf, "21:PERM request too long,");
	assert_true(closed(f, fd, 1000));
	assert_int_equal(atomic_load(&f->stats.errors), 1);
	close(fd);
	/* 256 is still fine */
	fd = client(f);
	char req[300];
	int h = snprintf(req, sizeof(req), "256:postfix ");
	memset(req + h, 'a', 256 - 8);
	req[h + 248] = ',';
	put(fd, req, (size_t)h + 249);
	assert_int_equal(get(f, fd, buf, 12, 1000), 12);
	assert_string_equal(buf, "9:NOTFOUND ,");
	close(fd);
}

static void
malformed_is_perm_and_close(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {"01:x,", "1:xy", "GET / HTTP/1.1\r\n", ":,"};
	char buf[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = client(f);

		put(fd, bad[i], strlen(bad[i]));
		assert_int_equal(get(f, fd, buf, 26, 1000), 26);
		assert_string_equal(buf, "22:PERM malformed request,");
		assert_true(closed(f, fd, 1000));
		close(fd);
	}
}

/* socketmap.max_connections: the next one is closed at once. */
static void
connection_bound(void **state)
{
	struct fx *f = *state;
	int fds[5];
	char buf[256];

	for (int i = 0; i < 4; i++) {
		fds[i] = client(f);
		put(fds[i], "17:postfix sync.test,", 21);
		assert_int_equal(get(f, fds[i], buf, strlen(SYNC_REPLY), 1000), strlen(SYNC_REPLY));
	}
	fds[4] = client(f);
	assert_true(closed(f, fds[4], 1000));
	assert_int_equal(atomic_load(&f->stats.connections_refused), 1);
	assert_int_equal(smap_count(f->smap), 4);
	close(fds[4]);
	/* one leaves: a new one is served */
	close(fds[0]);
	for (int i = 0; i < 20; i++)
		loop_once(f->loop, 5);
	fds[0] = client(f);
	put(fds[0], "17:postfix sync.test,", 21);
	assert_int_equal(get(f, fds[0], buf, strlen(SYNC_REPLY), 1000), strlen(SYNC_REPLY));
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

/* socketmap.idle_timeout (1 s here): closed after it, not before. */
static void
idle_timeout(void **state)
{
	struct fx *f = *state;
	char buf[256];
	int fd = client(f);

	put(fd, "17:postfix sync.test,", 21);
	assert_int_equal(get(f, fd, buf, strlen(SYNC_REPLY), 1000), strlen(SYNC_REPLY));
	assert_false(closed(f, fd, 600));
	/* a request restarts the clock */
	put(fd, "17:postfix sync.test,", 21);
	assert_int_equal(get(f, fd, buf, strlen(SYNC_REPLY), 1000), strlen(SYNC_REPLY));
	assert_false(closed(f, fd, 600));
	assert_true(closed(f, fd, 1500));
	assert_int_equal(smap_count(f->smap), 0);
	close(fd);
}

/* A lookup past its deadline (dns.timeout x 3 + sts.fetch_timeout + 5 s, 5 s
 * here) gets TEMP; the connection goes on. */
static void
lookup_deadline_is_temp(void **state)
{
	struct fx *f = *state;
	char buf[256];
	int fd = client(f);

	fake_sts_set_delay(60000);
	put(fd, "18:postfix async.test,", 22);
	uint64_t t0 = loop_now_ms(f->loop), ms;

	assert_int_equal(get(f, fd, buf, 25, 9000), 25);
	assert_string_equal(buf, "21:TEMP lookup timed out,");
	ms = loop_now_ms(f->loop) - t0;
	if (ms < 4900 || ms > 7000)
		fail_msg("answered after %llu ms, not 5 s", (unsigned long long)ms);
	put(fd, "17:postfix sync.test,", 21);
	assert_int_equal(get(f, fd, buf, strlen(SYNC_REPLY), 1000), strlen(SYNC_REPLY));
	close(fd);
}

/* A shutdown closes idle connections and the listener; a lookup still answers. */
static void
shutdown_drains(void **state)
{
	struct fx *f = *state;
	char buf[256];
	int idle = client(f), busy = client(f);

	for (int i = 0; i < 10; i++)
		loop_once(f->loop, 5);
	put(busy, "18:postfix async.test,", 22);
	loop_once(f->loop, 5);
	smap_shutdown(f->smap);
	assert_true(closed(f, idle, 1000));
	assert_int_equal(get(f, busy, buf, strlen(ASYNC_REPLY), 1000), strlen(ASYNC_REPLY));
	assert_true(closed(f, busy, 1000));
	assert_int_equal(smap_count(f->smap), 0);
	close(idle);
	close(busy);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(answers_from_memory_and_lookup, setup, teardown),
	    cmocka_unit_test_setup_teardown(pipelined_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(pipelined_flood, setup, teardown),
	    cmocka_unit_test_setup_teardown(split_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(too_long_is_perm_and_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(malformed_is_perm_and_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(connection_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(idle_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(lookup_deadline_is_temp, setup, teardown),
	    cmocka_unit_test_setup_teardown(shutdown_drains, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
