#!/bin/bash
# deploy.sh DEB - the Debian package deployed on a booted Debian 12, and
# real mail through it.
#
#  1. lintian: no errors.
#  2. A fresh Debian 12 root (mmdebstrap, variant important), booted with
#     systemd-nspawn on this machine's network: `apt-get install ./DEB`
#     under a running systemd (Depends resolve from a minimal system; the
#     postinst creates the user, its directories, and gives the
#     configuration to the service's group; nothing is enabled or started
#     before it is configured). Then scripts/deps.sh lab on that booted
#     systemd: the services it newly installs stay stopped and disabled.
#  3. The lab of tests/e2e (Postfix on a LAN, DNS, an MTA-STS policy host,
#     a receiving MX) around a gateway namespace, and the same root booted
#     again inside that namespace as the gateway. The administrator's steps:
#     configuration, /etc/default/stsproxy-rules, `systemctl enable --now
#     stsproxy-rules stsproxy`. Checked: READY through sd_notify, the
#     hardened unit reaching NFQUEUE, state_dir, the event file, the control
#     socket and the metrics endpoint; a message delivered over TLS; with
#     STARTTLS stripped by an on-path attacker, 451 4.7.4 and nothing
#     delivered; the journal's event fields; reload; a draining stop.
#  4. `apt-get purge` leaves no file of the package behind.
#
#   bash tests/deploy/deploy.sh build/stsproxy_0.1.0_amd64.deb   (root; make deploy-test)
#
# Everything is removed on exit, on failure too: the container is shut
# down, its root unmounted and deleted, the lab's namespaces removed.
set -eu
cd "$(dirname "$0")/../.."
DEB=$(realpath "${1:?usage: deploy.sh DEB}")
[ -f "$DEB" ] || {
	echo "deploy: no package $DEB (make deb)" >&2
	exit 1
}
# shellcheck source=lib.sh
. tests/deploy/lib.sh
root_new deploy
R=$ROOT_DIR/root
PKG=$(dpkg-deb -f "$DEB" Package)

# --- 1. the package ---------------------------------------------------------
root_step "lintian $(basename "$DEB")"
lintian_ok() {
	local out rc=0
	out=$(lintian --fail-on error --tag-display-limit 0 "$DEB" 2>&1) || rc=$?
	printf '%s\n' "$out"
	[ "$rc" = 0 ] && ! printf '%s\n' "$out" | grep -q '^E: '
}
root_check "lintian: no errors" lintian_ok
lintian "$DEB" 2>&1 | sed 's/^/# lintian: /' || true

# --- 2. install on a booted, minimal Debian 12 --------------------------------
root_step "a fresh Debian 12 root (mmdebstrap, variant important)"
root_make "$R"
install -m 0644 "$DEB" "$R/root/$PKG.deb"
install -m 0755 scripts/deps.sh "$R/root/deps.sh"

root_step "boot it (systemd-nspawn, this machine's network: the mirror)"
root_boot "$R"
root_exec systemctl --version | head -n 1

root_step "apt-get install ./$PKG.deb under a running systemd"
root_wait root_exec sh -c "apt-get update -q >/dev/null &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/$PKG.deb" >"$ROOT_DIR/apt.log" 2>&1 || true
grep -Ev '^(Get|Selecting|Preparing|Unpacking|Reading|Building|Fetched|\(Reading)' "$ROOT_DIR/apt.log" || true
rm -f "$R/root/$PKG.deb"

root_check "package installed" root_exec dpkg-query -W -f='${db:Status-Status}\n' "$PKG"
root_check "user and group stsproxy exist" root_exec id stsproxy
conf_mode() {
	local s
	s=$(root_exec stat -c '%U:%G %a' /etc/stsproxy/stsproxy.conf)
	echo "$s"
	[ "$s" = "root:stsproxy 640" ]
}
root_check "configuration is a conffile, root:stsproxy 0640" conf_mode
root_check "the configuration is listed as a conffile" \
	root_exec sh -c "dpkg-query -W -f='\${Conffiles}\n' $PKG | grep -q ' /etc/stsproxy/stsproxy.conf '"
root_check "the stsproxy user reads and validates it" \
	root_exec runuser -u stsproxy -- /usr/sbin/stsproxy -c /etc/stsproxy/stsproxy.conf --check-config
