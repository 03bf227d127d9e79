#include "policy_scale.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"

namespace shunt::bench {

model::Objects SyntheticCluster(const ScaleShape& s) {
  model::Objects o;
  // Two pods per service account, service accounts spread over namespaces.
  const int accounts = s.pods / 2;
  auto ns_of = [&](int sa) { return absl::StrCat("ns", sa % s.namespaces); };
  auto sa_name = [](int sa) { return absl::StrCat("sa", sa); };
  for (int i = 0; i < s.pods; ++i) {
    model::Pod p;
    const int sa = i / 2;
    p.namespace_ = ns_of(sa);
    p.name = absl::StrCat("pod", i);
    p.service_account = sa_name(sa);
    p.node_name = i % 10 == 0 ? "bench-node" : absl::StrCat("node", i % 10);
    p.ip = absl::StrCat("10.", 100 + i / 65536, ".", (i / 256) % 256, ".", i % 256);
    inet_pton(AF_INET, p.ip.c_str(), &p.ip_be);
    o.pods.push_back(p);
  }
  // One TCPRoute per namespace and port class.
  for (int n = 0; n < s.namespaces; ++n)
    for (int k = 0; k < 20; ++k)
      o.tcp_routes.push_back({.kind = model::RouteKind::kTcp,
                              .namespace_ = absl::StrCat("ns", n),
                              .name = absl::StrCat("port", k),
                              .ports = {static_cast<uint16_t>(8000 + k)}});
  for (int i = 0; i < s.targets; ++i) {
    model::TrafficTarget t;
    const int dst = i % accounts;
    t.namespace_ = ns_of(dst);
    t.name = absl::StrCat("tt", i);
    t.api_version = "access.smi-spec.io/v1alpha3";
    t.destination = {t.namespace_, sa_name(dst)};
    for (int j = 0; j < s.sources_per_target; ++j) {
      const int src = (i * 7 + j * 13 + 1) % accounts;
      t.sources.push_back({ns_of(src), sa_name(src)});
    }
    t.rules.push_back({.kind = model::RouteKind::kTcp, .name = absl::StrCat("port", i % 20)});
    o.traffic_targets.push_back(std::move(t));
  }
  return o;
}

}  // namespace shunt::bench
