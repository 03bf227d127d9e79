// The services whose requests the node proxy's L7 layer balances (docs/l7.md
// "Services balanced per request"): what the agent's service plan says of
// each (address, port) the kernel flags SHUNT_SVC_F_L7, for the proxy to
// pick a backend per request. Part of ProxyConfig ("l7_services").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/model/l7_settings.h"
#include "agent/model/smi.h"
#include "nlohmann/json.hpp"

namespace shunt::proxy {

struct L7Endpoint {
  std::string address;  // a pod's IP
  uint16_t port = 0;
  bool operator==(const L7Endpoint&) const = default;
};

// One leaf service of a split (or the service itself): its share, and its
// ready endpoints, among which each request's pick is latency-aware.
struct L7Backend {
  std::string service;  // "ns/name"
  uint64_t weight = 1;
  std::vector<L7Endpoint> endpoints;
  bool operator==(const L7Backend&) const = default;
};

struct L7Service {
  std::string service;  // "ns/name"
  std::string address;  // its clusterIP
  uint16_t port = 0;
  model::L7Settings settings;
  // Where requests go that no split takes: the service's own endpoints, or
  // its TrafficSplit's backends when the split has no matches.
  std::vector<L7Backend> backends;
  std::string split;  // "ns/name" of its TrafficSplit, if any
  // A TrafficSplit with matches: requests matching one of these groups go
  // to `split_backends` (a group that does not exist matches nothing).
  std::vector<model::HttpRouteGroup> split_groups;
  std::vector<L7Backend> split_backends;
  // The HTTP version its port speaks when it says (HttpVersionOf its
  // appProtocol): "h2c", "http1", or empty (whatever the client speaks).
  std::string upstream_http;
  bool operator==(const L7Service&) const = default;
};

// What a Service port's appProtocol says of the HTTP version its pods
// speak, for the L7 layer to map a client's requests to it (docs/l7.md
// "HTTP/1.1 and HTTP/2 across"): "h2c" for kubernetes.io/h2c, h2c, http2
// and grpc (HTTP/2 without TLS, prior knowledge); "http1" for http and
// kubernetes.io/ws; empty for anything else (the client's version is
// passed on).
std::string HttpVersionOf(absl::string_view app_protocol);

nlohmann::json L7ServiceToJson(const L7Service& s);
// InvalidArgument naming the field (under `where`) that is wrong.
absl::StatusOr<L7Service> L7ServiceFromJson(const nlohmann::json& j, const std::string& where);

}  // namespace shunt::proxy
