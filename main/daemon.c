/*
 * daemon.c - start-up, the main loop and signals.
 *
 * Signals arrive through a signalfd registered in the main loop, so that no
 * handler ever runs in the middle of a session's code. The main loop also
 * serves the metrics endpoint and the control socket, keeps systemd
 * informed (READY, STATUS, watchdog), and retires the proxies of earlier
 * configurations while they drain after a reload.
 *
 * Start-up order matters: listeners are bound and files opened as root,
 * then privileges are dropped, then the worker threads start (capabilities
 * are per thread, so they must be settled before any thread exists).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/evlog.h"
#include "core/log.h"
#include "core/loop.h"
#include "main/daemon.h"
#include "policy/sts_cache.h"
#include "policy/sts_mx.h"
#include "main/control.h"
#include "main/dirs.h"
#include "main/fdlimit.h"
#include "main/metrics.h"
#include "main/notify.h"
#include "main/privdrop.h"
#include "nfq/nfq.h"
#include "policy/sts_engine.h"
#include "policy/report_store.h"
#include "policy/tlsrpt_reporter.h"
#include "policy/tlsrpt_shared.h"
#include "policy/sts_report.h"
#include "proxy/proxy.h"

int
daemon_check_conf(const struct conf *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->n_policies; i++) {
		const struct conf_policy *p = &c->policies[i];
		for (size_t j = 0; j < p->n_mx; j++) {
			if (!sts_mx_pattern_valid(p->mx[j])) {
				snprintf(err, errlen,
				         "%s:%d: policies[%zu].mx[%zu]: \"%s\" is not a valid MX "
				         "pattern (RFC 8461 section 4.1)",
				         c->path, p->line, i, j, p->mx[j]);
				return -1;
			}
		}
	}
	return 0;
}

#define RETIRING_MAX    8    /* proxies of earlier configurations still draining */
#define HOUSEKEEPING_MS 1000 /* retire drained proxies, refresh the status line */
#define TRIM_BUSY_S     60   /* under load, free memory is given back at most this often */

/* A proxy of an earlier configuration, draining after a reload. */
struct retiring {
	struct proxy *proxy;
	struct conf *conf; /* owned; NULL for the configuration main() owns */
};

struct daemon {
	const struct conf *conf; /* in force; main() owns the first one */
	struct conf *owned;      /* conf, when a reload loaded it */
	struct loop *loop;
	int sigfd;
	int status;
	time_t started;
	struct sts_cache *cache;        /* shared by every worker's policy engine */
	struct sts_engine *engine;      /* the main loop's: refresh, nfq, operators */
	struct sts_engine_stats estats; /* counters of every engine */
	struct sts_report *report;      /* TLS results per policy domain, for TLS-RPT */
	struct report_store *results;   /* their durable totals; NULL: counting in memory only */
	uint64_t results_timer;
	bool results_failing; /* the last flush failed (logged once) */
	uint64_t flushes[2];  /* report flushes written, failed */
	struct nfq *nfq;      /* NULL without an nfq section */
	struct proxy *proxy;  /* NULL when nothing listens (no listen addresses) */
	struct retiring retiring[RETIRING_MAX];
	size_t n_retiring;
	struct session_stats retired; /* counters of proxies already freed */
	struct metrics *metrics;
	struct control *control;
	struct notify_watchdog *watchdog;
	uint64_t housekeeping;
	uint64_t reloads;
	uint64_t trimmed_total; /* sessions_total when memory was last given back */
	uint64_t trim_peak;     /* most sessions seen open at once since then */
	time_t trimmed_at;
	/* The daily TLS-RPT reports (NULL: report.enable off), the attempts of those freed. */
	struct tlsrpt_reporter *reporter;
	uint64_t tlsrpt_gone[TLSRPT_KIND_MAX][TLSRPT_OUT_MAX];
	struct tlsrpt_shared_stats tlsrpt_shared; /* the reports' counts shared through Redis */
};

/* listen_text - "a,b,..." of the listen addresses for the start line; "none" without any. */
static const char *
listen_text(const struct conf *c, char *buf, size_t len)
{
	size_t off = 0;

	snprintf(buf, len, "none");
	for (size_t i = 0; i < c->n_listen; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", c->listen[i].text);

		if (n < 0 || (size_t)n >= len - off) {
			if (len >= 4) /* truncated: say so */
				memcpy(buf + len - 4, "...", 4);
			break;
		}
		off += (size_t)n;
	}
	return buf;
}

/* stats_sum - the session counters of every proxy, current, retiring and gone. */
static void
stats_sum(const struct daemon *d, struct session_stats *out)
{
	struct session_stats one;

	memset(out, 0, sizeof(*out));
#define ADD(f) atomic_fetch_add_explicit(&out->f, atomic_load(&one.f), memory_order_relaxed)
#define ADD_ALL()                                                                                  \
	do {                                                                                       \
		ADD(sessions_total);                                                               \
		ADD(sessions_active);                                                              \
		ADD(tls_upstream);                                                                 \
		ADD(tls_upstream_resumed);                                                         \
		ADD(reuse_parked);                                                                 \
		ADD(reuse_taken);                                                                  \
		ADD(reuse_saved);                                                                  \
		ADD(reuse_retried);                                                                \
		ADD(reuse_missed);                                                                 \
		ADD(reuse_idle);                                                                   \
		for (size_t k = 0; k < 3; k++)                                                     \
			ADD(messages_relayed[k]);                                                  \
		for (size_t k = 0; k < STS_RESULT_MAX; k++) {                                      \
			ADD(recipients_blocked[k]);                                                \
			ADD(recipients_reported[k]);                                               \
		}                                                                                  \
		for (size_t k = 0; k < STS_PTYPE_MAX * 3; k++)                                     \
			ADD(recipients_by_policy[k / 3][k % 3]);                                   \
	} while (0)
	memcpy(&one, &d->retired, sizeof(one));
	ADD_ALL();
	for (size_t i = 0; i < d->n_retiring; i++) {
		proxy_stats(d->retiring[i].proxy, &one);
		ADD_ALL();
	}
	if (d->proxy != NULL) {
		proxy_stats(d->proxy, &one);
		ADD_ALL();
	}
#undef ADD_ALL
#undef ADD
}

