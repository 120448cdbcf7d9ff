#!/bin/bash
# suite_nfq.sh smoke|full OUTFILE.md - packets per second through the
# NFQUEUE inspector against an accept-all NFQUEUE program, same run, and
# what holding a first contact's RCPT for its policy lookup costs.
#
#   cli 10.0.1.2 -- [rtr 10.0.1.1 | 10.0.25.1] -- srv 10.0.25.2
#
# rtr forwards and queues port-25 packets with the rules of
# scripts/nfq-iptables.sh. In the middle, in turn:
#   a  bench/nfq_accept_all.c: the inspector's libmnl setup (copy range,
#      GSO, fail-open, batched verdicts) accepting everything unparsed
#   b  the inspector itself (tests/nfq/nfq_driver.c: nfq_start() alone),
#      action log, the recipient domain known (its lookup answered "no
#      policy" in the warm-up)
#   c  the same in block mode, the domain known: nothing is held
#   f  block mode, every flow a first contact: each RCPT is held until its
#      lookup answers "no policy" (the driver answers at once and forgets,
#      so what is measured is the hold itself, not a resolver)
#   o  with NFQ_BASELINE_SRC=DIR (a source tree of another revision, named
#      NFQ_BASELINE_NAME in the report): its nfq_driver, action log, as b
# Traffic: smtp-source (client) to smtp-sink (server), cleartext SMTP, so
# the inspector parses every packet it is given:
#   short  many short sessions (1 KiB message, one per session)
#   bulk   a few large messages (1 MiB): parsed until DATA, then released
# Two rule sets: "every packet" drops the CONNMARK release (the released
# flow's repeated packet is still accepted by the mark rule), so the
# programs see the same packets: the fair pps figure. "release" is the
# deployed rule set. Packets are counted by the NFQUEUE rule's counter; CPU
# is utime+stime of the user-space program from /proc/PID/stat.
# First contact: bench/smtp_load, one connection at a time (latency per
# connection, median and p90) and 10 in parallel (msg/s), through a, c and
# f with the deployed rules.
#
# Needs root. Everything runs in namespaces named snfqb<pid>-*; they,
# and the processes in them, are removed on exit, failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [ "$MODE" = full ]; then
	SHORT_N=30000 SHORT_S=20 BULK_N=1000 BULK_S=4 REPS=3 LAT_N=3000
else
	SHORT_N=3000 SHORT_S=10 BULK_N=100 BULK_S=2 REPS=1 LAT_N=300
fi
LIMIT=300
BULK_LEN=1048576
SHORT_LEN=1024
MARK=0x57500001
P=snfqb$$
DIR=$(mktemp -d /tmp/sts-nfqbench.XXXXXX)
PIDS=()

