#!/bin/bash
# e2e_nfq.sh - the daemon's NFQUEUE inspector in the end-to-end lab. The
# gateway does not redirect Postfix's port-25 traffic to the proxy: the
# flows are forwarded, and the rules of scripts/nfq-iptables.sh queue them
# to the inspector that stsproxy starts from the nfq group of its
# configuration (no listen). An on-path attacker strips STARTTLS from the
# EHLO reply of mx1.strip.example, whose domain has an enforce policy that
# the daemon's persistent cache already holds (looked up beforehand with
# "stsproxy policy", as an operator would; the inspector consults the
# cache, RFC 8461 section 3.3).
#
#   monitor  action = "log": Postfix (opportunistic TLS) delivers in
#            cleartext; the event file has starttls_stripped and
#            cleartext_rcpt from source nfq naming strip.example
#   block    action = "block": the packet carrying the RCPT is dropped and
#            both ends reset (RFC 8461 section 5: no delivery without TLS
#            to an enforce domain); the MX never sees the recipient,
#            Postfix defers (connection lost); once the attacker is gone
#            Postfix's retry negotiates TLS, the inspector releases the
#            flow to the kernel and the MX stores the message exactly once
#
# Needs root, the lab's packages and postfix; STSPROXY names the binary.
# Prints "ok N - ..." lines and exits non-zero when a check failed. The
# NFQUEUE rules live in the gateway namespace and go with it.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

# nfq_metric NAME - the value of an unlabelled sample on the daemon's metrics endpoint.
nfq_metric() {
	lab_exec gw python3 -c 'import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9125/metrics", timeout=5).read().decode()
print([l.split()[1] for l in body.splitlines() if l.split(" ")[0] == sys.argv[1]][0])' "$1"
}

# nfq_metrics_seen - the inspector's packets, events and flows are exported.
nfq_metrics_seen() {
	local packets events flows
	packets=$(nfq_metric stsproxy_nfq_packets_total) &&
		events=$(nfq_metric stsproxy_nfq_events_total) &&
		flows=$(nfq_metric stsproxy_nfq_flows_active) || return 1
	echo "packets=$packets events=$events flows=$flows"
	[ "$packets" -gt 0 ] && [ "$events" -ge 2 ] && [[ $flows =~ ^[0-9]+$ ]]
}

# nfq_rule_packets REGEX - packets counted by the inspector chain's rule
# matching REGEX in the gateway.
nfq_rule_packets() {
	lab_exec gw iptables -L STSPROXY_NFQ -v -n -x | awk -v pat="$1" '$0 ~ pat {print $1; exit}'
}

# never_saw RCPT - the MX's sink log and mail store do not name RCPT.
never_saw() {
	! grep -rF "$1" "$LAB_DIR/smtp/mx1.strip.example" "$LAB_DIR"/logs/smtp-*.log \
		"$LAB_DIR"/logs/attack-*.log
}

# sink_tls RCPT - the newest message stored for RCPT came over TLS (true/false).
sink_tls() {
	local m
	m=$(e2e_sink_msg mx1.strip.example "$1") || return 1
	lab_json "$m.json" tls
}

e2e_init e2enfq
CONF=$LAB_DIR/proxy/stsproxy.conf
e2e_lab
e2e_mx mx1 10.0.25.2 mx1.strip.example
lab_sts_publish strip.example s1 enforce mx1.strip.example
lab_dns_record "strip.example MX 10 mx1.strip.example." "mx1.strip.example A 10.0.25.2"
lab_dns dns "$E2E_DNS4"
e2e_postfix_start

# The policy is learnt on a clean path and persisted in state_dir.
e2e_nfq_conf "$CONF" log
lab_check "rfc8461_3_3_seed: stsproxy policy caches the enforce policy" \
	lab_exec gw "$STSPROXY" policy -c "$CONF" strip.example
lab_exec gw sh "$E2E_ROOT/scripts/nfq-iptables.sh" add 0
e2e_nfq_start log >/dev/null
lab_check "nfq_start: the daemon starts the inspector (no listener, the policy cached)" \
	e2e_grep "$E2E_PROXY_LOG" 'event=start .*listen=none .*cached_policies=1 nfq=on'
lab_check "nfq_start: no REDIRECT rule on the gateway" \
	bash -c "! ip netns exec $(lab_nsname gw) iptables -t nat -S | grep -q REDIRECT"

