#!/usr/bin/env python3
"""An HTTP/1.1 backend for the L7 e2e tests (test/e2e/l7_service_test.cc).

Serves every path on --port (keep-alive, HTTP/1.1) and answers with its
--name in the body and an x-backend header. It can misbehave on purpose:
  --fail-every N   every Nth request (counted from the first) gets a 503
  --fail-all       every request gets a 500 until GET /heal
  /break, /heal    start, stop answering 500 to everything
  /slow            waits --slow-ms before answering
A request body is read whole and its SHA-256 answered in x-body-sha256 (and
its length in x-body-bytes), so a test can check it arrived intact.
Each request is logged to stdout as one line: "<name> <method> <path> <client>
traceparent=<value or ->", flushed, so a test can count what arrived.
"""
import argparse
import hashlib
import http.server
import sys
import threading
import time

args = None
lock = threading.Lock()
count = 0
failing = False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # the request log below replaces it
        pass

    def answer(self):
        global count, failing
        length = int(self.headers.get("content-length") or 0)
        digest = hashlib.sha256()
        left = length
        while left > 0:
            piece = self.rfile.read(min(left, 65536))
            if not piece:
                break
            digest.update(piece)
            left -= len(piece)
        with lock:
            count += 1
            n = count
            if self.path == "/heal":
                failing = False
            if self.path == "/break":
                failing = True
            fail = (args.fail_every and n % args.fail_every == 1 % args.fail_every) or (
                failing and self.path not in ("/heal", "/break"))
        print(f"{args.name} {self.command} {self.path} {self.client_address[0]} "
              f"traceparent={self.headers.get('traceparent') or '-'}", flush=True)
        if self.path == "/slow":
            time.sleep(args.slow_ms / 1000.0)
        status = 500 if failing and fail else 503 if fail else 200
        body = f"backend={args.name} status={status} path={self.path}\n".encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-backend", args.name)
        self.send_header("x-body-bytes", str(length - left))
        self.send_header("x-body-sha256", digest.hexdigest())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer


def main():
    global args, failing
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--fail-all", action="store_true")
    p.add_argument("--slow-ms", type=int, default=2000)
    args = p.parse_args()
    failing = args.fail_all
    server = http.server.ThreadingHTTPServer(("0.0.0.0", args.port), Handler)
    server.daemon_threads = True
    print(f"{args.name} listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
