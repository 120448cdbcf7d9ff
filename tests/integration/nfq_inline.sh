#!/bin/bash
# nfq_inline.sh - the packet inspector inline on NFQUEUE, end to end: a
# client namespace, a router namespace running the inspector behind the
# rules of scripts/nfq-iptables.sh, and a server namespace with a real
# SMTP server (tests/lab/smtp_sink.py) behind an on-path attacker
# (tests/lab/strip_proxy.py), over IPv4 and IPv6 (the ip6tables half of
# the same rules). The driver answers the inspector's policy lookups as
# told (--answer), after a delay, so first contacts are held and judged.
# Needs root. Prints "ok - name" / "not ok - name" and exits non-zero on
# any failure; always cleans up.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
P=hK$$
DIR=$(mktemp -d /tmp/nfq-inline.XXXXXX)
PIDS=()
pass=0
fail=0

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for ns in cli rtr mx; do ip netns del "$P-$ns" 2>/dev/null; done
	rm -rf "$DIR"
}
trap cleanup EXIT

ok() { echo "ok - $1"; pass=$((pass + 1)); }
nok() { echo "not ok - $1"; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else nok "$1"; fi; }
nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

# --- build the driver (independent of the daemon's wiring) ---
PKGS=$(sed -n 's/^PKGS *:= *//p' Makefile) # the libraries the Makefile links
DRIVER=$DIR/nfq_driver
# shellcheck disable=SC2046
cc -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. $(pkg-config --cflags $PKGS) \
	-o "$DRIVER" tests/nfq/nfq_driver.c $(sed -n 's|^// sources: ||p' tests/nfq/nfq_driver.c) \
	$(pkg-config --libs $PKGS) -lpthread || { nok "build driver"; exit 1; }

# --- namespaces: cli 198.51.100.2 -- .1 rtr .65 -- .66 mx ---
# IPv6, unique local (private to these namespaces): cli fd00:0:1::2 --
# fd00:0:1::1 rtr fd00:0:25::1 -- fd00:0:25::2 mx
for ns in cli rtr mx; do ip netns add "$P-$ns"; nsx "$ns" ip link set lo up; done
ip link add "$P-a" netns "$P-cli" type veth peer name "$P-b" netns "$P-rtr"
ip link add "$P-c" netns "$P-rtr" type veth peer name "$P-d" netns "$P-mx"
nsx cli ip addr add 198.51.100.2/26 dev "$P-a"
nsx rtr ip addr add 198.51.100.1/26 dev "$P-b"
nsx rtr ip addr add 198.51.100.65/26 dev "$P-c"
nsx mx ip addr add 198.51.100.66/26 dev "$P-d"
nsx cli ip addr add fd00:0:1::2/64 dev "$P-a" nodad
nsx rtr ip addr add fd00:0:1::1/64 dev "$P-b" nodad
nsx rtr ip addr add fd00:0:25::1/64 dev "$P-c" nodad
nsx mx ip addr add fd00:0:25::2/64 dev "$P-d" nodad
nsx cli ip link set "$P-a" up
nsx rtr ip link set "$P-b" up
nsx rtr ip link set "$P-c" up
nsx mx ip link set "$P-d" up
nsx cli ip route add default via 198.51.100.1
nsx mx ip route add default via 198.51.100.65
nsx cli ip -6 route add default via fd00:0:1::1
nsx mx ip -6 route add default via fd00:0:25::1
nsx rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
nsx rtr sh scripts/nfq-iptables.sh add 0 || { nok "rules"; exit 1; }

# --- the server and the attacker ---
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mx.example -keyout "$DIR/key.pem" \
	-out "$DIR/crt.pem" 2>/dev/null
mkdir -p "$DIR/mail" "$DIR/state"
ip netns exec "$P-mx" /usr/bin/python3 tests/lab/smtp_sink.py --listen 198.51.100.66 --port 2526 \
	--hostname mx.example --cert "$DIR/crt.pem" --key "$DIR/key.pem" --maildir "$DIR/mail" \
	2>"$DIR/sink.log" &
PIDS+=($!)

