#include "smi.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "agent/model/pod.h"
#include "re2/re2.h"

namespace shunt::model {
namespace {

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, " ", what));
}

// Reads metadata.namespace (default "default") and metadata.name.
absl::Status ReadMeta(const YAML::Node& doc, std::string& ns, std::string& name) {
  if (!doc.IsMap()) return absl::InvalidArgumentError("not a Kubernetes object (expected a mapping)");
  YAML::Node meta = doc["metadata"];
  if (!meta || !meta.IsMap()) return absl::InvalidArgumentError("metadata is missing");
  YAML::Node n = meta["name"];
  if (!n || !n.IsScalar() || n.Scalar().empty()) return absl::InvalidArgumentError("metadata.name is missing");
  if (!IsDnsSubdomain(n.Scalar()))
    return Invalid("metadata.name", absl::StrCat("'", n.Scalar(), "' is not a valid DNS subdomain"));
  name = n.Scalar();
  YAML::Node nsn = meta["namespace"];
  ns = nsn && nsn.IsScalar() && !nsn.Scalar().empty() ? nsn.Scalar() : "default";
  if (!IsDnsLabel(ns)) return Invalid("metadata.namespace", absl::StrCat("'", ns, "' is not a valid DNS label"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> RequiredString(const YAML::Node& parent, const char* key, const std::string& path) {
  YAML::Node n = parent && parent.IsMap() ? parent[key] : YAML::Node();
  if (!n || n.IsNull()) return Invalid(path, "is missing");
  if (!n.IsScalar()) return Invalid(path, "must be a string");
  if (n.Scalar().empty()) return Invalid(path, "is empty");
  return n.Scalar();
}

std::string OptionalString(const YAML::Node& parent, const char* key) {
  YAML::Node n = parent && parent.IsMap() ? parent[key] : YAML::Node();
  return n && n.IsScalar() ? n.Scalar() : "";
}

absl::StatusOr<uint16_t> Port(const YAML::Node& n, const std::string& path) {
  int v = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v) || v < 1 || v > 65535)
    return Invalid(path, absl::StrCat("'", n.IsScalar() ? n.Scalar() : "?", "' is not a port (1-65535)"));
  return static_cast<uint16_t>(v);
}

// A ServiceAccount subject; `default_ns` fills a missing namespace.
absl::StatusOr<Subject> ParseSubject(const YAML::Node& n, const std::string& path,
                                     const std::string& default_ns) {
  if (!n || !n.IsMap()) return Invalid(path, "must be an object with kind and name");
  auto kind = RequiredString(n, "kind", path + ".kind");
  if (!kind.ok()) return kind.status();
  if (*kind != "ServiceAccount")
    return Invalid(path + ".kind", absl::StrCat("'", *kind, "' is not supported (only ServiceAccount)"));
  auto name = RequiredString(n, "name", path + ".name");
  if (!name.ok()) return name.status();
  if (!IsDnsSubdomain(*name)) return Invalid(path + ".name", absl::StrCat("'", *name, "' is not a valid name"));
  Subject s{.namespace_ = OptionalString(n, "namespace"), .name = *name};
  if (s.namespace_.empty()) s.namespace_ = default_ns;
  if (!IsDnsLabel(s.namespace_))
    return Invalid(path + ".namespace", absl::StrCat("'", s.namespace_, "' is not a valid namespace"));
  return s;
}

absl::Status CheckRegex(const std::string& re, const std::string& path) {
  RE2 compiled(re, RE2::Quiet);
  if (!compiled.ok()) return Invalid(path, absl::StrCat("'", re, "' is not a valid RE2 regex: ", compiled.error()));
  return absl::OkStatus();
}

}  // namespace

const char* RouteKindName(RouteKind k) {
  switch (k) {
    case RouteKind::kTcp: return "TCPRoute";
    case RouteKind::kUdp: return "UDPRoute";
    case RouteKind::kHttp: return "HTTPRouteGroup";
  }
  return "?";
}

