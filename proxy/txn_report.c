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
txn_report_failure(struct sts_report *rep, const char *domain, enum sts_policy_type type,
                   const char *policy_id, enum sts_mode mode, enum sts_result result,
                   const char *matched, const char *mx_name, const struct sockaddr *dst)
{
	char ip[INET6_ADDRSTRLEN];
	const char *mx = matched != NULL && matched[0] != '\0' ? matched : mx_name;

	if (rep == NULL || result == STS_RESULT_OK)
		return;
	sts_addr_text(dst, ip, sizeof(ip), NULL, 0);
	sts_report_failure(rep, domain, type, policy_id, mode, result, mx, ip, time(NULL));
}