/* collect_socketmap - the socketmap server's families (docs/METRICS.md). */
static void
collect_socketmap(const struct daemon *d, struct metrics_writer *w)
{
	const struct smap_stats *ss;
	unsigned active = 0;

	if (d->proxy == NULL || d->conf->socketmap.n_listen == 0)
		return;
	ss = proxy_smap_stats(d->proxy);
	for (size_t i = 0; i < d->n_retiring; i++)
		active += atomic_load(&proxy_smap_stats(d->retiring[i].proxy)->active);
	for (int k = 0; k < SMAP_KIND_MAX; k++) {
		const struct metrics_label l[] = {{"reply", smap_kind_name(k)}, {NULL, NULL}};
		metrics_counter(w, "stsproxy_socketmap_replies_total",
		                "Socketmap replies sent, by status.", l,
		                atomic_load(&ss->replies[k]));
	}
	metrics_counter(w, "stsproxy_socketmap_lookups_async_total",
	                "Socketmap requests that waited for a policy lookup.", NULL,
	                atomic_load(&ss->lookups_async));
	metrics_counter(w, "stsproxy_socketmap_connections_total",
	                "Socketmap connections accepted.", NULL,
	                atomic_load(&ss->connections_total));
	metrics_counter(w, "stsproxy_socketmap_connections_refused_total",
	                "Socketmap connections closed at once: max_connections.", NULL,
	                atomic_load(&ss->connections_refused));
	metrics_counter(w, "stsproxy_socketmap_errors_total",
	                "Malformed or oversized socketmap requests and I/O errors.", NULL,
	                atomic_load(&ss->errors));
	metrics_gauge(w, "stsproxy_socketmap_connections_active", "Socketmap connections open now.",
	              NULL, (double)(active + atomic_load(&ss->active)));
}

/* A counter of a stats struct of relaxed atomics: name, help, offset of the field. */
struct counter_def {
	const char *name, *help;
	size_t off;
};

/* collect_counters - every counter of defs[0..n), read from the struct at base. */
static void
collect_counters(struct metrics_writer *w, const struct counter_def *defs, size_t n,
                 const void *base)
{
	for (size_t i = 0; i < n; i++)
		metrics_counter(w, defs[i].name, defs[i].help, NULL,
		                atomic_load((_Atomic uint64_t *)((char *)base + defs[i].off)));
}

/* collect_shared - the shared Redis (docs/METRICS.md), when configured. */
static void
collect_shared(struct shared_stats *ss, struct metrics_writer *w)
{
	static const struct counter_def counters[] = {
	    {"stsproxy_shared_hits_total", "Lookups the shared Redis answered with a policy.",
	     offsetof(struct shared_stats, hits)},
	    {"stsproxy_shared_misses_total",
	     "Lookups it did not answer: no policy, shared.wait_max passed, or down.",
	     offsetof(struct shared_stats, misses)},
	    {"stsproxy_shared_waits_total",
	     "Asks again while another gateway fetched the same policy id.",
	     offsetof(struct shared_stats, waits)},
	    {"stsproxy_shared_refused_total", "Values read from it that were invalid or refused.",
	     offsetof(struct shared_stats, refused)},
	    {"stsproxy_shared_stores_total", "Policies written to it.",
	     offsetof(struct shared_stats, stores)},
	    {"stsproxy_shared_publishes_total", "Policy changes and servers published.",
	     offsetof(struct shared_stats, publishes)},
	    {"stsproxy_shared_received_total", "Policy changes and servers received.",
	     offsetof(struct shared_stats, received)},
	    {"stsproxy_shared_errors_total", "Commands that failed or got an error reply.",
	     offsetof(struct shared_stats, errors)},
	};

	metrics_gauge(w, "stsproxy_shared_connections", "Connections to the shared Redis.", NULL,
	              (double)atomic_load(&ss->conns));
	metrics_gauge(w, "stsproxy_shared_up", "Of those, connected and answering now.", NULL,
	              (double)atomic_load(&ss->up));
	collect_counters(w, counters, sizeof(counters) / sizeof(counters[0]), ss);
}

/* collect_tlsrpt_shared - TLS-RPT counts shared between gateways (docs/METRICS.md). */
static void
collect_tlsrpt_shared(struct tlsrpt_shared_stats *ts, struct metrics_writer *w)
{
	static const struct counter_def counters[] = {
	    {"stsproxy_tlsrpt_shared_pushes_total",
	     "TLS-RPT rows of this gateway written to the shared Redis.",
	     offsetof(struct tlsrpt_shared_stats, pushes)},
	    {"stsproxy_tlsrpt_shared_push_errors_total",
	     "Pushes of TLS-RPT rows that failed (Redis down or an error reply).",
	     offsetof(struct tlsrpt_shared_stats, push_errors)},
	    {"stsproxy_tlsrpt_shared_merged_total",
	     "Other gateways' TLS-RPT rows read from the shared Redis into the store.",
	     offsetof(struct tlsrpt_shared_stats, merged)},
	    {"stsproxy_tlsrpt_shared_refused_total",
	     "TLS-RPT rows read from the shared Redis that were invalid.",
	     offsetof(struct tlsrpt_shared_stats, refused)},
	    {"stsproxy_tlsrpt_shared_skipped_total",
	     "TLS-RPT reports left to the gateway that holds or sent them.",
	     offsetof(struct tlsrpt_shared_stats, skipped)},
	};

	collect_counters(w, counters, sizeof(counters) / sizeof(counters[0]), ts);
}

