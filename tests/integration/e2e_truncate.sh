#!/bin/bash
# e2e_truncate.sh - stsproxy on a gateway, a mailer on its LAN, and an
# on-path attacker in front of the one real MX (tests/lab/cut_proxy.py,
# DNAT in the router) that relays the session and cuts the proxy's
# connection at one point, with a FIN or a RST:
#
#   banner, ehlo, starttls      in clear: behind the banner, the EHLO
#                               reply, the 220 to STARTTLS
#   hs-mid                      inside the handshake, behind the ServerHello
#   hs-flight1                  TLS 1.2: behind ServerHello .. ServerHelloDone
#   hs-last                     behind the server's last handshake flight,
#                               in the same send: the handshake completes and
#                               the connection is gone in one read
#   hs-last-late                the same flight, the cut 300 ms later
#   ehlo-tls                    behind the reply to the EHLO inside TLS
#   data                        inside the message data
#   dot                         the final dot reached the MX, its reply is
#                               held back and the connection cut
#
# Every connection after the cut is answered by the attacker itself, a
# plaintext SMTP server without STARTTLS that accepts everything and
# records every line. The MX serves enforce.example (policy enforce),
# testing.example (testing) and nopolicy.example (no policy); each case
# sends one message to each, separately, with smtp_send.py as the mailer.
# The handshake cuts run against the MX with TLS 1.3 as it comes (mostly
# a resumption of the proxy's cached session), with TLS 1.3 full
# handshakes and with TLS 1.2 full handshakes (for these two the MX is
# restarted before each message, so that no session resumes).
#
# For each message: the attacker cut where asked; nothing of an enforce
# message (envelope, Message-ID, body) reached the attacker in clear (for
# the other two it may, and is noted); the mailer got 250 to the final dot
# only when the MX stored the message (or, for the other two, when the
# attacker took it in clear); every refusal was a 4xx; and once the attack
# stops, the mailer's retry of each message not accepted is delivered and
# the MX holds the message exactly once.
#
# Needs root; STSPROXY names the binary. Prints "ok N - ..." lines.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

MX=mx.trunc.example
MX4=10.0.25.2
ATK4=10.0.66.2

e2e_init trunc
e2e_lab
e2e_mx mx1 "$MX4" "$MX"
MX_CRT=$LAB_CRT MX_KEY=$LAB_KEY
lab_sts_publish enforce.example e1 enforce "$MX"
lab_sts_publish testing.example t1 testing "$MX"
lab_dns_record \
	"enforce.example MX 10 $MX." \
	"testing.example MX 10 $MX." \
	"nopolicy.example MX 10 $MX." \
	"$MX A $MX4"
lab_dns dns "$E2E_DNS4"
e2e_proxy_start

CTL=$LAB_DIR/cut.control
REC=$LAB_DIR/cut.record
lab_host atk "$ATK4/24"
lab_cut_attacker atk "$ATK4" "$MX4" "$CTL" "$REC"
lab_intercept "$MX4" "$ATK4"
ALOG=$(lab_attacker_log atk)

# The MX limited to TLS 1.2, through the system-wide OpenSSL settings.
TLS12=$LAB_DIR/tls12.cnf
cat >"$TLS12" <<'EOF'
openssl_conf = lab_init
[lab_init]
ssl_conf = lab_ssl
[lab_ssl]
system_default = lab_sys
[lab_sys]
MaxProtocol = TLSv1.2
EOF

MAILDIR=$(lab_smtp_dir "$MX")
M=$LAB_DIR/msg
mkdir -p "$M"
SEQ=0
DOMS="enforce.example testing.example nopolicy.example"

# mx_restart 1.2|1.3 - a new MX process (new ticket keys, empty session
# cache: the next handshake is a full one); its mail stays.
mx_restart() {
	lab_smtp_stop "$MX"
	if [ "$1" = 1.2 ]; then
		OPENSSL_CONF=$TLS12 lab_smtp mx1 "$MX4" "$MX" "$MX_CRT" "$MX_KEY"
	else
		lab_smtp mx1 "$MX4" "$MX" "$MX_CRT" "$MX_KEY"
	fi
}

