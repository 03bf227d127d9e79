#include "service_plan.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "shunt/abi/service.h"

namespace shunt::services {
namespace {

// How a service without a TrafficSplit picks backends: the annotation, or
// latency-aware by default. A value we do not know is reported, and the
// default applies (a typo must not silently turn the balancer off).
uint8_t BalancerOf(const model::Service& svc, std::vector<model::Problem>& problems) {
  auto it = svc.annotations.find(kBalancerAnnotation);
  if (it == svc.annotations.end() || it->second == "p2c-ewma") return SHUNT_LB_P2C_EWMA;
  if (it->second == "random") return SHUNT_LB_RANDOM;
  model::Problem p;
  p.ref.kind = "Service";
  p.ref.namespace_ = svc.namespace_;
  p.ref.name = svc.name;
  p.reason = absl::StrCat("metadata.annotations.", kBalancerAnnotation, ": '", it->second,
                          "' is not p2c-ewma or random; using p2c-ewma");
  problems.push_back(std::move(p));
  return SHUNT_LB_P2C_EWMA;
}

model::Problem SplitProblem(const model::TrafficSplit& s, std::string why) {
  model::Problem p;
  p.ref.kind = "TrafficSplit";
  p.ref.namespace_ = s.namespace_;
  p.ref.name = s.name;
  p.reason = std::move(why);
  return p;
}

// Ready backends of `svc` for its port `sp`: every endpoint of its slices
// that is ready and not terminating, on the slice port of the same name and
// protocol (EndpointSlices name their ports after the service's).
std::vector<Backend> ReadyBackends(const model::Service& svc, const model::ServicePort& sp,
                                   const std::vector<const model::EndpointSlice*>& slices) {
  std::set<Backend> out;
  for (const model::EndpointSlice* slice : slices) {
    uint16_t port = 0;
    for (const model::EndpointPort& p : slice->ports)
      if (p.name == sp.name && p.protocol == sp.protocol && p.port != 0) port = p.port;
    if (port == 0) continue;
    for (const model::Endpoint& e : slice->endpoints) {
      if (!e.ready || e.terminating || e.addresses_be.empty()) continue;
      out.insert(Backend{e.addresses_be[0], port, svc.Key()});
    }
  }
  return {out.begin(), out.end()};
}

using ServicesByName = std::map<std::pair<std::string, std::string>, const model::Service*>;
using SlicesByService =
    std::map<std::pair<std::string, std::string>, std::vector<const model::EndpointSlice*>>;

// A TrafficSplit's backends for the root's port `sp`: each backend
// service's weight, shared equally by its ready endpoints on the port of
// the root's port number. Backends that are missing, lack the port or have
// no ready endpoint are left out (their share goes to the others, not into
// the void); the first two are reported.
void SplitBackends(const model::TrafficSplit& t, const model::ServicePort& sp,
                   const ServicesByName& services, const SlicesByService& slices,
                   std::vector<model::Problem>& problems, std::vector<Backend>* backends,
                   std::vector<uint64_t>* weights) {
  static const std::vector<const model::EndpointSlice*> kNone;
  for (const model::SplitBackend& b : t.backends) {
    if (b.weight == 0) continue;
    auto bs = services.find({t.namespace_, b.service});
    if (bs == services.end()) {
      problems.push_back(
          SplitProblem(t, absl::StrCat("backend service '", b.service,
                                       "' does not exist; its weight goes to the others")));
      continue;
    }
    const model::ServicePort* bp = nullptr;
    for (const model::ServicePort& p : bs->second->ports)
      if (p.port == sp.port && p.protocol == sp.protocol) bp = &p;
    if (!bp) {
      problems.push_back(
          SplitProblem(t, absl::StrCat("backend service '", b.service, "' has no port ", sp.port,
                                       " like the root; its weight goes to the "
                                       "others")));
      continue;
    }
    auto own = slices.find({t.namespace_, b.service});
    std::vector<Backend> ready =
        ReadyBackends(*bs->second, *bp, own == slices.end() ? kNone : own->second);
    for (Backend& r : ready) {
      // Weight w over n endpoints: w / n each, kept exact by scaling.
      weights->push_back(static_cast<uint64_t>(b.weight) * 1000000 / ready.size());
      backends->push_back(std::move(r));
    }
  }
}

}  // namespace

std::vector<uint32_t> WeightedSlots(const std::vector<uint64_t>& weights, uint32_t n) {
  const uint64_t total = std::accumulate(weights.begin(), weights.end(), uint64_t{0});
  std::vector<uint32_t> counts(weights.size(), 0);
  if (total == 0 || n == 0) return {};
  // Largest remainder: floors first, then the biggest fractions.
  uint32_t given = 0;
  std::vector<std::pair<uint64_t, size_t>> rest;  // remainder, index
  for (size_t i = 0; i < weights.size(); ++i) {
    counts[i] = static_cast<uint32_t>(weights[i] * n / total);
    given += counts[i];
    rest.emplace_back(weights[i] * n % total, i);
  }
  std::stable_sort(rest.begin(), rest.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < n && k < rest.size(); ++k) {
    if (weights[rest[k].second] == 0) continue;
    ++counts[rest[k].second];
    ++given;
  }
  // Interleave: round-robin over backends with slots left.
  std::vector<uint32_t> slots;
  slots.reserve(n);
  for (bool any = true; any;) {
    any = false;
    for (size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] == 0) continue;
      --counts[i];
      slots.push_back(static_cast<uint32_t>(i));
      any = true;
    }
  }
  return slots;
}