absl::StatusOr<TrafficTarget> ParseTrafficTarget(const YAML::Node& doc, const std::string& api_version) {
  TrafficTarget t;
  t.api_version = api_version;
  if (auto s = ReadMeta(doc, t.namespace_, t.name); !s.ok()) return s;
  YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) return absl::InvalidArgumentError("spec is missing");

  auto dest = ParseSubject(spec["destination"], "spec.destination", t.namespace_);
  if (!dest.ok()) return dest.status();
  t.destination = *dest;
  // Decision 8: a TrafficTarget protects identities of its own namespace.
  if (t.destination.namespace_ != t.namespace_)
    return Invalid("spec.destination.namespace",
                   absl::StrCat("'", t.destination.namespace_, "' differs from the TrafficTarget's namespace '",
                                t.namespace_, "'; a TrafficTarget may only protect its own namespace"));
  if (YAML::Node p = spec["destination"]["port"]; p && !p.IsNull()) {
    if (api_version != "access.smi-spec.io/v1alpha2")
      return Invalid("spec.destination.port", "only exists in v1alpha2 (v1alpha3 uses TCPRoute ports)");
    auto port = Port(p, "spec.destination.port");
    if (!port.ok()) return port.status();
    t.destination_port = *port;
  }

  YAML::Node sources = spec["sources"];
  if (!sources || !sources.IsSequence() || sources.size() == 0)
    return Invalid("spec.sources", "must list at least one source");
  for (size_t i = 0; i < sources.size(); ++i) {
    auto src = ParseSubject(sources[i], absl::StrCat("spec.sources[", i, "]"), t.namespace_);
    if (!src.ok()) return src.status();
    t.sources.push_back(*src);
  }

  YAML::Node rules = spec["rules"];
  if (!rules || !rules.IsSequence() || rules.size() == 0)
    return Invalid("spec.rules", "must list at least one rule");
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string path = absl::StrCat("spec.rules[", i, "]");
    auto kind = RequiredString(rules[i], "kind", path + ".kind");
    if (!kind.ok()) return kind.status();
    TargetRule r;
    if (*kind == "TCPRoute") {
      r.kind = RouteKind::kTcp;
    } else if (*kind == "UDPRoute") {
      r.kind = RouteKind::kUdp;
    } else if (*kind == "HTTPRouteGroup") {
      r.kind = RouteKind::kHttp;
    } else {
      return Invalid(path + ".kind", absl::StrCat("unknown route kind '", *kind,
                                                  "' (expected TCPRoute, UDPRoute or HTTPRouteGroup)"));
    }
    auto name = RequiredString(rules[i], "name", path + ".name");
    if (!name.ok()) return name.status();
    r.name = *name;
    if (YAML::Node m = rules[i]["matches"]; m && !m.IsNull()) {
      if (r.kind != RouteKind::kHttp) return Invalid(path + ".matches", "only applies to HTTPRouteGroup rules");
      if (!m.IsSequence()) return Invalid(path + ".matches", "must be a list of match names");
      for (size_t j = 0; j < m.size(); ++j) {
        if (!m[j].IsScalar() || m[j].Scalar().empty())
          return Invalid(absl::StrCat(path, ".matches[", j, "]"), "must be a match name");
        r.matches.push_back(m[j].Scalar());
      }
    }
    t.rules.push_back(std::move(r));
  }
  return t;
}