cleanup() {
	local rc=$? p
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	# Anything still alive in our namespaces was started by this suite.
	for ns in cli rtr srv; do
		for p in $(ip netns pids "$P-$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$P-$ns" 2>/dev/null
	done
	rm -rf "$DIR"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "suite_nfq: $*" >&2
	exit 1
}
nsx() {
	local ns=$1
	shift
	ip netns exec "$P-$ns" "$@"
}

[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/smtp-sink ] ||
	die "smtp-source/smtp-sink missing (apt-get install postfix)"

# --- programs: built here, the Makefile builds bench_*.c only ----------------

PKGS=$(sed -n 's/^PKGS *:= *//p' Makefile) # the libraries the Makefile links
CFL="-std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I."
# shellcheck disable=SC2046,SC2086
cc $CFL $(pkg-config --cflags libnetfilter_queue libmnl) -o "$DIR/nfq_accept_all" \
	bench/nfq_accept_all.c $(pkg-config --libs libnetfilter_queue libmnl) ||
	die "cannot build bench/nfq_accept_all.c"
# shellcheck disable=SC2046,SC2086
cc $CFL $(pkg-config --cflags $PKGS) -o "$DIR/nfq_driver" tests/nfq/nfq_driver.c \
	$(sed -n 's|^// sources: ||p' tests/nfq/nfq_driver.c) $(pkg-config --libs $PKGS) -lpthread ||
	die "cannot build tests/nfq/nfq_driver.c"
# shellcheck disable=SC2086
cc $CFL -pthread -o "$DIR/smtp_load" bench/smtp_load.c -lssl -lcrypto ||
	die "cannot build bench/smtp_load.c"
PROGS="a b c"
if [ -n "${NFQ_BASELINE_SRC:-}" ]; then
	# shellcheck disable=SC2046,SC2086
	(cd "$NFQ_BASELINE_SRC" && cc $CFL $(pkg-config --cflags $PKGS) -o "$DIR/nfq_driver_o" \
		tests/nfq/nfq_driver.c $(sed -n 's|^// sources: ||p' tests/nfq/nfq_driver.c) \
		$(pkg-config --libs $PKGS) -lpthread) || die "cannot build $NFQ_BASELINE_SRC's nfq_driver"
	PROGS="a b c o"
fi

# --- namespaces ----------------------------------------------------------------

for ns in cli rtr srv; do
	ip netns add "$P-$ns"
	nsx "$ns" ip link set lo up
done
ip link add "$P-a" netns "$P-cli" type veth peer name "$P-b" netns "$P-rtr"
ip link add "$P-c" netns "$P-rtr" type veth peer name "$P-d" netns "$P-srv"
nsx cli ip addr add 10.0.1.2/24 dev "$P-a"
nsx rtr ip addr add 10.0.1.1/24 dev "$P-b"
nsx rtr ip addr add 10.0.25.1/24 dev "$P-c"
nsx srv ip addr add 10.0.25.2/24 dev "$P-d"
nsx cli ip link set "$P-a" up
nsx rtr ip link set "$P-b" up
nsx rtr ip link set "$P-c" up
nsx srv ip link set "$P-d" up
nsx cli ip route add default via 10.0.1.1
nsx srv ip route add default via 10.0.25.1
nsx rtr sysctl -qw net.ipv4.ip_forward=1
for ns in cli srv; do
	nsx "$ns" sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096 \
		net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
done

# smtp-sink: a C SMTP server that discards, the fastest peer available.
ip netns exec "$P-srv" /usr/sbin/smtp-sink -u nobody -m 1000 10.0.25.2:25 1024 >"$DIR/sink.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
	nsx srv ss -ltn | grep -q '10.0.25.2:25 ' && break
	sleep 0.1
done
nsx srv ss -ltn | grep -q '10.0.25.2:25 ' || die "smtp-sink does not listen"

# --- rules -----------------------------------------------------------------------

# rules release|every|off - the project's template, with or without the
# connmark release; off: no queueing at all (kernel forwarding only).
rules() {
	nsx rtr sh scripts/nfq-iptables.sh del 0 >/dev/null 2>&1 || true
	[ "$1" = off ] && return 0
	nsx rtr sh scripts/nfq-iptables.sh add 0 || die "scripts/nfq-iptables.sh add failed"
	if [ "$1" = every ]; then
		nsx rtr iptables -D STSPROXY_NFQ -m mark --mark $MARK -j CONNMARK --set-mark $MARK
		nsx rtr iptables -D STSPROXY_NFQ -m connmark --mark $MARK -j ACCEPT
	fi
}
queued() { # packets that reached the NFQUEUE rule since the last reset
	nsx rtr iptables -L STSPROXY_NFQ -v -n -x 2>/dev/null |
		awk '/NFQUEUE/ { print $1; exit }' || true
}

# --- the program in the middle --------------------------------------------------

# Started with ip netns exec directly (not through nsx) so that $! is the
# program itself and its CPU time can be read and it can be stopped.

MIDDLE=
start_middle() { # a|b|c|f|o
	local action=log driver=$DIR/nfq_driver
	local args=(--answer bench.example=none) # learnt in the warm-up: a known domain
	stop_middle
	: >"$DIR/middle.log"
	case $1 in
	c) action=block ;;
	f) action=block args=(--answer '*=none' --forget) ;;
	o) driver=$DIR/nfq_driver_o args=() ;;
	esac
	if [ "$1" = a ]; then
		ip netns exec "$P-rtr" "$DIR/nfq_accept_all" 0 2>"$DIR/middle.log" &
	else
		rm -rf "$DIR/state"
		mkdir -p "$DIR/state"
		cat >"$DIR/nfq.conf" <<CONF
