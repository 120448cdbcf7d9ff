// sources: nfq/detect.c nfq/hold.c nfq/flow.c nfq/srvmem.c nfq/packet.c core/evlog.c core/log.c core/util.c core/types.c
/*
 * test_detect.c - STARTTLS downgrade detection on scripted SMTP dialogues:
 * each detection (stripped, mangled, refused, cleartext RCPT), each
 * verdict (accept, release on TLS and on DATA, drop and reset in block
 * mode), the server memory and its file, the event log lines, segmentation
 * at every byte, IPv4 and IPv6, and memory bounds and expiry; packets held
 * for a policy lookup: judged on the answer, on a temporary failure, at
 * the deadline, when the flow ends, and the bounds on what waits.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/evlog.h"
#include "core/log.h"
#include "nfq/detect.h"

struct seen {
	unsigned n[5];
	char domain[64];
	char reason[32];
	char detail[96];
	char action[8];
	char client[80];
	char server[80];
	char mail_from[96];
	int64_t held_ms;
	bool blocked;
	unsigned lookups;
	char looked_up[64];
};

static struct seen seen;

/* The verdicts given later, through on_verdict. */
struct later {
	unsigned n;
	uint64_t cookie;
	struct detect_result r;
	struct nfq_pkt p;
};

static struct later later;
static uint64_t now_ms;  /* the time of the packets sent */
static uint64_t cookies; /* the handle of the last packet sent */

static int
policy(void *arg, const char *domain)
{
	(void)arg;
	if (strcmp(domain, "enforce.example") == 0)
		return STS_MODE_ENFORCE;
	if (strcmp(domain, "testing.example") == 0)
		return STS_MODE_TESTING;
	if (strcmp(domain, "none.example") == 0)
		return STS_MODE_NONE;
	return -1;
}

static int
lookup(void *arg, const char *domain)
{
	(void)arg;
	seen.lookups++;
	snprintf(seen.looked_up, sizeof(seen.looked_up), "%s", domain);
	return strcmp(domain, "unstartable.example") == 0 ? -1 : 0;
}

static void
on_event(void *arg, const struct detect_event *ev)
{
	(void)arg;
	seen.n[ev->kind]++;
	snprintf(seen.domain, sizeof(seen.domain), "%s", ev->domain ? ev->domain : "");
	snprintf(seen.reason, sizeof(seen.reason), "%s", ev->reason);
	snprintf(seen.detail, sizeof(seen.detail), "%s", ev->detail ? ev->detail : "");
	snprintf(seen.action, sizeof(seen.action), "%s", ev->action);
	snprintf(seen.client, sizeof(seen.client), "%s", ev->client);
	snprintf(seen.server, sizeof(seen.server), "%s", ev->server);
	snprintf(seen.mail_from, sizeof(seen.mail_from), "%s", ev->mail_from ? ev->mail_from : "");
	seen.held_ms = ev->held_ms;
	seen.blocked = ev->blocked;
}

static void
on_verdict(void *arg, uint64_t cookie, const struct nfq_pkt *p, struct detect_result r)
{
	(void)arg;
	later.n++;
	later.cookie = cookie;
	later.r = r;
	later.p = *p;
}

/* detector - a detector with p's settings and this file's callbacks; the observations reset. */
static struct detect *
detector(struct detect_params *p)
{
	char err[256];
	struct detect *d;

	memset(&seen, 0, sizeof(seen));
	memset(&later, 0, sizeof(later));
	now_ms = 0;
	p->policy = policy;
	p->lookup = lookup;
	p->on_event = on_event;
	p->on_verdict = on_verdict;
	if ((d = detect_new(p, err, sizeof(err))) == NULL)
		fail_msg("detect_new: %s", err);
	return d;
}

/* A detector holding up to hold_max verdicts for 3 s (0: nothing waits). */
static struct detect *
new_hold(enum conf_nfq_action action, enum conf_nfq_hold_action on_timeout, size_t hold_max,
         size_t max_flows)
{
	struct detect_params p = {.action = action,
	                          .idle_ms = 1000000,
	                          .max_flows = max_flows,
	                          .hold_max = hold_max,
	                          .hold_ms = 3000,
	                          .hold_action = on_timeout};

	return detector(&p);
}

/* A detector that never holds, its server memory in dir (NULL: none). */
static struct detect *
new_detect(enum conf_nfq_action action, const char *dir)
{
	struct detect_params p = {.action = action, .state_dir = dir, .idle_ms = 1000};

	return detector(&p);
}

/* One end of a scripted connection: sequence numbers per side. */
struct conn {
	bool v6;
	uint16_t cport;
	uint32_t seq[2];
};

static struct nfq_pkt
mk(const struct conn *c, bool c2s, const void *data, size_t len, uint8_t flags)
{
	struct nfq_pkt p;
	uint8_t client[16] = {0}, server[16] = {0};

	memset(&p, 0, sizeof(p));
	p.family = c->v6 ? AF_INET6 : AF_INET;
	inet_pton(p.family, c->v6 ? "2001:db8::10" : "198.51.100.10", client);
	inet_pton(p.family, c->v6 ? "2001:db8::25" : "198.51.100.25", server);
	memcpy(c2s ? p.src : p.dst, client, 16);
	memcpy(c2s ? p.dst : p.src, server, 16);
	p.sport = c2s ? c->cport : 25;
	p.dport = c2s ? 25 : c->cport;
	p.seq = c->seq[c2s ? 0 : 1];
	p.ack = c->seq[c2s ? 1 : 0];
	p.flags = flags | NFQ_TCP_ACK;
	p.payload = len ? data : NULL;
	p.len = len;
	return p;
}

/* Send text from one side in segments of seglen bytes; the verdict of the last one. */
static struct detect_result
say(struct detect *d, struct conn *c, bool c2s, const char *text, size_t seglen)
{
	struct detect_result r = {DETECT_ACCEPT, false};
	size_t n = strlen(text), off, len;
	struct nfq_pkt p;

	for (off = 0; off < n; off += len) {
		len = n - off < seglen ? n - off : seglen;
		p = mk(c, c2s, text + off, len, 0);
		r = detect_packet(d, &p, now_ms, ++cookies);
		c->seq[c2s ? 0 : 1] += (uint32_t)len;
	}
	return r;
}

