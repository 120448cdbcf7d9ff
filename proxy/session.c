/*
 * session.c - the SMTP session state machine: one mailer (the client) on
 * one side, the original destination MX (the upstream) on the other.
 *
 * The session is a small explicit state machine (enum state, state_names,
 * enter_state()) for the set-up of the two legs - connect, banner, EHLO,
 * STARTTLS and the second EHLO upstream - followed by the relay phase, in
 * which every client command takes a place in a FIFO (RFC 2920 section
 * 3.1): either forwarded and waiting for the upstream's reply, or answered
 * locally and waiting for its turn. Replies leave strictly in command
 * order. Everything runs from session_run(), called after every loop event
 * on either leg, every policy answer and every timer; it pumps both
 * endpoints (tls/tls_io.h), consumes what can be consumed and sets the
 * loop masks. session_free() is the one teardown.
 *
 * Relay semantics (also in docs/DESIGN.md): MAIL FROM is held locally and
 * answered "250 2.1.0" at once; it is sent upstream just before the first
 * recipient that passes its policy. A 250 to MAIL acknowledges no message;
 * the only acknowledgement of a message is the reply to the final dot, and
 * that is always the upstream's own. If the upstream then refuses MAIL,
 * every recipient of that transaction gets the upstream's MAIL reply.
 *
 * Memory: an idle session is the struct session below (about 1.8 KiB),
 * the TLS facts when the upstream leg is TLS (about 1.2 KiB) and OpenSSL's
 * per-connection state (a few KiB per TLS leg; its record buffers are
 * released when idle). Endpoint buffers and the reply reader are released
 * whenever they are empty, and no per-recipient state is kept beyond the
 * FIFO entries of commands still waiting for their reply.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "policy/sts_report.h"
#include "proxy/relay_events.h"
#include "proxy/session.h"
#include "proxy/smtp_cmd.h"
#include "proxy/smtp_data.h"
#include "proxy/smtp_reply.h"
#include "tls/tls_io.h"
#include "tls/tls_resume.h"
#include "tls/tls_verify.h"

/* Output bound of each leg: many pipelined replies, or message data in flight. */
#define SESSION_OUT_MAX (256 * 1024)
/* Client input buffered during DATA: one read per window, not per line bound. */
#define SESSION_DATA_WINDOW (64 * 1024)
/* RFC 5321 section 4.5.3.1.8 asks for at least 100 recipients; this is our cap. */
#define SESSION_RCPT_MAX 1000
/* Commands queued at once; beyond this the client is simply not read (backpressure). */
#define SESSION_PEND_MAX (SESSION_RCPT_MAX + 64)
/* How long a closing client may take to read its last reply. */
#define SESSION_LINGER_MS 5000
/* Longest EHLO argument and greeting name kept. */
#define SESSION_NAME_MAX 255

/*
 * The capabilities the proxy can relay faithfully. CHUNKING is not among
 * them: BDAT is answered 502 locally, because relaying it would need exact
 * octet counting across the policy checks (RFC 3030); without the keyword
 * no client may use BDAT. STARTTLS is added only when we offer it ourselves.
 */
#define SESSION_CAPS_ALLOWED                                                                       \
	(SMTP_CAP_PIPELINING | SMTP_CAP_8BITMIME | SMTP_CAP_SIZE | SMTP_CAP_ENHANCEDSTATUSCODES |  \
	 SMTP_CAP_SMTPUTF8 | SMTP_CAP_DSN)

enum state {
	S_CONNECT = 0,  /* upstream TCP connect */
	S_BANNER,       /* waiting for the upstream's banner */
	S_GREET,        /* banner relayed; waiting for the client's EHLO/HELO */
	S_UP_EHLO,      /* our EHLO sent upstream */
	S_UP_HELO,      /* EHLO refused: our HELO sent upstream */
	S_UP_STARTTLS,  /* our STARTTLS sent upstream */
	S_UP_HANDSHAKE, /* upstream TLS handshake */
	S_UP_EHLO_TLS,  /* EHLO again over TLS */
	S_READY,        /* relaying commands */
	S_DATA,         /* streaming message data */
	S_CLIENT_TLS,   /* TLS handshake with the client */
	S_CLOSING,      /* last reply flushing to the client */
	S_MAX
};

static const char *const state_names[S_MAX] = {
    [S_CONNECT] = "connect",
    [S_BANNER] = "banner",
    [S_GREET] = "greet",
    [S_UP_EHLO] = "up-ehlo",
    [S_UP_HELO] = "up-helo",
    [S_UP_STARTTLS] = "up-starttls",
    [S_UP_HANDSHAKE] = "up-handshake",
    [S_UP_EHLO_TLS] = "up-ehlo-tls",
    [S_READY] = "ready",
    [S_DATA] = "data",
    [S_CLIENT_TLS] = "client-tls",
    [S_CLOSING] = "closing",
};

/* Flags of a FIFO entry. */
enum {
	PF_UPSTREAM = 1 << 0, /* forwarded: the upstream's reply decides */
	PF_DONE = 1 << 1,     /* the reply is known and waits for its turn */
	PF_HIDDEN = 1 << 2,   /* our own held MAIL: the reply is not the client's */
	PF_CLOSE = 1 << 3,    /* close the session after this reply */
	PF_DOT = 1 << 4,      /* the final dot: its reply acknowledges the message */
};

/*
 * A policy domain (mode testing or enforce) that passed for a recipient of
 * the current transaction: a success for TLS-RPT once the upstream has
 * taken a recipient of it and acknowledged the message (RFC 8460 section 4.4).
 */
struct txn_dom {
	char domain[SMTP_DOMAIN_MAX + 1];
	char id[STS_REPORT_ID_LEN];
	enum sts_mode mode;
	bool accepted; /* the upstream took at least one of its recipients */
};

/* One command waiting for its reply (RFC 2920 section 3.1). */
struct pend {
	struct pend *next;
	enum smtp_cmd_id cmd;
	unsigned flags;
	unsigned txn;          /* transaction generation it belongs to */
	enum sts_mode mode;    /* RCPT: the policy mode it was judged under */
	unsigned tdom;         /* RCPT: 1 + its index in s->tdoms; 0: not counted */
	struct txn_dom *tdoms; /* the final dot: its transaction's policy domains (owned) */
	unsigned n_tdoms;
	char *reply; /* what the client gets, CRLF included */
	size_t len;
};

/* Held MAIL FROM of the current transaction. */
enum mail_state {
	MAIL_NONE = 0,
	MAIL_HELD,    /* answered locally, not sent */
	MAIL_SENT,    /* sent upstream (reply pending or positive) */
	MAIL_REFUSED, /* the upstream refused it: recipients get its reply */
};

/* The verdict on the recipient at the head of the client input. */
struct verdict {
	bool ready;
	bool forward;
	enum sts_mode mode;
	bool counted;                      /* a passing policy domain: count its deliveries */
	char policy_id[STS_REPORT_ID_LEN]; /* ... under this policy id */
	char reply[480];                   /* the local 451 when not forwarded */
};

