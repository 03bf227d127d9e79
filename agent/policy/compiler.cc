#include "compiler.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_map.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shunt::policy {
namespace {

// Objects of one kind by "namespace/name", so resolving a rule is a hash
// lookup (10,000 TrafficTargets must not cost 10,000 x 10,000 comparisons).
template <typename T>
class Index {
 public:
  explicit Index(const std::vector<T>& v) {
    for (const T& o : v) by_key_.emplace(o.Key(), &o);
  }
  const T* Find(const std::string& ns, const std::string& name) const {
    auto it = by_key_.find(absl::StrCat(ns, "/", name));
    return it == by_key_.end() ? nullptr : it->second;
  }

 private:
  absl::flat_hash_map<std::string, const T*> by_key_;
};

// Adds a grant; ALLOW beats L7; among equals the first TrafficTarget stays.
void Add(CompiledPolicy& p, const EntryKey& k, uint8_t verdict, uint32_t rule_id) {
  auto [it, inserted] = p.entries.emplace(k, Grant{verdict, rule_id});
  if (!inserted && verdict == SHUNT_VERDICT_ALLOW && it->second.verdict != SHUNT_VERDICT_ALLOW)
    it->second = Grant{verdict, rule_id};
}

}  // namespace

CompiledPolicy Compile(const source::Objects& objects, endpoints::IdentityAllocator& ids,
                       endpoints::IdentityAllocator& rule_ids) {
  CompiledPolicy p;
  const Index<model::PortRoute> tcp_routes(objects.tcp_routes), udp_routes(objects.udp_routes);
  const Index<model::HttpRouteGroup> http_groups(objects.http_route_groups);
  std::vector<const model::TrafficTarget*> targets;
  for (const auto& t : objects.traffic_targets) targets.push_back(&t);
  std::sort(targets.begin(), targets.end(), [](const auto* a, const auto* b) {
    return std::tie(a->namespace_, a->name) < std::tie(b->namespace_, b->name);
  });

  for (const model::TrafficTarget* t : targets) {
    const uint32_t rule_id = rule_ids.Get({t->namespace_, t->name});
    p.rules[rule_id] = t->Key();
    model::ObjectRef ref{.kind = "TrafficTarget", .namespace_ = t->namespace_, .name = t->name};
    auto problem = [&](const std::string& why) { p.problems.push_back({ref, why}); };

    const endpoints::IdentityAllocator::Key dst_key{t->destination.namespace_, t->destination.name};
    p.identities.insert(dst_key);
    const uint32_t dst = ids.Get(dst_key);
    std::vector<uint32_t> srcs;
    for (const auto& s : t->sources) {
      p.identities.insert({s.namespace_, s.name});
      srcs.push_back(ids.Get({s.namespace_, s.name}));
    }

    // Resolve rules in the TrafficTarget's namespace.
    std::set<uint16_t> tcp_ports, udp_ports;  // 0 = any
    bool has_tcp = false, has_http = false, http_grants = false;
    bool tcp_resolved = false, udp_resolved = false;  // a route of that kind exists
    for (const model::TargetRule& r : t->rules) {
      const std::string what = absl::StrCat(model::RouteKindName(r.kind), " '", r.name, "'");
      if (r.kind == model::RouteKind::kHttp) {
        has_http = true;
        const model::HttpRouteGroup* g = http_groups.Find(t->namespace_, r.name);
        if (!g) {
          problem(absl::StrCat("rule ", what, " does not exist in namespace ", t->namespace_,
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
            problem(absl::StrCat("rule ", what, " has no match named '", m, "'; it grants nothing"));
        }
        continue;
      }
      const bool tcp = r.kind == model::RouteKind::kTcp;
      has_tcp |= tcp;
      const model::PortRoute* route = (tcp ? tcp_routes : udp_routes).Find(t->namespace_, r.name);
      if (!route) {
        problem(absl::StrCat("rule ", what, " does not exist in namespace ", t->namespace_,
                             "; it grants nothing"));
        continue;
      }
      (tcp ? tcp_resolved : udp_resolved) = true;
      auto& ports = tcp ? tcp_ports : udp_ports;
      if (route->ports.empty()) {
        ports.insert(0);
      } else {
        ports.insert(route->ports.begin(), route->ports.end());
      }
    }
    // v1alpha2: destination.port narrows every rule to that one port.
    if (t->destination_port) {
      const uint16_t dp = *t->destination_port;
      auto narrow = [&](std::set<uint16_t>& ports) {
        if (ports.empty()) return;
        ports = ports.count(0) || ports.count(dp) ? std::set<uint16_t>{dp} : std::set<uint16_t>{};
      };
      narrow(tcp_ports);
      narrow(udp_ports);
      if (tcp_resolved && tcp_ports.empty())
        problem(absl::StrCat("destination.port ", dp, " is not among its TCPRoute ports; they grant nothing"));
      if (udp_resolved && udp_ports.empty())
        problem(absl::StrCat("destination.port ", dp, " is not among its UDPRoute ports; they grant nothing"));
    }
    // Collapse "any port" with specific ports: any wins.
    for (auto* ports : {&tcp_ports, &udp_ports})
      if (ports->count(0)) *ports = {0};

    // HTTP on its TCPRoutes' ports if it has any, else on any port.
    std::set<uint16_t> http_ports;
    if (has_http && http_grants)
      http_ports = has_tcp ? tcp_ports : std::set<uint16_t>{t->destination_port.value_or(0)};
    for (uint32_t src : srcs) {
      for (uint16_t port : udp_ports) Add(p, {src, dst, port, kUdp}, SHUNT_VERDICT_ALLOW, rule_id);
      if (!has_http) {
        for (uint16_t port : tcp_ports) Add(p, {src, dst, port, kTcp}, SHUNT_VERDICT_ALLOW, rule_id);
      } else {
        for (uint16_t port : http_ports) Add(p, {src, dst, port, kTcp}, SHUNT_VERDICT_L7, rule_id);
      }
    }
    if (!http_ports.empty()) ++p.l7_targets;
  }

  // An any-port L4 allow also covers port-specific L7 entries of the pair.
  for (auto& [k, g] : p.entries) {
    if (g.verdict != SHUNT_VERDICT_L7 || k.port == 0) continue;
    auto any = p.entries.find({k.src, k.dst, 0, k.proto});
    if (any != p.entries.end() && any->second.verdict == SHUNT_VERDICT_ALLOW) g = any->second;
  }
  return p;
}

Decision Decide(const CompiledPolicy& p, uint32_t src, uint32_t dst, uint16_t port, uint8_t proto) {
  if (auto it = p.entries.find({src, dst, port, proto}); it != p.entries.end())
    return {it->second.verdict, it->second.rule_id, port};
  if (auto it = p.entries.find({src, dst, 0, proto}); it != p.entries.end())
    return {it->second.verdict, it->second.rule_id, 0};
  return {};
}

}  // namespace shunt::policy
