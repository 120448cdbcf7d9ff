#!/bin/bash
# ops_daemon.sh - the daemon as operators run it: systemd notifications,
# privilege drop, metrics, the control socket, and the signals (SIGUSR1
# reopens the logs, SIGHUP reloads or refuses a broken file, SIGTERM
# drains). Runs on loopback only, as root.
set -u
: "${STSPROXY:?path of the stsproxy binary}"
PY=${LAB_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d /tmp/stsops.XXXXXX)
chmod 0755 "$tmp"
pid=
npid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	[ -n "$npid" ] && kill "$npid" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $1"; }
notok() {
	echo "not ok - $1"
	fails=$((fails + 1))
}
check() {
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else notok "$name"; fi
}
wait_for() { # seconds, command...
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A stand-in for systemd's notification socket: one datagram a line.
"$PY" - "$tmp/notify.sock" "$tmp/notify.log" <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
import os
os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        data = s.recv(4096)
        log.write(data.decode(errors="replace").replace("\n", " ") + "\n")
PYEOF
npid=$!
wait_for 5 test -S "$tmp/notify.sock"

port=$(free_port)
mport=$(free_port)
mkdir -p "$tmp/state"
write_conf() { # mode
	cat >"$tmp/stsproxy.conf" <<EOC
listen = [ "127.0.0.1:$port" ];
state_dir = "$tmp/state";
user = "nobody";
mode = "$1";
workers = 2;
timeouts = { drain = 3; };
log = { file = "$tmp/stsproxy.log"; events = "$tmp/events.json"; level = "debug"; };
tls = { client_starttls = false; };
policies = ( { domain = "partner.example"; mode = "enforce"; mx = [ "*.partner.example" ]; } );
metrics = { listen = "127.0.0.1:$mport"; };
control = { socket = "$tmp/state/control.sock"; };
EOC
}
write_conf enforce
touch "$tmp/stsproxy.log" "$tmp/events.json"
chmod 0666 "$tmp/stsproxy.log" "$tmp/events.json"

NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=2000000 WATCHDOG_PID= \
	"$STSPROXY" -c "$tmp/stsproxy.conf" 2>"$tmp/stderr" &
pid=$!
export WATCHDOG_PID=$pid
check "READY=1 reaches systemd once listeners are up" wait_for 10 grep -q "READY=1" "$tmp/notify.log"
check "STATUS= reports the sessions" wait_for 5 grep -q "STATUS=sessions=0" "$tmp/notify.log"

# Privileges: nobody, with nothing but CAP_NET_ADMIN at most.
uid=$(awk '/^Uid:/ {print $2}' /proc/$pid/status)
capeff=$(awk '/^CapEff:/ {print $2}' /proc/$pid/status)
check "privileges dropped to nobody" test "$uid" = "$(id -u nobody)"
check "no capability but CAP_NET_ADMIN is left" test "$((16#$capeff & ~(1 << 12)))" -eq 0
check "state_dir belongs to the daemon's user" test "$(stat -c %U "$tmp/state")" = nobody

# A session through the proxy (not intercepted: answered 554 and counted as refused).
check "a direct connection is refused as not intercepted" bash -c \
	"exec 3<>/dev/tcp/127.0.0.1/$port; head -c 3 <&3 | grep -q 554"

# Metrics in the Prometheus text format.
"$PY" - "$mport" >"$tmp/metrics.out" 2>&1 <<'PYEOF'
import re, sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
families, samples = {}, 0
for line in body.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        assert name not in families, "family twice: " + name
        families[name] = kind
    elif line.startswith("#") or not line:
        continue
    else:
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf|-Inf)$', line)
        assert m, "bad sample: " + line
        samples += 1
for need in ["stsproxy_sessions_total", "stsproxy_sessions_active", "stsproxy_messages_relayed_total",
             "stsproxy_recipients_blocked_total", "stsproxy_policy_cache_entries",
             "stsproxy_upstream_tls_total", "stsproxy_upstream_tls_resumed_total"]:
    assert need in families, "missing " + need
assert 'stsproxy_recipients_blocked_total{result="starttls-not-supported"} 0' in body
print("families=%d samples=%d" % (len(families), samples))
PYEOF
check "metrics scrape parses as Prometheus text ($(tail -1 "$tmp/metrics.out"))" grep -q "^families=" "$tmp/metrics.out"

# The control socket.
ctl() { "$STSPROXY" ctl -s "$tmp/state/control.sock" "$@"; }
check "ctl status" bash -c "$(declare -f ctl); STSPROXY='$STSPROXY' tmp='$tmp'; ctl status | grep -q '^version '"
check "ctl cache list answers" ctl cache list
check "ctl cache flush of an unknown domain answers" bash -c "$(declare -f ctl); STSPROXY='$STSPROXY' tmp='$tmp'; ctl cache flush nothing.example | grep -q 'was not cached'"
check "ctl refuses an unknown command" bash -c "$(declare -f ctl); STSPROXY='$STSPROXY' tmp='$tmp'; ! ctl bogus"

# SIGUSR1 reopens the log files after rotation.
mv "$tmp/stsproxy.log" "$tmp/stsproxy.log.1"
touch "$tmp/stsproxy.log" && chmod 0666 "$tmp/stsproxy.log"
kill -USR1 "$pid"
check "SIGUSR1 reopens the log" wait_for 5 grep -q "event=reopen status=ok" "$tmp/stsproxy.log"

# SIGHUP: a broken file is refused and the old configuration stays.
echo "mode = ;" >>"$tmp/stsproxy.conf"
kill -HUP "$pid"
check "SIGHUP refuses a broken file" wait_for 5 grep -q "event=reload status=refused" "$tmp/stsproxy.log"
check "the daemon is still running" kill -0 "$pid"
check "RELOADING=1 then READY=1" bash -c "grep -q RELOADING=1 '$tmp/notify.log'"
# A valid change is taken for new sessions.
write_conf monitor
kill -HUP "$pid"
check "SIGHUP reloads a valid file" wait_for 5 grep -q "event=reload status=ok" "$tmp/stsproxy.log"
check "the old configuration drains away" wait_for 10 grep -q "event=reload status=drained" "$tmp/stsproxy.log"
check "still serving after the reload" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; head -c 3 <&3 | grep -q 554"

# SIGTERM drains: an idle session is told 421 and the daemon exits 0.
exec 5<>"/dev/tcp/127.0.0.1/$port"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM stops cleanly (exit 0)" test "$rc" -eq 0
check "STOPPING=1 reaches systemd" grep -q "STOPPING=1" "$tmp/notify.log"
check "stop logged" grep -q "event=stopped" "$tmp/stsproxy.log"
exec 5<&-
exit $((fails > 0))