struct session {
	struct session *next, *prev; /* ctx->sessions */
	struct session_ctx *ctx;
	const struct conf *conf;
	enum state state;
	char id[24];
	char client_ip[INET6_ADDRSTRLEN];
	char dest[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage dst;
	socklen_t dst_len;

	struct tls_io *cio, *uio;
	bool up_connected;
	bool up_error;         /* a write upstream failed: handled as a lost upstream */
	struct smtp_reply *rd; /* upstream reply reader; NULL while idle */
	bool rd_unsolicited;   /* the reply in rd began while none was due */
	uint64_t timer;
	uint64_t lookup; /* pending sts_engine_lookup() */
	char lookup_domain[SMTP_DOMAIN_MAX + 1];

	struct pend *head, *tail;
	unsigned n_pend;

	/* set-up */
	bool setup_done;   /* upstream EHLO (and STARTTLS) finished */
	bool greeted;      /* the client said EHLO/HELO (since its last TLS start) */
	bool client_esmtp; /* ... and it was EHLO */
	bool up_helo_only; /* the upstream refused EHLO */
	bool no_starttls;  /* second connection after a failed handshake */
	bool reconnect;    /* the banner was already relayed */
	bool blocked;      /* stop reading commands: DATA or QUIT waits for its reply */
	/* The state timer is re-armed only when the session moves on (a new
	 * state, a whole command or reply, a block of data), never for a lone
	 * byte: a client trickling one byte a second must still meet
	 * timeouts.command (RFC 5321 section 4.5.3.2.7). */
	uint64_t tick;
	uint64_t armed_tick;
	int armed_state;
	uint64_t timer_at; /* when the armed timer fires (loop_now_ms) */
	uint64_t due_ms;   /* when the state really times out: >= timer_at */
	bool shutting_down;
	bool in_run, rerun, dead;
	unsigned up_caps; /* capabilities of the upstream's last EHLO */
	char *ehlo_reply; /* the reply built for the client's EHLO */
	char helo[SESSION_NAME_MAX + 1];
	char up_name[SESSION_NAME_MAX + 1]; /* the upstream's banner name (SNI hint) */
	char seen[80];                      /* a mangled STARTTLS line, for events */
	struct tls_facts *facts;            /* NULL: plaintext upstream */

	/* transaction */
	enum mail_state mail;
	char *mail_line;
	size_t mail_len;
	char *mail_refusal;
	unsigned txn;
	unsigned n_rcpt, n_rcpt_ok;
	enum sts_mode txn_mode;
	struct txn_dom *tdoms; /* NULL unless ctx->report is set */
	unsigned n_tdoms, cap_tdoms;
	struct verdict verdict;
	struct smtp_data data;
	bool cr_held;
};

static _Atomic uint64_t session_serial;

static void session_run(struct session *s);
static void session_close(struct session *s, const char *final);

/* enter_state - the one transition function; logs old -> new. */
static void
enter_state(struct session *s, enum state st)
{
	if (s->state == st)
		return;
	log_debug("session=%s state %s -> %s", s->id, state_names[s->state], state_names[st]);
	/* Message data is read in wide windows; commands within one line's bound. */
	if (s->cio != NULL && (st == S_DATA || s->state == S_DATA))
		(void)tls_io_set_in_max(s->cio,
		                        st == S_DATA ? SESSION_DATA_WINDOW : s->conf->max_line);
	s->state = st;
}

/* stat_add - relaxed counter update; the metrics reader tolerates skew. */
static void
stat_add(_Atomic uint64_t *c, int64_t n)
{
	atomic_fetch_add_explicit(c, (uint64_t)n, memory_order_relaxed);
}

/* --- FIFO of pending commands --------------------------------------------- */

/* pend_push - append an entry; reply (may be NULL) is copied. NULL on no memory. */
static struct pend *
pend_push(struct session *s, enum smtp_cmd_id cmd, unsigned flags, const char *reply, size_t len)
{
	struct pend *p;

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
	if (s->tail != NULL)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
	s->n_pend++;
	return p;
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

/* pend_pop - drop the head entry. */
static void
pend_pop(struct session *s)
{
	struct pend *p = s->head;

	if (p == NULL)
		return;
	s->head = p->next;
	if (s->head == NULL)
		s->tail = NULL;
	s->n_pend--;
	free(p->reply);
	free(p->tdoms);
	free(p);
}

/* pend_upstream_next - the oldest entry still waiting for an upstream reply. */
static struct pend *
pend_upstream_next(struct session *s)
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
	return pend_push(s, cmd, PF_DONE, reply, strlen(reply)) != NULL ? 0 : -1;
}

/* --- sending ---------------------------------------------------------------- */

/* up_send - queue bytes upstream; a failure is handled as a lost upstream. */
static void
up_send(struct session *s, const char *buf, size_t len)
{
	if (s->uio == NULL || tls_io_write(s->uio, buf, len) < 0)
		s->up_error = true;
}

/* client_send - queue bytes for the client; a full buffer ends the session. */
static void
client_send(struct session *s, const char *buf, size_t len)
{
	if (tls_io_write(s->cio, buf, len) < 0) {
		log_info("session=%s client output full or closed", s->id);
		s->dead = true;
	}
}

/* flush - write every answered entry at the head of the FIFO, in order. */
static int
flush(struct session *s)
{
	struct pend *p;
	int progress = 0;
	bool close;

	while ((p = s->head) != NULL && (p->flags & PF_DONE) && s->state != S_CLOSING) {
		if (!(p->flags & PF_HIDDEN)) {
			if (tls_io_out_space(s->cio) < p->len)
				break;
			client_send(s, p->reply, p->len);
		}
		close = (p->flags & PF_CLOSE) != 0;
		pend_pop(s);
		progress = 1;
		if (close)
			session_close(s, NULL);
	}
	return progress;
}

/* --- transaction ------------------------------------------------------------ */

/* txn_reset - forget the envelope (RSET, EHLO, HELO, the final dot, TLS). */
static void
txn_reset(struct session *s)
{
	free(s->mail_line);
	free(s->mail_refusal);
	s->mail_line = s->mail_refusal = NULL;
	s->mail_len = 0;
	s->mail = MAIL_NONE;
	s->n_rcpt = s->n_rcpt_ok = 0;
	s->txn_mode = STS_MODE_NONE;
	free(s->tdoms);
	s->tdoms = NULL;
	s->n_tdoms = s->cap_tdoms = 0;
	s->verdict.ready = false;
	s->txn++;
}

/* --- events and policy ------------------------------------------------------ */

/* printable_copy - bytes from the network made safe for a reply line. */
static void
printable_copy(char *out, size_t outlen, const char *in, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];
		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (outlen > 0)
		out[n] = '\0';
}

/* session_event - fill the session's part of an event and emit it. */
static void
session_event(struct session *s, struct relay_event *ev)
{
	ev->session = s->id;
	ev->client = s->client_ip;
	ev->dest = s->dest;
	if (ev->seen == NULL && s->seen[0] != '\0') {
		ev->seen = s->seen;
		ev->seen_len = strlen(s->seen);
	}
	relay_event_emit(ev);
}

/* dest_ip - the destination address alone, for reports; "" if it cannot be shown. */
static void
dest_ip(const struct session *s, char *out, size_t outlen)
{
	const void *a = NULL;

	out[0] = '\0';
	if (s->dst.ss_family == AF_INET)
		a = &((const struct sockaddr_in *)&s->dst)->sin_addr;
	else if (s->dst.ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)&s->dst)->sin6_addr;
	if (a == NULL || inet_ntop(s->dst.ss_family, a, out, (socklen_t)outlen) == NULL)
		out[0] = '\0';
}

/*
 * report_failure - count a failed session for the TLS-RPT table (RFC 8460
 * section 4.4). The receiving MX is the candidate the certificate matched,
 * else the name in the upstream's banner.
 */
static void
report_failure(struct session *s, const char *domain, const struct sts_answer *a,
               enum sts_mode mode, enum sts_result result, const char *matched)
{
	char ip[INET6_ADDRSTRLEN];
	const char *mx = matched != NULL && matched[0] != '\0' ? matched : s->up_name;

	if (s->ctx->report == NULL || result == STS_RESULT_OK)
		return;
	dest_ip(s, ip, sizeof(ip));
	sts_report_failure(s->ctx->report, domain, a->id, mode, result, mx, ip, time(NULL));
}

/*
 * txn_dom_add - remember a passing policy domain of the transaction; the
 * value for pend.tdom (0 when not counted, or without memory: a lost
 * count, never a lost message).
 */
