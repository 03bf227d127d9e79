#include "proxy/server/runtime.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace shunt::proxy {
namespace {

absl::StatusOr<certs::SpiffeId> IdOf(const std::string& trust_domain, const std::string& key) {
  std::pair<std::string, std::string> parts = absl::StrSplit(key, absl::MaxSplits('/', 1));
  return certs::MakeSpiffeId(trust_domain, parts.first, parts.second);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Runtime>> Runtime::Build(ProxyConfig config) {
  auto rt = std::make_shared<Runtime>();
  auto proxy_id = certs::MakeSpiffeId(config.trust_domain, certs::kNodeProxyNamespace,
                                      certs::kNodeProxyServiceAccount);
  if (!proxy_id.ok()) return proxy_id.status();
  rt->node_proxy_id = *proxy_id;
  if (config.mode == "off") return BuildL7(std::move(config), std::move(rt));
  TlsCredentials server{.cert_pem = config.node_proxy.cert_pem,
                        .key_pem = config.node_proxy.key_pem,
                        .ca_pem = config.ca_pem,
                        .trust_domain = config.trust_domain};
  auto s = TlsContext::Create(TlsContext::Role::kServer, server);
  if (!s.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("node proxy credential: ", s.status().message()));
  rt->server = *s;
  for (const Credential& w : config.workloads) {
    auto id = IdOf(config.trust_domain, w.identity);
    if (!id.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("workload ", w.identity, ": ", id.status().message()));
    TlsCredentials client{.cert_pem = w.cert_pem,
                          .key_pem = w.key_pem,
                          .ca_pem = config.ca_pem,
                          .trust_domain = config.trust_domain,
                          .expect_peer = *proxy_id};
    auto c = TlsContext::Create(TlsContext::Role::kClient, client);
    if (!c.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("workload ", w.identity, ": ", c.status().message()));
    rt->clients[w.identity] = *c;
  }
  return BuildL7(std::move(config), std::move(rt));
}

absl::StatusOr<std::shared_ptr<const Runtime>> Runtime::BuildL7(ProxyConfig config,
                                                                std::shared_ptr<Runtime> rt) {
  auto l7 = http::L7Policy::Compile({.targets = config.traffic_targets,
                                     .groups = config.http_route_groups,
                                     .tcp_routes = config.tcp_routes});
  if (!l7.ok()) return absl::InvalidArgumentError(absl::StrCat("l7: ", l7.status().message()));
  for (const std::string& p : (*l7)->problems()) spdlog::warn("l7: {}", p);
  rt->l7 = *std::move(l7);
  for (const L7Service& svc : config.l7_services) {
    auto c = std::make_shared<CompiledL7Service>();
    c->config = svc;
    if (!svc.split_groups.empty()) {
      // A group that does not compile matches nothing (its requests stay
      // with the service), and says why; the rest of the config applies.
      auto m = http::RouteMatcher::Compile(svc.split_groups);
      if (m.ok())
        c->split_matcher = *std::move(m);
      else
        spdlog::warn("l7: service {}: split {}: {}", svc.service, svc.split,
                     std::string(m.status().message()));
    }
    Destination at;
    if (inet_pton(AF_INET, svc.address.c_str(), at.addr.data()) != 1) {
      at.family = AF_INET6;
      inet_pton(AF_INET6, svc.address.c_str(), at.addr.data());
    }
    at.port = svc.port;
    rt->l7_services[at.ToAuthority()] = std::move(c);
  }
  rt->config = std::move(config);
  return std::shared_ptr<const Runtime>(std::move(rt));
}

const std::string* Runtime::IdentityOfLocalPod(const std::string& ip) const {
  auto it = config.local_pods.find(ip);
  return it == config.local_pods.end() ? nullptr : &it->second;
}

const std::string* Runtime::NodeOfRemotePod(const std::string& ip) const {
  auto it = config.remote_pods.find(ip);
  return it == config.remote_pods.end() ? nullptr : &it->second;
}

absl::string_view Runtime::UpstreamHttpAt(const Destination& to) const {
  if (config.upstream_http.empty()) return {};
  auto it = config.upstream_http.find(to.ToAuthority());
  return it == config.upstream_http.end() ? absl::string_view() : absl::string_view(it->second);
}

std::shared_ptr<const CompiledL7Service> Runtime::L7ServiceAt(const Destination& to) const {
  auto it = l7_services.find(to.ToAuthority());
  return it == l7_services.end() ? nullptr : it->second;
}

uint32_t Runtime::IdentityId(const std::string& identity) const {
  auto it = config.identity_ids.find(identity);
  return it == config.identity_ids.end() ? 0 : it->second;
}

}  // namespace shunt::proxy
