#!/bin/bash
# fault_injection.sh - stsproxy when the things it depends on fail: DNS
# down, slow or SERVFAIL; policy hosts that are slow, huge or redirect; a
# full disk under the policy cache; the daemon killed with SIGKILL in the
# middle of a message; slowloris clients; a burst of 10,000 connections
# far beyond max_sessions; and DNS answers truncated (TC bit) over UDP,
# with TCP served or refused.
#
#   client 10.0.1.2 --- inet (router = gateway: stsproxy on :10025 behind
#                             scripts/iptables-gateway.sh REDIRECT)
#                         |-- dns 10.0.53.2 (unbound), https 10.0.44.2 (nginx)
#                         `-- mx1 10.0.25.2 (hostile_mx.py --mode normal, TLS)
#
# Every domain below has the MX mx.good.example (10.0.25.2, a certificate
# from the lab CA); names are under "example." because libunbound answers
# "test." from a built-in local zone. state_dir is a small tmpfs so that
# it can be filled. Expected results follow RFC 8461 sections 3.3 and 5
# and RFC-NOTES: no answer and nothing cached defers (451 4.4.3); a cached
# policy is applied when DNS fails; a failed fetch with nothing cached
# delivers as without a policy and reports sts-policy-fetch-error. A
# truncated UDP answer must be retried over TCP (RFC 1035 section 4.2.2,
# RFC 7766): the policy is found; when TCP is refused too, the lookup is
# a temporary failure, never "no policy".
#
# Needs root. STSPROXY names the binary (default build/stsproxy). Prints
# "ok - name" / "not ok - name", exits non-zero when a check failed, and
# finishes in well under four minutes. Everything is removed on any exit.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STSPROXY=${STSPROXY:-$ROOT/build/stsproxy}
. "$ROOT/tests/lab/lab.sh"

[ -x "$STSPROXY" ] || {
	echo "# no binary $STSPROXY (set STSPROXY)" >&2
	exit 1
}

lab_init fault
PY=$(lab__python)
STATE=$LAB_DIR/state
T0=$SECONDS

# The tmpfs must be gone before lab teardown removes LAB_DIR.
fault_exit() {
	local rc=$?
	set +e
	umount -l "$STATE" 2>/dev/null
	(exit "$rc")
	lab__on_exit
}
trap fault_exit EXIT

. "$ROOT/tests/lab/checks.sh"

# --- the lab -----------------------------------------------------------------

lab_router
lab_host client 10.0.1.2/24
lab_host dns 10.0.53.2/24
lab_host https 10.0.44.2/24
lab_host mx1 10.0.25.2/24

lab_ca
lab_cert mx mx.good.example >/dev/null
MX_CRT=$LAB_CRT MX_KEY=$LAB_KEY

lab_https https 10.0.44.2
for d in cached fresh1 fresh2 fresh3 slow huge redir diskfull trunc1 trunc2 trunc3 truncc; do
	lab_dns_record "$d.example MX 10 mx.good.example."
done
lab_dns_record "mx.good.example A 10.0.25.2"
lab_sts_publish cached.example c1 enforce mx.good.example
for d in fresh1 fresh2 fresh3; do
	lab_sts_publish $d.example f1 enforce mx.good.example
done
# diskfull.example names an MX pattern the certificate does not match: its
# policy, once fetched, must keep blocking even when it cannot be stored.
lab_sts_publish diskfull.example d1 enforce mx.other.example
lab_sts_publish slow.example s1 enforce mx.good.example
lab_sts_publish huge.example h1 enforce mx.good.example
lab_sts_publish redir.example r1 enforce mx.good.example
# trunc1/truncc name an MX pattern the certificate does not match: 451 4.7.5
# proves their policy was found; a lookup taken for "no policy" would relay.
lab_sts_publish trunc1.example t1 enforce mx.other.example
lab_sts_publish trunc2.example t2 enforce mx.good.example
lab_sts_publish trunc3.example t3 enforce mx.good.example
lab_sts_publish truncc.example tc1 enforce mx.other.example
lab_dns dns 10.0.53.2

lab__start hmx mx1 "$PY" "$LAB_SRC/hostile_mx.py" --mode normal --listen 10.0.25.2 \
	--hostname mx.good.example --cert "$MX_CRT" --key "$MX_KEY" \
	--maildir "$LAB_DIR/mail" --log "$LAB_DIR/mx.log"
