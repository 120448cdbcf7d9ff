#!/usr/bin/python3
"""HTTP POST sink for the test lab: the backend behind a lab nginx site.

nginx terminates TLS with a certificate from the lab CA and passes the
request on (proxy_pass) to this plain-HTTP server, which answers 200 and
stores every POST as two files in DIR, written through a temporary name
and renamed so a reader never sees a partial file:

  <n>.json  method, path, content_type, content_length, headers
  <n>.body  the request body, byte-exact

Usage: post_sink.py --listen 127.0.0.1:8480 --dir DIR [--status N]
"""

import argparse
import http.server
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--status", type=int, default=200)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(args.dir, exist_ok=True)
    seq = [len([f for f in os.listdir(args.dir) if f.endswith(".body")])]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            seq[0] += 1
            base = os.path.join(args.dir, "%04d" % seq[0])
            meta = {
                "method": "POST",
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "content_length": n,
                "headers": dict(self.headers.items()),
            }
            with open(base + ".tmp", "wb") as f:
                f.write(body)
            os.rename(base + ".tmp", base + ".body")
            with open(base + ".jtmp", "w") as f:
                json.dump(meta, f)
            os.rename(base + ".jtmp", base + ".json")
            self.send_response(args.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *a):
            sys.stderr.write("post_sink: " + (fmt % a) + "\n")
            sys.stderr.flush()

    srv = http.server.HTTPServer((host, int(port)), Handler)
    srv.serve_forever()


if __name__ == "__main__":
    main()
