// SMI objects as the policy compiler needs them, parsed and validated from
// access.smi-spec.io TrafficTarget (v1alpha2, v1alpha3) and
// specs.smi-spec.io TCPRoute, UDPRoute, HTTPRouteGroup (v1alpha4; v1alpha3
// where the shape allows). ../shared/SMI.md section 7 records the decisions
// where the spec is open. Errors are InvalidArgument naming the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

// A ServiceAccount reference. `namespace_` is filled in (defaulted to the
// TrafficTarget's namespace) by the parser.
struct Subject {
  std::string namespace_;
  std::string name;
  bool operator==(const Subject& o) const { return namespace_ == o.namespace_ && name == o.name; }
  bool operator<(const Subject& o) const {
    return std::tie(namespace_, name) < std::tie(o.namespace_, o.name);
  }
};

enum class RouteKind { kTcp, kUdp, kHttp };
const char* RouteKindName(RouteKind k);  // "TCPRoute", "UDPRoute", "HTTPRouteGroup"

struct TargetRule {
  RouteKind kind;
  std::string name;                  // resolves in the TrafficTarget's namespace
  std::vector<std::string> matches;  // HTTPRouteGroup match names; empty = all
  bool operator==(const TargetRule&) const = default;
};

struct TrafficTarget {
  std::string namespace_;
  std::string name;
  std::string api_version;
  Subject destination;
  std::vector<Subject> sources;
  std::vector<TargetRule> rules;
  std::optional<uint16_t> destination_port;  // v1alpha2 only

  std::string Key() const { return namespace_ + "/" + name; }
  bool operator==(const TrafficTarget&) const = default;
};

// TCPRoute and UDPRoute: the ports a rule allows; empty = any port.
struct PortRoute {
  RouteKind kind;  // kTcp or kUdp
  std::string namespace_;
  std::string name;
  std::vector<uint16_t> ports;
  std::string Key() const { return namespace_ + "/" + name; }
  bool operator==(const PortRoute&) const = default;
};

struct HttpMatch {
  std::string name;
  std::string path_regex;                                    // empty = any path
  std::vector<std::string> methods;                          // empty or "*" = any method
  std::vector<std::pair<std::string, std::string>> headers;  // name -> regex, ANDed
  bool operator==(const HttpMatch&) const = default;
};

struct HttpRouteGroup {
  std::string namespace_;
  std::string name;
  std::vector<HttpMatch> matches;
  std::string Key() const { return namespace_ + "/" + name; }
  bool operator==(const HttpRouteGroup&) const = default;
};

absl::StatusOr<TrafficTarget> ParseTrafficTarget(const nlohmann::json& doc,
                                                 const std::string& api_version);
absl::StatusOr<PortRoute> ParsePortRoute(const nlohmann::json& doc, RouteKind kind);
absl::StatusOr<HttpRouteGroup> ParseHttpRouteGroup(const nlohmann::json& doc);

}  // namespace shunt::model
