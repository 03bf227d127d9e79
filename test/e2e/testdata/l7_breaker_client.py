#!/usr/bin/env python3
"""The client of L7ServiceTest's breaker test (test/e2e/l7_service_test.cc).

On ONE kept-alive connection to the service (so one proxy thread, one
balancer, sees all of it): --warm requests while both backends answer
(so the balancer knows both as equally fast); then it breaks one backend
(GET /break straight to the pod: 500s from then on, as fast as its 200s
were) and sends requests until --failures of them failed (for at most
--before-s), then --settle more; then it heals the backend (GET /heal)
and waits --wait-ms for the ejection to end; then up to --after requests,
--gap-ms apart, until the healed backend answers one. Prints one line per
request: "<phase> <status> <backend>", and "broke"/"healed" between.
"""
import argparse
import http.client
import sys
import time


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("x-backend") or "-"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--service", required=True)  # host of the service, port 80
    p.add_argument("--heal", required=True)  # host:port of the backend to break and heal
    p.add_argument("--warm", type=int, default=40)
    p.add_argument("--broken", required=True)  # its name in x-backend
    p.add_argument("--failures", type=int, default=2)
    # A backend that looked slow once (its first answer, on a new
    # connection, is its slowest) is avoided until its estimate decays
    # (tau 2 s): the failures may take seconds to come.
    p.add_argument("--before-s", type=float, default=30)
    p.add_argument("--settle", type=int, default=20)
    p.add_argument("--after", type=int, default=100)
    p.add_argument("--wait-ms", type=int, default=1500)
    p.add_argument("--gap-ms", type=int, default=50)
    a = p.parse_args()
    conn = http.client.HTTPConnection(a.service, 80, timeout=10)
    host, port = a.heal.rsplit(":", 1)

    def direct(path):
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        status, _ = get(c, path)
        c.close()
        return status

    for i in range(a.warm):
        status, backend = get(conn, f"/warm-{i}")
        print(f"warm {status} {backend}", flush=True)
    print(f"broke {direct('/break')}", flush=True)
    failed = 0
    deadline = time.monotonic() + a.before_s
    i = 0
    while time.monotonic() < deadline:
        i += 1
        status, backend = get(conn, f"/before-{i}")
        print(f"before {status} {backend}", flush=True)
        failed += status >= 500
        if failed == a.failures:
            break
    for i in range(a.settle):
        status, backend = get(conn, f"/settle-{i}")
        print(f"settle {status} {backend}", flush=True)
    print(f"healed {direct('/heal')}", flush=True)
    time.sleep(a.wait_ms / 1000.0)
    for i in range(a.after):
        status, backend = get(conn, f"/after-{i}")
        print(f"after {status} {backend}", flush=True)
        if backend == a.broken and status == 200:
            return 0
        time.sleep(a.gap_ms / 1000.0)
    return 1


if __name__ == "__main__":
    sys.exit(main())
