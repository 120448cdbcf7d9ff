#!/bin/bash
# dane.sh - DANE for SMTP (RFC 7672) through stsproxy on a gateway, against
# really signed zones (ldns-signzone, served by nsd; stsproxy validates with
# dns.trust_anchor_file = the zones' KSKs), real receiving MX hosts
# (smtp_sink.py) and a real on-path STARTTLS stripper (strip_proxy.py):
#
#   ee.test        DANE-EE 3 1 1 of the MX key                    delivered
#   ta.test        DANE-TA 2 0 1 of a private CA that is not in tls.ca_file,
#                  and an MTA-STS enforce policy the chain cannot meet:
#                  DANE alone decides (RFC 8461 section 2)       delivered
#   wrong.test     DANE-EE; the certificate names another host and has
#                  expired (section 3.1.1: neither is checked)   delivered
#   mismatch.test  DANE-EE of another key                        451 4.7.5
#   strip.test     DANE-EE; the attacker strips STARTTLS         451 4.7.4
#   bogus.test     the TLSA record changed after signing: bogus  451 4.7.5
#   unsigned.test  an unsigned zone with a mismatching TLSA record: not
#                  DANE (section 2.2), as without it             delivered
#   pkix.test      PKIX-TA and PKIX-EE records only (unusable, section
#                  3.1.3), and the attacker strips STARTTLS: TLS is still
#                  mandatory (section 2.2)                       451 4.7.4
#
# The mailer is smtp_send.py on the LAN (its RCPT reply is read from its
# transcript); a real Postfix there, as a legacy mailer, is deferred on
# the stripped DANE domain and delivers the clean one. Every check looks at
# what the receiving server stored, at the mailer's side and at stsproxy's
# event file. Then "stsproxy policy" and "stsproxy check tlsa" on the same
# zones and certificates. Last, the cross-check: the same Postfix, now
# itself a DANE client (smtp_tls_security_level = dane, behind a validating
# unbound) and without stsproxy in the path, reaches the same verdicts.
#
# Needs root, nsd, ldnsutils and the lab's packages; STSPROXY names the
# binary. Prints "ok N - ..." lines; exits 1 if any failed.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

for tool in nsd nsd-checkconf ldns-keygen ldns-signzone; do
	if ! command -v "$tool" >/dev/null; then
		echo "not ok - setup: $tool is missing (apt-get install nsd ldnsutils)" >&2
		exit 1
	fi
done

e2e_init dane
e2e_lab
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"

DNS_IP=$E2E_DNS4
ZONES=$LAB_DIR/zones
ANCHOR=$ZONES/trust-anchor.key
mkdir -p "$ZONES" "$LAB_DIR/certs"
: >"$ANCHOR"
. "$E2E_ROOT/tests/lab/zones.sh"

# --- certificates and their digests -------------------------------------------

# spki_sha256 CERT - the SHA2-256 of CERT's SubjectPublicKeyInfo, in hex.
spki_sha256() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
		sha256sum | cut -d' ' -f1
}

# cert_sha256 CERT - the SHA2-256 of CERT (DER), in hex.
cert_sha256() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# private_ca - a CA of the domain's own, unknown to tls.ca_file, and a
# leaf for mx.ta.test issued by it; the chain file holds both.
private_ca() {
	local d=$LAB_DIR/certs
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/private-ca.key" -out "$d/private-ca.crt" -days 30 \
		-subj "/O=ta.test/CN=ta.test private CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign" 2>/dev/null &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/mx.ta.key" -out "$d/mx.ta.csr" -subj "/CN=mx.ta.test" 2>/dev/null &&
		printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:mx.ta.test\n' \
			>"$d/mx.ta.ext" &&
		openssl x509 -req -in "$d/mx.ta.csr" -CA "$d/private-ca.crt" \
			-CAkey "$d/private-ca.key" -CAcreateserial -days 30 -extfile "$d/mx.ta.ext" \
			-out "$d/mx.ta.crt" 2>/dev/null &&
		cat "$d/mx.ta.crt" "$d/private-ca.crt" >"$d/mx.ta.chain"
}

