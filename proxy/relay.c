/*
 * relay.c - the client's side of a session once the upstream is set up:
 * the verb table, the FIFO of commands waiting for their replies (RFC 2920
 * section 3.1), the routing of upstream replies to them, and the policy
 * verdict on every recipient.
 *
 * Relay semantics (also in docs/DESIGN.md): MAIL FROM is held locally and
 * answered "250 2.1.0" at once; it is sent upstream just before the first
 * recipient that passes its policy. A 250 to MAIL acknowledges no message;
 * the only acknowledgement of a message is the reply to the final dot, and
 * that is always the upstream's own. If the upstream then refuses MAIL,
 * every recipient of that transaction gets the upstream's MAIL reply.
 *
 * A recipient is judged on the upstream connection that will carry it, as
 * it is at that moment: upstream_tls() of the live connection, never a
 * copy. A verdict is used only for the RCPT it was made for, on the same
 * connection. Before a recipient is refused for its policy, the policy is
 * looked up again (sts_engine_recheck), so that a 451 never rests on a
 * policy the domain has replaced.
 *
 * A connection taken from the pool that fails after its RSET check, before
 * any reply of it to MAIL (but a 2xx), RCPT, DATA or a final dot reached
 * the mailer (UPN_RETRY: above all a 421 to the first MAIL of an MX that
 * limits messages per connection), carries nothing of the transaction the
 * mailer was told: its MAIL was answered locally and its recipients not
 * at all. When only that MAIL and recipients of the current transaction
 * wait for it, the transaction moves to a new connection (relay_retry):
 * every recipient is judged again on the new connection and sent there
 * behind the MAIL (replay), before the client is read again. In every
 * other case, and during a draining stop, the failure is relayed as on
 * any connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "proxy/session_internal.h"

/* Commands a STOP leaves in the input, CONSUME takes, CONSUMED took itself. */
enum { CMD_CONSUME = 0, CMD_STOP = 1, CMD_CONSUMED = 2 };

/* Verb needs. */
enum {
	NEED_GREETED = 1, /* EHLO/HELO first (RFC 5321 section 4.1.4) */
	NEED_MAIL = 2,    /* inside a transaction */
};

/*
 * The capabilities the proxy can relay faithfully. CHUNKING is not among
 * them: BDAT is answered 502 locally, because relaying it would need exact
 * octet counting across the policy checks (RFC 3030); without the keyword
 * no client may use BDAT. STARTTLS is added only when we offer it ourselves.
 */
#define RELAY_CAPS_ALLOWED                                                                         \
	(SMTP_CAP_PIPELINING | SMTP_CAP_8BITMIME | SMTP_CAP_SIZE | SMTP_CAP_ENHANCEDSTATUSCODES |  \
	 SMTP_CAP_SMTPUTF8 | SMTP_CAP_DSN)

/* --- FIFO of pending commands --------------------------------------------- */

/*
 * pend_add - a new entry (reply copied, may be NULL) linked before entry
 * at, or at the tail when at is NULL; NULL on no memory.
 */
static struct pend *
pend_add(struct session *s, struct pend *at, enum smtp_cmd_id cmd, unsigned flags,
         const char *reply, size_t len)
{
	struct pend *p, **link;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->cmd = cmd;
	p->flags = flags;
	p->txn = s->txn;
	if (reply != NULL) {
		if ((p->reply = malloc(len)) == NULL) {
			free(p);
			return NULL;
		}
		memcpy(p->reply, reply, len);
		p->len = len;
	}
	if (at == NULL) {
		link = s->tail != NULL ? &s->tail->next : &s->head;
		s->tail = p;
	} else {
		for (link = &s->head; *link != at; link = &(*link)->next)
			;
	}
	p->next = at;
	*link = p;
	s->n_pend++;
	return p;
}

struct pend *
relay_push(struct session *s, enum smtp_cmd_id cmd, unsigned flags, const char *reply, size_t len)
{
	return pend_add(s, NULL, cmd, flags, reply, len);
}

/* pend_set_reply - store the reply of p; -1 on no memory. */
static int
pend_set_reply(struct pend *p, const char *reply, size_t len)
{
	char *r;

	if ((r = malloc(len > 0 ? len : 1)) == NULL)
		return -1;
	memcpy(r, reply, len);
	free(p->reply);
	p->reply = r;
	p->len = len;
	p->flags |= PF_DONE;
	return 0;
}

void
relay_pop(struct session *s)
{
	struct pend *p = s->head;

	if (p == NULL)
		return;
	s->head = p->next;
	if (s->head == NULL)
		s->tail = NULL;
	s->n_pend--;
	if (p->flags & PF_REPLAY)
		s->n_replay--;
	free(p->line);
	free(p->reply);
	txn_report_clear(&p->tdoms);
	free(p);
}

struct pend *
relay_upstream_next(struct session *s)
{
	struct pend *p;

	for (p = s->head; p != NULL; p = p->next)
		if ((p->flags & (PF_UPSTREAM | PF_DONE)) == PF_UPSTREAM)
			return p;
	return NULL;
}

/* local - answer a command locally, in its turn; -1 on no memory. */
static int
local(struct session *s, enum smtp_cmd_id cmd, const char *reply)
{
	return relay_push(s, cmd, PF_DONE, reply, strlen(reply)) != NULL ? 0 : -1;
}

