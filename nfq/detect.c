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
#include "nfq/srvmem.h"

#define CMD_FIFO   32 /* pipelined commands tracked; more are not matched */
#define DOMAINS    8  /* recipient domains remembered per flow */
#define DETAIL_MAX 80

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
	uint32_t domains[DOMAINS]; /* hashes of the recipient domains already handled */
};

struct detect {
	struct detect_params p;
	struct flow_table *flows;
	struct srvmem *servers;
	struct detect_stats stats;
	struct detect_result cur; /* verdict of the packet being inspected */
	int64_t wall;             /* for the server memory */
};

static const char *const kind_names[] = {
    [DETECT_STRIPPED] = "starttls_stripped",
    [DETECT_MANGLED] = "starttls_mangled",
    [DETECT_REFUSED] = "starttls_refused",
    [DETECT_CLEARTEXT_RCPT] = "cleartext_rcpt",
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

static void
report(struct detect *d, struct flow *f, enum detect_kind kind, const char *domain,
       enum sts_mode mode, const char *reason, const char *detail, bool blocked)
{
	const struct flow_key *k = flow_key_of(f);
	struct detect_event ev;
	char client[80], server[80];
	json_t *o;

	endpoint(k->family, k->client, k->cport, client, sizeof(client));
	endpoint(k->family, k->server, k->sport, server, sizeof(server));
	d->stats.events++;
	log_warn("nfq: event=%s flow=%llu client=\"%s\" server=\"%s\" domain=%s mode=%s "
	         "reason=%s action=%s detail=\"%s\"",
	         detect_kind_name(kind), (unsigned long long)flow_id(f), client, server,
	         domain ? domain : "-", sts_mode_name(mode), reason, blocked ? "block" : "log",
	         detail ? detail : "");
	o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "event", detect_kind_name(kind),
	              "source", "nfq", "flow", (json_int_t)flow_id(f), "client", client, "server",
	              server, "reason", reason, "result", "starttls-not-supported", "action",
	              blocked ? "block" : "log");
	if (o != NULL) {
		if (domain) {
			json_object_set_new(o, "domain", json_string(domain));
			json_object_set_new(o, "mode", json_string(sts_mode_name(mode)));
		}
		if (detail)
			json_object_set_new(o, "detail", evlog_str(detail, strlen(detail)));
		evlog_write(o);
		json_decref(o);
	}
	if (d->p.on_event) {
		ev = (struct detect_event){kind, flow_id(f), client, server, domain,
		                           mode, reason,     detail, blocked};
		d->p.on_event(d->p.arg, &ev);
	}
}

static void
release(struct detect *d, struct flow *f)
{
	if (d->cur.verdict != DETECT_DROP)
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

static void
on_rcpt(struct detect *d, struct flow *f, struct dflow *s, const char *line, size_t len)
{
	char domain[STS_HOSTNAME_MAX + 1], detail[DETAIL_MAX];
	uint32_t h;
	unsigned i;
	int mode;
	bool block;

	if (rcpt_domain(line, len, domain, sizeof(domain)) < 0)
		return;
	h = str_hash(domain);
	for (i = 0; i < s->n_domains; i++)
		if (s->domains[i] == h)
			return;
	if (s->n_domains < DOMAINS)
		s->domains[s->n_domains++] = h;
	mode = d->p.policy ? d->p.policy(d->p.arg, domain) : -1;
	if (mode < 0) {
		/* Unknown now: look it up so the next connection is judged. */
		if (d->p.lookup)
			d->p.lookup(d->p.arg, domain);
		return;
	}
	if (mode != STS_MODE_TESTING && mode != STS_MODE_ENFORCE)
		return;
	/* RFC 8461 section 5: an enforce policy forbids delivery without TLS;
	 * in block mode the RCPT never reaches the server. */
	block = mode == STS_MODE_ENFORCE && d->p.action == CONF_NFQ_BLOCK;
	if (s->no_starttls && !s->stripped_reported) {
		s->stripped_reported = true;
		report(d, f, DETECT_STRIPPED, domain, (enum sts_mode)mode, "policy", NULL, block);
	}
	printable(line, len, detail, sizeof(detail));
	report(d, f, DETECT_CLEARTEXT_RCPT, domain, (enum sts_mode)mode,
	       s->no_starttls ? "no_starttls" : "starttls_not_used", detail, block);
	if (block) {
		s->blocked = true;
		d->cur.verdict = DETECT_DROP;
		d->cur.reset = true;
		flow_ignore(f);
	}
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
	if (c == CMD_RCPT)
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

static void
ehlo_done(struct detect *d, struct flow *f, struct dflow *s, bool ok)
{
	const struct flow_key *k = flow_key_of(f);

	if (!ok)
		return;
	if (s->cap_starttls) {
		s->no_starttls = false;
		srvmem_add(d->servers, k->family, k->server, d->wall);
		return;
	}
	s->no_starttls = true;
	if (s->cap_mangled) {
		s->stripped_reported = true;
		report(d, f, DETECT_MANGLED, NULL, STS_MODE_NONE, "keyword_rewritten", s->mangled,
		       false);
	} else if (srvmem_has(d->servers, k->family, k->server)) {
		s->stripped_reported = true;
		report(d, f, DETECT_STRIPPED, NULL, STS_MODE_NONE, "offered_before", NULL, false);
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
			report(d, f, DETECT_REFUSED, NULL, STS_MODE_NONE, "not_220", detail, false);
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
	if ((d->servers = srvmem_open(p->state_dir, p->max_servers, err, errlen)) == NULL)
		goto fail;
	fp.max_flows = p->max_flows;
	fp.max_memory = p->max_memory;
	fp.idle_ms = p->idle_ms;
	fp.user_size = sizeof(struct dflow);
	fp.ops.data = on_data;
	fp.ops.line = on_line;
	fp.arg = d;
	if ((d->flows = flow_table_new(&fp)) == NULL) {
		snprintf(err, errlen, "nfq: out of memory");
		goto fail;
	}
	return d;
fail:
	detect_free(d);
	return NULL;
}

/* detect_free - save, end flows, free; NULL is a no-op. */
void
detect_free(struct detect *d)
{
	if (d == NULL)
		return;
	flow_table_free(d->flows);
	if (d->servers)
		srvmem_save(d->servers);
	srvmem_free(d->servers);
	free(d);
}

/* detect_packet - the verdict for one segment. */
struct detect_result
detect_packet(struct detect *d, const struct nfq_pkt *p, uint64_t now_ms)
{
	struct flow *f;
	struct dflow *s;
	bool was_blocked = false;

	d->stats.packets++;
	d->cur = (struct detect_result){DETECT_ACCEPT, false};
	d->wall = sts_now_wall();
	f = flow_table_input(d->flows, p, now_ms);
	if (f != NULL) {
		s = flow_user(f);
		was_blocked = s->blocked && !d->cur.reset;
		if (was_blocked)
			d->cur.verdict = DETECT_DROP;
	}
	if (d->cur.verdict == DETECT_DROP)
		d->stats.drops++;
	else if (d->cur.verdict == DETECT_RELEASE)
		d->stats.releases++;
	return d->cur;
}

/* detect_expire - end idle flows. */
size_t
detect_expire(struct detect *d, uint64_t now_ms)
{
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
