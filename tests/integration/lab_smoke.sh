#!/bin/bash
# lab_smoke.sh - proves the test lab itself works before anything relies
# on it: real DNS, MTA-STS policies over HTTPS, SMTP receivers with
# STARTTLS, and the on-path attacker, all in private namespaces.
#
# Topology (router "inet" in the middle, one /24 + /64 per host):
#   client 10.0.1.2   dns 10.0.53.2   https 10.0.44.2
#   mx1 10.0.25.2 (STARTTLS)   mx2 10.0.26.2 (no STARTTLS)
#   attacker 10.0.66.2 (ports 25 mangle, 2525 drop, 2526 forge, 2527 refuse)
#
# Prints TAP lines; exit 0 when every check passed. Needs root.

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
. "$(cd "$(dirname "$0")/../lab" && pwd)/lab.sh"

START=$SECONDS
lab_init smoke
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"

# --- topology ---
lab_router inet
lab_host client 10.0.1.2/24 fd00:0:1::2/64
lab_host dns 10.0.53.2/24 fd00:0:53::2/64
lab_host https 10.0.44.2/24 fd00:0:44::2/64
lab_host mx1 10.0.25.2/24 fd00:0:25::2/64
lab_host mx2 10.0.26.2/24 fd00:0:26::2/64
lab_host attacker 10.0.66.2/24

# --- certificates ---
lab_ca
CA=$LAB_DIR/ca/ca.crt
lab_cert mx1 mx1.example.test >/dev/null
MX1_CRT=$LAB_CRT MX1_KEY=$LAB_KEY
lab_cert other mta-sts.other.test >/dev/null
OTHER_CRT=$LAB_CRT OTHER_KEY=$LAB_KEY
lab_cert_expired expired mx1.example.test >/dev/null
EXP_CRT=$LAB_CRT

# --- HTTPS policies ---
lab_https https 10.0.44.2,fd00:0:44::2
lab_sts_publish example.test 20240101T1 enforce mx1.example.test '*.mx.example.test'
# wrong.test serves a valid certificate, but for another name.
LAB_HTTPS_CERT=$OTHER_CRT LAB_HTTPS_KEY=$OTHER_KEY \
	lab_sts_publish wrong.test 1 enforce mx.wrong.test
printf '<html>no</html>\n' >"$LAB_DIR/notfound.html"
lab_https_raw missing.test 404 text/html "$LAB_DIR/notfound.html"
lab_https_raw moved.test 301 - /dev/null location=https://evil.test/x
lab_https_raw html.test 200 'text/html; charset=utf-8' "$LAB_DIR/notfound.html"
head -c 100000 /dev/zero | tr '\0' 'a' >"$LAB_DIR/huge.txt"
lab_https_raw huge.test 200 text/plain "$LAB_DIR/huge.txt" chunked
lab_https_raw slow.test 200 text/plain "$LAB_DIR/huge.txt" rate=20000
for d in missing moved html huge slow; do lab_dns_record "mta-sts.$d.test A 10.0.44.2"; done

# --- DNS ---
lab_dns_record \
	"example.test MX 10 mx1.example.test." \
	"example.test MX 20 mx2.example.test." \
	"mx1.example.test A 10.0.25.2" \
	"mx1.example.test AAAA fd00:0:25::2" \
	"mx2.example.test 300 IN A 10.0.26.2" \
	'_mta-sts.split.test TXT "v=STSv1; " "id=abc"' \
	"_mta-sts.alias.test CNAME _mta-sts.example.test."
lab_dns_servfail broken.test
lab_dns_drop silent.test
cat >"$LAB_DIR/zone.txt" <<'EOF'
# extra records, one per line
  mx.wrong.test A 10.0.26.2
EOF
lab_dns dns 10.0.53.2,fd00:0:53::2 "$LAB_DIR/zone.txt"
lab_resolvconf client 10.0.53.2

# --- SMTP ---
lab_smtp mx1 10.0.25.2,fd00:0:25::2 mx1.example.test "$MX1_CRT" "$MX1_KEY"
lab_smtp mx2 10.0.26.2 mx2.example.test - - --no-starttls
lab_smtp mx1 10.0.25.2 strict.example.test "$MX1_CRT" "$MX1_KEY" --port 2525 --require-tls
lab_attacker attacker 10.0.66.2 mangle 10.0.25.2
lab_attacker attacker 10.0.66.2 drop 10.0.25.2 --port 2525
lab_attacker attacker 10.0.66.2 forge 10.0.25.2:25 --port 2526 --name mx1.example.test
lab_attacker attacker 10.0.66.2 refuse 10.0.25.2 --port 2527
echo "# lab up in $((SECONDS - START)) s"

