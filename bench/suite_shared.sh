#!/bin/bash
# suite_shared.sh smoke|full OUTFILE.md - three gateways that share one
# Redis (the shared group) against three that do not, in the same run, on
# the same lab: policy fetches per domain at the policy host, the total
# time, and the latency of a lookup answered from Redis beside a cold fetch
# and a local hit.
#
# Lab: unbound (10.0.53.2), nginx serving every policy over HTTPS with the
# lab CA (10.0.44.2), redis-server (10.0.63.2) and three gateways a, b, c
# (10.0.1{1,2,3}.2), each an stsproxy with its socketmap listener on its
# own 127.0.0.1:8461, asked by bench/smap_load from the gateway's namespace.
# Runs, each on K domains of its own (no resolver cache carried over)
# and gateways started afresh (empty caches, Redis flushed):
#   indep-seq   no Redis; a, then b, then c, one lookup at a time
#   shared-seq  with Redis; a, then b, then c, then b again: a's lookups
#               are cold fetches, b's and c's second-level hits (answered
#               from Redis), b's second pass first-level (local) hits
#   indep-concN no Redis; a, b and c at once, 16 lookups in flight each,
#               each gateway in an order of its own (a forward, b backward,
#               c from the middle), as mail for a domain arrives here or there
#   shared-concN with Redis; the same: a gateway that misses Redis while
#               another is still fetching fetches too (the race)
#   (ROUNDS rounds of these two, the order alternating: a median and the
#   ratio of each round)
#   shared-same with Redis, the three at once in the same order: the worst
#               case of the race (every domain in flight everywhere at once)
# The policy host's access log gives the fetches of each domain.
#
# Writes a markdown section to OUTFILE.md. Needs root, redis-server and
# nginx; everything lives in lab namespaces and is removed on exit,
# failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
export LAB_DNS_TTL=300
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

if [ "$MODE" = full ]; then
	K=200 ROUNDS=3
else
	K=8 ROUNDS=1
fi
PORT=8461
REDIS=10.0.63.2
GWS="a b c"
RUNS="indep-seq shared-seq"
for i in $(seq 1 "$ROUNDS"); do
	if [ $((i % 2)) = 1 ]; then
		RUNS="$RUNS indep-conc$i shared-conc$i"
	else
		RUNS="$RUNS shared-conc$i indep-conc$i"
	fi
done
RUNS="$RUNS shared-same"
[ -x "$STSPROXY" ] || {
	echo "suite_shared: no $STSPROXY (build it first)" >&2
	exit 1
}
command -v redis-server >/dev/null || {
	echo "suite_shared: redis-server is missing (sh scripts/deps.sh lab)" >&2
	exit 1
}

bench_init bshared
. "$BENCH_ROOT/tests/lab/redis.sh"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
lab_router
lab_host dns 10.0.53.2/24
lab_host https 10.0.44.2/24
lab_host redis "$REDIS/24"
gw_i() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }
for g in $GWS; do
	lab_host "gw$g" "10.0.1$(gw_i "$g").2/24"
done
lab_ca
CA=$LAB_DIR/ca/ca.crt
LAB_HTTPS_ADDRS=10.0.44.2
# One set of K domains per run.
for r in $RUNS; do
	: >"$LAB_DIR/$r.domains"
	for i in $(seq 1 "$K"); do
		d=d$i.$r.shared.example
		lab_sts_publish "$d" "id$i" enforce "mx.$d" >/dev/null
		lab_dns_record "$d MX 10 mx.$d." "mx.$d A 10.0.25.2"
		echo "$d" >>"$LAB_DIR/$r.domains"
	done
done
lab_https https 10.0.44.2
lab_dns dns 10.0.53.2
lab_redis_start redis "$REDIS"
ACCESS=$LAB_DIR/logs/https-https.log
LOAD=$LAB_DIR/smap_load
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$LOAD" "$BENCH_ROOT/bench/smap_load.c"