lab__await hmx mx1 10.0.25.2 25

GW_IF=h-client
lab_exec inet env LAN_IF=$GW_IF PROXY_PORT=10025 sh "$ROOT/scripts/iptables-gateway.sh" add

mkdir -p "$STATE"
mount -t tmpfs -o size=4m tmpfs "$STATE"
EVENTS=$LAB_DIR/events.json
PLOG=$LAB_DIR/logs/stsproxy.log
cat >"$LAB_DIR/stsproxy.conf" <<EOF
state_dir = "$STATE";
listen = [ "0.0.0.0:10025" ];
interception = "redirect";
clients = [ "10.0.1.0/24" ];
workers = 1;
max_sessions = 100;
timeouts = { connect = 3; greeting = 5; command = 5; starttls = 5;
             data_block = 5; data_done = 5; };
log = { level = "${LOG_LEVEL:-info}"; events = "$EVENTS"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 2; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; client_starttls = false; };
sts = { fetch_timeout = 3; refresh = false; defer_on_dns_failure = true; };
EOF

PROXY_PID=""
# proxy_start - start the daemon and wait for event=start (new log lines only).
proxy_start() {
	local before
	before=$(grep -c 'event=start version=' "$PLOG" 2>/dev/null || true)
	lab__start stsproxy inet "$STSPROXY" -c "$LAB_DIR/stsproxy.conf"
	PROXY_PID=$(cat "$LAB_DIR/run/stsproxy.pid")
	for _ in $(seq 1 100); do
		[ "$(grep -c 'event=start version=' "$PLOG" 2>/dev/null || true)" -gt "${before:-0}" ] && return 0
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# stsproxy did not start" >&2
	tail -n 20 "$PLOG" >&2
	return 1
}
proxy_start

