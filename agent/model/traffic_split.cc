// TrafficSplit (split.smi-spec.io v1alpha1 to v1alpha4); see service.h.
#include <chrono>
#include <climits>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/model/field.h"
#include "agent/model/pod.h"
#include "agent/model/service.h"

namespace shunt::model {
namespace {

constexpr char kSplitGroup[] = "split.smi-spec.io/";

// A v1alpha1 weight, a Kubernetes quantity, in thousandths: "500m" -> 500,
// "1" -> 1000, "1.5" -> 1500, "2k" -> 2000000. Decimal suffixes only;
// weights are proportions, so 1Ki or 1e3 would mean nothing useful.
absl::StatusOr<int> QuantityMilli(const std::string& s, const std::string& path) {
  auto not_quantity = [&] {
    return Invalid(path, absl::StrCat("'", s, "' is not a quantity (such as 500m, 1 or 1.5)"));
  };
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  std::string whole, frac;
  while (i < s.size() && absl::ascii_isdigit(s[i])) whole += s[i++];
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && absl::ascii_isdigit(s[i])) frac += s[i++];
  }
  if (whole.empty() && frac.empty()) return not_quantity();
  const std::string suffix = s.substr(i);
  int exponent;  // of ten, relative to thousandths
  if (suffix == "m") {
    exponent = 0;
  } else if (suffix.empty()) {
    exponent = 3;
  } else if (suffix == "k") {
    exponent = 6;
  } else if (suffix == "M") {
    exponent = 9;
  } else if (suffix == "G") {
    exponent = 12;
  } else {
    return not_quantity();
  }
  std::string digits = whole + frac;
  exponent -= static_cast<int>(frac.size());
  for (; exponent < 0; ++exponent) {
    if (digits.back() != '0') return Invalid(path, absl::StrCat("'", s, "' is finer than 1m"));
    digits.pop_back();
  }
  digits.append(static_cast<size_t>(exponent), '0');
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return 0;
  if (negative) return Invalid(path, absl::StrCat(s, " is negative"));
  int64_t v = 0;
  if (digits.size() > 10 || !absl::SimpleAtoi(digits, &v) || v > INT_MAX)
    return Invalid(path, absl::StrCat("'", s, "' is too large (at most ", INT_MAX, "m)"));
  return static_cast<int>(v);
}

absl::StatusOr<int> Weight(const Field& w, bool quantity) {
  if (w.absent()) return Invalid(w.path(), "is missing");
  if (!w.is_string() && !w.json()->is_number()) return Invalid(w.path(), "must be a number");
  const std::string v = w.Text();
  if (quantity) return QuantityMilli(v, w.path());
  int64_t n = 0;
  if (!w.AsInteger(n)) {
    if (!v.empty() && v.back() == 'm')
      return Invalid(w.path(), absl::StrCat("'", v,
                                            "' is not a whole number (quantities such as 500m "
                                            "are split.smi-spec.io/v1alpha1)"));
    return Invalid(w.path(), absl::StrCat("'", v, "' is not a whole number"));
  }
  if (n < 0) return Invalid(w.path(), absl::StrCat(n, " is negative"));
  if (n > INT_MAX)
    return Invalid(w.path(), absl::StrCat("'", v, "' is too large (at most ", INT_MAX, ")"));
  return static_cast<int>(n);
}

// "name", "name.ns", "name.ns.svc" or "name.ns.svc.<cluster domain>" -> name,
// when ns is the split's namespace (SMI: root and backends live in the
// split's namespace; OSM accepts the FQDN).
absl::StatusOr<std::string> SplitService(const Field& n, const std::string& split_ns) {
  auto value = n.RequiredString();
  if (!value.ok()) return value.status();
  const std::string& v = *value;
  const std::string& path = n.path();
  std::vector<std::string> parts = absl::StrSplit(v, '.');
  if (!IsServiceName(parts[0]))
    return Invalid(path, absl::StrCat("'", v, "' is not a valid Service name"));
  bool fqdn = parts.size() < 3 || parts[2] == "svc";
  for (size_t i = 1; i < parts.size() && fqdn; ++i) fqdn = IsDnsLabel(parts[i]);
  if (!fqdn)
    return Invalid(
        path, absl::StrCat("'", v, "' is neither a Service name nor name.namespace.svc[.domain]"));
  if (parts.size() >= 2 && parts[1] != split_ns)
    return Invalid(path, absl::StrCat("'", v, "' is in namespace '", parts[1],
                                      "'; a TrafficSplit's services must be in its own namespace '",
                                      split_ns, "'"));
  return parts[0];
}

