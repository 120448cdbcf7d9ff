#!/bin/bash
# proxy_tproxy_onhost.sh - the two interception modes beside REDIRECT on a
# gateway, end to end with real traffic, IPv4 and IPv6:
#
# 1. TPROXY on a gateway (the rules in the comments of
#    scripts/iptables-gateway.sh, interception = "tproxy"):
#
#      client (10.78.1.2; fd78:1::2)              server (10.78.2.2; fd78:2::2)
#           lan0 -- gateway: stsproxy on :10025 -- wan0
#                     (10.78.1.1, 10.78.2.1; fd78:1::1, fd78:2::1)
#
# 2. On-host: the mail host runs its MTA (here the test client, as root)
#    and stsproxy (127.0.0.1:10025, [::1]:10025) side by side; the server
#    is one hop away:
#
#      host (10.78.3.1; fd78:3::1) ------ server (10.78.3.2; fd78:3::2)
#
#    a. scripts/iptables-onhost.sh by owner: stsproxy drops to "nobody",
#       whose own upstream connections the rules skip;
#    b. scripts/iptables-onhost.sh by mark: stsproxy stays root and marks
#       its upstream connections with upstream_mark = 0x25;
#    c. scripts/nftables-onhost.nft by owner.
#
# Checks: the client's connection to server:25 is answered with the
# server's own banner through the proxy, the proxy log names the server as
# the destination, a message is stored by the server exactly once, and
# the proxy saw exactly the client's sessions (its upstream connection was
# not intercepted again: no loop).
#
# Needs root. Prints "ok - name" / "not ok - name"; exits non-zero when a
# check failed. Namespaces, rules and processes are removed on any exit.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STSPROXY=${STSPROXY:-$ROOT/build/stsproxy}
PFX=sx-$$-
CLI=${PFX}cli
GW=${PFX}gw
SRV=${PFX}srv
HOST=${PFX}host
DIR=$(mktemp -d /tmp/proxy_tproxy_onhost.XXXXXX)
PY=/usr/bin/python3
PROXY_PID=""
SINK_PID=""
. "$ROOT/tests/lab/checks.sh"

cleanup() {
	# shellcheck disable=SC2086
	stop_all $PROXY_PID $SINK_PID
	for ns in "$CLI" "$GW" "$SRV" "$HOST"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ "$FAILED" -ne 0 ]; then
		for f in "$DIR"/proxy-*.log; do
			[ -f "$f" ] || continue
			echo "# --- $(basename "$f") (tail) ---" >&2
			tail -n 25 "$f" | sed 's/^/# /' >&2
		done
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || die "needs root"
[ -x "$STSPROXY" ] || die "no binary $STSPROXY (set STSPROXY)"
$PY -c 'import aiosmtpd' 2>/dev/null || die "python3-aiosmtpd missing"
id nobody >/dev/null 2>&1 || die "no user nobody"

# --- topology ---------------------------------------------------------------