/* collect - the metrics of docs/METRICS.md, one family at a time. */
static void
collect(void *arg, struct metrics_writer *w)
{
	static const char *const modes[] = {"none", "testing", "enforce"};
	struct daemon *d = arg;
	struct session_stats st;

	stats_sum(d, &st);
	metrics_counter(w, "stsproxy_sessions_total", "SMTP sessions accepted.", NULL,
	                atomic_load(&st.sessions_total));
	metrics_gauge(w, "stsproxy_sessions_active", "SMTP sessions open now.", NULL,
	              (double)atomic_load(&st.sessions_active));
	for (size_t i = 0; i < 3; i++) {
		const struct metrics_label l[] = {{"mode", modes[i]}, {NULL, NULL}};
		metrics_counter(w, "stsproxy_messages_relayed_total",
		                "Messages relayed, by the MTA-STS mode that applied.", l,
		                atomic_load(&st.messages_relayed[i]));
	}
	for (int r = STS_RESULT_OK + 1; r < STS_RESULT_MAX; r++) {
		const struct metrics_label l[] = {{"result", sts_result_name(r)}, {NULL, NULL}};
		metrics_counter(w, "stsproxy_recipients_blocked_total",
		                "Recipients refused with 451 under an enforce policy.", l,
		                atomic_load(&st.recipients_blocked[r]));
	}
	for (int r = STS_RESULT_OK + 1; r < STS_RESULT_MAX; r++) {
		const struct metrics_label l[] = {{"result", sts_result_name(r)}, {NULL, NULL}};
		metrics_counter(w, "stsproxy_recipients_reported_total",
		                "Policy failures relayed and reported (testing, monitor).", l,
		                atomic_load(&st.recipients_reported[r]));
	}
	for (int t = 0; t < STS_PTYPE_MAX; t++) {
		static const char *const outcome[] = {"pass", "refused", "reported"};

		for (int k = 0; k < 3; k++) {
			const struct metrics_label l[] = {{"policy_type", sts_policy_type_name(t)},
			                                  {"decision", outcome[k]},
			                                  {NULL, NULL}};
			metrics_counter(w, "stsproxy_recipients_total",
			                "Recipient decisions, by the policy that decided (RFC 8460 "
			                "policy-type).",
			                l, atomic_load(&st.recipients_by_policy[t][k]));
		}
	}
	metrics_counter(w, "stsproxy_upstream_tls_total",
	                "Upstream connections that completed a TLS handshake.", NULL,
	                atomic_load(&st.tls_upstream));
	metrics_counter(w, "stsproxy_upstream_tls_resumed_total",
	                "Upstream TLS handshakes that resumed a cached session.", NULL,
	                atomic_load(&st.tls_upstream_resumed));
	metrics_counter(w, "stsproxy_upstream_reuse_total",
	                "Sessions that took a parked upstream connection of the same client.", NULL,
	                atomic_load(&st.reuse_taken));
	metrics_counter(w, "stsproxy_upstream_reuse_misses_total",
	                "Sessions that made a new upstream connection while reuse is on.", NULL,
	                atomic_load(&st.reuse_missed));
	metrics_counter(w, "stsproxy_upstream_connections_saved_total",
	                "Reused upstream connections that answered RSET and carried the session.",
	                NULL, atomic_load(&st.reuse_saved));
	metrics_counter(w, "stsproxy_upstream_reuse_retries_total",
	                "Reused upstream connections that failed after RSET, before the "
	                "transaction had an answer from them: it went on over a new connection.",
	                NULL, atomic_load(&st.reuse_retried));
	metrics_counter(w, "stsproxy_upstream_parked_total",
	                "Upstream connections parked for reuse after a QUIT.", NULL,
	                atomic_load(&st.reuse_parked));
	metrics_gauge(w, "stsproxy_upstream_pool_idle", "Upstream connections parked now.", NULL,
	              (double)atomic_load(&st.reuse_idle));
	metrics_gauge(w, "stsproxy_policy_cache_entries", "Policies in the persistent cache.", NULL,
	              (double)sts_cache_count(d->cache));
	metrics_counter(w, "stsproxy_policy_cache_hits_total",
	                "Policy decisions served from the cache.", NULL,
	                atomic_load(&d->estats.cache_hits));
	metrics_counter(w, "stsproxy_policy_fetches_total", "HTTPS policy fetches started.", NULL,
	                atomic_load(&d->estats.fetches));
	metrics_counter(w, "stsproxy_policy_fetch_errors_total",
	                "HTTPS policy fetches that failed.", NULL,
	                atomic_load(&d->estats.fetch_errors));
	metrics_counter(w, "stsproxy_policy_fetch_waits_total",
	                "Lookups that waited for another worker's fetch of the same policy.", NULL,
	                atomic_load(&d->estats.fetch_waits));
	for (int k = 0; k < TLSRPT_KIND_MAX; k++) {
		for (int o = 0; o < TLSRPT_OUT_MAX; o++) {
			const struct metrics_label l[] = {
			    {"scheme", k == TLSRPT_KIND_HTTPS ? "https" : "mailto"},
			    {"result", tlsrpt_outcome_name((enum tlsrpt_outcome)o)},
			    {NULL, NULL}};
			metrics_counter(w, "stsproxy_tlsrpt_attempts_total",
			                "TLS-RPT report deliveries attempted (RFC 8460 section 5).",
			                l,
			                d->tlsrpt_gone[k][o] + tlsrpt_reporter_attempts(
			                                           d->reporter, (enum tlsrpt_kind)k,
			                                           (enum tlsrpt_outcome)o));
		}
	}
	collect_socketmap(d, w);
	for (int k = 0; k < 2; k++) {
		const struct metrics_label l[] = {{"status", k == 0 ? "ok" : "failed"},
		                                  {NULL, NULL}};

		metrics_counter(w, "stsproxy_report_flushes_total",
		                "Writes of the TLS-RPT counts to report.db.", l, d->flushes[k]);
	}
	if (d->conf->shared.enabled) {
		collect_shared(&d->estats.shared, w);
		collect_tlsrpt_shared(&d->tlsrpt_shared, w);
	}
	if (d->nfq != NULL) {
		struct detect_stats ns;
		const struct metrics_label acc[] = {{"verdict", "accept"}, {NULL, NULL}};
		const struct metrics_label drop[] = {{"verdict", "drop"}, {NULL, NULL}};
		const struct metrics_label rel[] = {{"verdict", "release"}, {NULL, NULL}};

		nfq_stats(d->nfq, &ns);
		metrics_counter(w, "stsproxy_nfq_packets_total",
		                "Packets seen by NFQUEUE inspection.", NULL, ns.packets);
		metrics_counter(w, "stsproxy_nfq_verdicts_total", "NFQUEUE verdicts given.", acc,
		                ns.accepts);
		metrics_counter(w, "stsproxy_nfq_verdicts_total", "NFQUEUE verdicts given.", drop,
		                ns.drops);
		metrics_counter(w, "stsproxy_nfq_verdicts_total", "NFQUEUE verdicts given.", rel,
		                ns.releases);
		metrics_counter(w, "stsproxy_nfq_events_total",
		                "Downgrades detected by inspection.", NULL, ns.events);
		/* The queue runs on this loop, as the metrics endpoint does. */
		metrics_gauge(w, "stsproxy_nfq_flows_active",
		              "Flows tracked by NFQUEUE inspection now.", NULL,
		              (double)nfq_flows(d->nfq));
		metrics_counter(w, "stsproxy_nfq_holds_total",
		                "Packets whose verdict waited for a policy lookup.", NULL,
		                ns.holds);
		metrics_counter(w, "stsproxy_nfq_hold_timeouts_total",
		                "Policy lookups the inspector stopped waiting for.", NULL,
		                ns.hold_timeouts);
		metrics_counter(w, "stsproxy_nfq_hold_overflows_total",
		                "Unknown domains not waited for: nfq.hold_max reached.", NULL,
		                ns.hold_overflows);
		metrics_gauge(w, "stsproxy_nfq_holds_active",
		              "Verdicts waiting for a policy lookup now.", NULL,
		              (double)nfq_holds(d->nfq));
	}
}

