/*
 * dirs.h - the directories the daemon writes in: the state directory, the
 * directories of the log and event files and that of the control socket.
 *
 * Under the shipped unit systemd makes them (StateDirectory=,
 * LogsDirectory=, RuntimeDirectory=); started by hand, the daemon makes
 * them itself, before it drops privileges. A missing directory is created
 * with its missing parents: the parents with mode 0755, the directory
 * itself with DIRS_MODE, and, when the daemon runs as root with `user` set,
 * owned by that user and its primary group. An existing directory is never
 * changed, except the state directory, which dirs_hand_over() gives to the
 * service user together with what is in it.
 *
 * Two identities matter. The starter is the process as started: it creates
 * the directories and opens the log files. The service user is `user` when
 * the starter is root and `user` is set, else the starter: it writes the
 * cache, binds the control socket and reopens the logs after a rotation.
 */
#ifndef STS_DIRS_H
#define STS_DIRS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/conf.h"

#define DIRS_MODE     0750 /* a directory the daemon creates: the group may read or connect */
#define DIRS_PATH_MAX 4096
#define DIRS_MAX      4 /* state_dir, log.file, log.events, control.socket */

/* One directory the configuration needs. */
struct dirs_entry {
	const char *key;         /* the configuration key it comes from */
	char dir[DIRS_PATH_MAX]; /* the directory, as written (may be relative) */
	const char *file;        /* the file the daemon opens in it; NULL for state_dir */
	int after_drop;          /* written in by the service user only (the control socket) */
};

/*
 * dirs_list - the directories c needs, in start-up order (state_dir, then
 * log.file, log.events and control.socket when set), into out (max
 * entries). Returns how many were written, or -1 when a path does not fit
 * DIRS_PATH_MAX.
 */
int dirs_list(const struct conf *c, struct dirs_entry *out, size_t max);

/*
 * dirs_check - what start-up would find, without changing anything: for
 * each directory that does not exist and would be created, one line to
 * notes ("KEY: DIR does not exist; it will be created at start (owner
 * USER, mode 0750)"); for each one that stops the start (a path component
 * that is not a directory, a directory or file the identity that needs it
 * cannot write, a parent the service user cannot pass through, an unknown
 * `user`), one line to problems naming the key, the path and why. Lines end
 * with a new line and start with prefix. Returns the number of problems.
 */
int dirs_check(const struct conf *c, const char *prefix, FILE *notes, FILE *problems);

/*
 * dirs_create - create every missing directory of c as described above.
 * Returns 0, or -1 with one line in err naming the key and the path.
 */
int dirs_create(const struct conf *c, char *err, size_t errlen);

/*
 * dirs_hand_over - when running as root with `user` set: give the state
 * directory and the files in it, and the log and event files, to the
 * service user, so that it can still write them after the privilege drop.
 * Does nothing otherwise. Returns 0, or -1 with err set (unknown user, a
 * failed chown of the state directory); a file of the state directory that
 * cannot be changed is logged and skipped.
 */
int dirs_hand_over(const struct conf *c, char *err, size_t errlen);

#endif
