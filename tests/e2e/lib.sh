#!/bin/bash
# lib.sh - end-to-end lab: a legacy Postfix on a LAN, stsproxy on the
# gateway in front of it, and an "internet" with DNS, MTA-STS policy
# hosts, receiving MX hosts and an on-path attacker.
#
#   lan: Postfix 10.0.1.2 ── gw: stsproxy (REDIRECT :25 -> :10025) ── inet ─┬─ dns   10.0.53.2
#        (fd00:0:1::2)          10.0.1.1 | 10.0.2.2                   router ├─ https 10.0.44.2
#                                                                            ├─ mx*   10.0.25.2, 10.0.26.2, ...
#                                                                            └─ atk*  10.0.66.2, 10.0.67.2, ...
#
# Sourced (bash) by tests/integration/e2e_*.sh and scripts/demo.sh, after
# tests/lab/lab.sh, whose conventions it follows: functions return
# non-zero and say why on stderr; call them directly (not inside $(...))
# so `set -eu` stops at the first failure; everything is torn down on any
# exit by the lab's trap, Postfix included.
#
#   . tests/e2e/lib.sh
#   e2e_init NAME                  # lab_init + the topology's namespaces
#   e2e_lab                        # router, LAN, gateway, DNS, HTTPS, CA
#   e2e_mx mx1 10.0.25.2 mx1.a.test [sink options]
#   lab_sts_publish a.test 1 enforce mx1.a.test
#   lab_dns_record "a.test MX 10 mx1.a.test."
#   e2e_start                      # DNS, Postfix, stsproxy, redirect rules
#   e2e_sendmail from@corp.example to@a.test <FILE
#   e2e_wait_status to@a.test sent
#
# Needs root, the lab's packages and postfix; STSPROXY names the binary
# (default: build/stsproxy).

E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_ROOT=$(cd "$E2E_SRC/../.." && pwd)
# shellcheck source=../lab/lab.sh
. "$E2E_ROOT/tests/lab/lab.sh" || return 1

STSPROXY=${STSPROXY:-$E2E_ROOT/build/stsproxy}
E2E_WAIT=${E2E_WAIT:-40}       # seconds for a delivery or a deferral to show
E2E_FIREWALL=${E2E_FIREWALL:-iptables} # or "nftables": how the gateway redirects
E2E_MODE=${E2E_MODE:-enforce}  # stsproxy's mode
E2E_INET=${E2E_INET:-ipv4}     # Postfix inet_protocols: ipv4 or all
E2E_PROXY_EXTRA=${E2E_PROXY_EXTRA:-} # more stsproxy configuration (e.g. reuse on)

# Addresses of the standard topology (tests/lab/README.md address plan).
E2E_LAN4=10.0.1.2
E2E_LAN6=fd00:0:1::2
E2E_GW_LAN4=10.0.1.1
E2E_GW_LAN6=fd00:0:1::1
E2E_GW4=10.0.2.2
E2E_GW6=fd00:0:2::2
E2E_DNS4=10.0.53.2
E2E_HTTPS4=10.0.44.2
E2E_PROXY_PORT=10025

e2e__err() { echo "e2e: $*" >&2; }

# e2e_init NAME - lab_init with the end-to-end teardown: Postfix and the
# proxy are stopped before the lab removes the namespaces.
e2e_init() {
	lab_init "$1" || return 1
	E2E_PF=$LAB_DIR/postfix
	E2E_EVENTS=$LAB_DIR/logs/events.log
	E2E_PROXY_LOG=$LAB_DIR/logs/stsproxy.log
	E2E_POSTFIX_LOG=$LAB_DIR/logs/postfix.log
	# Postfix's daemons run as "postfix" and must reach their queue
	# under LAB_DIR (mktemp makes it 0700).
	chmod 0711 "$LAB_DIR" || return 1
	trap 'e2e__on_exit' EXIT
	export STSPROXY
}

e2e__on_exit() {
	local rc=$?
	set +e
	[ "${BASHPID}" = "${LAB_OWNER:-}" ] || return "$rc"
	e2e_postfix_stop
	e2e_proxy_stop
	(exit "$rc")
	lab__on_exit
}

# --- topology ------------------------------------------------------------