ATTACKER=
attacker() {
	[ -n "$ATTACKER" ] && kill "$ATTACKER" 2>/dev/null && wait "$ATTACKER" 2>/dev/null
	ip netns exec "$P-mx" /usr/bin/python3 tests/lab/strip_proxy.py --listen 198.51.100.66,fd00:0:25::2 --port 25 \
		--upstream 198.51.100.66 --upstream-port 2526 --mode "$1" 2>>"$DIR/attacker.log" &
	ATTACKER=$!
	PIDS+=("$ATTACKER")
	for _ in $(seq 50); do
		nsx mx ss -ltn | grep -q '198.51.100.66:25 ' && nsx mx ss -ltn | grep -q '\[fd00:0:25::2\]:25 ' &&
			return 0
		sleep 0.1
	done
}

INSPECTOR=
NFQ_EXTRA= # more keys of the nfq group
inspector() { # action [driver args]
	local action=$1
	shift
	[ -n "$INSPECTOR" ] && kill "$INSPECTOR" 2>/dev/null && wait "$INSPECTOR" 2>/dev/null
	cat >"$DIR/nfq.conf" <<CONF
state_dir = "$DIR/state";
log = { level = "info"; events = "$DIR/events.json"; };
nfq = { queues = [ 0 ]; action = "$action"; fail_open = true; $NFQ_EXTRA };
CONF
	: >"$DIR/driver.log"
	ip netns exec "$P-rtr" "$DRIVER" "$DIR/nfq.conf" "$@" 2>"$DIR/driver.log" &
	INSPECTOR=$!
	PIDS+=("$INSPECTOR")
	for _ in $(seq 50); do
		grep -q ready "$DIR/driver.log" && return 0
		sleep 0.1
	done
	cat "$DIR/driver.log"
	return 1
}

# forget - stop the inspector and drop its server memory (state_dir/nfq-servers).
forget() {
	[ -n "$INSPECTOR" ] && kill "$INSPECTOR" 2>/dev/null && wait "$INSPECTOR" 2>/dev/null
	INSPECTOR=
	rm -f "$DIR/state/nfq-servers"
}

SERVER=198.51.100.66
send() { # to [swaks args]; to SERVER
	local to=$1
	shift
	nsx cli timeout 30 swaks --server "$SERVER" --port 25 --from a@sender.example \
		--to "$to" --helo client.example --timeout 10 "$@" >"$DIR/swaks.out" 2>&1
}
# Over IPv6 with the lab's own client (swaks needs IO::Socket::INET6 for it);
# its transcript ("C: "/"S: " lines) goes to swaks.out as well.
printf 'Subject: nfq inline\r\n\r\nover IPv6\r\n' >"$DIR/msg.eml"
send6() { # to [--starttls]
	local to=$1
	shift
	nsx cli timeout 30 /usr/bin/python3 tests/lab/smtp_send.py --server fd00:0:25::2 --port 25 \
		--from a@sender.example --to "$to" --helo client.example --data "$DIR/msg.eml" \
		--timeout 10 "$@" >"$DIR/swaks.out" 2>&1
}