/*
 * upstream_entry_at - forward line; its reply comes back in its turn. The
 * new entry is linked before at (at the tail when NULL). NULL on no memory.
 */
static struct pend *
upstream_entry_at(struct session *s, struct pend *at, enum smtp_cmd_id cmd, unsigned flags,
                  const char *line, size_t len)
{
	struct pend *p;

	if ((p = pend_add(s, at, cmd, PF_UPSTREAM | flags, NULL, 0)) == NULL)
		return NULL;
	upstream_command(s->up, line, len);
	return p;
}

/* upstream_entry - forward line at the tail of the FIFO. NULL on no memory. */
static struct pend *
upstream_entry(struct session *s, enum smtp_cmd_id cmd, unsigned flags, const char *line,
               size_t len)
{
	return upstream_entry_at(s, NULL, cmd, flags, line, len);
}

void
relay_client_send(struct session *s, const char *buf, size_t len)
{
	if (tls_io_write(s->cio, buf, len) < 0) {
		log_info("session=%s client output full or closed", s->id);
		s->dead = true;
	}
}

int
relay_flush(struct session *s)
{
	struct pend *p;
	int progress = 0;
	bool close;

	while ((p = s->head) != NULL && (p->flags & PF_DONE) && s->state != S_CLOSING) {
		if (!(p->flags & PF_HIDDEN)) {
			if (tls_io_out_space(s->cio) < p->len)
				break;
			relay_client_send(s, p->reply, p->len);
		}
		close = (p->flags & PF_CLOSE) != 0;
		/* Every earlier reply is in: the upstream is parked or closed, never both. */
		if (p->flags & PF_PARK)
			(void)upstream_release(s->up, s->mail == MAIL_SENT);
		relay_pop(s);
		progress = 1;
		if (close)
			session_close(s, NULL);
	}
	return progress;
}

void
relay_txn_reset(struct session *s)
{
	free(s->mail_line);
	free(s->mail_refusal);
	s->mail_line = s->mail_refusal = NULL;
	s->mail_len = 0;
	s->mail = MAIL_NONE;
	s->n_rcpt = s->n_rcpt_ok = 0;
	s->txn_mode = STS_MODE_NONE;
	txn_report_clear(&s->tdoms);
	s->verdict.ready = false;
	s->txn++;
}

/* --- the policy verdict ----------------------------------------------------- */

/*
 * leg_decide - sts_decide() on the live upstream connection. A plaintext
 * connection that is a fallback after a failed handshake fails every policy
 * that requires TLS, with the failed handshake's result type where it
 * names one (RFC 8460 section 4.3), validation-failure otherwise; the
 * failed handshake's facts only ever name a failure, never make a pass.
 */
static void
leg_decide(struct session *s, const struct sts_answer *a, struct sts_decision *d)
{
	const struct tls_facts *f = upstream_tls(s->up);
	const struct tls_facts *cause;
	struct sts_decision why;

	sts_decide(a, (const struct sockaddr *)&s->dst, f, d);
	if (f != NULL || d->pass || (cause = upstream_fallback_cause(s->up)) == NULL)
		return;
	static const char lead[] = "plaintext after a failed TLS handshake: ";

	sts_decide(a, (const struct sockaddr *)&s->dst, cause, &why);
	d->result = why.pass ? STS_RESULT_VALIDATION_FAILURE : why.result;
	memcpy(d->reason, lead, sizeof(lead));
	sts_strlcpy(d->reason + sizeof(lead) - 1,
	            why.pass ? "handshake did not complete" : why.reason,
	            sizeof(d->reason) - (sizeof(lead) - 1));
}

/* leg_security - how the recipient's leg is protected, for the decision log line. */
static const char *
leg_security(const struct session *s)
{
	const struct tls_facts *f = upstream_tls(s->up);

	if (f == NULL)
		return upstream_fallback_cause(s->up) != NULL ? "plaintext-fallback" : "plaintext";
	return f->verify_result == 0 ? "tls-verified" : "tls-unverified";
}

static sts_engine_cb lookup_done;

/*
 * start_lookup - an asynchronous lookup (recheck: sts_engine_recheck) for
 * domain; 1 when started, 0 when it could not be.
 */
static int
start_lookup(struct session *s, const char *domain, bool recheck)
{
	const struct sockaddr *dst = (const struct sockaddr *)&s->dst;

	if (domain != s->lookup_domain)
		sts_strlcpy(s->lookup_domain, domain, sizeof(s->lookup_domain));
	s->lookup_rechecks = recheck;
	if (recheck)
		s->lookup = sts_engine_recheck(s->ctx->engine, domain, dst, lookup_done, s);
	else
		s->lookup = sts_engine_lookup(s->ctx->engine, domain, dst, lookup_done, s);
	return s->lookup != 0;
}

