#!/bin/bash
# cli_config.sh - the binary's command line and configuration handling, run
# as an operator would: --version, --help, --check-config on the shipped
# example and on broken files, and a foreground start and stop.
set -u
: "${STSPROXY:?path of the stsproxy binary}"
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $1"; }
notok() {
	echo "not ok - $1"
	fails=$((fails + 1))
}
check() { # name, then a command that must succeed
	local name=$1
	shift
	if "$@"; then ok "$name"; else notok "$name"; fi
}

check "version prints the version" bash -c '"$STSPROXY" --version | grep -qx "stsproxy [0-9.]*"'
check "help names every command" bash -c '"$STSPROXY" --help | grep -q "check txt" && "$STSPROXY" --help | grep -q -- "--check-config"'
check "unknown option is a usage error (2)" bash -c '"$STSPROXY" --bogus 2>/dev/null; [ $? -eq 2 ]'
check "unknown command is a usage error (2)" bash -c '"$STSPROXY" bogus 2>/dev/null; [ $? -eq 2 ]'
check "--check-config with a command is a usage error (2)" \
	bash -c '"$STSPROXY" --check-config check txt "v=STSv1; id=1;" 2>/dev/null; [ $? -eq 2 ]'
check "options before a command reach it" \
	bash -c '"$STSPROXY" -c /nonexistent/x.conf ctl status 2>&1 | grep -q "/nonexistent/x.conf"'

check "shipped example validates" bash -c '"$STSPROXY" -c stsproxy.conf.example --check-config >/dev/null'

expect_error() { # name, file text, expected message after "FILE:"
	local name=$1 text=$2 want=$3 out rc
	printf '%s' "$text" >"$tmp/bad.conf"
	out=$("$STSPROXY" -c "$tmp/bad.conf" --check-config 2>&1)
	rc=$?
	if [ $rc -eq 1 ] && [ "$out" = "stsproxy: $tmp/bad.conf:$want" ]; then
		ok "$name"
	else
		notok "$name (rc=$rc, got: $out)"
	fi
}
expect_error "unknown key names file line key" $'listen = [ "127.0.0.1:10025" ];\nlistne = 1;\n' \
	"2: listne: unknown key"
expect_error "wrong type names file line key" $'listen = [ "127.0.0.1:10025" ];\ndns = {\n timeout = true;\n};\n' \
	"3: dns.timeout: expected an integer"
expect_error "out of range names file line key" $'listen = [ "127.0.0.1:10025" ];\nworkers = 100;\n' \
	"2: workers: 100 is out of range (1 to 64)"
expect_error "bad MX pattern in a local policy" \
	$'listen = [ "127.0.0.1:10025" ];\npolicies = (\n { domain = "p.example"; mode = "enforce"; mx = [ "mx.*.p.example" ]; }\n);\n' \
	'3: policies[0].mx[0]: "mx.*.p.example" is not a valid MX pattern (RFC 8461 section 4.1)'
out=$("$STSPROXY" -c "$tmp/missing.conf" --check-config 2>&1)
if [ $? -eq 1 ] && [ "$out" = "stsproxy: $tmp/missing.conf:0: cannot open: No such file or directory" ]; then
	ok "missing file is an error"
else
	notok "missing file is an error (got: $out)"
fi

# --check-config names a directory the daemon will create, and one it cannot.
expect_dirs() { # name, state_dir, expected exit status, expected line
	local out rc
	printf 'listen = [ "127.0.0.1:10025" ];\nstate_dir = "%s";\n' "$2" >"$tmp/dirs.conf"
	out=$("$STSPROXY" -c "$tmp/dirs.conf" --check-config 2>&1)
	rc=$?
	if [ $rc -eq "$3" ] && grep -qF "$4" <<<"$out"; then ok "$1"; else notok "$1 (rc=$rc, got: $out)"; fi
}
: >"$tmp/file"
expect_dirs "--check-config names a directory it will create" "$tmp/new/state" 0 \
	"state_dir: $tmp/new/state does not exist; it will be created at start"
expect_dirs "--check-config names a path that cannot be a directory" "$tmp/file/state" 1 \
	"state_dir: $tmp/file is not a directory"

# The daemon runs in the foreground and stops cleanly on SIGTERM.
printf 'listen = [ "127.0.0.1:10025" ];\nstate_dir = "%s";\nlog = { events = "%s/events.json"; };\n' "$tmp" "$tmp" >"$tmp/run.conf"
"$STSPROXY" -c "$tmp/run.conf" 2>"$tmp/stderr" &
pid=$!
for _ in $(seq 50); do grep -q "event=start version=" "$tmp/stderr" && break; sleep 0.1; done
check "daemon starts in the foreground" kill -0 "$pid"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "daemon stops cleanly on SIGTERM" test "$rc" -eq 0
check "daemon logs start and stop" grep -q "event=stopped" "$tmp/stderr"

exit $((fails > 0))