static unsigned
txn_dom_add(struct session *s, const char *domain, const char *id, enum sts_mode mode)
{
	struct txn_dom *t;

	if (s->ctx->report == NULL || domain[0] == '\0')
		return 0;
	for (unsigned i = 0; i < s->n_tdoms; i++)
		if (strcmp(s->tdoms[i].domain, domain) == 0)
			return i + 1;
	if (s->n_tdoms == s->cap_tdoms) {
		unsigned cap = s->cap_tdoms == 0 ? 4 : s->cap_tdoms * 2;

		if ((t = realloc(s->tdoms, cap * sizeof(*t))) == NULL)
			return 0;
		s->tdoms = t;
		s->cap_tdoms = cap;
	}
	t = &s->tdoms[s->n_tdoms++];
	memset(t, 0, sizeof(*t));
	snprintf(t->domain, sizeof(t->domain), "%s", domain);
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->mode = mode;
	return s->n_tdoms;
}

/* report_delivery - the upstream acknowledged the message of the final dot p. */
static void
report_delivery(struct session *s, const struct pend *p)
{
	int64_t now = time(NULL);

	for (unsigned i = 0; i < p->n_tdoms; i++)
		if (p->tdoms[i].accepted)
			sts_report_success(s->ctx->report, p->tdoms[i].domain, p->tdoms[i].id,
			                   p->tdoms[i].mode, s->up_name, now);
}

/*
 * judge - turn a policy answer for the recipient domain into the verdict
 * for the RCPT at the head of the client input (RFC 8461 section 5).
 */
static void
judge(struct session *s, const char *domain, const struct sts_answer *a)
{
	struct verdict *v = &s->verdict;
	struct sts_decision d;
	struct relay_event ev;
	char reason[200];
	const struct tls_facts *f = s->facts;

	memset(v, 0, sizeof(*v));
	memset(&ev, 0, sizeof(ev));
	v->ready = true;
	ev.domain = domain;
	ev.answer = a;
	ev.facts = f;
	if (a->status == STS_DEFER) {
		/* No answer now and nothing cached: the mailer retries (section 5). */
		snprintf(v->reply, sizeof(v->reply),
		         "451 4.4.3 %s: MTA-STS policy lookup failed temporarily\r\n", domain);
		ev.kind = RELAY_EV_POLICY_DEFER;
		ev.result = a->problem;
		ev.reason = a->reason;
		ev.action = "deferred";
		session_event(s, &ev);
		return;
	}
	if (a->status == STS_NO_POLICY && a->problem != STS_RESULT_OK) {
		/* A record without a usable policy: deliver as if none, and report it. */
		ev.kind = RELAY_EV_POLICY_FAILURE;
		ev.result = a->problem;
		ev.reason = a->reason;
		ev.action = "reported";
		session_event(s, &ev);
		report_failure(s, domain, a, a->mode, a->problem, NULL);
	}
	sts_decide(a, (const struct sockaddr *)&s->dst, f, &d);
	v->mode = d.mode;
	if (d.pass) {
		v->forward = true;
		/* Verified TLS to a policy domain: a success once the message is taken. */
		if (d.mode != STS_MODE_NONE) {
			v->counted = true;
			snprintf(v->policy_id, sizeof(v->policy_id), "%s", a->id);
		}
		return;
	}
	ev.kind = RELAY_EV_POLICY_FAILURE;
	ev.decision = &d;
	printable_copy(reason, sizeof(reason), d.reason, strnlen(d.reason, sizeof(d.reason)));
	if (d.mode == STS_MODE_ENFORCE && s->conf->mode == CONF_PROXY_ENFORCE) {
		/* Section 5: never deliver to a failing host; 4xx so that the mailer retries. */
		if (d.result == STS_RESULT_STARTTLS_NOT_SUPPORTED)
			snprintf(v->reply, sizeof(v->reply),
			         "451 4.7.4 %s: MX %s does not offer STARTTLS "
			         "(MTA-STS policy enforce; %s)\r\n",
			         domain, s->dest, reason);
		else
			snprintf(v->reply, sizeof(v->reply),
			         "451 4.7.5 %s: MX %s certificate does not meet the MTA-STS "
			         "policy (%s: %s)\r\n",
			         domain, s->dest, sts_result_name(d.result), reason);
		ev.action = "blocked";
		if ((unsigned)d.result < STS_RESULT_MAX)
			stat_add(&s->ctx->stats->recipients_blocked[d.result], 1);
		report_failure(s, domain, a, d.mode, d.result, d.matched);
	} else {
		/* testing mode, or the proxy only monitors: relay and report. */
		v->forward = true;
		ev.action = "reported";
		if ((unsigned)d.result < STS_RESULT_MAX)
			stat_add(&s->ctx->stats->recipients_reported[d.result], 1);
		report_failure(s, domain, a, d.mode, d.result, d.matched);
	}
	session_event(s, &ev);
}

/* lookup_done - the engine answered; the session is alive (session_free cancels). */
static void
lookup_done(void *arg, const struct sts_answer *a)
{
	struct session *s = arg;

	s->lookup = 0;
	judge(s, s->lookup_domain, a);
	session_run(s);
}

/* --- upstream set-up -------------------------------------------------------- */

/* up_cmd - send "VERB arg\r\n" upstream. */
static void
up_cmd(struct session *s, const char *verb, const char *arg)
{
	char line[SESSION_NAME_MAX + 16];
	int n;

	n = snprintf(line, sizeof(line), "%s%s%s\r\n", verb, arg ? " " : "", arg ? arg : "");
	if (n < 0 || (size_t)n >= sizeof(line)) {
		s->up_error = true;
		return;
	}
	up_send(s, line, (size_t)n);
}

/* first_word - the first word of reply line i into out (printable, bounded). */
static void
first_word(const struct smtp_reply *r, size_t i, char *out, size_t outlen)
{
	const char *l;
	size_t len, n = 0;

	out[0] = '\0';
	if ((l = smtp_reply_line(r, i, &len)) == NULL)
		return;
	while (n < len && l[n] != ' ')
		n++;
	printable_copy(out, outlen, l, n);
}

/* build_ehlo_reply - what the client is shown for its EHLO, from reply r. */
static void
build_ehlo_reply(struct session *s, const struct smtp_reply *r)
{
	char buf[4096], name[SESSION_NAME_MAX + 1];
	bool offer = s->ctx->client_tls != NULL && !tls_io_is_tls(s->cio);
	int n;

	free(s->ehlo_reply);
	s->ehlo_reply = NULL;
	first_word(r, 0, name, sizeof(name));
	if (s->client_esmtp && !s->up_helo_only &&
	    (n = smtp_ehlo_rewrite(r, SESSION_CAPS_ALLOWED, offer, buf, sizeof(buf), NULL)) > 0) {
		s->ehlo_reply = strdup(buf);
		return;
	}
	/* A HELO client, or an upstream without EHLO: a plain 250 with its name. */
	n = snprintf(buf, sizeof(buf), "250 %s\r\n", name[0] ? name : "stsproxy");
	if (n > 0 && (size_t)n < sizeof(buf))
		s->ehlo_reply = strdup(buf);
}

/* setup_finish - answer the client's first EHLO/HELO and start relaying. */
static void
setup_finish(struct session *s)
{
	static const char fallback[] = "250 stsproxy\r\n";

	s->setup_done = true;
	s->greeted = true;
	if (s->ehlo_reply != NULL)
		client_send(s, s->ehlo_reply, strlen(s->ehlo_reply));
	else
		client_send(s, fallback, sizeof(fallback) - 1);
	free(s->ehlo_reply);
	s->ehlo_reply = NULL;
	enter_state(s, S_READY);
}

/* find_mangled - a capability line that looks like a STARTTLS a middlebox overwrote. */
static void
find_mangled(struct session *s, const struct smtp_reply *r)
{
	struct relay_event ev;
	const char *l;
	size_t i, len;

	for (i = 1; i < smtp_reply_nlines(r); i++) {
		if ((l = smtp_reply_line(r, i, &len)) == NULL ||
		    !smtp_cap_looks_mangled_starttls(l, len))
			continue;
		printable_copy(s->seen, sizeof(s->seen), l, len);
		memset(&ev, 0, sizeof(ev));
		ev.kind = RELAY_EV_DOWNGRADE;
		ev.result = STS_RESULT_STARTTLS_NOT_SUPPORTED;
		ev.seen = l;
		ev.seen_len = len;
		ev.action = "reported";
		ev.reason = "EHLO capability looks like a mangled STARTTLS";
		session_event(s, &ev);
		return;
	}
}

