// sources: proxy/smtp_data.c
/*
 * test_smtp_data.c - the DATA scanner: the end of data, the smuggling
 * endings it must refuse, and independence from chunk boundaries.
 *
 * Every case is run fed in one piece, octet by octet, and split at every
 * single position and every pair of positions; all must give the same
 * verdict at the same offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/smtp_data.h"

#define S(x) x, sizeof(x) - 1

struct data_case {
	const char *name;
	const char *in;
	size_t len;
	int want;            /* SMTP_DATA_* */
	uint64_t want_pos;   /* END: octets up to the final LF; BAD: offending octet */
	const char *err_sub; /* BAD: a part of the reply text */
};

/* Bodies with a smuggled second message after each bogus ending (SMTP smuggling, 2023). */
#define SMUGGLED "MAIL FROM:<a@evil.example>\r\nRCPT TO:<b@victim.example>\r\nDATA\r\nx\r\n.\r\n"

static const struct data_case cases[] = {
    /* RFC 5321 section 4.1.1.4: the data ends with CRLF "." CRLF. */
    {"rfc5321_4_1_1_4_end", S("Subject: t\r\n\r\nbody\r\n.\r\n"), SMTP_DATA_END, 23, NULL},
    {"rfc5321_4_1_1_4_empty_message", S(".\r\n"), SMTP_DATA_END, 3, NULL},
    {"rfc5321_4_1_1_4_one_empty_line", S("\r\n.\r\n"), SMTP_DATA_END, 5, NULL},
    {"rfc5321_4_1_1_4_pipelined_after_end", S("x\r\n.\r\nQUIT\r\n"), SMTP_DATA_END, 6, NULL},
    {"rfc5321_4_1_1_4_not_yet_ended", S("x\r\n.\r"), SMTP_DATA_MORE, 0, NULL},
    {"rfc5321_4_1_1_4_dot_inside_line", S("a.\r\nb .\r\n"), SMTP_DATA_MORE, 0, NULL},
    /* RFC 5321 section 4.5.2: a stuffed line is data, never the end. */
    {"rfc5321_4_5_2_dot_stuffed", S("..\r\n...\r\n..x\r\n"), SMTP_DATA_MORE, 0, NULL},
    {"rfc5321_4_5_2_dot_stuffed_then_end", S("..\r\n.\r\n"), SMTP_DATA_END, 7, NULL},
    {"rfc5321_4_5_2_dot_text_line", S(".x\r\n.\r\n"), SMTP_DATA_END, 7, NULL},
    /* RFC 5321 section 2.3.8 and smuggling: every other ending is refused. */
    {"smuggling_lf_dot_lf", S("x\n.\n" SMUGGLED), SMTP_DATA_BAD, 1, "bare LF"},
    {"smuggling_cr_dot_cr", S("x\r.\r" SMUGGLED), SMTP_DATA_BAD, 1, "bare CR"},
    {"smuggling_cr_dot_lf", S("x\r.\n" SMUGGLED), SMTP_DATA_BAD, 1, "bare CR"},
    {"smuggling_lf_dot_cr", S("x\n.\r" SMUGGLED), SMTP_DATA_BAD, 1, "bare LF"},
    {"smuggling_lf_dot_crlf", S("x\n.\r\n" SMUGGLED), SMTP_DATA_BAD, 1, "bare LF"},
    {"smuggling_crlf_dot_lf", S("x\r\n.\n" SMUGGLED), SMTP_DATA_BAD, 4, "bare LF"},
    {"smuggling_cr_dot_crlf", S("x\r.\r\n" SMUGGLED), SMTP_DATA_BAD, 1, "bare CR"},
    {"smuggling_crlf_dot_cr", S("x\r\n.\rX" SMUGGLED), SMTP_DATA_BAD, 4, "bare CR"},
    {"smuggling_crlf_dot_cr_cr", S("x\r\n.\r\r\n" SMUGGLED), SMTP_DATA_BAD, 4, "bare CR"},
    {"smuggling_nul", S("x\r\n\0.\r\n" SMUGGLED), SMTP_DATA_BAD, 3, "NUL"},
    {"smuggling_nul_in_line", S("ab\0c\r\n.\r\n"), SMTP_DATA_BAD, 2, "NUL"},
    {"smuggling_start_lf_dot_lf", S("\n.\n" SMUGGLED), SMTP_DATA_BAD, 0, "bare LF"},
    {"smuggling_start_dot_lf", S(".\n" SMUGGLED), SMTP_DATA_BAD, 1, "bare LF"},
    {"smuggling_start_dot_cr", S(".\rx" SMUGGLED), SMTP_DATA_BAD, 1, "bare CR"},
    {"smuggling_start_cr_dot_cr", S("\r.\r" SMUGGLED), SMTP_DATA_BAD, 0, "bare CR"},
    {"rfc5321_2_3_8_bare_lf_in_text", S("line one\nline two\r\n.\r\n"), SMTP_DATA_BAD, 8,
     "bare LF"},
    {"rfc5321_2_3_8_bare_cr_in_text", S("line one\rline two\r\n.\r\n"), SMTP_DATA_BAD, 8,
     "bare CR"},
    {"rfc5321_2_3_8_cr_cr_lf", S("a\r\r\n.\r\n"), SMTP_DATA_BAD, 1, "bare CR"},
};

