/*
 * sts_claim.c - the table of policy fetches in flight, shared by the loops.
 *
 * A fixed array under one mutex: it is touched only on the cold path, where
 * a lookup is about to make an HTTPS fetch, so a scan of STS_CLAIMS_MAX
 * slots costs nothing beside it. A token is the slot's index in its low
 * octet and a sequence number above it, so a drop finds its slot at once
 * and a stale token (its claim expired and the slot was taken again) is
 * told apart from the current one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "policy/sts_cache.h"
#include "policy/sts_claim.h"

_Static_assert(STS_CLAIMS_MAX == 256, "a token keeps the slot in its low octet");

struct slot {
	uint64_t token; /* 0: free */
	uint64_t until; /* the claim counts as dropped from then on */
	char domain[STS_CACHE_DOMAIN_MAX];
	char id[STS_CACHE_ID_MAX];
};

struct sts_claims {
	pthread_mutex_t lock;
	uint64_t seq;
	struct slot slot[STS_CLAIMS_MAX];
};

struct sts_claims *
sts_claims_new(void)
{
	struct sts_claims *t = calloc(1, sizeof(*t));

	if (t != NULL && pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

void
sts_claims_free(struct sts_claims *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static bool
live(const struct slot *s, uint64_t now)
{
	return s->token != 0 && now < s->until;
}

/* find - the live claim of (domain, id), or NULL; under the lock. */
static struct slot *
find(struct sts_claims *t, const char *domain, const char *id, uint64_t now)
{
	for (size_t i = 0; i < STS_CLAIMS_MAX; i++) {
		struct slot *s = &t->slot[i];

		if (live(s, now) && strcmp(s->domain, domain) == 0 && strcmp(s->id, id) == 0)
			return s;
	}
	return NULL;
}

enum sts_claim
sts_claims_take(struct sts_claims *t, const char *domain, const char *id, uint64_t now,
                uint64_t hold_ms, uint64_t *token)
{
	struct slot *s = NULL;
	enum sts_claim res = STS_CLAIM_NONE;

	*token = 0;
	if (t == NULL || strlen(domain) >= STS_CACHE_DOMAIN_MAX || strlen(id) >= STS_CACHE_ID_MAX)
		return STS_CLAIM_NONE;
	pthread_mutex_lock(&t->lock);
	if (find(t, domain, id, now) != NULL) {
		res = STS_CLAIM_HELD;
		goto out;
	}
	for (size_t i = 0; i < STS_CLAIMS_MAX && s == NULL; i++)
		if (!live(&t->slot[i], now))
			s = &t->slot[i];
	if (s == NULL)
		goto out;
	s->token = (++t->seq << 8) | (uint64_t)(s - t->slot);
	s->until = now + hold_ms;
	sts_strlcpy(s->domain, domain, sizeof(s->domain));
	sts_strlcpy(s->id, id, sizeof(s->id));
	*token = s->token;
	res = STS_CLAIM_TAKEN;
out:
	pthread_mutex_unlock(&t->lock);
	return res;
}

bool
sts_claims_held(struct sts_claims *t, const char *domain, const char *id, uint64_t now)
{
	bool held;

	if (t == NULL)
		return false;
	pthread_mutex_lock(&t->lock);
	held = find(t, domain, id, now) != NULL;
	pthread_mutex_unlock(&t->lock);
	return held;
}

void
sts_claims_drop(struct sts_claims *t, uint64_t token)
{
	struct slot *s;

	if (t == NULL || token == 0)
		return;
	s = &t->slot[token & 0xffu];
	pthread_mutex_lock(&t->lock);
	if (s->token == token)
		s->token = 0;
	pthread_mutex_unlock(&t->lock);
}
