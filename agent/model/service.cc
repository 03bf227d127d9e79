#include "service.h"

#include <arpa/inet.h>

#include <chrono>
#include <climits>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/model/pod.h"

namespace shunt::model {
namespace {

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, " ", what));
}

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// DNS-1035 label: what Kubernetes requires of a Service name (a DNS label
// that starts with a letter).
bool IsServiceName(const std::string& s) { return IsDnsLabel(s) && IsLower(s.front()); }

// Reads metadata.namespace (default "default") and metadata.name; returns
// the metadata node.
absl::StatusOr<YAML::Node> ReadMeta(const YAML::Node& doc, std::string& ns, std::string& name,
                                    bool service_name) {
  if (!doc.IsMap())
    return absl::InvalidArgumentError("not a Kubernetes object (expected a mapping)");
  YAML::Node meta = doc["metadata"];
  if (!meta || !meta.IsMap()) return absl::InvalidArgumentError("metadata is missing");
  YAML::Node n = meta["name"];
  if (!n || !n.IsScalar() || n.Scalar().empty())
    return absl::InvalidArgumentError("metadata.name is missing");
  if (service_name && !IsServiceName(n.Scalar()))
    return Invalid("metadata.name", absl::StrCat("'", n.Scalar(),
                                                 "' is not a valid Service name (a DNS label "
                                                 "starting with a letter)"));
  if (!IsDnsSubdomain(n.Scalar()))
    return Invalid("metadata.name",
                   absl::StrCat("'", n.Scalar(), "' is not a valid DNS subdomain"));
  name = n.Scalar();
  YAML::Node nsn = meta["namespace"];
  if (nsn && !nsn.IsNull() && !nsn.IsScalar())
    return Invalid("metadata.namespace", "must be a string");
  ns = nsn && nsn.IsScalar() && !nsn.Scalar().empty() ? nsn.Scalar() : "default";
  if (!IsDnsLabel(ns))
    return Invalid("metadata.namespace", absl::StrCat("'", ns, "' is not a valid DNS label"));
  return meta;
}

// A string field that may be absent (empty then); InvalidArgument if it is
// not a scalar.
absl::StatusOr<std::string> OptionalString(const YAML::Node& parent, const char* key,
                                           const std::string& path) {
  if (!parent || !parent.IsMap()) return std::string();
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return std::string();
  if (!n.IsScalar()) return Invalid(path, "must be a string");
  return n.Scalar();
}

// A list field that may be absent or null (an empty list then).
absl::StatusOr<YAML::Node> OptionalList(const YAML::Node& parent, const char* key,
                                        const std::string& path) {
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return YAML::Node(YAML::NodeType::Sequence);
  if (!n.IsSequence()) return Invalid(path, "must be a list");
  return n;
}

absl::StatusOr<uint16_t> Port(const YAML::Node& n, const std::string& path) {
  int v = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v) || v < 1 || v > 65535)
    return Invalid(path,
                   absl::StrCat("'", n.IsScalar() ? n.Scalar() : "?", "' is not a port (1-65535)"));
  return static_cast<uint16_t>(v);
}

absl::StatusOr<Protocol> ParseProtocol(const YAML::Node& parent, const std::string& path) {
  auto p = OptionalString(parent, "protocol", path);
  if (!p.ok()) return p.status();
  if (p->empty() || *p == "TCP") return Protocol::kTcp;
  if (*p == "UDP") return Protocol::kUdp;
  if (*p == "SCTP") return Protocol::kSctp;
  return Invalid(path, absl::StrCat("'", *p, "' is not a protocol (TCP, UDP or SCTP)"));
}

// An optional boolean: `value` is left alone when the field is absent.
absl::Status OptionalBool(const YAML::Node& parent, const char* key, const std::string& path,
                          bool& value) {
  if (!parent || !parent.IsMap()) return absl::OkStatus();
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return absl::OkStatus();
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
    return Invalid(path, "must be true or false");
  value = v;
  return absl::OkStatus();
}

enum class Family { kV4, kV6, kNone };

// Dotted quad -> network byte order; kV6 for an IPv6 address, kNone for neither.
Family AddressFamily(const std::string& s, uint32_t& be) {
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    be = a4.s_addr;
    return Family::kV4;
  }
  in6_addr a6{};
  return inet_pton(AF_INET6, s.c_str(), &a6) == 1 ? Family::kV6 : Family::kNone;
}

