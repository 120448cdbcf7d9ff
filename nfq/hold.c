/*
 * hold.c - the records of what waits for a policy lookup: a doubly
 * linked list in the order the records were made, and a count bounded
 * by the table's max (see hold.h).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nfq/hold.h"

/* A record and its links; the public part comes first so the two convert. */
struct rec {
	struct hold h;
	struct rec *prev;
	struct rec *next;
};

struct hold_table {
	size_t max;
	size_t count;
	struct rec *head; /* oldest */
	struct rec *tail;
};

/* hold_table_new - an empty table or NULL. */
struct hold_table *
hold_table_new(size_t max)
{
	struct hold_table *t = calloc(1, sizeof(*t));

	if (t != NULL)
		t->max = max;
	return t;
}

/* hold_table_free - free all; NULL is a no-op. */
void
hold_table_free(struct hold_table *t)
{
	struct rec *r, *next;

	if (t == NULL)
		return;
	for (r = t->head; r != NULL; r = next) {
		next = r->next;
		free(r);
	}
	free(t);
}

/* hold_new - a new last record, or NULL at the bound. */
struct hold *
hold_new(struct hold_table *t, uint64_t since, uint64_t deadline)
{
	struct rec *r;

	if (t->count >= t->max || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->h.since = since;
	r->h.deadline = deadline;
	r->prev = t->tail;
	if (t->tail != NULL)
		t->tail->next = r;
	else
		t->head = r;
	t->tail = r;
	t->count++;
	return &r->h;
}

/* hold_free - unlink and free; NULL is a no-op. */
void
hold_free(struct hold_table *t, struct hold *h)
{
	struct rec *r = (struct rec *)h;

	if (h == NULL)
		return;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		t->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		t->tail = r->prev;
	t->count--;
	free(r);
}

/* hold_add - wait for one more domain; its index or -1. */
int
hold_add(struct hold *h, const char *domain, const char *line, bool no_starttls)
{
	struct hold_domain *dom;
	size_t i, len = strlen(domain), llen = strlen(line);

	for (i = 0; i < h->n_domains; i++)
		if (strcmp(h->dom[i].name, domain) == 0)
			return (int)i;
	if (h->n_domains >= HOLD_DOMAINS || len >= HOLD_DOMAIN_MAX)
		return -1;
	dom = &h->dom[h->n_domains];
	memcpy(dom->name, domain, len + 1);
	if (llen >= HOLD_LINE_MAX)
		llen = HOLD_LINE_MAX - 1;
	memcpy(dom->line, line, llen);
	dom->line[llen] = '\0';
	dom->no_starttls = no_starttls;
	dom->answered = false;
	h->n_waiting++;
	return (int)h->n_domains++;
}

/* hold_find - an unanswered domain's index or -1. */
int
hold_find(const struct hold *h, const char *domain)
{
	size_t i;

	for (i = 0; i < h->n_domains; i++)
		if (!h->dom[i].answered && strcmp(h->dom[i].name, domain) == 0)
			return (int)i;
	return -1;
}

/* hold_first - the oldest record or NULL. */
struct hold *
hold_first(const struct hold_table *t)
{
	return t->head != NULL ? &t->head->h : NULL;
}

/* hold_next - the next record or NULL. */
struct hold *
hold_next(const struct hold *h)
{
	const struct rec *r = (const struct rec *)h;

	return r->next != NULL ? &r->next->h : NULL;
}

/* hold_count - records now. */
size_t
hold_count(const struct hold_table *t)
{
	return t->count;
}
