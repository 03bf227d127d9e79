"""What every request handler shares: the store, the faults armed by tests,
the request log, the token and the server's settings."""

import hmac
import threading
import time

from . import certs
from .registry import Registry
from .store import Store


class Faults:
    """Faults armed through POST /fake/fault; counters are consumed one by one."""

    def __init__(self, watchlist):
        self._lock = threading.Lock()
        self._default_watchlist = watchlist
        self.watchlist = watchlist
        self.throttle = 0
        self.retry_after = 1
        self.drop_mid_event = 0
        self.malformed = 0

    def reset(self):
        with self._lock:
            self.throttle = self.drop_mid_event = self.malformed = 0
            self.retry_after = 1
            self.watchlist = self._default_watchlist

    def arm(self, doc):
        """Set the counters and switches named in a /fake/fault body."""
        with self._lock:
            for key in ("throttle", "retry_after", "drop_mid_event", "malformed"):
                if key in doc:
                    setattr(self, key, int(doc[key]))
            if "watchlist" in doc:
                self.watchlist = bool(doc["watchlist"])

    def take(self, name):
        """True (and one fewer left) if the counter `name` is armed."""
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def take_throttle(self):
        """The Retry-After seconds if this request is to be throttled, else None."""
        return self.retry_after if self.take("throttle") else None

    def snapshot(self):
        with self._lock:
            return {"watchlist": self.watchlist, "throttle": self.throttle,
                    "retry_after": self.retry_after, "drop_mid_event": self.drop_mid_event,
                    "malformed": self.malformed}


class RequestLog:
    """Every non-/fake request, in the order their status was decided."""

    def __init__(self, start):
        self._lock = threading.Lock()
        self._start = start
        self._entries = []

    def add(self, method, path, query, status, watch):
        entry = {"method": method, "path": path, "query": query, "status": status,
                 "time": round(time.monotonic() - self._start, 6), "watch": watch}
        with self._lock:
            self._entries.append(entry)

    def all(self):
        with self._lock:
            return list(self._entries)

    def clear(self):
        with self._lock:
            self._entries.clear()


class App:
    def __init__(self, directory, token, bookmark_interval, max_watch_seconds, continue_ttl,
                 watchlist, missing):
        self.start = time.monotonic()
        self.dir = directory
        self.port = None
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self.registry = Registry(missing)
        self.store = Store(self.registry, continue_ttl)
        self.faults = Faults(watchlist)
        self.requests = RequestLog(self.start)
        self._token_lock = threading.Lock()
        self._token = token

    def authorized(self, header):
        if not header or not header.startswith("Bearer "):
            return False
        with self._token_lock:
            token = self._token
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())

    def set_token(self, token):
        with self._token_lock:
            self._token = token
            # The kubeconfig carries the token inline, so it is rewritten too:
            # kubectl keeps working after a rotation, like a refreshed kubeconfig.
            certs.write_token(self.dir, token)
            if self.port is not None:
                certs.write_kubeconfig(self.dir, self.port, token)
