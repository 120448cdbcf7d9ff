/*
 * privdrop.h - leave root for the service user, keeping at most
 * CAP_NET_ADMIN.
 *
 * When stsproxy is started as root (not by the shipped unit, which starts
 * it as User=stsproxy with AmbientCapabilities=CAP_NET_ADMIN), it binds its
 * sockets and opens its files, then calls privdrop(). CAP_NET_ADMIN is
 * what NFQUEUE verdicts and SO_MARK on upstream sockets need; nothing else
 * is kept, and the bounding set is cut down to it as well.
 */
#ifndef STS_PRIVDROP_H
#define STS_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * privdrop - switch to user (its uid, primary gid and supplementary groups
 * from the password database). With keep_net_admin, CAP_NET_ADMIN stays in
 * the permitted, effective, inheritable and ambient sets; without it, no
 * capability is left. Afterwards it checks that real, effective and saved
 * ids all changed, that root cannot be regained, and that the capability
 * sets are exactly as intended.
 *
 * Returns 0 after a verified drop, and also when there is nothing to do
 * (user NULL or empty, or not running as root); -1 with one line in err on
 * any failure (unknown user, a refused system call, a failed check), in
 * which case the process may be half-changed and must exit.
 *
 * Capabilities belong to threads: call it before any thread is started.
 */
int privdrop(const char *user, bool keep_net_admin, char *err, size_t errlen);

#endif
