#!/bin/bash
# demo.sh BUILD - show a newcomer what stsproxy does, on a real network.
#
# Builds the end-to-end lab of tests/e2e (network namespaces: a legacy
# Postfix on a LAN, stsproxy on the gateway, DNS, an MTA-STS policy host
# and a receiving MX on the "internet"), sends mail from Postfix to a
# domain that publishes an enforce policy twice - on a clean path, then
# through an attacker that strips STARTTLS - and tells what happened.
# Everything is removed at the end. Needs root; about a minute.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -eu

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STSPROXY=$(cd "$BUILD" 2>/dev/null && pwd)/stsproxy
export STSPROXY
[ -x "$STSPROXY" ] || {
	echo "demo: no $BUILD/stsproxy; run make first" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || {
	echo "demo: needs root (network namespaces): sudo make demo" >&2
	exit 1
}

if [ -t 1 ]; then
	B=$(printf '\033[1m') G=$(printf '\033[32m') R=$(printf '\033[31m') N=$(printf '\033[0m')
else
	B='' G='' R='' N=''
fi
say() { printf '\n%s%s%s\n' "$B" "$*" "$N"; }
ok() { printf '  %s✔%s %s\n' "$G" "$N" "$*"; }
no() { printf '  %s✘%s %s\n' "$R" "$N" "$*"; }
indent() { sed 's/^/      /'; }

# shellcheck source=../tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"

say "stsproxy demo: MTA-STS enforcement for a mail server that knows nothing about it"
cat <<'EOF'
  Setting up a small private internet in network namespaces:

    Postfix (legacy mailer) ── gateway: stsproxy ── internet ─┬─ DNS (unbound)
    mail.corp.example           iptables REDIRECT             ├─ https://mta-sts.bank.example
    10.0.1.2                    port 25 -> 10025              └─ mx.bank.example (receiving MX)

  bank.example publishes an MTA-STS policy (RFC 8461): "mode: enforce,
  mx: mx.bank.example" - mail to it must travel over TLS to a server
  with a valid certificate for mx.bank.example.
EOF

e2e_init demo
e2e_lab
e2e_mx mx1 10.0.25.2 mx.bank.example
lab_sts_publish bank.example 2024demo enforce mx.bank.example
lab_dns_record "bank.example MX 10 mx.bank.example." "mx.bank.example A 10.0.25.2"
e2e_start
ok "lab is up: Postfix $(postconf -d mail_version 2>/dev/null | cut -d' ' -f3), stsproxy $("$STSPROXY" --version | cut -d' ' -f2)"

M=$LAB_DIR/msg
mkdir -p "$M"

# --- 1: clean path ------------------------------------------------------------
say "1. Postfix sends a message to alice@bank.example on a clean network path"
e2e_message "$M/one" "Quarterly report"
e2e_sendmail accounting@corp.example alice@bank.example <"$M/one"
e2e_wait_status alice@bank.example sent
e2e_sink_wait mx.bank.example alice@bank.example 1
m=$(e2e_sink_msg mx.bank.example alice@bank.example)
ok "Postfix: $(e2e_postfix_lines alice@bank.example | grep -o 'status=sent.*' | tail -n 1)"
ok "mx.bank.example stored it, received over $(lab_json "$m.json" tls_version)" \
	"($(lab_json "$m.json" tls_cipher))"
echo "  stsproxy fetched the policy, upgraded the connection to STARTTLS and"
echo "  checked the MX certificate against the policy before relaying."

# --- 2: an attacker strips STARTTLS --------------------------------------------
say "2. An attacker on the path strips STARTTLS from the MX's reply"
e2e_attacker atk1 10.0.66.2 mangle 10.0.25.2
echo "  (the attacker rewrites \"250-STARTTLS\" to \"250-XXXXXXXA\": without protection,"
echo "   Postfix would fall back to sending the mail in cleartext, readable on the wire)"
e2e_message "$M/two" "Payroll details"
e2e_sendmail accounting@corp.example bob@bank.example <"$M/two"
e2e_wait_status bob@bank.example deferred
grep -q 'event=mangle' "$(lab_attacker_log atk1)" && ok "the attacker did strip STARTTLS"
if [ "$(e2e_sink_count mx.bank.example bob@bank.example)" = 0 ]; then
	ok "mx.bank.example received nothing: no cleartext copy left the gateway"
else
	no "mx.bank.example received the message"
fi
ok "Postfix keeps the message queued and will retry; its queue says:"
e2e_queue_reason bob@bank.example | fold -s -w 72 | indent
ok "stsproxy's event log (one JSON line per event, pretty-printed):"
"$(lab__python)" - "$E2E_EVENTS" <<'EOF' | indent
import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("event") == "policy-failure" and ev.get("domain") == "bank.example":
        keep = ("ts", "event", "domain", "mode", "policy_id", "mx", "dest",
                "result_type", "reason", "seen", "action")
        print(json.dumps({k: ev[k] for k in keep if k in ev}, indent=2))
        break
EOF

# --- 3: the attack stops ---------------------------------------------------------
say "3. The attack stops; Postfix retries on its own"
e2e_attacker_remove atk1
e2e_wait_status bob@bank.example sent 60
ok "Postfix: $(e2e_postfix_lines bob@bank.example | grep -o 'status=sent.*' | tail -n 1)"
m=$(e2e_sink_msg mx.bank.example bob@bank.example)
ok "mx.bank.example now holds $(e2e_sink_count mx.bank.example bob@bank.example) copy of it," \
	"received over $(lab_json "$m.json" tls_version)"

say "Summary"
echo "  delivered: alice@bank.example (clean path), bob@bank.example (after the attack)"
echo "  refused:   bob@bank.example while STARTTLS was stripped - 451 4.7.4, a"
echo "             temporary error, so no mail is lost, none leaks in cleartext"
echo "  The same lab runs the end-to-end tests: tests/integration/e2e_*.sh"
lab_done >/dev/null
echo
echo "Removing the lab."
