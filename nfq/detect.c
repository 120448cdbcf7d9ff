/*
 * detect.c - the SMTP dialogue of each inspected flow and the downgrade
 * detections (see detect.h for what is detected and the verdicts).
 *
 * Per flow, a small state: a FIFO of the client's commands still waiting
 * for a reply (RFC 2920 section 3.1: replies come back in command order,
 * so each final reply line answers the oldest command), facts about the
 * EHLO reply being read, and what was already reported, so each downgrade
 * is reported once per flow. Only the envelope is inspected: once the
 * message data starts (354, or BDAT) or TLS starts, the flow is released.
 *
 * What waits for a lookup is a record of nfq/hold.h, one per flow at most,
 * linked both ways: dflow.hold and hold.flow. While a record holds a
 * packet, the flow is paused (nfq/flow.h): no later segment is reassembled,
 * and each is dropped. A record ends in finish(), which gives the held
 * packet its verdict and unlinks both sides; a flow that ends first takes
 * its record with it, except a record without a packet (log mode), which
 * forgets the flow and still reports the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>

#include "core/evlog.h"
#include "core/log.h"
#include "core/util.h"
#include "nfq/detect.h"
#include "nfq/hold.h"
#include "nfq/srvmem.h"

#define CMD_FIFO   32 /* pipelined commands tracked; more are not matched */
#define DOMAINS    8  /* recipient domains remembered per flow */
#define DETAIL_MAX HOLD_LINE_MAX

enum cmd {
	CMD_OTHER = 0,
	CMD_EHLO,
	CMD_HELO,
	CMD_STARTTLS,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_BDAT,
};

/* The per-flow area inside the flow table (flow_user()). */
struct dflow {
	uint8_t fifo[CMD_FIFO];
	uint8_t head;
	uint8_t count;
	bool greeted;      /* the banner reply was read */
	bool in_reply;     /* inside a multi-line reply */
	uint8_t reply_cmd; /* the command the reply answers */
	unsigned reply_lines;
	bool cap_starttls; /* EHLO reply being read offers STARTTLS */
	bool cap_mangled;
	char mangled[DETAIL_MAX];
	bool no_starttls; /* the last EHLO reply lacked STARTTLS */
	bool stripped_reported;
	bool await_tls; /* 220 to STARTTLS: a ClientHello should follow */
	bool blocked;
	uint8_t n_domains;
	uint32_t domains[DOMAINS];  /* hashes of the recipient domains already handled */
	char mail_from[DETAIL_MAX]; /* reverse-path of the last MAIL FROM as sent (cut), or "" */
	struct hold *hold;          /* what waits for a lookup, or NULL */
};

struct detect {
	struct detect_params p;
	struct flow_table *flows;
	struct hold_table *holds;
	struct srvmem *servers;
	struct detect_stats stats;
	/* The packet being inspected: its verdict, number, handle and headers. */
	struct detect_result cur;
	uint64_t pkt_no;
	uint64_t cookie;
	const struct nfq_pkt *pkt;
	uint64_t now; /* ms, of the last call that brought the time */
	int64_t wall; /* for the server memory */
};

/* What one event says besides its flow. */
struct ev {
	enum detect_kind kind;
	const char *domain; /* or NULL */
	int mode;           /* STS_MODE_*, or -1: unknown */
	const char *reason;
	const char *detail;    /* or NULL */
	const char *action;    /* "block", "pass", "log" */
	const char *mail_from; /* or NULL / "" */
	int64_t held_ms;       /* -1: not held */
};

static const char *const kind_names[] = {
    [DETECT_STRIPPED] = "starttls_stripped",    [DETECT_MANGLED] = "starttls_mangled",
    [DETECT_REFUSED] = "starttls_refused",      [DETECT_CLEARTEXT_RCPT] = "cleartext_rcpt",
    [DETECT_POLICY_UNKNOWN] = "policy_unknown",
};