#define C(t)              say(d, &c, true, (t), 1 << 20)
#define C2(t)             say(d, &c2, true, (t), 1 << 20)
#define S(t)              say(d, &c, false, (t), 1 << 20)
#define EHLO_TLS          "250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
#define EHLO_NONE         "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
#define HOLD_DOMAINS_TEST 8 /* HOLD_DOMAINS of nfq/hold.h */

static void
rfc3207_mangled_keyword_table(void **state)
{
	static const struct {
		const char *kw;
		bool mangled;
	} cases[] = {
	    {"XXXXXXXA", true},  {"XXXXXXXX", true},  {"xxxxxxxa", true},   {"STARTTLX", true},
	    {"S*A*T*L*", true},  {"STARTTLS", false}, {"CHUNKING", false},  {"SMTPUTF8", false},
	    {"8BITMIME", false}, {"XXXXXXX", false},  {"XXXXXXXXX", false}, {"PIPELINING", false},
	    {"AUTH", false},     {"ABCDEFGH", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (detect_starttls_mangled(cases[i].kw, strlen(cases[i].kw)) != cases[i].mangled)
			fail_msg("%s: expected %d", cases[i].kw, cases[i].mangled);
	assert_string_equal(detect_kind_name(DETECT_MANGLED), "starttls_mangled");
	assert_string_equal(detect_kind_name(DETECT_CLEARTEXT_RCPT), "cleartext_rcpt");
}

static void
rfc3207_mangled_reported(void **state)
{
	struct detect *d = new_detect(CONF_NFQ_LOG, NULL);
	struct conn c = {false, 40001, {1000, 9000}};

	(void)state;
	S("220 mx.example ESMTP\r\n");
	C("EHLO client.example\r\n");
	S("250-mx.example\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n");
	assert_int_equal(seen.n[DETECT_MANGLED], 1);
	assert_string_equal(seen.detail, "XXXXXXXA");
	assert_int_equal(seen.n[DETECT_STRIPPED], 0);
	detect_free(d);
}

static void
rfc3207_stripped_after_offered_before(void **state)
{
	char dir[] = "/tmp/sts-detect-XXXXXX", path[128];
	struct detect *d;
	struct conn c = {false, 40002, {1, 1}};
	int v6;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (v6 = 0; v6 < 2; v6++) {
		d = new_detect(CONF_NFQ_LOG, dir);
		c = (struct conn){v6, 40002, {1, 1}};
		S("220 mx\r\n");
		C("EHLO a\r\n");
		S(EHLO_TLS);
		assert_int_equal(seen.n[DETECT_STRIPPED], 0);
		/* A later connection without STARTTLS from the same server. */
		c = (struct conn){v6, 40003, {1, 1}};
		S("220 mx\r\n");
		C("EHLO a\r\n");
		S(EHLO_NONE);
		assert_int_equal(seen.n[DETECT_STRIPPED], 1);
		assert_string_equal(seen.reason, "offered_before");
		detect_free(d); /* saves the memory */
	}
	/* The memory survives a restart. */
	d = new_detect(CONF_NFQ_LOG, dir);
	c = (struct conn){true, 40004, {1, 1}};
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S(EHLO_NONE);
	assert_int_equal(seen.n[DETECT_STRIPPED], 1);
	detect_free(d);
	snprintf(path, sizeof(path), "%s/nfq-servers", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * In block mode a server another gateway saw offering STARTTLS
 * (detect_server_learned, as the shared memory feeds it) is protected
 * without any policy: its EHLO reply without STARTTLS is dropped and the
 * flow reset both ways, and nothing later of the flow passes. A server
 * nobody saw is let through, and log mode only reports.
 */
static void
rfc3207_6_stripped_offered_elsewhere_block(void **state)
{
	static const struct {
		const char *name;
		enum conf_nfq_action action;
		bool learned;
		bool v6;
		enum detect_verdict ehlo, mail;
		bool reset;
		const char *event_action; /* NULL: no event */
	} cases[] = {
	    {"block, learned", CONF_NFQ_BLOCK, true, false, DETECT_DROP, DETECT_DROP, true,
	     "block"},
	    {"block, learned, IPv6", CONF_NFQ_BLOCK, true, true, DETECT_DROP, DETECT_DROP, true,
	     "block"},
	    {"block, never seen", CONF_NFQ_BLOCK, false, false, DETECT_ACCEPT, DETECT_ACCEPT, false,
	     NULL},
	    {"log, learned", CONF_NFQ_LOG, true, false, DETECT_ACCEPT, DETECT_ACCEPT, false, "log"},
	};
	uint8_t server[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct detect *d = new_detect(cases[i].action, NULL);
		struct conn c = {cases[i].v6, 40010, {1, 1}};
		struct detect_result r;
		int fam = cases[i].v6 ? AF_INET6 : AF_INET;

		inet_pton(fam, cases[i].v6 ? "2001:db8::25" : "198.51.100.25", server);
		if (cases[i].learned)
			detect_server_learned(d, fam, server, 1700000000);
		S("220 mx\r\n");
		C("EHLO a\r\n");
		r = S(EHLO_NONE);
		if (r.verdict != cases[i].ehlo || r.reset != cases[i].reset)
			fail_msg("%s: EHLO reply verdict %d reset %d", cases[i].name, r.verdict,
			         r.reset);
		r = C("MAIL FROM:<a@corp.example>\r\n");
		if (r.verdict != cases[i].mail || r.reset)
			fail_msg("%s: MAIL verdict %d reset %d", cases[i].name, r.verdict, r.reset);
		if (cases[i].event_action == NULL) {
			assert_int_equal(seen.n[DETECT_STRIPPED], 0);
		} else {
			assert_int_equal(seen.n[DETECT_STRIPPED], 1);
			assert_string_equal(seen.reason, "offered_before");
			assert_string_equal(seen.action, cases[i].event_action);
			assert_int_equal(seen.blocked, cases[i].action == CONF_NFQ_BLOCK);
			assert_string_equal(seen.server,
			                    cases[i].v6 ? "2001:db8::25 25" : "198.51.100.25 25");
		}
		detect_free(d);
	}
}

/*
 * The other ways a reply leaves the session in cleartext, to a server seen
 * offering STARTTLS before: its keyword rewritten (XXXXXXXA), or STARTTLS
 * answered with 454 (the server offered it in this very reply, so it is
 * remembered by then). In block mode the reply is dropped and the flow
 * reset both ways; to a server never seen (the rewritten keyword) and in
 * log mode, reported only.
 */
static void
rfc3207_6_mangled_or_refused_offered_before_block(void **state)
{
	static const struct {
		const char *name;
		enum conf_nfq_action action;
		bool learned, refuse;
		enum detect_verdict verdict;
		enum detect_kind kind;
		const char *event_action;
	} cases[] = {
	    {"rewritten, block, learned", CONF_NFQ_BLOCK, true, false, DETECT_DROP, DETECT_MANGLED,
	     "block"},
	    {"rewritten, block, never seen", CONF_NFQ_BLOCK, false, false, DETECT_ACCEPT,
	     DETECT_MANGLED, "log"},
	    {"rewritten, log, learned", CONF_NFQ_LOG, true, false, DETECT_ACCEPT, DETECT_MANGLED,
	     "log"},
	    {"454, block", CONF_NFQ_BLOCK, false, true, DETECT_DROP, DETECT_REFUSED, "block"},
	    {"454, log", CONF_NFQ_LOG, false, true, DETECT_ACCEPT, DETECT_REFUSED, "log"},
	};
	uint8_t server[4];

	(void)state;
	inet_pton(AF_INET, "198.51.100.25", server);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct detect *d = new_detect(cases[i].action, NULL);
		struct conn c = {false, 40020, {1, 1}};
		struct detect_result r;
		bool block = cases[i].verdict == DETECT_DROP;

		if (cases[i].learned)
			detect_server_learned(d, AF_INET, server, 1700000000);
		S("220 mx\r\n");
		C("EHLO a\r\n");
		if (cases[i].refuse) {
			S(EHLO_TLS);
			C("STARTTLS\r\n");
			r = S("454 4.7.0 TLS not available\r\n");
		} else {
			r = S("250-mx.example\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n");
		}
		if (r.verdict != cases[i].verdict || r.reset != block)
			fail_msg("%s: reply verdict %d reset %d", cases[i].name, r.verdict,
			         r.reset);
		r = C("MAIL FROM:<a@corp.example>\r\n");
		if (r.verdict != cases[i].verdict || r.reset)
			fail_msg("%s: MAIL verdict %d reset %d", cases[i].name, r.verdict, r.reset);
		assert_int_equal(seen.n[cases[i].kind], 1);
		assert_string_equal(seen.action, cases[i].event_action);
		assert_int_equal(seen.blocked, block);
		detect_free(d);
	}
}

static void
rfc3207_4_non_220_to_starttls(void **state)
{
	struct detect *d = new_detect(CONF_NFQ_LOG, NULL);
	struct conn c = {false, 40005, {1, 1}};
	struct detect_result r;

	(void)state;
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S(EHLO_TLS);
	C("STARTTLS\r\n");
	r = S("454 4.7.0 TLS not available\r\n");
	assert_int_equal(r.verdict, DETECT_ACCEPT);
	assert_int_equal(seen.n[DETECT_REFUSED], 1);
	assert_string_equal(seen.detail, "454 4.7.0 TLS not available");
	detect_free(d);
}

static void
rfc8446_5_1_release_on_client_hello(void **state)
{
	struct detect *d = new_detect(CONF_NFQ_BLOCK, NULL);
	struct conn c = {true, 40006, {1, 1}};
	struct detect_result r;
	struct detect_stats st;

	(void)state;
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S(EHLO_TLS);
	C("STARTTLS\r\n");
	r = S("220 2.0.0 go ahead\r\n");
	assert_int_equal(r.verdict, DETECT_ACCEPT);
	r = C("\x16\x03\x01\x02\x00\x01");
	assert_int_equal(r.verdict, DETECT_RELEASE);
	/* Encrypted records afterwards: nothing to detect, still released. */
	r = C("RCPT TO:<x@enforce.example>\r\n");
	assert_int_equal(r.verdict, DETECT_ACCEPT);
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 0);
	detect_get_stats(d, &st);
	assert_int_equal(st.releases, 1);
	assert_int_equal(st.events, 0);
	detect_free(d);
}

static void
rfc8461_5_cleartext_rcpt_enforce_block(void **state)
{
	static const char *const script =
	    "MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@Enforce.Example>\r\nDATA\r\n";
	size_t seglen;
	int v6;

	(void)state;
	for (v6 = 0; v6 < 2; v6++) {
		for (seglen = 1; seglen <= 80; seglen += (seglen < 8 ? 1 : 24)) {
			struct detect *d = new_detect(CONF_NFQ_BLOCK, NULL);
			struct conn c = {v6, 40007, {1, 1}};
			size_t n = strlen(script), off, len, drops = 0, resets = 0;
			size_t rcpt_end = strstr(script, "DATA") - script;
			struct detect_result r;
			struct nfq_pkt p;

			S("220 mx\r\n");
			C("EHLO a\r\n");
			S(EHLO_NONE); /* stripped by an attacker: no STARTTLS */
			for (off = 0; off < n; off += len) {
				len = n - off < seglen ? n - off : seglen;
				p = mk(&c, true, script + off, len, 0);
				r = detect_packet(d, &p, 0, 0);
				c.seq[0] += (uint32_t)len;
				if (r.verdict == DETECT_DROP) {
					drops++;
					resets += r.reset;
					/* The first drop is the packet completing the RCPT line. */
					if (drops == 1 && (off >= rcpt_end || off + len < rcpt_end))
						fail_msg("seglen %zu: drop at %zu+%zu", seglen, off,
						         len);
				}
			}
			assert_int_equal(resets, 1);
			assert_true(drops >= 1);
			assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 1);
			assert_int_equal(seen.n[DETECT_STRIPPED], 1);
			assert_string_equal(seen.domain, "enforce.example");
			assert_true(seen.blocked);
			/* Every later packet of the flow, both ways, is dropped. */
			r = S("250 ok\r\n");
			assert_int_equal(r.verdict, DETECT_DROP);
			assert_false(r.reset);
			detect_free(d);
		}
	}
}

static void
rfc8461_5_log_mode_and_testing(void **state)
{
	struct detect *d = new_detect(CONF_NFQ_LOG, NULL);
	struct conn c = {false, 40008, {1, 1}};
	struct detect_result r;

	(void)state;
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S(EHLO_TLS);
	C("MAIL FROM:<a@a.example>\r\n");
	r = C("RCPT TO:<b@enforce.example>\r\n");
	assert_int_equal(r.verdict, DETECT_ACCEPT);
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 1);
	assert_string_equal(seen.reason, "starttls_not_used");
	assert_false(seen.blocked);
	assert_int_equal(seen.n[DETECT_STRIPPED], 0);
	detect_free(d);

	/* Block mode, testing policy: reported, never blocked. */
	d = new_detect(CONF_NFQ_BLOCK, NULL);
	c = (struct conn){false, 40009, {1, 1}};
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S(EHLO_NONE);
	r = C("MAIL FROM:<a@a.example>\r\nRCPT TO:<b@testing.example> NOTIFY=NEVER\r\n");
	assert_int_equal(r.verdict, DETECT_ACCEPT);
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 1);
	assert_int_equal(seen.n[DETECT_STRIPPED], 1);
	assert_string_equal(seen.reason, "no_starttls");
	/* mode none and unknown domains: no event; unknown ones are looked up once. */
	C("RCPT TO:<c@none.example>\r\n");
	C("RCPT TO:<d@new.example>\r\n");
	C("RCPT TO:<e@NEW.example>\r\n");
	C("RCPT TO:<postmaster>\r\n");
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 1);
	assert_int_equal(seen.lookups, 1);
	assert_string_equal(seen.looked_up, "new.example");
	detect_free(d);
}

