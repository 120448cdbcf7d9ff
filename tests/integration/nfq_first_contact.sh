#!/bin/bash
# nfq_first_contact.sh - the daemon's NFQUEUE inspector in block mode on
# recipient domains it has never looked up (first contact). The gateway
# forwards the client's port-25 flows and queues them with the rules of
# scripts/nfq-iptables.sh to the inspector that stsproxy starts from its
# nfq group (no listener); the lab has a real DNS server (unbound), a real
# policy host (nginx over HTTPS), real MX hosts (smtp_sink.py) and an
# on-path attacker that strips STARTTLS (strip_proxy.py, DNAT in the
# router). The client is swaks with opportunistic TLS, as an MTA sends.
#
#   strip    strip.example publishes enforce; the attacker strips
#            STARTTLS; the inspector holds the cleartext RCPT while it
#            looks the policy up, then drops it and resets both ends
#            (RFC 8461 section 5): the MX stores nothing, and the event
#            names the domain, the client and the MX
#   good     good.example publishes enforce, nothing attacks: delivered
#            over TLS, the flow released to the kernel, no event
#   plain    plain.example publishes nothing, its MX has no STARTTLS: the
#            RCPT is held until the lookup says "no policy", then
#            delivered (the hold shows on the metrics endpoint)
#   slow     slow.example's policy host never answers: at nfq.hold_timeout
#            (5 s) nfq.hold_timeout_action decides, with a policy_unknown
#            event: block (the default) stores nothing; pass (slow2) delivers
#   down     the inspector killed: with --queue-bypass in the rules mail
#            flows past it; without, the port-25 flows wait (fail closed)
#            until it is back
#
# Needs root, the lab's packages; STSPROXY names the binary. Prints
# "ok N - ..." lines and exits non-zero when a check failed; everything
# (namespaces, rules, daemons) goes with the lab on any exit.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

HOLD_S=5 # nfq.hold_timeout's default

# fc_kill - the inspector dies (SIGKILL): nothing is unbound cleanly.
fc_kill() {
	local pid
	pid=$(cat "$LAB_DIR/run/stsproxy.pid") || return 1
	kill -KILL "$pid" && rm -f "$LAB_DIR/run/stsproxy.pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# fc_rules add|del [BYPASS] - the template's rules in the gateway (BYPASS 1: --queue-bypass).
fc_rules() {
	lab_exec gw env NFQ_BYPASS="${2:-1}" sh "$E2E_ROOT/scripts/nfq-iptables.sh" "$1" 0
}

# fc_send RCPT MX_ADDR [SWAKS_TIMEOUT] - one message from the client,
# opportunistic TLS; the transcript goes to LAB_DIR/swaks.out. Returns
# swaks's status and leaves the seconds it took in FC_SECS.
fc_send() {
	local rc=0 t0=$SECONDS
	lab_exec lan timeout 60 swaks --server "$2" --port 25 --from sender@corp.example \
		--to "$1" --helo client.corp.example --tls-optional --timeout "${3:-30}" \
		--header "Subject: first contact $1" >"$LAB_DIR/swaks.out" 2>&1 || rc=$?
	FC_SECS=$((SECONDS - t0))
	return "$rc"
}

# fc_metric NAME - an unlabelled sample of the daemon's metrics endpoint.
fc_metric() {
	lab_exec gw python3 -c 'import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9125/metrics", timeout=5).read().decode()
print([l.split()[1] for l in body.splitlines() if l.split(" ")[0] == sys.argv[1]][0])' "$1"
}

# fc_event DOMAIN KEY=VALUE... [+FIELD...] - an event for DOMAIN with these
# values, which also has each +FIELD.
fc_event() {
	local d=$1 kv=() has=() a
	shift
	for a in "$@"; do
		case $a in +*) has+=("${a#+}") ;; *) kv+=("$a") ;; esac
	done
	e2e_event "$d" "${kv[@]}" >"$LAB_DIR/run/event.out" || {
		cat "$LAB_DIR/run/event.out"
		return 1
	}
	cat "$LAB_DIR/run/event.out"
	for a in "${has[@]}"; do
		grep -q "\"$a\"" "$LAB_DIR/run/event.out" || {
			echo "no $a"
			return 1
		}
	done
}

# fc_never_saw RCPT NAME - MX NAME's mail and the logs of the MX hosts and
# attackers do not name RCPT.
fc_never_saw() {
	! grep -rF "$1" "$LAB_DIR/smtp/$2" "$LAB_DIR"/logs/smtp-*.log "$LAB_DIR"/logs/attack-*.log
}

# fc_stored NAME RCPT TLS - MX NAME stored one message for RCPT, with TLS true/false.
fc_stored() {
	local m
	e2e_sink_wait "$1" "$2" 1 10 || return 1
	m=$(e2e_sink_msg "$1" "$2") || return 1
	echo "$m: tls=$(lab_json "$m.json" tls)"
	[ "$(lab_json "$m.json" tls)" = "$3" ]
}

