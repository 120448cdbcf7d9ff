/*
 * nfq.c - libnetfilter_queue glue through its libmnl API: one netlink
 * socket per queue in the daemon's loop, packets parsed (nfq/packet.c)
 * and judged (nfq/detect.c), verdicts sent back, batched where they are
 * plain accepts, and resets sent for blocked flows.
 *
 * Every per-packet failure ends in an accept: the inspector must never
 * become the reason mail stops flowing, except by a block decision (or a
 * held packet's hold_timeout_action). A held packet's handle (the cookie
 * of nfq/detect.h) is its queue's index and its packet id.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "core/log.h"
#include "core/util.h"
#include "nfq/nfq.h"
#include "nfq/packet.h"
#include "policy/shared_state.h"

#define NFQ_COPY_RANGE 0xffff
#define NFQ_BUF_SIZE   (NFQ_COPY_RANGE + 4096)
/* A verdict message: header, nfgenmsg, verdict and mark attributes. A fixed
 * size, because MNL_SOCKET_BUFFER_SIZE calls sysconf() on every packet. */
#define NFQ_VERDICT_MSG 256
#define NFQ_CONFIG_MSG  512   /* a config request; zeroed first: its structs have padding */
#define NFQ_TICK_MS     10000 /* expiry of idle flows */
#define NFQ_QUEUE_LEN   1024  /* the kernel's default queue length; held packets come on top */
#define NFQ_SAVE_TICKS  6     /* server memory saved every minute when changed */

struct nfq_queue {
	struct nfq *owner;
	struct mnl_socket *nl;
	int fd;
	unsigned num;
	uint32_t batch_id; /* highest plain accept not yet sent */
	bool batch;
	size_t held; /* packets of this queue whose verdict waits: no batches meanwhile */
};

struct nfq {
	struct loop *loop;
	const struct conf *conf;
	struct sts_cache *cache;
	struct nfq_callbacks cb;
	struct detect *det;
	struct nfq_queue *q;
	size_t n_q;
	int raw4;
	int raw6;
	uint64_t timer;
	unsigned ticks;
	uint64_t hold_timer; /* 0, or armed for hold_at */
	uint64_t hold_at;
	char *buf;                   /* NFQ_BUF_SIZE, shared: one queue is read at a time */
	struct shared_state *shared; /* servers seen offering STARTTLS, with other gateways */
};

static int
send_msg(struct nfq_queue *q, struct nlmsghdr *nlh)
{
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0) {
		log_err("nfq: event=verdict_failed queue=%u error=\"%s\"", q->num, strerror(errno));
		return -1;
	}
	return 0;
}

static void
flush_batch(struct nfq_queue *q)
{
	char buf[NFQ_VERDICT_MSG];
	struct nlmsghdr *nlh;

	if (!q->batch)
		return;
	/* One message accepts every packet of the queue up to batch_id. */
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, q->num);
	nfq_nlmsg_verdict_put(nlh, (int)q->batch_id, NF_ACCEPT);
	send_msg(q, nlh);
	q->batch = false;
}

static void
verdict(struct nfq_queue *q, uint32_t id, int v, uint32_t mark)
{
	char buf[NFQ_VERDICT_MSG];
	struct nlmsghdr *nlh;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, q->num);
	nfq_nlmsg_verdict_put(nlh, (int)id, v);
	if (mark)
		nfq_nlmsg_verdict_put_mark(nlh, mark);
	send_msg(q, nlh);
}

static void
send_rst(struct nfq *n, const struct nfq_pkt *p, bool to_source)
{
	uint8_t pkt[NFQ_RST_MAX];
	struct sockaddr_storage ss;
	socklen_t sl;
	int len, fd = p->family == AF_INET6 ? n->raw6 : n->raw4;

	if (fd < 0 || (len = nfq_packet_build_rst(p, to_source, pkt, sizeof(pkt))) < 0)
		return;
	memset(&ss, 0, sizeof(ss));
	if (p->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, to_source ? p->src : p->dst, 16);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, to_source ? p->src : p->dst, 4);
		sl = sizeof(*s4);
	}
	if (sendto(fd, pkt, (size_t)len, 0, (struct sockaddr *)&ss, sl) < 0)
		log_warn("nfq: event=rst_failed error=\"%s\"", strerror(errno));
}