# --- the MX hosts --------------------------------------------------------------

# mx NS ADDR NAME CERT KEY - a receiving MX with STARTTLS.
mx() {
	lab_host "$1" "$2/24" || return 1
	lab_smtp "$1" "$2" "$3" "$4" "$5"
}

lab_cert ee mx.ee.test >/dev/null
EE_CRT=$LAB_CRT
mx mxee 10.0.25.2 mx.ee.test "$LAB_CRT" "$LAB_KEY"
private_ca
mx mxta 10.0.26.2 mx.ta.test "$LAB_DIR/certs/mx.ta.chain" "$LAB_DIR/certs/mx.ta.key"
lab_cert_expired wrong somewhere.else.example >/dev/null
WRONG_CRT=$LAB_CRT
mx mxwrong 10.0.27.2 mx.wrong.test "$LAB_CRT" "$LAB_KEY"
lab_cert mismatch mx.mismatch.test >/dev/null
mx mxmis 10.0.28.2 mx.mismatch.test "$LAB_CRT" "$LAB_KEY"
lab_cert strip mx.strip.test >/dev/null
STRIP_CRT=$LAB_CRT
mx mxstrip 10.0.29.2 mx.strip.test "$LAB_CRT" "$LAB_KEY"
lab_cert bogus mx.bogus.test >/dev/null
BOGUS_CRT=$LAB_CRT
mx mxbogus 10.0.30.2 mx.bogus.test "$LAB_CRT" "$LAB_KEY"
lab_cert unsigned mx.unsigned.test >/dev/null
mx mxuns 10.0.31.2 mx.unsigned.test "$LAB_CRT" "$LAB_KEY"
lab_cert pkix mx.pkix.test >/dev/null
PKIX_CRT=$LAB_CRT
mx mxpkix 10.0.32.2 mx.pkix.test "$LAB_CRT" "$LAB_KEY"

# --- the zones -----------------------------------------------------------------

# dane_zone ZONE ADDR "TLSA RDATA"... - ZONE with one MX host, mx.ZONE at
# ADDR, and its TLSA records.
dane_zone() {
	local z=$1 a=$2 r
	shift 2
	zone_new "$z"
	zone_add "$z" "@ IN MX 10 mx.$z." "mx IN A $a"
	for r in "$@"; do
		zone_add "$z" "_25._tcp.mx IN TLSA $r"
	done
}

dane_zone ee.test 10.0.25.2 "3 1 1 $(spki_sha256 "$EE_CRT")"
zone_sign ee.test
dane_zone ta.test 10.0.26.2 "2 0 1 $(cert_sha256 "$LAB_DIR/certs/private-ca.crt")"
zone_add ta.test "_mta-sts IN TXT \"v=STSv1; id=ta1\"" "mta-sts IN A $E2E_HTTPS4"
lab_sts_policy ta.test enforce mx.ta.test >/dev/null
zone_sign ta.test
dane_zone wrong.test 10.0.27.2 "3 1 1 $(spki_sha256 "$WRONG_CRT")"
zone_sign wrong.test
dane_zone mismatch.test 10.0.28.2 "3 1 1 $(spki_sha256 "$EE_CRT")"
zone_sign mismatch.test
dane_zone strip.test 10.0.29.2 "3 1 1 $(spki_sha256 "$STRIP_CRT")"
zone_sign strip.test
dane_zone bogus.test 10.0.30.2 "3 1 1 $(spki_sha256 "$BOGUS_CRT")"
zone_sign bogus.test
zone_tamper bogus.test _25._tcp.mx.bogus.test TLSA "3 1 1 $(spki_sha256 "$EE_CRT")"
dane_zone unsigned.test 10.0.31.2 "3 1 1 $(spki_sha256 "$EE_CRT")"
dane_zone pkix.test 10.0.32.2 "1 1 1 $(spki_sha256 "$PKIX_CRT")" \
	"0 0 1 $(cert_sha256 "$LAB_DIR/ca/ca.crt")"
