#include "service.h"

#include <arpa/inet.h>

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/model/field.h"
#include "agent/model/pod.h"

namespace shunt::model {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }

absl::StatusOr<Protocol> ParseProtocol(const Field& f) {
  auto p = f.String();
  if (!p.ok()) return p.status();
  if (p->empty() || *p == "TCP") return Protocol::kTcp;
  if (*p == "UDP") return Protocol::kUdp;
  if (*p == "SCTP") return Protocol::kSctp;
  return Invalid(f.path(), absl::StrCat("'", *p, "' is not a protocol (TCP, UDP or SCTP)"));
}

// A list field that may be absent or null (no elements then).
absl::Status OptionalList(const Field& f) {
  if (!f.absent() && !f.is_array()) return Invalid(f.path(), "must be a list");
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
absl::Status ReadAnnotations(const Field& meta, std::map<std::string, std::string>& out) {
  Field a = meta["annotations"];
  if (a.absent()) return absl::OkStatus();
  if (!a.is_object()) return Invalid("metadata.annotations", "must be a map of strings");
  for (const auto& [key, value] : a.json()->items()) {
    if (key.empty()) return Invalid("metadata.annotations", "has a key that is not a string");
    if (value.is_null()) {
      out[key] = "";
    } else if (value.is_string()) {
      out[key] = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      // The API server wants strings; an unquoted `prometheus.io/port: 9090`
      // in a hand-written manifest still means the text.
      out[key] = value.dump();
    } else {
      return Invalid(absl::StrCat("metadata.annotations.", key), "must be a string");
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Service

// spec.clusterIP / spec.clusterIPs -> svc.headless / cluster_ip. Of a
// dual-stack service the IPv4 address is used, as kube-proxy's IPv4 side does.
absl::Status ReadClusterIp(const Field& spec, Service& svc) {
  auto primary = spec["clusterIP"].String();
  if (!primary.ok()) return primary.status();
  std::vector<std::pair<std::string, std::string>> ips;  // path, address
  Field list = spec["clusterIPs"];
  if (!list.absent()) {
    if (!list.is_array()) return Invalid("spec.clusterIPs", "must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      auto ip = list[i].String();
      if (!ip.ok()) return ip.status();
      ips.emplace_back(list[i].path(), *ip);
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
absl::Status ReadTargetPort(const Field& t, ServicePort& sp) {
  sp.target_port = sp.port;
  if (t.absent()) return absl::OkStatus();
  if (!t.is_string() && !t.is_integer())
    return Invalid(t.path(), "must be a port number or a port name");
  int64_t number = 0;
  if (t.AsInteger(number)) {
    if (number == 0) return absl::OkStatus();
    if (number < 1 || number > 65535)
      return Invalid(t.path(), absl::StrCat("'", t.Text(), "' is not a port (1-65535)"));
    sp.target_port = static_cast<uint16_t>(number);
    return absl::OkStatus();
  }
  const std::string v = t.Text();
  if (v.empty()) return absl::OkStatus();
  if (!IsPortName(v))
    return Invalid(t.path(),
                   absl::StrCat("'", v,
                                "' is not a valid port name (at most 15 lowercase letters, "
                                "digits and '-', with a letter, no '-' at either end or twice "
                                "in a row)"));
  sp.target_port = 0;
  sp.target_port_name = v;
  return absl::OkStatus();
}

absl::Status ReadServicePorts(const Field& spec, Service& svc) {
  Field ports = spec["ports"];
  if (auto s = OptionalList(ports); !s.ok()) return s;
  if (ports.size() == 0) {
    if (svc.headless) return absl::OkStatus();
    return Invalid("spec.ports", "must list at least one port");
  }
  std::map<std::string, size_t> names;
  std::map<std::pair<uint16_t, Protocol>, size_t> numbers;
  for (size_t i = 0; i < ports.size(); ++i) {
    Field p = ports[i];
    if (!p.is_object()) return Invalid(p.path(), "must be an object");
    ServicePort sp;
    auto name = p["name"].String();
    if (!name.ok()) return name.status();
    if (name->empty() && ports.size() > 1)
      return Invalid(p.path() + ".name",
                     "is missing (required when a service has more than one port)");
    if (!name->empty() && !IsDnsLabel(*name))
      return Invalid(p.path() + ".name", absl::StrCat("'", *name, "' is not a valid DNS label"));
    if (auto [it, inserted] = names.emplace(*name, i); !inserted)
      return Invalid(p.path() + ".name",
                     absl::StrCat("'", *name, "' is already spec.ports[", it->second, "]"));
    sp.name = *name;

    if (p["port"].absent()) return Invalid(p.path() + ".port", "is missing");
    auto number = p["port"].Port();
    if (!number.ok()) return number.status();
    sp.port = *number;

    auto protocol = ParseProtocol(p["protocol"]);
    if (!protocol.ok()) return protocol.status();
    if (*protocol == Protocol::kSctp)
      return absl::UnimplementedError(
          absl::StrCat(p.path(), ".protocol SCTP is not load-balanced in this version"));
    sp.protocol = *protocol;
    if (auto [it, inserted] = numbers.emplace(std::make_pair(sp.port, sp.protocol), i); !inserted)
      return Invalid(p.path(), absl::StrCat(sp.port, "/", ProtocolName(sp.protocol),
                                            " is already spec.ports[", it->second, "]"));

    if (auto s = ReadTargetPort(p["targetPort"], sp); !s.ok()) return s;
    auto app = p["appProtocol"].String();
    if (!app.ok()) return app.status();
    sp.app_protocol = *app;
    svc.ports.push_back(std::move(sp));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// EndpointSlice

absl::StatusOr<Endpoint> ReadEndpoint(const Field& e, const std::string& slice_ns) {
  if (!e.is_object()) return Invalid(e.path(), "must be an object");
  Endpoint ep;
  Field addrs = e["addresses"];
  if (!addrs.absent() && !addrs.is_array()) return Invalid(addrs.path(), "must be a list");
  if (addrs.size() == 0) return Invalid(addrs.path(), "must list at least one address");
  for (size_t j = 0; j < addrs.size(); ++j) {
    const std::string a = addrs[j].is_string() ? addrs[j].Text() : "?";
    uint32_t be = 0;
    if (AddressFamily(a, be) != Family::kV4)
      return Invalid(
          addrs[j].path(),
          absl::StrCat("'", a, "' is not an IPv4 address (the slice's addressType is IPv4)"));
    ep.addresses.push_back(a);
    ep.addresses_be.push_back(be);
  }

  Field cond = e["conditions"];
  if (!cond.absent() && !cond.is_object()) return Invalid(cond.path(), "must be an object");
  // Kubernetes: an absent ready means ready; an absent serving defers to
  // ready; an absent terminating means not terminating.
  auto ready = cond["ready"].Bool(true);
  if (!ready.ok()) return ready.status();
  ep.ready = *ready;
  auto serving = cond["serving"].Bool(ep.ready);
  if (!serving.ok()) return serving.status();
  ep.serving = *serving;
  auto terminating = cond["terminating"].Bool(false);
  if (!terminating.ok()) return terminating.status();
  ep.terminating = *terminating;

  auto node = e["nodeName"].String();
  if (!node.ok()) return node.status();
  ep.node_name = *node;

  if (Field ref = e["targetRef"]; !ref.absent()) {
    if (!ref.is_object()) return Invalid(ref.path(), "must be an object");
    auto kind = ref["kind"].String();
    if (!kind.ok()) return kind.status();
    auto ns = ref["namespace"].String();
    if (!ns.ok()) return ns.status();
    auto name = ref["name"].String();
    if (!name.ok()) return name.status();
    ep.target_ref =
        EndpointTargetRef{.kind = *kind, .namespace_ = ns->empty() ? slice_ns : *ns, .name = *name};
  }
  return ep;
}

absl::Status ReadSlicePorts(const Field& ports, EndpointSlice& slice) {
  if (auto s = OptionalList(ports); !s.ok()) return s;
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < ports.size(); ++i) {
    Field p = ports[i];
    if (!p.is_object()) return Invalid(p.path(), "must be an object");
    EndpointPort ep;
    auto name = p["name"].String();
    if (!name.ok()) return name.status();
    if (!name->empty() && !IsDnsLabel(*name))
      return Invalid(p.path() + ".name", absl::StrCat("'", *name, "' is not a valid DNS label"));
    if (auto [it, inserted] = names.emplace(*name, i); !inserted)
      return Invalid(p.path() + ".name",
                     absl::StrCat("'", *name, "' is already ports[", it->second, "]"));
    ep.name = *name;
    if (Field port = p["port"]; !port.absent()) {
      auto number = port.Port();
      if (!number.ok()) return number.status();
      ep.port = *number;
    }
    auto protocol = ParseProtocol(p["protocol"]);
    if (!protocol.ok()) return protocol.status();
    ep.protocol = *protocol;
    auto app = p["appProtocol"].String();
    if (!app.ok()) return app.status();
    ep.app_protocol = *app;
    slice.ports.push_back(std::move(ep));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsServiceName(const std::string& s) { return IsDnsLabel(s) && IsLower(s.front()); }

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
    if (!IsLower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
    if (c == '-' && i > 0 && s[i - 1] == '-') return false;
    letter |= IsLower(c);
  }
  return letter;
}

absl::StatusOr<Service> ParseService(const Json& doc) {
  auto meta = ReadMeta(doc, /*service_name=*/true);
  if (!meta.ok()) return meta.status();
  Service svc{.namespace_ = meta->namespace_, .name = meta->name};
  if (auto s = ReadAnnotations(meta->fields, svc.annotations); !s.ok()) return s;
  auto created = meta->fields["creationTimestamp"].String();
  if (!created.ok()) return created.status();
  if (!created->empty()) {
    svc.created = ParseRfc3339(*created);
    if (!svc.created)
      return Invalid("metadata.creationTimestamp",
                     absl::StrCat("'", *created, "' is not an RFC 3339 time"));
  }
  Field spec = Field::Root(doc)["spec"];
  if (!spec.is_object()) return absl::InvalidArgumentError("spec is missing");

  auto type = spec["type"].String();
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

absl::StatusOr<EndpointSlice> ParseEndpointSlice(const Json& doc) {
  auto meta = ReadMeta(doc);
  if (!meta.ok()) return meta.status();
  EndpointSlice slice{.namespace_ = meta->namespace_, .name = meta->name};

  Field type = Field::Root(doc)["addressType"];
  if (type.absent()) return Invalid("addressType", "is missing");
  const std::string t = type.is_string() ? type.Text() : "?";
  if (t == "IPv6" || t == "FQDN")
    return absl::UnimplementedError(
        absl::StrCat("addressType ", t, " is not load-balanced in this version"));
  if (t != "IPv4")
    return Invalid("addressType", absl::StrCat("'", t, "' is not IPv4, IPv6 or FQDN"));

  const std::string label_path = "metadata.labels[kubernetes.io/service-name]";
  Field labels = meta->fields["labels"];
  if (!labels.absent() && !labels.is_object()) return Invalid("metadata.labels", "must be a map");
  auto service = Field(labels["kubernetes.io/service-name"].json(), label_path).String();
  if (!service.ok()) return service.status();
  if (service->empty()) return Invalid(label_path, "is missing (the slice belongs to no service)");
  if (!IsServiceName(*service))
    return Invalid(label_path, absl::StrCat("'", *service, "' is not a valid Service name"));
  slice.service_name = *service;

  Field endpoints = Field::Root(doc)["endpoints"];
  if (auto s = OptionalList(endpoints); !s.ok()) return s;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    auto ep = ReadEndpoint(endpoints[i], slice.namespace_);
    if (!ep.ok()) return ep.status();
    slice.endpoints.push_back(*std::move(ep));
  }
  if (auto s = ReadSlicePorts(Field::Root(doc)["ports"], slice); !s.ok()) return s;
  return slice;
}

}  // namespace shunt::model
