/*
 * sts_dane.c - DANE states of recipient domains (see sts_dane.h).
 *
 * A state is one allocation: the struct and its hosts, then the addresses,
 * the record structs, their association data and the strings, freed with
 * free() by the last reference (policy/sts_seen.c).
 */
#include <stdlib.h>
#include <string.h>

#include "policy/sts_dane.h"
#include "policy/sts_decide.h"

/* --- states ---------------------------------------------------------------------- */

/* state_size - the bytes a state packed from b needs. */
static size_t
state_size(const struct sts_dane_build *b, size_t *strings)
{
	size_t n = 0, addrs = 0, recs = 0, data = 0;

	for (size_t i = 0; i < b->n_host; i++) {
		n += strlen(b->host[i].name) + strlen(b->host[i].base) + strlen(b->host[i].why) + 3;
		addrs += b->host[i].n_addr;
		recs += b->host[i].n_tlsa;
		for (size_t k = 0; k < b->host[i].n_tlsa; k++)
			data += b->host[i].tlsa[k].len;
	}
	n += strlen(b->domain) + strlen(b->why) + 2;
	*strings = n;
	return sizeof(struct sts_dane_state) + b->n_host * sizeof(struct sts_dane_host) +
	       addrs * sizeof(struct sockaddr_storage) + recs * sizeof(struct tls_tlsa) + data + n;
}

/* put_str - copy s to *p, return where it went. */
static const char *
put_str(char **p, const char *s)
{
	size_t len = strlen(s) + 1;
	char *at = *p;

	memcpy(at, s, len);
	*p += len;
	return at;
}

struct sts_dane_state *
sts_dane_state_new(const struct sts_dane_build *b, uint64_t until)
{
	struct sts_dane_state *st;
	struct sockaddr_storage *addr;
	struct tls_tlsa *rec;
	uint8_t *data;
	char *str;
	size_t strings, addrs = 0, recs = 0;

	if (b->n_host > STS_DANE_MAX_HOSTS)
		return NULL;
	/* the struct is aligned for addresses and records, and they come first */
	if ((st = calloc(1, state_size(b, &strings))) == NULL)
		return NULL;
	for (size_t i = 0; i < b->n_host; i++) {
		addrs += b->host[i].n_addr;
		recs += b->host[i].n_tlsa;
	}
	addr = (struct sockaddr_storage *)(void *)(st->host + b->n_host);
	rec = (struct tls_tlsa *)(void *)(addr + addrs);
	data = (uint8_t *)(rec + recs);
	atomic_init(&st->ref.refs, 1);
	atomic_init(&st->ref.until, until);
	st->status = b->status;
	st->mx_secure = b->mx_secure;
	st->n_host = b->n_host;
	for (size_t i = 0; i < b->n_host; i++) {
		struct sts_dane_host *h = &st->host[i];
		size_t na = b->host[i].n_addr, nr = b->host[i].n_tlsa;

		h->state = b->host[i].state;
		h->problem = b->host[i].problem;
		h->n_addr = na;
		h->addr = addr;
		memcpy(addr, b->host[i].addr, na * sizeof(*addr));
		addr += na;
		h->n_tlsa = nr;
		h->tlsa = rec;
		for (size_t k = 0; k < nr; k++) {
			rec[k] = b->host[i].tlsa[k];
			memcpy(data, b->host[i].tlsa[k].data, rec[k].len);
			rec[k].data = data;
			data += rec[k].len;
		}
		rec += nr;
	}
	str = (char *)data;
	st->domain = put_str(&str, b->domain);
	st->why = put_str(&str, b->why);
	for (size_t i = 0; i < b->n_host; i++) {
		st->host[i].name = put_str(&str, b->host[i].name);
		st->host[i].base = put_str(&str, b->host[i].base);
		st->host[i].why = put_str(&str, b->host[i].why);
	}
	return st;
}

const struct sts_dane_state *
sts_dane_ref(const struct sts_dane_state *st)
{
	if (st != NULL)
		sts_seen_ref_take((struct sts_seen_ref *)&st->ref);
	return st;
}

void
sts_dane_release(const struct sts_dane_state *st)
{
	if (st != NULL)
		sts_seen_ref_release((struct sts_seen_ref *)&st->ref);
}

bool
sts_dane_host_has(const struct sts_dane_host *h, const struct sockaddr *dest)
{
	for (size_t k = 0; k < h->n_addr; k++)
		if (sts_addr_equal((const struct sockaddr *)&h->addr[k], dest, false))
			return true;
	return false;
}

bool
sts_dane_applies(const struct sts_dane_state *st, const struct sockaddr *dest)
{
	bool known = false;

	if (st == NULL || st->status == STS_DANE_NONE)
		return false;
	if (st->status != STS_DANE_HOSTS)
		return true;
	for (size_t i = 0; dest != NULL && i < st->n_host && !known; i++)
		known = sts_dane_host_has(&st->host[i], dest);
	for (size_t i = 0; i < st->n_host; i++)
		if (st->host[i].state != STS_DANE_HOST_NONE &&
		    (!known || sts_dane_host_has(&st->host[i], dest)))
			return true;
	return false;
}

const char *
sts_dane_host_state_name(enum sts_dane_host_state s)
{
	static const char *const names[] = {"none", "usable", "unusable", "failed"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "none";
}

const char *
sts_dane_status_name(enum sts_dane_status s)
{
	static const char *const names[] = {"none", "hosts", "bogus", "tempfail"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "none";
}
