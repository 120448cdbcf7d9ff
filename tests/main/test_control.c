// sources: main/control.c core/onereq.c core/loop.c core/log.c core/conf.c core/util.c core/types.c
/*
 * test_control.c - the control socket: a real server on a socket in a
 * temporary directory, its loop run by a second thread, fake daemon
 * handlers, and the real client; bad requests on a raw connection; a peer
 * that is neither root nor in the service group (a child that switched to
 * nobody) refused by its credentials.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/loop.h"
#include "main/control.h"

#define NOBODY 65534

/* --- fake daemon handlers -------------------------------------------------- */

struct fake {
	int status_calls;
	char flushed[256];
	char refreshed[256];
	unsigned list_lines;
	bool huge;
};

static int
fake_status(void *arg, struct control_reply *r)
{
	struct fake *f = arg;

	f->status_calls++;
	control_reply_line(r, "state running");
	control_reply_line(r, "sessions_active %d", 3);
	control_reply_line(r, "note two\nlines");
	return 0;
}

static int
fake_cache_list(void *arg, struct control_reply *r)
{
	struct fake *f = arg;

	if (f->huge) {
		char big[CONTROL_LINE_MAX];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		while (control_reply_line(r, "%s", big) == 0)
			;
		return 0;
	}
	control_reply_line(r, ".leading-dot.example enforce");
	control_reply_line(r, ".");
	for (unsigned i = 0; i < f->list_lines; i++)
		control_reply_line(r, "d%u.example testing", i);
	return 0;
}

static int
fake_cache_flush(void *arg, const char *domain, struct control_reply *r)
{
	struct fake *f = arg;

	snprintf(f->flushed, sizeof(f->flushed), "%s", domain);
	control_reply_line(r, "flushed %s", domain);
	return 0;
}

static int
fake_cache_refresh(void *arg, const char *domain, struct control_reply *r)
{
	struct fake *f = arg;

	snprintf(f->refreshed, sizeof(f->refreshed), "%s", domain);
	if (strcmp(domain, "unknown.example") == 0) {
		control_reply_error(r, "%s: no cached policy", domain);
		return -1;
	}
	control_reply_line(r, "refresh started");
	return 0;
}

static int
fake_report(void *arg, struct control_reply *r)
{
	(void)arg;
	control_reply_line(r, "example.com id=20240101 mode=enforce success=7 failure=2");
	control_reply_line(r, "  starttls-not-supported mx=mx1.example.com ip=10.1.2.3 count=2");
	return 0;
}

static const struct control_ops fake_ops = {
    .status = fake_status,
    .cache_list = fake_cache_list,
    .cache_flush = fake_cache_flush,
    .cache_refresh = fake_cache_refresh,
    .report = fake_report,
};

/* --- a server whose loop runs in a thread ---------------------------------- */

struct srv {
	char dir[64];
	char path[100];
	struct loop *loop;
	struct control *ctl;
	struct fake fake;
	pthread_t thread;
	atomic_bool stop;
};

static void *
srv_thread(void *arg)
{
	struct srv *s = arg;

	while (!atomic_load(&s->stop))
		loop_once(s->loop, 20);
	return NULL;
}

static struct srv *
srv_start(gid_t group, const struct control_ops *ops)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct control_params p = {0};
	char err[256] = "";

	assert_non_null(s);
	snprintf(s->dir, sizeof(s->dir), "/tmp/sts-control-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/control.sock", s->dir);
	s->loop = loop_new();
	assert_non_null(s->loop);
	p.loop = s->loop;
	p.path = s->path;
	p.group = group;
	p.ops = ops;
	p.arg = &s->fake;
	p.timeout_ms = 2000;
	s->ctl = control_start(&p, err, sizeof(err));
	if (s->ctl == NULL)
		fail_msg("control_start: %s", err);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_thread, s), 0);
	return s;
}

