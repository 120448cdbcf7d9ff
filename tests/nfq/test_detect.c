// sources: nfq/detect.c nfq/flow.c nfq/srvmem.c nfq/packet.c core/evlog.c core/log.c core/util.c core/types.c
/*
 * test_detect.c - STARTTLS downgrade detection on scripted SMTP dialogues:
 * each detection (stripped, mangled, refused, cleartext RCPT), each
 * verdict (accept, release on TLS and on DATA, drop and reset in block
 * mode), the server memory and its file, the event log lines, segmentation
 * at every byte, IPv4 and IPv6, and memory bounds and expiry.
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
	unsigned n[4];
	char domain[64];
	char reason[32];
	char detail[96];
	bool blocked;
	unsigned lookups;
	char looked_up[64];
};

static struct seen seen;

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

static void
lookup(void *arg, const char *domain)
{
	(void)arg;
	seen.lookups++;
	snprintf(seen.looked_up, sizeof(seen.looked_up), "%s", domain);
}

static void
on_event(void *arg, const struct detect_event *ev)
{
	(void)arg;
	seen.n[ev->kind]++;
	snprintf(seen.domain, sizeof(seen.domain), "%s", ev->domain ? ev->domain : "");
	snprintf(seen.reason, sizeof(seen.reason), "%s", ev->reason);
	snprintf(seen.detail, sizeof(seen.detail), "%s", ev->detail ? ev->detail : "");
	seen.blocked = ev->blocked;
}

static struct detect *
new_detect(enum conf_nfq_action action, const char *dir)
{
	struct detect_params p = {0};
	char err[256];
	struct detect *d;

	memset(&seen, 0, sizeof(seen));
	p.action = action;
	p.state_dir = dir;
	p.policy = policy;
	p.lookup = lookup;
	p.on_event = on_event;
	p.idle_ms = 1000;
	d = detect_new(&p, err, sizeof(err));
	if (d == NULL)
		fail_msg("detect_new: %s", err);
	return d;
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
		r = detect_packet(d, &p, 0);
		c->seq[c2s ? 0 : 1] += (uint32_t)len;
	}
	return r;
}

#define C(t)      say(d, &c, true, (t), 1 << 20)
#define S(t)      say(d, &c, false, (t), 1 << 20)
#define EHLO_TLS  "250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
#define EHLO_NONE "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"

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
				r = detect_packet(d, &p, 0);
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

static void
event_log_lines(void **state)
{
	char path[] = "/tmp/sts-evlog-XXXXXX", buf[4096];
	struct detect *d;
	struct conn c = {false, 40012, {1, 1}};
	FILE *fp;
	size_t n;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(evlog_open(path), 0);
	d = new_detect(CONF_NFQ_BLOCK, NULL);
	S("220 mx\r\n");
	C("EHLO a\r\n");
	S("250-mx\r\n250 XXXXXXXA\r\n");
	C("RCPT TO:<b@enforce.example>\r\n");
	detect_free(d);
	evlog_close();
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	unlink(path);
	assert_non_null(strstr(buf, "\"event\":\"starttls_mangled\""));
	assert_non_null(strstr(buf, "\"event\":\"cleartext_rcpt\""));
	assert_non_null(strstr(buf, "\"source\":\"nfq\""));
	assert_non_null(strstr(buf, "\"domain\":\"enforce.example\""));
	assert_non_null(strstr(buf, "\"mode\":\"enforce\""));
	assert_non_null(strstr(buf, "\"action\":\"block\""));
	assert_non_null(strstr(buf, "\"result\":\"starttls-not-supported\""));
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
		detect_packet(d, &p, 0);
	}
	assert_int_equal(detect_flows(d), 200);
	assert_true(detect_memory(d) <= 200u * 2 * FLOW_PENDING_MAX);
	assert_int_equal(seen.n[0] + seen.n[1] + seen.n[2] + seen.n[3], 0);
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
	    cmocka_unit_test(rfc3207_4_non_220_to_starttls),
	    cmocka_unit_test(rfc8446_5_1_release_on_client_hello),
	    cmocka_unit_test(rfc8461_5_cleartext_rcpt_enforce_block),
	    cmocka_unit_test(rfc8461_5_log_mode_and_testing),
	    cmocka_unit_test(rfc2920_pipelined_and_release_on_data),
	    cmocka_unit_test(event_log_lines),
	    cmocka_unit_test(bounds_flood_and_expiry),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
