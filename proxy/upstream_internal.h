/*
 * upstream_internal.h - what upstream.c (one session's upstream leg) and
 * upstream_pool.c (idle verified connections of one worker loop) share:
 * the connection object itself, so that an idle connection moves between
 * them whole, with everything learnt on it. Private to proxy/.
 */
#ifndef STS_UPSTREAM_INTERNAL_H
#define STS_UPSTREAM_INTERNAL_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "proxy/smtp_reply.h"
#include "proxy/upstream.h"
#include "proxy/upstream_pool.h"
#include "tls/tls_io.h"
#include "tls/tls_verify.h"

/* Longest EHLO name and banner name kept. */
#define UP_NAME_MAX 255

/*
 * One TCP connection and what is known of it; zeroed by conn_drop(). It
 * moves whole into the pool and back: its TLS facts, banner and EHLO reply
 * are facts of this connection and never outlive it.
 */
struct up_conn {
	enum upstream_phase phase;
	struct tls_io *io;
	struct smtp_reply *rd; /* reply reader; NULL while idle */
	bool rd_unsolicited;   /* the reply in rd began while none was due */
	bool connected;        /* the TCP connect completed */
	bool write_failed;
	unsigned due;               /* replies due for commands sent in UP_READY */
	unsigned caps;              /* SMTP_CAP_* of the last EHLO reply */
	bool helo_only;             /* EHLO refused */
	bool plain;                 /* a fallback connection: never STARTTLS */
	bool banner_quiet;          /* the banner is not the client's (a reconnect) */
	struct tls_facts *facts;    /* once the handshake completed; owned */
	char name[UP_NAME_MAX + 1]; /* the banner's name: SNI hint, reports */
	char seen[80];              /* a mangled STARTTLS capability line */
	/* for reuse (proxy/upstream_pool.h) */
	char *banner;                    /* the raw banner, as the MX sent it; owned */
	char *ehlo;                      /* the raw last 250 reply to EHLO; owned */
	char helo_sent[UP_NAME_MAX + 1]; /* the name of the last EHLO sent */
	unsigned msgs;                   /* messages the MX acknowledged here */
	bool last_ok;                    /* the last reply in UP_READY was 2xx */
	bool doubt;                      /* unsolicited reply or error: never pooled */
	bool reused;                     /* taken from the pool, RSET not answered yet */
	bool replay;                     /* the banner is still to be replayed */
	bool greeted;                    /* ... and the client greeted as helo_sent */
	bool finish;                     /* ... RSET answered too: set up at the next run */
};

/* upstream_conn_free - close c (after a best-effort QUIT when quit), free what it owns. */
void upstream_conn_free(struct loop *loop, struct up_conn *c, bool quit);

/*
 * upstream_pool_put - park c (moved: zeroed on success) for the identity
 * (client, helo = c->helo_sent, dst); 0, or -1 when it is not taken (c
 * untouched). The caller has removed c's descriptor from the loop.
 */
int upstream_pool_put(struct upstream_pool *p, struct up_conn *c, const char *client,
                      const struct sockaddr *dst, socklen_t dst_len);

/*
 * upstream_pool_take - the most recently parked connection of client to
 * dst into out (its descriptor not watched by anyone); 0, or -1 when there
 * is none. The EHLO name is checked by the caller once the client greets.
 */
int upstream_pool_take(struct upstream_pool *p, const char *client, const struct sockaddr *dst,
                       socklen_t dst_len, struct up_conn *out);

/* What upstream.c counts on the pool's counters. */
enum upstream_pool_stat {
	POOL_MISS = 0, /* a session of a pooling worker made a new connection */
	POOL_SAVED,    /* a taken connection answered its RSET and carried the session */
	POOL_RETRY,    /* ... then failed in its window: a new connection took over */
};

/* upstream_pool_count - one more of what. */
void upstream_pool_count(struct upstream_pool *p, enum upstream_pool_stat what);

#endif
