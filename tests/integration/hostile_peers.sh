#!/bin/bash
# hostile_peers.sh - stsproxy between a mailer and an MX that misbehaves on
# purpose (tests/lab/hostile_mx.py), and a mailer that does (smuggled ends
# of data, overlong lines, bad UTF-8, pipelining across STARTTLS).
#
#   client 10.0.1.2 --- inet (router = gateway: stsproxy on :10025 behind
#                             scripts/iptables-gateway.sh REDIRECT)
#                         |-- dns 10.0.53.2 (unbound), https 10.0.44.2 (nginx)
#                         `-- mx1 10.0.25.2 (hostile_mx.py, one mode per case)
#
# enforce.example and xn--bcher-kva.example publish an enforce policy naming
# mx.enforce.example (10.0.25.2, certificate from the lab CA); nopolicy.example
# has the same MX and no policy (names are under "example.": libunbound
# answers "test." from a built-in local zone). Each case states what the mailer must
# see, what it must never see (a 250 the upstream did not give), and what
# the upstream must never have received (the command log of hostile_mx).
# At the end the daemon must still run with its descriptors and resident
# memory back near the start values.
#
# Needs root. STSPROXY names the binary (default build/stsproxy). Prints
# "ok - name" / "not ok - name" and exits non-zero when a check failed.
# Namespaces, rules and processes are removed on any exit.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STSPROXY=${STSPROXY:-$ROOT/build/stsproxy}
. "$ROOT/tests/lab/lab.sh"

[ -x "$STSPROXY" ] || {
	echo "# no binary $STSPROXY (set STSPROXY)" >&2
	exit 1
}

lab_init peers
PY=$(lab__python)
. "$ROOT/tests/lab/checks.sh"

# --- the lab -----------------------------------------------------------------

lab_router
lab_host client 10.0.1.2/24
lab_host dns 10.0.53.2/24
lab_host https 10.0.44.2/24
lab_host mx1 10.0.25.2/24

lab_ca
lab_cert mx mx.enforce.example >/dev/null
MX_CRT=$LAB_CRT MX_KEY=$LAB_KEY
lab_cert proxy stsproxy.lab.test >/dev/null
PX_CRT=$LAB_CRT PX_KEY=$LAB_KEY

lab_https https 10.0.44.2
lab_sts_publish enforce.example 20240101 enforce mx.enforce.example
lab_sts_publish xn--bcher-kva.example 20240101 enforce mx.enforce.example
lab_dns_record "enforce.example MX 10 mx.enforce.example." \
	"mx.enforce.example A 10.0.25.2" \
	"xn--bcher-kva.example MX 10 mx.enforce.example." \
	"nopolicy.example MX 10 mx.nopolicy.example." \
	"mx.nopolicy.example A 10.0.25.2"
lab_dns dns 10.0.53.2

# The gateway: the router namespace, with the operator's REDIRECT template.
GW_IF=h-client
lab_exec inet env LAN_IF=$GW_IF PROXY_PORT=10025 sh "$ROOT/scripts/iptables-gateway.sh" add

mkdir -p "$LAB_DIR/state"
EVENTS=$LAB_DIR/events.json
PLOG=$LAB_DIR/logs/stsproxy.log
cat >"$LAB_DIR/stsproxy.conf" <<EOF
state_dir = "$LAB_DIR/state";
listen = [ "0.0.0.0:10025" ];
interception = "redirect";
clients = [ "10.0.1.0/24" ];
workers = 1;
timeouts = { connect = 3; greeting = 3; command = 6; starttls = 3;
             data_block = 5; data_done = 3; };
log = { level = "${LOG_LEVEL:-info}"; events = "$EVENTS"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 3; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; server_cert = "$PX_CRT";
        server_key = "$PX_KEY"; client_starttls = true; };
sts = { fetch_timeout = 5; refresh = false; };
EOF

