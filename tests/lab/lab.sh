#!/bin/bash
# lab.sh - network-namespace test lab for stsproxy integration tests.
#
# Sourced (bash) by tests in tests/integration/. It builds small
# throw-away internets out of network namespaces and runs real daemons
# in them: unbound as the DNS server, nginx serving MTA-STS policies over
# HTTPS with certificates from a private CA, aiosmtpd receivers with
# STARTTLS, and an on-path attacker that strips or forges STARTTLS.
#
#   . tests/lab/lab.sh
#   lab_init smoke            # unique prefix, LAB_DIR, teardown trap
#   lab_router                # the "internet" namespace
#   lab_host dns 10.0.53.2/24 # a namespace hanging off the router
#   ...
#
# Everything a run creates carries its prefix (name + pid), so two runs
# never collide; the EXIT/INT/TERM trap removes namespaces, processes,
# /etc/netns entries and LAB_DIR even when the test fails (LAB_KEEP=1
# keeps LAB_DIR for a post-mortem). On a non-zero exit the tail of every
# daemon log is printed. A run killed with SIGKILL is cleaned up by the
# next lab_init (lab_gc). Functions return non-zero on error and print
# the reason to stderr, so `set -eu` in the test stops at the first one.
#
# See tests/lab/README.md for the address plan and the topology.

if [ -z "${BASH_VERSION:-}" ]; then
	echo "lab.sh: needs bash" >&2
	return 1 2>/dev/null || exit 1
fi

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REGISTRY=${LAB_REGISTRY:-/run/stslab}
LAB_DNS_TTL=${LAB_DNS_TTL:-30}
LAB_STS_MAX_AGE=${LAB_STS_MAX_AGE:-86400}
LAB_WAIT=${LAB_WAIT:-10}

# --- helpers -------------------------------------------------------------

lab__err() { echo "lab: $*" >&2; }

# lab__python - the python3 that has aiosmtpd (the Debian one, not a
# user-installed interpreter earlier in PATH).
lab__python() {
	local p
	if [ -n "${LAB_PYTHON:-}" ]; then
		echo "$LAB_PYTHON"
		return 0
	fi
	for p in /usr/bin/python3 python3; do
		if "$p" -c 'import aiosmtpd' 2>/dev/null; then
			LAB_PYTHON=$p
			echo "$p"
			return 0
		fi
	done
	lab__err "no python3 with aiosmtpd (apt-get install python3-aiosmtpd)"
	return 1
}

# Process start time (jiffies since boot): with the pid it names a
# process uniquely, so a recycled pid is not mistaken for a live owner.
lab__starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	set -- $stat
	echo "${20}"
}

lab__is_v6() { case $1 in *:*) return 0 ;; esac; return 1; }

# lab_nsname NS - the full name of lab namespace NS (idempotent).
lab_nsname() {
	: "${LAB_PFX:?lab_init first}"
	case $1 in
	"$LAB_PFX"*) echo "$1" ;;
	*) echo "$LAB_PFX$1" ;;
	esac
}

# lab_exec NS CMD... - run CMD inside namespace NS.
lab_exec() {
	local ns
	ns=$(lab_nsname "$1")
	shift
	ip netns exec "$ns" "$@"
}

# --- lifecycle -----------------------------------------------------------

# lab_init NAME - start a lab run: sets LAB_PFX (namespace prefix,
# NAME cut to 6 characters + pid + "-"), LAB_DIR (private temp dir) and
# installs the teardown trap. Call once, from the test's main shell.
lab_init() {
	local name=${1:-lab}
	name=$(printf '%s' "$name" | tr -cd 'a-z0-9' | cut -c1-6)
	[ -n "$name" ] || name=lab
	[ "$(id -u)" = 0 ] || {
		lab__err "must run as root (network namespaces)"
		return 1
	}
	lab_gc
	LAB_OWNER=$BASHPID
	LAB_PFX="$name$LAB_OWNER-"
	LAB_DIR=$(mktemp -d "/tmp/stslab.$name.XXXXXX")
	LAB_LINK_N=0
	LAB_FAILS=0
	LAB_CHECKS=0
	LAB_TORN_DOWN=0
	mkdir -p "$LAB_DIR/logs" "$LAB_DIR/run" "$LAB_DIR/dns" \
		"$LAB_DIR/https/sites" "$LAB_DIR/https/www" "$LAB_DIR/smtp"
	: >"$LAB_DIR/run/netns"
	: >"$LAB_DIR/dns/records"
	: >"$LAB_DIR/dns/special"
	: >"$LAB_DIR/dns/servers"
	: >"$LAB_DIR/https/servers"
	# Registered complete or not at all: a concurrent lab_gc must never
	# see an entry without its owner.
	mkdir -p "$LAB_REGISTRY/.new.$LAB_PFX" || return 1
	echo "$LAB_OWNER $(lab__starttime "$LAB_OWNER")" >"$LAB_REGISTRY/.new.$LAB_PFX/owner"
	echo "$LAB_DIR" >"$LAB_REGISTRY/.new.$LAB_PFX/dir"
	mv -T "$LAB_REGISTRY/.new.$LAB_PFX" "$LAB_REGISTRY/$LAB_PFX" || return 1
	trap 'lab__on_exit' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	export LAB_DIR LAB_PFX
}

lab__on_exit() {
	local rc=$?
	set +e
	# Subshells inherit nothing here, but be sure only the owner tears down.
	[ "${BASHPID}" = "${LAB_OWNER:-}" ] || return "$rc"
	if [ "$rc" != 0 ]; then
		lab_dump_logs
	fi
	lab_teardown
	exit "$rc"
}

# lab_dump_logs [LINES] - print the tail of every daemon log to stderr.
# shellcheck disable=SC2120
lab_dump_logs() {
	local n=${1:-25} f
	[ -d "${LAB_DIR:-}/logs" ] || return 0
	for f in "$LAB_DIR"/logs/*.log; do
		[ -s "$f" ] || continue
		echo "# ---- tail of ${f##*/} ----" >&2
		tail -n "$n" "$f" | sed 's/^/# /' >&2
	done
	return 0
}

# Kill every process of namespace $1 (TERM, then KILL after 2 s).
lab__kill_ns_pids() {
	local ns=$1 pids
	pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
	[ -n "$pids" ] || return 0
	kill -TERM $pids 2>/dev/null || true
	for _ in $(seq 1 40); do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] || return 0
		sleep 0.05
	done
	kill -KILL $pids 2>/dev/null || true
	sleep 0.1
	return 0
}