namespace {

// Refuses, whole, each Service whose entries would take its namespace over
// `budget`, counting Services oldest first.
void KeepWithinNamespaceBudgets(const model::Objects& o, const NamespaceBudget& budget,
                                Plan& plan) {
  std::map<std::string, const model::Service*> by_key;
  for (const model::Service& s : o.services) by_key.emplace(s.Key(), &s);
  std::map<std::string, std::vector<size_t>> entries_of;  // service -> its entries
  for (size_t i = 0; i < plan.entries.size(); ++i) entries_of[plan.entries[i].service].push_back(i);
  std::vector<const model::Service*> order;
  for (const auto& [key, idx] : entries_of)
    if (auto s = by_key.find(key); s != by_key.end()) order.push_back(s->second);
  std::sort(order.begin(), order.end(), [](const model::Service* a, const model::Service* b) {
    if (a->created.has_value() != b->created.has_value()) return a->created.has_value();
    if (a->created && *a->created != *b->created) return *a->created < *b->created;
    return std::tie(a->namespace_, a->name) < std::tie(b->namespace_, b->name);
  });
  std::map<std::string, std::pair<uint64_t, uint64_t>> used;  // namespace -> entries, slots
  std::set<std::string> refused;
  for (const model::Service* s : order) {
    uint64_t entries = 0, slots = 0;
    for (size_t i : entries_of[s->Key()]) {
      ++entries;
      if (plan.entries[i].slots.size() > SHUNT_SVC_INLINE) slots += plan.entries[i].slots.size();
    }
    auto& [ns_entries, ns_slots] = used[s->namespace_];
    if (ns_entries + entries > budget.entries || ns_slots + slots > budget.slots) {
      model::Problem p;
      p.ref.kind = "Service";
      p.ref.namespace_ = s->namespace_;
      p.ref.name = s->name;
      p.reason = absl::StrCat(
          "its ", entries, " port entries and ", slots, " slots would take namespace ",
          s->namespace_, " over its share of the service maps (", budget.entries, " entries, ",
          budget.slots,
          " slots: --service-entries-per-namespace, --service-slots-per-namespace; in use ",
          ns_entries, " and ", ns_slots, "); it is ignored");
      plan.problems.push_back(std::move(p));
      refused.insert(s->Key());
      continue;
    }
    ns_entries += entries;
    ns_slots += slots;
  }
  if (refused.empty()) return;
  std::vector<ServiceEntry> kept;
  for (auto& e : plan.entries)
    if (!refused.count(e.service)) kept.push_back(std::move(e));
  plan.entries = std::move(kept);
}

}  // namespace