state_dir = "$DIR/state";
log = { level = "warn"; events = "$DIR/events.json"; };
nfq = { queues = [ 0 ]; action = "$action"; fail_open = true; };
CONF
		ip netns exec "$P-rtr" "$driver" "$DIR/nfq.conf" "${args[@]}" 2>"$DIR/middle.log" &
	fi
	MIDDLE=$!
	PIDS+=("$MIDDLE")
	for _ in $(seq 50); do
		grep -q ready "$DIR/middle.log" && return 0
		sleep 0.1
	done
	cat "$DIR/middle.log" >&2
	die "program $1 did not start"
}
stop_middle() {
	[ -n "$MIDDLE" ] || return 0
	kill "$MIDDLE" 2>/dev/null || true
	wait "$MIDDLE" 2>/dev/null || true
	MIDDLE=
}
cpu_ticks() { # utime + stime of PID
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return 0
	}
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $((${12} + ${13}))
}
HZ=$(getconf CLK_TCK)

RES=$DIR/results.tsv
: >"$RES"

# run WORKLOAD RULES PROGRAM REP - one smtp-source run; appends
# workload rules program rep msgs secs packets cpu_ticks
run() {
	local w=$1 r=$2 p=$3 rep=$4 n s len t0 t1 c0=0 c1=0 pk
	if [ "$w" = short ]; then
		n=$SHORT_N s=$SHORT_S len=$SHORT_LEN
	else
		n=$BULK_N s=$BULK_S len=$BULK_LEN
	fi
	nsx rtr iptables -Z STSPROXY_NFQ 2>/dev/null || true
	[ -n "$MIDDLE" ] && c0=$(cpu_ticks "$MIDDLE")
	t0=$(date +%s.%N)
	nsx cli timeout "$LIMIT" /usr/sbin/smtp-source -s "$s" -m "$n" -l "$len" \
		-f sender@client.example -t rcpt@bench.example -M client.example \
		10.0.25.2:25 >"$DIR/source.log" 2>&1 && ! grep -q . "$DIR/source.log" || {
		tail -n 5 "$DIR/source.log" >&2
		die "smtp-source failed ($w, rules $r, program $p)"
	}
	t1=$(date +%s.%N)
	[ -n "$MIDDLE" ] && c1=$(cpu_ticks "$MIDDLE")
	pk=$(queued)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$r" "$p" "$rep" "$n" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "${pk:-0}" \
		$((c1 - c0)) >>"$RES"
	echo "# nfq $w rules=$r program=$p rep=$rep: $(tail -n 1 "$RES" | cut -f 6-8 | tr '\t' ' ')"
}

# Kernel forwarding alone, for scale.
rules off
for w in short bulk; do run "$w" off none 1; done

warm_up() { # one session so the flow table and caches are not cold, and the domain known
	nsx cli timeout 20 /usr/sbin/smtp-source -m 1 -l 100 -f sender@client.example \
		-t rcpt@bench.example -M client.example 10.0.25.2:25 >/dev/null 2>&1 ||
		die "no message passes through program $1 (rules $2)"
}

for r in every release; do
	rules "$r"
	for rep in $(seq "$REPS"); do
		# Rotate the order so no program always runs on a warmer machine.
		order=$PROGS
		for _ in $(seq "$rep"); do order="${order#* } ${order%% *}"; done
		for p in $order; do
			start_middle "$p"
			warm_up "$p" "$r"
			for w in short bulk; do run "$w" "$r" "$p" "$rep"; done
			stop_middle
		done
	done
done

# First contact: the deployed rules, a (no inspection), c (the domain
# known) and f (every RCPT held for its lookup), interleaved per rep.
LAT=$DIR/latency.tsv
: >"$LAT"
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; } # NAME=value of a result line
lat_run() { # PROGRAM SESSIONS REP - appends program sessions rep msgs_per_s median p90
	local line
	line=$(nsx cli timeout "$LIMIT" "$DIR/smtp_load" -s "$2" -m "$LAT_N" -l "$SHORT_LEN" \
		-t rcpt@bench.example 10.0.25.2:25) || die "smtp_load failed (program $1, $2 sessions)"
	case $line in *" failed=0 "*) ;; *) die "smtp_load: $line (program $1)" ;; esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" \
		"$(field msgs_per_s "$line")" "$(field lat_median_ms "$line")" \
		"$(field lat_p90_ms "$line")" >>"$LAT"
	echo "# nfq first contact program=$1 sessions=$2 rep=$3: $line"
}
rules release
for rep in $(seq "$REPS"); do
	order="a c f"
	for _ in $(seq "$rep"); do order="${order#* } ${order%% *}"; done
	for p in $order; do
		start_middle "$p"
		warm_up "$p" release
		lat_run "$p" 1 "$rep"
		lat_run "$p" 10 "$rep"
		grep -q 'event=' "$DIR/middle.log" && grep -m 3 'event=' "$DIR/middle.log" >&2
		stop_middle
	done
