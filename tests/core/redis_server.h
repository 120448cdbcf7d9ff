/*
 * redis_server.h - a private redis-server for tests: started on a unix
 * socket in a temporary directory, never on a TCP port, stopped and
 * removed by redis_server_stop(). Header-only: a test includes it.
 */
#ifndef TESTS_REDIS_SERVER_H
#define TESTS_REDIS_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct redis_server {
	pid_t pid;
	char dir[64];
	char sock[128];
};

/* redis_server_available - redis-server is on PATH. */
static inline bool
redis_server_available(void)
{
	return system("command -v redis-server >/dev/null 2>&1") == 0;
}

static inline bool
redis_server_answers(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;
	bool ok;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * redis_server_start - run redis-server on <dir>/redis.sock (dir made
 * with mkdtemp when s->dir is empty, kept otherwise, so that a restart
 * uses the same socket). 0 once it accepts connections, -1 otherwise.
 */
static inline int
redis_server_start(struct redis_server *s)
{
	if (s->dir[0] == '\0') {
		snprintf(s->dir, sizeof(s->dir), "/tmp/stsproxy-redis-XXXXXX");
		if (mkdtemp(s->dir) == NULL)
			return -1;
	}
	snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	unlink(s->sock);
	if ((s->pid = fork()) < 0)
		return -1;
	if (s->pid == 0) {
		char logf[128];
		/* a test or benchmark that dies (an assertion, a signal) takes it along */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(logf, sizeof(logf), "%s/redis.log", s->dir);
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", s->sock,
		       "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir",
		       s->dir, "--logfile", logf, "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		if (redis_server_answers(s->sock))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* redis_server_kill - stop the server (the directory stays, for a restart). */
static inline void
redis_server_kill(struct redis_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

/* redis_server_stop - stop the server and remove its directory. */
static inline void
redis_server_stop(struct redis_server *s)
{
	char cmd[160];

	redis_server_kill(s);
	if (s->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", s->dir);
	}
}

/*
 * redis_server_setup - start s for a group of tests, or, without
 * redis-server, say so and leave s->pid 0 (the tests then skip, see
 * REDIS_NEED_SERVER). 0, or -1 when the server does not start.
 */
static inline int
redis_server_setup(struct redis_server *s)
{
	if (!redis_server_available()) {
		fprintf(stderr, "SKIP: redis-server is not installed (apt-get install "
		                "redis-server)\n");
		return 0;
	}
	return redis_server_start(s);
}

/* REDIS_NEED_SERVER - skip the test when s was not started. */
#define REDIS_NEED_SERVER(s)                                                                       \
	do {                                                                                       \
		if ((s)->pid <= 0)                                                                 \
			skip();                                                                    \
	} while (0)

#endif