# Remove every trace of the lab with prefix $1 whose files are in $2.
# Best effort: runs with errexit off (a process may exit between being
# listed and being killed), restores the caller's setting.
lab__destroy() {
	local pfx=$1 dir=$2 ns pidf pid errexit=0
	case $- in *e*) errexit=1 ;; esac
	set +e
	# Daemons first (they all live in namespaces, but a daemon that
	# failed before entering one is still recorded by pid).
	if [ -n "$dir" ] && [ -d "$dir/run" ]; then
		for pidf in "$dir"/run/*.pid; do
			[ -f "$pidf" ] || continue
			pid=$(cat "$pidf" 2>/dev/null)
			[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
		done
	fi
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in
		"$pfx"*)
			lab__kill_ns_pids "$ns"
			ip netns del "$ns" 2>/dev/null
			;;
		esac
	done
	for ns in /etc/netns/"$pfx"*; do
		[ -e "$ns" ] && rm -rf "$ns"
	done
	if [ -n "$dir" ] && [ -d "$dir" ] && [ "${LAB_KEEP:-0}" != 1 ]; then
		rm -rf "$dir"
	fi
	rm -rf "${LAB_REGISTRY:?}/$pfx"
	[ "$errexit" = 1 ] && set -e
	return 0
}

# lab_teardown - stop every daemon, delete the namespaces, remove
# LAB_DIR (unless LAB_KEEP=1) and the /etc/netns files. Idempotent; the
# EXIT trap calls it, a test may call it earlier.
lab_teardown() {
	[ -n "${LAB_PFX:-}" ] || return 0
	[ "${LAB_TORN_DOWN:-0}" = 1 ] && return 0
	LAB_TORN_DOWN=1
	lab__destroy "$LAB_PFX" "${LAB_DIR:-}"
	if [ "${LAB_KEEP:-0}" = 1 ]; then
		echo "# lab: kept $LAB_DIR" >&2
	fi
	return 0
}

# lab_gc - clean up after lab runs whose owner process is gone (killed
# with SIGKILL, so no trap ran). Runs from lab_init; safe beside live runs.
lab_gc() {
	local d pfx pid st
	[ -d "$LAB_REGISTRY" ] || return 0
	for d in "$LAB_REGISTRY"/*/; do
		[ -d "$d" ] || continue
		pfx=$(basename "$d")
		read -r pid st 2>/dev/null <"$d/owner" || { pid='' st=''; }
		if [ -n "$pid" ] && [ "$(lab__starttime "$pid")" = "$st" ]; then
			continue
		fi
		lab__destroy "$pfx" "$(cat "$d/dir" 2>/dev/null)"
	done
	return 0
}

# --- checks --------------------------------------------------------------

# lab_check DESC CMD... - run CMD, print "ok - DESC" or "not ok - DESC"
# (with the command's output); counts failures for lab_done.
lab_check() {
	local desc=$1 out rc
	shift
	LAB_CHECKS=$((LAB_CHECKS + 1))
	out="$LAB_DIR/run/check.$LAB_CHECKS.out"
	if "$@" >"$out" 2>&1; then
		echo "ok $LAB_CHECKS - $desc"
	else
		rc=$?
		echo "not ok $LAB_CHECKS - $desc (exit $rc)"
		sed 's/^/#   /' "$out" | tail -n 20
		LAB_FAILS=$((LAB_FAILS + 1))
	fi
	return 0
}

# lab_wait_for SECONDS CMD... - retry CMD every 0.1 s until it succeeds;
# after SECONDS, run it once more with its output (for lab_check) and fail.
lab_wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || {
			"$@"
			return 1
		}
		sleep 0.1
	done
}

# lab_done - print the plan line and return non-zero if a check failed.
lab_done() {
	echo "1..$LAB_CHECKS"
	if [ "$LAB_FAILS" != 0 ]; then
		echo "# $LAB_FAILS of $LAB_CHECKS checks failed"
		return 1
	fi
	return 0
}

# --- topology ------------------------------------------------------------

# lab_ns NS - create namespace NS with lo up, IPv6 duplicate address
# detection off (addresses are usable at once) and forwarding off.
lab_ns() {
	local ns
	ns=$(lab_nsname "$1")
	ip netns add "$ns" || return 1
	echo "$ns" >>"$LAB_DIR/run/netns"
	ip -n "$ns" link set lo up || return 1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 >/dev/null || return 1
}

# Add comma-separated addresses $3 to interface $2 of namespace $1.
lab__addrs() {
	local ns=$1 ifc=$2 list=$3 a
	[ "$list" = - ] && return 0
	local IFS=,
	for a in $list; do
		if lab__is_v6 "$a"; then
			ip -n "$ns" -6 addr add "$a" dev "$ifc" nodad || return 1
		else
			ip -n "$ns" addr add "$a" dev "$ifc" || return 1
		fi
	done
}

# lab_link NS1 ADDRS1 NS2 ADDRS2 [IF1 IF2] - a veth pair between two
# namespaces. ADDRS is a comma-separated list of ADDR/PREFIX, IPv4 or
# IPv6 (ULA fd00::/8), or "-" for none. The interfaces are created
# directly inside the namespaces, so their names only need to be unique
# there; the chosen names are left in LAB_IF1 and LAB_IF2.
lab_link() {
	local ns1 ns2
	ns1=$(lab_nsname "$1")
	ns2=$(lab_nsname "$3")
	LAB_LINK_N=$((LAB_LINK_N + 1))
	LAB_IF1=${5:-$(printf 'v%d-%s' "$LAB_LINK_N" "${3#"$LAB_PFX"}" | cut -c1-15)}
	LAB_IF2=${6:-$(printf 'v%d-%s' "$LAB_LINK_N" "${1#"$LAB_PFX"}" | cut -c1-15)}
	ip link add "$LAB_IF1" netns "$ns1" type veth peer name "$LAB_IF2" \
		netns "$ns2" || return 1
	lab__addrs "$ns1" "$LAB_IF1" "$2" || return 1
	lab__addrs "$ns2" "$LAB_IF2" "$4" || return 1
	ip -n "$ns1" link set "$LAB_IF1" up || return 1
	ip -n "$ns2" link set "$LAB_IF2" up || return 1
}

# lab_link6 - lab_link for IPv6-only links (same arguments).
lab_link6() { lab_link "$@"; }

# lab_addr NS IF ADDR/PREFIX[,...] - add addresses to an interface.
lab_addr() { lab__addrs "$(lab_nsname "$1")" "$2" "$3"; }

# lab_route NS DEST VIA - add a route (DEST may be "default"); the
# family follows VIA.
lab_route() {
	local ns fam=-4
	ns=$(lab_nsname "$1")
	lab__is_v6 "$3" && fam=-6
	ip -n "$ns" "$fam" route add "$2" via "$3"
}

