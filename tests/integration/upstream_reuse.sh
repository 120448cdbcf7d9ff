#!/bin/bash
# upstream_reuse.sh - reuse of verified upstream connections, with a real
# Postfix sender that opens one connection per message
# (smtp_connection_cache_on_demand = no, one delivery at a time) behind
# stsproxy (upstream.reuse_idle on), delivering to the lab's STARTTLS sink:
#
#   good.example   enforce, valid certificate: N messages, N client sessions
#                  -> all stored over TLS, one or two MX connections and TLS
#                  handshakes, the rest carried by parked connections
#   plain.example  no policy, its MX behind a STARTTLS stripper: delivered
#                  in plaintext; that connection is never parked
#   strip.example  enforce, the same MX behind the stripper, sent after the
#                  plaintext delivery -> 451 4.7.4, the MX gets nothing: a
#                  stripped connection never becomes a reused one
#   lim.example    enforce, an MX that answers 421 to the MAIL after two
#                  messages on one connection (as MX hosts that limit
#                  messages per connection do): the session whose reused
#                  connection gets it moves to a new connection; every
#                  message is stored once and Postfix sees no error
#   good.example   a stripper arrives while a verified connection is parked:
#                  the next message goes over that connection with TLS, or,
#                  when the attacker breaks it, over a stripped new one ->
#                  451 4.7.4; never in plaintext
#
# Every check looks at what the sink stored (its peer address:port tells
# connections apart), at Postfix's log and queue, and at stsproxy's log,
# metrics and control socket. Needs root; STSPROXY names the binary.
# Prints "ok N - ..." lines; exits non-zero when a check fails.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

N=${REUSE_MESSAGES:-12}

e2e_init reuse
e2e_lab

e2e_mx mx1 10.0.25.2 mx1.good.example
e2e_mx mx2 10.0.26.2 mx2.strip.example
e2e_mx mx3 10.0.27.2 mx3.lim.example --max-messages-per-connection 2
lab_sts_publish good.example g1 enforce mx1.good.example
lab_sts_publish strip.example s1 enforce mx2.strip.example
lab_sts_publish lim.example l1 enforce mx3.lim.example
lab_dns_record \
	"good.example MX 10 mx1.good.example." "mx1.good.example A 10.0.25.2" \
	"strip.example MX 10 mx2.strip.example." "mx2.strip.example A 10.0.26.2" \
	"plain.example MX 10 mx2.strip.example." \
	"lim.example MX 10 mx3.lim.example." "mx3.lim.example A 10.0.27.2"