dir_mode() {
	local s
	s=$(root_exec stat -c '%U:%G %a' "$1")
	echo "$1: $s"
	[ "$s" = "stsproxy:stsproxy 750" ]
}
for d in /var/lib/stsproxy /var/log/stsproxy /run/stsproxy; do
	root_check "$d made by tmpfiles for the service user" dir_mode "$d"
done
unit_state() { # UNIT ENABLED ACTIVE
	local e a
	e=$(root_exec systemctl is-enabled "$1" 2>&1)
	a=$(root_exec systemctl is-active "$1" 2>&1)
	echo "$1: $e, $a"
	[ "$e" = "$2" ] && [ "$a" = "$3" ]
}
root_check "stsproxy.service installed, waiting to be configured" unit_state stsproxy.service disabled inactive
root_check "stsproxy-rules.service installed, waiting to be configured" unit_state stsproxy-rules.service disabled inactive
root_check "systemd-analyze verify, units as installed" \
	root_exec sh -c 'out=$(systemd-analyze verify --man=no stsproxy.service stsproxy-rules.service 2>&1); echo "$out"; [ -z "$out" ]'
rules_refused() {
	root_exec systemctl start stsproxy-rules.service && return 1
	root_exec journalctl -b -u stsproxy-rules.service --no-pager -o cat | grep 'LAN_IF is not set'
}
root_check "stsproxy-rules refuses to start before LAN_IF is set" rules_refused
root_exec systemctl reset-failed stsproxy-rules.service 2>/dev/null || true

root_step "scripts/deps.sh lab under a running systemd"
root_wait root_exec sh /root/deps.sh lab >"$ROOT_DIR/deps.log" 2>&1 || true
grep '^deps:' "$ROOT_DIR/deps.log" || tail -n 20 "$ROOT_DIR/deps.log"
for u in unbound nsd nginx postfix; do
	root_check "deps.sh: $u installed, stopped and disabled at boot" unit_state "$u.service" disabled inactive
done
no_daemons() {
	local out
	out=$(root_exec ps -eo comm= | grep -Ex 'nginx|unbound|nsd|master' || true)
	echo "$out"
	[ -z "$out" ]
}
root_check "deps.sh: none of their daemons runs" no_daemons
rm -f "$R/root/deps.sh"

root_step "shut down"
root_halt

# --- 3. the gateway of the lab --------------------------------------------------
root_step "the lab: Postfix on a LAN, DNS, a policy host, an MX behind the gateway"
# shellcheck source=../e2e/lib.sh
. tests/e2e/lib.sh
e2e_init deploy
# The container goes first (it lives in the gateway's namespace), then
# the lab, then the root.
deploy_on_exit() {
	local rc=$?
	set +e
	[ "${BASHPID}" = "${LAB_OWNER:-}" ] || return "$rc"
	root_teardown
	(exit "$rc")
	e2e__on_exit
}
trap deploy_on_exit EXIT
e2e_lab
e2e_mx mx1 10.0.25.2 mx.bank.example
lab_sts_publish bank.example 2026deploy enforce mx.bank.example
lab_dns_record "bank.example MX 10 mx.bank.example." "mx.bank.example A 10.0.25.2"
lab_dns dns "$E2E_DNS4"
e2e_postfix_start

root_step "configure the package like an administrator"
install -m 0644 "$LAB_DIR/ca/ca.crt" "$R/etc/stsproxy/lab-ca.crt"
# Written in place: the file keeps its owner and mode (root:stsproxy 0640).
cat >"$R/etc/stsproxy/stsproxy.conf" <<EOF
# The gateway of the deployment test.
state_dir = "/var/lib/stsproxy";
mode = "enforce";
listen = [ "0.0.0.0:$E2E_PROXY_PORT", "[::]:$E2E_PROXY_PORT" ];
interception = "redirect";
clients = [ "10.0.1.0/24", "fd00:0:1::/64" ];
timeouts = { connect = 10; greeting = 30; command = 30; starttls = 20; drain = 10; };
log = { level = "info"; events = "/var/log/stsproxy/events.json"; };
dns = { forwarders = [ "$E2E_DNS4" ]; timeout = 5; };
tls = { ca_file = "/etc/stsproxy/lab-ca.crt"; };
sts = { fetch_timeout = 10; };
nfq = { queues = [ 0 ]; action = "log"; fail_open = true; };
metrics = { listen = "127.0.0.1:9125"; };
control = { socket = "/run/stsproxy/control.sock"; };
EOF
sed -i -e 's/^RULES=.*/RULES=nftables-gateway/' \
	-e "s/^#\\?LAN_IF=.*/LAN_IF=$E2E_GW_LAN_IF/" "$R/etc/default/stsproxy-rules"
