// sources: policy/tlsrpt_mail.c policy/tlsrpt_gzip.c
/*
 * test_tlsrpt_mail.c - the report file name of RFC 8460 section 5.1 and
 * the report mail of section 5.3: the message is taken apart again (CRLF
 * only, each header once with its value, the MIME structure, the
 * boundary absent from the content, the base64 decoding to the gzip and
 * the gzip to the report), and every header value from configuration or
 * DNS that could break a header is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/tlsrpt_gzip.h"
#include "policy/tlsrpt_mail.h"

#define DAY_2026_12_03 1796256000LL /* 2026-12-03T00:00:00Z, a Thursday */
#define FILENAME       "mail.sender.example!company-y.example!1796256000!1796342399.json.gz"

static const char report[] = "{\"organization-name\":\"Company-X\",\"policies\":[]}";

/* --- file names (section 5.1) ----------------------------------------------- */

static void
rfc8460_5_1_filename(void **state)
{
	char f[TLSRPT_FILENAME_MAX];

	(void)state;
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "mail.sender.example", "company-y.example",
	                                 DAY_2026_12_03, DAY_2026_12_03 + 86399, NULL),
	                 (int)strlen(FILENAME));
	assert_string_equal(f, FILENAME);
	assert_true(tlsrpt_filename(f, sizeof(f), "mail.sender.example", "company-y.example",
	                            DAY_2026_12_03, DAY_2026_12_03 + 86399, "001") > 0);
	assert_string_equal(
	    f, "mail.sender.example!company-y.example!1796256000!1796342399!001.json.gz");
	/* The RFC's own example. */
	assert_true(tlsrpt_filename(f, sizeof(f), "mail.sender.example", "example.com", 1013662812,
	                            1013749130, "") > 0);
	assert_string_equal(f, "mail.sender.example!example.com!1013662812!1013749130.json.gz");
}

static void
rfc8460_5_1_filename_refusals(void **state)
{
	char f[TLSRPT_FILENAME_MAX];

	(void)state;
	/* unique-id = 1*(ALPHA / DIGIT) */
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a.example", "b.example", 1, 2, "a!b"), -1);
	assert_int_equal(f[0], '\0');
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a.example", "b.example", 1, 2, "a.b"), -1);
	/* Domains: no '!', '/', '"', spaces, CR/LF. */
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a!x.example", "b.example", 1, 2, NULL), -1);
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a.example", "../b", 1, 2, NULL), -1);
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a.example", "b\".example", 1, 2, NULL), -1);
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a.example\r\n", "b.example", 1, 2, NULL),
	                 -1);
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "", "b.example", 1, 2, NULL), -1);
	/* Timestamps: 1*DIGIT, end not before begin. */
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a.example", "b.example", -1, 2, NULL), -1);
	assert_int_equal(tlsrpt_filename(f, sizeof(f), "a.example", "b.example", 3, 2, NULL), -1);
	/* Too small a buffer. */
	assert_int_equal(tlsrpt_filename(f, 10, "a.example", "b.example", 1, 2, NULL), -1);
	assert_int_equal(f[0], '\0');
}

/* --- the message (section 5.3) ------------------------------------------------ */

static struct tlsrpt_mail_params
params(const uint8_t *gz, size_t gzlen)
{
	struct tlsrpt_mail_params p = {
	    .from = "tlsrpt@mail.sender.example",
	    .to = "tls-reports@company-y.example",
	    .policy_domain = "company-y.example",
	    .submitter = "mail.sender.example",
	    .report_id = "20261203.company-y.example@mail.sender.example",
	    .filename = FILENAME,
	    .unique = "a1b2c3d4e5f6",
	    .now = DAY_2026_12_03 + 86400 + 3723, /* Fri, 04 Dec 2026 01:02:03 */
	    .gz = gz,
	    .gzlen = gzlen,
	};
	return p;
}

/* The unfolded value of header name in the header block hdrs; asserts it occurs exactly once. */
static char *
header_once(const char *hdrs, const char *name)
{
	size_t nl = strlen(name);
	const char *line = hdrs, *found = NULL;
	char *v;
	size_t o = 0;

	while (*line != '\0') {
		const char *eol = strstr(line, "\r\n");

		assert_non_null(eol);
		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			if (found != NULL)
				fail_msg("header %s twice", name);
			found = line + nl + 1;
		}
		line = eol + 2;
	}
	if (found == NULL)
		fail_msg("header %s missing", name);
	v = malloc(strlen(found) + 1);
	assert_non_null(v);
	/* Unfold: CRLF followed by WSP continues the header. */
	for (const char *s = found; *s != '\0'; s++) {
		if (s[0] == '\r' && s[1] == '\n') {
			if (s[2] != ' ' && s[2] != '\t')
				break;
			s++;
			continue;
		}
		v[o++] = *s;
	}
	v[o] = '\0';
	/* Drop the single space after the colon. */
	if (v[0] == ' ')
		memmove(v, v + 1, o);
	return v;
}

