/*
 * conf.h - the configuration: one struct, loaded from a libconfig file,
 * validated completely before anything starts, then passed down.
 *
 * Nothing reads configuration from globals. A struct conf is immutable once
 * loaded; a reload builds a new one and swaps the pointer for new sessions.
 * Every string and array below is owned by the struct and freed by
 * conf_free().
 */
#ifndef STS_CONF_H
#define STS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/types.h"

/* An address with a port, as written in the file ("0.0.0.0:10025", "[::1]:25"). */
struct conf_addr {
	char *text;
	struct sockaddr_storage sa;
	socklen_t salen;
};

/* A source network ("10.0.0.0/8", "2001:db8::/32"). */
struct conf_net {
	char *text;
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

/*
 * An operator policy that wins over a published one (no first-use gap),
 * and the domain's DANE mode. Without "mode" the entry sets only DANE: the
 * domain's published MTA-STS policy applies.
 */
struct conf_policy {
	char *domain; /* lower case, A-labels */
	bool has_mode;
	enum sts_mode mode; /* STS_MODE_NONE without "mode" */
	char **mx;          /* patterns as written; the policy module validates them */
	size_t n_mx;
	bool has_dane;
	enum sts_dane_mode dane; /* with has_dane; otherwise dane.enabled decides */
	int line;                /* where it was written, for messages */
};

/* A smarthost: connections to addr are checked against name (RFC 8461 section 3.4). */
struct conf_smarthost {
	struct conf_addr addr;
	char *name;
	int line;
};

enum conf_proxy_mode {
	CONF_PROXY_ENFORCE = 0, /* block what the policy says to block */
	CONF_PROXY_MONITOR,     /* never block, log what enforce would have done */
};

enum conf_interception {
	CONF_INTERCEPT_REDIRECT = 0,
	CONF_INTERCEPT_TPROXY,
};

/* How the report relay's STARTTLS is used (TLS-RPT by mail, RFC 8460 section 5.3). */
enum conf_report_starttls {
	CONF_REPORT_STARTTLS_REQUIRED = 0, /* no STARTTLS or a bad certificate: not sent */
	CONF_REPORT_STARTTLS_OPTIONAL,     /* TLS when offered, plaintext otherwise */
};

enum conf_nfq_action {
	CONF_NFQ_LOG = 0,
	CONF_NFQ_BLOCK,
};

/* What a packet held for a policy lookup gets when no answer comes in time. */
enum conf_nfq_hold_action {
	CONF_NFQ_HOLD_BLOCK = 0,
	CONF_NFQ_HOLD_PASS,
};

/* Per-state timeouts in seconds (RFC 5321 section 4.5.3.2 defaults). */
struct conf_timeouts {
	unsigned connect;    /* upstream TCP connect */
	unsigned greeting;   /* upstream banner: 5 min */
	unsigned command;    /* replies to commands, and client idle: 5 min */
	unsigned starttls;   /* STARTTLS reply and TLS handshake */
	unsigned data_block; /* between DATA blocks: 3 min */
	unsigned data_done;  /* reply to the final dot: 10 min */
	unsigned drain;      /* on stop or reload: how long running sessions may finish */
};

struct conf {
	char *path; /* the file it came from */

	char *state_dir; /* cache, generated keys, server memory */
	char *user;      /* drop privileges to this user when started as root; NULL: stay */

	enum conf_proxy_mode mode;
	struct conf_addr *listen;
	size_t n_listen;
	enum conf_interception interception;
	struct conf_net *clients; /* empty: every source is allowed */
	size_t n_clients;
	uint32_t upstream_mark; /* SO_MARK on upstream sockets; 0: none */
	unsigned max_sessions;
	unsigned workers;  /* event loop threads */
	unsigned max_line; /* longest command or reply line accepted, octets */
	struct conf_timeouts timeouts;

	/* Reuse of verified upstream connections across client sessions of the
	 * same client identity (proxy/upstream_pool.h). */
	struct {
		unsigned reuse_idle;         /* seconds a connection waits parked; 0: no reuse */
		unsigned reuse_max_messages; /* messages per connection before it is closed */
		unsigned reuse_max_per_dest; /* parked per destination address:port */
		unsigned reuse_max;          /* parked per worker */
	} upstream;

	struct {
		enum log_level level;
		char *file;   /* NULL: stderr */
		char *events; /* JSON lines event file; NULL: none */
	} log;

	struct {
		char **forwarders; /* empty: /etc/resolv.conf */
		size_t n_forwarders;
		char *trust_anchor_file; /* NULL: no DNSSEC validation */
		unsigned timeout;        /* seconds per lookup */
	} dns;

	struct {
		char *ca_file;     /* NULL: the system store */
		char *server_cert; /* client-side STARTTLS; NULL: generated in state_dir */
		char *server_key;
		bool client_starttls; /* offer STARTTLS to the mailer */
	} tls;

	struct {
		unsigned fetch_timeout;    /* seconds, whole HTTPS fetch */
		bool defer_on_dns_failure; /* SERVFAIL and no cache: 4xx (true) or no policy */
		bool refresh;              /* proactive refresh before expiry */
		/* Seconds a TXT answer and an MX set are trusted in memory: their DNS
		 * TTL, bounded by these (min <= max) */
		unsigned txt_ttl_min, txt_ttl_max;
		unsigned mx_ttl_min, mx_ttl_max;
	} sts;

	struct {
		bool enabled; /* RFC 7672 wherever DNSSEC says so (needs dns.trust_anchor_file) */
		bool insecure_mx; /* TLSA of MX hosts named by an unsigned MX RRset ("half-DANE") */
		/* Seconds a domain's DANE state is trusted in memory: the shortest TTL of
		 * its MX, address and TLSA answers, bounded by these (min <= max) */
		unsigned ttl_min, ttl_max;
	} dane;