grep -E '^(RULES|LAN_IF|PROXY_PORT)=' "$R/etc/default/stsproxy-rules"

root_step "boot the root as the gateway (--network-namespace-path)"
# The container is the gateway and owns its network namespace: like with
# --private-network, it keeps CAP_NET_ADMIN (nftables, NFQUEUE), which
# nspawn drops when it is handed a namespace by path.
root_boot "$R" --network-namespace-path="/run/netns/$(lab_nsname gw)" --capability=CAP_NET_ADMIN
root_check "systemctl enable --now stsproxy-rules stsproxy" \
	root_exec systemctl enable --now stsproxy-rules.service stsproxy.service
show() { root_exec systemctl show -p "$2" --value "$1"; }
journal_has() {
	root_exec journalctl -b -u stsproxy.service -o cat --no-pager | grep -E -- "$1"
}
ready() {
	local a s
	a=$(show stsproxy.service ActiveState)
	s=$(show stsproxy.service StatusText)
	echo "ActiveState=$a StatusText=$s"
	[ "$a" = active ] && [ -n "$s" ]
}
root_check "READY=1 and a STATUS line (Type=notify)" ready
root_check "stsproxy-rules active" unit_state stsproxy-rules.service enabled active
redirect_rule() { lab_exec gw nft list ruleset | grep -E "redirect to :$E2E_PROXY_PORT"; }
root_check "the redirect rule is in the gateway's nftables" redirect_rule
nfq_bound() {
	local t
	t=$(lab_exec gw cat /proc/net/netfilter/nfnetlink_queue)
	echo "$t"
	printf '%s\n' "$t" | awk '$1 == 0 { f = 1 } END { exit !f }'
}
root_check "NFQUEUE queue 0 bound by the hardened unit" nfq_bound
root_check "stsproxy ctl status (control socket)" root_exec stsproxy ctl status
metrics() {
	local m
	m=$(lab_exec gw curl -fsS --max-time 5 http://127.0.0.1:9125/metrics) || return 1
	printf '%s\n' "$m" | grep -m 3 '^stsproxy_'
}
root_check "metrics endpoint answers (curl)" metrics

root_step "mail: a clean path"
M=$LAB_DIR/msg
mkdir -p "$M"
e2e_message "$M/one" "Deployed"
e2e_sendmail accounting@corp.example alice@bank.example <"$M/one"
root_check "Postfix: status=sent" e2e_wait_status alice@bank.example sent
root_check "the MX stored it" e2e_sink_wait mx.bank.example alice@bank.example 1
over_tls() {
	local m
	m=$(e2e_sink_msg mx.bank.example alice@bank.example) || return 1
	echo "tls=$(lab_json "$m.json" tls) $(lab_json "$m.json" tls_version)"
	[ "$(lab_json "$m.json" tls)" = True ] || [ "$(lab_json "$m.json" tls)" = true ]
}
root_check "delivered over TLS" over_tls
relayed() { journal_has 'session=[^ ]+ start client=10\.0\.1\.2 dest=10\.0\.25\.2:25'; }
root_check "through the proxy (a session in its journal)" relayed
cached() {
	root_exec sh -c 'ls -l /var/lib/stsproxy/ && test -s /var/lib/stsproxy/policy-cache.sqlite &&
		[ "$(stat -c %U /var/lib/stsproxy/policy-cache.sqlite)" = stsproxy ]'
}
root_check "state_dir holds the policy cache, owned by stsproxy" cached

root_step "mail: STARTTLS stripped on the path"
e2e_attacker atk1 10.0.66.2 mangle 10.0.25.2
e2e_message "$M/two" "Deployed, attacked"
e2e_sendmail accounting@corp.example bob@bank.example <"$M/two"
root_check "Postfix: status=deferred" e2e_wait_status bob@bank.example deferred
root_check "queued with 451 4.7.4" e2e_queue_has bob@bank.example '451 4\.7\.4'
root_check "the attacker did strip STARTTLS" grep -q 'event=mangle' "$(lab_attacker_log atk1)"
root_check "the MX received nothing for bob" e2e_sink_is mx.bank.example bob@bank.example 0
E2E_EVENTS=$R/var/log/stsproxy/events.json
root_check "event file: a policy-failure for bank.example, blocked" \
	e2e_event bank.example event=policy-failure action=blocked
journal_fields() {
	root_exec journalctl -b -u stsproxy.service -o json --no-pager | "$(lab__python)" -c '
import json, sys
want = ("SESSION_ID", "DOMAIN", "RESULT_TYPE", "EVENT")
for line in sys.stdin:
    e = json.loads(line)
    if e.get("DOMAIN") == "bank.example" and all(k in e for k in want):
        print({k: e[k] for k in want})
        sys.exit(0)
print("no journal entry for bank.example with", ", ".join(want))
sys.exit(1)'
}
root_check "journal: SESSION_ID, DOMAIN, RESULT_TYPE, EVENT fields" journal_fields

root_step "reload and stop"
reloaded() {
	root_exec systemctl reload stsproxy.service || return 1
	for _ in $(seq 1 50); do
		journal_has 'event=reload status=ok' && break
		sleep 0.2
	done
	journal_has 'event=reload status=ok' && [ "$(show stsproxy.service ActiveState)" = active ]
}
root_check "systemctl reload: event=reload status=ok, still active" reloaded
# A session in the middle of its dialogue when the stop comes: a message
# under way may finish (timeouts.drain, 10 s here), an idle session gets
# 421; the unit stops cleanly, well within TimeoutStopSec.
drain_client() {
	lab_exec lan "$(lab__python)" -u -c '
import socket
s = socket.create_connection(("10.0.25.2", 25), timeout=60)
f = s.makefile("rb")
print(f.readline().decode().rstrip(), flush=True)
s.sendall(b"EHLO drain.test\r\n")
for line in f:
    print(line.decode().rstrip(), flush=True)
' >"$LAB_DIR/drain.out" 2>&1
}
drain_client &
drain_pid=$!
for _ in $(seq 1 50); do
	grep -q '^250 ' "$LAB_DIR/drain.out" 2>/dev/null && break
	sleep 0.2
done
stopped() {
	local r t=$SECONDS
	root_exec systemctl stop stsproxy.service || return 1
	r=$(show stsproxy.service Result)
	echo "stop took $((SECONDS - t)) s; Result=$r ActiveState=$(show stsproxy.service ActiveState)"
	journal_has 'event=stop signal=|event=stopped' || return 1
	[ "$r" = success ] && [ $((SECONDS - t)) -lt 60 ]
}
root_check "systemctl stop drains: event=stop, event=stopped, Result=success" stopped
wait "$drain_pid" || true
closed_421() {
	grep -E '^(220|421)' "$LAB_DIR/drain.out"
	grep -q '^421' "$LAB_DIR/drain.out"
}
root_check "a session open at the stop was closed with 421 (the mailer retries)" closed_421
root_check "the rules stay when the proxy stops (fail-closed)" unit_state stsproxy-rules.service enabled active

# --- 4. purge -----------------------------------------------------------------
root_step "apt-get purge $PKG"
if [ "$ROOT_FAILS" -gt 0 ]; then
	echo "# the journal of both units, for what failed above:"
	root_exec journalctl -b -u stsproxy.service -u stsproxy-rules.service -o short-monotonic \
		--no-pager | tail -n 60 | sed 's/^/#   /'
fi
rm -f "$R/etc/stsproxy/lab-ca.crt" # the test's own file, not the package's
root_exec sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $PKG" | grep -E '^(Removing|Purging)' || true
purged() {
	local s
	s=$(root_exec dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>&1)
	echo "$s"
	[ "$s" != installed ] && [ "$s" != config-files ]
}
root_check "package purged" purged
leftovers() {
	local out
	out=$(root_exec find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
		-name '*stsproxy*' -print 2>/dev/null)
	out="$out$(root_exec find /run -name '*stsproxy*' 2>/dev/null)"
	echo "$out"
	[ -z "$out" ]
}
root_check "purge leaves no file named after the package" leftovers
root_check "purge removed the rules from the gateway" eval '! redirect_rule'
echo "# the user stays, as sysusers users do: $(root_exec getent passwd stsproxy || echo none)"

echo "deploy: $((ROOT_CHECKS - ROOT_FAILS)) passed, $ROOT_FAILS failed"
[ "$ROOT_FAILS" -eq 0 ]