# e2e_lab - the standard topology without daemons: router "inet", the
# LAN host "lan" behind the gateway "gw", hosts "dns" and "https", the
# lab CA and the HTTPS server. Records and MX hosts are added after, then
# e2e_start.
e2e_lab() {
	local a
	lab_router || return 1
	lab_ns gw || return 1
	lab_exec gw sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		>/dev/null || return 1
	# Gateway's uplink to the internet, and its LAN side.
	lab_link gw "$E2E_GW4/24,$E2E_GW6/64" inet "10.0.2.1/24,fd00:0:2::1/64" wan0 h-gw ||
		return 1
	lab_ns lan || return 1
	lab_link lan "$E2E_LAN4/24,$E2E_LAN6/64" gw "$E2E_GW_LAN4/24,$E2E_GW_LAN6/64" eth0 lan0 ||
		return 1
	E2E_GW_LAN_IF=lan0
	lab_route lan default "$E2E_GW_LAN4" || return 1
	lab_route lan default "$E2E_GW_LAN6" || return 1
	lab_route gw default 10.0.2.1 || return 1
	lab_route gw default fd00:0:2::1 || return 1
	lab_route inet 10.0.1.0/24 "$E2E_GW4" || return 1
	lab_route inet fd00:0:1::/64 "$E2E_GW6" || return 1
	lab_host dns "$E2E_DNS4/24" fd00:0:53::2/64 || return 1
	lab_host https "$E2E_HTTPS4/24" fd00:0:44::2/64 || return 1
	lab_ca || return 1
	lab_https https "$E2E_HTTPS4" || return 1
	for a in lan gw; do
		lab_resolvconf "$a" "$E2E_DNS4" || return 1
	done
	return 0
}

# e2e_mx NS ADDR4[,ADDR6] NAME [SINK_OPTION...] - a receiving MX host:
# namespace NS on the router (ADDR4 .2 of its /24, optional ADDR6 ::2 of
# its /64), a certificate for NAME from the lab CA, and the sink with
# STARTTLS. DNS records for NAME are the caller's. E2E_CERT_NAME, when
# set, is the name the certificate is issued for instead (a mismatch).
e2e_mx() {
	local ns=$1 addrs=$2 name=$3 a4 a6='' listen
	shift 3
	a4=${addrs%%,*}
	case $addrs in *,*) a6=${addrs#*,} ;; esac
	if [ -n "$a6" ]; then
		lab_host "$ns" "$a4/24" "$a6/64" || return 1
		listen="$a4,$a6"
	else
		lab_host "$ns" "$a4/24" || return 1
		listen=$a4
	fi
	lab_cert "$name" "${E2E_CERT_NAME:-$name}" >/dev/null || return 1
	lab_smtp "$ns" "$listen" "$name" "$LAB_CRT" "$LAB_KEY" "$@"
}

# e2e_attacker NS ADDR4 MODE TARGET_IP [lab_attacker options] - an
# on-path attacker in its own namespace (one per target, so its own
# upstream connections are told apart by source address), placed on the
# path to TARGET_IP:25 with a DNAT rule in the router.
e2e_attacker() {
	local ns=$1 a4=$2 mode=$3 target=$4
	shift 4
	if ! ip netns list | grep -q "^$(lab_nsname "$ns")\b"; then
		lab_host "$ns" "$a4/24" || return 1
	fi
	lab_attacker "$ns" "$a4" "$mode" "$target" "$@" || return 1
	lab_intercept "$target" "$a4" || return 1
	echo "$ns $a4 $target" >>"$LAB_DIR/run/e2e-attackers"
}

# e2e_attacker_remove NS - the attack stops: the DNAT rule goes and the
# attacker process ends. Established connections are cut.
e2e_attacker_remove() {
	local ns=$1 n a4 target
	while read -r n a4 target; do
		[ "$n" = "$ns" ] || continue
		lab_exec "${LAB_ROUTER:-inet}" iptables -t nat -D PREROUTING -p tcp \
			-d "$target" --dport 25 ! -s "$a4" -j DNAT --to-destination "$a4:25" ||
			return 1
		# Connections the router already translated keep their mapping.
		lab_exec "${LAB_ROUTER:-inet}" conntrack -D -p tcp --orig-dst "$target" \
			>/dev/null 2>&1 || true
	done <"$LAB_DIR/run/e2e-attackers"
	lab_attacker_stop "$ns"
}