/* decision_log - one line per recipient decision, for the operator. */
static void
decision_log(struct session *s, const char *domain, const struct sts_answer *a,
             const struct sts_decision *d, const char *outcome)
{
	/* A record without a usable policy still names what was wrong with it. */
	enum sts_result result = d->result != STS_RESULT_OK   ? d->result
	                         : d->report != STS_RESULT_OK ? d->report
	                                                      : a->problem;

	log_info("session=%s rcpt domain=%s policy_type=%s policy=%s id=%s source=%s mx=%s leg=%s "
	         "result=%s decision=%s",
	         s->id, domain, sts_policy_type_name(d->type),
	         d->type == STS_PTYPE_TLSA ? "dane"
	         : a->status == STS_POLICY ? sts_mode_name(a->mode)
	                                   : "none",
	         a->id[0] != '\0' ? a->id : "-", sts_source_name(a->source),
	         d->matched[0] != '\0' ? d->matched : upstream_name(s->up), leg_security(s),
	         sts_result_name(result), outcome);
}

/* count - one recipient decision of policy type type: 0 passed, 1 refused, 2 reported. */
static void
count(struct session *s, enum sts_policy_type type, int outcome)
{
	if ((unsigned)type < STS_PTYPE_MAX)
		session_stat_add(&s->ctx->stats->recipients_by_policy[type][outcome], 1);
}

/*
 * refusal - the 451 of a recipient whose policy the upstream leg does not
 * meet (RFC 3463: 4.7.4 without STARTTLS, 4.7.5 for the certificate; 4.4.3
 * when the resolver could not say what DANE requires).
 */
static void
refusal(struct session *s, const char *domain, const struct sts_decision *d, const char *reason)
{
	struct verdict *v = &s->verdict;

	if (d->type == STS_PTYPE_TLSA && d->dns_tempfail)
		snprintf(v->reply, sizeof(v->reply),
		         "451 4.4.3 %s: DANE TLSA lookup failed temporarily (%s)\r\n", domain,
		         reason);
	else if (d->type == STS_PTYPE_TLSA && d->result == STS_RESULT_STARTTLS_NOT_SUPPORTED)
		snprintf(v->reply, sizeof(v->reply),
		         "451 4.7.4 %s: MX %s does not offer STARTTLS (DANE TLSA records "
		         "published; %s)\r\n",
		         domain, s->dest, reason);
	else if (d->type == STS_PTYPE_TLSA)
		snprintf(v->reply, sizeof(v->reply),
		         "451 4.7.5 %s: MX %s does not meet its DANE TLSA records (%s: %s)\r\n",
		         domain, s->dest, sts_result_name(d->result), reason);
	else if (d->result == STS_RESULT_STARTTLS_NOT_SUPPORTED)
		snprintf(v->reply, sizeof(v->reply),
		         "451 4.7.4 %s: MX %s does not offer STARTTLS "
		         "(MTA-STS policy enforce; %s)\r\n",
		         domain, s->dest, reason);
	else
		snprintf(v->reply, sizeof(v->reply),
		         "451 4.7.5 %s: MX %s certificate does not meet the MTA-STS "
		         "policy (%s: %s)\r\n",
		         domain, s->dest, sts_result_name(d->result), reason);
}

/*
 * report_failure - count a failed session of domain for TLS-RPT (RFC 8460
 * section 4.4), with the addresses of the live upstream connection.
 */
static void
report_failure(struct session *s, const char *domain, const struct sts_answer *a,
               enum sts_policy_type type, enum sts_mode mode, enum sts_result result,
               const char *matched)
{
	struct sockaddr_storage src;
	struct txn_failure f = {
	    .domain = domain,
	    .type = type,
	    .policy_id = type == STS_PTYPE_TLSA ? "" : a->id,
	    .mode = mode,
	    .result = result,
	    .matched = matched,
	    .mx_name = upstream_name(s->up),
	    .dst = (const struct sockaddr *)&s->dst,
	    .src = upstream_local_addr(s->up, &src) == 0 ? (const struct sockaddr *)&src : NULL,
	    .sts_policy = type == STS_PTYPE_STS ? a->policy : NULL,
	    .dane = type == STS_PTYPE_TLSA ? a->dane : NULL,
	};

	txn_report_failure(s->ctx->report, &f);
}

/*
 * judge - turn a policy answer for the recipient domain into the verdict
 * for the RCPT at the head of the client input (RFC 8461 section 5, RFC
 * 7672 section 2.2): DANE where it applies, else MTA-STS. Returns false
 * when, instead, a recheck of the policy was started (the verdict comes
 * with its answer).
 */