/*
 * injection_event - bytes arrived in clear behind a 220 to STARTTLS on the
 * leg io (RFC 3207 section 5): report what was seen (200 octets at most)
 * and close the session with reply.
 */
static void
injection_event(struct session *s, const struct tls_io *io, enum sts_result result,
                const char *action, const char *reason, const char *reply)
{
	struct relay_event ev;
	const char *in;
	size_t n;

	in = tls_io_in(io, &n);
	memset(&ev, 0, sizeof(ev));
	ev.kind = RELAY_EV_INJECTION;
	ev.result = result;
	ev.seen = in;
	ev.seen_len = n > 200 ? 200 : n;
	ev.action = action;
	ev.reason = reason;
	session_event(s, &ev);
	session_close(s, reply);
}

/* up_injection - bytes arrived behind the upstream's 220 to STARTTLS. */
static void
up_injection(struct session *s)
{
	size_t n;

	(void)tls_io_in(s->uio, &n);
	log_warn("session=%s upstream sent %zu bytes after its 220 to STARTTLS: aborted", s->id, n);
	injection_event(s, s->uio, STS_RESULT_VALIDATION_FAILURE, "aborted",
	                "response injection after STARTTLS",
	                "421 4.7.0 Destination mail server failed the TLS negotiation\r\n");
}

/* up_starttls_reply - exactly one reply to our STARTTLS has arrived. */
static void
up_starttls_reply(struct session *s, int code)
{
	struct relay_event ev;
	const char *raw;
	size_t n;

	if (code == 220) {
		const char *sni = sts_hostname_valid(s->up_name) ? s->up_name : NULL;

		/* RFC 3207 section 5: nothing may follow the 220 before the handshake. */
		if (tls_io_in(s->uio, &n) != NULL && n > 0) {
			up_injection(s);
			return;
		}
		if (tls_io_start_tls(s->uio, s->ctx->upstream_tls, false, sni) < 0) {
			s->up_error = true;
			return;
		}
		/* Without a cached session the handshake is simply a full one. */
		(void)tls_resume_prepare(tls_io_ssl(s->uio), (const struct sockaddr *)&s->dst, sni);
		enter_state(s, S_UP_HANDSHAKE);
		return;
	}
	/* RFC-NOTES: a refused STARTTLS is a downgrade, never silent. */
	raw = smtp_reply_raw(s->rd, &n);
	memset(&ev, 0, sizeof(ev));
	ev.kind = RELAY_EV_DOWNGRADE;
	ev.result = STS_RESULT_STARTTLS_NOT_SUPPORTED;
	ev.seen = raw;
	ev.seen_len = n > 200 ? 200 : n;
	ev.action = "reported";
	ev.reason = "STARTTLS offered but refused";
	session_event(s, &ev);
	setup_finish(s);
}

/* up_handshake_done - the upstream leg is TLS: discard what was learnt before. */
static void
up_handshake_done(struct session *s)
{
	bool resumed;

	if (s->facts == NULL && (s->facts = calloc(1, sizeof(*s->facts))) == NULL) {
		s->up_error = true;
		return;
	}
	tls_facts_from_ssl(s->facts, tls_io_ssl(s->uio));
	resumed = SSL_session_reused(tls_io_ssl(s->uio)) == 1;
	stat_add(&s->ctx->stats->tls_upstream, 1);
	if (resumed)
		stat_add(&s->ctx->stats->tls_upstream_resumed, 1);
	log_info("session=%s upstream TLS %s %s subject=\"%s\" resumed=%s", s->id,
	         s->facts->version, s->facts->cipher, s->facts->subject, resumed ? "yes" : "no");
	/* RFC 3207 section 4.2: forget the pre-TLS capabilities; EHLO again. */
	s->up_caps = 0;
	s->seen[0] = '\0';
	free(s->ehlo_reply);
	s->ehlo_reply = NULL;
	up_cmd(s, "EHLO", s->helo);
	enter_state(s, S_UP_EHLO_TLS);
}

/* up_connect - start the non-blocking connect to the original destination. */
static int up_connect(struct session *s);
static loop_fd_cb on_upstream;

/* up_drop - close the upstream leg. */
static void
up_drop(struct session *s)
{
	if (s->uio == NULL)
		return;
	loop_fd_del(s->ctx->loop, tls_io_fd(s->uio));
	tls_io_free(s->uio);
	s->uio = NULL;
	s->up_connected = false;
	smtp_reply_free(s->rd);
	s->rd = NULL;
}

/*
 * up_tls_failed - the upstream TLS handshake failed. The connection is
 * unusable; reconnect without STARTTLS. Recipients are then judged with
 * the failed handshake's facts, so an enforce policy blocks them and only
 * recipients without one may go on in plaintext.
 */
static void
up_tls_failed(struct session *s, const char *why)
{
	log_info("session=%s upstream TLS handshake failed: %s; reconnecting without STARTTLS",
	         s->id, why);
	if (s->facts == NULL && (s->facts = calloc(1, sizeof(*s->facts))) == NULL)
		goto fail;
	tls_facts_from_ssl(s->facts, tls_io_ssl(s->uio));
	up_drop(s);
	s->no_starttls = true;
	s->reconnect = true;
	s->up_caps = 0;
	if (up_connect(s) == 0)
		return;
fail:
	session_close(s, "421 4.4.2 Connection to the destination mail server lost\r\n");
}

/* up_lost - the upstream failed or closed: tell the client, never a 2xx. */
static void
up_lost(struct session *s, const char *why)
{
	const char *final = "421 4.4.2 Connection to the destination mail server lost\r\n";
	struct relay_event ev;

	if (s->state == S_UP_HANDSHAKE && !s->no_starttls) {
		up_tls_failed(s, why);
		return;
	}
	log_info("session=%s upstream lost in state %s: %s", s->id, state_names[s->state], why);
	if ((s->state == S_CONNECT || s->state == S_BANNER) && !s->reconnect)
		final = "421 4.4.1 Cannot reach the destination mail server\r\n";
	if (s->state == S_UP_STARTTLS) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = RELAY_EV_DOWNGRADE;
		ev.result = STS_RESULT_STARTTLS_NOT_SUPPORTED;
		ev.action = "reported";
		ev.reason = why;
		session_event(s, &ev);
	}
	flush(s);
	session_close(s, final);
}

static int
up_connect(struct session *s)
{
	int fd, one = 1;
	uint32_t mark = s->conf->upstream_mark;

	fd = socket(s->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("session=%s socket: %s", s->id, strerror(errno));
		return -1;
	}
	/* The mark keeps our own connections out of the interception rules. */
	if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		log_warn("session=%s SO_MARK: %s", s->id, strerror(errno));
		close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&s->dst, s->dst_len) < 0 && errno != EINPROGRESS) {
		log_info("session=%s connect %s: %s", s->id, s->dest, strerror(errno));
		close(fd);
		return -1;
	}
	if ((s->uio = tls_io_new(fd, s->conf->max_line, SESSION_OUT_MAX)) == NULL)
		return -1;
	if (loop_fd_add(s->ctx->loop, fd, LOOP_WRITE, on_upstream, s) < 0) {
		tls_io_free(s->uio);
		s->uio = NULL;
		return -1;
	}
	/* Nothing to read before the loop says so (the connection is not even up). */
	tls_io_events_seen(s->uio, 0);
	s->up_connected = false;
	enter_state(s, S_CONNECT);
	return 0;
}

/* --- upstream replies ------------------------------------------------------- */

