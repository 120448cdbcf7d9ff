/*
 * daemon.h - the long-running process: wires the modules to one another
 * and to the event loops, and handles signals.
 */
#ifndef STS_DAEMON_H
#define STS_DAEMON_H

#include <stddef.h>

#include "core/conf.h"

/*
 * daemon_check_conf - checks that need the modules (MX patterns of local
 * policies, ...), beyond what conf_load() checks. 0, or -1 with one line in
 * err naming the file, the line and the key.
 */
int daemon_check_conf(const struct conf *c, char *err, size_t errlen);

/*
 * daemon_run - run in the foreground until SIGTERM or SIGINT. Before
 * anything else it creates the directories c names (dirs.h) and raises the
 * open-files limit for max_sessions, lowering c->max_sessions when even the
 * hard limit is too low (fdlimit.h); c is not changed after that. Returns 0
 * on a clean stop, -1 if start-up failed (the reason is logged).
 */
int daemon_run(struct conf *c);

#endif
