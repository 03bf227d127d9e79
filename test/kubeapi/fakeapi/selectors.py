"""labelSelector and fieldSelector, parsed once per request and matched per object.

Label selectors take the set-based grammar the apiserver takes (k=v, k==v,
k!=v, k, !k, k in (a,b), k notin (a,b); commas are AND). Field selectors take
=, == and != on the fields the real server indexes or supports for each
resource; any other field is refused with 400 like the real server, so a
client cannot come to rely on a selector kube-apiserver would reject.
"""

import re

from .status import bad_request

# Fields each resource supports in fieldSelector (the apiserver's field label
# conversion functions); metadata.name and metadata.namespace work everywhere.
_FIELDS = {
    "pods": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
             "status.nominatedNodeName"},
    "services": {"spec.clusterIP", "spec.type"},
    "namespaces": {"status.phase"},
}


def _split_top(text):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$")


def parse_label_selector(text):
    """A predicate over a labels dict; raises ApiError(400) on bad syntax."""
    terms = []
    for part in _split_top(text or ""):
        m = _SET_RE.match(part)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            terms.append((key, op, values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "==" in part:
            key, value = part.split("==", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif "=" in part:
            key, value = part.split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif part.startswith("!"):
            terms.append((part[1:].strip(), "!exists", None))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", part):
            terms.append((part, "exists", None))
        else:
            raise bad_request(f"unable to parse requirement: {part!r}")

    def match(labels):
        labels = labels or {}
        for key, op, value in terms:
            have = labels.get(key)
            if op == "=" and have != value:
                return False
            if op == "!=" and have == value:
                return False
            if op == "in" and have not in value:
                return False
            if op == "notin" and have in value:
                return False
            if op == "exists" and key not in labels:
                return False
            if op == "!exists" and key in labels:
                return False
        return True

    return match if terms else None


def _field_value(body, path):
    cur = body
    for step in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(step)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text, resource):
    """A predicate over an object body; raises ApiError(400) on a bad or unsupported field."""
    terms = []
    allowed = {"metadata.name", "metadata.namespace"} | _FIELDS.get(resource.plural, set())
    for part in _split_top(text or ""):
        if "!=" in part:
            key, value = part.split("!=", 1)
            op = "!="
        elif "==" in part:
            key, value = part.split("==", 1)
            op = "="
        elif "=" in part:
            key, value = part.split("=", 1)
            op = "="
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        key, value = key.strip(), value.strip()
        if key not in allowed:
            raise bad_request(f'"{key}" is not a known field selector: only "'
                              + '", "'.join(sorted(allowed)) + '"')
        terms.append((key, op, value))

    def match(body):
        for key, op, value in terms:
            have = _field_value(body, key)
            if (have == value) != (op == "="):
                return False
        return True

    return match if terms else None


class Filter:
    """Namespace + label + field selectors of one request."""

    def __init__(self, resource, namespace, label_selector, field_selector):
        self.namespace = namespace if resource.namespaced else None
        self.labels = parse_label_selector(label_selector)
        self.fields = parse_field_selector(field_selector, resource)

    def __call__(self, body):
        meta = body.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.labels and not self.labels(meta.get("labels")):
            return False
        if self.fields and not self.fields(body):
            return False
        return True