# lab_router [NS] - the "internet": a namespace (default "inet") that
# forwards IPv4 and IPv6 between the hosts lab_host attaches to it.
lab_router() {
	local r=${1:-inet}
	LAB_ROUTER=$r
	lab_ns "$r" || return 1
	lab_exec "$r" sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 >/dev/null
}

# Router-side address for host address $1: the same subnet, host part
# .1 (IPv4) or ::1 (IPv6). The plan gives hosts .2 and ::2.
lab__gw() {
	local a=${1%/*} p=${1#*/}
	if lab__is_v6 "$a"; then
		echo "${a%:*}:1/$p"
	else
		echo "${a%.*}.1/$p"
	fi
}

# lab_host NS ADDR4/PREFIX [ADDR6/PREFIX] - create namespace NS, link
# its eth0 to the router (lab_router first) and route everything there.
# The router side of the link takes the .1 / ::1 of the subnet.
lab_host() {
	local ns=$1 a4=$2 a6=${3:-} r=${LAB_ROUTER:-inet} hl rl ifr
	lab_ns "$ns" || return 1
	hl=$a4
	rl=$(lab__gw "$a4")
	if [ -n "$a6" ]; then
		hl="$hl,$a6"
		rl="$rl,$(lab__gw "$a6")"
	fi
	ifr=$(printf 'h-%s' "$ns" | cut -c1-15)
	lab_link "$ns" "$hl" "$r" "$rl" eth0 "$ifr" || return 1
	rl=$(lab__gw "$a4")
	lab_route "$ns" default "${rl%/*}" || return 1
	if [ -n "$a6" ]; then
		rl=$(lab__gw "$a6")
		lab_route "$ns" default "${rl%/*}" || return 1
	fi
}

# lab_gateway NAME I - a gateway with a LAN behind it (I from 1 to 4):
# namespace gwNAME, forwarding, linked to the router as 10.0.2I.2 (its
# wan0; the router's side 10.0.2I.1), and namespace lanNAME, 10.0.1I.2 on
# its eth0, behind the gateway's lan0 (10.0.1I.1); default routes, and the
# router's route to the LAN. The gateway's rules are the caller's.
lab_gateway() {
	local g=$1 i=$2 r=${LAB_ROUTER:-inet}
	case $i in [1-4]) ;; *)
		lab__err "lab_gateway: I is 1 to 4 (10.0.25.0/24 is mx1's), not $i"
		return 1
		;;
	esac
	lab_ns "gw$g" || return 1
	lab_exec "gw$g" sysctl -qw net.ipv4.ip_forward=1 >/dev/null || return 1
	lab_link "gw$g" "10.0.2$i.2/24" "$r" "10.0.2$i.1/24" wan0 "h-gw$g" || return 1
	lab_ns "lan$g" || return 1
	lab_link "lan$g" "10.0.1$i.2/24" "gw$g" "10.0.1$i.1/24" eth0 lan0 || return 1
	lab_route "lan$g" default "10.0.1$i.1" || return 1
	lab_route "gw$g" default "10.0.2$i.1" || return 1
	lab_route "$r" "10.0.1$i.0/24" "10.0.2$i.2"
}

# The stsproxy of a gateway of lab_gateway: its configuration in
# $LAB_DIR/gwNAME/stsproxy.conf (the caller's), its log in
# $LAB_DIR/logs/stsproxy-gwNAME.log, the binary $STSPROXY.

