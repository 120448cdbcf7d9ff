// sources: proxy/upstream_pool.c proxy/upstream.c proxy/smtp_reply.c tls/tls_io.c tls/tls_resume.c
// sources: tls/tls_verify.c core/loop.c core/log.c core/util.c core/types.c core/conf.c
/*
 * test_upstream_pool.c - the pool of idle upstream connections on its own:
 * connections are socketpairs whose far end the test holds (the "MX"),
 * parked and taken by client and destination, bounded per destination and
 * in total, dropped when the MX speaks or closes, ended with a QUIT at the
 * idle limit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "proxy/upstream_internal.h"

#define CONNS 4

static struct {
	struct loop *loop;
	struct conf conf;
	struct upstream_pool *pool;
	_Atomic uint64_t parked, taken, saved, missed, idle;
	int mx[CONNS]; /* the far ends */
} t;

static int
setup(void **state)
{
	struct upstream_pool_params pp;

	(void)state;
	memset(&t, 0, sizeof(t));
	log_set_level(LOG_LVL_ERR);
	if ((t.loop = loop_new()) == NULL || conf_defaults(&t.conf) < 0)
		return -1;
	t.conf.upstream.reuse_idle = 5;
	t.conf.upstream.reuse_max_messages = 100;
	t.conf.upstream.reuse_max_per_dest = 4;
	t.conf.upstream.reuse_max = 64;
	memset(&pp, 0, sizeof(pp));
	pp.loop = t.loop;
	pp.conf = &t.conf;
	pp.stats.parked = &t.parked;
	pp.stats.taken = &t.taken;
	pp.stats.saved = &t.saved;
	pp.stats.missed = &t.missed;
	pp.stats.idle = &t.idle;
	if ((t.pool = upstream_pool_new(&pp)) == NULL)
		return -1;
	for (int i = 0; i < CONNS; i++)
		t.mx[i] = -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	upstream_pool_free(t.pool);
	for (int i = 0; i < CONNS; i++)
		if (t.mx[i] >= 0)
			close(t.mx[i]);
	loop_free(t.loop);
	free(t.conf.state_dir);
	free(t.conf.nfq.queues);
	free(t.conf.shared.prefix);
	return 0;
}

/* dst - 192.0.2.1:port */
static struct sockaddr_in
dst(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	return sin;
}

/* conn - a connection ready to park, its far end in t.mx[i]. */
static struct up_conn
conn(int i)
{
	struct up_conn c;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(&c, 0, sizeof(c));
	assert_non_null(c.io = tls_io_new(sv[0], 1000, 4096));
	c.phase = UP_READY;
	c.connected = true;
	c.msgs = 1;
	t.mx[i] = sv[1];
	return c;
}

/* park - conn i for client to port; 0 or -1. */
static int
park(int i, const char *client, uint16_t port)
{
	struct up_conn c = conn(i);
	struct sockaddr_in d = dst(port);
	int r = upstream_pool_put(t.pool, &c, client, (struct sockaddr *)&d, sizeof(d));

	if (r < 0)
		upstream_conn_free(t.loop, &c, false);
	return r;
}

/* take - a connection of client to port into *c; 0 or -1. */
static int
take(const char *client, uint16_t port, struct up_conn *c)
{
	struct sockaddr_in d = dst(port);

	return upstream_pool_take(t.pool, client, (struct sockaddr *)&d, sizeof(d), c);
}

