// sources: proxy/smtp_reply.c core/util.c
/*
 * test_smtp_reply.c - the reply reader, EHLO capabilities, the filtered
 * EHLO reply shown to the client and the detection of a STARTTLS keyword
 * overwritten by a middlebox.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/smtp_reply.h"

#define S(x) x, sizeof(x) - 1

struct reply_case {
	const char *name;
	const char *in; /* one or more lines, each ending in LF */
	size_t len;
	int want; /* result of the last line fed */
	int code; /* DONE: expected code */
	size_t nlines;
};

static const struct reply_case cases[] = {
    {"rfc5321_4_2_single_line", S("250 OK\r\n"), SMTP_REPLY_DONE, 250, 1},
    {"rfc5321_4_2_1_multi_line", S("250-first\r\n250-second\r\n250 last\r\n"), SMTP_REPLY_DONE, 250,
     3},
    {"rfc5321_4_2_1_multi_line_pending", S("220-banner\r\n220-more\r\n"), SMTP_REPLY_MORE, 0, 2},
    {"rfc5321_4_2_bare_code", S("250\r\n"), SMTP_REPLY_DONE, 250, 1},
    {"rfc5321_4_2_1_empty_texts", S("421-\r\n421 \r\n"), SMTP_REPLY_DONE, 421, 2},
    {"rfc5321_4_2_1_bare_code_ends_multi", S("354-a\r\n354\r\n"), SMTP_REPLY_DONE, 354, 2},
    {"rfc5321_4_2_utf8_text", S("250 d\xc3\xa9j\xc3\xa0 vu\r\n"), SMTP_REPLY_DONE, 250, 1},
    {"rfc5321_4_2_1_mixed_codes", S("250-a\r\n251 b\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_1_mixed_codes_class", S("250-a\r\n550 b\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_first_digit_1", S("150 x\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_first_digit_6", S("650 x\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_second_digit_6", S("260 x\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_not_digits", S("2a0 x\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_two_digits", S("25\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_bad_separator", S("250x ok\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_4_2_tab_separator", S("250\tok\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_2_3_8_bare_lf", S("250 ok\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_2_3_8_bare_cr", S("250 o\rk\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_2_3_8_nul", S("250 o\0k\r\n"), SMTP_REPLY_BAD, 0, 0},
    {"rfc5321_2_3_8_second_line_bare_lf", S("250-a\r\n250 b\n"), SMTP_REPLY_BAD, 0, 0},
};

static void
run_case(void **state)
{
	const struct reply_case *c = *state;
	struct smtp_reply *r = smtp_reply_new();
	size_t pos = 0;
	int rc = SMTP_REPLY_MORE;

	assert_non_null(r);
	while (pos < c->len) {
		const char *lf = memchr(c->in + pos, '\n', c->len - pos);
		size_t l = lf ? (size_t)(lf - (c->in + pos)) + 1 : c->len - pos;

		rc = smtp_reply_feed(r, c->in + pos, l);
		pos += l;
		if (rc != SMTP_REPLY_MORE)
			break;
	}
	/* Everything is fed, unless the reader refused a line before the end. */
	assert_true(pos == c->len || rc == SMTP_REPLY_BAD);
	assert_int_equal(rc, c->want);
	if (rc == SMTP_REPLY_BAD) {
		assert_non_null(smtp_reply_error(r));
		assert_false(smtp_reply_done(r));
		/* The refusal sticks until a reset. */
		assert_int_equal(smtp_reply_feed(r, S("250 ok\r\n")), SMTP_REPLY_BAD);
		smtp_reply_reset(r);
		assert_null(smtp_reply_error(r));
		assert_int_equal(smtp_reply_feed(r, S("250 ok\r\n")), SMTP_REPLY_DONE);
	} else {
		size_t rawlen;

		assert_null(smtp_reply_error(r));
		assert_int_equal(smtp_reply_done(r), rc == SMTP_REPLY_DONE);
		if (rc == SMTP_REPLY_DONE)
			assert_int_equal(smtp_reply_code(r), c->code);
		assert_int_equal(smtp_reply_nlines(r), c->nlines);
		smtp_reply_raw(r, &rawlen);
		assert_int_equal(rawlen, c->len);
		assert_memory_equal(smtp_reply_raw(r, &rawlen), c->in, c->len);
	}
	smtp_reply_free(r);
}

/* Line texts exclude the code, the separator and the CRLF. */
static void
rfc5321_4_2_line_text(void **state)
{
	struct smtp_reply *r = smtp_reply_new();
	const char *t;
	size_t len;

	(void)state;
	assert_int_equal(smtp_reply_feed(r, S("250-mx.example Hello\r\n")), SMTP_REPLY_MORE);
	assert_false(smtp_reply_done(r));
	assert_int_equal(smtp_reply_code(r), 250);
	assert_int_equal(smtp_reply_feed(r, S("250\r\n")), SMTP_REPLY_DONE);
	t = smtp_reply_line(r, 0, &len);
	assert_int_equal(len, 16);
	assert_memory_equal(t, "mx.example Hello", 16);
	t = smtp_reply_line(r, 1, &len);
	assert_non_null(t);
	assert_int_equal(len, 0);
	assert_null(smtp_reply_line(r, 2, &len));

	/* The next feed after a complete reply starts a new one. */
	assert_int_equal(smtp_reply_feed(r, S("354 go ahead\r\n")), SMTP_REPLY_DONE);
	assert_int_equal(smtp_reply_code(r), 354);
	assert_int_equal(smtp_reply_nlines(r), 1);
	t = smtp_reply_line(r, 0, &len);
	assert_memory_equal(t, "go ahead", len);
	smtp_reply_free(r);
	smtp_reply_free(NULL);
}

/* Bounds: SMTP_REPLY_MAX_LINES lines and SMTP_REPLY_MAX_SIZE octets. */
static void
rfc5321_4_5_3_1_5_reply_bounds(void **state)
{
	struct smtp_reply *r = smtp_reply_new();
	char big[2000];
	size_t i, total = 0;
	int rc;

	(void)state;
	for (i = 0; i < SMTP_REPLY_MAX_LINES - 1; i++)
		assert_int_equal(smtp_reply_feed(r, S("250-x\r\n")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(r, S("250 x\r\n")), SMTP_REPLY_DONE);
	assert_int_equal(smtp_reply_nlines(r), SMTP_REPLY_MAX_LINES);

	smtp_reply_reset(r);
	for (i = 0; i < SMTP_REPLY_MAX_LINES; i++)
		assert_int_equal(smtp_reply_feed(r, S("250-x\r\n")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(r, S("250 x\r\n")), SMTP_REPLY_BAD);

	/* 40 lines of 2000 octets pass 64 KiB. */
	smtp_reply_reset(r);
	memset(big, 'a', sizeof(big));
	memcpy(big, "250-", 4);
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	rc = SMTP_REPLY_MORE;
	for (i = 0; i < 40 && rc == SMTP_REPLY_MORE; i++) {
		rc = smtp_reply_feed(r, big, sizeof(big));
		if (rc == SMTP_REPLY_MORE)
			total += sizeof(big);
	}
	assert_int_equal(rc, SMTP_REPLY_BAD);
	assert_true(total <= SMTP_REPLY_MAX_SIZE);
	assert_true(total + sizeof(big) > SMTP_REPLY_MAX_SIZE);
	smtp_reply_free(r);
}

static struct smtp_reply *
feed_all(const char *in, size_t len)
{
	struct smtp_reply *r = smtp_reply_new();
	size_t pos = 0;
	int rc = SMTP_REPLY_MORE;

	assert_non_null(r);
	while (pos < len) {
		const char *lf = memchr(in + pos, '\n', len - pos);
		size_t l = lf ? (size_t)(lf - (in + pos)) + 1 : len - pos;

		rc = smtp_reply_feed(r, in + pos, l);
		pos += l;
	}
	assert_int_equal(rc, SMTP_REPLY_DONE);
	return r;
}

static const char postfix_ehlo[] = "250-mx.example.net Hello client.example [10.0.0.2]\r\n"
                                   "250-PIPELINING\r\n"
                                   "250-SIZE 10240000\r\n"
                                   "250-VRFY\r\n"
                                   "250-ETRN\r\n"
                                   "250-STARTTLS\r\n"
                                   "250-AUTH PLAIN LOGIN\r\n"
                                   "250-AUTH=PLAIN LOGIN\r\n"
                                   "250-ENHANCEDSTATUSCODES\r\n"
                                   "250-8BITMIME\r\n"
                                   "250-DSN\r\n"
                                   "250-SMTPUTF8\r\n"
                                   "250-X-UNKNOWN-EXT foo\r\n"
                                   "250 CHUNKING\r\n";

/* RFC 5321 section 4.1.1.1: the EHLO reply lists one keyword per line. */
static void
rfc5321_4_1_1_1_ehlo_parse(void **state)
{
	struct smtp_reply *r = feed_all(S(postfix_ehlo));
	struct smtp_ehlo e;

	(void)state;
	assert_int_equal(smtp_ehlo_parse(r, &e), 0);
	assert_int_equal(e.caps, SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_VRFY |
	                             SMTP_CAP_ETRN | SMTP_CAP_STARTTLS | SMTP_CAP_AUTH |
	                             SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_8BITMIME |
	                             SMTP_CAP_DSN | SMTP_CAP_SMTPUTF8 | SMTP_CAP_CHUNKING);
	assert_int_equal(e.size, 10240000);
	assert_string_equal(e.auth, "PLAIN LOGIN");
	assert_int_equal(e.n_mangled, 0);
	smtp_reply_free(r);
}

/* RFC 5321 section 4.1.1.1: keywords are case-insensitive; prefixes are not keywords. */
static void
rfc5321_4_1_1_1_ehlo_case(void **state)
{
	struct smtp_reply *r = feed_all(S("250-mx\r\n250-starttls\r\n250-Pipelining\r\n"
	                                  "250-STARTTLSX\r\n250-size\r\n250 binarymime\r\n"));
	struct smtp_ehlo e;

	(void)state;
	assert_int_equal(smtp_ehlo_parse(r, &e), 0);
	assert_int_equal(e.caps, SMTP_CAP_STARTTLS | SMTP_CAP_PIPELINING | SMTP_CAP_SIZE |
	                             SMTP_CAP_BINARYMIME);
	assert_int_equal(e.size, 0);
	smtp_reply_free(r);
}

/* RFC 1870 section 3: a SIZE that is not a number is ignored. */
static void
rfc1870_3_size_invalid(void **state)
{
	struct smtp_reply *r =
	    feed_all(S("250-mx\r\n250-SIZE lots\r\n250 SIZE 99999999999999999999999\r\n"));
	struct smtp_ehlo e;

	(void)state;
	assert_int_equal(smtp_ehlo_parse(r, &e), 0);
	assert_int_equal(e.caps, 0);
	assert_int_equal(e.size, 0);
	smtp_reply_free(r);
}

/* Only a complete 250 reply has capabilities. */
static void
rfc5321_4_1_1_1_ehlo_not_250(void **state)
{
	struct smtp_reply *r = feed_all(S("550 no\r\n"));
	struct smtp_ehlo e;
	char out[256];

	(void)state;
	assert_int_equal(smtp_ehlo_parse(r, &e), -1);
	assert_int_equal(smtp_ehlo_rewrite(r, ~0u, true, out, sizeof(out), NULL), -1);
	smtp_reply_reset(r);
	assert_int_equal(smtp_reply_feed(r, S("250-mx\r\n")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_ehlo_parse(r, &e), -1);
	assert_int_equal(smtp_ehlo_rewrite(r, ~0u, true, out, sizeof(out), NULL), -1);
	smtp_reply_free(r);
}

struct rewrite_case {
	const char *name;
	unsigned allow;
	bool offer_starttls;
	const char *greeting_name;
	const char *want; /* NULL: -1 expected */
};

#define ALLOW_RELAY                                                                                \
	(SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_8BITMIME | SMTP_CAP_ENHANCEDSTATUSCODES |  \
	 SMTP_CAP_DSN | SMTP_CAP_SMTPUTF8)

static const struct rewrite_case rewrites[] = {
    {"rfc5321_4_1_1_1_capabilities_filtered", ALLOW_RELAY, false, NULL,
     "250-mx.example.net Hello client.example [10.0.0.2]\r\n"
     "250-PIPELINING\r\n"
     "250-SIZE 10240000\r\n"
     "250-ENHANCEDSTATUSCODES\r\n"
     "250-8BITMIME\r\n"
     "250-DSN\r\n"
     "250 SMTPUTF8\r\n"},
    {"rfc3207_4_starttls_offered", SMTP_CAP_PIPELINING | SMTP_CAP_STARTTLS, true, NULL,
     "250-mx.example.net Hello client.example [10.0.0.2]\r\n"
     "250-PIPELINING\r\n"
     "250 STARTTLS\r\n"},
    {"rfc3207_4_2_upstream_starttls_dropped", SMTP_CAP_STARTTLS | SMTP_CAP_CHUNKING, false, NULL,
     "250-mx.example.net Hello client.example [10.0.0.2]\r\n"
     "250 CHUNKING\r\n"},
    {"rfc5321_4_1_1_1_greeting_only", 0, false, NULL,
     "250 mx.example.net Hello client.example [10.0.0.2]\r\n"},
    {"rfc5321_4_1_1_1_greeting_only_starttls", 0, true, NULL,
     "250-mx.example.net Hello client.example [10.0.0.2]\r\n250 STARTTLS\r\n"},
    {"rfc5321_4_1_1_1_greeting_name", SMTP_CAP_SIZE, false, "proxy.example",
     "250-proxy.example Hello client.example [10.0.0.2]\r\n250 SIZE 10240000\r\n"},
    {"rfc5321_4_1_1_1_greeting_name_with_space", 0, false, "bad name", NULL},
    {"rfc5321_4_1_1_1_greeting_name_with_crlf", 0, false, "bad\r\n250 X", NULL},
    {"rfc5321_4_1_1_1_greeting_name_empty", 0, false, "", NULL},
    {"rfc5321_4_1_1_1_unknown_never_passed", ~0u, false, NULL,
     "250-mx.example.net Hello client.example [10.0.0.2]\r\n"
     "250-PIPELINING\r\n"
     "250-SIZE 10240000\r\n"
     "250-VRFY\r\n"
     "250-ETRN\r\n"
     "250-AUTH PLAIN LOGIN\r\n"
     "250-ENHANCEDSTATUSCODES\r\n"
     "250-8BITMIME\r\n"
     "250-DSN\r\n"
     "250-SMTPUTF8\r\n"
     "250 CHUNKING\r\n"},
};

static void
run_rewrite(void **state)
{
	const struct rewrite_case *c = *state;
	struct smtp_reply *r = feed_all(S(postfix_ehlo));
	struct smtp_reply *again;
	struct smtp_ehlo e;
	char out[2048];
	int n =
	    smtp_ehlo_rewrite(r, c->allow, c->offer_starttls, out, sizeof(out), c->greeting_name);

	if (c->want == NULL) {
		assert_int_equal(n, -1);
		smtp_reply_free(r);
		return;
	}
	assert_int_equal(n, (int)strlen(c->want));
	assert_string_equal(out, c->want);

	/* What the client gets is itself a valid EHLO reply with those capabilities. */
	again = feed_all(out, (size_t)n);
	assert_int_equal(smtp_ehlo_parse(again, &e), 0);
	assert_int_equal(e.caps & SMTP_CAP_STARTTLS, c->offer_starttls ? SMTP_CAP_STARTTLS : 0);
	assert_int_equal(e.caps & ~(unsigned)SMTP_CAP_STARTTLS & ~c->allow, 0);
	smtp_reply_free(again);

	/* Exactly enough room, and one octet less. */
	assert_int_equal(
	    smtp_ehlo_rewrite(r, c->allow, c->offer_starttls, out, (size_t)n + 1, c->greeting_name),
	    n);
	assert_int_equal(
	    smtp_ehlo_rewrite(r, c->allow, c->offer_starttls, out, (size_t)n, c->greeting_name),
	    -1);
	smtp_reply_free(r);
}

struct mangled_case {
	const char *name;
	const char *cap;
	bool want;
};

static const struct mangled_case mangled[] = {
    {"rfc3207_4_downgrade_mangled_xxxxxxxa", "XXXXXXXA", true},
    {"rfc3207_4_downgrade_mangled_all_x", "XXXXXXXX", true},
    {"rfc3207_4_downgrade_mangled_stars", "********", true},
    {"rfc3207_4_downgrade_mangled_blanks", "        ", true},
    {"rfc3207_4_downgrade_mangled_with_params", "XXXXXXXA foo", true},
    {"rfc3207_4_downgrade_mangled_one_char", "STARTTLX", true},
    {"rfc3207_4_downgrade_mangled_first_char", "XTARTTLS", true},
    {"rfc3207_4_downgrade_mangled_half", "STARXXXX", true},
    {"rfc3207_4_downgrade_clean_starttls", "STARTTLS", false},
    {"rfc3207_4_downgrade_clean_starttls_lower", "starttls", false},
    {"rfc3207_4_downgrade_clean_chunking", "CHUNKING", false},
    {"rfc3207_4_downgrade_clean_8bitmime", "8BITMIME", false},
    {"rfc3207_4_downgrade_clean_smtputf8", "SMTPUTF8", false},
    {"rfc3207_4_downgrade_clean_xforward", "XFORWARD NAME ADDR PROTO HELO", false},
    {"rfc3207_4_downgrade_clean_pipelining", "PIPELINING", false},
    {"rfc3207_4_downgrade_clean_size", "SIZE 1000", false},
    {"rfc3207_4_downgrade_clean_nine_chars", "XXXXXXXAB", false},
    {"rfc3207_4_downgrade_clean_seven_chars", "XXXXXXX", false},
};

static void
run_mangled(void **state)
{
	const struct mangled_case *c = *state;

	assert_int_equal(smtp_cap_looks_mangled_starttls(c->cap, strlen(c->cap)), c->want);
}

/* The EHLO parse counts mangled lines (a downgrade event for the session). */
static void
rfc3207_mangled_in_ehlo(void **state)
{
	struct smtp_reply *r = feed_all(S("250-mx\r\n250-PIPELINING\r\n250 XXXXXXXA\r\n"));
	struct smtp_ehlo e;

	(void)state;
	assert_int_equal(smtp_ehlo_parse(r, &e), 0);
	assert_int_equal(e.n_mangled, 1);
	assert_int_equal(e.caps, SMTP_CAP_PIPELINING);
	smtp_reply_free(r);
}

/* Keyword table lookup. */
static void
rfc5321_4_1_1_1_cap_lookup(void **state)
{
	(void)state;
	assert_int_equal(smtp_cap_lookup("chunking", 8), SMTP_CAP_CHUNKING);
	assert_int_equal(smtp_cap_lookup("ENHANCEDSTATUSCODES", 19), SMTP_CAP_ENHANCEDSTATUSCODES);
	assert_int_equal(smtp_cap_lookup("CHUNK", 5), 0);
	assert_int_equal(smtp_cap_lookup("", 0), 0);
}

/* RFC 5321 section 4.2: the host name of a banner or EHLO reply, made printable. */
static void
rfc5321_4_2_reply_name(void **state)
{
	static const struct {
		const char *in, *want;
	} t[] = {
	    {"220 mx.example.net ESMTP ready\r\n", "mx.example.net"},
	    {"250-mx.example.net hello\r\n250 SIZE\r\n", "mx.example.net"},
	    {"220\r\n", ""},
	    {"220 \x01"
	     "evil\x7f name\r\n",
	     "?evil?"},
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_reply *r = feed_all(t[i].in, strlen(t[i].in));

		smtp_reply_name(r, out, sizeof(out));
		assert_string_equal(out, t[i].want);
		smtp_reply_free(r);
	}
	/* cut to the buffer */
	struct smtp_reply *r = feed_all(S("220 a-very-long-host.example.net x\r\n"));
	smtp_reply_name(r, out, sizeof(out));
	assert_string_equal(out, "a-very-long-hos");
	smtp_reply_free(r);
}

#define N_CASES    (sizeof(cases) / sizeof(cases[0]))
#define N_REWRITES (sizeof(rewrites) / sizeof(rewrites[0]))
#define N_MANGLED  (sizeof(mangled) / sizeof(mangled[0]))

int
main(void)
{
	struct CMUnitTest tests[N_CASES + N_REWRITES + N_MANGLED + 10];
	size_t i, n = 0;

	for (i = 0; i < N_CASES; i++) {
		tests[n++] = (struct CMUnitTest){.name = cases[i].name,
		                                 .test_func = run_case,
		                                 .initial_state = (void *)&cases[i]};
	}
	for (i = 0; i < N_REWRITES; i++) {
		tests[n++] = (struct CMUnitTest){.name = rewrites[i].name,
		                                 .test_func = run_rewrite,
		                                 .initial_state = (void *)&rewrites[i]};
	}
	for (i = 0; i < N_MANGLED; i++) {
		tests[n++] = (struct CMUnitTest){.name = mangled[i].name,
		                                 .test_func = run_mangled,
		                                 .initial_state = (void *)&mangled[i]};
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_2_line_text);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_5_3_1_5_reply_bounds);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_1_1_ehlo_parse);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_1_1_ehlo_case);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc1870_3_size_invalid);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_1_1_ehlo_not_250);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc3207_mangled_in_ehlo);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_1_1_cap_lookup);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_2_reply_name);
	return _cmocka_run_group_tests("smtp_reply", tests, n, NULL, NULL);
}
