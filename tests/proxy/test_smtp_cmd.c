// sources: proxy/smtp_cmd.c
/*
 * test_smtp_cmd.c - client command lines: the verb table, the refusal of
 * bare CR/LF/NUL, MAIL and RCPT paths and their domain in A-labels, BDAT,
 * and the splitting of pipelined input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/smtp_cmd.h"

#define S(x) x, sizeof(x) - 1

struct cmd_case {
	const char *name;
	const char *line;
	size_t len;
	int rc;
	enum smtp_cmd_id id;
	const char *domain;  /* rc 0: expected domain ("" for none); NULL: not checked */
	unsigned path_flags; /* rc 0: expected SMTP_PATH_* */
	const char *mailbox; /* rc 0: expected mailbox; NULL: not checked */
	const char *params;  /* rc 0: expected parameters; NULL: none */
	const char *error;   /* rc -1: expected start of the reply */
	bool close;          /* rc -1: expected error_close */
};

static const struct cmd_case cases[] = {
    /* RFC 5321 section 4.1.1: verbs are case-insensitive. */
    {"rfc5321_4_1_1_1_ehlo", S("EHLO client.example\r\n"), 0, SMTP_CMD_EHLO, NULL, 0, NULL, NULL,
     NULL, false},
    {"rfc5321_4_1_1_1_ehlo_lower", S("ehlo client.example\r\n"), 0, SMTP_CMD_EHLO, NULL, 0, NULL,
     NULL, NULL, false},
    {"rfc5321_4_1_1_1_ehlo_no_arg", S("EHLO\r\n"), -1, SMTP_CMD_EHLO, NULL, 0, NULL, NULL,
     "501 5.5.4", false},
    {"rfc5321_4_1_1_4_data", S("DATA\r\n"), 0, SMTP_CMD_DATA, NULL, 0, NULL, NULL, NULL, false},
    {"rfc5321_4_1_1_4_data_arg", S("DATA x\r\n"), -1, SMTP_CMD_DATA, NULL, 0, NULL, NULL,
     "501 5.5.4", false},
    {"rfc5321_4_1_1_4_data_trailing_tab", S("DATA\t \r\n"), 0, SMTP_CMD_DATA, NULL, 0, NULL, NULL,
     NULL, false},
    {"rfc5321_4_1_1_4_data_leading_blank", S(" \tdata\r\n"), 0, SMTP_CMD_DATA, NULL, 0, NULL, NULL,
     NULL, false},
    {"rfc5321_4_1_1_4_data_tab_arg", S("DATA\tx\r\n"), -1, SMTP_CMD_DATA, NULL, 0, NULL, NULL,
     "501 5.5.4", false},
    {"rfc5321_4_1_1_blank_line", S(" \t \r\n"), -1, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL,
     "500 5.5.2", false},
    {"rfc5321_4_1_1_5_rset", S("RSET\r\n"), 0, SMTP_CMD_RSET, NULL, 0, NULL, NULL, NULL, false},
    {"rfc5321_4_1_1_9_noop_arg", S("NOOP hello\r\n"), 0, SMTP_CMD_NOOP, NULL, 0, NULL, NULL, NULL,
     false},
    {"rfc5321_4_1_1_10_quit", S("quit\r\n"), 0, SMTP_CMD_QUIT, NULL, 0, NULL, NULL, NULL, false},
    {"rfc5321_4_1_1_8_help", S("HELP\r\n"), 0, SMTP_CMD_HELP, NULL, 0, NULL, NULL, NULL, false},
    {"rfc5321_4_1_1_6_vrfy", S("VRFY postmaster\r\n"), 0, SMTP_CMD_VRFY, NULL, 0, NULL, NULL, NULL,
     false},
    {"rfc5321_4_1_1_7_expn", S("EXPN list\r\n"), 0, SMTP_CMD_EXPN, NULL, 0, NULL, NULL, NULL,
     false},
    {"rfc3207_4_starttls", S("STARTTLS\r\n"), 0, SMTP_CMD_STARTTLS, NULL, 0, NULL, NULL, NULL,
     false},
    {"rfc3207_4_starttls_arg", S("STARTTLS now\r\n"), -1, SMTP_CMD_STARTTLS, NULL, 0, NULL, NULL,
     "501 5.5.4", false},
    {"rfc4954_4_auth", S("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"), 0, SMTP_CMD_AUTH, NULL, 0, NULL, NULL,
     NULL, false},
    {"rfc5321_4_2_4_unknown_verb", S("XYZZY 1\r\n"), 0, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL, NULL,
     false},
    {"rfc5321_4_2_4_verb_prefix_unknown", S("MAILX FROM:<a@b.example>\r\n"), 0, SMTP_CMD_UNKNOWN,
     NULL, 0, NULL, NULL, NULL, false},
    {"rfc5321_4_1_1_empty_line", S("\r\n"), -1, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL, "500 5.5.2",
     false},

    /* RFC 5321 section 2.3.8 and SMTP smuggling: bare CR, bare LF and NUL close. */
    {"rfc5321_2_3_8_bare_lf", S("NOOP\n"), -1, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL, "500 5.5.2",
     true},
    {"rfc5321_2_3_8_bare_cr_inside", S("NOOP a\rb\r\n"), -1, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL,
     "500 5.5.2", true},
    {"rfc5321_2_3_8_bare_lf_inside", S("RCPT TO:<a@b.example>\nDATA\r\n"), -1, SMTP_CMD_UNKNOWN,
     NULL, 0, NULL, NULL, "500 5.5.2", true},
    {"rfc5321_2_3_8_nul_inside", S("MAIL FROM:<a@b.example>\0x\r\n"), -1, SMTP_CMD_UNKNOWN, NULL, 0,
     NULL, NULL, "500 5.5.2", true},
    {"rfc5321_2_3_8_cr_only", S("QUIT\r"), -1, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL, "500 5.5.2",
     true},
    {"rfc5321_2_3_8_unterminated", S("QUIT"), -1, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL,
     "500 5.5.2", true},
    {"rfc5321_2_3_8_two_lines", S("NOOP\r\nQUIT\r\n"), -1, SMTP_CMD_UNKNOWN, NULL, 0, NULL, NULL,
     "500 5.5.2", true},

    /* RFC 5321 section 4.1.1.2 MAIL, section 4.1.2 Path grammar. */
    {"rfc5321_4_1_1_2_mail", S("MAIL FROM:<Alice@Example.COM>\r\n"), 0, SMTP_CMD_MAIL,
     "example.com", 0, "Alice@Example.COM", NULL, NULL, false},
    {"rfc5321_4_1_1_2_mail_null", S("MAIL FROM:<>\r\n"), 0, SMTP_CMD_MAIL, "", SMTP_PATH_NULL, NULL,
     NULL, NULL, false},
    {"rfc5321_4_1_1_2_mail_params", S("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME\r\n"), 0,
     SMTP_CMD_MAIL, "b.example", 0, "a@b.example", "SIZE=1000 BODY=8BITMIME", NULL, false},
    {"rfc5321_4_1_1_2_mail_null_params", S("MAIL FROM:<> SIZE=10\r\n"), 0, SMTP_CMD_MAIL, "",
     SMTP_PATH_NULL, NULL, "SIZE=10", NULL, false},
    {"rfc5321_4_1_1_2_mail_lower_space", S("mail from: <a@b.example>\r\n"), 0, SMTP_CMD_MAIL,
     "b.example", 0, "a@b.example", NULL, NULL, false},
    {"rfc5321_4_1_1_2_mail_no_brackets", S("MAIL FROM:a@b.example\r\n"), -1, SMTP_CMD_MAIL, NULL, 0,
     NULL, NULL, "501 5.5.4", false},
    {"rfc5321_4_1_1_2_mail_no_from", S("MAIL <a@b.example>\r\n"), -1, SMTP_CMD_MAIL, NULL, 0, NULL,
     NULL, "501 5.5.4", false},
    {"rfc5321_4_1_1_2_mail_unclosed", S("MAIL FROM:<a@b.example\r\n"), -1, SMTP_CMD_MAIL, NULL, 0,
     NULL, NULL, "501 5.1.7", false},
    {"rfc5321_4_1_1_2_mail_postmaster", S("MAIL FROM:<Postmaster>\r\n"), -1, SMTP_CMD_MAIL, NULL, 0,
     NULL, NULL, "501 5.1.7", false},
    {"rfc5321_4_1_1_2_mail_junk_after_path", S("MAIL FROM:<a@b.example>x\r\n"), -1, SMTP_CMD_MAIL,
     NULL, 0, NULL, NULL, "501 5.1.7", false},

    /* RFC 5321 section 4.1.1.3 RCPT. */
    {"rfc5321_4_1_1_3_rcpt", S("RCPT TO:<bob@MX.Example.org>\r\n"), 0, SMTP_CMD_RCPT,
     "mx.example.org", 0, "bob@MX.Example.org", NULL, NULL, false},
    {"rfc5321_4_1_1_3_rcpt_params", S("RCPT TO:<bob@example.org> NOTIFY=NEVER\r\n"), 0,
     SMTP_CMD_RCPT, "example.org", 0, "bob@example.org", "NOTIFY=NEVER", NULL, false},
    {"rfc5321_4_1_1_3_rcpt_postmaster", S("RCPT TO:<Postmaster>\r\n"), 0, SMTP_CMD_RCPT, "",
     SMTP_PATH_POSTMASTER, "Postmaster", NULL, NULL, false},
    {"rfc5321_4_1_1_3_rcpt_postmaster_lower", S("RCPT TO:<postmaster>\r\n"), 0, SMTP_CMD_RCPT, "",
     SMTP_PATH_POSTMASTER, "postmaster", NULL, NULL, false},
    {"rfc5321_4_1_1_3_rcpt_postmaster_domain", S("RCPT TO:<Postmaster@Example.net>\r\n"), 0,
     SMTP_CMD_RCPT, "example.net", 0, "Postmaster@Example.net", NULL, NULL, false},
    {"rfc5321_4_1_1_3_rcpt_null", S("RCPT TO:<>\r\n"), -1, SMTP_CMD_RCPT, NULL, 0, NULL, NULL,
     "501 5.1.3", false},
    {"rfc5321_4_1_1_3_rcpt_no_domain", S("RCPT TO:<bob>\r\n"), -1, SMTP_CMD_RCPT, NULL, 0, NULL,
     NULL, "501 5.1.3", false},
    {"rfc5321_4_1_1_3_rcpt_empty_domain", S("RCPT TO:<bob@>\r\n"), -1, SMTP_CMD_RCPT, NULL, 0, NULL,
     NULL, "501 5.1.3", false},
    {"rfc5321_4_1_1_3_rcpt_source_route",
     S("RCPT TO:<@relay.example,@r2.example:bob@Dest.example>\r\n"), 0, SMTP_CMD_RCPT,
     "dest.example", SMTP_PATH_SOURCE_ROUTE, "bob@Dest.example", NULL, NULL, false},
    {"rfc5321_4_1_2_quoted_local_at", S("RCPT TO:<\"a@b\"@example.com>\r\n"), 0, SMTP_CMD_RCPT,
     "example.com", SMTP_PATH_QUOTED_LOCAL, "\"a@b\"@example.com", NULL, NULL, false},
    {"rfc5321_4_1_2_quoted_local_escapes",
     S("RCPT TO:<\"x\\\"@evil.example\\\\>\"@good.example>\r\n"), 0, SMTP_CMD_RCPT, "good.example",
     SMTP_PATH_QUOTED_LOCAL, NULL, NULL, NULL, false},
    {"rfc5321_4_1_2_quoted_local_unclosed", S("RCPT TO:<\"a@b@example.com>\r\n"), -1, SMTP_CMD_RCPT,
     NULL, 0, NULL, NULL, "501 5.1.3", false},
    {"rfc5321_4_1_2_two_ats", S("RCPT TO:<a@b@example.com>\r\n"), -1, SMTP_CMD_RCPT, NULL, 0, NULL,
     NULL, "501 5.1.3", false},
    {"rfc5321_4_1_2_domain_trailing_dot", S("RCPT TO:<a@example.com.>\r\n"), -1, SMTP_CMD_RCPT,
     NULL, 0, NULL, NULL, "501 5.1.2", false},
    {"rfc5321_4_1_2_domain_empty_label", S("RCPT TO:<a@example..com>\r\n"), -1, SMTP_CMD_RCPT, NULL,
     0, NULL, NULL, "501 5.1.2", false},
    {"rfc5321_4_1_2_domain_hyphen_start", S("RCPT TO:<a@-example.com>\r\n"), -1, SMTP_CMD_RCPT,
     NULL, 0, NULL, NULL, "501 5.1.2", false},
    {"rfc5321_4_1_2_domain_underscore", S("RCPT TO:<a@ex_ample.com>\r\n"), -1, SMTP_CMD_RCPT, NULL,
     0, NULL, NULL, "501 5.1.3", false},
    {"rfc1035_label_too_long",
     S("RCPT TO:<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example>\r\n"),
     -1, SMTP_CMD_RCPT, NULL, 0, NULL, NULL, "501 5.1.2", false},
    {"rfc5321_4_1_3_addr_literal_v4", S("RCPT TO:<a@[10.0.0.1]>\r\n"), 0, SMTP_CMD_RCPT, "",
     SMTP_PATH_ADDR_LITERAL, "a@[10.0.0.1]", NULL, NULL, false},
    {"rfc5321_4_1_3_addr_literal_v6", S("RCPT TO:<a@[IPv6:2001:db8::1]>\r\n"), 0, SMTP_CMD_RCPT, "",
     SMTP_PATH_ADDR_LITERAL, "a@[IPv6:2001:db8::1]", NULL, NULL, false},
    {"rfc5321_4_1_3_addr_literal_empty", S("RCPT TO:<a@[]>\r\n"), -1, SMTP_CMD_RCPT, NULL, 0, NULL,
     NULL, "501 5.1.3", false},
    {"rfc5321_4_1_3_addr_literal_unclosed", S("RCPT TO:<a@[10.0.0.1>\r\n"), -1, SMTP_CMD_RCPT, NULL,
     0, NULL, NULL, "501 5.1.3", false},

    /* RFC 6531 section 3.3: UTF-8 addresses; the domain goes to A-labels (RFC 5890). */
    {"rfc6531_3_3_idn_recipient", S("RCPT TO:<user@bücher.example>\r\n"), 0, SMTP_CMD_RCPT,
     "xn--bcher-kva.example", SMTP_PATH_UTF8, "user@bücher.example", NULL, NULL, false},
    {"rfc6531_3_3_idn_recipient_upper", S("RCPT TO:<user@BÜCHER.Example>\r\n"), 0, SMTP_CMD_RCPT,
     "xn--bcher-kva.example", SMTP_PATH_UTF8, NULL, NULL, NULL, false},
    {"rfc6531_3_3_utf8_local_part", S("MAIL FROM:<jürgen@example.de> SMTPUTF8\r\n"), 0,
     SMTP_CMD_MAIL, "example.de", SMTP_PATH_UTF8, "jürgen@example.de", "SMTPUTF8", NULL, false},
    {"rfc6531_3_3_alabel_kept", S("RCPT TO:<u@XN--BCHER-KVA.example>\r\n"), 0, SMTP_CMD_RCPT,
     "xn--bcher-kva.example", 0, NULL, NULL, NULL, false},
    {"rfc5890_invalid_utf8_domain", S("RCPT TO:<u@b\xff\xfe.example>\r\n"), -1, SMTP_CMD_RCPT, NULL,
     0, NULL, NULL, "501 5.1.2", false},

    /* RFC 3030 section 2: BDAT chunk-size [LAST]. */
    {"rfc3030_2_bdat", S("BDAT 1000\r\n"), 0, SMTP_CMD_BDAT, NULL, 0, NULL, NULL, NULL, false},
    {"rfc3030_2_bdat_last", S("BDAT 0 LAST\r\n"), 0, SMTP_CMD_BDAT, NULL, 0, NULL, NULL, NULL,
     false},
    {"rfc3030_2_bdat_max", S("BDAT 2147483648 last\r\n"), 0, SMTP_CMD_BDAT, NULL, 0, NULL, NULL,
     NULL, false},
    {"rfc3030_2_bdat_too_big", S("BDAT 2147483649\r\n"), -1, SMTP_CMD_BDAT, NULL, 0, NULL, NULL,
     "552 5.3.4", false},
    {"rfc3030_2_bdat_overflow", S("BDAT 99999999999999999999999999\r\n"), -1, SMTP_CMD_BDAT, NULL,
     0, NULL, NULL, "552 5.3.4", false},
    {"rfc3030_2_bdat_not_number", S("BDAT x\r\n"), -1, SMTP_CMD_BDAT, NULL, 0, NULL, NULL,
     "501 5.5.4", false},
    {"rfc3030_2_bdat_negative", S("BDAT -1\r\n"), -1, SMTP_CMD_BDAT, NULL, 0, NULL, NULL,
     "501 5.5.4", false},
    {"rfc3030_2_bdat_bad_marker", S("BDAT 10 FIRST\r\n"), -1, SMTP_CMD_BDAT, NULL, 0, NULL, NULL,
     "501 5.5.4", false},
    {"rfc3030_2_bdat_no_size", S("BDAT\r\n"), -1, SMTP_CMD_BDAT, NULL, 0, NULL, NULL, "501 5.5.4",
     false},
};

