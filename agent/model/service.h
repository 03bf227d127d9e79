// What the service load balancer needs to know, parsed and validated from
// Kubernetes v1 Service, discovery.k8s.io/v1 EndpointSlice and SMI
// split.smi-spec.io TrafficSplit (v1alpha4, v1alpha3, v1alpha2, v1alpha1)
// objects. ../shared/SMI.md section 7 records the decisions where the SMI
// spec is open; the Kubernetes rules are the API server's.
//
// Errors:
//  * InvalidArgument naming the field path: the object is wrong
//    ("spec.ports[1].targetPort 'Web' is not a valid port name ...").
//  * Unimplemented: the object is valid Kubernetes that this version does
//    not load-balance (an ExternalName or IPv6 Service, an SCTP port, an
//    IPv6 or FQDN EndpointSlice). Sources report these as notices, not
//    problems.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

enum class Protocol { kTcp, kUdp, kSctp };  // kSctp only appears in EndpointSlice ports
const char* ProtocolName(Protocol p);       // "TCP", "UDP", "SCTP"

// ClusterIP, NodePort and LoadBalancer services all have a cluster IP, which
// is the address this version balances. ExternalName is not parsed.
enum class ServiceType { kClusterIp, kNodePort, kLoadBalancer };
const char* ServiceTypeName(ServiceType t);  // "ClusterIP", "NodePort", "LoadBalancer"

struct ServicePort {
  std::string name;   // a DNS label; required and unique when the service has several ports
  uint16_t port = 0;  // the port clients connect to on the cluster IP
  Protocol protocol = Protocol::kTcp;  // TCP or UDP
  // spec.ports[].targetPort: a number, or the name of a container port (then
  // target_port is 0 and the number comes from the EndpointSlice port of
  // that name). Defaults to `port`.
  uint16_t target_port = 0;
  std::string target_port_name;
  std::string app_protocol;  // spec.ports[].appProtocol as written, empty if absent

  bool operator==(const ServicePort&) const = default;
};

struct Service {
  std::string namespace_;  // metadata.namespace, "default" when absent
  std::string name;        // metadata.name, a DNS-1035 label
  ServiceType type = ServiceType::kClusterIp;
  // spec.clusterIP "None": no virtual IP, nothing to balance; clients
  // resolve the endpoints themselves.
  bool headless = false;
  std::string cluster_ip;                          // dotted quad; empty when headless
  uint32_t cluster_ip_be = 0;                      // the same, network byte order
  std::vector<ServicePort> ports;                  // may be empty only when headless
  std::map<std::string, std::string> annotations;  // metadata.annotations, all of them
  // metadata.creationTimestamp (seconds since the epoch), if written: of two
  // Services claiming one clusterIP the older keeps it.
  std::optional<int64_t> created;

  std::string Key() const { return namespace_ + "/" + name; }
  bool operator==(const Service&) const = default;
};

// endpoints[].targetRef: usually the Pod behind the address.
struct EndpointTargetRef {
  std::string kind;
  std::string namespace_;  // the slice's namespace when absent
  std::string name;
  bool operator==(const EndpointTargetRef&) const = default;
};

struct Endpoint {
  // IPv4 dotted quads, at least one. Kubernetes fills one; consumers use the first.
  std::vector<std::string> addresses;
  std::vector<uint32_t> addresses_be;  // the same, network byte order
  // Kubernetes' defaults for absent conditions: ready = true, serving =
  // ready, terminating = false.
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string node_name;  // empty if absent
  std::optional<EndpointTargetRef> target_ref;

  bool operator==(const Endpoint&) const = default;
};

struct EndpointPort {
  std::string name;  // may be empty (the service's single unnamed port)
  // 0 when absent, which Kubernetes defines as "all ports": such a port
  // matches no service port by number.
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
  std::string app_protocol;

  bool operator==(const EndpointPort&) const = default;
};

// Only IPv4 slices are parsed (addressType IPv4); others are Unimplemented.
struct EndpointSlice {
  std::string namespace_;
  std::string name;
  std::string service_name;  // label kubernetes.io/service-name
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;

  std::string Key() const { return namespace_ + "/" + name; }
  bool operator==(const EndpointSlice&) const = default;
};

struct SplitBackend {
  std::string service;  // a Service name in the split's namespace (FQDN forms shortened)
  // A relative weight, >= 0. v1alpha1 quantities are read in thousandths
  // ("500m" = 500, "1" = 1000); weights are proportions, so only the
  // ratios within one split matter.
  int weight = 0;
  bool operator==(const SplitBackend&) const = default;
};

// spec.matches[] (v1alpha3 and v1alpha4): the split applies only to requests
// matching these route groups; the rest go to the root service.
struct SplitMatch {
  std::string kind;  // always "HTTPRouteGroup"
  std::string name;  // in the split's namespace
  bool operator==(const SplitMatch&) const = default;
};

struct TrafficSplit {
  std::string namespace_;
  std::string name;
  std::string api_version;  // "split.smi-spec.io/v1alpha4", ...
  // spec.service: the root (apex) Service's name. "checkout.shop",
  // "checkout.shop.svc" and "checkout.shop.svc.cluster.local" are read as
  // "checkout" when "shop" is the split's namespace (as OSM does).
  std::string service;
  std::vector<SplitBackend> backends;  // at least one; not all weights 0
  std::vector<SplitMatch> matches;     // empty = the split applies to all traffic
  // metadata.creationTimestamp in seconds since the epoch, if written: of
  // several splits of one root the oldest wins (SMI.md 7.10).
  std::optional<int64_t> created;

  std::string Key() const { return namespace_ + "/" + name; }
  std::string RootKey() const { return namespace_ + "/" + service; }
  int64_t TotalWeight() const {
    int64_t total = 0;
    for (const SplitBackend& b : backends) total += b.weight;
    return total;
  }
  bool operator==(const TrafficSplit&) const = default;
};

// InvalidArgument naming the field, or Unimplemented (see the top of this file).
absl::StatusOr<Service> ParseService(const nlohmann::json& doc);
absl::StatusOr<EndpointSlice> ParseEndpointSlice(const nlohmann::json& doc);
// `api_version` is the object's apiVersion, one of split.smi-spec.io/v1alpha1
// to v1alpha4 (InvalidArgument otherwise); it decides how weights read and
// whether `matches` may appear.
absl::StatusOr<TrafficSplit> ParseTrafficSplit(const nlohmann::json& doc,
                                               const std::string& api_version);

// Kubernetes IANA_SVC_NAME: a named container port or targetPort.
bool IsPortName(const std::string& s);
// DNS-1035 label: what Kubernetes requires of a Service name (a DNS label
// that starts with a letter).
bool IsServiceName(const std::string& s);

}  // namespace shunt::model
