#!/usr/bin/env python3
"""An HTTP/2 (prior knowledge, cleartext) backend for the L7 e2e tests
(test/e2e/l7_http2_retry_test.cc), on Debian's python3-h2.

Answers every request on --port with its --name in the body. It can
misbehave on purpose, counting requests from the first:
  --fail-every N     every Nth request gets a 503
  --refuse-every N   every Nth request's stream is reset with REFUSED_STREAM
                     (RFC 9113 8.7: not processed) once its request has
                     ended (the whole body received, so what the proxy
                     kept of it is known), before any answer
  --fail-first       the first request for each path gets a 503 (whatever
                     order concurrent requests arrive in)
Each request is logged to stdout as one line: "<name> <method> <path>
<client> <ok|failed|refused>", flushed, so a test can count what arrived;
one with a body also as "<name> body bytes=<n> sha256=<hex> path=<path>"
when it is answered (its SHA-256 in x-body-sha256 too).
"""
import argparse
import hashlib
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.errors

args = None
lock = threading.Lock()
count = 0
seen_paths = set()


def serve(sock, client):
    global count
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    heads = {}  # stream id -> (method, path, verdict)
    bodies = {}  # stream id -> the body's bytes so far
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    h = {k.decode() if isinstance(k, bytes) else k:
                         v.decode() if isinstance(v, bytes) else v for k, v in ev.headers}
                    with lock:
                        count += 1
                        n = count
                        first = h.get(":path") not in seen_paths
                        seen_paths.add(h.get(":path"))
                    verdict = "ok"
                    if args.fail_first and first:
                        verdict = "failed"
                    if args.refuse_every and n % args.refuse_every == 1 % args.refuse_every:
                        verdict = "refused"
                    elif args.fail_every and n % args.fail_every == 1 % args.fail_every:
                        verdict = "failed"
                    print(f"{args.name} {h.get(':method')} {h.get(':path')} {client} {verdict}",
                          flush=True)
                    heads[ev.stream_id] = (h.get(":method"), h.get(":path"), verdict)
                    if ev.stream_ended:
                        answer(conn, ev.stream_id, heads.pop(ev.stream_id), b"")
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_id in heads:
                        bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                elif isinstance(ev, h2.events.StreamEnded):
                    if ev.stream_id in heads:
                        answer(conn, ev.stream_id, heads.pop(ev.stream_id),
                               bodies.pop(ev.stream_id, b""))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        return
    finally:
        sock.close()


def answer(conn, stream_id, head, received):
    method, path, verdict = head
    if verdict == "refused":
        conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        return
    status = 503 if verdict == "failed" else 200
    digest = hashlib.sha256(received).hexdigest()
    if received:
        print(f"{args.name} body bytes={len(received)} sha256={digest} path={path}", flush=True)
    body = f"backend={args.name} status={status} path={path}\n".encode()
    conn.send_headers(stream_id, [(":status", str(status)), ("content-type", "text/plain"),
                                  ("content-length", str(len(body))), ("x-backend", args.name),
                                  ("x-body-sha256", digest)])
    conn.send_data(stream_id, body, end_stream=True)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--refuse-every", type=int, default=0)
    p.add_argument("--fail-first", action="store_true")
    args = p.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", args.port))
    listener.listen(64)
    print(f"{args.name} listening on {args.port}", flush=True)
    while True:
        sock, addr = listener.accept()
        threading.Thread(target=serve, args=(sock, addr[0]), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