# lab_gw_start NAME [ADDR PORT] - check the configuration, (re)start the
# gateway's stsproxy and wait for its start line (and for ADDR:PORT to
# listen, when given).
lab_gw_start() {
	local g=$1 conf=$LAB_DIR/gw$1/stsproxy.conf log=$LAB_DIR/logs/stsproxy-gw$1.log before
	lab__stop "stsproxy-gw$g"
	"$STSPROXY" -c "$conf" --check-config >"$LAB_DIR/gw$g/check.out" 2>&1 || {
		cat "$LAB_DIR/gw$g/check.out" >&2
		return 1
	}
	before=$(grep -c 'event=start version=' "$log" 2>/dev/null || true)
	lab__start "stsproxy-gw$g" "gw$g" "$STSPROXY" -c "$conf" || return 1
	lab_wait_for 10 eval "lab__alive stsproxy-gw$g &&
		[ \"\$(grep -c 'event=start version=' '$log')\" -gt ${before:-0} ]" || return 1
	[ $# -lt 3 ] || lab__await "stsproxy-gw$g" "gw$g" "$2" "$3"
}

# lab_gw_stop NAME - stop it.
lab_gw_stop() { lab__stop "stsproxy-gw$1"; }

# lab_gw_ctl NAME ARG... - its control command ("status", "cache list", ...).
lab_gw_ctl() {
	local g=$1
	shift
	"$STSPROXY" -c "$LAB_DIR/gw$g/stsproxy.conf" ctl "$@"
}

# lab_gw_log NAME - its log so far.
lab_gw_log() { cat "$LAB_DIR/logs/stsproxy-gw$1.log"; }

# lab_intercept TARGET_IP ATTACKER_IP [PORT] - make the attacker truly
# on-path: the router redirects TCP to TARGET_IP:PORT (default 25) to
# ATTACKER_IP, except the attacker's own connections to the target.
lab_intercept() {
	local t=$1 a=$2 p=${3:-25} ipt=iptables
	lab__is_v6 "$t" && ipt=ip6tables
	if lab__is_v6 "$a"; then a="[$a]"; fi
	lab_exec "${LAB_ROUTER:-inet}" "$ipt" -t nat -A PREROUTING -p tcp \
		-d "$t" --dport "$p" ! -s "${2}" -j DNAT --to-destination "$a:$p"
}

# lab_resolvconf NS IP... - /etc/netns/<ns>/resolv.conf, which
# `ip netns exec` puts in place of /etc/resolv.conf for programs that
# use the system resolver (curl, Postfix). Removed at teardown.
lab_resolvconf() {
	local ns d ip
	ns=$(lab_nsname "$1")
	shift
	d=/etc/netns/$ns
	mkdir -p "$d" || return 1
	: >"$d/resolv.conf"
	for ip in "$@"; do
		echo "nameserver $ip" >>"$d/resolv.conf"
	done
	echo "options timeout:2 attempts:1" >>"$d/resolv.conf"
}

# --- daemons -------------------------------------------------------------

# lab__start KEY NS CMD... - start CMD in NS in the background, output
# appended to LAB_DIR/logs/KEY.log, pid in LAB_DIR/run/KEY.pid.
lab__start() {
	local key=$1 ns
	ns=$(lab_nsname "$2")
	shift 2
	ip netns exec "$ns" "$@" >>"$LAB_DIR/logs/$key.log" 2>&1 </dev/null &
	echo $! >"$LAB_DIR/run/$key.pid"
	disown $! 2>/dev/null || true
}

# lab__alive KEY - is the daemon KEY still running?
lab__alive() {
	local pid
	pid=$(cat "$LAB_DIR/run/$1.pid" 2>/dev/null) || return 1
	kill -0 "$pid" 2>/dev/null
}

# lab__stop KEY - stop daemon KEY (TERM, KILL after 3 s) and wait.
lab__stop() {
	local pidf="$LAB_DIR/run/$1.pid" pid
	[ -f "$pidf" ] || return 0
	pid=$(cat "$pidf")
	rm -f "$pidf"
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	sleep 0.05
	return 0
}

# lab_wait_port NS IP PORT [SECONDS] - wait until IP:PORT accepts TCP
# connections from inside NS; 0 when it does, 1 after SECONDS (LAB_WAIT).
lab_wait_port() {
	local ns ip=$2 port=$3 secs=${4:-$LAB_WAIT} end
	ns=$(lab_nsname "$1")
	end=$((SECONDS + secs))
	while [ "$SECONDS" -le "$end" ]; do
		if ip netns exec "$ns" timeout 1 bash -c \
			'exec 3<>"/dev/tcp/$1/$2"' _ "$ip" "$port" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	lab__err "timeout waiting for $ip:$port in $ns"
	return 1
}

# lab__await KEY NS ADDRS PORT - wait for a just-started daemon: fail at
# once (with its log) when it dies instead of listening.
lab__await() {
	local key=$1 ns=$2 ip=${3%%,*} port=$4 end
	end=$((SECONDS + LAB_WAIT))
	while [ "$SECONDS" -le "$end" ]; do
		if ! lab__alive "$key"; then
			lab__err "$key exited during start-up:"
			tail -n 20 "$LAB_DIR/logs/$key.log" >&2
			return 1
		fi
		if lab_exec "$ns" timeout 1 bash -c \
			'exec 3<>"/dev/tcp/$1/$2"' _ "$ip" "$port" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	lab__err "$key: nothing listening on $ip:$port after ${LAB_WAIT}s"
	return 1
}

# --- certificates --------------------------------------------------------

# lab_ca - create the lab CA (EC P-256) in LAB_DIR/ca: ca.crt, ca.key.
lab_ca() {
	local d="$LAB_DIR/ca"
	[ -f "$d/ca.crt" ] && return 0
	mkdir -p "$d/issued" || return 1
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = lab
[ lab ]
dir = $d
certificate = $d/ca.crt
private_key = $d/ca.key
database = $d/index.txt
new_certs_dir = $d/issued
serial = $d/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
default_days = 30
[ anything ]
commonName = supplied
organizationName = optional
EOF
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null &&
		openssl req -x509 -new -key "$d/ca.key" -sha256 -days 30 \
			-subj "/O=stsproxy lab/CN=stsproxy lab CA $LAB_PFX" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			-out "$d/ca.crt" 2>/dev/null || {
		lab__err "cannot create the CA"
		return 1
	}
}

# subjectAltName value for names/addresses $@.
lab__san() {
	local s='' n
	for n in "$@"; do
		case $n in
		*[!0-9.]* | "") if lab__is_v6 "$n"; then n="IP:$n"; else n="DNS:$n"; fi ;;
		*) n="IP:$n" ;;
		esac
		s="${s:+$s,}$n"
	done
	echo "$s"
}

# lab__issue KIND NAME SAN... - KIND: good, expired, notyet.
lab__issue() {
	local kind=$1 name=$2 d="$LAB_DIR/ca" start end
	shift 2
	lab_ca || return 1
	case $kind in
	good)
		start=$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)
		end=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)
		;;
	expired)
		start=$(date -u -d '-30 days' +%Y%m%d%H%M%SZ)
		end=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
		;;
	notyet)
		start=$(date -u -d '+1 day' +%Y%m%d%H%M%SZ)
		end=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)
		;;
	esac
	cat >"$d/$name.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = $(lab__san "$@")
EOF
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/$name.key" -subj "/O=stsproxy lab/CN=$1" \
		-out "$d/$name.csr" 2>/dev/null &&
		openssl ca -batch -notext -config "$d/ca.cnf" -in "$d/$name.csr" \
			-startdate "$start" -enddate "$end" -extfile "$d/$name.ext" \
			-out "$d/$name.crt" >/dev/null 2>"$d/$name.err" || {
		lab__err "cannot issue $name:"
		cat "$d/$name.err" >&2
		return 1
	}
	LAB_CRT=$d/$name.crt
	LAB_KEY=$d/$name.key
	echo "$LAB_CRT $LAB_KEY"
}

# lab_cert NAME SAN... - leaf certificate from the lab CA, valid now,
# for the DNS names / IP addresses SAN (the first is also the CN). Files
# LAB_DIR/ca/NAME.crt and NAME.key; prints "CRT KEY". A certificate for
# the wrong name is simply lab_cert with another SAN. The paths are also
# left in LAB_CRT and LAB_KEY (use `lab_cert ... >/dev/null` so that a
# failure stops a `set -e` test, which `$(lab_cert ...)` would not).
lab_cert() { lab__issue good "$@"; }

# lab_cert_expired NAME SAN... - like lab_cert, expired yesterday.
lab_cert_expired() { lab__issue expired "$@"; }

# lab_cert_notyet NAME SAN... - like lab_cert, valid from tomorrow.
lab_cert_notyet() { lab__issue notyet "$@"; }

# lab_cert_selfsigned NAME SAN... - a self-signed leaf (not from the CA).
lab_cert_selfsigned() {
	local name=$1 d="$LAB_DIR/ca"
	shift
	mkdir -p "$d" || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/$name.key" -sha256 -days 30 \
		-subj "/O=self-signed/CN=$1" \
		-addext "subjectAltName=$(lab__san "$@")" \
		-addext "extendedKeyUsage=serverAuth" \
		-out "$d/$name.crt" 2>/dev/null || {
		lab__err "cannot create self-signed $name"
		return 1
	}
	LAB_CRT=$d/$name.crt
	LAB_KEY=$d/$name.key
	echo "$LAB_CRT $LAB_KEY"
}

