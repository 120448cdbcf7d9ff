// sources: core/evlog.c core/util.c
/*
 * test_evlog.c - the JSON-lines event log: every line parses back, carries
 * a timestamp, survives hostile strings, is written whole under concurrency
 * and follows a rotation.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/evlog.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/evlog-test-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/events.json", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	evlog_close();
	unlink(f->path);
	snprintf(p, sizeof(p), "%s.1", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Read path and split it into lines; every line must end in '\n'. */
static char **
read_lines(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "r");
	char **lines = NULL;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;

	*n = 0;
	assert_non_null(fp);
	while ((len = getline(&buf, &cap, fp)) != -1) {
		assert_true(len > 0);
		assert_int_equal(buf[len - 1], '\n');
		buf[len - 1] = '\0';
		char **grown = realloc(lines, (*n + 1) * sizeof(*lines));
		assert_non_null(grown);
		lines = grown;
		lines[*n] = strdup(buf);
		assert_non_null(lines[*n]);
		(*n)++;
	}
	free(buf);
	fclose(fp);
	return lines;
}

static void
free_lines(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

static json_t *
parse(const char *line)
{
	json_error_t err;
	json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &err);

	if (j == NULL)
		fail_msg("line does not parse: %s: %s", err.text, line);
	assert_true(json_is_object(j));
	return j;
}

/* "2024-05-01T12:34:56.789Z" */
static void
assert_rfc3339_ms(const char *ts)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	assert_non_null(ts);
	assert_int_equal(strlen(ts), strlen(shape));
	for (size_t i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd')
			assert_true(ts[i] >= '0' && ts[i] <= '9');
		else
			assert_int_equal(ts[i], shape[i]);
	}
}

static void
disabled_is_noop(void **state)
{
	struct fixture *f = *state;
	json_t *ev = json_pack("{s:s}", "event", "x");
	struct stat st;

	assert_int_equal(evlog_open(NULL), 0);
	assert_int_equal(evlog_write(ev), 0);
	assert_int_equal(evlog_open(""), 0);
	assert_int_equal(evlog_write(ev), 0);
	assert_int_equal(evlog_reopen(), 0);
	assert_int_equal(evlog_write(ev), 0);
	evlog_close();
	assert_int_equal(evlog_write(ev), 0);
	assert_int_equal(stat(f->path, &st), -1);
	json_decref(ev);
}

static void
lines_parse_and_carry_ts(void **state)
{
	struct fixture *f = *state;
	json_t *ev = json_pack("{s:s,s:i,s:{s:b}}", "event", "policy", "n", 42, "sub", "ok", 1);
	json_t *with_ts = json_pack("{s:s,s:s}", "event", "x", "ts", "2000-01-01T00:00:00.000Z");
	char **lines;
	size_t n;

	assert_int_equal(evlog_open(f->path), 0);
	assert_int_equal(evlog_write(ev), 0);
	assert_int_equal(evlog_write(ev), 0);
	assert_int_equal(evlog_write(with_ts), 0);
	/* The caller's object is not modified. */
	assert_null(json_object_get(ev, "ts"));
	assert_int_equal(json_object_size(ev), 3);
	evlog_close();

	lines = read_lines(f->path, &n);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 2; i++) {
		json_t *j = parse(lines[i]);
		/* ts first, compact (no spaces between tokens). */
		assert_int_equal(strncmp(lines[i], "{\"ts\":\"", 7), 0);
		assert_null(strstr(lines[i], ", "));
		assert_null(strstr(lines[i], ": "));
		assert_rfc3339_ms(json_string_value(json_object_get(j, "ts")));
		assert_string_equal(json_string_value(json_object_get(j, "event")), "policy");
		assert_int_equal(json_integer_value(json_object_get(j, "n")), 42);
		assert_true(json_is_true(json_object_get(json_object_get(j, "sub"), "ok")));
		json_decref(j);
	}
	json_t *j = parse(lines[2]);
	assert_string_equal(json_string_value(json_object_get(j, "ts")),
	                    "2000-01-01T00:00:00.000Z");
	json_decref(j);
	free_lines(lines, n);
	json_decref(ev);
	json_decref(with_ts);
}