counter() { # packets of the rule matching $1 in the inspector chain
	nsx rtr iptables -L STSPROXY_NFQ -v -n -x | awk -v pat="$1" '$0 ~ pat {print $1; exit}'
}
counter6() { # the same in the ip6tables chain
	nsx rtr ip6tables -L STSPROXY_NFQ -v -n -x | awk -v pat="$1" '$0 ~ pat {print $1; exit}'
}
# events NAME ADDR - the JSON events called NAME whose client or server is ADDR.
events() { grep "\"$1\"" "$DIR/events.json" 2>/dev/null | grep -F "\"$2 "; }
# held NAME DOMAIN MS - an event NAME for DOMAIN whose packet waited at least MS.
held() {
	grep "\"$1\"" "$DIR/events.json" 2>/dev/null | grep -F "\"domain\":\"$2\"" |
		grep -o '"held_ms":[0-9]*' | awk -F: -v ms="$3" '$2 >= ms { ok = 1 } END { exit !ok }'
}
stored() { ls "$DIR"/mail/new/*.json 2>/dev/null | wc -l; }
# timed CMD... - run CMD; its status in rc, its milliseconds in ms.
timed() {
	local t0
	t0=$(date +%s%N)
	"$@"
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
}

sleep 0.5
inspector log || { nok "inspector starts"; exit 1; }
ok "inspector starts"

# 1. A flow that reaches TLS is released: the mark rule fires, the rest stays in the kernel.
attacker pass
send b@other.example --tls
check "starttls delivered through the inspector" "grep -q '250' '$DIR/swaks.out' && ls '$DIR'/mail/new/*.eml >/dev/null 2>&1"
check "tls flow released (mark -> connmark)" "[ \"\$(counter 'CONNMARK')\" -gt 0 ] && [ \"\$(counter 'connmark match')\" -gt 0 ]"
check "no event for a clean TLS flow" "! grep -q 'starttls_' '$DIR/events.json' 2>/dev/null"

# 2. Log mode: the keyword mangled, then stripped for a server known to offer it.
attacker mangle
send b@other.example
check "mangled starttls reported" "grep '\"starttls_mangled\"' '$DIR/events.json' | grep -q '\"source\":\"nfq\"'"
attacker drop
send b@other.example
check "stripped starttls reported (offered before)" "grep '\"starttls_stripped\"' '$DIR/events.json' | grep -q 'offered_before'"
check "log mode delivers" "[ \$(ls '$DIR'/mail/new/*.eml | wc -l) -eq 3 ]"

# 2b. The same over IPv6: the ip6tables half of the rules queues the flow.
attacker pass
send6 b@other.example --starttls
check "ipv6: starttls delivered through the inspector" "grep -q '^C: STARTTLS' '$DIR/swaks.out' && [ \$(ls '$DIR'/mail/new/*.eml | wc -l) -eq 4 ]"
check "ipv6: tls flow released (mark -> connmark)" "[ \"\$(counter6 'CONNMARK')\" -gt 0 ] && [ \"\$(counter6 'connmark match')\" -gt 0 ]"
attacker mangle
send6 b@other.example
check "ipv6: mangled starttls reported" "events starttls_mangled fd00:0:25::2 | grep '\"source\":\"nfq\"' | grep -q '\"client\":\"fd00:0:1::2 '"
attacker drop
send6 b@other.example
check "ipv6: stripped starttls reported (offered before)" "events starttls_stripped fd00:0:25::2 | grep -q 'offered_before'"
check "ipv6: log mode delivers" "[ \$(ls '$DIR'/mail/new/*.eml | wc -l) -eq 6 ]"

# 2c. Block mode, no policy: the server offered STARTTLS before (1, 2b), so its EHLO
# reply without it is dropped and the flow reset before any of the envelope passes.
inspector block || nok "inspector restarts"
before=$(stored)
send b@other.example
rc=$?
check "offered before, block: client sees a broken connection before MAIL" "[ $rc -ne 0 ] && ! grep -q '^-> *MAIL' '$DIR/swaks.out'"
check "offered before, block: stripped event with action block" "events starttls_stripped 198.51.100.66 | grep 'offered_before' | grep -q '\"action\":\"block\"'"
check "offered before, block: server never stored the message" "[ \$(stored) -eq $before ]"
send6 b@other.example
rc=$?
check "ipv6: offered before, block: cut, reported, nothing stored" "[ $rc -eq 2 ] && ! grep -q '^C: MAIL' '$DIR/swaks.out' && events starttls_stripped fd00:0:25::2 | grep -q '\"action\":\"block\"' && [ \$(stored) -eq $before ]"

# 3. Block mode with a cached enforce policy: the RCPT never reaches the server. The
# server memory of 1-2c is forgotten, so that the policy alone decides.
forget
inspector block --enforce enforce.example --enforce enforce6.example || nok "inspector restarts"
before=$(ls "$DIR"/mail/new/*.json | wc -l)
: >"$DIR/sink.log.mark"
send b@enforce.example
rc=$?
check "client sees a broken connection" "[ $rc -ne 0 ] && ! grep -q '^<- *250 .*queued\|^<- *354' '$DIR/swaks.out'"
check "cleartext rcpt blocked event" "grep '\"cleartext_rcpt\"' '$DIR/events.json' | grep -q '\"action\":\"block\"'"
check "server never stored the message" "[ \$(ls '$DIR'/mail/new/*.json | wc -l) -eq $before ]"
check "server never saw the recipient" "! grep -rq 'enforce.example' '$DIR/mail' '$DIR/sink.log'"

# 3b. Block mode over IPv6: dropped, and reset through the IPv6 raw socket.
before=$(ls "$DIR"/mail/new/*.json | wc -l)
timed send6 b@enforce6.example
check "ipv6: client sees a broken connection" "[ $rc -eq 2 ] && ! grep -q '^S: 354' '$DIR/swaks.out'"
# A dropped RCPT without the reset would leave the client to its 10 s timeout.
check "ipv6: the reset reaches the client (${ms} ms)" "[ $ms -lt 5000 ]"
check "ipv6: cleartext rcpt blocked event" "events cleartext_rcpt fd00:0:25::2 | grep -q '\"action\":\"block\"'"
check "ipv6: server never stored the message" "[ \$(ls '$DIR'/mail/new/*.json | wc -l) -eq $before ]"
check "ipv6: server never saw the recipient" "! grep -rq 'enforce6.example' '$DIR/mail' '$DIR/sink.log'"
check "ipv6: no reset failure logged" "! grep -q 'rst_failed' '$DIR/driver.log'"

# 4. Block mode, first contact: nothing cached, the lookup answers after 300 ms.
NFQ_EXTRA="hold_timeout = 2;"
inspector block --lookup-ms 300 --answer first.example=enforce --answer first6.example=enforce \
	--answer plain.example=none --answer down.example=tempfail || nok "inspector restarts"
attacker drop
before=$(stored)
send b@first.example
rc=$?
check "first contact: client sees a broken connection" "[ $rc -ne 0 ] && ! grep -q '^<- *354' '$DIR/swaks.out'"
check "first contact: the RCPT waited for the lookup, then was blocked" "held cleartext_rcpt first.example 300 && events cleartext_rcpt 198.51.100.66 | grep '\"domain\":\"first.example\"' | grep -q '\"action\":\"block\"'"
check "first contact: server never stored the message" "[ \$(stored) -eq $before ]"
check "first contact: server never saw the recipient" "! grep -rq 'first.example' '$DIR/mail' '$DIR/sink.log'"
send6 b@first6.example
rc=$?
check "ipv6: first contact blocked after the lookup" "[ $rc -eq 2 ] && held cleartext_rcpt first6.example 300 && ! grep -rq 'first6.example' '$DIR/mail' '$DIR/sink.log'"
check "ipv6: the reset came from the IPv6 raw socket" "! grep -q 'rst_failed' '$DIR/driver.log'"
attacker pass
timed send b@plain.example
check "first contact without a policy: delivered in cleartext after the lookup (${ms} ms)" "[ $rc -eq 0 ] && [ $ms -ge 300 ] && grep -rq 'plain.example' '$DIR/mail'"
check "first contact without a policy: no event" "! grep -q 'plain.example' '$DIR/events.json'"
before=$(stored)
send b@down.example
check "resolver failure: hold_timeout_action block, policy_unknown tempfail" "[ \$(stored) -eq $before ] && events policy_unknown 198.51.100.66 | grep '\"domain\":\"down.example\"' | grep '\"reason\":\"tempfail\"' | grep -q '\"action\":\"block\"'"
timed send b@silent.example
check "no answer: blocked at hold_timeout (${ms} ms)" "[ $rc -ne 0 ] && [ $ms -ge 1900 ] && events policy_unknown 198.51.100.66 | grep '\"domain\":\"silent.example\"' | grep '\"reason\":\"timeout\"' | grep -q '\"action\":\"block\"'"
check "no answer: server never saw the recipient" "! grep -rq 'silent.example' '$DIR/mail' '$DIR/sink.log'"

# 5. The same with hold_timeout_action = "pass": delivered once the hold ends, and reported.
NFQ_EXTRA='hold_timeout = 2; hold_timeout_action = "pass";'
inspector block || nok "inspector restarts"
timed send b@silent2.example
check "no answer, pass: delivered after hold_timeout (${ms} ms)" "[ $rc -eq 0 ] && [ $ms -ge 1900 ] && grep -rq 'silent2.example' '$DIR/mail'"
check "no answer, pass: policy_unknown event names the domain" "events policy_unknown 198.51.100.66 | grep '\"domain\":\"silent2.example\"' | grep -q '\"action\":\"pass\"'"

echo "nfq_inline: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
