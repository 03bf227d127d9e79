#include "smi.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "agent/model/field.h"
#include "agent/model/pod.h"
#include "re2/re2.h"

namespace shunt::model {
namespace {

// A ServiceAccount subject; `default_ns` fills a missing namespace.
absl::StatusOr<Subject> ParseSubject(const Field& n, const std::string& default_ns) {
  if (!n.is_object()) return Invalid(n.path(), "must be an object with kind and name");
  auto kind = n["kind"].RequiredString();
  if (!kind.ok()) return kind.status();
  if (*kind != "ServiceAccount")
    return Invalid(n.path() + ".kind",
                   absl::StrCat("'", *kind, "' is not supported (only ServiceAccount)"));
  auto name = n["name"].RequiredString();
  if (!name.ok()) return name.status();
  if (!IsDnsSubdomain(*name))
    return Invalid(n.path() + ".name", absl::StrCat("'", *name, "' is not a valid name"));
  auto ns = n["namespace"].String();
  if (!ns.ok()) return ns.status();
  Subject s{.namespace_ = ns->empty() ? default_ns : *ns, .name = *name};
  if (!IsDnsLabel(s.namespace_))
    return Invalid(n.path() + ".namespace",
                   absl::StrCat("'", s.namespace_, "' is not a valid namespace"));
  return s;
}

absl::Status CheckRegex(const std::string& re, const std::string& path) {
  RE2 compiled(re, RE2::Quiet);
  if (!compiled.ok())
    return Invalid(path, absl::StrCat("'", re, "' is not a valid RE2 regex: ", compiled.error()));
  return absl::OkStatus();
}

// Unknown keys in a route are errors, not ignored: a typo such as `match:`
// or `port:` would otherwise open every port.
absl::Status OnlyKeys(const Field& n, std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : n.json()->items()) {
    bool ok = false;
    for (const char* a : allowed) ok |= key == a;
    if (!ok) return Invalid(n.path(), absl::StrCat("has an unknown field '", key, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<TargetRule> ParseRule(const Field& rule) {
  auto kind = rule["kind"].RequiredString();
  if (!kind.ok()) return kind.status();
  TargetRule r;
  if (*kind == "TCPRoute") {
    r.kind = RouteKind::kTcp;
  } else if (*kind == "UDPRoute") {
    r.kind = RouteKind::kUdp;
  } else if (*kind == "HTTPRouteGroup") {
    r.kind = RouteKind::kHttp;
  } else {
    return Invalid(rule.path() + ".kind",
                   absl::StrCat("unknown route kind '", *kind,
                                "' (expected TCPRoute, UDPRoute or HTTPRouteGroup)"));
  }
  auto name = rule["name"].RequiredString();
  if (!name.ok()) return name.status();
  r.name = *name;
  if (Field m = rule["matches"]; !m.absent()) {
    if (r.kind != RouteKind::kHttp)
      return Invalid(m.path(), "only applies to HTTPRouteGroup rules");
    if (!m.is_array()) return Invalid(m.path(), "must be a list of match names");
    for (size_t j = 0; j < m.size(); ++j) {
      if (!m[j].is_string() || m[j].Text().empty())
        return Invalid(m[j].path(), "must be a match name");
      r.matches.push_back(m[j].Text());
    }
  }
  return r;
}

// Headers: a map (the spec) or a list of one-key maps (the SDK and OSM).
absl::Status ParseHeaders(const Field& hs, HttpMatch& hm) {
  if (hs.absent()) return absl::OkStatus();
  auto add = [&](const std::string& key, const Json& value) -> absl::Status {
    const std::string hpath = absl::StrCat(hs.path(), ".", key);
    if (key.empty() || !value.is_string())
      return Invalid(hpath, "must map a header name to a regex");
    if (auto s = CheckRegex(value.get<std::string>(), hpath); !s.ok()) return s;
    hm.headers.emplace_back(key, value.get<std::string>());
    return absl::OkStatus();
  };
  if (hs.is_object()) {
    for (const auto& [k, v] : hs.json()->items())  // sorted by name already
      if (auto s = add(k, v); !s.ok()) return s;
    return absl::OkStatus();
  }
  if (!hs.is_array()) return Invalid(hs.path(), "must be a map or a list of one-key maps");
  for (const Json& item : *hs.json()) {
    if (!item.is_object()) return Invalid(hs.path(), "list items must be one-key maps");
    for (const auto& [k, v] : item.items())
      if (auto s = add(k, v); !s.ok()) return s;
  }
  // ANDed, so the order means nothing; sorted, both forms compare equal.
  std::sort(hm.headers.begin(), hm.headers.end());
  return absl::OkStatus();
}

}  // namespace

const char* RouteKindName(RouteKind k) {
  switch (k) {
    case RouteKind::kTcp:
      return "TCPRoute";
    case RouteKind::kUdp:
      return "UDPRoute";
    case RouteKind::kHttp:
      return "HTTPRouteGroup";
  }
  return "?";
}

absl::StatusOr<TrafficTarget> ParseTrafficTarget(const Json& doc, const std::string& api_version) {
  auto meta = ReadMeta(doc);
  if (!meta.ok()) return meta.status();
  TrafficTarget t{.namespace_ = meta->namespace_, .name = meta->name, .api_version = api_version};
  Field spec = Field::Root(doc)["spec"];
  if (!spec.is_object()) return absl::InvalidArgumentError("spec is missing");

  auto dest = ParseSubject(spec["destination"], t.namespace_);
  if (!dest.ok()) return dest.status();
  t.destination = *dest;
  // Decision 8: a TrafficTarget protects identities of its own namespace.
  if (t.destination.namespace_ != t.namespace_)
    return Invalid("spec.destination.namespace",
                   absl::StrCat("'", t.destination.namespace_,
                                "' differs from the TrafficTarget's namespace '", t.namespace_,
                                "'; a TrafficTarget may only protect its own namespace"));
  if (Field p = spec["destination"]["port"]; !p.absent()) {
    if (api_version != "access.smi-spec.io/v1alpha2")
      return Invalid(p.path(), "only exists in v1alpha2 (v1alpha3 uses TCPRoute ports)");
    auto port = p.Port();
    if (!port.ok()) return port.status();
    t.destination_port = *port;
  }

  Field sources = spec["sources"];
  if (!sources.is_array() || sources.size() == 0)
    return Invalid("spec.sources", "must list at least one source");
  for (size_t i = 0; i < sources.size(); ++i) {
    auto src = ParseSubject(sources[i], t.namespace_);
    if (!src.ok()) return src.status();
    t.sources.push_back(*src);
  }

  Field rules = spec["rules"];
  if (!rules.is_array() || rules.size() == 0)
    return Invalid("spec.rules", "must list at least one rule");
  for (size_t i = 0; i < rules.size(); ++i) {
    auto r = ParseRule(rules[i]);
    if (!r.ok()) return r.status();
    t.rules.push_back(*std::move(r));
  }
  return t;
}

absl::StatusOr<PortRoute> ParsePortRoute(const Json& doc, RouteKind kind) {
  auto meta = ReadMeta(doc);
  if (!meta.ok()) return meta.status();
  PortRoute r{.kind = kind, .namespace_ = meta->namespace_, .name = meta->name};
  Field spec = Field::Root(doc)["spec"];
  // v1alpha3 TCPRoute had `spec: {}` meaning raw TCP on any port.
  if (spec.absent()) return r;
  if (!spec.is_object()) return absl::InvalidArgumentError("spec must be an object");
  if (auto s = OnlyKeys(spec, {"matches"}); !s.ok()) return s;
  Field matches = spec["matches"];
  if (matches.absent()) return r;
  if (!matches.is_object())
    return Invalid("spec.matches", "must be an object with a ports list (not a list)");
  if (auto s = OnlyKeys(matches, {"ports", "name"}); !s.ok()) return s;
  Field ports = matches["ports"];
  if (ports.absent()) return r;
  if (!ports.is_array()) return Invalid("spec.matches.ports", "must be a list of ports");
  std::set<uint16_t> seen;
  for (size_t i = 0; i < ports.size(); ++i) {
    auto p = ports[i].Port();
    if (!p.ok()) return p.status();
    if (seen.insert(*p).second) r.ports.push_back(*p);
  }
  return r;
}

absl::StatusOr<HttpRouteGroup> ParseHttpRouteGroup(const Json& doc) {
  static const std::set<std::string> kMethods = {"*",      "GET",     "HEAD",    "PUT",   "POST",
                                                 "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  auto meta = ReadMeta(doc);
  if (!meta.ok()) return meta.status();
  HttpRouteGroup g{.namespace_ = meta->namespace_, .name = meta->name};
  Field spec = Field::Root(doc)["spec"];
  if (!spec.is_object()) return absl::InvalidArgumentError("spec is missing");
  Field matches = spec["matches"];
  if (!matches.is_array() || matches.size() == 0)
    return Invalid("spec.matches", "must list at least one match");
  std::set<std::string> names;
  for (size_t i = 0; i < matches.size(); ++i) {
    Field m = matches[i];
    if (!m.is_object()) return Invalid(m.path(), "must be an object");
    HttpMatch hm;
    auto name = m["name"].RequiredString();
    if (!name.ok()) return name.status();
    if (!names.insert(*name).second)
      return Invalid(m.path() + ".name", absl::StrCat("'", *name, "' is used twice"));
    hm.name = *name;
    auto path_regex = m["pathRegex"].String();
    if (!path_regex.ok()) return path_regex.status();
    hm.path_regex = *path_regex;
    if (!hm.path_regex.empty())
      if (auto s = CheckRegex(hm.path_regex, m.path() + ".pathRegex"); !s.ok()) return s;
    if (Field ms = m["methods"]; !ms.absent()) {
      if (!ms.is_array()) return Invalid(ms.path(), "must be a list");
      for (size_t j = 0; j < ms.size(); ++j) {
        const std::string v = ms[j].is_string() ? ms[j].Text() : "";
        if (!kMethods.count(v))
          return Invalid(ms[j].path(), absl::StrCat("'", v, "' is not an HTTP method"));
        hm.methods.push_back(v);
      }
    }
    if (auto s = ParseHeaders(m["headers"], hm); !s.ok()) return s;
    g.matches.push_back(std::move(hm));
  }
  return g;
}

}  // namespace shunt::model