talk() {
	lab_exec client "$PY" "$LAB_SRC/smtp_talk.py" --server 10.0.25.2 "$@" 2>&1 || true
}
EVMARK=0
mark() { EVMARK=$(wc -l <"$EVENTS" 2>/dev/null || echo 0); }
events_since() { tail -n +$((EVMARK + 1)) "$EVENTS" 2>/dev/null || true; }
check() { # NAME OUT MUST_REGEX [MUST_NOT_REGEX]
	local why=""
	printf '%s\n' "$2" | grep -Eq -- "$3" || why="wanted /$3/"
	if [ -n "${4:-}" ] && printf '%s\n' "$2" | grep -Eq -- "$4"; then
		why="$why; must not see /$4/"
	fi
	[ -z "$why" ] && ok "$1" || notok "$1" "$why" "$2"
}
check_event() { # NAME REGEX
	local ev
	ev=$(events_since)
	printf '%s\n' "$ev" | grep -Eq -- "$2" && ok "$1" || notok "$1" "no event /$2/" "$ev"
}
# send RCPT_DOMAIN SUBJECT - one whole message; prints the transcript.
send() {
	talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" ">RCPT TO:<b@$1>" \
		">DATA" "=Subject: $2\\r\\n\\r\\nhello\\r\\n.\\r\\n" "<" ">QUIT"
}
delivered() { grep -l "^Subject: $1" "$LAB_DIR"/mail/new/*.eml 2>/dev/null | wc -l; }
fd_count() { ls "/proc/$PROXY_PID/fd" 2>/dev/null | wc -l; }
dns_down() { lab__stop dns-dns; }

# --- warm-up: cached.example is fetched, cached and delivered ------------------

out=$(send cached.example warmup)
check "warmup: enforce policy fetched, delivered over TLS" "$out" '^S: 250 2\.0\.0 queued'
out=$(talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" ">RCPT TO:<b@truncc.example>" \
	">QUIT")
check "warmup: truncc.example policy fetched and cached (451 4.7.5)" "$out" '^S: 451 4\.7\.5' \
	'^S: 250 2\.1\.5'
sleep 0.5
FD0=$(fd_count)
echo "# baseline fds=$FD0"

# --- DNS faults -----------------------------------------------------------------

# fault NAME FRESH_DOMAIN - with the fault in place: nothing cached defers,
# the cached policy is applied.
fault() {
	local name=$1 fresh=$2 t
	mark
	t=$SECONDS
	out=$(talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" ">RCPT TO:<b@$fresh>" \
		">QUIT")
	check "rfc8461_5_${name}_no_cache: 451 4.4.3 (defer), never 250 for the recipient" \
		"$out" '^S: 451 4\.4\.3' '^S: 250 2\.1\.5'
	check_event "rfc8461_5_${name}_no_cache: policy-defer event" '"event": ?"policy-defer"'
	out=$(send cached.example "cached-$name")
	check "rfc8461_3_3_${name}_cached: the cached enforce policy is applied, delivered" \
		"$out" '^S: 250 2\.0\.0 queued'
	echo "# $name took $((SECONDS - t)) s"
}

dns_down
fault dns_down fresh1.example
lab_dns_reload

lab_dns_drop _mta-sts.fresh2.example
lab_dns_drop _mta-sts.cached.example
lab_dns_reload
fault dns_slow fresh2.example

lab_dns_clear_special
lab_dns_servfail _mta-sts.fresh3.example
lab_dns_servfail _mta-sts.cached.example
lab_dns_reload
fault dns_servfail fresh3.example
lab_dns_clear_special
lab_dns_reload

# --- policy host faults: nothing cached, so delivery as without a policy -----------

body=$LAB_DIR/policy-ok.txt
printf 'version: STSv1\nmode: enforce\nmx: mx.good.example\nmax_age: 86400\n' >"$body"
lab_https_raw slow.example 200 text/plain "$body" rate=8
big=$LAB_DIR/policy-huge.txt
{
	cat "$body"
	head -c 1048576 /dev/zero | tr '\0' '#'
	echo
} >"$big"
lab_https_raw huge.example 200 text/plain "$big"
lab_https_raw redir.example 301 text/plain "$body" location=https://mta-sts.cached.example/.well-known/mta-sts.txt

for d in slow huge redir; do
	mark
	t=$SECONDS
	out=$(send $d.example "fetch-$d")
	check "rfc8461_3_3_fetch_$d: delivered as without a policy" "$out" \
		'^S: 250 2\.0\.0 queued'
	check_event "rfc8461_3_3_fetch_$d: event sts-policy-fetch-error/invalid, reported" \
		'"result_type": ?"sts-policy-(fetch-error|invalid)"'
	[ $((SECONDS - t)) -le 8 ] && ok "rfc8461_3_3_fetch_$d: bounded in time ($((SECONDS - t)) s)" ||
		notok "rfc8461_3_3_fetch_$d: bounded in time" "$((SECONDS - t)) s"
done

# --- disk full under the cache ---------------------------------------------------

dd if=/dev/zero of="$STATE/fill" bs=64k 2>/dev/null || true
mark
out=$(talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" \
	">RCPT TO:<b@diskfull.example>" ">QUIT")
check "disk_full: fetched policy enforced (451 4.7.5)" "$out" '^S: 451 4\.7\.5' '^S: 250 2\.1\.5'
out=$(talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" \
	">RCPT TO:<b@diskfull.example>" ">QUIT")
check "disk_full: still enforced from memory on the next session" "$out" '^S: 451 4\.7\.5' \
	'^S: 250 2\.1\.5'
kill -0 "$PROXY_PID" 2>/dev/null && ok "disk_full: the daemon keeps running" ||
	notok "disk_full: the daemon keeps running" "$(tail -n 20 "$PLOG")"
grep -Eiq '(err|warn).*(cache|sqlite|disk|full|space)' "$PLOG" &&
	ok "disk_full: the cache write error is logged" ||
	notok "disk_full: the cache write error is logged" "$(tail -n 20 "$PLOG")"
rm -f "$STATE/fill"

# --- SIGKILL in the middle of a message -------------------------------------------

before=$(delivered killed)
talk --timeout 10 ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" \
	">RCPT TO:<b@cached.example>" ">DATA" '=Subject: killed\r\n\r\npart one\r\n' "~3" \
	'=part two\r\n.\r\n' "<" >"$LAB_DIR/killed.out" &
TALK=$!
for _ in $(seq 1 50); do
	grep -q '^S: 354' "$LAB_DIR/killed.out" && break
	sleep 0.1
done
kill -KILL "$PROXY_PID"
wait "$TALK" || true
out=$(cat "$LAB_DIR/killed.out")
check "sigkill_mid_data: the mailer sees the connection drop, never 250" \
	"$(printf '%s\n' "$out" | sed -n '/^S: 354/,$p')" '^(CLOSED|RESET|ERR|S: 421)' \
	'^S: 250 2\.0\.0'
[ "$(delivered killed)" = "$before" ] && ok "sigkill_mid_data: nothing delivered" ||
	notok "sigkill_mid_data: nothing delivered" "$(cat "$LAB_DIR/mx.log" | tail -n 20)"
proxy_start
grep 'event=start version=' "$PLOG" | tail -n 1 | grep -Eq 'cached_policies=[1-9]' &&
	ok "sigkill_restart: the policy cache survived ($(grep 'event=start version=' "$PLOG" | tail -n 1 | grep -o 'cached_policies=[0-9]*'))" ||
	notok "sigkill_restart: the policy cache survived" "$(grep 'event=start version=' "$PLOG" | tail -n 1)"
lab_dns_servfail _mta-sts.cached.example
lab_dns_reload
out=$(send cached.example killed)
check "sigkill_restart: the retry is delivered (policy from the disk cache)" "$out" \
	'^S: 250 2\.0\.0 queued'
[ "$(delivered killed)" = 1 ] && ok "sigkill_restart: delivered exactly once" ||
	notok "sigkill_restart: delivered exactly once" "$(delivered killed) copies"
lab_dns_clear_special
lab_dns_reload
sleep 0.5
FD0=$(fd_count)
echo "# baseline after restart fds=$FD0"

# --- slowloris ----------------------------------------------------------------------

lab_exec client "$PY" - 10.0.25.2 30 20 >"$LAB_DIR/slowloris.out" 2>&1 <<'EOF' &
# N connections trickling one byte a second, never a line end; print how
# long each stayed open.
import asyncio, sys, time
host, n, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

async def one():
    t = time.time()
    try:
        r, w = await asyncio.open_connection(host, 25)
        await r.readline()
        while time.time() - t < limit:
            w.write(b"N")
            await w.drain()
            try:
                if await asyncio.wait_for(r.read(4096), 1.0) == b"":
                    break
            except asyncio.TimeoutError:
                pass
    except (OSError, ConnectionError):
        pass
    return time.time() - t

async def main():
    d = await asyncio.gather(*(one() for _ in range(n)))
    print("open_max=%.1f open_min=%.1f" % (max(d), min(d)))

asyncio.run(main())
EOF
SLOW=$!
sleep 2
out=$(send cached.example during-slowloris)
check "slowloris: another session is served meanwhile" "$out" '^S: 250 2\.0\.0 queued'
wait "$SLOW" || true
res=$(cat "$LAB_DIR/slowloris.out")
max=$(printf '%s\n' "$res" | sed -n 's/.*open_max=\([0-9]*\).*/\1/p')
if [ -n "$max" ] && [ "$max" -lt 15 ]; then
	ok "rfc5321_4_5_3_2_slowloris: trickling clients closed by the command timeout ($res)"
else
	notok "rfc5321_4_5_3_2_slowloris: trickling clients closed by the command timeout" \
		"command timeout 5 s; clients still open after 20 s: $res"
fi

# --- a burst far beyond max_sessions ------------------------------------------------

sleep 1
BURST=10000
lab_exec client "$PY" - 10.0.25.2 $BURST >"$LAB_DIR/burst.out" 2>&1 <<'EOF' || true
# Open N connections at once, read each first line, hold them 3 s, close.
# Times: total (connect + first line; a connect waits for SYN retransmits
# while the listen backlog is full) and greet (first line after connect).
import asyncio, resource, sys, time
host, n = sys.argv[1], int(sys.argv[2])
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 500 if hard == resource.RLIM_INFINITY else min(n + 500, hard)
resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
res = {"220": 0, "421": 0, "other": 0, "err": 0}
total, greet = [], []

async def one():
    t = time.monotonic()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, 25), 15)
    except Exception:
        res["err"] += 1
        return
    c = time.monotonic()
    try:
        line = await asyncio.wait_for(r.readline(), 10)
        now = time.monotonic()
        total.append(now - t)
        greet.append(now - c)
        res[line[:3].decode() if line[:3] in (b"220", b"421") else "other"] += 1
        await asyncio.sleep(3)
    except Exception:
        res["err"] += 1
    w.close()