# fc_grew NAME BEFORE BY - metric NAME is now BEFORE + BY.
fc_grew() {
	local now
	now=$(fc_metric "$1") || return 1
	echo "$1: $2 -> $now"
	[ "$2" != missing ] && [ "$now" -eq $(($2 + $3)) ]
}

fc_rule_packets() { # packets of the inspector chain's rule matching $1
	lab_exec gw iptables -L STSPROXY_NFQ -v -n -x | awk -v pat="$1" '$0 ~ pat {print $1; exit}'
}

e2e_init nfqfc
e2e_lab
e2e_mx mx1 10.0.25.2 mx1.strip.example
e2e_mx mx2 10.0.26.2 mx2.good.example
e2e_mx mx3 10.0.27.2 mx3.plain.example --no-starttls
lab_sts_publish strip.example s1 enforce mx1.strip.example
lab_sts_publish good.example g1 enforce mx2.good.example
lab_sts_publish slow.example w1 enforce mx3.plain.example
lab_sts_publish slow2.example w2 enforce mx3.plain.example
# The policy host of slow*.example: an address whose packets vanish.
lab_exec https ip addr add 10.0.44.3/24 dev eth0
lab_exec https iptables -A INPUT -d 10.0.44.3 -j DROP
lab_dns_del mta-sts.slow.example A
lab_dns_del mta-sts.slow2.example A
lab_dns_record "mta-sts.slow.example A 10.0.44.3" "mta-sts.slow2.example A 10.0.44.3" \
	"strip.example MX 10 mx1.strip.example." "mx1.strip.example A 10.0.25.2" \
	"good.example MX 10 mx2.good.example." "mx2.good.example A 10.0.26.2" \
	"plain.example MX 10 mx3.plain.example." "mx3.plain.example A 10.0.27.2" \
	"slow.example MX 10 mx3.plain.example." "slow2.example MX 10 mx3.plain.example."
lab_dns dns "$E2E_DNS4"

fc_rules add
lab_check "nfq_fc_start: the daemon starts the inspector in block mode" e2e_nfq_start block
lab_check "nfq_fc_start: the start line names the hold settings" \
	e2e_grep "$E2E_PROXY_LOG" 'nfq: event=started .*action=block .*hold_timeout=5 hold_max=1024 hold_timeout_action=block'
lab_check "nfq_fc_start: fail_open warns that only --queue-bypass keeps mail flowing while down" \
	e2e_grep "$E2E_PROXY_LOG" 'event=fail_open_rules .*--queue-bypass'
lab_check "nfq_fc_start: nothing cached yet" \
	bash -c "! grep -q 'cached_policies=[1-9]' '$E2E_PROXY_LOG'"

# --- strip: first contact with an enforce domain behind a stripper ---------------
e2e_attacker atk1 10.0.66.2 drop 10.0.25.2
rc=0
fc_send bob@strip.example 10.0.25.2 || rc=$?
lab_check "rfc8461_5_first_contact_strip: the client's session is cut (swaks exit $rc)" \
	bash -c "[ $rc -ne 0 ] && ! grep -Eq '^<- +(250 .*(queued|accepted|Ok: queued)|354)' '$LAB_DIR/swaks.out'"
lab_check "rfc8461_5_first_contact_strip: the attacker stripped STARTTLS" \
	e2e_grep "$(lab_attacker_log atk1)" 'event=(drop|strip)'
lab_check "rfc8461_5_first_contact_strip: the MX stored nothing" \
	e2e_sink_is mx1.strip.example bob@strip.example 0
lab_check "rfc8461_5_first_contact_strip: the recipient never left in the clear" \
	fc_never_saw bob@strip.example mx1.strip.example
lab_check "rfc8461_5_first_contact_strip: event cleartext_rcpt names domain, client and MX" \
	fc_event strip.example event=cleartext_rcpt source=nfq mode=enforce action=block \
	reason=no_starttls +held_ms +mail_from
lab_check "rfc8461_5_first_contact_strip: the event's ends are the client and the MX" \
	e2e_grep "$E2E_EVENTS" '"event":"cleartext_rcpt".*"client":"10\.0\.1\.2 [0-9]+","server":"10\.0\.25\.2 25"'
e2e_attacker_remove atk1

# --- good: first contact with an enforce domain, nothing attacks -----------------
rel0=$(fc_rule_packets CONNMARK)
lab_check "rfc8461_4_2_first_contact_good: delivered (swaks)" fc_send carol@good.example 10.0.26.2
lab_check "rfc8461_4_2_first_contact_good: stored once, over TLS" \
	fc_stored mx2.good.example carol@good.example true
lab_check "rfc8461_4_2_first_contact_good: the TLS flow was released to the kernel" \
	test "$(fc_rule_packets CONNMARK)" -gt "${rel0:-0}"
