// What the agent tells its proxy, through JSON and back (proxy/control):
// the L7 layer's SMI objects travel in their Kubernetes shape and are read
// back with the model's own parsers.
#include "proxy/control/proxy_config.h"

#include <arpa/inet.h>

#include "agent/model/smi_json.h"
#include "agent/mtls/proxy_l7_objects.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::proxy {
namespace {

using ::testing::HasSubstr;

ProxyConfig Base() {
  ProxyConfig c;
  c.generation = 7;
  c.mode = "strict";
  c.trust_domain = "cluster.local";
  c.ca_pem = "CA";
  c.node_proxy = {"shunt-system/shunt-proxy", "CERT", "KEY"};
  c.local_pods = {{"10.244.1.5", "shop/client"}};
  c.remote_pods = {{"10.244.2.7", "192.168.1.2"}};
  c.identity_ids = {{"shop/client", 3}};
  return c;
}

TEST(ProxyConfigTest, L7ObjectsRoundTripThroughTheirKubernetesShape) {
  ProxyConfig c = Base();
  model::TrafficTarget t{.namespace_ = "shop",
                         .name = "readers",
                         .api_version = "access.smi-spec.io/v1alpha3",
                         .destination = {"shop", "books"},
                         .sources = {{"shop", "client"}, {"web", "frontend"}},
                         .rules = {{model::RouteKind::kHttp, "books-api", {"read"}},
                                   {model::RouteKind::kTcp, "web", {}}}};
  model::TrafficTarget old{.namespace_ = "shop",
                           .name = "legacy",
                           .api_version = "access.smi-spec.io/v1alpha2",
                           .destination = {"shop", "books"},
                           .sources = {{"shop", "client"}},
                           .rules = {{model::RouteKind::kHttp, "books-api", {}}},
                           .destination_port = 8443};
  c.traffic_targets = {t, old};
  c.tcp_routes = {{model::RouteKind::kTcp, "shop", "web", {8080, 8443}},
                  {model::RouteKind::kTcp, "shop", "any", {}}};
  model::HttpRouteGroup g{.namespace_ = "shop", .name = "books-api"};
  g.matches = {{.name = "read", .path_regex = "/books(/.*)?", .methods = {"GET", "HEAD"}},
               {.name = "android", .headers = {{"user-agent", ".*Android.*"}, {"x-b", "1"}}},
               {.name = "all"}};
  c.http_route_groups = {g};
  auto back = ProxyConfigFromJson(nlohmann::json::parse(ProxyConfigToJson(c).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->traffic_targets, c.traffic_targets);
  EXPECT_EQ(back->tcp_routes, c.tcp_routes);
  EXPECT_EQ(back->http_route_groups, c.http_route_groups);
  EXPECT_EQ(back->local_pods, c.local_pods);
  EXPECT_EQ(back->identity_ids, c.identity_ids);
}

TEST(ProxyConfigTest, ABadL7ObjectIsRefusedNamingWhereAndWhy) {
  nlohmann::json j = ProxyConfigToJson(Base());
  model::HttpRouteGroup g{.namespace_ = "shop", .name = "g"};
  g.matches = {{.name = "m", .path_regex = "/("}};
  j["l7"]["http_route_groups"].push_back(model::HttpRouteGroupToJson(g));
  auto bad = ProxyConfigFromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("proxy config: l7.http_route_groups[0]: "));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("not a valid RE2 regex"));

  nlohmann::json j2 = ProxyConfigToJson(Base());
  j2["l7"]["traffic_targets"] = {{{"kind", "TrafficTarget"}}};
  auto no_version = ProxyConfigFromJson(j2);
  ASSERT_FALSE(no_version.ok());
  EXPECT_THAT(std::string(no_version.status().message()),
              HasSubstr("l7.traffic_targets[0]: apiVersion is missing"));
}