zone_sign pkix.test
ZONE_LIST="ee.test ta.test wrong.test mismatch.test strip.test bogus.test unsigned.test pkix.test"
# shellcheck disable=SC2086
nsd_start dns "$DNS_IP" $ZONE_LIST

# --- stsproxy on the gateway, the stripper, Postfix on the LAN -------------------

CONF=$LAB_DIR/proxy/stsproxy.conf
mkdir -p "$LAB_DIR/proxy"
cat >"$CONF" <<EOF
state_dir = "$LAB_DIR/proxy/state";
mode = "enforce";
listen = [ "0.0.0.0:$E2E_PROXY_PORT", "[::]:$E2E_PROXY_PORT" ];
interception = "redirect";
clients = [ "10.0.1.0/24", "fd00:0:1::/64" ];
workers = 1;
timeouts = { connect = 10; greeting = 30; command = 30; starttls = 20; };
log = { level = "debug"; file = "$E2E_PROXY_LOG"; events = "$E2E_EVENTS"; };
dns = { forwarders = [ "$DNS_IP" ]; timeout = 5; trust_anchor_file = "$ANCHOR"; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; };
sts = { fetch_timeout = 10; };
EOF
"$STSPROXY" -c "$CONF" --check-config >"$LAB_DIR/proxy/check.out" 2>&1 || {
	cat "$LAB_DIR/proxy/check.out" >&2
	exit 1
}
: >"$E2E_EVENTS"
lab__start stsproxy gw "$STSPROXY" -c "$CONF"
lab__await stsproxy gw "$E2E_GW_LAN4" "$E2E_PROXY_PORT"
e2e_redirect add
e2e_attacker atk1 10.0.66.2 mangle 10.0.29.2
e2e_attacker atk2 10.0.67.2 mangle 10.0.32.2
e2e_postfix_start

# --- the mailer's view -------------------------------------------------------------

M=$LAB_DIR/msg
mkdir -p "$M"

# send DOMAIN ADDR - one message to dane@DOMAIN at ADDR:25 from the LAN,
# through the gateway; the transcript is in $M/DOMAIN.log.
send() {
	e2e_message "$M/$1.lf" "DANE to $1"
	# CRLF line ends: a bare LF in DATA is refused (SMTP smuggling)
	sed 's/$/\r/' "$M/$1.lf" >"$M/$1.eml"
	lab_smtp_send lan --server "$2" --from sender@corp.example --to "dane@$1" \
		--data "$M/$1.eml" 2>"$M/$1.log" || true
}

# rcpt_reply DOMAIN REGEX - the reply to RCPT in the transcript matches REGEX.
rcpt_reply() {
	local r
	r=$(grep -A1 '^C: RCPT' "$M/$1.log" | grep '^S: ' | head -n 1)
	echo "RCPT reply: ${r:-<none>}"
	printf '%s\n' "$r" | grep -Eq -- "$2"
}

# stored NAME DOMAIN COUNT - MX NAME holds exactly COUNT messages for dane@DOMAIN.
stored() { e2e_sink_is "$1" "dane@$2" "$3"; }

# delivered_over_tls NAME DOMAIN - the message reached MX NAME over TLS.
delivered_over_tls() {
	local m
	m=$(e2e_sink_msg "$1" "dane@$2") || return 1
	test "$(lab_json "$m.json" tls)" = true
}

send ee.test 10.0.25.2
send ta.test 10.0.26.2
send wrong.test 10.0.27.2
send mismatch.test 10.0.28.2
send strip.test 10.0.29.2
send bogus.test 10.0.30.2
send unsigned.test 10.0.31.2
send pkix.test 10.0.32.2