# --- helpers for the checks ---
q() { lab_exec client drill -Q "$@"; }           # answers only
rcode() { lab_exec client drill "$@" | sed -n 's/.*rcode: \([A-Z]*\).*/\1/p'; }
expect() { # expect WANT CMD... - CMD's output equals WANT
	local want=$1 got
	shift
	got=$("$@") || true
	[ "$got" = "$want" ] || {
		echo "want: $want"
		echo "got:  $got"
		return 1
	}
}
contains() { # contains PATTERN CMD... - CMD's output matches PATTERN
	local pat=$1 out
	shift
	out=$("$@" 2>&1) || true
	grep -q -- "$pat" <<<"$out" || {
		echo "no '$pat' in:"
		echo "$out"
		return 1
	}
}
lacks() { # lacks PATTERN CMD... - CMD's output does not match PATTERN
	local pat=$1 out
	shift
	out=$("$@" 2>&1) || true
	if grep -q -- "$pat" <<<"$out"; then
		echo "unexpected '$pat' in:"
		echo "$out"
		return 1
	fi
	grep -q '^<- *250' <<<"$out" || {
		echo "no EHLO reply at all:"
		echo "$out"
		return 1
	}
}
fails() { ! "$@"; }
ehlo() { lab_exec client swaks --server "$1" --port "${2:-25}" --quit-after EHLO --ehlo client.test; }

# --- DNS checks ---
lab_check "dns: TXT _mta-sts.example.test" \
	expect '"v=STSv1; id=20240101T1"' q @10.0.53.2 TXT _mta-sts.example.test
sorted_mx() { q @10.0.53.2 MX example.test | sort; }
lab_check "dns: MX example.test" \
	expect "$(printf '10 mx1.example.test.\n20 mx2.example.test.')" sorted_mx
mx1_addrs() { q @10.0.53.2 A mx1.example.test && q @10.0.53.2 AAAA mx1.example.test; }
lab_check "dns: A and AAAA of mx1" \
	expect "$(printf '10.0.25.2\nfd00:0:25::2')" mx1_addrs
lab_check "dns: explicit TTL kept" \
	contains $'\t300\tIN\tA\t10.0.26.2' lab_exec client drill @10.0.53.2 A mx2.example.test
lab_check "dns: TXT split into two strings" \
	expect '"v=STSv1; " "id=abc"' q @10.0.53.2 TXT _mta-sts.split.test
lab_check "dns: CNAME at _mta-sts" \
	contains 'CNAME' lab_exec client drill @10.0.53.2 TXT _mta-sts.alias.test
lab_check "dns: unknown name is NXDOMAIN" \
	expect NXDOMAIN rcode @10.0.53.2 TXT _mta-sts.nope.test
lab_check "dns: known name, other type is NODATA" \
	expect NOERROR rcode @10.0.53.2 TXT mx1.example.test
lab_check "dns: servfail name is SERVFAIL" \
	expect SERVFAIL rcode @10.0.53.2 TXT _mta-sts.broken.test
lab_check "dns: records from a file" expect 10.0.26.2 q @10.0.53.2 A mx.wrong.test
lab_check "dns: dropped name times out" \
	fails lab_exec client timeout 1.5 drill @10.0.53.2 TXT _mta-sts.silent.test
lab_check "dns: answers over IPv6" \
	expect '10.0.25.2' q @fd00:0:53::2 A mx1.example.test
lab_dns_set '_mta-sts.example.test TXT "v=STSv1; id=20240202T2"'
lab_check "dns: changed policy id served after lab_dns_set" \
	expect '"v=STSv1; id=20240202T2"' q @10.0.53.2 TXT _mta-sts.example.test

# --- HTTPS checks (names resolved through the lab DNS via resolv.conf) ---
URL=/.well-known/mta-sts.txt
curl_() { lab_exec client curl -sS --max-time 5 --cacert "$CA" "$@"; }
lab_check "https: policy served to a verifying client" \
	expect "$(cat "$LAB_DIR/https/www/mta-sts.example.test/mta-sts.txt")" \
	curl_ --fail "https://mta-sts.example.test$URL"
lab_check "https: policy has mode and mx lines" \
	contains '^mx: \*\.mx\.example\.test$' curl_ "https://mta-sts.example.test$URL"
lab_check "https: content type is text/plain" \
	expect 'text/plain' curl_ -o /dev/null -w '%{content_type}' "https://mta-sts.example.test$URL"