done
# Where the inspector's CPU goes: a profile of b on the short workload,
# every packet queued (perf, when installed).
PROF=$DIR/profile.txt
: >"$PROF"
if command -v perf >/dev/null 2>&1; then
	rules every
	start_middle b
	perf record -F 2999 -o "$DIR/perf.data" -p "$MIDDLE" >"$DIR/perf.log" 2>&1 &
	PERF=$!
	PIDS+=("$PERF")
	sleep 0.5
	run short every b profile
	kill -INT "$PERF" 2>/dev/null || true
	wait "$PERF" 2>/dev/null || true
	stop_middle
	perf report -i "$DIR/perf.data" --no-children --sort dso --stdio 2>/dev/null |
		awk '/%/ && $1 ~ /%$/ { printf "%s\t%s\n", $1, $2 }' >"$DIR/dso.txt" || true
	perf report -i "$DIR/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
		awk '/%/ && $1 ~ /%$/ && $2 !~ /kernel/ { print }' | head -n 8 >"$PROF" || true
	sed -i '/\tprofile\t/d' "$RES"
fi
rules off
grep -q 'nfq: event=' "$DIR/middle.log" 2>/dev/null &&
	echo "suite_nfq: inspector log: $(head -n 3 "$DIR/middle.log")" >&2

# --- report ---------------------------------------------------------------------

# stat WORKLOAD RULES PROGRAM FIELD - the median over the reps of:
# pps, msgs (msg/s), mibs (MiB/s), cpu (CPU share of one core, %),
# us (CPU microseconds per queued packet), pkts (queued packets per message)
stat() {
	awk -F '\t' -v w="$1" -v r="$2" -v p="$3" -v f="$4" -v hz="$HZ" \
		-v len="$([ "$1" = short ] && echo $SHORT_LEN || echo $BULK_LEN)" '
	$1 == w && $2 == r && $3 == p {
		t = $6 > 0 ? $6 : 0.001
		if (f == "pps") v = $7 / t
		else if (f == "msgs") v = $5 / t
		else if (f == "mibs") v = $5 * len / t / 1048576
		else if (f == "cpu") v = $8 / hz / t * 100
		else if (f == "us") v = $7 > 0 ? $8 / hz * 1e6 / $7 : 0
		else if (f == "pkts") v = $7 / $5
		x[n++] = v
	}
	END {
		if (n == 0) { print "n/a"; exit }
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (x[j] < x[i]) { y = x[i]; x[i] = x[j]; x[j] = y }
		m = x[int(n / 2)]
		if (f == "pps" || f == "msgs") printf "%.0f", m
		else if (f == "pkts") printf "%.1f", m
		else printf "%.2f", m
	}' "$RES"
}
# latstat PROGRAM SESSIONS FIELD - the median over the reps of a latency.tsv
# column: 4 msg/s, 5 median ms, 6 p90 ms.
latstat() {
	awk -F '\t' -v p="$1" -v s="$2" -v f="$3" '$1 == p && $2 == s { x[n++] = $f }
	END {
		if (n == 0) { print "n/a"; exit }
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (x[j] < x[i]) { y = x[i]; x[i] = x[j]; x[j] = y }
		printf (f == 4 ? "%.0f" : "%.3f"), x[int(n / 2)]
	}' "$LAT"
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
met() {
	awk -v r="$1" 'BEGIN { if (r == "n/a") print ""; else if (r + 0 >= 0.8) print "met";
		else print "**missed**" }'
}
label() {
	case $1 in
	short) echo "short sessions ($SHORT_LEN B, $SHORT_S parallel)" ;;
	bulk) echo "bulk DATA ($((BULK_LEN / 1048576)) MiB, $BULK_S parallel)" ;;
	esac
}