# gw_start G RUN SHARED - gateway G's stsproxy for RUN, its state empty,
# with Redis when SHARED is 1 (then it waits until the connections are up).
gw_start() {
	local g=$1 d="$LAB_DIR/gw$1-$2" shared=''
	mkdir -p "$d/state"
	[ "$3" = 1 ] && shared="shared = { redis = \"$REDIS:6379\"; };"
	cat >"$d/stsproxy.conf" <<EOF
state_dir = "$d/state";
workers = 2;
log = { level = "warn"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 5; };
tls = { ca_file = "$CA"; };
sts = { refresh = false; };
socketmap = { listen = [ "127.0.0.1:$PORT" ]; };
control = { socket = "$d/control.sock"; };
$shared
EOF
	lab__start "stsproxy-$g" "gw$g" "$STSPROXY" -c "$d/stsproxy.conf"
	lab__await "stsproxy-$g" "gw$g" 127.0.0.1 "$PORT"
	[ "$3" = 1 ] || return 0
	lab_wait_for 10 eval "\"$STSPROXY\" -c \"$d/stsproxy.conf\" ctl status | grep -q '^shared ok '" || {
		echo "suite_shared: gateway $g is not connected to Redis" >&2
		return 1
	}
}

# load G FILE ARGS... - smap_load in gateway G's namespace over the domains of FILE.
load() {
	local g=$1 f=$2
	shift 2
	lab_exec "gw$g" "$LOAD" "$@" -f "$f" 127.0.0.1 "$PORT"
}

# order G RUN - RUN's domains in gateway G's order (a file): a forward, b
# backward, c from the middle; all forward in shared-same.
order() {
	local f=$LAB_DIR/$2.domains o=$LAB_DIR/$2.$1.domains
	case $2-$1 in
	shared-same-* | *-a) cp "$f" "$o" ;;
	*-b) tac "$f" >"$o" ;;
	*-c) { tail -n +$((K / 2 + 1)) "$f"; head -n $((K / 2)) "$f"; } >"$o" ;;
	esac
	echo "$o"
}

# fetches RUN - "total min max n1 n2 n3 n4+" of the policy fetches of RUN's
# domains in the policy host's access log (n1: domains fetched once, ...).
fetches() {
	awk '
		FILENAME != "-" && FNR == NR { n[$1] = 0; next }
		/GET \/\.well-known\/mta-sts\.txt/ {
			for (i = 1; i <= NF; i++)
				if ($i ~ /^host=mta-sts\./) {
					h = substr($i, 14)
					if (h in n) n[h]++
				}
		}
		END {
			min = -1
			for (d in n) {
				t += n[d]
				if (min < 0 || n[d] < min) min = n[d]
				if (n[d] > max) max = n[d]
				c[n[d] > 4 ? 4 : n[d]]++
			}
			printf "%d %d %d %d %d %d %d\n", t, min, max, c[1] + 0, c[2] + 0, c[3] + 0, c[4] + 0
		}' "$LAB_DIR/$1.domains" - <"$ACCESS"
}

# now_ms - wall clock in milliseconds.
now_ms() { date +%s%3N; }

bad=0
# check RUN G LINE - every answer of a smap_load line was the policy.
check() {
	local n ok
	n=$(bench_field "$3" requests) ok=$(bench_field "$3" ok)
	echo "# $1 $2: $3"
	if [ "$ok" != "$K" ] || [ "$n" != "$K" ]; then
		echo "suite_shared: $1, gateway $2: $ok of $n answers were the policy ($K asked)" >&2
		bad=1
	fi
}