static void
run_case(void **state)
{
	const struct cmd_case *c = *state;
	struct smtp_cmd cmd;
	int rc = smtp_cmd_parse(c->line, c->len, &cmd);

	if (c->rc == -1) {
		assert_int_equal(rc, -1);
		assert_non_null(cmd.error);
		assert_true(strncmp(cmd.error, c->error, strlen(c->error)) == 0);
		assert_int_equal(cmd.error_close, c->close);
		if (c->id != SMTP_CMD_UNKNOWN)
			assert_int_equal(cmd.id, c->id);
		return;
	}
	if (rc != 0)
		fail_msg("%s: %s", c->name, cmd.error);
	assert_null(cmd.error);
	assert_int_equal(cmd.id, c->id);
	if (c->domain != NULL)
		assert_string_equal(cmd.domain, c->domain);
	if (c->id == SMTP_CMD_MAIL || c->id == SMTP_CMD_RCPT)
		assert_int_equal(cmd.path_flags, c->path_flags);
	if (c->mailbox != NULL) {
		assert_int_equal(cmd.mailbox_len, strlen(c->mailbox));
		assert_memory_equal(cmd.mailbox, c->mailbox, cmd.mailbox_len);
	}
	if (c->params != NULL) {
		assert_int_equal(cmd.params_len, strlen(c->params));
		assert_memory_equal(cmd.params, c->params, cmd.params_len);
	} else {
		assert_null(cmd.params);
		assert_int_equal(cmd.params_len, 0);
	}
}

