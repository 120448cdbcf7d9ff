#!/bin/bash
# proxy_intercept.sh - stsproxy on a gateway between a mail client and a
# mail server, with the REDIRECT rules of scripts/iptables-gateway.sh,
# over IPv4 and IPv6:
#
#   client (10.77.1.2, .3; fd77:1::2)          server (10.77.2.2; fd77:2::2)
#        lan0 -- gateway: stsproxy on :10025 -- wan0
#                  (10.77.1.1, 10.77.2.1; fd77:1::1, fd77:2::1)
#
# Checks: an intercepted connection reaches the real server (its banner
# names it); a direct connection to the proxy port and a source outside
# "clients" get 554 (never an open relay); with max_sessions = 2 the third
# concurrent session gets 421; SIGTERM drains and stops the daemon.
#
# Needs root. Prints "ok - name" / "not ok - name"; exits non-zero when a
# check failed. Namespaces, rules and processes are removed on any exit.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STSPROXY=${STSPROXY:-$ROOT/build/stsproxy}
PFX=si-$$-
CLI=${PFX}cli
GW=${PFX}gw
SRV=${PFX}srv
DIR=$(mktemp -d /tmp/proxy_intercept.XXXXXX)
PY=/usr/bin/python3
PROXY_PID=""
SINK_PID=""
. "$ROOT/tests/lab/checks.sh"

cleanup() {
	# shellcheck disable=SC2086
	stop_all $PROXY_PID $SINK_PID
	for ns in "$CLI" "$GW" "$SRV"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ "$FAILED" -ne 0 ] && [ -f "$DIR/proxy.log" ]; then
		echo "# --- proxy log (tail) ---" >&2
		tail -n 40 "$DIR/proxy.log" | sed 's/^/# /' >&2
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || die "needs root"
[ -x "$STSPROXY" ] || die "no binary $STSPROXY (set STSPROXY)"
$PY -c 'import aiosmtpd' 2>/dev/null || die "python3-aiosmtpd missing"

# --- topology ---------------------------------------------------------------

setup_ns() {
	local ns
	for ns in "$CLI" "$GW" "$SRV"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0 || return 1
	done
	ip link add "${PFX}c" netns "$CLI" type veth peer name lan0 netns "$GW" || return 1
	ip link add "${PFX}s" netns "$SRV" type veth peer name wan0 netns "$GW" || return 1
	ip -n "$CLI" link set "${PFX}c" name eth0 && ip -n "$SRV" link set "${PFX}s" name eth0 ||
		return 1
	ip -n "$CLI" addr add 10.77.1.2/24 dev eth0 &&
		ip -n "$CLI" addr add 10.77.1.3/24 dev eth0 &&
		ip -n "$CLI" addr add fd77:1::2/64 dev eth0 nodad &&
		ip -n "$CLI" addr add fd77:1::3/64 dev eth0 nodad &&
		ip -n "$GW" addr add 10.77.1.1/24 dev lan0 &&
		ip -n "$GW" addr add fd77:1::1/64 dev lan0 nodad &&
		ip -n "$GW" addr add 10.77.2.1/24 dev wan0 &&
		ip -n "$GW" addr add fd77:2::1/64 dev wan0 nodad &&
		ip -n "$SRV" addr add 10.77.2.2/24 dev eth0 &&
		ip -n "$SRV" addr add fd77:2::2/64 dev eth0 nodad || return 1
	for ns in "$CLI" "$SRV"; do
		ip -n "$ns" link set eth0 up || return 1
	done
	ip -n "$GW" link set lan0 up && ip -n "$GW" link set wan0 up || return 1
	ip -n "$CLI" route add default via 10.77.1.1 &&
		ip -n "$CLI" -6 route add default via fd77:1::1 &&
		ip -n "$SRV" route add default via 10.77.2.1 &&
		ip -n "$SRV" -6 route add default via fd77:2::1 || return 1
	ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}
setup_ns || die "namespaces"