static void
rfc2920_pipelined_and_release_on_data(void **state)
{
	struct detect *d = new_detect(CONF_NFQ_LOG, NULL);
	struct conn c = {false, 40010, {1, 1}};
	struct detect_result r;

	(void)state;
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S(EHLO_TLS);
	/* Pipelined envelope; the replies come back together. */
	C("MAIL FROM:<a@a.example>\r\nRCPT TO:<b@other.example>\r\nDATA\r\n");
	r = S("250 ok\r\n250 ok\r\n354 go ahead\r\n");
	assert_int_equal(r.verdict, DETECT_RELEASE);
	r = C("Subject: STARTTLS\r\n\r\nRCPT TO:<x@enforce.example>\r\n.\r\n");
	assert_int_equal(r.verdict, DETECT_ACCEPT);
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 0);
	detect_free(d);

	/* A reply split across segments at every byte still pairs with its command. */
	d = new_detect(CONF_NFQ_LOG, NULL);
	c = (struct conn){true, 40011, {1, 1}};
	say(d, &c, false, "220-mx\r\n220 hi\r\n", 1);
	say(d, &c, true, "EHLO a\r\nSTARTTLS\r\n", 1);
	say(d, &c, false, EHLO_TLS "501 5.5.4 no\r\n", 1);
	assert_int_equal(seen.n[DETECT_REFUSED], 1);
	detect_free(d);
}