/* relay_entry_reply - the upstream answered entry p; build what the client gets. */
static int
relay_entry_reply(struct session *s, struct pend *p, int code)
{
	const char *raw;
	size_t len;
	bool ok = code >= 200 && code < 300;

	raw = smtp_reply_raw(s->rd, &len);
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
			if (p->tdom != 0 && p->tdom <= s->n_tdoms)
				s->tdoms[p->tdom - 1].accepted = true;
		}
		break;
	case SMTP_CMD_DATA:
		s->blocked = false;
		if (code == 354) {
			smtp_data_init(&s->data);
			s->cr_held = false;
			enter_state(s, S_DATA);
		}
		break;
	case SMTP_CMD_EHLO:
	case SMTP_CMD_HELO:
		if (code == 250) {
			struct smtp_ehlo caps;

			if (!s->up_helo_only && smtp_ehlo_parse(s->rd, &caps) == 0)
				s->up_caps = caps.caps;
			s->client_esmtp = p->cmd == SMTP_CMD_EHLO;
			build_ehlo_reply(s, s->rd);
			if (s->ehlo_reply == NULL)
				return -1;
			len = strlen(s->ehlo_reply);
			if (pend_set_reply(p, s->ehlo_reply, len) < 0)
				return -1;
			free(s->ehlo_reply);
			s->ehlo_reply = NULL;
			s->greeted = true;
			return 0;
		}
		break;
	case SMTP_CMD_QUIT:
		p->flags |= PF_CLOSE;
		break;
	default:
		break;
	}
	/* The reply to the final dot is relayed as the upstream gave it, never made up. */
	if ((p->flags & PF_DOT) && ok && (unsigned)p->mode < 3)
		stat_add(&s->ctx->stats->messages_relayed[p->mode], 1);
	if ((p->flags & PF_DOT) && ok)
		report_delivery(s, p);
	return pend_set_reply(p, raw, len);
}

/* on_reply - a whole upstream reply is in s->rd. */
static void
on_reply(struct session *s)
{
	int code = smtp_reply_code(s->rd);
	const char *raw;
	size_t len;
	struct pend *p;
	struct smtp_ehlo caps;

	s->tick++; /* a whole reply: the session moved on */

	raw = smtp_reply_raw(s->rd, &len);
	switch (s->state) {
	case S_BANNER:
		first_word(s->rd, 0, s->up_name, sizeof(s->up_name));
		if (s->reconnect) {
			if (code != 220) {
				up_lost(s, "banner refused on reconnect");
				return;
			}
			up_cmd(s, "EHLO", s->helo);
			enter_state(s, S_UP_EHLO);
			return;
		}
		/* The banner goes to the client as it is; a refusal is followed as given. */
		client_send(s, raw, len);
		if (code == 220) {
			enter_state(s, S_GREET);
		} else if (code == 421) {
			session_close(s, NULL);
		} else {
			s->setup_done = true;
			enter_state(s, S_READY);
		}
		return;
	case S_UP_EHLO:
		if (code == 250) {
			if (smtp_ehlo_parse(s->rd, &caps) == 0)
				s->up_caps = caps.caps;
			build_ehlo_reply(s, s->rd);
			if ((s->up_caps & SMTP_CAP_STARTTLS) && !s->no_starttls) {
				up_cmd(s, "STARTTLS", NULL);
				enter_state(s, S_UP_STARTTLS);
				return;
			}
			if (!(s->up_caps & SMTP_CAP_STARTTLS))
				find_mangled(s, s->rd);
			setup_finish(s);
			return;
		}
		if (code >= 500) {
			/* RFC 5321 section 4.1.4: fall back to HELO; no STARTTLS then. */
			up_cmd(s, "HELO", s->helo);
			enter_state(s, S_UP_HELO);
			return;
		}
		break;
	case S_UP_HELO:
		if (code == 250) {
			s->up_helo_only = true;
			s->up_caps = 0;
			build_ehlo_reply(s, s->rd);
			setup_finish(s);
			return;
		}
		break;
	case S_UP_STARTTLS:
		up_starttls_reply(s, code);
		return;
	case S_UP_EHLO_TLS:
		if (code == 250) {
			/* only the post-TLS capabilities count */
			if (smtp_ehlo_parse(s->rd, &caps) == 0)
				s->up_caps = caps.caps;
			build_ehlo_reply(s, s->rd);
			setup_finish(s);
			return;
		}
		up_lost(s, "EHLO refused after STARTTLS");
		return;
	default:
		if (!s->rd_unsolicited && (p = pend_upstream_next(s)) != NULL) {
			if (relay_entry_reply(s, p, code) < 0)
				s->dead = true;
			return;
		}
		/* An unsolicited reply: a server closing (421) or a broken one. */
		flush(s);
		if (code == 421) {
			client_send(s, raw, len);
			session_close(s, NULL);
		} else {
			up_lost(s, "unsolicited reply");
		}
		return;
	}
	/* A refused set-up step: relay the refusal and let the client try again. */
	client_send(s, raw, len);
	if (code == 421) {
		session_close(s, NULL);
		return;
	}
	enter_state(s, S_GREET);
}

/* expects_reply - is a reply from the upstream due now? */
static bool
expects_reply(const struct session *s)
{
	return s->state != S_CONNECT && s->state != S_CLOSING;
}

/* reply_due - a reply beginning now answers something we sent. */
static bool
reply_due(struct session *s)
{
	switch (s->state) {
	case S_BANNER:
	case S_UP_EHLO:
	case S_UP_HELO:
	case S_UP_STARTTLS:
	case S_UP_EHLO_TLS:
		return true;
	default:
		return pend_upstream_next(s) != NULL;
	}
}

/* up_step - act on what the upstream sent. >0 on progress. */
static int
up_step(struct session *s)
{
	const char *line;
	size_t len;
	int flags, r, progress = 0;

	if (s->uio == NULL || !s->up_connected)
		return 0;
	if (s->state == S_UP_HANDSHAKE) {
		if (!tls_io_handshake_done(s->uio))
			return 0;
		up_handshake_done(s);
		return 1;
	}
	while (s->uio != NULL && expects_reply(s) && s->state != S_UP_HANDSHAKE && !s->dead &&
	       (line = tls_io_line(s->uio, &len, &flags)) != NULL) {
		if (flags & TLS_IO_LINE_TOO_LONG) {
			up_lost(s, "reply line too long");
			return 1;
		}
		if (flags & TLS_IO_LINE_NO_EOL) {
			up_lost(s, "unterminated reply");
			return 1;
		}
		/*
		 * A reply that begins while none is due is unsolicited however
		 * it ends: its first lines must not become the answer to a
		 * command (above all a final dot) sent while it was arriving.
		 */
		if (s->rd == NULL || smtp_reply_done(s->rd) || smtp_reply_nlines(s->rd) == 0)
			s->rd_unsolicited = !reply_due(s);
		if (s->rd == NULL && (s->rd = smtp_reply_new()) == NULL) {
			s->dead = true;
			return 1;
		}
		r = smtp_reply_feed(s->rd, line, len);
		tls_io_consume(s->uio, len);
		progress = 1;
		if (r == SMTP_REPLY_BAD) {
			log_info("session=%s bad reply from upstream: %s", s->id,
			         smtp_reply_error(s->rd));
			up_lost(s, "malformed reply");
			return 1;
		}
		if (r == SMTP_REPLY_DONE)
			on_reply(s);
	}
	return progress;
}

/* --- client commands -------------------------------------------------------- */

enum { CMD_CONSUME = 0, CMD_STOP = 1, CMD_CONSUMED = 2 };

/* Verb needs. */
enum {
	NEED_GREETED = 1, /* EHLO/HELO first (RFC 5321 section 4.1.4) */
	NEED_MAIL = 2,    /* inside a transaction */
};

typedef int verb_fn(struct session *s, const struct smtp_cmd *c, const char *line, size_t len);

/* forward - relay the command line; its reply comes back in its turn. */
static int
forward(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	/* Without PIPELINING upstream, one command at a time (RFC 2920 section 3.1). */
	if (!(s->up_caps & SMTP_CAP_PIPELINING) && pend_upstream_next(s) != NULL)
		return CMD_STOP;
	if (pend_push(s, c->id, PF_UPSTREAM, NULL, 0) == NULL)
		return -1;
	up_send(s, line, len);
	return CMD_CONSUME;
}

