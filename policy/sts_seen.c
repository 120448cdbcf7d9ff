/*
 * sts_seen.c - the shared table of recent DNS answers about recipient
 * domains.
 *
 * 64 shards, chosen by the top bits of a seeded hash of the domain, each a
 * chained hash table under its own read-write lock, so that workers asking
 * about different domains rarely touch the same lock. A node is one
 * domain in one allocation, what a lookup reads packed together: the TXT
 * answer and the MX set's header, then the domain, the addresses and the
 * names. A new TXT answer is written in place; a new MX set comes in a new
 * node that takes the old one's place (readers copy under the read lock,
 * so the old node is freed once the write lock is dropped). Each shard
 * keeps its nodes in the order they were last written, oldest first, and
 * forgets from that end beyond its share of the capacity.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "policy/sts_seen.h"

#define SHARD_BITS      6
#define SHARDS          (1u << SHARD_BITS)
#define INITIAL_BUCKETS 64

/*
 * A domain. Offsets are from the start of the node and fit in 16 bits: a
 * domain, 32 addresses and 16 names of 254 octets stay well below.
 */
struct node {
	struct node *hnext; /* hash chain */
	uint64_t hash;
	uint64_t txt_until; /* 0: no TXT answer remembered */
	uint64_t mx_until;  /* 0: no MX set remembered */
	uint8_t dlen, n_mx, n_addr;
	char txt_id[STS_SEEN_KEY_MAX];
	char mx_key[STS_SEEN_KEY_MAX];
	uint8_t mx_len[STS_SEEN_MAX_MX];
	uint16_t mx_off[STS_SEEN_MAX_MX];
	uint16_t addr_off;
	struct sts_seen_ref *ref;   /* the domain's shared value (a DANE state), referenced */
	struct node *older, *newer; /* write order, for eviction */
	char domain[];              /* lower case; then the addresses, then the names */
};

struct shard {
	pthread_rwlock_t lock; /* guards everything below and the nodes */
	struct node **tab;
	size_t n_buckets; /* a power of two */
	size_t n;
	struct node *oldest, *newest;
} __attribute__((aligned(64)));

struct sts_seen {
	struct shard shard[SHARDS];
	_Atomic size_t per_shard; /* capacity of each shard */
	uint64_t seed;
};

static inline unsigned char
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* hash - FNV-1a over the lower-cased name, seeded per process, then a final mix. */
static uint64_t
hash(const struct sts_seen *s, const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ s->seed;

	for (size_t i = 0; i < len; i++)
		h = (h ^ lower((unsigned char)name[i])) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static struct shard *
shard_of(struct sts_seen *s, uint64_t h)
{
	return &s->shard[h >> (64 - SHARD_BITS)];
}

/* node_find - the node of name (any case); the caller holds the shard's lock. */
static struct node *
node_find(const struct shard *sh, uint64_t h, const char *name, size_t len)
{
	for (struct node *n = sh->tab[h & (sh->n_buckets - 1)]; n != NULL; n = n->hnext) {
		if (n->hash != h || n->dlen != len)
			continue;
		size_t i = 0;
		while (i < len && n->domain[i] == (char)lower((unsigned char)name[i]))
			i++;
		if (i == len)
			return n;
	}
	return NULL;
}

/* name_len - the length of a domain the table accepts, or 0. */
static size_t
name_len(const char *domain)
{
	size_t len;

	if (domain == NULL)
		return 0;
	len = strnlen(domain, STS_SEEN_NAME_MAX);
	return len < STS_SEEN_NAME_MAX ? len : 0;
}

static bool
key_ok(const char *key)
{
	return key != NULL && strnlen(key, STS_SEEN_KEY_MAX) < STS_SEEN_KEY_MAX;
}

struct sts_seen *
sts_seen_new(size_t max)
{
	struct sts_seen *s;
	size_t i;

	if ((s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63)) == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	/* Recipient domains come from mail: a secret seed keeps chains short. */
	if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) != sizeof(s->seed))
		s->seed = (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ULL;
	atomic_init(&s->per_shard, 1);
	sts_seen_reserve(s, max != 0 ? max : STS_SEEN_DEFAULT_MAX);
	for (i = 0; i < SHARDS; i++) {
		struct shard *sh = &s->shard[i];

		if ((sh->tab = calloc(INITIAL_BUCKETS, sizeof(*sh->tab))) == NULL ||
		    pthread_rwlock_init(&sh->lock, NULL) != 0) {
			free(sh->tab);
			break;
		}
		sh->n_buckets = INITIAL_BUCKETS;
	}
	if (i < SHARDS) {
		while (i-- > 0) {
			pthread_rwlock_destroy(&s->shard[i].lock);
			free(s->shard[i].tab);
		}
		free(s);
		return NULL;
	}
	return s;
}

