"""Objects, the global resourceVersion, the event history and the open watches.

One lock guards everything that must agree: the objects, the counter, the
history and every watcher's queue. A write appends its event to the history
and to the queue of each watcher of that resource under the lock, so a
watcher that drains its queue under the lock has, at that moment, every event
up to the current resourceVersion: that is what makes its bookmarks honest
and what lets a watch start (replay or initial state, then live) without
losing or repeating an event.

Stored versions of objects (Entry) are never changed once stored; a write
stores a new Entry. So a list snapshot or a continue token can keep
references instead of copies, and each Entry serialises its body once.
"""

import bisect
import collections
import copy
import datetime
import json
import threading
import time
import uuid

from .status import ApiError, bad_request

# The counter starts here so that no object ever has resourceVersion "0"
# (which means "any" to the apiserver) and so that small numbers are already
# "too old", as on a real cluster.
FIRST_RV = 1000
# The history is compacted past this many events (the apiserver's watch
# cache and etcd compaction both bound it too); tests compact explicitly.
HISTORY_CAP = 500_000


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Entry:
    """One stored version of an object. body has no kind/apiVersion (added on output)."""

    __slots__ = ("res", "key", "body", "rv", "_raw")

    def __init__(self, res, key, body, rv):
        self.res, self.key, self.body, self.rv, self._raw = res, key, body, rv, None

    def raw(self):
        """The body's JSON; computed once (benign race: two threads compute the same)."""
        if self._raw is None:
            self._raw = _dumps(self.body)
        return self._raw

    def raw_with_kind(self, api_version):
        # Splice kind/apiVersion in front instead of re-encoding the body.
        return (b'{"kind":"' + self.res.kind.encode() + b'","apiVersion":"'
                + api_version.encode() + b'",' + self.raw()[1:])


class Event:
    """A change: ADDED (new), MODIFIED (old -> new), DELETED (old; new = last state at the delete's RV)."""

    __slots__ = ("rv", "type", "res", "old", "new")

    def __init__(self, rv, type_, res, old, new):
        self.rv, self.type, self.res, self.old, self.new = rv, type_, res, old, new


class Watcher:
    """The store's side of one open watch: a queue filled under the store's lock."""

    def __init__(self, res, path):
        self.res = res
        self.path = path
        self.queue = collections.deque()
        self.closed = None  # None, "expired", "uninstalled" or "shutdown"


class ContinueSnapshot:
    """What a paged list saw at its first page; later pages read from it."""

    def __init__(self, sid, items, rv, created):
        self.sid, self.items, self.rv, self.created = sid, items, rv, created
        self.expired = False