# --- Postfix -------------------------------------------------------------

# e2e_postfix_start - a real Postfix in "lan" as a legacy mailer: its own
# instance under LAB_DIR/postfix, delivering by MX lookup through the
# lab DNS, opportunistic TLS with the lab CA, short retry times.
e2e_postfix_start() {
	local d=$E2E_PF
	command -v postfix >/dev/null || {
		e2e__err "postfix is not installed (make deps)"
		return 1
	}
	mkdir -p "$d/conf" "$d/queue" "$d/data" || return 1
	# data_directory belongs to mail_owner (master.lock, TLS caches).
	chown postfix: "$d/data" || return 1
	cat >"$d/conf/main.cf" <<EOF
# Lab instance: a legacy mailer that knows nothing of MTA-STS.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.corp.example
mydomain = corp.example
myorigin = corp.example
mydestination =
relayhost =
inet_interfaces = $E2E_LAN4$([ "$E2E_INET" = all ] && echo ", $E2E_LAN6")
inet_protocols = $E2E_INET
smtp_address_preference = ipv4
mynetworks = 127.0.0.0/8, 10.0.1.0/24
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtp_host_lookup = dns
disable_dns_lookups = no
smtp_tls_security_level = may
smtp_tls_CAfile = $LAB_DIR/ca/ca.crt
smtp_tls_loglevel = 1
maximal_queue_lifetime = 1d
bounce_queue_lifetime = 1d
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
smtp_connect_timeout = 10s
message_size_limit = 52428800
maillog_file = $E2E_POSTFIX_LOG
maillog_file_prefixes = /tmp, /var
EOF
	# No chroot: the instance lives under LAB_DIR; postlogd writes maillog_file.
	cat >"$d/conf/master.cf" <<'EOF'
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	: >"$E2E_POSTFIX_LOG"
	lab_exec lan postfix -c "$d/conf" start >"$d/start.out" 2>&1 || {
		e2e__err "postfix did not start:"
		cat "$d/start.out" >&2
		return 1
	}
	E2E_POSTFIX_UP=1
	lab_wait_port lan "$E2E_LAN4" 25 || return 1
}

# e2e_postfix_stop - stop the lab Postfix (no-op when not running).
e2e_postfix_stop() {
	[ "${E2E_POSTFIX_UP:-0}" = 1 ] || return 0
	E2E_POSTFIX_UP=0
	lab_exec lan postfix -c "$E2E_PF/conf" stop >/dev/null 2>&1 || true
}

# e2e_sendmail FROM RCPT... <MESSAGE - inject a message the way a local
# program does (Postfix sendmail, pickup queue).
e2e_sendmail() {
	local from=$1
	shift
	lab_exec lan /usr/sbin/sendmail -C "$E2E_PF/conf" -i -f "$from" -- "$@"
}

# e2e_message FILE SUBJECT [BODY_BYTES] - write a message with a unique
# Message-ID; with BODY_BYTES, a body of that many bytes of varied
# printable text in 76-byte lines (CRLF-free, as a local program writes).
e2e_message() {
	local f=$1 subj=$2 size=${3:-0}
	{
		echo "From: sender@corp.example"
		echo "Subject: $subj"
		echo "Message-ID: <$(date +%s%N).$RANDOM@corp.example>"
		echo
		if [ "$size" -gt 0 ]; then
			"$(lab__python)" - "$size" <<'EOF'
import random, sys
n = int(sys.argv[1])
rnd = random.Random(8461)
alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-"
out, total = [], 0
while total < n:
    line = "".join(rnd.choice(alphabet) for _ in range(75))
    # a line that starts with a dot must survive dot-stuffing
    if len(out) % 97 == 0:
        line = "." + line[1:]
    out.append(line)
    total += 76
sys.stdout.write("\n".join(out)[: n - 1] + "\n")
EOF
		else
			echo "Hello from the legacy mailer."
			echo "Subject line: $subj"
		fi
	} >"$f"
}

# e2e_status RCPT - the last Postfix delivery status for RCPT
# (sent, deferred, bounced) or nothing.
e2e_status() {
	grep -F " to=<$1>" "$E2E_POSTFIX_LOG" 2>/dev/null | grep -o ' status=[a-z]*' |
		tail -n 1 | cut -d= -f2
}

