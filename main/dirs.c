/*
 * dirs.c - the directories the daemon writes in: listed from the
 * configuration, checked for --check-config, created at start.
 *
 * The check answers "would the start fail here?" for each identity that
 * touches a path: the starter through access(2) on itself, the service
 * user (when it is another user) from the mode bits, owner and groups, as
 * the kernel would judge them without ACLs.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "main/dirs.h"

#define GROUPS_MAX 64

/* An identity whose access to a path is judged. */
struct ident {
	bool self; /* the running process: ask the kernel */
	uid_t uid;
	gid_t gid;
	gid_t groups[GROUPS_MAX];
	int n_groups;
	char name[64];
};

/* parent_of - the directory part of path ("." for a bare name, "/" at the top). */
static int
parent_of(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL)
		return sts_strlcpy(out, ".", outlen) < outlen ? 0 : -1;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= outlen)
		return -1;
	memcpy(out, path, n);
	out[n] = '\0';
	return 0;
}

/* entry_add - one directory of key: dir itself (file NULL) or file's directory. */
static int
entry_add(struct dirs_entry *out, size_t max, size_t *n, const char *key, const char *dir,
          const char *file, int after_drop)
{
	struct dirs_entry *e;

	if (*n >= max)
		return 0;
	e = &out[*n];
	e->key = key;
	e->file = file;
	e->after_drop = after_drop;
	if (file != NULL) {
		if (parent_of(file, e->dir, sizeof(e->dir)) < 0)
			return -1;
	} else if (dir == NULL || sts_strlcpy(e->dir, dir, sizeof(e->dir)) >= sizeof(e->dir)) {
		return -1;
	}
	(*n)++;
	return 0;
}

/* dirs_list - see dirs.h */
int
dirs_list(const struct conf *c, struct dirs_entry *out, size_t max)
{
	size_t n = 0;

	if ((c->state_dir != NULL &&
	     entry_add(out, max, &n, "state_dir", c->state_dir, NULL, 0) < 0) ||
	    (c->log.file != NULL && c->log.file[0] != '\0' &&
	     entry_add(out, max, &n, "log.file", NULL, c->log.file, 0) < 0) ||
	    (c->log.events != NULL && c->log.events[0] != '\0' &&
	     entry_add(out, max, &n, "log.events", NULL, c->log.events, 0) < 0) ||
	    (c->control.socket != NULL &&
	     entry_add(out, max, &n, "control.socket", NULL, c->control.socket, 1) < 0))
		return -1;
	return (int)n;
}

/* self_ident - this process, named from the password database when it can be. */
static void
self_ident(struct ident *id)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];

	memset(id, 0, sizeof(*id));
	id->self = true;
	id->uid = geteuid();
	id->gid = getegid();
	if (getpwuid_r(id->uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp != NULL)
		sts_strlcpy(id->name, pw.pw_name, sizeof(id->name));
	else
		snprintf(id->name, sizeof(id->name), "uid %u", (unsigned)id->uid);
}

/*
 * service_ident - who writes after the start: `user` when running as root
 * with it set, else this process. 0, or -1 with err set for an unknown user.
 */
static int
service_ident(const struct conf *c, struct ident *id, char *err, size_t errlen)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	int rc;

	if (geteuid() != 0 || c->user == NULL || c->user[0] == '\0') {
		self_ident(id);
		return 0;
	}
	memset(id, 0, sizeof(*id));
	rc = getpwnam_r(c->user, &pw, buf, sizeof(buf), &pwp);
	if (pwp == NULL) {
		snprintf(err, errlen, "user \"%s\": %s", c->user,
		         rc != 0 ? strerror(rc) : "no such user");
		return -1;
	}
	id->uid = pw.pw_uid;
	id->gid = pw.pw_gid;
	id->self = id->uid == 0;
	id->n_groups = GROUPS_MAX;
	if (getgrouplist(pw.pw_name, pw.pw_gid, id->groups, &id->n_groups) < 0)
		id->n_groups = 0; /* more than we keep: the primary group still counts */
	sts_strlcpy(id->name, pw.pw_name, sizeof(id->name));
	return 0;
}