/* detect_kind_name - the event name of a detection. */
const char *
detect_kind_name(enum detect_kind kind)
{
	if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]))
		return kind_names[kind];
	return "unknown";
}

/* detect_starttls_mangled - does an EHLO keyword look like a rewritten STARTTLS. */
bool
detect_starttls_mangled(const char *kw, size_t len)
{
	static const char want[] = "STARTTLS";
	size_t i, run = 1, best = 1, diff = 0;

	if (len != 8)
		return false;
	for (i = 1; i < len; i++) {
		run = kw[i] == kw[i - 1] ? run + 1 : 1;
		if (run > best)
			best = run;
	}
	for (i = 0; i < len; i++)
		if ((kw[i] & ~0x20) != want[i])
			diff++;
	return best >= 7 || (diff >= 1 && diff <= 4);
}

static void
endpoint(int family, const uint8_t *addr, uint16_t port, char *out, size_t outlen)
{
	char a[64];
	int n;

	nfq_addr_str(family, addr, a, sizeof(a));
	n = snprintf(out, outlen, "%s %u", a, port);
	if (n < 0 || (size_t)n >= outlen)
		sts_strlcpy(out, "?", outlen);
}

/* Printable copy of an attacker-controlled line for the key=value log. */
static void
printable(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < outlen; i++)
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	out[o] = '\0';
}

/* report - one event about the flow k (number id): log line, JSON line, callback. */
static void
report(struct detect *d, const struct flow_key *k, uint64_t id, const struct ev *e)
{
	struct detect_event ev;
	char client[80], server[80], held[32] = "", mail_from[DETAIL_MAX];
	const char *mode = e->mode >= 0 ? sts_mode_name((enum sts_mode)e->mode) : "unknown";
	const char *from = NULL;
	json_t *o;

	if (e->mail_from != NULL && e->mail_from[0] != '\0') {
		printable(e->mail_from, strlen(e->mail_from), mail_from, sizeof(mail_from));
		from = mail_from;
	}
	endpoint(k->family, k->client, k->cport, client, sizeof(client));
	endpoint(k->family, k->server, k->sport, server, sizeof(server));
	if (e->held_ms >= 0)
		snprintf(held, sizeof(held), " held_ms=%lld", (long long)e->held_ms);
	d->stats.events++;
	log_warn("nfq: event=%s flow=%llu client=\"%s\" server=\"%s\" domain=%s mode=%s "
	         "reason=%s action=%s%s mail_from=\"%s\" detail=\"%s\"",
	         detect_kind_name(e->kind), (unsigned long long)id, client, server,
	         e->domain ? e->domain : "-", e->domain ? mode : "-", e->reason, e->action, held,
	         from ? from : "", e->detail ? e->detail : "");
	o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "event", detect_kind_name(e->kind),
	              "source", "nfq", "flow", (json_int_t)id, "client", client, "server", server,
	              "reason", e->reason, "action", e->action);
	if (o != NULL) {
		/* A downgrade is a TLS-RPT failure; an unknown policy is not yet one. */
		if (e->kind != DETECT_POLICY_UNKNOWN)
			json_object_set_new(o, "result", json_string("starttls-not-supported"));
		if (e->domain) {
			json_object_set_new(o, "domain", json_string(e->domain));
			if (e->mode >= 0)
				json_object_set_new(o, "mode", json_string(mode));
		}
		if (e->detail)
			json_object_set_new(o, "detail", evlog_str(e->detail, strlen(e->detail)));
		if (from)
			json_object_set_new(o, "mail_from", evlog_str(from, strlen(from)));
		if (e->held_ms >= 0)
			json_object_set_new(o, "held_ms", json_integer((json_int_t)e->held_ms));
		evlog_write(o);
		json_decref(o);
	}
	if (d->p.on_event) {
		ev = (struct detect_event){
		    .kind = e->kind,
		    .flow = id,
		    .client = client,
		    .server = server,
		    .domain = e->domain,
		    .mode = e->mode >= 0 ? (enum sts_mode)e->mode : STS_MODE_NONE,
		    .reason = e->reason,
		    .detail = e->detail,
		    .blocked = strcmp(e->action, "block") == 0,
		    .action = e->action,
		    .mail_from = from,
		    .held_ms = e->held_ms,
		};
		d->p.on_event(d->p.arg, &ev);
	}
}