# The rules under test: the gateway template, as an operator would run it.
ip netns exec "$GW" env LAN_IF=lan0 PROXY_PORT=10025 sh "$ROOT/scripts/iptables-gateway.sh" add ||
	die "iptables-gateway.sh add"
ip netns exec "$GW" env LAN_IF=lan0 PROXY_PORT=10025 sh "$ROOT/scripts/iptables-gateway.sh" add ||
	die "iptables-gateway.sh add (again)"

# --- the mail server ---------------------------------------------------------

mkdir -p "$DIR/maildir" "$DIR/state"
ip netns exec "$SRV" $PY "$ROOT/tests/lab/smtp_sink.py" --listen 10.77.2.2,fd77:2::2 --port 25 \
	--hostname mx.server.test --maildir "$DIR/maildir" --no-starttls >"$DIR/sink.log" 2>&1 &
SINK_PID=$!

# smtp_client NS HOST PORT SRC HOLD - connect (from SRC when not "-"),
# print the first reply line; when it is a 220, wait HOLD seconds printing
# whatever else arrives (a 421 on shutdown), then QUIT and print the reply.
smtp_client() {
	ip netns exec "$1" $PY - "$2" "$3" "$4" "$5" <<'EOF'
import socket, sys, time
host, port, src, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(10)
try:
    if src != "-":
        s.bind((src, 0))
    s.connect((host, port))
    f = s.makefile("rb")
    line = f.readline().decode(errors="replace").rstrip()
    print(line or "EOF", flush=True)
    if line.startswith("220"):
        end = time.time() + hold
        while time.time() < end:
            s.settimeout(max(0.05, end - time.time()))
            try:
                more = f.readline()
            except OSError:
                break
            if not more:
                print("EOF", flush=True)
                sys.exit(0)
            print(more.decode(errors="replace").rstrip(), flush=True)
        s.settimeout(10)
        s.sendall(b"QUIT\r\n")
        print((f.readline().decode(errors="replace").rstrip() or "EOF"), flush=True)
except OSError as e:
    print("error: %s" % e, flush=True)
EOF
}

wait_port "$SRV" 10.77.2.2 25 || die "smtp sink did not start"
wait_port "$SRV" fd77:2::2 25 || die "smtp sink did not start (IPv6)"

# --- the proxy ----------------------------------------------------------------

cat >"$DIR/stsproxy.conf" <<EOF
state_dir = "$DIR/state";
listen = [ "0.0.0.0:10025", "[::]:10025" ];
interception = "redirect";
clients = [ "10.77.1.2/32", "fd77:1::2/128" ];
max_sessions = 2;
workers = 2;
log = { level = "debug"; };
dns = { forwarders = [ "10.77.2.2" ]; timeout = 2; };
tls = { client_starttls = false; };
EOF
ip netns exec "$GW" "$STSPROXY" -c "$DIR/stsproxy.conf" >"$DIR/proxy.log" 2>&1 &
PROXY_PID=$!
for i in $(seq 1 50); do
	grep -q "event=start version=" "$DIR/proxy.log" && break
	kill -0 "$PROXY_PID" 2>/dev/null || break
	sleep 0.1
done
grep -q "event=start .*listen=0.0.0.0:10025,\[::\]:10025" "$DIR/proxy.log" &&
	ok "start: event=start logged after the listeners are up" ||
	{ notok "start: event=start logged after the listeners are up"; exit 1; }

# --- checks -------------------------------------------------------------------

# expect NAME WANT_REGEX OUTPUT
expect() {
	if printf '%s\n' "$3" | grep -Eq "$2"; then
		ok "$1"
	else
		notok "$1" "got: $(printf '%s' "$3" | tr '\r\n' '  ')"
	fi
}

out=$(smtp_client "$CLI" 10.77.2.2 25 10.77.1.2 0)
expect "intercepted_v4: banner relayed from the real server" '^220 mx\.server\.test' "$out"
grep -Eq "dst=10\.77\.2\.2:25" "$DIR/proxy.log" &&
	ok "intercepted_v4: original destination read from conntrack" ||
	notok "intercepted_v4: original destination read from conntrack"

