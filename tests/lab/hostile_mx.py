#!/usr/bin/python3
"""Scripted hostile SMTP server for the robustness tests.

Plays a destination MX that misbehaves in exactly one way, chosen with
--mode; apart from that one misbehaviour it is a correct ESMTP server
with STARTTLS (when --cert/--key are given) that stores the messages it
accepts like smtp_sink.py (MAILDIR/new/<stamp>.eml and .json).

Every connection and every command it receives is appended to --log, one
line each, so a test can check what the upstream side actually saw:

  <conn> CONNECT <peer>
  <conn> CMD <command line as received, non-printables escaped>
  <conn> TLS <version>              handshake completed
  <conn> DATA-BYTES <n>             message bytes received so far (at the end)
  <conn> EOD                        a strict CRLF.CRLF end of data was seen
  <conn> SMUGGLE <escaped ending>   a loose end of data was inside the message
  <conn> ACT <what>                 a scripted misbehaviour was carried out
  <conn> CLOSE                      the peer went away

Modes: normal, starttls-removed, starttls-454, starttls-554,
starttls-badcode, ehlo-refused, response-injection, rst-banner, rst-ehlo,
rst-mail, rst-rcpt, rst-data, rst-mid-data, rst-after-dot, silent,
silent-after-dot, flood-no-eol, huge-reply.
"""

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import sys
import time

MODES = (
    "normal", "starttls-removed", "starttls-454", "starttls-554",
    "starttls-badcode", "ehlo-refused", "response-injection", "rst-banner",
    "rst-ehlo", "rst-mail", "rst-rcpt", "rst-data", "rst-mid-data",
    "rst-after-dot", "silent", "silent-after-dot", "flood-no-eol",
    "huge-reply",
)

# Endings a lenient receiver might take for the end of data (SMTP
# smuggling, 2023). Only CRLF.CRLF is the real one (RFC 5321 4.1.1.4).
LOOSE_ENDINGS = (b"\n.\n", b"\r.\r", b"\r.\n", b"\n.\r")

MAX_LINE = 65536


def esc(b):
    """A received line made printable for the log, bytes kept visible."""
    out = []
    for c in b:
        if 0x20 <= c < 0x7F and c != 0x5C:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None

    def __call__(self, conn, what):
        line = "%d %s\n" % (conn, what)
        if self.f:
            self.f.write(line)
        else:
            sys.stderr.write(line)


