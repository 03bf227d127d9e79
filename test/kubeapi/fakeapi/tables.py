"""meta.k8s.io/v1 Table: the server-side printing kubectl asks for.

kubectl get sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`
and prints the columns the server chose. The columns and cell values here
follow kube-apiserver's printers (pkg/printers/internalversion) for the kinds
kubectl users look at (pods, services, namespaces, endpointslices); CRDs
without additionalPrinterColumns get NAME and AGE (a "date" column whose
cell the CRD table convertor already renders as a duration).
Columns of priority 1 are the ones `-o wide` adds.
"""

import datetime

_DESC = {"Name": "Name must be unique within a namespace.",
         "Age": "CreationTimestamp is a timestamp representing the server time when this object was created."}


def _col(name, type_="string", priority=0, fmt=""):
    return {"name": name, "type": type_, "format": fmt, "description": _DESC.get(name, name),
            "priority": priority}


def human_duration(seconds):
    """apimachinery's duration.HumanDuration, which the AGE column uses."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(meta):
    ts = meta.get("creationTimestamp")
    if not ts:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())


def _pod_row(body):
    spec, status = body.get("spec") or {}, body.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    restarts, ready, initializing = 0, 0, False
    init_statuses = status.get("initContainerStatuses") or []
    for i, c in enumerate(init_statuses):
        restarts += c.get("restartCount", 0)
        state = c.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                                       else f"ExitCode:{term.get('exitCode', 0)}"))
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing:
        restarts, has_running = 0, False
        for c in reversed(status.get("containerStatuses") or []):
            restarts += c.get("restartCount", 0)
            state = c.get("state") or {}
            term, wait = state.get("terminated"), state.get("waiting")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif c.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            conds = status.get("conditions") or []
            ok = any(x.get("type") == "Ready" and x.get("status") == "True" for x in conds)
            reason = "Running" if ok else "NotReady"
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    gates = spec.get("readinessGates") or []
    return [meta.get("name", ""), f"{ready}/{len(spec.get('containers') or [])}", reason,
            str(restarts), age(meta), status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            f"0/{len(gates)}" if gates else "<none>"]


def _ports(ports):
    out = []
    for p in ports or []:
        proto = p.get("protocol", "TCP")
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) or "<none>"


def _service_row(body):
    spec, meta = body.get("spec") or {}, body.get("metadata") or {}
    ext = spec.get("externalIPs") or []
    lb = [i.get("ip") or i.get("hostname") for i in
          ((body.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
    typ = spec.get("type", "ClusterIP")
    external = ",".join(ext + lb) or ("<pending>" if typ == "LoadBalancer" else "<none>")
    if typ == "ExternalName":
        external = spec.get("externalName", "<none>")
    sel = spec.get("selector") or {}
    return [meta.get("name", ""), typ, spec.get("clusterIP") or "<none>", external,
            _ports(spec.get("ports")), age(meta),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"]


def _slice_row(body):
    meta = body.get("metadata") or {}
    ports = ",".join(str(p.get("port")) for p in body.get("ports") or [] if p.get("port") is not None)
    addrs = [a for e in body.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [meta.get("name", ""), body.get("addressType", ""), ports or "<unset>",
            shown or "<unset>", age(meta)]


_TABLES = {
    "pods": ([_col("Name", fmt="name"), _col("Ready"), _col("Status"), _col("Restarts"), _col("Age"),
              _col("IP", priority=1), _col("Node", priority=1), _col("Nominated Node", priority=1),
              _col("Readiness Gates", priority=1)], _pod_row),
    "services": ([_col("Name", fmt="name"), _col("Type"), _col("Cluster-IP"), _col("External-IP"),
                  _col("Port(s)"), _col("Age"), _col("Selector", priority=1)], _service_row),
    "namespaces": ([_col("Name", fmt="name"), _col("Status"), _col("Age")],
                   lambda b: [b["metadata"].get("name", ""), (b.get("status") or {}).get("phase", "Active"),
                              age(b["metadata"])]),
    "endpointslices": ([_col("Name", fmt="name"), _col("AddressType"), _col("Ports"), _col("Endpoints"),
                        _col("Age")], _slice_row),
}
_DEFAULT = ([_col("Name", fmt="name"), _col("Age", type_="date")],
            lambda b: [b["metadata"].get("name", ""), age(b["metadata"])])


def _row_object(entry, res, version, include):
    if include == "None":
        return None
    if include == "Object":
        return {"kind": res.kind, "apiVersion": res.api_version(version), **entry.body}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": entry.body.get("metadata", {})}


def table(res, version, entries, list_meta, include="Metadata", headers=True):
    """A Table of entries. headers=False leaves columnDefinitions empty, as the
    server does after the first event of a watch (kubectl keeps the last ones)."""
    columns, row_fn = _TABLES.get(res.plural, _DEFAULT)
    rows = []
    for e in entries:
        row = {"cells": row_fn(e.body)}
        obj = _row_object(e, res, version, include)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": columns if headers else None, "rows": rows}