lab__start stsproxy inet "$STSPROXY" -c "$LAB_DIR/stsproxy.conf"
PROXY_PID=$(cat "$LAB_DIR/run/stsproxy.pid")
for _ in $(seq 1 100); do
	grep -q "event=start version=" "$PLOG" 2>/dev/null && break
	kill -0 "$PROXY_PID" 2>/dev/null || break
	sleep 0.1
done
grep -q "event=start version=" "$PLOG" || {
	echo "# stsproxy did not start" >&2
	exit 1
}

# mx MODE [OPTION...] - (re)start the hostile MX in MODE, a fresh log.
MXLOG=""
mx() {
	local mode=$1
	shift
	lab__stop hmx
	MXLOG=$LAB_DIR/mx-$mode-$N.log
	MXMARK=0
	: >"$MXLOG"
	lab__start hmx mx1 "$PY" "$LAB_SRC/hostile_mx.py" --mode "$mode" --listen 10.0.25.2 \
		--hostname mx.enforce.example --cert "$MX_CRT" --key "$MX_KEY" \
		--maildir "$LAB_DIR/mail" --log "$MXLOG" "$@"
	lab__await hmx mx1 10.0.25.2 25
}

# talk [OPTION...] STEP... - a scripted mailer toward 10.0.25.2:25 (intercepted).
talk() {
	lab_exec client "$PY" "$LAB_SRC/smtp_talk.py" --server 10.0.25.2 "$@" 2>&1 || true
}

# mark - remember where the event log ends; events_since prints what followed.
# The same goes for the upstream's command log (MXMARK).
EVMARK=0
MXMARK=0
mark() {
	EVMARK=$(wc -l <"$EVENTS" 2>/dev/null || echo 0)
	MXMARK=$(wc -l <"$MXLOG" 2>/dev/null || echo 0)
}
mxlog_since() { tail -n +$((MXMARK + 1)) "$MXLOG"; }
events_since() { tail -n +$((EVMARK + 1)) "$EVENTS" 2>/dev/null || true; }

# check NAME OUT MUST_REGEX [MUST_NOT_REGEX [MXLOG_MUST_NOT_REGEX]]
check() {
	local name=$1 out=$2 want=$3 never=${4:-} mxnever=${5:-} why=""
	printf '%s\n' "$out" | grep -Eq -- "$want" || why="wanted /$want/"
	if [ -n "$never" ] && printf '%s\n' "$out" | grep -Eq -- "$never"; then
		why="$why; must not see /$never/"
	fi
	if [ -n "$mxnever" ] && mxlog_since | grep -Eq -- "$mxnever"; then
		why="$why; upstream must not have received /$mxnever/"
	fi
	if [ -z "$why" ]; then
		ok "$name"
	else
		notok "$name" "$why" "$out" "--- upstream saw:" "$(mxlog_since)"
	fi
}

# check_event NAME REGEX - an event matching REGEX was logged since mark.
check_event() {
	local ev
	ev=$(events_since)
	if printf '%s\n' "$ev" | grep -Eq -- "$2"; then
		ok "$1"
	else
		notok "$1" "no event /$2/" "$ev"
	fi
}

# after_354 OUT - the replies that followed the 354 (the message's fate).
after_354() { printf '%s\n' "$1" | sed -n '/^S: 354/,$p' | tail -n +2; }

# dialogue: greeting and envelope (MAIL is held by the proxy until a
# recipient passes, so the upstream sees it only then).
EHLO=">EHLO client.lab.test"
MAILF=">MAIL FROM:<a@sender.test>"
RCPT_E=">RCPT TO:<b@enforce.example>"
RCPT_N=">RCPT TO:<b@nopolicy.example>"
MSG='=Subject: hostile\r\n\r\nhello\r\n.\r\n'
ENVELOPE_UP='CMD (MAIL|RCPT)'

fd_count() { ls "/proc/$PROXY_PID/fd" 2>/dev/null | wc -l; }
# A sanitizer build holds freed memory in quarantine and allocator caches:
# its resident size says little about leaks (LeakSanitizer reports those),
# so its bound is looser and its quarantine smaller.
RSS_SLACK_KB=16384
if ldd "$STSPROXY" 2>/dev/null | grep -q libasan; then
	RSS_SLACK_KB=65536