lab_check "https: policy over IPv6" \
	expect 200 curl_ -6 -o /dev/null -w '%{http_code}' \
	--resolve "mta-sts.example.test:443:[fd00:0:44::2]" "https://mta-sts.example.test$URL"
lab_check "https: wrong-name certificate is rejected" \
	contains 'no alternative certificate subject name matches' \
	curl_ "https://mta-sts.wrong.test$URL"
curl_rc() { curl_ "$@" >/dev/null 2>&1 && echo 0 || echo $?; }
lab_check "https: wrong-name certificate, exit code 60" \
	expect 60 curl_rc "https://mta-sts.wrong.test$URL"
lab_check "https: 404 with html body" \
	expect '404 text/html' curl_ -o /dev/null -w '%{http_code} %{content_type}' "https://mta-sts.missing.test$URL"
lab_check "https: redirect is not followed by default" \
	expect '301 https://evil.test/x' curl_ -o /dev/null -w '%{http_code} %{redirect_url}' "https://mta-sts.moved.test$URL"
lab_check "https: wrong content type served" \
	expect 'text/html; charset=utf-8' curl_ -o /dev/null -w '%{content_type}' "https://mta-sts.html.test$URL"
huge() {
	curl_ -D "$LAB_DIR/headers.txt" -o /dev/null -w '%{size_download} ' "https://mta-sts.huge.test$URL" &&
		tr -d '\r' <"$LAB_DIR/headers.txt" | sed -n 's/^[Tt]ransfer-[Ee]ncoding: //p'
}
lab_check "https: huge body sent chunked, in full" expect '100000 chunked' huge
lab_check "https: slow body is slow" \
	expect 28 curl_rc --max-time 1 "https://mta-sts.slow.test$URL"
lab_check "https: unknown SNI gets the default certificate" \
	contains 'no alternative certificate subject name matches' \
	curl_ --resolve "mta-sts.none.test:443:10.0.44.2" "https://mta-sts.none.test$URL"

# --- SMTP checks ---
MSG=$LAB_DIR/msg.eml
printf 'From: a@client.test\r\nTo: b@example.test\r\nSubject: lab\r\n\r\nline one\r\n.leading dot\r\n\r\nlast\r\n' >"$MSG"
lab_check "smtp: mx1 offers STARTTLS" contains '250-STARTTLS' ehlo 10.0.25.2
s_client() { lab_exec client openssl s_client -starttls smtp "$@" </dev/null 2>&1; }
lab_check "smtp: mx1 certificate verifies for mx1.example.test" \
	contains 'Verify return code: 0 (ok)' s_client -connect 10.0.25.2:25 \
	-servername mx1.example.test -CAfile "$CA" -verify_hostname mx1.example.test \
	-verify_return_error
lab_check "smtp: message over STARTTLS accepted" \
	lab_exec client swaks --server 10.0.25.2 --tls --tls-sni mx1.example.test \
	--from a@client.test --to b@example.test,c@example.test --data "@$MSG"
lab_check "smtp: message stored" lab_smtp_wait mx1.example.test 1
LAST=$(lab_smtp_last mx1.example.test || true)
meta() { # meta FILE KEY... - the values, space-separated
	local f=$1 k out=
	shift
	for k in "$@"; do out="$out${out:+ }$(lab_json "$f" "$k")"; done
	echo "$out"
}
lab_check "smtp: envelope recorded" \
	expect 'a@client.test b@example.test,c@example.test' meta "$LAST.json" mail_from rcpt_tos
lab_check "smtp: TLS and SNI recorded" \
	expect 'true mx1.example.test' meta "$LAST.json" tls sni
exact_send() {
	lab_smtp_send client --server 10.0.25.2 --starttls --cafile "$CA" \
		--sni mx1.example.test --from x@client.test --to b@example.test \
		--data "$MSG" && lab_smtp_wait mx1.example.test 2 &&
		cmp "$MSG" "$(lab_smtp_last mx1.example.test).eml"
}
lab_check "smtp: stored bytes identical to the sent message" exact_send
lab_check "smtp: mx2 offers no STARTTLS" lacks STARTTLS ehlo 10.0.26.2
plain_mx2() {
	lab_exec client swaks --server 10.0.26.2 --from a@client.test \
		--to b@example.test --data "@$MSG" >/dev/null &&
		lab_smtp_wait mx2.example.test 1 && expect false meta "$(lab_smtp_last mx2.example.test).json" tls
}
lab_check "smtp: plain message to mx2 stored without TLS" plain_mx2
lab_check "smtp: --require-tls answers 530 before STARTTLS" contains '^<\*\* *530' \
	lab_exec client swaks --server 10.0.25.2 --port 2525 --from a@client.test \
	--to b@example.test --quit-after RCPT
