#!/bin/sh
# nfq-iptables.sh - the iptables rules that feed port-25 flows to the
# stsproxy packet inspector (nfq section of stsproxy.conf).
#
#   nfq-iptables.sh add|del|check [QUEUES] [MARK] [UPSTREAM_MARK]
#
# QUEUES: "0" or a range "0:3" (--queue-balance, flows stay on one queue);
# must match nfq.queues. MARK: the "decided" mark, 0x57500001
# (NFQ_MARK_DECIDED in nfq/nfq.h). UPSTREAM_MARK: the proxy's own upstream
# connections (conf upstream_mark), never queued; 0 for none.
#
# While stsproxy is down no process holds the queue, and only these rules
# decide: --queue-bypass (the default) lets port-25 packets through
# uninspected; NFQ_BYPASS=0 leaves it out, and they are dropped until
# stsproxy is back (fail closed: mail waits in the mailers' queues).
# stsproxy's nfq.fail_open does not change that; it only covers a full
# queue while stsproxy runs. "check" prints the NFQUEUE rules and fails
# when one has no --queue-bypass.
#
# Only FORWARD and OUTPUT traffic is queued: connections redirected to the
# proxy reach INPUT on the proxy's port and are never seen here. A flow
# leaves user space after its first packets: the inspector marks the packet
# that ends inspection (NF_REPEAT with MARK), the first rule copies the mark
# to the connection, and the connmark rule accepts the rest in the kernel.
# Blocked flows are dropped and reset by the inspector itself (raw socket).
set -eu
ACTION=${1:-}
QUEUES=${2:-0}
MARK=${3:-0x57500001}
UPSTREAM=${4:-0}
CHAIN=STSPROXY_NFQ

case $QUEUES in
*:*) QARG="--queue-balance $QUEUES" ;;
*) QARG="--queue-num $QUEUES" ;;
esac
[ "${NFQ_BYPASS:-1}" = 1 ] && QARG="$QARG --queue-bypass"

add() {
	ipt=$1
	$ipt -N $CHAIN
	$ipt -A $CHAIN -m mark --mark "$MARK" -j CONNMARK --set-mark "$MARK"
	$ipt -A $CHAIN -m mark --mark "$MARK" -j ACCEPT
	$ipt -A $CHAIN -m connmark --mark "$MARK" -j ACCEPT
	# shellcheck disable=SC2086
	$ipt -A $CHAIN -j NFQUEUE $QARG
	for hook in FORWARD OUTPUT; do
		if [ "$UPSTREAM" != 0 ] && [ $hook = OUTPUT ]; then
			$ipt -I OUTPUT -p tcp -m mark --mark "$UPSTREAM" -m multiport --ports 25 -j ACCEPT
		fi
		$ipt -A $hook -p tcp --dport 25 -j $CHAIN
		$ipt -A $hook -p tcp --sport 25 -j $CHAIN
	done
}

del() {
	ipt=$1
	for hook in FORWARD OUTPUT; do
		$ipt -D $hook -p tcp --dport 25 -j $CHAIN 2>/dev/null || true
		$ipt -D $hook -p tcp --sport 25 -j $CHAIN 2>/dev/null || true
	done
	if [ "$UPSTREAM" != 0 ]; then
		$ipt -D OUTPUT -p tcp -m mark --mark "$UPSTREAM" -m multiport --ports 25 -j ACCEPT \
			2>/dev/null || true
	fi
	$ipt -F $CHAIN 2>/dev/null || true
	$ipt -X $CHAIN 2>/dev/null || true
}

# check IPT - the chain's NFQUEUE rules; 1 when one fails closed while stsproxy is down.
check() {
	ipt=$1
	rules=$($ipt -S $CHAIN 2>/dev/null | grep -e '-j NFQUEUE') || {
		echo "$ipt: no NFQUEUE rule in $CHAIN" >&2
		return 1
	}
	printf '%s\n' "$rules" | sed "s|^|$ipt: |"
	if printf '%s\n' "$rules" | grep -qv -e '--queue-bypass'; then
		echo "$ipt: no --queue-bypass: port-25 packets are dropped while stsproxy is down" >&2
		return 1
	fi
	echo "$ipt: --queue-bypass: port-25 packets pass uninspected while stsproxy is down"
}

case $ACTION in
add) add iptables && add ip6tables ;;
del) del iptables; del ip6tables ;;
check) check iptables && check ip6tables ;;
*)
	echo "usage: $0 add|del|check [QUEUES] [MARK] [UPSTREAM_MARK]" >&2
	exit 2
	;;
esac