static bool
judge(struct session *s, const char *domain, const struct sts_answer *a, bool rechecked)
{
	struct verdict *v = &s->verdict;
	struct sts_decision d;
	struct relay_event ev;
	char reason[200];
	bool refuse;

	memset(v, 0, sizeof(*v));
	v->conn = upstream_conn_id(s->up);
	memset(&ev, 0, sizeof(ev));
	ev.domain = domain;
	ev.answer = a;
	ev.facts = upstream_tls(s->up);
	leg_decide(s, a, &d);
	/* RFC 8461 section 2: DANE decides even when MTA-STS has no answer now. */
	if (a->status == STS_DEFER && d.type != STS_PTYPE_TLSA) {
		/* No answer now and nothing cached: the mailer retries (section 5). */
		v->ready = true;
		snprintf(v->reply, sizeof(v->reply),
		         "451 4.4.3 %s: MTA-STS policy lookup failed temporarily\r\n", domain);
		log_info("session=%s rcpt domain=%s policy=unknown result=%s decision=deferred",
		         s->id, domain, sts_result_name(a->problem));
		count(s, STS_PTYPE_STS, 1);
		ev.kind = RELAY_EV_POLICY_DEFER;
		ev.result = a->problem;
		ev.reason = a->reason;
		ev.action = "deferred";
		session_event(s, &ev);
		return true;
	}
	refuse = !d.pass && d.mode == STS_MODE_ENFORCE && s->conf->mode == CONF_PROXY_ENFORCE;
	/* RFC 8461 section 5.1: a refusal rests on the policy the domain has now (and
	 * on the DANE state it publishes now). */
	if (refuse && !rechecked && !a->rechecked && start_lookup(s, domain, true))
		return false;
	v->ready = true;
	if (a->status == STS_NO_POLICY && a->problem != STS_RESULT_OK) {
		/* A record without a usable policy: deliver as if none, and report it. */
		ev.kind = RELAY_EV_POLICY_FAILURE;
		ev.result = a->problem;
		ev.reason = a->reason;
		ev.action = "reported";
		session_event(s, &ev);
		report_failure(s, domain, a, STS_PTYPE_STS, a->mode, a->problem, NULL);
	}
	v->mode = d.mode;
	v->type = d.type;
	if (d.pass && d.report != STS_RESULT_OK) {
		/* RFC 7672 section 2.2: TLSA records, none usable: relayed over TLS
		 * without authentication, and reported (tlsa-invalid). */
		v->forward = true;
		ev.kind = RELAY_EV_POLICY_FAILURE;
		ev.decision = &d;
		ev.result = d.report;
		ev.action = "reported";
		session_stat_add(&s->ctx->stats->recipients_reported[d.report], 1);
		count(s, d.type, 2);
		decision_log(s, domain, a, &d, "reported");
		report_failure(s, domain, a, d.type, d.mode, d.report, d.matched);
		session_event(s, &ev);
		return true;
	}
	if (d.pass) {
		v->forward = true;
		/* Verified TLS to a policy domain, or a domain without any policy
		 * ("no-policy-found", RFC 8460 section 4.4): a success once the message is
		 * taken. A policy that failed to load was counted as its failure above. */
		if (d.mode != STS_MODE_NONE ||
		    !(a->status == STS_NO_POLICY && a->problem != STS_RESULT_OK)) {
			v->counted = true;
			snprintf(v->policy_id, sizeof(v->policy_id), "%s",
			         d.type == STS_PTYPE_TLSA ? "" : a->id);
		}
		if (d.type != STS_PTYPE_NONE)
			txn_report_policy(s->ctx->report, domain, d.type, v->policy_id, d.mode,
			                  d.type == STS_PTYPE_STS ? a->policy : NULL,
			                  d.type == STS_PTYPE_TLSA ? a->dane : NULL);
		count(s, d.type, 0);
		decision_log(s, domain, a, &d, "pass");
		return true;
	}
	ev.kind = RELAY_EV_POLICY_FAILURE;
	ev.decision = &d;
	if (ev.facts == NULL)
		ev.facts = upstream_fallback_cause(s->up);
	sts_printable(reason, sizeof(reason), d.reason, strnlen(d.reason, sizeof(d.reason)));
	if (refuse) {
		/* Section 5, RFC 7672 section 2.2: never deliver to a failing host; 4xx
		 * so that the mailer retries. */
		refusal(s, domain, &d, reason);
		ev.action = "blocked";
		if ((unsigned)d.result < STS_RESULT_MAX)
			session_stat_add(&s->ctx->stats->recipients_blocked[d.result], 1);
	} else {
		/* testing mode, or the proxy only monitors: relay and report. */
		v->forward = true;
		ev.action = "reported";
		if ((unsigned)d.result < STS_RESULT_MAX)
			session_stat_add(&s->ctx->stats->recipients_reported[d.result], 1);
	}
	count(s, d.type, refuse ? 1 : 2);
	decision_log(s, domain, a, &d, refuse ? "refused" : "reported");
	report_failure(s, domain, a, d.type, d.mode, d.result, d.matched);
	session_event(s, &ev);
	return true;
}

/* lookup_done - the engine answered; the session is alive (session_free cancels). */
static void
lookup_done(void *arg, const struct sts_answer *a)
{
	struct session *s = arg;
	bool rechecked = s->lookup_rechecks;

	s->lookup = 0;
	s->lookup_rechecks = false;
	(void)judge(s, s->lookup_domain, a, rechecked);
	session_run(s);
}

/* --- replies ---------------------------------------------------------------- */

/* build_ehlo_reply - what the client is shown for its EHLO, from reply r. */
static char *
build_ehlo_reply(struct session *s, const struct smtp_reply *r)
{
	char buf[4096], name[SESSION_NAME_MAX + 1];
	bool offer = s->ctx->client_tls != NULL && !tls_io_is_tls(s->cio);

	if (s->client_esmtp && !upstream_helo_only(s->up) &&
	    smtp_ehlo_rewrite(r, RELAY_CAPS_ALLOWED, offer, buf, sizeof(buf), NULL) > 0)
		return strdup(buf);
	/* A HELO client, or an upstream without EHLO: a plain 250 with its name. */
	smtp_reply_name(r, name, sizeof(name));
	snprintf(buf, sizeof(buf), "250 %s\r\n", name[0] != '\0' ? name : "stsproxy");
	return strdup(buf);
}

void
relay_setup_ehlo(struct session *s, const struct smtp_reply *r)
{
	free(s->ehlo_reply);
	s->ehlo_reply = build_ehlo_reply(s, r);
}