# new_message ID RCPT - $M/ID: CRLF lines, Message-ID <ID@corp.example>,
# a body of 192 KiB whose first line names ID again.
new_message() {
	"$(lab__python)" - "$M/$1" "$1" "$2" <<'EOF'
import sys
path, mid, rcpt = sys.argv[1:4]
head = ("From: sender@corp.example\r\nTo: <%s>\r\nSubject: cut %s\r\n"
        "Message-ID: <%s@corp.example>\r\n\r\nBody-Token: body-%s\r\n"
        % (rcpt, mid, mid, mid))
line = ("%s " % mid * 8)[:74] + "\r\n"
body = line * (192 * 1024 // len(line))
open(path, "wb").write(head.encode() + body.encode())
EOF
}

# send ID RCPT TRY - one attempt of the mailer; exit code in $M/ID.rcTRY,
# the transcript in $M/ID.tryTRY.
send() {
	local rc=0
	lab_smtp_send lan --server "$MX4" --from sender@corp.example --to "$2" \
		--data "$M/$1" --timeout 20 2>"$M/$1.try$3" || rc=$?
	echo "$rc" >"$M/$1.rc$3"
}

rc_of() { cat "$M/$1.rc$2"; }

# mx_index - "MESSAGE-ID TLS" for every message the MX stored.
mx_index() {
	"$(lab__python)" - "$MAILDIR/new" >"$LAB_DIR/mx.index" <<'EOF'
import glob, json, os, re, sys
for e in sorted(glob.glob(os.path.join(sys.argv[1], "*.eml"))):
    head = open(e, "rb").read(4096)
    m = re.search(rb"(?im)^Message-ID: <([^@>]*)@", head)
    tls = json.load(open(e[:-4] + ".json")).get("tls")
    print(m.group(1).decode() if m else "-", "true" if tls else "false")
EOF
}

stored() { grep -c "^$1 " "$LAB_DIR/mx.index" || true; }

# taken ID - the attacker received message ID in clear.
taken() { grep -q -F -e "<$1@" -e "body-$1" "$REC"; }

# --- checks ----------------------------------------------------------------

# cut_seen ID POINT HOW TLS FULL - the attacker's log shows the cut.
cut_seen() {
	local l
	l=$(grep -E " event=cut conn=[0-9]+ token=$1 point=$2 how=$3 " "$ALOG" || true)
	echo "cut: ${l:-<none>}"
	[ -n "$l" ] || return 1
	case $2 in hs-* | ehlo-tls | data | dot) ;; *) return 0 ;; esac
	case $l in *" tls=$4 "*) ;; *) return 1 ;; esac
	if [ "$5" = full ]; then
		case $l in *" resumed=no "*) ;; *) return 1 ;; esac
	fi
	return 0
}

# no_cleartext ID RCPT TOKEN - the record holds nothing of the message:
# no MAIL, RCPT or DATA on the connections of its attack, no recipient,
# no Message-ID, no body.
no_cleartext() {
	local bad
	bad=$(awk -v t="$3" '$1 == t && $2 == "fake" && toupper($4) ~ /^(MAIL|RCPT|DATA)/' "$REC"
		grep -i -F -e "$2" -e "<$1@" -e "body-$1" "$REC" || true)
	[ -z "$bad" ] && return 0
	echo "the attacker saw in clear:"
	printf '%s\n' "$bad" | head -n 10
	return 1
}

# acked_only_if_stored ID DOM - a 250 to the final dot only for a message
# the MX stored (or, not for enforce, that the attacker took in clear).
acked_only_if_stored() {
	local n
	[ "$(rc_of "$1" 1)" = 0 ] || return 0
	n=$(stored "$1")
	echo "250 to the dot; the MX holds $n"
	[ "$n" -ge 1 ] && return 0
	[ "$2" != enforce.example ] && taken "$1" && return 0
	grep -E '^(C|S): ' "$M/$1.try1" | tail -n 6
	return 1
}

# temp_refusals ID - every attempt not accepted ended with a 4xx reply;
# no 5xx anywhere.
temp_refusals() {
	local t rc last ok=0
	for t in 1 2; do
		[ -f "$M/$1.rc$t" ] || continue
		rc=$(rc_of "$1" "$t")
		if grep -q '^S: 5' "$M/$1.try$t"; then
			echo "attempt $t: a 5xx"
			ok=1
		fi
		[ "$rc" = 0 ] && continue
		last=$(grep '^S: ' "$M/$1.try$t" | tail -n 1)
		echo "attempt $t: exit $rc, last reply: ${last:-<none>}"
		case $last in "S: 4"*) ;; *) ok=1 ;; esac
		[ "$ok" = 0 ] || grep -E '^(C|S|smtp_send): ' "$M/$1.try$t" | tail -n 4
	done
	return "$ok"
}

