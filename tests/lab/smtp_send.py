#!/usr/bin/python3
"""Byte-exact SMTP client for the test lab.

Sends one message whose content is exactly the bytes of a file: no
headers added, line endings untouched, only the dot-stuffing of RFC 5321
section 4.5.2 applied on the wire. (swaks and smtplib both append or
rewrite line endings, which defeats checks that a relay passes the
message through unchanged.) If the content does not end in CRLF, CRLF is
added before the final "." as the protocol requires.

The transcript goes to stderr ("C: " / "S: " lines). Exit status:
0 message accepted, 1 rejected (any 4xx/5xx), 2 connection or TLS error,
3 STARTTLS required (--starttls) but not offered.
"""

import argparse
import socket
import ssl
import sys


class Fail(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--helo", default="client.lab.test")
    ap.add_argument("--from", dest="mail_from", required=True)
    ap.add_argument("--to", action="append", required=True)
    ap.add_argument("--data", required=True, help="file with the message")
    ap.add_argument("--starttls", action="store_true",
                    help="use STARTTLS; fail if it is not offered")
    ap.add_argument("--cafile", help="verify the server certificate")
    ap.add_argument("--sni", help="name to send and verify (with --cafile)")
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()

    with open(args.data, "rb") as f:
        content = f.read()

    sock = None
    rfile = None

    def reply():
        lines = []
        while True:
            line = rfile.readline(65536)
            if not line:
                raise Fail(2, "connection closed")
            sys.stderr.write("S: " + line.decode("latin-1").rstrip("\r\n") + "\n")
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[0][:3]), lines

    def send(data, show=None):
        sys.stderr.write("C: " + (show or data.decode("latin-1").rstrip("\r\n")) + "\n")
        sock.sendall(data)

    def cmd(line, want):
        send(line.encode() + b"\r\n")
        code, lines = reply()
        if code // 100 != want:
            raise Fail(1, "%s: %d" % (line.split()[0], code))
        return lines

    try:
        sock = socket.create_connection((args.server, args.port),
                                        timeout=args.timeout)
        rfile = sock.makefile("rb")
        code, _ = reply()
        if code != 220:
            raise Fail(1, "banner %d" % code)
        lines = cmd("EHLO " + args.helo, 2)
        if args.starttls:
            if not any(l[4:].strip().upper() == b"STARTTLS" for l in lines):
                raise Fail(3, "STARTTLS not offered")
            cmd("STARTTLS", 2)
            if args.cafile:
                ctx = ssl.create_default_context(cafile=args.cafile)
                ctx.check_hostname = bool(args.sni)
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=args.sni)
            rfile = sock.makefile("rb")
            sys.stderr.write("-- TLS %s %s\n" % (sock.version(),
                                                 sock.cipher()[0]))
            cmd("EHLO " + args.helo, 2)
        cmd("MAIL FROM:<%s>" % args.mail_from, 2)
        for rcpt in args.to:
            cmd("RCPT TO:<%s>" % rcpt, 2)
        cmd("DATA", 3)
        body = content
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        # RFC 5321 section 4.5.2: a line starting with "." gets one more.
        stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l
                               for l in body.split(b"\r\n"))
        send(stuffed + b".\r\n", "<%d bytes of data>" % len(content))
        code, _ = reply()
        if code // 100 != 2:
            raise Fail(1, "DATA: %d" % code)
        try:
            cmd("QUIT", 2)
        except (Fail, OSError):
            pass
        return 0
    except Fail as e:
        sys.stderr.write("smtp_send: %s\n" % e)
        return e.code
    except (OSError, ssl.SSLError) as e:
        sys.stderr.write("smtp_send: %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