lab_check "rfc8461_4_2_first_contact_good: no event names good.example" e2e_no_event good.example

# --- plain: no policy; the held RCPT goes on when the lookup says so ---------------
holds0=$(fc_metric stsproxy_nfq_holds_total || echo missing)
lab_check "rfc8461_5_first_contact_plain: delivered in cleartext (no policy)" \
	fc_send dave@plain.example 10.0.27.2
lab_check "rfc8461_5_first_contact_plain: stored once, without TLS" \
	fc_stored mx3.plain.example dave@plain.example false
lab_check "rfc8461_5_first_contact_plain: the RCPT was held for the lookup (holds_total was $holds0)" \
	fc_grew stsproxy_nfq_holds_total "$holds0" 1
lab_check "rfc8461_5_first_contact_plain: nothing waits any more" \
	test "$(fc_metric stsproxy_nfq_holds_active 2>/dev/null || echo missing)" = 0
lab_check "rfc8461_5_first_contact_plain: no event names plain.example" e2e_no_event plain.example

# --- slow: the policy host never answers ---------------------------------------
rc=0
fc_send erin@slow.example 10.0.27.2 || rc=$?
lab_check "rfc8461_3_3_slow_block: the session is cut (swaks exit $rc after ${FC_SECS}s)" \
	bash -c "[ $rc -ne 0 ] && [ $FC_SECS -ge $((HOLD_S - 1)) ]"
lab_check "rfc8461_3_3_slow_block: the MX stored nothing" \
	e2e_sink_is mx3.plain.example erin@slow.example 0
lab_check "rfc8461_3_3_slow_block: the recipient never left in the clear" \
	fc_never_saw erin@slow.example mx3.plain.example
lab_check "rfc8461_3_3_slow_block: event policy_unknown (timeout, block) names slow.example" \
	fc_event slow.example event=policy_unknown source=nfq reason=timeout action=block +held_ms
lab_check "rfc8461_3_3_slow_block: counted as a hold timeout" \
	fc_grew stsproxy_nfq_hold_timeouts_total 0 1

lab_check "nfq_fc_pass: the daemon restarts with hold_timeout_action pass" \
	e2e_nfq_start block 'hold_timeout_action = "pass";'
lab_check "rfc8461_3_3_slow_pass: delivered after the hold timeout" fc_send frank@slow2.example 10.0.27.2
lab_check "rfc8461_3_3_slow_pass: it waited the hold timeout (${FC_SECS}s)" test "$FC_SECS" -ge $((HOLD_S - 1))
lab_check "rfc8461_3_3_slow_pass: stored once, without TLS" \
	fc_stored mx3.plain.example frank@slow2.example false
lab_check "rfc8461_3_3_slow_pass: event policy_unknown (timeout, pass) names slow2.example" \
	fc_event slow2.example event=policy_unknown source=nfq reason=timeout action=pass +held_ms

# --- down: what keeps mail flowing while the inspector is gone ------------------
lab_check "nfq_fc_down: the daemon restarts" e2e_nfq_start block
lab_check "nfq_fc_down: the template's NFQUEUE rules have --queue-bypass (its check)" \
	lab_exec gw sh "$E2E_ROOT/scripts/nfq-iptables.sh" check
lab_check "nfq_fc_down: the inspector is killed" fc_kill
lab_check "nfq_fc_down_bypass: mail flows past the dead inspector" \
	fc_send gina@plain.example 10.0.27.2 10
lab_check "nfq_fc_down_bypass: stored once" fc_stored mx3.plain.example gina@plain.example false

fc_rules del
fc_rules add 0
lab_check "nfq_fc_down_closed: the rules without --queue-bypass fail the template's check" \
	bash -c "! ip netns exec $(lab_nsname gw) sh '$E2E_ROOT/scripts/nfq-iptables.sh' check"
rc=0
fc_send hank@plain.example 10.0.27.2 5 || rc=$?
lab_check "nfq_fc_down_closed: no inspector, no bypass: the connection never opens (swaks exit $rc)" \
	bash -c "[ $rc -ne 0 ] && ! grep -q '^<- *220' '$LAB_DIR/swaks.out'"
lab_check "nfq_fc_down_closed: the MX stored nothing" e2e_sink_is mx3.plain.example hank@plain.example 0
lab_check "nfq_fc_down_closed: the inspector comes back" e2e_nfq_start block
lab_check "nfq_fc_down_closed: mail flows again" fc_send hank@plain.example 10.0.27.2
lab_check "nfq_fc_down_closed: stored once" fc_stored mx3.plain.example hank@plain.example false
lab_check "nfq_fc: the daemon is still running" lab__alive stsproxy
lab_check "nfq_fc: no sanitizer report" \
	bash -c "! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' '$E2E_PROXY_LOG' '$LAB_DIR/logs/stsproxy.log'"

lab_done