static int
on_packet(const struct nlmsghdr *nlh, void *data)
{
	struct nfq_queue *q = data;
	struct nfq *n = q->owner;
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	struct nfqnl_msg_packet_hdr *ph;
	struct detect_result r = {DETECT_ACCEPT, false};
	struct nfq_pkt p;
	uint32_t id;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
		return MNL_CB_OK;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(ph->packet_id);
	if (attr[NFQA_PAYLOAD] != NULL &&
	    nfq_packet_parse(mnl_attr_get_payload(attr[NFQA_PAYLOAD]),
	                     mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]), &p) == 0)
		r = detect_packet(n->det, &p, loop_now_ms(n->loop),
		                  (uint64_t)(q - n->q) << 32 | id);
	switch (r.verdict) {
	case DETECT_ACCEPT:
		if (q->held > 0) {
			verdict(q, id, NF_ACCEPT, 0);
			break;
		}
		q->batch_id = id;
		q->batch = true;
		break;
	case DETECT_RELEASE:
		flush_batch(q);
		/* NF_REPEAT: the rules see the mark, set the connmark, accept. */
		verdict(q, id, NF_REPEAT, NFQ_MARK_DECIDED);
		break;
	case DETECT_DROP:
		flush_batch(q);
		verdict(q, id, NF_DROP, 0);
		if (r.reset) {
			send_rst(n, &p, true);
			send_rst(n, &p, false);
		}
		break;
	case DETECT_HOLD:
		flush_batch(q);
		q->held++;
		break;
	}
	return MNL_CB_OK;
}

/* on_verdict - a held packet's verdict is known (detect_verdict_cb). */
static void
on_verdict(void *arg, uint64_t cookie, const struct nfq_pkt *p, struct detect_result r)
{
	struct nfq *n = arg;
	size_t qi = (size_t)(cookie >> 32);
	uint32_t id = (uint32_t)cookie;
	struct nfq_queue *q;

	if (qi >= n->n_q)
		return;
	q = &n->q[qi];
	if (q->held > 0)
		q->held--;
	flush_batch(q);
	switch (r.verdict) {
	case DETECT_RELEASE:
		verdict(q, id, NF_REPEAT, NFQ_MARK_DECIDED);
		break;
	case DETECT_DROP:
		verdict(q, id, NF_DROP, 0);
		if (r.reset) {
			send_rst(n, p, true);
			send_rst(n, p, false);
		}
		break;
	default:
		verdict(q, id, NF_ACCEPT, 0);
		break;
	}
}

static void on_hold_timer(struct loop *loop, void *arg);

/* arm_holds - the hold timer runs for the next deadline, if anything waits. */
static void
arm_holds(struct nfq *n)
{
	uint64_t at = detect_next_deadline(n->det), now = loop_now_ms(n->loop);

	if (at == 0 || (n->hold_timer != 0 && n->hold_at <= at))
		return;
	if (n->hold_timer != 0)
		loop_timer_cancel(n->loop, n->hold_timer);
	n->hold_at = at;
	n->hold_timer = loop_timer_add(n->loop, at > now ? at - now : 0, on_hold_timer, n);
}

static void
on_hold_timer(struct loop *loop, void *arg)
{
	struct nfq *n = arg;

	n->hold_timer = 0;
	detect_expire_holds(n->det, loop_now_ms(loop));
	arm_holds(n);
}

static void
on_readable(struct loop *loop, int fd, int events, void *arg)
{
	struct nfq_queue *q = arg;
	ssize_t len;
	int i;

	(void)loop;
	(void)fd;
	(void)events;
	/* A bounded number of reads per wake-up keeps the other queues served. */
	for (i = 0; i < 64; i++) {
		len = mnl_socket_recvfrom(q->nl, q->owner->buf, NFQ_BUF_SIZE);
		if (len < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("nfq: event=recv_failed queue=%u error=\"%s\"", q->num,
				         strerror(errno));
			break;
		}
		mnl_cb_run(q->owner->buf, (size_t)len, 0, mnl_socket_get_portid(q->nl), on_packet,
		           q);
	}
	flush_batch(q);
	arm_holds(q->owner);
}

static int
policy_mode(void *arg, const char *domain)
{
	struct nfq *n = arg;
	const struct sts_cache_entry *e;
	int mode;

	if (n->cb.policy != NULL)
		return n->cb.policy(n->cb.arg, domain);
	if (n->cache == NULL || (e = sts_cache_get(n->cache, domain)) == NULL)
		return -1;
	/* RFC 8461 section 3.3: an expired policy no longer applies. */
	mode = e->expires_at > sts_now_wall() ? (int)e->policy.mode : -1;
	sts_cache_release(e);
	return mode;
}