static void
srv_stop(struct srv *s)
{
	struct stat st;

	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	for (int i = 0; i < 100 && control_clients(s->ctl) > 0; i++)
		loop_once(s->loop, 10);
	assert_int_equal(control_clients(s->ctl), 0);
	control_stop(s->ctl);
	/* the socket file goes with the server */
	assert_int_equal(lstat(s->path, &st), -1);
	loop_free(s->loop);
	assert_int_equal(rmdir(s->dir), 0);
	free(s);
}

/* request - run the real client; out and err receive what it printed. */
static int
request(struct srv *s, const char *req, char **out, char **err)
{
	size_t olen, elen;
	FILE *o = open_memstream(out, &olen);
	FILE *e = open_memstream(err, &elen);
	int rc;

	assert_non_null(o);
	assert_non_null(e);
	rc = control_client_run(s->path, req, o, e);
	fclose(o);
	fclose(e);
	return rc;
}

/* raw - send bytes as they are and return the whole answer (malloc'ed). */
static char *
raw(const char *path, const char *bytes, size_t len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char *buf = calloc(1, 8192);
	size_t got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_non_null(buf);
	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
	for (;;) {
		ssize_t n = recv(fd, buf + got, 8191 - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return buf;
}

/* --- cases ----------------------------------------------------------------- */

struct parse_case {
	const char *name;
	const char *line;
	int rc;
	enum control_cmd cmd;
	const char *domain;
};

static void
parse_table(void **state)
{
	static const struct parse_case cases[] = {
	    {"status", "status", 0, CONTROL_STATUS, NULL},
	    {"status_spaces", "  status\t", 0, CONTROL_STATUS, NULL},
	    {"list", "cache list", 0, CONTROL_CACHE_LIST, NULL},
	    {"report", "report", 0, CONTROL_REPORT, NULL},
	    {"report_spaces", " report ", 0, CONTROL_REPORT, NULL},
	    {"report_extra", "report today", -1, 0, NULL},
	    {"report_upper", "REPORT", -1, 0, NULL},
	    {"flush", "cache flush example.com", 0, CONTROL_CACHE_FLUSH, "example.com"},
	    {"flush_upper_dot", "cache flush MAIL.Example.COM.", 0, CONTROL_CACHE_FLUSH,
	     "mail.example.com"},
	    {"refresh", "cache refresh a-b.example", 0, CONTROL_CACHE_REFRESH, "a-b.example"},
	    {"flush_missing", "cache flush", -1, 0, NULL},
	    {"flush_two", "cache flush a.example b.example", -1, 0, NULL},
	    {"flush_ip", "cache flush 192.0.2.1", -1, 0, NULL},
	    {"flush_bad_label", "cache flush -a.example", -1, 0, NULL},
	    {"flush_utf8", "cache flush \xc3\xa9.example", -1, 0, NULL},
	    {"flush_single_label", "cache flush localhost", -1, 0, NULL},
	    {"list_extra", "cache list all", -1, 0, NULL},
	    {"status_extra", "status now", -1, 0, NULL},
	    {"upper_verb", "STATUS", -1, 0, NULL},
	    {"empty", "", -1, 0, NULL},
	    {"unknown", "reload", -1, 0, NULL},
	    {"cache_alone", "cache", -1, 0, NULL},
	    {"ctl_char", "status\x1b", -1, 0, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char domain[256] = "", err[128] = "";
		enum control_cmd cmd = (enum control_cmd) - 1;
		int rc =
		    control_parse(cases[i].line, &cmd, domain, sizeof(domain), err, sizeof(err));

		if (rc != cases[i].rc)
			fail_msg("case %s: rc %d (%s)", cases[i].name, rc, err);
		if (rc == 0 && cmd != cases[i].cmd)
			fail_msg("case %s: cmd %d", cases[i].name, (int)cmd);
		if (rc == 0 && cases[i].domain != NULL && strcmp(domain, cases[i].domain) != 0)
			fail_msg("case %s: domain %s", cases[i].name, domain);
		if (rc < 0 && err[0] == '\0')
			fail_msg("case %s: no reason", cases[i].name);
	}
}

static void
client_requests(void **state)
{
	struct srv *s = srv_start((gid_t)-1, &fake_ops);
	char *out, *err;

	(void)state;
	assert_int_equal(request(s, "status", &out, &err), 0);
	assert_string_equal(out, "state running\nsessions_active 3\nnote two lines\n");
	assert_string_equal(err, "");
	free(out);
	free(err);

	/* body lines starting with "." survive the terminator rule both ways */
	s->fake.list_lines = 3000;
	assert_int_equal(request(s, "cache list", &out, &err), 0);
	assert_true(strncmp(out, ".leading-dot.example enforce\n.\nd0.example testing\n", 48) == 0);
	assert_non_null(strstr(out, "\nd2999.example testing\n"));
	free(out);
	free(err);

	assert_int_equal(request(s, "cache flush Example.COM", &out, &err), 0);
	assert_string_equal(out, "flushed example.com\n");
	assert_string_equal(s->fake.flushed, "example.com");
	free(out);
	free(err);

	assert_int_equal(request(s, "cache refresh unknown.example", &out, &err), 1);
	assert_string_equal(out, "");
	assert_string_equal(err, "stsproxy ctl: unknown.example: no cached policy\n");
	free(out);
	free(err);

	assert_int_equal(request(s, "cache refresh mta.example", &out, &err), 0);
	assert_string_equal(out, "refresh started\n");
	assert_string_equal(s->fake.refreshed, "mta.example");
	free(out);
	free(err);

	assert_int_equal(request(s, "report", &out, &err), 0);
	assert_string_equal(out,
	                    "example.com id=20240101 mode=enforce success=7 failure=2\n"
	                    "  starttls-not-supported mx=mx1.example.com ip=10.1.2.3 count=2\n");
	assert_string_equal(err, "");
	free(out);
	free(err);

	/* the server judges requests too: the client does not pre-check here */
	assert_int_equal(request(s, "cache flush", &out, &err), 1);
	assert_string_equal(err, "stsproxy ctl: usage: cache flush DOMAIN\n");
	free(out);
	free(err);
	assert_int_equal(s->fake.status_calls, 1);
	srv_stop(s);
}

struct raw_case {
	const char *name;
	const char *bytes;
	size_t len;
	const char *answer;
};

static void
bad_requests(void **state)
{
	static const struct raw_case cases[] = {
	    {"unknown", "bogus\n", 6, "error: unknown command\n.\n"},
	    {"crlf", "status\r\n", 8, "ok\nstate running\nsessions_active 3\nnote two lines\n.\n"},
	    {"no_lf_then_eof", "status", 6,
	     "ok\nstate running\nsessions_active 3\nnote two lines\n.\n"},
	    {"nul", "status\0x\n", 9, "error: malformed request\n.\n"},
	    {"bare_cr", "sta\rtus\n", 8, "error: control character in request\n.\n"},
	    {"bad_domain", "cache flush a..b\n", 17, "error: invalid domain\n.\n"},
	};
	struct srv *s = srv_start((gid_t)-1, &fake_ops);
	char longreq[CONTROL_REQUEST_MAX + 100];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *ans;
		int fd;

		/* "no_lf_then_eof" needs our half-close to end the line */
		if (strcmp(cases[i].name, "no_lf_then_eof") == 0) {
			struct sockaddr_un sun = {.sun_family = AF_UNIX};
			size_t got = 0;

			ans = calloc(1, 8192);
			assert_non_null(ans);
			snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->path);
			fd = socket(AF_UNIX, SOCK_STREAM, 0);
			assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
			assert_int_equal(send(fd, cases[i].bytes, cases[i].len, 0), 6);
			shutdown(fd, SHUT_WR);
			for (ssize_t n; (n = recv(fd, ans + got, 8191 - got, 0)) > 0;)
				got += (size_t)n;
			close(fd);
		} else {
			ans = raw(s->path, cases[i].bytes, cases[i].len);
		}
		if (strcmp(ans, cases[i].answer) != 0)
			fail_msg("case %s: answer \"%s\"", cases[i].name, ans);
		free(ans);
	}
	/* an overlong line is refused without waiting for its end */
	memset(longreq, 'a', sizeof(longreq));
	{
		char *ans = raw(s->path, longreq, sizeof(longreq));

		assert_string_equal(ans, "error: request too long\n.\n");
		free(ans);
	}
	srv_stop(s);
}

static void
answers_bounded(void **state)
{
	static const struct control_ops partial = {.status = fake_status,
	                                           .cache_list = fake_cache_list};
	struct srv *s = srv_start((gid_t)-1, &partial);
	char *out, *err;

	(void)state;
	s->fake.huge = true;
	assert_int_equal(request(s, "cache list", &out, &err), 1);
	assert_string_equal(out, "");
	assert_string_equal(err, "stsproxy ctl: answer too large\n");
	free(out);
	free(err);
	/* a handler the daemon did not give */
	assert_int_equal(request(s, "cache flush a.example", &out, &err), 1);
	assert_string_equal(err, "stsproxy ctl: not supported\n");
	free(out);
	free(err);
	assert_int_equal(request(s, "report", &out, &err), 1);
	assert_string_equal(err, "stsproxy ctl: not supported\n");
	free(out);
	free(err);
	srv_stop(s);
}

static void
socket_file(void **state)
{
	struct srv *s = srv_start(NOBODY, &fake_ops);
	struct control_params p = {0};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char path2[100], err[256];
	struct stat st;
	struct loop *loop2 = loop_new();
	struct control *c2;
	int fd;

	(void)state;
	assert_non_null(loop2);
	/* mode 0660 whatever the umask, group as asked */
	assert_int_equal(lstat(s->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, NOBODY);

	p.loop = loop2;
	p.group = (gid_t)-1;
	p.ops = &fake_ops;
	/* a live socket is not taken over */
	p.path = s->path;
	assert_null(control_start(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "in use by a running process"));

	/* a stale one (bound, nobody listening) is replaced */
	snprintf(path2, sizeof(path2), "%s/stale.sock", s->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path2);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	p.path = path2;
	c2 = control_start(&p, err, sizeof(err));
	if (c2 == NULL)
		fail_msg("stale socket: %s", err);
	assert_int_equal(lstat(path2, &st), 0);
	assert_int_equal(st.st_gid, getegid());
	control_stop(c2);

	/* a file that is not a socket is left alone */
	fd = open(path2, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(control_start(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "exists and is not a socket"));
	assert_int_equal(unlink(path2), 0);

	/* no directory */
	p.path = "/nonexistent-hL/control.sock";
	assert_null(control_start(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "control: bind"));
	control_stop(NULL);
	loop_free(loop2);
	srv_stop(s);
}

/*
 * as_nobody - fork a child that becomes nobody:nogroup (no supplementary
 * groups) and runs the client; returns its exit status, its stdout and stderr.
 */
static int
as_nobody(const char *path, const char *req, char *out, size_t outlen, char *err, size_t errlen)
{
	int po[2], pe[2], st;
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *o = fdopen(po[1], "w"), *e = fdopen(pe[1], "w");
		int rc;

		close(po[0]);
		close(pe[0]);
		if (o == NULL || e == NULL || setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
		    setuid(NOBODY) < 0)
			_exit(99);
		rc = control_client_run(path, req, o, e);
		fclose(o);
		fclose(e);
		_exit(rc);
	}
	close(po[1]);
	close(pe[1]);
	n = read(po[0], out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	n = read(pe[0], err, errlen - 1);
	err[n > 0 ? n : 0] = '\0';
	close(po[0]);
	close(pe[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
unauthorised_peer(void **state)
{
	struct srv *s;
	char out[1024], err[1024];

	(void)state;
	/* the credential check needs a real second user: this runs as root */
	assert_int_equal(geteuid(), 0);

	/* service group root: nobody reaches the socket (made 0666 here so that
	 * only the credential check stands in the way) and is refused */
	s = srv_start(0, &fake_ops);
	assert_int_equal(chmod(s->dir, 0755), 0);
	assert_int_equal(chmod(s->path, 0666), 0);
	assert_int_equal(as_nobody(s->path, "status", out, sizeof(out), err, sizeof(err)), 1);
	assert_string_equal(out, "");
	assert_string_equal(err, "stsproxy ctl: permission denied\n");
	assert_int_equal(s->fake.status_calls, 0);
	srv_stop(s);

	/* service group nogroup: the same peer is a member and is served */
	s = srv_start(NOBODY, &fake_ops);
	assert_int_equal(chmod(s->dir, 0755), 0);
	assert_int_equal(as_nobody(s->path, "status", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "state running\nsessions_active 3\nnote two lines\n");
	assert_int_equal(s->fake.status_calls, 1);
	srv_stop(s);
}

/* ctl - run control_client_main in a child; its stdout in out. */
static int
ctl(char **argv, char *out, size_t outlen)
{
	int po[2], st, argc = 0;
	pid_t pid;
	size_t got = 0;
	ssize_t n;

	while (argv[argc] != NULL)
		argc++;
	assert_int_equal(pipe(po), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(po[0]);
		dup2(po[1], 1);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(98);
		_exit(control_client_main(argc, argv));
	}
	close(po[1]);
	while (got < outlen - 1 && (n = read(po[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(po[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
ctl_command_line(void **state)
{
	struct srv *s = srv_start((gid_t)-1, &fake_ops);
	char conf[160], out[4096], text[256];
	FILE *f;

	(void)state;
	{
		char *argv[] = {"ctl", "-s", s->path, "status", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 0);
		assert_string_equal(out, "state running\nsessions_active 3\nnote two lines\n");
	}
	{
		char *argv[] = {"ctl", "-s", s->path, "cache", "flush", "b.example", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 0);
		assert_string_equal(out, "flushed b.example\n");
	}
	/* the socket named by the configuration file */
	snprintf(conf, sizeof(conf), "%s/stsproxy.conf", s->dir);
	snprintf(text, sizeof(text),
	         "listen = [ \"127.0.0.1:10025\" ];\ncontrol = { socket = \"%s\"; };\n", s->path);
	f = fopen(conf, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	{
		char *argv[] = {"ctl", "-c", conf, "cache", "refresh", "c.example", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 0);
		assert_string_equal(out, "refresh started\n");
	}
	{
		char *argv[] = {"ctl", "-c", conf, "cache", "refresh", "unknown.example", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 1);
	}
	/* usage errors never reach the server */
	{
		char *argv[] = {"ctl", "-s", s->path, "frobnicate", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 2);
	}
	{
		char *argv[] = {"ctl", "-x", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 2);
	}
	/* a configuration without a control socket, a socket nobody serves */
	f = fopen(conf, "w");
	assert_non_null(f);
	fputs("listen = [ \"127.0.0.1:10025\" ];\n", f);
	fclose(f);
	{
		char *argv[] = {"ctl", "-c", conf, "status", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 1);
	}
	{
		char *argv[] = {"ctl", "-s", "/nonexistent-hL.sock", "status", NULL};

		assert_int_equal(ctl(argv, out, sizeof(out)), 1);
	}
	assert_int_equal(unlink(conf), 0);
	srv_stop(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_table),      cmocka_unit_test(client_requests),
	    cmocka_unit_test(bad_requests),     cmocka_unit_test(answers_bounded),
	    cmocka_unit_test(socket_file),      cmocka_unit_test(unauthorised_peer),
	    cmocka_unit_test(ctl_command_line),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