/* The dialogue up to a cleartext MAIL FROM, STARTTLS stripped from the EHLO reply. */
static void
envelope(struct detect *d, struct conn *c)
{
	say(d, c, false, "220 mx\r\n", 1 << 20);
	say(d, c, true, "EHLO a\r\n", 1 << 20);
	say(d, c, false, EHLO_NONE, 1 << 20);
	say(d, c, true, "MAIL FROM:<a@sender.example> SIZE=10\r\n", 1 << 20);
	say(d, c, false, "250 ok\r\n", 1 << 20);
}

#define NO_ANSWER (-2) /* the lookup never answers: the deadline decides */

static void
rfc8461_5_hold_table(void **state)
{
	static const struct {
		const char *name;
		enum conf_nfq_action action;
		enum conf_nfq_hold_action on_timeout;
		int answer;                /* STS_MODE_*, -1 (temporary failure) or NO_ANSWER */
		enum detect_verdict first; /* the RCPT packet */
		int then;                  /* its verdict later; -1: none comes */
		enum detect_kind kind;     /* the event that names the domain */
		unsigned events;           /* of that kind */
		const char *ev_action;
		const char *reason;
		int64_t held_ms;
	} cases[] = {
	    {"rfc8461_5_enforce_answer_blocks", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK,
	     STS_MODE_ENFORCE, DETECT_HOLD, DETECT_DROP, DETECT_CLEARTEXT_RCPT, 1, "block",
	     "no_starttls", 500},
	    {"rfc8461_5_enforce_answer_blocks_whatever_on_timeout", CONF_NFQ_BLOCK,
	     CONF_NFQ_HOLD_PASS, STS_MODE_ENFORCE, DETECT_HOLD, DETECT_DROP, DETECT_CLEARTEXT_RCPT,
	     1, "block", "no_starttls", 500},
	    {"rfc8461_5_testing_answer_reported_let_go", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK,
	     STS_MODE_TESTING, DETECT_HOLD, DETECT_ACCEPT, DETECT_CLEARTEXT_RCPT, 1, "log",
	     "no_starttls", 500},
	    {"rfc8461_5_no_policy_answer_let_go", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK,
	     STS_MODE_NONE, DETECT_HOLD, DETECT_ACCEPT, DETECT_CLEARTEXT_RCPT, 0, NULL, NULL, 0},
	    {"rfc8461_3_3_tempfail_blocks", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, -1, DETECT_HOLD,
	     DETECT_DROP, DETECT_POLICY_UNKNOWN, 1, "block", "tempfail", 500},
	    {"rfc8461_3_3_tempfail_passes", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_PASS, -1, DETECT_HOLD,
	     DETECT_ACCEPT, DETECT_POLICY_UNKNOWN, 1, "pass", "tempfail", 500},
	    {"rfc8461_5_timeout_blocks", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, NO_ANSWER,
	     DETECT_HOLD, DETECT_DROP, DETECT_POLICY_UNKNOWN, 1, "block", "timeout", 3000},
	    {"rfc8461_5_timeout_passes", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_PASS, NO_ANSWER, DETECT_HOLD,
	     DETECT_ACCEPT, DETECT_POLICY_UNKNOWN, 1, "pass", "timeout", 3000},
	    {"rfc8461_5_log_mode_answer_reported", CONF_NFQ_LOG, CONF_NFQ_HOLD_BLOCK,
	     STS_MODE_ENFORCE, DETECT_ACCEPT, -1, DETECT_CLEARTEXT_RCPT, 1, "log", "no_starttls",
	     -1},
	    {"rfc8461_5_log_mode_timeout_reported", CONF_NFQ_LOG, CONF_NFQ_HOLD_BLOCK, NO_ANSWER,
	     DETECT_ACCEPT, -1, DETECT_POLICY_UNKNOWN, 1, "log", "timeout", -1},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct detect *d = new_hold(cases[i].action, cases[i].on_timeout, 4, 0);
		struct conn c = {i & 1, (uint16_t)(42000 + i), {1, 1}};
		struct detect_result r;
		struct detect_stats st;
		uint64_t held;

		envelope(d, &c);
		now_ms = 1000;
		r = C("RCPT TO:<b@First.Example>\r\n");
		held = cookies;
		if (r.verdict != cases[i].first || r.reset)
			fail_msg("%s: RCPT verdict %d", cases[i].name, r.verdict);
		if (seen.lookups != 1 || strcmp(seen.looked_up, "first.example") != 0)
			fail_msg("%s: lookups %u of %s", cases[i].name, seen.lookups,
			         seen.looked_up);
		assert_int_equal(detect_holds(d), 1);
		assert_int_equal(detect_next_deadline(d), 4000);
		assert_int_equal(detect_expire_holds(d, 3999), 0);
		assert_int_equal(later.n, 0);
		if (cases[i].first == DETECT_HOLD) {
			/* Nothing after the RCPT passes while its verdict waits. */
			r = S("250 ok\r\n");
			assert_int_equal(r.verdict, DETECT_DROP);
			assert_false(r.reset);
		}
		if (cases[i].answer == NO_ANSWER) {
			assert_int_equal(detect_expire_holds(d, 4000), 1);
		} else {
			detect_answer(d, "other.example", STS_MODE_ENFORCE, 1500);
			assert_int_equal(detect_holds(d), 1);
			detect_answer(d, "first.example", cases[i].answer, 1500);
		}
		assert_int_equal(detect_holds(d), 0);
		assert_int_equal(detect_next_deadline(d), 0);
		if (cases[i].then < 0) {
			assert_int_equal(later.n, 0);
		} else {
			if (later.n != 1 || (int)later.r.verdict != cases[i].then)
				fail_msg("%s: %u later verdicts, last %d", cases[i].name, later.n,
				         later.r.verdict);
			assert_int_equal(later.cookie, held);
			assert_int_equal(later.r.reset, cases[i].then == DETECT_DROP);
			assert_null(later.p.payload);
			assert_int_equal(later.p.dport, 25);
			assert_int_equal(later.p.sport, 42000 + i);
		}
		if (seen.n[cases[i].kind] != cases[i].events)
			fail_msg("%s: %u events of kind %d", cases[i].name, seen.n[cases[i].kind],
			         cases[i].kind);
		if (cases[i].events > 0) {
			/* Every such event names the domain, the server and the client. */
			assert_string_equal(seen.domain, "first.example");
			assert_string_equal(seen.action, cases[i].ev_action);
			assert_string_equal(seen.reason, cases[i].reason);
			assert_string_equal(seen.detail, "RCPT TO:<b@First.Example>");
			assert_string_equal(seen.mail_from, "<a@sender.example>");
			assert_int_equal(seen.held_ms, cases[i].held_ms);
			assert_non_null(
			    strstr(seen.client, c.v6 ? "2001:db8::10 42" : "198.51.100.10 42"));
			assert_string_equal(seen.server,
			                    c.v6 ? "2001:db8::25 25" : "198.51.100.25 25");
		}
		/* The flow goes on, or stays blocked both ways. */
		r = S("250 ok\r\n");
		assert_int_equal(r.verdict,
		                 cases[i].then == DETECT_DROP ? DETECT_DROP : DETECT_ACCEPT);
		detect_get_stats(d, &st);
		assert_int_equal(st.holds, cases[i].first == DETECT_HOLD);
		assert_int_equal(st.hold_timeouts, cases[i].answer == NO_ANSWER);
		assert_int_equal(st.packets, st.accepts + st.drops + st.releases);
		detect_free(d);
		assert_int_equal(later.n, cases[i].then >= 0);
	}
}

