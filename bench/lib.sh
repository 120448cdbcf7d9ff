#!/bin/bash
# lib.sh - shared pieces of the bench/suite_*.sh system benchmarks.
#
# Sourced after tests/lab/lab.sh. Builds the gateway topology every relay
# benchmark uses, on top of the lab's namespaces, CA and DNS:
#
#   cli 10.0.1.2 -- lan0 [gw 10.0.1.1 | 10.0.25.1] wan0 -- srv 10.0.25.2
#
# gw forwards between the two links (baseline "direct" path) and runs
# whatever sits in the middle: stsproxy behind an iptables REDIRECT, or a
# plain user-space relay. The lab DNS (unbound on gw's 10.0.53.1) answers
# bench.example MX 10 mx.bench.example, mx.bench.example A 10.0.25.2.
#
# Every process started here lives in a lab namespace, so the lab's EXIT
# trap stops it; bench_cleanup (called from that trap) removes what lives
# outside one (the spools of the private Postfix instances in /dev/shm).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_PY=/usr/bin/python3
BENCH_TOOL=$BENCH_ROOT/bench/smtp_bench.py
STSPROXY=${STSPROXY:-$BENCH_ROOT/build/stsproxy}
BENCH_PF=""
# Private Postfix instances, "NS DIR" per line, stopped and removed on exit.
BENCH_PF_ALL=""
# Tens of thousands of sessions: every process started from here inherits
# the highest open-files limit allowed (a container may cap the hard limit).
BENCH_NOFILE=$(ulimit -Hn)
[ "$BENCH_NOFILE" = unlimited ] && BENCH_NOFILE=1048576
[ "$BENCH_NOFILE" -gt 1048576 ] && BENCH_NOFILE=1048576
ulimit -n "$BENCH_NOFILE"
BENCH_CLEAN_EXTRA=""

# bench_cleanup - stop every Postfix instance and remove its spool; then
# the lab teardown.
bench_cleanup() {
	local rc=$? ns dir
	set +e
	while read -r ns dir; do
		[ -n "$dir" ] && [ -d "$dir" ] || continue
		lab_exec "$ns" timeout 20 postfix -c "$dir/etc" stop >/dev/null 2>&1
		# LAB_KEEP=1 keeps LAB_DIR for a post-mortem: the mail logs too.
		[ "${LAB_KEEP:-0}" = 1 ] && cp "$dir/maillog" "$LAB_DIR/logs/postfix-$ns.log"
		rm -rf "$dir"
	done <<<"$BENCH_PF_ALL"
	[ -n "$BENCH_CLEAN_EXTRA" ] && eval "$BENCH_CLEAN_EXTRA"
	(exit "$rc")
	lab__on_exit
}

# bench_init NAME - lab_init plus our trap (which chains the lab's).
bench_init() {
	. "$BENCH_ROOT/tests/lab/lab.sh"
	lab_init "$1"
	trap 'bench_cleanup' EXIT
	BENCH_OUT=$LAB_DIR/out
	mkdir -p "$BENCH_OUT"
}

# bench_topology - the three namespaces, routes, forwarding, DNS and the
# certificate of mx.bench.example (BENCH_CRT, BENCH_KEY).
bench_topology() {
	lab_ns cli
	lab_ns gw
	lab_ns srv
	lab_link cli 10.0.1.2/24 gw 10.0.1.1/24 eth0 lan0
	lab_link gw 10.0.25.1/24 srv 10.0.25.2/24 wan0 eth0
	lab_route cli default 10.0.1.1
	lab_route srv default 10.0.25.1
	lab_exec gw sysctl -qw net.ipv4.ip_forward=1
	local ns
	for ns in cli gw srv; do
		# 10,000 sessions need the backlog and the port range.
		lab_exec "$ns" sysctl -qw net.core.somaxconn=8192 \
			net.ipv4.tcp_max_syn_backlog=8192 \
			net.ipv4.ip_local_port_range="10000 65000"
	done
	lab_dns_record "bench.example MX 10 mx.bench.example." "mx.bench.example A 10.0.25.2"
	# Not 127.0.0.1: libunbound refuses to forward to a loopback address.
	lab_addr gw lo 10.0.53.1/32
	lab_dns gw 10.0.53.1
	lab_ca
	lab_cert mx mx.bench.example >/dev/null
	BENCH_CRT=$LAB_CRT BENCH_KEY=$LAB_KEY
}

