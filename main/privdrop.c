/*
 * privdrop.c - the switch from root to the service user.
 *
 * Debian's libcap-dev is not among our build dependencies, so capabilities
 * are set with the raw capget/capset system calls (version 3: two 32-bit
 * words per set) and prctl(). The order matters: the bounding set can only
 * be cut while we still hold CAP_SETPCAP, and PR_SET_KEEPCAPS must be on
 * across setresuid() or the permitted set is cleared with the uid change.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "main/privdrop.h"

#define CAP_WORDS _LINUX_CAPABILITY_U32S_3

static int
cap_get(struct __user_cap_data_struct data[CAP_WORDS])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};

	return (int)syscall(SYS_capget, &hdr, data);
}

static int
cap_set(const struct __user_cap_data_struct data[CAP_WORDS])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};

	return (int)syscall(SYS_capset, &hdr, data);
}

/* last_cap - the highest capability this kernel knows. */
static int
last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int n = -1;

	if (f != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n >= 0 && n < 64 ? n : CAP_LAST_CAP;
}

/* privdrop - see privdrop.h */
int
privdrop(const char *user, bool keep_net_admin, char *err, size_t errlen)
{
	struct __user_cap_data_struct caps[CAP_WORDS];
	struct passwd pw, *pwp = NULL;
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	char buf[4096];
	uint32_t want;
	int rc, top;

	if (user == NULL || user[0] == '\0' || geteuid() != 0)
		return 0;
	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
	if (pwp == NULL) {
		snprintf(err, errlen, "user %s: %s", user, rc != 0 ? strerror(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "user %s: is root, refusing to run as it", user);
		return -1;
	}

	/* Only NET_ADMIN (or nothing) survives even a later exec of a setuid file. */
	top = last_cap();
	for (int cap = 0; cap <= top; cap++) {
		if (keep_net_admin && cap == CAP_NET_ADMIN)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
			snprintf(err, errlen, "drop capability %d from the bounding set: %s", cap,
			         strerror(errno));
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
		snprintf(err, errlen, "clear ambient capabilities: %s", strerror(errno));
		return -1;
	}
	if (keep_net_admin && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
		return -1;
	}
	/* Groups first: once the uid is gone we may no longer change them. */
	if (initgroups(pw.pw_name, pw.pw_gid) < 0) {
		snprintf(err, errlen, "initgroups %s: %s", user, strerror(errno));
		return -1;
	}
	if (setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) < 0) {
		snprintf(err, errlen, "setresgid %u: %s", (unsigned)pw.pw_gid, strerror(errno));
		return -1;
	}
	if (setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) < 0) {
		snprintf(err, errlen, "setresuid %u: %s", (unsigned)pw.pw_uid, strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_KEEPCAPS off: %s", strerror(errno));
		return -1;
	}

	/* The uid change cleared the effective set; keep exactly what we want. */
	want = keep_net_admin ? 1u << CAP_NET_ADMIN : 0;
	memset(caps, 0, sizeof(caps));
	caps[0].permitted = caps[0].effective = caps[0].inheritable = want;
	if (cap_set(caps) < 0) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -1;
	}
	/* Ambient: the capability also survives an exec (a helper we may run). */
	if (keep_net_admin &&
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0) {
		snprintf(err, errlen, "raise ambient CAP_NET_ADMIN: %s", strerror(errno));
		return -1;
	}

	/* Trust nothing above: check the result. */
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != pw.pw_uid || euid != pw.pw_uid || suid != pw.pw_uid || rgid != pw.pw_gid ||
	    egid != pw.pw_gid || sgid != pw.pw_gid) {
		snprintf(err, errlen, "user %s: ids did not change as asked", user);
		return -1;
	}
	if (setuid(0) == 0 || setgid(0) == 0) {
		snprintf(err, errlen, "user %s: root could be regained", user);
		return -1;
	}
	memset(caps, 0, sizeof(caps));
	if (cap_get(caps) < 0) {
		snprintf(err, errlen, "capget: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < CAP_WORDS; i++) {
		uint32_t w = i == 0 ? want : 0;

		if (caps[i].permitted != w || caps[i].effective != w || caps[i].inheritable != w) {
			snprintf(err, errlen,
			         "capabilities left after the drop: permitted %08x%08x",
			         caps[1].permitted, caps[0].permitted);
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_ADMIN, 0, 0) !=
	    (keep_net_admin ? 1 : 0)) {
		snprintf(err, errlen, "ambient CAP_NET_ADMIN not as asked");
		return -1;
	}
	return 0;
}