/* BDAT values and the LAST marker. */
static void
rfc3030_2_bdat_values(void **state)
{
	struct smtp_cmd cmd;

	(void)state;
	assert_int_equal(smtp_cmd_parse(S("BDAT 1000\r\n"), &cmd), 0);
	assert_int_equal(cmd.bdat_size, 1000);
	assert_false(cmd.bdat_last);
	assert_int_equal(smtp_cmd_parse(S("bdat 2147483648 LAST\r\n"), &cmd), 0);
	assert_int_equal(cmd.bdat_size, UINT64_C(2147483648));
	assert_true(cmd.bdat_last);
	assert_int_equal(smtp_cmd_parse(S("BDAT 0 LAST\r\n"), &cmd), 0);
	assert_int_equal(cmd.bdat_size, 0);
	assert_true(cmd.bdat_last);
}

/* RFC 5321 section 4.5.3.1.4: overlong lines get 500 5.5.6 and a close. */
static void
rfc5321_4_5_3_1_4_line_too_long(void **state)
{
	static char line[SMTP_CMD_LINE_MAX + 2];
	struct smtp_cmd cmd;

	(void)state;
	memset(line, 'a', sizeof(line));
	memcpy(line, "NOOP ", 5);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	assert_int_equal(smtp_cmd_parse(line, sizeof(line), &cmd), -1);
	assert_string_equal(cmd.error, "500 5.5.6 Line too long");
	assert_true(cmd.error_close);
	/* Exactly at the limit is fine. */
	assert_int_equal(smtp_cmd_parse(line + 2, sizeof(line) - 2, &cmd), 0);
	/* A tighter configured bound. */
	assert_int_equal(smtp_cmd_parse_max(S("NOOP 123456\r\n"), 12, &cmd), -1);
	assert_string_equal(cmd.error, SMTP_ERR_LINE_TOO_LONG);
	assert_int_equal(smtp_cmd_parse_max(S("NOOP 123456\r\n"), 13, &cmd), 0);
}

