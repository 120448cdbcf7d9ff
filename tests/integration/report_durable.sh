#!/bin/bash
# report_durable.sh - the daily TLS-RPT counts (RFC 8460 section 4) survive
# a stop and a reload of stsproxy mid-day, and "stsproxy ctl report" shows
# exactly what the lab produced:
#
#   good.example      enforce, valid certificate         -> success (sts)
#   strip.example     enforce, an attacker strips STARTTLS
#                                                         -> failure starttls-not-supported
#   badcert.example   enforce, certificate for another name
#                                                         -> failure certificate-host-mismatch
#   nopolicy.example  no _mta-sts record                  -> success (no-policy-found)
#
# Each message is one SMTP session from the LAN host through the gateway
# (no mailer retries to blur the counts). report_store.flush_interval is an
# hour, so only a stop, a reload or "ctl report" writes the counts to
# report.db: a restart right after sending shows that the stop wrote them.
# Then a damaged report.db: the daemon logs it, runs, and counts in memory.
# Needs root; STSPROXY names the binary. Prints "ok N - ..." lines.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

e2e_init e2erpt
e2e_lab

e2e_mx mx1 10.0.25.2 mx1.good.example
e2e_mx mx2 10.0.26.2 mx2.strip.example
E2E_CERT_NAME=mx.elsewhere.example e2e_mx mx3 10.0.27.2 mx3.badcert.example
e2e_mx mx4 10.0.28.2 mx4.nopolicy.example
lab_sts_publish good.example g1 enforce mx1.good.example
lab_sts_publish strip.example s1 enforce mx2.strip.example
lab_sts_publish badcert.example b1 enforce mx3.badcert.example
lab_dns_record \
	"good.example MX 10 mx1.good.example." "mx1.good.example A 10.0.25.2" \
	"strip.example MX 10 mx2.strip.example." "mx2.strip.example A 10.0.26.2" \
	"badcert.example MX 10 mx3.badcert.example." "mx3.badcert.example A 10.0.27.2" \
	"nopolicy.example MX 10 mx4.nopolicy.example." "mx4.nopolicy.example A 10.0.28.2"
lab_dns dns "$E2E_DNS4"

CTL_SOCK=$LAB_DIR/proxy/state/control.sock
DB=$LAB_DIR/proxy/state/report.db
e2e_proxy_start "control = { socket = \"$CTL_SOCK\"; };
report_store = { flush_interval = 3600; keep_days = 7; gateway_id = \"gw-lab\"; };"
e2e_attacker atk1 10.0.66.2 mangle 10.0.26.2

M=$LAB_DIR/msg
mkdir -p "$M"
# CRLF line ends: smtp_send.py sends the bytes as they are.
printf 'From: sender@corp.example\r\nSubject: a TLS-RPT count\r\n\r\nHello.\r\n' >"$M/msg"

# send DOMAIN N - N messages to DOMAIN's MX, one session each, from the LAN.
send() {
	local dom=$1 n=$2 mx
	case $dom in
	good.example) mx=10.0.25.2 ;;
	strip.example) mx=10.0.26.2 ;;
	badcert.example) mx=10.0.27.2 ;;
	nopolicy.example) mx=10.0.28.2 ;;
	esac
	for _ in $(seq 1 "$n"); do
		lab_exec lan "$(lab__python)" "$E2E_ROOT/tests/lab/smtp_send.py" --server "$mx" \
			--from sender@corp.example --to "user@$dom" --data "$M/msg" \
			2>>"$LAB_DIR/logs/send.log" || true
	done
}

ctl() { "$STSPROXY" ctl -s "$CTL_SOCK" "$@"; }

# field DOMAIN TYPE KEY - KEY's value on DOMAIN's line of "ctl report".
field() {
	ctl report | awk -v d="$1" -v t="policy_type=$2" -v k="$3" '
		$1 == d && $2 == t { for (i = 3; i <= NF; i++) if (index($i, k "=") == 1)
			print substr($i, length(k) + 2) }'
}

# counts_are S_GOOD F_STRIP F_BAD S_NOPOL - what ctl report says, all at once.
counts_are() {
	local got want
	got="$(field good.example sts success) $(field good.example sts failure)"
	got="$got $(field strip.example sts success) $(field strip.example sts failure)"
	got="$got $(field badcert.example sts success) $(field badcert.example sts failure)"
	got="$got $(field nopolicy.example no-policy-found success)"
	got="$got $(field nopolicy.example no-policy-found failure)"
	want="$1 0 0 $2 0 $3 $4 0"
	echo "ctl report: $got; expected: $want"
	ctl report
	[ "$got" = "$want" ]
}

