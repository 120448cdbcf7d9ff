// sources: proxy/smtp_cmd.c
/*
 * fuzz_smtp_cmd.c - the command line parser on arbitrary input, split into
 * lines the way a session splits pipelined input. Checks what the session
 * relies on: a refusal always carries a 5xx reply, a line with a bare CR,
 * bare LF or NUL is never accepted, and an accepted domain is short, lower
 * case and made of LDH characters only.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxy/smtp_cmd.h"

static void
check_within(const char *p, size_t n, const char *line, size_t len)
{
	if (p == NULL) {
		if (n != 0)
			__builtin_trap();
		return;
	}
	if (p < line || p + n > line + len)
		__builtin_trap();
}

static void
parse_one(const char *line, size_t len)
{
	struct smtp_cmd cmd;
	size_t i, dlen;
	bool framing_ok = len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n';

	for (i = 0; framing_ok && i < len - 2; i++) {
		if (line[i] == '\r' || line[i] == '\n' || line[i] == '\0')
			framing_ok = false;
	}
	if (smtp_cmd_parse(line, len, &cmd) < 0) {
		if (cmd.error == NULL || cmd.error[0] != '5' || cmd.domain[0] != '\0')
			__builtin_trap();
		return;
	}
	/* RFC 5321 section 2.3.8: never accept a line a server could frame differently. */
	if (!framing_ok || cmd.error != NULL)
		__builtin_trap();
	check_within(cmd.verb, cmd.verb_len, line, len);
	check_within(cmd.arg, cmd.arg_len, line, len);
	check_within(cmd.path, cmd.path_len, line, len);
	check_within(cmd.mailbox, cmd.mailbox_len, line, len);
	check_within(cmd.params, cmd.params_len, line, len);
	check_within(cmd.domain_raw, cmd.domain_raw_len, line, len);
	dlen = strnlen(cmd.domain, sizeof(cmd.domain));
	if (dlen > SMTP_DOMAIN_MAX)
		__builtin_trap();
	for (i = 0; i < dlen; i++) {
		char c = cmd.domain[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			__builtin_trap();
	}
	if (cmd.id == SMTP_CMD_RCPT && dlen == 0 &&
	    !(cmd.path_flags & (SMTP_PATH_POSTMASTER | SMTP_PATH_ADDR_LITERAL)))
		__builtin_trap();
	if (cmd.id == SMTP_CMD_BDAT && cmd.bdat_size > SMTP_BDAT_MAX)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	size_t pos = 0;
	long l;

	/* The whole input as one line (it may hold several, or none). */
	parse_one(in, size);

	/* Then as a session would cut it. */
	while (pos < size && (l = smtp_line_scan(in + pos, size - pos, 512)) > 0) {
		parse_one(in + pos, (size_t)l);
		pos += (size_t)l;
	}
	return 0;
}