/* report_flow - an event about a live flow, found in the packet being inspected. */
static void
report_flow(struct detect *d, struct flow *f, enum detect_kind kind, const char *reason,
            const char *detail, const char *action)
{
	struct ev e = {kind, NULL, -1, reason, detail, action, NULL, -1};

	report(d, flow_key_of(f), flow_id(f), &e);
}

/* release - f needs no more inspection; a held packet is released when let go. */
static void
release(struct detect *d, struct flow *f)
{
	struct dflow *s = flow_user(f);

	if (s->hold != NULL && s->hold->has_packet)
		s->hold->release = true;
	else if (d->cur.verdict != DETECT_DROP)
		d->cur.verdict = DETECT_RELEASE;
	flow_ignore(f);
}

static void
push_cmd(struct dflow *s, enum cmd c)
{
	if (s->count < CMD_FIFO)
		s->fifo[(s->head + s->count++) % CMD_FIFO] = (uint8_t)c;
}

static enum cmd
pop_cmd(struct dflow *s)
{
	enum cmd c;

	if (s->count == 0)
		return CMD_OTHER;
	c = (enum cmd)s->fifo[s->head];
	s->head = (uint8_t)((s->head + 1) % CMD_FIFO);
	s->count--;
	return c;
}

static bool
verb_is(const char *line, size_t len, const char *verb)
{
	size_t n = strlen(verb);

	return len >= n && strncasecmp(line, verb, n) == 0 &&
	       (len == n || line[n] == ' ' || line[n] == ':' || line[n] == '\t');
}