static int
cmd_helo(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	(void)line;
	(void)len;
	if (c->arg_len == 0 || c->arg_len > SESSION_NAME_MAX)
		return local(s, c->id, "501 5.5.4 Invalid domain name\r\n");
	if (!s->setup_done && s->n_pend > 0)
		return CMD_STOP;
	memcpy(s->helo, c->arg, c->arg_len);
	s->helo[c->arg_len] = '\0';
	/* RFC 5321 section 4.1.4: EHLO and HELO reset the transaction. */
	txn_reset(s);
	if (!s->setup_done) {
		s->client_esmtp = c->id == SMTP_CMD_EHLO;
		/* The upstream always gets EHLO, whatever the client said. */
		up_cmd(s, "EHLO", s->helo);
		enter_state(s, S_UP_EHLO);
		return CMD_CONSUME;
	}
	if (!(s->up_caps & SMTP_CAP_PIPELINING) && pend_upstream_next(s) != NULL)
		return CMD_STOP;
	if (pend_push(s, c->id, PF_UPSTREAM, NULL, 0) == NULL)
		return -1;
	up_cmd(s, s->up_helo_only ? "HELO" : "EHLO", s->helo);
	return CMD_CONSUME;
}

static int
cmd_mail(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	if (s->mail != MAIL_NONE)
		return local(s, c->id, "503 5.5.1 Nested MAIL command\r\n");
	txn_reset(s);
	if ((s->mail_line = malloc(len)) == NULL)
		return -1;
	memcpy(s->mail_line, line, len);
	s->mail_len = len;
	s->mail = MAIL_HELD;
	/* Held: sent upstream before the first recipient that passes (see the top). */
	return local(s, c->id, "250 2.1.0 Ok\r\n");
}

static int
cmd_rcpt(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	struct sts_answer a;
	struct pend *p;
	bool pipe = (s->up_caps & SMTP_CAP_PIPELINING) != 0;

	if (s->mail == MAIL_REFUSED)
		return local(s, c->id, s->mail_refusal);
	if (s->n_rcpt >= SESSION_RCPT_MAX)
		return local(s, c->id, "452 4.5.3 Too many recipients\r\n");
	if (!s->verdict.ready) {
		if (c->domain[0] == '\0') {
			/* postmaster or an address literal: no policy domain */
			memset(&s->verdict, 0, sizeof(s->verdict));
			s->verdict.ready = s->verdict.forward = true;
		} else if (sts_engine_lookup_now(s->ctx->engine, c->domain,
		                                 (const struct sockaddr *)&s->dst, &a) == 1) {
			judge(s, c->domain, &a);
		} else {
			snprintf(s->lookup_domain, sizeof(s->lookup_domain), "%s", c->domain);
			s->lookup =
			    sts_engine_lookup(s->ctx->engine, c->domain,
			                      (const struct sockaddr *)&s->dst, lookup_done, s);
			if (s->lookup != 0)
				return CMD_STOP;
			memset(&s->verdict, 0, sizeof(s->verdict));
			s->verdict.ready = true;
			snprintf(s->verdict.reply, sizeof(s->verdict.reply),
			         "451 4.4.3 %s: MTA-STS policy lookup failed temporarily\r\n",
			         c->domain);
		}
	}
	if (!s->verdict.forward) {
		s->verdict.ready = false;
		s->n_rcpt++;
		return local(s, c->id, s->verdict.reply);
	}
	if (!pipe && pend_upstream_next(s) != NULL)
		return CMD_STOP;
	if (s->mail == MAIL_HELD) {
		if (pend_push(s, SMTP_CMD_MAIL, PF_UPSTREAM | PF_HIDDEN, NULL, 0) == NULL)
			return -1;
		up_send(s, s->mail_line, s->mail_len);
		s->mail = MAIL_SENT;
		if (!pipe)
			return CMD_STOP;
	}
	if ((p = pend_push(s, c->id, PF_UPSTREAM, NULL, 0)) == NULL)
		return -1;
	p->mode = s->verdict.mode;
	if (s->verdict.counted)
		p->tdom = txn_dom_add(s, c->domain, s->verdict.policy_id, s->verdict.mode);
	up_send(s, line, len);
	s->verdict.ready = false;
	s->n_rcpt++;
	return CMD_CONSUME;
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
	if (pend_push(s, c->id, PF_UPSTREAM, NULL, 0) == NULL)
		return -1;
	up_send(s, line, len);
	return CMD_CONSUME;
}

static int
cmd_rset(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	txn_reset(s);
	return forward(s, c, line, len);
}

static int
cmd_quit(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	int r = forward(s, c, line, len);

	if (r == CMD_CONSUME)
		s->blocked = true;
	return r;
}

/* client_injection - plaintext pipelined behind STARTTLS (RFC 3207 section 5). */
static void
client_injection(struct session *s)
{
	injection_event(s, s->cio, STS_RESULT_OK, "refused", "client pipelined data after STARTTLS",
	                "554 5.5.0 Data pipelined after STARTTLS refused\r\n");
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
	client_send(s, ready, sizeof(ready) - 1);
	if (tls_io_start_tls(s->cio, s->ctx->client_tls, true, NULL) < 0) {
		client_injection(s);
		return CMD_CONSUMED;
	}
	enter_state(s, S_CLIENT_TLS);
	return CMD_CONSUMED;
}

static int
cmd_bdat(struct session *s, const struct smtp_cmd *c, const char *line, size_t len)
{
	(void)line;
	(void)len;
	/* CHUNKING is never advertised (see SESSION_CAPS_ALLOWED). */
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

/* client_fatal - a refusal after which the client's framing cannot be trusted. */
static void
client_fatal(struct session *s, const char *reply)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "%s\r\n", reply);
	if (pend_push(s, SMTP_CMD_UNKNOWN, PF_DONE | PF_CLOSE, buf, strlen(buf)) == NULL)
		s->dead = true;
}