/* status_line - "sessions=N total=M policies=P" for systemd and the control socket. */
static void
status_line(const struct daemon *d, char *buf, size_t len)
{
	struct session_stats st;

	stats_sum(d, &st);
	snprintf(buf, len, "sessions=%llu total=%llu policies=%zu draining=%zu reloads=%llu",
	         (unsigned long long)atomic_load(&st.sessions_active),
	         (unsigned long long)atomic_load(&st.sessions_total), sts_cache_count(d->cache),
	         d->n_retiring, (unsigned long long)d->reloads);
}

/* pool_text - the upstream pools of every worker: limits, parked now, counters. */
static const char *
pool_text(const struct daemon *d, char *buf, size_t len)
{
	const struct conf *c = d->conf;
	struct session_stats st;

	stats_sum(d, &st);
	if (c->upstream.reuse_idle == 0) {
		snprintf(buf, len, "off");
		return buf;
	}
	snprintf(buf, len,
	         "idle=%llu reuse_idle=%us reuse_max=%u reuse_max_per_dest=%u "
	         "reuse_max_messages=%u parked=%llu reused=%llu saved=%llu retries=%llu "
	         "misses=%llu",
	         (unsigned long long)atomic_load(&st.reuse_idle), c->upstream.reuse_idle,
	         c->upstream.reuse_max, c->upstream.reuse_max_per_dest,
	         c->upstream.reuse_max_messages, (unsigned long long)atomic_load(&st.reuse_parked),
	         (unsigned long long)atomic_load(&st.reuse_taken),
	         (unsigned long long)atomic_load(&st.reuse_saved),
	         (unsigned long long)atomic_load(&st.reuse_retried),
	         (unsigned long long)atomic_load(&st.reuse_missed));
	return buf;
}

static int
ctl_status(void *arg, struct control_reply *r)
{
	struct daemon *d = arg;
	char line[256], addrs[512], pool[320];

	status_line(d, line, sizeof(line));
	control_reply_line(r, "version %s", STSPROXY_VERSION);
	control_reply_line(r, "config %s", d->conf->path);
	control_reply_line(r, "mode %s",
	                   d->conf->mode == CONF_PROXY_ENFORCE ? "enforce" : "monitor");
	control_reply_line(r, "listen %s", listen_text(d->conf, addrs, sizeof(addrs)));
	control_reply_line(r, "uptime %lld", (long long)(time(NULL) - d->started));
	control_reply_line(r, "%s", line);
	control_reply_line(r, "upstream_pool %s", pool_text(d, pool, sizeof(pool)));
	if (d->conf->shared.enabled) {
		const struct shared_stats *ss = &d->estats.shared;
		uint64_t conns = atomic_load(&ss->conns), up = atomic_load(&ss->up);
		const struct conf *c = d->conf;

		control_reply_line(
		    r,
		    "shared %s redis=%s%s up=%llu/%llu hits=%llu misses=%llu refused=%llu "
		    "stores=%llu publishes=%llu received=%llu errors=%llu",
		    up == conns && conns > 0 ? "ok"
		    : up > 0                 ? "degraded"
		                             : "down",
		    c->shared.redis_path != NULL ? c->shared.redis_path
		    : c->shared.redis != NULL    ? c->shared.redis->text
		                                 : "sentinel:",
		    c->shared.master != NULL ? c->shared.master : "", (unsigned long long)up,
		    (unsigned long long)conns, (unsigned long long)atomic_load(&ss->hits),
		    (unsigned long long)atomic_load(&ss->misses),
		    (unsigned long long)atomic_load(&ss->refused),
		    (unsigned long long)atomic_load(&ss->stores),
		    (unsigned long long)atomic_load(&ss->publishes),
		    (unsigned long long)atomic_load(&ss->received),
		    (unsigned long long)atomic_load(&ss->errors));
	}
	return 0;
}

struct list_ctx {
	struct control_reply *r;
	int64_t now;
};

static void
list_one(void *arg, const struct sts_cache_entry *e)
{
	struct list_ctx *lc = arg;

	control_reply_line(lc->r, "%s id=%s mode=%s mx=%zu expires_in=%lld", e->domain, e->id,
	                   sts_mode_name(e->policy.mode), e->policy.n_mx,
	                   (long long)(e->expires_at - lc->now));
}

static int
ctl_cache_list(void *arg, struct control_reply *r)
{
	struct daemon *d = arg;
	struct list_ctx lc = {.r = r, .now = (int64_t)time(NULL)};

	sts_cache_foreach(d->cache, list_one, &lc);
	return 0;
}

static int
ctl_cache_flush(void *arg, const char *domain, struct control_reply *r)
{
	struct daemon *d = arg;
	const struct sts_cache_entry *e = sts_cache_get(d->cache, domain);
	bool had = e != NULL;

	sts_cache_release(e);
	if (sts_cache_delete(d->cache, domain) < 0) {
		control_reply_error(r, "%s: the cache file could not be written", domain);
		return -1;
	}
	log_notice("event=cache-flush domain=%s cached=%s", domain, had ? "yes" : "no");
	control_reply_line(r, "%s %s", domain, had ? "flushed" : "was not cached");
	return 0;
}