# e2e_count_status RCPT STATUS - how many times Postfix logged STATUS for RCPT.
e2e_count_status() {
	grep -F " to=<$1>" "$E2E_POSTFIX_LOG" 2>/dev/null | grep -c " status=$2 " || true
}

# e2e_wait_status RCPT STATUS [SECONDS] - wait until Postfix logged
# STATUS for RCPT at least once.
e2e_wait_status() {
	local end=$((SECONDS + ${3:-$E2E_WAIT}))
	while [ "$SECONDS" -le "$end" ]; do
		[ "$(e2e_count_status "$1" "$2")" -ge 1 ] && return 0
		sleep 0.2
	done
	e2e__err "postfix: no status=$2 for $1 after ${3:-$E2E_WAIT}s; log says:"
	grep -F "<$1>" "$E2E_POSTFIX_LOG" | tail -n 5 >&2
	return 1
}

# e2e_wait_count RCPT STATUS N [SECONDS] - wait until Postfix logged
# STATUS for RCPT at least N times (a retry shows as one more line).
e2e_wait_count() {
	local end=$((SECONDS + ${4:-$E2E_WAIT}))
	while [ "$SECONDS" -le "$end" ]; do
		[ "$(e2e_count_status "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.2
	done
	e2e__err "postfix: $(e2e_count_status "$1" "$2") times status=$2 for $1, wanted $3"
	return 1
}

# e2e_last_has RCPT REGEX - Postfix's latest log line about RCPT matches REGEX.
e2e_last_has() {
	local l
	l=$(e2e_postfix_lines "$1" | tail -n 1)
	echo "last: $l"
	printf '%s\n' "$l" | grep -Eq -- "$2"
}

# e2e_postfix_lines RCPT - Postfix's log lines about RCPT.
e2e_postfix_lines() { grep -F " to=<$1>" "$E2E_POSTFIX_LOG"; }

# e2e_queue_reason RCPT - the deferral reason Postfix's queue holds for
# RCPT (postqueue -j), or nothing when RCPT is not queued.
e2e_queue_reason() {
	lab_exec lan postqueue -c "$E2E_PF/conf" -j 2>/dev/null |
		"$(lab__python)" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    for r in m.get("recipients", []):
        if r.get("address") == sys.argv[1]:
            print(r.get("delay_reason", ""))
' "$1"
}

# e2e_queue_has RCPT REGEX - is RCPT queued with a reason matching REGEX?
e2e_queue_has() {
	local r
	r=$(e2e_queue_reason "$1")
	echo "queued reason: ${r:-<not queued>}"
	[ -n "$r" ] && printf '%s\n' "$r" | grep -Eq "$2"
}

# e2e_flush - ask Postfix to retry the deferred queue now.
e2e_flush() { lab_exec lan postqueue -c "$E2E_PF/conf" -f; }

# --- stsproxy ------------------------------------------------------------

# e2e_proxy_conf FILE [EXTRA] - stsproxy's configuration for the gateway;
# EXTRA is appended verbatim (e.g. a policies list).
e2e_proxy_conf() {
	cat >"$1" <<EOF
# stsproxy on the lab gateway.
state_dir = "$LAB_DIR/proxy/state";
mode = "$E2E_MODE";
listen = [ "0.0.0.0:$E2E_PROXY_PORT", "[::]:$E2E_PROXY_PORT" ];
interception = "redirect";
clients = [ "10.0.1.0/24", "fd00:0:1::/64" ];
workers = 1;
timeouts = { connect = 10; greeting = 30; command = 30; starttls = 20; };
$(e2e__conf_common)
${2:-}
${E2E_PROXY_EXTRA:-}
EOF
}

# e2e__conf_common - the configuration lines every lab stsproxy shares:
# logs, the lab resolver, the lab CA, the policy fetch timeout.
e2e__conf_common() {
	cat <<EOF
log = {
  level = "debug";
  file = "$E2E_PROXY_LOG";
  events = "$E2E_EVENTS";
};
dns = { forwarders = [ "$E2E_DNS4" ]; timeout = 5; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; };
sts = { fetch_timeout = 10; };
EOF
}

# e2e_nfq_conf FILE ACTION [NFQ_EXTRA] - stsproxy's configuration for the
# gateway as the NFQUEUE inspector alone (no listener): queue 0, action
# ACTION, fail_open, NFQ_EXTRA inside the nfq group, metrics on
# 127.0.0.1:9125.
e2e_nfq_conf() {
	mkdir -p "$LAB_DIR/proxy" || return 1
	cat >"$1" <<EOF
# stsproxy on the lab gateway: NFQUEUE inspection of forwarded flows.
state_dir = "$LAB_DIR/proxy/state";
$(e2e__conf_common)
nfq = { queues = [ 0 ]; action = "$2"; fail_open = true; ${3:-} };
metrics = { listen = "127.0.0.1:9125"; };
EOF
}

# e2e_nfq_start ACTION [NFQ_EXTRA] - (re)start stsproxy in "gw" on
# e2e_nfq_conf's configuration ($LAB_DIR/proxy/stsproxy.conf) and wait for
# its start line, which it prints. The NFQUEUE rules are the caller's.
e2e_nfq_start() {
	local conf=$LAB_DIR/proxy/stsproxy.conf before
	e2e_proxy_stop
	e2e_nfq_conf "$conf" "$1" "${2:-}" || return 1
	"$STSPROXY" -c "$conf" --check-config >"$LAB_DIR/proxy/check.out" 2>&1 || {
		e2e__err "stsproxy rejects its configuration:"
		cat "$LAB_DIR/proxy/check.out" >&2
		return 1
	}
	before=$(grep -c 'event=start version=' "$E2E_PROXY_LOG" 2>/dev/null || true)
	lab__start stsproxy gw "$STSPROXY" -c "$conf" || return 1
	for _ in $(seq 1 100); do
		if [ "$(grep -c 'event=start version=' "$E2E_PROXY_LOG" 2>/dev/null || true)" -gt "${before:-0}" ]; then
			grep 'event=start version=' "$E2E_PROXY_LOG" | tail -n 1
			return 0
		fi
		lab__alive stsproxy || break
		sleep 0.1
	done
	e2e__err "stsproxy did not start:"
	tail -n 20 "$E2E_PROXY_LOG" "$LAB_DIR/logs/stsproxy.log" >&2 2>/dev/null
	return 1
}

# e2e_proxy_start [EXTRA_CONF] - stsproxy in "gw" and the gateway's
# redirect rules (E2E_FIREWALL: iptables or nftables, from the scripts/
# templates an operator would use).
e2e_proxy_start() {
	local conf=$LAB_DIR/proxy/stsproxy.conf
	[ -x "$STSPROXY" ] || {
		e2e__err "no stsproxy binary at $STSPROXY (make, or set STSPROXY)"
		return 1
	}
	mkdir -p "$LAB_DIR/proxy" || return 1
	e2e_proxy_conf "$conf" "${1:-}" || return 1
	"$STSPROXY" -c "$conf" --check-config >"$LAB_DIR/proxy/check.out" 2>&1 || {
		e2e__err "stsproxy rejects its configuration:"
		cat "$LAB_DIR/proxy/check.out" >&2
		return 1
	}
	: >"$E2E_EVENTS"
	lab__start stsproxy gw "$STSPROXY" -c "$conf" || return 1
	lab__await stsproxy gw "$E2E_GW_LAN4" "$E2E_PROXY_PORT" || return 1
	e2e_redirect add
}

# e2e_proxy_stop - stop stsproxy (no-op when not running).
e2e_proxy_stop() {
	[ -n "${LAB_DIR:-}" ] || return 0
	lab__stop stsproxy
}

# e2e_redirect add|del - the gateway's interception rules.
e2e_redirect() {
	case $E2E_FIREWALL in
	iptables)
		lab_exec gw env LAN_IF="$E2E_GW_LAN_IF" PROXY_PORT="$E2E_PROXY_PORT" \
			sh "$E2E_ROOT/scripts/iptables-gateway.sh" "$1"
		;;
	nftables)
		lab_exec gw env LAN_IF="$E2E_GW_LAN_IF" PROXY_PORT="$E2E_PROXY_PORT" \
			sh "$E2E_ROOT/scripts/nftables-gateway.nft" "$1"
		;;
	*)
		e2e__err "E2E_FIREWALL: iptables or nftables, not $E2E_FIREWALL"
		return 1
		;;
	esac
}

