// sources: main/dirs.c core/util.c core/log.c
/*
 * test_dirs.c - the directories the daemon writes in: which ones a
 * configuration names, what --check-config says of them, and what the
 * start creates and hands to the service user. Each case works in a fresh
 * directory under /tmp; the ownership cases need root and use "nobody".
 */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "main/dirs.h"

struct fixture {
	char top[64];
	char state[256], logf[256], events[256], sock[256];
	struct conf c;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->top, sizeof(f->top), "/tmp/sts-dirs-XXXXXX");
	if (mkdtemp(f->top) == NULL || chmod(f->top, 0755) < 0)
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/var/lib/stsproxy", f->top);
	snprintf(f->logf, sizeof(f->logf), "%s/var/log/stsproxy/stsproxy.log", f->top);
	snprintf(f->events, sizeof(f->events), "%s/var/log/stsproxy/events.json", f->top);
	snprintf(f->sock, sizeof(f->sock), "%s/run/stsproxy/control.sock", f->top);
	f->c.state_dir = f->state;
	f->c.log.file = f->logf;
	f->c.log.events = f->events;
	f->c.control.socket = f->sock;
	f->c.user = "nobody";
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* check - run dirs_check(); the notes and problems it wrote, and how many problems. */
static int
check(const struct conf *c, char **notes, char **problems)
{
	size_t nlen, plen;
	FILE *n = open_memstream(notes, &nlen), *p = open_memstream(problems, &plen);
	int bad;

	assert_non_null(n);
	assert_non_null(p);
	bad = dirs_check(c, "T: ", n, p);
	fclose(n);
	fclose(p);
	return bad;
}

static size_t
count(const char *s, const char *needle)
{
	size_t k = 0;

	for (const char *q = strstr(s, needle); q != NULL; q = strstr(q + 1, needle))
		k++;
	return k;
}

static void
list_names_each_directory(void **state)
{
	static const struct {
		const char *name, *state_dir, *logf, *events, *sock;
		int n;
		const char *dirs[DIRS_MAX];
	} cases[] = {
	    {"all", "/s", "/l/a.log", "/e/e.json", "/r/c.sock", 4, {"/s", "/l", "/e", "/r"}},
	    {"bare_names", "st", "a.log", NULL, NULL, 2, {"st", "."}},
	    {"at_the_top", "/s", "/a.log", NULL, "/c.sock", 3, {"/s", "/", "/"}},
	    {"empty_log_is_stderr", "/s", "", NULL, NULL, 1, {"/s"}},
	    {"nested", "/a/b/c", "/a/b/c/d/x.log", NULL, NULL, 2, {"/a/b/c", "/a/b/c/d"}},
	};
	struct dirs_entry e[DIRS_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c;
		int n;

		memset(&c, 0, sizeof(c));
		c.state_dir = (char *)cases[i].state_dir;
		c.log.file = (char *)cases[i].logf;
		c.log.events = (char *)cases[i].events;
		c.control.socket = (char *)cases[i].sock;
		n = dirs_list(&c, e, DIRS_MAX);
		if (n != cases[i].n)
			fail_msg("%s: %d entries", cases[i].name, n);
		for (int k = 0; k < n; k++)
			if (strcmp(e[k].dir, cases[i].dirs[k]) != 0)
				fail_msg("%s: entry %d is %s", cases[i].name, k, e[k].dir);
	}
}

/* Nothing there yet: each is named as one that the start will create, none stops it. */
static void
check_names_missing_ones(void **state)
{
	struct fixture *f = *state;
	char *notes, *problems;

	assert_int_equal(geteuid(), 0);
	assert_int_equal(check(&f->c, &notes, &problems), 0);
	assert_string_equal(problems, "");
	assert_int_equal(count(notes, "will be created at start (owner nobody, mode 0750)"), 4);
	assert_non_null(strstr(notes, "T: state_dir: "));
	assert_non_null(strstr(notes, "T: log.file: "));
	assert_non_null(strstr(notes, "T: log.events: "));
	assert_non_null(strstr(notes, "T: control.socket: "));
	free(notes);
	free(problems);
}

static mode_t
mode_of(const char *path, uid_t *uid)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	*uid = st.st_uid;
	return st.st_mode & 07777;
}