static int
ctl_cache_refresh(void *arg, const char *domain, struct control_reply *r)
{
	struct daemon *d = arg;

	if (sts_engine_refresh(d->engine, domain) < 0) {
		control_reply_error(r, "%s: no cached policy", domain);
		return -1;
	}
	log_notice("event=cache-refresh domain=%s", domain);
	control_reply_line(r, "%s refresh started", domain);
	return 0;
}

/*
 * report_one - "DOMAIN policy_type=TYPE id=ID mode=MODE success=N failure=M",
 * then its failure details.
 */
static int
report_one(void *arg, const struct sts_report_entry *e)
{
	struct control_reply *r = arg;

	if (control_reply_line(r, "%s policy_type=%s id=%s mode=%s success=%llu failure=%llu",
	                       e->domain, sts_policy_type_name(e->type),
	                       e->policy_id[0] != '\0' ? e->policy_id : "-", sts_mode_name(e->mode),
	                       (unsigned long long)e->success, (unsigned long long)e->failure) < 0)
		return 1;
	for (size_t i = 0; i < e->n_details; i++) {
		const struct sts_report_detail *t = &e->details[i];

		if (control_reply_line(r, "  %s mx=%s%s%s count=%llu", sts_result_name(t->result),
		                       t->mx_host[0] != '\0' ? t->mx_host : "-",
		                       t->ip[0] != '\0' ? " ip=" : "", t->ip,
		                       (unsigned long long)t->count) < 0)
			return 1;
	}
	if (e->detail_other > 0 &&
	    control_reply_line(r, "  other count=%llu", (unsigned long long)e->detail_other) < 0)
		return 1;
	return 0;
}

/* results_one - report_one() for the durable totals, with the sending address. */
static int
results_one(void *arg, const struct report_store_entry *e)
{
	struct control_reply *r = arg;

	if (control_reply_line(r, "%s policy_type=%s id=%s mode=%s success=%llu failure=%llu",
	                       e->domain, sts_policy_type_name(e->type),
	                       e->policy_id[0] != '\0' ? e->policy_id : "-", sts_mode_name(e->mode),
	                       (unsigned long long)e->success, (unsigned long long)e->failure) < 0)
		return 1;
	for (size_t i = 0; i < e->n_details; i++) {
		const struct report_store_detail *t = &e->details[i];

		if (control_reply_line(r, "  %s mx=%s%s%s%s%s count=%llu",
		                       sts_result_name(t->result),
		                       t->mx_host[0] != '\0' ? t->mx_host : "-",
		                       t->receiving_ip[0] != '\0' ? " ip=" : "", t->receiving_ip,
		                       t->sending_ip[0] != '\0' ? " sending_ip=" : "",
		                       t->sending_ip, (unsigned long long)t->count) < 0)
			return 1;
	}
	if (e->detail_other > 0 &&
	    control_reply_line(r, "  other count=%llu", (unsigned long long)e->detail_other) < 0)
		return 1;
	return 0;
}

/*
 * results_flush - write the counts since the last flush to the store. A
 * failure keeps them (report_store_flush) and is logged once until a flush
 * succeeds again.
 */
static void
results_flush(struct daemon *d, const char *why)
{
	char err[512];
	int n;

	if (d->results == NULL)
		return;
	if ((n = report_store_flush(d->results, d->report, time(NULL), err, sizeof(err))) < 0) {
		if (!d->results_failing)
			log_err("event=report-flush reason=%s error=\"%s\" counts=kept", why, err);
		d->results_failing = true;
		d->flushes[1]++;
		return;
	}
	d->flushes[0]++;
	if (d->results_failing)
		log_notice("event=report-flush reason=%s status=recovered rows=%d", why, n);
	d->results_failing = false;
}

/*
 * results_open - open the durable store of c unless open with the same
 * settings. Without it (a damaged or unreadable file) the counts stay in
 * memory and "ctl report" shows those; a reload tries again.
 */
static void
results_open(struct daemon *d, const struct conf *c)
{
	struct report_store_params p = {
	    .state_dir = c->state_dir,
	    .gateway_id = c->report_store.gateway_id,
	    .keep_days = c->report_store.keep_days,
	};
	char err[512];

	if (d->results != NULL) {
		if (c->report_store.gateway_id == NULL ||
		    strcmp(c->report_store.gateway_id, report_store_gateway(d->results)) == 0)
			return; /* keep_days applies from the next open */
		results_flush(d, "reopen");
		if (d->results_failing)
			return; /* never drop counts that are not written */
		report_store_close(d->results);
	}
	if ((d->results = report_store_open(&p, err, sizeof(err))) == NULL)
		log_err("event=report-store error=\"%s\" counting=memory", err);
	else
		log_info("event=report-store file=%s/%s gateway=%s", c->state_dir,
		         REPORT_STORE_FILE, report_store_gateway(d->results));
}

/* results_tick - the periodic flush (report_store.flush_interval). */
static void
results_tick(struct loop *loop, void *arg)
{
	struct daemon *d = arg;

	d->results_timer = 0;
	results_flush(d, "timer");
	d->results_timer = loop_timer_add(
	    loop, (uint64_t)d->conf->report_store.flush_interval * 1000, results_tick, d);
}

/* ctl_report - today's totals: the store's after a flush, else memory's. */
static int
ctl_report(void *arg, struct control_reply *r)
{
	struct daemon *d = arg;
	char err[512];

	results_flush(d, "control");
	if (d->results != NULL && !d->results_failing &&
	    report_store_foreach_day(d->results, time(NULL), NULL, results_one, r, err,
	                             sizeof(err)) >= 0)
		return 0;
	sts_report_foreach(d->report, report_one, r);
	return 0;
}

static const struct control_ops ctl_ops = {
    .status = ctl_status,
    .cache_list = ctl_cache_list,
    .cache_flush = ctl_cache_flush,
    .cache_refresh = ctl_cache_refresh,
    .report = ctl_report,
};

/*
 * retired_free - stop and free a drained (or draining: this waits) proxy of
 * an earlier configuration, keeping its counters: Prometheus counters must
 * not go down.
 */