lab_check "rfc7672_3_1_1_dane_ee: delivered" rcpt_reply ee.test '^S: 250'
lab_check "rfc7672_3_1_1_dane_ee: the MX stored it once, over TLS" \
	eval 'stored mx.ee.test ee.test 1 && delivered_over_tls mx.ee.test ee.test'
lab_check "rfc7672_3_1_1_dane_ee: no event" e2e_no_event ee.test
lab_check "rfc7672_3_1_2_dane_ta_private_ca: delivered despite the MTA-STS policy" \
	rcpt_reply ta.test '^S: 250'
lab_check "rfc8461_2_dane_wins: the MX stored it, no policy failure" \
	eval 'stored mx.ta.test ta.test 1 && e2e_no_event ta.test'
lab_check "rfc7672_3_1_1_wrong_name_expired: delivered" rcpt_reply wrong.test '^S: 250'
lab_check "rfc7672_3_1_1_wrong_name_expired: stored" stored mx.wrong.test wrong.test 1
lab_check "rfc7672_3_tlsa_mismatch: 451 4.7.5" \
	rcpt_reply mismatch.test '^S: 451 4\.7\.5 mismatch\.test: MX 10\.0\.28\.2:25 does not meet its DANE TLSA records \(certificate-not-trusted'
lab_check "rfc7672_3_tlsa_mismatch: the MX got nothing" stored mx.mismatch.test mismatch.test 0
lab_check "rfc7672_3_tlsa_mismatch: event policy_type=tlsa" \
	e2e_event mismatch.test event=policy-failure policy_type=tlsa \
	result_type=certificate-not-trusted action=blocked
lab_check "rfc7672_2_2_stripped: 451 4.7.4" \
	rcpt_reply strip.test '^S: 451 4\.7\.4 strip\.test: MX 10\.0\.29\.2:25 does not offer STARTTLS \(DANE TLSA records published'
lab_check "rfc7672_2_2_stripped: the attacker did rewrite STARTTLS" \
	e2e_grep "$(lab_attacker_log atk1)" 'event=mangle'
lab_check "rfc7672_2_2_stripped: the MX got nothing" stored mx.strip.test strip.test 0
lab_check "rfc7672_2_2_stripped: event" \
	e2e_event strip.test event=policy-failure policy_type=tlsa \
	result_type=starttls-not-supported action=blocked
lab_check "rfc7672_2_2_1_bogus_tlsa: 451 4.7.5" \
	rcpt_reply bogus.test '^S: 451 4\.7\.5 bogus\.test: .*dnssec-invalid'
lab_check "rfc7672_2_2_1_bogus_tlsa: the MX got nothing" stored mx.bogus.test bogus.test 0
lab_check "rfc7672_2_2_1_bogus_tlsa: event dnssec-invalid" \
	e2e_event bogus.test event=policy-failure policy_type=tlsa result_type=dnssec-invalid
lab_check "rfc7672_2_2_unsigned_tlsa_ignored: delivered" rcpt_reply unsigned.test '^S: 250'
lab_check "rfc7672_2_2_unsigned_tlsa_ignored: stored, no event" \
	eval 'stored mx.unsigned.test unsigned.test 1 && e2e_no_event unsigned.test'
lab_check "rfc7672_3_1_3_pkix_only_stripped: 451 4.7.4 (TLS mandatory)" \
	rcpt_reply pkix.test '^S: 451 4\.7\.4 pkix\.test: '
lab_check "rfc7672_3_1_3_pkix_only_stripped: the MX got nothing" stored mx.pkix.test pkix.test 0

# --- a legacy Postfix through the gateway ---------------------------------------