/* in_group - gid is id's primary or one of its supplementary groups. */
static bool
in_group(const struct ident *id, gid_t gid)
{
	if (id->gid == gid)
		return true;
	for (int i = 0; i < id->n_groups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

/* mode_allows - the owner, group or other bits of st grant id every bit of want (rwx = 421). */
static bool
mode_allows(const struct stat *st, const struct ident *id, unsigned want)
{
	unsigned m;

	if (id->uid == 0)
		return true;
	if (st->st_uid == id->uid)
		m = (st->st_mode >> 6) & 7u;
	else if (in_group(id, st->st_gid))
		m = (st->st_mode >> 3) & 7u;
	else
		m = st->st_mode & 7u;
	return (m & want) == want;
}

/* describe - "owner NAME, group NAME, mode 0750" of st, for messages. */
static void
describe(const struct stat *st, char *out, size_t outlen)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char pbuf[4096], gbuf[4096], uname[32], gname[32];

	if (getpwuid_r(st->st_uid, &pw, pbuf, sizeof(pbuf), &pwp) == 0 && pwp != NULL)
		snprintf(uname, sizeof(uname), "%s", pw.pw_name);
	else
		snprintf(uname, sizeof(uname), "%u", (unsigned)st->st_uid);
	if (getgrgid_r(st->st_gid, &gr, gbuf, sizeof(gbuf), &grp) == 0 && grp != NULL)
		snprintf(gname, sizeof(gname), "%s", gr.gr_name);
	else
		snprintf(gname, sizeof(gname), "%u", (unsigned)st->st_gid);
	snprintf(out, outlen, "owner %s, group %s, mode %04o", uname, gname,
	         (unsigned)(st->st_mode & 07777));
}

/*
 * may - can id do want (W_OK, X_OK, or both) on path? false with why set
 * ("Permission denied", "Read-only file system", ...).
 */
static bool
may(const struct ident *id, const char *path, int want, char *why, size_t whylen)
{
	struct stat st;
	unsigned bits = ((want & W_OK) ? 2u : 0u) | ((want & X_OK) ? 1u : 0u);

	if (id->self) {
		if (euidaccess(path, want) == 0)
			return true;
		snprintf(why, whylen, "%s", strerror(errno));
		return false;
	}
	/* Another user: a read-only file system refuses everyone; then the bits. */
	if ((want & W_OK) && access(path, W_OK) < 0 && errno == EROFS) {
		snprintf(why, whylen, "%s", strerror(errno));
		return false;
	}
	if (stat(path, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return false;
	}
	if (mode_allows(&st, id, bits))
		return true;
	describe(&st, why, whylen);
	return false;
}

/* absolute - path made absolute against the working directory. */
static int
absolute(const char *path, char *out, size_t outlen)
{
	char cwd[DIRS_PATH_MAX];
	int n;

	if (path[0] == '/')
		return sts_strlcpy(out, path, outlen) < outlen ? 0 : -1;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	n = snprintf(out, outlen, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/*
 * can_pass - id may search every directory from / down to dir (dir
 * included). false with the first one it may not in where and why.
 */
static bool
can_pass(const struct ident *id, const char *dir, char *where, size_t wherelen, char *why,
         size_t whylen)
{
	char path[DIRS_PATH_MAX];

	if (id->self || absolute(dir, path, sizeof(path)) < 0)
		return true; /* the starter's own access is asked directly */
	for (char *p = path;; p++) {
		char saved = *p;

		if (saved != '/' && saved != '\0')
			continue;
		if (p == path) { /* "/" itself */
			if (!may(id, "/", X_OK, why, whylen)) {
				sts_strlcpy(where, "/", wherelen);
				return false;
			}
			if (saved == '\0')
				return true;
			continue;
		}
		*p = '\0';
		if (!may(id, path, X_OK, why, whylen)) {
			sts_strlcpy(where, path, wherelen);
			return false;
		}
		*p = saved;
		if (saved == '\0')
			return true;
	}
}

/*
 * nearest - the closest existing ancestor of the missing dir, into out.
 * 0, or -1 with why set when a path component is not a directory.
 */
static int
nearest(const char *dir, char *out, size_t outlen, char *why, size_t whylen)
{
	char path[DIRS_PATH_MAX];
	struct stat st;

	if (absolute(dir, path, sizeof(path)) < 0) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	for (;;) {
		char *slash = strrchr(path, '/');

		if (slash == path)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(path, &st) == 0) {
			if (!S_ISDIR(st.st_mode)) {
				snprintf(why, whylen, "%s is not a directory", path);
				return -1;
			}
			sts_strlcpy(out, path, outlen);
			return 0;
		}
		if (errno != ENOENT && errno != ENOTDIR) {
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
}

/* check_missing - dir of e does not exist: could the starter create it? */
static bool
check_missing(const struct dirs_entry *e, const struct ident *svc, char *why, size_t whylen)
{
	struct ident self;
	char top[DIRS_PATH_MAX], where[DIRS_PATH_MAX], reason[256];

	self_ident(&self);
	if (nearest(e->dir, top, sizeof(top), why, whylen) < 0)
		return false;
	if (!may(&self, top, W_OK | X_OK, reason, sizeof(reason))) {
		snprintf(why, whylen, "%s does not exist and %s cannot create it in %s: %s", e->dir,
		         self.name, top, reason);
		return false;
	}
	if (!can_pass(svc, top, where, sizeof(where), reason, sizeof(reason))) {
		snprintf(why, whylen,
		         "%s would be created, but %s cannot reach it: no search permission on "
		         "%s (%s)",
		         e->dir, svc->name, where, reason);
		return false;
	}
	return true;
}

/* check_existing - dir of e exists: can whoever writes in it do so? */
static bool
check_existing(const struct dirs_entry *e, const struct ident *svc, char *why, size_t whylen)
{
	struct ident self;
	const struct ident *who = &self;
	const char *what = e->dir;
	char where[DIRS_PATH_MAX], reason[256], reach[DIRS_PATH_MAX];
	struct stat st;
	bool ok = true;

	self_ident(&self);
	if (stat(e->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s is not a directory", e->dir);
		return false;
	}
	if (e->after_drop) { /* the control socket is bound after the drop */
		who = svc;
		ok = may(svc, e->dir, W_OK | X_OK, reason, sizeof(reason));
	} else if (e->file != NULL && access(e->file, F_OK) == 0) {
		what = e->file;
		ok = may(&self, e->file, W_OK, reason, sizeof(reason));
	} else if (e->file != NULL || geteuid() != 0) { /* root hands state_dir over instead */
		ok = may(&self, e->dir, W_OK | X_OK, reason, sizeof(reason));
	}
	if (!ok) {
		snprintf(why, whylen, "%s is not writable by %s: %s", what, who->name, reason);
		return false;
	}
	/* After the drop the service user writes the cache and reopens the logs:
	 * it must reach the directory (the state directory itself becomes its own). */
	if (e->file == NULL ? parent_of(e->dir, reach, sizeof(reach)) < 0
	                    : sts_strlcpy(reach, e->dir, sizeof(reach)) >= sizeof(reach))
		return true;
	if (!can_pass(svc, reach, where, sizeof(where), reason, sizeof(reason))) {
		snprintf(why, whylen, "%s cannot reach %s: no search permission on %s (%s)",
		         svc->name, e->dir, where, reason);
		return false;
	}
	return true;
}

/* dirs_check - see dirs.h */
int
dirs_check(const struct conf *c, const char *prefix, FILE *notes, FILE *problems)
{
	struct dirs_entry e[DIRS_MAX];
	struct ident svc;
	char why[DIRS_PATH_MAX + 512];
	int n, bad = 0;

	if (service_ident(c, &svc, why, sizeof(why)) < 0) {
		fprintf(problems, "%suser: %s\n", prefix, why);
		return 1;
	}
	if ((n = dirs_list(c, e, DIRS_MAX)) < 0) {
		fprintf(problems, "%sa directory path is longer than %d octets\n", prefix,
		        DIRS_PATH_MAX - 1);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct stat st;
		bool ok;

		if (stat(e[i].dir, &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) {
			ok = check_existing(&e[i], &svc, why, sizeof(why));
		} else {
			ok = check_missing(&e[i], &svc, why, sizeof(why));
			if (ok)
				fprintf(notes,
				        "%s%s: %s does not exist; it will be created at start "
				        "(owner %s, mode %04o)\n",
				        prefix, e[i].key, e[i].dir, svc.name, DIRS_MODE);
		}
		if (!ok) {
			fprintf(problems, "%s%s: %s\n", prefix, e[i].key, why);
			bad++;
		}
	}
	return bad;
}

/*
 * make_dir - mkdir path with exactly mode (the umask aside); an existing
 * directory is fine. Returns 1 when created, 0 when it was there, -1 (errno).
 */
static int
make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0)
		return errno == EEXIST ? 0 : -1;
	return chmod(path, mode) < 0 ? -1 : 1;
}

/* create_one - dir and its missing parents; the new dir itself mode DIRS_MODE, owned by svc. */
static int
create_one(const struct dirs_entry *e, const struct ident *svc, char *err, size_t errlen)
{
	char path[DIRS_PATH_MAX];
	struct stat st;
	size_t len;
	int made;

	if (stat(e->dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, errlen, "%s %s: not a directory", e->key, e->dir);
		return -1;
	}
	len = sts_strlcpy(path, e->dir, sizeof(path));
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (make_dir(path, 0755) < 0) {
			snprintf(err, errlen, "%s: mkdir %.256s: %s", e->key, path,
			         strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if ((made = make_dir(path, DIRS_MODE)) < 0) {
		snprintf(err, errlen, "%s: mkdir %.256s: %s", e->key, path, strerror(errno));
		return -1;
	}
	if (made == 1 && !svc->self && chown(path, svc->uid, svc->gid) < 0) {
		snprintf(err, errlen, "%s: chown %.256s: %s", e->key, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* dirs_create - see dirs.h */
int
dirs_create(const struct conf *c, char *err, size_t errlen)
{
	struct dirs_entry e[DIRS_MAX];
	struct ident svc;
	int n;

	if (service_ident(c, &svc, err, errlen) < 0)
		return -1;
	if ((n = dirs_list(c, e, DIRS_MAX)) < 0) {
		snprintf(err, errlen, "a directory path is longer than %d octets",
		         DIRS_PATH_MAX - 1);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (create_one(&e[i], &svc, err, errlen) < 0)
			return -1;
	return 0;
}

/* give_file - chown one regular file (never a device or a link) to svc; absent is fine. */
static void
give_file(const char *path, const struct ident *svc)
{
	struct stat st;

	if (path == NULL || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	if (lchown(path, svc->uid, svc->gid) < 0)
		log_warn("event=start warning=\"chown %s: %s\"", path, strerror(errno));
}

/* dirs_hand_over - see dirs.h */
int
dirs_hand_over(const struct conf *c, char *err, size_t errlen)
{
	struct ident svc;
	struct dirent *de;
	char path[DIRS_PATH_MAX];
	DIR *dp;

	if (service_ident(c, &svc, err, errlen) < 0)
		return -1;
	if (svc.self)
		return 0;
	if (chown(c->state_dir, svc.uid, svc.gid) < 0) {
		snprintf(err, errlen, "state_dir %s: chown: %s", c->state_dir, strerror(errno));
		return -1;
	}
	if ((dp = opendir(c->state_dir)) != NULL) {
		while ((de = readdir(dp)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", c->state_dir, de->d_name);
			if (lchown(path, svc.uid, svc.gid) < 0)
				log_warn("event=start warning=\"chown %s: %s\"", path,
				         strerror(errno));
		}
		closedir(dp);
	}
	give_file(c->log.file, &svc);
	give_file(c->log.events, &svc);
	return 0;
}
