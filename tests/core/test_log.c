// sources: core/log.c
/*
 * test_log.c - the main log's journal side: key=value messages turned into
 * journal fields (a pure function, table-driven), the JOURNAL_STREAM
 * check, and a line sent through the real native journal protocol to a
 * socket of ours mounted where journald's would be (in a private mount
 * namespace of a child).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

struct fields_case {
	const char *name;
	const char *msg;
	const char *session, *domain, *result, *event; /* NULL: absent */
};

static const char *
field(const struct log_field *f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].name, name) == 0)
			return f[i].value;
	return NULL;
}

static void
check_field(const char *casename, const char *what, const char *got, const char *want)
{
	if (want == NULL && got != NULL)
		fail_msg("case %s: %s is \"%s\", want none", casename, what, got);
	if (want != NULL && (got == NULL || strcmp(got, want) != 0))
		fail_msg("case %s: %s is \"%s\", want \"%s\"", casename, what,
		         got != NULL ? got : "(none)", want);
}

static void
fields_table(void **state)
{
	static const struct fields_case cases[] = {
	    {"all_four",
	     "event=rcpt_blocked session=4f2a domain=example.com result=certificate-expired",
	     "4f2a", "example.com", "certificate-expired", "rcpt_blocked"},
	    {"result_type_wins_later", "result=x result_type=sts-policy-invalid", NULL, NULL,
	     "sts-policy-invalid", NULL},
	    {"result_type_wins_earlier", "result_type=dnssec-invalid result=y", NULL, NULL,
	     "dnssec-invalid", NULL},
	    {"quoted", "domain=\"a b\" event=\"say \\\"hi\\\" \\\\o/\"", NULL, "a b", NULL,
	     "say \"hi\" \\o/"},
	    {"key_inside_quotes", "reason=\"x domain=evil session=evil\" domain=good", NULL, "good",
	     NULL, NULL},
	    {"key_only_in_quotes", "reason=\"x domain=evil\"", NULL, NULL, NULL, NULL},
	    {"not_word_start", "xdomain=a my_session=b foo.domain=c", NULL, NULL, NULL, NULL},
	    {"first_wins", "domain=a.example domain=b.example", NULL, "a.example", NULL, NULL},
	    {"empty_skipped", "domain= session=s1 domain=late.example", "s1", "late.example", NULL,
	     NULL},
	    {"plain", "listening on 127.0.0.1:10025", NULL, NULL, NULL, NULL},
	    {"empty_message", "", NULL, NULL, NULL, NULL},
	    {"unterminated_quote", "domain=\"abc", NULL, "abc", NULL, NULL},
	    {"tabs", "event=a\tsession=b", "b", NULL, NULL, "a"},
	    {"upper_key", "DOMAIN=x Domain=y", NULL, NULL, NULL, NULL},
	    {"stray_equals", "=x == domain=z", NULL, "z", NULL, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct log_field f[LOG_FIELDS_MAX];
		size_t n = log_fields(cases[i].msg, f);
		size_t want = (cases[i].session != NULL) + (cases[i].domain != NULL) +
		              (cases[i].result != NULL) + (cases[i].event != NULL);

		if (n != want)
			fail_msg("case %s: %zu fields, want %zu", cases[i].name, n, want);
		check_field(cases[i].name, "SESSION_ID", field(f, n, "SESSION_ID"),
		            cases[i].session);
		check_field(cases[i].name, "DOMAIN", field(f, n, "DOMAIN"), cases[i].domain);
		check_field(cases[i].name, "RESULT_TYPE", field(f, n, "RESULT_TYPE"),
		            cases[i].result);
		check_field(cases[i].name, "EVENT", field(f, n, "EVENT"), cases[i].event);
	}
}

static void
fields_order_and_bounds(void **state)
{
	char msg[2 * LOG_FIELD_VALUE_MAX + 64];
	struct log_field f[LOG_FIELDS_MAX];
	size_t n;

	(void)state;
	n = log_fields("event=e result=r domain=d session=s", f);
	assert_int_equal(n, 4);
	assert_string_equal(f[0].name, "SESSION_ID");
	assert_string_equal(f[1].name, "DOMAIN");
	assert_string_equal(f[2].name, "RESULT_TYPE");
	assert_string_equal(f[3].name, "EVENT");

	/* a value longer than the field is cut, never overflows */
	memcpy(msg, "domain=", 7);
	memset(msg + 7, 'a', 2 * LOG_FIELD_VALUE_MAX);
	snprintf(msg + 7 + 2 * LOG_FIELD_VALUE_MAX, 64, " session=after");
	n = log_fields(msg, f);
	assert_int_equal(n, 2);
	assert_int_equal(strlen(f[1].value), LOG_FIELD_VALUE_MAX - 1);
	assert_string_equal(f[0].value, "after");
}

static void
journal_stream_match(void **state)
{
	char path[] = "/tmp/sts-log-XXXXXX", env[64];
	struct stat st;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	assert_true(log_is_journal_stream(env, fd));
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino + 1);
	assert_false(log_is_journal_stream(env, fd));
	snprintf(env, sizeof(env), "%llu:%llux", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	assert_false(log_is_journal_stream(env, fd));
	assert_false(log_is_journal_stream(NULL, fd));
	assert_false(log_is_journal_stream("", fd));
	assert_false(log_is_journal_stream("abc", fd));
	assert_false(log_is_journal_stream("1:2", -1));
	close(fd);
	unlink(path);
}

/* read_file - the whole small file at path, in buf. */
static void
read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

static void
file_output_unchanged(void **state)
{
	char path[] = "/tmp/sts-log-XXXXXX", buf[1024], env[64];
	struct stat st;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	/* even with stderr claimed by the journal, a configured file gets the lines */
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	assert_int_equal(log_open(path), 0);
	log_msg(LOG_LVL_WARN, "event=test session=s9 domain=f.example");
	log_msg(LOG_LVL_DEBUG, "dropped below the level");
	assert_int_equal(log_open(NULL), 0);
	unsetenv("JOURNAL_STREAM");
	read_file(path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "Z warn event=test session=s9 domain=f.example\n"));
	assert_null(strstr(buf, "dropped"));
	unlink(path);
}