setup_ns() {
	local ns
	for ns in "$CLI" "$GW" "$SRV" "$HOST"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0 || return 1
	done
	ip link add "${PFX}c" netns "$CLI" type veth peer name lan0 netns "$GW" || return 1
	ip link add "${PFX}s" netns "$SRV" type veth peer name wan0 netns "$GW" || return 1
	ip link add "${PFX}h" netns "$HOST" type veth peer name "${PFX}t" netns "$SRV" || return 1
	ip -n "$CLI" link set "${PFX}c" name eth0 && ip -n "$SRV" link set "${PFX}s" name eth0 &&
		ip -n "$HOST" link set "${PFX}h" name eth0 && ip -n "$SRV" link set "${PFX}t" name eth1 ||
		return 1
	ip -n "$CLI" addr add 10.78.1.2/24 dev eth0 &&
		ip -n "$CLI" addr add fd78:1::2/64 dev eth0 nodad &&
		ip -n "$GW" addr add 10.78.1.1/24 dev lan0 &&
		ip -n "$GW" addr add fd78:1::1/64 dev lan0 nodad &&
		ip -n "$GW" addr add 10.78.2.1/24 dev wan0 &&
		ip -n "$GW" addr add fd78:2::1/64 dev wan0 nodad &&
		ip -n "$SRV" addr add 10.78.2.2/24 dev eth0 &&
		ip -n "$SRV" addr add fd78:2::2/64 dev eth0 nodad &&
		ip -n "$SRV" addr add 10.78.3.2/24 dev eth1 &&
		ip -n "$SRV" addr add fd78:3::2/64 dev eth1 nodad &&
		ip -n "$HOST" addr add 10.78.3.1/24 dev eth0 &&
		ip -n "$HOST" addr add fd78:3::1/64 dev eth0 nodad || return 1
	ip -n "$CLI" link set eth0 up && ip -n "$SRV" link set eth0 up &&
		ip -n "$SRV" link set eth1 up && ip -n "$HOST" link set eth0 up &&
		ip -n "$GW" link set lan0 up && ip -n "$GW" link set wan0 up || return 1
	ip -n "$CLI" route add default via 10.78.1.1 &&
		ip -n "$CLI" -6 route add default via fd78:1::1 &&
		ip -n "$SRV" route add 10.78.1.0/24 via 10.78.2.1 &&
		ip -n "$SRV" -6 route add fd78:1::/64 via fd78:2::1 || return 1
	ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}
setup_ns || die "namespaces"

# --- the mail server ---------------------------------------------------------

mkdir -p "$DIR/maildir" "$DIR/state"
ip netns exec "$SRV" $PY "$ROOT/tests/lab/smtp_sink.py" \
	--listen 10.78.2.2,fd78:2::2,10.78.3.2,fd78:3::2 --port 25 \
	--hostname mx.server.test --maildir "$DIR/maildir" --no-starttls >"$DIR/sink.log" 2>&1 &
SINK_PID=$!

for a in 10.78.2.2 fd78:2::2 10.78.3.2 fd78:3::2; do
	wait_port "$SRV" "$a" 25 || die "smtp sink did not start on $a"
done

# banner NS HOST - connect to HOST:25, print the first reply line, QUIT.
banner() {
	ip netns exec "$1" $PY - "$2" <<'EOF'
import socket, sys
host = sys.argv[1]
try:
    s = socket.create_connection((host, 25), 10)
    f = s.makefile("rb")
    print(f.readline().decode(errors="replace").rstrip() or "EOF", flush=True)
    s.sendall(b"QUIT\r\n")
    f.readline()
except OSError as e:
    print("error: %s" % e, flush=True)
EOF
}

# send_msg NS HOST TAG - one message to HOST:25 whose body carries TAG.
send_msg() {
	printf 'From: a@client.test\r\nTo: b@example.test\r\nSubject: %s\r\n\r\n%s\r\n' \
		"$3" "$3" >"$DIR/msg-$3"
	ip netns exec "$1" $PY "$ROOT/tests/lab/smtp_send.py" --server "$2" --port 25 \
		--from a@client.test --to b@example.test --data "$DIR/msg-$3" \
		>"$DIR/send-$3.log" 2>&1
}

