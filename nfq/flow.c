/*
 * flow.c - TCP reassembly for the packet inspector: a hash table of flows
 * keyed by 5-tuple, an LRU list for eviction and expiry, and per direction
 * the next expected sequence number, held out-of-order segments and the
 * partial line.
 *
 * Invariants, per direction: next is the sequence number of the first byte
 * not yet delivered; every held segment starts after next and within
 * FLOW_WINDOW of it; line_len + ooo_bytes <= FLOW_PENDING_MAX. Sequence
 * numbers are compared modulo 2^32 (RFC 9293 section 3.4) through signed
 * differences.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "nfq/flow.h"

#define LINE_BUF_MIN 256

struct seg {
	struct seg *next;
	uint32_t seq;
	size_t len;
	uint8_t data[];
};

struct half {
	bool have_seq;
	bool fin;
	bool line_trunc; /* the current line overflowed; its rest is skipped */
	uint32_t next;
	struct seg *ooo; /* sorted by distance from next */
	size_t ooo_bytes;
	char *line;
	size_t line_len;
	size_t line_cap;
};

struct flow {
	struct flow *hnext;
	struct flow *prev; /* LRU: head is the most recent */
	struct flow *lnext;
	struct flow_key key;
	uint64_t id;
	uint64_t last;
	uint32_t hash;
	bool ignored;
	bool paused; /* segments are neither reassembled nor end the flow by FIN */
	bool busy;   /* inside callbacks: buffers are freed after */
	struct half h[2];
	_Alignas(max_align_t) unsigned char user[];
};

struct flow_table {
	struct flow_params p;
	struct flow **buckets;
	size_t mask;
	size_t count;
	size_t mem;
	uint64_t next_id;
	struct flow *head;
	struct flow *tail;
};

