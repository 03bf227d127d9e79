#include "proxy/control/proxy_config.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "agent/model/smi_json.h"

namespace shunt::proxy {
namespace {

nlohmann::json CredentialJson(const Credential& c) {
  return {{"identity", c.identity}, {"cert_pem", c.cert_pem}, {"key_pem", c.key_pem}};
}

absl::Status Bad(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("proxy config: ", where, ": ", what));
}

absl::StatusOr<std::string> Text(const nlohmann::json& j, const char* key, absl::string_view where,
                                 bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return std::string();
    return Bad(absl::StrCat(where, key), "missing");
  }
  if (!it->is_string()) return Bad(absl::StrCat(where, key), "not a string");
  return it->get<std::string>();
}

bool IsAddress(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

absl::StatusOr<Credential> CredentialFrom(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where, "not an object");
  Credential c;
  auto id = Text(j, "identity", where + ".");
  if (!id.ok()) return id.status();
  auto cert = Text(j, "cert_pem", where + ".");
  if (!cert.ok()) return cert.status();
  auto key = Text(j, "key_pem", where + ".");
  if (!key.ok()) return key.status();
  c.identity = *id;
  c.cert_pem = *cert;
  c.key_pem = *key;
  if (c.identity.find('/') == std::string::npos)
    return Bad(where + ".identity", absl::StrCat("'", c.identity, "' is not namespace/name"));
  return c;
}

absl::StatusOr<std::map<std::string, std::string>> AddressMap(const nlohmann::json& j,
                                                              const char* key,
                                                              bool values_are_ips) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_object()) return Bad(key, "not an object");
  for (const auto& [k, v] : it->items()) {
    if (!IsAddress(k)) return Bad(absl::StrCat(key, "[", k, "]"), "not an IP address");
    if (!v.is_string()) return Bad(absl::StrCat(key, "[", k, "]"), "not a string");
    const std::string s = v.get<std::string>();
    if (values_are_ips && !IsAddress(s))
      return Bad(absl::StrCat(key, "[", k, "]"), absl::StrCat("'", s, "' is not an IP address"));
    out.emplace(k, s);
  }
  return out;
}

nlohmann::json L7Json(const ProxyConfig& c) {
  nlohmann::json targets = nlohmann::json::array(), tcp = nlohmann::json::array(),
                 groups = nlohmann::json::array();
  for (const auto& t : c.traffic_targets) targets.push_back(model::TrafficTargetToJson(t));
  for (const auto& r : c.tcp_routes) tcp.push_back(model::PortRouteToJson(r));
  for (const auto& g : c.http_route_groups) groups.push_back(model::HttpRouteGroupToJson(g));
  return {{"traffic_targets", targets}, {"tcp_routes", tcp}, {"http_route_groups", groups}};
}

// Each object of l7.<key> read with `parse`; errors name the object.
template <typename T, typename Parse>
absl::Status ReadObjects(const nlohmann::json& l7, const char* key, Parse parse,
                         std::vector<T>* out) {
  auto it = l7.find(key);
  if (it == l7.end()) return absl::OkStatus();
  if (!it->is_array()) return Bad(absl::StrCat("l7.", key), "not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    auto obj = parse((*it)[i]);
    if (!obj.ok()) return Bad(absl::StrCat("l7.", key, "[", i, "]"), obj.status().message());
    out->push_back(*std::move(obj));
  }
  return absl::OkStatus();
}

absl::Status L7From(const nlohmann::json& j, ProxyConfig* c) {
  auto l7 = j.find("l7");
  if (l7 == j.end()) return absl::OkStatus();
  if (!l7->is_object()) return Bad("l7", "not an object");
  auto target = [](const nlohmann::json& d) -> absl::StatusOr<model::TrafficTarget> {
    if (!d.is_object() || !d.contains("apiVersion") || !d["apiVersion"].is_string())
      return absl::InvalidArgumentError("apiVersion is missing");
    return model::ParseTrafficTarget(d, d["apiVersion"].get<std::string>());
  };
  auto tcp = [](const nlohmann::json& d) {
    return model::ParsePortRoute(d, model::RouteKind::kTcp);
  };
  auto group = [](const nlohmann::json& d) { return model::ParseHttpRouteGroup(d); };
  if (auto s = ReadObjects(*l7, "traffic_targets", target, &c->traffic_targets); !s.ok()) return s;
  if (auto s = ReadObjects(*l7, "tcp_routes", tcp, &c->tcp_routes); !s.ok()) return s;
  return ReadObjects(*l7, "http_route_groups", group, &c->http_route_groups);
}