void
relay_setup_done(struct session *s)
{
	static const char fallback[] = "250 stsproxy\r\n";

	s->greeted = true;
	if (s->ehlo_reply != NULL)
		relay_client_send(s, s->ehlo_reply, strlen(s->ehlo_reply));
	else
		relay_client_send(s, fallback, sizeof(fallback) - 1);
	free(s->ehlo_reply);
	s->ehlo_reply = NULL;
	session_enter(s, S_READY);
}

/* entry_reply - the upstream answered entry p with r; build what the client gets. */
static int
entry_reply(struct session *s, struct pend *p, const struct smtp_reply *r)
{
	int code = smtp_reply_code(r);
	const char *raw;
	char *ehlo;
	size_t len;
	bool ok = code >= 200 && code < 300;
	int ret;

	raw = smtp_reply_raw(r, &len);
	/* What the mailer learns of its transaction now comes from this connection. */
	if ((p->cmd == SMTP_CMD_MAIL && !ok) || p->cmd == SMTP_CMD_RCPT ||
	    p->cmd == SMTP_CMD_DATA || (p->flags & PF_DOT))
		upstream_retry_end(s->up);
	switch (p->cmd) {
	case SMTP_CMD_MAIL: /* our held MAIL (PF_HIDDEN) */
		if (p->txn == s->txn && !ok) {
			s->mail = MAIL_REFUSED;
			free(s->mail_refusal);
			if ((s->mail_refusal = malloc(len + 1)) == NULL)
				return -1;
			memcpy(s->mail_refusal, raw, len);
			s->mail_refusal[len] = '\0';
		}
		p->flags |= PF_DONE;
		return 0;
	case SMTP_CMD_RCPT:
		if (p->txn == s->txn && s->mail == MAIL_REFUSED && s->mail_refusal != NULL)
			return pend_set_reply(p, s->mail_refusal, strlen(s->mail_refusal));
		if (ok && p->txn == s->txn) {
			s->n_rcpt_ok++;
			if (p->mode > s->txn_mode)
				s->txn_mode = p->mode;
			txn_report_accepted(&s->tdoms, p->tdom);
		}
		break;
	case SMTP_CMD_DATA:
		s->blocked = false;
		if (code == 354) {
			smtp_data_init(&s->data);
			s->cr_held = false;
			session_enter(s, S_DATA);
		}
		break;
	case SMTP_CMD_EHLO:
	case SMTP_CMD_HELO:
		if (code == 250) {
			upstream_learn_caps(s->up, r);
			s->client_esmtp = p->cmd == SMTP_CMD_EHLO;
			if ((ehlo = build_ehlo_reply(s, r)) == NULL)
				return -1;
			ret = pend_set_reply(p, ehlo, strlen(ehlo));
			free(ehlo);
			s->greeted = true;
			return ret;
		}
		break;
	case SMTP_CMD_QUIT:
		p->flags |= PF_CLOSE;
		break;
	default:
		break;
	}
	/* The reply to the final dot is relayed as the upstream gave it, never made up. */
	if ((p->flags & PF_DOT) && ok) {
		upstream_message_done(s->up);
		if ((unsigned)p->mode < 3)
			session_stat_add(&s->ctx->stats->messages_relayed[p->mode], 1);
		txn_report_delivered(&p->tdoms, s->ctx->report, upstream_name(s->up));
	}
	return pend_set_reply(p, raw, len);
}

int
relay_reply(struct session *s, const struct smtp_reply *r)
{
	struct pend *p = relay_upstream_next(s);

	/* The upstream counts what is due; the FIFO must agree. */
	if (p == NULL)
		return -1;
	return entry_reply(s, p, r);
}

/* --- client commands -------------------------------------------------------- */

typedef int verb_fn(struct session *s, const struct smtp_cmd *c, const char *line, size_t len);

/* one_at_a_time - without PIPELINING upstream, one command at a time (RFC 2920 3.1). */
static bool
one_at_a_time(struct session *s)
{
	return !(upstream_caps(s->up) & SMTP_CAP_PIPELINING) && relay_upstream_next(s) != NULL;
}

/* forward - relay the command line; its reply comes back in its turn. */
static int
forward(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	if (one_at_a_time(s))
		return CMD_STOP;
	return upstream_entry(s, c->id, 0, line, len) != NULL ? CMD_CONSUME : -1;
}

static int
cmd_helo(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	char buf[SESSION_NAME_MAX + 16];
	bool setup = upstream_awaits_greeting(s->up);
	int n;

	(void)line;
	(void)len;
	if (c->arg_len == 0 || c->arg_len > SESSION_NAME_MAX)
		return local(s, c->id, "501 5.5.4 Invalid domain name\r\n");
	if (setup && s->n_pend > 0)
		return CMD_STOP;
	if (!setup && one_at_a_time(s))
		return CMD_STOP;
	memcpy(s->helo, c->arg, c->arg_len);
	s->helo[c->arg_len] = '\0';
	/* RFC 5321 section 4.1.4: EHLO and HELO reset the transaction. */
	relay_txn_reset(s);
	if (setup) {
		s->client_esmtp = c->id == SMTP_CMD_EHLO;
		/* The upstream always gets EHLO, whatever the client said. */
		session_enter(s, S_UPSTREAM);
		upstream_greet(s->up, s->helo, c->arg_len);
		return CMD_CONSUME;
	}
	n = snprintf(buf, sizeof(buf), "%s %s\r\n", upstream_helo_only(s->up) ? "HELO" : "EHLO",
	             s->helo);
	/* The connection is now greeted with this name (its identity in the pool). */
	upstream_greet(s->up, s->helo, c->arg_len);
	return upstream_entry(s, c->id, 0, buf, (size_t)n) != NULL ? CMD_CONSUME : -1;
}