# bench_stsproxy_conf FILE MAX_SESSIONS [PORT] - the proxy's
# configuration: the bench domain is a local enforce policy (no fetch:
# "cached" from the first message), upstream certificates chain to the lab
# CA. It listens on PORT (10025), with a state directory of its own when
# PORT is another. STARTTLS is offered to clients when
# BENCH_CLIENT_STARTTLS is true; BENCH_TLS_EXTRA adds settings to the tls
# group, BENCH_CONF_EXTRA top-level ones.
bench_stsproxy_conf() {
	local port=${3:-10025} state=$LAB_DIR/state
	[ "$port" = 10025 ] || state=$LAB_DIR/state-$port
	mkdir -p "$state"
	cat >"$1" <<EOF
state_dir = "$state";
listen = [ "0.0.0.0:$port" ];
interception = "redirect";
clients = [ "10.0.1.0/24" ];
max_sessions = $2;
workers = 2;
log = { level = "${BENCH_LOG_LEVEL:-warn}"; };
dns = { forwarders = [ "10.0.53.1" ]; timeout = 5; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; client_starttls = ${BENCH_CLIENT_STARTTLS:-false}; ${BENCH_TLS_EXTRA:-} };
sts = { refresh = false; };
policies = ( { domain = "bench.example"; mode = "enforce"; mx = [ "*.bench.example" ]; } );
${BENCH_CONF_EXTRA:-}
EOF
}

# bench_stsproxy CONF [PORT] - start stsproxy in gw (BENCH_PROXY_PID) and
# wait for its listener on PORT (10025; logs/stsproxy-PORT.log for another).
bench_stsproxy() {
	local port=${2:-10025} key=stsproxy
	[ "$port" = 10025 ] || key=stsproxy-$port
	lab__start "$key" gw "$STSPROXY" -c "$1"
	BENCH_PROXY_PID=$(cat "$LAB_DIR/run/$key.pid")
	lab__await "$key" gw 10.0.1.1 "$port"
}

# bench_redirect PORT | off - send the client's port-25 traffic arriving on
# lan0 to a local PORT (stsproxy or a relay), or stop doing so.
bench_redirect() {
	lab_exec gw iptables -t nat -F PREROUTING
	[ "$1" = off ] && return 0
	lab_exec gw iptables -t nat -A PREROUTING -i lan0 -p tcp --dport 25 \
		-j REDIRECT --to-ports "$1"
}

# bench_cpu PID - utime+stime of PID and its reaped children, in clock ticks.
bench_cpu() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return 0
	}
	s=${s##*) }
	set -- $s
	echo $((${12} + ${13} + ${14} + ${15}))
}

# bench_rss PID - VmRSS of PID in KiB.
bench_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# bench_busy - CPU time the whole machine spent busy (user, nice, system,
# irq, softirq, steal; every core), in clock ticks, from /proc/stat.
bench_busy() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# bench_field LINE KEY - the value of KEY=... in a line of KEY=VALUE words
# (smap_load's, smtp_load's).
bench_field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# bench_ratio A B - A/B with two decimals, "n/a" when B is zero or missing.
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b == "" || b == "n/a" || a == "n/a" || b + 0 == 0) print "n/a";
		else printf "%.2f", a / b }'
}

# --- private Postfix instances ------------------------------------------------

# bench_postfix_dir NS - a directory for a private Postfix instance in NS
# (etc, queue, data), in BENCH_PFDIR. The spool is on tmpfs: the benchmarks
# measure relays and mailers, not the disk's fsync. bench_cleanup stops
# the instance and removes the directory.
bench_postfix_dir() {
	BENCH_PFDIR=$(mktemp -d /dev/shm/sts-postfix.XXXXXX)
	BENCH_PF_ALL="$BENCH_PF_ALL$1 $BENCH_PFDIR
"
	chmod 755 "$BENCH_PFDIR"
	mkdir -p "$BENCH_PFDIR/etc" "$BENCH_PFDIR/queue" "$BENCH_PFDIR/data"
	chown postfix "$BENCH_PFDIR/data"
}