async def main():
    await asyncio.gather(*(one() for _ in range(n)))
    total.sort()
    p99 = total[int(len(total) * 0.99)] if total else 99.0
    print(" ".join("%s=%d" % kv for kv in res.items()),
          "slowest=%.1f p99=%.1f greet_max=%.1f" % (max(total or [99.0]), p99, max(greet or [99.0])))

asyncio.run(main())
EOF
res=$(cat "$LAB_DIR/burst.out")
echo "# burst: $res; listen queue overflows: $(lab_exec inet nstat -az TcpExtListenOverflows 2>/dev/null |
	awk '/ListenOverflows/ {print $2}')"
n220=$(printf '%s\n' "$res" | sed -n 's/.*220=\([0-9]*\).*/\1/p')
n421=$(printf '%s\n' "$res" | sed -n 's/.*421=\([0-9]*\).*/\1/p')
slowest=$(printf '%s\n' "$res" | sed -n 's/.*slowest=\([0-9]*\).*/\1/p')
greet=$(printf '%s\n' "$res" | sed -n 's/.*greet_max=\([0-9]*\).*/\1/p')
# Promptly: an accepted connection has its 421 within 3 s, and every
# connection its first line within 10 s of its first SYN (the client
# itself needs seconds to open 10,000 sockets; the listen backlog adds
# SYN retransmits of 1 and 2 s when it overflows).
if [ -n "$n220" ] && [ "$n220" -le 100 ] && [ "${n421:-0}" -ge $((BURST - 100 - BURST / 100)) ] &&
	[ "${greet:-99}" -lt 3 ] && [ "${slowest:-99}" -lt 10 ]; then
	ok "max_sessions_burst: at most 100 served, the rest 421 promptly ($res)"
