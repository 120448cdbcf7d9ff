// sources: proxy/smtp_reply.c core/util.c
/*
 * fuzz_smtp_reply.c - the reply reader on arbitrary input split at each LF,
 * then the EHLO parse and rewrite of every complete reply. The rewritten
 * reply is what the client sees, so it must itself read back as a valid
 * 250 reply with no capability outside the allowlist.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxy/smtp_reply.h"

static struct smtp_reply *reader, *check;

static void
feed_back(const char *out, size_t n, unsigned allow, bool starttls)
{
	struct smtp_ehlo e;
	size_t pos = 0;
	int rc = SMTP_REPLY_MORE;

	smtp_reply_reset(check);
	while (pos < n) {
		const char *lf = memchr(out + pos, '\n', n - pos);
		size_t l;

		if (lf == NULL || rc != SMTP_REPLY_MORE)
			__builtin_trap();
		l = (size_t)(lf - (out + pos)) + 1;
		rc = smtp_reply_feed(check, out + pos, l);
		pos += l;
	}
	if (rc != SMTP_REPLY_DONE || smtp_ehlo_parse(check, &e) != 0)
		__builtin_trap();
	if (e.caps & ~(allow | SMTP_CAP_STARTTLS))
		__builtin_trap();
	if (!!(e.caps & SMTP_CAP_STARTTLS) != starttls)
		__builtin_trap();
}

static void
complete(void)
{
	static const unsigned masks[] = {0, SMTP_CAP_PIPELINING | SMTP_CAP_SIZE, ~0u};
	struct smtp_ehlo e;
	char out[SMTP_REPLY_MAX_SIZE + 64];
	size_t i, n, len;

	if (smtp_reply_code(reader) < 200 || smtp_reply_code(reader) > 599)
		__builtin_trap();
	smtp_reply_raw(reader, &len);
	if (len == 0 || len > SMTP_REPLY_MAX_SIZE || smtp_reply_nlines(reader) == 0)
		__builtin_trap();
	for (i = 0; i < smtp_reply_nlines(reader); i++) {
		if (smtp_reply_line(reader, i, &n) == NULL)
			__builtin_trap();
		smtp_cap_looks_mangled_starttls(smtp_reply_line(reader, i, &n), n);
	}
	if (smtp_ehlo_parse(reader, &e) < 0) {
		if (smtp_reply_code(reader) == 250)
			__builtin_trap();
		return;
	}
	for (i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		int w = smtp_ehlo_rewrite(reader, masks[i], i == 1, out, sizeof(out),
		                          i == 2 ? "proxy.example" : NULL);

		/* The greeting line alone may not fit after the name change. */
		if (w < 0)
			continue;
		if ((size_t)w >= sizeof(out) || out[w] != '\0')
			__builtin_trap();
		feed_back(out, (size_t)w, masks[i], i == 1);
	}
	/* A tiny buffer must fail cleanly. */
	if (smtp_ehlo_rewrite(reader, ~0u, true, out, 8, NULL) != -1)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	size_t pos = 0;

	if (reader == NULL) {
		reader = smtp_reply_new();
		check = smtp_reply_new();
		if (reader == NULL || check == NULL)
			__builtin_trap();
	}
	smtp_reply_reset(reader);
	while (pos < size) {
		const char *lf = memchr(in + pos, '\n', size - pos);
		size_t l = lf ? (size_t)(lf - (in + pos)) + 1 : size - pos;
		int rc = smtp_reply_feed(reader, in + pos, l);

		pos += l;
		if (rc == SMTP_REPLY_DONE) {
			if (!smtp_reply_done(reader))
				__builtin_trap();
			complete();
		} else if (rc == SMTP_REPLY_BAD) {
			if (smtp_reply_error(reader) == NULL)
				__builtin_trap();
			smtp_reply_reset(reader);
		}
	}
	return 0;
}
