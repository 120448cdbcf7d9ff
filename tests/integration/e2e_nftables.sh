#!/bin/bash
# e2e_nftables.sh - the end-to-end lab with the gateway's interception done
# by the nftables template (scripts/nftables-gateway.nft) instead of
# iptables: a real Postfix delivers to an enforce domain over TLS, and
# an on-path attacker that refuses STARTTLS ("454 TLS not available")
# gets the mail deferred with 451 4.7.4 and nothing past it.
#
# Needs root and nft; STSPROXY names the binary. Prints "ok N - ..." lines.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

# shellcheck disable=SC2034 # read by lib.sh
E2E_FIREWALL=nftables
# The gateway redirects with nftables and has no iptables rules of ours.
nft_redirect_only() {
	lab_exec gw nft list table inet stsproxy_gw | grep "redirect to :10025" &&
		! lab_exec gw iptables -t nat -S PREROUTING | grep STSPROXY
}

e2e_init e2enft
e2e_lab

e2e_mx mx1 10.0.25.2 mx1.good.example
e2e_mx mx2 10.0.26.2 mx2.refuse.example
lab_sts_publish good.example g1 enforce mx1.good.example
lab_sts_publish refuse.example r1 enforce mx2.refuse.example
lab_dns_record \
	"good.example MX 10 mx1.good.example." "mx1.good.example A 10.0.25.2" \
	"refuse.example MX 10 mx2.refuse.example." "mx2.refuse.example A 10.0.26.2"
e2e_start
e2e_attacker atk1 10.0.66.2 refuse 10.0.26.2

lab_check "nft: the gateway's redirect is an nftables rule" nft_redirect_only

M=$LAB_DIR/msg
mkdir -p "$M"
e2e_message "$M/good" "nftables, clean path"
e2e_message "$M/refuse" "nftables, STARTTLS refused on the path"
e2e_sendmail sender@corp.example alice@good.example <"$M/good"
e2e_sendmail sender@corp.example rita@refuse.example <"$M/refuse"

lab_check "nft_enforce_valid: Postfix logs status=sent" \
	e2e_wait_status alice@good.example sent
lab_check "nft_enforce_valid: the MX stored the message once" \
	e2e_sink_is mx1.good.example alice@good.example 1
m=$(e2e_sink_msg mx1.good.example alice@good.example || true)
lab_check "nft_enforce_valid: over TLS" test "$(lab_json "$m.json" tls 2>/dev/null)" = true
lab_check "nft_enforce_valid: the proxy relayed it (session in its log)" \
	e2e_grep "$E2E_PROXY_LOG" 'session=w[0-9]+-[0-9]+ start client=10\.0\.1\.2 dest=10\.0\.25\.2:25'

lab_check "rfc3207_refused: Postfix logs status=deferred" \
	e2e_wait_status rita@refuse.example deferred
lab_check "rfc3207_refused: the attacker refused STARTTLS" \
	e2e_grep "$(lab_attacker_log atk1)" 'event=refuse'
lab_check "rfc3207_refused: Postfix's queue holds 451 4.7.4" \
	e2e_queue_has rita@refuse.example '451 4\.7\.4 refuse\.example'
lab_check "rfc3207_refused: the MX received nothing" \
	test "$(lab_smtp_count mx2.refuse.example)" = 0
lab_check "rfc3207_refused: event policy-failure action=blocked" \
	e2e_event refuse.example event=policy-failure action=blocked

lab_done