// Services balanced per request: settings, leaves with weights and
// endpoints, and a split's groups, through JSON and back.
TEST(ProxyConfigTest, L7ServicesRoundTripAndABadEndpointIsNamed) {
  ProxyConfig c = Base();
  L7Service svc{.service = "shop/web", .address = "10.96.0.10", .port = 80};
  svc.settings.enabled = true;
  svc.settings.timeout_ms = 2000;
  svc.settings.retries = 2;
  svc.settings.retry_budget = 0.1;
  svc.settings.retry_on_reset = true;
  svc.settings.outlier_consecutive_failures = 3;
  svc.settings.outlier_ejection_ms = 5000;
  svc.backends = {{.service = "shop/web",
                   .weight = 2,
                   .endpoints = {{"10.244.1.5", 8080}, {"10.244.2.7", 8080}}}};
  svc.split = "shop/ab";
  model::HttpRouteGroup g{.namespace_ = "shop", .name = "beta"};
  g.matches = {{.name = "beta", .headers = {{"x-user", "beta"}}}};
  svc.split_groups = {g};
  svc.split_backends = {
      {.service = "shop/web-v1", .weight = 90000000, .endpoints = {}},
      {.service = "shop/web-v2", .weight = 10000000, .endpoints = {{"10.244.2.8", 8081}}}};
  c.l7_services = {svc};
  auto back = ProxyConfigFromJson(nlohmann::json::parse(ProxyConfigToJson(c).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->l7_services.size(), 1u);
  EXPECT_EQ(back->l7_services[0], svc);

  nlohmann::json j = ProxyConfigToJson(c);
  j["l7_services"][0]["split_backends"][1]["endpoints"][0]["address"] = "web-v2";
  auto bad = ProxyConfigFromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("l7_services[0].split_backends[1].endpoints[0]: 'web-v2' port 8081 is "
                        "not an endpoint"));
  nlohmann::json k = ProxyConfigToJson(c);
  k["l7_services"][0]["settings"]["retries"] = "two";
  bad = ProxyConfigFromJson(k);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("l7_services[0].settings.retries: not a whole number"));
}

TEST(ProxyConfigTest, AConfigWithoutL7HasNone) {
  nlohmann::json j = ProxyConfigToJson(Base());
  j.erase("l7");
  auto c = ProxyConfigFromJson(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->traffic_targets.empty());
  EXPECT_EQ(c->mode, "strict");
}

TEST(ProxyConfigTest, TheProxyGetsThePolicyOfItsNodesPodsOnly) {
  model::Objects o;
  o.traffic_targets = {
      {.namespace_ = "shop",
       .name = "to-books",
       .destination = {"shop", "books"},
       .sources = {{"shop", "client"}},
       .rules = {{model::RouteKind::kHttp, "books-api", {}}, {model::RouteKind::kTcp, "web", {}}}},
      {.namespace_ = "bank",
       .name = "to-ledger",
       .destination = {"bank", "ledger"},
       .sources = {{"bank", "teller"}},
       .rules = {{model::RouteKind::kHttp, "ledger-api", {}}}}};
  o.http_route_groups = {{.namespace_ = "shop", .name = "books-api", .matches = {{.name = "a"}}},
                         {.namespace_ = "bank", .name = "ledger-api", .matches = {{.name = "b"}}}};
  o.tcp_routes = {{model::RouteKind::kTcp, "shop", "web", {80}},
                  {model::RouteKind::kTcp, "shop", "unused", {81}}};
  ProxyConfig c;
  mtls::SelectL7Objects(o, {"shop/books", "shop/client"}, &c);
  ASSERT_EQ(c.traffic_targets.size(), 1u);
  EXPECT_EQ(c.traffic_targets[0].name, "to-books");
  ASSERT_EQ(c.http_route_groups.size(), 1u);
  EXPECT_EQ(c.http_route_groups[0].name, "books-api");
  ASSERT_EQ(c.tcp_routes.size(), 1u);
  EXPECT_EQ(c.tcp_routes[0].name, "web");
}