static void
assert_header(const char *hdrs, const char *name, const char *want)
{
	char *v = header_once(hdrs, name);

	if (strcmp(v, want) != 0)
		fail_msg("%s: \"%s\", want \"%s\"", name, v, want);
	free(v);
}

static int
b64_val(char c)
{
	const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c != '\0' ? strchr(tab, c) : NULL;

	return p == NULL ? -1 : (int)(p - tab);
}

/* Decode base64 lines of at most 76 characters each, ended by CRLF. */
static size_t
b64_decode(const char *s, size_t n, uint8_t *out)
{
	size_t o = 0, col = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < n && s[i + 1] == '\n');
			assert_true(col <= 76);
			col = 0;
			i++;
			continue;
		}
		col++;
		if (s[i] == '=')
			continue;
		assert_true(b64_val(s[i]) >= 0);
		acc = (acc << 6) | (uint32_t)b64_val(s[i]);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return o;
}

static void
rfc8460_5_3_message_structure(void **state)
{
	static uint8_t big[100000];
	uint8_t *gz, *decoded, *json;
	size_t gzlen, jsonlen, msglen, n;
	struct tlsrpt_mail_params p;
	char *msg, *body, *hdrs, *ct, boundary[128], delim[140], err[160];
	const char *s, *part2, *b64, *end;
	uint32_t x = 7;

	(void)state;
	/* An incompressible report, so the attachment spans many lines. */
	memcpy(big, report, sizeof(report) - 1);
	for (size_t i = sizeof(report) - 1; i < sizeof(big); i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)('a' + (x >> 24) % 26);
	}
	assert_int_equal(tlsrpt_gzip(big, sizeof(big), &gz, &gzlen), 0);
	p = params(gz, gzlen);
	assert_int_equal(tlsrpt_mail_build(&p, &msg, &msglen, err, sizeof(err)), 0);
	assert_int_equal(strlen(msg), msglen);

	/* CRLF only: no bare CR, no bare LF, no line over 998 octets (RFC 5322 2.1.1). */
	for (size_t i = 0, col = 0; i < msglen; i++, col++) {
		if (msg[i] == '\n')
			assert_true(i > 0 && msg[i - 1] == '\r');
		if (msg[i] == '\r')
			assert_true(i + 1 < msglen && msg[i + 1] == '\n');
		if (msg[i] == '\n')
			col = 0;
		assert_true(col <= 998);
		assert_true((unsigned char)msg[i] < 0x80);
	}
	assert_memory_equal(msg + msglen - 2, "\r\n", 2);

	/* Headers, each once, with their values. */
	body = strstr(msg, "\r\n\r\n");
	assert_non_null(body);
	hdrs = strndup(msg, (size_t)(body - msg) + 2);
	body += 4;
	assert_header(hdrs, "From", "tlsrpt@mail.sender.example");
	assert_header(hdrs, "To", "tls-reports@company-y.example");
	assert_header(hdrs, "Date", "Fri, 04 Dec 2026 01:02:03 +0000");
	assert_header(hdrs, "Message-ID", "<a1b2c3d4e5f6@mail.sender.example>");
	assert_header(hdrs, "Subject",
	              "Report Domain: company-y.example Submitter: mail.sender.example "
	              "Report-ID: <20261203.company-y.example@mail.sender.example>");
	assert_header(hdrs, "TLS-Report-Domain", "company-y.example");
	assert_header(hdrs, "TLS-Report-Submitter", "mail.sender.example");
	assert_header(hdrs, "TLS-Required", "No");
	assert_header(hdrs, "Auto-Submitted", "auto-generated");
	assert_header(hdrs, "MIME-Version", "1.0");
	ct = header_once(hdrs, "Content-Type");
	assert_non_null(strstr(ct, "multipart/report;"));
	assert_non_null(strstr(ct, "report-type=\"tlsrpt\""));
	s = strstr(ct, "boundary=\"");
	assert_non_null(s);
	s += strlen("boundary=\"");
	n = strcspn(s, "\"");
	assert_true(n > 0 && n <= 70); /* RFC 2046 section 5.1.1 */
	memcpy(boundary, s, n);
	boundary[n] = '\0';
	free(ct);

	/* The boundary occurs only as the three delimiter lines. */
	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	n = 0;
	for (s = strstr(msg, boundary); s != NULL; s = strstr(s + 1, boundary))
		n++;
	assert_int_equal(n, 1 + 3); /* Content-Type, two parts, the close */
	snprintf(delim, sizeof(delim), "--%s--\r\n", boundary);
	assert_string_equal(msg + msglen - strlen(delim), delim);

	/* Part 1: text/plain. */
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", boundary);
	s = strstr(body, delim);
	assert_non_null(s);
	s += strlen(delim);
	assert_memory_equal(s, "Content-Type: text/plain", 24);
	/* Part 2: the report. */
	part2 = strstr(s, delim);
	assert_non_null(part2);
	part2 += strlen(delim);
	b64 = strstr(part2, "\r\n\r\n");
	assert_non_null(b64);
	{
		char *ph = strndup(part2, (size_t)(b64 - part2) + 2);

		assert_header(ph, "Content-Type", "application/tlsrpt+gzip");
		assert_header(ph, "Content-Transfer-Encoding", "base64");
		assert_header(ph, "Content-Disposition", "attachment; filename=\"" FILENAME "\"");
		free(ph);
	}
	b64 += 4;
	snprintf(delim, sizeof(delim), "--%s--\r\n", boundary);
	end = msg + msglen - strlen(delim);
	/* 76-character lines, the last one shorter. */
	assert_int_equal(strcspn(b64, "\r"), 76);
	decoded = malloc(gzlen + 4);
	assert_non_null(decoded);
	n = b64_decode(b64, (size_t)(end - b64), decoded);
	assert_int_equal(n, gzlen);
	assert_memory_equal(decoded, gz, gzlen);
	/* And the gzip is the report. */
	assert_int_equal(tlsrpt_gunzip(decoded, n, sizeof(big), &json, &jsonlen), 0);
	assert_int_equal(jsonlen, sizeof(big));
	assert_memory_equal(json, big, jsonlen);

	free(json);
	free(decoded);
	free(hdrs);
	free(msg);
	free(gz);
}