# bench_postfix_main DIR - the main.cf lines every instance shares: its
# own spool and log file (DIR/maillog), IPv4, no local delivery.
bench_postfix_main() {
	cat <<EOF
compatibility_level = 3.6
queue_directory = $1/queue
data_directory = $1/data
mail_owner = postfix
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
smtpd_peername_lookup = no
in_flow_delay = 0
smtputf8_enable = no
biff = no
maillog_file = $1/maillog
maillog_file_prefixes = /dev/shm
EOF
}

# bench_postfix_master - the master.cf services every instance runs (no
# chroot: the instance lives in its own directory).
bench_postfix_master() {
	cat <<'EOF'
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
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# bench_postfix_start NS DIR - check and start the instance in DIR inside
# NS; on failure print what it said.
bench_postfix_start() {
	lab_exec "$1" postfix -c "$2/etc" check >"$2/start.log" 2>&1 || true
	lab_exec "$1" timeout 30 postfix -c "$2/etc" start >>"$2/start.log" 2>&1 || {
		cat "$2/start.log" "$2/maillog" >&2 2>/dev/null
		return 1
	}
}

# bench_postfix_receiver - the MX: a private Postfix in srv (BENCH_PF)
# that accepts any recipient of bench.example on 10.0.25.2:25 with
# STARTTLS (certificate of mx.bench.example from the lab CA) and on port
# 465 in TLS wrapper mode, and discards the mail. Logs every TLS session.
bench_postfix_receiver() {
	bench_postfix_dir srv
	BENCH_PF=$BENCH_PFDIR
	cp "$BENCH_CRT" "$BENCH_PF/etc/mx.crt"
	cp "$BENCH_KEY" "$BENCH_PF/etc/mx.key"
	chmod 600 "$BENCH_PF/etc/mx.key"
	{
		bench_postfix_main "$BENCH_PF"
		cat <<EOF
myhostname = mx.bench.example
mydomain = bench.example
myorigin = bench.example
mydestination =
relay_domains = bench.example
inet_interfaces = all
mynetworks = 10.0.0.0/8
default_transport = discard
relay_transport = discard
local_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
message_size_limit = 52428800
smtpd_tls_security_level = may
smtpd_tls_cert_file = $BENCH_PF/etc/mx.crt
smtpd_tls_key_file = $BENCH_PF/etc/mx.key
smtpd_tls_loglevel = 1
EOF
	} >"$BENCH_PF/etc/main.cf"
	{
		echo 'smtp      inet  n       -       n       -       -       smtpd'
		echo '465       inet  n       -       n       -       -       smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt'
		bench_postfix_master
	} >"$BENCH_PF/etc/master.cf"
	bench_postfix_start srv "$BENCH_PF" || return 1
	lab_wait_port srv 10.0.25.2 25
	lab_wait_port srv 10.0.25.2 465
}

# bench_paired A B - from "NAME VALUE" lines on stdin, one per run in
# round order, the median over rounds of A's value over B's, each ratio
# taken within one round (the two ran back to back, so a slow moment of
# the machine weighs on both); "n/a" when one of them has no usable value.
bench_paired() {
	awk -v a="$1" -v b="$2" '
	$1 == a { x[++i] = $2 }
	$1 == b { y[++j] = $2 }
	END {
		n = i < j ? i : j
		m = 0
		for (k = 1; k <= n; k++) {
			if (y[k] + 0 == 0 || x[k] == "n/a" || y[k] == "n/a")
				continue
			v = x[k] / y[k]
			for (q = ++m; q > 1 && r[q - 1] > v; q--)
				r[q] = r[q - 1]
			r[q] = v
		}
		if (m == 0) print "n/a"
		else printf "%.2f", m % 2 ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2
	}'
}