fi
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$PROXY_PID/status" 2>/dev/null || echo 0; }

# --- baseline ----------------------------------------------------------------

mx normal
mark
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">DATA" "$MSG" "<" ">QUIT")
check "baseline: enforce domain delivered over verified TLS" "$out" '^S: 250 2\.0\.0 queued'
grep -q ' TLS TLSv1\.[23]' "$MXLOG" && grep -q ' EOD' "$MXLOG" &&
	ok "baseline: the upstream saw TLS and one end of data" ||
	notok "baseline: the upstream saw TLS and one end of data" "$(cat "$MXLOG")"
sleep 1
FD0=$(fd_count)
RSS0=$(rss_kb)
echo "# start: fds=$FD0 rss=${RSS0}kB"

# --- STARTTLS stripped, refused, garbled ---------------------------------------

mx starttls-removed
mark
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">QUIT")
check "rfc8461_5_starttls_removed_enforce: RCPT 451 4.7.4, no envelope upstream" \
	"$out" '^S: 451 4\.7\.4' '^S: 250 2\.1\.5' "$ENVELOPE_UP"
check_event "rfc8461_5_starttls_removed_enforce: event starttls-not-supported" \
	'"result_type": ?"starttls-not-supported"'
out=$(talk "$EHLO" "$MAILF" "$RCPT_N" ">DATA" "$MSG" "<" ">QUIT")
check "starttls_removed_nopolicy: relayed in plaintext (opportunistic)" "$out" \
	'^S: 250 2\.0\.0 queued'
mark
out=$(talk "$EHLO" ">MAIL FROM:<a@sender.test> SMTPUTF8" ">RCPT TO:<b@bücher.example>" ">QUIT")
check "rfc6531_idn_recipient: U-label domain judged by its enforce policy (451 4.7.4)" \
	"$out" '^S: 451 4\.7\.4' '^S: 250 2\.1\.5' "$ENVELOPE_UP"
check_event "rfc6531_idn_recipient: the event names the A-label" \
	'"domain": ?"xn--bcher-kva\.example"'

for m in starttls-454 starttls-554; do
	mx "$m"
	mark
	out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">QUIT")
	check "rfc3207_${m//-/_}: a downgrade, RCPT 451 4.7.4, never a plaintext fallback" \
		"$out" '^S: 451 4\.7\.4' '^S: 250 2\.1\.5' "$ENVELOPE_UP"
	check_event "rfc3207_${m//-/_}: downgrade event" '"event": ?"downgrade"'
done

for code in "999 x" "22O Ready"; do
	mx starttls-badcode --badcode "$code"
	out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">QUIT")
	check "rfc3207_starttls_badcode ($code): refused (4xx), no envelope upstream" \
		"$out" '^S: 4[0-9][0-9] ' '^S: 250 2\.1\.5' "$ENVELOPE_UP"
done

mx ehlo-refused
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">QUIT")
check "rfc5321_4_1_4_ehlo_refused_enforce: HELO fallback, RCPT 451 4.7.4" "$out" \
	'^S: 451 4\.7\.4' '^S: 250 2\.1\.5' "$ENVELOPE_UP"
grep -q 'CMD HELO' "$MXLOG" && ok "rfc5321_4_1_4_ehlo_refused: the proxy fell back to HELO" ||
	notok "rfc5321_4_1_4_ehlo_refused: the proxy fell back to HELO" "$(cat "$MXLOG")"
out=$(talk "$EHLO" "$MAILF" "$RCPT_N" ">DATA" "$MSG" "<" ">QUIT")
check "rfc5321_4_1_4_ehlo_refused_nopolicy: relayed" "$out" '^S: 250 2\.0\.0 queued'

mx response-injection
mark
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">QUIT")
check "rfc3207_5_response_injection: session aborted (421/451), no envelope upstream" \
	"$out" '^S: (421|451) ' '^S: 250 (2\.1\.5|injected)' "$ENVELOPE_UP"
check_event "rfc3207_5_response_injection: injection event" '"event": ?"injection"'

