# shellcheck shell=bash
# checks.sh - the TAP-style checks of the stand-alone namespace suites
# (tests/integration/*.sh), sourced after they set PY (python3).
#
#   ok NAME / notok NAME [DETAIL...]
#                                   one result line; N and FAILED count them;
#                                   each DETAIL (its last 30 lines) follows
#                                   as a TAP comment
#   check NAME CMD...               ok when CMD succeeds, else notok (a
#                                   suite may define its own check after)
#   die WHY                         set-up failed: FAILED=1 and exit 1 (the
#                                   suite's EXIT trap cleans up)
#   wait_port NS HOST PORT          up to 5 s for HOST:PORT to accept, from NS
#   stop_all PID...                 TERM, then KILL, the PIDs and every job
#
# The suite ends with: echo "1..$N"; [ "$FAILED" -eq 0 ].
N=0
FAILED=0

ok() {
	N=$((N + 1))
	echo "ok - $1"
}
notok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok - $1"
	shift
	local l
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/#   /' | tail -n 30; done
	return 0
}
die() {
	echo "# setup failed: $*" >&2
	FAILED=1
	exit 1
}
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else notok "$name"; fi
}
wait_port() {
	local _
	for _ in $(seq 1 50); do
		ip netns exec "$1" "$PY" -c "import socket; socket.create_connection(('$2', $3), 1)" \
			2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
stop_all() {
	local pid
	for pid in "$@" $(jobs -p); do
		kill -TERM "$pid" 2>/dev/null
	done
	sleep 0.2
	for pid in "$@" $(jobs -p); do
		kill -KILL "$pid" 2>/dev/null
	done
	wait 2>/dev/null
}