static int
cmd_mail(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	if (s->mail != MAIL_NONE)
		return local(s, c->id, "503 5.5.1 Nested MAIL command\r\n");
	relay_txn_reset(s);
	if ((s->mail_line = malloc(len)) == NULL)
		return -1;
	memcpy(s->mail_line, line, len);
	s->mail_len = len;
	s->mail = MAIL_HELD;
	/* Held: sent upstream before the first recipient that passes (see the top). */
	return local(s, c->id, "250 2.1.0 Ok\r\n");
}

/* verdict_for - the verdict on recipient c; 0 when ready, CMD_STOP while a lookup runs. */
static int
verdict_for(struct session *s, const struct smtp_cmd *c)
{
	struct sts_answer a;

	/* A verdict holds only for the connection it was made on. */
	if (s->verdict.ready && s->verdict.conn == upstream_conn_id(s->up))
		return 0;
	if (c->domain[0] == '\0') {
		/* postmaster or an address literal: no policy domain */
		memset(&s->verdict, 0, sizeof(s->verdict));
		s->verdict.ready = s->verdict.forward = true;
		s->verdict.conn = upstream_conn_id(s->up);
		return 0;
	}
	if (sts_engine_lookup_now(s->ctx->engine, c->domain, (const struct sockaddr *)&s->dst,
	                          &a) == 1)
		return judge(s, c->domain, &a, false) ? 0 : CMD_STOP;
	if (start_lookup(s, c->domain, false))
		return CMD_STOP;
	memset(&s->verdict, 0, sizeof(s->verdict));
	s->verdict.ready = true;
	s->verdict.conn = upstream_conn_id(s->up);
	snprintf(s->verdict.reply, sizeof(s->verdict.reply),
	         "451 4.4.3 %s: MTA-STS policy lookup failed temporarily\r\n", c->domain);
	return 0;
}

/*
 * rcpt_send - the recipient c (line) passed its verdict: send it behind the
 * held MAIL, which goes first. Its entry is p, one moved to a new
 * connection (relay_retry), or a new one at the tail. CMD_CONSUME when
 * sent, CMD_STOP to wait (one command at a time without PIPELINING), -1 on
 * no memory.
 */
static int
rcpt_send(struct session *s, struct pend *p, const struct smtp_cmd *c, const char *line, size_t len)
{
	bool pipe = (upstream_caps(s->up) & SMTP_CAP_PIPELINING) != 0;

	if (!pipe && relay_upstream_next(s) != NULL)
		return CMD_STOP;
	if (s->mail == MAIL_HELD) {
		if (upstream_entry_at(s, p, SMTP_CMD_MAIL, PF_HIDDEN, s->mail_line, s->mail_len) ==
		    NULL)
			return -1;
		s->mail = MAIL_SENT;
		if (!pipe)
			return CMD_STOP;
	}
	if (p == NULL) {
		if ((p = upstream_entry(s, c->id, 0, line, len)) == NULL)
			return -1;
		/* Kept while a failure would move the transaction (see the top). */
		if (upstream_retry_open(s->up) && (p->line = malloc(len)) != NULL) {
			memcpy(p->line, line, len);
			p->line_len = len;
		}
	} else {
		p->flags |= PF_UPSTREAM;
		upstream_command(s->up, line, len);
	}
	p->mode = s->verdict.mode;
	p->tdom = 0;
	if (s->verdict.counted)
		p->tdom = txn_report_add(&s->tdoms, s->ctx->report, c->domain, s->verdict.type,
		                         s->verdict.policy_id, s->verdict.mode);
	s->verdict.ready = false;
	return CMD_CONSUME;
}

static int
cmd_rcpt(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	int r;

	if (s->mail == MAIL_REFUSED)
		return local(s, c->id, s->mail_refusal);
	if (s->n_rcpt >= SESSION_RCPT_MAX)
		return local(s, c->id, "452 4.5.3 Too many recipients\r\n");
	if (verdict_for(s, c) == CMD_STOP)
		return CMD_STOP;
	if (!s->verdict.forward) {
		s->verdict.ready = false;
		s->n_rcpt++;
		return local(s, c->id, s->verdict.reply);
	}
	if ((r = rcpt_send(s, NULL, c, line, len)) == CMD_CONSUME)
		s->n_rcpt++;
	return r;
}

/*
 * replay - the recipients moved to a new connection (relay_retry), in
 * their order: each judged again on that connection (a verdict holds only
 * for the connection it was made on) and sent there behind the MAIL, or
 * answered with its refusal, or with the MX's refusal of the MAIL. The
 * mailer was told nothing of them yet. >0 on progress, -1 on error.
 */
