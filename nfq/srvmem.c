/*
 * srvmem.c - the STARTTLS server memory: a chained hash table over an array
 * of entries, and its text file.
 *
 * Each address is refreshed whenever the server offers STARTTLS again, so
 * eviction of the oldest entry forgets servers no longer seen, never busy
 * ones. A new address is added only after a complete EHLO reply from it,
 * which bounds how fast an attacker can churn the table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "nfq/srvmem.h"

#define NIL ((uint32_t)-1)

struct srv {
	uint8_t addr[16];
	int family;
	int64_t seen;
	uint32_t next; /* chain */
};

struct srvmem {
	char *path; /* NULL: memory only */
	struct srv *e;
	size_t n;
	size_t max;
	uint32_t *buckets;
	size_t mask;
	bool dirty;
};

static uint32_t
addr_hash(int family, const uint8_t *addr)
{
	uint32_t h = 2166136261u ^ (uint32_t)family;
	size_t i, n = family == AF_INET6 ? 16 : 4;

	for (i = 0; i < n; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h;
}

static uint32_t
find(const struct srvmem *m, int family, const uint8_t *addr, size_t alen)
{
	uint32_t i;

	for (i = m->buckets[addr_hash(family, addr) & m->mask]; i != NIL; i = m->e[i].next)
		if (m->e[i].family == family && memcmp(m->e[i].addr, addr, alen) == 0)
			return i;
	return NIL;
}

static void
unchain(struct srvmem *m, uint32_t idx)
{
	uint32_t *pp = &m->buckets[addr_hash(m->e[idx].family, m->e[idx].addr) & m->mask];

	while (*pp != idx)
		pp = &m->e[*pp].next;
	*pp = m->e[idx].next;
}

static void
chain(struct srvmem *m, uint32_t idx)
{
	uint32_t *b = &m->buckets[addr_hash(m->e[idx].family, m->e[idx].addr) & m->mask];

	m->e[idx].next = *b;
	*b = idx;
}

static void
put(struct srvmem *m, int family, const uint8_t *addr, int64_t now)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	uint32_t i = find(m, family, addr, alen), old;
	size_t k;

	if (i != NIL) {
		if (m->e[i].seen < now) {
			m->e[i].seen = now;
			m->dirty = true;
		}
		return;
	}
	if (m->n < m->max) {
		i = (uint32_t)m->n++;
	} else {
		/* Full: forget the server seen longest ago. */
		old = 0;
		for (k = 1; k < m->n; k++)
			if (m->e[k].seen < m->e[old].seen)
				old = (uint32_t)k;
		unchain(m, old);
		i = old;
	}
	memset(&m->e[i], 0, sizeof(m->e[i]));
	m->e[i].family = family;
	memcpy(m->e[i].addr, addr, alen);
	m->e[i].seen = now;
	chain(m, i);
	m->dirty = true;
}

static int
load(struct srvmem *m, char *err, size_t errlen)
{
	char line[128], addr[INET6_ADDRSTRLEN + 1];
	uint8_t bin[16];
	long long seen;
	FILE *fp;

	if ((fp = fopen(m->path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", m->path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "%46s %lld", addr, &seen) != 2)
			continue;
		if (inet_pton(AF_INET, addr, bin) == 1)
			put(m, AF_INET, bin, seen);
		else if (inet_pton(AF_INET6, addr, bin) == 1)
			put(m, AF_INET6, bin, seen);
	}
	fclose(fp);
	m->dirty = false;
	return 0;
}

/* srvmem_open - load the memory; NULL with err on failure. */
struct srvmem *
srvmem_open(const char *dir, size_t max, char *err, size_t errlen)
{
	struct srvmem *m;
	size_t nb = 64;
	int n;

	if (max == 0)
		max = SRVMEM_MAX_DEFAULT;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto nomem;
	m->max = max;
	while (nb < max)
		nb <<= 1;
	m->mask = nb - 1;
	if ((m->buckets = malloc(nb * sizeof(*m->buckets))) == NULL ||
	    (m->e = calloc(max, sizeof(*m->e))) == NULL)
		goto nomem;
	memset(m->buckets, 0xff, nb * sizeof(*m->buckets));
	if (dir != NULL) {
		n = asprintf(&m->path, "%s/%s", dir, SRVMEM_FILE);
		if (n < 0) {
			m->path = NULL;
			goto nomem;
		}
		if (load(m, err, errlen) < 0)
			goto fail;
	}
	return m;
nomem:
	snprintf(err, errlen, "server memory: out of memory");
fail:
	srvmem_free(m);
	return NULL;
}

/* srvmem_free - free; NULL is a no-op. */
void
srvmem_free(struct srvmem *m)
{
	if (m == NULL)
		return;
	free(m->path);
	free(m->e);
	free(m->buckets);
	free(m);
}

/* srvmem_has - was addr seen offering STARTTLS. */
bool
srvmem_has(const struct srvmem *m, int family, const uint8_t *addr)
{
	return find(m, family, addr, family == AF_INET6 ? 16 : 4) != NIL;
}

/* srvmem_add - remember addr. */
int
srvmem_add(struct srvmem *m, int family, const uint8_t *addr, int64_t now)
{
	if (family != AF_INET && family != AF_INET6)
		return -1;
	put(m, family, addr, now);
	return 0;
}

/* srvmem_count - addresses remembered. */
size_t
srvmem_count(const struct srvmem *m)
{
	return m->n;
}

/* srvmem_save - rewrite the file when changed; 0 or -1 (logged). */
int
srvmem_save(struct srvmem *m)
{
	char tmp[4096], addr[INET6_ADDRSTRLEN];
	FILE *fp;
	size_t i;
	int n;

	if (m->path == NULL || !m->dirty)
		return 0;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp", m->path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		log_err("nfq: event=server_memory_save_failed path=%s error=\"path too long\"",
		        m->path);
		return -1;
	}
	if ((fp = fopen(tmp, "we")) == NULL)
		goto fail;
	for (i = 0; i < m->n; i++) {
		if (inet_ntop(m->e[i].family, m->e[i].addr, addr, sizeof(addr)) == NULL)
			continue;
		fprintf(fp, "%s %" PRId64 "\n", addr, m->e[i].seen);
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		fclose(fp);
		unlink(tmp);
		goto fail;
	}
	if (fclose(fp) != 0 || rename(tmp, m->path) != 0) {
		unlink(tmp);
		goto fail;
	}
	m->dirty = false;
	return 0;
fail:
	log_err("nfq: event=server_memory_save_failed path=%s error=\"%s\"", m->path,
	        strerror(errno));
	return -1;
}
