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
# outside one (the Postfix spool in /dev/shm).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_PY=/usr/bin/python3
BENCH_TOOL=$BENCH_ROOT/bench/smtp_bench.py
STSPROXY=${STSPROXY:-$BENCH_ROOT/build/stsproxy}
BENCH_PF=""
# Tens of thousands of sessions: every process started from here inherits
# the highest open-files limit allowed (a container may cap the hard limit).
BENCH_NOFILE=$(ulimit -Hn)
[ "$BENCH_NOFILE" = unlimited ] && BENCH_NOFILE=1048576
[ "$BENCH_NOFILE" -gt 1048576 ] && BENCH_NOFILE=1048576
ulimit -n "$BENCH_NOFILE"
BENCH_CLEAN_EXTRA=""

# bench_cleanup - stop Postfix and remove its spool; then the lab teardown.
bench_cleanup() {
	local rc=$?
	set +e
	if [ -n "$BENCH_PF" ] && [ -d "$BENCH_PF" ]; then
		lab_exec srv postfix -c "$BENCH_PF/etc" stop >/dev/null 2>&1
		rm -rf "$BENCH_PF"
	fi
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

# bench_stsproxy_conf FILE MAX_SESSIONS - the proxy's configuration: the
# bench domain is a local enforce policy (no fetch: "cached" from the
# first message), upstream certificates chain to the lab CA. STARTTLS is
# offered to clients when BENCH_CLIENT_STARTTLS is true; BENCH_TLS_EXTRA
# adds settings to the tls group, BENCH_CONF_EXTRA top-level ones.
bench_stsproxy_conf() {
	mkdir -p "$LAB_DIR/state"
	cat >"$1" <<EOF
state_dir = "$LAB_DIR/state";
listen = [ "0.0.0.0:10025" ];
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

# bench_stsproxy CONF - start stsproxy in gw (BENCH_PROXY_PID) and wait for
# its listener.
bench_stsproxy() {
	lab__start stsproxy gw "$STSPROXY" -c "$1"
	BENCH_PROXY_PID=$(cat "$LAB_DIR/run/stsproxy.pid")
	lab__await stsproxy gw 10.0.1.1 10025
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

# bench_ratio A B - A/B with two decimals, "n/a" when B is zero or missing.
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b == "" || b == "n/a" || a == "n/a" || b + 0 == 0) print "n/a";
		else printf "%.2f", a / b }'
}
