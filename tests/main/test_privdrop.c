// sources: main/privdrop.c
/*
 * test_privdrop.c - the switch to the service user, observed from outside:
 * a forked child calls privdrop() and reports its /proc/self/status ids
 * and capability sets, and whether SO_MARK (which needs CAP_NET_ADMIN)
 * still works; the parent judges. These cases need root.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "main/privdrop.h"

#define NOBODY 65534

struct report {
	int rc;
	char err[256];
	char uid[64], gid[64], groups[128];
	unsigned long long inh, prm, eff, bnd, amb;
	int mark_ok;
};

enum before {
	AS_ROOT = 0,
	AS_NOBODY_ALREADY, /* the caller is not root: nothing to do */
};

static void
status_field(const char *status, const char *key, char *out, size_t outlen)
{
	const char *p = strstr(status, key);
	size_t n;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(key);
	while (*p == '\t' || *p == ' ')
		p++;
	n = strcspn(p, "\n");
	while (n > 0 && p[n - 1] == ' ')
		n--;
	snprintf(out, outlen, "%.*s", (int)n, p);
}

static unsigned long long
status_hex(const char *status, const char *key)
{
	char v[64];

	status_field(status, key, v, sizeof(v));
	return strtoull(v, NULL, 16);
}

/* child - runs in the forked process; never returns. */
static void
child(int fd, enum before before, const char *user, bool keep)
{
	struct report r;
	char status[4096];
	FILE *f;
	size_t n;
	int s, mark = 7;

	memset(&r, 0, sizeof(r));
	if (before == AS_NOBODY_ALREADY &&
	    (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0))
		_exit(99);
	r.rc = privdrop(user, keep, r.err, sizeof(r.err));
	if ((f = fopen("/proc/self/status", "r")) == NULL)
		_exit(98);
	n = fread(status, 1, sizeof(status) - 1, f);
	status[n] = '\0';
	fclose(f);
	status_field(status, "\nUid:", r.uid, sizeof(r.uid));
	status_field(status, "\nGid:", r.gid, sizeof(r.gid));
	status_field(status, "\nGroups:", r.groups, sizeof(r.groups));
	r.inh = status_hex(status, "\nCapInh:");
	r.prm = status_hex(status, "\nCapPrm:");
	r.eff = status_hex(status, "\nCapEff:");
	r.bnd = status_hex(status, "\nCapBnd:");
	r.amb = status_hex(status, "\nCapAmb:");
	s = socket(AF_INET, SOCK_STREAM, 0);
	r.mark_ok = s >= 0 && setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0;
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(97);
	/* _exit: no sanitizer or atexit work as a changed user */
	_exit(0);
}

static void
run(enum before before, const char *user, bool keep, struct report *r)
{
	int p[2], st;
	pid_t pid;

	assert_int_equal(geteuid(), 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child(p[1], before, user, keep);
	}
	close(p[1]);
	assert_int_equal(read(p[0], r, sizeof(*r)), (ssize_t)sizeof(*r));
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

#define NET_ADMIN (1ULL << 12)

static void
drop_keep_net_admin(void **state)
{
	struct report r;

	(void)state;
	run(AS_ROOT, "nobody", true, &r);
	if (r.rc != 0)
		fail_msg("privdrop: %s", r.err);
	assert_string_equal(r.uid, "65534\t65534\t65534\t65534");
	assert_string_equal(r.gid, "65534\t65534\t65534\t65534");
	assert_string_equal(r.groups, "65534");
	/* CAP_NET_ADMIN is the only capability left, in every set */
	assert_int_equal(r.eff, NET_ADMIN);
	assert_int_equal(r.prm, NET_ADMIN);
	assert_int_equal(r.inh, NET_ADMIN);
	assert_int_equal(r.amb, NET_ADMIN);
	assert_int_equal(r.bnd, NET_ADMIN);
	/* and it works: SO_MARK needs it */
	assert_true(r.mark_ok);
}

static void
drop_everything(void **state)
{
	struct report r;

	(void)state;
	run(AS_ROOT, "nobody", false, &r);
	if (r.rc != 0)
		fail_msg("privdrop: %s", r.err);
	assert_string_equal(r.uid, "65534\t65534\t65534\t65534");
	assert_string_equal(r.gid, "65534\t65534\t65534\t65534");
	assert_int_equal(r.eff, 0);
	assert_int_equal(r.prm, 0);
	assert_int_equal(r.inh, 0);
	assert_int_equal(r.amb, 0);
	assert_int_equal(r.bnd, 0);
	assert_false(r.mark_ok);
}

static void
nothing_to_do(void **state)
{
	struct report r;

	(void)state;
	/* no user configured: stay root with everything */
	run(AS_ROOT, NULL, true, &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.uid, "0\t0\t0\t0");
	assert_true(r.mark_ok);
	run(AS_ROOT, "", false, &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.uid, "0\t0\t0\t0");
	/* not root (started by the unit as the service user): nothing to change */
	run(AS_NOBODY_ALREADY, "nobody", true, &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.uid, "65534\t65534\t65534\t65534");
}

static void
refused_users(void **state)
{
	struct report r;

	(void)state;
	run(AS_ROOT, "no-such-user-hL", true, &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err, "user no-such-user-hL: no such user");
	/* nothing was changed before the lookup failed */
	assert_string_equal(r.uid, "0\t0\t0\t0");
	run(AS_ROOT, "root", true, &r);
	assert_int_equal(r.rc, -1);
	assert_non_null(strstr(r.err, "refusing"));
	assert_string_equal(r.uid, "0\t0\t0\t0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(drop_keep_net_admin),
	    cmocka_unit_test(drop_everything),
	    cmocka_unit_test(nothing_to_do),
	    cmocka_unit_test(refused_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
