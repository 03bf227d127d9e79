"""Watches: a chunked body of JSON events, one per line, as kube-apiserver writes them.

How a watch starts decides what it sends first:
  resourceVersion=R (not "0")    replay of history events after R, then live;
                                 R older than the compacted point: 200, one
                                 ERROR 410 event, end (the watch cache's way)
  resourceVersion "" or "0"      "start at most recent": ADDED for what exists
                                 now, then live (no bookmark marks the end)
  sendInitialEvents=true         WatchList: ADDED for what exists now, then a
                                 BOOKMARK annotated k8s.io/initial-events-end
                                 (only with allowWatchBookmarks, as the real
                                 cacher), then live
Each history event is seen through the watch's selectors with the object's
state before and after, so an object that starts matching arrives as ADDED
and one that stops matching leaves as DELETED (with its new state), as from
the watch cache.
"""

import json
import select
import socket
import ssl
import sys
import time

from .params import PARTIAL_TYPE, TABLE_TYPE, TOO_LARGE_WAIT, is_true, parse_rv
from .selectors import Filter
from .status import invalid_list_options, status_body, too_large, too_old_message
from .tables import table

POLL = 0.5  # how often an idle watch checks that its client is still there


class _End(Exception):
    """The body ends: cleanly (terminating chunk) or by an abrupt close."""

    def __init__(self, clean):
        super().__init__()
        self.clean = clean


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class EventWriter:
    """Encodes events for one watch and writes them as chunks, a batch per send."""

    def __init__(self, handler, app, res, version, mode, meta_v, include):
        self.h, self.faults = handler, app.faults
        self.res, self.version, self.mode, self.meta_v, self.include = res, version, mode, meta_v, include
        self.api_version = res.api_version(version)
        self.headers_sent = False  # Table mode: column definitions go in the first event only
        self.buf = []

    def _object(self, entry):
        if self.mode == "json":
            return entry.raw_with_kind(self.api_version)
        if self.mode == "partial":
            return _dumps({"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{self.meta_v}",
                           "metadata": entry.body.get("metadata", {})})
        doc = table(self.res, self.version, [entry], {"resourceVersion": str(entry.rv)},
                    self.include, headers=not self.headers_sent)
        self.headers_sent = True
        return _dumps(doc)

    def event(self, type_, entry):
        self._line(type_, self._object(entry))

    def bookmark(self, rv, initial_end=False):
        meta = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        if self.mode == "table":
            obj = {"kind": "Table", "apiVersion": f"meta.k8s.io/{self.meta_v}", "metadata": meta,
                   "columnDefinitions": None, "rows": []}
        elif self.mode == "partial":
            obj = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{self.meta_v}",
                   "metadata": meta}
        else:
            obj = {"kind": self.res.kind, "apiVersion": self.api_version, "metadata": meta}
        self._line("BOOKMARK", _dumps(obj))

    def error(self, code, reason, message, details=None):
        # Written straight through: an ERROR is never the victim of an armed fault.
        self.buf.append(_chunk(b'{"type":"ERROR","object":' + _dumps(
            status_body(code, reason, message, details)) + b"}\n"))

    def _line(self, type_, obj):
        line = b'{"type":"' + type_.encode() + b'","object":' + obj + b"}\n"
        if self.faults.take("drop_mid_event"):
            # Half the event as a complete chunk, then the TCP connection goes
            # without a terminating chunk or a TLS close_notify.
            self.buf.append(_chunk(line[:len(line) // 2]))
            self.flush()
            raise _End(clean=False)
        if self.faults.take("malformed"):
            self.buf.append(_chunk(b'{"type":"' + type_.encode() + b'","object":{"kind":\n'))
            raise _End(clean=True)
        self.buf.append(_chunk(line))

    def flush(self):
        if self.buf:
            data, self.buf = b"".join(self.buf), []
            self.h.wfile.write(data)


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def _translate(ev, flt):
    """(type, entry) this watch sees of a history event, or None."""
    if ev.type == "ADDED":
        return ("ADDED", ev.new) if flt(ev.new.body) else None
    if ev.type == "DELETED":
        return ("DELETED", ev.new) if flt(ev.old.body) else None
    was, now = flt(ev.old.body), flt(ev.new.body)
    if was and now:
        return "MODIFIED", ev.new
    if now:
        return "ADDED", ev.new
    if was:
        return "DELETED", ev.new
    return None


def _peer_closed(sock):
    """True if the client closed its end (it sends nothing while a watch runs)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        saved = sock.gettimeout()
        sock.settimeout(0.01)
        try:
            return sock.recv(1) == b""
        finally:
            sock.settimeout(saved)
    except (ssl.SSLWantReadError, socket.timeout):
        return False
    except (OSError, ValueError):
        return True


def _validate(app, query):
    """The apiserver's ListOptions validation for a watch; 422 as it answers."""
    sie, rvm = query.get("sendInitialEvents"), query.get("resourceVersionMatch", "")
    causes = []
    if sie is not None:
        if rvm != "NotOlderThan":
            causes.append(("resourceVersionMatch", "Forbidden: sendInitialEvents requires setting "
                           "resourceVersionMatch to NotOlderThan"))
        if not app.faults.watchlist:
            causes.append(("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for watch "
                           "unless the WatchList feature gate is enabled"))
    if rvm:
        if sie is None:
            causes.append(("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for "
                           "watch unless sendInitialEvents is provided"))
        if rvm != "NotOlderThan":
            causes.append(("resourceVersionMatch", f'Unsupported value: "{rvm}": supported values: '
                           '"NotOlderThan"'))
    if causes:
        raise invalid_list_options(causes)
    return None if sie is None else is_true(sie)


def serve(h, app, res, version, ns, query, mode, meta_v):
    store = app.store
    send_initial = _validate(app, query)
    flt = Filter(res, ns, query.get("labelSelector"), query.get("fieldSelector"))
    bookmarks = is_true(query.get("allowWatchBookmarks"))
    rv_text = query.get("resourceVersion", "")
    want = parse_rv(rv_text) if rv_text not in ("", "0") else None
    try:
        timeout = int(query.get("timeoutSeconds") or 0)
    except ValueError:
        timeout = 0
    timeout = min(timeout, app.max_watch_seconds) if timeout > 0 else app.max_watch_seconds

    since, initial, too_large_err = None, None, None
    if want is not None and store.wait_for_rv(want, TOO_LARGE_WAIT if want > store.rv else 0) < want:
        too_large_err = too_large(want, store.rv)
    if send_initial or (send_initial is None and want is None):
        initial = flt
    elif send_initial is None:
        since = want
    else:  # sendInitialEvents=false: from the given RV, or from now
        since = want if want is not None else store.rv
    watcher, replay, snapshot, rv_open = (None, None, None, None) if too_large_err else \
        store.open_watch(res, h.path.split("?")[0], since, initial)

    h.send_response(200)
    h.send_header("Content-Type", {"json": "application/json", "table": TABLE_TYPE,
                                   "partial": PARTIAL_TYPE}[mode].format(v=meta_v))
    h.send_header("Transfer-Encoding", "chunked")
    h.send_header("Cache-Control", "no-cache, private")
    h.end_headers()
    w = EventWriter(h, app, res, version, mode, meta_v, query.get("includeObject", "Metadata"))
    clean = True
    try:
        if too_large_err is not None:
            w.error(504, too_large_err.reason, too_large_err.message, too_large_err.details)
            raise _End(clean=True)
        if watcher is None:  # since is older than the compacted point
            w.error(410, "Expired", too_old_message(since, rv_open))
            raise _End(clean=True)
        _run(h, app, watcher, w, flt, replay, snapshot, rv_open, send_initial, bookmarks, timeout, since)
    except _End as e:
        clean = e.clean
    except (OSError, ValueError) as e:  # the client went away mid-write
        sys.stderr.write(f"fake-apiserver: watch {h.path}: {e!r}\n")
        clean = False
    finally:
        if watcher is not None:
            store.close_watch(watcher)
    try:
        if clean:
            w.buf.append(b"0\r\n\r\n")
            w.flush()
        else:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError):
        h.close_connection = True


def _run(h, app, watcher, w, flt, replay, snapshot, rv_open, send_initial, bookmarks, timeout, since):
    store = app.store
    last_rv = since if since is not None else rv_open
    for ev in replay:
        seen = _translate(ev, flt)
        if seen:
            w.event(*seen)
        last_rv = ev.rv
    for entry in snapshot:
        w.event("ADDED", entry)
    if send_initial and bookmarks:
        w.bookmark(rv_open, initial_end=True)
    w.flush()

    now = time.monotonic()
    deadline, next_bookmark, next_poll = now + timeout, now + app.bookmark_interval, now + POLL
    while True:
        with store.cond:
            while not watcher.queue and not watcher.closed:
                now = time.monotonic()
                wake = min(deadline, next_poll, next_bookmark if bookmarks else deadline)
                if now >= wake:
                    break
                store.cond.wait(wake - now)
            events, closed, rv_now = list(watcher.queue), watcher.closed, store.rv
            watcher.queue.clear()
        for ev in events:
            seen = _translate(ev, flt)
            if seen:
                w.event(*seen)
            last_rv = ev.rv
        if closed == "expired":
            w.error(410, "Expired", too_old_message(last_rv, store.compacted))
            raise _End(clean=True)
        if closed:  # uninstalled or shutting down: the body just ends
            raise _End(clean=True)
        now = time.monotonic()
        if now >= deadline:
            raise _End(clean=True)
        if bookmarks and now >= next_bookmark:
            # Everything up to rv_now is in `events` or was sent before: the
            # queue was drained under the lock that orders the writes.
            w.bookmark(rv_now)
            next_bookmark = now + app.bookmark_interval
        w.flush()
        if now >= next_poll:
            next_poll = now + POLL
            if _peer_closed(h.connection):
                raise _End(clean=False)