out=$(smtp_client "$CLI" fd77:2::2 25 fd77:1::2 0)
expect "intercepted_v6: banner relayed from the real server" '^220 mx\.server\.test' "$out"
grep -Eq "dst=\[fd77:2::2\]:25" "$DIR/proxy.log" &&
	ok "intercepted_v6: original destination read from conntrack" ||
	notok "intercepted_v6: original destination read from conntrack"

out=$(smtp_client "$CLI" 10.77.1.1 10025 - 0)
expect "never_open_relay_v4: direct connection to the proxy port gets 554" \
	'^554 5\.7\.1 stsproxy is not an open relay' "$out"
out=$(smtp_client "$CLI" fd77:1::1 10025 - 0)
expect "never_open_relay_v6: direct connection to the proxy port gets 554" \
	'^554 5\.7\.1 stsproxy is not an open relay' "$out"

out=$(smtp_client "$CLI" 10.77.2.2 25 10.77.1.3 0)
expect "clients_v4: source outside clients gets 554" '^554 5\.7\.1' "$out"
out=$(smtp_client "$CLI" fd77:2::2 25 fd77:1::3 0)
expect "clients_v6: source outside clients gets 554" '^554 5\.7\.1' "$out"

# max_sessions = 2: two sessions held open, the third is refused.
smtp_client "$CLI" 10.77.2.2 25 10.77.1.2 4 >"$DIR/hold1" &
H1=$!
smtp_client "$CLI" fd77:2::2 25 fd77:1::2 4 >"$DIR/hold2" &
H2=$!
for i in $(seq 1 40); do
	[ -s "$DIR/hold1" ] && [ -s "$DIR/hold2" ] && break
	sleep 0.1
done
out=$(smtp_client "$CLI" 10.77.2.2 25 10.77.1.2 0)
expect "max_sessions: the third concurrent session gets 421" \
	'^421 4\.7\.0 stsproxy: too many sessions' "$out"
wait "$H1" "$H2"
expect "max_sessions: the held sessions were served" '^220 mx\.server\.test' "$(cat "$DIR/hold1")"
out=$(smtp_client "$CLI" 10.77.2.2 25 10.77.1.2 0)
expect "max_sessions: slots are given back when sessions end" '^220 mx\.server\.test' "$out"

# SIGTERM with a session open: it is told 421 4.3.2, the daemon exits 0.
smtp_client "$CLI" 10.77.2.2 25 10.77.1.2 8 >"$DIR/hold3" &
HOLD=$!
for i in $(seq 1 40); do
	[ -s "$DIR/hold3" ] && break
	sleep 0.1
done
kill -TERM "$PROXY_PID"
rc=124
for i in $(seq 1 100); do
	if ! kill -0 "$PROXY_PID" 2>/dev/null; then
		wait "$PROXY_PID"
		rc=$?
		break
	fi
	sleep 0.1
done
[ "$rc" -eq 0 ] && grep -q "event=stopped" "$DIR/proxy.log" &&
	ok "sigterm: the daemon stops cleanly (exit 0, event=stopped)" ||
	notok "sigterm: the daemon stops cleanly (exit 0, event=stopped)" "rc=$rc"
[ "$rc" -ne 124 ] && PROXY_PID=""
wait "$HOLD"
expect "sigterm: an open session is told 421 4.3.2" '^421 4\.3\.2' "$(cat "$DIR/hold3")"

ip netns exec "$GW" env LAN_IF=lan0 sh "$ROOT/scripts/iptables-gateway.sh" del &&
	ip netns exec "$GW" env LAN_IF=lan0 sh "$ROOT/scripts/iptables-gateway.sh" del &&
	! ip netns exec "$GW" iptables -t nat -S | grep -q STSPROXY &&
	! ip netns exec "$GW" ip6tables -t nat -S | grep -q STSPROXY &&
	ok "rules: del removes every rule, twice without error" ||
	notok "rules: del removes every rule, twice without error"

echo "1..$N"
[ "$FAILED" -eq 0 ]