/*
 * Feeds c->in cut at the positions in cuts (ascending, inside the input)
 * and returns the verdict; *pos is the stream offset of the end (END) or of
 * the offending octet (BAD). Checks that *consumed agrees with both.
 */
static int
feed_cut(const char *in, size_t len, const size_t *cuts, size_t ncuts, struct smtp_data *d,
         uint64_t *pos)
{
	size_t start = 0, k;

	smtp_data_init(d);
	*pos = 0;
	for (k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t consumed = 99999;
		int rc = smtp_data_feed(d, in + start, end - start, &consumed);

		assert_true(consumed <= end - start);
		if (rc == SMTP_DATA_END) {
			*pos = start + consumed;
			assert_int_equal(*pos, d->octets);
			return rc;
		}
		if (rc == SMTP_DATA_BAD) {
			*pos = d->error_offset;
			/* consumed counts the octets of this chunk before the offender. */
			if (d->error_offset >= start)
				assert_int_equal(start + consumed, d->error_offset);
			else
				assert_int_equal(consumed, 0);
			return rc;
		}
		assert_int_equal(rc, SMTP_DATA_MORE);
		assert_int_equal(consumed, end - start);
		start = end;
	}
	return SMTP_DATA_MORE;
}

static void
check(const struct data_case *c, int rc, uint64_t pos, const struct smtp_data *d)
{
	assert_int_equal(rc, c->want);
	if (rc != SMTP_DATA_MORE)
		assert_int_equal(pos, c->want_pos);
	if (rc == SMTP_DATA_BAD) {
		assert_non_null(d->error);
		assert_true(strncmp(d->error, "554 5.", 6) == 0);
		assert_non_null(strstr(d->error, c->err_sub));
	}
}

static void
run_case(void **state)
{
	const struct data_case *c = *state;
	struct smtp_data d;
	size_t cuts[2] = {0, 0}, i, j, consumed;
	uint64_t pos;
	int rc;

	/* One piece. */
	rc = feed_cut(c->in, c->len, cuts, 0, &d, &pos);
	check(c, rc, pos, &d);

	/* A verdict sticks until the next message. */
	if (rc != SMTP_DATA_MORE) {
		assert_int_equal(smtp_data_feed(&d, "\r\n.\r\n", 5, &consumed), rc);
		assert_int_equal(consumed, 0);
	}

	/* Every single cut. */
	for (i = 1; i < c->len; i++) {
		cuts[0] = i;
		rc = feed_cut(c->in, c->len, cuts, 1, &d, &pos);
		check(c, rc, pos, &d);
	}

	/* Every pair of cuts (covers three-way splits of CRLF.CRLF). */
	for (i = 1; i < c->len; i++) {
		for (j = i; j < c->len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			rc = feed_cut(c->in, c->len, cuts, 2, &d, &pos);
			check(c, rc, pos, &d);
		}
	}

	/* Octet by octet. */
	smtp_data_init(&d);
	rc = SMTP_DATA_MORE;
	for (i = 0; i < c->len && rc == SMTP_DATA_MORE; i++)
		rc = smtp_data_feed(&d, c->in + i, 1, &consumed);
	pos = rc == SMTP_DATA_END ? d.octets : d.error_offset;
	check(c, rc, pos, &d);
}

