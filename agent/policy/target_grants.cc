#include "target_grants.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "shunt/abi/policy.h"

namespace shunt::policy {
namespace {

// A handful of ports, deduplicated, without a heap node per port.
class PortSet {
 public:
  void insert(uint16_t p) {
    if (!count(p)) ports_.push_back(p);
  }
  bool count(uint16_t p) const {
    return std::find(ports_.begin(), ports_.end(), p) != ports_.end();
  }
  bool empty() const { return ports_.empty(); }
  void assign(std::initializer_list<uint16_t> ps) { ports_.assign(ps.begin(), ps.end()); }
  auto begin() const { return ports_.begin(); }
  auto end() const { return ports_.end(); }

 private:
  absl::InlinedVector<uint16_t, 4> ports_;
};

}  // namespace

TargetGrants CompileTarget(const model::TrafficTarget& t, const RouteLookup& routes,
                           endpoints::IdentityAllocator& ids) {
  TargetGrants out;
  auto problem = [&](std::string why) { out.problems.push_back(std::move(why)); };

  const uint32_t dst = ids.Get({t.destination.namespace_, t.destination.name});
  absl::InlinedVector<uint32_t, 4> srcs;
  for (const auto& s : t.sources) srcs.push_back(ids.Get({s.namespace_, s.name}));
  out.identities = srcs;
  out.identities.push_back(dst);
  std::sort(out.identities.begin(), out.identities.end());
  out.identities.erase(std::unique(out.identities.begin(), out.identities.end()),
                       out.identities.end());

  // Resolve rules in the TrafficTarget's namespace.
  PortSet tcp_ports, udp_ports;  // 0 = any
  bool has_tcp = false, has_http = false, http_grants = false;
  bool tcp_resolved = false, udp_resolved = false;  // a route of that kind exists
  for (const model::TargetRule& r : t.rules) {
    auto what = [&] { return absl::StrCat(model::RouteKindName(r.kind), " '", r.name, "'"); };
    if (r.kind == model::RouteKind::kHttp) {
      has_http = true;
      const model::HttpRouteGroup* g = routes.HttpRouteGroup(t.namespace_, r.name);
      if (!g) {
        problem(absl::StrCat("rule ", what(), " does not exist in namespace ", t.namespace_,
                             "; it grants nothing"));
        continue;
      }
      if (r.matches.empty()) {
        http_grants = true;  // omitted matches = every match of the group
        continue;
      }
      for (const std::string& m : r.matches) {
        bool found = std::any_of(g->matches.begin(), g->matches.end(),
                                 [&](const model::HttpMatch& hm) { return hm.name == m; });
        if (found)
          http_grants = true;
        else
          problem(
              absl::StrCat("rule ", what(), " has no match named '", m, "'; it grants nothing"));
      }
      continue;
    }
    const bool tcp = r.kind == model::RouteKind::kTcp;
    has_tcp |= tcp;
    const model::PortRoute* route = routes.PortRoute(r.kind, t.namespace_, r.name);
    if (!route) {
      problem(absl::StrCat("rule ", what(), " does not exist in namespace ", t.namespace_,
                           "; it grants nothing"));
      continue;
    }
    (tcp ? tcp_resolved : udp_resolved) = true;
    auto& ports = tcp ? tcp_ports : udp_ports;
    if (route->ports.empty()) {
      ports.insert(0);
    } else {
      for (uint16_t port : route->ports) ports.insert(port);
    }
  }
  // v1alpha2: destination.port narrows every rule to that one port.
  if (t.destination_port) {
    const uint16_t dp = *t.destination_port;
    auto narrow = [&](PortSet& ports) {
      if (ports.empty()) return;
      if (ports.count(0) || ports.count(dp))
        ports.assign({dp});
      else
        ports.assign({});
    };
    narrow(tcp_ports);
    narrow(udp_ports);
    if (tcp_resolved && tcp_ports.empty())
      problem(absl::StrCat("destination.port ", dp,
                           " is not among its TCPRoute ports; they grant nothing"));
    if (udp_resolved && udp_ports.empty())
      problem(absl::StrCat("destination.port ", dp,
                           " is not among its UDPRoute ports; they grant nothing"));
  }
  // Collapse "any port" with specific ports: any wins.
  for (auto* ports : {&tcp_ports, &udp_ports})
    if (ports->count(0)) ports->assign({0});

  // HTTP on its TCPRoutes' ports if it has any, else on any port.
  PortSet http_ports;
  if (has_http && http_grants) {
    if (has_tcp)
      http_ports = tcp_ports;
    else
      http_ports.assign({t.destination_port.value_or(0)});
  }
  for (uint32_t src : srcs) {
    for (uint16_t port : udp_ports)
      out.grants.push_back({{src, dst, port, kUdp}, SHUNT_VERDICT_ALLOW});
    if (!has_http) {
      for (uint16_t port : tcp_ports)
        out.grants.push_back({{src, dst, port, kTcp}, SHUNT_VERDICT_ALLOW});
    } else {
      for (uint16_t port : http_ports)
        out.grants.push_back({{src, dst, port, kTcp}, SHUNT_VERDICT_L7});
    }
  }
  // A source listed twice grants the same entries twice; one each is enough
  // (within one TrafficTarget a key always has one verdict).
  std::sort(out.grants.begin(), out.grants.end());
  out.grants.erase(
      std::unique(out.grants.begin(), out.grants.end(),
                  [](const TargetGrant& a, const TargetGrant& b) { return a.key == b.key; }),
      out.grants.end());
  out.l7 = !http_ports.empty();
  return out;
}

}  // namespace shunt::policy