/* mx_got - what the far end i has received (nonblocking); "" when nothing, "EOF" at the end. */
static const char *
mx_got(int i)
{
	static char buf[256];
	ssize_t n = recv(t.mx[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n == 0)
		return "EOF";
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
spin(int turns)
{
	for (int i = 0; i < turns; i++)
		loop_once(t.loop, 10);
}

/* The identity is the client's address and the destination address:port. */
static void
pool_take_same_client_and_destination_only(void **state)
{
	struct up_conn c;

	(void)state;
	assert_int_equal(park(0, "10.0.1.2", 25), 0);
	assert_int_equal(upstream_pool_size(t.pool), 1);
	assert_int_equal(take("10.0.1.3", 25, &c), -1);
	assert_int_equal(take("10.0.1.2", 26, &c), -1);
	assert_int_equal(take("10.0.1.2", 25, &c), 0);
	assert_int_equal(upstream_pool_size(t.pool), 0);
	assert_int_equal(t.taken, 1);
	assert_int_equal(t.idle, 0);
	upstream_conn_free(t.loop, &c, false);
}

/* upstream.reuse_max_per_dest: the oldest of that destination goes, with a QUIT. */
static void
pool_max_per_dest_evicts_oldest(void **state)
{
	struct up_conn c;

	(void)state;
	t.conf.upstream.reuse_max_per_dest = 2;
	assert_int_equal(park(0, "10.0.1.2", 25), 0);
	assert_int_equal(park(1, "10.0.1.2", 25), 0);
	assert_int_equal(park(2, "10.0.1.2", 25), 0);
	assert_int_equal(upstream_pool_size(t.pool), 2);
	assert_string_equal(mx_got(0), "QUIT\r\n");
	assert_string_equal(mx_got(0), "EOF");
	/* the most recent first */
	assert_int_equal(take("10.0.1.2", 25, &c), 0);
	assert_int_equal(tls_io_fd(c.io) >= 0, 1);
	upstream_conn_free(t.loop, &c, false);
	assert_string_equal(mx_got(2), "EOF");
	assert_string_equal(mx_got(1), "");
}

/* upstream.reuse_max: the oldest of all goes. */
static void
pool_max_total_evicts_oldest(void **state)
{
	(void)state;
	t.conf.upstream.reuse_max = 2;
	assert_int_equal(park(0, "10.0.1.2", 25), 0);
	assert_int_equal(park(1, "10.0.1.2", 26), 0);
	assert_int_equal(park(2, "10.0.1.2", 27), 0);
	assert_int_equal(upstream_pool_size(t.pool), 2);
	assert_int_equal(t.idle, 2);
	assert_int_equal(t.parked, 3);
	assert_string_equal(mx_got(0), "QUIT\r\n");
}

/* RFC 5321 section 3.8: an MX that closes an idle connection (or says 421) drops it. */
static void
rfc5321_3_8_pool_drops_what_the_server_closes(void **state)
{
	struct up_conn c;

	(void)state;
	assert_int_equal(park(0, "10.0.1.2", 25), 0);
	assert_int_equal(park(1, "10.0.1.2", 25), 0);
	assert_int_equal(write(t.mx[0], "421 4.4.2 idle\r\n", 16), 16);
	shutdown(t.mx[1], SHUT_WR);
	spin(3);
	assert_int_equal(upstream_pool_size(t.pool), 0);
	assert_int_equal(t.idle, 0);
	/* dropped unread, without a QUIT */
	assert_string_equal(mx_got(1), "EOF");
	assert_int_equal(take("10.0.1.2", 25, &c), -1);
}

/* Bytes the loop has not reported yet: the connection is not handed out. */
static void
pool_take_refuses_unreported_bytes(void **state)
{
	struct up_conn c;

	(void)state;
	assert_int_equal(park(0, "10.0.1.2", 25), 0);
	assert_int_equal(write(t.mx[0], "250 late\r\n", 10), 10);
	assert_int_equal(take("10.0.1.2", 25, &c), -1);
	assert_int_equal(upstream_pool_size(t.pool), 0);
}

/* Bytes pending when the session parks: not parked. */
static void
pool_put_refuses_pending_bytes(void **state)
{
	(void)state;
	{
		struct up_conn c = conn(0);
		struct sockaddr_in d = dst(25);

		assert_int_equal(write(t.mx[0], "x", 1), 1);
		assert_int_equal(
		    upstream_pool_put(t.pool, &c, "10.0.1.2", (struct sockaddr *)&d, sizeof(d)),
		    -1);
		assert_non_null(c.io); /* untouched: still the caller's */
		upstream_conn_free(t.loop, &c, false);
	}
	assert_int_equal(upstream_pool_size(t.pool), 0);
}

/* upstream.reuse_idle: the connection ends with a QUIT. */
static void
pool_idle_limit_quits(void **state)
{
	(void)state;
	t.conf.upstream.reuse_idle = 1;
	assert_int_equal(park(0, "10.0.1.2", 25), 0);
	spin(50);
	assert_int_equal(upstream_pool_size(t.pool), 1);
	spin(80);
	assert_int_equal(upstream_pool_size(t.pool), 0);
	assert_string_equal(mx_got(0), "QUIT\r\n");
}

/* A flush (a draining worker) ends every parked connection with a QUIT. */
static void
pool_flush_quits_all(void **state)
{
	(void)state;
	assert_int_equal(park(0, "10.0.1.2", 25), 0);
	assert_int_equal(park(1, "10.0.1.3", 25), 0);
	upstream_pool_flush(t.pool);
	assert_int_equal(upstream_pool_size(t.pool), 0);
	assert_string_equal(mx_got(0), "QUIT\r\n");
	assert_string_equal(mx_got(1), "QUIT\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(pool_take_same_client_and_destination_only),
	    T(pool_max_per_dest_evicts_oldest),
	    T(pool_max_total_evicts_oldest),
	    T(rfc5321_3_8_pool_drops_what_the_server_closes),
	    T(pool_take_refuses_unreported_bytes),
	    T(pool_put_refuses_pending_bytes),
	    T(pool_idle_limit_quits),
	    T(pool_flush_quits_all),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
