/*
 * relay_events.c - the event records of a proxied session: a JSON line
 * for machines (TLS-RPT vocabulary from core/types.h) and a key=value line
 * for people. Peer-supplied strings are made safe in both.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/evlog.h"
#include "core/log.h"
#include "proxy/relay_events.h"

static const char *const kind_names[RELAY_EV_MAX] = {
    [RELAY_EV_POLICY_FAILURE] = "policy-failure",
    [RELAY_EV_POLICY_DEFER] = "policy-defer",
    [RELAY_EV_DOWNGRADE] = "downgrade",
    [RELAY_EV_INJECTION] = "injection",
};

/* relay_event_kind_name - the "event" field of a kind. */
const char *
relay_event_kind_name(enum relay_event_kind kind)
{
	if ((unsigned)kind >= RELAY_EV_MAX)
		return "unknown";
	return kind_names[kind];
}

/* set_str - add key: s when s is set; -1 when out of memory. */
static int
set_str(json_t *o, const char *key, const char *s)
{
	if (s == NULL)
		return 0;
	return json_object_set_new(o, key, evlog_str(s, strlen(s)));
}

/* printable - copy s into out with anything but printable ASCII as '?', and '"' as '\''. */
static const char *
printable(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, n = 0;

	if (outlen == 0)
		return "";
	for (i = 0; s != NULL && i < len && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[n++] = c == '"' ? '\'' : (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
	return out;
}

/* add_facts - the upstream certificate as seen, for the operator to judge. */
static int
add_facts(json_t *o, const struct tls_facts *f)
{
	json_t *t;

	if (f == NULL)
		return json_object_set_new(o, "tls", json_null());
	if ((t = json_object()) == NULL)
		return -1;
	if (json_object_set_new(t, "handshake", json_boolean(f->handshake_done)) < 0 ||
	    set_str(t, "version", f->version) < 0 || set_str(t, "subject", f->subject) < 0 ||
	    set_str(t, "issuer", f->issuer) < 0 || set_str(t, "sans", f->sans) < 0 ||
	    set_str(t, "not_after", f->not_after) < 0 ||
	    json_object_set_new(t, "verify_result", json_integer(f->verify_result)) < 0) {
		json_decref(t);
		return -1;
	}
	return json_object_set_new(o, "tls", t);
}

/*
 * policy_type - the RFC 8460 policy type of the event: the decision's, or
 * for a deferred MTA-STS lookup "sts"; NULL for session-level events.
 */
static const char *
policy_type(const struct relay_event *ev)
{
	if (ev->decision != NULL)
		return sts_policy_type_name(ev->decision->type);
	if (ev->kind == RELAY_EV_POLICY_DEFER || ev->kind == RELAY_EV_POLICY_FAILURE)
		return sts_policy_type_name(STS_PTYPE_STS);
	return NULL;
}

/* build - the JSON object of ev, or NULL when out of memory. */
static json_t *
build(const struct relay_event *ev, enum sts_result result, const char *reason)
{
	const struct sts_answer *a = ev->answer;
	json_t *o, *mx;
	size_t i;

	if ((o = json_object()) == NULL)
		return NULL;
	if (json_object_set_new(o, "source", json_string("proxy")) < 0 ||
	    set_str(o, "event", relay_event_kind_name(ev->kind)) < 0 ||
	    set_str(o, "session", ev->session) < 0 || set_str(o, "client", ev->client) < 0 ||
	    set_str(o, "dest", ev->dest) < 0 || set_str(o, "domain", ev->domain) < 0 ||
	    set_str(o, "result_type", sts_result_name(result)) < 0 ||
	    set_str(o, "policy_type", policy_type(ev)) < 0 ||
	    set_str(o, "action", ev->action) < 0 || set_str(o, "reason", reason) < 0)
		goto fail;
	if (a != NULL) {
		if (set_str(o, "mode", sts_mode_name(a->mode)) < 0 ||
		    set_str(o, "policy_id", a->id) < 0 ||
		    set_str(o, "policy_source", sts_source_name(a->source)) < 0)
			goto fail;
		if ((mx = json_array()) == NULL || json_object_set_new(o, "mx", mx) < 0)
			goto fail;
		for (i = 0; i < a->n_mx && i < STS_ANSWER_MAX_MX; i++)
			if (json_array_append_new(mx, evlog_str(a->mx[i], strlen(a->mx[i]))) < 0)
				goto fail;
	}
	if (ev->seen != NULL &&
	    json_object_set_new(o, "seen", evlog_str(ev->seen, ev->seen_len)) < 0)
		goto fail;
	if (add_facts(o, ev->facts) < 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* relay_event_emit - one JSON line and one log line. */
int
relay_event_emit(const struct relay_event *ev)
{
	const struct sts_answer *a = ev->answer;
	enum sts_result result = ev->decision != NULL && ev->decision->result != STS_RESULT_OK
	                             ? ev->decision->result
	                             : ev->result;
	const char *reason = ev->decision != NULL ? ev->decision->reason : ev->reason;
	char r_buf[320], s_buf[160], sub_buf[160];
	json_t *o;
	int rc = -1;

	log_notice("session=%s event=%s client=%s dest=%s domain=%s policy_type=%s mode=%s "
	           "policy_id=%s policy_source=%s result=%s action=%s reason=\"%s\" seen=\"%s\" "
	           "cert=\"%s\"",
	           ev->session, relay_event_kind_name(ev->kind), ev->client ? ev->client : "-",
	           ev->dest ? ev->dest : "-", ev->domain ? ev->domain : "-",
	           policy_type(ev) != NULL ? policy_type(ev) : "-",
	           a ? sts_mode_name(a->mode) : "-", a && a->id[0] ? a->id : "-",
	           a ? sts_source_name(a->source) : "-", sts_result_name(result),
	           ev->action ? ev->action : "-",
	           printable(reason, reason ? strlen(reason) : 0, r_buf, sizeof(r_buf)),
	           printable(ev->seen, ev->seen_len, s_buf, sizeof(s_buf)),
	           ev->facts ? printable(ev->facts->subject, strlen(ev->facts->subject), sub_buf,
	                                 sizeof(sub_buf))
	                     : "");
	if ((o = build(ev, result, reason)) != NULL) {
		rc = evlog_write(o);
		json_decref(o);
	}
	return rc;
}