/* commands_step - parse and dispatch what the client sent. >0 on progress. */
static int
commands_step(struct session *s)
{
	struct smtp_cmd c;
	const char *line;
	size_t len;
	int flags, r, progress = 0;

	while ((s->state == S_GREET || s->state == S_READY) && !s->blocked && !s->dead &&
	       s->lookup == 0 && s->n_pend < SESSION_PEND_MAX && !s->up_error &&
	       (line = tls_io_line(s->cio, &len, &flags)) != NULL) {
		if (flags & TLS_IO_LINE_TOO_LONG) {
			/* RFC 5321 section 4.5.3.1.4; then close, the framing is lost. */
			tls_io_consume(s->cio, len);
			client_fatal(s, SMTP_ERR_LINE_TOO_LONG);
			s->blocked = true;
			return 1;
		}
		if (flags & TLS_IO_LINE_NO_EOL) {
			tls_io_consume(s->cio, len);
			s->dead = true;
			return 1;
		}
		if (smtp_cmd_parse_max(line, len, s->conf->max_line, &c) < 0) {
			tls_io_consume(s->cio, len);
			if (c.error_close) {
				client_fatal(s, c.error);
				s->blocked = true;
				return 1;
			}
			char buf[160];
			snprintf(buf, sizeof(buf), "%s\r\n", c.error);
			if (local(s, SMTP_CMD_UNKNOWN, buf) < 0)
				s->dead = true;
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

/* data_step - stream message data upstream as it arrives. >0 on progress. */
static int
data_step(struct session *s)
{
	const char *buf;
	size_t n, space, used, send;
	int r, progress = 0;
	bool cr;
	struct pend *p;

	while (s->state == S_DATA && s->uio != NULL && !s->up_error &&
	       (buf = tls_io_in(s->cio, &n)) != NULL) {
		/* Backpressure: read the client only as fast as the upstream drains. */
		space = tls_io_out_space(s->uio);
		if (space < 2)
			break;
		if (n > space - 1)
			n = space - 1;
		r = smtp_data_feed(&s->data, buf, n, &used);
		if (r == SMTP_DATA_BAD) {
			/*
			 * Smuggling attempt (bare CR, LF or NUL): the upstream loses
			 * the connection without ever seeing an end of data, so it
			 * discards the partial message.
			 */
			log_warn("session=%s DATA refused at octet %llu: %s", s->id,
			         (unsigned long long)s->data.error_offset, s->data.error);
			up_drop(s);
			char reply[160];
			snprintf(reply, sizeof(reply), "%s\r\n", s->data.error);
			session_close(s, reply);
			return 1;
		}
		/* A CR at the end of a chunk waits for its LF: no lone CR ever goes out. */
		cr = r == SMTP_DATA_MORE && smtp_data_cr_pending(&s->data);
		send = cr ? used - 1 : used;
		if (s->cr_held)
			up_send(s, "\r", 1);
		up_send(s, buf, send);
		s->cr_held = cr;
		tls_io_consume(s->cio, used);
		s->tick++;
		progress = 1;
		if (r == SMTP_DATA_END) {
			p = pend_push(s, SMTP_CMD_UNKNOWN, PF_UPSTREAM | PF_DOT, NULL, 0);
			if (p == NULL) {
				s->dead = true;
				return 1;
			}
			p->mode = s->txn_mode;
			/* The reply to the dot may come after the next transaction began. */
			p->tdoms = s->tdoms;
			p->n_tdoms = s->n_tdoms;
			s->tdoms = NULL;
			txn_reset(s);
			enter_state(s, S_READY);
		}
	}
	return progress;
}

/* client_step - the client side: handshake, commands or data. */
static int
client_step(struct session *s)
{
	if (s->state == S_CLIENT_TLS) {
		if (!tls_io_handshake_done(s->cio))
			return 0;
		/* RFC 3207 section 4.2: forget everything the client said before TLS. */
		s->greeted = false;
		s->client_esmtp = false;
		txn_reset(s);
		enter_state(s, S_READY);
		return 1;
	}
	if (s->state == S_DATA)
		return data_step(s);
	return commands_step(s);
}

/* --- driving ---------------------------------------------------------------- */

/* state_timeout_ms - the inactivity limit of the current state (RFC 5321 4.5.3.2). */
static uint64_t
state_timeout_ms(const struct session *s)
{
	const struct conf_timeouts *t = &s->conf->timeouts;
	const struct pend *p;
	unsigned sec;

	switch (s->state) {
	case S_CONNECT:
		sec = t->connect;
		break;
	case S_BANNER:
		sec = t->greeting;
		break;
	case S_UP_STARTTLS:
	case S_UP_HANDSHAKE:
	case S_CLIENT_TLS:
		sec = t->starttls;
		break;
	case S_DATA:
		sec = t->data_block;
		break;
	default:
		sec = t->command;
		for (p = s->head; p != NULL; p = p->next)
			if ((p->flags & (PF_UPSTREAM | PF_DONE)) == PF_UPSTREAM) {
				if (p->flags & PF_DOT)
					sec = t->data_done;
				break;
			}
		break;
	}
	return (uint64_t)sec * 1000;
}

static void session_free(struct session *s);

/* on_timer - the state's limit passed without activity, or the close linger ended. */
static void
on_timer(struct loop *loop, void *arg)
{
	struct session *s = arg;
	struct relay_event ev;
	uint64_t now = loop_now_ms(loop);

	s->timer = 0;
	if (s->state != S_CLOSING && s->armed_state == (int)s->state && s->due_ms > now) {
		/* The session moved on since the timer was set: wait out the rest. */
		s->timer = loop_timer_add(loop, s->due_ms - now, on_timer, s);
		s->timer_at = s->due_ms;
		if (s->timer != 0)
			return;
	}
	switch (s->state) {
	case S_CLOSING:
		session_free(s);
		return;
	case S_CONNECT:
		if (s->uio == NULL) { /* the kick of session_start: connect failed at once */
			up_lost(s, "connect failed");
			break;
		}
		up_lost(s, "connect timeout");
		break;
	case S_UP_STARTTLS:
		/* A STARTTLS that never answers is a downgrade attempt. */
		memset(&ev, 0, sizeof(ev));
		ev.kind = RELAY_EV_DOWNGRADE;
		ev.result = STS_RESULT_STARTTLS_NOT_SUPPORTED;
		ev.action = "reported";
		ev.reason = "timeout waiting for the reply to STARTTLS";
		session_event(s, &ev);
		session_close(s, "421 4.4.2 Destination mail server timed out\r\n");
		break;
	case S_GREET:
	case S_READY:
		if (pend_upstream_next(s) == NULL && s->lookup == 0) {
			flush(s);
			session_close(s, "421 4.4.2 Idle timeout, closing\r\n");
			break;
		}
		up_lost(s, "timeout");
		break;
	case S_DATA:
		session_close(s, "421 4.4.2 Timeout waiting for message data\r\n");
		break;
	case S_CLIENT_TLS:
		s->dead = true;
		break;
	default:
		up_lost(s, "timeout");
		break;
	}
	session_run(s);
}

/*
 * keep_buffers - whether the legs keep their emptied buffers (and OpenSSL
 * its record buffers) for the next bytes: while a command, its reply or
 * message data is in flight after the set-up. Releasing them per read, per
 * write and per TLS record was the allocator churn of the relay. They are
 * given back whenever the session waits for the mailer's next command, and
 * during the set-up: buffers kept through the upstream handshake and freed
 * only afterwards leave holes between the session's long-lived TLS objects,
 * which raised the resident memory of an idle session from ~40 to ~60 KiB.
 */
static bool
keep_buffers(const struct session *s)
{
	size_t n;

	if (!s->setup_done || s->state == S_CLOSING)
		return false;
	if (s->state == S_DATA || s->n_pend > 0 || s->lookup != 0)
		return true;
	if (tls_io_in(s->cio, &n) != NULL || tls_io_out_pending(s->cio) > 0)
		return true;
	return s->uio != NULL && (tls_io_in(s->uio, &n) != NULL || tls_io_out_pending(s->uio) > 0);
}

/* update_io - the loop masks of both legs, buffer retention, and the state's timer. */
static void
update_io(struct session *s)
{
	struct loop *loop = s->ctx->loop;
	bool active = keep_buffers(s);
	uint64_t ms;

	tls_io_set_active(s->cio, active);
	if (s->uio != NULL) {
		tls_io_set_active(s->uio, active);
		loop_fd_mod(loop, tls_io_fd(s->uio),
		            s->up_connected ? tls_io_events(s->uio) : LOOP_WRITE);
	}
	loop_fd_mod(loop, tls_io_fd(s->cio), tls_io_events(s->cio));
	if (s->state == S_CLOSING)
		return;
	if (s->timer != 0 && s->armed_state == (int)s->state) {
		if (s->armed_tick == s->tick)
			return;
		/*
		 * Progress within the same state moves the deadline; the timer
		 * itself only when the deadline comes earlier. A later one is
		 * taken up by on_timer: re-arming for every block of message
		 * data cost a timer allocation and two heap updates per read.
		 */
		s->armed_tick = s->tick;
		s->due_ms = loop_now_ms(loop) + state_timeout_ms(s);
		if (s->due_ms >= s->timer_at)
			return;
	}
	loop_timer_cancel(loop, s->timer);
	ms = state_timeout_ms(s);
	s->timer = loop_timer_add(loop, ms, on_timer, s);
	s->timer_at = s->due_ms = loop_now_ms(loop) + ms;
	s->armed_state = (int)s->state;
	s->armed_tick = s->tick;
}

/* safe_to_stop - a draining stop may close now (never between the dot and its reply). */
static bool
safe_to_stop(const struct session *s)
{
	return s->state != S_DATA && s->state != S_CLOSING && s->state != S_CLIENT_TLS &&
	       s->n_pend == 0 && s->lookup == 0;
}

/*
 * session_run - the session's one strategy function: pump both legs, act on
 * what arrived, flush replies in order; repeat while anything moves.
 */
static void
session_run(struct session *s)
{
	int progress, r;

	if (s->in_run) {
		s->rerun = true;
		return;
	}
	s->in_run = true;
	do {
		progress = 0;
		s->rerun = false;
		if (s->uio != NULL && s->up_connected) {
			if ((r = tls_io_pump(s->uio)) < 0) {
				up_lost(s, tls_io_error(s->uio));
				progress = 1;
			} else {
				progress |= r;
			}
		}
		if ((r = tls_io_pump(s->cio)) < 0) {
			if (s->state != S_CLOSING)
				log_info("session=%s client gone in state %s: %s", s->id,
				         state_names[s->state], tls_io_error(s->cio));
			s->dead = true;
			break;
		}
		progress |= r;
		if (s->state == S_CLOSING) {
			if (tls_io_shutdown_done(s->cio))
				s->dead = true;
			continue;
		}
		progress |= up_step(s);
		if (s->dead || s->state == S_CLOSING)
			continue;
		progress |= client_step(s);
		progress |= flush(s);
		if (s->up_error && s->state != S_CLOSING) {
			s->up_error = false;
			up_lost(s, s->uio ? "upstream write failed" : "upstream closed");
			progress = 1;
		}
		if (s->shutting_down && safe_to_stop(s))
			session_close(s, "421 4.3.2 stsproxy shutting down\r\n");
		/* An idle reply reader holds memory for nothing. */
		if (s->rd != NULL && pend_upstream_next(s) == NULL &&
		    (s->state == S_READY || s->state == S_GREET || s->state == S_DATA) &&
		    smtp_reply_done(s->rd)) {
			smtp_reply_free(s->rd);
			s->rd = NULL;
		}
	} while ((progress || s->rerun) && !s->dead);
	s->in_run = false;
	if (s->dead) {
		session_free(s);
		return;
	}
	update_io(s);
}

/* session_close - send final (may be NULL) and close both legs. */
static void
session_close(struct session *s, const char *final)
{
	if (s->state == S_CLOSING)
		return;
	if (final != NULL)
		(void)tls_io_write(s->cio, final, strlen(final));
	up_drop(s);
	if (s->lookup != 0) {
		sts_engine_cancel(s->ctx->engine, s->lookup);
		s->lookup = 0;
	}
	while (s->head != NULL)
		pend_pop(s);
	tls_io_shutdown(s->cio);
	enter_state(s, S_CLOSING);
	loop_timer_cancel(s->ctx->loop, s->timer);
	s->timer = loop_timer_add(s->ctx->loop, SESSION_LINGER_MS, on_timer, s);
	s->rerun = true;
}

/* fd callbacks: both legs lead to session_run(). */
static void
on_client(struct loop *loop, int fd, int events, void *arg)
{
	struct session *s = arg;

	(void)loop;
	(void)fd;
	tls_io_events_seen(s->cio, events);
	session_run(s);
}

static void
on_upstream(struct loop *loop, int fd, int events, void *arg)
{
	struct session *s = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)loop;
	if (s->uio != NULL)
		tls_io_events_seen(s->uio, events);
	if (s->state == S_CONNECT && !s->up_connected) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			up_lost(s, strerror(err));
			session_run(s);
			return;
		}
		s->up_connected = true;
		enter_state(s, S_BANNER);
	}
	session_run(s);
}

