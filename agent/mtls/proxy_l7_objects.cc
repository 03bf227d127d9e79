#include "agent/mtls/proxy_l7_objects.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "agent/lib/ip.h"

namespace shunt::mtls {

void SelectL7Objects(const model::Objects& objects, const std::set<std::string>& local_identities,
                     proxy::ProxyConfig* config) {
  config->traffic_targets.clear();
  config->tcp_routes.clear();
  config->http_route_groups.clear();
  std::set<std::string> tcp, http;  // "ns/name" the kept targets refer to
  for (const model::TrafficTarget& t : objects.traffic_targets) {
    const std::string dest = absl::StrCat(t.destination.namespace_, "/", t.destination.name);
    if (!local_identities.count(dest)) continue;
    config->traffic_targets.push_back(t);
    for (const model::TargetRule& r : t.rules) {
      const std::string ref = absl::StrCat(t.namespace_, "/", r.name);
      if (r.kind == model::RouteKind::kTcp) tcp.insert(ref);
      if (r.kind == model::RouteKind::kHttp) http.insert(ref);
    }
  }
  for (const model::PortRoute& r : objects.tcp_routes)
    if (tcp.count(r.Key())) config->tcp_routes.push_back(r);
  for (const model::HttpRouteGroup& g : objects.http_route_groups)
    if (http.count(g.Key())) config->http_route_groups.push_back(g);
}

namespace {

// Endpoints grouped by the leaf service they came from (in order of first
// appearance), each group weighing the sum of its endpoints' weights.
std::vector<proxy::L7Backend> ByLeaf(const std::vector<services::Backend>& backends,
                                     const std::vector<uint64_t>& weights) {
  std::vector<proxy::L7Backend> out;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < backends.size(); ++i) {
    const services::Backend& b = backends[i];
    auto [it, fresh] = index.emplace(b.service, out.size());
    if (fresh) out.push_back({.service = b.service, .weight = 0, .endpoints = {}});
    proxy::L7Backend& leaf = out[it->second];
    leaf.weight += i < weights.size() ? weights[i] : 1;
    leaf.endpoints.push_back({.address = lib::Ipv4String(b.ip_be), .port = b.port});
  }
  return out;
}

}  // namespace

void SelectL7Services(const services::Plan& plan, const model::Objects& objects,
                      proxy::ProxyConfig* config) {
  config->l7_services.clear();
  for (const services::ServiceEntry& e : plan.entries) {
    if (!e.l7) continue;
    proxy::L7Service s{.service = e.service,
                       .address = lib::Ipv4String(e.vip_be),
                       .port = e.port,
                       .settings = e.l7_settings,
                       .backends = ByLeaf(e.backends, e.weights),
                       .split = e.split,
                       .split_groups = {},
                       .split_backends = ByLeaf(e.l7_split_backends, e.l7_split_weights)};
    const std::string ns = e.service.substr(0, e.service.find('/'));
    for (const std::string& name : e.l7_split_groups)
      for (const model::HttpRouteGroup& g : objects.http_route_groups)
        if (g.namespace_ == ns && g.name == name) s.split_groups.push_back(g);
    config->l7_services.push_back(std::move(s));
  }
}

void SelectUpstreamHttp(const services::Plan& plan, const model::Objects& objects,
                        proxy::ProxyConfig* config) {
  config->upstream_http.clear();
  std::map<std::pair<std::string, uint16_t>, std::string> by_port;  // (service, port) -> version
  for (const model::Service& svc : objects.services)
    for (const model::ServicePort& p : svc.ports)
      if (p.protocol == model::Protocol::kTcp)
        if (std::string v = proxy::HttpVersionOf(p.app_protocol); !v.empty())
          by_port[{svc.Key(), p.port}] = std::move(v);
  if (by_port.empty()) return;
  for (const services::ServiceEntry& e : plan.entries) {
    auto it = by_port.find({e.service, e.port});
    if (it == by_port.end()) continue;
    // The service's own endpoints (a split's leaves say it for theirs).
    for (const services::Backend& b : e.backends) {
      if (b.service != e.service) continue;
      const std::string ip = lib::Ipv4String(b.ip_be);
      if (config->local_pods.count(ip))
        config->upstream_http[absl::StrCat(ip, ":", b.port)] = it->second;
    }
  }
  for (proxy::L7Service& s : config->l7_services)
    if (auto it = by_port.find({s.service, s.port}); it != by_port.end())
      s.upstream_http = it->second;
}

}  // namespace shunt::mtls