/* RFC 2920 section 3.1: pipelined commands are split into lines and parse on their own. */
static void
rfc2920_3_1_pipelined(void **state)
{
	static const char in[] = "MAIL FROM:<a@one.example>\r\nRCPT TO:<b@Two.example>\r\n"
	                         "RCPT TO:<c@bücher.example>\r\nDATA\r\nRSET";
	static const enum smtp_cmd_id want_id[] = {SMTP_CMD_MAIL, SMTP_CMD_RCPT, SMTP_CMD_RCPT,
	                                           SMTP_CMD_DATA};
	static const char *const want_dom[] = {"one.example", "two.example",
	                                       "xn--bcher-kva.example", NULL};
	size_t pos = 0, n = 0, len = sizeof(in) - 1;
	long l;

	(void)state;
	while ((l = smtp_line_scan(in + pos, len - pos, SMTP_CMD_LINE_MAX)) > 0) {
		struct smtp_cmd cmd;

		assert_true(n < 4);
		assert_int_equal(smtp_cmd_parse(in + pos, (size_t)l, &cmd), 0);
		assert_int_equal(cmd.id, want_id[n]);
		if (want_dom[n] != NULL)
			assert_string_equal(cmd.domain, want_dom[n]);
		else
			assert_string_equal(cmd.domain, "");
		assert_int_equal(cmd.flags & SMTP_CMDF_GROUP_END,
		                 want_id[n] == SMTP_CMD_DATA ? SMTP_CMDF_GROUP_END : 0);
		pos += (size_t)l;
		n++;
	}
	assert_int_equal(n, 4);
	/* "RSET" has no LF yet: more input needed. */
	assert_int_equal(l, 0);
	assert_int_equal(len - pos, 4);
	/* Without a LF within the bound: too long. */
	assert_int_equal(smtp_line_scan("RSETRSET", 8, 8), -1);
	assert_int_equal(smtp_line_scan("RSET\r\n", 6, 6), 6);
}

