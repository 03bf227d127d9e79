#!/usr/bin/env python3
"""A TCP port that never completes a handshake, for the L7 connect-timeout
tests: it listens with a backlog of 0 and fills its own accept queue with
one connection it never accepts, so the kernel drops every later SYN (as a
blackholed address would). Prints "listening" once the queue is full."""
import argparse
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", args.port))
    listener.listen(0)
    filler = socket.create_connection(("127.0.0.1", args.port))
    print(f"blackhole listening on {args.port}", flush=True)
    while True:
        time.sleep(3600)
    del filler


if __name__ == "__main__":
    sys.exit(main())