e2e_start "upstream = { reuse_idle = 30; reuse_max_messages = 100; };
metrics = { listen = \"127.0.0.1:9125\"; };
control = { socket = \"$LAB_DIR/proxy/control.sock\"; };"

# A legacy mailer: one connection per message, one delivery at a time.
lab_exec lan postconf -c "$E2E_PF/conf" -e smtp_connection_cache_on_demand=no \
	smtp_destination_concurrency_limit=1 initial_destination_concurrency=1
lab_exec lan postfix -c "$E2E_PF/conf" reload >/dev/null 2>&1
sleep 1

# sink_peers NAME RCPT_DOMAIN - distinct peer address:port of stored messages.
sink_peers() {
	"$(lab__python)" - "$LAB_DIR/smtp/$1/new" "$2" <<'EOF'
import glob, json, os, sys
peers = set()
for j in glob.glob(os.path.join(sys.argv[1], "*.json")):
    m = json.load(open(j))
    if any(r.endswith("@" + sys.argv[2]) for r in m.get("rcpt_tos", [])):
        peers.add(tuple(m.get("peer") or ()))
print(len(peers))
EOF
}

# sink_all_tls NAME - every message NAME stored came over TLS.
sink_all_tls() {
	"$(lab__python)" - "$LAB_DIR/smtp/$1/new" <<'EOF'
import glob, json, os, sys
ms = [json.load(open(j)) for j in glob.glob(os.path.join(sys.argv[1], "*.json"))]
print("%d messages, %d over TLS" % (len(ms), sum(1 for m in ms if m.get("tls"))))
sys.exit(0 if ms and all(m.get("tls") for m in ms) else 1)
EOF
}

# metric NAME - a metric's value from the gateway's endpoint.
metric() {
	lab_exec gw curl -s --max-time 3 http://127.0.0.1:9125/metrics |
		awk -v n="$1" '$1 == n { print $2; exit }'
}

# handshakes_to IP - upstream TLS handshakes of sessions to IP.
handshakes_to() {
	local sids
	sids=$(grep -o "session=[^ ]* start client=[^ ]* dest=$1:25" "$E2E_PROXY_LOG" |
		cut -d' ' -f1 | sort -u)
	n=0
	for s in $sids; do
		grep -q "$s upstream TLS " "$E2E_PROXY_LOG" && n=$((n + 1))
	done
	echo "$n"
}

# sessions_to IP WORD - sessions to IP whose log lines contain WORD.
sessions_to() {
	local sids n=0
	sids=$(grep -o "session=[^ ]* start client=[^ ]* dest=$1:25" "$E2E_PROXY_LOG" |
		cut -d' ' -f1 | sort -u)
	for s in $sids; do
		grep -q "$s .*$2" "$E2E_PROXY_LOG" && n=$((n + 1))
	done
	echo "$n"
}

# --- N one-message sessions to a verified MX ----------------------------------
M=$LAB_DIR/msg
mkdir -p "$M"
# send_each USER DOMAIN COUNT - COUNT messages, one to each of USER1..USERCOUNT@DOMAIN.
send_each() {
	local i
	for i in $(seq 1 "$3"); do
		e2e_message "$M/$1$i" "message $i of $3"
		e2e_sendmail sender@corp.example "$1$i@$2" <"$M/$1$i"
	done
}
# all_sent USER DOMAIN COUNT - Postfix logged status=sent for each of them.
all_sent() {
	local i
	for i in $(seq 1 "$3"); do
		e2e_wait_status "$1$i@$2" sent 90 || return 1
	done
}
send_each alice good.example "$N"
lab_check "reuse: Postfix logs status=sent for every message" all_sent alice good.example "$N"
lab_check "reuse: the MX stored all $N messages" \
	test "$(lab_smtp_count mx1.good.example)" = "$N"
lab_check "reuse: every message reached the MX over TLS" sink_all_tls mx1.good.example
sessions=$(grep -c "start client=10.0.1.2 dest=10.0.25.2:25" "$E2E_PROXY_LOG" || true)
lab_check "reuse: Postfix opened one session per message ($sessions >= $N)" \
	test "$sessions" -ge "$N"
peers=$(sink_peers mx1.good.example good.example)
lab_check "reuse: the MX saw $peers connection(s) for $N messages (at most 2)" \
	test "$peers" -le 2
hs=$(handshakes_to 10.0.25.2)
lab_check "reuse: $hs upstream TLS handshake(s) for $N messages (at most 2)" \
	test "$hs" -ge 1 -a "$hs" -le 2
saved=$(metric stsproxy_upstream_connections_saved_total)
lab_check "reuse: metrics count ${saved:-none} connections saved (>= $((N - 2)))" \
	test "${saved:-0}" -ge $((N - 2))
lab_check "reuse: reused sessions were judged and passed (decision=pass per message)" \
	test "$(grep -c 'rcpt domain=good.example .*leg=tls-verified .*decision=pass' \
		"$E2E_PROXY_LOG")" -ge "$N"
lab_check "reuse: ctl status shows the pool" \
	sh -c "'$STSPROXY' ctl -s '$LAB_DIR/proxy/control.sock' status |
		grep -E '^upstream_pool idle=[0-9]+ .* saved=[1-9]'"

# --- an MX that limits messages per connection ---------------------------------
# It takes two messages per connection and answers the next MAIL with 421.
# The session that reused that connection was told nothing but the proxy's
# own 250 to MAIL: it moves to a new verified connection, and Postfix never
# sees the 421.
L=${REUSE_LIMITED:-7}
send_each lena lim.example "$L"
# lim_once - each recipient stored exactly once, over TLS; Postfix logged no
# other status for any of them.
lim_once() {
	local i
	for i in $(seq 1 "$L"); do
		test "$(e2e_sink_count mx3.lim.example "lena$i@lim.example")" = 1 || return 1
		test "$(grep -F " to=<lena$i@lim.example>" "$E2E_POSTFIX_LOG" |
			grep -c ' status=')" = 1 || return 1
	done
}
lab_check "limit: Postfix logs status=sent for every message" all_sent lena lim.example "$L"
lab_check "limit: the MX stored each of the $L messages exactly once" lim_once
lab_check "limit: every message reached the MX over TLS" sink_all_tls mx3.lim.example
lab_check "limit: the MX did answer 421 at MAIL" \
	e2e_grep "$LAB_DIR/logs/smtp-mx3.lim.example.log" '421 at MAIL after 2 messages'
lim_peers=$(sink_peers mx3.lim.example lim.example)
lab_check "limit: $lim_peers MX connections for $L messages (at least $(((L + 1) / 2)))" \
	test "$lim_peers" -ge $(((L + 1) / 2))
retries=$(metric stsproxy_upstream_reuse_retries_total)
lab_check "limit: metrics count ${retries:-none} retries on a new connection (>= 1)" \
	test "${retries:-0}" -ge 1
lab_check "limit: the proxy logged the move to a new connection" \
	e2e_grep "$E2E_PROXY_LOG" 'upstream connecting again for the pending transaction'
lab_check "limit: ctl status counts the retries" \
	sh -c "'$STSPROXY' ctl -s '$LAB_DIR/proxy/control.sock' status |
		grep -E '^upstream_pool idle=[0-9]+ .* retries=[1-9]'"

# --- an attacker who arrives later ---------------------------------------------
# A stripper is put on the path to mx1 while a verified connection is parked.
# The next session takes that connection; whether it still reaches the MX
# (TLS end to end) or the attacker breaks it and the session is carried over
# to a new, stripped connection, the message never travels in plaintext: it
# is stored over TLS, or refused with 451 4.7.4 and stored nowhere.
e2e_attacker atk2 10.0.67.2 mangle 10.0.25.2
e2e_message "$M/late" "while a verified connection is parked"
e2e_sendmail sender@corp.example late@good.example <"$M/late"

# late_outcome - Postfix logged sent or deferred for late@good.example.
late_outcome() {
	local end=$((SECONDS + E2E_WAIT))
	while [ "$SECONDS" -le "$end" ]; do
		[ -n "$(e2e_status late@good.example)" ] && return 0
		sleep 0.2
	done
	return 1
}
# late_never_plain - stored over TLS, or refused with 451 4.7.4 and not stored.
late_never_plain() {
	local m
	if [ "$(e2e_status late@good.example)" = sent ]; then
		m=$(e2e_sink_msg mx1.good.example late@good.example) || return 1
		echo "sent; tls=$(lab_json "$m.json" tls)"
		test "$(lab_json "$m.json" tls)" = true
	else
		e2e_queue_has late@good.example '451 4\.7\.4 good\.example' &&
			test "$(e2e_sink_count mx1.good.example late@good.example)" = 0
	fi
}
lab_check "late: Postfix logged an outcome" late_outcome
lab_check "late: the session took the parked connection" \
	test "$(grep -c 'upstream reusing a connection' "$E2E_PROXY_LOG")" -ge "$N"
lab_check "late: stored over TLS, or refused with 451 4.7.4: never plaintext" late_never_plain
e2e_attacker_remove atk2

# --- a stripping attacker cannot make a reused connection carry plaintext ----
e2e_attacker atk1 10.0.66.2 mangle 10.0.26.2
e2e_message "$M/plain" "no policy, through the stripper"
e2e_sendmail sender@corp.example nora@plain.example <"$M/plain"
lab_check "strip: the no-policy message was sent (plaintext, no policy)" \
	e2e_wait_status nora@plain.example sent
lab_check "strip: it reached the MX without TLS" \
	test "$(lab_json "$(lab_smtp_last mx2.strip.example).json" tls)" = false
e2e_message "$M/strip" "enforce, through the stripper"
e2e_sendmail sender@corp.example sam@strip.example <"$M/strip"
lab_check "strip: the enforce recipient is deferred" \
	e2e_wait_status sam@strip.example deferred
lab_check "strip: Postfix's queue holds stsproxy's 451 4.7.4" \
	e2e_queue_has sam@strip.example '451 4\.7\.4 strip\.example'
lab_check "strip: the MX received nothing for the enforce recipient" \
	test "$(e2e_sink_count mx2.strip.example sam@strip.example)" = 0
lab_check "strip: no session to the stripped MX was carried by a parked connection" \
	test "$(sessions_to 10.0.26.2 'upstream reusing')" = 0
lab_check "strip: no connection to the stripped MX was parked" \
	test "$(sessions_to 10.0.26.2 'parked for reuse')" = 0
lab_check "strip: the attacker did rewrite STARTTLS" \
	e2e_grep "$(lab_attacker_log atk1)" 'event=mangle'

lab_done