void
sts_seen_free(struct sts_seen *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *sh = &s->shard[i];
		struct node *n, *next;

		for (n = sh->oldest; n != NULL; n = next) {
			next = n->newer;
			sts_seen_ref_release(n->ref);
			free(n);
		}
		free(sh->tab);
		pthread_rwlock_destroy(&sh->lock);
	}
	free(s);
}

/*
 * sts_seen_reserve - each shard holds its share of max, and a quarter more:
 * domains do not spread over the shards exactly evenly, and the table must
 * hold max of them before it forgets any.
 */
void
sts_seen_reserve(struct sts_seen *s, size_t max)
{
	size_t want = max / SHARDS + max / (SHARDS * 4) + 8, cur;

	if (s == NULL)
		return;
	cur = atomic_load_explicit(&s->per_shard, memory_order_relaxed);
	while (cur < want &&
	       !atomic_compare_exchange_weak_explicit(&s->per_shard, &cur, want,
	                                              memory_order_relaxed, memory_order_relaxed))
		;
}

/* --- writers (the shard's write lock held, unless said otherwise) ------------------- */

static void
order_unlink(struct shard *sh, struct node *n)
{
	if (n->older != NULL)
		n->older->newer = n->newer;
	else
		sh->oldest = n->newer;
	if (n->newer != NULL)
		n->newer->older = n->older;
	else
		sh->newest = n->older;
	n->older = n->newer = NULL;
}

static void
order_append(struct shard *sh, struct node *n)
{
	n->older = sh->newest;
	if (sh->newest != NULL)
		sh->newest->newer = n;
	else
		sh->oldest = n;
	sh->newest = n;
}

/* grow - double the buckets; a failure only leaves chains longer. */
static void
grow(struct shard *sh)
{
	size_t nb = sh->n_buckets * 2;
	struct node **tab = calloc(nb, sizeof(*tab));

	if (tab == NULL)
		return;
	for (size_t i = 0; i < sh->n_buckets; i++) {
		struct node *n, *next;

		for (n = sh->tab[i]; n != NULL; n = next) {
			next = n->hnext;
			n->hnext = tab[n->hash & (nb - 1)];
			tab[n->hash & (nb - 1)] = n;
		}
	}
	free(sh->tab);
	sh->tab = tab;
	sh->n_buckets = nb;
}

/* chain_slot - the pointer to n in its hash chain. */
static struct node **
chain_slot(struct shard *sh, const struct node *n)
{
	struct node **pp = &sh->tab[n->hash & (sh->n_buckets - 1)];

	while (*pp != n)
		pp = &(*pp)->hnext;
	return pp;
}

/* link_new - add n, a node of a domain the shard does not hold. */
static void
link_new(struct shard *sh, struct node *n)
{
	if (sh->n >= sh->n_buckets)
		grow(sh);
	n->hnext = sh->tab[n->hash & (sh->n_buckets - 1)];
	sh->tab[n->hash & (sh->n_buckets - 1)] = n;
	sh->n++;
}

/*
 * settle - make n (linked, out of the write order) the newest, and forget
 * the oldest others beyond the shard's capacity into *gone, for the caller
 * to free once the lock is dropped.
 */
static void
settle(struct sts_seen *s, struct shard *sh, struct node *n, struct node **gone)
{
	size_t cap = atomic_load_explicit(&s->per_shard, memory_order_relaxed);

	while (sh->n > cap && sh->oldest != NULL) {
		struct node *victim = sh->oldest, **pp = chain_slot(sh, victim);

		*pp = victim->hnext;
		order_unlink(sh, victim);
		sh->n--;
		victim->hnext = *gone;
		*gone = victim;
	}
	order_append(sh, n);
}

/* write_done - drop the write lock, then free the node replaced (or unused) and those forgotten. */
static void
write_done(struct shard *sh, struct node *dropped, struct node *gone)
{
	pthread_rwlock_unlock(&sh->lock);
	if (dropped != NULL)
		sts_seen_ref_release(dropped->ref);
	free(dropped);
	while (gone != NULL) {
		struct node *next = gone->hnext;

		sts_seen_ref_release(gone->ref);
		free(gone);
		gone = next;
	}
}

