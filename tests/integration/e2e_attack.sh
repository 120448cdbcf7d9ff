#!/bin/bash
# e2e_attack.sh - a real Postfix behind stsproxy on a gateway, with an
# on-path attacker between the gateway and the receiving MX hosts:
#
#   strip.example   enforce; the attacker rewrites STARTTLS in the EHLO
#                   reply -> 451 4.7.4, Postfix defers, the MX gets nothing;
#                   then the attack stops -> Postfix retries, the MX gets
#                   the message exactly once
#   forge.example   enforce; the attacker answers STARTTLS itself with a
#                   self-signed certificate for the MX name -> 451 4.7.5
#   cached.example  enforce; delivered once on a clean path, then the policy
#                   host goes away and the attacker drops STARTTLS -> the
#                   cached policy still blocks, also after stsproxy restarts
#
# Every check looks at what the receiving server stored and at what
# Postfix logged or holds in its queue, and at stsproxy's event file.
# Needs root; STSPROXY names the binary. Prints "ok N - ..." lines.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

# The policy host no longer answers HTTPS from the gateway.
policy_host_down() {
	! lab_exec gw curl -sk --max-time 3 -o /dev/null https://10.0.44.2/.well-known/mta-sts.txt
}

e2e_init e2eatk
e2e_lab

e2e_mx mx1 10.0.25.2 mx1.strip.example
e2e_mx mx2 10.0.26.2 mx2.forge.example
e2e_mx mx3 10.0.27.2 mx3.cached.example
lab_sts_publish strip.example s1 enforce mx1.strip.example
lab_sts_publish forge.example f1 enforce mx2.forge.example
lab_sts_publish cached.example c1 enforce mx3.cached.example
lab_dns_record \
	"strip.example MX 10 mx1.strip.example." "mx1.strip.example A 10.0.25.2" \
	"forge.example MX 10 mx2.forge.example." "mx2.forge.example A 10.0.26.2" \
	"cached.example MX 10 mx3.cached.example." "mx3.cached.example A 10.0.27.2"
e2e_start

e2e_attacker atk1 10.0.66.2 mangle 10.0.25.2
e2e_attacker atk2 10.0.67.2 forge 10.0.26.2 --name mx2.forge.example

M=$LAB_DIR/msg
mkdir -p "$M"
e2e_message "$M/strip" "through a STARTTLS stripper"
e2e_message "$M/forge" "through a forged certificate"
e2e_message "$M/cached1" "cached policy, clean path"
e2e_message "$M/cached2" "cached policy, under attack"
e2e_sendmail sender@corp.example sam@strip.example <"$M/strip"
e2e_sendmail sender@corp.example fred@forge.example <"$M/forge"
e2e_sendmail sender@corp.example carl@cached.example <"$M/cached1"

# --- STARTTLS stripping --------------------------------------------------------
lab_check "rfc8461_5_strip: Postfix logs status=deferred" \
	e2e_wait_status sam@strip.example deferred
lab_check "rfc3207_strip: the attacker did rewrite STARTTLS" \
	e2e_grep "$(lab_attacker_log atk1)" 'event=mangle'
lab_check "rfc8461_5_strip: Postfix's queue holds stsproxy's 451 4.7.4" \
	e2e_queue_has sam@strip.example '451 4\.7\.4 strip\.example: MX 10\.0\.25\.2:25 does not offer STARTTLS'
lab_check "rfc8461_5_strip: the MX received nothing" \
	test "$(lab_smtp_count mx1.strip.example)" = 0
lab_check "rfc8461_5_strip: event policy-failure starttls-not-supported blocked" \
	e2e_event strip.example event=policy-failure result_type=starttls-not-supported \
	action=blocked mode=enforce

# --- forged certificate ----------------------------------------------------------
lab_check "rfc8461_4_2_forged: Postfix logs status=deferred" \
	e2e_wait_status fred@forge.example deferred