static void
rfc5321_4_1_2_mail_from_in_events(void **state)
{
	static const struct {
		const char *mail;
		const char *seen;
	} cases[] = {
	    {"MAIL FROM:<a@sender.example> BODY=8BITMIME\r\n", "<a@sender.example>"},
	    {"MAIL FROM:<>\r\n", "<>"},
	    {"MAIL FROM:<a\"b\x01@x.example>\r\n", "<a?b?@x.example>"},
	    {"MAIL FROM: bare@x.example\r\n", " bare@x.example"},
	    {"MAIL\r\n", ""},
	    {"MAIL FROM:<" /* cut to the event's bound */
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaa@x.example>\r\n",
	     "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct detect *d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, 4, 0);
		struct conn c = {false, (uint16_t)(42500 + i), {1, 1}};

		S("220 mx\r\n");
		C("EHLO a\r\n");
		S(EHLO_NONE);
		C(cases[i].mail);
		assert_int_equal(C("RCPT TO:<x@enforce.example>\r\n").verdict, DETECT_DROP);
		if (strcmp(seen.mail_from, cases[i].seen) != 0)
			fail_msg("%s: mail_from \"%s\"", cases[i].mail, seen.mail_from);
		detect_free(d);
	}
}

static void
rfc8461_5_hold_later_segments_sent_again(void **state)
{
	struct detect *d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, 4, 0);
	struct conn c = {false, 42100, {1, 1}}, again;
	struct detect_result r;

	(void)state;
	envelope(d, &c);
	assert_int_equal(C("RCPT TO:<b@first.example>\r\n").verdict, DETECT_HOLD);
	/* Later segments both ways are dropped unread: the enforce RCPT is not
	 * seen yet, and nothing is reported. */
	again = c;
	r = C("RCPT TO:<c@enforce.example>\r\n");
	assert_int_equal(r.verdict, DETECT_DROP);
	assert_false(r.reset);
	r = C("RCPT TO:<b@first.example>\r\n"); /* the held one sent again */
	assert_int_equal(r.verdict, DETECT_DROP);
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 0);
	assert_int_equal(seen.lookups, 1);
	/* Let go: TCP sends the dropped segment again, and it is judged. */
	detect_answer(d, "first.example", STS_MODE_NONE, 10);
	assert_int_equal(later.n, 1);
	assert_int_equal(later.r.verdict, DETECT_ACCEPT);
	r = say(d, &again, true, "RCPT TO:<c@enforce.example>\r\n", 1 << 20);
	assert_int_equal(r.verdict, DETECT_DROP);
	assert_true(r.reset);
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 1);
	assert_string_equal(seen.domain, "enforce.example");
	assert_int_equal(seen.held_ms, -1);
	detect_free(d);
}