for r in $RUNS; do
	shared=0
	case $r in shared-*) shared=1 ;; esac
	lab_redis_cli redis "$REDIS" FLUSHALL >/dev/null
	for g in $GWS; do gw_start "$g" "$r" "$shared"; done
	t0=$(now_ms)
	case $r in
	*-seq)
		for g in $GWS; do
			line=$(load "$g" "$LAB_DIR/$r.domains" -c 1 -1)
			check "$r" "$g" "$line"
			eval "L_${r//-/_}_$g=\"$line\""
		done
		if [ "$shared" = 1 ]; then
			line=$(load b "$LAB_DIR/$r.domains" -c 1 -1)
			check "$r" b2 "$line"
			L_local="$line"
		fi
		;;
	*)
		for g in $GWS; do
			load "$g" "$(order "$g" "$r")" -c 16 -1 >"$LAB_DIR/$r-$g.out" &
		done
		wait
		for g in $GWS; do check "$r" "$g" "$(cat "$LAB_DIR/$r-$g.out")"; done
		;;
	esac
	eval "T_${r//-/_}=$(($(now_ms) - t0))"
	# nginx writes its access log line after the response: let it land
	sleep 0.2
	eval "F_${r//-/_}=\"$(fetches "$r")\""
	echo "# $r: $(eval echo "\$T_${r//-/_}") ms; fetches total min max n1 n2 n3 n4+: $(eval echo "\$F_${r//-/_}")"
	for g in $GWS; do lab__stop "stsproxy-$g"; done
done

# Fetches: every domain exactly 3 times without Redis, once with it one
# gateway after the other; at least once and at most 3 times at once.
# shellcheck disable=SC2086
{
	set -- $F_indep_seq
	[ "$1" = $((3 * K)) ] && [ "$2" = 3 ] && [ "$3" = 3 ]
	set -- $F_shared_seq
	[ "$1" = "$K" ] && [ "$2" = 1 ] && [ "$3" = 1 ]
	for i in $(seq 1 "$ROUNDS"); do
		set -- $(eval echo "\$F_indep_conc$i")
		[ "$1" = $((3 * K)) ] && [ "$2" = 3 ] && [ "$3" = 3 ]
		set -- $(eval echo "\$F_shared_conc$i")
		[ "$2" -ge 1 ] && [ "$3" -le 3 ]
	done
	set -- $F_shared_same
	[ "$2" -ge 1 ] && [ "$3" -le 3 ]
} || {
	echo "suite_shared: fetch counts not as expected" >&2
	bad=1
}

ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
lat() { echo "$(ms "$(bench_field "$1" p50_us)") / $(ms "$(bench_field "$1" p99_us)")"; }
per() { awk -v t="$1" -v k="$K" 'BEGIN { printf "%.2f", t / k }'; }
# median "V..." - the median of numbers, one a line or a word (the lower
# one of an even count).
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# round_ratios - shared/independent time of each round at once, one a line.
round_ratios() {
	local i
	for i in $(seq 1 "$ROUNDS"); do
		bench_ratio "$(eval echo "\$T_shared_conc$i")" "$(eval echo "\$T_indep_conc$i")"
		echo
	done
}
# round_fetches - fetches per domain with Redis of each round at once, one a line.
round_fetches() {
	local i
	for i in $(seq 1 "$ROUNDS"); do
		per "$(eval echo "\$F_shared_conc$i" | cut -d' ' -f1)"
		echo
	done
}
# shellcheck disable=SC2086
row() { # RUN TIME "total min max n1 n2 n3 n4"
	set -- "$1" "$2" $3
	echo "| $1 | $(per "$3") | $4 / $5 | $6 / $7 / $8 | $2 |"
}
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "## Shared state: three gateways with and without Redis (suite_shared.sh, $MODE)"
	echo
	echo "Three stsproxy gateways in lab namespaces, each asked through its socketmap"
	echo "listener by \`bench/smap_load\`, first without a \`shared\` group, then sharing one"
	echo "redis-server (another namespace, over TCP), in the same run; each run looks up"
	echo "$K domains of its own (an \`enforce\` policy each, DNS TTL 300 s) from empty caches."
	echo "Fetches are counted in the policy host's (nginx) access log. Load average"
	echo "(1, 5, 15 min) at the start: $LOAD_START, at the end: $LOAD_END ($(nproc) cores,"
	echo "shared with other work)."
	echo
	echo "| run | fetches per domain | min / max | domains fetched 1 / 2 / 3 times | total time, ms |"
	echo "|---|---|---|---|---|"
	row "independent, one gateway after the other" "$T_indep_seq" "$F_indep_seq"
	row "shared, one gateway after the other" "$T_shared_seq" "$F_shared_seq"
	for i in $(seq 1 "$ROUNDS"); do
		row "independent, the three at once (16 in flight each), round $i" \
			"$(eval echo "\$T_indep_conc$i")" "$(eval echo "\$F_indep_conc$i")"
		row "shared, the three at once (16 in flight each), round $i" \
			"$(eval echo "\$T_shared_conc$i")" "$(eval echo "\$F_shared_conc$i")"
	done
	row "shared, the three at once in the same order" "$T_shared_same" "$F_shared_same"
	echo
	echo "At once, each gateway takes the domains in an order of its own (a forward,"
	echo "b backward, c from the middle), except in the last row. Time shared/independent:"
	echo "one after the other $(bench_ratio "$T_shared_seq" "$T_indep_seq"); at once, per round"
	echo "$(round_ratios | sort -n | tr '\n' ' ')(sorted), median $(median "$(round_ratios)");"
	echo "fetches per domain with Redis at once, median of the rounds $(median "$(round_fetches)")."
	echo
	echo "Latency of one lookup (one at a time, socketmap request to answer), p50 / p99, ms:"
	echo
	echo "| lookup | p50 / p99, ms | ratio of p50 to the second-level hit |"
	echo "|---|---|---|"
	echo "| cold: TXT, HTTPS fetch, MX and addresses (gateway a, shared run) | $(lat "$L_shared_seq_a") | $(bench_ratio "$(bench_field "$L_shared_seq_a" p50_us)" "$(bench_field "$L_shared_seq_b" p50_us)") |"
	echo "| cold, the resolver already warm (gateway b, independent run) | $(lat "$L_indep_seq_b") | $(bench_ratio "$(bench_field "$L_indep_seq_b" p50_us)" "$(bench_field "$L_shared_seq_b" p50_us)") |"
	echo "| second level: TXT, Redis GET, MX and addresses (gateway b, shared run) | $(lat "$L_shared_seq_b") | 1.00 |"
	echo "| second level (gateway c, shared run) | $(lat "$L_shared_seq_c") | $(bench_ratio "$(bench_field "$L_shared_seq_c" p50_us)" "$(bench_field "$L_shared_seq_b" p50_us)") |"
	echo "| first level: the same domains again at gateway b, from memory | $(lat "$L_local") | $(bench_ratio "$(bench_field "$L_local" p50_us)" "$(bench_field "$L_shared_seq_b" p50_us)") |"
	echo
	echo "Gateway a is always first: the lab resolver has nothing cached for it; b and c"
	echo "find the resolver's cache warm, as gateways sharing a site resolver would. The"
	echo "second level replaces only the HTTPS fetch: the TXT id and the MX set are still"
	echo "asked of the resolver (docs/SECURITY.md). With the three"
	echo "gateways at once, the first to ask Redis for a policy id claims its fetch;"
	echo "another that asks while the claim stands waits for the policy the first"
	echo "stores, asking every 10 ms, but only until \`shared.wait_max\` (50 ms): a fetch"
	echo "slower than that (under load, with 48 lookups in flight) lets it fetch too."
	echo "The counts above are what remains of that race, at most one fetch per"
	echo "gateway and domain, as without sharing."
	echo "Reproduce: \`sudo bash bench/suite_shared.sh $MODE out.md\`."
} >"$OUTMD"
[ "$bad" -eq 0 ]