// Unknown keys in a route are errors, not ignored: a typo such as `match:`
// or `port:` would otherwise open every port.
absl::Status OnlyKeys(const YAML::Node& n, std::initializer_list<const char*> allowed,
                      const std::string& path) {
  for (const auto& kv : n) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    bool ok = false;
    for (const char* a : allowed) ok |= key == a;
    if (!ok) return Invalid(path, absl::StrCat("has an unknown field '", key, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<PortRoute> ParsePortRoute(const YAML::Node& doc, RouteKind kind) {
  PortRoute r{.kind = kind};
  if (auto s = ReadMeta(doc, r.namespace_, r.name); !s.ok()) return s;
  YAML::Node spec = doc["spec"];
  // v1alpha3 TCPRoute had `spec: {}` meaning raw TCP on any port.
  if (!spec || spec.IsNull()) return r;
  if (!spec.IsMap()) return absl::InvalidArgumentError("spec must be an object");
  if (auto s = OnlyKeys(spec, {"matches"}, "spec"); !s.ok()) return s;
  YAML::Node matches = spec["matches"];
  if (!matches || matches.IsNull()) return r;
  if (!matches.IsMap())
    return Invalid("spec.matches", "must be an object with a ports list (not a list)");
  if (auto s = OnlyKeys(matches, {"ports", "name"}, "spec.matches"); !s.ok()) return s;
  YAML::Node ports = matches["ports"];
  if (!ports || ports.IsNull()) return r;
  if (!ports.IsSequence()) return Invalid("spec.matches.ports", "must be a list of ports");
  std::set<uint16_t> seen;
  for (size_t i = 0; i < ports.size(); ++i) {
    auto p = Port(ports[i], absl::StrCat("spec.matches.ports[", i, "]"));
    if (!p.ok()) return p.status();
    if (seen.insert(*p).second) r.ports.push_back(*p);
  }
  return r;
}

absl::StatusOr<HttpRouteGroup> ParseHttpRouteGroup(const YAML::Node& doc) {
  static const std::set<std::string> kMethods = {"*",       "GET",     "HEAD",  "PUT",  "POST",
                                                 "DELETE",  "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  HttpRouteGroup g;
  if (auto s = ReadMeta(doc, g.namespace_, g.name); !s.ok()) return s;
  YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) return absl::InvalidArgumentError("spec is missing");
  YAML::Node matches = spec["matches"];
  if (!matches || !matches.IsSequence() || matches.size() == 0)
    return Invalid("spec.matches", "must list at least one match");
  std::set<std::string> names;
  for (size_t i = 0; i < matches.size(); ++i) {
    const std::string path = absl::StrCat("spec.matches[", i, "]");
    const YAML::Node& m = matches[i];
    if (!m.IsMap()) return Invalid(path, "must be an object");
    HttpMatch hm;
    auto name = RequiredString(m, "name", path + ".name");
    if (!name.ok()) return name.status();
    if (!names.insert(*name).second) return Invalid(path + ".name", absl::StrCat("'", *name, "' is used twice"));
    hm.name = *name;
    hm.path_regex = OptionalString(m, "pathRegex");
    if (!hm.path_regex.empty())
      if (auto s = CheckRegex(hm.path_regex, path + ".pathRegex"); !s.ok()) return s;
    if (YAML::Node ms = m["methods"]; ms && !ms.IsNull()) {
      if (!ms.IsSequence()) return Invalid(path + ".methods", "must be a list");
      for (size_t j = 0; j < ms.size(); ++j) {
        const std::string v = ms[j].IsScalar() ? ms[j].Scalar() : "";
        if (!kMethods.count(v))
          return Invalid(absl::StrCat(path, ".methods[", j, "]"), absl::StrCat("'", v, "' is not an HTTP method"));
        hm.methods.push_back(v);
      }
    }
    // Headers: a map (the spec) or a list of one-key maps (the SDK and OSM).
    if (YAML::Node hs = m["headers"]; hs && !hs.IsNull()) {
      auto add = [&](const YAML::Node& k, const YAML::Node& v) -> absl::Status {
        const std::string hpath = absl::StrCat(path, ".headers.", k.IsScalar() ? k.Scalar() : "?");
        if (!k.IsScalar() || k.Scalar().empty() || !v.IsScalar()) return Invalid(hpath, "must map a header name to a regex");
        if (auto s = CheckRegex(v.Scalar(), hpath); !s.ok()) return s;
        hm.headers.emplace_back(k.Scalar(), v.Scalar());
        return absl::OkStatus();
      };
      if (hs.IsMap()) {
        for (const auto& kv : hs)
          if (auto s = add(kv.first, kv.second); !s.ok()) return s;
      } else if (hs.IsSequence()) {
        for (const auto& item : hs) {
          if (!item.IsMap()) return Invalid(path + ".headers", "list items must be one-key maps");
          for (const auto& kv : item)
            if (auto s = add(kv.first, kv.second); !s.ok()) return s;
        }
      } else {
        return Invalid(path + ".headers", "must be a map or a list of one-key maps");
      }
    }
    g.matches.push_back(std::move(hm));
  }
  return g;
}

}  // namespace shunt::model