static void
rfc2920_3_1_hold_pipelined_lines(void **state)
{
	struct detect *d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, 4, 0);
	struct conn c = {true, 42200, {1, 1}};
	struct detect_result r;
	struct detect_stats st;

	(void)state;
	/* Two unknown domains in one packet: the verdict waits for both. */
	envelope(d, &c);
	r = C("RCPT TO:<a@one.example>\r\nRCPT TO:<b@two.example>\r\nDATA\r\n");
	assert_int_equal(r.verdict, DETECT_HOLD);
	detect_answer(d, "two.example", STS_MODE_NONE, 1);
	assert_int_equal(later.n, 0);
	detect_answer(d, "one.example", STS_MODE_NONE, 2);
	assert_int_equal(later.n, 1);
	assert_int_equal(later.r.verdict, DETECT_ACCEPT);
	r = S("250 ok\r\n250 ok\r\n354 go\r\n");
	assert_int_equal(r.verdict, DETECT_RELEASE);
	detect_free(d);

	/* An unknown domain, then a cached enforce one in the same packet: blocked at once. */
	d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_PASS, 4, 0);
	c = (struct conn){false, 42201, {1, 1}};
	envelope(d, &c);
	r = C("RCPT TO:<a@one.example>\r\nRCPT TO:<b@enforce.example>\r\n");
	assert_int_equal(r.verdict, DETECT_DROP);
	assert_true(r.reset);
	assert_int_equal(detect_holds(d), 0);
	detect_answer(d, "one.example", STS_MODE_NONE, 1);
	assert_int_equal(later.n, 0);
	assert_int_equal(S("250 ok\r\n").verdict, DETECT_DROP);
	detect_free(d);
	assert_int_equal(later.n, 0);

	/* BDAT behind a held RCPT (RFC 3030): released when let go. */
	d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, 4, 0);
	c = (struct conn){false, 42202, {1, 1}};
	envelope(d, &c);
	r = C("RCPT TO:<a@one.example>\r\nBDAT 5 LAST\r\nhello");
	assert_int_equal(r.verdict, DETECT_HOLD);
	detect_answer(d, "one.example", STS_MODE_NONE, 1);
	assert_int_equal(later.r.verdict, DETECT_RELEASE);
	detect_get_stats(d, &st);
	assert_int_equal(st.releases, 1);
	detect_free(d);

	/* A lookup that cannot start: nothing waits (judged as without a policy). */
	d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, 4, 0);
	c = (struct conn){false, 42203, {1, 1}};
	envelope(d, &c);
	assert_int_equal(C("RCPT TO:<a@unstartable.example>\r\n").verdict, DETECT_ACCEPT);
	assert_int_equal(detect_holds(d), 0);
	detect_free(d);
}