/* RFC 5321 section 4.5.3.1.6: line lengths are measured without the CRLF. */
static void
rfc5321_4_5_3_1_6_longest_line(void **state)
{
	char buf[2400];
	struct smtp_data d;
	size_t consumed, n = 0;

	(void)state;
	memset(buf, 'a', 1200);
	n = 1200;
	memcpy(buf + n, "\r\nshort\r\n", 9);
	n += 9;
	memset(buf + n, 'b', 998);
	n += 998;
	memcpy(buf + n, "\r\n.\r\n", 5);
	n += 5;

	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, buf, 700, &consumed), SMTP_DATA_MORE);
	assert_int_equal(smtp_data_feed(&d, buf + 700, n - 700, &consumed), SMTP_DATA_END);
	assert_int_equal(consumed, n - 700);
	assert_int_equal(d.longest_line, 1200);
	assert_int_equal(d.long_lines, 1);
	assert_int_equal(d.octets, n);
}

/* A CR at the end of a chunk is reported as pending until its LF arrives. */
static void
rfc5321_2_3_8_cr_pending(void **state)
{
	struct smtp_data d;
	size_t consumed;

	(void)state;
	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, "abc\r", 4, &consumed), SMTP_DATA_MORE);
	assert_true(smtp_data_cr_pending(&d));
	assert_int_equal(smtp_data_feed(&d, "\n.", 2, &consumed), SMTP_DATA_MORE);
	assert_false(smtp_data_cr_pending(&d));
	assert_int_equal(smtp_data_feed(&d, "\r", 1, &consumed), SMTP_DATA_MORE);
	assert_true(smtp_data_cr_pending(&d));
	assert_int_equal(smtp_data_feed(&d, "\nNEXT", 5, &consumed), SMTP_DATA_END);
	assert_int_equal(consumed, 1);
	assert_int_equal(d.octets, 8);
}

/* smtp_data_init starts a fresh message after an error. */
static void
rfc5321_4_1_1_4_init_resets(void **state)
{
	struct smtp_data d;
	size_t consumed;

	(void)state;
	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, "x\n", 2, &consumed), SMTP_DATA_BAD);
	smtp_data_init(&d);
	assert_null(d.error);
	assert_int_equal(smtp_data_feed(&d, ".\r\n", 3, &consumed), SMTP_DATA_END);
	assert_int_equal(consumed, 3);
}

/* An empty chunk changes nothing. */
static void
rfc5321_4_1_1_4_empty_chunk(void **state)
{
	struct smtp_data d;
	size_t consumed = 5;

	(void)state;
	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, "", 0, &consumed), SMTP_DATA_MORE);
	assert_int_equal(consumed, 0);
	assert_int_equal(d.octets, 0);
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 4];
	size_t i, n = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tests[n++] = (struct CMUnitTest){.name = cases[i].name,
		                                 .test_func = run_case,
		                                 .initial_state = (void *)&cases[i]};
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_5_3_1_6_longest_line);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_2_3_8_cr_pending);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_1_4_init_resets);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(rfc5321_4_1_1_4_empty_chunk);
	return _cmocka_run_group_tests("smtp_data", tests, n, NULL, NULL);
}
