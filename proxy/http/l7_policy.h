// Per-request authorization (issue 17 item 2): SMI TrafficTargets compiled
// for the proxy, judged on each HTTP request with the RouteMatcher. The
// grant rules are the kernel compiler's (agent/policy/compiler.h,
// ../shared/SMI.md section 7), read at request level:
//  - a TrafficTarget grants each of its sources the destination's requests
//    its HTTPRouteGroup rules name (a rule without `matches` names every
//    match of its group); its TCPRoutes only narrow the ports (AND);
//  - a TrafficTarget with TCPRoute rules and no HTTPRouteGroup grants every
//    request on their ports (an L4 grant, which the kernel alone would
//    have allowed);
//  - v1alpha2's destination.port narrows every rule to that port;
//  - grants add up, there are no denies; a rule naming a missing route
//    object grants nothing (fail closed) and is reported.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "agent/model/smi.h"
#include "proxy/http/route_matcher.h"

namespace shunt::proxy::http {

class L7Policy {
 public:
  struct Input {
    std::vector<model::TrafficTarget> targets;
    std::vector<model::HttpRouteGroup> groups;
    std::vector<model::PortRoute> tcp_routes;
  };
  // Its text lives as long as the policy (no copy per request): a caller
  // that keeps it past the policy copies it.
  struct Decision {
    bool allow = false;
    absl::string_view target;  // the TrafficTarget "ns/name" that allowed it
    absl::string_view route;   // the route "ns/group#match" that allowed, or that was not granted
    // Why denied: "no-grant" (nothing for this source, destination and
    // port), "no-route-matched", "route-not-granted".
    absl::string_view reason;
  };

  // Errors (a bad regex) name the group and match; dangling references
  // are problems(), not errors.
  static absl::StatusOr<std::unique_ptr<L7Policy>> Compile(const Input& in);

  // `scratch` keeps the matched-route list between calls (no allocation
  // per request once it has grown).
  Decision Judge(const model::Subject& source, const model::Subject& destination, uint16_t port,
                 const RequestView& request, std::vector<int>* scratch) const;

  const std::vector<std::string>& problems() const { return problems_; }
  const RouteMatcher& matcher() const { return *matcher_; }

 private:
  struct Grant {
    std::string target;
    bool any_port = true;
    std::vector<uint16_t> ports;  // sorted, when !any_port
    bool all_requests = false;    // an L4 grant
    std::vector<int> routes;      // sorted route indices, when !all_requests
  };
  std::unique_ptr<RouteMatcher> matcher_;
  // By "src-ns/src-sa dst-ns/dst-sa" (GrantKey), found without building a
  // string per request.
  absl::flat_hash_map<std::string, std::vector<Grant>> grants_;
  std::vector<std::string> problems_;
};

}  // namespace shunt::proxy::http
