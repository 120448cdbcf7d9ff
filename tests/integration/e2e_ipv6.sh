#!/bin/bash
# e2e_ipv6.sh - the end-to-end lab over IPv6: Postfix (inet_protocols =
# all) delivers to an enforce domain whose MX has only an AAAA record;
# the gateway redirects with ip6tables (scripts/iptables-gateway.sh) and
# stsproxy checks the policy against the IPv6 destination. A second
# domain behind a STARTTLS stripper is blocked over IPv6 too.
#
# Needs root; STSPROXY names the binary. Prints "ok N - ..." lines.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

# shellcheck disable=SC2034 # read by lib.sh
E2E_INET=all
e2e_init e2ev6
e2e_lab

e2e_mx mx1 10.0.25.2,fd00:0:25::2 mx1.six.example
e2e_mx mx2 10.0.26.2,fd00:0:26::2 mx2.sixstrip.example
lab_sts_publish six.example v1 enforce mx1.six.example
lab_sts_publish sixstrip.example v2 enforce mx2.sixstrip.example
lab_dns_record \
	"six.example MX 10 mx1.six.example." "mx1.six.example AAAA fd00:0:25::2" \
	"sixstrip.example MX 10 mx2.sixstrip.example." "mx2.sixstrip.example AAAA fd00:0:26::2"
e2e_start
lab_host atk1 10.0.66.2/24 fd00:0:66::2/64
lab_attacker atk1 fd00:0:66::2 mangle "[fd00:0:26::2]:25"
lab_intercept fd00:0:26::2 fd00:0:66::2

M=$LAB_DIR/msg
mkdir -p "$M"
e2e_message "$M/six" "over IPv6"
e2e_message "$M/strip" "over IPv6, STARTTLS stripped"
e2e_sendmail sender@corp.example alice@six.example <"$M/six"
e2e_sendmail sender@corp.example sam@sixstrip.example <"$M/strip"

lab_check "ipv6_enforce_valid: Postfix logs status=sent" \
	e2e_wait_status alice@six.example sent
lab_check "ipv6_enforce_valid: Postfix delivered to the IPv6 address" \
	e2e_grep "$E2E_POSTFIX_LOG" 'to=<alice@six\.example>, relay=mx1\.six\.example\[fd00:0:25::2\]:25'
lab_check "ipv6_enforce_valid: the MX stored it once" \
	e2e_sink_is mx1.six.example alice@six.example 1
m=$(e2e_sink_msg mx1.six.example alice@six.example || true)
lab_check "ipv6_enforce_valid: over TLS" test "$(lab_json "$m.json" tls 2>/dev/null)" = true
lab_check "ipv6_enforce_valid: from the gateway's IPv6 address" \
	e2e_grep "$m.json" '"fd00:0:2::2"'
lab_check "ipv6_enforce_valid: the proxy relayed it" \
	e2e_grep "$E2E_PROXY_LOG" 'dest=\[?fd00:0:25::2\]?[:.]25'

lab_check "ipv6_strip: Postfix logs status=deferred" \
	e2e_wait_status sam@sixstrip.example deferred
lab_check "ipv6_strip: Postfix's queue holds 451 4.7.4" \
	e2e_queue_has sam@sixstrip.example '451 4\.7\.4 sixstrip\.example'
lab_check "ipv6_strip: the MX received nothing" \
	test "$(lab_smtp_count mx2.sixstrip.example)" = 0
lab_check "ipv6_strip: event policy-failure action=blocked" \
	e2e_event sixstrip.example event=policy-failure action=blocked

lab_done