# e2e_start - start DNS (with every record added so far), Postfix and
# stsproxy with its redirect rules. EXTRA_CONF as for e2e_proxy_start.
e2e_start() {
	lab_dns dns "$E2E_DNS4" || return 1
	e2e_postfix_start || return 1
	e2e_proxy_start "${1:-}"
}

# --- what happened -------------------------------------------------------

# e2e_sink_count NAME RCPT - messages MX NAME stored for RCPT.
e2e_sink_count() {
	"$(lab__python)" - "$LAB_DIR/smtp/$1/new" "$2" <<'EOF'
import glob, json, os, sys
n = 0
for j in glob.glob(os.path.join(sys.argv[1], "*.json")):
    if not os.path.exists(j[:-5] + ".eml"):
        continue
    if sys.argv[2] in json.load(open(j)).get("rcpt_tos", []):
        n += 1
print(n)
EOF
}

# e2e_sink_msg NAME RCPT - path (without extension) of the newest message
# MX NAME stored for RCPT.
e2e_sink_msg() {
	"$(lab__python)" - "$LAB_DIR/smtp/$1/new" "$2" <<'EOF'
import glob, json, os, sys
best = None
for j in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    if os.path.exists(j[:-5] + ".eml") and sys.argv[2] in json.load(open(j)).get("rcpt_tos", []):
        best = j[:-5]
if best is None:
    sys.exit(1)
print(best)
EOF
}