else
	notok "max_sessions_burst: at most 100 served, the rest 421 promptly" "$res"
fi
kill -0 "$PROXY_PID" 2>/dev/null && ok "max_sessions_burst: the daemon stays up" ||
	notok "max_sessions_burst: the daemon stays up" "$(tail -n 20 "$PLOG")"
for _ in $(seq 1 40); do
	[ "$(fd_count)" -le $((FD0 + 2)) ] && break
	sleep 0.25
done
FD1=$(fd_count)
[ "$FD1" -le $((FD0 + 2)) ] && ok "max_sessions_burst: descriptors back to baseline ($FD1 vs $FD0)" ||
	notok "max_sessions_burst: descriptors back to baseline" "$FD1 vs $FD0"
out=$(send cached.example after-burst)
check "max_sessions_burst: sessions are served again afterwards" "$out" '^S: 250 2\.0\.0 queued'

# --- DNS answers truncated over UDP -------------------------------------------------

# A responder in the DNS namespace answers every UDP query with an empty
# truncated reply (TC set, RFC 1035 section 4.1.1); UDP port 53 is
# redirected to it while TCP port 53 still reaches unbound. The rules live
# in the DNS namespace and go with it.
cat >"$LAB_DIR/tc_dns.py" <<'EOF'
# Answer each UDP DNS query with its question only and TC=1; log one line
# per answer: "tc QNAME QTYPE".
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    qid, flags = struct.unpack("!HH", q[:4])
    i, labels = 12, []
    try:
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        i += 1
        qtype = struct.unpack("!H", q[i:i + 2])[0]
        question = q[12:i + 4]
    except (IndexError, struct.error):
        continue
    # QR, the query's opcode and RD, TC, RA; NOERROR; the question only.
    rflags = 0x8000 | (flags & 0x7900) | 0x0200 | 0x0080
    s.sendto(struct.pack("!HHHHHH", qid, rflags, 1, 0, 0, 0) + question, peer)
    print("tc %s %d" % (".".join(labels), qtype), flush=True)
EOF
lab__start tcdns dns "$PY" "$LAB_DIR/tc_dns.py" 10.0.53.2 5300
for _ in $(seq 1 50); do
	grep -q listening "$LAB_DIR/logs/tcdns.log" 2>/dev/null && break
	sleep 0.1
done
lab_exec dns iptables -t nat -A PREROUTING -p udp -d 10.0.53.2 --dport 53 -j REDIRECT --to-ports 5300
lab_exec dns conntrack -F >/dev/null 2>&1 || true
tc_seen() { grep -c "^tc .*$1" "$LAB_DIR/logs/tcdns.log" 2>/dev/null || true; }

