"""HTTP: authentication, throttling, routing, discovery, GET and LIST.

Every request needs the bearer token (401 otherwise, /fake included); then
the API paths may be throttled by an armed fault; then routed. Watches are
in watch.py, the control API in control.py.
"""

import base64
import binascii
import json
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from . import control, watch
from .params import (JSON, PARTIAL_LIST_TYPE, PARTIAL_TYPE, TABLE_TYPE, TOO_LARGE_WAIT, flat_query,
                     int_param, is_true, negotiate, parse_rv)
from .registry import VERSION_INFO
from .selectors import Filter
from .status import (ApiError, bad_request, expired, invalid_list_options, not_found,
                     too_large, too_many_requests, unauthorized)
from .tables import table

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shunt-fake-apiserver/1"
    timeout = 300  # an idle keep-alive connection, or a client that stops reading a watch
    _record = None  # (method, path, query, watch) until the status is sent; None for /fake

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-apiserver: %s %s\n" % (self.address_string(), fmt % args))

    def send_response(self, code, message=None):
        # The request log records the status when it is decided, so a watch
        # shows in /fake/requests while it is still open.
        if self._record is not None:
            method, path, query, is_watch = self._record
            self._record = None
            self.server.app.requests.add(method, path, query, code, is_watch)
        super().send_response(code, message)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        app = self.server.app
        url = urlsplit(self.path)
        path, query = url.path, flat_query(url.query)
        is_fake = path.startswith("/fake/")
        self._record = None if is_fake else (method, path, query, is_true(query.get("watch")))
        try:
            self.body = self._read_body()  # read whatever the answer, so keep-alive stays in step
            if not app.authorized(self.headers.get("Authorization")):
                raise unauthorized()
            if is_fake:
                control.handle(self, app, method, path)
                return
            retry = app.faults.take_throttle()
            if retry is not None:
                raise too_many_requests(retry)
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            self._get(app, path, query)
        except ApiError as e:
            self.send_json(e.code, e.body(), headers=e.headers)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise bad_request("a malformed chunked request body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise bad_request("a malformed Content-Length") from None
        return self.rfile.read(length) if length > 0 else b""

    # --- responses ---------------------------------------------------------------

    def send_bytes(self, code, data, content_type=JSON, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, code, obj, content_type=JSON, headers=None):
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_bytes(code, data, content_type, headers)

    # --- routing -----------------------------------------------------------------

    def _get(self, app, path, query):
        reg = app.registry
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/readyz", "/livez"):
            self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/version":
            self.send_json(200, VERSION_INFO)
        elif parts == ["api"]:
            self.send_json(200, reg.api_versions(f"127.0.0.1:{app.port}"))
        elif parts == ["apis"]:
            self.send_json(200, reg.api_group_list())
        elif parts[:1] == ["api"] and len(parts) >= 2:
            self._group_version(app, "", parts[1], parts[2:], query)
        elif parts[:1] == ["apis"] and len(parts) == 2:
            doc = reg.api_group_doc(parts[1])
            if doc is None:
                raise not_found(None)
            self.send_json(200, doc)
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            self._group_version(app, parts[1], parts[2], parts[3:], query)
        else:
            raise not_found(None)

    def _group_version(self, app, group, version, rest, query):
        if not rest:
            doc = app.registry.api_resource_list(group, version)
            if doc is None:
                raise not_found(None)
            self.send_json(200, doc)
            return
        # namespaces/NS/RES[/NAME] or RES[/NAME]; /api/v1/namespaces/NS is the
        # second form (the namespace NS), since namespaces are cluster-scoped.
        if len(rest) in (3, 4) and rest[0] == "namespaces":
            ns, plural, name = rest[1], rest[2], (rest[3] if len(rest) == 4 else None)
        elif len(rest) in (1, 2):
            ns, plural, name = None, rest[0], (rest[1] if len(rest) == 2 else None)
        else:
            raise not_found(None)  # subresources (status, log, ...) are not served
        res = app.registry.lookup_path(group, version, plural)
        if res is None or (ns is not None and not res.namespaced) or \
                (name is not None and ns is None and res.namespaced):
            raise not_found(None)
        mode, meta_v = negotiate(self.headers.get("Accept"))
        if name is not None:
            self._get_one(app, res, version, ns, name, mode, meta_v, query)
        elif is_true(query.get("watch")):
            watch.serve(self, app, res, version, ns, query, mode, meta_v)
        else:
            self._list(app, res, version, ns, query, mode, meta_v)

    def _get_one(self, app, res, version, ns, name, mode, meta_v, query):
        entry = app.store.get(res, (ns or "", name))
        if entry is None:
            raise not_found(res.plural, name, res.group)
        if mode == "table":
            meta = {"resourceVersion": str(entry.rv)}
            self.send_json(200, table(res, version, [entry], meta, query.get("includeObject", "Metadata")),
                           TABLE_TYPE.format(v=meta_v))
        elif mode == "partial":
            self.send_json(200, {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{meta_v}",
                                 "metadata": entry.body.get("metadata", {})},
                           PARTIAL_TYPE.format(v=meta_v))
        else:
            self.send_bytes(200, entry.raw_with_kind(res.api_version(version)))

    # --- list ----------------------------------------------------------------------

    def _list(self, app, res, version, ns, query, mode, meta_v):
        store = app.store
        rv_param, rvm, cont = query.get("resourceVersion", ""), query.get("resourceVersionMatch", ""), \
            query.get("continue", "")
        _validate_list(query, rv_param, rvm, cont)
        flt = Filter(res, ns, query.get("labelSelector"), query.get("fieldSelector"))
        limit = int_param(query, "limit")
        if cont:
            sid, start = _decode_continue(cont)
            snap = store.load_snapshot(sid)
            if snap is None:
                raise expired("The provided continue parameter is too old to display a consistent "
                              "list result. You can start a new list without the continue parameter.")
            items, rv = snap.items, snap.rv
        else:
            if rv_param and rv_param != "0":
                want = parse_rv(rv_param)
                if store.wait_for_rv(want, TOO_LARGE_WAIT if want > store.rv else 0) < want:
                    raise too_large(want, store.rv)
                if rvm == "Exact" and want != store.rv:
                    # No multi-version storage here: an exact read of the past is
                    # answered as etcd answers one past its compaction.
                    raise expired("The resourceVersion for the provided list is too old.")
            with store.lock:
                items, rv = store.current(res, flt)
            start, snap = 0, None
        meta = {"resourceVersion": str(rv)}
        page = items[start:]
        if limit and len(page) > limit:
            page = page[:limit]
            if snap is None:
                snap = store.save_snapshot(items, rv)
            meta["continue"] = _encode_continue(snap.sid, start + limit, rv)
            meta["remainingItemCount"] = len(items) - start - limit
        self._send_list(res, version, page, meta, mode, meta_v, query)

    def _send_list(self, res, version, page, meta, mode, meta_v, query):
        if mode == "table":
            self.send_json(200, table(res, version, page, meta, query.get("includeObject", "Metadata")),
                           TABLE_TYPE.format(v=meta_v))
        elif mode == "partial":
            items = [{"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{meta_v}",
                      "metadata": e.body.get("metadata", {})} for e in page]
            self.send_json(200, {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{meta_v}",
                                 "metadata": meta, "items": items}, PARTIAL_LIST_TYPE.format(v=meta_v))
        else:
            # Items carry no kind/apiVersion, as from the real server; the raw
            # bodies are joined, not re-encoded (10,000-pod lists stay cheap).
            head = json.dumps({"kind": res.list_kind(), "apiVersion": res.api_version(version),
                               "metadata": meta}, separators=(",", ":")).encode()
            data = head[:-1] + b',"items":[' + b",".join(e.raw() for e in page) + b"]}"
            self.send_bytes(200, data)


def _validate_list(query, rv_param, rvm, cont):
    """The apiserver's ListOptions validation for a list (watch.py has the watch's)."""
    causes = []
    if rvm:
        if not rv_param:
            causes.append(("resourceVersionMatch",
                           "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"))
        if cont:
            causes.append(("resourceVersionMatch",
                           "Forbidden: resourceVersionMatch is forbidden when continue is provided"))
        if rvm not in ("NotOlderThan", "Exact"):
            causes.append(("resourceVersionMatch", f'Unsupported value: "{rvm}": supported values: '
                           '"Exact", "NotOlderThan"'))
        if rvm == "Exact" and rv_param == "0":
            causes.append(("resourceVersionMatch",
                           'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if "sendInitialEvents" in query:
        causes.append(("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for list"))
    if causes:
        raise invalid_list_options(causes)
    if cont and rv_param:
        raise bad_request("specifying resource version is not allowed when using continue")


def _encode_continue(sid, pos, rv):
    raw = json.dumps({"v": "shunt.fake/v1", "sid": sid, "pos": pos, "rv": rv}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token):
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(doc["sid"]), int(doc["pos"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                          "(version meta.k8s.io/v1)") from None

