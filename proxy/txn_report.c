/*
 * txn_report.c - TLS-RPT accounting of a transaction (see txn_report.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "proxy/txn_report.h"

unsigned
txn_report_add(struct txn_report *t, const struct sts_report *rep, const char *domain,
               enum sts_policy_type type, const char *id, enum sts_mode mode)
{
	struct txn_dom *d;

	if (rep == NULL || domain[0] == '\0')
		return 0;
	for (unsigned i = 0; i < t->n; i++)
		if (t->doms[i].type == type && strcmp(t->doms[i].domain, domain) == 0)
			return i + 1;
	if (t->n == t->cap) {
		unsigned cap = t->cap == 0 ? 4 : t->cap * 2;

		if ((d = realloc(t->doms, cap * sizeof(*d))) == NULL)
			return 0;
		t->doms = d;
		t->cap = cap;
	}
	d = &t->doms[t->n++];
	memset(d, 0, sizeof(*d));
	sts_strlcpy(d->domain, domain, sizeof(d->domain));
	d->type = type;
	sts_strlcpy(d->id, id, sizeof(d->id));
	d->mode = mode;
	return t->n;
}

void
txn_report_accepted(struct txn_report *t, unsigned h)
{
	if (h != 0 && h <= t->n)
		t->doms[h - 1].accepted = true;
}

void
txn_report_move(struct txn_report *t, struct txn_report *to)
{
	txn_report_clear(to);
	*to = *t;
	memset(t, 0, sizeof(*t));
}

void
txn_report_delivered(const struct txn_report *t, struct sts_report *rep, const char *mx)
{
	int64_t now = time(NULL);

	if (rep == NULL)
		return;
	for (unsigned i = 0; i < t->n; i++)
		if (t->doms[i].accepted)
			sts_report_success(rep, t->doms[i].domain, t->doms[i].type, t->doms[i].id,
			                   t->doms[i].mode, mx, now);
}

void
txn_report_clear(struct txn_report *t)
{
	free(t->doms);
	memset(t, 0, sizeof(*t));
}

void
txn_report_failure(struct sts_report *rep, const struct txn_failure *f)
{
	char ip[INET6_ADDRSTRLEN], sip[INET6_ADDRSTRLEN] = "";
	const char *mx = f->matched != NULL && f->matched[0] != '\0' ? f->matched : f->mx_name;
	struct sts_report_count c = {
	    .domain = f->domain,
	    .type = f->type,
	    .policy_id = f->policy_id,
	    .mode = f->mode,
	    .result = f->result,
	    .mx_host = mx,
	    .mx_helo = f->mx_name,
	    .dest_ip = ip,
	    .sending_ip = sip,
	    .sts_policy = f->sts_policy,
	    .dane = f->dane,
	};

	if (rep == NULL || f->result == STS_RESULT_OK)
		return;
	sts_addr_text(f->dst, ip, sizeof(ip), NULL, 0);
	if (f->src != NULL)
		sts_addr_text(f->src, sip, sizeof(sip), NULL, 0);
	sts_report_count(rep, &c, time(NULL));
}

void
txn_report_policy(struct sts_report *rep, const char *domain, enum sts_policy_type type,
                  const char *policy_id, enum sts_mode mode, const struct sts_policy *sts,
                  const struct sts_dane_state *dane)
{
	struct sts_report_count c = {
	    .domain = domain,
	    .type = type,
	    .policy_id = policy_id,
	    .mode = mode,
	    .sts_policy = sts,
	    .dane = dane,
	};

	if (rep != NULL && (sts != NULL || dane != NULL))
		sts_report_note_policy(rep, &c, time(NULL));
}