static void
bounds_hold_max_and_domains(void **state)
{
	static const struct {
		const char *name;
		enum conf_nfq_action action;
		enum conf_nfq_hold_action on_limit;
		enum detect_verdict third; /* the RCPT beyond hold_max */
		unsigned events;           /* policy_unknown with reason hold_limit */
	} cases[] = {
	    {"bounds_block_mode_blocks", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, DETECT_DROP, 1},
	    {"bounds_block_mode_passes", CONF_NFQ_BLOCK, CONF_NFQ_HOLD_PASS, DETECT_ACCEPT, 1},
	    {"bounds_log_mode_counts", CONF_NFQ_LOG, CONF_NFQ_HOLD_BLOCK, DETECT_ACCEPT, 0},
	};
	char many[HOLD_DOMAINS_TEST * 40];
	size_t i, k, off;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct detect *d = new_hold(cases[i].action, cases[i].on_limit, 2, 0);
		struct detect_stats st;
		struct detect_result r;
		struct conn c;
		unsigned f;

		for (f = 0; f < 3; f++) {
			char rcpt[64];

			c = (struct conn){false, (uint16_t)(42300 + f), {1, 1}};
			envelope(d, &c);
			snprintf(rcpt, sizeof(rcpt), "RCPT TO:<x@d%u.example>\r\n", f);
			r = C(rcpt);
		}
		if (r.verdict != cases[i].third || r.reset != (cases[i].third == DETECT_DROP))
			fail_msg("%s: verdict %d", cases[i].name, r.verdict);
		assert_int_equal(detect_holds(d), 2);
		assert_int_equal(seen.n[DETECT_POLICY_UNKNOWN], cases[i].events);
		if (cases[i].events) {
			assert_string_equal(seen.reason, "hold_limit");
			assert_string_equal(seen.domain, "d2.example");
		}
		detect_get_stats(d, &st);
		assert_int_equal(st.hold_overflows, 1);
		detect_free(d);
	}

	/* More unknown domains in one packet than one record names. */
	for (off = 0, k = 0; k < HOLD_DOMAINS_TEST + 1; k++)
		off += (size_t)snprintf(many + off, sizeof(many) - off,
		                        "RCPT TO:<x@m%zu.example>\r\n", k);
	{
		struct detect *d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_PASS, 2, 0);
		struct conn c = {false, 42310, {1, 1}};
		struct detect_stats st;

		envelope(d, &c);
		assert_int_equal(C(many).verdict, DETECT_HOLD);
		detect_get_stats(d, &st);
		assert_int_equal(st.hold_overflows, 1);
		assert_string_equal(seen.domain, "m8.example");
		for (k = 0; k < HOLD_DOMAINS_TEST; k++) {
			char dom[32];

			assert_int_equal(later.n, 0);
			snprintf(dom, sizeof(dom), "m%zu.example", k);
			detect_answer(d, dom, STS_MODE_NONE, 1);
		}
		assert_int_equal(later.n, 1);
		assert_int_equal(later.r.verdict, DETECT_ACCEPT);
		detect_free(d);
	}

	/* hold_max 0: nothing waits, the domain is only looked up (for next time). */
	{
		struct detect *d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, 0, 0);
		struct conn c = {false, 42320, {1, 1}};
		struct detect_stats st;

		envelope(d, &c);
		assert_int_equal(C("RCPT TO:<x@first.example>\r\n").verdict, DETECT_ACCEPT);
		assert_int_equal(seen.lookups, 1);
		assert_int_equal(seen.n[DETECT_POLICY_UNKNOWN], 0);
		detect_get_stats(d, &st);
		assert_int_equal(st.hold_overflows + st.holds, 0);
		detect_free(d);
	}
}

static void
rfc9293_hold_flow_ends(void **state)
{
	struct detect *d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_PASS, 4, 2);
	struct conn c = {false, 42400, {1, 1}}, c2, c3;
	struct nfq_pkt p;

	(void)state;
	/* A reset connection: its held packet is dropped, nothing reported. */
	envelope(d, &c);
	assert_int_equal(C("RCPT TO:<x@first.example>\r\n").verdict, DETECT_HOLD);
	p = mk(&c, false, NULL, 0, NFQ_TCP_RST);
	assert_int_equal(detect_packet(d, &p, now_ms, ++cookies).verdict, DETECT_ACCEPT);
	assert_int_equal(later.n, 1);
	assert_int_equal(later.r.verdict, DETECT_DROP);
	assert_false(later.r.reset);
	assert_int_equal(seen.n[DETECT_POLICY_UNKNOWN], 0);
	assert_int_equal(detect_holds(d), 0);

	/* Evicted from a full table: the connection lives on, hold_action decides. */
	c2 = (struct conn){false, 42401, {1, 1}};
	envelope(d, &c2);
	assert_int_equal(C2("RCPT TO:<x@first.example>\r\n").verdict, DETECT_HOLD);
	c3 = (struct conn){false, 42402, {1, 1}};
	envelope(d, &c3);
	c = (struct conn){false, 42403, {1, 1}};
	envelope(d, &c); /* the third flow evicts the oldest, the held one */
	assert_int_equal(later.n, 2);
	assert_int_equal(later.r.verdict, DETECT_ACCEPT);
	assert_int_equal(seen.n[DETECT_POLICY_UNKNOWN], 1);
	assert_string_equal(seen.reason, "flow_ended");
	assert_string_equal(seen.action, "pass");

	/* Stopping: held packets get hold_action too. */
	assert_int_equal(C("RCPT TO:<x@second.example>\r\n").verdict, DETECT_HOLD);
	detect_free(d);
	assert_int_equal(later.n, 3);
	assert_int_equal(later.r.verdict, DETECT_ACCEPT);
	assert_string_equal(seen.reason, "stopping");

	/* Log mode: the answer is reported after the connection closed. */
	d = new_hold(CONF_NFQ_LOG, CONF_NFQ_HOLD_BLOCK, 4, 0);
	c = (struct conn){true, 42404, {1, 1}};
	envelope(d, &c);
	assert_int_equal(C("RCPT TO:<x@first.example>\r\nQUIT\r\n").verdict, DETECT_ACCEPT);
	p = mk(&c, true, NULL, 0, NFQ_TCP_FIN);
	detect_packet(d, &p, now_ms, ++cookies);
	p = mk(&c, false, NULL, 0, NFQ_TCP_FIN);
	detect_packet(d, &p, now_ms, ++cookies);
	assert_int_equal(detect_flows(d), 0);
	assert_int_equal(detect_holds(d), 1);
	detect_answer(d, "first.example", STS_MODE_ENFORCE, 200);
	assert_int_equal(seen.n[DETECT_CLEARTEXT_RCPT], 1);
	assert_string_equal(seen.action, "log");
	assert_string_equal(seen.client, "2001:db8::10 42404");
	assert_string_equal(seen.mail_from, "<a@sender.example>");
	assert_int_equal(seen.n[DETECT_STRIPPED], 0); /* the flow's facts are gone with it */
	assert_int_equal(later.n, 0);
	detect_free(d);
}