e2e_message "$M/pf-strip" "Postfix to a stripped DANE domain"
e2e_message "$M/pf-ee" "Postfix to a DANE domain"
# Postfix resolves the MX hosts itself (nsd answers for its zones).
e2e_sendmail sender@corp.example pf@strip.test <"$M/pf-strip"
e2e_sendmail sender@corp.example pf@ee.test <"$M/pf-ee"
lab_check "rfc7672_postfix_stripped: Postfix defers" e2e_wait_status pf@strip.test deferred
lab_check "rfc7672_postfix_stripped: Postfix's queue holds stsproxy's 451 4.7.4" \
	e2e_queue_has pf@strip.test '451 4\.7\.4 strip\.test'
lab_check "rfc7672_postfix_dane_ee: Postfix delivers" e2e_wait_status pf@ee.test sent
lab_check "rfc7672_postfix_dane_ee: the MX stored it" e2e_sink_is mx.ee.test pf@ee.test 1

# --- the operator's tools ---------------------------------------------------------

# policy_json DOMAIN EXPR - "stsproxy policy --json DOMAIN" in the gateway; the
# Python expression EXPR over its output "j" is true.
policy_json() {
	local out=$LAB_DIR/policy-$1.json
	lab_exec gw env STSPROXY_STATE_DIR="$LAB_DIR/cli-state" \
		"$STSPROXY" policy -c "$CONF" --json "$1" >"$out" || true
	cat "$out"
	"$(lab__python)" -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$out"
}
lab_check "policy_cli: ee.test shows a usable TLSA record of mx.ee.test" \
	policy_json ee.test "j['dane']['mx_secure'] and j['dane']['hosts'][0]['name'] == 'mx.ee.test' and j['dane']['hosts'][0]['state'] == 'usable' and j['dane']['hosts'][0]['tlsa'][0].startswith('3 1 1 ')"
lab_check "policy_cli: ta.test shows both MTA-STS and DANE" \
	policy_json ta.test "j['status'] == 'policy' and j['mode'] == 'enforce' and j['dane']['hosts'][0]['state'] == 'usable'"
lab_check "policy_cli: bogus.test's host failed, dnssec-invalid" \
	policy_json bogus.test "j['dane']['hosts'][0]['state'] == 'failed' and j['dane']['hosts'][0]['problem'] == 'dnssec-invalid'"
lab_check "policy_cli: unsigned.test, DANE does not apply" \
	policy_json unsigned.test "j['dane']['status'] == 'none' and not j['dane']['mx_secure']"
lab_check "policy_cli: pkix.test's records are unusable" \
	policy_json pkix.test "j['dane']['hosts'][0]['state'] == 'unusable' and j['dane']['hosts'][0]['problem'] == 'tlsa-invalid'"
lab_check "check_tlsa: the DANE-EE record matches the MX certificate" \
	"$STSPROXY" check tlsa "3 1 1 $(spki_sha256 "$EE_CRT")" "$EE_CRT"
lab_check "check_tlsa: DANE-TA of the private CA matches the chain for mx.ta.test" \
	"$STSPROXY" check tlsa "2 0 1 $(cert_sha256 "$LAB_DIR/certs/private-ca.crt")" \
	"$LAB_DIR/certs/mx.ta.chain" mx.ta.test
lab_check "check_tlsa: another key does not match (exit 1)" \
	eval "! \"$STSPROXY\" check tlsa '3 1 1 $(spki_sha256 "$EE_CRT")' '$STRIP_CRT'"

# --- the cross-check: Postfix itself as a DANE client, the same verdicts ------------
#
# A validating unbound (the zones' KSKs as trust anchors, the zones from
# nsd) answers a Postfix with smtp_tls_security_level = dane and
# smtp_dns_support_level = dnssec, on the same LAN, now without stsproxy
# in the path (no redirect), through the same stripper.