static int
replay(struct session *s)
{
	struct pend *p;
	struct smtp_cmd c;
	const char *reply;
	bool held;
	int r, progress = 0;

	while (s->n_replay > 0 && s->lookup == 0 && !upstream_broken(s->up)) {
		for (p = s->head; p != NULL && !(p->flags & PF_REPLAY); p = p->next)
			;
		if (p == NULL ||
		    smtp_cmd_parse_max(p->line, p->line_len, s->conf->max_line, &c) < 0)
			return -1;
		reply = NULL;
		if (s->mail == MAIL_REFUSED) {
			reply = s->mail_refusal;
		} else {
			if (verdict_for(s, &c) == CMD_STOP)
				break;
			if (!s->verdict.forward) {
				s->verdict.ready = false;
				reply = s->verdict.reply;
			} else {
				held = s->mail == MAIL_HELD;
				if ((r = rcpt_send(s, p, &c, p->line, p->line_len)) < 0)
					return -1;
				if (r == CMD_STOP) /* the MAIL may have gone out alone */
					return progress | (held && s->mail == MAIL_SENT);
			}
		}
		if (reply != NULL && pend_set_reply(p, reply, strlen(reply)) < 0)
			return -1;
		p->flags &= ~PF_REPLAY;
		s->n_replay--;
		free(p->line);
		p->line = NULL;
		progress = 1;
	}
	return progress;
}

void
relay_retry(struct session *s)
{
	struct pend *p;

	/* A draining stop lets transactions finish; it opens no connection. */
	if (s->state != S_READY || s->shutting_down)
		return;
	for (p = s->head; p != NULL; p = p->next) {
		if ((p->flags & (PF_UPSTREAM | PF_DONE)) != PF_UPSTREAM)
			continue;
		if (p->txn != s->txn || (p->cmd == SMTP_CMD_MAIL && !(p->flags & PF_HIDDEN)) ||
		    (p->cmd != SMTP_CMD_MAIL && (p->cmd != SMTP_CMD_RCPT || p->line == NULL)))
			return; /* not only this transaction's envelope: relayed as it comes */
	}
	if (upstream_retry(s->up) < 0) {
		relay_flush(s);
		session_close(s, "421 4.4.1 Cannot reach the destination mail server\r\n");
		return;
	}
	/* A lookup or a verdict for the client's next command belongs to the old connection. */
	if (s->lookup != 0) {
		sts_engine_cancel(s->ctx->engine, s->lookup);
		s->lookup = 0;
		s->lookup_rechecks = false;
	}
	s->verdict.ready = false;
	for (p = s->head; p != NULL; p = p->next) {
		if ((p->flags & (PF_UPSTREAM | PF_DONE)) != PF_UPSTREAM)
			continue;
		if (p->cmd == SMTP_CMD_MAIL) {
			p->flags |= PF_DONE; /* hidden: goes in its turn; held again below */
			continue;
		}
		p->flags = (p->flags & ~PF_UPSTREAM) | PF_REPLAY;
		s->n_replay++;
	}
	if (s->mail == MAIL_SENT)
		s->mail = MAIL_HELD;
	session_enter(s, S_UPSTREAM);
}

static int
cmd_data(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	/* Every recipient's reply must be known before the message is accepted. */
	if (s->n_pend > 0)
		return CMD_STOP;
	if (s->n_rcpt_ok == 0 || s->mail != MAIL_SENT)
		return local(s, c->id, "554 5.5.1 No valid recipients\r\n");
	s->blocked = true;
	return upstream_entry(s, c->id, 0, line, len) != NULL ? CMD_CONSUME : -1;
}

static int
cmd_rset(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	relay_txn_reset(s);
	return forward(s, c, line, len);
}

/*
 * cmd_quit - relayed, unless the connection may go to the pool: then the
 * 221 is ours, given in its turn, and the MX never sees this QUIT (the
 * connection is parked, or closed with a QUIT of our own).
 */
static int
cmd_quit(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	static const char bye[] = "221 2.0.0 Bye\r\n";
	int r;

	if (upstream_may_park(s->up) && !s->shutting_down) {
		if (relay_push(s, c->id, PF_DONE | PF_CLOSE | PF_PARK, bye, sizeof(bye) - 1) ==
		    NULL)
			return -1;
		s->blocked = true;
		return CMD_CONSUME;
	}
	r = forward(s, c, line, len);

	if (r == CMD_CONSUME)
		s->blocked = true;
	return r;
}

/* client_injection - plaintext pipelined behind STARTTLS (RFC 3207 section 5). */
static void
client_injection(struct session *s)
{
	struct relay_event ev;
	size_t n;

	memset(&ev, 0, sizeof(ev));
	ev.kind = RELAY_EV_INJECTION;
	ev.seen = tls_io_in(s->cio, &n);
	ev.seen_len = n > 200 ? 200 : n;
	ev.action = "refused";
	ev.reason = "client pipelined data after STARTTLS";
	session_event(s, &ev);
	session_close(s, "554 5.5.0 Data pipelined after STARTTLS refused\r\n");
}