/* events_open - a fresh event file in path (a mkstemp template) for the detector's lines. */
static void
events_open(char *path)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(evlog_open(path), 0);
}

/* events_read - close the event file, read it whole into buf and remove it. */
static void
events_read(char *path, char *buf, size_t size)
{
	FILE *fp;
	size_t n;

	evlog_close();
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(buf, 1, size - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	unlink(path);
}

/* has_all - every string of the NULL-ended want is in buf. */
static void
has_all(const char *buf, const char *const *want)
{
	for (; *want != NULL; want++)
		if (strstr(buf, *want) == NULL)
			fail_msg("no %s in the event file", *want);
}

static void
event_log_lines(void **state)
{
	char path[] = "/tmp/sts-evlog-XXXXXX", buf[4096];
	struct detect *d;
	struct conn c = {false, 40012, {1, 1}};

	(void)state;
	events_open(path);
	d = new_detect(CONF_NFQ_BLOCK, NULL);
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S("250-mx\r\n250 XXXXXXXA\r\n");
	C("RCPT TO:<b@enforce.example>\r\n");
	detect_free(d);
	events_read(path, buf, sizeof(buf));
	has_all(buf, (const char *const[]){"\"event\":\"starttls_mangled\"",
	                                   "\"event\":\"cleartext_rcpt\"", "\"source\":\"nfq\"",
	                                   "\"domain\":\"enforce.example\"", "\"mode\":\"enforce\"",
	                                   "\"action\":\"block\"",
	                                   "\"result\":\"starttls-not-supported\"", NULL});
}

static void
event_log_hold_lines(void **state)
{
	char path[] = "/tmp/sts-evlog-XXXXXX", buf[4096];
	struct detect *d;
	struct conn c = {false, 40013, {1, 1}};

	(void)state;
	events_open(path);
	d = new_hold(CONF_NFQ_BLOCK, CONF_NFQ_HOLD_BLOCK, 4, 0);
	envelope(d, &c);
	now_ms = 100;
	C("RCPT TO:<b@slow.example>\r\n");
	detect_expire_holds(d, 3100);
	now_ms = 3100;
	c = (struct conn){false, 40014, {1, 1}};
	envelope(d, &c);
	C("RCPT TO:<b@new-enforce.example>\r\n");
	detect_answer(d, "new-enforce.example", STS_MODE_ENFORCE, 3350);
	detect_free(d);
	events_read(path, buf, sizeof(buf));
	has_all(buf,
	        (const char *const[]){"\"event\":\"policy_unknown\"", "\"domain\":\"slow.example\"",
	                              "\"reason\":\"timeout\"", "\"held_ms\":3000",
	                              "\"mail_from\":\"<a@sender.example>\"",
	                              "\"client\":\"198.51.100.10 40013\"",
	                              "\"server\":\"198.51.100.25 25\"", NULL});
	/* An unknown policy is no TLS-RPT result yet; the block after the answer is. */
	{
		char *line = strstr(buf, "policy_unknown"), *end = strchr(line, '\n');

		assert_non_null(end);
		*end = '\0';
		assert_null(strstr(line, "\"result\""));
		*end = '\n';
	}
	has_all(buf, (const char *const[]){"\"domain\":\"new-enforce.example\"", "\"held_ms\":250",
	                                   "\"action\":\"block\"", NULL});
}

static void
bounds_flood_and_expiry(void **state)
{
	struct detect *d = new_detect(CONF_NFQ_LOG, NULL);
	static char junk[4000];
	struct conn c;
	unsigned i;
	struct nfq_pkt p;

	(void)state;
	memset(junk, 'Z', sizeof(junk) - 1);
	for (i = 0; i < 200; i++) {
		c = (struct conn){i & 1, (uint16_t)(41000 + i), {1, 1}};
		S("220 mx\r\n");
		/* Endless lines and held out-of-order data, in both directions. */
		say(d, &c, true, junk, 1400);
		p = mk(&c, false, junk, 1000, 0);
		p.seq += 5000;
		detect_packet(d, &p, 0, 0);
	}
	assert_int_equal(detect_flows(d), 200);
	assert_true(detect_memory(d) <= 200u * 2 * FLOW_PENDING_MAX);
	assert_int_equal(seen.n[0] + seen.n[1] + seen.n[2] + seen.n[3] + seen.n[4], 0);
	assert_int_equal(detect_expire(d, 1001), 200);
	assert_int_equal(detect_flows(d), 0);
	assert_int_equal(detect_memory(d), 0);
	assert_int_equal(detect_save(d), 0);
	detect_free(d);
	detect_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc3207_mangled_keyword_table),
	    cmocka_unit_test(rfc3207_mangled_reported),
	    cmocka_unit_test(rfc3207_stripped_after_offered_before),
	    cmocka_unit_test(rfc3207_6_mangled_or_refused_offered_before_block),
	    cmocka_unit_test(rfc3207_6_stripped_offered_elsewhere_block),
	    cmocka_unit_test(rfc3207_4_non_220_to_starttls),
	    cmocka_unit_test(rfc8446_5_1_release_on_client_hello),
	    cmocka_unit_test(rfc8461_5_cleartext_rcpt_enforce_block),
	    cmocka_unit_test(rfc8461_5_log_mode_and_testing),
	    cmocka_unit_test(rfc2920_pipelined_and_release_on_data),
	    cmocka_unit_test(rfc8461_5_hold_table),
	    cmocka_unit_test(rfc5321_4_1_2_mail_from_in_events),
	    cmocka_unit_test(rfc8461_5_hold_later_segments_sent_again),
	    cmocka_unit_test(rfc2920_3_1_hold_pipelined_lines),
	    cmocka_unit_test(bounds_hold_max_and_domains),
	    cmocka_unit_test(rfc9293_hold_flow_ends),
	    cmocka_unit_test(event_log_lines),
	    cmocka_unit_test(event_log_hold_lines),
	    cmocka_unit_test(bounds_flood_and_expiry),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