// metadata.annotations, every one of them, values as written.
absl::Status ReadAnnotations(const YAML::Node& meta, std::map<std::string, std::string>& out) {
  YAML::Node a = meta["annotations"];
  if (!a || a.IsNull()) return absl::OkStatus();
  if (!a.IsMap()) return Invalid("metadata.annotations", "must be a map of strings");
  for (const auto& kv : a) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty())
      return Invalid("metadata.annotations", "has a key that is not a string");
    const std::string path = absl::StrCat("metadata.annotations.", kv.first.Scalar());
    if (kv.second.IsNull()) {
      out[kv.first.Scalar()] = "";
    } else if (kv.second.IsScalar()) {
      out[kv.first.Scalar()] = kv.second.Scalar();
    } else {
      return Invalid(path, "must be a string");
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Service

// spec.clusterIP / spec.clusterIPs -> svc.headless / cluster_ip. Of a
// dual-stack service the IPv4 address is used, as kube-proxy's IPv4 side does.
absl::Status ReadClusterIp(const YAML::Node& spec, Service& svc) {
  auto primary = OptionalString(spec, "clusterIP", "spec.clusterIP");
  if (!primary.ok()) return primary.status();
  std::vector<std::pair<std::string, std::string>> ips;  // path, address
  YAML::Node list = spec["clusterIPs"];
  if (list && !list.IsNull()) {
    if (!list.IsSequence()) return Invalid("spec.clusterIPs", "must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string path = absl::StrCat("spec.clusterIPs[", i, "]");
      if (!list[i].IsScalar()) return Invalid(path, "must be a string");
      ips.emplace_back(path, list[i].Scalar());
    }
    if (!ips.empty() && !primary->empty() && ips[0].second != *primary)
      return Invalid(
          "spec.clusterIPs[0]",
          absl::StrCat("'", ips[0].second, "' differs from spec.clusterIP '", *primary, "'"));
  }
  if (ips.empty() && !primary->empty()) ips.emplace_back("spec.clusterIP", *primary);
  if (ips.empty())
    return Invalid("spec.clusterIP",
                   "is missing (the file source does not allocate service addresses: write the "
                   "address, or None for a headless service)");
  if (ips[0].second == "None") {
    if (svc.type != ServiceType::kClusterIp)
      return Invalid("spec.clusterIP",
                     absl::StrCat("None (headless) is only valid with type ClusterIP, not ",
                                  ServiceTypeName(svc.type)));
    svc.headless = true;
    return absl::OkStatus();
  }
  std::string v6;
  for (const auto& [path, ip] : ips) {
    uint32_t be = 0;
    switch (AddressFamily(ip, be)) {
      case Family::kV4:
        if (svc.cluster_ip.empty()) {
          svc.cluster_ip = ip;
          svc.cluster_ip_be = be;
        }
        break;
      case Family::kV6:
        if (v6.empty()) v6 = path + " '" + ip + "'";
        break;
      case Family::kNone:
        return Invalid(path, absl::StrCat("'", ip, "' is not an IP address"));
    }
  }
  if (svc.cluster_ip.empty())
    return absl::UnimplementedError(
        absl::StrCat(v6, " is IPv6; IPv6 is not load-balanced in this version"));
  return absl::OkStatus();
}

// spec.ports[].targetPort: a number (0 or absent = the service port, as the
// API server defaults it) or an IANA_SVC_NAME.
absl::Status ReadTargetPort(const YAML::Node& p, const std::string& path, ServicePort& sp) {
  sp.target_port = sp.port;
  YAML::Node t = p["targetPort"];
  if (!t || t.IsNull()) return absl::OkStatus();
  if (!t.IsScalar()) return Invalid(path, "must be a port number or a port name");
  const std::string& v = t.Scalar();
  int64_t number = 0;
  if (absl::SimpleAtoi(v, &number)) {
    if (number == 0) return absl::OkStatus();
    if (number < 1 || number > 65535)
      return Invalid(path, absl::StrCat("'", v, "' is not a port (1-65535)"));
    sp.target_port = static_cast<uint16_t>(number);
    return absl::OkStatus();
  }
  if (v.empty()) return absl::OkStatus();
  if (!IsPortName(v))
    return Invalid(path,
                   absl::StrCat("'", v,
                                "' is not a valid port name (at most 15 lowercase letters, "
                                "digits and '-', with a letter, no '-' at either end or twice "
                                "in a row)"));
  sp.target_port = 0;
  sp.target_port_name = v;
  return absl::OkStatus();
}

absl::Status ReadServicePorts(const YAML::Node& spec, Service& svc) {
  auto ports = OptionalList(spec, "ports", "spec.ports");
  if (!ports.ok()) return ports.status();
  if (ports->size() == 0) {
    if (svc.headless) return absl::OkStatus();
    return Invalid("spec.ports", "must list at least one port");
  }
  std::map<std::string, size_t> names;
  std::map<std::pair<uint16_t, Protocol>, size_t> numbers;
  for (size_t i = 0; i < ports->size(); ++i) {
    const std::string path = absl::StrCat("spec.ports[", i, "]");
    const YAML::Node p = (*ports)[i];
    if (!p.IsMap()) return Invalid(path, "must be an object");
    ServicePort sp;
    auto name = OptionalString(p, "name", path + ".name");
    if (!name.ok()) return name.status();
    if (name->empty() && ports->size() > 1)
      return Invalid(path + ".name", "is missing (required when a service has more than one port)");
    if (!name->empty() && !IsDnsLabel(*name))
      return Invalid(path + ".name", absl::StrCat("'", *name, "' is not a valid DNS label"));
    if (auto [it, inserted] = names.emplace(*name, i); !inserted)
      return Invalid(path + ".name",
                     absl::StrCat("'", *name, "' is already spec.ports[", it->second, "]"));
    sp.name = *name;

    YAML::Node port = p["port"];
    if (!port || port.IsNull()) return Invalid(path + ".port", "is missing");
    auto number = Port(port, path + ".port");
    if (!number.ok()) return number.status();
    sp.port = *number;

    auto protocol = ParseProtocol(p, path + ".protocol");
    if (!protocol.ok()) return protocol.status();
    if (*protocol == Protocol::kSctp)
      return absl::UnimplementedError(
          absl::StrCat(path, ".protocol SCTP is not load-balanced in this version"));
    sp.protocol = *protocol;
    if (auto [it, inserted] = numbers.emplace(std::make_pair(sp.port, sp.protocol), i); !inserted)
      return Invalid(path, absl::StrCat(sp.port, "/", ProtocolName(sp.protocol),
                                        " is already spec.ports[", it->second, "]"));

    if (auto s = ReadTargetPort(p, path + ".targetPort", sp); !s.ok()) return s;
    auto app = OptionalString(p, "appProtocol", path + ".appProtocol");
    if (!app.ok()) return app.status();
    sp.app_protocol = *app;
    svc.ports.push_back(std::move(sp));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// EndpointSlice

absl::StatusOr<Endpoint> ReadEndpoint(const YAML::Node& e, const std::string& path,
                                      const std::string& slice_ns) {
  if (!e.IsMap()) return Invalid(path, "must be an object");
  Endpoint ep;
  YAML::Node addrs = e["addresses"];
  if (addrs && !addrs.IsNull() && !addrs.IsSequence())
    return Invalid(path + ".addresses", "must be a list");
  if (!addrs || addrs.IsNull() || addrs.size() == 0)
    return Invalid(path + ".addresses", "must list at least one address");
  for (size_t j = 0; j < addrs.size(); ++j) {
    const std::string apath = absl::StrCat(path, ".addresses[", j, "]");
    const std::string a = addrs[j].IsScalar() ? addrs[j].Scalar() : "?";
    uint32_t be = 0;
    if (AddressFamily(a, be) != Family::kV4)
      return Invalid(
          apath,
          absl::StrCat("'", a, "' is not an IPv4 address (the slice's addressType is IPv4)"));
    ep.addresses.push_back(a);
    ep.addresses_be.push_back(be);
  }

  YAML::Node cond = e["conditions"];
  if (cond && !cond.IsNull() && !cond.IsMap())
    return Invalid(path + ".conditions", "must be an object");
  // Kubernetes: an absent ready means ready; an absent serving defers to
  // ready; an absent terminating means not terminating.
  ep.ready = true;
  if (auto s = OptionalBool(cond, "ready", path + ".conditions.ready", ep.ready); !s.ok()) return s;
  ep.serving = ep.ready;
  if (auto s = OptionalBool(cond, "serving", path + ".conditions.serving", ep.serving); !s.ok())
    return s;
  ep.terminating = false;
  if (auto s = OptionalBool(cond, "terminating", path + ".conditions.terminating", ep.terminating);
      !s.ok())
    return s;

  auto node = OptionalString(e, "nodeName", path + ".nodeName");
  if (!node.ok()) return node.status();
  ep.node_name = *node;

  if (YAML::Node ref = e["targetRef"]; ref && !ref.IsNull()) {
    if (!ref.IsMap()) return Invalid(path + ".targetRef", "must be an object");
    EndpointTargetRef tr;
    auto kind = OptionalString(ref, "kind", path + ".targetRef.kind");
    if (!kind.ok()) return kind.status();
    auto ns = OptionalString(ref, "namespace", path + ".targetRef.namespace");
    if (!ns.ok()) return ns.status();
    auto name = OptionalString(ref, "name", path + ".targetRef.name");
    if (!name.ok()) return name.status();
    tr.kind = *kind;
    tr.namespace_ = ns->empty() ? slice_ns : *ns;
    tr.name = *name;
    ep.target_ref = std::move(tr);
  }
  return ep;
}

absl::Status ReadSlicePorts(const YAML::Node& doc, EndpointSlice& slice) {
  auto ports = OptionalList(doc, "ports", "ports");
  if (!ports.ok()) return ports.status();
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < ports->size(); ++i) {
    const std::string path = absl::StrCat("ports[", i, "]");
    const YAML::Node p = (*ports)[i];
    if (!p.IsMap()) return Invalid(path, "must be an object");
    EndpointPort ep;
    auto name = OptionalString(p, "name", path + ".name");
    if (!name.ok()) return name.status();
    if (!name->empty() && !IsDnsLabel(*name))
      return Invalid(path + ".name", absl::StrCat("'", *name, "' is not a valid DNS label"));
    if (auto [it, inserted] = names.emplace(*name, i); !inserted)
      return Invalid(path + ".name",
                     absl::StrCat("'", *name, "' is already ports[", it->second, "]"));
    ep.name = *name;
    if (YAML::Node port = p["port"]; port && !port.IsNull()) {
      auto number = Port(port, path + ".port");
      if (!number.ok()) return number.status();
      ep.port = *number;
    }
    auto protocol = ParseProtocol(p, path + ".protocol");
    if (!protocol.ok()) return protocol.status();
    ep.protocol = *protocol;
    auto app = OptionalString(p, "appProtocol", path + ".appProtocol");
    if (!app.ok()) return app.status();
    ep.app_protocol = *app;
    slice.ports.push_back(std::move(ep));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// TrafficSplit

constexpr char kSplitGroup[] = "split.smi-spec.io/";

// RFC 3339 ("2024-01-01T00:00:00Z", fractions and offsets allowed) -> seconds
// since the epoch.
std::optional<int64_t> ParseRfc3339(const std::string& s) {
  auto digits = [&](size_t at, size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (!IsDigit(s[i])) return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
      !digits(8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2, h) || s[13] != ':' ||
      !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, sec))
    return std::nullopt;
  size_t i = 19;
  if (s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = 0, om = 0;
    if (!digits(i + 1, 2, oh) || !digits(i + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = (s[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  return days * 86400 + h * 3600 + mi * 60 + sec - offset;
}

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
  while (i < s.size() && IsDigit(s[i])) whole += s[i++];
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) frac += s[i++];
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

absl::StatusOr<int> Weight(const YAML::Node& b, const std::string& path, bool quantity) {
  YAML::Node w = b["weight"];
  if (!w || w.IsNull()) return Invalid(path, "is missing");
  if (!w.IsScalar()) return Invalid(path, "must be a number");
  const std::string& v = w.Scalar();
  if (quantity) return QuantityMilli(v, path);
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n)) {
    if (!v.empty() && v.back() == 'm')
      return Invalid(path, absl::StrCat("'", v,
                                        "' is not a whole number (quantities such as 500m "
                                        "are split.smi-spec.io/v1alpha1)"));
    return Invalid(path, absl::StrCat("'", v, "' is not a whole number"));
  }
  if (n < 0) return Invalid(path, absl::StrCat(n, " is negative"));
  if (n > INT_MAX)
    return Invalid(path, absl::StrCat("'", v, "' is too large (at most ", INT_MAX, ")"));
  return static_cast<int>(n);
}

// "name", "name.ns", "name.ns.svc" or "name.ns.svc.<cluster domain>" -> name,
// when ns is the split's namespace (SMI: root and backends live in the
// split's namespace; OSM accepts the FQDN).
absl::StatusOr<std::string> SplitService(const YAML::Node& n, const std::string& path,
                                         const std::string& split_ns) {
  if (!n || n.IsNull()) return Invalid(path, "is missing");
  if (!n.IsScalar()) return Invalid(path, "must be a string");
  const std::string& v = n.Scalar();
  if (v.empty()) return Invalid(path, "is empty");
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

}  // namespace

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kSctp:
      return "SCTP";
  }
  return "?";
}

const char* ServiceTypeName(ServiceType t) {
  switch (t) {
    case ServiceType::kClusterIp:
      return "ClusterIP";
    case ServiceType::kNodePort:
      return "NodePort";
    case ServiceType::kLoadBalancer:
      return "LoadBalancer";
  }
  return "?";
}

bool IsPortName(const std::string& s) {
  // IANA_SVC_NAME (RFC 6335) as Kubernetes checks it.
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
  bool letter = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!IsLower(c) && !IsDigit(c) && c != '-') return false;
    if (c == '-' && i > 0 && s[i - 1] == '-') return false;
    letter |= IsLower(c);
  }
  return letter;
}

absl::StatusOr<Service> ParseService(const YAML::Node& doc) {
  Service svc;
  auto meta = ReadMeta(doc, svc.namespace_, svc.name, /*service_name=*/true);
  if (!meta.ok()) return meta.status();
  if (auto s = ReadAnnotations(*meta, svc.annotations); !s.ok()) return s;
  YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) return absl::InvalidArgumentError("spec is missing");

  auto type = OptionalString(spec, "type", "spec.type");
  if (!type.ok()) return type.status();
  if (type->empty() || *type == "ClusterIP") {
    svc.type = ServiceType::kClusterIp;
  } else if (*type == "NodePort") {
    svc.type = ServiceType::kNodePort;
  } else if (*type == "LoadBalancer") {
    svc.type = ServiceType::kLoadBalancer;
  } else if (*type == "ExternalName") {
    return absl::UnimplementedError("spec.type ExternalName has no cluster IP; not load-balanced");
  } else {
    return Invalid("spec.type", absl::StrCat("'", *type,
                                             "' is not a service type (ClusterIP, NodePort, "
                                             "LoadBalancer or ExternalName)"));
  }
  if (auto s = ReadClusterIp(spec, svc); !s.ok()) return s;
  if (auto s = ReadServicePorts(spec, svc); !s.ok()) return s;
  return svc;
}