# --- DNS -----------------------------------------------------------------
#
# One record set per lab (LAB_DIR/dns/records) served by every lab_dns
# server. Records are "name [ttl] [IN] TYPE rdata" in zone-file syntax;
# names are absolute (a trailing dot is optional); the TTL defaults to
# LAB_DNS_TTL. Names not in the set get NXDOMAIN (or NODATA when the
# name has other types).

# Parse record $1 into r_name r_ttl r_type r_data.
lab__dns_parse() {
	local re='^[[:space:]]*([^[:space:]]+)[[:space:]]+(([0-9]+)[[:space:]]+)?([Ii][Nn][[:space:]]+)?([A-Za-z0-9]+)[[:space:]]+(.+)$'
	case $1 in *"'"* | *"	"*)
		lab__err "record must not contain quotes or tabs: $1"
		return 1
		;;
	esac
	[[ $1 =~ $re ]] || {
		lab__err "bad record: $1"
		return 1
	}
	r_name=$(printf '%s' "${BASH_REMATCH[1]%.}" | tr 'A-Z' 'a-z')
	r_ttl=${BASH_REMATCH[3]:-$LAB_DNS_TTL}
	r_type=$(printf '%s' "${BASH_REMATCH[5]}" | tr 'a-z' 'A-Z')
	r_data=${BASH_REMATCH[6]}
}

# lab_dns_record "REC"... - add records (before or after lab_dns; call
# lab_dns_reload to apply to running servers).
lab_dns_record() {
	local r_name r_ttl r_type r_data rec
	for rec in "$@"; do
		lab__dns_parse "$rec" || return 1
		printf '%s\t%s\t%s\t%s\n' "$r_name" "$r_type" "$r_ttl" "$r_data" \
			>>"$LAB_DIR/dns/records"
	done
}

# lab_dns_del NAME [TYPE] - remove the records of NAME (of one TYPE).
lab_dns_del() {
	local n t=${2:-}
	n=$(printf '%s' "${1%.}" | tr 'A-Z' 'a-z')
	t=$(printf '%s' "$t" | tr 'a-z' 'A-Z')
	awk -F '\t' -v n="$n" -v t="$t" '!($1 == n && (t == "" || $2 == t))' \
		"$LAB_DIR/dns/records" >"$LAB_DIR/dns/records.new" &&
		mv "$LAB_DIR/dns/records.new" "$LAB_DIR/dns/records"
}

# lab_dns_set "REC"... - replace the records of each REC's name and type
# (e.g. a new MTA-STS id), then reload running servers.
lab_dns_set() {
	local r_name r_ttl r_type r_data rec
	for rec in "$@"; do
		lab__dns_parse "$rec" || return 1
		lab_dns_del "$r_name" "$r_type" || return 1
	done
	lab_dns_record "$@" || return 1
	lab_dns_reload
}

# lab_dns_servfail NAME - queries at or below NAME get SERVFAIL (they
# are forwarded to a server unbound will not query).
lab_dns_servfail() { echo "servfail ${1%.}" >>"$LAB_DIR/dns/special"; }

# lab_dns_drop NAME - queries at or below NAME get no answer (timeout).
lab_dns_drop() { echo "drop ${1%.}" >>"$LAB_DIR/dns/special"; }

# lab_dns_clear_special - forget servfail/drop names (then lab_dns_reload).
lab_dns_clear_special() { : >"$LAB_DIR/dns/special"; }

# Write the unbound config for server $1 (full ns name) on addresses $2.
lab__dns_conf() {
	local key=$1 addrs=$2 d="$LAB_DIR/dns/$1" a kind name
	mkdir -p "$d"
	{
		echo "server:"
		echo "  verbosity: 1"
		echo "  log-queries: yes"
		echo "  log-replies: yes"
		echo "  use-syslog: no"
		echo '  logfile: ""'
		echo "  do-daemonize: no"
		echo '  chroot: ""'
		echo '  username: ""'
		echo "  directory: \"$d\""
		echo "  pidfile: \"$d/unbound.pid\""
		echo "  num-threads: 1"
		echo "  port: 53"
		echo "  do-ip6: yes"
		echo "  module-config: \"iterator\""
		echo "  access-control: 0.0.0.0/0 allow"
		echo "  access-control: ::/0 allow"
		echo "  do-not-query-localhost: yes"
		echo "  infra-keep-probing: no"
		local IFS=,
		for a in $addrs; do echo "  interface: $a"; done
		unset IFS
		# Everything not listed does not exist: no recursion to nowhere.
		echo '  local-zone: "." static'
		while read -r kind name; do
			case $kind in
			servfail) echo "  local-zone: \"$name.\" transparent" ;;
			drop) echo "  local-zone: \"$name.\" deny" ;;
			esac
		done <"$LAB_DIR/dns/special"
		# Records under a servfail/drop name would still be answered.
		awk -F '\t' -v sp="$LAB_DIR/dns/special" '
			BEGIN { while ((getline l < sp) > 0) { split(l, f, " "); s[tolower(f[2])] = 1 } }
			{
				n = $1; skip = 0
				for (k in s) if (n == k || substr(n, length(n) - length(k)) == "." k) skip = 1
				if (!skip) printf "  local-data: '\''%s. %s IN %s %s'\''\n", $1, $3, $2, $4
			}' "$LAB_DIR/dns/records"
		while read -r kind name; do
			[ "$kind" = servfail ] || continue
			echo "forward-zone:"
			echo "  name: \"$name.\""
			echo "  forward-addr: 127.0.0.1@1"
		done <"$LAB_DIR/dns/special"
	} >"$d/unbound.conf"
	unbound-checkconf "$d/unbound.conf" >"$d/checkconf.out" 2>&1 || {
		lab__err "bad unbound config:"
		cat "$d/checkconf.out" >&2
		return 1
	}
}

lab__dns_start() {
	local ns=$1 addrs=$2 key
	key="dns-${ns#"$LAB_PFX"}"
	lab__dns_conf "$key" "$addrs" || return 1
	lab__start "$key" "$ns" unbound -d -c "$LAB_DIR/dns/$key/unbound.conf" || return 1
	lab__await "$key" "$ns" "$addrs" 53
}

# lab_dns NS ADDRS [RECORDS_FILE] - start unbound in NS answering on
# ADDRS (comma list, port 53) from the lab record set, after adding the
# records of RECORDS_FILE (one per line, "#" comments and blank lines
# skipped). Log: LAB_DIR/logs/dns-NS.log.
lab_dns() {
	local ns line
	ns=$(lab_nsname "$1")
	if [ -n "${3:-}" ]; then
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line#"${line%%[![:space:]]*}"}
			case $line in "" | "#"*) continue ;; esac
			lab_dns_record "$line" || return 1
		done <"$3"
	fi
	echo "$ns $2" >>"$LAB_DIR/dns/servers"
	lab__dns_start "$ns" "$2"
}

