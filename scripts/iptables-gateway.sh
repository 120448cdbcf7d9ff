#!/bin/sh
# iptables-gateway.sh - send the SMTP traffic a perimeter gateway forwards
# through stsproxy (iptables REDIRECT, IPv4 and IPv6).
#
#   LAN_IF=eth1 sh iptables-gateway.sh add   # install the rules (again: no duplicates)
#   sh iptables-gateway.sh del               # remove them (nothing installed: no error)
#
# The variables below may also be given in the environment. stsproxy must
# listen on every address of the gateway (listen = [ "0.0.0.0:10025",
# "[::]:10025" ]): REDIRECT sends a connection to the address of the
# interface it arrived on. Only connections from LAN_IF (and LAN_NET4 /
# LAN_NET6 when set) are redirected, so the proxy never relays for the
# outside world. add refuses an unset LAN_IF and an interface this host
# does not have (the rules would load and intercept nothing); LAN_IF set
# empty ("LAN_IF=") redirects from every interface. del needs neither.
set -eu

PROXY_PORT=${PROXY_PORT:-10025}   # stsproxy's listen port
[ -n "${LAN_IF+set}" ] || LAN_UNSET=1
LAN_IF=${LAN_IF-}                 # where the mail servers are, e.g. "eth1"; "" for any
LAN_IF_WAIT=${LAN_IF_WAIT:-0}     # seconds add waits for LAN_IF to appear (at boot)
LAN_NET4=${LAN_NET4:-}            # e.g. "10.0.0.0/8"; "" for any IPv4 source on LAN_IF
LAN_NET6=${LAN_NET6:-}            # e.g. "2001:db8:1::/48"; "" for any IPv6 source on LAN_IF
CHAIN=${CHAIN:-STSPROXY_GW}        # our own chain in the nat table
IPTABLES=${IPTABLES:-iptables}
IP6TABLES=${IP6TABLES:-ip6tables}
IP=${IP:-ip}

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
	echo "usage: LAN_IF=IFACE $0 add | $0 del" >&2
	exit 2
}

# lan_if_check - LAN_IF names an interface of this host (after up to
# LAN_IF_WAIT seconds), or exit 1 saying which interfaces there are.
lan_if_check() {
	if [ -n "${LAN_UNSET:-}" ]; then
		echo "$0: LAN_IF is not set: name the interface the mail servers are on" \
			"(ip -br link lists them), or set it empty for every interface" >&2
		exit 1
	fi
	[ -n "$LAN_IF" ] || return 0
	waited=0
	until $IP link show dev "$LAN_IF" >/dev/null 2>&1; do
		if [ "$waited" -ge "$LAN_IF_WAIT" ]; then
			echo "$0: LAN_IF=$LAN_IF: no such interface on this host; nothing installed" \
				"(ip -br link lists them: $($IP -br link 2>/dev/null |
					awk '{ sub(/@.*/, "", $1); printf "%s%s", s, $1; s = " " }'))" >&2
			exit 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
}

# jump_args - the PREROUTING rule that sends LAN port-25 traffic to CHAIN.
jump_args() {
	if [ -n "$LAN_IF" ]; then
		echo "-i $LAN_IF -p tcp --dport 25 -j $CHAIN"
	else
		echo "-p tcp --dport 25 -j $CHAIN"
	fi
}

# unhook IPT KEEP - remove every PREROUTING jump to CHAIN, whatever
# interface it was installed for, but the one jump_args() makes for LAN_IF
# KEEP ("-": keep none).
unhook() {
	rules=$($1 -t nat -S PREROUTING 2>/dev/null) || return 0
	printf '%s\n' "$rules" | while read -r _ chain spec; do
		case " $spec " in
		*" -j $CHAIN "*) ;;
		*) continue ;;
		esac
		case " $spec " in
		*" -i $2 "*) [ -z "$2" ] || [ "$2" = - ] || continue ;;
		*" -i "*) ;;
		*) [ -n "$2" ] || continue ;;
		esac
		# shellcheck disable=SC2086
		$1 -t nat -D "$chain" $spec
	done
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
	# One jump, from LAN_IF only: one left by an earlier LAN_IF goes.
	unhook "$ipt" "$LAN_IF"
}

# del_family IPT - unhook and delete CHAIN; absent pieces are fine.
del_family() {
	ipt=$1
	unhook "$ipt" -
	if $ipt -t nat -n -L "$CHAIN" >/dev/null 2>&1; then
		$ipt -t nat -F "$CHAIN"
		$ipt -t nat -X "$CHAIN"
	fi
}

[ $# -eq 1 ] || usage
case $1 in
add)
	lan_if_check
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
