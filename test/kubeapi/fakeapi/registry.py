"""The resources this server serves, and the discovery documents kubectl reads.

One Resource per stored kind. A resource served at several versions (the
SMI TrafficSplit at v1alpha4 and v1alpha2) has one storage: objects are kept
once and their apiVersion is rewritten to the version the client asked for,
as an apiserver does for a CRD whose versions share a schema.

Resources can be "missing" (a CRD not installed): then every URL of theirs
answers 404 and discovery leaves them out, as a cluster without the CRD does.
"""

import threading

# Verbs advertised in discovery: only what this server implements, so that a
# client that checks verbs sees the truth (kubectl get needs "list").
READ_VERBS = ["get", "list", "watch"]


class Resource:
    def __init__(self, plural, singular, kind, group, versions, namespaced,
                 short_names=(), categories=()):
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.group = group
        self.versions = list(versions)  # the first is the storage and preferred version
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.categories = list(categories)

    @property
    def name(self):
        """What --missing and the control API call it: plural.group, or plural for core."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_version(self):
        return self.versions[0]

    def api_version(self, version):
        return f"{self.group}/{version}" if self.group else version

    def base_path(self, version):
        return f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"

    def list_kind(self):
        return self.kind + "List"

    def discovery_entry(self):
        entry = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": READ_VERBS,
        }
        if self.short_names:
            entry["shortNames"] = self.short_names
        if self.categories:
            entry["categories"] = self.categories
        return entry


RESOURCES = [
    Resource("pods", "pod", "Pod", "", ["v1"], True, ["po"], ["all"]),
    Resource("services", "service", "Service", "", ["v1"], True, ["svc"], ["all"]),
    Resource("namespaces", "namespace", "Namespace", "", ["v1"], False, ["ns"]),
    Resource("endpointslices", "endpointslice", "EndpointSlice", "discovery.k8s.io", ["v1"], True),
    # SMI CRDs: short names as OSM's CRD manifests declare them.
    Resource("traffictargets", "traffictarget", "TrafficTarget", "access.smi-spec.io",
             ["v1alpha3"], True, ["tt"], ["smi"]),
    Resource("httproutegroups", "httproutegroup", "HTTPRouteGroup", "specs.smi-spec.io",
             ["v1alpha4"], True, ["htr"], ["smi"]),
    Resource("tcproutes", "tcproute", "TCPRoute", "specs.smi-spec.io", ["v1alpha4"], True,
             (), ["smi"]),
    Resource("udproutes", "udproute", "UDPRoute", "specs.smi-spec.io", ["v1alpha4"], True,
             (), ["smi"]),
    Resource("trafficsplits", "trafficsplit", "TrafficSplit", "split.smi-spec.io",
             ["v1alpha4", "v1alpha2"], True, ["ts"], ["smi"]),
]


class Registry:
    """Which resources exist and which are installed; thread-safe."""

    def __init__(self, missing=()):
        self.resources = list(RESOURCES)
        self.by_name = {r.name: r for r in self.resources}
        self._lock = threading.Lock()
        unknown = [m for m in missing if m not in self.by_name]
        if unknown:
            raise ValueError(f"unknown resource(s) {unknown}; known: {sorted(self.by_name)}")
        self._missing = set(missing)

    def check_names(self, names):
        unknown = [n for n in names if n not in self.by_name]
        if unknown:
            raise ValueError(f"unknown resource(s) {unknown}; known: {sorted(self.by_name)}")

    def installed(self, res):
        with self._lock:
            return res.name not in self._missing

    def set_installed(self, names, installed):
        self.check_names(names)
        with self._lock:
            if installed:
                self._missing.difference_update(names)
            else:
                self._missing.update(names)

    def lookup_path(self, group, version, plural):
        """The resource served at /api(s)/GROUP/VERSION/PLURAL, or None (404)."""
        for r in self.resources:
            if r.group == group and r.plural == plural and version in r.versions:
                return r if self.installed(r) else None
        return None

    def lookup_kind(self, api_version, kind):
        """(resource, version) for an object's apiVersion and kind, ignoring installation."""
        group, _, version = api_version.rpartition("/")
        for r in self.resources:
            if r.group == group and r.kind == kind and version in r.versions:
                return r, version
        return None, None

    # --- discovery documents -------------------------------------------------

    def _served(self):
        return [r for r in self.resources if self.installed(r)]

    def group_versions(self):
        """{group: [versions in preference order]} of what is installed, core excluded."""
        out = {}
        for r in self._served():
            if not r.group:
                continue
            versions = out.setdefault(r.group, [])
            for v in r.versions:
                if v not in versions:
                    versions.append(v)
        return out

    def api_versions(self, server_address):
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": server_address}]}

    def api_group(self, group, versions):
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def api_group_list(self):
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self.api_group(g, vs) for g, vs in self.group_versions().items()]}

    def api_group_doc(self, group):
        versions = self.group_versions().get(group)
        if not versions:
            return None
        doc = self.api_group(group, versions)
        return {"kind": "APIGroup", "apiVersion": "v1", **doc}

    def api_resource_list(self, group, version):
        """The APIResourceList of /api/v1 or /apis/GROUP/VERSION, or None (404)."""
        entries = [r.discovery_entry() for r in self._served()
                   if r.group == group and version in r.versions]
        if not entries:
            return None
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": entries}


VERSION_INFO = {
    # kubectl compares its own version with this one only to warn about skew;
    # gcloud's kubectl dispatcher picks the client binary matching the minor.
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-shunt-fake",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
    "platform": "linux/amd64",
}