static void
retired_free(struct daemon *d, struct retiring *rt)
{
	struct session_stats st;

	proxy_stats(rt->proxy, &st);
	atomic_fetch_add(&d->retired.sessions_total, atomic_load(&st.sessions_total));
	atomic_fetch_add(&d->retired.tls_upstream, atomic_load(&st.tls_upstream));
	atomic_fetch_add(&d->retired.tls_upstream_resumed, atomic_load(&st.tls_upstream_resumed));
	atomic_fetch_add(&d->retired.reuse_parked, atomic_load(&st.reuse_parked));
	atomic_fetch_add(&d->retired.reuse_taken, atomic_load(&st.reuse_taken));
	atomic_fetch_add(&d->retired.reuse_saved, atomic_load(&st.reuse_saved));
	atomic_fetch_add(&d->retired.reuse_retried, atomic_load(&st.reuse_retried));
	atomic_fetch_add(&d->retired.reuse_missed, atomic_load(&st.reuse_missed));
	for (size_t k = 0; k < 3; k++)
		atomic_fetch_add(&d->retired.messages_relayed[k],
		                 atomic_load(&st.messages_relayed[k]));
	for (size_t k = 0; k < STS_RESULT_MAX; k++) {
		atomic_fetch_add(&d->retired.recipients_blocked[k],
		                 atomic_load(&st.recipients_blocked[k]));
		atomic_fetch_add(&d->retired.recipients_reported[k],
		                 atomic_load(&st.recipients_reported[k]));
	}
	proxy_stop(rt->proxy);
	conf_free(rt->conf);
	rt->proxy = NULL;
	rt->conf = NULL;
}

/* retire - hand the current proxy over to the draining list. */
static void
retire(struct daemon *d)
{
	if (d->proxy == NULL)
		return;
	proxy_drain(d->proxy);
	if (d->n_retiring == RETIRING_MAX) {
		/* Too many reloads in a row: finish the oldest drain now. */
		log_warn("event=reload warning=\"%d configurations still draining; waiting for the "
		         "oldest\"",
		         RETIRING_MAX);
		retired_free(d, &d->retiring[0]);
		memmove(&d->retiring[0], &d->retiring[1],
		        sizeof(d->retiring[0]) * (RETIRING_MAX - 1));
		d->n_retiring--;
	}
	d->retiring[d->n_retiring].proxy = d->proxy;
	d->retiring[d->n_retiring].conf = d->owned;
	d->n_retiring++;
	d->proxy = NULL;
	d->owned = NULL;
}

/*
 * trim_memory - give the free pages of every malloc arena (one per worker
 * thread and more) back to the system after a burst: glibc keeps them, and
 * the process would stay at its peak size for good. Done once no session
 * is left, or under steady load at most every TRIM_BUSY_S seconds when the
 * sessions fell under a quarter of their peak.
 */
static void
trim_memory(struct daemon *d)
{
	struct session_stats st;
	uint64_t active, total;
	time_t now = time(NULL);

	stats_sum(d, &st);
	active = atomic_load(&st.sessions_active);
	total = atomic_load(&st.sessions_total);
	if (active > d->trim_peak)
		d->trim_peak = active;
	if (total == d->trimmed_total)
		return;
	if (active != 0 && (now - d->trimmed_at < TRIM_BUSY_S || active * 4 > d->trim_peak))
		return;
	malloc_trim(0);
	d->trimmed_total = total;
	d->trim_peak = active;
	d->trimmed_at = now;
}

/* housekeeping - free drained proxies, keep systemd's status line current. */
static void
housekeeping(struct loop *loop, void *arg)
{
	struct daemon *d = arg;
	char line[256];

	d->housekeeping = 0;
	/* RFC 8460 section 4.1: reports cover whole UTC days. */
	if (sts_report_rollover(d->report, time(NULL)) == 1)
		log_info("event=report-day day=%lld", (long long)sts_report_day(d->report));
	for (size_t i = 0; i < d->n_retiring;) {
		struct retiring *rt = &d->retiring[i];

		if (!proxy_drained(rt->proxy)) {
			i++;
			continue;
		}
		retired_free(d, rt);
		log_notice("event=reload status=drained");
		memmove(rt, rt + 1, sizeof(*rt) * (d->n_retiring - i - 1));
		d->n_retiring--;
	}
	trim_memory(d);
	status_line(d, line, sizeof(line));
	notify_status("%s", line);
	d->housekeeping = loop_timer_add(loop, HOUSEKEEPING_MS, housekeeping, d);
}

/* same_str - NULL-safe string equality. */
static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * fit_open_files - raise the open-files limit for c, and say so, once, when
 * even the hard limit is too low and max_sessions had to come down.
 */
static void
fit_open_files(struct conf *c, const char *event)
{
	struct fdlimit_result r;

	if (fdlimit_apply(c, &r) < 0) {
		log_warn("event=%s warning=\"open files limit: %s\"", event, strerror(errno));
		return;
	}
	if (r.lowered)
		log_warn("event=%s warning=\"open files: max_sessions=%u needs %llu, the %s limit "
		         "is %llu: at most %u sessions at once\" need=%llu limit=%llu "
		         "max_sessions=%u",
		         event, r.wanted, (unsigned long long)r.need, r.hard ? "hard" : "soft",
		         (unsigned long long)r.limit, c->max_sessions, (unsigned long long)r.need,
		         (unsigned long long)r.limit, c->max_sessions);
}

/*
 * reporter_stop - end the TLS-RPT reporter (its thread within a second but
 * for a DNS lookup in flight), keeping its counts for the metrics.
 */
static void
reporter_stop(struct daemon *d)
{
	if (d->reporter == NULL)
		return;
	tlsrpt_reporter_stop(d->reporter);
	for (int k = 0; k < TLSRPT_KIND_MAX; k++)
		for (int o = 0; o < TLSRPT_OUT_MAX; o++)
			d->tlsrpt_gone[k][o] += tlsrpt_reporter_attempts(
			    d->reporter, (enum tlsrpt_kind)k, (enum tlsrpt_outcome)o);
	tlsrpt_reporter_free(d->reporter);
	d->reporter = NULL;
}

/*
 * reporter_start - the TLS-RPT reporter of the configuration in force, with
 * report.enable and a result store (RFC 8460). Returns -1 when it cannot
 * start (logged).
 */
