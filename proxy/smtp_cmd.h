/*
 * smtp_cmd.h - parsing of the command lines a client sends (RFC 5321
 * section 4.1).
 *
 * The parser is pure: it never allocates for the caller, keeps no state
 * between lines and writes only into the struct smtp_cmd it is given. Text
 * fields point into the caller's line, which must outlive the struct; the
 * one derived value, the domain of a MAIL or RCPT path, is copied into a
 * fixed buffer lower-cased and in A-labels, ready for a policy lookup.
 *
 * Lines carrying a bare CR, a bare LF or a NUL are refused outright: a relay
 * that passes them on lets a client smuggle a second command or message past
 * the proxy to a server that reads line ends differently (SMTP smuggling).
 */
#ifndef STS_PROXY_SMTP_CMD_H
#define STS_PROXY_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Longest command line accepted by default, CRLF included. RFC 5321 section
 * 4.5.3.1.4 sets 512 octets but lets extensions raise it; RFC 4954 section 4
 * raises it to 12288 for AUTH. Sessions may pass conf->max_line instead.
 */
#define SMTP_CMD_LINE_MAX 12288

/* Longest domain kept, in A-labels (RFC 1035 text form without the final dot). */
#define SMTP_DOMAIN_MAX 253

/* RFC 3030 section 2: the chunk size of BDAT is bounded here to 2^31 octets. */
#define SMTP_BDAT_MAX (UINT64_C(1) << 31)

/* Replies for the refusals detected before a line is parsed (no CRLF). */
#define SMTP_ERR_BARE_CRLF     "500 5.5.2 Syntax error: bare CR, bare LF or NUL in command line"
#define SMTP_ERR_LINE_TOO_LONG "500 5.5.6 Line too long"

enum smtp_cmd_id {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_EHLO,
	SMTP_CMD_HELO,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_DATA,
	SMTP_CMD_BDAT,
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,
	SMTP_CMD_QUIT,
	SMTP_CMD_VRFY,
	SMTP_CMD_EXPN,
	SMTP_CMD_HELP,
	SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH,
	SMTP_CMD_ETRN,
	SMTP_CMD_BURL,
	SMTP_CMD_MAX
};

/* Flags of a verb in the table. */
enum {
	SMTP_CMDF_ARG_NONE = 1 << 0,     /* takes no argument: 501 when one is given */
	SMTP_CMDF_ARG_REQUIRED = 1 << 1, /* needs an argument: 501 when it is missing */
	SMTP_CMDF_GROUP_END = 1 << 2,    /* RFC 2920 section 3.1: last in a pipelined group */
	SMTP_CMDF_TRANSACTION = 1 << 3,  /* part of a mail transaction (MAIL, RCPT, DATA, BDAT) */
};

/* One row of the verb table. */
struct smtp_verb {
	const char *verb; /* upper case */
	enum smtp_cmd_id id;
	unsigned flags;
};

/* Flags describing a parsed MAIL or RCPT path. */
enum {
	SMTP_PATH_NULL = 1 << 0,         /* MAIL FROM:<> */
	SMTP_PATH_POSTMASTER = 1 << 1,   /* RCPT TO:<Postmaster>, no domain */
	SMTP_PATH_ADDR_LITERAL = 1 << 2, /* domain is [10.0.0.1] or [IPv6:...]: domain is "" */
	SMTP_PATH_QUOTED_LOCAL = 1 << 3, /* local part is a quoted string */
	SMTP_PATH_UTF8 = 1 << 4,         /* non-ASCII in the path (RFC 6531) */
	SMTP_PATH_SOURCE_ROUTE = 1 << 5, /* an obsolete @a,@b: route was given and ignored */
};

/*
 * A parsed command. Pointers point into the line given to smtp_cmd_parse()
 * and are NULL with a zero length when the part is absent; none includes
 * the CRLF.
 */
struct smtp_cmd {
	enum smtp_cmd_id id;
	unsigned flags;   /* the verb's SMTP_CMDF_* flags (0 for unknown verbs) */
	const char *verb; /* as written, leading blanks skipped */
	size_t verb_len;
	const char *arg; /* after the verb and its blanks; trailing blanks cut */
	size_t arg_len;

	/* MAIL and RCPT only. */
	const char *path; /* between the angle brackets, source route included */
	size_t path_len;
	const char *mailbox; /* local-part@domain, without a source route */
	size_t mailbox_len;
	const char *params; /* ESMTP parameters after the path, e.g. "SIZE=10 BODY=8BITMIME" */
	size_t params_len;
	const char *domain_raw; /* the domain or address literal as written */
	size_t domain_raw_len;
	unsigned path_flags;              /* SMTP_PATH_* */
	char domain[SMTP_DOMAIN_MAX + 1]; /* lower case A-labels; "" when there is none */

	/* BDAT only. */
	uint64_t bdat_size;
	bool bdat_last;

	/*
	 * Set when smtp_cmd_parse() returns -1: the reply the client must get
	 * (a static string, no CRLF) and whether the session must close after
	 * sending it (bare CR/LF/NUL and overlong lines, where the client's
	 * framing can no longer be trusted).
	 */
	const char *error;
	bool error_close;
};

/*
 * smtp_verb_lookup - the table row of a verb (case-insensitive), or NULL
 * for an unknown verb.
 */
const struct smtp_verb *smtp_verb_lookup(const char *verb, size_t len);

/* smtp_cmd_name - the verb of id in upper case; "UNKNOWN" for others. Never NULL. */
const char *smtp_cmd_name(enum smtp_cmd_id id);

/*
 * smtp_line_scan - find the end of the first line in buf[0..len).
 * Returns its length including the LF, 0 when no LF has arrived yet and
 * fewer than max octets are buffered, or -1 when max octets arrived without
 * a LF (the caller answers SMTP_ERR_LINE_TOO_LONG and closes). Used to split
 * pipelined input into lines for smtp_cmd_parse().
 */
long smtp_line_scan(const char *buf, size_t len, size_t max);

/*
 * smtp_cmd_parse - parse one command line of len octets, CRLF included.
 * Returns 0 with out filled in, or -1 with out->error set to the reply for
 * the client (out->error_close says whether to close after it). An unknown
 * verb is not an error: out->id is SMTP_CMD_UNKNOWN and the session decides;
 * it should answer such a line itself rather than relay it, since the proxy
 * cannot know what the upstream would make of it.
 * Lines longer than SMTP_CMD_LINE_MAX are refused.
 */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

/* smtp_cmd_parse_max - as smtp_cmd_parse() with max (CRLF included) as the line bound. */
int smtp_cmd_parse_max(const char *line, size_t len, size_t max, struct smtp_cmd *out);

/*
 * smtp_param_get - look up the ESMTP parameter key (case-insensitive) in
 * params, e.g. "SIZE=100 SMTPUTF8". Returns 1 with *val and *vlen set to
 * its value (NULL and 0 when it has none), or 0 when it is absent.
 */
int smtp_param_get(const char *params, size_t len, const char *key, const char **val, size_t *vlen);

#endif
