#include "compiler.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"

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
    for (const T& o : v) by_ns_[o.namespace_].emplace(o.name, &o);
  }
  const T* Find(const std::string& ns, const std::string& name) const {
    auto n = by_ns_.find(ns);
    if (n == by_ns_.end()) return nullptr;
    auto it = n->second.find(name);
    return it == n->second.end() ? nullptr : it->second;
  }

 private:
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, const T*>> by_ns_;
};

// A handful of ports, deduplicated, without a heap node per port.
class PortSet {
 public:
  void insert(uint16_t p) {
    if (!count(p)) ports_.push_back(p);
  }
  bool count(uint16_t p) const { return std::find(ports_.begin(), ports_.end(), p) != ports_.end(); }
  bool empty() const { return ports_.empty(); }
  void assign(std::initializer_list<uint16_t> ps) { ports_.assign(ps.begin(), ps.end()); }
  auto begin() const { return ports_.begin(); }
  auto end() const { return ports_.end(); }

 private:
  absl::InlinedVector<uint16_t, 4> ports_;
};

using TargetsById = absl::flat_hash_map<uint32_t, const model::TrafficTarget*>;

// Adds a grant; ALLOW beats L7; among equals the TrafficTarget first by
// namespace/name is named, so the answer does not depend on file order.
void Add(CompiledPolicy& p, const TargetsById& targets, const EntryKey& k, uint8_t verdict,
         uint32_t rule_id) {
  auto [it, inserted] = p.entries.emplace(k, Grant{verdict, rule_id});
  if (inserted || it->second.rule_id == rule_id) return;
  Grant& g = it->second;
  if (verdict == SHUNT_VERDICT_ALLOW && g.verdict != SHUNT_VERDICT_ALLOW) {
    g = Grant{verdict, rule_id};
  } else if (verdict == g.verdict) {
    const model::TrafficTarget* a = targets.at(rule_id);
    const model::TrafficTarget* b = targets.at(g.rule_id);
    if (std::tie(a->namespace_, a->name) < std::tie(b->namespace_, b->name)) g.rule_id = rule_id;
  }
}

}  // namespace

CompiledPolicy Compile(const source::Objects& objects, endpoints::IdentityAllocator& ids,
                       endpoints::IdentityAllocator& rule_ids) {
  CompiledPolicy p;
  const Index<model::PortRoute> tcp_routes(objects.tcp_routes), udp_routes(objects.udp_routes);
  const Index<model::HttpRouteGroup> http_groups(objects.http_route_groups);
  absl::flat_hash_set<uint32_t> used_ids;  // numbers are cheaper to collect than names
  TargetsById targets_by_id;
  // Input order; ties between TrafficTargets are settled by name in Add.
  for (const model::TrafficTarget& tt : objects.traffic_targets) {
    const model::TrafficTarget* t = &tt;
    const uint32_t rule_id = rule_ids.Get({t->namespace_, t->name});
    targets_by_id[rule_id] = t;
    p.rules[rule_id] = t->Key();
    auto problem = [&](const std::string& why) {
      model::Problem pr;
      pr.ref.kind = "TrafficTarget";
      pr.ref.namespace_ = t->namespace_;
      pr.ref.name = t->name;
      pr.reason = why;
      p.problems.push_back(std::move(pr));
    };

    const uint32_t dst = ids.Get({t->destination.namespace_, t->destination.name});
    used_ids.insert(dst);
    absl::InlinedVector<uint32_t, 4> srcs;
    for (const auto& s : t->sources) {
      srcs.push_back(ids.Get({s.namespace_, s.name}));
      used_ids.insert(srcs.back());
    }

    // Resolve rules in the TrafficTarget's namespace.
    PortSet tcp_ports, udp_ports;  // 0 = any
    bool has_tcp = false, has_http = false, http_grants = false;
    bool tcp_resolved = false, udp_resolved = false;  // a route of that kind exists
    for (const model::TargetRule& r : t->rules) {
      // Named only when something is wrong (the common case costs nothing).
      auto what = [&] { return absl::StrCat(model::RouteKindName(r.kind), " '", r.name, "'"); };
      if (r.kind == model::RouteKind::kHttp) {
        has_http = true;
        const model::HttpRouteGroup* g = http_groups.Find(t->namespace_, r.name);
        if (!g) {
          problem(absl::StrCat("rule ", what(), " does not exist in namespace ", t->namespace_,
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
            problem(absl::StrCat("rule ", what(), " has no match named '", m, "'; it grants nothing"));
        }
        continue;
      }
      const bool tcp = r.kind == model::RouteKind::kTcp;
      has_tcp |= tcp;
      const model::PortRoute* route = (tcp ? tcp_routes : udp_routes).Find(t->namespace_, r.name);
      if (!route) {
        problem(absl::StrCat("rule ", what(), " does not exist in namespace ", t->namespace_,
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
    if (t->destination_port) {
      const uint16_t dp = *t->destination_port;
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
        problem(absl::StrCat("destination.port ", dp, " is not among its TCPRoute ports; they grant nothing"));
      if (udp_resolved && udp_ports.empty())
        problem(absl::StrCat("destination.port ", dp, " is not among its UDPRoute ports; they grant nothing"));
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
        http_ports.assign({t->destination_port.value_or(0)});
    }
    for (uint32_t src : srcs) {
      for (uint16_t port : udp_ports) Add(p, targets_by_id, {src, dst, port, kUdp}, SHUNT_VERDICT_ALLOW, rule_id);
      if (!has_http) {
        for (uint16_t port : tcp_ports) Add(p, targets_by_id, {src, dst, port, kTcp}, SHUNT_VERDICT_ALLOW, rule_id);
      } else {
        for (uint16_t port : http_ports) Add(p, targets_by_id, {src, dst, port, kTcp}, SHUNT_VERDICT_L7, rule_id);
      }
    }
    if (!http_ports.empty()) ++p.l7_targets;
  }

  for (uint32_t id : used_ids)
    if (const auto* key = ids.KeyOf(id)) p.identities.insert(*key);

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
