#!/usr/bin/python3
"""smtp_bench.py - the SMTP ends of the relay and concurrency benchmarks.

  smtp_bench.py serve --listen IP --port N --name HOST --cert C --key K
      A small asyncio SMTP responder that offers STARTTLS and discards
      every message. Built to hold tens of thousands of sessions in one
      process, which a forking MTA cannot do cheaply.

  smtp_bench.py latency --host IP --port N --count K [--size BYTES]
      K sequential sessions; each is timed from connect() to the 250 after
      the final dot. Prints "latency_ms median=.. p90=.. ok=.. of=..".

  smtp_bench.py hold --host IP --port N --count K --ready FILE --go FILE
      Opens K sessions (banner + EHLO each), writes "held N" to FILE once
      all are up, waits until the file GO exists, then completes every
      session with MAIL/RCPT/DATA/QUIT. Prints "held=.. completed=.. lost=..".

The sender and recipient are sender@client.example and rcpt@bench.example.
"""
import argparse
import asyncio
import os
import socket
import ssl
import statistics
import sys
import time

FROM = b"sender@client.example"
RCPT = b"rcpt@bench.example"


# --- responder ------------------------------------------------------------


async def serve_session(reader, writer, name, ctx):
    tls = False

    async def reply(text):
        writer.write(text)
        await writer.drain()

    try:
        await reply(b"220 " + name + b" ESMTP bench\r\n")
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb == b"EHLO":
                caps = [name, b"PIPELINING", b"SIZE 104857600", b"8BITMIME"]
                if not tls:
                    caps.append(b"STARTTLS")
                out = b"".join(b"250-" + c + b"\r\n" for c in caps[:-1])
                await reply(out + b"250 " + caps[-1] + b"\r\n")
            elif verb == b"HELO":
                await reply(b"250 " + name + b"\r\n")
            elif verb == b"STAR" and not tls:
                await reply(b"220 2.0.0 ready\r\n")
                await writer.start_tls(ctx)
                tls = True
            elif verb == b"DATA":
                await reply(b"354 go ahead\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                await reply(b"250 2.0.0 discarded\r\n")
            elif verb == b"QUIT":
                await reply(b"221 2.0.0 bye\r\n")
                break
            else:
                await reply(b"250 2.0.0 ok\r\n")
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(args):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    name = args.name.encode()
    server = await asyncio.start_server(
        lambda r, w: serve_session(r, w, name, ctx),
        args.listen,
        args.port,
        backlog=4096,
        limit=1 << 20,
    )
    async with server:
        await server.serve_forever()


# --- clients --------------------------------------------------------------


async def read_reply(reader):
    """The code of one (possibly multi-line) reply, or 0 at end of stream."""
    while True:
        line = await reader.readline()
        if len(line) < 4:
            return 0
        if line[3:4] != b"-":
            return int(line[:3])


def body(size):
    head = b"Subject: bench\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    n = max(0, size - len(head))
    return head + line * (n // len(line)) + b"y" * (n % len(line)) + b"\r\n.\r\n"


async def hold(args):
    held = []
    lost = 0
    gate = asyncio.Semaphore(args.ramp)

    async def opener():
        nonlocal lost
        async with gate:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(args.host, args.port), args.timeout
                )
                if await asyncio.wait_for(read_reply(r), args.timeout) != 220:
                    raise OSError("no 220 banner")
                w.write(b"EHLO client.example\r\n")
                if await asyncio.wait_for(read_reply(r), args.timeout) != 250:
                    raise OSError("EHLO refused")
                held.append((r, w))
            except (OSError, asyncio.TimeoutError, ValueError):
                lost += 1

    await asyncio.gather(*(opener() for _ in range(args.count)))
    with open(args.ready + ".tmp", "w") as f:
        f.write("held %d lost %d\n" % (len(held), lost))
    os.rename(args.ready + ".tmp", args.ready)
    while not os.path.exists(args.go):
        await asyncio.sleep(0.1)

    msg = body(args.size)
    done = 0

    async def finish(r, w):
        nonlocal done
        async with gate:
            try:
                for cmd, want in (
                    (b"MAIL FROM:<" + FROM + b">\r\n", 250),
                    (b"RCPT TO:<" + RCPT + b">\r\n", 250),
                    (b"DATA\r\n", 354),
                    (msg, 250),
                ):
                    w.write(cmd)
                    if await asyncio.wait_for(read_reply(r), args.timeout) != want:
                        raise OSError("unexpected reply")
                done += 1
                w.write(b"QUIT\r\n")
                await asyncio.wait_for(read_reply(r), args.timeout)
            except (OSError, asyncio.TimeoutError, ValueError):
                pass
            finally:
                w.close()

    await asyncio.gather(*(finish(r, w) for r, w in held))
    print("held=%d completed=%d lost=%d" % (len(held), done, args.count - done))
    return 0 if done == args.count else 1


def sync_reply(f):
    while True:
        line = f.readline()
        if len(line) < 4:
            raise OSError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3])


def latency(args):
    msg = body(args.size)
    times = []
    for _ in range(args.count):
        t0 = time.perf_counter()
        try:
            s = socket.create_connection((args.host, args.port), timeout=args.timeout)
        except OSError:
            continue
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")
            ok = sync_reply(f) == 220
            for cmd, want in (
                (b"EHLO client.example\r\n", 250),
                (b"MAIL FROM:<" + FROM + b">\r\n", 250),
                (b"RCPT TO:<" + RCPT + b">\r\n", 250),
                (b"DATA\r\n", 354),
                (msg, 250),
            ):
                if not ok:
                    break
                s.sendall(cmd)
                ok = sync_reply(f) == want
            if ok:
                times.append((time.perf_counter() - t0) * 1000.0)
            s.sendall(b"QUIT\r\n")
            sync_reply(f)
        except OSError:
            pass
        finally:
            s.close()
    if not times:
        print("latency_ms median=nan p90=nan ok=0 of=%d" % args.count)
        return 1
    times.sort()
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    print(
        "latency_ms median=%.3f p90=%.3f ok=%d of=%d"
        % (statistics.median(times), p90, len(times), args.count)
    )
    return 0 if len(times) == args.count else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", required=True)
    s.add_argument("--port", type=int, default=25)
    s.add_argument("--name", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    for name in ("latency", "hold"):
        c = sub.add_parser(name)
        c.add_argument("--host", required=True)
        c.add_argument("--port", type=int, default=25)
        c.add_argument("--count", type=int, required=True)
        c.add_argument("--size", type=int, default=1024)
        c.add_argument("--timeout", type=float, default=60.0)
        if name == "hold":
            c.add_argument("--ready", required=True)
            c.add_argument("--go", required=True)
            c.add_argument("--ramp", type=int, default=256)
    args = p.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args))
        return 0
    if args.cmd == "hold":
        return asyncio.run(hold(args))
    return latency(args)


if __name__ == "__main__":
    sys.exit(main())