nlohmann::json L7ServicesJson(const ProxyConfig& c) {
  nlohmann::json out = nlohmann::json::array();
  for (const L7Service& s : c.l7_services) out.push_back(L7ServiceToJson(s));
  return out;
}

absl::Status L7ServicesFrom(const nlohmann::json& j, ProxyConfig* c) {
  auto it = j.find("l7_services");
  if (it == j.end()) return absl::OkStatus();
  if (!it->is_array()) return Bad("l7_services", "not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    auto s = L7ServiceFromJson((*it)[i], absl::StrCat("l7_services[", i, "]"));
    if (!s.ok()) return s.status();
    c->l7_services.push_back(*std::move(s));
  }
  return absl::OkStatus();
}

}  // namespace

nlohmann::json ProxyConfigToJson(const ProxyConfig& c) {
  nlohmann::json workloads = nlohmann::json::array();
  for (const Credential& w : c.workloads) workloads.push_back(CredentialJson(w));
  return {{"generation", c.generation},
          {"mode", c.mode},
          {"trust_domain", c.trust_domain},
          {"ca_pem", c.ca_pem},
          {"node_proxy", CredentialJson(c.node_proxy)},
          {"workloads", workloads},
          {"local_pods", c.local_pods},
          {"remote_pods", c.remote_pods},
          {"identity_ids", c.identity_ids},
          {"l7", L7Json(c)},
          {"l7_services", L7ServicesJson(c)},
          {"upstream_http", c.upstream_http}};
}

absl::StatusOr<ProxyConfig> ProxyConfigFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Bad("", "not an object");
  ProxyConfig c;
  if (auto g = j.find("generation"); g != j.end() && g->is_number_unsigned())
    c.generation = g->get<uint64_t>();
  auto mode = Text(j, "mode", "");
  if (!mode.ok()) return mode.status();
  if (*mode != "permissive" && *mode != "strict" && *mode != "off")
    return Bad("mode", absl::StrCat("'", *mode, "' (want permissive, strict or off)"));
  c.mode = *mode;
  auto td = Text(j, "trust_domain", "");
  if (!td.ok()) return td.status();
  c.trust_domain = *td;
  auto ca = Text(j, "ca_pem", "");
  if (!ca.ok()) return ca.status();
  c.ca_pem = *ca;
  // Without mTLS (the L7 layer alone) there is no credential to serve with.
  auto np = j.find("node_proxy");
  if (np == j.end() && c.mode != "off") return Bad("node_proxy", "missing");
  if (np != j.end() && c.mode != "off") {
    auto node_proxy = CredentialFrom(*np, "node_proxy");
    if (!node_proxy.ok()) return node_proxy.status();
    c.node_proxy = *node_proxy;
  }
  if (auto w = j.find("workloads"); w != j.end()) {
    if (!w->is_array()) return Bad("workloads", "not an array");
    for (size_t i = 0; i < w->size(); ++i) {
      auto cred = CredentialFrom((*w)[i], absl::StrCat("workloads[", i, "]"));
      if (!cred.ok()) return cred.status();
      c.workloads.push_back(*std::move(cred));
    }
  }
  auto local = AddressMap(j, "local_pods", /*values_are_ips=*/false);
  if (!local.ok()) return local.status();
  c.local_pods = *std::move(local);
  auto remote = AddressMap(j, "remote_pods", /*values_are_ips=*/true);
  if (!remote.ok()) return remote.status();
  c.remote_pods = *std::move(remote);
  if (auto ids = j.find("identity_ids"); ids != j.end()) {
    if (!ids->is_object()) return Bad("identity_ids", "not an object");
    for (const auto& [k, v] : ids->items()) {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX)
        return Bad(absl::StrCat("identity_ids[", k, "]"), "not a 32-bit number");
      c.identity_ids.emplace(k, v.get<uint32_t>());
    }
  }
  if (absl::Status st = L7From(j, &c); !st.ok()) return st;
  if (absl::Status st = L7ServicesFrom(j, &c); !st.ok()) return st;
  if (auto u = j.find("upstream_http"); u != j.end()) {
    if (!u->is_object()) return Bad("upstream_http", "not an object");
    for (const auto& [k, v] : u->items()) {
      if (!v.is_string() || (v.get<std::string>() != "h2c" && v.get<std::string>() != "http1"))
        return Bad(absl::StrCat("upstream_http[", k, "]"), "not h2c or http1");
      c.upstream_http.emplace(k, v.get<std::string>());
    }
  }
  return c;
}

}  // namespace shunt::proxy