static uint32_t
key_hash(const struct flow_key *k)
{
	const uint8_t *b = (const uint8_t *)k;
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < sizeof(*k); i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/* flow_table_new - an empty table or NULL. */
struct flow_table *
flow_table_new(const struct flow_params *p)
{
	struct flow_table *t;
	size_t n = 1024;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->p = *p;
	if (t->p.max_flows == 0)
		t->p.max_flows = FLOW_MAX_DEFAULT;
	if (t->p.max_memory == 0)
		t->p.max_memory = FLOW_MEM_DEFAULT;
	if (t->p.idle_ms == 0)
		t->p.idle_ms = FLOW_IDLE_MS;
	while (n < t->p.max_flows && n < ((size_t)1 << 24))
		n <<= 1;
	if ((t->buckets = calloc(n, sizeof(*t->buckets))) == NULL) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	return t;
}

static void
half_release(struct flow_table *t, struct half *h)
{
	struct seg *s;

	while ((s = h->ooo) != NULL) {
		h->ooo = s->next;
		free(s);
	}
	t->mem -= h->ooo_bytes + h->line_cap;
	h->ooo_bytes = 0;
	free(h->line);
	h->line = NULL;
	h->line_len = h->line_cap = 0;
}

static void
lru_unlink(struct flow_table *t, struct flow *f)
{
	if (f->prev)
		f->prev->lnext = f->lnext;
	else
		t->head = f->lnext;
	if (f->lnext)
		f->lnext->prev = f->prev;
	else
		t->tail = f->prev;
	f->prev = f->lnext = NULL;
}

static void
lru_push(struct flow_table *t, struct flow *f)
{
	f->prev = NULL;
	f->lnext = t->head;
	if (t->head)
		t->head->prev = f;
	t->head = f;
	if (t->tail == NULL)
		t->tail = f;
}

static void
flow_end(struct flow_table *t, struct flow *f, enum flow_end why)
{
	struct flow **pp = &t->buckets[f->hash & t->mask];

	if (t->p.ops.end)
		t->p.ops.end(t->p.arg, f, why);
	while (*pp != f)
		pp = &(*pp)->hnext;
	*pp = f->hnext;
	lru_unlink(t, f);
	half_release(t, &f->h[0]);
	half_release(t, &f->h[1]);
	t->count--;
	free(f);
}

/* flow_table_free - end every flow and free the table; NULL is a no-op. */
void
flow_table_free(struct flow_table *t)
{
	if (t == NULL)
		return;
	while (t->head)
		flow_end(t, t->head, FLOW_END_FREED);
	free(t->buckets);
	free(t);
}

static struct flow *
lookup(struct flow_table *t, const struct flow_key *k, uint32_t hash)
{
	struct flow *f;

	for (f = t->buckets[hash & t->mask]; f; f = f->hnext)
		if (f->hash == hash && memcmp(&f->key, k, sizeof(*k)) == 0)
			return f;
	return NULL;
}

static void
make_key(const struct nfq_pkt *p, enum flow_dir dir, struct flow_key *k)
{
	size_t alen = p->family == AF_INET6 ? 16 : 4;

	memset(k, 0, sizeof(*k));
	k->family = p->family;
	if (dir == FLOW_C2S) {
		memcpy(k->client, p->src, alen);
		memcpy(k->server, p->dst, alen);
		k->cport = p->sport;
		k->sport = p->dport;
	} else {
		memcpy(k->client, p->dst, alen);
		memcpy(k->server, p->src, alen);
		k->cport = p->dport;
		k->sport = p->sport;
	}
}

/* Grow the line buffer to hold need bytes; false when the bounds say no. */
static bool
line_reserve(struct flow_table *t, struct half *h, size_t need)
{
	size_t cap = h->line_cap ? h->line_cap : LINE_BUF_MIN;
	char *n;

	if (need <= h->line_cap)
		return true;
	if (need + h->ooo_bytes > FLOW_PENDING_MAX)
		return false;
	while (cap < need)
		cap *= 2;
	if (cap > FLOW_PENDING_MAX)
		cap = FLOW_PENDING_MAX;
	if (t->mem - h->line_cap + cap > t->p.max_memory)
		return false;
	if ((n = realloc(h->line, cap)) == NULL)
		return false;
	t->mem = t->mem - h->line_cap + cap;
	h->line = n;
	h->line_cap = cap;
	return true;
}

/* Cut n in-order bytes of dir into lines. */
static void
deliver(struct flow_table *t, struct flow *f, enum flow_dir dir, const uint8_t *p, size_t n)
{
	struct half *h = &f->h[dir];
	const uint8_t *nl;
	size_t take, len;

	if (t->p.ops.data && t->p.ops.data(t->p.arg, f, dir, p, n) != 0)
		return;
	while (n > 0 && !f->ignored) {
		nl = memchr(p, '\n', n);
		take = nl ? (size_t)(nl - p) : n;
		if (nl && h->line_len == 0 && !h->line_trunc) {
			/* The common case: a whole line inside one segment, no copy. */
			len = take;
			if (len > 0 && p[len - 1] == '\r')
				len--;
			t->p.ops.line(t->p.arg, f, dir, (const char *)p, len, false);
		} else {
			if (!h->line_trunc) {
				size_t want = h->line_len + take, room;
				size_t most = FLOW_PENDING_MAX - h->ooo_bytes;

				line_reserve(t, h, want < most ? want : most);
				room = h->line_cap - h->line_len;
				if (room >= take)
					room = take;
				else
					h->line_trunc = true;
				if (room > 0)
					memcpy(h->line + h->line_len, p, room);
				h->line_len += room;
			}
			if (nl) {
				len = h->line_len;
				if (!h->line_trunc && len > 0 && h->line[len - 1] == '\r')
					len--;
				t->p.ops.line(t->p.arg, f, dir, h->line ? h->line : "", len,
				              h->line_trunc);
				h->line_len = 0;
				h->line_trunc = false;
			}
		}
		if (nl == NULL)
			break;
		p += take + 1;
		n -= take + 1;
	}
}

/* Deliver held segments that have become contiguous. */
static void
drain(struct flow_table *t, struct flow *f, enum flow_dir dir)
{
	struct half *h = &f->h[dir];
	struct seg *s;
	int32_t d;
	size_t skip;

	while ((s = h->ooo) != NULL && !f->ignored) {
		d = (int32_t)(s->seq - h->next);
		if (d > 0)
			break;
		h->ooo = s->next;
		h->ooo_bytes -= s->len;
		t->mem -= s->len;
		skip = (size_t) - (int64_t)d;
		if (skip < s->len) {
			h->next += (uint32_t)(s->len - skip);
			deliver(t, f, dir, s->data + skip, s->len - skip);
		}
		free(s);
	}
}

/* Hold a segment that starts d bytes after next (0 < d <= FLOW_WINDOW). */
static void
hold(struct flow_table *t, struct half *h, uint32_t seq, const uint8_t *p, size_t n)
{
	struct seg *s, **pp;
	int32_t d = (int32_t)(seq - h->next);

	if (h->ooo_bytes + h->line_cap + n > FLOW_PENDING_MAX || t->mem + n > t->p.max_memory)
		return;
	if ((s = malloc(sizeof(*s) + n)) == NULL)
		return;
	s->seq = seq;
	s->len = n;
	memcpy(s->data, p, n);
	for (pp = &h->ooo; *pp && (int32_t)((*pp)->seq - h->next) <= d; pp = &(*pp)->next)
		;
	s->next = *pp;
	*pp = s;
	h->ooo_bytes += n;
	t->mem += n;
}

static void
segment(struct flow_table *t, struct flow *f, enum flow_dir dir, const struct nfq_pkt *p)
{
	struct half *h = &f->h[dir];
	uint32_t seq = p->seq;
	const uint8_t *data = p->payload;
	size_t n = p->len;
	int32_t d;

	if (p->flags & NFQ_TCP_SYN) {
		/* The SYN takes one sequence number; data (if any) follows it. */
		seq++;
		if (!h->have_seq) {
			h->have_seq = true;
			h->next = seq;
		}
	} else if (!h->have_seq && n > 0) {
		/* Joined in the middle: the first segment seen is the start. */
		h->have_seq = true;
		h->next = seq;
	}
	if (n == 0 || f->ignored)
		return;
	d = (int32_t)(seq - h->next);
	if (d < 0) {
		size_t old = (size_t) - (int64_t)d;

		if (old >= n)
			return; /* a retransmission of delivered bytes */
		data += old;
		n -= old;
		seq = h->next;
		d = 0;
	}
	if (d > 0) {
		if (d <= FLOW_WINDOW)
			hold(t, h, seq, data, n);
		return;
	}
	h->next += (uint32_t)n;
	deliver(t, f, dir, data, n);
	drain(t, f, dir);
}

/* flow_table_input - feed one segment; the flow or NULL. */
struct flow *
flow_table_input(struct flow_table *t, const struct nfq_pkt *p, uint64_t now_ms)
{
	struct flow_key k;
	struct flow *f = NULL;
	enum flow_dir dir = FLOW_C2S;
	uint32_t hash = 0;

	if (p->family != AF_INET && p->family != AF_INET6)
		return NULL;
	if (p->dport == 25) {
		make_key(p, FLOW_C2S, &k);
		hash = key_hash(&k);
		f = lookup(t, &k, hash);
	}
	if (f == NULL && p->sport == 25) {
		dir = FLOW_S2C;
		make_key(p, FLOW_S2C, &k);
		hash = key_hash(&k);
		f = lookup(t, &k, hash);
	}
	if (f == NULL && p->dport == 25) {
		dir = FLOW_C2S;
		make_key(p, FLOW_C2S, &k);
		hash = key_hash(&k);
	}
	if (f == NULL) {
		if ((p->dport != 25 && p->sport != 25) || (p->flags & NFQ_TCP_RST))
			return NULL;
		if (t->count >= t->p.max_flows && t->tail)
			flow_end(t, t->tail, FLOW_END_EVICTED);
		if ((f = calloc(1, sizeof(*f) + t->p.user_size)) == NULL)
			return NULL;
		f->key = k;
		f->hash = hash;
		f->id = ++t->next_id;
		f->hnext = t->buckets[hash & t->mask];
		t->buckets[hash & t->mask] = f;
		lru_push(t, f);
		t->count++;
	} else {
		lru_unlink(t, f);
		lru_push(t, f);
	}
	f->last = now_ms;
	if (p->flags & NFQ_TCP_RST) {
		flow_end(t, f, FLOW_END_CLOSED);
		return NULL;
	}
	if (f->paused)
		return f;
	f->busy = true;
	segment(t, f, dir, p);
	f->busy = false;
	if (f->ignored) {
		half_release(t, &f->h[0]);
		half_release(t, &f->h[1]);
	}
	if ((p->flags & NFQ_TCP_FIN) && !f->paused) /* paused by this segment: it may come again */
		f->h[dir].fin = true;
	if (f->h[0].fin && f->h[1].fin) {
		flow_end(t, f, FLOW_END_CLOSED);
		return NULL;
	}
	return f;
}

/* flow_table_expire - end flows idle past idle_ms; how many. */
size_t
flow_table_expire(struct flow_table *t, uint64_t now_ms)
{
	size_t n = 0;

	while (t->tail && now_ms - t->tail->last > t->p.idle_ms) {
		flow_end(t, t->tail, FLOW_END_IDLE);
		n++;
	}
	return n;
}

/* flow_table_count - live flows. */
size_t
flow_table_count(const struct flow_table *t)
{
	return t->count;
}

/* flow_table_memory - held bytes. */
size_t
flow_table_memory(const struct flow_table *t)
{
	return t->mem;
}

/* flow_user - the caller's per-flow area. */
void *
flow_user(struct flow *f)
{
	return f->user;
}

/* flow_key_of - the flow's ends. */
const struct flow_key *
flow_key_of(const struct flow *f)
{
	return &f->key;
}

/* flow_id - the flow's number. */
uint64_t
flow_id(const struct flow *f)
{
	return f->id;
}

/* flow_ignore - stop reassembling f. */
void
flow_ignore(struct flow *f)
{
	f->ignored = true;
	/* Buffers are freed by flow_table_input() once the callbacks return;
	 * outside of them nothing is pending that is not freed at the end. */
}

/* flow_ignored - true after flow_ignore(). */
bool
flow_ignored(const struct flow *f)
{
	return f->ignored;
}

/* flow_pause - stop or resume reassembly of f. */
void
flow_pause(struct flow *f, bool paused)
{
	f->paused = paused;
}

/* flow_paused - true while paused. */
bool
flow_paused(const struct flow *f)
{
	return f->paused;
}
