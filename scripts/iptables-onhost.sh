#!/bin/sh
# iptables-onhost.sh - send the outgoing SMTP connections of the mail host
# itself through stsproxy running on the same host (iptables REDIRECT in
# the nat OUTPUT chain, IPv4 and IPv6).
#
#   sh iptables-onhost.sh add    # install the rules (again: no duplicates)
#   sh iptables-onhost.sh del    # remove them (nothing installed: no error)
#
# The variables below may also be given in the environment. REDIRECT in
# OUTPUT delivers to 127.0.0.1 / ::1, so stsproxy listens there
# (listen = [ "127.0.0.1:10025", "[::1]:10025" ]). The proxy's own upstream
# connections must not be redirected back to it: they are recognised by
# the user the proxy runs as (user = "stsproxy"), or, when MARK is set, by
# the mark the proxy puts on them (upstream_mark = 0x25).
set -eu

PROXY_PORT=${PROXY_PORT:-10025}  # stsproxy's listen port
PROXY_USER=${PROXY_USER:-stsproxy} # the user stsproxy runs as (ignored when MARK is set)
MARK=${MARK:-}                   # e.g. "0x25", the same as upstream_mark; "" to match by user
CHAIN=${CHAIN:-STSPROXY_HOST}        # our own chain in the nat table
IPTABLES=${IPTABLES:-iptables}
IP6TABLES=${IP6TABLES:-ip6tables}

# TPROXY cannot see locally generated traffic in OUTPUT without policy
# routing; REDIRECT is the supported on-host method. For completeness, the
# TPROXY variant marks in mangle OUTPUT and routes the marks back in:
#   iptables -t mangle -A OUTPUT -p tcp --dport 25 -m owner ! --uid-owner stsproxy \
#            -j MARK --set-mark 0x1
#   iptables -t mangle -A PREROUTING -p tcp --dport 25 -m mark --mark 0x1 \
#            -j TPROXY --on-port 10025 --on-ip 127.0.0.1
#   ip rule add fwmark 0x1 lookup 100
#   ip route add local 0.0.0.0/0 dev lo table 100
#   (and the same with ip6tables, --on-ip ::1, ip -6 rule / ip -6 route ::/0)

usage() {
	echo "usage: $0 add|del" >&2
	exit 2
}

JUMP="-p tcp --dport 25 -j $CHAIN"

# add_family IPT - (re)build CHAIN for one family and hook it in once.
add_family() {
	ipt=$1
	$ipt -t nat -N "$CHAIN" 2>/dev/null || $ipt -t nat -F "$CHAIN"
	# Local deliveries (to this host) are not relayed.
	$ipt -t nat -A "$CHAIN" -o lo -j RETURN
	if [ -n "$MARK" ]; then
		$ipt -t nat -A "$CHAIN" -m mark --mark "$MARK" -j RETURN
	else
		$ipt -t nat -A "$CHAIN" -m owner --uid-owner "$PROXY_USER" -j RETURN
	fi
	$ipt -t nat -A "$CHAIN" -p tcp --dport 25 -j REDIRECT --to-ports "$PROXY_PORT"
	# shellcheck disable=SC2086
	$ipt -t nat -C OUTPUT $JUMP 2>/dev/null || $ipt -t nat -I OUTPUT $JUMP
}

# del_family IPT - unhook and delete CHAIN; absent pieces are fine.
del_family() {
	ipt=$1
	# shellcheck disable=SC2086
	while $ipt -t nat -C OUTPUT $JUMP 2>/dev/null; do
		$ipt -t nat -D OUTPUT $JUMP
	done
	if $ipt -t nat -n -L "$CHAIN" >/dev/null 2>&1; then
		$ipt -t nat -F "$CHAIN"
		$ipt -t nat -X "$CHAIN"
	fi
}

[ $# -eq 1 ] || usage
case $1 in
add)
	add_family "$IPTABLES"
	add_family "$IP6TABLES"
	;;
del)
	del_family "$IPTABLES"
	del_family "$IP6TABLES"
	;;
*)
	usage
	;;
esac
