"""Test-side helpers: run fake_apiserver.py, talk to it over verified TLS, read watches.

Everything waits on data with a deadline (a socket or pipe timeout), never
with sleeps; a timeout is a failure with a message saying what was awaited.
"""

import http.client
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlencode

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_apiserver.py")


class FakeServer:
    """One fake_apiserver.py process in a temporary directory of its own."""

    def __init__(self, *args, certs_from=None, start_timeout=20):
        self.dir = tempfile.mkdtemp(prefix="fake-apiserver-")
        if certs_from:  # reuse certificates made once: openssl is the slow part of a start
            for f in ("ca.crt", "ca.key", "server.crt", "server.key", "wrong-ca.crt"):
                shutil.copy(os.path.join(certs_from, f), self.dir)
        self.stderr = open(os.path.join(self.dir, "server.log"), "w+")
        self.proc = subprocess.Popen([sys.executable, SERVER, "--dir", self.dir, *args],
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        line = _read_line(self.proc.stdout, start_timeout)
        if not line.startswith("READY https://127.0.0.1:"):
            self.stop()
            raise AssertionError(f"no READY line, got {line!r}; log:\n{self.log()}")
        self.url = line.split()[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        with open(os.path.join(self.dir, "token")) as f:
            self.token = f.read().strip()
        self.ca = os.path.join(self.dir, "ca.crt")

    def log(self):
        self.stderr.flush()
        with open(self.stderr.name) as f:
            return f.read()

    def stop(self):
        """SIGTERM by pid, then SIGKILL if it lingers; the exit code. The directory
        goes; the log stays in final_log. Stopping twice is harmless."""
        if self.proc.stdout.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait(5)
        else:
            code = self.proc.returncode
        self.proc.stdout.close()
        self.final_log = self.log()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code

    # --- requests ----------------------------------------------------------------

    def context(self, ca=None):
        ctx = ssl.create_default_context(cafile=ca or self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def connect(self, ca=None, timeout=10):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(ca),
                                           timeout=timeout)

    def request(self, method, path, body=None, token=..., headers=None, conn=None):
        """(status, headers, decoded JSON or raw bytes). token=None sends no Authorization."""
        token = self.token if token is ... else token
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            ctype = resp.getheader("Content-Type", "")
            payload = json.loads(raw) if ctype.startswith("application/json") else raw
            return resp.status, resp, payload
        finally:
            if own:
                conn.close()

    def get(self, path, **params):
        return self.request("GET", path + ("?" + urlencode(params) if params else ""))

    def control(self, path, body=None, method="POST"):
        status, _, payload = self.request(method, path, body)
        if status != 200:
            raise AssertionError(f"{method} {path} -> {status}: {payload}")
        return payload

    def apply(self, obj):
        return self.control("/fake/apply", obj)

    def delete(self, api_version, kind, namespace, name):
        return self.control("/fake/delete", {"apiVersion": api_version, "kind": kind,
                                             "namespace": namespace, "name": name})

    def fault(self, **faults):
        return self.control("/fake/fault", faults)

    def watch(self, path, token=..., **params):
        return WatchStream(self, path, params, self.token if token is ... else token)


class WatchStream:
    """A watch response read incrementally: events as they come, each within a deadline."""

    def __init__(self, server, path, params, token, timeout=10):
        self.conn = server.connect(timeout=timeout)
        query = urlencode({"watch": "1", **params})
        self.conn.request("GET", f"{path}?{query}", headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.buf = b""
        self.ended = None  # None while open, "clean" (terminating chunk) or "abrupt"

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no data within the deadline; have {self.buf!r}")
        self.conn.sock.settimeout(left)
        try:
            data = self.resp.read1(65536)
        except (http.client.IncompleteRead, ConnectionError, ssl.SSLError) as e:
            self.ended = f"abrupt: {e!r}"
            return
        except TimeoutError:
            raise AssertionError(f"no data within the deadline; have {self.buf!r}") from None
        if not data:
            self.ended = "clean"
        self.buf += data

    def next_line(self, timeout=5):
        """The next raw line (bytes, newline kept), or None once the body has ended."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf and self.ended is None:
            self._fill(deadline)
        if b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            return line + b"\n"
        return None

    def next(self, timeout=5, skip_bookmarks=True):
        """The next event as a dict (bookmarks skipped unless asked), or None at the end."""
        while True:
            line = self.next_line(timeout)
            if line is None:
                return None
            ev = json.loads(line)
            if not (skip_bookmarks and ev["type"] == "BOOKMARK"):
                return ev

    def take(self, n, timeout=5, skip_bookmarks=True):
        events = []
        for _ in range(n):
            ev = self.next(timeout, skip_bookmarks)
            if ev is None:
                raise AssertionError(f"the watch ended after {events}")
            events.append(ev)
        return events

    def wait_end(self, timeout=5):
        """Read to the end of the body; the events read on the way."""
        deadline = time.monotonic() + timeout
        lines = []
        while self.ended is None:
            self._fill(deadline)
        lines = [json.loads(x) for x in self.buf.split(b"\n") if x.strip()]
        self.buf = b""
        return lines

    def close(self):
        self.conn.close()


def _read_line(stream, timeout):
    """One line from a pipe, byte by byte with os.read (no buffer that select cannot see)."""
    deadline = time.monotonic() + timeout
    out = b""
    while not out.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        ch = os.read(stream.fileno(), 1)
        if not ch:
            break
        out += ch
    return out.decode(errors="replace").strip()


def pod(name, namespace="default", node="node-a", labels=None, phase="Running", ip=None):
    """A minimal Pod the way tests need it."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": phase, **({"podIP": ip} if ip else {})}}