static int
reporter_start(struct daemon *d)
{
	struct tlsrpt_reporter_params p = {.conf = d->conf,
	                                   .store = d->results,
	                                   .live = d->report,
	                                   .shared_stats = &d->tlsrpt_shared,
	                                   .push_only = !d->conf->report.enable};
	char err[512];

	/* Without report.enable, a gateway among others still gives them its counts. */
	if (!d->conf->report.enable && !d->conf->shared.enabled)
		return 0;
	if (d->results == NULL) {
		if (!d->conf->report.enable)
			return 0; /* no counts to give */
		log_err("event=tlsrpt error=\"report.enable: no result store, no reports\"");
		return -1;
	}
	if ((d->reporter = tlsrpt_reporter_new(&p, err, sizeof(err))) == NULL ||
	    tlsrpt_reporter_start(d->reporter, err, sizeof(err)) < 0) {
		log_err("event=tlsrpt error=\"%s\"", err);
		tlsrpt_reporter_free(d->reporter);
		d->reporter = NULL;
		return -1;
	}
	return 0;
}

/*
 * reload - SIGHUP: load and check the file again; new sessions use the new
 * configuration (a new proxy on the same listeners, SO_REUSEPORT), running
 * ones finish undisturbed on the old one. An invalid file changes nothing.
 */
static void
reload(struct daemon *d)
{
	char err[512];
	struct conf *nc;
	struct proxy *np = NULL;

	notify_reloading();
	if ((nc = conf_load(d->conf->path, err, sizeof(err))) == NULL ||
	    daemon_check_conf(nc, err, sizeof(err)) < 0) {
		log_err("event=reload status=refused error=\"%s\"", err);
		goto done;
	}
	if (!same_str(nc->state_dir, d->conf->state_dir) || !same_str(nc->user, d->conf->user) ||
	    nc->nfq.enabled != d->conf->nfq.enabled) {
		log_err("event=reload status=refused error=\"state_dir, user and nfq change only "
		        "with a restart\"");
		goto done;
	}
	fit_open_files(nc, "reload");
	if ((nc->n_listen > 0 || nc->socketmap.n_listen > 0) &&
	    (np = proxy_new(nc, d->cache, &d->estats, d->report, d->proxy, err, sizeof(err))) ==
	        NULL) {
		log_err("event=reload status=refused error=\"%s\"", err);
		goto done;
	}
	if (np != NULL && proxy_run(np, err, sizeof(err)) < 0) {
		log_err("event=reload status=refused error=\"%s\"", err);
		proxy_stop(np);
		goto done;
	}
	retire(d);
	reporter_stop(d); /* it holds the store and the configuration */
	results_flush(d, "reload");
	results_open(d, nc);
	d->proxy = np;
	d->owned = nc;
	d->conf = nc;
	nc = NULL;
	(void)reporter_start(d);
	d->reloads++;
	log_set_level(d->conf->log.level);
	if (log_open(d->conf->log.file) < 0 || evlog_open(d->conf->log.events) < 0)
		log_err("event=reload warning=\"cannot reopen the log files: %s\"",
		        strerror(errno));
	log_notice("event=reload status=ok config=%s draining=%zu", d->conf->path, d->n_retiring);
done:
	conf_free(nc);
	notify_ready();
}

/* nfq_lookup_done - the inspector's packets that waited for this domain are judged. */
static void
nfq_lookup_done(void *arg, const struct sts_answer *a)
{
	struct daemon *d = arg;

	log_debug("event=nfq-lookup domain=%s status=%s", a->domain,
	          a->status == STS_POLICY  ? sts_mode_name(a->mode)
	          : a->status == STS_DEFER ? "defer"
	                                   : "no-policy");
	if (d->nfq != NULL)
		nfq_answer(d->nfq, a);
}

/* nfq_lookup - the inspector saw a domain it knows nothing of: it may wait for the answer. */
static int
nfq_lookup(void *arg, const char *domain)
{
	struct daemon *d = arg;

	return sts_engine_lookup(d->engine, domain, NULL, nfq_lookup_done, d) != 0 ? 0 : -1;
}

/*
 * nfq_policy - what the inspector needs to know of a domain, without I/O:
 * the engine's answer from memory (operator policies first), else the
 * cached policy while it is valid (RFC 8461 section 3.3).
 */
static int
nfq_policy(void *arg, const char *domain)
{
	struct daemon *d = arg;
	const struct sts_cache_entry *e;
	struct sts_answer a;
	int mode = -1;

	/* A DANE domain requires TLS as an enforce policy does (RFC 7672 section 2.2). */
	if (sts_engine_lookup_now(d->engine, domain, NULL, &a) == 1)
		return sts_answer_tls_mode(&a);
	if ((e = sts_cache_get(d->cache, domain)) != NULL) {
		if (e->expires_at > (int64_t)time(NULL))
			mode = (int)e->policy.mode;
		sts_cache_release(e);
	}
	return mode;
}

static void
on_signal(struct loop *loop, int fd, int events, void *arg)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			/* The workers are drained after loop_run() returns. */
			log_notice("event=stop signal=%s", strsignal((int)si.ssi_signo));
			notify_stopping();
			/* Written again once the workers have drained; this bounds what a
			 * stop that times out into SIGKILL can lose to the drain. */
			results_flush(d, "stop");
			loop_stop(loop);
			break;
		case SIGUSR1:
			if (log_reopen() < 0 || evlog_reopen() < 0)
				log_err("event=reopen error=\"%s\"", strerror(errno));
			else
				log_notice("event=reopen status=ok");
			break;
		case SIGHUP:
			reload(d);
			break;
		}
	}
}