# delivered_once ID POINT DOM - after the retries the MX holds the message
# once. After a cut behind the final dot the MX accepted a message whose
# acceptance never reached the mailer, and the retry stores it again: one
# or two copies (RFC 1047). A message of a domain without enforce that the
# attacker took in clear never reaches the MX.
delivered_once() {
	local n
	n=$(stored "$1")
	echo "the MX holds $n cop(ies)"
	if [ "$3" != enforce.example ] && [ "$(rc_of "$1" 1)" = 0 ] && [ "$n" = 0 ] && taken "$1"; then
		return 0
	fi
	if [ "$2" = dot ]; then
		[ "$n" -ge 1 ] && [ "$n" -le 2 ]
	else
		[ "$n" = 1 ]
	fi
}

# none_in FILE REGEX - no line of FILE matches REGEX (case-insensitive).
none_in() { ! grep -i -E -m 10 -- "$2" "$1"; }

# stored_over_tls ID - every copy of ID at the MX came over TLS.
stored_over_tls() { ! grep -q "^$1 false" "$LAB_DIR/mx.index"; }

# --- the cases ---------------------------------------------------------------

# run_case POINT HOW TLS - TLS: 1.3 (the MX as it runs), 1.3full or
# 1.2full (the MX restarted before each message).
run_case() {
	local point=$1 how=$2 tls=$3 ver full=resumable name dom id rcpt tok
	local -a ids=()
	ver=${tls%full}
	[ "$ver" = "$tls" ] || full=full
	name="$point/$how/tls$tls"
	for dom in $DOMS; do
		SEQ=$((SEQ + 1))
		id="trunc$SEQ-$point-$how-${dom%%.*}"
		rcpt="r$SEQ-${dom%%.*}@$dom"
		tok="k$SEQ"
		echo "$dom $rcpt $tok" >"$M/$id.meta"
		new_message "$id" "$rcpt"
		[ "$full" = full ] && mx_restart "$ver"
		lab_cut_control "$CTL" "$tok" "$point" "$how"
		send "$id" "$rcpt" 1
		ids+=("$id")
	done
	# The attack stops; the mailer retries what was not accepted.
	lab_cut_control "$CTL" pass
	for id in "${ids[@]}"; do
		read -r dom rcpt tok <"$M/$id.meta"
		[ "$(rc_of "$id" 1)" = 0 ] || send "$id" "$rcpt" 2
	done
	mx_index
	for id in "${ids[@]}"; do
		read -r dom rcpt tok <"$M/$id.meta"
		lab_check "$name $dom: the attacker cut at $point" \
			cut_seen "$tok" "$point" "$how" "$ver" "$full"
		if [ "$dom" = enforce.example ]; then
			lab_check "$name $dom: nothing of the message in clear" \
				no_cleartext "$id" "$rcpt" "$tok"
			lab_check "$name $dom: every copy at the MX came over TLS" \
				stored_over_tls "$id"
		elif ! no_cleartext "$id" "$rcpt" "$tok" >/dev/null; then
			echo "# note: $name $dom: sent in clear to the attacker (no enforce policy)"
		fi
		lab_check "$name $dom: 250 to the final dot only if the MX stored it" \
			acked_only_if_stored "$id" "$dom"
		lab_check "$name $dom: refused only with a 4xx" temp_refusals "$id"
		if [ "$(rc_of "$id" 1)" != 0 ]; then
			lab_check "$name $dom: the retry is accepted" test "$(rc_of "$id" 2)" = 0
		fi
		lab_check "$name $dom: the MX holds it exactly once" \
			delivered_once "$id" "$point" "$dom"
	done
}

# A clean path through the relaying attacker: every domain delivered over
# TLS (and the policies fetched, the proxy's TLS session cached).
lab_cut_control "$CTL" pass
for dom in $DOMS; do
	SEQ=$((SEQ + 1))
	id="trunc$SEQ-clean-${dom%%.*}"
	new_message "$id" "r$SEQ@$dom"
	send "$id" "r$SEQ@$dom" 1
	mx_index
	lab_check "clean $dom: accepted" test "$(rc_of "$id" 1)" = 0
	lab_check "clean $dom: stored once, over TLS" \
		test "$(grep -c "^$id true$" "$LAB_DIR/mx.index")" = 1
done

for how in fin rst; do
	for point in banner ehlo starttls hs-mid hs-last hs-last-late ehlo-tls data dot; do
		run_case "$point" "$how" 1.3
	done
	for point in hs-mid hs-last hs-last-late; do
		run_case "$point" "$how" 1.3full
	done
	for point in hs-mid hs-flight1 hs-last hs-last-late; do
		run_case "$point" "$how" 1.2full
	done
	mx_restart 1.3
done

lab_check "the attacker never saw an enforce.example address in clear" \
	none_in "$REC" '@enforce\.example'
lab_check "every cut happened where asked" none_in "$ALOG" 'event=cut-(missed|error)'
lab_check "stsproxy still runs" lab__alive stsproxy

lab_done