// Which HTTP version a local pod's port speaks comes from its Service
// port's appProtocol; a port that says nothing (or something else) is
// not mapped, and a leaf's endpoints count only under their own Service.
TEST(ProxyConfigTest, UpstreamHttpVersionsComeFromTheServicePortsAppProtocol) {
  EXPECT_EQ(HttpVersionOf("kubernetes.io/h2c"), "h2c");
  EXPECT_EQ(HttpVersionOf("grpc"), "h2c");
  EXPECT_EQ(HttpVersionOf("http"), "http1");
  EXPECT_EQ(HttpVersionOf("kubernetes.io/ws"), "http1");
  EXPECT_EQ(HttpVersionOf("https"), "");
  EXPECT_EQ(HttpVersionOf(""), "");
  model::Objects o;
  auto svc = [](const std::string& name, const std::string& app) {
    model::Service s{.namespace_ = "shop", .name = name};
    s.ports = {{.name = "web", .port = 80, .target_port = 8080, .app_protocol = app}};
    return s;
  };
  o.services = {svc("grpc-api", "kubernetes.io/h2c"), svc("legacy", "http"), svc("plain", ""),
                svc("root", "http")};
  services::Plan plan;
  auto entry = [](const std::string& service, std::vector<services::Backend> b) {
    services::ServiceEntry e;
    e.service = service;
    e.port = 80;
    e.backends = std::move(b);
    return e;
  };
  const uint32_t local1 = htonl(0x0af40105), local2 = htonl(0x0af40106), remote = htonl(0x0af40207);
  plan.entries = {
      entry("shop/grpc-api", {{local1, 9000, "shop/grpc-api"}, {remote, 9000, "shop/grpc-api"}}),
      entry("shop/legacy", {{local2, 8080, "shop/legacy"}}),
      entry("shop/plain", {{local2, 8081, "shop/plain"}}),
      // A split's root: its leaf's endpoint is not said for by the root.
      entry("shop/root", {{local1, 7000, "shop/leaf"}})};
  ProxyConfig c = Base();
  c.local_pods = {{"10.244.1.5", "shop/a"}, {"10.244.1.6", "shop/b"}};
  c.l7_services = {{.service = "shop/grpc-api", .address = "10.96.0.9", .port = 80}};
  mtls::SelectUpstreamHttp(plan, o, &c);
  EXPECT_EQ(c.upstream_http, (std::map<std::string, std::string>{{"10.244.1.5:9000", "h2c"},
                                                                 {"10.244.1.6:8080", "http1"}}));
  EXPECT_EQ(c.l7_services[0].upstream_http, "h2c");
  auto back = ProxyConfigFromJson(nlohmann::json::parse(ProxyConfigToJson(c).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->upstream_http, c.upstream_http);
  EXPECT_EQ(back->l7_services[0].upstream_http, "h2c");
  nlohmann::json j = ProxyConfigToJson(c);
  j["upstream_http"]["10.244.1.5:9000"] = "h3";
  auto bad = ProxyConfigFromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("upstream_http[10.244.1.5:9000]: not h2c or http1"));
}

// Without mTLS (shunt-proxy --l7-only) the config carries no credential:
// mode "off" needs none; the others still do.
TEST(ProxyConfigTest, WithoutMtlsNoCredentialIsNeeded) {
  ProxyConfig c = Base();
  c.mode = "off";
  c.node_proxy = {};
  nlohmann::json j = ProxyConfigToJson(c);
  j.erase("node_proxy");
  auto back = ProxyConfigFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mode, "off");
  EXPECT_EQ(back->local_pods, c.local_pods);
  j["mode"] = "strict";
  auto bad = ProxyConfigFromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("node_proxy: missing"));
  j["mode"] = "plain";
  bad = ProxyConfigFromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("mode: 'plain' (want permissive, strict or off)"));
}

}  // namespace
}  // namespace shunt::proxy
