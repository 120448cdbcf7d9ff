/*
 * session_internal.h - what session.c (the session's life: start, run,
 * timers, message data, teardown) and relay.c (the client's commands, the
 * reply FIFO and the policy verdicts) share. Private to proxy/.
 *
 * A session has two peers: the client leg (cio, a tls_io) and the upstream
 * leg (up, proxy/upstream.h), which owns its connection and everything
 * known about it. The session's state is the client's side of the dialogue;
 * while the upstream sets up, the session is in S_UPSTREAM.
 */
#ifndef STS_SESSION_INTERNAL_H
#define STS_SESSION_INTERNAL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/sts_engine.h"
#include "proxy/relay_events.h"
#include "proxy/session.h"
#include "proxy/smtp_cmd.h"
#include "proxy/smtp_data.h"
#include "proxy/smtp_reply.h"
#include "proxy/txn_report.h"
#include "proxy/upstream.h"
#include "tls/tls_io.h"

/* Client input buffered during DATA: one read per window, not per line bound. */
#define SESSION_DATA_WINDOW (64 * 1024)
/* Output bound of the client leg: many pipelined replies. */
#define SESSION_OUT_MAX (256 * 1024)
/* RFC 5321 section 4.5.3.1.8 asks for at least 100 recipients; this is our cap. */
#define SESSION_RCPT_MAX 1000
/* Commands queued at once; beyond this the client is simply not read (backpressure). */
#define SESSION_PEND_MAX (SESSION_RCPT_MAX + 64)
/* Longest EHLO argument kept. */
#define SESSION_NAME_MAX 255

enum state {
	S_UPSTREAM = 0, /* the upstream is connecting or setting up; the client waits */
	S_GREET,        /* banner relayed; waiting for the client's EHLO/HELO */
	S_READY,        /* relaying commands */
	S_DATA,         /* streaming message data */
	S_CLIENT_TLS,   /* TLS handshake with the client */
	S_CLOSING,      /* last reply flushing to the client */
	S_MAX
};

/* Flags of a FIFO entry. */
enum {
	PF_UPSTREAM = 1 << 0, /* forwarded: the upstream's reply decides */
	PF_DONE = 1 << 1,     /* the reply is known and waits for its turn */
	PF_HIDDEN = 1 << 2,   /* our own held MAIL: the reply is not the client's */
	PF_CLOSE = 1 << 3,    /* close the session after this reply */
	PF_DOT = 1 << 4,      /* the final dot: its reply acknowledges the message */
	PF_PARK = 1 << 5,     /* a local QUIT: the upstream may go to the pool */
	PF_REPLAY = 1 << 6,   /* RCPT moved to a new connection: judged and sent again */
};

/* One command waiting for its reply (RFC 2920 section 3.1). */
struct pend {
	struct pend *next;
	enum smtp_cmd_id cmd;
	unsigned flags;
	unsigned txn;            /* transaction generation it belongs to */
	enum sts_mode mode;      /* RCPT: the policy mode it was judged under */
	unsigned tdom;           /* RCPT: its txn_report handle; 0: not counted */
	struct txn_report tdoms; /* the final dot: its transaction's policy domains */
	char *reply;             /* what the client gets, CRLF included */
	size_t len;
	/* RCPT sent while upstream_retry_open(): its line, for relay_retry() */
	char *line;
	size_t line_len;
};

/* Held MAIL FROM of the current transaction. */
enum mail_state {
	MAIL_NONE = 0,
	MAIL_HELD,    /* answered locally, not sent */
	MAIL_SENT,    /* sent upstream (reply pending or positive) */
	MAIL_REFUSED, /* the upstream refused it: recipients get its reply */
};

/* The verdict on the recipient at the head of the client input. */
struct verdict {
	bool ready;
	unsigned conn; /* the upstream connection it was made on (upstream_conn_id) */
	bool forward;
	enum sts_mode mode;
	enum sts_policy_type type;         /* the policy that decided */
	bool counted;                      /* a passing policy domain: count its deliveries */
	char policy_id[STS_REPORT_ID_LEN]; /* ... under this policy id */
	char reply[480];                   /* the local 451 when not forwarded */
};