/* Created with their parents: parents 0755 root, the directories 0750 nobody, umask or not. */
static void
create_makes_them_for_the_user(void **state)
{
	struct fixture *f = *state;
	struct passwd *pw = getpwnam("nobody");
	char err[256], path[300], *notes, *problems;
	mode_t old = umask(077);
	uid_t uid;

	assert_non_null(pw);
	assert_int_equal(dirs_create(&f->c, err, sizeof(err)), 0);
	umask(old);
	snprintf(path, sizeof(path), "%s/var/lib", f->top);
	assert_int_equal(mode_of(path, &uid), 0755);
	assert_int_equal(uid, 0);
	assert_int_equal(mode_of(f->state, &uid), 0750);
	assert_int_equal(uid, pw->pw_uid);
	snprintf(path, sizeof(path), "%s/var/log/stsproxy", f->top);
	assert_int_equal(mode_of(path, &uid), 0750);
	assert_int_equal(uid, pw->pw_uid);
	snprintf(path, sizeof(path), "%s/run/stsproxy", f->top);
	assert_int_equal(mode_of(path, &uid), 0750);
	assert_int_equal(uid, pw->pw_uid);
	/* Then nothing is left to say. */
	assert_int_equal(check(&f->c, &notes, &problems), 0);
	assert_string_equal(notes, "");
	assert_string_equal(problems, "");
	free(notes);
	free(problems);
}

/* An existing directory is left as it is. */
static void
create_leaves_existing_alone(void **state)
{
	struct fixture *f = *state;
	char err[256], path[300];
	uid_t uid;

	snprintf(path, sizeof(path), "%s/run", f->top);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/run/stsproxy", f->top);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(dirs_create(&f->c, err, sizeof(err)), 0);
	assert_int_equal(mode_of(path, &uid), 0700);
	assert_int_equal(uid, 0);
}

/* The control socket is bound after the drop: root's own directory will not do. */
static void
check_control_dir_not_writable_by_user(void **state)
{
	struct fixture *f = *state;
	char path[300], *notes, *problems;

	snprintf(path, sizeof(path), "%s/run", f->top);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/run/stsproxy", f->top);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(check(&f->c, &notes, &problems), 1);
	assert_non_null(strstr(problems, "T: control.socket: "));
	assert_non_null(strstr(problems, "is not writable by nobody: owner root"));
	assert_int_equal(count(notes, "will be created"), 3);
	free(notes);
	free(problems);
}

/* A file where a directory should be. */
static void
check_component_not_a_directory(void **state)
{
	struct fixture *f = *state;
	char path[300], *notes, *problems;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/var", f->top);
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_int_equal(check(&f->c, &notes, &problems), 3);
	assert_int_equal(count(problems, "/var is not a directory"), 3);
	free(notes);
	free(problems);
}

/* The user could not pass a parent only root may enter. */
static void
check_parent_closed_to_user(void **state)
{
	struct fixture *f = *state;
	char *notes, *problems;

	assert_int_equal(chmod(f->top, 0700), 0);
	assert_int_equal(check(&f->c, &notes, &problems), 4);
	assert_int_equal(count(problems, "nobody cannot reach it: no search permission on"), 4);
	free(notes);
	free(problems);
	assert_int_equal(chmod(f->top, 0755), 0);
}

/* An unknown user stops everything. */
static void
check_unknown_user(void **state)
{
	struct fixture *f = *state;
	char *notes, *problems;

	f->c.user = "no-such-user-here";
	assert_int_equal(check(&f->c, &notes, &problems), 1);
	assert_non_null(strstr(problems, "T: user: user \"no-such-user-here\": no such user"));
	free(notes);
	free(problems);
}

/* The state directory and its files, and the log files, go to the user; a device does not. */
static void
hand_over_gives_files_not_devices(void **state)
{
	struct fixture *f = *state;
	struct passwd *pw = getpwnam("nobody");
	char err[256], path[300];
	struct stat st;
	FILE *fp;

	assert_non_null(pw);
	assert_int_equal(dirs_create(&f->c, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/cache", f->state);
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_non_null(fp = fopen(f->logf, "w"));
	fclose(fp);
	f->c.log.events = "/dev/null";
	assert_int_equal(dirs_hand_over(&f->c, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, pw->pw_uid);
	assert_int_equal(stat(f->logf, &st), 0);
	assert_int_equal(st.st_uid, pw->pw_uid);
	assert_int_equal(stat("/dev/null", &st), 0);
	assert_int_equal(st.st_uid, 0);
}

/* Without a user to switch to, nothing changes hands. */
static void
hand_over_without_user(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct stat st;

	f->c.user = NULL;
	assert_int_equal(dirs_create(&f->c, err, sizeof(err)), 0);
	assert_int_equal(dirs_hand_over(&f->c, err, sizeof(err)), 0);
	assert_int_equal(stat(f->state, &st), 0);
	assert_int_equal(st.st_uid, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(list_names_each_directory),
	    cmocka_unit_test_setup_teardown(check_names_missing_ones, setup, teardown),
	    cmocka_unit_test_setup_teardown(create_makes_them_for_the_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(create_leaves_existing_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(check_control_dir_not_writable_by_user, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(check_component_not_a_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(check_parent_closed_to_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(check_unknown_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(hand_over_gives_files_not_devices, setup, teardown),
	    cmocka_unit_test_setup_teardown(hand_over_without_user, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