# lab_dns_reload - apply record changes: restart every lab DNS server
# (a restart is synchronous: when this returns, the new data is served).
lab_dns_reload() {
	local ns addrs
	while read -r ns addrs; do
		lab__stop "dns-${ns#"$LAB_PFX"}"
		lab__dns_start "$ns" "$addrs" || return 1
	done <"$LAB_DIR/dns/servers"
}

# --- HTTPS (MTA-STS policy hosts) ----------------------------------------
#
# Sites are kept in LAB_DIR/https/sites, one file per host name, and
# served by every lab_https server. Adding or changing a site restarts
# running servers; changing only a policy body does not need to.

# lab_https NS ADDRS - start nginx in NS on ADDRS (comma list), port 443.
# Connections without a known SNI name get a certificate for
# "default.invalid" and status 421.
lab_https() {
	local ns
	ns=$(lab_nsname "$1")
	echo "$ns $2" >>"$LAB_DIR/https/servers"
	[ -n "${LAB_HTTPS_ADDRS:-}" ] || LAB_HTTPS_ADDRS=$2
	lab__https_start "$ns" "$2"
}

lab__https_conf() {
	local key=$1 addrs=$2 ns=$3 d="$LAB_DIR/https/$1" a f listen='' dlisten=''
	mkdir -p "$d/tmp"
	[ -f "$LAB_DIR/ca/https-default.crt" ] ||
		lab_cert https-default default.invalid >/dev/null || return 1
	local IFS=,
	for a in $addrs; do
		if lab__is_v6 "$a"; then a="[$a]"; fi
		listen="$listen        listen $a:443 ssl;
"
		dlisten="$dlisten        listen $a:443 ssl default_server;
"
	done
	unset IFS
	{
		cat <<EOF
# LAB_DIR is private to root; workers must read the policy files.
user root;
worker_processes 1;
daemon off;
pid $d/nginx.pid;
lock_file $d/nginx.lock;
error_log $LAB_DIR/logs/$key.log info;
events { worker_connections 256; }
http {
    log_format lab '\$remote_addr sni=\$ssl_server_name host=\$host '
                   '"\$request" \$status \$body_bytes_sent';
    access_log $LAB_DIR/logs/$key.log lab;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server_tokens off;
    types { }
    default_type application/octet-stream;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
${dlisten}        ssl_certificate $LAB_DIR/ca/https-default.crt;
        ssl_certificate_key $LAB_DIR/ca/https-default.key;
        return 421;
    }
EOF
		for f in "$LAB_DIR"/https/sites/*.conf; do
			[ -f "$f" ] || continue
			echo "    server {"
			printf '%s' "$listen"
			echo "        include $f;"
			echo "    }"
		done
		echo "}"
	} >"$d/nginx.conf"
	# The test binds the listen addresses: it must run in the namespace.
	lab_exec "$ns" nginx -t -q -e "$LAB_DIR/logs/$key.log" -c "$d/nginx.conf" -p "$d" \
		>"$d/test.out" 2>&1 || {
		lab__err "bad nginx config:"
		cat "$d/test.out" >&2
		return 1
	}
}

lab__https_start() {
	local ns=$1 addrs=$2 key
	key="https-${ns#"$LAB_PFX"}"
	lab__https_conf "$key" "$addrs" "$ns" || return 1
	lab__start "$key" "$ns" nginx -e "$LAB_DIR/logs/$key.log" \
		-c "$LAB_DIR/https/$key/nginx.conf" -p "$LAB_DIR/https/$key" || return 1
	lab__await "$key" "$ns" "$addrs" 443
}

# lab_https_reload - restart every lab HTTPS server with the current sites.
lab_https_reload() {
	local ns addrs
	while read -r ns addrs; do
		lab__stop "https-${ns#"$LAB_PFX"}"
		lab__https_start "$ns" "$addrs" || return 1
	done <"$LAB_DIR/https/servers"
}

# Install site file $2 for host $1; restart servers if it changed.
lab__site() {
	local host=$1 new=$2 f="$LAB_DIR/https/sites/$1.conf"
	if [ -f "$f" ] && cmp -s "$f" "$new"; then
		rm -f "$new"
		return 0
	fi
	mv "$new" "$f" || return 1
	[ -s "$LAB_DIR/https/servers" ] || return 0
	lab_https_reload
}

# lab_https_proxy HOST BACKEND - an HTTPS site for HOST (a certificate from
# the lab CA) that passes every request to the plain-HTTP BACKEND
# (ADDR:PORT, e.g. tests/lab/post_sink.py), bodies up to 10 MB.
lab_https_proxy() {
	local new="$LAB_DIR/https/sites/$1.conf.new"
	lab_cert "$1" "$1" >/dev/null || return 1
	cat >"$new" <<EOF
server_name $1;
ssl_certificate $LAB_CRT;
ssl_certificate_key $LAB_KEY;
client_max_body_size 10m;
location / { proxy_pass http://$2; }
EOF
	lab__site "$1" "$new"
}

# Certificate for host $1: LAB_HTTPS_CERT/LAB_HTTPS_KEY when set (e.g.
# an expired or wrong-name one), else a good one from the lab CA.
lab__site_cert() {
	if [ -n "${LAB_HTTPS_CERT:-}" ]; then
		LAB_CRT=$LAB_HTTPS_CERT LAB_KEY=${LAB_HTTPS_KEY:?}
		return 0
	fi
	if [ -f "$LAB_DIR/ca/$1.crt" ]; then
		LAB_CRT=$LAB_DIR/ca/$1.crt LAB_KEY=$LAB_DIR/ca/$1.key
		return 0
	fi
	lab_cert "$1" "$1" >/dev/null
}

# lab_https_raw DOMAIN STATUS CTYPE BODYFILE [OPTION...] - serve
# https://mta-sts.DOMAIN/.well-known/mta-sts.txt with STATUS (200, 3xx,
# 4xx, 5xx), Content-Type CTYPE ("-" for none) and the bytes of BODYFILE
# (copied; ignored for 3xx). Options: location=URL (3xx target, default
# https://mta-sts.DOMAIN/elsewhere.txt), chunked (no Content-Length),
# rate=BYTES (per second, for slow-body timeouts). The certificate is
# LAB_HTTPS_CERT/LAB_HTTPS_KEY if set, else a good one for the host.
lab_https_raw() {
	local dom=$1 status=$2 ctype=$3 body=$4 host crt key opt
	local loc="" chunked=0 rate="" www new
	shift 4
	host="mta-sts.${dom%.}"
	for opt in "$@"; do
		case $opt in
		location=*) loc=${opt#location=} ;;
		chunked) chunked=1 ;;
		rate=*) rate=${opt#rate=} ;;
		*)
			lab__err "lab_https_raw: unknown option $opt"
			return 1
			;;
		esac
	done
	[ -n "$loc" ] || loc="https://$host/elsewhere.txt"
	lab__site_cert "$host" || return 1
	crt=$LAB_CRT key=$LAB_KEY
	www="$LAB_DIR/https/www/$host"
	mkdir -p "$www" || return 1
	if [ "$body" != "$www/mta-sts.txt" ]; then
		cp "$body" "$www/mta-sts.txt.new" && mv "$www/mta-sts.txt.new" "$www/mta-sts.txt" || return 1
	fi
	case $ctype in *'"'* | *\\*)
		lab__err "lab_https_raw: bad content type $ctype"
		return 1
		;;
	esac
	[ "$ctype" = - ] && ctype=
	new=$(mktemp "$LAB_DIR/https/site.XXXXXX")
	{
		echo "server_name $host;"
		echo "ssl_certificate $crt;"
		echo "ssl_certificate_key $key;"
		echo "location = /.well-known/mta-sts.txt {"
		[ -n "$rate" ] && echo "    limit_rate $rate;"
		if [ "$chunked" = 1 ]; then
			# An active body filter drops Content-Length: chunked reply.
			echo "    sub_filter_types *;"
			echo "    sub_filter 'lab-no-such-text' '';"
		fi
		case $status in
		200)
			echo "    default_type \"$ctype\";"
			echo "    alias $www/mta-sts.txt;"
			;;
		3??)
			echo "    return $status $loc;"
			;;
		[45]??)
			echo "    return $status;"
			;;
		*)
			lab__err "lab_https_raw: unsupported status $status"
			rm -f "$new"
			return 1
			;;
		esac
		echo "}"
		case $status in
		[45]??)
			echo "error_page $status /.lab-error-body;"
			echo "location = /.lab-error-body {"
			echo "    internal;"
			echo "    default_type \"$ctype\";"
			echo "    alias $www/mta-sts.txt;"
			echo "}"
			;;
		esac
		echo "location / { return 404; }"
	} >"$new"
	lab__site "$host" "$new"
}

# lab_sts_policy DOMAIN MODE MX... - serve a well-formed policy
# (version, mode, one mx line per MX, max_age LAB_STS_MAX_AGE) for
# DOMAIN as text/plain with a good certificate for mta-sts.DOMAIN
# (override with LAB_HTTPS_CERT/LAB_HTTPS_KEY). Calling it again
# replaces the policy. Prints the path of the body file.
lab_sts_policy() {
	local dom=$1 mode=$2 host body mx
	shift 2
	host="mta-sts.${dom%.}"
	mkdir -p "$LAB_DIR/https/www/$host" || return 1
	body="$LAB_DIR/https/www/$host/mta-sts.txt"
	{
		echo "version: STSv1"
		echo "mode: $mode"
		for mx in "$@"; do echo "mx: $mx"; done
		echo "max_age: $LAB_STS_MAX_AGE"
	} >"$body.new" && mv "$body.new" "$body" || return 1
	lab_https_raw "$dom" 200 text/plain "$body" >/dev/null || return 1
	echo "$body"
}

# lab_sts_publish DOMAIN ID MODE MX... - the whole MTA-STS setup of a
# domain: TXT _mta-sts.DOMAIN "v=STSv1; id=ID", mta-sts.DOMAIN pointing
# at the first lab_https server (LAB_HTTPS_ADDRS) and the policy. DNS
# servers already running are reloaded.
lab_sts_publish() {
	local dom=${1%.} id=$2 a
	shift 2
	[ -n "${LAB_HTTPS_ADDRS:-}" ] || {
		lab__err "lab_sts_publish: start lab_https first"
		return 1
	}
	lab_sts_policy "$dom" "$@" >/dev/null || return 1
	lab_dns_del "_mta-sts.$dom" TXT
	lab_dns_del "mta-sts.$dom"
	lab_dns_record "_mta-sts.$dom TXT \"v=STSv1; id=$id\"" || return 1
	local IFS=,
	for a in $LAB_HTTPS_ADDRS; do
		if lab__is_v6 "$a"; then
			lab_dns_record "mta-sts.$dom AAAA $a" || return 1
		else
			lab_dns_record "mta-sts.$dom A $a" || return 1
		fi
	done
	unset IFS
	[ -s "$LAB_DIR/dns/servers" ] || return 0
	lab_dns_reload
}

# --- SMTP ----------------------------------------------------------------

# lab_smtp NS ADDRS NAME CERT KEY [OPTION...] - start a receiving SMTP
# server (tests/lab/smtp_sink.py) in NS on ADDRS (comma list), port 25,
# calling itself NAME, STARTTLS with CERT/KEY ("-" "-" with
# --no-starttls). Options go to smtp_sink.py: --no-starttls,
# --require-tls, --port N, --reject-rcpt S, --tempfail-rcpt S,
# --reject-data. Messages land in $(lab_smtp_dir NAME)/new.
lab_smtp() {
	local ns=$1 addrs=$2 name=$3 crt=$4 key=$5 py port=25 o prev='' k
	shift 5
	for o in "$@"; do
		[ "$prev" = --port ] && port=$o
		prev=$o
	done
	py=$(lab__python) || return 1
	k="smtp-$name"
	local args=(--listen "$addrs" --hostname "$name" --maildir "$LAB_DIR/smtp/$name")
	[ "$crt" != - ] && args+=(--cert "$crt" --key "$key")
	lab__start "$k" "$ns" "$py" "$LAB_SRC/smtp_sink.py" "${args[@]}" "$@" || return 1
	lab__await "$k" "$ns" "$addrs" "$port"
}

# lab_smtp_send NS ARG... - send one message from NS with
# tests/lab/smtp_send.py, byte-exact: --server IP [--port N] --from A
# --to B [--to C] --data FILE [--starttls [--cafile CA --sni NAME]].
# Returns 0 accepted, 1 rejected, 2 connection/TLS error, 3 no STARTTLS.
lab_smtp_send() {
	local ns=$1 py
	shift
	py=$(lab__python) || return 1
	lab_exec "$ns" "$py" "$LAB_SRC/smtp_send.py" "$@"
}

# lab_smtp_stop NAME - stop the SMTP server NAME (its mail stays).
lab_smtp_stop() { lab__stop "smtp-$1"; }

# lab_smtp_dir NAME - the maildir of SMTP server NAME.
lab_smtp_dir() { echo "$LAB_DIR/smtp/$1"; }

# lab_smtp_count NAME - number of messages NAME has stored.
lab_smtp_count() {
	local n=0 f
	for f in "$LAB_DIR/smtp/$1"/new/*.eml; do
		[ -f "$f" ] && n=$((n + 1))
	done
	echo "$n"
}

# lab_smtp_wait NAME COUNT [SECONDS] - wait until NAME holds COUNT messages.
lab_smtp_wait() {
	local end=$((SECONDS + ${3:-$LAB_WAIT}))
	while [ "$SECONDS" -le "$end" ]; do
		[ "$(lab_smtp_count "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	lab__err "smtp $1: $(lab_smtp_count "$1") messages, wanted $2"
	return 1
}

# lab_smtp_last NAME - path of NAME's newest message without the
# extension: append .eml for the bytes, .json for envelope and TLS facts.
lab_smtp_last() {
	local f
	f=$(ls "$LAB_DIR/smtp/$1"/new/*.eml 2>/dev/null | sort | tail -n 1)
	[ -n "$f" ] || return 1
	echo "${f%.eml}"
}

# lab_json FILE KEY - a top-level value of a message's .json (lists are
# joined with ","; true/false/null as such).
lab_json() {
	"$(lab__python)" - "$1" "$2" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
if isinstance(v, bool) or v is None:
    print(json.dumps(v))
elif isinstance(v, list):
    print(",".join(str(x) for x in v))
else:
    print(v)
EOF
}

# --- attacker ------------------------------------------------------------

# lab_attacker NS ADDRS MODE UPSTREAM [OPTION...] - start the on-path
# attacker (tests/lab/strip_proxy.py) in NS on ADDRS port 25, relaying
# to UPSTREAM (IP[:PORT]). MODE: pass, mangle, drop, refuse, forge.
# Options: --port N (listen port), --name HOST (forge: the forged
# self-signed certificate names HOST; default forged.invalid),
# --cert C --key K (forge: use this certificate instead).
# Log: LAB_DIR/logs/attack-NS-PORT.log (one "event=..." line per act).
lab_attacker() {
	local ns=$1 addrs=$2 mode=$3 up=$4 port=25 name=forged.invalid
	local crt='' key='' py upport=25 k
	shift 4
	while [ $# -gt 0 ]; do
		case $1 in
		--port) port=$2 ;;
		--name) name=$2 ;;
		--cert) crt=$2 ;;
		--key) key=$2 ;;
		*)
			lab__err "lab_attacker: unknown option $1"
			return 1
			;;
		esac
		shift 2
	done
	case $up in
	\[*\]:*) upport=${up##*:} up=${up%:*} up=${up#[} up=${up%]} ;;
	*:*:*) ;;
	*:*) upport=${up##*:} up=${up%:*} ;;
	esac
	py=$(lab__python) || return 1
	k="attack-${ns#"$LAB_PFX"}-$port"
	local args=(--listen "$addrs" --port "$port" --upstream "$up"
		--upstream-port "$upport" --mode "$mode")
	if [ "$mode" = forge ]; then
		if [ -z "$crt" ]; then
			lab_cert_selfsigned "forged-$port" "$name" >/dev/null || return 1
			crt=$LAB_CRT key=$LAB_KEY
		fi
		args+=(--cert "$crt" --key "$key")
	fi
	lab__start "$k" "$ns" "$py" "$LAB_SRC/strip_proxy.py" "${args[@]}" || return 1
	lab__await "$k" "$ns" "$addrs" "$port"
}

# lab_attacker_log NS [PORT] - path of an attacker's log.
lab_attacker_log() {
	local ns
	ns=$(lab_nsname "$1")
	echo "$LAB_DIR/logs/attack-${ns#"$LAB_PFX"}-${2:-25}.log"
}

# lab_attacker_stop NS [PORT] - stop an attacker.
lab_attacker_stop() {
	local ns
	ns=$(lab_nsname "$1")
	lab__stop "attack-${ns#"$LAB_PFX"}-${2:-25}"
}

# lab_cut_attacker NS ADDRS UPSTREAM[:PORT] CONTROL RECORD [--port N] -
# start the on-path attacker that cuts sessions (tests/lab/cut_proxy.py)
# in NS on ADDRS port 25 (or N), relaying to UPSTREAM. At every new
# connection it reads CONTROL, written with lab_cut_control; the
# cleartext lines it relays or receives itself are appended to RECORD as
# "TOKEN relay|fake CONN LINE". Log: lab_attacker_log NS [PORT] (one
# "event=..." line per act); stop: lab_attacker_stop NS [PORT].
lab_cut_attacker() {
	local ns=$1 addrs=$2 up=$3 ctl=$4 rec=$5 port=25 upport=25 py k
	shift 5
	while [ $# -gt 0 ]; do
		case $1 in
		--port) port=$2 ;;
		*)
			lab__err "lab_cut_attacker: unknown option $1"
			return 1
			;;
		esac
		shift 2
	done
	case $up in
	\[*\]:*) upport=${up##*:} up=${up%:*} up=${up#[} up=${up%]} ;;
	*:*:*) ;;
	*:*) upport=${up##*:} up=${up%:*} ;;
	esac
	py=$(lab__python) || return 1
	[ -f "$ctl" ] || echo pass >"$ctl" || return 1
	: >>"$rec" || return 1
	k="attack-${ns#"$LAB_PFX"}-$port"
	lab__start "$k" "$ns" "$py" "$LAB_SRC/cut_proxy.py" --listen "$addrs" \
		--port "$port" --upstream "$up" --upstream-port "$upport" \
		--control "$ctl" --record "$rec" || return 1
	lab__await "$k" "$ns" "$addrs" "$port"
}

# lab_cut_control FILE TOKEN POINT fin|rst, or lab_cut_control FILE pass -
# tell a cut attacker what to do with the next connection: cut it at POINT
# (banner ehlo starttls hs-mid hs-flight1 hs-last hs-last-late ehlo-tls
# data dot; see cut_proxy.py) and serve the ones after it itself, until
# another TOKEN; or relay unchanged. Replaced atomically.
lab_cut_control() {
	local f=$1
	shift
	case "$*" in
	pass | *' '*' 'fin | *' '*' 'rst) ;;
	*)
		lab__err "lab_cut_control: TOKEN POINT fin|rst, or pass"
		return 1
		;;
	esac
	echo "$*" >"$f.new" && mv -f "$f.new" "$f"
}