absl::StatusOr<EndpointSlice> ParseEndpointSlice(const YAML::Node& doc) {
  EndpointSlice slice;
  auto meta = ReadMeta(doc, slice.namespace_, slice.name, /*service_name=*/false);
  if (!meta.ok()) return meta.status();

  YAML::Node type = doc["addressType"];
  if (!type || type.IsNull()) return Invalid("addressType", "is missing");
  const std::string t = type.IsScalar() ? type.Scalar() : "?";
  if (t == "IPv6" || t == "FQDN")
    return absl::UnimplementedError(
        absl::StrCat("addressType ", t, " is not load-balanced in this version"));
  if (t != "IPv4")
    return Invalid("addressType", absl::StrCat("'", t, "' is not IPv4, IPv6 or FQDN"));

  const std::string label_path = "metadata.labels[kubernetes.io/service-name]";
  YAML::Node labels = (*meta)["labels"];
  if (labels && !labels.IsNull() && !labels.IsMap())
    return Invalid("metadata.labels", "must be a map");
  auto service = OptionalString(labels, "kubernetes.io/service-name", label_path);
  if (!service.ok()) return service.status();
  if (service->empty()) return Invalid(label_path, "is missing (the slice belongs to no service)");
  if (!IsServiceName(*service))
    return Invalid(label_path, absl::StrCat("'", *service, "' is not a valid Service name"));
  slice.service_name = *service;

  auto endpoints = OptionalList(doc, "endpoints", "endpoints");
  if (!endpoints.ok()) return endpoints.status();
  for (size_t i = 0; i < endpoints->size(); ++i) {
    auto ep = ReadEndpoint((*endpoints)[i], absl::StrCat("endpoints[", i, "]"), slice.namespace_);
    if (!ep.ok()) return ep.status();
    slice.endpoints.push_back(*std::move(ep));
  }
  if (auto s = ReadSlicePorts(doc, slice); !s.ok()) return s;
  return slice;
}