e2e_attacker atk1 10.0.66.2 drop 10.0.25.2

M=$LAB_DIR/msg
mkdir -p "$M"
e2e_message "$M/mon" "through a stripper, inspector logging"
e2e_message "$M/blk" "through a stripper, inspector blocking"

# --- monitor: action = "log" ------------------------------------------------------
e2e_sendmail sender@corp.example mona@strip.example <"$M/mon"
lab_check "nfq_log: Postfix delivers (opportunistic, cleartext)" \
	e2e_wait_status mona@strip.example sent
lab_check "nfq_log: the attacker stripped STARTTLS" \
	e2e_grep "$(lab_attacker_log atk1)" 'event=(drop|strip)'
lab_check "nfq_log: the MX stored the message" \
	e2e_sink_is mx1.strip.example mona@strip.example 1
lab_check "nfq_log: in cleartext" test "$(sink_tls mona@strip.example)" = false
lab_check "rfc8461_5_nfq_log: event starttls_stripped from nfq names strip.example" \
	e2e_event strip.example event=starttls_stripped source=nfq mode=enforce action=log
lab_check "rfc8461_5_nfq_log: event cleartext_rcpt from nfq names strip.example" \
	e2e_event strip.example event=cleartext_rcpt source=nfq mode=enforce action=log \
	reason=no_starttls
lab_check "nfq_metrics: packets, events and flows on the metrics endpoint" nfq_metrics_seen

# --- block: action = "block" --------------------------------------------------------
# Let Postfix's cached connections end: the new inspector must see flows from SYN.
sleep 3
lab_check "nfq_block: the daemon restarts in block mode" e2e_nfq_start block
: >"$E2E_EVENTS"
e2e_sendmail sender@corp.example bob@strip.example <"$M/blk"
lab_check "rfc8461_5_nfq_block: Postfix logs status=deferred" \
	e2e_wait_status bob@strip.example deferred
lab_check "rfc8461_5_nfq_block: Postfix lost the connection" \
	e2e_last_has bob@strip.example 'status=deferred .*(lost connection|reset by peer|Connection reset)'
lab_check "rfc8461_5_nfq_block: still queued" \
	e2e_queue_has bob@strip.example '.'
lab_check "rfc8461_5_nfq_block: event cleartext_rcpt action=block" \
	e2e_event strip.example event=cleartext_rcpt source=nfq mode=enforce action=block
lab_check "rfc8461_5_nfq_block: the MX never saw the recipient" never_saw bob@strip.example
lab_check "rfc8461_5_nfq_block: the MX stored nothing for it" \
	e2e_sink_is mx1.strip.example bob@strip.example 0

rel0=$(nfq_rule_packets CONNMARK)
e2e_attacker_remove atk1
e2e_flush
lab_check "rfc8461_5_nfq_recovery: Postfix retries and logs status=sent" \
	e2e_wait_status bob@strip.example sent
lab_check "rfc8461_5_nfq_recovery: the MX stored the message" \
	e2e_sink_wait mx1.strip.example bob@strip.example 1
lab_check "rfc8461_5_nfq_recovery: over TLS" test "$(sink_tls bob@strip.example)" = true
m=$(e2e_sink_msg mx1.strip.example bob@strip.example || true)
lab_check "rfc8461_5_nfq_recovery: the message arrived intact" e2e_same_body "$M/blk" "$m.eml"
lab_check "rfc8461_5_nfq_recovery: the TLS flow was released (mark -> connmark)" \
	test "$(nfq_rule_packets CONNMARK)" -gt "${rel0:-0}"
lab_check "rfc8461_5_nfq_recovery: no event for the TLS flow" \
	bash -c "! grep -q '\"action\": *\"log\"' '$E2E_EVENTS'"
sleep 6 # a queue run later: still exactly one copy
lab_check "rfc8461_5_nfq_recovery: delivered exactly once" \
	e2e_sink_is mx1.strip.example bob@strip.example 1
lab_check "rfc8461_5_nfq_recovery: no longer queued" test -z "$(e2e_queue_reason bob@strip.example)"
lab_check "nfq: the daemon is still running" lab__alive stsproxy
lab_check "nfq: no sanitizer report" \
	bash -c "! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' '$E2E_PROXY_LOG' '$LAB_DIR/logs/stsproxy.log'"

lab_done