class Conn:
    seq = 0

    def __init__(self, srv, reader, writer):
        Conn.seq += 1
        self.n = Conn.seq
        self.srv = srv
        self.args = srv.args
        self.log = srv.log
        self.r = reader
        self.w = writer
        self.tls = False
        self.helo = None
        self.mail_from = None
        self.rcpts = []

    def act(self, what):
        self.log(self.n, "ACT " + what)

    def rst(self, what):
        """Abort with a TCP reset (SO_LINGER 0), nothing flushed."""
        self.act("rst " + what)
        sock = self.w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        self.w.transport.abort()
        raise ConnectionAbortedError(what)

    async def send(self, text):
        data = text.encode() if isinstance(text, str) else text
        self.w.write(data)
        await self.w.drain()

    async def reply(self, text):
        await self.send(text + "\r\n")

    async def hang(self, what):
        """Keep the connection open and say nothing until the peer leaves."""
        self.act(what)
        while await self.r.read(65536):
            pass
        raise ConnectionAbortedError(what)

    async def readline(self):
        try:
            line = await self.r.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            if e.partial:
                self.log(self.n, "PARTIAL " + esc(e.partial[:200]))
            return None
        except asyncio.LimitOverrunError:
            self.log(self.n, "LINE-TOO-LONG")
            return None
        return line

    async def run(self):
        mode = self.args.mode
        peer = self.w.get_extra_info("peername")
        self.log(self.n, "CONNECT %s" % (peer[0] if peer else "?"))
        if mode == "rst-banner":
            self.rst("banner")
        if mode == "silent":
            await self.hang("silent")
        await self.reply("220 %s ESMTP hostile" % self.args.hostname)
        if mode == "flood-no-eol":
            self.act("flood")
            chunk = b"A" * 65536
            for _ in range(10 * 1024 * 1024 // len(chunk)):
                self.w.write(chunk)
                await self.w.drain()
            await self.hang("flood done")
        while True:
            line = await self.readline()
            if line is None:
                return
            self.log(self.n, "CMD " + esc(line.rstrip(b"\r\n")))
            words = line.strip().split(None, 1)
            verb = words[0].upper().decode("latin-1") if words else ""
            arg = words[1].decode("utf-8", "replace") if len(words) > 1 else ""
            if not line.endswith(b"\r\n"):
                await self.reply("500 5.5.2 bare LF")
                continue
            handler = getattr(self, "do_" + verb, None)
            if handler is None:
                await self.reply("502 5.5.1 unknown command")
                continue
            if await handler(arg) is False:
                return

    # --- commands ---------------------------------------------------------

    def caps(self):
        caps = ["PIPELINING", "8BITMIME", "SIZE 10485760",
                "ENHANCEDSTATUSCODES", "SMTPUTF8"]
        if (self.args.cert and not self.tls and
                self.args.mode != "starttls-removed"):
            caps.append("STARTTLS")
        return caps

    async def do_EHLO(self, arg):
        mode = self.args.mode
        if mode == "rst-ehlo":
            self.rst("ehlo")
        if mode == "ehlo-refused":
            await self.reply("500 5.5.1 EHLO not understood")
            return
        self.helo = arg
        self.mail_from, self.rcpts = None, []
        if mode == "huge-reply":
            self.act("huge reply")
            lines = ["250-%s" % self.args.hostname]
            lines += ["250-X-FILLER-%06d %s" % (i, "x" * 40)
                      for i in range(5000)]
            lines.append("250 SMTPUTF8")
            await self.send("\r\n".join(lines) + "\r\n")
            return
        caps = self.caps()
        text = ["250-%s" % self.args.hostname]
        text += ["250-" + c for c in caps[:-1]]
        text.append("250 " + caps[-1])
        await self.send("\r\n".join(text) + "\r\n")

    async def do_HELO(self, arg):
        self.helo = arg
        self.mail_from, self.rcpts = None, []
        await self.reply("250 %s" % self.args.hostname)

    async def do_STARTTLS(self, arg):
        mode = self.args.mode
        if not self.args.cert or self.tls or mode == "starttls-removed":
            await self.reply("502 5.5.1 not offered")
            return
        if mode == "starttls-454":
            await self.reply("454 4.7.0 TLS not available due to temporary reason")
            return
        if mode == "starttls-554":
            await self.reply("554 5.7.0 TLS refused")
            return
        if mode == "starttls-badcode":
            await self.reply(self.args.badcode)
            return
        if mode == "response-injection":
            # One write: the 220 and a forged reply behind it (CVE-2011-0411).
            self.act("inject")
            await self.send(b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")
        else:
            await self.reply("220 2.0.0 Ready to start TLS")
        try:
            await self.w.start_tls(self.srv.ssl_ctx)
        except (ssl.SSLError, OSError, ConnectionError) as e:
            self.log(self.n, "TLS-FAILED " + esc(str(e).encode()[:200]))
            return False
        self.tls = True
        sslobj = self.w.get_extra_info("ssl_object")
        self.log(self.n, "TLS %s" % (sslobj.version() if sslobj else "?"))
        self.helo, self.mail_from, self.rcpts = None, None, []

    async def do_MAIL(self, arg):
        if self.args.mode == "rst-mail":
            self.rst("mail")
        self.mail_from = arg
        self.rcpts = []
        await self.reply("250 2.1.0 sender ok")

    async def do_RCPT(self, arg):
        if self.args.mode == "rst-rcpt":
            self.rst("rcpt")
        if self.mail_from is None:
            await self.reply("503 5.5.1 need MAIL")
            return
        self.rcpts.append(arg)
        await self.reply("250 2.1.5 recipient ok")

    async def do_RSET(self, arg):
        self.mail_from, self.rcpts = None, []
        await self.reply("250 2.0.0 reset")

    async def do_NOOP(self, arg):
        await self.reply("250 2.0.0 ok")

    async def do_QUIT(self, arg):
        await self.reply("221 2.0.0 bye")
        return False

    async def do_DATA(self, arg):
        mode = self.args.mode
        if mode == "rst-data":
            self.rst("data")
        if self.mail_from is None or not self.rcpts:
            await self.reply("503 5.5.1 need RCPT")
            return
        await self.reply("354 go ahead")
        buf = bytearray()
        while True:
            chunk = await self.r.read(65536)
            if not chunk:
                self.log(self.n, "DATA-BYTES %d" % len(buf))
                for e in LOOSE_ENDINGS:
                    if e in buf:
                        self.log(self.n, "SMUGGLE " + esc(e))
                return False
            buf += chunk
            if mode == "rst-mid-data" and len(buf) >= self.args.rst_after:
                self.log(self.n, "DATA-BYTES %d" % len(buf))
                self.rst("mid-data")
            if buf.startswith(b".\r\n") or b"\r\n.\r\n" in buf:
                break
        if buf.startswith(b".\r\n"):
            body, rest = b"", bytes(buf[3:])
        else:
            i = buf.index(b"\r\n.\r\n")
            body, rest = bytes(buf[:i + 2]), bytes(buf[i + 5:])
        self.log(self.n, "DATA-BYTES %d" % len(body))
        for e in LOOSE_ENDINGS:
            if e in body.replace(b"\r\n.\r\n", b""):
                self.log(self.n, "SMUGGLE " + esc(e))
        self.log(self.n, "EOD")
        if rest:
            # Pipelined commands after the dot: put them back for the reader.
            self.r._buffer[0:0] = rest
        if mode == "rst-after-dot":
            self.rst("after-dot")
        if mode == "silent-after-dot":
            await self.hang("silent after dot")
        # RFC 5321 section 4.5.2: remove the transparency dots.
        lines = body.split(b"\r\n")
        body = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)
        self.store(body)
        self.mail_from, self.rcpts = None, []
        await self.reply("250 2.0.0 queued")

    def store(self, body):
        d = self.args.maildir
        if not d:
            return
        self.srv.stored += 1
        stamp = "%.6f-%d-%d" % (time.time(), os.getpid(), self.srv.stored)
        sslobj = self.w.get_extra_info("ssl_object")
        meta = {
            "helo": self.helo, "mail_from": self.mail_from,
            "rcpt_tos": self.rcpts, "tls": self.tls,
            "tls_version": sslobj.version() if sslobj else None,
            "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
        }
        for ext, data in ((".json", json.dumps(meta).encode()), (".eml", body)):
            tmp = os.path.join(d, "tmp", stamp + ext)
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(d, "new", stamp + ext))