// spec.matches (v1alpha3 and v1alpha4): HTTPRouteGroups in the split's namespace.
absl::Status ReadSplitMatches(const Field& matches, TrafficSplit& ts) {
  if (!matches.is_array()) return Invalid("spec.matches", "must be a list");
  std::set<std::string> names;
  for (size_t i = 0; i < matches.size(); ++i) {
    Field m = matches[i];
    if (!m.is_object()) return Invalid(m.path(), "must be an object with kind and name");
    auto kind = m["kind"].String();
    if (!kind.ok()) return kind.status();
    if (kind->empty()) return Invalid(m.path() + ".kind", "is missing");
    if (*kind != "HTTPRouteGroup")
      return Invalid(m.path() + ".kind",
                     absl::StrCat("'", *kind, "' is not supported (only HTTPRouteGroup)"));
    auto group = m["apiGroup"].String();
    if (!group.ok()) return group.status();
    if (!group->empty() && *group != "specs.smi-spec.io")
      return Invalid(m.path() + ".apiGroup",
                     absl::StrCat("'", *group, "' is not specs.smi-spec.io"));
    auto name = m["name"].String();
    if (!name.ok()) return name.status();
    if (name->empty()) return Invalid(m.path() + ".name", "is missing");
    if (!IsDnsSubdomain(*name))
      return Invalid(m.path() + ".name", absl::StrCat("'", *name, "' is not a valid name"));
    // The groups are merged into one, so naming one twice changes nothing.
    if (names.insert(*name).second) ts.matches.push_back({.kind = *kind, .name = *name});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrafficSplit> ParseTrafficSplit(const Json& doc, const std::string& api_version) {
  const std::string version =
      api_version.rfind(kSplitGroup, 0) == 0 ? api_version.substr(sizeof(kSplitGroup) - 1) : "";
  const bool v1 = version == "v1alpha1", v2 = version == "v1alpha2";
  const bool with_matches = version == "v1alpha3" || version == "v1alpha4";
  if (!v1 && !v2 && !with_matches)
    return Invalid("apiVersion", absl::StrCat("'", api_version,
                                              "' is not split.smi-spec.io/v1alpha4, v1alpha3, "
                                              "v1alpha2 or v1alpha1"));
  auto meta = ReadMeta(doc);
  if (!meta.ok()) return meta.status();
  TrafficSplit ts{.namespace_ = meta->namespace_, .name = meta->name, .api_version = api_version};
  auto created = meta->fields["creationTimestamp"].String();
  if (!created.ok()) return created.status();
  if (!created->empty()) {
    ts.created = ParseRfc3339(*created);
    if (!ts.created)
      return Invalid("metadata.creationTimestamp",
                     absl::StrCat("'", *created, "' is not an RFC 3339 time"));
  }

  Field spec = Field::Root(doc)["spec"];
  if (!spec.is_object()) return absl::InvalidArgumentError("spec is missing");
  auto root = SplitService(spec["service"], ts.namespace_);
  if (!root.ok()) return root.status();
  ts.service = *root;

  Field backends = spec["backends"];
  if (!backends.absent() && !backends.is_array()) return Invalid("spec.backends", "must be a list");
  if (backends.size() == 0) return Invalid("spec.backends", "must list at least one backend");
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < backends.size(); ++i) {
    Field b = backends[i];
    if (!b.is_object()) return Invalid(b.path(), "must be an object with service and weight");
    auto service = SplitService(b["service"], ts.namespace_);
    if (!service.ok()) return service.status();
    // The root may also be a backend: SMI calls that a trade-off, not an
    // error, and Linkerd's own tests do it.
    if (auto [it, inserted] = seen.emplace(*service, i); !inserted)
      return Invalid(b.path() + ".service",
                     absl::StrCat("'", *service, "' is already spec.backends[", it->second, "]"));
    auto weight = Weight(b["weight"], v1);
    if (!weight.ok()) return weight.status();
    ts.backends.push_back({.service = *service, .weight = *weight});
  }
  if (ts.TotalWeight() == 0)
    return absl::InvalidArgumentError("spec.backends: all backend weights are 0");

  if (Field matches = spec["matches"]; !matches.absent()) {
    if (!with_matches)
      return Invalid("spec.matches",
                     absl::StrCat("is not part of ", api_version, " (it came in v1alpha3)"));
    if (auto s = ReadSplitMatches(matches, ts); !s.ok()) return s;
  }
  return ts;
}

}  // namespace shunt::model