/* session_free - the one teardown: timers, lookups, both legs, the list, on_end. */
static void
session_free(struct session *s)
{
	struct session_ctx *ctx;

	if (s == NULL)
		return;
	ctx = s->ctx;
	loop_timer_cancel(ctx->loop, s->timer);
	if (s->lookup != 0)
		sts_engine_cancel(ctx->engine, s->lookup);
	up_drop(s);
	if (s->cio != NULL) {
		loop_fd_del(ctx->loop, tls_io_fd(s->cio));
		tls_io_free(s->cio);
	}
	while (s->head != NULL)
		pend_pop(s);
	free(s->mail_line);
	free(s->mail_refusal);
	free(s->ehlo_reply);
	free(s->tdoms);
	if (s->facts != NULL) {
		tls_facts_clear(s->facts);
		free(s->facts);
	}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ctx->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	ctx->n_sessions--;
	stat_add(&ctx->stats->sessions_active, -1);
	log_debug("session=%s end", s->id);
	free(s);
	if (ctx->on_end != NULL)
		ctx->on_end(ctx->on_end_arg);
}

/* addr_text - "ip" and "ip:port" ("[v6]:port") of sa. */
static void
addr_text(const struct sockaddr *sa, char *ip, size_t iplen, char *full, size_t fulllen)
{
	unsigned port = 0;

	ip[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen);
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
		port = ntohs(in6->sin6_port);
	}
	if (full != NULL)
		snprintf(full, fulllen, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

int
session_start(struct session_ctx *ctx, int client_fd, const struct sockaddr *client,
              socklen_t client_len, const struct sockaddr *orig_dst, socklen_t orig_len)
{
	struct session *s;
	char dst_ip[INET6_ADDRSTRLEN];
	uint64_t n;

	if ((s = calloc(1, sizeof(*s))) == NULL || orig_len > sizeof(s->dst) ||
	    (orig_dst->sa_family != AF_INET && orig_dst->sa_family != AF_INET6)) {
		free(s);
		close(client_fd);
		return -1;
	}
	s->ctx = ctx;
	s->conf = ctx->conf;
	n = atomic_fetch_add_explicit(&session_serial, 1, memory_order_relaxed) + 1;
	snprintf(s->id, sizeof(s->id), "w%u-%06llu", ctx->worker_id, (unsigned long long)n);
	if (client != NULL && client_len > 0)
		addr_text(client, s->client_ip, sizeof(s->client_ip), NULL, 0);
	memcpy(&s->dst, orig_dst, orig_len);
	s->dst_len = orig_len;
	addr_text(orig_dst, dst_ip, sizeof(dst_ip), s->dest, sizeof(s->dest));
	/*
	 * Replies are written whole from our own buffer: Nagle would only hold
	 * a local reply back behind an earlier one until the mailer's delayed
	 * ACK, some 40 ms per pipelined group.
	 */
	(void)setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if ((s->cio = tls_io_new(client_fd, ctx->conf->max_line, SESSION_OUT_MAX)) == NULL) {
		free(s);
		return -1;
	}
	if (loop_fd_add(ctx->loop, client_fd, LOOP_READ, on_client, s) < 0) {
		tls_io_free(s->cio);
		free(s);
		return -1;
	}
	/* The mailer waits for the banner: its first bytes come with an event. */
	tls_io_events_seen(s->cio, 0);
	s->next = ctx->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	ctx->sessions = s;
	ctx->n_sessions++;
	stat_add(&ctx->stats->sessions_total, 1);
	stat_add(&ctx->stats->sessions_active, 1);
	log_info("session=%s start client=%s dest=%s", s->id, s->client_ip, s->dest);

	if (up_connect(s) == 0) {
		s->timer = loop_timer_add(ctx->loop, state_timeout_ms(s), on_timer, s);
		s->timer_at = s->due_ms = loop_now_ms(ctx->loop) + state_timeout_ms(s);
		return 0;
	}
	/* Connect failed at once: tell the client from the loop, never from here. */
	s->timer = loop_timer_add(ctx->loop, 0, on_timer, s);
	return 0;
}

void
session_shutdown_all(struct session_ctx *ctx)
{
	struct session *s, *next;

	for (s = ctx->sessions; s != NULL; s = next) {
		next = s->next;
		s->shutting_down = true;
		session_run(s);
	}
}

void
session_abort_all(struct session_ctx *ctx)
{
	struct session *s, *next;

	for (s = ctx->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->dead || s->state == S_CLOSING)
			continue;
		session_close(s, "421 4.3.2 stsproxy shutting down\r\n");
		session_run(s);
	}
}

unsigned
session_count(const struct session_ctx *ctx)
{
	return ctx->n_sessions;
}