static uint32_t
str_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* The domain of "RCPT TO:<local@domain> params", lower case in A-labels; -1 if none. */
static int
rcpt_domain(const char *line, size_t len, char *out, size_t outlen)
{
	char raw[STS_HOSTNAME_MAX + 2];
	const char *lt, *gt, *at = NULL, *p;
	size_t n;

	if ((lt = memchr(line, '<', len)) == NULL)
		return -1;
	if ((gt = memchr(lt, '>', len - (size_t)(lt - line))) == NULL)
		return -1;
	for (p = lt; p < gt; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return -1;
	n = (size_t)(gt - at - 1);
	if (n == 0 || n >= sizeof(raw))
		return -1;
	memcpy(raw, at + 1, n);
	raw[n] = '\0';
	return sts_domain_to_ascii(raw, out, outlen);
}

/* The flow an event is about: live, or only remembered by its record. */
struct who {
	const struct flow_key *key;
	uint64_t id;
	struct dflow *s; /* NULL once the flow ended */
	const char *mail_from;
};

static struct who
who_flow(struct flow *f)
{
	struct dflow *s = flow_user(f);

	return (struct who){flow_key_of(f), flow_id(f), s, s->mail_from};
}

static struct who
who_hold(struct hold *h)
{
	struct dflow *s = h->flow != NULL ? flow_user(h->flow) : NULL;

	return (struct who){&h->key, h->flow_id, s, h->mail_from};
}

/*
 * judge - a cleartext RCPT (its printable line) to domain, whose policy
 * mode is now known: report it; true when the flow must be blocked.
 */
static bool
judge(struct detect *d, const struct who *w, const char *domain, int mode, const char *line,
      bool no_starttls, int64_t held_ms)
{
	struct ev e = {DETECT_CLEARTEXT_RCPT, domain, mode, NULL, line, NULL,
	               w->mail_from,          held_ms};
	bool block;

	if (mode != STS_MODE_TESTING && mode != STS_MODE_ENFORCE)
		return false;
	/* RFC 8461 section 5: an enforce policy forbids delivery without TLS;
	 * in block mode the RCPT never reaches the server. */
	block = mode == STS_MODE_ENFORCE && d->p.action == CONF_NFQ_BLOCK && w->s != NULL;
	e.action = block ? "block" : "log";
	if (no_starttls && w->s != NULL && !w->s->stripped_reported) {
		struct ev st = e;

		w->s->stripped_reported = true;
		st.kind = DETECT_STRIPPED;
		st.reason = "policy";
		st.detail = NULL;
		report(d, w->key, w->id, &st);
	}
	e.reason = no_starttls ? "no_starttls" : "starttls_not_used";
	report(d, w->key, w->id, &e);
	return block;
}

/* block_now - the packet being inspected is dropped, the flow reset both ways. */
static void
block_now(struct detect *d, struct flow *f, struct dflow *s)
{
	s->blocked = true;
	d->cur.verdict = DETECT_DROP;
	d->cur.reset = true;
	flow_ignore(f);
}

/*
 * finish - h is decided: its packet, if any, is dropped (block; reset:
 * with RSTs both ways) or let go, the flow goes on or stays blocked, and
 * h is freed.
 */
static void
finish(struct detect *d, struct hold *h, bool block, bool reset)
{
	struct dflow *s = h->flow != NULL ? flow_user(h->flow) : NULL;
	struct detect_result r = {DETECT_ACCEPT, false};

	if (h->has_packet) {
		if (block) {
			r = (struct detect_result){DETECT_DROP, reset};
			d->stats.drops++;
		} else if (h->release) {
			r.verdict = DETECT_RELEASE;
			d->stats.releases++;
		} else {
			d->stats.accepts++;
		}
		if (d->p.on_verdict != NULL)
			d->p.on_verdict(d->p.arg, h->cookie, &h->pkt, r);
	}
	if (s != NULL) {
		s->hold = NULL;
		flow_pause(h->flow, false);
		if (block) {
			s->blocked = true;
			flow_ignore(h->flow);
		}
	}
	hold_free(d->holds, h);
}

/*
 * unknown - no answer for h's domain i (why): report it; true when the
 * held packet is to be blocked (hold_action).
 */
static bool
unknown(struct detect *d, struct hold *h, size_t i, const char *why, int64_t held_ms)
{
	struct who w = who_hold(h);
	bool block = h->has_packet && d->p.hold_action == CONF_NFQ_HOLD_BLOCK;
	struct ev e = {DETECT_POLICY_UNKNOWN,
	               h->dom[i].name,
	               -1,
	               why,
	               h->dom[i].line,
	               !h->has_packet ? "log"
	               : block        ? "block"
	                              : "pass",
	               w.mail_from,
	               held_ms};

	report(d, w.key, w.id, &e);
	return block;
}

/* give_up - no answer for any domain h still waits for (why); h ends. */
static void
give_up(struct detect *d, struct hold *h, const char *why, bool reset)
{
	int64_t held = h->has_packet ? (int64_t)(d->now - h->since) : -1;
	bool block = false;
	size_t i;

	for (i = 0; i < h->n_domains; i++) {
		if (h->dom[i].answered)
			continue;
		h->dom[i].answered = true;
		block |= unknown(d, h, i, why, held);
	}
	h->n_waiting = 0;
	finish(d, h, block, block && reset && h->flow != NULL);
}

/*
 * overflow - domain's policy is unknown and cannot be waited for: in block
 * mode hold_action decides for the packet being inspected at once.
 */
static void
overflow(struct detect *d, struct flow *f, struct dflow *s, const char *domain, const char *line)
{
	bool block = d->p.hold_action == CONF_NFQ_HOLD_BLOCK;
	struct ev e = {DETECT_POLICY_UNKNOWN,    domain,       -1, "hold_limit", line,
	               block ? "block" : "pass", s->mail_from, -1};

	d->stats.hold_overflows++;
	if (d->p.action != CONF_NFQ_BLOCK)
		return; /* log mode: nothing would have been held */
	report(d, flow_key_of(f), flow_id(f), &e);
	if (block)
		block_now(d, f, s);
}

/*
 * wait_for - domain's policy is not known: look it up and, with room for
 * it, make the flow's record wait for it; in block mode the record holds
 * the packet being inspected, and the flow pauses.
 */
static void
wait_for(struct detect *d, struct flow *f, struct dflow *s, const char *domain, const char *line)
{
	struct hold *h = s->hold;

	if (d->p.lookup == NULL)
		return;
	if (d->p.lookup(d->p.arg, domain) < 0 || d->p.hold_max == 0)
		return; /* only learnt for the next connection */
	if (h == NULL) {
		if ((h = hold_new(d->holds, d->now, d->now + d->p.hold_ms)) == NULL) {
			overflow(d, f, s, domain, line);
			return;
		}
		h->flow = f;
		h->key = *flow_key_of(f);
		h->flow_id = flow_id(f);
		if (d->p.action == CONF_NFQ_BLOCK) {
			h->has_packet = true;
			h->cookie = d->cookie;
			h->pkt_no = d->pkt_no;
			h->pkt = *d->pkt;
			h->pkt.payload = NULL;
			h->pkt.len = 0;
			flow_pause(f, true);
		}
		s->hold = h;
	}
	sts_strlcpy(h->mail_from, s->mail_from, sizeof(h->mail_from));
	if (hold_add(h, domain, line, s->no_starttls) < 0)
		overflow(d, f, s, domain, line);
}

static void
on_rcpt(struct detect *d, struct flow *f, struct dflow *s, const char *line, size_t len)
{
	char domain[STS_HOSTNAME_MAX + 1], detail[DETAIL_MAX];
	struct who w;
	uint32_t h;
	unsigned i;
	int mode;

	if (rcpt_domain(line, len, domain, sizeof(domain)) < 0)
		return;
	h = str_hash(domain);
	for (i = 0; i < s->n_domains; i++)
		if (s->domains[i] == h)
			return;
	if (s->n_domains < DOMAINS)
		s->domains[s->n_domains++] = h;
	mode = d->p.policy ? d->p.policy(d->p.arg, domain) : -1;
	if (mode == STS_MODE_NONE)
		return;
	printable(line, len, detail, sizeof(detail));
	if (mode < 0) {
		wait_for(d, f, s, domain, detail);
		return;
	}
	w = who_flow(f);
	if (judge(d, &w, domain, mode, detail, s->no_starttls, -1))
		block_now(d, f, s);
}

/*
 * on_mail - keep the reverse-path of a cleartext MAIL FROM for the events,
 * as sent (cut to fit); report() makes it printable.
 */
static void
on_mail(struct dflow *s, const char *line, size_t len)
{
	const char *lt = memchr(line, '<', len), *gt, *arg = memchr(line, ':', len), *from = "";
	size_t n = 0;

	if (lt != NULL && (gt = memchr(lt, '>', len - (size_t)(lt - line))) != NULL) {
		from = lt;
		n = (size_t)(gt - lt) + 1;
	} else if (arg != NULL) {
		from = arg + 1;
		n = len - (size_t)(arg + 1 - line);
	}
	if (n >= sizeof(s->mail_from))
		n = sizeof(s->mail_from) - 1;
	memcpy(s->mail_from, from, n);
	s->mail_from[n] = '\0';
}

static void
client_line(struct detect *d, struct flow *f, struct dflow *s, const char *line, size_t len)
{
	enum cmd c = CMD_OTHER;

	if (verb_is(line, len, "EHLO"))
		c = CMD_EHLO;
	else if (verb_is(line, len, "HELO"))
		c = CMD_HELO;
	else if (verb_is(line, len, "STARTTLS"))
		c = CMD_STARTTLS;
	else if (verb_is(line, len, "MAIL"))
		c = CMD_MAIL;
	else if (verb_is(line, len, "RCPT"))
		c = CMD_RCPT;
	else if (verb_is(line, len, "DATA"))
		c = CMD_DATA;
	else if (verb_is(line, len, "BDAT"))
		c = CMD_BDAT;
	push_cmd(s, c);
	if (c == CMD_MAIL)
		on_mail(s, line, len);
	else if (c == CMD_RCPT)
		on_rcpt(d, f, s, line, len);
	else if (c == CMD_BDAT && !s->blocked)
		release(d, f); /* binary chunks follow: the envelope is done */
}

static void
capability(struct dflow *s, const char *text, size_t len)
{
	size_t kw = 0;

	while (kw < len && text[kw] != ' ' && text[kw] != '\t')
		kw++;
	if (kw == 8 && strncasecmp(text, "STARTTLS", 8) == 0) {
		s->cap_starttls = true;
	} else if (detect_starttls_mangled(text, kw) && !s->cap_mangled) {
		s->cap_mangled = true;
		printable(text, kw, s->mangled, sizeof(s->mangled));
	}
}

/*
 * downgrade - the server's reply leaves the session in cleartext (STARTTLS
 * missing, rewritten, or refused): reported. RFC 3207 section 6: when the
 * server offered STARTTLS before (here or at another gateway), the reply
 * is taken as changed on the way, and in block mode it is dropped and the
 * flow reset both ways before any of the envelope leaves in the clear:
 * this is what protects a server whose domain publishes no policy. A
 * server never seen offering it may really lack it: only reported.
 */
static void
downgrade(struct detect *d, struct flow *f, struct dflow *s, enum detect_kind kind,
          const char *reason, const char *detail)
{
	const struct flow_key *k = flow_key_of(f);
	bool block = d->p.action == CONF_NFQ_BLOCK && srvmem_has(d->servers, k->family, k->server);

	report_flow(d, f, kind, reason, detail, block ? "block" : "log");
	if (block)
		block_now(d, f, s);
}

static void
ehlo_done(struct detect *d, struct flow *f, struct dflow *s, bool ok)
{
	const struct flow_key *k = flow_key_of(f);

	if (!ok)
		return;
	if (s->cap_starttls) {
		bool known = srvmem_has(d->servers, k->family, k->server);

		s->no_starttls = false;
		srvmem_add(d->servers, k->family, k->server, d->wall);
		if (!known && d->p.on_server != NULL)
			d->p.on_server(d->p.arg, k->family, k->server, d->wall);
		return;
	}
	s->no_starttls = true;
	if (s->cap_mangled) {
		s->stripped_reported = true;
		downgrade(d, f, s, DETECT_MANGLED, "keyword_rewritten", s->mangled);
	} else if (srvmem_has(d->servers, k->family, k->server)) {
		s->stripped_reported = true;
		downgrade(d, f, s, DETECT_STRIPPED, "offered_before", NULL);
	}
}

static void
server_line(struct detect *d, struct flow *f, struct dflow *s, const char *line, size_t len)
{
	char detail[DETAIL_MAX];
	bool last, ok;
	int code;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9')
		return; /* not a reply line: nothing to learn from it */
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	last = len == 3 || line[3] != '-';
	if (!s->in_reply) {
		s->in_reply = true;
		s->reply_lines = 0;
		s->reply_cmd = s->greeted ? (uint8_t)pop_cmd(s) : CMD_OTHER;
		s->cap_starttls = s->cap_mangled = false;
	}
	s->reply_lines++;
	if (s->reply_cmd == CMD_EHLO && s->reply_lines > 1 && len > 4)
		capability(s, line + 4, len - 4);
	if (!last)
		return;
	s->in_reply = false;
	if (!s->greeted) {
		s->greeted = true;
		return;
	}
	ok = code / 100 == 2;
	switch (s->reply_cmd) {
	case CMD_EHLO:
		ehlo_done(d, f, s, ok);
		break;
	case CMD_STARTTLS:
		if (code == 220) {
			s->await_tls = true;
		} else {
			/* RFC 3207 section 4: anything but 220 leaves the session in
			 * cleartext - a downgrade when an attacker answers for the server. */
			printable(line, len, detail, sizeof(detail));
			downgrade(d, f, s, DETECT_REFUSED, "not_220", detail);
		}
		break;
	case CMD_DATA:
		if (code == 354)
			release(d, f);
		break;
	default:
		break;
	}
}

static int
on_data(void *arg, struct flow *f, enum flow_dir dir, const uint8_t *p, size_t n)
{
	struct detect *d = arg;
	struct dflow *s = flow_user(f);

	if (!s->await_tls || dir != FLOW_C2S)
		return 0;
	s->await_tls = false;
	/* A TLS handshake record (RFC 8446 section 5.1: type 22, version 3.x). */
	if (p[0] == 0x16 && (n == 1 || p[1] == 0x03)) {
		release(d, f);
		return 1;
	}
	return 0;
}

static void
on_line(void *arg, struct flow *f, enum flow_dir dir, const char *line, size_t len, bool truncated)
{
	struct detect *d = arg;
	struct dflow *s = flow_user(f);

	(void)truncated;
	if (dir == FLOW_C2S)
		client_line(d, f, s, line, len);
	else
		server_line(d, f, s, line, len);
}

/*
 * on_end - f ends: a held packet is dropped with a closed connection, and
 * takes hold_action otherwise (the connection may live on); a record
 * without a packet forgets the flow and still reports the answer.
 */
static void
on_end(void *arg, struct flow *f, enum flow_end why)
{
	struct detect *d = arg;
	struct dflow *s = flow_user(f);
	struct hold *h = s->hold;

	if (h == NULL)
		return;
	if (!h->has_packet) {
		h->flow = NULL;
		s->hold = NULL;
	} else if (why == FLOW_END_CLOSED) {
		finish(d, h, true, false);
	} else {
		give_up(d, h, why == FLOW_END_FREED ? "stopping" : "flow_ended", true);
	}
}

/* detect_new - a detector or NULL with err. */
struct detect *
detect_new(const struct detect_params *p, char *err, size_t errlen)
{
	struct flow_params fp = {0};
	struct detect *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "nfq: out of memory");
		return NULL;
	}
	d->p = *p;
	d->p.state_dir = NULL; /* not kept: the caller's string */
	if (d->p.hold_ms == 0)
		d->p.hold_ms = DETECT_HOLD_MS;
	if ((d->servers = srvmem_open(p->state_dir, p->max_servers, err, errlen)) == NULL)
		goto fail;
	fp.max_flows = p->max_flows;
	fp.max_memory = p->max_memory;
	fp.idle_ms = p->idle_ms;
	fp.user_size = sizeof(struct dflow);
	fp.ops.data = on_data;
	fp.ops.line = on_line;
	fp.ops.end = on_end;
	fp.arg = d;
	if ((d->holds = hold_table_new(p->hold_max)) == NULL ||
	    (d->flows = flow_table_new(&fp)) == NULL) {
		snprintf(err, errlen, "nfq: out of memory");
		goto fail;
	}
	return d;