Plan MakePlan(const model::Objects& o, const NamespaceBudget& budget) {
  Plan plan;
  std::map<std::pair<std::string, std::string>, const model::Service*> services;
  for (const auto& s : o.services) services[{s.namespace_, s.name}] = &s;
  std::map<std::pair<std::string, std::string>, std::vector<const model::EndpointSlice*>> slices;
  for (const auto& e : o.endpoint_slices) slices[{e.namespace_, e.service_name}].push_back(&e);
  std::map<std::pair<std::string, std::string>, const model::TrafficSplit*> splits;  // by root
  std::set<std::pair<std::string, std::string>> groups;  // HTTPRouteGroups there are
  for (const auto& g : o.http_route_groups) groups.insert({g.namespace_, g.name});
  for (const auto& t : o.traffic_splits) {
    for (const model::SplitMatch& m : t.matches)
      if (!groups.count({t.namespace_, m.name}))
        plan.problems.push_back(SplitProblem(
            t, absl::StrCat("matches: HTTPRouteGroup '", m.name, "' does not exist in namespace ",
                            t.namespace_, "; no request matches it")));
    if (!services.count({t.namespace_, t.service})) {
      plan.problems.push_back(
          SplitProblem(t, absl::StrCat("root service '", t.service, "' does not exist")));
      continue;
    }
    splits[{t.namespace_, t.service}] = &t;
  }

  // A clusterIP that is a pod's address would take that pod's traffic at
  // connect() (a hostile manifest's way to intercept meshed traffic): such
  // a Service is refused whole.
  std::map<uint32_t, const model::Pod*> pod_ips;
  for (const model::Pod& p : o.pods) pod_ips.emplace(p.ip_be, &p);
  // A clusterIP belongs to one Service (the API server never gives one out
  // twice): of several claiming it, the oldest by creationTimestamp (one
  // without a time after any with one, then by name) keeps it, and the
  // others are refused whole, so a later manifest cannot take the DNS
  // service's address, on any port.
  std::map<uint32_t, const model::Service*> ip_owner;
  auto older = [](const model::Service& a, const model::Service& b) {
    if (a.created.has_value() != b.created.has_value()) return a.created.has_value();
    if (a.created && *a.created != *b.created) return *a.created < *b.created;
    return std::tie(a.namespace_, a.name) < std::tie(b.namespace_, b.name);
  };
  for (const model::Service& svc : o.services) {
    if (svc.headless || svc.cluster_ip_be == 0) continue;
    auto [it, fresh] = ip_owner.emplace(svc.cluster_ip_be, &svc);
    if (!fresh && older(svc, *it->second)) it->second = &svc;
  }
  for (const model::Service& svc : o.services) {
    if (svc.headless || svc.cluster_ip_be == 0) continue;
    if (const model::Service* owner = ip_owner.at(svc.cluster_ip_be); owner != &svc) {
      model::Problem p;
      p.ref.kind = "Service";
      p.ref.namespace_ = svc.namespace_;
      p.ref.name = svc.name;
      p.reason = absl::StrCat("clusterIP ", svc.cluster_ip, " is already the address of Service ",
                              owner->Key(), ", which is older; it is ignored");
      plan.problems.push_back(std::move(p));
      continue;
    }
    if (auto pod = pod_ips.find(svc.cluster_ip_be); pod != pod_ips.end()) {
      model::Problem p;
      p.ref.kind = "Service";
      p.ref.namespace_ = svc.namespace_;
      p.ref.name = svc.name;
      p.reason =
          absl::StrCat("clusterIP ", svc.cluster_ip, " is the IP of Pod ", pod->second->Key(),
                       "; a Service may not take a pod's address, so ", "it is ignored");
      plan.problems.push_back(std::move(p));
      continue;
    }
    const uint8_t balancer = BalancerOf(svc, plan.problems);
    const model::L7Settings l7 = model::ParseL7Settings(svc, &plan.problems);
    const auto& own_slices = slices[{svc.namespace_, svc.name}];
    const auto split_it = splits.find({svc.namespace_, svc.name});
    for (const model::ServicePort& sp : svc.ports) {
      ServiceEntry e;
      e.service = svc.Key();
      e.port_name = sp.name;
      e.vip_be = svc.cluster_ip_be;
      e.port = sp.port;
      e.proto = sp.protocol == model::Protocol::kUdp ? 17 : 6;
      e.lb = SHUNT_LB_RANDOM;
      const bool tcp = sp.protocol == model::Protocol::kTcp;
      e.l7 = tcp && l7.enabled;
      e.l7_settings = l7;
      const model::TrafficSplit* t = split_it == splits.end() ? nullptr : split_it->second;
      if (t && !t->matches.empty()) {
        // Per request, in the L7 layer; at L4 the root's own endpoints.
        e.split = t->Key();
        if (tcp) {
          e.l7 = true;
          for (const model::SplitMatch& m : t->matches) e.l7_split_groups.push_back(m.name);
          SplitBackends(*t, sp, services, slices, plan.problems, &e.l7_split_backends,
                        &e.l7_split_weights);
        }
        t = nullptr;
      }
      if (!t) {
        e.lb = balancer;  // one slot per backend: P2C draws two distinct ones
        e.backends = ReadyBackends(svc, sp, own_slices);
        e.weights.assign(e.backends.size(), 1);
        for (uint32_t i = 0; i < e.backends.size(); ++i) e.slots.push_back(i);
        plan.entries.push_back(std::move(e));
        continue;
      }
      e.split = t->Key();
      SplitBackends(*t, sp, services, slices, plan.problems, &e.backends, &e.weights);
      e.slots = WeightedSlots(e.weights, SHUNT_SPLIT_SLOTS);
      plan.entries.push_back(std::move(e));
    }
  }
  std::sort(plan.entries.begin(), plan.entries.end(),
            [](const ServiceEntry& a, const ServiceEntry& b) {
              return std::tie(a.vip_be, a.port, a.proto, a.service) <
                     std::tie(b.vip_be, b.port, b.proto, b.service);
            });
  // Two services claiming one address and port: the first by name keeps it.
  std::vector<ServiceEntry> unique;
  for (auto& e : plan.entries) {
    if (!unique.empty() && unique.back().vip_be == e.vip_be && unique.back().port == e.port &&
        unique.back().proto == e.proto) {
      model::Problem p;
      p.ref.kind = "Service";
      p.reason = absl::StrCat("clusterIP and port ", e.port, " are also claimed by ",
                              unique.back().service, "; ignored for ", e.service);
      auto slash = e.service.find('/');
      p.ref.namespace_ = e.service.substr(0, slash);
      p.ref.name = e.service.substr(slash + 1);
      plan.problems.push_back(std::move(p));
      continue;
    }
    unique.push_back(std::move(e));
  }
  plan.entries = std::move(unique);
  KeepWithinNamespaceBudgets(o, budget, plan);
  return plan;
}

}  // namespace shunt::services
