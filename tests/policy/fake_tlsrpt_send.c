/*
 * fake_tlsrpt_send.c - policy/tlsrpt_send.c replaced at link time: every
 * delivery is recorded (URI or address and a copy of the payload) and
 * answered with the next scripted outcome.
 *
 * Control functions (declared by the tests that link this file):
 *   fake_send_reset()
 *   fake_send_script(outcome)    the answer of the next attempt (default DELIVERED)
 *   fake_send_count()            attempts so far
 *   fake_send_last(&len)         the payload of attempt i and its target
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "policy/tlsrpt_send.h"

#define FAKE_MAX 16

struct tlsrpt_send {
	char from[TLSRPT_SEND_ADDR_MAX];
};

static struct tlsrpt_send the_sender;
static enum tlsrpt_outcome script[FAKE_MAX];
static size_t n_script, i_script;
static struct {
	char target[600];
	int https;
	unsigned char *data;
	size_t len;
} sent[FAKE_MAX];
static size_t n_sent;

void fake_send_reset(void);
void fake_send_script(enum tlsrpt_outcome o);
size_t fake_send_count(void);
const unsigned char *fake_send_payload(size_t i, size_t *len, const char **target, int *https);

void
fake_send_reset(void)
{
	for (size_t i = 0; i < n_sent; i++)
		free(sent[i].data);
	n_sent = n_script = i_script = 0;
}

void
fake_send_script(enum tlsrpt_outcome o)
{
	if (n_script < FAKE_MAX)
		script[n_script++] = o;
}

size_t
fake_send_count(void)
{
	return n_sent;
}

const unsigned char *
fake_send_payload(size_t i, size_t *len, const char **target, int *https)
{
	*len = sent[i].len;
	*target = sent[i].target;
	*https = sent[i].https;
	return sent[i].data;
}

static enum tlsrpt_outcome
record(const char *target, int https, const void *data, size_t len, char *why, size_t whylen)
{
	if (n_sent < FAKE_MAX) {
		sts_strlcpy(sent[n_sent].target, target, sizeof(sent[n_sent].target));
		sent[n_sent].https = https;
		sent[n_sent].data = malloc(len + 1);
		memcpy(sent[n_sent].data, data, len);
		sent[n_sent].data[len] = '\0';
		sent[n_sent].len = len;
		n_sent++;
	}
	sts_strlcpy(why, "scripted", whylen);
	return i_script < n_script ? script[i_script++] : TLSRPT_OUT_DELIVERED;
}

enum tlsrpt_uri_kind
tlsrpt_send_uri(const char *uri, char *addr, size_t addrlen)
{
	if (strncasecmp(uri, "https://", 8) == 0)
		return TLSRPT_URI_HTTPS;
	if (strncasecmp(uri, "mailto:", 7) == 0 && addr != NULL) {
		sts_strlcpy(addr, uri + 7, addrlen);
		return TLSRPT_URI_MAILTO;
	}
	return TLSRPT_URI_BAD;
}

struct tlsrpt_send *
tlsrpt_send_new(const struct conf *c, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	sts_strlcpy(the_sender.from, c->report.from != NULL ? c->report.from : "tlsrpt@gw.example",
	            sizeof(the_sender.from));
	return &the_sender;
}

void
tlsrpt_send_free(struct tlsrpt_send *s)
{
	(void)s;
}

void
tlsrpt_send_abort(struct tlsrpt_send *s)
{
	(void)s;
}

const char *
tlsrpt_send_from(const struct tlsrpt_send *s)
{
	return s->from;
}

enum tlsrpt_outcome
tlsrpt_send_https(struct tlsrpt_send *s, const char *url, const void *gz, size_t len, char *why,
                  size_t whylen)
{
	(void)s;
	return record(url, 1, gz, len, why, whylen);
}

enum tlsrpt_outcome
tlsrpt_send_mail(struct tlsrpt_send *s, const char *rcpt, const void *msg, size_t len, char *why,
                 size_t whylen)
{
	(void)s;
	return record(rcpt, 0, msg, len, why, whylen);
}