lab_check "smtp: --require-tls accepts after STARTTLS" \
	lab_smtp_send client --server 10.0.25.2 --port 2525 --starttls --cafile "$CA" \
	--sni mx1.example.test --from a@client.test --to b@example.test --data "$MSG"
lab_check "smtp: mx1 reachable over IPv6" lab_wait_port client fd00:0:25::2 25 3

# --- attacker checks ---
lab_check "attack: control, mx1 through nothing shows STARTTLS" contains STARTTLS ehlo 10.0.25.2
lab_check "attack: mangle hides STARTTLS" lacks STARTTLS ehlo 10.0.66.2
lab_check "attack: mangle leaves XXXXXXXA" contains '250-XXXXXXXA' ehlo 10.0.66.2
lab_check "attack: drop hides STARTTLS" lacks STARTTLS ehlo 10.0.66.2 2525
lab_check "attack: drop leaves no trace" lacks XXXXXXXA ehlo 10.0.66.2 2525
lab_check "attack: --tls through mangle fails" fails lab_exec client swaks \
	--server 10.0.66.2 --tls --from a@client.test --to b@example.test --quit-after MAIL
lab_check "attack: refuse answers 454 to STARTTLS" contains '454 4.7.0' \
	lab_exec client swaks --server 10.0.66.2 --port 2527 --tls --quit-after TLS
lab_check "attack: forge offers STARTTLS with a self-signed certificate" \
	contains 'O = self-signed, CN = mx1.example.test' s_client -connect 10.0.66.2:2526
lab_check "attack: forged certificate fails verification" \
	fails lab_exec client openssl s_client -starttls smtp -connect 10.0.66.2:2526 \
	-CAfile "$CA" -verify_hostname mx1.example.test -verify_return_error </dev/null
forge_relay() {
	local l
	lab_smtp_send client --server 10.0.66.2 --port 2526 --starttls \
		--from forge@client.test --to b@example.test --data "$MSG" &&
		lab_smtp_wait mx1.example.test 3 && l=$(lab_smtp_last mx1.example.test) &&
		expect 'false forge@client.test' meta "$l.json" tls mail_from &&
		cmp "$MSG" "$l.eml"
}
lab_check "attack: forge relays the mail in cleartext" forge_relay
lab_check "attack: forge logged the handshake" \
	grep -q 'event=forge-handshake-ok' "$(lab_attacker_log attacker 2526)"
lab_intercept 10.0.25.2 10.0.66.2
lab_check "attack: intercepted mx1 address hides STARTTLS" lacks STARTTLS ehlo 10.0.25.2
lab_check "attack: intercepted path still reaches mx1 (banner)" contains '220 mx1.example.test' ehlo 10.0.25.2

# --- certificates ---
lab_check "cert: expired leaf is expired" contains 'certificate has expired' \
	openssl verify -CAfile "$CA" "$EXP_CRT"
lab_cert_notyet notyet mx1.example.test >/dev/null
lab_check "cert: not-yet-valid leaf is not yet valid" contains 'certificate is not yet valid' \
	openssl verify -CAfile "$CA" "$LAB_CRT"
lab_check "cert: good leaf verifies" openssl verify -CAfile "$CA" "$MX1_CRT"

# --- teardown leaves nothing ---
PFX=$LAB_PFX
DIR=$LAB_DIR
lab_teardown
n=$((LAB_CHECKS + 1))
if ip netns list | grep -q "^$PFX"; then
	echo "not ok $n - teardown: namespaces left: $(ip netns list | grep "^$PFX" | tr '\n' ' ')"
	LAB_FAILS=$((LAB_FAILS + 1))
elif pgrep -f "$DIR" >/dev/null; then
	echo "not ok $n - teardown: processes left: $(pgrep -af "$DIR")"
	LAB_FAILS=$((LAB_FAILS + 1))
elif [ -e "$DIR" ] || ls -d /etc/netns/"$PFX"* >/dev/null 2>&1; then
	echo "not ok $n - teardown: files left"
	LAB_FAILS=$((LAB_FAILS + 1))
else
	echo "ok $n - teardown: no namespaces, processes or files left"
fi
LAB_CHECKS=$n
echo "# took $((SECONDS - START)) s"
lab_done