struct session {
	struct session *next, *prev; /* ctx->sessions */
	struct session_ctx *ctx;
	const struct conf *conf;
	enum state state;
	char id[24];
	char client_ip[INET6_ADDRSTRLEN];
	char dest[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage dst;
	socklen_t dst_len;

	struct tls_io *cio;
	struct upstream *up;
	uint64_t timer;
	uint64_t lookup;      /* pending sts_engine_lookup() or _recheck() */
	bool lookup_rechecks; /* ... it is a recheck before a refusal */
	char lookup_domain[SMTP_DOMAIN_MAX + 1];

	struct pend *head, *tail;
	unsigned n_pend;
	unsigned n_replay; /* PF_REPLAY entries: the client is not read meanwhile */

	/* the client */
	bool greeted;      /* the client said EHLO/HELO (since its last TLS start) */
	bool client_esmtp; /* ... and it was EHLO */
	bool blocked;      /* stop reading commands: DATA or QUIT waits for its reply */
	char *ehlo_reply;  /* the reply built for the client's first EHLO */
	char helo[SESSION_NAME_MAX + 1];

	/* The state timer is re-armed only when the session moves on (a new
	 * state, a whole command or reply, a block of data), never for a lone
	 * byte: a client trickling one byte a second must still meet
	 * timeouts.command (RFC 5321 section 4.5.3.2.7). */
	uint64_t tick;
	uint64_t armed_tick;
	int armed_key;
	uint64_t timer_at; /* when the armed timer fires (loop_now_ms) */
	uint64_t due_ms;   /* when the state really times out: >= timer_at */
	bool shutting_down;
	bool in_run, rerun, dead;

	/* the transaction */
	enum mail_state mail;
	char *mail_line;
	size_t mail_len;
	char *mail_refusal;
	unsigned txn;
	unsigned n_rcpt, n_rcpt_ok;
	enum sts_mode txn_mode;
	struct txn_report tdoms; /* empty unless ctx->report is set */
	struct verdict verdict;
	struct smtp_data data;
	bool cr_held;
};

/* session.c */
void session_enter(struct session *s, enum state st);
void session_run(struct session *s);
void session_close(struct session *s, const char *final);
void session_event(struct session *s, struct relay_event *ev);
void session_stat_add(_Atomic uint64_t *c, int64_t n);

/* relay.c */
/* relay_commands - parse and dispatch what the client sent. >0 on progress. */
int relay_commands(struct session *s);
/* relay_flush - write every answered entry at the head of the FIFO, in order. */
int relay_flush(struct session *s);
/* relay_push - append a FIFO entry (reply copied, may be NULL); NULL on no memory. */
struct pend *relay_push(struct session *s, enum smtp_cmd_id cmd, unsigned flags, const char *reply,
                        size_t len);
/* relay_pop - drop the head entry. */
void relay_pop(struct session *s);
/* relay_upstream_next - the oldest entry still waiting for an upstream reply. */
struct pend *relay_upstream_next(struct session *s);
/* relay_txn_reset - forget the envelope (RSET, EHLO, HELO, the final dot, TLS). */
void relay_txn_reset(struct session *s);
/* relay_upstream_note - what the upstream said (upstream_note_cb). */
void relay_upstream_note(void *arg, enum upstream_note note, const struct smtp_reply *r,
                         const char *final);
/* relay_setup_ehlo - an EHLO/HELO reply r of the set-up: build the client's reply from it. */
void relay_setup_ehlo(struct session *s, const struct smtp_reply *r);
/* relay_setup_done - the upstream is ready: answer the client's first EHLO, relay. */
void relay_setup_done(struct session *s);
/* relay_retry - the reused connection failed in its window (UPN_RETRY): move on, or not. */
void relay_retry(struct session *s);
/* relay_reply - the upstream's reply r to the oldest forwarded entry; -1 on error. */
int relay_reply(struct session *s, const struct smtp_reply *r);
/* relay_client_send - queue bytes for the client; a full buffer ends the session. */
void relay_client_send(struct session *s, const char *buf, size_t len);

#endif