/* base64 tails: 1, 2 and 3 octets of the last group, and exactly one full line. */
static void
rfc2045_6_8_base64_tails(void **state)
{
	static const uint8_t data[57] = {0xff, 0x00, 0x7f, 0x80, 0x01};
	static const char *const want[] = {"/w==", "/wA=", "/wB/"};
	struct tlsrpt_mail_params p;
	char *msg, *s;
	size_t len;

	(void)state;
	for (size_t n = 1; n <= 3; n++) {
		p = params(data, n);
		assert_int_equal(tlsrpt_mail_build(&p, &msg, &len, NULL, 0), 0);
		s = strstr(msg, "filename=\"" FILENAME "\"\r\n\r\n");
		assert_non_null(s);
		s += strlen("filename=\"" FILENAME "\"\r\n\r\n");
		assert_memory_equal(s, want[n - 1], 4);
		assert_memory_equal(s + 4, "\r\n--", 4);
		free(msg);
	}
	/* 57 octets are 76 characters: one line, one CRLF. */
	p = params(data, sizeof(data));
	assert_int_equal(tlsrpt_mail_build(&p, &msg, &len, NULL, 0), 0);
	s = strstr(msg, "filename=\"" FILENAME "\"\r\n\r\n");
	s += strlen("filename=\"" FILENAME "\"\r\n\r\n");
	assert_int_equal(strcspn(s, "\r"), 76);
	assert_memory_equal(s + 76, "\r\n--", 4);
	free(msg);
}

struct bad_case {
	const char *name;
	size_t field; /* offset of the const char * member to spoil */
	const char *value;
	const char *reason;
};

#define F(m) offsetof(struct tlsrpt_mail_params, m)

static const struct bad_case bad_cases[] = {
    {"header_from_crlf", F(from), "a@x.example\r\nBcc: victim@example.org", "From"},
    {"header_from_lf", F(from), "a@x.example\nBcc: v@example.org", "From"},
    {"header_from_display_name", F(from), "Reports <a@x.example>", "From"},
    {"header_from_no_domain", F(from), "a@", "From"},
    {"header_from_null", F(from), NULL, "From"},
    {"header_to_space", F(to), "a @x.example", "To"},
    {"header_to_two_addresses", F(to), "a@x.example,b@y.example", "To"},
    {"header_to_non_ascii", F(to), "r\xc3\xa9@x.example", "To"},
    {"header_to_nul_tail", F(to), "a@x.example\x7f", "To"},
    {"header_domain_cr", F(policy_domain), "y.example\r", "TLS-Report-Domain"},
    {"header_domain_space", F(policy_domain), "y.example x", "TLS-Report-Domain"},
    {"header_submitter_tab", F(submitter), "x.example\t", "TLS-Report-Submitter"},
    {"header_submitter_empty", F(submitter), "", "TLS-Report-Submitter"},
    {"subject_report_id_angle", F(report_id), "a>b@x.example", "Report-ID"},
    {"subject_report_id_crlf", F(report_id), "a@x.example\r\nBcc: v@y", "Report-ID"},
    {"subject_report_id_no_at", F(report_id), "abc", "Report-ID"},
    {"filename_quote", F(filename), "a\".json.gz", "file name"},
    {"filename_crlf", F(filename), "a\r\n.json.gz", "file name"},
    {"filename_suffix", F(filename), "a!b!1!2.json", "file name"},
    {"boundary_unique_short", F(unique), "abc", "unique"},
    {"boundary_unique_dash", F(unique), "abcdefgh-ijk", "unique"},
    {"boundary_unique_long", F(unique),
     "a123456789012345678901234567890123456789012345678901234567890", "unique"},
};