/*
 * journal_child - in a private mount namespace, put a datagram socket where
 * journald listens, point JOURNAL_STREAM at stderr (a file), log, and check
 * the datagram. Returns 0, or the number of the check that failed.
 */
static int
journal_child(const char *errpath)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};
	char buf[4096], env[64];
	struct stat st;
	ssize_t n;
	int fd, efd;

	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
		return 1;
	if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
		return 2;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/run/systemd/journal/socket");
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return 3;
	if ((efd = open(errpath, O_WRONLY | O_TRUNC)) < 0 || dup2(efd, STDERR_FILENO) < 0 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return 4;
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_open(NULL);
	log_msg(LOG_LVL_WARN, "event=rcpt_blocked session=s1 domain=d.example "
	                      "result=starttls-not-supported reason=\"no STARTTLS\"");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 5;
	buf[n] = '\0';
	if (strstr(buf, "MESSAGE=event=rcpt_blocked session=s1 domain=d.example "
	                "result=starttls-not-supported reason=\"no STARTTLS\"\n") == NULL)
		return 6;
	if (strstr(buf, "\nPRIORITY=4\n") == NULL || strstr(buf, "\nSESSION_ID=s1\n") == NULL ||
	    strstr(buf, "\nDOMAIN=d.example\n") == NULL ||
	    strstr(buf, "\nRESULT_TYPE=starttls-not-supported\n") == NULL ||
	    strstr(buf, "\nEVENT=rcpt_blocked\n") == NULL ||
	    strstr(buf, "\nSYSLOG_IDENTIFIER=stsproxy\n") == NULL)
		return 7;
	/* nothing went to stderr while the journal took the line */
	if (fstat(STDERR_FILENO, &st) < 0 || st.st_size != 0)
		return 8;
	/* a message that is not key=value still goes, with no extra field */
	log_msg(LOG_LVL_ERR, "plain words");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 9;
	buf[n] = '\0';
	if (strstr(buf, "MESSAGE=plain words\n") == NULL || strstr(buf, "\nPRIORITY=3\n") == NULL ||
	    strstr(buf, "SESSION_ID=") != NULL || strstr(buf, "DOMAIN=") != NULL)
		return 10;
	close(fd);
	return 0;
}

static void
journal_native_protocol(void **state)
{
	char errpath[] = "/tmp/sts-log-XXXXXX", buf[1024];
	int fd = mkstemp(errpath), st;
	pid_t pid;

	(void)state;
	/* a mount namespace needs root */
	assert_int_equal(geteuid(), 0);
	assert_true(fd >= 0);
	close(fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(journal_child(errpath));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("journal check %d failed", WEXITSTATUS(st));
	/* and the parent's view of the child's stderr: empty */
	read_file(errpath, buf, sizeof(buf));
	assert_string_equal(buf, "");
	unlink(errpath);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fields_table),
	    cmocka_unit_test(fields_order_and_bounds),
	    cmocka_unit_test(journal_stream_match),
	    cmocka_unit_test(file_output_unchanged),
	    cmocka_unit_test(journal_native_protocol),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
