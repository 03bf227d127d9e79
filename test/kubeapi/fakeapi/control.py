"""The control API under /fake/: how tests change the cluster and arm faults.

Same TLS and token as the API; JSON bodies. Never throttled and never in the
request log, so that a test can drive and inspect the server while a fault
is armed against its client.
"""

import json

from .status import ApiError, bad_request

_FAULT_KEYS = {"expire_watches", "compact", "expire_continue", "throttle", "retry_after",
               "drop_mid_event", "malformed", "watchlist", "install", "uninstall", "token", "reset"}


def _body(h):
    try:
        return json.loads(h.body or b"null")
    except ValueError as e:
        raise bad_request(f"the body is not JSON: {e}") from None


def objects_of(doc):
    """A list of objects, or a v1 List (kind ending in List with items)."""
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        return doc["items"]
    if isinstance(doc, list):
        return doc
    raise bad_request("expected a JSON list of objects or a List with items")


def handle(h, app, method, path):
    store = app.store
    route = (method, path.rstrip("/"))
    if route == ("POST", "/fake/apply"):
        obj = _body(h)
        entry = store.apply_many([obj])[0]
        h.send_bytes(200, entry.raw_with_kind(obj["apiVersion"]))
    elif route == ("POST", "/fake/bulk"):
        entries = store.apply_many(objects_of(_body(h)))
        # Counts, not the objects: a 10,000-pod answer would cost more than the write.
        h.send_json(200, {"applied": len(entries), "resourceVersion": str(store.rv)})
    elif route == ("POST", "/fake/delete"):
        doc = _body(h) or {}
        res, _ = app.registry.lookup_kind(doc.get("apiVersion", ""), doc.get("kind", ""))
        if res is None:
            raise bad_request(f"unknown kind {doc.get('kind')!r} of apiVersion {doc.get('apiVersion')!r}")
        ns = (doc.get("namespace") or "") if res.namespaced else ""
        entry = store.delete(res, (ns, doc.get("name", "")))
        if entry is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{doc.get("name")}" not found')
        h.send_bytes(200, entry.raw_with_kind(doc["apiVersion"]))
    elif route == ("POST", "/fake/fault"):
        _fault(app, _body(h) or {})
        h.send_json(200, _state(app))
    elif route == ("GET", "/fake/requests"):
        h.send_json(200, app.requests.all())
    elif route == ("POST", "/fake/requests/clear"):
        app.requests.clear()
        h.send_json(200, [])
    elif route == ("GET", "/fake/watches"):
        h.send_json(200, store.open_watch_counts())
    elif route == ("GET", "/fake/state"):
        h.send_json(200, _state(app))
    else:
        raise ApiError(404, "NotFound", f"no control endpoint {method} {path}")


def _state(app):
    reg = app.registry
    return {"resourceVersion": str(app.store.rv), "compacted": str(app.store.compacted),
            "installed": [r.name for r in reg.resources if reg.installed(r)],
            "missing": [r.name for r in reg.resources if not reg.installed(r)],
            **app.faults.snapshot()}


def _fault(app, doc):
    if not isinstance(doc, dict):
        raise bad_request("a fault body is a JSON object")
    unknown = set(doc) - _FAULT_KEYS
    if unknown:  # a typo must not pass for an armed fault
        raise bad_request(f"unknown fault key(s) {sorted(unknown)}; known: {sorted(_FAULT_KEYS)}")
    for key in ("install", "uninstall"):
        try:
            app.registry.check_names(doc.get(key, []))
        except ValueError as e:
            raise bad_request(str(e)) from None
    faults, store = app.faults, app.store
    if doc.get("reset"):
        faults.reset()
    if doc.get("expire_watches"):
        store.expire_watches()
    if doc.get("compact"):
        store.compact()
    if doc.get("expire_continue"):
        store.expire_continues()
    faults.arm(doc)
    if doc.get("install"):
        app.registry.set_installed(doc["install"], True)
    for name in doc.get("uninstall", []):
        res = app.registry.by_name[name]
        app.registry.set_installed([name], False)
        store.drop_resource(res)
    if "token" in doc:
        token = str(doc["token"])
        if not token:
            raise bad_request("an empty token would lock everyone out")
        app.set_token(token)
