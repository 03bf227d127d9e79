#include "agent/mtls/proxy_l7_objects.h"

#include "absl/strings/str_cat.h"

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

}  // namespace shunt::mtls