# --- resets, silence, floods ---------------------------------------------------

mx rst-banner
out=$(talk)
check "rst_banner: 421" "$out" '^S: 421 ' '^S: 220'

mx rst-ehlo
out=$(talk "$EHLO" "$MAILF")
check "rst_ehlo: 421" "$out" '^S: 421 ' '^S: 250'

mx rst-mail
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">DATA")
check "rst_mail: 421 4.4.2 at the recipient" "$out" '^S: 421 4\.4\.2' '^S: 250 2\.1\.5'

mx rst-rcpt
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">DATA")
check "rst_rcpt: 421 4.4.2" "$out" '^S: 421 4\.4\.2' '^S: 250 2\.1\.5'

mx rst-data
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">DATA")
check "rst_data: 421 4.4.2 to DATA" "$out" '^S: 421 4\.4\.2' '^S: 354'

mx rst-mid-data --rst-after 65536
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">DATA" "%1000000" '=\r\n.\r\n' "<")
a=$(after_354 "$out")
check "rfc5321_rst_mid_data: 421 4.4.2, never 250" "$a" '^S: 421 4\.4\.2|^RESET|^CLOSED|^ERR' \
	'^S: 2[0-9][0-9]'
printf '%s\n' "$a" | grep -q '^S: 421 4\.4\.2' &&
	ok "rfc5321_rst_mid_data: the mailer is told 421 4.4.2 (not only a dropped connection)" ||
	notok "rfc5321_rst_mid_data: the mailer is told 421 4.4.2 (not only a dropped connection)" "$out"

mx rst-after-dot
out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">DATA" "$MSG" "<")
check "rfc5321_rst_after_dot: 421 4.4.2, never 250" "$(after_354 "$out")" '^S: 421 4\.4\.2' \
	'^S: 2[0-9][0-9]'

mx silent
out=$(talk --timeout 15)
check "rfc5321_4_5_3_2_silent_banner: greeting timeout, 421" "$out" '^S: 421 ' '^S: 220'

mx silent-after-dot
out=$(talk --timeout 15 "$EHLO" "$MAILF" "$RCPT_E" ">DATA" "$MSG" "<")
check "rfc5321_4_5_3_2_silent_after_dot: data_done timeout, 421, never 250" \
	"$(after_354 "$out")" '^S: 421 ' '^S: 2[0-9][0-9]'

mx flood-no-eol
out=$(talk --timeout 15 "$EHLO" "$MAILF")
check "flood_no_eol: 10 MB without a line end, 421" "$out" '^S: 421 ' '^S: 250'
RSS1=$(rss_kb)
[ "$RSS1" -lt $((RSS0 + RSS_SLACK_KB)) ] && ok "flood_no_eol: memory bounded (rss ${RSS1}kB)" ||
	notok "flood_no_eol: memory bounded" "rss ${RSS1}kB, start ${RSS0}kB"

mx huge-reply
out=$(talk "$EHLO" "$MAILF")
check "rfc5321_4_5_3_1_huge_reply: 5000-line EHLO reply, 421" "$out" '^S: 421 ' '^S: 250-'

# --- a hostile mailer ------------------------------------------------------------

mx normal
i=0
for ending in '\n.\n' '\r.\r' '\r.\n' '\n.\r' '\n.\r\n' '\r\n.\n' '\r.\r\n' '\r\n.\r' \
	'\x00'; do
	i=$((i + 1))
	before=$(grep -c ' EOD' "$MXLOG" || true)
	out=$(talk "$EHLO" "$MAILF" "$RCPT_E" ">DATA" \
		"=Subject: smuggle\\r\\n\\r\\nhello${ending}MAIL FROM:<evil@sender.test>\\r\\nRCPT TO:<victim@enforce.example>\\r\\nDATA\\r\\n\\r\\nsmuggled\\r\\n.\\r\\n" \
		"<")
	sleep 0.2
	after=$(grep -c ' EOD' "$MXLOG" || true)
	name="smuggling_$i ($ending): refused 5xx and closed, no end of data upstream"
	if ! printf '%s\n' "$(after_354 "$out")" | grep -Eq '^S: 5[0-9][0-9] '; then
		notok "$name" "no 5xx after 354" "$out"
	elif ! printf '%s\n' "$out" | grep -q '^CLOSED'; then
		notok "$name" "connection not closed" "$out"
	elif [ "$after" != "$before" ] || grep -Eq 'SMUGGLE|evil@|victim@' "$MXLOG"; then
		notok "$name" "the upstream received an end of data or the smuggled commands" \
			"$(cat "$MXLOG")"
	else
		ok "$name"
	fi