# TCP served: libunbound retries over TCP and the policy is found.
mark
t=$SECONDS
out=$(talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" ">RCPT TO:<b@trunc1.example>" \
	">QUIT")
check "dns_truncated_tcp: policy found over TCP and enforced (451 4.7.5), never relayed" \
	"$out" '^S: 451 4\.7\.5' '^S: 250 2\.1\.5'
[ "$(tc_seen _mta-sts.trunc1.example)" -ge 1 ] &&
	ok "dns_truncated_tcp: the TXT query was answered truncated over UDP" ||
	notok "dns_truncated_tcp: the TXT query was answered truncated over UDP" \
		"$(tail -n 20 "$LAB_DIR/logs/tcdns.log")"
out=$(send trunc2.example trunc-tcp)
check "dns_truncated_tcp: a fresh enforce policy over TCP, delivered" "$out" \
	'^S: 250 2\.0\.0 queued'
# With UDP redirected to the responder, unbound only hears TCP.
grep -q '_mta-sts\.trunc2\.example\. TXT IN NOERROR' "$LAB_DIR/logs/dns-dns.log" &&
	[ "$(tc_seen _mta-sts.trunc2.example)" -ge 1 ] &&
	ok "dns_truncated_tcp: truncated over UDP, answered by unbound over TCP" ||
	notok "dns_truncated_tcp: truncated over UDP, answered by unbound over TCP" \
		"$(grep trunc2 "$LAB_DIR/logs/tcdns.log" "$LAB_DIR/logs/dns-dns.log" | tail -n 10)"
[ $((SECONDS - t)) -le 10 ] && ok "dns_truncated_tcp: bounded in time ($((SECONDS - t)) s)" ||
	notok "dns_truncated_tcp: bounded in time" "$((SECONDS - t)) s"

# TCP refused as well: a temporary failure, never "no policy".
lab_exec dns iptables -A INPUT -p tcp -d 10.0.53.2 --dport 53 -j REJECT --reject-with tcp-reset
lab_exec dns conntrack -F >/dev/null 2>&1 || true
mark
t=$SECONDS
out=$(talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" ">RCPT TO:<b@trunc3.example>" \
	">QUIT")
check "rfc8461_5_dns_truncated_no_tcp_no_cache: 451 4.4.3 (defer), never 250" "$out" \
	'^S: 451 4\.4\.3' '^S: 250 2\.1\.5'
check_event "rfc8461_5_dns_truncated_no_tcp_no_cache: policy-defer event" '"event": ?"policy-defer"'
[ "$(tc_seen _mta-sts.trunc3.example)" -ge 1 ] &&
	ok "dns_truncated_no_tcp: the TXT query was answered truncated over UDP" ||
	notok "dns_truncated_no_tcp: the TXT query was answered truncated over UDP" \
		"$(tail -n 20 "$LAB_DIR/logs/tcdns.log")"
out=$(talk ">EHLO client.lab.test" ">MAIL FROM:<a@sender.example>" ">RCPT TO:<b@truncc.example>" \
	">QUIT")
check "rfc8461_3_3_dns_truncated_no_tcp_cached: the cached policy still refuses (451), never relayed" \
	"$out" '^S: 451 4\.(7\.5|4\.3)' '^S: 250 2\.1\.5'
out=$(send cached.example trunc-cached)
check "rfc8461_3_3_dns_truncated_no_tcp_cached: the cached enforce policy is applied, delivered" \
	"$out" '^S: 250 2\.0\.0 queued'
[ $((SECONDS - t)) -le 15 ] && ok "dns_truncated_no_tcp: bounded in time ($((SECONDS - t)) s)" ||
	notok "dns_truncated_no_tcp: bounded in time" "$((SECONDS - t)) s"
kill -0 "$PROXY_PID" 2>/dev/null && ok "dns_truncated: the daemon keeps running" ||
	notok "dns_truncated: the daemon keeps running" "$(tail -n 20 "$PLOG")"
lab_exec dns iptables -D INPUT -p tcp -d 10.0.53.2 --dport 53 -j REJECT --reject-with tcp-reset
lab_exec dns iptables -t nat -D PREROUTING -p udp -d 10.0.53.2 --dport 53 -j REDIRECT --to-ports 5300
lab__stop tcdns

if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$PLOG"; then
	notok "daemon: no sanitizer report" "$(grep -E -A20 'Sanitizer|runtime error' "$PLOG")"
fi
lab_exec inet env LAN_IF=$GW_IF sh "$ROOT/scripts/iptables-gateway.sh" del
echo "# total $((SECONDS - T0)) s"
echo "1..$N"
[ "$FAILED" -eq 0 ] || {
	echo "# $FAILED of $N checks failed"
	exit 1
}
