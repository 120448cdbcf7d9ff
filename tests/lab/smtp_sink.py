#!/usr/bin/python3
"""Receiving SMTP server for the test lab.

A real ESMTP server (aiosmtpd) that plays the part of a destination MX:
it offers STARTTLS with the certificate it is given, and stores every
accepted message so a test can check exactly what the receiver got.

Each message becomes two files in MAILDIR/new/, written through
MAILDIR/tmp/ and renamed so a reader never sees a partial file:

  <stamp>.json  envelope and connection facts: peer, helo, mail_from,
                rcpt_tos (+ their ESMTP parameters), tls (bool),
                tls_version, tls_cipher, sni, size, sha256
  <stamp>.eml   the message exactly as received: the DATA bytes after
                dot-unstuffing (RFC 5321 section 4.5.2), CRLFs kept,
                without the terminating "." line

The .json is renamed into place before the .eml, so once the .eml
exists its metadata is there too.

With --max-messages-per-connection N it limits messages per connection
as some MX hosts do: the MAIL after the Nth message of a connection is
answered 421 and the connection closed.
"""

import argparse
import asyncio
import hashlib
import json
import logging
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP

log = logging.getLogger("smtp_sink")


class Sink:
    def __init__(self, maildir, reject_rcpt, tempfail_rcpt, reject_data,
                 max_per_conn=0):
        self.maildir = maildir
        self.max_per_conn = max_per_conn
        self.reject_rcpt = reject_rcpt
        self.tempfail_rcpt = tempfail_rcpt
        self.reject_data = reject_data
        self.seq = 0
        for sub in ("tmp", "new"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.max_per_conn and \
                getattr(session, "lab_msgs", 0) >= self.max_per_conn:
            # Closed once the reply is written (it is, before the next turn).
            asyncio.get_running_loop().call_soon(server.transport.close)
            log.info("421 at MAIL after %d messages from %s",
                     session.lab_msgs, session.peer)
            return "421 4.7.0 Too many messages on this connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        for pat in self.tempfail_rcpt:
            if pat in address:
                return "451 4.3.0 temporary failure for %s" % address
        for pat in self.reject_rcpt:
            if pat in address:
                return "550 5.1.1 no such user %s" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reject_data:
            return "554 5.6.0 message refused"
        data = envelope.original_content or b""
        self.seq += 1
        stamp = "%.6f-%d-%04d" % (time.time(), os.getpid(), self.seq)
        tls = session.ssl is not None
        meta = {
            "peer": list(session.peer) if session.peer else None,
            "helo": session.host_name,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "tls": tls,
            "tls_version": None,
            "tls_cipher": None,
            "sni": None,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if tls:
            obj = session.ssl.get("ssl_object")
            if obj is not None:
                meta["tls_version"] = obj.version()
                cipher = obj.cipher()
                meta["tls_cipher"] = cipher[0] if cipher else None
                meta["sni"] = getattr(obj, "lab_sni", None)
        tmp = os.path.join(self.maildir, "tmp")
        new = os.path.join(self.maildir, "new")
        with open(os.path.join(tmp, stamp + ".json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        with open(os.path.join(tmp, stamp + ".eml"), "wb") as f:
            f.write(data)
        os.rename(os.path.join(tmp, stamp + ".json"),
                  os.path.join(new, stamp + ".json"))
        os.rename(os.path.join(tmp, stamp + ".eml"),
                  os.path.join(new, stamp + ".eml"))
        log.info("stored %s from=%s rcpt=%s tls=%s size=%d", stamp,
                 envelope.mail_from, ",".join(envelope.rcpt_tos), tls,
                 len(data))
        session.lab_msgs = getattr(session, "lab_msgs", 0) + 1
        return "250 2.0.0 OK queued as %s" % stamp


def sni_callback(obj, name, ctx):
    # Remember what the client asked for; the certificate stays the same.
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
    ap.add_argument("--hostname", required=True,
                    help="name used in the banner and EHLO reply")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--no-starttls", action="store_true",
                    help="do not offer STARTTLS")
    ap.add_argument("--require-tls", action="store_true",
                    help="answer 530 to mail commands before STARTTLS")
    ap.add_argument("--reject-rcpt", action="append", default=[],
                    metavar="SUBSTR", help="550 for matching recipients")
    ap.add_argument("--tempfail-rcpt", action="append", default=[],
                    metavar="SUBSTR", help="451 for matching recipients")
    ap.add_argument("--reject-data", action="store_true",
                    help="554 after DATA")
    ap.add_argument("--max-messages-per-connection", type=int, default=0,
                    metavar="N", help="421 and close at the MAIL after N "
                    "messages on one connection")
    args = ap.parse_args()

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")

    ctx = None
    if not args.no_starttls:
        if not args.cert or not args.key:
            ap.error("--cert and --key are required unless --no-starttls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.sni_callback = sni_callback
    if args.require_tls and ctx is None:
        ap.error("--require-tls needs STARTTLS")

    handler = Sink(args.maildir, args.reject_rcpt, args.tempfail_rcpt,
                   args.reject_data, args.max_messages_per_connection)

    def factory():
        return SMTP(handler, hostname=args.hostname, ident="lab-smtp",
                    tls_context=ctx, require_starttls=args.require_tls,
                    decode_data=False, enable_SMTPUTF8=True)

    async def serve():
        loop = asyncio.get_running_loop()
        hosts = [h for h in args.listen.split(",") if h]
        server = await loop.create_server(factory, host=hosts,
                                          port=args.port)
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(
                sig, lambda: stop.done() or stop.set_result(None))
        log.info("listening on %s port %d as %s starttls=%s",
                 args.listen, args.port, args.hostname, ctx is not None)
        await stop
        server.close()
        await server.wait_closed()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
