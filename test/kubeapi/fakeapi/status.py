"""Status bodies: the one error shape kube-apiserver answers with.

Clients branch on `code` and `reason` (a 410 means relist, a 429 means back
off), so every error this server sends goes through here and matches the
real server's fields, including `details` where clients read them.
"""

import json


class ApiError(Exception):
    """An error that is answered as an HTTP status with a Status body."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self):
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(code, reason, message, details=None):
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        # Go's encoder puts details before code; the order does not matter to
        # JSON clients, but it keeps diffs against real captures readable.
        status = {k: status[k] for k in ("kind", "apiVersion", "metadata", "status", "message", "reason")}
        status["details"] = details
        status["code"] = code
    return status


def status_bytes(code, reason, message, details=None):
    return json.dumps(status_body(code, reason, message, details), separators=(",", ":")).encode()


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def not_found(resource, name=None, group=""):
    # The real wording: `pods "x" not found`, or for a resource the server
    # does not serve (a CRD not installed) the generic 404 text.
    if name is None:
        return ApiError(404, "NotFound", "the server could not find the requested resource")
    qualified = f"{resource}.{group}" if group else resource
    details = {"name": name, "group": group, "kind": resource} if group else \
        {"name": name, "kind": resource}
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', details)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def expired(message):
    return ApiError(410, "Expired", message)


def too_old_message(requested, compacted):
    return f"too old resource version: {requested} ({compacted})"


def too_large(requested, current):
    # What the watch cache answers when asked for a resourceVersion it has
    # not reached after waiting: 504 with a cause clients can recognise.
    return ApiError(504, "Timeout", f"Too large resource version: {requested}, current: {current}",
                    {"causes": [{"reason": "ResourceVersionTooLarge",
                                 "message": "Too large resource version"}],
                     "retryAfterSeconds": 1})


def invalid_list_options(causes):
    """422 as the apiserver's ListOptions validation answers it.

    causes: list of (field, message) pairs, each a Forbidden/NotSupported
    error whose message already carries its prefix ("Forbidden: ...").
    """
    parts = [f"{field}: {msg}" for field, msg in causes]
    text = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: {text}',
                    {"group": "meta.k8s.io", "kind": "ListOptions",
                     "causes": [{"reason": "FieldValueForbidden" if msg.startswith("Forbidden")
                                 else "FieldValueNotSupported",
                                 "message": msg, "field": field} for field, msg in causes]})


def too_many_requests(retry_after):
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after},
                    {"Retry-After": str(retry_after)})