static void
run_bad_case(void **state)
{
	const struct bad_case *c = *state;
	uint8_t gz[4] = {1, 2, 3, 4};
	struct tlsrpt_mail_params p = params(gz, sizeof(gz));
	char *msg = (char *)1, err[160];
	size_t len = 1;

	memcpy((char *)&p + c->field, &c->value, sizeof(c->value));
	if (tlsrpt_mail_build(&p, &msg, &len, err, sizeof(err)) != -1)
		fail_msg("%s: built", c->name);
	assert_null(msg);
	assert_int_equal(len, 0);
	if (strstr(err, c->reason) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err, c->reason);
}

static void
bounds_and_times(void **state)
{
	uint8_t gz[4] = {1, 2, 3, 4};
	struct tlsrpt_mail_params p = params(gz, sizeof(gz));
	char *msg, err[160];
	size_t len;

	(void)state;
	p.gzlen = 0;
	assert_int_equal(tlsrpt_mail_build(&p, &msg, &len, err, sizeof(err)), -1);
	p.gz = NULL;
	p.gzlen = 4;
	assert_int_equal(tlsrpt_mail_build(&p, &msg, &len, err, sizeof(err)), -1);
	/* An attachment whose base64 would pass the bound: refused before any allocation. */
	p.gz = gz;
	p.gzlen = (size_t)TLSRPT_MAIL_MAX / 4 * 3;
	assert_int_equal(tlsrpt_mail_build(&p, &msg, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than"));
	p = params(gz, sizeof(gz));
	p.now = 253402300800LL;
	assert_int_equal(tlsrpt_mail_build(&p, &msg, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Date"));
	assert_int_equal(tlsrpt_mail_build(NULL, &msg, &len, err, sizeof(err)), -1);
	/* The longest values still build. */
	{
		char dom[254], from[255], id[TLSRPT_REPORT_ID_MAX], fn[TLSRPT_FILENAME_MAX];

		for (int i = 0; i < 253; i++)
			dom[i] = (i % 64 == 63) ? '.' : 'a';
		dom[253] = '\0';
		memset(from, 'b', 64);
		from[64] = '@';
		memcpy(from + 65, dom, 189);
		from[254] = '\0';
		if (from[253] == '.')
			from[253] = 'c';
		snprintf(id, sizeof(id), "20261203.abcdefghijklmnopqrstuvwxyz012345.%s@%s", dom,
		         dom);
		assert_true(tlsrpt_filename(fn, sizeof(fn), dom, dom, DAY_2026_12_03,
		                            DAY_2026_12_03 + 86399,
		                            "abcdefghijklmnopqrstuvwxyz012345") > 0);
		p.from = from;
		p.to = from;
		p.policy_domain = dom;
		p.submitter = dom;
		p.report_id = id;
		p.filename = fn;
		p.unique = "a12345678901234567890123456789012345678901234567890123456789";
		p.now = DAY_2026_12_03;
		if (tlsrpt_mail_build(&p, &msg, &len, err, sizeof(err)) != 0)
			fail_msg("longest values: %s", err);
		free(msg);
	}
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(bad_cases) / sizeof(bad_cases[0]) + 8];
	const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(rfc8460_5_1_filename),
	    cmocka_unit_test(rfc8460_5_1_filename_refusals),
	    cmocka_unit_test(rfc8460_5_3_message_structure),
	    cmocka_unit_test(rfc2045_6_8_base64_tails),
	    cmocka_unit_test(bounds_and_times),
	};
	size_t n = 0;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct CMUnitTest t = {.name = bad_cases[i].name,
		                       .test_func = run_bad_case,
		                       .initial_state = (void *)&bad_cases[i]};
		tests[n++] = t;
	}
	return _cmocka_run_group_tests("tlsrpt_mail", tests, n, NULL, NULL);
}
