#!/usr/bin/env python3
"""An HTTP/2 (prior knowledge) client that stalls, for the L7 stream idle
timeout test (test/e2e/l7_http2_retry_test.cc), on Debian's python3-h2:
it opens one POST stream, sends its head without ending it, then sends
nothing more and waits. Prints "reset <code> after <seconds>" when the
stream is reset, "answered <status>" if it is answered instead, or
"nothing after <seconds>" when --wait runs out."""
import argparse
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/stall")
    p.add_argument("--wait", type=float, default=10.0)
    args = p.parse_args()
    sock = socket.create_connection((args.host, args.port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"),
                               (":authority", args.host), (":path", args.path)])
    sock.sendall(conn.data_to_send())
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < args.wait:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            print(f"closed after {time.monotonic() - start:.2f}", flush=True)
            return 0
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.StreamReset) and ev.stream_id == stream:
                print(f"reset {int(ev.error_code)} after {time.monotonic() - start:.2f}", flush=True)
                return 0
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == stream:
                status = dict(ev.headers).get(b":status", b"?").decode()
                print(f"answered {status}", flush=True)
                return 0
        sock.sendall(conn.data_to_send())
    print(f"nothing after {time.monotonic() - start:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