	struct {
		unsigned flush_interval; /* seconds between writes of TLS-RPT counts to report.db */
		unsigned keep_days;      /* days of results kept, today included (>= 2) */
		char *gateway_id;        /* this gateway's rows; NULL: the host name */
	} report_store;

	struct conf_policy *policies;
	size_t n_policies;
	struct conf_smarthost *smarthosts;
	size_t n_smarthosts;

	struct {
		bool enabled; /* an nfq section is present */
		unsigned *queues;
		size_t n_queues;
		enum conf_nfq_action action;
		bool fail_open;
		unsigned hold_timeout; /* seconds a verdict waits for a policy lookup */
		unsigned hold_max;     /* verdicts waiting at once, all queues; 0: never wait */
		enum conf_nfq_hold_action hold_timeout_action;
	} nfq;

	struct {
		struct conf_addr *listen; /* NULL: no metrics endpoint */
	} metrics;

	struct {
		char *socket; /* NULL: no control socket */
	} control;

	/*
	 * State shared with other gateways through Redis (policy/shared_state.h).
	 * Off unless a shared group is present; then exactly one of redis,
	 * redis_path and sentinels is set.
	 */
	struct {
		bool enabled;
		struct conf_addr *redis; /* "host:port", numeric; NULL: see below */
		char *redis_path;        /* a unix socket ("/run/redis/redis.sock") */
		struct conf_addr *sentinels;
		size_t n_sentinels;
		char *master;        /* the Sentinel master name, with sentinels */
		char *user;          /* ACL user; NULL: AUTH with password only */
		char *password;      /* NULL: no AUTH */
		char *sentinel_user; /* ACL user at the Sentinels; NULL: AUTH with password only */
		char *sentinel_password;  /* NULL: no AUTH to the Sentinels */
		char *prefix;             /* of every key and channel: "stsproxy:" */
		unsigned connect_timeout; /* ms */
		unsigned command_timeout; /* ms */
		unsigned wait_max;        /* ms a lookup waits for Redis before its own fetch */
	} shared;

	/* The socketmap server for Postfix's smtp_tls_policy_maps (proxy/socketmap.h). */
	struct {
		char **listen; /* "host:port", "[v6]:port" or "unix:/path"; empty: none */
		size_t n_listen;
		unsigned max_connections; /* open at once, all workers */
		unsigned idle_timeout;    /* seconds without a request before closing */
		unsigned max_request;     /* longest request data, octets */
		bool testing_secure;      /* answer a testing policy as enforce */
		bool tlsrpt;              /* TLSRPT attributes for every NAME (Postfix >= 3.10) */
	} socketmap;

	/* TLS-RPT (RFC 8460): the daily reports this gateway sends. */
	struct {
		bool enable;        /* the daemon sends reports every UTC day */
		char *organization; /* section 4.4 "organization-name"; NULL: unset */
		char *contact;      /* section 4.4 "contact-info"; NULL: unset */
		char *submitter;    /* host name: report-id, file name, TLS-Report-Submitter */
		char *from;         /* sender of mailto: reports; NULL: tlsrpt@<submitter> */
		char *relay;        /* "host:port" of the SMTP relay for mailto:; NULL: none */
		char *relay_user;   /* SMTP AUTH user at the relay; NULL: no AUTH */
		char *relay_password_file; /* its password, first line of the file */
		enum conf_report_starttls relay_starttls;
		unsigned delay_max;     /* seconds after 00:00 UTC, drawn at random each day */
		unsigned retry_first;   /* seconds before the first retry, doubling from there */
		unsigned retry_for;     /* seconds after the first attempt at which retries stop */
		unsigned timeout;       /* seconds, one delivery attempt */
		unsigned max_size;      /* octets of the gzip report; a larger one is not sent */
		bool only_failures;     /* report only domains with failures */
		bool include_no_policy; /* report domains without a policy (no-policy-found) */
		/* With shared: seconds a report waits for an unreachable Redis (the other
		 * gateways' counts and the lock) before this gateway sends what it has */
		unsigned shared_wait;
	} report;
};

/*
 * conf_defaults - fill c with the built-in defaults (no listener, no file).
 * Returns 0, or -1 on allocation failure. Free with conf_free().
 */
int conf_defaults(struct conf *c);

/*
 * conf_load - read and validate path. On success returns a new struct conf
 * (free with conf_free()). On failure returns NULL and writes one line to err
 * naming the file, the line and the key, e.g.
 *   "/etc/stsproxy/stsproxy.conf:12: dns.timeout: expected an integer".
 */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/*
 * conf_load_string - as conf_load() but from memory; name is used in
 * messages in place of the file name. For tests and fuzzing.
 */
struct conf *conf_load_string(const char *text, const char *name, char *err, size_t errlen);

/* conf_free - frees c and everything it owns; NULL is a no-op. */
void conf_free(struct conf *c);

/*
 * conf_parse_addr - parse "host:port" or "[v6]:port" (numeric only) into
 * out; 0 or -1. Owned strings are not touched: out->text is left alone.
 */
int conf_parse_addr(const char *text, struct conf_addr *out);

/* conf_parse_net - parse "addr/prefix" or a bare address; 0 or -1. */
int conf_parse_net(const char *text, struct conf_net *out);

/* conf_net_contains - true if sa (AF_INET or AF_INET6) is inside net. */
bool conf_net_contains(const struct conf_net *net, const struct sockaddr *sa);

#endif