fail:
	detect_free(d);
	return NULL;
}

void
detect_server_learned(struct detect *d, int family, const uint8_t *addr, int64_t seen)
{
	(void)srvmem_add(d->servers, family, addr, seen);
}

/* detect_free - held packets take hold_action; save, end flows, free; NULL is a no-op. */
void
detect_free(struct detect *d)
{
	struct hold *h;

	if (d == NULL)
		return;
	flow_table_free(d->flows); /* every held packet gets its verdict */
	while (d->holds != NULL && (h = hold_first(d->holds)) != NULL)
		give_up(d, h, "stopping", false);
	hold_table_free(d->holds);
	if (d->servers)
		srvmem_save(d->servers);
	srvmem_free(d->servers);
	free(d);
}

/* detect_packet - the verdict for one segment. */
struct detect_result
detect_packet(struct detect *d, const struct nfq_pkt *p, uint64_t now_ms, uint64_t cookie)
{
	struct flow *f;
	struct dflow *s;
	struct hold *h;

	d->stats.packets++;
	d->pkt_no++;
	d->cookie = cookie;
	d->pkt = p;
	d->now = now_ms;
	d->cur = (struct detect_result){DETECT_ACCEPT, false};
	d->wall = sts_now_wall();
	f = flow_table_input(d->flows, p, now_ms);
	if (f != NULL) {
		s = flow_user(f);
		h = s->hold;
		if (h != NULL && h->has_packet && h->pkt_no != d->pkt_no) {
			/* The flow's verdict waits: nothing after it passes; TCP
			 * sends this segment again once the flow goes on. */
			d->cur.verdict = DETECT_DROP;
		} else if (h != NULL && h->has_packet) {
			if (d->cur.verdict == DETECT_DROP) {
				/* A later line of the same packet decided: nothing waits. */
				s->hold = NULL;
				flow_pause(f, false);
				hold_free(d->holds, h);
			} else {
				d->cur.verdict = DETECT_HOLD;
				d->stats.holds++;
			}
		} else if (s->blocked && !d->cur.reset) {
			d->cur.verdict = DETECT_DROP;
		}
	}
	if (d->cur.verdict == DETECT_DROP)
		d->stats.drops++;
	else if (d->cur.verdict == DETECT_RELEASE)
		d->stats.releases++;
	else if (d->cur.verdict == DETECT_ACCEPT)
		d->stats.accepts++;
	d->pkt = NULL;
	return d->cur;
}

