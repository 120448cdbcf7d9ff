#!/bin/sh
# iptables-gateway.sh - send the SMTP traffic a perimeter gateway forwards
# through stsproxy (iptables REDIRECT, IPv4 and IPv6).
#
#   sh iptables-gateway.sh add    # install the rules (again: no duplicates)
#   sh iptables-gateway.sh del    # remove them (nothing installed: no error)
#
# The variables below may also be given in the environment. stsproxy must
# listen on every address of the gateway (listen = [ "0.0.0.0:10025",
# "[::]:10025" ]): REDIRECT sends a connection to the address of the
# interface it arrived on. Only connections from LAN_IF (and LAN_NET4 /
# LAN_NET6 when set) are redirected, so the proxy never relays for the
# outside world.
set -eu

PROXY_PORT=${PROXY_PORT:-10025}   # stsproxy's listen port
LAN_IF=${LAN_IF:-eth1}            # where the mail servers are; "" for any interface
LAN_NET4=${LAN_NET4:-}            # e.g. "10.0.0.0/8"; "" for any IPv4 source on LAN_IF
LAN_NET6=${LAN_NET6:-}            # e.g. "2001:db8:1::/48"; "" for any IPv6 source on LAN_IF
CHAIN=${CHAIN:-STSPROXY_GW}        # our own chain in the nat table
IPTABLES=${IPTABLES:-iptables}
IP6TABLES=${IP6TABLES:-ip6tables}

# TPROXY instead of REDIRECT (stsproxy: interception = "tproxy"; listen on
# 0.0.0.0:10025 and [::]:10025; needs CAP_NET_ADMIN). Replace the nat rules
# with these mangle rules and route marked packets to the local stack:
#   iptables  -t mangle -A PREROUTING -i eth1 -p tcp --dport 25 \
#             -j TPROXY --on-port 10025 --tproxy-mark 0x1/0x1
#   ip6tables -t mangle -A PREROUTING -i eth1 -p tcp --dport 25 \
#             -j TPROXY --on-port 10025 --tproxy-mark 0x1/0x1
#   ip rule add fwmark 0x1/0x1 lookup 100
#   ip route add local 0.0.0.0/0 dev lo table 100
#   ip -6 rule add fwmark 0x1/0x1 lookup 100
#   ip -6 route add local ::/0 dev lo table 100

usage() {
	echo "usage: $0 add|del" >&2
	exit 2
}

# jump_args - the PREROUTING rule that sends LAN port-25 traffic to CHAIN.
jump_args() {
	if [ -n "$LAN_IF" ]; then
		echo "-i $LAN_IF -p tcp --dport 25 -j $CHAIN"
	else
		echo "-p tcp --dport 25 -j $CHAIN"
	fi
}

# add_family IPT NET - (re)build CHAIN for one family and hook it in once.
add_family() {
	ipt=$1
	net=$2
	$ipt -t nat -N "$CHAIN" 2>/dev/null || $ipt -t nat -F "$CHAIN"
	if [ -n "$net" ]; then
		$ipt -t nat -A "$CHAIN" ! -s "$net" -j RETURN
	fi
	$ipt -t nat -A "$CHAIN" -p tcp --dport 25 -j REDIRECT --to-ports "$PROXY_PORT"
	# shellcheck disable=SC2046
	$ipt -t nat -C PREROUTING $(jump_args) 2>/dev/null ||
		$ipt -t nat -I PREROUTING $(jump_args)
}

# del_family IPT - unhook and delete CHAIN; absent pieces are fine.
del_family() {
	ipt=$1
	# shellcheck disable=SC2046
	while $ipt -t nat -C PREROUTING $(jump_args) 2>/dev/null; do
		$ipt -t nat -D PREROUTING $(jump_args)
	done
	if $ipt -t nat -n -L "$CHAIN" >/dev/null 2>&1; then
		$ipt -t nat -F "$CHAIN"
		$ipt -t nat -X "$CHAIN"
	fi
}

[ $# -eq 1 ] || usage
case $1 in
add)
	add_family "$IPTABLES" "$LAN_NET4"
	add_family "$IP6TABLES" "$LAN_NET6"
	;;
del)
	del_family "$IPTABLES"
	del_family "$IP6TABLES"
	;;
*)
	usage
	;;
esac
