// What the agent tells its shunt-proxy (docs/mtls.md "The agent and its
// proxy"): the certificates it holds for the node's workloads and for the
// node proxy itself, the cluster CA, and where the pods are. Sent whole, as
// one JSON line, over the socketpair the agent gave the proxy at start (only
// the two processes hold it): the CA's key never leaves the agent.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/model/smi.h"
#include "nlohmann/json.hpp"
#include "proxy/control/l7_service_config.h"

namespace shunt::proxy {

// A certificate and its key, for one identity ("namespace/serviceaccount").
struct Credential {
  std::string identity;
  std::string cert_pem;
  std::string key_pem;
};

struct ProxyConfig {
  uint64_t generation = 0;  // the agent's object snapshot this was made from
  // --mtls: "permissive" or "strict"; "off": the L7 layer alone (no
  // credentials, no tunnels: shunt-proxy --l7-only).
  std::string mode;
  std::string trust_domain;
  std::string ca_pem;
  Credential node_proxy;              // certs::kNodeProxy*: the tunnels' server end
  std::vector<Credential> workloads;  // one per identity with a local pod
  // Local pods: address (IPv4 or IPv6 text) -> identity. The outbound side
  // names the source of a handed-off connection by its address.
  std::map<std::string, std::string> local_pods;
  // Pods on other nodes: address -> their node's address (status.hostIP),
  // where that node's proxy listens.
  std::map<std::string, std::string> remote_pods;
  // The agent's identity numbers ("ns/sa" -> number), as in its policy map.
  std::map<std::string, uint32_t> identity_ids;
  // The L7 layer's policy (docs/l7.md): the SMI objects it judges requests
  // by, as the agent's object store holds them ("l7" in the JSON, each
  // object in its Kubernetes shape, read back with the model's parsers).
  std::vector<model::TrafficTarget> traffic_targets;
  std::vector<model::PortRoute> tcp_routes;
  std::vector<model::HttpRouteGroup> http_route_groups;
  // Services whose requests the L7 layer balances ("l7_services").
  std::vector<L7Service> l7_services;
  // Local pods' ports whose Service says which HTTP version they speak
  // (HttpVersionOf its port's appProtocol): "ip:port" -> "h2c" or "http1".
  // The L7 layer maps a client that speaks the other one.
  std::map<std::string, std::string> upstream_http;
};

nlohmann::json ProxyConfigToJson(const ProxyConfig& c);
// InvalidArgument naming the field that is missing or wrong.
absl::StatusOr<ProxyConfig> ProxyConfigFromJson(const nlohmann::json& j);

}  // namespace shunt::proxy
