#!/usr/bin/env python3
"""A stand-in for kube-apiserver in tests: list/watch over HTTPS, plus a control API.

    python3 test/kubeapi/fake_apiserver.py --dir DIR [--token TOKEN] [--port 0]
        [--bookmark-interval 1.0] [--max-watch-seconds 1800] [--continue-ttl 300]
        [--no-watchlist] [--missing RESOURCE.GROUP ...] [--objects FILE]

Writes DIR/{ca.crt,ca.key,server.crt,server.key,wrong-ca.crt,token,kubeconfig},
prints `READY https://127.0.0.1:PORT` once listening, exits 0 on SIGTERM or
SIGINT. See README.md beside this file for the control API.
"""

import argparse
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeapi import certs  # noqa: E402
from fakeapi.app import App  # noqa: E402
from fakeapi.control import objects_of  # noqa: E402
from fakeapi.server import Server  # noqa: E402
from fakeapi.status import ApiError  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", required=True, help="where certificates, token and kubeconfig go")
    p.add_argument("--token", help="the bearer token (default: a random one)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--listen", default="127.0.0.1", metavar="ADDR",
                   help="address to listen on (0.0.0.0: also reachable from linked test "
                        "namespaces; the certificate names only 127.0.0.1 and localhost, so "
                        "their clients set tls-server-name: localhost)")
    p.add_argument("--bookmark-interval", type=float, default=1.0, metavar="SECONDS")
    p.add_argument("--max-watch-seconds", type=int, default=1800, metavar="N")
    p.add_argument("--continue-ttl", type=float, default=300, metavar="SECONDS")
    p.add_argument("--no-watchlist", action="store_true",
                   help="refuse sendInitialEvents, as a server with the WatchList gate off")
    p.add_argument("--missing", nargs="+", action="extend", default=[], metavar="RESOURCE.GROUP",
                   help="resources not installed at start (a CRD absent), e.g. trafficsplits.split.smi-spec.io")
    p.add_argument("--objects", help="a JSON list of objects (or a v1 List) to preload")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    certs.ensure_certs(args.dir)
    token = args.token or certs.new_token()
    try:
        app = App(args.dir, token, args.bookmark_interval, args.max_watch_seconds,
                  args.continue_ttl, not args.no_watchlist, args.missing)
    except ValueError as e:
        sys.exit(f"fake-apiserver: {e}")
    if args.objects:
        with open(args.objects) as f:
            try:
                app.store.apply_many(objects_of(json.load(f)))
            except ApiError as e:
                sys.exit(f"fake-apiserver: {args.objects}: {e.message}")
    server = Server(app, args.port, args.listen)
    app.port = server.server_address[1]
    certs.write_token(args.dir, token)
    certs.write_kubeconfig(args.dir, app.port, token)

    def stop(signum, frame):
        # shutdown() waits for serve_forever to return: not from its own thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY https://127.0.0.1:{app.port}", flush=True)
    sys.stderr.write(f"fake-apiserver: serving on {args.listen}:{app.port}, files in {args.dir}\n")
    server.serve_forever(poll_interval=0.05)  # how soon a SIGTERM is acted on
    app.store.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