int
daemon_run(struct conf *c)
{
	struct daemon d = {.conf = c, .sigfd = -1, .started = time(NULL)};
	char err[512], addrs[512];
	struct rlimit nofile;
	sigset_t set;

	log_set_level(c->log.level);
	/* Started by hand, nothing else makes the directories of the log files,
	 * the state and the control socket. */
	if (dirs_create(c, err, sizeof(err)) < 0) {
		log_err("event=start error=\"%s\"", err);
		return -1;
	}
	if (log_open(c->log.file) < 0) {
		log_err("event=start error=\"cannot open log file %s: %s\"", c->log.file,
		        strerror(errno));
		return -1;
	}
	if (daemon_check_conf(c, err, sizeof(err)) < 0) {
		log_err("event=start error=\"%s\"", err);
		return -1;
	}
	if (evlog_open(c->log.events) < 0) {
		log_err("event=start error=\"cannot open event file %s: %s\"", c->log.events,
		        strerror(errno));
		return -1;
	}
	fit_open_files(c, "start");
	if ((d.loop = loop_new()) == NULL) {
		log_err("event=start error=\"event loop: %s\"", strerror(errno));
		goto fail;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (d.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    loop_fd_add(d.loop, d.sigfd, LOOP_READ, on_signal, &d) < 0) {
		log_err("event=start error=\"signals: %s\"", strerror(errno));
		goto fail;
	}
	if ((d.cache = sts_cache_open(c->state_dir, err, sizeof(err))) == NULL) {
		log_err("event=start error=\"%s\"", err);
		goto fail;
	}
	if ((d.report = sts_report_new(time(NULL))) == NULL) {
		log_err("event=start error=\"report table: out of memory\"");
		goto fail;
	}
	results_open(&d, c);
	{
		struct sts_engine_params ep = {
		    .loop = d.loop, .conf = c, .cache = d.cache, .stats = &d.estats};
		if ((d.engine = sts_engine_new(&ep, err, sizeof(err))) == NULL) {
			log_err("event=start error=\"%s\"", err);
			goto fail;
		}
	}
	/* Bind everything while we may: NFQUEUE, listeners, metrics. */
	if (c->nfq.enabled) {
		struct nfq_callbacks cb = {.lookup = nfq_lookup,
		                           .policy = nfq_policy,
		                           .arg = &d,
		                           .shared_stats = &d.estats.shared};
		if ((d.nfq = nfq_start(d.loop, c, d.cache, &cb, err, sizeof(err))) == NULL) {
			log_err("event=start error=\"%s\"", err);
			goto fail;
		}
	}
	if ((c->n_listen > 0 || c->socketmap.n_listen > 0) &&
	    (d.proxy = proxy_new(c, d.cache, &d.estats, d.report, NULL, err, sizeof(err))) ==
	        NULL) {
		log_err("event=start error=\"%s\"", err);
		goto fail;
	}
	if (c->metrics.listen != NULL) {
		struct metrics_params mp = {
		    .loop = d.loop,
		    .addr = (const struct sockaddr *)&c->metrics.listen->sa,
		    .addrlen = c->metrics.listen->salen,
		    .collect = collect,
		    .arg = &d,
		};
		if ((d.metrics = metrics_start(&mp, err, sizeof(err))) == NULL) {
			log_err("event=start error=\"metrics %s: %s\"", c->metrics.listen->text,
			        err);
			goto fail;
		}
	}
	/* Then give up root before any worker thread exists. NFQUEUE, SO_MARK
	 * and transparent sockets need CAP_NET_ADMIN; nothing else is kept. */
	if (dirs_hand_over(c, err, sizeof(err)) < 0 ||
	    privdrop(c->user,
	             c->nfq.enabled || c->upstream_mark != 0 ||
	                 c->interception == CONF_INTERCEPT_TPROXY,
	             err, sizeof(err)) < 0) {
		log_err("event=start error=\"%s\"", err);
		goto fail;
	}
	if (c->control.socket != NULL) {
		struct control_params cp = {
		    .loop = d.loop,
		    .path = c->control.socket,
		    .group = (gid_t)-1,
		    .ops = &ctl_ops,
		    .arg = &d,
		};
		if ((d.control = control_start(&cp, err, sizeof(err))) == NULL) {
			log_err("event=start error=\"control %s: %s\"", c->control.socket, err);
			goto fail;
		}
	}
	/* The workers inherit the blocked signals: only the signalfd sees them. */
	if (d.proxy != NULL && proxy_run(d.proxy, err, sizeof(err)) < 0) {
		log_err("event=start error=\"%s\"", err);
		goto fail;
	}
	/* Without a store or a resolver the proxy still runs: said once, no reports. */
	(void)reporter_start(&d);
	if (notify_watchdog_start(d.loop, &d.watchdog) < 0)
		log_warn("event=start warning=\"systemd watchdog: %s\"", strerror(errno));
	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
		nofile.rlim_cur = 0;
	log_notice("event=start version=%s config=%s mode=%s listen=%s workers=%u "
	           "interception=%s cached_policies=%zu nfq=%s max_sessions=%u open_files=%llu",
	           STSPROXY_VERSION, c->path, c->mode == CONF_PROXY_ENFORCE ? "enforce" : "monitor",
	           listen_text(c, addrs, sizeof(addrs)), d.proxy != NULL ? c->workers : 0,
	           c->interception == CONF_INTERCEPT_TPROXY ? "tproxy" : "redirect",
	           sts_cache_count(d.cache), d.nfq != NULL ? "on" : "off", c->max_sessions,
	           (unsigned long long)nofile.rlim_cur);
	notify_ready();
	housekeeping(d.loop, &d);
	results_tick(d.loop, &d);
	if (loop_run(d.loop) < 0) {
		log_err("event=loop error=\"%s\"", strerror(errno));
		d.status = -1;
	}
	/* A report in flight is cut: it stays pending and is sent later. */
	reporter_stop(&d);
	/* Drain: sessions answer 421 at their next safe point, then end. */
	retire(&d);
	for (size_t i = 0; i < d.n_retiring; i++)
		retired_free(&d, &d.retiring[i]);
	d.n_retiring = 0;
	conf_free(d.owned);
	loop_timer_cancel(d.loop, d.housekeeping);
	loop_timer_cancel(d.loop, d.results_timer);
	notify_watchdog_stop(d.watchdog);
	control_stop(d.control);
	metrics_stop(d.metrics);
	nfq_stop(d.nfq);
	sts_engine_free(d.engine);
	sts_cache_close(d.cache);
	/* Every worker is gone: the last counts are final. */
	results_flush(&d, "stop");
	report_store_close(d.results);
	sts_report_free(d.report);
	log_notice("event=stopped");
	loop_fd_del(d.loop, d.sigfd);
	close(d.sigfd);
	loop_free(d.loop);
	evlog_close();
	return d.status;
fail:
	reporter_stop(&d);
	proxy_stop(d.proxy);
	control_stop(d.control);
	metrics_stop(d.metrics);
	nfq_stop(d.nfq);
	sts_engine_free(d.engine);
	sts_cache_close(d.cache);
	report_store_close(d.results);
	sts_report_free(d.report);
	if (d.sigfd >= 0)
		close(d.sigfd);
	loop_free(d.loop);
	evlog_close();
	return -1;
}