absl::StatusOr<TrafficSplit> ParseTrafficSplit(const YAML::Node& doc,
                                               const std::string& api_version) {
  const std::string version =
      api_version.rfind(kSplitGroup, 0) == 0 ? api_version.substr(sizeof(kSplitGroup) - 1) : "";
  const bool v1 = version == "v1alpha1", v2 = version == "v1alpha2";
  const bool with_matches = version == "v1alpha3" || version == "v1alpha4";
  if (!v1 && !v2 && !with_matches)
    return Invalid("apiVersion", absl::StrCat("'", api_version,
                                              "' is not split.smi-spec.io/v1alpha4, v1alpha3, "
                                              "v1alpha2 or v1alpha1"));
  TrafficSplit ts;
  ts.api_version = api_version;
  auto meta = ReadMeta(doc, ts.namespace_, ts.name, /*service_name=*/false);
  if (!meta.ok()) return meta.status();
  auto created = OptionalString(*meta, "creationTimestamp", "metadata.creationTimestamp");
  if (!created.ok()) return created.status();
  if (!created->empty()) {
    ts.created = ParseRfc3339(*created);
    if (!ts.created)
      return Invalid("metadata.creationTimestamp",
                     absl::StrCat("'", *created, "' is not an RFC 3339 time"));
  }

  YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) return absl::InvalidArgumentError("spec is missing");
  auto root = SplitService(spec["service"], "spec.service", ts.namespace_);
  if (!root.ok()) return root.status();
  ts.service = *root;

  YAML::Node backends = spec["backends"];
  if (backends && !backends.IsNull() && !backends.IsSequence())
    return Invalid("spec.backends", "must be a list");
  if (!backends || backends.IsNull() || backends.size() == 0)
    return Invalid("spec.backends", "must list at least one backend");
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < backends.size(); ++i) {
    const std::string path = absl::StrCat("spec.backends[", i, "]");
    const YAML::Node b = backends[i];
    if (!b.IsMap()) return Invalid(path, "must be an object with service and weight");
    auto service = SplitService(b["service"], path + ".service", ts.namespace_);
    if (!service.ok()) return service.status();
    // The root may also be a backend: SMI calls that a trade-off, not an
    // error, and Linkerd's own tests do it.
    if (auto [it, inserted] = seen.emplace(*service, i); !inserted)
      return Invalid(path + ".service",
                     absl::StrCat("'", *service, "' is already spec.backends[", it->second, "]"));
    auto weight = Weight(b, path + ".weight", v1);
    if (!weight.ok()) return weight.status();
    ts.backends.push_back({.service = *service, .weight = *weight});
  }
  if (ts.TotalWeight() == 0)
    return absl::InvalidArgumentError("spec.backends: all backend weights are 0");

  YAML::Node matches = spec["matches"];
  if (matches && !matches.IsNull()) {
    if (!with_matches)
      return Invalid("spec.matches",
                     absl::StrCat("is not part of ", api_version, " (it came in v1alpha3)"));
    if (!matches.IsSequence()) return Invalid("spec.matches", "must be a list");
    std::set<std::string> names;
    for (size_t i = 0; i < matches.size(); ++i) {
      const std::string path = absl::StrCat("spec.matches[", i, "]");
      const YAML::Node m = matches[i];
      if (!m.IsMap()) return Invalid(path, "must be an object with kind and name");
      auto kind = OptionalString(m, "kind", path + ".kind");
      if (!kind.ok()) return kind.status();
      if (kind->empty()) return Invalid(path + ".kind", "is missing");
      if (*kind != "HTTPRouteGroup")
        return Invalid(path + ".kind",
                       absl::StrCat("'", *kind, "' is not supported (only HTTPRouteGroup)"));
      auto group = OptionalString(m, "apiGroup", path + ".apiGroup");
      if (!group.ok()) return group.status();
      if (!group->empty() && *group != "specs.smi-spec.io")
        return Invalid(path + ".apiGroup", absl::StrCat("'", *group, "' is not specs.smi-spec.io"));
      auto name = OptionalString(m, "name", path + ".name");
      if (!name.ok()) return name.status();
      if (name->empty()) return Invalid(path + ".name", "is missing");
      if (!IsDnsSubdomain(*name))
        return Invalid(path + ".name", absl::StrCat("'", *name, "' is not a valid name"));
      // The groups are merged into one, so naming one twice changes nothing.
      if (names.insert(*name).second) ts.matches.push_back({.kind = *kind, .name = *name});
    }
  }
  return ts;
}

}  // namespace shunt::model