/* The verb table and names. */
static void
rfc5321_4_1_verb_table(void **state)
{
	const struct smtp_verb *v;

	(void)state;
	v = smtp_verb_lookup("starttls", 8);
	assert_non_null(v);
	assert_int_equal(v->id, SMTP_CMD_STARTTLS);
	assert_true(v->flags & SMTP_CMDF_ARG_NONE);
	assert_null(smtp_verb_lookup("STARTTL", 7));
	assert_null(smtp_verb_lookup("", 0));
	assert_string_equal(smtp_cmd_name(SMTP_CMD_RCPT), "RCPT");
	assert_string_equal(smtp_cmd_name(SMTP_CMD_UNKNOWN), "UNKNOWN");
	assert_string_equal(smtp_cmd_name(SMTP_CMD_MAX), "UNKNOWN");
}

/* ESMTP parameters (RFC 5321 section 4.1.2 Mail-parameters). */
static void
rfc5321_4_1_2_params(void **state)
{
	static const char p[] = "SIZE=1000 BODY=8BITMIME  SMTPUTF8";
	const char *v;
	size_t vlen;

	(void)state;
	assert_int_equal(smtp_param_get(p, sizeof(p) - 1, "size", &v, &vlen), 1);
	assert_int_equal(vlen, 4);
	assert_memory_equal(v, "1000", 4);
	assert_int_equal(smtp_param_get(p, sizeof(p) - 1, "BODY", &v, &vlen), 1);
	assert_memory_equal(v, "8BITMIME", 8);
	assert_int_equal(smtp_param_get(p, sizeof(p) - 1, "SMTPUTF8", &v, &vlen), 1);
	assert_null(v);
	assert_int_equal(vlen, 0);
	assert_int_equal(smtp_param_get(p, sizeof(p) - 1, "SIZ", &v, &vlen), 0);
	assert_int_equal(smtp_param_get("", 0, "SIZE", &v, &vlen), 0);
}