# e2e_sink_wait NAME RCPT COUNT [SECONDS] - wait until MX NAME stored
# COUNT messages for RCPT.
e2e_sink_wait() {
	local end=$((SECONDS + ${4:-$E2E_WAIT}))
	while [ "$SECONDS" -le "$end" ]; do
		[ "$(e2e_sink_count "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.2
	done
	e2e__err "$1 holds $(e2e_sink_count "$1" "$2") messages for $2, wanted $3"
	return 1
}

# e2e_sink_is NAME RCPT COUNT - MX NAME holds exactly COUNT for RCPT.
e2e_sink_is() {
	local n
	n=$(e2e_sink_count "$1" "$2")
	echo "$1 holds $n message(s) for $2"
	[ "$n" = "$3" ]
}

# e2e_event DOMAIN KEY=VALUE... - is there an event for DOMAIN whose
# fields have these values? Prints the first match.
e2e_event() {
	"$(lab__python)" - "$E2E_EVENTS" "$@" <<'EOF'
import json, sys
path, domain, want = sys.argv[1], sys.argv[2], sys.argv[3:]
seen = 0
for line in open(path):
    try:
        ev = json.loads(line)
    except ValueError:
        print("not JSON:", line.rstrip())
        sys.exit(1)
    if ev.get("domain") != domain:
        continue
    seen += 1
    if all(str(ev.get(k)) == v for k, v in (w.split("=", 1) for w in want)):
        print(json.dumps(ev, sort_keys=True))
        sys.exit(0)
print("%d event(s) for %s, none with %s" % (seen, domain, " ".join(want)))
for line in open(path):
    if ('"%s"' % domain) in line:
        print(line.rstrip())
sys.exit(1)
EOF
}

# e2e_no_event DOMAIN - the event file names nothing about DOMAIN.
e2e_no_event() {
	if grep -F "\"domain\":\"$1\"" "$E2E_EVENTS" ||
		grep -F "\"domain\": \"$1\"" "$E2E_EVENTS"; then
		return 1
	fi
	return 0
}

# e2e_body FILE - a message's body (after the first empty line), CRLF
# line ends made LF, for comparing what was injected with what arrived.
e2e_body() {
	"$(lab__python)" -c '
import sys
data = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
i = data.find(b"\n\n")
sys.stdout.buffer.write(data[i + 2:] if i >= 0 else b"")
' "$1"
}

# e2e_same_body INJECTED STORED_EML - byte-identical bodies.
e2e_same_body() {
	local a b
	a=$(e2e_body "$1" | sha256sum | cut -d' ' -f1)
	b=$(e2e_body "$2" | sha256sum | cut -d' ' -f1)
	echo "injected body sha256 $a ($(e2e_body "$1" | wc -c) bytes)"
	echo "stored   body sha256 $b ($(e2e_body "$2" | wc -c) bytes)"
	[ "$a" = "$b" ]
}

# e2e_grep FILE REGEX - grep -E that shows the matches (for lab_check).
e2e_grep() { grep -E -- "$2" "$1"; }
