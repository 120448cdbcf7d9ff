#!/usr/bin/python3
"""Scripted SMTP client for the robustness tests.

Runs a dialogue given as steps on the command line and prints every reply
line it receives ("S: ..."), so a test can check exactly what a mailer
would have seen, including replies it should never see. Steps:

  '>LINE'    send LINE + CRLF, then read one (multi-line) reply
  '=BYTES'   send BYTES as they are (Python escapes: \\r \\n \\x00 ...)
  '<'        read one reply
  '%SIZE'    send a message body of SIZE octets in 4 KiB CRLF lines,
             stopping early when a reply arrives (it is printed)
  '~SECS'    sleep
  'TLS'      start TLS (no certificate check) after a 220

At the end the connection is read until the peer closes it or --linger
seconds pass: "CLOSED" is printed when the peer closed, "OPEN" when not.
A read that times out prints "TIMEOUT"; a reset prints "RESET".
Exit status 0, or 2 when the connection could not be made.
"""

import argparse
import codecs
import select
import socket
import ssl
import sys
import time


class Closed(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--linger", type=float, default=2)
    ap.add_argument("--no-banner", action="store_true",
                    help="do not read the banner first")
    ap.add_argument("steps", nargs="*")
    args = ap.parse_args()

    out = sys.stdout
    try:
        sock = socket.create_connection((args.server, args.port),
                                        timeout=args.timeout)
    except OSError as e:
        out.write("ERR connect: %s\n" % e)
        return 2
    buf = bytearray()

    def fill(timeout):
        sock.settimeout(timeout)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise TimeoutError()
        except ConnectionResetError:
            raise ConnectionResetError()
        if not data:
            raise Closed()
        buf.extend(data)

    def line(timeout):
        end = time.time() + timeout
        while b"\n" not in buf:
            if len(buf) > 1 << 20:
                l = bytes(buf)
                buf.clear()
                return l
            fill(max(0.01, end - time.time()))
        i = buf.index(b"\n") + 1
        l = bytes(buf[:i])
        del buf[:i]
        return l

    def reply(timeout=None):
        while True:
            l = line(timeout or args.timeout)
            out.write("S: %s\n" % l.decode("latin-1").rstrip("\r\n")[:300])
            out.flush()
            if len(l) < 4 or l[3:4] != b"-":
                return

    def send(data):
        try:
            sock.sendall(data)
        except OSError as e:
            # The peer closed while we were sending: show what it said first.
            out.write("-- send failed: %s\n" % e)
            try:
                while True:
                    reply(1)
            except (Closed, TimeoutError, OSError):
                pass
            raise

    try:
        if not args.no_banner:
            reply()
        for st in args.steps:
            if st.startswith(">"):
                out.write("C: %s\n" % st[1:][:200])
                send(st[1:].encode("utf-8", "surrogateescape") + b"\r\n")
                reply()
            elif st.startswith("="):
                raw = codecs.escape_decode(st[1:].encode("utf-8"))[0]
                out.write("C: <%d raw bytes>\n" % len(raw))
                send(raw)
            elif st == "<":
                reply()
            elif st.startswith("%"):
                size = int(st[1:])
                sent = 0
                piece = b"x" * 4094 + b"\r\n"
                out.write("C: <body of %d bytes>\n" % size)
                while sent < size:
                    r, _, _ = select.select([sock], [], [], 0)
                    if r:
                        out.write("C: <stopped after %d bytes>\n" % sent)
                        reply()
                        break
                    send(piece)
                    sent += len(piece)
            elif st.startswith("~"):
                time.sleep(float(st[1:]))
            elif st == "TLS":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(sock)
                out.write("-- TLS %s\n" % sock.version())
            else:
                out.write("ERR bad step %r\n" % st)
                return 2
        end = time.time() + args.linger
        try:
            while time.time() < end:
                if buf:
                    reply(args.linger)
                    continue
                fill(max(0.01, end - time.time()))
        except TimeoutError:
            pass
        out.write("OPEN\n")
    except Closed:
        if buf:
            out.write("S: %s\n" % bytes(buf).decode("latin-1")[:300])
        out.write("CLOSED\n")
    except TimeoutError:
        out.write("TIMEOUT\n")
    except ConnectionResetError:
        out.write("RESET\n")
    except (BrokenPipeError, ssl.SSLError, OSError) as e:
        out.write("ERR %s\n" % e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