class Store:
    def __init__(self, registry, continue_ttl):
        self.registry = registry
        self.continue_ttl = continue_ttl
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.rv = FIRST_RV
        self.compacted = FIRST_RV  # history holds every event with rv > compacted
        self.history = []
        self.objects = {r.name: {} for r in registry.resources}  # name -> {key: Entry}
        self.watchers = {r.name: set() for r in registry.resources}
        self.snapshots = {}
        self._next_sid = 0

    # --- writes ----------------------------------------------------------------

    def _resolve(self, obj):
        if not isinstance(obj, dict):
            raise bad_request("an object must be a JSON object")
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        res, _ = self.registry.lookup_kind(api_version, kind)
        if res is None:
            raise bad_request(f"unknown kind {kind!r} of apiVersion {api_version!r}")
        if not self.registry.installed(res):
            raise ApiError(404, "NotFound", f"{res.name} is not installed (a missing CRD); "
                           "install it with POST /fake/fault {\"install\": [...]}")
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise bad_request("metadata.name is required")
        ns = meta.get("namespace") if res.namespaced else None
        if res.namespaced and not ns:
            raise bad_request(f"metadata.namespace is required for {res.kind}")
        return res, (ns or "", name)

    def _publish(self, ev):
        self.history.append(ev)
        for w in self.watchers[ev.res.name]:
            w.queue.append(ev)

    def apply_many(self, objs):
        """Create or replace each object in order; one lock hold, one wake-up."""
        resolved = [self._resolve(o) for o in objs]  # fail before changing anything
        stored = []
        with self.lock:
            for obj, (res, key) in zip(objs, resolved):
                body = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
                meta = dict(body.get("metadata") or {})
                body["metadata"] = meta
                if not res.namespaced:
                    meta.pop("namespace", None)
                old = self.objects[res.name].get(key)
                self.rv += 1
                meta["resourceVersion"] = str(self.rv)
                if old is not None:
                    meta.setdefault("uid", old.body["metadata"].get("uid"))
                    meta.setdefault("creationTimestamp", old.body["metadata"].get("creationTimestamp"))
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now_rfc3339())
                entry = Entry(res, key, body, self.rv)
                self.objects[res.name][key] = entry
                self._publish(Event(self.rv, "MODIFIED" if old else "ADDED", res, old, entry))
                stored.append(entry)
            self._cap_history()
            self.cond.notify_all()
        return stored

    def delete(self, res, key):
        with self.lock:
            old = self.objects[res.name].pop(key, None)
            if old is None:
                return None
            entry = self._deleted_entry(old)
            self._publish(Event(entry.rv, "DELETED", res, old, entry))
            self.cond.notify_all()
            return entry

    def _deleted_entry(self, old):
        # The DELETED event carries the last state at the delete's own RV, as
        # the watch cache sends it. Callers hold the lock.
        self.rv += 1
        body = copy.copy(old.body)
        body["metadata"] = dict(body["metadata"], resourceVersion=str(self.rv))
        return Entry(old.res, old.key, body, self.rv)

    def drop_resource(self, res):
        """Uninstall: every object of res is deleted (as deleting a CRD deletes its CRs)."""
        with self.lock:
            for _, old in sorted(self.objects[res.name].items()):
                entry = self._deleted_entry(old)
                self._publish(Event(entry.rv, "DELETED", res, old, entry))
            self.objects[res.name].clear()
            for w in self.watchers[res.name]:
                w.closed = "uninstalled"
            self.cond.notify_all()

    # --- history ---------------------------------------------------------------

    def _cap_history(self):
        if len(self.history) > HISTORY_CAP:
            cut = len(self.history) - HISTORY_CAP // 2
            self.compacted = self.history[cut - 1].rv
            del self.history[:cut]

    def compact(self):
        with self.lock:
            self.compacted = self.rv
            self.history = []

    def expire_watches(self):
        """Every open watch ends with 410; history compacted so that resuming fails too."""
        with self.lock:
            self.compacted = self.rv
            self.history = []
            for ws in self.watchers.values():
                for w in ws:
                    w.closed = w.closed or "expired"
            self.cond.notify_all()

    def shutdown(self):
        with self.lock:
            for ws in self.watchers.values():
                for w in ws:
                    w.closed = "shutdown"
            self.cond.notify_all()

    # --- reads -----------------------------------------------------------------

    def current(self, res, flt):
        """(matching entries in etcd key order, rv); caller holds the lock."""
        items = [e for e in self.objects[res.name].values() if flt(e.body)]
        items.sort(key=lambda e: f"{e.key[0]}/{e.key[1]}")
        return items, self.rv

    def get(self, res, key):
        with self.lock:
            return self.objects[res.name].get(key)

    def wait_for_rv(self, rv, timeout):
        """Block until the counter reaches rv or timeout; the counter after. Caller holds no lock."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.rv < rv:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return self.rv

    # --- watches ---------------------------------------------------------------

    def open_watch(self, res, path, since=None, initial=None):
        """Register a watcher, atomically with what it must send before going live.

        since: an RV to replay history after; initial: a filter, to snapshot
        the current matching objects. Returns (watcher, replay events, snapshot
        entries, rv now); watcher is None (and rv the compacted point) when
        since is older than the compacted point: the caller answers 410.
        """
        w = Watcher(res, path)
        with self.lock:
            replay, snapshot = [], []
            if since is not None:
                if since < self.compacted:
                    return None, None, None, self.compacted
                i = bisect.bisect_right(self.history, since, key=lambda ev: ev.rv)
                replay = [ev for ev in self.history[i:] if ev.res is res]
            if initial is not None:
                snapshot, _ = self.current(res, initial)
            self.watchers[res.name].add(w)
            return w, replay, snapshot, self.rv

    def close_watch(self, w):
        with self.lock:
            self.watchers[w.res.name].discard(w)

    def open_watch_counts(self):
        with self.lock:
            counts = collections.Counter(w.path for ws in self.watchers.values() for w in ws)
        return dict(counts)

    # --- continue snapshots ----------------------------------------------------

    def save_snapshot(self, items, rv):
        with self.lock:
            now = time.monotonic()
            for sid in [s for s, snap in self.snapshots.items()
                        if now - snap.created > self.continue_ttl]:
                del self.snapshots[sid]
            self._next_sid += 1
            snap = ContinueSnapshot(self._next_sid, items, rv, now)
            self.snapshots[snap.sid] = snap
            return snap

    def load_snapshot(self, sid):
        """The snapshot, or None if unknown, expired by TTL or by the control API."""
        with self.lock:
            snap = self.snapshots.get(sid)
            if snap is None or snap.expired or time.monotonic() - snap.created > self.continue_ttl:
                return None
            return snap

    def expire_continues(self):
        with self.lock:
            for snap in self.snapshots.values():
                snap.expired = True