static int
cmd_starttls(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	static const char ready[] = "220 2.0.0 Ready to start TLS\r\n";
	size_t n;

	(void)line;
	if (s->ctx->client_tls == NULL)
		return local(s, c->id, "502 5.5.1 STARTTLS not offered\r\n");
	if (tls_io_is_tls(s->cio))
		return local(s, c->id, "503 5.5.1 TLS already active\r\n");
	if (s->n_pend > 0)
		return CMD_STOP;
	tls_io_consume(s->cio, len);
	if (tls_io_in(s->cio, &n) != NULL && n > 0) {
		client_injection(s);
		return CMD_CONSUMED;
	}
	relay_client_send(s, ready, sizeof(ready) - 1);
	if (tls_io_start_tls(s->cio, s->ctx->client_tls, true, NULL) < 0) {
		client_injection(s);
		return CMD_CONSUMED;
	}
	session_enter(s, S_CLIENT_TLS);
	return CMD_CONSUMED;
}

static int
cmd_bdat(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	(void)line;
	(void)len;
	/* CHUNKING is never advertised (see RELAY_CAPS_ALLOWED). */
	return local(s, c->id, "502 5.5.1 BDAT not supported, CHUNKING is not offered\r\n");
}

static int
cmd_refuse(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	(void)line;
	(void)len;
	/* AUTH, ETRN, BURL and unknown verbs: nothing the proxy advertises or can vouch for. */
	return local(s, c->id, "502 5.5.1 Command not implemented\r\n");
}

/*
 * The verb table. VRFY, EXPN, HELP and NOOP are relayed; AUTH, ETRN,
 * BURL and unknown verbs are refused locally with 502, as is BDAT.
 */
static const struct {
	enum smtp_cmd_id id;
	unsigned need;
	verb_fn *proceed;
} verbs[] = {
    {SMTP_CMD_EHLO, 0, cmd_helo},
    {SMTP_CMD_HELO, 0, cmd_helo},
    {SMTP_CMD_MAIL, NEED_GREETED, cmd_mail},
    {SMTP_CMD_RCPT, NEED_GREETED | NEED_MAIL, cmd_rcpt},
    {SMTP_CMD_DATA, NEED_GREETED | NEED_MAIL, cmd_data},
    {SMTP_CMD_BDAT, 0, cmd_bdat},
    {SMTP_CMD_RSET, 0, cmd_rset},
    {SMTP_CMD_NOOP, 0, forward},
    {SMTP_CMD_QUIT, 0, cmd_quit},
    {SMTP_CMD_VRFY, 0, forward},
    {SMTP_CMD_EXPN, 0, forward},
    {SMTP_CMD_HELP, 0, forward},
    {SMTP_CMD_STARTTLS, NEED_GREETED, cmd_starttls},
    {SMTP_CMD_AUTH, 0, cmd_refuse},
    {SMTP_CMD_ETRN, 0, cmd_refuse},
    {SMTP_CMD_BURL, 0, cmd_refuse},
};

/* dispatch - one parsed command line. */
static int
dispatch(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (verbs[i].id != c->id)
			continue;
		if ((verbs[i].need & NEED_GREETED) && !s->greeted)
			return local(s, c->id, "503 5.5.1 Send EHLO first\r\n");
		if ((verbs[i].need & NEED_MAIL) && s->mail == MAIL_NONE)
			return local(s, c->id, "503 5.5.1 Need MAIL command first\r\n");
		return verbs[i].proceed(s, c, line, len);
	}
	return cmd_refuse(s, c, line, len);
}

/* client_error - a refused line; fatal: the client's framing cannot be trusted. */
static void
client_error(struct session *s, const char *reply, bool fatal)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "%s\r\n", reply);
	if (relay_push(s, SMTP_CMD_UNKNOWN, PF_DONE | (fatal ? PF_CLOSE : 0), buf, strlen(buf)) ==
	    NULL)
		s->dead = true;
	if (fatal)
		s->blocked = true;
}

int
relay_commands(struct session *s)
{
	struct smtp_cmd c;
	const char *line;
	size_t len;
	int flags, r, progress = 0;

	if (s->n_replay > 0 && s->state == S_READY && (progress = replay(s)) < 0) {
		s->dead = true;
		return 1;
	}
	while ((s->state == S_GREET || s->state == S_READY) && !s->blocked && !s->dead &&
	       s->n_replay == 0 && s->lookup == 0 && s->n_pend < SESSION_PEND_MAX &&
	       !upstream_broken(s->up) && (line = tls_io_line(s->cio, &len, &flags)) != NULL) {
		if (flags & TLS_IO_LINE_TOO_LONG) {
			/* RFC 5321 section 4.5.3.1.4; then close, the framing is lost. */
			tls_io_consume(s->cio, len);
			client_error(s, SMTP_ERR_LINE_TOO_LONG, true);
			return 1;
		}
		if (flags & TLS_IO_LINE_NO_EOL) {
			tls_io_consume(s->cio, len);
			s->dead = true;
			return 1;
		}
		if (smtp_cmd_parse_max(line, len, s->conf->max_line, &c) < 0) {
			tls_io_consume(s->cio, len);
			client_error(s, c.error, c.error_close);
			if (c.error_close)
				return 1;
			progress = 1;
			continue;
		}
		r = dispatch(s, &c, line, len);
		if (r < 0) {
			s->dead = true;
			return 1;
		}
		if (r == CMD_STOP)
			break;
		if (r == CMD_CONSUME)
			tls_io_consume(s->cio, len);
		s->tick++;
		progress = 1;
		if (s->state != S_GREET && s->state != S_READY)
			break;
	}
	return progress;
}
