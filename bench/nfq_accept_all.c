/*
 * nfq_accept_all.c - the baseline of bench/suite_nfq.sh: an NFQUEUE
 * program that accepts every packet without looking at it.
 *
 *   nfq_accept_all QUEUE
 *
 * Set up exactly like the inspector (nfq/nfq.c): libmnl, copy range
 * 0xffff, NFQA_CFG_F_GSO and NFQA_CFG_F_FAIL_OPEN, NETLINK_NO_ENOBUFS, a
 * non-blocking socket read at most 64 times per wake-up, consecutive
 * accepts sent as one NFQNL_MSG_VERDICT_BATCH. What the inspector costs
 * over this program is parsing, reassembly and detection, nothing else.
 * Prints "ready" once bound and "packets=N" on SIGTERM or SIGINT. Built by
 * the suite with cc and pkg-config (the Makefile builds bench_*.c only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define COPY_RANGE 0xffff /* as NFQ_COPY_RANGE in nfq/nfq.c */
#define BUF_SIZE   (COPY_RANGE + 4096)
#define VERDICT    256 /* a verdict message, as NFQ_VERDICT_MSG in nfq/nfq.c */
#define READS      64  /* reads per wake-up, as in nfq/nfq.c */

struct aa {
	struct mnl_socket *nl;
	unsigned queue;
	unsigned seq;
	uint32_t batch_id;
	bool batch;
	uint64_t packets;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
flush_batch(struct aa *a)
{
	char buf[VERDICT];
	struct nlmsghdr *nlh;

	if (!a->batch)
		return;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, a->queue);
	nfq_nlmsg_verdict_put(nlh, (int)a->batch_id, NF_ACCEPT);
	if (mnl_socket_sendto(a->nl, nlh, nlh->nlmsg_len) < 0)
		fprintf(stderr, "nfq_accept_all: verdict: %s\n", strerror(errno));
	a->batch = false;
}

static int
on_packet(const struct nlmsghdr *nlh, void *data)
{
	struct aa *a = data;
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	struct nfqnl_msg_packet_hdr *ph;

	/* The same attribute parse the inspector needs for the packet id. */
	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
		return MNL_CB_OK;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	a->batch_id = ntohl(ph->packet_id);
	a->batch = true;
	a->packets++;
	return MNL_CB_OK;
}

/* Send a configuration message and wait for its acknowledgement: a queue
 * already bound by another program is refused only there (EBUSY). */
static int
config(struct aa *a, struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t len;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = ++a->seq;
	if (mnl_socket_sendto(a->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	if ((len = mnl_socket_recvfrom(a->nl, buf, sizeof(buf))) < 0)
		return -1;
	return mnl_cb_run(buf, (size_t)len, a->seq, mnl_socket_get_portid(a->nl), NULL, NULL) < 0
	           ? -1
	           : 0;
}

static int
bind_queue(struct aa *a)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	uint32_t flags = NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN;
	int one = 1, fd;

	if ((a->nl = mnl_socket_open(NETLINK_NETFILTER)) == NULL ||
	    mnl_socket_bind(a->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -1;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, a->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if (config(a, nlh) < 0)
		return -1;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, a->queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
	if (config(a, nlh) < 0)
		return -1;
	mnl_socket_setsockopt(a->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	fd = mnl_socket_get_fd(a->nl);
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int
main(int argc, char **argv)
{
	struct aa a = {0};
	struct sigaction sa;
	struct pollfd pfd;
	char *buf = NULL, *end;
	ssize_t len;
	unsigned long q;
	int i, rc = 1;

	if (argc != 2 || (q = strtoul(argv[1], &end, 10), *end != '\0') || q > 65535) {
		fprintf(stderr, "usage: nfq_accept_all QUEUE\n");
		return 2;
	}
	a.queue = (unsigned)q;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((buf = malloc(BUF_SIZE)) == NULL || bind_queue(&a) < 0) {
		fprintf(stderr, "nfq_accept_all: queue %u: %s\n", a.queue, strerror(errno));
		goto fail;
	}
	fprintf(stderr, "nfq_accept_all: ready\n");
	pfd.fd = mnl_socket_get_fd(a.nl);
	pfd.events = POLLIN;
	while (!stop) {
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		for (i = 0; i < READS; i++) {
			len = mnl_socket_recvfrom(a.nl, buf, BUF_SIZE);
			if (len < 0)
				break;
			mnl_cb_run(buf, (size_t)len, 0, mnl_socket_get_portid(a.nl), on_packet, &a);
		}
		flush_batch(&a);
	}
	rc = 0;
fail:
	if (a.nl != NULL) {
		char msg[MNL_SOCKET_BUFFER_SIZE];
		struct nlmsghdr *nlh;

		flush_batch(&a);
		nlh = nfq_nlmsg_put(msg, NFQNL_MSG_CONFIG, a.queue);
		nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
		mnl_socket_sendto(a.nl, nlh, nlh->nlmsg_len);
		mnl_socket_close(a.nl);
	}
	fprintf(stderr, "nfq_accept_all: packets=%llu\n", (unsigned long long)a.packets);
	free(buf);
	return rc;
}
