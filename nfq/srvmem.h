/*
 * srvmem.h - the servers seen offering STARTTLS, remembered across
 * restarts, so that a later EHLO reply without it is recognised as a
 * downgrade (the memory the packet inspector adds to MTA-STS: it protects
 * servers whose domains publish no policy).
 *
 * Bounded: at most max addresses; when full, the one seen longest ago is
 * forgotten. Persisted as <state_dir>/nfq-servers, one "address unixtime"
 * line per server, rewritten whole (temporary file and rename) by
 * srvmem_save(), so a crash leaves the old or the new file, never a mix.
 * Not thread-safe: it belongs to the inspector's loop.
 */
#ifndef NFQ_SRVMEM_H
#define NFQ_SRVMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRVMEM_FILE        "nfq-servers"
#define SRVMEM_MAX_DEFAULT 65536

struct srvmem;

/*
 * srvmem_open - load <dir>/nfq-servers (dir NULL: memory only). A missing
 * file is an empty memory; malformed lines are skipped. Returns NULL on
 * allocation failure or an unreadable file, with one line in err. Free with
 * srvmem_free().
 */
struct srvmem *srvmem_open(const char *dir, size_t max, char *err, size_t errlen);

/* srvmem_free - free (without saving); NULL is a no-op. */
void srvmem_free(struct srvmem *m);

/* srvmem_has - true if addr (AF_INET: 4 bytes, AF_INET6: 16) was seen offering STARTTLS. */
bool srvmem_has(const struct srvmem *m, int family, const uint8_t *addr);

/* srvmem_add - remember addr as seen at now (unix seconds); 0, or -1 on allocation failure. */
int srvmem_add(struct srvmem *m, int family, const uint8_t *addr, int64_t now);

/* srvmem_count - addresses remembered. */
size_t srvmem_count(const struct srvmem *m);

/*
 * srvmem_save - write the file if anything changed since the last save.
 * Returns 0 (also without a directory or a change), or -1 with one line in
 * the log (the memory is kept and the next save tries again).
 */
int srvmem_save(struct srvmem *m);

#endif
