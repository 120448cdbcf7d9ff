// sources: core/netstring.c
/*
 * test_netstring.c - the netstring codec of the socketmap protocol: every
 * prefix of a valid netstring asks for more, pipelined netstrings are
 * taken one at a time, and each malformed or oversized shape is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/netstring.h"

#define LEN(s) (sizeof(s) - 1)

static enum netstring_status
parse(const char *buf, size_t len, size_t max, size_t *dlen, size_t *used, const char **data)
{
	return netstring_parse(buf, len, max, data, dlen, used);
}

static void
valid_cases(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		size_t len;
		const char *data;
		size_t dlen, used;
	} cases[] = {
	    {"empty_data", "0:,", 3, "", 0, 3},
	    {"socketmap_request", "19:postfix example.com,", 23, "postfix example.com", 19, 23},
	    {"data_with_colon_and_comma", "5:a:b,c,", 8, "a:b,c", 5, 8},
	    {"data_with_nul", "3:a\0b,", 6, "a\0b", 3, 6},
	    {"trailing_bytes_are_the_next_one", "1:x,2:", 6, "x", 1, 4},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *data = NULL;
		size_t dlen = 99, used = 99;

		assert_int_equal(parse(cases[i].in, cases[i].len, 1024, &dlen, &used, &data),
		                 NETSTRING_OK);
		assert_int_equal(dlen, cases[i].dlen);
		assert_int_equal(used, cases[i].used);
		if (dlen > 0)
			assert_memory_equal(data, cases[i].data, dlen);
		assert_ptr_equal(data, cases[i].in + (cases[i].used - cases[i].dlen - 1));
	}
}

/* Every proper prefix of a valid netstring is incomplete, never an error. */
static void
every_prefix_wants_more(void **state)
{
	static const char ns[] = "12:QUERY a.test,";
	const char *data = NULL;
	size_t dlen = 0, used = 0;

	(void)state;
	for (size_t n = 0; n < LEN(ns); n++)
		assert_int_equal(parse(ns, n, 1024, &dlen, &used, &data), NETSTRING_MORE);
	assert_int_equal(parse(ns, LEN(ns), 1024, &dlen, &used, &data), NETSTRING_OK);
}

static void
pipelined(void **state)
{
	static const char in[] = "7:postfix,14:postfix a.test,";
	const char *data;
	size_t dlen, used, off = 0;

	(void)state;
	assert_int_equal(parse(in, LEN(in), 1024, &dlen, &used, &data), NETSTRING_OK);
	assert_int_equal(dlen, 7);
	off += used;
	assert_int_equal(parse(in + off, LEN(in) - off, 1024, &dlen, &used, &data), NETSTRING_OK);
	assert_int_equal(dlen, 14);
	assert_memory_equal(data, "postfix a.test", 14);
	off += used;
	assert_int_equal(off, LEN(in));
}

static void
malformed_cases(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		enum netstring_status want;
	} cases[] = {
	    {"leading_zero", "01:x,", NETSTRING_BAD},
	    {"leading_zero_of_zero", "00:,", NETSTRING_BAD},
	    {"no_length", ":x,", NETSTRING_BAD},
	    {"sign", "+1:x,", NETSTRING_BAD},
	    {"space_in_length", " 1:x,", NETSTRING_BAD},
	    {"letter_in_length", "1a:x,", NETSTRING_BAD},
	    {"missing_comma", "1:xy", NETSTRING_BAD},
	    {"newline_for_comma", "1:x\n", NETSTRING_BAD},
	    {"http_request", "GET / HTTP/1.0\r\n", NETSTRING_BAD},
	    {"over_max", "1025:", NETSTRING_TOOBIG},
	    {"over_max_before_colon", "99999", NETSTRING_TOOBIG},
	    {"huge", "99999999999999999999:", NETSTRING_TOOBIG},
	};
	const char *data;
	size_t dlen, used;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum netstring_status got =
		    parse(cases[i].in, strlen(cases[i].in), 1024, &dlen, &used, &data);

		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, got, cases[i].want);
	}
}

static void
max_is_inclusive(void **state)
{
	char buf[64];
	const char *data;
	size_t dlen, used;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "10:", 3);
	buf[13] = ',';
	assert_int_equal(parse(buf, 14, 10, &dlen, &used, &data), NETSTRING_OK);
	assert_int_equal(parse(buf, 14, 9, &dlen, &used, &data), NETSTRING_TOOBIG);
}

static void
encode_cases(void **state)
{
	char out[32];
	const char *data;
	size_t dlen, used;

	(void)state;
	assert_int_equal(netstring_encode(out, sizeof(out), "NOTFOUND ", 9), 12);
	assert_memory_equal(out, "9:NOTFOUND ,", 12);
	assert_int_equal(netstring_encode(out, sizeof(out), "", 0), 3);
	assert_memory_equal(out, "0:,", 3);
	assert_int_equal(netstring_size(100000), 6 + 1 + 100000 + 1);
	/* exactly fits, one short */
	assert_int_equal(netstring_encode(out, 14, "0123456789", 10), 14);
	assert_int_equal(netstring_encode(out, 13, "0123456789", 10), 0);
	/* what is written parses back */
	assert_int_equal(netstring_encode(out, sizeof(out), "OK dane-only", 12), 16);
	assert_int_equal(parse(out, 16, 100, &dlen, &used, &data), NETSTRING_OK);
	assert_int_equal(dlen, 12);
	assert_memory_equal(data, "OK dane-only", 12);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_cases),      cmocka_unit_test(every_prefix_wants_more),
	    cmocka_unit_test(pipelined),        cmocka_unit_test(malformed_cases),
	    cmocka_unit_test(max_is_inclusive), cmocka_unit_test(encode_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