# delivered TAG - how many stored messages carry TAG (waits up to 3 s for one).
delivered() {
	local _ n=0
	for _ in $(seq 1 30); do
		n=$(grep -l -F -- "$1" "$DIR"/maildir/new/*.eml 2>/dev/null | wc -l)
		[ "$n" -gt 0 ] && break
		sleep 0.1
	done
	sleep 0.2
	grep -l -F -- "$1" "$DIR"/maildir/new/*.eml 2>/dev/null | wc -l
}

# --- the proxy ----------------------------------------------------------------

# start_proxy NS NAME EXTRA_CONF - stsproxy with debug logging in NS;
# the log is $DIR/proxy-NAME.log. There is no DNS here: an operator policy
# (mode none) for the recipient domain keeps the relay off the lookup path,
# the subject being how connections reach the proxy, not MTA-STS.
start_proxy() {
	local _ conf=$DIR/stsproxy-$2.conf
	LOG=$DIR/proxy-$2.log
	cat >"$conf" <<EOF
state_dir = "$DIR/state";
workers = 2;
log = { level = "debug"; };
dns = { forwarders = [ "127.0.0.1" ]; timeout = 1; };
tls = { client_starttls = false; };
policies = ( { domain = "example.test"; mode = "none"; } );
$3
EOF
	ip netns exec "$1" "$STSPROXY" -c "$conf" >"$LOG" 2>&1 &
	PROXY_PID=$!
	for _ in $(seq 1 50); do
		grep -q "event=start version=" "$LOG" && return 0
		kill -0 "$PROXY_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# stop_proxy NAME - SIGTERM; the proxy must exit 0 with event=stopped and
# no sanitizer report in its log.
stop_proxy() {
	local _ rc=124
	[ -n "$PROXY_PID" ] || return 0
	kill -TERM "$PROXY_PID" 2>/dev/null
	for _ in $(seq 1 100); do
		if ! kill -0 "$PROXY_PID" 2>/dev/null; then
			wait "$PROXY_PID"
			rc=$?
			break
		fi
		sleep 0.1
	done
	kill -KILL "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
	PROXY_PID=""
	if [ "$rc" -eq 0 ] && grep -q "event=stopped" "$LOG" &&
		! grep -Eq "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG"; then
		ok "$1: SIGTERM stops the proxy cleanly"
	else
		notok "$1: SIGTERM stops the proxy cleanly" "rc=$rc"
	fi
}

# sessions - how many connections the proxy accepted (every one is logged).
sessions() {
	grep -c "event=accept " "$LOG"
}

# relay_checks NAME NS SERVER4 SERVER6 - a client in NS reaches the server
# through the proxy, over IPv4 and IPv6; one message per family; the proxy
# saw exactly the four client connections.
relay_checks() {
	local name=$1 ns=$2 fam host dst out tag
	for fam in v4 v6; do
		if [ "$fam" = v4 ]; then host=$3 dst="$3:25"; else host=$4 dst="\\[$4\\]:25"; fi
		out=$(banner "$ns" "$host")
		if printf '%s\n' "$out" | grep -Eq '^220 mx\.server\.test' &&
			grep -Eq "event=accept .*dst=$dst( |$)" "$LOG"; then
			ok "${name}_$fam: banner of the real server, proxy log dst=$host"
		else
			notok "${name}_$fam: banner of the real server, proxy log dst=$host" "got: $out"
		fi
		tag=$name-$fam-$$
		send_msg "$ns" "$host" "$tag"
		rc=$?
		n=$(delivered "$tag")
		if [ "$rc" -eq 0 ] && [ "$n" -eq 1 ]; then
			ok "${name}_$fam: message delivered exactly once"
		else
			notok "${name}_$fam: message delivered exactly once" \
				"smtp_send rc=$rc, stored $n: $(tail -n 3 "$DIR/send-$tag.log" | tr '\r\n' '  ')"
		fi
	done
	n=$(sessions)
	if [ "$n" -eq 4 ]; then
		ok "${name}: no loop, the proxy saw the 4 client sessions only"
	else
		notok "${name}: no loop, the proxy saw the 4 client sessions only" "accepted $n"
	fi
}

# --- 1. TPROXY on the gateway ---------------------------------------------------

tproxy_rules() {
	local ipt
	for ipt in iptables ip6tables; do
		ip netns exec "$GW" $ipt -t mangle -A PREROUTING -i lan0 -p tcp --dport 25 \
			-j TPROXY --on-port 10025 --tproxy-mark 0x1/0x1 2>&1 || return 1
	done
	ip netns exec "$GW" ip rule add fwmark 0x1/0x1 lookup 100 &&
		ip netns exec "$GW" ip route add local 0.0.0.0/0 dev lo table 100 &&
		ip netns exec "$GW" ip -6 rule add fwmark 0x1/0x1 lookup 100 &&
		ip netns exec "$GW" ip -6 route add local ::/0 dev lo table 100
}
if err=$(tproxy_rules); then
	if start_proxy "$GW" tproxy \
		'interception = "tproxy"; listen = [ "0.0.0.0:10025", "[::]:10025" ];'; then
		ok "tproxy: started with transparent listeners"
		relay_checks tproxy "$CLI" 10.78.2.2 fd78:2::2
	else
		notok "tproxy: started with transparent listeners" "$(tail -n 3 "$LOG")"
	fi
	stop_proxy tproxy
else
	notok "tproxy: kernel lacks TPROXY ($(printf '%s' "$err" | tr '\n' ' '))"
fi

# --- 2. on-host ---------------------------------------------------------------

ONHOST_LISTEN='listen = [ "127.0.0.1:10025", "[::1]:10025" ];'
# The unprivileged user must reach its state directory.
chmod 755 "$DIR"
chown nobody "$DIR/state"

# a. iptables, by owner
if ip netns exec "$HOST" env PROXY_USER=nobody sh "$ROOT/scripts/iptables-onhost.sh" add; then
	if start_proxy "$HOST" onhost-owner "$ONHOST_LISTEN user = \"nobody\";"; then
		# "ip netns exec" execs the proxy: PROXY_PID is the daemon itself.
		uid=$(awk '/^Uid:/ { print $3 }' "/proc/$PROXY_PID/status" 2>/dev/null)
		if [ "$uid" = "$(id -u nobody)" ]; then
			ok "onhost_owner: the proxy runs as nobody"
		else
			notok "onhost_owner: the proxy runs as nobody" "uid=$uid"
		fi
		relay_checks onhost_owner "$HOST" 10.78.3.2 fd78:3::2
	else
		notok "onhost_owner: started as nobody" "$(tail -n 3 "$LOG")"
	fi
	stop_proxy onhost_owner
	ip netns exec "$HOST" sh "$ROOT/scripts/iptables-onhost.sh" del
else
	notok "onhost_owner: iptables-onhost.sh add"
fi

# b. iptables, by mark
if ip netns exec "$HOST" env MARK=0x25 sh "$ROOT/scripts/iptables-onhost.sh" add; then
	if start_proxy "$HOST" onhost-mark "$ONHOST_LISTEN upstream_mark = 0x25;"; then
		relay_checks onhost_mark "$HOST" 10.78.3.2 fd78:3::2
	else
		notok "onhost_mark: started" "$(tail -n 3 "$LOG")"
	fi
	stop_proxy onhost_mark
	ip netns exec "$HOST" env MARK=0x25 sh "$ROOT/scripts/iptables-onhost.sh" del
else
	notok "onhost_mark: iptables-onhost.sh add"
fi
no_onhost_rules() {
	! ip netns exec "$HOST" iptables -t nat -S | grep -q STSPROXY &&
		! ip netns exec "$HOST" ip6tables -t nat -S | grep -q STSPROXY
}
check "onhost_rules: del removes every iptables rule" no_onhost_rules

# c. nftables, by owner
if ip netns exec "$HOST" env PROXY_USER=nobody sh "$ROOT/scripts/nftables-onhost.nft" add; then
	if start_proxy "$HOST" onhost-nft "$ONHOST_LISTEN user = \"nobody\";"; then
		relay_checks onhost_nft "$HOST" 10.78.3.2 fd78:3::2
	else
		notok "onhost_nft: started as nobody" "$(tail -n 3 "$LOG")"
	fi
	stop_proxy onhost_nft
	ip netns exec "$HOST" sh "$ROOT/scripts/nftables-onhost.nft" del
	check "onhost_nft: del removes the table" \
		sh -c "! ip netns exec '$HOST' nft list tables | grep -q stsproxy_host"
else
	notok "onhost_nft: nftables-onhost.nft add"
fi

echo "1..$N"
[ "$FAILED" -eq 0 ]