void
sts_seen_ref_take(struct sts_seen_ref *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void
sts_seen_ref_release(struct sts_seen_ref *r)
{
	if (r != NULL && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		free(r);
}

static inline struct sockaddr_storage *
node_addr(const struct node *n)
{
	return (struct sockaddr_storage *)(void *)((char *)n + n->addr_off);
}

/*
 * node_new - a node for domain (len octets, any case) holding set (NULL:
 * none), not linked; no lock needed. NULL when out of memory.
 */
static struct node *
node_new(uint64_t h, const char *domain, size_t len, const struct sts_seen_mx *set)
{
	size_t n_mx = 0, n_addr = 0, lens[STS_SEEN_MAX_MX] = {0};
	size_t align = _Alignof(struct sockaddr_storage), addr_off, size, off;
	struct node *n;

	addr_off = (offsetof(struct node, domain) + len + 1 + align - 1) & ~(align - 1);
	size = addr_off;
	if (set != NULL) {
		n_mx = set->n_mx < STS_SEEN_MAX_MX ? set->n_mx : STS_SEEN_MAX_MX;
		n_addr = set->n_addr < STS_SEEN_MAX_ADDR ? set->n_addr : STS_SEEN_MAX_ADDR;
		size += n_addr * sizeof(struct sockaddr_storage);
		for (size_t i = 0; i < n_mx; i++) {
			lens[i] = strnlen(set->mx[i], STS_SEEN_NAME_MAX - 1);
			size += lens[i] + 1;
		}
	}
	if ((n = calloc(1, size)) == NULL)
		return NULL;
	n->hash = h;
	n->dlen = (uint8_t)len;
	for (size_t i = 0; i < len; i++)
		n->domain[i] = (char)lower((unsigned char)domain[i]);
	n->addr_off = (uint16_t)addr_off;
	n->n_addr = (uint8_t)n_addr;
	if (n_addr > 0)
		memcpy(node_addr(n), set->addr, n_addr * sizeof(struct sockaddr_storage));
	off = addr_off + n_addr * sizeof(struct sockaddr_storage);
	for (size_t i = 0; i < n_mx; i++) {
		memcpy((char *)n + off, set->mx[i], lens[i]);
		n->mx_off[i] = (uint16_t)off;
		n->mx_len[i] = (uint8_t)lens[i];
		off += lens[i] + 1;
	}
	n->n_mx = (uint8_t)n_mx;
	return n;
}

/*
 * node_write - domain's node (made when missing from *spare, a node
 * allocated before the lock), out of the write order, with the write lock
 * of its shard (*shp) held. *spare is NULL when it was used.
 */
static struct node *
node_write(struct sts_seen *s, uint64_t h, const char *domain, size_t len, struct shard **shp,
           struct node **spare)
{
	struct shard *sh = shard_of(s, h);
	struct node *n;

	pthread_rwlock_wrlock(&sh->lock);
	if ((n = node_find(sh, h, domain, len)) != NULL) {
		order_unlink(sh, n);
	} else {
		n = *spare;
		*spare = NULL;
		link_new(sh, n);
	}
	*shp = sh;
	return n;
}

int
sts_seen_put_txt(struct sts_seen *s, const char *domain, const char *id, uint64_t until)
{
	size_t len = name_len(domain);
	struct node *spare, *gone = NULL, *n;
	struct shard *sh;
	uint64_t h;

	if (s == NULL || len == 0 || !key_ok(id))
		return -1;
	h = hash(s, domain, len);
	if ((spare = node_new(h, domain, len, NULL)) == NULL)
		return -1;
	n = node_write(s, h, domain, len, &sh, &spare);
	memcpy(n->txt_id, id, strlen(id) + 1);
	n->txt_until = until;
	settle(s, sh, n, &gone);
	write_done(sh, spare, gone);
	return 0;
}

int
sts_seen_put_mx(struct sts_seen *s, const char *domain, const char *key,
                const struct sts_seen_mx *set, uint64_t until)
{
	size_t len = name_len(domain);
	struct node *m, *old, *gone = NULL;
	struct shard *sh;
	uint64_t h;

	if (s == NULL || len == 0 || !key_ok(key) || set == NULL)
		return -1;
	h = hash(s, domain, len);
	if ((m = node_new(h, domain, len, set)) == NULL)
		return -1;
	memcpy(m->mx_key, key, strlen(key) + 1);
	m->mx_until = until;
	sh = shard_of(s, h);
	pthread_rwlock_wrlock(&sh->lock);
	if ((old = node_find(sh, h, domain, len)) != NULL) {
		/* the new node takes the old one's place, TXT answer and shared value included */
		memcpy(m->txt_id, old->txt_id, sizeof(m->txt_id));
		m->txt_until = old->txt_until;
		m->ref = old->ref;
		old->ref = NULL;
		m->hnext = old->hnext;
		*chain_slot(sh, old) = m;
		order_unlink(sh, old);
	} else {
		link_new(sh, m);
	}
	settle(s, sh, m, &gone);
	write_done(sh, old, gone);
	return 0;
}

void
sts_seen_hold(struct sts_seen *s, const char *domain, unsigned what, const char *mx_key,
              uint64_t until)
{
	size_t len = name_len(domain);
	struct shard *sh;
	struct node *n;
	uint64_t h;

	if (s == NULL || len == 0)
		return;
	h = hash(s, domain, len);
	sh = shard_of(s, h);
	pthread_rwlock_wrlock(&sh->lock);
	if ((n = node_find(sh, h, domain, len)) != NULL) {
		if ((what & STS_SEEN_TXT) != 0 && n->txt_until != 0 && n->txt_until < until)
			n->txt_until = until;
		if ((what & STS_SEEN_MX) != 0 && n->mx_until != 0 && mx_key != NULL &&
		    strcmp(n->mx_key, mx_key) == 0 && n->mx_until < until)
			n->mx_until = until;
		if ((what & STS_SEEN_REF) != 0 && n->ref != NULL &&
		    atomic_load_explicit(&n->ref->until, memory_order_relaxed) < until)
			atomic_store_explicit(&n->ref->until, until, memory_order_relaxed);
	}
	pthread_rwlock_unlock(&sh->lock);
}

int
sts_seen_put_ref(struct sts_seen *s, const char *domain, struct sts_seen_ref *v)
{
	size_t len = name_len(domain);
	struct node *spare, *gone = NULL, *n;
	struct sts_seen_ref *old;
	struct shard *sh;
	uint64_t h;

	if (s == NULL || len == 0 || v == NULL)
		return -1;
	h = hash(s, domain, len);
	if ((spare = node_new(h, domain, len, NULL)) == NULL)
		return -1;
	sts_seen_ref_take(v);
	n = node_write(s, h, domain, len, &sh, &spare);
	old = n->ref;
	n->ref = v;
	settle(s, sh, n, &gone);
	write_done(sh, spare, gone);
	sts_seen_ref_release(old);
	return 0;
}

/* --- readers ----------------------------------------------------------------------- */

struct sts_seen_ref *
sts_seen_get_ref(struct sts_seen *s, const char *domain, size_t dlen, uint64_t now)
{
	struct sts_seen_ref *v = NULL;
	struct shard *sh;
	struct node *n;
	uint64_t h;

	if (s == NULL || domain == NULL || dlen == 0 || dlen >= STS_SEEN_NAME_MAX)
		return NULL;
	h = hash(s, domain, dlen);
	sh = shard_of(s, h);
	pthread_rwlock_rdlock(&sh->lock);
	if ((n = node_find(sh, h, domain, dlen)) != NULL && n->ref != NULL &&
	    (now == 0 || now < atomic_load_explicit(&n->ref->until, memory_order_relaxed))) {
		v = n->ref;
		sts_seen_ref_take(v);
	}
	pthread_rwlock_unlock(&sh->lock);
	return v;
}

unsigned
sts_seen_get(struct sts_seen *s, const char *domain, size_t dlen, uint64_t now,
             char txt_id[STS_SEEN_KEY_MAX], const char *mx_key, struct sts_seen_mx *set,
             struct sts_seen_ref **ref)
{
	struct shard *sh;
	struct node *n;
	unsigned found = 0;
	uint64_t h;

	if (s == NULL || domain == NULL || dlen == 0 || dlen >= STS_SEEN_NAME_MAX)
		return 0;
	h = hash(s, domain, dlen);
	sh = shard_of(s, h);
	pthread_rwlock_rdlock(&sh->lock);
	if ((n = node_find(sh, h, domain, dlen)) == NULL)
		goto out;
	if (n->txt_until != 0 && (now == 0 || now < n->txt_until)) {
		found |= STS_SEEN_TXT;
		if (txt_id != NULL)
			memcpy(txt_id, n->txt_id, strlen(n->txt_id) + 1);
	}
	if (mx_key != NULL && set != NULL && n->mx_until != 0 && (now == 0 || now < n->mx_until) &&
	    strcmp(n->mx_key, mx_key) == 0) {
		found |= STS_SEEN_MX;
		/* only the octets of each name are copied */
		for (size_t i = 0; i < n->n_mx; i++)
			memcpy(set->mx[i], (const char *)n + n->mx_off[i],
			       (size_t)n->mx_len[i] + 1);
		set->n_mx = n->n_mx;
		if (n->n_addr > 0)
			memcpy(set->addr, node_addr(n), n->n_addr * sizeof(set->addr[0]));
		set->n_addr = n->n_addr;
	}
	if (ref != NULL && n->ref != NULL &&
	    (now == 0 || now < atomic_load_explicit(&n->ref->until, memory_order_relaxed))) {
		found |= STS_SEEN_REF;
		*ref = n->ref;
		sts_seen_ref_take(n->ref);
	}
out:
	pthread_rwlock_unlock(&sh->lock);
	return found;
}