class Server:
    def __init__(self, args):
        self.args = args
        self.log = Log(args.log)
        self.stored = 0
        self.ssl_ctx = None
        if args.cert:
            self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_ctx.load_cert_chain(args.cert, args.key)
        if args.maildir:
            for sub in ("tmp", "new"):
                os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)

    async def handle(self, reader, writer):
        c = Conn(self, reader, writer)
        try:
            await c.run()
        except (ConnectionError, OSError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self.log(c.n, "CLOSE")
            try:
                writer.close()
            except Exception:
                pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", required=True, choices=MODES)
    ap.add_argument("--listen", default="127.0.0.1",
                    help="comma list of addresses")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--hostname", default="mx.hostile.test")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--maildir")
    ap.add_argument("--log", help="command log (default: stderr)")
    ap.add_argument("--badcode", default="999 x",
                    help="reply line to STARTTLS in starttls-badcode mode")
    ap.add_argument("--rst-after", type=int, default=65536,
                    help="rst-mid-data: reset after this many message bytes")
    args = ap.parse_args()
    srv = Server(args)
    server = await asyncio.start_server(
        srv.handle, host=args.listen.split(","), port=args.port,
        limit=MAX_LINE, reuse_address=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    sys.stderr.write("hostile_mx: mode %s on %s port %d\n" %
                     (args.mode, args.listen, args.port))
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main())
