#!/bin/bash
# e2e_delivery.sh - a real Postfix behind stsproxy on a gateway, delivering
# to real MX hosts found through the lab DNS, with no attacker on the path:
#
#   good.example      enforce, valid certificate  -> delivered over TLS
#   testing.example   testing, certificate for another name
#                                                  -> delivered, event action=reported
#   nopolicy.example  no _mta-sts record           -> delivered, no event
#   mismatch.example  enforce, its MX is not in the policy
#                                                  -> 451 4.7.5, Postfix defers, MX gets nothing
#   one message to good.example and mismatch.example
#                                                  -> the first delivered once, the second deferred
#   a 5 MiB message to good.example               -> the body arrives byte-identical
#
# Every check looks at what the receiving server stored and at what
# Postfix logged or holds in its queue, not only at stsproxy's own log.
# Needs root; STSPROXY names the binary. Prints "ok N - ..." lines.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

e2e_init e2edlv
e2e_lab

e2e_mx mx1 10.0.25.2 mx1.good.example
E2E_CERT_NAME=mx.elsewhere.example e2e_mx mx2 10.0.26.2 mx2.testing.example
e2e_mx mx3 10.0.27.2 mx3.nopolicy.example
e2e_mx mx4 10.0.28.2 mx4.mismatch.example

lab_sts_publish good.example g1 enforce mx1.good.example
lab_sts_publish testing.example t1 testing mx2.testing.example
lab_sts_publish mismatch.example m1 enforce '*.mx.mismatch.example'
lab_dns_record \
	"good.example MX 10 mx1.good.example." "mx1.good.example A 10.0.25.2" \
	"testing.example MX 10 mx2.testing.example." "mx2.testing.example A 10.0.26.2" \
	"nopolicy.example MX 10 mx3.nopolicy.example." "mx3.nopolicy.example A 10.0.27.2" \
	"mismatch.example MX 10 mx4.mismatch.example." "mx4.mismatch.example A 10.0.28.2"
e2e_start

# Everything is injected at once; Postfix delivers in parallel.
M=$LAB_DIR/msg
mkdir -p "$M"
e2e_message "$M/good" "enforce domain"
e2e_message "$M/testing" "testing domain"
e2e_message "$M/nopolicy" "no policy"
e2e_message "$M/mismatch" "MX not in the policy"
e2e_message "$M/both" "two domains"
e2e_message "$M/large" "five mebibytes" $((5 * 1024 * 1024))
e2e_sendmail sender@corp.example alice@good.example <"$M/good"
e2e_sendmail sender@corp.example tess@testing.example <"$M/testing"
e2e_sendmail sender@corp.example nora@nopolicy.example <"$M/nopolicy"
e2e_sendmail sender@corp.example mike@mismatch.example <"$M/mismatch"
e2e_sendmail sender@corp.example bob@good.example carol@mismatch.example <"$M/both"
e2e_sendmail sender@corp.example big@good.example <"$M/large"

# --- enforce, valid: delivered over verified TLS ------------------------------
lab_check "rfc8461_5_enforce_valid: Postfix logs status=sent" \
	e2e_wait_status alice@good.example sent
lab_check "rfc8461_5_enforce_valid: the MX stored the message once" \
	e2e_sink_is mx1.good.example alice@good.example 1
m=$(e2e_sink_msg mx1.good.example alice@good.example || true)
lab_check "rfc8461_4_2_enforce_valid: the MX received it over TLS" \
	test "$(lab_json "$m.json" tls 2>/dev/null)" = true
lab_check "rfc8461_5_enforce_valid: the message arrived intact" \
	e2e_same_body "$M/good" "$m.eml"
lab_check "rfc8461_5_enforce_valid: no event for a passing domain" \
	e2e_no_event good.example

# --- testing: relayed and reported -------------------------------------------
lab_check "rfc8461_5_testing: Postfix logs status=sent" \
	e2e_wait_status tess@testing.example sent
lab_check "rfc8461_5_testing: the MX stored the message once" \
	e2e_sink_is mx2.testing.example tess@testing.example 1
lab_check "rfc8461_5_testing: event policy-failure action=reported" \
	e2e_event testing.example event=policy-failure action=reported mode=testing

# --- no policy: relayed as the mailer would have ------------------------------
lab_check "rfc8461_5_no_policy: Postfix logs status=sent" \
	e2e_wait_status nora@nopolicy.example sent
lab_check "rfc8461_5_no_policy: the MX stored the message once" \
	e2e_sink_is mx3.nopolicy.example nora@nopolicy.example 1
lab_check "rfc8461_5_no_policy: no event" e2e_no_event nopolicy.example

# --- MX not in the policy: blocked --------------------------------------------
lab_check "rfc8461_4_1_mx_mismatch: Postfix logs status=deferred" \
	e2e_wait_status mike@mismatch.example deferred
lab_check "rfc8461_4_1_mx_mismatch: Postfix's queue holds 451 4.7.5 from stsproxy" \
	e2e_queue_has mike@mismatch.example '451 4\.7\.5 mismatch\.example'
lab_check "rfc8461_4_1_mx_mismatch: event policy-failure action=blocked" \
	e2e_event mismatch.example event=policy-failure action=blocked mode=enforce

# --- one message, a passing and a failing domain ------------------------------
lab_check "rfc8461_5_mixed: the passing recipient is sent" \
	e2e_wait_status bob@good.example sent
lab_check "rfc8461_5_mixed: the failing recipient is deferred" \
	e2e_wait_status carol@mismatch.example deferred
lab_check "rfc8461_5_mixed: the failing recipient stays queued with 4.7.5" \
	e2e_queue_has carol@mismatch.example '4\.7\.5'
lab_check "rfc8461_5_mixed: the passing recipient is no longer queued" \
	test -z "$(e2e_queue_reason bob@good.example)"

# --- a large message, byte for byte -------------------------------------------
lab_check "rfc5321_large: Postfix logs status=sent for 5 MiB" \
	e2e_wait_status big@good.example sent 60
m=$(e2e_sink_msg mx1.good.example big@good.example || true)
lab_check "rfc5321_large: the body arrived byte-identical" \
	e2e_same_body "$M/large" "$m.eml"
# Several connections went to mx1.good.example: the later ones resume the
# TLS session of an earlier one, and are still judged (they were sent).
lab_check "rfc8446_2_2_resumed: a later connection to mx1.good.example resumed its session" \
	grep -q 'upstream TLS .*CN=mx1.good.example".* resumed=yes' "$E2E_PROXY_LOG"

# Retries of the failing domains go on; wait for one more round, then
# nothing may have been delivered twice or past the policy.
lab_check "rfc8461_5_retry: Postfix retried the mismatch recipient" \
	e2e_wait_count carol@mismatch.example deferred 2
lab_check "rfc8461_5_mixed: the passing recipient was delivered exactly once" \
	e2e_sink_is mx1.good.example bob@good.example 1
lab_check "rfc8461_5_mismatch: the mismatched MX received nothing" \
	test "$(lab_smtp_count mx4.mismatch.example)" = 0

lab_done