lab_host vres 10.0.54.2/24
mkdir -p "$LAB_DIR/vres"
{
	echo "server:"
	echo "  interface: 10.0.54.2"
	echo "  port: 53"
	echo "  access-control: 0.0.0.0/0 allow"
	echo "  do-not-query-localhost: no"
	echo "  do-daemonize: no"
	echo '  chroot: ""'
	echo '  username: ""'
	echo "  directory: \"$LAB_DIR/vres\""
	echo "  pidfile: \"$LAB_DIR/vres/unbound.pid\""
	echo "  use-syslog: no"
	echo '  logfile: ""'
	echo "  module-config: \"validator iterator\""
	echo "  trust-anchor-file: \"$ANCHOR\""
	echo '  local-zone: "test." nodefault'
	echo "  val-log-level: 2"
	for z in $ZONE_LIST; do
		echo "stub-zone:"
		echo "  name: \"$z\""
		echo "  stub-addr: $DNS_IP"
	done
} >"$LAB_DIR/vres/unbound.conf"
lab_check "setup: the validating resolver's configuration" \
	unbound-checkconf "$LAB_DIR/vres/unbound.conf"
lab__start vres vres unbound -d -c "$LAB_DIR/vres/unbound.conf"
lab_wait_port vres 10.0.54.2 53 || true

# Postfix asks the validating resolver and trusts its AD bit.
e2e_postfix_stop
e2e_redirect del
lab_resolvconf lan 10.0.54.2
echo "options edns0 trust-ad" >>"/etc/netns/$(lab_nsname lan)/resolv.conf"
lab_exec lan postsuper -c "$E2E_PF/conf" -d ALL >/dev/null 2>&1 || true
lab_exec lan postconf -c "$E2E_PF/conf" -e "smtp_tls_security_level = dane" \
	"smtp_dns_support_level = dnssec"
lab_exec lan postfix -c "$E2E_PF/conf" start >/dev/null 2>&1
E2E_POSTFIX_UP=1

for d in ee.test ta.test wrong.test mismatch.test strip.test bogus.test unsigned.test \
	pkix.test; do
	e2e_message "$M/px-$d" "Postfix with DANE to $d"
	e2e_sendmail sender@corp.example "px@$d" <"$M/px-$d"
done
for d in ee.test ta.test wrong.test unsigned.test; do
	lab_check "postfix_dane_crosscheck: $d sent, as through stsproxy" \
		e2e_wait_status "px@$d" sent
done
for d in mismatch.test strip.test bogus.test pkix.test; do
	lab_check "postfix_dane_crosscheck: $d deferred, as through stsproxy" \
		e2e_wait_status "px@$d" deferred
done
lab_check "postfix_dane_crosscheck: mismatch.test, Postfix's reason is its DANE check" \
	e2e_queue_has px@mismatch.test 'Server certificate not verified'
lab_check "postfix_dane_crosscheck: strip.test and pkix.test, TLS required" \
	eval "e2e_queue_has px@strip.test 'TLS is required' && e2e_queue_has px@pkix.test 'TLS is required'"
lab_check "postfix_dane_crosscheck: bogus.test, the TLSA lookup failed" \
	e2e_queue_has px@bogus.test 'TLSA lookup error'
lab_check "postfix_dane_crosscheck: Postfix verified the DANE-EE MX" \
	e2e_grep "$E2E_POSTFIX_LOG" 'Verified TLS connection established to mx\.ee\.test'
lab_check "postfix_dane_crosscheck: Postfix verified the DANE-TA MX" \
	e2e_grep "$E2E_POSTFIX_LOG" 'Verified TLS connection established to mx\.ta\.test'
lab_check "postfix_dane_crosscheck: the deferred MX hosts got nothing from Postfix" \
	eval 'e2e_sink_is mx.mismatch.test px@mismatch.test 0 && e2e_sink_is mx.strip.test px@strip.test 0 && e2e_sink_is mx.bogus.test px@bogus.test 0 && e2e_sink_is mx.pkix.test px@pkix.test 0'

lab__stop vres
nsd_stop
lab_done