lab_check "rfc8461_4_2_forged: the attacker terminated TLS with its certificate" \
	e2e_grep "$(lab_attacker_log atk2)" 'event=forge'
lab_check "rfc8461_4_2_forged: Postfix's queue holds stsproxy's 451 4.7.5" \
	e2e_queue_has fred@forge.example '451 4\.7\.5 forge\.example'
lab_check "rfc8461_4_2_forged: the MX received nothing" \
	test "$(lab_smtp_count mx2.forge.example)" = 0
lab_check "rfc8461_4_2_forged: event policy-failure action=blocked" \
	e2e_event forge.example event=policy-failure action=blocked mode=enforce

# --- a cached policy outlives its policy host --------------------------------------
lab_check "rfc8461_3_3_cached: first message sent on a clean path" \
	e2e_wait_status carl@cached.example sent
lab_check "rfc8461_3_3_cached: the MX stored it" \
	e2e_sink_is mx3.cached.example carl@cached.example 1
lab__stop https-https
lab_check "rfc8461_3_3_cached: the policy host is gone" policy_host_down
e2e_attacker atk3 10.0.68.2 drop 10.0.27.2
e2e_sendmail sender@corp.example cora@cached.example <"$M/cached2"
lab_check "rfc8461_3_3_cached: Postfix logs status=deferred under attack" \
	e2e_wait_status cora@cached.example deferred
lab_check "rfc8461_3_3_cached: Postfix's queue holds 451 4.7.4" \
	e2e_queue_has cora@cached.example '451 4\.7\.4 cached\.example'
lab_check "rfc8461_3_3_cached: event names the cached policy" \
	e2e_event cached.example event=policy-failure action=blocked policy_source=cache
lab_check "rfc8461_3_3_cached: the MX got nothing more" \
	e2e_sink_is mx3.cached.example cora@cached.example 0

# The cache is persistent (section 3.3): a restarted proxy still blocks.
e2e_proxy_stop
n=$(e2e_count_status cora@cached.example deferred)
lab__start stsproxy gw "$STSPROXY" -c "$LAB_DIR/proxy/stsproxy.conf"
lab_check "rfc8461_3_3_cached: stsproxy restarts" \
	lab__await stsproxy gw "$E2E_GW_LAN4" "$E2E_PROXY_PORT"
lab_check "rfc8461_3_3_cached: after a restart, Postfix retries" \
	e2e_wait_count cora@cached.example deferred $((n + 1))
lab_check "rfc8461_3_3_cached: and the retry is refused with 451 4.7.4 again" \
	e2e_last_has cora@cached.example 'status=deferred .*451 4\.7\.4'
lab_check "rfc8461_3_3_cached: the MX still got nothing" \
	e2e_sink_is mx3.cached.example cora@cached.example 0

# --- the attack stops: Postfix's retry goes through ---------------------------------
e2e_attacker_remove atk1
lab_check "rfc8461_5_recovery: Postfix retries and logs status=sent" \
	e2e_wait_status sam@strip.example sent 60
lab_check "rfc8461_5_recovery: the MX stored the message" \
	e2e_sink_wait mx1.strip.example sam@strip.example 1
m=$(e2e_sink_msg mx1.strip.example sam@strip.example || true)
lab_check "rfc8461_5_recovery: over TLS" test "$(lab_json "$m.json" tls 2>/dev/null)" = true
lab_check "rfc8461_5_recovery: the message arrived intact" \
	e2e_same_body "$M/strip" "$m.eml"
lab_check "rfc8461_5_recovery: the message is no longer queued" \
	test -z "$(e2e_queue_reason sam@strip.example)"
sleep 6 # a queue run later: still exactly one copy
lab_check "rfc8461_5_recovery: delivered exactly once" \
	e2e_sink_is mx1.strip.example sam@strip.example 1
lab_check "rfc8461_5_forged: still nothing past the forger" \
	test "$(lab_smtp_count mx2.forge.example)" = 0

lab_done