/* detect_answer - judge everything that waited for domain. */
void
detect_answer(struct detect *d, const char *domain, int mode, uint64_t now_ms)
{
	struct hold *h, *next;
	struct who w;
	int64_t held;
	int i;

	d->now = now_ms;
	for (h = hold_first(d->holds); h != NULL; h = next) {
		next = hold_next(h);
		if ((i = hold_find(h, domain)) < 0)
			continue;
		h->dom[i].answered = true;
		h->n_waiting--;
		held = h->has_packet ? (int64_t)(now_ms - h->since) : -1;
		if (mode < 0) {
			if (unknown(d, h, (size_t)i, "tempfail", held)) {
				finish(d, h, true, h->flow != NULL);
				continue;
			}
		} else {
			w = who_hold(h);
			if (judge(d, &w, h->dom[i].name, mode, h->dom[i].line,
			          h->dom[i].no_starttls, held)) {
				finish(d, h, true, true);
				continue;
			}
		}
		if (h->n_waiting == 0)
			finish(d, h, false, false);
	}
}

/* detect_expire_holds - end the waits past their deadline. */
size_t
detect_expire_holds(struct detect *d, uint64_t now_ms)
{
	struct hold *h;
	size_t n = 0;

	d->now = now_ms;
	while ((h = hold_first(d->holds)) != NULL && h->deadline <= now_ms) {
		d->stats.hold_timeouts++;
		give_up(d, h, "timeout", true);
		n++;
	}
	return n;
}

/* detect_next_deadline - the next deadline or 0. */
uint64_t
detect_next_deadline(const struct detect *d)
{
	const struct hold *h = hold_first(d->holds);

	return h != NULL ? h->deadline : 0;
}

/* detect_holds - waits now. */
size_t
detect_holds(const struct detect *d)
{
	return hold_count(d->holds);
}

/* detect_expire - end idle flows. */
size_t
detect_expire(struct detect *d, uint64_t now_ms)
{
	d->now = now_ms;
	return flow_table_expire(d->flows, now_ms);
}

/* detect_save - persist the server memory. */
int
detect_save(struct detect *d)
{
	return srvmem_save(d->servers);
}

/* detect_get_stats - counters. */
void
detect_get_stats(const struct detect *d, struct detect_stats *out)
{
	*out = d->stats;
}

/* detect_flows - live flows. */
size_t
detect_flows(const struct detect *d)
{
	return flow_table_count(d->flows);
}

/* detect_memory - held bytes. */
size_t
detect_memory(const struct detect *d)
{
	return flow_table_memory(d->flows);
}