static int
lookup(void *arg, const char *domain)
{
	struct nfq *n = arg;

	return n->cb.lookup != NULL ? n->cb.lookup(n->cb.arg, domain) : -1;
}

static void
on_tick(struct loop *loop, void *arg)
{
	struct nfq *n = arg;

	detect_expire(n->det, loop_now_ms(loop));
	if (++n->ticks % NFQ_SAVE_TICKS == 0)
		detect_save(n->det);
	n->timer = loop_timer_add(loop, NFQ_TICK_MS, on_tick, n);
}

static int
nl_config(struct nfq_queue *q, struct nlmsghdr *nlh, uint32_t seq)
{
	char buf[8192];
	ssize_t len;

	/* Ask for the kernel's answer: a queue another process already holds
	 * is refused only there (EBUSY), and must fail the start, not later. */
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	if ((len = mnl_socket_recvfrom(q->nl, buf, sizeof(buf))) < 0)
		return -1;
	return mnl_cb_run(buf, (size_t)len, seq, mnl_socket_get_portid(q->nl), NULL, NULL) < 0 ? -1
	                                                                                       : 0;
}

static int
bind_queue(struct nfq *n, struct nfq_queue *q, char *err, size_t errlen)
{
	char buf[NFQ_CONFIG_MSG];
	struct nlmsghdr *nlh;
	uint32_t flags = NFQA_CFG_F_GSO;
	int one = 1;

	memset(buf, 0, sizeof(buf));
	q->owner = n;
	q->fd = -1;
	if ((q->nl = mnl_socket_open(NETLINK_NETFILTER)) == NULL ||
	    mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if (nl_config(q, nlh, 1) < 0)
		goto fail;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, NFQ_COPY_RANGE);
	mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(NFQ_QUEUE_LEN + n->conf->nfq.hold_max));
	if (n->conf->nfq.fail_open)
		flags |= NFQA_CFG_F_FAIL_OPEN;
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
	if (nl_config(q, nlh, 2) < 0)
		goto fail;
	mnl_socket_setsockopt(q->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	q->fd = mnl_socket_get_fd(q->nl);
	if (fcntl(q->fd, F_SETFL, fcntl(q->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    loop_fd_add(n->loop, q->fd, LOOP_READ, on_readable, q) < 0) {
		q->fd = -1;
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "nfq: queue %u: %s", q->num, strerror(errno));
	return -1;
}

/* Servers with STARTTLS are remembered in Redis for 30 days after the last sighting. */
#define SHARED_SERVER_TTL (30u * 86400u)

/* server_seen - tell the other gateways (they detect its stripping too). */
static void
server_seen(void *arg, int family, const uint8_t *addr, int64_t seen)
{
	struct nfq *n = arg;

	shared_state_server(n->shared, family, addr, seen, SHARED_SERVER_TTL);
}

/* server_shared - another gateway saw a server offering STARTTLS. */
static void
server_shared(void *arg, int family, const uint8_t *addr, int64_t seen)
{
	struct nfq *n = arg;

	if (n->det != NULL)
		detect_server_learned(n->det, family, addr, seen);
}

/* nfq_start - bind the queues into loop; NULL with err on failure. */
struct nfq *
nfq_start(struct loop *loop, const struct conf *conf, struct sts_cache *cache,
          const struct nfq_callbacks *cb, char *err, size_t errlen)
{
	struct detect_params dp = {0};
	struct nfq *n;
	size_t i;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		snprintf(err, errlen, "nfq: out of memory");
		return NULL;
	}
	n->loop = loop;
	n->conf = conf;
	n->cache = cache;
	n->raw4 = n->raw6 = -1;
	if (cb)
		n->cb = *cb;
	dp.action = conf->nfq.action;
	dp.state_dir = conf->state_dir;
	dp.policy = policy_mode;
	dp.lookup = lookup;
	dp.on_verdict = on_verdict;
	dp.arg = n;
	dp.hold_max = conf->nfq.hold_max;
	dp.hold_ms = (uint64_t)conf->nfq.hold_timeout * 1000;
	dp.hold_action = conf->nfq.hold_timeout_action;
	if (conf->shared.enabled) {
		struct shared_state_params sp = {.loop = loop,
		                                 .conf = conf,
		                                 .subscribe = true,
		                                 .stats = cb != NULL ? cb->shared_stats : NULL,
		                                 .on_server = server_shared,
		                                 .arg = n};

		if ((n->shared = shared_state_new(&sp)) == NULL) {
			snprintf(err, errlen, "nfq: out of memory");
			goto fail;
		}
		dp.on_server = server_seen;
	}
	if ((n->det = detect_new(&dp, err, errlen)) == NULL)
		goto fail;
	if ((n->buf = malloc(NFQ_BUF_SIZE)) == NULL ||
	    (n->q = calloc(conf->nfq.n_queues, sizeof(*n->q))) == NULL) {
		snprintf(err, errlen, "nfq: out of memory");
		goto fail;
	}
	for (i = 0; i < conf->nfq.n_queues; i++) {
		n->q[i].num = conf->nfq.queues[i];
		n->n_q++;
		if (bind_queue(n, &n->q[i], err, errlen) < 0)
			goto fail;
	}
	if (conf->nfq.action == CONF_NFQ_BLOCK) {
		/* Resets need raw sockets; without them blocking still drops. */
		n->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		n->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		if (n->raw4 < 0 || n->raw6 < 0)
			log_warn("nfq: event=no_raw_socket error=\"%s\" blocked flows are "
			         "dropped without resets",
			         strerror(errno));
	}
	if ((n->timer = loop_timer_add(loop, NFQ_TICK_MS, on_tick, n)) == 0) {
		snprintf(err, errlen, "nfq: out of memory");
		goto fail;
	}
	log_info("nfq: event=started queues=%zu action=%s fail_open=%s hold_timeout=%u "
	         "hold_max=%u hold_timeout_action=%s",
	         n->n_q, conf->nfq.action == CONF_NFQ_BLOCK ? "block" : "log",
	         conf->nfq.fail_open ? "yes" : "no", conf->nfq.hold_timeout, conf->nfq.hold_max,
	         conf->nfq.hold_timeout_action == CONF_NFQ_HOLD_PASS ? "pass" : "block");
	/* The kernel flag only covers a full queue while this process holds it. */
	if (conf->nfq.fail_open)
		log_warn("nfq: event=fail_open_rules warning=\"fail_open lets packets through only "
		         "while stsproxy runs and a queue is full; while it is down, packets pass "
		         "only with --queue-bypass in the NFQUEUE rules (nftables: queue flags "
		         "bypass), as in scripts/nfq-iptables.sh; check with iptables -S | grep "
		         "NFQUEUE\"");
	return n;
fail:
	nfq_stop(n);
	return NULL;
}

/* nfq_stop - close everything; NULL is a no-op. */
void
nfq_stop(struct nfq *n)
{
	char buf[NFQ_CONFIG_MSG];
	struct nlmsghdr *nlh;
	size_t i;

	if (n == NULL)
		return;
	memset(buf, 0, sizeof(buf));
	if (n->timer)
		loop_timer_cancel(n->loop, n->timer);
	if (n->hold_timer)
		loop_timer_cancel(n->loop, n->hold_timer);
	/* Held packets get their verdicts while the queues are still bound. */
	detect_free(n->det);
	n->det = NULL;
	shared_state_free(n->shared);
	n->shared = NULL;
	for (i = 0; i < n->n_q; i++) {
		struct nfq_queue *q = &n->q[i];

		if (q->nl == NULL)
			continue;
		if (q->fd >= 0) {
			flush_batch(q);
			loop_fd_del(n->loop, q->fd);
			nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
			nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
			mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len);
		}
		mnl_socket_close(q->nl);
	}
	if (n->raw4 >= 0)
		close(n->raw4);
	if (n->raw6 >= 0)
		close(n->raw6);
	free(n->q);
	free(n->buf);
	free(n);
}

/* nfq_stats - the detector's counters. */
void
nfq_stats(const struct nfq *n, struct detect_stats *out)
{
	detect_get_stats(n->det, out);
}

/* nfq_flows - live flows. */
size_t
nfq_flows(const struct nfq *n)
{
	return detect_flows(n->det);
}

/* nfq_holds - verdicts waiting now. */
size_t
nfq_holds(const struct nfq *n)
{
	return detect_holds(n->det);
}

/*
 * nfq_answer - a lookup ended: judge what waited for it. A domain with DANE
 * (RFC 7672 section 2.2) requires TLS as an enforce policy does; without
 * a policy, as if none (RFC 8461 section 5); -1 when the answer defers.
 */
void
nfq_answer(struct nfq *n, const struct sts_answer *a)
{
	int mode = sts_answer_tls_mode(a);

	detect_answer(n->det, a->domain, mode, loop_now_ms(n->loop));
	arm_holds(n);
}