done

long=$(head -c 20000 /dev/zero | tr '\0' A)
out=$(talk "$EHLO" "=NOOP $long\\r\\n" "<")
check "rfc5321_4_5_3_1_4_oversized_command: 500 and close" "$out" '^S: 500 ' '^S: 250 2\.0\.0 ok'
printf '%s\n' "$out" | grep -q '^CLOSED' && ok "rfc5321_4_5_3_1_4_oversized_command: closed" ||
	notok "rfc5321_4_5_3_1_4_oversized_command: closed" "$out"

out=$(talk "$EHLO" '=MAIL FROM:<\xff\xfe@sender.test>\r\n' "<" "$MAILF" \
	'=RCPT TO:<b@\xc3\x28.enforce.example>\r\n' "<" ">QUIT")
check "rfc6531_invalid_utf8_envelope: refused 5xx, never relayed" "$out" '^S: 5[0-9][0-9] ' \
	'' 'xff|xc3'
n5=$(printf '%s\n' "$out" | grep -Ec '^S: 5[0-9][0-9] ' || true)
[ "$n5" -ge 2 ] && ok "rfc6531_invalid_utf8_envelope: both MAIL and RCPT refused" ||
	notok "rfc6531_invalid_utf8_envelope: both MAIL and RCPT refused" "$out"

mark
out=$(talk "$EHLO" '=STARTTLS\r\nMAIL FROM:<x@sender.test>\r\n' "<")
check "rfc3207_5_client_starttls_injection: refused and closed" "$out" '^S: 5[0-9][0-9] ' \
	'^S: 220 2\.0\.0' 'CMD MAIL FROM:<x@'
printf '%s\n' "$out" | grep -q '^CLOSED' && ok "rfc3207_5_client_starttls_injection: closed" ||
	notok "rfc3207_5_client_starttls_injection: closed" "$out"

# --- the daemon afterwards ---------------------------------------------------------

sleep 6 # closing sessions linger up to 5 s for their last reply
kill -0 "$PROXY_PID" 2>/dev/null && ok "daemon: still running after every case" ||
	notok "daemon: still running after every case" "$(tail -n 30 "$PLOG")"
FD1=$(fd_count)
RSS1=$(rss_kb)
echo "# end:   fds=$FD1 rss=${RSS1}kB (start fds=$FD0 rss=${RSS0}kB)"
[ "$FD1" -le $((FD0 + 2)) ] && ok "daemon: descriptors back to the start count ($FD1 vs $FD0)" ||
	notok "daemon: descriptors back to the start count" "$FD1 vs $FD0" \
		"$(ls -l "/proc/$PROXY_PID/fd")"
[ "$RSS1" -le $((RSS0 + RSS_SLACK_KB)) ] &&
	ok "daemon: resident memory within $((RSS_SLACK_KB / 1024)) MiB of the start (${RSS1}kB vs ${RSS0}kB)" ||
	notok "daemon: resident memory within $((RSS_SLACK_KB / 1024)) MiB of the start" "${RSS1}kB vs ${RSS0}kB"
if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$PLOG"; then
	notok "daemon: no sanitizer report" "$(grep -E -A20 'Sanitizer|runtime error' "$PLOG")"
fi

lab_exec inet env LAN_IF=$GW_IF sh "$ROOT/scripts/iptables-gateway.sh" del
echo "1..$N"
[ "$FAILED" -eq 0 ] || {
	echo "# $FAILED of $N checks failed"
	exit 1
}