{
	echo "## NFQUEUE inspector against an accept-all NFQUEUE program (suite_nfq.sh, $MODE)"
	echo
	echo "Client, router and server network namespaces joined by veth pairs; the router"
	echo "forwards and queues port-25 packets to NFQUEUE 0 with scripts/nfq-iptables.sh."
	echo "smtp-source (client) sends cleartext SMTP to Postfix's smtp-sink (server), so the"
	echo "inspector parses every packet it is given. Programs, measured in this run:"
	echo
	echo "- **a** \`bench/nfq_accept_all.c\`: the inspector's libmnl setup (copy range 0xffff,"
	echo "  NFQA_CFG_F_GSO, fail-open, up to 64 reads per wake-up, batched accepts), no parsing."
	echo "- **b** the inspector: \`nfq_start()\` alone (tests/nfq/nfq_driver.c, action log,"
	echo "  log level warn), parsing, reassembling and judging every queued packet; the"
	echo "  recipient domain is known (its lookup answered in the warm-up)."
	echo "- **c** the same in block mode: the packet with the RCPT is judged at once, nothing"
	echo "  is held (the cost of holding for known domains)."
	[ -n "${NFQ_BASELINE_SRC:-}" ] &&
		echo "- **o** the inspector of ${NFQ_BASELINE_NAME:-$NFQ_BASELINE_SRC} (NFQ_BASELINE_SRC), action log, as b."
	echo
	echo "Rule sets: **every packet** removes the CONNMARK release from the template, so the"
	echo "programs are given the same packets (the fair packets/s figure); **release** is the"
	echo "deployed template, where b stops queueing a flow at DATA (354) or TLS and a never"
	echo "releases. Packets are the NFQUEUE rule's counter; CPU is utime+stime of the"
	echo "program (/proc/PID/stat) over the run, as a share of one core. Each figure is the"
	echo "median of $REPS run(s); the programs rotate in order. 2-core machines share the"
	echo "cores between client, server, kernel forwarding and the program, so pps is the"
	echo "whole path's; CPU us/packet is the program's own cost."
	echo
	echo "| workload | rules | program | msg/s | MiB/s | queued pps | packets/msg | program CPU % | CPU us/packet |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for w in short bulk; do
		echo "| $(label "$w") | none (kernel only) | - | $(stat "$w" off none msgs) | $(stat "$w" off none mibs) | - | - | - | - |"
		for r in every release; do
			for p in $PROGS; do
				echo "| $(label "$w") | $r | $p | $(stat "$w" "$r" "$p" msgs) | $(stat "$w" "$r" "$p" mibs) | $(stat "$w" "$r" "$p" pps) | $(stat "$w" "$r" "$p" pkts) | $(stat "$w" "$r" "$p" cpu) | $(stat "$w" "$r" "$p" us) |"
			done
		done
	done
	echo
	echo "| workload | rules | b/a pps | goal | b/a msg/s | b/a CPU us/packet | c/b pps | c/b CPU us/packet |"
	echo "|---|---|---|---|---|---|---|---|"
	for w in short bulk; do
		for r in every release; do
			pr=$(ratio "$(stat "$w" "$r" b pps)" "$(stat "$w" "$r" a pps)")
			if [ "$r" = every ]; then g=">= 0.8 $(met "$pr")"; else g="-"; fi
			echo "| $(label "$w") | $r | $pr | $g | $(ratio "$(stat "$w" "$r" b msgs)" "$(stat "$w" "$r" a msgs)") | $(ratio "$(stat "$w" "$r" b us)" "$(stat "$w" "$r" a us)") | $(ratio "$(stat "$w" "$r" c pps)" "$(stat "$w" "$r" b pps)") | $(ratio "$(stat "$w" "$r" c us)" "$(stat "$w" "$r" b us)") |"
		done
	done
	echo
	echo "With release, b/a pps compares different packet counts (b queues only the"
	echo "envelope of each flow); msg/s is the figure that matters there."
	if [ -n "${NFQ_BASELINE_SRC:-}" ]; then
		echo
		echo "Against the inspector of ${NFQ_BASELINE_NAME:-$NFQ_BASELINE_SRC} (program o), same run:"
		echo
		echo "| workload | rules | b/o pps | b/o CPU us/packet | c/o pps | c/o CPU us/packet |"
		echo "|---|---|---|---|---|---|"
		for w in short bulk; do
			for r in every release; do
				echo "| $(label "$w") | $r | $(ratio "$(stat "$w" "$r" b pps)" "$(stat "$w" "$r" o pps)") | $(ratio "$(stat "$w" "$r" b us)" "$(stat "$w" "$r" o us)") | $(ratio "$(stat "$w" "$r" c pps)" "$(stat "$w" "$r" o pps)") | $(ratio "$(stat "$w" "$r" c us)" "$(stat "$w" "$r" o us)") |"
			done
		done
	fi
	echo
	echo "### First contact: holding the RCPT until the policy lookup answers"
	echo
	echo "\`bench/smtp_load -s S -m $LAT_N -l $SHORT_LEN -t rcpt@bench.example 10.0.25.2:25\`"
	echo "from the client, deployed rules, one message per connection; **c**: the domain"
	echo "known, nothing held; **f**: block mode, every connection a first contact, its"
	echo "RCPT held until the lookup answers, which the driver does at the next turn of"
	echo "the loop: the figures are the cost of holding, to which a real lookup adds its"
	echo "own time (DNS, and the HTTPS fetch of a policy). Median of $REPS run(s)."
	echo
	echo "| program | connection latency, median ms (1 at a time) | p90 ms | msg/s (1 at a time) | msg/s (10 in parallel) |"
	echo "|---|---|---|---|---|"
	for p in a c f; do
		echo "| $p | $(latstat "$p" 1 5) | $(latstat "$p" 1 6) | $(latstat "$p" 1 4) | $(latstat "$p" 10 4) |"
	done
	echo
	echo "| | f/c latency median | f - c latency median, ms | f/c p90 | f/c msg/s (1) | f/c msg/s (10) | c/a latency median |"
	echo "|---|---|---|---|---|---|---|"
	echo "| first contact | $(ratio "$(latstat f 1 5)" "$(latstat c 1 5)") | $(awk -v a="$(latstat f 1 5)" -v b="$(latstat c 1 5)" 'BEGIN { printf "%.3f", a - b }') | $(ratio "$(latstat f 1 6)" "$(latstat c 1 6)") | $(ratio "$(latstat f 1 4)" "$(latstat c 1 4)") | $(ratio "$(latstat f 10 4)" "$(latstat c 10 4)") | $(ratio "$(latstat c 1 5)" "$(latstat a 1 5)") |"
	echo
	echo "Reproduce: \`sudo bash bench/suite_nfq.sh $MODE out.md\`. Each run is"
	echo "\`smtp-source -s S -m N -l SIZE -f sender@client.example -t rcpt@bench.example"
	echo "-M client.example 10.0.25.2:25\` from the client namespace (short: S=$SHORT_S N=$SHORT_N"
	echo "SIZE=$SHORT_LEN; bulk: S=$BULK_S N=$BULK_N SIZE=$BULK_LEN) against"
	echo "\`smtp-sink -u nobody -m 1000 10.0.25.2:25 1024\`; the rules are"
	echo "\`scripts/nfq-iptables.sh add 0\`, for \"every packet\" followed by"
	echo "\`iptables -D STSPROXY_NFQ -m mark --mark $MARK -j CONNMARK --set-mark $MARK\` and"
	echo "\`iptables -D STSPROXY_NFQ -m connmark --mark $MARK -j ACCEPT\`."
	echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); kernel $(uname -r)"
	if [ -s "$PROF" ]; then
		kern=$(awk -F '\t' '$2 ~ /kernel/ { print $1 }' "$DIR/dso.txt")
		echo
		echo "Profile of b (\`perf record -F 2999 -p PID\` over one short-session run, every"
		echo "packet queued): ${kern:-?} of its samples are in the kernel - receiving the"
		echo "netlink messages and, inside the verdict's sendto(), reinjecting the packet"
		echo "through forwarding and the receiver's TCP stack, which a pays just the same."
		echo "The busiest user-space symbols (parsing, reassembly and detection included):"
		echo
		echo '```'
		cat "$PROF"
		echo '```'
	fi
	echo
	echo "Fixed after profiling: nfq/nfq.c sized its verdict buffers (and its receive"
	echo "buffer) with MNL_SOCKET_BUFFER_SIZE, which calls sysconf() at every use - twice"
	echo "per verdict message and per read. Before, \`__sysconf\` and \`__getpagesize\` took"
	echo "0.60% + 0.11% of b's samples, more than the detector's own functions apart from"
	echo "flow_table_input; now the buffers have fixed sizes and they are gone from the"
	echo "profile. Parsing, reassembly and detection were already a small share (about"
	echo "2-3% of b's samples), so no change there was worth its risk."
} >"$OUTMD"
echo "# nfq results (workload rules program rep msgs secs packets cpu_ticks):"
cat "$RES"
echo "# first contact (program sessions rep msgs_per_s lat_median_ms lat_p90_ms):"
cat "$LAT"