/* The longest domain that fits (253 octets) is kept; one more is refused. */
static void
rfc1035_domain_length(void **state)
{
	char line[400], dom[260];
	struct smtp_cmd cmd;
	size_t i;
	int n;

	(void)state;
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	for (i = 0; i < 253; i++)
		dom[i] = (i == 63 || i == 127 || i == 191) ? '.' : 'a';
	dom[253] = '\0';
	n = snprintf(line, sizeof(line), "RCPT TO:<x@%s>\r\n", dom);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	assert_int_equal(smtp_cmd_parse(line, (size_t)n, &cmd), 0);
	assert_string_equal(cmd.domain, dom);
	n = snprintf(line, sizeof(line), "RCPT TO:<x@%sa>\r\n", dom);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	assert_int_equal(smtp_cmd_parse(line, (size_t)n, &cmd), -1);
	assert_string_equal(cmd.domain, "");
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 7];
	size_t i, n = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tests[n++] = (struct CMUnitTest){.name = cases[i].name,
		                                 .test_func = run_case,
		                                 .initial_state = (void *)&cases[i]};
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc3030_2_bdat_values);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_5_3_1_4_line_too_long);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc2920_3_1_pipelined);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_verb_table);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_2_params);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc1035_domain_length);
	return _cmocka_run_group_tests("smtp_cmd", tests, n, NULL, NULL);
}