# db_sum DOMAIN TYPE COLUMN - the sum over gateways in report.db, read directly.
db_sum() {
	"$(lab__python)" - "$DB" "$1" "$2" "$3" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
day = int(__import__("time").time()) // 86400 * 86400
row = db.execute("SELECT SUM(%s) FROM results WHERE day = ? AND domain = ? AND type = ?"
                 % sys.argv[4], (day, sys.argv[2], sys.argv[3])).fetchone()
print(row[0] or 0)
EOF
}

proxy_pid() { cat "$LAB_DIR/run/stsproxy.pid"; }

restart() {
	lab__start stsproxy gw "$STSPROXY" -c "$LAB_DIR/proxy/stsproxy.conf"
	lab__await stsproxy gw "$E2E_GW_LAN4" "$E2E_PROXY_PORT"
}

# --- a mix of sessions ---------------------------------------------------------
send good.example 3
send strip.example 2
send badcert.example 2
send nopolicy.example 2
lab_check "rfc8460_4_4_counts: ctl report equals what was sent" counts_are 3 2 2 2
lab_check "rfc8460_4_3_result_types: stripped is starttls-not-supported" \
	bash -c "$(declare -f ctl); STSPROXY='$STSPROXY' CTL_SOCK='$CTL_SOCK'
		ctl report | grep -E '^  starttls-not-supported mx=.* ip=10\.0\.26\.2 sending_ip=$E2E_GW4 count=2$'"
lab_check "rfc8460_4_3_result_types: bad certificate is certificate-host-mismatch" \
	bash -c "$(declare -f ctl); STSPROXY='$STSPROXY' CTL_SOCK='$CTL_SOCK'
		ctl report | grep -E '^  certificate-host-mismatch mx=.* ip=10\.0\.27\.2 sending_ip=$E2E_GW4 count=2$'"
lab_check "rfc8460_4_4_policy_string: report.db holds the sts policy lines" \
	"$(lab__python)" -c "
import sqlite3, sys
db = sqlite3.connect('file:$DB?mode=ro', uri=True)
p, mx = db.execute(\"SELECT policy, mx FROM results WHERE domain = 'good.example'\").fetchone()
print(p, mx)
sys.exit(0 if p.split('\n') == ['version: STSv1', 'mode: enforce', 'mx: mx1.good.example',
    'max_age: 86400'] and mx == 'mx1.good.example' else 1)"
lab_check "rfc8460_4_4_gateway: rows carry the configured gateway id" \
	test "$("$(lab__python)" -c "import sqlite3; print(sqlite3.connect('file:$DB?mode=ro', uri=True).execute('SELECT DISTINCT gateway FROM results').fetchall())")" = "[('gw-lab',)]"

# --- SIGTERM right after more sessions, then a restart: nothing lost -------------
send good.example 1
send strip.example 1
send badcert.example 1
send nopolicy.example 1
e2e_proxy_stop
lab_check "stop: stsproxy logged its last flush" grep -q 'event=stopped' "$E2E_PROXY_LOG"
lab_check "stop: report.db holds the sessions sent just before the stop" \
	test "$(db_sum good.example sts success) $(db_sum strip.example sts failure)" = "4 3"
restart
lab_check "restart: ctl report shows the day's totals, not only memory" counts_are 4 3 3 3
send good.example 2
send nopolicy.example 1
lab_check "restart: later sessions add to them" counts_are 6 3 3 4

# --- a reload writes the counts and keeps them -----------------------------------
send good.example 1
send badcert.example 1
kill -HUP "$(proxy_pid)"
for _ in $(seq 1 50); do
	grep -q 'event=reload status=ok' "$E2E_PROXY_LOG" && break
	sleep 0.1
done
lab_check "reload: accepted" grep -q 'event=reload status=ok' "$E2E_PROXY_LOG"
lab_check "reload: report.db holds the sessions sent before it" \
	test "$(db_sum good.example sts success) $(db_sum badcert.example sts failure)" = "7 4"
lab_check "reload: ctl report unchanged by it" counts_are 7 3 4 4
send strip.example 1
lab_check "reload: later sessions still counted" counts_are 7 4 4 4

# --- a damaged report.db: said clearly, the daemon runs and counts in memory -----
e2e_proxy_stop
mv "$DB" "$DB.good"
rm -f "$DB-wal" "$DB-shm"
head -c 8192 /dev/urandom >"$DB"
restart
lab_check "damaged: the error names the file" \
	grep -q "event=report-store error=\"report store $DB: .*counting=memory" "$E2E_PROXY_LOG"
send good.example 1
send strip.example 1
lab_check "damaged: the daemon still relays (delivered)" \
	test "$(lab_smtp_count mx1.good.example)" = 8
lab_check "damaged: ctl report shows the counts in memory" \
	test "$(field good.example sts success) $(field strip.example sts failure)" = "1 1"
lab_check "damaged: the file was left as it was" test "$(stat -c %s "$DB")" = 8192

lab_done