static void
non_object_refused(void **state)
{
	struct fixture *f = *state;
	json_t *arr = json_array();
	size_t n;

	assert_int_equal(evlog_open(f->path), 0);
	assert_int_equal(evlog_write(arr), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(evlog_write(NULL), -1);
	evlog_close();
	char **lines = read_lines(f->path, &n);
	free_lines(lines, n);
	assert_int_equal(n, 0);
	json_decref(arr);
}

static void
open_failure_keeps_previous(void **state)
{
	struct fixture *f = *state;
	json_t *ev = json_pack("{s:s}", "event", "kept");
	size_t n;

	assert_int_equal(evlog_open(f->path), 0);
	assert_int_equal(evlog_open("/nonexistent-dir/x/events.json"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(evlog_write(ev), 0);
	evlog_close();
	char **lines = read_lines(f->path, &n);
	free_lines(lines, n);
	assert_int_equal(n, 1);
	json_decref(ev);
}

/* Attacker-controlled bytes: what evlog_str() keeps and what it replaces. */
static void
hostile_strings(void **state)
{
#define FFFD "\xEF\xBF\xBD"
	static const struct {
		const char *name;
		const char *in;
		size_t in_len;
		const char *want;
		size_t want_len;
	} cases[] = {
	    {"ascii", "mx.example.com", 14, "mx.example.com", 14},
	    {"empty", "", 0, "", 0},
	    {"valid_utf8",
	     "b\xC3\xBC"
	     "cher",
	     6,
	     "b\xC3\xBC"
	     "cher",
	     6},
	    {"four_byte", "\xF0\x9F\x93\xA7", 4, "\xF0\x9F\x93\xA7", 4},
	    {"lone_continuation", "a\x80z", 3, "a" FFFD "z", 5},
	    {"truncated_at_end", "ab\xE2\x82", 4, "ab" FFFD FFFD, 8},
	    {"overlong_nul", "\xC0\x80", 2, FFFD FFFD, 6},
	    {"surrogate", "\xED\xA0\x80", 3, FFFD FFFD FFFD, 9},
	    {"above_max", "\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD, 12},
	    {"ff_fe", "\xFF\xFE", 2, FFFD FFFD, 6},
	    {"nul_inside", "a\0b", 3, "a\0b", 3},
	    {"controls", "250 ok\r\n\t\x1b[0m\x7f", 14, "250 ok\r\n\t\x1b[0m\x7f", 14},
	    {"quotes_backslash", "\"}\\{\"", 5, "\"}\\{\"", 5},
	    {"line_separator", "\xE2\x80\xA8", 3, "\xE2\x80\xA8", 3},
	};
	struct fixture *f = *state;
	const size_t ncases = sizeof(cases) / sizeof(cases[0]);
	char **lines;
	size_t n;

	assert_int_equal(evlog_open(f->path), 0);
	for (size_t i = 0; i < ncases; i++) {
		json_t *s = evlog_str(cases[i].in, cases[i].in_len);
		assert_non_null(s);
		if (json_string_length(s) != cases[i].want_len ||
		    memcmp(json_string_value(s), cases[i].want, cases[i].want_len) != 0)
			fail_msg("case %s: wrong string", cases[i].name);
		json_t *ev = json_pack("{s:s,s:o}", "case", cases[i].name, "v", s);
		assert_non_null(ev);
		assert_int_equal(evlog_write(ev), 0);
		json_decref(ev);
	}
	evlog_close();

	/* One line per event, each parses back (jansson checks UTF-8) to the same bytes. */
	lines = read_lines(f->path, &n);
	assert_int_equal(n, ncases);
	for (size_t i = 0; i < n; i++) {
		json_error_t err;
		json_t *j = json_loads(lines[i], JSON_ALLOW_NUL, &err);
		if (j == NULL)
			fail_msg("case %s: %s", cases[i].name, err.text);
		json_t *v = json_object_get(j, "v");
		assert_string_equal(json_string_value(json_object_get(j, "case")), cases[i].name);
		assert_int_equal(json_string_length(v), cases[i].want_len);
		assert_memory_equal(json_string_value(v), cases[i].want, cases[i].want_len);
		json_decref(j);
	}
	free_lines(lines, n);

	/* A NULL pointer with no bytes is the empty string. */
	json_t *e = evlog_str(NULL, 0);
	assert_string_equal(json_string_value(e), "");
	json_decref(e);
#undef FFFD
}

/* Every byte value through evlog_str() gives a string jansson accepts. */
static void
all_bytes_round_trip(void **state)
{
	unsigned char in[256 * 3];
	json_t *s, *back;
	char *dump;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)((i * 151u) & 0xFF);
	s = evlog_str((const char *)in, sizeof(in));
	assert_non_null(s);
	dump = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
	assert_non_null(dump);
	assert_null(strchr(dump, '\n'));
	back = json_loads(dump, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	assert_non_null(back);
	assert_true(json_equal(s, back));
	free(dump);
	json_decref(back);
	json_decref(s);
}

#define THREAD_LINES 1000

struct writer {
	int id;
	int failures;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	char pad[600];

	/* Long lines make any interleaving visible. */
	memset(pad, 'a' + w->id, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < THREAD_LINES; i++) {
		json_t *ev = json_pack("{s:i,s:i,s:s}", "thread", w->id, "seq", i, "pad", pad);
		if (ev == NULL || evlog_write(ev) != 0)
			w->failures++;
		json_decref(ev);
	}
	return NULL;
}

static void
two_threads_whole_lines(void **state)
{
	struct fixture *f = *state;
	struct writer w[2] = {{.id = 0}, {.id = 1}};
	pthread_t t[2];
	int seen[2][THREAD_LINES] = {{0}};
	char **lines;
	size_t n;

	assert_int_equal(evlog_open(f->path), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	evlog_close();
	assert_int_equal(w[0].failures + w[1].failures, 0);

	lines = read_lines(f->path, &n);
	assert_int_equal(n, 2 * THREAD_LINES);
	for (size_t i = 0; i < n; i++) {
		json_t *j = parse(lines[i]);
		json_int_t tid = json_integer_value(json_object_get(j, "thread"));
		json_int_t seq = json_integer_value(json_object_get(j, "seq"));
		assert_in_range(tid, 0, 1);
		assert_in_range(seq, 0, THREAD_LINES - 1);
		assert_int_equal(strlen(json_string_value(json_object_get(j, "pad"))), 599);
		seen[tid][seq]++;
		json_decref(j);
	}
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < THREAD_LINES; k++)
			assert_int_equal(seen[i][k], 1);
	free_lines(lines, n);
}

/*
 * The packet inspector is another process with its own descriptor: only
 * the single write(2) per line keeps lines whole there, not the mutex.
 */
static void
two_processes_whole_lines(void **state)
{
	struct fixture *f = *state;
	struct writer w = {.id = 0};
	int seen[2][THREAD_LINES] = {{0}};
	char **lines;
	size_t n;
	pid_t pid;
	int status;

	assert_int_equal(evlog_open(f->path), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		struct writer cw = {.id = 1};
		/* A descriptor of its own, as a separate program would have. */
		if (evlog_open(f->path) != 0)
			_exit(2);
		writer_main(&cw);
		evlog_close();
		_exit(cw.failures == 0 ? 0 : 1);
	}
	writer_main(&w);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	evlog_close();
	assert_int_equal(w.failures, 0);

	lines = read_lines(f->path, &n);
	assert_int_equal(n, 2 * THREAD_LINES);
	for (size_t i = 0; i < n; i++) {
		json_t *j = parse(lines[i]);
		json_int_t pid_id = json_integer_value(json_object_get(j, "thread"));
		json_int_t seq = json_integer_value(json_object_get(j, "seq"));
		assert_in_range(pid_id, 0, 1);
		assert_in_range(seq, 0, THREAD_LINES - 1);
		seen[pid_id][seq]++;
		json_decref(j);
	}
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < THREAD_LINES; k++)
			assert_int_equal(seen[i][k], 1);
	free_lines(lines, n);
}

static void
reopen_after_rename(void **state)
{
	struct fixture *f = *state;
	char rotated[160];
	json_t *ev[3];
	char **lines;
	size_t n;

	snprintf(rotated, sizeof(rotated), "%s.1", f->path);
	for (int i = 0; i < 3; i++)
		ev[i] = json_pack("{s:i}", "n", i);
	assert_int_equal(evlog_open(f->path), 0);
	assert_int_equal(evlog_write(ev[0]), 0);
	assert_int_equal(rename(f->path, rotated), 0);
	/* Until the reopen, events follow the renamed file. */
	assert_int_equal(evlog_write(ev[1]), 0);
	assert_int_equal(evlog_reopen(), 0);
	assert_int_equal(evlog_write(ev[2]), 0);
	evlog_close();

	lines = read_lines(rotated, &n);
	assert_int_equal(n, 2);
	assert_non_null(strstr(lines[0], "\"n\":0"));
	assert_non_null(strstr(lines[1], "\"n\":1"));
	free_lines(lines, n);
	lines = read_lines(f->path, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(lines[0], "\"n\":2"));
	free_lines(lines, n);
	for (int i = 0; i < 3; i++)
		json_decref(ev[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(disabled_is_noop, setup, teardown),
	    cmocka_unit_test_setup_teardown(lines_parse_and_carry_ts, setup, teardown),
	    cmocka_unit_test_setup_teardown(non_object_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(open_failure_keeps_previous, setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_strings, setup, teardown),
	    cmocka_unit_test(all_bytes_round_trip),
	    cmocka_unit_test_setup_teardown(two_threads_whole_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(two_processes_whole_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(reopen_after_rename, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
